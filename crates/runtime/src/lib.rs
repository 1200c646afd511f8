//! What every iea-connect component shares at run time, so that each starts, is observed
//! and stops the same way in its own binary, in the embedded stack and in the tests.
//!
//! Layout:
//! - [`settings`]: typed settings from a TOML file plus `IEA_<COMPONENT>__KEY` overrides.
//! - [`telemetry`]: tracing, human or JSON.
//! - [`shutdown`]: SIGINT/SIGTERM and a cloneable [`shutdown::Shutdown`] token that
//!   long-lived streams watch so a graceful stop never waits on them.
//! - [`pki`]: the internal CA and per-component certificates (mutual TLS between the
//!   orchestrator and its agents), and the test CA that the mock servers' certificates
//!   come from.
//! - [`tls`]: tonic TLS configurations from those files.
//! - [`ports`]: a loopback port reserved for a component started as a process of its own,
//!   outside the range that `bind(0)` and outgoing connections draw from.
//! - [`grpc`]: a gRPC server bound before it runs (port 0 works), with the standard
//!   health service and server reflection, and graceful shutdown.

pub mod agent;
pub mod binary;
pub mod grpc;
pub mod pki;
pub mod ports;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

/// Installs ring as the process-wide rustls crypto provider. Idempotent.
///
/// Every TLS configuration we build names its provider explicitly; this covers libraries
/// that ask rustls for the process default.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
