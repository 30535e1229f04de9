//! A register client: the workload's four operations as etcd v3 calls, and what their outcome
//! means for the history.
//!
//! | operation | etcd call |
//! |---|---|
//! | read | `Range(key)`, linearizable (the default) |
//! | write v | `Put(key, v)` |
//! | cas e → v | `Txn(if value(key) == e then Put(key, v))`; `succeeded` says whether it swapped |
//! | delete | `DeleteRange(key)` |
//!
//! Outcomes follow Jepsen: a call that returns an error *may still have taken effect* (the
//! request could have been proposed, committed and applied before the timeout or the lost
//! connection), so a failed write-like call is `Indeterminate`. Only a call that never left
//! the client (no connection) is `Failed`. A failed read changed nothing and is `Failed`.

use crate::checker::{OkValue, Op, Outcome};
use keel_net::client::{Client, ClientConfig, ClientError};
use keel_net::proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse,
    RequestOp, TxnRequest, TxnResponse,
};
use keel_net::proto::Message;
use std::time::Duration;

/// The etcd key of register `key`.
pub fn key_bytes(key: u64) -> Vec<u8> {
    format!("jepsen/r{key}").into_bytes()
}

/// One connection, used by one worker at a time.
pub struct RegisterClient {
    /// Answers that could not be understood (a value that is not a register value, an
    /// undecodable message): never expected, so a test fails on any.
    pub garbled: Vec<String>,
    /// Read with `serializable: true` (local, possibly stale) instead of linearizably.
    pub serializable_reads: bool,
    client: Option<Client>,
    endpoints: Vec<String>,
    config: ClientConfig,
}

impl std::fmt::Debug for RegisterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterClient")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl RegisterClient {
    /// A client for `endpoints` (the first is its home member; the others are tried when a
    /// connection fails). Connects lazily.
    pub fn new(endpoints: Vec<String>, call_timeout: Duration) -> RegisterClient {
        RegisterClient {
            garbled: Vec::new(),
            serializable_reads: false,
            client: None,
            endpoints,
            config: ClientConfig {
                connect_timeout: Duration::from_millis(500),
                call_timeout,
                ..ClientConfig::default()
            },
        }
    }

    /// Runs `op` on register `key` and classifies the result.
    pub fn invoke(&mut self, key: u64, op: &Op) -> Outcome {
        let client = match self.client.as_mut() {
            Some(c) => c,
            None => match Client::connect(&self.endpoints, self.config.clone()) {
                Ok(c) => self.client.insert(c),
                // Nothing was sent: the operation certainly did not happen.
                Err(_) => return Outcome::Failed,
            },
        };
        let k = key_bytes(key);
        let result = match op {
            Op::Read => call::<_, RangeResponse>(
                client,
                "/etcdserverpb.KV/Range",
                &RangeRequest {
                    key: k,
                    serializable: self.serializable_reads,
                    ..Default::default()
                },
            )
            .and_then(|r| match r.kvs.first() {
                None => Ok(OkValue::Read(None)),
                Some(kv) => parse(&kv.value).map(|v| OkValue::Read(Some(v))),
            }),
            Op::Write(v) => call::<_, keel_net::proto::etcdserverpb::PutResponse>(
                client,
                "/etcdserverpb.KV/Put",
                &PutRequest {
                    key: k,
                    value: v.to_string().into_bytes(),
                    ..Default::default()
                },
            )
            .map(|_| OkValue::Written),
            Op::Cas { expect, new } => call::<_, TxnResponse>(
                client,
                "/etcdserverpb.KV/Txn",
                &TxnRequest {
                    compare: vec![Compare {
                        result: compare::CompareResult::Equal as i32,
                        target: compare::CompareTarget::Value as i32,
                        key: k.clone(),
                        target_union: Some(compare::TargetUnion::Value(
                            expect.to_string().into_bytes(),
                        )),
                        ..Default::default()
                    }],
                    success: vec![RequestOp {
                        request: Some(request_op::Request::RequestPut(PutRequest {
                            key: k,
                            value: new.to_string().into_bytes(),
                            ..Default::default()
                        })),
                    }],
                    failure: vec![],
                },
            )
            .map(|r| OkValue::Cas(r.succeeded)),
            Op::Delete => call::<_, keel_net::proto::etcdserverpb::DeleteRangeResponse>(
                client,
                "/etcdserverpb.KV/DeleteRange",
                &DeleteRangeRequest {
                    key: k,
                    ..Default::default()
                },
            )
            .map(|_| OkValue::Deleted),
        };
        match result {
            Ok(v) => Outcome::Ok(v),
            Err(e) => {
                if let CallFailure::Garbled(why) = &e {
                    self.garbled
                        .push(format!("{op:?} on register {key}: {why}"));
                }
                if matches!(
                    e,
                    CallFailure::Transport(ClientError::Io(_) | ClientError::Timeout)
                ) {
                    // Start afresh: the stream may be stuck behind a partition.
                    self.client = None;
                }
                match (op, e) {
                    (Op::Read, _) => Outcome::Failed,
                    (_, CallFailure::Transport(ClientError::Connect(_))) => Outcome::Failed,
                    _ => Outcome::Indeterminate,
                }
            }
        }
    }
}

/// Why a call did not give a usable answer.
#[derive(Debug)]
enum CallFailure {
    Transport(ClientError),
    /// The answer could not be understood (never expected from keel or etcd).
    Garbled(String),
}

fn call<Req: Message, Resp: Message + Default>(
    c: &mut Client,
    path: &str,
    req: &Req,
) -> Result<Resp, CallFailure> {
    let bytes = c
        .unary(path, &req.encode_to_vec())
        .map_err(CallFailure::Transport)?;
    Resp::decode(bytes.as_slice()).map_err(|e| CallFailure::Garbled(e.to_string()))
}

fn parse(value: &[u8]) -> Result<u64, CallFailure> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CallFailure::Garbled(format!("register value {value:?} is not a number")))
}
