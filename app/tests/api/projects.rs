//! projects tests
