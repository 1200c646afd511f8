//! The status indicator end to end: orchestrator → auth client → auth mock, each case of
//! the seeds, the watch stream, agent restarts, assistance mode.

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_mock_updates::fixtures::FIRST;
use iea_proto::error::ApiError;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::*;
use reqwest::Method;
use serde_json::json;
use tonic::transport::Channel;

use crate::helpers::{TestStack, authed, wait_for};

fn is(i: Indicator) -> impl Fn(&StatusReport) -> bool {
    move |r| r.indicator == i as i32
}

struct Ctx {
    stack: TestStack,
    token: String,
    status: StatusClient<Channel>,
}

/// A stack that retries quickly after a failure, connected once started.
async fn connected() -> Ctx {
    let stack = TestStack::start_with(|s| {
        s.auth.retry_initial_ms = 100;
        s.auth.retry_max_secs = 1;
    })
    .await;
    let mut watch = stack.watch().await;
    wait_for(&mut watch, is(Indicator::Connected)).await;
    let token = stack.login_admin().await;
    let status = StatusClient::new(stack.channel().await);
    Ctx {
        stack,
        token,
        status,
    }
}

impl Ctx {
    async fn reauthenticate(&mut self) -> StatusReport {
        self.status
            .reauthenticate(authed(&self.token, ReauthenticateRequest {}))
            .await
            .unwrap()
            .into_inner()
    }
}

#[tokio::test]
async fn an_authorised_installation_is_connected() {
    let mut c = connected().await;
    let r = c.reauthenticate().await;
    assert_eq!(r.indicator, Indicator::Connected as i32, "{r:?}");
    assert_eq!(r.reason_code, "authorized");
    assert!(r.reason.contains("Association de démonstration"), "{r:?}");
    assert!(r.since.is_some());
    c.stack.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_turns_the_status_red_and_names_the_failing_step() {
    let mut c = connected().await;
    c.stack
        .mock("impact-emploi-auth")
        .faults(json!({"mode": "unavailable"}))
        .await;
    let r = c.reauthenticate().await;
    assert_eq!(r.indicator, Indicator::Disconnected as i32, "{r:?}");
    assert_eq!(r.reason_code, "auth_unreachable");
    assert!(
        r.reason.contains("503"),
        "the HTTP step and status are named: {}",
        r.reason
    );

    c.stack
        .mock("impact-emploi-auth")
        .faults(json!({"mode": "none", "close_default_port": true}))
        .await;
    let r = c.reauthenticate().await;
    assert_eq!(r.reason_code, "auth_unreachable");
    assert!(
        r.reason.contains("refuse la connexion"),
        "the connect step is named: {}",
        r.reason
    );
    c.stack.stop().await;
}

#[tokio::test]
async fn a_refused_installation_is_disconnected_with_the_servers_words() {
    let mut c = connected().await;
    c.stack.set_licence("refused").await;
    let r = c.reauthenticate().await;
    assert_eq!(r.indicator, Indicator::Disconnected as i32, "{r:?}");
    assert_eq!(r.reason_code, "auth_refused");
    assert!(r.reason.contains("Autorisation refusée"), "{}", r.reason);
    c.stack.stop().await;
}

#[tokio::test]
async fn a_withdrawn_licence_allows_reading_and_refuses_credential_changes() {
    let mut c = connected().await;
    c.stack.set_licence("withdrawn").await;
    let r = c.reauthenticate().await;
    assert_eq!(r.indicator, Indicator::Consultation as i32, "{r:?}");
    assert!(r.reason.contains("consultation"), "{}", r.reason);

    let mut creds = CredentialsClient::new(c.stack.channel().await);
    let e = creds
        .set_credentials(authed(
            &c.token,
            SetCredentialsRequest {
                user: "Administrateur".into(),
                account_password: c.stack.admin_password(),
                identity: Some(iea_proto::v1::NetEntreprisesIdentity {
                    siret: DUPONT.siret.into(),
                    nom: DUPONT.nom.into(),
                    prenom: DUPONT.prenom.into(),
                    password: DUPONT.password.into(),
                }),
            },
        ))
        .await
        .unwrap_err();
    let e = ApiError::from(e);
    assert_eq!(e.code, "consultation_mode");
    assert!(e.message.contains("consultation"), "{e:?}");
    // Reading still works.
    creds
        .list_credentials(authed(&c.token, ListCredentialsRequest {}))
        .await
        .expect("reading is allowed in consultation");

    // The server restores the licence: connected again.
    c.stack.set_licence("active").await;
    assert_eq!(
        c.reauthenticate().await.indicator,
        Indicator::Connected as i32
    );
    c.stack.stop().await;
}

#[tokio::test]
async fn a_version_below_the_servers_minimum_requires_an_update() {
    let mut c = connected().await;
    c.stack
        .mock("impact-emploi-auth")
        .send(
            Method::PUT,
            "/minimum-version",
            json!({"minimum_version": "3.02.004"}),
        )
        .await;
    let r = c.reauthenticate().await;
    assert_eq!(r.indicator, Indicator::Disconnected as i32, "{r:?}");
    assert_eq!(r.reason_code, "update_required");
    assert!(r.update_required);
    assert_eq!(r.update_available, "3.02.004");
    assert!(
        r.reason.contains("3.02.004") && r.reason.contains(FIRST),
        "{}",
        r.reason
    );
    c.stack.stop().await;
}

#[tokio::test]
async fn a_watcher_receives_every_transition_in_order() {
    let mut c = connected().await;
    let mut watch = c.stack.watch().await;
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(
        first.indicator,
        Indicator::Connected as i32,
        "the current state comes first"
    );
    c.stack.set_licence("refused").await;
    c.reauthenticate().await;
    c.stack.set_licence("withdrawn").await;
    c.reauthenticate().await;
    c.stack.set_licence("active").await;
    c.reauthenticate().await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(watch.message().await.unwrap().unwrap().reason_code);
    }
    assert_eq!(codes, ["auth_refused", "licence_withdrawn", "authorized"]);
    c.stack.stop().await;
}

#[tokio::test]
async fn watchers_stay_connected_while_the_auth_agent_dies_and_comes_back() {
    let mut c = connected().await;
    let mut w1 = c.stack.watch().await;
    let mut w2 = c.stack.watch().await;
    for w in [&mut w1, &mut w2] {
        let first = w.message().await.unwrap().unwrap();
        assert_eq!(first.reason_code, "authorized");
    }
    c.stack.stop_agent("auth-client").await;
    let r = c.reauthenticate().await;
    assert_eq!(r.reason_code, "agent_unavailable", "{r:?}");
    c.stack.start_agent("auth-client").await;
    for w in [&mut w1, &mut w2] {
        let seen = wait_for(w, |r| {
            r.reason_code == "authorized" && r.indicator == Indicator::Connected as i32
        })
        .await;
        assert!(
            seen.iter().any(|r| r.reason_code == "agent_unavailable"),
            "the watcher saw the agent go: {seen:#?}"
        );
    }
    c.stack.stop().await;
}

fn paris_day(offset_days: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(offset_days);
    iea_daily_password::format_date(iea_daily_password::paris_date(at))
}

#[tokio::test]
async fn assistance_mode_cuts_the_production_server_off_and_ends_only_with_todays_password() {
    let mut c = connected().await;
    let auth = c.stack.mock("impact-emploi-auth");
    let id = c.stack.file().installation_id.clone();

    let on = c
        .status
        .activate_assistance(authed(&c.token, ActivateAssistanceRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        on.warning,
        "En mode assistance, les fichiers de scripts ne seront pas pris en compte automatiquement !"
    );
    assert_eq!(on.status.unwrap().indicator, Indicator::Assistance as i32);
    let before = auth.auth_requests().await;

    // No re-authentication while in assistance, on demand or by the schedule.
    let e = ApiError::from(
        c.status
            .reauthenticate(authed(&c.token, ReauthenticateRequest {}))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "assistance_active");

    // Another installation's password (registered with a secret of its own), yesterday's, a wrong one.
    auth.post(
        "/installations",
        json!({"installation_id": "IEA-AUTRE", "licence_key": "k", "secret": "c2VjcmV0LWRlLWwtYXV0cmUtaW5zdGFsbGF0aW9u"}),
    )
    .await;
    let others = c.stack.daily_password(Some("IEA-AUTRE"), None).await;
    let yesterday = c
        .stack
        .daily_password(Some(&id), Some(&paris_day(-1)))
        .await;
    let today = c.stack.daily_password(Some(&id), Some(&paris_day(0))).await;
    assert_ne!(yesterday, today);
    let off = |code: String| {
        let mut status = c.status.clone();
        let token = c.token.clone();
        async move {
            status
                .deactivate_assistance(authed(
                    &token,
                    DeactivateAssistanceRequest {
                        daily_password: code,
                    },
                ))
                .await
                .map(|r| r.into_inner())
                .map_err(ApiError::from)
        }
    };
    for wrong in [
        others,
        yesterday,
        "ABCDEFGHJK".to_owned(),
        "0000000000".to_owned(),
    ] {
        assert_eq!(off(wrong).await.unwrap_err().code, "wrong_daily_password");
    }
    assert_eq!(
        off("1111111111".into()).await.unwrap_err().code,
        "daily_password_locked",
        "the fifth wrong try locks"
    );
    let e = off(today).await.unwrap_err();
    assert_eq!(
        e.code, "daily_password_locked",
        "the sixth try is locked out even with the right password"
    );
    assert!(
        e.message.contains("15 minutes") || e.message.contains("bloquée"),
        "{e:?}"
    );

    assert_eq!(
        auth.auth_requests().await,
        before,
        "no request reached the authentication server"
    );
    let r = c
        .status
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.indicator, Indicator::Assistance as i32);
    c.stack.stop().await;
}

#[tokio::test]
async fn todays_password_ends_assistance_and_the_installation_authenticates_at_once() {
    let mut c = connected().await;
    let id = c.stack.file().installation_id.clone();
    c.status
        .activate_assistance(authed(&c.token, ActivateAssistanceRequest {}))
        .await
        .unwrap();
    // Assistance survives a restart of the whole stack.
    let stack = c.stack.restart().await;
    let token = stack.login_admin().await;
    let mut status = StatusClient::new(stack.channel().await);
    let r = status
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.indicator, Indicator::Assistance as i32, "{r:?}");
    // The restarted mock has counted nothing: the start-up authentication was skipped.
    assert_eq!(stack.mock("impact-emploi-auth").auth_requests().await, 0);

    let mut watch = stack.watch().await;
    let today = stack.daily_password(Some(&id), None).await;
    let r = status
        .deactivate_assistance(authed(
            &token,
            DeactivateAssistanceRequest {
                daily_password: today,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.indicator, Indicator::Disconnected as i32);
    assert_eq!(r.reason_code, "assistance_ended");
    wait_for(&mut watch, is(Indicator::Connected)).await;
    stack.stop().await;
}
