//! What the benchmarks share: the one stack driver's `ChildStack` (`iea-stack-testkit`):
//! the embedded stack in a child process (so that its memory is measured apart from the
//! benchmark's own clients), on SQLite, logging warnings only, with calls that may last
//! ten minutes; the process counters; the measured processes, this binary started again
//! in a role ([`roles`]); a count from the environment ([`env_usize`]).

#![allow(dead_code, unused_imports, reason = "each benchmark uses a part")]

pub mod roles;

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use iea_stack_testkit::{ChildOptions, ChildStack};

pub use iea_stack_testkit::{authed, cpu_time, memory_kib};

/// The stack in a child process; `dir`, `child`, `file`, `channel`, `login_admin`,
/// `memory_kib` are the driver's.
pub struct Stack(ChildStack);

impl Stack {
    pub fn start() -> Self {
        Self(ChildStack::start(
            env!("CARGO_BIN_EXE_iea"),
            ChildOptions {
                log: Some("warn".into()),
                call_timeout: Duration::from_secs(600),
                ..Default::default()
            },
        ))
    }

    /// Ctrl-C, then waits for the stack to exit.
    pub fn stop(self) {
        self.0.stop();
    }
}

impl Deref for Stack {
    type Target = ChildStack;

    fn deref(&self) -> &ChildStack {
        &self.0
    }
}

impl DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut ChildStack {
        &mut self.0
    }
}

/// The whole number in environment variable `name`, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
