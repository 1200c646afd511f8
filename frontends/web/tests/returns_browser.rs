//! A deposit followed to its CRM PAS in a real browser (headless Chromium over WebDriver,
//! as `browser.rs`): the DSN uploaded from « Déclarations DSN », accepted, its returns
//! published by the Net-entreprises mock, « Suivre maintenant » clicked on the deposit's
//! « Retours » page until the conformity and the CRM are in; then the rates on « Taux
//! PAS » (NIR masked), the declaration on « Échéancier », the alert line on the status
//! page. Each step saves a screenshot.

mod common;

use std::time::Duration;

use common::Harness;
use common::webdriver::Browser;
use iea_mock_net_entreprises::fixtures::DUPONT;
use reqwest::Method;
use serde_json::json;

const SIRET: &str = DUPONT.siret;

/// The sample's first employee's NIR (`S21.G00.30.001`).
fn first_nir() -> String {
    let file = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sample-78214563500010-2026-10.dsn"),
    )
    .unwrap();
    let text: String = file.iter().map(|b| *b as char).collect();
    text.lines()
        .find_map(|l| l.strip_prefix("S21.G00.30.001,'"))
        .map(|v| v.trim_end_matches('\r').trim_end_matches('\'').to_owned())
        .expect("a NIR in the sample")
}

async fn ne_admin(h: &Harness, method: Method, path: &str, body: serde_json::Value) {
    h.mock("net-entreprises").send(method, path, body).await;
}

/// Reloads the page until `script` gives `want` (at most `secs`).
async fn until_after_reload(browser: &Browser, script: &str, want: serde_json::Value, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = browser.script(script).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{script}: {got}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser.script("location.reload(); return true;").await;
        browser
            .wait_for("return document.readyState === 'complete';", json!(true))
            .await;
    }
}

#[tokio::test]
async fn a_deposit_is_followed_to_its_crm_and_its_rates_shown_in_chromium() {
    let h = Harness::start().await;
    let api = h.api_session().await;
    h.set_admin_identity(&api, SIRET, DUPONT.password).await;
    let nir = first_nir();
    ne_admin(
        &h,
        Method::PUT,
        &format!("/pas-rates/{nir}"),
        json!({"taux": "7.50", "taux_futur": "8.10", "date_effet": "2027-02-01"}),
    )
    .await;

    let browser = Browser::start().await;
    browser.goto(&h.url("/connexion")).await;
    browser.type_into("#user", "Administrateur").await;
    browser.type_into("#password", &h.admin_password()).await;
    browser.click("#sign-in").await;
    browser
        .wait_for("return location.pathname;", json!("/"))
        .await;

    // The DSN uploaded from the deposits page, then accepted.
    common::deposit_sample_in(&h, &browser).await;
    until_after_reload(
        &browser,
        "var d = document.getElementById('deposit'); return !!d && d.getAttribute('data-state');",
        json!("accepted"),
        60,
    )
    .await;

    // Its returns page, from the link on the deposit's page: nothing in yet.
    browser.click("#returns-link").await;
    browser
        .wait_for(
            "return !!document.getElementById('returns-summary') && location.pathname.endsWith('/retours');",
            json!(true),
        )
        .await;
    browser.screenshot("returns-awaited").await;

    // Net-entreprises publishes; « Suivre maintenant » until the CRM is in.
    ne_admin(&h, Method::POST, "/returns/publish", json!({})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        // A mark the next page will not have.
        browser.script("window.ieaMark = 1; return true;").await;
        browser.click("#follow-now").await;
        browser
            .wait_for(
                "return !window.ieaMark && document.readyState === 'complete' && !!document.querySelector('section.notice');",
                json!(true),
            )
            .await;
        let done = browser
            .script(
                "var s = document.getElementById('returns-summary'); return !!s && s.getAttribute('data-conformity') === 'OK' && !!document.querySelector(\"#returns tr[data-nature='94'] .crm\");",
            )
            .await;
        if done == json!(true) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the CRM never came");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser
        .wait_for(
            "return document.querySelector('#returns-summary td.conformity').textContent;",
            json!("Conforme"),
        )
        .await;
    browser
        .wait_for(
            "return document.querySelector(\"#returns tr[data-nature='10'] td.statut\").textContent;",
            json!("AEE : déclaration enregistrée"),
        )
        .await;
    browser.screenshot("deposit-returns").await;

    // « Taux PAS » from the menu: one row per employee, the NIR masked.
    browser.click("nav a[href='/taux-pas']").await;
    browser
        .wait_for(
            "return location.pathname === '/taux-pas' && document.querySelectorAll('tr.rate').length;",
            json!(2),
        )
        .await;
    let tail = &nir[nir.len() - 3..];
    let masked = format!("NIR {}{tail}", "•".repeat(nir.chars().count() - 3));
    let row = browser
        .script(&format!(
            "var r = Array.from(document.querySelectorAll('tr.rate')).find(function (t) {{ return t.querySelector('td.nir').textContent === {}; }}); return r ? [r.querySelector('td.rate-value').textContent, r.querySelector('td.future').textContent, r.getAttribute('data-valid')] : null;",
            serde_json::to_string(&masked).unwrap()
        ))
        .await;
    assert_eq!(
        row,
        // The rate and its sign on one line (a no-break space).
        json!([
            "7,50\u{a0}%",
            "8,10\u{a0}% à partir du 1er février 2027",
            "true"
        ]),
        "the first employee's row"
    );
    assert_eq!(
        browser
            .script(&format!(
                "return document.body.textContent.includes({});",
                serde_json::to_string(&nir).unwrap()
            ))
            .await,
        json!(false),
        "no whole NIR on the page"
    );
    browser.screenshot("pas-rates").await;
    // The filter and its toggle keep the list; the CSV link follows them.
    browser.type_into("#siret", SIRET).await;
    browser.click("#expires").await;
    browser.click("#show-rates").await;
    browser
        .wait_for(
            "return location.search.includes('expires=on') && document.querySelectorAll('tr.rate').length;",
            json!(2),
        )
        .await;
    assert_eq!(
        browser
            .script("return document.getElementById('rates-csv').getAttribute('href');")
            .await,
        json!(format!("/taux-pas/taux.csv?siret={SIRET}&expires=on"))
    );

    // « Échéancier »: October conform, its CRM in.
    browser.click("nav a[href='/echeancier']").await;
    browser
        .wait_for(
            "var r = document.querySelector(\"#board tr[data-month='2026-10']\"); return !!r && [r.getAttribute('data-conformity'), r.getAttribute('data-crm')];",
            json!(["ok", "true"]),
        )
        .await;
    // Its due date (15 November) is past, but the deposit was accepted: the cell is not
    // red and says how the deposit stood against it.
    assert_eq!(
        browser
            .script(
                "var c = document.querySelector(\"#board tr[data-month='2026-10'] td.due\"); return [c.classList.contains('ko'), c.querySelector('.days-left').textContent.startsWith('déposée '), getComputedStyle(c).fontWeight];",
            )
            .await,
        json!([false, true, "400"]),
        "October's due date, accepted"
    );
    browser.screenshot("deadline-board").await;

    // The status page: the alert line leads to the board.
    browser.click("nav a[href='/']").await;
    browser
        .wait_for(
            "var p = document.querySelector('#deadlines .alert-line'); return !!p && p.textContent.startsWith('Échéances DSN : ');",
            json!(true),
        )
        .await;
    browser.screenshot("status-alerts").await;
    // And each service as the orchestrator found it: the four agents in service, of the
    // orchestrator's version, nothing to report.
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        browser
            .script(
                "return Array.from(document.querySelectorAll('#services tr[data-agent]')).map(function (r) { return [r.getAttribute('data-agent'), r.getAttribute('data-healthy'), r.className, r.cells[2].textContent.trim()]; });",
            )
            .await,
        json!(
            ["auth-client", "update-client", "credential-verifier", "deposit-agent"]
                .map(|a| json!([a, "true", "", format!("version {version}")]))
        )
    );
    browser
        .script("document.getElementById('services').scrollIntoView(); return true;")
        .await;
    browser.screenshot("status-services").await;
    browser.quit().await;
    h.stop().await;
}
