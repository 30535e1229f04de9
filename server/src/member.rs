//! A running member: the event loop, the WAL, Raft, the apply thread and the KV service.
//!
//! ```text
//!  main thread: net EventLoop ── Handler = Member
//!     on_call (gRPC) ─► validate ─► register waiter ─► RaftCore.propose
//!     on_timer (every --heartbeat-interval) ─► RaftCore.tick, expire waiters
//!     pump ─► Ready: messages out │ entries+hard state ─► WAL.submit ──► WAL thread (fsync)
//!     on_wake(WalDone) ─► RaftCore.wal_done ─► committed entries ─► apply thread     │
//!     on_wake(Reply)   ─► ctx.reply / ctx.finish                  ▲                    │
//!  apply thread: mvcc Store.apply_batch (one btree commit per batch) ─► waiters ─► wake┘
//! ```
//!
//! Nothing on the loop thread blocks on disk: the WAL and the btree commits happen on their own
//! threads and come back through the loop's waker. Each client is answered when the entry it
//! proposed is applied (its request id is in the entry, see [`crate::envelope`]).
//!
//! Peers: the loop reads the other members' message-lane connections itself (the transport
//! hands each over after its handshake, `PeerEvent::MessageLane`; the loop registers it and
//! steps each Raft message as it arrives, `on_source_ready`); the transport's threads wake the
//! loop (`Wake::PeerInbox`) for the rest: new lanes, unreachable peers and snapshot outcomes
//! (reported to Raft), snapshots. Ready messages are encoded and handed to the transport at
//! the end of the loop turn (never blocking; one socket write per peer per turn). Snapshot
//! catch-up: see `Member::receive_snapshot`.
//!
//! Served: KV (Range, Put,
//! DeleteRange, Txn, Compact), Watch (live, from history, progress, backpressure), Lease (Grant,
//! Revoke, KeepAlive, TimeToLive, Leases; expiry by the leader), Maintenance (Status, Alarm,
//! Hash, HashKV, Defragment, Snapshot), Cluster.MemberList, Auth.AuthStatus (disabled),
//! v3lock (Lock, Unlock), v3election (Campaign, Proclaim, Leader, Resign, Observe).
//! Linearizable ranges use ReadIndex (thesis §6.4) then wait for the apply index; serializable
//! ranges are served locally. Everything else answers Unimplemented.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use keel_consensus::{ConfChange, Entry, EntryKind, Role};
use keel_mvcc as mvcc;
use keel_net::event_loop::{Ctx, EventLoop, Handler, LoopConfig, LoopWaker, SourceId, TimerId};
use keel_net::grpc::{CallEvent, CallId, GrpcConfig, Metadata};
use keel_net::http1::{Http1Request, Http1Response};
use keel_net::peer::{
    Inbox, LaneStatus, MessageLane, PeerEvent, PeerTransport, PeerTransportConfig,
};
use keel_net::proto::etcdserverpb as pb;
use keel_net::proto::Rpc;
use keel_net::proto::{v3electionpb, v3lockpb};
use keel_wal as wal;
use prost::Message;

use crate::config::Config;
use crate::convert::{self, HeaderInfo};
use crate::envelope::{Envelope, IdGenerator, Request};
use crate::errors::{Code, EtcdError, Status};
use crate::health::{Alarm, AlarmSet};
use crate::membership::{ChangeContext, Membership};
use crate::metrics::ServerMetrics;
use crate::raft_core::{Output, RaftCore};
use crate::raft_log::{open_log, OpenedLog};
use crate::wait::Waiters;
use crate::{log_debug, log_error, log_info, log_warn};

mod cluster_service;

const TICK_TIMER: u64 = 1;
/// etcd's `maxGapBetweenApplyAndCommitIndex`: beyond this many committed-but-unapplied
/// entries, new proposals are refused with "etcdserver: too many requests".
const MAX_APPLY_LAG: u64 = 5000;
/// etcd's backend batch interval: applied entries reach the btree at least this often.
const BACKEND_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// etcd's backend batch limit: or after this many entries, whichever comes first.
const BACKEND_COMMIT_ENTRIES: usize = 10_000;
/// etcd's quota cost overheads (`storage/quota.go`): per put, and per lease grant.
const KV_OVERHEAD: usize = 256;
/// `AuthStatusResponse.auth_revision`: etcd's auth store starts at 1 and keel's auth (always
/// disabled, no users or roles) never changes.
const AUTH_REVISION: u64 = 1;
const LEASE_OVERHEAD: usize = 64;
/// Most response bytes a watch stream may have waiting in its connection before the member stops
/// draining mvcc's queue for it.
const WATCH_SEND_BUDGET: usize = 1 << 20;
/// etcd's `SnapshotCatchUpEntries`: entries kept in the log after a compaction, for followers
/// that lag a little (capped by `--snapshot-count`).
const SNAPSHOT_CATCHUP_ENTRIES: u64 = 5000;
/// Most applied entries kept in Raft's in-memory log between compactions (see
/// `Member::compaction_interval`).
const MAX_LOG_ENTRIES_IN_MEMORY: u64 = 10_000;
/// The backend size used by the quota check is sampled every this many ticks.
const DB_SIZE_SAMPLE_TICKS: u64 = 10;
const PROGRESS_TIMER: u64 = 2;
/// Tag bit of the zero-delay timers that resume reading a peer lane that stopped at its read
/// budget (`LaneStatus::Pending`); the other bits are the lane's `SourceId`.
const LANE_TIMER: u64 = 1 << 63;
/// How often a leaderless member checks whether the others still count it as a member.
const REMOVAL_CHECK_TICKS: u64 = 10;
/// Consecutive such checks after which it concludes it was removed.
const REMOVAL_CHECK_ROUNDS: u32 = 3;
/// A member re-publishes its client URLs every this many ticks (see `publish_attributes`).
const ATTRIBUTES_REFRESH_TICKS: u64 = 200;
/// etcd's watch progress-notify interval (`--experimental-watch-progress-notify-interval`).
const PROGRESS_NOTIFY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);
/// Threads (each with its own connection to the leader) forwarding a follower's lease calls.
const FORWARD_WORKERS: usize = 2;

/// Something another thread hands to the loop.
pub enum Wake {
    /// The WAL finished the in-flight Ready (`Err` = the WAL failed: fatal).
    WalDone(Result<(), String>),
    /// A client's answer is ready: response bytes or an error status.
    Reply(CallId, Result<Vec<u8>, Status>),
    /// A watch stream has responses queued.
    WatchReady(CallId),
    /// The apply thread applied entries up to this index.
    Applied(u64),
    /// One message of a server-streaming answer (more follow).
    Send(CallId, Vec<u8>),
    /// The leader's answer (an encoded `LeaseKeepAliveResponse`) to a keep-alive this follower
    /// forwarded; the loop re-fills its header with this member's own before relaying it.
    KeepAliveForwarded(CallId, Vec<u8>),
    /// The txn of a `Lock` call was applied.
    LockTxn(CallId, LockWait, Result<mvcc::Response, Status>),
    /// The peer transport's inbox has events (Raft messages, unreachable peers).
    PeerInbox,
    /// Building or queueing a snapshot for this peer failed.
    SnapshotFailed(u64),
    /// A snapshot from the leader was restored next to the live database (or failed to be).
    SnapshotPrepared(Box<PreparedInstall>),
    /// The apply thread applied a membership change: Raft's configuration and the peer
    /// transport follow it.
    Membership(MembershipEvent),
    /// The apply thread found this member's backend over its quota while applying these writes
    /// (request ids) and no NOSPACE alarm raised: raise one for this member, then tell their
    /// clients "database space exceeded".
    RaiseNoSpace(Vec<u64>),
}

/// A membership change the loop must act on, in apply order.
#[derive(Debug)]
pub enum MembershipEvent {
    /// A configuration change was applied to the table: apply it to Raft.
    ConfChange(ConfChange),
    /// A member's peer URLs changed (MemberUpdate).
    PeerUrls(u64, Vec<String>),
    /// Entries the store already held (from an installed snapshot) included membership
    /// changes: Raft's configuration and the peers take the table's.
    SyncConf,
}

/// A snapshot as the peer transport delivered it: `| message length: u32 LE | encoded Raft
/// message | mvcc snapshot stream |`, in memory or in a spool file of the member directory.
enum SnapshotPayload {
    /// Reassembled in memory.
    Bytes(Vec<u8>),
    /// Reassembled in this file (removed once read).
    File(PathBuf),
}

impl SnapshotPayload {
    /// Largest Raft message accepted at the head of a snapshot (it carries only metadata).
    const MAX_MESSAGE: usize = 64 << 20;

    /// The spool file, if any.
    fn spool_file(&self) -> Option<PathBuf> {
        match self {
            SnapshotPayload::Bytes(_) => None,
            SnapshotPayload::File(p) => Some(p.clone()),
        }
    }

    /// The Raft message at the head, the size of the database stream after it, and a reader
    /// positioned at that stream.
    fn open(self) -> Result<(keel_consensus::Message, u64, Box<dyn std::io::Read + Send>), String> {
        use std::io::Read;
        let (mut reader, total): (Box<dyn Read + Send>, u64) = match self {
            SnapshotPayload::Bytes(data) => {
                let len = data.len() as u64;
                (Box::new(std::io::Cursor::new(data)), len)
            }
            SnapshotPayload::File(path) => {
                let file = std::fs::File::open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                (
                    Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                    len,
                )
            }
        };
        let mut len = [0u8; 4];
        reader
            .read_exact(&mut len)
            .map_err(|_| "malformed: no message length".to_string())?;
        let len = u32::from_le_bytes(len) as usize;
        if len > Self::MAX_MESSAGE || 4 + len as u64 > total {
            return Err(format!("malformed: message length {len}"));
        }
        let mut msg = vec![0u8; len];
        reader
            .read_exact(&mut msg)
            .map_err(|_| "malformed: truncated message".to_string())?;
        let msg =
            keel_consensus::Message::decode(&msg).map_err(|e| format!("malformed message: {e}"))?;
        Ok((msg, total - 4 - len as u64, reader))
    }
}

/// A snapshot from the leader whose database was restored next to the live one, to install.
pub struct PreparedInstall {
    from: u64,
    msg: keel_consensus::Message,
    prepared: Result<mvcc::PreparedSnapshot, mvcc::Error>,
}

/// A MoveLeader call waiting for the transfer to finish.
struct PendingTransfer {
    call: CallId,
    target: u64,
    deadline: Instant,
}

/// A `Lock` call waiting for the keys created before its own to disappear.
pub struct LockWait {
    key: Vec<u8>,
    prefix: Vec<u8>,
    my_rev: i64,
    /// For an Election `Campaign`: the election name and lease (answered with a LeaderKey).
    campaign: Option<(Vec<u8>, i64)>,
}

impl LockWait {
    /// The answer once the wait is over, at store revision `rev`.
    fn granted(&self, h: &HeaderInfo, rev: i64) -> Vec<u8> {
        match &self.campaign {
            None => v3lockpb::LockResponse {
                header: Some(h.header(rev)),
                key: self.key.clone(),
            }
            .encode_to_vec(),
            Some((name, lease)) => v3electionpb::CampaignResponse {
                header: Some(h.header(rev)),
                leader: Some(v3electionpb::LeaderKey {
                    name: name.clone(),
                    key: self.key.clone(),
                    rev: self.my_rev,
                    lease: *lease,
                }),
            }
            .encode_to_vec(),
        }
    }
}

/// etcd's `GetPrefixRangeEnd`: the smallest key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // all keys
}

/// Linearizable reads waiting for their read index (thesis §6.4).
type ReadBatch = Vec<(CallId, PendingRead)>;

/// A read served once a ReadIndex confirmed this member is up to date (thesis §6.4).
enum PendingRead {
    /// A linearizable `Range`.
    Range(mvcc::RangeRequest),
    /// A `MemberList` with `linearizable` set (etcd 3.5's client sets it:
    /// `LinearizableReadNotify` first, then the local list).
    MemberList,
    /// v3election `Leader`: the oldest key under the election's prefix (etcd's
    /// `Election.Leader` is a linearizable Get).
    ElectionLeader(mvcc::RangeRequest),
}

/// An open streaming call.
enum Stream {
    /// `Watch`: the store's stream of watchers for this call.
    Watch(mvcc::WatchStream),
    /// `LeaseKeepAlive`.
    KeepAlive,
    /// Election `Observe`: the election name (once the request arrived) and the last leader
    /// proclamation sent, as (key, mod revision).
    Observe(Option<Vec<u8>>, Option<(Vec<u8>, i64)>),
}

/// Why a member could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// State shared between the loop and the apply thread.
struct Shared {
    header: HeaderInfo,
    term: AtomicU64,
    applied: AtomicU64,
    /// The membership table as of the apply thread's last applied entry (see
    /// [`crate::membership`]); names and client URLs come from [`Request::MemberAttributes`].
    membership: parking_lot::Mutex<Membership>,
    /// The cluster's raised alarms as of the apply thread's last applied entry (etcd's
    /// `AlarmStore`): changed only by [`Request::Alarm`] entries, in apply order, and stored
    /// with them ([`mvcc::MetaKey::Alarms`]).
    alarms: parking_lot::Mutex<AlarmSet>,
    /// `--quota-backend-bytes` (u64::MAX without a quota), for the apply thread's check.
    quota: u64,
    /// This member's backend file size as last sampled (by the loop's ticks, its quota check,
    /// or the apply thread when a request would exceed the quota).
    db_size: AtomicU64,
    /// The answer to the Alarm call whose entry is being applied: set by the apply thread just
    /// before it triggers the call's waiter (which runs at once, on that thread) and taken by it.
    alarm_reply: parking_lot::Mutex<Vec<pb::AlarmMember>>,
}

impl Shared {
    fn header(&self) -> HeaderInfo {
        HeaderInfo {
            raft_term: self.term.load(Ordering::Relaxed),
            ..self.header
        }
    }
}

/// A call being received.
struct PendingCall {
    rpc: Option<Rpc>,
    path: String,
    metadata: Metadata,
    message: Option<Vec<u8>>,
}

/// The member: the loop's handler.
pub struct Member {
    cfg: Config,
    id: u64,
    core: RaftCore,
    wal: Arc<wal::Wal>,
    store: mvcc::Store,
    waiters: Arc<Waiters<mvcc::Response>>,
    ids: IdGenerator,
    shared: Arc<Shared>,
    metrics: Arc<ServerMetrics>,
    apply_tx: mpsc::Sender<Vec<Entry>>,
    waker: LoopWaker<Wake>,
    /// Lease calls a follower forwards to the leader (see [`crate::forward`]).
    forwarder: crate::forward::Forwarder,
    /// A snapshot's database is being restored on a thread (one at a time).
    restoring_snapshot: bool,
    calls: HashMap<CallId, PendingCall>,
    streams: HashMap<CallId, Stream>,
    tick_timer: Option<TimerId>,
    max_request_bytes: usize,
    /// Origin of the leader-local lease clock (monotonic milliseconds).
    clock: Instant,
    /// Leases whose expiry revoke was proposed, and when (to re-propose after a second).
    revoking: HashMap<i64, Instant>,
    is_leader: bool,
    /// Other members' message-lane connections, read by this loop.
    lanes: HashMap<SourceId, MessageLane>,
    /// Lanes the transport handed over, to register with the loop.
    new_lanes: Vec<MessageLane>,
    /// Raft messages read from a lane (reused).
    lane_messages: Vec<Vec<u8>>,
    /// Raft was stepped since the last `pump` (it may have messages or entries to hand out).
    raft_stepped: bool,
    /// Linearizable reads received since the last ReadIndex request.
    read_batch: ReadBatch,
    /// ReadIndex requests in flight: context id → (deadline, reads).
    reads_in_flight: HashMap<u64, (Instant, ReadBatch)>,
    /// Leader: keep-alives waiting for the apply thread to reach the commit index they arrived
    /// at (commit index, stream, request).
    keep_alives_awaiting_apply: Vec<(u64, CallId, pb::LeaseKeepAliveRequest)>,
    /// Keep-alive streams the client half-closed while one of theirs waited (finished after).
    keep_alives_half_closed: HashSet<CallId>,
    /// Reads that arrived while no leader was known, with their deadlines: like etcd's read
    /// loop they wait for one (until the request timeout) instead of failing at once.
    reads_awaiting_leader: Vec<(Instant, ReadBatch)>,
    /// Reads whose read index is known, waiting for the apply thread to reach it.
    reads_ready: Vec<(u64, Instant, ReadBatch)>,
    /// Highest index handed to the apply thread.
    committed: u64,
    /// Backend file size, sampled on ticks, for the space quota.
    db_size: u64,
    ticks: u64,
    /// `--auto-compaction-*`.
    compactor: crate::compactor::AutoCompactor,
    /// Applied index at the last Raft log compaction (`--snapshot-count`).
    last_snapshot: u64,
    /// `Lock` calls waiting for their predecessors.
    locks: HashMap<CallId, LockWait>,
    /// The peer transport and its inbox.
    peers: Option<(Arc<PeerTransport>, Inbox)>,
    /// A MoveLeader call in progress.
    transfer: Option<PendingTransfer>,
    /// Proposals made while handling the current batch of events (request id, encoded
    /// envelope): proposed together, as one Raft append, at the end of the batch.
    proposals: Vec<(u64, Vec<u8>)>,
    /// Consecutive checks in which a majority of the other voters refused this member's
    /// handshake as an unknown sender (see `check_removed`).
    refused_rounds: u32,
}

/// A started member with its event loop, ready to [`RunningMember::run`].
pub struct RunningMember {
    event_loop: EventLoop<Wake>,
    member: Member,
    /// The client addresses actually bound.
    pub client_addrs: Vec<std::net::SocketAddr>,
}

impl RunningMember {
    /// Run the event loop until the process ends.
    pub fn run(mut self) -> std::io::Result<()> {
        self.event_loop.run(&mut self.member)
    }
}

/// Open the member's storage, start its threads and bind its client URLs.
pub fn start(cfg: Config, metrics: Arc<ServerMetrics>) -> Result<RunningMember, StartError> {
    let err = |what: &str, e: &dyn std::fmt::Display| StartError(format!("{what}: {e}"));
    if cfg.initial_members().is_empty() {
        return Err(StartError("--initial-cluster lists no members".into()));
    }
    let member_dir: PathBuf = cfg.data_dir.join("member");
    let wal_dir = member_dir.join("wal");
    std::fs::create_dir_all(&wal_dir)
        .map_err(|e| err(&format!("cannot create {}", wal_dir.display()), &e))?;
    remove_outgoing_snapshots(&member_dir);

    // The state machine first: its consistent index tells Raft what is already applied.
    let store_cfg = mvcc::StoreConfig {
        min_lease_ttl: cfg.min_lease_ttl_secs(),
        max_txn_ops: cfg.max_txn_ops as usize,
        ..mvcc::StoreConfig::default()
    };
    let db_path = member_dir.join("db");
    let store = mvcc::Store::open_path(&db_path, store_cfg)
        .map_err(|e| err(&format!("cannot open {}", db_path.display()), &e))?;
    let applied = store.consistent_index();

    // Who we are: from the flags (new cluster), from the existing members (joining), or from
    // what this data directory recorded (restart). See `bootstrap`.
    let has_wal = wal_dir.is_dir()
        && !wal::segment::list_segments(&wal_dir)
            .map_err(|e| err("cannot list the WAL", &e))?
            .is_empty();
    let stored = store
        .membership()
        .map_err(|e| err("cannot read the stored membership", &e))?;
    let identity =
        crate::bootstrap::resolve(&cfg, &member_dir, stored, has_wal).map_err(StartError)?;
    let alarms = stored_alarms(&store).map_err(|e| err("cannot read the stored alarms", &e))?;
    for (member, alarm) in alarms.list(None) {
        log_warn!("alarm {} of member {member:x} is raised", alarm.name());
    }
    let id = identity.member_id;
    let cluster_id = identity.cluster_id;
    let membership = identity.membership;

    let wal_fsync = metrics.wal_fsync.clone();
    let wal_opts = wal::WalOptions {
        logger: Arc::new(|line| crate::log::log(crate::log::Level::Warn, format_args!("{line}"))),
        fsync_observer: Some(Arc::new(move |d| wal_fsync.observe_duration(d))),
        ..wal::WalOptions::default()
    };
    let conf = membership.conf_state();
    let OpenedLog {
        wal,
        storage,
        fresh,
    } = open_log(
        &wal_dir,
        wal::Metadata {
            member_id: id,
            cluster_id,
        },
        conf,
        wal_opts,
    )
    .map_err(|e| err("cannot open the WAL", &e))?;
    if fresh {
        log_info!(
            "starting a new member {id:x} in cluster {cluster_id:x}; data in {}",
            cfg.data_dir.display()
        );
    } else {
        log_info!(
            "restarting member {id:x} in cluster {cluster_id:x} from {} (applied index {applied})",
            cfg.data_dir.display()
        );
    }
    let seed = id
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
    let mut core = RaftCore::new(
        id,
        storage,
        cfg.election_ticks() as usize,
        cfg.pre_vote,
        applied,
        seed,
    )
    .map_err(|e| err("cannot start raft", &e))?;
    core.campaign_if_alone(id);

    let max_request_bytes = cfg.max_request_bytes as usize;
    let loop_cfg = LoopConfig {
        grpc: GrpcConfig {
            max_recv_message_size: max_request_bytes + 512 * 1024,
            ..GrpcConfig::default()
        },
        ..LoopConfig::default()
    };
    let mut event_loop =
        EventLoop::new(loop_cfg).map_err(|e| err("cannot create the event loop", &e))?;
    let mut client_addrs = Vec::new();
    for u in &cfg.listen_client_urls {
        let addr = u
            .listen_addr()
            .map_err(|e| err("bad --listen-client-urls", &e))?;
        let bound = event_loop
            .listen(addr)
            .map_err(|e| err(&format!("cannot listen on {u} ({addr})"), &e))?;
        log_info!("serving client traffic on {u} ({bound})");
        client_addrs.push(bound);
    }
    let waker = event_loop.waker();

    // Peers: Raft messages travel over keel-net's peer transport, bound on the first
    // --listen-peer-urls; every other member is dialled at its first peer URL. The transport
    // runs even for a single member, so that members can be added.
    let peers = {
        let listen = cfg
            .listen_peer_urls
            .first()
            .ok_or_else(|| StartError("--listen-peer-urls is empty".into()))?;
        let addr = listen
            .listen_addr()
            .map_err(|e| err("bad --listen-peer-urls", &e))?;
        let mut pcfg = PeerTransportConfig::new(cluster_id, id, addr);
        // Snapshots from the leader are reassembled on disk, not in memory.
        pcfg.snapshot_spool_dir = Some(member_dir.clone());
        pcfg.message_lanes_to_owner = true;
        pcfg.log = Arc::new(|line: &str| {
            crate::log::log(crate::log::Level::Debug, format_args!("peer: {line}"))
        });
        let w = waker.clone();
        let (transport, inbox) = PeerTransport::start(pcfg, move || {
            let _ = w.wake(Wake::PeerInbox);
        })
        .map_err(|e| err(&format!("cannot listen for peers on {listen}"), &e))?;
        log_info!(
            "serving peer traffic on {listen} ({})",
            transport.local_addr()
        );
        for m in membership.list().iter().filter(|m| m.id != id) {
            add_peer_of(&transport, m);
        }
        Some((Arc::new(transport), inbox))
    };

    let shared = Arc::new(Shared {
        header: HeaderInfo {
            cluster_id,
            member_id: id,
            raft_term: 0,
        },
        term: AtomicU64::new(core.term()),
        applied: AtomicU64::new(applied),
        membership: parking_lot::Mutex::new(membership),
        alarms: parking_lot::Mutex::new(alarms),
        quota: cfg.quota_bytes().unwrap_or(u64::MAX),
        db_size: AtomicU64::new(0),
        alarm_reply: parking_lot::Mutex::new(Vec::new()),
    });
    if let Some((transport, _)) = &peers {
        // Joining members ask for the member list on the peer port (see `bootstrap`).
        let shared = shared.clone();
        transport.set_http_handler(Arc::new(move |path: &str| {
            (path == crate::bootstrap::MEMBERS_PATH).then(|| keel_net::peer::HttpReply {
                status: 200,
                content_type: "application/protobuf".into(),
                body: crate::bootstrap::members_body(
                    shared.header.cluster_id,
                    shared.header.member_id,
                    &shared.membership.lock(),
                ),
            })
        }));
    }
    let waiters = Arc::new(Waiters::new());
    let (apply_tx, apply_rx) = mpsc::channel::<Vec<Entry>>();
    let (commit_tx, commit_rx) = mpsc::channel::<()>();
    {
        let store = store.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("keel-commit".into())
            .spawn(move || commit_loop(commit_rx, store, metrics))
            .map_err(|e| err("cannot start the backend commit thread", &e))?;
    }
    {
        let store = store.clone();
        let waiters = waiters.clone();
        let shared = shared.clone();
        let metrics = metrics.clone();
        let waker = waker.clone();
        std::thread::Builder::new()
            .name("keel-apply".into())
            .spawn(move || apply_loop(apply_rx, commit_tx, store, waiters, shared, metrics, waker))
            .map_err(|e| err("cannot start the apply thread", &e))?;
    }

    let mut member = Member {
        id,
        core,
        wal: Arc::new(wal),
        store,
        waiters,
        ids: IdGenerator::new(id),
        shared,
        metrics,
        apply_tx,
        waker,
        forwarder: crate::forward::Forwarder::new(FORWARD_WORKERS)
            .map_err(|e| err("cannot start the forwarding threads", &e))?,
        restoring_snapshot: false,
        calls: HashMap::new(),
        streams: HashMap::new(),
        tick_timer: None,
        max_request_bytes,
        clock: Instant::now(),
        revoking: HashMap::new(),
        is_leader: false,
        lanes: HashMap::new(),
        new_lanes: Vec::new(),
        lane_messages: Vec::new(),
        raft_stepped: false,
        read_batch: Vec::new(),
        reads_in_flight: HashMap::new(),
        reads_awaiting_leader: Vec::new(),
        keep_alives_awaiting_apply: Vec::new(),
        keep_alives_half_closed: HashSet::new(),
        reads_ready: Vec::new(),
        committed: 0,
        db_size: 0,
        ticks: 0,
        compactor: crate::compactor::AutoCompactor::new(cfg.auto_compaction, Instant::now()),
        last_snapshot: applied,
        locks: HashMap::new(),
        peers,
        transfer: None,
        proposals: Vec::new(),
        refused_rounds: 0,
        cfg,
    };
    let tick = member.cfg.heartbeat_interval;
    member.tick_timer = Some(event_loop.ctx().add_timer_after(tick, TICK_TIMER));
    event_loop
        .ctx()
        .add_timer_after(PROGRESS_NOTIFY_INTERVAL, PROGRESS_TIMER);
    member.pump();
    Ok(RunningMember {
        event_loop,
        member,
        client_addrs,
    })
}

/// Dial member `m` at its first peer URL (a bad URL is logged: the member stays unreachable).
fn add_peer_of(transport: &PeerTransport, m: &pb::Member) {
    let addr = m
        .peer_urls
        .first()
        .ok_or_else(|| "no peer URL".to_string())
        .and_then(|u| crate::url::Url::parse(u).map_err(|e| e.to_string()))
        .and_then(|u| u.listen_addr().map_err(|e| e.to_string()));
    match addr {
        Ok(a) => {
            if transport.add_peer(m.id, a).is_err() {
                let _ = transport.update_peer(m.id, a);
            }
        }
        Err(e) => log_warn!("member {:x} cannot be dialled: {e}", m.id),
    }
}

/// The apply thread: applies committed entries to mvcc in batches and answers waiting clients.
///
/// As in etcd, a client is answered once its entry is applied to the store's in-memory state
/// (reads see it at once); the btree is committed by [`commit_loop`] on its own thread every
/// [`BACKEND_COMMIT_INTERVAL`], or sooner once [`BACKEND_COMMIT_ENTRIES`] entries wait. That is
/// safe because an entry is only applied after it is durable in the WAL: after a crash the
/// store reopens at its last commit ([`mvcc::Store::durable_index`]) and Raft hands the later
/// entries out again. The log is never compacted beyond the durable index (see
/// [`Member::maybe_compact_log`]).
fn apply_loop(
    rx: mpsc::Receiver<Vec<Entry>>,
    commit_now: mpsc::Sender<()>,
    store: mvcc::Store,
    waiters: Arc<Waiters<mvcc::Response>>,
    shared: Arc<Shared>,
    metrics: Arc<ServerMetrics>,
    waker: LoopWaker<Wake>,
) {
    while let Ok(mut entries) = rx.recv() {
        // Batch whatever else is queued.
        while let Ok(more) = rx.try_recv() {
            entries.extend(more);
        }
        apply_entries(&entries, &store, &waiters, &shared, &metrics, &waker);
        if store.pending_entries() >= BACKEND_COMMIT_ENTRIES {
            let _ = commit_now.send(());
        }
    }
    let _ = commit_now.send(());
}

/// The backend commit thread: commits what the apply thread applied, every
/// [`BACKEND_COMMIT_INTERVAL`] or when asked.
fn commit_loop(commit_now: mpsc::Receiver<()>, store: mvcc::Store, metrics: Arc<ServerMetrics>) {
    let mut last_trim = Instant::now();
    loop {
        let stop = matches!(
            commit_now.recv_timeout(BACKEND_COMMIT_INTERVAL),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        while commit_now.try_recv().is_ok() {}
        if store.pending_entries() > 0 {
            commit_backend(&store, &metrics);
        }
        if last_trim.elapsed() >= crate::heap::TRIM_INTERVAL {
            crate::heap::release_free_memory();
            last_trim = Instant::now();
        }
        if stop {
            return;
        }
    }
}

/// One btree commit of everything applied since the last one. A failure is fatal: clients were
/// answered from memory, and only a restart (replaying the WAL) makes the disk agree again.
fn commit_backend(store: &mvcc::Store, metrics: &ServerMetrics) {
    let started = Instant::now();
    match store.commit_pending() {
        Ok(stats) if stats.entries > 0 => {
            metrics.backend_commit.observe_duration(started.elapsed());
        }
        Ok(_) => {}
        Err(e) => crate::log::fatal(format_args!("cannot commit the backend: {e}")),
    }
}

/// Applies one batch of committed entries to the store's memory and answers their clients.
fn apply_entries(
    entries: &[Entry],
    store: &mvcc::Store,
    waiters: &Waiters<mvcc::Response>,
    shared: &Shared,
    metrics: &ServerMetrics,
    waker: &LoopWaker<Wake>,
) {
    // Entries at or below the store's consistent index were applied before this start:
    // the store skips them, and the membership table loaded with it already has them.
    let done = store.consistent_index();
    let mut requests = Vec::with_capacity(entries.len());
    let mut ids = Vec::with_capacity(entries.len());
    let mut events = Vec::new();
    let mut over_quota = Vec::new();
    let mut sync_conf = false;
    for e in entries {
        let (id, req) = if e.index <= done {
            // The store holds this entry already (an installed snapshot's database can be
            // ahead of Raft's log), and so does the membership table; but Raft's configuration
            // may not reflect a membership change among such entries (the snapshot's metadata
            // is older than its database): once this batch is through, Raft takes the table's
            // configuration, as a restart would. (At a restart Raft never hands out entries
            // the store holds: its applied index starts at the store's.)
            sync_conf |= e.kind == EntryKind::ConfChange;
            (0, mvcc::Request::Noop)
        } else {
            decode_entry(e, store, shared, waiters, &mut events, &mut over_quota)
        };
        ids.push(id);
        requests.push((e.index, req));
    }
    let results = store.apply_batch_deferred_owned(requests);
    for ((id, e), result) in ids.into_iter().zip(entries).zip(results) {
        let index = e.index;
        match &result {
            Err(mvcc::Error::AlreadyApplied { .. }) => continue,
            Err(e @ (mvcc::Error::Storage(_) | mvcc::Error::Corrupt(_))) => {
                crate::log::fatal(format_args!("applying entry {index} failed: {e}"));
            }
            _ => {}
        }
        // etcd's `quotaApplierV3`: a write applied while this member's backend is over its
        // quota is kept, but its client is told "database space exceeded" once this member
        // raised NOSPACE (see `Member::raise_nospace_for`).
        if id != 0 && !(result.is_ok() && over_quota.contains(&id)) {
            waiters.trigger(id, result.map_err(|e| convert::store_error(&e)));
        }
    }
    if !over_quota.is_empty() {
        let _ = waker.wake(Wake::RaiseNoSpace(over_quota));
    }
    if sync_conf {
        events.push(MembershipEvent::SyncConf);
    }
    for ev in events {
        let _ = waker.wake(Wake::Membership(ev));
    }
    if let Some(last) = entries.last() {
        shared.applied.store(last.index, Ordering::Relaxed);
        metrics.proposals_applied.set(last.index as f64);
        let _ = waker.wake(Wake::Applied(last.index));
    }
}

/// What one committed entry asks of the store, and the id of the client waiting for it (0 =
/// none). Membership entries update the table here, in apply order, and store it; alarm
/// entries update the cluster's alarms. Writes that find this member's backend over its quota
/// add their request id to `over_quota`.
fn decode_entry(
    e: &Entry,
    store: &mvcc::Store,
    shared: &Shared,
    waiters: &Waiters<mvcc::Response>,
    events: &mut Vec<MembershipEvent>,
    over_quota: &mut Vec<u64>,
) -> (u64, mvcc::Request) {
    match e.kind {
        EntryKind::ConfChange => {
            let cc = match keel_consensus::codec::decode_conf_change_entry(e) {
                Ok(cc) => cc,
                Err(err) => {
                    log_error!(
                        "entry {}: bad membership change ({err}); applying it as a no-op",
                        e.index
                    );
                    return (0, mvcc::Request::Noop);
                }
            };
            let ctx = ChangeContext::decode_lenient(&cc.context);
            let mut table = shared.membership.lock();
            let what = crate::membership::describe(&cc, &table);
            match table.apply_change(&cc, &ctx) {
                Ok(()) => {
                    log_info!(
                        "membership: {what} member {:x} (entry {}); voters {:x?}, learners {:x?}",
                        cc.node_id,
                        e.index,
                        table.conf_state().voters,
                        table.conf_state().learners
                    );
                    let blob = table.encode();
                    events.push(MembershipEvent::ConfChange(cc));
                    (ctx.request_id, mvcc::Request::SetMembership(blob))
                }
                Err(err) => {
                    log_info!(
                        "membership: {what} member {:x} (entry {}) refused: {}",
                        cc.node_id,
                        e.index,
                        err.status().message
                    );
                    drop(table);
                    waiters.trigger(ctx.request_id, Err(err.status()));
                    (0, mvcc::Request::Noop)
                }
            }
        }
        EntryKind::Normal if e.data.is_empty() => (0, mvcc::Request::Noop),
        EntryKind::Normal => match Envelope::decode(&e.data) {
            Ok(Envelope {
                id,
                request: Request::MemberAttributes(m),
            }) => {
                let mut table = shared.membership.lock();
                if table.set_attributes(&m) {
                    log_info!(
                        "member {:x} published name {:?} and client URLs {:?}",
                        m.id,
                        m.name,
                        m.client_urls
                    );
                    (id, mvcc::Request::SetMembership(table.encode()))
                } else {
                    (id, mvcc::Request::Noop)
                }
            }
            Ok(Envelope {
                id,
                request: Request::MemberUpdate(u),
            }) => {
                let mut table = shared.membership.lock();
                match table.update_peer_urls(u.id, &u.peer_urls) {
                    Ok(()) => {
                        log_info!("member {:x} now has peer URLs {:?}", u.id, u.peer_urls);
                        events.push(MembershipEvent::PeerUrls(u.id, u.peer_urls.clone()));
                        (id, mvcc::Request::SetMembership(table.encode()))
                    }
                    Err(err) => {
                        drop(table);
                        waiters.trigger(id, Err(err.status()));
                        (0, mvcc::Request::Noop)
                    }
                }
            }
            Ok(Envelope {
                id,
                request: Request::Alarm(ar),
            }) => {
                let mut set = shared.alarms.lock();
                let (answer, changed) = set.apply(ar.action, ar.member_id, ar.alarm);
                let stored = changed.then(|| set.encode());
                drop(set);
                if changed {
                    let (member, alarm) = answer[0];
                    if ar.action == pb::alarm_request::AlarmAction::Activate as i32 {
                        log_warn!("alarm {} raised by member {member:x}", alarm.name());
                    } else {
                        log_info!("alarm {} of member {member:x} cleared", alarm.name());
                    }
                }
                if id != 0 {
                    // The waiter's reply runs inside `trigger`, on this thread: it takes the
                    // answer from the slot (see `Member::alarm_call`).
                    *shared.alarm_reply.lock() = answer
                        .into_iter()
                        .map(|(member_id, a)| pb::AlarmMember {
                            member_id,
                            alarm: a.to_pb(),
                        })
                        .collect();
                    waiters.trigger(id, Ok(mvcc::Response::Noop { revision: 0 }));
                    shared.alarm_reply.lock().clear();
                }
                match stored {
                    Some(blob) => (0, mvcc::Request::SetMeta(mvcc::MetaKey::Alarms, blob)),
                    None => (0, mvcc::Request::Noop),
                }
            }
            // etcd's `applierV3Corrupt`: while CORRUPT is raised anywhere in the cluster,
            // every request that changes the store fails at apply with "corrupt cluster", on
            // every member alike (reads, read-only txns included, are still served).
            Ok(env) if changes_store(&env.request) && shared.alarms.lock().has(Alarm::Corrupt) => {
                waiters.trigger(env.id, Err(EtcdError::Corrupt.status()));
                (0, mvcc::Request::Noop)
            }
            // etcd's capped applier (`applierV3Capped`): while NOSPACE is raised anywhere in
            // the cluster, puts, txns that may put, and lease grants fail at apply, on every
            // member alike (the check in `quota_check` spares them the round trip).
            Ok(env) if space_cost(&env.request) > 0 && shared.alarms.lock().has(Alarm::NoSpace) => {
                waiters.trigger(env.id, Err(EtcdError::NoSpace.status()));
                (0, mvcc::Request::Noop)
            }
            Ok(env) => {
                let cost = space_cost(&env.request) as u64;
                let mut over = false;
                if cost > 0 && shared.db_size.load(Ordering::Relaxed) + cost >= shared.quota {
                    // The sample may predate a defragment: look again.
                    let size = store.status().db_size;
                    shared.db_size.store(size, Ordering::Relaxed);
                    over = size + cost >= shared.quota;
                }
                match to_store_request(env.request) {
                    Ok(r) => {
                        if over {
                            over_quota.push(env.id);
                        }
                        (env.id, r)
                    }
                    Err(status) => {
                        waiters.trigger(env.id, Err(status));
                        (0, mvcc::Request::Noop)
                    }
                }
            }
            Err(err) => {
                log_error!("entry {}: {err}; applying it as a no-op", e.index);
                (0, mvcc::Request::Noop)
            }
        },
    }
}

/// The cluster's alarms as the store holds them (none if never stored).
fn stored_alarms(store: &mvcc::Store) -> Result<AlarmSet, String> {
    match store
        .meta(mvcc::MetaKey::Alarms)
        .map_err(|e| e.to_string())?
    {
        Some(blob) => AlarmSet::decode(&blob).map_err(|e| e.to_string()),
        None => Ok(AlarmSet::default()),
    }
}

/// Removes the snapshot files a crash left: being written for a peer (`.out`, see
/// [`snapshot_file`]; a complete one is unlinked as soon as it is mapped) or received from one
/// (`.in`, the peer transport's spool files; removed once restored).
fn remove_outgoing_snapshots(member_dir: &std::path::Path) {
    let Ok(dir) = std::fs::read_dir(member_dir) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snapshot-") && (name.ends_with(".out") || name.ends_with(".in")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes a snapshot payload (`| message length: u32 LE | message | mvcc snapshot stream |`)
/// to `path`, maps it and removes the file: the returned map is the only way to its bytes, and
/// they live in the page cache (evictable, not in the heap) until the map is dropped.
fn snapshot_file(
    path: &std::path::Path,
    msg: &[u8],
    store: &mvcc::Store,
) -> Result<memmap2::Mmap, String> {
    use std::io::Write;
    let _ = std::fs::remove_file(path); // left by a crash while sending
    let written = (|| -> Result<std::fs::File, String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(&file);
        out.write_all(&(msg.len() as u32).to_le_bytes())
            .and_then(|_| out.write_all(msg))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        store.snapshot_to(&mut out).map_err(|e| e.to_string())?;
        out.flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        drop(out);
        Ok(file)
    })();
    let mapped = written.and_then(|file| {
        // SAFETY: the file lives in this member's data directory, which no other process
        // writes (the assumption the WAL and the btree rest on too); in this process it was
        // created (`create_new`) and filled by this thread and is unlinked just below, so no
        // handle writes or truncates it and the mapped bytes stay as written while the map
        // lives.
        unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| format!("cannot map {}: {e}", path.display()))
    });
    let _ = std::fs::remove_file(path);
    mapped
}

/// Size of the blobs the Snapshot stream sends (etcd: 32 KiB).
const SNAPSHOT_CHUNK: usize = 32 * 1024;

/// Hash, HashKV, Defragment and Snapshot, on their own thread; answers through the loop.
fn maintenance(
    rpc: Rpc,
    msg: &[u8],
    call: CallId,
    store: &mvcc::Store,
    waker: &LoopWaker<Wake>,
    shared: &Shared,
) {
    let h = shared.header();
    let err = |e: mvcc::Error| convert::store_error(&e);
    let result: Result<Vec<u8>, Status> = match rpc {
        Rpc::Hash => store
            .hash()
            .map(|hash| {
                pb::HashResponse {
                    header: Some(h.header(store.current_revision())),
                    hash,
                }
                .encode_to_vec()
            })
            .map_err(err),
        Rpc::HashKv => decode::<pb::HashKvRequest>(msg).and_then(|r| {
            store
                .hash_kv(r.revision)
                .map(|hk| {
                    pb::HashKvResponse {
                        header: Some(h.header(store.current_revision())),
                        hash: hk.hash,
                        compact_revision: hk.compact_revision,
                        hash_revision: hk.hash_revision,
                    }
                    .encode_to_vec()
                })
                .map_err(err)
        }),
        Rpc::Defragment => {
            log_info!("defragmenting the backend");
            store
                .defragment()
                .map(|()| {
                    pb::DefragmentResponse {
                        header: Some(h.header(store.current_revision())),
                    }
                    .encode_to_vec()
                })
                .map_err(err)
        }
        Rpc::Snapshot => {
            // etcd streams the database, then its SHA-256 as a last blob with remaining 0
            // (`etcdctl snapshot save` checks size % 512 == 32 and the digest).
            let mut db = Vec::new();
            match store.snapshot_to(&mut db) {
                Err(e) => Err(err(e)),
                Ok(_) => {
                    let total = db.len();
                    let mut sent = 0;
                    for chunk in db.chunks(SNAPSHOT_CHUNK) {
                        sent += chunk.len();
                        let resp = pb::SnapshotResponse {
                            header: Some(h.header(store.current_revision())),
                            remaining_bytes: (total - sent) as u64,
                            blob: chunk.to_vec(),
                            version: String::new(),
                        };
                        let _ = waker.wake(Wake::Send(call, resp.encode_to_vec()));
                    }
                    let digest = crate::sha256::digest(&db);
                    log_info!(
                        "sent a snapshot of {total} bytes, sha256 {}",
                        crate::sha256::to_hex(&digest)
                    );
                    Ok(pb::SnapshotResponse {
                        header: Some(h.header(store.current_revision())),
                        remaining_bytes: 0,
                        blob: digest.to_vec(),
                        version: String::new(),
                    }
                    .encode_to_vec())
                }
            }
        }
        other => Err(Status::unimplemented(other.path())),
    };
    let _ = waker.wake(Wake::Reply(call, result));
}

/// etcd's quota cost of a txn: the puts it may perform (a read-only txn costs nothing).
fn txn_cost(t: &pb::TxnRequest) -> usize {
    use pb::request_op::Request as R;
    t.success
        .iter()
        .chain(&t.failure)
        .map(|op| match &op.request {
            Some(R::RequestPut(p)) => p.key.len() + p.value.len() + KV_OVERHEAD,
            Some(R::RequestTxn(inner)) => txn_cost(inner),
            _ => 0,
        })
        .sum()
}

/// The request raising NOSPACE for member `id` (etcd's `quotaAlarmer`).
fn raise_nospace(id: u64) -> Request {
    Request::Alarm(pb::AlarmRequest {
        action: pb::alarm_request::AlarmAction::Activate as i32,
        member_id: id,
        alarm: pb::AlarmType::Nospace as i32,
    })
}

/// etcd's quota cost of a replicated request (`storage/quota.go`); the requests of non-zero
/// cost are those etcd's capped applier refuses while NOSPACE is raised.
fn space_cost(r: &Request) -> usize {
    match r {
        Request::Put(p) => p.key.len() + p.value.len() + KV_OVERHEAD,
        Request::LeaseGrant(_) => LEASE_OVERHEAD,
        Request::Txn(t) => txn_cost(t),
        _ => 0,
    }
}

/// Whether `r` may change the store (what etcd's corrupt applier refuses): puts, deletes,
/// txns with a put or delete in either branch, compactions, lease grants and revokes.
fn changes_store(r: &Request) -> bool {
    fn txn_writes(t: &pb::TxnRequest) -> bool {
        use pb::request_op::Request as R;
        t.success
            .iter()
            .chain(&t.failure)
            .any(|op| match &op.request {
                Some(R::RequestPut(_) | R::RequestDeleteRange(_)) => true,
                Some(R::RequestTxn(inner)) => txn_writes(inner),
                Some(R::RequestRange(_)) | None => false,
            })
    }
    match r {
        Request::Put(_)
        | Request::DeleteRange(_)
        | Request::Compaction(_)
        | Request::LeaseGrant(_)
        | Request::LeaseRevoke(_) => true,
        Request::Txn(t) => txn_writes(t),
        _ => false,
    }
}

/// The store's form of a replicated request.
fn to_store_request(r: Request) -> Result<mvcc::Request, Status> {
    Ok(match r {
        Request::Range(x) => mvcc::Request::Range(convert::range_request(&x)),
        // The hot path: keys and values move into the store's request without a copy.
        Request::Put(x) => mvcc::Request::Put(mvcc::PutRequest {
            key: x.key,
            value: x.value,
            lease: x.lease,
            prev_kv: x.prev_kv,
            ignore_value: x.ignore_value,
            ignore_lease: x.ignore_lease,
        }),
        Request::DeleteRange(x) => mvcc::Request::DeleteRange(convert::delete_range_request(&x)),
        Request::Txn(x) => mvcc::Request::Txn(convert::txn_request(&x)?),
        Request::Compaction(x) => mvcc::Request::Compact(convert::compaction_request(&x)),
        Request::LeaseGrant(x) => mvcc::Request::LeaseGrant(convert::lease_grant_request(&x)),
        Request::LeaseRevoke(x) => mvcc::Request::LeaseRevoke(convert::lease_revoke_request(&x)),
        // Applied by the apply thread itself (member attributes); a no-op for mvcc.
        Request::MemberAttributes(_) | Request::MemberUpdate(_) | Request::Alarm(_) => {
            mvcc::Request::Noop
        }
        Request::LeaseCheckpoint(x) => mvcc::Request::LeaseCheckpoint(
            x.checkpoints
                .iter()
                .map(|c| mvcc::LeaseCheckpoint {
                    id: c.id,
                    remaining_ttl: c.remaining_ttl,
                })
                .collect(),
        ),
    })
}

/// Encode the store's response as the wire response of `rpc`.
fn encode_response(rpc: Rpc, resp: mvcc::Response, h: &HeaderInfo) -> Result<Vec<u8>, Status> {
    use mvcc::Response as R;
    Ok(match (rpc, resp) {
        (Rpc::Range, R::Range(r)) => convert::range_response(r, h).encode_to_vec(),
        (Rpc::Put, R::Put(r)) => convert::put_response(r, h).encode_to_vec(),
        (Rpc::DeleteRange, R::DeleteRange(r)) => {
            convert::delete_range_response(r, h).encode_to_vec()
        }
        (Rpc::Txn, R::Txn(r)) => convert::txn_response(r, h).encode_to_vec(),
        (Rpc::Compact, R::Compact(r)) => convert::compaction_response(r, h).encode_to_vec(),
        (Rpc::LeaseGrant, R::LeaseGrant(r)) => convert::lease_grant_response(r, h).encode_to_vec(),
        (Rpc::LeaseRevoke, R::LeaseRevoke(r)) => {
            convert::lease_revoke_response(r, h).encode_to_vec()
        }
        (rpc, other) => {
            return Err(Status::new(
                Code::Internal,
                format!("keel: {rpc:?} was answered with {other:?}"),
            ));
        }
    })
}

/// The status etcd's v3lock / v3election servers answer for an error of the txn they ran.
///
/// etcd runs `Lock` and `Campaign` through its in-process clientv3, whose `toErr` turns every
/// known etcd error (e.g. "etcdserver: requested lease not found", NotFound on the KV service)
/// into a plain `rpctypes.EtcdError`; the lock/election servers return it as is, and grpc-go
/// answers a non-status error with code Unknown and the same text. Other statuses keep their
/// code (clientv3 passes errors outside its table through unchanged).
fn as_client_error(s: Status) -> Status {
    if s.etcd_error().is_some() {
        Status::unknown(s.message)
    } else {
        s
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, Status> {
    M::decode(bytes).map_err(|e| {
        Status::new(
            Code::Internal,
            format!("grpc: error unmarshalling request: {e}"),
        )
    })
}

fn to_net_status(s: &Status) -> keel_net::grpc::Status {
    keel_net::grpc::Status::new(
        keel_net::grpc::Code::from_i32(s.code.as_u32() as i32),
        s.message.to_string(),
    )
}

/// A status received from another member, in this crate's form.
fn to_local_status(s: &keel_net::grpc::Status) -> Status {
    Status::new(Code::from_u32(s.code as i32 as u32), s.message.clone())
}

/// etcd's `isRPCSupportedForLearner`: a learner answers Status and serializable ranges only;
/// plus the Snapshot stream, which etcd's stream interceptor lets through on a learner.
fn learner_serves(rpc: Rpc, msg: &[u8]) -> bool {
    match rpc {
        Rpc::Status | Rpc::Snapshot => true,
        Rpc::Range => pb::RangeRequest::decode(msg).is_ok_and(|r| r.serializable),
        _ => false,
    }
}

impl Member {
    /// Whether this member is a learner (non-voting; thesis §4.2.1).
    fn is_learner(&self) -> bool {
        self.shared.membership.lock().is_learner(self.id)
    }

    /// Milliseconds on the member's monotonic lease clock.
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// Propose a request nobody waits for (lease expiry, checkpoints).
    fn propose_internal(&mut self, request: Request) {
        let data = Envelope { id: 0, request }.encode();
        self.proposals.push((0, data));
    }

    /// Propose everything queued since the last flush as one append (one Raft message to the
    /// leader from a follower, one MsgApp per follower from the leader). A refused batch fails
    /// every waiting client in it.
    fn flush_proposals(&mut self) {
        if self.proposals.is_empty() {
            return;
        }
        if self.core.leader() == 0 {
            // Held until a leader is known; those whose client gave up (timed out) are dropped.
            let waiters = &self.waiters;
            // Internal ones (id 0: lease expiry, checkpoints) are dropped as before: the next
            // leader proposes its own.
            self.proposals
                .retain(|(id, _)| *id != 0 && waiters.contains(*id));
            return;
        }
        let (ids, data): (Vec<u64>, Vec<Vec<u8>>) =
            std::mem::take(&mut self.proposals).into_iter().unzip();
        self.metrics.proposal_appends.inc();
        self.metrics.proposals.add(ids.len() as u64);
        if let Err(e) = self.core.propose_batch(data) {
            log_debug!("{} proposals dropped: {e}", ids.len());
            let status = match e {
                keel_consensus::Error::ProposalDropped(_)
                | keel_consensus::Error::NotLeader { .. } => EtcdError::NoLeader.status(),
                other => Status::new(Code::Unknown, other.to_string()),
            };
            for id in ids.into_iter().filter(|&id| id != 0) {
                self.metrics.proposals_failed.inc();
                self.waiters.trigger(id, Err(status.clone()));
            }
        }
    }

    /// Fail the proposals held for want of a leader (see [`Self::flush_proposals`]) whose
    /// deadline passed. etcd's raft node never took them (`Propose` blocks while there is no
    /// leader) and its request context expires: the client gets that context's error, code
    /// Unknown "context deadline exceeded", not "request timed out".
    fn expire_held_proposals(&mut self, now: Instant) {
        if self.proposals.is_empty() || self.core.leader() != 0 {
            return;
        }
        let held: Vec<u64> = self.proposals.iter().map(|(id, _)| *id).collect();
        let status = Status::new(Code::Unknown, "context deadline exceeded");
        if self.waiters.expire_with(now, &held, &status) > 0 {
            let waiters = &self.waiters;
            self.proposals.retain(|(id, _)| waiters.contains(*id));
        }
    }

    /// Publish this member's name and client URLs through Raft so that every member's
    /// MemberList shows them (etcd's `publish`). Checked whenever a leader is seen and every
    /// [`ATTRIBUTES_REFRESH_TICKS`] ticks; proposed only while the table (which is stored and
    /// replicated) does not show them yet.
    fn publish_attributes(&mut self) {
        if self.core.leader() == 0 {
            return;
        }
        let mine = pb::Member {
            id: self.id,
            name: self.cfg.name.clone(),
            client_urls: self
                .cfg
                .advertise_client_urls
                .iter()
                .map(|u| u.to_string())
                .collect(),
            ..Default::default()
        };
        let published = self
            .shared
            .membership
            .lock()
            .get(self.id)
            .is_none_or(|m| m.name == mine.name && m.client_urls == mine.client_urls);
        if !published {
            self.propose_internal(Request::MemberAttributes(mine));
        }
    }

    /// etcd's space quota (`quotaKVServer` + `quotaAlarmer`), for a mutating request of `cost`
    /// bytes, checked in etcd's order:
    /// 1. when this member's backend plus the request would exceed `--quota-backend-bytes`, the
    ///    member proposes raising NOSPACE for itself through Raft and, once that entry is
    ///    applied (or failed), answers the call "database space exceeded" (`Err(None)`: the
    ///    call is answered later);
    /// 2. while any member's NOSPACE alarm is raised, the call is refused at once
    ///    (`Err(Some(..))`); the apply thread would refuse it anyway (see `space_cost`).
    fn quota_check(&mut self, call: CallId, cost: usize) -> Result<(), Option<Status>> {
        if cost == 0 {
            return Ok(());
        }
        if let Some(quota) = self.cfg.quota_bytes() {
            if self.db_size + cost as u64 >= quota {
                // The sample may predate a compaction + defragment: look again before refusing.
                self.db_size = self.store.status().db_size;
                self.shared.db_size.store(self.db_size, Ordering::Relaxed);
            }
            if self.db_size + cost as u64 >= quota {
                log_warn!(
                    "raising alarm NOSPACE: backend {} bytes + request {cost} bytes reach the quota of {quota} bytes",
                    self.db_size
                );
                let waker = self.waker.clone();
                let reply = Box::new(move |_: Result<mvcc::Response, Status>| {
                    let _ = waker.wake(Wake::Reply(call, Err(EtcdError::NoSpace.status())));
                });
                return match self.propose_with(raise_nospace(self.id), reply) {
                    // etcd ignores the outcome of raising the alarm.
                    Ok(()) => Err(None),
                    Err(_) => Err(Some(EtcdError::NoSpace.status())),
                };
            }
        }
        if self.shared.alarms.lock().has(Alarm::NoSpace) {
            return Err(Some(EtcdError::NoSpace.status()));
        }
        Ok(())
    }

    /// The apply thread applied writes `ids` while this member's backend was over its quota:
    /// as etcd's `applyEntryNormal`, raise NOSPACE for this member through Raft (unless a
    /// NOSPACE alarm is raised by now), then answer their clients "database space exceeded"
    /// (whatever became of the alarm).
    fn raise_nospace_for(&mut self, ids: Vec<u64>) {
        let waiters = self.waiters.clone();
        let refuse = move |ids: &[u64]| {
            for &id in ids {
                waiters.trigger(id, Err(EtcdError::NoSpace.status()));
            }
        };
        if self.shared.alarms.lock().has(Alarm::NoSpace) {
            return refuse(&ids);
        }
        log_warn!(
            "the backend exceeded its quota of {} bytes while applying writes: raising alarm NOSPACE",
            self.shared.quota
        );
        let (later, now) = (ids.clone(), refuse.clone());
        let reply = Box::new(move |_: Result<mvcc::Response, Status>| refuse(&later));
        if self.propose_with(raise_nospace(self.id), reply).is_err() {
            now(&ids);
        }
    }

    /// Maintenance.Alarm: like etcd, every action (GET too, so that it is linearizable) goes
    /// through Raft and is answered once applied, from the replicated alarms, with what
    /// [`AlarmSet::apply`] answers.
    fn alarm_call(&mut self, call: CallId, r: pb::AlarmRequest) -> Option<Result<Vec<u8>, Status>> {
        let waker = self.waker.clone();
        let shared = self.shared.clone();
        let store = self.store.clone();
        let reply = Box::new(move |result: Result<mvcc::Response, Status>| {
            let bytes = result.map(|_| {
                pb::AlarmResponse {
                    header: Some(shared.header().header(store.current_revision())),
                    alarms: std::mem::take(&mut *shared.alarm_reply.lock()),
                }
                .encode_to_vec()
            });
            let _ = waker.wake(Wake::Reply(call, bytes));
        });
        match self.propose_with(Request::Alarm(r), reply) {
            Ok(()) => None,
            Err(s) => Some(Err(s)),
        }
    }

    /// `StatusResponse.errors`, as etcd's maintenance server fills it: "etcdserver: no leader"
    /// while the member knows no leader, then `AlarmMember.String()` of every raised alarm, of
    /// every member.
    fn status_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.core.leader() == 0 {
            errors.push(EtcdError::NoLeader.message().to_string());
        }
        errors.extend(
            self.shared
                .alarms
                .lock()
                .list(None)
                .into_iter()
                .map(|(member, a)| format!("memberID:{member} alarm:{} ", a.name())),
        );
        errors
    }

    /// Serve the linearizable reads whose read index the apply thread has reached.
    fn serve_reads(&mut self) {
        if self.reads_ready.is_empty() {
            return;
        }
        let applied = self.shared.applied.load(Ordering::Acquire);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_ready)
            .into_iter()
            .partition(|(index, _, _)| *index <= applied);
        self.reads_ready = waiting;
        let h = self.shared.header();
        for (_, _, batch) in ready {
            for (call, read) in batch {
                let result = match read {
                    PendingRead::Range(req) => self
                        .store
                        .range(&req)
                        .map(|r| convert::range_response(r, &h).encode_to_vec())
                        .map_err(|e| convert::store_error(&e)),
                    PendingRead::MemberList => Ok(pb::MemberListResponse {
                        header: Some(h.header(0)),
                        members: self.shared.membership.lock().list(),
                    }
                    .encode_to_vec()),
                    PendingRead::ElectionLeader(req) => self
                        .store
                        .range(&req)
                        .map_err(|e| convert::store_error(&e))
                        .and_then(|resp| match resp.kvs.first() {
                            None => Err(Status::unknown("election: no leader")),
                            Some(kv) => Ok(v3electionpb::LeaderResponse {
                                header: Some(h.header(resp.revision)),
                                kv: Some(convert::key_value(kv)),
                            }
                            .encode_to_vec()),
                        }),
                };
                let _ = self.waker.wake(Wake::Reply(call, result));
            }
        }
    }

    /// Fail reads whose ReadIndex never came back, or whose index is not applied in time.
    fn expire_reads(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .reads_in_flight
            .iter()
            .filter(|(_, (d, _))| *d <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((_, batch)) = self.reads_in_flight.remove(&id) {
                for (call, _) in batch {
                    let _ = self
                        .waker
                        .wake(Wake::Reply(call, Err(EtcdError::Timeout.status())));
                }
            }
        }
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_awaiting_leader)
            .into_iter()
            .partition(|(d, _)| *d <= now);
        self.reads_awaiting_leader = keep;
        for (_, batch) in late {
            for (call, _) in batch {
                let _ = self
                    .waker
                    .wake(Wake::Reply(call, Err(EtcdError::Timeout.status())));
            }
        }
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_ready)
            .into_iter()
            .partition(|(_, d, _)| *d <= now);
        self.reads_ready = keep;
        for (_, _, batch) in late {
            for (call, _) in batch {
                let _ = self.waker.wake(Wake::Reply(
                    call,
                    Err(EtcdError::TimeoutWaitAppliedIndex.status()),
                ));
            }
        }
    }

    /// v3lock `Lock` (etcd runs `concurrency.Mutex` in-process; keel runs the same recipe
    /// here): one txn puts `<name>/<lease hex>` if absent and reads the oldest key under the
    /// prefix; if that is not ours, wait until every key created before ours is gone.
    ///
    /// Election `Campaign` is the same recipe with a value (etcd's `concurrency.Election`).
    fn start_lock(
        &mut self,
        call: CallId,
        name: Vec<u8>,
        lease: i64,
        value: Vec<u8>,
        campaign: bool,
    ) -> Result<(), Status> {
        use pb::request_op::Request as R;
        let mut prefix = name.clone();
        prefix.push(b'/');
        let key = [prefix.clone(), format!("{lease:x}").into_bytes()].concat();
        let owner = pb::RequestOp {
            request: Some(R::RequestRange(pb::RangeRequest {
                key: prefix.clone(),
                range_end: prefix_end(&prefix),
                sort_order: pb::range_request::SortOrder::Ascend as i32,
                sort_target: pb::range_request::SortTarget::Create as i32,
                limit: 1,
                ..Default::default()
            })),
        };
        let txn = pb::TxnRequest {
            compare: vec![pb::Compare {
                result: pb::compare::CompareResult::Equal as i32,
                target: pb::compare::CompareTarget::Create as i32,
                key: key.clone(),
                target_union: Some(pb::compare::TargetUnion::CreateRevision(0)),
                range_end: vec![],
            }],
            success: vec![
                pb::RequestOp {
                    request: Some(R::RequestPut(pb::PutRequest {
                        key: key.clone(),
                        value,
                        lease,
                        ..Default::default()
                    })),
                },
                owner.clone(),
            ],
            failure: vec![
                pb::RequestOp {
                    request: Some(R::RequestRange(pb::RangeRequest {
                        key: key.clone(),
                        ..Default::default()
                    })),
                },
                owner,
            ],
        };
        let waker = self.waker.clone();
        let reply = Box::new(move |r: Result<mvcc::Response, Status>| {
            let _ = waker.wake(Wake::LockTxn(
                call,
                LockWait {
                    key,
                    prefix,
                    my_rev: 0,
                    campaign: campaign.then_some((name, lease)),
                },
                r,
            ));
        });
        self.propose_with(Request::Txn(txn), reply)
    }

    /// The lock txn was applied: own the lock at once, or wait for the predecessors.
    fn lock_txn_done(
        &mut self,
        ctx: &mut Ctx<Wake>,
        call: CallId,
        mut wait: LockWait,
        r: Result<mvcc::Response, Status>,
    ) {
        let t = match r {
            Ok(mvcc::Response::Txn(t)) => t,
            Ok(other) => {
                return Self::finish_call(
                    ctx,
                    call,
                    Err(Status::new(
                        Code::Internal,
                        format!("lock txn answered {other:?}"),
                    )),
                )
            }
            Err(s) => return Self::finish_call(ctx, call, Err(as_client_error(s))),
        };
        let range = |i: usize| match t.responses.get(i) {
            Some(mvcc::ResponseOp::Range(r)) => r.kvs.first().cloned(),
            _ => None,
        };
        wait.my_rev = if t.succeeded {
            t.revision
        } else {
            range(0).map(|kv| kv.create_revision).unwrap_or(0)
        };
        if !ctx.is_open(call) {
            // The client gave up meanwhile: release the key (etcd unlocks on cancellation).
            self.propose_internal(Request::DeleteRange(pb::DeleteRangeRequest {
                key: wait.key,
                ..Default::default()
            }));
            return;
        }
        match range(1) {
            Some(owner) if owner.create_revision != wait.my_rev => {
                self.locks.insert(call, wait);
                self.check_locks();
            }
            _ => {
                let h = self.shared.header();
                Self::finish_call(ctx, call, Ok(wait.granted(&h, t.revision)));
            }
        }
    }

    /// Election `Observe`: send each observer the current leader's proclamation when it changed
    /// (new leader or new value). Checked after every applied batch, so several changes inside
    /// one batch reach the observer as the last of them.
    fn check_observers(&mut self, ctx: &mut Ctx<Wake>) {
        let h = self.shared.header();
        let mut gone = Vec::new();
        for (call, stream) in self.streams.iter_mut() {
            let Stream::Observe(Some(name), last) = stream else {
                continue;
            };
            let mut prefix = name.clone();
            prefix.push(b'/');
            let req = mvcc::RangeRequest {
                key: prefix.clone(),
                range_end: prefix_end(&prefix),
                limit: 1,
                sort_order: mvcc::SortOrder::Ascend,
                sort_target: mvcc::SortTarget::Create,
                ..Default::default()
            };
            let Ok(resp) = self.store.range(&req) else {
                continue;
            };
            let Some(kv) = resp.kvs.first() else { continue };
            let current = (kv.key.clone(), kv.mod_revision);
            if last.as_ref() == Some(&current) {
                continue;
            }
            let msg = v3electionpb::LeaderResponse {
                header: Some(h.header(resp.revision)),
                kv: Some(convert::key_value(kv)),
            };
            if ctx.send_message(*call, &msg.encode_to_vec()).is_err() {
                gone.push(*call);
                continue;
            }
            *last = Some(current);
        }
        for call in gone {
            self.streams.remove(&call);
        }
    }

    /// Grant every waiting lock whose predecessors (keys under its prefix created before it)
    /// are all gone, after checking that its own key still exists (its lease may have expired
    /// meanwhile: etcd #11456).
    fn check_locks(&mut self) {
        if self.locks.is_empty() {
            return;
        }
        let h = self.shared.header();
        let mut done = Vec::new();
        for (call, w) in &self.locks {
            let before = mvcc::RangeRequest {
                key: w.prefix.clone(),
                range_end: prefix_end(&w.prefix),
                limit: 1,
                max_create_revision: w.my_rev - 1,
                sort_order: mvcc::SortOrder::Descend,
                sort_target: mvcc::SortTarget::Create,
                ..Default::default()
            };
            match self.store.range(&before) {
                Ok(r) if !r.kvs.is_empty() => continue,
                Ok(_) => {}
                Err(e) => {
                    done.push((*call, Err(convert::store_error(&e))));
                    continue;
                }
            }
            let mine = mvcc::RangeRequest {
                key: w.key.clone(),
                ..Default::default()
            };
            let result = match self.store.range(&mine) {
                Ok(r)
                    if r.kvs
                        .first()
                        .is_some_and(|kv| kv.create_revision == w.my_rev) =>
                {
                    Ok(w.granted(&h, r.revision))
                }
                Ok(_) => Err(Status::unknown("session: session is expired")),
                Err(e) => Err(convert::store_error(&e)),
            };
            done.push((*call, result));
        }
        for (call, result) in done {
            self.locks.remove(&call);
            let _ = self.waker.wake(Wake::Reply(call, result));
        }
    }

    /// Every `--snapshot-count` applied entries, compact Raft's log (keeping
    /// [`SNAPSHOT_CATCHUP_ENTRIES`]) and release WAL segments: the mvcc database is the snapshot.
    fn maybe_compact_log(&mut self) {
        // Only what the btree holds durably may leave the log: entries after the store's
        // durable index are replayed from the WAL after a crash.
        let durable = self.store.durable_index();
        let every = self.compaction_interval();
        if every == 0 || durable < self.last_snapshot + every {
            return;
        }
        let index = durable.saturating_sub(SNAPSHOT_CATCHUP_ENTRIES.min(every));
        match self.core.compact_log(index, &self.wal) {
            Ok(true) => log_info!("raft log compacted up to index {index} (durable {durable})"),
            Ok(false) => {}
            Err(e) => crate::log::fatal(format_args!("cannot write the WAL snapshot marker: {e}")),
        }
        self.last_snapshot = durable;
    }

    /// How many applied entries may accumulate in the Raft log before it is compacted:
    /// `--snapshot-count`, but at most [`MAX_LOG_ENTRIES_IN_MEMORY`]. Raft's log lives in
    /// memory, and everything older than the durable index is in the btree already, so
    /// keeping etcd's default 100,000 entries would cost tens of MiB for no gain: a follower
    /// further behind than the kept tail catches up by snapshot either way.
    fn compaction_interval(&self) -> u64 {
        self.cfg.snapshot_count.min(MAX_LOG_ENTRIES_IN_MEMORY)
    }

    /// A member removed while it was down never applies its own removal: the others stopped
    /// sending it the log. Like etcd (whose peers answer such a member "410 Gone"), it notices
    /// when a majority of the other voters keep refusing its handshake as an unknown sender
    /// while it has no leader, and stops.
    fn check_removed(&mut self) {
        let Some((transport, _)) = &self.peers else {
            return;
        };
        if self.core.leader() != 0 {
            self.refused_rounds = 0;
            return;
        }
        let others: Vec<u64> = self
            .shared
            .membership
            .lock()
            .conf_state()
            .voters
            .into_iter()
            .filter(|&v| v != self.id)
            .collect();
        let refusing = others
            .iter()
            .filter(|&&id| {
                transport.peer_stats(id).is_some_and(|s| {
                    s.refused == Some(keel_net::peer::handshake::Verdict::UnknownSender)
                })
            })
            .count();
        if others.is_empty() || refusing < crate::membership::quorum(others.len()) {
            self.refused_rounds = 0;
            return;
        }
        self.refused_rounds += 1;
        log_warn!(
            "{refusing} of {} other voters do not know this member ({}/{REMOVAL_CHECK_ROUNDS})",
            others.len(),
            self.refused_rounds
        );
        if self.refused_rounds >= REMOVAL_CHECK_ROUNDS {
            crate::log::fatal(format_args!(
                "the member has been permanently removed from the cluster"
            ));
        }
    }

    /// Leader only: revoke leases whose deadline passed (etcd's lessor `revokeExpiredLeases`).
    fn expire_leases(&mut self) {
        if !self.is_leader {
            return;
        }
        let now = Instant::now();
        self.revoking
            .retain(|_, at| now.duration_since(*at) < std::time::Duration::from_secs(1));
        for id in self.store.lease_expired(self.now_ms()) {
            if self.revoking.contains_key(&id) {
                continue;
            }
            log_info!("lease {id:x} expired; revoking it");
            self.revoking.insert(id, now);
            self.propose_internal(Request::LeaseRevoke(pb::LeaseRevokeRequest { id }));
        }
    }

    /// Send every response queued on a watch stream.
    ///
    /// Backpressure: while more than [`WATCH_SEND_BUDGET`] bytes wait in the connection for a
    /// slow reader, responses stay in mvcc's bounded stream queue (whose overflow makes the
    /// watchers catch up from history later, etcd's "victim" handling); every tick retries.
    fn drain_watch(&mut self, ctx: &mut Ctx<Wake>, call: CallId) {
        let Some(Stream::Watch(ws)) = self.streams.get(&call) else {
            return;
        };
        let h = self.shared.header();
        loop {
            match ctx.queued_bytes(call) {
                None => {
                    self.streams.remove(&call);
                    return;
                }
                Some(q) if q >= WATCH_SEND_BUDGET => return,
                Some(_) => {}
            }
            let Some(r) = ws.try_recv() else { return };
            let bytes = convert::watch_response(r, &h).encode_to_vec();
            if ctx.send_message(call, &bytes).is_err() {
                self.streams.remove(&call);
                return;
            }
        }
    }

    /// One request message on a streaming call.
    fn stream_message(&mut self, ctx: &mut Ctx<Wake>, call: CallId, message: &[u8]) {
        match self.streams.get(&call) {
            Some(Stream::Watch(ws)) => {
                let req: pb::WatchRequest = match decode(message) {
                    Ok(r) => r,
                    Err(s) => {
                        self.streams.remove(&call);
                        return Self::finish_call(ctx, call, Err(s));
                    }
                };
                use pb::watch_request::RequestUnion as U;
                match req.request_union {
                    Some(U::CreateRequest(c)) => {
                        if let Err(e) = ws.watch(&convert::watch_create_request(&c)) {
                            // etcd answers a failed create with created+canceled and the reason.
                            let h = self.shared.header();
                            let resp = pb::WatchResponse {
                                header: Some(h.header(self.store.current_revision())),
                                watch_id: -1,
                                created: true,
                                canceled: true,
                                cancel_reason: e.etcd_message(),
                                ..Default::default()
                            };
                            let _ = ctx.send_message(call, &resp.encode_to_vec());
                        }
                    }
                    Some(U::CancelRequest(c)) => {
                        ws.cancel(c.watch_id);
                    }
                    Some(U::ProgressRequest(_)) => ws.request_progress(),
                    None => {}
                }
                self.drain_watch(ctx, call);
            }
            Some(Stream::Observe(..)) => {
                let req: v3electionpb::LeaderRequest = match decode(message) {
                    Ok(r) => r,
                    Err(s) => {
                        self.streams.remove(&call);
                        return Self::finish_call(ctx, call, Err(s));
                    }
                };
                self.streams
                    .insert(call, Stream::Observe(Some(req.name), None));
                self.check_observers(ctx);
            }
            Some(Stream::KeepAlive) => {
                let req: pb::LeaseKeepAliveRequest = match decode(message) {
                    Ok(r) => r,
                    Err(s) => {
                        self.streams.remove(&call);
                        return Self::finish_call(ctx, call, Err(s));
                    }
                };
                if !self.is_leader {
                    // Only the leader holds lease deadlines: forward (etcd forwards keep-alives
                    // to the leader too, over its peer URL; keel uses the leader's published
                    // client URL).
                    if let Some(endpoint) = self.leader_client_endpoint() {
                        self.forward_keep_alive(call, endpoint, message.to_vec());
                        return;
                    }
                    self.streams.remove(&call);
                    return Self::finish_call(ctx, call, Err(EtcdError::NoLeader.status()));
                }
                // etcd 3.5's leader waits until it applied everything committed before renewing
                // (`waitAppliedIndex`): a lease granted through a follower may be committed and
                // applied there but not yet here, and "not found" would answer TTL 0, which
                // ends the client's session ("elect: session expired").
                // Raft's commit index, not `self.committed` (what was handed to the apply
                // thread): followers learn a commit before the leader's own WAL write of the
                // entry is durable, and only then does the leader hand it to its apply thread.
                let commit = self.core.status().hard_state.commit;
                let applied = self.shared.applied.load(Ordering::Acquire);
                if applied < commit {
                    self.keep_alives_awaiting_apply.push((commit, call, req));
                    return;
                }
                self.renew_lease(ctx, call, req);
            }
            None => {}
        }
    }

    /// Answer the keep-alives that waited for the apply thread to reach their commit index
    /// (see the `Stream::KeepAlive` case of `on_message`).
    fn renew_waiting_keep_alives(&mut self, ctx: &mut Ctx<Wake>) {
        if self.keep_alives_awaiting_apply.is_empty() {
            return;
        }
        let applied = self.shared.applied.load(Ordering::Acquire);
        let (ready, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.keep_alives_awaiting_apply)
                .into_iter()
                .partition(|(index, _, _)| *index <= applied);
        self.keep_alives_awaiting_apply = waiting;
        for (_, call, req) in ready {
            if !self.streams.contains_key(&call) {
                self.keep_alives_half_closed.remove(&call);
                continue;
            }
            if !self.is_leader {
                self.keep_alives_half_closed.remove(&call);
                self.streams.remove(&call);
                Self::finish_call(ctx, call, Err(EtcdError::NoLeader.status()));
                continue;
            }
            self.renew_lease(ctx, call, req);
            let still_waiting = self
                .keep_alives_awaiting_apply
                .iter()
                .any(|(_, c, _)| *c == call);
            if !still_waiting && self.keep_alives_half_closed.remove(&call) {
                self.streams.remove(&call);
                if let Err(e) = ctx.finish(call, keel_net::grpc::Status::ok()) {
                    log_debug!("answer dropped: {e}");
                }
            }
        }
    }

    /// Leader: renew `req`'s lease and answer on the keep-alive stream `call`.
    fn renew_lease(&mut self, ctx: &mut Ctx<Wake>, call: CallId, req: pb::LeaseKeepAliveRequest) {
        // etcd: a lease that is gone (or expired) answers TTL 0, not an error.
        let ttl = match self.store.lease_renew(req.id, self.now_ms()) {
            Ok(renewal) => {
                if renewal.clear_checkpoint {
                    let cp = pb::LeaseCheckpoint {
                        id: req.id,
                        remaining_ttl: 0,
                    };
                    self.propose_internal(Request::LeaseCheckpoint(pb::LeaseCheckpointRequest {
                        checkpoints: vec![cp],
                    }));
                }
                renewal.ttl
            }
            Err(_) => 0,
        };
        let h = self.shared.header();
        let resp = pb::LeaseKeepAliveResponse {
            header: Some(h.header(self.store.current_revision())),
            id: req.id,
            ttl,
        };
        if ctx.send_message(call, &resp.encode_to_vec()).is_err() {
            self.streams.remove(&call);
        }
    }

    /// Relay the leader's answer to a forwarded keep-alive on `call`'s stream. Only the TTL
    /// (and ID) come from the leader: like etcd's follower (`LeaseRenew` forwards and returns
    /// the TTL, then `ls.hdr.fill(resp.Header)`), the header is this member's own — its
    /// member ID, raft term and revision.
    fn relay_keep_alive(&mut self, ctx: &mut Ctx<Wake>, call: CallId, bytes: &[u8]) {
        let leader_resp: pb::LeaseKeepAliveResponse = match decode(bytes) {
            Ok(r) => r,
            Err(s) => {
                self.streams.remove(&call);
                return Self::finish_call(ctx, call, Err(s));
            }
        };
        let resp = pb::LeaseKeepAliveResponse {
            header: Some(self.shared.header().header(self.store.current_revision())),
            id: leader_resp.id,
            ttl: leader_resp.ttl,
        };
        if let Err(e) = ctx.send_message(call, &resp.encode_to_vec()) {
            log_debug!("stream message dropped: {e}");
        }
    }

    /// `host:port` of the current leader's first published client URL, if known.
    fn leader_client_endpoint(&self) -> Option<String> {
        let leader = self.core.leader();
        if leader == 0 || leader == self.id {
            return None;
        }
        let table = self.shared.membership.lock();
        let url = table.get(leader)?.client_urls.first()?;
        Some(
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
        )
    }

    /// Forward one unary call to the leader (see [`crate::forward`]); its answer (or error
    /// status, "no leader" if it cannot be reached) answers `call`.
    fn forward_unary(&self, call: CallId, endpoint: String, rpc: Rpc, request: Vec<u8>) {
        use keel_net::client::ClientError;
        let waker = self.waker.clone();
        let path = rpc.path();
        let done = Box::new(move |r: Result<Vec<u8>, ClientError>| {
            let result = r.map_err(|e| match e {
                ClientError::Status(s) => to_local_status(&s),
                other => {
                    log_debug!("{path} forwarded to the leader failed: {other}");
                    EtcdError::NoLeader.status()
                }
            });
            let _ = waker.wake(Wake::Reply(call, result));
        });
        let timeout = self.cfg.request_timeout();
        self.forwarder.call(endpoint, path, request, timeout, done);
    }

    /// Send one `LeaseKeepAliveRequest` to the leader and relay its answer on `call`'s stream
    /// (an error ends the stream with "no leader").
    fn forward_keep_alive(&self, call: CallId, endpoint: String, request: Vec<u8>) {
        use keel_net::client::ClientError;
        let waker = self.waker.clone();
        let done = Box::new(move |r: Result<Vec<u8>, ClientError>| {
            let wake = match r {
                Ok(bytes) => Wake::KeepAliveForwarded(call, bytes),
                Err(e) => {
                    log_debug!("keep-alive forwarded to the leader failed: {e}");
                    Wake::Reply(call, Err(EtcdError::NoLeader.status()))
                }
            };
            let _ = waker.wake(wake);
        });
        let path = "/etcdserverpb.Lease/LeaseKeepAlive";
        let timeout = self.cfg.request_timeout();
        self.forwarder.call(endpoint, path, request, timeout, done);
    }

    /// Feed Raft's output to the WAL, the apply thread and (later) the peers, until Raft has
    /// nothing more to do or waits for the WAL.
    fn pump(&mut self) {
        self.raft_stepped = false;
        self.flush_proposals();
        if !self.read_batch.is_empty() {
            // One ReadIndex round for every read that arrived since the last one.
            let batch = std::mem::take(&mut self.read_batch);
            let deadline = Instant::now() + self.cfg.request_timeout();
            self.reads_awaiting_leader.push((deadline, batch));
        }
        if !self.reads_awaiting_leader.is_empty() && self.core.leader() != 0 {
            for (deadline, batch) in std::mem::take(&mut self.reads_awaiting_leader) {
                let ctx_id = self.ids.next();
                match self.core.read_index(ctx_id.to_le_bytes().to_vec()) {
                    Ok(()) => {
                        self.reads_in_flight.insert(ctx_id, (deadline, batch));
                    }
                    Err(e) => {
                        // Retried when Raft next steps, until the deadline (etcd's read loop
                        // retries its ReadIndex the same way).
                        log_debug!("read index refused: {e}");
                        self.reads_awaiting_leader.push((deadline, batch));
                    }
                }
            }
        }
        loop {
            let mut out = Output::default();
            let waker = self.waker.clone();
            let on_durable = move || -> wal::Callback {
                Box::new(move |r: Result<(), wal::WalError>| {
                    let _ = waker.wake(Wake::WalDone(r.map_err(|e| e.to_string())));
                })
            };
            if let Err(e) = self.core.poll(&self.wal, on_durable, &mut out) {
                crate::log::fatal(format_args!("cannot write the WAL: {e}"));
            }
            let progressed = !out.is_empty();
            self.handle_output(out);
            if !progressed || self.core.is_persisting() {
                break;
            }
        }
    }

    fn handle_output(&mut self, out: Output) {
        if let Some((leader, role, term)) = out.leadership {
            self.shared.term.store(term, Ordering::Relaxed);
            self.metrics
                .has_leader
                .set(if leader != 0 { 1.0 } else { 0.0 });
            self.metrics
                .is_leader
                .set(if role == Role::Leader { 1.0 } else { 0.0 });
            if leader != 0 {
                self.metrics.leader_changes.inc();
            }
            if leader != 0 {
                self.publish_attributes();
            }
            let leading = role == Role::Leader;
            if leading && !self.is_leader {
                // Only the leader tracks lease expiry; a new leader restarts every deadline.
                self.store.lease_promote(self.now_ms());
            } else if !leading && self.is_leader {
                self.store.lease_demote();
            }
            self.is_leader = leading;
            self.check_transfer();
            match role {
                Role::Leader => log_info!("{:x} became leader at term {term}", self.id),
                _ if leader != 0 => {
                    log_info!("{:x} elected leader {leader:x} at term {term}", self.id)
                }
                _ => log_info!("{:x} is {role:?} at term {term}, no leader", self.id),
            }
        }
        for rs in out.read_states {
            let Ok(bytes) = <[u8; 8]>::try_from(rs.context.as_slice()) else {
                continue;
            };
            if let Some((deadline, batch)) = self.reads_in_flight.remove(&u64::from_le_bytes(bytes))
            {
                self.reads_ready.push((rs.index, deadline, batch));
            }
        }
        self.serve_reads();
        self.send_messages(out.send);
        if let Some(last) = out.apply.last() {
            self.committed = last.index;
            self.metrics.proposals_committed.set(last.index as f64);
        }
        if !out.apply.is_empty() && self.apply_tx.send(out.apply).is_err() {
            crate::log::fatal(format_args!("the apply thread is gone"));
        }
    }

    /// Hand Raft's messages to the peer transport (never blocks; a full queue drops, and Raft
    /// retries on its own schedule, §5.3). They leave at the end of the loop turn
    /// (`on_batch_end`), so one turn's messages to a peer share one socket write.
    fn send_messages(&mut self, msgs: Vec<keel_consensus::Message>) {
        if msgs.is_empty() {
            return;
        }
        let Some((transport, _)) = &self.peers else {
            log_debug!("dropping {} raft messages: no peers", msgs.len());
            return;
        };
        for m in msgs {
            if m.msg_type == keel_consensus::MessageType::Snapshot {
                self.send_snapshot(transport.clone(), m);
                continue;
            }
            let mut buf = Vec::new();
            m.encode(&mut buf);
            if let Err(e) = transport.send_deferred(m.to, buf) {
                log_debug!("raft message to {:x} dropped: {e}", m.to);
            }
        }
    }

    /// InstallSnapshot (§7): Raft's snapshot message carries only the metadata (the log was
    /// compacted at `meta.index`); the state machine image is mvcc's database, streamed now (so
    /// it may be newer than `meta.index`: the receiver skips the entries it already holds by
    /// mvcc's consistent index, as etcd does). Built on a thread: the copy takes a while.
    ///
    /// Payload: `| message length: u32 LE | encoded Raft message | mvcc snapshot stream |`,
    /// written to a file in the member directory and sent from a memory map of it (see
    /// [`snapshot_file`]): the database image never sits in the heap.
    fn send_snapshot(&self, transport: Arc<PeerTransport>, m: keel_consensus::Message) {
        let to = m.to;
        let store = self.store.clone();
        let waker = self.waker.clone();
        let id = m.snapshot.as_ref().map(|s| s.meta.index).unwrap_or(0);
        let path = self
            .cfg
            .data_dir
            .join("member")
            .join(format!("snapshot-{to:x}-{id}.out"));
        log_info!("sending a snapshot at index {id} to {to:x}");
        let spawned = std::thread::Builder::new()
            .name("keel-snapshot-send".into())
            .spawn(move || {
                let mut msg = Vec::new();
                m.encode(&mut msg);
                let result = snapshot_file(&path, &msg, &store).and_then(|image| {
                    transport
                        .send_snapshot(to, id, image)
                        .map_err(|e| e.to_string())
                });
                if let Err(e) = result {
                    log_warn!("snapshot for {to:x} not sent: {e}");
                    let _ = waker.wake(Wake::SnapshotFailed(to));
                }
            });
        if spawned.is_err() {
            let _ = self.waker.wake(Wake::SnapshotFailed(to));
        }
    }

    /// A snapshot from the leader (see [`Member::send_snapshot`]). If it is ahead of what this
    /// member has committed, install it **in place**, as etcd's `applySnapshot`: the database
    /// image is restored next to the live one and verified on a thread while the store keeps
    /// serving (one snapshot at a time; another arriving meanwhile is dropped and the leader
    /// sends it again), then, back on the loop ([`Member::install_snapshot`]), swapped in (`mvcc::Store::install_prepared`: renamed over `member/db`, the in-memory
    /// state reloaded, watchers resynced from the new history), the membership table, alarms
    /// and peers follow it, and only then is the Raft message stepped: Raft adopts the snapshot
    /// in its next Ready, whose WAL write carries the snapshot marker (`RaftCore::poll`). A
    /// crash before the rename leaves the old state; after it, the member restarts on the new
    /// database and a WAL that may not have the marker yet: it replays entries the database
    /// already holds (skipped by their index) or asks for the snapshot again. The database can
    /// be ahead of the snapshot's index (it is streamed after the metadata was taken): the
    /// apply thread skips the entries it holds and hands their membership changes to Raft.
    fn receive_snapshot(&mut self, from: u64, payload: SnapshotPayload) {
        let spool = payload.spool_file();
        let discard = |why: &str| {
            if let Some(path) = &spool {
                let _ = std::fs::remove_file(path);
            }
            if !why.is_empty() {
                log_warn!("snapshot from {from:x} ignored: {why}");
            }
        };
        let (msg, db_bytes, mut reader) = match payload.open() {
            Ok(opened) => opened,
            Err(why) => return discard(&why),
        };
        let Some(meta) = msg.snapshot.as_ref().map(|s| s.meta.clone()) else {
            return discard("no snapshot in its message");
        };
        let status = self.core.status();
        if meta.index <= status.hard_state.commit || msg.term < status.hard_state.term {
            // Stale: Raft answers it (and ignores it).
            discard("");
            if let Err(e) = self.core.step(msg) {
                log_debug!("stale snapshot from {from:x} not stepped: {e}");
            }
            return;
        }
        if self.restoring_snapshot {
            log_debug!("snapshot from {from:x} dropped: another one is being restored");
            return discard("");
        }
        log_info!(
            "installing a snapshot from {from:x} at index {} term {} ({db_bytes} bytes)",
            meta.index,
            meta.term,
        );
        // 1. The database image is written next to the live one and verified on a thread of
        //    its own (the loop never waits on the disk), while the store keeps serving.
        let db_path = self.cfg.data_dir.join("member").join("db");
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new()
            .name("keel-snapshot-restore".into())
            .spawn(move || {
                let prepared = mvcc::Store::prepare_snapshot(&mut reader, &db_path);
                drop(reader);
                if let Some(path) = &spool {
                    let _ = std::fs::remove_file(path);
                }
                let _ = waker.wake(Wake::SnapshotPrepared(Box::new(PreparedInstall {
                    from,
                    msg,
                    prepared,
                })));
            });
        match spawned {
            Ok(_) => self.restoring_snapshot = true,
            Err(e) => log_warn!("snapshot from {from:x} dropped: cannot start a thread: {e}"),
        }
    }

    /// The snapshot database restored by [`Member::receive_snapshot`]'s thread: swap it in
    /// and let Raft adopt the snapshot.
    fn install_snapshot(&mut self, p: PreparedInstall) {
        self.restoring_snapshot = false;
        let PreparedInstall {
            from,
            msg,
            prepared,
        } = p;
        let Some(meta) = msg.snapshot.as_ref().map(|s| s.meta.clone()) else {
            return;
        };
        let status = self.core.status();
        if meta.index <= status.hard_state.commit || msg.term < status.hard_state.term {
            // The log caught up meanwhile: the database is not needed; Raft answers the message.
            drop(prepared);
            if let Err(e) = self.core.step(msg) {
                log_debug!("stale snapshot from {from:x} not stepped: {e}");
            }
            return;
        }
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                log_warn!("snapshot from {from:x} could not be restored: {e}");
                return;
            }
        };
        let ci = prepared.consistent_index();
        if ci < meta.index {
            log_warn!(
                "snapshot database from {from:x} is at index {ci}, below its metadata {}; ignored",
                meta.index
            );
            return;
        }
        // 2. Swap it in (unless the store already holds this state or a later one: an earlier
        //    snapshot whose Raft message was dropped, see below). Before Raft hears of the
        //    snapshot: the WAL's snapshot marker must never point past the state machine, and
        //    a store ahead of Raft's log is harmless (the apply skips entries it holds).
        if ci > self.store.consistent_index() {
            if let Err(e) = self.store.install_prepared(prepared) {
                crate::log::fatal(format_args!("cannot install the snapshot database: {e}"));
            }
            self.reload_installed_state(ci);
            log_info!(
                "snapshot installed in place at index {} (database at {ci})",
                meta.index
            );
        } else {
            drop(prepared);
        }
        // 3. Raft adopts the snapshot (§7) in its next Ready, which the WAL records with a
        //    snapshot marker (`RaftCore::poll`); or drops it while committed entries are out
        //    for applying, and the leader sends another.
        if let Err(e) = self.core.step(msg) {
            log_warn!("snapshot message from {from:x} not stepped: {e}");
        }
        self.pump();
    }

    /// After a snapshot replaced the store's contents: what the member derives from the store
    /// follows it — the membership table (and the peers dialled), the alarms, the applied
    /// index and the sampled backend size.
    fn reload_installed_state(&mut self, applied: u64) {
        let table = self.store.membership().and_then(|blob| {
            blob.map(|b| Membership::decode(&b).map_err(mvcc::Error::Corrupt))
                .transpose()
        });
        match table {
            Ok(Some(table)) => {
                let removed = table.get(self.id).is_none();
                *self.shared.membership.lock() = table;
                if removed {
                    crate::log::fatal(format_args!(
                        "the snapshot's membership no longer lists this member ({:x})",
                        self.id
                    ));
                }
                self.sync_peers_with_table();
            }
            Ok(None) => {}
            Err(e) => crate::log::fatal(format_args!("cannot read the snapshot's membership: {e}")),
        }
        let alarms = stored_alarms(&self.store).unwrap_or_else(|e| {
            crate::log::fatal(format_args!("cannot read the snapshot's alarms: {e}"))
        });
        *self.shared.alarms.lock() = alarms;
        self.shared.applied.store(applied, Ordering::Relaxed);
        self.metrics.proposals_applied.set(applied as f64);
        self.committed = self.committed.max(applied);
        self.db_size = self.store.status().db_size;
        self.shared.db_size.store(self.db_size, Ordering::Relaxed);
    }

    /// The peer transport dials exactly the other members of the table, at their URLs.
    fn sync_peers_with_table(&mut self) {
        let Some((transport, _)) = self.peers.as_ref() else {
            return;
        };
        let others: Vec<_> = {
            let table = self.shared.membership.lock();
            table
                .list()
                .iter()
                .filter(|m| m.id != self.id)
                .cloned()
                .collect()
        };
        for id in transport.peers() {
            if !others.iter().any(|m| m.id == id) {
                let _ = transport.remove_peer(id);
            }
        }
        for m in &others {
            add_peer_of(transport, m);
        }
    }

    /// Step every message waiting in the peer inbox into Raft.
    fn drain_peers(&mut self) {
        loop {
            let Some((_, inbox)) = &self.peers else {
                return;
            };
            let Some(ev) = inbox.try_recv() else {
                return;
            };
            match ev {
                PeerEvent::Message { from, payload } => self.step_peer_message(from, &payload),
                PeerEvent::MessageLane(lane) => self.new_lanes.push(lane),
                PeerEvent::Unreachable { peer } => self.core.report_unreachable(peer),
                PeerEvent::SnapshotStatus { to, result, .. } => {
                    self.core.report_snapshot(to, result.is_ok())
                }
                PeerEvent::Snapshot { from, data, .. } => {
                    self.receive_snapshot(from, SnapshotPayload::Bytes(data));
                }
                PeerEvent::SnapshotFile { from, path, .. } => {
                    self.receive_snapshot(from, SnapshotPayload::File(path));
                }
            }
        }
    }

    /// Decodes a Raft message from another member and steps it.
    fn step_peer_message(&mut self, from: u64, payload: &[u8]) {
        match keel_consensus::Message::decode(payload) {
            Ok(m) => {
                if let Err(e) = self.core.step(m) {
                    log_debug!("raft message from {from:x} not stepped: {e}");
                }
            }
            Err(e) => log_warn!("undecodable raft message from {from:x}: {e}"),
        }
        self.raft_stepped = true;
    }

    /// Registers the lanes the transport handed over, and reads what they hold already.
    fn adopt_lanes(&mut self, ctx: &mut Ctx<Wake>) {
        for mut lane in std::mem::take(&mut self.new_lanes) {
            match ctx.register_source(&mut lane) {
                Ok(id) => {
                    self.lanes.insert(id, lane);
                    self.read_lane(ctx, id);
                }
                Err(e) => log_warn!(
                    "cannot watch the connection from member {:x}: {e}; closing it",
                    lane.from()
                ),
            }
        }
    }

    /// Steps every Raft message a lane holds; drops the lane once its connection ended (the
    /// member reconnects with a new one).
    fn read_lane(&mut self, ctx: &mut Ctx<Wake>, id: SourceId) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        let from = lane.from();
        let mut messages = std::mem::take(&mut self.lane_messages);
        match lane.read_messages(&mut messages) {
            LaneStatus::Open => {}
            // More may be waiting; read it after this turn's other work.
            LaneStatus::Pending => {
                ctx.add_timer_after(std::time::Duration::ZERO, LANE_TIMER | id.0);
            }
            LaneStatus::Closed => {
                if let Some(mut lane) = self.lanes.remove(&id) {
                    let _ = ctx.deregister_source(&mut lane);
                }
            }
        }
        for payload in messages.drain(..) {
            self.step_peer_message(from, &payload);
        }
        self.lane_messages = messages;
    }

    fn finish_call(ctx: &mut Ctx<Wake>, call: CallId, result: Result<Vec<u8>, Status>) {
        let r = match result {
            Ok(bytes) => ctx.reply(call, &bytes),
            Err(s) => ctx.finish(call, to_net_status(&s)),
        };
        if let Err(e) = r {
            log_debug!("answer dropped: {e}");
        }
    }

    /// Propose `request` and answer `call` when it is applied.
    fn propose(&mut self, ctx: &mut Ctx<Wake>, call: CallId, rpc: Rpc, request: Request) {
        let waker = self.waker.clone();
        let shared = self.shared.clone();
        let reply = Box::new(move |r: Result<mvcc::Response, Status>| {
            let bytes = r.and_then(|resp| encode_response(rpc, resp, &shared.header()));
            let _ = waker.wake(Wake::Reply(call, bytes));
        });
        if let Err(s) = self.propose_with(request, reply) {
            Self::finish_call(ctx, call, Err(s));
        }
    }

    /// Propose `request`; `reply` runs (on the apply thread) with its result once applied, or
    /// with an error. Errors detected before proposing are returned instead.
    fn propose_with(
        &mut self,
        request: Request,
        reply: crate::wait::Reply<mvcc::Response>,
    ) -> Result<(), Status> {
        let id = self.ids.next();
        let data = Envelope { id, request }.encode();
        if data.len() > self.max_request_bytes {
            return Err(EtcdError::RequestTooLarge.status());
        }
        // No leader: the proposal waits for one in `proposals` (etcd's raft node does not take
        // proposals without a leader, and the request waits until its timeout).
        let applied = self.shared.applied.load(Ordering::Relaxed);
        if self.committed.saturating_sub(applied) > MAX_APPLY_LAG {
            return Err(EtcdError::TooManyRequests.status());
        }
        let deadline = Instant::now() + self.cfg.request_timeout();
        self.waiters.register(id, deadline, reply);
        self.metrics
            .proposals_pending
            .set(self.waiters.len() as f64);
        self.proposals.push((id, data));
        Ok(())
    }

    /// Handle one complete unary call.
    fn dispatch(&mut self, ctx: &mut Ctx<Wake>, call: CallId, pc: PendingCall) {
        let Some(rpc) = pc.rpc else {
            let s = Status::new(Code::Unimplemented, format!("unknown method {}", pc.path));
            return Self::finish_call(ctx, call, Err(s));
        };
        if pc.metadata.get_str("hasleader") == Some("true") && self.core.leader() == 0 {
            return Self::finish_call(ctx, call, Err(EtcdError::NoLeader.status()));
        }
        let msg = pc.message.unwrap_or_default();
        if self.is_learner() && !learner_serves(rpc, &msg) {
            return Self::finish_call(ctx, call, Err(EtcdError::NotSupportedForLearner.status()));
        }
        let result = self.handle_unary(ctx, call, rpc, &msg);
        if let Some(r) = result {
            Self::finish_call(ctx, call, r);
        }
    }

    /// Returns `Some(answer)` for calls answered at once, `None` for calls answered later.
    fn handle_unary(
        &mut self,
        ctx: &mut Ctx<Wake>,
        call: CallId,
        rpc: Rpc,
        msg: &[u8],
    ) -> Option<Result<Vec<u8>, Status>> {
        let h = self.shared.header();
        macro_rules! try_s {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(s) => return Some(Err(s)),
                }
            };
        }
        let validate = |req: &mvcc::Request, max: usize| {
            mvcc::validate_request(req, max).map_err(|e| convert::store_error(&e))
        };
        let max_ops = self.cfg.max_txn_ops as usize;
        match rpc {
            Rpc::Range => {
                let r: pb::RangeRequest = try_s!(decode(msg));
                let m = convert::range_request(&r);
                try_s!(validate(&mvcc::Request::Range(m.clone()), max_ops));
                if r.serializable {
                    self.metrics.ranges.inc();
                    let resp = try_s!(self.store.range(&m).map_err(|e| convert::store_error(&e)));
                    return Some(Ok(convert::range_response(resp, &h).encode_to_vec()));
                }
                self.metrics.ranges.inc();
                // Linearizable: wait for a ReadIndex confirmed by a quorum, then for the apply
                // thread to reach it, then read locally (thesis §6.4). Without a leader the
                // read waits for one, as etcd's does.
                self.read_batch.push((call, PendingRead::Range(m)));
                None
            }
            Rpc::Put => {
                let mut r: pb::PutRequest = try_s!(decode(msg));
                try_s!(convert::check_put(&mut r));
                if let Err(answer) =
                    self.quota_check(call, r.key.len() + r.value.len() + KV_OVERHEAD)
                {
                    return answer.map(Err);
                }
                self.metrics.puts.inc();
                self.propose(ctx, call, rpc, Request::Put(r));
                None
            }
            Rpc::DeleteRange => {
                let r: pb::DeleteRangeRequest = try_s!(decode(msg));
                try_s!(validate(
                    &mvcc::Request::DeleteRange(convert::delete_range_request(&r)),
                    max_ops
                ));
                self.metrics.deletes.inc();
                self.propose(ctx, call, rpc, Request::DeleteRange(r));
                None
            }
            Rpc::Txn => {
                let r: pb::TxnRequest = try_s!(decode(msg));
                let m = try_s!(convert::txn_request(&r));
                try_s!(validate(&mvcc::Request::Txn(m), max_ops));
                if let Err(answer) = self.quota_check(call, txn_cost(&r)) {
                    return answer.map(Err);
                }
                self.metrics.txns.inc();
                self.propose(ctx, call, rpc, Request::Txn(r));
                None
            }
            Rpc::Compact => {
                let r: pb::CompactionRequest = try_s!(decode(msg));
                self.propose(ctx, call, rpc, Request::Compaction(r));
                None
            }
            Rpc::LeaseGrant => {
                let r: pb::LeaseGrantRequest = try_s!(decode(msg));
                if r.ttl > mvcc::MAX_LEASE_TTL {
                    return Some(Err(EtcdError::LeaseTtlTooLarge.status()));
                }
                if let Err(answer) = self.quota_check(call, LEASE_OVERHEAD) {
                    return answer.map(Err);
                }
                self.propose(ctx, call, rpc, Request::LeaseGrant(r));
                None
            }
            Rpc::LeaseRevoke => {
                let r: pb::LeaseRevokeRequest = try_s!(decode(msg));
                self.propose(ctx, call, rpc, Request::LeaseRevoke(r));
                None
            }
            Rpc::LeaseTimeToLive if !self.is_leader && self.leader_client_endpoint().is_some() => {
                // Remaining TTLs are known to the leader only (etcd forwards this call too).
                let endpoint = self.leader_client_endpoint().unwrap_or_default();
                self.forward_unary(call, endpoint, Rpc::LeaseTimeToLive, msg.to_vec());
                None
            }
            Rpc::LeaseTimeToLive => {
                let r: pb::LeaseTimeToLiveRequest = try_s!(decode(msg));
                let rev = self.store.current_revision();
                let resp = match self.store.lease_time_to_live(r.id, r.keys, self.now_ms()) {
                    Ok(t) => pb::LeaseTimeToLiveResponse {
                        header: Some(h.header(rev)),
                        id: t.id,
                        ttl: t.ttl,
                        granted_ttl: t.granted_ttl,
                        keys: t.keys,
                    },
                    // etcd answers an unknown lease with TTL -1, not an error.
                    Err(mvcc::Error::LeaseNotFound) => pb::LeaseTimeToLiveResponse {
                        header: Some(h.header(rev)),
                        id: r.id,
                        ttl: -1,
                        granted_ttl: 0,
                        keys: vec![],
                    },
                    Err(e) => return Some(Err(convert::store_error(&e))),
                };
                Some(Ok(resp.encode_to_vec()))
            }
            Rpc::LeaseLeases => {
                let leases = self
                    .store
                    .lease_list()
                    .into_iter()
                    .map(|id| pb::LeaseStatus { id })
                    .collect();
                let resp = pb::LeaseLeasesResponse {
                    header: Some(h.header(self.store.current_revision())),
                    leases,
                };
                Some(Ok(resp.encode_to_vec()))
            }
            Rpc::Status => {
                let st = self.store.status();
                let rs = self.core.status();
                let resp = pb::StatusResponse {
                    header: Some(h.header(st.revision)),
                    version: crate::version::EMULATED_ETCD_VERSION.to_string(),
                    db_size: st.db_size as i64,
                    leader: self.core.leader(),
                    raft_index: rs.last_index,
                    raft_term: rs.hard_state.term,
                    raft_applied_index: self.shared.applied.load(Ordering::Relaxed),
                    errors: self.status_errors(),
                    db_size_in_use: st.db_size_in_use as i64,
                    is_learner: self.shared.membership.lock().is_learner(self.id),
                    storage_version: String::new(),
                    db_size_quota: self.cfg.quota_bytes().map(|q| q as i64).unwrap_or(0),
                    downgrade_info: None,
                };
                Some(Ok(resp.encode_to_vec()))
            }
            Rpc::Lock => {
                let r: v3lockpb::LockRequest = try_s!(decode(msg));
                try_s!(self
                    .start_lock(call, r.name, r.lease, Vec::new(), false)
                    .map_err(as_client_error));
                None
            }
            Rpc::Campaign => {
                let r: v3electionpb::CampaignRequest = try_s!(decode(msg));
                try_s!(self
                    .start_lock(call, r.name, r.lease, r.value, true)
                    .map_err(as_client_error));
                None
            }
            Rpc::Proclaim | Rpc::Resign => {
                // Both act only if the caller still leads: its key exists with its revision.
                let (leader, value) = if rpc == Rpc::Proclaim {
                    let r: v3electionpb::ProclaimRequest = try_s!(decode(msg));
                    (r.leader, Some(r.value))
                } else {
                    let r: v3electionpb::ResignRequest = try_s!(decode(msg));
                    (r.leader, None)
                };
                let Some(leader) = leader else {
                    return Some(Err(Status::unknown("\"leader\" field must be provided")));
                };
                use pb::request_op::Request as R;
                let op = match &value {
                    Some(v) => R::RequestPut(pb::PutRequest {
                        key: leader.key.clone(),
                        value: v.clone(),
                        ignore_lease: true,
                        ..Default::default()
                    }),
                    None => R::RequestDeleteRange(pb::DeleteRangeRequest {
                        key: leader.key.clone(),
                        ..Default::default()
                    }),
                };
                let txn = pb::TxnRequest {
                    compare: vec![pb::Compare {
                        result: pb::compare::CompareResult::Equal as i32,
                        target: pb::compare::CompareTarget::Create as i32,
                        key: leader.key.clone(),
                        target_union: Some(pb::compare::TargetUnion::CreateRevision(leader.rev)),
                        range_end: vec![],
                    }],
                    success: vec![pb::RequestOp { request: Some(op) }],
                    failure: vec![],
                };
                let waker = self.waker.clone();
                let shared = self.shared.clone();
                let proclaim = value.is_some();
                let reply = Box::new(move |res: Result<mvcc::Response, Status>| {
                    let bytes = res.and_then(|resp| match resp {
                        mvcc::Response::Txn(t) if proclaim && !t.succeeded => {
                            Err(Status::unknown("election: not leader"))
                        }
                        mvcc::Response::Txn(t) => {
                            let header = Some(shared.header().header(t.revision));
                            Ok(if proclaim {
                                v3electionpb::ProclaimResponse { header }.encode_to_vec()
                            } else {
                                v3electionpb::ResignResponse { header }.encode_to_vec()
                            })
                        }
                        other => Err(Status::new(
                            Code::Internal,
                            format!("election answered {other:?}"),
                        )),
                    });
                    let _ = waker.wake(Wake::Reply(call, bytes));
                });
                try_s!(self.propose_with(Request::Txn(txn), reply));
                None
            }
            Rpc::Leader => {
                // The oldest key under the election's prefix is the leader.
                let r: v3electionpb::LeaderRequest = try_s!(decode(msg));
                let mut prefix = r.name.clone();
                prefix.push(b'/');
                let req = mvcc::RangeRequest {
                    key: prefix.clone(),
                    range_end: prefix_end(&prefix),
                    limit: 1,
                    sort_order: mvcc::SortOrder::Ascend,
                    sort_target: mvcc::SortTarget::Create,
                    ..Default::default()
                };
                // Linearizable, like etcd's: a follower must not answer from a state older
                // than a Proclaim or Resign the client saw acknowledged.
                self.read_batch
                    .push((call, PendingRead::ElectionLeader(req)));
                None
            }
            Rpc::Unlock => {
                let r: v3lockpb::UnlockRequest = try_s!(decode(msg));
                let waker = self.waker.clone();
                let shared = self.shared.clone();
                let reply = Box::new(move |res: Result<mvcc::Response, Status>| {
                    let bytes = res.and_then(|resp| match resp {
                        mvcc::Response::DeleteRange(d) => Ok(v3lockpb::UnlockResponse {
                            header: Some(shared.header().header(d.revision)),
                        }
                        .encode_to_vec()),
                        other => Err(Status::new(
                            Code::Internal,
                            format!("unlock answered {other:?}"),
                        )),
                    });
                    let _ = waker.wake(Wake::Reply(call, bytes));
                });
                let del = pb::DeleteRangeRequest {
                    key: r.key,
                    ..Default::default()
                };
                try_s!(self.propose_with(Request::DeleteRange(del), reply));
                None
            }
            Rpc::Hash | Rpc::HashKv | Rpc::Defragment | Rpc::Snapshot => {
                // These read or rewrite the whole backend: run them off the loop thread.
                let store = self.store.clone();
                let waker = self.waker.clone();
                let shared = self.shared.clone();
                let msg = msg.to_vec();
                let spawned = std::thread::Builder::new()
                    .name("keel-maintenance".into())
                    .spawn(move || maintenance(rpc, &msg, call, &store, &waker, &shared));
                if let Err(e) = spawned {
                    return Some(Err(Status::new(
                        Code::Unavailable,
                        format!("keel: cannot start maintenance: {e}"),
                    )));
                }
                None
            }
            Rpc::Alarm => {
                let r: pb::AlarmRequest = try_s!(decode(msg));
                self.alarm_call(call, r)
            }
            Rpc::MemberList => {
                let r: pb::MemberListRequest = try_s!(decode(msg));
                if r.linearizable {
                    self.read_batch.push((call, PendingRead::MemberList));
                    return None;
                }
                Some(Ok(pb::MemberListResponse {
                    header: Some(h.header(0)),
                    members: self.shared.membership.lock().list(),
                }
                .encode_to_vec()))
            }
            Rpc::MemberAdd | Rpc::MemberRemove | Rpc::MemberPromote | Rpc::MemberUpdate => {
                self.membership_call(call, rpc, msg)
            }
            Rpc::MoveLeader => self.move_leader(call, msg),
            // etcd's auth store starts at revision 1 (`commitRevision` on a fresh backend) and
            // keel's never changes (auth stays disabled); etcd answers after applying, with the
            // KV revision in the header.
            Rpc::AuthStatus => Some(Ok(pb::AuthStatusResponse {
                header: Some(h.header(self.store.current_revision())),
                enabled: false,
                auth_revision: AUTH_REVISION,
            }
            .encode_to_vec())),
            other => Some(Err(Status::unimplemented(other.path()))),
        }
    }
}

impl Handler<Wake> for Member {
    fn on_call(&mut self, ctx: &mut Ctx<Wake>, event: CallEvent) {
        match event {
            CallEvent::Started {
                call,
                path,
                metadata,
                ..
            } => {
                let rpc = Rpc::from_path(&path);
                let streaming = rpc.is_some_and(|r| {
                    r.method().kind.client_streams() || r.method().kind.server_streams()
                });
                if streaming && rpc != Some(Rpc::Snapshot) && self.is_learner() {
                    // etcd's stream interceptor: a learner serves no streams except Snapshot
                    // ("learner does not support stream RPC except Snapshot").
                    return Self::finish_call(
                        ctx,
                        call,
                        Err(EtcdError::NotSupportedForLearner.status()),
                    );
                }
                match rpc {
                    Some(Rpc::Watch) => {
                        let waker = self.waker.clone();
                        let ws = self.store.watch_stream(move || {
                            let _ = waker.wake(Wake::WatchReady(call));
                        });
                        self.streams.insert(call, Stream::Watch(ws));
                    }
                    Some(Rpc::LeaseKeepAlive) => {
                        self.streams.insert(call, Stream::KeepAlive);
                    }
                    Some(Rpc::Observe) => {
                        self.streams.insert(call, Stream::Observe(None, None));
                    }
                    Some(r)
                        if r != Rpc::Snapshot
                            && (r.method().kind.client_streams()
                                || r.method().kind.server_streams()) =>
                    {
                        let s = Status::new(
                            Code::Unimplemented,
                            format!("keel: streaming call {path} is not implemented yet"),
                        );
                        Self::finish_call(ctx, call, Err(s));
                    }
                    _ => {
                        let pc = PendingCall {
                            rpc,
                            path,
                            metadata,
                            message: None,
                        };
                        self.calls.insert(call, pc);
                    }
                }
            }
            CallEvent::Message { call, message } => {
                if self.streams.contains_key(&call) {
                    self.stream_message(ctx, call, &message);
                    self.pump();
                } else if let Some(pc) = self.calls.get_mut(&call) {
                    if pc.message.is_some() {
                        self.calls.remove(&call);
                        let s = Status::new(
                            Code::Internal,
                            "grpc: unary call received more than one request message",
                        );
                        return Self::finish_call(ctx, call, Err(s));
                    }
                    pc.message = Some(message);
                }
            }
            CallEvent::HalfClosed { call } => {
                // etcd keeps a watch stream open after the client stops sending; a keep-alive
                // stream ends with OK.
                if let Some(Stream::KeepAlive) = self.streams.get(&call) {
                    if self
                        .keep_alives_awaiting_apply
                        .iter()
                        .any(|(_, c, _)| *c == call)
                    {
                        // Its last keep-alive waits for the apply thread: finish after it.
                        self.keep_alives_half_closed.insert(call);
                    } else {
                        self.streams.remove(&call);
                        if let Err(e) = ctx.finish(call, keel_net::grpc::Status::ok()) {
                            log_debug!("answer dropped: {e}");
                        }
                    }
                }
                if let Some(pc) = self.calls.remove(&call) {
                    // Proposals and reads wait for the end of the batch (`on_batch_end`).
                    self.dispatch(ctx, call, pc);
                }
            }
            CallEvent::Cancelled { call, .. } => {
                self.calls.remove(&call);
                self.streams.remove(&call);
                self.keep_alives_half_closed.remove(&call);
                if let Some(w) = self.locks.remove(&call) {
                    // etcd's Mutex deletes its key when the caller gives up waiting.
                    self.propose_internal(Request::DeleteRange(pb::DeleteRangeRequest {
                        key: w.key,
                        ..Default::default()
                    }));
                    self.pump();
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Wake>, _timer: TimerId, tag: u64) {
        if tag & LANE_TIMER != 0 {
            self.read_lane(ctx, SourceId(tag & !LANE_TIMER));
            return;
        }
        if tag == PROGRESS_TIMER {
            for s in self.streams.values() {
                if let Stream::Watch(ws) = s {
                    ws.progress_notify();
                }
            }
            ctx.add_timer_after(PROGRESS_NOTIFY_INTERVAL, PROGRESS_TIMER);
        }
        if tag == TICK_TIMER {
            self.core.tick();
            self.ticks += 1;
            if self.ticks % DB_SIZE_SAMPLE_TICKS == 1 {
                self.db_size = self.store.status().db_size;
                self.shared.db_size.store(self.db_size, Ordering::Relaxed);
                self.metrics.db_total_size.set(self.db_size as f64);
            }
            self.expire_leases();
            self.maybe_compact_log();
            if self.ticks % REMOVAL_CHECK_TICKS == 0 {
                self.check_removed();
            }
            if self.ticks % ATTRIBUTES_REFRESH_TICKS == 0 {
                self.publish_attributes();
            }
            if self.is_leader {
                let now = Instant::now();
                if let Some(rev) = self.compactor.poll(now, self.store.current_revision()) {
                    log_info!("auto compaction: compacting at revision {rev}");
                    self.propose_internal(Request::Compaction(pb::CompactionRequest {
                        revision: rev,
                        physical: false,
                    }));
                }
            }
            // Watchers behind the current revision catch up from history (etcd: every 100 ms),
            // and streams held back by a slow reader get another chance to drain.
            let watch_calls: Vec<CallId> = self
                .streams
                .iter()
                .filter(|(_, s)| matches!(s, Stream::Watch(_)))
                .map(|(c, _)| *c)
                .collect();
            if !watch_calls.is_empty() {
                if let Err(e) = self.store.sync_watchers() {
                    log_error!("watch catch-up failed: {e}");
                }
                for call in watch_calls {
                    self.drain_watch(ctx, call);
                }
            }
            self.expire_held_proposals(Instant::now());
            self.waiters.expire(Instant::now());
            self.expire_reads(Instant::now());
            self.check_transfer();
            self.metrics
                .proposals_pending
                .set(self.waiters.len() as f64);
            let tick = self.cfg.heartbeat_interval;
            self.tick_timer = Some(ctx.add_timer_after(tick, TICK_TIMER));
            self.pump();
        }
    }

    fn on_wake(&mut self, ctx: &mut Ctx<Wake>, payload: Wake) {
        match payload {
            Wake::WalDone(Ok(())) => {
                let mut out = Output::default();
                self.core.wal_done(&mut out);
                self.handle_output(out);
                self.pump();
            }
            Wake::WalDone(Err(e)) => crate::log::fatal(format_args!("the WAL failed: {e}")),
            Wake::Reply(call, result) => Self::finish_call(ctx, call, result),
            Wake::Send(call, bytes) => {
                if let Err(e) = ctx.send_message(call, &bytes) {
                    log_debug!("stream message dropped: {e}");
                }
            }
            Wake::KeepAliveForwarded(call, bytes) => self.relay_keep_alive(ctx, call, &bytes),
            Wake::WatchReady(call) => self.drain_watch(ctx, call),
            Wake::Applied(_) => {
                self.serve_reads();
                self.renew_waiting_keep_alives(ctx);
                self.check_locks();
                self.check_observers(ctx);
            }
            Wake::LockTxn(call, wait, result) => {
                self.lock_txn_done(ctx, call, wait, result);
                self.pump();
            }
            Wake::SnapshotFailed(to) => {
                self.core.report_snapshot(to, false);
                self.pump();
            }
            Wake::SnapshotPrepared(p) => self.install_snapshot(*p),
            Wake::PeerInbox => {
                self.drain_peers();
                self.adopt_lanes(ctx);
                self.pump();
            }
            Wake::Membership(ev) => self.on_membership_event(ev),
            Wake::RaiseNoSpace(ids) => self.raise_nospace_for(ids),
        }
    }

    fn on_source_ready(&mut self, ctx: &mut Ctx<Wake>, source: SourceId) {
        self.read_lane(ctx, source);
    }

    fn on_batch_end(&mut self, _ctx: &mut Ctx<Wake>) {
        if self.raft_stepped || !self.proposals.is_empty() || !self.read_batch.is_empty() {
            self.pump();
        }
        if let Some((transport, _)) = &self.peers {
            transport.flush();
        }
    }

    fn on_http1(&mut self, _ctx: &mut Ctx<Wake>, request: &Http1Request) -> Http1Response {
        let (path, query) = request
            .path
            .split_once('?')
            .unwrap_or((request.path.as_str(), ""));
        match (request.method.as_str(), path) {
            ("GET", "/health") => {
                let input = crate::health::HealthInput {
                    alarms: self.shared.alarms.lock().kinds(),
                    has_leader: self.core.leader() != 0,
                    range: Ok(()),
                };
                let (status, body) = crate::health::health_response(
                    &input,
                    &crate::health::HealthQuery::parse(query),
                );
                Http1Response::new(status, "text/plain; charset=utf-8", body)
            }
            ("GET", "/version") => {
                Http1Response::new(200, "application/json", crate::version::version_json())
            }
            ("GET", "/metrics") => {
                let st = self.store.status();
                self.metrics.db_total_size.set(st.db_size as f64);
                Http1Response::new(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(),
                )
            }
            _ => Http1Response::not_found(),
        }
    }
}

/// Replace this process with a fresh run of the same binary and arguments (after installing a
/// snapshot). File descriptors are close-on-exec, so the new run binds the same ports.
/// Run a member until the process is killed (the `keel` binary's main path).
pub fn run(cfg: Config) -> Result<(), StartError> {
    let metrics = Arc::new(ServerMetrics::new());
    let running = start(cfg, metrics)?;
    running
        .run()
        .map_err(|e| StartError(format!("event loop failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_file_holds_the_payload_and_is_gone_from_the_directory() {
        let dir = crate::raft_log::tests::temp_dir("snapshot-file");
        let store = mvcc::Store::open_path(dir.join("db"), mvcc::StoreConfig::default()).unwrap();
        let put = mvcc::Request::Put(mvcc::PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        });
        store.apply_batch(&[(1, put)]);
        let path = dir.join("snapshot-2-7.out");
        std::fs::write(&path, b"left by a crash").unwrap();
        let image = snapshot_file(&path, b"raft message", &store).unwrap();
        assert!(!path.exists(), "unlinked once mapped");
        assert_eq!(&image[..4], &12u32.to_le_bytes());
        assert_eq!(&image[4..16], b"raft message");
        let mut db = &image[16..];
        let restored =
            mvcc::Store::restore_path(&mut db, dir.join("restored"), mvcc::StoreConfig::default())
                .unwrap();
        assert_eq!(restored.consistent_index(), 1);
        assert_eq!(restored.hash_kv(0).unwrap(), store.hash_kv(0).unwrap());
        drop((restored, store, image));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn outgoing_snapshot_files_left_by_a_crash_are_removed_at_start() {
        let dir = crate::raft_log::tests::temp_dir("snapshot-leftovers");
        for name in [
            "snapshot-2-7.out",
            "snapshot-3-9.out",
            "db",
            "snapshot-notes.txt",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        remove_outgoing_snapshots(&dir);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["db", "snapshot-notes.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
