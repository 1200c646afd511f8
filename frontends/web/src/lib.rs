//! The web console and JSON API of iea-connect: a front-end of the orchestrator, like the
//! `iea` command, for browsers and for any program that speaks JSON over HTTP.
//!
//! It holds no state of the installation: every page and every API call becomes a gRPC
//! call to the orchestrator over TLS, with the orchestrator session token of the browser
//! session that made it. The only thing it keeps is that mapping, in memory (a restart
//! signs everyone out), and, while a DSN file is uploaded, that file in a private
//! temporary file ([`spool`]). Status changes reach browsers as server-sent events from
//! one shared watch of the orchestrator's status.
//!
//! Layout:
//! - [`orchestrator`]: the gRPC channel, authenticated requests, errors mapped to HTTP.
//! - [`sessions`]: browser sessions, cookies, CSRF tokens, the middleware that requires
//!   them and the security headers.
//! - [`status`]: the status as JSON and the shared watch behind server-sent events.
//! - [`views`]: the French pages, server-rendered with maud, working as plain forms.
//! - [`api`]: the JSON API under `/api/v1/` and its OpenAPI document.
//! - [`jobs`]: long operations (an update, « tout vérifier ») followed by a task, their
//!   progress read by pages and streamed as server-sent events.
//! - [`tls`]: HTTPS, as an option (the session cookie is then `Secure`).
//! - [`spool`]: a DSN file being uploaded, in a private temporary file until its size is
//!   known, then sent to the orchestrator in chunks.
//! - `static/`: the stylesheet, the icons and the small script for live updates, compiled
//!   into the binary and served from `/static/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub mod api;
mod assets;
pub mod jobs;
pub mod orchestrator;
pub mod sessions;
pub mod spool;
pub mod status;
pub mod tls;
pub mod views;

/// Component name: settings prefix `IEA_WEB__`, log field.
pub const COMPONENT: &str = "web";

/// Settings of the web console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where browsers reach the console: loopback unless told otherwise.
    pub listen: SocketAddr,
    /// The orchestrator's front-end API, `host:port`.
    pub orchestrator: String,
    /// CA that the orchestrator's certificate comes from.
    pub ca: PathBuf,
    /// Name to check in the orchestrator's certificate.
    pub orchestrator_server_name: String,
    /// Set when browsers reach the console over HTTPS (behind a TLS terminator): the
    /// session cookie then carries `Secure`.
    pub secure_cookies: bool,
    /// Serve HTTPS with this certificate and key (e.g. issued by the internal CA); the
    /// session cookie then carries `Secure`.
    pub tls: Option<iea_runtime::pki::TlsFiles>,
    /// Where DSN files wait while they are uploaded, as unnamed 0600 files: a folder made
    /// the console's own (created if missing, mode 0700), e.g. in the data directory;
    /// default: the system's temporary folder (`TMPDIR`, else `/tmp`).
    pub upload_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50080)),
            orchestrator: "127.0.0.1:50051".to_owned(),
            ca: PathBuf::from("certs/ca.pem"),
            orchestrator_server_name: "orchestrator".to_owned(),
            secure_cookies: false,
            tls: None,
            upload_dir: None,
        }
    }
}

/// What every handler shares.
pub struct Shared {
    pub orchestrator: orchestrator::Orchestrator,
    pub sessions: sessions::SessionStore,
    pub status: status::StatusWatch,
    pub secure_cookies: bool,
    /// The update being applied, or the last one (one per installation).
    pub updates: jobs::JobBoard<views::updates::UpdateJobView>,
    /// « Tout vérifier », per account that started it.
    pub verify_all: jobs::JobBoard<views::accounts::VerifyAllView>,
    /// Fires when the console stops: live streams end on it so that draining never waits
    /// on a browser that would stay forever.
    pub shutdown: Shutdown,
    /// Where DSN files wait while they are uploaded.
    pub uploads: spool::SpoolDir,
}

pub type AppState = Arc<Shared>;

/// A bound, not yet running, web console.
pub struct App {
    listener: TcpListener,
    router: Router,
    shared: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl App {
    /// Binds the listener (port 0 works), makes the upload folder its own
    /// ([`Settings::upload_dir`]) and prepares the orchestrator channel, which connects on
    /// first use.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        iea_runtime::install_crypto_provider();
        let uploads = match &settings.upload_dir {
            Some(dir) => spool::SpoolDir::own(dir)
                .with_context(|| format!("upload folder {}", dir.display()))?,
            None => spool::SpoolDir::system(),
        };
        let orchestrator = orchestrator::Orchestrator::new(&settings)?;
        let tls = settings.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let shared = Arc::new(Shared {
            status: status::StatusWatch::new(),
            orchestrator,
            sessions: sessions::SessionStore::default(),
            secure_cookies: settings.secure_cookies || tls.is_some(),
            updates: Default::default(),
            verify_all: Default::default(),
            shutdown: Shutdown::new(),
            uploads,
        });
        let router = router(shared.clone());
        Ok(Self {
            listener,
            router,
            shared,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The folder where DSN files wait while they are uploaded (each file in it unnamed,
    /// mode 0600).
    pub fn upload_dir(&self) -> &Path {
        self.shared.uploads.path()
    }

    /// Serves until `shutdown` fires, then drains open requests (live streams end at
    /// once).
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let addr = self.local_addr();
        tracing::info!(component = COMPONENT, %addr, "web console listening");
        let watch = tokio::spawn(status::follow(self.shared.clone()));
        let own = self.shared.shutdown.clone();
        let result = match self.tls {
            Some(acceptor) => {
                // Live streams end with the console's own token, fired with `shutdown`.
                let forward = {
                    let own = own.clone();
                    let stop = shutdown.clone();
                    tokio::spawn(async move {
                        stop.wait().await;
                        own.trigger();
                    })
                };
                let r = tls::serve(self.listener, acceptor, self.router, own.clone()).await;
                forward.abort();
                r
            }
            None => {
                let stop = shutdown.wait();
                // `into_make_service`: each connection shares the router built once
                // (serving the `Router` itself would rebuild every route per connection,
                // ~40 KiB that a long-lived event stream would keep).
                axum::serve(self.listener, self.router.into_make_service())
                    .with_graceful_shutdown(async move {
                        stop.await;
                        own.trigger();
                    })
                    .await
                    .context("serving the web console")
            }
        };
        self.shared.shutdown.trigger();
        let _ = watch.await;
        tracing::info!(component = COMPONENT, "web console stopped");
        result
    }
}

/// Every route: the pages, the API, the static files; the security headers on all.
pub fn router(state: AppState) -> Router {
    let protected = views::routes()
        .merge(api::routes())
        .fallback(views::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sessions::require_session,
        ));
    Router::new()
        .merge(views::public_routes())
        .merge(api::public_routes())
        .merge(assets::routes())
        .merge(protected)
        .layer(axum::middleware::from_fn(sessions::security_headers))
        .with_state(state)
}
