//! The agent edge of the connection settings: a domain [`Reach`] written as the
//! `iea.common.v1.NetworkSettings` an agent receives with a call (the proxy password
//! exposed here only: the message travels orchestrator → agent, over mutual TLS), and an
//! agent's `ProbeResult` read into a domain [`Probe`] (an answer without a step is
//! refused, naming the field).

use iea_net::Diagnosis;
use iea_proto::common::v1 as pb;
use secrecy::ExposeSecret;

use crate::access::Probe;
use crate::connection::ConnectionType;
use crate::network::Reach;

/// `reach` as an agent receives it.
pub(super) fn network_settings(reach: Reach) -> pb::NetworkSettings {
    let (connection_type, proxy) = match reach.connection_type {
        ConnectionType::Direct => (pb::ConnectionType::Direct, None),
        ConnectionType::System => (pb::ConnectionType::System, None),
        ConnectionType::Proxy {
            host,
            port,
            username,
        } => (
            pb::ConnectionType::Proxy,
            Some(pb::ProxySettings {
                host,
                port: u32::from(port),
                username: username.unwrap_or_default(),
                password: reach
                    .proxy_password
                    .as_ref()
                    .map(|p| p.expose_secret().to_owned())
                    .unwrap_or_default(),
            }),
        ),
    };
    pb::NetworkSettings {
        connection_type: connection_type.into(),
        mode: pb::ConnectionMode::from(reach.mode).into(),
        proxy,
        address: reach.address,
        extra_ca_pem: reach.extra_ca_pem,
        request_timeout_ms: reach.request_timeout_ms,
    }
}

/// An agent's `ProbeResult` (for `address`) as a domain value.
pub(super) fn probe(result: pb::ProbeResult, address: String) -> Probe {
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
    use secrecy::SecretString;

    use super::*;
    use crate::connection::{Candidate, ConnectionSettings, Mode, Target};
    use crate::network::{Network, NetworkDefaults};

    #[test]
    fn a_proxy_candidate_becomes_the_agents_network_settings() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("extra-ca.pem");
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::fs::write(&ca, pem).unwrap();
        let defaults = NetworkDefaults {
            extra_ca_file: Some(ca),
            request_timeout_ms: 4_500,
            ..NetworkDefaults::default()
        };
        let candidate = Candidate {
            settings: ConnectionSettings {
                connection_type: ConnectionType::Proxy {
                    host: "proxy.cabinet.local".into(),
                    port: 3128,
                    username: Some("paie".into()),
                },
                mode: Mode::Extended,
                auth_server: "https://auth.example.fr".into(),
                update_server: "https://maj.example.fr/updates".into(),
                net_entreprises: "https://ne.example.fr/authentifier/1.0/".into(),
            },
            proxy_password: Some(SecretString::from("mot-de-passe-du-proxy")),
        };
        let network = Network::load(defaults, None).unwrap();

        let reach = network.reach(&candidate, Target::UpdateServer);
        let debug = format!("{reach:?}");
        assert!(!debug.contains("mot-de-passe-du-proxy"), "{debug}");
        assert!(debug.contains("proxy_password_set: true"), "{debug}");

        let settings = network_settings(reach);
        assert_eq!(
            settings,
            pb::NetworkSettings {
                connection_type: pb::ConnectionType::Proxy.into(),
                mode: pb::ConnectionMode::Extended.into(),
                proxy: Some(pb::ProxySettings {
                    host: "proxy.cabinet.local".into(),
                    port: 3128,
                    username: "paie".into(),
                    password: "mot-de-passe-du-proxy".into(),
                }),
                address: "https://maj.example.fr/updates".into(),
                extra_ca_pem: pem.into(),
                request_timeout_ms: 4_500,
            }
        );
        for (target, address) in [
            (Target::AuthServer, "https://auth.example.fr"),
            (
                Target::NetEntreprises,
                "https://ne.example.fr/authentifier/1.0/",
            ),
        ] {
            let s = network_settings(network.reach(&candidate, target));
            assert_eq!(s.address, address);
        }

        // The settings in force are the defaults' until a save: direct, no proxy.
        let s = network_settings(network.for_target(Target::AuthServer));
        assert_eq!(s.connection_type, i32::from(pb::ConnectionType::Direct));
        assert_eq!(s.proxy, None);
        assert_eq!(s.address, "https://impact-emploi.urssaf.fr");
        assert_eq!(s.mode, i32::from(pb::ConnectionMode::Secure));
        network.replace(candidate);
        let s = network_settings(network.for_target(Target::NetEntreprises));
        assert_eq!(s.proxy.unwrap().password, "mot-de-passe-du-proxy");
    }

    #[test]
    fn a_proxy_without_username_or_password_sends_empty_fields() {
        let network = Network::load(NetworkDefaults::default(), None).unwrap();
        let mut candidate = network.current();
        candidate.settings.connection_type = ConnectionType::Proxy {
            host: "10.0.0.1".into(),
            port: 8080,
            username: None,
        };
        let reach = network.reach(&candidate, Target::AuthServer);
        assert!(format!("{reach:?}").contains("proxy_password_set: false"));
        let s = network_settings(reach);
        assert_eq!(
            s.proxy,
            Some(pb::ProxySettings {
                host: "10.0.0.1".into(),
                port: 8080,
                username: String::new(),
                password: String::new(),
            })
        );
        assert_eq!(s.extra_ca_pem, "");
        assert_eq!(s.request_timeout_ms, 0);
    }

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
        let Probe::Tried(d) = probe(result, "https://127.0.0.1:1".into()) else {
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
        match probe(result, "https://x.fr".into()) {
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
