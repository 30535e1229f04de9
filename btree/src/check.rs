//! The integrity check: does the file describe exactly one well-formed state?
//!
//! For one snapshot (a meta) it verifies that
//! * every page in `2..page_count` is reachable exactly once (from the bucket catalog, a bucket
//!   tree, an overflow value or the freelist run) or listed free, never both, never neither;
//! * every reachable page passes its checksum, names itself in its header and has the expected
//!   kind;
//! * keys are strictly increasing inside every node, every subtree's keys lie between its
//!   separator and the next one, and all leaves of a tree are at the same depth;
//! * each bucket's stored key count matches its tree;
//! * optionally, that the writer's in-memory freelist equals the freelist on disk.

use crate::error::{Error, PageId, Result};
use crate::freelist::FreeList;
use crate::mapping::PageSource;
use crate::meta::Meta;
use crate::page::{self, Kind, LeafValue, Page};
use crate::txn::decode_record;

/// What the integrity check saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Transaction id of the checked snapshot.
    pub txid: u64,
    /// Page size.
    pub page_size: u32,
    /// High-water mark of the snapshot.
    pub page_count: u64,
    /// Pages reachable from the meta (tree nodes, overflow runs, freelist run).
    pub reachable_pages: u64,
    /// Pages listed as free.
    pub free_pages: u64,
    /// Per-bucket figures, sorted by name.
    pub buckets: Vec<BucketReport>,
}

/// Figures for one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketReport {
    /// Bucket name.
    pub name: Vec<u8>,
    /// Keys found by walking the tree.
    pub keys: u64,
    /// Levels of the tree (0 = empty, 1 = a single leaf).
    pub depth: u32,
    /// Branch pages (counting every page of multi-page runs).
    pub branch_pages: u64,
    /// Leaf pages.
    pub leaf_pages: u64,
    /// Overflow pages holding large values.
    pub overflow_pages: u64,
}

const MAX_PROBLEMS: usize = 100;

struct Checker<'a> {
    src: PageSource<'a>,
    /// 0 unseen, 1 reachable, 2 free.
    seen: Vec<u8>,
    problems: Vec<String>,
}

impl<'a> Checker<'a> {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    fn mark(&mut self, start: PageId, n: u64, how: u8, what: &str) -> bool {
        if start < 2 || start.checked_add(n).is_none_or(|e| e > self.src.page_count) {
            self.problem(format!(
                "{what}: pages {start}+{n} outside 2..{}",
                self.src.page_count
            ));
            return false;
        }
        let mut ok = true;
        for p in start..start + n {
            let s = &mut self.seen[p as usize];
            if *s != 0 {
                let prev = if *s == 1 { "reachable" } else { "free" };
                ok = false;
                self.problem(format!("page {p} ({what}) is already {prev}"));
            } else {
                *s = how;
            }
        }
        ok
    }

    fn load(&mut self, id: PageId, kinds: &[Kind], what: &str) -> Option<Page<'a>> {
        match self.src.page(id, kinds) {
            Ok(p) => {
                let n = (p.data.len() / self.src.page_size()) as u64;
                if self.mark(id, n, 1, what) {
                    Some(p)
                } else {
                    None
                }
            }
            Err(e) => {
                self.problem(format!("{what}: {e}"));
                None
            }
        }
    }

    /// Walk a tree, recording figures in `br` (and, with `collect`, leaf entries in `leaves`).
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        id: PageId,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        level: u32,
        leaf_level: &mut Option<u32>,
        br: &mut BucketReport,
        leaves: &mut Vec<(Vec<u8>, Vec<u8>)>,
        collect: bool,
    ) {
        let what = format!("bucket {:?}", String::from_utf8_lossy(&br.name));
        if level as usize > crate::MAX_DEPTH {
            self.problem(format!("{what}: tree deeper than {}", crate::MAX_DEPTH));
            return;
        }
        let Some(p) = self.load(id, &[Kind::Branch, Kind::Leaf], &what) else {
            return;
        };
        let pages = (p.data.len() / self.src.page_size()) as u64;
        let mut keys: Vec<&[u8]> = Vec::with_capacity(p.count);
        for i in 0..p.count {
            match p.key(i) {
                Ok(k) => keys.push(k),
                Err(e) => {
                    self.problem(format!("{what}: {e}"));
                    return;
                }
            }
        }
        for w in keys.windows(2) {
            if w[0] >= w[1] {
                self.problem(format!("{what}: page {id}: keys out of order"));
                return;
            }
        }
        if let (Some(lo), Some(first)) = (lo, keys.first()) {
            if *first < lo {
                self.problem(format!("{what}: page {id}: first key below its separator"));
            }
        }
        if let (Some(hi), Some(last)) = (hi, keys.last()) {
            if *last >= hi {
                self.problem(format!(
                    "{what}: page {id}: last key not below the next separator"
                ));
            }
        }
        if p.count == 0 {
            self.problem(format!("{what}: page {id}: empty node"));
        }
        match p.kind {
            Kind::Leaf => {
                br.leaf_pages += pages;
                br.keys += p.count as u64;
                match leaf_level {
                    None => *leaf_level = Some(level),
                    Some(l) if *l != level => {
                        self.problem(format!("{what}: leaf {id} at depth {level}, others at {l}"))
                    }
                    _ => {}
                }
                for (i, key) in keys.iter().enumerate() {
                    match p.leaf_value(i) {
                        Ok(LeafValue::Inline(v)) => {
                            if collect {
                                leaves.push((key.to_vec(), v.to_vec()));
                            }
                        }
                        Ok(LeafValue::Overflow(pg, len)) => {
                            if let Some(op) = self.load(pg, &[Kind::Overflow], &what) {
                                let n = (op.data.len() / self.src.page_size()) as u64;
                                br.overflow_pages += n;
                                if n != page::overflow_pages(len, self.src.page_size()) {
                                    self.problem(format!(
                                        "{what}: overflow run {pg} has {n} pages for {len} bytes"
                                    ));
                                }
                                match op.overflow_value(len) {
                                    Ok(v) => {
                                        if collect {
                                            leaves.push((key.to_vec(), v.to_vec()));
                                        }
                                    }
                                    Err(e) => self.problem(format!("{what}: {e}")),
                                }
                            }
                        }
                        Err(e) => self.problem(format!("{what}: {e}")),
                    }
                }
            }
            Kind::Branch => {
                br.branch_pages += pages;
                for i in 0..p.count {
                    let child = match p.child(i) {
                        Ok(c) => c,
                        Err(e) => {
                            self.problem(format!("{what}: {e}"));
                            continue;
                        }
                    };
                    let clo = Some(keys[i]);
                    let chi = if i + 1 < keys.len() {
                        Some(keys[i + 1])
                    } else {
                        hi
                    };
                    self.walk(child, clo, chi, level + 1, leaf_level, br, leaves, collect);
                }
            }
            _ => unreachable!("load checked the kind"),
        }
    }
}

/// Check the snapshot described by `meta`. With `freelist`, also compare the writer's in-memory
/// freelist with the one on disk.
pub(crate) fn check_snapshot(
    src: &PageSource<'_>,
    meta: &Meta,
    freelist: Option<&FreeList>,
) -> Result<Report> {
    let mut c = Checker {
        src: *src,
        seen: vec![0u8; meta.page_count as usize],
        problems: Vec::new(),
    };
    let mut report = Report {
        txid: meta.txid,
        page_size: meta.page_size,
        page_count: meta.page_count,
        ..Report::default()
    };
    // The catalog: a tree whose values are bucket records.
    let mut catalog = BucketReport {
        name: b"<catalog>".to_vec(),
        ..BucketReport::default()
    };
    let mut records = Vec::new();
    if meta.catalog_root != 0 {
        let mut leaf_level = None;
        c.walk(
            meta.catalog_root,
            None,
            None,
            1,
            &mut leaf_level,
            &mut catalog,
            &mut records,
            true,
        );
    }
    for (name, rec) in records {
        let mut br = BucketReport {
            name: name.clone(),
            ..BucketReport::default()
        };
        match decode_record(&rec) {
            Err(e) => c.problem(format!(
                "catalog entry {:?}: {e}",
                String::from_utf8_lossy(&name)
            )),
            Ok((root, count)) => {
                if root != 0 {
                    let mut leaf_level = None;
                    c.walk(
                        root,
                        None,
                        None,
                        1,
                        &mut leaf_level,
                        &mut br,
                        &mut Vec::new(),
                        false,
                    );
                    br.depth = leaf_level.unwrap_or(0);
                }
                if br.keys != count {
                    c.problem(format!(
                        "bucket {:?}: catalog says {count} keys, tree has {}",
                        String::from_utf8_lossy(&name),
                        br.keys
                    ));
                }
            }
        }
        report.buckets.push(br);
    }
    // The freelist run and the extents it lists.
    let mut on_disk: Vec<(PageId, u64)> = Vec::new();
    if meta.freelist != 0 {
        if let Some(p) = c.load(meta.freelist, &[Kind::Freelist], "freelist run") {
            match p.freelist_extents() {
                Ok(ext) => on_disk = ext,
                Err(e) => c.problem(format!("freelist: {e}")),
            }
        }
    }
    if meta.commit_record != 0 {
        c.load(
            meta.commit_record,
            &[Kind::CommitRecord],
            "commit record run",
        );
    }
    for &(s, n) in &on_disk {
        c.mark(s, n, 2, "free extent");
    }
    report.free_pages = on_disk.iter().map(|e| e.1).sum();
    let mut leaked = Vec::new();
    for p in 2..meta.page_count {
        if c.seen[p as usize] == 0 {
            leaked.push(p);
        }
    }
    if !leaked.is_empty() {
        c.problem(format!(
            "{} page(s) neither reachable nor free, first: {:?}",
            leaked.len(),
            &leaked[..leaked.len().min(8)]
        ));
    }
    report.reachable_pages = c.seen.iter().filter(|&&s| s == 1).count() as u64;
    if let Some(fl) = freelist {
        let mut disk = on_disk.clone();
        disk.sort_unstable();
        let disk = FreeList::from_extents(&disk).all_extents(&[]);
        let mem = fl.all_extents(&[]);
        if disk != mem {
            c.problem(format!(
                "in-memory freelist ({} pages) differs from the one on disk ({} pages)",
                mem.iter().map(|e| e.1).sum::<u64>(),
                disk.iter().map(|e| e.1).sum::<u64>()
            ));
        }
    }
    if c.problems.is_empty() {
        Ok(report)
    } else {
        Err(Error::CheckFailed(c.problems))
    }
}
