//! The `iea` binary as a person or a script runs it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn iea(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iea"));
    c.env("IEA_DATA_DIR", data_dir).env_remove("RUST_LOG");
    c
}

/// Waits until `stack.json` exists (the stack writes it once every component listens).
fn wait_for_stack(dir: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("stack.json").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("iea stack up exited early: {status}");
        }
        assert!(Instant::now() < deadline, "the stack did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn interrupt(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn stack_up_then_status_reports_every_component_healthy_and_ctrl_c_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = iea(dir.path())
        .args(["stack", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    wait_for_stack(dir.path(), &mut stack);

    let out = iea(dir.path()).args(["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "healthy after {:?}",
        started.elapsed()
    );
    assert_eq!(v["orchestrator"]["healthy"], true, "{v}");
    let agents = v["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3, "{v}");
    assert!(agents.iter().all(|a| a["healthy"] == true), "{v}");

    interrupt(&stack);
    let status = stack.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C must stop the stack cleanly");
    assert!(
        !dir.path().join("stack.json").exists(),
        "stack.json is removed on stop"
    );
}

#[test]
fn a_failure_prints_a_stable_code_and_a_french_message_in_json_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = iea(dir.path()).args(["status", "--json"]).output().unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "stack_not_found", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("iea stack up"),
        "{v}"
    );

    let human = iea(dir.path()).args(["status"]).output().unwrap();
    assert!(!human.status.success());
    assert!(String::from_utf8_lossy(&human.stderr).starts_with("Erreur : "));
}

#[test]
fn certs_init_creates_the_certificates_once() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = iea(dir.path())
        .args(["certs", "init"])
        .arg(&certs)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["created"], true);
    assert!(certs.join("auth-client.pem").exists());
    let again = iea(dir.path())
        .args(["certs", "init"])
        .arg(&certs)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["created"], false);
}
