//! One authentication of the installation against the authentication server, with the
//! network settings of this call.
//!
//! A single attempt: only [`iea_net::HttpClient`]'s own retry of transient failures in
//! *Étendu* mode applies (network errors and 5xx); a refusal is never repeated. Every
//! failure to get a decision becomes [`Outcome::Unreachable`] with the step that failed,
//! so the caller can tell the user where it stopped.
//!
//! Invariant: no tonic here; the gRPC service converts at the edge.

use std::time::{Duration, Instant};

use iea_net::probe::{classify, from_status};
use iea_net::{Diagnosis, HttpClient, NetError, NetworkSettings, Step};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::protocol::{self, Decision, Identity, MAX_ANSWER_BYTES, NotADecision};

/// What came of an authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authorized {
        licence_holder: String,
        valid_until: OffsetDateTime,
        server_time: OffsetDateTime,
    },
    Refused {
        message: String,
    },
    LicenceWithdrawn {
        unknown: bool,
        message: String,
    },
    UpdateRequired {
        minimum_version: iea_version::ImpactVersion,
    },
    /// No decision could be had: where it stopped, and why.
    Unreachable(Diagnosis),
}

impl Outcome {
    /// Stable English name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Authorized { .. } => "authorized",
            Self::Refused { .. } => "refused",
            Self::LicenceWithdrawn { .. } => "licence_withdrawn",
            Self::UpdateRequired { .. } => "update_required",
            Self::Unreachable(_) => "unreachable",
        }
    }
}

impl From<Decision> for Outcome {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Authorized {
                licence_holder,
                valid_until,
                server_time,
            } => Self::Authorized {
                licence_holder,
                valid_until,
                server_time,
            },
            Decision::Refused { message } => Self::Refused { message },
            Decision::LicenceWithdrawn { unknown, message } => {
                Self::LicenceWithdrawn { unknown, message }
            }
            Decision::UpdateRequired { minimum_version } => {
                Self::UpdateRequired { minimum_version }
            }
        }
    }
}

/// Authenticates `identity` against the server at `settings.address`.
#[tracing::instrument(
    name = "authenticate",
    skip_all,
    fields(address = %settings.address, mode = ?settings.mode, installation_id = %identity.installation_id)
)]
pub async fn authenticate(
    settings: &NetworkSettings,
    identity: &Identity,
    user_agent: &str,
) -> Outcome {
    let started = Instant::now();
    let outcome = attempt(settings, identity, user_agent, started).await;
    match &outcome {
        Outcome::Unreachable(d) => tracing::warn!(
            step = ?d.step,
            http_status = d.http_status,
            detail = %d.detail,
            latency_ms = d.latency.as_millis() as u64,
            "authentication server unreachable"
        ),
        other => tracing::info!(
            result = other.name(),
            latency_ms = started.elapsed().as_millis() as u64,
            "authentication answered"
        ),
    }
    outcome
}

async fn attempt(
    settings: &NetworkSettings,
    identity: &Identity,
    user_agent: &str,
    started: Instant,
) -> Outcome {
    let url = match protocol::authenticate_url(&settings.address) {
        Ok(u) => u,
        Err(e) => {
            return Outcome::Unreachable(address_problem(
                settings,
                format!("authentication URL: {e}"),
            ));
        }
    };
    let client = match HttpClient::new(settings, user_agent) {
        Ok(c) => c,
        Err(NetError::Settings(detail)) => {
            return Outcome::Unreachable(address_problem(settings, detail));
        }
        Err(NetError::Transport(d)) => return Outcome::Unreachable(d),
    };
    let body = identity.request_body();
    let result = client
        .send(|c| {
            c.post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(body.expose_secret().to_vec())
        })
        .await;
    let response = match result {
        Ok(r) => r,
        Err(NetError::Transport(mut d)) => {
            d.latency = started.elapsed();
            return Outcome::Unreachable(d);
        }
        Err(NetError::Settings(detail)) => {
            return Outcome::Unreachable(address_problem(settings, detail));
        }
    };
    let status = response.status().as_u16();
    if status == 407 || (500..=599).contains(&status) {
        let mut d = from_status(settings, status);
        d.latency = started.elapsed();
        return Outcome::Unreachable(d);
    }
    let bytes = match read_capped(response).await {
        Ok(b) => b,
        Err(ReadError::Network(e)) => {
            let mut d = classify(&e, settings);
            d.http_status = Some(status);
            d.latency = started.elapsed();
            return Outcome::Unreachable(d);
        }
        Err(ReadError::TooLarge) => {
            return Outcome::Unreachable(not_a_decision(
                settings,
                NotADecision::Unparsable {
                    status,
                    reason: format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
                },
                started.elapsed(),
            ));
        }
    };
    match protocol::read_answer(status, &bytes) {
        Ok(decision) => decision.into(),
        Err(e) => Outcome::Unreachable(not_a_decision(settings, e, started.elapsed())),
    }
}

enum ReadError {
    Network(reqwest::Error),
    TooLarge,
}

/// Reads the body, refusing more than [`MAX_ANSWER_BYTES`]. The client's request
/// timeout bounds the time it takes.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Network)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn host_label(settings: &NetworkSettings) -> String {
    let host = settings.address.host_str().unwrap_or("?");
    match settings.address.port() {
        Some(p) => format!("« {host}:{p} »"),
        None => format!("« {host} »"),
    }
}

fn address_problem(settings: &NetworkSettings, detail: String) -> Diagnosis {
    Diagnosis {
        address: settings.address.to_string(),
        step: Step::Address,
        tls_problem: None,
        http_status: None,
        latency: Duration::ZERO,
        message: "Les paramètres de connexion ne permettent pas de joindre ce serveur.".into(),
        detail,
    }
}

/// The HTTP step failed: an answer came, but it is not a decision of an authentication
/// server.
fn not_a_decision(settings: &NetworkSettings, e: NotADecision, latency: Duration) -> Diagnosis {
    let host = host_label(settings);
    let (status, message, detail) = match e {
        NotADecision::UnexpectedStatus { status } => (
            status,
            format!(
                "Le serveur {host} répond, mais pas comme un serveur d'authentification Impact emploi (code HTTP {status}) : vérifiez l'adresse du serveur d'authentification."
            ),
            format!("unexpected HTTP status {status} from the authentication route"),
        ),
        NotADecision::Unparsable { status, reason } => (
            status,
            format!(
                "Le serveur {host} répond, mais sa réponse n'est pas celle d'un serveur d'authentification Impact emploi : vérifiez l'adresse du serveur d'authentification."
            ),
            format!("unparsable answer from the authentication server (HTTP {status}): {reason}"),
        ),
        NotADecision::BadRequest { status, message } => (
            status,
            format!(
                "Le serveur d'authentification {host} n'a pas compris la demande d'iea-connect. Préparez une demande de support."
            ),
            format!(
                "the authentication server refused the request as malformed (HTTP {status}): {message}"
            ),
        ),
    };
    Diagnosis {
        address: settings.address.to_string(),
        step: Step::Http,
        tls_problem: None,
        http_status: Some(status),
        latency,
        message,
        detail,
    }
}
