//! The connection settings in force, as the agents receive them with each call.
//!
//! Saved settings live in the database (`settings` key `connection`; the proxy password
//! sealed in the vault as `proxy_password`); until the first save, the defaults of the
//! orchestrator's settings file (`[network]`) apply: the official addresses in
//! *Sécurisé* mode.
//!
//! This module computes on domain values only ([`Candidate`], [`crate::connection::Target`]).
//! Its edge towards the agents, `network/proto.rs`, turns them into the
//! `iea.common.v1.NetworkSettings` an agent receives ([`Network::for_target`],
//! [`Network::to_proto`]) and an agent's `ProbeResult` into a domain
//! [`crate::access::Probe`] ([`probe`]).

use std::path::PathBuf;
use std::sync::RwLock;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::connection::{Candidate, ConnectionSettings, ConnectionType, Mode};

mod proto;

pub use proto::probe;

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
