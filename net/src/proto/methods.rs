//! The gRPC method table: every etcd v3 RPC keel serves, its HTTP/2 `:path`, its streaming kind
//! and its message types, so the server can dispatch on the path of an incoming request.
//!
//! The 41 RPCs of etcd 3.5 (KV, Watch, Lease, Cluster, Maintenance, Auth) plus Lock (2) and
//! Election (5). `KV/RangeStream` (etcd 3.7+) is not included.

/// How requests and responses flow in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses (Snapshot, Observe).
    ServerStreaming,
    /// A stream of requests, one response (no etcd RPC uses this; listed for completeness).
    ClientStreaming,
    /// Streams both ways (Watch, LeaseKeepAlive).
    BidiStreaming,
}

impl MethodKind {
    /// The client sends a stream of messages.
    pub fn client_streams(self) -> bool {
        matches!(
            self,
            MethodKind::ClientStreaming | MethodKind::BidiStreaming
        )
    }
    /// The server answers with a stream of messages.
    pub fn server_streams(self) -> bool {
        matches!(
            self,
            MethodKind::ServerStreaming | MethodKind::BidiStreaming
        )
    }
}

/// One row of the method table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    /// Which RPC this row describes.
    pub rpc: Rpc,
    /// The HTTP/2 `:path`, e.g. `/etcdserverpb.KV/Range`.
    pub path: &'static str,
    /// Streaming kind.
    pub kind: MethodKind,
    /// Fully qualified protobuf name of the request message.
    pub request: &'static str,
    /// Fully qualified protobuf name of the response message.
    pub response: &'static str,
}

/// Declares [`Rpc`], [`METHODS`] and the lookups from one list, so they cannot disagree.
macro_rules! method_table {
    ($( $variant:ident => $path:literal, $kind:ident, $req:literal, $resp:literal; )*) => {
        /// Every RPC in the table, one variant each (the server's dispatch key).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Rpc {
            $(
                #[doc = concat!("`", $path, "`")]
                $variant,
            )*
        }

        /// The method table, in the order of the [`Rpc`] variants.
        pub const METHODS: &[Method] = &[
            $( Method {
                rpc: Rpc::$variant,
                path: $path,
                kind: MethodKind::$kind,
                request: $req,
                response: $resp,
            }, )*
        ];

        impl Rpc {
            /// Look up the RPC for an HTTP/2 `:path`; `None` for anything not in the table
            /// (the server answers gRPC status UNIMPLEMENTED).
            pub fn from_path(path: &str) -> Option<Rpc> {
                match path {
                    $( $path => Some(Rpc::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

method_table! {
    // etcdserverpb.KV
    Range => "/etcdserverpb.KV/Range", Unary, "etcdserverpb.RangeRequest", "etcdserverpb.RangeResponse";
    Put => "/etcdserverpb.KV/Put", Unary, "etcdserverpb.PutRequest", "etcdserverpb.PutResponse";
    DeleteRange => "/etcdserverpb.KV/DeleteRange", Unary, "etcdserverpb.DeleteRangeRequest", "etcdserverpb.DeleteRangeResponse";
    Txn => "/etcdserverpb.KV/Txn", Unary, "etcdserverpb.TxnRequest", "etcdserverpb.TxnResponse";
    Compact => "/etcdserverpb.KV/Compact", Unary, "etcdserverpb.CompactionRequest", "etcdserverpb.CompactionResponse";
    // etcdserverpb.Watch
    Watch => "/etcdserverpb.Watch/Watch", BidiStreaming, "etcdserverpb.WatchRequest", "etcdserverpb.WatchResponse";
    // etcdserverpb.Lease
    LeaseGrant => "/etcdserverpb.Lease/LeaseGrant", Unary, "etcdserverpb.LeaseGrantRequest", "etcdserverpb.LeaseGrantResponse";
    LeaseRevoke => "/etcdserverpb.Lease/LeaseRevoke", Unary, "etcdserverpb.LeaseRevokeRequest", "etcdserverpb.LeaseRevokeResponse";
    LeaseKeepAlive => "/etcdserverpb.Lease/LeaseKeepAlive", BidiStreaming, "etcdserverpb.LeaseKeepAliveRequest", "etcdserverpb.LeaseKeepAliveResponse";
    LeaseTimeToLive => "/etcdserverpb.Lease/LeaseTimeToLive", Unary, "etcdserverpb.LeaseTimeToLiveRequest", "etcdserverpb.LeaseTimeToLiveResponse";
    LeaseLeases => "/etcdserverpb.Lease/LeaseLeases", Unary, "etcdserverpb.LeaseLeasesRequest", "etcdserverpb.LeaseLeasesResponse";
    // etcdserverpb.Cluster
    MemberAdd => "/etcdserverpb.Cluster/MemberAdd", Unary, "etcdserverpb.MemberAddRequest", "etcdserverpb.MemberAddResponse";
    MemberRemove => "/etcdserverpb.Cluster/MemberRemove", Unary, "etcdserverpb.MemberRemoveRequest", "etcdserverpb.MemberRemoveResponse";
    MemberUpdate => "/etcdserverpb.Cluster/MemberUpdate", Unary, "etcdserverpb.MemberUpdateRequest", "etcdserverpb.MemberUpdateResponse";
    MemberList => "/etcdserverpb.Cluster/MemberList", Unary, "etcdserverpb.MemberListRequest", "etcdserverpb.MemberListResponse";
    MemberPromote => "/etcdserverpb.Cluster/MemberPromote", Unary, "etcdserverpb.MemberPromoteRequest", "etcdserverpb.MemberPromoteResponse";
    // etcdserverpb.Maintenance
    Alarm => "/etcdserverpb.Maintenance/Alarm", Unary, "etcdserverpb.AlarmRequest", "etcdserverpb.AlarmResponse";
    Status => "/etcdserverpb.Maintenance/Status", Unary, "etcdserverpb.StatusRequest", "etcdserverpb.StatusResponse";
    Defragment => "/etcdserverpb.Maintenance/Defragment", Unary, "etcdserverpb.DefragmentRequest", "etcdserverpb.DefragmentResponse";
    Hash => "/etcdserverpb.Maintenance/Hash", Unary, "etcdserverpb.HashRequest", "etcdserverpb.HashResponse";
    HashKv => "/etcdserverpb.Maintenance/HashKV", Unary, "etcdserverpb.HashKVRequest", "etcdserverpb.HashKVResponse";
    Snapshot => "/etcdserverpb.Maintenance/Snapshot", ServerStreaming, "etcdserverpb.SnapshotRequest", "etcdserverpb.SnapshotResponse";
    MoveLeader => "/etcdserverpb.Maintenance/MoveLeader", Unary, "etcdserverpb.MoveLeaderRequest", "etcdserverpb.MoveLeaderResponse";
    Downgrade => "/etcdserverpb.Maintenance/Downgrade", Unary, "etcdserverpb.DowngradeRequest", "etcdserverpb.DowngradeResponse";
    // etcdserverpb.Auth
    AuthEnable => "/etcdserverpb.Auth/AuthEnable", Unary, "etcdserverpb.AuthEnableRequest", "etcdserverpb.AuthEnableResponse";
    AuthDisable => "/etcdserverpb.Auth/AuthDisable", Unary, "etcdserverpb.AuthDisableRequest", "etcdserverpb.AuthDisableResponse";
    AuthStatus => "/etcdserverpb.Auth/AuthStatus", Unary, "etcdserverpb.AuthStatusRequest", "etcdserverpb.AuthStatusResponse";
    Authenticate => "/etcdserverpb.Auth/Authenticate", Unary, "etcdserverpb.AuthenticateRequest", "etcdserverpb.AuthenticateResponse";
    UserAdd => "/etcdserverpb.Auth/UserAdd", Unary, "etcdserverpb.AuthUserAddRequest", "etcdserverpb.AuthUserAddResponse";
    UserGet => "/etcdserverpb.Auth/UserGet", Unary, "etcdserverpb.AuthUserGetRequest", "etcdserverpb.AuthUserGetResponse";
    UserList => "/etcdserverpb.Auth/UserList", Unary, "etcdserverpb.AuthUserListRequest", "etcdserverpb.AuthUserListResponse";
    UserDelete => "/etcdserverpb.Auth/UserDelete", Unary, "etcdserverpb.AuthUserDeleteRequest", "etcdserverpb.AuthUserDeleteResponse";
    UserChangePassword => "/etcdserverpb.Auth/UserChangePassword", Unary, "etcdserverpb.AuthUserChangePasswordRequest", "etcdserverpb.AuthUserChangePasswordResponse";
    UserGrantRole => "/etcdserverpb.Auth/UserGrantRole", Unary, "etcdserverpb.AuthUserGrantRoleRequest", "etcdserverpb.AuthUserGrantRoleResponse";
    UserRevokeRole => "/etcdserverpb.Auth/UserRevokeRole", Unary, "etcdserverpb.AuthUserRevokeRoleRequest", "etcdserverpb.AuthUserRevokeRoleResponse";
    RoleAdd => "/etcdserverpb.Auth/RoleAdd", Unary, "etcdserverpb.AuthRoleAddRequest", "etcdserverpb.AuthRoleAddResponse";
    RoleGet => "/etcdserverpb.Auth/RoleGet", Unary, "etcdserverpb.AuthRoleGetRequest", "etcdserverpb.AuthRoleGetResponse";
    RoleList => "/etcdserverpb.Auth/RoleList", Unary, "etcdserverpb.AuthRoleListRequest", "etcdserverpb.AuthRoleListResponse";
    RoleDelete => "/etcdserverpb.Auth/RoleDelete", Unary, "etcdserverpb.AuthRoleDeleteRequest", "etcdserverpb.AuthRoleDeleteResponse";
    RoleGrantPermission => "/etcdserverpb.Auth/RoleGrantPermission", Unary, "etcdserverpb.AuthRoleGrantPermissionRequest", "etcdserverpb.AuthRoleGrantPermissionResponse";
    RoleRevokePermission => "/etcdserverpb.Auth/RoleRevokePermission", Unary, "etcdserverpb.AuthRoleRevokePermissionRequest", "etcdserverpb.AuthRoleRevokePermissionResponse";
    // v3lockpb.Lock
    Lock => "/v3lockpb.Lock/Lock", Unary, "v3lockpb.LockRequest", "v3lockpb.LockResponse";
    Unlock => "/v3lockpb.Lock/Unlock", Unary, "v3lockpb.UnlockRequest", "v3lockpb.UnlockResponse";
    // v3electionpb.Election
    Campaign => "/v3electionpb.Election/Campaign", Unary, "v3electionpb.CampaignRequest", "v3electionpb.CampaignResponse";
    Proclaim => "/v3electionpb.Election/Proclaim", Unary, "v3electionpb.ProclaimRequest", "v3electionpb.ProclaimResponse";
    Leader => "/v3electionpb.Election/Leader", Unary, "v3electionpb.LeaderRequest", "v3electionpb.LeaderResponse";
    Observe => "/v3electionpb.Election/Observe", ServerStreaming, "v3electionpb.LeaderRequest", "v3electionpb.LeaderResponse";
    Resign => "/v3electionpb.Election/Resign", Unary, "v3electionpb.ResignRequest", "v3electionpb.ResignResponse";
}

impl Rpc {
    /// This RPC's row in [`METHODS`].
    pub fn method(self) -> &'static Method {
        // The macro emits METHODS in variant order, so the discriminant is the index
        // (checked for every variant by a unit test).
        &METHODS[self as usize]
    }
    /// The HTTP/2 `:path`.
    pub fn path(self) -> &'static str {
        self.method().path
    }
    /// The streaming kind.
    pub fn kind(self) -> MethodKind {
        self.method().kind
    }
    /// The gRPC service name, e.g. `etcdserverpb.KV` (the text between the slashes).
    pub fn service(self) -> &'static str {
        let path = self.path();
        let end = path[1..].find('/').map_or(path.len(), |i| i + 1);
        &path[1..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_in_variant_order_and_paths_round_trip() {
        for (index, method) in METHODS.iter().enumerate() {
            assert_eq!(method.rpc as usize, index, "{}", method.path);
            assert_eq!(Rpc::from_path(method.path), Some(method.rpc));
            assert_eq!(method.rpc.path(), method.path);
        }
        assert_eq!(Rpc::from_path("/etcdserverpb.KV/RangeStream"), None);
        assert_eq!(Rpc::from_path("/etcdserverpb.KV/range"), None);
        assert_eq!(Rpc::from_path(""), None);
    }

    #[test]
    fn counts_match_etcd_3_5_plus_lock_and_election() {
        let count = |service: &str| {
            METHODS
                .iter()
                .filter(|m| m.rpc.service() == service)
                .count()
        };
        assert_eq!(count("etcdserverpb.KV"), 5);
        assert_eq!(count("etcdserverpb.Watch"), 1);
        assert_eq!(count("etcdserverpb.Lease"), 5);
        assert_eq!(count("etcdserverpb.Cluster"), 5);
        assert_eq!(count("etcdserverpb.Maintenance"), 8);
        assert_eq!(count("etcdserverpb.Auth"), 17);
        assert_eq!(count("v3lockpb.Lock"), 2);
        assert_eq!(count("v3electionpb.Election"), 5);
        assert_eq!(METHODS.len(), 41 + 2 + 5);
    }

    #[test]
    fn streaming_kinds() {
        let streaming: Vec<(Rpc, MethodKind)> = METHODS
            .iter()
            .filter(|m| m.kind != MethodKind::Unary)
            .map(|m| (m.rpc, m.kind))
            .collect();
        assert_eq!(
            streaming,
            vec![
                (Rpc::Watch, MethodKind::BidiStreaming),
                (Rpc::LeaseKeepAlive, MethodKind::BidiStreaming),
                (Rpc::Snapshot, MethodKind::ServerStreaming),
                (Rpc::Observe, MethodKind::ServerStreaming),
            ]
        );
        assert!(Rpc::Watch.kind().client_streams() && Rpc::Watch.kind().server_streams());
        assert!(!Rpc::Snapshot.kind().client_streams() && Rpc::Snapshot.kind().server_streams());
        assert!(!Rpc::Put.kind().client_streams() && !Rpc::Put.kind().server_streams());
    }
}
