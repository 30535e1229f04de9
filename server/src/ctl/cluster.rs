//! `member list|add|remove|update|promote`.

use super::args::{go_quote, parse_int_error, Invocation};
use super::error::CtlError;
use super::session::{failed, path};
use super::Ctx;
use keel_net::proto::etcdserverpb::{
    MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};

fn member_id_arg(inv: &Invocation) -> Result<u64, CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args("member ID is not provided"));
    }
    let s = &inv.args[0];
    u64::from_str_radix(s, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "bad member ID arg ({}), expecting ID in Hex",
            parse_int_error("ParseUint", s, 16)
        ))
    })
}

fn peer_urls(inv: &Invocation) -> Result<(String, Vec<String>), CtlError> {
    let raw = inv.string("peer-urls", "");
    if raw.is_empty() {
        return Err(CtlError::bad_args("member peer urls not provided"));
    }
    let urls = raw.split(',').map(|s| s.to_string()).collect();
    Ok((raw, urls))
}

fn cluster_id(h: &Option<keel_net::proto::etcdserverpb::ResponseHeader>) -> u64 {
    h.as_ref().map(|h| h.cluster_id).unwrap_or(0)
}

/// `member list`.
pub fn list(ctx: &Ctx, _inv: &Invocation) -> Result<(), CtlError> {
    let mut s = ctx.connect()?;
    let resp: MemberListResponse = s
        .call(path::MEMBER_LIST, &MemberListRequest::default())
        .map_err(|e| failed(None, &e))?;
    ctx.printer.member_list(&resp)
}

/// `member add <name> --peer-urls=... [--learner]` (etcdctl 3.4 words a learner's addition like
/// any other); the simple format also prints the
/// `ETCD_*` settings for starting the new member.
pub fn add(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if inv.args.len() != 1 {
        return Err(CtlError::bad_args("member name not provided"));
    }
    let name = inv.args[0].clone();
    let (raw_urls, urls) = peer_urls(inv)?;
    let mut s = ctx.connect()?;
    let resp: MemberAddResponse = s
        .call(
            path::MEMBER_ADD,
            &MemberAddRequest {
                peer_urls: urls,
                is_learner: inv.bool("learner"),
            },
        )
        .map_err(|e| failed(None, &e))?;
    let m = resp.member.clone().unwrap_or_default();
    ctx.printer.member_change(
        format!(
            "Member {:16x} added to cluster {:16x}",
            m.id,
            cluster_id(&resp.header)
        ),
        &resp.header,
        resp.member.as_ref(),
        &resp.members,
    )?;
    if ctx.printer.format == super::display::Format::Simple {
        let list: MemberListResponse = s
            .call(path::MEMBER_LIST, &MemberListRequest::default())
            .map_err(|e| failed(None, &e))?;
        let mut conf = Vec::new();
        for mem in &list.members {
            for u in &mem.peer_urls {
                let n = if mem.id == m.id { &name } else { &mem.name };
                conf.push(format!("{n}={u}"));
            }
        }
        super::display::outln(&format!(
            "\nETCD_NAME={}\nETCD_INITIAL_CLUSTER={}\nETCD_INITIAL_ADVERTISE_PEER_URLS={}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"",
            go_quote(&name),
            go_quote(&conf.join(",")),
            go_quote(&raw_urls)
        ));
    }
    Ok(())
}

/// `member remove <id>`.
pub fn remove(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let id = member_id_arg(inv)?;
    let mut s = ctx.connect()?;
    let resp: MemberRemoveResponse = s
        .call(path::MEMBER_REMOVE, &MemberRemoveRequest { id })
        .map_err(|e| failed(None, &e))?;
    ctx.printer.member_change(
        format!(
            "Member {id:16x} removed from cluster {:16x}",
            cluster_id(&resp.header)
        ),
        &resp.header,
        None,
        &resp.members,
    )
}

/// `member update <id> --peer-urls=...`.
pub fn update(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let id = member_id_arg(inv)?;
    let (_, urls) = peer_urls(inv)?;
    let mut s = ctx.connect()?;
    let resp: MemberUpdateResponse = s
        .call(
            path::MEMBER_UPDATE,
            &MemberUpdateRequest {
                id,
                peer_urls: urls,
            },
        )
        .map_err(|e| failed(None, &e))?;
    ctx.printer.member_change(
        format!(
            "Member {id:16x} updated in cluster {:16x}",
            cluster_id(&resp.header)
        ),
        &resp.header,
        None,
        &resp.members,
    )
}

/// `member promote <id>`.
pub fn promote(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let id = member_id_arg(inv)?;
    let mut s = ctx.connect()?;
    let resp: MemberPromoteResponse = s
        .call(path::MEMBER_PROMOTE, &MemberPromoteRequest { id })
        .map_err(|e| failed(None, &e))?;
    ctx.printer.member_change(
        format!(
            "Member {id:16x} promoted in cluster {:16x}",
            cluster_id(&resp.header)
        ),
        &resp.header,
        None,
        &resp.members,
    )
}
