//! The agent and the Net-entreprises mock, both real and in process: the agent is called
//! over mutual TLS with the generated client, as the orchestrator calls it, and it
//! reaches the mock over HTTPS, trusting the mocks' test CA.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use iea_agent_testkit::{TestWorld, direct_network, net_entreprises};
use iea_credential_verifier::{App, Options};
use iea_mock_kit::{FaultMode, FaultSettings};
use iea_mock_net_entreprises as mock;
use iea_mock_net_entreprises::fixtures::{
    Account, LEFEVRE_NOT_REGISTERED, MARTIN_PASSWORD_EXPIRED, SIMULATOR,
};
use iea_proto::agent::v1::credential_agent_client::CredentialAgentClient;
use iea_proto::agent::v1::{
    DeclarantIdentity, VerifyManyAnswer, VerifyManyItem, VerifyManyRequest, VerifyManyResponse,
    VerifyOutcome, VerifyRequest, VerifyResponse,
};
use iea_proto::common::v1::{ConnectionMode, NetworkSettings, ProbeStep, TlsProblem};
use iea_runtime::pki::CertificateAuthority;
use tonic::transport::Channel;

/// Bound on the agent's timeouts in these tests, so that "slow" is quick to show.
const MAX_TIMEOUT: Duration = Duration::from_millis(1500);

struct Stack {
    agent: CredentialAgentClient<Channel>,
    mock: mock::Control,
    /// `https://127.0.0.1:<port>` of the mock.
    mock_https: String,
    mocks_ca: String,
    world: TestWorld,
}

impl Stack {
    async fn start(tweak: impl FnOnce(&mut mock::Settings)) -> Self {
        let world = TestWorld::new();
        let mock = net_entreprises::start(&world, tweak).await;
        let agent_app = App::build_with(
            world.agent_settings("credential-verifier"),
            Options {
                max_timeout: Some(MAX_TIMEOUT),
            },
        )
        .await
        .unwrap();
        let channel = world.channel(
            "credential-verifier",
            agent_app.local_addr(),
            Duration::from_secs(20),
        );
        world.spawn(agent_app.run_until(world.shutdown()));
        Self {
            agent: CredentialAgentClient::new(channel),
            mock: mock.control,
            mock_https: mock.https,
            mocks_ca: world.mocks_ca_pem(),
            world,
        }
    }

    /// Opens a `VerifyMany` stream that sends `requests`.
    async fn verify_many(
        &self,
        requests: Vec<VerifyManyRequest>,
    ) -> tonic::Streaming<VerifyManyResponse> {
        self.agent
            .clone()
            .verify_many(futures::stream::iter(requests))
            .await
            .unwrap()
            .into_inner()
    }

    async fn stop(self) {
        self.world.stop().await;
    }

    fn network(&self, mode: ConnectionMode, address: &str) -> NetworkSettings {
        direct_network(mode, address, &self.mocks_ca)
    }

    /// The mock's authentication address in mode *Sécurisé*.
    fn secure(&self) -> NetworkSettings {
        self.network(
            ConnectionMode::Secure,
            &format!("{}/authentifier/1.0/", self.mock_https),
        )
    }

    async fn verify_with(
        &self,
        network: NetworkSettings,
        identity: Identity,
        service: u32,
    ) -> VerifyResponse {
        let Account {
            siret,
            nom,
            prenom,
            password,
            ..
        } = identity;
        let request = VerifyRequest {
            network: Some(network),
            identity: Some(DeclarantIdentity {
                siret: siret.into(),
                nom: nom.into(),
                prenom: prenom.into(),
                password: password.into(),
            }),
            service,
        };
        self.agent
            .clone()
            .verify(request)
            .await
            .unwrap()
            .into_inner()
    }

    async fn verify(&self, identity: Identity, service: u32) -> VerifyResponse {
        self.verify_with(self.secure(), identity, service).await
    }

    fn auth_requests(&self) -> u64 {
        self.mock.stats().auth_requests
    }

    fn fault(&self, mode: FaultMode, delay_ms: u64) {
        self.mock.faults().set(FaultSettings {
            mode,
            delay_ms,
            close_default_port: false,
        });
    }
}

/// An identity as the tests type it: one of the mock's accounts, or one changed from it.
type Identity = Account;

const WRONG_PASSWORD: Identity = Account {
    password: "Refonte02",
    ..SIMULATOR
};

fn outcome(r: &VerifyResponse) -> VerifyOutcome {
    VerifyOutcome::try_from(r.outcome).unwrap()
}

fn probe_step(r: &VerifyResponse) -> ProbeStep {
    ProbeStep::try_from(r.probe.as_ref().expect("a probe for unavailable").step).unwrap()
}

#[tokio::test]
async fn valid_credentials_give_valid_with_the_token_expiry_and_never_the_token() {
    let stack = Stack::start(|s| s.token_lifetime_secs = 7200).await;
    let r = stack.verify(SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Valid, "{r:?}");
    assert_eq!(r.http_status, 200);
    assert!(r.input_problems.is_empty() && r.probe.is_none());
    let expires = SystemTime::try_from(r.token_expires_at.unwrap()).unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(
        left > Duration::from_secs(7000) && left <= Duration::from_secs(7200),
        "{left:?}"
    );
    assert!(r.message.contains("valides"), "{}", r.message);
    assert_eq!(stack.mock.stats().tokens_issued, 1);
    stack.stop().await;
}

#[tokio::test]
async fn a_net_entreprises_address_without_a_path_reaches_the_authentication_service() {
    let stack = Stack::start(|_| {}).await;
    let network = stack.network(ConnectionMode::Normal, &stack.mock_https);
    let r = stack.verify_with(network, SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Valid, "{r:?}");
    stack.stop().await;
}

#[tokio::test]
async fn a_wrong_password_gives_invalid_credentials_with_the_realm_after_a_single_attempt() {
    let stack = Stack::start(|_| {}).await;
    let r = stack.verify(WRONG_PASSWORD, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::InvalidCredentials, "{r:?}");
    assert_eq!(
        (r.http_status, r.realm.as_str()),
        (401, "net-entreprises.fr")
    );
    assert!(!r.message.contains(WRONG_PASSWORD.password));
    assert_eq!(stack.auth_requests(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn an_expired_password_gives_password_expired() {
    let stack = Stack::start(|_| {}).await;
    let r = stack.verify(MARTIN_PASSWORD_EXPIRED, 25).await;
    assert_eq!(outcome(&r), VerifyOutcome::PasswordExpired, "{r:?}");
    assert_eq!(
        (r.http_status, r.realm.as_str()),
        (401, "Expiration du mot de passe")
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_declarant_not_registered_to_the_service_gives_not_registered() {
    let stack = Stack::start(|_| {}).await;
    let r = stack.verify(SIMULATOR, 25).await;
    assert_eq!(outcome(&r), VerifyOutcome::NotRegistered, "{r:?}");
    assert_eq!(
        (r.http_status, r.realm.as_str()),
        (401, "Utilisateur non-inscrit au service")
    );
    assert!(r.message.contains("code 25"), "{}", r.message);
    let r = stack.verify(LEFEVRE_NOT_REGISTERED, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::NotRegistered, "{r:?}");
    stack.stop().await;
}

#[tokio::test]
async fn a_locked_account_gives_account_locked_and_no_attempt_is_ever_repeated() {
    let stack = Stack::start(|_| {}).await;
    for _ in 0..3 {
        let r = stack.verify(WRONG_PASSWORD, 97).await;
        assert_eq!(outcome(&r), VerifyOutcome::InvalidCredentials);
    }
    let r = stack.verify(SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::AccountLocked, "{r:?}");
    assert_eq!((r.http_status, r.realm.as_str()), (403, ""));
    let stats = stack.mock.stats();
    assert_eq!(
        (stats.auth_requests, stats.failed_logins),
        (4, 3),
        "one request per verification"
    );
    assert!(stack.mock.declarant(1).unwrap().locked);
    stack.stop().await;
}

#[tokio::test]
async fn a_request_refused_by_the_form_checks_gives_rejected_format() {
    let stack = Stack::start(|s| s.form.nom_max = 5).await;
    let r = stack.verify(SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::RejectedFormat, "{r:?}");
    assert_eq!(r.http_status, 422);
    stack.stop().await;
}

#[tokio::test]
async fn a_server_error_gives_unexpected_with_its_status() {
    let stack = Stack::start(|_| {}).await;
    let r = stack
        .verify(
            Account {
                nom: "kaboom",
                ..SIMULATOR
            },
            97,
        )
        .await;
    assert_eq!(outcome(&r), VerifyOutcome::Unexpected, "{r:?}");
    assert_eq!(r.http_status, 500);
    assert!(r.message.contains("500"));
    stack.stop().await;
}

#[tokio::test]
async fn an_unavailable_service_gives_unavailable_at_the_http_step_without_retry_in_extended_mode()
{
    let stack = Stack::start(|_| {}).await;
    stack.fault(FaultMode::Unavailable, 0);
    let r = stack.verify(SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    assert_eq!(r.http_status, 503);
    assert_eq!(probe_step(&r), ProbeStep::Http);

    let extended = stack.network(
        ConnectionMode::Extended,
        &format!("{}/authentifier/1.0/", stack.mock_https),
    );
    let started = std::time::Instant::now();
    let r = stack.verify_with(extended, SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a 503 is not tried again"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_missing_service_path_gives_unavailable_at_the_http_step() {
    let stack = Stack::start(|_| {}).await;
    let network = stack.network(
        ConnectionMode::Secure,
        &format!("{}/authentifier/9.9/", stack.mock_https),
    );
    let r = stack.verify_with(network, SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    assert_eq!((r.http_status, probe_step(&r)), (404, ProbeStep::Http));
    stack.stop().await;
}

#[tokio::test]
async fn a_slow_service_gives_unavailable_at_the_timeout_step() {
    let stack = Stack::start(|_| {}).await;
    stack.fault(FaultMode::Slow, 5_000);
    let started = std::time::Instant::now();
    let r = stack.verify(SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    assert_eq!(probe_step(&r), ProbeStep::Timeout, "{r:?}");
    assert_eq!(r.http_status, 0);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the agent's bound applies"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_connection_reset_gives_unavailable_at_the_connect_step() {
    let stack = Stack::start(|_| {}).await;
    stack.fault(FaultMode::Reset, 0);
    let r = stack.verify(SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    // The mock closes each new connection with a TCP reset before TLS: nothing left.
    assert_eq!(probe_step(&r), ProbeStep::Connect, "{r:?}");
    assert_eq!(stack.auth_requests(), 0);
    stack.stop().await;
}

#[tokio::test]
async fn after_a_server_in_trouble_the_next_verification_starts_on_a_new_connection() {
    let stack = Stack::start(|_| {}).await;
    assert_eq!(
        outcome(&stack.verify(SIMULATOR, 97).await),
        VerifyOutcome::Valid
    );
    stack.fault(FaultMode::Unavailable, 0);
    assert_eq!(
        outcome(&stack.verify(SIMULATOR, 97).await),
        VerifyOutcome::Unavailable
    );
    // The kit resets new connections only: a kept one would still be answered.
    stack.fault(FaultMode::Reset, 0);
    let r = stack.verify(SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    assert_eq!(probe_step(&r), ProbeStep::Connect, "{r:?}");
    stack.fault(FaultMode::None, 0);
    assert_eq!(
        outcome(&stack.verify(SIMULATOR, 97).await),
        VerifyOutcome::Valid
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_closed_port_gives_unavailable_at_the_connect_step() {
    let stack = Stack::start(|_| {}).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let network = stack.network(
        ConnectionMode::Secure,
        &format!("https://127.0.0.1:{closed}/authentifier/1.0/"),
    );
    let r = stack.verify_with(network, SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    assert_eq!(probe_step(&r), ProbeStep::Connect, "{r:?}");
    stack.stop().await;
}

#[tokio::test]
async fn a_server_certificate_from_another_authority_is_refused_at_the_tls_step() {
    let stack = Stack::start(|_| {}).await;
    let mut network = stack.secure();
    network.extra_ca_pem = CertificateAuthority::new("not the mocks CA")
        .unwrap()
        .cert_pem()
        .to_owned();
    let r = stack.verify_with(network, SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    let probe = r.probe.clone().unwrap();
    assert_eq!(probe_step(&r), ProbeStep::Tls);
    assert_eq!(
        TlsProblem::try_from(probe.tls_problem).unwrap(),
        TlsProblem::UnknownAuthority
    );
    assert_eq!(stack.auth_requests(), 0, "nothing was sent");
    stack.stop().await;
}

#[tokio::test]
async fn each_input_problem_is_named_and_leaves_the_mock_untouched() {
    let stack = Stack::start(|_| {}).await;
    let cases: &[(Identity, &str, &str)] = &[
        (
            Account {
                siret: "99900000300016",
                ..SIMULATOR
            },
            "siret",
            "bad_check_digit",
        ),
        (
            Account {
                siret: "9990000030001",
                ..SIMULATOR
            },
            "siret",
            "wrong_length",
        ),
        (
            Account {
                nom: " declarant",
                ..SIMULATOR
            },
            "nom",
            "leading_space",
        ),
        (
            Account {
                prenom: "declarant ",
                ..SIMULATOR
            },
            "prenom",
            "trailing_space",
        ),
        (
            Account {
                nom: "decl\u{a0}arant",
                ..SIMULATOR
            },
            "nom",
            "non_breaking_space",
        ),
        (
            Account {
                prenom: "decla\u{200b}rant",
                ..SIMULATOR
            },
            "prenom",
            "zero_width",
        ),
        (
            Account {
                password: "Refonte01\r",
                ..SIMULATOR
            },
            "password",
            "control_character",
        ),
        (
            Account {
                password: "Refonte01Refonte01Refonte01Refonte01",
                ..SIMULATOR
            },
            "password",
            "too_long",
        ),
        (
            Account {
                password: "",
                ..SIMULATOR
            },
            "password",
            "empty",
        ),
    ];
    for (identity, field, code) in cases {
        let r = stack.verify(*identity, 97).await;
        assert_eq!(outcome(&r), VerifyOutcome::InvalidInput, "{identity:?}");
        assert!(
            r.input_problems
                .iter()
                .any(|p| p.field == *field && p.code == *code),
            "{identity:?}: {:?}",
            r.input_problems
        );
        assert_eq!(r.http_status, 0);
        for text in r
            .input_problems
            .iter()
            .map(|p| p.message.as_str())
            .chain([r.message.as_str()])
        {
            assert!(!text.contains(SIMULATOR.password), "{text}");
        }
    }
    assert_eq!(stack.auth_requests(), 0, "nothing reached the mock");
    // A SIRET typed in groups is normalised, not refused.
    let r = stack
        .verify(
            Account {
                siret: "999 000 003 00015",
                ..SIMULATOR
            },
            97,
        )
        .await;
    assert_eq!(outcome(&r), VerifyOutcome::Valid, "{r:?}");
    stack.stop().await;
}

#[tokio::test]
async fn unusable_network_settings_give_unavailable_at_the_address_step_after_the_input_checks() {
    let stack = Stack::start(|_| {}).await;
    let plain = stack.network(
        ConnectionMode::Secure,
        &format!("http://{}", stack.mock_https.trim_start_matches("https://")),
    );
    let r = stack.verify_with(plain.clone(), SIMULATOR, 97).await;
    assert_eq!(outcome(&r), VerifyOutcome::Unavailable, "{r:?}");
    assert_eq!(probe_step(&r), ProbeStep::Address);
    let r = stack
        .verify_with(
            plain,
            Account {
                siret: "1",
                ..SIMULATOR
            },
            97,
        )
        .await;
    assert_eq!(outcome(&r), VerifyOutcome::InvalidInput, "{r:?}");
    assert_eq!(stack.auth_requests(), 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_service_code_of_three_digits_is_sent_and_rejected_by_the_form_checks() {
    let stack = Stack::start(|_| {}).await;
    let r = stack.verify(SIMULATOR, 100).await;
    assert_eq!(outcome(&r), VerifyOutcome::RejectedFormat, "{r:?}");
    assert_eq!(r.http_status, 422);
    stack.stop().await;
}

#[tokio::test]
async fn a_missing_service_code_is_an_invalid_argument() {
    let stack = Stack::start(|_| {}).await;
    let request = VerifyRequest {
        network: Some(stack.secure()),
        identity: Some(DeclarantIdentity {
            siret: SIMULATOR.siret.into(),
            nom: SIMULATOR.nom.into(),
            prenom: SIMULATOR.prenom.into(),
            password: SIMULATOR.password.into(),
        }),
        service: 0,
    };
    let status = stack.agent.clone().verify(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(stack.auth_requests(), 0);
    stack.stop().await;
}

fn item(id: u64, identity: Identity) -> VerifyManyItem {
    let Account {
        siret,
        nom,
        prenom,
        password,
        ..
    } = identity;
    VerifyManyItem {
        id,
        identity: Some(DeclarantIdentity {
            siret: siret.into(),
            nom: nom.into(),
            prenom: prenom.into(),
            password: password.into(),
        }),
    }
}

/// One message of a `VerifyMany` stream with one identity (and, for a first message,
/// the stream's settings and service code).
fn many(id: u64, identity: Identity, first: Option<(NetworkSettings, u32)>) -> VerifyManyRequest {
    let (network, service) = first.map_or((None, 0), |(n, s)| (Some(n), s));
    VerifyManyRequest {
        network,
        service,
        concurrency: 0,
        items: vec![item(id, identity)],
    }
}

/// Every answer of a `VerifyMany` stream, whatever the messages that carried them.
async fn answers_of(responses: tonic::Streaming<VerifyManyResponse>) -> Vec<VerifyManyAnswer> {
    responses
        .flat_map(|r| futures::stream::iter(r.unwrap().answers))
        .collect()
        .await
}

#[tokio::test]
async fn many_verifications_on_one_stream_answer_each_id_once_with_the_first_message_settings() {
    let stack = Stack::start(|_| {}).await;
    // The first message's settings hold for the stream: later ones are ignored, even
    // unusable ones.
    let mut broken = stack.secure();
    broken.address = "pas une adresse".into();
    let mut requests = vec![many(1, SIMULATOR, Some((stack.secure(), 97)))];
    let identity = |id: u64| match id % 3 {
        0 => WRONG_PASSWORD,
        1 => Account {
            nom: " declarant",
            ..SIMULATOR
        },
        _ => SIMULATOR,
    };
    for id in 2..=10 {
        // The simulator is registered to service 97 only: 25 would give not_registered.
        let settings = (id == 2).then(|| (broken.clone(), 25));
        requests.push(many(id, identity(id), settings));
    }
    // Several identities in one message.
    let mut last = many(11, identity(11), None);
    last.items
        .extend((12..=20).map(|id| item(id, identity(id))));
    requests.push(last);
    let mut answers: Vec<(u64, VerifyOutcome)> = answers_of(stack.verify_many(requests).await)
        .await
        .into_iter()
        .map(|a| (a.id, outcome(&a.result.unwrap())))
        .collect();
    answers.sort_by_key(|a| a.0);
    let expected: Vec<_> = (1..=20)
        .map(|id| {
            let o = match id % 3 {
                _ if id == 1 => VerifyOutcome::Valid,
                0 => VerifyOutcome::InvalidCredentials,
                1 => VerifyOutcome::InvalidInput,
                _ => VerifyOutcome::Valid,
            };
            (id, o)
        })
        .collect();
    assert_eq!(answers, expected);
    // One attempt per identity that passed the input checks, none for the others.
    let sent = expected
        .iter()
        .filter(|(_, o)| *o != VerifyOutcome::InvalidInput)
        .count() as u64;
    assert_eq!(stack.auth_requests(), sent);
    stack.stop().await;
}

#[tokio::test]
async fn a_stream_whose_first_message_has_no_service_code_ends_with_invalid_argument() {
    let stack = Stack::start(|_| {}).await;
    let requests = vec![
        many(1, SIMULATOR, Some((stack.secure(), 0))),
        many(2, SIMULATOR, None),
    ];
    let mut answers = stack.verify_many(requests).await;
    let status = answers.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(answers.next().await.is_none());
    assert_eq!(stack.auth_requests(), 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_stream_authenticates_no_more_identities_at_once_than_its_concurrency() {
    let stack = Stack::start(|_| {}).await;
    // Each authentication takes 150 ms: eight at two at a time take four times that,
    // all at once (the 64 the agent takes) about one.
    stack.fault(FaultMode::Slow, 150);
    let mut first = many(1, SIMULATOR, Some((stack.secure(), 97)));
    first.concurrency = 2;
    let mut requests = vec![first];
    requests.extend((2..=8).map(|id| many(id, SIMULATOR, None)));
    let started = std::time::Instant::now();
    let answers: Vec<VerifyOutcome> = answers_of(stack.verify_many(requests).await)
        .await
        .into_iter()
        .map(|a| outcome(&a.result.unwrap()))
        .collect();
    assert_eq!(answers, vec![VerifyOutcome::Valid; 8]);
    assert!(
        started.elapsed() >= Duration::from_millis(4 * 150),
        "{:?}",
        started.elapsed()
    );
    stack.stop().await;
}
