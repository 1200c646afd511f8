//! The schema of each engine, versioned: each migration runs in one transaction and the
//! version it leads to is recorded with it (SQLite: `PRAGMA user_version`; PostgreSQL:
//! the `schema_version` table). A database newer than this program is refused.
//!
//! SQLite installations existing before PostgreSQL was offered went through versions 1
//! to 3; version 4 turned the last verification result, stored until then as the
//! encoded proto message of the verifier's answer, into columns. A PostgreSQL database
//! starts at the current schema, which is the same, column for column, as SQLite's.

use anyhow::Context;

use super::engine::{Conn, Db};

/// One step of a schema.
pub(super) enum Step {
    Sql(&'static str),
    /// SQL, then a conversion of the data written in Rust.
    SqlThen(&'static str, fn(&mut Db<'_>) -> anyhow::Result<()>),
}

pub(super) const SQLITE: &[Step] = &[
    Step::Sql(
        r#"
CREATE TABLE installation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    installation_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('administrator', 'user')),
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
);
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
"#,
    ),
    Step::Sql(
        r#"
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE credentials (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    siret TEXT NOT NULL,
    nom TEXT NOT NULL,
    prenom TEXT NOT NULL,
    password_key_id TEXT NOT NULL,
    password_nonce BLOB NOT NULL,
    password_ct BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_result BLOB,
    last_verified_at INTEGER
);
"#,
    ),
    Step::Sql(
        r#"
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
"#,
    ),
    Step::SqlThen(
        r#"
ALTER TABLE credentials ADD COLUMN last_outcome TEXT;
ALTER TABLE credentials ADD COLUMN last_message TEXT;
ALTER TABLE credentials ADD COLUMN last_http_status INTEGER;
ALTER TABLE credentials ADD COLUMN last_realm TEXT;
ALTER TABLE credentials ADD COLUMN last_token_expires_at INTEGER;
ALTER TABLE credentials ADD COLUMN last_step TEXT;
ALTER TABLE credentials ADD COLUMN last_step_message TEXT;
ALTER TABLE credentials ADD COLUMN last_step_detail TEXT;
ALTER TABLE credentials ADD COLUMN last_step_address TEXT;
ALTER TABLE credentials ADD COLUMN last_step_tls_problem TEXT;
ALTER TABLE credentials ADD COLUMN last_step_http_status INTEGER;
ALTER TABLE credentials ADD COLUMN last_step_latency_ms INTEGER;
ALTER TABLE credentials ADD COLUMN last_input_problems TEXT;
"#,
        super::credentials::convert_encoded_results,
    ),
    // DSN deposits (issue 12): the records, their leases, the account per establishment.
    Step::Sql(
        r#"
CREATE TABLE deposits (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    siret TEXT NOT NULL,
    month TEXT NOT NULL,
    nature TEXT NOT NULL,
    kind TEXT NOT NULL,
    fraction TEXT NOT NULL,
    essai_reel TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    message TEXT,
    idflux TEXT,
    anomalies TEXT,
    candidates TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    attempt_started_at INTEGER,
    attempt_ended_at INTEGER,
    not_before INTEGER NOT NULL DEFAULT 0,
    wait_kind TEXT,
    wait_credential_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE INDEX deposits_state ON deposits (state, not_before);
CREATE INDEX deposits_sha256 ON deposits (sha256);
CREATE INDEX deposits_declaration ON deposits (siret, month, fraction);
CREATE UNIQUE INDEX deposits_idflux ON deposits (idflux);
CREATE TABLE deposit_accounts (
    siret TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    updated_at INTEGER NOT NULL
);
"#,
    ),
    // Automatic mode (issue 12 item 6): where a file of the deposit folder waits.
    Step::Sql(
        r#"
ALTER TABLE deposits ADD COLUMN source_path TEXT;
"#,
    ),
    // Returns and CRM PAS (issue 13): each deposit's following, the returns and their
    // documents, anomalies, CRMs and their rates, the per-declarant scan cursor.
    Step::Sql(
        r#"
CREATE TABLE return_follows (
    deposit_id INTEGER PRIMARY KEY REFERENCES deposits(id) ON DELETE CASCADE,
    idflux TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    siret TEXT NOT NULL,
    month TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    until_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    phase_started_at INTEGER NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_polled_at INTEGER,
    message TEXT NOT NULL DEFAULT '',
    lease_owner TEXT,
    lease_until INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX return_follows_due ON return_follows (state, next_at);
CREATE TABLE dsn_returns (
    id INTEGER PRIMARY KEY,
    idflux TEXT NOT NULL,
    deposit_id INTEGER REFERENCES deposits(id) ON DELETE SET NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    nature INTEGER NOT NULL,
    statut TEXT NOT NULL,
    publication TEXT NOT NULL,
    production TEXT NOT NULL,
    return_id TEXT NOT NULL,
    url TEXT NOT NULL,
    version INTEGER NOT NULL,
    overwritten_at INTEGER,
    seen_at INTEGER NOT NULL,
    download_state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_at INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    file_path TEXT,
    sha256 TEXT,
    bytes INTEGER,
    downloaded_at INTEGER,
    read_status TEXT,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE UNIQUE INDEX dsn_returns_key ON dsn_returns (idflux, nature, return_id);
CREATE INDEX dsn_returns_deposit ON dsn_returns (deposit_id);
CREATE INDEX dsn_returns_download ON dsn_returns (download_state, next_try_at);
CREATE TABLE return_anomalies (
    return_row INTEGER NOT NULL REFERENCES dsn_returns(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    rubric TEXT NOT NULL,
    category TEXT NOT NULL,
    PRIMARY KEY (return_row, seq)
);
CREATE TABLE pas_crms (
    id INTEGER PRIMARY KEY,
    return_row INTEGER NOT NULL UNIQUE REFERENCES dsn_returns(id) ON DELETE CASCADE,
    siret TEXT NOT NULL,
    identifiant TEXT NOT NULL,
    available_on TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    file_name TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX pas_crms_siret ON pas_crms (siret);
CREATE TABLE pas_rates (
    crm_id INTEGER NOT NULL REFERENCES pas_crms(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    siret TEXT NOT NULL,
    nir_or_ntt TEXT NOT NULL,
    ntt INTEGER NOT NULL,
    matricule TEXT NOT NULL,
    rate TEXT NOT NULL,
    rate_hundredths INTEGER,
    future_rate TEXT NOT NULL,
    future_rate_hundredths INTEGER,
    future_effective_on TEXT NOT NULL,
    PRIMARY KEY (crm_id, seq)
);
CREATE INDEX pas_rates_siret ON pas_rates (siret);
CREATE TABLE return_scans (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    cursor_at INTEGER NOT NULL,
    window_minutes INTEGER NOT NULL,
    announced_minutes INTEGER,
    next_at INTEGER NOT NULL DEFAULT 0,
    last_scan_at INTEGER,
    message TEXT NOT NULL DEFAULT '',
    lease_owner TEXT,
    lease_until INTEGER,
    updated_at INTEGER NOT NULL
);
"#,
    ),
    // The deposit queue taken in id order (issue 12): `(state, id)` instead of
    // `(state, not_before)`, so that the oldest due deposits of a state are read in index
    // order and the search stops at the first few, however long the queue or the history;
    // with the old index the planner read every row of the state, then sorted them.
    Step::Sql(
        r#"
DROP INDEX deposits_state;
CREATE INDEX deposits_queue ON deposits (state, id);
"#,
    ),
    // A rejected deposit keeps the ARE's first anomalies only: how many more it listed,
    // so that a reader of the record knows the list is incomplete.
    Step::Sql(
        r#"
ALTER TABLE deposits ADD COLUMN anomalies_omitted INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    // The deposits whose file waits in the deposit folder, looked for at each look at the
    // folder and for each file found there: an index of those only, instead of reading
    // every deposit ever made each time.
    Step::Sql(DEPOSITS_SOURCE),
];

/// Both engines' step for [`Store::deposits_with_source`] and [`Store::deposit_by_source`].
///
/// [`Store::deposits_with_source`]: super::Store::deposits_with_source
/// [`Store::deposit_by_source`]: super::Store::deposit_by_source
const DEPOSITS_SOURCE: &str = r#"
CREATE INDEX deposits_source ON deposits (source_path) WHERE source_path IS NOT NULL;
"#;

const POSTGRES: &[Step] = &[
    Step::Sql(
        r#"
CREATE TABLE installation (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    installation_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('administrator', 'user')),
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT
);
CREATE UNIQUE INDEX users_name_nocase ON users (lower(name));
CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE credentials (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    siret TEXT NOT NULL,
    nom TEXT NOT NULL,
    prenom TEXT NOT NULL,
    password_key_id TEXT NOT NULL,
    password_nonce BYTEA NOT NULL,
    password_ct BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    last_verified_at BIGINT,
    last_outcome TEXT,
    last_message TEXT,
    last_http_status BIGINT,
    last_realm TEXT,
    last_token_expires_at BIGINT,
    last_step TEXT,
    last_step_message TEXT,
    last_step_detail TEXT,
    last_step_address TEXT,
    last_step_tls_problem TEXT,
    last_step_http_status BIGINT,
    last_step_latency_ms BIGINT,
    last_input_problems TEXT
);
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);
"#,
    ),
    // DSN deposits (issue 12), as SQLite's step 5.
    Step::Sql(
        r#"
CREATE TABLE deposits (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    siret TEXT NOT NULL,
    month TEXT NOT NULL,
    nature TEXT NOT NULL,
    kind TEXT NOT NULL,
    fraction TEXT NOT NULL,
    essai_reel TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    message TEXT,
    idflux TEXT,
    anomalies TEXT,
    candidates TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    attempt_started_at BIGINT,
    attempt_ended_at BIGINT,
    not_before BIGINT NOT NULL DEFAULT 0,
    wait_kind TEXT,
    wait_credential_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE INDEX deposits_state ON deposits (state, not_before);
CREATE INDEX deposits_sha256 ON deposits (sha256);
CREATE INDEX deposits_declaration ON deposits (siret, month, fraction);
CREATE UNIQUE INDEX deposits_idflux ON deposits (idflux);
CREATE TABLE deposit_accounts (
    siret TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    updated_at BIGINT NOT NULL
);
"#,
    ),
    // As SQLite's step 6.
    Step::Sql(
        r#"
ALTER TABLE deposits ADD COLUMN source_path TEXT;
"#,
    ),
    // Returns and CRM PAS (issue 13), as SQLite's step 8.
    Step::Sql(
        r#"
CREATE TABLE return_follows (
    deposit_id BIGINT PRIMARY KEY REFERENCES deposits(id) ON DELETE CASCADE,
    idflux TEXT NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    siret TEXT NOT NULL,
    month TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    until_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    phase_started_at BIGINT NOT NULL,
    polls BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_polled_at BIGINT,
    message TEXT NOT NULL DEFAULT '',
    lease_owner TEXT,
    lease_until BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX return_follows_due ON return_follows (state, next_at);
CREATE TABLE dsn_returns (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    idflux TEXT NOT NULL,
    deposit_id BIGINT REFERENCES deposits(id) ON DELETE SET NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    nature BIGINT NOT NULL,
    statut TEXT NOT NULL,
    publication TEXT NOT NULL,
    production TEXT NOT NULL,
    return_id TEXT NOT NULL,
    url TEXT NOT NULL,
    version BIGINT NOT NULL,
    overwritten_at BIGINT,
    seen_at BIGINT NOT NULL,
    download_state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_try_at BIGINT NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    file_path TEXT,
    sha256 TEXT,
    bytes BIGINT,
    downloaded_at BIGINT,
    read_status TEXT,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE UNIQUE INDEX dsn_returns_key ON dsn_returns (idflux, nature, return_id);
CREATE INDEX dsn_returns_deposit ON dsn_returns (deposit_id);
CREATE INDEX dsn_returns_download ON dsn_returns (download_state, next_try_at);
CREATE TABLE return_anomalies (
    return_row BIGINT NOT NULL REFERENCES dsn_returns(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    rubric TEXT NOT NULL,
    category TEXT NOT NULL,
    PRIMARY KEY (return_row, seq)
);
CREATE TABLE pas_crms (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    return_row BIGINT NOT NULL UNIQUE REFERENCES dsn_returns(id) ON DELETE CASCADE,
    siret TEXT NOT NULL,
    identifiant TEXT NOT NULL,
    available_on TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    file_name TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX pas_crms_siret ON pas_crms (siret);
CREATE TABLE pas_rates (
    crm_id BIGINT NOT NULL REFERENCES pas_crms(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    siret TEXT NOT NULL,
    nir_or_ntt TEXT NOT NULL,
    ntt BIGINT NOT NULL,
    matricule TEXT NOT NULL,
    rate TEXT NOT NULL,
    rate_hundredths BIGINT,
    future_rate TEXT NOT NULL,
    future_rate_hundredths BIGINT,
    future_effective_on TEXT NOT NULL,
    PRIMARY KEY (crm_id, seq)
);
CREATE INDEX pas_rates_siret ON pas_rates (siret);
CREATE TABLE return_scans (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    cursor_at BIGINT NOT NULL,
    window_minutes BIGINT NOT NULL,
    announced_minutes BIGINT,
    next_at BIGINT NOT NULL DEFAULT 0,
    last_scan_at BIGINT,
    message TEXT NOT NULL DEFAULT '',
    lease_owner TEXT,
    lease_until BIGINT,
    updated_at BIGINT NOT NULL
);
"#,
    ),
    // As SQLite's step 8.
    Step::Sql(
        r#"
DROP INDEX deposits_state;
CREATE INDEX deposits_queue ON deposits (state, id);
"#,
    ),
    // Each verification rewrites its account's row: pages left half free let PostgreSQL
    // write the new version beside the old one (a "HOT" update, no index entry to add),
    // instead of a page full from the start sending each new version elsewhere with a new
    // entry in the primary key's index, which the vacuum must then clean.
    Step::Sql(
        r#"
ALTER TABLE credentials SET (fillfactor = 50);
"#,
    ),
    // As SQLite's step 9.
    Step::Sql(
        r#"
ALTER TABLE deposits ADD COLUMN anomalies_omitted BIGINT NOT NULL DEFAULT 0;
"#,
    ),
    // The queues' searches ("the oldest due deposit", "the oldest return to download")
    // on indexes holding only what is due. A prepared statement's generic plan, once the
    // table holds mostly settled rows, walked the primary key from the oldest and read
    // every settled row before the first due one (3 ms per claim at 3,000 deposits,
    // growing with them); these stay as small as the queues. The queries name their
    // states as literals, so that the planner sees they are within each index. (SQLite
    // finds the first due row by `deposits_queue`, as its plans are made per statement.)
    Step::Sql(
        r#"
CREATE INDEX deposits_due ON deposits (id)
    WHERE state IN ('checked', 'queued', 'waiting', 'uncertain');
CREATE INDEX dsn_returns_to_download ON dsn_returns (id)
    WHERE download_state IN ('pending', 'failed') AND overwritten_at IS NULL;
"#,
    ),
    // One partial index per queue instead of one for the four: the search of one state
    // ("the oldest uncertain deposit", run at every claim and empty most of the time)
    // read each row of the other queues on the shared index to test its state, all the
    // queued deposits at every claim (with the claim's semi-join, mended at the same
    // time, 0.9 ms a claim with a few hundred queued: three quarters of the server's time
    // in the deposit bench). Each index holds its state's rows only: the search starts at
    // its first entry.
    Step::Sql(
        r#"
DROP INDEX deposits_due;
CREATE INDEX deposits_due_checked ON deposits (id) WHERE state = 'checked';
CREATE INDEX deposits_due_queued ON deposits (id) WHERE state = 'queued';
CREATE INDEX deposits_due_waiting ON deposits (id) WHERE state = 'waiting';
CREATE INDEX deposits_due_uncertain ON deposits (id) WHERE state = 'uncertain';
"#,
    ),
    // As SQLite's step 10.
    Step::Sql(DEPOSITS_SOURCE),
];

/// Brings the schema of `conn` up to this program's version.
pub(super) fn migrate(conn: &mut Conn) -> anyhow::Result<()> {
    let (steps, engine) = match conn {
        Conn::Sqlite(_) => (SQLITE, "sqlite"),
        Conn::Postgres { .. } => (POSTGRES, "postgres"),
    };
    let version = conn.transaction(|db| {
        db.lock_key("schema")?;
        current_version(db)
    })?;
    anyhow::ensure!(
        version <= steps.len(),
        "the database has schema version {version}, newer than this program knows ({})",
        steps.len()
    );
    for (i, step) in steps.iter().enumerate().skip(version) {
        conn.transaction(|db| {
            // Two orchestrators starting at once on one database: the second waits for the
            // first's step, then finds it done.
            db.lock_key("schema")?;
            if current_version(db)? > i {
                return Ok(());
            }
            match step {
                Step::Sql(sql) => db.batch(sql)?,
                Step::SqlThen(sql, convert) => {
                    db.batch(sql)?;
                    convert(db)?;
                }
            }
            set_version(db, i + 1)
        })
        .with_context(|| format!("migrating the {engine} database to version {}", i + 1))?;
        tracing::info!(engine, version = i + 1, "database migrated");
    }
    Ok(())
}

fn current_version(db: &mut Db<'_>) -> anyhow::Result<usize> {
    if db.is_postgres() {
        db.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let v: Option<i64> = db
            .query_opt("SELECT max(version) FROM schema_version", &[], |r| {
                r.get::<Option<i64>>(0)
            })?
            .flatten();
        Ok(v.unwrap_or(0) as usize)
    } else {
        let v: i64 = db.query_value("PRAGMA user_version", &[])?;
        Ok(v as usize)
    }
}

fn set_version(db: &mut Db<'_>, version: usize) -> anyhow::Result<()> {
    if db.is_postgres() {
        db.execute("DELETE FROM schema_version", &[])?;
        db.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(version as i64)],
        )?;
    } else {
        // PRAGMA takes no parameters; `version` is ours, not input.
        db.batch(&format!("PRAGMA user_version = {version}"))?;
    }
    Ok(())
}

/// The schema version this program writes, for the engine of `conn`.
#[cfg(test)]
pub(super) fn latest(postgres: bool) -> usize {
    if postgres {
        POSTGRES.len()
    } else {
        SQLITE.len()
    }
}
