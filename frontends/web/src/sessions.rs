//! Browser sessions: a random identifier in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` under TLS) mapped, in memory, to the orchestrator session token and a
//! per-session CSRF token. The token never leaves this process: pages and API answers
//! carry only the CSRF token, which a state-changing request must send back (form field
//! `csrf` or header `X-CSRF-Token`). Also the headers every answer carries
//! (Content-Security-Policy without inline scripts, no framing, no sniffing).
//!
//! Sign-in itself has no session yet: the form is protected by a double-submit token
//! (a short-lived `iea_login` cookie equal to the form's hidden field), the JSON sign-in
//! by requiring `Content-Type: application/json`, which no cross-site form can send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;

use crate::AppState;
use crate::orchestrator::WebError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "iea_session";
/// Name of the sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "iea_login";
/// Header carrying the CSRF token of JSON requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token of HTML forms.
pub const CSRF_FIELD: &str = "csrf";
/// Largest form body the CSRF check reads.
const FORM_LIMIT: usize = 256 * 1024;
/// Largest DSN file accepted through the console (a 100,000-employee file is about 40 MB).
pub const UPLOAD_LIMIT: usize = 64 * 1024 * 1024;
/// Largest multipart form body: the file and, around it, the other fields and the parts'
/// headers (the body limit of the upload route; the file's own limit is counted apart).
pub const UPLOAD_BODY_LIMIT: usize = UPLOAD_LIMIT + 64 * 1024;
/// The paths (POST) whose handler reads a multipart body and checks its `csrf` field
/// itself, with [`multipart_form`]; a multipart body to any other path is refused.
pub const MULTIPART_FORMS: &[&str] = &["/declarations/deposer"];
/// Largest `csrf` field read from a multipart form.
const CSRF_FIELD_LIMIT: usize = 256;

/// The Content-Security-Policy of every answer: our own script and stylesheet only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One signed-in browser.
#[derive(Clone)]
pub struct WebSession {
    /// The orchestrator's session token: sent to the orchestrator, never to the browser.
    pub token: SecretString,
    /// Sent back by every state-changing request.
    pub csrf: String,
    pub user: String,
    /// `administrator` or `user`.
    pub role: String,
    /// Unix seconds: the orchestrator's session ends then.
    pub expires_at: i64,
}

/// Sessions by cookie value.
#[derive(Default)]
pub struct SessionStore {
    inner: Mutex<HashMap<String, Arc<WebSession>>>,
}

impl SessionStore {
    /// Stores `session`; returns the cookie value naming it.
    pub fn insert(&self, session: WebSession) -> String {
        let id = random_token();
        let mut map = self.inner.lock().expect("sessions lock");
        let now = now();
        map.retain(|_, s| s.expires_at > now);
        map.insert(id.clone(), Arc::new(session));
        id
    }

    pub fn get(&self, id: &str) -> Option<Arc<WebSession>> {
        let mut map = self.inner.lock().expect("sessions lock");
        match map.get(id) {
            Some(s) if s.expires_at > now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) -> Option<Arc<WebSession>> {
        self.inner.lock().expect("sessions lock").remove(id)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value with our attributes; `max_age` 0 removes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie characters are hex and ASCII")
}

/// The session cookie for `id`, living as long as the orchestrator session.
pub fn session_cookie(id: &str, session: &WebSession, secure: bool) -> HeaderValue {
    set_cookie(
        SESSION_COOKIE,
        id,
        (session.expires_at - now()).max(0),
        secure,
    )
}

/// The session of a request that passed [`require_session`], as an extension.
#[derive(Clone)]
pub struct Current {
    pub id: String,
    pub session: Arc<WebSession>,
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/api/")
}

/// Refuses a request without a live session (401 JSON for the API, a redirection to the
/// sign-in page for pages), and a state-changing one without its CSRF token (403).
pub async fn require_session(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let api = is_api(&req);
    let Some((id, session)) = cookie(req.headers(), SESSION_COOKIE)
        .and_then(|id| state.sessions.get(&id).map(|s| (id, s)))
    else {
        return if api {
            WebError::unauthenticated().into_response()
        } else {
            Redirect::to("/connexion").into_response()
        };
    };
    let req = if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        req
    } else {
        match check_csrf(req, &session.csrf).await {
            Ok(req) => req,
            Err(e) if api => return e.into_response(),
            Err(e) => return crate::views::error_page(&e, None).into_response(),
        }
    };
    let mut req = req;
    req.extensions_mut().insert(Current { id, session });
    let mut response = next.run(req).await;
    // An orchestrator that no longer knows the session: the browser signs in again.
    if response.status() == StatusCode::UNAUTHORIZED && !api {
        response = Redirect::to("/connexion").into_response();
    }
    response
}

/// The request, unchanged, when its header or form field holds `expected`. A multipart
/// form (the DSN upload, [`MULTIPART_FORMS`]) is not read here: its handler reads it as a
/// stream and checks its `csrf` field, the form's first, with [`multipart_form`] before
/// anything else; a multipart body to any other path is refused. A request whose header
/// held the token carries [`CsrfChecked`].
async fn check_csrf(mut req: Request, expected: &str) -> Result<Request, WebError> {
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        return match v.to_str() {
            Ok(v) if same_token(v, expected) => {
                req.extensions_mut().insert(CsrfChecked);
                Ok(req)
            }
            _ => Err(WebError::csrf()),
        };
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if is_multipart(&content_type) {
        return if *req.method() == Method::POST && MULTIPART_FORMS.contains(&req.uri().path()) {
            Ok(req)
        } else {
            Err(WebError::csrf())
        };
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(WebError::csrf());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| WebError::invalid("Le formulaire envoyé est trop grand."))?;
    let found = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .is_some_and(|(_, v)| same_token(&v, expected));
    if !found {
        return Err(WebError::csrf());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A request whose `X-CSRF-Token` header held the session's token (an extension).
#[derive(Clone, Copy)]
pub struct CsrfChecked;

fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// The fields of a multipart form (a path of [`MULTIPART_FORMS`]), read as a stream by
/// `multer` (axum's `Multipart`), after its CSRF check: unless the request's header held
/// the token ([`CsrfChecked`]), the form's FIRST field must be `csrf` with `expected`,
/// checked before any other field is read (a token after the file is refused: the file
/// would have to be read, or held, before the request is known to be the person's).
/// A field `csrf` met later is to be skipped by the caller.
pub async fn multipart_form(req: Request, expected: &str) -> Result<Multipart, WebError> {
    let checked = req.extensions().get::<CsrfChecked>().is_some();
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|_| WebError::invalid("Le formulaire d'envoi n'est pas valide."))?;
    if checked {
        return Ok(form);
    }
    let mut field = match form.next_field().await {
        Ok(Some(field)) => field,
        Ok(None) => return Err(WebError::csrf()),
        Err(e) => return Err(multipart_error(&e)),
    };
    if field.name() != Some(CSRF_FIELD) {
        return Err(WebError::csrf());
    }
    let mut token = Vec::new();
    while let Ok(Some(chunk)) = field.chunk().await {
        token.extend_from_slice(&chunk);
        if token.len() > CSRF_FIELD_LIMIT {
            return Err(WebError::csrf());
        }
    }
    // A field cut short reads as a wrong token: refused.
    match std::str::from_utf8(&token) {
        Ok(t) if same_token(t, expected) => {}
        _ => return Err(WebError::csrf()),
    }
    drop(field);
    Ok(form)
}

/// The person's error for a multipart body that could not be read: too large (413), else
/// not a well-formed form or cut short (400).
pub fn multipart_error(e: &axum::extract::multipart::MultipartError) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        file_too_large()
    } else {
        WebError::invalid("Le formulaire d'envoi n'est pas valide ou son envoi s'est interrompu.")
    }
}

/// A file over [`UPLOAD_LIMIT`] (413).
pub fn file_too_large() -> WebError {
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_input",
        format!(
            "Le fichier envoyé est trop grand ({} Mio au plus).",
            UPLOAD_LIMIT >> 20
        ),
    )
}

/// The headers of every answer.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Opens an orchestrator session for `user` (the orchestrator applies its login limits)
/// and a browser session over it; returns the cookie value and the session.
pub async fn sign_in(
    state: &AppState,
    user: &str,
    password: SecretString,
) -> Result<(String, Arc<WebSession>), WebError> {
    use iea_proto::v1::sessions_client::SessionsClient;
    use iea_proto::v1::{LoginRequest, Role};
    use secrecy::ExposeSecret;
    use tracing::Instrument;

    if user.trim().is_empty() || password.expose_secret().is_empty() {
        return Err(WebError::invalid(
            "Indiquez le nom du compte et son mot de passe.",
        ));
    }
    let answer = SessionsClient::new(state.orchestrator.channel())
        .login(LoginRequest {
            user: user.to_owned(),
            password: password.expose_secret().to_owned(),
        })
        .instrument(tracing::info_span!("orchestrator", rpc = "Login"))
        .await?
        .into_inner();
    let info = answer.user.unwrap_or_default();
    let role = match Role::try_from(info.role).unwrap_or(Role::Unspecified) {
        Role::Administrator => "administrator",
        _ => "user",
    };
    let session = WebSession {
        token: SecretString::from(answer.token),
        csrf: random_token(),
        user: if info.name.is_empty() {
            user.to_owned()
        } else {
            info.name
        },
        role: role.to_owned(),
        expires_at: answer
            .expires_at
            .map(|t| t.seconds)
            .unwrap_or_else(|| now() + 8 * 3600),
    };
    let id = state.sessions.insert(session);
    let session = state
        .sessions
        .get(&id)
        .ok_or_else(WebError::unauthenticated)?;
    tracing::info!(user = %session.user, "web session opened");
    Ok((id, session))
}

/// Closes the browser session and the orchestrator session behind it.
pub async fn sign_out(state: &AppState, id: &str) {
    use iea_proto::v1::LogoutRequest;
    use iea_proto::v1::sessions_client::SessionsClient;
    use tracing::Instrument;

    if let Some(s) = state.sessions.remove(id) {
        let r = SessionsClient::new(state.orchestrator.channel())
            .logout(crate::orchestrator::authed(&s.token, LogoutRequest {}))
            .instrument(tracing::info_span!("orchestrator", rpc = "Logout"))
            .await;
        if let Err(e) = r {
            tracing::warn!(code = ?e.code(), "orchestrator logout failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; iea_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abcd", "abcd"));
        assert!(!same_token("abcd", "abce"));
        assert!(!same_token("abc", "abcd"));
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 64);
    }

    #[test]
    fn only_multipart_form_data_is_multipart() {
        assert!(is_multipart("multipart/form-data; boundary=x"));
        assert!(is_multipart("Multipart/Form-Data ; boundary=\"x\""));
        assert!(!is_multipart("multipart/mixed; boundary=x"));
        assert!(!is_multipart("application/x-www-form-urlencoded"));
        assert!(!is_multipart(""));
    }

    #[test]
    fn the_session_cookie_has_its_attributes() {
        let c = set_cookie(SESSION_COOKIE, "x", 60, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        let c = set_cookie(SESSION_COOKIE, "x", 60, false);
        assert!(!c.to_str().unwrap().contains("Secure"));
    }
}
