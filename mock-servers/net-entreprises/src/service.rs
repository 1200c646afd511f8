//! `POST /authentifier/1.0/`: content type, form checks, then the declarant's decision.
//! Error bodies are empty, as on the real service. A token given is remembered (its
//! digest) for the business services, with its expiry on the mock's clock.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;

use crate::declarants::Decision;
use crate::{AUTH_PATH, Control, NotRegisteredAnswer, Outcome, form};

/// `WWW-Authenticate` of each refusal, exactly as the real service writes it.
pub const REALM_WRONG_CREDENTIALS: &str = "Basic realm=\"net-entreprises.fr\"";
pub const REALM_PASSWORD_EXPIRED: &str = "Basic realm=\"Expiration du mot de passe\"";
pub const REALM_NOT_REGISTERED: &str = "DSNLogin realm=\"Utilisateur non-inscrit au service\"";

/// The nom that makes the simulator answer 500.
pub const KABOOM: &str = "kaboom";

pub async fn authenticate(
    State(control): State<Control>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, response) = answer(&control, &headers, &body);
    control.count(AUTH_PATH, Outcome::Status(status));
    let mut stats = control.stats_mut();
    stats.auth_requests += 1;
    *stats.by_status.entry(status.as_u16()).or_default() += 1;
    match status {
        StatusCode::OK => stats.tokens_issued += 1,
        StatusCode::UNAUTHORIZED
            if response.headers().get(header::WWW_AUTHENTICATE)
                == Some(&HeaderValue::from_static(REALM_WRONG_CREDENTIALS)) =>
        {
            stats.failed_logins += 1
        }
        _ => {}
    }
    response
}

fn answer(control: &Control, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Response) {
    if !is_xml(headers) {
        tracing::info!(
            status = 415,
            "authentication refused: content type is not application/xml"
        );
        return empty(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let id = match form::parse(body, &control.0.form) {
        Ok(id) => id,
        Err(e) => {
            tracing::info!(status = 422, reason = %e, "authentication refused by the form checks");
            return empty(StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    if id.nom == KABOOM {
        tracing::info!(status = 500, "kaboom");
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let decision = control
        .declarants()
        .authenticate(&id, control.0.lock_threshold);
    tracing::info!(siret = %id.siret, service = %id.service, ?decision, "authentication decided");
    match decision {
        Decision::Granted { declarant, service } => granted(control, declarant, service),
        Decision::WrongCredentials => refused(REALM_WRONG_CREDENTIALS),
        Decision::PasswordExpired => refused(REALM_PASSWORD_EXPIRED),
        Decision::NotRegistered => match control.0.not_registered {
            NotRegisteredAnswer::Realm => refused(REALM_NOT_REGISTERED),
            NotRegisteredAnswer::WrongCredentials => refused(REALM_WRONG_CREDENTIALS),
        },
        Decision::Locked => empty(StatusCode::FORBIDDEN),
    }
}

/// `application/xml`, parameters (a charset) allowed, case-insensitive.
fn is_xml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/xml"))
}

fn empty(status: StatusCode) -> (StatusCode, Response) {
    (status, status.into_response())
}

fn refused(realm: &'static str) -> (StatusCode, Response) {
    let status = StatusCode::UNAUTHORIZED;
    (
        status,
        (status, [(header::WWW_AUTHENTICATE, realm)]).into_response(),
    )
}

/// 200: a new token as `application/octet-stream` (as the simulator kit answers), its
/// expiry in `Expires`.
fn granted(control: &Control, declarant: u64, service: u8) -> (StatusCode, Response) {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::STANDARD.encode(raw);
    let now = control.clock().now();
    let lifetime = control.0.token_lifetime;
    control
        .tokens()
        .insert(&token, declarant, service, now, now + lifetime);
    let expires = httpdate::fmt_http_date(control.clock().now_system() + lifetime);
    let status = StatusCode::OK;
    let response = (
        status,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::EXPIRES, expires),
        ],
        token,
    )
        .into_response();
    (status, response)
}
