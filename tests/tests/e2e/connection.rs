//! "Paramètres de connexion" end to end: each failing step diagnosed, the seeds' repairs,
//! persistence, a real proxy, and the support request.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use iea_mock_kit::{Faults, MockListen, MockServer};
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_mock_updates::fixtures::FIRST;
use iea_proto::common::v1::{ConnectionMode, ConnectionType, ProbeResult, ProbeStep, TlsProblem};
use iea_proto::error::ApiError;
use iea_proto::v1::connection_client::ConnectionClient;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::*;
use iea_runtime::pki::{self, CertificateAuthority, Validity};
use iea_runtime::shutdown::Shutdown;
use serde_json::json;
use tonic::transport::Channel;

use crate::helpers::{TestStack, Tinyproxy, authed, wait_for};

/// A CA the orchestrator is made to trust beside the mocks' one, for test servers.
struct TestCa {
    ca: CertificateAuthority,
    _dir: tempfile::TempDir,
    bundle: std::path::PathBuf,
}

fn test_ca() -> TestCa {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::new("connection tests CA").unwrap();
    let bundle = dir.path().join("bundle.pem");
    TestCa {
        ca,
        _dir: dir,
        bundle,
    }
}

/// An HTTPS server answering 200 with a certificate `leaf`, until `stop` fires.
async fn tls_server(leaf: pki::IssuedCert, stop: &Shutdown) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("s.pem"), dir.path().join("s.key"));
    leaf.write(&cert, &key).unwrap();
    let listen = MockListen {
        tls: pki::TlsFiles {
            ca: Default::default(),
            cert,
            key,
        },
        admin_token: "x".into(),
        ..Default::default()
    };
    let server = MockServer::bind(
        "tls-test",
        &listen,
        Router::new().route("/", get(|| async { "ok" })),
        Router::new(),
        Faults::default(),
    )
    .await
    .unwrap();
    let url = format!("https://{}/", server.https_addr());
    tokio::spawn({
        let stop = stop.clone();
        async move {
            let _dir = dir;
            server.run_until(stop).await
        }
    });
    url
}

struct Ctx {
    stack: TestStack,
    token: String,
    conn: ConnectionClient<Channel>,
}

async fn ctx_with(customize: impl FnOnce(&mut iea_orchestrator::Settings) + Send + 'static) -> Ctx {
    let stack = TestStack::start_with(move |s| {
        s.auth.retry_initial_ms = 100;
        s.auth.retry_max_secs = 1;
        customize(s)
    })
    .await;
    let token = stack.login_admin().await;
    let conn = ConnectionClient::new(stack.channel().await);
    Ctx { stack, token, conn }
}

impl Ctx {
    async fn settings(&mut self) -> ConnectionSettings {
        self.conn
            .get_connection_settings(authed(&self.token, GetConnectionSettingsRequest {}))
            .await
            .unwrap()
            .into_inner()
    }

    /// Tests the saved settings with `auth_server` replaced by `address`; its result.
    async fn test_auth_address(&mut self, address: &str) -> ProbeResult {
        let mut s = self.settings().await;
        s.auth_server = address.to_owned();
        let t = self.test(Some(s)).await;
        t.tests
            .into_iter()
            .find(|a| a.target == "auth_server")
            .unwrap()
            .result
            .unwrap()
    }

    async fn test(&mut self, settings: Option<ConnectionSettings>) -> TestServerAccessResponse {
        self.conn
            .test_server_access(authed(&self.token, TestServerAccessRequest { settings }))
            .await
            .unwrap()
            .into_inner()
    }
}

fn step(r: &ProbeResult) -> ProbeStep {
    ProbeStep::try_from(r.step).unwrap()
}

#[tokio::test]
async fn the_saved_settings_reach_all_three_servers_with_the_seeds_sentence() {
    let mut c = ctx_with(|_| {}).await;
    let t = c.test(None).await;
    assert!(t.all_reachable, "{t:#?}");
    assert_eq!(
        t.message,
        "La connexion local/internet s'est déroulée avec succès"
    );
    assert_eq!(t.tests.len(), 3);
    for a in &t.tests {
        let r = a.result.as_ref().unwrap();
        assert_eq!(step(r), ProbeStep::Ok, "{a:?}");
        assert!(r.latency.is_some());
    }
    c.stack.stop().await;
}

#[tokio::test]
async fn each_failing_step_is_diagnosed_in_words_a_payroll_manager_understands() {
    let ca = test_ca();
    let bundle = ca.bundle.clone();
    let ca_pem = ca.ca.cert_pem().to_owned();
    let mut c = ctx_with(move |s| {
        // Trust the mocks' CA and the test CA; keep requests short for the silent server.
        let mocks = std::fs::read_to_string(s.network.extra_ca_file.as_ref().unwrap()).unwrap();
        std::fs::write(&bundle, format!("{mocks}\n{ca_pem}")).unwrap();
        s.network.extra_ca_file = Some(bundle);
        s.network.request_timeout_ms = 1500;
    })
    .await;
    let stop = Shutdown::new();

    let r = c
        .test_auth_address("https://serveur-introuvable.invalid/")
        .await;
    assert_eq!(step(&r), ProbeStep::NameResolution, "{r:?}");
    assert!(r.message.contains("introuvable"), "{}", r.message);

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = c
        .test_auth_address(&format!("https://127.0.0.1:{closed}/"))
        .await;
    assert_eq!(step(&r), ProbeStep::Connect, "{r:?}");
    assert!(r.message.contains("refuse la connexion"), "{}", r.message);

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let started = Instant::now();
    let r = c
        .test_auth_address(&format!("https://{silent_addr}/"))
        .await;
    assert_eq!(step(&r), ProbeStep::Timeout, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );
    assert!(
        r.message.contains("délai") || r.message.contains("ne répond pas"),
        "{}",
        r.message
    );

    let foreign = CertificateAuthority::new("unknown CA").unwrap();
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let url = tls_server(
        foreign.issue("x", &names, Validity::default()).unwrap(),
        &stop,
    )
    .await;
    let r = c.test_auth_address(&url).await;
    assert_eq!(
        (step(&r), r.tls_problem),
        (ProbeStep::Tls, TlsProblem::UnknownAuthority as i32),
        "{r:?}"
    );
    assert!(r.message.contains("autorité reconnue"), "{}", r.message);

    let url = tls_server(
        ca.ca
            .issue("x", &["autre-serveur.example".into()], Validity::default())
            .unwrap(),
        &stop,
    )
    .await;
    let r = c.test_auth_address(&url).await;
    assert_eq!(
        (step(&r), r.tls_problem),
        (ProbeStep::Tls, TlsProblem::WrongName as i32),
        "{r:?}"
    );
    assert!(r.message.contains("ne correspond pas"), "{}", r.message);

    let url = tls_server(
        ca.ca.issue("x", &names, Validity::expired()).unwrap(),
        &stop,
    )
    .await;
    let r = c.test_auth_address(&url).await;
    assert_eq!(
        (step(&r), r.tls_problem),
        (ProbeStep::Tls, TlsProblem::Expired as i32),
        "{r:?}"
    );
    assert!(r.message.contains("expiré"), "{}", r.message);

    c.stack
        .mock("impact-emploi-auth")
        .faults(json!({"mode": "unavailable"}))
        .await;
    let t = c.test(None).await;
    let r = t
        .tests
        .iter()
        .find(|a| a.target == "auth_server")
        .unwrap()
        .result
        .clone()
        .unwrap();
    assert_eq!((step(&r), r.http_status), (ProbeStep::Http, 503), "{r:?}");
    assert!(r.message.contains("pas disponible"), "{}", r.message);
    assert!(!t.all_reachable);

    let proxy = Tinyproxy::start("paie", "Bon-mot-de-passe").await;
    let mut s = c.settings().await;
    s.connection_type = ConnectionType::Proxy.into();
    s.proxy = Some(ProxyView {
        host: "127.0.0.1".into(),
        port: u32::from(proxy.port),
        username: "paie".into(),
        password: "Mauvais".into(),
        password_set: false,
    });
    let t = c.test(Some(s)).await;
    let r = t
        .tests
        .iter()
        .find(|a| a.target == "net_entreprises")
        .unwrap()
        .result
        .clone()
        .unwrap();
    assert_eq!(step(&r), ProbeStep::Proxy, "{r:?}");
    assert!(r.message.contains("proxy"), "{}", r.message);
    stop.trigger();
    c.stack.stop().await;
}

#[tokio::test]
async fn the_same_test_passes_through_a_real_proxy_with_authentication_and_fails_clearly_with_a_wrong_password()
 {
    let mut c = ctx_with(|_| {}).await;
    let proxy = Tinyproxy::start("paie", "Bon-mot-de-passe").await;
    let mut s = c.settings().await;
    s.connection_type = ConnectionType::Proxy.into();
    s.proxy = Some(ProxyView {
        host: "127.0.0.1".into(),
        port: u32::from(proxy.port),
        username: "paie".into(),
        password: "Bon-mot-de-passe".into(),
        password_set: false,
    });
    let t = c.test(Some(s.clone())).await;
    assert!(t.all_reachable, "through the proxy: {t:#?}");

    // Saved, the password is kept but never shown back; the saved settings work.
    let saved = c
        .conn
        .update_connection_settings(authed(&c.token, s.clone()))
        .await
        .unwrap()
        .into_inner();
    let p = saved.proxy.unwrap();
    assert!(p.password.is_empty() && p.password_set);
    assert!(c.test(None).await.all_reachable);

    s.proxy.as_mut().unwrap().password = "Mauvais-mot-de-passe".into();
    let t = c.test(Some(s)).await;
    assert!(!t.all_reachable);
    for a in &t.tests {
        let r = a.result.as_ref().unwrap();
        assert_eq!(step(r), ProbeStep::Proxy, "{a:?}");
        assert!(r.message.contains("proxy"), "{}", r.message);
    }
    c.stack.stop().await;
}

#[tokio::test]
async fn a_filtered_default_port_is_repaired_with_the_fallback_port_and_the_status_turns_blue() {
    let mut c = ctx_with(|_| {}).await;
    let mut watch = c.stack.watch().await;
    wait_for(&mut watch, |r| r.indicator == Indicator::Connected as i32).await;
    c.stack
        .mock("impact-emploi-auth")
        .faults(json!({"mode": "none", "close_default_port": true}))
        .await;
    let r = StatusClient::new(c.stack.channel().await)
        .reauthenticate(authed(&c.token, ReauthenticateRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.indicator, Indicator::Disconnected as i32, "red: {r:?}");

    let proposals = c
        .conn
        .propose_repairs(authed(&c.token, ProposeRepairsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let p = proposals
        .proposals
        .iter()
        .find(|p| p.id == "fallback_port")
        .unwrap_or_else(|| panic!("the fallback port is proposed: {proposals:#?}"));
    assert!(
        p.test.as_ref().unwrap().all_reachable,
        "tested before offered"
    );
    let fallback = c.stack.file().mocks["impact-emploi-auth"]
        .fallback
        .clone()
        .unwrap();
    assert_eq!(p.proposed.as_ref().unwrap().auth_server, fallback);

    let applied = c
        .conn
        .apply_repair(authed(
            &c.token,
            ApplyRepairRequest {
                id: "fallback_port".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(applied.changes.contains(&fallback), "{applied:?}");
    wait_for(&mut watch, |r| r.indicator == Indicator::Connected as i32).await;
    assert_eq!(c.settings().await.auth_server, fallback, "saved");
    c.stack.stop().await;
}

#[tokio::test]
async fn legacy_settings_are_migrated_to_secure_mode_and_settings_survive_a_restart() {
    let mut c = ctx_with(|_| {}).await;
    let official = c.settings().await;
    // An installation of another era: Normal mode, plain http:// addresses.
    let mut legacy = official.clone();
    legacy.mode = ConnectionMode::Normal.into();
    legacy.auth_server = c.stack.file().mocks["impact-emploi-auth"].http.clone();
    legacy.update_server = c.stack.file().mocks["impact-emploi-updates"].http.clone();
    c.conn
        .update_connection_settings(authed(&c.token, legacy.clone()))
        .await
        .unwrap();

    // A save that fails validation changes nothing.
    let mut bad = legacy.clone();
    bad.mode = ConnectionMode::Secure.into();
    bad.net_entreprises = "pas une adresse".into();
    let e = ApiError::from(
        c.conn
            .update_connection_settings(authed(&c.token, bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "invalid_settings");
    assert!(
        e.message.contains("Sécurisé"),
        "the http:// address in secure mode is named: {e:?}"
    );
    assert!(
        e.message.contains("Net-entreprises"),
        "the bad address is named: {e:?}"
    );
    assert_eq!(c.settings().await, legacy, "nothing was saved");

    let proposals = c
        .conn
        .propose_repairs(authed(&c.token, ProposeRepairsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(
        proposals
            .proposals
            .iter()
            .any(|p| p.id == "secure_official_addresses"),
        "{proposals:#?}"
    );
    c.conn
        .apply_repair(authed(
            &c.token,
            ApplyRepairRequest {
                id: "secure_official_addresses".into(),
            },
        ))
        .await
        .unwrap();
    let migrated = c.settings().await;
    assert_eq!(migrated.mode, ConnectionMode::Secure as i32);
    assert_eq!(migrated.auth_server, official.auth_server);
    assert_eq!(migrated.update_server, official.update_server);

    // Extended mode saved, then the whole stack restarted: still there.
    let mut extended = migrated.clone();
    extended.mode = ConnectionMode::Extended.into();
    c.conn
        .update_connection_settings(authed(&c.token, extended.clone()))
        .await
        .unwrap();
    let stack = c.stack.restart().await;
    let token = stack.login_admin().await;
    let after = ConnectionClient::new(stack.channel().await)
        .get_connection_settings(authed(&token, GetConnectionSettingsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, extended);
    stack.stop().await;
}

#[tokio::test]
async fn the_support_email_parses_names_the_version_and_holds_no_secret() {
    use iea_proto::v1::credentials_client::CredentialsClient;
    use iea_proto::v1::support_client::SupportClient;
    let mut c = ctx_with(|_| {}).await;
    let ne_password = DUPONT.password;
    let proxy_password = "Proxy-Secret-42";
    CredentialsClient::new(c.stack.channel().await)
        .set_credentials(authed(
            &c.token,
            SetCredentialsRequest {
                user: "Administrateur".into(),
                account_password: c.stack.admin_password(),
                identity: Some(iea_proto::v1::NetEntreprisesIdentity {
                    siret: DUPONT.siret.into(),
                    nom: DUPONT.nom.into(),
                    prenom: DUPONT.prenom.into(),
                    password: ne_password.into(),
                }),
            },
        ))
        .await
        .unwrap();
    let mut s = c.settings().await;
    s.connection_type = ConnectionType::Proxy.into();
    s.proxy = Some(ProxyView {
        host: "127.0.0.1".into(),
        port: 3128,
        username: "paie".into(),
        password: proxy_password.into(),
        password_set: false,
    });
    c.conn
        .update_connection_settings(authed(&c.token, s))
        .await
        .unwrap();
    c.test(None).await;

    let r = SupportClient::new(c.stack.channel().await)
        .prepare_support_request(authed(
            &c.token,
            PrepareSupportRequestRequest {
                description: "Plus de connexion depuis ce matin.".into(),
                from: "tresorier@association.example".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.to, "impact-emploi-association@urssaf.fr");
    assert_eq!(r.subject, format!("Serveur de connexion {FIRST}"));

    let msg = mail_parser::MessageParser::default()
        .parse(&r.eml)
        .expect("a valid message");
    assert_eq!(
        msg.subject(),
        Some(format!("Serveur de connexion {FIRST}").as_str())
    );
    assert!(msg.date().is_some(), "a Date header");
    let to = msg
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap();
    assert_eq!(to, "impact-emploi-association@urssaf.fr");
    let body = msg.body_text(0).unwrap();
    assert!(
        body.contains("Plus de connexion depuis ce matin."),
        "{body}"
    );
    assert!(body.contains(&c.stack.file().installation_id), "{body}");
    assert_eq!(msg.attachment_count(), 1);
    let attachment = msg.attachment(0).unwrap();
    let diagnostic: serde_json::Value =
        serde_json::from_slice(attachment.contents()).expect("a JSON diagnostic");
    assert_eq!(diagnostic["software_version"], FIRST);
    assert_eq!(
        diagnostic["installation_id"],
        c.stack.file().installation_id.as_str()
    );
    assert_eq!(
        diagnostic["connection_settings"]["connection_type"]["password_set"],
        true
    );
    assert!(
        diagnostic["last_server_access_test"]["results"]
            .as_array()
            .unwrap()
            .len()
            == 3
    );

    let (licence_key, daily_key) = c.stack.installation_secrets();
    let raw = String::from_utf8_lossy(&r.eml).into_owned();
    let decoded = format!("{raw}\n{body}\n{diagnostic}");
    for (what, secret) in [
        ("Net-entreprises password", ne_password.to_owned()),
        ("proxy password", proxy_password.to_owned()),
        ("administrator password", c.stack.admin_password()),
        ("session token", c.token.clone()),
        ("licence key", licence_key),
        ("daily-password key", daily_key),
    ] {
        assert!(
            !decoded.contains(&secret),
            "the {what} is in the support e-mail"
        );
    }
    c.stack.stop().await;
}

/// Issue 15: every address field has limits and host-name rules; each refusal names the
/// field, quotes at most a short start of what was typed, and saves nothing.
#[tokio::test]
async fn each_address_beyond_the_limits_is_refused_by_name_and_nothing_is_saved() {
    let mut c = ctx_with(|_| {}).await;
    let saved = c.settings().await;
    let long_label = "a".repeat(64);
    // 3 × 63 + 62 + 3 dots = 254 characters.
    let long_name = format!("{}.{}", vec!["b".repeat(63); 3].join("."), "b".repeat(62));
    let huge = "a".repeat(100_000);

    type Change = Box<dyn Fn(&mut ConnectionSettings)>;
    let address = |field: &'static str, value: String| -> Change {
        Box::new(move |s: &mut ConnectionSettings| match field {
            "auth_server" => s.auth_server = value.clone(),
            "update_server" => s.update_server = value.clone(),
            _ => s.net_entreprises = value.clone(),
        })
    };
    let proxy = |host: String| -> Change {
        Box::new(move |s: &mut ConnectionSettings| {
            s.connection_type = ConnectionType::Proxy.into();
            s.proxy = Some(ProxyView {
                host: host.clone(),
                port: 3128,
                ..Default::default()
            });
        })
    };
    let auth = "Adresse du serveur d'authentification";
    let update = "Adresse du serveur de mise à jour";
    let net = "Adresse d'authentification Net-entreprises";
    let px = "Serveur proxy";
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "100,000-character name",
            address("auth_server", format!("https://{huge}.fr")),
            auth,
            "100 011 caractères",
        ),
        (
            "64-character part",
            address("update_server", format!("https://{long_label}.fr/updates")),
            update,
            "63 au plus",
        ),
        (
            "254-character name",
            address("net_entreprises", format!("https://{long_name}/")),
            net,
            "253 au plus",
        ),
        (
            "underscore",
            address("auth_server", "https://impact_emploi.fr".into()),
            auth,
            "« _ »",
        ),
        (
            "leading hyphen",
            address("update_server", "https://-impact.fr".into()),
            update,
            "tiret",
        ),
        (
            "empty part",
            address("net_entreprises", "https://impact..fr".into()),
            net,
            "deux points de suite",
        ),
        (
            "IPv6 without brackets",
            address("auth_server", "https://2001:db8::1/".into()),
            auth,
            "entre crochets",
        ),
        (
            "100,000-character proxy",
            proxy(huge.clone()),
            px,
            "100 000 caractères",
        ),
        (
            "proxy with a 64-character part",
            proxy(format!("{long_label}.local")),
            px,
            "63 au plus",
        ),
        (
            "proxy with a 254-character name",
            proxy(long_name.clone()),
            px,
            "253 au plus",
        ),
        (
            "proxy with an underscore",
            proxy("proxy_1.local".into()),
            px,
            "« _ »",
        ),
        (
            "proxy IPv6 without brackets",
            proxy("2001:db8::1".into()),
            px,
            "entre crochets",
        ),
        (
            "proxy with a port",
            proxy("proxy.local:3128".into()),
            px,
            "port à part",
        ),
        (
            "proxy as a URL",
            proxy("http://proxy.local".into()),
            px,
            "n'est pas un nom de serveur",
        ),
    ];
    for (case, change, field, reason) in cases {
        let mut bad = saved.clone();
        change(&mut bad);
        let e = ApiError::from(
            c.conn
                .update_connection_settings(authed(&c.token, bad))
                .await
                .unwrap_err(),
        );
        assert_eq!(e.code, "invalid_settings", "{case}: {e:?}");
        assert!(
            e.message
                .starts_with("Les paramètres n'ont pas été enregistrés."),
            "{case}: {e:?}"
        );
        assert!(
            e.message.contains(field),
            "{case}: the field is named: {e:?}"
        );
        assert!(
            e.message.contains(reason),
            "{case}: the rule is said: {e:?}"
        );
        assert!(
            e.message.chars().count() < 400,
            "{case}: what was typed is not quoted back whole ({} characters)",
            e.message.chars().count()
        );
        assert_eq!(c.settings().await, saved, "{case}: nothing was saved");
    }

    // Within the limits, an international name and an IPv6 address in brackets are
    // accepted and saved.
    let mut good = saved.clone();
    good.net_entreprises = "https://éléphant.invalid/authentifier".into();
    good.connection_type = ConnectionType::Proxy.into();
    good.proxy = Some(ProxyView {
        host: "[::1]".into(),
        port: 3128,
        ..Default::default()
    });
    let stored = c
        .conn
        .update_connection_settings(authed(&c.token, good))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.settings().await, stored);
    assert_eq!(stored.proxy.unwrap().host, "[::1]");
    c.stack.stop().await;
}
