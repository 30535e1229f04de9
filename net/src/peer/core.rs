//! State shared by all of a transport's threads: configuration, peers, the inbox sink,
//! counters, and a registry of open sockets and running threads used to shut down cleanly.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use super::config::PeerTransportConfig;
use super::http::HttpHandler;
use super::inbox::EventSink;
use super::outbound::PeerLink;
use super::stats::{add, TransportCounters};

struct OpenSocket {
    stream: TcpStream,
    /// Member on the other end, once known.
    peer: Option<u64>,
    /// An accepted message-lane connection (a member has at most one live one to us).
    inbound_messages: bool,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    sockets: HashMap<u64, OpenSocket>,
    threads: HashMap<u64, JoinHandle<()>>,
}

pub(crate) struct Core {
    pub config: PeerTransportConfig,
    pub local_addr: SocketAddr,
    pub events: EventSink,
    pub peers: RwLock<HashMap<u64, Arc<PeerLink>>>,
    pub counters: TransportCounters,
    pub last_inbound_error: Mutex<Option<String>>,
    pub inbound_active: AtomicUsize,
    /// Answers HTTP `GET`s on the peer port; starts as `config.http`.
    pub http_handler: RwLock<Option<HttpHandler>>,
    /// Peers with messages queued by `send_deferred` since the last `flush`.
    pub unflushed: Mutex<Vec<Arc<PeerLink>>>,
    acceptor_waker: mio::Waker,
    stop: AtomicBool,
    registry: Mutex<Registry>,
}

/// Removes a socket from the registry when dropped.
pub(crate) struct SocketGuard {
    core: Arc<Core>,
    id: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.core.registry.lock().sockets.remove(&self.id);
    }
}

impl Core {
    pub fn new(
        config: PeerTransportConfig,
        local_addr: SocketAddr,
        events: EventSink,
        acceptor_waker: mio::Waker,
    ) -> Self {
        Core {
            http_handler: RwLock::new(config.http.clone()),
            unflushed: Mutex::new(Vec::new()),
            config,
            local_addr,
            events,
            peers: RwLock::new(HashMap::new()),
            counters: TransportCounters::default(),
            last_inbound_error: Mutex::new(None),
            inbound_active: AtomicUsize::new(0),
            acceptor_waker,
            stop: AtomicBool::new(false),
            registry: Mutex::new(Registry::default()),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub fn log(&self, line: &str) {
        (self.config.log)(line);
    }

    /// Records why an inbound connection was refused during the handshake.
    pub fn note_rejected(&self, reason: String) {
        add(&self.counters.inbound_rejected, 1);
        self.log(&reason);
        *self.last_inbound_error.lock() = Some(reason);
    }

    /// Records why an accepted inbound connection was closed.
    pub fn note_protocol_error(&self, reason: String) {
        add(&self.counters.inbound_protocol_errors, 1);
        self.log(&reason);
        *self.last_inbound_error.lock() = Some(reason);
    }

    /// Registers a socket so shutdown (or removing its peer) can unblock the thread using it.
    /// Fails if the transport is stopping.
    pub fn register_socket(
        self: &Arc<Self>,
        stream: &TcpStream,
        peer: Option<u64>,
    ) -> io::Result<SocketGuard> {
        let clone = stream.try_clone()?;
        let mut reg = self.registry.lock();
        if self.stopping() {
            return Err(io::Error::other("peer transport is shutting down"));
        }
        reg.next_id += 1;
        let id = reg.next_id;
        reg.sockets.insert(
            id,
            OpenSocket {
                stream: clone,
                peer,
                inbound_messages: false,
            },
        );
        Ok(SocketGuard {
            core: self.clone(),
            id,
        })
    }

    /// Notes which peer an accepted socket belongs to (known after the handshake). For a
    /// message-lane connection, older message-lane connections from the same member are shut
    /// down: the member has redialed, so they are dead or half-open (e.g. it crashed or was cut
    /// off without closing them), and their reader threads would otherwise wait forever.
    pub fn set_inbound_peer(&self, guard: &SocketGuard, peer: u64, messages_lane: bool) -> usize {
        let mut reg = self.registry.lock();
        let mut replaced = 0;
        if messages_lane {
            for (id, s) in reg.sockets.iter() {
                if *id != guard.id && s.inbound_messages && s.peer == Some(peer) {
                    let _ = s.stream.shutdown(Shutdown::Both);
                    replaced += 1;
                }
            }
        }
        if let Some(s) = reg.sockets.get_mut(&guard.id) {
            s.peer = Some(peer);
            s.inbound_messages = messages_lane;
        }
        replaced
    }

    /// Shuts down every open socket to or from `peer`.
    pub fn close_sockets_of(&self, peer: u64) {
        for s in self.registry.lock().sockets.values() {
            if s.peer == Some(peer) {
                let _ = s.stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// Starts a named thread that is joined at shutdown. Fails if the transport is stopping.
    pub fn spawn(
        self: &Arc<Self>,
        name: String,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let mut reg = self.registry.lock();
        if self.stopping() {
            return Err(io::Error::other("peer transport is shutting down"));
        }
        reg.next_id += 1;
        let id = reg.next_id;
        let core = self.clone();
        // The registry lock is held until the handle is inserted, so the thread's own removal
        // at exit (which takes the lock) always finds it.
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            body();
            core.registry.lock().threads.remove(&id);
        })?;
        reg.threads.insert(id, handle);
        Ok(())
    }

    /// Stops everything: sets the stop flag, wakes all waiting threads, closes all sockets and
    /// joins all threads. Idempotent.
    pub fn shutdown(&self) {
        {
            // Under the registry lock, so no thread or socket is registered after this point.
            let _reg = self.registry.lock();
            self.stop.store(true, Ordering::Release);
        }
        for link in self.peers.read().values() {
            link.wake();
        }
        // Stop the acceptor, which sleeps in mio's poll.
        if let Err(e) = self.acceptor_waker.wake() {
            self.log(&format!("cannot wake the acceptor for shutdown: {e}"));
        }
        loop {
            let threads: Vec<JoinHandle<()>> = {
                let mut reg = self.registry.lock();
                for s in reg.sockets.values() {
                    let _ = s.stream.shutdown(Shutdown::Both);
                }
                reg.threads.drain().map(|(_, h)| h).collect()
            };
            if threads.is_empty() {
                break;
            }
            for handle in threads {
                if handle.thread().id() != std::thread::current().id() {
                    let _ = handle.join();
                }
            }
        }
    }
}
