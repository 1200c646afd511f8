//! What the CLI's test binaries share: the built `iea`, and an embedded stack in a child
//! process (`iea stack up`, or with `--demo`), stopped with Ctrl-C when dropped.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The built `iea`, on the data directory `data_dir`.
pub fn iea(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iea"));
    c.env("IEA_DATA_DIR", data_dir).env_remove("RUST_LOG");
    c
}

/// Waits until `stack.json` exists (the stack writes it once every component listens).
pub fn wait_for_stack(dir: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("stack.json").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("iea stack up exited early: {status}");
        }
        assert!(Instant::now() < deadline, "the stack did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ctrl-C to `child`; whether the signal could be sent.
pub fn interrupt(child: &Child) -> bool {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// A stack in a child process, stopped when dropped.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub child: Child,
}

impl Stack {
    /// `iea stack up`: no account has Net-entreprises credentials.
    pub fn start() -> Self {
        Self::start_with(&["stack", "up"])
    }

    /// `iea stack up --demo`: the demonstration declarant, and `Administrateur` ready to
    /// deposit with its identity.
    pub fn start_demo() -> Self {
        Self::start_with(&["stack", "up", "--demo"])
    }

    fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = iea(dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_stack(dir.path(), &mut child);
        Self { dir, child }
    }

    /// Runs `iea ARGS` with `stdin`; (exit code, standard output, standard error).
    pub fn raw(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut c = iea(self.dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin-password")).unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        interrupt(&self.child);
        let _ = self.child.wait();
    }
}
