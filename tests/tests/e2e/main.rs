//! End-to-end tests: one binary, one module per area. `helpers` starts a stack in a
//! temporary directory (or, with `IEA_E2E_COMPOSE_DATA`, uses a composed one) and gives
//! typed clients. `scenarios` runs on both; `compose_faults` only on compose. Set
//! `TEST_LOG=1` to see the stack's logs.

mod compose_faults;
mod connection;
mod credentials;
mod deposits;
mod helpers;
mod returns;
mod runtime;
mod scenarios;
mod stack;
mod status;
mod updates;
