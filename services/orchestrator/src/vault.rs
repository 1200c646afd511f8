//! Secrets the orchestrator must read back, sealed with the [`Keyring`] and stored in the
//! database: each account's Net-entreprises password (table `credentials`) and the
//! installation's own secrets (table `secrets`: licence key, daily-password key).
//!
//! Rotation re-seals both tables in one transaction (see `crypto.rs` for the key files).

use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{Keyring, Sealed};
use crate::store::{AllSealed, Store};

#[derive(Clone)]
pub struct Vault {
    store: Store,
    keyring: Arc<RwLock<Keyring>>,
}

fn secret_aad(name: &str) -> Vec<u8> {
    format!("secret:{name}").into_bytes()
}

/// Associated data of an account's Net-entreprises password.
pub fn credential_aad(user_id: i64) -> Vec<u8> {
    format!("ne-password:{user_id}").into_bytes()
}

impl Vault {
    /// Finishes an interrupted key rotation if there is one.
    pub async fn new(store: Store, keyring: Keyring) -> anyhow::Result<Self> {
        let pending = keyring.pending_rotation();
        let this = Self {
            store,
            keyring: Arc::new(RwLock::new(keyring)),
        };
        if pending {
            tracing::warn!("an interrupted key rotation is being finished");
            this.reseal_all().await?;
        }
        Ok(this)
    }

    pub fn seal(&self, plaintext: &str, aad: &[u8]) -> anyhow::Result<Sealed> {
        let ring = self
            .keyring
            .read()
            .map_err(|_| anyhow::anyhow!("keyring lock"))?;
        ring.seal(plaintext.as_bytes(), aad)
    }

    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> anyhow::Result<SecretString> {
        let ring = self
            .keyring
            .read()
            .map_err(|_| anyhow::anyhow!("keyring lock"))?;
        ring.open(sealed, aad)
    }

    /// The secret `name`, if stored.
    pub async fn get(&self, name: &'static str) -> anyhow::Result<Option<SecretString>> {
        let found = self.sealed(name).await?;
        found.map(|s| self.open(&s, &secret_aad(name))).transpose()
    }

    async fn sealed(&self, name: &'static str) -> anyhow::Result<Option<Sealed>> {
        self.store.sealed_secret(name).await
    }

    /// Seals `value` as secret `name`, for a store call that saves it with other values.
    pub fn seal_secret(&self, name: &str, value: &SecretString) -> anyhow::Result<Sealed> {
        self.seal(value.expose_secret(), &secret_aad(name))
    }

    /// The secret `name`, created with `make` the first time it is asked for.
    pub async fn get_or_create(
        &self,
        name: &'static str,
        make: impl FnOnce() -> String,
    ) -> anyhow::Result<SecretString> {
        let found = self.sealed(name).await?;
        if let Some(sealed) = found {
            return self.open(&sealed, &secret_aad(name));
        }
        let value = SecretString::from(make());
        let sealed = self.seal(value.expose_secret(), &secret_aad(name))?;
        // Another orchestrator on the same database may have created it meanwhile: the
        // stored one wins.
        let stored = self.store.insert_secret(name, sealed).await?;
        self.open(&stored, &secret_aad(name))
    }

    /// A new key; every stored secret is re-sealed with it. Returns how many.
    pub async fn rotate(&self) -> anyhow::Result<usize> {
        self.keyring
            .write()
            .map_err(|_| anyhow::anyhow!("keyring lock"))?
            .begin_rotation()?;
        self.reseal_all().await
    }

    async fn reseal_all(&self) -> anyhow::Result<usize> {
        let all = self.store.all_sealed().await?;
        let mut resealed = AllSealed {
            credentials: Vec::with_capacity(all.credentials.len()),
            secrets: Vec::with_capacity(all.secrets.len()),
        };
        for (id, s) in &all.credentials {
            let aad = credential_aad(*id);
            let value = self.open(s, &aad)?;
            resealed
                .credentials
                .push((*id, self.seal(value.expose_secret(), &aad)?));
        }
        for (name, s) in &all.secrets {
            let aad = secret_aad(name);
            let value = self.open(s, &aad)?;
            resealed
                .secrets
                .push((name.clone(), self.seal(value.expose_secret(), &aad)?));
        }
        let n = resealed.credentials.len() + resealed.secrets.len();
        self.store.reseal(resealed).await?;
        self.keyring
            .write()
            .map_err(|_| anyhow::anyhow!("keyring lock"))?
            .commit_rotation()?;
        tracing::info!(resealed = n, "stored secrets re-sealed");
        Ok(n)
    }
}
