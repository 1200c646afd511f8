//! The probe names the step that failed, against real listeners on loopback.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use iea_mock_kit::{FaultMode, FaultSettings, Faults, MockListen, MockServer};
use iea_net::{ConnectionMode, NetworkSettings, Step, TlsProblem, probe};
use iea_runtime::pki::{CertificateAuthority, Validity};
use iea_runtime::shutdown::Shutdown;

const UA: &str = "iea-connect-test";

struct Server {
    _dir: tempfile::TempDir,
    https: String,
    http: String,
    ca_pem: String,
    faults: Faults,
    _stop: StopOnDrop,
}

struct StopOnDrop(Shutdown);
impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

/// A server whose certificate has `names` and `validity`, from a fresh CA.
async fn server(names: &[&str], validity: Validity) -> Server {
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::new("probe test CA").unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let leaf = ca.issue("probe test server", &names, validity).unwrap();
    let (cert, key) = (dir.path().join("s.pem"), dir.path().join("s.key"));
    leaf.write(&cert, &key).unwrap();
    let listen = MockListen {
        tls: iea_runtime::pki::TlsFiles {
            ca: Default::default(),
            cert,
            key,
        },
        admin_token: "t".into(),
        ..Default::default()
    };
    let router = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/down", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let faults = Faults::default();
    let server = MockServer::bind("probe-test", &listen, router, Router::new(), faults.clone())
        .await
        .unwrap();
    let https = format!("https://{}/", server.https_addr());
    let http = format!("http://{}/", server.http_addr());
    let stop = Shutdown::new();
    tokio::spawn(server.run_until(stop.clone()));
    Server {
        _dir: dir,
        https,
        http,
        ca_pem: ca.cert_pem().to_owned(),
        faults,
        _stop: StopOnDrop(stop),
    }
}

fn settings(address: &str, ca: Option<&str>) -> NetworkSettings {
    let mut s = NetworkSettings::direct(ConnectionMode::Normal, address).unwrap();
    s.extra_ca_pem = ca.map(str::to_owned);
    s
}

#[tokio::test]
async fn a_server_with_a_trusted_certificate_is_reachable() {
    let srv = server(&["localhost", "127.0.0.1"], Validity::default()).await;
    let d = probe(&settings(&srv.https, Some(&srv.ca_pem)), UA).await;
    assert_eq!(d.step, Step::Ok, "{d:?}");
    assert!(d.reachable());
    assert_eq!(d.http_status, Some(200));
}

#[tokio::test]
async fn a_certificate_from_an_unknown_authority_is_a_tls_failure() {
    let srv = server(&["localhost", "127.0.0.1"], Validity::default()).await;
    let d = probe(&settings(&srv.https, None), UA).await;
    assert_eq!(d.step, Step::Tls, "{d:?}");
    assert_eq!(d.tls_problem, Some(TlsProblem::UnknownAuthority), "{d:?}");
    assert!(d.message.contains("autorité reconnue"), "{}", d.message);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_tls_failure() {
    let srv = server(&["autre-serveur.example"], Validity::default()).await;
    let d = probe(&settings(&srv.https, Some(&srv.ca_pem)), UA).await;
    assert_eq!(d.tls_problem, Some(TlsProblem::WrongName), "{d:?}");
    assert!(d.message.contains("ne correspond pas"), "{}", d.message);
}

#[tokio::test]
async fn an_expired_certificate_is_a_tls_failure() {
    let srv = server(&["localhost", "127.0.0.1"], Validity::expired()).await;
    let d = probe(&settings(&srv.https, Some(&srv.ca_pem)), UA).await;
    assert_eq!(d.tls_problem, Some(TlsProblem::Expired), "{d:?}");
    assert!(d.message.contains("expiré"), "{}", d.message);
}

#[tokio::test]
async fn a_refused_port_is_a_connect_failure() {
    // Bind then drop: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = probe(&settings(&format!("https://127.0.0.1:{port}/"), None), UA).await;
    assert_eq!(d.step, Step::Connect, "{d:?}");
    assert!(d.message.contains("refuse la connexion"), "{}", d.message);
}

#[tokio::test]
async fn an_unresolvable_name_is_a_name_resolution_failure() {
    // `.invalid` is reserved (RFC 6761): it never resolves, and nothing leaves the machine.
    let d = probe(&settings("https://serveur-introuvable.invalid/", None), UA).await;
    assert_eq!(d.step, Step::NameResolution, "{d:?}");
    assert!(d.message.contains("introuvable"), "{}", d.message);
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_bound() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut s = settings(&format!("http://{addr}/"), None);
    s.request_timeout = Some(Duration::from_millis(800));
    let started = std::time::Instant::now();
    let d = probe(&s, UA).await;
    assert_eq!(d.step, Step::Timeout, "{d:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_503_is_an_http_failure_with_its_status() {
    let srv = server(&["localhost", "127.0.0.1"], Validity::default()).await;
    srv.faults.set(FaultSettings {
        mode: FaultMode::Unavailable,
        ..Default::default()
    });
    let d = probe(&settings(&srv.https, Some(&srv.ca_pem)), UA).await;
    assert_eq!(d.step, Step::Http, "{d:?}");
    assert_eq!(d.http_status, Some(503));
    assert!(d.message.contains("503"), "{}", d.message);
}

#[tokio::test]
async fn plain_http_answers_in_normal_mode_and_is_refused_in_secure_mode() {
    let srv = server(&["localhost", "127.0.0.1"], Validity::default()).await;
    assert_eq!(probe(&settings(&srv.http, None), UA).await.step, Step::Ok);
    let err = NetworkSettings::direct(ConnectionMode::Secure, &srv.http).unwrap_err();
    assert_eq!(err.field, "address");
}

#[tokio::test]
async fn a_reset_connection_is_a_connect_failure_not_a_success() {
    let srv = server(&["localhost", "127.0.0.1"], Validity::default()).await;
    srv.faults.set(FaultSettings {
        mode: FaultMode::Reset,
        ..Default::default()
    });
    let d = probe(&settings(&srv.http, None), UA).await;
    assert!(!d.reachable(), "{d:?}");
}
