//! Sealed secrets: the installation's own (licence key, daily password key, proxy
//! password) and, with [`super::credentials`], each account's Net-entreprises password.
//! Only sealed values reach this module; the key stays outside the database.

use super::engine::{Db, Row};
use super::{Store, records};
use crate::connection::ConnectionSettings;
use crate::crypto::Sealed;

pub(super) fn sealed_of(r: &Row<'_>, first: usize) -> anyhow::Result<Sealed> {
    Ok(Sealed {
        key_id: r.get(first)?,
        nonce: r.get(first + 1)?,
        ciphertext: r.get(first + 2)?,
    })
}

fn put_sealed(db: &mut Db<'_>, name: &str, sealed: Option<&Sealed>) -> anyhow::Result<()> {
    match sealed {
        Some(s) => db.execute(
            "INSERT INTO secrets (name, key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext",
            &[&name, &s.key_id, &s.nonce, &s.ciphertext],
        )?,
        None => db.execute("DELETE FROM secrets WHERE name = $1", &[&name])?,
    };
    Ok(())
}

/// Every sealed value of the database, for a key rotation: as read (`V` = [`Sealed`]),
/// or as [`Store::reseal`] takes them (`V` = `(as read, re-sealed)`).
pub struct AllSealed<V = Sealed> {
    /// (account id, its Net-entreprises password).
    pub credentials: Vec<(i64, V)>,
    /// (secret name, value).
    pub secrets: Vec<(String, V)>,
}

/// What [`Store::reseal`] did. Counts only, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// Values replaced by their re-sealed version.
    pub written: usize,
    /// Values changed or removed since they were read, left as they now are.
    pub changed_meanwhile: usize,
    /// Values stored, once written, sealed with another key than the new one (written
    /// meanwhile by someone still sealing with the old key): the rotation cannot end yet.
    pub not_current: usize,
}

impl Store {
    pub async fn sealed_secret(&self, name: &'static str) -> anyhow::Result<Option<Sealed>> {
        self.read(move |db| {
            db.query_opt(
                "SELECT key_id, nonce, ciphertext FROM secrets WHERE name = $1",
                &[&name],
                |r| sealed_of(r, 0),
            )
        })
        .await
    }

    /// Stores the secret `name` unless it exists; returns the one stored.
    pub async fn insert_secret(
        &self,
        name: &'static str,
        sealed: Sealed,
    ) -> anyhow::Result<Sealed> {
        self.write(move |db| {
            db.execute(
                "INSERT INTO secrets (name, key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &sealed.key_id, &sealed.nonce, &sealed.ciphertext],
            )?;
            db.query_one(
                "SELECT key_id, nonce, ciphertext FROM secrets WHERE name = $1",
                &[&name],
                |r| sealed_of(r, 0),
            )
        })
        .await
    }

    pub async fn all_sealed(&self) -> anyhow::Result<AllSealed> {
        self.write(|db| {
            let credentials = db.query(
                "SELECT user_id, password_key_id, password_nonce, password_ct FROM credentials",
                &[],
                |r| Ok((r.get(0)?, sealed_of(r, 1)?)),
            )?;
            let secrets = db.query(
                "SELECT name, key_id, nonce, ciphertext FROM secrets",
                &[],
                |r| Ok((r.get(0)?, sealed_of(r, 1)?)),
            )?;
            Ok(AllSealed {
                credentials,
                secrets,
            })
        })
        .await
    }

    /// Writes each re-sealed value of a key rotation over the one it was read as, in one
    /// transaction: all or nothing.
    ///
    /// The values were read by an earlier call ([`Store::all_sealed`]) and re-sealed
    /// outside the database, so one may have changed since: a password set meanwhile (by a
    /// user, or by another orchestrator on the same database) must not be overwritten
    /// with the old value re-sealed. Each value is therefore written only where the row
    /// still holds exactly what was read (key id, nonce and ciphertext compared in the
    /// `UPDATE`); one changed is left as it is, one removed stays removed (an `UPDATE`,
    /// never an insert). Then, in the same transaction, the values sealed with another key
    /// than `key_id` are counted (`Resealed::not_current`): a value changed meanwhile by
    /// someone still sealing with the old key, which the caller must re-seal before the old
    /// key goes.
    pub async fn reseal(
        &self,
        key_id: String,
        all: AllSealed<(Sealed, Sealed)>,
    ) -> anyhow::Result<Resealed> {
        self.write(move |db| {
            let mut written = 0;
            for (id, (read, new)) in &all.credentials {
                written += db.execute(
                    "UPDATE credentials SET password_key_id = $2, password_nonce = $3, \
                     password_ct = $4 WHERE user_id = $1 AND password_key_id = $5 \
                     AND password_nonce = $6 AND password_ct = $7",
                    &[
                        id,
                        &new.key_id,
                        &new.nonce,
                        &new.ciphertext,
                        &read.key_id,
                        &read.nonce,
                        &read.ciphertext,
                    ],
                )? as usize;
            }
            for (name, (read, new)) in &all.secrets {
                written += db.execute(
                    "UPDATE secrets SET key_id = $2, nonce = $3, ciphertext = $4 \
                     WHERE name = $1 AND key_id = $5 AND nonce = $6 AND ciphertext = $7",
                    &[
                        name,
                        &new.key_id,
                        &new.nonce,
                        &new.ciphertext,
                        &read.key_id,
                        &read.nonce,
                        &read.ciphertext,
                    ],
                )? as usize;
            }
            let not_current: i64 = db.query_value(
                "SELECT (SELECT count(*) FROM credentials WHERE password_key_id <> $1) \
                 + (SELECT count(*) FROM secrets WHERE key_id <> $1)",
                &[&key_id],
            )?;
            Ok(Resealed {
                written,
                changed_meanwhile: all.credentials.len() + all.secrets.len() - written,
                not_current: usize::try_from(not_current)?,
            })
        })
        .await
    }

    /// Saves the connection settings and the proxy password (sealed, or removed with
    /// `None`) in one transaction: both or neither.
    pub async fn save_connection(
        &self,
        settings: ConnectionSettings,
        proxy_password: Option<Sealed>,
    ) -> anyhow::Result<()> {
        self.write(move |db| {
            records::put(db, &settings)?;
            put_sealed(
                db,
                crate::connection::PROXY_PASSWORD,
                proxy_password.as_ref(),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    //! On the engine of the test run (SQLite, or PostgreSQL with `IEA_TEST_DATABASE_URL`).
    //! Values are stand-ins (the store never opens one): `key` names the key that "sealed"
    //! them.

    use super::*;
    use crate::store::NewIdentity;
    use crate::store::testing::{add_users, reseau_with_administrator, store};

    fn sealed(key: &str, tag: u8) -> Sealed {
        Sealed {
            key_id: key.into(),
            nonce: vec![tag; 24],
            ciphertext: vec![tag; 40],
        }
    }

    fn identity(user_id: i64, sealed: Sealed) -> NewIdentity {
        NewIdentity {
            user_id,
            siret: "78214563500010".into(),
            nom: "DUPONT".into(),
            prenom: "Marie".into(),
            sealed,
        }
    }

    /// Two accounts with a password (Alice's, Bob's) and two secrets (a licence key, a
    /// proxy password), all sealed with the key "old"; returns (administrator, Alice, Bob).
    async fn populate(s: &Store) -> (i64, i64, i64) {
        let admin = reseau_with_administrator(s).await;
        let ids = add_users(s, &["Alice", "Bob"]).await;
        s.set_credentials(
            vec![
                identity(ids[0], sealed("old", 1)),
                identity(ids[1], sealed("old", 2)),
            ],
            1,
        )
        .await
        .unwrap();
        s.insert_secret("licence", sealed("old", 3)).await.unwrap();
        s.save_connection(
            crate::network::NetworkDefaults::default().official(),
            Some(sealed("old", 4)),
        )
        .await
        .unwrap();
        (admin, ids[0], ids[1])
    }

    /// `all` as read, each value paired with its stand-in re-sealed with the key "new".
    fn resealed(all: AllSealed) -> AllSealed<(Sealed, Sealed)> {
        let new = |s: Sealed| {
            let again = sealed("new", s.nonce[0] + 100);
            (s, again)
        };
        AllSealed {
            credentials: all
                .credentials
                .into_iter()
                .map(|(k, s)| (k, new(s)))
                .collect(),
            secrets: all.secrets.into_iter().map(|(k, s)| (k, new(s))).collect(),
        }
    }

    async fn password(s: &Store, user_id: i64) -> Option<Sealed> {
        s.credential(user_id).await.unwrap().map(|c| c.sealed)
    }

    #[tokio::test]
    async fn resealing_writes_every_value_read_when_none_changed() {
        let db = store().await;
        let s = &db.store;
        let (_, alice, bob) = populate(s).await;
        let read = s.all_sealed().await.unwrap();
        assert_eq!((read.credentials.len(), read.secrets.len()), (2, 2));
        let done = s.reseal("new".into(), resealed(read)).await.unwrap();
        assert_eq!(
            done,
            Resealed {
                written: 4,
                changed_meanwhile: 0,
                not_current: 0
            }
        );
        assert_eq!(password(s, alice).await, Some(sealed("new", 101)));
        assert_eq!(password(s, bob).await, Some(sealed("new", 102)));
        assert_eq!(
            s.sealed_secret("licence").await.unwrap(),
            Some(sealed("new", 103))
        );
        assert_eq!(
            s.sealed_secret(crate::connection::PROXY_PASSWORD)
                .await
                .unwrap(),
            Some(sealed("new", 104))
        );
    }

    #[tokio::test]
    async fn a_value_changed_or_removed_after_it_was_read_is_left_as_it_now_is() {
        let db = store().await;
        let s = &db.store;
        let (admin, alice, bob) = populate(s).await;
        let read = s.all_sealed().await.unwrap();
        // Between the rotation's read and its write: Alice's password changes (sealed with
        // the new key), the licence key is replaced, Bob's account and the proxy password
        // are removed.
        s.set_credentials(vec![identity(alice, sealed("new", 50))], 2)
            .await
            .unwrap();
        s.save_connection(crate::network::NetworkDefaults::default().official(), None)
            .await
            .unwrap();
        assert!(matches!(
            s.remove_user("Bob", admin).await.unwrap(),
            crate::store::Removed::Removed(_)
        ));
        s.write(|db| {
            db.execute(
                "UPDATE secrets SET key_id = $2, nonce = $3, ciphertext = $4 WHERE name = $1",
                &[&"licence", &"new", &vec![51u8; 24], &vec![51u8; 40]],
            )
        })
        .await
        .unwrap();

        let done = s.reseal("new".into(), resealed(read)).await.unwrap();
        assert_eq!(
            done,
            Resealed {
                written: 0,
                changed_meanwhile: 4,
                not_current: 0
            }
        );
        assert_eq!(password(s, alice).await, Some(sealed("new", 50)));
        assert_eq!(password(s, bob).await, None);
        assert_eq!(
            s.sealed_secret("licence").await.unwrap(),
            Some(sealed("new", 51))
        );
        assert_eq!(
            s.sealed_secret(crate::connection::PROXY_PASSWORD)
                .await
                .unwrap(),
            None,
            "a secret removed during the rotation came back"
        );
    }

    #[tokio::test]
    async fn a_value_stored_meanwhile_with_the_old_key_is_counted_not_current() {
        let db = store().await;
        let s = &db.store;
        let (_, alice, bob) = populate(s).await;
        let read = s.all_sealed().await.unwrap();
        // Another orchestrator, still sealing with the old key, sets Alice's password.
        s.set_credentials(vec![identity(alice, sealed("old", 60))], 2)
            .await
            .unwrap();
        let done = s.reseal("new".into(), resealed(read)).await.unwrap();
        assert_eq!(
            done,
            Resealed {
                written: 3,
                changed_meanwhile: 1,
                not_current: 1
            }
        );
        assert_eq!(password(s, alice).await, Some(sealed("old", 60)));
        assert_eq!(password(s, bob).await, Some(sealed("new", 102)));
    }
}
