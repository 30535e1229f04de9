//! In-memory tests of the connection state machine: a client and a server wired together.

use super::*;
use crate::http2::frame::{self, kind};
use std::collections::HashMap;

pub(crate) fn pump(a: &mut Connection, b: &mut Connection) {
    for _ in 0..10_000 {
        let out_a = a.output().to_vec();
        a.consume_output(out_a.len());
        let out_b = b.output().to_vec();
        b.consume_output(out_b.len());
        if out_a.is_empty() && out_b.is_empty() {
            return;
        }
        let _ = b.recv(&out_a);
        let _ = a.recv(&out_b);
    }
    panic!("pump did not settle");
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn req(path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
        (b"content-type".to_vec(), b"application/grpc".to_vec()),
    ]
}

fn refs(v: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    v.iter()
        .map(|(a, b)| (a.as_slice(), b.as_slice()))
        .collect()
}

fn pair(server_cfg: H2Config, client_cfg: H2Config) -> (Connection, Connection) {
    let mut c = Connection::new(Role::Client, client_cfg);
    let mut s = Connection::new(Role::Server, server_cfg);
    pump(&mut c, &mut s);
    (c, s)
}

#[test]
fn request_response_round_trip() {
    let (mut c, mut s) = pair(H2Config::default(), H2Config::default());
    let r = req("/a.B/C");
    let id = c.open_stream(&refs(&r), false).unwrap();
    c.send_data(id, b"hello".to_vec(), true).unwrap();
    pump(&mut c, &mut s);
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], Event::Headers { stream: 1, end_stream: false, fields } if fields.len() == 4)
    );
    assert_eq!(
        ev[1],
        Event::Data {
            stream: 1,
            data: b"hello".to_vec(),
            end_stream: true
        }
    );
    s.send_headers(id, &[(b":status", b"200")], false).unwrap();
    s.send_data(id, b"world".to_vec(), false).unwrap();
    s.send_headers(id, &[(b"grpc-status", b"0")], true).unwrap();
    pump(&mut c, &mut s);
    let ev = events(&mut c);
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert_eq!(
        ev[1],
        Event::Data {
            stream: 1,
            data: b"world".to_vec(),
            end_stream: false
        }
    );
    assert!(matches!(
        &ev[2],
        Event::Headers {
            end_stream: true,
            ..
        }
    ));
    assert_eq!(s.open_streams(), 0);
    assert_eq!(c.open_streams(), 0);
}

#[test]
fn large_response_respects_small_client_window() {
    // 10 MiB to a client that advertises 64 KiB stream and connection windows: the server must
    // queue and resume on WINDOW_UPDATE, never exceeding the windows (the client would fail with
    // FLOW_CONTROL_ERROR otherwise). Then with a large connection window, so that the stream
    // window is the binding limit.
    for conn_window in [65_535, 1 << 20] {
        let client_cfg = H2Config {
            initial_window_size: 65_535,
            connection_window_size: conn_window,
            ..H2Config::default()
        };
        let (mut c, mut s) = pair(H2Config::default(), client_cfg);
        let id = c.open_stream(&refs(&req("/x.Y/Z")), true).unwrap();
        pump(&mut c, &mut s);
        events(&mut s);
        let body: Vec<u8> = (0..10 << 20).map(|i| (i % 251) as u8).collect();
        s.send_headers(id, &[(b":status", b"200")], false).unwrap();
        s.send_data(id, body.clone(), true).unwrap();
        pump(&mut c, &mut s);
        let mut got = Vec::new();
        let mut ended = false;
        for e in events(&mut c) {
            if let Event::Data {
                data, end_stream, ..
            } = e
            {
                got.extend_from_slice(&data);
                ended |= end_stream;
            }
        }
        assert!(ended);
        assert_eq!(got.len(), body.len());
        assert!(got == body);
    }
}

#[test]
fn a_thousand_concurrent_streams() {
    let (mut c, mut s) = pair(H2Config::default(), H2Config::default());
    let ids: Vec<u32> = (0..1000)
        .map(|_| c.open_stream(&refs(&req("/a.B/C")), false).unwrap())
        .collect();
    pump(&mut c, &mut s);
    let opened = events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, Event::Headers { .. }))
        .count();
    assert_eq!(opened, 1000);
    assert_eq!(s.open_streams(), 1000);
    for &id in ids.iter().rev() {
        s.send_headers(id, &[(b":status", b"200")], false).unwrap();
        s.send_data(id, id.to_be_bytes().to_vec(), false).unwrap();
    }
    pump(&mut c, &mut s);
    let datas: Vec<_> = events(&mut c)
        .into_iter()
        .filter(|e| matches!(e, Event::Data { .. }))
        .collect();
    assert_eq!(datas.len(), 1000);
    for e in datas {
        if let Event::Data { stream, data, .. } = e {
            assert_eq!(data, stream.to_be_bytes());
        }
    }
}

#[test]
fn blocked_stream_does_not_stall_others() {
    // Stream 1's window is exhausted (the client never consumes... we simulate with a tiny
    // initial window); stream 3 still gets its data.
    let client_cfg = H2Config {
        initial_window_size: 10,
        ..H2Config::default()
    };
    let (mut c, mut s) = pair(H2Config::default(), client_cfg);
    let a = c.open_stream(&refs(&req("/a.B/C")), true).unwrap();
    let b = c.open_stream(&refs(&req("/a.B/C")), true).unwrap();
    pump(&mut c, &mut s);
    events(&mut s);
    s.send_headers(a, &[(b":status", b"200")], false).unwrap();
    s.send_headers(b, &[(b":status", b"200")], false).unwrap();
    s.send_data(a, vec![1; 1000], false).unwrap();
    s.send_data(b, vec![2; 5], true).unwrap();
    // Deliver only the server's output (the client sends nothing back, so no window updates).
    let out = s.output().to_vec();
    s.consume_output(out.len());
    c.recv(&out).unwrap();
    let ev = events(&mut c);
    assert!(ev.contains(&Event::Data {
        stream: b,
        data: vec![2; 5],
        end_stream: true
    }));
    let a_bytes: usize = ev
        .iter()
        .map(|e| match e {
            Event::Data { stream, data, .. } if *stream == a => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(a_bytes, 10, "stream a limited to its window");
}

#[test]
fn frames_are_split_at_peer_max_frame_size() {
    let (mut c, mut s) = pair(H2Config::default(), H2Config::default());
    let id = c.open_stream(&refs(&req("/a.B/C")), true).unwrap();
    pump(&mut c, &mut s);
    events(&mut s);
    s.send_headers(id, &[(b":status", b"200")], false).unwrap();
    s.send_data(id, vec![7; 40_000], true).unwrap();
    let out = s.output().to_vec();
    let mut pos = 0;
    let mut sizes = Vec::new();
    while pos < out.len() {
        let h = frame::FrameHeader::parse(&out[pos..]);
        if h.kind == kind::DATA {
            sizes.push(h.len);
        }
        pos += 9 + h.len as usize;
    }
    assert_eq!(sizes, vec![16_384, 16_384, 7_232]);
}

#[test]
fn ping_is_acked_and_unknown_frames_ignored() {
    let (mut c, mut s) = pair(H2Config::default(), H2Config::default());
    let mut raw = Vec::new();
    frame::write_header(&mut raw, 3, 0xee, 0, 0);
    raw.extend_from_slice(b"abc");
    frame::write_header(&mut raw, 5, kind::PRIORITY, 0, 9);
    raw.extend_from_slice(&[0, 0, 0, 0, 1]);
    frame::write_ping(&mut raw, false, *b"12345678");
    s.recv(&raw).unwrap();
    let out = s.output().to_vec();
    s.consume_output(out.len());
    c.recv(&out).unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::PingAck {
            payload: *b"12345678"
        }]
    );
}

#[test]
fn unknown_settings_ignored_and_initial_window_applied() {
    let (_c, mut s) = pair(H2Config::default(), H2Config::default());
    let mut raw = Vec::new();
    frame::write_settings(
        &mut raw,
        &[(0xfe03, 1), (frame::setting::INITIAL_WINDOW_SIZE, 100)],
    );
    s.recv(&raw).unwrap();
    let out = s.output().to_vec();
    let h = frame::FrameHeader::parse(&out);
    assert_eq!((h.kind, h.flags), (kind::SETTINGS, frame::flag::ACK));
    assert_eq!(s.peer_initial_window, 100);
}

fn server_after_preface() -> Connection {
    let mut s = Connection::new(Role::Server, H2Config::default());
    let mut raw = PREFACE.to_vec();
    frame::write_settings(&mut raw, &[]);
    s.recv(&raw).unwrap();
    let n = s.output().len();
    s.consume_output(n);
    s
}

fn goaway_code(s: &mut Connection) -> Option<u32> {
    let out = s.output().to_vec();
    let mut pos = 0;
    while pos + 9 <= out.len() {
        let h = frame::FrameHeader::parse(&out[pos..]);
        if h.kind == kind::GOAWAY {
            return Some(u32::from_be_bytes(
                out[pos + 13..pos + 17].try_into().unwrap(),
            ));
        }
        pos += 9 + h.len as usize;
    }
    None
}

#[test]
fn bad_preface_is_an_error() {
    let mut s = Connection::new(Role::Server, H2Config::default());
    assert!(s.recv(b"GET / HTTP/1.1\r\n\r\n").is_err());
    assert!(s.is_finished());
}

#[test]
fn interleaved_frame_during_continuation_is_protocol_error() {
    let mut s = server_after_preface();
    let mut raw = Vec::new();
    frame::write_header(&mut raw, 1, kind::HEADERS, 0, 1);
    raw.push(0x83);
    frame::write_ping(&mut raw, false, [0; 8]);
    assert!(s.recv(&raw).is_err());
    assert_eq!(goaway_code(&mut s), Some(1));
}

#[test]
fn continuation_flood_is_cut_off() {
    let mut s = server_after_preface();
    let mut raw = Vec::new();
    frame::write_header(&mut raw, 1, kind::HEADERS, 0, 1);
    raw.push(0x83);
    s.recv(&raw).unwrap();
    let mut result = Ok(());
    for _ in 0..10_000 {
        raw.clear();
        frame::write_header(&mut raw, 16, kind::CONTINUATION, 0, 1);
        raw.extend_from_slice(&[0x40; 16]);
        result = s.recv(&raw);
        if result.is_err() {
            break;
        }
    }
    assert!(result.is_err(), "an unbounded header block must be refused");
    assert_eq!(
        goaway_code(&mut s),
        Some(ErrorCode::EnhanceYourCalm.to_u32())
    );
}

#[test]
fn rapid_reset_is_cut_off() {
    let cfg = H2Config {
        abuse_budget: 100,
        ..H2Config::default()
    };
    let (mut c, mut s) = pair(cfg, H2Config::default());
    let mut failed = false;
    for _ in 0..1000 {
        let id = c.open_stream(&refs(&req("/a.B/C")), false).unwrap();
        c.reset_stream(id, ErrorCode::Cancel);
        let out = c.output().to_vec();
        c.consume_output(out.len());
        if s.recv(&out).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
    assert_eq!(
        goaway_code(&mut s),
        Some(ErrorCode::EnhanceYourCalm.to_u32())
    );
}

#[test]
fn concurrency_limit_refuses_streams() {
    let cfg = H2Config {
        max_concurrent_streams: 2,
        ..H2Config::default()
    };
    let (mut c, mut s) = pair(cfg, H2Config::default());
    // The client respects the advertised limit...
    c.open_stream(&refs(&req("/a.B/C")), false).unwrap();
    c.open_stream(&refs(&req("/a.B/C")), false).unwrap();
    assert_eq!(
        c.open_stream(&refs(&req("/a.B/C")), false),
        Err(SendError::TooManyStreams)
    );
    // ... and a raw peer that does not is refused.
    let mut s2 = server_after_preface();
    s2.config.max_concurrent_streams = 1;
    let mut enc = crate::hpack::Encoder::new();
    let mut raw = Vec::new();
    for id in [1u32, 3] {
        let mut block = Vec::new();
        enc.encode(refs(&req("/a.B/C")), &mut block);
        frame::write_header_block(&mut raw, id, &block, false, 16384);
    }
    s2.recv(&raw).unwrap();
    let out = s2.output().to_vec();
    let h = frame::FrameHeader::parse(&out);
    assert_eq!((h.kind, h.stream), (kind::RST_STREAM, 3));
    assert_eq!(
        u32::from_be_bytes(out[9..13].try_into().unwrap()),
        ErrorCode::RefusedStream.to_u32()
    );
    let _ = &mut s;
}

#[test]
fn flow_control_violation_by_peer() {
    let cfg = H2Config {
        initial_window_size: 100,
        ..H2Config::default()
    };
    let (mut c, mut s) = pair(cfg, H2Config::default());
    let id = c.open_stream(&refs(&req("/a.B/C")), false).unwrap();
    pump(&mut c, &mut s);
    events(&mut s);
    let mut raw = Vec::new();
    frame::write_data(&mut raw, id, &[0; 200], false);
    s.recv(&raw).unwrap();
    let ev = events(&mut s);
    assert_eq!(
        ev,
        vec![Event::Reset {
            stream: id,
            code: ErrorCode::FlowControlError,
            remote: false
        }]
    );
}

#[test]
fn padded_data_and_headers() {
    let mut s = server_after_preface();
    let mut enc = crate::hpack::Encoder::new();
    let mut block = Vec::new();
    enc.encode(refs(&req("/a.B/C")), &mut block);
    let mut raw = Vec::new();
    frame::write_header(
        &mut raw,
        block.len() + 3,
        kind::HEADERS,
        flag::END_HEADERS | flag::PADDED,
        1,
    );
    raw.push(2);
    raw.extend_from_slice(&block);
    raw.extend_from_slice(&[0, 0]);
    frame::write_header(&mut raw, 9, kind::DATA, flag::PADDED | flag::END_STREAM, 1);
    raw.extend_from_slice(&[4, b'a', b'b', b'c', b'd', 0, 0, 0, 0]);
    s.recv(&raw).unwrap();
    let ev = events(&mut s);
    assert_eq!(
        ev[1],
        Event::Data {
            stream: 1,
            data: b"abcd".to_vec(),
            end_stream: true
        }
    );
    // Padding longer than the payload is a connection error.
    let mut raw = Vec::new();
    frame::write_header(&mut raw, 2, kind::DATA, flag::PADDED, 1);
    raw.extend_from_slice(&[5, 0]);
    assert!(s.recv(&raw).is_err());
}

#[test]
fn occasional_resets_are_forgiven_over_time() {
    // Budget 3, refilled at 200/s: one reset every 10 ms never exhausts it, a burst does.
    let cfg = H2Config {
        abuse_budget: 3,
        abuse_refill_per_sec: 200,
        ..H2Config::default()
    };
    let (mut c, mut s) = pair(cfg, H2Config::default());
    for _ in 0..20 {
        let id = c.open_stream(&refs(&req("/a.B/C")), false).unwrap();
        c.reset_stream(id, ErrorCode::Cancel);
        let out = c.output().to_vec();
        c.consume_output(out.len());
        s.recv(&out).expect("slow resets are fine");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut burst = Ok(());
    for _ in 0..20 {
        let id = c.open_stream(&refs(&req("/a.B/C")), false).unwrap();
        c.reset_stream(id, ErrorCode::Cancel);
        let out = c.output().to_vec();
        c.consume_output(out.len());
        burst = burst.and(s.recv(&out));
    }
    assert!(burst.is_err(), "a burst of resets is cut off");
}

/// Total DATA payload bytes per stream in raw output.
fn data_bytes(raw: &[u8]) -> HashMap<u32, usize> {
    let mut m = HashMap::new();
    let mut pos = 0;
    while pos + 9 <= raw.len() {
        let h = frame::FrameHeader::parse(&raw[pos..]);
        if h.kind == kind::DATA {
            *m.entry(h.stream).or_default() += h.len as usize;
        }
        pos += 9 + h.len as usize;
    }
    m
}

#[test]
fn sender_never_exceeds_stream_or_connection_window() {
    // Stream windows 64 KiB, connection window 100,000: with no WINDOW_UPDATE from the client,
    // the server may send exactly 65,535 on one stream and 100,000 in total.
    let client_cfg = H2Config {
        initial_window_size: 65_535,
        connection_window_size: 100_000,
        ..H2Config::default()
    };
    let (mut c, mut s) = pair(H2Config::default(), client_cfg);
    let a = c.open_stream(&refs(&req("/a.B/C")), true).unwrap();
    let b = c.open_stream(&refs(&req("/a.B/C")), true).unwrap();
    pump(&mut c, &mut s);
    events(&mut s);
    for id in [a, b] {
        s.send_headers(id, &[(b":status", b"200")], false).unwrap();
        s.send_data(id, vec![0; 1 << 20], true).unwrap();
    }
    let mut raw = Vec::new();
    loop {
        let out = s.output().to_vec();
        if out.is_empty() {
            break;
        }
        s.consume_output(out.len());
        raw.extend_from_slice(&out);
    }
    let sent = data_bytes(&raw);
    assert_eq!(sent.values().sum::<usize>(), 100_000, "{sent:?}");
    assert!(sent.values().all(|&v| v <= 65_535), "{sent:?}");
    for id in [a, b] {
        assert_eq!(
            s.queued_bytes(id),
            (1 << 20) - sent.get(&id).copied().unwrap_or(0)
        );
    }
    // The client's WINDOW_UPDATEs release the rest.
    c.recv(&raw).unwrap();
    pump(&mut c, &mut s);
    let total: usize = events(&mut c)
        .into_iter()
        .map(|e| {
            if let Event::Data { data, .. } = e {
                data.len()
            } else {
                0
            }
        })
        .sum();
    assert_eq!(total, 2 << 20);
}

#[test]
fn streams_are_served_round_robin() {
    let (mut c, mut s) = pair(H2Config::default(), H2Config::default());
    let ids: Vec<u32> = (0..3)
        .map(|_| c.open_stream(&refs(&req("/a.B/C")), true).unwrap())
        .collect();
    pump(&mut c, &mut s);
    events(&mut s);
    for &id in &ids {
        s.send_headers(id, &[(b":status", b"200")], false).unwrap();
        s.send_data(id, vec![0; 100_000], true).unwrap();
    }
    let mut raw = Vec::new();
    loop {
        let out = s.output().to_vec();
        if out.is_empty() {
            break;
        }
        s.consume_output(out.len());
        raw.extend_from_slice(&out);
    }
    let mut order = Vec::new();
    let mut pos = 0;
    while pos + 9 <= raw.len() {
        let h = frame::FrameHeader::parse(&raw[pos..]);
        if h.kind == kind::DATA {
            order.push(h.stream);
        }
        pos += 9 + h.len as usize;
    }
    // 100,000 bytes = 7 frames per stream, interleaved 1,3,5,1,3,5,...
    assert_eq!(order.len(), 21);
    for (i, s) in order.iter().enumerate() {
        assert_eq!(*s, ids[i % 3], "frame {i} out of turn: {order:?}");
    }
}

// ---- HPACK dynamic table in the connection ----

/// Header events of `c`, per stream, in order.
fn header_lists(c: &mut Connection) -> Vec<(u32, Vec<HeaderField>)> {
    events(c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Headers { stream, fields, .. } => Some((stream, fields)),
            _ => None,
        })
        .collect()
}

/// Answers `n` calls one after another; returns the decoded response header lists and the
/// bytes the server wrote per call.
fn sequential_calls(
    server_cfg: H2Config,
    client_cfg: H2Config,
    n: usize,
) -> (Vec<Vec<HeaderField>>, Vec<usize>) {
    let (mut c, mut s) = pair(server_cfg, client_cfg);
    let r = req("/a.B/C");
    let mut lists = Vec::new();
    let mut sizes = Vec::new();
    for i in 0..n {
        let id = c.open_stream(&refs(&r), false).unwrap();
        c.send_data(id, b"x".to_vec(), true).unwrap();
        pump(&mut c, &mut s);
        events(&mut s);
        s.send_headers(
            id,
            &[(b":status", b"200"), (b"content-type", b"application/grpc")],
            false,
        )
        .unwrap();
        s.send_data(id, b"answer".to_vec(), false).unwrap();
        let status = if i % 5 == 4 { &b"5"[..] } else { b"0" };
        s.send_headers(id, &[(b"grpc-status", status)], true)
            .unwrap();
        sizes.push(s.output().len());
        pump(&mut c, &mut s);
        lists.extend(header_lists(&mut c).into_iter().map(|(_, f)| f));
    }
    (lists, sizes)
}

#[test]
fn indexed_responses_decode_like_literal_ones_and_shrink() {
    let literal = H2Config {
        encoder_table_size: 0,
        ..H2Config::default()
    };
    let (plain, plain_sizes) = sequential_calls(literal, H2Config::default(), 40);
    let (indexed, sizes) = sequential_calls(H2Config::default(), H2Config::default(), 40);
    assert_eq!(plain.len(), 80);
    assert_eq!(indexed, plain, "identical decoded headers and trailers");
    // After the first calls: HEADERS (9 + 2) + DATA (9 + 6) + trailers (9 + 1) = 36 bytes.
    assert_eq!(sizes[10], 36, "{sizes:?}");
    assert!(sizes[10] < plain_sizes[10]);
}

#[test]
fn peer_table_size_zero_is_respected() {
    // A client that advertises a table of 0 bytes: its decoder rejects any insertion or a size
    // update above 0 (COMPRESSION_ERROR), so every call succeeding shows the server complied.
    let client = H2Config {
        header_table_size: 0,
        ..H2Config::default()
    };
    let (indexed, _) = sequential_calls(H2Config::default(), client.clone(), 10);
    let literal = H2Config {
        encoder_table_size: 0,
        ..H2Config::default()
    };
    let (plain, _) = sequential_calls(literal, client, 10);
    assert_eq!(indexed.len(), 20);
    assert_eq!(indexed, plain);
}

#[test]
fn trailers_queued_behind_data_are_encoded_when_written() {
    // Stream 1's response data is blocked by a tiny client window, so its trailers wait in the
    // queue while stream 3 is answered completely. Had stream 1's trailers been encoded when
    // queued, they would insert `grpc-status: 0` into the table *before* stream 3's trailers
    // refer to it, but reach the client *after* them: the client's decoder would fail.
    let client = H2Config {
        initial_window_size: 4,
        ..H2Config::default()
    };
    let (mut c, mut s) = pair(H2Config::default(), client);
    let r = req("/a.B/C");
    let a = c.open_stream(&refs(&r), false).unwrap();
    c.send_data(a, b"x".to_vec(), true).unwrap();
    let b = c.open_stream(&refs(&r), false).unwrap();
    c.send_data(b, b"y".to_vec(), true).unwrap();
    pump(&mut c, &mut s);
    events(&mut s);
    let ok: [(&[u8], &[u8]); 1] = [(b"grpc-status", b"0")];
    s.send_headers(a, &[(b":status", b"200")], false).unwrap();
    s.send_data(a, b"more than four bytes".to_vec(), false)
        .unwrap();
    s.send_headers(a, &ok, true).unwrap();
    s.send_headers(b, &[(b":status", b"200")], false).unwrap();
    s.send_data(b, b"abc".to_vec(), false).unwrap();
    s.send_headers(b, &ok, true).unwrap();
    // The client returns window as data arrives (half its 4-byte window at a time).
    pump(&mut c, &mut s);
    let lists = header_lists(&mut c);
    let trailers: Vec<u32> = lists
        .iter()
        .filter(|(_, f)| *f == [HeaderField::new("grpc-status", "0")])
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(
        trailers,
        [b, a],
        "stream 3 finished first; both trailers decoded"
    );
    assert_eq!(c.open_streams(), 0);
}

#[test]
fn events_survive_later_reads_until_taken() {
    // Header fields and data live in the connection's event arena: events not yet taken must
    // stay intact while more input arrives (the arena is reset only once all were taken).
    let (mut c, mut s) = pair(H2Config::default(), H2Config::default());
    let mut chunks = Vec::new();
    for (i, path) in ["/a.B/One", "/a.B/Two", "/a.B/Three"].iter().enumerate() {
        let id = c.open_stream(&refs(&req(path)), false).unwrap();
        c.send_data(id, vec![i as u8; 10 + i], true).unwrap();
        chunks.push(c.output().to_vec());
        let n = chunks.last().unwrap().len();
        c.consume_output(n);
    }
    // Feed byte by byte across chunk borders, taking nothing in between.
    for b in chunks.concat() {
        s.recv(&[b]).unwrap();
    }
    let ev = events(&mut s);
    assert_eq!(ev.len(), 6, "{ev:?}");
    for (i, path) in ["/a.B/One", "/a.B/Two", "/a.B/Three"].iter().enumerate() {
        let Event::Headers { fields, .. } = &ev[2 * i] else {
            panic!("{:?}", ev[2 * i]);
        };
        assert_eq!(fields[2], HeaderField::new(":path", *path));
        assert_eq!(
            ev[2 * i + 1],
            Event::Data {
                stream: 1 + 2 * i as u32,
                data: vec![i as u8; 10 + i],
                end_stream: true
            }
        );
    }
    // Taken: the next read reuses the arena; new events are still right.
    let id = c.open_stream(&refs(&req("/a.B/Four")), false).unwrap();
    c.send_data(id, b"four".to_vec(), true).unwrap();
    pump(&mut c, &mut s);
    let ev = events(&mut s);
    assert!(
        matches!(&ev[..], [Event::Headers { fields, .. }, Event::Data { data, .. }]
            if fields[2] == HeaderField::new(":path", "/a.B/Four") && data == b"four"),
        "{ev:?}"
    );
}
