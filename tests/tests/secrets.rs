//! No secret reaches the logs: every component's logs, at TRACE, are captured while
//! accounts log in, a Net-entreprises identity is set and verified; then the captured
//! text is searched for each secret. A binary of its own, since it installs the global
//! log subscriber.

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};

use helpers::{TestStack, authed};
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::NetEntreprisesIdentity;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::{SetCredentialsRequest, VerifyCredentialsRequest};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_password_or_token_appears_in_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(iea_runtime::telemetry::filter("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let stack = TestStack::start().await;
    let admin_password = stack.admin_password();
    let token = stack.login_admin().await;
    let ne_password = DUPONT.password;
    let mut creds = CredentialsClient::new(stack.channel().await);
    creds
        .set_credentials(authed(
            &token,
            SetCredentialsRequest {
                user: "Administrateur".into(),
                account_password: admin_password.clone(),
                identity: Some(NetEntreprisesIdentity {
                    siret: DUPONT.siret.into(),
                    nom: DUPONT.nom.into(),
                    prenom: DUPONT.prenom.into(),
                    password: ne_password.into(),
                }),
            },
        ))
        .await
        .unwrap();
    creds
        .verify_credentials(authed(
            &token,
            VerifyCredentialsRequest {
                user: "Administrateur".into(),
            },
        ))
        .await
        .unwrap();
    stack.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("net-entreprises identity verified"),
        "the logs were captured"
    );
    for (what, secret) in [
        ("Net-entreprises password", ne_password),
        ("administrator password", admin_password.as_str()),
        ("session token", token.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}
