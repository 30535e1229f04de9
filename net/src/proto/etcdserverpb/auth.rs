//! Service `etcdserverpb.Auth`: enabling auth, authenticating, users, roles and permissions.

use super::ResponseHeader;
use crate::proto::authpb::{Permission, UserAddOptions};

/// Declares a request message with no fields.
macro_rules! empty_request {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct $name {}
    };
}

/// Declares a response message that carries only the [`ResponseHeader`].
macro_rules! header_only_response {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, ::prost::Message)]
        pub struct $name {
            /// Response header.
            #[prost(message, optional, tag = "1")]
            pub header: Option<ResponseHeader>,
        }
    };
}

empty_request!(
    /// Enable authentication (needs user `root` with role `root`).
    AuthEnableRequest
);
empty_request!(
    /// Disable authentication.
    AuthDisableRequest
);
empty_request!(
    /// Ask whether auth is enabled (3.5+).
    AuthStatusRequest
);
empty_request!(
    /// List users.
    AuthUserListRequest
);
empty_request!(
    /// List roles.
    AuthRoleListRequest
);

/// Exchange a name and password for a token.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthenticateRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Password.
    #[prost(string, tag = "2")]
    pub password: String,
}

/// Add a user.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserAddRequest {
    /// User name (not empty).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Password.
    #[prost(string, tag = "2")]
    pub password: String,
    /// Options (3.4+).
    #[prost(message, optional, tag = "3")]
    pub options: Option<UserAddOptions>,
    /// Password already hashed by the API layer (3.5+).
    #[prost(string, tag = "4")]
    pub hashed_password: String,
}

/// Get a user's roles.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserGetRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Delete a user.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserDeleteRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Change a user's password.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserChangePasswordRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// New password (cleared by the API layer).
    #[prost(string, tag = "2")]
    pub password: String,
    /// New password hash (filled by the API layer, 3.5+).
    #[prost(string, tag = "3")]
    pub hashed_password: String,
}

/// Grant a role to a user.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserGrantRoleRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub user: String,
    /// Role name.
    #[prost(string, tag = "2")]
    pub role: String,
}

/// Revoke a role from a user.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserRevokeRoleRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Role name.
    #[prost(string, tag = "2")]
    pub role: String,
}

/// Add a role.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthRoleAddRequest {
    /// Role name (not empty).
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Get a role's permissions.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthRoleGetRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub role: String,
}

/// Delete a role.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthRoleDeleteRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub role: String,
}

/// Grant a permission to a role.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthRoleGrantPermissionRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The permission.
    #[prost(message, optional, tag = "2")]
    pub perm: Option<Permission>,
}

/// Revoke a key-range permission from a role.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthRoleRevokePermissionRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub role: String,
    /// First key of the permission's range.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// End of the permission's range.
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

header_only_response!(
    /// Result of AuthEnable.
    AuthEnableResponse
);
header_only_response!(
    /// Result of AuthDisable.
    AuthDisableResponse
);
header_only_response!(
    /// Result of UserAdd.
    AuthUserAddResponse
);
header_only_response!(
    /// Result of UserDelete.
    AuthUserDeleteResponse
);
header_only_response!(
    /// Result of UserChangePassword.
    AuthUserChangePasswordResponse
);
header_only_response!(
    /// Result of UserGrantRole.
    AuthUserGrantRoleResponse
);
header_only_response!(
    /// Result of UserRevokeRole.
    AuthUserRevokeRoleResponse
);
header_only_response!(
    /// Result of RoleAdd.
    AuthRoleAddResponse
);
header_only_response!(
    /// Result of RoleDelete.
    AuthRoleDeleteResponse
);
header_only_response!(
    /// Result of RoleGrantPermission.
    AuthRoleGrantPermissionResponse
);
header_only_response!(
    /// Result of RoleRevokePermission.
    AuthRoleRevokePermissionResponse
);

/// Result of AuthStatus (3.5+).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthStatusResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Auth is enabled.
    #[prost(bool, tag = "2")]
    pub enabled: bool,
    /// Current revision of the auth store (`authRevision`).
    #[prost(uint64, tag = "3")]
    pub auth_revision: u64,
}

/// Result of Authenticate.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthenticateResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Token to send in the `token` metadata of later calls.
    #[prost(string, tag = "2")]
    pub token: String,
}

/// Result of UserGet.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserGetResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The user's roles.
    #[prost(string, repeated, tag = "2")]
    pub roles: Vec<String>,
}

/// Result of RoleGet.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthRoleGetResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The role's permissions.
    #[prost(message, repeated, tag = "2")]
    pub perm: Vec<Permission>,
}

/// Result of RoleList.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthRoleListResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// All role names.
    #[prost(string, repeated, tag = "2")]
    pub roles: Vec<String>,
}

/// Result of UserList.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AuthUserListResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// All user names.
    #[prost(string, repeated, tag = "2")]
    pub users: Vec<String>,
}
