//! Property tests of the HTTP head parsers on the peer port: random bytes never panic, the
//! head reader never reads past its limit, and well-formed requests give back their path.

use keel_net::peer::http::{
    parse_request_head, parse_response_head, read_request_path, HttpHeadError,
    MAX_REQUEST_HEAD_BYTES,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn request_head_byte_soups_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request_head(&bytes);
        let mut with_get = b"GET ".to_vec();
        with_get.extend_from_slice(&bytes);
        if let Ok(path) = parse_request_head(&with_get) {
            prop_assert!(path.starts_with('/'));
            prop_assert!(!path.contains('?'));
        }
    }

    #[test]
    fn response_head_byte_soups_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_response_head(&bytes);
        let mut with_version = b"HTTP/1.1 ".to_vec();
        with_version.extend_from_slice(&bytes);
        if let Ok(head) = parse_response_head(&with_version) {
            prop_assert!((100..=599).contains(&head.status));
        }
    }

    /// The streaming reader over random bytes (as the transport feeds it after `GET `) ends
    /// with a path or an error, and refuses anything longer than the limit.
    #[test]
    fn request_reader_on_random_streams(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        filler in 0usize..(MAX_REQUEST_HEAD_BYTES + 2048),
    ) {
        let mut stream = bytes.clone();
        stream.resize(bytes.len() + filler, b'a');
        let mut reader = stream.as_slice();
        match read_request_path(&mut reader, b"GET ") {
            Ok(path) => prop_assert!(path.starts_with('/')),
            Err(HttpHeadError::TooLarge { max }) => prop_assert_eq!(max, MAX_REQUEST_HEAD_BYTES),
            Err(_) => {}
        }
        prop_assert!(stream.len() - reader.len() <= MAX_REQUEST_HEAD_BYTES);
    }

    /// Well-formed requests with arbitrary header lines give back their path.
    #[test]
    fn well_formed_requests_give_their_path(
        path in "/[a-zA-Z0-9/._~-]{0,40}",
        query in proptest::option::of("[a-z=&0-9]{0,20}"),
        headers in proptest::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,30}"), 0..6),
        crlf in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut head = format!("GET {path}");
        if let Some(q) = &query {
            head.push('?');
            head.push_str(q);
        }
        head.push_str(" HTTP/1.1");
        head.push_str(nl);
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {value}{nl}"));
        }
        head.push_str(nl);
        prop_assert_eq!(parse_request_head(head.as_bytes()), Ok(path.as_str()));
        let mut reader = &head.as_bytes()[4..];
        prop_assert_eq!(read_request_path(&mut reader, b"GET "), Ok(path.clone()));
    }
}
