//! Rules common to the business services (deposit, listings, download): `Accept-Encoding`
//! (406 when present without gzip), the token (401 with its realm), and the shape of the
//! answers (XML, gzipped when the client accepts gzip; a 200 carries
//! `Cache-Control: no-cache` and `Expires` [`Settings::answer_expires_secs`] ahead).
//!
//! [`Settings::answer_expires_secs`]: crate::Settings::answer_expires_secs

use std::io::Write;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::Control;
use crate::tokens::{self, TokenCheck};

/// `WWW-Authenticate` of the business services' refusals.
pub const REALM_TOKEN_INVALID: &str = "DSNLogin realm=\"Jeton manquant ou invalide\"";
pub const REALM_TOKEN_EXPIRED: &str = "DSNLogin realm=\"Expiration du jeton\"";
pub use crate::service::REALM_NOT_REGISTERED;

/// The declarant a valid token stands for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub declarant: u64,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
}

/// `Accept-Encoding` absent: `None`; present: whether it names gzip.
pub fn accepts_gzip(headers: &HeaderMap) -> Option<bool> {
    let mut values = headers.get_all(header::ACCEPT_ENCODING).iter().peekable();
    values.peek()?;
    Some(values.any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|coding| {
                coding
                    .split(';')
                    .next()
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip"))
            })
        })
    }))
}

/// 406 when `Accept-Encoding` is present without gzip.
pub fn refuses_gzip(headers: &HeaderMap) -> bool {
    accepts_gzip(headers) == Some(false)
}

/// The declarant of the request's token, or the realm of the 401 to answer
/// ([`unauthorized`]). A declarant whose registration was withdrawn since (no longer
/// `registered`, or no longer holding the token's service) is "not registered".
pub fn caller(control: &Control, headers: &HeaderMap) -> Result<Caller, &'static str> {
    let now = control.clock().now();
    let check = control.tokens().check(tokens::presented(headers), now);
    match check {
        TokenCheck::Invalid => Err(REALM_TOKEN_INVALID),
        TokenCheck::Expired => Err(REALM_TOKEN_EXPIRED),
        TokenCheck::Valid { declarant, service } => match control.declarant(declarant) {
            Some(d) if d.registered && d.services.contains(&service) => Ok(Caller {
                declarant,
                siret: d.siret,
                nom: d.nom,
                prenom: d.prenom,
            }),
            _ => Err(REALM_NOT_REGISTERED),
        },
    }
}

pub fn unauthorized(realm: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, realm)],
    )
        .into_response()
}

/// An answer with an empty body.
pub fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// An XML answer, gzipped when the request accepts gzip. A 200 also gets
/// `Cache-Control: no-cache` and `Expires`.
pub fn xml(
    control: &Control,
    request: &HeaderMap,
    status: StatusCode,
    body: String,
    extra: &[(HeaderName, HeaderValue)],
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if status == StatusCode::OK {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // `Date` on the mock's own clock too (hyper adds the real time only when absent):
        // a client reads `Expires` relative to `Date`, so that both move with the clock.
        let now = control.clock().now_system();
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
            headers.insert(header::DATE, v);
        }
        let expires = now + std::time::Duration::from_secs(control.settings().answer_expires_secs);
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(expires)) {
            headers.insert(header::EXPIRES, v);
        }
    }
    for (name, value) in extra {
        headers.insert(name.clone(), value.clone());
    }
    let body = if accepts_gzip(request) == Some(true) {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        gzip(body.as_bytes())
    } else {
        body.into_bytes()
    };
    (status, headers, body).into_response()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// `text` escaped for XML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn accept_encoding_names_gzip_among_other_codings_and_weights() {
        assert_eq!(accepts_gzip(&HeaderMap::new()), None);
        assert_eq!(accepts_gzip(&with("gzip")), Some(true));
        assert_eq!(accepts_gzip(&with("br, GZIP;q=0.5")), Some(true));
        assert_eq!(accepts_gzip(&with("deflate, br")), Some(false));
        assert_eq!(accepts_gzip(&with("identity")), Some(false));
        assert_eq!(accepts_gzip(&with("x-gzip-like")), Some(false));
    }

    #[test]
    fn xml_escapes_markup_and_quotes() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("LEFÈVRE"), "LEFÈVRE");
    }
}
