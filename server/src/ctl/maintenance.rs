//! `endpoint status|health`, `snapshot save`, `compaction`, `defrag`, `alarm list|disarm`,
//! `move-leader`, `version`.

use super::args::{parse_int_error, Invocation};
use super::display::{outln, EndpointHealth};
use super::error::{exit, CtlError};
use super::session::{failed, path, Session};
use super::Ctx;
use keel_net::proto::etcdserverpb::{
    alarm_request, AlarmRequest, AlarmResponse, CompactionRequest, CompactionResponse,
    DefragmentRequest, DefragmentResponse, HashKvRequest, HashKvResponse, MemberListRequest,
    MemberListResponse, MoveLeaderRequest, MoveLeaderResponse, RangeRequest, RangeResponse,
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use keel_server::sha256::digest as sha256;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// The endpoints a per-endpoint command visits: `--endpoints`, or with `--cluster` every
/// member's client URLs.
fn endpoints(ctx: &Ctx, inv: &Invocation) -> Result<Vec<String>, CtlError> {
    if !inv.bool("cluster") {
        return Ok(ctx.dial.endpoints.clone());
    }
    let mut s = ctx.connect()?;
    let resp: MemberListResponse = s
        .call(path::MEMBER_LIST, &MemberListRequest::default())
        .map_err(|e| failed(None, &e))?;
    let mut eps = Vec::new();
    for m in &resp.members {
        eps.extend(m.client_urls.iter().cloned());
    }
    Ok(eps)
}

fn connect_one(ctx: &Ctx, ep: &str) -> Result<Session, CtlError> {
    Session::connect_to(&[ep.to_string()], &ctx.dial)
}

/// `endpoint status`.
pub fn status(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let mut list = Vec::new();
    let mut failed_any = false;
    for ep in endpoints(ctx, inv)? {
        let r: Result<StatusResponse, CtlError> = connect_one(ctx, &ep).and_then(|mut s| {
            s.call(path::STATUS, &StatusRequest {})
                .map_err(|e| failed(None, &e))
        });
        match r {
            Ok(st) => list.push((ep, st)),
            Err(e) => {
                eprintln!("Failed to get the status of endpoint {ep} ({e})");
                failed_any = true;
            }
        }
    }
    ctx.printer.endpoint_status(&list)?;
    if failed_any {
        return Err(CtlError::error(""));
    }
    Ok(())
}

/// `endpoint hashkv [--rev N]`: the KV history hash of each endpoint.
pub fn hash_kv(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let rev = inv.int("rev", 0)?;
    let mut list = Vec::new();
    let mut failed_any = false;
    for ep in endpoints(ctx, inv)? {
        let r: Result<HashKvResponse, CtlError> = connect_one(ctx, &ep).and_then(|mut s| {
            s.call(path::HASH_KV, &HashKvRequest { revision: rev })
                .map_err(|e| failed(None, &e))
        });
        match r {
            Ok(h) => list.push((ep, h)),
            Err(e) => {
                eprintln!("Failed to get the hash of endpoint {ep} ({e})");
                failed_any = true;
            }
        }
    }
    ctx.printer.endpoint_hash_kv(&list)?;
    if failed_any {
        return Err(CtlError::error(""));
    }
    Ok(())
}

/// `endpoint health`: a linearizable read of key "health" per endpoint (etcdctl 3.4 does not
/// look at alarms; 3.5 does).
pub fn health(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let mut list = Vec::new();
    for ep in endpoints(ctx, inv)? {
        let start = Instant::now();
        let mut h = EndpointHealth {
            endpoint: ep.clone(),
            health: false,
            took: Duration::ZERO,
            error: String::new(),
        };
        match connect_one(ctx, &ep) {
            Err(e) => {
                h.took = start.elapsed();
                h.error = e.message;
            }
            Ok(mut s) => {
                let r: Result<RangeResponse, _> = s.call(
                    path::RANGE,
                    &RangeRequest {
                        key: b"health".to_vec(),
                        ..Default::default()
                    },
                );
                h.took = start.elapsed();
                match r {
                    Ok(_) => h.health = true,
                    Err(keel_net::client::ClientError::Status(st))
                        if st.message == "etcdserver: permission denied" =>
                    {
                        h.health = true
                    }
                    Err(e) => h.error = failed(None, &e).message,
                }
            }
        }
        list.push(h);
    }
    ctx.printer.endpoint_health(&list)?;
    if list.iter().any(|h| !h.health) {
        return Err(CtlError::error("unhealthy cluster"));
    }
    Ok(())
}

/// Checks the SHA-256 etcd appends to a snapshot stream; returns the database length.
pub fn verify_snapshot(data: &[u8]) -> Result<usize, CtlError> {
    if data.len() < 32 {
        return Err(CtlError::error(format!(
            "snapshot is too short ({} bytes) to carry its sha256",
            data.len()
        )));
    }
    let n = data.len() - 32;
    if sha256(&data[..n]) != data[n..] {
        return Err(CtlError::error(
            "snapshot sha256 mismatch: the stream was corrupted",
        ));
    }
    Ok(n)
}

/// `snapshot save <file>`: streams the backend snapshot into `<file>.part`, checks the
/// trailing digest, syncs and renames it into place.
pub fn snapshot_save(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args("snapshot save expects one argument"));
    }
    if ctx.dial.endpoints.len() != 1 {
        return Err(CtlError::bad_args(format!(
            "snapshot must be requested to one selected node, not multiple {:?}",
            ctx.dial.endpoints
        )));
    }
    let dest = &inv.args[0];
    let part = format!("{dest}.part");
    let mut s = ctx.connect()?;
    let h = s.open_server_stream(path::SNAPSHOT, &SnapshotRequest {})?;
    let mut data = Vec::new();
    loop {
        let m: Option<SnapshotResponse> = s
            .recv(h, Duration::from_secs(600))
            .map_err(|e| failed(None, &e))?;
        match m {
            Some(m) => data.extend_from_slice(&m.blob),
            None => break,
        }
    }
    verify_snapshot(&data)?;
    let io = |e: std::io::Error| CtlError::new(exit::IO, format!("could not write {part}: {e}"));
    let mut f = std::fs::OpenOptions::new()
        .mode(0o600)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&part)
        .map_err(io)?;
    f.write_all(&data).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&part, dest)
        .map_err(|e| CtlError::new(exit::IO, format!("could not rename {part}: {e}")))?;
    outln(&format!("Snapshot saved at {dest}"));
    Ok(())
}

/// `compaction <rev> [--physical]`.
pub fn compaction(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args("compaction command needs 1 argument"));
    }
    let rev: i64 = inv.args[0]
        .parse()
        .map_err(|_| CtlError::error(parse_int_error("ParseInt", &inv.args[0], 10)))?;
    let mut s = ctx.connect()?;
    let _: CompactionResponse = s
        .call(
            path::COMPACT,
            &CompactionRequest {
                revision: rev,
                physical: inv.bool("physical"),
            },
        )
        .map_err(|e| failed(None, &e))?;
    outln(&format!("compacted revision {rev}"));
    Ok(())
}

/// `defrag [--cluster]`.
pub fn defrag(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let mut failed_any = false;
    for ep in endpoints(ctx, inv)? {
        let r: Result<DefragmentResponse, CtlError> = connect_one(ctx, &ep).and_then(|mut s| {
            s.call(path::DEFRAGMENT, &DefragmentRequest {})
                .map_err(|e| failed(None, &e))
        });
        match r {
            Ok(_) => outln(&format!("Finished defragmenting etcd member[{ep}]")),
            Err(e) => {
                eprintln!("Failed to defragment etcd member[{ep}] ({e})");
                failed_any = true;
            }
        }
    }
    if failed_any {
        return Err(CtlError::error(""));
    }
    Ok(())
}

/// `alarm list`.
pub fn alarm_list(ctx: &Ctx, _inv: &Invocation) -> Result<(), CtlError> {
    let mut s = ctx.connect()?;
    let resp: AlarmResponse = s
        .call(
            path::ALARM,
            &AlarmRequest {
                action: alarm_request::AlarmAction::Get as i32,
                member_id: 0,
                alarm: 0,
            },
        )
        .map_err(|e| failed(None, &e))?;
    ctx.printer.alarm(&resp)
}

/// `alarm disarm`: deactivates every raised alarm, one request each (as clientv3 does).
pub fn alarm_disarm(ctx: &Ctx, _inv: &Invocation) -> Result<(), CtlError> {
    let mut s = ctx.connect()?;
    let list: AlarmResponse = s
        .call(path::ALARM, &AlarmRequest::default())
        .map_err(|e| failed(None, &e))?;
    let mut out = AlarmResponse::default();
    for a in &list.alarms {
        let r: AlarmResponse = s
            .call(
                path::ALARM,
                &AlarmRequest {
                    action: alarm_request::AlarmAction::Deactivate as i32,
                    member_id: a.member_id,
                    alarm: a.alarm,
                },
            )
            .map_err(|e| failed(None, &e))?;
        out.alarms.extend(r.alarms);
    }
    ctx.printer.alarm(&out)
}

/// `move-leader <member id>`: finds the leader among the endpoints and asks it to transfer.
pub fn move_leader(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args("move-leader command needs 1 argument"));
    }
    let target = u64::from_str_radix(&inv.args[0], 16)
        .map_err(|_| CtlError::bad_args(parse_int_error("ParseUint", &inv.args[0], 16)))?;
    let mut leader = None;
    for ep in &ctx.dial.endpoints {
        let mut s = connect_one(ctx, ep)?;
        let st: StatusResponse = s
            .call(path::STATUS, &StatusRequest {})
            .map_err(|e| failed(None, &e))?;
        let me = st.header.as_ref().map(|h| h.member_id).unwrap_or(0);
        if me == st.leader {
            leader = Some((s, st.leader));
            break;
        }
    }
    let Some((mut s, leader_id)) = leader else {
        return Err(CtlError::bad_args(format!(
            "no leader endpoint given at [{}]",
            ctx.dial.endpoints.join(" ")
        )));
    };
    let _: MoveLeaderResponse = s
        .call(path::MOVE_LEADER, &MoveLeaderRequest { target_id: target })
        .map_err(|e| failed(None, &e))?;
    outln(&format!(
        "Leadership transferred from {leader_id:x} to {target:x}"
    ));
    Ok(())
}

/// `version`.
pub fn version(_ctx: &Ctx, _inv: &Invocation) -> Result<(), CtlError> {
    outln(&format!(
        "keelctl version: {}\nAPI version: 3.4",
        env!("CARGO_PKG_VERSION")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_digest_check() {
        let mut data = b"database bytes".to_vec();
        let d = sha256(&data);
        data.extend_from_slice(&d);
        assert_eq!(verify_snapshot(&data).unwrap(), 14);
        data[0] ^= 1;
        assert!(verify_snapshot(&data).is_err());
        assert!(verify_snapshot(b"short").is_err());
    }
}
