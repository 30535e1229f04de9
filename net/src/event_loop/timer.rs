//! Timers for the event loop: a binary min-heap of deadlines with lazy cancellation.
//!
//! mio has no timers; the loop passes "time until the earliest deadline" as the poll timeout
//! and fires expired entries after each poll.

use crate::http2::id_hash::IdMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Handle of a registered timer, used to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// Deadlines carrying a payload `T`. Cancelled entries stay in the heap until they surface and
/// are skipped then (their id is no longer in `live`).
#[derive(Debug)]
pub struct TimerHeap<T> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    live: IdMap<u64, T>,
    next_id: u64,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            live: IdMap::default(),
            next_id: 1,
        }
    }
}

impl<T> TimerHeap<T> {
    /// An empty heap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a deadline.
    pub fn add(&mut self, at: Instant, payload: T) -> TimerId {
        let id = self.next_id;
        self.next_id += 1;
        self.heap.push(Reverse((at, id)));
        self.live.insert(id, payload);
        TimerId(id)
    }

    /// Cancels a timer; returns its payload if it had not fired yet.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let p = self.live.remove(&id.0);
        // Keep the heap from filling with dead entries when many timers are cancelled.
        if self.heap.len() > 64 && self.heap.len() > 4 * self.live.len() {
            let live = &self.live;
            self.heap.retain(|Reverse((_, id))| live.contains_key(id));
        }
        p
    }

    /// Removes and returns the next timer due at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, T)> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(p) = self.live.remove(&id) {
                return Some((TimerId(id), p));
            }
        }
        None
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if self.live.contains_key(&id) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Number of live timers.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no timer is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_order_and_skips_cancelled() {
        let t0 = Instant::now();
        let mut h = TimerHeap::new();
        let a = h.add(t0 + Duration::from_millis(30), "a");
        h.add(t0 + Duration::from_millis(10), "b");
        h.add(t0 + Duration::from_millis(20), "c");
        assert_eq!(h.cancel(a), Some("a"));
        assert_eq!(h.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(h.pop_expired(t0).is_none());
        let later = t0 + Duration::from_secs(1);
        let fired: Vec<_> = std::iter::from_fn(|| h.pop_expired(later))
            .map(|(_, p)| p)
            .collect();
        assert_eq!(fired, vec!["b", "c"]);
        assert!(h.is_empty());
        assert_eq!(h.next_deadline(), None);
    }
}
