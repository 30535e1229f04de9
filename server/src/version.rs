//! The versions keel reports, and the body of `GET /version`.
//!
//! keel claims to be **etcd 3.5.0** everywhere a version is visible (`/version`,
//! `Maintenance.Status.version`, `--version`):
//! * the API keel implements is 3.5's: 41 RPCs (3.4 has 39; 3.5 adds `Maintenance.Downgrade` and
//!   `MemberList.linearizable`), `/health` carries a `reason` field, `--pre-vote` defaults to
//!   true;
//! * clients gate features on the cluster version (etcdctl `downgrade`, client libraries that
//!   check `etcdcluster` before using 3.4+/3.5 fields); claiming a version keel does not
//!   implement would make them send requests keel cannot answer, claiming an older one would hide
//!   what it can do;
//! * etcdctl 3.4 (installed here) and 3.5 both work against a 3.5 server.
//!
//! The claim is consistent: the server version and the cluster version are both 3.5.0 (etcd
//! reports the cluster version as `major.minor.0`).

/// The etcd server version keel emulates.
pub const EMULATED_ETCD_VERSION: &str = "3.5.0";

/// The cluster version keel reports (`major.minor.0` of [`EMULATED_ETCD_VERSION`]).
pub const EMULATED_CLUSTER_VERSION: &str = "3.5.0";

/// keel's own version (the crate version).
pub const KEEL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The JSON body of `GET /version`, byte for byte as etcd writes it:
/// `{"etcdserver":"3.5.0","etcdcluster":"3.5.0"}`.
pub fn version_json() -> String {
    format!(
        r#"{{"etcdserver":"{EMULATED_ETCD_VERSION}","etcdcluster":"{EMULATED_CLUSTER_VERSION}"}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_body_is_etcds_shape() {
        assert_eq!(
            version_json(),
            r#"{"etcdserver":"3.5.0","etcdcluster":"3.5.0"}"#
        );
    }

    #[test]
    fn cluster_version_is_major_minor_zero_of_server_version() {
        let mut parts = EMULATED_ETCD_VERSION.split('.');
        let (maj, min) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(EMULATED_CLUSTER_VERSION, format!("{maj}.{min}.0"));
    }
}
