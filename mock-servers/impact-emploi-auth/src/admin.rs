//! The control API under `/__admin/` (the kit adds the bearer check and the faults):
//! installations, minimum version, counters, and the support desk's daily password.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use iea_mock_kit::{AdminError, AdminJson};
use serde::{Deserialize, Serialize};

use crate::daily_password::{daily_password, format_date, paris_today, parse_date};
use crate::store::{Installation, InstallationPatch, InstallationView, NewInstallation, Store};

pub fn routes(store: Store) -> Router {
    Router::new()
        .route(
            "/__admin/installations",
            axum::routing::post(create_installation),
        )
        .route(
            "/__admin/installations/{id}",
            get(get_installation).patch(patch_installation),
        )
        .route(
            "/__admin/installations/{id}/daily-password",
            get(get_daily_password),
        )
        .route(
            "/__admin/minimum-version",
            get(get_minimum_version).put(put_minimum_version),
        )
        .route("/__admin/stats", get(get_stats))
        .with_state(store)
}

fn unknown(id: &str) -> AdminError {
    AdminError::not_found(format!("L'installation « {id} » est inconnue."))
}

async fn create_installation(
    State(store): State<Store>,
    AdminJson(new): AdminJson<NewInstallation>,
) -> Result<Response, AdminError> {
    let inst = Installation::try_from(new).map_err(|e| AdminError::invalid(e.to_string()))?;
    let view = InstallationView::from(&inst);
    let created = store.upsert(inst);
    tracing::info!(installation_id = %view.installation_id, status = ?view.status, created, "installation registered");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(view)).into_response())
}

async fn get_installation(
    State(store): State<Store>,
    Path(id): Path<String>,
) -> Result<axum::Json<InstallationView>, AdminError> {
    let inst = store.get(&id).ok_or_else(|| unknown(&id))?;
    Ok(axum::Json(InstallationView::from(&inst)))
}

async fn patch_installation(
    State(store): State<Store>,
    Path(id): Path<String>,
    AdminJson(patch): AdminJson<InstallationPatch>,
) -> Result<axum::Json<InstallationView>, AdminError> {
    let inst = store
        .patch(&id, patch)
        .map_err(|e| AdminError::invalid(e.to_string()))?
        .ok_or_else(|| unknown(&id))?;
    tracing::info!(installation_id = %id, status = ?inst.status, "installation changed");
    Ok(axum::Json(InstallationView::from(&inst)))
}

#[derive(Debug, Deserialize)]
struct DateQuery {
    date: Option<String>,
}

#[derive(Debug, Serialize)]
struct DailyPasswordView {
    installation_id: String,
    date: String,
    daily_password: String,
}

async fn get_daily_password(
    State(store): State<Store>,
    Path(id): Path<String>,
    Query(q): Query<DateQuery>,
) -> Result<axum::Json<DailyPasswordView>, AdminError> {
    let date = match q.date.as_deref() {
        None | Some("") => paris_today(),
        Some(text) => format_date(parse_date(text).ok_or_else(|| {
            AdminError::invalid(format!("« {text} » n'est pas une date AAAA-MM-JJ."))
        })?),
    };
    let inst = store.get(&id).ok_or_else(|| unknown(&id))?;
    let secret = inst.secret.ok_or_else(|| {
        AdminError::new(
            StatusCode::CONFLICT,
            "no_secret",
            format!(
                "L'installation « {id} » n'a pas de secret enregistré : aucun mot de passe du jour."
            ),
        )
    })?;
    tracing::info!(installation_id = %id, %date, "daily password given out");
    Ok(axum::Json(DailyPasswordView {
        daily_password: daily_password(&secret, &id, &date),
        installation_id: id,
        date,
    }))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MinimumVersion {
    /// `null` removes the minimum.
    minimum_version: Option<String>,
}

async fn get_minimum_version(State(store): State<Store>) -> axum::Json<MinimumVersion> {
    axum::Json(MinimumVersion {
        minimum_version: store.minimum_version().map(|v| v.to_string()),
    })
}

async fn put_minimum_version(
    State(store): State<Store>,
    AdminJson(req): AdminJson<MinimumVersion>,
) -> Result<axum::Json<MinimumVersion>, AdminError> {
    let version = req
        .minimum_version
        .as_deref()
        .map(str::parse::<iea_version::ImpactVersion>)
        .transpose()
        .map_err(|e| AdminError::invalid(e.to_string()))?;
    tracing::info!(minimum_version = ?req.minimum_version, "minimum version changed");
    store.set_minimum_version(version);
    Ok(axum::Json(req))
}

async fn get_stats(State(store): State<Store>) -> impl IntoResponse {
    axum::Json(store.stats().view())
}
