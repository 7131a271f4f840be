//! migrate tests
