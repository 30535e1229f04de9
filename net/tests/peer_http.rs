//! Plain HTTP `GET` on the peer port (how a joining member asks an existing one for the member
//! list) and the `http_get` client: handler replies, 404 without a handler, replacing the
//! handler while running, malformed / oversized / slow request heads, a panicking handler,
//! Raft traffic unaffected, and `http_get` against servers that misbehave.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keel_net::peer::http::{HttpHandler, MAX_REQUEST_HEAD_BYTES, MAX_RESPONSE_BODY_BYTES};
use keel_net::peer::{http_get, HttpReply, Inbox, PeerEvent, PeerTransport, PeerTransportConfig};

const CLUSTER: u64 = 0x6b65_656c;
const PATIENCE: Duration = Duration::from_secs(20);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn config(id: u64) -> PeerTransportConfig {
    let mut cfg = PeerTransportConfig::new(CLUSTER, id, loopback());
    cfg.log = Arc::new(|_: &str| {});
    cfg.backoff_initial = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(200);
    cfg.handshake_timeout = Duration::from_millis(500);
    cfg
}

fn start(cfg: PeerTransportConfig) -> (PeerTransport, Inbox) {
    PeerTransport::start(cfg, || {}).unwrap()
}

fn members_handler(body: Arc<Mutex<String>>) -> HttpHandler {
    Arc::new(move |path: &str| match path {
        "/members" => Some(HttpReply::json(body.lock().unwrap().clone().into_bytes())),
        _ => None,
    })
}

/// Sends raw bytes and reads everything the server answers until it closes.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    // The server may answer and close before all of an oversized request is written.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("reading the response: {e} (got so far {out:?})"),
        }
    }
}

fn status_line(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    text.lines().next().unwrap_or("").to_string()
}

/// Checks that two transports still exchange a Raft message both ways.
fn raft_still_works(a: &PeerTransport, a_inbox: &Inbox, b: &PeerTransport, b_inbox: &Inbox) {
    a.send(b.local_id(), b"MsgApp".to_vec()).unwrap();
    assert_eq!(
        b_inbox.recv_timeout(PATIENCE),
        Some(PeerEvent::Message {
            from: a.local_id(),
            payload: b"MsgApp".to_vec()
        })
    );
    b.send(a.local_id(), b"MsgAppResp".to_vec()).unwrap();
    assert_eq!(
        a_inbox.recv_timeout(PATIENCE),
        Some(PeerEvent::Message {
            from: b.local_id(),
            payload: b"MsgAppResp".to_vec()
        })
    );
}

#[test]
fn get_returns_the_handlers_status_and_body() {
    let body = Arc::new(Mutex::new(r#"{"members":[{"id":1}]}"#.to_string()));
    let mut cfg = config(1);
    cfg.http = Some(members_handler(body.clone()));
    let (t, _inbox) = start(cfg);
    let addr = t.local_addr();

    let (status, got) = http_get(addr, "/members", PATIENCE).unwrap();
    assert_eq!(status, 200);
    assert_eq!(got, br#"{"members":[{"id":1}]}"#);

    // The handler sees the path without the query, and live state.
    *body.lock().unwrap() = r#"{"members":[{"id":1},{"id":2}]}"#.to_string();
    let (status, got) = http_get(addr, "/members?linearizable=true", PATIENCE).unwrap();
    assert_eq!(status, 200);
    assert_eq!(got, br#"{"members":[{"id":1},{"id":2}]}"#);

    // Unknown paths: the handler returns None → 404.
    let (status, got) = http_get(addr, "/version", PATIENCE).unwrap();
    assert_eq!(status, 404);
    assert_eq!(got, b"Not Found\n");

    // Any status and content type the handler picks go out as given, with a Content-Length.
    t.set_http_handler(Arc::new(|path: &str| {
        Some(HttpReply::new(503, "text/plain", format!("busy: {path}")))
    }));
    let response = raw_exchange(addr, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        String::from_utf8(response).unwrap(),
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\
         Connection: close\r\n\r\nbusy: /x"
    );
    assert_eq!(t.stats().http_requests, 4);
    assert_eq!(
        t.stats().inbound_accepted,
        0,
        "HTTP is not a peer handshake"
    );
}

#[test]
fn without_a_handler_get_is_404_and_the_handler_can_be_installed_and_removed_later() {
    let (t, _inbox) = start(config(1));
    let addr = t.local_addr();
    let (status, body) = http_get(addr, "/members", PATIENCE).unwrap();
    assert_eq!((status, body.as_slice()), (404, &b"Not Found\n"[..]));

    let members = Arc::new(Mutex::new("[1]".to_string()));
    t.set_http_handler(members_handler(members.clone()));
    assert_eq!(
        http_get(addr, "/members", PATIENCE).unwrap(),
        (200, b"[1]".to_vec())
    );
    *members.lock().unwrap() = "[1,2]".to_string();
    assert_eq!(
        http_get(addr, "/members", PATIENCE).unwrap(),
        (200, b"[1,2]".to_vec())
    );

    t.clear_http_handler();
    assert_eq!(http_get(addr, "/members", PATIENCE).unwrap().0, 404);
}

#[test]
fn bad_request_heads_get_400_or_408_and_raft_keeps_flowing() {
    let mut cfg = config(1);
    cfg.http = Some(members_handler(Arc::new(Mutex::new("[]".to_string()))));
    let (a, a_inbox) = start(cfg);
    let (b, b_inbox) = start(config(2));
    a.add_peer(2, b.local_addr()).unwrap();
    b.add_peer(1, a.local_addr()).unwrap();
    raft_still_works(&a, &a_inbox, &b, &b_inbox);
    let addr = a.local_addr();

    let bad: [&[u8]; 6] = [
        b"GET \x00\x01\x02garbage\r\n\r\n",
        b"GET /members HTTP/2.0\r\n\r\n",
        b"GET members HTTP/1.1\r\n\r\n",
        b"GET /members HTTP/1.1 extra\r\n\r\n",
        b"GET /members HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /members HTTP/1.1\r\n folded: header\r\n\r\n",
    ];
    for request in bad {
        let response = raw_exchange(addr, request);
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 400 Bad Request",
            "request {:?}",
            String::from_utf8_lossy(request)
        );
    }

    // Oversized head: 9 KiB of headers without the blank line.
    let mut huge = b"GET /members HTTP/1.1\r\n".to_vec();
    while huge.len() <= MAX_REQUEST_HEAD_BYTES {
        huge.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(
        status_line(&raw_exchange(addr, &huge)),
        "HTTP/1.1 400 Bad Request"
    );

    // A head that never ends: 408 after the handshake timeout (500 ms), even when the client
    // keeps dribbling bytes.
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET /members HTTP/1.1\r\n").unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let _ = s.write_all(b"X");
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        assert!(started.elapsed() < PATIENCE, "slow head was never cut off");
    }
    assert_eq!(status_line(&response), "HTTP/1.1 408 Request Timeout");
    assert!(started.elapsed() >= Duration::from_millis(450));

    // Closing in the middle of the head: nothing to answer, nothing breaks.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /mem").unwrap();
    drop(s);

    assert!(a.stats().inbound_rejected >= 8, "{:?}", a.stats());
    // A valid GET and the Raft connection still work.
    assert_eq!(
        http_get(addr, "/members", PATIENCE).unwrap(),
        (200, b"[]".to_vec())
    );
    raft_still_works(&a, &a_inbox, &b, &b_inbox);
    assert_eq!(a.peer_stats(2).unwrap().connect_failures, 0);
}

#[test]
fn a_panicking_or_invalid_handler_answers_500_and_the_transport_survives() {
    let (t, _inbox) = start(config(1));
    let addr = t.local_addr();
    t.set_http_handler(Arc::new(|path: &str| {
        if path == "/boom" {
            panic!("handler bug");
        }
        Some(HttpReply::new(200, "text/plain\r\nX-Injected: yes", "x"))
    }));
    assert_eq!(http_get(addr, "/boom", PATIENCE).unwrap().0, 500);
    // A content type that would inject a header is refused.
    let response = raw_exchange(addr, b"GET /ok HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 500 Internal Server Error");
    assert!(!String::from_utf8_lossy(&response).contains("X-Injected"));
    // Out-of-range status.
    t.set_http_handler(Arc::new(|_: &str| {
        Some(HttpReply::new(42, "text/plain", "x"))
    }));
    assert_eq!(http_get(addr, "/", PATIENCE).unwrap().0, 500);
    // Still serving, and the connection slots were released.
    t.set_http_handler(Arc::new(|_: &str| Some(HttpReply::json("{}"))));
    for _ in 0..3 {
        assert_eq!(
            http_get(addr, "/", PATIENCE).unwrap(),
            (200, b"{}".to_vec())
        );
    }
}

/// A one-shot server: accepts one connection, reads the request head, then runs `respond`.
fn fake_server(respond: impl FnOnce(TcpStream) + Send + 'static) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("GET /members HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
        respond(s);
    });
    (addr, handle)
}

fn get_from(respond: impl FnOnce(TcpStream) + Send + 'static) -> std::io::Result<(u16, Vec<u8>)> {
    let (addr, server) = fake_server(respond);
    let result = http_get(addr, "/members", Duration::from_secs(2));
    server.join().unwrap();
    result
}

fn reply_bytes(bytes: &'static [u8]) -> impl FnOnce(TcpStream) + Send + 'static {
    move |mut s: TcpStream| {
        let _ = s.write_all(bytes);
    }
}

#[test]
fn http_get_reads_content_length_chunked_and_eof_framed_bodies() {
    let got = get_from(reply_bytes(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello-and-extra",
    ));
    assert_eq!(got.unwrap(), (200, b"hello".to_vec()));

    let got = get_from(reply_bytes(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n",
    ));
    assert_eq!(got.unwrap(), (200, b"hello, world".to_vec()));

    let got = get_from(reply_bytes(b"HTTP/1.0 201 Created\r\n\r\nuntil the end"));
    assert_eq!(got.unwrap(), (201, b"until the end".to_vec()));

    // Dribbled one byte at a time.
    let got = get_from(|mut s: TcpStream| {
        for b in b"HTTP/1.1 404 Not Found\nContent-Length: 3\n\nabc" {
            s.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    assert_eq!(got.unwrap(), (404, b"abc".to_vec()));
}

/// How a fake server answers.
type Responder = Box<dyn FnOnce(TcpStream) + Send>;

#[test]
fn http_get_returns_errors_for_garbage_early_close_oversize_and_silence() {
    let cases: Vec<(&str, Responder, ErrorKind)> = vec![
        (
            "closes at once",
            Box::new(|s: TcpStream| drop(s)),
            ErrorKind::UnexpectedEof,
        ),
        (
            "garbage",
            Box::new(reply_bytes(b"\x00\xffnot http at all\r\n\r\n")),
            ErrorKind::InvalidData,
        ),
        (
            "bad status",
            Box::new(reply_bytes(b"HTTP/1.1 2x0 OK\r\n\r\n")),
            ErrorKind::InvalidData,
        ),
        (
            "status out of range",
            Box::new(reply_bytes(b"HTTP/1.1 999 Odd\r\n\r\n")),
            ErrorKind::InvalidData,
        ),
        (
            "head cut off",
            Box::new(reply_bytes(b"HTTP/1.1 200 OK\r\nContent-Le")),
            ErrorKind::UnexpectedEof,
        ),
        (
            "body cut off",
            Box::new(reply_bytes(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
            )),
            ErrorKind::UnexpectedEof,
        ),
        (
            "bad length",
            Box::new(reply_bytes(
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            )),
            ErrorKind::InvalidData,
        ),
        (
            "conflicting lengths",
            Box::new(reply_bytes(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            )),
            ErrorKind::InvalidData,
        ),
        (
            "huge length",
            Box::new(reply_bytes(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            )),
            ErrorKind::InvalidData,
        ),
        (
            "bad chunk size",
            Box::new(reply_bytes(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            )),
            ErrorKind::InvalidData,
        ),
        (
            "chunked cut off",
            Box::new(reply_bytes(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhel",
            )),
            ErrorKind::UnexpectedEof,
        ),
        (
            "unknown encoding",
            Box::new(reply_bytes(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            )),
            ErrorKind::InvalidData,
        ),
        (
            "endless head",
            Box::new(|mut s: TcpStream| {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
                let line = [b'a'; 1024];
                for _ in 0..80 {
                    if s.write_all(b"X: ")
                        .and_then(|_| s.write_all(&line))
                        .and_then(|_| s.write_all(b"\r\n"))
                        .is_err()
                    {
                        break;
                    }
                }
            }),
            ErrorKind::InvalidData,
        ),
        (
            "silence",
            Box::new(|s: TcpStream| {
                std::thread::sleep(Duration::from_millis(2500));
                drop(s);
            }),
            ErrorKind::TimedOut,
        ),
    ];
    for (what, respond, kind) in cases {
        let started = Instant::now();
        let err = get_from(respond).expect_err(what);
        assert_eq!(err.kind(), kind, "{what}: {err}");
        assert!(err.to_string().contains("/members"), "{what}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
    }
}

#[test]
fn http_get_limits_bodies_read_to_eof_and_refuses_bad_paths() {
    let got = get_from(|mut s: TcpStream| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
        let block = vec![b'z'; 1 << 20];
        for _ in 0..=(MAX_RESPONSE_BODY_BYTES >> 20) + 1 {
            if s.write_all(&block).is_err() {
                break;
            }
        }
    });
    let err = got.expect_err("17 MiB body");
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("exceeds the limit"), "{err}");

    let addr = TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
    for path in ["members", "/a b", "/\r\nX: y", ""] {
        let err = http_get(addr, path, PATIENCE).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path:?}");
    }
    // Nobody listens there any more: a connection error, not a panic.
    assert!(http_get(addr, "/members", PATIENCE).is_err());
}
