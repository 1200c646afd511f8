//! The world of these tests: the auth mock and the agent in process, sharing a test PKI;
//! the agent called over mutual TLS as the orchestrator calls it.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use iea_auth_client::App as Agent;
use iea_mock_auth::App as MockApp;
use iea_proto::agent::v1::auth_agent_client::AuthAgentClient;
use iea_proto::agent::v1::authenticate_response::Outcome;
use iea_proto::agent::v1::{AuthenticateRequest, InstallationIdentity};
use iea_proto::common::v1::{self as pb, ProbeResult};
use iea_runtime::agent::AgentSettings;
use iea_runtime::pki::{self, TlsFiles};
use iea_runtime::shutdown::Shutdown;
use serde_json::{Value, json};
use tonic::transport::Channel;

pub const ADMIN_TOKEN: &str = "auth-client-tests";
pub const INSTALLATION: &str = "IEA-TEST-0001";
pub const LICENCE_KEY: &str = "CLE-TEST-0001";

pub struct Mock {
    pub https_port: u16,
    pub http_port: u16,
    pub admin: String,
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub mock: Mock,
    pub mocks_ca_pem: String,
    pub agent: AuthAgentClient<Channel>,
    pub http: reqwest::Client,
    pub shutdown: Shutdown,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn start_mock(tls: TlsFiles, shutdown: &Shutdown) -> Mock {
    let mut settings = iea_mock_auth::Settings::default();
    settings.listen.tls = tls;
    settings.listen.admin_token = ADMIN_TOKEN.into();
    let app = MockApp::build(settings).await.expect("mock binds");
    let mock = Mock {
        https_port: app.https_addr().port(),
        http_port: app.http_addr().port(),
        admin: format!("http://127.0.0.1:{}", app.admin_addr().port()),
    };
    tokio::spawn(app.run_until(shutdown.clone()));
    mock
}

/// The mock with one active installation, minimum version 3.00.70, and the agent.
pub async fn start() -> World {
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    pki::init(dir.path(), &[]).expect("pki");
    let shutdown = Shutdown::new();
    let mock = start_mock(pki::mock_files(dir.path()), &shutdown).await;

    let agent = Agent::build(AgentSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        tls: pki::component_files(dir.path(), "auth-client"),
    })
    .await
    .expect("agent binds");
    let agent_addr = agent.local_addr();
    tokio::spawn(agent.run_until(shutdown.clone()));
    let tls = iea_runtime::tls::client_config(
        &pki::component_files(dir.path(), "orchestrator"),
        "auth-client",
    )
    .expect("client TLS");
    let channel = iea_runtime::grpc::channel(&agent_addr.to_string(), tls, Duration::from_secs(60))
        .expect("channel");

    let mocks_ca_pem = std::fs::read_to_string(dir.path().join("mocks-ca.pem")).expect("mocks CA");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("admin client");
    let world = World {
        dir,
        mock,
        mocks_ca_pem,
        agent: AuthAgentClient::new(channel),
        http,
        shutdown,
    };
    world
        .admin(
            reqwest::Method::POST,
            "/__admin/installations",
            json!({
                "installation_id": INSTALLATION,
                "licence_key": LICENCE_KEY,
                "status": "active",
                "licence_holder": "Association des tests",
                "valid_until": "2027-12-31T23:59:59Z",
            }),
        )
        .await;
    world
        .admin(
            reqwest::Method::PUT,
            "/__admin/minimum-version",
            json!({"minimum_version": "3.00.70"}),
        )
        .await;
    world
}

impl World {
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        admin_call(&self.http, &self.mock.admin, method, path, Some(body)).await
    }

    pub async fn auth_requests(&self) -> u64 {
        let stats = admin_call(
            &self.http,
            &self.mock.admin,
            reqwest::Method::GET,
            "/__admin/stats",
            None,
        )
        .await;
        stats["auth_requests"].as_u64().expect("auth_requests")
    }

    pub fn https_address(&self) -> String {
        format!("https://localhost:{}", self.mock.https_port)
    }

    pub fn settings(&self, mode: pb::ConnectionMode, address: &str) -> pb::NetworkSettings {
        pb::NetworkSettings {
            connection_type: pb::ConnectionType::Direct.into(),
            mode: mode.into(),
            proxy: None,
            address: address.to_owned(),
            extra_ca_pem: self.mocks_ca_pem.clone(),
            request_timeout_ms: 0,
        }
    }

    pub async fn authenticate_with(
        &self,
        network: pb::NetworkSettings,
        key: &str,
        version: &str,
    ) -> Outcome {
        let request = AuthenticateRequest {
            network: Some(network),
            installation: Some(InstallationIdentity {
                installation_id: INSTALLATION.into(),
                licence_key: key.into(),
                software_version: version.into(),
                workstation: "POSTE-PAIE".into(),
            }),
        };
        self.agent
            .clone()
            .authenticate(request)
            .await
            .expect("the agent answers")
            .into_inner()
            .outcome
            .expect("an outcome")
    }

    /// Secure mode, the HTTPS port, the registered licence key.
    pub async fn authenticate(&self, version: &str) -> Outcome {
        let network = self.settings(pb::ConnectionMode::Secure, &self.https_address());
        self.authenticate_with(network, LICENCE_KEY, version).await
    }

    pub fn pki_dir(&self) -> &Path {
        self.dir.path()
    }
}

pub async fn admin_call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin answer");
    assert!(
        resp.status().is_success(),
        "admin {path}: {}",
        resp.status()
    );
    resp.json().await.expect("admin JSON")
}

pub fn unreachable(outcome: Outcome) -> ProbeResult {
    match outcome {
        Outcome::Unreachable(u) => u.probe.expect("a probe result"),
        other => panic!("expected unreachable, got {other:?}"),
    }
}
