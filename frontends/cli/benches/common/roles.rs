//! The measured processes of the benchmarks: the benchmark's own binary started again in a
//! role (the orchestrator, an agent, a mock), so that its memory and CPU time are read
//! apart from the benchmark's clients and from the embedded stack's other components.
//!
//! The benchmark names the role in [`ROLE`] and passes the settings as JSON in
//! [`SETTINGS`] ([`Process::start`]); the process, as its binary's `main` would ([`serve`]:
//! logs, crypto provider, settings, SIGINT, then the role: [`orchestrator`],
//! [`deposit_agent`], [`credential_verifier`], [`net_entreprises`]), prints its address on
//! its first line of output, then serves until SIGINT ([`Process::stop`]). A measured
//! orchestrator is wired to the stack's agents and mocks as the stack wires its own
//! ([`orchestrator_settings`]) and reached as a front-end reaches the stack's (the
//! driver's `StackClient::other_orchestrator`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use iea_runtime::shutdown::Shutdown;
use iea_runtime::telemetry::LogFormat;
use iea_stack_testkit::StackClient;

/// The environment variable naming the role a process runs in.
pub const ROLE: &str = "IEA_BENCH_ROLE";
/// The environment variable holding a role's settings, as JSON.
pub const SETTINGS: &str = "IEA_BENCH_SETTINGS";

/// The role this process was started in; `None`: the benchmark itself.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// This process's runtime: in a role, the one its component's binary builds
/// (`iea_runtime::binary::runtime`: one async worker), so that it is measured as it runs;
/// the benchmark itself, tokio's default.
pub fn runtime() -> tokio::runtime::Runtime {
    match role() {
        Some(_) => iea_runtime::binary::runtime(),
        None => tokio::runtime::Runtime::new(),
    }
    .expect("runtime")
}

/// A measured process's `main`: logs in `format` at `level`, the crypto provider, its
/// settings from [`SETTINGS`], then `run(settings, shutdown)`, `shutdown` firing on
/// SIGINT. `run` prints the address on the first line of output.
pub async fn serve<S, F, Fut>(format: LogFormat, level: &str, run: F)
where
    S: serde::de::DeserializeOwned,
    F: FnOnce(S, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    iea_runtime::telemetry::init(format, level);
    iea_runtime::install_crypto_provider();
    let settings =
        serde_json::from_str(&std::env::var(SETTINGS).expect("settings")).expect("settings JSON");
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signal();
    run(settings, shutdown).await.expect("runs");
}

/// A measured process: this binary in another role, its standard error in a log file.
/// Interrupted (SIGINT) and waited for when stopped or dropped.
pub struct Process {
    child: Child,
    /// Its address, the first line of its output.
    pub addr: String,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl Process {
    /// This binary in `role` with `settings`, logging at `level` (`RUST_LOG`) into `log`;
    /// returns once it printed its address.
    pub fn start(role: &str, settings: &impl serde::Serialize, level: &str, log: &Path) -> Self {
        let exe = std::env::current_exe().expect("this binary");
        Self::start_with(Command::new(exe), role, settings, level, log)
    }

    /// The same with `command`: this binary, or a program that runs it (valgrind).
    pub fn start_with(
        mut command: Command,
        role: &str,
        settings: &impl serde::Serialize,
        level: &str,
        log: &Path,
    ) -> Self {
        let mut child = command
            .env(ROLE, role)
            .env(SETTINGS, serde_json::to_string(settings).unwrap())
            .env("RUST_LOG", level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(
            !line.trim().is_empty(),
            "{role} did not start: see {}",
            log.display()
        );
        Self {
            child,
            addr: line.trim().to_owned(),
            stdin,
            stdout,
            log: log.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its current RSS, in KiB.
    pub fn rss_kib(&self) -> u64 {
        super::memory_kib(self.pid()).0
    }

    /// Its peak RSS, in KiB (since the last [`Process::reset_peak`]).
    pub fn peak_kib(&self) -> u64 {
        super::memory_kib(self.pid()).1
    }

    /// Resets the peak RSS the kernel keeps (`/proc/PID/clear_refs`, 5); false when
    /// refused.
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }

    /// The CPU time it has used so far.
    pub fn cpu(&self) -> Duration {
        super::cpu_time(&self.pid().to_string())
    }

    /// Writes `line` on its standard input; the line it answers.
    pub fn ask(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        answer.trim().to_owned()
    }

    /// The log's length now: where lines written from now on start.
    pub fn log_mark(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The JSON lines of the log from `mark` on.
    pub fn log_from(&self, mark: u64) -> Vec<serde_json::Value> {
        let bytes = std::fs::read(&self.log).unwrap();
        let from = usize::try_from(mark).unwrap().min(bytes.len());
        String::from_utf8_lossy(&bytes[from..])
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// SIGINT, then waits for it to exit.
    pub fn stop(mut self) {
        self.interrupt_and_wait();
    }

    fn interrupt_and_wait(&mut self) {
        // A child already waited for is not signalled: its pid may be another process's.
        if self.child.try_wait().ok().flatten().is_none() {
            iea_stack_testkit::interrupt(&self.child);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.interrupt_and_wait();
    }
}

// ---------------------------------------------------------------------------------
// The roles, each as its binary runs it, printing its address on its first line.

pub async fn orchestrator(s: iea_orchestrator::Settings, stop: Shutdown) -> anyhow::Result<()> {
    let app = iea_orchestrator::App::build(s).await?;
    println!("{}", app.local_addr());
    app.run_until(stop).await
}

pub async fn deposit_agent(s: iea_deposit_agent::Settings, stop: Shutdown) -> anyhow::Result<()> {
    let app = iea_deposit_agent::App::build(s).await?;
    println!("{}", app.local_addr());
    app.run_until(stop).await
}

pub async fn credential_verifier(
    s: iea_credential_verifier::Settings,
    stop: Shutdown,
) -> anyhow::Result<()> {
    let app = iea_credential_verifier::App::build(s).await?;
    println!("{}", app.local_addr());
    app.run_until(stop).await
}

/// The Net-entreprises mock; its HTTPS address.
pub async fn net_entreprises(
    s: iea_mock_net_entreprises::Settings,
    stop: Shutdown,
) -> anyhow::Result<()> {
    let app = iea_mock_net_entreprises::App::build(s).await?;
    println!("{}", app.https_addr());
    app.run_until(stop).await
}

// ---------------------------------------------------------------------------------
// An orchestrator measured apart from the stack's.

/// The settings of an orchestrator measured apart, wired to the stack's agents and mocks
/// as the stack wires its own (the driver's `orchestrator_settings`: its data in
/// `data_dir`), installation `installation` with `licence` (known to the authentication
/// mock through the driver's `add_installation`), no update checks. Each benchmark then
/// changes what it measures.
pub fn orchestrator_settings(
    stack: &StackClient,
    data_dir: &Path,
    installation: &str,
    licence: &str,
) -> iea_orchestrator::Settings {
    iea_orchestrator::Settings {
        installation: iea_orchestrator::InstallationSettings {
            id: Some(installation.into()),
            licence_key: Some(licence.into()),
            daily_password_key: None,
        },
        update_check_interval_secs: 0,
        ..stack.orchestrator_settings(data_dir)
    }
}

/// The settings of a deposit agent measured apart: loopback, any port, the certificate
/// the stack's PKI gives the deposit agent.
pub fn deposit_agent_settings(stack: &super::Stack) -> iea_deposit_agent::Settings {
    iea_deposit_agent::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: iea_runtime::pki::component_files(
            &stack.dir.path().join("certs"),
            iea_deposit_agent::COMPONENT,
        ),
    }
}

/// Prints the pids of the measured orchestrator and deposit agent, and the stack's.
pub fn print_processes(orchestrator: &Process, agent: &Process, stack: &super::Stack) {
    println!(
        "processes: orchestrator pid {}, deposit agent pid {}, mocks (embedded stack) pid {}",
        orchestrator.pid(),
        agent.pid(),
        stack.child.id()
    );
}

/// The administrator of the orchestrator measured at `addr` (its data in `data_dir`), as a
/// front-end reaches it: its channel (calls of up to 15 minutes) and session token, once
/// the identity of `declarant` (an account of the Net-entreprises mock's directory) is
/// the administrator's credentials.
pub async fn administrator_of(
    stack: &StackClient,
    addr: &str,
    data_dir: &Path,
    declarant: &iea_mock_net_entreprises::fixtures::Account,
) -> (tonic::transport::Channel, String) {
    use iea_proto::v1::credentials_client::CredentialsClient;
    use iea_proto::v1::{NetEntreprisesIdentity, SetCredentialsRequest};
    let api = stack
        .other_orchestrator(addr, data_dir)
        .with_call_timeout(Duration::from_secs(900));
    let channel = api.channel().await;
    let admin_password = api.admin_password();
    let token = api.login_admin().await;
    CredentialsClient::new(channel.clone())
        .set_credentials(super::authed(
            &token,
            SetCredentialsRequest {
                user: "Administrateur".into(),
                account_password: admin_password.trim().into(),
                identity: Some(NetEntreprisesIdentity {
                    siret: declarant.siret.into(),
                    nom: declarant.nom.into(),
                    prenom: declarant.prenom.into(),
                    password: declarant.password.into(),
                }),
            },
        ))
        .await
        .unwrap();
    (channel, token)
}
