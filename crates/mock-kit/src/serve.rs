//! Listening and serving: bind first (port 0 works), then run until shutdown, draining
//! open connections gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use iea_runtime::pki::TlsFiles;
use iea_runtime::shutdown::Shutdown;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::faults::{FaultMode, Faults};

/// Where a mock listens, and with what.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MockListen {
    /// The service over TLS: the real server's default port.
    pub https_listen: SocketAddr,
    /// The service over TLS on a second port, which stays open when the default port is
    /// closed (`close_default_port`): the "fallback port" of the seeds' repair.
    pub fallback_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Certificate and key of the HTTPS port (the `ca` field is not used by the server).
    pub tls: TlsFiles,
    /// Bearer token of the admin API. Empty refuses every admin call.
    pub admin_token: String,
}

impl std::fmt::Debug for MockListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockListen")
            .field("https_listen", &self.https_listen)
            .field("fallback_listen", &self.fallback_listen)
            .field("http_listen", &self.http_listen)
            .field("admin_listen", &self.admin_listen)
            .field("tls", &self.tls)
            .field("admin_token", &"<redacted>")
            .finish()
    }
}

impl Default for MockListen {
    fn default() -> Self {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        Self {
            https_listen: any,
            fallback_listen: any,
            http_listen: any,
            admin_listen: any,
            tls: TlsFiles::default(),
            admin_token: String::new(),
        }
    }
}

pub struct MockServer {
    name: &'static str,
    https: TcpListener,
    fallback: TcpListener,
    http: TcpListener,
    admin: TcpListener,
    acceptor: TlsAcceptor,
    service: Router,
    admin_router: Router,
    faults: Faults,
}

impl MockServer {
    /// Binds the three listeners. `service` is the simulated server; `admin` holds the
    /// mock's `/__admin/` routes (the bearer check and `/__admin/faults` are added here).
    pub async fn bind(
        name: &'static str,
        listen: &MockListen,
        service: Router,
        admin: Router,
        faults: Faults,
    ) -> anyhow::Result<Self> {
        let admin = admin.merge(faults.admin_routes());
        Self::bind_own_faults_api(name, listen, service, admin, faults).await
    }

    /// As [`MockServer::bind`], for a mock whose faults go beyond the kit's: `admin`
    /// serves `GET|POST /__admin/faults` itself (a superset of [`FaultSettings`], kept in
    /// `faults` for the kit's part); only the bearer check is added here.
    ///
    /// [`FaultSettings`]: crate::FaultSettings
    pub async fn bind_own_faults_api(
        name: &'static str,
        listen: &MockListen,
        service: Router,
        admin: Router,
        faults: Faults,
    ) -> anyhow::Result<Self> {
        let acceptor =
            tls_acceptor(&listen.tls).with_context(|| format!("{name}: TLS material"))?;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("{name}: binding {addr}"))
        };
        let service = service
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .layer(middleware::from_fn_with_state(
                faults.clone(),
                Faults::layer,
            ));
        let token: Arc<str> = listen.admin_token.clone().into();
        let admin_router = admin
            .layer(middleware::from_fn_with_state(token, require_bearer))
            .route("/healthz", axum::routing::get(|| async { "ok" }));
        Ok(Self {
            name,
            https: bind(listen.https_listen).await?,
            fallback: bind(listen.fallback_listen).await?,
            http: bind(listen.http_listen).await?,
            admin: bind(listen.admin_listen).await?,
            acceptor,
            service,
            admin_router,
            faults,
        })
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.https.local_addr().expect("bound listener")
    }

    pub fn fallback_addr(&self) -> SocketAddr {
        self.fallback.local_addr().expect("bound listener")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().expect("bound listener")
    }

    /// Serves until `shutdown` fires, then lets open connections finish their request.
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let name = self.name;
        tracing::info!(
            mock = name,
            https = %self.https_addr(),
            fallback = %self.fallback_addr(),
            http = %self.http_addr(),
            admin = %self.admin_addr(),
            "ready"
        );
        // Connection tasks hold a `Watcher` each, never the `GracefulShutdown` itself, so
        // that a kept-alive connection cannot stop the shutdown from being started.
        let graceful = GracefulShutdown::new();
        let https = accept_loop(
            self.https,
            Port::Default(self.acceptor.clone()),
            self.service.clone(),
            Some(self.faults.clone()),
            &graceful,
            shutdown.clone(),
        );
        let fallback = accept_loop(
            self.fallback,
            Port::Fallback(self.acceptor),
            self.service.clone(),
            Some(self.faults.clone()),
            &graceful,
            shutdown.clone(),
        );
        let http = accept_loop(
            self.http,
            Port::Plain,
            self.service,
            Some(self.faults),
            &graceful,
            shutdown.clone(),
        );
        let admin = accept_loop(
            self.admin,
            Port::Plain,
            self.admin_router,
            None,
            &graceful,
            shutdown,
        );
        tokio::join!(https, fallback, http, admin);
        graceful.shutdown().await;
        tracing::info!(mock = name, "stopped");
        Ok(())
    }
}

/// A marker a service answer may carry in its extensions ([`CutConnection::response`]):
/// the answer is never sent, the connection is cut instead (HTTP/1.1: closed without a
/// byte of answer; HTTP/2: the stream is reset). For faults such as "the answer is lost".
#[derive(Debug, Clone, Copy)]
pub struct CutConnection;

impl CutConnection {
    /// An answer that cuts the connection instead of being sent.
    pub fn response() -> Response {
        let mut response = Response::new(axum::body::Body::empty());
        response.extensions_mut().insert(CutConnection);
        response
    }
}

/// The error that makes hyper drop a connection whose answer carries [`CutConnection`].
#[derive(Debug)]
struct ConnectionCut;

impl std::fmt::Display for ConnectionCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection cut on purpose (fault)")
    }
}

impl std::error::Error for ConnectionCut {}

/// What a listener serves.
enum Port {
    /// TLS on the default port, which `close_default_port` closes.
    Default(TlsAcceptor),
    /// TLS on the fallback port.
    Fallback(TlsAcceptor),
    Plain,
}

async fn accept_loop(
    listener: TcpListener,
    port: Port,
    router: Router,
    faults: Option<Faults>,
    graceful: &GracefulShutdown,
    shutdown: Shutdown,
) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        if let Some(f) = &faults {
            let f = f.get();
            if f.mode == FaultMode::Reset
                || (f.close_default_port && matches!(port, Port::Default(_)))
            {
                reset(stream);
                continue;
            }
        }
        // Small requests and answers: without it, Nagle's algorithm delays an answer
        // until the previous one is acknowledged.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let tls = match &port {
            Port::Default(a) | Port::Fallback(a) => Some(a.clone()),
            Port::Plain => None,
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let router = router.clone();
                async move {
                    let response = router.oneshot(req).await.unwrap_or_else(|e| match e {});
                    if response.extensions().get::<CutConnection>().is_some() {
                        Err(ConnectionCut)
                    } else {
                        Ok(response)
                    }
                }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Closes with a TCP reset (linger 0) rather than an orderly FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading {}", files.cert.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Refuses a request without `Authorization: Bearer <token>` (401, empty body).
pub async fn require_bearer(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if !token.is_empty() && constant_time_eq(p.as_bytes(), token.as_bytes()) => {
            next.run(req).await
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
