//! The auth client agent against the real auth mock, both in process: the agent is called
//! over mutual TLS as the orchestrator calls it, and reaches the mock over HTTPS trusting
//! the mocks test CA (verification stays on), or over plain HTTP in *Normal* mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use iea_auth_client::App as Agent;
use iea_mock_auth::App as MockApp;
use iea_proto::agent::v1::auth_agent_client::AuthAgentClient;
use iea_proto::agent::v1::authenticate_response::Outcome;
use iea_proto::agent::v1::{AuthenticateRequest, InstallationIdentity};
use iea_proto::common::v1::{self as pb, ProbeResult, ProbeStep, TlsProblem};
use iea_runtime::agent::AgentSettings;
use iea_runtime::pki::{self, CertificateAuthority, TlsFiles, Validity};
use iea_runtime::shutdown::Shutdown;
use serde_json::{Value, json};
use tonic::transport::Channel;

const ADMIN_TOKEN: &str = "auth-client-tests";
const INSTALLATION: &str = "IEA-TEST-0001";
const LICENCE_KEY: &str = "CLE-TEST-0001";

struct Mock {
    https_port: u16,
    http_port: u16,
    admin: String,
}

struct World {
    dir: tempfile::TempDir,
    mock: Mock,
    mocks_ca_pem: String,
    agent: AuthAgentClient<Channel>,
    http: reqwest::Client,
    shutdown: Shutdown,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn start_mock(tls: TlsFiles, shutdown: &Shutdown) -> Mock {
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
async fn start() -> World {
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
    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        admin_call(&self.http, &self.mock.admin, method, path, Some(body)).await
    }

    async fn auth_requests(&self) -> u64 {
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

    fn https_address(&self) -> String {
        format!("https://localhost:{}", self.mock.https_port)
    }

    fn settings(&self, mode: pb::ConnectionMode, address: &str) -> pb::NetworkSettings {
        pb::NetworkSettings {
            connection_type: pb::ConnectionType::Direct.into(),
            mode: mode.into(),
            proxy: None,
            address: address.to_owned(),
            extra_ca_pem: self.mocks_ca_pem.clone(),
        }
    }

    async fn authenticate_with(
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
    async fn authenticate(&self, version: &str) -> Outcome {
        let network = self.settings(pb::ConnectionMode::Secure, &self.https_address());
        self.authenticate_with(network, LICENCE_KEY, version).await
    }

    fn pki_dir(&self) -> &Path {
        self.dir.path()
    }
}

async fn admin_call(
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

fn unreachable(outcome: Outcome) -> ProbeResult {
    match outcome {
        Outcome::Unreachable(u) => u.probe.expect("a probe result"),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_active_installation_is_authorized_in_secure_mode() {
    let world = start().await;
    match world.authenticate("3.00.72").await {
        Outcome::Authorized(a) => {
            assert_eq!(a.licence_holder, "Association des tests");
            assert_eq!(a.valid_until.expect("valid_until").seconds, 1_830_297_599);
            let server_time = a.server_time.expect("server_time").seconds;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            assert!((server_time - now).abs() < 60, "{server_time} vs {now}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(world.auth_requests().await, 1);
}

#[tokio::test]
async fn a_refused_installation_is_told_autorisation_refusee() {
    let world = start().await;
    world
        .admin(
            reqwest::Method::PATCH,
            &format!("/__admin/installations/{INSTALLATION}"),
            json!({"status": "refused"}),
        )
        .await;
    match world.authenticate("3.00.72").await {
        Outcome::Refused(r) => assert_eq!(r.message, "Autorisation refusée"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_is_never_tried_again_even_in_extended_mode() {
    let world = start().await;
    world
        .admin(
            reqwest::Method::PATCH,
            &format!("/__admin/installations/{INSTALLATION}"),
            json!({"status": "refused"}),
        )
        .await;
    let network = world.settings(pb::ConnectionMode::Extended, &world.https_address());
    let outcome = world
        .authenticate_with(network, LICENCE_KEY, "3.00.72")
        .await;
    assert!(matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
    assert_eq!(world.auth_requests().await, 1);
}

#[tokio::test]
async fn a_withdrawn_licence_leaves_consultation_possible() {
    let world = start().await;
    world
        .admin(
            reqwest::Method::PATCH,
            &format!("/__admin/installations/{INSTALLATION}"),
            json!({"status": "withdrawn"}),
        )
        .await;
    match world.authenticate("3.00.72").await {
        Outcome::LicenceWithdrawn(w) => {
            assert!(!w.unknown);
            assert_eq!(
                w.message,
                "La licence vous a été retirée, mais vous pouvez utiliser Impact Emploi pour de la consultation"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_licence_is_not_recognised() {
    let world = start().await;
    let network = world.settings(pb::ConnectionMode::Secure, &world.https_address());
    match world
        .authenticate_with(network, "CLE-INCONNUE", "3.00.72")
        .await
    {
        Outcome::LicenceWithdrawn(w) => {
            assert!(w.unknown);
            assert_eq!(w.message, "Licence d'installation non reconnue");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_version_below_the_minimum_requires_an_update() {
    let world = start().await;
    world
        .admin(
            reqwest::Method::PUT,
            "/__admin/minimum-version",
            json!({"minimum_version": "3.02.004"}),
        )
        .await;
    match world.authenticate("3.00.72").await {
        Outcome::UpdateRequired(u) => assert_eq!(u.minimum_version, "3.02.004"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        world.authenticate("3.02.004").await,
        Outcome::Authorized(_)
    ));
}

#[tokio::test]
async fn a_closed_port_is_unreachable_at_the_connect_step() {
    let world = start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let network = world.settings(
        pb::ConnectionMode::Secure,
        &format!("https://localhost:{closed}"),
    );
    let probe = unreachable(
        world
            .authenticate_with(network, LICENCE_KEY, "3.00.72")
            .await,
    );
    assert_eq!(probe.step(), ProbeStep::Connect, "{probe:?}");
    assert!(!probe.reachable);
    assert!(
        probe.message.contains("refuse la connexion"),
        "{}",
        probe.message
    );
}

#[tokio::test]
async fn an_unavailable_server_is_unreachable_at_the_http_step_with_503() {
    let world = start().await;
    world
        .admin(
            reqwest::Method::POST,
            "/__admin/faults",
            json!({"mode": "unavailable"}),
        )
        .await;
    let probe = unreachable(world.authenticate("3.00.72").await);
    assert_eq!(probe.step(), ProbeStep::Http, "{probe:?}");
    assert_eq!(probe.http_status, 503);
    assert!(probe.message.contains("503"), "{}", probe.message);
    assert_eq!(world.auth_requests().await, 0);
}

#[tokio::test]
async fn a_certificate_from_another_authority_is_unreachable_at_the_tls_step() {
    let world = start().await;
    let other = CertificateAuthority::new("some other CA").expect("CA");
    let leaf = other
        .issue(
            "localhost",
            &["localhost".into(), "127.0.0.1".into()],
            Validity::default(),
        )
        .expect("leaf");
    let cert = world.pki_dir().join("other.pem");
    let key = world.pki_dir().join("other.key");
    leaf.write(&cert, &key).expect("write");
    let impostor = start_mock(
        TlsFiles {
            ca: PathBuf::new(),
            cert,
            key,
        },
        &world.shutdown,
    )
    .await;
    let network = world.settings(
        pb::ConnectionMode::Secure,
        &format!("https://localhost:{}", impostor.https_port),
    );
    let probe = unreachable(
        world
            .authenticate_with(network, LICENCE_KEY, "3.00.72")
            .await,
    );
    assert_eq!(probe.step(), ProbeStep::Tls, "{probe:?}");
    assert_eq!(probe.tls_problem(), TlsProblem::UnknownAuthority);
}

#[tokio::test]
async fn with_the_default_port_closed_the_plain_http_port_still_authenticates_in_normal_mode() {
    let world = start().await;
    world
        .admin(
            reqwest::Method::POST,
            "/__admin/faults",
            json!({"mode": "none", "close_default_port": true}),
        )
        .await;
    let probe = unreachable(world.authenticate("3.00.72").await);
    // The default port resets every new connection before any byte is answered.
    assert_eq!(probe.step(), ProbeStep::Connect, "{probe:?}");

    let fallback = world.settings(
        pb::ConnectionMode::Normal,
        &format!("http://127.0.0.1:{}", world.mock.http_port),
    );
    let outcome = world
        .authenticate_with(fallback, LICENCE_KEY, "3.00.72")
        .await;
    assert!(matches!(outcome, Outcome::Authorized(_)), "{outcome:?}");
    assert_eq!(world.auth_requests().await, 1);
}

#[tokio::test]
async fn an_http_address_in_secure_mode_is_refused_at_the_address_step_without_a_request() {
    let world = start().await;
    let network = world.settings(
        pb::ConnectionMode::Secure,
        &format!("http://127.0.0.1:{}", world.mock.http_port),
    );
    let probe = unreachable(
        world
            .authenticate_with(network, LICENCE_KEY, "3.00.72")
            .await,
    );
    assert_eq!(probe.step(), ProbeStep::Address, "{probe:?}");
    assert!(probe.message.contains("Sécurisé"), "{}", probe.message);
    assert_eq!(world.auth_requests().await, 0);
}

#[tokio::test]
async fn an_answer_that_is_not_the_protocol_is_unreachable_at_the_http_step() {
    let world = start().await;
    // A captive portal: 200 and a web page, on any path.
    let portal = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = portal.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<html><body>Portail captif : acceptez les conditions</body></html>",
        )
    });
    tokio::spawn(async move { axum::serve(portal, app).await });
    let network = world.settings(
        pb::ConnectionMode::Normal,
        &format!("http://127.0.0.1:{port}"),
    );
    let probe = unreachable(
        world
            .authenticate_with(network, LICENCE_KEY, "3.00.72")
            .await,
    );
    assert_eq!(probe.step(), ProbeStep::Http, "{probe:?}");
    assert_eq!(probe.http_status, 200);
    assert!(
        probe.detail.contains("unparsable answer"),
        "{}",
        probe.detail
    );
    assert!(
        probe.message.contains("serveur d'authentification"),
        "{}",
        probe.message
    );

    // A server that is not the authentication server: the admin port answers 401.
    let admin_port = world
        .mock
        .admin
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let network = world.settings(
        pb::ConnectionMode::Normal,
        &format!("http://127.0.0.1:{admin_port}"),
    );
    let probe = unreachable(
        world
            .authenticate_with(network, LICENCE_KEY, "3.00.72")
            .await,
    );
    assert_eq!(probe.step(), ProbeStep::Http, "{probe:?}");
    assert_eq!(probe.http_status, 401);
}

#[tokio::test]
async fn a_request_without_a_usable_identity_is_an_invalid_input_error() {
    let world = start().await;
    let network = world.settings(pb::ConnectionMode::Secure, &world.https_address());
    for installation in [
        None,
        Some(InstallationIdentity {
            installation_id: INSTALLATION.into(),
            licence_key: String::new(),
            software_version: "3.00.72".into(),
            workstation: String::new(),
        }),
        Some(InstallationIdentity {
            installation_id: INSTALLATION.into(),
            licence_key: LICENCE_KEY.into(),
            software_version: "trois".into(),
            workstation: String::new(),
        }),
    ] {
        let status = world
            .agent
            .clone()
            .authenticate(AuthenticateRequest {
                network: Some(network.clone()),
                installation,
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let e = iea_proto::error::ApiError::from_status(&status);
        assert_eq!(e.code, "invalid_input");
    }
    assert_eq!(world.auth_requests().await, 0);
}
