//! The one error type of keelctl: a message and the process exit code etcdctl uses for it.

use keel_net::client::ClientError;
use std::fmt;

/// etcdctl's exit codes (`etcdctl/ctlv3/command/error.go`).
pub mod exit {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// A request failed (server error, unreachable endpoint, ...).
    pub const ERROR: i32 = 1;
    /// The connection broke.
    pub const BAD_CONNECTION: i32 = 2;
    /// Malformed input on stdin (txn).
    pub const INVALID_INPUT: i32 = 3;
    /// An unknown option value (output format, sort order, consistency).
    pub const BAD_FEATURE: i32 = 4;
    /// A watch or stream was interrupted or canceled.
    pub const INTERRUPTED: i32 = 5;
    /// A local file could not be read or written.
    pub const IO: i32 = 6;
    /// Wrong number or shape of positional arguments.
    pub const BAD_ARGS: i32 = 128;
}

/// Why a keelctl command failed. `Display` gives the text after etcdctl's `Error: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlError {
    /// Process exit code (see [`exit`]).
    pub code: i32,
    /// Human-readable message, worded like etcdctl's.
    pub message: String,
}

impl CtlError {
    /// An error with an explicit exit code.
    pub fn new(code: i32, message: impl Into<String>) -> CtlError {
        CtlError {
            code,
            message: message.into(),
        }
    }
    /// Wrong arguments (exit 128).
    pub fn bad_args(message: impl Into<String>) -> CtlError {
        CtlError::new(exit::BAD_ARGS, message)
    }
    /// A failed request (exit 1).
    pub fn error(message: impl Into<String>) -> CtlError {
        CtlError::new(exit::ERROR, message)
    }
    /// An unsupported option value (exit 4).
    pub fn bad_feature(message: impl Into<String>) -> CtlError {
        CtlError::new(exit::BAD_FEATURE, message)
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CtlError {}

/// The text etcdctl shows for a failed call: the server's gRPC message for a status (etcd's
/// clients print exactly that), "context deadline exceeded" when nothing answered in time.
///
/// etcd's client turns statuses whose message is one of etcd's own errors (they all start with
/// `etcdserver: `) back into that error, whose text is the bare message; any other status keeps
/// grpc-go's form `rpc error: code = <Code> desc = <message>`.
pub fn client_error_text(e: &ClientError) -> String {
    match e {
        ClientError::Status(s) if s.message.starts_with("etcdserver: ") => s.message.clone(),
        ClientError::Status(s) => {
            format!("rpc error: code = {} desc = {}", s.code.name(), s.message)
        }
        ClientError::Timeout | ClientError::Connect(_) => "context deadline exceeded".to_string(),
        other => other.to_string(),
    }
}

impl From<ClientError> for CtlError {
    fn from(e: ClientError) -> CtlError {
        CtlError::error(client_error_text(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_net::grpc::{Code, Status};

    #[test]
    fn status_texts_like_clientv3() {
        let etcd = ClientError::Status(Status::new(
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted",
        ));
        assert_eq!(
            client_error_text(&etcd),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let other = ClientError::Status(Status::new(Code::Unimplemented, "no such method"));
        assert_eq!(
            client_error_text(&other),
            "rpc error: code = Unimplemented desc = no such method"
        );
        let c = ClientError::Status(Status::new(Code::Cancelled, "x"));
        assert_eq!(client_error_text(&c), "rpc error: code = Canceled desc = x");
        assert_eq!(
            client_error_text(&ClientError::Timeout),
            "context deadline exceeded"
        );
    }
}
