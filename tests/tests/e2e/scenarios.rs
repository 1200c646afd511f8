//! The scenarios every deployment must pass: run on a fresh embedded stack each, or, with
//! `IEA_E2E_COMPOSE_DATA` set, one after the other on the composed stack
//! (`docker/compose-e2e.sh`). Each leaves the stack as it found it.

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_mock_updates::fixtures::{FIRST, LATEST};
use iea_proto::error::ApiError;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::updates_client::UpdatesClient;
use iea_proto::v1::*;
use iea_proto::v1::{NetEntreprisesIdentity, UpdatePhase, VerificationOutcome};
use tokio_stream::StreamExt;

use crate::helpers::{TestStack, authed, wait_for};

pub const ADMIN: &str = "Administrateur";

pub fn identity(password: &str) -> NetEntreprisesIdentity {
    NetEntreprisesIdentity {
        siret: DUPONT.siret.into(),
        nom: DUPONT.nom.into(),
        prenom: DUPONT.prenom.into(),
        password: password.into(),
    }
}

pub async fn set_credentials(
    stack: &TestStack,
    token: &str,
    password: &str,
) -> Result<CredentialSummary, ApiError> {
    CredentialsClient::new(stack.channel().await)
        .set_credentials(authed(
            token,
            SetCredentialsRequest {
                user: ADMIN.into(),
                account_password: stack.admin_password(),
                identity: Some(identity(password)),
            },
        ))
        .await
        .map(|r| r.into_inner())
        .map_err(ApiError::from)
}

pub async fn verify(stack: &TestStack, token: &str) -> Result<VerificationOutcome, ApiError> {
    CredentialsClient::new(stack.channel().await)
        .verify_credentials(authed(
            token,
            VerifyCredentialsRequest { user: ADMIN.into() },
        ))
        .await
        .map(|r| VerificationOutcome::try_from(r.into_inner().result.unwrap().outcome).unwrap())
        .map_err(ApiError::from)
}

pub async fn reauthenticate(stack: &TestStack, token: &str) -> StatusReport {
    StatusClient::new(stack.channel().await)
        .reauthenticate(authed(token, ReauthenticateRequest {}))
        .await
        .unwrap()
        .into_inner()
}

/// Waits for the blue ball.
pub async fn connected(stack: &TestStack) {
    let mut watch = stack.watch().await;
    wait_for(&mut watch, |r| r.indicator == Indicator::Connected as i32).await;
}

#[tokio::test]
async fn scenario_the_installation_is_connected() {
    let stack = TestStack::start().await;
    connected(&stack).await;
    let r = StatusClient::new(stack.channel().await)
        .get_status(GetStatusRequest {
            include_agents: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.agents.iter().all(|a| a.healthy), "{r:#?}");
    stack.stop().await;
}

#[tokio::test]
async fn scenario_wrong_net_entreprises_credentials_then_corrected() {
    let stack = TestStack::start().await;
    let token = stack.login_admin().await;
    set_credentials(&stack, &token, "Pas-le-bon").await.unwrap();
    assert_eq!(
        verify(&stack, &token).await.unwrap(),
        VerificationOutcome::InvalidCredentials
    );
    set_credentials(&stack, &token, DUPONT.password)
        .await
        .unwrap();
    assert_eq!(
        verify(&stack, &token).await.unwrap(),
        VerificationOutcome::Valid
    );
    stack.stop().await;
}

#[tokio::test]
async fn scenario_a_withdrawn_licence_gives_consultation_until_restored() {
    let stack = TestStack::start().await;
    connected(&stack).await;
    let token = stack.login_admin().await;
    stack.set_licence("withdrawn").await;
    let r = reauthenticate(&stack, &token).await;
    assert_eq!(r.indicator, Indicator::Consultation as i32, "{r:?}");
    let e = set_credentials(&stack, &token, DUPONT.password)
        .await
        .unwrap_err();
    assert_eq!(e.code, "consultation_mode");
    stack.set_licence("active").await;
    assert_eq!(
        reauthenticate(&stack, &token).await.indicator,
        Indicator::Connected as i32
    );
    stack.stop().await;
}

#[tokio::test]
async fn scenario_a_refused_installation_is_disconnected_until_authorised() {
    let stack = TestStack::start().await;
    connected(&stack).await;
    let token = stack.login_admin().await;
    stack.set_licence("refused").await;
    let r = reauthenticate(&stack, &token).await;
    assert_eq!(
        (r.indicator, r.reason_code.as_str()),
        (Indicator::Disconnected as i32, "auth_refused"),
        "{r:?}"
    );
    stack.set_licence("active").await;
    assert_eq!(
        reauthenticate(&stack, &token).await.indicator,
        Indicator::Connected as i32
    );
    stack.stop().await;
}

#[tokio::test]
async fn scenario_assistance_on_and_off_with_the_daily_password() {
    let stack = TestStack::start().await;
    connected(&stack).await;
    let token = stack.login_admin().await;
    let mut status = StatusClient::new(stack.channel().await);
    let on = status
        .activate_assistance(authed(&token, ActivateAssistanceRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(on.status.unwrap().indicator, Indicator::Assistance as i32);
    let code = stack.daily_password(None, None).await;
    status
        .deactivate_assistance(authed(
            &token,
            DeactivateAssistanceRequest {
                daily_password: code,
            },
        ))
        .await
        .unwrap();
    connected(&stack).await;
    stack.stop().await;
}

#[tokio::test]
async fn scenario_update_from_3_00_70_to_3_00_72() {
    let stack = TestStack::start().await;
    let token = stack.login_admin().await;
    let mut updates = UpdatesClient::new(stack.channel().await);
    let check = updates
        .check_updates(authed(&token, CheckUpdatesRequest {}))
        .await
        .unwrap()
        .into_inner();
    if check.installed_version == FIRST {
        let mut stream = updates
            .apply_update(authed(
                &token,
                ApplyUpdateRequest {
                    version: LATEST.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let mut last = None;
        while let Some(p) = stream.next().await {
            last = Some(p.unwrap());
        }
        assert_eq!(last.unwrap().phase, UpdatePhase::Done as i32);
    }
    let check = updates
        .check_updates(authed(&token, CheckUpdatesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.installed_version, LATEST);
    assert!(check.available.is_empty());
    stack.stop().await;
}
