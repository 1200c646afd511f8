//! No DSN content reaches the logs: every component's logs, at TRACE, are captured while
//! DSN files are deposited through the whole stack (accepted, rejected with an ARE, and
//! one whose answer is lost and found in the listing) and while what comes back is
//! followed to the CRM PAS (natures 10, 11 and 94 listed, downloaded and read, rates
//! stored and exported); then the captured text is searched for each employee's NIR,
//! names and amounts, and for the withholding rates the tax office gave. A binary of its
//! own, since it installs the global log subscriber.

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpers::{TestStack, authed};
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::*;

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

fn sample(month: u8, seed: u64) -> Vec<u8> {
    let mut spec =
        iea_dsn::SampleSpec::new(DUPONT.siret, iea_dsn::Month::new(2026, month).unwrap(), 4);
    spec.seed = seed;
    iea_dsn::sample(&spec)
}

async fn deposit_and_wait(
    client: &mut DepositsClient<tonic::transport::Channel>,
    token: &str,
    bytes: &[u8],
) -> DsnDeposit {
    let messages = iea_stack_testkit::dsn_upload("dsn.txt", bytes);
    let d = client
        .deposit(authed(token, tokio_stream::iter(messages)))
        .await
        .unwrap()
        .into_inner();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = client
            .get_deposit(authed(token, GetDsnDepositRequest { id: d.id }))
            .await
            .unwrap()
            .into_inner();
        if now.settled {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn no_nir_name_or_amount_of_a_dsn_appears_in_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(iea_runtime::telemetry::filter("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let stack = TestStack::start_with(|s| {
        s.deposits.poll_interval_ms = 100;
        s.deposits.retry_delay_secs = 1;
        s.deposits.window_margin_secs = 2;
    })
    .await;
    let token = stack.login_admin().await;
    CredentialsClient::new(stack.channel().await)
        .set_credentials(authed(
            &token,
            SetCredentialsRequest {
                user: "Administrateur".into(),
                account_password: stack.admin_password(),
                identity: Some(NetEntreprisesIdentity {
                    siret: DUPONT.siret.into(),
                    nom: DUPONT.nom.into(),
                    prenom: DUPONT.prenom.into(),
                    password: DUPONT.password.into(),
                }),
            },
        ))
        .await
        .unwrap();
    let mut client = DepositsClient::new(stack.channel().await);
    let ne = stack.mock("net-entreprises");
    let files = [sample(11, 21), sample(10, 22), sample(9, 23)];
    let accepted = deposit_and_wait(&mut client, &token, &files[0]).await;
    assert_eq!(accepted.state, "accepted");
    ne.faults(serde_json::json!({"reject_deposits": {"code": "B1-105-15", "message": "Rejet."}}))
        .await;
    let rejected = deposit_and_wait(&mut client, &token, &files[1]).await;
    assert_eq!(rejected.state, "rejected");
    ne.faults(serde_json::json!({"lost_answer": 1})).await;
    let found = deposit_and_wait(&mut client, &token, &files[2]).await;
    assert_eq!(found.state, "accepted");

    // What comes back: the tax office's rate for the first employee, with a future one,
    // values no log may carry; the mock publishes every return, and following passes
    // run until both accepted deposits' CRMs are read and the rate is stored.
    let nir = iea_dsn::Dsn::parse(&files[0]).unwrap().employees()[0]
        .nir
        .clone()
        .expect("the sample's employees have a NIR");
    let (rate, future_rate) = ("37.91", "41.23");
    ne.send(
        reqwest::Method::PUT,
        &format!("/pas-rates/{nir}"),
        serde_json::json!({"taux": rate, "taux_futur": future_rate, "date_effet": "2027-02-01"}),
    )
    .await;
    ne.post("/returns/publish", serde_json::json!({})).await;
    let mut returns = ReturnsClient::new(stack.channel().await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        returns
            .follow_now(authed(&token, FollowNowRequest { all: true }))
            .await
            .unwrap();
        let mut crms = 0;
        for id in [accepted.id, found.id] {
            let r = returns
                .list_returns(authed(&token, ListDsnReturnsRequest { deposit_id: id }))
                .await
                .unwrap()
                .into_inner();
            crms += r
                .returns
                .iter()
                .filter(|x| x.nature == 94 && x.current && x.rate_count > 0)
                .count();
        }
        let rates = returns
            .list_rates(authed(
                &token,
                ListPasRatesRequest {
                    siret: DUPONT.siret.into(),
                    include_expired: false,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .rates;
        if crms == 2 && rates.iter().any(|r| r.nir_or_ntt == nir && r.rate == rate) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CRMs were not read: {crms} of 2"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("dsn deposit accepted") && logs.contains("uncertain deposit listed"),
        "the deposits' logs were captured"
    );
    assert!(
        logs.contains("return listed"),
        "the returns' following logs were captured"
    );
    for value in [rate, future_rate] {
        assert_eq!(
            iea_stack_testkit::logs::standalone(&logs, value),
            None,
            "the withholding rate « {value} » appears in the logs"
        );
    }
    let mut searched = 0;
    for file in &files {
        let dsn = iea_dsn::Dsn::parse(file).unwrap();
        for e in dsn.employees() {
            let mut personal: Vec<String> = vec![e.nom.clone(), e.prenoms.clone()];
            personal.extend(e.nir.clone());
            for p in &e.payments {
                personal.extend(p.amount_subject.clone());
                personal.extend(p.pas_amount.clone().filter(|a| a.len() >= 6));
            }
            // The declarant's own identity (the account's) is not the DSN's content,
            // and a made-up employee may bear the same name.
            for value in personal
                .into_iter()
                .filter(|v| v != DUPONT.nom && v != DUPONT.prenom)
            {
                searched += 1;
                assert!(
                    !logs.contains(&value),
                    "DSN content « {value} » appears in the logs"
                );
            }
        }
    }
    assert!(searched >= 30, "{searched} values searched");
}
