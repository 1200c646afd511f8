//! The console over HTTP against a real embedded stack: sessions, CSRF, cookies, the CSP,
//! sign-in to the status page, live status events, the JSON API and its OpenAPI document.

mod common;

use std::time::Duration;

use common::{Harness, client, hidden_field, session_cookie, set_cookies};
use futures::StreamExt;
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_mock_updates::fixtures::{FIRST, LATEST};
use reqwest::Method;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION};

/// Every page and API call but sign-in, with the method that reaches it.
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/"),
    ("POST", "/relancer"),
    ("POST", "/assistance/activer"),
    ("POST", "/assistance/desactiver"),
    ("GET", "/comptes"),
    ("POST", "/comptes/verifier"),
    ("POST", "/comptes/identite"),
    ("GET", "/parametres"),
    ("POST", "/parametres/tester"),
    ("POST", "/parametres/reparer"),
    ("POST", "/parametres/appliquer"),
    ("GET", "/support"),
    ("POST", "/support"),
    ("POST", "/deconnexion"),
    ("GET", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/status/events"),
    ("GET", "/api/v1/status/services"),
    ("POST", "/api/v1/status/reauthenticate"),
    ("POST", "/api/v1/assistance"),
    ("POST", "/api/v1/assistance/deactivate"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/credentials"),
    ("PUT", "/api/v1/credentials/Administrateur"),
    ("POST", "/api/v1/credentials/Administrateur/verify"),
    ("GET", "/api/v1/connection"),
    ("POST", "/api/v1/connection/test"),
    ("POST", "/api/v1/connection/repairs"),
    ("POST", "/api/v1/connection/repairs/fallback_port/apply"),
    ("POST", "/api/v1/support"),
    ("GET", "/mises-a-jour"),
    ("GET", "/mises-a-jour/lisez-moi"),
    ("POST", "/mises-a-jour/appliquer"),
    ("POST", "/mises-a-jour/scripts"),
    ("POST", "/comptes/verifier-tout"),
    ("POST", "/comptes/ajouter"),
    ("POST", "/comptes/supprimer"),
    ("POST", "/comptes/mode"),
    ("POST", "/parametres/enregistrer"),
    ("PUT", "/api/v1/connection"),
    ("POST", "/api/v1/users"),
    ("DELETE", "/api/v1/users/Nobody"),
    ("GET", "/api/v1/installation-mode"),
    ("PUT", "/api/v1/installation-mode"),
    ("GET", "/api/v1/credentials/verify-all"),
    ("POST", "/api/v1/credentials/verify-all"),
    ("GET", "/api/v1/credentials/verify-all/events"),
    ("GET", "/api/v1/updates"),
    ("GET", "/api/v1/updates/notes"),
    ("POST", "/api/v1/updates/apply"),
    ("GET", "/api/v1/updates/progress"),
    ("GET", "/api/v1/updates/events"),
    ("GET", "/api/v1/updates/scripts"),
    ("POST", "/api/v1/updates/scripts/apply"),
    ("GET", "/declarations"),
    ("POST", "/declarations/deposer"),
    ("GET", "/declarations/1"),
    ("POST", "/declarations/1/resoudre"),
    ("GET", "/api/v1/deposits"),
    ("POST", "/api/v1/deposits"),
    ("GET", "/api/v1/deposits/1"),
    ("GET", "/api/v1/deposits/1/events"),
    ("POST", "/api/v1/deposits/1/resolve"),
];

#[tokio::test]
async fn without_a_session_every_page_and_api_call_but_sign_in_is_refused() {
    let h = Harness::start().await;
    let c = client();
    for (method, path) in PROTECTED {
        for cookie in [None, Some("iea_session=forged")] {
            let mut req = c.request(Method::from_bytes(method.as_bytes()).unwrap(), h.url(path));
            if let Some(cookie) = cookie {
                req = req.header(COOKIE, cookie);
            }
            let r = req.send().await.unwrap();
            if path.starts_with("/api/") {
                assert_eq!(r.status(), 401, "{method} {path} {cookie:?}");
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "unauthenticated", "{method} {path}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("connecter")
                );
            } else {
                assert_eq!(r.status(), 303, "{method} {path} {cookie:?}");
                assert_eq!(r.headers()[LOCATION], "/connexion", "{method} {path}");
            }
        }
    }
    // The sign-in page and the API's description are open.
    assert_eq!(
        c.get(h.url("/connexion")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(h.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Nothing changed: the status is not assistance.
    let s = h.api_session().await;
    let status = s.get_json("/api/v1/status").await;
    assert_ne!(status["indicator"], "assistance");
    h.stop().await;
}

#[tokio::test]
async fn a_state_changing_request_without_its_csrf_token_is_refused_and_changes_nothing() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let other = h.api_session().await;
    assert_ne!(s.csrf, other.csrf, "one token per session");

    // JSON: no header, a wrong one, another session's.
    for token in [None, Some("0".repeat(64)), Some(other.csrf.clone())] {
        let mut req = s.request(Method::POST, "/api/v1/assistance");
        if let Some(t) = &token {
            req = req.header("x-csrf-token", t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{token:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_token_invalid");
    }
    // Forms: no field, a wrong one.
    for form in ["", "csrf=abc"] {
        let r = s
            .request(Method::POST, "/assistance/activer")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "form {form:?}");
        assert!(r.text().await.unwrap().contains("csrf_token_invalid"));
    }
    assert_ne!(
        s.get_json("/api/v1/status").await["indicator"],
        "assistance"
    );

    // With its token, the same form goes through.
    let r = s
        .request(Method::POST, "/assistance/activer")
        .form(&[("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("ne seront pas pris en compte")
    );
    assert_eq!(
        s.get_json("/api/v1/status").await["indicator"],
        "assistance"
    );

    // The sign-in form needs its double-submit token too.
    let r = client()
        .post(h.url("/connexion"))
        .form(&[
            ("user", "Administrateur"),
            ("password", &h.admin_password()),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(session_cookie(&r).is_none());
    h.stop().await;
}

#[tokio::test]
async fn cookies_carry_http_only_same_site_strict_and_secure_under_tls() {
    let h = Harness::start().await;
    let r = client()
        .post(h.url("/api/v1/session"))
        .json(&serde_json::json!({"user": "Administrateur", "password": h.admin_password()}))
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("iea_session="))
        .expect("cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let login = client().get(h.url("/connexion")).send().await.unwrap();
    let login_cookie = set_cookies(&login).join(";");
    assert!(
        login_cookie.contains("iea_login=")
            && login_cookie.contains("HttpOnly")
            && login_cookie.contains("SameSite=Strict")
    );
    // The JSON body holds no orchestrator token: only the CSRF token.
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("token\":") || body.contains("csrf_token"),
        "{body}"
    );
    h.stop().await;

    let h = Harness::start_with(true).await;
    let r = client()
        .post(h.url("/api/v1/session"))
        .json(&serde_json::json!({"user": "Administrateur", "password": h.admin_password()}))
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("iea_session="))
        .expect("cookie");
    assert!(session.contains("; Secure"), "{session}");
    h.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_csp_without_inline_scripts() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let answers = [
        client().get(h.url("/connexion")).send().await.unwrap(),
        client().get(h.url("/")).send().await.unwrap(),
        client()
            .get(h.url("/static/console.js"))
            .send()
            .await
            .unwrap(),
        client().get(h.url("/api/v1/status")).send().await.unwrap(),
        s.request(Method::GET, "/").send().await.unwrap(),
        s.request(Method::GET, "/comptes").send().await.unwrap(),
    ];
    for r in answers {
        let csp = r.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        let html = r.text().await.unwrap();
        if html.starts_with("<!DOCTYPE") {
            // Scripts only by address, no inline style.
            for (i, _) in html.match_indices("<script") {
                assert!(
                    html[i..].starts_with("<script src=\"/static/"),
                    "inline script: {html}"
                );
            }
            assert!(!html.contains(" style="), "{html}");
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn sign_in_leads_to_the_status_page_with_its_icon_reason_and_time() {
    let h = Harness::start().await;
    let c = client();
    let page = c.get(h.url("/connexion")).send().await.unwrap();
    let login_cookie = set_cookies(&page)
        .into_iter()
        .find(|c| c.starts_with("iea_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"fr\"") && html.contains("Se connecter"));
    let token = hidden_field(&html, "csrf").expect("the form's token");

    // A wrong password: refused with the orchestrator's French sentence, no session.
    let r = c
        .post(h.url("/connexion"))
        .header(COOKIE, &login_cookie)
        .form(&[
            ("user", "Administrateur"),
            ("password", "faux"),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(session_cookie(&r).is_none());

    let password = h.admin_password();
    let r = c
        .post(h.url("/connexion"))
        .header(COOKIE, &login_cookie)
        .form(&[
            ("user", "Administrateur"),
            ("password", password.as_str()),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/");
    let cookie = session_cookie(&r).expect("session cookie");

    // The first authentication may land a moment after the start: wait for a state.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let html = loop {
        let r = c
            .get(h.url("/"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        if html.contains("data-indicator=\"connected\"") || tokio::time::Instant::now() > deadline {
            break html;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(html.contains("data-indicator=\"connected\""), "{html}");
    assert!(html.contains("src=\"/static/icons/connected.svg\""));
    assert!(html.contains("Connecté (boule bleue)"));
    assert!(html.contains("depuis le "), "since when, in French: {html}");
    // A French time, kept on one line (no-break spaces).
    assert!(html.contains("\u{a0}h\u{a0}"), "French time: {html}");
    assert!(html.contains("Relancer l'authentification"));
    assert!(html.contains("<script src=\"/static/console.js\""));
    // No secret in the page: neither the password nor the installation's keys.
    assert!(!html.contains(&password));
    let (licence, daily) = h.installation_secrets();
    assert!(!html.contains(&licence) && !html.contains(&daily));
    // The icon itself is served.
    let icon = c
        .get(h.url("/static/icons/connected.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    // Signing out ends the session.
    let csrf = hidden_field(&html, "csrf").unwrap();
    let r = c
        .post(h.url("/deconnexion"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = c
        .get(h.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the old cookie no longer opens a page");
    h.stop().await;
}

/// Reads server-sent events until one whose indicator is `want`.
async fn wait_for_event<S, B>(events: &mut S, buf: &mut String, want: &str) -> serde_json::Value
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                    .collect();
                if event.contains("event: status") {
                    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
                    if v["indicator"] == want {
                        return v;
                    }
                }
            }
            let chunk = events.next().await.expect("the stream stays open").unwrap();
            buf.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {want} event within {deadline:?}"))
}

/// The services as the orchestrator checks them when asked: its version, each agent in
/// service and how fast, of the same version; an agent stopped is said unreachable in
/// French, without a latency.
#[tokio::test]
async fn the_api_gives_each_service_as_the_orchestrator_checks_it() {
    let mut h = Harness::start().await;
    let s = h.api_session().await;
    let v = s.get_json("/api/v1/status/services").await;
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(v["orchestrator_version"], version, "{v}");
    let agents = v["agents"].as_array().unwrap();
    let mut names: Vec<&str> = agents.iter().map(|a| a["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "auth-client",
            "credential-verifier",
            "deposit-agent",
            "update-client"
        ],
        "{v}"
    );
    for a in agents {
        assert_eq!(a["healthy"], true, "{a}");
        assert!(a["latency_ms"].as_i64().is_some(), "{a}");
        assert_eq!(a["version"], version, "{a}");
        assert_eq!(a["version_mismatch"], false, "{a}");
        assert_eq!(a["message"], "", "{a}");
    }
    let deposit = agents
        .iter()
        .find(|a| a["name"] == "deposit-agent")
        .unwrap();
    assert_eq!(
        deposit["label"],
        "Service de dépôt DSN et des retours (deposit-agent)"
    );

    h.stack.stop_agent("update-client").await;
    let v = s.get_json("/api/v1/status/services").await;
    let update = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "update-client")
        .unwrap()
        .clone();
    assert_eq!(update["healthy"], false, "{v}");
    assert_eq!(update["latency_ms"], serde_json::Value::Null, "{v}");
    let message = update["message"].as_str().unwrap();
    assert!(message.contains("update-client"), "{message}");
    assert!(message.contains("ne répond pas"), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn status_changes_reach_the_event_stream_without_asking() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let r = s
        .request(Method::GET, "/api/v1/status/events")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = r.bytes_stream();
    let mut buf = String::new();
    let first = wait_for_event(&mut events, &mut buf, "connected").await;
    assert_eq!(first["icon"], "/static/icons/connected.svg");
    assert!(first["since_fr"].as_str().unwrap().contains(" h "));

    let r = s
        .call(Method::POST, "/api/v1/assistance")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["warning"].as_str().unwrap().contains("scripts"));
    let changed = wait_for_event(&mut events, &mut buf, "assistance").await;
    assert_eq!(changed["icon"], "/static/icons/assistance.svg");
    assert_eq!(changed["label"], "Mode assistance (coccinelle rouge)");

    // A wrong daily password: the orchestrator's code and French sentence.
    let r = s
        .call(Method::POST, "/api/v1/assistance/deactivate")
        .json(&serde_json::json!({"daily_password": "000000"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(!body["error"]["code"].as_str().unwrap().is_empty());
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn the_api_answers_json_with_stable_error_codes() {
    let h = Harness::start().await;
    // Sign-in: a wrong password is the orchestrator's refusal; not JSON is refused.
    let r = client()
        .post(h.url("/api/v1/session"))
        .json(&serde_json::json!({"user": "Administrateur", "password": "faux"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mot de passe")
    );
    let r = client()
        .post(h.url("/api/v1/session"))
        .form(&[
            ("user", "Administrateur"),
            ("password", &h.admin_password()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(session_cookie(&r).is_none());

    let s = h.api_session().await;
    let me = s.get_json("/api/v1/session").await;
    assert_eq!(me["user"], "Administrateur");
    assert_eq!(me["role"], "administrator");
    assert_eq!(me["csrf_token"], s.csrf);
    let users = s.get_json("/api/v1/users").await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "Administrateur")
    );

    // The connection settings and the access test: a row per address, all reachable.
    let conn = s.get_json("/api/v1/connection").await;
    assert!(
        conn["auth_server"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    let r = s
        .call(Method::POST, "/api/v1/connection/test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: serde_json::Value = r.json().await.unwrap();
    let rows = t["tests"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{t}");
    assert!(rows.iter().all(|r| r["reachable"] == true), "{t}");
    assert_eq!(t["all_reachable"], true);

    // An identity badly typed: refused with a code, nothing stored.
    let r = s
        .call(Method::PUT, "/api/v1/credentials/Administrateur")
        .json(&serde_json::json!({"account_password": h.admin_password(), "siret": "123", "nom": "DUPONT", "prenom": "Jean", "password": "secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        !body["error"]["code"].as_str().unwrap().is_empty(),
        "{body}"
    );
    let creds = s.get_json("/api/v1/credentials").await;
    let admin = creds
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"] == "Administrateur")
        .unwrap();
    assert_eq!(admin["configured"], false, "{creds}");

    // The signed-out session is refused.
    let r = s
        .call(Method::DELETE, "/api/v1/session")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .request(Method::GET, "/api/v1/status")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    h.stop().await;
}

/// An address the console does not know: without a session the sign-in page, as any
/// other; with one, a page in French with the menu, or the API's JSON error.
#[tokio::test]
async fn an_unknown_address_is_said_in_french_or_as_the_api_s_error() {
    let h = Harness::start().await;
    let r = client().get(h.url("/taux")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/connexion");

    let s = h.api_session().await;
    let r = s.request(Method::GET, "/taux").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()[CONTENT_SECURITY_POLICY].to_str().is_ok());
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(
        html.contains("Cette adresse ne correspond à aucune page de la console iea-connect."),
        "{html}"
    );
    assert!(html.contains("<code>not_found</code>"), "{html}");
    assert!(html.contains("href=\"/taux-pas\""), "the menu: {html}");

    for (method, path) in [(Method::GET, "/api/v1/nope"), (Method::POST, "/api/v2")] {
        let r = s.call(method, path).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    h.stop().await;
}

#[tokio::test]
async fn the_pages_show_accounts_and_the_access_test_row_by_row() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let html = s
        .request(Method::GET, "/comptes")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-user=\"Administrateur\""), "{html}");
    assert!(html.contains(">Vérifier<"));
    assert!(html.contains("Non renseignée"));

    let html = s
        .request(Method::GET, "/parametres")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Tester l'accès aux serveurs"));
    let r = s
        .request(Method::POST, "/parametres/tester")
        .form(&[("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    for target in ["auth_server", "update_server", "net_entreprises"] {
        assert!(
            html.contains(&format!("data-target=\"{target}\"")),
            "{target}: {html}"
        );
    }
    assert_eq!(html.matches("class=\"ok\">✔").count(), 3, "{html}");
    assert!(html.contains("\u{a0}ms"), "{html}");

    // Vérifier an account without identity: the outcome is shown, not an error page.
    let r = s
        .request(Method::POST, "/comptes/verifier")
        .form(&[("csrf", s.csrf.as_str()), ("user", "Administrateur")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Administrateur —"), "{html}");

    // The support e-mail downloads as an attachment.
    let r = s
        .request(Method::POST, "/support")
        .form(&[
            ("csrf", s.csrf.as_str()),
            ("description", "Test"),
            ("from", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "message/rfc822");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    h.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let h = Harness::start().await;
    let doc: serde_json::Value = client()
        .get(h.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in PROTECTED.iter().filter(|(_, p)| p.starts_with("/api/")) {
        let path = path
            .replace("/Administrateur", "/{user}")
            .replace("/users/Nobody", "/users/{name}")
            .replace("/deposits/1", "/deposits/{id}")
            .replace("/fallback_port/", "/{id}/");
        let op = &paths[&path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} says 401"
        );
    }
    assert!(paths["/api/v1/session"]["post"].is_object());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "ErrorBody",
        "StatusView",
        "VerificationView",
        "AccessTestView",
    ] {
        assert!(schemas.contains_key(s), "{s}");
    }
    // A program knows when a deposit's list of anomalies is incomplete.
    let deposit = &schemas["DepositView"];
    assert_eq!(
        deposit["properties"]["anomalies_omitted"]["type"], "integer",
        "{deposit}"
    );
    assert!(
        deposit["required"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("anomalies_omitted")),
        "{deposit}"
    );
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    h.stop().await;
}

/// Each parameter is documented where its handler reads it: a path parameter names a
/// `{…}` of its path, and what a handler reads from the query string (`Query<…Params>`)
/// is `in: query` — utoipa's `IntoParams` puts a struct's fields in the path unless told
/// otherwise, and schemathesis then never sends them.
#[tokio::test]
async fn every_parameter_is_documented_where_its_handler_reads_it() {
    let h = Harness::start().await;
    let doc: serde_json::Value = client()
        .get(h.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut in_query = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                match p["in"].as_str().unwrap() {
                    "path" => assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: « {name} » is documented in the path, which has no {{{name}}}"
                    ),
                    "query" => in_query.push((method.clone(), path.clone(), name.to_owned())),
                    _ => {}
                }
            }
        }
    }
    for (method, path, name) in [
        ("get", "/api/v1/updates/notes", "version"),
        ("post", "/api/v1/deposits", "file_name"),
        ("post", "/api/v1/deposits", "user"),
        ("get", "/api/v1/returns/follows", "siret"),
        ("get", "/api/v1/rates", "siret"),
        ("get", "/api/v1/rates", "expired"),
        ("get", "/api/v1/rates.csv", "siret"),
        ("get", "/api/v1/rates.csv", "expired"),
        ("get", "/api/v1/board", "siret"),
        ("get", "/api/v1/deposits", "before"),
    ] {
        assert!(
            in_query
                .iter()
                .any(|(m, p, n)| (m.as_str(), p.as_str(), n.as_str()) == (method, path, name)),
            "{method} {path}: « {name} » in: query (documented in the query: {in_query:?})"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn the_embedded_stack_serves_the_console_at_the_address_in_stack_json() {
    let h = Harness::start().await;
    let file = iea_stack::StackFile::read(h.dir.path()).unwrap();
    let web = file.web.expect("stack.json names the web console");
    assert!(web.starts_with("http://127.0.0.1:"), "{web}");
    let r = client()
        .get(format!("{web}/connexion"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Connexion à iea-connect"));
    h.stop().await;
}

#[tokio::test]
async fn under_tls_the_console_speaks_https_and_its_session_cookie_is_secure() {
    let h = Harness::start().await;
    // A certificate for 127.0.0.1 from a CA of the test's own.
    let ca = iea_runtime::pki::CertificateAuthority::new("test web CA").unwrap();
    let cert = ca
        .issue(
            "web",
            &["127.0.0.1".to_owned(), "localhost".to_owned()],
            iea_runtime::pki::Validity::default(),
        )
        .unwrap();
    let dir = h.dir.path().join("web-tls");
    std::fs::create_dir_all(&dir).unwrap();
    cert.write(&dir.join("web.pem"), &dir.join("web.key"))
        .unwrap();
    let f = h.file();
    let app = iea_web::App::build(iea_web::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        orchestrator: f.orchestrator.clone(),
        ca: f.ca.clone(),
        orchestrator_server_name: f.orchestrator_server_name.clone(),
        secure_cookies: false,
        tls: Some(iea_runtime::pki::TlsFiles {
            ca: dir.join("unused.pem"),
            cert: dir.join("web.pem"),
            key: dir.join("web.key"),
        }),
        upload_dir: None,
    })
    .await
    .unwrap();
    let addr = app.local_addr();
    let stop = iea_runtime::shutdown::Shutdown::new();
    let task = tokio::spawn(app.run_until(stop.clone()));

    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = https
        .post(format!("https://{addr}/api/v1/session"))
        .json(&serde_json::json!({"user": "Administrateur", "password": h.admin_password()}))
        .send()
        .await
        .expect("https answers");
    assert_eq!(r.status(), 200);
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("iea_session="))
        .unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    // Plain HTTP on that port gets no page.
    assert!(
        client()
            .get(format!("http://{addr}/connexion"))
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
    );
    stop.trigger();
    task.await.unwrap().unwrap();
    h.stop().await;
}

/// Every event of a stream that ends: (name, data as JSON).
async fn all_events(r: reqwest::Response) -> Vec<(String, serde_json::Value)> {
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(120), r.text())
        .await
        .expect("the stream ends with its job")
        .unwrap();
    text.split("\n\n")
        .filter(|e| e.contains("data:"))
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_owned();
            let data: String = e
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .collect();
            (name, serde_json::from_str(&data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn an_update_through_the_api_streams_its_progress_to_the_new_version() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    // Nothing started yet: the idle state, and the stream ends at once.
    let idle = all_events(
        s.request(Method::GET, "/api/v1/updates/events")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(idle.len(), 1);
    assert_eq!(idle[0].1["state"], "idle");

    let check = s.get_json("/api/v1/updates").await;
    assert_eq!(check["installed_version"], FIRST);
    assert_eq!(check["available"][0]["version"], LATEST);
    let notes = s
        .get_json(&format!("/api/v1/updates/notes?version={LATEST}"))
        .await;
    assert!(
        notes["text"]
            .as_str()
            .unwrap()
            .contains("Mise à jour technique")
    );
    let r = s
        .request(Method::GET, "/api/v1/updates/notes?version=pas-une-version")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a malformed version is refused");

    // Slowed down so that the update is still running for the second start.
    h.mock("impact-emploi-updates")
        .send(
            Method::PUT,
            "/transfer",
            serde_json::json!({"ranges": true, "bytes_per_second": 32 * 1024}),
        )
        .await;
    let r = s
        .call(Method::POST, "/api/v1/updates/apply")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let started: serde_json::Value = r.json().await.unwrap();
    assert_eq!(started["state"], "running");
    let r = s
        .call(Method::POST, "/api/v1/updates/apply")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "one update at a time");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "update_in_progress");

    let events = all_events(
        s.request(Method::GET, "/api/v1/updates/events")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(events.iter().all(|(name, _)| name == "progress"));
    let percents: Vec<u64> = events
        .iter()
        .map(|(_, v)| v["percent"].as_u64().unwrap())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "never backwards: {percents:?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, v)| v["phase"] == "download" && v["bytes_total"].as_u64() > Some(0)),
        "the download's bytes are reported: {events:?}"
    );
    let last = &events.last().unwrap().1;
    assert_eq!(last["state"], "done", "{last}");
    assert_eq!(last["percent"], 100);
    assert_eq!(last["installed_version"], LATEST);
    assert_eq!(
        s.get_json("/api/v1/updates/progress").await["state"],
        "done"
    );
    let check = s.get_json("/api/v1/updates").await;
    assert_eq!(check["installed_version"], LATEST);
    assert_eq!(check["available"], serde_json::json!([]));
    assert_eq!(
        s.get_json("/api/v1/status").await["software_version"],
        LATEST
    );
    // Its scripts ran with it.
    let scripts = s.get_json("/api/v1/updates/scripts").await;
    assert!(
        scripts
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] != "pending"),
        "{scripts}"
    );
    h.stop().await;
}

#[tokio::test]
async fn verify_all_streams_each_result_until_the_last() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    h.set_admin_identity(&s, DUPONT.siret, DUPONT.password)
        .await;
    let r = s
        .call(Method::POST, "/api/v1/credentials/verify-all")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let started: serde_json::Value = r.json().await.unwrap();
    assert_eq!(started["total"], 1);
    let events = all_events(
        s.request(Method::GET, "/api/v1/credentials/verify-all/events")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let last = &events.last().unwrap().1;
    assert_eq!(last["state"], "done", "{events:?}");
    assert_eq!(last["done"], 1);
    assert_eq!(last["percent"], 100);
    assert_eq!(last["results"][0]["user"], "Administrateur");
    assert_eq!(last["results"][0]["outcome"], "valid");
    assert_eq!(
        s.get_json("/api/v1/credentials/verify-all").await["state"],
        "done"
    );
    h.stop().await;
}

#[tokio::test]
async fn connection_settings_are_saved_as_a_whole_or_not_at_all() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let before = s.get_json("/api/v1/connection").await;
    let mut body = serde_json::json!({
        "connection_type": "direct", "mode": "fast",
        "auth_server": before["auth_server"], "update_server": before["update_server"],
        "net_entreprises": before["net_entreprises"],
    });
    let r = s
        .call(Method::PUT, "/api/v1/connection")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_input");
    assert_eq!(
        s.get_json("/api/v1/connection").await,
        before,
        "nothing saved"
    );
    // An address the orchestrator refuses: nothing saved either.
    body["mode"] = "extended".into();
    body["auth_server"] = "pas une adresse".into();
    let r = s
        .call(Method::PUT, "/api/v1/connection")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    assert_eq!(
        s.get_json("/api/v1/connection").await,
        before,
        "nothing saved"
    );
    // Valid: saved.
    body["auth_server"] = before["auth_server"].clone();
    let r = s
        .call(Method::PUT, "/api/v1/connection")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let saved = s.get_json("/api/v1/connection").await;
    assert_eq!(saved["mode"], "extended");
    assert_eq!(saved["connection_type"], "direct");
    assert_eq!(saved["auth_server"], before["auth_server"]);

    // The page's form: a bad port is refused with its sentence.
    let page = s
        .request(Method::GET, "/parametres")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Enregistrer") && page.contains("Quitter"));
    let r = s
        .request(Method::POST, "/parametres/enregistrer")
        .form(&[
            ("csrf", s.csrf.as_str()),
            ("connection_type", "proxy"),
            ("proxy_host", "proxy.local"),
            ("proxy_port", "99999"),
            ("mode", "normal"),
            ("auth_server", before["auth_server"].as_str().unwrap()),
            ("update_server", before["update_server"].as_str().unwrap()),
            (
                "net_entreprises",
                before["net_entreprises"].as_str().unwrap(),
            ),
        ])
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Rien n&#39;a été enregistré") || text.contains("Rien n'a été enregistré"),
        "{text}"
    );
    assert_eq!(s.get_json("/api/v1/connection").await, saved);

    // A JSON body must be an object, even where every field is optional.
    for path in ["/api/v1/support", "/api/v1/updates/apply"] {
        let r = s
            .call(Method::POST, path)
            .json(&serde_json::json!([]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    h.stop().await;
}

#[tokio::test]
async fn an_administrator_adds_and_removes_accounts_and_sets_the_mode() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let r = s
        .call(Method::PUT, "/api/v1/installation-mode")
        .json(&serde_json::json!({"mode": "autre"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .call(Method::PUT, "/api/v1/installation-mode")
        .json(&serde_json::json!({"mode": "reseau"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.get_json("/api/v1/installation-mode").await["mode"],
        "reseau"
    );

    let r = s
        .call(Method::POST, "/api/v1/users")
        .json(&serde_json::json!({"name": "Paie2", "role": "user", "password": "Un-mot-de-passe-long"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let u: serde_json::Value = r.json().await.unwrap();
    assert_eq!(u, serde_json::json!({"name": "Paie2", "role": "user"}));
    let users = s.get_json("/api/v1/users").await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "Paie2")
    );
    let r = s
        .call(Method::POST, "/api/v1/users")
        .json(&serde_json::json!({"name": "Paie3", "role": "chef", "password": "Un-mot-de-passe-long"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an unknown role");

    // The new account signs in.
    let r = client()
        .post(h.url("/api/v1/session"))
        .json(&serde_json::json!({"user": "Paie2", "password": "Un-mot-de-passe-long"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = s
        .call(Method::DELETE, "/api/v1/users/Paie2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .call(Method::DELETE, "/api/v1/users/Paie2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .call(Method::DELETE, "/api/v1/users/Administrateur")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "not oneself");
    let users = s.get_json("/api/v1/users").await;
    assert!(
        !users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "Paie2")
    );

    // The page has the forms for an administrator.
    let page = s
        .request(Method::GET, "/comptes")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Ajouter le compte")
            && page.contains("Monoposte")
            && page.contains("Tout vérifier")
    );
    h.stop().await;
}

/// A valid DSN (invented people), written by `iea dsn sample --siret 78214563500010
/// --month 2026-10 --employees 2 --seed 14`.
const SAMPLE_DSN: &[u8] = include_bytes!("fixtures/sample-78214563500010-2026-10.dsn");

#[tokio::test]
async fn a_dsn_file_is_deposited_through_the_api_and_a_bad_one_changes_nothing() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    h.set_admin_identity(&s, DUPONT.siret, DUPONT.password)
        .await;
    assert_eq!(s.get_json("/api/v1/deposits").await, serde_json::json!([]));

    // A file that is not a DSN: refused with the orchestrator's code, nothing recorded.
    let r = s
        .call(Method::POST, "/api/v1/deposits?file_name=faux.dsn")
        .header("content-type", "application/octet-stream")
        .body("ceci n'est pas une DSN\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "bad_dsn_file", "{e}");
    assert_eq!(s.get_json("/api/v1/deposits").await, serde_json::json!([]));

    // Without the CSRF token: refused.
    let r = s
        .request(Method::POST, "/api/v1/deposits?file_name=octobre.dsn")
        .header("content-type", "application/octet-stream")
        .body(SAMPLE_DSN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = s
        .call(
            Method::POST,
            "/api/v1/deposits?file_name=C%3A%5Cpaie%5Coctobre.dsn",
        )
        .header("content-type", "application/octet-stream")
        .body(SAMPLE_DSN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let d: serde_json::Value = r.json().await.unwrap();
    assert_eq!(d["siret"], DUPONT.siret);
    assert_eq!(d["month"], "2026-10");
    assert_eq!(d["file_name"], "octobre.dsn", "the name only, not the path");
    assert_eq!(d["bytes"], SAMPLE_DSN.len());
    let id = d["id"].as_i64().unwrap();
    let list = s.get_json("/api/v1/deposits").await;
    assert_eq!(list[0]["id"], id);

    // Deposited at the Net-entreprises mock: accepted with its flow.
    let done = s.settled_deposit(id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "accepted", "{done}");
    assert_eq!(done["state_label"], "Accepté");
    assert!(done["idflux"].as_str().is_some_and(|f| !f.is_empty()));
    assert_eq!(
        (&done["anomalies"], &done["anomalies_omitted"]),
        (&serde_json::json!([]), &serde_json::json!(0))
    );

    // Bad ids and resolutions: the error form.
    let r = s
        .request(Method::GET, "/api/v1/deposits/abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .request(Method::GET, "/api/v1/deposits/999999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .call(Method::POST, &format!("/api/v1/deposits/{id}/resolve"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    h.stop().await;
}

/// `GET /api/v1/deposits/{id}/events`: the deposit now, then each change (`WatchDeposit`),
/// and the end after the settled one; a settled deposit gives one event; refused as
/// `GET /api/v1/deposits/{id}` is.
#[tokio::test]
async fn a_deposit_streams_its_changes_until_settled() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    h.set_admin_identity(&s, DUPONT.siret, DUPONT.password)
        .await;
    // Net-entreprises answers 300 ms late: the stream opens before the deposit ends.
    h.mock("net-entreprises")
        .faults(serde_json::json!({"mode": "slow", "delay_ms": 300}))
        .await;
    let r = s
        .call(Method::POST, "/api/v1/deposits?file_name=octobre.dsn")
        .header("content-type", "application/octet-stream")
        .body(SAMPLE_DSN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/deposits/{id}/events");
    let events = all_events(s.request(Method::GET, &path).send().await.unwrap()).await;
    assert!(
        events.iter().all(|(name, _)| name == "deposit"),
        "{events:?}"
    );
    let states: Vec<&str> = events
        .iter()
        .map(|(_, d)| d["state"].as_str().unwrap())
        .collect();
    assert!(
        events.len() >= 2,
        "the deposit before and once accepted: {states:?}"
    );
    assert_ne!(states[0], "accepted", "{states:?}");
    let (_, last) = events.last().unwrap();
    assert_eq!(
        (&last["state"], &last["settled"]),
        (&serde_json::json!("accepted"), &serde_json::json!(true))
    );
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|(_, d)| d["settled"] == false)
    );
    // Never the same deposit twice in a row.
    assert!(events.windows(2).all(|w| w[0].1 != w[1].1), "{events:?}");
    assert_eq!(*last, s.get_json(&format!("/api/v1/deposits/{id}")).await);

    // Settled: the deposit once, then the end.
    let again = all_events(s.request(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(again, vec![("deposit".to_owned(), last.clone())]);

    // Refused as the deposit itself is: a deposit that does not exist, a bad number.
    let r = s
        .request(
            Method::GET,
            &format!("/api/v1/deposits/{}/events", id + 1000),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "not_found", "{e}");
    let r = s
        .request(Method::GET, "/api/v1/deposits/x/events")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    h.stop().await;
}
