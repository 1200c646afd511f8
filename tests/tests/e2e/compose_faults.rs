//! Faults only a composed stack can have: a container stopped and started again, a
//! paused mock, a mock cut off from the network. The orchestrator is never restarted and
//! nothing is lost. Run by `docker/compose-e2e.sh` (`--ignored`), against the stack it
//! started.

use iea_proto::v1::Indicator;
use iea_proto::v1::VerificationOutcome;

use crate::helpers::{TestStack, compose_cmd, docker, wait_for};
use crate::scenarios::{connected, reauthenticate, set_credentials, verify};

fn container(stack: &TestStack, service: &str) -> String {
    let project = &stack.compose().expect("a composed stack").project;
    String::from_utf8(compose_cmd(project, &["ps", "-q", service]))
        .unwrap()
        .trim()
        .to_owned()
}

fn started_at(id: &str) -> String {
    docker(&["inspect", "-f", "{{.State.StartedAt}}", id])
}

#[tokio::test]
#[ignore = "needs the composed stack: docker/compose-e2e.sh runs it"]
async fn an_agent_container_stopped_and_started_in_the_middle_of_a_flow() {
    let mut stack = TestStack::start().await;
    let orchestrator = container(&stack, "orchestrator");
    let since = started_at(&orchestrator);
    connected(&stack).await;
    let token = stack.login_admin().await;
    set_credentials(&stack, &token, "Jardin#Partage2024")
        .await
        .unwrap();

    stack.stop_agent("credential-verifier").await;
    let e = verify(&stack, &token).await.unwrap_err();
    assert_eq!(e.code, "agent_unavailable", "{e:?}");
    stack.start_agent("credential-verifier").await;
    let mut outcome = None;
    for _ in 0..200 {
        match verify(&stack, &token).await {
            Ok(o) => {
                outcome = Some(o);
                break;
            }
            Err(e) => {
                assert_eq!(e.code, "agent_unavailable", "{e:?}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(
        outcome,
        Some(VerificationOutcome::Valid),
        "the stored credentials survived"
    );

    let mut watch = stack.watch().await;
    stack.stop_agent("auth-client").await;
    assert_eq!(
        reauthenticate(&stack, &token).await.reason_code,
        "agent_unavailable"
    );
    stack.start_agent("auth-client").await;
    wait_for(&mut watch, |r| {
        r.indicator == Indicator::Connected as i32 && r.reason_code == "authorized"
    })
    .await;
    assert_eq!(
        started_at(&orchestrator),
        since,
        "the orchestrator was not restarted"
    );
}

#[tokio::test]
#[ignore = "needs the composed stack: docker/compose-e2e.sh runs it"]
async fn a_paused_net_entreprises_mock_times_out_then_answers_again() {
    let stack = TestStack::start().await;
    let token = stack.login_admin().await;
    set_credentials(&stack, &token, "Jardin#Partage2024")
        .await
        .unwrap();
    let ne = container(&stack, "net-entreprises");
    docker(&["pause", &ne]);
    let paused = verify(&stack, &token).await;
    docker(&["unpause", &ne]);
    assert_eq!(
        paused.unwrap(),
        VerificationOutcome::Unavailable,
        "the timeout path"
    );
    assert_eq!(
        verify(&stack, &token).await.unwrap(),
        VerificationOutcome::Valid
    );
}

#[tokio::test]
#[ignore = "needs the composed stack: docker/compose-e2e.sh runs it"]
async fn the_auth_mock_cut_off_from_the_network_turns_the_status_red_then_blue_again() {
    let stack = TestStack::start().await;
    let orchestrator = container(&stack, "orchestrator");
    let since = started_at(&orchestrator);
    connected(&stack).await;
    let token = stack.login_admin().await;
    let auth = container(&stack, "impact-emploi-auth");
    let network = format!("{}_default", stack.compose().unwrap().project);
    docker(&["network", "disconnect", &network, &auth]);
    let red = reauthenticate(&stack, &token).await;
    docker(&[
        "network",
        "connect",
        "--alias",
        "impact-emploi-auth",
        &network,
        &auth,
    ]);
    assert_eq!(
        (red.indicator, red.reason_code.as_str()),
        (Indicator::Disconnected as i32, "auth_unreachable"),
        "{red:?}"
    );
    let mut watch = stack.watch().await;
    let blue = reauthenticate(&stack, &token).await;
    if blue.indicator != Indicator::Connected as i32 {
        wait_for(&mut watch, |r| r.indicator == Indicator::Connected as i32).await;
    }
    assert_eq!(
        started_at(&orchestrator),
        since,
        "the orchestrator was not restarted"
    );
}
