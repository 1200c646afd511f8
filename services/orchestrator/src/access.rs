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
//!
//! Computes on domain values: what a probe found is a [`Probe`] (`iea-net`'s
//! [`Diagnosis`], or an address the agent could not test), asked of the agents with a
//! [`crate::network::Reach`]; the agents' `ProbeResult` is read at their edge
//! (`agents.rs`), the front-end's written in `api/connection.rs`.

use iea_net::{Diagnosis, Step};
use serde::{Deserialize, Serialize};

use crate::agents::Agents;
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

/// What the test found at one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The agent in charge of the address tried it with the candidate settings.
    Tried(Diagnosis),
    /// The agent in charge could not be asked, or its answer could not be read: the
    /// address was not tested.
    NotTested {
        address: String,
        /// French sentence.
        message: String,
        /// English technical detail, for support.
        detail: String,
    },
}

impl Probe {
    pub fn reachable(&self) -> bool {
        matches!(self, Probe::Tried(d) if d.reachable())
    }

    /// Where the attempt stopped (`Step::Ok` when it did not); `None`: not tested.
    pub fn step(&self) -> Option<Step> {
        match self {
            Probe::Tried(d) => Some(d.step),
            Probe::NotTested { .. } => None,
        }
    }

    pub fn address(&self) -> &str {
        match self {
            Probe::Tried(d) => &d.address,
            Probe::NotTested { address, .. } => address,
        }
    }

    /// French sentence.
    pub fn message(&self) -> &str {
        match self {
            Probe::Tried(d) => &d.message,
            Probe::NotTested { message, .. } => message,
        }
    }

    fn record(&self, target: Target) -> ResultRecord {
        let (http_status, latency_ms, detail) = match self {
            Probe::Tried(d) => (
                d.http_status.map_or(0, u32::from),
                i64::try_from(d.latency.as_millis()).unwrap_or(i64::MAX),
                d.detail.clone(),
            ),
            Probe::NotTested { detail, .. } => (0, 0, detail.clone()),
        };
        ResultRecord {
            target: target.name().to_owned(),
            address: self.address().to_owned(),
            reachable: self.reachable(),
            step: self.step().map_or("unknown", Step::code).to_owned(),
            http_status,
            latency_ms,
            message: self.message().to_owned(),
            detail,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccessTest {
    pub results: Vec<(Target, Probe)>,
    pub tested_at: i64,
}

impl AccessTest {
    pub fn all_reachable(&self) -> bool {
        self.results.iter().all(|(_, r)| r.reachable())
    }

    pub fn reachable(&self, t: Target) -> bool {
        self.results.iter().any(|(x, r)| *x == t && r.reachable())
    }

    pub fn message(&self) -> String {
        if self.all_reachable() {
            return SUCCESS.to_owned();
        }
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|(_, r)| !r.reachable())
            .map(|(t, r)| format!("{} : {}", t.label(), r.message()))
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
            results: self.results.iter().map(|(t, r)| r.record(*t)).collect(),
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
    let probe = |t: Target| async move { (t, agents.probe(t, network.reach(candidate, t)).await) };
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
fn port_filtered(r: &Probe) -> bool {
    matches!(r.step(), Some(Step::Connect | Step::Timeout))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tried(address: &str, step: Step) -> Probe {
        Probe::Tried(Diagnosis {
            address: address.into(),
            step,
            tls_problem: None,
            http_status: (step == Step::Http).then_some(503),
            latency: Duration::from_millis(1234),
            message: format!("{} : {}", address, step.code()),
            detail: "detail".into(),
        })
    }

    fn not_tested(address: &str) -> Probe {
        Probe::NotTested {
            address: address.into(),
            message:
                "Le service « auth-client » ne répond pas : cette adresse n'a pas pu être testée."
                    .into(),
            detail: "Unavailable: down".into(),
        }
    }

    #[test]
    fn only_a_tried_address_that_answered_is_reachable() {
        let t = AccessTest {
            results: vec![
                (Target::AuthServer, tried("https://a", Step::Ok)),
                (Target::UpdateServer, tried("https://u", Step::Connect)),
                (Target::NetEntreprises, not_tested("https://n")),
            ],
            tested_at: 7,
        };
        assert!(t.reachable(Target::AuthServer));
        assert!(!t.reachable(Target::UpdateServer));
        assert!(!t.reachable(Target::NetEntreprises));
        assert!(!t.all_reachable());
        assert_eq!(
            t.message(),
            "Certains serveurs ne sont pas joignables. Adresse du serveur de mise à jour : https://u : connect Adresse d'authentification Net-entreprises : Le service « auth-client » ne répond pas : cette adresse n'a pas pu être testée."
        );
    }

    #[test]
    fn the_record_keeps_the_step_code_latency_and_status() {
        let t = AccessTest {
            results: vec![
                (Target::AuthServer, tried("https://a", Step::Http)),
                (Target::NetEntreprises, not_tested("https://n")),
            ],
            tested_at: 7,
        };
        let r = t.record();
        assert_eq!(r.tested_at, 7);
        let a = &r.results[0];
        assert_eq!(
            (
                a.target.as_str(),
                a.step.as_str(),
                a.http_status,
                a.latency_ms
            ),
            ("auth_server", "http", 503, 1234)
        );
        assert!(!a.reachable);
        let n = &r.results[1];
        assert_eq!(
            (
                n.target.as_str(),
                n.step.as_str(),
                n.http_status,
                n.latency_ms
            ),
            ("net_entreprises", "unknown", 0, 0)
        );
        assert_eq!(n.detail, "Unavailable: down");
    }

    #[test]
    fn only_a_connect_or_timeout_failure_suggests_a_filtered_port() {
        assert!(port_filtered(&tried("https://a", Step::Connect)));
        assert!(port_filtered(&tried("https://a", Step::Timeout)));
        assert!(!port_filtered(&tried("https://a", Step::Ok)));
        assert!(!port_filtered(&tried("https://a", Step::Tls)));
        assert!(!port_filtered(&not_tested("https://a")));
    }
}
