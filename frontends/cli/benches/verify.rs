//! 1,000 accounts verified through orchestrator → credential verifier → Net-entreprises
//! mock ("verify all", bounded concurrency), then the mock driven directly at the same
//! concurrency. Prints both rates, their ratio (target ≥ 80 %), and the stack process's
//! memory before and at its peak (target: no growth with the number of accounts).
//!
//! `cargo bench -p iea-cli --bench verify` (`ACCOUNTS=N` to change the count, `ROUNDS=N`
//! the number of alternated measurements, whose medians are compared: 21 by default, since
//! a round of 1,000 lasts about a tenth of a second and single rounds vary by ±15 % on a
//! shared 2-core machine).

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use iea_net::{ConnectionMode, HttpClient, NetworkSettings};
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
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
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
                            identity: Some(NetEntreprisesIdentity {
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
    println!("stack process: pid {}", stack.child.id());

    // Directly against the mock: same concurrency, same HTTP client library.
    let address = format!(
        "{}{}",
        stack.file.mocks["net-entreprises"].https, "/authentifier/1.0/"
    );
    let mut settings = NetworkSettings::direct(ConnectionMode::Secure, &address).unwrap();
    settings.extra_ca_pem = Some(std::fs::read_to_string(&stack.file.mocks_ca).unwrap());
    let client = HttpClient::new(&settings, "iea-connect-bench").unwrap();

    // Rounds alternate the two measurements, so that both see the same machine; the
    // medians are compared. The first round also opens the connections.
    let mut through_rates = Vec::new();
    let mut direct_rates = Vec::new();
    for round in 1..=rounds {
        let cpu = Cpu::now(&stack);
        let (total, valid, through) = verify_all(&channel, &token).await;
        let through_cpu = cpu.since(&stack);
        assert_eq!(total, valid, "every bench account is valid");
        let cpu = Cpu::now(&stack);
        let (ok, direct) = direct_round(&client, &address, total).await;
        let direct_cpu = cpu.since(&stack);
        assert_eq!(ok, total, "every direct authentication succeeds");
        let (t, d) = (
            total as f64 / through.as_secs_f64(),
            ok as f64 / direct.as_secs_f64(),
        );
        println!(
            "round {round}: through the orchestrator {t:.0}/s, directly {d:.0}/s ({:.0} %); \
             CPU per verification (stack + bench): through {}, directly {}",
            100.0 * t / d,
            through_cpu.per(total),
            direct_cpu.per(ok),
        );
        through_rates.push(t);
        direct_rates.push(d);
    }
    let (_, peak) = stack.memory_kib();
    let (t, d) = (median(&mut through_rates), median(&mut direct_rates));
    println!("concurrency: {CONCURRENCY}, {n} accounts, {rounds} rounds (medians)");
    println!("through the orchestrator: {t:.0} verifications/s");
    println!("directly against the mock: {d:.0} authentications/s");
    println!("ratio: {:.0} % (target ≥ 80 %)", 100.0 * t / d);
    println!("stack process memory: {rss_before} KiB before verifying, peak {peak} KiB");
    stack.stop();
}

/// One "verify all" through the orchestrator: (results, valid ones, time).
async fn verify_all(channel: &tonic::transport::Channel, token: &str) -> (usize, usize, Duration) {
    let started = Instant::now();
    let mut stream = CredentialsClient::new(channel.clone())
        .verify_all_credentials(common::authed(token, VerifyAllCredentialsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let (mut total, mut valid) = (0, 0);
    while let Some(r) = stream.next().await {
        total += 1;
        if r.unwrap()
            .result
            .is_some_and(|x| x.outcome == VerificationOutcome::Valid as i32)
        {
            valid += 1;
        }
    }
    // The administrator has no credentials: `total` counts the bench accounts only.
    (total, valid, started.elapsed())
}

/// `count` authentications straight to the mock, `CONCURRENCY` at a time.
async fn direct_round(client: &HttpClient, address: &str, count: usize) -> (usize, Duration) {
    let body = "<identifiants><siret>78214563500010</siret><nom>DUPONT</nom><prenom>Marie</prenom>\
                <motdepasse>Jardin#Partage2024</motdepasse><service>25</service></identifiants>";
    let started = Instant::now();
    let ok = futures::stream::iter(0..count)
        .map(|_| async move {
            client
                .reqwest()
                .post(address)
                .header("content-type", "application/xml")
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    (ok, started.elapsed())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU time used by the stack process and by this one.
struct Cpu {
    stack: Duration,
    bench: Duration,
}

impl Cpu {
    fn now(stack: &common::Stack) -> Self {
        Self {
            stack: common::cpu_time(&stack.child.id().to_string()),
            bench: common::cpu_time("self"),
        }
    }

    fn since(&self, stack: &common::Stack) -> Self {
        let now = Self::now(stack);
        Self {
            stack: now.stack - self.stack,
            bench: now.bench - self.bench,
        }
    }

    fn per(&self, n: usize) -> String {
        let us = |d: Duration| d.as_micros() as usize / n.max(1);
        format!("{} µs + {} µs", us(self.stack), us(self.bench))
    }
}
