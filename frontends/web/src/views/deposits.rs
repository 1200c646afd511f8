//! « Déclarations DSN »: the deposits (newest first), one deposit with its anomalies and,
//! when its answer was lost, the listed flows it could be; upload a DSN file (checked by
//! the orchestrator before anything is recorded), settle an uncertain deposit (« C'est ce
//! dépôt » or « Renvoyer »). The file's content is never logged nor shown.

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Form, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::resolve_dsn_deposit_request::Resolution;
use iea_proto::v1::{
    DsnDeposit, DsnUpload, DsnUploadStart, GetDsnDepositRequest, ListDsnDepositsRequest,
    ResolveDsnDepositRequest,
};
use maud::html;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::{csrf_field, error_page, notice, ok, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed, french, rfc3339};
use crate::sessions::{Current, UPLOAD_LIMIT};

/// Bytes per upload message (the contract advises at most 1 MiB).
const CHUNK: usize = 512 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/declarations", get(show))
        .route("/declarations/deposer", post(upload_form))
        .route("/declarations/{id}", get(show_one))
        .route("/declarations/{id}/resoudre", post(resolve_form))
}

/// French name of a deposit's state.
pub fn state_label(state: &str) -> &str {
    match state {
        "received" => "Reçu",
        "checked" => "Contrôlé",
        "queued" => "En file d'attente",
        "waiting" => "En attente",
        "sending" => "En cours d'envoi",
        "accepted" => "Accepté",
        "rejected" => "Rejeté",
        "uncertain" => "Réponse perdue",
        "to_check" => "À vérifier",
        "failed" => "Échec",
        other => other,
    }
}

/// A deposit's anomaly (from the ARE).
#[derive(Serialize, ToSchema)]
pub struct AnomalyView {
    pub code: String,
    pub message: String,
}

/// A listed flow that could be the one whose answer was lost.
#[derive(Serialize, ToSchema)]
pub struct CandidateView {
    pub idflux: String,
    /// AAAAMMJJHHMMSS, as Net-entreprises lists it.
    pub date: String,
    pub statut: String,
}

/// A DSN deposit (never the file's content).
#[derive(Serialize, ToSchema)]
pub struct DepositView {
    pub id: i64,
    /// received, checked, queued, waiting, sending, accepted, rejected, uncertain,
    /// to_check, failed.
    pub state: String,
    /// The state in French.
    pub state_label: String,
    pub idflux: Option<String>,
    pub anomalies: Vec<AnomalyView>,
    /// French sentence on the current state.
    pub message: String,
    pub siret: String,
    /// YYYY-MM.
    pub month: String,
    pub kind: String,
    pub fraction: String,
    pub essai_reel: String,
    pub account: String,
    pub requested_by: String,
    pub file_name: String,
    pub sha256: String,
    pub bytes: u64,
    pub attempts: u32,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub candidates: Vec<CandidateView>,
    /// Nothing more happens to it without a person.
    pub settled: bool,
}

pub fn deposit_view(d: &DsnDeposit) -> DepositView {
    DepositView {
        id: d.id,
        state: d.state.clone(),
        state_label: state_label(&d.state).to_owned(),
        idflux: Some(d.idflux.clone()).filter(|s| !s.is_empty()),
        anomalies: d
            .anomalies
            .iter()
            .map(|a| AnomalyView {
                code: a.code.clone(),
                message: a.message.clone(),
            })
            .collect(),
        message: d.message.clone(),
        siret: d.siret.clone(),
        month: d.month.clone(),
        kind: d.kind.clone(),
        fraction: d.fraction.clone(),
        essai_reel: d.essai_reel.clone(),
        account: d.account.clone(),
        requested_by: d.requested_by.clone(),
        file_name: d.file_name.clone(),
        sha256: d.sha256.clone(),
        bytes: d.bytes,
        attempts: d.attempts,
        created_at: d.created_at.as_ref().map(rfc3339),
        updated_at: d.updated_at.as_ref().map(rfc3339),
        candidates: d
            .candidates
            .iter()
            .map(|c| CandidateView {
                idflux: c.idflux.clone(),
                date: c.date.clone(),
                statut: c.statut.clone(),
            })
            .collect(),
        settled: d.settled,
    }
}

pub async fn list(state: &AppState, current: &Current) -> Result<Vec<DsnDeposit>, WebError> {
    Ok(DepositsClient::new(state.orchestrator.channel())
        .list_deposits(authed(&current.session.token, ListDsnDepositsRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "ListDeposits"))
        .await?
        .into_inner()
        .deposits)
}

pub async fn get_one(state: &AppState, current: &Current, id: i64) -> Result<DsnDeposit, WebError> {
    Ok(DepositsClient::new(state.orchestrator.channel())
        .get_deposit(authed(&current.session.token, GetDsnDepositRequest { id }))
        .instrument(tracing::info_span!("orchestrator", rpc = "GetDeposit"))
        .await?
        .into_inner())
}

/// Sends a DSN file to the orchestrator, which checks it before recording anything.
pub async fn upload(
    state: &AppState,
    current: &Current,
    file_name: &str,
    user: &str,
    data: Vec<u8>,
) -> Result<DsnDeposit, WebError> {
    if data.is_empty() {
        return Err(WebError::invalid("Choisissez un fichier DSN à déposer."));
    }
    // Only the name, never a path the browser may have sent.
    let file_name = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let start = DsnUpload {
        start: Some(DsnUploadStart {
            file_name,
            total_size: data.len() as u64,
            user: user.trim().to_owned(),
        }),
        data: Vec::new(),
    };
    let chunks: Vec<DsnUpload> = std::iter::once(start)
        .chain(data.chunks(CHUNK).map(|c| DsnUpload {
            start: None,
            data: c.to_vec(),
        }))
        .collect();
    Ok(DepositsClient::new(state.orchestrator.channel())
        .deposit(authed(&current.session.token, tokio_stream::iter(chunks)))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "Deposit",
            bytes = data.len()
        ))
        .await?
        .into_inner())
}

pub async fn resolve(
    state: &AppState,
    current: &Current,
    id: i64,
    resolution: Resolution,
) -> Result<DsnDeposit, WebError> {
    Ok(DepositsClient::new(state.orchestrator.channel())
        .resolve_deposit(authed(
            &current.session.token,
            ResolveDsnDepositRequest {
                id,
                resolution: Some(resolution),
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "ResolveDeposit"))
        .await?
        .into_inner())
}

fn when(d: &DsnDeposit) -> String {
    d.created_at.as_ref().map(french).unwrap_or_default()
}

async fn render(state: &AppState, current: &Current, message: Option<(&str, String)>) -> Response {
    let deposits = match list(state, current).await {
        Ok(l) => l,
        Err(e) => return error_page(&e, Some(current)),
    };
    let body = html! {
        @if let Some((kind, text)) = &message { (notice(kind, text)) }
        section {
            h2 { "Déposer un fichier DSN" }
            form method="post" action="/declarations/deposer" enctype="multipart/form-data" {
                (csrf_field(current))
                label for="file" { "Fichier DSN" }
                input type="file" id="file" name="file" required;
                label for="deposit_user" { "Compte dont l'identité dépose (facultatif : celui désigné pour l'établissement)" }
                input type="text" id="deposit_user" name="user";
                div { button type="submit" id="deposit-button" { "Déposer" } }
            }
        }
        section {
            h2 { "Dépôts" }
            @if deposits.is_empty() {
                p class="muted" id="no-deposits" { "Aucun dépôt." }
            } @else {
                table id="deposits" {
                    thead { tr { th { "N°" } th { "Fichier" } th { "SIRET" } th { "Mois" } th { "État" } th { "Reçu le" } } }
                    tbody {
                        @for d in &deposits {
                            tr data-id=(d.id) data-state=(d.state) {
                                td { a href={ "/declarations/" (d.id) } { (d.id) } }
                                td { (d.file_name) }
                                td { (d.siret) }
                                td { (d.month) }
                                td class="state" { (state_label(&d.state)) }
                                td { (when(d)) }
                            }
                        }
                    }
                }
            }
        }
    };
    ok(page("Déclarations DSN", Some(current), body))
}

async fn show(State(state): State<AppState>, Extension(current): Extension<Current>) -> Response {
    render(&state, &current, None).await
}

fn render_one(current: &Current, d: &DsnDeposit, message: Option<(&str, String)>) -> Response {
    let resolvable = matches!(
        d.state.as_str(),
        "to_check" | "uncertain" | "waiting" | "failed"
    );
    let body = html! {
        @if let Some((kind, text)) = &message { (notice(kind, text)) }
        section id="deposit" data-state=(d.state) {
            table {
                tr { th { "État" } td class="state" { (state_label(&d.state)) } }
                tr { th { "Explication" } td class="message" { (d.message) } }
                @if !d.idflux.is_empty() { tr { th { "Identifiant du flux" } td class="idflux" { (d.idflux) } } }
                tr { th { "Fichier" } td { (d.file_name) " (" (super::updates::size(d.bytes)) ")" } }
                tr { th { "Établissement" } td { (d.siret) } }
                tr { th { "Mois déclaré" } td { (d.month) } }
                tr { th { "Compte qui dépose" } td { (d.account) } }
                tr { th { "Demandé par" } td { (d.requested_by) } }
                tr { th { "Tentatives" } td { (d.attempts) } }
                tr { th { "Reçu le" } td { (when(d)) } }
            }
        }
        @if !d.anomalies.is_empty() {
            section class="error" {
                h2 { "Anomalies" }
                ul { @for a in &d.anomalies { li { code { (a.code) } " — " (a.message) } } }
            }
        }
        @if resolvable {
            section id="resolve" {
                h2 { "Régler ce dépôt" }
                @for c in &d.candidates {
                    form method="post" action={ "/declarations/" (d.id) "/resoudre" } class="candidate" {
                        (csrf_field(current))
                        input type="hidden" name="idflux" value=(c.idflux);
                        "Flux " (c.idflux) " du " (c.date) " (" (c.statut) ") "
                        button type="submit" { "C'est ce dépôt" }
                    }
                }
                form method="post" action={ "/declarations/" (d.id) "/resoudre" } {
                    (csrf_field(current))
                    input type="hidden" name="resend" value="true";
                    button type="submit" id="resend" { "Renvoyer" }
                }
            }
        }
        p {
            a href={ "/declarations/" (d.id) "/retours" } id="returns-link" { "Retours de ce dépôt (conformité, CRM PAS)" }
            " · "
            a href="/declarations" { "Retour aux déclarations" }
        }
    };
    ok(page(&format!("Dépôt n° {}", d.id), Some(current), body))
}

async fn show_one(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(
            &WebError::invalid("Le numéro du dépôt doit être un nombre."),
            Some(&current),
        );
    };
    match get_one(&state, &current, id).await {
        Ok(d) => render_one(&current, &d, None),
        Err(e) => error_page(&e, Some(&current)),
    }
}

/// The upload form (multipart): its file, and the account when given.
async fn upload_form(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let boundary = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::multipart::boundary)
            .ok_or_else(|| WebError::invalid("Le formulaire d'envoi n'est pas valide."))?;
        let bytes = axum::body::to_bytes(body, UPLOAD_LIMIT)
            .await
            .map_err(|_| WebError::invalid("Le fichier envoyé est trop grand."))?;
        let parts = crate::multipart::parse(&bytes, &boundary)
            .ok_or_else(|| WebError::invalid("Le formulaire d'envoi n'est pas valide."))?;
        let file = parts
            .iter()
            .find(|p| p.name == "file")
            .ok_or_else(|| WebError::invalid("Choisissez un fichier DSN à déposer."))?;
        let user = parts
            .iter()
            .find(|p| p.name == "user")
            .and_then(|p| std::str::from_utf8(p.data).ok())
            .unwrap_or_default();
        upload(
            &state,
            &current,
            file.file_name.as_deref().unwrap_or("fichier.dsn"),
            user,
            file.data.to_vec(),
        )
        .await
    }
    .await;
    match result {
        Ok(d) => Redirect::to(&format!("/declarations/{}", d.id)).into_response(),
        Err(e) => render(&state, &current, Some(("error", e.message))).await,
    }
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    idflux: String,
    #[serde(default)]
    resend: String,
}

async fn resolve_form(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Path(id): Path<String>,
    Form(f): Form<ResolveForm>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(
            &WebError::invalid("Le numéro du dépôt doit être un nombre."),
            Some(&current),
        );
    };
    let resolution = if f.resend == "true" {
        Resolution::Resend(true)
    } else {
        Resolution::Idflux(f.idflux)
    };
    match resolve(&state, &current, id, resolution).await {
        Ok(d) => render_one(
            &current,
            &d,
            Some(("notice", "Le dépôt est réglé.".to_owned())),
        ),
        Err(e) => match get_one(&state, &current, id).await {
            Ok(d) => render_one(&current, &d, Some(("error", e.message))),
            Err(_) => error_page(&e, Some(&current)),
        },
    }
}
