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
//! - `GET|POST /__admin/clock`: the mock's clock, moved by `advance_secs`;
//! - `GET /__admin/returns`: every return planned or published;
//! - `POST /__admin/returns/publish`: publishes every return still to come;
//! - `POST /__admin/returns/{idflux}/{id}/overwrite`: a new version (status, id, dates);
//! - `POST /__admin/returns/{idflux}/{id}/purge`: no longer downloadable;
//! - `GET /__admin/pas-rates`, `PUT /__admin/pas-rates/{nir}`: the CRM's rate table.
//!
//! `GET|POST /__admin/faults` are in `faults` (the kit's faults and the deposit's). Errors
//! are the kit's `{"error": code, "message": French sentence}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use iea_mock_kit::{AdminError, AdminJson};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::Control;
use crate::declarants::{DeclarantChange, Duplicate, NewDeclarant};
use crate::returns::{NewVersion, PasRate};

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
        .route("/__admin/returns", get(returns))
        .route("/__admin/returns/publish", post(publish_returns))
        .route(
            "/__admin/returns/{idflux}/{id}/overwrite",
            post(overwrite_return),
        )
        .route("/__admin/returns/{idflux}/{id}/purge", post(purge_return))
        .route("/__admin/pas-rates", get(pas_rates))
        .route("/__admin/pas-rates/{nir}", put(set_pas_rate))
        .with_state(control)
}

async fn returns(State(control): State<Control>) -> Response {
    Json(control.returns_list().await).into_response()
}

async fn publish_returns(State(control): State<Control>) -> Response {
    let published = control.publish_returns().await;
    tracing::info!(published, "returns published");
    Json(json!({ "published": published })).into_response()
}

async fn overwrite_return(
    State(control): State<Control>,
    Path((idflux, id)): Path<(String, String)>,
    AdminJson(body): AdminJson<NewVersion>,
) -> Response {
    if !["OK", "ANO", "KO", "EN COURS"].contains(&body.statut.as_str()) {
        return AdminError::invalid(format!(
            "Statut « {} » inconnu : OK, ANO, KO ou EN COURS.",
            body.statut
        ))
        .into_response();
    }
    match control.overwrite_return(&idflux, &id, body).await {
        Some(view) => {
            tracing::info!(idflux = %idflux, old = %id, new = %view.id, "return overwritten");
            Json(view).into_response()
        }
        None => return_not_found(&idflux, &id),
    }
}

fn return_not_found(idflux: &str, id: &str) -> Response {
    AdminError::not_found(format!(
        "Aucun retour courant n° {id} pour le dépôt {idflux}."
    ))
    .into_response()
}

async fn purge_return(
    State(control): State<Control>,
    Path((idflux, id)): Path<(String, String)>,
) -> Response {
    if control.purge_return(&idflux, &id).await {
        tracing::info!(idflux = %idflux, id = %id, "return purged");
        Json(json!({ "purged": true })).into_response()
    } else {
        return_not_found(&idflux, &id)
    }
}

async fn pas_rates(State(control): State<Control>) -> Response {
    Json(control.pas_rates()).into_response()
}

async fn set_pas_rate(
    State(control): State<Control>,
    Path(nir): Path<String>,
    AdminJson(rate): AdminJson<PasRate>,
) -> Response {
    if nir.is_empty() || nir.chars().count() > 40 {
        return AdminError::invalid("Le NIR (ou NTT) doit faire de 1 à 40 caractères.")
            .into_response();
    }
    if let Some(problem) = rate.problem() {
        return AdminError::invalid(problem).into_response();
    }
    control.set_pas_rate(nir, rate.clone());
    // The NIR and the rate are personal data: not logged.
    tracing::info!("withholding rate set");
    Json(rate).into_response()
}

async fn deposits(State(control): State<Control>) -> Response {
    Json(control.deposits_list().await).into_response()
}

async fn deposit(State(control): State<Control>, Path(idflux): Path<String>) -> Response {
    match control.deposit(&idflux).await {
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
    control.advance_clock_secs(body.advance_secs);
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
