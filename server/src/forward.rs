//! Calls a follower forwards to the leader's client URL (lease keep-alives and time-to-live:
//! only the leader knows lease deadlines, etcd forwards them too).
//!
//! A few worker threads take the calls from one queue; each keeps its connection to the leader
//! open from call to call, so a stream of keep-alives through a follower costs one TCP
//! connection, not a thread and a connection per request. A worker reconnects when the leader's
//! endpoint changes or its connection broke. The forwarded calls are idempotent (renewing a
//! lease twice, or asking its TTL twice, changes nothing more), so a call that fails on a cached
//! connection — typically closed by a leader that restarted — is retried once on a fresh one.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use keel_net::client::{Client, ClientConfig, ClientError};
use parking_lot::Mutex;

/// What runs with the leader's answer (on a forwarding thread).
pub type Done = Box<dyn FnOnce(Result<Vec<u8>, ClientError>) + Send>;

/// One forwarded unary call.
struct Job {
    endpoint: String,
    path: &'static str,
    request: Vec<u8>,
    timeout: Duration,
    done: Done,
}

/// The forwarding workers (see the module doc). Dropping it lets the workers finish the calls
/// queued and exit.
pub struct Forwarder {
    jobs: mpsc::Sender<Job>,
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
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("keel-forward-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Forwarder { jobs: tx })
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
            done,
        };
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            let gone = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "forwarder stopped");
            (job.done)(Err(ClientError::Io(gone)));
        }
    }
}

/// A worker: one cached connection, to the endpoint of the last call.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut cached: Option<(String, Client)> = None;
    loop {
        let job = match jobs.lock().recv() {
            Ok(job) => job,
            Err(_) => return, // the Forwarder is gone
        };
        let result = call_leader(&mut cached, &job);
        (job.done)(result);
    }
}

/// Makes `job`'s call on the cached connection if it goes to the same endpoint, else on a new
/// one; a cached connection that fails is replaced and the call retried once.
fn call_leader(cached: &mut Option<(String, Client)>, job: &Job) -> Result<Vec<u8>, ClientError> {
    let reused = matches!(cached, Some((endpoint, _)) if *endpoint == job.endpoint);
    if reused {
        let (_, client) = cached.as_mut().expect("checked above");
        match client.unary_with(job.path, &job.request, &[], job.timeout) {
            Err(ClientError::Io(_) | ClientError::Protocol(_)) => {} // stale: reconnect below
            other => return other,
        }
    }
    *cached = None;
    let config = ClientConfig {
        call_timeout: job.timeout,
        ..ClientConfig::default()
    };
    let mut client = Client::connect(&[job.endpoint.as_str()], config)?;
    let result = client.unary_with(job.path, &job.request, &[], job.timeout);
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
    fn a_call_after_the_forwarder_is_gone_fails_instead_of_hanging() {
        let (tx, rx) = mpsc::channel();
        // A queue whose workers are gone.
        let (dead_tx, dead_rx) = mpsc::channel::<Job>();
        drop(dead_rx);
        let f = Forwarder { jobs: dead_tx };
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
