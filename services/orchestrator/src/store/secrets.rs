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

/// Every sealed value of the database, for a key rotation.
pub struct AllSealed {
    /// (account id, its Net-entreprises password).
    pub credentials: Vec<(i64, Sealed)>,
    /// (secret name, value).
    pub secrets: Vec<(String, Sealed)>,
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

    /// Replaces every sealed value at once (key rotation): all or nothing.
    pub async fn reseal(&self, all: AllSealed) -> anyhow::Result<()> {
        self.write(move |db| {
            for (id, s) in &all.credentials {
                db.execute(
                    "UPDATE credentials SET password_key_id = $2, password_nonce = $3, \
                     password_ct = $4 WHERE user_id = $1",
                    &[id, &s.key_id, &s.nonce, &s.ciphertext],
                )?;
            }
            for (name, s) in &all.secrets {
                put_sealed(db, name, Some(s))?;
            }
            Ok(())
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
