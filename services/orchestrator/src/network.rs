//! The connection settings in force, and what an agent call needs to reach one address.
//!
//! Saved settings live in the database (`settings` key `connection`; the proxy password
//! sealed in the vault as `proxy_password`); until the first save, the defaults of the
//! orchestrator's settings file (`[network]`) apply: the official addresses in
//! *Sécurisé* mode.
//!
//! This module computes on domain values only ([`Candidate`], [`Target`]): a candidate's
//! settings for one target are a [`Reach`] ([`Network::for_target`] for the settings in
//! force, [`Network::reach`] for any candidate), the proxy password still a
//! [`SecretString`]. Only `agents.rs` (its `agents/reach.rs`) turns a [`Reach`] into the
//! `iea.common.v1.NetworkSettings` an agent receives.

use std::path::PathBuf;
use std::sync::RwLock;

use anyhow::Context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::connection::{Candidate, ConnectionSettings, ConnectionType, Mode, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Direct,
    System,
}

/// `[network]` of the orchestrator's settings: the defaults, and what a person does not
/// edit (trusted CAs, service code, timeouts, fallback port).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkDefaults {
    pub connection_type: Kind,
    pub mode: Mode,
    pub auth_server: String,
    pub update_server: String,
    pub net_entreprises: String,
    /// Net-entreprises service code: 25 DSN régime général (97 its publishers' test).
    pub net_entreprises_service: u32,
    /// Extra CA bundle (PEM) trusted beside the system roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Bound on each request to an outside server, in milliseconds; 0: the mode's own.
    pub request_timeout_ms: u32,
    /// The port the repair assistant tries when the default one is filtered (the seeds
    /// say 80).
    pub fallback_port: u16,
}

impl Default for NetworkDefaults {
    fn default() -> Self {
        Self {
            connection_type: Kind::Direct,
            mode: Mode::Secure,
            auth_server: "https://impact-emploi.urssaf.fr".into(),
            update_server: "https://impact-emploi.urssaf.fr/updates".into(),
            net_entreprises: "https://services.net-entreprises.fr/authentifier/1.0/".into(),
            net_entreprises_service: 25,
            extra_ca_file: None,
            request_timeout_ms: 0,
            fallback_port: 80,
        }
    }
}

impl NetworkDefaults {
    /// The settings a new installation starts with: the official ones.
    pub fn official(&self) -> ConnectionSettings {
        ConnectionSettings {
            connection_type: match self.connection_type {
                Kind::Direct => ConnectionType::Direct,
                Kind::System => ConnectionType::System,
            },
            mode: self.mode,
            auth_server: self.auth_server.clone(),
            update_server: self.update_server.clone(),
            net_entreprises: self.net_entreprises.clone(),
        }
    }
}

pub struct Network {
    defaults: NetworkDefaults,
    extra_ca_pem: String,
    current: RwLock<Candidate>,
}

impl Network {
    /// `saved`: what the database holds, if anything was ever saved.
    pub fn load(defaults: NetworkDefaults, saved: Option<Candidate>) -> anyhow::Result<Self> {
        let extra_ca_pem = match &defaults.extra_ca_file {
            Some(p) => {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            }
            None => String::new(),
        };
        let current = saved.unwrap_or_else(|| Candidate {
            settings: defaults.official(),
            proxy_password: None,
        });
        Ok(Self {
            defaults,
            extra_ca_pem,
            current: RwLock::new(current),
        })
    }

    pub fn defaults(&self) -> &NetworkDefaults {
        &self.defaults
    }

    pub fn net_entreprises_service(&self) -> u32 {
        self.defaults.net_entreprises_service
    }

    pub fn current(&self) -> Candidate {
        self.current.read().expect("network lock").clone()
    }

    pub fn replace(&self, c: Candidate) {
        *self.current.write().expect("network lock") = c;
    }
}

impl Network {
    /// The settings in force, for `target`.
    pub fn for_target(&self, target: Target) -> Reach {
        self.reach(&self.current(), target)
    }

    /// `candidate`'s settings for `target`, with what a person does not edit (the extra
    /// CAs, the request bound).
    pub fn reach(&self, candidate: &Candidate, target: Target) -> Reach {
        let s = &candidate.settings;
        Reach {
            connection_type: s.connection_type.clone(),
            proxy_password: candidate.proxy_password.clone(),
            mode: s.mode,
            address: s.address(target).to_owned(),
            extra_ca_pem: self.extra_ca_pem.clone(),
            request_timeout_ms: self.defaults.request_timeout_ms,
        }
    }
}

/// What an agent call needs to reach one outside address: the connection type, the
/// proxy's password (a secret until `agents.rs` writes the agent's message, which travels
/// only orchestrator → agent, over mutual TLS), the mode, the address, the extra CAs and
/// the bound on each request. Its `Debug` says whether a proxy password is set, never it.
#[derive(Clone)]
pub struct Reach {
    pub connection_type: ConnectionType,
    /// Used with a [`ConnectionType::Proxy`] only.
    pub proxy_password: Option<SecretString>,
    pub mode: Mode,
    pub address: String,
    /// Extra CA bundle (PEM) trusted beside the system roots; empty: none.
    pub extra_ca_pem: String,
    /// Bound on each request to the outside server, in milliseconds; 0: the mode's own.
    pub request_timeout_ms: u32,
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reach")
            .field("connection_type", &self.connection_type)
            .field("proxy_password_set", &self.proxy_password.is_some())
            .field("mode", &self.mode)
            .field("address", &self.address)
            .field("extra_ca_pem_bytes", &self.extra_ca_pem.len())
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}
