//! « Comptes utilisateurs »: the accounts with their role, each with its Net-entreprises
//! identity (never its password) and last verification; « Vérifier » one account; set an
//! identity, confirmed by that account's Impact emploi password.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::users_client::UsersClient;
use iea_proto::v1::{
    AddUserRequest, CredentialSummary, GetInstallationModeRequest, InstallationMode,
    InstallationModeMessage, ListCredentialsRequest, ListUsersRequest, NetEntreprisesIdentity,
    RemoveUserRequest, Role, SetCredentialsRequest, UserInfo, VerificationOutcome,
    VerificationResult, VerifyAllCredentialsRequest, VerifyCredentialsRequest,
};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::{csrf_field, error_page, notice, ok, page};
use crate::AppState;
use crate::api::{VerificationView, verification_view};
use crate::jobs::JobState;
use crate::orchestrator::{ErrorDetail, WebError, authed, french};
use crate::sessions::Current;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/comptes", get(show))
        .route("/comptes/verifier", post(verify))
        .route("/comptes/identite", post(set_identity))
        .route("/comptes/verifier-tout", post(verify_all))
        .route("/comptes/ajouter", post(add))
        .route("/comptes/supprimer", post(remove))
        .route("/comptes/mode", post(set_mode_form))
}

/// An account as the page lists it.
pub struct Account {
    pub name: String,
    pub administrator: bool,
    pub credentials: Option<CredentialSummary>,
}

/// The accounts the session may see, with their identities. A user who may not list the
/// accounts sees their own.
pub async fn accounts(state: &AppState, current: &Current) -> Result<Vec<Account>, WebError> {
    let token = &current.session.token;
    let users = UsersClient::new(state.orchestrator.channel())
        .list_users(authed(token, ListUsersRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "ListUsers"))
        .await;
    let users: Vec<(String, bool)> = match users {
        Ok(r) => r
            .into_inner()
            .users
            .into_iter()
            .map(|u| (u.name, u.role == Role::Administrator as i32))
            .collect(),
        Err(e) if e.code() == tonic::Code::PermissionDenied => {
            vec![(
                current.session.user.clone(),
                current.session.role == "administrator",
            )]
        }
        Err(e) => return Err(e.into()),
    };
    let creds = CredentialsClient::new(state.orchestrator.channel())
        .list_credentials(authed(token, ListCredentialsRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "ListCredentials"))
        .await?
        .into_inner()
        .credentials;
    Ok(users
        .into_iter()
        .map(|(name, administrator)| Account {
            credentials: creds.iter().find(|c| c.user == name).cloned(),
            name,
            administrator,
        })
        .collect())
}

/// French name of a verification outcome.
pub fn outcome_label(outcome: i32) -> &'static str {
    match VerificationOutcome::try_from(outcome).unwrap_or(VerificationOutcome::Unspecified) {
        VerificationOutcome::Valid => "Identifiants valides",
        VerificationOutcome::InvalidCredentials => "Identifiants refusés",
        VerificationOutcome::PasswordExpired => "Mot de passe expiré",
        VerificationOutcome::NotRegistered => "Déclarant non inscrit",
        VerificationOutcome::AccountLocked => "Compte bloqué",
        VerificationOutcome::RejectedFormat => "Format refusé",
        VerificationOutcome::Unavailable => "Net-entreprises injoignable",
        VerificationOutcome::Unexpected => "Réponse inattendue",
        VerificationOutcome::InvalidInput => "Identité mal saisie",
        VerificationOutcome::Unspecified => "Non vérifié",
    }
}

/// One line describing a verification result.
pub fn verification_sentence(v: &VerificationResult) -> String {
    if !v.blocked_reason.is_empty() {
        return v.blocked_reason.clone();
    }
    let result = v.result.clone().unwrap_or_default();
    let when = v
        .verified_at
        .as_ref()
        .map(|t| format!(" (le {})", french(t)))
        .unwrap_or_default();
    if result.message.is_empty() {
        format!("{}{when}", outcome_label(result.outcome))
    } else {
        format!(
            "{} : {}{when}",
            outcome_label(result.outcome),
            result.message
        )
    }
}

async fn render(state: &AppState, current: &Current, message: Option<(&str, String)>) -> Response {
    let list = match accounts(state, current).await {
        Ok(l) => l,
        Err(e) => return error_page(&e, Some(current)),
    };
    let job = state.verify_all.current(&current.session.user);
    let admin = current.session.role == "administrator";
    let mode = if admin {
        match installation_mode(state, current).await {
            Ok(m) => Some(m),
            Err(e) => return error_page(&e, Some(current)),
        }
    } else {
        None
    };
    let body = html! {
        @if let Some((kind, text)) = &message { (notice(kind, text)) }
        section {
            table id="accounts" {
                thead { tr { th { "Compte" } th { "Rôle" } th { "Identité Net-entreprises" } th { "Dernière vérification" } th {} } }
                tbody {
                    @for a in &list {
                        tr data-user=(a.name) {
                            td { (a.name) }
                            td { @if a.administrator { "Administrateur" } @else { "Utilisateur" } }
                            td {
                                @match a.credentials.as_ref().filter(|c| c.configured) {
                                    Some(c) => { "SIRET " (c.siret) ", " (c.nom) " " (c.prenom) }
                                    None => { span class="muted" { "Non renseignée" } }
                                }
                            }
                            td class="verification" {
                                @if let Some(v) = a.credentials.as_ref().and_then(|c| c.last_verification.as_ref()) {
                                    (verification_sentence(v))
                                }
                            }
                            td {
                                form method="post" action="/comptes/verifier" class="inline" {
                                    (csrf_field(current))
                                    input type="hidden" name="user" value=(a.name);
                                    button type="submit" class="verify" { "Vérifier" }
                                }
                                @if admin && a.name != current.session.user {
                                    " "
                                    form method="post" action="/comptes/supprimer" class="inline" {
                                        (csrf_field(current))
                                        input type="hidden" name="user" value=(a.name);
                                        button type="submit" class="remove" { "Supprimer" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/comptes/verifier-tout" {
                (csrf_field(current))
                button type="submit" id="verify-all-button" disabled[job.state == "running"] { "Tout vérifier" }
            }
        }
        (verify_all_panel(&job))
        @if let Some(mode) = mode {
            section id="installation-mode" {
                h2 { "Mode de l'installation" }
                form method="post" action="/comptes/mode" {
                    (csrf_field(current))
                    label {
                        input type="radio" name="mode" value="monoposte" checked[mode == InstallationMode::Monoposte];
                        " Monoposte (un seul compte)"
                    }
                    label {
                        input type="radio" name="mode" value="reseau" checked[mode == InstallationMode::Reseau];
                        " Réseau (un compte par poste)"
                    }
                    button type="submit" id="save-mode" { "Enregistrer le mode" }
                }
            }
            section id="add-account" {
                h2 { "Ajouter un compte" }
                form method="post" action="/comptes/ajouter" {
                    (csrf_field(current))
                    label for="new_name" { "Nom du compte" }
                    input type="text" id="new_name" name="name" required;
                    label for="new_role" { "Rôle" }
                    select id="new_role" name="role" {
                        option value="user" { "Utilisateur" }
                        option value="administrator" { "Administrateur" }
                    }
                    label for="new_password" { "Mot de passe (8 caractères au moins)" }
                    input type="password" id="new_password" name="password" autocomplete="new-password" required;
                    div { button type="submit" id="add-account-button" { "Ajouter le compte" } }
                }
            }
        }
        section {
            h2 { "Identité Net-entreprises d'un compte" }
            form method="post" action="/comptes/identite" {
                (csrf_field(current))
                label for="user" { "Compte" }
                select id="user" name="user" {
                    @for a in &list { option value=(a.name) { (a.name) } }
                }
                label for="siret" { "SIRET (14 chiffres)" }
                input type="text" id="siret" name="siret" inputmode="numeric" required;
                label for="nom" { "Nom" }
                input type="text" id="nom" name="nom" required;
                label for="prenom" { "Prénom" }
                input type="text" id="prenom" name="prenom" required;
                label for="password" { "Mot de passe Net-entreprises" }
                input type="password" id="password" name="password" autocomplete="off" required;
                label for="account_password" { "Mot de passe Impact emploi du compte (pour confirmer)" }
                input type="password" id="account_password" name="account_password" autocomplete="off" required;
                div { button type="submit" id="confirm-identity" { "Confirmer" } }
            }
        }
    };
    ok(page("Comptes utilisateurs", Some(current), body))
}

async fn show(State(state): State<AppState>, Extension(current): Extension<Current>) -> Response {
    render(&state, &current, None).await
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    user: String,
}

/// Verifies one account's identity against Net-entreprises.
pub async fn verify_one(
    state: &AppState,
    current: &Current,
    user: &str,
) -> Result<VerificationResult, WebError> {
    Ok(CredentialsClient::new(state.orchestrator.channel())
        .verify_credentials(authed(
            &current.session.token,
            VerifyCredentialsRequest {
                user: user.to_owned(),
            },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "VerifyCredentials"
        ))
        .await?
        .into_inner())
}

async fn verify(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<VerifyForm>,
) -> Response {
    let message = match verify_one(&state, &current, &f.user).await {
        Ok(v) => {
            let valid = v
                .result
                .as_ref()
                .is_some_and(|r| r.outcome == VerificationOutcome::Valid as i32);
            (
                if valid { "notice" } else { "error" },
                format!("{} — {}", f.user, verification_sentence(&v)),
            )
        }
        Err(e) => ("error", format!("{} — {}", f.user, e.message)),
    };
    render(&state, &current, Some(message)).await
}

/// No `Debug`: it holds two passwords.
#[derive(Deserialize)]
pub struct IdentityForm {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub account_password: String,
    #[serde(default)]
    pub siret: String,
    #[serde(default)]
    pub nom: String,
    #[serde(default)]
    pub prenom: String,
    #[serde(default)]
    pub password: String,
}

/// Sets an account's identity; the orchestrator checks the account password and the
/// identity's form.
pub async fn set_one(
    state: &AppState,
    current: &Current,
    f: IdentityForm,
) -> Result<CredentialSummary, WebError> {
    Ok(CredentialsClient::new(state.orchestrator.channel())
        .set_credentials(authed(
            &current.session.token,
            SetCredentialsRequest {
                user: f.user,
                account_password: f.account_password,
                identity: Some(NetEntreprisesIdentity {
                    siret: f.siret,
                    nom: f.nom,
                    prenom: f.prenom,
                    password: f.password,
                }),
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "SetCredentials"))
        .await?
        .into_inner())
}

async fn set_identity(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<IdentityForm>,
) -> Response {
    let user = f.user.clone();
    let message = match set_one(&state, &current, f).await {
        Ok(_) => (
            "notice",
            format!("L'identité Net-entreprises de {user} est enregistrée."),
        ),
        Err(e) => ("error", e.message),
    };
    render(&state, &current, Some(message)).await
}

/// « Tout vérifier »: every account the session may verify, one result as each completes.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct VerifyAllView {
    /// `idle` (none since the console started), `running`, `done` or `failed`.
    pub state: String,
    /// Accounts with an identity to verify.
    pub total: u32,
    /// Results received so far.
    pub done: u32,
    /// Of `total`, 0 to 100.
    pub percent: u8,
    /// Each account's result, in the order they completed.
    pub results: Vec<VerificationView>,
    /// Once failed: why.
    pub error: Option<ErrorDetail>,
}

impl JobState for VerifyAllView {
    fn idle() -> Self {
        Self {
            state: "idle".to_owned(),
            total: 0,
            done: 0,
            percent: 0,
            results: Vec::new(),
            error: None,
        }
    }

    fn finished(&self) -> bool {
        self.state != "running"
    }
}

impl VerifyAllView {
    fn add(&mut self, v: VerificationView) {
        self.results.push(v);
        self.done = self.results.len() as u32;
        self.total = self.total.max(self.done);
        self.percent = (self.done * 100)
            .checked_div(self.total)
            .map_or(100, |p| p.min(100) as u8);
    }
}

/// Starts « Tout vérifier » for the session's account (every account for an
/// administrator); a task follows the results into the job board. A second start while
/// one runs is refused.
pub async fn start_verify_all(
    state: &AppState,
    current: &Current,
) -> Result<Arc<VerifyAllView>, WebError> {
    let token = &current.session.token;
    let total = CredentialsClient::new(state.orchestrator.channel())
        .list_credentials(authed(token, ListCredentialsRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "ListCredentials"))
        .await?
        .into_inner()
        .credentials
        .iter()
        .filter(|c| c.configured)
        .count() as u32;
    let mut job = VerifyAllView::idle();
    job.state = "running".to_owned();
    job.total = total;
    let key = current.session.user.clone();
    let tx = state.verify_all.start(&key, job.clone()).map_err(|_| {
        WebError::new(
            StatusCode::CONFLICT,
            "verification_in_progress",
            "Une vérification de tous les comptes est déjà en cours : attendez qu'elle se termine.",
        )
    })?;
    let stream = CredentialsClient::new(state.orchestrator.channel())
        .verify_all_credentials(authed(token, VerifyAllCredentialsRequest {}))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "VerifyAllCredentials"
        ))
        .await;
    let mut stream = match stream {
        Ok(s) => s.into_inner(),
        Err(e) => {
            let e = WebError::from(e);
            job.state = "failed".to_owned();
            job.error = Some(e.body().error);
            tx.send_replace(Arc::new(job));
            return Err(e);
        }
    };
    let shutdown = state.shutdown.clone();
    let task = async move {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                _ = &mut stop => None,
            };
            match item {
                Some(Ok(v)) => {
                    job.add(verification_view(&v));
                    tx.send_replace(Arc::new(job.clone()));
                }
                Some(Err(e)) => {
                    job.state = "failed".to_owned();
                    job.error = Some(WebError::from(e).body().error);
                    break;
                }
                None => {
                    job.state = "done".to_owned();
                    job.percent = 100;
                    break;
                }
            }
        }
        tx.send_replace(Arc::new(job));
    };
    tokio::spawn(task.instrument(tracing::info_span!("verify_all_job")));
    Ok(state.verify_all.current(&key))
}

/// The progress section of « Tout vérifier »; `console.js` finds it by its id.
pub fn verify_all_panel(job: &VerifyAllView) -> Markup {
    html! {
        section id="verify-all" data-state=(job.state) hidden[job.state == "idle"] {
            h2 { "Vérification de tous les comptes" }
            progress id="verify-all-bar" max="100" value=(job.percent) { (job.percent) " %" }
            div { span data-field="done" { (job.done) } " / " span data-field="total" { (job.total) } " comptes vérifiés" }
            @if let Some(e) = &job.error { p class="ko" { (e.message) } }
            ul id="verify-all-results" {
                @for r in &job.results {
                    li data-user=(r.user) data-outcome=(r.outcome) { (r.user) " — " (r.message) }
                }
            }
        }
    }
}

async fn verify_all(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Response {
    match start_verify_all(&state, &current).await {
        Ok(_) => Redirect::to("/comptes").into_response(),
        Err(e) => render(&state, &current, Some(("error", e.message))).await,
    }
}

/// The installation's mode (administrator only).
pub async fn installation_mode(
    state: &AppState,
    current: &Current,
) -> Result<InstallationMode, WebError> {
    let m = UsersClient::new(state.orchestrator.channel())
        .get_installation_mode(authed(
            &current.session.token,
            GetInstallationModeRequest {},
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "GetInstallationMode"
        ))
        .await?
        .into_inner();
    Ok(InstallationMode::try_from(m.mode).unwrap_or(InstallationMode::Unspecified))
}

/// `monoposte` or `reseau`.
pub fn parse_mode(m: &str) -> Result<InstallationMode, WebError> {
    match m.trim() {
        "monoposte" => Ok(InstallationMode::Monoposte),
        "reseau" => Ok(InstallationMode::Reseau),
        _ => Err(WebError::invalid(
            "Le mode de l'installation doit être « monoposte » ou « reseau ».",
        )),
    }
}

pub fn mode_name(m: InstallationMode) -> &'static str {
    match m {
        InstallationMode::Monoposte => "monoposte",
        InstallationMode::Reseau => "reseau",
        InstallationMode::Unspecified => "unspecified",
    }
}

/// Sets the installation's mode (administrator only); the mode now.
pub async fn set_mode(
    state: &AppState,
    current: &Current,
    mode: &str,
) -> Result<InstallationMode, WebError> {
    let mode = parse_mode(mode)?;
    let m = UsersClient::new(state.orchestrator.channel())
        .set_installation_mode(authed(
            &current.session.token,
            InstallationModeMessage { mode: mode as i32 },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "SetInstallationMode"
        ))
        .await?
        .into_inner();
    Ok(InstallationMode::try_from(m.mode).unwrap_or(InstallationMode::Unspecified))
}

/// `administrator` or `user`.
pub fn parse_role(r: &str) -> Result<Role, WebError> {
    match r.trim() {
        "administrator" => Ok(Role::Administrator),
        "user" => Ok(Role::User),
        _ => Err(WebError::invalid(
            "Le rôle doit être « administrator » ou « user ».",
        )),
    }
}

/// Adds an account (administrator only). No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub password: String,
}

pub async fn add_user(
    state: &AppState,
    current: &Current,
    f: AddForm,
) -> Result<UserInfo, WebError> {
    let role = parse_role(&f.role)?;
    Ok(UsersClient::new(state.orchestrator.channel())
        .add_user(authed(
            &current.session.token,
            AddUserRequest {
                name: f.name,
                role: role as i32,
                password: f.password,
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "AddUser"))
        .await?
        .into_inner())
}

pub async fn remove_user(state: &AppState, current: &Current, name: &str) -> Result<(), WebError> {
    UsersClient::new(state.orchestrator.channel())
        .remove_user(authed(
            &current.session.token,
            RemoveUserRequest {
                name: name.to_owned(),
            },
        ))
        .instrument(tracing::info_span!("orchestrator", rpc = "RemoveUser"))
        .await?;
    Ok(())
}

async fn add(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<AddForm>,
) -> Response {
    let name = f.name.clone();
    let message = match add_user(&state, &current, f).await {
        Ok(u) => ("notice", format!("Le compte « {} » est créé.", u.name)),
        Err(e) => ("error", format!("{name} — {}", e.message)),
    };
    render(&state, &current, Some(message)).await
}

async fn remove(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<VerifyForm>,
) -> Response {
    let message = match remove_user(&state, &current, &f.user).await {
        Ok(()) => ("notice", format!("Le compte « {} » est supprimé.", f.user)),
        Err(e) => ("error", format!("{} — {}", f.user, e.message)),
    };
    render(&state, &current, Some(message)).await
}

#[derive(Deserialize)]
pub struct ModeForm {
    #[serde(default)]
    mode: String,
}

async fn set_mode_form(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<ModeForm>,
) -> Response {
    let message = match set_mode(&state, &current, &f.mode).await {
        Ok(InstallationMode::Reseau) => ("notice", "L'installation est en mode réseau.".to_owned()),
        Ok(_) => ("notice", "L'installation est en mode monoposte.".to_owned()),
        Err(e) => ("error", e.message),
    };
    render(&state, &current, Some(message)).await
}
