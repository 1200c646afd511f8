//! **Edge** of the connection settings towards the agents: the only place in `network` and
//! `access` that knows `iea.common.v1`.
//!
//! - [`Network::to_proto`], [`Network::for_target`]: a [`Candidate`]'s settings for one
//!   [`Target`], as an agent receives them with each call (the proxy password included:
//!   this travels only orchestrator → agent, over mutual TLS);
//! - [`probe`]: the `Probe` of the agent in charge of an address, its `ProbeResult` read
//!   into a domain [`Probe`] (an answer without a step is refused, naming the field).
//!
//! These conversions belong with the agent calls (`agents.rs`); they live here while
//! `agents.rs` still takes and gives `iea.common.v1` messages.

use iea_net::Diagnosis;
use iea_proto::common::v1 as pb;
use secrecy::ExposeSecret;

use super::Network;
use crate::access::Probe;
use crate::agents::{AgentError, Agents};
use crate::connection::{Candidate, ConnectionType, Target};

impl Network {
    /// The settings in force, for `target`, as an agent receives them.
    pub fn for_target(&self, target: Target) -> pb::NetworkSettings {
        self.to_proto(&self.current(), target)
    }

    /// `candidate`'s settings for `target`, as an agent receives them.
    pub fn to_proto(&self, candidate: &Candidate, target: Target) -> pb::NetworkSettings {
        let s = &candidate.settings;
        let (connection_type, proxy) = match &s.connection_type {
            ConnectionType::Direct => (pb::ConnectionType::Direct, None),
            ConnectionType::System => (pb::ConnectionType::System, None),
            ConnectionType::Proxy {
                host,
                port,
                username,
            } => (
                pb::ConnectionType::Proxy,
                Some(pb::ProxySettings {
                    host: host.clone(),
                    port: u32::from(*port),
                    username: username.clone().unwrap_or_default(),
                    password: candidate
                        .proxy_password
                        .as_ref()
                        .map(|p| p.expose_secret().to_owned())
                        .unwrap_or_default(),
                }),
            ),
        };
        pb::NetworkSettings {
            connection_type: connection_type.into(),
            mode: pb::ConnectionMode::from(s.mode).into(),
            proxy,
            address: s.address(target).to_owned(),
            extra_ca_pem: self.extra_ca_pem.clone(),
            request_timeout_ms: self.defaults.request_timeout_ms,
        }
    }
}

/// `Probe` of `candidate`'s address for `target`, by the agent whose real calls use it.
/// An agent that cannot be asked, or whose answer cannot be read, leaves the address
/// [`Probe::NotTested`].
pub async fn probe(
    agents: &Agents,
    network: &Network,
    candidate: &Candidate,
    target: Target,
) -> Probe {
    let settings = network.to_proto(candidate, target);
    let address = settings.address.clone();
    match agents.probe(target, settings).await {
        Ok(result) => from_agent(result, address),
        Err(AgentError::Unavailable { agent, detail })
        | Err(AgentError::Refused {
            agent,
            error: iea_proto::error::ApiError {
                message: detail, ..
            },
        }) => Probe::NotTested {
            address,
            message: format!(
                "Le service « {agent} » ne répond pas : cette adresse n'a pas pu être testée."
            ),
            detail,
        },
    }
}

/// An agent's `ProbeResult` (for `address`) as a domain value.
fn from_agent(result: pb::ProbeResult, address: String) -> Probe {
    match Diagnosis::try_from(result) {
        Ok(d) => Probe::Tried(d),
        Err(field) => Probe::NotTested {
            address,
            message: "Le service chargé de cette adresse a donné une réponse illisible : cette adresse n'a pas pu être testée.".into(),
            detail: format!("probe result refused: field {field}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use iea_net::Step;

    use super::*;

    #[test]
    fn an_agents_probe_result_becomes_a_diagnosis() {
        let result = pb::ProbeResult {
            address: "https://127.0.0.1:1/".into(),
            reachable: false,
            step: pb::ProbeStep::Connect.into(),
            latency: Some(prost_types::Duration {
                seconds: 1,
                nanos: 500_000_000,
            }),
            http_status: 0,
            tls_problem: 0,
            message: "injoignable".into(),
            detail: "connection refused".into(),
        };
        let Probe::Tried(d) = from_agent(result, "https://127.0.0.1:1".into()) else {
            panic!("not a diagnosis");
        };
        assert_eq!(d.step, Step::Connect);
        assert_eq!(d.address, "https://127.0.0.1:1/");
        assert_eq!(d.latency, Duration::from_millis(1500));
        assert_eq!(d.http_status, None);
        assert_eq!(d.message, "injoignable");
    }

    #[test]
    fn a_probe_result_without_a_step_is_refused_naming_the_field() {
        let result = pb::ProbeResult {
            address: "https://x.fr/".into(),
            reachable: true,
            ..Default::default()
        };
        match from_agent(result, "https://x.fr".into()) {
            Probe::NotTested {
                address, detail, ..
            } => {
                assert_eq!(address, "https://x.fr");
                assert_eq!(detail, "probe result refused: field step");
            }
            Probe::Tried(d) => panic!("read as {d:?}"),
        }
    }
}
