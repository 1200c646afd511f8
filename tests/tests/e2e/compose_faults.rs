//! Faults only a composed stack can have: a container stopped and started again, a
//! paused mock, a mock cut off from the network (also while a DSN deposit is in flight).
//! The orchestrator is never restarted and nothing is lost. Run by
//! `docker/compose-e2e.sh` (`--ignored`), against the stack it started.

use std::time::Duration;

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::{
    DsnDeposit, GetDsnDepositRequest, Indicator, SetDepositAccountRequest, VerificationOutcome,
};

use crate::helpers::{TestStack, authed, compose_cmd, docker, wait_for};
use crate::scenarios::{ADMIN, connected, reauthenticate, set_credentials, verify};

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
    set_credentials(&stack, &token, DUPONT.password)
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
    set_credentials(&stack, &token, DUPONT.password)
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

const SIRET: &str = DUPONT.siret;

/// A DSN of `SIRET` for `month` of `year`.
fn dsn(year: i32, month: u8) -> Vec<u8> {
    let mut spec = iea_dsn::SampleSpec::new(SIRET, iea_dsn::Month::new(year, month).unwrap(), 3);
    spec.seed = (u64::from(month) << 32) | u64::from(year.unsigned_abs());
    iea_dsn::sample(&spec)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits (at most `within`) until deposit `id` satisfies `pred`; the deposit then.
async fn deposit_until(
    deposits: &DepositsClient<tonic::transport::Channel>,
    token: &str,
    id: i64,
    within: Duration,
    pred: impl Fn(&DsnDeposit) -> bool,
) -> DsnDeposit {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let d = deposits
            .clone()
            .get_deposit(authed(token, GetDsnDepositRequest { id }))
            .await
            .unwrap()
            .into_inner();
        if pred(&d) {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deposit {id} did not reach the condition within {within:?}; last: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Net-entreprises mock is cut off the network while it holds a deposit (its `slow`
/// fault keeps the answer back), then reconnected: the answer is lost, the deposit is
/// uncertain, the listing made once the mock is back settles it, and the mock holds it
/// once.
#[tokio::test]
#[ignore = "needs the composed stack: docker/compose-e2e.sh runs it"]
async fn the_net_entreprises_mock_cut_off_during_a_deposit_then_back_holds_it_once() {
    let stack = TestStack::start().await;
    let orchestrator = container(&stack, "orchestrator");
    let since = started_at(&orchestrator);
    let token = stack.login_admin().await;
    set_credentials(&stack, &token, DUPONT.password)
        .await
        .unwrap();
    let ne_admin = stack.mock("net-entreprises");
    ne_admin.faults(serde_json::json!({})).await;
    let mut deposits = DepositsClient::new(stack.channel().await);
    deposits
        .set_deposit_account(authed(
            &token,
            SetDepositAccountRequest {
                siret: SIRET.into(),
                user: ADMIN.into(),
            },
        ))
        .await
        .unwrap();
    // Declarations of their own (one accepted already would be refused), from the time,
    // so that the test can run again on the same stack: two months of a year from 1900 to
    // 2019 (a month that has not begun yet would be refused), another pair each minute for
    // 12 hours.
    let minutes = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let slot = (minutes % 720) as i32;
    let (year, month) = (1900 + slot / 6, 2 * (slot % 6) as u8 + 1);

    // A first deposit: the agent authenticates and keeps the token, so that the next one
    // leaves at once.
    let first = crate::deposits::upload(&mut deposits, &token, &dsn(year, month), "")
        .await
        .unwrap();
    let first = deposit_until(&deposits, &token, first.id, Duration::from_secs(60), |d| {
        d.settled
    })
    .await;
    assert_eq!(first.state, "accepted", "{first:#?}");

    // The mock keeps its answers back for 4 s; the deposit is cut off while it waits.
    ne_admin
        .faults(serde_json::json!({"mode": "slow", "delay_ms": 4000}))
        .await;
    let file = dsn(year, month + 1);
    let d = crate::deposits::upload(&mut deposits, &token, &file, "")
        .await
        .unwrap();
    deposit_until(&deposits, &token, d.id, Duration::from_secs(30), |d| {
        d.state == "sending"
    })
    .await;
    let ne = container(&stack, "net-entreprises");
    let network = format!("{}_default", stack.compose().unwrap().project);
    docker(&["network", "disconnect", &network, &ne]);
    // No answer can come back: the agent gives up after its request's timeout.
    let cut = deposit_until(&deposits, &token, d.id, Duration::from_secs(60), |d| {
        d.state != "sending"
    })
    .await;
    docker(&[
        "network",
        "connect",
        "--alias",
        "net-entreprises",
        &network,
        &ne,
    ]);
    ne_admin.faults(serde_json::json!({})).await;
    assert_eq!(
        cut.state, "uncertain",
        "the answer was lost in flight: {cut:#?}"
    );

    // Settled by the listing once the mock answers again (the orchestrator retries a
    // failed listing after its retry delay, 30 s by default).
    let d = deposit_until(&deposits, &token, d.id, Duration::from_secs(180), |d| {
        d.settled
    })
    .await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    let registered = ne_admin.get("/deposits").await;
    let ours: Vec<_> = registered
        .as_array()
        .expect("an array of deposits")
        .iter()
        .filter(|r| r["sha256"] == sha256_hex(&file).as_str())
        .collect();
    assert_eq!(ours.len(), 1, "the mock holds the deposit once: {ours:#?}");
    assert_eq!(ours[0]["idflux"], d.idflux.as_str());
    assert_eq!(
        started_at(&orchestrator),
        since,
        "the orchestrator was not restarted"
    );
}
