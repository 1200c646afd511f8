//! The deposit agent and the Net-entreprises mock, both real and in process: the agent is
//! called over mutual TLS with the generated client, as the orchestrator will call it,
//! and reaches the mock over HTTPS, trusting the mocks' test CA.

use std::time::Duration;

use iea_deposit_agent::{App, Options};
use iea_mock_kit::{FaultMode, FaultSettings, MockListen};
use iea_mock_net_entreprises as mock;
use iea_proto::agent::v1::deposit_agent_client::DepositAgentClient;
use iea_proto::agent::v1::{
    DeclarantIdentity, DepositChunk, DepositResponse, DepositStart, ListDepositsRequest,
    ListDepositsResponse, ListingFailure, NetEntreprisesAccess, VerifyOutcome, deposit_response,
    list_deposits_response,
};
use iea_proto::common::v1::{
    ConnectionMode, ConnectionType, NetworkSettings, ProbeRequest, ProbeStep, TlsProblem,
};
use iea_runtime::agent::AgentSettings;
use iea_runtime::pki::{self, CertificateAuthority};
use iea_runtime::shutdown::Shutdown;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use world::internal_pki;

mod world;

/// Bound on the agent's timeouts in these tests, so that "slow" is quick to show.
const MAX_TIMEOUT: Duration = Duration::from_millis(1500);
const ADMIN_TOKEN: &str = "admin";

/// SIRET, nom, prénom, password (the mock's fixtures).
type Identity = (&'static str, &'static str, &'static str, &'static str);
const DUPONT: Identity = ("78214563500010", "DUPONT", "Marie", "Jardin#Partage2024");
const WRONG_PASSWORD: Identity = ("78214563500010", "DUPONT", "Marie", "Jardin#Partage2025");

struct World {
    agent: DepositAgentClient<Channel>,
    mock: mock::Control,
    mock_https: String,
    mock_admin: String,
    mocks_ca: String,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start(tweak: impl FnOnce(&mut mock::Settings)) -> Self {
        Self::start_with(tweak, MAX_TIMEOUT).await
    }

    /// With `max_timeout` as the bound on the agent's request timeouts.
    async fn start_with(tweak: impl FnOnce(&mut mock::Settings), max_timeout: Duration) -> Self {
        iea_runtime::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let mocks_dir = dir.path().join("mocks");
        pki::init(&mocks_dir, &[]).unwrap();
        let (agent_files, orchestrator_files) = internal_pki(dir.path());
        let shutdown = Shutdown::new();

        let mut settings = mock::Settings {
            listen: MockListen {
                tls: pki::mock_files(&mocks_dir),
                admin_token: ADMIN_TOKEN.into(),
                ..MockListen::default()
            },
            lock_threshold: 3,
            ..mock::Settings::default()
        };
        tweak(&mut settings);
        let mock_app = mock::App::build(settings).await.unwrap();
        let control = mock_app.control();
        let mock_https = format!("https://127.0.0.1:{}", mock_app.https_addr().port());
        let mock_admin = format!("http://{}", mock_app.admin_addr());

        let agent_app = App::build_with(
            AgentSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: agent_files,
            },
            Options {
                max_timeout: Some(max_timeout),
            },
        )
        .await
        .unwrap();
        let agent_addr = agent_app.local_addr();
        let tasks = vec![
            tokio::spawn(mock_app.run_until(shutdown.clone())),
            tokio::spawn(agent_app.run_until(shutdown.clone())),
        ];
        let tls = iea_runtime::tls::client_config(&orchestrator_files, "deposit-agent").unwrap();
        let channel =
            iea_runtime::grpc::channel(&agent_addr.to_string(), tls, Duration::from_secs(60))
                .unwrap();
        let mocks_ca = std::fs::read_to_string(pki::mock_files(&mocks_dir).ca).unwrap();
        Self {
            agent: DepositAgentClient::new(channel),
            mock: control,
            mock_https,
            mock_admin,
            mocks_ca,
            shutdown,
            tasks,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        for t in self.tasks {
            t.await.unwrap().unwrap();
        }
    }

    fn network(&self) -> NetworkSettings {
        NetworkSettings {
            connection_type: ConnectionType::Direct.into(),
            mode: ConnectionMode::Secure.into(),
            address: self.mock_https.clone(),
            extra_ca_pem: self.mocks_ca.clone(),
            ..NetworkSettings::default()
        }
    }

    fn access(&self, identity: Identity, network: NetworkSettings) -> NetEntreprisesAccess {
        let (siret, nom, prenom, password) = identity;
        NetEntreprisesAccess {
            network: Some(network),
            auth_address: String::new(),
            identity: Some(DeclarantIdentity {
                siret: siret.into(),
                nom: nom.into(),
                prenom: prenom.into(),
                password: password.into(),
            }),
            service: 25,
        }
    }

    /// Deposits `file` in chunks of `chunk` bytes.
    async fn deposit_with(
        &self,
        access: NetEntreprisesAccess,
        file: &[u8],
        chunk: usize,
    ) -> Result<DepositResponse, tonic::Status> {
        let mut messages = vec![DepositChunk {
            start: Some(DepositStart {
                access: Some(access),
                deposit_id: "test-deposit".into(),
                total_size: file.len() as u64,
            }),
            data: Vec::new(),
        }];
        messages.extend(file.chunks(chunk).map(|c| DepositChunk {
            start: None,
            data: c.to_vec(),
        }));
        self.agent
            .clone()
            .deposit(futures::stream::iter(messages))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn deposit(&self, identity: Identity, file: &[u8]) -> DepositResponse {
        self.deposit_with(self.access(identity, self.network()), file, 64 * 1024)
            .await
            .unwrap()
    }

    async fn list(&self, identity: Identity, debut: &str, fin: &str) -> ListDepositsResponse {
        self.agent
            .clone()
            .list_deposits(ListDepositsRequest {
                access: Some(self.access(identity, self.network())),
                debut: debut.into(),
                fin: fin.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    fn auth_requests(&self) -> u64 {
        self.mock.stats().auth_requests
    }

    fn deposit_requests(&self) -> u64 {
        self.deposit_path_stats().requests
    }

    fn deposit_path_stats(&self) -> mock::PathStats {
        self.mock
            .stats()
            .services
            .get("/deposer-dsn/1.0/")
            .cloned()
            .unwrap_or_default()
    }

    fn kit_fault(&self, mode: FaultMode, delay_ms: u64) {
        self.mock.faults().set(FaultSettings {
            mode,
            delay_ms,
            close_default_port: false,
        });
    }

    /// Sets the mock's faults through its control API (the deposit faults have no
    /// in-process setter).
    async fn faults(&self, body: serde_json::Value) {
        self.admin(reqwest::Method::POST, "/__admin/faults", body)
            .await;
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: serde_json::Value) {
        let settings =
            iea_net::NetworkSettings::direct(iea_net::ConnectionMode::Normal, &self.mock_admin)
                .unwrap();
        let client = iea_net::HttpClient::new(&settings, "tests").unwrap();
        let r = client
            .reqwest()
            .request(method, format!("{}{path}", self.mock_admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    /// The mock's now in its time zone, `AAAAMMJJHHMMSS`, shifted by `minutes`.
    fn mock_time(&self, minutes: i64) -> String {
        let now = self.mock.clock().now();
        let at = if minutes >= 0 {
            now + Duration::from_secs(minutes as u64 * 60)
        } else {
            now - Duration::from_secs(minutes.unsigned_abs() * 60)
        };
        mock::clock::TimeZone::EuropeParis.format_compact(at)
    }
}

/// A small DSN-like file: `employees` employees' lines.
fn dsn(employees: usize) -> Vec<u8> {
    let mut s = String::from(
        "S10.G00.00.001,'IEA'\nS10.G00.00.002,'Impact emploi'\nS10.G00.00.003,'6.0'\n\
         S10.G00.00.005,'01'\nS10.G00.00.006,'P24V01'\nS10.G00.00.007,'01'\n\
         S10.G00.01.001,'782145635'\nS10.G00.01.002,'00010'\n\
         S20.G00.05.001,'01'\nS20.G00.05.002,'01'\nS20.G00.05.005,'01112026'\n",
    );
    for i in 0..employees {
        s.push_str(&format!(
            "S21.G00.30.001,'18{:011}'\nS21.G00.30.002,'NOM{i}'\nS21.G00.30.004,'Prénom {i}'\n\
             S21.G00.50.002,'{}.00'\nS21.G00.50.006,'4.50'\n",
            i,
            1500 + i % 1000
        ));
    }
    s.push_str("S90.G00.90.001,'0'\nS90.G00.90.002,'1'\n");
    // ISO-8859-1, as a DSN is.
    s.chars().map(|c| c as u32 as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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
    assert!(!format!("{r:?}").contains("Jardin#Partage2025"));

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
        .deposit(("78214563500011", "DUPONT", "Marie", "x"), &dsn(1))
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
            DepositChunk {
                start: Some(DepositStart {
                    access: Some(world.access(DUPONT, world.network())),
                    deposit_id: "short".into(),
                    total_size: total,
                }),
                data: Vec::new(),
            },
            DepositChunk {
                start: None,
                data: file.clone(),
            },
        ];
        let e = world
            .agent
            .clone()
            .deposit(futures::stream::iter(messages))
            .await
            .unwrap_err();
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
    let lists =
        futures::future::join_all((0..6).map(|_| world.list(WRONG_PASSWORD, &debut, &fin))).await;
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

    let lists = futures::future::join_all((0..6).map(|_| world.list(DUPONT, &debut, &fin))).await;
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
        .find(|d| d.siret == DUPONT.0)
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
