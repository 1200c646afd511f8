//! `iea dsn deposit` waiting for its deposit (`WatchDeposit`, no polling), against a
//! demonstration stack in a child process: a rejection is printed with its anomaly and
//! exits 3; a wait cut by `--timeout` prints the deposit as last received (here `sending`,
//! which only the watch told it) and exits 3 when the time is up, not when the deposit ends;
//! a person waiting sees each change on stderr, and is told the deposit goes on.

mod common;

use std::time::{Duration, Instant};

use common::Stack;
use serde_json::{Value, json};

/// The demonstration declarant's SIRET (`iea_stack::DEMO_DECLARANT`).
const DEMO_SIRET: &str = "73282932000074";

/// `iea ARGS --json`: (exit code, its JSON).
fn run_json(s: &Stack, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = s.raw(&all, "");
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("iea {args:?}: {e}: {out} {err}"));
    (code, v)
}

/// A demonstration stack, `Administrateur` signed in, and a sample of the demonstration
/// declarant's declaration for `month`.
fn stack_and_file(month: &str) -> (Stack, String) {
    let s = Stack::start_demo();
    let (code, _, err) = s.raw(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{err}");
    let file = s.dir.path().join(format!("DSN_{month}.txt"));
    let file = file.to_str().unwrap().to_owned();
    let (code, v) = run_json(
        &s,
        &[
            "dsn", "sample", "--siret", DEMO_SIRET, "--month", month, "--out", &file,
        ],
    );
    assert_eq!(code, 0, "{v}");
    (s, file)
}

/// Sets the Net-entreprises mock's faults.
fn faults(s: &Stack, body: Value) {
    iea_runtime::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(s.mock("net-entreprises").faults(body));
}

#[test]
fn a_rejected_deposit_is_printed_with_its_anomaly_and_exits_3() {
    let (s, file) = stack_and_file("2026-09");
    faults(
        &s,
        json!({"reject_deposits": {"code": "B1-105-15", "message": "Le SIRET de l'émetteur est inconnu."}}),
    );
    let (code, v) = run_json(&s, &["dsn", "deposit", &file]);
    assert_eq!(code, 3, "{v}");
    let d = &v["deposit"];
    assert_eq!(d["state"], "rejected", "{v}");
    assert_eq!(d["anomalies"][0]["code"], "B1-105-15", "{v}");
    // The same deposit, as `show` reads it: what the wait printed was its final state.
    let id = d["id"].as_i64().unwrap().to_string();
    let (code, shown) = run_json(&s, &["dsn", "show", &id]);
    assert_eq!(code, 0, "{shown}");
    assert_eq!(shown["deposit"], *d);
}

#[test]
fn a_wait_cut_by_its_timeout_prints_the_deposit_as_last_received() {
    let (s, file) = stack_and_file("2026-08");
    // Each answer of Net-entreprises (authentication, then the deposit) 4 s late.
    faults(&s, json!({"mode": "slow", "delay_ms": 4000}));
    let started = Instant::now();
    let (code, v) = run_json(&s, &["dsn", "deposit", &file, "--timeout", "2"]);
    let took = started.elapsed();
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["deposit"]["state"], "sending", "{v}");
    assert_eq!(v["deposit"]["settled"], false, "{v}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "the wait took {took:?}"
    );
}

#[test]
fn a_person_waiting_sees_each_change_and_is_told_the_deposit_goes_on_after_the_timeout() {
    let (s, file) = stack_and_file("2026-07");
    faults(&s, json!({"mode": "unavailable"}));
    let (code, out, err) = s.raw(&["dsn", "deposit", &file, "--timeout", "3"], "");
    assert_eq!(code, 3, "{out} {err}");
    // Each change on stderr as it came: the try that failed and the next one announced.
    let changes: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("Dépôt DSN n° "))
        .collect();
    assert!(
        changes.iter().any(
            |l| l.contains(" : en file d'attente — La DSN n'a pas été déposée")
                && l.contains("Nouvel essai automatique dans")
        ),
        "{err}"
    );
    let mut seen = changes.clone();
    seen.dedup();
    assert_eq!(seen, changes, "each change once: {err}");
    // Then why the command ends though the deposit does not, and how to follow it.
    let id = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Dépôt DSN n° "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        err.contains(&format!(
            "Le dépôt n° {id} n'est pas terminé au bout de 3 s : l'orchestrateur le poursuit. \
             Pour en suivre l'issue : iea dsn show {id}"
        )),
        "{err}"
    );
    // The result alone on stdout, as `show` gives it.
    assert!(
        out.starts_with(&format!("Dépôt DSN n° {id} : en file d'attente")),
        "{out}"
    );
}
