//! `lease grant|revoke|timetolive|list|keep-alive`.

use super::args::{parse_int_error, Invocation};
use super::error::{exit, CtlError};
use super::session::{failed, path};
use super::Ctx;
use keel_net::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use std::time::Duration;

/// Parses a lease ID argument (hex, as etcdctl prints them).
pub fn lease_id_arg(s: &str) -> Result<i64, CtlError> {
    i64::from_str_radix(s, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "bad lease ID arg ({}), expecting ID in Hex",
            parse_int_error("ParseInt", s, 16)
        ))
    })
}

/// `lease grant <ttl>`.
pub fn grant(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args("lease grant command needs TTL argument"));
    }
    let ttl: i64 = inv.args[0].parse().map_err(|_| {
        CtlError::bad_args(format!(
            "bad TTL ({})",
            parse_int_error("ParseInt", &inv.args[0], 10)
        ))
    })?;
    let mut s = ctx.connect()?;
    let resp: LeaseGrantResponse = s
        .call(path::LEASE_GRANT, &LeaseGrantRequest { ttl, id: 0 })
        .map_err(|e| failed(Some("failed to grant lease"), &e))?;
    ctx.printer.grant(&resp)
}

/// `lease revoke <id>`.
pub fn revoke(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args("lease revoke command needs 1 argument"));
    }
    let id = lease_id_arg(&inv.args[0])?;
    let mut s = ctx.connect()?;
    let resp: LeaseRevokeResponse = s
        .call(path::LEASE_REVOKE, &LeaseRevokeRequest { id })
        .map_err(|e| failed(Some("failed to revoke lease"), &e))?;
    ctx.printer.revoke(id, &resp)
}

/// `lease timetolive <id> [--keys]`.
pub fn time_to_live(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args(
            "lease timetolive command needs lease ID as argument",
        ));
    }
    let id = lease_id_arg(&inv.args[0])?;
    let keys = inv.bool("keys");
    let mut s = ctx.connect()?;
    let resp: LeaseTimeToLiveResponse = s
        .call(
            path::LEASE_TIME_TO_LIVE,
            &LeaseTimeToLiveRequest { id, keys },
        )
        .map_err(|e| {
            let mut c = failed(None, &e);
            c.code = exit::BAD_CONNECTION;
            c
        })?;
    ctx.printer.time_to_live(&resp, keys)
}

/// `lease list`.
pub fn list(ctx: &Ctx, _inv: &Invocation) -> Result<(), CtlError> {
    let mut s = ctx.connect()?;
    let resp: LeaseLeasesResponse =
        s.call(path::LEASE_LEASES, &LeaseLeasesRequest {})
            .map_err(|e| {
                let mut c = failed(None, &e);
                c.code = exit::BAD_CONNECTION;
                c
            })?;
    ctx.printer.leases(&resp)
}

/// `lease keep-alive <id> [--once]`: renews every TTL/3 (as clientv3 does) until the lease is
/// gone.
pub fn keep_alive(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args(
            "lease keep-alive command needs lease ID as argument",
        ));
    }
    let id = lease_id_arg(&inv.args[0])?;
    let once = inv.bool("once");
    let mut s = ctx.connect()?;
    let req = LeaseKeepAliveRequest { id };
    let h = s.open_stream(path::LEASE_KEEP_ALIVE, Some(&req))?;
    let lost = || {
        CtlError::new(
            exit::BAD_CONNECTION,
            "etcdserver: requested lease not found",
        )
    };
    loop {
        let resp: Option<LeaseKeepAliveResponse> = s
            .recv(h, s.command_timeout)
            .map_err(|e| CtlError::new(exit::BAD_CONNECTION, failed(None, &e).message))?;
        let Some(resp) = resp else {
            if once {
                return Err(lost());
            }
            break;
        };
        if resp.ttl <= 0 {
            if once {
                return Err(lost());
            }
            break;
        }
        ctx.printer.keep_alive(&resp)?;
        if once {
            let _ = s.client().cancel(h);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis((resp.ttl as u64 * 1000 / 3).max(500)));
        s.client()
            .send(h, &keel_net::proto::Message::encode_to_vec(&req))
            .map_err(|e| CtlError::new(exit::BAD_CONNECTION, failed(None, &e).message))?;
    }
    if ctx.printer.format == super::display::Format::Simple {
        super::display::outln(&format!("lease {id:016x} expired or revoked."));
    }
    Ok(())
}
