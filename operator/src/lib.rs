//! perfstack-operator's library: everything the binary wires together, testable without a cluster.
pub mod tuner;
