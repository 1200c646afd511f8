//! 1,000 accounts verified through orchestrator → credential verifier → Net-entreprises
//! mock ("verify all", bounded concurrency), then the mock driven directly at the same
//! concurrency, in alternated rounds. Prints both rates, their ratio (target ≥ 80 % on
//! SQLite, ≥ 70 % on PostgreSQL), the CPU each process spends per verification, and the
//! memory of the orchestrator, the verifier and the mock after 10 %, half and all of the
//! rounds (target: flat in the number of verifications). When every process shares the
//! same few cores, the ratio is about the direct path's CPU per authentication (mock and
//! client) over the through path's (orchestrator, verifier, mock, and PostgreSQL): the CPU
//! line says where each microsecond goes.
//!
//! The orchestrator, the credential verifier and the Net-entreprises mock each run in a
//! process of their own (this binary started again in a role, `common::roles`), wired
//! as the stack wires its own; the other mocks and agents run in the embedded stack in a
//! child process. The mock's tokens live `TOKEN_LIFETIME_SECS` (1 by default: the verifier
//! never uses one), so that its store, which keeps a token one more lifetime after its
//! expiry, reaches its steady size (about three lifetimes of tokens) within the first
//! rounds instead of holding every token of the run for an hour.
//!
//! `cargo bench -p iea-cli --bench verify` (`ACCOUNTS=N` to change the count, `ROUNDS=N`
//! the number of alternated measurements, whose medians are compared: 61 by default, since
//! a round of 1,000 lasts about a tenth of a second and single rounds vary by ±15 % on a
//! shared 2-core machine). On PostgreSQL: `IEA_DATABASE_URL=postgres://…/DB` (the
//! orchestrator's database; the server's CPU per verification is then read from its
//! backends serving `DB`).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::env_usize;
use common::roles::{self, Process, serve};

use futures::StreamExt;
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_net::{ConnectionMode, HttpClient, NetworkSettings};
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::users_client::UsersClient;
use iea_proto::v1::*;
use iea_runtime::pki;
use iea_runtime::telemetry::LogFormat;

/// Parallel verifications in the orchestrator's "verify all".
const CONCURRENCY: usize = 8;
const ACCOUNT_PASSWORD: &str = "Mot-de-passe-banc";
const INSTALLATION: &str = "IEA-BENCH-VERIFY";
const LICENCE: &str = "BENCH-LICENCE-not-secret";
/// The measured processes log warnings only, in plain text.
const LOG_LEVEL: &str = "warn";

fn main() {
    let runtime = roles::runtime();
    let (format, level) = (LogFormat::Human, LOG_LEVEL);
    match roles::role().as_deref() {
        Some("orchestrator") => runtime.block_on(serve(format, level, roles::orchestrator)),
        Some("credential-verifier") => {
            runtime.block_on(serve(format, level, roles::credential_verifier))
        }
        Some("net-entreprises") => runtime.block_on(serve(format, level, roles::net_entreprises)),
        _ => runtime.block_on(bench()),
    }
}

/// The embedded stack (the mocks and agents the measured processes do not replace), on
/// SQLite whatever `IEA_DATABASE_URL` says: its own orchestrator stays idle.
fn start_stack() -> common::Stack {
    common::Stack::start()
}

async fn bench() {
    iea_runtime::install_crypto_provider();
    let n = env_usize("ACCOUNTS", 1000);
    let rounds = env_usize("ROUNDS", 61).max(1);
    let token_lifetime = env_usize("TOKEN_LIFETIME_SECS", 1).max(1);
    let database = std::env::var("IEA_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| iea_orchestrator::store::DatabaseUrl::parse(&u).expect("IEA_DATABASE_URL"));
    // The PostgreSQL database whose backends serve the orchestrator.
    let pg_database = match &database {
        Some(iea_orchestrator::store::DatabaseUrl::Postgres(url)) => url
            .rsplit('/')
            .next()
            .map(|d| d.split('?').next().unwrap_or(d).to_owned()),
        _ => None,
    };

    let stack = start_stack();
    let work = tempfile::tempdir().unwrap();
    let certs = stack.dir.path().join("certs");
    let f = &stack.file;
    stack.add_installation(INSTALLATION, LICENCE).await;

    let loopback = "127.0.0.1:0";
    let mock = Process::start(
        "net-entreprises",
        &serde_json::json!({
            "listen": {
                "https_listen": loopback, "fallback_listen": loopback,
                "http_listen": loopback, "admin_listen": loopback,
                "tls": pki::mock_files(&certs), "admin_token": "",
            },
            "token_lifetime_secs": token_lifetime,
        }),
        LOG_LEVEL,
        &work.path().join("net-entreprises.log"),
    );
    let verifier = Process::start(
        "credential-verifier",
        &iea_credential_verifier::Settings {
            listen: loopback.parse().unwrap(),
            tls: pki::component_files(&certs, iea_credential_verifier::COMPONENT),
        },
        LOG_LEVEL,
        &work.path().join("credential-verifier.log"),
    );
    let data_dir = work.path().join("orchestrator");
    std::fs::create_dir_all(&data_dir).unwrap();
    let address = format!(
        "https://{}{}",
        mock.addr,
        iea_mock_net_entreprises::AUTH_PATH
    );
    // Wired to the verifier and the mock measured here.
    let mut settings = roles::orchestrator_settings(&stack, &data_dir, INSTALLATION, LICENCE);
    settings.database.url = database.clone();
    settings.agents.credential_verifier = verifier.addr.clone();
    settings.network.net_entreprises = address.clone();
    let orchestrator = Process::start(
        "orchestrator",
        &settings,
        LOG_LEVEL,
        &work.path().join("orchestrator.log"),
    );
    println!(
        "processes: orchestrator pid {}, credential verifier pid {}, Net-entreprises mock pid {} \
         (tokens live {token_lifetime} s), other mocks and agents (embedded stack) pid {}; \
         database: {}",
        orchestrator.pid(),
        verifier.pid(),
        mock.pid(),
        stack.child.id(),
        database
            .as_ref()
            .map_or("SQLite".to_owned(), |d| d.to_string())
    );

    let api = stack
        .other_orchestrator(&orchestrator.addr, &data_dir)
        .with_call_timeout(Duration::from_secs(600));
    let channel = api.channel().await;
    let token = api.login_admin().await;
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
        })
        .await;
    println!(
        "setup: {n} accounts with credentials in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let memory = |label: &str| {
        println!(
            "memory {label}: orchestrator {} KiB, credential verifier {} KiB, \
             Net-entreprises mock {} KiB",
            orchestrator.rss_kib(),
            verifier.rss_kib(),
            mock.rss_kib()
        );
    };
    memory("before verifying");

    // Directly against the mock: same concurrency, same HTTP client library.
    let mut settings = NetworkSettings::direct(ConnectionMode::Secure, &address).unwrap();
    settings.extra_ca_pem = Some(std::fs::read_to_string(&f.mocks_ca).unwrap());
    let client = HttpClient::new(&settings, "iea-connect-bench").unwrap();

    // Rounds alternate the two measurements, so that both see the same machine; the
    // medians are compared. The first round also opens the connections.
    let processes = Processes {
        orchestrator: orchestrator.pid(),
        verifier: verifier.pid(),
        mock: mock.pid(),
        pg_database,
    };
    let checkpoints = [rounds.div_ceil(10), rounds.div_ceil(2), rounds];
    let mut through_rates = Vec::new();
    let mut direct_rates = Vec::new();
    let (mut through_total, mut direct_total) = (0, 0);
    let (mut through_spent, mut direct_spent) = (Spent::default(), Spent::default());
    for round in 1..=rounds {
        let cpu = processes.cpu();
        let (total, valid, through) = verify_all(&channel, &token).await;
        let through_cpu = processes.cpu().since(&cpu);
        assert_eq!(total, valid, "every bench account is valid");
        let cpu = processes.cpu();
        let (ok, direct) = direct_round(&client, &address, total).await;
        let direct_cpu = processes.cpu().since(&cpu);
        assert_eq!(ok, total, "every direct authentication succeeds");
        through_total += total;
        direct_total += ok;
        through_spent.add(&through_cpu);
        direct_spent.add(&direct_cpu);
        let (t, d) = (
            total as f64 / through.as_secs_f64(),
            ok as f64 / direct.as_secs_f64(),
        );
        println!(
            "round {round}: through the orchestrator {t:.0}/s, directly {d:.0}/s ({:.0} %); \
             CPU per verification: through {}; directly {}",
            100.0 * t / d,
            through_cpu.per(total),
            direct_cpu.per(ok),
        );
        through_rates.push(t);
        direct_rates.push(d);
        if checkpoints.contains(&round) {
            memory(&format!(
                "after round {round} ({through_total} verifications, {direct_total} direct \
                 authentications)"
            ));
        }
    }
    let (t, d) = (median(&mut through_rates), median(&mut direct_rates));
    println!("concurrency: {CONCURRENCY}, {n} accounts, {rounds} rounds (medians)");
    println!("through the orchestrator: {t:.0} verifications/s");
    println!("directly against the mock: {d:.0} authentications/s");
    println!(
        "ratio: {:.0} % (target ≥ {} %)",
        100.0 * t / d,
        if processes.pg_database.is_some() {
            70
        } else {
            80
        }
    );
    println!(
        "CPU per verification over all rounds: through {}; directly {}",
        through_spent.per(through_total),
        direct_spent.per(direct_total)
    );
    orchestrator.stop();
    verifier.stop();
    mock.stop();
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

/// The direct path's authentication request, DUPONT's (whose values hold no character
/// XML would escape).
static DIRECT_BODY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "<identifiants><siret>{}</siret><nom>{}</nom><prenom>{}</prenom>\
         <motdepasse>{}</motdepasse><service>25</service></identifiants>",
        DUPONT.siret, DUPONT.nom, DUPONT.prenom, DUPONT.password
    )
});

/// `count` authentications straight to the mock, `CONCURRENCY` at a time.
async fn direct_round(client: &HttpClient, address: &str, count: usize) -> (usize, Duration) {
    let body: &'static str = DIRECT_BODY.as_str();
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

/// The measured processes, whose CPU time is read around each phase.
struct Processes {
    orchestrator: u32,
    verifier: u32,
    mock: u32,
    /// The orchestrator's PostgreSQL database, if any: its backends' CPU is the server's.
    pg_database: Option<String>,
}

/// CPU time used so far by each measured process, by this one and by the PostgreSQL
/// processes working for the orchestrator's database (by pid: a process that ends
/// between two readings is not counted).
struct Cpu {
    orchestrator: Duration,
    verifier: Duration,
    mock: Duration,
    bench: Duration,
    postgres: Option<HashMap<u32, Duration>>,
}

/// CPU time each process spent during a phase.
#[derive(Default)]
struct Spent {
    orchestrator: Duration,
    verifier: Duration,
    mock: Duration,
    bench: Duration,
    postgres: Option<Duration>,
}

impl Processes {
    fn cpu(&self) -> Cpu {
        let of = |pid: u32| common::cpu_time(&pid.to_string());
        Cpu {
            orchestrator: of(self.orchestrator),
            verifier: of(self.verifier),
            mock: of(self.mock),
            bench: common::cpu_time("self"),
            postgres: self.pg_database.as_deref().map(backends_cpu),
        }
    }
}

impl Cpu {
    fn since(&self, before: &Cpu) -> Spent {
        Spent {
            orchestrator: self.orchestrator.saturating_sub(before.orchestrator),
            verifier: self.verifier.saturating_sub(before.verifier),
            mock: self.mock.saturating_sub(before.mock),
            bench: self.bench.saturating_sub(before.bench),
            postgres: self.postgres.as_ref().map(|now| {
                now.iter()
                    .map(|(pid, t)| {
                        let then = before.postgres.as_ref().and_then(|b| b.get(pid));
                        t.saturating_sub(then.copied().unwrap_or_default())
                    })
                    .sum()
            }),
        }
    }
}

impl Spent {
    fn add(&mut self, other: &Spent) {
        self.orchestrator += other.orchestrator;
        self.verifier += other.verifier;
        self.mock += other.mock;
        self.bench += other.bench;
        if let Some(pg) = other.postgres {
            *self.postgres.get_or_insert_default() += pg;
        }
    }

    /// Microseconds per verification of each process that worked.
    fn per(&self, n: usize) -> String {
        let us = |d: Duration| d.as_micros() as usize / n.max(1);
        let mut parts = Vec::new();
        for (name, d) in [
            ("orchestrator", self.orchestrator),
            ("verifier", self.verifier),
            ("mock", self.mock),
            ("bench", self.bench),
        ] {
            if !d.is_zero() {
                parts.push(format!("{name} {} µs", us(d)));
            }
        }
        if let Some(pg) = self.postgres.filter(|d| !d.is_zero()) {
            parts.push(format!("PostgreSQL {} µs", us(pg)));
        }
        parts.join(", ")
    }
}

/// CPU time so far of each PostgreSQL process working for `database` (its title names
/// it: `postgres: USER DATABASE HOST(PORT) STATE`, `postgres: autovacuum worker
/// DATABASE`), by pid.
fn backends_cpu(database: &str) -> HashMap<u32, Duration> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let title = String::from_utf8_lossy(&c);
                title.starts_with("postgres: ")
                    && title
                        .split(|c: char| c.is_whitespace() || c == '\0')
                        .any(|w| w == database)
            })
        })
        .map(|pid| (pid, common::cpu_time(&pid.to_string())))
        .collect()
}
