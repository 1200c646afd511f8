//! « Paramètres de connexion »: the saved settings (type, mode, proxy without its
//! password, the three addresses) and « Tester l'accès aux serveurs », one row per
//! address: ✔ or ✘, the failing step, the latency and the sentence; the repair assistant
//! (« Proposer une réparation »: each proposal, already tested, with « Appliquer »).

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::response::Response;
use axum::routing::{get, post};
use iea_proto::common::v1::{ConnectionMode, ConnectionType, ProbeStep};
use iea_proto::v1::connection_client::ConnectionClient;
use iea_proto::v1::{
    ApplyRepairRequest, ApplyRepairResponse, ConnectionSettings, GetConnectionSettingsRequest,
    ProposeRepairsRequest, ProposeRepairsResponse, TestServerAccessRequest,
    TestServerAccessResponse,
};
use maud::html;
use serde::Deserialize;
use tracing::Instrument;

use super::{csrf_field, error_page, ok, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed, millis};
use crate::sessions::Current;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/parametres", get(show))
        .route("/parametres/tester", post(test))
        .route("/parametres/reparer", post(propose))
        .route("/parametres/appliquer", post(apply))
}

pub fn type_label(t: i32) -> &'static str {
    match ConnectionType::try_from(t).unwrap_or(ConnectionType::Unspecified) {
        ConnectionType::Proxy => "Par un proxy",
        ConnectionType::Direct => "Directe",
        ConnectionType::System => "Paramètres du système",
        ConnectionType::Unspecified => "Non précisé",
    }
}

pub fn mode_label(m: i32) -> &'static str {
    match ConnectionMode::try_from(m).unwrap_or(ConnectionMode::Unspecified) {
        ConnectionMode::Normal => "Normal",
        ConnectionMode::Extended => "Étendu",
        ConnectionMode::Secure => "Sécurisé",
        ConnectionMode::Unspecified => "Non précisé",
    }
}

pub fn target_label(target: &str) -> &str {
    match target {
        "auth_server" => "Serveur d'authentification",
        "update_server" => "Serveur de mises à jour",
        "net_entreprises" => "Authentification Net-entreprises",
        other => other,
    }
}

pub fn step_label(step: i32) -> &'static str {
    match ProbeStep::try_from(step).unwrap_or(ProbeStep::Unspecified) {
        ProbeStep::Ok => "",
        ProbeStep::Address => "adresse",
        ProbeStep::NameResolution => "résolution du nom",
        ProbeStep::Proxy => "proxy",
        ProbeStep::Connect => "connexion TCP",
        ProbeStep::Tls => "TLS",
        ProbeStep::Http => "HTTP",
        ProbeStep::Timeout => "délai dépassé",
        ProbeStep::Unspecified => "inconnue",
    }
}

pub async fn settings(state: &AppState, current: &Current) -> Result<ConnectionSettings, WebError> {
    Ok(ConnectionClient::new(state.orchestrator.channel())
        .get_connection_settings(authed(
            &current.session.token,
            GetConnectionSettingsRequest {},
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "GetConnectionSettings"
        ))
        .await?
        .into_inner())
}

pub async fn test_access(
    state: &AppState,
    current: &Current,
) -> Result<TestServerAccessResponse, WebError> {
    Ok(ConnectionClient::new(state.orchestrator.channel())
        .test_server_access(authed(
            &current.session.token,
            TestServerAccessRequest { settings: None },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "TestServerAccess"
        ))
        .await?
        .into_inner())
}

pub async fn propose_repairs(
    state: &AppState,
    current: &Current,
) -> Result<ProposeRepairsResponse, WebError> {
    Ok(ConnectionClient::new(state.orchestrator.channel())
        .propose_repairs(authed(&current.session.token, ProposeRepairsRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "ProposeRepairs"))
        .await?
        .into_inner())
}

pub async fn apply_repair(
    state: &AppState,
    current: &Current,
    id: &str,
) -> Result<ApplyRepairResponse, WebError> {
    Ok(ConnectionClient::new(state.orchestrator.channel())
        .apply_repair(authed(
            &current.session.token,
            ApplyRepairRequest { id: id.to_owned() },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "ApplyRepair"))
        .await?
        .into_inner())
}

/// What the page shows beside the settings.
#[derive(Default)]
struct Extra<'a> {
    test: Option<&'a TestServerAccessResponse>,
    repairs: Option<&'a ProposeRepairsResponse>,
    message: Option<(&'a str, String)>,
}

fn render(current: &Current, s: &ConnectionSettings, extra: Extra<'_>) -> Response {
    let test = extra
        .test
        .or(extra.repairs.and_then(|r| r.current.as_ref()));
    let proxy = s.proxy.clone().unwrap_or_default();
    let body = html! {
        @if let Some((kind, text)) = &extra.message { (super::notice(kind, text)) }
        section {
            table id="settings" {
                tr { th { "Type de connexion" } td { (type_label(s.connection_type)) } }
                @if s.connection_type == ConnectionType::Proxy as i32 {
                    tr { th { "Proxy" } td { (proxy.host) ":" (proxy.port)
                        @if !proxy.username.is_empty() { " (identifiant " (proxy.username) ", mot de passe " @if proxy.password_set { "enregistré" } @else { "absent" } ")" } } }
                }
                tr { th { "Mode de connexion" } td { (mode_label(s.mode)) } }
                tr { th { "Serveur d'authentification" } td { (s.auth_server) } }
                tr { th { "Serveur de mises à jour" } td { (s.update_server) } }
                tr { th { "Authentification Net-entreprises" } td { (s.net_entreprises) } }
            }
            form method="post" action="/parametres/tester" {
                (csrf_field(current))
                button type="submit" id="test-access" { "Tester l'accès aux serveurs" }
            }
            @if test.is_some_and(|t| !t.all_reachable) {
                form method="post" action="/parametres/reparer" {
                    (csrf_field(current))
                    button type="submit" id="propose-repairs" { "Proposer une réparation" }
                }
            }
        }
        @if let Some(r) = extra.repairs {
            section id="repairs" {
                h2 { "Réparations proposées" }
                @if r.proposals.is_empty() {
                    p { "Aucune réparation connue ne rétablit l'accès avec ces paramètres." }
                }
                @for p in &r.proposals {
                    @let works = p.test.as_ref().is_some_and(|t| t.all_reachable);
                    div class="proposal" data-id=(p.id) {
                        p { (p.description) }
                        p class="muted" { @if works { "Testée : tous les serveurs répondent." } @else { "Testée : l'accès reste incomplet." } }
                        form method="post" action="/parametres/appliquer" {
                            (csrf_field(current))
                            input type="hidden" name="id" value=(p.id);
                            button type="submit" class="apply" { "Appliquer" }
                        }
                    }
                }
            }
        }
        @if let Some(t) = test {
            section class=(if t.all_reachable { "notice" } else { "error" }) {
                @if !t.message.is_empty() { p { (t.message) } }
                table id="access-test" {
                    thead { tr { th { "Adresse" } th { "Résultat" } th { "Étape en échec" } th { "Temps" } th { "Explication" } } }
                    tbody {
                        @for row in &t.tests {
                            @let r = row.result.clone().unwrap_or_default();
                            tr data-target=(row.target) {
                                td { (target_label(&row.target)) br; span class="muted" { (r.address) } }
                                td { @if r.reachable { span class="ok" { "✔" } } @else { span class="ko" { "✘" } } }
                                td class="step" { @if !r.reachable { (step_label(r.step)) } }
                                td { @if let Some(l) = &r.latency { (millis(l)) " ms" } }
                                td { (r.message) }
                            }
                        }
                    }
                }
            }
        }
    };
    ok(page("Paramètres de connexion", Some(current), body))
}

async fn show(State(state): State<AppState>, Extension(current): Extension<Current>) -> Response {
    match settings(&state, &current).await {
        Ok(s) => render(&current, &s, Extra::default()),
        Err(e) => error_page(&e, Some(&current)),
    }
}

async fn test(State(state): State<AppState>, Extension(current): Extension<Current>) -> Response {
    let s = match settings(&state, &current).await {
        Ok(s) => s,
        Err(e) => return error_page(&e, Some(&current)),
    };
    match test_access(&state, &current).await {
        Ok(t) => render(
            &current,
            &s,
            Extra {
                test: Some(&t),
                ..Default::default()
            },
        ),
        Err(e) => error_page(&e, Some(&current)),
    }
}

async fn propose(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Response {
    let s = match settings(&state, &current).await {
        Ok(s) => s,
        Err(e) => return error_page(&e, Some(&current)),
    };
    match propose_repairs(&state, &current).await {
        Ok(r) => render(
            &current,
            &s,
            Extra {
                repairs: Some(&r),
                ..Default::default()
            },
        ),
        Err(e) => error_page(&e, Some(&current)),
    }
}

#[derive(Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    id: String,
}

/// Applies a proposal, then tests the saved settings again.
async fn apply(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<ApplyForm>,
) -> Response {
    let applied = match apply_repair(&state, &current, &f.id).await {
        Ok(a) => a,
        Err(e) => return error_page(&e, Some(&current)),
    };
    let s = applied.saved.clone().unwrap_or_default();
    let test = test_access(&state, &current).await.ok();
    let changes = if applied.changes.is_empty() {
        "La réparation est appliquée et enregistrée.".to_owned()
    } else {
        format!(
            "La réparation est appliquée et enregistrée : {}",
            applied.changes
        )
    };
    render(
        &current,
        &s,
        Extra {
            test: test.as_ref(),
            message: Some(("notice", changes)),
            ..Default::default()
        },
    )
}
