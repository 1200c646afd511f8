//! DSN deposits (issue 12): `FILES` small DSN files (`EMPLOYEES` employees each)
//! deposited through the orchestrator and the deposit agent, and the same files posted
//! directly to the Net-entreprises mock (gzipped, with a token from
//! `iea-net-entreprises`' authentication exchange) at the same concurrency (4, the
//! orchestrator's `deposits.concurrency`), in alternated rounds, with the mock answering
//! at once, then 5 and 20 ms late; then one file of `BIG_MB` MB. Prints both rates and their
//! ratio at each latency (target ≥ 80 %), the CPU each process spends per deposit (on
//! PostgreSQL on this machine, its backends serving the orchestrator too), the
//! memory of the orchestrator and of the agent as the files go (target: flat in the
//! number of files), and their memory growth while the big file is deposited (target
//! < 32 MiB each).
//!
//! The mocks run in the embedded stack in a child process (`common::Stack`). The
//! orchestrator and the deposit agent measured here each run in a process of their own
//! (this binary started again in a role, `common::roles`), wired to the stack's mocks
//! and other agents exactly as the stack wires its own: their memory is read apart from
//! the mock's, which holds a whole deposit in memory while it reads it.
//!
//! The measured orchestrator does not follow the deposits' returns (`returns.enabled`
//! false): its listings of the earlier rounds' deposits would weigh on the later rounds
//! (the returns bench measures them).
//!
//! `cargo bench -p iea-cli --bench deposit` (`FILES=N`, `EMPLOYEES=N`, `ROUNDS=N`: rounds of
//! each path, medians compared, 3 by default; `BIG_MB=N`, 0 skips the big file;
//! `LATENCY_MS=A,B,…`: the delays in ms of the mock's answers measured in turn, its `slow`
//! fault, as a distant server's, 0 at once on loopback; `0,5,20` by default). The measured
//! orchestrator's database is SQLite in its data directory, or PostgreSQL with
//! `IEA_DATABASE_URL=postgres://…/DB` (an empty database each run: the declarations of
//! a run are those of the run before, which would be refused as already accepted).
//!
//! `KEEP_WORK=1` keeps the work directory (the measured processes' data and logs) instead
//! of removing it. On an ext4 file system without a journal, as this machine's, a new file
//! skips every inode freed in the last minutes (`recently_deleted`, up to 6 minutes when
//! not yet written back): a run that follows another's clean-up within that time pays for
//! each of its thousands of removed files at every file it creates (up to a quarter of the
//! orchestrator's CPU). Runs compared are either kept or spaced by more than 6 minutes.
//!
//! `CALLGRIND=DIR` runs the orchestrator and the deposit agent under valgrind's callgrind,
//! instrumented only while the files go through them, and prints the instructions each
//! executes per deposit, the figure that does not depend on the machine's load (the
//! rates and times are then meaningless; their profiles are left in `DIR`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::env_usize;
use common::roles::{self, Process, serve};

use futures::StreamExt;
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_net::{ConnectionMode, HttpClient, NetworkSettings};
use iea_net_entreprises::{Authenticator, Options, ServiceCode, Token, TypedIdentity};
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::*;
use iea_runtime::telemetry::LogFormat;
use tonic::transport::Channel;

/// Deposits at once: the orchestrator's default `deposits.concurrency`, and the direct
/// path's.
const CONCURRENCY: usize = 4;
/// The declarant: DUPONT Marie of the Net-entreprises mock's bundled directory.
const SIRET: &str = DUPONT.siret;
const NOM: &str = DUPONT.nom;
const PRENOM: &str = DUPONT.prenom;
const PASSWORD: &str = DUPONT.password;
/// The measured processes log at info, in plain text, as their binaries do.
const LOG_LEVEL: &str = "info";
const INSTALLATION: &str = "IEA-BENCH-0001";
const LICENCE: &str = "BENCH-LICENCE-not-secret";
/// Bytes of the file sent in one upload message.
const UPLOAD_CHUNK: usize = 1 << 20;

fn main() {
    let runtime = roles::runtime();
    let (format, level) = (LogFormat::Human, LOG_LEVEL);
    match roles::role().as_deref() {
        Some("orchestrator") => runtime.block_on(serve(format, level, roles::orchestrator)),
        Some("deposit-agent") => runtime.block_on(serve(format, level, roles::deposit_agent)),
        _ => runtime.block_on(bench()),
    }
}

// ---------------------------------------------------------------------------------
// The measured processes (`common::roles`), or under valgrind's callgrind.

/// This binary in `role`, under callgrind with `CALLGRIND`.
fn start_process(role: &str, settings: &impl serde::Serialize, log: &Path) -> Process {
    let Some(dir) = callgrind_dir() else {
        return Process::start(role, settings, LOG_LEVEL, log);
    };
    let mut c = Command::new("valgrind");
    c.arg("--tool=callgrind")
        .arg("--instr-atstart=no")
        .arg(format!(
            "--callgrind-out-file={}",
            dir.join(format!("callgrind.{role}.out")).display()
        ))
        .arg(std::env::current_exe().unwrap());
    Process::start_with(c, role, settings, LOG_LEVEL, log)
}

/// Under callgrind: `process` counts instructions from now on (`true`) or no more.
fn instrument(process: &Process, on: bool) {
    if callgrind_dir().is_some() {
        let status = Command::new("callgrind_control")
            .arg(format!("--instr={}", if on { "on" } else { "off" }))
            .arg(process.pid().to_string())
            .stdout(Stdio::null())
            .status()
            .expect("callgrind_control");
        assert!(status.success(), "callgrind_control failed");
    }
}

/// `CALLGRIND`: where callgrind writes its profiles, when the measured processes run
/// under it.
fn callgrind_dir() -> Option<PathBuf> {
    std::env::var_os("CALLGRIND")
        .filter(|d| !d.is_empty())
        .map(|d| std::path::absolute(PathBuf::from(d)).expect("CALLGRIND directory"))
}

/// Instructions a profile counted (its `totals:` line), once its process has stopped.
fn callgrind_total(dir: &Path, role: &str) -> u64 {
    let profile = std::fs::read_to_string(dir.join(format!("callgrind.{role}.out")))
        .expect("callgrind profile");
    profile
        .lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .expect("totals in the callgrind profile")
}

// ---------------------------------------------------------------------------------

async fn bench() {
    iea_runtime::install_crypto_provider();
    let n = env_usize("FILES", 1000);
    let employees = env_usize("EMPLOYEES", 10);
    let rounds = env_usize("ROUNDS", 3).clamp(1, 9);
    let big_mb = env_usize("BIG_MB", 100);

    let stack = common::Stack::start();
    let work = tempfile::tempdir().unwrap();
    let ne = stack.file.mocks["net-entreprises"].https.clone();
    let http = reqwest::Client::new();
    stack.add_installation(INSTALLATION, LICENCE).await;

    let agent = start_process(
        "deposit-agent",
        &roles::deposit_agent_settings(&stack),
        &work.path().join("deposit-agent.log"),
    );
    let data_dir = work.path().join("orchestrator");
    std::fs::create_dir_all(&data_dir).unwrap();
    // Wired to the deposit agent measured here.
    let mut settings = roles::orchestrator_settings(&stack, &data_dir, INSTALLATION, LICENCE);
    settings.agents.deposit_agent = agent.addr.clone();
    if let Some(url) = std::env::var("IEA_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        settings.database.url =
            Some(iea_orchestrator::store::DatabaseUrl::parse(&url).expect("IEA_DATABASE_URL"));
    }
    settings.deposits = iea_orchestrator::deposits::DepositSettings {
        deposit_address: ne.clone(),
        consultation_address: ne.clone(),
        concurrency: CONCURRENCY,
        ..Default::default()
    };
    // The deposits alone: the following of their returns (a first listing a minute after
    // each) would weigh on the later rounds more, the longer the benchmark has run; the
    // returns bench measures it.
    settings.returns.enabled = false;
    let orchestrator = start_process(
        "orchestrator",
        &settings,
        &work.path().join("orchestrator.log"),
    );
    roles::print_processes(&orchestrator, &agent, &stack);

    // Front-end side: the orchestrator's administrator, with the declarant's identity.
    let (channel, token) =
        roles::administrator_of(&stack, &orchestrator.addr, &data_dir, &DUPONT).await;

    // Direct side: one authentication, then the deposits with its token.
    let direct = Direct::new(&stack, &ne).await;
    let bytes_of_round = |round: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let (siret, month) = declaration((round * n + i) as u32);
                let mut spec = iea_dsn::SampleSpec::new(&siret, month, employees);
                spec.seed = (round * n + i) as u64;
                iea_dsn::sample(&spec)
            })
            .collect()
    };
    let sample_size = bytes_of_round(0).iter().map(Vec::len).sum::<usize>() / n.max(1);
    let latencies = latencies();
    println!(
        "{n} files of {employees} employees ({sample_size} bytes each on average), \
         concurrency {CONCURRENCY}, {rounds} rounds of each path at each latency of the mock \
         ({} ms)",
        latencies
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (rss_o0, rss_a0) = (orchestrator.rss_kib(), agent.rss_kib());
    println!("memory before: orchestrator {rss_o0} KiB, deposit agent {rss_a0} KiB");

    let mut total = 0;
    let mut round_no = 0;
    let mut results = Vec::new();
    for &latency in &latencies {
        // A server that takes its time, as Net-entreprises does, rather than one on
        // loopback: the mock's `slow` fault delays each of its answers.
        let fault = if latency > 0 {
            serde_json::json!({"mode": "slow", "delay_ms": latency})
        } else {
            serde_json::json!({"mode": "none"})
        };
        http.post(format!(
            "{}/faults",
            stack.file.mocks["net-entreprises"].admin
        ))
        .bearer_auth(&stack.file.mocks_admin_token)
        .json(&fault)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
        println!("the Net-entreprises mock answers after {latency} ms");
        let mut through_rates = Vec::new();
        let mut direct_rates = Vec::new();
        for _ in 0..rounds {
            // Each round deposits distinct declarations (`declaration`): the same
            // declaration accepted twice would be refused.
            let files = bytes_of_round(round_no);
            round_no += 1;
            // Each path's CPU is counted until the mock has read its files, which it does
            // after answering: none of its work is left to weigh on the next path.
            let cpu = CpuMeter::start(&stack, &orchestrator, &agent);
            let (ok, elapsed) = direct.round(&files).await;
            assert_eq!(ok, n, "every direct deposit is accepted");
            files_read(&http, &stack, 2 * total + n).await;
            let direct_cpu = cpu.per(&stack, &orchestrator, &agent, ok);
            let d = n as f64 / elapsed.as_secs_f64();

            let cpu = CpuMeter::start(&stack, &orchestrator, &agent);
            instrument(&orchestrator, true);
            instrument(&agent, true);
            let (memory, elapsed, uploaded) =
                through(&channel, &token, &files, &orchestrator, &agent).await;
            instrument(&orchestrator, false);
            instrument(&agent, false);
            files_read(&http, &stack, 2 * (total + n)).await;
            let through_cpu = cpu.per(&stack, &orchestrator, &agent, n);
            let t = n as f64 / elapsed.as_secs_f64();
            total += n;
            println!(
                "round {round_no} ({latency} ms): through the orchestrator {t:.1}/s, directly {d:.1}/s ({:.0} %)",
                100.0 * t / d
            );
            // Uploads ending with the round: the intake set the pace; well before it, the
            // sending did.
            println!(
                "  files received by the orchestrator after {:.0} % of the round",
                100.0 * uploaded.as_secs_f64() / elapsed.as_secs_f64()
            );
            println!("  CPU per deposit, through: {through_cpu}");
            println!("  CPU per deposit, directly: {direct_cpu}");
            println!(
                "  memory (orchestrator, agent) after {}: {}",
                memory
                    .iter()
                    .map(|(k, _, _)| (total - n + k).to_string())
                    .collect::<Vec<_>>()
                    .join(" / "),
                memory
                    .iter()
                    .map(|(_, o, a)| format!("{o} KiB, {a} KiB"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
            through_rates.push(t);
            direct_rates.push(d);
        }
        let (t, d) = (median(&mut through_rates), median(&mut direct_rates));
        results.push((latency, t, d));
    }
    let at_mock = registered(&http, &stack).await;
    assert_eq!(
        at_mock,
        2 * total,
        "the mock holds each deposit once: {total} through, {total} direct"
    );
    println!("medians of {rounds} rounds (target: ratio ≥ 80 %):");
    for (latency, t, d) in &results {
        println!(
            "  mock answering after {latency} ms: through the orchestrator {t:.1} deposits/s, \
             directly {d:.1} deposits/s, ratio {:.0} %",
            100.0 * t / d
        );
    }
    println!(
        "memory after {total} deposits: orchestrator {} KiB (before {rss_o0}), deposit agent {} KiB (before {rss_a0})",
        orchestrator.rss_kib(),
        agent.rss_kib()
    );

    if big_mb > 0 && callgrind_dir().is_none() {
        big_file(big_mb, &channel, &token, &orchestrator, &agent, work.path()).await;
    }
    orchestrator.stop();
    agent.stop();
    if let Some(dir) = callgrind_dir() {
        let per = |role: &str| callgrind_total(&dir, role) / total.max(1) as u64;
        println!(
            "instructions per deposit through (callgrind): orchestrator {}, deposit agent {} (profiles in {})",
            per("orchestrator"),
            per("deposit-agent"),
            dir.display()
        );
    }
    stack.stop();
    if std::env::var_os("KEEP_WORK").is_some_and(|v| !v.is_empty()) {
        println!("work directory kept: {}", work.keep().display());
    }
}

/// Waits until the mock holds `count` deposits and has read each file (it reads them
/// after answering; its control API then shows their declaration's month).
async fn files_read(http: &reqwest::Client, stack: &common::Stack, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = deposits_at_mock(http, stack).await;
        let read = list.iter().filter(|d| !d["month"].is_null()).count();
        if read >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the mock read {read} of {count} files"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deposits the mock registered (its control API).
async fn registered(http: &reqwest::Client, stack: &common::Stack) -> usize {
    deposits_at_mock(http, stack).await.len()
}

/// The deposits of the mock's `GET /__admin/deposits`.
async fn deposits_at_mock(http: &reqwest::Client, stack: &common::Stack) -> Vec<serde_json::Value> {
    let list: serde_json::Value = http
        .get(format!(
            "{}/deposits",
            stack.file.mocks["net-entreprises"].admin
        ))
        .bearer_auth(&stack.file.mocks_admin_token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    match list {
        serde_json::Value::Array(a) => a,
        other => panic!("the mock's deposits: {other}"),
    }
}

/// Uploads one file in messages of at most [`UPLOAD_CHUNK`] bytes; the deposit's id.
async fn upload(
    channel: &Channel,
    token: &str,
    name: &str,
    size: u64,
    chunks: impl futures::Stream<Item = Vec<u8>> + Send + 'static,
) -> i64 {
    let file_name = name.to_owned();
    let start = futures::stream::once(async move {
        DsnUpload {
            start: Some(DsnUploadStart {
                file_name,
                total_size: size,
                user: String::new(),
            }),
            data: Vec::new(),
        }
    });
    let data = chunks.map(|data| DsnUpload { start: None, data });
    let name = name.to_owned();
    DepositsClient::new(channel.clone())
        .deposit(common::authed(token, start.chain(data)))
        .await
        .unwrap_or_else(|e| panic!("{name} not recorded: {e}"))
        .into_inner()
        .id
}

async fn get(channel: &Channel, token: &str, id: i64) -> DsnDeposit {
    DepositsClient::new(channel.clone())
        .get_deposit(common::authed(token, GetDsnDepositRequest { id }))
        .await
        .unwrap()
        .into_inner()
}

/// The files uploaded `CONCURRENCY` at a time, while the orchestrator deposits them;
/// done when the last is accepted. Memory of (orchestrator, agent) after 10 %, half and
/// all of the files were accepted; the time; the time the uploads took.
async fn through(
    channel: &Channel,
    token: &str,
    files: &[Vec<u8>],
    orchestrator: &Process,
    agent: &Process,
) -> (Vec<(usize, u64, u64)>, Duration, Duration) {
    let n = files.len();
    let marks = [n / 10, n / 2, n];
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let uploads = {
        let files: Vec<Vec<u8>> = files.to_vec();
        let channel = channel.clone();
        let token = token.to_owned();
        tokio::spawn(async move {
            futures::stream::iter(files.into_iter().enumerate())
                .for_each_concurrent(CONCURRENCY, |(i, bytes)| {
                    let channel = channel.clone();
                    let token = token.clone();
                    let tx = tx.clone();
                    async move {
                        let size = bytes.len() as u64;
                        let id = upload(
                            &channel,
                            &token,
                            &format!("DSN_{i:04}.txt"),
                            size,
                            futures::stream::iter(
                                bytes
                                    .chunks(UPLOAD_CHUNK)
                                    .map(<[u8]>::to_vec)
                                    .collect::<Vec<_>>(),
                            ),
                        )
                        .await;
                        let _ = tx.send(id);
                    }
                })
                .await;
            started.elapsed()
        })
    };
    // Followed oldest first: the queue deposits in that order.
    let mut pending = std::collections::VecDeque::new();
    let mut settled = 0;
    let mut memory = Vec::new();
    while settled < n {
        while let Ok(id) = rx.try_recv() {
            pending.push_back(id);
        }
        let Some(&id) = pending.front() else {
            pending.push_back(rx.recv().await.expect("uploads go on"));
            continue;
        };
        let d = get(channel, token, id).await;
        if d.settled {
            assert_eq!(d.state, "accepted", "{d:#?}");
            pending.pop_front();
            settled += 1;
            if marks.contains(&settled) {
                memory.push((settled, orchestrator.rss_kib(), agent.rss_kib()));
            }
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let elapsed = started.elapsed();
    let uploaded = uploads.await.unwrap();
    (memory, elapsed, uploaded)
}

/// The direct path: gzip, `POST /deposer-dsn/1.0/` with the token, read the AEE.
struct Direct {
    client: HttpClient,
    url: String,
    token: Token,
}

impl Direct {
    async fn new(stack: &common::Stack, ne: &str) -> Self {
        let mut settings =
            NetworkSettings::direct(ConnectionMode::Secure, &format!("{ne}/authentifier/1.0/"))
                .unwrap();
        settings.extra_ca_pem = Some(std::fs::read_to_string(&stack.file.mocks_ca).unwrap());
        let authenticator = Authenticator::new(Options::default());
        let prepared = authenticator.prepare(&settings);
        let mut auth = authenticator
            .authenticate_typed(
                &TypedIdentity {
                    siret: SIRET.into(),
                    nom: NOM.into(),
                    prenom: PRENOM.into(),
                    password: PASSWORD.to_owned().into(),
                },
                ServiceCode::new(25).unwrap(),
                &settings,
            )
            .await;
        let token = auth.take_token().expect("the mock gives a token");
        Self {
            client: authenticator.client(&prepared).unwrap(),
            url: format!("{ne}/deposer-dsn/1.0/"),
            token,
        }
    }

    async fn deposit(&self, file: &[u8]) -> bool {
        let file = file.to_vec();
        let body = tokio::task::spawn_blocking(move || {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&file).unwrap();
            gz.finish().unwrap()
        })
        .await
        .unwrap();
        let request = self
            .client
            .reqwest()
            .post(&self.url)
            .header("content-type", "text/plain")
            .header("content-encoding", "gzip")
            .header("accept-encoding", "gzip")
            .timeout(Duration::from_secs(60))
            .body(body);
        match self.token.authorize(request).send().await {
            Ok(r) => {
                let ok = r.status() == 200;
                ok && r.bytes().await.is_ok()
            }
            Err(_) => false,
        }
    }

    /// Each file deposited, `CONCURRENCY` at a time: (accepted, time).
    async fn round(&self, files: &[Vec<u8>]) -> (usize, Duration) {
        let started = Instant::now();
        let ok = futures::stream::iter(files)
            .map(|f| self.deposit(f))
            .buffer_unordered(CONCURRENCY)
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await;
        (ok, started.elapsed())
    }
}

/// The `g`-th distinct declaration of the bench: a month from January 1900 to December
/// 1999 (a month that has not begun yet would be refused) of the declarant's SIREN's
/// establishment number `g / 1200 + 1`. Deposited with the one account that has
/// credentials, whatever the establishment.
fn declaration(g: u32) -> (String, iea_dsn::Month) {
    let month =
        iea_dsn::Month::new(1900 + (g % 1200 / 12) as i32, (g % 12 + 1) as u8).expect("a month");
    (establishment(g / 1200 + 1), month)
}

/// The SIRET of the declarant's SIREN with NIC `n` (1 to 9999) and the key digit that
/// makes it valid.
fn establishment(n: u32) -> String {
    let siren = &SIRET[..9];
    (0..10)
        .map(|key| format!("{siren}{n:04}{key}"))
        .find(|s| iea_dsn::siret_key_is_valid(s))
        .expect("one key digit makes a SIRET valid")
}

/// One file of about `mb` MB, written to disk, uploaded from there in 1 MiB messages and
/// deposited; the orchestrator's and the agent's memory growth meanwhile.
async fn big_file(
    mb: usize,
    channel: &Channel,
    token: &str,
    orchestrator: &Process,
    agent: &Process,
    dir: &Path,
) {
    // An establishment of its own: no round's declaration is the same.
    let (siret, month) = (establishment(9999), iea_dsn::Month::new(1900, 1).unwrap());
    let per_employee = {
        let small = iea_dsn::sample(&iea_dsn::SampleSpec::new(&siret, month, 1000));
        small.len() / 1000
    };
    let employees = mb * 1_000_000 / per_employee;
    let path: PathBuf = dir.join("big.dsn");
    let made = Instant::now();
    let size = {
        let bytes = iea_dsn::sample(&iea_dsn::SampleSpec::new(&siret, month, employees));
        std::fs::write(&path, &bytes).unwrap();
        bytes.len() as u64
    };
    println!(
        "big file: {employees} employees, {size} bytes ({:.1} MiB), written in {:.1} s",
        size as f64 / f64::from(1 << 20),
        made.elapsed().as_secs_f64()
    );
    let before = (orchestrator.rss_kib(), agent.rss_kib());
    let reset = orchestrator.reset_peak() && agent.reset_peak();
    // Sampled too, in case the kernel's peak could not be reset.
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (o, a) = (orchestrator.pid(), agent.pid());
        let on = sampling.clone();
        tokio::spawn(async move {
            let mut max = (0, 0);
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                max.0 = max.0.max(common::memory_kib(o).0);
                max.1 = max.1.max(common::memory_kib(a).0);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            max
        })
    };
    let started = Instant::now();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let chunks = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]).await.unwrap() {
                0 => break,
                k => filled += k,
            }
        }
        (filled > 0).then(|| {
            buf.truncate(filled);
            (buf, file)
        })
    });
    let id = upload(channel, token, "DSN_gros.txt", size, chunks).await;
    let recorded = started.elapsed();
    let d = loop {
        let d = get(channel, token, id).await;
        if d.settled {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.await.unwrap();
    assert_eq!(d.state, "accepted", "{d:#?}");
    let peak = if reset {
        (
            orchestrator.peak_kib().max(sampled.0),
            agent.peak_kib().max(sampled.1),
        )
    } else {
        sampled
    };
    println!(
        "big file: recorded (upload, check, store) in {:.1} s, accepted after {:.1} s",
        recorded.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "big file memory growth ({}): orchestrator {} KiB ({} → peak {}), deposit agent {} KiB ({} → peak {}) (target < 32768 KiB each)",
        if reset {
            "peak RSS reset before, and sampled every 10 ms"
        } else {
            "RSS sampled every 10 ms"
        },
        peak.0.saturating_sub(before.0),
        before.0,
        peak.0,
        peak.1.saturating_sub(before.1),
        before.1,
        peak.1,
    );
    let _ = std::fs::remove_file(&path);
}

/// `LATENCY_MS`: the mock's answer delays measured, in ms, comma-separated; by default
/// 0 (on loopback, at once: the through path's own cost decides), 5 and 20 (servers that
/// take 5 or 20 ms per request, still quicker than Net-entreprises over the Internet).
fn latencies() -> Vec<u64> {
    let text = std::env::var("LATENCY_MS").unwrap_or_else(|_| "0,5,20".into());
    let v: Vec<u64> = text
        .split(',')
        .map(|t| {
            t.trim()
                .parse()
                .unwrap_or_else(|_| panic!("LATENCY_MS: {text:?} is not a list of ms"))
        })
        .collect();
    assert!(!v.is_empty(), "LATENCY_MS: no latency");
    v
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU time of the mocks' process, the orchestrator, the agent, this one and the
/// PostgreSQL backends serving the orchestrator ([`database_backends`]; none on SQLite).
struct CpuMeter([Duration; 5]);

impl CpuMeter {
    fn read(stack: &common::Stack, o: &Process, a: &Process) -> [Duration; 5] {
        [
            common::cpu_time(&stack.child.id().to_string()),
            o.cpu(),
            a.cpu(),
            common::cpu_time("self"),
            database_backends()
                .iter()
                .map(|pid| common::cpu_time(pid))
                .sum(),
        ]
    }

    fn start(stack: &common::Stack, o: &Process, a: &Process) -> Self {
        Self(Self::read(stack, o, a))
    }

    fn per(&self, stack: &common::Stack, o: &Process, a: &Process, n: usize) -> String {
        let now = Self::read(stack, o, a);
        let us = |i: usize| now[i].saturating_sub(self.0[i]).as_micros() as usize / n.max(1);
        let mut out = format!(
            "mock {} µs, orchestrator {} µs, agent {} µs, bench {} µs",
            us(0),
            us(1),
            us(2),
            us(3)
        );
        if database_name().is_some() {
            out.push_str(&format!(", PostgreSQL backends {} µs", us(4)));
        }
        out
    }
}

/// The database of `IEA_DATABASE_URL`, when the measured orchestrator is on PostgreSQL.
fn database_name() -> Option<String> {
    let url = std::env::var("IEA_DATABASE_URL").ok()?;
    let name = url.rsplit_once('/')?.1;
    let name = name.split_once('?').map_or(name, |(n, _)| n);
    (!name.is_empty()).then(|| name.to_owned())
}

/// The PostgreSQL backends serving the measured orchestrator's database, when the server
/// runs on this machine: the processes titled `postgres: USER DATABASE HOST…` (their
/// pids). A backend that exits between two readings takes its CPU with it: the
/// orchestrator keeps its connections for its whole life.
fn database_backends() -> Vec<String> {
    let Some(name) = database_name() else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| {
            let pid = e.ok()?.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let title = String::from_utf8_lossy(&cmdline);
            let mut words = title.strip_prefix("postgres: ")?.split_whitespace();
            (words.nth(1) == Some(name.as_str())).then_some(pid)
        })
        .collect()
}
