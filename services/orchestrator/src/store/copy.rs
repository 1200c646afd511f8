//! Copying an installation's whole state from one database to another
//! (`iea database migrate`): SQLite to PostgreSQL when an installation moves to *réseau*
//! mode. Rows are copied as they are (sealed secrets stay sealed: the key file is outside
//! both databases), into an empty database, in one transaction checked by counting.

use std::path::Path;

use anyhow::Context;

use super::engine::{Db, Value};
use super::{DatabaseUrl, Store};

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Blob,
}

enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Cell {
    fn value(&self) -> &dyn Value {
        match self {
            Cell::Int(v) => v,
            Cell::Text(v) => v,
            Cell::Blob(v) => v,
        }
    }
}

struct Table {
    name: &'static str,
    kinds: &'static [Kind],
    select: &'static str,
    insert: &'static str,
    count: &'static str,
}

use Kind::{Blob, Int, Text};

/// Every table, parents before children.
const TABLES: &[Table] = &[
    Table {
        name: "installation",
        kinds: &[Int, Text, Int],
        select: "SELECT id, installation_id, created_at FROM installation",
        insert: "INSERT INTO installation (id, installation_id, created_at) VALUES ($1, $2, $3)",
        count: "SELECT count(*) FROM installation",
    },
    Table {
        name: "users",
        kinds: &[Int, Text, Text, Text, Int, Int, Int],
        select: "SELECT id, name, role, password_hash, created_at, failed_logins, locked_until \
                 FROM users ORDER BY id",
        insert: "INSERT INTO users (id, name, role, password_hash, created_at, failed_logins, \
                 locked_until) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        count: "SELECT count(*) FROM users",
    },
    Table {
        name: "sessions",
        kinds: &[Blob, Int, Int, Int],
        select: "SELECT token_hash, user_id, created_at, expires_at FROM sessions",
        insert: "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
        count: "SELECT count(*) FROM sessions",
    },
    Table {
        name: "settings",
        kinds: &[Text, Text],
        select: "SELECT key, value FROM settings",
        insert: "INSERT INTO settings (key, value) VALUES ($1, $2)",
        count: "SELECT count(*) FROM settings",
    },
    Table {
        name: "credentials",
        kinds: &[
            Int, Text, Text, Text, Text, Blob, Blob, Int, Int, Int, Text, Text, Int, Text, Int,
            Text, Text, Text, Text, Text, Int, Int, Text,
        ],
        select: "SELECT user_id, siret, nom, prenom, password_key_id, password_nonce, password_ct, \
                 updated_at, consecutive_failures, last_verified_at, last_outcome, last_message, \
                 last_http_status, last_realm, last_token_expires_at, last_step, last_step_message, \
                 last_step_detail, last_step_address, last_step_tls_problem, last_step_http_status, \
                 last_step_latency_ms, last_input_problems FROM credentials",
        insert: "INSERT INTO credentials (user_id, siret, nom, prenom, password_key_id, \
                 password_nonce, password_ct, updated_at, consecutive_failures, last_verified_at, \
                 last_outcome, last_message, last_http_status, last_realm, last_token_expires_at, \
                 last_step, last_step_message, last_step_detail, last_step_address, \
                 last_step_tls_problem, last_step_http_status, last_step_latency_ms, \
                 last_input_problems) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        count: "SELECT count(*) FROM credentials",
    },
    Table {
        name: "secrets",
        kinds: &[Text, Text, Blob, Blob],
        select: "SELECT name, key_id, nonce, ciphertext FROM secrets",
        insert: "INSERT INTO secrets (name, key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4)",
        count: "SELECT count(*) FROM secrets",
    },
    Table {
        name: "deposits",
        kinds: &[
            Int, Int, Int, Text, Text, Int, Text, Text, Text, Text, Text, Text, Text, Text, Text,
            Int, Text, Text, Text, Text, Int, Int, Int, Int, Text, Int, Text, Int, Text, Int,
        ],
        select: "SELECT id, created_at, updated_at, state, requested_by, user_id, siret, month, nature, kind, fraction, essai_reel, file_name, file_path, sha256, bytes, message, idflux, anomalies, candidates, attempts, attempt_started_at, attempt_ended_at, not_before, wait_kind, wait_credential_at, lease_owner, lease_until, source_path, anomalies_omitted FROM deposits ORDER BY id",
        insert: "INSERT INTO deposits (id, created_at, updated_at, state, requested_by, user_id, siret, month, nature, kind, fraction, essai_reel, file_name, file_path, sha256, bytes, message, idflux, anomalies, candidates, attempts, attempt_started_at, attempt_ended_at, not_before, wait_kind, wait_credential_at, lease_owner, lease_until, source_path, anomalies_omitted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)",
        count: "SELECT count(*) FROM deposits",
    },
    Table {
        name: "deposit_accounts",
        kinds: &[Text, Int, Int],
        select: "SELECT siret, user_id, updated_at FROM deposit_accounts",
        insert: "INSERT INTO deposit_accounts (siret, user_id, updated_at) VALUES ($1, $2, $3)",
        count: "SELECT count(*) FROM deposit_accounts",
    },
    // Returns and CRM PAS (issue 13).
    Table {
        name: "return_follows",
        kinds: &[
            Int, Text, Int, Text, Text, Int, Int, Int, Text, Int, Int, Int, Int, Text, Text, Int,
            Int,
        ],
        select: "SELECT deposit_id, idflux, user_id, siret, month, due_at, started_at, until_at, state, phase_started_at, polls, next_at, last_polled_at, message, lease_owner, lease_until, updated_at FROM return_follows ORDER BY deposit_id",
        insert: "INSERT INTO return_follows (deposit_id, idflux, user_id, siret, month, due_at, started_at, until_at, state, phase_started_at, polls, next_at, last_polled_at, message, lease_owner, lease_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        count: "SELECT count(*) FROM return_follows",
    },
    Table {
        name: "dsn_returns",
        kinds: &[
            Int, Text, Int, Int, Int, Text, Text, Text, Text, Text, Int, Int, Int, Text, Int, Int,
            Text, Text, Text, Int, Int, Text, Text, Int,
        ],
        select: "SELECT id, idflux, deposit_id, user_id, nature, statut, publication, production, return_id, url, version, overwritten_at, seen_at, download_state, attempts, next_try_at, message, file_path, sha256, bytes, downloaded_at, read_status, lease_owner, lease_until FROM dsn_returns ORDER BY id",
        insert: "INSERT INTO dsn_returns (id, idflux, deposit_id, user_id, nature, statut, publication, production, return_id, url, version, overwritten_at, seen_at, download_state, attempts, next_try_at, message, file_path, sha256, bytes, downloaded_at, read_status, lease_owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
        count: "SELECT count(*) FROM dsn_returns",
    },
    Table {
        name: "return_anomalies",
        kinds: &[Int, Int, Text, Text, Text, Text],
        select: "SELECT return_row, seq, code, message, rubric, category FROM return_anomalies ORDER BY return_row, seq",
        insert: "INSERT INTO return_anomalies (return_row, seq, code, message, rubric, category) VALUES ($1, $2, $3, $4, $5, $6)",
        count: "SELECT count(*) FROM return_anomalies",
    },
    Table {
        name: "pas_crms",
        kinds: &[Int, Int, Text, Text, Text, Text, Text, Int],
        select: "SELECT id, return_row, siret, identifiant, available_on, valid_until, file_name, received_at FROM pas_crms ORDER BY id",
        insert: "INSERT INTO pas_crms (id, return_row, siret, identifiant, available_on, valid_until, file_name, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        count: "SELECT count(*) FROM pas_crms",
    },
    Table {
        name: "pas_rates",
        kinds: &[Int, Int, Text, Text, Int, Text, Text, Int, Text, Int, Text],
        select: "SELECT crm_id, seq, siret, nir_or_ntt, ntt, matricule, rate, rate_hundredths, future_rate, future_rate_hundredths, future_effective_on FROM pas_rates ORDER BY crm_id, seq",
        insert: "INSERT INTO pas_rates (crm_id, seq, siret, nir_or_ntt, ntt, matricule, rate, rate_hundredths, future_rate, future_rate_hundredths, future_effective_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        count: "SELECT count(*) FROM pas_rates",
    },
    Table {
        name: "return_scans",
        kinds: &[Int, Int, Int, Int, Int, Int, Text, Text, Int, Int],
        select: "SELECT user_id, cursor_at, window_minutes, announced_minutes, next_at, last_scan_at, message, lease_owner, lease_until, updated_at FROM return_scans ORDER BY user_id",
        insert: "INSERT INTO return_scans (user_id, cursor_at, window_minutes, announced_minutes, next_at, last_scan_at, message, lease_owner, lease_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        count: "SELECT count(*) FROM return_scans",
    },
];

/// How many rows of each table were copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

impl CopyReport {
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

fn read_all(db: &mut Db<'_>) -> anyhow::Result<Vec<Vec<Vec<Cell>>>> {
    TABLES
        .iter()
        .map(|t| {
            db.query(t.select, &[], |r| {
                t.kinds
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        Ok(match k {
                            Kind::Int => Cell::Int(r.get(i)?),
                            Kind::Text => Cell::Text(r.get(i)?),
                            Kind::Blob => Cell::Blob(r.get(i)?),
                        })
                    })
                    .collect()
            })
            .with_context(|| format!("reading {}", t.name))
        })
        .collect()
}

fn write_all(db: &mut Db<'_>, data: &[Vec<Vec<Cell>>]) -> anyhow::Result<CopyReport> {
    for t in TABLES {
        let n: i64 = db.query_value(t.count, &[])?;
        anyhow::ensure!(
            n == 0,
            "the destination database is not empty (table {} has {n} rows): nothing was copied",
            t.name
        );
    }
    let mut report = CopyReport { tables: Vec::new() };
    for (t, rows) in TABLES.iter().zip(data) {
        for row in rows {
            let args: Vec<&dyn Value> = row.iter().map(Cell::value).collect();
            db.execute(t.insert, &args)
                .with_context(|| format!("writing {}", t.name))?;
        }
        let n: i64 = db.query_value(t.count, &[])?;
        anyhow::ensure!(
            n as usize == rows.len(),
            "table {}: {} rows read, {n} in the destination: nothing was copied",
            t.name,
            rows.len()
        );
        report.tables.push((t.name, n as u64));
    }
    if db.is_postgres() {
        // Rows came with their ids: the next account must get a new one.
        db.query_value::<Option<i64>>(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), \
             (SELECT COALESCE(max(id), 0) + 1 FROM users), false)",
            &[],
        )?;
        db.query_value::<Option<i64>>(
            "SELECT setval(pg_get_serial_sequence('deposits', 'id'), \
             (SELECT COALESCE(max(id), 0) + 1 FROM deposits), false)",
            &[],
        )?;
        for sql in [
            "SELECT setval(pg_get_serial_sequence('dsn_returns', 'id'), \
             (SELECT COALESCE(max(id), 0) + 1 FROM dsn_returns), false)",
            "SELECT setval(pg_get_serial_sequence('pas_crms', 'id'), \
             (SELECT COALESCE(max(id), 0) + 1 FROM pas_crms), false)",
        ] {
            db.query_value::<Option<i64>>(sql, &[])?;
        }
    }
    Ok(report)
}

/// Copies everything of `from` into `to`, which must be empty; all or nothing.
pub async fn copy_all(from: &Store, to: &Store) -> anyhow::Result<CopyReport> {
    let data = from.write(read_all).await?;
    let data = std::sync::Arc::new(data);
    to.write(move |db| write_all(db, &data)).await
}

impl Store {
    /// Copies the SQLite database at `source` into the empty database at `to`, leaving
    /// the source untouched: a consistent snapshot of it is taken (read-only) beside it,
    /// brought to the current schema, copied, then removed.
    pub async fn migrate_sqlite(source: &Path, to: &DatabaseUrl) -> anyhow::Result<CopyReport> {
        anyhow::ensure!(
            source.is_file(),
            "no database at {}: is this the installation's data directory?",
            source.display()
        );
        if let DatabaseUrl::Sqlite(dest) = to {
            anyhow::ensure!(
                dest != source,
                "the source and the destination are the same database"
            );
        }
        let snapshot = source.with_extension("migration-snapshot.db");
        let _ = std::fs::remove_file(&snapshot);
        let (src, snap) = (source.to_owned(), snapshot.clone());
        tokio::task::spawn_blocking(move || snapshot_sqlite(&src, &snap))
            .await
            .context("snapshot task")??;
        let result = async {
            let from = Store::open_sqlite(&snapshot).await?;
            let to = Store::open(to).await?;
            copy_all(&from, &to).await
        }
        .await;
        let _ = std::fs::remove_file(&snapshot);
        result
    }
}

/// A consistent copy of the SQLite database `source` at `to` (0600), read-only on the
/// source.
fn snapshot_sqlite(source: &Path, to: &Path) -> anyhow::Result<()> {
    iea_runtime::pki::write_file(to, b"", true)?;
    let conn = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} read-only", source.display()))?;
    let target = to
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("snapshot path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [target])
        .context("taking a snapshot of the source database")?;
    Ok(())
}
