//! Byte encodings of what the store keeps in the backend, with decoders that return
//! [`Error::Corrupt`] on any malformed input instead of panicking.
//!
//! A stored key-value (the value of a history-bucket entry) is:
//! ```text
//! u8 format (1) | i64 create_revision | i64 mod_revision | i64 version | i64 lease
//! | u32 key_len | key | u32 value_len | value          (integers big-endian)
//! ```
//! A lease record (lease bucket, key = i64 ID big-endian) is `u8 format (1) | i64 ttl | i64
//! remaining_ttl`. Meta values are single big-endian integers.

use crate::error::Error;
use crate::types::KeyValue;

const KV_FORMAT: u8 = 1;
const LEASE_FORMAT: u8 = 1;

/// A key-value to encode, borrowing its key and value (so a record can be encoded without
/// building a [`KeyValue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value (empty for a tombstone).
    pub value: &'a [u8],
    /// Revision of the key's creation (0 for a tombstone).
    pub create_revision: i64,
    /// Revision of this change.
    pub mod_revision: i64,
    /// Version of the key (0 for a tombstone).
    pub version: i64,
    /// Attached lease (0: none).
    pub lease: i64,
}

impl<'a> From<&'a KeyValue> for KvRef<'a> {
    fn from(kv: &'a KeyValue) -> KvRef<'a> {
        KvRef {
            key: &kv.key,
            value: &kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

/// Length of the record [`encode_kv`] writes for a key and value of these lengths.
pub fn encoded_kv_len(key_len: usize, value_len: usize) -> usize {
    1 + 32 + 8 + key_len + value_len
}

/// Encodes a key-value for the history bucket.
pub fn encode_kv(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_kv_len(kv.key.len(), kv.value.len()));
    encode_kv_into(KvRef::from(kv), &mut out);
    out
}

/// Appends the [`encode_kv`] record of `kv` to `out`.
pub fn encode_kv_into(kv: KvRef<'_>, out: &mut Vec<u8>) {
    out.reserve(encoded_kv_len(kv.key.len(), kv.value.len()));
    out.push(KV_FORMAT);
    out.extend_from_slice(&kv.create_revision.to_be_bytes());
    out.extend_from_slice(&kv.mod_revision.to_be_bytes());
    out.extend_from_slice(&kv.version.to_be_bytes());
    out.extend_from_slice(&kv.lease.to_be_bytes());
    out.extend_from_slice(&(kv.key.len() as u32).to_be_bytes());
    out.extend_from_slice(kv.key);
    out.extend_from_slice(&(kv.value.len() as u32).to_be_bytes());
    out.extend_from_slice(kv.value);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.buf.len() < n {
            return Err(Error::Corrupt("truncated record".into()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

/// Decodes a key-value written by [`encode_kv`].
pub fn decode_kv(bytes: &[u8]) -> Result<KeyValue, Error> {
    let mut r = Reader { buf: bytes };
    let format = r.u8()?;
    if format != KV_FORMAT {
        return Err(Error::Corrupt(format!("unknown key-value format {format}")));
    }
    let kv = KeyValue {
        create_revision: r.i64()?,
        mod_revision: r.i64()?,
        version: r.i64()?,
        lease: r.i64()?,
        key: r.bytes()?,
        value: r.bytes()?,
    };
    if !r.buf.is_empty() {
        return Err(Error::Corrupt("trailing bytes after key-value".into()));
    }
    Ok(kv)
}

/// Encodes a lease record: granted TTL and checkpointed remaining TTL (seconds).
pub fn encode_lease(ttl: i64, remaining_ttl: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    out.push(LEASE_FORMAT);
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&remaining_ttl.to_be_bytes());
    out
}

/// Decodes a lease record into (ttl, remaining_ttl).
pub fn decode_lease(bytes: &[u8]) -> Result<(i64, i64), Error> {
    let mut r = Reader { buf: bytes };
    let format = r.u8()?;
    if format != LEASE_FORMAT {
        return Err(Error::Corrupt(format!("unknown lease format {format}")));
    }
    let out = (r.i64()?, r.i64()?);
    if !r.buf.is_empty() {
        return Err(Error::Corrupt("trailing bytes after lease".into()));
    }
    Ok(out)
}

/// Decodes a lease-bucket key.
pub fn decode_lease_id(bytes: &[u8]) -> Result<i64, Error> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("lease key of {} bytes", bytes.len())))?;
    Ok(i64::from_be_bytes(arr))
}

/// Decodes a meta integer.
pub fn decode_u64(bytes: &[u8]) -> Result<u64, Error> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("meta value of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn kv_roundtrip(key in proptest::collection::vec(any::<u8>(), 0..20),
                        value in proptest::collection::vec(any::<u8>(), 0..50),
                        c in any::<i64>(), m in any::<i64>(), v in any::<i64>(), l in any::<i64>()) {
            let kv = KeyValue { key, value, create_revision: c, mod_revision: m, version: v, lease: l };
            let bytes = encode_kv(&kv);
            prop_assert_eq!(bytes.len(), encoded_kv_len(kv.key.len(), kv.value.len()));
            prop_assert_eq!(decode_kv(&bytes).unwrap(), kv.clone());
            // appending to a buffer that holds something already writes the same bytes
            let mut out = vec![9u8; 5];
            encode_kv_into(KvRef::from(&kv), &mut out);
            prop_assert_eq!(&out[..5], &[9u8; 5][..]);
            prop_assert_eq!(&out[5..], bytes.as_slice());
        }

        #[test]
        fn byte_soup_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_kv(&bytes);
            let _ = decode_lease(&bytes);
            let _ = decode_lease_id(&bytes);
            let _ = decode_u64(&bytes);
        }

        #[test]
        fn truncations_are_errors(cut in 0usize..40) {
            let kv = KeyValue { key: b"k".to_vec(), value: b"value".to_vec(), ..Default::default() };
            let bytes = encode_kv(&kv);
            if cut < bytes.len() {
                prop_assert!(matches!(decode_kv(&bytes[..cut]), Err(Error::Corrupt(_))));
            }
        }
    }

    #[test]
    fn lease_roundtrip() {
        assert_eq!(decode_lease(&encode_lease(30, 12)).unwrap(), (30, 12));
        assert!(decode_lease(&[2, 0]).is_err());
    }
}
