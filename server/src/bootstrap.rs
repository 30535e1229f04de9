//! Who this member is when it starts: its member id, its cluster's id and the membership table
//! it starts from.
//!
//! * A member of a new cluster (`--initial-cluster-state new`) derives its id and the cluster id
//!   from the flags, as etcd does, and starts from the `--initial-cluster` table.
//! * A member joining an existing cluster (`--initial-cluster-state existing`, after
//!   `etcdctl member add`) does not know its id: MemberAdd chose it. Like etcd (which asks
//!   `GET <peer URL>/members`), it asks the other members listed in `--initial-cluster` for the
//!   member list over their peer URLs ([`MEMBERS_PATH`]), finds itself in it by its
//!   `--initial-advertise-peer-urls`, and records what it learnt in `member/join` before it
//!   creates its WAL, so that a restart starts the same way.
//! * A member of a new cluster records its identity in `member/identity` before it creates its
//!   WAL (etcd keeps it in the WAL's metadata): its id and the cluster id are derived from the
//!   flags only once. A restart must not derive them again, because the flags may have changed
//!   since (after a MemberUpdate the member advertises another peer URL, which hashes to another
//!   id).
//! * A restarting member takes its id and cluster id from its identity or join record (the
//!   flags only for a data directory that has neither), and starts from the table stored in its
//!   database (which belongs to its applied index), else from the recorded table.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keel_net::proto::etcdserverpb as pb;
use prost::Message;

use crate::config::{ClusterState, Config};
use crate::membership::{JoinRecord, Membership};

/// The path on the peer port where a member answers its member list (an encoded
/// `MemberListResponse` whose header carries the cluster id).
pub const MEMBERS_PATH: &str = "/keel/members";

/// How long a joining member keeps asking the existing members for the member list.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The identity a member starts with.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// This member's id.
    pub member_id: u64,
    /// The cluster's id.
    pub cluster_id: u64,
    /// The membership table to start from.
    pub membership: Membership,
    /// True when this member joined an existing cluster (ids came from MemberAdd).
    pub joined: bool,
}

fn join_path(member_dir: &Path) -> PathBuf {
    member_dir.join("join")
}

/// Where a member of a new cluster records its identity (same encoding as the join record).
fn identity_path(member_dir: &Path) -> PathBuf {
    member_dir.join("identity")
}

fn read_record(path: &Path, joined: bool) -> Result<Identity, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let rec = JoinRecord::decode(bytes.as_slice())
        .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    if rec.member_id == 0 {
        return Err(format!("{} is corrupt: member id 0", path.display()));
    }
    Ok(Identity {
        member_id: rec.member_id,
        cluster_id: rec.cluster_id,
        membership: Membership::decode(&rec.membership)?,
        joined,
    })
}

/// Works out this member's identity (see the module doc). `stored` is the membership blob in
/// the database, `has_wal` whether a WAL exists already.
pub fn resolve(
    cfg: &Config,
    member_dir: &Path,
    stored: Option<Vec<u8>>,
    has_wal: bool,
) -> Result<Identity, String> {
    let stored = match stored {
        Some(b) => Some(Membership::decode(&b)?),
        None => None,
    };
    let join = join_path(member_dir);
    let recorded = identity_path(member_dir);
    let mut identity = if join.exists() {
        read_record(&join, true)?
    } else if recorded.exists() && has_wal {
        // Without a WAL nothing was decided under the recorded identity yet (an earlier start
        // failed before creating it): the flags, perhaps corrected since, decide again.
        read_record(&recorded, false)?
    } else if !has_wal && cfg.initial_cluster_state == ClusterState::Existing {
        let identity = join_existing(cfg)?;
        write_record(&join, member_dir, &identity)?;
        identity
    } else {
        let members = cfg.initial_members();
        let id = cfg.member_id();
        if !members.iter().any(|m| m.id == id) {
            return Err(format!(
                "this member ({}, id {id:x}) is not in --initial-cluster",
                cfg.name
            ));
        }
        let identity = Identity {
            member_id: id,
            cluster_id: cfg.cluster_id(),
            membership: Membership::from_initial(&members),
            joined: false,
        };
        // A data directory with a WAL but no record (written by an older keel) keeps deriving
        // its identity from the flags; a new one records it once.
        if !has_wal {
            write_record(&recorded, member_dir, &identity)?;
        }
        identity
    };
    if let Some(m) = stored {
        identity.membership = m;
    }
    // A member that applied its own removal never rejoins under the same id (etcd's peers
    // answer it "410 Gone" and it stops with this message).
    if identity.membership.is_removed(identity.member_id) {
        return Err(format!(
            "the member has been permanently removed from the cluster (member {:x} of cluster \
             {:x}); to add it again, remove its data directory and use `etcdctl member add`",
            identity.member_id, identity.cluster_id
        ));
    }
    Ok(identity)
}

/// Ask the members of `--initial-cluster` (other than this one) for the member list until one
/// answers with a list that contains this member's peer URLs.
fn join_existing(cfg: &Config) -> Result<Identity, String> {
    let mine: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    let others: Vec<_> = cfg
        .initial_members()
        .into_iter()
        .filter(|m| m.name != cfg.name)
        .collect();
    if others.is_empty() {
        return Err(
            "--initial-cluster-state existing needs the existing members in --initial-cluster"
                .into(),
        );
    }
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let mut last_error = String::new();
    loop {
        for m in &others {
            for url in &m.peer_urls {
                let addr = match url.listen_addr() {
                    Ok(a) => a,
                    Err(e) => {
                        last_error = format!("bad peer URL {url} of {}: {e}", m.name);
                        continue;
                    }
                };
                match fetch_members(addr) {
                    Ok(list) => {
                        let header = list.header.unwrap_or_default();
                        let table = Membership::from_list(&list.members);
                        let Some(me) = table.find_by_peer_urls(&mine) else {
                            return Err(format!(
                                "the existing cluster (asked {url}) has no member with peer URLs {}; \
                                 add this member with `etcdctl member add` first",
                                mine.join(",")
                            ));
                        };
                        crate::log_info!(
                            "joining cluster {:x} as member {:x} (member list from {url})",
                            header.cluster_id,
                            me.id
                        );
                        return Ok(Identity {
                            member_id: me.id,
                            cluster_id: header.cluster_id,
                            membership: table.clone(),
                            joined: true,
                        });
                    }
                    Err(e) => last_error = format!("{url}: {e}"),
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "cannot fetch the member list from the existing cluster: {last_error}"
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn fetch_members(addr: std::net::SocketAddr) -> Result<pb::MemberListResponse, String> {
    let (status, body) = keel_net::peer::http_get(addr, MEMBERS_PATH, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP status {status}"));
    }
    pb::MemberListResponse::decode(body.as_slice())
        .map_err(|e| format!("member list does not decode: {e}"))
}

/// The body of [`MEMBERS_PATH`].
pub fn members_body(cluster_id: u64, member_id: u64, table: &Membership) -> Vec<u8> {
    pb::MemberListResponse {
        header: Some(pb::ResponseHeader {
            cluster_id,
            member_id,
            ..Default::default()
        }),
        members: table.list(),
    }
    .encode_to_vec()
}

/// Write an identity or join record to `path` (in `member_dir`) durably: temp file, fsync,
/// rename, fsync the directory.
fn write_record(path: &Path, member_dir: &Path, id: &Identity) -> Result<(), String> {
    let err = |what: &str, e: std::io::Error| format!("cannot {what} the join record: {e}");
    std::fs::create_dir_all(member_dir).map_err(|e| err("create the directory of", e))?;
    let rec = JoinRecord {
        member_id: id.member_id,
        cluster_id: id.cluster_id,
        membership: id.membership.encode(),
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| err("create", e))?;
    f.write_all(&rec.encode_to_vec())
        .and_then(|_| f.sync_all())
        .map_err(|e| err("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| err("rename", e))?;
    std::fs::File::open(member_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err("sync the directory of", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory (the helper the WAL tests use).
    fn dir(tag: &str) -> PathBuf {
        crate::raft_log::tests::temp_dir(&format!("bootstrap-{tag}"))
    }

    #[test]
    fn a_join_record_survives_and_a_stored_table_wins() {
        let d = dir("join");
        let table = Membership::from_list(&[pb::Member {
            id: 5,
            name: "x".into(),
            peer_urls: vec!["http://127.0.0.1:9".into()],
            ..Default::default()
        }]);
        let id = Identity {
            member_id: 5,
            cluster_id: 77,
            membership: table.clone(),
            joined: true,
        };
        write_record(&join_path(&d), &d, &id).unwrap();
        let cfg = crate::config::Config::default_member();
        let back = resolve(&cfg, &d, None, true).unwrap();
        assert_eq!(back, id);
        let mut newer = table.clone();
        newer.set_attributes(&pb::Member {
            id: 5,
            name: "renamed".into(),
            ..Default::default()
        });
        let back = resolve(&cfg, &d, Some(newer.encode()), true).unwrap();
        assert_eq!(back.membership, newer);
        assert_eq!(back.member_id, 5);
        // A torn or garbage record is an error, not a silent new identity.
        std::fs::write(join_path(&d), [0xff, 0xff, 0xff]).unwrap();
        assert!(resolve(&cfg, &d, None, true).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_new_member_derives_its_identity_from_the_flags() {
        let d = dir("new");
        let cfg = crate::config::Config::default_member();
        let id = resolve(&cfg, &d, None, false).unwrap();
        assert_eq!(id.member_id, cfg.member_id());
        assert_eq!(id.cluster_id, cfg.cluster_id());
        assert!(!id.joined);
        assert_eq!(id.membership.conf_state().voters, vec![cfg.member_id()]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn member_cfg(peer: &str) -> Config {
        let args = [
            "--name=m1".to_string(),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-cluster=m1={peer}"),
        ];
        match crate::config::parse(&args, std::iter::empty::<(String, String)>()) {
            Ok(crate::config::Command::Run(c, _)) => *c,
            other => panic!("flags do not parse: {other:?}"),
        }
    }

    #[test]
    fn a_restart_keeps_the_recorded_identity_when_the_flags_change() {
        // After a MemberUpdate the member restarts advertising another peer URL; the id that
        // URL hashes to is not its id, nor is the cluster id derived from the new flags.
        let d = dir("moved");
        let first = member_cfg("http://127.0.0.1:2380");
        let original = resolve(&first, &d, None, false).unwrap();
        assert_eq!(original.member_id, first.member_id());
        let moved = member_cfg("http://127.0.0.1:2390");
        assert_ne!(moved.member_id(), first.member_id());
        let back = resolve(&moved, &d, None, true).unwrap();
        assert_eq!(back.member_id, original.member_id);
        assert_eq!(back.cluster_id, original.cluster_id);
        assert!(!back.joined);
        // Before a WAL exists the flags still decide (and the record follows them).
        let redo = resolve(&moved, &d, None, false).unwrap();
        assert_eq!(redo.member_id, moved.member_id());
        assert_eq!(
            resolve(&first, &d, None, true).unwrap().member_id,
            moved.member_id()
        );
        // A record with member id 0 is corrupt, not an identity.
        std::fs::write(
            identity_path(&d),
            JoinRecord {
                member_id: 0,
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .unwrap();
        assert!(resolve(&moved, &d, None, true).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_removed_member_does_not_start() {
        use keel_consensus::{ConfChange, ConfChangeType};
        let d = dir("removed");
        let cfg = member_cfg("http://127.0.0.1:2380");
        let me = resolve(&cfg, &d, None, false).unwrap();
        let mut table = Membership::from_list(&[
            pb::Member {
                id: me.member_id,
                name: "m1".into(),
                peer_urls: vec!["http://127.0.0.1:2380".into()],
                ..Default::default()
            },
            pb::Member {
                id: 9,
                name: "m2".into(),
                peer_urls: vec!["http://127.0.0.1:2381".into()],
                ..Default::default()
            },
        ]);
        assert!(resolve(&cfg, &d, Some(table.encode()), true).is_ok());
        table
            .apply_change(
                &ConfChange {
                    change_type: ConfChangeType::RemoveNode,
                    node_id: me.member_id,
                    context: Vec::new(),
                },
                &Default::default(),
            )
            .unwrap();
        let err = resolve(&cfg, &d, Some(table.encode()), true).unwrap_err();
        assert!(err.contains("permanently removed"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
