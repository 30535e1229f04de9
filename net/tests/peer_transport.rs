//! The peer transport on loopback: message exchange between two and three members, peers
//! that are down and come back, peers that stop reading, a large snapshot while messages keep
//! flowing, handshake refusals, and garbage on the peer port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel_net::peer::frame::{
    encode_frame_into, read_frame, write_frame, FrameKind, SnapshotAck, SnapshotBegin,
};
use keel_net::peer::handshake::{
    Hello, Lane, Reply, Verdict, HELLO_LEN, PROTOCOL_VERSION, REPLY_LEN,
};
use keel_net::peer::{Inbox, PeerEvent, PeerTransport, PeerTransportConfig, SendError};

const CLUSTER: u64 = 0x6b65_656c;
const PATIENCE: Duration = Duration::from_secs(20);

struct Member {
    transport: PeerTransport,
    inbox: Inbox,
    log: Arc<Mutex<Vec<String>>>,
    wakes: Arc<AtomicUsize>,
}

impl Member {
    fn logged(&self, needle: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(needle))
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn config(id: u64, addr: SocketAddr) -> (PeerTransportConfig, Arc<Mutex<Vec<String>>>) {
    let mut cfg = PeerTransportConfig::new(CLUSTER, id, addr);
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    cfg.log = Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_string()));
    cfg.backoff_initial = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(200);
    cfg.handshake_timeout = Duration::from_millis(500);
    (cfg, log)
}

fn start_with(cfg: PeerTransportConfig, log: Arc<Mutex<Vec<String>>>) -> Member {
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    let (transport, inbox) = PeerTransport::start(cfg, move || {
        w.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    Member {
        transport,
        inbox,
        log,
        wakes,
    }
}

fn start(id: u64) -> Member {
    let (cfg, log) = config(id, loopback());
    start_with(cfg, log)
}

/// Connects every member to every other.
fn mesh(members: &[&Member]) {
    for a in members {
        for b in members {
            if a.transport.local_id() != b.transport.local_id() {
                a.transport
                    .add_peer(b.transport.local_id(), b.transport.local_addr())
                    .unwrap();
            }
        }
    }
}

/// Receives events until `done` says stop; panics after PATIENCE.
fn collect_until(inbox: &Inbox, mut done: impl FnMut(&PeerEvent) -> bool) -> Vec<PeerEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = inbox
            .recv_timeout(left)
            .unwrap_or_else(|| panic!("timed out; got so far: {events:?}"));
        let stop = done(&event);
        events.push(event);
        if stop {
            return events;
        }
    }
}

fn messages_from(events: &[PeerEvent], sender: u64) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            PeerEvent::Message { from, payload } if *from == sender => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// An address nothing listens on (bound once, then released).
fn free_addr() -> SocketAddr {
    TcpListener::bind(loopback()).unwrap().local_addr().unwrap()
}

fn hello(from: u64, to: u64, lane: Lane) -> [u8; HELLO_LEN] {
    Hello {
        version: PROTOCOL_VERSION,
        lane,
        cluster_id: CLUSTER,
        from,
        to,
    }
    .encode()
}

/// Opens a raw connection to `member` as member `from` and completes the handshake.
fn raw_peer(member: &Member, from: u64, lane: Lane) -> TcpStream {
    let mut s = TcpStream::connect(member.transport.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&hello(from, member.transport.local_id(), lane))
        .unwrap();
    let mut reply = [0u8; REPLY_LEN];
    s.read_exact(&mut reply).unwrap();
    Reply::decode(&reply).expect("handshake accepted");
    s
}

/// Reads until the other side closes the connection; true if it did within PATIENCE.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn two_members_exchange_messages_in_order() {
    let a = start(1);
    let b = start(2);
    mesh(&[&a, &b]);
    let n = 2000u32;
    for i in 0..n {
        a.transport
            .send(2, format!("a->b {i}").into_bytes())
            .unwrap();
        b.transport
            .send(1, format!("b->a {i}").into_bytes())
            .unwrap();
    }
    let mut got = 0;
    let at_b = collect_until(&b.inbox, |_| {
        got += 1;
        got == n
    });
    let mut got = 0;
    let at_a = collect_until(&a.inbox, |_| {
        got += 1;
        got == n
    });
    let expect = |dir: &str| {
        (0..n)
            .map(|i| format!("{dir} {i}").into_bytes())
            .collect::<Vec<_>>()
    };
    assert_eq!(messages_from(&at_b, 1), expect("a->b"));
    assert_eq!(messages_from(&at_a, 2), expect("b->a"));
    assert!(a.wakes.load(Ordering::SeqCst) >= 1 && b.wakes.load(Ordering::SeqCst) >= 1);
    // The writer counts a batch after its write returns, which can be after the receiver
    // has it.
    wait_until("a's sent count", || {
        a.transport.peer_stats(2).unwrap().sent_messages >= n as u64
    });
    let stats = a.transport.peer_stats(2).unwrap();
    assert_eq!(stats.sent_messages, n as u64);
    assert_eq!(stats.dropped_queue_full + stats.dropped_on_failure, 0);
    assert!(stats.connected);
    assert_eq!(b.transport.stats().messages_received, n as u64);
}

#[test]
fn wake_is_called_and_rearmed_by_try_recv() {
    let a = start(1);
    let b = start(2);
    mesh(&[&a, &b]);
    a.transport.send(2, b"one".to_vec()).unwrap();
    wait_until("first wake", || b.wakes.load(Ordering::SeqCst) == 1);
    wait_until("first message", || b.inbox.len() == 1);
    assert!(b.inbox.try_recv().is_some());
    assert!(b.inbox.try_recv().is_none()); // drained: re-armed
    a.transport.send(2, b"two".to_vec()).unwrap();
    wait_until("second wake", || b.wakes.load(Ordering::SeqCst) == 2);
}

#[test]
fn three_members_all_pairs() {
    let members = [start(1), start(2), start(3)];
    mesh(&members.iter().collect::<Vec<_>>());
    for m in &members {
        for to in 1..=3u64 {
            if to != m.transport.local_id() {
                for i in 0..100u32 {
                    let payload = format!("{}->{to} #{i}", m.transport.local_id());
                    m.transport.send(to, payload.into_bytes()).unwrap();
                }
            }
        }
    }
    for m in &members {
        let me = m.transport.local_id();
        let mut got = 0;
        let events = collect_until(&m.inbox, |_| {
            got += 1;
            got == 200
        });
        for from in (1..=3u64).filter(|f| *f != me) {
            let expected: Vec<Vec<u8>> = (0..100)
                .map(|i| format!("{from}->{me} #{i}").into_bytes())
                .collect();
            assert_eq!(
                messages_from(&events, from),
                expected,
                "at member {me} from {from}"
            );
        }
    }
}

#[test]
fn peer_down_then_up_then_restarted() {
    let a = start(1);
    let b_addr = free_addr();
    a.transport.add_peer(2, b_addr).unwrap();
    a.transport.send(2, b"sent while down".to_vec()).unwrap();

    // A keeps failing to connect and reports the peer unreachable (for Raft's
    // report_unreachable), with backoff between attempts.
    collect_until(&a.inbox, |e| *e == PeerEvent::Unreachable { peer: 2 });
    wait_until("several attempts", || {
        a.transport.peer_stats(2).unwrap().connect_failures >= 3
    });
    let stats = a.transport.peer_stats(2).unwrap();
    assert!(!stats.connected);
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap()
            .contains("cannot reach peer 0x2"),
        "{stats:?}"
    );
    assert_eq!(stats.queued_messages, 1);

    // B comes up on that address: the queued message is delivered after reconnecting.
    let (cfg, log) = config(2, b_addr);
    let b = start_with(cfg, log);
    b.transport.add_peer(1, a.transport.local_addr()).unwrap();
    let events = collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    assert_eq!(messages_from(&events, 1), vec![b"sent while down".to_vec()]);
    a.transport.send(2, b"after".to_vec()).unwrap();
    let events = collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    assert_eq!(messages_from(&events, 1), vec![b"after".to_vec()]);
    assert!(a.logged("connected to peer 0x2"));

    // B restarts (same address) while the link is idle. A notices the closed connection
    // before writing, redials, and the first message after the restart is not lost.
    drop(b);
    std::thread::sleep(Duration::from_millis(150));
    let (cfg, log) = config(2, b_addr);
    let b = start_with(cfg, log);
    b.transport.add_peer(1, a.transport.local_addr()).unwrap();
    a.transport
        .send(2, b"first after restart".to_vec())
        .unwrap();
    let events = collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    assert_eq!(
        messages_from(&events, 1),
        vec![b"first after restart".to_vec()]
    );
    assert_eq!(a.transport.peer_stats(2).unwrap().dropped_on_failure, 0);
}

/// A fake member that completes the handshake and then never reads.
fn stalled_peer(id: u64) -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let mut hello = [0u8; HELLO_LEN];
                    if s.read_exact(&mut hello).is_ok() {
                        let reply = Reply {
                            verdict: Verdict::Accepted,
                            cluster_id: CLUSTER,
                            member_id: id,
                        };
                        let _ = s.write_all(&reply.encode());
                    }
                    held.push(s); // never read again
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (addr, stop, handle)
}

#[test]
fn a_peer_that_stops_reading_does_not_stall_the_others() {
    let (mut cfg, log) = config(1, loopback());
    cfg.max_queue_bytes = 2 << 20; // 32 messages of 64 KiB
    cfg.write_timeout = Duration::from_secs(3);
    let a = start_with(cfg, log);
    let b = start(2);
    a.transport.add_peer(2, b.transport.local_addr()).unwrap();
    b.transport.add_peer(1, a.transport.local_addr()).unwrap();
    let (stalled_addr, stop_stalled, stalled_thread) = stalled_peer(3);
    a.transport.add_peer(3, stalled_addr).unwrap();

    // Fill the stalled peer's socket buffers and then its queue, until nothing moves any more:
    // the writer is blocked in write() and the queue is at its byte limit.
    let big = vec![0x5a; 64 << 10];
    let deadline = Instant::now() + PATIENCE;
    let (mut last_sent, mut still_since, mut saw_full) = (0, Instant::now(), false);
    loop {
        match a.transport.send(3, big.clone()) {
            Ok(()) => {}
            Err(SendError::QueueFull { .. }) => {
                saw_full = true;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("unexpected {e}"),
        }
        let stats = a.transport.peer_stats(3).unwrap();
        if stats.sent_bytes != last_sent {
            (last_sent, still_since) = (stats.sent_bytes, Instant::now());
        }
        if saw_full && still_since.elapsed() > Duration::from_millis(300) {
            break;
        }
        assert!(Instant::now() < deadline, "peer never stalled: {stats:?}");
    }
    // Now send() to it fails fast, and the queue stays within its bounds.
    match a.transport.send(3, big.clone()) {
        Err(SendError::QueueFull {
            peer: 3,
            queued_bytes,
            ..
        }) => assert!(queued_bytes <= 2 << 20),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    let stats = a.transport.peer_stats(3).unwrap();
    assert!(stats.dropped_queue_full >= 2, "{stats:?}");
    assert!(
        stats.queued_bytes + big.len() > 2 << 20 && stats.queued_bytes <= 2 << 20,
        "{stats:?}"
    );
    assert_eq!(
        stats.dropped_on_failure, 0,
        "the stall outlasted the write timeout: {stats:?}"
    );

    // Meanwhile the healthy peer gets everything.
    for i in 0..200u32 {
        a.transport.send(2, i.to_le_bytes().to_vec()).unwrap();
    }
    let mut got = 0;
    let events = collect_until(&b.inbox, |_| {
        got += 1;
        got == 200
    });
    let expected: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(messages_from(&events, 1), expected);

    // The blocked write times out: the stalled peer is reported unreachable, with the reason.
    collect_until(&a.inbox, |e| *e == PeerEvent::Unreachable { peer: 3 });
    wait_until("write-timeout reason", || a.logged("did not read"));
    assert!(a.transport.peer_stats(3).unwrap().dropped_on_failure >= 1);

    stop_stalled.store(true, Ordering::SeqCst);
    drop(a);
    stalled_thread.join().unwrap();
}

#[test]
fn queue_limits_and_send_errors() {
    let (mut cfg, log) = config(1, loopback());
    cfg.max_queue_bytes = 1000;
    cfg.max_message_bytes = 600;
    let a = start_with(cfg, log);
    a.transport.add_peer(2, free_addr()).unwrap(); // never reachable
    for _ in 0..3 {
        a.transport.send(2, vec![1; 300]).unwrap();
    }
    assert_eq!(
        a.transport.send(2, vec![1; 300]),
        Err(SendError::QueueFull {
            peer: 2,
            queued_messages: 3,
            queued_bytes: 900
        })
    );
    assert_eq!(
        a.transport.send(2, vec![1; 601]),
        Err(SendError::TooLarge { len: 601, max: 600 })
    );
    assert_eq!(a.transport.send(9, vec![1]), Err(SendError::UnknownPeer(9)));
    let stats = a.transport.peer_stats(2).unwrap();
    assert_eq!(
        (
            stats.queued_messages,
            stats.queued_bytes,
            stats.dropped_queue_full
        ),
        (3, 900, 1)
    );
    assert!(a.transport.add_peer(1, free_addr()).is_err());
    assert!(a.transport.add_peer(2, free_addr()).is_err());
    a.transport.remove_peer(2).unwrap();
    assert_eq!(a.transport.send(2, vec![1]), Err(SendError::UnknownPeer(2)));
    assert!(a.transport.peers().is_empty());
    a.transport.shutdown();
    assert_eq!(a.transport.send(2, vec![1]), Err(SendError::ShutDown));
}

#[test]
fn big_snapshot_does_not_hold_back_messages() {
    let (mut cfg, log) = config(1, loopback());
    // Pace the snapshot (~0.5 s for 20 MiB) so the test can observe interleaving reliably.
    cfg.snapshot_rate_limit = Some(40 << 20);
    let a = Arc::new(start_with(cfg, log));
    let b = start(2);
    mesh(&[&a, &b]);
    let snapshot: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    // Warm up the message lane.
    a.transport.send(2, b"hello".to_vec()).unwrap();
    collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));

    let epoch = Instant::now();
    let sending = Arc::new(AtomicBool::new(true));
    let (sender_a, flag) = (a.clone(), sending.clone());
    let ticker = std::thread::spawn(move || {
        while flag.load(Ordering::SeqCst) {
            let now = epoch.elapsed().as_nanos() as u64;
            let _ = sender_a.transport.send(2, now.to_le_bytes().to_vec());
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    a.transport.send_snapshot(2, 77, snapshot.clone()).unwrap();
    assert_eq!(
        a.transport.send_snapshot(2, 78, vec![1]),
        Err(SendError::SnapshotInProgress(2))
    );

    let mut latencies = Vec::new();
    let events = collect_until(&b.inbox, |e| {
        if let PeerEvent::Message { payload, .. } = e {
            let sent = u64::from_le_bytes(payload[..8].try_into().unwrap());
            latencies.push(epoch.elapsed().as_nanos() as u64 - sent);
        }
        matches!(e, PeerEvent::Snapshot { .. })
    });
    sending.store(false, Ordering::SeqCst);
    ticker.join().unwrap();

    let Some(PeerEvent::Snapshot {
        from,
        snapshot_id,
        data,
    }) = events.last()
    else {
        panic!()
    };
    assert_eq!((*from, *snapshot_id, data.len()), (1, 77, snapshot.len()));
    assert!(*data == snapshot, "snapshot bytes differ");
    // Messages kept arriving while the snapshot was in transit on its own lane.
    assert!(
        latencies.len() >= 20,
        "only {} messages arrived during the snapshot",
        latencies.len()
    );
    latencies.sort_unstable();
    eprintln!(
        "{} messages during a 20 MiB snapshot: median latency {:?}, max {:?}",
        latencies.len(),
        Duration::from_nanos(latencies[latencies.len() / 2]),
        Duration::from_nanos(*latencies.last().unwrap())
    );
    let status = collect_until(&a.inbox, |e| matches!(e, PeerEvent::SnapshotStatus { .. }));
    assert_eq!(
        status.last(),
        Some(&PeerEvent::SnapshotStatus {
            to: 2,
            snapshot_id: 77,
            result: Ok(())
        })
    );
    assert_eq!(a.transport.peer_stats(2).unwrap().snapshots_sent, 1);
    assert_eq!(b.transport.stats().snapshots_received, 1);
}

#[test]
fn snapshot_to_an_unreachable_peer_reports_failure() {
    let a = start(1);
    a.transport.add_peer(2, free_addr()).unwrap();
    a.transport.send_snapshot(2, 5, vec![7; 1000]).unwrap();
    let events = collect_until(&a.inbox, |e| matches!(e, PeerEvent::SnapshotStatus { .. }));
    match events.last() {
        Some(PeerEvent::SnapshotStatus {
            to: 2,
            snapshot_id: 5,
            result: Err(why),
        }) => {
            assert!(why.contains("cannot reach peer 0x2"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.transport.peer_stats(2).unwrap().snapshots_failed, 1);
    // The slot is free again.
    a.transport.send_snapshot(2, 6, vec![7; 10]).unwrap();
}

/// Sends member `b` (as member 1, on a raw snapshot-lane connection) a 5,000-byte snapshot in
/// two chunks whose whole-snapshot CRC is wrong, checks the "crc mismatch" refusal, and returns
/// the connection.
fn send_snapshot_with_bad_crc(b: &Member, snapshot_id: u64) -> TcpStream {
    let mut s = raw_peer(b, 1, Lane::Snapshots);
    let data = vec![3u8; 5000];
    let begin = SnapshotBegin {
        snapshot_id,
        total_len: 5000,
        crc: crc32fast::hash(&data) ^ 1,
    };
    let mut wire = Vec::new();
    encode_frame_into(&mut wire, FrameKind::SnapshotBegin, &begin.encode());
    encode_frame_into(&mut wire, FrameKind::SnapshotChunk, &data[..3000]);
    encode_frame_into(&mut wire, FrameKind::SnapshotChunk, &data[3000..]);
    encode_frame_into(&mut wire, FrameKind::SnapshotEnd, &[]);
    s.write_all(&wire).unwrap();
    let ack = SnapshotAck::decode(&read_frame(&mut s, 1024).unwrap().payload).unwrap();
    assert!(
        ack.result.as_ref().unwrap_err().contains("crc mismatch"),
        "{ack:?}"
    );
    s
}

#[test]
fn corrupt_or_oversized_snapshots_are_refused() {
    let (mut cfg, log) = config(2, loopback());
    cfg.max_snapshot_bytes = 1 << 20;
    let b = start_with(cfg, log);
    b.transport.add_peer(1, free_addr()).unwrap();

    // Whole-snapshot CRC wrong (each chunk frame itself is fine).
    let mut s = send_snapshot_with_bad_crc(&b, 1);
    assert!(closed_by_peer(&mut s));

    // Larger than max_snapshot_bytes.
    let mut s = raw_peer(&b, 1, Lane::Snapshots);
    let begin = SnapshotBegin {
        snapshot_id: 2,
        total_len: 2 << 20,
        crc: 0,
    };
    write_frame(&mut s, FrameKind::SnapshotBegin, &begin.encode()).unwrap();
    let ack = SnapshotAck::decode(&read_frame(&mut s, 1024).unwrap().payload).unwrap();
    assert!(
        ack.result
            .as_ref()
            .unwrap_err()
            .contains("exceeds the limit"),
        "{ack:?}"
    );

    // More bytes than announced.
    let mut s = raw_peer(&b, 1, Lane::Snapshots);
    let begin = SnapshotBegin {
        snapshot_id: 3,
        total_len: 10,
        crc: 0,
    };
    let mut wire = Vec::new();
    encode_frame_into(&mut wire, FrameKind::SnapshotBegin, &begin.encode());
    encode_frame_into(&mut wire, FrameKind::SnapshotChunk, &[0; 11]);
    s.write_all(&wire).unwrap();
    let ack = SnapshotAck::decode(&read_frame(&mut s, 1024).unwrap().payload).unwrap();
    assert!(
        ack.result
            .as_ref()
            .unwrap_err()
            .contains("exceed the announced"),
        "{ack:?}"
    );

    assert_eq!(b.transport.stats().snapshots_rejected, 3);
    assert_eq!(b.transport.stats().snapshots_received, 0);
    while let Some(event) = b.inbox.try_recv() {
        assert!(!matches!(event, PeerEvent::Snapshot { .. }), "{event:?}");
    }
}

#[test]
fn garbage_on_the_peer_port_is_closed_and_the_member_keeps_serving() {
    let a = start(1);
    let b = start(2);
    mesh(&[&a, &b]);
    // The raw connections below speak as member 9, so they do not replace A's connection.
    b.transport.add_peer(9, free_addr()).unwrap();

    // 1. An HTTP request other than GET instead of a handshake (GET is answered; see
    //    tests/peer_http.rs).
    let mut s = TcpStream::connect(b.transport.local_addr()).unwrap();
    s.write_all(b"PUT / HTTP/1.1\r\nHost: keel\r\nAccept: */*\r\n\r\n")
        .unwrap();
    assert!(closed_by_peer(&mut s));
    wait_until("bad magic logged", || {
        b.logged("not a keel peer (bad magic)")
    });

    // 2. Valid handshake, then a frame whose CRC is wrong.
    let mut s = raw_peer(&b, 9, Lane::Messages);
    let mut wire = Vec::new();
    encode_frame_into(&mut wire, FrameKind::Message, b"tampered");
    wire[12] ^= 0xff;
    s.write_all(&wire).unwrap();
    assert!(closed_by_peer(&mut s));
    wait_until("crc logged", || b.logged("frame crc mismatch"));

    // 3. Valid handshake, then an absurd length (4 GiB).
    let mut s = raw_peer(&b, 9, Lane::Messages);
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0])
        .unwrap();
    assert!(closed_by_peer(&mut s));
    wait_until("size logged", || {
        b.logged("exceeds the limit of 16777216 bytes")
    });

    // 4. A snapshot frame on the message lane.
    let mut s = raw_peer(&b, 9, Lane::Messages);
    write_frame(&mut s, FrameKind::SnapshotEnd, &[]).unwrap();
    assert!(closed_by_peer(&mut s));
    wait_until("lane logged", || {
        b.logged("unexpected SnapshotEnd frame on the message lane")
    });

    // 5. A few bytes and then silence: the handshake times out.
    let mut s = TcpStream::connect(b.transport.local_addr()).unwrap();
    s.write_all(b"KEEL").unwrap();
    assert!(closed_by_peer(&mut s));
    wait_until("timeout logged", || b.logged("no complete handshake"));

    // 6. Corrupted hello (right magic, bad checksum): refused with a verdict.
    let mut s = TcpStream::connect(b.transport.local_addr()).unwrap();
    let mut bad = hello(9, 2, Lane::Messages);
    bad[20] ^= 1;
    s.write_all(&bad).unwrap();
    let mut reply = [0u8; REPLY_LEN];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[0], Verdict::Malformed as u8);

    wait_until("malformed hello counted", || {
        b.logged("handshake checksum mismatch")
    });
    let stats = b.transport.stats();
    assert!(stats.inbound_rejected >= 3, "{stats:?}");
    assert!(stats.inbound_protocol_errors >= 3, "{stats:?}");

    // B still serves the real peer.
    a.transport.send(2, b"still here".to_vec()).unwrap();
    let events = collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    assert_eq!(messages_from(&events, 1), vec![b"still here".to_vec()]);
}

#[test]
fn misdirected_and_stale_connections_are_refused_with_a_reason() {
    let a = start(1);
    // Different cluster.
    let (mut cfg, log) = config(2, loopback());
    cfg.cluster_id = CLUSTER + 1;
    let other_cluster = start_with(cfg, log);
    other_cluster
        .transport
        .add_peer(1, a.transport.local_addr())
        .unwrap();
    a.transport
        .add_peer(2, other_cluster.transport.local_addr())
        .unwrap();
    a.transport.send(2, b"x".to_vec()).unwrap();
    collect_until(&a.inbox, |e| *e == PeerEvent::Unreachable { peer: 2 });
    wait_until("cluster mismatch", || {
        a.transport
            .peer_stats(2)
            .unwrap()
            .last_error
            .is_some_and(|e| e.contains("cluster id mismatch"))
    });
    // (The refusing side records the reason just after sending its verdict.)
    wait_until("refusal recorded", || {
        other_cluster
            .transport
            .stats()
            .last_inbound_error
            .is_some_and(|e| e.contains("cluster id mismatch"))
    });
    while let Some(event) = other_cluster.inbox.try_recv() {
        assert!(!matches!(event, PeerEvent::Message { .. }), "{event:?}");
    }

    // Wrong receiver: A believes member 3 lives where member 4 is.
    let m4 = start(4);
    m4.transport.add_peer(1, a.transport.local_addr()).unwrap();
    a.transport.add_peer(3, m4.transport.local_addr()).unwrap();
    wait_until("wrong receiver", || {
        a.transport
            .peer_stats(3)
            .unwrap()
            .last_error
            .is_some_and(|e| e.contains("wrong receiver member id"))
    });

    // Unknown (e.g. removed) sender: member 5 does not know member 1.
    let m5 = start(5);
    a.transport.add_peer(5, m5.transport.local_addr()).unwrap();
    wait_until("unknown sender", || {
        a.transport
            .peer_stats(5)
            .unwrap()
            .last_error
            .is_some_and(|e| e.contains("unknown or removed sender"))
    });
    wait_until("refusal logged", || m5.logged("unknown or removed sender"));

    // update_peer fixes a wrong address: 3 now points at a real member 3.
    let m3 = start(3);
    m3.transport.add_peer(1, a.transport.local_addr()).unwrap();
    a.transport
        .update_peer(3, m3.transport.local_addr())
        .unwrap();
    a.transport.send(3, b"found you".to_vec()).unwrap();
    let events = collect_until(&m3.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    assert_eq!(messages_from(&events, 1), vec![b"found you".to_vec()]);
}

#[test]
fn removing_a_peer_closes_its_inbound_connections() {
    let a = start(1);
    let b = start(2);
    mesh(&[&a, &b]);
    a.transport.send(2, b"before".to_vec()).unwrap();
    collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    b.transport.remove_peer(1).unwrap();
    // A's connection is cut and its redial refused: A reports B unreachable.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let _ = a.transport.send(2, b"after removal".to_vec());
        if a.transport
            .peer_stats(2)
            .unwrap()
            .last_error
            .is_some_and(|e| e.contains("unknown or removed sender"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "removal not noticed");
        std::thread::sleep(Duration::from_millis(10));
    }
    while let Some(event) = b.inbox.try_recv() {
        assert_ne!(
            event,
            PeerEvent::Message {
                from: 1,
                payload: b"after removal".to_vec()
            }
        );
    }
}

#[test]
fn a_new_connection_from_a_member_replaces_its_old_one() {
    // Models a member that crashed or was partitioned without closing its connection
    // (half-open): when it dials again, the stale connection is closed, not kept forever.
    let b = start(2);
    b.transport.add_peer(1, free_addr()).unwrap();
    let mut old = raw_peer(&b, 1, Lane::Messages);
    let mut new = raw_peer(&b, 1, Lane::Messages);
    assert!(closed_by_peer(&mut old));
    wait_until("replacement logged", || {
        b.logged("closed 1 older connection")
    });
    write_frame(&mut new, FrameKind::Message, b"via the new connection").unwrap();
    let events = collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    assert_eq!(
        messages_from(&events, 1),
        vec![b"via the new connection".to_vec()]
    );
    // A snapshot-lane connection does not replace the message lane.
    let _snap = raw_peer(&b, 1, Lane::Snapshots);
    write_frame(&mut new, FrameKind::Message, b"still open").unwrap();
    let events = collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
    assert_eq!(messages_from(&events, 1), vec![b"still open".to_vec()]);
}

#[test]
fn one_shared_snapshot_to_two_followers_and_api_properties() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PeerTransport>();
    send_sync::<Inbox>();

    let (leader, f2, f3) = (start(1), start(2), start(3));
    mesh(&[&leader, &f2, &f3]);
    let data: Arc<[u8]> = (0..3_000_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    leader.transport.send_snapshot(2, 10, data.clone()).unwrap();
    leader.transport.send_snapshot(3, 11, data.clone()).unwrap();
    for (follower, id) in [(&f2, 10), (&f3, 11)] {
        let events = collect_until(&follower.inbox, |e| matches!(e, PeerEvent::Snapshot { .. }));
        match events.last() {
            Some(PeerEvent::Snapshot {
                from: 1,
                snapshot_id,
                data: got,
            }) => {
                assert_eq!(*snapshot_id, id);
                assert!(got[..] == data[..]);
            }
            other => panic!("{other:?}"),
        }
    }
    let mut statuses = Vec::new();
    collect_until(&leader.inbox, |e| {
        if let PeerEvent::SnapshotStatus {
            to,
            snapshot_id,
            result,
        } = e
        {
            statuses.push((*to, *snapshot_id, result.clone()));
        }
        statuses.len() == 2
    });
    statuses.sort();
    assert_eq!(statuses, vec![(2, 10, Ok(())), (3, 11, Ok(()))]);

    let (mut cfg, _) = config(0, loopback());
    assert!(matches!(
        PeerTransport::start(cfg.clone(), || {}),
        Err(keel_net::peer::TransportError::InvalidConfig(msg)) if msg.contains("local_id")
    ));
    cfg.local_id = 1;
    cfg.snapshot_chunk_bytes = cfg.max_snapshot_chunk_bytes + 1;
    assert!(PeerTransport::start(cfg, || {}).is_err());
}

#[test]
fn connections_beyond_the_limit_are_refused_as_busy() {
    let (mut cfg, log) = config(2, loopback());
    cfg.max_inbound_connections = 1;
    cfg.handshake_timeout = Duration::from_secs(10);
    let b = start_with(cfg, log);
    b.transport.add_peer(1, free_addr()).unwrap();
    let _holder = raw_peer(&b, 1, Lane::Messages); // occupies the only slot
    let mut s = TcpStream::connect(b.transport.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&hello(1, 2, Lane::Messages)).unwrap();
    let mut reply = [0u8; REPLY_LEN];
    s.read_exact(&mut reply).unwrap();
    let err = Reply::decode(&reply).unwrap_err();
    assert!(err.to_string().contains("too many connections"), "{err}");
    wait_until("busy logged", || {
        b.logged("too many inbound connections (limit 1)")
    });
}

/// With `snapshot_spool_dir`, a received snapshot is reassembled in a file of that directory
/// and delivered as `SnapshotFile` (never in memory); a corrupt one is refused and leaves no
/// file behind.
#[test]
fn snapshots_spooled_to_a_file_arrive_whole_and_corrupt_ones_leave_nothing() {
    let dir = std::env::temp_dir().join(format!(
        "keel-net-spool-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut cfg, log) = config(2, loopback());
    cfg.snapshot_spool_dir = Some(dir.clone());
    cfg.snapshot_chunk_bytes = 64 << 10;
    let b = start_with(cfg, log);
    let a = start(1);
    mesh(&[&a, &b]);

    let snapshot: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    a.transport.send_snapshot(2, 9, snapshot.clone()).unwrap();
    let events = collect_until(&b.inbox, |e| matches!(e, PeerEvent::SnapshotFile { .. }));
    let Some(PeerEvent::SnapshotFile {
        from,
        snapshot_id,
        path,
        len,
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    assert_eq!((*from, *snapshot_id, *len), (1, 9, snapshot.len() as u64));
    assert!(path.starts_with(&dir), "{path:?}");
    assert!(
        std::fs::read(path).unwrap() == snapshot,
        "spooled bytes differ"
    );
    std::fs::remove_file(path).unwrap();

    // Whole-snapshot CRC wrong: refused, and the partial file is removed.
    send_snapshot_with_bad_crc(&b, 10);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// While the writer thread is idle on an open connection, `send` writes the frame itself
/// (no thread wake-up); every message still arrives once, in order.
#[test]
fn paced_messages_are_written_by_the_sender_directly() {
    let a = start(1);
    let b = start(2);
    mesh(&[&a, &b]);
    wait_until("connected", || a.transport.peer_stats(2).unwrap().connected);
    let n = 200u32;
    for i in 0..n {
        a.transport.send(2, i.to_be_bytes().to_vec()).unwrap();
        let got = collect_until(&b.inbox, |e| matches!(e, PeerEvent::Message { .. }));
        assert_eq!(messages_from(&got, 1), vec![i.to_be_bytes().to_vec()]);
    }
    wait_until("all counted", || {
        a.transport.peer_stats(2).unwrap().sent_messages == n as u64
    });
    let stats = a.transport.peer_stats(2).unwrap();
    // The first message (and any after a pause ≥ 100 ms on a slow machine) goes through the
    // writer, which checks an idle connection first.
    assert!(stats.direct_writes >= (n as u64) * 9 / 10, "{stats:?}");
    assert_eq!(
        stats.dropped_on_failure + stats.dropped_queue_full,
        0,
        "{stats:?}"
    );
}

/// A receiver that stops reading for a while (its inbox is full): direct writes fill the
/// socket, the one that does not fit leaves its tail to the writer, later messages queue;
/// once the receiver reads again every message arrives whole and in order.
#[test]
fn a_receiver_that_pauses_gets_every_message_whole_and_in_order() {
    let (a_cfg, a_log) = config(1, loopback());
    let a = start_with(a_cfg, a_log);
    let (mut b_cfg, b_log) = config(2, loopback());
    b_cfg.inbox_capacity = 2;
    let b = start_with(b_cfg, b_log);
    mesh(&[&a, &b]);
    wait_until("connected", || a.transport.peer_stats(2).unwrap().connected);
    let message = |i: u32| -> Vec<u8> {
        let len = 20_000 + (i as usize * 7919) % 60_000;
        (0..len)
            .map(|j| (j as u32 ^ i.wrapping_mul(2654435761)) as u8)
            .collect()
    };
    let n = 400u32;
    for i in 0..n {
        a.transport.send(2, message(i)).unwrap();
        if i % 4 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // let the writer go idle
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut got = 0;
    let events = collect_until(&b.inbox, |e| {
        got += u32::from(matches!(e, PeerEvent::Message { .. }));
        got == n
    });
    let received = messages_from(&events, 1);
    assert_eq!(received.len(), n as usize);
    for (i, m) in received.iter().enumerate() {
        assert!(*m == message(i as u32), "message {i} differs");
    }
    let stats = a.transport.peer_stats(2).unwrap();
    assert!(stats.direct_writes > 0, "{stats:?}");
    assert_eq!(
        stats.dropped_on_failure + stats.dropped_queue_full,
        0,
        "{stats:?}"
    );
}

/// Several threads send (directly and deferred + flush, small and large messages) while the
/// connection is redialed again and again and the receiver pauses now and then: direct
/// writes, partial writes left to the writer, and connection changes race. No frame is ever
/// corrupted or interleaved with another (the receiver would see a CRC, length or kind
/// error), no message arrives twice or altered, and every message is accounted for exactly
/// once: sent, dropped on failure, or refused as queue full. (With redials, messages already
/// written to a replaced connection may be lost: the receiver shuts the older connection when
/// the newer one arrives.)
fn racing_senders(redial: bool) {
    let (a_cfg, a_log) = config(1, loopback());
    let a = start_with(a_cfg, a_log);
    let (mut b_cfg, b_log) = config(2, loopback());
    b_cfg.inbox_capacity = 64;
    let b = start_with(b_cfg, b_log);
    mesh(&[&a, &b]);
    wait_until("connected", || a.transport.peer_stats(2).unwrap().connected);
    const SENDERS: u8 = 4;
    const PER_SENDER: u32 = 1500;
    let message = |sender: u8, seq: u32| -> Vec<u8> {
        let len = if seq % 16 == 0 {
            150_000
        } else {
            40 + seq as usize % 300
        };
        let mut m = Vec::with_capacity(len);
        m.push(sender);
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend(
            (5..len).map(|j| (j as u32 ^ seq.wrapping_mul(0x9e37_79b9) ^ sender as u32) as u8),
        );
        m
    };
    let done = AtomicBool::new(false);
    let accounted = AtomicBool::new(false);
    // Messages the receiver must have before it stops (set with `accounted`).
    let expected = std::sync::atomic::AtomicU64::new(0);
    let received = std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut got = std::collections::HashSet::new();
            let mut k = 0u64;
            let mut deadline = None;
            while !accounted.load(Ordering::SeqCst)
                || !b.inbox.is_empty()
                || (got.len() as u64) < expected.load(Ordering::SeqCst)
            {
                if accounted.load(Ordering::SeqCst)
                    && *deadline.get_or_insert_with(|| Instant::now() + PATIENCE) < Instant::now()
                {
                    break; // the caller's assertion says what is missing
                }
                if let Some(PeerEvent::Message { from: 1, payload }) =
                    b.inbox.recv_timeout(Duration::from_millis(50))
                {
                    let sender = payload[0];
                    let seq = u32::from_be_bytes(payload[1..5].try_into().unwrap());
                    assert!(
                        payload == message(sender, seq),
                        "message {sender}/{seq} altered"
                    );
                    assert!(got.insert((sender, seq)), "message {sender}/{seq} twice");
                    k += 1;
                    if k % 500 == 0 {
                        std::thread::sleep(Duration::from_millis(20)); // the socket fills
                    }
                }
            }
            got.len() as u64
        });
        let redialer = s.spawn(|| {
            let mut redials = 0;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(15));
                if redial {
                    a.transport
                        .update_peer(2, b.transport.local_addr())
                        .unwrap();
                    redials += 1;
                }
            }
            redials
        });
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let (a, message) = (&a, &message);
                s.spawn(move || {
                    for seq in 0..PER_SENDER {
                        let m = message(sender, seq);
                        if seq % 3 == 0 {
                            let _ = a.transport.send_deferred(2, m);
                            if seq % 2 == 0 {
                                a.transport.flush();
                            }
                        } else {
                            let _ = a.transport.send(2, m);
                        }
                    }
                    a.transport.flush();
                })
            })
            .collect();
        for t in senders {
            t.join().unwrap();
        }
        // Let the writer drain what is queued, on a connection that stays.
        std::thread::sleep(Duration::from_millis(100));
        done.store(true, Ordering::SeqCst);
        assert!(!redial || redialer.join().unwrap() > 3);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let st = a.transport.peer_stats(2).unwrap();
            if st.queued_messages == 0
                && st.sent_messages + st.dropped_on_failure + st.dropped_queue_full
                    == (SENDERS as u64) * (PER_SENDER as u64)
            {
                break;
            }
            assert!(Instant::now() < deadline, "not all accounted for: {st:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        if !redial {
            // On one connection, everything counted as sent is on its way to b's inbox.
            let sent = a.transport.peer_stats(2).unwrap().sent_messages;
            expected.store(sent, Ordering::SeqCst);
        } else {
            // What the writer counted as sent is in b's socket buffers or inbox by now, or lost
            // with a replaced connection.
            std::thread::sleep(Duration::from_millis(200));
        }
        accounted.store(true, Ordering::SeqCst);
        receiver.join().unwrap()
    });
    let st = a.transport.peer_stats(2).unwrap();
    let total = (SENDERS as u64) * (PER_SENDER as u64);
    assert_eq!(
        st.sent_messages + st.dropped_on_failure + st.dropped_queue_full,
        total,
        "{st:?}"
    );
    assert!(received <= st.sent_messages, "received {received}, {st:?}");
    assert!(
        received > 0 && st.direct_writes > 0,
        "received {received}, {st:?}"
    );
    let log = b.log.lock().unwrap();
    let broken: Vec<&String> = log
        .iter()
        .filter(|l| {
            ["crc", "exceeds", "unknown frame kind", "unexpected"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    assert!(broken.is_empty(), "corrupt frames: {broken:?}");
    if !redial {
        // One connection throughout: every message written arrives.
        assert_eq!(received, st.sent_messages, "{st:?}");
        assert_eq!(b.transport.stats().inbound_protocol_errors, 0);
    }
}

#[test]
fn racing_senders_on_one_connection_deliver_every_message_sent() {
    racing_senders(false);
}

#[test]
fn racing_senders_and_redials_never_interleave_frames_and_count_every_message() {
    racing_senders(true);
}
