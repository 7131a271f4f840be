//! tasks tests
