//! The database of a test stack: SQLite by default, PostgreSQL when
//! `IEA_TEST_DATABASE_URL` names a server (`.ci/run` starts one and runs the suites on both
//! engines; `tests/scripts/postgres.sh` starts one by hand).

use iea_orchestrator::store::DatabaseUrl;

/// The database of a new test stack: a fresh one on the PostgreSQL server that
/// `IEA_TEST_DATABASE_URL` names; otherwise `None`, SQLite in the stack's data directory.
/// A restart on the same data directory keeps the database (the stack records its choice).
pub async fn test_database() -> Option<DatabaseUrl> {
    let url = tokio::task::spawn_blocking(test_database_url)
        .await
        .expect("database task")?;
    Some(DatabaseUrl::Postgres(url))
}

/// The same from synchronous code, as the text `iea stack up --database` takes: the URL of
/// a fresh database on the server of `IEA_TEST_DATABASE_URL`, or `None` without one.
pub fn test_database_url() -> Option<String> {
    let server = std::env::var("IEA_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(
        iea_orchestrator::store::create_database_for_tests(&server)
            .expect("a test database on the PostgreSQL server of IEA_TEST_DATABASE_URL"),
    )
}
