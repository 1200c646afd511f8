//! The control API (admin listener, bearer token checked by the kit):
//! - `GET /__admin/declarants`: every declarant's state;
//! - `POST /__admin/declarants`: adds one, answers `{"id": …}` (409 `already_exists` if
//!   the triple SIRET, nom, prénom is known, with its id);
//! - `GET /__admin/declarants/{id}`: its state, with `failed_attempts` and `locked`, never
//!   the password;
//! - `PATCH /__admin/declarants/{id}`: changes `motdepasse`, `services`,
//!   `password_expired`, `registered`;
//! - `POST /__admin/declarants/{id}/unlock`: clears the lock and the counter;
//! - `GET /__admin/stats`: the counters, per service path;
//! - `GET /__admin/deposits`, `GET /__admin/deposits/{idflux}`: the deposits registered;
//! - `POST /__admin/tokens/expire`: every token given so far (or one declarant's) expires;
//! - `GET|POST /__admin/clock`: the mock's clock, moved by `advance_secs`.
//!
//! `GET|POST /__admin/faults` are in `faults` (the kit's faults and the deposit's). Errors
//! are the kit's `{"error": code, "message": French sentence}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iea_mock_kit::{AdminError, AdminJson};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::Control;
use crate::declarants::{DeclarantChange, Duplicate, NewDeclarant};

pub fn routes(control: Control) -> Router {
    Router::new()
        .route("/__admin/declarants", get(list).post(add))
        .route("/__admin/declarants/{id}", get(show).patch(change))
        .route("/__admin/declarants/{id}/unlock", post(unlock))
        .route("/__admin/stats", get(stats))
        .route("/__admin/deposits", get(deposits))
        .route("/__admin/deposits/{idflux}", get(deposit))
        .route("/__admin/tokens/expire", post(expire_tokens))
        .route("/__admin/clock", get(clock).post(move_clock))
        .with_state(control)
}

async fn deposits(State(control): State<Control>) -> Response {
    Json(control.deposits_list()).into_response()
}

async fn deposit(State(control): State<Control>, Path(idflux): Path<String>) -> Response {
    match control.deposit(&idflux) {
        Some(d) => Json(d).into_response(),
        None => AdminError::not_found(format!("Le dépôt {idflux} est inconnu.")).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireTokens {
    /// Only this declarant's tokens; all when absent.
    #[serde(default)]
    declarant: Option<u64>,
}

async fn expire_tokens(
    State(control): State<Control>,
    AdminJson(body): AdminJson<ExpireTokens>,
) -> Response {
    if let Some(id) = body.declarant
        && control.declarant(id).is_none()
    {
        return not_found(id);
    }
    let expired = control.expire_tokens(body.declarant);
    tracing::info!(expired, declarant = ?body.declarant, "tokens expired");
    Json(json!({ "expired": expired })).into_response()
}

fn clock_state(control: &Control) -> Response {
    let now = control.clock().now();
    Json(json!({
        "now": now.format(&Rfc3339).unwrap_or_default(),
        "offset_secs": control.clock().offset().whole_seconds(),
    }))
    .into_response()
}

async fn clock(State(control): State<Control>) -> Response {
    clock_state(&control)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveClock {
    /// Seconds to move the clock by (negative goes back).
    advance_secs: i64,
}

async fn move_clock(
    State(control): State<Control>,
    AdminJson(body): AdminJson<MoveClock>,
) -> Response {
    let offset = control
        .clock()
        .advance(time::Duration::seconds(body.advance_secs));
    tracing::info!(offset_secs = offset.whole_seconds(), "clock moved");
    clock_state(&control)
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
