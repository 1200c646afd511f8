//! A graceful stop and the deposit attempts under way: the embedded orchestrator is
//! stopped (`App::run_until` returns) while the Net-entreprises mock holds the answer to
//! a deposit it registered (`hold_after_register`).
//!
//! - an answer that comes before `deposits.stop_deadline_secs`: the stop waits for it, the
//!   record is `accepted` when `run_until` returns, and the next start has nothing to list;
//! - an answer that comes after: the stop returns at the deadline, the attempt is dropped
//!   (nothing of the stopped orchestrator writes its record afterwards: it stays
//!   `sending`), and the next start settles it by listing — the mock holding one deposit.
//!
//! On SQLite, or on PostgreSQL with `IEA_TEST_DATABASE_URL`.

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{MockAdmin, TestStack, authed};
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_orchestrator::deposits::{DepositRecord, State};
use iea_orchestrator::store::{DatabaseUrl, Store};
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::*;

const ADMIN: &str = "Administrateur";

struct World {
    t: TestStack,
    token: String,
    ne: MockAdmin,
}

impl World {
    async fn start(stop_deadline_secs: u64) -> Self {
        Self::start_sending(stop_deadline_secs, 4).await
    }

    /// With `concurrency` deposits sent at once.
    async fn start_sending(stop_deadline_secs: u64, concurrency: usize) -> Self {
        let t = TestStack::start_configured(|o| {
            o.demo = false;
            o.customize_orchestrator = Some(Box::new(move |s| {
                s.deposits.concurrency = concurrency;
                s.deposits.poll_interval_ms = 100;
                s.deposits.retry_delay_secs = 1;
                s.deposits.window_margin_secs = 2;
                s.deposits.stop_deadline_secs = stop_deadline_secs;
                s.update_check_interval_secs = 0;
            }));
        })
        .await;
        let password = t.admin_password();
        let token = t.login(ADMIN, &password).await;
        CredentialsClient::new(t.channel().await)
            .set_credentials(authed(
                &token,
                SetCredentialsRequest {
                    user: ADMIN.into(),
                    account_password: password,
                    identity: Some(NetEntreprisesIdentity {
                        siret: DUPONT.siret.into(),
                        nom: DUPONT.nom.into(),
                        prenom: DUPONT.prenom.into(),
                        password: DUPONT.password.into(),
                    }),
                },
            ))
            .await
            .expect("identity set");
        let ne = t.mock("net-entreprises");
        Self { t, token, ne }
    }

    async fn upload(&self, bytes: &[u8]) -> DsnDeposit {
        let messages = iea_stack_testkit::dsn_upload("DSN.txt", bytes);
        DepositsClient::new(self.t.channel().await)
            .deposit(authed(&self.token, tokio_stream::iter(messages)))
            .await
            .expect("deposit recorded")
            .into_inner()
    }

    /// Waits (at most 30 s) until deposit `id`, read through the API, satisfies `pred`.
    async fn until(&self, id: i64, pred: impl Fn(&DsnDeposit) -> bool) -> DsnDeposit {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = DepositsClient::new(self.t.channel().await)
                .get_deposit(authed(&self.token, GetDsnDepositRequest { id }))
                .await
                .expect("deposit readable")
                .into_inner();
            if pred(&d) {
                return d;
            }
            assert!(Instant::now() < deadline, "deposit {id}: {d:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 30 s) until the mock registered `n` deposits; answers them.
    async fn registered(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = self.ne.get("/deposits").await;
            let all = all.as_array().expect("an array of deposits").clone();
            if all.len() == n {
                return all;
            }
            assert!(Instant::now() < deadline, "the mock holds {all:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Requests that reached `service` of the mock (`/deposer-dsn/1.0/`…).
    async fn requests(&self, service: &str) -> u64 {
        self.ne.get("/stats").await["services"][service]["requests"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Stops the embedded orchestrator; how long `run_until` took to return.
    async fn stop_orchestrator(&mut self) -> Duration {
        let started = Instant::now();
        self.t
            .running_mut()
            .stop_orchestrator()
            .await
            .expect("the orchestrator stops cleanly");
        started.elapsed()
    }

    /// Deposit `id` as the database holds it (read while the orchestrator is stopped).
    async fn stored(&self, id: i64) -> DepositRecord {
        let dir = self.t.dir.path();
        let url = iea_stack::chosen_database(dir)
            .expect("database choice")
            .unwrap_or_else(|| DatabaseUrl::Sqlite(dir.join(iea_orchestrator::DATABASE_FILE)));
        let store = Store::open(&url).await.expect("database opens");
        store
            .deposit(id)
            .await
            .expect("deposit read")
            .expect("deposit recorded")
    }
}

fn sample(month: u8, seed: u64) -> Vec<u8> {
    let mut spec =
        iea_dsn::SampleSpec::new(DUPONT.siret, iea_dsn::Month::new(2026, month).unwrap(), 2);
    spec.seed = seed;
    iea_dsn::sample(&spec)
}

const DEPOSIT: &str = "/deposer-dsn/1.0/";
const LISTING: &str = "/lister-depots/1.0/";

/// The answer comes 2 s after the stop is asked, within the deadline (30 s): `run_until`
/// returns once it is written; nothing is left for the next start to list.
#[tokio::test]
async fn a_stop_waits_for_the_answer_of_a_deposit_under_way() {
    let mut w = World::start(30).await;
    w.ne.faults(serde_json::json!({"hold_after_register": 1, "hold_ms": 2000}))
        .await;
    let d = w.upload(&sample(9, 41)).await;
    // Registered by the mock, its answer held: the attempt is under way.
    let registered = w.registered(1).await;
    let took = w.stop_orchestrator().await;
    let rec = w.stored(d.id).await;
    assert_eq!(rec.state, State::Accepted, "{rec:#?}");
    assert_eq!(rec.idflux.as_deref(), registered[0]["idflux"].as_str());
    assert_eq!(rec.attempts, 1);
    assert!(rec.lease_owner.is_none(), "lease released: {rec:#?}");
    // It did wait for the answer (held 2 s from its registration), not for the deadline.
    assert!(took >= Duration::from_millis(500), "stopped in {took:?}");
    assert!(took < Duration::from_secs(15), "stopped in {took:?}");
    eprintln!("run_until returned {took:?} after the stop was asked");

    // The next start finds it settled: no listing, no second deposit.
    w.t.running_mut()
        .start_orchestrator()
        .await
        .expect("the orchestrator starts again");
    let d = w.until(d.id, |d| d.settled).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    assert!(!d.message.contains("liste des dépôts"), "{}", d.message);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let registered = w.registered(1).await;
    assert_eq!(registered[0]["idflux"], d.idflux.as_str());
    assert_eq!(w.requests(DEPOSIT).await, 1);
    assert_eq!(w.requests(LISTING).await, 0, "nothing to list");
    w.t.stop().await;
}

/// The answer comes 5 s after the stop, past the deadline (1 s): `run_until` returns at
/// the deadline, the attempt is dropped and its record stays `sending` (even once the
/// answer would have come); the next start settles it by listing, once.
#[tokio::test]
async fn a_stop_past_its_deadline_leaves_the_deposit_to_the_listing_of_the_next_start() {
    let mut w = World::start(1).await;
    w.ne.faults(serde_json::json!({"hold_after_register": 1, "hold_ms": 5000}))
        .await;
    let d = w.upload(&sample(10, 42)).await;
    let registered = w.registered(1).await;
    let held_from = Instant::now();
    let took = w.stop_orchestrator().await;
    assert!(took >= Duration::from_millis(900), "stopped in {took:?}");
    assert!(took < Duration::from_secs(4), "stopped in {took:?}");
    eprintln!("run_until returned {took:?} after the stop was asked (deadline 1 s)");
    let rec = w.stored(d.id).await;
    assert_eq!(rec.state, State::Sending, "{rec:#?}");
    // Past the held answer: the dropped attempt wrote nothing.
    tokio::time::sleep(Duration::from_millis(5500).saturating_sub(held_from.elapsed())).await;
    let rec = w.stored(d.id).await;
    assert_eq!(
        rec.state,
        State::Sending,
        "written after the stop: {rec:#?}"
    );
    assert_eq!(rec.attempts, 1);

    w.t.running_mut()
        .start_orchestrator()
        .await
        .expect("the orchestrator starts again");
    let d = w.until(d.id, |d| d.settled).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    assert!(d.message.contains("liste des dépôts"), "{}", d.message);
    assert_eq!(d.attempts, 1);
    let registered_after = w.registered(1).await;
    assert_eq!(registered_after[0]["idflux"], registered[0]["idflux"]);
    assert_eq!(registered[0]["idflux"], d.idflux.as_str());
    assert_eq!(w.requests(DEPOSIT).await, 1, "sent once");
    assert!(w.requests(LISTING).await >= 1);
    w.t.stop().await;
}

/// One request at a time: while the first deposit's answer is held, the second is claimed
/// (`sending`) and waits at the agent for its turn, not sent. The stop withdraws it: back
/// to the queue (no attempt counted, no lease, nothing sent) while the stop waits for the
/// first's answer; the next start deposits it, once.
#[tokio::test]
async fn a_deposit_claimed_ahead_goes_back_to_the_queue_at_a_stop() {
    let mut w = World::start_sending(30, 1).await;
    w.ne.faults(serde_json::json!({"hold_after_register": 1, "hold_ms": 3000}))
        .await;
    let first = w.upload(&sample(9, 43)).await;
    w.registered(1).await;
    let second = w.upload(&sample(10, 44)).await;
    let ahead = w.until(second.id, |d| d.state == "sending").await;
    assert_eq!(ahead.attempts, 1, "{ahead:#?}");
    let at_mock = w.ne.get("/deposits").await;
    assert_eq!(
        at_mock.as_array().map(Vec::len),
        Some(1),
        "one request at a time"
    );

    let took = w.stop_orchestrator().await;
    assert!(took < Duration::from_secs(15), "stopped in {took:?}");
    let rec = w.stored(first.id).await;
    assert_eq!(rec.state, State::Accepted, "{rec:#?}");
    let rec = w.stored(second.id).await;
    assert_eq!(
        (rec.state, rec.attempts, rec.lease_owner.as_deref()),
        (State::Queued, 0, None),
        "{rec:#?}"
    );
    assert_eq!(w.requests(DEPOSIT).await, 1, "nothing sent for the second");

    w.t.running_mut()
        .start_orchestrator()
        .await
        .expect("the orchestrator starts again");
    let d = w.until(second.id, |d| d.settled).await;
    assert_eq!((d.state.as_str(), d.attempts), ("accepted", 1), "{d:#?}");
    let registered = w.registered(2).await;
    assert_eq!(registered[1]["idflux"], d.idflux.as_str());
    assert_eq!(w.requests(DEPOSIT).await, 2);
    assert_eq!(w.requests(LISTING).await, 0, "nothing to list");
    w.t.stop().await;
}
