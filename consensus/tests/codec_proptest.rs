//! Round trips and byte soups for the codec: decoding never panics, never allocates beyond
//! what the input describes, and inverts encoding.

use keel_consensus::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryKind, HardState, Message, MessageType,
    Snapshot, SnapshotMeta,
};
use proptest::prelude::*;

fn entry() -> impl Strategy<Value = Entry> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(term, index, cc, data)| Entry {
            term,
            index,
            kind: if cc {
                EntryKind::ConfChange
            } else {
                EntryKind::Normal
            },
            data,
        })
}

fn conf_state() -> impl Strategy<Value = ConfState> {
    (
        proptest::collection::vec(any::<u64>(), 0..6),
        proptest::collection::vec(any::<u64>(), 0..4),
    )
        .prop_map(|(voters, learners)| ConfState { voters, learners })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        any::<u64>(),
        any::<u64>(),
        conf_state(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(index, term, conf_state, data)| Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                conf_state,
            },
            data,
        })
}

const TYPES: [MessageType; 13] = [
    MessageType::Propose,
    MessageType::Append,
    MessageType::AppendResponse,
    MessageType::RequestVote,
    MessageType::RequestVoteResponse,
    MessageType::RequestPreVote,
    MessageType::RequestPreVoteResponse,
    MessageType::Heartbeat,
    MessageType::HeartbeatResponse,
    MessageType::Snapshot,
    MessageType::ReadIndex,
    MessageType::ReadIndexResponse,
    MessageType::TimeoutNow,
];

fn message() -> impl Strategy<Value = Message> {
    (
        0..TYPES.len(),
        proptest::array::uniform6(any::<u64>()),
        any::<bool>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..32),
        proptest::collection::vec(entry(), 0..4),
        proptest::option::of(snapshot()),
    )
        .prop_map(|(t, v, reject, hint, context, entries, snapshot)| Message {
            msg_type: TYPES[t],
            from: v[0],
            to: v[1],
            term: v[2],
            log_term: v[3],
            index: v[4],
            commit: v[5],
            reject,
            reject_hint: hint,
            context,
            entries,
            snapshot,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_round_trips(m in message()) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        prop_assert_eq!(Message::decode(&buf).unwrap(), m);
        // Every strict prefix is an error, never a panic or a wrong value.
        for cut in [0, buf.len() / 2, buf.len() - 1] {
            prop_assert!(Message::decode(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn other_types_round_trip(e in entry(), s in snapshot(), t in any::<u64>(), v in any::<u64>(), c in any::<u64>(), id in any::<u64>(), k in 0u8..3, ctx in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut b = Vec::new();
        e.encode(&mut b);
        prop_assert_eq!(Entry::decode(&b).unwrap(), e);
        let hs = HardState { term: t, vote: v, commit: c };
        let mut b = Vec::new();
        hs.encode(&mut b);
        prop_assert_eq!(HardState::decode(&b).unwrap(), hs);
        let mut b = Vec::new();
        s.meta.encode(&mut b);
        prop_assert_eq!(SnapshotMeta::decode(&b).unwrap(), s.meta.clone());
        let mut b = Vec::new();
        s.encode(&mut b);
        prop_assert_eq!(Snapshot::decode(&b).unwrap(), s);
        let cc = ConfChange {
            change_type: [ConfChangeType::AddNode, ConfChangeType::AddLearner, ConfChangeType::RemoveNode][k as usize],
            node_id: id,
            context: ctx,
        };
        prop_assert_eq!(ConfChange::decode(&cc.to_bytes()).unwrap(), cc);
    }

    #[test]
    fn byte_soup_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::decode(&bytes);
        let _ = Entry::decode(&bytes);
        let _ = HardState::decode(&bytes);
        let _ = ConfChange::decode(&bytes);
        let _ = SnapshotMeta::decode(&bytes);
        let _ = Snapshot::decode(&bytes);
        let _ = ConfState::decode(&bytes);
    }

    #[test]
    fn corrupted_messages_never_panic(m in message(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let p = pos % buf.len();
        buf[p] = byte;
        if let Ok(d) = Message::decode(&buf) {
            // Whatever decodes is a well-formed message: it survives a round trip.
            let mut again = Vec::new();
            d.encode(&mut again);
            prop_assert_eq!(Message::decode(&again).unwrap(), d);
        }
    }
}

/// A message claiming 2^60 entries in a tiny buffer is rejected without allocating.
#[test]
fn hostile_entry_count_is_rejected() {
    let mut buf = Vec::new();
    Message::new(MessageType::Append, 1, 2).encode(&mut buf);
    // Layout: tag, 6 varints, reject, hint, context len, entry count, has-snapshot.
    let count_pos = buf.len() - 2;
    buf.truncate(count_pos);
    buf.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
    buf.push(0);
    let err = Message::decode(&buf).unwrap_err();
    assert!(
        matches!(err, keel_consensus::DecodeError::LengthTooLarge { .. }),
        "{err}"
    );
}
