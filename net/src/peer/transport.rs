//! [`PeerTransport`]: the public face of the peer transport.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mio::unix::SourceFd;
use mio::{Interest, Poll, Waker};

use super::config::PeerTransportConfig;
use super::core::Core;
use super::error::{SendError, TransportError};
use super::http::HttpHandler;
use super::inbound::{run_acceptor, LISTENER, STOP};
use super::inbox::{inbox, Inbox, PeerEvent};
use super::outbound::{run_writer, PeerLink};
use super::snapshot::send_snapshot;
use super::stats::{add, get, PeerStats, TransportStats};

/// Carries opaque Raft messages and snapshots between the members of one cluster.
///
/// Created by [`PeerTransport::start`], which also returns the [`Inbox`] where incoming
/// messages and reports arrive. All methods take `&self` and may be called from any thread;
/// none blocks on the network. Dropping the transport shuts it down (joins its threads).
pub struct PeerTransport {
    core: Arc<Core>,
}

impl PeerTransport {
    /// Binds `config.listen_addr`, starts the acceptor thread, and returns the transport and
    /// its inbox. `wake` is called (from transport threads) when the inbox goes from "drained"
    /// to "has events"; the server passes a closure calling its `mio::Waker::wake`.
    pub fn start(
        config: PeerTransportConfig,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<(PeerTransport, Inbox), TransportError> {
        config.validate().map_err(TransportError::InvalidConfig)?;
        let listener = TcpListener::bind(config.listen_addr).map_err(TransportError::Bind)?;
        let local_addr = listener.local_addr().map_err(TransportError::Bind)?;
        // The acceptor sleeps in mio's poll on the non-blocking listener; shutdown wakes it
        // through a mio::Waker.
        listener
            .set_nonblocking(true)
            .map_err(TransportError::Poll)?;
        let poll = Poll::new().map_err(TransportError::Poll)?;
        let listener_fd = listener.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&listener_fd), LISTENER, Interest::READABLE)
            .map_err(TransportError::Poll)?;
        let acceptor_waker = Waker::new(poll.registry(), STOP).map_err(TransportError::Poll)?;
        let (sink, inbox) = inbox(config.inbox_capacity, Box::new(wake));
        let core = Arc::new(Core::new(config, local_addr, sink, acceptor_waker));
        let acceptor_core = core.clone();
        core.spawn(format!("keel-peer-accept-{local_addr}"), move || {
            run_acceptor(acceptor_core, listener, poll)
        })
        .map_err(TransportError::Spawn)?;
        Ok((PeerTransport { core }, inbox))
    }

    /// This member's id.
    pub fn local_id(&self) -> u64 {
        self.core.config.local_id
    }

    /// The address peers connect to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local_addr
    }

    /// Adds a peer and starts its writer thread. Messages from a member are only accepted
    /// once it has been added (the handshake refuses unknown senders).
    pub fn add_peer(&self, id: u64, addr: SocketAddr) -> Result<(), TransportError> {
        if id == self.core.config.local_id {
            return Err(TransportError::SelfPeer(id));
        }
        let link = Arc::new(PeerLink::new(id, addr));
        {
            let mut peers = self.core.peers.write();
            if peers.contains_key(&id) {
                return Err(TransportError::PeerExists(id));
            }
            peers.insert(id, link.clone());
        }
        let core = self.core.clone();
        let writer_link = link.clone();
        if let Err(e) = self.core.spawn(format!("keel-peer-out-{id:x}"), move || {
            run_writer(core, writer_link)
        }) {
            self.core.peers.write().remove(&id);
            return Err(TransportError::Spawn(e));
        }
        Ok(())
    }

    /// Changes a peer's address; the current connection is dropped and the new address dialed.
    pub fn update_peer(&self, id: u64, addr: SocketAddr) -> Result<(), TransportError> {
        let link = self
            .core
            .peers
            .read()
            .get(&id)
            .cloned()
            .ok_or(TransportError::UnknownPeer(id))?;
        *link.addr.lock() = addr;
        link.redial.store(true, Ordering::Release);
        link.wake();
        Ok(())
    }

    /// Removes a peer: stops its writer, drops its queue, closes its connections (both
    /// directions), and refuses its future connections.
    pub fn remove_peer(&self, id: u64) -> Result<(), TransportError> {
        let link = self
            .core
            .peers
            .write()
            .remove(&id)
            .ok_or(TransportError::UnknownPeer(id))?;
        link.removed.store(true, Ordering::Release);
        link.wake();
        self.core.close_sockets_of(id);
        Ok(())
    }

    /// Ids of the current peers, sorted.
    pub fn peers(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.core.peers.read().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Sends a message to `to`. Never blocks: when the peer's writer thread is idle on an
    /// open connection, the frame is written to the (non-blocking) socket by this thread;
    /// otherwise it is queued for the writer. If the peer's queue is at its message or byte
    /// limit the message is dropped, counted, and [`SendError::QueueFull`] returned.
    pub fn send(&self, to: u64, payload: Vec<u8>) -> Result<(), SendError> {
        self.link_for(to, &payload)?
            .push(payload, &self.core.config, false)
    }

    /// Like [`PeerTransport::send`], but the message waits in the queue until the next
    /// [`PeerTransport::flush`], so that everything an event-loop turn sends to a peer goes
    /// out in one socket write. (If the peer's writer is busy, it takes the message anyway.)
    pub fn send_deferred(&self, to: u64, payload: Vec<u8>) -> Result<(), SendError> {
        let link = self.link_for(to, &payload)?;
        link.push(payload, &self.core.config, true)?;
        let mut dirty = self.core.unflushed.lock();
        if !dirty.iter().any(|l| Arc::ptr_eq(l, &link)) {
            dirty.push(link);
        }
        Ok(())
    }

    /// Sends the messages [`PeerTransport::send_deferred`] queued.
    pub fn flush(&self) {
        let links = std::mem::take(&mut *self.core.unflushed.lock());
        for link in links {
            link.flush(self.core.config.max_batch_bytes);
        }
    }

    /// The link to `to`, if `payload` may be sent at all.
    fn link_for(&self, to: u64, payload: &[u8]) -> Result<Arc<PeerLink>, SendError> {
        if self.core.stopping() {
            return Err(SendError::ShutDown);
        }
        let cfg = &self.core.config;
        if payload.len() > cfg.max_message_bytes {
            return Err(SendError::TooLarge {
                len: payload.len() as u64,
                max: cfg.max_message_bytes as u64,
            });
        }
        self.core
            .peers
            .read()
            .get(&to)
            .cloned()
            .ok_or(SendError::UnknownPeer(to))
    }

    /// Sends a snapshot to `to` on a separate connection, in the background. The outcome
    /// arrives later as [`PeerEvent::SnapshotStatus`] with this `snapshot_id`. One snapshot
    /// per peer at a time. `data` may be a `Vec<u8>` or a shared buffer (`Arc<[u8]>`,
    /// `Arc<Vec<u8>>`) so one snapshot can go to several followers without copies.
    pub fn send_snapshot(
        &self,
        to: u64,
        snapshot_id: u64,
        data: impl AsRef<[u8]> + Send + 'static,
    ) -> Result<(), SendError> {
        if self.core.stopping() {
            return Err(SendError::ShutDown);
        }
        let max = self.core.config.max_snapshot_bytes;
        let len = data.as_ref().len() as u64;
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let link = self
            .core
            .peers
            .read()
            .get(&to)
            .cloned()
            .ok_or(SendError::UnknownPeer(to))?;
        if link
            .snapshot_in_flight
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(SendError::SnapshotInProgress(to));
        }
        let core = self.core.clone();
        let thread_link = link.clone();
        let spawned = self.core.spawn(format!("keel-peer-snap-{to:x}"), move || {
            let result = send_snapshot(&core, &thread_link, snapshot_id, data.as_ref());
            drop(data);
            match &result {
                Ok(()) => add(&thread_link.counters.snapshots_sent, 1),
                Err(why) => {
                    core.log(why);
                    thread_link.record_snapshot_failure(why);
                }
            }
            thread_link
                .snapshot_in_flight
                .store(false, Ordering::Release);
            let stop = || core.stopping();
            let _ = core.events.deliver(
                PeerEvent::SnapshotStatus {
                    to,
                    snapshot_id,
                    result,
                },
                &stop,
            );
        });
        if spawned.is_err() {
            link.snapshot_in_flight.store(false, Ordering::Release);
            return Err(SendError::ShutDown);
        }
        Ok(())
    }

    /// Installs (or replaces) the handler of plain HTTP `GET` requests on the peer port; takes
    /// effect for the next request. The server installs one that reads its live membership,
    /// so a joining member can `GET /members` (see [`http_get`](super::http_get)).
    pub fn set_http_handler(&self, handler: HttpHandler) {
        *self.core.http_handler.write() = Some(handler);
    }

    /// Removes the HTTP handler: further `GET`s on the peer port are answered with `404`.
    pub fn clear_http_handler(&self) {
        *self.core.http_handler.write() = None;
    }

    /// Counters and state of one peer, `None` if unknown.
    pub fn peer_stats(&self, id: u64) -> Option<PeerStats> {
        self.core.peers.read().get(&id).map(|link| link.stats())
    }

    /// Transport-wide counters (inbound side).
    pub fn stats(&self) -> TransportStats {
        let c = &self.core.counters;
        TransportStats {
            inbound_accepted: get(&c.inbound_accepted),
            inbound_rejected: get(&c.inbound_rejected),
            inbound_protocol_errors: get(&c.inbound_protocol_errors),
            messages_received: get(&c.messages_received),
            snapshots_received: get(&c.snapshots_received),
            snapshots_rejected: get(&c.snapshots_rejected),
            http_requests: get(&c.http_requests),
            last_inbound_error: self.core.last_inbound_error.lock().clone(),
        }
    }

    /// Stops all threads and closes all connections; queued messages are dropped. Idempotent;
    /// also done on drop.
    pub fn shutdown(&self) {
        self.core.shutdown();
    }
}

impl Drop for PeerTransport {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}

impl std::fmt::Debug for PeerTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTransport")
            .field("local_id", &self.core.config.local_id)
            .field("local_addr", &self.core.local_addr)
            .field("peers", &self.peers())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::handshake::{Hello, Lane, Reply, PROTOCOL_VERSION, REPLY_LEN};
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// A message lane still waiting in the inbox holds the transport's shared state, which
    /// holds the inbox's queue. Dropping the transport and then the inbox (the owner's
    /// shutdown) must free that state all the same.
    #[test]
    fn a_lane_left_in_the_inbox_does_not_keep_the_transport_alive() {
        let mut cfg = PeerTransportConfig::new(7, 2, "127.0.0.1:0".parse().unwrap());
        cfg.message_lanes_to_owner = true;
        cfg.handshake_timeout = Duration::from_secs(60); // no `Unreachable` for member 1
        cfg.log = Arc::new(|_: &str| {});
        let (transport, inbox) = PeerTransport::start(cfg, || {}).unwrap();
        let silent_member = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        transport
            .add_peer(1, silent_member.local_addr().unwrap())
            .unwrap();
        let mut s = std::net::TcpStream::connect(transport.local_addr()).unwrap();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            lane: Lane::Messages,
            cluster_id: 7,
            from: 1,
            to: 2,
        };
        s.write_all(&hello.encode()).unwrap();
        let mut reply = [0u8; REPLY_LEN];
        s.read_exact(&mut reply).unwrap();
        Reply::decode(&reply).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while inbox.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the lane never reached the inbox"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let core = Arc::downgrade(&transport.core);
        drop(transport);
        drop(inbox);
        // Threads that ended on their own may drop their handle a moment after shutdown.
        let deadline = Instant::now() + Duration::from_secs(5);
        while core.upgrade().is_some() {
            assert!(
                Instant::now() < deadline,
                "the transport's state is never freed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
