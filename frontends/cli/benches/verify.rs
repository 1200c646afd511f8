//! 1,000 accounts verified through orchestrator → credential verifier → Net-entreprises
//! mock ("verify all", bounded concurrency), then the mock driven directly at the same
//! concurrency. Prints both rates, their ratio (target ≥ 80 %), and the stack process's
//! memory before and at its peak (target: no growth with the number of accounts).
//!
//! `cargo bench -p iea-cli --bench verify` (`ACCOUNTS=N` to change the count).

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use iea_net::{ConnectionMode, HttpClient, NetworkSettings};
use iea_proto::agent::v1::{DeclarantIdentity, VerifyOutcome};
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::users_client::UsersClient;
use iea_proto::v1::*;

/// Parallel verifications in the orchestrator's "verify all".
const CONCURRENCY: usize = 8;
const ACCOUNT_PASSWORD: &str = "Mot-de-passe-banc";

#[tokio::main]
async fn main() {
    iea_runtime::install_crypto_provider();
    let n: usize = std::env::var("ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let stack = common::Stack::start();
    let token = stack.login_admin().await;
    let channel = stack.channel().await;
    let mut users = UsersClient::new(channel.clone());
    users
        .set_installation_mode(common::authed(
            &token,
            InstallationModeMessage {
                mode: InstallationMode::Reseau.into(),
            },
        ))
        .await
        .unwrap();

    let setup = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(CONCURRENCY, |i| {
            let channel = channel.clone();
            let token = token.clone();
            async move {
                let name = format!("compte-{i:04}");
                UsersClient::new(channel.clone())
                    .add_user(common::authed(
                        &token,
                        AddUserRequest {
                            name: name.clone(),
                            role: Role::User.into(),
                            password: ACCOUNT_PASSWORD.into(),
                        },
                    ))
                    .await
                    .unwrap();
                CredentialsClient::new(channel)
                    .set_credentials(common::authed(
                        &token,
                        SetCredentialsRequest {
                            user: name,
                            account_password: ACCOUNT_PASSWORD.into(),
                            identity: Some(DeclarantIdentity {
                                siret: "78214563500010".into(),
                                nom: "DUPONT".into(),
                                prenom: "Marie".into(),
                                password: "Jardin#Partage2024".into(),
                            }),
                        },
                    ))
                    .await
                    .unwrap();
            }
        })
        .await;
    println!(
        "setup: {n} accounts with credentials in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let (rss_before, _) = stack.memory_kib();

    // Through the orchestrator.
    let started = Instant::now();
    let mut stream = CredentialsClient::new(channel.clone())
        .verify_all_credentials(common::authed(&token, VerifyAllCredentialsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let mut valid = 0;
    let mut total = 0;
    while let Some(r) = stream.next().await {
        let r = r.unwrap();
        total += 1;
        if r.result
            .is_some_and(|x| x.outcome == VerifyOutcome::Valid as i32)
        {
            valid += 1;
        }
    }
    let through = started.elapsed();
    let (_, peak) = stack.memory_kib();
    // The administrator has no credentials: `total` counts the bench accounts only.
    let orchestrated_rate = total as f64 / through.as_secs_f64();

    // Directly against the mock, same concurrency, same HTTP client library.
    let address = format!(
        "{}{}",
        stack.file.mocks["net-entreprises"].https, "/authentifier/1.0/"
    );
    let mut settings = NetworkSettings::direct(ConnectionMode::Secure, &address).unwrap();
    settings.extra_ca_pem = Some(std::fs::read_to_string(&stack.file.mocks_ca).unwrap());
    let client = HttpClient::new(&settings, "iea-connect-bench").unwrap();
    let body = "<identifiants><siret>78214563500010</siret><nom>DUPONT</nom><prenom>Marie</prenom>\
                <motdepasse>Jardin#Partage2024</motdepasse><service>25</service></identifiants>";
    let started = Instant::now();
    let ok = futures::stream::iter(0..total)
        .map(|_| {
            let client = client.clone();
            let address = address.clone();
            async move {
                client
                    .reqwest()
                    .post(&address)
                    .header("content-type", "application/xml")
                    .body(body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    let direct = started.elapsed();
    let direct_rate = ok as f64 / direct.as_secs_f64();

    println!("concurrency: {CONCURRENCY}");
    println!(
        "through the orchestrator: {total} verifications ({valid} valid) in {:.2} s = {orchestrated_rate:.0}/s",
        through.as_secs_f64()
    );
    println!(
        "directly against the mock: {ok} authentications in {:.2} s = {direct_rate:.0}/s",
        direct.as_secs_f64()
    );
    println!(
        "ratio: {:.0} % (target ≥ 80 %)",
        100.0 * orchestrated_rate / direct_rate
    );
    println!("stack process memory: {rss_before} KiB before verifying, peak {peak} KiB");
    stack.stop();
}
