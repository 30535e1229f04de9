//! Conversions between etcd's wire messages (`keel_net::proto`, prost structs) and the store's
//! request/response types (`keel_mvcc`), plus the mapping of store errors to gRPC statuses.
//!
//! The store works with plain Rust types (enums instead of `i32` for protobuf enums, an enum
//! instead of `Compare`'s target + oneof pair); the wire has etcd's layout. Everything that is
//! etcd *policy* about odd inputs is decided here, with the etcd rule cited:
//! * an unknown enum number (a newer client) maps to the default variant, as Go's generated code
//!   keeps the number and etcd's `switch` falls to its default branch;
//! * a `Compare` whose `target_union` is of another kind than `target` (or absent) compares
//!   against the zero value of the target (etcd reads the typed getter, which returns 0/nil).

use keel_mvcc as mvcc;
use keel_net::proto::etcdserverpb as pb;
use keel_net::proto::mvccpb;

use crate::errors::{Code, EtcdError, Status};

/// The part of every response header that belongs to the server, not the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Cluster ID.
    pub cluster_id: u64,
    /// This member's ID.
    pub member_id: u64,
    /// Current Raft term.
    pub raft_term: u64,
}

impl HeaderInfo {
    /// A full header at store revision `revision`.
    pub fn header(&self, revision: i64) -> pb::ResponseHeader {
        pb::ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision,
            raft_term: self.raft_term,
        }
    }
}

/// Header of a response nested in a txn: etcd fills only the revision there.
fn nested_header(revision: i64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        revision,
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Wire → store
// ---------------------------------------------------------------------------------------------

/// `RangeRequest` to the store's form (`serializable` is the server's business and dropped).
pub fn range_request(r: &pb::RangeRequest) -> mvcc::RangeRequest {
    use pb::range_request::{SortOrder as O, SortTarget as T};
    mvcc::RangeRequest {
        key: r.key.clone(),
        range_end: r.range_end.clone(),
        limit: r.limit,
        revision: r.revision,
        sort_order: match O::try_from(r.sort_order) {
            Ok(O::Ascend) => mvcc::SortOrder::Ascend,
            Ok(O::Descend) => mvcc::SortOrder::Descend,
            _ => mvcc::SortOrder::None,
        },
        sort_target: match T::try_from(r.sort_target) {
            Ok(T::Version) => mvcc::SortTarget::Version,
            Ok(T::Create) => mvcc::SortTarget::Create,
            Ok(T::Mod) => mvcc::SortTarget::Mod,
            Ok(T::Value) => mvcc::SortTarget::Value,
            _ => mvcc::SortTarget::Key,
        },
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    }
}

/// `PutRequest` to the store's form.
pub fn put_request(r: &pb::PutRequest) -> mvcc::PutRequest {
    mvcc::PutRequest {
        key: r.key.clone(),
        value: r.value.clone(),
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

/// Checks a put as the store will check it when applying, without copying its key and value
/// (they are lent to the store's form for the check and given back): a put is checked on the
/// member that receives it, once per client request.
pub fn check_put(r: &mut pb::PutRequest) -> Result<(), Status> {
    let probe = mvcc::Request::Put(mvcc::PutRequest {
        key: std::mem::take(&mut r.key),
        value: std::mem::take(&mut r.value),
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    });
    let verdict = mvcc::validate_request(&probe, 0).map_err(|e| store_error(&e));
    if let mvcc::Request::Put(p) = probe {
        r.key = p.key;
        r.value = p.value;
    }
    verdict
}

/// `DeleteRangeRequest` to the store's form.
pub fn delete_range_request(r: &pb::DeleteRangeRequest) -> mvcc::DeleteRangeRequest {
    mvcc::DeleteRangeRequest {
        key: r.key.clone(),
        range_end: r.range_end.clone(),
        prev_kv: r.prev_kv,
    }
}

/// `Compare` to the store's form (see the module doc for mismatched unions).
pub fn compare(c: &pb::Compare) -> mvcc::Compare {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let result = match R::try_from(c.result) {
        Ok(R::Greater) => mvcc::CompareResult::Greater,
        Ok(R::Less) => mvcc::CompareResult::Less,
        Ok(R::NotEqual) => mvcc::CompareResult::NotEqual,
        _ => mvcc::CompareResult::Equal,
    };
    let u = c.target_union.as_ref();
    let target = match T::try_from(c.target) {
        Ok(T::Create) => mvcc::CompareTarget::Create(match u {
            Some(U::CreateRevision(v)) => *v,
            _ => 0,
        }),
        Ok(T::Mod) => mvcc::CompareTarget::Mod(match u {
            Some(U::ModRevision(v)) => *v,
            _ => 0,
        }),
        Ok(T::Value) => mvcc::CompareTarget::Value(match u {
            Some(U::Value(v)) => v.clone(),
            _ => Vec::new(),
        }),
        Ok(T::Lease) => mvcc::CompareTarget::Lease(match u {
            Some(U::Lease(v)) => *v,
            _ => 0,
        }),
        _ => mvcc::CompareTarget::Version(match u {
            Some(U::Version(v)) => *v,
            _ => 0,
        }),
    };
    mvcc::Compare {
        result,
        target,
        key: c.key.clone(),
        range_end: c.range_end.clone(),
    }
}

/// One `RequestOp` of a txn. An empty op (no oneof set) is an invalid request.
pub fn request_op(op: &pb::RequestOp) -> Result<mvcc::RequestOp, Status> {
    use pb::request_op::Request as R;
    match &op.request {
        Some(R::RequestRange(r)) => Ok(mvcc::RequestOp::Range(range_request(r))),
        Some(R::RequestPut(r)) => Ok(mvcc::RequestOp::Put(put_request(r))),
        Some(R::RequestDeleteRange(r)) => Ok(mvcc::RequestOp::DeleteRange(delete_range_request(r))),
        Some(R::RequestTxn(t)) => Ok(mvcc::RequestOp::Txn(txn_request(t)?)),
        // etcd's `checkRequestOp` (v3rpc/key.go): "empty op / nil entry" → ErrGRPCKeyNotFound.
        None => Err(EtcdError::KeyNotFound.status()),
    }
}

/// `TxnRequest` to the store's form.
pub fn txn_request(t: &pb::TxnRequest) -> Result<mvcc::TxnRequest, Status> {
    Ok(mvcc::TxnRequest {
        compare: t.compare.iter().map(compare).collect(),
        success: t.success.iter().map(request_op).collect::<Result<_, _>>()?,
        failure: t.failure.iter().map(request_op).collect::<Result<_, _>>()?,
    })
}

/// `CompactionRequest` to the store's form.
pub fn compaction_request(r: &pb::CompactionRequest) -> mvcc::CompactionRequest {
    mvcc::CompactionRequest {
        revision: r.revision,
        physical: r.physical,
    }
}

/// `LeaseGrantRequest` to the store's form.
pub fn lease_grant_request(r: &pb::LeaseGrantRequest) -> mvcc::LeaseGrantRequest {
    mvcc::LeaseGrantRequest {
        ttl: r.ttl,
        id: r.id,
    }
}

/// `LeaseRevokeRequest` to the store's form.
pub fn lease_revoke_request(r: &pb::LeaseRevokeRequest) -> mvcc::LeaseRevokeRequest {
    mvcc::LeaseRevokeRequest { id: r.id }
}

// ---------------------------------------------------------------------------------------------
// Store → wire
// ---------------------------------------------------------------------------------------------

/// `mvccpb.KeyValue` from the store's.
pub fn key_value(kv: &mvcc::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key.clone(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value.clone(),
        lease: kv.lease,
    }
}

fn key_value_owned(kv: mvcc::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

fn range_response_with(
    r: mvcc::RangeResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::RangeResponse {
    pb::RangeResponse {
        header,
        kvs: r.kvs.into_iter().map(key_value_owned).collect(),
        more: r.more,
        count: r.count,
    }
}

fn put_response_with(r: mvcc::PutResponse, header: Option<pb::ResponseHeader>) -> pb::PutResponse {
    pb::PutResponse {
        header,
        prev_kv: r.prev_kv.map(key_value_owned),
    }
}

fn delete_response_with(
    r: mvcc::DeleteRangeResponse,
    header: Option<pb::ResponseHeader>,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header,
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(key_value_owned).collect(),
    }
}

fn txn_response_with(r: mvcc::TxnResponse, header: Option<pb::ResponseHeader>) -> pb::TxnResponse {
    use pb::response_op::Response as R;
    let responses = r
        .responses
        .into_iter()
        .map(|op| pb::ResponseOp {
            response: Some(match op {
                mvcc::ResponseOp::Range(x) => {
                    let h = nested_header(x.revision);
                    R::ResponseRange(range_response_with(x, h))
                }
                mvcc::ResponseOp::Put(x) => {
                    let h = nested_header(x.revision);
                    R::ResponsePut(put_response_with(x, h))
                }
                mvcc::ResponseOp::DeleteRange(x) => {
                    let h = nested_header(x.revision);
                    R::ResponseDeleteRange(delete_response_with(x, h))
                }
                mvcc::ResponseOp::Txn(x) => {
                    let h = nested_header(x.revision);
                    R::ResponseTxn(txn_response_with(x, h))
                }
            }),
        })
        .collect();
    pb::TxnResponse {
        header,
        succeeded: r.succeeded,
        responses,
    }
}

/// `RangeResponse` with a full header.
pub fn range_response(r: mvcc::RangeResponse, h: &HeaderInfo) -> pb::RangeResponse {
    let header = Some(h.header(r.revision));
    range_response_with(r, header)
}

/// `PutResponse` with a full header.
pub fn put_response(r: mvcc::PutResponse, h: &HeaderInfo) -> pb::PutResponse {
    let header = Some(h.header(r.revision));
    put_response_with(r, header)
}

/// `DeleteRangeResponse` with a full header.
pub fn delete_range_response(
    r: mvcc::DeleteRangeResponse,
    h: &HeaderInfo,
) -> pb::DeleteRangeResponse {
    let header = Some(h.header(r.revision));
    delete_response_with(r, header)
}

/// `TxnResponse` with a full header (nested responses carry only their revision).
pub fn txn_response(r: mvcc::TxnResponse, h: &HeaderInfo) -> pb::TxnResponse {
    let header = Some(h.header(r.revision));
    txn_response_with(r, header)
}

/// `CompactionResponse` with a full header.
pub fn compaction_response(r: mvcc::CompactionResponse, h: &HeaderInfo) -> pb::CompactionResponse {
    pb::CompactionResponse {
        header: Some(h.header(r.revision)),
    }
}

/// `LeaseGrantResponse` with a full header.
pub fn lease_grant_response(r: mvcc::LeaseGrantResponse, h: &HeaderInfo) -> pb::LeaseGrantResponse {
    pb::LeaseGrantResponse {
        header: Some(h.header(r.revision)),
        id: r.id,
        ttl: r.ttl,
        error: String::new(),
    }
}

/// `LeaseRevokeResponse` with a full header.
pub fn lease_revoke_response(
    r: mvcc::LeaseRevokeResponse,
    h: &HeaderInfo,
) -> pb::LeaseRevokeResponse {
    pb::LeaseRevokeResponse {
        header: Some(h.header(r.revision)),
    }
}

// ---------------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------------

/// `WatchCreateRequest` to the store's form, with etcd's key normalisation (`v3rpc/watch.go`):
/// an empty key means `"\0"`, the smallest key.
pub fn watch_create_request(r: &pb::WatchCreateRequest) -> mvcc::WatchCreateRequest {
    use pb::watch_create_request::FilterType as F;
    mvcc::WatchCreateRequest {
        key: if r.key.is_empty() {
            vec![0]
        } else {
            r.key.clone()
        },
        range_end: r.range_end.clone(),
        start_revision: r.start_revision,
        progress_notify: r.progress_notify,
        filters: r
            .filters
            .iter()
            .filter_map(|f| match F::try_from(*f) {
                Ok(F::Noput) => Some(mvcc::WatchFilter::NoPut),
                Ok(F::Nodelete) => Some(mvcc::WatchFilter::NoDelete),
                Err(_) => None,
            })
            .collect(),
        prev_kv: r.prev_kv,
        watch_id: r.watch_id,
    }
}

/// A store watch response as the wire message, with a full header.
pub fn watch_response(r: mvcc::WatchResponse, h: &HeaderInfo) -> pb::WatchResponse {
    pb::WatchResponse {
        header: Some(h.header(r.revision)),
        watch_id: r.watch_id,
        created: r.created,
        canceled: r.canceled,
        compact_revision: r.compact_revision,
        cancel_reason: r.cancel_reason,
        fragment: false,
        events: r
            .events
            .into_iter()
            .map(|e| mvccpb::Event {
                r#type: match e.kind {
                    mvcc::EventType::Put => mvccpb::event::EventType::Put as i32,
                    mvcc::EventType::Delete => mvccpb::event::EventType::Delete as i32,
                },
                kv: Some(key_value_owned(e.kv)),
                prev_kv: e.prev_kv.map(key_value_owned),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The gRPC status etcd sends for a store error.
pub fn store_error(e: &mvcc::Error) -> Status {
    use mvcc::Error as E;
    let table = match e {
        E::Compacted => Some(EtcdError::Compacted),
        E::FutureRevision => Some(EtcdError::FutureRev),
        E::KeyNotProvided => Some(EtcdError::EmptyKey),
        E::KeyNotFound => Some(EtcdError::KeyNotFound),
        E::ValueProvided => Some(EtcdError::ValueProvided),
        E::LeaseProvided => Some(EtcdError::LeaseProvided),
        E::TooManyOps => Some(EtcdError::TooManyOps),
        E::DuplicateKey => Some(EtcdError::DuplicateKey),
        E::LeaseNotFound => Some(EtcdError::LeaseNotFound),
        E::LeaseExists => Some(EtcdError::LeaseExist),
        E::LeaseTtlTooLarge => Some(EtcdError::LeaseTtlTooLarge),
        _ => None,
    };
    match table {
        Some(t) => t.status(),
        // Not in etcd's table: etcd's togRPCError sends codes.Unknown with the error text.
        None => match e {
            E::Corrupt(_) => Status::new(Code::DataLoss, e.etcd_message()),
            _ => Status::unknown(e.etcd_message()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};

    #[test]
    fn check_put_gives_the_same_verdict_as_the_store_and_keeps_the_request() {
        let cases = [
            (b"k".to_vec(), b"v".to_vec(), 0, false, false),
            (vec![], b"v".to_vec(), 0, false, false),
            (b"k".to_vec(), b"v".to_vec(), 0, true, false),
            (b"k".to_vec(), vec![], 0, true, false),
            (b"k".to_vec(), b"v".to_vec(), 7, false, true),
            (b"k".to_vec(), b"v".to_vec(), 7, false, false),
        ];
        for (key, value, lease, ignore_value, ignore_lease) in cases {
            let mut r = pb::PutRequest {
                key,
                value,
                lease,
                prev_kv: true,
                ignore_value,
                ignore_lease,
            };
            let before = r.clone();
            let want = mvcc::validate_request(&mvcc::Request::Put(put_request(&r)), 0)
                .map_err(|e| store_error(&e));
            assert_eq!(check_put(&mut r), want, "{before:?}");
            assert_eq!(r, before, "the request is given back whole");
        }
    }

    #[test]
    fn range_enums_and_unknown_numbers() {
        let r = pb::RangeRequest {
            key: b"a".to_vec(),
            sort_order: 2,
            sort_target: 3,
            limit: 5,
            ..Default::default()
        };
        let m = range_request(&r);
        assert_eq!(
            (m.sort_order, m.sort_target, m.limit),
            (mvcc::SortOrder::Descend, mvcc::SortTarget::Mod, 5)
        );
        let odd = range_request(&pb::RangeRequest {
            sort_order: 99,
            sort_target: -1,
            ..Default::default()
        });
        assert_eq!(
            (odd.sort_order, odd.sort_target),
            (mvcc::SortOrder::None, mvcc::SortTarget::Key)
        );
    }

    #[test]
    fn compare_targets_and_mismatched_unions() {
        let c = |target: T, u: Option<U>| pb::Compare {
            result: R::Greater as i32,
            target: target as i32,
            key: b"k".to_vec(),
            target_union: u,
            range_end: vec![],
        };
        assert_eq!(
            compare(&c(T::Mod, Some(U::ModRevision(7)))).target,
            mvcc::CompareTarget::Mod(7)
        );
        assert_eq!(
            compare(&c(T::Value, Some(U::Value(b"v".to_vec())))).target,
            mvcc::CompareTarget::Value(b"v".to_vec())
        );
        assert_eq!(
            compare(&c(T::Create, Some(U::Version(3)))).target,
            mvcc::CompareTarget::Create(0)
        );
        assert_eq!(
            compare(&c(T::Lease, None)).target,
            mvcc::CompareTarget::Lease(0)
        );
        assert_eq!(
            compare(&c(T::Version, Some(U::Version(2)))).result,
            mvcc::CompareResult::Greater
        );
    }

    #[test]
    fn nested_txn_round_trip_and_empty_op() {
        use pb::request_op::Request as Q;
        let inner = pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(Q::RequestPut(pb::PutRequest {
                    key: b"x".to_vec(),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        let outer = pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(Q::RequestTxn(inner)),
            }],
            failure: vec![pb::RequestOp {
                request: Some(Q::RequestRange(pb::RangeRequest::default())),
            }],
            ..Default::default()
        };
        let m = txn_request(&outer).unwrap();
        match &m.success[0] {
            mvcc::RequestOp::Txn(t) => {
                assert!(matches!(&t.success[0], mvcc::RequestOp::Put(p) if p.key == b"x"))
            }
            other => panic!("{other:?}"),
        }
        let bad = pb::TxnRequest {
            success: vec![pb::RequestOp { request: None }],
            ..Default::default()
        };
        assert_eq!(
            txn_request(&bad).unwrap_err(),
            EtcdError::KeyNotFound.status()
        );
    }

    #[test]
    fn txn_response_headers_full_outside_revision_only_inside() {
        let h = HeaderInfo {
            cluster_id: 1,
            member_id: 2,
            raft_term: 3,
        };
        let r = mvcc::TxnResponse {
            revision: 9,
            succeeded: true,
            responses: vec![mvcc::ResponseOp::Put(mvcc::PutResponse {
                revision: 9,
                prev_kv: None,
            })],
        };
        let p = txn_response(r, &h);
        assert_eq!(
            p.header,
            Some(pb::ResponseHeader {
                cluster_id: 1,
                member_id: 2,
                revision: 9,
                raft_term: 3
            })
        );
        match &p.responses[0].response {
            Some(pb::response_op::Response::ResponsePut(put)) => {
                assert_eq!(
                    put.header,
                    Some(pb::ResponseHeader {
                        revision: 9,
                        ..Default::default()
                    })
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn store_errors_map_to_etcd_statuses() {
        assert_eq!(
            store_error(&mvcc::Error::Compacted),
            EtcdError::Compacted.status()
        );
        assert_eq!(
            store_error(&mvcc::Error::FutureRevision),
            EtcdError::FutureRev.status()
        );
        assert_eq!(
            store_error(&mvcc::Error::KeyNotProvided),
            EtcdError::EmptyKey.status()
        );
        assert_eq!(
            store_error(&mvcc::Error::LeaseExists),
            EtcdError::LeaseExist.status()
        );
        assert_eq!(
            store_error(&mvcc::Error::Storage("disk".into())).code,
            Code::Unknown
        );
        assert_eq!(
            store_error(&mvcc::Error::Corrupt("x".into())).code,
            Code::DataLoss
        );
        // Wherever the store has an etcd message, it must agree with the table.
        for e in [
            mvcc::Error::Compacted,
            mvcc::Error::FutureRevision,
            mvcc::Error::KeyNotProvided,
            mvcc::Error::KeyNotFound,
            mvcc::Error::ValueProvided,
            mvcc::Error::LeaseProvided,
            mvcc::Error::TooManyOps,
            mvcc::Error::DuplicateKey,
            mvcc::Error::LeaseNotFound,
            mvcc::Error::LeaseExists,
            mvcc::Error::LeaseTtlTooLarge,
        ] {
            let s = store_error(&e);
            assert_eq!(s.message, e.etcd_message());
            assert_eq!(s.code.as_u32(), e.grpc_code() as u32);
        }
    }
}
