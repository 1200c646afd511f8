//! Download benchmark: one large package (1 GiB by default) from the update mock, through
//! the update client and with `curl`, in one run; prints both throughputs and the update
//! client's peak memory.
//!
//! `cargo bench -p iea-update-client --bench download` (release build). The size is
//! `IEA_BENCH_BYTES` (bytes). Needs `curl` on the path and about four times the size in
//! free space under the temporary directory. Not run in CI.
//!
//! The update client runs as its own process (`iea-update-client`), driven over mutual
//! TLS as the orchestrator drives it, so that its peak resident memory (`VmHWM` from
//! `/proc/<pid>/status`) is its own; the mock runs in this process. The client's
//! throughput is the package length over the time between its first and its last
//! download progress (receiving, SHA-256, writing to the file); the time including the
//! `fsync` and verification is printed beside it. curl writes its copy to a file on the
//! same disk, once before and once after the client; their mean is the reference.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use iea_proto::agent::v1::update_agent_client::UpdateAgentClient;
use iea_proto::agent::v1::{ApplyPhase, ApplyRequest};
use iea_proto::common::v1 as pb;
use iea_runtime::pki;
use iea_runtime::shutdown::Shutdown;
use serde_json::{Value, json};

const TOKEN: &str = "bench";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iea_runtime::install_crypto_provider();
    let size: u64 = std::env::var("IEA_BENCH_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 30);
    let dir = tempfile::tempdir()?;
    let pki_dir = dir.path().join("pki");
    pki::init(&pki_dir, &[])?;
    let shutdown = Shutdown::new();

    // The mock, with one large release.
    let mut settings = iea_mock_updates::Settings::default();
    settings.listen.tls = pki::mock_files(&pki_dir);
    settings.listen.admin_token = TOKEN.into();
    settings.root_file = Some(dir.path().join("root.json"));
    settings.fixtures = false;
    let mock = iea_mock_updates::App::build(settings).await?;
    let https = format!("https://localhost:{}", mock.https_addr().port());
    let admin = format!("http://127.0.0.1:{}", mock.admin_addr().port());
    tokio::spawn(mock.run_until(shutdown.clone()));
    let http = reqwest::Client::new();
    println!("publishing a package of {size} bytes…");
    let published: Value = http
        .post(format!("{admin}/__admin/releases"))
        .bearer_auth(TOKEN)
        .json(&json!({"version": "3.00.99", "payload_bytes": size}))
        .timeout(Duration::from_secs(600))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let length = published["package_length"].as_u64().unwrap_or(0);
    let sha = published["package_sha256"].as_str().unwrap_or_default();
    let url = format!("{https}/targets/{sha}.iea-3.00.99.tar");

    // curl, before and after the update client (the disk's write-back weighs on
    // whichever runs later).
    let curl = || -> anyhow::Result<Duration> {
        let out = dir.path().join("curl.bin");
        let started = Instant::now();
        let status = Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(pki_dir.join("mocks-ca.pem"))
            .arg("-o")
            .arg(&out)
            .arg(&url)
            .status()?;
        let took = started.elapsed();
        anyhow::ensure!(status.success(), "curl failed: {status}");
        let _ = std::fs::remove_file(&out);
        Ok(took)
    };
    let curl_first = curl()?;

    // The update client, as a process of its own.
    let port = free_port();
    let files = pki::component_files(&pki_dir, "update-client");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iea-update-client"))
        .env("IEA_UPDATE_CLIENT__LISTEN", format!("127.0.0.1:{port}"))
        .env("IEA_UPDATE_CLIENT__TLS__CA", &files.ca)
        .env("IEA_UPDATE_CLIENT__TLS__CERT", &files.cert)
        .env("IEA_UPDATE_CLIENT__TLS__KEY", &files.key)
        .env("IEA_UPDATE_CLIENT__STATE_DIR", dir.path().join("state"))
        .env("IEA_UPDATE_CLIENT__INSTALL_DIR", dir.path().join("install"))
        .env(
            "IEA_UPDATE_CLIENT__TRUSTED_ROOT",
            dir.path().join("root.json"),
        )
        .env("IEA_UPDATE_CLIENT__DOWNLOAD_DEADLINE_SECS", "3600")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let tls = iea_runtime::tls::client_config(
        &pki::component_files(&pki_dir, "orchestrator"),
        "update-client",
    )?;
    let channel =
        iea_runtime::grpc::channel(&format!("127.0.0.1:{port}"), tls, Duration::from_secs(3600))?;
    let mut agent = UpdateAgentClient::new(channel);
    // The process binds before it serves; wait for its port to answer (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "the update client did not start");
        tokio::task::yield_now().await;
    }
    let network = pb::NetworkSettings {
        connection_type: pb::ConnectionType::Direct.into(),
        mode: if std::env::var_os("IEA_BENCH_EXTENDED").is_some() {
            pb::ConnectionMode::Extended
        } else {
            pb::ConnectionMode::Secure
        }
        .into(),
        address: https.clone(),
        extra_ca_pem: std::fs::read_to_string(pki_dir.join("mocks-ca.pem"))?,
        ..Default::default()
    };
    let mut stream = agent
        .apply(ApplyRequest {
            network: Some(network),
            version: "3.00.99".into(),
            hold_scripts: false,
        })
        .await?
        .into_inner();
    let mut download_started = None;
    let mut downloaded = None;
    let mut verified = None;
    let apply_started = Instant::now();
    while let Some(item) = stream.next().await {
        let p = item?;
        match p.phase() {
            ApplyPhase::Download if download_started.is_none() && p.bytes_total > 0 => {
                download_started = Some(Instant::now());
            }
            ApplyPhase::Download if p.bytes_total > 0 && p.bytes_done == p.bytes_total => {
                downloaded = Some(Instant::now());
            }
            ApplyPhase::Verify if verified.is_none() => verified = Some(Instant::now()),
            _ => {}
        }
    }
    let apply_time = apply_started.elapsed();
    let peak = peak_rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();

    let curl_second = curl()?;
    shutdown.trigger();
    let (client_time, client_durable) = match (download_started, downloaded, verified) {
        (Some(a), Some(b), Some(c)) => (b - a, c - a),
        _ => anyhow::bail!("no download progress seen"),
    };
    let curl_time = (curl_first + curl_second) / 2;
    let curl_rate = mib_per_s(length, curl_time);
    let client_rate = mib_per_s(length, client_time);
    println!("package: {length} bytes");
    println!(
        "curl:          {curl_rate:8.1} MiB/s (mean of {:.2} s before and {:.2} s after the client)",
        curl_first.as_secs_f64(),
        curl_second.as_secs_f64()
    );
    println!(
        "update client: {client_rate:8.1} MiB/s ({:.2} s download with SHA-256; {:.1} MiB/s with fsync and verification; {:.2} s for the whole apply)",
        client_time.as_secs_f64(),
        mib_per_s(length, client_durable),
        apply_time.as_secs_f64()
    );
    println!(
        "ratio:         {:8.1} % of curl",
        100.0 * client_rate / curl_rate
    );
    match peak {
        Some(kib) => println!(
            "update client peak memory (VmHWM): {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("update client peak memory: unavailable"),
    }
    Ok(())
}
