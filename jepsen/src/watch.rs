//! The watch check (Jepsen found etcd 3.4.3's watches could skip revisions): one watcher per
//! member follows every register key (`jepsen/` prefix) from revision 1 while the workload and
//! the nemesis run, resuming after each broken stream from the revision after the last it saw
//! (possibly on another member). Afterwards [`check_watches`] demands that
//!
//! 1. each watcher saw revisions in strictly increasing order, each once;
//! 2. all watchers agree on what happened at every revision (key, put or delete, value);
//! 3. no watcher skipped a revision another one saw (up to the last revision it reached), and
//!    every watcher reached the final revision;
//! 4. every acknowledged write and every successful compare-and-set shows up as a put of its
//!    value on its key, and every put carries a value some client wrote (nothing invented).
//!
//! The workload changes one key per revision, so revisions identify events.

use crate::checker::{Event as Op_, OkValue, Op, Outcome};
use keel_net::client::{Client, ClientConfig, ClientError};
use keel_net::proto::etcdserverpb::{
    watch_request, RangeRequest, RangeResponse, WatchCreateRequest, WatchRequest, WatchResponse,
};
use keel_net::proto::mvccpb::event::EventType;
use keel_net::proto::Message;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// What happened at one revision, as a watcher was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The revision.
    pub revision: i64,
    /// The register (from the key `jepsen/r<n>`), or `None` for a key that is not one.
    pub key: Option<u64>,
    /// `Some(value)` for a put (`None` if the value is not a register value), `None` for a delete.
    pub put: Option<Option<u64>>,
}

/// What one watcher saw.
#[derive(Clone, Debug, Default)]
pub struct WatchLog {
    /// The member it started on.
    pub home: usize,
    /// Every change, in the order received.
    pub changes: Vec<Change>,
    /// How often the stream broke and was resumed.
    pub resumes: usize,
    /// A stream that ended with a cancel (for example compaction), with its reason.
    pub canceled: Vec<String>,
}

/// Follows every register from revision 1 on `endpoints` (rotated so `home` is first) until
/// `stop` is set and the watcher has reached `target` (or `grace` has passed since `stop`).
pub fn follow(
    home: usize,
    mut endpoints: Vec<String>,
    stop: &AtomicBool,
    target: &AtomicI64,
    grace: Duration,
) -> WatchLog {
    let members = endpoints.len().max(1);
    endpoints.rotate_left(home % members);
    let mut log = WatchLog {
        home,
        ..WatchLog::default()
    };
    let mut next = 1i64;
    let mut first = true;
    let mut stopped_at: Option<Instant> = None;
    let config = ClientConfig {
        connect_timeout: Duration::from_millis(500),
        ..ClientConfig::default()
    };
    'streams: loop {
        if !first {
            log.resumes += 1;
            std::thread::sleep(Duration::from_millis(100));
            endpoints.rotate_left(1);
        }
        first = false;
        let opened = Client::connect(&endpoints, config.clone()).and_then(|mut c| {
            let h = c.open_stream("/etcdserverpb.Watch/Watch", &[], None)?;
            let create = WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(
                    WatchCreateRequest {
                        key: b"jepsen/".to_vec(),
                        range_end: b"jepsen0".to_vec(),
                        start_revision: next,
                        ..Default::default()
                    },
                )),
            };
            c.send(h, &create.encode_to_vec())?;
            Ok((c, h))
        });
        let (mut c, h) = match opened {
            Ok(x) => x,
            Err(_) => {
                if done(stop, target, next, &mut stopped_at, grace) {
                    break 'streams;
                }
                continue 'streams;
            }
        };
        loop {
            if done(stop, target, next, &mut stopped_at, grace) {
                let _ = c.cancel(h);
                break 'streams;
            }
            match c.recv(h, Duration::from_millis(200)) {
                Ok(Some(bytes)) => {
                    let Ok(r) = WatchResponse::decode(bytes.as_slice()) else {
                        continue 'streams;
                    };
                    if r.canceled {
                        log.canceled.push(r.cancel_reason.clone());
                        continue 'streams;
                    }
                    for e in r.events {
                        let Some(kv) = e.kv else { continue };
                        let change = Change {
                            revision: kv.mod_revision,
                            key: register_of(&kv.key),
                            put: (e.r#type == EventType::Put as i32).then(|| number(&kv.value)),
                        };
                        next = next.max(change.revision + 1);
                        log.changes.push(change);
                    }
                }
                Err(ClientError::Timeout) => {}
                // The stream ended or broke: resume from `next` (on the next member).
                Ok(None) | Err(_) => continue 'streams,
            }
        }
    }
    log
}

/// The store's current revision, read linearizably from the first member that answers.
pub fn current_revision(endpoints: &[String]) -> Result<i64, String> {
    let config = ClientConfig {
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    let request = RangeRequest {
        key: b"jepsen/".to_vec(),
        range_end: b"jepsen0".to_vec(),
        count_only: true,
        ..Default::default()
    };
    let mut last = String::from("no endpoints");
    for e in endpoints {
        let answer = Client::connect(&[e], config.clone())
            .and_then(|mut c| c.unary("/etcdserverpb.KV/Range", &request.encode_to_vec()));
        match answer
            .map_err(|e| e.to_string())
            .and_then(|b| RangeResponse::decode(b.as_slice()).map_err(|e| e.to_string()))
        {
            Ok(r) => return Ok(r.header.map(|h| h.revision).unwrap_or(0)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn done(
    stop: &AtomicBool,
    target: &AtomicI64,
    next: i64,
    at: &mut Option<Instant>,
    grace: Duration,
) -> bool {
    if !stop.load(Ordering::SeqCst) {
        return false;
    }
    let since = *at.get_or_insert_with(Instant::now);
    next > target.load(Ordering::SeqCst) || since.elapsed() > grace
}

fn register_of(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.strip_prefix(b"jepsen/r")?)
        .ok()?
        .parse()
        .ok()
}

fn number(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Checks the watchers' logs against each other, against the final revision and against the
/// history of operations. Returns every problem found (empty: all good).
pub fn check_watches(logs: &[WatchLog], final_revision: i64, history: &[Op_]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut truth: BTreeMap<i64, (Option<u64>, Option<Option<u64>>, usize)> = BTreeMap::new();
    for (w, log) in logs.iter().enumerate() {
        let mut last = 0i64;
        for c in &log.changes {
            if c.revision <= last {
                problems.push(format!(
                    "watcher {w} (from n{}): revision {} after {last} (out of order or twice)",
                    log.home, c.revision
                ));
            }
            last = last.max(c.revision);
            match truth.get(&c.revision) {
                None => {
                    truth.insert(c.revision, (c.key, c.put, w));
                }
                Some(&(key, put, first)) if (key, put) != (c.key, c.put) => problems.push(format!(
                    "revision {}: watcher {first} saw {key:?} {put:?}, watcher {w} saw {:?} {:?}",
                    c.revision, c.key, c.put
                )),
                Some(_) => {}
            }
        }
        if last < final_revision {
            problems.push(format!(
                "watcher {w} (from n{}) stopped at revision {last}, the store is at {final_revision}",
                log.home
            ));
        }
        for c in &log.canceled {
            problems.push(format!("watcher {w}: canceled by the server: {c}"));
        }
    }
    for (w, log) in logs.iter().enumerate() {
        let seen: HashSet<i64> = log.changes.iter().map(|c| c.revision).collect();
        let reached = log.changes.iter().map(|c| c.revision).max().unwrap_or(0);
        let missed: Vec<i64> = truth
            .keys()
            .copied()
            .filter(|r| *r <= reached && !seen.contains(r))
            .collect();
        if !missed.is_empty() {
            problems.push(format!(
                "watcher {w} (from n{}) skipped revisions another watcher saw: {:?}",
                log.home,
                &missed[..missed.len().min(10)]
            ));
        }
    }
    // Against the history: acknowledged values appear; observed values were written.
    let mut written: HashMap<(u64, u64), bool> = HashMap::new(); // (key, value) -> acknowledged
    for e in history {
        let value = match (e.op, e.outcome) {
            (Op::Write(v), Outcome::Ok(_))
            | (Op::Cas { new: v, .. }, Outcome::Ok(OkValue::Cas(true))) => Some((v, true)),
            (Op::Write(v), Outcome::Indeterminate)
            | (Op::Cas { new: v, .. }, Outcome::Indeterminate) => Some((v, false)),
            _ => None,
        };
        if let Some((v, acked)) = value {
            let slot = written.entry((e.key, v)).or_insert(false);
            *slot |= acked;
        }
    }
    let observed: HashSet<(u64, u64)> = truth
        .values()
        .filter_map(|&(key, put, _)| Some((key?, put??)))
        .collect();
    for (&(key, v), &acked) in &written {
        if acked && !observed.contains(&(key, v)) {
            problems.push(format!(
                "acknowledged write of {v} to register {key} never appeared in a watch"
            ));
        }
    }
    for (&rev, &(key, put, w)) in &truth {
        match (key, put) {
            (Some(k), Some(Some(v))) if !written.contains_key(&(k, v)) => problems.push(format!(
                "revision {rev}: watcher {w} saw register {k} = {v}, which no client wrote"
            )),
            (None, _) | (_, Some(None)) => problems.push(format!(
                "revision {rev}: watcher {w} saw a key or value that is not a register's"
            )),
            _ => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: i64, key: u64, v: u64) -> Change {
        Change {
            revision,
            key: Some(key),
            put: Some(Some(v)),
        }
    }

    fn log(changes: Vec<Change>) -> WatchLog {
        WatchLog {
            changes,
            ..WatchLog::default()
        }
    }

    fn write(key: u64, v: u64, outcome: Outcome) -> Op_ {
        Op_ {
            client: 0,
            key,
            op: Op::Write(v),
            invoked: 0,
            returned: 1,
            outcome,
        }
    }

    #[test]
    fn agreeing_complete_watchers_pass() {
        let a = log(vec![put(2, 0, 10), put(3, 1, 11)]);
        let history = [
            write(0, 10, Outcome::Ok(OkValue::Written)),
            write(1, 11, Outcome::Indeterminate),
        ];
        assert_eq!(
            check_watches(&[a.clone(), a], 3, &history),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_skipped_revision_a_disagreement_a_lost_write_and_an_invented_value_are_each_found() {
        let full = log(vec![put(2, 0, 10), put(3, 1, 11), put(4, 0, 12)]);
        let skipped = log(vec![put(2, 0, 10), put(4, 0, 12)]);
        let p = check_watches(&[full.clone(), skipped], 4, &[]);
        assert!(
            p.iter()
                .any(|m| m.contains("skipped revisions") && m.contains("[3]")),
            "{p:?}"
        );

        let other = log(vec![put(2, 0, 10), put(3, 1, 99), put(4, 0, 12)]);
        let p = check_watches(&[full.clone(), other], 4, &[]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("revision 3:") && m.contains("watcher 1")),
            "{p:?}"
        );

        let history = [
            write(0, 10, Outcome::Ok(OkValue::Written)),
            write(1, 11, Outcome::Ok(OkValue::Written)),
            write(0, 13, Outcome::Ok(OkValue::Written)),
        ];
        let p = check_watches(std::slice::from_ref(&full), 4, &history);
        assert!(
            p.iter()
                .any(|m| m.contains("write of 13 to register 0 never appeared")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("register 0 = 12, which no client wrote")),
            "{p:?}"
        );
    }

    #[test]
    fn out_of_order_and_behind_watchers_are_found() {
        let backwards = log(vec![put(3, 0, 1), put(2, 0, 2)]);
        let p = check_watches(&[backwards], 3, &[]);
        assert!(p.iter().any(|m| m.contains("revision 2 after 3")), "{p:?}");
        let behind = log(vec![put(2, 0, 1)]);
        let p = check_watches(&[behind], 5, &[]);
        assert!(
            p.iter().any(|m| m.contains("stopped at revision 2")),
            "{p:?}"
        );
    }
}
