//! The simulated cluster: members, their disks and state machines, the network, faults,
//! clients, and the loop that checks every invariant after every step.

use std::collections::BTreeSet;

use keel_consensus::{
    conf_change_of, ConfChange, ConfChangeType, ConfState, Config, EntryKind, MemStorage,
    MessageType, Mutations, RawNode, Role, Snapshot, SplitMix64, Storage,
};

use crate::checker::{mix, Checker};
use crate::network::{Fate, Network};

/// Everything a run depends on, derived from one seed.
#[derive(Clone, Debug)]
pub struct SimParams {
    pub seed: u64,
    pub voters: u64,
    pub spares: u64,
    pub chaos_steps: u64,
    pub heal_limit: u64,
    pub drop_pm: u64,
    pub dup_pm: u64,
    pub max_delay: u64,
    pub crash_pm: u64,
    pub crash_mid_ready_pm: u64,
    pub restart_pm: u64,
    pub partition_pm: u64,
    pub heal_pm: u64,
    pub propose_pm: u64,
    pub read_pm: u64,
    pub conf_pm: u64,
    pub transfer_pm: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub max_size_per_msg: u64,
    pub max_inflight: usize,
    pub snapshot_every: u64,
    /// Percent chance that a crash or partition targets the current leader.
    pub target_leader_pct: u64,
    /// Per-mille chance, at two points of each Ready (before persisting, and between
    /// `advance_append` and applying), to step messages into the member — as an event loop
    /// with asynchronous disk writes would.
    pub interleave_pm: u64,
    pub mutations: Mutations,
}

impl SimParams {
    pub fn random(seed: u64, mutations: Mutations) -> SimParams {
        let mut r = SplitMix64::new(seed ^ 0x5EED_0FC0_FFEE);
        // One run in three is a "leader storm": leaders crash and get isolated constantly,
        // one entry per message — the schedules of the paper's Figure 8.
        let storm = r.chance(1, 3);
        let mut p = SimParams {
            seed,
            voters: if r.chance(1, 2) { 3 } else { 5 },
            spares: 2,
            chaos_steps: 500,
            heal_limit: 600,
            drop_pm: r.below(150),
            dup_pm: r.below(100),
            max_delay: 1 + r.below(6),
            crash_pm: r.below(40),
            crash_mid_ready_pm: r.below(30),
            restart_pm: 30 + r.below(70),
            partition_pm: r.below(40),
            heal_pm: 10 + r.below(30),
            propose_pm: 100 + r.below(400),
            read_pm: r.below(300),
            conf_pm: if r.chance(1, 2) { 10 } else { 0 },
            transfer_pm: r.below(6),
            pre_vote: r.chance(1, 2),
            check_quorum: r.chance(1, 2),
            election_tick: 10,
            heartbeat_tick: 1 + r.below(2) as usize,
            max_size_per_msg: [0, 16, 1 << 20][r.below(3) as usize],
            max_inflight: 1 + r.below(8) as usize,
            snapshot_every: 5 + r.below(60),
            target_leader_pct: r.below(60),
            interleave_pm: if r.chance(1, 2) { r.below(500) } else { 0 },
            mutations,
        };
        if storm {
            p.crash_pm = 60 + r.below(200);
            p.restart_pm = 150 + r.below(300);
            p.partition_pm = 30 + r.below(100);
            p.heal_pm = 50 + r.below(100);
            p.max_size_per_msg = 0;
            p.target_leader_pct = 50 + r.below(50);
            p.election_tick = 4 + r.below(5) as usize;
            p.heartbeat_tick = 1;
            p.chaos_steps = 1500;
        }
        p
    }
}

/// A member's application state: a hash chain over applied entries.
#[derive(Clone, Debug, Default)]
struct StateMachine {
    applied: u64,
    hash: u64,
    conf: ConfState,
}

impl StateMachine {
    fn from_snapshot(s: &Snapshot) -> StateMachine {
        let hash = if s.data.len() == 8 {
            u64::from_le_bytes(s.data[..8].try_into().unwrap())
        } else {
            0
        };
        StateMachine {
            applied: s.meta.index,
            hash,
            conf: s.meta.conf_state.clone(),
        }
    }
}

struct Node {
    id: u64,
    raw: Option<RawNode<MemStorage>>,
    /// The durable state while crashed.
    disk: MemStorage,
    tick_pm: u64,
    incarnation: u64,
    sm: StateMachine,
    commit_reported: u64,
    /// The commit index of the last hard state written with a sync (`Ready::must_sync`): a
    /// commit-only hard state need not be synced, so a crash may lose it.
    synced_commit: u64,
}

/// Counters describing what a run exercised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub steps: u64,
    pub elections: u64,
    pub committed: u64,
    pub crashes: u64,
    pub snapshots_sent: u64,
    pub reads_checked: u64,
    pub conf_changes: u64,
    pub timeout_now: u64,
    /// Fault and event counters: each must be non-zero across the CI seed budget, or the
    /// checker that depends on it could pass vacuously.
    pub dropped: u64,
    pub duplicated: u64,
    pub partitions: u64,
    pub one_way_partitions: u64,
    pub restarts: u64,
    pub torn_writes: u64,
    pub interleaved_steps: u64,
    pub snapshots_installed: u64,
    pub follower_reads_checked: u64,
    pub learners_added: u64,
    pub learners_promoted: u64,
    pub voters_removed: u64,
    pub leader_removed_itself: u64,
    pub conf_change_refused_pending: u64,
    pub conf_changes_appended: u64,
    pub commit_rollbacks: u64,
    pub transfers_started: u64,
    pub proposals_dropped: u64,
    pub fingerprint: u64,
}

impl Stats {
    /// Every counter by name (the fingerprint excluded).
    pub fn counters(&self) -> [(&'static str, u64); 26] {
        [
            ("steps", self.steps),
            ("elections", self.elections),
            ("committed", self.committed),
            ("crashes", self.crashes),
            ("snapshots_sent", self.snapshots_sent),
            ("reads_checked", self.reads_checked),
            ("conf_changes", self.conf_changes),
            ("timeout_now", self.timeout_now),
            ("dropped", self.dropped),
            ("duplicated", self.duplicated),
            ("partitions", self.partitions),
            ("one_way_partitions", self.one_way_partitions),
            ("restarts", self.restarts),
            ("torn_writes", self.torn_writes),
            ("interleaved_steps", self.interleaved_steps),
            ("snapshots_installed", self.snapshots_installed),
            ("follower_reads_checked", self.follower_reads_checked),
            ("learners_added", self.learners_added),
            ("learners_promoted", self.learners_promoted),
            ("voters_removed", self.voters_removed),
            ("leader_removed_itself", self.leader_removed_itself),
            (
                "conf_change_refused_pending",
                self.conf_change_refused_pending,
            ),
            ("conf_changes_appended", self.conf_changes_appended),
            ("commit_rollbacks", self.commit_rollbacks),
            ("transfers_started", self.transfers_started),
            ("proposals_dropped", self.proposals_dropped),
        ]
    }

    /// Adds another run's counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.elections += o.elections;
        self.committed += o.committed;
        self.crashes += o.crashes;
        self.snapshots_sent += o.snapshots_sent;
        self.reads_checked += o.reads_checked;
        self.conf_changes += o.conf_changes;
        self.timeout_now += o.timeout_now;
        self.dropped += o.dropped;
        self.duplicated += o.duplicated;
        self.partitions += o.partitions;
        self.one_way_partitions += o.one_way_partitions;
        self.restarts += o.restarts;
        self.torn_writes += o.torn_writes;
        self.interleaved_steps += o.interleaved_steps;
        self.snapshots_installed += o.snapshots_installed;
        self.follower_reads_checked += o.follower_reads_checked;
        self.learners_added += o.learners_added;
        self.learners_promoted += o.learners_promoted;
        self.voters_removed += o.voters_removed;
        self.leader_removed_itself += o.leader_removed_itself;
        self.conf_change_refused_pending += o.conf_change_refused_pending;
        self.conf_changes_appended += o.conf_changes_appended;
        self.commit_rollbacks += o.commit_rollbacks;
        self.transfers_started += o.transfers_started;
        self.proposals_dropped += o.proposals_dropped;
    }
}

pub struct Sim {
    p: SimParams,
    rng: SplitMix64,
    now: u64,
    nodes: Vec<Node>,
    net: Network,
    check: Checker,
    removed: BTreeSet<u64>,
    counter: u64,
    healing: bool,
    heal_at: u64,
    marker_applied: Option<u64>,
    last_marker_attempt: u64,
    stats: Stats,
    leader_terms_seen: BTreeSet<u64>,
}

impl Sim {
    pub fn new(p: SimParams) -> Sim {
        let mut rng = SplitMix64::new(p.seed);
        let initial: Vec<u64> = (1..=p.voters).collect();
        let mut nodes = Vec::new();
        for id in 1..=p.voters + p.spares {
            let disk = MemStorage::new_with_conf_state(ConfState::with_voters(&initial));
            let tick_pm = 500 + rng.below(501);
            nodes.push(Node {
                id,
                raw: None,
                disk,
                tick_pm,
                incarnation: 0,
                sm: StateMachine::default(),
                commit_reported: 0,
                synced_commit: 0,
            });
        }
        let net = Network::new(p.drop_pm, p.dup_pm, p.max_delay);
        let mut sim = Sim {
            check: Checker::new(&initial),
            p,
            rng,
            now: 0,
            nodes,
            net,
            removed: BTreeSet::new(),
            counter: 0,
            healing: false,
            heal_at: 0,
            marker_applied: None,
            last_marker_attempt: 0,
            stats: Stats::default(),
            leader_terms_seen: BTreeSet::new(),
        };
        for i in 0..sim.nodes.len() {
            sim.start(i);
        }
        sim
    }

    fn config(&self, id: u64) -> Config {
        let mut c = Config::new(id);
        c.election_tick = self.p.election_tick;
        c.heartbeat_tick = self.p.heartbeat_tick;
        c.pre_vote = self.p.pre_vote;
        c.check_quorum = self.p.check_quorum;
        c.max_size_per_msg = self.p.max_size_per_msg;
        c.max_inflight_msgs = self.p.max_inflight;
        c.max_uncommitted_entries_size = 4096;
        c.mutations = self.p.mutations;
        c
    }

    fn start(&mut self, i: usize) {
        let cfg = self.config(self.nodes[i].id);
        if self.nodes[i].incarnation > 0 {
            self.stats.restarts += 1;
        }
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        let seed = mix(self.p.seed, n.id * 1_000_003 + n.incarnation);
        let raw = RawNode::new(&cfg, n.disk.clone(), seed)
            .unwrap_or_else(|e| panic!("member {} failed to restart: {e}", n.id));
        n.sm = StateMachine::from_snapshot(&n.disk.snapshot().unwrap());
        n.commit_reported = raw.first_index() - 1;
        n.synced_commit = n.disk.hard_state().commit;
        n.raw = Some(raw);
    }

    fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(raw) = n.raw.take() {
            n.disk = raw.store().clone();
            self.stats.crashes += 1;
            // Commit-only hard states were written without a sync: half the time the crash
            // loses them and the member restarts with the last synced commit index.
            let mut hs = n.disk.hard_state();
            if hs.commit > n.synced_commit && self.rng.chance(1, 2) {
                hs.commit = n.synced_commit;
                n.disk.set_hard_state(hs);
                self.stats.commit_rollbacks += 1;
            }
        }
    }

    fn live(&self, i: usize) -> bool {
        self.nodes[i].raw.is_some()
    }

    fn random_node(&mut self, pred: impl Fn(&Sim, usize) -> bool) -> Option<usize> {
        let cands: Vec<usize> = (0..self.nodes.len()).filter(|&i| pred(self, i)).collect();
        if cands.is_empty() {
            return None;
        }
        Some(cands[self.rng.below(cands.len() as u64) as usize])
    }

    fn leader_index(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .raw
                    .as_ref()
                    .is_some_and(|r| r.raft().role == Role::Leader)
            })
            .max_by_key(|&i| self.nodes[i].raw.as_ref().unwrap().raft().term)
    }

    /// Runs the whole scenario: chaos, then heal and wait for liveness.
    pub fn run(mut self) -> Result<Stats, String> {
        loop {
            if let Err(e) = self.step() {
                return Err(format!("step {}: {e}\n{}", self.now, self.describe()));
            }
            if !self.healing && self.now >= self.p.chaos_steps {
                self.heal();
            }
            if self.healing {
                if std::env::var("KEEL_SIM_TRACE").is_ok() && (self.now - self.heal_at) % 50 == 0 {
                    eprintln!("t={}\n{}", self.now, self.describe());
                }
                if self.live_and_converged() {
                    break;
                }
                if self.now - self.heal_at > self.p.heal_limit {
                    return Err(format!(
                        "liveness: {} ticks after faults healed, no proposal was committed and \
                         applied everywhere (marker applied at {:?})\n{}",
                        self.p.heal_limit,
                        self.marker_applied,
                        self.describe()
                    ));
                }
            }
        }
        self.stats.steps = self.now;
        self.stats.reads_checked = self.check.reads_checked;
        self.stats.elections = self.leader_terms_seen.len() as u64;
        self.stats.committed = self.check.max_commit_known;
        self.stats.dropped = self.net.dropped;
        self.stats.duplicated = self.net.duplicated;
        let mut fp = 0;
        for n in &self.nodes {
            fp = mix(fp, n.sm.applied);
            fp = mix(fp, n.sm.hash);
        }
        self.stats.fingerprint = mix(fp, self.stats.crashes);
        Ok(self.stats)
    }

    /// A one-line-per-member summary for failure reports.
    pub fn describe(&self) -> String {
        let mut out = format!("params: {:?}\nremoved: {:?}\n", self.p, self.removed);
        for n in &self.nodes {
            match &n.raw {
                None => out.push_str(&format!("  {}: down\n", n.id)),
                Some(raw) => {
                    let st = raw.status();
                    out.push_str(&format!(
                        "  {}: {:?} term {} vote {} leader {} commit {} applied {} last {} \
                         first {} conf {:?} sm.applied {} progress {:?}\n",
                        n.id,
                        st.soft_state.role,
                        st.hard_state.term,
                        st.hard_state.vote,
                        st.soft_state.leader_id,
                        st.hard_state.commit,
                        st.applied,
                        st.last_index,
                        raw.first_index(),
                        st.conf_state,
                        n.sm.applied,
                        st.progress
                    ));
                }
            }
        }
        out
    }

    fn heal(&mut self) {
        self.healing = true;
        self.heal_at = self.now;
        self.net.heal();
        self.net.drop_pm = 0;
        self.net.dup_pm = 0;
        // §5.6 timing requirement: broadcastTime << electionTimeout. Long delays are a fault;
        // a healed network delivers within two steps.
        self.net.max_delay = self.net.max_delay.min(2);
        for i in 0..self.nodes.len() {
            if !self.live(i) && !self.removed.contains(&self.nodes[i].id) {
                self.start(i);
            }
        }
    }

    fn live_and_converged(&mut self) -> bool {
        let Some(marker) = self.marker_applied else {
            return false;
        };
        // Members of the newest configuration any live member has applied.
        let newest = self
            .nodes
            .iter()
            .filter(|n| n.raw.is_some())
            .max_by_key(|n| n.sm.applied)
            .map(|n| n.sm.conf.clone())
            .unwrap_or_default();
        let members: Vec<u64> = newest
            .voters
            .iter()
            .chain(newest.learners.iter())
            .copied()
            .filter(|id| !self.removed.contains(id))
            .collect();
        members
            .iter()
            .all(|&id| self.nodes[(id - 1) as usize].sm.applied >= marker)
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        if !self.healing {
            self.inject_faults();
        }
        for i in 0..self.nodes.len() {
            let pm = self.nodes[i].tick_pm;
            if self.live(i) && self.rng.chance(pm, 1000) {
                self.nodes[i].raw.as_mut().unwrap().tick();
            }
        }
        self.client_ops();
        let due = self.net.due(&mut self.rng, self.now);
        for m in due {
            let (from, to) = (m.from, m.to);
            let is_snap = m.msg_type == MessageType::Snapshot;
            if m.msg_type == MessageType::TimeoutNow {
                self.stats.timeout_now += 1;
            }
            let ti = (to - 1) as usize;
            let deliverable = !self.removed.contains(&from)
                && !self.removed.contains(&to)
                && !self.net.is_blocked(from, to)
                && self.live(ti);
            if deliverable {
                let _ = self.nodes[ti].raw.as_mut().unwrap().step(m);
                if is_snap {
                    self.stats.snapshots_sent += 1;
                }
            }
            if is_snap {
                if let Some(raw) = self.nodes[(from - 1) as usize].raw.as_mut() {
                    raw.report_snapshot(to, deliverable);
                }
            }
        }
        for i in 0..self.nodes.len() {
            self.process_ready(i)?;
        }
        for i in 0..self.nodes.len() {
            if self.removed.contains(&self.nodes[i].id) && self.live(i) {
                self.crash(i); // removed members are shut down for good
            }
            self.maybe_compact(i);
        }
        self.check_leaders()
    }

    fn inject_faults(&mut self) {
        let n = self.nodes.len() as u64;
        if self.rng.chance(self.p.crash_pm, 1000) {
            let target = match self.leader_index() {
                Some(li) if self.rng.chance(self.p.target_leader_pct, 100) => Some(li),
                _ => self.random_node(|s, i| s.live(i)),
            };
            if let Some(i) = target {
                self.crash(i);
            }
        }
        if self.rng.chance(self.p.restart_pm, 1000) {
            if let Some(i) =
                self.random_node(|s, i| !s.live(i) && !s.removed.contains(&s.nodes[i].id))
            {
                self.start(i);
            }
        }
        if self.rng.chance(self.p.partition_pm, 1000) {
            match self.rng.below(3) {
                0 => {
                    // Random symmetric split.
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    for id in 1..=n {
                        if self.rng.chance(1, 2) {
                            a.push(id)
                        } else {
                            b.push(id)
                        }
                    }
                    self.net.split(&a, &b);
                    self.stats.partitions += 1;
                }
                1 => {
                    // Isolate one member, often the leader (the classic stale-leader scenario).
                    let victim = match self.leader_index() {
                        Some(i) if self.rng.chance(self.p.target_leader_pct, 100) => {
                            self.nodes[i].id
                        }
                        _ => 1 + self.rng.below(n),
                    };
                    let others: Vec<u64> = (1..=n).filter(|&x| x != victim).collect();
                    self.net.split(&[victim], &others);
                    self.stats.partitions += 1;
                }
                _ => {
                    // One-way: `a` can no longer hear `b` (or several links into one member).
                    let a = 1 + self.rng.below(n);
                    let b = 1 + self.rng.below(n);
                    if a != b {
                        self.net.block_one_way(b, a);
                        self.stats.one_way_partitions += 1;
                    }
                }
            }
        }
        if self.rng.chance(self.p.heal_pm, 1000) {
            self.net.heal();
        }
    }

    fn client_ops(&mut self) {
        if self.rng.chance(self.p.propose_pm, 1000) {
            // Often straight to a member that believes it leads — possibly a stale, isolated
            // leader, which then grows a divergent uncommitted suffix.
            let to_leader = self.rng.chance(self.p.target_leader_pct, 100);
            let pick = self.random_node(|s, i| {
                s.nodes[i]
                    .raw
                    .as_ref()
                    .is_some_and(|r| !to_leader || r.raft().role == Role::Leader)
            });
            if let Some(i) = pick {
                self.counter += 1;
                let data = format!("c{}", self.counter).into_bytes();
                if let Err(keel_consensus::Error::ProposalDropped(_)) =
                    self.nodes[i].raw.as_mut().unwrap().propose(data)
                {
                    self.stats.proposals_dropped += 1;
                }
            }
        }
        if self.rng.chance(self.p.read_pm, 1000) {
            if let Some(i) = self.random_node(|s, i| s.live(i)) {
                self.counter += 1;
                let ctx = format!("r{}", self.counter).into_bytes();
                let min = self.check.max_commit_known;
                if self.nodes[i]
                    .raw
                    .as_mut()
                    .unwrap()
                    .read_index(ctx.clone())
                    .is_ok()
                {
                    self.check.reads.insert(ctx, min);
                }
            }
        }
        if !self.healing && self.rng.chance(self.p.conf_pm, 1000) {
            self.propose_conf_change();
        }
        if !self.healing && self.rng.chance(self.p.transfer_pm, 1000) {
            if let Some(li) = self.leader_index() {
                let voters = self.nodes[li].sm.conf.voters.clone();
                if !voters.is_empty() {
                    let to = voters[self.rng.below(voters.len() as u64) as usize];
                    if self.nodes[li]
                        .raw
                        .as_mut()
                        .unwrap()
                        .transfer_leader(to)
                        .is_ok()
                    {
                        self.stats.transfers_started += 1;
                    }
                }
            }
        }
        if self.healing {
            let leader = self.leader_index();
            let due = self.last_marker_attempt == 0
                || self.now - self.last_marker_attempt > 4 * self.p.election_tick as u64;
            if let (Some(li), true, None) = (leader, due, self.marker_applied) {
                self.counter += 1;
                let data = format!("M{}", self.counter).into_bytes();
                if self.nodes[li].raw.as_mut().unwrap().propose(data).is_ok() {
                    self.last_marker_attempt = self.now;
                }
            }
        }
    }

    fn propose_conf_change(&mut self) {
        let Some(li) = self.leader_index() else {
            return;
        };
        let conf = self.nodes[li].sm.conf.clone();
        let all = self.p.voters + self.p.spares;
        let used: BTreeSet<u64> = conf
            .voters
            .iter()
            .chain(conf.learners.iter())
            .copied()
            .chain(self.removed.iter().copied())
            .collect();
        let cc = if let Some(&l) = conf.learners.first() {
            ConfChange {
                change_type: ConfChangeType::AddNode,
                node_id: l,
                context: Vec::new(),
            }
        } else if let Some(new) = (1..=all).find(|id| !used.contains(id)) {
            ConfChange {
                change_type: ConfChangeType::AddLearner,
                node_id: new,
                context: Vec::new(),
            }
        } else if conf.voters.len() > 3 {
            let v = conf.voters[self.rng.below(conf.voters.len() as u64) as usize];
            ConfChange {
                change_type: ConfChangeType::RemoveNode,
                node_id: v,
                context: Vec::new(),
            }
        } else {
            return;
        };
        let res = self.nodes[li]
            .raw
            .as_mut()
            .unwrap()
            .propose_conf_change(&cc);
        if let Err(keel_consensus::Error::ProposalDropped(why)) = res {
            if why.contains("membership change") {
                self.stats.conf_change_refused_pending += 1;
            }
        }
    }

    fn send_all(&mut self, i: usize, msgs: Vec<keel_consensus::Message>) {
        for m in msgs {
            let (is_snap, to) = (m.msg_type == MessageType::Snapshot, m.to);
            let blocked = self.removed.contains(&m.to) || self.removed.contains(&m.from);
            let fate = if blocked {
                Fate::Dropped
            } else {
                self.net.send(&mut self.rng, self.now, m)
            };
            if is_snap && matches!(fate, Fate::Dropped) {
                if let Some(raw) = self.nodes[i].raw.as_mut() {
                    raw.report_snapshot(to, false);
                }
            }
        }
    }

    fn process_ready(&mut self, i: usize) -> Result<(), String> {
        for _ in 0..16 {
            let id = self.nodes[i].id;
            let Some(raw) = self.nodes[i].raw.as_mut() else {
                return Ok(());
            };
            if !raw.has_ready() {
                return Ok(());
            }
            let mut rd = raw.ready();
            // §5.2 Election Safety, also for leaderships that end before the step does (the
            // end-of-step check in `check_leaders` would miss those).
            if rd.soft_state.is_some_and(|ss| ss.role == Role::Leader) {
                self.check.leader(raw.raft().term, id)?;
            }
            for (k, e) in rd.entries.iter().enumerate() {
                let prev = if k == 0 {
                    raw.term_at(e.index - 1)
                } else {
                    Some(rd.entries[k - 1].term)
                };
                if let Some(prev) = prev {
                    self.check.appended(id, e, prev)?;
                }
            }
            // Thesis §4.1 (one change at a time): a leader appends a membership change only
            // once every earlier change in its log is applied. (Checked directly: two pending
            // changes each differ by one server from their predecessor, so the disjoint-
            // majorities check on consecutive configurations alone would not see it.)
            let r = raw.raft();
            if r.role == Role::Leader {
                for e in &rd.entries {
                    if e.kind != EntryKind::ConfChange || e.term != r.term {
                        continue;
                    }
                    let lo = (r.log.applied + 1).max(raw.first_index());
                    if let Some(earlier) = raw.entries(lo, e.index).and_then(|v| {
                        v.into_iter()
                            .find(|x| x.kind == EntryKind::ConfChange)
                            .map(|x| x.index)
                    }) {
                        return Err(format!(
                            "membership: leader {id} appended a change at {} while the change                              at {earlier} is not applied (applied {})",
                            e.index, r.log.applied
                        ));
                    }
                    self.stats.conf_changes_appended += 1;
                }
            }
            let msgs = std::mem::take(&mut rd.messages);
            self.send_all(i, msgs);
            self.interleave(i);
            if self.nodes[i].raw.is_none() {
                return Ok(());
            }

            let crash_now =
                !self.healing && rd.must_sync && self.rng.chance(self.p.crash_mid_ready_pm, 1000);
            let raw = self.nodes[i].raw.as_mut().unwrap();
            if crash_now {
                // Lose power part-way through the write: a prefix of (snapshot, entries...,
                // hard state) reaches the disk, in that order.
                let stages = rd.snapshot.is_some() as u64
                    + rd.entries.len() as u64
                    + rd.hard_state.is_some() as u64;
                let mut cut = self.rng.below(stages + 1);
                let store = raw.store_mut();
                if let Some(s) = rd.snapshot.take() {
                    if cut > 0 {
                        store.apply_snapshot(s).unwrap();
                        cut -= 1;
                    }
                }
                let n = (cut as usize).min(rd.entries.len());
                store.append(&rd.entries[..n]);
                cut -= n as u64;
                if let (Some(hs), true) = (rd.hard_state, cut > 0) {
                    store.set_hard_state(hs);
                }
                self.stats.torn_writes += 1;
                self.crash(i);
                return Ok(());
            }
            let store = raw.store_mut();
            if let Some(s) = &rd.snapshot {
                store.apply_snapshot(s.clone()).unwrap();
            }
            store.append(&rd.entries);
            if let Some(hs) = rd.hard_state {
                store.set_hard_state(hs);
            }
            if rd.must_sync {
                self.nodes[i].synced_commit = self.nodes[i]
                    .raw
                    .as_ref()
                    .unwrap()
                    .store()
                    .hard_state()
                    .commit;
            }
            let pmsgs = std::mem::take(&mut rd.persisted_messages);
            self.send_all(i, pmsgs);
            if self.p.interleave_pm > 0 {
                self.nodes[i].raw.as_mut().unwrap().advance_append();
                self.interleave(i);
            }

            if let Some(s) = &rd.snapshot {
                let sm = StateMachine::from_snapshot(s);
                self.check.snapshot_installed(id, sm.applied, sm.hash)?;
                self.stats.snapshots_installed += 1;
                self.nodes[i].sm = sm;
            }
            for e in &rd.committed_entries {
                let n = &mut self.nodes[i];
                if e.index <= n.sm.applied {
                    return Err(format!(
                        "member {id} was asked to apply index {} again (applied {})",
                        e.index, n.sm.applied
                    ));
                }
                if e.index != n.sm.applied + 1 {
                    return Err(format!(
                        "member {id} skipped from applied {} to {}",
                        n.sm.applied, e.index
                    ));
                }
                n.sm.applied = e.index;
                n.sm.hash = mix(n.sm.hash, crate::checker::entry_digest(e));
                let hash = n.sm.hash;
                self.check.applied(id, e, hash)?;
                if e.kind == EntryKind::ConfChange {
                    if let Some(cc) = conf_change_of(e) {
                        let raw = self.nodes[i].raw.as_mut().unwrap();
                        let was_leader = raw.raft().role == Role::Leader;
                        // Every member applies the same committed changes in the same order
                        // from the same configuration, so a change the leader accepted can
                        // never be invalid here; if it were, configurations would diverge.
                        let cs = raw.apply_conf_change(&cc).map_err(|err| {
                            format!(
                                "membership: member {id} cannot apply committed change {cc:?}                                  at index {}: {err}",
                                e.index
                            )
                        })?;
                        self.stats.conf_changes += 1;
                        self.check
                            .conf_applied(e.index, cs.voters.iter().copied().collect())?;
                        let before = std::mem::replace(&mut self.nodes[i].sm.conf, cs);
                        match cc.change_type {
                            ConfChangeType::AddLearner => self.stats.learners_added += 1,
                            ConfChangeType::AddNode if before.learners.contains(&cc.node_id) => {
                                self.stats.learners_promoted += 1
                            }
                            ConfChangeType::AddNode => {}
                            ConfChangeType::RemoveNode => {
                                if before.voters.contains(&cc.node_id) {
                                    self.stats.voters_removed += 1;
                                }
                                if was_leader && cc.node_id == id {
                                    self.stats.leader_removed_itself += 1;
                                }
                                self.removed.insert(cc.node_id);
                            }
                        }
                    }
                }
                if self.healing && e.data.first() == Some(&b'M') && self.marker_applied.is_none() {
                    self.marker_applied = Some(e.index);
                }
            }
            let is_leader = self.nodes[i]
                .raw
                .as_ref()
                .is_some_and(|r| r.raft().role == Role::Leader);
            for rs in &rd.read_states {
                if self.check.read_answered(id, &rs.context, rs.index)? && !is_leader {
                    self.stats.follower_reads_checked += 1;
                }
            }
            let from = self.nodes[i].commit_reported + 1;
            let raw = self.nodes[i].raw.as_mut().unwrap();
            raw.advance();
            // Report what this member now knows to be committed.
            let committed = raw.raft().log.committed;
            let term = raw.raft().term;
            for idx in from..=committed {
                if let Some(t) = raw.term_at(idx) {
                    self.check.committed(id, idx, t, term)?;
                }
            }
            self.nodes[i].commit_reported = self.nodes[i].commit_reported.max(committed);
        }
        Ok(())
    }

    /// Steps up to two due messages into member `i` while it holds an unfinished Ready.
    fn interleave(&mut self, i: usize) {
        if !self.rng.chance(self.p.interleave_pm, 1000) {
            return;
        }
        let id = self.nodes[i].id;
        for _ in 0..2 {
            let pos = self.net.queue.iter().position(|f| {
                f.msg.to == id
                    && f.deliver_at <= self.now + 1
                    && !self.net.is_blocked(f.msg.from, id)
                    && !self.removed.contains(&f.msg.from)
            });
            let Some(pos) = pos else { return };
            let m = self.net.queue.swap_remove(pos).msg;
            self.stats.interleaved_steps += 1;
            let (from, is_snap) = (m.from, m.msg_type == MessageType::Snapshot);
            let _ = self.nodes[i].raw.as_mut().unwrap().step(m);
            if is_snap {
                self.stats.snapshots_sent += 1;
                if let Some(raw) = self.nodes[(from - 1) as usize].raw.as_mut() {
                    raw.report_snapshot(id, true);
                }
            }
        }
    }

    fn maybe_compact(&mut self, i: usize) {
        let every = self.p.snapshot_every;
        let n = &mut self.nodes[i];
        let Some(raw) = n.raw.as_mut() else { return };
        if n.sm.applied >= raw.first_index() + every {
            let data = n.sm.hash.to_le_bytes().to_vec();
            raw.store_mut()
                .create_snapshot(n.sm.applied, n.sm.conf.clone(), data)
                .unwrap();
        }
    }

    fn check_leaders(&mut self) -> Result<(), String> {
        for n in &self.nodes {
            let Some(raw) = n.raw.as_ref() else { continue };
            let r = raw.raft();
            if r.role != Role::Leader {
                continue;
            }
            self.check.leader(r.term, n.id)?;
            self.leader_terms_seen.insert(r.term);
            // §5.4 Leader Completeness.
            let must = self.check.must_hold(r.term);
            if must >= raw.first_index() {
                let want = self.check.committed_term(must);
                let have = raw.term_at(must);
                if want.is_some() && have != want {
                    return Err(format!(
                        "leader completeness: leader {} of term {} has term {:?} at index {must}, \
                         committed with term {:?} in an earlier term",
                        n.id, r.term, have, want
                    ));
                }
            }
        }
        Ok(())
    }
}
