//! `iea dsn board`, `iea pas rates` and the alert line of `iea status`, as a person or a
//! script runs them against a stack in a child process.

mod common;

use common::Stack;
use iea_mock_net_entreprises::fixtures::DUPONT;

/// A SIRET whose Luhn key is right (DUPONT's, of the Net-entreprises mock's directory).
const SIRET: &str = DUPONT.siret;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn login(s: &Stack) {
    let (code, out, err) = s.raw(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn the_board_rates_and_status_alerts_for_people_and_programs() {
    let s = Stack::start();

    // Without a session: the status is readable, its alerts are not given.
    let (code, out, err) = s.raw(&["status", "--json"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["alerts"], serde_json::Value::Null, "{out}");
    let (code, out, _) = s.raw(&["status"], "");
    assert_eq!(code, 0);
    assert!(!out.contains("Échéances DSN"), "{out}");
    // The board needs a session: the orchestrator's sentence, a stable code.
    let (code, out, _) = s.raw(&["dsn", "board", "--json"], "");
    assert_ne!(code, 0);
    assert_eq!(json(&out)["error"]["code"], "unauthenticated", "{out}");

    login(&s);
    let (code, out, err) = s.raw(&["status", "--json"], "");
    assert_eq!(code, 0, "{out}{err}");
    let v = json(&out);
    assert_eq!(v["alerts"]["count"], 0, "{v}");
    assert_eq!(v["alerts"]["most_urgent"], serde_json::Value::Null, "{v}");
    let (_, out, _) = s.raw(&["status"], "");
    assert!(out.contains("Échéances DSN : aucune alerte."), "{out}");

    // An establishment known by its designated account: its declaration to come.
    let (code, out, err) = s.raw(
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
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = s.raw(&["dsn", "board", "--json"], "");
    assert_eq!(code, 0, "{out}{err}");
    let v = json(&out);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    let row = &rows[0];
    assert_eq!(row["siret"], SIRET);
    assert!(row["month"].as_str().unwrap().len() == 7, "{v}");
    assert!(
        row["due"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC: {v}"
    );
    let days = row["days_left"].as_i64().unwrap();
    assert!((0..=46).contains(&days), "{v}");
    assert_eq!(row["deposit"], serde_json::Value::Null);
    assert_eq!(row["conformity"], serde_json::Value::Null);
    assert_eq!(v["alerts"].as_array().unwrap().len(), 0);

    let (code, out, _) = s.raw(&["dsn", "board"], "");
    assert_eq!(code, 0);
    assert!(out.contains(&format!("SIRET {SIRET} — ")), "{out}");
    assert!(out.contains("échéance le "), "{out}");
    assert!(out.contains("à 12 h 00"), "noon, Paris time: {out}");
    assert!(out.contains("aucun dépôt"), "{out}");
    assert!(out.contains("Aucune alerte."), "{out}");

    // A bad SIRET is refused with the orchestrator's French sentence.
    let (code, out, _) = s.raw(&["dsn", "board", "--siret", "123", "--json"], "");
    assert_ne!(code, 0);
    let v = json(&out);
    assert_eq!(v["error"]["code"], "invalid_input", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("14 chiffres")
    );

    // No CRM PAS yet: an empty list for programs, a sentence for people, a CSV header.
    let (code, out, err) = s.raw(&["pas", "rates", "--json"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["rates"].as_array().unwrap().len(), 0);
    let (code, out, _) = s.raw(&["pas", "rates"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("Aucun taux de prélèvement à la source"),
        "{out}"
    );
    let (code, out, _) = s.raw(&["pas", "rates", "--csv"], "");
    assert_eq!(code, 0);
    assert_eq!(
        out.trim_end(),
        "siret;nir_ou_ntt;ntt;matricule;taux;identifiant_taux;disponible_le;valable_jusqu_au;valable;taux_futur;date_effet_taux_futur;depot;idflux"
    );
    let (code, out, _) = s.raw(&["pas", "rates", "--csv", "--json"], "");
    assert_ne!(code, 0);
    assert_eq!(json(&out)["error"]["code"], "invalid_input", "{out}");
}
