//! The authentication exchange: the request, reading the answer, the token.
//!
//! The request: `POST`, `Content-Type: application/xml`, body
//! `<identifiants><siret/><nom/><prenom/><motdepasse/><service/></identifiants>` with the
//! values XML-escaped, to the authentication address; an address without a path
//! (`https://services.net-entreprises.fr`) gets [`AUTH_PATH`]. The `User-Agent` is
//! [`user_agent`], the form Net-entreprises expects from software.
//!
//! Retries. A refusal (401, 403, 422) is never repeated: repeated failures lock the
//! declarant's real account, which only they can unlock. Neither is a 5xx, a timeout or a
//! connection cut once the request may have left: nothing proves the server did not
//! count the attempt, so [`iea_net::HttpClient::send`]'s retry of transient failures in
//! *Étendu* mode is *not* used here. The one retry kept, in *Étendu* mode only, is for a
//! connection that could not be opened at all (name resolution or TCP connect): the
//! request had not left, and no server saw it. Redirects follow the client's policy (at
//! most three; the real service does not redirect).
//!
//! The token of a 200 is read into a secret and checked to be non-trivial; it leaves this
//! crate only as a [`Token`], which attaches itself to a request
//! ([`Token::authorize`], header marked sensitive) and never prints.

use std::time::{Duration, Instant, SystemTime};

use iea_declarant::Identity;
use iea_net::probe::classify;
use iea_net::{HttpClient, NetworkSettings, Step};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, EXPIRES, HeaderValue, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use crate::outcome::{
    Authentication, REALM_NOT_REGISTERED, REALM_TOKEN_EXPIRED, REALM_TOKEN_INVALID, interpret,
    realm_is,
};
use crate::service::ServiceCode;

/// Path of the authentication service, added to an address that has none.
pub const AUTH_PATH: &str = "/authentifier/1.0/";

/// Largest answer body read for a token (a token is a few dozen bytes).
const MAX_TOKEN_BODY: usize = 16 * 1024;
/// Shortest answer taken for a token.
const MIN_TOKEN_LEN: usize = 16;

/// The `User-Agent` Net-entreprises expects from software:
/// `Client-DSN (<software>/<version>; <publisher>)`.
pub fn user_agent() -> String {
    format!(
        "Client-DSN (iea-connect/{}; iea-connect)",
        env!("CARGO_PKG_VERSION")
    )
}

/// A Net-entreprises token: a secret that can be attached to a request, never read nor
/// printed.
#[derive(Clone)]
pub struct Token {
    secret: SecretString,
    expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Token {
    pub(crate) fn new(secret: SecretString) -> Self {
        Self {
            secret,
            expires_at: None,
        }
    }

    pub(crate) fn with_expiry(mut self, expires_at: Option<SystemTime>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// When the authentication answer said the token expires (`Expires`), if it did.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// `request` with `Authorization: DSNLogin jeton=<token>`, the header marked
    /// sensitive (never printed by the HTTP stack).
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let value = format!("DSNLogin jeton={}", self.secret.expose_secret());
        match HeaderValue::from_str(&value) {
            Ok(mut v) => {
                v.set_sensitive(true);
                request.header(AUTHORIZATION, v)
            }
            // Cannot happen: a token is checked to be base64 text when it is read. Sent
            // without one, the request gets a 401 "Jeton manquant ou invalide".
            Err(_) => request,
        }
    }

    /// Whether two tokens are the same one (to forget a token only if it is still the one
    /// a refused request carried).
    pub fn same_as(&self, other: &Token) -> bool {
        self.secret.expose_secret() == other.secret.expose_secret()
    }
}

/// What a 401 of a business service (deposit, listings) says about the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusinessRefusal {
    /// "Jeton manquant ou invalide".
    TokenInvalid,
    /// "Expiration du jeton".
    TokenExpired,
    /// "Utilisateur non-inscrit au service": a new token will not help.
    NotRegistered,
    /// Another realm, or none (its value, for diagnosis).
    Other(Option<String>),
}

/// Reads the `WWW-Authenticate` of a business service's 401.
pub fn business_refusal(www_authenticate: Option<&str>) -> BusinessRefusal {
    let realm = www_authenticate.map(|h| parse_realm(h).unwrap_or_else(|| h.to_owned()));
    let r = realm.as_deref();
    if realm_is(r, REALM_TOKEN_INVALID) {
        BusinessRefusal::TokenInvalid
    } else if realm_is(r, REALM_TOKEN_EXPIRED) {
        BusinessRefusal::TokenExpired
    } else if realm_is(r, REALM_NOT_REGISTERED) {
        BusinessRefusal::NotRegistered
    } else {
        BusinessRefusal::Other(realm)
    }
}

impl BusinessRefusal {
    /// The refusal as an authentication outcome (for a caller's budget): only
    /// "non-inscrit" is a refusal of the declarant; the others are about the token.
    pub fn as_authentication(&self, service: ServiceCode) -> Option<Authentication> {
        match self {
            Self::NotRegistered => {
                let mut a = crate::outcome::not_registered(service);
                a.http_status = Some(401);
                a.realm = Some(REALM_NOT_REGISTERED.into());
                Some(a)
            }
            _ => None,
        }
    }
}

/// The POST, tried again only if the connection could not be opened (extended mode).
pub(crate) async fn authenticate(
    client: &HttpClient,
    url: &Url,
    identity: &Identity,
    service: ServiceCode,
    settings: &NetworkSettings,
) -> Authentication {
    let body = SecretString::from(xml_body(identity, service));
    let attempts = 1 + settings.mode.retries();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let span = tracing::info_span!(
            "net_entreprises_authenticate",
            url = %url,
            siret = %identity.siret,
            service = service.get(),
            attempt,
        );
        let started = Instant::now();
        let sent = client
            .reqwest()
            .post(url.clone())
            .header(CONTENT_TYPE, "application/xml")
            .body(body.expose_secret().to_owned())
            .send()
            .instrument(span.clone())
            .await;
        match sent {
            Ok(response) => {
                return read_answer(response, settings, service, started)
                    .instrument(span)
                    .await;
            }
            Err(e) => {
                let mut d = classify(&e, settings);
                d.latency = started.elapsed();
                let never_left =
                    e.is_connect() && matches!(d.step, Step::Connect | Step::NameResolution);
                span.in_scope(|| tracing::info!(step = ?d.step, detail = %d.detail, "no answer"));
                if never_left && attempt < attempts {
                    tracing::debug!(
                        attempt,
                        "connection not opened, trying again (extended mode)"
                    );
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    continue;
                }
                return Authentication::unavailable(d);
            }
        }
    }
}

async fn read_answer(
    mut response: reqwest::Response,
    settings: &NetworkSettings,
    service: ServiceCode,
    started: Instant,
) -> Authentication {
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let www_authenticate = header(WWW_AUTHENTICATE);
    let expires = header(EXPIRES).and_then(|e| httpdate::parse_http_date(&e).ok());
    let mut token = None;
    if status == 200 {
        match read_limited(&mut response, MAX_TOKEN_BODY).await {
            Ok(body) => {
                token = body
                    .and_then(|b| String::from_utf8(b).ok())
                    .map(SecretString::from)
                    .and_then(|t| checked_token(&t))
            }
            Err(e) => {
                let mut d = classify(&e, settings);
                d.latency = started.elapsed();
                return Authentication::unavailable(d);
            }
        }
    }
    let v = interpret(
        status,
        www_authenticate.as_deref(),
        expires,
        token,
        settings,
        service,
    );
    tracing::info!(
        outcome = v.outcome.code(),
        http_status = status,
        realm = v.realm.as_deref().unwrap_or(""),
        "answer"
    );
    v
}

/// The body, at most `max` bytes (`None` past that: the rest is not read).
pub async fn read_limited(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if buf.len() + chunk.len() > max {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

/// A token: non-trivial base64 text (standard or URL alphabet), spaces around removed.
fn checked_token(token: &SecretString) -> Option<Token> {
    let t = token.expose_secret().trim();
    let ok = t.len() >= MIN_TOKEN_LEN
        && t.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'));
    ok.then(|| Token::new(SecretString::from(t.to_owned())))
}

/// The URL to post to: `address`, or `address` + [`AUTH_PATH`] when it has no path.
pub fn auth_url(address: &Url) -> Url {
    if address.path() == "/" || address.path().is_empty() {
        let mut u = address.clone();
        u.set_path(AUTH_PATH);
        u
    } else {
        address.clone()
    }
}

/// The XML body, values escaped.
pub fn xml_body(identity: &Identity, service: ServiceCode) -> String {
    let mut b = String::with_capacity(192);
    b.push_str("<identifiants><siret>");
    escape_into(&identity.siret, &mut b);
    b.push_str("</siret><nom>");
    escape_into(&identity.nom, &mut b);
    b.push_str("</nom><prenom>");
    escape_into(&identity.prenom, &mut b);
    b.push_str("</prenom><motdepasse>");
    escape_into(identity.password.expose_secret(), &mut b);
    b.push_str("</motdepasse><service>");
    b.push_str(&service.get().to_string());
    b.push_str("</service></identifiants>");
    b
}

fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// The realm of a `WWW-Authenticate` value (`Basic realm="net-entreprises.fr"`).
pub fn parse_realm(header: &str) -> Option<String> {
    let lower = header.to_ascii_lowercase();
    let start = lower.find("realm=")? + "realm=".len();
    let rest = &header[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => return Some(value),
                c => value.push(c),
            }
        }
        Some(value)
    } else {
        Some(rest.split([',', ' ']).next().unwrap_or("").to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms_are_read_quoted_or_not() {
        assert_eq!(
            parse_realm("Basic realm=\"net-entreprises.fr\"").as_deref(),
            Some("net-entreprises.fr")
        );
        assert_eq!(
            parse_realm("DSNLogin REALM=\"a \\\"b\\\"\", x=1").as_deref(),
            Some("a \"b\"")
        );
        assert_eq!(
            parse_realm("Basic realm=plain, x=1").as_deref(),
            Some("plain")
        );
        assert_eq!(parse_realm("Basic"), None);
    }

    #[test]
    fn a_business_401_is_read_by_its_realm() {
        assert_eq!(
            business_refusal(Some("DSNLogin realm=\"Jeton manquant ou invalide\"")),
            BusinessRefusal::TokenInvalid
        );
        assert_eq!(
            business_refusal(Some("DSNLogin realm=\"Expiration du jeton\"")),
            BusinessRefusal::TokenExpired
        );
        let nr = business_refusal(Some(
            "DSNLogin realm=\"Utilisateur non-inscrit au service\"",
        ));
        assert_eq!(nr, BusinessRefusal::NotRegistered);
        let a = nr.as_authentication(ServiceCode::DSN_TEST).unwrap();
        assert!(a.outcome.is_refusal());
        assert_eq!(business_refusal(None), BusinessRefusal::Other(None));
        assert!(
            BusinessRefusal::TokenExpired
                .as_authentication(ServiceCode::DSN_TEST)
                .is_none()
        );
    }

    #[test]
    fn an_address_without_a_path_gets_the_authentication_path() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            auth_url(&u("https://services.net-entreprises.fr")).as_str(),
            "https://services.net-entreprises.fr/authentifier/1.0/"
        );
        assert_eq!(
            auth_url(&u(
                "https://test-services.net-entreprises.fr/authentifier/1.0/"
            ))
            .as_str(),
            "https://test-services.net-entreprises.fr/authentifier/1.0/"
        );
        assert_eq!(
            auth_url(&u("http://127.0.0.1:8080/x")).as_str(),
            "http://127.0.0.1:8080/x"
        );
    }

    #[test]
    fn the_body_ends_with_the_service_code() {
        let id = iea_declarant::validate(
            "99900000300015",
            "n",
            "p",
            &SecretString::from("x".to_owned()),
        )
        .unwrap();
        assert!(
            xml_body(&id, ServiceCode::new(98).unwrap())
                .ends_with("<service>98</service></identifiants>")
        );
    }

    #[test]
    fn a_token_is_checked_trimmed_and_never_printed() {
        let t = checked_token(&SecretString::from(" c2VjcmV0LXRva2VuLWZvci10ZXN0cw==\n"));
        let t = t.expect("a token");
        assert!(!format!("{t:?}").contains("c2VjcmV0"));
        let settings =
            NetworkSettings::direct(iea_net::ConnectionMode::Normal, "http://127.0.0.1/").unwrap();
        let client = HttpClient::new(&settings, "test").unwrap();
        let rb = t.authorize(client.reqwest().get("http://127.0.0.1/"));
        let req = rb.build().unwrap();
        let h = req.headers().get(AUTHORIZATION).unwrap();
        assert!(h.is_sensitive());
        assert_eq!(
            h.to_str().unwrap(),
            "DSNLogin jeton=c2VjcmV0LXRva2VuLWZvci10ZXN0cw=="
        );
        assert!(checked_token(&SecretString::from("short")).is_none());
        assert!(checked_token(&SecretString::from("not base64 at all, spaces")).is_none());
    }
}
