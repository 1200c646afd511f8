//! Net-entreprises credentials end to end: orchestrator → credential verifier → mock.

use iea_mock_net_entreprises::fixtures::{
    Account, BERNARD_LOCKED, DUPONT, LEFEVRE_NOT_REGISTERED, MARTIN_PASSWORD_EXPIRED,
};
use iea_proto::common::v1::{ProbeStep, TlsProblem};
use iea_proto::error::ApiError;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::*;
use iea_proto::v1::{NetEntreprisesIdentity, VerificationOutcome};
use serde_json::json;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::helpers::{TestStack, authed};

const ADMIN: &str = "Administrateur";

/// A SIRET whose Luhn key is right, from 13 digits.
pub fn siret(prefix13: &str) -> String {
    assert_eq!(prefix13.len(), 13);
    for last in 0..10 {
        let s = format!("{prefix13}{last}");
        let sum: u32 = s
            .chars()
            .rev()
            .enumerate()
            .map(|(i, c)| {
                let d = c.to_digit(10).unwrap();
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum();
        if sum.is_multiple_of(10) {
            return s;
        }
    }
    unreachable!()
}

struct Ctx {
    stack: TestStack,
    token: String,
    admin_password: String,
    creds: CredentialsClient<Channel>,
}

async fn ctx_with(customize: impl FnOnce(&mut iea_orchestrator::Settings) + Send + 'static) -> Ctx {
    let stack = TestStack::start_with(customize).await;
    let token = stack.login_admin().await;
    let admin_password = stack.admin_password();
    let creds = CredentialsClient::new(stack.channel().await);
    Ctx {
        stack,
        token,
        admin_password,
        creds,
    }
}

async fn ctx() -> Ctx {
    ctx_with(|_| {}).await
}

impl Ctx {
    async fn set(
        &mut self,
        siret: &str,
        nom: &str,
        prenom: &str,
        password: &str,
    ) -> Result<CredentialSummary, ApiError> {
        let req = SetCredentialsRequest {
            user: ADMIN.into(),
            account_password: self.admin_password.clone(),
            identity: Some(NetEntreprisesIdentity {
                siret: siret.into(),
                nom: nom.into(),
                prenom: prenom.into(),
                password: password.into(),
            }),
        };
        self.creds
            .set_credentials(authed(&self.token, req))
            .await
            .map(|r| r.into_inner())
            .map_err(ApiError::from)
    }

    /// `n` user accounts (`compte-00`, …), each with the mock's valid DUPONT identity.
    async fn add_valid_accounts(&mut self, n: usize) -> Vec<String> {
        let users: Vec<String> = (0..n).map(|i| format!("compte-{i:02}")).collect();
        for u in &users {
            self.stack
                .add_user(&self.token, u, "Mot-de-passe-compte")
                .await;
            self.creds
                .set_credentials(authed(
                    &self.token,
                    SetCredentialsRequest {
                        user: u.clone(),
                        account_password: "Mot-de-passe-compte".into(),
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
        }
        users
    }

    async fn verify(&mut self) -> Result<VerificationResult, ApiError> {
        self.creds
            .verify_credentials(authed(
                &self.token,
                VerifyCredentialsRequest { user: ADMIN.into() },
            ))
            .await
            .map(|r| r.into_inner())
            .map_err(ApiError::from)
    }

    /// One "verify all" round: (user, outcome or error code), sorted by user.
    async fn verify_all(&mut self) -> Vec<(String, Result<VerificationOutcome, String>)> {
        let mut stream = self
            .creds
            .verify_all_credentials(authed(&self.token, VerifyAllCredentialsRequest {}))
            .await
            .unwrap()
            .into_inner();
        let mut got = Vec::new();
        while let Some(v) = stream.next().await {
            let v = v.unwrap();
            let r = match &v.result {
                Some(_) => Ok(outcome(&v)),
                None => Err(v.error_code.clone()),
            };
            got.push((v.user.clone(), r));
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        got
    }

    /// Every account's credentials as the administrator lists them.
    async fn list(&mut self) -> Vec<CredentialSummary> {
        self.creds
            .list_credentials(authed(&self.token, ListCredentialsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .credentials
    }

    async fn set_and_verify(
        &mut self,
        siret: &str,
        nom: &str,
        prenom: &str,
        password: &str,
    ) -> VerificationResult {
        self.set(siret, nom, prenom, password)
            .await
            .expect("credentials stored");
        self.verify().await.expect("a verification result")
    }
}

/// Registers Anne GARNIER (password `Bon-Mot2passe`, service 25) at the Net-entreprises
/// mock under a SIRET made from `prefix13`: (SIRET, the mock's id for her).
async fn add_garnier(ne: &crate::helpers::MockAdmin, prefix13: &str) -> (String, String) {
    let s = siret(prefix13);
    let id = ne
        .post(
            "/declarants",
            json!({"siret": s, "nom": "GARNIER", "prenom": "Anne", "motdepasse": "Bon-Mot2passe", "services": [25]}),
        )
        .await["id"]
        .clone();
    let id = id
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| id.to_string());
    (s, id)
}

fn outcome(v: &VerificationResult) -> VerificationOutcome {
    VerificationOutcome::try_from(v.result.as_ref().unwrap().outcome).unwrap()
}

fn step(v: &VerificationResult) -> ProbeStep {
    ProbeStep::try_from(
        v.result
            .as_ref()
            .unwrap()
            .probe
            .as_ref()
            .expect("a probe")
            .step,
    )
    .unwrap()
}

#[tokio::test]
async fn each_answer_of_net_entreprises_is_reported_as_its_outcome() {
    let mut c = ctx().await;
    // Declarants of the mock's bundled fixtures.
    let cases = [
        (DUPONT, VerificationOutcome::Valid),
        (
            Account {
                password: "MauvaisMotDePasse",
                ..DUPONT
            },
            VerificationOutcome::InvalidCredentials,
        ),
        (
            MARTIN_PASSWORD_EXPIRED,
            VerificationOutcome::PasswordExpired,
        ),
        (LEFEVRE_NOT_REGISTERED, VerificationOutcome::NotRegistered),
        (BERNARD_LOCKED, VerificationOutcome::AccountLocked),
    ];
    for (account, expected) in cases {
        let Account {
            siret,
            nom,
            prenom,
            password: pw,
            ..
        } = account;
        let v = c.set_and_verify(siret, nom, prenom, pw).await;
        assert_eq!(outcome(&v), expected, "{nom}: {v:?}");
        let r = v.result.as_ref().unwrap();
        assert!(!r.message.is_empty(), "a French sentence for {nom}");
        if expected == VerificationOutcome::Valid {
            assert!(r.token_expires_at.is_some(), "{r:?}");
        } else {
            assert!(r.http_status == 401 || r.http_status == 403, "{r:?}");
        }
    }
    c.stack.stop().await;
}

#[tokio::test]
async fn an_unavailable_a_reset_and_a_slow_server_are_unavailable_with_their_step() {
    let mut c = ctx_with(|s| s.network.request_timeout_ms = 1500).await;
    let ne = c.stack.mock("net-entreprises");
    c.set(DUPONT.siret, DUPONT.nom, DUPONT.prenom, DUPONT.password)
        .await
        .unwrap();

    ne.faults(json!({"mode": "unavailable"})).await;
    let v = c.verify().await.unwrap();
    assert_eq!(outcome(&v), VerificationOutcome::Unavailable, "{v:?}");
    assert_eq!(v.result.as_ref().unwrap().http_status, 503);

    ne.faults(json!({"mode": "reset"})).await;
    let v = c.verify().await.unwrap();
    assert_eq!(outcome(&v), VerificationOutcome::Unavailable, "{v:?}");
    assert_ne!(step(&v), ProbeStep::Ok);

    ne.faults(json!({"mode": "slow", "delay_ms": 4000})).await;
    let v = c.verify().await.unwrap();
    assert_eq!(outcome(&v), VerificationOutcome::Unavailable, "{v:?}");
    assert_eq!(step(&v), ProbeStep::Timeout, "{v:?}");

    ne.faults(json!({"mode": "none"})).await;
    let v = c.verify().await.unwrap();
    assert_eq!(
        outcome(&v),
        VerificationOutcome::Valid,
        "outages do not count against the budget: {v:?}"
    );
    c.stack.stop().await;
}

#[tokio::test]
async fn a_form_rejection_is_reported_as_rejected_format() {
    // A service code of three digits fails Net-entreprises' form checks (422).
    let mut c = ctx_with(|s| s.network.net_entreprises_service = 100).await;
    let v = c
        .set_and_verify(DUPONT.siret, DUPONT.nom, DUPONT.prenom, DUPONT.password)
        .await;
    assert_eq!(outcome(&v), VerificationOutcome::RejectedFormat, "{v:?}");
    assert_eq!(v.result.as_ref().unwrap().http_status, 422);
    c.stack.stop().await;
}

#[tokio::test]
async fn a_server_certificate_not_from_a_trusted_authority_is_refused_at_the_tls_step() {
    let other = tempfile::tempdir().unwrap();
    iea_runtime::pki::init(other.path(), &[]).unwrap();
    let foreign_ca = iea_runtime::pki::mock_files(other.path()).ca;
    let mut c = ctx_with(move |s| s.network.extra_ca_file = Some(foreign_ca)).await;
    let before = c.stack.mock("net-entreprises").auth_requests().await;
    let v = c
        .set_and_verify(DUPONT.siret, DUPONT.nom, DUPONT.prenom, DUPONT.password)
        .await;
    assert_eq!(outcome(&v), VerificationOutcome::Unavailable, "{v:?}");
    let probe = v.result.as_ref().unwrap().probe.clone().unwrap();
    assert_eq!(probe.step, ProbeStep::Tls as i32, "{probe:?}");
    assert_eq!(
        probe.tls_problem,
        TlsProblem::UnknownAuthority as i32,
        "{probe:?}"
    );
    assert_eq!(
        c.stack.mock("net-entreprises").auth_requests().await,
        before,
        "nothing was sent"
    );
    drop(other);
    c.stack.stop().await;
}

#[tokio::test]
async fn each_bad_input_is_named_and_nothing_reaches_net_entreprises() {
    let mut c = ctx().await;
    let ne = c.stack.mock("net-entreprises");
    let before = ne.auth_requests().await;
    let (siret, nom, prenom, pw) = (DUPONT.siret, DUPONT.nom, DUPONT.prenom, DUPONT.password);
    let cases = [
        (siret, &*format!(" {nom}"), prenom, pw, "nom"),
        (siret, nom, &*format!("{prenom}\u{a0}"), pw, "prénom"),
        (
            siret,
            nom,
            prenom,
            &*pw.replace('#', "\u{200b}"),
            "mot de passe",
        ),
        // The last digit changed: the Luhn key is wrong.
        (&*format!("{}1", &siret[..13]), nom, prenom, pw, "SIRET"),
        (&siret[..13], nom, prenom, pw, "SIRET"),
        (siret, nom, &*"A".repeat(40), pw, "prénom"),
        (siret, nom, prenom, &*"x".repeat(31), "mot de passe"),
    ];
    for (siret, nom, prenom, pw, field) in cases {
        let e = c.set(siret, nom, prenom, pw).await.unwrap_err();
        assert_eq!(e.code, "invalid_input", "{e:?}");
        assert!(
            e.message.to_lowercase().contains(&field.to_lowercase()),
            "{field} not named in {:?}",
            e.message
        );
        assert!(
            !e.message.contains(pw) || pw.len() < 4,
            "the password is echoed: {e:?}"
        );
    }
    // A SIRET typed with spaces is normalised, not refused.
    let s = c
        .set(
            &format!(
                "{} {} {} {}",
                &siret[..3],
                &siret[3..6],
                &siret[6..9],
                &siret[9..]
            ),
            nom,
            prenom,
            pw,
        )
        .await
        .unwrap();
    assert_eq!(s.siret, siret);
    assert_eq!(
        ne.auth_requests().await,
        before,
        "nothing was sent for bad input"
    );
    c.stack.stop().await;
}

#[tokio::test]
async fn ten_verifications_with_a_wrong_password_cause_at_most_two_failed_logins_and_never_a_lock()
{
    let mut c = ctx().await;
    let ne = c.stack.mock("net-entreprises");
    let (s, id) = add_garnier(&ne, "1234567800001").await;
    c.set(&s, "GARNIER", "Anne", "Mauvais-Mot").await.unwrap();
    let mut refused = 0;
    let mut blocked = 0;
    for _ in 0..10 {
        match c.verify().await {
            Ok(v) => {
                assert_eq!(
                    outcome(&v),
                    VerificationOutcome::InvalidCredentials,
                    "{v:?}"
                );
                refused += 1;
            }
            Err(e) => {
                assert_eq!(e.code, "blocked_by_budget", "{e:?}");
                assert!(e.message.contains("blocage"), "{e:?}");
                blocked += 1;
            }
        }
    }
    assert_eq!((refused, blocked), (2, 8));
    let state = ne.get(&format!("/declarants/{id}")).await;
    assert!(state["failed_attempts"].as_u64().unwrap() <= 2, "{state}");
    assert_eq!(state["locked"], false, "{state}");

    // Corrected credentials get a new budget.
    let v = c
        .set_and_verify(&s, "GARNIER", "Anne", "Bon-Mot2passe")
        .await;
    assert_eq!(outcome(&v), VerificationOutcome::Valid, "{v:?}");
    c.stack.stop().await;
}

#[tokio::test]
async fn changing_an_identity_needs_the_account_password_and_a_user_sees_only_their_own() {
    let mut c = ctx().await;
    c.stack
        .add_user(&c.token, "Dupont", "Mot-de-passe-Dupont")
        .await;
    let dupont = c.stack.login("Dupont", "Mot-de-passe-Dupont").await;

    // Wrong account password: refused, nothing stored.
    let mut wrong = SetCredentialsRequest {
        user: ADMIN.into(),
        account_password: "pas le bon".into(),
        identity: Some(NetEntreprisesIdentity {
            siret: DUPONT.siret.into(),
            nom: DUPONT.nom.into(),
            prenom: DUPONT.prenom.into(),
            password: DUPONT.password.into(),
        }),
    };
    let e = ApiError::from(
        c.creds
            .set_credentials(authed(&c.token, wrong.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "wrong_account_password");
    let shown = c
        .creds
        .get_credentials(authed(
            &c.token,
            GetCredentialsRequest { user: ADMIN.into() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!shown.configured);

    // Dupont may set his own (with his password), not the administrator's.
    wrong.account_password = "Mot-de-passe-Dupont".into();
    let e = ApiError::from(
        c.creds
            .set_credentials(authed(&dupont, wrong.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "permission_denied");
    wrong.user = "Dupont".into();
    c.creds
        .set_credentials(authed(&dupont, wrong.clone()))
        .await
        .unwrap();
    let e = ApiError::from(
        c.creds
            .get_credentials(authed(
                &dupont,
                GetCredentialsRequest { user: ADMIN.into() },
            ))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "permission_denied");
    let list = c
        .creds
        .list_credentials(authed(&dupont, ListCredentialsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .credentials;
    assert_eq!(
        list.iter().map(|s| s.user.as_str()).collect::<Vec<_>>(),
        ["Dupont"]
    );

    // Without a session: refused.
    let e = ApiError::from(
        c.creds
            .list_credentials(ListCredentialsRequest {})
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "unauthenticated");

    // A user cannot copy; an administrator copies Dupont's identity to himself.
    let copy = CopyCredentialsRequest {
        from_user: "Dupont".into(),
        to_users: vec![ADMIN.into()],
    };
    let e = ApiError::from(
        c.creds
            .copy_credentials(authed(&dupont, copy.clone()))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, "permission_denied");
    let copied = c
        .creds
        .copy_credentials(authed(&c.token, copy))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(copied.credentials[0].user, ADMIN);
    assert_eq!(copied.credentials[0].siret, DUPONT.siret);
    let v = c.verify().await.unwrap();
    assert_eq!(
        outcome(&v),
        VerificationOutcome::Valid,
        "the copied password decrypts: {v:?}"
    );
    c.stack.stop().await;
}

#[tokio::test]
async fn verify_all_streams_one_result_per_configured_account_and_keeps_each_last_result() {
    let mut c = ctx().await;
    c.stack
        .add_user(&c.token, "Martin", "Mot-de-passe-Martin")
        .await;
    c.set(DUPONT.siret, DUPONT.nom, DUPONT.prenom, DUPONT.password)
        .await
        .unwrap();
    let martin = c.stack.login("Martin", "Mot-de-passe-Martin").await;
    c.creds
        .set_credentials(authed(
            &martin,
            SetCredentialsRequest {
                user: "Martin".into(),
                account_password: "Mot-de-passe-Martin".into(),
                identity: Some(NetEntreprisesIdentity {
                    siret: MARTIN_PASSWORD_EXPIRED.siret.into(),
                    nom: MARTIN_PASSWORD_EXPIRED.nom.into(),
                    prenom: MARTIN_PASSWORD_EXPIRED.prenom.into(),
                    password: MARTIN_PASSWORD_EXPIRED.password.into(),
                }),
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        c.verify_all().await,
        [
            (ADMIN.to_owned(), Ok(VerificationOutcome::Valid)),
            (
                "Martin".to_owned(),
                Ok(VerificationOutcome::PasswordExpired)
            )
        ]
    );
    for s in c.list().await {
        let last = s.last_verification.expect("last result kept");
        assert!(last.verified_at.is_some());
    }
    c.stack.stop().await;
}

#[tokio::test]
async fn verify_all_over_many_accounts_keeps_the_budget_and_reports_a_lost_verifier_for_each_account()
 {
    let mut c = ctx().await;
    let ne = c.stack.mock("net-entreprises");
    let (s, id) = add_garnier(&ne, "5512034500001").await;
    // The administrator's identity has a wrong password; forty accounts a right one:
    // more than the verifier is given at once (32), so the stream is fed as answers come.
    c.set(&s, "GARNIER", "Anne", "Mauvais-Mot").await.unwrap();
    let users = c.add_valid_accounts(40).await;
    let valid: Vec<_> = users
        .iter()
        .map(|u| (u.clone(), Ok(VerificationOutcome::Valid)))
        .collect();
    let with_admin = |r: Result<VerificationOutcome, String>| {
        let mut v = vec![(ADMIN.to_owned(), r)];
        v.extend(valid.clone());
        v
    };
    for round in 0..4 {
        let expected = if round < 2 {
            Ok(VerificationOutcome::InvalidCredentials)
        } else {
            Err("blocked_by_budget".to_owned())
        };
        assert_eq!(c.verify_all().await, with_admin(expected), "round {round}");
    }
    let state = ne.get(&format!("/declarants/{id}")).await;
    assert_eq!(state["failed_attempts"], 2, "{state}");
    assert_eq!(state["locked"], false, "{state}");

    // The verifier gone: every account says so, and no last result changes.
    let before = c.list().await;
    c.stack.stop_agent("credential-verifier").await;
    let lost: Vec<_> = users
        .iter()
        .map(|u| (u.clone(), Err("agent_unavailable".to_owned())))
        .collect();
    let mut expected = vec![(ADMIN.to_owned(), Err("blocked_by_budget".to_owned()))];
    expected.extend(lost);
    assert_eq!(c.verify_all().await, expected);
    let after = c.list().await;
    assert_eq!(before, after);

    // Back, and no account was left claimed.
    c.stack.start_agent("credential-verifier").await;
    assert_eq!(
        c.verify_all().await,
        with_admin(Err("blocked_by_budget".to_owned()))
    );
    c.stack.stop().await;
}

#[tokio::test]
async fn verify_all_authenticates_at_most_eight_accounts_at_once() {
    let mut c = ctx().await;
    let ne = c.stack.mock("net-entreprises");
    let users = c.add_valid_accounts(16).await;
    // Each authentication takes 300 ms: sixteen accounts, eight at a time, take two of
    // those; all at once (the orchestrator keeps 32 outstanding), about one.
    ne.faults(json!({"mode": "slow", "delay_ms": 300})).await;
    let started = std::time::Instant::now();
    let got = c.verify_all().await;
    let took = started.elapsed();
    let valid: Vec<_> = users
        .iter()
        .map(|u| (u.clone(), Ok(VerificationOutcome::Valid)))
        .collect();
    assert_eq!(got, valid);
    assert!(
        took >= std::time::Duration::from_millis(2 * 300),
        "{took:?}"
    );
    ne.faults(json!({"mode": "none"})).await;
    c.stack.stop().await;
}

#[tokio::test]
async fn a_verification_whose_caller_gives_up_still_completes_and_is_recorded() {
    let mut c = ctx().await;
    let ne = c.stack.mock("net-entreprises");
    c.set(DUPONT.siret, DUPONT.nom, DUPONT.prenom, DUPONT.password)
        .await
        .unwrap();
    let before = ne.get("/stats").await["auth_requests"].as_u64().unwrap();
    ne.faults(json!({"mode": "slow", "delay_ms": 500})).await;
    let mut req = authed(&c.token, VerifyCredentialsRequest { user: ADMIN.into() });
    req.set_timeout(std::time::Duration::from_millis(100));
    let status = c.creds.verify_credentials(req).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
    // The attempt goes on without its caller: Net-entreprises answers, the result is kept.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let last = loop {
        let list = c.list().await;
        if let Some(last) = list.into_iter().find_map(|s| s.last_verification) {
            break last;
        }
        assert!(std::time::Instant::now() < deadline, "no result recorded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(outcome(&last), VerificationOutcome::Valid);
    let sent = ne.get("/stats").await["auth_requests"].as_u64().unwrap() - before;
    assert_eq!(sent, 1);
    ne.faults(json!({"mode": "none"})).await;
    c.stack.stop().await;
}

#[tokio::test]
async fn a_caller_leaving_verify_all_stops_the_sending_but_every_attempt_sent_is_recorded() {
    let mut c = ctx().await;
    let ne = c.stack.mock("net-entreprises");
    // More than the verifier is given at once (32), all claimed in the first chunk (64).
    let users = c.add_valid_accounts(48).await;
    let before = ne.get("/stats").await["auth_requests"].as_u64().unwrap();
    ne.faults(json!({"mode": "slow", "delay_ms": 300})).await;
    let mut stream = c
        .creds
        .verify_all_credentials(authed(&c.token, VerifyAllCredentialsRequest {}))
        .await
        .unwrap()
        .into_inner();
    stream.next().await.unwrap().unwrap();
    drop(stream);

    // The pipeline ends once every attempt it sent is answered and recorded; until then
    // it holds its claim on the last account, which it never sends, since the sending
    // stopped when the caller left.
    let last = users.last().unwrap().clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r = c
            .creds
            .verify_credentials(authed(
                &c.token,
                VerifyCredentialsRequest { user: last.clone() },
            ))
            .await
            .map(|r| r.into_inner())
            .map_err(ApiError::from);
        match r {
            Ok(v) => {
                assert_eq!(outcome(&v), VerificationOutcome::Valid);
                break;
            }
            Err(e) if e.code == "verification_in_progress" => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the pipeline never ended"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    // Every attempt that reached Net-entreprises has its result recorded, and the
    // accounts not sent yet when the caller left were not sent at all.
    let sent = ne.get("/stats").await["auth_requests"].as_u64().unwrap() - before - 1;
    let kept = c
        .list()
        .await
        .iter()
        .filter(|s| s.user != last && s.last_verification.is_some())
        .count() as u64;
    assert_eq!(sent, kept, "attempts sent vs results recorded");
    assert!((8..48).contains(&sent), "{sent} of 48 sent");
    ne.faults(json!({"mode": "none"})).await;
    c.stack.stop().await;
}

#[tokio::test]
async fn the_password_is_never_stored_in_clear_nor_returned_and_survives_a_key_rotation() {
    let mut c = ctx().await;
    let password = DUPONT.password;
    let set = c
        .set(DUPONT.siret, DUPONT.nom, DUPONT.prenom, password)
        .await
        .unwrap();
    let verified = c.verify().await.unwrap();
    let listed = c.list().await;
    for answer in [
        format!("{set:?}"),
        format!("{verified:?}"),
        format!("{listed:?}"),
    ] {
        assert!(
            !answer.contains(password),
            "an API answer holds the password: {answer}"
        );
    }
    let dir = c.stack.dir.path().to_owned();
    let key_before = std::fs::read(dir.join("secrets.key")).unwrap();
    let rotated = c
        .creds
        .rotate_encryption_key(authed(&c.token, RotateEncryptionKeyRequest {}))
        .await
        .unwrap()
        .into_inner();
    // The account's password, and the installation's licence key and daily-password key.
    assert_eq!(rotated.resealed, 3);
    assert_ne!(std::fs::read(dir.join("secrets.key")).unwrap(), key_before);
    assert_eq!(
        outcome(&c.verify().await.unwrap()),
        VerificationOutcome::Valid
    );
    let contents = c.stack.database_contents();
    c.stack.stop().await;
    assert!(!contents.is_empty(), "the database was searched");
    for (f, bytes) in contents {
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{f} holds the password in clear"
        );
    }
}
