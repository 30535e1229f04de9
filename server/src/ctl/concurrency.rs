//! `lock <name> [command...]` and `elect <name> [proposal]` / `elect -l <name>`, over the
//! server's Lock and Election services. Like etcdctl's session, each holds a lease (TTL
//! `--ttl`, default 10 s) kept alive from a background thread; the lock or leadership lasts as
//! long as the lease does.

use super::args::Invocation;
use super::error::CtlError;
use super::session::{failed, path, Dial, Session};
use super::Ctx;
use keel_net::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, RangeRequest, RangeResponse,
};
use keel_net::proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse, ResignRequest, ResignResponse,
};
use keel_net::proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
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

fn wait_until_expired(session: &LeaseSession, what: &str) -> Result<(), CtlError> {
    while !session.expired() {
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(CtlError::error(format!("{what}: session expired")))
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
    let resp: LockResponse = s
        .call_with_timeout(
            path::LOCK,
            &LockRequest {
                name: inv.args[0].as_bytes().to_vec(),
                lease: session.id,
            },
            FOREVER,
        )
        .map_err(|e| failed(None, &e))?;
    if inv.args.len() > 1 {
        let rev = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
        let status = std::process::Command::new(&inv.args[1])
            .args(&inv.args[2..])
            .env("ETCD_LOCK_KEY", String::from_utf8_lossy(&resp.key).as_ref())
            .env("ETCD_LOCK_REV", rev.to_string())
            .status();
        let unlock: Result<UnlockResponse, _> = s.call(
            path::UNLOCK,
            &UnlockRequest {
                key: resp.key.clone(),
            },
        );
        session.revoke(&mut s);
        let status = status.map_err(|e| CtlError::error(e.to_string()))?;
        if !status.success() {
            return Err(CtlError::error(match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "signal: killed".to_string(),
            }));
        }
        unlock.map_err(|e| failed(None, &e))?;
        return Ok(());
    }
    print_key(ctx, &mut s, &resp.key)?;
    wait_until_expired(&session, "lock")
}

/// `keelctl elect`.
pub fn elect(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let a = &inv.args;
    if a.len() != 1 && a.len() != 2 {
        return Err(CtlError::bad_args(
            "elect takes one election name argument and an optional proposal argument",
        ));
    }
    let name = a[0].as_bytes().to_vec();
    let mut s = ctx.connect()?;
    if inv.bool("listen") {
        if a.len() != 1 {
            return Err(CtlError::bad_args(
                "elect listen takes one election name argument",
            ));
        }
        let h = s.open_server_stream(path::OBSERVE, &LeaderRequest { name })?;
        loop {
            let r: Option<LeaderResponse> = s.recv(h, FOREVER).map_err(|e| failed(None, &e))?;
            let Some(r) = r else {
                return Err(CtlError::error("elect: observe ended"));
            };
            let kvs: Vec<_> = r.kv.into_iter().collect();
            ctx.printer.get(&RangeResponse {
                header: r.header,
                count: kvs.len() as i64,
                kvs,
                more: false,
            })?;
        }
    }
    if a.len() != 2 {
        return Err(CtlError::bad_args("no proposal argument but -l not set"));
    }
    let ttl = inv.int("ttl", 10)?;
    let session = LeaseSession::start(&mut s, &ctx.dial, ttl)?;
    let resp: CampaignResponse = s
        .call_with_timeout(
            path::CAMPAIGN,
            &CampaignRequest {
                name,
                lease: session.id,
                value: a[1].as_bytes().to_vec(),
            },
            FOREVER,
        )
        .map_err(|e| failed(None, &e))?;
    let leader = resp.leader.unwrap_or_default();
    print_key(ctx, &mut s, &leader.key)?;
    let r = wait_until_expired(&session, "elect");
    let _: Result<ResignResponse, _> = s.call(
        path::RESIGN,
        &ResignRequest {
            leader: Some(leader),
        },
    );
    r
}
