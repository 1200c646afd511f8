//! What the CLI's test binaries share: the built `iea`, and an embedded stack in a child
//! process (`iea stack up`, or with `--demo`), stopped with Ctrl-C when dropped — the one
//! stack driver's `ChildStack` (`iea-stack-testkit`) with this package's binary.

#![allow(dead_code, unused_imports, reason = "each test binary uses a part")]

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::Command;

use iea_stack_testkit::{ChildOptions, ChildStack};

pub use iea_stack_testkit::{interrupt, wait_for_stack};

/// The built `iea`.
const IEA: &str = env!("CARGO_BIN_EXE_iea");

/// The built `iea`, on the data directory `data_dir`.
pub fn iea(data_dir: &Path) -> Command {
    iea_stack_testkit::iea_command(IEA, data_dir)
}

/// A stack in a child process, on SQLite in a temporary directory, stopped when dropped;
/// `raw`, `admin_password`, `dir`, `child`… are the driver's.
pub struct Stack(ChildStack);

impl Stack {
    /// `iea stack up`: no account has Net-entreprises credentials.
    pub fn start() -> Self {
        Self(ChildStack::start(IEA, ChildOptions::default()))
    }

    /// `iea stack up --demo`: the demonstration declarant, and `Administrateur` ready to
    /// deposit with its identity.
    pub fn start_demo() -> Self {
        Self(ChildStack::start(
            IEA,
            ChildOptions {
                demo: true,
                ..Default::default()
            },
        ))
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
