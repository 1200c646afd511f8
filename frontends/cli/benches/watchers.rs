//! 1,000 concurrent status watchers on one orchestrator: a transition is triggered, and
//! the benchmark prints how many watchers received it, the time until the last one did,
//! and the memory each watcher costs the stack process.
//!
//! `cargo bench -p iea-cli --bench watchers` (`WATCHERS=N` to change the count).

mod common;

use std::time::{Duration, Instant};

use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::{ActivateAssistanceRequest, Indicator, WatchStatusRequest};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    let watchers: usize = std::env::var("WATCHERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let stack = common::Stack::start();
    let token = stack.login_admin().await;
    // Several connections, as many front-ends would open.
    let mut channels = Vec::new();
    for _ in 0..10 {
        channels.push(stack.channel().await);
    }
    let (rss_before, _) = stack.memory_kib();

    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(watchers);
    let (got_tx, mut got_rx) = mpsc::channel::<Instant>(watchers);
    for i in 0..watchers {
        let ch = channels[i % channels.len()].clone();
        let ready = ready_tx.clone();
        let got = got_tx.clone();
        tokio::spawn(async move {
            let mut stream = StatusClient::new(ch)
                .watch_status(WatchStatusRequest {})
                .await
                .expect("watch")
                .into_inner();
            let _first = stream.message().await.expect("first report");
            let _ = ready.send(()).await;
            while let Ok(Some(r)) = stream.message().await {
                if r.indicator == Indicator::Assistance as i32 {
                    let _ = got.send(Instant::now()).await;
                    break;
                }
            }
            // Keep the stream open until the benchmark ends.
            let _ = stream.message().await;
        });
    }
    drop(ready_tx);
    drop(got_tx);
    for _ in 0..watchers {
        ready_rx.recv().await.expect("every watcher connected");
    }
    let (rss_after, _) = stack.memory_kib();

    let started = Instant::now();
    StatusClient::new(stack.channel().await)
        .activate_assistance(common::authed(&token, ActivateAssistanceRequest {}))
        .await
        .expect("transition");
    let mut received = 0;
    let mut last = Duration::ZERO;
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    while received < watchers {
        tokio::select! {
            t = got_rx.recv() => match t {
                Some(t) => { received += 1; last = t.duration_since(started); }
                None => break,
            },
            _ = &mut deadline => break,
        }
    }
    let per_watcher = (rss_after.saturating_sub(rss_before)) as f64 / watchers as f64;
    println!("watchers: {watchers}");
    println!("received the transition: {received}/{watchers}");
    println!(
        "time until the last one: {:.1} ms",
        last.as_secs_f64() * 1000.0
    );
    println!(
        "stack process memory: {rss_before} KiB before, {rss_after} KiB with the watchers: {per_watcher:.1} KiB per watcher"
    );
    stack.stop();
}
