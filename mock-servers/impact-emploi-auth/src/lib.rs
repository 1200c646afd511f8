//! Mock of the Impact emploi authentication server.
//!
//! It speaks the small JSON-over-HTTPS protocol that iea-connect defines (the real one is
//! not public; see this crate's README): `POST /api/v1/authenticate` answers authorized,
//! refused, licence withdrawn or unknown, or update required. Installations come from a
//! fixtures file and change through the admin API, which also plays the support desk
//! that gives out the *mot de passe du jour* ([`daily_password`]).
//!
//! Layout:
//! - [`api`]: the simulated service and its wire types;
//! - [`admin`]: the `/__admin/` control API (bearer token and faults come from the kit);
//! - [`store`]: installations, minimum version, counters;
//! - [`daily_password`]: the daily password, shared with the orchestrator that checks it.
//!
//! Versions (the request's `software_version`, the minimum) are [`iea_version::ImpactVersion`],
//! the definition the auth client shares.

pub mod admin;
pub mod api;
pub use iea_daily_password as daily_password;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;

use iea_mock_kit::{Faults, MockListen, MockServer};
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};

pub use daily_password::{daily_password, paris_date, paris_today, verify_daily_password};
pub use store::Store;

/// Component name: logs, and `IEA_MOCK_AUTH__*` settings overrides.
pub const COMPONENT: &str = "mock-auth";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub listen: MockListen,
    /// Installations and minimum version at start (JSON, see `fixtures/demo.json`).
    /// Without it the mock starts empty.
    pub fixtures: Option<PathBuf>,
}

/// The mock, bound and ready to run.
pub struct App {
    server: MockServer,
    store: Store,
}

impl App {
    /// Loads the fixtures and binds the three listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = match &settings.fixtures {
            Some(path) => Store::load(path)?,
            None => Store::default(),
        };
        let server = MockServer::bind(
            COMPONENT,
            &settings.listen,
            api::routes(store.clone()),
            admin::routes(store.clone()),
            Faults::default(),
        )
        .await?;
        Ok(Self { server, store })
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.server.https_addr()
    }

    /// The service over TLS on the fallback port (open when the default one is closed).
    pub fn fallback_addr(&self) -> SocketAddr {
        self.server.fallback_addr()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// The state behind the service and the admin API, for in-process callers.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        self.server.run_until(shutdown).await
    }
}
