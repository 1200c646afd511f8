//! The turns of the requests to Net-entreprises: the agent keeps its caller's bound
//! (`at_once`), and a deposit that has not had its turn never leaves it — withdrawn by its
//! caller, or its `may_wait_ms` past. The mock counts the deposits in its route at once
//! (`max_in_flight`), each held there by `hold_after_register`.

use std::time::Duration;

use iea_proto::agent::v1::{
    DepositChunk, DepositResponse, deposit_response, list_deposits_response,
};
use world::*;

mod world;

/// The holds below outlast the usual tests' 1.5 s request timeout.
async fn world() -> World {
    World::start_with(|_| {}, Duration::from_secs(10)).await
}

/// One turn (`at_once` 1), taken by a first deposit whose answer the mock holds
/// `hold_ms` after registering it.
async fn one_turn_taken(hold_ms: u64) -> (World, OpenDeposit) {
    let world = world().await;
    world
        .faults(serde_json::json!({"hold_after_register": 1, "hold_ms": hold_ms}))
        .await;
    let first = world.deposit_open(DUPONT, &dsn(1), 1, 20_000);
    world.registered(1).await;
    (world, first)
}

fn accepted(r: &DepositResponse) -> &str {
    match r.outcome.as_ref() {
        Some(deposit_response::Outcome::Accepted(a)) => &a.idflux,
        _ => panic!("accepted: {r:?}"),
    }
}

/// Not sent, because it never had its turn.
fn assert_no_turn(r: &DepositResponse) {
    match r.outcome.as_ref() {
        Some(deposit_response::Outcome::NotSent(n)) => assert!(n.no_turn, "{r:?}"),
        _ => panic!("not sent, no turn: {r:?}"),
    }
    assert_eq!(r.http_status, 0, "{r:?}");
}

#[tokio::test]
async fn deposits_at_once_keep_the_bound_they_are_given() {
    let world = world().await;
    // Warm: the token is there, so that only deposits are counted below.
    accepted(&world.deposit(DUPONT, &dsn(1)).await);
    world
        .faults(serde_json::json!({"hold_after_register": true, "hold_ms": 300}))
        .await;
    let open: Vec<_> = (2..8)
        .map(|n| world.deposit_open(DUPONT, &dsn(n), 2, 20_000))
        .collect();
    for d in open {
        accepted(&d.answer().await);
    }
    let stats = world.deposit_path_stats();
    assert_eq!(stats.requests, 7);
    assert_eq!(
        stats.max_in_flight, 2,
        "never more than 2 at once, and 2 did go together: {stats:?}"
    );
    assert_eq!(world.mock.deposits_list().await.len(), 7);
    world.stop().await;
}

#[tokio::test]
async fn a_deposit_withdrawn_before_its_turn_never_leaves_the_agent() {
    let (world, first) = one_turn_taken(2000).await;
    // Its whole file in its first message, then it waits for the first's turn (held 2 s
    // at the mock): the withdrawal, the message after, finds it waiting.
    let mut second = world.deposit_open(DUPONT, &dsn(2), 1, 20_000);
    second.withdraw();
    let r = second.answer().await;
    assert_no_turn(&r);
    assert!(r.message.contains("retiré avant son tour"), "{}", r.message);
    assert!(r.message.contains("Rien n'a été envoyé"), "{}", r.message);
    assert!(
        !first.answer.is_finished(),
        "answered while the first was still held"
    );
    let idflux = accepted(&first.answer().await).to_owned();
    // Its answer came once the agent had dropped it: it never left.
    let registered = world.mock.deposits_list().await;
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(registered[0].idflux, idflux);
    assert_eq!(world.deposit_requests(), 1);
    world.stop().await;
}

#[tokio::test]
async fn a_withdrawal_after_the_turn_changes_nothing_the_answer_says_what_became_of_it() {
    let (world, mut d) = one_turn_taken(800).await;
    d.withdraw();
    let idflux = accepted(&d.answer().await).to_owned();
    assert_eq!(world.mock.deposits_list().await[0].idflux, idflux);
    world.stop().await;
}

#[tokio::test]
async fn a_deposit_whose_turn_does_not_come_in_time_never_leaves_the_agent() {
    let (world, first) = one_turn_taken(2000).await;
    let second = world.deposit_open(DUPONT, &dsn(2), 1, 300);
    let r = second.answer().await;
    assert_no_turn(&r);
    assert_eq!(r.detail, "no turn within 300 ms");
    assert!(
        r.message
            .contains("ont occupé toutes les places pendant 1 s"),
        "{}",
        r.message
    );
    assert!(!first.answer.is_finished(), "answered before the first");
    accepted(&first.answer().await);
    assert_eq!(world.mock.deposits_list().await.len(), 1);
    assert_eq!(world.deposit_requests(), 1);
    world.stop().await;
}

#[tokio::test]
async fn a_listing_waits_for_its_turn_among_the_deposits() {
    let (world, first) = one_turn_taken(3000).await;
    let asked = std::time::Instant::now();
    let l = world
        .list_with(DUPONT, &world.mock_time(-30), &world.mock_time(1), 1)
        .await;
    // The deposit's answer was held 3 s from its registration: the listing, one request
    // of a few milliseconds, went after it.
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "listed after {:?}, while the deposit was under way",
        asked.elapsed()
    );
    let idflux = accepted(&first.answer().await).to_owned();
    match l.outcome {
        Some(list_deposits_response::Outcome::Listing(listing)) => {
            assert_eq!(listing.deposits.len(), 1, "{listing:?}");
            assert_eq!(listing.deposits[0].idflux, idflux);
        }
        other => panic!("a listing: {other:?}"),
    }
    world.stop().await;
}

#[tokio::test]
async fn bytes_after_the_whole_file_are_refused_while_it_waits_and_nothing_leaves() {
    let (world, first) = one_turn_taken(2000).await;
    let file = dsn(2);
    let messages = vec![
        announcement(
            world.access(DUPONT, world.network()),
            file.len() as u64,
            Turn {
                at_once: 1,
                may_wait_ms: 20_000,
            },
            file,
        ),
        DepositChunk {
            data: b"S90.G00.90.001,'1'\n".to_vec(),
            ..Default::default()
        },
    ];
    let e = world.send(messages).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("dépasse la taille annoncée"), "{e:?}");
    assert!(
        !first.answer.is_finished(),
        "refused while the first was held"
    );
    accepted(&first.answer().await);
    assert_eq!(world.mock.deposits_list().await.len(), 1);
    assert_eq!(world.deposit_requests(), 1);
    world.stop().await;
}
