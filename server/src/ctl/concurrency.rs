//! `lock <name> [command...]` and `elect <name> [proposal]` / `elect -l <name>`.
//!
//! Like etcdctl 3.4, these use etcd's client-side recipes (`clientv3/concurrency`) over plain
//! KV, transactions and watches, not the server's Lock/Election services, so they work against
//! any server that has those basics:
//! - a session is a lease (TTL `--ttl`, default 10 s) kept alive from a background thread;
//! - to lock `name` (or campaign in election `name`), put `name/<lease id in hex>` under the
//!   lease if it does not exist yet; the owner is the key under `name/` with the lowest create
//!   revision; everyone else waits until every key created before theirs is deleted (watching
//!   only the newest such key, so a release wakes one waiter, not all);
//! - unlock / resign deletes the own key; an expired session deletes it with the lease.

use super::args::Invocation;
use super::error::CtlError;
use super::kv::prefix_end;
use super::session::{failed, path, Dial, Session};
use super::Ctx;
use keel_net::proto::etcdserverpb::{
    compare, range_request, request_op, response_op, watch_request, Compare, DeleteRangeRequest,
    DeleteRangeResponse, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseRevokeRequest, LeaseRevokeResponse, PutRequest, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, TxnRequest, TxnResponse, WatchCreateRequest,
    WatchRequest, WatchResponse,
};
use keel_net::proto::mvccpb::KeyValue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const FOREVER: Duration = Duration::from_secs(365 * 86_400);

/// A lease kept alive by a background thread; `expired()` turns true once it is gone.
struct LeaseSession {
    id: i64,
    expired: Arc<AtomicBool>,
}

impl LeaseSession {
    fn start(s: &mut Session, dial: &Dial, ttl: i64) -> Result<LeaseSession, CtlError> {
        let g: LeaseGrantResponse = s
            .call(path::LEASE_GRANT, &LeaseGrantRequest { ttl, id: 0 })
            .map_err(|e| failed(None, &e))?;
        let id = g.id;
        let expired = Arc::new(AtomicBool::new(false));
        let flag = expired.clone();
        let dial = dial.clone();
        let period = Duration::from_millis((g.ttl.max(1) as u64 * 1000 / 3).max(300));
        std::thread::spawn(move || {
            let run = || -> Result<(), CtlError> {
                let mut s = Session::connect(&dial)?;
                let req = LeaseKeepAliveRequest { id };
                let h = s.open_stream(path::LEASE_KEEP_ALIVE, Some(&req))?;
                loop {
                    let r: Option<LeaseKeepAliveResponse> = s
                        .recv(h, dial.command_timeout)
                        .map_err(|e| failed(None, &e))?;
                    match r {
                        Some(r) if r.ttl > 0 => {}
                        _ => return Ok(()),
                    }
                    std::thread::sleep(period);
                    s.client()
                        .send(h, &keel_net::proto::Message::encode_to_vec(&req))
                        .map_err(|e| failed(None, &e))?;
                }
            };
            let _ = run();
            flag.store(true, Ordering::SeqCst);
        });
        Ok(LeaseSession { id, expired })
    }

    fn expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    fn revoke(&self, s: &mut Session) {
        let _: Result<LeaseRevokeResponse, _> =
            s.call(path::LEASE_REVOKE, &LeaseRevokeRequest { id: self.id });
    }
}

fn print_key(ctx: &Ctx, s: &mut Session, key: &[u8]) -> Result<(), CtlError> {
    let r: RangeResponse = s
        .call(
            path::RANGE,
            &RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            },
        )
        .map_err(|e| failed(None, &e))?;
    ctx.printer.get(&r)
}

fn wait_until_expired(session: &LeaseSession) -> Result<(), CtlError> {
    while !session.expired() {
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(CtlError::error("session expired"))
}

/// A range over every key under `prefix`, sorted by create revision, one result
/// (`WithFirstCreate` / `WithLastCreate`), optionally only keys created at or before `max_create`.
fn by_create(prefix: &[u8], order: range_request::SortOrder, max_create: i64) -> RangeRequest {
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: order as i32,
        sort_target: range_request::SortTarget::Create as i32,
        max_create_revision: max_create,
        ..Default::default()
    }
}

fn range_op(r: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(r)),
    }
}

fn get_key(key: &[u8]) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }
}

fn range_of(r: &TxnResponse, i: usize) -> Vec<KeyValue> {
    match r.responses.get(i).and_then(|x| x.response.as_ref()) {
        Some(response_op::Response::ResponseRange(rr)) => rr.kvs.clone(),
        _ => Vec::new(),
    }
}

/// Creates `key` (value `value`, under `lease`) unless it exists; returns (create revision of
/// the key, the owner's key-value under `prefix` (lowest create revision), the txn header).
fn create_own_key(
    s: &mut Session,
    prefix: &[u8],
    key: &[u8],
    value: &[u8],
    lease: i64,
) -> Result<(i64, Option<KeyValue>, ResponseHeader), CtlError> {
    let owner = range_op(by_create(prefix, range_request::SortOrder::Ascend, 0));
    let txn = TxnRequest {
        compare: vec![Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Create as i32,
            key: key.to_vec(),
            target_union: Some(compare::TargetUnion::CreateRevision(0)),
            range_end: Vec::new(),
        }],
        success: vec![
            RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    lease,
                    ..Default::default()
                })),
            },
            owner.clone(),
        ],
        failure: vec![range_op(get_key(key)), owner],
    };
    let r: TxnResponse = s.call(path::TXN, &txn).map_err(|e| failed(None, &e))?;
    let header = r.header.clone().unwrap_or_default();
    let my_rev = if r.succeeded {
        header.revision
    } else {
        range_of(&r, 0)
            .first()
            .map(|kv| kv.create_revision)
            .unwrap_or(header.revision)
    };
    Ok((my_rev, range_of(&r, 1).into_iter().next(), header))
}

/// Blocks until `key` is deleted (watching from `rev`).
fn wait_delete(s: &mut Session, key: &[u8], rev: i64) -> Result<(), CtlError> {
    let h = open_watch(s, key.to_vec(), Vec::new(), rev)?;
    loop {
        let Some(resp) = next_watch(s, h)? else {
            return Err(CtlError::error("watch closed while waiting"));
        };
        if resp.events.iter().any(|e| e.r#type == 1) {
            let _ = s.client().cancel(h);
            return Ok(());
        }
    }
}

/// Waits until no key under `prefix` created at or before `max_create` is left.
fn wait_deletes(s: &mut Session, prefix: &[u8], max_create: i64) -> Result<(), CtlError> {
    loop {
        let r: RangeResponse = s
            .call(
                path::RANGE,
                &by_create(prefix, range_request::SortOrder::Descend, max_create),
            )
            .map_err(|e| failed(None, &e))?;
        let Some(last) = r.kvs.first() else {
            return Ok(());
        };
        let rev = r.header.as_ref().map(|h| h.revision).unwrap_or(0);
        wait_delete(s, &last.key.clone(), rev)?;
    }
}

fn open_watch(
    s: &mut Session,
    key: Vec<u8>,
    range_end: Vec<u8>,
    start_revision: i64,
) -> Result<keel_net::client::StreamHandle, CtlError> {
    let req = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key,
                range_end,
                start_revision,
                ..Default::default()
            },
        )),
    };
    s.open_stream(path::WATCH, Some(&req))
}

fn next_watch(
    s: &mut Session,
    h: keel_net::client::StreamHandle,
) -> Result<Option<WatchResponse>, CtlError> {
    loop {
        let r: Option<WatchResponse> = s.recv(h, FOREVER).map_err(|e| failed(None, &e))?;
        match r {
            Some(r) if r.canceled => return Ok(None),
            Some(r) if r.events.is_empty() => continue,
            other => return Ok(other),
        }
    }
}

fn delete_key(s: &mut Session, key: &[u8]) -> Result<(), CtlError> {
    let _: DeleteRangeResponse = s
        .call(
            path::DELETE_RANGE,
            &DeleteRangeRequest {
                key: key.to_vec(),
                ..Default::default()
            },
        )
        .map_err(|e| failed(None, &e))?;
    Ok(())
}

/// The key of a session's lock or candidacy: `<name>/<lease id in hex>`.
fn own_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(format!("{lease:x}").as_bytes());
    k
}

/// `keelctl lock`.
pub fn lock(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.is_empty() {
        return Err(CtlError::bad_args(
            "lock takes a lock name argument and an optional command to execute",
        ));
    }
    let ttl = inv.int("ttl", 10)?;
    let mut s = ctx.connect()?;
    let session = LeaseSession::start(&mut s, &ctx.dial, ttl)?;
    let prefix = format!("{}/", inv.args[0]).into_bytes();
    let key = own_key(&prefix, session.id);
    let (my_rev, owner, mut header) = create_own_key(&mut s, &prefix, &key, b"", session.id)?;
    if owner.is_some_and(|o| o.create_revision != my_rev) {
        wait_deletes(&mut s, &prefix, my_rev - 1)?;
        // The header etcd's mutex keeps after waiting is that of the last range.
        let r: RangeResponse = s
            .call(path::RANGE, &get_key(&key))
            .map_err(|e| failed(None, &e))?;
        header = r.header.unwrap_or_default();
    }
    if inv.args.len() > 1 {
        let status = std::process::Command::new(&inv.args[1])
            .args(&inv.args[2..])
            .env("ETCD_LOCK_KEY", String::from_utf8_lossy(&key).as_ref())
            .env("ETCD_LOCK_REV", header.revision.to_string())
            .status();
        let unlock = delete_key(&mut s, &key);
        session.revoke(&mut s);
        let status = status.map_err(|e| CtlError::error(e.to_string()))?;
        if !status.success() {
            return Err(CtlError::error(match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "signal: killed".to_string(),
            }));
        }
        return unlock;
    }
    print_key(ctx, &mut s, &key)?;
    wait_until_expired(&session)
}

/// `keelctl elect`.
pub fn elect(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let a = &inv.args;
    if a.len() != 1 && a.len() != 2 {
        return Err(CtlError::bad_args(
            "elect takes one election name argument and an optional proposal argument",
        ));
    }
    let prefix = format!("{}/", a[0]).into_bytes();
    let mut s = ctx.connect()?;
    if inv.bool("listen") {
        if a.len() != 1 {
            return Err(CtlError::bad_args(
                "elect listen takes one election name argument",
            ));
        }
        return observe(ctx, &mut s, &prefix);
    }
    if a.len() != 2 {
        return Err(CtlError::bad_args("no proposal argument but -l not set"));
    }
    let ttl = inv.int("ttl", 10)?;
    let session = LeaseSession::start(&mut s, &ctx.dial, ttl)?;
    let key = own_key(&prefix, session.id);
    let value = a[1].as_bytes();
    let (my_rev, _, _) = create_own_key(&mut s, &prefix, &key, value, session.id)?;
    // A candidacy left over with another value is proclaimed anew (same lease, same key).
    let current: RangeResponse = s
        .call(path::RANGE, &get_key(&key))
        .map_err(|e| failed(None, &e))?;
    if current.kvs.first().is_some_and(|kv| kv.value != value) {
        let _: keel_net::proto::etcdserverpb::PutResponse = s
            .call(
                path::PUT,
                &PutRequest {
                    key: key.clone(),
                    value: value.to_vec(),
                    lease: session.id,
                    ..Default::default()
                },
            )
            .map_err(|e| failed(None, &e))?;
    }
    wait_deletes(&mut s, &prefix, my_rev - 1)?;
    print_key(ctx, &mut s, &key)?;
    let r = wait_until_expired(&session);
    let _ = delete_key(&mut s, &key);
    r
}

/// `elect -l`: prints the leader (the lowest create revision under the prefix) and every
/// change of its value, then the next leader when it goes away.
fn observe(ctx: &Ctx, s: &mut Session, prefix: &[u8]) -> Result<(), CtlError> {
    loop {
        let r: RangeResponse = s
            .call(
                path::RANGE,
                &by_create(prefix, range_request::SortOrder::Ascend, 0),
            )
            .map_err(|e| failed(None, &e))?;
        let (mut header, kv) = match r.kvs.first() {
            Some(kv) => (r.header.clone().unwrap_or_default(), kv.clone()),
            None => {
                let rev = r.header.as_ref().map(|h| h.revision).unwrap_or(0);
                let h = open_watch(s, prefix.to_vec(), prefix_end(prefix), rev)?;
                loop {
                    let Some(w) = next_watch(s, h)? else {
                        return Err(CtlError::error("elect: observe ended"));
                    };
                    if let Some(e) = w.events.iter().find(|e| e.r#type == 0) {
                        let _ = s.client().cancel(h);
                        break (
                            w.header.clone().unwrap_or_default(),
                            e.kv.clone().unwrap_or_default(),
                        );
                    }
                }
            }
        };
        let show = |header: &ResponseHeader, kv: &KeyValue| {
            ctx.printer.get(&RangeResponse {
                header: Some(header.clone()),
                kvs: vec![kv.clone()],
                more: false,
                count: 0,
            })
        };
        show(&header, &kv)?;
        let h = open_watch(s, kv.key.clone(), Vec::new(), header.revision + 1)?;
        'leader: loop {
            let Some(w) = next_watch(s, h)? else {
                return Err(CtlError::error("elect: observe ended"));
            };
            for e in &w.events {
                if e.r#type == 1 {
                    let _ = s.client().cancel(h);
                    break 'leader;
                }
                header = w.header.clone().unwrap_or_default();
                show(&header, &e.kv.clone().unwrap_or_default())?;
            }
        }
    }
}
