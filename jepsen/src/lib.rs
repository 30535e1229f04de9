//! # keel-jepsen: the fault-injection harness
//!
//! Real `keel` processes in network namespaces, nemeses (partitions, kills, pauses, clock
//! skew through a user-space proxy), workloads, histories, and linearizability checkers.
//! Not built yet: this crate is a placeholder until the server runs as a cluster.
