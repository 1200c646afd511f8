//! End-to-end tests: one binary, one module per area. `helpers` starts a stack in a
//! temporary directory and gives typed clients. Set `TEST_LOG=1` to see the stack's logs.

mod connection;
mod credentials;
mod helpers;
mod runtime;
mod stack;
mod status;
mod updates;
