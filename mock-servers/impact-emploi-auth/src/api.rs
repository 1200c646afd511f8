//! The simulated authentication server: `POST /api/v1/authenticate` (protocol in the
//! crate's README).
//!
//! Decision order for a well-formed request:
//! 1. unknown installation, or wrong licence key → 403 `licence_withdrawn`, `unknown: true`
//!    ("Licence d'installation non reconnue");
//! 2. status `refused` → 403 `refused` ("Autorisation refusée");
//! 3. status `withdrawn` → 403 `licence_withdrawn`, `unknown: false`;
//! 4. software version below the minimum → 426 `update_required`;
//! 5. otherwise 200 `authorized`.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::store::{LicenceStatus, Store};
use iea_version::ImpactVersion;

/// Path of the authentication call.
pub const AUTHENTICATE_PATH: &str = "/api/v1/authenticate";

/// "Autorisation refusée", as the real server's dialog says it.
pub const MESSAGE_REFUSED: &str = "Autorisation refusée";
/// A known licence that was withdrawn: consultation stays possible.
pub const MESSAGE_WITHDRAWN: &str = "La licence vous a été retirée, mais vous pouvez utiliser Impact Emploi pour de la consultation";
/// A licence the server does not know.
pub const MESSAGE_UNKNOWN: &str = "Licence d'installation non reconnue";

/// Request body. Unknown fields are ignored, so that a newer client still gets through.
#[derive(Deserialize)]
pub struct AuthenticateRequest {
    pub installation_id: String,
    pub licence_key: String,
    pub software_version: String,
    #[serde(default)]
    pub workstation: String,
}

/// Response body; `result` names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AuthenticateAnswer {
    Authorized {
        licence_holder: String,
        /// RFC 3339.
        valid_until: String,
        /// RFC 3339.
        server_time: String,
    },
    Refused {
        message: String,
    },
    LicenceWithdrawn {
        unknown: bool,
        message: String,
    },
    UpdateRequired {
        minimum_version: String,
        message: String,
    },
    BadRequest {
        message: String,
    },
}

impl AuthenticateAnswer {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Authorized { .. } => StatusCode::OK,
            Self::Refused { .. } | Self::LicenceWithdrawn { .. } => StatusCode::FORBIDDEN,
            Self::UpdateRequired { .. } => StatusCode::UPGRADE_REQUIRED,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Authorized { .. } => "authorized",
            Self::Refused { .. } => "refused",
            Self::LicenceWithdrawn { .. } => "licence_withdrawn",
            Self::UpdateRequired { .. } => "update_required",
            Self::BadRequest { .. } => "bad_request",
        }
    }
}

impl IntoResponse for AuthenticateAnswer {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self)).into_response()
    }
}

pub fn routes(store: Store) -> Router {
    Router::new()
        .route(AUTHENTICATE_PATH, post(authenticate))
        .with_state(store)
}

async fn authenticate(State(store): State<Store>, body: Bytes) -> AuthenticateAnswer {
    let stats = store.stats();
    stats.auth_requests.fetch_add(1, Ordering::Relaxed);
    let answer = match serde_json::from_slice::<AuthenticateRequest>(&body) {
        Ok(req) => {
            if let Ok(mut last) = stats.last_software_version.lock() {
                *last = Some(req.software_version.clone());
            }
            let answer = decide(&store, &req, OffsetDateTime::now_utc());
            tracing::info!(
                installation_id = %req.installation_id,
                software_version = %req.software_version,
                workstation = %req.workstation,
                result = answer.name(),
                "authentication answered"
            );
            answer
        }
        Err(e) => {
            tracing::info!(error = %e, "malformed authentication request");
            AuthenticateAnswer::BadRequest {
                message: format!("Demande d'authentification illisible : {e}"),
            }
        }
    };
    let counter = match &answer {
        AuthenticateAnswer::Authorized { .. } => &stats.authorized,
        AuthenticateAnswer::Refused { .. } => &stats.refused,
        AuthenticateAnswer::LicenceWithdrawn { .. } => &stats.licence_withdrawn,
        AuthenticateAnswer::UpdateRequired { .. } => &stats.update_required,
        AuthenticateAnswer::BadRequest { .. } => &stats.bad_request,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    answer
}

/// The server's decision for a well-formed request at instant `now`.
pub fn decide(store: &Store, req: &AuthenticateRequest, now: OffsetDateTime) -> AuthenticateAnswer {
    let version = match req.software_version.parse::<ImpactVersion>() {
        Ok(v) => v,
        Err(e) => {
            return AuthenticateAnswer::BadRequest {
                message: format!("software_version : {e}"),
            };
        }
    };
    let unknown = || AuthenticateAnswer::LicenceWithdrawn {
        unknown: true,
        message: MESSAGE_UNKNOWN.to_owned(),
    };
    let Some(inst) = store.get(&req.installation_id) else {
        return unknown();
    };
    if !constant_time_eq(inst.licence_key.as_bytes(), req.licence_key.as_bytes()) {
        return unknown();
    }
    match inst.status {
        LicenceStatus::Refused => {
            return AuthenticateAnswer::Refused {
                message: MESSAGE_REFUSED.to_owned(),
            };
        }
        LicenceStatus::Withdrawn => {
            return AuthenticateAnswer::LicenceWithdrawn {
                unknown: false,
                message: MESSAGE_WITHDRAWN.to_owned(),
            };
        }
        LicenceStatus::Active => {}
    }
    if let Some(min) = store.minimum_version()
        && version < min
    {
        return AuthenticateAnswer::UpdateRequired {
            message: format!(
                "La version {version} d'Impact Emploi n'est plus acceptée : installez la mise à jour {min} ou une version plus récente."
            ),
            minimum_version: min.to_string(),
        };
    }
    let valid_until = inst.valid_until.unwrap_or(now + Duration::days(365));
    AuthenticateAnswer::Authorized {
        licence_holder: inst.licence_holder,
        valid_until: rfc3339(valid_until),
        server_time: rfc3339(now),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    // Rfc3339 formatting fails only for years outside 0..=9999 or sub-minute offsets,
    // which no value here has; fall back to the Unix time rather than panic.
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
