//! The inbox: a bounded queue of [`PeerEvent`]s from the transport's threads to its owner,
//! plus the owner's wake function.
//!
//! Producers (connection reader threads, peer writer threads, snapshot threads) push events;
//! after a push they call the wake function unless a wake is already pending, so a burst of a
//! thousand messages costs one wake (one `mio::Waker::wake` syscall in the server). The flag
//! is re-armed when the owner finds the inbox empty in [`Inbox::try_recv`], so the owner's
//! loop must drain with `try_recv` until it returns `None` after each wake-up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Something the transport reports to its owner.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// A Raft message arrived.
    Message {
        /// Sender member id (authenticated by the handshake, not by the payload).
        from: u64,
        /// The opaque payload, exactly as passed to `send` on the other side.
        payload: Vec<u8>,
    },
    /// A complete snapshot arrived and its CRC matched.
    Snapshot {
        /// Sender member id.
        from: u64,
        /// The sender's snapshot id.
        snapshot_id: u64,
        /// The snapshot bytes, exactly as passed to `send_snapshot`.
        data: Vec<u8>,
    },
    /// A complete snapshot arrived, its CRC matched, and it was written to `path` (with
    /// [`crate::peer::PeerTransportConfig::snapshot_spool_dir`] set). The owner reads it and
    /// removes the file.
    SnapshotFile {
        /// Sender member id.
        from: u64,
        /// The sender's snapshot id.
        snapshot_id: u64,
        /// The file holding the snapshot bytes, exactly as passed to `send_snapshot`.
        path: std::path::PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// A peer could not be reached (connect, handshake or write failed). The owner should call
    /// Raft's `report_unreachable(peer)`.
    Unreachable {
        /// The peer.
        peer: u64,
    },
    /// A member's message-lane connection, handshake done, for the owner to read itself
    /// (only with [`crate::peer::PeerTransportConfig::message_lanes_to_owner`]; see
    /// [`crate::peer::MessageLane`]). Messages on it do not come as `Message` events.
    MessageLane(super::lane::MessageLane),
    /// Outcome of a `send_snapshot`. The owner should call Raft's `report_snapshot(to, ..)`.
    SnapshotStatus {
        /// The peer the snapshot was for.
        to: u64,
        /// The snapshot id passed to `send_snapshot`.
        snapshot_id: u64,
        /// `Ok` once the receiver verified and took the snapshot, else why not.
        result: Result<(), String>,
    },
}

struct Queue {
    events: VecDeque<PeerEvent>,
    receiver_alive: bool,
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
    wake_pending: AtomicBool,
    wake: Box<dyn Fn() + Send + Sync>,
}

/// The owner's end: receives [`PeerEvent`]s.
pub struct Inbox {
    shared: Arc<Shared>,
}

/// The transport's end (cloned into every thread).
#[derive(Clone)]
pub(crate) struct EventSink {
    shared: Arc<Shared>,
}

/// The inbox's receiver was dropped: nobody will read events any more.
#[derive(Debug)]
pub(crate) struct InboxGone;

pub(crate) fn inbox(capacity: usize, wake: Box<dyn Fn() + Send + Sync>) -> (EventSink, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            events: VecDeque::new(),
            receiver_alive: true,
        }),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        capacity,
        wake_pending: AtomicBool::new(false),
        wake,
    });
    (
        EventSink {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

impl EventSink {
    fn after_push(&self) {
        self.shared.not_empty.notify_one();
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) {
            (self.shared.wake)();
        }
    }

    /// Pushes `event`, waiting while the inbox is full. Gives up (returning the event's
    /// fate as an error) if the receiver is gone or `stop()` becomes true.
    pub(crate) fn deliver(
        &self,
        event: PeerEvent,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), InboxGone> {
        let mut q = self.shared.queue.lock();
        loop {
            if !q.receiver_alive || stop() {
                return Err(InboxGone);
            }
            if q.events.len() < self.shared.capacity {
                q.events.push_back(event);
                drop(q);
                self.after_push();
                return Ok(());
            }
            // Wake up now and then to notice shutdown.
            self.shared
                .not_full
                .wait_for(&mut q, Duration::from_millis(100));
        }
    }

    /// Pushes all of `events` in order (taking the lock once per run of free slots), waiting
    /// while the inbox is full. On error the undelivered events are left in `events`.
    pub(crate) fn deliver_all(
        &self,
        events: &mut Vec<PeerEvent>,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), InboxGone> {
        let mut q = self.shared.queue.lock();
        loop {
            if !q.receiver_alive || stop() {
                return Err(InboxGone);
            }
            let room = self.shared.capacity.saturating_sub(q.events.len());
            if room > 0 {
                let n = room.min(events.len());
                q.events.extend(events.drain(..n));
                if events.is_empty() {
                    drop(q);
                    self.after_push();
                    return Ok(());
                }
                self.after_push();
            }
            self.shared
                .not_full
                .wait_for(&mut q, Duration::from_millis(100));
        }
    }

    /// Pushes `event` unless the inbox is full; returns whether it was queued.
    pub(crate) fn try_deliver(&self, event: PeerEvent) -> bool {
        let mut q = self.shared.queue.lock();
        if !q.receiver_alive || q.events.len() >= self.shared.capacity {
            return false;
        }
        q.events.push_back(event);
        drop(q);
        self.after_push();
        true
    }
}

impl Inbox {
    /// Takes the next event without waiting. Returning `None` re-arms the wake function.
    pub fn try_recv(&self) -> Option<PeerEvent> {
        if let Some(event) = self.pop() {
            return Some(event);
        }
        // Empty: re-arm the wake, then look once more so an event pushed between the pop and
        // the re-arm (whose producer saw wake_pending = true and did not wake) is not missed.
        self.shared.wake_pending.store(false, Ordering::SeqCst);
        self.pop()
    }

    /// Waits up to `timeout` for the next event. (Does not re-arm the wake function; owners
    /// that block here do not need one.)
    pub fn recv_timeout(&self, timeout: Duration) -> Option<PeerEvent> {
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.queue.lock();
        loop {
            if let Some(event) = q.events.pop_front() {
                drop(q);
                self.shared.not_full.notify_one();
                return Some(event);
            }
            if self
                .shared
                .not_empty
                .wait_until(&mut q, deadline)
                .timed_out()
                && q.events.is_empty()
            {
                return None;
            }
        }
    }

    /// Number of events waiting.
    pub fn len(&self) -> usize {
        self.shared.queue.lock().events.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pop(&self) -> Option<PeerEvent> {
        let event = self.shared.queue.lock().events.pop_front();
        if event.is_some() {
            self.shared.not_full.notify_one();
        }
        event
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let undelivered = {
            let mut q = self.shared.queue.lock();
            q.receiver_alive = false;
            std::mem::take(&mut q.events)
        };
        self.shared.not_full.notify_all();
        // Nobody will take these. Dropping them now (outside the lock: a lane's drop takes
        // the transport's registry lock) closes the message lanes among them and gives their
        // connection slots back. Left in the queue, a lane would also keep the transport's
        // shared state alive, which keeps the queue alive: a cycle never freed.
        drop(undelivered);
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn wakes_are_coalesced_and_rearmed_when_drained() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let (sink, inbox) = inbox(
            8,
            Box::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let never = || false;
        for peer in 1..=3 {
            sink.deliver(PeerEvent::Unreachable { peer }, &never)
                .unwrap();
        }
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        assert_eq!(inbox.try_recv(), Some(PeerEvent::Unreachable { peer: 1 }));
        assert_eq!(inbox.try_recv(), Some(PeerEvent::Unreachable { peer: 2 }));
        assert_eq!(inbox.try_recv(), Some(PeerEvent::Unreachable { peer: 3 }));
        assert_eq!(inbox.try_recv(), None);
        assert!(sink.try_deliver(PeerEvent::Unreachable { peer: 4 }));
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn bounded_and_receiver_drop_unblocks_producers() {
        let (sink, inbox) = inbox(2, Box::new(|| {}));
        assert!(sink.try_deliver(PeerEvent::Unreachable { peer: 1 }));
        assert!(sink.try_deliver(PeerEvent::Unreachable { peer: 2 }));
        assert!(!sink.try_deliver(PeerEvent::Unreachable { peer: 3 }));
        let producer =
            std::thread::spawn(move || sink.deliver(PeerEvent::Unreachable { peer: 4 }, &|| false));
        std::thread::sleep(Duration::from_millis(20));
        drop(inbox);
        assert!(producer.join().unwrap().is_err());
    }

    #[test]
    fn deliver_all_keeps_order_across_a_full_inbox() {
        let (sink, inbox) = inbox(3, Box::new(|| {}));
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 10 {
                if let Some(PeerEvent::Unreachable { peer }) =
                    inbox.recv_timeout(Duration::from_secs(5))
                {
                    got.push(peer);
                }
            }
            got
        });
        let mut events: Vec<PeerEvent> = (0..10)
            .map(|peer| PeerEvent::Unreachable { peer })
            .collect();
        sink.deliver_all(&mut events, &|| false).unwrap();
        assert!(events.is_empty());
        assert_eq!(consumer.join().unwrap(), (0..10).collect::<Vec<u64>>());
    }

    #[test]
    fn stop_unblocks_a_full_deliver() {
        let (sink, _inbox) = inbox(1, Box::new(|| {}));
        assert!(sink.try_deliver(PeerEvent::Unreachable { peer: 1 }));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                sink.deliver(PeerEvent::Unreachable { peer: 2 }, &|| {
                    stop.load(Ordering::SeqCst)
                })
            });
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, Ordering::SeqCst);
            assert!(h.join().unwrap().is_err());
        });
    }
}
