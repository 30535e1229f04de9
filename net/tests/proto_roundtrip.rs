//! Property tests for the etcd v3 messages: encode → decode is the identity, and decoding random
//! byte soups returns a value or a `DecodeError` but never panics (and whatever decodes
//! re-encodes to something that decodes to the same value).

use keel_net::proto::authpb::{Permission, Role, User};
use keel_net::proto::etcdserverpb::*;
use keel_net::proto::mvccpb::{Event, KeyValue};
use keel_net::proto::v3electionpb::*;
use keel_net::proto::v3lockpb::*;
use keel_net::proto::Message;
use proptest::prelude::*;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..12)
}

fn key_value() -> impl Strategy<Value = KeyValue> {
    (
        bytes(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        bytes(),
        any::<i64>(),
    )
        .prop_map(
            |(key, create_revision, mod_revision, version, value, lease)| KeyValue {
                key,
                create_revision,
                mod_revision,
                version,
                value,
                lease,
            },
        )
}

fn header() -> impl Strategy<Value = Option<ResponseHeader>> {
    proptest::option::of(
        (any::<u64>(), any::<u64>(), any::<i64>(), any::<u64>()).prop_map(
            |(cluster_id, member_id, revision, raft_term)| ResponseHeader {
                cluster_id,
                member_id,
                revision,
                raft_term,
            },
        ),
    )
}

/// Enum fields hold any i32 on the wire (unknown values must survive a round trip too).
fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![0..5i32, any::<i32>()]
}

fn range_request() -> impl Strategy<Value = RangeRequest> {
    (
        (
            bytes(),
            bytes(),
            any::<i64>(),
            any::<i64>(),
            enum_value(),
            enum_value(),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
    )
        .prop_map(
            |((key, range_end, limit, revision, so, st), (ser, ko, co), (a, b, c, d))| {
                RangeRequest {
                    key,
                    range_end,
                    limit,
                    revision,
                    sort_order: so,
                    sort_target: st,
                    serializable: ser,
                    keys_only: ko,
                    count_only: co,
                    min_mod_revision: a,
                    max_mod_revision: b,
                    min_create_revision: c,
                    max_create_revision: d,
                }
            },
        )
}

fn put_request() -> impl Strategy<Value = PutRequest> {
    (
        bytes(),
        bytes(),
        any::<i64>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(key, value, lease, prev_kv, ignore_value, ignore_lease)| PutRequest {
                key,
                value,
                lease,
                prev_kv,
                ignore_value,
                ignore_lease,
            },
        )
}

fn compare() -> impl Strategy<Value = Compare> {
    use compare::TargetUnion;
    let union = proptest::option::of(prop_oneof![
        any::<i64>().prop_map(TargetUnion::Version),
        any::<i64>().prop_map(TargetUnion::CreateRevision),
        any::<i64>().prop_map(TargetUnion::ModRevision),
        bytes().prop_map(TargetUnion::Value),
        any::<i64>().prop_map(TargetUnion::Lease),
    ]);
    (enum_value(), enum_value(), bytes(), union, bytes()).prop_map(
        |(result, target, key, target_union, range_end)| Compare {
            result,
            target,
            key,
            target_union,
            range_end,
        },
    )
}

fn flat_op() -> impl Strategy<Value = RequestOp> {
    use request_op::Request;
    proptest::option::of(prop_oneof![
        range_request().prop_map(Request::RequestRange),
        put_request().prop_map(Request::RequestPut),
        (bytes(), bytes(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| {
            Request::RequestDeleteRange(DeleteRangeRequest {
                key,
                range_end,
                prev_kv,
            })
        }),
    ])
    .prop_map(|request| RequestOp { request })
}

fn txn_request() -> impl Strategy<Value = TxnRequest> {
    use proptest::collection::vec;
    let nested = (
        vec(compare(), 0..3),
        vec(flat_op(), 0..3),
        vec(flat_op(), 0..3),
    )
        .prop_map(|(compare, success, failure)| RequestOp {
            request: Some(request_op::Request::RequestTxn(TxnRequest {
                compare,
                success,
                failure,
            })),
        });
    let op = prop_oneof![3 => flat_op(), 1 => nested];
    (vec(compare(), 0..4), vec(op.clone(), 0..4), vec(op, 0..4)).prop_map(
        |(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        },
    )
}

fn watch_request() -> impl Strategy<Value = WatchRequest> {
    use watch_request::RequestUnion;
    let create = (
        (bytes(), bytes(), any::<i64>(), any::<bool>()),
        (
            proptest::collection::vec(enum_value(), 0..4),
            any::<bool>(),
            any::<i64>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (key, range_end, start_revision, progress_notify),
                (filters, prev_kv, watch_id, fragment),
            )| {
                WatchCreateRequest {
                    key,
                    range_end,
                    start_revision,
                    progress_notify,
                    filters,
                    prev_kv,
                    watch_id,
                    fragment,
                }
            },
        );
    proptest::option::of(prop_oneof![
        create.prop_map(RequestUnion::CreateRequest),
        any::<i64>()
            .prop_map(|watch_id| RequestUnion::CancelRequest(WatchCancelRequest { watch_id })),
        Just(RequestUnion::ProgressRequest(WatchProgressRequest {})),
    ])
    .prop_map(|request_union| WatchRequest { request_union })
}

fn watch_response() -> impl Strategy<Value = WatchResponse> {
    let event = (
        enum_value(),
        proptest::option::of(key_value()),
        proptest::option::of(key_value()),
    )
        .prop_map(|(r#type, kv, prev_kv)| Event {
            r#type,
            kv,
            prev_kv,
        });
    (
        header(),
        (any::<i64>(), any::<bool>(), any::<bool>(), any::<i64>()),
        (
            "[a-z :]{0,20}",
            any::<bool>(),
            proptest::collection::vec(event, 0..4),
        ),
    )
        .prop_map(
            |(
                header,
                (watch_id, created, canceled, compact_revision),
                (reason, fragment, events),
            )| {
                WatchResponse {
                    header,
                    watch_id,
                    created,
                    canceled,
                    compact_revision,
                    cancel_reason: reason,
                    fragment,
                    events,
                }
            },
        )
}

fn member() -> impl Strategy<Value = Member> {
    let urls = proptest::collection::vec("http://[a-z0-9.]{1,12}:[0-9]{2,5}", 0..3);
    (
        any::<u64>(),
        "[a-z0-9-]{0,10}",
        urls.clone(),
        urls,
        any::<bool>(),
    )
        .prop_map(|(id, name, peer_urls, client_urls, is_learner)| Member {
            id,
            name,
            peer_urls,
            client_urls,
            is_learner,
        })
}

fn round_trips<M: Message + Default + PartialEq + std::fmt::Debug>(
    msg: &M,
) -> Result<(), TestCaseError> {
    let bytes = msg.encode_to_vec();
    prop_assert_eq!(bytes.len(), msg.encoded_len());
    let back = M::decode(bytes.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, msg);
    Ok(())
}

/// Decoding arbitrary bytes must not panic; if it succeeds, re-encoding must be decodable to
/// the same value.
fn soup<M: Message + Default + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    if let Ok(msg) = M::decode(bytes) {
        let again = M::decode(msg.encode_to_vec().as_slice())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, msg);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn key_value_round_trips(m in key_value()) { round_trips(&m)?; }

    #[test]
    fn range_request_round_trips(m in range_request()) { round_trips(&m)?; }

    #[test]
    fn range_response_round_trips(
        header in header(), kvs in proptest::collection::vec(key_value(), 0..4),
        more in any::<bool>(), count in any::<i64>(),
    ) {
        round_trips(&RangeResponse { header, kvs, more, count })?;
    }

    #[test]
    fn put_request_round_trips(m in put_request()) { round_trips(&m)?; }

    #[test]
    fn txn_request_round_trips(m in txn_request()) { round_trips(&m)?; }

    #[test]
    fn watch_request_round_trips(m in watch_request()) { round_trips(&m)?; }

    #[test]
    fn watch_response_round_trips(m in watch_response()) { round_trips(&m)?; }

    #[test]
    fn member_list_round_trips(header in header(), members in proptest::collection::vec(member(), 0..4)) {
        round_trips(&MemberListResponse { header, members })?;
    }

    #[test]
    fn lease_and_election_round_trip(
        ttl in any::<i64>(), id in any::<i64>(), name in bytes(), key in bytes(), rev in any::<i64>(),
    ) {
        round_trips(&LeaseGrantRequest { ttl, id })?;
        round_trips(&LeaseTimeToLiveResponse { header: None, id, ttl, granted_ttl: rev, keys: vec![name.clone(), key.clone()] })?;
        round_trips(&CampaignResponse { header: None, leader: Some(LeaderKey { name: name.clone(), key, rev, lease: id }) })?;
        round_trips(&LockRequest { name, lease: id })?;
    }

    #[test]
    fn byte_soups_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        soup::<RangeRequest>(&bytes)?;
        soup::<RangeResponse>(&bytes)?;
        soup::<PutRequest>(&bytes)?;
        soup::<DeleteRangeRequest>(&bytes)?;
        soup::<TxnRequest>(&bytes)?;
        soup::<TxnResponse>(&bytes)?;
        soup::<Compare>(&bytes)?;
        soup::<WatchRequest>(&bytes)?;
        soup::<WatchResponse>(&bytes)?;
        soup::<LeaseGrantRequest>(&bytes)?;
        soup::<LeaseKeepAliveRequest>(&bytes)?;
        soup::<MemberAddRequest>(&bytes)?;
        soup::<StatusResponse>(&bytes)?;
        soup::<AlarmRequest>(&bytes)?;
        soup::<AuthUserAddRequest>(&bytes)?;
        soup::<AuthRoleGrantPermissionRequest>(&bytes)?;
        soup::<User>(&bytes)?;
        soup::<Role>(&bytes)?;
        soup::<Permission>(&bytes)?;
        soup::<LockRequest>(&bytes)?;
        soup::<CampaignRequest>(&bytes)?;
        soup::<ProclaimRequest>(&bytes)?;
        soup::<KeyValue>(&bytes)?;
        soup::<Event>(&bytes)?;
    }

    /// Soups biased towards valid structure: a valid TxnRequest with a few bytes flipped,
    /// truncated or spliced.
    #[test]
    fn mutated_txn_never_panics(
        m in txn_request(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = m.encode_to_vec();
        if !bytes.is_empty() {
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let len = cut.index(bytes.len() + 1);
            bytes.truncate(len);
        }
        soup::<TxnRequest>(&bytes)?;
        soup::<WatchRequest>(&bytes)?;
    }
}
