//! Background write load: several threads, each with its own gRPC client (failing over between
//! all endpoints), writing unique keys and recording every acknowledged write.

use crate::grpc;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One write the cluster acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// Value written.
    pub value: Vec<u8>,
    /// Revision in the response header.
    pub revision: i64,
}

/// Running writer threads. See the module docs.
#[derive(Debug)]
pub struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<BTreeMap<Vec<u8>, Acked>>>,
}

/// What the writers did.
#[derive(Debug, Default)]
pub struct WriteResult {
    /// Every acknowledged write, by key (keys are unique).
    pub acked: BTreeMap<Vec<u8>, Acked>,
    /// Writes that returned an error (they may or may not have been applied).
    pub failed: usize,
}

impl Writers {
    /// Starts `threads` writers; thread `t` writes `<prefix><t>/<i:06>` for `i` in
    /// `0..per_thread` (or until [`Writers::stop`]), value `v<t>-<i>`. Each thread's client lists
    /// the endpoints rotated by `t`, so the load is spread over the members.
    pub fn start(
        endpoints: Vec<String>,
        prefix: &str,
        threads: usize,
        per_thread: usize,
    ) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let handles = (0..threads)
            .map(|t| {
                let mut eps = endpoints.clone();
                let n = eps.len();
                eps.rotate_left(t % n);
                let (stop, acked, failed) = (stop.clone(), acked.clone(), failed.clone());
                let prefix = prefix.to_string();
                std::thread::spawn(move || {
                    let mut mine = BTreeMap::new();
                    let mut client = None;
                    for i in 0..per_thread {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("{prefix}{t}/{i:06}").into_bytes();
                        let value = format!("v{t}-{i}").into_bytes();
                        if client.is_none() {
                            client = grpc::connect(&eps, Duration::from_secs(10)).ok();
                        }
                        let Some(c) = client.as_mut() else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        };
                        match grpc::put(c, &key, &value) {
                            Ok(resp) => {
                                let revision = resp.header.map(|h| h.revision).unwrap_or(0);
                                mine.insert(key, Acked { value, revision });
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        Writers {
            stop,
            acked,
            failed,
            threads: handles,
        }
    }

    /// Writes acknowledged so far (all threads).
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// Writes failed so far (all threads).
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` writes were acknowledged in total; panics after `timeout`.
    pub fn wait_acked(&self, n: usize, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.acked() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} writes acknowledged after {timeout:?} ({} failed)",
                self.acked(),
                self.failed()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asks the threads to stop after their current write.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Joins the threads (after they wrote everything or were stopped).
    pub fn join(self) -> WriteResult {
        let mut r = WriteResult {
            failed: self.failed(),
            ..WriteResult::default()
        };
        for t in self.threads {
            r.acked.extend(t.join().expect("writer thread panicked"));
        }
        r
    }
}

/// Checks that every acknowledged write is on member `endpoint` (serializable read of the
/// prefix, so it is that member's own state) with its value and its acknowledged revision.
pub fn assert_all_present(endpoint: &str, prefix: &[u8], writes: &WriteResult) {
    let mut c = grpc::connect(&[endpoint.to_string()], Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("connect {endpoint}: {e}"));
    let mut end = prefix.to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    let r = grpc::range(&mut c, prefix, &end, true)
        .unwrap_or_else(|e| panic!("range on {endpoint}: {e}"));
    let have: BTreeMap<&[u8], (&[u8], i64)> = r
        .kvs
        .iter()
        .map(|kv| (kv.key.as_slice(), (kv.value.as_slice(), kv.mod_revision)))
        .collect();
    let mut missing = Vec::new();
    for (k, a) in &writes.acked {
        match have.get(k.as_slice()) {
            Some((v, rev)) if *v == a.value.as_slice() && *rev == a.revision => {}
            other => missing.push(format!(
                "{} (acked {:?}@{}, member has {:?})",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&a.value),
                a.revision,
                other.map(|(v, r)| (String::from_utf8_lossy(v).into_owned(), *r))
            )),
        }
    }
    assert!(
        missing.is_empty(),
        "{endpoint}: {} of {} acknowledged writes missing or different, e.g. {:?}",
        missing.len(),
        writes.acked.len(),
        &missing[..missing.len().min(5)]
    );
}
