//! Tokens given by the authentication service and checked by the business services.
//!
//! A token is a secret: only its SHA-256 is kept, and neither is ever logged. Each
//! remembers the declarant and the service code it was given for, and its expiry on the
//! mock's clock. The business services read `Authorization: DSNLogin jeton=<token>`.
//!
//! A token is remembered for one more lifetime after its expiry, so that a token recently
//! expired is told apart ("Expiration du jeton") from one never given; after that it is
//! forgotten, as a real server drops its expired sessions. Forgetting happens as tokens
//! are given (no timer): at most once per lifetime (and at least once a minute), the
//! forgotten ones are removed, so that the store holds about the tokens of three
//! lifetimes whatever the number ever given (thousands a second in the benchmarks).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// What the business services learn from a request's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// A token given to this declarant for this service code, still valid.
    Valid { declarant: u64, service: u8 },
    /// A token this mock gave, past its expiry (by less than its lifetime).
    Expired,
    /// No `Authorization`, another scheme, no `jeton`, or a token this mock never gave
    /// (or forgot: expired for longer than its lifetime).
    Invalid,
}

struct Entry {
    declarant: u64,
    service: u8,
    expires_at: OffsetDateTime,
    /// One lifetime after the expiry it was given with: from then on, unknown.
    forget_at: OffsetDateTime,
}

/// The tokens given and not forgotten yet, by digest.
#[derive(Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Entry>,
    /// When the forgotten tokens are removed next (see the module's documentation).
    next_purge: Option<OffsetDateTime>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Remembers a token just given, valid until `expires_at`; removes the tokens
    /// forgotten by now when it is time to (see the module's documentation).
    pub fn insert(
        &mut self,
        token: &str,
        declarant: u64,
        service: u8,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) {
        let lifetime = (expires_at - now).max(time::Duration::ZERO);
        if self.next_purge.is_none_or(|at| now >= at) {
            self.purge(now);
            let every = lifetime.clamp(time::Duration::SECOND, time::Duration::MINUTE);
            self.next_purge = Some(now + every);
        }
        self.by_digest.insert(
            digest(token),
            Entry {
                declarant,
                service,
                expires_at,
                forget_at: expires_at + lifetime,
            },
        );
    }

    /// Removes the tokens forgotten at `now`, and gives back the room of a table that
    /// held many more (a burst of authentications long past).
    fn purge(&mut self, now: OffsetDateTime) {
        self.by_digest.retain(|_, e| now < e.forget_at);
        if self.by_digest.capacity() > 4 * self.by_digest.len().max(1024) {
            self.by_digest.shrink_to_fit();
        }
    }

    /// The tokens remembered (given and not removed yet).
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    pub fn check(&self, token: Option<&str>, now: OffsetDateTime) -> TokenCheck {
        let Some(entry) = token
            .and_then(|t| self.by_digest.get(&digest(t)))
            .filter(|e| now < e.forget_at)
        else {
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

    /// Makes every token given so far (or only those of `declarant`) expired at `now`
    /// (still remembered until they would have been forgotten); answers how many were
    /// still valid.
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

    #[test]
    fn a_recently_expired_token_is_told_apart_then_forgotten_and_removed() {
        let t0 = OffsetDateTime::now_utc();
        let life = Duration::minutes(10);
        let mut tokens = Tokens::default();
        tokens.insert("old", 3, 25, t0, t0 + life);
        // Expired for less than its lifetime: "Expiration du jeton".
        assert_eq!(
            tokens.check(Some("old"), t0 + life + Duration::minutes(9)),
            TokenCheck::Expired
        );
        // Then unknown, and gone from the store once tokens are given again.
        let later = t0 + 2 * life;
        assert_eq!(tokens.check(Some("old"), later), TokenCheck::Invalid);
        assert_eq!(tokens.len(), 1);
        tokens.insert("new", 4, 25, later, later + life);
        assert_eq!(tokens.len(), 1, "the forgotten token is removed");
        assert_eq!(
            tokens.check(Some("new"), later),
            TokenCheck::Valid {
                declarant: 4,
                service: 25
            }
        );
    }

    #[test]
    fn the_store_holds_about_three_lifetimes_of_tokens_however_many_were_given() {
        // 100 tokens a second living 10 seconds, for ten minutes of the mock's clock.
        let t0 = OffsetDateTime::now_utc();
        let life = Duration::seconds(10);
        let mut tokens = Tokens::default();
        let mut most = 0;
        for i in 0..60_000 {
            let now = t0 + Duration::milliseconds(10 * i);
            tokens.insert(&format!("t{i}"), 1, 25, now, now + life);
            most = most.max(tokens.len());
        }
        assert!(
            most <= 3_001,
            "at most three lifetimes of tokens, held {most}"
        );
        // Those of the last two lifetimes (valid, or recently expired) are all there.
        assert!(tokens.len() >= 2_000, "held {}", tokens.len());
        let now = t0 + Duration::milliseconds(10 * 59_999);
        assert_eq!(tokens.check(Some("t58000"), now), TokenCheck::Expired);
        assert!(matches!(
            tokens.check(Some("t59999"), now),
            TokenCheck::Valid { .. }
        ));
    }
}
