//! `iea dsn list` and its filters (`--siret`, `--month`, `--state`, `--limit`, `--before`),
//! as a person or a script runs it: newest first, what was left out said with the command
//! that lists it, a wrong filter
//! refused with a French sentence before anything is read.

mod common;

use common::Stack;

/// The demonstration declarant's SIRET (`iea_stack::DEMO_DECLARANT`).
const DEMO_SIRET: &str = "73282932000074";

fn json(s: &Stack, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = s.raw(&all, "");
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("iea {args:?}: {e}: {out} {err}"));
    (code, v)
}

fn months(v: &serde_json::Value) -> Vec<&str> {
    v["deposits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["month"].as_str().unwrap())
        .collect()
}

#[test]
fn deposits_are_listed_newest_first_by_siret_month_and_state() {
    let s = Stack::start_demo();
    let (code, out, err) = s.raw(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{out}{err}");
    for month in ["2026-09", "2026-10", "2026-11"] {
        let file = s.dir.path().join(format!("DSN_{month}.txt"));
        let file = file.to_str().unwrap();
        let (code, v) = json(
            &s,
            &[
                "dsn", "sample", "--siret", DEMO_SIRET, "--month", month, "--out", file,
            ],
        );
        assert_eq!(code, 0, "{v}");
        let (code, v) = json(&s, &["dsn", "deposit", file]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["deposit"]["state"], "accepted", "{v}");
    }

    let (code, v) = json(&s, &["dsn", "list"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(months(&v), ["2026-11", "2026-10", "2026-09"], "{v}");
    assert_eq!(v["truncated"], false, "{v}");
    let (_, v) = json(&s, &["dsn", "list", "--month", "2026-10"]);
    assert_eq!(months(&v), ["2026-10"], "{v}");
    let (_, v) = json(
        &s,
        &["dsn", "list", "--siret", DEMO_SIRET, "--state", "accepted"],
    );
    assert_eq!(months(&v).len(), 3, "{v}");
    let (_, v) = json(&s, &["dsn", "list", "--state", "to_check"]);
    assert_eq!(months(&v).len(), 0, "{v}");

    // At most --limit, the newest; the others are said to exist.
    let (code, v) = json(&s, &["dsn", "list", "--limit", "2"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(months(&v), ["2026-11", "2026-10"], "{v}");
    assert_eq!(v["truncated"], true, "{v}");
    let (code, out, err) = s.raw(&["dsn", "list", "--limit", "2"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    // The declared month in words, « de » elided before a vowel.
    assert!(out.contains(" · mois de novembre 2026 · "), "{out}");
    assert!(out.contains(" · mois d'octobre 2026 · "), "{out}");
    let newest = v["deposits"][0]["id"].as_i64().unwrap();
    let second = v["deposits"][1]["id"].as_i64().unwrap();
    assert_eq!(v["next_before"], second, "{v}");
    assert!(
        out.ends_with(&format!(
            "D'autres dépôts, plus anciens, ne sont pas affichés : seuls les 2 plus récents le sont. La suite : iea dsn list --limit 2 --before {second}\n"
        )),
        "{out}"
    );
    // The next page, as the sentence says, with the same filters: the rest, nothing more.
    let (code, v) = json(
        &s,
        &[
            "dsn",
            "list",
            "--limit",
            "2",
            "--before",
            &second.to_string(),
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(months(&v), ["2026-09"], "{v}");
    assert_eq!(v["truncated"], false, "{v}");
    assert_eq!(v["next_before"], serde_json::Value::Null, "{v}");
    let (_, out, _) = s.raw(
        &[
            "dsn", "list", "--siret", DEMO_SIRET, "--state", "accepted", "--limit", "1",
        ],
        "",
    );
    assert!(
        out.ends_with(&format!(
            "seul le plus récent l'est. La suite : iea dsn list --siret {DEMO_SIRET} --state accepted --limit 1 --before {newest}\n"
        )),
        "{out}"
    );
    let (code, out, err) = s.raw(&["dsn", "list", "--siret", "78214563500010"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "Aucun dépôt DSN ne correspond.\n");

    // A wrong filter: the orchestrator's sentence, exit 1; an unknown state: the command
    // line's own refusal, which lists the states.
    for (args, message) in [
        (
            ["dsn", "list", "--month", "2026-13"],
            "Mois « 2026-13 » invalide : attendu AAAA-MM, par exemple 2025-03.",
        ),
        (
            ["dsn", "list", "--siret", "7328293200007"],
            "Le SIRET doit compter 14 chiffres ; « 7328293200007 » en compte 13.",
        ),
        (
            ["dsn", "list", "--siret", "73282932000075"],
            "Le SIRET « 73282932000075 » n'est pas valide : sa clé de contrôle ne correspond \
             pas. Vérifiez chaque chiffre (une faute de frappe ou deux chiffres inversés sont \
             probables).",
        ),
    ] {
        let (code, v) = json(&s, &args);
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["error"]["code"], "invalid_input", "{v}");
        assert_eq!(v["error"]["message"], message, "{v}");
    }
    let (code, out, err) = s.raw(&["dsn", "list", "--state", "acepted"], "");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("to_check"), "{err}");
}
