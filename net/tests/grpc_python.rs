//! Interop with two more independent HTTP/2 stacks: Python grpcio (gRPC C-core) and curl
//! (nghttp2). grpcio is installed with pip when missing; if that is impossible the test says so
//! loudly and skips (etcdctl in grpc_etcdctl.rs is the mandatory interop test).

mod grpc_support;

use std::process::Command;

const SCRIPT: &str = r#"
import sys, grpc
addr = sys.argv[1]
ident = lambda b: b
ch = grpc.insecure_channel(addr)
unary = ch.unary_unary('/test.Echo/Unary', request_serializer=ident, response_deserializer=ident)
out = []
for i in range(50):
    msg = bytes([i]) * (i * 1000)
    r = unary(msg, timeout=5, metadata=(('token', 'py-token'), ('trace-bin', bytes([0, 1, 255]))))
    assert r == msg, (i, len(r))
out.append('unary-ok')
stream = ch.unary_stream('/test.Echo/ServerStream', request_serializer=ident, response_deserializer=ident)
got = [m for m in stream(bytes([4]), timeout=5)]
assert got == [b'\x00', b'\x01', b'\x02', b'\x03'], got
out.append('stream-ok')
bidi = ch.stream_stream('/test.Echo/Bidi', request_serializer=ident, response_deserializer=ident)
got = [m for m in bidi(iter([b'a', b'bb', b'ccc']), timeout=5)]
assert got == [b'a', b'bb', b'ccc'], got
out.append('bidi-ok')
bad = ch.unary_unary('/no.Such/Method', request_serializer=ident, response_deserializer=ident)
try:
    bad(b'', timeout=5)
    out.append('no-error')
except grpc.RpcError as e:
    out.append('%s|%s' % (e.code().name, e.details()))
big = ch.unary_unary('/test.Echo/Big', request_serializer=ident, response_deserializer=ident)
r = big((3 << 20).to_bytes(4, 'big'), timeout=10)
assert len(r) == 3 << 20
out.append('big-ok')
print(';'.join(out))
"#;

fn have_grpcio() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn python_grpcio_client() {
    if !have_grpcio() {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "grpcio"])
            .status();
    }
    if !have_grpcio() {
        grpc_support::missing_tool("python_grpcio_client: python3 with grpcio is not available and `pip install grpcio` failed");
        return;
    }
    let srv = grpc_support::start();
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &srv.addr.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "unary-ok;stream-ok;bidi-ok;UNIMPLEMENTED|unknown service no.Such;big-ok"
    );
    let obs = srv.observed.lock();
    assert!(obs
        .metadata
        .iter()
        .any(|(p, m)| p == "/test.Echo/Unary" && m.get_str("token") == Some("py-token")));
    // `-bin` metadata arrives base64-decoded.
    assert!(obs
        .metadata
        .iter()
        .any(|(_, m)| m.get("trace-bin") == Some(&[0u8, 1, 255][..])));
}

#[test]
fn curl_http2_prior_knowledge() {
    let Ok(v) = Command::new("curl").arg("--version").output() else {
        grpc_support::missing_tool("curl_http2_prior_knowledge: curl is not installed");
        return;
    };
    if !String::from_utf8_lossy(&v.stdout).contains("HTTP2") {
        grpc_support::missing_tool("curl_http2_prior_knowledge: this curl lacks HTTP/2");
        return;
    }
    let srv = grpc_support::start();
    let dir = std::env::temp_dir().join(format!("keel-net-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("req.bin");
    std::fs::write(&body, keel_net::grpc::encode_message(b"hello over nghttp2")).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("http://{}/test.Echo/Unary", srv.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        keel_net::grpc::encode_message(b"hello over nghttp2")
    );
    // HTTP/1.1 on the same port.
    let out = Command::new("curl")
        .args(["-sS", "-i"])
        .arg(format!("http://{}/health", srv.addr))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.ends_with(r#"{"health":"true"}"#), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
