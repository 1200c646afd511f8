//! `iea stack up` in a child process: the stack as people run it, for the CLI's tests, and
//! for the benchmarks, which read its memory and CPU time apart from their own clients'.
//! The `iea` binary is the caller's (`env!("CARGO_BIN_EXE_iea")` in the CLI's tests and
//! benchmarks).

use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::client::{CALL_TIMEOUT, StackClient};

/// How [`ChildStack::start`] runs `iea stack up`.
#[derive(Clone, Debug)]
pub struct ChildOptions {
    /// `--demo`: the mocks' demonstration data, and `Administrateur` ready to deposit with
    /// the demonstration declarant's identity.
    pub demo: bool,
    /// `--database` (a PostgreSQL URL, e.g. [`crate::test_database_url`]); `None`: SQLite
    /// in the data directory (the caller's `IEA_DATABASE_URL` is not passed on: it may
    /// name the database of what a benchmark measures, not the stack's).
    pub database: Option<String>,
    /// The stack's `RUST_LOG`; `None`: unset (its output goes nowhere anyway).
    pub log: Option<String>,
    /// How long it may take to write `stack.json`.
    pub start_timeout: Duration,
    /// Each call's deadline on the channel [`StackClient::channel`] opens.
    pub call_timeout: Duration,
}

impl Default for ChildOptions {
    fn default() -> Self {
        Self {
            demo: false,
            database: None,
            log: None,
            start_timeout: Duration::from_secs(60),
            call_timeout: CALL_TIMEOUT,
        }
    }
}

/// The built `iea` at `bin`, on the data directory `data_dir` (`IEA_DATA_DIR`), without
/// the caller's `RUST_LOG`.
pub fn iea_command(bin: impl AsRef<Path>, data_dir: &Path) -> Command {
    let mut c = Command::new(bin.as_ref());
    c.env("IEA_DATA_DIR", data_dir).env_remove("RUST_LOG");
    c
}

/// Waits (at most 60 s) until `stack.json` exists in `dir`: the stack writes it once every
/// component listens. Panics if `child` exits first.
pub fn wait_for_stack(dir: &Path, child: &mut Child) {
    wait_for_stack_within(dir, child, Duration::from_secs(60));
}

fn wait_for_stack_within(dir: &Path, child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !dir.join(iea_stack::STACK_FILE).exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("iea stack up exited early: {status}");
        }
        assert!(Instant::now() < deadline, "the stack did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ctrl-C (SIGINT) to `child`; whether the signal could be sent.
pub fn interrupt(child: &Child) -> bool {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// `iea stack up` in a child process, in a temporary data directory. Dereferences to its
/// [`StackClient`] (`stack.json` as read at start). Stopped with Ctrl-C when dropped.
pub struct ChildStack {
    pub dir: tempfile::TempDir,
    pub child: Child,
    bin: PathBuf,
    client: StackClient,
}

impl Deref for ChildStack {
    type Target = StackClient;

    fn deref(&self) -> &StackClient {
        &self.client
    }
}

impl ChildStack {
    /// Runs `iea stack up` with the `iea` binary at `bin`; returns once `stack.json` is
    /// written.
    pub fn start(bin: impl Into<PathBuf>, options: ChildOptions) -> Self {
        let bin = bin.into();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = iea_command(&bin, dir.path());
        cmd.args(["stack", "up"]).env_remove("IEA_DATABASE_URL");
        if options.demo {
            cmd.arg("--demo");
        }
        if let Some(url) = &options.database {
            cmd.args(["--database", url]);
        }
        if let Some(log) = &options.log {
            cmd.env("RUST_LOG", log);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iea stack up starts");
        wait_for_stack_within(dir.path(), &mut child, options.start_timeout);
        let client = StackClient::read(dir.path())
            .expect("stack.json")
            .with_call_timeout(options.call_timeout);
        Self {
            dir,
            child,
            bin,
            client,
        }
    }

    /// `iea` on this stack's data directory.
    pub fn command(&self) -> Command {
        iea_command(&self.bin, self.dir.path())
    }

    /// Runs `iea ARGS` with `stdin`; (exit code, standard output, standard error).
    pub fn raw(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut c = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("iea runs");
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// (current RSS, peak RSS) of the stack's process, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        memory_kib(self.child.id())
    }

    /// Ctrl-C, then waits for the stack to exit; how it exited.
    pub fn stop(mut self) -> ExitStatus {
        self.interrupt_and_wait()
    }

    fn interrupt_and_wait(&mut self) -> ExitStatus {
        // A child already waited for is not signalled: its pid may be another process's.
        if self.child.try_wait().ok().flatten().is_none() {
            interrupt(&self.child);
        }
        self.child.wait().expect("waiting for iea stack up")
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            interrupt(&self.child);
        }
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) process `pid` (or `self`) has used so far.
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // The kernel counts in USER_HZ, 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// (current RSS, peak RSS) of process `pid`, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
