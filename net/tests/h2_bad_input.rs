//! Bad input against a running server: garbage, malformed frames and HPACK, floods, and a peer
//! that never reads. Each affects only its own connection; a good client keeps working.

mod grpc_support;

use keel_net::client::{Client, ClientConfig};
use keel_net::hpack::Encoder;
use keel_net::http2::frame::{self, flag, kind, PREFACE};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends `bytes`, then reads whatever comes back until the server closes or 300 ms of quiet.
fn throw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(bytes);
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.len() > 1 << 20 {
            break;
        }
    }
    got
}

fn frames(raw: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut v = Vec::new();
    let mut pos = 0;
    while pos + 9 <= raw.len() {
        let h = frame::FrameHeader::parse(&raw[pos..]);
        let end = (pos + 9 + h.len as usize).min(raw.len());
        v.push((h.kind, h.flags, h.stream, raw[pos + 9..end].to_vec()));
        pos = end;
    }
    v
}

fn goaway_code(raw: &[u8]) -> Option<u32> {
    frames(raw)
        .into_iter()
        .find(|f| f.0 == kind::GOAWAY)
        .map(|f| u32::from_be_bytes(f.3[4..8].try_into().unwrap()))
}

fn preface_and_settings() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    frame::write_settings(&mut v, &[]);
    v
}

fn request_block(enc: &mut Encoder, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    enc.encode(
        [
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
            (b"content-type", b"application/grpc"),
        ],
        &mut b,
    );
    b
}

fn good_client_works(addr: SocketAddr) {
    let mut c = Client::connect(&[addr.to_string()], ClientConfig::default()).unwrap();
    for i in 0..10u8 {
        assert_eq!(c.unary("/test.Echo/Unary", &[i; 3]).unwrap(), vec![i; 3]);
    }
}

#[test]
fn specific_protocol_errors_get_the_right_answer() {
    let srv = grpc_support::start();
    let addr = srv.addr;

    // Frame larger than our SETTINGS_MAX_FRAME_SIZE → FRAME_SIZE_ERROR.
    let mut raw = preface_and_settings();
    frame::write_header(&mut raw, 1 << 20, kind::DATA, 0, 1);
    assert_eq!(goaway_code(&throw(addr, &raw)), Some(0x6));

    // HPACK garbage → COMPRESSION_ERROR.
    let mut raw = preface_and_settings();
    frame::write_header(&mut raw, 2, kind::HEADERS, flag::END_HEADERS, 1);
    raw.extend_from_slice(&[0xff, 0xff]);
    assert_eq!(goaway_code(&throw(addr, &raw)), Some(0x9));

    // First frame not SETTINGS → PROTOCOL_ERROR.
    let mut raw = PREFACE.to_vec();
    frame::write_ping(&mut raw, false, [0; 8]);
    assert_eq!(goaway_code(&throw(addr, &raw)), Some(0x1));

    // Even (server-side) stream id from a client → PROTOCOL_ERROR.
    let mut raw = preface_and_settings();
    let mut enc = Encoder::new();
    let block = request_block(&mut enc, "/test.Echo/Unary");
    frame::write_header_block(&mut raw, 2, &block, false, 16384);
    assert_eq!(goaway_code(&throw(addr, &raw)), Some(0x1));

    // Garbage gRPC length prefix (compressed flag 7) → an error status on that stream only.
    let mut raw = preface_and_settings();
    let mut enc = Encoder::new();
    frame::write_header_block(
        &mut raw,
        1,
        &request_block(&mut enc, "/test.Echo/Unary"),
        false,
        16384,
    );
    frame::write_data(&mut raw, 1, &[7, 0, 0, 0, 1, 0], true);
    frame::write_header_block(
        &mut raw,
        3,
        &request_block(&mut enc, "/test.Echo/Unary"),
        false,
        16384,
    );
    frame::write_data(&mut raw, 3, &keel_net::grpc::encode_message(b"fine"), true);
    let reply = frames(&throw(addr, &raw));
    let stream1_status = reply
        .iter()
        .any(|f| f.0 == kind::HEADERS && f.2 == 1 && f.1 & flag::END_STREAM != 0);
    let stream3_data = reply
        .iter()
        .any(|f| f.0 == kind::DATA && f.2 == 3 && f.3.ends_with(b"fine"));
    assert!(stream1_status && stream3_data, "{reply:?}");
    assert!(goaway_code(&frames_to_raw(&reply)).is_none());

    // Truncated protobuf-level garbage reaches the handler as bytes: the test service answers
    // INTERNAL for an undecodable PutRequest, and the connection stays up.
    let mut c = Client::connect(&[addr.to_string()], ClientConfig::default()).unwrap();
    match c.unary("/etcdserverpb.KV/Put", &[0x0a, 0xff]) {
        Err(keel_net::client::ClientError::Status(s)) => {
            assert_eq!(s.code, keel_net::grpc::Code::Internal)
        }
        other => panic!("{other:?}"),
    }
    good_client_works(addr);
}

fn frames_to_raw(f: &[(u8, u8, u32, Vec<u8>)]) -> Vec<u8> {
    let mut raw = Vec::new();
    for (k, fl, s, p) in f {
        frame::write_header(&mut raw, p.len(), *k, *fl, *s);
        raw.extend_from_slice(p);
    }
    raw
}

#[test]
fn garbage_then_a_good_client() {
    let srv = grpc_support::start();
    let addr = srv.addr;
    let mut runner = TestRunner::new(Config {
        cases: 60,
        ..Config::default()
    });
    // Pure soup, soup after a valid preface, and random frames after a valid preface.
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..300), |soup| {
            throw_quick(addr, &soup);
            let mut raw = preface_and_settings();
            raw.extend_from_slice(&soup);
            throw_quick(addr, &raw);
            Ok(())
        })
        .unwrap();
    runner
        .run(
            &proptest::collection::vec(
                (
                    0u8..11,
                    any::<u8>(),
                    0u32..6,
                    proptest::collection::vec(any::<u8>(), 0..30),
                ),
                1..12,
            ),
            |fs| {
                let mut raw = preface_and_settings();
                for (k, fl, s, p) in &fs {
                    frame::write_header(&mut raw, p.len(), *k, *fl, *s);
                    raw.extend_from_slice(p);
                }
                throw_quick(addr, &raw);
                Ok(())
            },
        )
        .unwrap();
    good_client_works(addr);
    // Nothing leaked: every garbage connection was closed or is idle-open; the loop is alive.
    assert!(srv.observed.lock().started < 10_000);
}

/// Like `throw`, but does not wait for the server to answer.
fn throw_quick(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(bytes);
}

#[test]
fn a_peer_that_never_reads_does_not_stall_others() {
    let srv = grpc_support::start();
    let addr = srv.addr;
    // Ask for 8 MiB (within flow-control windows we announce) and never read.
    let mut raw = PREFACE.to_vec();
    frame::write_settings(
        &mut raw,
        &[(frame::setting::INITIAL_WINDOW_SIZE, frame::MAX_WINDOW)],
    );
    frame::write_window_update(&mut raw, 0, frame::MAX_WINDOW - 65_535);
    let mut enc = Encoder::new();
    let mut stuck = Vec::new();
    for i in 0..4u32 {
        frame::write_header_block(
            &mut raw,
            1 + 2 * i,
            &request_block(&mut enc, "/test.Echo/Big"),
            false,
            16384,
        );
        frame::write_data(
            &mut raw,
            1 + 2 * i,
            &keel_net::grpc::encode_message(&(8u32 << 20).to_be_bytes()),
            true,
        );
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&raw).unwrap();
        stuck.push(s);
        raw = PREFACE.to_vec();
        frame::write_settings(
            &mut raw,
            &[(frame::setting::INITIAL_WINDOW_SIZE, frame::MAX_WINDOW)],
        );
        frame::write_window_update(&mut raw, 0, frame::MAX_WINDOW - 65_535);
        enc = Encoder::new();
    }
    std::thread::sleep(Duration::from_millis(200));
    let t = std::time::Instant::now();
    good_client_works(addr);
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(stuck);
}

#[test]
fn http1_garbage_and_requests() {
    let srv = grpc_support::start();
    let addr = srv.addr;
    let r = String::from_utf8(throw(
        addr,
        b"GET /version HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
    ))
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains(r#"{"etcdserver":"3.5.0","etcdcluster":"3.5.0"}"#),
        "{r}"
    );
    assert!(r.contains("HTTP/1.1 404 Not Found\r\n"), "{r}");
    let r = String::from_utf8(throw(addr, b"NONSENSE\r\n\r\n")).unwrap();
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = String::from_utf8(throw(addr, &[b'A'; 20_000])).unwrap();
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    // A truncated preface then EOF.
    assert!(throw(addr, &PREFACE[..10]).is_empty());
    good_client_works(addr);
}

#[test]
fn ping_flood_and_settings_are_answered() {
    let srv = grpc_support::start();
    let mut raw = preface_and_settings();
    for i in 0..100u8 {
        frame::write_ping(&mut raw, false, [i; 8]);
    }
    let reply = frames(&throw(srv.addr, &raw));
    let acks = reply
        .iter()
        .filter(|f| f.0 == kind::PING && f.1 & flag::ACK != 0)
        .count();
    assert_eq!(acks, 100);
    // The server's first frame is SETTINGS (grpc-go insists), followed by its ack of ours.
    assert_eq!(reply[0].0, kind::SETTINGS);
    assert!(reply
        .iter()
        .any(|f| f.0 == kind::SETTINGS && f.1 & flag::ACK != 0));
}

#[test]
fn silent_connections_are_closed_after_the_handshake_timeout() {
    let srv = grpc_support::start_loop(keel_net::event_loop::LoopConfig {
        handshake_timeout: Duration::from_millis(200),
        ..Default::default()
    });
    let mut silent = TcpStream::connect(srv.addr).unwrap();
    silent.write_all(b"PRI * HT").unwrap(); // a prefix that decides nothing
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "server closes the undecided connection");
    assert!(t.elapsed() >= Duration::from_millis(150) && t.elapsed() < Duration::from_secs(4));
    good_client_works(srv.addr);
}
