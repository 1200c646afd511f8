//! The two database engines behind one small query interface, so that each query of the
//! store is written once.
//!
//! SQL is written in the dialect both engines share, with PostgreSQL's `$1, $2…`
//! placeholders (turned into SQLite's `?1, ?2…` for SQLite). What differs (column types,
//! identity columns) stays in the migrations of each engine. Values cross as the types
//! both drivers know: `i64` (`BIGINT`), `String`/`&str` (`TEXT`), `Vec<u8>`/`&[u8]`
//! (`BLOB`/`BYTEA`) and `Option`s of them; a parameter PostgreSQL cannot type from its
//! context is written `CAST($n AS BIGINT)`.
//!
//! Invariant: nothing outside `store/` sees this module, a connection or a row.

use std::collections::HashMap;

use anyhow::Context;

/// A value both drivers can bind.
pub(crate) trait Value: rusqlite::ToSql + postgres::types::ToSql + Sync {}
impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync + ?Sized> Value for T {}

/// A value both drivers can read.
pub(crate) trait FromValue:
    rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>
{
}
impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> FromValue for T {}

/// The open connection of one engine.
#[allow(
    clippy::large_enum_variant,
    reason = "one connection per store, never moved"
)]
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres {
        client: postgres::Client,
        /// Prepared once per query text: a prepare is a round trip to the server.
        statements: HashMap<&'static str, postgres::Statement>,
    },
}

impl Conn {
    /// Runs `f` in a transaction that may write, committed when `f` returns `Ok`, rolled
    /// back otherwise. On SQLite it begins with the database's write lock (`BEGIN
    /// IMMEDIATE`, waiting for another connection's writer at most the busy timeout): what
    /// it reads is then what it writes over, even with another connection on the file.
    pub(crate) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Db<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.transaction_as(rusqlite::TransactionBehavior::Immediate, f)
    }

    /// Runs the reads of `f` in one transaction (one snapshot); on SQLite without the
    /// write lock.
    pub(crate) fn read_transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Db<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.transaction_as(rusqlite::TransactionBehavior::Deferred, f)
    }

    fn transaction_as<T>(
        &mut self,
        sqlite: rusqlite::TransactionBehavior,
        f: impl FnOnce(&mut Db<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        match self {
            Conn::Sqlite(conn) => {
                let tx = conn.transaction_with_behavior(sqlite)?;
                let out = f(&mut Db(Inner::Sqlite(&tx)))?;
                tx.commit()?;
                Ok(out)
            }
            Conn::Postgres { client, statements } => {
                let mut db = Db(Inner::PgTx(client.transaction()?, statements));
                let out = f(&mut db)?;
                if let Inner::PgTx(tx, _) = db.0 {
                    tx.commit()?;
                }
                Ok(out)
            }
        }
    }

    /// Runs `f` (a transaction, or statements committing on their own) with each of its
    /// commits on disk before it returns, even against a power cut: on SQLite, whose
    /// other commits wait for the next checkpoint to be synced (`synchronous = NORMAL`:
    /// consistent, but the last ones may be lost with the machine's power), the log is
    /// synced at each commit of `f` (`synchronous = FULL`), then the connection is set
    /// back. PostgreSQL syncs every commit already.
    pub(crate) fn durably<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if let Conn::Sqlite(conn) = self {
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let out = f(self);
        if let Conn::Sqlite(conn) = self {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        out
    }

    /// Runs `f` outside a transaction: each statement commits on its own. For reads and
    /// single writes, where a transaction would only add round trips.
    pub(crate) fn autocommit<T>(
        &mut self,
        f: impl FnOnce(&mut Db<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        match self {
            Conn::Sqlite(conn) => f(&mut Db(Inner::Sqlite(conn))),
            Conn::Postgres { client, statements } => {
                f(&mut Db(Inner::PgClient(client, statements)))
            }
        }
    }
}

/// A connection or a transaction of either engine, as the store's queries see it.
pub(crate) struct Db<'a>(Inner<'a>);

type Statements = HashMap<&'static str, postgres::Statement>;

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    PgClient(&'a mut postgres::Client, &'a mut Statements),
    PgTx(postgres::Transaction<'a>, &'a mut Statements),
}

/// A statement of [`Db::prepare`], run as many times as needed.
pub(crate) struct Prepared<'d, 'a>(Prep<'d, 'a>);

enum Prep<'d, 'a> {
    Sqlite(rusqlite::CachedStatement<'a>),
    /// PostgreSQL keeps its prepared statements per connection already: each run goes
    /// through [`Db`].
    Other(&'d mut Db<'a>, &'static str),
}

impl Prepared<'_, '_> {
    /// [`Db::execute`] of the prepared statement.
    pub(crate) fn execute(&mut self, args: &[&dyn Value]) -> anyhow::Result<u64> {
        match &mut self.0 {
            Prep::Sqlite(stmt) => Ok(stmt.execute(sqlite_args(args).as_slice())? as u64),
            Prep::Other(db, sql) => db.execute(sql, args),
        }
    }

    /// [`Db::query_opt`] of the prepared statement.
    pub(crate) fn query_opt<T>(
        &mut self,
        args: &[&dyn Value],
        f: impl FnOnce(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        match &mut self.0 {
            Prep::Sqlite(stmt) => {
                let mut rows = stmt.query(sqlite_args(args).as_slice())?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)).map(Some),
                    None => Ok(None),
                }
            }
            Prep::Other(db, sql) => db.query_opt(sql, args, f),
        }
    }
}

/// One row of a result, of either engine.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0).
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> anyhow::Result<T> {
        match self {
            Row::Sqlite(r) => r.get(i).with_context(|| format!("column {i}")),
            Row::Postgres(r) => r.try_get(i).with_context(|| format!("column {i}")),
        }
    }
}

/// `$1` → `?1`: SQLite's numbered parameters. Translated once per query text and kept:
/// the texts are the store's `'static` literals (a few dozen in the binary, found by
/// address), so that a call pays neither the scan nor an allocation.
fn sqlite_sql(sql: &'static str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static TRANSLATED: OnceLock<Mutex<HashMap<(usize, usize), &'static str>>> = OnceLock::new();
    let key = (sql.as_ptr() as usize, sql.len());
    let mut translated = TRANSLATED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    translated
        .entry(key)
        .or_insert_with(|| Box::leak(sql.replace('$', "?").into_boxed_str()))
}

fn pg_args<'v>(args: &[&'v dyn Value]) -> Vec<&'v (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| *a as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

fn sqlite_args<'v>(args: &[&'v dyn Value]) -> Vec<&'v dyn rusqlite::ToSql> {
    args.iter().map(|a| *a as &dyn rusqlite::ToSql).collect()
}

/// The statement for `sql`, prepared on first use.
fn prepared(
    client: &mut impl postgres::GenericClient,
    statements: &mut Statements,
    sql: &'static str,
) -> anyhow::Result<postgres::Statement> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = client
        .prepare(sql)
        .with_context(|| format!("preparing {sql}"))?;
    statements.insert(sql, s.clone());
    Ok(s)
}

impl<'a> Db<'a> {
    pub(crate) fn is_postgres(&self) -> bool {
        !matches!(self.0, Inner::Sqlite(_))
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        args: &[&dyn Value],
    ) -> anyhow::Result<u64> {
        let n = match &mut self.0 {
            Inner::Sqlite(c) => c
                .prepare_cached(sqlite_sql(sql))?
                .execute(sqlite_args(args).as_slice())? as u64,
            Inner::PgClient(c, st) => {
                let s = prepared(&mut **c, st, sql)?;
                c.execute(&s, &pg_args(args))?
            }
            Inner::PgTx(t, st) => {
                let s = prepared(t, st, sql)?;
                t.execute(&s, &pg_args(args))?
            }
        };
        Ok(n)
    }

    /// Every row of a query, each through `f`.
    pub(crate) fn query<T>(
        &mut self,
        sql: &'static str,
        args: &[&dyn Value],
        mut f: impl FnMut(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        match &mut self.0 {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sqlite_sql(sql))?;
                let mut rows = stmt.query(sqlite_args(args).as_slice())?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Inner::PgClient(c, st) => {
                let s = prepared(&mut **c, st, sql)?;
                c.query(&s, &pg_args(args))?
                    .iter()
                    .map(|r| f(&Row::Postgres(r)))
                    .collect()
            }
            Inner::PgTx(t, st) => {
                let s = prepared(t, st, sql)?;
                t.query(&s, &pg_args(args))?
                    .iter()
                    .map(|r| f(&Row::Postgres(r)))
                    .collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt<T>(
        &mut self,
        sql: &'static str,
        args: &[&dyn Value],
        f: impl FnOnce(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        let mut f = Some(f);
        let mut rows = self.query(sql, args, |r| match f.take() {
            Some(f) => f(r).map(Some),
            None => Ok(None),
        })?;
        Ok(if rows.is_empty() {
            None
        } else {
            rows.swap_remove(0)
        })
    }

    /// The one row of a query that always returns one, through `f`.
    pub(crate) fn query_one<T>(
        &mut self,
        sql: &'static str,
        args: &[&dyn Value],
        f: impl FnOnce(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.query_opt(sql, args, f)?
            .with_context(|| format!("no row from {sql}"))
    }

    /// The one value of a query that always returns one row (`SELECT count(*) …`).
    pub(crate) fn query_value<T: FromValue>(
        &mut self,
        sql: &'static str,
        args: &[&dyn Value],
    ) -> anyhow::Result<T> {
        self.query_opt(sql, args, |r| r.get(0))?
            .with_context(|| format!("no row from {sql}"))
    }

    /// `sql` ready to run many times in this call (one statement per account of a
    /// batch): on SQLite the statement is taken from the cache once, not per run (a
    /// lookup that hashes the whole text, then a reset, each time).
    pub(crate) fn prepare<'d>(&'d mut self, sql: &'static str) -> anyhow::Result<Prepared<'d, 'a>> {
        if let Inner::Sqlite(c) = &self.0 {
            let c: &'a rusqlite::Connection = c;
            return Ok(Prepared(Prep::Sqlite(c.prepare_cached(sqlite_sql(sql))?)));
        }
        Ok(Prepared(Prep::Other(self, sql)))
    }

    /// A query only PostgreSQL runs (array parameters: `= ANY($1)`), for the few calls
    /// where one round trip instead of many matters; the caller has a SQLite path.
    pub(crate) fn query_postgres<T>(
        &mut self,
        sql: &'static str,
        args: &[&(dyn postgres::types::ToSql + Sync)],
        mut f: impl FnMut(&Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        let rows = match &mut self.0 {
            Inner::Sqlite(_) => anyhow::bail!("a PostgreSQL query on SQLite: {sql}"),
            Inner::PgClient(c, st) => {
                let s = prepared(&mut **c, st, sql)?;
                c.query(&s, args)?
            }
            Inner::PgTx(t, st) => {
                let s = prepared(t, st, sql)?;
                t.query(&s, args)?
            }
        };
        rows.iter().map(|r| f(&Row::Postgres(r))).collect()
    }

    /// Holds the lock named `key` until the transaction ends, for a transaction that reads
    /// what decides its writes (is the name free, is this the last administrator, is the
    /// same declaration already recorded). On PostgreSQL a transaction-level advisory lock,
    /// which every connection of every orchestrator on the database respects (a key is a
    /// 64-bit number: the first eight bytes of the name's SHA-256); on SQLite nothing more
    /// is needed: a transaction that may write holds the database's write lock from its
    /// first statement ([`Conn::transaction`]).
    pub(crate) fn lock_key(&mut self, key: &str) -> anyhow::Result<()> {
        self.lock_keys(&[key])
    }

    /// [`Self::lock_key`] of each of `keys`, in one round trip. The keys are taken in a
    /// fixed order (their numbers sorted), so two transactions that ask for the same keys
    /// never hold one each and wait for the other's: both run this one statement with the
    /// same arguments, and PostgreSQL evaluates it the same way each time, whatever order
    /// it gives a target list's columns (in order, in practice).
    pub(crate) fn lock_keys(&mut self, keys: &[&str]) -> anyhow::Result<()> {
        use sha2::Digest;
        let mut numbers: Vec<i64> = keys
            .iter()
            .map(|key| {
                let digest = sha2::Sha256::digest(key.as_bytes());
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                i64::from_be_bytes(first)
            })
            .collect();
        numbers.sort_unstable();
        let sql = match numbers.len() {
            0 => return Ok(()),
            1 => "SELECT pg_advisory_xact_lock($1)",
            2 => "SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)",
            n => anyhow::bail!("{n} locks asked at once: at most 2"),
        };
        match &mut self.0 {
            Inner::Sqlite(_) => Ok(()),
            Inner::PgClient(..) => {
                anyhow::bail!("lock {keys:?} asked outside a transaction: it would not be held")
            }
            Inner::PgTx(t, st) => {
                let s = prepared(t, st, sql)?;
                let args: Vec<&dyn Value> = numbers.iter().map(|n| n as &dyn Value).collect();
                t.execute(&s, &pg_args(&args))?;
                Ok(())
            }
        }
    }

    /// Locks the rows `sql` (a `SELECT … FOR UPDATE`) selects until the transaction ends,
    /// so that a decision read from them holds when it is written: another transaction's
    /// write to them waits, then is judged on what this one left. PostgreSQL only; on
    /// SQLite nothing, as for [`Self::lock_key`].
    pub(crate) fn lock_rows(
        &mut self,
        sql: &'static str,
        args: &[&dyn Value],
    ) -> anyhow::Result<()> {
        match &mut self.0 {
            Inner::Sqlite(_) => Ok(()),
            Inner::PgClient(..) => {
                anyhow::bail!("rows locked outside a transaction: they would not be held")
            }
            Inner::PgTx(t, st) => {
                let s = prepared(t, st, sql)?;
                t.execute(&s, &pg_args(args))?;
                Ok(())
            }
        }
    }

    /// Runs statements without parameters, separated by `;` (migrations).
    pub(crate) fn batch(&mut self, sql: &str) -> anyhow::Result<()> {
        match &mut self.0 {
            Inner::Sqlite(c) => c.execute_batch(sql)?,
            Inner::PgClient(c, _) => c.batch_execute(sql)?,
            Inner::PgTx(t, _) => t.batch_execute(sql)?,
        }
        Ok(())
    }
}
