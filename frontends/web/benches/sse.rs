//! 1,000 browsers following the status: server-sent-event subscribers on one web console
//! (the `iea-web` binary in a child process, so that its memory is read apart from the
//! benchmark's clients), in front of an embedded stack in this process (the one stack
//! driver's `TestStack`: on SQLite, or PostgreSQL when `IEA_TEST_DATABASE_URL` names a
//! server). A transition is triggered; the
//! benchmark prints how many subscribers received it, the time until the last one did,
//! and the memory each subscriber costs the console (targets: all, < 100 ms, < 64 KiB).
//! The latency runs from the request that makes the change until the last subscriber has
//! read and parsed it; each subscriber is a lean HTTP/1.1 client of its own ([`Subscriber`])
//! that stays connected until the end, as a browser would.
//!
//! `cargo bench -p iea-web --bench sse` (`SUBSCRIBERS=N` to change the count).

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use futures::StreamExt;
use iea_stack_testkit::{TestStack, memory_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// One subscriber as lean as a client can be, so that the benchmark's 1,000 clients (in
/// this process, on the same cores) weigh as little as they can on what is measured: a
/// plain HTTP/1.1 `GET` on its own connection, read with one large buffer, the chunked
/// body decoded and each server-sent event parsed (its JSON too) as it arrives.
struct Subscriber {
    tcp: TcpStream,
    /// Bytes read and not yet decoded.
    raw: Vec<u8>,
    /// The decoded body not yet split into events.
    body: Vec<u8>,
}

impl Subscriber {
    async fn connect(addr: SocketAddr, cookie: &str) -> Self {
        let mut tcp = TcpStream::connect(addr).await.expect("connects");
        tcp.set_nodelay(true).unwrap();
        let request = format!(
            "GET /api/v1/status/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("sends");
        let mut s = Self {
            tcp,
            raw: Vec::with_capacity(16 * 1024),
            body: Vec::new(),
        };
        let end = loop {
            if let Some(end) = find(&s.raw, b"\r\n\r\n") {
                break end;
            }
            assert!(s.read().await, "the console closed before answering");
        };
        let head = String::from_utf8_lossy(&s.raw[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: text/event-stream"),
            "{head}"
        );
        assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
        s.raw.drain(..end + 4);
        s
    }

    /// Reads once; false at the end of the connection.
    async fn read(&mut self) -> bool {
        if self.raw.capacity() - self.raw.len() < 4096 {
            self.raw.reserve(16 * 1024);
        }
        self.tcp.read_buf(&mut self.raw).await.expect("reads") > 0
    }

    /// The data of the next `status` event, parsed; `None` when the stream ends.
    async fn next_status(&mut self) -> Option<serde_json::Value> {
        loop {
            while let Some(end) = find(&self.body, b"\n\n") {
                let event = String::from_utf8(self.body.drain(..end + 2).collect()).unwrap();
                let (mut name, mut data) = ("message", String::new());
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim_start();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if name == "status" {
                    return Some(serde_json::from_str(&data).expect("a status in JSON"));
                }
            }
            // Whole chunks of the body: `size\r\n`, the bytes, `\r\n`; size 0 ends it.
            let mut pos = 0;
            while let Some(eol) = find(&self.raw[pos..], b"\r\n") {
                let line = std::str::from_utf8(&self.raw[pos..pos + eol]).unwrap();
                let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                    .expect("a chunk size");
                if size == 0 {
                    return None;
                }
                let start = pos + eol + 2;
                if self.raw.len() < start + size + 2 {
                    break;
                }
                self.body.extend_from_slice(&self.raw[start..start + size]);
                assert_eq!(&self.raw[start + size..start + size + 2], b"\r\n");
                pos = start + size + 2;
            }
            if pos > 0 {
                self.raw.drain(..pos);
            } else if !self.read().await {
                return None;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// CPU time of every thread of a process so far (`/proc/PID/task/*/schedstat`, in ns).
fn cpu(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    Duration::from_nanos(
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum(),
    )
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
    let stack = TestStack::start_configured(|_| {}).await;
    let f = stack.file().clone();
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
    let password = stack.admin_password();
    let r = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"user": "Administrateur", "password": password}))
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
    let rss_before = memory_kib(pid).0;

    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subscribers);
    let (got_tx, mut got_rx) = mpsc::channel::<Instant>(subscribers);
    // Subscribers keep their connection until the measure ends, as browsers would: one
    // that closes early would make the console tear it down while it still sends.
    let (done_tx, done_rx) = watch::channel(false);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..subscribers {
        let (ready, got, cookie) = (ready_tx.clone(), got_tx.clone(), cookie.clone());
        let mut done = done_rx.clone();
        tokio::spawn(async move {
            let mut events = Subscriber::connect(addr, &cookie).await;
            let mut first = true;
            while let Some(status) = events.next_status().await {
                if first {
                    first = false;
                    let _ = ready.send(()).await;
                }
                if status["indicator"] == "assistance" {
                    let _ = got.send(Instant::now()).await;
                    break;
                }
            }
            let _ = done.wait_for(|d| *d).await;
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
    let rss_after = memory_kib(pid).0;

    let (console_cpu, own_cpu) = (cpu(pid), cpu(std::process::id()));
    let start = Instant::now();
    let r = http
        .post(format!("{base}/api/v1/assistance"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    let answered = start.elapsed();
    assert_eq!(r.status(), 200);
    let mut received = 0;
    let mut first = Duration::MAX;
    let mut last = Duration::ZERO;
    while let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(30), got_rx.recv()).await {
        received += 1;
        first = first.min(at.duration_since(start));
        last = last.max(at.duration_since(start));
        if received == subscribers {
            break;
        }
    }
    let (console_cpu, own_cpu) = (cpu(pid) - console_cpu, cpu(std::process::id()) - own_cpu);
    let _ = done_tx.send(true);
    let per_subscriber = rss_after.saturating_sub(rss_before) as f64 / subscribers as f64;
    println!("subscribers: {subscribers}, received the change: {received}");
    println!(
        "latency of the last: {:.1} ms (target < 100 ms); the change was asked at 0, answered after {:.1} ms, the first subscriber had it after {:.1} ms",
        last.as_secs_f64() * 1000.0,
        answered.as_secs_f64() * 1000.0,
        first.as_secs_f64() * 1000.0,
    );
    println!(
        "CPU from the change until the last subscriber had it: console {:.1} ms, this process (the subscribers and the stack) {:.1} ms",
        console_cpu.as_secs_f64() * 1000.0,
        own_cpu.as_secs_f64() * 1000.0,
    );
    println!(
        "console memory: {rss_before} KiB before, {rss_after} KiB with the subscribers, {per_subscriber:.1} KiB per subscriber (target < 64 KiB)"
    );
    drop(console);
    stack.stop().await;
    assert_eq!(
        received, subscribers,
        "every subscriber received the change"
    );
}
