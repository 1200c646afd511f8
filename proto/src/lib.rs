//! The gRPC contracts of iea-connect, generated from `proto/iea/**.proto` at build time by
//! protox (a pure-Rust protobuf compiler: no system `protoc` is needed).
//!
//! Layout:
//! - [`v1`] (`iea.v1`): the orchestrator's front-end API, one service per area (status,
//!   sessions, users, credentials, connection, updates, support).
//! - [`agent::v1`] (`iea.agent.v1`): the API of each agent the orchestrator calls.
//! - [`common::v1`] (`iea.common.v1`): network settings and probe results, shared by both.
//! - [`error`]: the typed error (stable code + French message) that survives a hop.
//! - [`FILE_DESCRIPTOR_SET`]: served by gRPC reflection.
//!
//! Messages that carry a secret have no derived `Debug`: `redact` writes one that prints
//! `<redacted>` in its place, so a `?request` in a log line cannot leak it.

#[allow(clippy::all, missing_docs)]
pub mod iea {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("iea.common.v1");
        }
    }
    pub mod agent {
        pub mod v1 {
            tonic::include_proto!("iea.agent.v1");
        }
    }
    pub mod v1 {
        tonic::include_proto!("iea.v1");
    }
}

pub use iea::{agent, common, v1};

/// The codes of a DSN deposit's states (`iea.v1.DsnDeposit.state`), in the order of a
/// deposit's life: what the front-ends offer to filter a list by. The orchestrator's
/// `deposits::State::ALL` gives the same codes in the same order (its test
/// `the_front_ends_know_every_state` checks).
pub const DEPOSIT_STATES: [&str; 10] = [
    "received",
    "checked",
    "queued",
    "waiting",
    "sending",
    "accepted",
    "rejected",
    "uncertain",
    "to_check",
    "failed",
];

/// What a person calls an agent of `iea.v1.AgentHealth.name` (« Service de dépôt DSN et
/// des retours (deposit-agent) »), at the head of a line or a cell in both front-ends.
pub fn agent_label(name: &str) -> String {
    match name {
        "auth-client" => "Service d'authentification Impact emploi (auth-client)".into(),
        "update-client" => "Service de mise à jour (update-client)".into(),
        "credential-verifier" => {
            "Service de vérification Net-entreprises (credential-verifier)".into()
        }
        "deposit-agent" => "Service de dépôt DSN et des retours (deposit-agent)".into(),
        other => format!("Service {other}"),
    }
}

/// A duration of the API in whole milliseconds (a latency, as both front-ends show it).
pub fn millis(d: &prost_types::Duration) -> i64 {
    d.seconds * 1000 + i64::from(d.nanos) / 1_000_000
}

pub mod error;
pub mod rates;
mod redact;

/// Encoded `FileDescriptorSet` of every iea service, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("iea_descriptor");
