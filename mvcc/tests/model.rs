//! The model test: random operation sequences applied to the store (persisted in keel-btree)
//! and to a simple reference model; every response must be equal, including reads at old
//! revisions, after compaction, and after closing and reopening the store at random points
//! (with the last batch re-applied, which must be a no-op).
//!
//! Batches are applied either durably (`apply_batch`) or in memory only
//! (`apply_batch_deferred`), interleaved at random with `commit_pending`, reopen-after-commit
//! and "crashes": the store is dropped *without* committing and reopened at its durable index,
//! and the lost log entries are applied again; their results, the reads and the watch events
//! must be exactly the model's. A batch may also be applied while a `commit_pending` (on
//! another thread) is held in its backend commit: results and reads during the in-flight
//! commit, and everything after it, must still be the model's.

mod common;

use common::model::Model;
use common::*;
use keel_mvcc::backend::{Backend, BackendRead, WriteBatch};
use keel_mvcc::btree_backend::BtreeBackend;
use keel_mvcc::*;
use proptest::prelude::*;
use std::sync::{mpsc, Arc, Mutex};

/// Set to hold the next backend commit: it signals the first sender and waits on the receiver.
type Hold = Arc<Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>>;

/// keel-btree whose next commit can be held "in fsync" (see [`Hold`]).
struct HeldBackend {
    inner: BtreeBackend,
    hold: Hold,
}

impl Backend for HeldBackend {
    fn read(&self) -> Result<Box<dyn BackendRead + '_>, Error> {
        self.inner.read()
    }
    fn commit(&self, batch: &WriteBatch) -> Result<(), Error> {
        let held = self.hold.lock().unwrap().take();
        if let Some((entered, release)) = held {
            entered.send(()).unwrap();
            release.recv().unwrap();
        }
        self.inner.commit(batch)
    }
    fn size(&self) -> (u64, u64) {
        self.inner.size()
    }
    fn snapshot_to(&self, w: &mut dyn std::io::Write) -> Result<u64, Error> {
        self.inner.snapshot_to(w)
    }
    fn defragment(&self) -> Result<(), Error> {
        self.inner.defragment()
    }
}

fn open_held(dir: &TempDir, hold: &Hold) -> Store {
    let backend = HeldBackend {
        inner: BtreeBackend::open(&dir.db()).expect("open btree"),
        hold: hold.clone(),
    };
    Store::open(Box::new(backend), StoreConfig::default()).expect("open store")
}

const KEYS: &[&str] = &["a", "a/1", "a/2", "b", "b/1", "c"];

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(KEYS).prop_map(|k| k.as_bytes().to_vec())
}

/// range_end choices: single key, prefix, from-key, explicit, inverted (empty range).
fn range_end(k: Vec<u8>) -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let mut pre = k.clone();
    *pre.last_mut().unwrap() += 1;
    prop_oneof![
        3 => Just((k.clone(), vec![])),
        2 => Just((k.clone(), pre)),
        1 => Just((k.clone(), vec![0])),
        1 => Just((k.clone(), b"b/2".to_vec())),
        1 => Just((vec![0], vec![0])),
    ]
}

/// A revision selector resolved against the current revision when the op runs.
#[derive(Debug, Clone, Copy)]
enum RevSel {
    Zero,
    Back(i64),
    Future,
    Negative,
}

fn rev_sel() -> impl Strategy<Value = RevSel> {
    prop_oneof![
        4 => Just(RevSel::Zero),
        4 => (0i64..8).prop_map(RevSel::Back),
        1 => Just(RevSel::Future),
        1 => Just(RevSel::Negative),
    ]
}

fn resolve(sel: RevSel, cur: i64) -> i64 {
    match sel {
        RevSel::Zero => 0,
        RevSel::Back(n) => (cur - n).max(1),
        RevSel::Future => cur + 1,
        RevSel::Negative => -1,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: Vec<u8>,
        value: u8,
        lease: i64,
        prev_kv: bool,
        ignore_value: bool,
        ignore_lease: bool,
    },
    Delete {
        key: Vec<u8>,
        end: Vec<u8>,
        prev_kv: bool,
    },
    Range(RangeSpec),
    Txn(TxnSpec),
    Compact(RevSel),
    Grant {
        id: i64,
        ttl: i64,
    },
    Revoke {
        id: i64,
    },
}

#[derive(Debug, Clone)]
struct RangeSpec {
    key: Vec<u8>,
    end: Vec<u8>,
    limit: i64,
    rev: RevSel,
    sort: (u8, u8),
    keys_only: bool,
    count_only: bool,
    filters: [u8; 4],
}

/// (key, range_end, result selector, target selector, value).
type CompareSpec = (Vec<u8>, Vec<u8>, u8, u8, i64);

#[derive(Debug, Clone)]
struct TxnSpec {
    compares: Vec<CompareSpec>,
    success: Vec<Op>,
    failure: Vec<Op>,
    nested: Option<Box<TxnSpec>>,
}

fn range_spec() -> impl Strategy<Value = RangeSpec> {
    (
        key().prop_flat_map(range_end),
        0i64..4,
        rev_sel(),
        (0u8..3, 0u8..5),
        any::<bool>(),
        prop::bool::weighted(0.15),
        [0u8..12, 0u8..12, 0u8..12, 0u8..12],
    )
        .prop_map(
            |((key, end), limit, rev, sort, keys_only, count_only, f)| RangeSpec {
                key,
                end,
                limit,
                rev,
                sort,
                keys_only,
                count_only,
                filters: f,
            },
        )
}

fn put_op() -> impl Strategy<Value = Op> {
    (
        key(),
        0u8..4,
        prop_oneof![3 => Just(0i64), 1 => 1i64..4],
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(key, value, lease, prev_kv, iv, il)| Op::Put {
            key,
            value,
            lease: if il { 0 } else { lease },
            prev_kv,
            ignore_value: iv,
            ignore_lease: il,
        })
}

fn delete_op() -> impl Strategy<Value = Op> {
    (key().prop_flat_map(range_end), any::<bool>()).prop_map(|((key, end), prev_kv)| Op::Delete {
        key,
        end,
        prev_kv,
    })
}

fn simple_op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => put_op(), 1 => delete_op(), 1 => range_spec().prop_map(Op::Range)]
}

fn txn_spec(depth: u32) -> BoxedStrategy<TxnSpec> {
    let cmp = (key().prop_flat_map(range_end), 0u8..4, 0u8..5, 0i64..6)
        .prop_map(|((k, e), res, tgt, v)| (k, e, res, tgt, v));
    let nested = if depth == 0 {
        Just(None).boxed()
    } else {
        prop::option::weighted(0.3, txn_spec(depth - 1).prop_map(Box::new)).boxed()
    };
    (
        prop::collection::vec(cmp, 0..3),
        prop::collection::vec(simple_op(), 0..4),
        prop::collection::vec(simple_op(), 0..3),
        nested,
    )
        .prop_map(|(compares, success, failure, nested)| TxnSpec {
            compares,
            success,
            failure,
            nested,
        })
        .boxed()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => put_op(),
        2 => delete_op(),
        5 => range_spec().prop_map(Op::Range),
        3 => txn_spec(1).prop_map(Op::Txn),
        1 => rev_sel().prop_map(Op::Compact),
        1 => (1i64..4, prop_oneof![Just(0i64), Just(5), Just(60), Just(MAX_LEASE_TTL + 1)]).prop_map(|(id, ttl)| Op::Grant { id, ttl }),
        1 => (1i64..4).prop_map(|id| Op::Revoke { id }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    /// Apply these ops as one batch; deferred (in memory only) if the flag is set.
    Batch(Vec<Op>, bool),
    /// Commit the deferred batches.
    Commit,
    /// Commit, close and reopen the store, then re-apply the last batch (must be skipped).
    Reopen,
    /// Drop the store without committing (a crash: deferred batches are lost), reopen it at
    /// its durable index and apply the log after it again (deferred if the flag is set).
    Crash(bool),
    /// Watch everything from a (possibly compacted) revision: exactly the model's events, or a
    /// cancel with the compaction revision.
    WatchFrom(RevSel),
    /// Apply these ops as one deferred batch while a `commit_pending` of the earlier deferred
    /// batches is held in its backend commit on another thread.
    InFlight(Vec<Op>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (prop::collection::vec(op(), 1..5), any::<bool>())
            .prop_map(|(ops, deferred)| Step::Batch(ops, deferred)),
        2 => Just(Step::Commit),
        1 => Just(Step::Reopen),
        1 => any::<bool>().prop_map(Step::Crash),
        1 => rev_sel().prop_map(Step::WatchFrom),
        2 => prop::collection::vec(op(), 1..5).prop_map(Step::InFlight),
    ]
}

/// Runs catch-up rounds and drains until the stream is quiet.
fn settle(store: &Store, stream: &WatchStream) -> Vec<WatchResponse> {
    let mut out = vec![];
    for _ in 0..10_000 {
        let left = store.sync_watchers().unwrap();
        let n = stream.drain_into(&mut out);
        if left == 0 && n == 0 {
            break;
        }
    }
    out
}

fn events_of(resps: &[WatchResponse]) -> Vec<Event> {
    resps.iter().flat_map(|r| r.events.clone()).collect()
}

const EVERYTHING: (&[u8], &[u8]) = (&[0], &[0]);

/// The events a watch starting exactly at the compaction revision `compact` gets, as in etcd
/// (`keyIndex.compact`): compacting at R removes every generation of a key that a tombstone at
/// R ends — the delete itself, and a put of that key earlier in the same revision (a txn that
/// puts a key and then deletes it) — so such a watch misses those events at R. Events of other
/// revisions, and a put at R after the delete, are kept.
fn without_generations_ended_at(events: Vec<Event>, compact: i64) -> Vec<Event> {
    let ended_at_compact = |at: usize| {
        let e = &events[at];
        e.kv.mod_revision == compact
            && events[at..].iter().any(|d| {
                d.kind == EventType::Delete && d.kv.mod_revision == compact && d.kv.key == e.kv.key
            })
    };
    (0..events.len())
        .filter(|&at| !ended_at_compact(at))
        .map(|at| events[at].clone())
        .collect()
}

/// A watcher started in the past: (stream, start revision, events so far, compaction revision
/// when it started).
type Extra = (WatchStream, i64, Vec<Event>, i64);

/// Every past-start watcher got exactly the model's events from its start to now; then they
/// are dropped (before a reopen, or at the end).
fn check_extras(extras: &mut Vec<Extra>, model: &Model) -> Result<(), TestCaseError> {
    for (_, from, got, compact) in extras.drain(..) {
        let want = without_generations_ended_at(
            model.events(EVERYTHING.0, EVERYTHING.1, from, model.rev()),
            compact,
        );
        prop_assert_eq!(got, want, "watcher from {}", from);
    }
    Ok(())
}

/// A watcher on every key that lives across the whole run, resumed after each reopen from the
/// revision after the last event it received (what an etcd client does).
fn follow(store: &Store, from: i64) -> WatchStream {
    let stream = store.watch_stream(|| {});
    let req = WatchCreateRequest {
        key: EVERYTHING.0.to_vec(),
        range_end: EVERYTHING.1.to_vec(),
        start_revision: from,
        ..Default::default()
    };
    stream.watch(&req).unwrap();
    stream
}

fn to_range(s: &RangeSpec, cur: i64) -> RangeRequest {
    let sort_order = [SortOrder::None, SortOrder::Ascend, SortOrder::Descend][s.sort.0 as usize];
    let sort_target = [
        SortTarget::Key,
        SortTarget::Version,
        SortTarget::Create,
        SortTarget::Mod,
        SortTarget::Value,
    ][s.sort.1 as usize];
    let f = |x: u8| if x < 8 { 0 } else { (x as i64 - 6).min(cur) };
    RangeRequest {
        key: s.key.clone(),
        range_end: s.end.clone(),
        limit: s.limit,
        revision: resolve(s.rev, cur),
        sort_order,
        sort_target,
        keys_only: s.keys_only,
        count_only: s.count_only,
        min_mod_revision: f(s.filters[0]),
        max_mod_revision: f(s.filters[1]) * 2,
        min_create_revision: f(s.filters[2]),
        max_create_revision: f(s.filters[3]) * 2,
    }
}

fn to_op(op: &Op, cur: i64) -> RequestOp {
    match to_request(op, cur) {
        Request::Put(p) => RequestOp::Put(p),
        Request::DeleteRange(d) => RequestOp::DeleteRange(d),
        Request::Range(r) => RequestOp::Range(r),
        Request::Txn(t) => RequestOp::Txn(t),
        other => panic!("not a txn op: {other:?}"),
    }
}

fn to_txn(t: &TxnSpec, cur: i64) -> TxnRequest {
    let compare = t
        .compares
        .iter()
        .map(|(k, e, res, tgt, v)| Compare {
            key: k.clone(),
            range_end: e.clone(),
            result: [
                CompareResult::Equal,
                CompareResult::Greater,
                CompareResult::Less,
                CompareResult::NotEqual,
            ][*res as usize],
            target: match tgt {
                0 => CompareTarget::Version(*v),
                1 => CompareTarget::Create(*v * 2),
                2 => CompareTarget::Mod(*v * 2),
                3 => CompareTarget::Value(vec![b'0' + *v as u8]),
                _ => CompareTarget::Lease(*v % 4),
            },
        })
        .collect();
    let mut success: Vec<RequestOp> = t.success.iter().map(|o| to_op(o, cur)).collect();
    if let Some(n) = &t.nested {
        success.push(RequestOp::Txn(to_txn(n, cur)));
    }
    TxnRequest {
        compare,
        success,
        failure: t.failure.iter().map(|o| to_op(o, cur)).collect(),
    }
}

fn to_request(op: &Op, cur: i64) -> Request {
    match op {
        Op::Put {
            key,
            value,
            lease,
            prev_kv,
            ignore_value,
            ignore_lease,
        } => Request::Put(PutRequest {
            key: key.clone(),
            value: if *ignore_value {
                vec![]
            } else {
                vec![b'0' + value]
            },
            lease: *lease,
            prev_kv: *prev_kv,
            ignore_value: *ignore_value,
            ignore_lease: *ignore_lease,
        }),
        Op::Delete { key, end, prev_kv } => Request::DeleteRange(DeleteRangeRequest {
            key: key.clone(),
            range_end: end.clone(),
            prev_kv: *prev_kv,
        }),
        Op::Range(s) => Request::Range(to_range(s, cur)),
        Op::Txn(t) => Request::Txn(to_txn(t, cur)),
        Op::Compact(sel) => Request::Compact(CompactionRequest {
            revision: resolve(*sel, cur),
            physical: true,
        }),
        Op::Grant { id, ttl } => Request::LeaseGrant(LeaseGrantRequest { id: *id, ttl: *ttl }),
        Op::Revoke { id } => Request::LeaseRevoke(LeaseRevokeRequest { id: *id }),
    }
}

/// Reads every key at every revision the model still serves, and compares.
fn compare_all_reads(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let cur = model.rev();
    prop_assert_eq!(store.current_revision(), cur);
    for rev in [
        0,
        model.compact.max(1),
        (cur - 1).max(1),
        cur,
        model.compact - 1,
        cur + 1,
    ] {
        let req = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision: rev,
            ..Default::default()
        };
        prop_assert_eq!(
            store.range(&req),
            model.range(&req, cur, None),
            "full read at rev {}",
            rev
        );
    }
    Ok(())
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = TempDir::new("model");
    let hold: Hold = Arc::default();
    let mut store = open_held(&dir, &hold);
    let mut model = Model::new();
    let mut idx = 0u64;
    let mut last_batch: Vec<(u64, Request)> = vec![];
    let mut follower = follow(&store, 0);
    let mut followed: Vec<Event> = vec![];
    let mut extras: Vec<Extra> = vec![];
    // The Raft log: every entry with the result it must give when applied.
    let mut log: Vec<(u64, Request, Result<Response, Error>)> = vec![];
    for step in steps {
        match step {
            Step::Batch(ops, deferred) => {
                // Requests are built against the revision before the batch; later requests of
                // the batch may therefore name revisions that became old or stay future.
                let cur = model.rev();
                let entries: Vec<(u64, Request)> = ops
                    .iter()
                    .map(|op| {
                        idx += 1;
                        (idx, to_request(op, cur))
                    })
                    .collect();
                let durable = store.durable_index();
                let got = if deferred {
                    store.apply_batch_deferred(&entries)
                } else {
                    store.apply_batch(&entries)
                };
                let want: Vec<_> = entries.iter().map(|(i, r)| model.apply(*i, r)).collect();
                for (n, (g, w)) in got.iter().zip(&want).enumerate() {
                    prop_assert_eq!(g, w, "entry {} of batch: {:?}", n, entries[n].1);
                }
                prop_assert_eq!(store.consistent_index(), model.consistent_index);
                if deferred {
                    prop_assert_eq!(store.durable_index(), durable, "deferred batch committed");
                    prop_assert!(store.pending_entries() >= entries.len());
                } else {
                    // apply_batch commits the earlier deferred batches with its own
                    prop_assert_eq!(store.durable_index(), model.consistent_index);
                    prop_assert_eq!(store.pending_entries(), 0);
                }
                log.extend(
                    entries
                        .iter()
                        .cloned()
                        .zip(want)
                        .map(|((i, r), w)| (i, r, w)),
                );
                last_batch = entries;
            }
            Step::InFlight(ops) => {
                let pending = store.pending_entries();
                let durable_before = store.durable_index();
                let index_before = store.consistent_index();
                let (entered_tx, entered_rx) = mpsc::channel();
                let (release_tx, release_rx) = mpsc::channel();
                *hold.lock().unwrap() = Some((entered_tx, release_rx));
                let committer = {
                    let store = store.clone();
                    std::thread::spawn(move || store.commit_pending())
                };
                let mut committer = Some(committer);
                if pending > 0 {
                    entered_rx
                        .recv_timeout(std::time::Duration::from_secs(20))
                        .expect("commit reached the backend");
                    prop_assert_eq!(store.in_flight_entries(), pending);
                } else {
                    // nothing to commit: it returns at once, without the backend
                    let stats = committer.take().unwrap().join().unwrap().unwrap();
                    prop_assert_eq!(stats.entries, 0);
                    hold.lock().unwrap().take();
                }
                let cur = model.rev();
                let entries: Vec<(u64, Request)> = ops
                    .iter()
                    .map(|op| {
                        idx += 1;
                        (idx, to_request(op, cur))
                    })
                    .collect();
                let got = store.apply_batch_deferred(&entries);
                let want: Vec<_> = entries.iter().map(|(i, r)| model.apply(*i, r)).collect();
                for (n, (g, w)) in got.iter().zip(&want).enumerate() {
                    prop_assert_eq!(g, w, "entry {} of in-flight batch: {:?}", n, entries[n].1);
                }
                // reads during the in-flight commit see everything applied
                compare_all_reads(&store, &model)?;
                if pending > 0 {
                    prop_assert_eq!(store.durable_index(), durable_before);
                    prop_assert_eq!(store.pending_entries(), pending + entries.len());
                }
                if let Some(committer) = committer {
                    release_tx.send(()).unwrap();
                    let stats = committer.join().unwrap().unwrap();
                    prop_assert_eq!(stats.entries, pending);
                    prop_assert_eq!(store.durable_index(), index_before);
                }
                prop_assert_eq!(store.pending_entries(), entries.len());
                log.extend(
                    entries
                        .iter()
                        .cloned()
                        .zip(want)
                        .map(|((i, r), w)| (i, r, w)),
                );
                last_batch = entries;
            }
            Step::Commit => {
                let pending = store.pending_entries();
                let stats = store.commit_pending().unwrap();
                prop_assert_eq!(stats.entries, pending);
                if pending > 0 {
                    prop_assert_eq!(stats.consistent_index, model.consistent_index);
                }
                prop_assert_eq!(store.pending_entries(), 0);
                prop_assert_eq!(store.durable_index(), model.consistent_index);
                prop_assert_eq!(store.commit_pending().unwrap().entries, 0);
            }
            Step::Crash(deferred) => {
                check_extras(&mut extras, &model)?;
                let durable = store.durable_index();
                drop(follower);
                drop(store); // no commit: the deferred batches are lost
                store = open_held(&dir, &hold);
                prop_assert_eq!(store.consistent_index(), durable);
                prop_assert_eq!(store.durable_index(), durable);
                // The server replays the log after the durable index.
                let lost: Vec<_> = log.iter().filter(|(i, _, _)| *i > durable).collect();
                let entries: Vec<(u64, Request)> =
                    lost.iter().map(|(i, r, _)| (*i, r.clone())).collect();
                // a watcher resumed after its last event must get the replayed events once
                let resume = followed.last().map_or(0, |e| e.kv.mod_revision + 1);
                follower = follow(&store, resume);
                let got = if deferred {
                    store.apply_batch_deferred(&entries)
                } else {
                    store.apply_batch(&entries)
                };
                for (g, (i, r, w)) in got.iter().zip(&lost) {
                    prop_assert_eq!(g, w, "replayed entry {}: {:?}", i, r);
                }
                prop_assert_eq!(store.consistent_index(), model.consistent_index);
            }
            Step::WatchFrom(sel) => {
                let from = resolve(sel, model.rev()).max(1);
                let stream = store.watch_stream(|| {});
                let req = WatchCreateRequest {
                    key: vec![0],
                    range_end: vec![0],
                    start_revision: from,
                    ..Default::default()
                };
                let id = stream.watch(&req).unwrap();
                let resps = settle(&store, &stream);
                prop_assert!(resps[0].created && resps[0].watch_id == id);
                if from < model.compact {
                    prop_assert!(
                        resps
                            .iter()
                            .any(|r| r.canceled && r.compact_revision == model.compact),
                        "no cancel: {:?}",
                        resps
                    );
                    prop_assert!(events_of(&resps).is_empty());
                } else {
                    let want = without_generations_ended_at(
                        model.events(EVERYTHING.0, EVERYTHING.1, from, model.rev()),
                        model.compact,
                    );
                    prop_assert_eq!(events_of(&resps), want);
                    // keep it: later writes must reach it through the synced path
                    extras.push((stream, from, events_of(&resps), model.compact));
                }
            }
            Step::Reopen => {
                check_extras(&mut extras, &model)?;
                store.commit_pending().unwrap();
                drop(follower);
                drop(store);
                store = open_held(&dir, &hold);
                let resume = followed.last().map_or(0, |e| e.kv.mod_revision + 1);
                follower = follow(&store, resume);
                prop_assert_eq!(store.consistent_index(), model.consistent_index);
                let status = store.status();
                prop_assert_eq!(status.compact_revision, model.compact);
                let again = store.apply_batch(&last_batch);
                for (r, (i, _)) in again.iter().zip(&last_batch) {
                    prop_assert!(
                        matches!(r, Err(Error::AlreadyApplied { index, .. }) if index == i),
                        "re-applied {:?}",
                        r
                    );
                }
                prop_assert_eq!(
                    store.lease_list(),
                    model.leases.keys().copied().collect::<Vec<_>>()
                );
            }
        }
        compare_all_reads(&store, &model)?;
        followed.extend(events_of(&settle(&store, &follower)));
        for (stream, _, got, _) in &mut extras {
            got.extend(events_of(&settle(&store, stream)));
        }
    }
    check_extras(&mut extras, &model)?;
    // The long-lived watcher saw every event exactly once, in order, across reopens.
    prop_assert_eq!(
        &followed,
        &model.events(EVERYTHING.0, EVERYTHING.1, 2, model.rev())
    );
    // Leases' attached keys after everything (and after a final commit and reopen).
    store.commit_pending().unwrap();
    drop(follower);
    drop(store);
    let store = open(&dir);
    compare_all_reads(&store, &model)?;
    for (id, ttl) in &model.leases {
        let got = store.lease_time_to_live(*id, true, 0).unwrap();
        let mut want: Vec<Vec<u8>> = model
            .states
            .last()
            .unwrap()
            .values()
            .filter(|kv| kv.lease == *id)
            .map(|kv| kv.key.clone())
            .collect();
        want.sort();
        prop_assert_eq!(got.keys, want);
        prop_assert_eq!(got.granted_ttl, *ttl);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 96 cases by default; KEEL_MODEL_CASES=N to choose, KEEL_SOAK=1 for a 3,000-case soak.
        cases: std::env::var("KEEL_MODEL_CASES").ok().and_then(|v| v.parse().ok())
            .unwrap_or(if std::env::var_os("KEEL_SOAK").is_some() { 3000 } else { 96 }),
        .. ProptestConfig::default()
    })]

    #[test]
    fn store_matches_reference_model(steps in prop::collection::vec(step(), 1..40)) {
        run(steps)?;
    }
}
