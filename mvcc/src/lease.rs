//! Lease bookkeeping: granted TTLs, attached keys, and the leader's deadlines.
//!
//! What is replicated (through the log, persisted in the lease bucket): a lease's ID, granted
//! TTL and checkpointed remaining TTL. Which keys are attached is derived from the keys' own
//! `lease` field. What is *not* replicated: deadlines. Like etcd's lessor, only the leader
//! ("primary") tracks them, from a clock the caller passes in (milliseconds, any monotonic
//! origin). When a member becomes leader it calls [`crate::Store::lease_promote`], which gives
//! every lease a fresh deadline of now + (checkpointed remaining TTL, or the full TTL). Expired
//! leases are found with [`crate::Store::lease_expired`] and revoked by proposing a normal
//! `LeaseRevoke` through consensus.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// etcd's `MaxLeaseTTL` (seconds).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;
/// etcd's default minimum TTL: ceil(1.5 x 1 s election timeout) = 2 s.
pub const DEFAULT_MIN_LEASE_TTL: i64 = 2;

/// One lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Granted TTL (seconds).
    pub ttl: i64,
    /// Checkpointed remaining TTL (seconds); 0 = none.
    pub remaining_ttl: i64,
    /// Attached keys.
    pub keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    pub fn new(ttl: i64, remaining_ttl: i64) -> Lease {
        Lease {
            ttl,
            remaining_ttl,
            keys: BTreeSet::new(),
        }
    }

    /// Seconds the lease lives from a refresh: the checkpoint if there is one, else the TTL.
    pub fn refresh_ttl(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }
}

/// All leases.
#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    pub leases: BTreeMap<i64, Lease>,
    /// Key -> lease, for keys that carry one (etcd's lessor `itemMap`).
    pub key_lease: HashMap<Vec<u8>, i64>,
}

/// The leader-local half: deadlines from the caller's clock. Kept apart from the replicated
/// state (behind its own small lock) so keep-alives never wait for a batch being committed.
#[derive(Debug, Default)]
pub(crate) struct LeaseClock {
    /// True between `lease_promote` and `lease_demote`.
    pub primary: bool,
    /// The latest clock reading the caller passed in (used to start deadlines of leases granted
    /// while primary, since applying has no clock).
    pub last_now_ms: u64,
    /// Expiry time (caller milliseconds) per lease; only on the primary.
    pub deadlines: HashMap<i64, u64>,
}

impl LeaseClock {
    /// Starts the deadline of a lease just granted (when primary).
    pub fn granted(&mut self, id: i64, ttl_secs: i64) {
        if self.primary {
            let d = self
                .last_now_ms
                .saturating_add((ttl_secs.max(0) as u64).saturating_mul(1000));
            self.deadlines.insert(id, d);
        }
    }

    pub fn observe(&mut self, now_ms: u64) {
        self.last_now_ms = self.last_now_ms.max(now_ms);
    }
}

impl LeaseTable {
    /// Attaches `key` to lease `id` (0 = none), detaching it from its previous lease.
    pub fn attach(&mut self, id: i64, key: &[u8]) {
        self.detach(key);
        if id == 0 {
            return;
        }
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key.to_vec());
            self.key_lease.insert(key.to_vec(), id);
        }
    }

    /// Detaches `key` from its lease, if any.
    pub fn detach(&mut self, key: &[u8]) {
        if let Some(id) = self.key_lease.remove(key) {
            if let Some(l) = self.leases.get_mut(&id) {
                l.keys.remove(key);
            }
        }
    }

    /// Removes a lease and forgets its keys' attachment.
    pub fn remove(&mut self, id: i64) -> Option<Lease> {
        let lease = self.leases.remove(&id)?;
        for k in &lease.keys {
            self.key_lease.remove(k);
        }
        Some(lease)
    }
}

/// A deterministic lease ID candidate for an entry with no requested ID (splitmix64 of the raft
/// index, made positive). Every member applies the same entry, so every member picks the same.
pub(crate) fn id_candidate(raft_index: u64) -> i64 {
    let mut z = raft_index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z & (i64::MAX as u64)) as i64
}
