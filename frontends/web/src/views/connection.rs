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
    ProposeRepairsRequest, ProposeRepairsResponse, ProxyView, TestServerAccessRequest,
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
        .route("/parametres/enregistrer", post(save))
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
        section {
            // « Enregistrer » saves the whole form (validated as a whole by the
            // orchestrator, or nothing is saved); « Quitter » leaves without saving.
            form method="post" action="/parametres/enregistrer" id="settings" {
                (csrf_field(current))
                label for="connection_type" { "Type de connexion" }
                select id="connection_type" name="connection_type" {
                    @for (value, t) in [("direct", ConnectionType::Direct), ("proxy", ConnectionType::Proxy), ("system", ConnectionType::System)] {
                        option value=(value) selected[s.connection_type == t as i32] { (type_label(t as i32)) }
                    }
                }
                fieldset {
                    legend { "Proxy (pour le type « Par un proxy »)" }
                    label for="proxy_host" { "Adresse du proxy" }
                    input type="text" id="proxy_host" name="proxy_host" value=(proxy.host);
                    label for="proxy_port" { "Port" }
                    input type="text" id="proxy_port" name="proxy_port" inputmode="numeric" value=(if proxy.port == 0 { String::new() } else { proxy.port.to_string() });
                    label for="proxy_username" { "Identifiant (facultatif)" }
                    input type="text" id="proxy_username" name="proxy_username" value=(proxy.username);
                    label for="proxy_password" {
                        "Mot de passe du proxy"
                        @if proxy.password_set { " (enregistré ; laissez vide pour le garder)" }
                    }
                    input type="password" id="proxy_password" name="proxy_password" autocomplete="off";
                }
                label for="mode" { "Mode de connexion" }
                select id="mode" name="mode" {
                    @for (value, m) in [("normal", ConnectionMode::Normal), ("extended", ConnectionMode::Extended), ("secure", ConnectionMode::Secure)] {
                        option value=(value) selected[s.mode == m as i32] { (mode_label(m as i32)) }
                    }
                }
                label for="auth_server" { "Serveur d'authentification" }
                input type="text" id="auth_server" name="auth_server" class="address" value=(s.auth_server);
                label for="update_server" { "Serveur de mises à jour" }
                input type="text" id="update_server" name="update_server" class="address" value=(s.update_server);
                label for="net_entreprises" { "Authentification Net-entreprises" }
                input type="text" id="net_entreprises" name="net_entreprises" class="address" value=(s.net_entreprises);
                div {
                    button type="submit" id="save-settings" { "Enregistrer" }
                    " "
                    a href="/" id="quit-settings" class="button" { "Quitter" }
                }
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

/// « Paramètres de connexion » as a person or a program types them. No `Debug`: it holds
/// the proxy password.
#[derive(Deserialize, Default)]
pub struct SettingsForm {
    /// `direct`, `proxy` or `system`.
    #[serde(default)]
    pub connection_type: String,
    /// `normal`, `extended` or `secure`.
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub proxy_host: String,
    #[serde(default)]
    pub proxy_port: String,
    #[serde(default)]
    pub proxy_username: String,
    /// Empty: the stored password is kept.
    #[serde(default)]
    pub proxy_password: String,
    #[serde(default)]
    pub auth_server: String,
    #[serde(default)]
    pub update_server: String,
    #[serde(default)]
    pub net_entreprises: String,
}

pub fn parse_type(t: &str) -> Result<ConnectionType, WebError> {
    match t.trim() {
        "direct" => Ok(ConnectionType::Direct),
        "proxy" => Ok(ConnectionType::Proxy),
        "system" => Ok(ConnectionType::System),
        _ => Err(WebError::invalid(
            "Le type de connexion doit être « direct », « proxy » ou « system ».",
        )),
    }
}

pub fn parse_mode(m: &str) -> Result<ConnectionMode, WebError> {
    match m.trim() {
        "normal" => Ok(ConnectionMode::Normal),
        "extended" => Ok(ConnectionMode::Extended),
        "secure" => Ok(ConnectionMode::Secure),
        _ => Err(WebError::invalid(
            "Le mode de connexion doit être « normal », « extended » ou « secure ».",
        )),
    }
}

/// The settings to save, from the form; bad input is refused before anything is sent.
pub fn settings_of(f: SettingsForm) -> Result<ConnectionSettings, WebError> {
    let connection_type = parse_type(&f.connection_type)?;
    let mode = parse_mode(&f.mode)?;
    let port = f.proxy_port.trim();
    let port: u32 = if port.is_empty() {
        0
    } else {
        port.parse()
            .ok()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| {
                WebError::invalid("Le port du proxy doit être un nombre de 1 à 65535.")
            })?
    };
    let any_proxy = !f.proxy_host.trim().is_empty() || port != 0 || !f.proxy_username.is_empty();
    let proxy = (connection_type == ConnectionType::Proxy || any_proxy).then(|| ProxyView {
        host: f.proxy_host.trim().to_owned(),
        port,
        username: f.proxy_username.trim().to_owned(),
        password: f.proxy_password,
        password_set: false,
    });
    Ok(ConnectionSettings {
        connection_type: connection_type as i32,
        mode: mode as i32,
        proxy,
        auth_server: f.auth_server.trim().to_owned(),
        update_server: f.update_server.trim().to_owned(),
        net_entreprises: f.net_entreprises.trim().to_owned(),
    })
}

/// « Enregistrer »: the orchestrator validates the settings as a whole and saves them
/// atomically, or saves nothing.
pub async fn save_settings(
    state: &AppState,
    current: &Current,
    f: SettingsForm,
) -> Result<ConnectionSettings, WebError> {
    let settings = settings_of(f)?;
    Ok(ConnectionClient::new(state.orchestrator.channel())
        .update_connection_settings(authed(&current.session.token, settings))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "UpdateConnectionSettings"
        ))
        .await?
        .into_inner())
}

async fn save(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<SettingsForm>,
) -> Response {
    match save_settings(&state, &current, f).await {
        Ok(saved) => render(
            &current,
            &saved,
            Extra {
                message: Some((
                    "notice",
                    "Les paramètres de connexion sont enregistrés.".to_owned(),
                )),
                ..Default::default()
            },
        ),
        Err(e) => {
            let s = match settings(&state, &current).await {
                Ok(s) => s,
                Err(e) => return error_page(&e, Some(&current)),
            };
            render(
                &current,
                &s,
                Extra {
                    message: Some(("error", format!("Rien n'a été enregistré : {}", e.message))),
                    ..Default::default()
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> SettingsForm {
        SettingsForm {
            connection_type: "direct".into(),
            mode: "secure".into(),
            auth_server: "https://a.example".into(),
            update_server: "https://u.example".into(),
            net_entreprises: "https://n.example".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_form_becomes_settings_or_is_refused() {
        let s = settings_of(form()).unwrap();
        assert_eq!(s.connection_type, ConnectionType::Direct as i32);
        assert_eq!(s.mode, ConnectionMode::Secure as i32);
        assert!(s.proxy.is_none());
        let s = settings_of(SettingsForm {
            connection_type: "proxy".into(),
            proxy_host: " proxy.local ".into(),
            proxy_port: "3128".into(),
            ..form()
        })
        .unwrap();
        let p = s.proxy.unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.local", 3128));
        for bad in [
            SettingsForm {
                connection_type: "ftp".into(),
                ..form()
            },
            SettingsForm {
                mode: "fast".into(),
                ..form()
            },
            SettingsForm {
                proxy_port: "70000".into(),
                ..form()
            },
            SettingsForm {
                proxy_port: "x".into(),
                ..form()
            },
        ] {
            assert_eq!(settings_of(bad).unwrap_err().code, "invalid_input");
        }
    }
}
