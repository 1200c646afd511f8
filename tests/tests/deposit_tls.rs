//! A deposit address whose server certificate does not come from a trusted CA (issue 12,
//! must show): through orchestrator → deposit agent → Net-entreprises, the deposit is
//! never sent, and its record says why in French. The server behind that address is a
//! full Net-entreprises mock (same declarants) with a certificate from another authority:
//! were the certificate not checked, it would register the deposit.

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{TestStack, authed};
use std::time::Duration;

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::*;
use iea_runtime::pki::{CertificateAuthority, TlsFiles, Validity};
use iea_runtime::shutdown::Shutdown;

const ADMIN: &str = "Administrateur";
const SIRET: &str = DUPONT.siret;

/// A Net-entreprises mock serving a certificate issued by an authority nobody trusts.
async fn impostor(
    dir: &std::path::Path,
    stop: &Shutdown,
) -> (String, iea_mock_net_entreprises::Control) {
    let foreign = CertificateAuthority::new("Autorité inconnue").unwrap();
    let (cert, key) = (dir.join("impostor.pem"), dir.join("impostor.key"));
    foreign
        .issue(
            "net-entreprises",
            &["127.0.0.1".to_owned(), "localhost".to_owned()],
            Validity::default(),
        )
        .unwrap()
        .write(&cert, &key)
        .unwrap();
    let app = iea_mock_net_entreprises::App::build(iea_mock_net_entreprises::Settings {
        listen: iea_mock_kit::MockListen {
            tls: TlsFiles {
                ca: Default::default(),
                cert,
                key,
            },
            admin_token: "impostor".into(),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("https://{}", app.https_addr());
    let control = app.control();
    tokio::spawn(app.run_until(stop.clone()));
    (url, control)
}

#[tokio::test]
async fn a_deposit_server_with_a_certificate_from_another_authority_gets_nothing() {
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let stop = Shutdown::new();
    let (impostor_url, impostor) = impostor(dir.path(), &stop).await;
    let stack = TestStack::start_configured(move |o| {
        o.demo = false;
        o.customize_orchestrator = Some(Box::new(move |s| {
            s.deposits.poll_interval_ms = 100;
            s.deposits.retry_delay_secs = 1;
            s.deposits.deposit_address = impostor_url;
        }));
    })
    .await;
    let channel = stack.channel().await;
    let password = stack.admin_password();
    let token = stack.login(ADMIN, &password).await;
    CredentialsClient::new(channel.clone())
        .set_credentials(authed(
            &token,
            SetCredentialsRequest {
                user: ADMIN.into(),
                account_password: password,
                identity: Some(NetEntreprisesIdentity {
                    siret: SIRET.into(),
                    nom: DUPONT.nom.into(),
                    prenom: DUPONT.prenom.into(),
                    password: DUPONT.password.into(),
                }),
            },
        ))
        .await
        .unwrap();
    let bytes = iea_dsn::sample(&iea_dsn::SampleSpec::new(
        SIRET,
        iea_dsn::Month::new(2026, 11).unwrap(),
        2,
    ));
    let mut deposits = DepositsClient::new(channel);
    let d = deposits
        .deposit(authed(
            &token,
            tokio_stream::iter(iea_stack_testkit::dsn_upload("DSN.txt", &bytes)),
        ))
        .await
        .unwrap()
        .into_inner();
    // Tried (the handshake refused), and said why; tried again later, never sent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let d = loop {
        let now = deposits
            .get_deposit(authed(&token, GetDsnDepositRequest { id: d.id }))
            .await
            .unwrap()
            .into_inner();
        if now.attempts >= 2 && now.state != "sending" {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never tried twice: {now:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        d.state == "queued" || d.state == "failed",
        "not sent, so not uncertain: {d:#?}"
    );
    assert!(d.idflux.is_empty(), "{d:#?}");
    assert!(d.message.contains("certificat"), "{}", d.message);
    assert!(
        d.message.contains("autorité") || d.message.contains("confiance"),
        "{}",
        d.message
    );
    // The impostor never got a request through; nor did the real mock get a deposit.
    assert!(impostor.deposits_list().await.is_empty());
    assert_eq!(
        impostor
            .stats()
            .services
            .get("/deposer-dsn/1.0/")
            .map_or(0, |s| s.requests),
        0
    );
    let real = stack.mock("net-entreprises").get("/deposits").await;
    assert_eq!(real, serde_json::json!([]));
    stop.trigger();
    stack.stop().await;
}
