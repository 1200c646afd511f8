//! Errors of the control APIs, the same for every mock: a status and
//! `{"error": "<code>", "message": "<French sentence>"}`, also for a body that is not the
//! JSON expected ([`AdminJson`], rather than axum's plain-text rejection).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An error of a control API.
#[derive(Debug, Serialize)]
pub struct AdminError {
    #[serde(skip)]
    status: StatusCode,
    /// Stable English code: `invalid_input`, `not_found`, `internal`, …
    error: &'static str,
    /// French sentence.
    message: String,
}

impl AdminError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            message: message.into(),
        }
    }

    /// 400 `invalid_input`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 `internal`, logged.
    pub fn internal(e: anyhow::Error) -> Self {
        tracing::error!(error = format!("{e:#}"), "admin call failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("Échec de l'opération : {e:#}"),
        )
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self)).into_response()
    }
}

/// A JSON request body; one that cannot be read as `T` is answered 400 `invalid_input`
/// with serde's reason.
#[derive(Debug)]
pub struct AdminJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AdminError> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| AdminError::invalid(format!("Corps de la requête illisible : {e}")))?;
        serde_json::from_slice(&body)
            .map(AdminJson)
            .map_err(|e| AdminError::invalid(format!("Corps JSON invalide : {e}")))
    }
}
