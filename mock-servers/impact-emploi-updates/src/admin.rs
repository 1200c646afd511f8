//! The control API under `/__admin/` (the kit adds the bearer check and the faults):
//! the trusted root, releases, key rotation, expiry, attack modes, transfer options and
//! counters.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use iea_mock_kit::{AdminError, AdminJson};
use serde::Deserialize;

use crate::attack::{self, Attack};
use crate::keys::Role;
use crate::release::ReleaseSpec;
use crate::repo::Expiry;
use crate::service::{Shared, Transfer};

pub fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/__admin/root", get(get_root))
        .route("/__admin/releases", get(list_releases).post(publish))
        .route("/__admin/republish", post(republish))
        .route("/__admin/rotate", post(rotate))
        .route("/__admin/expiry", get(get_expiry).put(put_expiry))
        .route("/__admin/attack", get(get_attack).post(set_attack))
        .route("/__admin/transfer", get(get_transfer).put(put_transfer))
        .route("/__admin/metadata", get(get_versions))
        .route("/__admin/stats", get(get_stats))
        .route("/__admin/stats/reset", post(reset_stats))
        .with_state(shared)
}

async fn get_root(State(s): State<Shared>) -> Response {
    let root = s.repo.lock().await.latest_root();
    ([(header::CONTENT_TYPE, "application/json")], root).into_response()
}

async fn list_releases(State(s): State<Shared>) -> Response {
    axum::Json(s.repo.lock().await.releases()).into_response()
}

async fn publish(
    State(s): State<Shared>,
    AdminJson(spec): AdminJson<ReleaseSpec>,
) -> Result<Response, AdminError> {
    let mut repo = s.repo.lock().await;
    let view = repo.publish(spec).await.map_err(AdminError::internal)?;
    // An attack in force keeps its overlay on top of the new release.
    let attack = repo.attack.clone();
    if !attack.is_none() {
        attack::set(&mut repo, attack)
            .await
            .map_err(AdminError::internal)?;
    }
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

async fn republish(State(s): State<Shared>) -> Result<Response, AdminError> {
    let mut repo = s.repo.lock().await;
    repo.sign_honest().await.map_err(AdminError::internal)?;
    Ok(axum::Json(repo.versions).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    role: Role,
}

async fn rotate(
    State(s): State<Shared>,
    AdminJson(req): AdminJson<RotateRequest>,
) -> Result<Response, AdminError> {
    let mut repo = s.repo.lock().await;
    repo.rotate(req.role).await.map_err(AdminError::internal)?;
    Ok(axum::Json(repo.versions).into_response())
}

async fn get_expiry(State(s): State<Shared>) -> Response {
    axum::Json(s.repo.lock().await.expiry).into_response()
}

async fn put_expiry(
    State(s): State<Shared>,
    AdminJson(expiry): AdminJson<Expiry>,
) -> Result<Response, AdminError> {
    let mut repo = s.repo.lock().await;
    repo.expiry = expiry;
    repo.sign_honest().await.map_err(AdminError::internal)?;
    Ok(axum::Json(expiry).into_response())
}

async fn get_attack(State(s): State<Shared>) -> Response {
    axum::Json(s.repo.lock().await.attack.clone()).into_response()
}

async fn set_attack(
    State(s): State<Shared>,
    AdminJson(attack): AdminJson<Attack>,
) -> Result<Response, AdminError> {
    let mut repo = s.repo.lock().await;
    attack::set(&mut repo, attack.clone())
        .await
        .map_err(AdminError::internal)?;
    Ok(axum::Json(attack).into_response())
}

async fn get_transfer(State(s): State<Shared>) -> Response {
    let t = s.transfer.read().map(|t| *t).unwrap_or_default();
    axum::Json(t).into_response()
}

async fn put_transfer(
    State(s): State<Shared>,
    AdminJson(t): AdminJson<Transfer>,
) -> Result<Response, AdminError> {
    if let Ok(mut w) = s.transfer.write() {
        *w = t;
    }
    tracing::info!(?t, "transfer options changed");
    Ok(axum::Json(t).into_response())
}

async fn get_versions(State(s): State<Shared>) -> Response {
    axum::Json(s.repo.lock().await.versions).into_response()
}

async fn get_stats(State(s): State<Shared>) -> Response {
    axum::Json(s.stats.view()).into_response()
}

async fn reset_stats(State(s): State<Shared>) -> Response {
    s.stats.reset();
    axum::Json(s.stats.view()).into_response()
}
