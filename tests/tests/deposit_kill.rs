//! Exactly once under SIGKILL (issue 12): the orchestrator and the deposit agent run as
//! their own processes (their binaries, with the settings files the stack writes for
//! external components), the mocks and the other agents in this one. Each is killed with
//! SIGKILL at each step of a deposit and started again:
//!
//! - before sending: the record is committed `sending`, the request is on its way and
//!   the Net-entreprises mock holds it unregistered (`hold_before_register`, then cut);
//! - after the mock registered it: the mock holds the answer (`hold_after_register`);
//! - after the answer is recorded: the record says `accepted`.
//!
//! After the restart the deposit settles (uncertain → the listing), and the mock holds
//! exactly one deposit per declaration, the one our record names.

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{TestStack, authed};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::*;
use tonic::transport::Channel;

const ADMIN: &str = "Administrateur";
/// A declarant of the Net-entreprises mock's bundled fixtures, registered to the deposit.
const SIRET: &str = DUPONT.siret;
const NOM: &str = DUPONT.nom;
const PRENOM: &str = DUPONT.prenom;
const PASSWORD: &str = DUPONT.password;
const ORCHESTRATOR: &str = "orchestrator";
const AGENT: &str = "deposit-agent";

/// The components' binaries, built once for this test binary by cargo (the same profile
/// as the tests), so that they are never older than the code under test.
fn binaries() -> &'static BTreeMap<String, PathBuf> {
    static BINARIES: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut cmd = Command::new(env!("CARGO"));
        // What cargo set for this test's run (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR…)
        // is left out: build scripts (ring's) watch those variables, and inheriting them
        // would rebuild half the dependencies here and again in every other build.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let kept = [
                "CARGO_HOME",
                "CARGO_TARGET_DIR",
                "CARGO_INCREMENTAL",
                "CARGO_TERM_",
                "CARGO_BUILD_",
                "CARGO_PROFILE_",
                "CARGO_NET_",
                "CARGO_HTTP_",
                "CARGO_REGISTRIES_",
                "CARGO_ENCODED_RUSTFLAGS",
            ]
            .iter()
            .any(|k| key.starts_with(k));
            if (key.starts_with("CARGO_") && !kept) || key == "OUT_DIR" {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(&root).args([
            "build",
            "--message-format=json-render-diagnostics",
            "-p",
            "iea-orchestrator",
            "--bin",
            "iea-orchestrator",
            "-p",
            "iea-deposit-agent",
            "--bin",
            "iea-deposit-agent",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.stderr(Stdio::inherit()).output().expect("cargo runs");
        assert!(out.status.success(), "building the binaries failed");
        let mut found = BTreeMap::new();
        for line in out.stdout.split(|b| *b == b'\n') {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if v["reason"] == "compiler-artifact"
                && let Some(exe) = v["executable"].as_str()
            {
                let name = v["target"]["name"].as_str().unwrap().to_owned();
                found.insert(name, PathBuf::from(exe));
            }
        }
        for name in ["iea-orchestrator", "iea-deposit-agent"] {
            assert!(found.contains_key(name), "{name} not built: {found:?}");
        }
        found
    })
}

/// A component in its own process, killed with SIGKILL when dropped.
struct Process {
    child: Child,
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Process {
    fn start(component: &str, config: &Path, logs: &Path) -> Self {
        let binary = binaries()[&format!("iea-{component}")].clone();
        let log = logs.join(format!("{component}.log"));
        let mut p = Self {
            child: spawn(&binary, config, &log),
            binary,
            config: config.to_owned(),
            log,
        };
        p.check_alive();
        p
    }

    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited: {status}\n{}",
                self.binary.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// SIGKILL, then the same binary with the same settings.
    fn kill_and_restart(&mut self) {
        self.child.kill().expect("SIGKILL sent");
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "killed, not exited: {status}");
        self.child = spawn(&self.binary, &self.config, &self.log);
        self.check_alive();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(binary: &Path, config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(binary)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .env("IEA_LOG_FORMAT", "human")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the component starts")
}

struct World {
    stack: TestStack,
    orchestrator: Process,
    agent: Process,
    token: String,
}

impl World {
    async fn start() -> Self {
        iea_runtime::install_crypto_provider();
        let _ = binaries();
        let stack = TestStack::start_configured(|o| {
            o.demo = false;
            o.external = [ORCHESTRATOR.to_owned(), AGENT.to_owned()].into();
            o.customize_orchestrator = Some(Box::new(|s| {
                s.deposits.poll_interval_ms = 100;
                s.deposits.retry_delay_secs = 1;
                s.deposits.window_margin_secs = 2;
                // The end of an attempt cut by a kill is unknown: its window closes this
                // long after its start.
                s.deposits.max_attempt_secs = 6;
                s.update_check_interval_secs = 0;
            }));
        })
        .await;
        let logs = stack.dir.path().to_owned();
        let agent = Process::start(AGENT, &stack.file.external[AGENT], &logs);
        let orchestrator = Process::start(ORCHESTRATOR, &stack.file.external[ORCHESTRATOR], &logs);
        let mut w = Self {
            stack,
            orchestrator,
            agent,
            token: String::new(),
        };
        // Once it answers, the orchestrator has written the bootstrap password.
        let channel = w.channel().await;
        let password = w.stack.admin_password();
        w.token = w.stack.login(ADMIN, &password).await;
        CredentialsClient::new(channel)
            .set_credentials(authed(
                &w.token,
                SetCredentialsRequest {
                    user: ADMIN.into(),
                    account_password: password,
                    identity: Some(NetEntreprisesIdentity {
                        siret: SIRET.into(),
                        nom: NOM.into(),
                        prenom: PRENOM.into(),
                        password: PASSWORD.into(),
                    }),
                },
            ))
            .await
            .expect("identity set");
        w
    }

    /// A channel to the orchestrator, once it answers (it may be starting again).
    async fn channel(&mut self) -> Channel {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(c) = self.stack.try_channel().await {
                return c;
            }
            self.orchestrator.check_alive();
            assert!(
                tokio::time::Instant::now() < deadline,
                "the orchestrator does not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn deposits(&mut self) -> DepositsClient<Channel> {
        DepositsClient::new(self.channel().await)
    }

    async fn upload(&mut self, bytes: &[u8]) -> DsnDeposit {
        let messages = iea_stack_testkit::dsn_upload("DSN.txt", bytes);
        let token = self.token.clone();
        self.deposits()
            .await
            .deposit(authed(&token, tokio_stream::iter(messages)))
            .await
            .expect("deposit recorded")
            .into_inner()
    }

    /// The deposit as the orchestrator records it (retried while it starts again).
    async fn get(&mut self, id: i64) -> DsnDeposit {
        let token = self.token.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match self
                .deposits()
                .await
                .get_deposit(authed(&token, GetDsnDepositRequest { id }))
                .await
            {
                Ok(d) => return d.into_inner(),
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "deposit {id} unreadable: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Waits (at most 60 s) until deposit `id` satisfies `pred`.
    async fn until(
        &mut self,
        id: i64,
        what: &str,
        pred: impl Fn(&DsnDeposit) -> bool,
    ) -> DsnDeposit {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let d = self.get(id).await;
            if pred(&d) {
                return d;
            }
            self.orchestrator.check_alive();
            self.agent.check_alive();
            assert!(
                tokio::time::Instant::now() < deadline,
                "deposit {id} never {what}; last: {d:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn faults(&self, body: serde_json::Value) {
        self.stack.mock("net-entreprises").faults(body).await;
    }

    /// The deposits the mock registered.
    async fn registered(&self) -> Vec<serde_json::Value> {
        self.stack
            .mock("net-entreprises")
            .get("/deposits")
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits (at most 30 s) until the mock's state satisfies `pred`.
    async fn mock_until(
        &mut self,
        what: &str,
        path: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) {
        let mock = self.stack.mock("net-entreprises");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let v = mock.get(path).await;
            if pred(&v) {
                return;
            }
            self.orchestrator.check_alive();
            self.agent.check_alive();
            assert!(
                tokio::time::Instant::now() < deadline,
                "the mock never showed {what}: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends both processes, then the stack.
    async fn stop(mut self) {
        for p in [&mut self.orchestrator, &mut self.agent] {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        self.stack.stop().await;
    }
}

fn sample(month: u8, seed: u64) -> Vec<u8> {
    let mut spec = iea_dsn::SampleSpec::new(SIRET, iea_dsn::Month::new(2026, month).unwrap(), 2);
    spec.seed = seed;
    iea_dsn::sample(&spec)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Victim {
    Orchestrator,
    Agent,
}

#[derive(Debug, Clone, Copy)]
enum Moment {
    /// `sending` committed, the request held by the mock before registration.
    BeforeSending,
    /// Registered by the mock, its answer held.
    AfterRegistered,
    /// `accepted` recorded.
    AfterRecorded,
}

/// One deposit, `victim` SIGKILLed at `moment` and restarted; then a second declaration
/// goes through the restarted processes; the mock holds exactly one deposit of each, and
/// each record is `accepted` with that deposit's idflux.
async fn kill_at(victim: Victim, moment: Moment) {
    let mut w = World::start().await;
    let file = sample(11, 1);
    match moment {
        Moment::BeforeSending => {
            w.faults(serde_json::json!({"hold_before_register": 1, "hold_ms": 20000}))
                .await
        }
        Moment::AfterRegistered => {
            w.faults(serde_json::json!({"hold_after_register": 1, "hold_ms": 20000}))
                .await
        }
        Moment::AfterRecorded => {}
    }
    let d = w.upload(&file).await;
    let id = d.id;
    match moment {
        Moment::BeforeSending => {
            w.mock_until("the request held", "/faults", |f| {
                f["hold_before_register"] == 0
            })
            .await;
            assert!(w.registered().await.is_empty());
            assert_eq!(w.get(id).await.state, "sending");
        }
        Moment::AfterRegistered => {
            w.mock_until("the deposit registered", "/deposits", |v| {
                v.as_array().is_some_and(|a| a.len() == 1)
            })
            .await;
            assert_eq!(w.get(id).await.state, "sending");
        }
        Moment::AfterRecorded => {
            w.until(id, "accepted", |d| d.state == "accepted").await;
        }
    }
    match victim {
        Victim::Orchestrator => w.orchestrator.kill_and_restart(),
        Victim::Agent => w.agent.kill_and_restart(),
    }
    let d = w.until(id, "settled", |d| d.settled).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    match moment {
        // Sent again, once the listing showed that the first request never arrived.
        Moment::BeforeSending => assert_eq!(d.attempts, 2, "{d:#?}"),
        // Found in the listing, never sent again.
        Moment::AfterRegistered => {
            assert_eq!(d.attempts, 1, "{d:#?}");
            assert!(d.message.contains("liste des dépôts"), "{}", d.message);
        }
        Moment::AfterRecorded => assert_eq!(d.attempts, 1, "{d:#?}"),
    }
    // The restarted processes deposit the next declaration too.
    let second_file = sample(10, 2);
    let second = w.upload(&second_file).await;
    let second = w.until(second.id, "settled", |d| d.settled).await;
    assert_eq!(second.state, "accepted", "{second:#?}");
    // Exactly one deposit per declaration at the mock, the one each record names.
    let registered = w.registered().await;
    for (record, bytes) in [(w.get(id).await, &file), (second, &second_file)] {
        assert_eq!(record.state, "accepted", "{record:#?}");
        let at_mock: Vec<_> = registered
            .iter()
            .filter(|r| r["sha256"] == sha256_hex(bytes).as_str())
            .collect();
        assert_eq!(
            at_mock.len(),
            1,
            "{victim:?} killed {moment:?}: {registered:#?}"
        );
        assert_eq!(at_mock[0]["idflux"], record.idflux.as_str());
    }
    assert_eq!(registered.len(), 2, "{registered:#?}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_killed_before_sending() {
    kill_at(Victim::Orchestrator, Moment::BeforeSending).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_killed_after_the_mock_registered_it() {
    kill_at(Victim::Orchestrator, Moment::AfterRegistered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_killed_after_the_answer_is_recorded() {
    kill_at(Victim::Orchestrator, Moment::AfterRecorded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_killed_before_sending() {
    kill_at(Victim::Agent, Moment::BeforeSending).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_killed_after_the_mock_registered_it() {
    kill_at(Victim::Agent, Moment::AfterRegistered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_killed_after_the_answer_is_recorded() {
    kill_at(Victim::Agent, Moment::AfterRecorded).await;
}
