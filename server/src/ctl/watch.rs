//! `watch <key> [range_end] [--prefix] [--rev N] [--prev-kv]`: one watcher on the Watch stream,
//! printing every event until the server cancels it.

use super::args::Invocation;
use super::error::{exit, CtlError};
use super::kv::prefix_end;
use super::session::{failed, path};
use super::Ctx;
use keel_net::proto::etcdserverpb::{
    watch_request, WatchCreateRequest, WatchRequest, WatchResponse,
};
use std::time::Duration;

/// Builds the create request from the command line.
pub fn create_request(inv: &Invocation) -> Result<WatchCreateRequest, CtlError> {
    let a = &inv.args;
    if a.is_empty() || a.len() > 2 {
        return Err(CtlError::bad_args("bad number of arguments"));
    }
    let prefix = inv.bool("prefix");
    if prefix && a.len() == 2 {
        return Err(CtlError::bad_args(
            "`range_end` and `--prefix` are mutually exclusive",
        ));
    }
    let mut req = WatchCreateRequest {
        key: a[0].as_bytes().to_vec(),
        start_revision: inv.int("rev", 0)?,
        prev_kv: inv.bool("prev-kv"),
        progress_notify: inv.bool("progress-notify"),
        ..Default::default()
    };
    if let Some(end) = a.get(1) {
        req.range_end = end.as_bytes().to_vec();
    }
    if prefix {
        if req.key.is_empty() {
            req.key = vec![0];
            req.range_end = vec![0];
        } else {
            req.range_end = prefix_end(&req.key);
        }
    }
    Ok(req)
}

/// `keelctl watch`.
pub fn watch(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.bool("interactive") {
        return Err(CtlError::bad_feature(
            "watch --interactive is not supported by keelctl",
        ));
    }
    let create = create_request(inv)?;
    let mut s = ctx.connect()?;
    let req = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
    };
    let h = s.open_stream(path::WATCH, Some(&req))?;
    let forever = Duration::from_secs(365 * 86_400);
    loop {
        let resp: Option<WatchResponse> = s.recv(h, forever).map_err(|e| failed(None, &e))?;
        let Some(resp) = resp else { break };
        if resp.canceled {
            let why = if resp.compact_revision != 0 {
                "etcdserver: mvcc: required revision has been compacted".to_string()
            } else {
                resp.cancel_reason.clone()
            };
            eprintln!("watch was canceled ({why})");
            break;
        }
        if resp.created && resp.events.is_empty() {
            continue;
        }
        ctx.printer.watch(&resp)?;
    }
    Err(CtlError::new(
        exit::INTERRUPTED,
        "watch is canceled by the server",
    ))
}
