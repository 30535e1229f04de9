//! Ordered traversal: a [`Cursor`] that can seek and step both ways, and a [`Range`] iterator over
//! a bounded key range (forward with `next`, reverse with `next_back` / `.rev()`).
//!
//! A cursor keeps the path from the root to its current leaf entry as a stack of `(node, index)`.
//! Stepping past the end of a leaf pops up to the first ancestor with a next child and descends
//! to that child's leftmost leaf (mirror image for `prev`). Every step is `O(1)` amortized and
//! returns slices borrowed from the transaction (zero-copy from the map for committed pages).

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::mapping::PageSource;
use crate::node::{NodeRef, RootRef};
use crate::MAX_DEPTH;

/// A key/value pair borrowed from a transaction.
pub type Entry<'a> = (&'a [u8], &'a [u8]);

/// A position in one bucket's ordered keys.
///
/// Created by [`crate::Bucket::cursor`]. All moves return the entry the cursor lands on, or
/// `None` when it moves off either end (after which `next`/`prev` keep returning `None` until a
/// `first`, `last` or `seek`).
pub struct Cursor<'a> {
    src: PageSource<'a>,
    root: RootRef<'a>,
    stack: Vec<(NodeRef<'a>, usize)>,
    valid: bool,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(src: PageSource<'a>, root: RootRef<'a>) -> Cursor<'a> {
        Cursor {
            src,
            root,
            stack: Vec::with_capacity(8),
            valid: false,
        }
    }

    /// The entry under the cursor, if it is positioned.
    pub fn current(&self) -> Result<Option<Entry<'a>>> {
        if !self.valid {
            return Ok(None);
        }
        let (n, i) = *self.stack.last().expect("valid cursor has a stack");
        Ok(Some((n.key(i)?, n.value(i, &self.src)?)))
    }

    /// Move to the smallest key.
    pub fn first(&mut self) -> Result<Option<Entry<'a>>> {
        self.stack.clear();
        self.valid = false;
        let Some(root) = self.root.load(&self.src)? else {
            return Ok(None);
        };
        self.stack.push((root, 0));
        self.descend(false)?;
        self.settle_forward()
    }

    /// Move to the largest key.
    pub fn last(&mut self) -> Result<Option<Entry<'a>>> {
        self.stack.clear();
        self.valid = false;
        let Some(root) = self.root.load(&self.src)? else {
            return Ok(None);
        };
        let n = root.len();
        self.stack.push((root, n.saturating_sub(1)));
        self.descend(true)?;
        self.settle_backward()
    }

    /// Move to the first key `>= key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<Entry<'a>>> {
        self.stack.clear();
        self.valid = false;
        let Some(mut n) = self.root.load(&self.src)? else {
            return Ok(None);
        };
        loop {
            if n.is_leaf() {
                let (i, _) = n.lower_bound(key)?;
                self.stack.push((n, i));
                break;
            }
            if n.len() == 0 {
                return Err(Error::corrupt(0, "empty branch node"));
            }
            let i = n.child_index(key)?;
            self.stack.push((n, i));
            self.check_depth()?;
            n = n.child(i, &self.src)?;
        }
        self.settle_forward()
    }

    /// Move to the last key `<= key`.
    pub fn seek_for_prev(&mut self, key: &[u8]) -> Result<Option<Entry<'a>>> {
        match self.seek(key)? {
            Some((k, v)) if k == key => Ok(Some((k, v))),
            Some(_) => self.prev(),
            None => self.last(),
        }
    }

    /// Move to the next key.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>> {
        if !self.valid {
            return Ok(None);
        }
        if let Some(top) = self.stack.last_mut() {
            top.1 += 1;
        }
        self.settle_forward()
    }

    /// Move to the previous key.
    pub fn prev(&mut self) -> Result<Option<Entry<'a>>> {
        if !self.valid {
            return Ok(None);
        }
        self.step_back()
    }

    fn check_depth(&self) -> Result<()> {
        if self.stack.len() > MAX_DEPTH {
            return Err(Error::corrupt(
                0,
                "tree deeper than any valid tree (cycle?)",
            ));
        }
        Ok(())
    }

    /// From the top of the stack, descend to a leaf along the first (or last) children.
    fn descend(&mut self, to_last: bool) -> Result<()> {
        loop {
            let (n, i) = *self.stack.last().expect("non-empty stack");
            if n.is_leaf() {
                return Ok(());
            }
            if i >= n.len() {
                return Err(Error::corrupt(0, "empty branch node"));
            }
            self.check_depth()?;
            let c = n.child(i, &self.src)?;
            let ci = if to_last {
                c.len().saturating_sub(1)
            } else {
                0
            };
            self.stack.push((c, ci));
        }
    }

    /// The top leaf index may be past its end: move forward to the next real entry.
    fn settle_forward(&mut self) -> Result<Option<Entry<'a>>> {
        loop {
            let (n, i) = *self.stack.last().expect("non-empty stack");
            if i < n.len() {
                self.valid = true;
                return self.current();
            }
            // Pop exhausted levels.
            self.stack.pop();
            loop {
                match self.stack.last_mut() {
                    None => {
                        self.valid = false;
                        return Ok(None);
                    }
                    Some((p, pi)) => {
                        if *pi + 1 < p.len() {
                            *pi += 1;
                            break;
                        }
                        self.stack.pop();
                    }
                }
            }
            self.descend(false)?;
        }
    }

    /// Step to the previous entry (the top index is valid or one past the end).
    fn step_back(&mut self) -> Result<Option<Entry<'a>>> {
        loop {
            let top = self.stack.last_mut().expect("non-empty stack");
            if top.1 > 0 {
                top.1 -= 1;
                let (n, i) = *top;
                if i < n.len() {
                    self.valid = true;
                    return self.current();
                }
                continue;
            }
            self.stack.pop();
            loop {
                match self.stack.last_mut() {
                    None => {
                        self.valid = false;
                        return Ok(None);
                    }
                    Some((_, pi)) => {
                        if *pi > 0 {
                            *pi -= 1;
                            break;
                        }
                        self.stack.pop();
                    }
                }
            }
            self.descend(true)?;
            return self.settle_backward();
        }
    }

    /// After descending to the last entry of a leaf: skip empty leaves backwards.
    fn settle_backward(&mut self) -> Result<Option<Entry<'a>>> {
        let (n, i) = *self.stack.last().expect("non-empty stack");
        if i < n.len() {
            self.valid = true;
            return self.current();
        }
        // Empty leaf (only possible for an empty root): nothing before it.
        if self.stack.len() == 1 {
            self.valid = false;
            return Ok(None);
        }
        self.stack.last_mut().expect("non-empty").1 = 0;
        self.step_back()
    }
}

/// Iterator over the entries of a bounded key range, in key order; double-ended.
///
/// Items are `Result`s: a corrupt page ends the iteration with one `Err`.
pub struct Range<'a> {
    front: Cursor<'a>,
    back: Cursor<'a>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    front_started: bool,
    back_started: bool,
    last_front: Option<&'a [u8]>,
    last_back: Option<&'a [u8]>,
    done: bool,
}

impl<'a> Range<'a> {
    pub(crate) fn new(
        src: PageSource<'a>,
        root: RootRef<'a>,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Range<'a> {
        Range {
            front: Cursor::new(src, root),
            back: Cursor::new(src, root),
            start: start.map(|s| s.to_vec()),
            end: end.map(|s| s.to_vec()),
            front_started: false,
            back_started: false,
            last_front: None,
            last_back: None,
            done: false,
        }
    }

    fn below_end(&self, k: &[u8]) -> bool {
        match &self.end {
            Bound::Unbounded => true,
            Bound::Included(e) => k <= e.as_slice(),
            Bound::Excluded(e) => k < e.as_slice(),
        }
    }

    fn above_start(&self, k: &[u8]) -> bool {
        match &self.start {
            Bound::Unbounded => true,
            Bound::Included(s) => k >= s.as_slice(),
            Bound::Excluded(s) => k > s.as_slice(),
        }
    }

    fn front_step(&mut self) -> Result<Option<Entry<'a>>> {
        if self.front_started {
            return self.front.next();
        }
        self.front_started = true;
        match &self.start {
            Bound::Unbounded => self.front.first(),
            Bound::Included(s) => {
                let s = s.clone();
                self.front.seek(&s)
            }
            Bound::Excluded(s) => {
                let s = s.clone();
                match self.front.seek(&s)? {
                    Some((k, _)) if k == s.as_slice() => self.front.next(),
                    other => Ok(other),
                }
            }
        }
    }

    fn back_step(&mut self) -> Result<Option<Entry<'a>>> {
        if self.back_started {
            return self.back.prev();
        }
        self.back_started = true;
        match &self.end {
            Bound::Unbounded => self.back.last(),
            Bound::Included(e) => {
                let e = e.clone();
                self.back.seek_for_prev(&e)
            }
            Bound::Excluded(e) => {
                let e = e.clone();
                match self.back.seek_for_prev(&e)? {
                    Some((k, _)) if k == e.as_slice() => self.back.prev(),
                    other => Ok(other),
                }
            }
        }
    }
}

impl<'a> Iterator for Range<'a> {
    type Item = Result<Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.front_step() {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Ok(Some((k, v))) => {
                if !self.below_end(k) || self.last_back.is_some_and(|b| k >= b) {
                    self.done = true;
                    return None;
                }
                self.last_front = Some(k);
                Some(Ok((k, v)))
            }
        }
    }
}

impl<'a> DoubleEndedIterator for Range<'a> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.back_step() {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Ok(Some((k, v))) => {
                if !self.above_start(k) || self.last_front.is_some_and(|f| k <= f) {
                    self.done = true;
                    return None;
                }
                self.last_back = Some(k);
                Some(Ok((k, v)))
            }
        }
    }
}
