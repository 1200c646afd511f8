//! The one driver of a whole iea-connect stack for tests and benchmarks, shared by the
//! end-to-end suite (`tests/`), the CLI's and the web console's tests and the benchmarks
//! (the CLI's, the console's `sse`):
//!
//! - [`TestStack`]: the embedded stack ([`iea_stack::RunningStack`]) in this process, in a
//!   temporary data directory, on the test database; or, when `IEA_E2E_COMPOSE_DATA` names
//!   the data directory of a stack run by docker compose, that one ([`Compose`]);
//! - [`ChildStack`]: `iea stack up` in a child process (the CLI as people run it; the
//!   benchmarks, which measure the stack apart from their own clients), stopped with
//!   Ctrl-C;
//! - [`StackClient`], which both dereference to: what a front-end knows of a running stack
//!   (`stack.json`, the bootstrap password): the orchestrator's TLS channel, sign-in, the
//!   mocks' control APIs ([`MockAdmin`]), another orchestrator wired to the stack
//!   (`orchestrator_settings`, `add_installation`, `other_orchestrator`);
//! - [`test_database`]: SQLite in the data directory, or a database of its own on the
//!   PostgreSQL server that `IEA_TEST_DATABASE_URL` names;
//! - [`authed`], [`eventually`], [`wait_for`], a real HTTP proxy ([`Tinyproxy`]), and
//!   [`logs::standalone`] for the searches of personal data in logs.
//!
//! Dev-only (`publish = false`): a `[dev-dependencies]` entry, never a dependency of a
//! binary. What is particular to one suite stays in its tests.

mod child;
mod client;
mod compose;
mod database;
mod embedded;
pub mod logs;
mod proxy;
mod wait;

pub use child::{
    ChildOptions, ChildStack, cpu_time, iea_command, interrupt, memory_kib, wait_for_stack,
};
pub use client::{CALL_TIMEOUT, MockAdmin, StackClient, authed, dsn_upload, dsn_upload_as};
pub use compose::{Compose, compose_cmd, docker};
pub use database::{test_database, test_database_url};
pub use embedded::{TestStack, init_logs};
pub use proxy::Tinyproxy;
pub use wait::{eventually, wait_for};
