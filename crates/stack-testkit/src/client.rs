//! What a front-end knows of a running stack — its `stack.json` and the bootstrap
//! password — and what a test does with it: the orchestrator's TLS channel, sessions, the
//! mocks' control APIs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use iea_proto::v1::LoginRequest;
use iea_proto::v1::sessions_client::SessionsClient;
use iea_stack::StackFile;
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

/// Each call's deadline on [`StackClient::channel`], unless
/// [`StackClient::with_call_timeout`] says otherwise.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Connecting to the orchestrator or a mock's control API, and a control API call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running stack as a front-end reaches it.
#[derive(Clone)]
pub struct StackClient {
    /// `stack.json` as read when the stack started.
    pub file: StackFile,
    admin_password: AdminPassword,
    call_timeout: Duration,
}

#[derive(Clone)]
enum AdminPassword {
    /// `admin-password` in the data directory, read when asked.
    File(PathBuf),
    /// Given (a composed stack's, read from its container).
    Known(String),
}

impl StackClient {
    /// The stack that `file` describes; the bootstrap password is `admin-password` in its
    /// data directory.
    pub fn new(file: StackFile) -> Self {
        Self {
            admin_password: AdminPassword::File(file.data_dir.join("admin-password")),
            file,
            call_timeout: CALL_TIMEOUT,
        }
    }

    /// The stack whose `stack.json` is in `data_dir`.
    pub fn read(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self::new(StackFile::read(data_dir)?))
    }

    /// With a bootstrap password known otherwise.
    pub fn with_admin_password(mut self, password: String) -> Self {
        self.admin_password = AdminPassword::Known(password);
        self
    }

    /// With another deadline for each call on [`StackClient::channel`].
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    pub fn file(&self) -> &StackFile {
        &self.file
    }

    /// A front-end channel to the orchestrator (server-authenticated TLS).
    pub async fn channel(&self) -> Channel {
        self.try_channel().await.expect("orchestrator reachable")
    }

    /// The same, or why the orchestrator could not be reached (a test that kills it and
    /// waits until it answers again).
    pub async fn try_channel(&self) -> Result<Channel, tonic::transport::Error> {
        let f = &self.file;
        let tls = iea_runtime::tls::front_end_config(&f.ca, &f.orchestrator_server_name)
            .expect("the stack's CA");
        Endpoint::from_shared(format!("https://{}", f.orchestrator))
            .expect("the orchestrator's address")
            .tls_config(tls)
            .expect("TLS settings")
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(self.call_timeout)
            .connect()
            .await
    }

    /// The settings of another orchestrator wired to this stack's agents and mocks as the
    /// stack wires its own (one a benchmark measures in a process of its own): a loopback
    /// port, its certificate from the stack's PKI, its data (and SQLite database) in
    /// `data_dir`; the rest default, for the caller to adjust.
    pub fn orchestrator_settings(&self, data_dir: &Path) -> iea_orchestrator::Settings {
        let f = &self.file;
        let certs = f.data_dir.join(iea_stack::CERTS_DIR);
        iea_orchestrator::Settings {
            listen: "127.0.0.1:0".parse().expect("a loopback address"),
            tls: iea_runtime::pki::component_files(&certs, iea_orchestrator::COMPONENT),
            data_dir: data_dir.to_owned(),
            agents: iea_orchestrator::AgentAddresses {
                auth_client: f.agents["auth-client"].clone(),
                update_client: f.agents["update-client"].clone(),
                credential_verifier: f.agents["credential-verifier"].clone(),
                deposit_agent: f.agents["deposit-agent"].clone(),
            },
            network: iea_orchestrator::network::NetworkDefaults {
                auth_server: f.mocks["impact-emploi-auth"].https.clone(),
                update_server: f.mocks["impact-emploi-updates"].https.clone(),
                net_entreprises: format!(
                    "{}{}",
                    f.mocks["net-entreprises"].https,
                    iea_mock_net_entreprises::AUTH_PATH
                ),
                extra_ca_file: Some(f.mocks_ca.clone()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The same stack as a front-end reaches another orchestrator (one run with
    /// [`StackClient::orchestrator_settings`]) listening at `addr` with its data in
    /// `data_dir`: its channel, bootstrap password and sessions.
    pub fn other_orchestrator(&self, addr: &str, data_dir: &Path) -> StackClient {
        StackClient {
            file: StackFile {
                orchestrator: addr.to_owned(),
                data_dir: data_dir.to_owned(),
                ..self.file.clone()
            },
            admin_password: AdminPassword::File(data_dir.join("admin-password")),
            call_timeout: self.call_timeout,
        }
    }

    /// Makes installation `id` with licence key `licence` known to the authentication
    /// mock, as a licence would make it known to the real server (another orchestrator's
    /// installation).
    pub async fn add_installation(&self, id: &str, licence: &str) {
        self.mock("impact-emploi-auth")
            .post(
                "/installations",
                serde_json::json!({"installation_id": id, "licence_key": licence}),
            )
            .await;
    }

    /// `Administrateur`'s first password.
    pub fn admin_password(&self) -> String {
        match &self.admin_password {
            AdminPassword::Known(p) => p.clone(),
            AdminPassword::File(path) => std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .trim()
                .to_owned(),
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

    /// Opens a session as `Administrateur`; returns the token.
    pub async fn login_admin(&self) -> String {
        self.login("Administrateur", &self.admin_password()).await
    }

    /// A watch stream on the status.
    pub async fn watch(&self) -> tonic::Streaming<iea_proto::v1::StatusReport> {
        iea_proto::v1::status_client::StatusClient::new(self.channel().await)
            .watch_status(iea_proto::v1::WatchStatusRequest {})
            .await
            .expect("watch")
            .into_inner()
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

    /// The control API of mock `name` ("impact-emploi-auth", "net-entreprises", ...).
    pub fn mock(&self, name: &str) -> MockAdmin {
        MockAdmin {
            base: self.file.mocks[name].admin.clone(),
            token: self.file.mocks_admin_token.clone(),
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(CALL_TIMEOUT)
                .build()
                .expect("HTTP client"),
        }
    }

    /// Sets this installation's licence at the auth mock: `active`, `withdrawn`, `refused`.
    pub async fn set_licence(&self, status: &str) {
        let id = &self.file.installation_id;
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
        let id = installation.unwrap_or(&self.file.installation_id);
        let query = date.map(|d| format!("?date={d}")).unwrap_or_default();
        self.mock("impact-emploi-auth")
            .get(&format!("/installations/{id}/daily-password{query}"))
            .await["daily_password"]
            .as_str()
            .expect("a daily password")
            .to_owned()
    }
}

/// `msg` with `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

/// A DSN upload as a front-end streams it to `Deposits.Deposit`: the start (the file's
/// name and size, the caller's own account), then the bytes in one message.
pub fn dsn_upload(file_name: &str, bytes: &[u8]) -> Vec<iea_proto::v1::DsnUpload> {
    dsn_upload_as(file_name, bytes, "", bytes.len().max(1))
}

/// [`dsn_upload`] with the account to deposit with (`user`, empty: the caller's) and the
/// bytes in messages of at most `chunk` bytes.
pub fn dsn_upload_as(
    file_name: &str,
    bytes: &[u8],
    user: &str,
    chunk: usize,
) -> Vec<iea_proto::v1::DsnUpload> {
    use iea_proto::v1::{DsnUpload, DsnUploadStart};
    let start = DsnUpload {
        start: Some(DsnUploadStart {
            file_name: file_name.into(),
            total_size: bytes.len() as u64,
            user: user.into(),
        }),
        data: Vec::new(),
    };
    std::iter::once(start)
        .chain(bytes.chunks(chunk).map(|c| DsnUpload {
            start: None,
            data: c.to_vec(),
        }))
        .collect()
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
