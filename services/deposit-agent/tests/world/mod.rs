//! What the deposit agent's test binaries share: the agent's internal PKI, and the world
//! of `deposit.rs` and `returns.rs` (the agent and the Net-entreprises mock, both real and
//! in process, the agent called over mutual TLS with the generated client, as the
//! orchestrator calls it). Each binary uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use iea_deposit_agent::{App, Options};
use iea_mock_kit::{FaultMode, FaultSettings, MockListen};
use iea_mock_net_entreprises as mock;
use iea_proto::agent::v1::deposit_agent_client::DepositAgentClient;
use iea_proto::agent::v1::{
    DeclarantIdentity, DepositChunk, DepositResponse, DepositStart, ListDepositsRequest,
    ListDepositsResponse, NetEntreprisesAccess,
};
use iea_proto::common::v1::{ConnectionMode, ConnectionType, NetworkSettings};
use iea_runtime::agent::AgentSettings;
use iea_runtime::shutdown::Shutdown;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;

use iea_runtime::pki::{self, CertificateAuthority, TlsFiles, Validity};

/// A CA, the agent's certificate and the orchestrator's (the runtime's `pki::init` does
/// not issue one for the deposit agent yet). Answers (agent's files, orchestrator's).
pub fn internal_pki(dir: &std::path::Path) -> (TlsFiles, TlsFiles) {
    let ca = CertificateAuthority::new("deposit agent tests internal CA").unwrap();
    std::fs::write(dir.join("internal-ca.pem"), ca.cert_pem()).unwrap();
    let files = |name: &str| {
        let names = vec![name.to_owned(), "localhost".into(), "127.0.0.1".into()];
        let leaf = ca.issue(name, &names, Validity::default()).unwrap();
        let f = TlsFiles {
            ca: dir.join("internal-ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        leaf.write(&f.cert, &f.key).unwrap();
        f
    };
    (files("deposit-agent"), files("orchestrator"))
}

/// Bound on the agent's timeouts in these tests, so that "slow" is quick to show.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(1500);
pub const ADMIN_TOKEN: &str = "admin";

/// SIRET, nom, prénom, password (the mock's fixtures).
pub type Identity = (&'static str, &'static str, &'static str, &'static str);
pub const DUPONT: Identity = ("78214563500010", "DUPONT", "Marie", "Jardin#Partage2024");
pub const WRONG_PASSWORD: Identity = ("78214563500010", "DUPONT", "Marie", "Jardin#Partage2025");

pub struct World {
    pub agent: DepositAgentClient<Channel>,
    pub mock: mock::Control,
    pub mock_https: String,
    pub mock_admin: String,
    pub mocks_ca: String,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn start(tweak: impl FnOnce(&mut mock::Settings)) -> Self {
        Self::start_with(tweak, MAX_TIMEOUT).await
    }

    /// With `max_timeout` as the bound on the agent's request timeouts.
    pub async fn start_with(
        tweak: impl FnOnce(&mut mock::Settings),
        max_timeout: Duration,
    ) -> Self {
        iea_runtime::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let mocks_dir = dir.path().join("mocks");
        pki::init(&mocks_dir, &[]).unwrap();
        let (agent_files, orchestrator_files) = internal_pki(dir.path());
        let shutdown = Shutdown::new();

        let mut settings = mock::Settings {
            listen: MockListen {
                tls: pki::mock_files(&mocks_dir),
                admin_token: ADMIN_TOKEN.into(),
                ..MockListen::default()
            },
            lock_threshold: 3,
            ..mock::Settings::default()
        };
        tweak(&mut settings);
        let mock_app = mock::App::build(settings).await.unwrap();
        let control = mock_app.control();
        let mock_https = format!("https://127.0.0.1:{}", mock_app.https_addr().port());
        let mock_admin = format!("http://{}", mock_app.admin_addr());

        let agent_app = App::build_with(
            AgentSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: agent_files,
            },
            Options {
                max_timeout: Some(max_timeout),
            },
        )
        .await
        .unwrap();
        let agent_addr = agent_app.local_addr();
        let tasks = vec![
            tokio::spawn(mock_app.run_until(shutdown.clone())),
            tokio::spawn(agent_app.run_until(shutdown.clone())),
        ];
        let tls = iea_runtime::tls::client_config(&orchestrator_files, "deposit-agent").unwrap();
        let channel =
            iea_runtime::grpc::channel(&agent_addr.to_string(), tls, Duration::from_secs(60))
                .unwrap();
        let mocks_ca = std::fs::read_to_string(pki::mock_files(&mocks_dir).ca).unwrap();
        Self {
            agent: DepositAgentClient::new(channel),
            mock: control,
            mock_https,
            mock_admin,
            mocks_ca,
            shutdown,
            tasks,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        for t in self.tasks {
            t.await.unwrap().unwrap();
        }
    }

    pub fn network(&self) -> NetworkSettings {
        NetworkSettings {
            connection_type: ConnectionType::Direct.into(),
            mode: ConnectionMode::Secure.into(),
            address: self.mock_https.clone(),
            extra_ca_pem: self.mocks_ca.clone(),
            ..NetworkSettings::default()
        }
    }

    pub fn access(&self, identity: Identity, network: NetworkSettings) -> NetEntreprisesAccess {
        let (siret, nom, prenom, password) = identity;
        NetEntreprisesAccess {
            network: Some(network),
            auth_address: String::new(),
            identity: Some(DeclarantIdentity {
                siret: siret.into(),
                nom: nom.into(),
                prenom: prenom.into(),
                password: password.into(),
            }),
            service: 25,
        }
    }

    /// Deposits `file` in chunks of `chunk` bytes.
    pub async fn deposit_with(
        &self,
        access: NetEntreprisesAccess,
        file: &[u8],
        chunk: usize,
    ) -> Result<DepositResponse, tonic::Status> {
        let mut messages = vec![DepositChunk {
            start: Some(DepositStart {
                access: Some(access),
                deposit_id: "test-deposit".into(),
                total_size: file.len() as u64,
            }),
            data: Vec::new(),
        }];
        messages.extend(file.chunks(chunk).map(|c| DepositChunk {
            start: None,
            data: c.to_vec(),
        }));
        self.agent
            .clone()
            .deposit(futures::stream::iter(messages))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn deposit(&self, identity: Identity, file: &[u8]) -> DepositResponse {
        self.deposit_with(self.access(identity, self.network()), file, 64 * 1024)
            .await
            .unwrap()
    }

    pub async fn list(&self, identity: Identity, debut: &str, fin: &str) -> ListDepositsResponse {
        self.agent
            .clone()
            .list_deposits(ListDepositsRequest {
                access: Some(self.access(identity, self.network())),
                debut: debut.into(),
                fin: fin.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub fn auth_requests(&self) -> u64 {
        self.mock.stats().auth_requests
    }

    pub fn deposit_requests(&self) -> u64 {
        self.deposit_path_stats().requests
    }

    pub fn deposit_path_stats(&self) -> mock::PathStats {
        self.mock
            .stats()
            .services
            .get("/deposer-dsn/1.0/")
            .cloned()
            .unwrap_or_default()
    }

    pub fn kit_fault(&self, mode: FaultMode, delay_ms: u64) {
        self.mock.faults().set(FaultSettings {
            mode,
            delay_ms,
            close_default_port: false,
        });
    }

    /// Sets the mock's faults through its control API (the deposit faults have no
    /// in-process setter).
    pub async fn faults(&self, body: serde_json::Value) {
        self.admin(reqwest::Method::POST, "/__admin/faults", body)
            .await;
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: serde_json::Value) {
        let settings =
            iea_net::NetworkSettings::direct(iea_net::ConnectionMode::Normal, &self.mock_admin)
                .unwrap();
        let client = iea_net::HttpClient::new(&settings, "tests").unwrap();
        let r = client
            .reqwest()
            .request(method, format!("{}{path}", self.mock_admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    /// The mock's now in its time zone, `AAAAMMJJHHMMSS`, shifted by `minutes`.
    pub fn mock_time(&self, minutes: i64) -> String {
        let now = self.mock.clock().now();
        let at = if minutes >= 0 {
            now + Duration::from_secs(minutes as u64 * 60)
        } else {
            now - Duration::from_secs(minutes.unsigned_abs() * 60)
        };
        mock::clock::TimeZone::EuropeParis.format_compact(at)
    }
}

/// A small DSN-like file: `employees` employees' lines.
pub fn dsn(employees: usize) -> Vec<u8> {
    let mut s = String::from(
        "S10.G00.00.001,'IEA'\nS10.G00.00.002,'Impact emploi'\nS10.G00.00.003,'6.0'\n\
         S10.G00.00.005,'01'\nS10.G00.00.006,'P24V01'\nS10.G00.00.007,'01'\n\
         S10.G00.01.001,'782145635'\nS10.G00.01.002,'00010'\n\
         S20.G00.05.001,'01'\nS20.G00.05.002,'01'\nS20.G00.05.005,'01112026'\n",
    );
    for i in 0..employees {
        s.push_str(&format!(
            "S21.G00.30.001,'18{:011}'\nS21.G00.30.002,'NOM{i}'\nS21.G00.30.004,'Prénom {i}'\n\
             S21.G00.50.002,'{}.00'\nS21.G00.50.006,'4.50'\n",
            i,
            1500 + i % 1000
        ));
    }
    s.push_str("S90.G00.90.001,'0'\nS90.G00.90.002,'1'\n");
    // ISO-8859-1, as a DSN is.
    s.chars().map(|c| c as u32 as u8).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
