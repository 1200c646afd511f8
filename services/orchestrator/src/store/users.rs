//! Accounts and the installation mode.

use super::engine::{Db, Row};
use super::{Store, records};
use crate::users::{InstallationMode, Role};

/// An account as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
}

/// What adding an account did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Added,
    /// *Monoposte*: the installation has its one account already.
    Monoposte,
    AlreadyExists,
}

/// What removing an account did.
#[derive(Debug)]
pub enum Removed {
    Removed(UserRow),
    NotFound,
    /// One cannot remove oneself.
    Caller,
    LastAdministrator,
    /// The account's Net-entreprises identity is still needed: removed, it would leave
    /// these unattended (or deposited with another account's identity, the default).
    InUse(InUse),
}

/// What an account's identity is still needed for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InUse {
    /// The establishments it is designated to deposit for.
    pub sirets: Vec<String>,
    /// Its deposits on their way (queued, sending, answer lost, to check): their
    /// identity is needed to send them or to settle them by listing. Those waiting for
    /// credentials are not counted: without the account they go by the rules of their
    /// establishment, as a new deposit would.
    pub deposits: i64,
    /// Its accepted deposits whose returns are still followed with its identity.
    pub follows: i64,
}

fn role_code(role: Role) -> &'static str {
    match role {
        Role::Administrator => "administrator",
        Role::User => "user",
    }
}

fn role_of(code: &str) -> anyhow::Result<Role> {
    match code {
        "administrator" => Ok(Role::Administrator),
        "user" => Ok(Role::User),
        other => anyhow::bail!("unknown role {other} in the database"),
    }
}

pub(super) fn user_of(r: &Row<'_>, first: usize) -> anyhow::Result<UserRow> {
    Ok(UserRow {
        id: r.get(first)?,
        name: r.get(first + 1)?,
        role: role_of(&r.get::<String>(first + 2)?)?,
        password_hash: r.get(first + 3)?,
        failed_logins: r.get(first + 4)?,
        locked_until: r.get(first + 5)?,
    })
}

fn by_name(db: &mut Db<'_>, name: &str) -> anyhow::Result<Option<UserRow>> {
    db.query_opt(
        "SELECT id, name, role, password_hash, failed_logins, locked_until FROM users \
         WHERE lower(name) = lower($1)",
        &[&name],
        |r| user_of(r, 0),
    )
}

fn count(db: &mut Db<'_>) -> anyhow::Result<i64> {
    db.query_value("SELECT count(*) FROM users", &[])
}

/// What every change of the set of accounts (or of what may hold several) decides under:
/// names free, last administrator, *monoposte* with one account.
const ACCOUNTS: &str = "accounts";

fn insert(db: &mut Db<'_>, name: &str, role: Role, hash: &str, now: i64) -> anyhow::Result<i64> {
    db.lock_key(ACCOUNTS)?;
    db.query_value(
        "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
        &[&name, &role_code(role), &hash, &now],
    )
}

impl Store {
    pub async fn user_count(&self) -> anyhow::Result<i64> {
        self.read(count).await
    }

    /// Adds the first account (bootstrap), whatever the mode.
    pub async fn insert_first_user(
        &self,
        name: &str,
        role: Role,
        hash: &str,
        now: i64,
    ) -> anyhow::Result<i64> {
        let name = name.to_owned();
        let hash = hash.to_owned();
        self.write(move |db| insert(db, &name, role, &hash, now))
            .await
    }

    /// Adds an account, unless the mode or an account of that name forbids it; the checks
    /// and the insertion are one transaction.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        hash: &str,
        now: i64,
    ) -> anyhow::Result<Added> {
        let name = name.to_owned();
        let hash = hash.to_owned();
        self.write(move |db| {
            db.lock_key(ACCOUNTS)?;
            if records::installation_mode(db)? == InstallationMode::Monoposte && count(db)? >= 1 {
                return Ok(Added::Monoposte);
            }
            if by_name(db, &name)?.is_some() {
                return Ok(Added::AlreadyExists);
            }
            insert(db, &name, role, &hash, now)?;
            Ok(Added::Added)
        })
        .await
    }

    /// The account `name`, compared without regard to case.
    pub async fn user_by_name(&self, name: &str) -> anyhow::Result<Option<UserRow>> {
        let name = name.to_owned();
        self.read(move |db| by_name(db, &name)).await
    }

    pub async fn password_hash(&self, user_id: i64) -> anyhow::Result<Option<String>> {
        self.read(move |db| {
            db.query_opt(
                "SELECT password_hash FROM users WHERE id = $1",
                &[&user_id],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Every account, by name.
    pub async fn users(&self) -> anyhow::Result<Vec<UserRow>> {
        self.read(|db| {
            db.query(
                "SELECT id, name, role, password_hash, failed_logins, locked_until FROM users \
                 ORDER BY lower(name)",
                &[],
                |r| user_of(r, 0),
            )
        })
        .await
    }

    /// One more wrong password; the count restarts first when a lock had expired.
    pub async fn record_failed_login(
        &self,
        user_id: i64,
        restart: bool,
        locked_until: Option<i64>,
    ) -> anyhow::Result<()> {
        self.write(move |db| {
            if restart {
                db.execute(
                    "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1",
                    &[&user_id],
                )?;
            }
            db.execute(
                "UPDATE users SET failed_logins = failed_logins + 1, locked_until = $2 WHERE id = $1",
                &[&user_id, &locked_until],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes `name`, unless it is the caller or the last administrator.
    pub async fn remove_user(&self, name: &str, caller_id: i64) -> anyhow::Result<Removed> {
        let name = name.to_owned();
        self.write(move |db| {
            db.lock_key(ACCOUNTS)?;
            let Some(user) = by_name(db, &name)? else {
                return Ok(Removed::NotFound);
            };
            if user.id == caller_id {
                return Ok(Removed::Caller);
            }
            if user.role == Role::Administrator {
                let admins: i64 = db.query_value(
                    "SELECT count(*) FROM users WHERE role = 'administrator'",
                    &[],
                )?;
                if admins <= 1 {
                    return Ok(Removed::LastAdministrator);
                }
            }
            let in_use = InUse {
                sirets: db.query(
                    "SELECT siret FROM deposit_accounts WHERE user_id = $1 ORDER BY siret",
                    &[&user.id],
                    |r| r.get(0),
                )?,
                deposits: db.query_value(
                    "SELECT count(*) FROM deposits WHERE user_id = $1 AND state IN \
                     ('received', 'checked', 'queued', 'sending', 'uncertain', 'to_check')",
                    &[&user.id],
                )?,
                follows: db.query_value(
                    "SELECT count(*) FROM return_follows WHERE user_id = $1 \
                     AND state = 'following'",
                    &[&user.id],
                )?,
            };
            if in_use != InUse::default() {
                return Ok(Removed::InUse(in_use));
            }
            db.execute("DELETE FROM users WHERE id = $1", &[&user.id])?;
            Ok(Removed::Removed(user))
        })
        .await
    }

    /// A new password hash (which also lifts a login lock); with `end_sessions`, the
    /// account's sessions end in the same transaction.
    pub async fn set_password_hash(
        &self,
        user_id: i64,
        hash: &str,
        end_sessions: bool,
    ) -> anyhow::Result<()> {
        let hash = hash.to_owned();
        self.write(move |db| {
            db.execute(
                "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL \
                 WHERE id = $1",
                &[&user_id, &hash],
            )?;
            if end_sessions {
                db.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
            }
            Ok(())
        })
        .await
    }

    pub async fn installation_mode(&self) -> anyhow::Result<InstallationMode> {
        self.read(records::installation_mode).await
    }

    /// Sets the mode; *monoposte* is refused (`false`) while there is more than one
    /// account.
    pub async fn set_installation_mode(&self, mode: InstallationMode) -> anyhow::Result<bool> {
        self.write(move |db| {
            db.lock_key(ACCOUNTS)?;
            if mode == InstallationMode::Monoposte && count(db)? > 1 {
                return Ok(false);
            }
            records::put(db, &mode)?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    //! Two workstations changing the accounts at once; on the engine of the test run.

    use std::time::Duration;

    use super::super::testing::{other_transaction, reseau_with_administrator, store};
    use super::*;

    /// How long the other workstation's transaction stays open once it has decided.
    const HOLD: Duration = Duration::from_millis(300);

    /// Another workstation adds « Bob » and has not committed yet: adding « bob » here
    /// waits for it, then says the name is taken (not a database error, not two Bobs).
    #[tokio::test]
    async fn one_name_added_at_once_on_two_workstations_is_one_account() {
        let t = store().await;
        let s = &t.store;
        reseau_with_administrator(s).await;
        let other = other_transaction(&t.url, HOLD, |db| {
            db.lock_key(ACCOUNTS)?;
            anyhow::ensure!(by_name(db, "Bob")?.is_none());
            insert(db, "Bob", Role::User, "h", 2)
        });
        let here = s.add_user("bob", Role::User, "h", 3).await.unwrap();
        other.join().unwrap();
        assert_eq!(here, Added::AlreadyExists);
        assert_eq!(s.user_count().await.unwrap(), 2);
    }

    /// Two administrators are left; another workstation removes one and has not committed
    /// yet: removing the other here waits for it, then refuses (the last administrator).
    #[tokio::test]
    async fn the_last_two_administrators_removed_at_once_leave_one() {
        let t = store().await;
        let s = &t.store;
        let first = reseau_with_administrator(s).await;
        assert_eq!(
            s.add_user("Second", Role::Administrator, "h", 2)
                .await
                .unwrap(),
            Added::Added
        );
        let caller = s.user_by_name("Second").await.unwrap().unwrap().id;
        let other = other_transaction(&t.url, HOLD, move |db| {
            db.lock_key(ACCOUNTS)?;
            let admins: i64 = db.query_value(
                "SELECT count(*) FROM users WHERE role = 'administrator'",
                &[],
            )?;
            anyhow::ensure!(admins == 2);
            db.execute("DELETE FROM users WHERE id = $1", &[&caller])
        });
        let here = s.remove_user("Administrateur", caller).await.unwrap();
        other.join().unwrap();
        assert!(matches!(here, Removed::LastAdministrator), "{here:?}");
        let left = s.users().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, first);
        assert_eq!(left[0].role, Role::Administrator);
    }
}
