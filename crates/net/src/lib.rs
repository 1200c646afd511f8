//! The one HTTP client every agent uses, for its real calls and for its probe, built from
//! the network settings the orchestrator passes with each call.
//!
//! - [`settings`]: the domain type [`NetworkSettings`], validated from its proto form with
//!   each problem named by field, in French.
//! - [`client`]: a reqwest client (rustls, ring) that honours the connection type
//!   (explicit proxy, direct, or the system's `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`) and
//!   the mode's rules (timeouts, HTTP/1.1 only and retries in *Étendu*, HTTPS only in
//!   *Sécurisé*). Certificates are always verified: system roots plus the configured
//!   extra CA bundle.
//! - [`probe`]: reachability of an address, with the step that failed and a sentence for
//!   a person.
//!
//! Invariant: this crate knows HTTP, not tonic services; its only proto contact is the
//! conversion at the edge (`TryFrom`/`From`).

pub mod client;
pub mod probe;
pub mod settings;

pub use client::{HttpClient, NetError};
pub use probe::{Diagnosis, Step, TlsProblem, probe, probe_rpc};
pub use settings::{ConnectionMode, ConnectionType, NetworkSettings, SettingsError};
