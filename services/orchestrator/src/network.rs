//! The connection settings the orchestrator passes to an agent with each call.
//!
//! Until "Paramètres de connexion" can be edited and saved, they come from the
//! orchestrator's settings file (`[network]`), whose defaults are the official addresses
//! in *Sécurisé* mode.

use std::path::PathBuf;

use anyhow::Context;
use iea_proto::common::v1 as pb;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Normal,
    Extended,
    Secure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Direct,
    System,
}

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
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    AuthServer,
    UpdateServer,
    NetEntreprises,
}

/// Settings ready to pass: the CA bundle is read once, at start.
#[derive(Debug, Clone)]
pub struct Network {
    defaults: NetworkDefaults,
    extra_ca_pem: String,
}

impl Network {
    pub fn load(defaults: NetworkDefaults) -> anyhow::Result<Self> {
        let extra_ca_pem = match &defaults.extra_ca_file {
            Some(p) => {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            }
            None => String::new(),
        };
        Ok(Self {
            defaults,
            extra_ca_pem,
        })
    }

    pub fn net_entreprises_service(&self) -> u32 {
        self.defaults.net_entreprises_service
    }

    pub fn for_target(&self, target: Target) -> pb::NetworkSettings {
        let d = &self.defaults;
        let address = match target {
            Target::AuthServer => &d.auth_server,
            Target::UpdateServer => &d.update_server,
            Target::NetEntreprises => &d.net_entreprises,
        };
        pb::NetworkSettings {
            connection_type: match d.connection_type {
                Kind::Direct => pb::ConnectionType::Direct,
                Kind::System => pb::ConnectionType::System,
            }
            .into(),
            mode: match d.mode {
                Mode::Normal => pb::ConnectionMode::Normal,
                Mode::Extended => pb::ConnectionMode::Extended,
                Mode::Secure => pb::ConnectionMode::Secure,
            }
            .into(),
            proxy: None,
            address: address.clone(),
            extra_ca_pem: self.extra_ca_pem.clone(),
            request_timeout_ms: d.request_timeout_ms,
        }
    }
}
