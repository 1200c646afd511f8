//! The installation's identity: one row, written on the first start.

use super::Store;

impl Store {
    /// The installation's id; on the first start, `new_id()` is recorded as it. The
    /// second value tells whether this call created it.
    pub async fn installation_id_or_create(
        &self,
        new_id: impl FnOnce() -> String + Send + 'static,
        now: i64,
    ) -> anyhow::Result<(String, bool)> {
        self.write(move |db| {
            let found: Option<String> = db.query_opt(
                "SELECT installation_id FROM installation WHERE id = 1",
                &[],
                |r| r.get(0),
            )?;
            if let Some(id) = found {
                return Ok((id, false));
            }
            let id = new_id();
            db.execute(
                "INSERT INTO installation (id, installation_id, created_at) VALUES (1, $1, $2)",
                &[&id, &now],
            )?;
            Ok((id, true))
        })
        .await
    }
}
