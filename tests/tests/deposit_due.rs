//! Before each due date (issue 12 item 7): the credentials of the account that will
//! deposit for an establishment are verified by themselves, and a refusal shows in the
//! status (`GetStatus` with a session, what `iea status` prints) until it is corrected;
//! an administrator sees every account, another account only itself, nobody without a
//! session.

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{TestStack, authed};
use std::time::Duration;

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::*;
use tonic::transport::Channel;

const ADMIN: &str = "Administrateur";
const SIRET: &str = DUPONT.siret;

async fn set_identity(channel: &Channel, token: &str, account_password: &str, password: &str) {
    CredentialsClient::new(channel.clone())
        .set_credentials(authed(
            token,
            SetCredentialsRequest {
                user: ADMIN.into(),
                account_password: account_password.into(),
                identity: Some(NetEntreprisesIdentity {
                    siret: SIRET.into(),
                    nom: DUPONT.nom.into(),
                    prenom: DUPONT.prenom.into(),
                    password: password.into(),
                }),
            },
        ))
        .await
        .unwrap();
}

/// The status as `token`'s account sees it (`None`: without a session).
async fn status(channel: &Channel, token: Option<&str>) -> StatusReport {
    let req = GetStatusRequest {
        include_agents: false,
    };
    let req = match token {
        Some(t) => authed(t, req),
        None => tonic::Request::new(req),
    };
    StatusClient::new(channel.clone())
        .get_status(req)
        .await
        .unwrap()
        .into_inner()
}

/// Waits (at most 30 s) until the administrator's status satisfies `pred`.
async fn status_until(
    channel: &Channel,
    token: &str,
    what: &str,
    pred: impl Fn(&StatusReport) -> bool,
) -> StatusReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = status(channel, Some(token)).await;
        if pred(&r) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the status never showed {what}: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stack (without the demonstration data) whose every day is within the verification
/// window (looked at every second), with a channel to its orchestrator and the
/// administrator's password.
async fn start() -> (TestStack, Channel, String) {
    let stack = TestStack::start_configured(|o| {
        o.demo = false;
        o.customize_orchestrator = Some(Box::new(|s| {
            s.deposits.poll_interval_ms = 100;
            // Every day is within the verification window; looked at every second.
            s.deposits.verify_days_before = 40;
            s.deposits.due_check_interval_secs = 1;
            s.deposits.due_days.insert(SIRET.into(), 5);
        }));
    })
    .await;
    let channel = stack.channel().await;
    let admin_password = stack.admin_password();
    (stack, channel, admin_password)
}

#[tokio::test]
async fn a_refused_verification_before_the_due_date_shows_in_the_status_until_corrected() {
    let (stack, channel, admin_password) = start().await;
    let admin = stack.login(ADMIN, &admin_password).await;
    // Nothing refused yet.
    assert!(
        status(&channel, Some(&admin))
            .await
            .refused_deposit_accounts
            .is_empty()
    );

    set_identity(&channel, &admin, &admin_password, "Mauvais-mot-de-passe").await;
    DepositsClient::new(channel.clone())
        .set_deposit_account(authed(
            &admin,
            SetDepositAccountRequest {
                siret: SIRET.into(),
                user: ADMIN.into(),
            },
        ))
        .await
        .unwrap();
    let r = status_until(&channel, &admin, "the refusal", |r| {
        !r.refused_deposit_accounts.is_empty()
    })
    .await;
    let a = &r.refused_deposit_accounts[0];
    assert_eq!((a.siret.as_str(), a.user.as_str()), (SIRET, ADMIN));
    assert!(!a.last_check_valid);
    assert!(!a.last_check_message.is_empty());
    assert!(
        a.last_check_message.contains("Net-entreprises"),
        "{}",
        a.last_check_message
    );
    let due = a.next_due.unwrap().seconds;
    assert!(due > a.last_checked_at.unwrap().seconds);
    assert!(
        iea_fr_time::date_time_unix(due).starts_with("5 "),
        "{}",
        iea_fr_time::date_time_unix(due)
    );

    // Not without a session (the tray's view), nor for another account.
    assert!(
        status(&channel, None)
            .await
            .refused_deposit_accounts
            .is_empty()
    );
    stack
        .add_user(&admin, "Martin", "Mot-de-passe-Martin")
        .await;
    let martin = stack.login("Martin", "Mot-de-passe-Martin").await;
    assert!(
        status(&channel, Some(&martin))
            .await
            .refused_deposit_accounts
            .is_empty()
    );

    // Corrected: verified again within the window, valid, and gone from the status.
    set_identity(&channel, &admin, &admin_password, DUPONT.password).await;
    status_until(&channel, &admin, "the refusal gone", |r| {
        r.refused_deposit_accounts.is_empty()
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let accounts = DepositsClient::new(channel.clone())
            .list_deposit_accounts(authed(&admin, ListDepositAccountsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .accounts;
        if accounts[0].last_check_valid {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never verified valid: {accounts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        status(&channel, Some(&admin))
            .await
            .refused_deposit_accounts
            .is_empty()
    );
    stack.stop().await;
}

/// Nobody designated: the one account that has credentials deposits for its identity's
/// establishment (the queue's default), so it is the one verified before the due date.
#[tokio::test]
async fn without_a_designation_the_only_account_with_credentials_is_verified_before_the_due_date() {
    let (stack, channel, admin_password) = start().await;
    let admin = stack.login(ADMIN, &admin_password).await;
    set_identity(&channel, &admin, &admin_password, "Mauvais-mot-de-passe").await;
    let r = status_until(&channel, &admin, "the refusal", |r| {
        !r.refused_deposit_accounts.is_empty()
    })
    .await;
    let a = &r.refused_deposit_accounts[0];
    assert_eq!((a.siret.as_str(), a.user.as_str()), (SIRET, ADMIN));
    assert!(!a.last_check_valid);
    assert!(a.last_checked_at.is_some());
    // `iea dsn accounts list` still lists only designations.
    let listed = DepositsClient::new(channel.clone())
        .list_deposit_accounts(authed(&admin, ListDepositAccountsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert!(listed.is_empty(), "{listed:#?}");
    stack.stop().await;
}
