//! The peer transport: Raft messages between members over TCP.
