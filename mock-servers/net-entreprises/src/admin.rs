//! The control API (admin listener, bearer token checked by the kit):
//! - `GET /__admin/declarants`: every declarant's state;
//! - `POST /__admin/declarants`: adds one, answers `{"id": …}` (409 `already_exists` if
//!   the triple SIRET, nom, prénom is known, with its id);
//! - `GET /__admin/declarants/{id}`: its state, with `failed_attempts` and `locked`, never
//!   the password;
//! - `PATCH /__admin/declarants/{id}`: changes `motdepasse`, `services`,
//!   `password_expired`, `registered`;
//! - `POST /__admin/declarants/{id}/unlock`: clears the lock and the counter;
//! - `GET /__admin/stats`: the route's counters.
//!
//! `GET|POST /__admin/faults` come from the kit. Errors are the kit's
//! `{"error": code, "message": French sentence}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iea_mock_kit::{AdminError, AdminJson};
use serde_json::json;

use crate::Control;
use crate::declarants::{DeclarantChange, Duplicate, NewDeclarant};

pub fn routes(control: Control) -> Router {
    Router::new()
        .route("/__admin/declarants", get(list).post(add))
        .route("/__admin/declarants/{id}", get(show).patch(change))
        .route("/__admin/declarants/{id}/unlock", post(unlock))
        .route("/__admin/stats", get(stats))
        .with_state(control)
}

async fn list(State(control): State<Control>) -> Response {
    Json(control.declarants_list()).into_response()
}

async fn add(State(control): State<Control>, AdminJson(new): AdminJson<NewDeclarant>) -> Response {
    match control.add_declarant(new) {
        Ok(id) => {
            tracing::info!(declarant = id, "declarant added");
            (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
        }
        // The error of every control API, with the id of the declarant already there.
        Err(Duplicate(id)) => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": "already_exists",
                "message": format!("Un déclarant de même SIRET, nom et prénom existe déjà (n° {id})."),
                "id": id,
            })),
        )
            .into_response(),
    }
}

fn not_found(id: u64) -> Response {
    AdminError::not_found(format!("Le déclarant n° {id} est inconnu.")).into_response()
}

async fn show(State(control): State<Control>, Path(id): Path<u64>) -> Response {
    match control.declarant(id) {
        Some(state) => Json(state).into_response(),
        None => not_found(id),
    }
}

async fn change(
    State(control): State<Control>,
    Path(id): Path<u64>,
    AdminJson(change): AdminJson<DeclarantChange>,
) -> Response {
    match control.declarants().change(id, change) {
        Some(state) => {
            tracing::info!(declarant = id, "declarant changed");
            Json(state).into_response()
        }
        None => not_found(id),
    }
}

async fn unlock(State(control): State<Control>, Path(id): Path<u64>) -> Response {
    match control.unlock(id) {
        Some(state) => {
            tracing::info!(declarant = id, "declarant unlocked");
            Json(state).into_response()
        }
        None => not_found(id),
    }
}

async fn stats(State(control): State<Control>) -> Response {
    Json(control.stats()).into_response()
}
