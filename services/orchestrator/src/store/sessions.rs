//! Front-end sessions, stored as the SHA-256 of their token.

use super::Store;
use super::users::{UserRow, user_of};

impl Store {
    /// Opens a session for `user_id` (clearing its failed logins and the expired sessions
    /// of everyone) in one transaction.
    pub async fn open_session(
        &self,
        user_id: i64,
        token_hash: Vec<u8>,
        now: i64,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        self.write(move |db| {
            db.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1",
                &[&user_id],
            )?;
            db.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])?;
            db.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
                &[&token_hash, &user_id, &now, &expires_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The account of a live session.
    pub async fn session_user(
        &self,
        token_hash: Vec<u8>,
        now: i64,
    ) -> anyhow::Result<Option<UserRow>> {
        self.read(move |db| {
            db.query_opt(
                "SELECT u.id, u.name, u.role, u.password_hash, u.failed_logins, u.locked_until \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
                &[&token_hash, &now],
                |r| user_of(r, 0),
            )
        })
        .await
    }

    pub async fn delete_session(&self, token_hash: Vec<u8>) -> anyhow::Result<()> {
        self.read(move |db| {
            db.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])?;
            Ok(())
        })
        .await
    }
}
