//! `watch-latency`: `--watchers` watch streams on one key, a putter writing it at `--put-rate`;
//! each value starts with the put's send time, so a watcher measures put → event delay without
//! shared state.

use super::args::Options;
use super::load::{error_text, filler, key_bytes, paths, Outcome, Rng};
use keel_net::client::{Client, ClientConfig};
use keel_net::proto::etcdserverpb::{
    watch_request, PutRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use keel_net::proto::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// What a watch-latency run measured: put latencies and event delays.
pub struct WatchOutcome {
    /// The putter's calls.
    pub puts: Outcome,
    /// Every watcher's put → event delays.
    pub events: Outcome,
}

/// Runs the watch-latency load.
pub fn run(o: &Options) -> WatchOutcome {
    let key = key_bytes(&o.prefix, 0, o.key_size.max(1));
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(o.watchers + 1));
    let mut watchers = Vec::new();
    for i in 0..o.watchers {
        let (o, key, done, ready) = (o.clone(), key.clone(), done.clone(), ready.clone());
        watchers.push(std::thread::spawn(move || {
            let mut out = Outcome::default();
            let endpoint = o.endpoints[i % o.endpoints.len()].clone();
            let stream =
                Client::connect(&[endpoint.as_str()], ClientConfig::default()).and_then(|mut c| {
                    let h = c.open_stream(paths::WATCH, &[], None)?;
                    let create = WatchRequest {
                        request_union: Some(watch_request::RequestUnion::CreateRequest(
                            WatchCreateRequest {
                                key: key.clone(),
                                ..Default::default()
                            },
                        )),
                    };
                    c.send(h, &create.encode_to_vec())?;
                    Ok((c, h))
                });
            let (mut c, h) = match stream {
                Ok(x) => x,
                Err(e) => {
                    *out.errors.entry(error_text(&e)).or_default() += 1;
                    ready.wait();
                    return out;
                }
            };
            let mut created = false;
            let mut grace: Option<Instant> = None;
            loop {
                if !created {
                    // Wait for the `created` answer before the putter starts.
                } else if done.load(Ordering::Relaxed) {
                    let g = *grace.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                    if Instant::now() >= g {
                        break;
                    }
                }
                match c.recv(h, Duration::from_millis(200)) {
                    Ok(Some(bytes)) => {
                        let now = t0.elapsed().as_micros() as u64;
                        match WatchResponse::decode(bytes.as_slice()) {
                            Ok(r) => {
                                if r.created && !created {
                                    created = true;
                                    ready.wait();
                                }
                                for ev in r.events {
                                    let v = ev.kv.map(|kv| kv.value).unwrap_or_default();
                                    if v.len() >= 8 {
                                        let sent = u64::from_be_bytes(v[..8].try_into().unwrap());
                                        out.latency_us.record(now.saturating_sub(sent));
                                    }
                                }
                            }
                            Err(e) => {
                                *out.errors
                                    .entry(format!("bad watch response: {e}"))
                                    .or_default() += 1
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(keel_net::client::ClientError::Timeout) => {}
                    Err(e) => {
                        *out.errors.entry(error_text(&e)).or_default() += 1;
                        if !created {
                            ready.wait();
                        }
                        break;
                    }
                }
            }
            out
        }));
    }
    ready.wait();
    let mut puts = Outcome::default();
    let start = Instant::now();
    match Client::connect(&[o.endpoints[0].as_str()], ClientConfig::default()) {
        Err(e) => *puts.errors.entry(error_text(&e)).or_default() += 1,
        Ok(mut c) => {
            let mut rng = Rng::new(99);
            let pad = filler(&mut rng, o.val_size.saturating_sub(8));
            let interval = Duration::from_secs_f64(1.0 / o.put_rate as f64);
            let mut n = 0u64;
            loop {
                let due = start + interval * n as u32;
                if o.total.is_some_and(|t| n >= t) || o.duration.is_some_and(|d| due >= start + d) {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let sent = t0.elapsed().as_micros() as u64;
                let mut value = sent.to_be_bytes().to_vec();
                value.extend_from_slice(&pad);
                let req = PutRequest {
                    key: key.clone(),
                    value,
                    ..Default::default()
                };
                let began = Instant::now();
                match c.unary_with(paths::PUT, &req.encode_to_vec(), &[], o.call_timeout) {
                    Ok(_) => puts.latency_us.record(began.elapsed().as_micros() as u64),
                    Err(e) => *puts.errors.entry(error_text(&e)).or_default() += 1,
                }
                n += 1;
            }
        }
    }
    puts.elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut events = Outcome::default();
    for w in watchers {
        if let Ok(out) = w.join() {
            events.merge(&out);
        }
    }
    events.elapsed = puts.elapsed;
    WatchOutcome { puts, events }
}
