//! The store's own tests; each runs on the engine of the test run (SQLite, or the
//! PostgreSQL server `IEA_TEST_DATABASE_URL` names), except those about SQLite files.

use super::testing::{TestDb, store};
use super::*;
use crate::credentials::{FailedStep, Outcome, VerificationResult};
use crate::crypto::Sealed;
use crate::users::{InstallationMode, Role};

fn sealed(tag: u8) -> Sealed {
    Sealed {
        key_id: format!("k{tag}"),
        nonce: vec![tag; 24],
        ciphertext: vec![tag; 40],
    }
}

fn refused() -> VerificationResult {
    VerificationResult {
        outcome: Outcome::InvalidCredentials,
        message: "Identifiants refusés.".into(),
        http_status: Some(401),
        realm: Some("net-entreprises.fr".into()),
        token_expires_at: None,
        failed_step: None,
        identity_problems: Vec::new(),
    }
}

fn unreachable() -> VerificationResult {
    VerificationResult {
        outcome: Outcome::Unavailable,
        message: "Net-entreprises ne répond pas.".into(),
        http_status: None,
        realm: None,
        token_expires_at: None,
        failed_step: Some(FailedStep {
            address: "https://net-entreprises.invalid/".into(),
            step: iea_net::probe::Step::Tls,
            tls_problem: Some(iea_net::probe::TlsProblem::UnknownAuthority),
            http_status: None,
            latency: std::time::Duration::from_millis(12),
            message: "Le certificat n'est pas reconnu.".into(),
            detail: "invalid peer certificate".into(),
        }),
        identity_problems: vec![crate::credentials::IdentityProblem {
            field: "nom".into(),
            code: "leading_space".into(),
            message: "Le nom commence par une espace.".into(),
        }],
    }
}

/// An installation with an account holding an identity, a verification, a session, a
/// secret and settings records.
async fn populate(s: &Store) -> i64 {
    s.installation_id_or_create(|| "IEA-TEST".into(), 1)
        .await
        .unwrap();
    s.insert_first_user("Administrateur", Role::Administrator, "hash-a", 1)
        .await
        .unwrap();
    s.set_installation_mode(InstallationMode::Reseau)
        .await
        .unwrap();
    assert_eq!(
        s.add_user("Alice", Role::User, "hash-b", 2).await.unwrap(),
        Added::Added
    );
    let alice = s.user_by_name("alice").await.unwrap().unwrap().id;
    s.set_credentials(
        vec![NewIdentity {
            user_id: alice,
            siret: "78214563500010".into(),
            nom: "DUPONT".into(),
            prenom: "Marie".into(),
            sealed: sealed(7),
        }],
        1_000,
    )
    .await
    .unwrap();
    s.record_verifications(
        vec![VerificationWrite {
            user_id: alice,
            updated_at: 1_000,
            result: unreachable(),
        }],
        50,
    )
    .await
    .unwrap();
    s.open_session(alice, vec![1, 2, 3], 10, i64::MAX / 2)
        .await
        .unwrap();
    s.insert_secret("licence_key", sealed(9)).await.unwrap();
    s.save(InstalledVersion("3.00.72".parse().unwrap()))
        .await
        .unwrap();
    alice
}

#[tokio::test]
async fn migrations_are_applied_once_and_a_newer_schema_is_refused() {
    let TestDb {
        store,
        url,
        dir: _dir,
    } = store().await;
    drop(store);
    let again = Store::open(&url).await.unwrap();
    let postgres = again.engine() == Engine::Postgres;
    again
        .write(move |db| {
            let newer = migrations::latest(postgres) + 1;
            if db.is_postgres() {
                db.execute("UPDATE schema_version SET version = $1", &[&(newer as i64)])?;
            } else {
                db.batch(&format!("PRAGMA user_version = {newer}"))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    drop(again);
    let err = Store::open(&url).await.err().unwrap();
    assert!(format!("{err:#}").contains("newer"), "{err:#}");
}

#[tokio::test]
async fn names_are_one_account_whatever_their_case() {
    let db = store().await;
    let s = &db.store;
    s.insert_first_user("Administrateur", Role::Administrator, "h", 1)
        .await
        .unwrap();
    s.set_installation_mode(InstallationMode::Reseau)
        .await
        .unwrap();
    assert_eq!(
        s.add_user("Alice", Role::User, "h", 1).await.unwrap(),
        Added::Added
    );
    assert_eq!(
        s.add_user("ALICE", Role::User, "h", 1).await.unwrap(),
        Added::AlreadyExists
    );
    assert_eq!(
        s.user_by_name("aLiCe").await.unwrap().unwrap().name,
        "Alice"
    );
    let names: Vec<String> = s
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["Administrateur", "Alice"]);
    // Monoposte refused with two accounts; the last administrator cannot go.
    assert!(
        !s.set_installation_mode(InstallationMode::Monoposte)
            .await
            .unwrap()
    );
    let admin = s.user_by_name("administrateur").await.unwrap().unwrap();
    assert!(matches!(
        s.remove_user("Administrateur", 999).await.unwrap(),
        Removed::LastAdministrator
    ));
    assert!(matches!(
        s.remove_user("Alice", admin.id).await.unwrap(),
        Removed::Removed(_)
    ));
}

#[tokio::test]
async fn a_verification_is_kept_as_columns_and_only_for_the_identity_it_verified() {
    let db = store().await;
    let alice = populate(&db.store).await;
    let row = db.store.credential(alice).await.unwrap().unwrap();
    assert_eq!(row.last, Some((unreachable(), 50)));
    assert_eq!(row.consecutive_failures, 0);

    // Two refusals count; a result for an older identity does not.
    for at in [60, 70] {
        let write = VerificationWrite {
            user_id: alice,
            updated_at: 1_000,
            result: refused(),
        };
        db.store
            .record_verifications(vec![write], at)
            .await
            .unwrap();
    }
    let stale = VerificationWrite {
        user_id: alice,
        updated_at: 999,
        result: refused(),
    };
    db.store
        .record_verifications(vec![stale], 80)
        .await
        .unwrap();
    let row = db.store.credential(alice).await.unwrap().unwrap();
    assert_eq!(row.consecutive_failures, 2);
    assert_eq!(row.last, Some((refused(), 70)));

    // A new identity starts a new budget and forgets the old verification.
    let new = NewIdentity {
        user_id: alice,
        siret: "78214563500010".into(),
        nom: "DUPONT".into(),
        prenom: "Marie".into(),
        sealed: sealed(8),
    };
    db.store.set_credentials(vec![new], 2_000).await.unwrap();
    let row = db.store.credential(alice).await.unwrap().unwrap();
    assert_eq!((row.consecutive_failures, row.last), (0, None));
    assert_eq!(row.sealed, sealed(8));
}

#[tokio::test]
async fn everything_is_copied_into_an_empty_database_and_only_there() {
    let dir = tempfile::tempdir().unwrap();
    let from = Store::open_sqlite(&dir.path().join("from.db"))
        .await
        .unwrap();
    let alice = populate(&from).await;
    let to = store().await;

    let report = copy_all(&from, &to.store).await.unwrap();
    let count = |t: &str| report.tables.iter().find(|(n, _)| *n == t).unwrap().1;
    assert_eq!(
        (
            count("users"),
            count("credentials"),
            count("sessions"),
            count("secrets")
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(count("settings"), 2, "mode and version");
    let copied = to.store.credential(alice).await.unwrap().unwrap();
    assert_eq!(copied.last, Some((unreachable(), 50)));
    assert_eq!(copied.sealed, sealed(7), "sealed secrets copied sealed");
    assert_eq!(
        to.store.installation_mode().await.unwrap(),
        InstallationMode::Reseau
    );
    assert_eq!(
        to.store.load::<InstalledVersion>().await.unwrap(),
        Some(InstalledVersion("3.00.72".parse().unwrap()))
    );
    assert_eq!(
        to.store
            .installation_id_or_create(|| "other".into(), 5)
            .await
            .unwrap(),
        ("IEA-TEST".into(), false)
    );
    // The next account gets an id of its own.
    assert_eq!(
        to.store.add_user("Bob", Role::User, "h", 3).await.unwrap(),
        Added::Added
    );
    assert_eq!(to.store.users().await.unwrap().len(), 3);

    // Not into a database that holds anything: nothing is written.
    let err = copy_all(&from, &to.store).await.unwrap_err();
    assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    assert_eq!(to.store.users().await.unwrap().len(), 3);
}

#[tokio::test]
async fn migrating_a_sqlite_installation_leaves_its_file_untouched() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("iea.db");
    let from = Store::open_sqlite(&source).await.unwrap();
    populate(&from).await;
    drop(from);
    let digest = |p: &Path| sha2::Sha256::digest(std::fs::read(p).unwrap());
    let before = digest(&source);
    let to = store().await;

    let report = Store::migrate_sqlite(&source, &to.url).await.unwrap();
    assert_eq!(report.total(), 8);
    assert_eq!(digest(&source), before, "the source file is unchanged");
    assert!(
        !source.with_extension("migration-snapshot.db").exists(),
        "the snapshot is removed"
    );
    assert_eq!(to.store.users().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_version_3_database_gets_its_encoded_results_as_columns() {
    use iea_proto::agent::v1 as pb;
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iea.db");
    {
        // A database as versions before this one left it: schema 3, the result encoded.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let Step::Sql(v1) = &migrations::SQLITE[0] else {
            unreachable!()
        };
        let Step::Sql(v2) = &migrations::SQLITE[1] else {
            unreachable!()
        };
        let Step::Sql(v3) = &migrations::SQLITE[2] else {
            unreachable!()
        };
        conn.execute_batch(&format!("{v1}{v2}{v3}PRAGMA user_version = 3;"))
            .unwrap();
        let result = pb::VerifyResponse {
            outcome: pb::VerifyOutcome::PasswordExpired as i32,
            http_status: 401,
            realm: "Expiration du mot de passe".into(),
            message: "Le mot de passe a expiré.".into(),
            ..Default::default()
        };
        conn.execute_batch(
            "INSERT INTO users (id, name, role, password_hash, created_at) \
             VALUES (1, 'Alice', 'user', 'h', 1);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO credentials (user_id, siret, nom, prenom, password_key_id, \
             password_nonce, password_ct, updated_at, consecutive_failures, last_result, \
             last_verified_at) VALUES (1, '78214563500010', 'DUPONT', 'Marie', 'k', x'00', \
             x'00', 5, 1, ?1, 42)",
            [result.encode_to_vec()],
        )
        .unwrap();
    }
    let s = Store::open_sqlite(&path).await.unwrap();
    let row = s.credential(1).await.unwrap().unwrap();
    let (result, at) = row.last.unwrap();
    assert_eq!(at, 42);
    assert_eq!(result.outcome, Outcome::PasswordExpired);
    assert_eq!(result.http_status, Some(401));
    assert_eq!(result.realm.as_deref(), Some("Expiration du mot de passe"));
    assert_eq!(result.message, "Le mot de passe a expiré.");
    assert_eq!(row.consecutive_failures, 1, "the budget is kept as it was");
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('credentials')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!columns.iter().any(|c| c == "last_result"), "{columns:?}");
}

use migrations::Step;

#[tokio::test]
async fn a_postgresql_server_that_drops_the_connection_is_connected_to_again() {
    let db = store().await;
    if db.store.engine() != Engine::Postgres {
        // SQLite has no connection to lose.
        return;
    }
    populate(&db.store).await;
    // The server ends our session, as a restart does.
    let _ = db
        .store
        .read(|db| {
            db.query_opt("SELECT pg_terminate_backend(pg_backend_pid())", &[], |_| {
                Ok(())
            })
        })
        .await;
    let mut users = db.store.users().await;
    if users.is_err() {
        // The call that found the connection closed fails; the next one reconnects.
        users = db.store.users().await;
    }
    assert_eq!(users.unwrap().len(), 2);
}

#[tokio::test]
async fn many_verifications_recorded_at_once_are_kept_like_one_by_one() {
    let db = store().await;
    let s = &db.store;
    let alice = populate(s).await;
    assert_eq!(
        s.add_user("Bob", Role::User, "h", 3).await.unwrap(),
        Added::Added
    );
    let bob = s.user_by_name("bob").await.unwrap().unwrap().id;
    let identity = |user_id| NewIdentity {
        user_id,
        siret: "78214563500010".into(),
        nom: "MARTIN".into(),
        prenom: "Paul".into(),
        sealed: sealed(3),
    };
    s.set_credentials(vec![identity(bob)], 5_000).await.unwrap();
    let write = |user_id, updated_at, result| VerificationWrite {
        user_id,
        updated_at,
        result,
    };
    // Alice refused, Bob unreachable, and a result for Bob's older identity ignored.
    s.record_verifications(
        vec![
            write(alice, 1_000, refused()),
            write(bob, 5_000, unreachable()),
        ],
        90,
    )
    .await
    .unwrap();
    s.record_verifications(
        vec![write(bob, 4_000, refused()), write(alice, 999, refused())],
        95,
    )
    .await
    .unwrap();
    let a = s.credential(alice).await.unwrap().unwrap();
    assert_eq!((a.consecutive_failures, a.last), (1, Some((refused(), 90))));
    let b = s.credential(bob).await.unwrap().unwrap();
    assert_eq!(
        (b.consecutive_failures, b.last),
        (0, Some((unreachable(), 90)))
    );
    let rows = s.credentials_of(vec![bob, 999, alice]).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.as_ref().map(|r| r.user_id))
            .collect::<Vec<_>>(),
        [Some(bob), None, Some(alice)]
    );
}

/// On PostgreSQL a store runs several calls at once, on at most
/// [`POSTGRES_CONNECTIONS`] connections: a read goes on while other calls hold their
/// transactions open, and once every connection is held the next call waits for one to be
/// given back. (SQLite has one connection: nothing to show there.) On several threads: the
/// test waits for the calls it started without an `.await`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_calls_run_at_once_on_a_bounded_pool() {
    use std::sync::mpsc;
    use std::time::Duration;
    let db = store().await;
    if db.store.engine() != Engine::Postgres {
        return;
    }
    populate(&db.store).await;
    let mut holders = Vec::new();
    let mut releases = Vec::new();
    for held in 0..POSTGRES_CONNECTIONS - 1 {
        let (started, has_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let store = db.store.clone();
        holders.push(tokio::spawn(async move {
            store
                .write(move |db| {
                    db.query_value::<i64>("SELECT count(*) FROM users", &[])?;
                    started.send(()).unwrap();
                    released
                        .recv_timeout(Duration::from_secs(30))
                        .map_err(|_| anyhow::anyhow!("never released"))
                })
                .await
        }));
        has_started
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("call {held} never got a connection"));
        releases.push(release);
    }
    // One connection left: a read gets it at once, other calls' transactions open.
    assert_eq!(db.store.users().await.unwrap().len(), 2);
    // Every connection held: the next call waits.
    let (started, has_started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let store = db.store.clone();
    holders.push(tokio::spawn(async move {
        store
            .write(move |_| {
                started.send(()).unwrap();
                released
                    .recv_timeout(Duration::from_secs(30))
                    .map_err(|_| anyhow::anyhow!("never released"))
            })
            .await
    }));
    has_started.recv_timeout(Duration::from_secs(30)).unwrap();
    releases.push(release);
    let waiting = tokio::spawn({
        let store = db.store.clone();
        async move { store.users().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "a call got a connection beyond {POSTGRES_CONNECTIONS}"
    );
    for release in releases {
        release.send(()).unwrap();
    }
    for holder in holders {
        holder.await.unwrap().unwrap();
    }
    assert_eq!(waiting.await.unwrap().unwrap().len(), 2);
}

/// The SQLite setting in force in a call of `durable` or ordinary writing (2: the log
/// synced at each commit; 1: at checkpoints only), or `None` on PostgreSQL (which syncs
/// every commit).
async fn synchronous_in(s: &Store, durable: bool) -> Option<i64> {
    if s.engine() != Engine::Sqlite {
        return None;
    }
    let read = |db: &mut Db<'_>| db.query_value("PRAGMA synchronous", &[]);
    Some(if durable {
        s.write_durably(read).await.unwrap()
    } else {
        s.write(read).await.unwrap()
    })
}

#[tokio::test]
async fn a_deposit_step_is_synced_at_its_commit_and_the_connection_set_back_after() {
    let TestDb { store: s, .. } = store().await;
    let sqlite = s.engine() == Engine::Sqlite;
    // Ordinary writes are synced at checkpoints; a durable one at its commit.
    assert_eq!(synchronous_in(&s, false).await, sqlite.then_some(1));
    assert_eq!(synchronous_in(&s, true).await, sqlite.then_some(2));
    assert_eq!(synchronous_in(&s, false).await, sqlite.then_some(1));
    // A durable write that fails sets the connection back too, and writes nothing.
    let failed: anyhow::Result<()> = s
        .write_durably(|db| {
            db.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)",
                &[&"durable-test", &"x"],
            )?;
            anyhow::bail!("refused")
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(synchronous_in(&s, false).await, sqlite.then_some(1));
    // What a durable write commits is there, on either engine.
    s.write_durably(|db| {
        db.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2)",
            &[&"durable-test", &"y"],
        )
    })
    .await
    .unwrap();
    let value: Option<String> = s
        .read(|db| {
            db.query_opt(
                "SELECT value FROM settings WHERE key = $1",
                &[&"durable-test"],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("y"));
}
