//! Watch guarantees: ordered, no gaps, no duplicates across the catch-up -> synced hand-over,
//! resume from a revision, cancel on compaction, slow consumers, filters, prev_kv, progress,
//! and 10,000 watchers.

mod common;

use common::model::Model;
use common::*;
use keel_mvcc::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn watch_req(key: &str, end: &[u8], start: i64) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.into(),
        range_end: end.to_vec(),
        start_revision: start,
        ..Default::default()
    }
}

/// Drains a stream into (events per watch id, control responses).
fn drain(stream: &WatchStream, events: &mut Vec<Event>, controls: &mut Vec<WatchResponse>) {
    let mut out = vec![];
    stream.drain_into(&mut out);
    for r in out {
        if r.events.is_empty() {
            controls.push(r);
        } else {
            // a revision is never split across responses
            if let (Some(last), Some(first)) = (events.last(), r.events.first()) {
                assert!(
                    last.kv.mod_revision < first.kv.mod_revision,
                    "revision split or reordered across responses: {} then {}",
                    last.kv.mod_revision,
                    first.kv.mod_revision
                );
            }
            events.extend(r.events);
        }
    }
}

/// Compares event lists with a short message (the lists are long).
fn assert_same_events(got: &[Event], want: &[Event]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "first difference at event {i}");
    }
    assert_eq!(got.len(), want.len(), "event counts differ");
}

/// Applies the same requests to the store and the model.
struct Env {
    _dir: TempDir,
    store: Store,
    model: Model,
    idx: u64,
}

impl Env {
    fn new(config: StoreConfig) -> Env {
        let dir = TempDir::new("watch");
        let store = Store::open_path(dir.db(), config).unwrap();
        Env {
            _dir: dir,
            store,
            model: Model::new(),
            idx: 0,
        }
    }

    fn apply(&mut self, reqs: Vec<Request>) {
        let entries: Vec<(u64, Request)> = reqs
            .into_iter()
            .map(|r| {
                self.idx += 1;
                (self.idx, r)
            })
            .collect();
        let got = self.store.apply_batch(&entries);
        for ((i, r), g) in entries.iter().zip(got) {
            assert_eq!(g, self.model.apply(*i, r));
        }
    }
}

fn varied_writes(i: usize) -> Vec<Request> {
    let k = format!("k/{}", i % 7);
    match i % 5 {
        0..=2 => vec![put(&k, &format!("v{i}"))],
        3 => vec![Request::DeleteRange(DeleteRangeRequest {
            key: k.into(),
            ..Default::default()
        })],
        _ => vec![Request::Txn(TxnRequest {
            success: vec![
                RequestOp::Put(PutRequest {
                    key: format!("k/{}", (i + 1) % 7).into(),
                    value: b"t".to_vec(),
                    ..Default::default()
                }),
                RequestOp::Put(PutRequest {
                    key: format!("other/{i}").into(),
                    value: b"o".to_vec(),
                    ..Default::default()
                }),
                RequestOp::Put(PutRequest {
                    key: format!("k/{}", (i + 3) % 7).into(),
                    value: b"u".to_vec(),
                    ..Default::default()
                }),
            ],
            ..Default::default()
        })],
    }
}

#[test]
fn catch_up_then_synced_has_no_gap_and_no_duplicate() {
    let mut env = Env::new(StoreConfig {
        watch_batch_max_revs: 50,
        ..Default::default()
    });
    for i in 0..400 {
        env.apply(varied_writes(i));
    }
    let stream = env.store.watch_stream(|| {});
    let id = stream.watch(&watch_req("k/", b"k0", 3)).unwrap();
    assert_eq!(id, 0, "etcd's auto watch IDs start at 0");
    let (mut events, mut controls) = (vec![], vec![]);
    // Interleave writes, catch-up rounds and drains: the watcher crosses from unsynced to
    // synced while writes keep coming.
    for i in 400..700 {
        env.apply(varied_writes(i));
        if i % 3 == 0 {
            env.store.sync_watchers().unwrap();
        }
        drain(&stream, &mut events, &mut controls);
    }
    while env.store.sync_watchers().unwrap() > 0 {}
    drain(&stream, &mut events, &mut controls);
    assert_same_events(&events, &env.model.events(b"k/", b"k0", 3, env.model.rev()));
    assert!(controls[0].created);
    assert_eq!(env.store.status().watchers_unsynced, 0);
}

#[test]
fn slow_consumer_falls_back_to_catch_up_and_loses_nothing() {
    let notified = Arc::new(AtomicUsize::new(0));
    let n2 = notified.clone();
    let mut env = Env::new(StoreConfig {
        watch_stream_capacity: 4,
        ..Default::default()
    });
    let stream = env.store.watch_stream(move || {
        n2.fetch_add(1, Ordering::SeqCst);
    });
    stream.watch(&watch_req("k/", b"k0", 0)).unwrap();
    let start = env.model.rev() + 1;
    // Nobody drains: the queue fills, the watcher is moved to the unsynced group, and writes
    // keep going without blocking.
    for i in 0..100 {
        env.apply(varied_writes(i));
    }
    assert!(
        env.store.status().watchers_unsynced == 1,
        "watcher should have fallen behind"
    );
    assert!(notified.load(Ordering::SeqCst) > 0);
    let (mut events, mut controls) = (vec![], vec![]);
    for _ in 0..1000 {
        drain(&stream, &mut events, &mut controls);
        if env.store.sync_watchers().unwrap() == 0 && stream.is_empty() {
            break;
        }
    }
    assert_eq!(env.store.status().watchers_unsynced, 0);
    // more writes once synced again, drained as they come
    for i in 100..120 {
        env.apply(varied_writes(i));
        drain(&stream, &mut events, &mut controls);
    }
    assert_eq!(env.store.status().watchers_unsynced, 0);
    assert_same_events(
        &events,
        &env.model.events(b"k/", b"k0", start, env.model.rev()),
    );
}

#[test]
fn resume_from_revision_and_cancel_on_compaction() {
    let mut env = Env::new(StoreConfig::default());
    for i in 0..50 {
        env.apply(varied_writes(i));
    }
    let stream = env.store.watch_stream(|| {});
    // resume: a client that saw up to revision 20 restarts from 21
    let a = stream.watch(&watch_req("k/", b"k0", 21)).unwrap();
    env.store.sync_watchers().unwrap();
    let (mut events, mut controls) = (vec![], vec![]);
    drain(&stream, &mut events, &mut controls);
    assert_eq!(events, env.model.events(b"k/", b"k0", 21, env.model.rev()));
    assert!(stream.cancel(a));
    assert!(!stream.cancel(a));

    env.apply(vec![Request::Compact(CompactionRequest {
        revision: 30,
        physical: true,
    })]);
    let b = stream.watch(&watch_req("k/", b"k0", 29)).unwrap();
    let c = stream.watch(&watch_req("k/", b"k0", 30)).unwrap();
    env.store.sync_watchers().unwrap();
    let (mut events, mut controls) = (vec![], vec![]);
    drain(&stream, &mut events, &mut controls);
    let cancel: Vec<_> = controls
        .iter()
        .filter(|r| r.canceled && r.watch_id == b)
        .collect();
    assert_eq!(cancel.len(), 1);
    assert_eq!(cancel[0].compact_revision, 30);
    assert!(
        !controls.iter().any(|r| r.canceled && r.watch_id == c),
        "start == compact revision is allowed"
    );
    assert!(events.iter().all(|e| e.kv.mod_revision >= 30));
}

#[test]
fn filters_prev_kv_and_future_start() {
    let mut env = Env::new(StoreConfig::default());
    env.apply(vec![put("a", "1")]);
    let stream = env.store.watch_stream(|| {});
    let cur = env.model.rev();
    let all = stream
        .watch(&WatchCreateRequest {
            key: b"a".to_vec(),
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    let noput = stream
        .watch(&WatchCreateRequest {
            key: b"a".to_vec(),
            filters: vec![WatchFilter::NoPut],
            ..Default::default()
        })
        .unwrap();
    let future = stream
        .watch(&WatchCreateRequest {
            key: b"a".to_vec(),
            start_revision: cur + 3,
            ..Default::default()
        })
        .unwrap();
    env.apply(vec![put("a", "2")]);
    env.apply(vec![Request::DeleteRange(DeleteRangeRequest {
        key: b"a".to_vec(),
        ..Default::default()
    })]);
    env.apply(vec![put("a", "3")]);
    let mut out = vec![];
    stream.drain_into(&mut out);
    let evs = |id: i64| -> Vec<Event> {
        out.iter()
            .filter(|r| r.watch_id == id)
            .flat_map(|r| r.events.clone())
            .collect()
    };
    let a = evs(all);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(a[1].kind, EventType::Delete);
    assert_eq!(
        a[1].kv,
        KeyValue {
            key: b"a".to_vec(),
            mod_revision: cur + 2,
            ..Default::default()
        }
    );
    assert_eq!(a[1].prev_kv.as_ref().unwrap().value, b"2");
    assert_eq!(a[2].prev_kv, None, "a creation has no prev_kv");
    assert_eq!(a[2].kv.version, 1, "version restarts after a delete");
    let d = evs(noput);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, EventType::Delete);
    let f = evs(future);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kv.mod_revision, cur + 3);
}

#[test]
fn duplicate_ids_empty_ranges_and_progress() {
    let mut env = Env::new(StoreConfig::default());
    env.apply(vec![put("a", "1"), put("b", "1")]);
    let stream = env.store.watch_stream(|| {});
    assert_eq!(
        stream.watch(&WatchCreateRequest {
            key: b"a".to_vec(),
            watch_id: 7,
            ..Default::default()
        }),
        Ok(7)
    );
    assert_eq!(
        stream.watch(&WatchCreateRequest {
            key: b"a".to_vec(),
            watch_id: 7,
            ..Default::default()
        }),
        Err(Error::WatcherDuplicateId)
    );
    assert_eq!(
        stream.watch(&watch_req("b", b"a", 0)),
        Err(Error::EmptyWatcherRange)
    );
    // a catching-up watcher delays the stream-wide progress response
    stream.watch(&watch_req("a", b"", 1)).unwrap();
    stream.request_progress();
    let mut out = vec![];
    stream.drain_into(&mut out);
    assert!(!out.iter().any(|r| r.watch_id == -1));
    env.store.sync_watchers().unwrap();
    out.clear();
    stream.drain_into(&mut out);
    let progress: Vec<_> = out.iter().filter(|r| r.watch_id == -1).collect();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].revision, env.model.rev());
    assert!(progress[0].is_progress_notify());
}

#[test]
fn ten_thousand_watchers_each_get_exactly_their_events() {
    let mut env = Env::new(StoreConfig::default());
    let stream = env.store.watch_stream(|| {});
    let n = 10_000;
    for i in 0..n {
        stream
            .watch(&watch_req(&format!("key/{i:05}"), b"", 0))
            .unwrap();
    }
    // 100 prefix watchers over groups of 100 keys
    for g in 0..100 {
        let start = format!("key/{:03}", g);
        let end = format!("key/{:03}", g + 1);
        stream.watch(&watch_req(&start, end.as_bytes(), 0)).unwrap();
    }
    let mut out = vec![];
    stream.drain_into(&mut out);
    assert_eq!(out.len(), n + 100);
    // 2,000 writes in batches of 100, drained after each batch (at most 200 responses)
    out.clear();
    for b in 0..20 {
        let reqs: Vec<Request> = (0..100)
            .map(|j| put(&format!("key/{:05}", (b * 100 + j) * 5 % n), "v"))
            .collect();
        env.apply(reqs);
        stream.drain_into(&mut out);
    }
    assert_eq!(env.store.status().watchers_unsynced, 0);
    let mut per_watcher = std::collections::HashMap::<i64, usize>::new();
    for r in &out {
        *per_watcher.entry(r.watch_id).or_default() += r.events.len();
    }
    let total: usize = out.iter().map(|r| r.events.len()).sum();
    assert_eq!(
        total,
        2000 * 2,
        "each put reaches its key watcher and one prefix watcher"
    );
    for i in 0..n {
        let want = if i % 5 == 0 { 1 } else { 0 };
        assert_eq!(
            per_watcher.get(&(i as i64)).copied().unwrap_or(0),
            want,
            "watcher {i}"
        );
    }
}

/// Batches applied while no watcher is synced keep no events (an optimisation): a watcher
/// created afterwards from an old revision still gets every event from history, and one created
/// at the head gets exactly the later ones — with deferred (uncommitted) batches in between.
#[test]
fn batches_without_synced_watchers_still_reach_later_watchers() {
    let dir = TempDir::new("nowatchers");
    let store = Store::open_path(dir.db(), StoreConfig::default()).unwrap();
    let mut idx = 0u64;
    let mut deferred = |store: &Store, reqs: Vec<Request>| {
        let entries: Vec<(u64, Request)> = reqs
            .into_iter()
            .map(|r| {
                idx += 1;
                (idx, r)
            })
            .collect();
        for r in store.apply_batch_deferred(&entries) {
            r.unwrap();
        }
    };
    // No watcher at all: revisions 2..=4, only in memory.
    deferred(
        &store,
        (0..3).map(|i| put("w/a", &format!("{i}"))).collect(),
    );
    let stream = store.watch_stream(|| {});
    let from_start = stream.watch(&watch_req("w/", b"w0", 1)).unwrap();
    let at_head = stream.watch(&watch_req("w/", b"w0", 0)).unwrap();
    deferred(
        &store,
        (3..5).map(|i| put("w/b", &format!("{i}"))).collect(),
    );
    store.sync_watchers().unwrap();
    let mut out = vec![];
    stream.drain_into(&mut out);
    let revs = |id: i64| -> Vec<i64> {
        out.iter()
            .filter(|r| r.watch_id == id)
            .flat_map(|r| r.events.iter().map(|e| e.kv.mod_revision))
            .collect()
    };
    assert_eq!(revs(from_start), vec![2, 3, 4, 5, 6]);
    assert_eq!(revs(at_head), vec![5, 6]);
}
