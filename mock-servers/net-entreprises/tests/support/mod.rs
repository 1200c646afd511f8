//! What the business-service tests share: the mock started with a certificate from a test
//! CA made for the occasion, a client that trusts only that CA (verification stays on),
//! tokens from the mock's own authentication, gzip both ways, and DSN files written by
//! `iea-dsn`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use iea_dsn::{Month, SampleSpec, TestOrReal};
use iea_mock_kit::MockListen;
use iea_mock_net_entreprises::clock::TimeZone;
use iea_mock_net_entreprises::fixtures;
use iea_mock_net_entreprises::{App, Control, Settings};
use iea_runtime::pki::{CertificateAuthority, TlsFiles, Validity};
use iea_runtime::shutdown::Shutdown;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use time::OffsetDateTime;

pub const ADMIN_TOKEN: &str = "admin-secret";
pub const REALM_INVALID: &str = "DSNLogin realm=\"Jeton manquant ou invalide\"";
pub const REALM_EXPIRED: &str = "DSNLogin realm=\"Expiration du jeton\"";
pub const REALM_NOT_REGISTERED: &str = "DSNLogin realm=\"Utilisateur non-inscrit au service\"";

/// The simulator's declarant (fixture 1) and DUPONT Marie (fixture 2), from the mock's
/// own [`fixtures`], with the service code each authenticates to here.
pub const SIMULATOR: (&str, &str, &str, &str, &str) = (
    fixtures::SIMULATOR.siret,
    fixtures::SIMULATOR.nom,
    fixtures::SIMULATOR.prenom,
    fixtures::SIMULATOR.password,
    "97",
);
pub const DUPONT: (&str, &str, &str, &str, &str) = (
    fixtures::DUPONT.siret,
    fixtures::DUPONT.nom,
    fixtures::DUPONT.prenom,
    fixtures::DUPONT.password,
    "25",
);

pub struct Mock {
    pub client: reqwest::Client,
    /// The test CA's certificate, for another client.
    pub ca_pem: String,
    pub https: String,
    pub http: String,
    pub admin: String,
    pub time_zone: TimeZone,
    /// The controls in process.
    pub control: Control,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Mock {
    pub async fn start(tweak: impl FnOnce(&mut Settings)) -> Self {
        iea_runtime::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::new("net-entreprises mock test CA").unwrap();
        let leaf = ca
            .issue(
                "localhost",
                &["localhost".into(), "127.0.0.1".into()],
                Validity::default(),
            )
            .unwrap();
        let (cert, key) = (dir.path().join("mock.pem"), dir.path().join("mock.key"));
        leaf.write(&cert, &key).unwrap();
        let mut settings = Settings {
            listen: MockListen {
                tls: TlsFiles {
                    ca: dir.path().join("unused-ca.pem"),
                    cert,
                    key,
                },
                admin_token: ADMIN_TOKEN.into(),
                ..MockListen::default()
            },
            ..Settings::default()
        };
        tweak(&mut settings);
        let time_zone = settings.time_zone;
        let app = App::build(settings).await.unwrap();
        let https = format!("https://127.0.0.1:{}", app.https_addr().port());
        let http = format!("http://{}", app.http_addr());
        let admin = format!("http://{}", app.admin_addr());
        let control = app.control();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(app.run_until(shutdown.clone()));
        Self {
            client: client_trusting(ca.cert_pem()),
            ca_pem: ca.cert_pem().to_owned(),
            https,
            http,
            admin,
            time_zone,
            control,
            shutdown,
            task,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap().unwrap();
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_admin(&self, path: &str) -> Value {
        let (status, body) = self.admin(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    pub async fn set_faults(&self, faults: Value) -> Value {
        let (status, body) = self
            .admin(Method::POST, "/__admin/faults", Some(faults))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn deposits(&self) -> Vec<Value> {
        self.get_admin("/__admin/deposits")
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// A token of `who` from the mock's authentication service.
    pub async fn token(&self, who: (&str, &str, &str, &str, &str)) -> String {
        let (siret, nom, prenom, mdp, service) = who;
        let body = format!(
            "<identifiants><siret>{siret}</siret><nom>{nom}</nom><prenom>{prenom}</prenom><motdepasse>{mdp}</motdepasse><service>{service}</service></identifiants>"
        );
        let resp = self
            .client
            .post(format!("{}/authentifier/1.0/", self.https))
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    /// A deposit as a well-behaved client sends it (gzip, text/plain, accepts gzip).
    pub fn deposit_request(&self, base: &str, token: &str, dsn: &[u8]) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{base}/deposer-dsn/1.0/"))
            .header("content-type", "text/plain")
            .header("content-encoding", "gzip")
            .header("accept-encoding", "gzip")
            .header("authorization", format!("DSNLogin jeton={token}"))
            .header("user-agent", "Client-DSN (iea-connect/0.1; test)")
            .body(gzip(dsn))
    }

    pub async fn deposit(&self, token: &str, dsn: &[u8]) -> reqwest::Response {
        self.deposit_request(&self.https, token, dsn)
            .send()
            .await
            .unwrap()
    }

    /// Deposits `dsn` and answers the AEE's idflux.
    pub async fn deposit_ok(&self, token: &str, dsn: &[u8]) -> String {
        let resp = self.deposit(token, dsn).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let (_, body) = read_body(resp).await;
        text_of(&body, "idflux")
    }

    /// `GET {path}` with the token and `Accept-Encoding: gzip`.
    pub async fn get_business(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.https))
            .header("accept-encoding", "gzip")
            .header("authorization", format!("DSNLogin jeton={token}"))
            .send()
            .await
            .unwrap()
    }

    /// `at` in the mock's zone, `AAAAMMJJHHMMSS`.
    pub fn compact(&self, at: OffsetDateTime) -> String {
        self.time_zone.format_compact(at)
    }
}

/// A client that trusts only `ca_pem`.
pub fn client_trusting(ca_pem: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// Headers and body of an answer, decompressed when it says `Content-Encoding: gzip`.
pub async fn read_body(resp: reqwest::Response) -> (HeaderMap, String) {
    let headers = resp.headers().clone();
    let raw = resp.bytes().await.unwrap();
    let bytes = match headers.get("content-encoding").map(|v| v.to_str().unwrap()) {
        Some("gzip") => gunzip(&raw),
        Some(other) => panic!("unexpected content encoding {other}"),
        None => raw.to_vec(),
    };
    (headers, String::from_utf8(bytes).unwrap())
}

/// The text of the first element named `name` (any namespace) of an XML document.
pub fn text_of(xml: &str, name: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        .text()
        .unwrap_or_default()
        .to_owned()
}

/// A valid DSN for `siret`, month 2026-11, test or real.
pub fn dsn(siret: &str, employees: usize, real: bool) -> Vec<u8> {
    let mut spec = SampleSpec::new(siret, Month::new(2026, 11).unwrap(), employees);
    if real {
        spec.test_or_real = TestOrReal::Real;
    }
    iea_dsn::sample(&spec)
}

/// The `Expires` of an answer, checked to be about `secs` from now.
/// `Expires` is `secs` after the answer's `Date`, both on the mock's clock (so this holds
/// after the clock was moved), and the clock is where `Date` says.
pub fn assert_expires_in(headers: &HeaderMap, secs: u64) {
    let expires = httpdate::parse_http_date(headers["expires"].to_str().unwrap()).unwrap();
    let date = httpdate::parse_http_date(headers["date"].to_str().unwrap()).unwrap();
    let ahead = expires.duration_since(date).unwrap_or_default().as_secs();
    assert!(
        ahead + 1 >= secs && ahead <= secs,
        "Expires {ahead} s after Date, expected {secs}"
    );
}

pub fn www_authenticate(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
}
