//! Tokens, kept inside the agent: one per (authentication address, SIRET, nom, prénom,
//! password, service), reused until it expires, never returned nor logged.
//!
//! - A token is usable until the `Expires` of its authentication answer, less a margin
//!   (a quarter of its life, at most 30 s, so that a deposit does not start on a token
//!   about to lapse); without `Expires`, for [`DEFAULT_LIFETIME`].
//! - One authentication at a time per identity: callers that need the same token wait
//!   for the one in flight and take its result. A failure (a refusal above all) is given
//!   to those that were already waiting for it, never sent again on their behalf
//!   (repeated refusals lock the declarant's real account); a later call authenticates
//!   anew (the orchestrator's budget decides whether there is one).
//! - [`Sessions::renew`] after a 401 of a business service forgets the refused token
//!   (only if it is still the kept one) and authenticates again.
//!
//! The key of an identity is a SHA-256 digest salted with a random value drawn at start:
//! no password, nor an unsalted digest of one, is kept in the map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use iea_declarant::Identity;
use iea_net::NetworkSettings;
use iea_net_entreprises::{
    AUTH_PATH, Authentication, Authenticator, Prepared, ServiceCode, Token, business_refusal,
};
use reqwest::Url;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

/// Lifetime assumed for a token whose answer carried no `Expires`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Most a token is given up before its expiry.
const MAX_MARGIN: Duration = Duration::from_secs(30);
/// Identities kept at most; past that the map starts again empty.
const MAX_IDENTITIES: usize = 4096;

/// Who calls Net-entreprises and where, for one call.
#[derive(Debug)]
pub struct Access {
    /// The business service (deposit or consultation), settings bounded.
    pub business: Prepared,
    /// The authentication service, with the same settings.
    pub auth: Prepared,
    pub identity: Identity,
    pub service: ServiceCode,
    key: [u8; 32],
}

#[derive(Default)]
struct Slot {
    token: Option<(Token, Instant)>,
    /// The last authentication that gave no token, and when it ended.
    failed: Option<(Instant, Authentication)>,
}

/// The tokens of the agent, and how they are obtained.
pub struct Sessions {
    authenticator: Arc<Authenticator>,
    salt: [u8; 32],
    slots: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<Slot>>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self {
            authenticator,
            salt: rand::random(),
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// The access of one call. `auth_address`: the authentication service; `None`: the
    /// business address's origin with [`AUTH_PATH`].
    pub fn access(
        &self,
        business: &NetworkSettings,
        auth_address: Option<Url>,
        identity: Identity,
        service: ServiceCode,
    ) -> Access {
        let auth_address = auth_address.unwrap_or_else(|| {
            let mut u = business.address.clone();
            u.set_path(AUTH_PATH);
            u.set_query(None);
            u.set_fragment(None);
            u
        });
        let mut auth_settings = business.clone();
        auth_settings.address = auth_address;
        let auth = self.authenticator.prepare(&auth_settings);
        let key = self.key(auth.auth_url(), &identity, service);
        Access {
            business: self.authenticator.prepare(business),
            auth,
            identity,
            service,
            key,
        }
    }

    fn key(&self, auth_url: &Url, identity: &Identity, service: ServiceCode) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        for part in [
            auth_url.as_str(),
            identity.siret.as_str(),
            identity.nom.as_str(),
            identity.prenom.as_str(),
            identity.password.expose_secret(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.update(service.get().to_le_bytes());
        h.finalize().into()
    }

    fn slot(&self, key: [u8; 32]) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= MAX_IDENTITIES && !slots.contains_key(&key) {
            slots.clear();
        }
        slots.entry(key).or_default().clone()
    }

    /// A usable token of this identity: the kept one, or a new authentication's. `Err`:
    /// the authentication gave none (its outcome says why).
    pub async fn token(&self, access: &Access) -> Result<Token, Authentication> {
        self.obtain(access, None).await
    }

    /// After a business service refused `stale` (401): forgets it if it is still the kept
    /// one, then as [`Sessions::token`] (a token renewed meanwhile by another call is
    /// taken as it is).
    pub async fn renew(&self, access: &Access, stale: &Token) -> Result<Token, Authentication> {
        self.obtain(access, Some(stale)).await
    }

    async fn obtain(
        &self,
        access: &Access,
        stale: Option<&Token>,
    ) -> Result<Token, Authentication> {
        let slot = self.slot(access.key);
        let waiting_since = Instant::now();
        let mut s = slot.lock().await;
        if let (Some(stale), Some((kept, _))) = (stale, &s.token)
            && kept.same_as(stale)
        {
            s.token = None;
        }
        if let Some((token, until)) = &s.token {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
            s.token = None;
        }
        if let Some((at, failure)) = &s.failed
            && *at >= waiting_since
        {
            tracing::info!(
                outcome = failure.outcome.code(),
                "outcome of the authentication in flight taken, nothing sent again"
            );
            return Err(failure.clone());
        }
        let mut a = self
            .authenticator
            .authenticate_prepared(&access.identity, access.service, &access.auth)
            .await;
        match a.take_token() {
            Some(token) => {
                let until = usable_until(token.expires_at());
                s.token = Some((token.clone(), until));
                s.failed = None;
                Ok(token)
            }
            None => {
                s.failed = Some((Instant::now(), a.clone()));
                Err(a)
            }
        }
    }
}

/// How a call to a business service with a token ended.
#[derive(Debug)]
pub enum Called<A> {
    /// The service's answer (or failure) to the last request sent; `true` if a 401 made
    /// the agent authenticate again and send once more.
    Done(A, bool),
    /// No token could be had, or the service said the declarant is not registered to it
    /// (a refusal that counts): nothing more was sent.
    Authentication(Box<Authentication>, bool),
}

impl Sessions {
    /// `send` with a token; on a 401 (`www_401` gives its `WWW-Authenticate`), one new
    /// authentication and one more `send`, never more. A refused authentication is
    /// final.
    pub async fn call<A, F, Fut>(
        &self,
        access: &Access,
        mut send: F,
        www_401: impl Fn(&A) -> Option<Option<String>>,
    ) -> Called<A>
    where
        F: FnMut(Token) -> Fut,
        Fut: std::future::Future<Output = A>,
    {
        let token = match self.token(access).await {
            Ok(t) => t,
            Err(a) => return Called::Authentication(Box::new(a), false),
        };
        let first = send(token.clone()).await;
        let Some(www) = www_401(&first) else {
            return Called::Done(first, false);
        };
        let refusal = business_refusal(www.as_deref());
        if let Some(a) = refusal.as_authentication(access.service) {
            return Called::Authentication(Box::new(a), false);
        }
        tracing::info!(refusal = ?refusal, "token refused by the service, authenticating again once");
        let token = match self.renew(access, &token).await {
            Ok(t) => t,
            Err(a) => return Called::Authentication(Box::new(a), true),
        };
        let second = send(token).await;
        if let Some(www) = www_401(&second)
            && let Some(a) = business_refusal(www.as_deref()).as_authentication(access.service)
        {
            return Called::Authentication(Box::new(a), true);
        }
        Called::Done(second, true)
    }
}

/// When a token that expires at `expires_at` stops being used.
fn usable_until(expires_at: Option<SystemTime>) -> Instant {
    let life = match expires_at {
        Some(at) => at.duration_since(SystemTime::now()).unwrap_or_default(),
        None => DEFAULT_LIFETIME,
    };
    Instant::now() + life - (life / 4).min(MAX_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_given_up_a_margin_before_it_expires() {
        let now = Instant::now();
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        let until = usable_until(Some(in_an_hour));
        let left = until - now;
        assert!(
            left <= Duration::from_millis(3_570_100) && left > Duration::from_secs(3560),
            "{left:?}"
        );
        let short = usable_until(Some(SystemTime::now() + Duration::from_secs(8)));
        let left = short - now;
        assert!(
            left <= Duration::from_millis(6_100) && left > Duration::from_secs(5),
            "{left:?}"
        );
        assert!(usable_until(Some(SystemTime::now() - Duration::from_secs(5))) <= Instant::now());
        let none = usable_until(None) - now;
        assert!(
            none > Duration::from_secs(29 * 60)
                && none <= DEFAULT_LIFETIME + Duration::from_millis(100)
        );
    }
}
