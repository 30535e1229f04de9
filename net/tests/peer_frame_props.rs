//! Property tests of the peer wire format: frames and handshake decode byte soups without
//! panicking, round-trip, and detect corruption.

use keel_net::peer::frame::{
    encode_frame_into, read_frame, Frame, FrameError, FrameKind, SnapshotAck, SnapshotBegin,
};
use keel_net::peer::handshake::{Hello, Lane, Reply, HELLO_LEN, REPLY_LEN};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        Just(FrameKind::Message),
        Just(FrameKind::SnapshotBegin),
        Just(FrameKind::SnapshotChunk),
        Just(FrameKind::SnapshotEnd),
        Just(FrameKind::SnapshotAck),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Reading frames from random bytes ends in an error (or clean close) without panicking,
    /// and never allocates beyond the cap.
    #[test]
    fn frame_byte_soups_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), cap in 0u32..128) {
        let mut r = bytes.as_slice();
        let mut frames = 0;
        loop {
            match read_frame(&mut r, cap) {
                Ok(frame) => {
                    prop_assert!(frame.payload.len() <= cap as usize);
                    frames += 1;
                    prop_assert!(frames <= bytes.len() / 9);
                }
                Err(FrameError::Closed) => {
                    prop_assert!(r.is_empty());
                    break;
                }
                Err(_) => break,
            }
        }
    }

    /// Soups that start like a frame (valid header, arbitrary tail) also never panic.
    #[test]
    fn frame_soups_with_valid_prefix(
        kind in kind(), payload in proptest::collection::vec(any::<u8>(), 0..64),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut wire = Vec::new();
        encode_frame_into(&mut wire, kind, &payload);
        wire.extend_from_slice(&tail);
        let mut r = wire.as_slice();
        let first = read_frame(&mut r, 1024).unwrap();
        prop_assert_eq!(first, Frame { kind, payload });
        while read_frame(&mut r, 1024).is_ok() {}
    }

    #[test]
    fn frames_round_trip(frames in proptest::collection::vec((kind(), proptest::collection::vec(any::<u8>(), 0..300)), 0..8)) {
        let mut wire = Vec::new();
        for (kind, payload) in &frames {
            encode_frame_into(&mut wire, *kind, payload);
        }
        let mut r = wire.as_slice();
        for (kind, payload) in frames {
            prop_assert_eq!(read_frame(&mut r, 300).unwrap(), Frame { kind, payload });
        }
        prop_assert!(matches!(read_frame(&mut r, 300), Err(FrameError::Closed)));
    }

    /// Any single corrupted byte makes the frame unreadable (never a wrong frame).
    #[test]
    fn single_byte_corruption_is_detected(
        kind in kind(), payload in proptest::collection::vec(any::<u8>(), 1..200),
        at in any::<prop::sample::Index>(), xor in 1u8..=255,
    ) {
        let mut wire = Vec::new();
        encode_frame_into(&mut wire, kind, &payload);
        let i = at.index(wire.len());
        wire[i] ^= xor;
        prop_assert!(read_frame(&mut wire.as_slice(), 1 << 20).is_err());
    }

    #[test]
    fn handshake_soups_never_panic(bytes in proptest::array::uniform32(any::<u8>()), more in proptest::array::uniform7(any::<u8>())) {
        let mut hello = [0u8; HELLO_LEN];
        hello[..32].copy_from_slice(&bytes);
        hello[32..].copy_from_slice(&more);
        let _ = Hello::decode(&hello);
        // And with the right magic, so the checks behind it run too.
        hello[..8].copy_from_slice(b"KEELPEER");
        let _ = Hello::decode(&hello);
        let mut reply = [0u8; REPLY_LEN];
        reply.copy_from_slice(&hello[..REPLY_LEN]);
        let _ = Reply::decode(&reply);
        let _ = SnapshotBegin::decode(&hello[..20]);
        let _ = SnapshotAck::decode(&hello[..(bytes[0] as usize % HELLO_LEN)]);
    }

    #[test]
    fn hello_round_trips(version in any::<u16>(), snap in any::<bool>(), cluster_id in any::<u64>(), from in any::<u64>(), to in any::<u64>()) {
        let lane = if snap { Lane::Snapshots } else { Lane::Messages };
        let hello = Hello { version, lane, cluster_id, from, to };
        prop_assert_eq!(Hello::decode(&hello.encode()).unwrap(), hello);
    }
}
