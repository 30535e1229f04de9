//! Soak test of the peer transport (runs only with `KEEL_SOAK=1`; `KEEL_SOAK_SECS`, default 60):
//! three members exchange messages continuously while members are restarted and removed/re-added
//! at random (seeded); afterwards every pair must deliver again, nothing panicked, and once
//! everything is dropped no transport thread is left running (no thread leak).
//!
//! `KEEL_SOAK=1 CARGO_TARGET_DIR=/work/target-netpeer cargo test --release -p keel-net --test peer_soak -- --nocapture`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel_net::peer::{Inbox, PeerEvent, PeerTransport, PeerTransportConfig, SplitMix64};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn start(id: u64, addr: SocketAddr) -> (PeerTransport, Inbox) {
    let mut cfg = PeerTransportConfig::new(42, id, addr);
    cfg.log = Arc::new(|_: &str| {});
    cfg.backoff_initial = Duration::from_millis(5);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.write_timeout = Duration::from_millis(500);
    PeerTransport::start(cfg, || {}).unwrap()
}

type Slot = Arc<Mutex<Option<(PeerTransport, Inbox)>>>;

#[test]
fn soak_restarts_and_membership_churn() {
    if std::env::var("KEEL_SOAK").as_deref() != Ok("1") {
        eprintln!("peer_soak: skipped (set KEEL_SOAK=1)");
        return;
    }
    let secs: u64 = std::env::var("KEEL_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let threads_before = thread_count();
    let ids = [1u64, 2, 3];
    let addrs: Vec<SocketAddr> = ids
        .iter()
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .collect();
    let slots: Vec<Slot> = ids
        .iter()
        .zip(&addrs)
        .map(|(id, a)| Arc::new(Mutex::new(Some(start(*id, *a)))))
        .collect();
    let connect = |slot: &Slot, me: usize| {
        let guard = slot.lock().unwrap();
        let (t, _) = guard.as_ref().unwrap();
        for (j, id) in ids.iter().enumerate() {
            if j != me {
                let _ = t.add_peer(*id, addrs[j]);
            }
        }
    };
    for (i, slot) in slots.iter().enumerate() {
        connect(slot, i);
    }
    let running = Arc::new(AtomicBool::new(true));
    let mut workers = Vec::new();
    let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (i, slot) in slots.iter().enumerate() {
        let (slot, running, delivered) = (slot.clone(), running.clone(), delivered.clone());
        workers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while running.load(Ordering::SeqCst) {
                if let Some((t, inbox)) = slot.lock().unwrap().as_ref() {
                    for to in [1u64, 2, 3].into_iter().filter(|to| *to != i as u64 + 1) {
                        let _ = t.send(to, n.to_le_bytes().repeat(1 + (n % 64) as usize));
                    }
                    while let Some(event) = inbox.try_recv() {
                        if matches!(event, PeerEvent::Message { .. }) {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        }));
    }
    let mut rng = SplitMix64::new(7);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut restarts = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50 + rng.next_u64() % 300));
        let victim = (rng.next_u64() % 3) as usize;
        if rng.next_u64() % 2 == 0 {
            // Restart the member on the same address.
            let old = slots[victim].lock().unwrap().take();
            drop(old);
            std::thread::sleep(Duration::from_millis(rng.next_u64() % 200));
            *slots[victim].lock().unwrap() = Some(start(ids[victim], addrs[victim]));
            connect(&slots[victim], victim);
            restarts += 1;
        } else {
            // Another member forgets it and re-adds it.
            let other = (victim + 1 + (rng.next_u64() % 2) as usize) % 3;
            if let Some((t, _)) = slots[other].lock().unwrap().as_ref() {
                let _ = t.remove_peer(ids[victim]);
                let _ = t.add_peer(ids[victim], addrs[victim]);
            }
        }
    }
    running.store(false, Ordering::SeqCst);
    for w in workers {
        w.join().expect("worker panicked");
    }
    eprintln!(
        "peer_soak: {restarts} restarts, {} messages delivered",
        delivered.load(Ordering::Relaxed)
    );
    assert!(delivered.load(Ordering::Relaxed) > 0);

    // Healed: every ordered pair delivers a fresh message.
    for (i, from) in slots.iter().enumerate() {
        for (j, to) in slots.iter().enumerate() {
            if i == j {
                continue;
            }
            let marker = format!("final {i}->{j}").into_bytes();
            let limit = Instant::now() + Duration::from_secs(20);
            'wait: loop {
                from.lock()
                    .unwrap()
                    .as_ref()
                    .unwrap()
                    .0
                    .send(ids[j], marker.clone())
                    .ok();
                let guard = to.lock().unwrap();
                let inbox = &guard.as_ref().unwrap().1;
                while let Some(event) = inbox.recv_timeout(Duration::from_millis(50)) {
                    if event
                        == (PeerEvent::Message {
                            from: ids[i],
                            payload: marker.clone(),
                        })
                    {
                        break 'wait;
                    }
                }
                assert!(
                    Instant::now() < limit,
                    "pair {i}->{j} never delivered after healing"
                );
            }
        }
    }
    for slot in &slots {
        drop(slot.lock().unwrap().take());
    }
    // All transport threads are joined on drop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while thread_count() > threads_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        thread_count() <= threads_before,
        "threads leaked: {} > {threads_before}",
        thread_count()
    );
}
