//! The embedded stack as a front-end sees it.

use std::time::{Duration, Instant};

use iea_proto::error::ApiError;
use iea_proto::v1::sessions_client::SessionsClient;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::{GetStatusRequest, LoginRequest, WhoAmIRequest};

use crate::helpers::{TestStack, authed};

#[tokio::test]
async fn the_orchestrator_and_the_four_agents_are_healthy_within_five_seconds_of_start() {
    let started = Instant::now();
    let stack = TestStack::start().await;
    let report = StatusClient::new(stack.channel().await)
        .get_status(GetStatusRequest {
            include_agents: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let names: Vec<_> = report.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "auth-client",
            "update-client",
            "credential-verifier",
            "deposit-agent"
        ]
    );
    for a in &report.agents {
        assert!(a.healthy, "{a:?}");
        // Each agent says its version, the orchestrator's: nothing to report.
        assert_eq!(a.version, report.orchestrator_version, "{a:?}");
        assert!(!a.version_mismatch && a.message.is_empty(), "{a:?}");
    }
    assert_eq!(report.orchestrator_version, iea_runtime::grpc::VERSION);
    assert!(report.installation_id.starts_with("IEA-"), "{report:?}");
    stack.stop().await;
}

#[tokio::test]
async fn calls_without_a_valid_session_are_refused_and_a_login_opens_one() {
    let stack = TestStack::start().await;
    let mut sessions = SessionsClient::new(stack.channel().await);
    let err = sessions.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(ApiError::from_status(&err).code, "unauthenticated");
    let err = sessions
        .who_am_i(authed("not-a-token", WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(ApiError::from_status(&err).code, "unauthenticated");

    let wrong = sessions
        .login(LoginRequest {
            user: "Administrateur".into(),
            password: "pas le bon".into(),
        })
        .await
        .unwrap_err();
    let e = ApiError::from_status(&wrong);
    assert_eq!(e.code, "invalid_credentials");
    assert!(e.message.contains("incorrect"), "{e:?}");

    let token = stack.login_admin().await;
    let me = sessions
        .who_am_i(authed(&token, WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.name, "Administrateur");
    stack.stop().await;
}

#[tokio::test]
async fn the_data_directory_keeps_secrets_private_and_survives_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let stack = TestStack::start().await;
    let dir = stack.dir.path().to_owned();
    // The SQLite database, or the file naming the PostgreSQL one (its URL may hold a
    // password).
    let database = if dir.join("database-url").exists() {
        "database-url"
    } else {
        "iea.db"
    };
    for f in [
        "admin-password",
        "stack.json",
        database,
        "certs/ca.key",
        "certs/orchestrator.key",
        "certs/mocks.key",
    ] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let password = stack.admin_password();
    let installation = StatusClient::new(stack.channel().await)
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner()
        .installation_id;

    let stack = stack.restart().await;
    assert_eq!(
        stack.admin_password(),
        password,
        "the first password is not replaced"
    );
    let report = StatusClient::new(stack.channel().await)
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.installation_id, installation);
    stack.login_admin().await;
    stack.stop().await;
}
