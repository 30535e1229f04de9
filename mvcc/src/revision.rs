//! Revisions: the store's logical clock, and their byte encoding used as btree keys.
//!
//! Every write request that changes something takes the next *main* revision; the individual
//! changes inside it (the puts and deletes of a txn, the keys of a range delete) take *sub*
//! revisions 0, 1, 2... The pair orders every change ever made to the store.
//!
//! On disk a revision is the btree key of the history bucket: 8 bytes big-endian main, 8 bytes
//! big-endian sub, then one marker byte: `b'p'` for a put, `b't'` for a tombstone (delete). Big
//! endian makes byte order equal revision order, so a btree cursor walks history in time order.

use crate::error::Error;

/// A (main, sub) revision pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    /// The store-wide revision of the write request.
    pub main: i64,
    /// The position of this change inside the request.
    pub sub: i64,
}

/// Length of an encoded revision key.
pub const REV_KEY_LEN: usize = 17;
const MARK_PUT: u8 = b'p';
const MARK_TOMBSTONE: u8 = b't';

impl Revision {
    /// Builds a revision.
    pub fn new(main: i64, sub: i64) -> Revision {
        Revision { main, sub }
    }

    /// Encodes as a history-bucket key; `tombstone` marks a delete.
    pub fn to_key(self, tombstone: bool) -> [u8; REV_KEY_LEN] {
        let mut out = [0u8; REV_KEY_LEN];
        out[..8].copy_from_slice(&self.main.to_be_bytes());
        out[8..16].copy_from_slice(&self.sub.to_be_bytes());
        out[16] = if tombstone { MARK_TOMBSTONE } else { MARK_PUT };
        out
    }

    /// The smallest key of any change with this main revision or later (a scan bound).
    pub fn main_lower_bound(main: i64) -> [u8; 8] {
        main.to_be_bytes()
    }

    /// Decodes a history-bucket key into (revision, is_tombstone).
    pub fn from_key(key: &[u8]) -> Result<(Revision, bool), Error> {
        if key.len() != REV_KEY_LEN {
            return Err(Error::Corrupt(format!(
                "revision key of {} bytes",
                key.len()
            )));
        }
        let main = i64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
        let sub = i64::from_be_bytes(key[8..16].try_into().expect("8 bytes"));
        let tombstone = match key[16] {
            MARK_PUT => false,
            MARK_TOMBSTONE => true,
            m => return Err(Error::Corrupt(format!("revision key marker {m:#x}"))),
        };
        if main < 0 || sub < 0 {
            return Err(Error::Corrupt("negative revision".into()));
        }
        Ok((Revision { main, sub }, tombstone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip_and_order(a in 0i64..i64::MAX, b in 0i64..1000, c in 0i64..i64::MAX, d in 0i64..1000, t in any::<bool>()) {
            let x = Revision::new(a, b);
            let y = Revision::new(c, d);
            prop_assert_eq!(Revision::from_key(&x.to_key(t)).unwrap(), (x, t));
            prop_assert_eq!(x.cmp(&y), x.to_key(t).cmp(&y.to_key(t)));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Revision::from_key(&bytes);
        }
    }
}
