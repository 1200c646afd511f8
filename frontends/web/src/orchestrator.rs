//! The orchestrator, as the console reaches it: one TLS channel (connected on first use,
//! reconnected by tonic), requests carrying the browser session's orchestrator token, and
//! the typed error of every call ([`WebError`]: the orchestrator's stable code and French
//! sentence, with the HTTP status that matches its gRPC code).

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use iea_proto::error::ApiError;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use utoipa::ToSchema;

use crate::Settings;

/// How long a connection attempt to the orchestrator may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one call may take (an access test or a verification can take tens of
/// seconds; streams only until their first answer).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(150);

#[derive(Clone)]
pub struct Orchestrator {
    channel: Channel,
}

impl Orchestrator {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let tls =
            iea_runtime::tls::front_end_config(&settings.ca, &settings.orchestrator_server_name)?;
        let channel = Endpoint::from_shared(format!("https://{}", settings.orchestrator))?
            .tls_config(tls)?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        Ok(Self { channel })
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// `msg` with the orchestrator session token attached.
pub fn authed<T>(token: &SecretString, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {}", token.expose_secret()).parse() {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// An error as the console answers it: JSON `{"error":{"code","message"}}` from the API,
/// a page with the same code and sentence from the views.
#[derive(Debug, Clone)]
pub struct WebError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

/// The body of every error of the JSON API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct ErrorDetail {
    /// Stable code (English, snake_case), the orchestrator's when it decided.
    #[schema(example = "unauthenticated")]
    pub code: String,
    /// French sentence for a person.
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Vous devez vous connecter à la console iea-connect.",
        )
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_token_invalid",
            "La demande a été refusée : le jeton anti-falsification manque ou ne correspond pas à votre session. Rechargez la page et recommencez.",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// The console's own failure (500), its cause logged by the caller; the sentence the
    /// orchestrator gives for its own.
    pub fn internal() -> Self {
        let e = ApiError::internal();
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, &e.code, e.message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.clone(),
                message: self.message.clone(),
            },
        }
    }
}

/// HTTP status for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::BAD_GATEWAY,
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        Self {
            status: http_status(e.status),
            code: e.code,
            message: e.message,
        }
    }
}

impl From<tonic::Status> for WebError {
    fn from(s: tonic::Status) -> Self {
        if matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Internal) {
            tracing::warn!(code = ?s.code(), error = %s.message(), "orchestrator call failed");
        }
        ApiError::from_status(&s).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// A timestamp as RFC 3339 UTC, for programs.
pub fn rfc3339(t: &prost_types::Timestamp) -> String {
    iea_fr_time::from_unix(t.seconds).to_string()
}

/// A timestamp in French words, Paris time, for people.
pub fn french(t: &prost_types::Timestamp) -> String {
    iea_fr_time::date_time_unix(t.seconds)
}

/// Whole milliseconds of a protobuf duration ([`iea_proto::millis`]), never below zero.
pub fn millis(d: &prost_types::Duration) -> u64 {
    iea_proto::millis(d).max(0) as u64
}
