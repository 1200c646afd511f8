//! The world of these tests: the auth mock and the agent in process, sharing a test PKI;
//! the agent called over mutual TLS as the orchestrator calls it.

#![allow(dead_code)]

use std::time::Duration;

use iea_agent_testkit::{Admin, TestWorld, direct_network};
use iea_auth_client::App as Agent;
use iea_mock_auth::App as MockApp;
use iea_proto::agent::v1::auth_agent_client::AuthAgentClient;
use iea_proto::agent::v1::authenticate_response::Outcome;
use iea_proto::agent::v1::{AuthenticateRequest, InstallationIdentity};
use iea_proto::common::v1::{self as pb, ProbeResult};
use iea_runtime::pki::TlsFiles;
use serde_json::{Value, json};
use tonic::transport::Channel;

pub const ADMIN_TOKEN: &str = "auth-client-tests";
pub const INSTALLATION: &str = "IEA-TEST-0001";
pub const LICENCE_KEY: &str = "CLE-TEST-0001";

pub struct Mock {
    pub https_port: u16,
    pub http_port: u16,
    pub admin: Admin,
}

pub struct World {
    pub test: TestWorld,
    pub mock: Mock,
    pub mocks_ca_pem: String,
    pub agent: AuthAgentClient<Channel>,
}

/// An auth mock serving `tls`, running until the world stops.
pub async fn start_mock(tls: TlsFiles, world: &TestWorld) -> Mock {
    let mut settings = iea_mock_auth::Settings::default();
    settings.listen.tls = tls;
    settings.listen.admin_token = ADMIN_TOKEN.into();
    let app = MockApp::build(settings).await.expect("mock binds");
    let mock = Mock {
        https_port: app.https_addr().port(),
        http_port: app.http_addr().port(),
        admin: Admin::new(app.admin_addr(), ADMIN_TOKEN, Duration::from_secs(10)),
    };
    world.spawn(app.run_until(world.shutdown()));
    mock
}

/// The mock with one active installation, minimum version 3.00.70, and the agent.
pub async fn start() -> World {
    let test = TestWorld::new();
    let mock = start_mock(test.mock_files(), &test).await;

    let agent = Agent::build(test.agent_settings("auth-client"))
        .await
        .expect("agent binds");
    let channel = test.channel("auth-client", agent.local_addr(), Duration::from_secs(60));
    test.spawn(agent.run_until(test.shutdown()));

    let world = World {
        mocks_ca_pem: test.mocks_ca_pem(),
        test,
        mock,
        agent: AuthAgentClient::new(channel),
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
        self.mock.admin.call(method, path, Some(body)).await
    }

    pub async fn auth_requests(&self) -> u64 {
        let stats = self
            .mock
            .admin
            .call(reqwest::Method::GET, "/__admin/stats", None)
            .await;
        stats["auth_requests"].as_u64().expect("auth_requests")
    }

    pub fn https_address(&self) -> String {
        format!("https://localhost:{}", self.mock.https_port)
    }

    pub fn settings(&self, mode: pb::ConnectionMode, address: &str) -> pb::NetworkSettings {
        direct_network(mode, address, &self.mocks_ca_pem)
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

    pub fn pki_dir(&self) -> &std::path::Path {
        self.test.pki_dir()
    }
}

pub fn unreachable(outcome: Outcome) -> ProbeResult {
    match outcome {
        Outcome::Unreachable(u) => u.probe.expect("a probe result"),
        other => panic!("expected unreachable, got {other:?}"),
    }
}
