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
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let stack = RunningStack::start(StackOptions {
            data_dir: dir.path().to_owned(),
            demo: true,
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
        })
        .await
        .expect("stack starts again");
        self.stack = Some(stack);
        self
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
