//! tonic TLS configurations from [`crate::pki::TlsFiles`].
//!
//! Agents *require* a client certificate from the internal CA; the orchestrator's
//! front-end port only authenticates itself (front-ends then open a session).

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::pki::TlsFiles;

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Server side. With `require_client_cert`, a client must present a certificate signed by
/// `files.ca` or the handshake fails.
pub fn server_config(
    files: &TlsFiles,
    require_client_cert: bool,
) -> anyhow::Result<ServerTlsConfig> {
    let identity = Identity::from_pem(read(&files.cert)?, read(&files.key)?);
    let mut cfg = ServerTlsConfig::new().identity(identity);
    if require_client_cert {
        cfg = cfg.client_ca_root(Certificate::from_pem(read(&files.ca)?));
    }
    Ok(cfg)
}

/// Client side, presenting our certificate (mutual TLS) and trusting only `files.ca`.
/// `server_name` is checked against the server certificate's names.
pub fn client_config(files: &TlsFiles, server_name: &str) -> anyhow::Result<ClientTlsConfig> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&files.ca)?))
        .identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?))
        .domain_name(server_name))
}

/// Client side without a certificate of our own (front-ends), trusting only `ca`.
pub fn front_end_config(
    ca: &std::path::Path,
    server_name: &str,
) -> anyhow::Result<ClientTlsConfig> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .domain_name(server_name))
}
