//! RFC 7541 Appendix C vectors and malformed-input cases.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fields(list: &[(&str, &str)]) -> Vec<HeaderField> {
    list.iter()
        .map(|(n, v)| HeaderField::new(n.as_bytes(), v.as_bytes()))
        .collect()
}

fn decode(d: &mut Decoder, block: &str) -> Vec<HeaderField> {
    let mut out = Vec::new();
    d.decode(&hex(block), &mut out).expect("vector decodes");
    out
}

#[test]
fn c1_integers() {
    let mut out = Vec::new();
    encode_integer(10, 5, 0, &mut out);
    assert_eq!(out, [0x0a]);
    out.clear();
    encode_integer(1337, 5, 0, &mut out);
    assert_eq!(out, [0x1f, 0x9a, 0x0a]);
    assert_eq!(decode_integer(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, 3)));
    out.clear();
    encode_integer(42, 8, 0, &mut out);
    assert_eq!(out, [42]);
}

#[test]
fn c2_literals() {
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"
        ),
        fields(&[("custom-key", "custom-header")])
    );
    assert_eq!(d.table_size(), 55);
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, "040c 2f73 616d 706c 652f 7061 7468"),
        fields(&[(":path", "/sample/path")])
    );
    assert_eq!(d.table_len(), 0);
    assert_eq!(
        decode(&mut d, "1008 7061 7373 776f 7264 0673 6563 7265 74"),
        fields(&[("password", "secret")])
    );
    assert_eq!(d.table_len(), 0);
    assert_eq!(decode(&mut d, "82"), fields(&[(":method", "GET")]));
}

fn requests(blocks: [&str; 3]) {
    let mut d = Decoder::new(4096);
    let r1 = fields(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ]);
    assert_eq!(decode(&mut d, blocks[0]), r1);
    assert_eq!(d.table_size(), 57);
    let mut r2 = r1.clone();
    r2.push(HeaderField::new("cache-control", "no-cache"));
    assert_eq!(decode(&mut d, blocks[1]), r2);
    assert_eq!(d.table_size(), 110);
    let r3 = fields(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ]);
    assert_eq!(decode(&mut d, blocks[2]), r3);
    assert_eq!(d.table_size(), 164);
    assert_eq!(d.table_len(), 3);
}

#[test]
fn c3_requests_without_huffman() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn c4_requests_with_huffman() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

fn responses(blocks: [&str; 3]) {
    let mut d = Decoder::new(4096);
    // The examples run with SETTINGS_HEADER_TABLE_SIZE 256.
    d.decode(&[0x3f, 0xe1, 0x01], &mut Vec::new()).unwrap(); // size update to 256
    let r1 = fields(&[
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ]);
    assert_eq!(decode(&mut d, blocks[0]), r1);
    assert_eq!(d.table_size(), 222);
    let mut r2 = r1.clone();
    r2[0].value = b"307".to_vec();
    assert_eq!(decode(&mut d, blocks[1]), r2);
    assert_eq!(d.table_size(), 222);
    let r3 = fields(&[
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ]);
    assert_eq!(decode(&mut d, blocks[2]), r3);
    assert_eq!(d.table_size(), 215);
    assert_eq!(d.table_len(), 3);
}

#[test]
fn c5_responses_without_huffman() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a
         3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04
         677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49
         553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ]);
}

#[test]
fn c6_responses_with_huffman() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e
         919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7
         821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed
         4ee5 b106 3d50 07",
    ]);
}

#[test]
fn huffman_encoding_matches_c4() {
    let mut out = Vec::new();
    huffman_encode(b"www.example.com", &mut out);
    assert_eq!(out, hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"));
    let mut back = Vec::new();
    huffman_decode(&out, &mut back).unwrap();
    assert_eq!(back, b"www.example.com");
}

fn err(block: &[u8]) -> HpackError {
    Decoder::new(4096)
        .decode(block, &mut Vec::new())
        .unwrap_err()
}

#[test]
fn malformed_inputs_are_errors() {
    // Huffman padding not all ones.
    assert_eq!(err(&[0x04, 0x81, 0x00]), HpackError::HuffmanPadding);
    // Padding longer than 7 bits ('0' then a full 0xff byte of padding).
    assert_eq!(err(&[0x04, 0x82, 0x07, 0xff]), HpackError::HuffmanPadding);
    // EOS encoded (30 ones) inside a string.
    assert_eq!(
        err(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]),
        HpackError::HuffmanEos
    );
    assert_eq!(err(&[0x80]), HpackError::InvalidIndex(0));
    assert_eq!(err(&[0xbe]), HpackError::InvalidIndex(62));
    assert_eq!(
        err(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        HpackError::IntegerOverflow
    );
    assert_eq!(err(&[0x04, 0x05, b'a']), HpackError::Truncated);
    assert_eq!(err(&[0xff]), HpackError::Truncated);
    assert_eq!(
        err(&[0x3f, 0xe2, 0x1f]),
        HpackError::TableSizeTooLarge {
            requested: 4097,
            allowed: 4096
        }
    );
    // Size update after a field.
    assert_eq!(err(&[0x82, 0x20]), HpackError::TableSizeUpdateNotAtStart);
}

#[test]
fn header_list_limit() {
    let mut d = Decoder::new(4096);
    d.set_max_header_list_size(40);
    let e = d.decode(
        &[
            0x00, 0x01, b'a', 0x08, b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x',
        ],
        &mut Vec::new(),
    );
    assert_eq!(e, Err(HpackError::HeaderListTooLarge { limit: 40 }));
}

#[test]
fn eviction_and_oversized_entry() {
    let mut d = Decoder::new(4096);
    d.decode(&[0x3f, 0x11], &mut Vec::new()).unwrap(); // size update to 48
                                                       // 'a' = 'b' is 34 bytes: fits. A second entry evicts the first.
    d.decode(&[0x40, 1, b'a', 1, b'b'], &mut Vec::new())
        .unwrap();
    assert_eq!((d.table_len(), d.table_size()), (1, 34));
    d.decode(&[0x40, 1, b'c', 1, b'd'], &mut Vec::new())
        .unwrap();
    assert_eq!((d.table_len(), d.table_size()), (1, 34));
    let mut out = Vec::new();
    d.decode(&[0xbe], &mut out).unwrap();
    assert_eq!(out, fields(&[("c", "d")]));
    // An entry larger than the table empties it (§4.4) and is still emitted.
    let mut out = Vec::new();
    d.decode(
        &[
            0x40, 1, b'e', 20, b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x',
            b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x',
        ],
        &mut out,
    )
    .unwrap();
    assert_eq!(d.table_len(), 0);
    assert_eq!(out.len(), 1);
}

#[test]
fn encoder_round_trip() {
    let list = fields(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "0"),
        ("x", ""),
    ]);
    let mut e = Encoder::new();
    let mut block = Vec::new();
    e.encode_fields(&list, &mut block);
    assert_eq!(block[0], 0x20, "first block starts with a size update to 0");
    assert_eq!(block[1], 0x88, ":status 200 is static index 8");
    let mut out = Vec::new();
    Decoder::new(4096).decode(&block, &mut out).unwrap();
    assert_eq!(out, list);
}

// ---- Encoder with a dynamic table ----

/// Reads the dynamic table size updates at the start of a block (§6.3).
fn leading_size_updates(block: &[u8]) -> Vec<usize> {
    let mut pos = 0;
    let mut sizes = Vec::new();
    while pos < block.len() && block[pos] & 0xe0 == 0x20 {
        let (size, n) = decode_integer(&block[pos..], 5).unwrap();
        sizes.push(size);
        pos += n;
    }
    sizes
}

fn as_pairs(list: &[HeaderField]) -> Vec<(&[u8], &[u8])> {
    list.iter()
        .map(|f| (f.name.as_slice(), f.value.as_slice()))
        .collect()
}

#[test]
fn repeated_response_fields_become_one_byte() {
    let mut e = Encoder::with_table_size(4096);
    let mut d = Decoder::new(4096);
    let headers = fields(&[(":status", "200"), ("content-type", "application/grpc")]);
    let trailers = fields(&[("grpc-status", "0")]);
    let mut sizes = Vec::new();
    for _ in 0..50 {
        for list in [&headers, &trailers] {
            let mut block = Vec::new();
            e.encode_fields(list, &mut block);
            let mut out = Vec::new();
            d.decode(&block, &mut out).unwrap();
            assert_eq!(&out, list);
            sizes.push(block.len());
        }
        assert_eq!(
            (e.table_size(), e.table_len()),
            (d.table_size(), d.table_len())
        );
    }
    // First time: 0x88 + literal with indexing (static name 31) / literal name; then indexed.
    assert_eq!(
        &sizes[..2],
        &[1 + 1 + 1 + 16, 1 + 1 + 11 + 1 + 1],
        "first blocks: no size update (4096 is the default), literals with indexing"
    );
    assert!(sizes[2..].chunks(2).all(|c| c == [2, 1]), "{sizes:?}");
}

#[test]
fn varying_and_sensitive_fields_are_not_indexed() {
    let mut e = Encoder::with_table_size(4096);
    let mut block = Vec::new();
    e.encode(
        [
            (&b"grpc-message"[..], &b"etcdserver: key not found"[..]),
            (b"grpc-timeout", b"4999865u"),
            (b"authorization", b"secret"),
            (b"token", b"abc"),
            (b"grpc-status-details-bin", b"\x00\x01"),
            (b"x-big", &[b'v'; 600][..]),
        ],
        &mut block,
    );
    assert_eq!(e.table_len(), 0);
    let mut d = Decoder::new(4096);
    let mut out = Vec::new();
    d.decode(&block, &mut out).unwrap();
    assert_eq!(out.len(), 6);
    assert_eq!(d.table_len(), 0);
}

#[test]
fn never_indexing_encoder_keeps_the_peer_table_empty() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for i in 0..20 {
        let mut block = Vec::new();
        let list = fields(&[("content-type", "application/grpc"), ("grpc-status", "0")]);
        e.encode_fields(&list, &mut block);
        assert_eq!(
            block[0] == 0x20,
            i == 0,
            "size update 0 on the first block only"
        );
        let mut out = Vec::new();
        d.decode(&block, &mut out).unwrap();
        assert_eq!(out, list);
    }
    assert_eq!((d.table_len(), d.max_table_size()), (0, 0));
}

#[test]
fn table_size_updates_follow_the_peer_setting() {
    let mut e = Encoder::with_table_size(4096);
    let mut d = Decoder::new(4096);
    let list = fields(&[("content-type", "application/grpc"), ("x-a", "1")]);
    let round = |e: &mut Encoder, d: &mut Decoder| {
        let mut block = Vec::new();
        e.encode_fields(&list, &mut block);
        let mut out = Vec::new();
        d.decode(&block, &mut out).unwrap();
        assert_eq!(out, list);
        assert_eq!(e.table_size(), d.table_size());
        block
    };
    round(&mut e, &mut d);
    assert_eq!(d.table_len(), 2);
    // The peer lowers its setting to 0: the next block starts with an update to 0 and the
    // table is emptied on both sides; nothing is indexed any more.
    e.set_peer_max_table_size(0);
    d.set_max_allowed_table_size(0);
    let b = round(&mut e, &mut d);
    assert_eq!(leading_size_updates(&b), [0]);
    assert_eq!((d.table_len(), d.max_table_size()), (0, 0));
    let b = round(&mut e, &mut d);
    assert!(leading_size_updates(&b).is_empty());
    assert_eq!(d.table_len(), 0);
    // Down to 50 then up to 8192 between two blocks: the minimum first, then our limit (4096).
    e.set_peer_max_table_size(50);
    e.set_peer_max_table_size(8192);
    d.set_max_allowed_table_size(8192);
    let b = round(&mut e, &mut d);
    assert_eq!(leading_size_updates(&b), [50, 4096]);
    assert_eq!(d.max_table_size(), 4096);
    assert_eq!(d.table_len(), 2);
}

#[test]
fn block_cache_reuses_bytes_only_while_the_table_is_unchanged() {
    let mut e = Encoder::with_table_size(4096);
    let mut d = Decoder::new(4096);
    let mut cache = BlockCache::new();
    let list: [(&[u8], &[u8]); 2] = [(b":status", b"200"), (b"content-type", b"application/grpc")];
    let expect = fields(&[(":status", "200"), ("content-type", "application/grpc")]);
    let mut blocks = Vec::new();
    let mut send =
        |e: &mut Encoder, d: &mut Decoder, cache: &mut BlockCache, list: &[(&[u8], &[u8])]| {
            let mut block = Vec::new();
            e.encode_cached(cache, list, &mut block);
            let mut out = Vec::new();
            d.decode(&block, &mut out).unwrap();
            blocks.push(block);
            out
        };
    for _ in 0..3 {
        assert_eq!(send(&mut e, &mut d, &mut cache, &list), expect);
    }
    // Another block inserting into the table shifts the dynamic indices: the cached bytes
    // (0x88 0xbe) would now point at the wrong entry, so the block is encoded again.
    let mut other = Vec::new();
    e.encode([(&b"x-new"[..], &b"v"[..])], &mut other);
    d.decode(&other, &mut Vec::new()).unwrap();
    assert_eq!(send(&mut e, &mut d, &mut cache, &list), expect);
    // The peer's table size changes: the next block carries the size update, not the cache.
    e.set_peer_max_table_size(4096);
    assert_eq!(send(&mut e, &mut d, &mut cache, &list), expect);
    // Different fields with the same cache: not mistaken for the cached list.
    let status_204: [(&[u8], &[u8]); 1] = [(b":status", b"204")];
    assert_eq!(
        send(&mut e, &mut d, &mut cache, &status_204),
        fields(&[(":status", "204")])
    );
    assert_eq!(send(&mut e, &mut d, &mut cache, &list), expect);
    assert_eq!(blocks[1], [0x88, 0xbe]);
    assert_eq!(blocks[2], [0x88, 0xbe]);
    assert_eq!(blocks[3], [0x88, 0xbf], "content-type moved to index 63");
    assert_eq!(leading_size_updates(&blocks[4]), [4096]);
    assert_eq!(blocks[5], [0x89]);
}

mod encoder_props {
    use super::*;
    use proptest::prelude::*;

    /// Names and values from small pools (so fields repeat and get indexed), some random.
    fn field() -> impl Strategy<Value = HeaderField> {
        let names = prop::sample::select(vec![
            ":status",
            "content-type",
            "grpc-status",
            "grpc-message",
            "x-a",
            "x-b",
            "token",
            "accept-encoding",
        ]);
        let values = prop::sample::select(vec!["", "0", "200", "application/grpc", "v1", "v2"]);
        prop_oneof![
            4 => (names, values).prop_map(|(n, v)| HeaderField::new(n, v)),
            1 => (prop::collection::vec(any::<u8>(), 0..12), prop::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(n, v)| HeaderField::new(n, v)),
        ]
    }

    /// Before a block, optionally a sequence of peer settings (SETTINGS_HEADER_TABLE_SIZE).
    fn step() -> impl Strategy<Value = (Vec<usize>, Vec<HeaderField>)> {
        let size = prop_oneof![Just(0usize), 0usize..200, Just(4096), 0usize..10_000];
        (
            prop::collection::vec(size, 0..3),
            prop::collection::vec(field(), 0..8),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The indexing encoder's blocks decode to exactly the encoded lists with a decoder
        /// that enforces the peer's current setting, tables stay identical, the peer's table
        /// never exceeds its setting, and a lowered setting is always announced (with the
        /// smallest value first) at the start of the next block.
        #[test]
        fn indexing_encoder_round_trips_and_respects_the_peer_table_size(
            limit in prop_oneof![Just(0usize), 0usize..300, Just(4096)],
            steps in prop::collection::vec(step(), 1..12),
        ) {
            let mut e = Encoder::with_table_size(limit);
            let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
            let mut setting = DEFAULT_TABLE_SIZE;
            for (settings, list) in steps {
                // The decoder requires an update if any new setting is below its table max.
                let mut must_announce: Option<usize> = None;
                for &s in &settings {
                    e.set_peer_max_table_size(s);
                    if s < d.max_table_size() {
                        must_announce = Some(must_announce.map_or(s, |m| m.min(s)));
                    }
                    setting = s;
                }
                d.set_max_allowed_table_size(setting);
                let mut block = Vec::new();
                e.encode(as_pairs(&list), &mut block);
                let updates = leading_size_updates(&block);
                if let Some(min) = must_announce {
                    prop_assert!(!updates.is_empty() && updates[0] <= min, "{updates:?} vs {min}");
                }
                prop_assert!(updates.len() <= 2);
                prop_assert!(updates.iter().all(|&u| u <= setting));
                let mut out = Vec::new();
                d.decode(&block, &mut out).unwrap();
                prop_assert_eq!(&out, &list);
                prop_assert_eq!((e.table_size(), e.table_len()), (d.table_size(), d.table_len()));
                // Every setting is re-announced, so the peer's table max is exactly our limit
                // within its setting, and the table fits in it.
                prop_assert_eq!(d.max_table_size(), limit.min(setting));
                prop_assert_eq!(e.max_table_size(), limit.min(setting));
                prop_assert!(d.table_size() <= limit.min(setting));
            }
        }
    }
}
