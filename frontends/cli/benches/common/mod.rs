//! What the benchmarks share: the one stack driver's `ChildStack` (`iea-stack-testkit`):
//! the embedded stack in a child process (so that its memory is measured apart from the
//! benchmark's own clients), on SQLite, logging warnings only, with calls that may last
//! ten minutes; and the process counters.

#![allow(dead_code, unused_imports, reason = "each benchmark uses a part")]

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
