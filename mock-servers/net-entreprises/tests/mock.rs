//! The authentication service driven over real HTTPS, with a client that trusts only a
//! test CA made for the occasion (certificate verification stays on).

mod support;

use std::time::{Duration, SystemTime};

use base64::Engine;
use iea_mock_net_entreprises::NotRegisteredAnswer;
use iea_runtime::pki::CertificateAuthority;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Mock, client_trusting, www_authenticate};

const REALM_WRONG: &str = "Basic realm=\"net-entreprises.fr\"";
const REALM_EXPIRED: &str = "Basic realm=\"Expiration du mot de passe\"";
const REALM_NOT_REGISTERED: &str = "DSNLogin realm=\"Utilisateur non-inscrit au service\"";

/// The authentication calls of these tests.
trait AuthCalls {
    async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: String,
    ) -> reqwest::Response;
    async fn auth(
        &self,
        siret: &str,
        nom: &str,
        prenom: &str,
        mdp: &str,
        service: &str,
    ) -> reqwest::Response;
    async fn simulator(&self, mdp: &str) -> reqwest::Response;
    async fn stats(&self) -> Value;
}

impl AuthCalls for Mock {
    async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: String,
    ) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.https)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.unwrap()
    }

    async fn auth(
        &self,
        siret: &str,
        nom: &str,
        prenom: &str,
        mdp: &str,
        service: &str,
    ) -> reqwest::Response {
        self.post_raw(
            "/authentifier/1.0/",
            Some("application/xml"),
            body(siret, nom, prenom, mdp, service),
        )
        .await
    }

    async fn simulator(&self, mdp: &str) -> reqwest::Response {
        self.auth("99900000300015", "declarant", "declarant", mdp, "97")
            .await
    }

    async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/__admin/stats", None)
            .await
            .1
    }
}

fn body(siret: &str, nom: &str, prenom: &str, mdp: &str, service: &str) -> String {
    format!(
        "<identifiants><siret>{siret}</siret><nom>{nom}</nom><prenom>{prenom}</prenom><motdepasse>{mdp}</motdepasse><service>{service}</service></identifiants>"
    )
}

async fn assert_refused(resp: reqwest::Response, status: StatusCode, realm: Option<&str>) {
    assert_eq!(resp.status(), status);
    assert_eq!(www_authenticate(&resp).as_deref(), realm);
    assert_eq!(resp.text().await.unwrap(), "", "error bodies are empty");
}

#[tokio::test]
async fn the_simulator_declarant_gets_a_base64_token_that_expires_after_the_set_lifetime() {
    let mock = Mock::start(|s| s.token_lifetime_secs = 7200).await;
    let before = SystemTime::now();
    let resp = mock.simulator("Refonte01").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let expires = httpdate::parse_http_date(resp.headers()["expires"].to_str().unwrap()).unwrap();
    let lifetime = expires.duration_since(before).unwrap();
    assert!(
        lifetime > Duration::from_secs(7190) && lifetime <= Duration::from_secs(7201),
        "{lifetime:?}"
    );
    let token = resp.text().await.unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&token)
        .unwrap();
    assert!(raw.len() >= 16, "token {token} is trivial");
    let again = mock.simulator("Refonte01").await.text().await.unwrap();
    assert_ne!(token, again, "each token is new");
    mock.stop().await;
}

#[tokio::test]
async fn the_route_answers_without_its_trailing_slash_and_on_the_plain_http_port() {
    let mock = Mock::start(|_| {}).await;
    let b = body(
        "99900000300015",
        "declarant",
        "declarant",
        "Refonte01",
        "97",
    );
    let resp = mock
        .post_raw("/authentifier/1.0", Some("application/xml"), b.clone())
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = mock
        .client
        .post(format!("{}/authentifier/1.0/", mock.http))
        .header("content-type", "application/xml; charset=UTF-8")
        .body(b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    mock.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_application_xml_gets_415() {
    let mock = Mock::start(|_| {}).await;
    let b = body(
        "99900000300015",
        "declarant",
        "declarant",
        "Refonte01",
        "97",
    );
    for ct in [
        Some("text/xml"),
        Some("text/plain"),
        Some("application/json"),
        None,
    ] {
        let resp = mock.post_raw("/authentifier/1.0/", ct, b.clone()).await;
        assert_refused(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, None).await;
    }
    mock.stop().await;
}

#[tokio::test]
async fn each_form_check_failure_gets_422_with_an_empty_body() {
    let mock = Mock::start(|_| {}).await;
    let ok = body(
        "99900000300015",
        "declarant",
        "declarant",
        "Refonte01",
        "97",
    );
    let bad = [
        ok.replace("<service>97</service>", ""),
        ok.replace("<siret>99900000300015</siret>", ""),
        ok.replace("99900000300015", "999000003000150"),
        ok.replace(
            "<nom>declarant</nom>",
            &format!("<nom>{}</nom>", "n".repeat(65)),
        ),
        ok.replace(
            "<prenom>declarant</prenom>",
            &format!("<prenom>{}</prenom>", "p".repeat(40)),
        ),
        ok.replace("Refonte01", &"m".repeat(31)),
        ok.replace(">97<", ">097<"),
        "siret=99900000300015".to_owned(),
        String::new(),
    ];
    for b in bad {
        let resp = mock
            .post_raw("/authentifier/1.0/", Some("application/xml"), b.clone())
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(resp.text().await.unwrap(), "");
    }
    // At the limits, the checks pass and the credentials are what is refused.
    let at_limits = body(
        "99900000300015",
        &"n".repeat(64),
        &"p".repeat(39),
        &"m".repeat(30),
        "97",
    );
    let resp = mock
        .post_raw("/authentifier/1.0/", Some("application/xml"), at_limits)
        .await;
    assert_refused(resp, StatusCode::UNAUTHORIZED, Some(REALM_WRONG)).await;
    mock.stop().await;
}

#[tokio::test]
async fn the_length_limits_of_the_form_checks_are_settings() {
    let mock = Mock::start(|s| s.form.nom_max = 5).await;
    let resp = mock.simulator("Refonte01").await;
    assert_refused(resp, StatusCode::UNPROCESSABLE_ENTITY, None).await;
    mock.stop().await;
}

#[tokio::test]
async fn wrong_credentials_and_unknown_accounts_get_the_net_entreprises_realm() {
    let mock = Mock::start(|_| {}).await;
    assert_refused(
        mock.simulator("refonte01").await,
        StatusCode::UNAUTHORIZED,
        Some(REALM_WRONG),
    )
    .await;
    let unknown = mock
        .auth(
            "99900000300015",
            "DECLARANT",
            "declarant",
            "Refonte01",
            "97",
        )
        .await;
    assert_refused(unknown, StatusCode::UNAUTHORIZED, Some(REALM_WRONG)).await;
    let spaced = mock
        .auth(
            "99900000300015",
            " declarant",
            "declarant",
            "Refonte01",
            "97",
        )
        .await;
    assert_refused(spaced, StatusCode::UNAUTHORIZED, Some(REALM_WRONG)).await;
    mock.stop().await;
}

#[tokio::test]
async fn an_expired_password_and_a_missing_registration_get_their_own_realms() {
    let mock = Mock::start(|_| {}).await;
    let expired = mock
        .auth(
            "81239045800014",
            "MARTIN",
            "Jean-Pierre",
            "Ch0rale&amp;Amis",
            "25",
        )
        .await;
    assert_refused(expired, StatusCode::UNAUTHORIZED, Some(REALM_EXPIRED)).await;
    let other_service = mock
        .auth(
            "99900000300015",
            "declarant",
            "declarant",
            "Refonte01",
            "25",
        )
        .await;
    assert_refused(
        other_service,
        StatusCode::UNAUTHORIZED,
        Some(REALM_NOT_REGISTERED),
    )
    .await;
    let not_yet = mock
        .auth(
            "50123456100014",
            "LEFÈVRE",
            "Zoé",
            "Tennis&lt;Club&gt;56",
            "97",
        )
        .await;
    assert_refused(
        not_yet,
        StatusCode::UNAUTHORIZED,
        Some(REALM_NOT_REGISTERED),
    )
    .await;
    mock.stop().await;
}

#[tokio::test]
async fn the_simulator_behaviour_for_a_missing_registration_is_a_setting() {
    let mock = Mock::start(|s| s.not_registered = NotRegisteredAnswer::WrongCredentials).await;
    let other_service = mock
        .auth(
            "99900000300015",
            "declarant",
            "declarant",
            "Refonte01",
            "25",
        )
        .await;
    assert_refused(other_service, StatusCode::UNAUTHORIZED, Some(REALM_WRONG)).await;
    mock.stop().await;
}

#[tokio::test]
async fn the_nom_kaboom_gets_500() {
    let mock = Mock::start(|_| {}).await;
    let resp = mock
        .auth("99900000300015", "kaboom", "declarant", "Refonte01", "97")
        .await;
    assert_refused(resp, StatusCode::INTERNAL_SERVER_ERROR, None).await;
    mock.stop().await;
}

#[tokio::test]
async fn an_account_is_locked_after_n_consecutive_failures_until_unlocked() {
    let mock = Mock::start(|s| s.lock_threshold = 3).await;
    for _ in 0..3 {
        assert_refused(
            mock.simulator("wrong").await,
            StatusCode::UNAUTHORIZED,
            Some(REALM_WRONG),
        )
        .await;
    }
    assert_refused(
        mock.simulator("Refonte01").await,
        StatusCode::FORBIDDEN,
        None,
    )
    .await;
    assert_refused(mock.simulator("wrong").await, StatusCode::FORBIDDEN, None).await;
    let (status, state) = mock
        .admin(reqwest::Method::GET, "/__admin/declarants/1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["failed_attempts"], 3);
    assert_eq!(state["locked"], true);

    let (status, state) = mock
        .admin(reqwest::Method::POST, "/__admin/declarants/1/unlock", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (state["failed_attempts"].clone(), state["locked"].clone()),
        (json!(0), json!(false))
    );
    assert_eq!(mock.simulator("Refonte01").await.status(), StatusCode::OK);
    mock.stop().await;
}

#[tokio::test]
async fn the_default_threshold_is_five_and_a_success_resets_the_count() {
    let mock = Mock::start(|_| {}).await;
    for _ in 0..4 {
        assert_eq!(
            mock.simulator("wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(mock.simulator("Refonte01").await.status(), StatusCode::OK);
    for _ in 0..4 {
        assert_eq!(
            mock.simulator("wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let (_, state) = mock
        .admin(reqwest::Method::GET, "/__admin/declarants/1", None)
        .await;
    assert_eq!(
        (state["failed_attempts"].clone(), state["locked"].clone()),
        (json!(4), json!(false))
    );
    assert_eq!(
        mock.simulator("wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mock.simulator("Refonte01").await.status(),
        StatusCode::FORBIDDEN
    );
    mock.stop().await;
}

#[tokio::test]
async fn a_declarant_added_through_the_admin_api_can_log_in_and_its_password_is_never_shown() {
    let mock = Mock::start(|_| {}).await;
    let new = json!({
        "siret": "78214563500010", "nom": "O'HARA & FILS", "prenom": "Éloïse",
        "motdepasse": "<S3cret&\"x'>", "services": [97], "password_expired": false, "registered": true
    });
    let (status, created) = mock
        .admin(
            reqwest::Method::POST,
            "/__admin/declarants",
            Some(new.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_u64().unwrap();

    let (status, state) = mock
        .admin(
            reqwest::Method::GET,
            &format!("/__admin/declarants/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["prenom"], "Éloïse");
    assert_eq!(state["failed_attempts"], 0);
    assert!(!state.to_string().contains("S3cret"), "{state}");
    let (_, all) = mock
        .admin(reqwest::Method::GET, "/__admin/declarants", None)
        .await;
    assert!(!all.to_string().contains("S3cret") && !all.to_string().contains("Refonte01"));

    let resp = mock
        .auth(
            "78214563500010",
            "O&apos;HARA &amp; FILS",
            "Éloïse",
            "&lt;S3cret&amp;&quot;x&apos;&gt;",
            "97",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, dup) = mock
        .admin(reqwest::Method::POST, "/__admin/declarants", Some(new))
        .await;
    assert_eq!(
        (status, dup["id"].as_u64(), dup["error"].as_str()),
        (StatusCode::CONFLICT, Some(id), Some("already_exists"))
    );
    let (status, body) = mock
        .admin(reqwest::Method::GET, "/__admin/declarants/999", None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert!(body["message"].as_str().unwrap().contains("999"), "{body}");
    // A body that is not a declarant, and a fault that does not exist: the same error
    // shape as every control API, and nothing changed.
    let before = mock
        .admin(reqwest::Method::GET, "/__admin/declarants", None)
        .await
        .1;
    for (path, body) in [
        (
            "/__admin/declarants",
            json!({"siret": "1", "inconnu": true}),
        ),
        ("/__admin/faults", json!({"mode": "tempete"})),
    ] {
        let (status, answer) = mock.admin(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_input")),
            "{path}: {answer}"
        );
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .starts_with("Corps JSON invalide"),
            "{answer}"
        );
    }
    let after = mock
        .admin(reqwest::Method::GET, "/__admin/declarants", None)
        .await
        .1;
    assert_eq!(before, after);
    let faults = mock
        .admin(reqwest::Method::GET, "/__admin/faults", None)
        .await
        .1;
    assert_eq!(faults["mode"], "none", "{faults}");
    mock.stop().await;
}

#[tokio::test]
async fn a_declarant_can_be_changed_at_run_time() {
    let mock = Mock::start(|_| {}).await;
    let (status, state) = mock
        .admin(
            reqwest::Method::PATCH,
            "/__admin/declarants/1",
            Some(json!({"password_expired": true})),
        )
        .await;
    assert_eq!(
        (status, state["password_expired"].clone()),
        (StatusCode::OK, json!(true))
    );
    assert_refused(
        mock.simulator("Refonte01").await,
        StatusCode::UNAUTHORIZED,
        Some(REALM_EXPIRED),
    )
    .await;
    mock.admin(
        reqwest::Method::PATCH,
        "/__admin/declarants/1",
        Some(json!({"password_expired": false, "motdepasse": "Nouveau02"})),
    )
    .await;
    assert_eq!(mock.simulator("Nouveau02").await.status(), StatusCode::OK);
    mock.stop().await;
}

#[tokio::test]
async fn the_admin_api_refuses_calls_without_the_bearer_token() {
    let mock = Mock::start(|_| {}).await;
    for (path, token) in [
        ("/__admin/stats", None),
        ("/__admin/declarants/1", Some("wrong")),
    ] {
        let mut req = mock.client.get(format!("{}{path}", mock.admin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    mock.stop().await;
}

#[tokio::test]
async fn stats_count_every_request_that_reached_the_route_refused_ones_included() {
    let mock = Mock::start(|_| {}).await;
    assert_eq!(mock.stats().await["auth_requests"], 0);
    mock.simulator("Refonte01").await;
    mock.simulator("wrong").await;
    mock.post_raw("/authentifier/1.0/", Some("text/plain"), String::new())
        .await;
    mock.post_raw("/authentifier/1.0/", Some("application/xml"), "<x/>".into())
        .await;
    mock.auth("99900000300015", "kaboom", "declarant", "Refonte01", "97")
        .await;
    let stats = mock.stats().await;
    assert_eq!(stats["auth_requests"], 5, "{stats}");
    assert_eq!(stats["tokens_issued"], 1);
    assert_eq!(stats["failed_logins"], 1);
    assert_eq!(
        stats["by_status"],
        json!({"200": 1, "401": 1, "415": 1, "422": 1, "500": 1})
    );
    mock.stop().await;
}

#[tokio::test]
async fn faults_make_the_service_unavailable_or_reset_without_touching_the_accounts() {
    let mock = Mock::start(|_| {}).await;
    let (status, _) = mock
        .admin(
            reqwest::Method::POST,
            "/__admin/faults",
            Some(json!({"mode": "unavailable"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_refused(
        mock.simulator("wrong").await,
        StatusCode::SERVICE_UNAVAILABLE,
        None,
    )
    .await;

    mock.admin(
        reqwest::Method::POST,
        "/__admin/faults",
        Some(json!({"mode": "reset"})),
    )
    .await;
    // A new client: the kept-alive connection of the previous call is not reset.
    let err = client_trusting(&mock.ca_pem)
        .post(format!("{}/authentifier/1.0/", mock.https))
        .header("content-type", "application/xml")
        .body(body(
            "99900000300015",
            "declarant",
            "declarant",
            "wrong",
            "97",
        ))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err}");

    mock.admin(
        reqwest::Method::POST,
        "/__admin/faults",
        Some(json!({"mode": "none"})),
    )
    .await;
    let (_, state) = mock
        .admin(reqwest::Method::GET, "/__admin/declarants/1", None)
        .await;
    assert_eq!(state["failed_attempts"], 0);
    assert_eq!(mock.stats().await["auth_requests"], 0);
    mock.stop().await;
}

#[tokio::test]
async fn fixtures_come_from_the_file_named_in_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixtures.json");
    std::fs::write(
        &path,
        r#"{"declarants": [{"siret": "44187654700015", "nom": "SEUL", "prenom": "Ana", "motdepasse": "pw", "services": [25]}]}"#,
    )
    .unwrap();
    let p = path.clone();
    let mock = Mock::start(move |s| s.fixtures = Some(p)).await;
    assert_eq!(
        mock.auth("44187654700015", "SEUL", "Ana", "pw", "25")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        mock.simulator("Refonte01").await.status(),
        StatusCode::UNAUTHORIZED
    );
    mock.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_test_ca_cannot_connect() {
    let mock = Mock::start(|_| {}).await;
    let stranger = CertificateAuthority::new("another CA").unwrap();
    let err = client_trusting(stranger.cert_pem())
        .post(format!("{}/authentifier/1.0/", mock.https))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    mock.stop().await;
}
