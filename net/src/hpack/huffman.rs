//! Huffman coding of string literals (RFC 7541 §5.2, Appendix B).
//!
//! Decoding walks a binary tree built once from the code table, one bit at a time, and checks the
//! two rules of §5.2: padding is at most 7 bits and consists of the most significant bits of EOS
//! (all ones), and a decoded EOS symbol is an error.

use super::huffman_table::HUFFMAN_CODES;
use super::HpackError;
use std::sync::OnceLock;

/// A node of the decoding tree: `children[bit]` is either another node index or a leaf.
#[derive(Clone, Copy)]
struct Node {
    children: [Child; 2],
}

#[derive(Clone, Copy)]
enum Child {
    None,
    Node(u16),
    Symbol(u16),
}

fn tree() -> &'static [Node] {
    static TREE: OnceLock<Vec<Node>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut nodes = vec![Node {
            children: [Child::None; 2],
        }];
        for (sym, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
            let mut at = 0usize;
            for i in (0..len).rev() {
                let bit = ((code >> i) & 1) as usize;
                if i == 0 {
                    nodes[at].children[bit] = Child::Symbol(sym as u16);
                } else {
                    at = match nodes[at].children[bit] {
                        Child::Node(n) => n as usize,
                        _ => {
                            nodes.push(Node {
                                children: [Child::None; 2],
                            });
                            let n = nodes.len() - 1;
                            nodes[at].children[bit] = Child::Node(n as u16);
                            n
                        }
                    };
                }
            }
        }
        nodes
    })
}

/// Decodes Huffman-coded bytes, appending the result to `out`.
pub fn huffman_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let nodes = tree();
    let mut at = 0usize;
    // Bits consumed since the last complete symbol, and whether they were all ones.
    let mut pending_bits = 0u32;
    let mut pending_all_ones = true;
    for &byte in input {
        for i in (0..8).rev() {
            let bit = ((byte >> i) & 1) as usize;
            pending_bits += 1;
            pending_all_ones &= bit == 1;
            match nodes[at].children[bit] {
                Child::Node(n) => at = n as usize,
                Child::Symbol(256) => return Err(HpackError::HuffmanEos),
                Child::Symbol(s) => {
                    out.push(s as u8);
                    at = 0;
                    pending_bits = 0;
                    pending_all_ones = true;
                }
                // The code is complete, so every path ends in a symbol; kept for safety.
                Child::None => return Err(HpackError::HuffmanPadding),
            }
        }
    }
    if pending_bits > 7 || !pending_all_ones {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(())
}

/// Huffman-encodes `input`, appending to `out` (padding with the EOS prefix, all ones).
pub fn huffman_encode(input: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in input {
        let (code, len) = HUFFMAN_CODES[b as usize];
        acc = (acc << len) | code as u64;
        bits += len as u32;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}
