//! « État de la connexion »: the indicator's icon, its reason and since when (updated live
//! by `/static/console.js` from the status events), « Relancer l'authentification », and
//! the assistance mode on (with the scripts warning) and off (mot de passe du jour); for
//! the signed-in account, as `iea status` adds them, the deadline board's alert line and
//! the depositing accounts whose credentials were refused (`views::board`).

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::response::Response;
use axum::routing::{get, post};
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::{
    ActivateAssistanceRequest, DeactivateAssistanceRequest, GetStatusRequest, ReauthenticateRequest,
};
use maud::{Markup, html};
use serde::Deserialize;
use tracing::Instrument;

use super::{csrf_field, error_page, notice, ok, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed};
use crate::sessions::Current;
use crate::status::{IndicatorState, ServicesView, StatusView};
use crate::views::board::StatusAlertsView;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(show))
        .route("/relancer", post(reauthenticate))
        .route("/assistance/activer", post(activate))
        .route("/assistance/desactiver", post(deactivate))
}

/// The current status, asked of the orchestrator.
pub async fn current_status(state: &AppState, current: &Current) -> Result<StatusView, WebError> {
    let r = StatusClient::new(state.orchestrator.channel())
        .get_status(authed(&current.session.token, GetStatusRequest::default()))
        .instrument(tracing::info_span!("orchestrator", rpc = "GetStatus"))
        .await?
        .into_inner();
    Ok(StatusView::from(&r))
}

/// The status panel; `console.js` finds it by its id and fields.
pub fn panel(s: &StatusView) -> Markup {
    html! {
        section id="status" data-indicator=(s.indicator.as_str()) {
            img class="indicator" src=(s.icon) alt=(s.label) title=(s.label);
            div {
                div class="label" data-field="label" { (s.label) }
                div data-field="reason" { (s.reason) }
                div class="since" data-field="since" {
                    @if let Some(since) = &s.since_fr { "depuis le " (since) }
                }
                div class="muted" {
                    "Installation " (s.installation_id) ", Impact emploi version "
                    span data-field="version" { (s.software_version) }
                }
                @if let Some(v) = &s.update_available {
                    div class="warning" {
                        @if s.update_required { "Mise à jour obligatoire : " } @else { "Mise à jour disponible : " }
                        (v)
                    }
                }
            }
        }
    }
}

/// The status page; `services`: the report whose agents were checked, for their table.
fn render(
    current: &Current,
    s: &StatusView,
    alerts: Option<&StatusAlertsView>,
    message: Option<(&str, &str)>,
    services: Option<&ServicesView>,
) -> Response {
    let body = html! {
        @if let Some((kind, text)) = message { (notice(kind, text)) }
        (panel(s))
        @if let Some(a) = alerts { (super::board::status_panel(a)) }
        section {
            form method="post" action="/relancer" class="inline" {
                (csrf_field(current))
                button type="submit" id="reauthenticate" { "Relancer l'authentification" }
            }
        }
        section {
            h2 { "Mode assistance" }
            // Both forms are in the page; the one that does not apply is hidden, and
            // console.js swaps them when the status changes.
            @let on = s.indicator == IndicatorState::Assistance;
            form method="post" action="/assistance/desactiver" id="assistance-off" hidden[!on] {
                (csrf_field(current))
                label for="daily_password" { "Mot de passe du jour (donné par le support)" }
                input type="password" id="daily_password" name="daily_password" autocomplete="off" required;
                div { button type="submit" id="deactivate-assistance" { "Désactiver le mode assistance" } }
            }
            form method="post" action="/assistance/activer" id="assistance-on" hidden[on] {
                p class="muted" { "En mode assistance, les fichiers de scripts ne seront pas pris en compte automatiquement !" }
                (csrf_field(current))
                button type="submit" id="activate-assistance" { "Activer le mode assistance" }
            }
        }
        @if let Some(r) = services { (services_table(r)) }
    };
    ok(page("État de la connexion", Some(current), body))
}

/// The deadline alerts and refused accounts, for a page rendered after an action (the
/// action's own answer does not carry them).
async fn alerts(state: &AppState, current: &Current) -> Option<StatusAlertsView> {
    super::board::status_with_alerts(state, current)
        .await
        .ok()
        .map(|(_, a)| a)
}

async fn show(State(state): State<AppState>, Extension(current): Extension<Current>) -> Response {
    match super::board::status_report(&state, &current, true).await {
        Ok(r) => {
            let alerts = super::board::status_alerts_view(&r);
            render(
                &current,
                &StatusView::from(&r),
                Some(&alerts),
                None,
                Some(&ServicesView::from(&r)),
            )
        }
        Err(e) => error_page(&e, Some(&current)),
    }
}

/// Each agent as the orchestrator found it just now: in service (and how fast), or not,
/// and an agent of another version than the orchestrator's named.
fn services_table(r: &ServicesView) -> Markup {
    html! {
        section id="services" {
            h2 { "Services" }
            table {
                tr {
                    th { "Orchestrateur" }
                    td { "en service" }
                    td { "version " (r.orchestrator_version) }
                }
                @for a in &r.agents {
                    tr data-agent=(a.name) data-healthy=(a.healthy) class=(if a.healthy && !a.version_mismatch { "" } else { "warning" }) {
                        th { (a.label) }
                        td {
                            @if let (true, Some(ms)) = (a.healthy, a.latency_ms) { "en service (" (ms) " ms)" }
                            @else if a.healthy { "en service" }
                            @else { "injoignable" }
                        }
                        td {
                            @if !a.version.is_empty() { "version " (a.version) }
                            @if !a.message.is_empty() { div class="message" { (a.message) } }
                        }
                    }
                }
            }
        }
    }
}

async fn reauthenticate(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Response {
    let r = StatusClient::new(state.orchestrator.channel())
        .reauthenticate(authed(&current.session.token, ReauthenticateRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "Reauthenticate"))
        .await;
    match r {
        Ok(r) => {
            let s = StatusView::from(r.get_ref());
            let kind = if s.indicator == IndicatorState::Connected {
                "notice"
            } else {
                "warning"
            };
            let a = alerts(&state, &current).await;
            render(
                &current,
                &s,
                a.as_ref(),
                Some((kind, "Authentification relancée.")),
                None,
            )
        }
        Err(e) => error_page(&WebError::from(e), Some(&current)),
    }
}

async fn activate(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Response {
    let r = StatusClient::new(state.orchestrator.channel())
        .activate_assistance(authed(&current.session.token, ActivateAssistanceRequest {}))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "ActivateAssistance"
        ))
        .await;
    match r {
        Ok(r) => {
            let r = r.into_inner();
            let s = StatusView::from(&r.status.unwrap_or_default());
            let a = alerts(&state, &current).await;
            render(
                &current,
                &s,
                a.as_ref(),
                Some(("warning", &r.warning)),
                None,
            )
        }
        Err(e) => error_page(&WebError::from(e), Some(&current)),
    }
}

/// No `Debug`: it holds the daily password.
#[derive(Deserialize)]
pub struct Deactivate {
    #[serde(default)]
    daily_password: String,
}

async fn deactivate(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<Deactivate>,
) -> Response {
    let r = StatusClient::new(state.orchestrator.channel())
        .deactivate_assistance(authed(
            &current.session.token,
            DeactivateAssistanceRequest {
                daily_password: f.daily_password,
            },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "DeactivateAssistance"
        ))
        .await;
    match r {
        Ok(r) => {
            let a = alerts(&state, &current).await;
            render(
                &current,
                &StatusView::from(r.get_ref()),
                a.as_ref(),
                Some(("notice", "Le mode assistance est désactivé.")),
                None,
            )
        }
        Err(e) => {
            let e = WebError::from(e);
            match super::board::status_with_alerts(&state, &current).await {
                Ok((s, a)) => render(&current, &s, Some(&a), Some(("error", &e.message)), None),
                Err(_) => error_page(&e, Some(&current)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iea_proto::v1::{AgentHealth, StatusReport};

    /// An agent that does not answer, and one of another version, stand out with the
    /// orchestrator's sentence.
    #[test]
    fn the_services_table_names_an_unreachable_agent_and_one_of_another_version() {
        let r = StatusReport {
            orchestrator_version: "0.2.0".into(),
            agents: vec![
                AgentHealth {
                    name: "deposit-agent".into(),
                    healthy: true,
                    version: "0.1.0".into(),
                    version_mismatch: true,
                    message: "Le service « deposit-agent » est en version 0.1.0".into(),
                    ..Default::default()
                },
                AgentHealth {
                    name: "update-client".into(),
                    healthy: false,
                    message: "Le service « update-client » ne répond pas".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let html = services_table(&ServicesView::from(&r)).into_string();
        assert!(html.contains("version 0.2.0"), "{html}");
        assert!(
            html.contains(r#"<tr data-agent="deposit-agent" data-healthy="true" class="warning">"#),
            "{html}"
        );
        assert!(html.contains("est en version 0.1.0"), "{html}");
        assert!(
            html.contains(
                r#"<tr data-agent="update-client" data-healthy="false" class="warning">"#
            ),
            "{html}"
        );
        assert!(html.contains("injoignable"), "{html}");
        assert!(html.contains("ne répond pas"), "{html}");
    }
}
