//! Secrets the orchestrator must read back, sealed with the [`Keyring`] and stored in the
//! database: each account's Net-entreprises password (table `credentials`) and the
//! installation's own secrets (table `secrets`: licence key, daily-password key).
//!
//! Rotation re-seals both tables in one transaction, each value written only over the one
//! it was read as, so a value set meanwhile is kept (see [`Vault::reseal_from`], and
//! `crypto.rs` for the key files).

use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{Keyring, Sealed};
use crate::store::{AllSealed, Store};

/// How many times a key rotation reads and re-seals the values still sealed with the old
/// key before it gives up (see [`Vault::reseal_from`]): the first pass re-seals everything;
/// another is needed only for a value sealed with the old key and stored meanwhile.
const RESEAL_PASSES: usize = 3;

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

    /// Re-seals every value not yet sealed with the new key, then ends the rotation.
    async fn reseal_all(&self) -> anyhow::Result<usize> {
        let first = self.store.all_sealed().await?;
        self.reseal_from(first, RESEAL_PASSES).await
    }

    /// Re-seals the values read in `first` (and, in later passes, those read again), then
    /// ends the rotation. Returns how many values were written re-sealed.
    ///
    /// Reading and writing are two store calls, and [`Store::reseal`] writes a value only
    /// over the one it read: a value set in between is kept. One set with the new key
    /// (every [`Vault::seal`] after `begin_rotation`) needs nothing more. One set with the
    /// old key (sealed before `begin_rotation` and written late, or by another
    /// orchestrator still using the old key) would become unreadable once the old key
    /// goes: while the store reports such values, they are read and re-sealed again, for at
    /// most `passes` passes in all. If some remain after that, the rotation is not ended:
    /// an error says so and both keys stay loaded (every value still opens); the next
    /// start finishes it ([`Vault::new`]).
    async fn reseal_from(&self, first: AllSealed, passes: usize) -> anyhow::Result<usize> {
        let key_id = self.current_key_id()?;
        let (mut written, mut changed_meanwhile) = (0, 0);
        let mut first = Some(first);
        for pass in 1..=passes {
            let read = match first.take() {
                Some(read) => read,
                None => self.store.all_sealed().await?,
            };
            let resealed = self.resealed(read, &key_id)?;
            let done = self.store.reseal(key_id.clone(), resealed).await?;
            written += done.written;
            changed_meanwhile += done.changed_meanwhile;
            if done.not_current == 0 {
                self.keyring
                    .write()
                    .map_err(|_| anyhow::anyhow!("keyring lock"))?
                    .commit_rotation()?;
                tracing::info!(
                    resealed = written,
                    changed_meanwhile,
                    passes = pass,
                    "stored secrets re-sealed"
                );
                return Ok(written);
            }
            tracing::warn!(
                old_key = done.not_current,
                pass,
                "values sealed with the old key were stored during the key rotation; re-sealing them"
            );
        }
        anyhow::bail!(
            "key rotation not finished: values sealed with the old key were still being \
             stored after {passes} passes (another orchestrator on this database not using the \
             new key yet?); both keys stay in use and the rotation is finished at the next start"
        )
    }

    fn current_key_id(&self) -> anyhow::Result<String> {
        let ring = self
            .keyring
            .read()
            .map_err(|_| anyhow::anyhow!("keyring lock"))?;
        Ok(ring.current_id().to_owned())
    }

    /// Each value of `all` not yet sealed with the key `key_id`, with its re-sealed
    /// version.
    fn resealed(
        &self,
        all: AllSealed,
        key_id: &str,
    ) -> anyhow::Result<AllSealed<(Sealed, Sealed)>> {
        let mut resealed = AllSealed {
            credentials: Vec::with_capacity(all.credentials.len()),
            secrets: Vec::with_capacity(all.secrets.len()),
        };
        for (id, s) in all.credentials {
            if s.key_id != key_id {
                let aad = credential_aad(id);
                let value = self.open(&s, &aad)?;
                let new = self.seal(value.expose_secret(), &aad)?;
                resealed.credentials.push((id, (s, new)));
            }
        }
        for (name, s) in all.secrets {
            if s.key_id != key_id {
                let aad = secret_aad(&name);
                let value = self.open(&s, &aad)?;
                let new = self.seal(value.expose_secret(), &aad)?;
                resealed.secrets.push((name, (s, new)));
            }
        }
        Ok(resealed)
    }
}

#[cfg(test)]
mod tests {
    //! On the engine of the test run (SQLite, or PostgreSQL with `IEA_TEST_DATABASE_URL`),
    //! with a real key file. "Meanwhile" is between the rotation's read of every value and
    //! its write: the test reads, changes the database, then lets the rotation go on.

    use super::*;
    use crate::crypto::KEY_FILE;
    use crate::store::NewIdentity;
    use crate::store::testing::{TestDb, add_users, reseau_with_administrator, store};

    struct World {
        db: TestDb,
        keys: tempfile::TempDir,
        vault: Vault,
        admin: i64,
        alice: i64,
        bob: i64,
    }

    impl World {
        fn store(&self) -> &Store {
            &self.db.store
        }

        fn key_file(&self) -> std::path::PathBuf {
            self.keys.path().join(KEY_FILE)
        }

        async fn set_password(&self, user_id: i64, sealed: Sealed) {
            self.store()
                .set_credentials(
                    vec![NewIdentity {
                        user_id,
                        siret: "78214563500010".into(),
                        nom: "DUPONT".into(),
                        prenom: "Marie".into(),
                        sealed,
                    }],
                    2,
                )
                .await
                .unwrap();
        }

        fn begin_rotation(&self) {
            self.vault
                .keyring
                .write()
                .unwrap()
                .begin_rotation()
                .unwrap();
        }

        /// A vault that has only the key now in the key file, as after a restart.
        async fn restarted(&self) -> Vault {
            let ring = Keyring::load_or_create(&self.key_file()).unwrap();
            assert!(!ring.pending_rotation());
            Vault::new(self.store().clone(), ring).await.unwrap()
        }
    }

    /// Alice's and Bob's Net-entreprises passwords and the licence key, sealed.
    async fn world() -> World {
        let db = store().await;
        let keys = tempfile::tempdir().unwrap();
        let s = db.store.clone();
        let ring = Keyring::load_or_create(&keys.path().join(KEY_FILE)).unwrap();
        let vault = Vault::new(s.clone(), ring).await.unwrap();
        let admin = reseau_with_administrator(&s).await;
        let ids = add_users(&s, &["Alice", "Bob"]).await;
        let w = World {
            db,
            keys,
            vault,
            admin,
            alice: ids[0],
            bob: ids[1],
        };
        for (id, password) in [(w.alice, "Ancien-Alice1"), (w.bob, "Ancien-Bob1")] {
            let sealed = w.vault.seal(password, &credential_aad(id)).unwrap();
            w.set_password(id, sealed).await;
        }
        w.vault
            .get_or_create("licence", || "LICENCE-1".into())
            .await
            .unwrap();
        w
    }

    async fn password(vault: &Vault, user_id: i64) -> Option<String> {
        let row = vault.store.credential(user_id).await.unwrap()?;
        let open = vault.open(&row.sealed, &credential_aad(user_id)).unwrap();
        Some(open.expose_secret().to_owned())
    }

    async fn key_ids(s: &Store) -> Vec<String> {
        let all = s.all_sealed().await.unwrap();
        all.credentials
            .into_iter()
            .map(|(_, s)| s.key_id)
            .chain(all.secrets.into_iter().map(|(_, s)| s.key_id))
            .collect()
    }

    #[tokio::test]
    async fn an_ordinary_rotation_reseals_every_value_and_the_old_key_goes() {
        let w = world().await;
        let old_key = std::fs::read(w.key_file()).unwrap();
        assert_eq!(w.vault.rotate().await.unwrap(), 3);
        assert_ne!(std::fs::read(w.key_file()).unwrap(), old_key);
        let new_id = w.vault.current_key_id().unwrap();
        assert_eq!(key_ids(w.store()).await, vec![new_id; 3]);
        let after = w.restarted().await;
        assert_eq!(
            password(&after, w.alice).await.as_deref(),
            Some("Ancien-Alice1")
        );
        assert_eq!(
            password(&after, w.bob).await.as_deref(),
            Some("Ancien-Bob1")
        );
        assert_eq!(
            after.get("licence").await.unwrap().unwrap().expose_secret(),
            "LICENCE-1"
        );
    }

    #[tokio::test]
    async fn a_password_changed_during_a_rotation_keeps_its_new_value() {
        let w = world().await;
        w.begin_rotation();
        let read = w.store().all_sealed().await.unwrap();
        // Set through this vault after the rotation began: sealed with the new key.
        let new = w
            .vault
            .seal("Nouveau-Alice2", &credential_aad(w.alice))
            .unwrap();
        w.set_password(w.alice, new).await;

        // Bob's password and the licence key: Alice's was changed meanwhile.
        assert_eq!(w.vault.reseal_from(read, RESEAL_PASSES).await.unwrap(), 2);
        let after = w.restarted().await;
        assert_eq!(
            password(&after, w.alice).await.as_deref(),
            Some("Nouveau-Alice2"),
            "the password set during the rotation was lost"
        );
        assert_eq!(
            password(&after, w.bob).await.as_deref(),
            Some("Ancien-Bob1")
        );
    }

    #[tokio::test]
    async fn a_password_stored_meanwhile_with_the_old_key_is_resealed_before_the_old_key_goes() {
        let w = world().await;
        // Sealed before the rotation began (or by another orchestrator still using the old
        // key), stored once the rotation has read every value.
        let late = w
            .vault
            .seal("Nouveau-Alice2", &credential_aad(w.alice))
            .unwrap();
        w.begin_rotation();
        let read = w.store().all_sealed().await.unwrap();
        w.set_password(w.alice, late).await;

        // Bob's and the licence key in the first pass, Alice's new one in the second.
        assert_eq!(w.vault.reseal_from(read, RESEAL_PASSES).await.unwrap(), 3);
        let new_id = w.vault.current_key_id().unwrap();
        assert_eq!(key_ids(w.store()).await, vec![new_id; 3]);
        let after = w.restarted().await;
        assert_eq!(
            password(&after, w.alice).await.as_deref(),
            Some("Nouveau-Alice2")
        );
    }

    #[tokio::test]
    async fn a_credential_and_a_secret_removed_during_a_rotation_stay_removed() {
        let w = world().await;
        let proxy = crate::connection::PROXY_PASSWORD;
        let settings = crate::network::NetworkDefaults::default().official();
        let sealed = w
            .vault
            .seal_secret(proxy, &SecretString::from("proxy-secret"))
            .unwrap();
        w.store()
            .save_connection(settings.clone(), Some(sealed))
            .await
            .unwrap();
        w.begin_rotation();
        let read = w.store().all_sealed().await.unwrap();
        assert!(matches!(
            w.store().remove_user("Bob", w.admin).await.unwrap(),
            crate::store::Removed::Removed(_)
        ));
        w.store().save_connection(settings, None).await.unwrap();

        // Alice's password and the licence key.
        assert_eq!(w.vault.reseal_from(read, RESEAL_PASSES).await.unwrap(), 2);
        let after = w.restarted().await;
        assert_eq!(password(&after, w.bob).await, None);
        assert!(
            after.get(proxy).await.unwrap().is_none(),
            "the proxy password removed during the rotation came back"
        );
        assert_eq!(
            password(&after, w.alice).await.as_deref(),
            Some("Ancien-Alice1")
        );
    }

    #[tokio::test]
    async fn a_rotation_still_finding_old_key_values_is_not_ended_and_the_old_key_still_opens() {
        let w = world().await;
        let old_key = std::fs::read(w.key_file()).unwrap();
        let late = w
            .vault
            .seal("Nouveau-Alice2", &credential_aad(w.alice))
            .unwrap();
        w.begin_rotation();
        let read = w.store().all_sealed().await.unwrap();
        w.set_password(w.alice, late).await;

        // One pass only: Alice's value, sealed with the old key, is still there after it.
        let err = w.vault.reseal_from(read, 1).await.unwrap_err().to_string();
        assert!(err.contains("key rotation not finished"), "{err}");
        assert!(w.vault.keyring.read().unwrap().pending_rotation());
        assert_eq!(std::fs::read(w.key_file()).unwrap(), old_key);
        assert_eq!(
            password(&w.vault, w.alice).await.as_deref(),
            Some("Nouveau-Alice2")
        );
        assert_eq!(
            password(&w.vault, w.bob).await.as_deref(),
            Some("Ancien-Bob1")
        );

        // The next start finishes it.
        let ring = Keyring::load_or_create(&w.key_file()).unwrap();
        assert!(ring.pending_rotation());
        Vault::new(w.store().clone(), ring).await.unwrap();
        let after = w.restarted().await;
        assert_eq!(
            password(&after, w.alice).await.as_deref(),
            Some("Nouveau-Alice2")
        );
        assert_eq!(
            password(&after, w.bob).await.as_deref(),
            Some("Ancien-Bob1")
        );
    }
}
