//! Watchers: how many clients follow changes without costing a history scan each per write.
//!
//! The design is etcd's `watchable_store`:
//! * A watcher is **synced** when it has seen everything up to the current revision. Synced
//!   watchers are indexed by key (a hash map for single keys, an [`IntervalIndex`] for ranges).
//!   After each commit, `WatchHub::publish` looks up, for each event, the watchers it
//!   concerns, and pushes one response per watcher into its stream's queue. Cost per write:
//!   one hash lookup and one interval stab per event, independent of the number of watchers.
//! * A watcher is **unsynced** while it catches up from history (it started in the past, or it
//!   fell behind). `WatchHub::sync` takes up to 512 of them, scans the history window they
//!   need **once** for all of them, and hands each its events (at most 1000 revisions per
//!   round). A watcher that reaches the current revision moves to the synced group. Because a
//!   sync round runs under the store's read lock, no commit happens in the middle of it, so the
//!   hand-over has no gap and no duplicate.
//! * Queues are bounded. A synced watcher whose stream queue is full is not waited for: it is
//!   moved back to the unsynced group, positioned at its first undelivered revision, and will
//!   catch up from history once the client drains its queue. Writers never block on watchers.
//! * A watcher whose next revision has been compacted is cancelled with `compact_revision`.
//!
//! Each stream has a user-supplied `notify` function, called after responses were queued (for
//! example a `mio::Waker::wake`). It runs under internal locks: it must be quick and must not
//! call back into the store.

use crate::interval::{End, IntervalIndex};
use crate::key_index::in_range;
use crate::types::{Event, EventType, KeyValue, WatchCreateRequest, WatchFilter, WatchResponse};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// (stream, watch ID).
pub(crate) type WatcherKey = (u64, i64);

/// Looks up the key-value of `key` visible at a revision (for prev_kv); None if absent or
/// compacted.
pub(crate) type PrevLookup<'a> = dyn FnMut(&[u8], i64) -> Option<KeyValue> + 'a;

/// The queue shared between the hub (producer) and a [`crate::WatchStream`] (consumer).
pub(crate) struct StreamQueue {
    pub items: Mutex<VecDeque<WatchResponse>>,
    pub capacity: usize,
    pub notify: Box<dyn Fn() + Send + Sync>,
}

impl StreamQueue {
    /// Queues a control response (created, cancelled, progress): always accepted, so control
    /// flow is never lost; there is at most a few per watcher.
    fn push_control(&self, resp: WatchResponse) {
        self.items.lock().push_back(resp);
        (self.notify)();
    }

    /// Queues an event response if there is room.
    fn try_push(&self, resp: WatchResponse) -> bool {
        let mut q = self.items.lock();
        if q.len() >= self.capacity {
            return false;
        }
        q.push_back(resp);
        drop(q);
        (self.notify)();
        true
    }
}

struct Watcher {
    key: Vec<u8>,
    range_end: Vec<u8>,
    /// First revision not yet delivered (etcd's `minRev`).
    min_rev: i64,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    synced: bool,
}

impl Watcher {
    fn wants(&self, ev: &Event) -> bool {
        if ev.kv.mod_revision < self.min_rev {
            return false;
        }
        match ev.kind {
            EventType::Put if self.no_put => false,
            EventType::Delete if self.no_delete => false,
            _ => true,
        }
    }
}

struct StreamEntry {
    queue: Arc<StreamQueue>,
    watchers: BTreeSet<i64>,
    next_id: i64,
    progress_pending: bool,
}

/// All watchers of the store.
#[derive(Default)]
pub(crate) struct WatchHub {
    streams: HashMap<u64, StreamEntry>,
    watchers: HashMap<WatcherKey, Watcher>,
    synced_keys: HashMap<Vec<u8>, Vec<WatcherKey>>,
    synced_ranges: IntervalIndex<WatcherKey>,
    unsynced: BTreeSet<WatcherKey>,
    next_stream: u64,
    /// Round-robin position in `unsynced`.
    cursor: Option<WatcherKey>,
}

/// Renders the events a watcher gets: filters, then prev_kv when asked (not for creations).
fn render(w: &Watcher, evs: &[&Event], prev: &mut PrevLookup<'_>) -> Vec<Event> {
    evs.iter()
        .filter(|ev| w.wants(ev))
        .map(|ev| {
            let mut ev = (*ev).clone();
            if w.prev_kv && !(ev.kind == EventType::Put && ev.kv.version == 1) {
                ev.prev_kv = prev(&ev.kv.key, ev.kv.mod_revision - 1);
            }
            ev
        })
        .collect()
}

impl WatchHub {
    pub fn add_stream(&mut self, queue: Arc<StreamQueue>) -> u64 {
        self.next_stream += 1;
        let id = self.next_stream;
        self.streams.insert(
            id,
            StreamEntry {
                queue,
                watchers: BTreeSet::new(),
                next_id: 0,
                progress_pending: false,
            },
        );
        id
    }

    pub fn remove_stream(&mut self, stream: u64) {
        if let Some(entry) = self.streams.remove(&stream) {
            for id in entry.watchers {
                self.remove_watcher((stream, id));
            }
        }
    }

    pub fn counts(&self) -> (u64, u64) {
        let unsynced = self.unsynced.len() as u64;
        (self.watchers.len() as u64 - unsynced, unsynced)
    }

    fn index_synced(&mut self, wk: WatcherKey) {
        let w = &self.watchers[&wk];
        if w.range_end.is_empty() {
            self.synced_keys.entry(w.key.clone()).or_default().push(wk);
        } else {
            let end = if w.range_end == [0] {
                End::Unbounded
            } else {
                End::Key(w.range_end.clone())
            };
            self.synced_ranges.insert(wk, w.key.clone(), end);
        }
    }

    fn unindex_synced(&mut self, wk: WatcherKey) {
        let w = &self.watchers[&wk];
        if w.range_end.is_empty() {
            if let Some(list) = self.synced_keys.get_mut(&w.key) {
                list.retain(|x| *x != wk);
                if list.is_empty() {
                    self.synced_keys.remove(&w.key);
                }
            }
        } else {
            self.synced_ranges.remove(&wk);
        }
    }

    fn make_synced(&mut self, wk: WatcherKey) {
        self.unsynced.remove(&wk);
        if let Some(w) = self.watchers.get_mut(&wk) {
            if !w.synced {
                w.synced = true;
                self.index_synced(wk);
            }
        }
    }

    fn make_unsynced(&mut self, wk: WatcherKey, min_rev: i64) {
        if self.watchers.get(&wk).is_some_and(|w| w.synced) {
            self.unindex_synced(wk);
        }
        if let Some(w) = self.watchers.get_mut(&wk) {
            w.synced = false;
            w.min_rev = min_rev;
            self.unsynced.insert(wk);
        }
    }

    fn remove_watcher(&mut self, wk: WatcherKey) -> bool {
        let Some(w) = self.watchers.get(&wk) else {
            return false;
        };
        if w.synced {
            self.unindex_synced(wk);
        }
        self.unsynced.remove(&wk);
        self.watchers.remove(&wk);
        if let Some(s) = self.streams.get_mut(&wk.0) {
            s.watchers.remove(&wk.1);
        }
        true
    }

    /// Creates a watcher; queues its `created` response.
    pub fn create(
        &mut self,
        stream: u64,
        req: &WatchCreateRequest,
        current: i64,
    ) -> Result<i64, crate::Error> {
        if crate::key_index::is_empty_range(&req.key, &req.range_end) {
            return Err(crate::Error::EmptyWatcherRange);
        }
        let entry = self.streams.get_mut(&stream).expect("stream registered");
        let id = if req.watch_id == 0 {
            while entry.watchers.contains(&entry.next_id) {
                entry.next_id += 1;
            }
            let id = entry.next_id;
            entry.next_id += 1;
            id
        } else {
            if entry.watchers.contains(&req.watch_id) {
                return Err(crate::Error::WatcherDuplicateId);
            }
            req.watch_id
        };
        entry.watchers.insert(id);
        let queue = entry.queue.clone();
        let synced = req.start_revision == 0 || req.start_revision > current;
        let min_rev = if req.start_revision == 0 {
            current + 1
        } else {
            req.start_revision
        };
        let w = Watcher {
            key: req.key.clone(),
            range_end: req.range_end.clone(),
            min_rev,
            prev_kv: req.prev_kv,
            no_put: req.filters.contains(&WatchFilter::NoPut),
            no_delete: req.filters.contains(&WatchFilter::NoDelete),
            progress_notify: req.progress_notify,
            synced: false,
        };
        let wk = (stream, id);
        self.watchers.insert(wk, w);
        queue.push_control(WatchResponse {
            revision: current,
            watch_id: id,
            created: true,
            ..Default::default()
        });
        if synced {
            self.make_synced(wk);
        } else {
            self.unsynced.insert(wk);
        }
        Ok(id)
    }

    /// Cancels a watcher; queues its `canceled` response. False if it does not exist.
    pub fn cancel(&mut self, stream: u64, id: i64, current: i64) -> bool {
        if !self.remove_watcher((stream, id)) {
            return false;
        }
        if let Some(s) = self.streams.get(&stream) {
            s.queue.push_control(WatchResponse {
                revision: current,
                watch_id: id,
                canceled: true,
                ..Default::default()
            });
        }
        true
    }

    /// Whether any watcher is synced, i.e. would receive events published now.
    pub fn has_synced_watchers(&self) -> bool {
        self.watchers.len() > self.unsynced.len()
    }

    /// Delivers the events of a commit to synced watchers. `current` is the revision after it.
    pub fn publish(&mut self, events: &[Event], current: i64, prev: &mut PrevLookup<'_>) {
        if events.is_empty() || self.watchers.len() == self.unsynced.len() {
            return;
        }
        let mut matched: BTreeMap<WatcherKey, Vec<&Event>> = BTreeMap::new();
        for ev in events {
            if let Some(list) = self.synced_keys.get(&ev.kv.key) {
                for wk in list {
                    matched.entry(*wk).or_default().push(ev);
                }
            }
            if !self.synced_ranges.is_empty() {
                self.synced_ranges
                    .stab(&ev.kv.key, |wk| matched.entry(wk).or_default().push(ev));
            }
        }
        for (wk, evs) in matched {
            let Some(w) = self.watchers.get_mut(&wk) else {
                continue;
            };
            let Some(first_rev) = evs
                .iter()
                .map(|e| e.kv.mod_revision)
                .find(|r| *r >= w.min_rev)
            else {
                continue;
            };
            let rendered = render(w, &evs, prev);
            if rendered.is_empty() {
                w.min_rev = current + 1;
                continue;
            }
            let queue = &self.streams[&wk.0].queue;
            let resp = WatchResponse {
                revision: current,
                watch_id: wk.1,
                events: rendered,
                ..Default::default()
            };
            if queue.try_push(resp) {
                w.min_rev = current + 1;
            } else {
                self.make_unsynced(wk, first_rev);
            }
        }
    }

    /// One catch-up round for unsynced watchers. `history(lo, hi)` returns every event with
    /// revision in `[lo, hi]`, in order. Returns how many watchers remain unsynced.
    pub fn sync(
        &mut self,
        current: i64,
        compact: i64,
        batch: usize,
        max_revs: i64,
        history: &mut dyn FnMut(i64, i64) -> Result<Vec<Event>, crate::Error>,
        prev: &mut PrevLookup<'_>,
    ) -> Result<usize, crate::Error> {
        if !self.unsynced.is_empty() {
            let picked = self.pick_unsynced(batch);
            let mut pending = Vec::new();
            for wk in picked {
                let w = &self.watchers[&wk];
                if w.min_rev < compact {
                    self.remove_watcher(wk);
                    if let Some(s) = self.streams.get(&wk.0) {
                        // Exactly what etcd 3.4 sends: no header revision, no cancel_reason
                        // (clients derive the error from compact_revision).
                        s.queue.push_control(WatchResponse {
                            revision: 0,
                            watch_id: wk.1,
                            canceled: true,
                            compact_revision: compact,
                            ..Default::default()
                        });
                    }
                } else if w.min_rev > current {
                    self.make_synced(wk);
                } else {
                    pending.push(wk);
                }
            }
            if let Some(lo) = pending.iter().map(|wk| self.watchers[wk].min_rev).min() {
                let hi = current.min(lo.saturating_add(max_revs - 1));
                let evs = history(lo, hi)?;
                for wk in pending {
                    let w = &self.watchers[&wk];
                    if w.min_rev > hi {
                        continue;
                    }
                    let mine: Vec<&Event> = evs
                        .iter()
                        .filter(|e| in_range(&e.kv.key, &w.key, &w.range_end))
                        .collect();
                    let rendered = render(w, &mine, prev);
                    if !rendered.is_empty() {
                        let resp = WatchResponse {
                            revision: current,
                            watch_id: wk.1,
                            events: rendered,
                            ..Default::default()
                        };
                        if !self.streams[&wk.0].queue.try_push(resp) {
                            continue; // still full: retry next round from the same revision
                        }
                    }
                    self.watchers.get_mut(&wk).expect("exists").min_rev = hi + 1;
                    if hi == current {
                        self.make_synced(wk);
                    }
                }
            }
        }
        self.flush_progress(current);
        Ok(self.unsynced.len())
    }

    fn pick_unsynced(&mut self, batch: usize) -> Vec<WatcherKey> {
        use std::ops::Bound;
        let start = match self.cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let mut picked: Vec<WatcherKey> = self
            .unsynced
            .range((start, Bound::Unbounded))
            .take(batch)
            .copied()
            .collect();
        if picked.len() < batch {
            for wk in self.unsynced.iter().take(batch - picked.len()) {
                if picked.contains(wk) {
                    break;
                }
                picked.push(*wk);
            }
        }
        self.cursor = picked.last().copied();
        picked
    }

    /// The store's history was replaced by an installed snapshot whose head is `current`
    /// (etcd's `watchableStore.Restore`): every watcher becomes unsynced, to catch up from the
    /// new history at its next revision (the next [`WatchHub::sync`] rounds cancel those
    /// whose next revision the snapshot compacted). A watcher positioned beyond the new head
    /// is moved back to `current + 1`: etcd's next sync round sets every chosen watcher's
    /// `minRev` to the current revision + 1, restored ones included.
    pub fn restore(&mut self, current: i64) {
        let all: Vec<WatcherKey> = self.watchers.keys().copied().collect();
        for wk in all {
            let min_rev = self.watchers[&wk].min_rev.min(current.saturating_add(1));
            self.make_unsynced(wk, min_rev);
        }
    }

    /// A stream-wide progress request: answered (watch_id -1) once all its watchers are synced.
    pub fn request_progress(&mut self, stream: u64, current: i64) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.progress_pending = true;
        }
        self.flush_progress(current);
    }

    fn flush_progress(&mut self, current: i64) {
        let ready: Vec<u64> = self
            .streams
            .iter()
            .filter(|(sid, s)| {
                s.progress_pending
                    && s.watchers
                        .iter()
                        .all(|id| !self.unsynced.contains(&(**sid, *id)))
            })
            .map(|(sid, _)| *sid)
            .collect();
        for sid in ready {
            let s = self.streams.get_mut(&sid).expect("exists");
            s.progress_pending = false;
            s.queue.push_control(WatchResponse {
                revision: current,
                watch_id: -1,
                ..Default::default()
            });
        }
    }

    /// Periodic progress notification for the stream's watchers that asked for it and are
    /// synced (an empty response: every later event has a larger revision).
    pub fn progress_notify(&mut self, stream: u64, current: i64) {
        let Some(s) = self.streams.get(&stream) else {
            return;
        };
        for id in &s.watchers {
            if let Some(w) = self.watchers.get(&(stream, *id)) {
                if w.synced && w.progress_notify {
                    s.queue.push_control(WatchResponse {
                        revision: current,
                        watch_id: *id,
                        ..Default::default()
                    });
                }
            }
        }
    }
}
