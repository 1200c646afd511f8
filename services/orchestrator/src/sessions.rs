//! Accounts' Impact emploi passwords and front-end sessions.
//!
//! Passwords are stored as argon2id hashes. A session token is 256 random bits shown to
//! the front-end once; the database keeps only its SHA-256, so a copy of the database
//! does not open sessions. Five wrong passwords in a row lock an account for 15 minutes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::store::Store;
use crate::users::Role;

/// The account IEA creates on every installation.
pub const BOOTSTRAP_ADMIN: &str = "Administrateur";
/// File, in the data directory, holding the bootstrap administrator's first password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

const MAX_FAILED_LOGINS: i64 = 5;
const LOCK_SECONDS: i64 = 15 * 60;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("wrong user name or password")]
    InvalidCredentials,
    #[error("account locked after repeated failures")]
    Locked { until: i64 },
    #[error("no valid session")]
    NoSession,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct Sessions {
    store: Store,
    ttl: Duration,
}

/// An opened session. The token is secret: it is returned once, never logged.
pub struct OpenedSession {
    pub token: SecretString,
    pub expires_at: i64,
    pub principal: Principal,
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random secret, URL-safe base64 of `bytes` random bytes.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

impl Sessions {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    /// On an installation without accounts, creates `Administrateur` with a random
    /// password written to `data_dir/admin-password` (mode 0600). Returns that path when
    /// it did so.
    pub async fn bootstrap(&self, data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        if self.store.user_count().await? > 0 {
            return Ok(None);
        }
        let password = random_secret(15);
        let hash = crate::hashing::hash(SecretString::from(password.clone())).await?;
        let path = data_dir.join(ADMIN_PASSWORD_FILE);
        // The file first: an account whose password nobody can read is worse than a file
        // for an account that a failed insert will create at next start.
        iea_runtime::pki::write_file(&path, format!("{password}\n").as_bytes(), true)?;
        self.store
            .insert_first_user(BOOTSTRAP_ADMIN, Role::Administrator, &hash, now())
            .await?;
        tracing::info!(user = BOOTSTRAP_ADMIN, path = %path.display(), "bootstrap administrator created");
        Ok(Some(path))
    }

    pub async fn login(
        &self,
        name: &str,
        password: SecretString,
    ) -> Result<OpenedSession, SessionError> {
        let user = self.store.user_by_name(name).await?;
        let Some(user) = user else {
            // Same cost as a real check, so timing does not tell which names exist.
            crate::hashing::verify_nobody(password).await?;
            return Err(SessionError::InvalidCredentials);
        };
        let now = now();
        if let Some(until) = user.locked_until.filter(|u| *u > now) {
            return Err(SessionError::Locked { until });
        }
        if !crate::hashing::verify(password, user.password_hash.clone()).await? {
            let failures = if user.locked_until.is_some() {
                1
            } else {
                user.failed_logins + 1
            };
            let lock = (failures >= MAX_FAILED_LOGINS).then_some(now + LOCK_SECONDS);
            self.store
                .record_failed_login(user.id, user.locked_until.is_some(), lock)
                .await?;
            tracing::warn!(user = %user.name, failures, "failed login");
            return Err(match lock {
                Some(until) => SessionError::Locked { until },
                None => SessionError::InvalidCredentials,
            });
        }
        let token = random_secret(32);
        let expires_at = now + self.ttl.as_secs() as i64;
        let hash = token_hash(&token);
        self.store
            .open_session(user.id, hash, now, expires_at)
            .await?;
        tracing::info!(user = %user.name, "session opened");
        Ok(OpenedSession {
            token: SecretString::from(token),
            expires_at,
            principal: Principal {
                user_id: user.id,
                name: user.name,
                role: user.role,
            },
        })
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, SessionError> {
        let hash = token_hash(token);
        let user = self.store.session_user(hash, now()).await?;
        user.map(|u| Principal {
            user_id: u.id,
            name: u.name,
            role: u.role,
        })
        .ok_or(SessionError::NoSession)
    }

    pub async fn logout(&self, token: &str) -> Result<(), SessionError> {
        let hash = token_hash(token);
        self.store.delete_session(hash).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    async fn sessions() -> (crate::store::testing::TestDb, Sessions, String) {
        let db = crate::store::testing::store().await;
        let s = Sessions::new(db.store.clone(), Duration::from_secs(3600));
        let path = s.bootstrap(db.dir.path()).await.unwrap().unwrap();
        let pw = std::fs::read_to_string(path).unwrap().trim().to_owned();
        (db, s, pw)
    }

    #[tokio::test]
    async fn the_bootstrap_administrator_logs_in_with_the_written_password_once_created() {
        let (db, s, pw) = sessions().await;
        assert!(
            s.bootstrap(db.dir.path()).await.unwrap().is_none(),
            "second bootstrap must do nothing"
        );
        let opened = s
            .login(BOOTSTRAP_ADMIN, SecretString::from(pw))
            .await
            .unwrap();
        let who = s.authenticate(opened.token.expose_secret()).await.unwrap();
        assert_eq!(who.name, BOOTSTRAP_ADMIN);
        assert_eq!(who.role, Role::Administrator);
        s.logout(opened.token.expose_secret()).await.unwrap();
        assert!(matches!(
            s.authenticate(opened.token.expose_secret()).await,
            Err(SessionError::NoSession)
        ));
    }

    #[tokio::test]
    async fn five_wrong_passwords_lock_the_account_even_for_the_right_one() {
        let (_dir, s, pw) = sessions().await;
        for _ in 0..4 {
            assert!(matches!(
                s.login(BOOTSTRAP_ADMIN, SecretString::from("faux")).await,
                Err(SessionError::InvalidCredentials)
            ));
        }
        assert!(matches!(
            s.login(BOOTSTRAP_ADMIN, SecretString::from("faux")).await,
            Err(SessionError::Locked { .. })
        ));
        assert!(matches!(
            s.login(BOOTSTRAP_ADMIN, SecretString::from(pw)).await,
            Err(SessionError::Locked { .. })
        ));
    }

    #[tokio::test]
    async fn an_unknown_user_gets_the_same_refusal_as_a_wrong_password() {
        let (_dir, s, _pw) = sessions().await;
        assert!(matches!(
            s.login("Personne", SecretString::from("x")).await,
            Err(SessionError::InvalidCredentials)
        ));
    }
}
