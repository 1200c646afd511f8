//! Accounts ("Comptes utilisateurs") and the installation mode.
//!
//! Rules: only an administrator manages accounts; anyone may change their own password
//! (giving the current one); the last administrator cannot be removed or demoted, nor can
//! one remove oneself; in *monoposte* mode the installation has a single account.

use secrecy::{ExposeSecret, SecretString};

use crate::sessions::{self, Principal};
use crate::store::{self, Role, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationMode {
    Monoposte,
    Reseau,
}

impl InstallationMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Monoposte => "monoposte",
            Self::Reseau => "reseau",
        }
    }
}

const MODE_KEY: &str = "installation_mode";
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("not allowed")]
    PermissionDenied,
    #[error("no such account")]
    NotFound(String),
    #[error("account exists")]
    AlreadyExists(String),
    #[error("invalid account name")]
    InvalidName(String),
    #[error("password does not meet the rules")]
    WeakPassword,
    #[error("current password wrong")]
    WrongCurrentPassword,
    #[error("last administrator")]
    LastAdministrator,
    #[error("cannot remove oneself")]
    RemoveSelf,
    #[error("monoposte has one account")]
    Monoposte,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub name: String,
    pub role: Role,
}

fn require_admin(caller: &Principal) -> Result<(), UsersError> {
    if caller.role == Role::Administrator {
        Ok(())
    } else {
        Err(UsersError::PermissionDenied)
    }
}

fn check_name(name: &str) -> Result<(), UsersError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name.trim() == name
        && !name.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(UsersError::InvalidName(name.to_owned()))
    }
}

fn check_password(p: &SecretString) -> Result<(), UsersError> {
    let n = p.expose_secret().chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        Ok(())
    } else {
        Err(UsersError::WeakPassword)
    }
}

pub fn installation_mode(conn: &rusqlite::Connection) -> rusqlite::Result<InstallationMode> {
    Ok(match store::get_setting(conn, MODE_KEY)?.as_deref() {
        Some("reseau") => InstallationMode::Reseau,
        _ => InstallationMode::Monoposte,
    })
}

#[derive(Clone)]
pub struct Users {
    store: Store,
}

impl Users {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every account for an administrator; one's own for a user.
    pub async fn list(&self, caller: &Principal) -> Result<Vec<UserSummary>, UsersError> {
        let caller = caller.clone();
        let rows = self.store.call(|conn| Ok(store::list_users(conn)?)).await?;
        Ok(rows
            .into_iter()
            .filter(|u| caller.role == Role::Administrator || u.id == caller.user_id)
            .map(|u| UserSummary {
                name: u.name,
                role: u.role,
            })
            .collect())
    }

    pub async fn add(
        &self,
        caller: &Principal,
        name: &str,
        role: Role,
        password: SecretString,
    ) -> Result<UserSummary, UsersError> {
        require_admin(caller)?;
        check_name(name)?;
        check_password(&password)?;
        let name = name.to_owned();
        // Hashed first, on the hashing pool: the database is not held for the hash's
        // tenth of a second; the checks and the insertion stay one step.
        let hash = crate::hashing::hash(password).await?;
        self.store
            .call(move |conn| {
                if installation_mode(conn)? == InstallationMode::Monoposte
                    && store::user_count(conn)? >= 1
                {
                    return Ok(Err(UsersError::Monoposte));
                }
                if store::user_by_name(conn, &name)?.is_some() {
                    return Ok(Err(UsersError::AlreadyExists(name)));
                }
                store::insert_user(conn, &name, role, &hash, sessions::now())?;
                tracing::info!(user = %name, ?role, "account created");
                Ok(Ok(UserSummary { name, role }))
            })
            .await?
    }

    pub async fn remove(&self, caller: &Principal, name: &str) -> Result<(), UsersError> {
        require_admin(caller)?;
        let name = name.to_owned();
        let caller_id = caller.user_id;
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                let Some(user) = store::user_by_name(&tx, &name)? else {
                    return Ok(Err(UsersError::NotFound(name)));
                };
                if user.id == caller_id {
                    return Ok(Err(UsersError::RemoveSelf));
                }
                if user.role == Role::Administrator && store::count_administrators(&tx)? <= 1 {
                    return Ok(Err(UsersError::LastAdministrator));
                }
                store::delete_user(&tx, user.id)?;
                tx.commit()?;
                tracing::info!(user = %user.name, "account removed");
                Ok(Ok(()))
            })
            .await?
    }

    /// One's own password needs the current one; an administrator resets another's
    /// without it (and that account's sessions end).
    pub async fn change_password(
        &self,
        caller: &Principal,
        name: &str,
        current: Option<SecretString>,
        new: SecretString,
    ) -> Result<(), UsersError> {
        let own = caller.name.eq_ignore_ascii_case(name);
        if !own {
            require_admin(caller)?;
        }
        check_password(&new)?;
        let lookup = name.to_owned();
        let user = self
            .store
            .call(move |conn| Ok(store::user_by_name(conn, &lookup)?))
            .await?;
        let Some(user) = user else {
            return Err(UsersError::NotFound(name.to_owned()));
        };
        if own {
            let ok = match current {
                Some(c) => crate::hashing::verify(c, user.password_hash.clone()).await?,
                None => false,
            };
            if !ok {
                return Err(UsersError::WrongCurrentPassword);
            }
        }
        let hash = crate::hashing::hash(new).await?;
        let id = user.id;
        self.store
            .call(move |conn| {
                store::set_password_hash(conn, id, &hash)?;
                if !own {
                    store::delete_sessions_of(conn, id)?;
                }
                Ok(())
            })
            .await?;
        tracing::info!(user = %user.name, "password changed");
        Ok(())
    }

    pub async fn mode(&self) -> Result<InstallationMode, UsersError> {
        Ok(self.store.call(|conn| Ok(installation_mode(conn)?)).await?)
    }

    pub async fn set_mode(
        &self,
        caller: &Principal,
        mode: InstallationMode,
    ) -> Result<InstallationMode, UsersError> {
        require_admin(caller)?;
        self.store
            .call(move |conn| {
                if mode == InstallationMode::Monoposte && store::user_count(conn)? > 1 {
                    return Ok(Err(UsersError::Monoposte));
                }
                store::put_setting(conn, MODE_KEY, mode.as_str())?;
                tracing::info!(mode = mode.as_str(), "installation mode changed");
                Ok(Ok(mode))
            })
            .await?
    }
}
