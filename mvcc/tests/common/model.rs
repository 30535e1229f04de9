//! A deliberately simple reference model of etcd's semantics: it keeps a full copy of the
//! key space at every revision and answers everything by looking at those copies. Slow and
//! obviously right; the store must agree with it on every response.

#![allow(dead_code)]

use keel_mvcc::*;
use std::collections::BTreeMap;

type State = BTreeMap<Vec<u8>, KeyValue>;

pub struct Model {
    /// states[r] = the key space at revision r.
    pub states: Vec<State>,
    pub compact: i64,
    pub leases: BTreeMap<i64, i64>,
    pub consistent_index: u64,
    pub min_ttl: i64,
    /// Every event ever, in revision/sub-revision order.
    pub log: Vec<Event>,
}

fn in_range(k: &[u8], key: &[u8], end: &[u8]) -> bool {
    if end.is_empty() {
        k == key
    } else if end == [0] {
        k >= key
    } else {
        k >= key && k < end
    }
}

struct Work {
    begin: i64,
    changes: i64,
    cur: State,
    events: Vec<Event>,
}

impl Work {
    fn visible(&self) -> i64 {
        self.begin + if self.changes > 0 { 1 } else { 0 }
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            states: vec![State::new(), State::new()], // a fresh store is at revision 1
            compact: -1,
            leases: BTreeMap::new(),
            consistent_index: 0,
            min_ttl: DEFAULT_MIN_LEASE_TTL,
            log: vec![],
        }
    }

    pub fn rev(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    pub fn apply(&mut self, index: u64, req: &Request) -> Result<Response, Error> {
        if index <= self.consistent_index {
            return Err(Error::AlreadyApplied {
                index,
                consistent_index: self.consistent_index,
            });
        }
        self.consistent_index = index;
        validate_request(req, 128)?;
        let rev = self.rev();
        match req {
            Request::Range(r) => self.range(r, rev, None).map(Response::Range),
            Request::Put(p) => {
                self.check_put(p)?;
                let mut w = self.work();
                let resp = self.put(&mut w, p);
                self.finish(w);
                Ok(Response::Put(resp))
            }
            Request::DeleteRange(d) => {
                let mut w = self.work();
                let resp = self.delete(&mut w, d);
                self.finish(w);
                Ok(Response::DeleteRange(resp))
            }
            Request::Txn(t) => {
                let mut path = Vec::new();
                self.path(t, &mut path);
                self.check_txn(t, &mut path.clone().into_iter())?;
                let mut w = self.work();
                let mut resp = self.exec(&mut w, t, &mut path.into_iter())?;
                self.finish(w);
                resp.revision = self.rev();
                Ok(Response::Txn(resp))
            }
            Request::Compact(c) => {
                if c.revision <= self.compact {
                    return Err(Error::Compacted);
                }
                if c.revision > rev {
                    return Err(Error::FutureRevision);
                }
                self.compact = c.revision;
                Ok(Response::Compact(CompactionResponse { revision: rev }))
            }
            Request::LeaseGrant(g) => {
                if g.ttl > MAX_LEASE_TTL {
                    return Err(Error::LeaseTtlTooLarge);
                }
                assert_ne!(g.id, 0, "model needs explicit lease ids");
                if self.leases.contains_key(&g.id) {
                    return Err(Error::LeaseExists);
                }
                let ttl = g.ttl.max(self.min_ttl);
                self.leases.insert(g.id, ttl);
                Ok(Response::LeaseGrant(LeaseGrantResponse {
                    revision: rev,
                    id: g.id,
                    ttl,
                }))
            }
            Request::LeaseRevoke(r) => {
                if self.leases.remove(&r.id).is_none() {
                    return Err(Error::LeaseNotFound);
                }
                let mut w = self.work();
                let keys: Vec<Vec<u8>> = w
                    .cur
                    .iter()
                    .filter(|(_, kv)| kv.lease == r.id)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    w.cur.remove(&k);
                    w.changes += 1;
                    let kv = KeyValue {
                        key: k,
                        mod_revision: w.begin + 1,
                        ..Default::default()
                    };
                    w.events.push(Event {
                        kind: EventType::Delete,
                        kv,
                        prev_kv: None,
                    });
                }
                self.finish(w);
                Ok(Response::LeaseRevoke(LeaseRevokeResponse {
                    revision: self.rev(),
                }))
            }
            Request::LeaseCheckpoint(_) => Ok(Response::LeaseCheckpoint(LeaseCheckpointResponse {
                revision: rev,
            })),
            Request::Noop | Request::SetMembership(_) | Request::SetMeta(..) => {
                Ok(Response::Noop { revision: rev })
            }
        }
    }

    fn work(&self) -> Work {
        Work {
            begin: self.rev(),
            changes: 0,
            cur: self.states.last().unwrap().clone(),
            events: vec![],
        }
    }

    fn finish(&mut self, w: Work) {
        if w.changes > 0 {
            self.states.push(w.cur);
            self.log.extend(w.events);
        }
    }

    /// A read: at `rev` (None = the live txn state `cur` when the request reads "now").
    pub fn range(
        &self,
        r: &RangeRequest,
        current: i64,
        cur: Option<&State>,
    ) -> Result<RangeResponse, Error> {
        if r.revision > current {
            return Err(Error::FutureRevision);
        }
        let at = if r.revision <= 0 { current } else { r.revision };
        if at < self.compact {
            return Err(Error::Compacted);
        }
        let state = match cur {
            Some(s) if at == current => s,
            _ => &self.states[at as usize],
        };
        let mut kvs: Vec<KeyValue> = state
            .values()
            .filter(|kv| in_range(&kv.key, &r.key, &r.range_end))
            .cloned()
            .collect();
        let count = kvs.len() as i64;
        if r.count_only {
            return Ok(RangeResponse {
                revision: current,
                kvs: vec![],
                more: false,
                count,
            });
        }
        // etcd's quirk (checked on 3.4): with sort_order NONE and no filters the limit + 1 is
        // applied in key order *before* sorting by a non-key target.
        let filtered = r.min_mod_revision != 0
            || r.max_mod_revision != 0
            || r.min_create_revision != 0
            || r.max_create_revision != 0;
        if r.limit > 0 && r.sort_order == SortOrder::None && !filtered {
            kvs.truncate(r.limit as usize + 1);
        }
        kvs.retain(|kv| {
            (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
                && (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
                && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
                && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
        });
        let mut order = r.sort_order;
        if r.sort_target != SortTarget::Key && order == SortOrder::None {
            order = SortOrder::Ascend;
        }
        let key_of = |kv: &KeyValue| -> (i64, Vec<u8>) {
            match r.sort_target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, vec![]),
                SortTarget::Create => (kv.create_revision, vec![]),
                SortTarget::Mod => (kv.mod_revision, vec![]),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        match order {
            SortOrder::None => {}
            SortOrder::Ascend => kvs.sort_by_key(|kv| key_of(kv)),
            SortOrder::Descend => kvs.sort_by_key(|kv| std::cmp::Reverse(key_of(kv))),
        }
        let mut more = false;
        if r.limit > 0 && kvs.len() as i64 > r.limit {
            kvs.truncate(r.limit as usize);
            more = true;
        }
        if r.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeResponse {
            revision: current,
            kvs,
            more,
            count,
        })
    }

    fn check_put(&self, p: &PutRequest) -> Result<(), Error> {
        let cur = self.states.last().unwrap();
        if (p.ignore_value || p.ignore_lease) && !cur.contains_key(&p.key) {
            return Err(Error::KeyNotFound);
        }
        if p.lease != 0 && !self.leases.contains_key(&p.lease) {
            return Err(Error::LeaseNotFound);
        }
        Ok(())
    }

    fn put(&self, w: &mut Work, p: &PutRequest) -> PutResponse {
        let prev = w.cur.get(&p.key).cloned();
        let rev = w.begin + 1;
        w.changes += 1;
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision: prev.as_ref().map_or(rev, |kv| kv.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |kv| kv.version + 1),
            value: if p.ignore_value {
                prev.as_ref().map(|kv| kv.value.clone()).unwrap_or_default()
            } else {
                p.value.clone()
            },
            lease: if p.ignore_lease {
                prev.as_ref().map_or(0, |kv| kv.lease)
            } else {
                p.lease
            },
        };
        w.cur.insert(p.key.clone(), kv.clone());
        w.events.push(Event {
            kind: EventType::Put,
            kv,
            prev_kv: None,
        });
        PutResponse {
            revision: rev,
            prev_kv: if p.prev_kv { prev } else { None },
        }
    }

    fn delete(&self, w: &mut Work, d: &DeleteRangeRequest) -> DeleteRangeResponse {
        let keys: Vec<Vec<u8>> = w
            .cur
            .keys()
            .filter(|k| in_range(k, &d.key, &d.range_end))
            .cloned()
            .collect();
        let mut prev_kvs = vec![];
        for k in &keys {
            let kv = w.cur.remove(k).unwrap();
            let ev = KeyValue {
                key: k.clone(),
                mod_revision: w.begin + 1,
                ..Default::default()
            };
            w.events.push(Event {
                kind: EventType::Delete,
                kv: ev,
                prev_kv: None,
            });
            if d.prev_kv {
                prev_kvs.push(kv);
            }
            w.changes += 1;
        }
        DeleteRangeResponse {
            revision: w.visible(),
            deleted: keys.len() as i64,
            prev_kvs,
        }
    }

    fn compare(&self, c: &Compare) -> bool {
        let cur = self.states.last().unwrap();
        let kvs: Vec<&KeyValue> = cur
            .values()
            .filter(|kv| in_range(&kv.key, &c.key, &c.range_end))
            .collect();
        let zero = KeyValue::default();
        let check = |kv: &KeyValue| {
            let ord = match &c.target {
                CompareTarget::Version(v) => kv.version.cmp(v),
                CompareTarget::Create(v) => kv.create_revision.cmp(v),
                CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
                CompareTarget::Value(v) => kv.value.cmp(v),
                CompareTarget::Lease(v) => kv.lease.cmp(v),
            };
            match c.result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::NotEqual => ord.is_ne(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
            }
        };
        if kvs.is_empty() {
            return !matches!(c.target, CompareTarget::Value(_)) && check(&zero);
        }
        kvs.into_iter().all(check)
    }

    fn path(&self, t: &TxnRequest, out: &mut Vec<bool>) {
        let ok = t.compare.iter().all(|c| self.compare(c));
        out.push(ok);
        for op in if ok { &t.success } else { &t.failure } {
            if let RequestOp::Txn(n) = op {
                self.path(n, out);
            }
        }
    }

    fn check_txn(
        &self,
        t: &TxnRequest,
        path: &mut impl Iterator<Item = bool>,
    ) -> Result<(), Error> {
        let ok = path.next().unwrap();
        for op in if ok { &t.success } else { &t.failure } {
            match op {
                RequestOp::Put(p) => self.check_put(p)?,
                RequestOp::Range(r) => {
                    if r.revision > self.rev() {
                        return Err(Error::FutureRevision);
                    }
                    if r.revision != 0 && r.revision < self.compact {
                        return Err(Error::Compacted);
                    }
                }
                RequestOp::Txn(n) => self.check_txn(n, path)?,
                RequestOp::DeleteRange(_) => {}
            }
        }
        Ok(())
    }

    fn exec(
        &self,
        w: &mut Work,
        t: &TxnRequest,
        path: &mut impl Iterator<Item = bool>,
    ) -> Result<TxnResponse, Error> {
        let ok = path.next().unwrap();
        let mut responses = vec![];
        for op in if ok { &t.success } else { &t.failure } {
            responses.push(match op {
                RequestOp::Range(r) => {
                    let v = w.visible();
                    let cur = w.cur.clone();
                    ResponseOp::Range(self.range(r, v, Some(&cur))?)
                }
                RequestOp::Put(p) => ResponseOp::Put(self.put(w, p)),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete(w, d)),
                RequestOp::Txn(n) => {
                    let mut r = self.exec(w, n, path)?;
                    r.revision = 0;
                    ResponseOp::Txn(r)
                }
            });
        }
        Ok(TxnResponse {
            revision: w.visible(),
            succeeded: ok,
            responses,
        })
    }

    /// Events with revision in [from, to] on [key, end), as a watcher sees them (no prev_kv).
    pub fn events(&self, key: &[u8], end: &[u8], from: i64, to: i64) -> Vec<Event> {
        self.log
            .iter()
            .filter(|e| {
                e.kv.mod_revision >= from
                    && e.kv.mod_revision <= to
                    && in_range(&e.kv.key, key, end)
            })
            .cloned()
            .collect()
    }
}
