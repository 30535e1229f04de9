//! The event loop as a library: server-registered timers (a Raft-style 100 ms tick), cross-thread
//! wake-ups carrying payloads, and answering a call from a wake-up sent by another thread.

use keel_net::client::{Client, ClientConfig};
use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig, TimerId};
use keel_net::grpc::{CallEvent, CallId};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Payload {
    Number(u64),
    Applied(CallId, Vec<u8>),
    Stop,
}

struct Server {
    ticks: Vec<Instant>,
    wakes: Vec<u64>,
    cancelled_fired: bool,
    cancelled_timer: Option<TimerId>,
    to_apply: mpsc::Sender<(CallId, Vec<u8>)>,
}

impl Handler<Payload> for Server {
    fn on_call(&mut self, _ctx: &mut Ctx<Payload>, event: CallEvent) {
        // Requests go to an "apply thread"; the answer comes back through the waker.
        if let CallEvent::Message { call, message } = event {
            self.to_apply.send((call, message)).unwrap();
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Payload>, _timer: TimerId, tag: u64) {
        match tag {
            1 => {
                self.ticks.push(Instant::now());
                if self.ticks.len() < 5 {
                    ctx.add_timer_after(Duration::from_millis(100), 1);
                }
            }
            2 => self.cancelled_fired = true,
            _ => {}
        }
    }

    fn on_wake(&mut self, ctx: &mut Ctx<Payload>, payload: Payload) {
        match payload {
            Payload::Number(n) => self.wakes.push(n),
            Payload::Applied(call, bytes) => {
                let _ = ctx.reply(call, &bytes);
            }
            Payload::Stop => ctx.stop(),
        }
    }
}

#[test]
fn timers_wakers_and_late_answers() {
    let mut lp = EventLoop::new(LoopConfig::default()).unwrap();
    let addr = lp.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let waker = lp.waker();
    let (tx, rx) = mpsc::channel::<(CallId, Vec<u8>)>();
    let start = Instant::now();
    lp.ctx().add_timer_after(Duration::from_millis(100), 1);
    let t = lp.ctx().add_timer_after(Duration::from_millis(50), 2);
    assert!(lp.ctx().cancel_timer(t));
    // The "apply thread": answers each request 30 ms later, through the loop's waker.
    let apply_waker = waker.clone();
    let apply = std::thread::spawn(move || {
        for (call, mut msg) in rx {
            std::thread::sleep(Duration::from_millis(30));
            msg.reverse();
            apply_waker.wake(Payload::Applied(call, msg)).unwrap();
        }
    });
    // Other threads hammer the waker with numbered payloads.
    let senders: Vec<_> = (0..4u64)
        .map(|t| {
            let w = waker.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    w.wake(Payload::Number(t * 1_000_000 + i)).unwrap();
                }
            })
        })
        .collect();
    let mut server = Server {
        ticks: Vec::new(),
        wakes: Vec::new(),
        cancelled_fired: false,
        cancelled_timer: None,
        to_apply: tx,
    };
    let loop_thread = std::thread::spawn(move || {
        lp.run(&mut server).unwrap();
        server
    });
    let mut c = Client::connect(&[addr.to_string()], ClientConfig::default()).unwrap();
    let t0 = Instant::now();
    assert_eq!(c.unary("/any.Service/Method", b"abc").unwrap(), b"cba");
    assert!(t0.elapsed() >= Duration::from_millis(30));
    for s in senders {
        s.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(600));
    waker.wake(Payload::Stop).unwrap();
    let server = loop_thread.join().unwrap();
    drop(c);
    drop(server.to_apply);
    apply.join().unwrap();

    // Every payload delivered exactly once, in order per sender.
    assert_eq!(server.wakes.len(), 4000);
    for t in 0..4u64 {
        let mine: Vec<u64> = server
            .wakes
            .iter()
            .copied()
            .filter(|w| w / 1_000_000 == t)
            .collect();
        assert_eq!(
            mine,
            (0..1000).map(|i| t * 1_000_000 + i).collect::<Vec<_>>()
        );
    }
    // Five ticks ~100 ms apart; the cancelled timer never fired.
    assert_eq!(server.ticks.len(), 5);
    assert!(!server.cancelled_fired && server.cancelled_timer.is_none());
    let mut prev = start;
    for tick in &server.ticks {
        let gap = tick.duration_since(prev);
        assert!(gap >= Duration::from_millis(99), "tick too early: {gap:?}");
        prev = *tick;
    }
}
