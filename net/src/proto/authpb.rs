//! `authpb` (etcd `api/authpb/auth.proto`): users, roles and key-range permissions.

/// Options given when a user is added.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct UserAddOptions {
    /// The user authenticates without a password (e.g. by TLS common name).
    #[prost(bool, tag = "1")]
    pub no_password: bool,
}

/// A user as stored in the auth store.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct User {
    /// User name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Password hash.
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    /// Names of the roles granted to the user.
    #[prost(string, repeated, tag = "3")]
    pub roles: Vec<String>,
    /// Options given at creation.
    #[prost(message, optional, tag = "4")]
    pub options: Option<UserAddOptions>,
}

/// Permission to read and/or write a key or the range `[key, range_end)`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Permission {
    /// READ, WRITE or READWRITE (see [`permission::Type`]).
    #[prost(enumeration = "permission::Type", tag = "1")]
    pub perm_type: i32,
    /// First key of the range.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// End of the range (exclusive); empty means the single key.
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// Nested types of [`Permission`].
pub mod permission {
    /// What a permission allows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        /// Read only.
        Read = 0,
        /// Write only.
        Write = 1,
        /// Read and write.
        Readwrite = 2,
    }
}

/// A role: a name and the permissions it grants.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Role {
    /// Role name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Permissions granted by the role.
    #[prost(message, repeated, tag = "2")]
    pub key_permission: Vec<Permission>,
}
