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

/// What `read_frame` makes of `bytes`: the frames, then how it ended (None: clean end).
fn frames_by_reader(bytes: &[u8], cap: u32) -> (Vec<Frame>, Option<String>) {
    let mut r = bytes;
    let mut frames = Vec::new();
    loop {
        match read_frame(&mut r, cap) {
            Ok(f) => frames.push(f),
            Err(FrameError::Closed) => return (frames, None),
            Err(FrameError::Io(_)) => return (frames, Some("truncated".into())),
            Err(e) => return (frames, Some(e.to_string())),
        }
    }
}

/// What `parse_frame` makes of `bytes` when they arrive in pieces of `piece` bytes, as a
/// non-blocking reader sees them: the same frames, and the same verdict.
fn frames_by_parser(bytes: &[u8], cap: u32, piece: usize) -> (Vec<Frame>, Option<String>) {
    let mut buffered: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        buffered.extend_from_slice(chunk);
        loop {
            match keel_net::peer::frame::parse_frame(&buffered, cap) {
                Ok(Some(f)) => {
                    frames.push(Frame {
                        kind: f.kind,
                        payload: buffered[f.payload.clone()].to_vec(),
                    });
                    buffered.drain(..f.len);
                }
                Ok(None) => break,
                Err(e) => return (frames, Some(e.to_string())),
            }
        }
    }
    let end = (!buffered.is_empty()).then(|| "truncated".to_string());
    (frames, end)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The slice parser (used by the owner's event loop) and the stream reader (used by the
    /// reader threads) agree on every input: valid frame sequences, corrupted ones, soups.
    #[test]
    fn parse_frame_agrees_with_read_frame(
        frames in proptest::collection::vec((kind(), proptest::collection::vec(any::<u8>(), 0..80)), 0..6),
        flip in proptest::option::of((any::<prop::sample::Index>(), 1u8..=255)),
        tail in proptest::collection::vec(any::<u8>(), 0..12),
        cap in 40u32..100,
        piece in 1usize..40,
    ) {
        let mut wire = Vec::new();
        for (k, p) in &frames {
            encode_frame_into(&mut wire, *k, p);
        }
        wire.extend_from_slice(&tail);
        if let Some((at, x)) = flip {
            if !wire.is_empty() {
                let i = at.index(wire.len());
                wire[i] ^= x;
            }
        }
        prop_assert_eq!(frames_by_parser(&wire, cap, piece), frames_by_reader(&wire, cap));
    }
}
