//! The auth client agent against the real auth mock, both in process: the agent is called
//! over mutual TLS as the orchestrator calls it, and reaches the mock over HTTPS trusting
//! the mocks test CA (verification stays on), or over plain HTTP in *Normal* mode.

mod common;

use std::path::PathBuf;

use common::{INSTALLATION, LICENCE_KEY, start, start_mock, unreachable};
use iea_proto::agent::v1::authenticate_response::Outcome;
use iea_proto::agent::v1::{AuthenticateRequest, InstallationIdentity};
use iea_proto::common::v1::{self as pb, ProbeStep, TlsProblem};
use iea_runtime::pki::{CertificateAuthority, TlsFiles, Validity};
use serde_json::json;
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
        &world.test,
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
        .base()
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
        // The minor part of an Impact emploi version has two digits (iea-version).
        Some(InstallationIdentity {
            installation_id: INSTALLATION.into(),
            licence_key: LICENCE_KEY.into(),
            software_version: "3.0.72".into(),
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

#[tokio::test]
async fn a_name_that_does_not_resolve_is_unreachable_at_the_name_resolution_step() {
    let world = start().await;
    let network = world.settings(pb::ConnectionMode::Secure, "https://impact-emploi.invalid");
    let probe = unreachable(
        world
            .authenticate_with(network, LICENCE_KEY, "3.00.72")
            .await,
    );
    assert_eq!(probe.step(), ProbeStep::NameResolution, "{probe:?}");
    assert!(probe.message.contains("introuvable"), "{}", probe.message);
}
