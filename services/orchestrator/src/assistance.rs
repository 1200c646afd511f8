//! Assistance mode (the red beetle): support works on the installation; no request goes
//! to the production authentication server and maintenance scripts wait as pending.
//!
//! Activation works offline and needs no password. Deactivation needs the *mot de passe
//! du jour* ([`iea_daily_password`]): valid for this installation and this Europe/Paris
//! day, derived from an installation secret that no API returns. Five wrong tries lock
//! deactivation for 15 minutes, the right password included; the count survives a
//! restart.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::authenticator::Authenticator;
use crate::sessions::now;
use crate::status::{Indicator, Snapshot, StatusHub};
use crate::store::Store;

/// The seeds' warning, shown at activation.
pub const WARNING: &str =
    "En mode assistance, les fichiers de scripts ne seront pas pris en compte automatiquement !";
pub const MAX_WRONG_TRIES: u32 = 5;
pub const LOCK_SECS: i64 = 15 * 60;

/// Wrong daily passwords in a row, and the lock they led to; persisted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct LockState {
    wrong_tries: u32,
    locked_until: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AssistanceError {
    #[error("assistance mode is not active")]
    NotActive,
    #[error("deactivation locked")]
    Locked { until: i64 },
    #[error("wrong daily password")]
    WrongPassword { remaining: u32 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct Assistance {
    store: Store,
    hub: Arc<StatusHub>,
    authenticator: Authenticator,
    installation_id: String,
    daily_secret: Arc<SecretString>,
}

impl Assistance {
    pub fn new(
        store: Store,
        hub: Arc<StatusHub>,
        authenticator: Authenticator,
        installation_id: String,
        daily_secret: SecretString,
    ) -> Self {
        Self {
            store,
            hub,
            authenticator,
            installation_id,
            daily_secret: Arc::new(daily_secret),
        }
    }

    pub async fn activate(&self) -> anyhow::Result<Snapshot> {
        let snap = self
            .hub
            .set(Snapshot::new(
                Indicator::Assistance,
                "assistance",
                "Mode assistance activé : aucune connexion au serveur de production, les scripts de maintenance sont mis en attente.",
            ))
            .await?;
        tracing::info!("assistance mode activated");
        Ok(snap)
    }

    /// Ends assistance mode with today's daily password, then re-authenticates at once.
    pub async fn deactivate(&self, typed: &str) -> Result<Snapshot, AssistanceError> {
        if self.hub.current().indicator != Indicator::Assistance {
            return Err(AssistanceError::NotActive);
        }
        let now = now();
        let mut lock: LockState = self.store.load().await?.unwrap_or_default();
        if let Some(until) = lock.locked_until {
            if until > now {
                return Err(AssistanceError::Locked { until });
            }
            lock = LockState::default();
        }
        let today = iea_daily_password::paris_today();
        let ok = iea_daily_password::verify_daily_password(
            self.daily_secret.expose_secret().as_bytes(),
            &self.installation_id,
            &today,
            typed,
        );
        let result = if ok {
            lock = LockState::default();
            Ok(())
        } else {
            lock.wrong_tries += 1;
            tracing::warn!(wrong_tries = lock.wrong_tries, "wrong daily password");
            if lock.wrong_tries >= MAX_WRONG_TRIES {
                let until = now + LOCK_SECS;
                lock.locked_until = Some(until);
                Err(AssistanceError::Locked { until })
            } else {
                Err(AssistanceError::WrongPassword {
                    remaining: MAX_WRONG_TRIES - lock.wrong_tries,
                })
            }
        };
        self.store.save(lock).await?;
        result?;
        let snap = self
            .hub
            .set(Snapshot::new(
                Indicator::Disconnected,
                "assistance_ended",
                "Mode assistance désactivé : authentification auprès du serveur Impact emploi en cours.",
            ))
            .await?;
        tracing::info!("assistance mode deactivated");
        self.authenticator.wake();
        Ok(snap)
    }
}
