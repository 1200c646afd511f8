//! The JSON API under `/api/v1/`: the console's operations for any front-end. Answers are
//! JSON; every error is `{"error":{"code","message"}}` with the orchestrator's stable
//! code and French sentence; status changes come as server-sent events. The OpenAPI 3
//! document at `/api/v1/openapi.json` is generated from these handlers and types by
//! utoipa, so it cannot drift from them.
//!
//! Authentication: `POST /api/v1/session` (JSON only) sets the session cookie and answers
//! the session's CSRF token; every state-changing call sends it back in `X-CSRF-Token`.

use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::users_client::UsersClient;
use iea_proto::v1::{
    ActivateAssistanceRequest, CredentialSummary, DeactivateAssistanceRequest, ListUsersRequest,
    ReauthenticateRequest, Role, TestServerAccessResponse, VerificationOutcome, VerificationResult,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::AppState;
use crate::orchestrator::{ErrorBody, ErrorDetail, WebError, authed, millis, rfc3339};
use crate::sessions::{self, Current, SESSION_COOKIE, set_cookie};
use crate::status::{AgentView, IndicatorState, ServicesView, StatusView};
use crate::views;
use crate::views::accounts::VerifyAllView;
use crate::views::board::{BoardView, StatusAlertsView};
use crate::views::deposits::DepositView;
use crate::views::rates::RateView;
use crate::views::returns::{DepositFollowView, FollowNowView, ReturnsView};
use crate::views::updates::{
    JOB_KEY, ReleaseNotesView, ScriptView, UpdateCheckView, UpdateJobView, script_view,
};

type ApiResult<T> = Result<Json<T>, WebError>;

/// Routes that need a session.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", get(session_info).delete(sign_out))
        .route("/api/v1/status", get(status))
        .route("/api/v1/status/events", get(status_events))
        .route("/api/v1/status/services", get(status_services))
        .route("/api/v1/status/reauthenticate", post(reauthenticate))
        .route("/api/v1/assistance", post(activate_assistance))
        .route("/api/v1/assistance/deactivate", post(deactivate_assistance))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/users/{name}", axum::routing::delete(remove_user))
        .route(
            "/api/v1/installation-mode",
            get(installation_mode).put(set_installation_mode),
        )
        .route("/api/v1/credentials", get(credentials))
        .route("/api/v1/credentials/{user}", put(set_credentials))
        .route(
            "/api/v1/credentials/{user}/verify",
            post(verify_credentials),
        )
        .route("/api/v1/connection", get(connection).put(save_connection))
        .route("/api/v1/connection/test", post(test_connection))
        .route("/api/v1/connection/repairs", post(propose_repairs))
        .route("/api/v1/connection/repairs/{id}/apply", post(apply_repair))
        .route("/api/v1/support", post(support))
        .route(
            "/api/v1/credentials/verify-all",
            get(verify_all_progress).post(verify_all),
        )
        .route(
            "/api/v1/credentials/verify-all/events",
            get(verify_all_events),
        )
        .route("/api/v1/deposits", get(deposits).post(deposit))
        .route("/api/v1/deposits/{id}", get(deposit_one))
        .route("/api/v1/deposits/{id}/events", get(deposit_events))
        .route("/api/v1/deposits/{id}/resolve", post(resolve_deposit))
        .route("/api/v1/deposits/{id}/returns", get(deposit_returns))
        .route("/api/v1/returns/follows", get(deposit_follows))
        .route("/api/v1/returns/follow-now", post(follow_now))
        .route("/api/v1/rates", get(rates))
        .route("/api/v1/rates.csv", get(rates_csv))
        .route("/api/v1/board", get(board))
        .route("/api/v1/status/alerts", get(status_alerts))
        .route("/api/v1/updates", get(check_updates))
        .route("/api/v1/updates/notes", get(release_notes))
        .route("/api/v1/updates/apply", post(apply_update))
        .route("/api/v1/updates/progress", get(update_progress))
        .route("/api/v1/updates/events", get(update_events))
        .route("/api/v1/updates/scripts", get(pending_scripts))
        .route("/api/v1/updates/scripts/apply", post(apply_scripts))
}

/// Sign-in and the API's description.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(sign_in))
        .route("/api/v1/openapi.json", get(openapi))
}

/// The OpenAPI 3 document, from the code.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "iea-connect — API de la console web",
        description = "Les opérations de la console web d'iea-connect, en JSON. Erreurs : {\"error\":{\"code\",\"message\"}}."
    ),
    paths(
        sign_in, session_info, sign_out, status, status_events, status_services, reauthenticate,
        activate_assistance, deactivate_assistance, users, add_user, remove_user,
        installation_mode, set_installation_mode, credentials, set_credentials,
        verify_credentials, connection, save_connection, test_connection, propose_repairs, apply_repair, support,
        verify_all, verify_all_progress, verify_all_events, check_updates, release_notes,
        apply_update, update_progress, update_events, pending_scripts, apply_scripts,
        deposits, deposit_one, deposit_events, deposit, resolve_deposit,
        deposit_returns, deposit_follows, follow_now, rates, rates_csv, board, status_alerts
    ),
    components(schemas(ErrorBody, ErrorDetail, StatusView, IndicatorState, SseEvent, ServicesView, AgentView)),
    modifiers(&SessionCookie, &ErrorsEverywhere),
    security(("session" = []))
)]
pub struct ApiDoc;

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-CSRF-Token"))),
        );
    }
}

/// One server-sent event as the streams send it: its name and its data, a JSON document
/// (the schema named in the operation's description).
#[derive(Serialize, ToSchema)]
pub struct SseEvent {
    /// The event's name (`status`, `progress`).
    pub event: String,
    /// JSON text.
    pub data: String,
}

/// Every operation may answer an error in the one error form: the orchestrator's stable
/// code and French sentence, with the HTTP status of its gRPC code (400, 401, 403, 404,
/// 409, 429, 501, 502, 503, 504). The statuses an operation is known for are listed
/// with it; the others are its `default` answer.
struct ErrorsEverywhere;

impl Modify for ErrorsEverywhere {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = ResponseBuilder::new()
            .description("Erreur : {\"error\":{\"code\",\"message\"}}, le code stable et la phrase en français.")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| error.clone().into());
            }
        }
    }
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}

/// The body of a JSON call: a JSON object of the operation's form (an array or a scalar
/// is refused even where every field is optional).
fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<T, WebError> {
    let invalid = || {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "Le corps de la demande n'est pas un JSON valide pour cette opération.",
        )
    };
    let value = body.map(|Json(v)| v).map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => WebError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "La demande doit être envoyée en JSON (Content-Type: application/json).",
        ),
        _ => invalid(),
    })?;
    if !value.is_object() {
        return Err(invalid());
    }
    serde_json::from_value(value).map_err(|_| invalid())
}

/// Sign-in. No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
pub struct SignInBody {
    pub user: String,
    pub password: String,
}

/// The signed-in session.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub user: String,
    /// `administrator` or `user`.
    pub role: String,
    /// Send it back in `X-CSRF-Token` with every state-changing call.
    pub csrf_token: String,
    /// When the session ends, RFC 3339 UTC.
    pub expires_at: String,
}

fn session_info_of(s: &sessions::WebSession) -> SessionInfo {
    SessionInfo {
        user: s.user.clone(),
        role: s.role.clone(),
        csrf_token: s.csrf.clone(),
        expires_at: iea_fr_time::from_unix(s.expires_at).to_string(),
    }
}

/// Opens a session (the orchestrator's login limits apply); sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", security(()),
    request_body = SignInBody,
    responses((status = 200, body = SessionInfo), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn sign_in(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, WebError> {
    let body = json_body::<SignInBody>(body)?;
    let (id, session) =
        sessions::sign_in(&state, &body.user, SecretString::from(body.password)).await?;
    let mut r = Json(session_info_of(&session)).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        sessions::session_cookie(&id, &session, state.secure_cookies),
    );
    Ok(r)
}

/// The current session and its CSRF token.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
async fn session_info(Extension(current): Extension<Current>) -> Json<SessionInfo> {
    Json(session_info_of(&current.session))
}

/// Closes the session here and at the orchestrator.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", security(("session" = [], "csrf" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn sign_out(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Response {
    sessions::sign_out(&state, &current.id).await;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.secure_cookies),
    );
    r
}

/// The status indicator.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, body = StatusView), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn status(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<StatusView> {
    Ok(Json(views::status::current_status(&state, &current).await?))
}

/// Each service as the orchestrator checks it now: the orchestrator's version, then each
/// agent in service (and how fast) or not, an agent of another version named (what the
/// status page's « Services » and `iea status` show). An agent that hangs is waited for
/// 2 s at most.
#[utoipa::path(get, path = "/api/v1/status/services", tag = "status",
    responses((status = 200, body = ServicesView), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn status_services(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<ServicesView> {
    let r = views::board::status_report(&state, &current, true).await?;
    Ok(Json(ServicesView::from(&r)))
}

/// The status now, then each change: events named `status` whose data is a StatusView.
#[utoipa::path(get, path = "/api/v1/status/events", tag = "status",
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
        description = "événements « status », données : StatusView en JSON"),
        (status = 401, body = ErrorBody)))]
async fn status_events(State(state): State<AppState>) -> Response {
    // Each change rendered once for every subscriber; see `StatusWatch::events`.
    state.status.events_response()
}

/// « Relancer l'authentification ».
#[utoipa::path(post, path = "/api/v1/status/reauthenticate", tag = "status", security(("session" = [], "csrf" = [])),
    responses((status = 200, body = StatusView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "en mode assistance")))]
async fn reauthenticate(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<StatusView> {
    let r = StatusClient::new(state.orchestrator.channel())
        .reauthenticate(authed(&current.session.token, ReauthenticateRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "Reauthenticate"))
        .await?;
    Ok(Json(StatusView::from(r.get_ref())))
}

#[derive(Serialize, ToSchema)]
pub struct AssistanceOn {
    pub status: StatusView,
    /// « En mode assistance, les fichiers de scripts ne seront pas pris en compte automatiquement ! »
    pub warning: String,
}

/// Turns the assistance mode on (offline, no password).
#[utoipa::path(post, path = "/api/v1/assistance", tag = "status", security(("session" = [], "csrf" = [])),
    responses((status = 200, body = AssistanceOn), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn activate_assistance(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<AssistanceOn> {
    let r = StatusClient::new(state.orchestrator.channel())
        .activate_assistance(authed(&current.session.token, ActivateAssistanceRequest {}))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "ActivateAssistance"
        ))
        .await?
        .into_inner();
    Ok(Json(AssistanceOn {
        status: StatusView::from(&r.status.unwrap_or_default()),
        warning: r.warning,
    }))
}

/// No `Debug`: it holds the daily password.
#[derive(Deserialize, ToSchema)]
pub struct DeactivateBody {
    /// The « mot de passe du jour » given by support.
    pub daily_password: String,
}

/// Turns the assistance mode off with the daily password.
#[utoipa::path(post, path = "/api/v1/assistance/deactivate", tag = "status", security(("session" = [], "csrf" = [])),
    request_body = DeactivateBody,
    responses((status = 200, body = StatusView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn deactivate_assistance(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<StatusView> {
    let body = json_body::<DeactivateBody>(body)?;
    let r = StatusClient::new(state.orchestrator.channel())
        .deactivate_assistance(authed(
            &current.session.token,
            DeactivateAssistanceRequest {
                daily_password: body.daily_password,
            },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "DeactivateAssistance"
        ))
        .await?;
    Ok(Json(StatusView::from(r.get_ref())))
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub name: String,
    /// `administrator` or `user`.
    pub role: String,
}

/// The accounts (administrator only).
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts",
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn users(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<Vec<UserView>> {
    let r = UsersClient::new(state.orchestrator.channel())
        .list_users(authed(&current.session.token, ListUsersRequest {}))
        .instrument(tracing::info_span!("orchestrator", rpc = "ListUsers"))
        .await?
        .into_inner();
    Ok(Json(
        r.users
            .into_iter()
            .map(|u| UserView {
                role: if u.role == Role::Administrator as i32 {
                    "administrator"
                } else {
                    "user"
                }
                .to_owned(),
                name: u.name,
            })
            .collect(),
    ))
}

fn role_name(role: i32) -> String {
    if role == Role::Administrator as i32 {
        "administrator"
    } else {
        "user"
    }
    .to_owned()
}

/// A new account. No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
pub struct NewUserBody {
    pub name: String,
    /// `administrator` or `user`.
    pub role: String,
    /// 8 to 128 characters.
    pub password: String,
}

/// Adds an account (administrator only; in monoposte mode, refused).
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", security(("session" = [], "csrf" = [])),
    request_body = NewUserBody,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_user(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, WebError> {
    let b = json_body::<NewUserBody>(body)?;
    let u = views::accounts::add_user(
        &state,
        &current,
        views::accounts::AddForm {
            name: b.name,
            role: b.role,
            password: b.password,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            role: role_name(u.role),
            name: u.name,
        }),
    )
        .into_response())
}

/// Removes an account (administrator only; never the last administrator nor oneself).
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "accounts", security(("session" = [], "csrf" = [])),
    params(("name" = String, Path, description = "nom du compte")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_user(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Path(name): Path<String>,
) -> Result<StatusCode, WebError> {
    views::accounts::remove_user(&state, &current, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Monoposte or réseau.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InstallationModeView {
    /// `monoposte` or `reseau`.
    pub mode: String,
}

/// The installation's mode (administrator only).
#[utoipa::path(get, path = "/api/v1/installation-mode", tag = "accounts",
    responses((status = 200, body = InstallationModeView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn installation_mode(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<InstallationModeView> {
    let m = views::accounts::installation_mode(&state, &current).await?;
    Ok(Json(InstallationModeView {
        mode: views::accounts::mode_name(m).to_owned(),
    }))
}

/// Sets the installation's mode (administrator only).
#[utoipa::path(put, path = "/api/v1/installation-mode", tag = "accounts", security(("session" = [], "csrf" = [])),
    request_body = InstallationModeView,
    responses((status = 200, body = InstallationModeView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn set_installation_mode(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<InstallationModeView> {
    let b = json_body::<InstallationModeView>(body)?;
    let m = views::accounts::set_mode(&state, &current, &b.mode).await?;
    Ok(Json(InstallationModeView {
        mode: views::accounts::mode_name(m).to_owned(),
    }))
}

#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct ProblemView {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// One verification against Net-entreprises.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct VerificationView {
    pub user: String,
    /// `valid`, `invalid_credentials`, `password_expired`, `not_registered`,
    /// `account_locked`, `rejected_format`, `unavailable`, `unexpected`, `invalid_input`,
    /// or `unspecified` when the account was not verified (see `error_code`).
    pub outcome: String,
    /// French name of the outcome.
    pub label: String,
    /// French sentence.
    pub message: String,
    pub verified_at: Option<String>,
    /// Why the account was not verified, in French, and its stable code.
    pub blocked_reason: Option<String>,
    pub error_code: Option<String>,
    pub problems: Vec<ProblemView>,
}

pub fn verification_view(v: &VerificationResult) -> VerificationView {
    let result = v.result.clone().unwrap_or_default();
    let outcome = VerificationOutcome::try_from(result.outcome)
        .unwrap_or(VerificationOutcome::Unspecified)
        .as_str_name()
        .trim_start_matches("VERIFICATION_OUTCOME_")
        .to_ascii_lowercase();
    VerificationView {
        user: v.user.clone(),
        outcome,
        label: views::accounts::outcome_label(result.outcome).to_owned(),
        message: views::accounts::verification_sentence(v),
        verified_at: v.verified_at.as_ref().map(rfc3339),
        blocked_reason: Some(v.blocked_reason.clone()).filter(|s| !s.is_empty()),
        error_code: Some(v.error_code.clone()).filter(|s| !s.is_empty()),
        problems: result
            .input_problems
            .into_iter()
            .map(|p| ProblemView {
                field: p.field,
                code: p.code,
                message: p.message,
            })
            .collect(),
    }
}

/// An account's Net-entreprises identity, never its password.
#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    pub user: String,
    pub configured: bool,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub updated_at: Option<String>,
    pub last_verification: Option<VerificationView>,
    pub consecutive_failures: u32,
}

fn credential_view(c: &CredentialSummary) -> CredentialView {
    CredentialView {
        user: c.user.clone(),
        configured: c.configured,
        siret: c.siret.clone(),
        nom: c.nom.clone(),
        prenom: c.prenom.clone(),
        updated_at: c.updated_at.as_ref().map(rfc3339),
        last_verification: c.last_verification.as_ref().map(verification_view),
        consecutive_failures: c.consecutive_failures,
    }
}

/// Each account the session may see, with its Net-entreprises identity.
#[utoipa::path(get, path = "/api/v1/credentials", tag = "accounts",
    responses((status = 200, body = Vec<CredentialView>), (status = 401, body = ErrorBody)))]
async fn credentials(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<Vec<CredentialView>> {
    let list = views::accounts::accounts(&state, &current).await?;
    Ok(Json(
        list.iter()
            .map(|a| match &a.credentials {
                Some(c) => credential_view(c),
                None => credential_view(&CredentialSummary {
                    user: a.name.clone(),
                    ..Default::default()
                }),
            })
            .collect(),
    ))
}

/// A new identity. No `Debug`: it holds two passwords.
#[derive(Deserialize, ToSchema)]
pub struct IdentityBody {
    /// The account's Impact emploi password, confirming the change.
    pub account_password: String,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    /// The Net-entreprises password (never returned).
    pub password: String,
}

/// Sets an account's identity, confirmed by that account's password.
#[utoipa::path(put, path = "/api/v1/credentials/{user}", tag = "accounts", security(("session" = [], "csrf" = [])),
    params(("user" = String, Path, description = "nom du compte")),
    request_body = IdentityBody,
    responses((status = 200, body = CredentialView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_credentials(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Path(user): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<CredentialView> {
    let b = json_body::<IdentityBody>(body)?;
    let c = views::accounts::set_one(
        &state,
        &current,
        views::accounts::IdentityForm {
            user,
            account_password: b.account_password,
            siret: b.siret,
            nom: b.nom,
            prenom: b.prenom,
            password: b.password,
        },
    )
    .await?;
    Ok(Json(credential_view(&c)))
}

/// « Vérifier »: authenticates the account's identity at Net-entreprises.
#[utoipa::path(post, path = "/api/v1/credentials/{user}/verify", tag = "accounts", security(("session" = [], "csrf" = [])),
    params(("user" = String, Path, description = "nom du compte")),
    responses((status = 200, body = VerificationView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn verify_credentials(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Path(user): Path<String>,
) -> ApiResult<VerificationView> {
    let v = views::accounts::verify_one(&state, &current, &user).await?;
    Ok(Json(verification_view(&v)))
}

#[derive(Serialize, ToSchema)]
pub struct ProxyInfo {
    pub host: String,
    pub port: u32,
    pub username: String,
    pub password_set: bool,
}

/// « Paramètres de connexion » (the proxy password is never returned).
#[derive(Serialize, ToSchema)]
pub struct ConnectionView {
    /// `proxy`, `direct`, `system` or `unspecified`.
    pub connection_type: String,
    /// `normal`, `extended`, `secure` or `unspecified`.
    pub mode: String,
    pub proxy: Option<ProxyInfo>,
    pub auth_server: String,
    pub update_server: String,
    pub net_entreprises: String,
}

/// The saved connection settings.
#[utoipa::path(get, path = "/api/v1/connection", tag = "connection",
    responses((status = 200, body = ConnectionView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn connection(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<ConnectionView> {
    let s = views::connection::settings(&state, &current).await?;
    Ok(Json(connection_view(s)))
}

fn connection_view(s: iea_proto::v1::ConnectionSettings) -> ConnectionView {
    use iea_proto::common::v1::{ConnectionMode, ConnectionType};
    let name = |n: &str, prefix: &str| n.trim_start_matches(prefix).to_ascii_lowercase();
    ConnectionView {
        connection_type: name(
            ConnectionType::try_from(s.connection_type)
                .unwrap_or(ConnectionType::Unspecified)
                .as_str_name(),
            "CONNECTION_TYPE_",
        ),
        mode: name(
            ConnectionMode::try_from(s.mode)
                .unwrap_or(ConnectionMode::Unspecified)
                .as_str_name(),
            "CONNECTION_MODE_",
        ),
        proxy: s.proxy.map(|p| ProxyInfo {
            host: p.host,
            port: p.port,
            username: p.username,
            password_set: p.password_set,
        }),
        auth_server: s.auth_server,
        update_server: s.update_server,
        net_entreprises: s.net_entreprises,
    }
}

/// A proxy as given to « Enregistrer ». No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
pub struct ProxyBody {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub username: String,
    /// Absent or empty: the stored password is kept.
    #[serde(default)]
    pub password: String,
}

/// « Paramètres de connexion » to save.
#[derive(Deserialize, ToSchema)]
pub struct ConnectionBody {
    /// `direct`, `proxy` or `system`.
    pub connection_type: String,
    /// `normal`, `extended` or `secure`.
    pub mode: String,
    /// Required for the type `proxy`.
    #[serde(default)]
    pub proxy: Option<ProxyBody>,
    pub auth_server: String,
    pub update_server: String,
    pub net_entreprises: String,
}

/// « Enregistrer »: validated as a whole, saved atomically, or nothing is saved.
#[utoipa::path(put, path = "/api/v1/connection", tag = "connection", security(("session" = [], "csrf" = [])),
    request_body = ConnectionBody,
    responses((status = 200, body = ConnectionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn save_connection(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<ConnectionView> {
    let b = json_body::<ConnectionBody>(body)?;
    let proxy = b.proxy;
    let form = views::connection::SettingsForm {
        connection_type: b.connection_type,
        mode: b.mode,
        proxy_host: proxy.as_ref().map(|p| p.host.clone()).unwrap_or_default(),
        proxy_port: proxy
            .as_ref()
            .map(|p| p.port.to_string())
            .unwrap_or_default(),
        proxy_username: proxy
            .as_ref()
            .map(|p| p.username.clone())
            .unwrap_or_default(),
        proxy_password: proxy.map(|p| p.password).unwrap_or_default(),
        auth_server: b.auth_server,
        update_server: b.update_server,
        net_entreprises: b.net_entreprises,
    };
    let saved = views::connection::save_settings(&state, &current, form).await?;
    Ok(Json(connection_view(saved)))
}

/// One address of an access test.
#[derive(Serialize, ToSchema)]
pub struct AddressTestView {
    /// `auth_server`, `update_server` or `net_entreprises`.
    pub target: String,
    /// French name of the address.
    pub label: String,
    pub address: String,
    pub reachable: bool,
    /// The failing step, stable code (`connect`, `tls`, ...), when not reachable.
    pub step: Option<String>,
    /// The failing step in French.
    pub step_label: Option<String>,
    pub latency_ms: Option<u64>,
    pub http_status: Option<u32>,
    /// French sentence.
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccessTestView {
    pub all_reachable: bool,
    pub message: String,
    pub tested_at: Option<String>,
    pub tests: Vec<AddressTestView>,
}

fn access_test_view(t: &TestServerAccessResponse) -> AccessTestView {
    use iea_proto::common::v1::ProbeStep;
    AccessTestView {
        all_reachable: t.all_reachable,
        message: t.message.clone(),
        tested_at: t.tested_at.as_ref().map(rfc3339),
        tests: t
            .tests
            .iter()
            .map(|row| {
                let r = row.result.clone().unwrap_or_default();
                let failed = !r.reachable;
                AddressTestView {
                    target: row.target.clone(),
                    label: views::connection::target_label(&row.target).to_owned(),
                    address: r.address.clone(),
                    reachable: r.reachable,
                    step: failed.then(|| {
                        ProbeStep::try_from(r.step)
                            .unwrap_or(ProbeStep::Unspecified)
                            .as_str_name()
                            .trim_start_matches("PROBE_STEP_")
                            .to_ascii_lowercase()
                    }),
                    step_label: failed.then(|| views::connection::step_label(r.step).to_owned()),
                    latency_ms: r.latency.as_ref().map(millis),
                    http_status: Some(r.http_status).filter(|s| *s != 0),
                    message: r.message,
                }
            })
            .collect(),
    }
}

/// « Tester l'accès aux serveurs » with the saved settings.
#[utoipa::path(post, path = "/api/v1/connection/test", tag = "connection", security(("session" = [], "csrf" = [])),
    responses((status = 200, body = AccessTestView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn test_connection(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<AccessTestView> {
    let t = views::connection::test_access(&state, &current).await?;
    Ok(Json(access_test_view(&t)))
}

/// A known repair, tested before it is offered.
#[derive(Serialize, ToSchema)]
pub struct RepairView {
    /// `secure_official_addresses` or `fallback_port`.
    pub id: String,
    /// French description of the change.
    pub description: String,
    /// The access test run with the proposed settings.
    pub test: Option<AccessTestView>,
}

#[derive(Serialize, ToSchema)]
pub struct RepairsView {
    /// The access test with the saved settings.
    pub current: Option<AccessTestView>,
    pub proposals: Vec<RepairView>,
}

/// The repair assistant: the known repairs that apply, each already tested.
#[utoipa::path(post, path = "/api/v1/connection/repairs", tag = "connection", security(("session" = [], "csrf" = [])),
    responses((status = 200, body = RepairsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn propose_repairs(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<RepairsView> {
    let r = views::connection::propose_repairs(&state, &current).await?;
    Ok(Json(RepairsView {
        current: r.current.as_ref().map(access_test_view),
        proposals: r
            .proposals
            .iter()
            .map(|p| RepairView {
                id: p.id.clone(),
                description: p.description.clone(),
                test: p.test.as_ref().map(access_test_view),
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AppliedRepair {
    /// French description of what was changed and saved.
    pub changes: String,
}

/// « Appliquer »: saves a proposed repair.
#[utoipa::path(post, path = "/api/v1/connection/repairs/{id}/apply", tag = "connection", security(("session" = [], "csrf" = [])),
    params(("id" = String, Path, description = "identifiant de la réparation")),
    responses((status = 200, body = AppliedRepair), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn apply_repair(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Path(id): Path<String>,
) -> ApiResult<AppliedRepair> {
    let a = views::connection::apply_repair(&state, &current, &id).await?;
    Ok(Json(AppliedRepair { changes: a.changes }))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct SupportBody {
    /// The person's words, put at the top of the message.
    #[serde(default)]
    pub description: String,
    /// The sender's e-mail address.
    #[serde(default)]
    pub from: String,
}

/// « Demande de support technique »: the prepared e-mail, every secret removed.
#[utoipa::path(post, path = "/api/v1/support", tag = "support", security(("session" = [], "csrf" = [])),
    request_body = SupportBody,
    responses((status = 200, content_type = "message/rfc822", body = String), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn support(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, WebError> {
    let b = json_body::<SupportBody>(body)?;
    let s = views::support::prepare(
        &state,
        &current,
        views::support::SupportForm {
            description: b.description,
            from: b.from,
        },
    )
    .await?;
    Ok(views::support::eml_response(s.eml))
}

/// « Tout vérifier »: starts verifying every account the session may verify (all for an
/// administrator); follow it at `/api/v1/credentials/verify-all/events`.
#[utoipa::path(post, path = "/api/v1/credentials/verify-all", tag = "accounts", security(("session" = [], "csrf" = [])),
    responses((status = 202, body = VerifyAllView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn verify_all(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Result<Response, WebError> {
    let job = views::accounts::start_verify_all(&state, &current).await?;
    Ok((StatusCode::ACCEPTED, Json(&*job)).into_response())
}

/// The session's « Tout vérifier » now (`idle` when none was started).
#[utoipa::path(get, path = "/api/v1/credentials/verify-all", tag = "accounts",
    responses((status = 200, body = VerifyAllView), (status = 401, body = ErrorBody)))]
async fn verify_all_progress(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Json<VerifyAllView> {
    Json((*state.verify_all.current(&current.session.user)).clone())
}

/// The session's « Tout vérifier » live: events named `progress` whose data is a
/// VerifyAllView, the state now then each result, until it ends (the idle state alone
/// when none was started).
#[utoipa::path(get, path = "/api/v1/credentials/verify-all/events", tag = "accounts",
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
        description = "événements « progress », données : VerifyAllView en JSON"),
        (status = 401, body = ErrorBody)))]
async fn verify_all_events(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.verify_all.subscribe(&current.session.user);
    Sse::new(crate::jobs::events(rx, "progress", state.shutdown.clone()))
        .keep_alive(KeepAlive::default())
}

/// « Rechercher les mises à jour »: the installed version and the newer releases.
#[utoipa::path(get, path = "/api/v1/updates", tag = "updates",
    responses((status = 200, body = UpdateCheckView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn check_updates(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<UpdateCheckView> {
    Ok(Json(views::updates::check(&state, &current).await?.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotesParams {
    /// The release (empty or absent: the newest available).
    #[serde(default)]
    pub version: String,
}

/// « Lisez-moi » of a release.
#[utoipa::path(get, path = "/api/v1/updates/notes", tag = "updates", params(NotesParams),
    responses((status = 200, body = ReleaseNotesView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn release_notes(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    query: Result<axum::extract::Query<NotesParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ReleaseNotesView> {
    let q = query
        .map_err(|_| WebError::invalid("Les paramètres de la demande ne sont pas valides."))?;
    let n = views::updates::notes(&state, &current, &q.version).await?;
    Ok(Json(ReleaseNotesView {
        version: n.version,
        text: n.text,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ApplyUpdateBody {
    /// The release to install (empty or absent: the newest available).
    #[serde(default)]
    pub version: String,
}

/// « Mettre à jour Impact Emploi maintenant »: starts the update; follow it at
/// `/api/v1/updates/events`. One update at a time.
#[utoipa::path(post, path = "/api/v1/updates/apply", tag = "updates", security(("session" = [], "csrf" = [])),
    request_body = ApplyUpdateBody,
    responses((status = 202, body = UpdateJobView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn apply_update(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, WebError> {
    let b = json_body::<ApplyUpdateBody>(body)?;
    let job = views::updates::start(&state, &current, &b.version).await?;
    Ok((StatusCode::ACCEPTED, Json(&*job)).into_response())
}

/// The update being applied, or the last one (`idle` when none since the console
/// started).
#[utoipa::path(get, path = "/api/v1/updates/progress", tag = "updates",
    responses((status = 200, body = UpdateJobView), (status = 401, body = ErrorBody)))]
async fn update_progress(State(state): State<AppState>) -> Json<UpdateJobView> {
    Json((*state.updates.current(JOB_KEY)).clone())
}

/// The update live: events named `progress` whose data is an UpdateJobView, the state
/// now then each step, until it ends (the idle state alone when none was started).
#[utoipa::path(get, path = "/api/v1/updates/events", tag = "updates",
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
        description = "événements « progress », données : UpdateJobView en JSON"),
        (status = 401, body = ErrorBody)))]
async fn update_events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.updates.subscribe(JOB_KEY);
    Sse::new(crate::jobs::events(rx, "progress", state.shutdown.clone()))
        .keep_alive(KeepAlive::default())
}

/// The maintenance scripts waiting to be applied.
#[utoipa::path(get, path = "/api/v1/updates/scripts", tag = "updates",
    responses((status = 200, body = Vec<ScriptView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn pending_scripts(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<Vec<ScriptView>> {
    let list = views::updates::pending_scripts(&state, &current).await?;
    Ok(Json(list.iter().map(script_view).collect()))
}

/// Applies the waiting maintenance scripts, in order; the scripts applied.
#[utoipa::path(post, path = "/api/v1/updates/scripts/apply", tag = "updates", security(("session" = [], "csrf" = [])),
    responses((status = 200, body = Vec<ScriptView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn apply_scripts(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<Vec<ScriptView>> {
    let list = views::updates::run_scripts(&state, &current).await?;
    Ok(Json(list.iter().map(script_view).collect()))
}

fn deposit_id(
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<i64, WebError> {
    id.map(|Path(id)| id)
        .map_err(|_| WebError::invalid("Le numéro du dépôt doit être un nombre."))
}

/// The DSN deposits the session may see (every one for an administrator), newest first:
/// 500 at most, fewer with `limit`; each filter applies when given (what `iea dsn list
/// --json` gives). When older ones were left out, the `Link` header gives the next page
/// (`rel="next"`: the same filters, `before` the last deposit given).
#[utoipa::path(get, path = "/api/v1/deposits", tag = "deposits", params(views::deposits::ListQuery),
    responses((status = 200, body = Vec<DepositView>,
            headers(("Link" = String, description = "`</api/v1/deposits?…&before=N>; rel=\"next\"` when older deposits were left out"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn deposits(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    query: Result<
        axum::extract::Query<views::deposits::ListQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<(axum::http::HeaderMap, Json<Vec<DepositView>>), WebError> {
    let q = query_or_invalid(query)?;
    let (list, truncated) = views::deposits::list(&state, &current, &q).await?;
    let mut headers = axum::http::HeaderMap::new();
    if let (true, Some(last)) = (truncated, list.last()) {
        let link = format!("</api/v1/deposits?{}>; rel=\"next\"", q.next_page(last.id));
        if let Ok(value) = axum::http::HeaderValue::from_str(&link) {
            headers.insert(axum::http::header::LINK, value);
        }
    }
    Ok((
        headers,
        Json(list.iter().map(views::deposits::deposit_view).collect()),
    ))
}

/// One deposit.
#[utoipa::path(get, path = "/api/v1/deposits/{id}", tag = "deposits",
    params(("id" = i64, Path, description = "numéro du dépôt")),
    responses((status = 200, body = DepositView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn deposit_one(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> ApiResult<DepositView> {
    let d = views::deposits::get_one(&state, &current, deposit_id(id)?).await?;
    Ok(Json(views::deposits::deposit_view(&d)))
}

/// One deposit live: events named `deposit` whose data is a DepositView, the deposit now
/// then at each change (the orchestrator's `WatchDeposit`), ending after a settled one.
#[utoipa::path(get, path = "/api/v1/deposits/{id}/events", tag = "deposits",
    params(("id" = i64, Path, description = "numéro du dépôt")),
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
        description = "événements « deposit », données : DepositView en JSON"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn deposit_events(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let id = deposit_id(id)?;
    let changes = views::deposits::watch(&state, &current, id).await?;
    let events = changes
        .take_while(move |m| {
            // Ended (the orchestrator stopping, the session gone): the browser comes back.
            if let Err(s) = m {
                tracing::info!(deposit = id, code = ?s.code(), "deposit events ended");
            }
            futures::future::ready(m.is_ok())
        })
        .filter_map(|m| {
            futures::future::ready(m.ok().map(|d| {
                Ok(Event::default()
                    .event("deposit")
                    .json_data(views::deposits::deposit_view(&d))
                    .unwrap_or_default())
            }))
        });
    let shutdown = state.shutdown.clone();
    let stop = async move { shutdown.wait().await };
    Ok(Sse::new(events.take_until(stop)).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DepositParams {
    /// The file's name, for people.
    #[serde(default)]
    pub file_name: String,
    /// The account whose identity deposits (absent: the one designated for the SIRET).
    #[serde(default)]
    pub user: String,
}

/// Deposits a DSN file (the body, as is): checked before anything is recorded (a bad
/// file: 400 `bad_dsn_file`, each problem with its line), then recorded and queued;
/// follow it with `GET /api/v1/deposits/{id}`.
#[utoipa::path(post, path = "/api/v1/deposits", tag = "deposits", security(("session" = [], "csrf" = [])),
    params(DepositParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "le fichier DSN"),
    responses((status = 201, body = DepositView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 500, description = "the file could not wait in its temporary file (`internal`)", body = ErrorBody)))]
async fn deposit(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    query: Result<axum::extract::Query<DepositParams>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> Result<Response, WebError> {
    let q = query
        .map_err(|_| WebError::invalid("Les paramètres de la demande ne sont pas valides."))?;
    let name = if q.file_name.trim().is_empty() {
        "fichier.dsn"
    } else {
        q.file_name.trim()
    };
    // The body, counted as it arrives, waits in a temporary file (its size is announced
    // first to the orchestrator).
    let mut data = state
        .uploads
        .file()
        .await
        .map_err(views::deposits::spool_error)?;
    let mut body = body.into_data_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| WebError::invalid("L'envoi du fichier s'est interrompu."))?;
        if data.len() + chunk.len() as u64 > sessions::UPLOAD_LIMIT as u64 {
            return Err(WebError::invalid("Le fichier envoyé est trop grand."));
        }
        data.write(&chunk)
            .await
            .map_err(views::deposits::spool_error)?;
    }
    let d = views::deposits::upload(&state, &current, name, &q.user, data).await?;
    Ok((StatusCode::CREATED, Json(views::deposits::deposit_view(&d))).into_response())
}

/// How a person settles a deposit: the listed flow it is, or send it again.
#[derive(Deserialize, ToSchema)]
pub struct ResolveBody {
    /// The flow of the listing that is this deposit.
    #[serde(default)]
    pub idflux: Option<String>,
    /// Send it again (none of the listed flows is it; or it waits, or failed).
    #[serde(default)]
    pub resend: bool,
}

/// Settles a deposit whose answer was lost (`to_check`, `uncertain`), or sends a
/// `waiting` or `failed` one again.
#[utoipa::path(post, path = "/api/v1/deposits/{id}/resolve", tag = "deposits", security(("session" = [], "csrf" = [])),
    params(("id" = i64, Path, description = "numéro du dépôt")),
    request_body = ResolveBody,
    responses((status = 200, body = DepositView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resolve_deposit(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<DepositView> {
    use iea_proto::v1::resolve_dsn_deposit_request::Resolution;
    let id = deposit_id(id)?;
    let b = json_body::<ResolveBody>(body)?;
    let resolution = match (b.idflux.filter(|s| !s.trim().is_empty()), b.resend) {
        (Some(idflux), false) => Resolution::Idflux(idflux),
        (None, true) => Resolution::Resend(true),
        _ => {
            return Err(WebError::invalid(
                "Indiquez soit le flux qui est ce dépôt (idflux), soit resend: true.",
            ));
        }
    };
    let d = views::deposits::resolve(&state, &current, id, resolution).await?;
    Ok(Json(views::deposits::deposit_view(&d)))
}

/// The returns of one deposit (natures 10, 11, 94…, each version), its conformity and the
/// state of its following. Returns are personal data: an administrator sees every
/// deposit's, another account those of its own deposits (404 otherwise).
#[utoipa::path(get, path = "/api/v1/deposits/{id}/returns", tag = "returns",
    params(("id" = i64, Path, description = "numéro du dépôt", example = 1)),
    responses((status = 200, body = ReturnsView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn deposit_returns(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> ApiResult<ReturnsView> {
    let r = views::returns::of_deposit(&state, &current, deposit_id(id)?).await?;
    Ok(Json(views::returns::returns_view(&r)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SiretParams {
    /// Only this establishment (14 digits); empty or absent: every one the session may
    /// see.
    #[serde(default)]
    pub siret: String,
}

fn query_or_invalid<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, WebError> {
    q.map(|axum::extract::Query(q)| q)
        .map_err(|_| WebError::invalid("Les paramètres de la demande ne sont pas valides."))
}

/// One line per followed deposit (accepted deposits): AEE, conformity, CRM PAS, what is
/// awaited.
#[utoipa::path(get, path = "/api/v1/returns/follows", tag = "returns", params(SiretParams),
    responses((status = 200, body = Vec<DepositFollowView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn deposit_follows(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    query: Result<axum::extract::Query<SiretParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<DepositFollowView>> {
    let q = query_or_invalid(query)?;
    let list = views::returns::follows(&state, &current, &q.siret).await?;
    Ok(Json(list.iter().map(views::returns::follow_view).collect()))
}

/// « Suivre maintenant ».
#[derive(Deserialize, ToSchema)]
pub struct FollowNowBody {
    /// Every followed deposit and declarant (the default), or (`false`) only those whose
    /// time has come.
    #[serde(default = "yes")]
    pub all: bool,
}

fn yes() -> bool {
    true
}

/// « Suivre maintenant » (administrator only): one pass of the following of returns now;
/// answers once it is done. The body is optional.
#[utoipa::path(post, path = "/api/v1/returns/follow-now", tag = "returns", security(("session" = [], "csrf" = [])),
    request_body(content = Option<FollowNowBody>, content_type = "application/json"),
    responses((status = 200, body = FollowNowView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn follow_now(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    body: axum::body::Bytes,
) -> ApiResult<FollowNowView> {
    let b = if body.iter().all(u8::is_ascii_whitespace) {
        FollowNowBody { all: true }
    } else {
        let invalid = || {
            WebError::invalid(
                "Le corps de la demande n'est pas un JSON valide pour cette opération.",
            )
        };
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| invalid())?;
        if !v.is_object() {
            return Err(invalid());
        }
        serde_json::from_value(v).map_err(|_| invalid())?
    };
    let r = views::returns::follow_now(&state, &current, b.all).await?;
    Ok(Json(views::returns::follow_now_view(&r)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RatesParams {
    /// Only this establishment (14 digits); empty or absent: every one the session may
    /// see.
    #[serde(default)]
    pub siret: String,
    /// Also the employees whose newest rate is no longer valid.
    #[serde(default)]
    pub expired: bool,
}

/// The current withholding (PAS) rate of each employee, per establishment (what `iea pas
/// rates --json` gives: the NIR whole, for the payroll program). Personal data: an
/// administrator sees all, another account those of its own deposits.
#[utoipa::path(get, path = "/api/v1/rates", tag = "returns", params(RatesParams),
    responses((status = 200, body = Vec<RateView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn rates(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    query: Result<axum::extract::Query<RatesParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<RateView>> {
    let q = query_or_invalid(query)?;
    let list = views::rates::list(&state, &current, &q.siret, q.expired).await?;
    Ok(Json(list.iter().map(views::rates::rate_view).collect()))
}

/// The same rates as CSV, column for column `iea pas rates --csv` (`;`-separated, UTF-8,
/// a header line).
#[utoipa::path(get, path = "/api/v1/rates.csv", tag = "returns", params(RatesParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn rates_csv(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    query: Result<axum::extract::Query<RatesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let q = query_or_invalid(query)?;
    let list = views::rates::list(&state, &current, &q.siret, q.expired).await?;
    Ok(views::rates::csv_response(
        views::rates::to_csv(&list),
        &views::rates::csv_name(&q.siret),
    ))
}

/// The deadline board (`iea dsn board --json`): per establishment and month the due date,
/// the deposit, the conformity, the CRM PAS; the alerts, most urgent first.
#[utoipa::path(get, path = "/api/v1/board", tag = "returns", params(SiretParams),
    responses((status = 200, body = BoardView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn board(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    query: Result<axum::extract::Query<SiretParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<BoardView> {
    let q = query_or_invalid(query)?;
    let r = views::board::get_board(&state, &current, &q.siret).await?;
    Ok(Json(views::board::board_view(&r)))
}

/// What the status adds for the session (`iea status`' alert line): the deadline
/// board's alert count and most urgent alert, and the depositing accounts whose
/// Net-entreprises credentials were refused at their last verification.
#[utoipa::path(get, path = "/api/v1/status/alerts", tag = "status",
    responses((status = 200, body = StatusAlertsView), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn status_alerts(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> ApiResult<StatusAlertsView> {
    let (_, a) = views::board::status_with_alerts(&state, &current).await?;
    Ok(Json(a))
}
