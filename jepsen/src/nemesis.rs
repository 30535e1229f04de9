//! The nemesis: on a seeded schedule it injects one fault, holds it, and undoes it, again and
//! again — Jepsen's `:partition`, `:kill` and `:pause` faults.

use crate::db::Db;
use crate::partition::{grudge, PartitionKind};
use crate::rng::Rng;
use std::io;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A network partition of a random [`PartitionKind`].
    Partition,
    /// SIGKILL a random member; restarted when the fault ends.
    Kill,
    /// SIGSTOP a random member; SIGCONT when the fault ends.
    Pause,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        match s {
            "partition" => Ok(Fault::Partition),
            "kill" => Ok(Fault::Kill),
            "pause" => Ok(Fault::Pause),
            other => Err(format!("unknown fault {other:?} (partition, kill, pause)")),
        }
    }
}

/// What is currently injected, to undo it.
#[derive(Debug)]
pub enum Injected {
    /// A partition (healed by healing the network).
    Partition,
    /// Member killed.
    Killed(usize),
    /// Member paused.
    Paused(usize),
}

/// Injects one fault chosen from `faults`; returns what to undo and a line for the log.
pub fn inject(db: &mut Db, faults: &[Fault], rng: &mut Rng) -> io::Result<(Injected, String)> {
    let fault = faults[rng.below(faults.len() as u64) as usize];
    let n = db.len();
    Ok(match fault {
        Fault::Partition => {
            let kind = PartitionKind::ALL[rng.below(PartitionKind::ALL.len() as u64) as usize];
            let g = grudge(kind, n, rng);
            db.net().partition(&g)?;
            (
                Injected::Partition,
                format!("partition {kind:?}: {}", g.describe()),
            )
        }
        Fault::Kill => {
            let i = rng.below(n as u64) as usize;
            db.kill(i);
            (Injected::Killed(i), format!("kill -9 n{i}"))
        }
        Fault::Pause => {
            let i = rng.below(n as u64) as usize;
            db.pause(i);
            (Injected::Paused(i), format!("pause (SIGSTOP) n{i}"))
        }
    })
}

/// Undoes `injected`; returns a line for the log.
pub fn undo(db: &mut Db, injected: Injected) -> io::Result<String> {
    Ok(match injected {
        Injected::Partition => {
            db.net().heal()?;
            "heal".to_string()
        }
        Injected::Killed(i) => {
            db.restart(i)?;
            format!("restart n{i}")
        }
        Injected::Paused(i) => {
            db.resume(i);
            format!("resume (SIGCONT) n{i}")
        }
    })
}
