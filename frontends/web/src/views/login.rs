//! « Connexion » (sign-in) and « Se déconnecter ». The sign-in form is protected by a
//! double-submit token: the page sets it in a short-lived `iea_login` cookie and in a
//! hidden field, and the form is accepted only when both agree.

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use secrecy::SecretString;
use serde::Deserialize;

use crate::AppState;
use crate::orchestrator::WebError;
use crate::sessions::{
    self, CSRF_FIELD, Current, LOGIN_COOKIE, SESSION_COOKIE, cookie, random_token, same_token,
    set_cookie,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/connexion", get(form).post(submit))
}

pub fn session_routes() -> Router<AppState> {
    Router::new().route("/deconnexion", post(sign_out))
}

/// The form's fields. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The sign-in token: the browser's own while it has one (several tabs, a page loaded
/// twice), else a new one.
fn login_token(headers: &HeaderMap) -> String {
    cookie(headers, LOGIN_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(random_token)
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    user: &str,
    error: Option<&WebError>,
    status: StatusCode,
) -> Response {
    let token = login_token(headers);
    let body = html! {
        @if let Some(e) = error {
            section class="error" role="alert" { p { (e.message) } }
        }
        section {
            form method="post" action="/connexion" {
                input type="hidden" name=(CSRF_FIELD) value=(token);
                label for="user" { "Compte" }
                input type="text" id="user" name="user" value=(user) autocomplete="username" required;
                label for="password" { "Mot de passe" }
                input type="password" id="password" name="password" autocomplete="current-password" required;
                div { button type="submit" id="sign-in" { "Se connecter" } }
            }
        }
    };
    let mut r = (
        status,
        Html(super::page("Connexion à iea-connect", None, body).into_string()),
    )
        .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, 600, state.secure_cookies),
    );
    r
}

async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if cookie(&headers, SESSION_COOKIE).is_some_and(|id| state.sessions.get(&id).is_some()) {
        return Redirect::to("/").into_response();
    }
    render(&state, &headers, "Administrateur", None, StatusCode::OK)
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_token(&expected, &f.csrf) {
        let e = WebError::csrf();
        return render(&state, &headers, &f.user, Some(&e), e.status);
    }
    match sessions::sign_in(&state, &f.user, SecretString::from(f.password)).await {
        Ok((id, session)) => {
            let mut r = Redirect::to("/").into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                sessions::session_cookie(&id, &session, state.secure_cookies),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_COOKIE, "", 0, state.secure_cookies),
            );
            r
        }
        Err(e) => render(&state, &headers, &f.user, Some(&e), e.status),
    }
}

async fn sign_out(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
) -> Response {
    sessions::sign_out(&state, &current.id).await;
    let mut r = Redirect::to("/connexion").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.secure_cookies),
    );
    r
}
