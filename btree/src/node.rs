//! Nodes as a reader sees them: either a page in the map or a node a write transaction changed.
//!
//! A write transaction copies the nodes it changes out of the map into owned [`Node`]s (the
//! "dirty" nodes); everything it did not touch stays a page id ([`Child::Clean`]). Readers inside
//! the write transaction walk both through [`NodeRef`], so a bucket seen from a write transaction
//! includes its own uncommitted changes.

use crate::error::{Error, PageId, Result};
use crate::mapping::PageSource;
use crate::page::{Kind, LeafValue, Page};

/// A value in a dirty leaf.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// Bytes held in memory (written inline or to a new overflow run at commit).
    Inline(Vec<u8>),
    /// An unchanged value that already lives in an overflow run.
    Overflow { page: PageId, len: usize },
}

/// One key/value pair of a dirty leaf.
#[derive(Debug, Clone)]
pub(crate) struct LeafEntry {
    pub(crate) key: Vec<u8>,
    pub(crate) val: Val,
}

/// One separator/child pair of a dirty branch.
#[derive(Debug)]
pub(crate) struct BranchEntry {
    pub(crate) key: Vec<u8>,
    pub(crate) child: Child,
}

/// A subtree: an untouched committed page, or a node changed in this transaction.
#[derive(Debug)]
pub(crate) enum Child {
    Clean(PageId),
    Dirty(Box<Node>),
}

/// A node owned by a write transaction.
#[derive(Debug)]
pub(crate) enum Node {
    Leaf(Vec<LeafEntry>),
    Branch(Vec<BranchEntry>),
}

impl Node {
    /// Copy a committed page into an owned node (values in overflow runs stay references).
    pub(crate) fn decode(page: &Page<'_>) -> Result<Node> {
        match page.kind {
            Kind::Leaf => {
                let mut v = Vec::with_capacity(page.count);
                for i in 0..page.count {
                    let key = page.key(i)?.to_vec();
                    let val = match page.leaf_value(i)? {
                        LeafValue::Inline(b) => Val::Inline(b.to_vec()),
                        LeafValue::Overflow(pg, len) => Val::Overflow { page: pg, len },
                    };
                    v.push(LeafEntry { key, val });
                }
                Ok(Node::Leaf(v))
            }
            Kind::Branch => {
                let mut v = Vec::with_capacity(page.count);
                for i in 0..page.count {
                    v.push(BranchEntry {
                        key: page.key(i)?.to_vec(),
                        child: Child::Clean(page.child(i)?),
                    });
                }
                if v.is_empty() {
                    return Err(Error::corrupt(page.id, "branch page with no children"));
                }
                Ok(Node::Branch(v))
            }
            k => Err(Error::corrupt(
                page.id,
                format!("expected a tree node, found {k:?}"),
            )),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Branch(v) => v.len(),
        }
    }
}

/// Index of the first entry `>= key` in a sorted slice, and whether it is equal.
pub(crate) fn lower_bound_by<T>(v: &[T], key: &[u8], k: impl Fn(&T) -> &[u8]) -> (usize, bool) {
    match v.binary_search_by(|e| crate::page::cmp_keys(k(e), key)) {
        Ok(i) => (i, true),
        Err(i) => (i, false),
    }
}

/// Index of the child of a branch that may hold `key`.
pub(crate) fn branch_child_index(v: &[BranchEntry], key: &[u8]) -> usize {
    let (i, eq) = lower_bound_by(v, key, |e| &e.key);
    if eq {
        i
    } else {
        i.saturating_sub(1)
    }
}

/// A node as a reader walks it.
#[derive(Clone, Copy)]
pub(crate) enum NodeRef<'a> {
    Page(Page<'a>),
    Mem(&'a Node),
}

/// The root of a tree as a reader sees it.
#[derive(Clone, Copy)]
pub(crate) enum RootRef<'a> {
    Empty,
    Page(PageId),
    Mem(&'a Node),
}

impl<'a> RootRef<'a> {
    /// The root stored on disk as a page id, where 0 means an empty tree.
    pub(crate) fn of_page(id: PageId) -> RootRef<'a> {
        if id == 0 {
            RootRef::Empty
        } else {
            RootRef::Page(id)
        }
    }

    pub(crate) fn of_child(c: Option<&'a Child>) -> RootRef<'a> {
        match c {
            None => RootRef::Empty,
            Some(Child::Clean(0)) => RootRef::Empty,
            Some(Child::Clean(p)) => RootRef::Page(*p),
            Some(Child::Dirty(n)) => RootRef::Mem(n),
        }
    }

    pub(crate) fn load(&self, src: &PageSource<'a>) -> Result<Option<NodeRef<'a>>> {
        Ok(match *self {
            RootRef::Empty => None,
            RootRef::Page(p) => Some(NodeRef::Page(src.page(p, &[Kind::Branch, Kind::Leaf])?)),
            RootRef::Mem(n) => Some(NodeRef::Mem(n)),
        })
    }
}

impl<'a> NodeRef<'a> {
    #[inline]
    pub(crate) fn is_leaf(&self) -> bool {
        match self {
            NodeRef::Page(p) => p.kind == Kind::Leaf,
            NodeRef::Mem(n) => matches!(n, Node::Leaf(_)),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            NodeRef::Page(p) => p.count,
            NodeRef::Mem(n) => n.len(),
        }
    }

    #[inline]
    pub(crate) fn key(&self, i: usize) -> Result<&'a [u8]> {
        match *self {
            NodeRef::Page(p) => p.key(i),
            NodeRef::Mem(Node::Leaf(v)) => Ok(&v[i].key),
            NodeRef::Mem(Node::Branch(v)) => Ok(&v[i].key),
        }
    }

    /// Value of leaf entry `i`, following overflow references.
    #[inline]
    pub(crate) fn value(&self, i: usize, src: &PageSource<'a>) -> Result<&'a [u8]> {
        let (pg, len) = match *self {
            NodeRef::Page(p) => match p.leaf_value(i)? {
                LeafValue::Inline(b) => return Ok(b),
                LeafValue::Overflow(pg, len) => (pg, len),
            },
            NodeRef::Mem(Node::Leaf(v)) => match &v[i].val {
                Val::Inline(b) => return Ok(b),
                Val::Overflow { page, len } => (*page, *len),
            },
            NodeRef::Mem(Node::Branch(_)) => unreachable!("value() on a branch"),
        };
        src.page(pg, &[Kind::Overflow])?.overflow_value(len)
    }

    /// Child `i` of a branch.
    #[inline]
    pub(crate) fn child(&self, i: usize, src: &PageSource<'a>) -> Result<NodeRef<'a>> {
        let pid = match *self {
            NodeRef::Page(p) => p.child(i)?,
            NodeRef::Mem(Node::Branch(v)) => match &v[i].child {
                Child::Clean(p) => *p,
                Child::Dirty(n) => return Ok(NodeRef::Mem(n)),
            },
            NodeRef::Mem(Node::Leaf(_)) => unreachable!("child() on a leaf"),
        };
        Ok(NodeRef::Page(src.page(pid, &[Kind::Branch, Kind::Leaf])?))
    }

    /// First index with key `>= key`, and whether equal.
    #[inline]
    pub(crate) fn lower_bound(&self, key: &[u8]) -> Result<(usize, bool)> {
        match *self {
            NodeRef::Page(p) => p.lower_bound(key),
            NodeRef::Mem(Node::Leaf(v)) => Ok(lower_bound_by(v, key, |e| &e.key)),
            NodeRef::Mem(Node::Branch(v)) => Ok(lower_bound_by(v, key, |e| &e.key)),
        }
    }

    /// Branch: index of the child that may hold `key`.
    #[inline]
    pub(crate) fn child_index(&self, key: &[u8]) -> Result<usize> {
        match *self {
            NodeRef::Page(p) => p.child_index(key),
            NodeRef::Mem(Node::Branch(v)) => Ok(branch_child_index(v, key)),
            NodeRef::Mem(Node::Leaf(_)) => unreachable!("child_index() on a leaf"),
        }
    }
}

/// Point lookup from a root.
pub(crate) fn get<'a>(
    root: RootRef<'a>,
    src: &PageSource<'a>,
    key: &[u8],
) -> Result<Option<&'a [u8]>> {
    let Some(mut n) = root.load(src)? else {
        return Ok(None);
    };
    let mut depth = 0;
    while !n.is_leaf() {
        if n.len() == 0 {
            return Ok(None);
        }
        let i = n.child_index(key)?;
        n = n.child(i, src)?;
        depth += 1;
        if depth > crate::MAX_DEPTH {
            return Err(Error::corrupt(
                0,
                "tree deeper than any valid tree (cycle?)",
            ));
        }
    }
    match n.lower_bound(key)? {
        (i, true) => Ok(Some(n.value(i, src)?)),
        _ => Ok(None),
    }
}
