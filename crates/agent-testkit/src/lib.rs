//! The agents' test world, shared by the integration tests of every agent: a temporary
//! directory holding the test PKI (the runtime's internal CA with one certificate per
//! component, the mocks CA), components started in process on port 0 and stopped
//! gracefully, the mutual TLS channel to an agent as the orchestrator opens it, and the
//! mocks' admin API.
//!
//! Dev-only: a `[dev-dependencies]` entry of the agents, never a dependency of a binary.
//! What is particular to one agent (its requests, its mock's fixtures) stays in its tests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use iea_mock_kit::MockListen;
use iea_proto::common::v1::{ConnectionMode, ConnectionType, NetworkSettings};
use iea_runtime::agent::AgentSettings;
use iea_runtime::pki::{self, TlsFiles};
use iea_runtime::shutdown::Shutdown;
use serde_json::Value;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

#[cfg(feature = "net-entreprises")]
pub mod net_entreprises;

/// A temporary directory with the test PKI in its `pki` folder, and the components
/// started in it. Dropping it triggers the shutdown of every component; [`TestWorld::stop`]
/// also waits for them and checks that each stopped cleanly.
pub struct TestWorld {
    dir: tempfile::TempDir,
    pki: PathBuf,
    shutdown: Shutdown,
    tasks: Mutex<Vec<JoinHandle<anyhow::Result<()>>>>,
}

impl Drop for TestWorld {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl TestWorld {
    /// A new directory and PKI (the process's crypto provider installed).
    pub fn new() -> Self {
        iea_runtime::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        pki::init(&pki, &[]).expect("pki");
        Self {
            dir,
            pki,
            shutdown: Shutdown::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The temporary directory, for the components' files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PKI directory (`pki::init`'s files).
    pub fn pki_dir(&self) -> &Path {
        &self.pki
    }

    /// The world's shutdown: triggered, every component started with it stops.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The certificate files of `component` (an agent or "orchestrator").
    pub fn component_files(&self, component: &str) -> TlsFiles {
        pki::component_files(&self.pki, component)
    }

    /// The mock servers' certificate files.
    pub fn mock_files(&self) -> TlsFiles {
        pki::mock_files(&self.pki)
    }

    /// The mocks CA in PEM, which agents are told to trust beside the system roots.
    pub fn mocks_ca_pem(&self) -> String {
        std::fs::read_to_string(self.mock_files().ca).expect("mocks CA")
    }

    /// The settings of `agent` listening on a free port of the loopback.
    pub fn agent_settings(&self, agent: &str) -> AgentSettings {
        AgentSettings {
            listen: "127.0.0.1:0".parse().expect("address"),
            tls: self.component_files(agent),
        }
    }

    /// The listeners of a mock on free ports, with the mocks' certificate and `admin_token`.
    pub fn mock_listen(&self, admin_token: &str) -> MockListen {
        MockListen {
            tls: self.mock_files(),
            admin_token: admin_token.into(),
            ..MockListen::default()
        }
    }

    /// Runs a bound component (its `run_until(shutdown)`) until the world stops.
    pub fn spawn(&self, run: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        let task = tokio::spawn(run);
        self.tasks.lock().expect("tasks").push(task);
    }

    /// The channel to `agent` at `addr` as the orchestrator opens it: mutual TLS with the
    /// orchestrator's certificate, the agent's name checked; `timeout` bounds each call.
    pub fn channel(&self, agent: &str, addr: SocketAddr, timeout: Duration) -> Channel {
        let tls = iea_runtime::tls::client_config(&self.component_files("orchestrator"), agent)
            .expect("client TLS");
        iea_runtime::grpc::channel(&addr.to_string(), tls, timeout).expect("channel")
    }

    /// Triggers the shutdown and waits for every component, each of which must stop
    /// without error.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks"));
        for task in tasks {
            task.await.expect("component task").expect("clean stop");
        }
    }
}

impl Default for TestWorld {
    fn default() -> Self {
        Self::new()
    }
}

/// A free port of the loopback, for a component started as a process of its own.
pub fn free_port() -> u16 {
    iea_runtime::ports::reserve_loopback_port()
        .expect("a free port")
        .port()
}

/// Waits until something accepts connections on `port` of the loopback (a component's
/// process has bound it); panics after `within`.
pub async fn wait_listening(port: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while let Err(e) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing listens on port {port} after {within:?}: {e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Direct network settings towards a mock at `address`, trusting `mocks_ca_pem`; no
/// proxy and the mode's own timeouts.
pub fn direct_network(mode: ConnectionMode, address: &str, mocks_ca_pem: &str) -> NetworkSettings {
    NetworkSettings {
        connection_type: ConnectionType::Direct.into(),
        mode: mode.into(),
        address: address.to_owned(),
        extra_ca_pem: mocks_ca_pem.to_owned(),
        ..NetworkSettings::default()
    }
}

/// A mock's admin API over plain HTTP on the loopback, with its bearer token.
#[derive(Clone)]
pub struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    /// The admin API at `addr` (the mock's `admin_addr()`), each call bounded by `timeout`.
    pub fn new(addr: SocketAddr, token: &str, timeout: Duration) -> Self {
        Self {
            base: format!("http://127.0.0.1:{}", addr.port()),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("admin client"),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls `path`, asserts a success status and answers the body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> String {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin answer");
        let status = resp.status();
        let text = resp.text().await.expect("admin body");
        assert!(status.is_success(), "admin {path}: {status} {text}");
        text
    }

    /// Calls `path`, asserts a success status and answers the body as JSON.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let text = self.send(method, path, body).await;
        serde_json::from_str(&text).expect("admin JSON")
    }
}
