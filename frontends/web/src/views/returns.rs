//! « Retours » of a DSN deposit (`iea.v1.Returns/ListReturns`): what came back from
//! Net-entreprises — nature 10 (AEE or ARE), 11 (conformity certificate or list of
//! anomalies), 94 (CRM nominatif PAS) —, each with its status, its version (a newer one
//! overwrites it), its document's state, its anomalies in French and, for a CRM, its
//! identifier and number of rates; the deposit's conformity; and « Suivre maintenant »
//! (`FollowNow`, administrators: the orchestrator refuses anyone else), a form with the
//! CSRF token. The following itself is the orchestrator's: this page only reads it.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::{
    DepositFollow, DsnReturn, DsnReturnsOfDeposit, FollowNowRequest, FollowNowResponse,
    ListDepositFollowsRequest, ListDsnReturnsRequest,
};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::{csrf_field, error_page, notice, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed, french, rfc3339};
use crate::sessions::Current;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/declarations/{id}/retours", get(show))
        .route("/retours/suivre", post(follow_form))
}

pub async fn of_deposit(
    state: &AppState,
    current: &Current,
    deposit_id: i64,
) -> Result<DsnReturnsOfDeposit, WebError> {
    Ok(ReturnsClient::new(state.orchestrator.channel())
        .list_returns(authed(
            &current.session.token,
            ListDsnReturnsRequest { deposit_id },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "ListReturns",
            deposit = deposit_id
        ))
        .await?
        .into_inner())
}

pub async fn follows(
    state: &AppState,
    current: &Current,
    siret: &str,
) -> Result<Vec<DepositFollow>, WebError> {
    Ok(ReturnsClient::new(state.orchestrator.channel())
        .list_deposit_follows(authed(
            &current.session.token,
            ListDepositFollowsRequest {
                siret: siret.trim().to_owned(),
            },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "ListDepositFollows"
        ))
        .await?
        .into_inner()
        .follows)
}

/// One pass of the following now, over every followed deposit and declarant (`all`) or
/// only those whose time has come; answers once the pass is done.
pub async fn follow_now(
    state: &AppState,
    current: &Current,
    all: bool,
) -> Result<FollowNowResponse, WebError> {
    Ok(ReturnsClient::new(state.orchestrator.channel())
        .follow_now(authed(&current.session.token, FollowNowRequest { all }))
        .instrument(tracing::info_span!("orchestrator", rpc = "FollowNow", all))
        .await?
        .into_inner())
}

/// French name of a following's state.
pub fn follow_state_label(s: &str) -> &str {
    match s {
        "following" => "Suivi en cours",
        "done" => "Terminé : accusé, conformité et CRM PAS reçus",
        "expired" => "Arrêté : le délai de suivi est passé avant que tout soit reçu",
        "" => "Non suivi (seuls les dépôts acceptés ont des retours)",
        other => other,
    }
}

/// French name of a conformity (`OK`, `ANO`, `KO`, any case; empty: not yet known).
pub fn conformity_label(c: &str) -> &'static str {
    match c.to_ascii_uppercase().as_str() {
        "OK" => "Conforme",
        "ANO" => "Conforme avec anomalies",
        "KO" => "Non conforme",
        "AWAITED" | "" => "En attente",
        _ => "Inconnue",
    }
}

/// French reading of a return's status as listed, for its nature.
pub fn statut_label(nature: u32, statut: &str) -> String {
    match (nature, statut.to_ascii_uppercase().as_str()) {
        (10, "OK") => "AEE : déclaration enregistrée".to_owned(),
        (10, "KO") => "ARE : déclaration rejetée".to_owned(),
        (11, "OK") => "Conforme".to_owned(),
        (11, "ANO") => "Conforme avec anomalies".to_owned(),
        (11, "KO") => "Non conforme".to_owned(),
        (_, "OK") => "Disponible".to_owned(),
        (_, "ANO") => "Avec anomalies".to_owned(),
        (_, "KO") => "En erreur".to_owned(),
        (_, "EN COURS") => "En cours".to_owned(),
        _ => statut.to_owned(),
    }
}

/// French name of the state of a return's document.
pub fn download_state_label(s: &str) -> &str {
    match s {
        "pending" => "À télécharger",
        "downloaded" => "Téléchargé et lu",
        "refused" => "Refusé",
        "gone" => "Disparu (purgé par Net-entreprises)",
        "failed" => "Échec du téléchargement",
        "none" => "Sans document",
        other => other,
    }
}

/// An anomaly a return lists (its message as the return gives it, in French).
#[derive(Serialize, ToSchema)]
pub struct ReturnAnomalyView {
    pub code: String,
    pub message: String,
    /// The DSN field that triggered it (S21.G00.50.009…), when named.
    pub rubric: String,
    /// « bloquant », « non-bloquant »…, when given.
    pub category: String,
}

/// One version of one return of a deposit.
#[derive(Serialize, ToSchema)]
pub struct ReturnView {
    /// 10, 11, 94…
    pub nature: u32,
    /// The nature in French.
    pub nature_label: String,
    /// As listed: OK, ANO, KO, EN COURS.
    pub statut: String,
    /// The status in French, for its nature.
    pub statut_label: String,
    /// AAAAMMJJHHMMSS, as listed.
    pub publication: String,
    /// The publication in French words.
    pub publication_fr: String,
    pub production: String,
    /// Net-entreprises' id of this version (empty: a return without a document).
    pub return_id: String,
    pub version: u32,
    /// False once a newer version overwrote it.
    pub current: bool,
    /// pending, downloaded, refused, gone, failed, none.
    pub download_state: String,
    pub download_state_label: String,
    /// French sentence: why it was refused, gone or failed, or what reading it gave.
    pub message: String,
    pub bytes: u64,
    pub sha256: String,
    /// RFC 3339 UTC.
    pub downloaded_at: Option<String>,
    pub anomalies: Vec<ReturnAnomalyView>,
    /// Nature 94: the CRM's identifier and the number of rates it gave.
    pub crm_identifier: String,
    pub rate_count: u32,
}

/// The returns of one deposit and its conformity.
#[derive(Serialize, ToSchema)]
pub struct ReturnsView {
    pub deposit_id: i64,
    pub idflux: String,
    /// following, done, expired; empty when the deposit is not followed.
    pub follow_state: String,
    pub follow_state_label: String,
    /// OK, ANO, KO; absent until known.
    pub conformity: Option<String>,
    pub conformity_label: String,
    /// French sentence on the conformity.
    pub conformity_message: String,
    pub returns: Vec<ReturnView>,
    /// RFC 3339 UTC.
    pub next_check_at: Option<String>,
    /// RFC 3339 UTC.
    pub follow_until: Option<String>,
}

fn return_view(r: &DsnReturn) -> ReturnView {
    ReturnView {
        nature: r.nature,
        nature_label: r.nature_label.clone(),
        statut: r.statut.clone(),
        statut_label: statut_label(r.nature, &r.statut),
        publication: r.publication.clone(),
        publication_fr: iea_fr_time::listed_text(&r.publication),
        production: r.production.clone(),
        return_id: r.return_id.clone(),
        version: r.version,
        current: r.current,
        download_state: r.download_state.clone(),
        download_state_label: download_state_label(&r.download_state).to_owned(),
        message: r.message.clone(),
        bytes: r.bytes,
        sha256: r.sha256.clone(),
        downloaded_at: r.downloaded_at.as_ref().map(rfc3339),
        anomalies: r
            .anomalies
            .iter()
            .map(|a| ReturnAnomalyView {
                code: a.code.clone(),
                message: a.message.clone(),
                rubric: a.rubric.clone(),
                category: a.category.clone(),
            })
            .collect(),
        crm_identifier: r.crm_identifier.clone(),
        rate_count: r.rate_count,
    }
}

pub fn returns_view(d: &DsnReturnsOfDeposit) -> ReturnsView {
    ReturnsView {
        deposit_id: d.deposit_id,
        idflux: d.idflux.clone(),
        follow_state: d.follow_state.clone(),
        follow_state_label: follow_state_label(&d.follow_state).to_owned(),
        conformity: Some(d.conformity.clone()).filter(|s| !s.is_empty()),
        conformity_label: conformity_label(&d.conformity).to_owned(),
        conformity_message: d.conformity_message.clone(),
        returns: d.returns.iter().map(return_view).collect(),
        next_check_at: d.next_check_at.as_ref().map(rfc3339),
        follow_until: d.follow_until.as_ref().map(rfc3339),
    }
}

/// One followed deposit, as the deadline board reads it.
#[derive(Serialize, ToSchema)]
pub struct DepositFollowView {
    pub deposit_id: i64,
    pub idflux: String,
    pub siret: String,
    /// YYYY-MM.
    pub month: String,
    /// RFC 3339 UTC.
    pub due_at: Option<String>,
    /// following, done, expired.
    pub follow_state: String,
    /// The nature 10 as listed (OK: AEE, KO: ARE).
    pub aee_statut: String,
    pub aee_at: Option<String>,
    /// OK, ANO, KO; empty until known.
    pub conformity: String,
    pub conformity_at: Option<String>,
    pub anomaly_count: u32,
    pub crm_received: bool,
    pub crm_at: Option<String>,
    pub crm_identifier: String,
    pub rate_count: u32,
    pub refused_count: u32,
    pub gone_count: u32,
    pub next_check_at: Option<String>,
}

pub fn follow_view(f: &DepositFollow) -> DepositFollowView {
    DepositFollowView {
        deposit_id: f.deposit_id,
        idflux: f.idflux.clone(),
        siret: f.siret.clone(),
        month: f.month.clone(),
        due_at: f.due_at.as_ref().map(rfc3339),
        follow_state: f.follow_state.clone(),
        aee_statut: f.aee_statut.clone(),
        aee_at: f.aee_at.as_ref().map(rfc3339),
        conformity: f.conformity.clone(),
        conformity_at: f.conformity_at.as_ref().map(rfc3339),
        anomaly_count: f.anomaly_count,
        crm_received: f.crm_received,
        crm_at: f.crm_at.as_ref().map(rfc3339),
        crm_identifier: f.crm_identifier.clone(),
        rate_count: f.rate_count,
        refused_count: f.refused_count,
        gone_count: f.gone_count,
        next_check_at: f.next_check_at.as_ref().map(rfc3339),
    }
}

/// What one pass of the following did.
#[derive(Serialize, ToSchema)]
pub struct FollowNowView {
    /// Listings of one deposit's returns.
    pub flux_listed: u32,
    /// Declarant windows listed.
    pub windows_listed: u32,
    /// Documents downloaded and read.
    pub downloaded: u32,
    pub refused: u32,
    pub gone: u32,
    /// French sentence.
    pub message: String,
}

pub fn follow_now_view(r: &FollowNowResponse) -> FollowNowView {
    FollowNowView {
        flux_listed: r.flux_listed,
        windows_listed: r.windows_listed,
        downloaded: r.downloaded,
        refused: r.refused,
        gone: r.gone,
        message: r.message.clone(),
    }
}

/// « Suivre maintenant »: a form with the CSRF token, for administrators (the
/// orchestrator refuses anyone else); `deposit`: the page to come back to.
pub fn follow_now_form(current: &Current, deposit: Option<i64>) -> Markup {
    html! {
        @if current.session.role == "administrator" {
            form method="post" action="/retours/suivre" class="inline" id="follow-now-form" {
                (csrf_field(current))
                @if let Some(id) = deposit { input type="hidden" name="deposit" value=(id); }
                button type="submit" id="follow-now" { "Suivre maintenant" }
            }
        }
    }
}

fn conformity_class(c: &str) -> &'static str {
    match c.to_ascii_uppercase().as_str() {
        "OK" => "ok",
        "KO" => "ko",
        _ => "",
    }
}

fn render(
    status: StatusCode,
    current: &Current,
    d: &DsnReturnsOfDeposit,
    message: Option<(&str, String)>,
) -> Response {
    let body = html! {
        @if let Some((kind, text)) = &message { (notice(kind, text)) }
        section id="returns-summary" data-follow=(d.follow_state) data-conformity=(d.conformity) {
            table {
                tr { th { "Dépôt" } td { a href={ "/declarations/" (d.deposit_id) } { "n° " (d.deposit_id) } } }
                @if !d.idflux.is_empty() { tr { th { "Identifiant du flux" } td { (d.idflux) } } }
                tr { th { "Suivi des retours" } td class="follow-state" { (follow_state_label(&d.follow_state)) } }
                @if let Some(t) = &d.next_check_at { tr { th { "Prochaine vérification" } td { (french(t)) } } }
                @if let Some(t) = &d.follow_until { tr { th { "Suivi jusqu'au" } td { (french(t)) } } }
                tr {
                    th { "Conformité" }
                    td class={ "conformity " (conformity_class(&d.conformity)) } { (conformity_label(&d.conformity)) }
                }
                @if !d.conformity_message.is_empty() {
                    tr { th { "Explication" } td class="conformity-message" { (d.conformity_message) } }
                }
            }
            (follow_now_form(current, Some(d.deposit_id)))
        }
        section {
            h2 { "Retours reçus" }
            @if d.returns.is_empty() {
                p class="muted" id="no-returns" { "Aucun retour pour l'instant." }
            } @else {
                table id="returns" {
                    thead { tr {
                        th { "Nature" } th { "Statut" } th { "Publié le" } th { "Version" }
                        th { "Document" } th { "Détail" }
                    } }
                    tbody {
                        @for r in &d.returns {
                            tr data-nature=(r.nature) data-statut=(r.statut) data-current=(r.current) {
                                td { (r.nature) " — " (r.nature_label) }
                                td class="statut" { (statut_label(r.nature, &r.statut)) }
                                td { (iea_fr_time::listed_text(&r.publication)) }
                                td {
                                    (r.version)
                                    @if !r.current { " (remplacée par une version plus récente)" }
                                }
                                td class="download" { (download_state_label(&r.download_state)) }
                                td {
                                    @if !r.message.is_empty() { div { (r.message) } }
                                    @if !r.crm_identifier.is_empty() {
                                        div class="crm" {
                                            "CRM PAS n° " (r.crm_identifier) " : " (r.rate_count) " taux — "
                                            a href="/taux-pas" { "voir les taux" }
                                        }
                                    }
                                    @if !r.anomalies.is_empty() {
                                        ul class="anomalies" {
                                            @for a in &r.anomalies {
                                                li {
                                                    code { (a.code) } " — " (a.message)
                                                    @if !a.rubric.is_empty() { " (rubrique " (a.rubric) ")" }
                                                    @if !a.category.is_empty() { " — " (a.category) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { a href={ "/declarations/" (d.deposit_id) } { "Retour au dépôt" } " · " a href="/declarations" { "Retour aux déclarations" } }
    };
    let title = format!("Retours du dépôt n° {}", d.deposit_id);
    (
        status,
        Html(page(&title, Some(current), body).into_string()),
    )
        .into_response()
}

fn deposit_id(id: Result<Path<String>, PathRejection>) -> Result<i64, WebError> {
    id.ok()
        .and_then(|Path(id)| id.parse::<i64>().ok())
        .ok_or_else(|| WebError::invalid("Le numéro du dépôt doit être un nombre."))
}

async fn show(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let result = match deposit_id(id) {
        Ok(id) => of_deposit(&state, &current, id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => render(StatusCode::OK, &current, &d, None),
        Err(e) => error_page(&e, Some(&current)),
    }
}

/// « Suivre maintenant »: `deposit` is the page to show afterwards (the deadline board
/// without it).
#[derive(Deserialize)]
pub struct FollowForm {
    #[serde(default)]
    deposit: String,
}

async fn follow_form(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<FollowForm>,
) -> Response {
    let deposit = f.deposit.trim().parse::<i64>().ok();
    let outcome = follow_now(&state, &current, true).await;
    let (status, message) = match &outcome {
        Ok(r) => (StatusCode::OK, ("notice", r.message.clone())),
        Err(e) => (e.status, ("error", e.message.clone())),
    };
    match deposit {
        Some(id) => match of_deposit(&state, &current, id).await {
            Ok(d) => render(status, &current, &d, Some(message)),
            Err(e) => error_page(&e, Some(&current)),
        },
        None => super::board::render_page(&state, &current, "", Some(message), status).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_in_french_for_their_nature() {
        assert_eq!(statut_label(10, "OK"), "AEE : déclaration enregistrée");
        assert_eq!(statut_label(10, "KO"), "ARE : déclaration rejetée");
        assert_eq!(statut_label(11, "ANO"), "Conforme avec anomalies");
        assert_eq!(statut_label(94, "EN COURS"), "En cours");
        assert_eq!(statut_label(94, "XYZ"), "XYZ");
        assert_eq!(conformity_label("ko"), "Non conforme");
        assert_eq!(conformity_label(""), "En attente");
    }

    #[test]
    fn listed_times_read_in_french() {}
}
