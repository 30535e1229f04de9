//! Printing responses in etcdctl's output formats (`-w simple|json|table|protobuf`), byte for
//! byte as etcdctl 3.4 prints them (`etcdctl/ctlv3/command/printer_*.go`).

use super::error::CtlError;
use super::json::{self, Obj};
use super::table;
use keel_net::proto::etcdserverpb::{
    response_op, AlarmMember, AlarmResponse, DeleteRangeResponse, HashKvResponse,
    LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, Member, MemberListResponse, PutResponse, RangeResponse,
    ResponseHeader, StatusResponse, TxnResponse, WatchResponse,
};
use keel_net::proto::mvccpb::{Event, KeyValue};
use keel_net::proto::Message;
use std::io::Write;
use std::time::Duration;

/// An output format (`-w`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines (the default).
    Simple,
    /// Go `encoding/json` of the response.
    Json,
    /// ASCII tables (member list and endpoint commands only).
    Table,
    /// The raw protobuf encoding of the response.
    Protobuf,
    /// One `"Field" : value` line per field (get, put, del, txn, watch, lease grant, member
    /// list, endpoint status).
    Fields,
}

impl Format {
    /// Parses `-w`'s value; etcdctl's error for anything else.
    pub fn parse(s: &str) -> Result<Format, CtlError> {
        match s {
            "simple" => Ok(Format::Simple),
            "json" => Ok(Format::Json),
            "table" => Ok(Format::Table),
            "protobuf" => Ok(Format::Protobuf),
            "fields" => Ok(Format::Fields),
            _ => Err(CtlError::bad_feature("unsupported output format")),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Format::Simple => "simple",
            Format::Json => "json",
            Format::Table => "table",
            Format::Protobuf => "protobuf",
            Format::Fields => "fields",
        }
    }
}

/// Writes bytes to stdout (values are raw bytes, not necessarily UTF-8).
pub fn out(bytes: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(bytes);
    let _ = o.flush();
}

/// Writes a line to stdout.
pub fn outln(s: &str) {
    let mut line = Vec::with_capacity(s.len() + 1);
    line.extend_from_slice(s.as_bytes());
    line.push(b'\n');
    out(&line);
}

/// Go's `time.Duration.String()` (`1.166484ms`, `2.5s`, `1m3s`).
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    fn frac(v: u128, unit: u128, digits: usize) -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000, 6));
    }
    let total_s = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let h = total_s / 3600;
    let m = (total_s % 3600) / 60;
    let s = total_s % 60;
    let secs = frac(s * 1_000_000_000 + sub, 1_000_000_000, 9);
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// go-humanize's `Bytes`: SI units, e.g. `20 kB`.
pub fn humanize_bytes(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let f = n as f64;
    let e = (f.ln() / 1000f64.ln()).floor();
    let suffix = SIZES[e as usize];
    let val = (f / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {suffix}")
    } else {
        format!("{val:.0} {suffix}")
    }
}

// ---------------------------------------------------------------- JSON of protobuf messages

/// `ResponseHeader` as an object (all fields omitempty).
pub fn header_obj(h: &ResponseHeader) -> Obj {
    let mut o = Obj::new();
    o.int_omit("cluster_id", h.cluster_id)
        .int_omit("member_id", h.member_id)
        .int_omit("revision", h.revision)
        .int_omit("raft_term", h.raft_term);
    o
}

fn header_json(h: &Option<ResponseHeader>) -> Option<String> {
    h.as_ref().map(|h| header_obj(h).finish())
}

fn flat_header(h: &Option<ResponseHeader>) -> Obj {
    h.as_ref().map(header_obj).unwrap_or_default()
}

/// `mvccpb.KeyValue`.
pub fn kv_json(kv: &KeyValue) -> String {
    Obj::new()
        .bytes_omit("key", &kv.key)
        .int_omit("create_revision", kv.create_revision)
        .int_omit("mod_revision", kv.mod_revision)
        .int_omit("version", kv.version)
        .bytes_omit("value", &kv.value)
        .int_omit("lease", kv.lease)
        .finish()
}

fn kv_opt(kv: &Option<KeyValue>) -> Option<String> {
    kv.as_ref().map(kv_json)
}

/// `RangeResponse`.
pub fn range_json(r: &RangeResponse) -> String {
    Obj::new()
        .raw_opt("header", header_json(&r.header))
        .array_omit("kvs", r.kvs.iter().map(kv_json).collect())
        .bool_omit("more", r.more)
        .int_omit("count", r.count)
        .finish()
}

/// `PutResponse`.
pub fn put_json(r: &PutResponse) -> String {
    Obj::new()
        .raw_opt("header", header_json(&r.header))
        .raw_opt("prev_kv", kv_opt(&r.prev_kv))
        .finish()
}

/// `DeleteRangeResponse`.
pub fn del_json(r: &DeleteRangeResponse) -> String {
    Obj::new()
        .raw_opt("header", header_json(&r.header))
        .int_omit("deleted", r.deleted)
        .array_omit("prev_kvs", r.prev_kvs.iter().map(kv_json).collect())
        .finish()
}

/// `TxnResponse` (oneofs appear as `{"Response":{"ResponsePut":{...}}}`).
pub fn txn_json(r: &TxnResponse) -> String {
    let responses = r
        .responses
        .iter()
        .map(|op| {
            let inner = match &op.response {
                Some(response_op::Response::ResponseRange(x)) => {
                    Some(format!("{{\"ResponseRange\":{}}}", range_json(x)))
                }
                Some(response_op::Response::ResponsePut(x)) => {
                    Some(format!("{{\"ResponsePut\":{}}}", put_json(x)))
                }
                Some(response_op::Response::ResponseDeleteRange(x)) => {
                    Some(format!("{{\"ResponseDeleteRange\":{}}}", del_json(x)))
                }
                Some(response_op::Response::ResponseTxn(x)) => {
                    Some(format!("{{\"ResponseTxn\":{}}}", txn_json(x)))
                }
                None => None,
            };
            Obj::new()
                .raw("Response", inner.unwrap_or_else(|| "null".into()))
                .finish()
        })
        .collect();
    Obj::new()
        .raw_opt("header", header_json(&r.header))
        .bool_omit("succeeded", r.succeeded)
        .array_omit("responses", responses)
        .finish()
}

fn event_json(e: &Event) -> String {
    Obj::new()
        .int_omit("type", e.r#type)
        .raw_opt("kv", kv_opt(&e.kv))
        .raw_opt("prev_kv", kv_opt(&e.prev_kv))
        .finish()
}

/// `Member` (etcd's JSON names: `ID`, `peerURLs`, ...).
pub fn member_json(m: &Member) -> String {
    let urls = |v: &[String]| v.iter().map(|u| json::string(u)).collect::<Vec<_>>();
    Obj::new()
        .int_omit("ID", m.id)
        .str_omit("name", &m.name)
        .array_omit("peerURLs", urls(&m.peer_urls))
        .array_omit("clientURLs", urls(&m.client_urls))
        .bool_omit("isLearner", m.is_learner)
        .finish()
}

/// A cluster response: header, optional `member`, `members`.
pub fn members_json(
    header: &Option<ResponseHeader>,
    member: Option<&Member>,
    members: &[Member],
) -> String {
    Obj::new()
        .raw_opt("header", header_json(header))
        .raw_opt("member", member.map(member_json))
        .array_omit("members", members.iter().map(member_json).collect())
        .finish()
}

/// `StatusResponse` with etcd 3.4's field set.
pub fn status_json(s: &StatusResponse) -> String {
    Obj::new()
        .raw_opt("header", header_json(&s.header))
        .str_omit("version", &s.version)
        .int_omit("dbSize", s.db_size)
        .int_omit("leader", s.leader)
        .int_omit("raftIndex", s.raft_index)
        .int_omit("raftTerm", s.raft_term)
        .int_omit("raftAppliedIndex", s.raft_applied_index)
        .array_omit("errors", s.errors.iter().map(|e| json::string(e)).collect())
        .int_omit("dbSizeInUse", s.db_size_in_use)
        .bool_omit("isLearner", s.is_learner)
        .finish()
}

fn alarm_name(a: i32) -> String {
    match a {
        0 => "NONE".into(),
        1 => "NOSPACE".into(),
        2 => "CORRUPT".into(),
        n => n.to_string(),
    }
}

/// `AlarmMember` in gogoproto's compact text form (`memberID:1 alarm:NOSPACE `), which is what
/// etcdctl's `%+v` prints.
pub fn alarm_text(a: &AlarmMember) -> String {
    let mut s = String::new();
    if a.member_id != 0 {
        s.push_str(&format!("memberID:{} ", a.member_id));
    }
    if a.alarm != 0 {
        s.push_str(&format!("alarm:{} ", alarm_name(a.alarm)));
    }
    s
}

// ---------------------------------------------------------------- the printer

/// Health of one endpoint (`endpoint health`).
#[derive(Debug, Clone)]
pub struct EndpointHealth {
    /// The endpoint as given on the command line.
    pub endpoint: String,
    /// Whether the health probe succeeded.
    pub health: bool,
    /// How long the probe took.
    pub took: Duration,
    /// The error, empty when healthy.
    pub error: String,
}

/// Prints responses in one output format.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// The output format.
    pub format: Format,
    /// `--hex`: keys and values as `\xNN` escapes.
    pub hex: bool,
    /// `--print-value-only`.
    pub value_only: bool,
}

// ---------------------------------------------------------------- the fields format

/// etcdctl 3.4's fields printer prints IDs in decimal even with `--hex` (3.5 changed that).
fn fields_hdr(out_: &mut String, h: &Option<ResponseHeader>, _hex: bool) {
    let h = h.clone().unwrap_or_default();
    out_.push_str(&format!(
        "\"ClusterID\" : {}\n\"MemberID\" : {}\n\"Revision\" : {}\n\"RaftTerm\" : {}\n",
        h.cluster_id, h.member_id, h.revision, h.raft_term
    ));
}

fn fields_kv(out_: &mut String, pfx: &str, kv: &KeyValue, _hex: bool) {
    let q = |b: &[u8]| super::args::go_quote(&String::from_utf8_lossy(b));
    out_.push_str(&format!("\"{pfx}Key\" : {}\n", q(&kv.key)));
    out_.push_str(&format!(
        "\"{pfx}CreateRevision\" : {}\n",
        kv.create_revision
    ));
    out_.push_str(&format!("\"{pfx}ModRevision\" : {}\n", kv.mod_revision));
    out_.push_str(&format!("\"{pfx}Version\" : {}\n", kv.version));
    out_.push_str(&format!("\"{pfx}Value\" : {}\n", q(&kv.value)));
    out_.push_str(&format!("\"{pfx}Lease\" : {}\n", kv.lease));
}

fn fields_get(o: &mut String, r: &RangeResponse, hex: bool) {
    fields_hdr(o, &r.header, hex);
    r.kvs.iter().for_each(|kv| fields_kv(o, "", kv, hex));
    o.push_str(&format!("\"More\" : {}\n\"Count\" : {}\n", r.more, r.count));
}

fn fields_put(o: &mut String, r: &PutResponse, hex: bool) {
    fields_hdr(o, &r.header, hex);
    if let Some(kv) = &r.prev_kv {
        fields_kv(o, "Prev", kv, hex);
    }
}

fn fields_del(o: &mut String, r: &DeleteRangeResponse, hex: bool) {
    fields_hdr(o, &r.header, hex);
    o.push_str(&format!("\"Deleted\" : {}\n", r.deleted));
    r.prev_kvs
        .iter()
        .for_each(|kv| fields_kv(o, "Prev", kv, hex));
}

fn fields_txn(o: &mut String, r: &TxnResponse, hex: bool) {
    fields_hdr(o, &r.header, hex);
    o.push_str(&format!("\"Succeeded\" : {}\n", r.succeeded));
    for op in &r.responses {
        match &op.response {
            Some(response_op::Response::ResponseRange(x)) => fields_get(o, x, hex),
            Some(response_op::Response::ResponsePut(x)) => fields_put(o, x, hex),
            Some(response_op::Response::ResponseDeleteRange(x)) => fields_del(o, x, hex),
            other => o.push_str(&format!("\"Unknown\" : {:?}\n", format!("{other:?}"))),
        }
    }
}

impl Printer {
    fn unsupported(&self) -> CtlError {
        CtlError::bad_feature(format!(
            "{} not supported as output format",
            self.format.name()
        ))
    }

    fn pb(&self, m: &impl Message) {
        out(&m.encode_to_vec());
    }

    /// etcdctl's `printKV`: key line (unless value-only), value line.
    pub fn kv(&self, kv: &KeyValue) {
        let mut buf = Vec::new();
        let render = |b: &[u8]| -> Vec<u8> {
            if self.hex {
                b.iter()
                    .flat_map(|x| format!("\\x{x:02x}").into_bytes())
                    .collect()
            } else {
                b.to_vec()
            }
        };
        if !self.value_only {
            buf.extend(render(&kv.key));
            buf.push(b'\n');
        }
        buf.extend(render(&kv.value));
        buf.push(b'\n');
        out(&buf);
    }

    /// `get`.
    pub fn get(&self, r: &RangeResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Simple => r.kvs.iter().for_each(|kv| self.kv(kv)),
            Format::Fields => {
                let mut o = String::new();
                fields_get(&mut o, r, self.hex);
                out(o.as_bytes());
            }
            Format::Json => outln(&range_json(r)),
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `put`.
    pub fn put(&self, r: &PutResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Simple => {
                outln("OK");
                if let Some(kv) = &r.prev_kv {
                    self.kv(kv);
                }
            }
            Format::Json => outln(&put_json(r)),
            Format::Fields => {
                let mut o = String::new();
                fields_put(&mut o, r, self.hex);
                out(o.as_bytes());
            }
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `del`.
    pub fn del(&self, r: &DeleteRangeResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Simple => {
                outln(&r.deleted.to_string());
                r.prev_kvs.iter().for_each(|kv| self.kv(kv));
            }
            Format::Json => outln(&del_json(r)),
            Format::Fields => {
                let mut o = String::new();
                fields_del(&mut o, r, self.hex);
                out(o.as_bytes());
            }
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `txn`.
    pub fn txn(&self, r: &TxnResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Simple => {
                outln(if r.succeeded { "SUCCESS" } else { "FAILURE" });
                for op in &r.responses {
                    outln("");
                    match &op.response {
                        Some(response_op::Response::ResponseRange(x)) => self.get(x)?,
                        Some(response_op::Response::ResponsePut(x)) => self.put(x)?,
                        Some(response_op::Response::ResponseDeleteRange(x)) => self.del(x)?,
                        _ => outln(&format!("unexpected response {op:?}")),
                    }
                }
            }
            Format::Json => outln(&txn_json(r)),
            Format::Fields => {
                let mut o = String::new();
                fields_txn(&mut o, r, self.hex);
                out(o.as_bytes());
            }
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// One watch response (`watch`): event type, prev kv, kv.
    pub fn watch(&self, r: &WatchResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Simple => {
                for e in &r.events {
                    outln(if e.r#type == 1 { "DELETE" } else { "PUT" });
                    if let Some(p) = &e.prev_kv {
                        self.kv(p);
                    }
                    if let Some(kv) = &e.kv {
                        self.kv(kv);
                    }
                }
            }
            Format::Json => {
                let events = if r.events.is_empty() {
                    "null".to_string()
                } else {
                    json::array(r.events.iter().map(event_json).collect())
                };
                let header = r.header.clone().unwrap_or_default();
                outln(
                    &Obj::new()
                        .raw("Header", header_obj(&header).finish())
                        .raw("Events", events)
                        .int("CompactRevision", r.compact_revision)
                        .bool("Canceled", r.canceled)
                        .bool("Created", r.created)
                        .finish(),
                );
            }
            Format::Protobuf => self.pb(r),
            Format::Fields => {
                let mut o = String::new();
                fields_hdr(&mut o, &r.header, self.hex);
                for e in &r.events {
                    o.push_str(if e.r#type == 1 {
                        "\"Type\" : DELETE\n"
                    } else {
                        "\"Type\" : PUT\n"
                    });
                    if let Some(p) = &e.prev_kv {
                        fields_kv(&mut o, "Prev", p, self.hex);
                    }
                    fields_kv(&mut o, "", &e.kv.clone().unwrap_or_default(), self.hex);
                }
                out(o.as_bytes());
            }
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease grant`.
    pub fn grant(&self, r: &LeaseGrantResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Simple => outln(&format!("lease {:016x} granted with TTL({}s)", r.id, r.ttl)),
            Format::Json => outln(
                &flat_header(&r.header)
                    .int("ID", r.id)
                    .int("TTL", r.ttl)
                    .str("Error", &r.error)
                    .finish(),
            ),
            Format::Fields => {
                let mut o = String::new();
                fields_hdr(&mut o, &r.header, self.hex);
                o.push_str(&format!("\"ID\" : {}\n\"TTL\" : {}\n", r.id, r.ttl));
                out(o.as_bytes());
            }
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease revoke`.
    pub fn revoke(&self, id: i64, r: &LeaseRevokeResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => outln(&format!("lease {id:016x} revoked")),
            Format::Json => outln(
                &Obj::new()
                    .raw_opt("header", header_json(&r.header))
                    .finish(),
            ),
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// One `lease keep-alive` response.
    pub fn keep_alive(&self, r: &LeaseKeepAliveResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => outln(&format!(
                "lease {:016x} keepalived with TTL({})",
                r.id, r.ttl
            )),
            Format::Json => outln(
                &flat_header(&r.header)
                    .int("ID", r.id)
                    .int("TTL", r.ttl)
                    .finish(),
            ),
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease timetolive`.
    pub fn time_to_live(&self, r: &LeaseTimeToLiveResponse, keys: bool) -> Result<(), CtlError> {
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => {
                if r.granted_ttl == 0 && r.ttl == -1 {
                    outln(&format!("lease {:016x} already expired", r.id));
                    return Ok(());
                }
                let mut txt = format!(
                    "lease {:016x} granted with TTL({}s), remaining({}s)",
                    r.id, r.granted_ttl, r.ttl
                );
                if keys {
                    let ks: Vec<String> = r
                        .keys
                        .iter()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .collect();
                    txt.push_str(&format!(", attached keys([{}])", ks.join(" ")));
                }
                outln(&txt);
            }
            Format::Json => {
                let keys = if r.keys.is_empty() {
                    "null".to_string()
                } else {
                    json::array(
                        r.keys
                            .iter()
                            .map(|k| json::string(&json::base64(k)))
                            .collect(),
                    )
                };
                outln(
                    &flat_header(&r.header)
                        .int("id", r.id)
                        .int("ttl", r.ttl)
                        .int("granted-ttl", r.granted_ttl)
                        .raw("keys", keys)
                        .finish(),
                )
            }
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `lease list`.
    pub fn leases(&self, r: &LeaseLeasesResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => {
                outln(&format!("found {} leases", r.leases.len()));
                for l in &r.leases {
                    outln(&format!("{:016x}", l.id));
                }
            }
            Format::Json => {
                let items = r
                    .leases
                    .iter()
                    .map(|l| Obj::new().int("id", l.id).finish())
                    .collect();
                outln(
                    &flat_header(&r.header)
                        .raw("leases", json::array(items))
                        .finish(),
                )
            }
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `member list`.
    pub fn member_list(&self, r: &MemberListResponse) -> Result<(), CtlError> {
        let header = [
            "ID",
            "STATUS",
            "NAME",
            "PEER ADDRS",
            "CLIENT ADDRS",
            "IS LEARNER",
        ];
        let rows: Vec<Vec<String>> = r
            .members
            .iter()
            .map(|m| {
                vec![
                    format!("{:x}", m.id),
                    if m.name.is_empty() {
                        "unstarted"
                    } else {
                        "started"
                    }
                    .to_string(),
                    m.name.clone(),
                    m.peer_urls.join(","),
                    m.client_urls.join(","),
                    m.is_learner.to_string(),
                ]
            })
            .collect();
        match self.format {
            Format::Simple => rows.iter().for_each(|r| outln(&r.join(", "))),
            Format::Json => outln(&members_json(&r.header, None, &r.members)),
            Format::Table => out(table::render(&header, &rows).as_bytes()),
            Format::Protobuf => self.pb(r),
            Format::Fields => {
                let mut o = String::new();
                fields_hdr(&mut o, &r.header, self.hex);
                for m in &r.members {
                    o.push_str(&format!("\"ID\" : {}\n", m.id));
                    o.push_str(&format!("\"Name\" : {}\n", super::args::go_quote(&m.name)));
                    for u in &m.peer_urls {
                        o.push_str(&format!("\"PeerURL\" : {}\n", super::args::go_quote(u)));
                    }
                    for u in &m.client_urls {
                        o.push_str(&format!("\"ClientURL\" : {}\n", super::args::go_quote(u)));
                    }
                    o.push_str(&format!("\"IsLearner\" : {}\n\n", m.is_learner));
                }
                out(o.as_bytes());
            }
        }
        Ok(())
    }

    /// A member add/remove/update/promote result; `simple` is the simple-format line.
    pub fn member_change(
        &self,
        simple: String,
        header: &Option<ResponseHeader>,
        member: Option<&Member>,
        members: &[Member],
    ) -> Result<(), CtlError> {
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => outln(&simple),
            Format::Json => outln(&members_json(header, member, members)),
            Format::Protobuf | Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `endpoint status`.
    pub fn endpoint_status(&self, list: &[(String, StatusResponse)]) -> Result<(), CtlError> {
        let header = [
            "ENDPOINT",
            "ID",
            "VERSION",
            "DB SIZE",
            "IS LEADER",
            "IS LEARNER",
            "RAFT TERM",
            "RAFT INDEX",
            "RAFT APPLIED INDEX",
            "ERRORS",
        ];
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|(ep, s)| {
                let member = s.header.as_ref().map(|h| h.member_id).unwrap_or(0);
                vec![
                    ep.clone(),
                    format!("{member:x}"),
                    s.version.clone(),
                    humanize_bytes(s.db_size.max(0) as u64),
                    (s.leader == member).to_string(),
                    s.is_learner.to_string(),
                    s.raft_term.to_string(),
                    s.raft_index.to_string(),
                    s.raft_applied_index.to_string(),
                    s.errors.join(", "),
                ]
            })
            .collect();
        match self.format {
            Format::Simple => rows.iter().for_each(|r| outln(&r.join(", "))),
            Format::Json => {
                let items = list
                    .iter()
                    .map(|(ep, s)| {
                        Obj::new()
                            .str("Endpoint", ep)
                            .raw("Status", status_json(s))
                            .finish()
                    })
                    .collect();
                outln(&json::array(items));
            }
            Format::Table => out(table::render(&header, &rows).as_bytes()),
            Format::Protobuf => return Err(self.unsupported()),
            Format::Fields => {
                let mut o = String::new();
                for (ep, st) in list {
                    fields_hdr(&mut o, &st.header, self.hex);
                    o.push_str(&format!(
                        "\"Version\" : {}\n",
                        super::args::go_quote(&st.version)
                    ));
                    o.push_str(&format!("\"DBSize\" : {}\n", st.db_size));
                    o.push_str(&format!("\"Leader\" : {}\n", st.leader));
                    o.push_str(&format!("\"IsLearner\" : {}\n", st.is_learner));
                    o.push_str(&format!("\"RaftIndex\" : {}\n", st.raft_index));
                    o.push_str(&format!("\"RaftTerm\" : {}\n", st.raft_term));
                    o.push_str(&format!(
                        "\"RaftAppliedIndex\" : {}\n",
                        st.raft_applied_index
                    ));
                    o.push_str(&format!("\"Errors\" : [{}]\n", st.errors.join(" ")));
                    o.push_str(&format!("\"Endpoint\" : {}\n\n", super::args::go_quote(ep)));
                }
                out(o.as_bytes());
            }
        }
        Ok(())
    }

    /// `endpoint health` (the simple format writes to stderr, as etcdctl does).
    pub fn endpoint_health(&self, list: &[EndpointHealth]) -> Result<(), CtlError> {
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => {
                for h in list {
                    if h.error.is_empty() {
                        eprintln!(
                            "{} is healthy: successfully committed proposal: took = {}",
                            h.endpoint,
                            go_duration(h.took)
                        );
                    } else {
                        eprintln!(
                            "{} is unhealthy: failed to commit proposal: {}",
                            h.endpoint, h.error
                        );
                    }
                }
            }
            Format::Json => {
                let items = list
                    .iter()
                    .map(|h| {
                        Obj::new()
                            .str("endpoint", &h.endpoint)
                            .bool("health", h.health)
                            .str("took", &go_duration(h.took))
                            .str_omit("error", &h.error)
                            .finish()
                    })
                    .collect();
                outln(&json::array(items));
            }
            Format::Table => {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|h| {
                        vec![
                            h.endpoint.clone(),
                            h.health.to_string(),
                            go_duration(h.took),
                            h.error.clone(),
                        ]
                    })
                    .collect();
                out(table::render(&["ENDPOINT", "HEALTH", "TOOK", "ERROR"], &rows).as_bytes());
            }
            Format::Protobuf => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `endpoint hashkv`.
    pub fn endpoint_hash_kv(&self, list: &[(String, HashKvResponse)]) -> Result<(), CtlError> {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|(ep, h)| vec![ep.clone(), h.hash.to_string()])
            .collect();
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => rows.iter().for_each(|r| outln(&r.join(", "))),
            Format::Json => {
                let items = list
                    .iter()
                    .map(|(ep, h)| {
                        let inner = Obj::new()
                            .raw_opt("header", header_json(&h.header))
                            .int_omit("hash", h.hash)
                            .int_omit("compact_revision", h.compact_revision)
                            .finish();
                        Obj::new().str("Endpoint", ep).raw("HashKV", inner).finish()
                    })
                    .collect();
                outln(&json::array(items));
            }
            Format::Table => out(table::render(&["ENDPOINT", "HASH"], &rows).as_bytes()),
            Format::Protobuf => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `alarm list` / `alarm disarm`.
    pub fn alarm(&self, r: &AlarmResponse) -> Result<(), CtlError> {
        match self.format {
            Format::Fields => return Err(self.unsupported()),
            Format::Simple => r.alarms.iter().for_each(|a| outln(&alarm_text(a))),
            Format::Json => {
                let items = r
                    .alarms
                    .iter()
                    .map(|a| {
                        Obj::new()
                            .int_omit("memberID", a.member_id)
                            .int_omit("alarm", a.alarm)
                            .finish()
                    })
                    .collect();
                outln(
                    &Obj::new()
                        .raw_opt("header", header_json(&r.header))
                        .array_omit("alarms", items)
                        .finish(),
                )
            }
            Format::Protobuf => self.pb(r),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        assert_eq!(go_duration(Duration::from_nanos(1_166_484)), "1.166484ms");
        assert_eq!(go_duration(Duration::from_nanos(999)), "999ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(go_duration(Duration::from_secs(63)), "1m3s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn humanized_sizes() {
        assert_eq!(humanize_bytes(20480), "20 kB");
        assert_eq!(humanize_bytes(5), "5 B");
        assert_eq!(humanize_bytes(1500), "1.5 kB");
        assert_eq!(humanize_bytes(25_000_000), "25 MB");
    }

    #[test]
    fn kv_json_like_etcdctl() {
        let kv = KeyValue {
            key: b"foo".to_vec(),
            create_revision: 2,
            mod_revision: 2,
            version: 1,
            value: b"bar".to_vec(),
            lease: 0,
        };
        assert_eq!(
            kv_json(&kv),
            r#"{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"value":"YmFy"}"#
        );
    }

    #[test]
    fn alarm_text_form() {
        let a = AlarmMember {
            member_id: 7,
            alarm: 1,
        };
        assert_eq!(alarm_text(&a), "memberID:7 alarm:NOSPACE ");
    }
}
