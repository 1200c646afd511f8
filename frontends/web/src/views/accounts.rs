//! « Comptes utilisateurs »: the accounts with their role, each with its Net-entreprises
//! identity (never its password) and last verification; « Vérifier » one account; set an
//! identity, confirmed by that account's Impact emploi password.

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::response::Response;
use axum::routing::{get, post};
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::users_client::UsersClient;
use iea_proto::v1::{
    CredentialSummary, ListCredentialsRequest, ListUsersRequest, NetEntreprisesIdentity, Role,
    SetCredentialsRequest, VerificationOutcome, VerificationResult, VerifyCredentialsRequest,
};
use maud::html;
use serde::Deserialize;
use tracing::Instrument;

use super::{csrf_field, error_page, notice, ok, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed, french};
use crate::sessions::Current;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/comptes", get(show))
        .route("/comptes/verifier", post(verify))
        .route("/comptes/identite", post(set_identity))
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
                            }
                        }
                    }
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
