//! Changing a tree inside a write transaction, and writing it out at commit ("spill").
//!
//! Mutations copy the path from the root to the affected leaf into owned [`Node`]s
//! ([`materialize`]) and record the replaced pages as freed. Nothing is split or written while the
//! transaction runs, except that an in-memory node with more than [`MAX_MEM_ENTRIES`] entries is
//! cut in two so that inserting many keys into one leaf stays cheap.
//!
//! At commit, [`spill_tree`] writes the dirty nodes bottom-up into freshly allocated pages.
//! Consecutive dirty siblings are merged and then re-packed into as few pages as fit, so a node is
//! never left nearly empty next to a dirty neighbour; a dirty node under a quarter page pulls in a
//! clean neighbour to merge with. Packing is greedy (every page full, remainder last) along the
//! right edge of the tree, where keys arriving in increasing order land, and even elsewhere (two
//! half-full pages after a split, the usual B-tree trade-off for random inserts).

use crate::error::{PageId, Result};
use crate::freelist::Allocator;
use crate::mapping::PageSource;
use crate::node::{branch_child_index, lower_bound_by, BranchEntry, Child, LeafEntry, Node, Val};
use crate::page::{self, EncValue, Kind, ELEM, HEADER};

/// An in-memory node with more entries than this is split while the transaction runs.
pub(crate) const MAX_MEM_ENTRIES: usize = 512;

/// One bucket's tree inside a write transaction.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) root: Option<Child>,
    pub(crate) count: u64,
    pub(crate) dirty: bool,
}

impl Tree {
    pub(crate) fn from_root(root: PageId, count: u64) -> Tree {
        Tree {
            root: (root != 0).then_some(Child::Clean(root)),
            count,
            dirty: false,
        }
    }
}

/// Largest value stored inside a leaf; longer values go to an overflow run.
pub(crate) fn max_inline(page_size: usize) -> usize {
    (page_size - HEADER) / 4 - ELEM
}

/// What mutations need: the snapshot's pages and the list of pages this transaction freed.
pub(crate) struct Ctx<'a, 'b> {
    pub(crate) src: PageSource<'a>,
    pub(crate) freed: &'b mut Vec<(PageId, u64)>,
}

impl Ctx<'_, '_> {
    fn free_value(&mut self, v: &Val) {
        if let Val::Overflow { page, len } = v {
            let n = page::overflow_pages(*len, self.src.page_size());
            self.freed.push((*page, n));
        }
    }
}

/// Turn a clean child into a dirty copy of its page (freeing the page) and return it.
pub(crate) fn materialize<'c>(child: &'c mut Child, ctx: &mut Ctx<'_, '_>) -> Result<&'c mut Node> {
    if let Child::Clean(pid) = *child {
        let page = ctx.src.page(pid, &[Kind::Branch, Kind::Leaf])?;
        let node = Node::decode(&page)?;
        ctx.freed
            .push((pid, (page.data.len() / ctx.src.page_size()) as u64));
        *child = Child::Dirty(Box::new(node));
    }
    match child {
        Child::Dirty(n) => Ok(n),
        Child::Clean(_) => unreachable!("just materialized"),
    }
}

/// Insert or replace `key`. Returns true if the key already existed.
pub(crate) fn put(
    tree: &mut Tree,
    key: &[u8],
    val: Vec<u8>,
    ctx: &mut Ctx<'_, '_>,
) -> Result<bool> {
    tree.dirty = true;
    let root = match &mut tree.root {
        None => {
            tree.root = Some(Child::Dirty(Box::new(Node::Leaf(vec![LeafEntry {
                key: key.to_vec(),
                val: Val::Inline(val),
            }]))));
            tree.count += 1;
            return Ok(false);
        }
        Some(r) => r,
    };
    let node = materialize(root, ctx)?;
    let (existed, split) = insert(node, key, val, ctx)?;
    if let Some((skey, right)) = split {
        let old = tree.root.take().expect("root present");
        let first = match &old {
            Child::Dirty(n) => first_key(n).to_vec(),
            Child::Clean(_) => unreachable!("root is dirty"),
        };
        tree.root = Some(Child::Dirty(Box::new(Node::Branch(vec![
            BranchEntry {
                key: first,
                child: old,
            },
            BranchEntry {
                key: skey,
                child: Child::Dirty(right),
            },
        ]))));
    }
    if !existed {
        tree.count += 1;
    }
    Ok(existed)
}

fn first_key(n: &Node) -> &[u8] {
    match n {
        Node::Leaf(v) => v.first().map(|e| e.key.as_slice()).unwrap_or(&[]),
        Node::Branch(v) => v.first().map(|e| e.key.as_slice()).unwrap_or(&[]),
    }
}

type Split = Option<(Vec<u8>, Box<Node>)>;

fn insert(
    node: &mut Node,
    key: &[u8],
    val: Vec<u8>,
    ctx: &mut Ctx<'_, '_>,
) -> Result<(bool, Split)> {
    let existed = match node {
        Node::Leaf(v) => match lower_bound_by(v, key, |e| &e.key) {
            (i, true) => {
                let old = std::mem::replace(&mut v[i].val, Val::Inline(val));
                ctx.free_value(&old);
                true
            }
            (i, false) => {
                v.insert(
                    i,
                    LeafEntry {
                        key: key.to_vec(),
                        val: Val::Inline(val),
                    },
                );
                false
            }
        },
        Node::Branch(v) => {
            let i = branch_child_index(v, key);
            let child = materialize(&mut v[i].child, ctx)?;
            let (existed, split) = insert(child, key, val, ctx)?;
            if let Some((skey, right)) = split {
                v.insert(
                    i + 1,
                    BranchEntry {
                        key: skey,
                        child: Child::Dirty(right),
                    },
                );
            }
            existed
        }
    };
    let split = if node.len() > MAX_MEM_ENTRIES {
        Some(match node {
            Node::Leaf(v) => {
                let right = v.split_off(v.len() / 2);
                (right[0].key.clone(), Box::new(Node::Leaf(right)))
            }
            Node::Branch(v) => {
                let right = v.split_off(v.len() / 2);
                (right[0].key.clone(), Box::new(Node::Branch(right)))
            }
        })
    } else {
        None
    };
    Ok((existed, split))
}

/// Delete `key` (the caller checked that it exists, so no page is copied needlessly).
/// Returns true if it was found.
pub(crate) fn delete(tree: &mut Tree, key: &[u8], ctx: &mut Ctx<'_, '_>) -> Result<bool> {
    let Some(root) = &mut tree.root else {
        return Ok(false);
    };
    tree.dirty = true;
    let node = materialize(root, ctx)?;
    let found = remove(node, key, ctx)?;
    if node.len() == 0 {
        tree.root = None;
    }
    if found {
        tree.count = tree.count.saturating_sub(1);
    }
    Ok(found)
}

fn remove(node: &mut Node, key: &[u8], ctx: &mut Ctx<'_, '_>) -> Result<bool> {
    match node {
        Node::Leaf(v) => match lower_bound_by(v, key, |e| &e.key) {
            (i, true) => {
                let e = v.remove(i);
                ctx.free_value(&e.val);
                Ok(true)
            }
            _ => Ok(false),
        },
        Node::Branch(v) => {
            let i = branch_child_index(v, key);
            let child = materialize(&mut v[i].child, ctx)?;
            let found = remove(child, key, ctx)?;
            if child.len() == 0 {
                v.remove(i);
            }
            Ok(found)
        }
    }
}

/// Free every page of a subtree (used by `delete_bucket`).
pub(crate) fn free_subtree(child: &Child, ctx: &mut Ctx<'_, '_>, depth: usize) -> Result<()> {
    if depth > crate::MAX_DEPTH {
        return Err(crate::Error::corrupt(
            0,
            "tree deeper than any valid tree (cycle?)",
        ));
    }
    match child {
        Child::Clean(pid) => {
            let page = ctx.src.page(*pid, &[Kind::Branch, Kind::Leaf])?;
            if page.kind == Kind::Branch {
                for i in 0..page.count {
                    free_subtree(&Child::Clean(page.child(i)?), ctx, depth + 1)?;
                }
            } else {
                for i in 0..page.count {
                    if let page::LeafValue::Overflow(pg, len) = page.leaf_value(i)? {
                        ctx.free_value(&Val::Overflow { page: pg, len });
                    }
                }
            }
            ctx.freed
                .push((*pid, (page.data.len() / ctx.src.page_size()) as u64));
        }
        Child::Dirty(n) => match &**n {
            Node::Leaf(v) => {
                for e in v {
                    ctx.free_value(&e.val);
                }
            }
            Node::Branch(v) => {
                for e in v {
                    free_subtree(&e.child, ctx, depth + 1)?;
                }
            }
        },
    }
    Ok(())
}

/// Everything spilling needs.
pub(crate) struct Spill<'s, 'a, 'b> {
    pub(crate) ctx: Ctx<'a, 'b>,
    pub(crate) alloc: Allocator<'s>,
    pub(crate) writes: Vec<(PageId, Vec<u8>)>,
    pub(crate) txid: u64,
}

/// Write a tree's dirty nodes; returns the new root page (0 for an empty tree).
pub(crate) fn spill_tree(tree: &mut Tree, sp: &mut Spill<'_, '_, '_>) -> Result<PageId> {
    let Some(mut root) = tree.root.take() else {
        return Ok(0);
    };
    // Collapse a root with a single child (after deletes) and drop empty roots.
    loop {
        match root {
            Child::Clean(p) => {
                tree.root = Some(Child::Clean(p));
                return Ok(p);
            }
            Child::Dirty(ref mut n) => match &mut **n {
                Node::Branch(v) if v.len() == 1 => {
                    root = v.pop().expect("one child").child;
                }
                n if n.len() == 0 => return Ok(0),
                _ => break,
            },
        }
    }
    let Child::Dirty(node) = root else {
        unreachable!("loop only breaks on a dirty root")
    };
    let mut pieces = spill_node(*node, true, sp)?;
    while pieces.len() > 1 {
        let entries = pieces
            .into_iter()
            .map(|(key, pid)| BranchEntry {
                key,
                child: Child::Clean(pid),
            })
            .collect();
        pieces = spill_node(Node::Branch(entries), true, sp)?;
    }
    let pid = pieces.first().map(|p| p.1).unwrap_or(0);
    tree.root = (pid != 0).then_some(Child::Clean(pid));
    Ok(pid)
}

fn stored_len(v: &Val, page_size: usize) -> usize {
    match v {
        Val::Inline(b) if b.len() <= max_inline(page_size) => b.len(),
        _ => 8,
    }
}

fn node_size(n: &Node, page_size: usize) -> usize {
    HEADER
        + match n {
            Node::Leaf(v) => v
                .iter()
                .map(|e| page::leaf_elem_size(e.key.len(), stored_len(&e.val, page_size)))
                .sum::<usize>(),
            Node::Branch(v) => v.iter().map(|e| page::branch_elem_size(e.key.len())).sum(),
        }
}

/// Split items with these encoded sizes into groups that each fit a page. Every group has at
/// least `min` items (branches use 2, so every level has fewer nodes than the one below and
/// building the levels above terminates even when keys are larger than a page); a group that
/// does not fit one page becomes a multi-page run.
fn pack(sizes: &[usize], cap: usize, greedy: bool, min: usize) -> Vec<std::ops::Range<usize>> {
    let total: usize = sizes.iter().sum();
    let k = total.div_ceil(cap).max(1);
    let target = if greedy { cap } else { total.div_ceil(k) };
    let mut groups = Vec::new();
    let (mut start, mut acc) = (0usize, 0usize);
    for (i, &s) in sizes.iter().enumerate() {
        if i - start >= min && sizes.len() - i >= min && (acc + s > cap || acc >= target) {
            groups.push(start..i);
            start = i;
            acc = 0;
        }
        acc += s;
    }
    if start < sizes.len() {
        groups.push(start..sizes.len());
    }
    groups
}

fn spill_node(
    node: Node,
    rightmost: bool,
    sp: &mut Spill<'_, '_, '_>,
) -> Result<Vec<(Vec<u8>, PageId)>> {
    let ps = sp.ctx.src.page_size();
    let cap = ps - HEADER;
    match node {
        Node::Leaf(mut entries) => {
            if entries.is_empty() {
                return Ok(Vec::new());
            }
            // Large values go to overflow runs.
            for e in entries.iter_mut() {
                if let Val::Inline(b) = &e.val {
                    if b.len() > max_inline(ps) {
                        let n = page::overflow_pages(b.len(), ps);
                        let pid = sp.alloc.alloc(n);
                        sp.writes
                            .push((pid, page::encode_overflow(pid, sp.txid, ps, b)));
                        e.val = Val::Overflow {
                            page: pid,
                            len: b.len(),
                        };
                    }
                }
            }
            let sizes: Vec<usize> = entries
                .iter()
                .map(|e| page::leaf_elem_size(e.key.len(), stored_len(&e.val, ps)))
                .collect();
            let mut out = Vec::new();
            for g in pack(&sizes, cap, rightmost, 1) {
                let bytes = HEADER + sizes[g.clone()].iter().sum::<usize>();
                let n = page::pages_for(bytes, ps);
                let pid = sp.alloc.alloc(n);
                let mut buf = vec![0u8; n as usize * ps];
                let group = &entries[g];
                page::encode_leaf(
                    &mut buf,
                    pid,
                    sp.txid,
                    ps,
                    group.iter().map(|e| {
                        let v = match &e.val {
                            Val::Inline(b) => EncValue::Inline(b),
                            Val::Overflow { page, len } => EncValue::Overflow(*page, *len),
                        };
                        (e.key.as_slice(), v)
                    }),
                );
                sp.writes.push((pid, buf));
                out.push((group[0].key.clone(), pid));
            }
            Ok(out)
        }
        Node::Branch(mut entries) => {
            // A small dirty child pulls in a clean neighbour so the two can be merged.
            let mut i = 0;
            while i < entries.len() {
                let small = match &entries[i].child {
                    Child::Dirty(n) => node_size(n, ps) < ps / 4,
                    Child::Clean(_) => false,
                };
                if small {
                    let j = if i + 1 < entries.len() {
                        i + 1
                    } else {
                        i.wrapping_sub(1)
                    };
                    if j < entries.len() {
                        materialize(&mut entries[j].child, &mut sp.ctx)?;
                    }
                }
                i += 1;
            }
            // Write runs of consecutive dirty children as one merged node each.
            let last = entries.len().saturating_sub(1);
            let mut out: Vec<(Vec<u8>, PageId)> = Vec::with_capacity(entries.len());
            let mut run: Option<Node> = None;
            for (i, e) in entries.into_iter().enumerate() {
                match e.child {
                    Child::Clean(pid) => {
                        if let Some(r) = run.take() {
                            out.extend(spill_node(r, false, sp)?);
                        }
                        out.push((e.key, pid));
                    }
                    Child::Dirty(n) => {
                        run = Some(match (run.take(), *n) {
                            (None, n) => n,
                            (Some(Node::Leaf(mut a)), Node::Leaf(b)) => {
                                a.extend(b);
                                Node::Leaf(a)
                            }
                            (Some(Node::Branch(mut a)), Node::Branch(b)) => {
                                a.extend(b);
                                Node::Branch(a)
                            }
                            _ => {
                                return Err(crate::Error::corrupt(
                                    0,
                                    "siblings of different kinds (tree depth mismatch)",
                                ))
                            }
                        });
                        if i == last {
                            let r = run.take().expect("run just set");
                            out.extend(spill_node(r, rightmost, sp)?);
                        }
                    }
                }
            }
            if let Some(r) = run.take() {
                out.extend(spill_node(r, false, sp)?);
            }
            if out.is_empty() {
                return Ok(out);
            }
            let sizes: Vec<usize> = out
                .iter()
                .map(|(k, _)| page::branch_elem_size(k.len()))
                .collect();
            let mut pieces = Vec::new();
            for g in pack(&sizes, cap, rightmost, 2) {
                let bytes = HEADER + sizes[g.clone()].iter().sum::<usize>();
                let n = page::pages_for(bytes, ps);
                let pid = sp.alloc.alloc(n);
                let mut buf = vec![0u8; n as usize * ps];
                let group = &out[g];
                page::encode_branch(
                    &mut buf,
                    pid,
                    sp.txid,
                    ps,
                    group.iter().map(|(k, c)| (k.as_slice(), *c)),
                );
                sp.writes.push((pid, buf));
                pieces.push((group[0].0.clone(), pid));
            }
            Ok(pieces)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pack;

    #[test]
    fn pack_greedy_fills_pages() {
        let g = pack(&[10; 25], 100, true, 1);
        assert_eq!(g, vec![0..10, 10..20, 20..25]);
    }

    #[test]
    fn pack_even_splits_evenly() {
        let g = pack(&[10; 11], 100, false, 1);
        assert_eq!(g, vec![0..6, 6..11]);
    }

    #[test]
    fn pack_oversized_item_alone() {
        let g = pack(&[10, 500, 10], 100, true, 1);
        assert_eq!(g, vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn pack_branches_keep_two_items_so_levels_shrink() {
        // Three keys larger than a page: a branch level must still shrink.
        let g = pack(&[500, 500, 500], 100, true, 2);
        assert!(g.len() < 3, "{g:?}");
        assert!(g.iter().all(|r| r.len() >= 2));
        let g = pack(&[10; 11], 100, false, 2);
        assert_eq!(g, vec![0..6, 6..11]);
    }
}
