//! The following of returns catches up after the orchestrator was stopped (issue 13): on
//! the embedded stack, 20 accounts each deposit with their own Net-entreprises identity (a
//! declarant of the mock, its own SIRET) two declarations; the orchestrator starts
//! following them, then is stopped while 30 days pass on the mock's clock (and on the
//! orchestrator's returns clock), during which the mock publishes every return (natures
//! 10, 11 and 94). Started again on the same database, the orchestrator catches up by
//! itself: the mock's statistics show that no listing was refused with a 429, that no
//! declarant asked a window wider than the 60 minutes announced in `Accept-Ranges`, that
//! each declarant's scan covered the 30 days up to the publication lag, and that each
//! return was downloaded exactly once; the rates of every CRM are those `iea pas rates`
//! lists. Runs on SQLite, or on PostgreSQL with `IEA_TEST_DATABASE_URL`.

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use helpers::{authed, init_logs, test_database};
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::users_client::UsersClient;
use iea_proto::v1::*;
use iea_stack::{RunningStack, StackFile, StackOptions};
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

const DECLARANTS: usize = 20;
const DAYS: i64 = 30;
const EMPLOYEES: usize = 3;
/// What the mock announces (`Accept-Ranges: minutes=0-60`).
const WINDOW_SECS: i64 = 3600;
/// The orchestrator's default publication lag of the declarant scan (`scan_lag_secs`).
const SCAN_LAG_SECS: i64 = 120;
const LIST_RETURNS_DECLARANT: &str = "/lister-retours-declarant/1.0/";
const DOWNLOAD: &str = "/telecharger-retour/1.0/";

/// One of the 20: an account of the installation and its Net-entreprises identity.
struct Declarant {
    user: String,
    password: String,
    siret: String,
    /// Its id at the mock.
    mock_id: u64,
}

/// `digits` followed by the digit that makes its Luhn key right.
fn with_luhn_key(digits: &str) -> String {
    (0..10)
        .map(|d| format!("{digits}{d}"))
        .find(|s| {
            let sum: u32 = s
                .bytes()
                .rev()
                .enumerate()
                .map(|(i, b)| {
                    let d = u32::from(b - b'0');
                    if i % 2 == 1 {
                        let x = d * 2;
                        if x > 9 { x - 9 } else { x }
                    } else {
                        d
                    }
                })
                .sum();
            sum.is_multiple_of(10)
        })
        .expect("one digit fits")
}

/// A SIRET whose SIREN and SIRET keys are both right.
fn siret(i: usize) -> String {
    let siren = with_luhn_key(&format!("914{i:05}"));
    with_luhn_key(&format!("{siren}0001"))
}

/// The months of the two declarations: the one before last and the last (their due
/// dates, the 15th of the next month, both within the 30 days).
fn months() -> [iea_dsn::Month; 2] {
    let now = time::OffsetDateTime::now_utc();
    let back = |n: i32| {
        let m = now.year() * 12 + i32::from(u8::from(now.month())) - 1 - n;
        iea_dsn::Month::new(m / 12, (m % 12 + 1) as u8).expect("a month")
    };
    [back(2), back(1)]
}

/// The mock's control API.
struct Mock {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Mock {
    fn new(file: &StackFile) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: file.mocks["net-entreprises"].admin.clone(),
            token: file.mocks_admin_token.clone(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("mock's control API");
        let status = resp.status();
        let value: Value = resp.json().await.expect("JSON");
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }
}

async fn channel(file: &StackFile) -> Channel {
    let tls = iea_runtime::tls::front_end_config(&file.ca, &file.orchestrator_server_name)
        .expect("TLS settings");
    Endpoint::from_shared(format!("https://{}", file.orchestrator))
        .expect("address")
        .tls_config(tls)
        .expect("TLS")
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .expect("orchestrator reachable")
}

async fn upload(deposits: &mut DepositsClient<Channel>, token: &str, bytes: &[u8]) -> i64 {
    let messages = iea_stack_testkit::dsn_upload("dsn.txt", bytes);
    deposits
        .deposit(authed(token, tokio_stream::iter(messages)))
        .await
        .expect("deposit recorded")
        .into_inner()
        .id
}

/// The mock's statistics of the declarant listings, per declarant id.
fn by_declarant(stats: &Value) -> BTreeMap<u64, Value> {
    stats["services"][LIST_RETURNS_DECLARANT]["by_declarant"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.parse().expect("a declarant id"), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_30_days_stopped_the_orchestrator_catches_up_20_declarants_without_a_429_nor_a_wider_window()
 {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stack = RunningStack::start(StackOptions {
        data_dir: dir.path().to_owned(),
        demo: true,
        database: test_database().await,
        customize_orchestrator: Some(Box::new(|s| {
            s.deposits.poll_interval_ms = 100;
            s.deposits.retry_delay_secs = 1;
            // A pass every 200 ms instead of 5 s: the catch-up (48 windows per declarant and
            // pass) is not slowed by the test's waiting. Every other returns setting is the
            // default (60-minute windows once announced, 2-minute publication lag).
            s.returns.poll_interval_ms = 200;
        })),
        ..Default::default()
    })
    .await
    .expect("stack starts");
    let file = stack.file.clone();
    let mock = Mock::new(&file);
    let ch = channel(&file).await;
    let admin_password = std::fs::read_to_string(dir.path().join("admin-password"))
        .expect("bootstrap password")
        .trim()
        .to_owned();
    let admin = iea_proto::v1::sessions_client::SessionsClient::new(ch.clone())
        .login(LoginRequest {
            user: "Administrateur".into(),
            password: admin_password,
        })
        .await
        .expect("login")
        .into_inner()
        .token;
    let mut users = UsersClient::new(ch.clone());
    let mut credentials = CredentialsClient::new(ch.clone());
    let mut deposits = DepositsClient::new(ch.clone());
    let mut returns = ReturnsClient::new(ch.clone());
    users
        .set_installation_mode(authed(
            &admin,
            InstallationModeMessage {
                mode: InstallationMode::Reseau.into(),
            },
        ))
        .await
        .expect("réseau mode");

    // 20 declarants, each a declarant of the mock and an account with its identity,
    // designated to deposit for its SIRET.
    let mut declarants = Vec::new();
    for i in 0..DECLARANTS {
        let siret = siret(i);
        let ne_password = format!("Retours#{i:02}x");
        let nom = format!("DECLARANT{i:02}");
        let added = mock
            .send(
                reqwest::Method::POST,
                "/declarants",
                Some(json!({
                    "siret": siret, "nom": nom, "prenom": "Camille",
                    "motdepasse": ne_password, "services": [25, 97],
                })),
            )
            .await;
        let d = Declarant {
            user: format!("paie-{i:02}"),
            password: format!("Compte-{i:02}-Paie!"),
            siret: siret.clone(),
            mock_id: added["id"].as_u64().expect("the declarant's id"),
        };
        users
            .add_user(authed(
                &admin,
                AddUserRequest {
                    name: d.user.clone(),
                    role: Role::User.into(),
                    password: d.password.clone(),
                },
            ))
            .await
            .expect("account added");
        credentials
            .set_credentials(authed(
                &admin,
                SetCredentialsRequest {
                    user: d.user.clone(),
                    account_password: d.password.clone(),
                    identity: Some(NetEntreprisesIdentity {
                        siret: siret.clone(),
                        nom,
                        prenom: "Camille".into(),
                        password: ne_password,
                    }),
                },
            ))
            .await
            .expect("identity set");
        deposits
            .set_deposit_account(authed(
                &admin,
                SetDepositAccountRequest {
                    siret: siret.clone(),
                    user: d.user.clone(),
                },
            ))
            .await
            .expect("account designated");
        declarants.push(d);
    }

    // Two declarations each, every employee with a rate of the tax office's table.
    let mut expected_rates = BTreeMap::new();
    let mut files = Vec::new();
    for (i, d) in declarants.iter().enumerate() {
        for (k, month) in months().into_iter().enumerate() {
            let mut spec = iea_dsn::SampleSpec::new(d.siret.as_str(), month, EMPLOYEES);
            spec.seed = (i * 2 + k + 1) as u64;
            let bytes = iea_dsn::sample(&spec);
            let dsn = iea_dsn::Dsn::parse(&bytes).expect("a valid sample");
            for e in dsn.employees() {
                let nir = e.nir.clone().expect("a NIR");
                let n = expected_rates.len() as u32;
                let rate = format!("{}.{:02}", 1 + n % 20, (n * 7) % 100);
                mock.send(
                    reqwest::Method::PUT,
                    &format!("/pas-rates/{nir}"),
                    Some(json!({ "taux": rate })),
                )
                .await;
                assert!(
                    expected_rates
                        .insert((d.siret.clone(), nir), rate)
                        .is_none(),
                    "a NIR twice"
                );
            }
            files.push(bytes);
        }
    }
    let mut ids = Vec::new();
    for bytes in &files {
        ids.push(upload(&mut deposits, &admin, bytes).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let d = deposits
                .get_deposit(authed(&admin, GetDsnDepositRequest { id: *id }))
                .await
                .expect("deposit")
                .into_inner();
            if d.settled {
                assert_eq!(d.state, "accepted", "{d:#?}");
                break;
            }
            assert!(Instant::now() < deadline, "never settled: {d:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The orchestrator follows them (every declarant's scan has started), then stops.
    let deadline = Instant::now() + Duration::from_secs(60);
    while by_declarant(&mock.get("/stats").await).len() < DECLARANTS {
        assert!(
            Instant::now() < deadline,
            "the declarant scans never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop_orchestrator().await.expect("orchestrator stops");
    // Once stopped, nothing of it runs any more (`run_until` waits for its loops): from
    // here on the mock's counters must not move until it is started again.
    let stopped = mock.get("/stats").await;
    let offset_before = stack.returns_clock().expect("embedded").offset();
    for _ in 0..DAYS {
        stack.advance_clocks(86_400);
    }
    assert_eq!(
        stack.returns_clock().expect("embedded").offset() - offset_before,
        DAYS * 86_400
    );
    let clock = mock.get("/clock").await;
    assert!(clock["offset_secs"].as_i64().expect("offset") >= DAYS * 86_400);
    // Everything is published meanwhile, and nothing asked for it.
    let mock_returns = mock.get("/returns").await;
    let mock_returns = mock_returns.as_array().expect("returns");
    assert_eq!(mock_returns.len(), files.len() * 3, "{mock_returns:#?}");
    assert!(mock_returns.iter().all(|r| r["published"] == true));
    let natures: BTreeSet<u64> = mock_returns
        .iter()
        .map(|r| r["nature"].as_u64().expect("nature"))
        .collect();
    assert_eq!(natures, BTreeSet::from([10, 11, 94]));
    assert_eq!(
        mock.get("/stats").await["services"],
        stopped["services"],
        "requests reached the mock while the orchestrator was stopped"
    );

    // Started again: it catches up by itself.
    let started = Instant::now();
    stack
        .start_orchestrator()
        .await
        .expect("orchestrator starts again");
    let restart_at = stack.returns_clock().expect("embedded").now();
    assert!(restart_at >= time::OffsetDateTime::now_utc().unix_timestamp() + DAYS * 86_400 - 5);
    let deadline = started + Duration::from_secs(300);
    let stats = loop {
        let stats = mock.get("/stats").await;
        let scanned = by_declarant(&stats);
        let caught_up = declarants.iter().all(|d| {
            scanned
                .get(&d.mock_id)
                .and_then(|s| s["latest_end_unix"].as_i64())
                .is_some_and(|end| end >= restart_at - SCAN_LAG_SECS)
        });
        let downloaded = stats["downloads"].as_object().map_or(0, |m| m.len());
        if caught_up && downloaded == mock_returns.len() {
            break stats;
        }
        assert!(
            Instant::now() < deadline,
            "no catch-up in 300 s: {downloaded} returns downloaded; {stats:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let took = started.elapsed();
    eprintln!(
        "caught up {DECLARANTS} declarants x {DAYS} days in {:.1} s: {} declarant windows, {} returns downloaded",
        took.as_secs_f64(),
        stats["services"][LIST_RETURNS_DECLARANT]["requests"],
        mock_returns.len()
    );

    // No 429 anywhere, no window wider than announced, 30 days of windows per declarant.
    for (path, s) in stats["services"].as_object().expect("services") {
        assert!(s["by_status"].get("429").is_none(), "{path}: {s:#}");
    }
    let scan = &stats["services"][LIST_RETURNS_DECLARANT];
    assert!(
        scan["widest_window_secs"].as_i64().expect("windows asked") <= WINDOW_SECS,
        "{scan:#}"
    );
    let before = by_declarant(&stopped);
    let after = by_declarant(&stats);
    for d in &declarants {
        let s = &after[&d.mock_id];
        assert!(s["by_status"].get("429").is_none(), "{}: {s:#}", d.user);
        assert!(
            s["widest_window_secs"].as_i64().expect("widest") <= WINDOW_SECS,
            "{}: {s:#}",
            d.user
        );
        let windows = s["requests"].as_u64().expect("requests")
            - before
                .get(&d.mock_id)
                .map_or(0, |b| b["requests"].as_u64().expect("requests"));
        assert!(
            windows >= (DAYS * 86_400 / WINDOW_SECS) as u64,
            "{}: {windows} windows for {DAYS} days",
            d.user
        );
    }

    // Every return downloaded exactly once.
    let served = stats["downloads"].as_object().expect("downloads");
    for r in mock_returns {
        let key = format!(
            "{}/{}",
            r["idflux"].as_str().expect("idflux"),
            r["id"].as_str().expect("id")
        );
        assert_eq!(served.get(&key), Some(&json!(1)), "{key}: {served:#?}");
    }
    assert_eq!(
        served
            .values()
            .map(|n| n.as_u64().expect("count"))
            .sum::<u64>(),
        stats["services"][DOWNLOAD]["by_status"]["200"]
            .as_u64()
            .expect("documents served"),
    );

    // Each deposit's returns are in, read, and each CRM's rates are those listed.
    for id in &ids {
        let r = returns
            .list_returns(authed(&admin, ListDsnReturnsRequest { deposit_id: *id }))
            .await
            .expect("returns")
            .into_inner();
        assert_eq!(r.follow_state, "done", "{r:#?}");
        assert_eq!(r.conformity, "OK", "{r:#?}");
        let natures: BTreeSet<u32> = r.returns.iter().map(|x| x.nature).collect();
        assert_eq!(natures, BTreeSet::from([10, 11, 94]), "{r:#?}");
        assert!(
            r.returns.iter().all(|x| x.download_state == "downloaded"),
            "{r:#?}"
        );
        let crm = r.returns.iter().find(|x| x.nature == 94).expect("CRM");
        assert_eq!(crm.rate_count as usize, EMPLOYEES, "{r:#?}");
    }
    let listed: BTreeMap<(String, String), String> = returns
        .list_rates(authed(
            &admin,
            ListPasRatesRequest {
                siret: String::new(),
                include_expired: false,
            },
        ))
        .await
        .expect("rates")
        .into_inner()
        .rates
        .into_iter()
        .map(|r| {
            assert!(r.valid, "{r:?}");
            ((r.siret, r.nir_or_ntt), r.rate)
        })
        .collect();
    assert_eq!(listed, expected_rates);

    stack.stop().await.expect("clean stop");
}
