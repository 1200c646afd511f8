//! Each account's Net-entreprises identity: stored with its password sealed
//! ([`crate::crypto`]), never shown back, verified through the credential verifier.
//!
//! Rules (the first sheet of the seeds, and Net-entreprises' lockout):
//! - changing an account's identity needs that account's Impact emploi password; a user
//!   sees and changes only their own, an administrator may see all and copy one account's
//!   identity to others in one step;
//! - what a person typed is checked before it is stored (spaces, invisible characters,
//!   SIRET key, lengths), each problem named;
//! - a verification is one attempt, never retried; after `budget` consecutive refusals
//!   (wrong password, expired, not registered, locked) no further attempt is made until
//!   the identity changes, so we can never be what locks the declarant's real account;
//! - one verification per account at a time.
//!
//! Layout: this file holds the records and their permissions; `claims.rs` the claim on
//! an account, its budget and the recording of results; `verify_all.rs` the "verify
//! all" pipeline; `result.rs` what a verification gives.

mod claims;
mod result;
mod verify_all;

pub use result::{FailedStep, IdentityProblem, Outcome, VerificationResult};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use iea_declarant::{InputProblem, TypedIdentity};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use crate::agents::{AgentError, Agents};
use crate::crypto::Sealed;
use crate::network::Network;
use crate::sessions::Principal;
use crate::store::{CredentialRow, NewIdentity, Store};
use crate::users::Role;
use crate::vault::{Vault, credential_aad as aad};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("not allowed")]
    PermissionDenied,
    #[error("no such account")]
    NoSuchAccount(String),
    #[error("no credentials")]
    NotConfigured(String),
    #[error("account password wrong")]
    WrongAccountPassword,
    #[error("invalid identity")]
    InvalidInput(Vec<InputProblem>),
    #[error("blocked by budget")]
    BlockedByBudget { user: String, failures: u32 },
    #[error("verification in progress")]
    InProgress(String),
    #[error("agent unavailable")]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What may be shown of an account's identity: never the password.
#[derive(Debug, Clone)]
pub struct Summary {
    pub user: String,
    pub configured: bool,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub updated_at: Option<i64>,
    pub consecutive_failures: u32,
    pub last: Option<Verification>,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub user: String,
    pub result: VerificationResult,
    pub verified_at: i64,
}

fn summary(user: String, row: Option<CredentialRow>) -> Summary {
    match row {
        None => Summary {
            user,
            configured: false,
            siret: String::new(),
            nom: String::new(),
            prenom: String::new(),
            updated_at: None,
            consecutive_failures: 0,
            last: None,
        },
        Some(r) => Summary {
            last: r.last.map(|(result, verified_at)| Verification {
                user: r.user.clone(),
                result,
                verified_at,
            }),
            user: r.user,
            configured: true,
            siret: r.siret,
            nom: r.nom,
            prenom: r.prenom,
            updated_at: Some(r.updated_at / 1_000_000_000),
            consecutive_failures: r.consecutive_failures,
        },
    }
}

#[derive(Clone)]
pub struct Credentials {
    store: Store,
    vault: Vault,
    agents: Agents,
    network: Arc<Network>,
    budget: u32,
    in_progress: Arc<Mutex<HashSet<i64>>>,
}

impl Credentials {
    pub fn new(
        store: Store,
        vault: Vault,
        agents: Agents,
        network: Arc<Network>,
        budget: u32,
    ) -> Self {
        Self {
            store,
            vault,
            agents,
            network,
            budget,
            in_progress: Arc::default(),
        }
    }

    /// The account `name`, if the caller may act on it.
    async fn target(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<(i64, String), CredentialsError> {
        let own = caller.name.eq_ignore_ascii_case(name);
        if !own && caller.role != Role::Administrator {
            return Err(CredentialsError::PermissionDenied);
        }
        let user = self.store.user_by_name(name).await?;
        let user = user.ok_or_else(|| CredentialsError::NoSuchAccount(name.to_owned()))?;
        Ok((user.id, user.name))
    }

    fn seal(&self, user_id: i64, password: &SecretString) -> Result<Sealed, CredentialsError> {
        Ok(self.vault.seal(password.expose_secret(), &aad(user_id))?)
    }

    fn open(&self, user_id: i64, sealed: &Sealed) -> Result<SecretString, CredentialsError> {
        Ok(self.vault.open(sealed, &aad(user_id))?)
    }

    /// Sets `user`'s identity, confirmed by that account's Impact emploi password.
    pub async fn set(
        &self,
        caller: &Principal,
        user: &str,
        account_password: SecretString,
        typed: TypedIdentity,
    ) -> Result<Summary, CredentialsError> {
        let (user_id, name) = self.target(caller, user).await?;
        let identity = typed.validate().map_err(CredentialsError::InvalidInput)?;
        let hash = self
            .store
            .password_hash(user_id)
            .await?
            .ok_or_else(|| CredentialsError::NoSuchAccount(name.clone()))?;
        let ok = crate::hashing::verify(account_password, hash).await?;
        if !ok {
            tracing::warn!(user = %name, "identity change refused: the account's confirmation did not match");
            return Err(CredentialsError::WrongAccountPassword);
        }
        let sealed = self.seal(user_id, &identity.password)?;
        let new = NewIdentity {
            user_id,
            siret: identity.siret.clone(),
            nom: identity.nom.clone(),
            prenom: identity.prenom.clone(),
            sealed,
        };
        self.store.set_credentials(vec![new], now_nanos()).await?;
        tracing::info!(user = %name, "net-entreprises identity set");
        self.get(caller, &name).await
    }

    pub async fn get(&self, caller: &Principal, user: &str) -> Result<Summary, CredentialsError> {
        let (user_id, name) = self.target(caller, user).await?;
        let r = self.store.credential(user_id).await?;
        Ok(summary(name, r))
    }

    /// Every account for an administrator, one's own for a user.
    pub async fn list(&self, caller: &Principal) -> Result<Vec<Summary>, CredentialsError> {
        let all = self.store.users_with_credentials().await?;
        Ok(all
            .into_iter()
            .filter(|(u, _)| caller.role == Role::Administrator || u.id == caller.user_id)
            .map(|(u, r)| summary(u.name, r))
            .collect())
    }

    /// Copies `from`'s identity to each of `to`, in one transaction. Administrator only.
    pub async fn copy(
        &self,
        caller: &Principal,
        from: &str,
        to: &[String],
    ) -> Result<Vec<Summary>, CredentialsError> {
        if caller.role != Role::Administrator {
            return Err(CredentialsError::PermissionDenied);
        }
        let (from_id, from_name) = self.target(caller, from).await?;
        let source = self
            .store
            .credential(from_id)
            .await?
            .ok_or(CredentialsError::NotConfigured(from_name))?;
        let password = self.open(from_id, &source.sealed)?;
        let mut targets = Vec::new();
        for name in to {
            let (id, name) = self.target(caller, name).await?;
            if id != from_id {
                targets.push((id, name, self.seal(id, &password)?));
            }
        }
        let names: Vec<String> = targets.iter().map(|t| t.1.clone()).collect();
        let identities = targets
            .into_iter()
            .map(|(user_id, _, sealed)| NewIdentity {
                user_id,
                siret: source.siret.clone(),
                nom: source.nom.clone(),
                prenom: source.prenom.clone(),
                sealed,
            })
            .collect();
        self.store.set_credentials(identities, now_nanos()).await?;
        tracing::info!(from = %source.user, to = ?names, "net-entreprises identity copied");
        let mut out = Vec::new();
        for n in names {
            out.push(self.get(caller, &n).await?);
        }
        Ok(out)
    }

    /// One verification of `user`'s identity against Net-entreprises.
    pub async fn verify(
        &self,
        caller: &Principal,
        user: &str,
    ) -> Result<Verification, CredentialsError> {
        let (user_id, name) = self.target(caller, user).await?;
        // In a task of its own: a caller that goes away must not drop an attempt that may
        // have reached Net-entreprises before its answer is recorded.
        let this = self.clone();
        tokio::spawn(
            async move {
                let claimed = this
                    .claim(vec![(user_id, name)])
                    .await
                    .pop()
                    .ok_or_else(|| anyhow::anyhow!("no claim"))?
                    .map_err(|(_, e)| e)?;
                let answer = this.ask_verifier(&claimed).await?;
                let (_, recorded) = this
                    .record(vec![(claimed, answer)])
                    .await
                    .pop()
                    .ok_or_else(|| anyhow::anyhow!("nothing recorded"))?;
                recorded
            }
            .instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| CredentialsError::Internal(anyhow::anyhow!("verification task: {e}")))?
    }

    /// Replaces the encryption key and re-seals every stored secret. Administrator only.
    pub async fn rotate_key(&self, caller: &Principal) -> Result<usize, CredentialsError> {
        if caller.role != Role::Administrator {
            return Err(CredentialsError::PermissionDenied);
        }
        Ok(self.vault.rotate().await?)
    }
}

/// `updated_at` in nanoseconds: two changes within one second must differ, since a
/// verification's result is recorded only if `updated_at` did not move.
fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}
