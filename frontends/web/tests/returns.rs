//! What comes back for a DSN deposit, in the console and its JSON API, over HTTP against a
//! real embedded stack (issue 14 item 2): a deposit is followed to its CRM (the
//! Net-entreprises mock publishes its returns at once, « Suivre maintenant » makes the
//! orchestrator's pass now), then its returns page, the « Taux PAS » page (NIR masked)
//! and its CSV (NIR whole, as `iea pas rates --csv`), the « Échéancier » and the status
//! page's alert line; every new page and call refused without a session, every new form
//! and call that changes something refused without its CSRF token; an account that is
//! not an administrator sees neither another's rates nor may follow.

mod common;

use std::time::Duration;

use common::{Harness, Session, client, hidden_field, session_cookie};
use iea_mock_net_entreprises::fixtures::DUPONT;
use reqwest::Method;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, LOCATION};
use serde_json::{Value, json};

const SIRET: &str = DUPONT.siret;

/// A valid DSN (invented people), written by `iea dsn sample --siret 78214563500010
/// --month 2026-10 --employees 2 --seed 14`.
const SAMPLE_DSN: &[u8] = include_bytes!("fixtures/sample-78214563500010-2026-10.dsn");

/// The columns of `iea pas rates --csv` (frontends/cli/src/commands/pas.rs), as a program
/// reading the file expects them.
const CLI_CSV_HEADER: &str = "siret;nir_ou_ntt;ntt;matricule;taux;identifiant_taux;disponible_le;valable_jusqu_au;valable;taux_futur;date_effet_taux_futur;depot;idflux";

/// The new pages and calls, with the method that reaches them.
const NEW_ROUTES: &[(&str, &str)] = &[
    ("GET", "/taux-pas"),
    ("GET", "/taux-pas/taux.csv"),
    ("GET", "/echeancier"),
    ("GET", "/declarations/1/retours"),
    ("POST", "/retours/suivre"),
    ("GET", "/api/v1/rates"),
    ("GET", "/api/v1/rates.csv"),
    ("GET", "/api/v1/board"),
    ("GET", "/api/v1/status/alerts"),
    ("GET", "/api/v1/deposits/1/returns"),
    ("GET", "/api/v1/returns/follows"),
    ("POST", "/api/v1/returns/follow-now"),
];

/// The NIRs of the sample's employees (`S21.G00.30.001`), in order.
fn sample_nirs() -> Vec<String> {
    let text: String = SAMPLE_DSN.iter().map(|b| *b as char).collect();
    text.lines()
        .filter_map(|l| l.strip_prefix("S21.G00.30.001,'"))
        .map(|v| v.trim_end_matches('\r').trim_end_matches('\'').to_owned())
        .collect()
}

/// A call to the Net-entreprises mock's control API.
async fn ne_admin(h: &Harness, method: Method, path: &str, body: Value) -> Value {
    h.mock("net-entreprises").send(method, path, body).await
}

/// Deposits the sample through the API and waits until Net-entreprises accepted it.
async fn deposit_accepted(s: &Session) -> Value {
    let r = s
        .call(Method::POST, "/api/v1/deposits?file_name=octobre.dsn")
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(SAMPLE_DSN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let d = s.settled_deposit(id, Duration::from_secs(60)).await;
    assert_eq!(d["state"], "accepted", "{d}");
    d
}

/// Every return of the deposit is in: 10, 11 and 94 downloaded and read, the conformity
/// known.
fn all_in(r: &Value) -> bool {
    let returns = r["returns"].as_array().cloned().unwrap_or_default();
    [10, 11, 94].iter().all(|n| {
        returns.iter().any(|x| {
            x["nature"] == *n && x["current"] == true && x["download_state"] == "downloaded"
        })
    }) && r["conformity"].is_string()
}

/// « Suivre maintenant » through the API until the deposit's returns are all in.
async fn follow_to_crm(s: &Session, id: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let r = s
            .call(Method::POST, "/api/v1/returns/follow-now")
            .json(&json!({"all": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let pass: Value = r.json().await.unwrap();
        assert!(pass["message"].as_str().is_some_and(|m| !m.is_empty()));
        let returns = s.get_json(&format!("/api/v1/deposits/{id}/returns")).await;
        if all_in(&returns) {
            return returns;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the returns never all came: {returns}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A page's status and HTML, its no-break spaces read as spaces (they keep « 12 h 00 »
/// on one line; `http.rs` checks them): the page says what the API's JSON says.
async fn page(s: &Session, path: &str) -> (u16, String) {
    let r = s.request(Method::GET, path).send().await.unwrap();
    (
        r.status().as_u16(),
        r.text().await.unwrap().replace('\u{a0}', " "),
    )
}

#[tokio::test]
async fn a_deposit_is_followed_to_its_crm_and_its_returns_rates_and_board_are_shown() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    h.set_admin_identity(&s, SIRET, DUPONT.password).await;
    let nirs = sample_nirs();
    assert_eq!(nirs.len(), 2, "the sample's employees");
    // The tax office's rate for the first employee, with a future rate.
    ne_admin(
        &h,
        Method::PUT,
        &format!("/pas-rates/{}", nirs[0]),
        json!({"taux": "7.50", "taux_futur": "8.10", "date_effet": "2027-02-01"}),
    )
    .await;

    // Nothing yet.
    assert_eq!(s.get_json("/api/v1/rates").await, json!([]));
    let (code, html) = page(&s, "/taux-pas").await;
    assert_eq!(code, 200);
    assert!(html.contains("id=\"no-rates\""), "{html}");
    assert!(html.contains("Aucun taux de prélèvement à la source"));

    let d = deposit_accepted(&s).await;
    let id = d["id"].as_i64().unwrap();
    let idflux = d["idflux"].as_str().unwrap().to_owned();

    // Before any return: the deposit's page links to its returns, which are awaited.
    let (code, html) = page(&s, &format!("/declarations/{id}")).await;
    assert_eq!(code, 200);
    assert!(html.contains(&format!("href=\"/declarations/{id}/retours\"")));
    let before = s.get_json(&format!("/api/v1/deposits/{id}/returns")).await;
    assert_eq!(before["deposit_id"], id);
    assert_eq!(before["conformity"], Value::Null, "{before}");
    assert_eq!(before["conformity_label"], "En attente");

    // « Suivre maintenant » without its CSRF token: refused, by the API and by the form.
    let r = s
        .request(Method::POST, "/api/v1/returns/follow-now")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "csrf_token_invalid"
    );
    for form in [format!("deposit={id}"), format!("deposit={id}&csrf=0000")] {
        let r = s
            .request(Method::POST, "/retours/suivre")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{form}");
        assert!(r.text().await.unwrap().contains("csrf_token_invalid"));
    }
    // A body that is not the operation's JSON: 400, not a pass.
    for bad in ["[1]", "{\"all\": \"oui\"}", "pas du json"] {
        let r = s
            .call(Method::POST, "/api/v1/returns/follow-now")
            .header(CONTENT_TYPE, "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }

    // The mock publishes the deposit's returns; the console's « Suivre maintenant »
    // brings them in.
    let published = ne_admin(&h, Method::POST, "/returns/publish", json!({})).await;
    assert!(published["published"].as_u64().unwrap() >= 3, "{published}");
    let r = follow_to_crm(&s, id).await;
    assert_eq!(r["idflux"], idflux.as_str());
    assert_eq!(r["conformity"], "OK", "{r}");
    assert_eq!(r["conformity_label"], "Conforme");
    let returns = r["returns"].as_array().unwrap();
    let aee = returns.iter().find(|x| x["nature"] == 10).unwrap();
    assert_eq!(
        aee["statut_label"], "AEE : déclaration enregistrée",
        "{aee}"
    );
    let crm = returns
        .iter()
        .find(|x| x["nature"] == 94 && x["current"] == true)
        .unwrap();
    assert_eq!(crm["rate_count"], 2, "{crm}");
    let crm_id = crm["crm_identifier"].as_str().unwrap().to_owned();
    assert_eq!(crm_id.len(), 18, "{crm}");
    assert!(crm["downloaded_at"].as_str().unwrap().ends_with('Z'));

    // The returns page: each nature in French, the conformity, the CRM, the form.
    let (code, html) = page(&s, &format!("/declarations/{id}/retours")).await;
    assert_eq!(code, 200);
    for want in [
        "Retours du dépôt n°",
        "AEE : déclaration enregistrée",
        "data-conformity=\"OK\"",
        ">Conforme<",
        &format!("CRM PAS n° {crm_id} : 2 taux"),
        "id=\"follow-now\"",
        "Téléchargé et lu",
    ] {
        assert!(html.contains(want), "{want} in {html}");
    }
    assert_eq!(
        hidden_field(&html, "csrf").as_deref(),
        Some(s.csrf.as_str())
    );
    assert!(!html.contains(&nirs[0]), "no NIR on the returns page");

    // The form with its token: a pass, its sentence above the same page.
    let r = s
        .request(Method::POST, "/retours/suivre")
        .form(&[("csrf", s.csrf.as_str()), ("deposit", &id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("class=\"notice\""), "{html}");
    assert!(html.contains("Retours du dépôt n°"));
    // Without a deposit: the board, with the sentence.
    let r = s
        .request(Method::POST, "/retours/suivre")
        .form(&[("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Échéancier</h1>") && html.contains("class=\"notice\""));

    // The rates, whole for programs (as `iea pas rates --json`).
    let rates = s.get_json("/api/v1/rates").await;
    let rates = rates.as_array().unwrap();
    assert_eq!(rates.len(), 2, "{rates:?}");
    for n in &nirs {
        let rate = rates
            .iter()
            .find(|r| r["nir"] == n.as_str())
            .expect("a rate per employee");
        assert_eq!(rate["siret"], SIRET);
        assert_eq!(rate["ntt"], Value::Null);
        assert_eq!(rate["rate_identifier"], crm_id.as_str());
        assert_eq!(rate["valid"], true);
        assert_eq!(rate["deposit_id"], id);
        assert_eq!(rate["idflux"], idflux.as_str());
    }
    let first = rates.iter().find(|r| r["nir"] == nirs[0].as_str()).unwrap();
    assert_eq!(first["rate"], "7.50");
    assert_eq!(first["rate_hundredths"], 750);
    assert_eq!(
        first["future_rate"],
        json!({"rate": "8.10", "effective_on": "2027-02-01"})
    );
    assert_eq!(
        s.get_json(&format!("/api/v1/rates?siret={SIRET}&expired=true"))
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        // Another establishment (valid SIRET): none of its rates.
        s.get_json("/api/v1/rates?siret=73282932000074").await,
        json!([])
    );
    for bad in ["/api/v1/rates?siret=123", "/api/v1/rates?expired=peut-etre"] {
        let r = s.request(Method::GET, bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_input", "{bad}");
    }

    // The « Taux PAS » page: the NIR masked but its last three characters, the rate and
    // its future one in French, the identifier, until when.
    let (code, html) = page(&s, "/taux-pas").await;
    assert_eq!(code, 200);
    for n in &nirs {
        assert!(!html.contains(n.as_str()), "a whole NIR on the page");
        let masked = format!("{}{}", "•".repeat(n.chars().count() - 3), &n[n.len() - 3..]);
        assert!(html.contains(&masked), "{masked} in the page");
    }
    for want in [
        &format!("SIRET {SIRET} — 2 salariés"),
        "7,50 %",
        "8,10 % à partir du 1er février 2027",
        crm_id.as_str(),
        "valable jusqu'au ",
        "href=\"/taux-pas/taux.csv\"",
    ] {
        assert!(html.contains(want), "{want} in {html}");
    }
    let (_, html) = page(&s, &format!("/taux-pas?siret={SIRET}&expires=on")).await;
    assert!(
        html.contains("name=\"expires\" value=\"on\" checked"),
        "the box stays ticked"
    );
    assert!(html.contains(&format!(
        "href=\"/taux-pas/taux.csv?siret={SIRET}&amp;expires=on\""
    )));
    let (code, html) = page(&s, "/taux-pas?siret=123").await;
    assert_eq!(code, 400);
    assert!(html.contains("14 chiffres"), "{html}");

    // The CSV: the command's columns, every value whole.
    for path in ["/taux-pas/taux.csv", "/api/v1/rates.csv"] {
        let r = s.request(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
        assert_eq!(
            r.headers()[CONTENT_DISPOSITION],
            "attachment; filename=\"taux-pas.csv\""
        );
        assert_eq!(r.headers()["cache-control"], "no-store");
        let csv = r.text().await.unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(CLI_CSV_HEADER));
        let first_line = csv
            .lines()
            .find(|l| l.contains(nirs[0].as_str()))
            .unwrap_or_else(|| panic!("{csv}"));
        let cols: Vec<&str> = first_line.split(';').collect();
        assert_eq!(cols.len(), 13, "{first_line}");
        assert_eq!(cols[0], SIRET);
        assert_eq!(cols[1], nirs[0]);
        assert_eq!(cols[2], "0");
        assert_eq!(cols[4], "7.50");
        assert_eq!(cols[5], crm_id);
        assert_eq!(cols[8], "1");
        assert_eq!(cols[9], "8.10");
        assert_eq!(cols[10], "2027-02-01");
        assert_eq!(cols[11], id.to_string());
        assert_eq!(cols[12], idflux);
        assert_eq!(csv.lines().count(), 3, "{csv}");
    }
    let r = s
        .request(Method::GET, &format!("/api/v1/rates.csv?siret={SIRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()[CONTENT_DISPOSITION],
        format!("attachment; filename=\"taux-pas-{SIRET}.csv\"").as_str()
    );

    // The followed deposits and the board.
    let follows = s
        .get_json(&format!("/api/v1/returns/follows?siret={SIRET}"))
        .await;
    let f = follows
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["deposit_id"] == id)
        .unwrap_or_else(|| panic!("{follows}"));
    assert_eq!(f["crm_received"], true);
    assert_eq!(f["rate_count"], 2);
    let board = s.get_json("/api/v1/board").await;
    let row = board["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["siret"] == SIRET && w["month"] == "2026-10")
        .unwrap_or_else(|| panic!("{board}"));
    assert_eq!(row["month_label"], "octobre 2026");
    assert_eq!(row["deposit"]["id"], id);
    assert_eq!(row["deposit"]["state_label"], "Accepté");
    assert_eq!(row["conformity"], "ok");
    assert_eq!(row["crm"]["rates"], 2);
    assert_eq!(row["crm"]["identifier"], crm_id.as_str());
    assert!(
        row["due_fr"].as_str().unwrap().contains(" à 12 h 00"),
        "{row}"
    );
    assert!(board["computed_at"].as_str().unwrap().ends_with('Z'));
    // Accepted: the due date's column says how the deposit stood against it, late when
    // registered after it (October's is due on 15 November), not the days since then.
    let due = row["due"].as_str().unwrap();
    let deposited_at = row["deposit"]["deposited_at"].as_str().unwrap();
    // Both written `YYYY-MM-DDTHH:MM:SSZ`: their order is the text's.
    let late = deposited_at > due;
    assert_eq!(row["days_late"].is_number(), late, "{row}");
    let due_words = row["due_words"].as_str().unwrap();
    if late {
        assert!(
            due_words.starts_with("déposée") && due_words.contains("retard"),
            "{row}"
        );
    } else {
        assert_eq!(due_words, "déposée à temps", "{row}");
    }
    let (code, html) = page(&s, "/echeancier").await;
    assert_eq!(code, 200);
    for want in [
        due_words,
        "data-month=\"2026-10\"",
        "octobre 2026",
        &format!("href=\"/declarations/{id}/retours\""),
        "Conforme",
        &format!("2 taux, n° {crm_id}"),
        "id=\"follow-now\"",
    ] {
        assert!(html.contains(want), "{want} in {html}");
    }
    let r = s
        .request(Method::GET, "/api/v1/board?siret=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (code, html) = page(&s, "/echeancier?siret=abc").await;
    assert_eq!(code, 400);
    assert!(html.contains("ne doit contenir que des chiffres"), "{html}");

    // The status: the alert line, the same count as the board's alerts.
    let alerts = s.get_json("/api/v1/status/alerts").await;
    let n = board["alerts"].as_array().unwrap().len();
    assert_eq!(alerts["count"], n, "{alerts} {board}");
    assert_eq!(alerts["refused_deposit_accounts"], json!([]));
    let (code, html) = page(&s, "/").await;
    assert_eq!(code, 200);
    assert!(html.contains("Échéances DSN : "), "{html}");
    assert!(html.contains("href=\"/echeancier\""));
    assert!(!html.contains("refusés pour les dépôts DSN"));
    if n == 0 {
        assert!(html.contains("Échéances DSN : aucune alerte."));
    } else {
        let top = board["alerts"][0]["message"].as_str().unwrap();
        assert_eq!(alerts["most_urgent"]["message"], top);
        let escaped = top.replace('\'', "&#39;").replace('"', "&quot;");
        assert!(
            html.contains(&escaped) || html.contains(top),
            "{top} in {html}"
        );
    }

    // Bad or unknown deposits.
    let r = s
        .request(Method::GET, "/api/v1/deposits/abc/returns")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .request(Method::GET, "/api/v1/deposits/999999/returns")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(page(&s, "/declarations/abc/retours").await.0, 400);
    assert_eq!(page(&s, "/declarations/999999/retours").await.0, 404);

    // Rates are personal data: another account, not an administrator and without a
    // deposit of its own, sees none of them, nor this deposit's returns.
    let user = other_account(&h, &s).await;
    assert_eq!(user.get_json("/api/v1/rates").await, json!([]));
    let (code, html) = page(&user, "/taux-pas").await;
    assert_eq!(code, 200);
    assert!(html.contains("id=\"no-rates\""));
    assert!(!html.contains("class=\"nir\""), "no employee row");
    let r = user
        .request(Method::GET, "/api/v1/rates.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), format!("{CLI_CSV_HEADER}\n"));
    let r = user
        .request(Method::GET, &format!("/api/v1/deposits/{id}/returns"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        page(&user, &format!("/declarations/{id}/retours")).await.0,
        404
    );
    let board = user.get_json("/api/v1/board").await;
    assert!(
        !board["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["deposit"]["id"] == id),
        "{board}"
    );
    h.stop().await;
}

/// A second account, `Paie2`, not an administrator (the installation turned to
/// « réseau »), signed in.
async fn other_account(h: &Harness, admin: &Session) -> Session {
    let r = admin
        .call(Method::PUT, "/api/v1/installation-mode")
        .json(&json!({"mode": "reseau"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin
        .call(Method::POST, "/api/v1/users")
        .json(&json!({"name": "Paie2", "role": "user", "password": "Un-mot-de-passe-long"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    session_of(h, "Paie2", "Un-mot-de-passe-long").await
}

#[tokio::test]
async fn the_new_pages_and_calls_need_a_session_and_their_changes_a_csrf_token() {
    let h = Harness::start().await;
    let c = client();
    for (method, path) in NEW_ROUTES {
        for cookie in [None, Some("iea_session=forged")] {
            let mut req = c.request(Method::from_bytes(method.as_bytes()).unwrap(), h.url(path));
            if let Some(cookie) = cookie {
                req = req.header(COOKIE, cookie);
            }
            let r = req.send().await.unwrap();
            if path.starts_with("/api/") {
                assert_eq!(r.status(), 401, "{method} {path} {cookie:?}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "unauthenticated", "{method} {path}");
            } else {
                assert_eq!(r.status(), 303, "{method} {path} {cookie:?}");
                assert_eq!(r.headers()[LOCATION], "/connexion", "{method} {path}");
            }
        }
    }
    // Signed in, the state-changing ones still need the session's token.
    let s = h.api_session().await;
    let other = h.api_session().await;
    for token in [None, Some("0".repeat(64)), Some(other.csrf.clone())] {
        let mut req = s.request(Method::POST, "/api/v1/returns/follow-now");
        if let Some(t) = &token {
            req = req.header("x-csrf-token", t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{token:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_token_invalid");
    }
    // Each new operation is in the OpenAPI document, with its 401.
    let doc: Value = client()
        .get(h.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (method, path) in NEW_ROUTES.iter().filter(|(_, p)| p.starts_with("/api/")) {
        let path = path.replace("/deposits/1/", "/deposits/{id}/");
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} says 401"
        );
    }
    assert_eq!(
        doc["paths"]["/api/v1/rates.csv"]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["text/csv"]
    );
    for schema in [
        "RateView",
        "ReturnsView",
        "BoardView",
        "StatusAlertsView",
        "FollowNowView",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    // The menu leads to both new pages.
    let (_, html) = page(&s, "/").await;
    assert!(html.contains("<a href=\"/taux-pas\">Taux PAS</a>"));
    assert!(html.contains("<a href=\"/echeancier\">Échéancier</a>"));
    h.stop().await;
}

/// Signs in through the JSON API as `user`.
async fn session_of(h: &Harness, user: &str, password: &str) -> Session {
    let r = client()
        .post(h.url("/api/v1/session"))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-in of {user}");
    let cookie = session_cookie(&r).expect("a session cookie");
    let body: Value = r.json().await.unwrap();
    Session {
        base: h.url(""),
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn a_refused_depositing_account_shows_in_the_status_and_only_an_administrator_follows() {
    let h = Harness::start().await;
    let admin = h.api_session().await;
    // A refused identity for the account that deposits: verified, refused, shown.
    h.set_admin_identity(&admin, SIRET, "Mauvais-mot-de-passe")
        .await;
    let r = admin
        .call(Method::POST, "/api/v1/credentials/Administrateur/verify")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let v: Value = r.json().await.unwrap();
    assert_ne!(v["outcome"], "valid", "{v}");
    let alerts = admin.get_json("/api/v1/status/alerts").await;
    let refused = alerts["refused_deposit_accounts"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{alerts}");
    assert_eq!(refused[0]["user"], "Administrateur");
    assert_eq!(refused[0]["siret"], SIRET);
    assert!(refused[0]["next_due"].as_str().unwrap().ends_with('Z'));
    assert!(!refused[0]["message"].as_str().unwrap().is_empty());
    assert!(!alerts.to_string().contains("Mauvais-mot-de-passe"));
    let (code, html) = page(&admin, "/").await;
    assert_eq!(code, 200);
    assert!(
        html.contains(&format!(
            "Identifiants Net-entreprises refusés pour les dépôts DSN : compte « Administrateur » (SIRET {SIRET}, prochaine échéance le "
        )),
        "{html}"
    );
    assert!(!html.contains("Mauvais-mot-de-passe"));

    // Another account, not an administrator.
    let user = other_account(&h, &admin).await;
    // « Suivre maintenant » is the administrator's: refused by the orchestrator, the
    // button not shown.
    let r = user
        .call(Method::POST, "/api/v1/returns/follow-now")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "permission_denied", "{e}");
    let r = user
        .request(Method::POST, "/retours/suivre")
        .form(&[("csrf", user.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("administrateur"));
    let (code, html) = page(&user, "/echeancier").await;
    assert_eq!(code, 200);
    assert!(!html.contains("id=\"follow-now\""));
    // Not the administrator's refusal either.
    let alerts = user.get_json("/api/v1/status/alerts").await;
    assert_eq!(alerts["refused_deposit_accounts"], json!([]), "{alerts}");
    // The administrator's follow-now with its token goes through (no deposit followed).
    let r = admin
        .call(Method::POST, "/api/v1/returns/follow-now")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.stop().await;
}

/// The sample with the first payment's PAS amount (`S21.G00.50.009`) wrong by 100 €: the
/// same number of lines, still a well-formed DSN, which the mock's conformity check
/// refuses.
fn with_wrong_pas_amount(file: &[u8]) -> Vec<u8> {
    let text: String = file.iter().map(|b| *b as char).collect();
    let mut done = false;
    let out: Vec<String> = text
        .split('\n')
        .map(|line| {
            if !done && line.starts_with("S21.G00.50.009,'") {
                done = true;
                let value = line
                    .trim_end_matches('\r')
                    .trim_start_matches("S21.G00.50.009,'")
                    .trim_end_matches('\'');
                let cents: u64 = value.replace('.', "").parse().expect("an amount");
                let wrong = cents + 10_000;
                format!("S21.G00.50.009,'{}.{:02}'", wrong / 100, wrong % 100)
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(done, "the sample has a PAS amount");
    out.join("\n").chars().map(|c| c as u8).collect()
}

#[tokio::test]
async fn a_conformity_ko_shows_its_anomalies_and_its_alert_on_the_board_and_the_status_page() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    h.set_admin_identity(&s, SIRET, DUPONT.password).await;
    let r = s
        .call(Method::POST, "/api/v1/deposits?file_name=octobre.dsn")
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(with_wrong_pas_amount(SAMPLE_DSN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let d = s.settled_deposit(id, Duration::from_secs(60)).await;
    assert_eq!(d["state"], "accepted", "{d}");
    ne_admin(&h, Method::POST, "/returns/publish", json!({})).await;
    let r = follow_to_crm(&s, id).await;
    assert_eq!(r["conformity"], "KO", "{r}");
    assert_eq!(r["conformity_label"], "Non conforme");
    let conformity = r["returns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["nature"] == 11 && x["current"] == true)
        .unwrap();
    assert_eq!(conformity["statut_label"], "Non conforme");
    let anomaly = conformity["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rubric"] == "S21.G00.50.009")
        .unwrap_or_else(|| panic!("no anomaly names S21.G00.50.009: {conformity}"));
    assert_eq!(anomaly["code"], "CCH-PAS-01");
    let anomaly_message = anomaly["message"].as_str().unwrap().to_owned();
    assert!(!anomaly_message.is_empty());

    // The returns page: the conformity, each anomaly with its code, message and rubric.
    let (code, html) = page(&s, &format!("/declarations/{id}/retours")).await;
    assert_eq!(code, 200);
    for want in [
        "data-conformity=\"KO\"",
        "conformity ko",
        ">Non conforme<",
        "<code>CCH-PAS-01</code>",
        "(rubrique S21.G00.50.009)",
    ] {
        assert!(html.contains(want), "{want} in {html}");
    }
    let escaped = maud::html! { (anomaly_message) }.into_string();
    assert!(html.contains(&escaped), "{escaped} in {html}");

    // The board's alert, the most urgent; the status page's line says it.
    let board = s.get_json("/api/v1/board").await;
    let alerts = board["alerts"].as_array().unwrap();
    let alert = alerts
        .iter()
        .find(|a| a["code"] == "conformity_ko")
        .unwrap_or_else(|| panic!("no conformity_ko alert: {board}"));
    assert_eq!(alert["deposit_id"], id);
    assert_eq!(alert["month"], "2026-10");
    assert_eq!(alerts[0]["code"], "conformity_ko", "the most urgent");
    let message = alert["message"].as_str().unwrap().to_owned();
    assert!(message.contains("octobre 2026"), "{message}");
    let (code, html) = page(&s, "/echeancier").await;
    assert_eq!(code, 200);
    assert!(html.contains("data-code=\"conformity_ko\""), "{html}");
    assert!(html.contains(&maud::html! { (message) }.into_string()));
    assert!(html.contains("Non conforme ("), "{html}");
    // Counts take their plural (« 1 anomalie », « 3 anomalies »), never « (s) ».
    assert!(!html.contains("(s)"), "{html}");

    let status = s.get_json("/api/v1/status/alerts").await;
    assert_eq!(status["count"], alerts.len(), "{status}");
    assert_eq!(status["most_urgent"]["code"], "conformity_ko");
    let line = status["line"].as_str().unwrap().to_owned();
    let expected = if alerts.len() == 1 {
        format!("Échéances DSN : 1 alerte — {message}")
    } else {
        format!(
            "Échéances DSN : {} alertes ; la plus urgente — {message}",
            alerts.len()
        )
    };
    assert_eq!(line, expected);
    let (code, html) = page(&s, "/").await;
    assert_eq!(code, 200);
    assert!(
        html.contains(&maud::html! { (line) }.into_string()),
        "{line} in {html}"
    );
    assert!(html.contains(&format!("data-alerts=\"{}\"", alerts.len())));
    h.stop().await;
}
