//! End-to-end tests of iea-connect live in `tests/e2e/` (and the other binaries of
//! `tests/`): they start the whole stack (the embedded one, in process) and drive it as a
//! front-end would, through the one stack driver `iea-stack-testkit` (`crates/stack-testkit`),
//! which `tests/e2e/helpers.rs` re-exports.
