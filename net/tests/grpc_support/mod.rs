//! A small test service built on keel-net: an in-memory KV (etcd's KV.Put/Range), a minimal
//! Watch (bidi), and echo methods for protocol tests. Runs on its own thread.
#![allow(dead_code)]

use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig, LoopWaker, TimerId};
use keel_net::grpc::{CallEvent, CallId, Code, GrpcConfig, Metadata, Status};
use keel_net::http1::{Http1Request, Http1Response};
use keel_net::proto::etcdserverpb::{
    watch_request::RequestUnion, PutRequest, PutResponse, RangeRequest, RangeResponse,
    ResponseHeader, WatchRequest, WatchResponse,
};
use keel_net::proto::mvccpb::{Event, KeyValue};
use parking_lot::Mutex;
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const METHODS: &[&str] = &[
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.Watch/Watch",
    "/test.Echo/Unary",
    "/test.Echo/Never",
    "/test.Echo/Big",
    "/test.Echo/ServerStream",
    "/test.Echo/Bidi",
    "/test.Echo/Delayed",
];

pub enum Wake {
    Stop,
    /// Graceful shutdown of every connection (GOAWAY).
    GoAway,
    /// Reply to a call from "another thread" (simulates the apply thread).
    Reply(CallId, Vec<u8>),
}

/// What the service observed, for assertions.
#[derive(Default)]
pub struct Observed {
    pub metadata: Vec<(String, Metadata)>,
    pub cancelled: Vec<(String, keel_net::grpc::CancelReason)>,
    pub watchers: usize,
    pub started: usize,
}

struct Call {
    path: String,
    messages: Vec<Vec<u8>>,
}

pub struct TestService {
    calls: HashMap<CallId, Call>,
    kv: BTreeMap<Vec<u8>, KeyValue>,
    revision: i64,
    watchers: Vec<(CallId, i64, Vec<u8>)>,
    next_watch: i64,
    observed: Arc<Mutex<Observed>>,
    delayed: HashMap<u64, (CallId, Vec<u8>)>,
    next_tag: u64,
    /// Every call's path, kept after the call ends (so late cancellations can be attributed).
    paths: HashMap<CallId, String>,
}

fn header(rev: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: 1,
        member_id: 2,
        revision: rev,
        raft_term: 3,
    })
}

impl TestService {
    fn unary(&mut self, ctx: &mut Ctx<Wake>, call: CallId, path: &str, req: &[u8]) {
        match path {
            "/etcdserverpb.KV/Put" => {
                let Ok(p) = PutRequest::decode(req) else {
                    let _ = ctx.finish(call, Status::new(Code::Internal, "bad PutRequest"));
                    return;
                };
                self.revision += 1;
                let prev = self.kv.get(&p.key).cloned();
                let kv = KeyValue {
                    key: p.key.clone(),
                    create_revision: prev.as_ref().map_or(self.revision, |k| k.create_revision),
                    mod_revision: self.revision,
                    version: prev.as_ref().map_or(1, |k| k.version + 1),
                    value: p.value.clone(),
                    lease: p.lease,
                };
                self.kv.insert(p.key.clone(), kv.clone());
                let resp = PutResponse {
                    header: header(self.revision),
                    prev_kv: None,
                };
                let _ = ctx.reply(call, &resp.encode_to_vec());
                for (w, id, key) in &self.watchers {
                    if *key == p.key {
                        let ev = WatchResponse {
                            header: header(self.revision),
                            watch_id: *id,
                            events: vec![Event {
                                r#type: 0,
                                kv: Some(kv.clone()),
                                prev_kv: None,
                            }],
                            ..Default::default()
                        };
                        let _ = ctx.send_message(*w, &ev.encode_to_vec());
                    }
                }
            }
            "/etcdserverpb.KV/Range" => {
                let Ok(r) = RangeRequest::decode(req) else {
                    let _ = ctx.finish(call, Status::new(Code::Internal, "bad RangeRequest"));
                    return;
                };
                let kvs: Vec<KeyValue> = if r.range_end.is_empty() {
                    self.kv.get(&r.key).cloned().into_iter().collect()
                } else {
                    self.kv
                        .range(r.key.clone()..r.range_end.clone())
                        .map(|(_, v)| v.clone())
                        .collect()
                };
                let resp = RangeResponse {
                    header: header(self.revision),
                    count: kvs.len() as i64,
                    kvs,
                    more: false,
                };
                let _ = ctx.reply(call, &resp.encode_to_vec());
            }
            "/test.Echo/Unary" => {
                let _ = ctx.reply(call, req);
            }
            "/test.Echo/Never" => {} // answered only by the deadline
            "/test.Echo/Big" => {
                let n = u32::from_be_bytes(req[..4].try_into().unwrap()) as usize;
                let body: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
                let _ = ctx.reply(call, &body);
            }
            "/test.Echo/ServerStream" => {
                let n = req.first().copied().unwrap_or(0);
                for i in 0..n {
                    let _ = ctx.send_message(call, &[i]);
                }
                let _ = ctx.finish(call, Status::ok());
            }
            "/test.Echo/Delayed" => {
                // Answer from a timer later, as the server does after a Raft apply.
                let tag = self.next_tag;
                self.next_tag += 1;
                self.delayed.insert(tag, (call, req.to_vec()));
                ctx.add_timer_after(Duration::from_millis(20), tag);
            }
            _ => {
                let _ = ctx.finish(call, Status::new(Code::Internal, "not routed"));
            }
        }
    }
}

impl Handler<Wake> for TestService {
    fn on_call(&mut self, ctx: &mut Ctx<Wake>, event: CallEvent) {
        match event {
            CallEvent::Started {
                call,
                path,
                metadata,
                ..
            } => {
                let mut o = self.observed.lock();
                o.metadata.push((path.clone(), metadata));
                o.started += 1;
                drop(o);
                self.paths.insert(call, path.clone());
                self.calls.insert(
                    call,
                    Call {
                        path,
                        messages: Vec::new(),
                    },
                );
            }
            CallEvent::Message { call, message } => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                match c.path.as_str() {
                    "/etcdserverpb.Watch/Watch" => {
                        let Ok(w) = WatchRequest::decode(message.as_slice()) else {
                            return;
                        };
                        if let Some(RequestUnion::CreateRequest(cr)) = w.request_union {
                            let id = self.next_watch;
                            self.next_watch += 1;
                            self.watchers.push((call, id, cr.key));
                            self.observed.lock().watchers = self.watchers.len();
                            let resp = WatchResponse {
                                header: header(self.revision),
                                watch_id: id,
                                created: true,
                                ..Default::default()
                            };
                            let _ = ctx.send_message(call, &resp.encode_to_vec());
                        }
                    }
                    "/test.Echo/Bidi" => {
                        let _ = ctx.send_message(call, &message);
                    }
                    _ => c.messages.push(message),
                }
            }
            CallEvent::HalfClosed { call } => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.path == "/etcdserverpb.Watch/Watch" || c.path == "/test.Echo/Bidi" {
                    let _ = ctx.finish(call, Status::ok());
                    self.calls.remove(&call);
                    self.watchers.retain(|w| w.0 != call);
                    return;
                }
                let c = self.calls.remove(&call).expect("present");
                if c.messages.len() != 1 {
                    let _ = ctx.finish(
                        call,
                        Status::new(Code::Internal, "unary call needs exactly one message"),
                    );
                    return;
                }
                self.unary(ctx, call, &c.path, &c.messages[0]);
            }
            CallEvent::Cancelled { call, reason } => {
                self.calls.remove(&call);
                let path = self.paths.get(&call).cloned().unwrap_or_default();
                self.observed.lock().cancelled.push((path, reason));
                self.watchers.retain(|w| w.0 != call);
                self.observed.lock().watchers = self.watchers.len();
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Wake>, _t: TimerId, tag: u64) {
        if let Some((call, msg)) = self.delayed.remove(&tag) {
            let _ = ctx.reply(call, &msg);
        }
    }

    fn on_wake(&mut self, ctx: &mut Ctx<Wake>, payload: Wake) {
        match payload {
            Wake::Stop => ctx.stop(),
            Wake::GoAway => ctx.go_away_all(),
            Wake::Reply(call, msg) => {
                let _ = ctx.reply(call, &msg);
            }
        }
    }

    fn on_http1(&mut self, _ctx: &mut Ctx<Wake>, req: &Http1Request) -> Http1Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/health") => {
                Http1Response::new(200, "application/json", r#"{"health":"true"}"#)
            }
            ("GET", "/version") => Http1Response::new(
                200,
                "application/json",
                r#"{"etcdserver":"3.5.0","etcdcluster":"3.5.0"}"#,
            ),
            _ => Http1Response::not_found(),
        }
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub waker: LoopWaker<Wake>,
    pub observed: Arc<Mutex<Observed>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.waker.wake(Wake::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn start_with(grpc: GrpcConfig) -> Running {
    start_loop(LoopConfig {
        grpc,
        ..LoopConfig::default()
    })
}

pub fn start_loop(mut config: LoopConfig) -> Running {
    config.grpc.methods = Some(METHODS.iter().map(|s| s.to_string()).collect());
    let mut lp = EventLoop::new(config).expect("loop");
    let addr = lp.listen("127.0.0.1:0".parse().unwrap()).expect("listen");
    let waker = lp.waker();
    let observed = Arc::new(Mutex::new(Observed::default()));
    let mut svc = TestService {
        calls: HashMap::new(),
        kv: BTreeMap::new(),
        revision: 1,
        watchers: Vec::new(),
        next_watch: 0,
        observed: observed.clone(),
        delayed: HashMap::new(),
        next_tag: 0,
        paths: HashMap::new(),
    };
    let thread = std::thread::spawn(move || lp.run(&mut svc).expect("loop runs"));
    Running {
        addr,
        waker,
        observed,
        thread: Some(thread),
    }
}

pub fn start() -> Running {
    start_with(GrpcConfig::default())
}

/// A test needs an external tool that is missing. Under `scripts/test` (which installs every
/// tool and sets `KEEL_REQUIRE_TOOLS=1`) that is a failure, so a broken install can never turn
/// an interop test into a silent pass; elsewhere the test says loudly that it skipped.
#[allow(dead_code)]
pub fn missing_tool(what: &str) {
    if std::env::var_os("KEEL_REQUIRE_TOOLS").is_some() {
        panic!("required test tool missing: {what} (KEEL_REQUIRE_TOOLS is set)");
    }
    eprintln!("\n!!! SKIPPING: {what} !!!\n");
}
