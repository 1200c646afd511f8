//! The embedded stack in this process, in a temporary data directory: what the
//! end-to-end suite drives.

use std::ops::Deref;

use iea_stack::{RunningStack, StackOptions};

use crate::client::StackClient;
use crate::compose::{Compose, compose_cmd};
use crate::database::test_database;

/// The stack a test drives: an embedded one of its own, or, when `IEA_E2E_COMPOSE_DATA`
/// names the data directory of a composed stack (`docker/compose-e2e.sh`), that one.
/// Dereferences to its [`StackClient`] (channel, sessions, mocks). Dropping it does not
/// stop an embedded stack: call [`TestStack::stop`].
pub struct TestStack {
    /// The embedded stack's data directory (an empty one with a composed stack).
    pub dir: tempfile::TempDir,
    stack: Option<RunningStack>,
    compose: Option<Compose>,
    client: StackClient,
}

impl Deref for TestStack {
    type Target = StackClient;

    fn deref(&self) -> &StackClient {
        &self.client
    }
}

/// Logs of every component on the test's output when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        iea_runtime::telemetry::init(iea_runtime::telemetry::LogFormat::Human, "debug");
    }
}

impl TestStack {
    /// The composed stack when the suite runs against one; otherwise an embedded stack as
    /// [`TestStack::start_configured`] starts it.
    pub async fn start() -> Self {
        iea_runtime::install_crypto_provider();
        if let Some(compose) = Compose::from_env() {
            init_logs();
            let client = StackClient::new(compose.file.clone())
                .with_admin_password(compose.admin_password.clone());
            return Self {
                dir: tempfile::tempdir().expect("tempdir"),
                stack: None,
                compose: Some(compose),
                client,
            };
        }
        Self::start_with(|_| {}).await
    }

    /// The composed stack, when the suite runs against one.
    pub fn compose(&self) -> Option<&Compose> {
        self.compose.as_ref()
    }

    /// An embedded stack whose orchestrator settings `customize` adjusts first.
    pub async fn start_with(
        customize: impl FnOnce(&mut iea_orchestrator::Settings) + Send + 'static,
    ) -> Self {
        Self::start_configured(|o| o.customize_orchestrator = Some(Box::new(customize))).await
    }

    /// An embedded stack with the suite's options — a temporary data directory, the
    /// mocks' demo fixtures, the test database ([`test_database`]) — as `configure` adjusts
    /// them (orchestrator settings, external components, the demonstration account…).
    /// The data directory stays the temporary one ([`TestStack::dir`]).
    pub async fn start_configured(configure: impl FnOnce(&mut StackOptions)) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut options = StackOptions {
            demo: true,
            database: test_database().await,
            ..StackOptions::new(dir.path())
        };
        configure(&mut options);
        options.data_dir = dir.path().to_owned();
        let stack = RunningStack::start(options).await.expect("stack starts");
        Self {
            client: StackClient::new(stack.file.clone()),
            dir,
            stack: Some(stack),
            compose: None,
        }
    }

    /// The embedded stack.
    pub fn running(&self) -> &RunningStack {
        self.stack.as_ref().expect("an embedded stack, running")
    }

    /// The embedded stack, to stop or start one of its agents.
    pub fn running_mut(&mut self) -> &mut RunningStack {
        self.stack.as_mut().expect("an embedded stack, running")
    }

    /// Stops the stack and starts it again on the same data directory (and database).
    pub async fn restart(mut self) -> Self {
        if let Some(s) = self.stack.take() {
            s.stop().await.expect("clean stop");
        }
        let stack = RunningStack::start(StackOptions {
            demo: true,
            ..StackOptions::new(self.dir.path())
        })
        .await
        .expect("stack starts again");
        self.client = StackClient::new(stack.file.clone());
        self.stack = Some(stack);
        self
    }

    /// Everything the orchestrator's database holds, as bytes to search for a secret in
    /// clear: the SQLite files, or a `pg_dump` of the PostgreSQL database.
    pub fn database_contents(&self) -> Vec<(String, Vec<u8>)> {
        let dir = self.dir.path();
        match iea_stack::chosen_database(dir).expect("database choice") {
            Some(iea_orchestrator::store::DatabaseUrl::Postgres(url)) => {
                let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
                    .ok()
                    .and_then(|versions| {
                        versions
                            .filter_map(Result::ok)
                            .map(|v| v.path().join("bin/pg_dump"))
                            .find(|p| p.exists())
                    })
                    .unwrap_or_else(|| "pg_dump".into());
                let out = std::process::Command::new(pg_dump)
                    .args(["--data-only", "--dbname", &url])
                    .output()
                    .expect("pg_dump runs");
                assert!(
                    out.status.success(),
                    "pg_dump: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                vec![("pg_dump".to_owned(), out.stdout)]
            }
            _ => ["iea.db", "iea.db-wal", "iea.db-shm"]
                .into_iter()
                .filter_map(|f| Some((f.to_owned(), std::fs::read(dir.join(f)).ok()?)))
                .collect(),
        }
    }

    /// The installation's licence key and daily-password key.
    pub fn installation_secrets(&self) -> (String, String) {
        use secrecy::ExposeSecret;
        let (a, b) = self.running().installation_secrets();
        (a.expose_secret().to_owned(), b.expose_secret().to_owned())
    }

    /// Stops agent `name` (its container, on a composed stack).
    pub async fn stop_agent(&mut self, name: &str) {
        if let Some(c) = &self.compose {
            compose_cmd(&c.project, &["stop", name]);
            return;
        }
        self.running_mut()
            .stop_agent(name)
            .await
            .expect("agent stops");
    }

    /// Starts agent `name` again (its container, on a composed stack).
    pub async fn start_agent(&mut self, name: &str) {
        if let Some(c) = &self.compose {
            compose_cmd(&c.project, &["start", name]);
            return;
        }
        self.running_mut()
            .start_agent(name)
            .await
            .expect("agent starts");
    }

    /// Stops the embedded stack, checking every component stopped cleanly.
    pub async fn stop(mut self) {
        if let Some(s) = self.stack.take() {
            s.stop().await.expect("clean stop");
        }
    }
}
