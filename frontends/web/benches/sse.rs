//! 1,000 browsers following the status: server-sent-event subscribers on one web console
//! (the `iea-web` binary in a child process, so that its memory is read apart from the
//! benchmark's clients), in front of an embedded stack. A transition is triggered; the
//! benchmark prints how many subscribers received it, the time until the last one did,
//! and the memory each subscriber costs the console (targets: all, < 100 ms, < 64 KiB).
//!
//! `cargo bench -p iea-web --bench sse` (`SUBSCRIBERS=N` to change the count).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use futures::StreamExt;
use iea_stack::{RunningStack, StackOptions};
use tokio::sync::mpsc;

/// (current RSS) of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Console(Child);

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let subscribers: usize = std::env::var("SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let stack = RunningStack::start(StackOptions {
        data_dir: dir.path().to_owned(),
        demo: true,
        ..Default::default()
    })
    .await
    .expect("stack starts");
    let f = stack.file.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let console = Console(
        Command::new(env!("CARGO_BIN_EXE_iea-web"))
            .env("IEA_WEB__LISTEN", format!("127.0.0.1:{port}"))
            .env("IEA_WEB__ORCHESTRATOR", &f.orchestrator)
            .env("IEA_WEB__CA", &f.ca)
            .env(
                "IEA_WEB__ORCHESTRATOR_SERVER_NAME",
                &f.orchestrator_server_name,
            )
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("iea-web starts"),
    );
    let pid = console.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/connexion")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the console did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let password = std::fs::read_to_string(dir.path().join("admin-password")).unwrap();
    let r = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"user": "Administrateur", "password": password.trim()}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    // One subscriber first, so the console's own watch and buffers are in the baseline.
    let warm = http
        .get(format!("{base}/api/v1/status/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let mut warm = warm.bytes_stream();
    let _ = warm.next().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid);

    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subscribers);
    let (got_tx, mut got_rx) = mpsc::channel::<Instant>(subscribers);
    for _ in 0..subscribers {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let (url, cookie) = (format!("{base}/api/v1/status/events"), cookie.clone());
        let (ready, got) = (ready_tx.clone(), got_tx.clone());
        tokio::spawn(async move {
            let r = http
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("events");
            let mut events = r.bytes_stream();
            let mut buf = String::new();
            let mut first = true;
            while let Some(Ok(chunk)) = events.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    if !event.contains("event: status") {
                        continue;
                    }
                    if first {
                        first = false;
                        let _ = ready.send(()).await;
                    }
                    if event.contains("\"indicator\":\"assistance\"") {
                        let _ = got.send(Instant::now()).await;
                        return;
                    }
                }
            }
        });
    }
    drop((ready_tx, got_tx));
    for _ in 0..subscribers {
        ready_rx
            .recv()
            .await
            .expect("every subscriber gets the current status");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib(pid);

    let start = Instant::now();
    let r = http
        .post(format!("{base}/api/v1/assistance"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut received = 0;
    let mut last = Duration::ZERO;
    while let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(30), got_rx.recv()).await {
        received += 1;
        last = last.max(at.duration_since(start));
        if received == subscribers {
            break;
        }
    }
    let per_subscriber = rss_after.saturating_sub(rss_before) as f64 / subscribers as f64;
    println!("subscribers: {subscribers}, received the change: {received}");
    println!(
        "latency of the last: {:.1} ms (target < 100 ms)",
        last.as_secs_f64() * 1000.0
    );
    println!(
        "console memory: {rss_before} KiB before, {rss_after} KiB with the subscribers, {per_subscriber:.1} KiB per subscriber (target < 64 KiB)"
    );
    drop(console);
    stack.stop().await.expect("stack stops");
    assert_eq!(
        received, subscribers,
        "every subscriber received the change"
    );
}
