//! `TestStack`: the embedded stack in a temporary directory, and front-end clients.

use std::time::Duration;

use iea_proto::v1::LoginRequest;
use iea_proto::v1::sessions_client::SessionsClient;
use iea_stack::{RunningStack, StackFile, StackOptions};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

/// The stack a test drives: an embedded one of its own, or, when `IEA_E2E_COMPOSE_DATA`
/// names the data directory of a composed stack (`docker/compose-e2e.sh`), that one.
pub struct TestStack {
    pub dir: tempfile::TempDir,
    stack: Option<RunningStack>,
    compose: Option<Compose>,
}

/// A stack run by docker compose.
pub struct Compose {
    pub project: String,
    pub file: StackFile,
    admin_password: String,
}

impl Compose {
    fn from_env() -> Option<Self> {
        let data = std::path::PathBuf::from(std::env::var_os("IEA_E2E_COMPOSE_DATA")?);
        let project =
            std::env::var("IEA_E2E_COMPOSE_PROJECT").unwrap_or_else(|_| "iea-smoke".into());
        let file = StackFile::read(&data).expect("the composed stack's stack.json");
        let out = compose_cmd(
            &project,
            &[
                "exec",
                "-T",
                "orchestrator",
                "cat",
                "/var/lib/iea-connect/admin-password",
            ],
        );
        let admin_password = String::from_utf8(out).unwrap().trim().to_owned();
        Some(Self {
            project,
            file,
            admin_password,
        })
    }
}

/// Runs `docker compose -p PROJECT ARGS` (or `docker-compose`); its stdout.
pub fn compose_cmd(project: &str, args: &[&str]) -> Vec<u8> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker-compose.yml");
    let v2 = std::process::Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = if v2 {
        let mut c = std::process::Command::new("docker");
        c.arg("compose");
        c
    } else {
        std::process::Command::new("docker-compose")
    };
    let out = cmd
        .args(["-p", project, "-f", root])
        .args(args)
        .output()
        .expect("docker compose runs");
    assert!(
        out.status.success(),
        "docker compose {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `docker ARGS`; its stdout.
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The database of a new test stack: a fresh one on the PostgreSQL server that
/// `IEA_TEST_DATABASE_URL` names (`.ci/run` starts one and runs the suite on both
/// engines); otherwise `None`, SQLite in the stack's data directory. A restart on the
/// same data directory keeps the database (the stack records its choice).
pub async fn test_database() -> Option<iea_orchestrator::store::DatabaseUrl> {
    let server = std::env::var("IEA_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    let url = tokio::task::spawn_blocking(move || {
        iea_orchestrator::store::create_database_for_tests(&server)
    })
    .await
    .expect("database task")
    .expect("a test database on the PostgreSQL server of IEA_TEST_DATABASE_URL");
    Some(iea_orchestrator::store::DatabaseUrl::Postgres(url))
}

pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        iea_runtime::telemetry::init(iea_runtime::telemetry::LogFormat::Human, "debug");
    }
}

impl TestStack {
    pub async fn start() -> Self {
        iea_runtime::install_crypto_provider();
        if let Some(compose) = Compose::from_env() {
            init_logs();
            return Self {
                dir: tempfile::tempdir().expect("tempdir"),
                stack: None,
                compose: Some(compose),
            };
        }
        Self::start_with(|_| {}).await
    }

    /// The composed stack, when the suite runs against one.
    pub fn compose(&self) -> Option<&Compose> {
        self.compose.as_ref()
    }

    /// A stack whose orchestrator settings `customize` adjusts first.
    pub async fn start_with(
        customize: impl FnOnce(&mut iea_orchestrator::Settings) + Send + 'static,
    ) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let stack = RunningStack::start(StackOptions {
            data_dir: dir.path().to_owned(),
            demo: true,
            database: test_database().await,
            customize_orchestrator: Some(Box::new(customize)),
            ..Default::default()
        })
        .await
        .expect("stack starts");
        Self {
            dir,
            stack: Some(stack),
            compose: None,
        }
    }

    pub fn file(&self) -> &StackFile {
        match &self.compose {
            Some(c) => &c.file,
            None => &self.stack.as_ref().expect("running").file,
        }
    }

    /// A front-end channel to the orchestrator (server-authenticated TLS).
    pub async fn channel(&self) -> Channel {
        let f = self.file();
        let tls = iea_runtime::tls::front_end_config(&f.ca, &f.orchestrator_server_name).unwrap();
        Endpoint::from_shared(format!("https://{}", f.orchestrator))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .timeout(Duration::from_secs(60))
            .connect()
            .await
            .expect("orchestrator reachable")
    }

    pub fn admin_password(&self) -> String {
        if let Some(c) = &self.compose {
            return c.admin_password.clone();
        }
        std::fs::read_to_string(self.dir.path().join("admin-password"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Opens a session as `Administrateur`; returns the token.
    pub async fn login_admin(&self) -> String {
        SessionsClient::new(self.channel().await)
            .login(LoginRequest {
                user: "Administrateur".into(),
                password: self.admin_password(),
            })
            .await
            .expect("login")
            .into_inner()
            .token
    }

    /// Stops the stack and starts it again on the same data directory.
    pub async fn restart(mut self) -> Self {
        if let Some(s) = self.stack.take() {
            s.stop().await.expect("clean stop");
        }
        let stack = RunningStack::start(StackOptions {
            data_dir: self.dir.path().to_owned(),
            demo: true,
            ..Default::default()
        })
        .await
        .expect("stack starts again");
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
        let (a, b) = self.stack.as_ref().expect("running").installation_secrets();
        (a.expose_secret().to_owned(), b.expose_secret().to_owned())
    }

    pub async fn stop_agent(&mut self, name: &str) {
        if let Some(c) = &self.compose {
            compose_cmd(&c.project, &["stop", name]);
            return;
        }
        self.stack
            .as_mut()
            .expect("running")
            .stop_agent(name)
            .await
            .expect("agent stops");
    }

    pub async fn start_agent(&mut self, name: &str) {
        if let Some(c) = &self.compose {
            compose_cmd(&c.project, &["start", name]);
            return;
        }
        self.stack
            .as_mut()
            .expect("running")
            .start_agent(name)
            .await
            .expect("agent starts");
    }

    /// A watch stream on the status.
    pub async fn watch(&self) -> tonic::Streaming<iea_proto::v1::StatusReport> {
        iea_proto::v1::status_client::StatusClient::new(self.channel().await)
            .watch_status(iea_proto::v1::WatchStatusRequest {})
            .await
            .expect("watch")
            .into_inner()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stack.take() {
            s.stop().await.expect("clean stop");
        }
    }
}

/// `msg` with `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

impl TestStack {
    /// Sets this installation's licence at the auth mock: `active`, `withdrawn`, `refused`.
    pub async fn set_licence(&self, status: &str) {
        let id = &self.file().installation_id;
        self.mock("impact-emploi-auth")
            .send(
                reqwest::Method::PATCH,
                &format!("/installations/{id}"),
                serde_json::json!({"status": status}),
            )
            .await;
    }

    /// The daily password support gives for `installation` (default: this one) on `date`
    /// (YYYY-MM-DD; default: today in Europe/Paris).
    pub async fn daily_password(&self, installation: Option<&str>, date: Option<&str>) -> String {
        let id = installation.unwrap_or(&self.file().installation_id);
        let query = date.map(|d| format!("?date={d}")).unwrap_or_default();
        self.mock("impact-emploi-auth")
            .get(&format!("/installations/{id}/daily-password{query}"))
            .await["daily_password"]
            .as_str()
            .expect("a daily password")
            .to_owned()
    }

    /// The control API of mock `name` ("impact-emploi-auth", "net-entreprises", ...).
    pub fn mock(&self, name: &str) -> MockAdmin {
        MockAdmin {
            base: self.file().mocks[name].admin.clone(),
            token: self.file().mocks_admin_token.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// Opens a session as `user`; returns the token.
    pub async fn login(&self, user: &str, password: &str) -> String {
        SessionsClient::new(self.channel().await)
            .login(LoginRequest {
                user: user.into(),
                password: password.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .token
    }

    /// Switches to réseau mode and creates `name` (a plain user) with `password`.
    pub async fn add_user(&self, admin: &str, name: &str, password: &str) {
        use iea_proto::v1::users_client::UsersClient;
        use iea_proto::v1::{AddUserRequest, InstallationMode, InstallationModeMessage, Role};
        let mut users = UsersClient::new(self.channel().await);
        users
            .set_installation_mode(authed(
                admin,
                InstallationModeMessage {
                    mode: InstallationMode::Reseau.into(),
                },
            ))
            .await
            .unwrap();
        users
            .add_user(authed(
                admin,
                AddUserRequest {
                    name: name.into(),
                    role: Role::User.into(),
                    password: password.into(),
                },
            ))
            .await
            .unwrap();
    }
}

/// A mock's `/__admin` API.
pub struct MockAdmin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl MockAdmin {
    pub async fn get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// Any method; the answer's JSON (Null when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let text = resp.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub async fn faults(&self, body: serde_json::Value) {
        self.post("/faults", body).await;
    }

    /// Requests that reached the authentication route.
    pub async fn auth_requests(&self) -> u64 {
        self.get("/stats").await["auth_requests"].as_u64().unwrap()
    }

    /// The version the last authentication request said was installed.
    pub async fn last_software_version(&self) -> Option<String> {
        self.get("/stats").await["last_software_version"]
            .as_str()
            .map(str::to_owned)
    }
}

/// Waits until `check` holds, asking every 20 ms, for at most 20 s.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the condition did not hold within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `stream` until a report satisfies `pred` (at most 20 s); returns every report
/// read, the matching one last.
pub async fn wait_for(
    stream: &mut tonic::Streaming<iea_proto::v1::StatusReport>,
    mut pred: impl FnMut(&iea_proto::v1::StatusReport) -> bool,
) -> Vec<iea_proto::v1::StatusReport> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(r) = stream.message().await.expect("watch stream") {
            let done = pred(&r);
            seen.push(r);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "condition not reached; saw {seen:#?}"
    );
    seen
}

/// A real HTTP proxy (tinyproxy, from Debian's packages) on a loopback port, requiring
/// `user`/`password`. Stopped when dropped.
pub struct Tinyproxy {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub async fn start(user: &str, password: &str) -> Self {
        let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("tinyproxy is needed by the proxy tests: apt-get install tinyproxy (.ci/run installs it)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 50\nLogLevel Warning\nBasicAuth {user} {password}\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "tinyproxy did not listen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
