//! The blocking client against the test service: unary and streaming calls, concurrency on one
//! connection, deadlines, cancellation, size limits, failover and flow control.

mod grpc_support;

use grpc_support::{start, start_with};
use keel_net::client::{Client, ClientConfig, ClientError};
use keel_net::grpc::{CancelReason, Code, GrpcConfig};
use keel_net::http2::H2Config;
use std::time::{Duration, Instant};

fn client(addr: std::net::SocketAddr) -> Client {
    Client::connect(&[addr.to_string()], ClientConfig::default()).expect("connect")
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn unary_calls_and_metadata() {
    let srv = start();
    let mut c = client(srv.addr);
    for i in 0..100u32 {
        let msg = i.to_be_bytes();
        assert_eq!(c.unary("/test.Echo/Unary", &msg).unwrap(), msg);
    }
    // Empty request message (5-byte DATA with length 0), as Maintenance/Status sends.
    assert_eq!(c.unary("/test.Echo/Unary", b"").unwrap(), b"");
    c.unary_with(
        "/test.Echo/Unary",
        b"x",
        &[("token", "abc.1"), ("hasleader", "true")],
        Duration::from_secs(5),
    )
    .unwrap();
    let obs = srv.observed.lock();
    let md = &obs.metadata.last().unwrap().1;
    assert_eq!(md.get_str("token"), Some("abc.1"));
    assert_eq!(md.get_str("hasleader"), Some("true"));
}

#[test]
fn answers_arriving_later_from_a_timer() {
    let srv = start();
    let mut c = client(srv.addr);
    let t = Instant::now();
    assert_eq!(c.unary("/test.Echo/Delayed", b"later").unwrap(), b"later");
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[test]
fn unknown_methods_get_grpc_go_messages() {
    let srv = start();
    let mut c = client(srv.addr);
    match c.unary("/test.Echo/Nope", b"") {
        Err(ClientError::Status(s)) => {
            assert_eq!(s.code, Code::Unimplemented);
            assert_eq!(s.message, "unknown method Nope for service test.Echo");
        }
        other => panic!("{other:?}"),
    }
    match c.unary("/etcdserverpb.Lease/LeaseGrant", b"") {
        Err(ClientError::Status(s)) => assert_eq!(s.message, "unknown service etcdserverpb.Lease"),
        other => panic!("{other:?}"),
    }
    // The connection is still fine afterwards.
    assert_eq!(c.unary("/test.Echo/Unary", b"ok").unwrap(), b"ok");
}

#[test]
fn streaming_calls_share_one_connection_with_unary_calls() {
    let srv = start();
    let mut c = client(srv.addr);
    let bidi = c.open_stream("/test.Echo/Bidi", &[], None).unwrap();
    let server_stream = c.open_stream("/test.Echo/ServerStream", &[], None).unwrap();
    c.send(server_stream, &[5]).unwrap();
    c.close_send(server_stream).unwrap();
    for i in 0..20u8 {
        c.send(bidi, &[i, i]).unwrap();
        // A unary call in between, on the same connection.
        assert_eq!(c.unary("/test.Echo/Unary", &[i]).unwrap(), [i]);
        assert_eq!(
            c.recv(bidi, Duration::from_secs(5)).unwrap(),
            Some(vec![i, i])
        );
    }
    let got: Vec<Vec<u8>> =
        std::iter::from_fn(|| c.recv(server_stream, Duration::from_secs(5)).unwrap()).collect();
    assert_eq!(got, (0..5u8).map(|i| vec![i]).collect::<Vec<_>>());
    c.close_send(bidi).unwrap();
    assert_eq!(c.recv(bidi, Duration::from_secs(5)).unwrap(), None);
}

#[test]
fn deadline_exceeded_and_cancel_reach_the_handler() {
    let srv = start();
    let mut c = client(srv.addr);
    let s = c
        .open_stream("/test.Echo/Never", &[], Some(Duration::from_millis(100)))
        .unwrap();
    c.send(s, b"x").unwrap();
    c.close_send(s).unwrap();
    match c.recv(s, Duration::from_secs(5)) {
        Err(ClientError::Status(st)) => assert_eq!(st.code, Code::DeadlineExceeded),
        other => panic!("{other:?}"),
    }
    wait_for("deadline cancellation", || {
        srv.observed
            .lock()
            .cancelled
            .iter()
            .any(|(p, r)| p == "/test.Echo/Never" && *r == CancelReason::DeadlineExceeded)
    });
    let b = c.open_stream("/test.Echo/Bidi", &[], None).unwrap();
    c.send(b, b"1").unwrap();
    assert_eq!(
        c.recv(b, Duration::from_secs(5)).unwrap(),
        Some(b"1".to_vec())
    );
    c.cancel(b).unwrap();
    wait_for("client cancel", || {
        srv.observed
            .lock()
            .cancelled
            .iter()
            .any(|(p, r)| p == "/test.Echo/Bidi" && *r == CancelReason::ClientReset)
    });
}

#[test]
fn oversized_request_is_resource_exhausted() {
    let srv = start_with(GrpcConfig {
        max_recv_message_size: 1000,
        ..GrpcConfig::default()
    });
    let mut c = client(srv.addr);
    match c.unary("/test.Echo/Unary", &[0; 2000]) {
        Err(ClientError::Status(s)) => {
            assert_eq!(s.code, Code::ResourceExhausted);
            assert_eq!(
                s.message,
                "grpc: received message larger than max (2000 vs. 1000)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.unary("/test.Echo/Unary", &[1; 1000]).unwrap(),
        vec![1; 1000]
    );
}

#[test]
fn etcd_default_limit_accepts_1_5_mib_requests() {
    let srv = start();
    let mut c = client(srv.addr);
    let big = vec![7u8; 3 << 19];
    assert_eq!(c.unary("/test.Echo/Unary", &big).unwrap().len(), big.len());
    match c.unary("/test.Echo/Unary", &vec![0; (2 << 20) + 1]) {
        Err(ClientError::Status(s)) => assert_eq!(s.code, Code::ResourceExhausted),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ten_mib_response_to_a_64k_window_client() {
    let srv = start();
    // Both windows 64 KiB, then only the stream window (so the stream limit is what binds).
    for conn_window in [65_535, 1 << 20] {
        let cfg = ClientConfig {
            h2: H2Config {
                initial_window_size: 65_535,
                connection_window_size: conn_window,
                ..H2Config::default()
            },
            ..ClientConfig::default()
        };
        let mut c = Client::connect(&[srv.addr.to_string()], cfg).unwrap();
        let n: u32 = 10 << 20;
        let resp = c.unary("/test.Echo/Big", &n.to_be_bytes()).unwrap();
        assert_eq!(resp.len(), n as usize);
        assert!(resp.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }
}

#[test]
fn a_thousand_concurrent_streams_on_one_connection() {
    let srv = start();
    let mut c = client(srv.addr);
    let streams: Vec<_> = (0..1000u32)
        .map(|_| c.open_stream("/test.Echo/Bidi", &[], None).unwrap())
        .collect();
    for (i, s) in streams.iter().enumerate() {
        c.send(*s, &(i as u32).to_be_bytes()).unwrap();
    }
    wait_for("1000 calls started", || srv.observed.lock().started >= 1000);
    for (i, s) in streams.iter().enumerate().rev() {
        assert_eq!(
            c.recv(*s, Duration::from_secs(10)).unwrap(),
            Some((i as u32).to_be_bytes().to_vec())
        );
    }
    for s in &streams {
        c.close_send(*s).unwrap();
        assert_eq!(c.recv(*s, Duration::from_secs(10)).unwrap(), None);
    }
}

#[test]
fn failover_to_the_next_endpoint() {
    // A port with nothing listening, then a live server.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let srv1 = start();
    let srv2 = start();
    let mut c = Client::connect(
        &[
            dead_addr.to_string(),
            srv1.addr.to_string(),
            srv2.addr.to_string(),
        ],
        ClientConfig::default(),
    )
    .unwrap();
    assert_eq!(c.current_endpoint(), Some(srv1.addr));
    assert_eq!(c.unary("/test.Echo/Unary", b"a").unwrap(), b"a");
    drop(srv1); // server 1 goes away
                // The call in flight when the connection breaks fails (it may have been applied) ...
    let first = c.unary("/test.Echo/Unary", b"b");
    let second = c.unary("/test.Echo/Unary", b"c");
    // ... and the client moves on to server 2.
    assert!(first.is_err() || first.as_deref().ok() == Some(&b"b"[..]));
    assert_eq!(second.unwrap(), b"c");
    assert_eq!(c.current_endpoint(), Some(srv2.addr));
}

#[test]
fn connect_fails_cleanly_when_nothing_listens() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    assert!(matches!(
        Client::connect(&[addr.to_string()], ClientConfig::default()),
        Err(ClientError::Connect(_))
    ));
}

#[test]
fn goaway_moves_the_client_to_a_new_connection() {
    let srv = start();
    let mut c = client(srv.addr);
    assert_eq!(c.unary("/test.Echo/Unary", b"1").unwrap(), b"1");
    srv.waker.wake(grpc_support::Wake::GoAway).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // The server sent GOAWAY and closed the idle connection; the next call must not be lost.
    for i in 0..5u8 {
        assert_eq!(c.unary("/test.Echo/Unary", &[i]).unwrap(), [i]);
    }
}

#[test]
fn huge_grpc_timeout_is_no_problem() {
    let srv = start();
    let mut c = client(srv.addr);
    // 99999999H (the largest legal value) must not overflow the server's deadline arithmetic.
    let s = c
        .open_stream(
            "/test.Echo/Bidi",
            &[],
            Some(Duration::from_secs(u64::MAX / 4)),
        )
        .unwrap();
    c.send(s, b"x").unwrap();
    assert_eq!(
        c.recv(s, Duration::from_secs(5)).unwrap(),
        Some(b"x".to_vec())
    );
}
