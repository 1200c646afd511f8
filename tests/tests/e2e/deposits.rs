//! DSN deposits end to end: front-end API → orchestrator's queue → deposit agent →
//! Net-entreprises mock, with the mock's faults (rejection, lost answer, lost request,
//! unavailable) and its control API as the witness of what reached it.

use std::time::Duration;

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::*;
use tonic::Code;

use crate::helpers::{MockAdmin, TestStack, authed};

const ADMIN: &str = "Administrateur";
const SIRET: &str = DUPONT.siret;
const NOM: &str = DUPONT.nom;
const PRENOM: &str = DUPONT.prenom;
const PASSWORD: &str = DUPONT.password;

/// A stack whose deposit queue retries within a second and settles a lost request after
/// a short window (a real installation waits longer: clock skew, registration delays).
async fn stack() -> TestStack {
    TestStack::start_with(|s| {
        s.deposits.poll_interval_ms = 100;
        s.deposits.retry_delay_secs = 1;
        s.deposits.window_margin_secs = 2;
    })
    .await
}

struct Env {
    t: TestStack,
    token: String,
    deposits: DepositsClient<tonic::transport::Channel>,
    ne: MockAdmin,
}

impl Env {
    async fn start() -> Self {
        Self::on(stack().await).await
    }

    /// On the stack `t`, the administrator signed in.
    async fn on(t: TestStack) -> Self {
        let token = t.login_admin().await;
        let deposits = DepositsClient::new(t.channel().await);
        let ne = t.mock("net-entreprises");
        Self {
            t,
            token,
            deposits,
            ne,
        }
    }

    /// A stack with the orchestrator's settings changed by `tweak`, the administrator
    /// signed in with the declarant's identity set (its password `password`).
    async fn with_admin_identity_on(
        tweak: impl FnOnce(&mut iea_orchestrator::Settings) + Send + 'static,
        password: &str,
    ) -> Self {
        let env = Self::on(TestStack::start_with(tweak).await).await;
        env.set_identity(ADMIN, &env.t.admin_password(), password)
            .await;
        env
    }

    async fn set_identity(&self, user: &str, account_password: &str, password: &str) {
        CredentialsClient::new(self.t.channel().await)
            .set_credentials(authed(
                &self.token,
                SetCredentialsRequest {
                    user: user.into(),
                    account_password: account_password.into(),
                    identity: Some(NetEntreprisesIdentity {
                        siret: SIRET.into(),
                        nom: NOM.into(),
                        prenom: PRENOM.into(),
                        password: password.into(),
                    }),
                },
            ))
            .await
            .expect("identity set");
    }

    async fn with_admin_identity() -> Self {
        let env = Self::start().await;
        env.set_identity(ADMIN, &env.t.admin_password(), PASSWORD)
            .await;
        env
    }

    async fn upload(
        &self,
        token: &str,
        bytes: &[u8],
        user: &str,
    ) -> Result<DsnDeposit, tonic::Status> {
        upload(&mut self.deposits.clone(), token, bytes, user).await
    }

    /// Designates (as `token`'s account) `user` to deposit for `siret`.
    async fn designate(&self, token: &str, siret: &str, user: &str) -> Result<(), tonic::Status> {
        let request = SetDepositAccountRequest {
            siret: siret.into(),
            user: user.into(),
        };
        self.deposits
            .clone()
            .set_deposit_account(authed(token, request))
            .await
            .map(drop)
    }

    async fn get(&self, id: i64) -> DsnDeposit {
        self.deposits
            .clone()
            .get_deposit(authed(&self.token, GetDsnDepositRequest { id }))
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits (at most 30 s) until the deposit satisfies `pred`.
    async fn until(&self, id: i64, pred: impl Fn(&DsnDeposit) -> bool) -> DsnDeposit {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.get(id).await;
            if pred(&d) {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "deposit {id} never reached the condition; last: {d:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn settled(&self, id: i64) -> DsnDeposit {
        self.until(id, |d| d.settled).await
    }

    /// The deposits the mock registered.
    async fn registered(&self) -> Vec<serde_json::Value> {
        self.ne
            .get("/deposits")
            .await
            .as_array()
            .expect("an array of deposits")
            .clone()
    }

    async fn deposit_requests(&self) -> u64 {
        self.ne.get("/stats").await["services"]["/deposer-dsn/1.0/"]["requests"]
            .as_u64()
            .unwrap_or(0)
    }
}

pub async fn upload(
    client: &mut DepositsClient<tonic::transport::Channel>,
    token: &str,
    bytes: &[u8],
    user: &str,
) -> Result<DsnDeposit, tonic::Status> {
    let messages = iea_stack_testkit::dsn_upload_as("DSN_novembre.txt", bytes, user, 7000);
    client
        .deposit(authed(token, tokio_stream::iter(messages)))
        .await
        .map(tonic::Response::into_inner)
}

fn sample(month: u8, employees: usize, seed: u64) -> Vec<u8> {
    let mut spec =
        iea_dsn::SampleSpec::new(SIRET, iea_dsn::Month::new(2026, month).unwrap(), employees);
    spec.seed = seed;
    iea_dsn::sample(&spec)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn an_accepted_deposit_has_the_mocks_idflux_and_its_file_is_kept_private() {
    let env = Env::with_admin_identity().await;
    let file = sample(11, 3, 1);
    let d = env.upload(&env.token, &file, "").await.expect("recorded");
    assert_eq!((d.siret.as_str(), d.month.as_str()), (SIRET, "2026-11"));
    assert_eq!(d.sha256, sha256_hex(&file));
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    assert_eq!(d.account, ADMIN);
    let registered = env.registered().await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0]["idflux"], d.idflux.as_str());
    assert_eq!(d.idflux.len(), 23);
    // What reached the mock is the file, byte for byte.
    assert_eq!(registered[0]["sha256"], d.sha256.as_str());
    assert_eq!(registered[0]["siret"], SIRET);
    // The mock never had to refuse our request's form (415, 406, 422).
    let stats = env.ne.get("/stats").await;
    let by_status = &stats["services"]["/deposer-dsn/1.0/"]["by_status"];
    assert_eq!(by_status["200"], 1, "{stats:#}");
    // The stored file: the same bytes, mode 0600.
    let stored = env
        .t
        .dir
        .path()
        .join("dsn/store")
        .join(format!("{}.dsn", d.sha256));
    assert_eq!(std::fs::read(&stored).unwrap(), file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir = std::fs::metadata(stored.parent().unwrap()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700, "dsn/store");
    }
    // The same file again is refused, and nothing is sent.
    let again = env.upload(&env.token, &file, "").await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(
        again.message().contains("déjà été déposé"),
        "{}",
        again.message()
    );
    // So is another normal declaration of the same month; an "annule et remplace" is not.
    let other = env
        .upload(&env.token, &sample(11, 4, 2), "")
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    assert!(other.message().contains("annule et remplace"));
    let mut spec = iea_dsn::SampleSpec::new(SIRET, iea_dsn::Month::new(2026, 11).unwrap(), 4);
    spec.kind = iea_dsn::DeclarationKind::CancelsAndReplaces;
    let replace = env
        .upload(&env.token, &iea_dsn::sample(&spec), "")
        .await
        .expect("an annule et remplace is taken");
    assert_eq!(env.settled(replace.id).await.state, "accepted");
    assert_eq!(env.registered().await.len(), 2);
    env.t.stop().await;
}

#[tokio::test]
async fn a_rejected_deposit_shows_the_are_code_and_message() {
    let env = Env::with_admin_identity().await;
    env.ne
        .faults(serde_json::json!({"reject_deposits": {
            "code": "B1-105-15",
            "message": "Le SIRET de l'émetteur est inconnu."
        }}))
        .await;
    let d = env.upload(&env.token, &sample(10, 2, 3), "").await.unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "rejected", "{d:#?}");
    assert_eq!(d.anomalies.len(), 1);
    assert_eq!(d.anomalies[0].code, "B1-105-15");
    assert_eq!(
        d.anomalies[0].message,
        "Le SIRET de l'émetteur est inconnu."
    );
    assert!(d.message.contains("rejeté"), "{}", d.message);
    assert!(d.message.contains("B1-105-15"));
    assert_eq!(env.registered().await[0]["status"], "KO");
    env.t.stop().await;
}

/// An ARE of 250 anomalies: the deposit keeps the first 100 and says how many more there
/// were, to a program (`anomalies_omitted`) and to a person (its message).
#[tokio::test]
async fn a_rejection_with_many_anomalies_keeps_a_hundred_and_counts_the_rest() {
    let env = Env::with_admin_identity().await;
    env.ne
        .faults(serde_json::json!({"reject_deposits": {
            "code": "B1-105-15",
            "message": "Le SIRET de l'émetteur est inconnu.",
            "count": 250
        }}))
        .await;
    let d = env.upload(&env.token, &sample(10, 2, 3), "").await.unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "rejected", "{d:#?}");
    assert_eq!(d.anomalies.len(), 100);
    assert_eq!(d.anomalies_omitted, 150);
    assert_eq!(
        d.anomalies[99].message,
        "Le SIRET de l'émetteur est inconnu. (anomalie 100 sur 250)"
    );
    assert!(d.message.contains("autres anomalies"), "{}", d.message);
    assert!(d.message.chars().count() <= 1_500, "{}", d.message);
    env.t.stop().await;
}

#[tokio::test]
async fn a_refused_authentication_counts_against_the_budget_and_nothing_else_is_sent() {
    let env = Env::start().await;
    env.set_identity(ADMIN, &env.t.admin_password(), "Mauvais-mot-de-passe")
        .await;
    let auth_before = env.ne.auth_requests().await;
    let d = env.upload(&env.token, &sample(9, 2, 4), "").await.unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "waiting", "{d:#?}");
    assert!(d.message.contains("refusé"), "{}", d.message);
    assert_eq!(env.ne.auth_requests().await, auth_before + 1);
    assert_eq!(env.deposit_requests().await, 0);
    let summary = CredentialsClient::new(env.t.channel().await)
        .get_credentials(authed(
            &env.token,
            GetCredentialsRequest { user: ADMIN.into() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.consecutive_failures, 1);
    // The worker looks at the queue every 100 ms: ten rounds later, still nothing sent.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(env.ne.auth_requests().await, auth_before + 1);
    assert_eq!(env.get(d.id).await.state, "waiting");
    // Once the identity is corrected, the deposit goes by itself.
    env.set_identity(ADMIN, &env.t.admin_password(), PASSWORD)
        .await;
    let d = env.until(d.id, |d| d.state == "accepted").await;
    assert_eq!(env.registered().await[0]["idflux"], d.idflux.as_str());
    env.t.stop().await;
}

#[tokio::test]
async fn an_unavailable_service_before_sending_keeps_the_deposit_queued_then_it_goes() {
    let env = Env::with_admin_identity().await;
    env.ne
        .faults(serde_json::json!({"mode": "unavailable"}))
        .await;
    let d = env.upload(&env.token, &sample(8, 2, 5), "").await.unwrap();
    let d = env
        .until(d.id, |d| d.state == "queued" && d.attempts >= 1)
        .await;
    // What happened (at the authentication, the first request), then what happens next:
    // the orchestrator tries again by itself, so the sentence does not ask the person to.
    assert!(
        d.message.starts_with("La DSN n'a pas été déposée : ")
            && d.message.contains("injoignable ou indisponible")
            && d.message.contains("(code HTTP 503)")
            && d.message.ends_with(" s.")
            && d.message.contains(" Nouvel essai automatique dans ")
            && !d.message.contains("Réessayez"),
        "{}",
        d.message
    );
    assert!(env.registered().await.is_empty());
    env.ne.faults(serde_json::json!({})).await;
    let d = env.until(d.id, |d| d.state == "accepted").await;
    let registered = env.registered().await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0]["idflux"], d.idflux.as_str());
    env.t.stop().await;
}

#[tokio::test]
async fn a_lost_answer_is_found_in_the_listing_and_never_sent_twice() {
    let env = Env::with_admin_identity().await;
    env.ne.faults(serde_json::json!({"lost_answer": 1})).await;
    let d = env.upload(&env.token, &sample(7, 2, 6), "").await.unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    assert!(d.message.contains("liste des dépôts"), "{}", d.message);
    let registered = env.registered().await;
    assert_eq!(registered.len(), 1, "{registered:#?}");
    assert_eq!(registered[0]["idflux"], d.idflux.as_str());
    assert_eq!(env.deposit_requests().await, 1);
    assert_eq!(d.attempts, 1);
    env.t.stop().await;
}

#[tokio::test]
async fn a_lost_request_is_sent_again_once_the_listing_shows_nothing() {
    let env = Env::with_admin_identity().await;
    env.ne.faults(serde_json::json!({"lost_request": 1})).await;
    let d = env.upload(&env.token, &sample(6, 2, 7), "").await.unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    let registered = env.registered().await;
    assert_eq!(registered.len(), 1, "{registered:#?}");
    assert_eq!(registered[0]["idflux"], d.idflux.as_str());
    assert_eq!(env.deposit_requests().await, 2);
    assert_eq!(d.attempts, 2);
    env.t.stop().await;
}

/// Two deposits of the declarant unknown to us in the window: a person decides.
#[tokio::test]
async fn several_candidates_in_the_listing_are_left_to_a_person() {
    let env = Env::with_admin_identity().await;
    // Someone else (the declarant on the portal) deposits while our answer is lost.
    let other = sample(5, 1, 8);
    deposit_directly(&env, &other).await;
    env.ne.faults(serde_json::json!({"lost_answer": 1})).await;
    let d = env.upload(&env.token, &sample(5, 2, 9), "").await.unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "to_check", "{d:#?}");
    assert_eq!(d.candidates.len(), 2);
    assert!(d.message.contains("iea dsn resolve"), "{}", d.message);
    let ours = env
        .registered()
        .await
        .into_iter()
        .find(|r| r["sha256"] == d.sha256.as_str())
        .unwrap();
    let resolved = env
        .deposits
        .clone()
        .resolve_deposit(authed(
            &env.token,
            ResolveDsnDepositRequest {
                id: d.id,
                resolution: Some(resolve_dsn_deposit_request::Resolution::Idflux(
                    ours["idflux"].as_str().unwrap().into(),
                )),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.state, "accepted");
    assert_eq!(resolved.idflux, ours["idflux"].as_str().unwrap());
    assert_eq!(env.registered().await.len(), 2);
    env.t.stop().await;
}

/// A deposit made outside iea-connect, with the same declarant's identity.
async fn deposit_directly(env: &Env, dsn: &[u8]) {
    use std::io::Write;
    let https = env.t.file().mocks["net-entreprises"].https.clone();
    let ca = std::fs::read(&env.t.file().mocks_ca).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let body = format!(
        "<identifiants><siret>{SIRET}</siret><nom>{NOM}</nom><prenom>{PRENOM}</prenom>\
         <motdepasse>{PASSWORD}</motdepasse><service>25</service></identifiants>"
    );
    let token = client
        .post(format!("{https}/authentifier/1.0/"))
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(dsn).unwrap();
    let status = client
        .post(format!("{https}/deposer-dsn/1.0/"))
        .header("Authorization", format!("DSNLogin jeton={}", token.trim()))
        .header("Content-Type", "text/plain")
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn each_bad_file_is_named_with_its_line_and_nothing_reaches_the_mock() {
    let env = Env::with_admin_identity().await;
    // The file is ISO-8859-1: one char per byte, and back.
    let good: String = sample(4, 2, 10).iter().map(|b| char::from(*b)).collect();
    let lines: Vec<&str> = good.lines().collect();
    let with = |f: &dyn Fn(&mut Vec<String>)| {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        f(&mut l);
        let mut s = l.join("\n");
        s.push('\n');
        s.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect::<Vec<u8>>()
    };
    // "Éditeur" written in UTF-8: its two bytes for É, as ISO-8859-1 chars.
    let utf8: String = "S10.G00.00.002,'Éditeur'".bytes().map(char::from).collect();
    let line_of = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap() + 1;
    let month_line = line_of("S20.G00.05.005");
    let nic_line = line_of("S21.G00.11.001");
    let mut cases: Vec<(&str, Vec<u8>, Option<usize>)> = vec![
        ("empty", Vec::new(), None),
        ("utf-8", with(&|l| l[1] = utf8.clone()), Some(2)),
        (
            "not a rubric",
            with(&|l| l.insert(3, "bonjour".into())),
            Some(4),
        ),
        (
            "month",
            with(&|l| l[month_line - 1] = "S20.G00.05.005,'01132026'".into()),
            Some(month_line),
        ),
        (
            "siret",
            with(&|l| l[nic_line - 1] = "S21.G00.11.001,'00011'".into()),
            Some(nic_line),
        ),
        (
            "total",
            with(&|l| {
                let n = l.len();
                l[n - 2] = "S90.G00.90.001,'3'".into()
            }),
            Some(lines.len() - 1),
        ),
    ];
    // Next month in Paris: a month typed wrong, refused at its line like the others.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let next = iea_dsn::Month::in_paris_at(now).next();
    cases.push((
        "month not begun",
        iea_dsn::sample(&iea_dsn::SampleSpec::new(SIRET, next, 2)),
        Some(month_line),
    ));
    for (name, bytes, line) in cases {
        let e = env.upload(&env.token, &bytes, "").await.unwrap_err();
        let message = e.message().to_owned();
        match line {
            Some(n) => {
                assert_eq!(e.code(), Code::InvalidArgument, "{name}: {message}");
                assert!(
                    message.contains(&format!("ligne {n} ")),
                    "{name}: line {n} not named in {message}"
                );
            }
            None => assert!(
                e.code() == Code::InvalidArgument && message.contains("vide"),
                "{name}: {message}"
            ),
        }
        if name == "month not begun" {
            assert!(
                message.contains("n'a pas encore commencé"),
                "{name}: {message}"
            );
            assert_eq!(
                iea_proto::error::ApiError::from_status(&e).code,
                "bad_dsn_file"
            );
        }
    }
    // A large file with 100,000 bad lines: a clear refusal (was one sentence per bad line,
    // too large for gRPC's trailers: « Une erreur inattendue est survenue »), its first
    // problems in line order and one sentence counting the others.
    let mut big = sample(5, 1000, 12);
    let first_bad = big.iter().filter(|b| **b == b'\n').count() + 1;
    for i in 0..100_000 {
        big.extend_from_slice(format!("ligne de trop {i}\n").as_bytes());
    }
    let e = env.upload(&env.token, &big, "").await.unwrap_err();
    let message = e.message().to_owned();
    assert_eq!(e.code(), Code::InvalidArgument, "{message}");
    let typed = iea_proto::error::ApiError::from_status(&e);
    assert_eq!(typed.code, "bad_dsn_file");
    assert!(message.contains(&format!("\nligne {} : S90.G00.90.001", first_bad - 2)));
    assert!(message.contains(&format!("\nligne {first_bad} : code de rubrique")));
    let listed = message.lines().filter(|l| l.starts_with("ligne ")).count();
    assert!((10..100).contains(&listed), "{message}");
    // 100,000 bad lines and the wrong line total: every one listed or counted.
    assert_eq!(
        message.lines().last().unwrap(),
        format!(
            "… et {} autres problèmes (seuls les {listed} premiers sont listés).",
            iea_dsn::group_thousands(100_001 - listed)
        ),
    );
    assert!(env.registered().await.is_empty());
    assert_eq!(env.deposit_requests().await, 0);
    let listed = env
        .deposits
        .clone()
        .list_deposits(authed(&env.token, ListDsnDepositsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.deposits.is_empty());
    // Nothing was left in the store either.
    let stored: Vec<_> = std::fs::read_dir(env.t.dir.path().join("dsn/store"))
        .unwrap()
        .collect();
    assert!(stored.is_empty(), "{stored:?}");
    env.t.stop().await;
}

#[tokio::test]
async fn a_user_deposits_only_with_their_own_identity() {
    let env = Env::with_admin_identity().await;
    env.t
        .add_user(&env.token, "Martin", "Mot-de-passe-Martin")
        .await;
    let martin = env.t.login("Martin", "Mot-de-passe-Martin").await;
    let file = sample(3, 2, 11);
    let e = env.upload(&martin, &file, ADMIN).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("vos propres identifiants"));
    // Without naming anyone, Martin deposits with his own identity, which he lacks.
    let d = env.upload(&martin, &file, "").await.unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "waiting");
    assert_eq!(d.account, "Martin");
    assert!(
        d.message.contains("n'a pas d'identifiants"),
        "{}",
        d.message
    );
    // Martin sees his deposit, not the administrator's.
    let admin_one = env.upload(&env.token, &sample(2, 2, 12), "").await.unwrap();
    let mine = env
        .deposits
        .clone()
        .list_deposits(authed(&martin, ListDsnDepositsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mine.deposits.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![d.id]
    );
    let hidden = env
        .deposits
        .clone()
        .get_deposit(authed(&martin, GetDsnDepositRequest { id: admin_one.id }))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    // Only an administrator designates the account of an establishment.
    let e = env.designate(&martin, SIRET, "Martin").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(env.settled(admin_one.id).await.state, "accepted");
    assert_eq!(env.registered().await.len(), 1);
    env.t.stop().await;
}

/// The account that deposits for an establishment is designated for a valid SIRET only:
/// typed in groups it is normalised; with a wrong key (a typo) it is refused with the
/// reason, and nothing is designated.
#[tokio::test]
async fn an_establishments_account_is_designated_for_a_valid_siret_only() {
    let env = Env::start().await;
    async fn accounts(env: &Env) -> Vec<(String, String)> {
        env.deposits
            .clone()
            .list_deposit_accounts(authed(&env.token, ListDepositAccountsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .accounts
            .into_iter()
            .map(|a| (a.siret, a.user))
            .collect()
    }
    // SIRET with its last digit wrong: its key fails.
    let typo = format!("{}{}", &SIRET[..13], (SIRET.as_bytes()[13] - b'0' + 1) % 10);
    let e = env.designate(&env.token, &typo, ADMIN).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("clé de contrôle"), "{}", e.message());
    let e = env.designate(&env.token, "1234", ADMIN).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("14 chiffres"), "{}", e.message());
    assert_eq!(accounts(&env).await, []);
    let grouped = format!(
        "{} {} {} {}",
        &SIRET[..3],
        &SIRET[3..6],
        &SIRET[6..9],
        &SIRET[9..]
    );
    env.designate(&env.token, &grouped, ADMIN).await.unwrap();
    assert_eq!(accounts(&env).await, [(SIRET.to_owned(), ADMIN.to_owned())]);
    env.t.stop().await;
}

/// The account designated to deposit for an establishment cannot be removed until
/// another is designated: removed, the establishment's deposits would go out with
/// another identity (the default) without anyone having said so.
#[tokio::test]
async fn the_account_that_deposits_for_an_establishment_is_not_removed() {
    use iea_proto::v1::users_client::UsersClient;
    let env = Env::start().await;
    env.t
        .add_user(&env.token, "Martin", "Mot-de-passe-Martin")
        .await;
    env.designate(&env.token, SIRET, "Martin").await.unwrap();
    let mut users = UsersClient::new(env.t.channel().await);
    let remove = || RemoveUserRequest {
        name: "Martin".into(),
    };
    let e = users
        .remove_user(authed(&env.token, remove()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(
        iea_proto::error::ApiError::from_status(&e).code,
        "account_in_use"
    );
    assert_eq!(
        e.message(),
        format!(
            "Le compte « Martin » ne peut pas être supprimé : il dépose les DSN de \
             l'établissement {SIRET} (désignez d'abord un autre compte : iea dsn accounts set \
             --siret {SIRET} --user NOM). Pour lui retirer l'accès dès maintenant, changez son \
             mot de passe."
        )
    );
    env.designate(&env.token, SIRET, ADMIN).await.unwrap();
    users
        .remove_user(authed(&env.token, remove()))
        .await
        .unwrap();
    env.t.stop().await;
}

/// The deposit agent is down when the deposit goes out: the call gives no answer, so the
/// deposit is uncertain, never sent again blindly; once the agent is back, the listing
/// shows nothing, and only then is it sent, once.
#[tokio::test]
async fn with_the_deposit_agent_down_the_deposit_waits_for_the_listing_then_goes_once() {
    let mut env = Env::with_admin_identity().await;
    env.t.stop_agent("deposit-agent").await;
    let d = env.upload(&env.token, &sample(1, 2, 13), "").await.unwrap();
    let d = env
        .until(d.id, |d| d.state == "uncertain" && d.attempts == 1)
        .await;
    assert!(d.message.contains("liste des dépôts"), "{}", d.message);
    assert_eq!(env.deposit_requests().await, 0);
    env.t.start_agent("deposit-agent").await;
    let d = env.until(d.id, |d| d.state == "accepted").await;
    assert_eq!(d.attempts, 2);
    let registered = env.registered().await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0]["idflux"], d.idflux.as_str());
    env.t.stop().await;
}

/// Waits (at most 30 s) until `path` exists.
async fn appears(path: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Automatic mode: files the payroll program writes into the deposit folder are taken
/// only once complete, deposited once, and end in `deposes/` or `rejetes/` with their
/// reason, bytes unchanged.
#[tokio::test]
async fn the_deposit_folder_takes_only_complete_files_and_sorts_them_with_their_reason() {
    let env = Env::with_admin_identity_on(
        |s| {
            s.deposits.poll_interval_ms = 100;
            s.deposits.retry_delay_secs = 1;
            s.deposits.folder_settle_secs = 1;
        },
        PASSWORD,
    )
    .await;
    let folder = env.t.dir.path().join("dsn/a-deposer");
    appears(&folder).await;

    // Written as *.tmp, then renamed: the .tmp is never taken.
    let first = sample(11, 3, 20);
    std::fs::write(folder.join("DSN_11.tmp"), &first).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(folder.join("DSN_11.tmp"), open).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(folder.join("DSN_11.tmp").exists(), "a .tmp file was taken");
    std::fs::rename(folder.join("DSN_11.tmp"), folder.join("DSN_11.dsn")).unwrap();
    appears(&folder.join("deposes/DSN_11.dsn")).await;
    assert_eq!(
        std::fs::read(folder.join("deposes/DSN_11.dsn")).unwrap(),
        first
    );
    let motif = std::fs::read_to_string(folder.join("deposes/DSN_11.dsn.motif.txt")).unwrap();
    let registered = env.registered().await;
    assert_eq!(registered.len(), 1);
    assert!(
        motif.contains(registered[0]["idflux"].as_str().unwrap()),
        "{motif}"
    );
    assert!(motif.contains(", mois de novembre 2026."), "{motif}");
    assert_eq!(registered[0]["sha256"], sha256_hex(&first).as_str());

    // Written slowly: never taken while it grows.
    let second = sample(10, 40, 21);
    let path = folder.join("DSN_10.dsn");
    let parts = 5;
    let step = second.len().div_ceil(parts);
    for (i, piece) in second.chunks(step).enumerate() {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(piece).unwrap();
        drop(f);
        tokio::time::sleep(Duration::from_millis(400)).await;
        if i + 1 < parts {
            assert!(path.exists(), "taken after {} of {parts} parts", i + 1);
        }
    }
    appears(&folder.join("deposes/DSN_10.dsn")).await;
    assert_eq!(
        std::fs::read(folder.join("deposes/DSN_10.dsn")).unwrap(),
        second
    );
    let registered = env.registered().await;
    assert_eq!(registered.len(), 2);
    assert_eq!(registered[1]["sha256"], sha256_hex(&second).as_str());

    // A bad file goes to rejetes/ with its problems, nothing sent.
    let mut bad = sample(9, 2, 22);
    bad.truncate(bad.len() / 2);
    std::fs::write(folder.join("DSN_09.dsn"), &bad).unwrap();
    appears(&folder.join("rejetes/DSN_09.dsn.motif.txt")).await;
    appears(&folder.join("rejetes/DSN_09.dsn")).await;
    assert_eq!(
        std::fs::read(folder.join("rejetes/DSN_09.dsn")).unwrap(),
        bad
    );
    let motif = std::fs::read_to_string(folder.join("rejetes/DSN_09.dsn.motif.txt")).unwrap();
    assert!(
        motif.contains("ligne") || motif.contains("fichier :"),
        "{motif}"
    );
    assert!(motif.contains("Rien n'a été déposé"), "{motif}");
    assert_eq!(env.registered().await.len(), 2);
    // Whatever mode the payroll wrote them in (here 0644), the files we took hold
    // NIRs, names and pay: private from then on, and so is our folder of taken files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        for f in [
            "deposes/DSN_11.dsn",
            "deposes/DSN_10.dsn",
            "rejetes/DSN_09.dsn",
        ] {
            assert_eq!(mode(folder.join(f)), 0o600, "{f}");
        }
        let taken = std::fs::read_dir(folder.join("en-cours"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect::<Vec<_>>();
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert_eq!(mode(taken[0].clone()), 0o700, "{taken:?}");
    }
    // Nothing left in the folder but the sorted files.
    let left: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    env.t.stop().await;
}

/// A second orchestrator on the same database (its own data directory and deposit
/// queue, the same key file, agents and mocks), as a second workstation in *réseau*
/// mode.
async fn second_orchestrator(
    t: &TestStack,
    dir: &std::path::Path,
    folder: std::path::PathBuf,
) -> (
    iea_runtime::shutdown::Shutdown,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let url = iea_stack::chosen_database(t.dir.path())
        .unwrap()
        .unwrap_or_else(|| {
            iea_orchestrator::store::DatabaseUrl::Sqlite(t.dir.path().join("iea.db"))
        });
    let ne = t.file().mocks["net-entreprises"].https.clone();
    let settings = iea_orchestrator::Settings {
        database: iea_orchestrator::DatabaseSettings { url: Some(url) },
        secrets_key_file: Some(t.dir.path().join("secrets.key")),
        update_check_interval_secs: 0,
        deposits: iea_orchestrator::deposits::DepositSettings {
            deposit_address: ne.clone(),
            consultation_address: ne,
            folder: Some(folder),
            poll_interval_ms: 100,
            retry_delay_secs: 1,
            folder_settle_secs: 1,
            ..Default::default()
        },
        ..t.orchestrator_settings(dir)
    };
    let app = iea_orchestrator::App::build(settings)
        .await
        .expect("second orchestrator");
    let stop = iea_runtime::shutdown::Shutdown::new();
    let task = tokio::spawn(app.run_until(stop.clone()));
    (stop, task)
}

/// An orchestrator given a due day it cannot use (neither the 5th nor the 15th) does not
/// start, and names the setting, rather than ignoring it and getting its due dates wrong.
#[tokio::test]
async fn an_orchestrator_with_a_due_day_it_cannot_use_does_not_start() {
    let t = stack().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = t.orchestrator_settings(dir.path());
    settings.deposits.due_days.insert(SIRET.into(), 10);
    match iea_orchestrator::App::build(settings).await {
        Ok(_) => panic!("an orchestrator started with a due day of 10"),
        Err(e) => assert!(
            format!("{e:#}").contains(&format!("deposits.due_days.{SIRET} is 10")),
            "{e:#}"
        ),
    }
    t.stop().await;
}

/// Two orchestrators on one database watch the same deposit folder: 100 files dropped at
/// once are each deposited exactly once (the folder's atomic take, then the leases).
#[tokio::test]
async fn two_orchestrators_sharing_a_database_deposit_each_of_100_files_once() {
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().join("a-deposer");
    let first_folder = folder.clone();
    let env = Env::with_admin_identity_on(
        move |s| {
            s.deposits.poll_interval_ms = 100;
            s.deposits.retry_delay_secs = 1;
            s.deposits.folder_settle_secs = 1;
            s.deposits.folder = Some(first_folder);
        },
        PASSWORD,
    )
    .await;
    let second_dir = tempfile::tempdir().unwrap();
    let (stop, task) = second_orchestrator(&env.t, second_dir.path(), folder.clone()).await;
    appears(&folder.join("deposes")).await;

    // 100 distinct declarations (one per month), written as .tmp, then renamed at once.
    let mut digests = std::collections::BTreeSet::new();
    let mut names = Vec::new();
    for i in 0..100u32 {
        let mut spec = iea_dsn::SampleSpec::new(
            SIRET,
            iea_dsn::Month::new(2010 + (i / 12) as i32, (i % 12 + 1) as u8).unwrap(),
            1,
        );
        spec.seed = u64::from(i);
        let bytes = iea_dsn::sample(&spec);
        digests.insert(sha256_hex(&bytes));
        let name = format!("DSN_{i:03}");
        std::fs::write(folder.join(format!("{name}.tmp")), &bytes).unwrap();
        names.push(name);
    }
    for name in &names {
        std::fs::rename(
            folder.join(format!("{name}.tmp")),
            folder.join(format!("{name}.dsn")),
        )
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let deposited = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".motif.txt"))
            .count()
    };
    while deposited(&folder.join("deposes")) < 100 {
        if tokio::time::Instant::now() >= deadline {
            let all = env
                .deposits
                .clone()
                .list_deposits(authed(&env.token, ListDsnDepositsRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .deposits;
            let mut states = std::collections::BTreeMap::new();
            for d in &all {
                *states.entry(d.state.clone()).or_insert(0) += 1;
            }
            panic!(
                "{} of 100 deposited; rejected: {}; {} recorded: {states:?}; e.g. {:#?}",
                deposited(&folder.join("deposes")),
                deposited(&folder.join("rejetes")),
                all.len(),
                all.iter().find(|d| d.state != "accepted")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registered = env.registered().await;
    assert_eq!(registered.len(), 100, "each file reached the mock once");
    let at_mock: std::collections::BTreeSet<String> = registered
        .iter()
        .map(|r| r["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(at_mock, digests);
    assert_eq!(env.deposit_requests().await, 100);
    assert_eq!(deposited(&folder.join("rejetes")), 0);
    // Both took a share: each stored some of the files.
    for store in [
        env.t.dir.path().join("dsn/store"),
        second_dir.path().join("dsn/store"),
    ] {
        assert!(deposited(&store) > 0, "{} took nothing", store.display());
    }
    stop.trigger();
    task.await.unwrap().unwrap();
    env.t.stop().await;
}

/// The token the deposit agent keeps has expired at Net-entreprises: one new
/// authentication, the deposit sent once more, and accepted.
#[tokio::test]
async fn an_expired_token_gets_one_new_authentication_and_the_deposit_goes() {
    let env = Env::with_admin_identity().await;
    let d = env
        .upload(&env.token, &sample(12, 2, 30), "")
        .await
        .unwrap();
    assert_eq!(env.settled(d.id).await.state, "accepted");
    let auth_before = env.ne.auth_requests().await;
    env.ne.post("/tokens/expire", serde_json::json!({})).await;
    let d = env
        .upload(&env.token, &sample(11, 2, 31), "")
        .await
        .unwrap();
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    assert_eq!(env.ne.auth_requests().await, auth_before + 1);
    let stats = env.ne.get("/stats").await;
    assert_eq!(
        stats["services"]["/deposer-dsn/1.0/"]["by_status"]["401"], 1,
        "{stats:#}"
    );
    assert_eq!(env.registered().await.len(), 2);
    env.t.stop().await;
}

/// Net-entreprises answers too slowly: the agent gives up after sending, the deposit is
/// uncertain, the listing (once the service answers again) settles it, and the mock holds
/// one deposit.
#[tokio::test]
async fn a_slow_service_after_sending_ends_with_one_deposit() {
    let env = Env::with_admin_identity_on(
        |s| {
            s.deposits.poll_interval_ms = 100;
            s.deposits.retry_delay_secs = 1;
            s.deposits.window_margin_secs = 2;
            s.network.request_timeout_ms = 1000;
        },
        PASSWORD,
    )
    .await;
    // Authenticate once before the service slows down (the token is kept).
    let first = env.upload(&env.token, &sample(2, 1, 32), "").await.unwrap();
    assert_eq!(env.settled(first.id).await.state, "accepted");
    env.ne
        .faults(serde_json::json!({"mode": "slow", "delay_ms": 2500}))
        .await;
    let d = env.upload(&env.token, &sample(3, 2, 33), "").await.unwrap();
    let d = env.until(d.id, |d| d.state == "uncertain").await;
    assert_eq!(d.attempts, 1);
    env.ne.faults(serde_json::json!({})).await;
    let d = env.settled(d.id).await;
    assert_eq!(d.state, "accepted", "{d:#?}");
    let ours: Vec<_> = env
        .registered()
        .await
        .into_iter()
        .filter(|r| r["sha256"] == d.sha256.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0]["idflux"], d.idflux.as_str());
    env.t.stop().await;
}

/// `deposits.concurrency` is the bound at Net-entreprises: with 2, twelve deposits held
/// 300 ms each at the mock go two at a time, never more (the agent keeps the bound; the
/// orchestrator claims more, waiting there for their turn), each once.
#[tokio::test]
async fn deposits_reach_net_entreprises_at_most_concurrency_at_once() {
    let env = Env::with_admin_identity_on(
        |s| {
            s.deposits.poll_interval_ms = 100;
            s.deposits.concurrency = 2;
        },
        PASSWORD,
    )
    .await;
    env.ne
        .faults(serde_json::json!({"hold_after_register": true, "hold_ms": 300}))
        .await;
    let mut ids = Vec::new();
    for month in 1..=12u8 {
        let d = env
            .upload(&env.token, &sample(month, 1, 900 + u64::from(month)), "")
            .await
            .unwrap();
        ids.push(d.id);
    }
    for id in ids {
        assert_eq!(env.settled(id).await.state, "accepted");
    }
    let stats = &env.ne.get("/stats").await["services"]["/deposer-dsn/1.0/"];
    assert_eq!(stats["requests"], 12, "{stats}");
    assert_eq!(
        stats["max_in_flight"], 2,
        "two at a time, never more: {stats}"
    );
    assert_eq!(env.registered().await.len(), 12);
    env.t.stop().await;
}

/// A deposit followed with `WatchDeposit` by a session that is then signed out: nothing
/// more of it reaches whoever held that session (the deposit goes on), the stream ends
/// as unauthenticated.
#[tokio::test]
async fn a_watch_ends_once_its_session_is_signed_out() {
    let env = Env::with_admin_identity().await;
    // Authenticate once before the service slows down (the token is kept).
    let first = env.upload(&env.token, &sample(2, 1, 40), "").await.unwrap();
    assert_eq!(env.settled(first.id).await.state, "accepted");
    env.ne
        .faults(serde_json::json!({"mode": "slow", "delay_ms": 1500}))
        .await;
    let d = env.upload(&env.token, &sample(3, 1, 41), "").await.unwrap();
    // Another session of the same person watches it, then signs out.
    let other = env.t.login_admin().await;
    let mut watch = env
        .deposits
        .clone()
        .watch_deposit(authed(&other, WatchDsnDepositRequest { id: d.id }))
        .await
        .expect("watched")
        .into_inner();
    let now = watch
        .message()
        .await
        .unwrap()
        .expect("the deposit as it is");
    assert!(!now.settled, "{now:#?}");
    sessions_client::SessionsClient::new(env.t.channel().await)
        .logout(authed(&other, LogoutRequest {}))
        .await
        .expect("signed out");
    env.ne.faults(serde_json::json!({})).await;
    assert_eq!(env.settled(d.id).await.state, "accepted");
    let mut seen = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match watch.message().await {
                Ok(Some(m)) => seen.push(m),
                Ok(None) => break None,
                Err(s) => break Some(s.code()),
            }
        }
    })
    .await
    .expect("the watch ended");
    assert!(
        seen.iter().all(|m| !m.settled),
        "a settled deposit reached a signed-out session: {seen:#?}"
    );
    assert_eq!(end, Some(Code::Unauthenticated));
    env.t.stop().await;
}

/// Before a due date, the credentials of the account designated for an establishment are
/// verified once by themselves, and a refusal is shown with the account.
#[tokio::test]
async fn credentials_of_depositing_accounts_are_verified_before_the_due_date() {
    let env = Env::with_admin_identity_on(
        |s| {
            s.deposits.poll_interval_ms = 100;
            // Every day is within the verification window; looked at every second.
            s.deposits.verify_days_before = 40;
            s.deposits.due_check_interval_secs = 1;
            s.deposits.due_days.insert(SIRET.into(), 5);
        },
        "Mauvais-mot-de-passe",
    )
    .await;
    let auth_before = env.ne.auth_requests().await;
    env.designate(&env.token, SIRET, ADMIN).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let account = loop {
        let all = env
            .deposits
            .clone()
            .list_deposit_accounts(authed(&env.token, ListDepositAccountsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .accounts;
        if let Some(a) = all.into_iter().find(|a| a.last_checked_at.is_some()) {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "never verified");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!account.last_check_valid);
    assert!(!account.last_check_message.is_empty());
    // The establishment's due day is the 5th, at noon in Paris.
    let due = account.next_due.unwrap().seconds;
    assert!(due > account.last_checked_at.unwrap().seconds);
    assert!(
        iea_fr_time::date_time_unix(due).starts_with("5 "),
        "{}",
        iea_fr_time::date_time_unix(due)
    );
    // Verified once in the window, not at every look.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(env.ne.auth_requests().await, auth_before + 1);
    env.t.stop().await;
}
