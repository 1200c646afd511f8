//! « Mises à jour »: the installed version and the newer releases (« Rechercher les mises
//! à jour »), each release's « Lisez-moi », « Mettre à jour Impact Emploi maintenant »
//! with a progress bar (the orchestrator's progress stream, followed by a task of the
//! console and shown live by `console.js` from `/api/v1/updates/events`), and the
//! maintenance scripts waiting to be applied.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use iea_proto::v1::updates_client::UpdatesClient;
use iea_proto::v1::{
    ApplyPendingScriptsRequest, ApplyUpdateRequest, CheckUpdatesRequest, GetReleaseNotesRequest,
    ListPendingScriptsRequest, MaintenanceScript, ReleaseNotes, ScriptState, UpdateCheck,
    UpdatePhase, UpdateProgress,
};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::Instrument;
use utoipa::ToSchema;

use super::{csrf_field, error_page, notice, ok, page};
use crate::AppState;
use crate::jobs::JobState;
use crate::orchestrator::{ErrorDetail, WebError, authed, french, rfc3339};
use crate::sessions::Current;

/// Updates are the installation's: one at a time, whoever started it.
pub const JOB_KEY: &str = "installation";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mises-a-jour", get(show))
        .route("/mises-a-jour/lisez-moi", get(notes_page))
        .route("/mises-a-jour/appliquer", post(apply))
        .route("/mises-a-jour/scripts", post(apply_scripts))
}

/// A release newer than the installed version.
#[derive(Serialize, ToSchema, Clone)]
pub struct ReleaseView {
    pub version: String,
    /// RFC 3339 UTC.
    pub published_at: Option<String>,
    /// In French, Paris time.
    pub published_fr: Option<String>,
    /// Size of the package in bytes.
    pub package_length: u64,
    pub script_count: u32,
    pub notes_available: bool,
}

/// « Rechercher les mises à jour ».
#[derive(Serialize, ToSchema)]
pub struct UpdateCheckView {
    pub installed_version: String,
    /// Newer releases, oldest first.
    pub available: Vec<ReleaseView>,
    /// Set when the installed version is below what the server requires.
    pub minimum_version: Option<String>,
}

impl From<UpdateCheck> for UpdateCheckView {
    fn from(c: UpdateCheck) -> Self {
        Self {
            installed_version: c.installed_version,
            minimum_version: Some(c.minimum_version).filter(|v| !v.is_empty()),
            available: c
                .available
                .into_iter()
                .map(|r| ReleaseView {
                    published_at: r.published_at.as_ref().map(rfc3339),
                    published_fr: r.published_at.as_ref().map(french),
                    version: r.version,
                    package_length: r.package_length,
                    script_count: r.script_count,
                    notes_available: r.notes_available,
                })
                .collect(),
        }
    }
}

/// « Lisez-moi » of a release.
#[derive(Serialize, ToSchema)]
pub struct ReleaseNotesView {
    pub version: String,
    /// Plain text.
    pub text: String,
}

/// A maintenance script.
#[derive(Serialize, ToSchema)]
pub struct ScriptView {
    pub name: String,
    pub version: String,
    /// `pending` or `applied`.
    pub state: String,
    pub applied_at: Option<String>,
}

pub fn script_view(s: &MaintenanceScript) -> ScriptView {
    ScriptView {
        name: s.name.clone(),
        version: s.version.clone(),
        state: match ScriptState::try_from(s.state).unwrap_or(ScriptState::Unspecified) {
            ScriptState::Applied => "applied",
            ScriptState::Pending => "pending",
            ScriptState::Unspecified => "unspecified",
        }
        .to_owned(),
        applied_at: s.applied_at.as_ref().map(rfc3339),
    }
}

/// An update being applied, or the last one.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct UpdateJobView {
    /// `idle` (none since the console started), `running`, `done` or `failed`.
    pub state: String,
    /// The version asked for (empty: the newest).
    pub version: String,
    /// `metadata`, `download`, `verify`, `stage`, `switch`, `start_check`, `scripts`,
    /// `done`, or empty before the first step.
    pub phase: String,
    /// The phase in French.
    pub phase_label: String,
    /// Of the whole update, 0 to 100.
    pub percent: u8,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub bytes_per_second: u64,
    pub seconds_remaining: u32,
    /// French sentence of the last step.
    pub message: String,
    /// Once done: the version now installed.
    pub installed_version: Option<String>,
    /// Once failed: why.
    pub error: Option<ErrorDetail>,
}

impl JobState for UpdateJobView {
    fn idle() -> Self {
        Self {
            state: "idle".to_owned(),
            version: String::new(),
            phase: String::new(),
            phase_label: String::new(),
            percent: 0,
            bytes_done: 0,
            bytes_total: 0,
            bytes_per_second: 0,
            seconds_remaining: 0,
            message: String::new(),
            installed_version: None,
            error: None,
        }
    }

    fn finished(&self) -> bool {
        self.state != "running"
    }
}

pub fn phase_label(p: UpdatePhase) -> &'static str {
    match p {
        UpdatePhase::Metadata => "Lecture des métadonnées signées",
        UpdatePhase::Download => "Téléchargement",
        UpdatePhase::Verify => "Vérification du paquet",
        UpdatePhase::Stage => "Préparation de la nouvelle version",
        UpdatePhase::Switch => "Bascule vers la nouvelle version",
        UpdatePhase::StartCheck => "Vérification du premier démarrage",
        UpdatePhase::Scripts => "Scripts de maintenance",
        UpdatePhase::Done => "Terminé",
        UpdatePhase::Unspecified => "",
    }
}

/// The share of the whole update reached at a step: the download weighs most, by its
/// bytes.
pub fn percent(p: &UpdateProgress) -> u8 {
    let phase = UpdatePhase::try_from(p.phase).unwrap_or(UpdatePhase::Unspecified);
    let (start, end) = match phase {
        UpdatePhase::Unspecified => (0, 0),
        UpdatePhase::Metadata => (0, 5),
        UpdatePhase::Download => (5, 80),
        UpdatePhase::Verify => (80, 85),
        UpdatePhase::Stage => (85, 90),
        UpdatePhase::Switch => (90, 93),
        UpdatePhase::StartCheck => (93, 96),
        UpdatePhase::Scripts => (96, 99),
        UpdatePhase::Done => return 100,
    };
    let fraction = if p.bytes_total > 0 {
        (p.bytes_done.min(p.bytes_total) as f64) / (p.bytes_total as f64)
    } else {
        0.0
    };
    (start as f64 + (end - start) as f64 * fraction).round() as u8
}

fn step(mut job: UpdateJobView, p: &UpdateProgress) -> UpdateJobView {
    let phase = UpdatePhase::try_from(p.phase).unwrap_or(UpdatePhase::Unspecified);
    job.phase = phase
        .as_str_name()
        .trim_start_matches("UPDATE_PHASE_")
        .to_ascii_lowercase();
    job.phase_label = phase_label(phase).to_owned();
    // Never backwards, whatever order the steps come in.
    job.percent = job.percent.max(percent(p)).min(99);
    job.bytes_done = p.bytes_done;
    job.bytes_total = p.bytes_total;
    job.bytes_per_second = p.bytes_per_second;
    job.seconds_remaining = p.seconds_remaining;
    if !p.message.is_empty() {
        job.message = p.message.clone();
    }
    job
}

fn failed(mut job: UpdateJobView, e: WebError) -> UpdateJobView {
    job.state = "failed".to_owned();
    job.message = e.message.clone();
    job.error = Some(ErrorDetail {
        code: e.code,
        message: e.message,
    });
    job
}

pub async fn check(state: &AppState, current: &Current) -> Result<UpdateCheck, WebError> {
    Ok(UpdatesClient::new(state.orchestrator.channel())
        .check_updates(authed(&current.session.token, CheckUpdatesRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "CheckUpdates"))
        .await?
        .into_inner())
}

pub async fn notes(
    state: &AppState,
    current: &Current,
    version: &str,
) -> Result<ReleaseNotes, WebError> {
    Ok(UpdatesClient::new(state.orchestrator.channel())
        .get_release_notes(authed(
            &current.session.token,
            GetReleaseNotesRequest {
                version: version.to_owned(),
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "GetReleaseNotes"))
        .await?
        .into_inner())
}

pub async fn pending_scripts(
    state: &AppState,
    current: &Current,
) -> Result<Vec<MaintenanceScript>, WebError> {
    Ok(UpdatesClient::new(state.orchestrator.channel())
        .list_pending_scripts(authed(&current.session.token, ListPendingScriptsRequest {}))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "ListPendingScripts"
        ))
        .await?
        .into_inner()
        .scripts)
}

pub async fn run_scripts(
    state: &AppState,
    current: &Current,
) -> Result<Vec<MaintenanceScript>, WebError> {
    Ok(UpdatesClient::new(state.orchestrator.channel())
        .apply_pending_scripts(authed(
            &current.session.token,
            ApplyPendingScriptsRequest {},
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "ApplyPendingScripts"
        ))
        .await?
        .into_inner()
        .applied)
}

/// Starts applying `version` (empty: the newest): the orchestrator refuses at once what
/// it would not do (nothing to apply, consultation...); otherwise a task follows its
/// progress into the job board until the end. A second start while one runs is refused.
pub async fn start(
    state: &AppState,
    current: &Current,
    version: &str,
) -> Result<Arc<UpdateJobView>, WebError> {
    let mut initial = UpdateJobView::idle();
    initial.state = "running".to_owned();
    initial.version = version.to_owned();
    initial.message = "Mise à jour en cours de démarrage.".to_owned();
    let tx = state.updates.start(JOB_KEY, initial.clone()).map_err(|_| {
        WebError::new(
            StatusCode::CONFLICT,
            "update_in_progress",
            "Une mise à jour est déjà en cours : attendez qu'elle se termine.",
        )
    })?;
    let stream = UpdatesClient::new(state.orchestrator.channel())
        .apply_update(authed(
            &current.session.token,
            ApplyUpdateRequest {
                version: version.to_owned(),
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "ApplyUpdate"))
        .await;
    let stream = match stream {
        Ok(s) => s.into_inner(),
        Err(e) => {
            let e = WebError::from(e);
            tx.send_replace(Arc::new(failed(initial, e.clone())));
            return Err(e);
        }
    };
    tracing::info!(user = %current.session.user, version, "update started from the web console");
    let task = follow(
        state.clone(),
        current.session.token.clone(),
        tx.clone(),
        initial,
        stream,
    );
    tokio::spawn(task.instrument(tracing::info_span!("update_job")));
    let now = tx.borrow().clone();
    Ok(now)
}

async fn follow(
    state: AppState,
    token: SecretString,
    tx: watch::Sender<Arc<UpdateJobView>>,
    mut job: UpdateJobView,
    stream: tonic::Streaming<UpdateProgress>,
) {
    let shutdown = state.shutdown.clone();
    let mut stream = Box::pin(stream.take_until(async move { shutdown.wait().await }));
    let mut done = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(p) => {
                done = p.phase == UpdatePhase::Done as i32;
                job = step(job, &p);
                tx.send_replace(Arc::new(job.clone()));
            }
            Err(e) => {
                tx.send_replace(Arc::new(failed(job, WebError::from(e))));
                return;
            }
        }
    }
    if !done {
        let e = WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "update_interrupted",
            "La mise à jour a été interrompue avant sa fin : recherchez les mises à jour pour voir la version installée, puis recommencez.",
        );
        tx.send_replace(Arc::new(failed(job, e)));
        return;
    }
    let installed = UpdatesClient::new(state.orchestrator.channel())
        .check_updates(authed(&token, CheckUpdatesRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "CheckUpdates"))
        .await
        .map(|r| r.into_inner().installed_version);
    job.state = "done".to_owned();
    job.percent = 100;
    job.phase = "done".to_owned();
    job.phase_label = phase_label(UpdatePhase::Done).to_owned();
    match installed {
        Ok(v) => {
            job.message = format!("Mise à jour terminée : Impact emploi {v} est installé.");
            job.installed_version = Some(v);
        }
        Err(e) => {
            tracing::warn!(code = ?e.code(), "installed version not read after the update");
            job.message = "Mise à jour terminée.".to_owned();
        }
    }
    tx.send_replace(Arc::new(job));
}

/// The progress section; `console.js` finds it by its id and fields.
pub fn progress_panel(job: &UpdateJobView) -> Markup {
    html! {
        section id="update-progress" data-state=(job.state) hidden[job.state == "idle"] {
            h2 { "Progression de la mise à jour" }
            progress id="update-bar" max="100" value=(job.percent) { (job.percent) " %" }
            div { span data-field="percent" { (job.percent) } " % — " span data-field="phase_label" { (job.phase_label) } }
            div data-field="message" { (job.message) }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    message: Option<String>,
}

async fn render(state: &AppState, current: &Current, message: Option<(&str, String)>) -> Response {
    let checked = match check(state, current).await {
        Ok(c) => UpdateCheckView::from(c),
        Err(e) => return error_page(&e, Some(current)),
    };
    let scripts = match pending_scripts(state, current).await {
        Ok(s) => s,
        Err(e) => return error_page(&e, Some(current)),
    };
    let job = state.updates.current(JOB_KEY);
    let running = job.state == "running";
    let body = html! {
        @if let Some((kind, text)) = &message { (notice(kind, text)) }
        section {
            p { "Version installée : " strong id="installed-version" { (checked.installed_version) } }
            @if let Some(min) = &checked.minimum_version {
                p class="warning" { "Le serveur demande au moins la version " (min) " : la mise à jour est obligatoire." }
            }
            form method="get" action="/mises-a-jour" class="inline" {
                button type="submit" id="check-updates" { "Rechercher les mises à jour" }
            }
        }
        section id="releases" {
            h2 { "Versions disponibles" }
            @if checked.available.is_empty() {
                p id="up-to-date" { "Impact emploi est à jour." }
            } @else {
                table {
                    thead { tr { th { "Version" } th { "Publiée le" } th { "Taille" } th { "Scripts" } th {} } }
                    tbody {
                        @for r in &checked.available {
                            tr data-version=(r.version) {
                                td { (r.version) }
                                td { (r.published_fr.as_deref().unwrap_or("")) }
                                td { (iea_fr_time::size(r.package_length)) }
                                td { (r.script_count) }
                                td {
                                    @if r.notes_available {
                                        a href={ "/mises-a-jour/lisez-moi?version=" (r.version) } { "Lisez-moi" }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/mises-a-jour/appliquer" {
                    (csrf_field(current))
                    input type="hidden" name="version" value="";
                    button type="submit" id="apply-update" disabled[running] { "Mettre à jour Impact Emploi maintenant" }
                }
            }
        }
        (progress_panel(&job))
        section id="scripts" {
            h2 { "Scripts de maintenance en attente" }
            @if scripts.is_empty() {
                p class="muted" { "Aucun script en attente." }
            } @else {
                table {
                    thead { tr { th { "Script" } th { "Version" } } }
                    tbody {
                        @for s in &scripts {
                            tr { td { (s.name) } td { (s.version) } }
                        }
                    }
                }
                form method="post" action="/mises-a-jour/scripts" {
                    (csrf_field(current))
                    button type="submit" id="apply-scripts" { "Appliquer les scripts en attente" }
                }
            }
        }
    };
    ok(page("Mises à jour", Some(current), body))
}

async fn show(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let message = q
        .message
        .filter(|m| m == "started")
        .map(|_| ("notice", "La mise à jour a démarré.".to_owned()));
    render(&state, &current, message).await
}

#[derive(Deserialize)]
pub struct NotesQuery {
    #[serde(default)]
    version: String,
}

async fn notes_page(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Query(q): Query<NotesQuery>,
) -> Response {
    match notes(&state, &current, &q.version).await {
        Ok(n) => ok(page(
            &format!("Lisez-moi — version {}", n.version),
            Some(&current),
            html! {
                section { pre id="release-notes" { (n.text) } }
                p { a href="/mises-a-jour" { "Retour aux mises à jour" } }
            },
        )),
        Err(e) => error_page(&e, Some(&current)),
    }
}

#[derive(Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    version: String,
}

async fn apply(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<ApplyForm>,
) -> Response {
    match start(&state, &current, &f.version).await {
        Ok(_) => Redirect::to("/mises-a-jour?message=started").into_response(),
        Err(e) => render(&state, &current, Some(("error", e.message))).await,
    }
}

async fn apply_scripts(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Response {
    let message = match run_scripts(&state, &current).await {
        Ok(applied) if applied.is_empty() => {
            ("notice", "Aucun script n'a été appliqué.".to_owned())
        }
        Ok(applied) => (
            "notice",
            format!(
                "Scripts appliqués : {}.",
                applied
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => ("error", e.message),
    };
    render(&state, &current, Some(message)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_follows_the_phases_and_the_bytes() {
        let p = |phase: UpdatePhase, done, total| UpdateProgress {
            phase: phase as i32,
            bytes_done: done,
            bytes_total: total,
            ..Default::default()
        };
        assert_eq!(percent(&p(UpdatePhase::Metadata, 0, 0)), 0);
        assert_eq!(percent(&p(UpdatePhase::Download, 0, 100)), 5);
        assert_eq!(percent(&p(UpdatePhase::Download, 50, 100)), 43);
        assert_eq!(percent(&p(UpdatePhase::Download, 100, 100)), 80);
        assert_eq!(percent(&p(UpdatePhase::Scripts, 0, 0)), 96);
        assert_eq!(percent(&p(UpdatePhase::Done, 0, 0)), 100);
        // Never backwards, and 100 only once done.
        let job = step(UpdateJobView::idle(), &p(UpdatePhase::Download, 100, 100));
        let job = step(job, &p(UpdatePhase::Metadata, 0, 0));
        assert_eq!(job.percent, 80);
        let job = step(job, &p(UpdatePhase::Done, 0, 0));
        assert_eq!(job.percent, 99, "100 once the installed version is read");
        assert_eq!(job.phase, "done");
    }
}
