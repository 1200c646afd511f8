//! Tokens given by the authentication service and checked by the business services.
//!
//! A token is a secret: only its SHA-256 is kept, and neither is ever logged. Each
//! remembers the declarant and the service code it was given for, and its expiry on the
//! mock's clock. The business services read `Authorization: DSNLogin jeton=<token>`.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// What the business services learn from a request's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// A token given to this declarant for this service code, still valid.
    Valid { declarant: u64, service: u8 },
    /// A token this mock gave, past its expiry.
    Expired,
    /// No `Authorization`, another scheme, no `jeton`, or a token this mock never gave.
    Invalid,
}

struct Entry {
    declarant: u64,
    service: u8,
    expires_at: OffsetDateTime,
}

/// Every token given, by digest.
#[derive(Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Entry>,
    /// When the long-expired tokens are forgotten next: at most once a minute, so that
    /// giving a token does not scan every token ever given (thousands a second in the
    /// benchmarks).
    next_prune: Option<OffsetDateTime>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Remembers a token just given. Tokens expired for more than a day are forgotten
    /// (they would answer "Jeton manquant ou invalide" instead of "Expiration du jeton").
    pub fn insert(
        &mut self,
        token: &str,
        declarant: u64,
        service: u8,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) {
        if self.next_prune.is_none_or(|at| now >= at) {
            let horizon = now - time::Duration::days(1);
            self.by_digest.retain(|_, e| e.expires_at > horizon);
            self.next_prune = Some(now + time::Duration::minutes(1));
        }
        self.by_digest.insert(
            digest(token),
            Entry {
                declarant,
                service,
                expires_at,
            },
        );
    }

    pub fn check(&self, token: Option<&str>, now: OffsetDateTime) -> TokenCheck {
        let Some(entry) = token.and_then(|t| self.by_digest.get(&digest(t))) else {
            return TokenCheck::Invalid;
        };
        if now >= entry.expires_at {
            return TokenCheck::Expired;
        }
        TokenCheck::Valid {
            declarant: entry.declarant,
            service: entry.service,
        }
    }

    /// Makes every token given so far (or only those of `declarant`) expired at `now`;
    /// answers how many were still valid.
    pub fn expire(&mut self, declarant: Option<u64>, now: OffsetDateTime) -> usize {
        let mut count = 0;
        for e in self.by_digest.values_mut() {
            if declarant.is_none_or(|d| d == e.declarant) && e.expires_at > now {
                e.expires_at = now;
                count += 1;
            }
        }
        count
    }
}

/// The token of `Authorization: DSNLogin jeton=<token>` (scheme compared
/// case-insensitively, the value possibly quoted, other parameters ignored).
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, params) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("DSNLogin") {
        return None;
    }
    params.split(',').find_map(|param| {
        let (name, value) = param.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("jeton") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use time::Duration;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_token_is_read_from_the_dsnlogin_header_with_its_base64_padding() {
        assert_eq!(
            presented(&headers("DSNLogin jeton=ab+/cd==")),
            Some("ab+/cd==")
        );
        assert_eq!(presented(&headers("dsnlogin jeton=\"abc=\"")), Some("abc="));
        assert_eq!(presented(&headers("Bearer abc")), None);
        assert_eq!(presented(&headers("DSNLogin jeton=")), None);
        assert_eq!(presented(&headers("DSNLogin autre=abc")), None);
        assert_eq!(presented(&HeaderMap::new()), None);
    }

    #[test]
    fn a_token_is_valid_until_its_expiry_then_expired_and_an_unknown_one_invalid() {
        let now = OffsetDateTime::now_utc();
        let mut tokens = Tokens::default();
        tokens.insert("t1", 3, 97, now, now + Duration::hours(1));
        assert_eq!(
            tokens.check(Some("t1"), now),
            TokenCheck::Valid {
                declarant: 3,
                service: 97
            }
        );
        assert_eq!(
            tokens.check(Some("t1"), now + Duration::hours(1)),
            TokenCheck::Expired
        );
        assert_eq!(tokens.check(Some("t2"), now), TokenCheck::Invalid);
        assert_eq!(tokens.check(None, now), TokenCheck::Invalid);
        assert_eq!(tokens.expire(Some(4), now), 0);
        assert_eq!(tokens.expire(Some(3), now), 1);
        assert_eq!(tokens.check(Some("t1"), now), TokenCheck::Expired);
    }
}
