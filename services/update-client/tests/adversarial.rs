//! The ten adversarial tests of `shared/update-security.md`, each against the update
//! mock's attack modes, through the agent over mutual TLS. Case 9 (a crash at every apply
//! step) is one test per step, with failure points injected in process.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Options, World, available_versions, release_spec, start, start_with};
use futures::StreamExt;
use iea_mock_updates::fixtures::{FIRST, LATEST};
use iea_proto::agent::v1::ApplyPhase;
use iea_update_client::Step;
use serde_json::{Value, json};

fn trust_file(w: &World) -> Value {
    let text = std::fs::read_to_string(w.state_dir().join("trust.json")).expect("trust.json");
    serde_json::from_str(&text).expect("trust.json is JSON")
}

/// The `signed` part of `role`'s metadata as the agent trusts it.
fn trusted_signed(w: &World, role: &str) -> Value {
    let files = trust_file(w);
    let text = files["files"][format!("{role}.json")]
        .as_str()
        .expect("role file")
        .to_owned();
    let v: Value = serde_json::from_str(&text).expect("role JSON");
    v["signed"].clone()
}

fn trusted_version(w: &World, role: &str) -> u64 {
    trusted_signed(w, role)["version"]
        .as_u64()
        .expect("version")
}

/// Returns once the wall clock, which TUF judges expiry by, has passed the expiry of
/// `role`'s trusted metadata.
/// Has the agent trust a timestamp that expires within seconds. The mock
/// signs expiry times in whole seconds, so a lifetime of `n` seconds can
/// leave as little as `n - 1`: on a loaded machine the check may come too
/// late, and the lifetime is then doubled (2 s, then 4, 8, 16).
async fn trust_a_short_lived_timestamp(w: &World) {
    for secs in [2, 4, 8, 16] {
        w.admin(
            reqwest::Method::PUT,
            "/__admin/expiry",
            Some(json!({"timestamp_secs": secs})),
        )
        .await;
        match w.check().await {
            Ok(_) => return,
            Err(e) if e.code == "metadata_expired" => continue,
            Err(e) => panic!("a short-lived timestamp should be trusted: {e:?}"),
        }
    }
    panic!("no short-lived timestamp was trusted before it expired");
}

async fn until_trusted_expired(w: &World, role: &str) {
    let expires: jiff::Timestamp = trusted_signed(w, role)["expires"]
        .as_str()
        .expect("expires")
        .parse()
        .expect("an RFC 3339 time");
    while jiff::Timestamp::now() <= expires {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every file name under `dir`, recursively.
fn all_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(all_names(&e.path()));
            }
        }
    }
    out
}

#[tokio::test]
async fn case_01_rollback_an_older_timestamp_snapshot_or_release_is_refused_even_after_a_restart() {
    let mut w = start().await;
    // 3.00.72 installed: 3.00.70 is neither offered nor installed.
    assert!(w.apply(LATEST).await.ok());
    let check = w.check().await.expect("check");
    assert!(available_versions(&check).is_empty());
    assert_eq!(w.apply(FIRST).await.code(), "downgrade_refused");
    let trusted = trusted_version(&w, "timestamp");

    // A validly signed older timestamp.
    w.attack(json!({"mode": "old_timestamp"})).await;
    assert_eq!(w.check().await.unwrap_err().code, "rollback_refused");
    assert_eq!(w.apply(LATEST).await.code(), "rollback_refused");
    assert_eq!(trusted_version(&w, "timestamp"), trusted, "trust unchanged");
    // Also after a restart: what was trusted is kept.
    w.restart_agent().await;
    assert_eq!(w.check().await.unwrap_err().code, "rollback_refused");
    assert_eq!(w.apply(FIRST).await.code(), "rollback_refused");

    // A new timestamp that names an older snapshot.
    w.attack(json!({"mode": "old_snapshot"})).await;
    assert_eq!(w.check().await.unwrap_err().code, "rollback_refused");

    // After the trusted timestamp expired, an older (unexpired) one is still refused.
    w.attack(json!({"mode": "none"})).await;
    trust_a_short_lived_timestamp(&w).await;
    until_trusted_expired(&w, "timestamp").await;
    w.attack(json!({"mode": "old_timestamp"})).await;
    assert_eq!(w.check().await.unwrap_err().code, "rollback_refused");
    // And the installed version is still refused as a target after a restart.
    w.attack(json!({"mode": "none"})).await;
    w.restart_agent().await;
    assert!(available_versions(&w.check().await.expect("check")).is_empty());
    assert_eq!(w.apply(FIRST).await.code(), "downgrade_refused");
}

#[tokio::test]
async fn case_02_freeze_metadata_expired_a_second_ago_or_a_clock_set_back_is_refused() {
    let w = start().await;
    w.check().await.expect("check");
    for role in ["timestamp", "snapshot", "targets"] {
        w.attack(json!({"mode": "expired_metadata", "role": role}))
            .await;
        let err = w.check().await.unwrap_err();
        assert_eq!(err.code, "metadata_expired", "{role}");
        assert_eq!(w.apply(LATEST).await.code(), "metadata_expired", "{role}");
    }
    w.attack(json!({"mode": "none"})).await;
    w.check().await.expect("fresh metadata is accepted again");

    // The clock goes back: the latest time seen is ahead of it.
    let mut trust = trust_file(&w);
    let ahead = format!(
        "\"{}\"",
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24))
            .unwrap()
    );
    trust["files"]["latest_known_time.json"] = Value::String(ahead);
    std::fs::write(
        w.state_dir().join("trust.json"),
        serde_json::to_vec(&trust).unwrap(),
    )
    .unwrap();
    let err = w.check().await.unwrap_err();
    assert_eq!(err.code, "clock_set_back");
    assert!(err.message.contains("horloge"), "{}", err.message);
    assert_eq!(w.current(), None);
}

#[tokio::test]
async fn case_03_mix_and_match_snapshot_or_targets_disagreeing_with_their_parent_are_refused() {
    let w = start().await;
    w.check().await.expect("check");
    for role in ["snapshot", "targets"] {
        w.attack(json!({"mode": "mix_and_match", "role": role}))
            .await;
        assert_eq!(
            w.check().await.unwrap_err().code,
            "metadata_refused",
            "{role}"
        );
        assert_eq!(w.apply(LATEST).await.code(), "metadata_refused", "{role}");
    }
    assert_eq!(w.current(), None);
    w.attack(json!({"mode": "none"})).await;
    assert!(w.apply(LATEST).await.ok());
}

#[tokio::test]
async fn case_04_endless_metadata_and_a_package_longer_than_signed_are_cut_off() {
    let w = start().await;
    w.attack(json!({"mode": "endless_metadata"})).await;
    let started = std::time::Instant::now();
    assert_eq!(w.check().await.unwrap_err().code, "too_large");
    assert!(started.elapsed() < Duration::from_secs(5));
    let served = w.stats().await["files"]["metadata/timestamp.json"]["bytes"]
        .as_u64()
        .unwrap();
    assert!(
        served < 16 * 1024 * 1024,
        "read {served} bytes of endless metadata"
    );

    w.attack(json!({"mode": "oversize_package"})).await;
    let applied = w.apply(LATEST).await;
    assert_eq!(applied.code(), "too_large");
    assert_eq!(w.current(), None);
    let downloads = all_names(&w.state_dir().join("downloads"));
    assert!(downloads.is_empty(), "nothing kept: {downloads:?}");

    w.attack(json!({"mode": "none"})).await;
    assert!(w.apply(LATEST).await.ok());
}

#[tokio::test]
async fn case_05_slow_retrieval_hits_the_overall_deadline_and_a_later_try_works() {
    let w = start_with(Options {
        metadata_deadline_secs: 1.0,
        download_deadline_secs: 1.5,
        ..Default::default()
    })
    .await;
    w.attack(json!({"mode": "slow_retrieval", "interval_ms": 100}))
        .await;
    let started = std::time::Instant::now();
    assert_eq!(w.check().await.unwrap_err().code, "deadline_exceeded");
    assert!(started.elapsed() < Duration::from_secs(3));
    w.attack(json!({"mode": "none"})).await;
    w.check().await.expect("a later try works");

    // A package trickling in: the download deadline fires, not only an idle timeout.
    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": true, "bytes_per_second": 40 * 1024})),
    )
    .await;
    let started = std::time::Instant::now();
    assert_eq!(w.apply(LATEST).await.code(), "deadline_exceeded");
    assert!(started.elapsed() < Duration::from_secs(4));
    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": true, "bytes_per_second": 0})),
    )
    .await;
    assert!(w.apply(LATEST).await.ok());
    assert_eq!(w.current().as_deref(), Some(LATEST));
}

#[tokio::test]
async fn case_06_a_substituted_payload_or_one_changed_between_ranges_is_discarded() {
    let w = start().await;
    w.attack(json!({"mode": "substituted_package"})).await;
    assert_eq!(w.apply(LATEST).await.code(), "download_refused");
    assert_eq!(w.current(), None);
    assert!(all_names(&w.state_dir().join("downloads")).is_empty());

    // Interrupted, then resumed from a file that changed in between.
    w.attack(json!({"mode": "none"})).await;
    let mut spec = release_spec("3.00.74");
    spec["payload_bytes"] = json!(4 * 1024 * 1024);
    let published = w.publish(spec).await;
    let length = published["package_length"].as_u64().unwrap();
    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": true, "bytes_per_second": 8 * 1024 * 1024})),
    )
    .await;
    let mut stream = w
        .agent
        .clone()
        .apply(w.apply_request("3.00.74", false))
        .await
        .expect("apply starts")
        .into_inner();
    while let Some(Ok(p)) = stream.next().await {
        if p.phase() == ApplyPhase::Download && p.bytes_done >= length / 3 {
            break;
        }
    }
    drop(stream);
    w.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": true, "bytes_per_second": 0})),
    )
    .await;
    w.attack(json!({"mode": "changed_between_ranges"})).await;
    let applied = w.apply("3.00.74").await;
    assert_eq!(applied.code(), "download_refused");
    assert!(w.stats().await["range_requests"].as_u64().unwrap() >= 1);
    assert!(all_names(&w.state_dir().join("downloads")).is_empty());
    assert_eq!(w.current(), None);

    w.attack(json!({"mode": "none"})).await;
    assert!(w.apply("3.00.74").await.ok());
}

#[tokio::test]
async fn case_07_one_key_signing_twice_or_a_root_not_signed_by_the_old_one_is_refused_and_rotation_works()
 {
    let w = start().await;
    w.check().await.expect("check");
    let root_before = trusted_version(&w, "root");
    for mode in [
        "duplicate_signature",
        "duplicate_key",
        "root_not_signed_by_old",
    ] {
        w.attack(json!({"mode": mode})).await;
        assert_eq!(
            w.check().await.unwrap_err().code,
            "metadata_refused",
            "{mode}"
        );
        assert_eq!(w.apply(LATEST).await.code(), "metadata_refused", "{mode}");
        assert_eq!(trusted_version(&w, "root"), root_before, "{mode}");
    }
    w.attack(json!({"mode": "none"})).await;
    w.check().await.expect("honest metadata again");

    // The timestamp key is rotated: the client follows the new root and recovers.
    w.admin(
        reqwest::Method::POST,
        "/__admin/rotate",
        Some(json!({"role": "timestamp"})),
    )
    .await;
    w.check()
        .await
        .expect("check after the timestamp key rotation");
    assert_eq!(trusted_version(&w, "root"), root_before + 1);
    // The root key itself, signed by the old and the new key.
    w.admin(
        reqwest::Method::POST,
        "/__admin/rotate",
        Some(json!({"role": "root"})),
    )
    .await;
    assert!(w.apply(LATEST).await.ok());
    assert_eq!(trusted_version(&w, "root"), root_before + 2);
}

#[tokio::test]
async fn case_08_path_traversal_target_and_archive_names_never_leave_the_staging_directory() {
    let w = start().await;
    w.attack(json!({"mode": "path_traversal"})).await;
    let check = w.check().await.expect("check");
    assert_eq!(available_versions(&check), [FIRST, LATEST]);
    for v in ["9.99.99", "9.99.98", "9.99.97", "9.99.96"] {
        assert_eq!(w.apply(v).await.code(), "unknown_version", "{v}");
    }
    assert_eq!(w.apply("../../iea-9.99.99").await.code(), "invalid_input");
    assert_eq!(w.apply("..%2F..%2F9.99.99").await.code(), "invalid_input");
    assert!(w.apply(LATEST).await.ok(), "honest releases still install");

    // A signed package whose archive names escape.
    w.attack(json!({"mode": "none"})).await;
    let mut spec = release_spec("3.00.75");
    spec["extra_files"] = json!({"../../evil.txt": "pwned", "bin/../../../evil2.txt": "pwned"});
    w.publish(spec).await;
    assert_eq!(w.apply("3.00.75").await.code(), "archive_refused");
    assert_eq!(w.current().as_deref(), Some(LATEST));
    w.assert_one_complete_version();

    let names = all_names(w.test.dir());
    for n in &names {
        assert!(!n.contains("evil") && !n.contains("9.99."), "{n} written");
    }
}

/// Case 9: the process "dies" at `step` of applying 3.00.72 over 3.00.70, starts again
/// on the same directories, and a new apply finishes the job; scripts run once.
async fn crash_at(step: Step) {
    let mut w = start().await;
    assert!(w.apply(FIRST).await.ok());
    w.fail.arm(Some(step));
    let crashed = w.apply(LATEST).await;
    assert_eq!(crashed.code(), "internal", "{step:?}");
    w.restart_agent().await;
    let current = w.assert_one_complete_version();
    assert!(current == FIRST || current == LATEST, "{step:?}: {current}");
    let again = w.apply(LATEST).await;
    if current == LATEST {
        assert_eq!(again.code(), "downgrade_refused", "{step:?}");
    } else {
        assert!(again.ok(), "{step:?}: {:?}", again.error);
    }
    assert_eq!(w.assert_one_complete_version(), LATEST, "{step:?}");
    assert_eq!(w.previous().as_deref(), Some(FIRST), "{step:?}");
    let scripts = w.list_scripts().await;
    let applied: Vec<&str> = scripts
        .iter()
        .filter(|s| s.state == "applied")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        applied,
        [
            "iea-3.00.70.script-001.json",
            "iea-3.00.72.script-001.json",
            "iea-3.00.72.script-002.json"
        ],
        "{step:?}"
    );
    assert_eq!(w.parameters()["connexion.mode_par_defaut"], "securise");
}

macro_rules! crash_tests {
    ($($name:ident => $step:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                crash_at(Step::$step).await;
            }
        )*
    };
}

crash_tests! {
    case_09_a_crash_once_the_package_is_downloaded_leaves_one_complete_version => Downloaded,
    case_09_a_crash_once_scripts_are_recorded_leaves_one_complete_version => ScriptsRecorded,
    case_09_a_crash_halfway_through_extraction_leaves_one_complete_version => Extracting,
    case_09_a_crash_once_the_version_is_staged_leaves_one_complete_version => Staged,
    case_09_a_crash_once_previous_is_set_leaves_one_complete_version => PreviousSet,
    case_09_a_crash_right_after_the_switch_leaves_one_complete_version => Switched,
    case_09_a_crash_after_the_start_check_leaves_one_complete_version => Checked,
    case_09_a_crash_between_two_scripts_leaves_one_complete_version => ScriptApplied,
    case_09_a_crash_before_the_journal_is_cleared_leaves_one_complete_version => Done,
}

#[tokio::test]
async fn case_09_a_version_that_fails_its_first_start_falls_back_to_the_previous_one() {
    let w = start().await;
    assert!(w.apply(LATEST).await.ok());
    let mut spec = release_spec("3.00.73");
    spec["start_check"] = json!("fail");
    w.publish(spec).await;

    let applied = w.apply("3.00.73").await;
    assert_eq!(applied.code(), "start_check_failed");
    let message = &applied.error.as_ref().unwrap().message;
    assert!(
        message.contains("retour automatique à la version 3.00.72"),
        "{message}"
    );
    assert_eq!(w.current().as_deref(), Some(LATEST));
    assert_eq!(w.assert_one_complete_version(), LATEST);
    assert!(!w.versions_present().contains(&"3.00.73".to_owned()));
    // Its scripts were not run, nor kept pending.
    assert!(w.parameters().get("test.3.00.73").is_none());
    assert!(
        w.list_scripts()
            .await
            .iter()
            .all(|s| s.version != "3.00.73")
    );
}

#[tokio::test]
async fn case_10_unsigned_altered_or_active_notes_and_unsigned_scripts_are_not_shown_or_run() {
    let w = start_with(Options {
        installed_version: Some(FIRST),
        ..Default::default()
    })
    .await;
    // Notes not covered by signed metadata.
    w.attack(json!({"mode": "unsigned_notes"})).await;
    let check = w.check().await.expect("check");
    assert!(!check.available[0].notes_available);
    assert_eq!(w.notes(LATEST).await.unwrap_err().code, "notes_unavailable");
    let stats = w.stats().await;
    let fetched: Vec<&String> = stats["files"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("lisez-moi"))
        .collect();
    assert!(fetched.is_empty(), "unsigned notes fetched: {fetched:?}");

    // Notes changed after signing.
    w.attack(json!({"mode": "altered_notes"})).await;
    assert_eq!(w.notes(LATEST).await.unwrap_err().code, "download_refused");

    // Signed notes carrying HTML and a script.
    w.attack(json!({"mode": "hostile_notes"})).await;
    let err = w.notes(LATEST).await.unwrap_err();
    assert_eq!(err.code, "notes_refused");
    assert!(!err.message.contains("<script"));

    // A script changed after signing: nothing is installed, nothing runs.
    w.attack(json!({"mode": "altered_script"})).await;
    assert_eq!(w.apply(LATEST).await.code(), "download_refused");
    assert_eq!(w.current(), None);
    assert!(w.list_scripts().await.is_empty());

    // Scripts served but not covered by signed metadata: the package installs, they do
    // not run.
    w.attack(json!({"mode": "unsigned_script"})).await;
    assert!(w.apply(LATEST).await.ok());
    assert!(w.list_scripts().await.is_empty());
    assert!(w.parameters().get("piratage").is_none());
    assert!(w.parameters().get("connexion.mode_par_defaut").is_none());
}
