//! The world of these tests: the update mock and the update client agent in process,
//! sharing a test PKI; the agent called over mutual TLS as the orchestrator calls it.
//! The agent's state and install directories live in the world's temporary directory, so
//! that an agent can be "restarted" on them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use iea_agent_testkit::{Admin, TestWorld, direct_network};
use iea_mock_updates::App as MockApp;
use iea_proto::agent::v1::update_agent_client::UpdateAgentClient;
use iea_proto::agent::v1::{
    ApplyProgress, ApplyRequest, ApplyScriptsRequest, CheckRequest, CheckResponse,
    ListScriptsRequest, MaintenanceScript, ReleaseNotesRequest,
};
use iea_proto::common::v1 as pb;
use iea_proto::error::ApiError;
use iea_runtime::shutdown::Shutdown;
use iea_update_client::{App as Agent, FailPoints, Settings};
use serde_json::{Value, json};
use tonic::transport::Channel;

pub const ADMIN_TOKEN: &str = "update-client-tests";

pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,iea_update_client=debug")
            .with_test_writer()
            .try_init();
    }
}

pub struct World {
    pub test: TestWorld,
    pub https: String,
    pub mock_admin: Admin,
    pub mocks_ca_pem: String,
    pub agent: UpdateAgentClient<Channel>,
    pub fail: FailPoints,
    agent_stop: Shutdown,
    /// Settings of the agent, reused when it restarts.
    pub settings: Settings,
}

/// Options of a world.
#[derive(Clone)]
pub struct Options {
    pub installed_version: Option<&'static str>,
    pub metadata_deadline_secs: f64,
    pub download_deadline_secs: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            installed_version: None,
            metadata_deadline_secs: 10.0,
            download_deadline_secs: 20.0,
        }
    }
}

pub async fn start() -> World {
    start_with(Options::default()).await
}

pub async fn start_with(options: Options) -> World {
    init_logs();
    let test = TestWorld::new();
    let dir = test.dir();

    let mock_settings = iea_mock_updates::Settings {
        listen: test.mock_listen(ADMIN_TOKEN),
        root_file: Some(dir.join("root.json")),
        ..iea_mock_updates::Settings::default()
    };
    let mock = MockApp::build(mock_settings).await.expect("mock binds");
    let https = format!("https://localhost:{}", mock.https_addr().port());
    let mock_admin = Admin::new(mock.admin_addr(), ADMIN_TOKEN, Duration::from_secs(30));
    test.spawn(mock.run_until(test.shutdown()));

    let fail = FailPoints::default();
    let settings = Settings {
        agent: test.agent_settings("update-client"),
        state_dir: dir.join("state"),
        install_dir: dir.join("install"),
        trusted_root: Some(dir.join("root.json")),
        installed_version: options.installed_version.map(str::to_owned),
        metadata_deadline_secs: options.metadata_deadline_secs,
        download_deadline_secs: options.download_deadline_secs,
        idle_timeout_secs: 5.0,
        fail_points: fail.clone(),
    };
    let agent_stop = test.shutdown().child();
    let agent = connect_agent(&test, &settings, &agent_stop).await;
    World {
        mocks_ca_pem: test.mocks_ca_pem(),
        test,
        https,
        mock_admin,
        agent,
        fail,
        agent_stop,
        settings,
    }
}

async fn connect_agent(
    test: &TestWorld,
    settings: &Settings,
    stop: &Shutdown,
) -> UpdateAgentClient<Channel> {
    let app = Agent::build(settings.clone()).await.expect("agent binds");
    let channel = test.channel("update-client", app.local_addr(), Duration::from_secs(60));
    test.spawn(app.run_until(stop.clone()));
    UpdateAgentClient::new(channel)
}

/// The outcome of an apply: progress messages, then the error if it failed.
pub struct Applied {
    pub progress: Vec<ApplyProgress>,
    pub error: Option<ApiError>,
}

impl Applied {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    pub fn code(&self) -> &str {
        self.error.as_ref().map(|e| e.code.as_str()).unwrap_or("ok")
    }
}

impl World {
    /// Stops the agent and starts another on the same directories (a restart).
    pub async fn restart_agent(&mut self) {
        self.agent_stop.trigger();
        self.agent_stop = self.test.shutdown().child();
        self.agent = connect_agent(&self.test, &self.settings, &self.agent_stop).await;
    }

    pub fn network(&self) -> pb::NetworkSettings {
        direct_network(pb::ConnectionMode::Secure, &self.https, &self.mocks_ca_pem)
    }

    pub async fn check(&self) -> Result<CheckResponse, ApiError> {
        self.agent
            .clone()
            .check(CheckRequest {
                network: Some(self.network()),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::from_status(&s))
    }

    pub async fn notes(&self, version: &str) -> Result<String, ApiError> {
        self.agent
            .clone()
            .get_release_notes(ReleaseNotesRequest {
                network: Some(self.network()),
                version: version.into(),
            })
            .await
            .map(|r| r.into_inner().text)
            .map_err(|s| ApiError::from_status(&s))
    }

    pub fn apply_request(&self, version: &str, hold_scripts: bool) -> ApplyRequest {
        ApplyRequest {
            network: Some(self.network()),
            version: version.into(),
            hold_scripts,
        }
    }

    pub async fn apply_with(&self, version: &str, hold_scripts: bool) -> Applied {
        let mut progress = Vec::new();
        let stream = match self
            .agent
            .clone()
            .apply(self.apply_request(version, hold_scripts))
            .await
        {
            Ok(s) => s.into_inner(),
            Err(s) => {
                return Applied {
                    progress,
                    error: Some(ApiError::from_status(&s)),
                };
            }
        };
        let mut stream = stream;
        while let Some(item) = stream.next().await {
            match item {
                Ok(p) => progress.push(p),
                Err(s) => {
                    return Applied {
                        progress,
                        error: Some(ApiError::from_status(&s)),
                    };
                }
            }
        }
        Applied {
            progress,
            error: None,
        }
    }

    pub async fn apply(&self, version: &str) -> Applied {
        self.apply_with(version, false).await
    }

    pub async fn list_scripts(&self) -> Vec<MaintenanceScript> {
        self.agent
            .clone()
            .list_scripts(ListScriptsRequest {})
            .await
            .expect("list scripts")
            .into_inner()
            .scripts
    }

    pub async fn apply_scripts(&self) -> Vec<MaintenanceScript> {
        self.agent
            .clone()
            .apply_scripts(ApplyScriptsRequest {})
            .await
            .expect("apply scripts")
            .into_inner()
            .applied
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.mock_admin.call(method, path, body).await
    }

    pub async fn attack(&self, body: Value) {
        self.admin(reqwest::Method::POST, "/__admin/attack", Some(body))
            .await;
    }

    pub async fn publish(&self, body: Value) -> Value {
        self.admin(reqwest::Method::POST, "/__admin/releases", Some(body))
            .await
    }

    pub async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/__admin/stats", None)
            .await
    }

    pub fn state_dir(&self) -> PathBuf {
        self.test.dir().join("state")
    }

    pub fn install_dir(&self) -> PathBuf {
        self.test.dir().join("install")
    }

    /// The version `current` names, read from the install directory.
    pub fn current(&self) -> Option<String> {
        link_version(&self.install_dir().join("current"))
    }

    pub fn previous(&self) -> Option<String> {
        link_version(&self.install_dir().join("previous"))
    }

    /// Version directories present (excluding staging leftovers).
    pub fn versions_present(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.install_dir().join("versions"))
            .map(|it| {
                it.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The parameters table that scripts change.
    pub fn parameters(&self) -> Value {
        let text = std::fs::read_to_string(self.state_dir().join("scripts.json"))
            .unwrap_or_else(|_| "{\"parameters\":{}}".into());
        serde_json::from_str::<Value>(&text).expect("scripts.json")["parameters"].clone()
    }

    /// Checks the installation: `current` names a complete version whose start check
    /// passes, and no half-made directory is left.
    pub fn assert_one_complete_version(&self) -> String {
        let current = self.current().expect("a current version");
        let dir = self.install_dir().join("versions").join(&current);
        let named = std::fs::read_to_string(dir.join("VERSION")).expect("VERSION");
        assert_eq!(named.trim(), current);
        let check = std::fs::read_to_string(dir.join("start-check")).expect("start-check");
        assert_eq!(check.trim(), "ok");
        for name in self.versions_present() {
            assert!(!name.starts_with('.'), "leftover {name}");
            let d = self.install_dir().join("versions").join(&name);
            assert!(d.join("VERSION").exists(), "incomplete {name}");
        }
        current
    }
}

pub fn link_version(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

pub fn available_versions(r: &CheckResponse) -> Vec<String> {
    r.available.iter().map(|a| a.version.clone()).collect()
}

pub fn release_spec(version: &str) -> Value {
    json!({
        "version": version,
        "notes": format!("Lisez-moi de la version {version}.\n"),
        "scripts": [{"description": "Paramètre de test", "set": {format!("test.{version}"): "1"}}],
    })
}
