//! The mock driven over real HTTPS, its certificate from a test CA that the client trusts
//! (verification stays on), and its admin API over plain HTTP with the bearer token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use iea_mock_auth::{App, Settings, daily_password};
use iea_runtime::pki::{CertificateAuthority, TlsFiles, Validity};
use iea_runtime::shutdown::Shutdown;
use reqwest::StatusCode;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

const TOKEN: &str = "test-admin-token";

struct Mock {
    https: String,
    http: String,
    admin: String,
    client: reqwest::Client,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn demo_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.json")
}

async fn start(fixtures: Option<PathBuf>) -> Mock {
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::new("mock-auth test CA").expect("CA");
    let leaf = ca
        .issue(
            "localhost",
            &["localhost".into(), "127.0.0.1".into()],
            Validity::default(),
        )
        .expect("leaf");
    let cert = dir.path().join("mock.pem");
    let key = dir.path().join("mock.key");
    leaf.write(&cert, &key).expect("write leaf");
    let mut settings = Settings {
        fixtures,
        ..Settings::default()
    };
    settings.listen.tls = TlsFiles {
        ca: PathBuf::new(),
        cert,
        key,
    };
    settings.listen.admin_token = TOKEN.into();
    let app = App::build(settings).await.expect("mock binds");
    let https = format!("https://localhost:{}", app.https_addr().port());
    let http = format!("http://127.0.0.1:{}", app.http_addr().port());
    let admin = format!("http://127.0.0.1:{}", app.admin_addr().port());
    let shutdown = Shutdown::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    Mock {
        https,
        http,
        admin,
        client: client_trusting(ca.cert_pem()),
        shutdown,
        _dir: dir,
    }
}

fn client_trusting(ca_pem: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("CA added");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

impl Mock {
    async fn authenticate_at(&self, base: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{base}/api/v1/authenticate"))
            .json(&body)
            .send()
            .await
            .expect("answer");
        let status = resp.status();
        (status, resp.json().await.expect("JSON answer"))
    }

    async fn authenticate(&self, id: &str, key: &str, version: &str) -> (StatusCode, Value) {
        let body = json!({
            "installation_id": id,
            "licence_key": key,
            "software_version": version,
            "workstation": "POSTE-COMPTA",
        });
        self.authenticate_at(&self.https, body).await
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin answer");
        let status = resp.status();
        let text = resp.text().await.expect("admin body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn auth_requests(&self) -> u64 {
        let (status, stats) = self
            .admin(reqwest::Method::GET, "/__admin/stats", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        stats["auth_requests"].as_u64().expect("auth_requests")
    }
}

#[tokio::test]
async fn an_active_installation_is_authorized_with_its_holder_and_dates() {
    let mock = start(Some(demo_fixtures())).await;
    let (status, body) = mock
        .authenticate("IEA-DEMO-0001", "DEMO-ACTIVE-2026", "3.00.72")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "authorized");
    assert_eq!(body["licence_holder"], "Association sportive des Tilleuls");
    assert_eq!(body["valid_until"], "2027-12-31T23:59:59+01:00");
    assert!(
        body["server_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{body}"
    );
}

#[tokio::test]
async fn a_refused_installation_is_told_autorisation_refusee() {
    let mock = start(Some(demo_fixtures())).await;
    let (status, body) = mock
        .authenticate("IEA-DEMO-0003", "DEMO-REFUSED-2026", "3.00.72")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"result": "refused", "message": "Autorisation refusée"})
    );
}

#[tokio::test]
async fn a_withdrawn_licence_is_told_consultation_remains_possible() {
    let mock = start(Some(demo_fixtures())).await;
    let (status, body) = mock
        .authenticate("IEA-DEMO-0002", "DEMO-WITHDRAWN-2026", "3.00.72")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["result"], "licence_withdrawn");
    assert_eq!(body["unknown"], false);
    assert_eq!(
        body["message"],
        "La licence vous a été retirée, mais vous pouvez utiliser Impact Emploi pour de la consultation"
    );
}

#[tokio::test]
async fn an_unknown_installation_or_a_wrong_licence_key_is_not_recognised() {
    let mock = start(Some(demo_fixtures())).await;
    for (id, key) in [("IEA-INCONNUE", "X"), ("IEA-DEMO-0001", "DEMO-ACTIVE-2025")] {
        let (status, body) = mock.authenticate(id, key, "3.00.72").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            json!({"result": "licence_withdrawn", "unknown": true, "message": "Licence d'installation non reconnue"})
        );
    }
}

#[tokio::test]
async fn a_version_below_the_minimum_requires_an_update_compared_part_by_part() {
    let mock = start(Some(demo_fixtures())).await;
    let (status, body) = mock
        .authenticate("IEA-DEMO-0001", "DEMO-ACTIVE-2026", "3.00.69")
        .await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(body["result"], "update_required");
    assert_eq!(body["minimum_version"], "3.00.70");

    let (status, _) = mock
        .admin(
            reqwest::Method::PUT,
            "/__admin/minimum-version",
            Some(json!({"minimum_version": "3.00.72"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = mock
        .authenticate("IEA-DEMO-0001", "DEMO-ACTIVE-2026", "3.00.70")
        .await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(body["minimum_version"], "3.00.72");
    // 3.02.004 > 3.00.72: parts compare as numbers, not as text.
    let (status, _) = mock
        .authenticate("IEA-DEMO-0001", "DEMO-ACTIVE-2026", "3.02.004")
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = mock
        .admin(
            reqwest::Method::PUT,
            "/__admin/minimum-version",
            Some(json!({"minimum_version": "trois"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_input");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("« trois » n'est pas un numéro de version")),
        "{body}"
    );
    // A refused minimum changes nothing.
    let (_, body) = mock
        .admin(reqwest::Method::GET, "/__admin/minimum-version", None)
        .await;
    assert_eq!(body["minimum_version"], "3.00.72");

    // The request's version follows the same grammar (iea-version): the minor part has
    // two digits.
    let (status, body) = mock
        .authenticate("IEA-DEMO-0001", "DEMO-ACTIVE-2026", "3.0.72")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["result"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("deuxième nombre")),
        "{body}"
    );
}

#[tokio::test]
async fn admin_changes_take_effect_at_the_next_authentication() {
    let mock = start(None).await;
    let (status, _) = mock.authenticate("IEA-NEW", "CLE-NEUVE", "3.00.72").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let new = json!({
        "installation_id": "IEA-NEW",
        "licence_key": "CLE-NEUVE",
        "status": "active",
        "licence_holder": "Amicale laïque",
        "secret": "c2VjcmV0LWRlLXRlc3QtMDEyMzQ1Njc4OQ==",
    });
    let (status, view) = mock
        .admin(
            reqwest::Method::POST,
            "/__admin/installations",
            Some(new.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    let (status, _) = mock
        .admin(reqwest::Method::POST, "/__admin/installations", Some(new))
        .await;
    assert_eq!(status, StatusCode::OK, "registering again replaces");

    let (status, body) = mock.authenticate("IEA-NEW", "CLE-NEUVE", "3.00.72").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["licence_holder"], "Amicale laïque");

    for (patch, expected) in [
        (json!({"status": "withdrawn"}), "licence_withdrawn"),
        (json!({"status": "refused"}), "refused"),
        (json!({"status": "active"}), "authorized"),
    ] {
        let (status, _) = mock
            .admin(
                reqwest::Method::PATCH,
                "/__admin/installations/IEA-NEW",
                Some(patch),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = mock.authenticate("IEA-NEW", "CLE-NEUVE", "3.00.72").await;
        assert_eq!(body["result"], expected);
    }

    let (status, view) = mock
        .admin(reqwest::Method::GET, "/__admin/installations/IEA-NEW", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "active");
    assert_eq!(view["has_secret"], true);
    let text = view.to_string();
    assert!(
        !text.contains("CLE-NEUVE") && !text.contains("c2VjcmV0"),
        "{text}"
    );

    let (status, _) = mock
        .admin(
            reqwest::Method::PATCH,
            "/__admin/installations/IEA-ABSENTE",
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = mock
        .admin(
            reqwest::Method::PATCH,
            "/__admin/installations/IEA-NEW",
            Some(json!({"statut": "active"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a misspelt field is refused, not ignored"
    );
}

#[tokio::test]
async fn stats_count_every_request_that_reaches_the_authenticate_route() {
    let mock = start(Some(demo_fixtures())).await;
    assert_eq!(mock.auth_requests().await, 0);
    mock.authenticate("IEA-DEMO-0001", "DEMO-ACTIVE-2026", "3.00.72")
        .await;
    mock.authenticate("IEA-DEMO-0003", "DEMO-REFUSED-2026", "3.00.72")
        .await;
    let (status, body) = mock
        .authenticate_at(&mock.https, json!({"installation_id": 7}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["result"], "bad_request");
    // The plain HTTP port serves the same protocol, and counts too.
    let (status, _) = mock
        .authenticate_at(
            &mock.http,
            json!({"installation_id": "IEA-DEMO-0001", "licence_key": "DEMO-ACTIVE-2026", "software_version": "3.00.72"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, stats) = mock
        .admin(reqwest::Method::GET, "/__admin/stats", None)
        .await;
    assert_eq!(stats["auth_requests"], 4);
    assert_eq!(stats["by_result"]["authorized"], 2);
    assert_eq!(stats["by_result"]["refused"], 1);
    assert_eq!(stats["by_result"]["bad_request"], 1);
}

#[tokio::test]
async fn the_daily_password_is_the_same_all_day_and_differs_by_day_and_installation() {
    let mock = start(Some(demo_fixtures())).await;
    let get = |id: &'static str, date: &'static str| {
        let mock = &mock;
        async move {
            mock.admin(
                reqwest::Method::GET,
                &format!("/__admin/installations/{id}/daily-password?date={date}"),
                None,
            )
            .await
        }
    };
    let (status, a) = get("IEA-DEMO-0001", "2026-03-14").await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let code = a["daily_password"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 10);
    assert_eq!(a["date"], "2026-03-14");
    assert_eq!(
        get("IEA-DEMO-0001", "2026-03-14").await.1["daily_password"],
        code.as_str()
    );
    assert_ne!(
        get("IEA-DEMO-0001", "2026-03-15").await.1["daily_password"],
        code.as_str()
    );
    assert_ne!(
        get("IEA-DEMO-0002", "2026-03-14").await.1["daily_password"],
        code.as_str()
    );
    // The orchestrator computes the same value from the secret it registered.
    assert_eq!(
        code,
        daily_password(
            b"demo-secret-IEA-DEMO-0001-not-for-production",
            "IEA-DEMO-0001",
            "2026-03-14"
        )
    );
    // Without a date: today in Europe/Paris.
    let (status, today) = mock
        .admin(
            reqwest::Method::GET,
            "/__admin/installations/IEA-DEMO-0001/daily-password",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(today["date"], iea_mock_auth::paris_today());

    assert_eq!(
        get("IEA-DEMO-0001", "14-03-2026").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get("IEA-ABSENTE", "2026-03-14").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = mock
        .admin(
            reqwest::Method::POST,
            "/__admin/installations",
            Some(json!({"installation_id": "SANS-SECRET", "licence_key": "K"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        get("SANS-SECRET", "2026-03-14").await.0,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn the_admin_api_refuses_a_call_without_the_bearer_token() {
    let mock = start(Some(demo_fixtures())).await;
    let path = "/__admin/installations/IEA-DEMO-0001/daily-password?date=2026-03-14";
    let resp = mock
        .client
        .get(format!("{}{path}", mock.admin))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = mock
        .client
        .get(format!("{}{path}", mock.admin))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = mock
        .client
        .post(format!("{}/__admin/faults", mock.admin))
        .json(&json!({"mode": "unavailable"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Nothing changed: the service still answers.
    let (status, _) = mock
        .authenticate("IEA-DEMO-0001", "DEMO-ACTIVE-2026", "3.00.72")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_unavailable_fault_answers_503_without_reaching_the_route() {
    let mock = start(Some(demo_fixtures())).await;
    let (status, _) = mock
        .admin(
            reqwest::Method::POST,
            "/__admin/faults",
            Some(json!({"mode": "unavailable"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = mock
        .client
        .post(format!("{}/api/v1/authenticate", mock.https))
        .json(&json!({}))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(mock.auth_requests().await, 0);
}
