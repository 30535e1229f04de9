//! Typed calls over keel-net's blocking gRPC client, for what etcdctl is too slow or too coarse
//! for: thousands of writes from several threads, HashKV, Status, member lists.
//!
//! Each call function takes a connected [`Client`]; the `*_at(endpoint)` forms connect for one
//! call (used for polling a member that may be down).

use keel_net::client::{Client, ClientConfig, ClientError};
use keel_net::proto::etcdserverpb::{
    HashKvRequest, HashKvResponse, MemberListRequest, MemberListResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, StatusRequest, StatusResponse,
};
use keel_net::proto::Message;
use std::time::Duration;

/// Any failure of a call: transport, status or an undecodable response.
#[derive(Debug)]
pub enum CallError {
    /// The client failed (connect, I/O, timeout, non-OK status).
    Client(ClientError),
    /// The response did not decode as the expected message.
    Decode(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Client(e) => write!(f, "{e}"),
            CallError::Decode(e) => write!(f, "undecodable response: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<ClientError> for CallError {
    fn from(e: ClientError) -> Self {
        CallError::Client(e)
    }
}

/// Connects to the first reachable endpoint, with a short connect timeout and `call_timeout`
/// per call.
pub fn connect(endpoints: &[String], call_timeout: Duration) -> Result<Client, CallError> {
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(1),
        call_timeout,
        ..ClientConfig::default()
    };
    Ok(Client::connect(endpoints, config)?)
}

/// Any unary call: `path` is the gRPC method path (e.g. `/v3lockpb.Lock/Lock`).
pub fn call<Req: Message, Resp: Message + Default>(
    c: &mut Client,
    path: &str,
    req: &Req,
) -> Result<Resp, CallError> {
    let bytes = c.unary(path, &req.encode_to_vec())?;
    Resp::decode(bytes.as_slice()).map_err(|e| CallError::Decode(e.to_string()))
}

/// `Put(key, value)`.
pub fn put(c: &mut Client, key: &[u8], value: &[u8]) -> Result<PutResponse, CallError> {
    let req = PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        ..Default::default()
    };
    call(c, "/etcdserverpb.KV/Put", &req)
}

/// `Range(key, range_end)`; `serializable` reads the member's local state.
pub fn range(
    c: &mut Client,
    key: &[u8],
    range_end: &[u8],
    serializable: bool,
) -> Result<RangeResponse, CallError> {
    let req = RangeRequest {
        key: key.to_vec(),
        range_end: range_end.to_vec(),
        serializable,
        ..Default::default()
    };
    call(c, "/etcdserverpb.KV/Range", &req)
}

/// `HashKV(revision)` (0 = latest).
pub fn hash_kv(c: &mut Client, revision: i64) -> Result<HashKvResponse, CallError> {
    call(
        c,
        "/etcdserverpb.Maintenance/HashKV",
        &HashKvRequest { revision },
    )
}

/// `Status` of the member `c` is connected to.
pub fn status_of(c: &mut Client) -> Result<StatusResponse, CallError> {
    call(c, "/etcdserverpb.Maintenance/Status", &StatusRequest {})
}

/// `Status` of the member at `endpoint` (one connection, 2 s deadline).
pub fn status(endpoint: &str) -> Result<StatusResponse, CallError> {
    let mut c = connect(&[endpoint.to_string()], Duration::from_secs(2))?;
    status_of(&mut c)
}

/// `MemberList` as seen by the member at `endpoint`.
pub fn member_list(endpoint: &str) -> Result<MemberListResponse, CallError> {
    let mut c = connect(&[endpoint.to_string()], Duration::from_secs(5))?;
    call(
        &mut c,
        "/etcdserverpb.Cluster/MemberList",
        &MemberListRequest {
            linearizable: false,
        },
    )
}

/// `HashKV` at `revision` of the member at `endpoint`.
pub fn hash_kv_at(endpoint: &str, revision: i64) -> Result<HashKvResponse, CallError> {
    let mut c = connect(&[endpoint.to_string()], Duration::from_secs(10))?;
    hash_kv(&mut c, revision)
}

/// The message of a non-OK gRPC status, if that is what the error is.
pub fn status_message(e: &CallError) -> Option<&str> {
    match e {
        CallError::Client(ClientError::Status(s)) => Some(&s.message),
        _ => None,
    }
}
