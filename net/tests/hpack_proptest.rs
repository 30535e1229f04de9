//! HPACK decoder robustness: random byte soups never panic; encode→decode round trips.

use keel_net::hpack::{huffman_decode, huffman_encode, Decoder, Encoder, HeaderField};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn byte_soup_never_panics(blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..4)) {
        let mut d = Decoder::new(4096);
        d.set_max_header_list_size(16 * 1024);
        for b in &blocks {
            let _ = d.decode(b, &mut Vec::new());
        }
    }

    /// Soups biased towards valid prefixes: a valid block with a random tail or random byte flips.
    #[test]
    fn mutated_valid_blocks_never_panic(flip_at in 0usize..40, flip in any::<u8>(), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut block = vec![0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f, 0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf, 0xbe, 0xbf, 0xc0];
        let i = flip_at % block.len();
        block[i] ^= flip;
        block.extend_from_slice(&tail);
        let mut d = Decoder::new(4096);
        let _ = d.decode(&block, &mut Vec::new());
        let _ = d.decode(&block, &mut Vec::new());
    }

    #[test]
    fn huffman_round_trip(s in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut enc = Vec::new();
        huffman_encode(&s, &mut enc);
        let mut dec = Vec::new();
        huffman_decode(&enc, &mut dec).unwrap();
        prop_assert_eq!(dec, s);
    }

    #[test]
    fn encoder_decoder_round_trip(list in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), 0..40)), 0..12)) {
        let fields: Vec<HeaderField> = list.into_iter().map(|(n, v)| HeaderField::new(n, v)).collect();
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096);
        for _ in 0..2 {
            let mut block = Vec::new();
            e.encode_fields(&fields, &mut block);
            let mut out = Vec::new();
            d.decode(&block, &mut out).unwrap();
            prop_assert_eq!(&out, &fields);
        }
    }
}
