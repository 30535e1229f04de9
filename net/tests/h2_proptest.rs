//! HTTP/2 frame decoding and the connection state machine never panic on random input.

use keel_net::http2::frame::{self, FrameHeader, PREFACE};
use keel_net::http2::{Connection, H2Config, Role};
use proptest::prelude::*;

fn drain(c: &mut Connection) {
    while c.poll_event().is_some() {}
    let n = c.output().len();
    c.consume_output(n);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn frame_decoder_byte_soup(bytes in proptest::collection::vec(any::<u8>(), 9..200)) {
        let h = FrameHeader::parse(&bytes);
        let payload = &bytes[9..];
        let fake = FrameHeader { len: payload.len() as u32, ..h };
        let _ = frame::decode_frame(fake, payload);
    }

    /// Raw soup after a valid preface + SETTINGS, for both roles.
    #[test]
    fn connection_byte_soup(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..6)) {
        for role in [Role::Server, Role::Client] {
            let mut c = Connection::new(role, H2Config::default());
            let mut start = if role == Role::Server { PREFACE.to_vec() } else { Vec::new() };
            frame::write_settings(&mut start, &[]);
            c.recv(&start).unwrap();
            for ch in &chunks {
                let _ = c.recv(ch);
                drain(&mut c);
            }
        }
    }

    /// Structurally valid frame headers with random types, flags, streams and payloads: reaches
    /// deeper into the state machine than pure soup.
    #[test]
    fn connection_random_frames(frames in proptest::collection::vec((0u8..12, any::<u8>(), 0u32..8, proptest::collection::vec(any::<u8>(), 0..40)), 1..20)) {
        let mut c = Connection::new(Role::Server, H2Config::default());
        let mut raw = PREFACE.to_vec();
        frame::write_settings(&mut raw, &[]);
        for (kind, flags, stream, payload) in &frames {
            frame::write_header(&mut raw, payload.len(), *kind, *flags, *stream);
            raw.extend_from_slice(payload);
        }
        let _ = c.recv(&raw);
        drain(&mut c);
        // Byte-at-a-time delivery must behave identically to one chunk (never panic either).
        let mut c2 = Connection::new(Role::Server, H2Config::default());
        for b in &raw {
            let _ = c2.recv(std::slice::from_ref(b));
        }
        drain(&mut c2);
    }
}
