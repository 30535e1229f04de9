//! gRPC status codes and the status carried in trailers.

use std::fmt;

/// The gRPC status codes (grpc/grpc `doc/statuscodes.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The numeric value sent in the `grpc-status` trailer.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// [`Code::from_i32`] for an unsigned value (unknown numbers map to `Unknown`, as grpc-go).
    pub fn from_u32(n: u32) -> Code {
        Code::from_i32(i32::try_from(n).unwrap_or(-1))
    }

    /// The name as grpc-go prints it (`code = OutOfRange`; note grpc-go's `Canceled`).
    pub fn name(self) -> &'static str {
        use Code::*;
        match self {
            Ok => "OK",
            Cancelled => "Canceled",
            Unknown => "Unknown",
            InvalidArgument => "InvalidArgument",
            DeadlineExceeded => "DeadlineExceeded",
            NotFound => "NotFound",
            AlreadyExists => "AlreadyExists",
            PermissionDenied => "PermissionDenied",
            ResourceExhausted => "ResourceExhausted",
            FailedPrecondition => "FailedPrecondition",
            Aborted => "Aborted",
            OutOfRange => "OutOfRange",
            Unimplemented => "Unimplemented",
            Internal => "Internal",
            Unavailable => "Unavailable",
            DataLoss => "DataLoss",
            Unauthenticated => "Unauthenticated",
        }
    }

    /// Maps a numeric code; unknown numbers become [`Code::Unknown`].
    pub fn from_i32(v: i32) -> Code {
        use Code::*;
        match v {
            0 => Ok,
            1 => Cancelled,
            2 => Unknown,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A call's outcome: code plus human-readable message (sent percent-encoded in `grpc-message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The status code.
    pub code: Code,
    /// The message; clients such as etcd's clientv3 match on its exact text.
    pub message: String,
}

impl Status {
    /// A status with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// Success.
    pub fn ok() -> Status {
        Status {
            code: Code::Ok,
            message: String::new(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "grpc status {:?} ({}): {}",
            self.code, self.code as i32, self.message
        )
    }
}

impl std::error::Error for Status {}

/// Percent-encodes a status message as gRPC requires: bytes outside printable ASCII and `%`.
pub fn percent_encode(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Decodes a percent-encoded `grpc-message`; malformed escapes are kept literally (as gRPC says).
pub fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            let hex = std::str::from_utf8(&raw[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_round_trip() {
        let msg = "etcdserver: h\u{e9}llo 100% \n done";
        let enc = percent_encode(msg);
        assert_eq!(enc, b"etcdserver: h%C3%A9llo 100%25 %0A done".to_vec());
        assert!(enc.iter().all(|b| (0x20..=0x7e).contains(b)));
        assert_eq!(percent_decode(&enc), msg);
        // Malformed escapes are kept as they are.
        assert_eq!(percent_decode(b"50%zz and %4"), "50%zz and %4");
    }

    #[test]
    fn codes_map_both_ways() {
        for v in 0..=16 {
            assert_eq!(Code::from_i32(v) as i32, v);
        }
        assert_eq!(Code::from_i32(99), Code::Unknown);
    }
}
