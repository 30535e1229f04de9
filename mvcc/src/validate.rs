//! Request checks etcd performs before a request enters the log (`v3rpc/key.go`): empty keys,
//! conflicting put flags, the txn op budget, and the rule that a txn may not write one key twice.
//!
//! The server should call [`validate_request`] before proposing (to fail fast); the store runs
//! it again when applying, so that a request that skipped it still cannot break determinism.

use crate::error::Error;
use crate::key_index::in_range;
use crate::types::{DeleteRangeRequest, PutRequest, RangeRequest, Request, RequestOp, TxnRequest};
use std::collections::HashSet;

/// etcd's default `--max-txn-ops`.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// Checks a request as etcd's gRPC layer does.
pub fn validate_request(req: &Request, max_txn_ops: usize) -> Result<(), Error> {
    match req {
        Request::Range(r) => check_range(r),
        Request::Put(p) => check_put(p),
        Request::DeleteRange(d) => check_delete(d),
        Request::Txn(t) => {
            check_txn(t, max_txn_ops)?;
            check_intervals(&t.success)?;
            check_intervals(&t.failure)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_range(r: &RangeRequest) -> Result<(), Error> {
    if r.key.is_empty() {
        return Err(Error::KeyNotProvided);
    }
    Ok(())
}

fn check_put(p: &PutRequest) -> Result<(), Error> {
    if p.key.is_empty() {
        return Err(Error::KeyNotProvided);
    }
    if p.ignore_value && !p.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if p.ignore_lease && p.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

fn check_delete(d: &DeleteRangeRequest) -> Result<(), Error> {
    if d.key.is_empty() {
        return Err(Error::KeyNotProvided);
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_txn_ops: usize) -> Result<(), Error> {
    match op {
        RequestOp::Range(r) => check_range(r),
        RequestOp::Put(p) => check_put(p),
        RequestOp::DeleteRange(d) => check_delete(d),
        RequestOp::Txn(t) => check_txn(t, max_txn_ops),
    }
}

/// etcd's `checkTxnRequest`: the largest of compare/success/failure counts is charged against
/// the budget, and nested txns get what is left.
fn check_txn(t: &TxnRequest, max_txn_ops: usize) -> Result<(), Error> {
    let opc = t.compare.len().max(t.success.len()).max(t.failure.len());
    if opc > max_txn_ops {
        return Err(Error::TooManyOps);
    }
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::KeyNotProvided);
    }
    for op in t.success.iter().chain(&t.failure) {
        check_op(op, max_txn_ops - opc)?;
    }
    Ok(())
}

/// A deleted interval, in etcd's interval-tree convention: an empty end is a single point.
///
/// etcd builds these with `NewStringAffineInterval(key, range_end)` without translating a
/// range end of `"\0"`, so a from-key delete `[key, "\0")` is an empty interval and never
/// conflicts with a put. That quirk is reproduced here (checked against etcd 3.4, see the
/// `txn_from_key_delete_and_put_is_allowed` test).
#[derive(Debug, Clone)]
struct Deleted {
    key: Vec<u8>,
    range_end: Vec<u8>,
}

impl Deleted {
    fn contains(&self, k: &[u8]) -> bool {
        if self.range_end.is_empty() {
            k == self.key.as_slice()
        } else if self.range_end == [0] {
            false
        } else {
            in_range(k, &self.key, &self.range_end)
        }
    }
}

fn conflicts(dels: &[Deleted], k: &[u8]) -> bool {
    dels.iter().any(|d| d.contains(k))
}

/// etcd's `checkIntervals`: puts may not repeat a key or fall in a range deleted at the same or
/// an enclosing level; the two branches of a nested txn may put the same key.
fn check_intervals(reqs: &[RequestOp]) -> Result<(HashSet<Vec<u8>>, Vec<Deleted>), Error> {
    let mut dels: Vec<Deleted> = reqs
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(Deleted {
                key: d.key.clone(),
                range_end: d.range_end.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in reqs {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || conflicts(&dels, k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in &puts_else {
            if puts.contains(k) && !puts_then.contains(k) {
                return Err(Error::DuplicateKey);
            }
            if conflicts(&dels, k) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in reqs {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || conflicts(&dels, &p.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}
