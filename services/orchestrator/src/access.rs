//! "Tester l'accès aux serveurs" and the repair assistant.
//!
//! A test probes the three addresses at once, each through the agent whose real calls use
//! it (so through exactly the same HTTP client), with candidate settings, saved or not; it
//! takes about as long as the slowest probe, itself bounded by the mode's timeout.
//!
//! The assistant proposes the seeds' two repairs, each tested before it is offered:
//! legacy settings → *Sécurisé* with the official addresses ("Mise à jour du mode de
//! connexion"); a filtered default port → the fallback port appended to the addresses
//! that failed ("Résolution des problèmes de connexion").

use iea_proto::common::v1::{ProbeResult, ProbeStep};
use serde::{Deserialize, Serialize};

use crate::agents::{AgentError, Agents};
use crate::connection::{Candidate, Target, with_port};
use crate::network::Network;
use crate::store::Store;

/// Repairs kept in the history that support receives.
pub const REPAIR_HISTORY_KEPT: usize = 20;

/// A repair that was applied, for support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairEntry {
    /// Unix seconds.
    pub at: i64,
    /// The proposal's id.
    pub repair: String,
    /// French sentences, one per setting changed.
    pub changes: Vec<String>,
}

/// The last repairs applied, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepairHistory(pub Vec<RepairEntry>);

impl RepairHistory {
    fn with(mut self, entry: RepairEntry) -> Self {
        self.0.push(entry);
        let excess = self.0.len().saturating_sub(REPAIR_HISTORY_KEPT);
        self.0.drain(..excess);
        self
    }
}

/// Adds `entry` to the persisted history (the oldest forgotten past
/// [`REPAIR_HISTORY_KEPT`]).
pub async fn record_repair(store: &Store, entry: RepairEntry) -> anyhow::Result<()> {
    store
        .update(move |h: Option<RepairHistory>| h.unwrap_or_default().with(entry))
        .await
}

/// Keeps `test` as the last one, for support.
pub async fn record_test(store: &Store, test: &AccessTest) -> anyhow::Result<()> {
    store.save(test.record()).await
}

/// The seeds' sentence when every address answers.
pub const SUCCESS: &str = "La connexion local/internet s'est déroulée avec succès";

#[derive(Debug, Clone)]
pub struct AccessTest {
    pub results: Vec<(Target, ProbeResult)>,
    pub tested_at: i64,
}

impl AccessTest {
    pub fn all_reachable(&self) -> bool {
        self.results.iter().all(|(_, r)| r.reachable)
    }

    pub fn reachable(&self, t: Target) -> bool {
        self.results.iter().any(|(x, r)| *x == t && r.reachable)
    }

    pub fn message(&self) -> String {
        if self.all_reachable() {
            return SUCCESS.to_owned();
        }
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|(_, r)| !r.reachable)
            .map(|(t, r)| format!("{} : {}", t.label(), r.message))
            .collect();
        format!(
            "Certains serveurs ne sont pas joignables. {}",
            failed.join(" ")
        )
    }

    /// What is kept of it for the support request.
    pub fn record(&self) -> TestRecord {
        TestRecord {
            tested_at: self.tested_at,
            results: self
                .results
                .iter()
                .map(|(t, r)| ResultRecord {
                    target: t.name().to_owned(),
                    address: r.address.clone(),
                    reachable: r.reachable,
                    step: ProbeStep::try_from(r.step)
                        .ok()
                        .and_then(|s| iea_net::probe::Step::try_from(s).ok())
                        .map_or("unknown", iea_net::probe::Step::code)
                        .to_owned(),
                    http_status: r.http_status,
                    latency_ms: r
                        .latency
                        .map(|d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000)
                        .unwrap_or(0),
                    message: r.message.clone(),
                    detail: r.detail.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestRecord {
    pub tested_at: i64,
    pub results: Vec<ResultRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultRecord {
    pub target: String,
    pub address: String,
    pub reachable: bool,
    pub step: String,
    pub http_status: u32,
    pub latency_ms: i64,
    pub message: String,
    pub detail: String,
}

/// Probes the three addresses of `candidate` at once.
pub async fn test(agents: &Agents, network: &Network, candidate: &Candidate) -> AccessTest {
    let probe = |t: Target| {
        let settings = network.to_proto(candidate, t);
        async move {
            let r = match agents.probe(t, settings.clone()).await {
                Ok(r) => r,
                Err(AgentError::Unavailable { agent, detail })
                | Err(AgentError::Refused {
                    agent,
                    error:
                        iea_proto::error::ApiError {
                            message: detail, ..
                        },
                }) => ProbeResult {
                    address: settings.address,
                    reachable: false,
                    message: format!(
                        "Le service « {agent} » ne répond pas : cette adresse n'a pas pu être testée."
                    ),
                    detail,
                    ..Default::default()
                },
            };
            (t, r)
        }
    };
    let (a, u, n) = tokio::join!(
        probe(Target::AuthServer),
        probe(Target::UpdateServer),
        probe(Target::NetEntreprises)
    );
    AccessTest {
        results: vec![a, u, n],
        tested_at: crate::sessions::now(),
    }
}

#[derive(Debug, Clone)]
pub struct Proposal {
    /// `secure_official_addresses` or `fallback_port`.
    pub id: &'static str,
    pub description: String,
    pub candidate: Candidate,
    pub test: AccessTest,
}

/// A failure that a filtered port explains: nothing answered at the TCP level.
fn port_filtered(r: &ProbeResult) -> bool {
    !r.reachable
        && matches!(
            ProbeStep::try_from(r.step),
            Ok(ProbeStep::Connect | ProbeStep::Timeout)
        )
}

/// Tests `current`, then the repairs that apply; returns the test and the repairs whose
/// own test passed.
pub async fn propose(
    agents: &Agents,
    network: &Network,
    current: &Candidate,
) -> (AccessTest, Vec<Proposal>) {
    let now = test(agents, network, current).await;
    let mut proposals = Vec::new();

    if current.settings.is_legacy() {
        let official = network.defaults().official();
        let mut settings = current.settings.clone();
        settings.mode = crate::connection::Mode::Secure;
        settings.auth_server = official.auth_server;
        settings.update_server = official.update_server;
        settings.net_entreprises = official.net_entreprises;
        let candidate = Candidate {
            settings,
            proxy_password: current.proxy_password.clone(),
        };
        let t = test(agents, network, &candidate).await;
        if t.all_reachable() {
            proposals.push(Proposal {
                id: "secure_official_addresses",
                description: "Passer en mode de connexion Sécurisé avec les adresses officielles des serveurs (fiche « Mise à jour du mode de connexion »).".into(),
                candidate,
                test: t,
            });
        }
    }

    let port = network.defaults().fallback_port;
    let filtered: Vec<Target> = [Target::AuthServer, Target::UpdateServer]
        .into_iter()
        .filter(|t| now.results.iter().any(|(x, r)| x == t && port_filtered(r)))
        .collect();
    if !filtered.is_empty() {
        let mut candidate = current.clone();
        let mut changed = Vec::new();
        for t in &filtered {
            if let Some(a) = with_port(current.settings.address(*t), port) {
                *candidate.settings.address_mut(*t) = a;
                changed.push(t.label());
            }
        }
        let t = test(agents, network, &candidate).await;
        if filtered.iter().all(|x| t.reachable(*x)) {
            proposals.push(Proposal {
                id: "fallback_port",
                description: format!(
                    "Le port habituel semble bloqué : ajouter le port de secours {port} à : {} (fiche « Résolution des problèmes de connexion »).",
                    changed.join(", ")
                ),
                candidate,
                test: t,
            });
        }
    }
    (now, proposals)
}
