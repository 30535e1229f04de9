//! # keel-tests: cluster-level integration tests
//!
//! Helpers for tests that start real `keel` processes on loopback and drive them over the network.
//! The tests themselves live in `tests/tests/`.
