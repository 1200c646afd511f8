//! The console in a real browser: headless Chromium (Debian's `chromium`) driven over
//! WebDriver by Debian's `chromedriver`. Signs in through the form, sees the status icon,
//! and sees it change without a reload when the status changes behind the page.

mod common;

use common::Harness;
use common::webdriver::Browser;
use reqwest::Method;
use serde_json::json;

/// The indicator the page shows now.
const INDICATOR: &str = "return document.getElementById('status') && document.getElementById('status').getAttribute('data-indicator');";
/// The icon the page shows now.
const ICON: &str = "return document.querySelector('img.indicator').getAttribute('src');";

#[tokio::test]
async fn the_status_page_follows_the_status_live_in_chromium() {
    let h = Harness::start().await;
    let browser = Browser::start().await;

    browser.goto(&h.url("/")).await;
    // Without a session: the sign-in page.
    browser
        .wait_for("return location.pathname;", json!("/connexion"))
        .await;
    browser.type_into("#user", "Administrateur").await;
    browser.type_into("#password", &h.admin_password()).await;
    browser.screenshot("sign-in").await;
    browser.click("#sign-in").await;
    browser
        .wait_for("return location.pathname;", json!("/"))
        .await;
    browser.wait_for(INDICATOR, json!("connected")).await;
    browser
        .wait_for(ICON, json!("/static/icons/connected.svg"))
        .await;
    // The icon really loaded (our SVG, allowed by the CSP).
    browser
        .wait_for(
            "var i = document.querySelector('img.indicator'); return i.complete && i.naturalWidth > 0;",
            json!(true),
        )
        .await;
    // The live stream is open.
    browser
        .wait_for(
            "return document.getElementById('status').getAttribute('data-live');",
            json!("on"),
        )
        .await;
    browser.screenshot("status-connected").await;
    // A mark that a reload would erase.
    browser.script("window.ieaMark = 42; return true;").await;

    // The licence withdrawn at the authentication server: consultation, without reload.
    let api = h.api_session().await;
    h.set_licence("withdrawn").await;
    let r = api
        .call(Method::POST, "/api/v1/status/reauthenticate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    browser.wait_for(INDICATOR, json!("consultation")).await;
    browser
        .wait_for(ICON, json!("/static/icons/consultation.svg"))
        .await;
    browser
        .wait_for(
            "return document.querySelector(\"[data-field='label']\").textContent;",
            json!("Consultation seule (licence retirée)"),
        )
        .await;
    browser.screenshot("status-consultation").await;

    // And back.
    h.set_licence("active").await;
    api.call(Method::POST, "/api/v1/status/reauthenticate")
        .send()
        .await
        .unwrap();
    browser.wait_for(INDICATOR, json!("connected")).await;

    // Assistance from elsewhere: the red beetle.
    let r = api
        .call(Method::POST, "/api/v1/assistance")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    browser.wait_for(INDICATOR, json!("assistance")).await;
    browser
        .wait_for(ICON, json!("/static/icons/assistance.svg"))
        .await;
    // The assistance form turned to its deactivation, without a reload either.
    browser
        .wait_for(
            "return [document.getElementById('assistance-off').hidden, document.getElementById('assistance-on').hidden];",
            json!([false, true]),
        )
        .await;
    browser.screenshot("status-assistance").await;
    assert_eq!(
        browser.script("return window.ieaMark;").await,
        json!(42),
        "the page was never reloaded"
    );

    // The connection window: the access test, one row per address.
    browser.goto(&h.url("/parametres")).await;
    browser.click("#test-access").await;
    browser
        .wait_for(
            "return document.querySelectorAll('#access-test .ok').length;",
            json!(3),
        )
        .await;
    browser.screenshot("connection-test").await;

    // The authentication server's default port filtered: ✘ with its step, then the
    // repair assistant's fallback port applied, and ✔ again.
    h.set_auth_faults(json!({"mode": "none", "close_default_port": true}))
        .await;
    browser.click("#test-access").await;
    browser
        .wait_for(
            "var r = document.querySelector(\"#access-test tr[data-target='auth_server']\"); return !!r && !!r.querySelector('.ko') && r.querySelector('td.step').textContent;",
            json!("connexion TCP"),
        )
        .await;
    browser.screenshot("connection-test-failed").await;
    browser.click_when_present("#propose-repairs").await;
    browser
        .click_when_present("#repairs div[data-id='fallback_port'] button.apply")
        .await;
    browser
        .wait_for(
            "var n = document.querySelector('section.notice'); return !!n && n.textContent.includes('appliquée');",
            json!(true),
        )
        .await;
    browser
        .wait_for(
            "return document.querySelectorAll('#access-test .ok').length;",
            json!(3),
        )
        .await;
    browser.screenshot("connection-repaired").await;

    // « Comptes utilisateurs »: set the account's Net-entreprises identity (confirmed by
    // its own password), then « Vérifier »: the outcome is shown.
    browser.goto(&h.url("/comptes")).await;
    browser.type_into("#siret", "78214563500010").await;
    browser.type_into("#nom", "DUPONT").await;
    browser.type_into("#prenom", "Marie").await;
    browser.type_into("#password", "Jardin#Partage2024").await;
    browser
        .type_into("#account_password", &h.admin_password())
        .await;
    browser.click("#confirm-identity").await;
    browser
        .wait_for(
            "var n = document.querySelector('section.notice'); return !!n && n.textContent.includes('est enregistrée');",
            json!(true),
        )
        .await;
    browser
        .wait_for(
            "return document.querySelector(\"tr[data-user='Administrateur'] td:nth-child(3)\").textContent;",
            json!("SIRET 78214563500010, DUPONT Marie"),
        )
        .await;
    browser
        .click("tr[data-user='Administrateur'] button.verify")
        .await;
    browser
        .wait_for(
            "var n = document.querySelector('section.notice'); return !!n && n.textContent.includes('Identifiants valides');",
            json!(true),
        )
        .await;
    browser
        .wait_for(
            "return document.querySelector(\"tr[data-user='Administrateur'] td.verification\").textContent.startsWith('Identifiants valides');",
            json!(true),
        )
        .await;
    browser.screenshot("accounts-verified").await;

    browser.quit().await;
    h.stop().await;
}
