//! Mock of the Impact emploi update server.
//!
//! It serves a signed repository in The Update Framework's layout (TUF 1.0, consistent
//! snapshots), built with the `tough` crate's editor from release fixtures (3.00.70 and
//! 3.00.72, with the seeds' "Lisez-moi" as release notes, a package archive and
//! maintenance scripts), with `Range` support on targets. Its admin API publishes
//! releases, rotates keys, changes expiry, and switches an attack mode for each
//! adversarial case of `shared/update-security.md`. Protocol and control API: README.
//!
//! Layout:
//! - [`keys`]: ed25519 signing keys (generated, or kept in the repository directory);
//! - [`release`]: releases, package archives, script documents, the seeds' notes;
//! - [`fixtures`]: the versions of the releases the repository starts with, for the
//!   clients' tests;
//! - [`repo`]: the signed repository and what each path serves;
//! - [`attack`]: the attack modes and the overlays they serve;
//! - [`service`]: the HTTP side (`/metadata/…`, `/targets/…`, `Range`, counters);
//! - [`admin`]: the `/__admin/` control API.

pub mod admin;
pub mod attack;
pub mod fixtures;
pub mod keys;
pub mod release;
pub mod repo;
pub mod service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use iea_mock_kit::{Faults, MockListen, MockServer};
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};

pub use attack::Attack;
pub use release::{ReleaseSpec, ScriptSpec, StartCheck};
pub use repo::Expiry;
pub use service::Transfer;

/// Component name: logs, and `IEA_MOCK_UPDATES__*` settings overrides.
pub const COMPONENT: &str = "mock-updates";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub listen: MockListen,
    /// Keeps the signing keys (`keys/<role>.pk8`, mode 0600) and the root chain
    /// (`metadata/N.root.json`) across restarts. Without it, every start makes new keys,
    /// and clients must be given the new root.
    pub repository_dir: Option<PathBuf>,
    /// Where the latest root metadata is written at start and after each root change: the
    /// file update clients are configured to trust (`trusted_root`).
    pub root_file: Option<PathBuf>,
    /// Publish the fixture releases 3.00.70 and 3.00.72 at start.
    pub fixtures: bool,
    pub expiry: Expiry,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: MockListen::default(),
            repository_dir: None,
            root_file: None,
            fixtures: true,
            expiry: Expiry::default(),
        }
    }
}

/// The mock, bound and ready to run.
pub struct App {
    server: MockServer,
    shared: service::Shared,
    /// Holds the target files when no repository directory is set.
    _work: tempfile::TempDir,
}

impl App {
    /// Creates (or reloads) the repository, publishes the fixtures and binds the three
    /// listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let work = tempfile::Builder::new()
            .prefix("iea-mock-updates-")
            .tempdir()?;
        let mut repo = repo::Repo::create(
            work.path().to_path_buf(),
            settings.repository_dir.clone(),
            settings.root_file.clone(),
            settings.expiry,
        )
        .await?;
        if settings.fixtures {
            for spec in ReleaseSpec::fixtures() {
                repo.publish(spec).await?;
            }
        } else {
            repo.sign_honest().await?;
        }
        let shared = service::Shared {
            repo: Arc::new(tokio::sync::Mutex::new(repo)),
            stats: Arc::default(),
            transfer: Arc::new(RwLock::new(Transfer::default())),
        };
        let server = MockServer::bind(
            COMPONENT,
            &settings.listen,
            service::routes(shared.clone()),
            admin::routes(shared.clone()),
            Faults::default(),
        )
        .await?;
        Ok(Self {
            server,
            shared,
            _work: work,
        })
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.server.https_addr()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// The latest root metadata, to configure a client with (also `GET /__admin/root`).
    pub async fn root_json(&self) -> Bytes {
        self.shared.repo.lock().await.latest_root()
    }

    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let Self { server, _work, .. } = self;
        let r = server.run_until(shutdown).await;
        drop(_work);
        r
    }
}
