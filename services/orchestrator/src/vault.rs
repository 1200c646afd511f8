//! Secrets the orchestrator must read back, sealed with the [`Keyring`] and stored in the
//! database: each account's Net-entreprises password (table `credentials`) and the
//! installation's own secrets (table `secrets`: licence key, daily-password key).
//!
//! Rotation re-seals both tables in one transaction (see `crypto.rs` for the key files).

use std::sync::{Arc, RwLock};

use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{Keyring, Sealed};
use crate::store::Store;

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
        self.store
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT key_id, nonce, ciphertext FROM secrets WHERE name = ?1",
                        params![name],
                        |r| {
                            Ok(Sealed {
                                key_id: r.get(0)?,
                                nonce: r.get(1)?,
                                ciphertext: r.get(2)?,
                            })
                        },
                    )
                    .optional()?)
            })
            .await
    }

    /// Seals `value` as secret `name`, for [`put_sealed`] inside a caller's transaction.
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
        self.store
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO secrets (name, key_id, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)",
                    params![name, sealed.key_id, sealed.nonce, sealed.ciphertext],
                )?;
                Ok(())
            })
            .await?;
        Ok(value)
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
        type Rows = Vec<(String, i64, Sealed)>;
        let (creds, secrets): (Rows, Rows) = self
            .store
            .call(|conn| {
                let sealed = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<Sealed> {
                    Ok(Sealed {
                        key_id: r.get(i)?,
                        nonce: r.get(i + 1)?,
                        ciphertext: r.get(i + 2)?,
                    })
                };
                let mut stmt = conn.prepare(
                    "SELECT user_id, password_key_id, password_nonce, password_ct FROM credentials",
                )?;
                let creds = stmt
                    .query_map([], |r| Ok((String::new(), r.get(0)?, sealed(r, 1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut stmt =
                    conn.prepare("SELECT name, key_id, nonce, ciphertext FROM secrets")?;
                let secrets = stmt
                    .query_map([], |r| Ok((r.get(0)?, 0, sealed(r, 1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((creds, secrets))
            })
            .await?;
        let mut new_creds = Vec::new();
        for (_, id, s) in &creds {
            let aad = credential_aad(*id);
            new_creds.push((*id, self.seal(self.open(s, &aad)?.expose_secret(), &aad)?));
        }
        let mut new_secrets = Vec::new();
        for (name, _, s) in &secrets {
            let aad = secret_aad(name);
            new_secrets.push((
                name.clone(),
                self.seal(self.open(s, &aad)?.expose_secret(), &aad)?,
            ));
        }
        let n = new_creds.len() + new_secrets.len();
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                for (id, s) in &new_creds {
                    tx.execute(
                        "UPDATE credentials SET password_key_id = ?2, password_nonce = ?3, password_ct = ?4 WHERE user_id = ?1",
                        params![id, s.key_id, s.nonce, s.ciphertext],
                    )?;
                }
                for (name, s) in &new_secrets {
                    tx.execute(
                        "UPDATE secrets SET key_id = ?2, nonce = ?3, ciphertext = ?4 WHERE name = ?1",
                        params![name, s.key_id, s.nonce, s.ciphertext],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.keyring
            .write()
            .map_err(|_| anyhow::anyhow!("keyring lock"))?
            .commit_rotation()?;
        tracing::info!(resealed = n, "stored secrets re-sealed");
        Ok(n)
    }
}

/// Stores (or, with `None`, removes) a sealed secret inside the caller's transaction.
pub fn put_sealed(
    conn: &rusqlite::Connection,
    name: &str,
    sealed: Option<&Sealed>,
) -> rusqlite::Result<()> {
    match sealed {
        Some(s) => conn.execute(
            "INSERT INTO secrets (name, key_id, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
            params![name, s.key_id, s.nonce, s.ciphertext],
        )?,
        None => conn.execute("DELETE FROM secrets WHERE name = ?1", params![name])?,
    };
    Ok(())
}
