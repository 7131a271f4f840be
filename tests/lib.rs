//! No code: this package only holds the cross-crate tests in `contract/` (docs/architecture.md,
//! "Tests"). Each test takes what one side produces and hands it to the other side's reader, so a
//! change to the contract that only one side follows fails here.
