//! The console's pages, in French, server-rendered with maud (templates are Rust code
//! checked at compile time and escaped by default). One module per window of the seeds;
//! each page is thin over one or two orchestrator calls and works as plain HTML forms;
//! only the status page has a script, for its live update.
//!
//! Every form that changes something carries the session's CSRF token in a hidden field;
//! no page ever holds the orchestrator's token or any password.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::AppState;
use crate::orchestrator::WebError;
use crate::sessions::{CSRF_FIELD, Current};

pub mod accounts;
pub mod board;
pub mod connection;
pub mod deposits;
pub mod login;
pub mod rates;
pub mod returns;
pub mod status;
pub mod support;
pub mod updates;

/// Pages that need a session.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(status::routes())
        .merge(accounts::routes())
        .merge(connection::routes())
        .merge(support::routes())
        .merge(updates::routes())
        .merge(deposits::routes())
        .merge(returns::routes())
        .merge(rates::routes())
        .merge(board::routes())
        .merge(login::session_routes())
}

/// The sign-in page.
pub fn public_routes() -> Router<AppState> {
    login::routes()
}

/// The hidden field of a state-changing form.
pub fn csrf_field(current: &Current) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(current.session.csrf); }
}

/// The menu of a signed-in page: each entry's address and its page's title.
const MENU: [(&str, &str); 8] = [
    ("/", "État de la connexion"),
    ("/comptes", "Comptes utilisateurs"),
    ("/parametres", "Paramètres de connexion"),
    ("/declarations", "Déclarations DSN"),
    ("/echeancier", "Échéancier"),
    ("/taux-pas", "Taux PAS"),
    ("/mises-a-jour", "Mises à jour"),
    ("/support", "Demande de support technique"),
];

/// A whole page: head, menu (when signed in), title, body.
pub fn page(title: &str, current: Option<&Current>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — iea-connect" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                @if let Some(c) = current {
                    nav {
                        @for (href, label) in MENU {
                            // The page's own entry says so (`aria-current`, drawn underlined).
                            @if label == title { a href=(href) aria-current="page" { (label) } }
                            @else { a href=(href) { (label) } }
                        }
                        span class="user" { (c.session.user) }
                        form method="post" action="/deconnexion" {
                            (csrf_field(c))
                            button type="submit" { "Se déconnecter" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A message box above a page's content.
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { section class=(kind) role="status" { p { (text) } } }
}

/// An error as a page: its French sentence and its stable code.
pub fn error_page(e: &WebError, current: Option<&Current>) -> Response {
    let body = html! {
        section class="error" {
            p { (e.message) }
            p class="muted" { "Code : " code { (e.code) } }
        }
        p { a href="/" { "Retour à l'accueil" } }
    };
    (e.status, Html(page("Erreur", current, body).into_string())).into_response()
}

/// An address the console does not know, asked with a session open (without one, the
/// sign-in page answers first): under `/api/` the API's JSON error, else a page saying so
/// in French with the menu, rather than an empty answer.
pub async fn not_found(
    axum::extract::Extension(current): axum::extract::Extension<Current>,
    uri: axum::http::Uri,
) -> Response {
    let e = WebError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Cette adresse ne correspond à aucune page de la console iea-connect.",
    );
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        e.into_response()
    } else {
        error_page(&e, Some(&current))
    }
}

/// A page answer with status 200.
pub fn ok(markup: Markup) -> Response {
    (StatusCode::OK, Html(markup.into_string())).into_response()
}
