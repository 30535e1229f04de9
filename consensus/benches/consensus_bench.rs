//! The CPU ceiling of the consensus core: entries per second committed through an in-memory
//! cluster (no disk, no network: messages are handed over directly), 1 KiB entries, proposals
//! batched. Run with:
//!
//!     CARGO_TARGET_DIR=/work/target-consensus cargo bench -p keel-consensus --bench consensus_bench
//!
//! Optional: KEEL_BENCH_SECS (default 2), KEEL_BENCH_BATCH (default 256).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use keel_consensus::{ConfState, Config, MemStorage, Message, RawNode, Role};

struct Cluster {
    nodes: Vec<RawNode<MemStorage>>,
    queue: VecDeque<Message>,
    committed_at_leader: u64,
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        let voters: Vec<u64> = (1..=n).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let mut c = Config::new(id);
                c.max_size_per_msg = 1 << 20;
                c.max_inflight_msgs = 256;
                RawNode::new(
                    &c,
                    MemStorage::new_with_conf_state(ConfState::with_voters(&voters)),
                    id,
                )
                .unwrap()
            })
            .collect();
        let mut c = Cluster {
            nodes,
            queue: VecDeque::new(),
            committed_at_leader: 0,
        };
        c.nodes[0].campaign();
        c.run_until_quiet();
        assert_eq!(c.nodes[0].raft().role, Role::Leader);
        c.committed_at_leader = 0;
        c
    }

    fn handle(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        while node.has_ready() {
            let mut rd = node.ready();
            self.queue.extend(rd.messages.drain(..));
            let store = node.store_mut();
            if let Some(s) = rd.snapshot.take() {
                store.apply_snapshot(s).unwrap();
            }
            store.append_owned(std::mem::take(&mut rd.entries));
            if let Some(hs) = rd.hard_state {
                store.set_hard_state(hs);
            }
            self.queue.extend(rd.persisted_messages.drain(..));
            if i == 0 {
                self.committed_at_leader += rd
                    .committed_entries
                    .iter()
                    .filter(|e| !e.data.is_empty())
                    .count() as u64;
            }
            node.advance();
        }
    }

    fn run_until_quiet(&mut self) {
        loop {
            for i in 0..self.nodes.len() {
                self.handle(i);
            }
            if self.queue.is_empty() {
                return;
            }
            while let Some(m) = self.queue.pop_front() {
                let to = (m.to - 1) as usize;
                self.nodes[to].step(m).unwrap();
            }
        }
    }

    /// Keeps compaction going so memory stays bounded during long runs.
    fn compact(&mut self) {
        for n in &mut self.nodes {
            let applied = n.raft().log.applied;
            if applied > n.first_index() + 10_000 {
                let cs = n.status().conf_state;
                n.store_mut()
                    .create_snapshot(applied - 1000, cs, Vec::new())
                    .unwrap();
            }
        }
    }
}

/// CPU time consumed by this thread, from /proc (utime + stime, in USER_HZ = 100 ticks/s).
/// The benchmark box is shared, so entries per CPU-second is the figure that means "one core".
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Returns (entries per wall-clock second, entries per CPU second).
fn run(members: u64, batch: usize, secs: f64) -> (f64, f64) {
    let mut c = Cluster::new(members);
    let payload = vec![0xABu8; 1024];
    let start = Instant::now();
    let cpu_start = thread_cpu_secs();
    let deadline = Duration::from_secs_f64(secs);
    let mut rounds = 0u64;
    while start.elapsed() < deadline {
        let batch_data: Vec<Vec<u8>> = (0..batch).map(|_| payload.clone()).collect();
        c.nodes[0].propose_batch(batch_data).unwrap();
        c.run_until_quiet();
        rounds += 1;
        if rounds % 64 == 0 {
            c.compact();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = match (cpu_start, thread_cpu_secs()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => elapsed,
    };
    assert_eq!(
        c.committed_at_leader,
        rounds * batch as u64,
        "every proposal committed"
    );
    let n = c.committed_at_leader as f64;
    (n / elapsed, n / cpu)
}

fn main() {
    let secs: f64 = std::env::var("KEEL_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let batch: usize = std::env::var("KEEL_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    println!("consensus_bench: 1 KiB entries, batch {batch}, {secs} s per case, one thread");
    let mut three = 0.0;
    for members in [1, 3, 5] {
        let (wall, cpu) = run(members, batch, secs);
        if members == 3 {
            three = cpu;
        }
        println!(
            "  {members} member(s): {cpu:>10.0} entries per CPU-second ({wall:.0} per wall-second)"
        );
    }
    let goal = 500_000.0;
    println!(
        "  3-member goal {goal:.0} entries per CPU-second on one core: {} ({:.2}x)",
        if three >= goal { "met" } else { "NOT met" },
        three / goal
    );
}
