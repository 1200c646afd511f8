//! The update client as a real process, killed with SIGKILL in the middle of a download
//! and started again: the download resumes and fetches again less than a tenth of the
//! package. (The in-process tests inject a failure at each apply step; this one proves
//! the same state directory survives a real kill.)

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{release_spec, start};
use futures::StreamExt;
use iea_proto::agent::v1::ApplyPhase;
use iea_proto::agent::v1::update_agent_client::UpdateAgentClient;
use serde_json::json;
use tonic::transport::Channel;

/// Kills the process when dropped, whatever happened.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent binary on `port`, with the world's directories.
fn spawn_agent(w: &common::World, port: u16) -> Process {
    let files = w.test.component_files("update-client");
    let child = Command::new(env!("CARGO_BIN_EXE_iea-update-client"))
        .env("IEA_UPDATE_CLIENT__LISTEN", format!("127.0.0.1:{port}"))
        .env("IEA_UPDATE_CLIENT__TLS__CA", &files.ca)
        .env("IEA_UPDATE_CLIENT__TLS__CERT", &files.cert)
        .env("IEA_UPDATE_CLIENT__TLS__KEY", &files.key)
        .env(
            "IEA_UPDATE_CLIENT__STATE_DIR",
            w.test.dir().join("process-state"),
        )
        .env(
            "IEA_UPDATE_CLIENT__INSTALL_DIR",
            w.test.dir().join("process-install"),
        )
        .env(
            "IEA_UPDATE_CLIENT__TRUSTED_ROOT",
            w.test.dir().join("root.json"),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the agent binary starts");
    Process(child)
}

/// A client of the agent on `port`, once it accepts connections.
async fn connect(w: &common::World, port: u16) -> UpdateAgentClient<Channel> {
    iea_agent_testkit::wait_listening(port, Duration::from_secs(20)).await;
    let addr = ([127, 0, 0, 1], port).into();
    UpdateAgentClient::new(
        w.test
            .channel("update-client", addr, Duration::from_secs(60)),
    )
}

#[tokio::test]
async fn a_killed_update_client_resumes_its_download_after_a_restart() {
    let w = start().await;
    let mut spec = release_spec("3.00.74");
    spec["payload_bytes"] = json!(8 * 1024 * 1024);
    let published = w.publish(spec).await;
    let length = published["package_length"].as_u64().unwrap();
    let package_path = format!(
        "targets/{}.iea-3.00.74.tar",
        published["package_sha256"].as_str().unwrap()
    );
    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": true, "bytes_per_second": 8 * 1024 * 1024})),
    )
    .await;

    let port = iea_agent_testkit::free_port();
    let mut first = spawn_agent(&w, port);
    let mut stream = connect(&w, port)
        .await
        .apply(w.apply_request("3.00.74", false))
        .await
        .expect("apply starts")
        .into_inner();
    loop {
        let p = stream.next().await.expect("progress").expect("no error");
        if p.phase() == ApplyPhase::Download && p.bytes_done >= length / 2 {
            break;
        }
    }
    // SIGKILL: no chance to clean up or flush anything more.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    drop(stream);

    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": true, "bytes_per_second": 0})),
    )
    .await;
    let _second = spawn_agent(&w, port);
    let mut stream = connect(&w, port)
        .await
        .apply(w.apply_request("3.00.74", false))
        .await
        .expect("apply starts again")
        .into_inner();
    let mut last = None;
    while let Some(p) = stream.next().await {
        last = Some(p.expect("no error"));
    }
    assert_eq!(last.expect("progress").phase(), ApplyPhase::Done);
    let current = common::link_version(&w.test.dir().join("process-install").join("current"));
    assert_eq!(current.as_deref(), Some("3.00.74"));

    let stats = w.stats().await;
    let served = stats["files"][&package_path]["bytes"].as_u64().unwrap();
    let refetched = served.saturating_sub(length);
    assert!(
        refetched < length / 10,
        "{refetched} bytes fetched twice out of {length}: the download did not resume"
    );
}
