//! End-to-end tests of iea-connect live in `tests/e2e/`: they start the whole stack (the
//! embedded one, in process) and drive it as a front-end would.
