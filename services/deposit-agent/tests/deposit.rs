//! The deposit agent and the Net-entreprises mock, both real and in process: the agent is
//! called over mutual TLS with the generated client, as the orchestrator will call it,
//! and reaches the mock over HTTPS, trusting the mocks' test CA.

use std::time::Duration;

use iea_mock_kit::FaultMode;
use iea_mock_net_entreprises as mock;
use iea_proto::agent::v1::{
    DepositChunk, DepositResponse, ListDepositsRequest, ListingFailure, VerifyOutcome,
    deposit_response, list_deposits_response,
};
use iea_proto::common::v1::{ProbeRequest, ProbeStep, TlsProblem};
use iea_runtime::pki::CertificateAuthority;
use world::*;

mod world;

fn outcome(r: &DepositResponse) -> &deposit_response::Outcome {
    r.outcome.as_ref().expect("an outcome")
}

#[tokio::test]
async fn an_accepted_deposit_carries_the_mocks_idflux_and_the_bytes_arrive_identical() {
    let world = World::start(|_| {}).await;
    let file = dsn(10);
    let r = world.deposit(DUPONT, &file).await;
    let deposit_response::Outcome::Accepted(a) = outcome(&r) else {
        panic!("accepted: {r:?}")
    };
    let registered = world.mock.deposits_list().await;
    assert_eq!(registered.len(), 1);
    assert_eq!(a.idflux, registered[0].idflux);
    assert_eq!(a.idflux.len(), 23);
    assert_eq!(a.essai_reel, "01");
    assert!(!a.date_enregistrement.is_empty() && !a.heure_enregistrement.is_empty());
    assert_eq!(registered[0].sha256, sha256_hex(&file));
    assert_eq!(registered[0].bytes, file.len() as u64);
    assert_eq!(r.http_status, 200);
    assert_eq!(r.bytes, file.len() as u64);
    assert!(r.compressed_bytes > 0 && r.compressed_bytes < r.bytes);
    assert!(r.message.contains(&a.idflux), "{}", r.message);
    assert!(!r.reauthenticated);
    assert_eq!(world.auth_requests(), 1);
    world.stop().await;
}

#[tokio::test]
async fn a_large_file_streamed_in_chunks_arrives_identical_and_the_token_is_reused() {
    // An unoptimised mock reads 27 MB slowly on a loaded machine: the mode's own timeout.
    let world = World::start_with(|_| {}, Duration::from_secs(30)).await;
    let file = dsn(200_000);
    assert!(file.len() > 20 << 20, "{}", file.len());
    let r = world
        .deposit_with(world.access(DUPONT, world.network()), &file, 256 * 1024)
        .await
        .unwrap();
    assert!(
        matches!(outcome(&r), deposit_response::Outcome::Accepted(_)),
        "{r:?}"
    );
    let registered = world.mock.deposits_list().await;
    assert_eq!(registered[0].sha256, sha256_hex(&file));
    assert_eq!(registered[0].bytes, file.len() as u64);
    let r = world.deposit(DUPONT, &dsn(3)).await;
    assert!(matches!(
        outcome(&r),
        deposit_response::Outcome::Accepted(_)
    ));
    assert_eq!(world.auth_requests(), 1, "one authentication for both");
    world.stop().await;
}

#[tokio::test]
async fn our_requests_meet_every_rule_the_kit_checks() {
    let world = World::start(|_| {}).await;
    for n in [1, 10, 100] {
        world.deposit(DUPONT, &dsn(n)).await;
    }
    let stats = world.deposit_path_stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.by_status.get(&200), Some(&3), "{stats:?}");
    for refused in [400, 406, 413, 415, 422] {
        assert!(!stats.by_status.contains_key(&refused), "{stats:?}");
    }
    world.stop().await;
}

#[tokio::test]
async fn a_rejection_gives_the_are_code_and_message() {
    let world = World::start(|_| {}).await;
    let r = world.deposit(DUPONT, b"not a DSN at all\n").await;
    let deposit_response::Outcome::Rejected(rej) = outcome(&r) else {
        panic!("rejected: {r:?}")
    };
    assert_eq!(rej.anomalies.len(), 1);
    assert_eq!(rej.anomalies[0].code, mock::NOT_A_DSN_CODE);
    assert_eq!(rej.anomalies[0].message, mock::NOT_A_DSN_MESSAGE);
    assert_eq!(r.http_status, 422);

    world
        .faults(serde_json::json!({"reject_deposits": {"code": "TST-42", "message": "Déclaration refusée pour l'essai."}}))
        .await;
    let r = world.deposit(DUPONT, &dsn(2)).await;
    let deposit_response::Outcome::Rejected(rej) = outcome(&r) else {
        panic!("rejected: {r:?}")
    };
    assert_eq!(rej.anomalies[0].code, "TST-42");
    assert_eq!(
        rej.anomalies[0].message,
        "Déclaration refusée pour l'essai."
    );
    assert!(
        r.message
            .contains("TST-42 — Déclaration refusée pour l'essai."),
        "{}",
        r.message
    );
    let registered = world.mock.deposits_list().await;
    assert_eq!(registered.len(), 2, "an ARE is registered as KO");
    assert_eq!(rej.idflux, registered[1].idflux);
    world.stop().await;
}

#[tokio::test]
async fn an_expired_token_gets_one_new_authentication_and_the_deposit_succeeds() {
    let world = World::start(|_| {}).await;
    let r = world.deposit(DUPONT, &dsn(1)).await;
    assert!(matches!(
        outcome(&r),
        deposit_response::Outcome::Accepted(_)
    ));
    assert_eq!(world.auth_requests(), 1);
    assert!(world.mock.expire_tokens(None) >= 1);
    let r = world.deposit(DUPONT, &dsn(2)).await;
    assert!(
        matches!(outcome(&r), deposit_response::Outcome::Accepted(_)),
        "{r:?}"
    );
    assert!(r.reauthenticated);
    assert_eq!(world.auth_requests(), 2, "exactly one new authentication");
    let stats = world.deposit_path_stats();
    assert_eq!(stats.by_status.get(&401), Some(&1));
    assert_eq!(world.mock.deposits_list().await.len(), 2);
    world.stop().await;
}

#[tokio::test]
async fn a_refused_authentication_sends_nothing_else_and_is_not_retried() {
    let world = World::start(|_| {}).await;
    let r = world.deposit(WRONG_PASSWORD, &dsn(1)).await;
    let deposit_response::Outcome::Authentication(a) = outcome(&r) else {
        panic!("authentication: {r:?}")
    };
    assert_eq!(
        VerifyOutcome::try_from(a.outcome).unwrap(),
        VerifyOutcome::InvalidCredentials
    );
    assert_eq!(r.http_status, 401);
    assert_eq!(world.auth_requests(), 1, "never retried");
    assert_eq!(world.deposit_requests(), 0, "nothing deposited");
    assert!(!format!("{r:?}").contains(WRONG_PASSWORD.password));

    let r = world
        .list(WRONG_PASSWORD, &world.mock_time(-30), &world.mock_time(0))
        .await;
    assert!(matches!(
        r.outcome,
        Some(list_deposits_response::Outcome::Authentication(_))
    ));
    assert_eq!(world.auth_requests(), 2);
    world.stop().await;
}

#[tokio::test]
async fn an_identity_with_a_problem_sends_nothing() {
    let world = World::start(|_| {}).await;
    let r = world
        .deposit(
            Account {
                siret: "78214563500011",
                password: "x",
                ..DUPONT
            },
            &dsn(1),
        )
        .await;
    let deposit_response::Outcome::Authentication(a) = outcome(&r) else {
        panic!("authentication: {r:?}")
    };
    assert_eq!(
        VerifyOutcome::try_from(a.outcome).unwrap(),
        VerifyOutcome::InvalidInput
    );
    assert_eq!(a.input_problems[0].field, "siret");
    assert_eq!(world.auth_requests() + world.deposit_requests(), 0);
    world.stop().await;
}

#[tokio::test]
async fn a_503_before_sending_is_not_sent_not_uncertain() {
    let world = World::start(|_| {}).await;
    world.deposit(DUPONT, &dsn(1)).await;
    world.kit_fault(FaultMode::Unavailable, 0);
    let r = world.deposit(DUPONT, &dsn(1)).await;
    let deposit_response::Outcome::NotSent(n) = outcome(&r) else {
        panic!("not sent: {r:?}")
    };
    assert_eq!(r.http_status, 503);
    assert_eq!(
        ProbeStep::try_from(n.probe.as_ref().unwrap().step).unwrap(),
        ProbeStep::Http
    );
    assert_eq!(
        world.mock.deposits_list().await.len(),
        1,
        "nothing registered"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_lost_answer_is_uncertain_and_never_sent_again() {
    let world = World::start(|_| {}).await;
    world.deposit(DUPONT, &dsn(1)).await;
    world.faults(serde_json::json!({"lost_answer": true})).await;
    let r = world.deposit(DUPONT, &dsn(2)).await;
    assert!(
        matches!(outcome(&r), deposit_response::Outcome::Uncertain(_)),
        "{r:?}"
    );
    assert_eq!(world.deposit_requests(), 2, "sent once, not again");
    assert_eq!(
        world.mock.deposits_list().await.len(),
        2,
        "it was registered"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_slow_answer_after_sending_is_uncertain() {
    let world = World::start(|_| {}).await;
    world.deposit(DUPONT, &dsn(1)).await;
    world.kit_fault(FaultMode::Slow, 4000);
    let started = std::time::Instant::now();
    let r = world.deposit(DUPONT, &dsn(2)).await;
    assert!(
        matches!(outcome(&r), deposit_response::Outcome::Uncertain(_)),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "the agent's timeout, not the mock's delay"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_server_certificate_not_from_the_trusted_ca_fails_at_the_tls_step() {
    let world = World::start(|_| {}).await;
    let mut network = world.network();
    network.extra_ca_pem = CertificateAuthority::new("not the mocks CA")
        .unwrap()
        .cert_pem()
        .to_owned();
    let r = world
        .deposit_with(world.access(DUPONT, network), &dsn(1), 1024)
        .await
        .unwrap();
    let deposit_response::Outcome::Authentication(a) = outcome(&r) else {
        panic!("authentication: {r:?}")
    };
    assert_eq!(
        VerifyOutcome::try_from(a.outcome).unwrap(),
        VerifyOutcome::Unavailable
    );
    let probe = a.probe.as_ref().unwrap();
    assert_eq!(ProbeStep::try_from(probe.step).unwrap(), ProbeStep::Tls);
    assert_eq!(
        TlsProblem::try_from(probe.tls_problem).unwrap(),
        TlsProblem::UnknownAuthority
    );
    assert_eq!(world.auth_requests() + world.deposit_requests(), 0);
    world.stop().await;
}

#[tokio::test]
async fn a_stream_that_does_not_match_its_announced_size_sends_nothing() {
    let world = World::start(|_| {}).await;
    let file = dsn(5);
    for total in [file.len() as u64 + 1, file.len() as u64 - 1, 0] {
        let messages = vec![
            announcement(
                world.access(DUPONT, world.network()),
                total,
                Turn::default(),
                Vec::new(),
            ),
            DepositChunk {
                data: file.clone(),
                ..Default::default()
            },
        ];
        let e = world.send(messages).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    }
    assert_eq!(world.deposit_requests(), 0);
    world.stop().await;
}

#[tokio::test]
async fn the_listing_gives_our_deposits_and_the_window_the_server_announced() {
    let world = World::start(|s| s.listing_window_minutes = 45).await;
    let r = world.deposit(DUPONT, &dsn(1)).await;
    let deposit_response::Outcome::Accepted(a) = outcome(&r) else {
        panic!("accepted: {r:?}")
    };
    let l = world
        .list(DUPONT, &world.mock_time(-30), &world.mock_time(1))
        .await;
    let Some(list_deposits_response::Outcome::Listing(listing)) = &l.outcome else {
        panic!("listing: {l:?}")
    };
    assert_eq!(listing.window_max_minutes, 45, "read, not assumed");
    assert_eq!(listing.deposits.len(), 1);
    assert_eq!(listing.deposits[0].idflux, a.idflux);
    assert_eq!(listing.deposits[0].statut, "OK");
    assert_eq!(listing.deposits[0].date.len(), 14);
    assert_eq!(l.message, "Net-entreprises liste 1 dépôt sur la période.");

    let l = world
        .list(DUPONT, &world.mock_time(-120), &world.mock_time(0))
        .await;
    let Some(list_deposits_response::Outcome::Failed(f)) = &l.outcome else {
        panic!("failed: {l:?}")
    };
    assert_eq!(
        ListingFailure::try_from(f.failure).unwrap(),
        ListingFailure::WindowTooWide
    );
    assert_eq!(l.http_status, 429);
    assert_eq!(
        world.auth_requests(),
        1,
        "the token is shared by both services"
    );

    let e = world
        .agent
        .clone()
        .list_deposits(ListDepositsRequest {
            access: Some(world.access(DUPONT, world.network())),
            debut: "2026-12-01".into(),
            fin: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    world.stop().await;
}

#[tokio::test]
async fn probe_reaches_the_mock() {
    let world = World::start(|_| {}).await;
    let r = world
        .agent
        .clone()
        .probe(ProbeRequest {
            network: Some(world.network()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.reachable, "{r:?}");
    world.stop().await;
}

#[tokio::test]
async fn one_authentication_at_a_time_per_identity_and_a_refusal_is_shared_not_resent() {
    let world = World::start(|_| {}).await;
    let (debut, fin) = (world.mock_time(-30), world.mock_time(0));
    // Six at once: six turns.
    let lists =
        futures::future::join_all((0..6).map(|_| world.list_with(WRONG_PASSWORD, &debut, &fin, 6)))
            .await;
    for l in &lists {
        assert!(
            matches!(
                l.outcome,
                Some(list_deposits_response::Outcome::Authentication(_))
            ),
            "{l:?}"
        );
    }
    assert_eq!(world.auth_requests(), 1, "six callers, one refused attempt");

    let lists =
        futures::future::join_all((0..6).map(|_| world.list_with(DUPONT, &debut, &fin, 6))).await;
    for l in &lists {
        assert!(
            matches!(l.outcome, Some(list_deposits_response::Outcome::Listing(_))),
            "{l:?}"
        );
    }
    assert_eq!(world.auth_requests(), 2, "six callers, one token");
    world.stop().await;
}

#[tokio::test]
async fn a_declarant_no_longer_registered_is_a_refusal_without_a_new_authentication() {
    let world = World::start(|_| {}).await;
    world.deposit(DUPONT, &dsn(1)).await;
    let id = world
        .mock
        .declarants_list()
        .into_iter()
        .find(|d| d.siret == DUPONT.siret)
        .unwrap()
        .id;
    world
        .admin(
            reqwest::Method::PATCH,
            &format!("/__admin/declarants/{id}"),
            serde_json::json!({"registered": false}),
        )
        .await;
    let r = world.deposit(DUPONT, &dsn(2)).await;
    let deposit_response::Outcome::Authentication(a) = outcome(&r) else {
        panic!("authentication: {r:?}")
    };
    assert_eq!(
        VerifyOutcome::try_from(a.outcome).unwrap(),
        VerifyOutcome::NotRegistered
    );
    assert_eq!(r.http_status, 401);
    assert!(!r.reauthenticated);
    assert_eq!(world.auth_requests(), 1, "a new token would not help");
    assert_eq!(world.mock.deposits_list().await.len(), 1);
    world.stop().await;
}

#[tokio::test]
async fn unusable_network_settings_send_nothing() {
    let world = World::start(|_| {}).await;
    let mut network = world.network();
    network.address = world.mock_https.replace("https://", "http://");
    let r = world
        .deposit_with(world.access(DUPONT, network), &dsn(1), 1024)
        .await
        .unwrap();
    let deposit_response::Outcome::NotSent(n) = outcome(&r) else {
        panic!("not sent: {r:?}")
    };
    assert_eq!(
        ProbeStep::try_from(n.probe.as_ref().unwrap().step).unwrap(),
        ProbeStep::Address
    );
    assert!(r.message.contains("Sécurisé"), "{}", r.message);
    assert_eq!(world.auth_requests() + world.deposit_requests(), 0);
    world.stop().await;
}

#[tokio::test]
async fn a_deposit_service_that_cannot_be_reached_is_not_sent_and_auth_has_its_own_address() {
    let world = World::start(|_| {}).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("https://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut network = world.network();
    network.address = closed;
    let mut access = world.access(DUPONT, network);
    access.auth_address = format!("{}/authentifier/1.0/", world.mock_https);
    let r = world.deposit_with(access, &dsn(1), 1024).await.unwrap();
    let deposit_response::Outcome::NotSent(n) = outcome(&r) else {
        panic!("not sent: {r:?}")
    };
    assert_eq!(
        ProbeStep::try_from(n.probe.as_ref().unwrap().step).unwrap(),
        ProbeStep::Connect
    );
    assert_eq!(world.auth_requests(), 1, "authenticated at its own address");
    assert_eq!(world.deposit_requests(), 0);
    world.stop().await;
}
