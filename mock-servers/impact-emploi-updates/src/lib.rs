//! Mock of the Impact emploi update server.
//!
//! For now it serves what every mock serves (HTTPS, plain HTTP and the admin API with
//! faults, see `iea-mock-kit`), so the update client's probe and the stack's wiring can be
//! exercised. The signed repository (TUF) and its attack modes come with the updates
//! feature; until then it publishes nothing rather than something unsigned.

use std::net::SocketAddr;

use axum::Router;
use iea_mock_kit::{Faults, MockListen, MockServer};
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};

/// Component name: logs, and `IEA_MOCK_UPDATES__*` settings overrides.
pub const COMPONENT: &str = "mock-updates";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub listen: MockListen,
}

pub struct App {
    server: MockServer,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let server = MockServer::bind(
            COMPONENT,
            &settings.listen,
            Router::new(),
            Router::new(),
            Faults::default(),
        )
        .await?;
        Ok(Self { server })
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

    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        self.server.run_until(shutdown).await
    }
}
