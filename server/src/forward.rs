//! Calls a follower forwards to the leader's client URL (lease keep-alives and time-to-live:
//! only the leader knows lease deadlines, etcd forwards them too).
//!
//! A few worker threads take the calls from one queue; each keeps its connection to the leader
//! open from call to call, so a stream of keep-alives through a follower costs one TCP
//! connection, not a thread and a connection per request. A worker reconnects when the leader's
//! endpoint changes or its connection broke. The forwarded calls are idempotent (renewing a
//! lease twice, or asking its TTL twice, changes nothing more), so a call that fails on a cached
//! connection — typically closed by a leader that restarted — is retried once on a fresh one.
//!
//! A call waits in the queue at most its own timeout: one that is already late when a worker
//! takes it fails at once ("deadline exceeded") instead of being made, so a leader that stopped
//! answering (a partition) delays the calls queued behind it by about one timeout, not by one
//! timeout each. Connecting is bounded by [`CONNECT_TIMEOUT`] (or the call's timeout if shorter).

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_net::client::{Client, ClientConfig, ClientError};
use parking_lot::Mutex;

/// What runs with the leader's answer (on a forwarding thread).
pub type Done = Box<dyn FnOnce(Result<Vec<u8>, ClientError>) + Send>;

/// Longest wait for a TCP connection to the leader.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One forwarded unary call.
struct Job {
    endpoint: String,
    path: &'static str,
    request: Vec<u8>,
    timeout: Duration,
    /// When the call was queued: its timeout runs from here.
    queued: Instant,
    done: Done,
}

/// The forwarding workers (see the module doc). Dropping it lets the workers finish the calls
/// queued and exit.
pub struct Forwarder {
    jobs: mpsc::Sender<Job>,
    /// Calls failed without being made because they were late when a worker took them.
    expired: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Forwarder")
    }
}

impl Forwarder {
    /// Starts `workers` forwarding threads (at least one).
    pub fn new(workers: usize) -> std::io::Result<Forwarder> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let expired = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("keel-forward-{i}"))
                .spawn({
                    let expired = expired.clone();
                    move || work(&rx, &expired)
                })?;
        }
        Ok(Forwarder { jobs: tx, expired })
    }

    /// Calls `path` with `request` on the member at `endpoint` (host:port); `done` runs with
    /// the answer, or with the error (also when the workers are gone).
    pub fn call(
        &self,
        endpoint: String,
        path: &'static str,
        request: Vec<u8>,
        timeout: Duration,
        done: Done,
    ) {
        let job = Job {
            endpoint,
            path,
            request,
            timeout,
            queued: Instant::now(),
            done,
        };
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            let gone = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "forwarder stopped");
            (job.done)(Err(ClientError::Io(gone)));
        }
    }

    /// Calls failed without being made because they had waited their whole timeout in the
    /// queue.
    pub fn expired_calls(&self) -> u64 {
        self.expired.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A worker: one cached connection, to the endpoint of the last call.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>, expired: &std::sync::atomic::AtomicU64) {
    let mut cached: Option<(String, Client)> = None;
    loop {
        let job = match jobs.lock().recv() {
            Ok(job) => job,
            Err(_) => return, // the Forwarder is gone
        };
        let result = match job.timeout.checked_sub(job.queued.elapsed()) {
            Some(left) if !left.is_zero() => call_leader(&mut cached, &job, left),
            _ => {
                // Late already: not made.
                expired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(ClientError::Timeout)
            }
        };
        (job.done)(result);
    }
}

/// Makes `job`'s call on the cached connection if it goes to the same endpoint, else on a new
/// one; a cached connection that fails is replaced and the call retried once.
fn call_leader(
    cached: &mut Option<(String, Client)>,
    job: &Job,
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    let reused = matches!(cached, Some((endpoint, _)) if *endpoint == job.endpoint);
    if reused {
        let (_, client) = cached.as_mut().expect("checked above");
        match client.unary_with(job.path, &job.request, &[], timeout) {
            Err(ClientError::Io(_) | ClientError::Protocol(_)) => {} // stale: reconnect below
            other => return other,
        }
    }
    *cached = None;
    let config = ClientConfig {
        call_timeout: timeout,
        connect_timeout: CONNECT_TIMEOUT.min(timeout),
        ..ClientConfig::default()
    };
    let mut client = Client::connect(&[job.endpoint.as_str()], config)?;
    let result = client.unary_with(job.path, &job.request, &[], timeout);
    if !matches!(result, Err(ClientError::Io(_) | ClientError::Protocol(_))) {
        *cached = Some((job.endpoint.clone(), client));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig};
    use keel_net::grpc::CallEvent;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers every unary call with its own request bytes, and records the most client
    /// connections it saw open at once; with `go_away`, sends every connection GOAWAY after
    /// each answer (as a leader that restarts would close them).
    struct Echo {
        most_connections: Arc<AtomicUsize>,
        go_away: bool,
    }

    impl Handler<()> for Echo {
        fn on_call(&mut self, ctx: &mut Ctx<()>, event: CallEvent) {
            self.most_connections
                .fetch_max(ctx.connection_count(), Ordering::Relaxed);
            if let CallEvent::Message { call, message } = event {
                let _ = ctx.reply(call, &message);
                if self.go_away {
                    ctx.go_away_all();
                }
            }
        }
    }

    fn echo_server() -> (String, Arc<AtomicUsize>) {
        echo_server_with(false)
    }

    fn echo_server_with(go_away: bool) -> (String, Arc<AtomicUsize>) {
        let mut lp: EventLoop<()> = EventLoop::new(LoopConfig::default()).unwrap();
        let addr = lp.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let most = Arc::new(AtomicUsize::new(0));
        let mut handler = Echo {
            most_connections: most.clone(),
            go_away,
        };
        std::thread::spawn(move || lp.run(&mut handler));
        (addr.to_string(), most)
    }

    fn forward_all(f: &Forwarder, endpoint: &str, n: usize) -> Vec<Result<Vec<u8>, String>> {
        let (tx, rx) = mpsc::channel();
        for i in 0..n {
            let tx = tx.clone();
            f.call(
                endpoint.to_string(),
                "/etcdserverpb.Lease/LeaseTimeToLive",
                vec![i as u8; 3],
                Duration::from_secs(5),
                Box::new(move |r| tx.send((i, r.map_err(|e| e.to_string()))).unwrap()),
            );
        }
        let mut got: Vec<_> = (0..n).map(|_| rx.recv().unwrap()).collect();
        got.sort_by_key(|(i, _)| *i);
        got.into_iter().map(|(_, r)| r).collect()
    }

    #[test]
    fn calls_share_one_connection_per_worker_and_every_answer_reaches_its_caller() {
        let (endpoint, most) = echo_server();
        let f = Forwarder::new(2).unwrap();
        let got = forward_all(&f, &endpoint, 200);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.as_deref(), Ok(&[i as u8; 3][..]), "call {i}");
        }
        let most = most.load(Ordering::Relaxed);
        assert!((1..=2).contains(&most), "{most} connections open at once");
    }

    #[test]
    fn a_new_endpoint_gets_a_new_connection_and_a_dead_one_an_error() {
        let (first, _) = echo_server();
        let (second, _) = echo_server();
        let f = Forwarder::new(1).unwrap();
        assert_eq!(forward_all(&f, &first, 3).len(), 3);
        assert!(forward_all(&f, &second, 3).iter().all(|r| r.is_ok()));
        // Nothing listens there any more: a clean error, and the worker keeps serving.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert!(forward_all(&f, &dead, 2).iter().all(|r| r.is_err()));
        assert!(forward_all(&f, &first, 2).iter().all(|r| r.is_ok()));
    }

    #[test]
    fn a_closed_cached_connection_is_replaced_and_the_call_retried() {
        let (endpoint, _) = echo_server_with(true);
        let f = Forwarder::new(1).unwrap();
        let got = forward_all(&f, &endpoint, 20);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.as_deref(), Ok(&[i as u8; 3][..]), "call {i}");
        }
    }

    #[test]
    fn calls_queued_behind_a_leader_that_does_not_answer_wait_one_timeout_not_one_each() {
        // Accepts connections and never answers (a leader cut off mid-call).
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = silent.local_addr().unwrap().to_string();
        let _held = std::thread::spawn(move || {
            let conns: Vec<_> = silent.incoming().take(8).collect();
            std::thread::sleep(Duration::from_secs(10));
            drop(conns);
        });
        let f = Forwarder::new(1).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            f.call(
                endpoint.clone(),
                "/etcdserverpb.Lease/LeaseTimeToLive",
                vec![],
                Duration::from_millis(300),
                Box::new(move |r| tx.send((i, r.is_err())).unwrap()),
            );
        }
        for _ in 0..20 {
            let (i, failed) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(failed, "call {i} answered by a silent leader?");
        }
        // The first call waits its 300 ms; the 19 queued behind it are late by then and fail
        // without being made (one may still get the few milliseconds it has left).
        assert!(f.expired_calls() >= 18, "{} expired", f.expired_calls());
    }

    #[test]
    fn a_call_after_the_forwarder_is_gone_fails_instead_of_hanging() {
        let (tx, rx) = mpsc::channel();
        // A queue whose workers are gone.
        let (dead_tx, dead_rx) = mpsc::channel::<Job>();
        drop(dead_rx);
        let f = Forwarder {
            jobs: dead_tx,
            expired: Arc::default(),
        };
        f.call(
            "127.0.0.1:1".into(),
            "/x",
            vec![],
            Duration::from_secs(1),
            Box::new(move |r| tx.send(r.is_err()).unwrap()),
        );
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    }
}
