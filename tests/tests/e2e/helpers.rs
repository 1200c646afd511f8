//! `TestStack`: the embedded stack in a temporary directory, and front-end clients.

use std::time::Duration;

use iea_proto::v1::LoginRequest;
use iea_proto::v1::sessions_client::SessionsClient;
use iea_stack::{RunningStack, StackFile, StackOptions};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

pub struct TestStack {
    pub dir: tempfile::TempDir,
    stack: Option<RunningStack>,
}

pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        iea_runtime::telemetry::init(iea_runtime::telemetry::LogFormat::Human, "debug");
    }
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
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
            customize_orchestrator: Some(Box::new(customize)),
        })
        .await
        .expect("stack starts");
        Self {
            dir,
            stack: Some(stack),
        }
    }

    pub fn file(&self) -> &StackFile {
        &self.stack.as_ref().expect("running").file
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

    pub async fn stop_agent(&mut self, name: &str) {
        self.stack
            .as_mut()
            .expect("running")
            .stop_agent(name)
            .await
            .expect("agent stops");
    }

    pub async fn start_agent(&mut self, name: &str) {
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
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
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
