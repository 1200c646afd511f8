//! Updates end to end: orchestrator → update client → update mock (a signed TUF
//! repository), from 3.00.70 to 3.00.72.

use iea_mock_updates::fixtures::{FIRST, LATEST};
use iea_proto::error::ApiError;
use iea_proto::v1::UpdatePhase;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::updates_client::UpdatesClient;
use iea_proto::v1::*;
use tokio_stream::StreamExt;

use crate::helpers::{TestStack, authed};

async fn apply(
    updates: &mut UpdatesClient<tonic::transport::Channel>,
    token: &str,
) -> Vec<iea_proto::v1::UpdateProgress> {
    let mut stream = updates
        .apply_update(authed(token, ApplyUpdateRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(p) = stream.next().await {
        events.push(p.unwrap());
    }
    events
}

#[tokio::test]
async fn from_3_00_70_to_3_00_72_with_its_release_notes() {
    let stack = TestStack::start().await;
    let token = stack.login_admin().await;
    let mut updates = UpdatesClient::new(stack.channel().await);

    let check = updates
        .check_updates(authed(&token, CheckUpdatesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.installed_version, FIRST);
    let versions: Vec<_> = check.available.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions, [LATEST]);
    assert!(check.available[0].notes_available);
    let status = StatusClient::new(stack.channel().await)
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.update_available, LATEST,
        "the status says an update is available"
    );

    let notes = updates
        .get_release_notes(authed(&token, GetReleaseNotesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(notes.version, LATEST);
    assert!(
        notes.text.contains("Mise à jour technique"),
        "{}",
        notes.text
    );

    let events = apply(&mut updates, &token).await;
    let last = events.last().unwrap();
    assert_eq!(last.phase, UpdatePhase::Done as i32, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|p| p.phase == UpdatePhase::Download as i32 && p.bytes_total > 0),
        "progress is reported"
    );

    let check = updates
        .check_updates(authed(&token, CheckUpdatesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.installed_version, LATEST);
    assert!(check.available.is_empty());
    let status = StatusClient::new(stack.channel().await)
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.software_version, LATEST,
        "the orchestrator now reports the new version"
    );
    assert_eq!(status.update_available, "");
    let current = std::fs::read_link(stack.dir.path().join("impact-emploi/current"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        current.contains(LATEST),
        "the current version is switched: {current}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_new_version_is_shown_everywhere_at_once_and_authenticated_with_next() {
    let stack = TestStack::start().await;
    let token = stack.login_admin().await;
    let auth = &stack.mock("impact-emploi-auth");
    let mut status = StatusClient::new(stack.channel().await);
    // Authenticated once with the first release (at start).
    crate::helpers::eventually(|| async move {
        auth.last_software_version().await.as_deref() == Some(FIRST)
    })
    .await;
    let mut updates = UpdatesClient::new(stack.channel().await);
    let events = apply(&mut updates, &token).await;
    assert_eq!(events.last().unwrap().phase, UpdatePhase::Done as i32);

    // At once, without a check or an authentication in between.
    let report = status
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.software_version, LATEST);
    let mail = iea_proto::v1::support_client::SupportClient::new(stack.channel().await)
        .prepare_support_request(authed(&token, PrepareSupportRequestRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mail.subject, format!("Serveur de connexion {LATEST}"));

    // And the installation authenticates again, with the new version.
    crate::helpers::eventually(|| async move {
        auth.last_software_version().await.as_deref() == Some(LATEST)
    })
    .await;
    stack.stop().await;
}

#[tokio::test]
async fn in_assistance_the_scripts_wait_and_in_consultation_they_are_refused() {
    let stack = TestStack::start().await;
    let token = stack.login_admin().await;
    let mut updates = UpdatesClient::new(stack.channel().await);
    let mut status = StatusClient::new(stack.channel().await);
    status
        .activate_assistance(authed(&token, ActivateAssistanceRequest {}))
        .await
        .unwrap();
    let events = apply(&mut updates, &token).await;
    assert_eq!(
        events.last().unwrap().phase,
        UpdatePhase::Done as i32,
        "{events:#?}"
    );
    let scripts = updates
        .list_pending_scripts(authed(&token, ListPendingScriptsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .scripts;
    assert!(!scripts.is_empty(), "{LATEST}'s scripts are there");
    assert!(
        scripts
            .iter()
            .all(|s| s.state == iea_proto::v1::ScriptState::Pending as i32),
        "{scripts:#?}"
    );

    // Licence withdrawn: reading works, applying the scripts is refused.
    stack.set_licence("withdrawn").await;
    let today = stack.daily_password(None, None).await;
    status
        .deactivate_assistance(authed(
            &token,
            DeactivateAssistanceRequest {
                daily_password: today,
            },
        ))
        .await
        .unwrap();
    let r = status
        .reauthenticate(authed(&token, ReauthenticateRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.indicator, Indicator::Consultation as i32, "{r:?}");
    let e = ApiError::from(
        updates
            .apply_pending_scripts(authed(&token, ApplyPendingScriptsRequest {}))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "consultation_mode");

    // Licence restored: the scripts are applied, once, in order.
    stack.set_licence("active").await;
    status
        .reauthenticate(authed(&token, ReauthenticateRequest {}))
        .await
        .unwrap();
    let applied = updates
        .apply_pending_scripts(authed(&token, ApplyPendingScriptsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .applied;
    assert_eq!(applied.len(), scripts.len(), "{applied:#?}");
    let again = updates
        .apply_pending_scripts(authed(&token, ApplyPendingScriptsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .applied;
    assert!(again.is_empty(), "a script runs once");
    stack.stop().await;
}
