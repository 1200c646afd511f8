//! « Échéancier »: the deadline board (`iea.v1.Board/GetBoard`, what `iea dsn board`
//! shows): per establishment and declared month the DSN's due date in Paris time and the
//! days left, the deposit that stands for it, its conformity, its CRM PAS; then the
//! alerts, most urgent first. Also the status page's part of it (what `iea status` adds
//! for a signed-in account): the alert line (how many, the most urgent) and the
//! depositing accounts whose Net-entreprises credentials were refused
//! (`refused_deposit_accounts` of `GetStatus`). Which establishments a session sees is
//! the orchestrator's decision.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use iea_proto::v1::board_client::BoardClient;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::{
    BoardAlert, BoardReport, BoardRow, DepositAccount, GetBoardRequest, GetStatusRequest,
    StatusReport,
};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::{notice, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed, french, rfc3339};
use crate::sessions::Current;
use crate::status::StatusView;
use crate::views::deposits::state_label;
use crate::views::returns::follow_now_form;
use iea_fr_time::month_text;

pub fn routes() -> Router<AppState> {
    Router::new().route("/echeancier", get(show))
}

/// The board of every establishment the session may see (`siret` empty) or of one.
pub async fn get_board(
    state: &AppState,
    current: &Current,
    siret: &str,
) -> Result<BoardReport, WebError> {
    Ok(BoardClient::new(state.orchestrator.channel())
        .get_board(authed(
            &current.session.token,
            GetBoardRequest {
                siret: siret.trim().to_owned(),
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "GetBoard"))
        .await?
        .into_inner())
}

/// A board row's conformity in French (`ok`, `ano`, `ko`, `awaited`, or none).
pub fn board_conformity_fr(w: &BoardRow) -> String {
    match w.conformity.as_str() {
        "" => "—".to_owned(),
        "ok" => "Conforme".to_owned(),
        "ano" => format!("Conforme avec anomalies ({})", w.anomalies),
        "ko" => format!(
            "Non conforme ({})",
            iea_fr_time::count(w.anomalies.into(), "anomalie", "anomalies")
        ),
        _ => "Attendue".to_owned(),
    }
}

/// An alert of the board (`iea dsn board --json`'s form).
#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct AlertView {
    /// Stable code: deposit_rejected, conformity_ko, not_deposited, conformity_anomalies,
    /// crm_missing, rates_expiring, employee_without_rate.
    pub code: String,
    /// French sentence: what, for which establishment and month, what to do.
    pub message: String,
    /// 1 is the most urgent.
    pub urgency: u32,
    pub siret: String,
    /// YYYY-MM.
    pub month: String,
    pub deposit_id: Option<i64>,
    /// The due date, RFC 3339 UTC.
    pub due: Option<String>,
}

pub fn alert_view(a: &BoardAlert) -> AlertView {
    AlertView {
        code: a.code.clone(),
        message: a.message.clone(),
        urgency: a.urgency,
        siret: a.siret.clone(),
        month: a.month.clone(),
        deposit_id: (a.deposit_id != 0).then_some(a.deposit_id),
        due: a.due.as_ref().map(rfc3339),
    }
}

/// The deposit that stands for a declaration.
#[derive(Serialize, ToSchema)]
pub struct BoardDepositView {
    pub id: i64,
    /// received … failed.
    pub state: String,
    pub state_label: String,
    /// When Net-entreprises registered it (the AEE), RFC 3339 UTC.
    pub deposited_at: Option<String>,
    pub idflux: Option<String>,
}

/// The declaration's CRM PAS.
#[derive(Serialize, ToSchema)]
pub struct BoardCrmView {
    /// RFC 3339 UTC.
    pub received_at: Option<String>,
    pub rates: u32,
    /// S21.G00.50.008 of the next DSN.
    pub identifier: String,
}

/// One declaration: an establishment and a month.
#[derive(Serialize, ToSchema)]
pub struct BoardRowView {
    pub siret: String,
    /// YYYY-MM.
    pub month: String,
    /// The month in French (« novembre 2026 »).
    pub month_label: String,
    /// The due date, RFC 3339 UTC.
    pub due: Option<String>,
    /// The due date in French words, Paris time.
    pub due_fr: Option<String>,
    /// Paris calendar days to the due date; negative once past.
    pub days_left: i32,
    /// An accepted deposit registered after the due date: Paris calendar days from the
    /// due date's day to its registration's (0: the due day, after noon); absent when on
    /// time or not accepted.
    pub days_late: Option<i32>,
    /// The due date's state in French: « déposée à temps », « déposée avec 18 jours de
    /// retard » once accepted; else « dans 3 jours », « dépassée de 2 jours ».
    pub due_words: String,
    /// Its due time has passed and no deposit was accepted for it (what the
    /// `not_deposited` alert says; shown in red).
    pub overdue: bool,
    pub deposit: Option<BoardDepositView>,
    /// ok, ano, ko, awaited; absent without an accepted deposit.
    pub conformity: Option<String>,
    pub anomalies: u32,
    pub crm: Option<BoardCrmView>,
}

/// The deadline board.
#[derive(Serialize, ToSchema)]
pub struct BoardView {
    /// RFC 3339 UTC.
    pub computed_at: Option<String>,
    /// Newest month first, then by SIRET.
    pub rows: Vec<BoardRowView>,
    /// Most urgent first.
    pub alerts: Vec<AlertView>,
}

pub fn board_view(r: &BoardReport) -> BoardView {
    BoardView {
        computed_at: r.computed_at.as_ref().map(rfc3339),
        rows: r
            .rows
            .iter()
            .map(|w| BoardRowView {
                siret: w.siret.clone(),
                month: w.month.clone(),
                month_label: month_text(&w.month),
                due: w.due.as_ref().map(rfc3339),
                due_fr: w.due.as_ref().map(french),
                days_left: w.days_left,
                days_late: w.days_late,
                due_words: w.due_words.clone(),
                overdue: w.overdue,
                deposit: (w.deposit_id != 0).then(|| BoardDepositView {
                    id: w.deposit_id,
                    state: w.deposit_state.clone(),
                    state_label: state_label(&w.deposit_state).to_owned(),
                    deposited_at: w.deposited_at.as_ref().map(rfc3339),
                    idflux: Some(w.idflux.clone()).filter(|s| !s.is_empty()),
                }),
                conformity: Some(w.conformity.clone()).filter(|s| !s.is_empty()),
                anomalies: w.anomalies,
                crm: w.crm_received.then(|| BoardCrmView {
                    received_at: w.crm_received_at.as_ref().map(rfc3339),
                    rates: w.rates,
                    identifier: w.crm_identifier.clone(),
                }),
            })
            .collect(),
        alerts: r.alerts.iter().map(alert_view).collect(),
    }
}

/// A depositing account whose credentials were refused at their last verification.
#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct RefusedAccountView {
    pub siret: String,
    pub user: String,
    /// The establishment's next due date, RFC 3339 UTC.
    pub next_due: Option<String>,
    /// The same in French words, Paris time.
    pub next_due_fr: Option<String>,
    /// When the refusal was seen, RFC 3339 UTC.
    pub checked_at: Option<String>,
    /// The refusal, in French.
    pub message: String,
}

fn refused_view(a: &DepositAccount) -> RefusedAccountView {
    RefusedAccountView {
        siret: a.siret.clone(),
        user: a.user.clone(),
        next_due: a.next_due.as_ref().map(rfc3339),
        next_due_fr: a.next_due.as_ref().map(french),
        checked_at: a.last_checked_at.as_ref().map(rfc3339),
        message: a.last_check_message.clone(),
    }
}

/// What the status adds for a signed-in account (`iea status`' alert line and refused
/// accounts).
#[derive(Serialize, ToSchema, Clone, PartialEq, Debug)]
pub struct StatusAlertsView {
    /// How many alerts of the deadline board the session may see.
    pub count: u32,
    pub most_urgent: Option<AlertView>,
    /// The French line (« Échéances DSN : … »).
    pub line: String,
    pub refused_deposit_accounts: Vec<RefusedAccountView>,
}

/// « Échéances DSN : 2 alertes ; la plus urgente — … », as `iea status` writes it.
pub fn alerts_line(count: u32, most_urgent: Option<&BoardAlert>) -> String {
    match (most_urgent, count) {
        (_, 0) | (None, _) => "Échéances DSN : aucune alerte.".to_owned(),
        (Some(a), 1) => format!("Échéances DSN : 1 alerte — {}", a.message),
        (Some(a), n) => format!(
            "Échéances DSN : {n} alertes ; la plus urgente — {}",
            a.message
        ),
    }
}

pub fn status_alerts_view(r: &StatusReport) -> StatusAlertsView {
    StatusAlertsView {
        count: r.alert_count,
        most_urgent: r.most_urgent_alert.as_ref().map(alert_view),
        line: alerts_line(r.alert_count, r.most_urgent_alert.as_ref()),
        refused_deposit_accounts: r
            .refused_deposit_accounts
            .iter()
            .map(refused_view)
            .collect(),
    }
}

/// The status and what it adds for the session, from one `GetStatus`.
pub async fn status_with_alerts(
    state: &AppState,
    current: &Current,
) -> Result<(StatusView, StatusAlertsView), WebError> {
    let r = status_report(state, current, false).await?;
    Ok((StatusView::from(&r), status_alerts_view(&r)))
}

/// The orchestrator's status as the session may see it; `include_agents`: each agent's
/// health checked now (a round trip to each, 2 s at most).
pub async fn status_report(
    state: &AppState,
    current: &Current,
    include_agents: bool,
) -> Result<StatusReport, WebError> {
    Ok(StatusClient::new(state.orchestrator.channel())
        .get_status(authed(
            &current.session.token,
            GetStatusRequest { include_agents },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "GetStatus"))
        .await?
        .into_inner())
}

/// The status page's panel: the alert line (to the board) and each refused account.
pub fn status_panel(a: &StatusAlertsView) -> Markup {
    html! {
        section id="deadlines" data-alerts=(a.count) class=(if a.count > 0 { "warning" } else { "" }) {
            p class="alert-line" {
                (a.line) " "
                a href="/echeancier" { "Voir l'échéancier" }
            }
        }
        @if !a.refused_deposit_accounts.is_empty() {
            section id="refused-accounts" class="error" {
                @for r in &a.refused_deposit_accounts {
                    p class="refused-account" data-user=(r.user) {
                        "Identifiants Net-entreprises refusés pour les dépôts DSN : compte « " (r.user)
                        " » (SIRET " (r.siret)
                        @if let Some(d) = &r.next_due_fr { ", prochaine échéance le " (d) }
                        ") — " (r.message) " Corrigez-les avant l'échéance ("
                        a href="/comptes" { "Comptes utilisateurs" } ")."
                    }
                }
            }
        }
    }
}

/// The page's filter: `?siret=…`.
#[derive(Deserialize, Default)]
pub struct BoardQuery {
    #[serde(default)]
    siret: String,
}

fn conformity_class(c: &str) -> &'static str {
    match c {
        "ok" => "ok",
        "ko" => "ko",
        _ => "",
    }
}

fn render(
    current: &Current,
    siret: &str,
    board: Result<BoardReport, WebError>,
    message: Option<(&str, String)>,
    status: StatusCode,
) -> Response {
    let status = match &board {
        Err(e) => e.status,
        Ok(_) => status,
    };
    let body = html! {
        @if let Some((kind, text)) = &message { (notice(kind, text)) }
        @if let Err(e) = &board { (notice("error", &e.message)) }
        section {
            form method="get" action="/echeancier" id="board-filter" class="inline" {
                label for="siret" { "SIRET de l'établissement (facultatif : tous ceux que vous suivez)" }
                input type="text" id="siret" name="siret" value=(siret.trim()) inputmode="numeric" maxlength="40";
                " "
                button type="submit" { "Afficher" }
            }
            " "
            (follow_now_form(current, None))
        }
        @if let Ok(r) = &board {
            section id="alerts" data-count=(r.alerts.len()) {
                h2 { "Alertes" }
                @if r.alerts.is_empty() {
                    p class="muted" id="no-alerts" { "Aucune alerte." }
                } @else {
                    p { "La plus urgente d'abord :" }
                    ol {
                        @for a in &r.alerts {
                            li class="alert" data-code=(a.code) {
                                (a.message)
                                @if a.deposit_id != 0 {
                                    " — " a href={ "/declarations/" (a.deposit_id) } { "dépôt n° " (a.deposit_id) }
                                }
                            }
                        }
                    }
                }
            }
            section {
                h2 {
                    "Déclarations"
                    @if let Some(t) = &r.computed_at { span class="muted" { " (au " (french(t)) ")" } }
                }
                @if r.rows.is_empty() {
                    p class="muted" id="no-rows" { "Aucun établissement : aucun dépôt ni compte désigné pour un SIRET." }
                } @else {
                    table id="board" {
                        thead { tr {
                            th { "SIRET" } th { "Mois" } th { "Échéance" } th { "Dépôt" }
                            th { "Conformité" } th { "CRM PAS" }
                        } }
                        tbody {
                            @for w in &r.rows {
                                tr data-siret=(w.siret) data-month=(w.month) data-conformity=(w.conformity) data-crm=(w.crm_received) {
                                    td { (w.siret) }
                                    td { (month_text(&w.month)) }
                                    td class={ "due" @if w.overdue { " ko" } } {
                                        @if let Some(d) = &w.due { (french(d)) br; }
                                        span class="days-left" { (w.due_words) }
                                    }
                                    td class="deposit" {
                                        @if w.deposit_id == 0 { "aucun dépôt" } @else {
                                            a href={ "/declarations/" (w.deposit_id) } { "n° " (w.deposit_id) }
                                            " " (state_label(&w.deposit_state))
                                            @if let Some(t) = &w.deposited_at { br; "le " (french(t)) }
                                        }
                                    }
                                    td class={ "conformity " (conformity_class(&w.conformity)) } {
                                        @if w.deposit_id != 0 && !w.conformity.is_empty() {
                                            a href={ "/declarations/" (w.deposit_id) "/retours" } { (board_conformity_fr(w)) }
                                        } @else { (board_conformity_fr(w)) }
                                    }
                                    td class="crm" {
                                        @if w.crm_received {
                                            "Reçu"
                                            @if let Some(t) = &w.crm_received_at { " le " (french(t)) }
                                            " (" (w.rates) " taux, n° " (w.crm_identifier) ")"
                                        } @else if !w.conformity.is_empty() { "Attendu" } @else { "—" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    (
        status,
        Html(page("Échéancier", Some(current), body).into_string()),
    )
        .into_response()
}

/// The board page, with a message above it (after « Suivre maintenant »).
pub async fn render_page(
    state: &AppState,
    current: &Current,
    siret: &str,
    message: Option<(&str, String)>,
    status: StatusCode,
) -> Response {
    let board = get_board(state, current, siret).await;
    render(current, siret, board, message, status)
}

async fn show(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    q: Result<Query<BoardQuery>, QueryRejection>,
) -> Response {
    match q {
        Ok(Query(q)) => render_page(&state, &current, &q.siret, None, StatusCode::OK).await,
        Err(_) => render(
            &current,
            "",
            Err(WebError::invalid(
                "Les paramètres de la demande ne sont pas valides.",
            )),
            None,
            StatusCode::BAD_REQUEST,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(message: &str) -> BoardAlert {
        BoardAlert {
            code: "not_deposited".into(),
            message: message.into(),
            urgency: 3,
            ..Default::default()
        }
    }

    #[test]
    fn the_alert_line_is_the_command_s() {
        assert_eq!(alerts_line(0, None), "Échéances DSN : aucune alerte.");
        let a = alert("La DSN de novembre 2026 n'est pas déposée.");
        assert_eq!(
            alerts_line(1, Some(&a)),
            "Échéances DSN : 1 alerte — La DSN de novembre 2026 n'est pas déposée."
        );
        assert_eq!(
            alerts_line(3, Some(&a)),
            "Échéances DSN : 3 alertes ; la plus urgente — La DSN de novembre 2026 n'est pas déposée."
        );
    }

    #[test]
    fn the_board_for_programs_keeps_every_fact() {
        let r = BoardReport {
            rows: vec![BoardRow {
                siret: "78214563500010".into(),
                month: "2026-11".into(),
                due: Some(prost_types::Timestamp {
                    seconds: 1_765_796_400,
                    nanos: 0,
                }),
                days_left: 4,
                deposit_id: 7,
                deposit_state: "accepted".into(),
                conformity: "ano".into(),
                anomalies: 2,
                ..Default::default()
            }],
            alerts: vec![alert("x")],
            computed_at: None,
        };
        let v = serde_json::to_value(board_view(&r)).unwrap();
        assert_eq!(v["rows"][0]["month_label"], "novembre 2026");
        assert_eq!(v["rows"][0]["due"], "2025-12-15T11:00:00Z");
        assert_eq!(v["rows"][0]["due_fr"], "15 décembre 2025 à 12 h 00");
        assert_eq!(v["rows"][0]["deposit"]["state_label"], "Accepté");
        assert_eq!(v["rows"][0]["conformity"], "ano");
        assert_eq!(v["rows"][0]["overdue"], false);
        assert_eq!(v["rows"][0]["crm"], serde_json::Value::Null);
        assert_eq!(v["alerts"][0]["deposit_id"], serde_json::Value::Null);
        assert_eq!(v["alerts"][0]["code"], "not_deposited");
    }
}
