//! Waiting for something a stack does in its own time.

use std::time::{Duration, Instant};

use iea_proto::v1::StatusReport;

/// Waits until `check` holds, asking every 20 ms, for at most 20 s.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "the condition did not hold within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `stream` until a report satisfies `pred` (at most 20 s); returns every report
/// read, the matching one last.
pub async fn wait_for(
    stream: &mut tonic::Streaming<StatusReport>,
    mut pred: impl FnMut(&StatusReport) -> bool,
) -> Vec<StatusReport> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(r) = stream.message().await.expect("watch stream") {
            let done = pred(&r);
            seen.push(r);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "condition not reached; saw {seen:#?}"
    );
    seen
}
