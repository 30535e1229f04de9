//! The connection to the cluster and typed unary calls over net's blocking gRPC client.

use super::error::{client_error_text, CtlError};
use keel_net::client::{Client, ClientConfig, ClientError};
use keel_net::proto::Message;
use std::time::Duration;

/// RPC paths keelctl calls.
pub mod path {
    pub const RANGE: &str = "/etcdserverpb.KV/Range";
    pub const PUT: &str = "/etcdserverpb.KV/Put";
    pub const DELETE_RANGE: &str = "/etcdserverpb.KV/DeleteRange";
    pub const TXN: &str = "/etcdserverpb.KV/Txn";
    pub const COMPACT: &str = "/etcdserverpb.KV/Compact";
    pub const WATCH: &str = "/etcdserverpb.Watch/Watch";
    pub const LEASE_GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
    pub const LEASE_REVOKE: &str = "/etcdserverpb.Lease/LeaseRevoke";
    pub const LEASE_KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
    pub const LEASE_TIME_TO_LIVE: &str = "/etcdserverpb.Lease/LeaseTimeToLive";
    pub const LEASE_LEASES: &str = "/etcdserverpb.Lease/LeaseLeases";
    pub const MEMBER_ADD: &str = "/etcdserverpb.Cluster/MemberAdd";
    pub const MEMBER_REMOVE: &str = "/etcdserverpb.Cluster/MemberRemove";
    pub const MEMBER_UPDATE: &str = "/etcdserverpb.Cluster/MemberUpdate";
    pub const MEMBER_LIST: &str = "/etcdserverpb.Cluster/MemberList";
    pub const MEMBER_PROMOTE: &str = "/etcdserverpb.Cluster/MemberPromote";
    pub const ALARM: &str = "/etcdserverpb.Maintenance/Alarm";
    pub const STATUS: &str = "/etcdserverpb.Maintenance/Status";
    pub const HASH_KV: &str = "/etcdserverpb.Maintenance/HashKV";
    pub const DEFRAGMENT: &str = "/etcdserverpb.Maintenance/Defragment";
    pub const SNAPSHOT: &str = "/etcdserverpb.Maintenance/Snapshot";
    pub const MOVE_LEADER: &str = "/etcdserverpb.Maintenance/MoveLeader";
}

/// Connection settings from the global flags.
#[derive(Clone, Debug)]
pub struct Dial {
    /// Endpoints (`host:port` or `http://host:port`).
    pub endpoints: Vec<String>,
    /// `--dial-timeout`.
    pub dial_timeout: Duration,
    /// `--command-timeout`: the deadline of each unary call.
    pub command_timeout: Duration,
}

/// An open connection to one of the endpoints.
pub struct Session {
    client: Client,
    /// Deadline of unary calls.
    pub command_timeout: Duration,
}

impl Session {
    /// Connects to the first endpoint that accepts (etcdctl reports a dead cluster as
    /// "context deadline exceeded").
    pub fn connect(dial: &Dial) -> Result<Session, CtlError> {
        Session::connect_to(&dial.endpoints, dial)
    }

    /// Connects to the given endpoints with `dial`'s timeouts.
    pub fn connect_to(endpoints: &[String], dial: &Dial) -> Result<Session, CtlError> {
        let config = ClientConfig {
            connect_timeout: dial.dial_timeout,
            call_timeout: dial.command_timeout,
            ..ClientConfig::default()
        };
        let client = Client::connect(endpoints, config).map_err(CtlError::from)?;
        Ok(Session {
            client,
            command_timeout: dial.command_timeout,
        })
    }

    /// One unary call: encode, send, decode.
    pub fn call<Req: Message, Resp: Message + Default>(
        &mut self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let t = self.command_timeout;
        self.call_with_timeout(path, req, t)
    }

    /// A unary call with its own deadline (campaign and lock wait as long as they must).
    pub fn call_with_timeout<Req: Message, Resp: Message + Default>(
        &mut self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, ClientError> {
        let bytes = self
            .client
            .unary_with(path, &req.encode_to_vec(), &[], timeout)?;
        Resp::decode(bytes.as_slice())
            .map_err(|e| ClientError::Protocol(format!("bad response message: {e}")))
    }

    /// The raw client, for streams.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Opens a streaming call and sends its first message.
    pub fn open_stream<Req: Message>(
        &mut self,
        path: &str,
        first: Option<&Req>,
    ) -> Result<keel_net::client::StreamHandle, CtlError> {
        let h = self.client.open_stream(path, &[], None)?;
        if let Some(m) = first {
            self.client.send(h, &m.encode_to_vec())?;
        }
        Ok(h)
    }

    /// Opens a server-streaming call (Snapshot, Observe): sends the one request and half-closes,
    /// which is what marks the request complete to a gRPC server.
    pub fn open_server_stream<Req: Message>(
        &mut self,
        path: &str,
        request: &Req,
    ) -> Result<keel_net::client::StreamHandle, CtlError> {
        let h = self.open_stream(path, Some(request))?;
        self.client.close_send(h)?;
        Ok(h)
    }

    /// Receives and decodes the next message of a stream (`None` at the end).
    pub fn recv<Resp: Message + Default>(
        &mut self,
        h: keel_net::client::StreamHandle,
        timeout: Duration,
    ) -> Result<Option<Resp>, ClientError> {
        match self.client.recv(h, timeout)? {
            None => Ok(None),
            Some(bytes) => Resp::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| ClientError::Protocol(format!("bad response message: {e}"))),
        }
    }
}

/// Maps a call error to a [`CtlError`] with etcdctl's text, prefixed by `what (...)` when given.
pub fn failed(what: Option<&str>, e: &ClientError) -> CtlError {
    let text = client_error_text(e);
    match what {
        Some(w) => CtlError::error(format!("{w} ({text})")),
        None => CtlError::error(text),
    }
}
