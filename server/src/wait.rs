//! Clients waiting for their entry to be applied (etcd's `wait.Wait`).
//!
//! A client call registers a reply callback under its request id *before* its entry is
//! proposed; the apply thread triggers it with the result when it applies an entry carrying that
//! id. Calls whose entry never comes back (dropped proposal, lost leadership) are failed by
//! [`Waiters::expire`] with etcd's "request timed out" once their deadline passes.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::errors::{EtcdError, Status};

/// The callback that answers one client.
pub type Reply<T> = Box<dyn FnOnce(Result<T, Status>) + Send>;

/// The registry of waiting clients, keyed by request id.
pub struct Waiters<T> {
    map: Mutex<HashMap<u64, (Instant, Reply<T>)>>,
}

impl<T> std::fmt::Debug for Waiters<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiters")
            .field("waiting", &self.map.lock().len())
            .finish()
    }
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> Waiters<T> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `reply` for request `id`, to be failed with a timeout after `deadline`.
    /// Returns false (and drops nothing) if `id` is already registered.
    pub fn register(&self, id: u64, deadline: Instant, reply: Reply<T>) -> bool {
        let mut map = self.map.lock();
        if map.contains_key(&id) {
            return false;
        }
        map.insert(id, (deadline, reply));
        true
    }

    /// Answer the client waiting for `id`, if any (entries proposed by other members, or whose
    /// client gave up, have none). The callback runs outside the lock.
    pub fn trigger(&self, id: u64, result: Result<T, Status>) -> bool {
        let entry = self.map.lock().remove(&id);
        match entry {
            Some((_, reply)) => {
                reply(result);
                true
            }
            None => false,
        }
    }

    /// Fail every waiter whose deadline is at or before `now` with "request timed out".
    /// Returns how many were failed.
    pub fn expire(&self, now: Instant) -> usize {
        let expired: Vec<Reply<T>> = {
            let mut map = self.map.lock();
            let ids: Vec<u64> = map
                .iter()
                .filter(|(_, (d, _))| *d <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| map.remove(&id))
                .map(|(_, r)| r)
                .collect()
        };
        let n = expired.len();
        for reply in expired {
            reply(Err(EtcdError::Timeout.status()));
        }
        n
    }

    /// Fail the waiters among `ids` whose deadline is at or before `now` with `status`.
    /// Returns how many were failed.
    pub fn expire_with(&self, now: Instant, ids: &[u64], status: &Status) -> usize {
        let expired: Vec<Reply<T>> = {
            let mut map = self.map.lock();
            let due: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| map.get(id).is_some_and(|(d, _)| *d <= now))
                .collect();
            due.iter()
                .filter_map(|id| map.remove(id))
                .map(|(_, r)| r)
                .collect()
        };
        let n = expired.len();
        for reply in expired {
            reply(Err(status.clone()));
        }
        n
    }

    /// Fail every waiter with `status` (shutdown: "server stopped").
    pub fn fail_all(&self, status: Status) {
        let all: Vec<Reply<T>> = self.map.lock().drain().map(|(_, (_, r))| r).collect();
        for reply in all {
            reply(Err(status.clone()));
        }
    }

    /// Whether a client still waits for `id` (not triggered, not expired).
    pub fn contains(&self, id: u64) -> bool {
        self.map.lock().contains_key(&id)
    }

    /// Number of waiting clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Code;
    use std::sync::mpsc;
    use std::time::Duration;

    fn reply(tx: &mpsc::Sender<(u64, Result<u32, Status>)>, id: u64) -> Reply<u32> {
        let tx = tx.clone();
        Box::new(move |r| tx.send((id, r)).unwrap())
    }

    #[test]
    fn trigger_answers_once_and_unknown_ids_are_ignored() {
        let (tx, rx) = mpsc::channel();
        let w = Waiters::new();
        let far = Instant::now() + Duration::from_secs(60);
        assert!(w.register(1, far, reply(&tx, 1)));
        assert!(!w.register(1, far, reply(&tx, 99)), "duplicate id refused");
        assert!(w.trigger(1, Ok(7)));
        assert!(!w.trigger(1, Ok(8)));
        assert!(!w.trigger(2, Ok(9)));
        assert_eq!(rx.try_recv().unwrap(), (1, Ok(7)));
        assert!(rx.try_recv().is_err());
        assert!(w.is_empty());
    }

    #[test]
    fn expire_with_fails_only_the_named_overdue_waiters() {
        let (tx, rx) = mpsc::channel();
        let w = Waiters::new();
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        w.register(1, now, reply(&tx, 1)); // overdue, named
        w.register(2, now, reply(&tx, 2)); // overdue, not named
        w.register(3, far, reply(&tx, 3)); // named, not due
        let status = Status::new(Code::Unknown, "context deadline exceeded");
        assert_eq!(w.expire_with(now, &[1, 3, 4], &status), 1);
        assert_eq!(rx.try_recv().unwrap(), (1, Err(status)));
        assert!(rx.try_recv().is_err());
        assert!(!w.contains(1) && w.contains(2) && w.contains(3));
    }

    #[test]
    fn expire_fails_only_overdue_waiters_with_timeout() {
        let (tx, rx) = mpsc::channel();
        let w = Waiters::new();
        let now = Instant::now();
        w.register(1, now, reply(&tx, 1));
        w.register(2, now + Duration::from_secs(60), reply(&tx, 2));
        assert_eq!(w.expire(now), 1);
        assert_eq!(
            rx.try_recv().unwrap(),
            (1, Err(EtcdError::Timeout.status()))
        );
        assert_eq!(w.len(), 1);
        w.fail_all(EtcdError::Stopped.status());
        assert_eq!(
            rx.try_recv().unwrap(),
            (2, Err(EtcdError::Stopped.status()))
        );
        assert!(w.is_empty());
    }
}
