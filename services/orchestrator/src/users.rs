//! Accounts ("Comptes utilisateurs") and the installation mode.
//!
//! Rules: only an administrator manages accounts; anyone may change their own password
//! (giving the current one); the last administrator cannot be removed or demoted, nor can
//! one remove oneself; in *monoposte* mode the installation has a single account.

use secrecy::{ExposeSecret, SecretString};

use crate::sessions::{self, Principal};
use crate::store::{Added, Removed, Store};

/// What an account may do: an administrator manages accounts and everyone's
/// identities; a user only their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Administrator,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationMode {
    Monoposte,
    Reseau,
}

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
    /// The account's identity is still needed (`crate::store::InUse`).
    #[error("account in use")]
    InUse(String, crate::store::InUse),
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
        let rows = self.store.users().await?;
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
        // Hashed first, on the hashing pool: the database is not held for the hash's
        // tenth of a second; the checks and the insertion stay one step.
        let hash = crate::hashing::hash(password).await?;
        match self
            .store
            .add_user(name, role, &hash, sessions::now())
            .await?
        {
            Added::Monoposte => Err(UsersError::Monoposte),
            Added::AlreadyExists => Err(UsersError::AlreadyExists(name.to_owned())),
            Added::Added => {
                tracing::info!(user = %name, ?role, "account created");
                Ok(UserSummary {
                    name: name.to_owned(),
                    role,
                })
            }
        }
    }

    pub async fn remove(&self, caller: &Principal, name: &str) -> Result<(), UsersError> {
        require_admin(caller)?;
        match self.store.remove_user(name, caller.user_id).await? {
            Removed::NotFound => Err(UsersError::NotFound(name.to_owned())),
            Removed::Caller => Err(UsersError::RemoveSelf),
            Removed::LastAdministrator => Err(UsersError::LastAdministrator),
            Removed::InUse(what) => Err(UsersError::InUse(name.to_owned(), what)),
            Removed::Removed(user) => {
                tracing::info!(user = %user.name, "account removed");
                Ok(())
            }
        }
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
        let Some(user) = self.store.user_by_name(name).await? else {
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
        self.store.set_password_hash(user.id, &hash, !own).await?;
        tracing::info!(user = %user.name, "password changed");
        Ok(())
    }

    pub async fn mode(&self) -> Result<InstallationMode, UsersError> {
        Ok(self.store.installation_mode().await?)
    }

    pub async fn set_mode(
        &self,
        caller: &Principal,
        mode: InstallationMode,
    ) -> Result<InstallationMode, UsersError> {
        require_admin(caller)?;
        if !self.store.set_installation_mode(mode).await? {
            return Err(UsersError::Monoposte);
        }
        tracing::info!(?mode, "installation mode changed");
        Ok(mode)
    }
}
