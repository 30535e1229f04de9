//! Requirement 5: oversized requests are refused with etcd's error, and garbage on the client
//! or peer port does not take a member down.

use crate::etcdctl::Etcdctl;
use crate::{grpc, Cluster};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `--max-request-bytes` given to the member in [`request_too_large`].
pub const MAX_REQUEST_BYTES: usize = 4096;

/// A put whose value exceeds `--max-request-bytes` fails with exactly
/// "etcdserver: request is too large" (as etcdctl prints it), a put just under it succeeds, and
/// the member keeps serving. `cluster` must run with `--max-request-bytes=`[`MAX_REQUEST_BYTES`].
pub fn request_too_large(cluster: &mut Cluster) {
    let ctl = Etcdctl::new(cluster.running_endpoints());
    let big = "x".repeat(MAX_REQUEST_BYTES + 100);
    let o = ctl.run(&["put", "big", &big]);
    assert!(!o.success, "oversized put succeeded: {o:?}");
    let errs: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| !l.starts_with("{\"level\""))
        .collect();
    assert_eq!(
        errs,
        ["Error: etcdserver: request is too large"],
        "stderr: {}",
        o.stderr
    );
    let small = "y".repeat(MAX_REQUEST_BYTES - 200);
    assert_eq!(ctl.ok(&["put", "small", &small]), "OK\n");
    assert_eq!(
        ctl.ok(&["get", "small", "--print-value-only"]),
        format!("{small}\n")
    );
    assert_eq!(
        ctl.ok(&["get", "big"]),
        "",
        "the oversized put must not be applied"
    );
}

/// Byte strings a broken or hostile client might send.
pub fn garbage_payloads() -> Vec<Vec<u8>> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let mut bad_frames = preface.clone();
    // A SETTINGS frame with a length that is not a multiple of 6, then a huge DATA frame header.
    bad_frames.extend_from_slice(&[0, 0, 5, 4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]);
    bad_frames.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]);
    let mut preface_random = preface.clone();
    preface_random.extend(random(4096));
    vec![
        random(64 * 1024),
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello start
        bad_frames,
        preface_random,
        b"POST /raft HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzzzz\r\n".to_vec(),
        Vec::new(), // connect and close at once
    ]
}

/// Sends every garbage payload on its own connection to `port`, reading whatever comes back for
/// a moment (the member may answer with an error or close).
pub fn send_garbage(port: u16) {
    for payload in garbage_payloads() {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            panic!("port {port} refused a connection");
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
        let _ = s.write_all(&payload);
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
    }
    // Also leave one half-open connection with a partial preface lying around.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = s.write_all(b"PRI * HTTP/2.0\r\n");
}

/// Garbage on member `i`'s client port; afterwards every member still serves writes and reads
/// through etcdctl and over gRPC.
pub fn garbage_on_client_port(cluster: &mut Cluster, i: usize) {
    send_garbage(cluster.members[i].client_port);
    still_serving(cluster, i);
}

/// Garbage on member `i`'s peer port; afterwards the member and the cluster still serve.
pub fn garbage_on_peer_port(cluster: &mut Cluster, i: usize) {
    send_garbage(cluster.members[i].peer_port);
    still_serving(cluster, i);
}

fn still_serving(cluster: &mut Cluster, i: usize) {
    assert!(
        cluster.members[i].is_running(),
        "member {} exited after garbage",
        cluster.members[i].name
    );
    cluster.wait_healthy(i);
    let ctl = Etcdctl::new(vec![cluster.members[i].endpoint()]);
    assert_eq!(ctl.ok(&["put", "after-garbage", "fine"]), "OK\n");
    assert_eq!(ctl.ok(&["get", "after-garbage"]), "after-garbage\nfine\n");
    let mut c = grpc::connect(&[cluster.members[i].endpoint()], Duration::from_secs(5))
        .expect("connect after garbage");
    let r = grpc::range(&mut c, b"after-garbage", b"", false).expect("range after garbage");
    assert_eq!(r.kvs.len(), 1);
    assert_eq!(r.kvs[0].value, b"fine");
}

/// Sends a Put whose value is `value_len` bytes directly over gRPC (no etcdctl: its client
/// refuses to send more than 2 MiB) and returns the failure as `(gRPC code, message)`, or
/// `None` if the put succeeded. Afterwards checks the member still serves.
pub fn raw_oversized_put(cluster: &mut Cluster, value_len: usize) -> Option<(i32, String)> {
    let ep = cluster.members[0].endpoint();
    let mut c = grpc::connect(std::slice::from_ref(&ep), Duration::from_secs(10)).expect("connect");
    let value = vec![b'z'; value_len];
    let r = match grpc::put(&mut c, b"huge", &value) {
        Ok(_) => None,
        Err(grpc::CallError::Client(keel_net::client::ClientError::Status(s))) => {
            Some((s.code as i32, s.message))
        }
        Err(e) => Some((-1, e.to_string())),
    };
    still_serving(cluster, 0);
    r
}
