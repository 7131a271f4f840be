//! explain tests
