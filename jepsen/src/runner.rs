//! One Jepsen-style test: start the cluster in namespaces, run the register workload from
//! several clients while the nemesis injects faults, recover everything, let the clients run a
//! little longer on the healed cluster, then check the history.

use crate::checker::{check, Event, OkValue, Op, Outcome, Verdict};
use crate::client::RegisterClient;
use crate::db::{Db, DbConfig};
use crate::nemesis::{inject, undo, Fault};
use crate::netns::Network;
use crate::rng::Rng;
use crate::watch::{check_watches, current_revision, follow, WatchLog};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// A test's settings.
#[derive(Clone, Debug)]
pub struct TestConfig {
    /// The `keel` binary.
    pub keel: PathBuf,
    /// Where member data, logs, the history and the nemesis log go.
    pub dir: PathBuf,
    /// Names the namespaces and interfaces (≤ 6 characters; unique among concurrent tests).
    pub tag: String,
    /// The `10.77.<subnet>.0/24` network (unique among concurrent tests).
    pub subnet: u8,
    /// Cluster size.
    pub nodes: usize,
    /// Concurrent clients (threads), spread over the members.
    pub clients: usize,
    /// Registers in use at a time. Every `key_period` the workload moves on to fresh ones (as
    /// Jepsen's `independent` does), which keeps each register's history short enough to check.
    pub keys: u64,
    /// How long a set of registers is used.
    pub key_period: Duration,
    /// How long the faults go on.
    pub duration: Duration,
    /// The faults to choose from; empty for a fault-free run.
    pub faults: Vec<Fault>,
    /// How long each fault lasts, and the gap between faults.
    pub fault_interval: Duration,
    /// After recovering everything, how long the clients go on.
    pub quiet: Duration,
    /// Each client waits this long between operations.
    pub op_delay: Duration,
    /// Read with `serializable` (the member's local state, no ReadIndex). etcd documents such
    /// reads as possibly stale, so a history with them need not be linearizable: this exists
    /// to show the checker catches what it should.
    pub serializable_reads: bool,
    /// Client call timeout (a timed-out write is indeterminate).
    pub call_timeout: Duration,
    /// The members' `--heartbeat-interval` / `--election-timeout` (ms).
    pub heartbeat_ms: u64,
    /// See `heartbeat_ms`.
    pub election_ms: u64,
    /// Seeds the schedule: which faults, which nodes, which operations.
    pub seed: u64,
    /// The checker's time limit (`Verdict::Unknown` past it).
    pub check_limit: Duration,
}

impl TestConfig {
    /// Defaults for a test of `duration` with `faults`, members from `keel`, files in `dir`.
    pub fn new(keel: PathBuf, dir: PathBuf, faults: Vec<Fault>, duration: Duration) -> TestConfig {
        TestConfig {
            keel,
            dir,
            tag: format!("{}", std::process::id() % 10_000),
            subnet: (std::process::id() % 200) as u8 + 20,
            nodes: 3,
            clients: 8,
            keys: 4,
            key_period: Duration::from_secs(3),
            duration,
            faults,
            fault_interval: Duration::from_secs(3),
            quiet: Duration::from_secs(3),
            op_delay: Duration::from_millis(5),
            serializable_reads: false,
            call_timeout: Duration::from_secs(1),
            heartbeat_ms: 50,
            election_ms: 500,
            seed: 1,
            check_limit: Duration::from_secs(60),
        }
    }
}

/// What a test saw and concluded.
#[derive(Debug)]
pub struct Report {
    /// The seed of the schedule.
    pub seed: u64,
    /// The checker's verdict on the whole history.
    pub verdict: Verdict,
    /// Every completed or indeterminate operation (failed ones included, marked so).
    pub history: Vec<Event>,
    /// Operations that succeeded.
    pub ok: usize,
    /// Operations that certainly did not happen.
    pub failed: usize,
    /// Operations whose effect is unknown.
    pub indeterminate: usize,
    /// Answers that could not be understood (should be none).
    pub garbled: Vec<String>,
    /// What the watch check found wrong (should be nothing; see [`crate::watch`]).
    pub watch_problems: Vec<String>,
    /// Changes the watchers received in all, and how often their streams were resumed.
    pub watch_changes: usize,
    /// See `watch_changes`.
    pub watch_resumes: usize,
    /// How many faults the nemesis injected.
    pub faults: usize,
    /// What the nemesis did, with times from the start of the workload.
    pub nemesis: Vec<String>,
    /// Where the history, the nemesis log and the member logs are.
    pub dir: PathBuf,
}

impl Report {
    /// One paragraph for a person.
    pub fn summary(&self) -> String {
        format!(
            "seed {}: {} operations ({} ok, {} failed, {} indeterminate), {} faults, verdict {:?}; watches: {} changes, {} resumes, {} problems; files in {}",
            self.seed,
            self.history.len(),
            self.ok,
            self.failed,
            self.indeterminate,
            self.faults,
            self.verdict,
            self.watch_changes,
            self.watch_resumes,
            self.watch_problems.len(),
            self.dir.display()
        )
    }
}

/// Runs one test. Errors are the harness's own (namespaces, processes); what the cluster did
/// is in the report.
pub fn run(cfg: &TestConfig) -> io::Result<Report> {
    std::fs::create_dir_all(&cfg.dir)?;
    let net = Network::create(&cfg.tag, cfg.subnet, cfg.nodes)?;
    let mut db = Db::start(
        DbConfig {
            keel: cfg.keel.clone(),
            dir: cfg.dir.join("members"),
            heartbeat_ms: cfg.heartbeat_ms,
            election_ms: cfg.election_ms,
        },
        net,
    )?;
    db.wait_for_leader(Duration::from_secs(30))
        .map_err(|e| io::Error::other(format!("{e}\n{}", db.log_tails(20))))?;

    let mut rng = Rng::new(cfg.seed);
    let endpoints = db.endpoints();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut nemesis_log = Vec::new();
    let watch_stop = AtomicBool::new(false);
    let final_revision = AtomicI64::new(i64::MAX);
    type Gathered = (Vec<(Vec<Event>, Vec<String>)>, Vec<WatchLog>, usize);
    let (results, watch_logs, faults) = std::thread::scope(|s| -> io::Result<Gathered> {
        let watchers: Vec<_> = (0..cfg.nodes)
            .map(|home| {
                let (endpoints, watch_stop, final_revision) =
                    (endpoints.clone(), &watch_stop, &final_revision);
                s.spawn(move || {
                    follow(
                        home,
                        endpoints,
                        watch_stop,
                        final_revision,
                        Duration::from_secs(15),
                    )
                })
            })
            .collect();
        let workers: Vec<_> = (0..cfg.clients)
            .map(|id| {
                let mut mine = endpoints.clone();
                mine.rotate_left(id % endpoints.len());
                let worker_rng = rng.fork();
                let stop = &stop;
                s.spawn(move || worker(id, mine, cfg, start, stop, worker_rng))
            })
            .collect();
        let outcome = run_nemesis(&mut db, cfg, &mut rng, start, &mut nemesis_log);
        stop.store(true, Ordering::SeqCst);
        let results = workers
            .into_iter()
            .map(|w| w.join().expect("a client thread panicked"))
            .collect();
        // The watchers stop once they reached the store's revision (or 15 s after this).
        match current_revision(&endpoints) {
            Ok(r) => final_revision.store(r, Ordering::SeqCst),
            Err(e) => nemesis_log.push(format!("could not read the final revision: {e}")),
        }
        watch_stop.store(true, Ordering::SeqCst);
        let logs = watchers
            .into_iter()
            .map(|w| w.join().expect("a watcher thread panicked"))
            .collect();
        outcome.map(|faults| (results, logs, faults))
    })?;

    let mut history = Vec::new();
    let mut garbled = Vec::new();
    for (events, g) in results {
        history.extend(events);
        garbled.extend(g);
    }
    history.sort_by_key(|e| e.invoked);
    let ok = history
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Ok(_)))
        .count();
    let failed = history
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Failed))
        .count();
    let indeterminate = history.len() - ok - failed;
    let mut file = io::BufWriter::new(std::fs::File::create(cfg.dir.join("history.txt"))?);
    for e in &history {
        writeln!(file, "{e:?}")?;
    }
    file.flush()?;
    std::fs::write(cfg.dir.join("nemesis.txt"), nemesis_log.join("\n") + "\n")?;
    let verdict = check(&history, cfg.check_limit);
    let final_revision = final_revision.load(Ordering::SeqCst);
    let watch_problems = if final_revision == i64::MAX {
        vec!["the final revision could not be read".to_string()]
    } else {
        check_watches(&watch_logs, final_revision, &history)
    };
    Ok(Report {
        seed: cfg.seed,
        verdict,
        history,
        ok,
        failed,
        indeterminate,
        garbled,
        watch_problems,
        watch_changes: watch_logs.iter().map(|l| l.changes.len()).sum(),
        watch_resumes: watch_logs.iter().map(|l| l.resumes).sum(),
        faults,
        nemesis: nemesis_log,
        dir: cfg.dir.clone(),
    })
}

fn run_nemesis(
    db: &mut Db,
    cfg: &TestConfig,
    rng: &mut Rng,
    start: Instant,
    log: &mut Vec<String>,
) -> io::Result<usize> {
    let stamp = |what: String| format!("{:>8.3}s {what}", start.elapsed().as_secs_f64());
    let faults_end = start + cfg.duration;
    let mut faults = 0;
    while !cfg.faults.is_empty() && Instant::now() + 2 * cfg.fault_interval <= faults_end {
        std::thread::sleep(cfg.fault_interval);
        let (injected, what) = inject(db, &cfg.faults, rng)?;
        faults += 1;
        log.push(stamp(what));
        std::thread::sleep(cfg.fault_interval);
        let what = undo(db, injected)?;
        log.push(stamp(what));
    }
    if let Some(rest) = faults_end.checked_duration_since(Instant::now()) {
        std::thread::sleep(rest);
    }
    db.recover_all()?;
    log.push(stamp("recover all".to_string()));
    db.wait_for_leader(Duration::from_secs(30))
        .map_err(|e| io::Error::other(format!("{e} after recovering\n{}", db.log_tails(30))))?;
    std::thread::sleep(cfg.quiet);
    Ok(faults)
}

/// One client: random operations on the current registers until told to stop.
fn worker(
    id: usize,
    endpoints: Vec<String>,
    cfg: &TestConfig,
    start: Instant,
    stop: &AtomicBool,
    mut rng: Rng,
) -> (Vec<Event>, Vec<String>) {
    let mut client = RegisterClient::new(endpoints, cfg.call_timeout);
    client.serializable_reads = cfg.serializable_reads;
    let mut events = Vec::new();
    // Jepsen's rule: after an indeterminate operation the process is gone (its operation may
    // still be in flight), and the thread goes on as a new process.
    let mut process = id as u64;
    let mut next_value = 0u64;
    let mut last_seen: HashMap<u64, u64> = HashMap::new();
    let ns = |t: Instant| t.duration_since(start).as_nanos() as u64;
    while !stop.load(Ordering::SeqCst) {
        let period = (start.elapsed().as_nanos() / cfg.key_period.as_nanos().max(1)) as u64;
        let key = period * cfg.keys + rng.below(cfg.keys);
        let mut fresh = || {
            next_value += 1;
            // Unique across clients, and never one of the small numbers a blind CAS expects.
            ((id as u64 + 1) << 40) | next_value
        };
        let op = match rng.below(100) {
            0..=44 => Op::Read,
            45..=74 => Op::Write(fresh()),
            75..=94 => Op::Cas {
                expect: last_seen.get(&key).copied().unwrap_or_else(|| rng.below(3)),
                new: fresh(),
            },
            _ => Op::Delete,
        };
        let invoked = Instant::now();
        let outcome = client.invoke(key, &op);
        let returned = Instant::now();
        match (&op, &outcome) {
            (Op::Read, Outcome::Ok(OkValue::Read(Some(v)))) => {
                last_seen.insert(key, *v);
            }
            (Op::Write(v), Outcome::Ok(_))
            | (Op::Cas { new: v, .. }, Outcome::Ok(OkValue::Cas(true))) => {
                last_seen.insert(key, *v);
            }
            _ => {}
        }
        let indeterminate = matches!(outcome, Outcome::Indeterminate);
        events.push(Event {
            client: process,
            key,
            op,
            invoked: ns(invoked),
            returned: ns(returned),
            outcome,
        });
        if indeterminate {
            process += cfg.clients as u64;
        }
        std::thread::sleep(cfg.op_delay);
    }
    (events, client.garbled)
}
