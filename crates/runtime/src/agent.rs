//! What the three agents share: their settings and how their server is built. An agent
//! only accepts clients whose certificate comes from the internal CA.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tonic::service::Routes;

use crate::grpc::GrpcServer;
use crate::pki::TlsFiles;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSettings {
    pub listen: SocketAddr,
    /// The internal CA (clients must present a certificate it signed), and this agent's
    /// certificate and key.
    pub tls: TlsFiles,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            tls: TlsFiles::default(),
        }
    }
}

/// Binds an agent's gRPC server with mutual TLS required.
pub async fn bind(
    component: &'static str,
    settings: &AgentSettings,
    routes: Routes,
    services: &[&'static str],
) -> anyhow::Result<GrpcServer> {
    let tls = crate::tls::server_config(&settings.tls, true)?;
    GrpcServer::bind(component, settings.listen, Some(tls), routes, services).await
}
