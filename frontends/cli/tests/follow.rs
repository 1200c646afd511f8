//! `iea dsn follow` (« Suivre maintenant »), as a person or a script runs it against a
//! stack in a child process: a deposit of the demonstration declarant followed to its
//! CRM PAS, whose rates `iea pas rates` then shows; and the orchestrator's refusals (no
//! session, an account that is not an administrator, a deposit that does not exist).

mod common;

use std::time::{Duration, Instant};

use common::Stack;
use serde_json::Value;

/// The demonstration declarant's SIRET (`iea_stack::DEMO_DECLARANT`).
const DEMO_SIRET: &str = "73282932000074";

/// Employees of the deposited file: the CRM gives one rate each.
const EMPLOYEES: usize = 3;

/// `iea ARGS --json`: (exit code, its JSON).
fn json(s: &Stack, args: &[&str], stdin: &str) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = s.raw(&all, stdin);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("iea {args:?}: {e}: {out} {err}"));
    (code, v)
}

fn login(s: &Stack, user: &str, password: &str) {
    let (code, v) = json(s, &["login", "--user", user, "--password-stdin"], password);
    assert_eq!(code, 0, "{v}");
}

/// The Net-entreprises mock publishes every return still to come, now.
fn publish_returns(s: &Stack) {
    iea_runtime::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(
            s.mock("net-entreprises")
                .post("/returns/publish", serde_json::json!({})),
        );
}

/// Whether `text` holds a date written `2026-12-01` (for a program, not a person).
fn has_iso_date(text: &str) -> bool {
    text.as_bytes().windows(10).any(|w| {
        w.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
    })
}

#[test]
fn a_deposit_is_followed_to_its_crm_and_pas_rates_shows_its_rates() {
    let s = Stack::start_demo();
    login(&s, "Administrateur", &s.admin_password());
    let file = s.dir.path().join("DSN_octobre.txt");
    let employees = EMPLOYEES.to_string();
    let (code, v) = json(
        &s,
        &[
            "dsn",
            "sample",
            "--siret",
            DEMO_SIRET,
            "--month",
            "2026-10",
            "--employees",
            &employees,
            "--seed",
            "7",
            "--out",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{v}");
    let (code, v) = json(&s, &["dsn", "deposit", file.to_str().unwrap()], "");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["deposit"]["state"], "accepted", "{v}");
    let id = v["deposit"]["id"].as_i64().unwrap();
    let idflux = v["deposit"]["idflux"].as_str().unwrap().to_owned();
    let deposit = id.to_string();

    // Nothing published yet: the pass lists the deposit, which is followed, no CRM.
    let (code, v) = json(&s, &["dsn", "follow", "--deposit", &deposit], "");
    assert_eq!(code, 0, "{v}");
    assert!(v["follow"]["flux_listed"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        v["follow"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Suivi des retours : "),
        "{v}"
    );
    let d = &v["deposit"];
    assert_eq!(d["id"], id, "{v}");
    assert_eq!(d["idflux"], idflux.as_str(), "{v}");
    assert_eq!(d["follow_state"], "following", "{v}");
    assert_eq!(d["crm"], Value::Null, "{v}");
    let (code, v) = json(&s, &["pas", "rates"], "");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["rates"].as_array().unwrap().len(), 0, "{v}");

    // Published: « Suivre maintenant » until the CRM is in (another pass, the
    // orchestrator's own, may hold the pass lock or have listed it first).
    publish_returns(&s);
    let deadline = Instant::now() + Duration::from_secs(90);
    let v = loop {
        let (code, v) = json(&s, &["dsn", "follow", "--deposit", &deposit], "");
        assert_eq!(code, 0, "{v}");
        if v["deposit"]["crm"] != Value::Null {
            break v;
        }
        assert!(Instant::now() < deadline, "no CRM PAS came: {v}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let d = &v["deposit"];
    assert_eq!(d["follow_state"], "done", "{v}");
    assert!(
        ["ok", "ano", "ko"].contains(&d["conformity"].as_str().unwrap()),
        "{v}"
    );
    let crm = &d["crm"];
    assert_eq!(crm["rates"], EMPLOYEES, "{v}");
    let crm_identifier = crm["identifier"].as_str().unwrap().to_owned();
    assert!(!crm_identifier.is_empty(), "{v}");
    let natures: Vec<u64> = d["returns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["nature"].as_u64().unwrap())
        .collect();
    for nature in [10, 11, 94] {
        assert!(natures.contains(&nature), "nature {nature}: {v}");
    }
    let crm_return = d["returns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["nature"] == 94)
        .unwrap();
    assert_eq!(crm_return["download_state"], "downloaded", "{v}");
    assert_eq!(crm_return["rate_count"], EMPLOYEES, "{v}");

    // The same for a person.
    let (code, out, err) = s.raw(&["dsn", "follow", "--deposit", &deposit], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Suivi des retours : "), "{out}");
    assert!(
        out.contains(&format!(
            "Dépôt DSN n° {id} (flux {idflux}) : suivi terminé : accusé, conformité et CRM PAS reçus"
        )),
        "{out}"
    );
    assert!(out.contains("  Conformité : conforme"), "{out}");
    assert!(
        out.contains(&format!(
            "  CRM PAS n° {crm_identifier} reçu : {EMPLOYEES} taux"
        )),
        "{out}"
    );
    assert!(out.contains("    nature 94 — "), "{out}");
    assert!(out.contains("téléchargé et lu"), "{out}");
    // `iea dsn show` gives the same returns, without a pass (anyone who may see the
    // deposit may read them).
    let (code, v) = json(&s, &["dsn", "show", &deposit], "");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["deposit"]["id"], id, "{v}");
    assert_eq!(v["returns"]["follow_state"], "done", "{v}");
    assert_eq!(
        v["returns"]["crm"]["identifier"],
        crm_identifier.as_str(),
        "{v}"
    );
    assert_eq!(v["returns"]["returns"], d["returns"], "{v}");
    let (code, out, err) = s.raw(&["dsn", "show", &deposit], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("Dépôt DSN n° {id} : accepté")),
        "{out}"
    );
    assert!(
        out.contains("  Suivi des retours : suivi terminé : accusé, conformité et CRM PAS reçus\n"),
        "{out}"
    );
    assert!(out.contains("  Conformité : conforme"), "{out}");
    assert!(out.contains("    nature 94 — "), "{out}");
    // The acknowledgement's date in French words, as every date a person reads.
    assert!(out.contains("    nature 10 — "), "{out}");
    assert!(!has_iso_date(&out), "{out}");

    // Without --deposit: the pass only.
    let (code, out, err) = s.raw(&["dsn", "follow"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("Suivi des retours : "), "{out}");

    // The CRM's rates, one per employee of the file, each quoting the CRM's identifier.
    let (code, v) = json(&s, &["pas", "rates"], "");
    assert_eq!(code, 0, "{v}");
    let rates = v["rates"].as_array().unwrap();
    assert_eq!(rates.len(), EMPLOYEES, "{v}");
    for r in rates {
        assert_eq!(r["siret"], DEMO_SIRET, "{v}");
        assert_eq!(r["deposit_id"], id, "{v}");
        assert_eq!(r["idflux"], idflux.as_str(), "{v}");
        assert_eq!(r["rate_identifier"], crm_identifier.as_str(), "{v}");
        assert_eq!(r["valid"], true, "{v}");
    }
    let (code, out, _) = s.raw(&["pas", "rates"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("SIRET {DEMO_SIRET} — {EMPLOYEES} salariés :")),
        "{out}"
    );
}

#[test]
fn only_an_administrator_follows_now_and_a_missing_deposit_is_named() {
    let s = Stack::start();
    // No session: the orchestrator's refusal, exit 1.
    let (code, v) = json(&s, &["dsn", "follow"], "");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["code"], "unauthenticated", "{v}");

    login(&s, "Administrateur", &s.admin_password());
    let (code, v) = json(&s, &["dsn", "follow", "--deposit", "4242"], "");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    assert_eq!(
        v["error"]["message"], "Aucun dépôt n° 4242 ne vous est accessible.",
        "{v}"
    );
    let (code, v) = json(&s, &["users", "mode", "reseau"], "");
    assert_eq!(code, 0, "{v}");
    let (code, v) = json(
        &s,
        &["users", "add", "Dupont", "--password-stdin"],
        "Mot-de-passe-Dupont\n",
    );
    assert_eq!(code, 0, "{v}");

    // Another account: refused by the orchestrator, in French, as every refusal.
    login(&s, "Dupont", "Mot-de-passe-Dupont\n");
    let (code, v) = json(&s, &["dsn", "follow"], "");
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["code"], "permission_denied", "{v}");
    assert_eq!(
        v["error"]["message"], "Seul un administrateur peut lancer le suivi des retours.",
        "{v}"
    );
    let (code, out, err) = s.raw(&["dsn", "follow", "--deposit", "1"], "");
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "", "nothing on standard output");
    assert_eq!(
        err.trim_end(),
        "Erreur : Seul un administrateur peut lancer le suivi des retours."
    );
    // What it may still do: read its own rates (none).
    let (code, v) = json(&s, &["pas", "rates"], "");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["rates"].as_array().unwrap().len(), 0, "{v}");
}
