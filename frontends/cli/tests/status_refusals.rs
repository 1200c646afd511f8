//! `iea status` shows the depositing accounts whose credentials were refused at their last
//! verification (issue 12 item 7: made by itself before each due date, or by hand), with
//! a session only.

mod common;

use common::Stack;
use iea_mock_net_entreprises::fixtures::DUPONT;

const SIRET: &str = DUPONT.siret;

fn json(s: &Stack, args: &[&str], stdin: &str) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = s.raw(&all, stdin);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("iea {args:?}: {e}: {out} {err}"));
    (code, v)
}

#[test]
fn a_refused_depositing_account_shows_in_the_status_with_a_session() {
    let s = Stack::start();
    let password = s.admin_password();
    let (code, v) = json(
        &s,
        &["login", "--user", "Administrateur", "--password-stdin"],
        &password,
    );
    assert_eq!(code, 0, "{v}");
    let (code, v) = json(&s, &["status"], "");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["refused_deposit_accounts"], serde_json::json!([]), "{v}");

    let (code, v) = json(
        &s,
        &[
            "credentials",
            "set",
            "--user",
            "Administrateur",
            "--siret",
            SIRET,
            "--nom",
            DUPONT.nom,
            "--prenom",
            DUPONT.prenom,
            "--password-stdin",
        ],
        &format!("{}\nMauvais-mot-de-passe\n", password.trim()),
    );
    assert_eq!(code, 0, "{v}");
    let (code, v) = json(
        &s,
        &[
            "dsn",
            "accounts",
            "set",
            "--siret",
            SIRET,
            "--user",
            "Administrateur",
        ],
        "",
    );
    assert_eq!(code, 0, "{v}");
    let (_, v) = json(
        &s,
        &["credentials", "verify", "--user", "Administrateur"],
        "",
    );
    assert_ne!(v["outcome"], "valid", "{v}");

    let (code, v) = json(&s, &["status"], "");
    assert_eq!(code, 0, "{v}");
    let refused = v["refused_deposit_accounts"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{v}");
    assert_eq!(refused[0]["siret"], SIRET);
    assert_eq!(refused[0]["user"], "Administrateur");
    assert!(refused[0]["next_due"].is_string(), "{v}");
    assert!(!refused[0]["message"].as_str().unwrap().is_empty());
    assert!(!v.to_string().contains("Mauvais-mot-de-passe"));

    let (code, text, _) = s.raw(&["status"], "");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("Identifiants Net-entreprises refusés pour les dépôts DSN : compte « Administrateur » (SIRET {SIRET}, prochaine échéance le ")),
        "{text}"
    );
    assert!(
        text.contains("iea credentials set --user Administrateur"),
        "{text}"
    );

    // Without a session: not shown.
    let (code, _) = json(&s, &["logout"], "");
    assert_eq!(code, 0);
    let (_, v) = json(&s, &["status"], "");
    assert!(v["refused_deposit_accounts"].is_null(), "{v}");
    let (_, text, _) = s.raw(&["status"], "");
    assert!(!text.contains("refusés pour les dépôts"), "{text}");
}
