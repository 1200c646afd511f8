//! The update client against the update mock, over mutual TLS: from 3.00.70 to 3.00.72
//! with notes and scripts, assistance mode, resume after an interrupted download. (The
//! crash at each apply step and the fall-back are case 9 of `adversarial.rs`.)

mod common;

use common::{Options, available_versions, release_spec, start, start_with};
use futures::StreamExt;
use iea_mock_updates::fixtures::{FIRST, LATEST};
use iea_proto::agent::v1::ApplyPhase;
use serde_json::json;

#[tokio::test]
async fn an_installation_goes_from_3_00_70_to_3_00_72_with_its_notes_and_scripts() {
    let w = start().await;
    let check = w.check().await.expect("check");
    assert_eq!(check.installed_version, "");
    assert_eq!(available_versions(&check), [FIRST, LATEST]);
    assert!(check.available.iter().all(|r| r.notes_available));

    let first = w.apply(FIRST).await;
    assert!(first.ok(), "{:?}", first.error);
    assert_eq!(w.current().as_deref(), Some(FIRST));

    let check = w.check().await.expect("check");
    assert_eq!(check.installed_version, FIRST);
    assert_eq!(available_versions(&check), [LATEST]);
    let release = &check.available[0];
    assert_eq!(release.script_count, 2);
    assert!(release.notes_available);
    assert!(release.package_length > 0);
    assert_eq!(
        release.published_at.as_ref().map(|t| t.seconds),
        Some(1_552_982_400)
    );

    let notes = w.notes(LATEST).await.expect("notes");
    assert!(notes.contains("V.3.00.72 / 19 mars 2019"), "{notes}");
    assert!(
        notes.contains("bascule du serveur en mode sécurisé"),
        "{notes}"
    );
    let old_notes = w.notes(FIRST).await.expect("notes of 3.00.70");
    assert!(old_notes.contains("Forfait social"));

    let applied = w.apply(LATEST).await;
    assert!(applied.ok(), "{:?}", applied.error);
    let phases: Vec<ApplyPhase> = applied.progress.iter().map(|p| p.phase()).collect();
    for phase in [
        ApplyPhase::Metadata,
        ApplyPhase::Download,
        ApplyPhase::Verify,
        ApplyPhase::Stage,
        ApplyPhase::Switch,
        ApplyPhase::StartCheck,
        ApplyPhase::Scripts,
        ApplyPhase::Done,
    ] {
        assert!(phases.contains(&phase), "{phase:?} missing from {phases:?}");
    }
    let last_download = applied
        .progress
        .iter()
        .rfind(|p| p.phase() == ApplyPhase::Download)
        .expect("download progress");
    assert_eq!(last_download.bytes_done, last_download.bytes_total);
    assert_eq!(last_download.bytes_total, release.package_length);

    assert_eq!(w.current().as_deref(), Some(LATEST));
    assert_eq!(w.previous().as_deref(), Some(FIRST));
    assert_eq!(w.versions_present(), [FIRST, LATEST]);
    w.assert_one_complete_version();

    let params = w.parameters();
    assert_eq!(params["connexion.mode_par_defaut"], "securise");
    assert_eq!(params["forfait_social.moins_50_salaries.taux"], "0");
    let scripts = w.list_scripts().await;
    assert_eq!(scripts.len(), 3);
    assert!(
        scripts
            .iter()
            .all(|s| s.state == "applied" && s.applied_at.is_some())
    );

    let check = w.check().await.expect("check");
    assert_eq!(check.installed_version, LATEST);
    assert!(check.available.is_empty());
}

#[tokio::test]
async fn scripts_wait_as_pending_in_assistance_mode_and_run_once_later() {
    let w = start_with(Options {
        installed_version: Some("3.00.68"),
        ..Default::default()
    })
    .await;
    let applied = w.apply_with(LATEST, true).await;
    assert!(applied.ok(), "{:?}", applied.error);
    let scripts = w.list_scripts().await;
    assert_eq!(scripts.len(), 2);
    assert!(scripts.iter().all(|s| s.state == "pending"));
    assert!(w.parameters().get("connexion.mode_par_defaut").is_none());

    let ran = w.apply_scripts().await;
    let names: Vec<&str> = ran.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["iea-3.00.72.script-001.json", "iea-3.00.72.script-002.json"]
    );
    assert_eq!(w.parameters()["connexion.mode_par_defaut"], "securise");
    assert!(w.apply_scripts().await.is_empty(), "a script runs once");
}

#[tokio::test]
async fn an_interrupted_download_resumes_and_fetches_again_less_than_a_tenth() {
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

    // First try: dropped ("killed") once half the package has arrived.
    let mut stream = w
        .agent
        .clone()
        .apply(w.apply_request("3.00.74", false))
        .await
        .expect("apply starts")
        .into_inner();
    loop {
        let p = stream
            .next()
            .await
            .expect("progress before the end")
            .expect("no error");
        if p.phase() == ApplyPhase::Download && p.bytes_done >= length / 2 {
            assert!(p.bytes_per_second > 0);
            assert!(p.bytes_total == length);
            break;
        }
    }
    drop(stream);
    assert_eq!(w.current(), None, "nothing installed yet");

    // Second try: resumes.
    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": true, "bytes_per_second": 0})),
    )
    .await;
    let applied = w.apply("3.00.74").await;
    assert!(applied.ok(), "{:?}", applied.error);
    assert_eq!(w.current().as_deref(), Some("3.00.74"));

    let stats = w.stats().await;
    let served = stats["files"][&package_path]["bytes"].as_u64().unwrap();
    assert!(stats["range_requests"].as_u64().unwrap() >= 1);
    let refetched = served.saturating_sub(length);
    assert!(
        refetched < length / 10,
        "fetched {served} bytes for a package of {length}: {refetched} again"
    );
}

#[tokio::test]
async fn a_server_without_range_support_gets_a_fresh_download() {
    let w = start().await;
    let mut spec = release_spec("3.00.74");
    spec["payload_bytes"] = json!(4 * 1024 * 1024);
    let published = w.publish(spec).await;
    let length = published["package_length"].as_u64().unwrap();
    // A partial file of the right name is there, as a killed download leaves it.
    let downloads = w.state_dir().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    std::fs::write(
        downloads.join(format!(
            "{}.part",
            published["package_sha256"].as_str().unwrap()
        )),
        vec![0u8; 1024 * 1024],
    )
    .unwrap();
    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": false})),
    )
    .await;
    let applied = w.apply("3.00.74").await;
    assert!(applied.ok(), "{:?}", applied.error);
    let stats = w.stats().await;
    assert_eq!(stats["range_requests"], 0);
    assert!(stats["bytes_served"].as_u64().unwrap() >= length);
}
