//! The console in a real browser: headless Chromium (Debian's `chromium`) driven over
//! WebDriver by Debian's `chromedriver`, each page's live part followed without a reload:
//! the status icon changing when the status changes behind the page; an update applied
//! with its progress bar; "verify all" showing each account's result; a DSN file uploaded
//! from « Déclarations », their list read page by page; a deposit's page following its deposit until settled, and
//! showing « Régler ce dépôt » while it is uncertain, not once it is accepted.

mod common;

use common::Harness;
use common::webdriver::Browser;
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_mock_updates::fixtures::{FIRST, LATEST};
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
    h.mock("impact-emploi-auth")
        .faults(json!({"mode": "none", "close_default_port": true}))
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
    browser.type_into("#siret", DUPONT.siret).await;
    browser.type_into("#nom", DUPONT.nom).await;
    browser.type_into("#prenom", DUPONT.prenom).await;
    browser.type_into("#password", DUPONT.password).await;
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
            json!(format!(
                "SIRET {}, {} {}",
                DUPONT.siret, DUPONT.nom, DUPONT.prenom
            )),
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

/// The administrator with Net-entreprises credentials, the mock's `faults` set, then the
/// sample DSN deposited from « Déclarations » in a signed-in browser, on its deposit's page.
async fn deposit_page_with(h: &Harness, faults: serde_json::Value) -> Browser {
    let api = h.api_session().await;
    h.set_admin_identity(&api, DUPONT.siret, DUPONT.password)
        .await;
    h.mock("net-entreprises").faults(faults).await;
    let browser = Browser::start().await;
    sign_in(h, &browser).await;
    common::deposit_sample_in(h, &browser).await;
    browser
}

/// Signs in through the form; the status page is shown.
async fn sign_in(h: &Harness, browser: &Browser) {
    browser.goto(&h.url("/connexion")).await;
    browser.type_into("#user", "Administrateur").await;
    browser.type_into("#password", &h.admin_password()).await;
    browser.click("#sign-in").await;
    browser
        .wait_for("return location.pathname;", json!("/"))
        .await;
}

#[tokio::test]
async fn an_update_is_applied_with_its_progress_bar_in_chromium() {
    let h = Harness::start().await;
    let browser = Browser::start().await;
    sign_in(&h, &browser).await;
    // The download slowed down so that the bar is seen moving.
    h.mock("impact-emploi-updates")
        .send(
            Method::PUT,
            "/transfer",
            json!({"ranges": true, "bytes_per_second": 24 * 1024}),
        )
        .await;

    browser.goto(&h.url("/mises-a-jour")).await;
    browser
        .wait_for(
            "return document.getElementById('installed-version').textContent;",
            json!(FIRST),
        )
        .await;
    browser
        .wait_for(
            &format!("return !!document.querySelector(\"#releases tr[data-version='{LATEST}']\");"),
            json!(true),
        )
        .await;
    // « Lisez-moi » of the release.
    browser
        .click(&format!("#releases tr[data-version='{LATEST}'] a"))
        .await;
    browser
        .wait_for(
            "var n = document.getElementById('release-notes'); return !!n && n.textContent.includes('Mise à jour technique');",
            json!(true),
        )
        .await;
    browser.screenshot("updates-release-notes").await;
    browser.goto(&h.url("/mises-a-jour")).await;
    browser.screenshot("updates-available").await;

    // « Mettre à jour Impact Emploi maintenant »: the bar moves live, then reaches the
    // end and the new version is shown, without a reload.
    browser.click("#apply-update").await;
    browser
        .wait_for(
            "var p = document.getElementById('update-progress'); return !!p && !p.hidden;",
            json!(true),
        )
        .await;
    browser.script("window.ieaMark = 7; return true;").await;
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let v = browser
            .script("var p = document.getElementById('update-progress'); return [p.getAttribute('data-state'), document.getElementById('update-bar').value];")
            .await;
        let state = v[0].as_str().unwrap_or_default().to_owned();
        if let Some(pct) = v[1].as_f64() {
            seen.insert(pct as u64);
        }
        if state != "running" {
            assert_eq!(state, "done", "{v}");
            break;
        }
        if seen.iter().any(|p| *p > 5 && *p < 80) && !seen.contains(&999) {
            // Mid-download: the picture of the bar on its way.
            browser.screenshot("update-in-progress").await;
            seen.insert(999);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the update did not end: {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    assert!(
        seen.iter().any(|p| *p > 0 && *p < 100),
        "the bar was seen between its ends: {seen:?}"
    );
    browser
        .wait_for(
            "return document.getElementById('update-bar').value;",
            json!(100),
        )
        .await;
    browser
        .wait_for(
            "return document.getElementById('installed-version').textContent;",
            json!(LATEST),
        )
        .await;
    browser
        .wait_for(
            &format!("return document.querySelector(\"#update-progress [data-field='message']\").textContent.includes('{LATEST}');"),
            json!(true),
        )
        .await;
    assert_eq!(
        browser.script("return window.ieaMark;").await,
        json!(7),
        "followed without a reload"
    );
    browser.screenshot("update-done").await;

    // The status page shows the new version too.
    browser.goto(&h.url("/")).await;
    browser
        .wait_for(
            "return document.querySelector(\"[data-field='version']\").textContent;",
            json!(LATEST),
        )
        .await;

    // A newer version published at the update server is found by « Rechercher ».
    h.mock("impact-emploi-updates")
        .send(
            Method::POST,
            "/releases",
            json!({"version": "3.00.73", "published_at": "2019-04-10T08:00:00Z",
               "notes": "Version de démonstration publiée par le test.", "payload_bytes": 4096}),
        )
        .await;
    browser.goto(&h.url("/mises-a-jour")).await;
    browser.click("#check-updates").await;
    browser
        .wait_for(
            "return !!document.querySelector(\"#releases tr[data-version='3.00.73']\");",
            json!(true),
        )
        .await;
    browser.screenshot("updates-newer-published").await;

    browser.quit().await;
    h.stop().await;
}

#[tokio::test]
async fn verify_all_shows_each_result_live_in_chromium() {
    let h = Harness::start().await;
    let browser = Browser::start().await;
    // The identity set through the API, then « Tout vérifier » on the page.
    let api = h.api_session().await;
    h.set_admin_identity(&api, DUPONT.siret, DUPONT.password)
        .await;
    sign_in(&h, &browser).await;
    browser.goto(&h.url("/comptes")).await;
    browser.click("#verify-all-button").await;
    browser
        .wait_for(
            "var p = document.getElementById('verify-all'); return !!p && p.getAttribute('data-state');",
            json!("done"),
        )
        .await;
    browser
        .wait_for(
            "return document.querySelector(\"#verify-all-results li[data-user='Administrateur']\").getAttribute('data-outcome');",
            json!("valid"),
        )
        .await;
    browser
        .wait_for(
            "return document.getElementById('verify-all-bar').value;",
            json!(100),
        )
        .await;
    browser.screenshot("accounts-verify-all").await;
    browser.quit().await;
    h.stop().await;
}

/// The menu fits the window: in a narrow one its entries wrap onto another row, each on
/// one line, « Se déconnecter » in view, nothing scrolling sideways; the page's own entry
/// is marked.
#[tokio::test]
async fn the_menu_fits_the_window_and_marks_the_page_in_chromium() {
    let h = Harness::start().await;
    let browser = Browser::start().await;
    sign_in(&h, &browser).await;
    const FITS: &str = "var d = document.documentElement, n = document.querySelector('nav'); \
        var out = document.querySelector('nav button').getBoundingClientRect().right > d.clientWidth; \
        var broken = Array.from(n.querySelectorAll('a, .user')).filter(a => a.getClientRects().length != 1 \
            || a.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(a).fontSize)); \
        return {page: d.scrollWidth <= d.clientWidth, nav: n.scrollWidth <= n.clientWidth, \
            logout_in_view: !out, one_line_each: broken.length == 0};";
    for (width, path) in [(1000, "/"), (700, "/"), (420, "/declarations")] {
        browser.set_window_size(width, 800).await;
        browser.goto(&h.url(path)).await;
        browser
            .wait_for("return document.readyState;", json!("complete"))
            .await;
        let fits = browser.script(FITS).await;
        let want = if path == "/" {
            json!({"page": true, "nav": true, "logout_in_view": true, "one_line_each": true})
        } else {
            // A narrow window: the list's table may scroll, the menu does not.
            json!({"page": fits["page"], "nav": true, "logout_in_view": true, "one_line_each": true})
        };
        if fits != want {
            browser.screenshot(&format!("menu-{width}")).await;
        }
        assert_eq!(fits, want, "{width} px, {path}");
    }
    browser.screenshot("menu-420").await;
    assert_eq!(
        browser
            .script("return Array.from(document.querySelectorAll('nav a[aria-current=page]')).map(a => a.textContent);")
            .await,
        json!(["Déclarations DSN"])
    );
    browser.quit().await;
    h.stop().await;
}

#[tokio::test]
async fn a_dsn_file_is_uploaded_from_the_deposits_page_in_chromium() {
    let h = Harness::start().await;
    let api = h.api_session().await;
    h.set_admin_identity(&api, DUPONT.siret, DUPONT.password)
        .await;
    let browser = Browser::start().await;
    sign_in(&h, &browser).await;
    browser.goto(&h.url("/declarations")).await;
    browser
        .wait_for(
            "return !!document.getElementById('no-deposits');",
            json!(true),
        )
        .await;
    // The deposit's page, then accepted (shown when the page is loaded again).
    common::deposit_sample_in(&h, &browser).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = browser
            .script("return document.getElementById('deposit').getAttribute('data-state');")
            .await;
        if state == json!("accepted") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not accepted: {state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        browser.script("location.reload(); return true;").await;
        browser
            .wait_for("return document.readyState === 'complete' && !!document.getElementById('deposit');", json!(true))
            .await;
    }
    browser
        .wait_for(
            "return document.querySelector('#deposit td.state').textContent;",
            json!("Accepté"),
        )
        .await;
    browser.screenshot("deposit-accepted").await;
    browser.goto(&h.url("/declarations")).await;
    browser
        .wait_for(
            "return document.querySelector('#deposits tbody tr td.state').textContent;",
            json!("Accepté"),
        )
        .await;
    browser.screenshot("deposits-list").await;

    // November's declaration too: one a page, « Dépôts plus anciens » leads to October's.
    let november = iea_dsn::sample(&iea_dsn::SampleSpec::new(
        DUPONT.siret,
        iea_dsn::Month::new(2026, 11).unwrap(),
        1,
    ));
    let r = api
        .call(Method::POST, "/api/v1/deposits?file_name=novembre.dsn")
        .header("content-type", "application/octet-stream")
        .body(november)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    browser.goto(&h.url("/declarations?limit=1")).await;
    const MONTHS: &str = "return Array.from(document.querySelectorAll('#deposits tbody tr td:nth-child(4)')).map(td => td.textContent).join(', ');";
    browser.wait_for(MONTHS, json!("novembre 2026")).await;
    browser.click("#deposits-older").await;
    browser.wait_for(MONTHS, json!("octobre 2026")).await;
    assert_eq!(
        browser
            .script("return !!document.getElementById('deposits-truncated');")
            .await,
        json!(false)
    );
    browser.quit().await;
    h.stop().await;
}

/// A deposit's page follows it without a reload (`console.js`, the events of
/// `/api/v1/deposits/{id}/events`): loaded while Net-entreprises takes its time, it shows
/// the deposit being sent, then accepted with its flow, in the same document.
#[tokio::test]
async fn a_deposit_page_follows_its_deposit_live_in_chromium() {
    let h = Harness::start().await;
    // Each answer of Net-entreprises (authentication, deposit) 2 s late.
    let browser = deposit_page_with(&h, json!({"mode": "slow", "delay_ms": 2000})).await;
    // Loaded before the end: not settled, no flow yet; marked to tell a reload.
    assert_eq!(
        browser
            .script("var d = document.getElementById('deposit'); window.sameDocument = true; return [d.getAttribute('data-settled'), document.getElementById('idflux-row').hidden];")
            .await,
        json!(["false", true])
    );
    browser
        .wait_for(
            "return document.getElementById('deposit').getAttribute('data-live');",
            json!("on"),
        )
        .await;
    browser
        .wait_for(
            "return document.querySelector('#deposit td.state').textContent;",
            json!("En cours d'envoi"),
        )
        .await;
    browser.screenshot("deposit-sending-live").await;
    browser
        .wait_for(
            "return document.getElementById('deposit').getAttribute('data-state');",
            json!("accepted"),
        )
        .await;
    let shown = browser
        .script(
            "var d = document.getElementById('deposit'); return [window.sameDocument === true, d.getAttribute('data-settled'), d.querySelector('td.state').textContent, document.getElementById('idflux-row').hidden, d.querySelector('td.idflux').textContent.length, d.getAttribute('data-live')];",
        )
        .await;
    assert_eq!(
        shown,
        json!([true, "true", "Accepté", false, 23, "done"]),
        "updated in place, not reloaded"
    );
    browser.screenshot("deposit-accepted-live").await;
    browser.quit().await;
    h.stop().await;
}

/// The deposit's state as the page shows it (null while no page is there).
const DEPOSIT_STATE: &str =
    "var d = document.getElementById('deposit'); return d && d.getAttribute('data-state');";

/// « Régler ce dépôt » follows the deposit too (`console.js`): on a page loaded while the
/// deposit is being sent, it appears once the answer is lost (`uncertain`: the page loads
/// itself again, the server rendering the forms, and follows on), then goes away in place
/// once the listing finds the deposit (`accepted`). The test never reloads the page.
#[tokio::test]
async fn a_deposit_page_shows_then_drops_its_resolve_section_live_in_chromium() {
    let h = Harness::start_customized(Box::new(|s| {
        s.deposits.poll_interval_ms = 100;
        s.deposits.retry_delay_secs = 1;
        s.deposits.window_margin_secs = 2;
    }))
    .await;
    let ne = h.mock("net-entreprises");
    // The deposit registered, then its answer held 5 s, then lost.
    let browser = deposit_page_with(
        &h,
        json!({"hold_after_register": 1, "hold_ms": 5000, "lost_answer": 1}),
    )
    .await;
    // Loaded before the answer: not settled, no resolve section; marked to tell a reload.
    assert_eq!(
        browser
            .script("window.loadedBefore = true; return [document.getElementById('deposit').getAttribute('data-settled'), !!document.getElementById('resolve')];")
            .await,
        json!(["false", false])
    );
    browser.wait_for(DEPOSIT_STATE, json!("sending")).await;
    assert_eq!(
        browser.script("return window.loadedBefore === true;").await,
        json!(true),
        "sending: the page is not loaded again"
    );
    // Registered, its answer held: the listing that follows the lost answer gets 503s
    // until the service is back, so the deposit stays uncertain meanwhile.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while ne.get("/deposits").await.as_array().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ne.faults(json!({"mode": "unavailable", "lost_answer": 1}))
        .await;
    // Uncertain: the page loaded again by itself, with the forms of the server.
    browser
        .wait_for(
            "var d = document.getElementById('deposit'); var r = document.getElementById('resolve'); return [!!d && d.getAttribute('data-state'), !!r && !!r.querySelector('form input[name=csrf]') && !!document.getElementById('resend')];",
            json!(["uncertain", true]),
        )
        .await;
    assert_eq!(
        browser
            .script("return window.loadedBefore === undefined;")
            .await,
        json!(true),
        "the page was loaded again"
    );
    // And follows on, without loading itself again while the listings fail.
    browser
        .wait_for(
            "return document.getElementById('deposit').getAttribute('data-live');",
            json!("on"),
        )
        .await;
    browser
        .script("window.loadedUncertain = true; return true;")
        .await;
    browser.screenshot("deposit-uncertain-live").await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        browser
            .script("return [window.loadedUncertain === true, document.getElementById('deposit').getAttribute('data-state'), !!document.getElementById('resolve')];")
            .await,
        json!([true, "uncertain", true]),
        "no reload while uncertain"
    );
    // The service back: the listing finds the deposit, accepted; the section goes away.
    ne.faults(json!({})).await;
    browser.wait_for(DEPOSIT_STATE, json!("accepted")).await;
    assert_eq!(
        browser
            .script("var d = document.getElementById('deposit'); return [window.loadedUncertain === true, d.getAttribute('data-settled'), d.querySelector('td.state').textContent, !!document.getElementById('resolve')];")
            .await,
        json!([true, "true", "Accepté", false]),
        "the section removed in place"
    );
    browser.screenshot("deposit-resolved-live").await;
    browser.quit().await;
    h.stop().await;
}
