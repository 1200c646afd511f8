//! `iea stack up --demo`: a demonstration declarant and an account ready to deposit, so
//! that a sample DSN of its SIRET is deposited and accepted at once.

mod common;

use common::Stack;

/// The demonstration declarant's SIRET (`iea_stack::DEMO_DECLARANT`).
const DEMO_SIRET: &str = "73282932000074";

fn json(s: &Stack, args: &[&str], stdin: &str) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = s.raw(&all, stdin);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("iea {args:?}: {e}: {out} {err}"));
    (code, v)
}

#[test]
fn with_demo_a_sample_of_the_demo_siret_is_deposited_and_accepted() {
    let s = Stack::start_demo();
    let (code, v) = json(
        &s,
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{v}");
    // The administrator holds the demonstration identity, designated for its SIRET.
    let (code, v) = json(&s, &["credentials", "show", "--user", "Administrateur"], "");
    assert_eq!(code, 0, "{v}");
    assert!(v.to_string().contains(DEMO_SIRET), "{v}");
    let (code, v) = json(&s, &["dsn", "accounts", "list"], "");
    assert_eq!(code, 0, "{v}");
    assert!(v.to_string().contains(DEMO_SIRET), "{v}");

    let file = s.dir.path().join("DSN_demo.txt");
    let (code, v) = json(
        &s,
        &[
            "dsn",
            "sample",
            "--siret",
            DEMO_SIRET,
            "--month",
            "2026-11",
            "--employees",
            "3",
            "--out",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{v}");
    let (code, v) = json(&s, &["dsn", "deposit", file.to_str().unwrap()], "");
    assert_eq!(code, 0, "{v}");
    let d = &v["deposit"];
    assert_eq!(d["state"], "accepted", "{v}");
    assert_eq!(d["siret"], DEMO_SIRET);
    assert_eq!(d["account"], "Administrateur");
    assert_eq!(d["idflux"].as_str().map(str::len), Some(23), "{v}");
}

#[test]
fn without_demo_no_account_is_set_up() {
    let s = Stack::start();
    let (code, v) = json(
        &s,
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{v}");
    let (code, v) = json(&s, &["dsn", "accounts", "list"], "");
    assert_eq!(code, 0, "{v}");
    assert!(!v.to_string().contains(DEMO_SIRET), "{v}");
}
