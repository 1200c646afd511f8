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
use maud::{DOCTYPE, Markup, PreEscaped, html};

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

/// The menu of a signed-in page: each entry's address, its page's title, and the titles'
/// beginnings of the pages under it (a deposit's page is under « Déclarations DSN »).
const MENU: [(&str, &str, &[&str]); 8] = [
    ("/", "État de la connexion", &[]),
    ("/comptes", "Comptes utilisateurs", &[]),
    ("/parametres", "Paramètres de connexion", &[]),
    (
        "/declarations",
        "Déclarations DSN",
        &["Dépôt n° ", "Retours du dépôt "],
    ),
    ("/echeancier", "Échéancier", &[]),
    ("/taux-pas", "Taux PAS", &[]),
    ("/mises-a-jour", "Mises à jour", &["Lisez-moi"]),
    ("/support", "Demande de support technique", &[]),
];

/// Whether the page titled `title` is the menu entry `label`'s or one under it.
fn in_section(title: &str, label: &str, under: &[&str]) -> bool {
    title == label || under.iter().any(|p| title.starts_with(p))
}

/// A whole page: head, menu (when signed in), title, body; what French typography keeps
/// on one line is joined by no-break spaces ([`keep_together`]).
pub fn page(title: &str, current: Option<&Current>, body: Markup) -> Markup {
    PreEscaped(keep_together(
        &page_markup(title, current, body).into_string(),
    ))
}

/// The no-break space.
const NBSP: char = '\u{a0}';

/// The page's text with a no-break space where French typography forbids a line break:
/// inside a time (« 12 h 00 »), before a percent sign or a unit (« 7,50 % », « 65,5 ko »,
/// « 12 ms »), after « n° ». Only text is touched, never a tag or its attributes (escaped
/// text holds no `<` nor `>`), nor what a person typed in a `textarea`, sent back as it
/// is; the JSON API keeps plain spaces.
pub fn keep_together(html: &str) -> String {
    let chars: Vec<char> = html.chars().collect();
    let mut out = String::with_capacity(html.len() + 64);
    let mut in_tag = false;
    let mut in_textarea = false;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let word_at = |i: usize, w: &str| {
        let n = w.chars().count();
        w.chars().enumerate().all(|(k, c)| at(i + k) == c) && !at(i + n).is_alphanumeric()
    };
    let starts = |i: usize, w: &str| w.chars().enumerate().all(|(k, c)| at(i + k) == c);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '<' => {
                in_tag = true;
                if starts(i, "<textarea") {
                    in_textarea = true;
                } else if starts(i, "</textarea") {
                    in_textarea = false;
                }
            }
            '>' => in_tag = false,
            ' ' if !in_tag && !in_textarea && i > 0 => {
                let before = chars[i - 1];
                let next = at(i + 1);
                let joined = (before.is_ascii_digit()
                    && (next == '%'
                        || (next == 'h' && at(i + 2) == ' ' && at(i + 3).is_ascii_digit())
                        || ["ko", "Mo", "Go", "ms"].iter().any(|u| word_at(i + 1, u))))
                    || (before == 'h'
                        && i >= 3
                        && matches!(chars[i - 2], ' ' | NBSP)
                        && chars[i - 3].is_ascii_digit()
                        && next.is_ascii_digit())
                    || (before == '°' && i >= 2 && chars[i - 2] == 'n' && next.is_ascii_digit());
                if joined {
                    out.push(NBSP);
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

fn page_markup(title: &str, current: Option<&Current>, body: Markup) -> Markup {
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
                        @for (href, label, under) in MENU {
                            // The page's own entry says so (`aria-current`, drawn underlined).
                            @if in_section(title, label, under) { a href=(href) aria-current="page" { (label) } }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A page under a menu entry marks it; another title marks none.
    #[test]
    fn the_menu_marks_the_entry_of_the_page_and_of_the_pages_under_it() {
        let marked = |title: &str| {
            MENU.iter()
                .filter(|(_, label, under)| in_section(title, label, under))
                .map(|(_, label, _)| *label)
                .collect::<Vec<_>>()
        };
        assert_eq!(marked("Taux PAS"), ["Taux PAS"]);
        assert_eq!(marked("Dépôt n° 12"), ["Déclarations DSN"]);
        assert_eq!(marked("Retours du dépôt n° 12"), ["Déclarations DSN"]);
        assert_eq!(marked("Lisez-moi — version 3.00.72"), ["Mises à jour"]);
        assert!(marked("Erreur").is_empty());
    }

    /// A time, a rate, a size, a number stay on one line; tags and attributes are left
    /// as written.
    #[test]
    fn french_typography_keeps_times_rates_and_numbers_on_one_line() {
        let html = r#"<td data-due="le 15 h 00">le 15 décembre 2026 à 12 h 00</td><td>7,50 % · 65,5 ko · 12 ms · n° 14</td><p>2 heures, 3 hommes, 5 moutons, n° x</p><textarea name="d">depuis 9 h 30</textarea><p>à 9 h 30</p>"#;
        assert_eq!(
            keep_together(html),
            "<td data-due=\"le 15 h 00\">le 15 décembre 2026 à 12\u{a0}h\u{a0}00</td>\
             <td>7,50\u{a0}% · 65,5\u{a0}ko · 12\u{a0}ms · n°\u{a0}14</td>\
             <p>2 heures, 3 hommes, 5 moutons, n° x</p>\
             <textarea name=\"d\">depuis 9 h 30</textarea><p>à 9\u{a0}h\u{a0}30</p>"
        );
    }
}
