//! What both benchmarks share: the embedded stack in a child process (so that its memory
//! is measured apart from the benchmark's own clients), and clients to it.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iea_proto::v1::LoginRequest;
use iea_proto::v1::sessions_client::SessionsClient;
use iea_stack::StackFile;
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub file: StackFile,
}

impl Stack {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_iea"))
            .args(["stack", "up", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.path().join("stack.json").exists() {
            assert!(Instant::now() < deadline, "the stack did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let file = StackFile::read(dir.path()).unwrap();
        Self { dir, child, file }
    }

    pub async fn channel(&self) -> Channel {
        let tls =
            iea_runtime::tls::front_end_config(&self.file.ca, &self.file.orchestrator_server_name)
                .unwrap();
        Endpoint::from_shared(format!("https://{}", self.file.orchestrator))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .timeout(Duration::from_secs(600))
            .connect()
            .await
            .unwrap()
    }

    pub async fn login_admin(&self) -> String {
        let pw = std::fs::read_to_string(self.dir.path().join("admin-password")).unwrap();
        SessionsClient::new(self.channel().await)
            .login(LoginRequest {
                user: "Administrateur".into(),
                password: pw.trim().into(),
            })
            .await
            .unwrap()
            .into_inner()
            .token
    }

    /// (current RSS, peak RSS) of the stack process, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        memory_kib(self.child.id())
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) a process has used so far.
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

pub fn authed<T>(token: &str, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

pub fn data_dir(p: &Path) -> &Path {
    p
}
