//! Message lanes read by the owner's event loop (`message_lanes_to_owner`): the transport
//! hands each accepted message-lane connection over as `PeerEvent::MessageLane`, the owner
//! registers it with `Ctx::register_source` and reads it in `on_source_ready`. Checked here
//! with the real event loop as the owner: every message once and in order (small and large,
//! across reconnections), bad frames close the lane and are counted, removing the peer or a
//! newer connection closes it, and a dropped lane gives its connection slot back.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig, SourceId};
use keel_net::grpc::CallEvent;
use keel_net::peer::frame::{write_frame, FrameKind};
use keel_net::peer::handshake::{Hello, Lane, Reply, PROTOCOL_VERSION, REPLY_LEN};
use keel_net::peer::{
    Inbox, LaneStatus, MessageLane, PeerEvent, PeerTransport, PeerTransportConfig,
};

const CLUSTER: u64 = 0x6c61_6e65;
const PATIENCE: Duration = Duration::from_secs(20);

/// What the owner saw, shared with the test thread.
#[derive(Default)]
struct Seen {
    messages: Vec<(u64, Vec<u8>)>,
    lanes_opened: usize,
    lanes_closed: usize,
    /// Reads that stopped at the read budget (resumed from a zero-delay timer).
    pending_reads: usize,
}

/// The owner: a real `EventLoop` whose handler adopts lanes and reads them.
struct Owner {
    inbox: Inbox,
    lanes: HashMap<SourceId, MessageLane>,
    seen: Arc<Mutex<Seen>>,
    scratch: Vec<Vec<u8>>,
}

impl Owner {
    fn read(&mut self, ctx: &mut Ctx<()>, id: SourceId) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        let from = lane.from();
        let status = lane.read_messages(&mut self.scratch);
        let mut seen = self.seen.lock().unwrap();
        seen.messages
            .extend(self.scratch.drain(..).map(|m| (from, m)));
        match status {
            LaneStatus::Open => {}
            // As the server does: read the rest after other work, from a zero-delay timer.
            LaneStatus::Pending => {
                seen.pending_reads += 1;
                ctx.add_timer_after(Duration::ZERO, id.0);
            }
            LaneStatus::Closed => {
                let mut lane = self.lanes.remove(&id).unwrap();
                ctx.deregister_source(&mut lane).unwrap();
                seen.lanes_closed += 1;
            }
        }
    }
}

impl Handler<()> for Owner {
    fn on_call(&mut self, _ctx: &mut Ctx<()>, _event: CallEvent) {}

    fn on_wake(&mut self, ctx: &mut Ctx<()>, _payload: ()) {
        while let Some(event) = self.inbox.try_recv() {
            match event {
                PeerEvent::MessageLane(mut lane) => {
                    let id = ctx.register_source(&mut lane).unwrap();
                    self.lanes.insert(id, lane);
                    self.seen.lock().unwrap().lanes_opened += 1;
                    self.read(ctx, id);
                }
                PeerEvent::Message { from, payload } => {
                    panic!("message from {from:#x} via the inbox: {payload:?}")
                }
                _ => {}
            }
        }
    }

    fn on_source_ready(&mut self, ctx: &mut Ctx<()>, source: SourceId) {
        self.read(ctx, source);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<()>, _timer: keel_net::event_loop::TimerId, tag: u64) {
        self.read(ctx, SourceId(tag));
    }
}

/// A member whose message lanes are read by an event loop on its own thread.
struct Member {
    transport: Arc<PeerTransport>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    /// While set, the owner's loop does not run (its sockets fill up).
    paused: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(id: u64, tweak: impl FnOnce(&mut PeerTransportConfig)) -> Member {
        let mut cfg = PeerTransportConfig::new(CLUSTER, id, "127.0.0.1:0".parse().unwrap());
        cfg.message_lanes_to_owner = true;
        cfg.backoff_initial = Duration::from_millis(10);
        cfg.backoff_max = Duration::from_millis(100);
        cfg.log = Arc::new(|_: &str| {});
        tweak(&mut cfg);
        let mut event_loop: EventLoop<()> = EventLoop::new(LoopConfig::default()).unwrap();
        let waker = event_loop.waker();
        let (transport, inbox) = PeerTransport::start(cfg, move || {
            let _ = waker.wake(());
        })
        .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let (seen2, stop2, paused2) = (seen.clone(), stop.clone(), paused.clone());
        let thread = std::thread::spawn(move || {
            let mut owner = Owner {
                inbox,
                lanes: HashMap::new(),
                seen: seen2,
                scratch: Vec::new(),
            };
            while !stop2.load(Ordering::SeqCst) {
                if paused2.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                event_loop
                    .run_once(&mut owner, Some(Duration::from_millis(20)))
                    .unwrap();
            }
        });
        Member {
            transport: Arc::new(transport),
            seen,
            stop,
            paused,
            thread: Some(thread),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    fn wait(&self, what: &str, cond: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond(&self.seen.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn messages_from(&self, from: u64) -> Vec<Vec<u8>> {
        let seen = self.seen.lock().unwrap();
        seen.messages
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.transport.shutdown();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects as member `from` and completes the handshake.
fn raw_lane(to: &Member, from: u64) -> TcpStream {
    let mut s = TcpStream::connect(to.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let hello = Hello {
        version: PROTOCOL_VERSION,
        lane: Lane::Messages,
        cluster_id: CLUSTER,
        from,
        to: to.transport.local_id(),
    };
    s.write_all(&hello.encode()).unwrap();
    let mut reply = [0u8; REPLY_LEN];
    s.read_exact(&mut reply).unwrap();
    Reply::decode(&reply).expect("handshake accepted");
    s
}

fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn every_message_arrives_once_in_order_small_and_large() {
    let a = Member::start(1, |_| {});
    let b = Member::start(2, |_| {});
    a.transport.add_peer(2, b.addr()).unwrap();
    b.transport.add_peer(1, a.addr()).unwrap();
    // Sizes around the lane's 64 KiB read chunk and well beyond it (the buffer grows, then
    // shrinks back), mixed with small ones; sent in bursts and one by one.
    let message = |i: u32| -> Vec<u8> {
        let len = match i % 7 {
            0 => 300_000 + i as usize,
            1 => 65_536 - 9,
            2 => 65_536,
            _ => (i as usize * 37) % 500,
        };
        (0..len)
            .map(|j| (j as u32 ^ i.wrapping_mul(0x9e37_79b9)) as u8)
            .collect()
    };
    let n = 300u32;
    for i in 0..n {
        a.transport.send(2, message(i)).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    b.wait("all messages", |s| s.messages.len() >= n as usize);
    let got = b.messages_from(1);
    assert_eq!(got.len(), n as usize);
    for (i, m) in got.iter().enumerate() {
        assert!(*m == message(i as u32), "message {i} differs");
    }
    assert_eq!(b.transport.stats().messages_received, n as u64);
    assert_eq!(b.seen.lock().unwrap().lanes_opened, 1);
    // Nothing arrived through the inbox (the owner would have panicked).
    assert_eq!(b.transport.stats().inbound_protocol_errors, 0);
}

#[test]
fn bad_frames_close_the_lane_and_the_member_reconnects() {
    let b = Member::start(2, |_| {});
    b.transport
        .add_peer(1, "127.0.0.1:9".parse().unwrap())
        .unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&mut TcpStream)>)> = vec![
        (
            "crc mismatch",
            Box::new(|s: &mut TcpStream| {
                let mut wire = Vec::new();
                write_frame(&mut wire, FrameKind::Message, b"hello").unwrap();
                wire[12] ^= 1;
                s.write_all(&wire).unwrap();
            }),
        ),
        (
            "exceeds the limit",
            Box::new(|s: &mut TcpStream| {
                s.write_all(&[0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0])
                    .unwrap();
            }),
        ),
        (
            "unexpected SnapshotChunk frame",
            Box::new(|s: &mut TcpStream| {
                write_frame(s, FrameKind::SnapshotChunk, b"x").unwrap();
            }),
        ),
        (
            "in the middle of a frame",
            Box::new(|s: &mut TcpStream| {
                let mut wire = Vec::new();
                write_frame(&mut wire, FrameKind::Message, b"cut short").unwrap();
                s.write_all(&wire[..12]).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
            }),
        ),
    ];
    for (k, (what, send_bad)) in cases.iter().enumerate() {
        let mut s = raw_lane(&b, 1);
        write_frame(&mut s, FrameKind::Message, format!("good {k}").as_bytes()).unwrap();
        send_bad(&mut s);
        assert!(closed_by_peer(&mut s), "{what}: lane not closed");
        b.wait(what, |seen| seen.lanes_closed == k + 1);
        let stats = b.transport.stats();
        assert_eq!(stats.inbound_protocol_errors, k as u64 + 1, "{what}");
        assert!(
            stats
                .last_inbound_error
                .as_deref()
                .unwrap_or("")
                .contains(what),
            "{what}: {:?}",
            stats.last_inbound_error
        );
    }
    let good: Vec<Vec<u8>> = (0..cases.len())
        .map(|k| format!("good {k}").into_bytes())
        .collect();
    assert_eq!(
        b.messages_from(1),
        good,
        "the good frame before each bad one arrived"
    );
    // The member dials again and its messages flow.
    let mut s = raw_lane(&b, 1);
    write_frame(&mut s, FrameKind::Message, b"after").unwrap();
    b.wait("message after reconnect", |seen| {
        seen.messages.len() == cases.len() + 1
    });
}

#[test]
fn removal_or_a_newer_connection_closes_the_lane_and_dropped_lanes_free_their_slots() {
    // Two slots: if closed lanes did not give theirs back, the third connection would be
    // refused as busy.
    let b = Member::start(2, |cfg| cfg.max_inbound_connections = 2);
    b.transport
        .add_peer(1, "127.0.0.1:9".parse().unwrap())
        .unwrap();
    let mut first = raw_lane(&b, 1);
    write_frame(&mut first, FrameKind::Message, b"one").unwrap();
    b.wait("first lane", |s| s.messages.len() == 1);
    let mut second = raw_lane(&b, 1);
    assert!(closed_by_peer(&mut first), "the older lane stays open");
    b.wait("older lane dropped", |s| s.lanes_closed == 1);
    write_frame(&mut second, FrameKind::Message, b"two").unwrap();
    b.wait("second lane", |s| s.messages.len() == 2);
    b.transport.remove_peer(1).unwrap();
    assert!(
        closed_by_peer(&mut second),
        "removing the peer leaves its lane open"
    );
    b.wait("lane of the removed peer dropped", |s| s.lanes_closed == 2);
    b.transport
        .add_peer(1, "127.0.0.1:9".parse().unwrap())
        .unwrap();
    for k in 0..3 {
        let mut s = raw_lane(&b, 1);
        write_frame(&mut s, FrameKind::Message, format!("again {k}").as_bytes()).unwrap();
        b.wait("message on a new lane", |seen| seen.messages.len() == 3 + k);
    }
    assert_eq!(b.transport.stats().inbound_rejected, 0);
}

/// A lane waiting in the inbox when the owner drops the inbox (e.g. it stops) is closed and
/// gives its connection slot back, like a lane handed over after the drop. (It used to stay
/// in the dead inbox: its connection open, its slot taken, and — the lane holding the
/// transport's state, which holds the inbox — never freed.)
#[test]
fn a_lane_pending_in_a_dropped_inbox_is_closed_and_frees_its_slot() {
    let mut cfg = PeerTransportConfig::new(CLUSTER, 2, "127.0.0.1:0".parse().unwrap());
    cfg.message_lanes_to_owner = true;
    cfg.max_inbound_connections = 1;
    // Our dial to member 1 waits for its handshake reply for a minute: no `Unreachable`
    // event, so the lane is the only event the inbox can hold.
    cfg.handshake_timeout = Duration::from_secs(60);
    cfg.log = Arc::new(|_: &str| {});
    let (transport, inbox) = PeerTransport::start(cfg, || {}).unwrap();
    let silent_member = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    transport
        .add_peer(1, silent_member.local_addr().unwrap())
        .unwrap();
    let dial = || {
        let mut s = TcpStream::connect(transport.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            lane: Lane::Messages,
            cluster_id: CLUSTER,
            from: 1,
            to: 2,
        };
        s.write_all(&hello.encode()).unwrap();
        let mut reply = [0u8; REPLY_LEN];
        // A busy refusal closes the connection right after its reply (maybe with a reset).
        let reply = match s.read_exact(&mut reply) {
            Ok(()) => Reply::decode(&reply).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        (s, reply)
    };
    let (mut pending, reply) = dial();
    reply.expect("first lane accepted");
    let deadline = Instant::now() + PATIENCE;
    while inbox.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the lane never reached the inbox"
        );
        assert_eq!(transport.peer_stats(1).unwrap().connect_failures, 0);
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(inbox);
    assert!(
        closed_by_peer(&mut pending),
        "the lane left in the dropped inbox stays open"
    );
    // Its slot (the only one) is free again: the next connection is not refused as busy.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (mut s, reply) = dial();
        if reply.is_ok() {
            // Handed over to an owner that is gone: closed at once.
            assert!(closed_by_peer(&mut s));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot of the dropped lane was never given back: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        transport.stats().inbound_rejected <= 1,
        "{:?}",
        transport.stats()
    );
}

/// A burst larger than one call's read budget (the owner's loop was paused while it was
/// sent) is read over several calls — each returning `Pending`, resumed from a timer — and
/// arrives whole and in order. If the owner did not resume a pending lane, what the socket
/// still holds after the sender is done would wait for a readiness edge that never comes, and
/// this test would time out.
#[test]
fn a_burst_beyond_the_read_budget_is_read_over_several_calls() {
    let a = Member::start(1, |_| {});
    let b = Member::start(2, |cfg| cfg.lane_read_budget = 8 << 10);
    a.transport.add_peer(2, b.addr()).unwrap();
    b.transport.add_peer(1, a.addr()).unwrap();
    a.transport.send(2, b"hello".to_vec()).unwrap();
    b.wait("first message", |s| s.messages.len() == 1);
    b.paused.store(true, Ordering::SeqCst);
    let message = |i: u32| -> Vec<u8> { vec![(i % 251) as u8; 1000 + i as usize] };
    let n = 200u32;
    for i in 0..n {
        a.transport.send(2, message(i)).unwrap();
    }
    // Let everything reach the sockets.
    std::thread::sleep(Duration::from_millis(300));
    b.paused.store(false, Ordering::SeqCst);
    b.wait("the burst", |s| s.messages.len() == 1 + n as usize);
    let got = b.messages_from(1);
    for (i, m) in got[1..].iter().enumerate() {
        assert!(*m == message(i as u32), "message {i} differs");
    }
    assert!(
        b.seen.lock().unwrap().pending_reads >= 1,
        "no read stopped at the budget"
    );
}
