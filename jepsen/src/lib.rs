//! # keel-jepsen: the fault-injection harness
//!
//! Jepsen's method, on one machine: real `keel` processes, each in its own network namespace
//! with its own IP on a bridge ([`netns`]); clients that run read / write / compare-and-set /
//! delete operations on a few registers through etcd's gRPC API and record every invocation and
//! completion ([`client`], [`history`] of the [`checker`]); a nemesis that partitions the
//! network, kills members with SIGKILL and pauses them with SIGSTOP on a seeded schedule
//! ([`nemesis`], [`partition`]); and a checker that decides whether the recorded history is
//! linearizable ([`checker`], the Wing & Gong / Lowe search that Porcupine and Knossos use,
//! one register at a time). Meanwhile one watcher per member follows every register, and
//! [`watch`] checks that the watchers saw the same revisions, in order, none skipped, with every
//! acknowledged write among them.
//!
//! Partitions are Jepsen's: every node silently drops inbound packets from the nodes its
//! "grudge" names (here with policy-routing `blackhole` rules inside the namespace instead of
//! iptables), so connections stall and time out as on a real network, and healing removes the
//! rules. Clients sit outside the namespaces and reach every member.
//!
//! [`runner::run`] ties it together; `keel-jepsen` (src/bin) runs one test from the command line;
//! `tests/` runs short ones in CI. Needs root (namespaces) and Linux.
//!
//! [`history`]: checker

pub mod checker;
pub mod client;
pub mod db;
pub mod nemesis;
pub mod netns;
pub mod partition;
pub mod rng;
pub mod runner;
pub mod watch;
