//! The orchestrator's database: the only persistent state of an installation, on SQLite
//! (the embedded default, one file in the data directory) or PostgreSQL (*réseau* mode:
//! several workstations on one database server), chosen by [`DatabaseUrl`].
//!
//! Each area's persistence is a set of typed functions on [`Store`], one module per area
//! (`users`, `sessions`, `credentials`, `secrets`, `records`…); they own their SQL and
//! their transactions, and take and return domain values. Every call runs on the
//! blocking pool, so the async runtime never waits on the disk or the database server.
//!
//! Invariants: no SQL, database crate or connection outside this module; a domain value
//! is stored as columns (or, for a settings record, as the JSON of its typed record),
//! never as an encoded proto message; both engines answer every function alike (the
//! tests run on both).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::Context;

mod board;
mod copy;
// Its column lists (`identity_columns!`) serve the deposits' queries too.
#[macro_use]
mod credentials;
mod deposits;
mod engine;
mod installation;
mod migrations;
mod records;
mod returns;
mod secrets;
mod sessions;
mod users;

pub use board::RateRow;
pub use copy::{CopyReport, copy_all};
pub use credentials::{CredentialRow, NewIdentity, VerificationWrite};
pub use deposits::{AccountFacts, Claim, Duplicate, Transition};
pub use records::{InstalledVersion, Record};
pub use returns::LeaseOf;
pub use secrets::AllSealed;
pub use users::{Added, InUse, Removed, UserRow};

use engine::{Conn, Db};

/// Where the database is: a SQLite file or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/dbname`: may hold a password, so it never
    /// prints whole (see `Display`).
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://…` or `postgresql://…` for PostgreSQL; `sqlite://PATH` or a plain path
    /// for SQLite.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            s.parse::<postgres::Config>()
                .map_err(|e| format!("adresse PostgreSQL illisible : {e}"))?;
            return Ok(Self::Postgres(s.to_owned()));
        }
        let path = s.strip_prefix("sqlite://").unwrap_or(s);
        if path.is_empty() || s.contains("://") && !s.starts_with("sqlite://") {
            return Err(format!(
                "« {} » n'est pas une base de données connue : indiquez postgres://… ou le chemin d'un fichier SQLite",
                redact(s)
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }
}

/// The URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Self::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Sqlite(p) => s.serialize_str(&format!("sqlite://{}", p.display())),
            Self::Postgres(u) => s.serialize_str(u),
        }
    }
}

impl<'de> serde::Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The database of an installation; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Shared>,
    engine: Engine,
}

/// How many connections a store holds at most on PostgreSQL. Several transactions then
/// run at once (a deposit's commit, a front-end's read, another deposit's claim) and the
/// server writes their commits to its log together, instead of each waiting for the
/// one before. SQLite keeps one: its writers take turns on the file anyway, and most of
/// its commits cost no `fsync` of their own (`synchronous = NORMAL`; those of a
/// deposit's steps do, [`Store::write_durably`]).
///
/// On PostgreSQL, transactions of one orchestrator may thus overlap as those of several
/// orchestrators on one database always could: a transaction that reads, then writes what
/// it read decides on, takes a lock first ([`engine::Db::lock_key`],
/// [`engine::Db::lock_rows`]) or writes with a conditional statement.
pub const POSTGRES_CONNECTIONS: usize = 4;

/// The connections, each taken by one call at a time, and where they lead (to connect
/// again to a PostgreSQL server that restarted).
struct Shared {
    url: DatabaseUrl,
    pool: Mutex<Pool>,
    /// Signalled when a connection is given back or closed.
    freed: Condvar,
}

struct Pool {
    idle: Vec<Conn>,
    /// Connections open, idle or taken.
    open: usize,
    max: usize,
}

impl Shared {
    /// An idle connection, or a new one while there are fewer than `max`; else waits for
    /// one to be given back.
    fn take(self: &Arc<Self>) -> anyhow::Result<Taken> {
        let mut pool = self
            .pool
            .lock()
            .map_err(|_| anyhow::anyhow!("database lock poisoned"))?;
        loop {
            if let Some(conn) = pool.idle.pop() {
                drop(pool);
                // A server that restarted closed our connection: the call that saw it
                // failed, this one connects again.
                if let Conn::Postgres { client, .. } = &conn
                    && client.is_closed()
                {
                    tracing::warn!("database connection lost, connecting again");
                    drop(conn);
                    return self.open_new();
                }
                return Ok(Taken {
                    shared: self.clone(),
                    conn: Some(conn),
                });
            }
            if pool.open < pool.max {
                pool.open += 1;
                drop(pool);
                return self.open_new();
            }
            pool = self
                .freed
                .wait(pool)
                .map_err(|_| anyhow::anyhow!("database lock poisoned"))?;
        }
    }

    /// A new connection in a place already counted in `open` (given up if it fails).
    fn open_new(self: &Arc<Self>) -> anyhow::Result<Taken> {
        let mut taken = Taken {
            shared: self.clone(),
            conn: None,
        };
        taken.conn = Some(Store::connect(&self.url)?);
        Ok(taken)
    }
}

/// A connection taken from the pool, given back when dropped (closed instead when its
/// server closed it, or when the call panicked with it).
struct Taken {
    shared: Arc<Shared>,
    conn: Option<Conn>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        let keep = self.conn.take().filter(|c| match c {
            Conn::Sqlite(_) => true,
            Conn::Postgres { client, .. } => !client.is_closed() && !std::thread::panicking(),
        });
        let Ok(mut pool) = self.shared.pool.lock() else {
            return;
        };
        match keep {
            Some(conn) => pool.idle.push(conn),
            None => pool.open -= 1,
        }
        drop(pool);
        self.shared.freed.notify_one();
    }
}

/// Closes a connection. PostgreSQL's client owns a small runtime of its own, which must
/// not be dropped on an async worker thread: the last store handle may go anywhere, so a
/// PostgreSQL connection is closed on a thread of its own.
fn drop_conn(conn: Conn) {
    if let conn @ Conn::Postgres { .. } = conn {
        let _ = std::thread::Builder::new()
            .name("db-close".into())
            .spawn(move || drop(conn));
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(pool) = self.pool.get_mut() {
            pool.idle.drain(..).for_each(drop_conn);
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let url = url.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&url))
            .await
            .context("database task")?
    }

    /// Opens the SQLite database at `path` (tests, tools).
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Self> {
        Self::open(&DatabaseUrl::Sqlite(path.to_owned())).await
    }

    fn open_blocking(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let mut conn = Self::connect(url)?;
        migrations::migrate(&mut conn)?;
        let max = match url.engine() {
            Engine::Sqlite => 1,
            Engine::Postgres => POSTGRES_CONNECTIONS,
        };
        Ok(Self {
            conn: Arc::new(Shared {
                url: url.clone(),
                pool: Mutex::new(Pool {
                    idle: vec![conn],
                    open: 1,
                    max,
                }),
                freed: Condvar::new(),
            }),
            engine: url.engine(),
        })
    }

    fn connect(url: &DatabaseUrl) -> anyhow::Result<Conn> {
        Ok(match url {
            DatabaseUrl::Sqlite(path) => {
                // Created private: it holds password hashes and sealed secrets.
                if !path.exists() {
                    iea_runtime::pki::write_file(path, b"", true)?;
                }
                let conn = rusqlite::Connection::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "foreign_keys", "ON")?;
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Conn::Sqlite(conn)
            }
            DatabaseUrl::Postgres(u) => {
                let mut config: postgres::Config = u.parse().context("database url")?;
                if config.get_connect_timeout().is_none() {
                    config.connect_timeout(std::time::Duration::from_secs(10));
                }
                config.application_name("iea-orchestrator");
                let client = config
                    .connect(postgres::NoTls)
                    .with_context(|| format!("connecting to {url}"))?;
                Conn::Postgres {
                    client,
                    statements: Default::default(),
                }
            }
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Runs `f` in one transaction, on the blocking pool.
    async fn write<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        self.run(move |c| c.transaction(f)).await
    }

    /// [`Self::write`], committed on disk before it returns, even against a power cut
    /// ([`Conn::durably`]): for a commit that something outside the database follows
    /// from (a deposit `sending` before its file leaves, a deposit recorded before its
    /// sender is told).
    async fn write_durably<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        self.run(move |c| c.durably(|c| c.transaction(f))).await
    }

    /// Runs the reads of `f` in one transaction, on the blocking pool: one snapshot, and
    /// on SQLite one lock for all its statements instead of a lock taken and released by
    /// each (a `fcntl` pair per statement, which cost more than a lookup by key).
    async fn read_together<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        self.run(move |c| c.read_transaction(f)).await
    }

    /// Runs `f` without a transaction (reads, single statements), on the blocking pool.
    async fn read<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        self.run(move |c| c.autocommit(f)).await
    }

    async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> anyhow::Result<T> + Send + 'static,
    {
        let shared = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut taken = shared.take()?;
            let conn = taken
                .conn
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("database closed"))?;
            f(conn)
        })
        .await
        .context("database task")?
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh database for a unit test, on the engine `IEA_TEST_DATABASE_URL` names
    //! (a PostgreSQL server: a new database is created on it for each test) or SQLite.

    use super::*;
    use crate::users::{InstallationMode, Role};

    /// A *réseau* installation with its first account, « Administrateur » (its id).
    pub async fn reseau_with_administrator(s: &Store) -> i64 {
        let id = s
            .insert_first_user("Administrateur", Role::Administrator, "h", 1)
            .await
            .unwrap();
        assert!(
            s.set_installation_mode(InstallationMode::Reseau)
                .await
                .unwrap()
        );
        id
    }

    /// Accounts of role user named `names`, added; their ids in that order.
    pub async fn add_users(s: &Store, names: &[&str]) -> Vec<i64> {
        let mut ids = Vec::new();
        for name in names {
            assert_eq!(
                s.add_user(name, Role::User, "h", 1).await.unwrap(),
                Added::Added
            );
            ids.push(s.user_by_name(name).await.unwrap().unwrap().id);
        }
        ids
    }

    /// Keeps what the test's database needs alive.
    pub struct TestDb {
        pub store: Store,
        pub url: DatabaseUrl,
        pub dir: tempfile::TempDir,
    }

    pub async fn store() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let url = tokio::task::spawn_blocking(move || test_url(&path))
            .await
            .unwrap();
        let store = Store::open(&url).await.unwrap();
        TestDb { store, url, dir }
    }

    /// Another orchestrator's transaction on the database at `url`, caught in the middle:
    /// on a connection of its own and a thread of its own, runs `f` in a transaction, then
    /// holds it open (its locks held, its writes unseen) for `hold` before committing.
    /// Returns once `f` has run; the thread gives `f`'s answer once committed.
    pub fn other_transaction<T: Send + 'static>(
        url: &DatabaseUrl,
        hold: std::time::Duration,
        f: impl FnOnce(&mut Db<'_>) -> anyhow::Result<T> + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let url = url.clone();
        let (ran, has_run) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut conn = Store::connect(&url).expect("a second connection");
            let out = conn
                .transaction(|db| {
                    let out = f(db)?;
                    ran.send(()).expect("the test waits");
                    std::thread::sleep(hold);
                    Ok(out)
                })
                .expect("the other transaction");
            drop(conn);
            out
        });
        has_run.recv().expect("the other transaction ran");
        thread
    }

    /// A new, empty database on the engine the test run was given (blocking).
    pub fn test_url(dir: &Path) -> DatabaseUrl {
        match std::env::var("IEA_TEST_DATABASE_URL") {
            Ok(server) if !server.is_empty() => {
                DatabaseUrl::Postgres(create_database_for_tests(&server).unwrap())
            }
            _ => DatabaseUrl::Sqlite(dir.join("iea.db")),
        }
    }
}

/// Creates a new, uniquely named database on the PostgreSQL server at `server_url` (whose
/// path names an existing database to connect to) and returns its URL. For test harnesses:
/// each test gets a database of its own.
pub fn create_database_for_tests(server_url: &str) -> anyhow::Result<String> {
    use rand::Rng;
    let suffix: u64 = rand::thread_rng().r#gen();
    let name = format!("iea_test_{suffix:016x}");
    let config: postgres::Config = server_url.parse().context("test database url")?;
    let mut client = config
        .connect(postgres::NoTls)
        .context("test database server")?;
    client.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    Ok(match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn urls_are_read_and_a_password_never_prints() {
        let u = DatabaseUrl::parse("postgres://iea:s3cret@db.local:5432/iea").unwrap();
        assert_eq!(u.engine(), Engine::Postgres);
        assert_eq!(u.to_string(), "postgres://iea:***@db.local:5432/iea");
        assert!(!format!("{u:?}").contains("s3cret"));
        assert_eq!(
            DatabaseUrl::parse("/var/lib/iea/iea.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/iea/iea.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert!(DatabaseUrl::parse("mysql://x/y").is_err());
        assert!(DatabaseUrl::parse("").is_err());
    }
}
