//! Range reads with etcd's exact semantics (`server/etcdserver/txn/range.go`).
//!
//! Steps, in etcd's order: resolve the revision (<= 0 means current; above current is a future
//! revision; below the compaction point is compacted); walk the key index (counting every key,
//! fetching at most `limit + 1` when the limit can be pushed down); drop keys outside the
//! min/max mod/create filters; sort; truncate to `limit` setting `more`; strip values for
//! `keys_only`. `count` is the number of keys in the range, before filters and limit.

use crate::error::Error;
use crate::key_index::TreeIndex;
use crate::revision::Revision;
use crate::types::{KeyValue, RangeRequest, RangeResponse, SortOrder, SortTarget};
use std::cmp::Ordering;

/// Fetches the stored key-value of a (put) revision.
pub(crate) type Fetch<'a> = dyn Fn(Revision) -> Result<KeyValue, Error> + 'a;

/// Resolves the revision a read asks for.
pub(crate) fn resolve_rev(requested: i64, current: i64, compact: i64) -> Result<i64, Error> {
    if requested > current {
        return Err(Error::FutureRevision);
    }
    let rev = if requested <= 0 { current } else { requested };
    if rev < compact {
        return Err(Error::Compacted);
    }
    Ok(rev)
}

/// The limit etcd passes down to the index walk (0 = everything): none when a sort order is
/// given or a min/max filter is set; otherwise one extra to detect `more`.
///
/// Quirk kept on purpose (checked against etcd 3.4): the test is on `sort_order`, not on the
/// target, so `sort_order = NONE` with a non-key target pushes the limit down and then sorts
/// only the first `limit + 1` keys of the range.
fn pushed_down_limit(req: &RangeRequest) -> usize {
    if req.sort_order != SortOrder::None
        || req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0
    {
        return 0;
    }
    if req.limit > 0 {
        req.limit as usize + 1
    } else {
        0
    }
}

/// Executes a range read. `header_rev` is the revision reported in the response header (the
/// store's current revision, or the txn's visible revision inside a txn).
pub(crate) fn range(
    index: &TreeIndex,
    fetch: &Fetch<'_>,
    req: &RangeRequest,
    current: i64,
    compact: i64,
    header_rev: i64,
) -> Result<RangeResponse, Error> {
    let rev = resolve_rev(req.revision, current, compact)?;
    let limit = pushed_down_limit(req);
    let mut count = 0i64;
    let mut revs = Vec::new();
    index.range(&req.key, &req.range_end, rev, |_, found| {
        count += 1;
        if !req.count_only && (limit == 0 || revs.len() < limit) {
            revs.push(found.modified);
        }
        true
    });
    if req.count_only {
        return Ok(RangeResponse {
            revision: header_rev,
            kvs: Vec::new(),
            more: false,
            count,
        });
    }
    let mut kvs = Vec::with_capacity(revs.len());
    for r in revs {
        kvs.push(fetch(r)?);
    }
    if req.min_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision >= req.min_mod_revision);
    }
    if req.max_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision <= req.max_mod_revision);
    }
    if req.min_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision >= req.min_create_revision);
    }
    if req.max_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision <= req.max_create_revision);
    }
    sort_kvs(&mut kvs, req.sort_order, req.sort_target);
    let mut more = false;
    if req.limit > 0 && kvs.len() > req.limit as usize {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Vec::new();
        }
    }
    Ok(RangeResponse {
        revision: header_rev,
        kvs,
        more,
        count,
    })
}

/// Sorts as etcd does: a non-key target with order NONE means ASCEND. Ties keep key order
/// (a stable sort of key-ordered input; etcd's order among ties is unspecified).
pub fn sort_kvs(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let order = if target != SortTarget::Key && order == SortOrder::None {
        SortOrder::Ascend
    } else {
        order
    };
    let cmp = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::None => {}
        SortOrder::Ascend => kvs.sort_by(cmp),
        SortOrder::Descend => kvs.sort_by(|a, b| cmp(b, a)),
    }
}

/// Every key-value of a range at `rev` (used by txn compares).
pub(crate) fn kvs_in(
    index: &TreeIndex,
    fetch: &Fetch<'_>,
    key: &[u8],
    range_end: &[u8],
    rev: i64,
) -> Result<Vec<KeyValue>, Error> {
    let mut revs = Vec::new();
    index.range(key, range_end, rev, |_, found| {
        revs.push(found.modified);
        true
    });
    revs.into_iter().map(fetch).collect()
}
