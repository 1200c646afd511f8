//! Fault injection shared by the mocks.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    #[default]
    None,
    /// 503 with an empty body.
    Unavailable,
    /// Every answer is delayed by `delay_ms`.
    Slow,
    /// New connections are closed at once, before any byte is answered.
    Reset,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    pub mode: FaultMode,
    #[serde(default)]
    pub delay_ms: u64,
    /// The HTTPS (default) port stops accepting connections while the plain HTTP port
    /// keeps answering.
    #[serde(default)]
    pub close_default_port: bool,
}

/// The current faults of one mock, shared by its listeners and its admin API.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<RwLock<FaultSettings>>);

impl Faults {
    pub fn get(&self) -> FaultSettings {
        self.0.read().expect("faults lock").clone()
    }

    pub fn set(&self, settings: FaultSettings) {
        *self.0.write().expect("faults lock") = settings;
    }

    /// `GET|POST /__admin/faults`, to merge into a mock's admin router.
    pub fn admin_routes(&self) -> Router {
        Router::new()
            .route("/__admin/faults", get(get_faults).post(set_faults))
            .with_state(self.clone())
    }

    /// Applies `unavailable` and `slow` to a service request.
    pub(crate) async fn layer(State(faults): State<Faults>, req: Request, next: Next) -> Response {
        let f = faults.get();
        match f.mode {
            FaultMode::Unavailable => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            FaultMode::Slow => tokio::time::sleep(Duration::from_millis(f.delay_ms)).await,
            FaultMode::None | FaultMode::Reset => {}
        }
        next.run(req).await
    }
}

async fn get_faults(State(faults): State<Faults>) -> Json<FaultSettings> {
    Json(faults.get())
}

async fn set_faults(
    State(faults): State<Faults>,
    crate::AdminJson(settings): crate::AdminJson<FaultSettings>,
) -> Json<FaultSettings> {
    tracing::info!(?settings, "faults changed");
    faults.set(settings.clone());
    Json(settings)
}
