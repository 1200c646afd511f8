//! « Déclarations DSN »: the deposits (newest first), one deposit with its anomalies and,
//! when its answer was lost, the listed flows it could be; upload a DSN file (checked by
//! the orchestrator before anything is recorded), settle an uncertain deposit (« C'est ce
//! dépôt » or « Renvoyer »). The file's content is never logged nor shown. A refused file
//! shows the orchestrator's sentence, then its first problems and the sentence counting
//! the others as a list.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Extension, Form, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::resolve_dsn_deposit_request::Resolution;
use iea_proto::v1::{
    DsnDeposit, DsnUpload, DsnUploadStart, GetDsnDepositRequest, ListDsnDepositsRequest,
    ResolveDsnDepositRequest, WatchDsnDepositRequest,
};
use maud::html;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::{csrf_field, error_page, notice, ok, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed, french, rfc3339};
use crate::sessions::{
    Current, MULTIPART_FORMS, UPLOAD_BODY_LIMIT, UPLOAD_LIMIT, file_too_large, multipart_error,
    multipart_form,
};
use crate::spool::{ReadFailure, Spool, SpoolDir};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/declarations", get(show))
        .route(
            MULTIPART_FORMS[0],
            post(upload_form).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
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
    /// The ARE's anomalies, for `rejected`: the first 100 at most, in its order.
    pub anomalies: Vec<AnomalyView>,
    /// For `rejected`: how many more anomalies the ARE listed after those in `anomalies`
    /// (0: all are there).
    pub anomalies_omitted: u64,
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
        anomalies_omitted: d.anomalies_omitted,
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

/// Which deposits a list shows (`?siret=…&month=AAAA-MM&state=…&limit=N`, each when
/// given): the page's filter and the API's parameters, checked by the orchestrator.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this establishment's (14 digits).
    #[serde(default)]
    pub siret: String,
    /// Only this declared month (AAAA-MM).
    #[serde(default)]
    pub month: String,
    /// Only deposits in this state (`accepted`, `to_check`…).
    #[serde(default)]
    pub state: String,
    /// At most this many, newest first (1 to 500; 0 or absent: 500).
    #[serde(default)]
    #[param(minimum = 0, maximum = 500)]
    pub limit: u32,
    /// Only deposits older than this one (its number): the next page of a truncated list,
    /// from its last deposit (0 or absent: from the newest).
    #[serde(default)]
    #[param(minimum = 0)]
    pub before: i64,
}

impl ListQuery {
    fn filtered(&self) -> bool {
        !(self.siret.trim().is_empty() && self.month.trim().is_empty() && self.state.is_empty())
    }

    /// The query of the next page, from deposit `before` on: the same filters and limit.
    pub fn next_page(&self, before: i64) -> String {
        self.query(Some(before))
    }

    /// The query of the first page (the newest), the same filters and limit.
    fn first_page(&self) -> String {
        self.query(None)
    }

    fn query(&self, before: Option<i64>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("siret", self.siret.trim()),
            ("month", self.month.trim()),
            ("state", self.state.as_str()),
        ] {
            if !value.is_empty() {
                q.append_pair(name, value);
            }
        }
        if self.limit != 0 {
            q.append_pair("limit", &self.limit.to_string());
        }
        if let Some(before) = before {
            q.append_pair("before", &before.to_string());
        }
        q.finish()
    }
}

/// The deposits the session may see that `q` keeps, newest first; and whether older ones
/// were left out.
pub async fn list(
    state: &AppState,
    current: &Current,
    q: &ListQuery,
) -> Result<(Vec<DsnDeposit>, bool), WebError> {
    let r = DepositsClient::new(state.orchestrator.channel())
        .list_deposits(authed(
            &current.session.token,
            ListDsnDepositsRequest {
                siret: q.siret.clone(),
                month: q.month.clone(),
                state: q.state.clone(),
                limit: q.limit,
                before: q.before,
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "ListDeposits"))
        .await?
        .into_inner();
    Ok((r.deposits, r.truncated))
}

pub async fn get_one(state: &AppState, current: &Current, id: i64) -> Result<DsnDeposit, WebError> {
    Ok(DepositsClient::new(state.orchestrator.channel())
        .get_deposit(authed(&current.session.token, GetDsnDepositRequest { id }))
        .instrument(tracing::info_span!("orchestrator", rpc = "GetDeposit"))
        .await?
        .into_inner())
}

/// Deposit `id` now, then at each change until settled (`WatchDeposit`); refused as
/// [`get_one`] is, before anything is sent.
pub async fn watch(
    state: &AppState,
    current: &Current,
    id: i64,
) -> Result<tonic::Streaming<DsnDeposit>, WebError> {
    Ok(DepositsClient::new(state.orchestrator.channel())
        .watch_deposit(authed(
            &current.session.token,
            WatchDsnDepositRequest { id },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "WatchDeposit"))
        .await?
        .into_inner())
}

/// The person's error for an upload whose temporary file failed (the cause logged, never
/// the file's content).
pub fn spool_error(e: std::io::Error) -> WebError {
    tracing::error!(error = %e, "the temporary file of a DSN upload failed");
    WebError::internal()
}

/// Sends a DSN file to the orchestrator, which checks it before recording anything: the
/// announced size, then the file read back in messages of [`crate::spool::CHUNK`] bytes,
/// each read when the previous one has gone. The temporary file is closed, and so gone,
/// however this ends.
pub async fn upload(
    state: &AppState,
    current: &Current,
    file_name: &str,
    user: &str,
    file: Spool,
) -> Result<DsnDeposit, WebError> {
    if file.is_empty() {
        return Err(WebError::invalid("Choisissez un fichier DSN à déposer."));
    }
    let file = file.finish().await.map_err(spool_error)?;
    // Only the name, never a path the browser may have sent.
    let file_name = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let bytes = file.len();
    let start = DsnUpload {
        start: Some(DsnUploadStart {
            file_name,
            total_size: bytes,
            user: user.trim().to_owned(),
        }),
        data: Vec::new(),
    };
    let failed = ReadFailure::default();
    let messages = futures::stream::iter([start]).chain(
        file.chunks(failed.clone())
            .map(|data| DsnUpload { start: None, data }),
    );
    let answer = DepositsClient::new(state.orchestrator.channel())
        .deposit(authed(&current.session.token, messages))
        .instrument(tracing::info_span!("orchestrator", rpc = "Deposit", bytes))
        .await;
    // A file that could not be read back whole: the orchestrator got fewer bytes than
    // announced and recorded nothing; the console's failure, not the file's.
    if let Some(e) = failed.take() {
        return Err(spool_error(e));
    }
    Ok(answer?.into_inner())
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

/// A message box above the page; a message of several lines (a bad file's refusal: its
/// first problems, each with its line, then the sentence counting the others) shows its
/// first line, then the others as a list.
/// The ARE's anomalies of a deposit, then how many more it listed, if any.
fn anomalies_section(d: &DsnDeposit) -> maud::Markup {
    html! {
        @if !d.anomalies.is_empty() || d.anomalies_omitted > 0 {
            section class="error" id="anomalies" {
                h2 { "Anomalies" }
                ul {
                    @for a in &d.anomalies { li { code { (a.code) } " — " (a.message) } }
                    @if d.anomalies_omitted > 0 {
                        li class="omitted" { (omitted_sentence(d.anomalies.len(), d.anomalies_omitted)) }
                    }
                }
            }
        }
    }
}

/// « … et N autres anomalies (seules les K premières sont conservées) ».
fn omitted_sentence(kept: usize, omitted: u64) -> String {
    let s = if omitted == 1 { "" } else { "s" };
    let count = iea_dsn::group_thousands(usize::try_from(omitted).unwrap_or(usize::MAX));
    match kept {
        0 => format!("{count} anomalie{s}, non conservée{s}"),
        1 => format!("… et {count} autre{s} anomalie{s} (seule la première est conservée)"),
        kept => format!(
            "… et {count} autre{s} anomalie{s} (seules les {kept} premières sont conservées)"
        ),
    }
}

fn message_box(kind: &str, text: &str) -> maud::Markup {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    if rest.is_empty() {
        return notice(kind, text);
    }
    html! {
        section class=(kind) role="status" {
            p { (first) }
            ul { @for line in &rest { li { (line) } } }
        }
    }
}

fn when(d: &DsnDeposit) -> String {
    d.created_at.as_ref().map(french).unwrap_or_default()
}

async fn render(
    state: &AppState,
    current: &Current,
    q: &ListQuery,
    message: Option<(&str, String)>,
) -> Response {
    // A filter the orchestrator refuses: the page again, its sentence on top.
    let (deposits, truncated, message, status) = match list(state, current, q).await {
        Ok((deposits, truncated)) => (deposits, truncated, message, StatusCode::OK),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            (Vec::new(), false, Some(("error", e.message)), e.status)
        }
        Err(e) => return error_page(&e, Some(current)),
    };
    let body = html! {
        @if let Some((kind, text)) = &message { (message_box(kind, text)) }
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
            form method="get" action="/declarations" id="deposits-filter" {
                label for="filter-siret" { "SIRET (facultatif)" }
                input type="text" id="filter-siret" name="siret" value=(q.siret.trim()) inputmode="numeric" maxlength="40";
                label for="filter-month" { "Mois déclaré (facultatif, AAAA-MM)" }
                input type="text" id="filter-month" name="month" value=(q.month.trim()) placeholder="2026-11" maxlength="20";
                label for="filter-state" { "État" }
                select id="filter-state" name="state" {
                    option value="" selected[q.state.is_empty()] { "Tous" }
                    @for s in iea_proto::DEPOSIT_STATES {
                        option value=(s) selected[q.state == s] { (state_label(s)) }
                    }
                }
                " "
                button type="submit" { "Afficher" }
            }
            @if deposits.is_empty() {
                p class="muted" id="no-deposits" {
                    @if q.filtered() { "Aucun dépôt ne correspond." } @else { "Aucun dépôt." }
                }
            } @else {
                table id="deposits" {
                    thead { tr { th { "N°" } th { "Fichier" } th { "SIRET" } th { "Mois" } th { "État" } th { "Reçu le" } } }
                    tbody {
                        @for d in &deposits {
                            tr data-id=(d.id) data-state=(d.state) {
                                td { a href={ "/declarations/" (d.id) } { (d.id) } }
                                td { (d.file_name) }
                                td { (d.siret) }
                                td { (iea_fr_time::month_text(&d.month)) }
                                td class="state" { (state_label(&d.state)) }
                                td { (when(d)) }
                            }
                        }
                    }
                }
                @if let (true, Some(last)) = (truncated, deposits.last()) {
                    p class="muted" id="deposits-truncated" {
                        "D'autres dépôts, plus anciens, ne sont pas affichés : "
                        @if deposits.len() == 1 { "seul le plus récent l'est. " }
                        @else { "seuls les " (deposits.len()) " plus récents le sont. " }
                        a id="deposits-older" href={ "/declarations?" (q.next_page(last.id)) } { "Dépôts plus anciens" }
                    }
                }
            }
            @if q.before != 0 {
                p id="deposits-newest" {
                    "Dépôts antérieurs au n° " (q.before) ". "
                    a href={ "/declarations?" (q.first_page()) } { "Revenir aux plus récents" }
                }
            }
        }
    };
    let mut r = ok(page("Déclarations DSN", Some(current), body));
    *r.status_mut() = status;
    r
}

async fn show(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    match q {
        Ok(Query(q)) => render(&state, &current, &q, None).await,
        Err(_) => {
            let e = WebError::invalid("Les paramètres de la demande ne sont pas valides.");
            render_error(&state, &current, e).await
        }
    }
}

/// The states whose page shows « Régler ce dépôt » (`section#resolve`); given to
/// `console.js` too (`data-resolvable`), which adds it by loading the page again when the
/// deposit comes to one of them, and removes it when the deposit leaves them.
const RESOLVABLE: [&str; 4] = ["to_check", "uncertain", "waiting", "failed"];

/// « Flux 0123… du 1er décembre 2026 à 11 h 20 (OK) »: a deposit of the listing that may be
/// ours, for the person who settles it.
fn candidate_label(c: &iea_proto::v1::DsnDepositCandidate) -> String {
    format!(
        "Flux {} du {} ({})",
        c.idflux,
        iea_fr_time::listed_text(&c.date),
        c.statut
    )
}

fn render_one(current: &Current, d: &DsnDeposit, message: Option<(&str, String)>) -> Response {
    let resolvable = RESOLVABLE.contains(&d.state.as_str());
    let body = html! {
        @if let Some((kind, text)) = &message { (message_box(kind, text)) }
        // Followed live by `console.js` until settled (`/api/v1/deposits/{id}/events`),
        // `#resolve` below with it.
        section id="deposit" data-id=(d.id) data-state=(d.state) data-settled=(d.settled) data-resolvable=(RESOLVABLE.join(" ")) {
            table {
                tr { th { "État" } td class="state" { (state_label(&d.state)) } }
                tr { th { "Explication" } td class="message" { (d.message) } }
                tr id="idflux-row" hidden[d.idflux.is_empty()] { th { "Identifiant du flux" } td class="idflux" { (d.idflux) } }
                tr { th { "Fichier" } td { (d.file_name) " (" (iea_fr_time::size(d.bytes)) ")" } }
                tr { th { "Établissement" } td { (d.siret) } }
                tr { th { "Mois déclaré" } td { (iea_fr_time::month_text(&d.month)) } }
                tr { th { "Compte qui dépose" } td class="account" { (d.account) } }
                tr { th { "Demandé par" } td { (d.requested_by) } }
                tr { th { "Tentatives" } td class="attempts" { (d.attempts) } }
                tr { th { "Reçu le" } td { (when(d)) } }
            }
        }
        (anomalies_section(d))
        @if resolvable {
            section id="resolve" {
                h2 { "Régler ce dépôt" }
                @for c in &d.candidates {
                    form method="post" action={ "/declarations/" (d.id) "/resoudre" } class="candidate" {
                        (csrf_field(current))
                        input type="hidden" name="idflux" value=(c.idflux);
                        (candidate_label(c)) " "
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

/// Largest `user` field of the upload form (bytes).
const USER_FIELD_LIMIT: usize = 1024;

/// The upload form's fields, read as a stream after its CSRF check: the file (the first
/// field `file`: its name, its bytes counted as they arrive and written to a temporary
/// file in `uploads`, refused past [`UPLOAD_LIMIT`]) and the account when given. The
/// bytes are passed on as sent, whatever charset the part declares (a DSN is ISO-8859-1
/// or UTF-8, CRLF or LF: the orchestrator reads it). Fields of other names are skipped.
async fn read_upload_form(
    form: &mut Multipart,
    uploads: &SpoolDir,
) -> Result<(Option<(String, Spool)>, String), WebError> {
    let mut file: Option<(String, Spool)> = None;
    let mut user = String::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart_error(&e))? {
        match field.name() {
            Some("file") if file.is_none() => {
                let name = field.file_name().unwrap_or("fichier.dsn").to_owned();
                let mut data = uploads.file().await.map_err(spool_error)?;
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                    if data.len() + chunk.len() as u64 > UPLOAD_LIMIT as u64 {
                        return Err(file_too_large());
                    }
                    data.write(&chunk).await.map_err(spool_error)?;
                }
                file = Some((name, data));
            }
            Some("user") => {
                let mut value = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                    value.extend_from_slice(&chunk);
                    if value.len() > USER_FIELD_LIMIT {
                        return Err(WebError::invalid("Le nom du compte est trop long."));
                    }
                }
                user = String::from_utf8_lossy(&value).into_owned();
            }
            // Another file, a `csrf` field after the first (checked already), anything
            // else: read by the next `next_field` and dropped.
            _ => {}
        }
    }
    Ok((file, user))
}

/// The upload form (multipart): its CSRF token first, its file, and the account when
/// given. Nothing reaches the orchestrator before the token is checked and the file read
/// whole into its temporary file (the orchestrator's upload announces the file's size
/// first).
async fn upload_form(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    req: Request,
) -> Response {
    let mut form = match multipart_form(req, &current.session.csrf).await {
        Ok(form) => form,
        // As the session layer answers a form without its token.
        Err(e) if e.status == StatusCode::FORBIDDEN => return error_page(&e, None),
        Err(e) => return render_error(&state, &current, e).await,
    };
    let result = async {
        let (file, user) = match read_upload_form(&mut form, &state.uploads).await {
            Ok(read) => read,
            Err(e) => {
                if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                    // What is left (at most the body limit) is read and dropped, so
                    // that the browser, still sending, gets the answer.
                    while let Ok(Some(mut field)) = form.next_field().await {
                        while let Ok(Some(_)) = field.chunk().await {}
                    }
                }
                return Err(e);
            }
        };
        let (name, data) =
            file.ok_or_else(|| WebError::invalid("Choisissez un fichier DSN à déposer."))?;
        upload(&state, &current, &name, &user, data).await
    }
    .await;
    match result {
        Ok(d) => Redirect::to(&format!("/declarations/{}", d.id)).into_response(),
        Err(e) => render_error(&state, &current, e).await,
    }
}

/// The deposits page with `e`'s sentence, answered with `e`'s status.
async fn render_error(state: &AppState, current: &Current, e: WebError) -> Response {
    let mut page = render(
        state,
        current,
        &ListQuery::default(),
        Some(("error", e.message)),
    )
    .await;
    if page.status() == StatusCode::OK {
        *page.status_mut() = e.status;
    }
    page
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_reads_with_its_date_in_words() {
        let c = iea_proto::v1::DsnDepositCandidate {
            idflux: "0123456789012345678901A".into(),
            date: "20261201112004".into(),
            statut: "OK".into(),
        };
        assert_eq!(
            candidate_label(&c),
            "Flux 0123456789012345678901A du 1er décembre 2026 à 11 h 20 (OK)"
        );
    }

    #[test]
    fn a_refusal_shows_its_problems_as_a_list() {
        let text = "Le fichier n'a pas été déposé : il ne respecte pas la norme DSN.\n\
                    ligne 4 : <code> absent\n\
                    … et 99\u{202f}974 autres problèmes (seuls les 27 premiers sont listés).";
        let html = message_box("error", text).into_string();
        assert_eq!(
            html,
            "<section class=\"error\" role=\"status\"><p>Le fichier n'a pas été déposé : il \
             ne respecte pas la norme DSN.</p><ul><li>ligne 4 : &lt;code&gt; absent</li><li>… et \
             99\u{202f}974 autres problèmes (seuls les 27 premiers sont listés).</li></ul></section>"
        );
        // One line: the message box as elsewhere.
        assert_eq!(
            message_box("notice", "Le dépôt est réglé.").into_string(),
            notice("notice", "Le dépôt est réglé.").into_string()
        );
    }

    /// A rejected deposit whose ARE listed more anomalies than are kept says how many more,
    /// after the list; one whose list is whole says nothing more.
    #[test]
    fn anomalies_left_out_are_counted_after_the_list() {
        let mut d = DsnDeposit {
            state: "rejected".into(),
            anomalies: (0..100)
                .map(|i| iea_proto::v1::DsnAnomaly {
                    code: format!("A{i}"),
                    message: format!("anomalie {i}"),
                })
                .collect(),
            anomalies_omitted: 4_900,
            ..Default::default()
        };
        assert_eq!(deposit_view(&d).anomalies_omitted, 4_900);
        let html = anomalies_section(&d).into_string();
        assert_eq!(html.matches("<li>").count(), 100);
        assert!(
            html.ends_with(
                "<li><code>A99</code> — anomalie 99</li><li class=\"omitted\">… et \
                 4\u{202f}900 autres anomalies (seules les 100 premières sont \
                 conservées)</li></ul></section>"
            ),
            "{html}"
        );
        d.anomalies_omitted = 1;
        assert!(
            anomalies_section(&d)
                .into_string()
                .contains("… et 1 autre anomalie (seules les 100 premières sont conservées)")
        );
        d.anomalies_omitted = 0;
        assert!(!anomalies_section(&d).into_string().contains("omitted"));
        d.anomalies.clear();
        assert_eq!(anomalies_section(&d).into_string(), "");
    }
}
