//! What the deposit agent's test binaries share: the world of `deposit.rs` and `returns.rs`
//! (the agent and the Net-entreprises mock, both real and in process, in the shared agent
//! test world of `iea-agent-testkit`, the agent called over mutual TLS with the generated
//! client, as the orchestrator calls it). Each binary uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use iea_agent_testkit::{Admin, TestWorld, direct_network, net_entreprises};
use iea_deposit_agent::{App, Options};
use iea_mock_kit::{FaultMode, FaultSettings};
use iea_mock_net_entreprises as mock;
use iea_proto::agent::v1::deposit_agent_client::DepositAgentClient;
use iea_proto::agent::v1::{
    DeclarantIdentity, DepositChunk, DepositResponse, DepositStart, ListDepositsRequest,
    ListDepositsResponse, NetEntreprisesAccess,
};
use iea_proto::common::v1::{ConnectionMode, NetworkSettings};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;

/// Bound on the agent's timeouts in these tests, so that "slow" is quick to show.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(1500);

/// An identity as the tests type it: one of the mock's accounts, or one changed from it.
pub type Identity = Account;
pub use iea_mock_net_entreprises::fixtures::{Account, DUPONT};
pub const WRONG_PASSWORD: Identity = Account {
    password: "Jardin#Partage2025",
    ..DUPONT
};

pub struct World {
    pub agent: DepositAgentClient<Channel>,
    pub mock: mock::Control,
    pub mock_https: String,
    pub mock_admin: Admin,
    pub mocks_ca: String,
    test: TestWorld,
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
        let test = TestWorld::new();
        let started = net_entreprises::start(&test, tweak).await;
        let agent_app = App::build_with(
            test.agent_settings("deposit-agent"),
            Options {
                max_timeout: Some(max_timeout),
            },
        )
        .await
        .unwrap();
        let channel = test.channel(
            "deposit-agent",
            agent_app.local_addr(),
            Duration::from_secs(60),
        );
        test.spawn(agent_app.run_until(test.shutdown()));
        Self {
            agent: DepositAgentClient::new(channel),
            mock: started.control,
            mock_https: started.https,
            mock_admin: Admin::new(
                started.admin_addr,
                net_entreprises::ADMIN_TOKEN,
                Duration::from_secs(30),
            ),
            mocks_ca: test.mocks_ca_pem(),
            test,
        }
    }

    pub async fn stop(self) {
        self.test.stop().await;
    }

    pub fn network(&self) -> NetworkSettings {
        direct_network(ConnectionMode::Secure, &self.mock_https, &self.mocks_ca)
    }

    pub fn access(&self, identity: Identity, network: NetworkSettings) -> NetEntreprisesAccess {
        let Account {
            siret,
            nom,
            prenom,
            password,
            ..
        } = identity;
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
        let mut messages = vec![announcement(
            access,
            file.len() as u64,
            Turn::default(),
            Vec::new(),
        )];
        messages.extend(file.chunks(chunk).map(|c| DepositChunk {
            data: c.to_vec(),
            ..Default::default()
        }));
        self.send(messages).await
    }

    /// One deposit call carrying `messages`.
    pub async fn send(
        &self,
        messages: Vec<DepositChunk>,
    ) -> Result<DepositResponse, tonic::Status> {
        self.agent
            .clone()
            .deposit(futures::stream::iter(messages))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Starts a deposit of `file` whose stream stays open after the file, as the
    /// orchestrator's: until [`OpenDeposit::withdraw`] (a withdrawal), or until the
    /// returned value is dropped (the stream's end).
    pub fn deposit_open(
        &self,
        identity: Identity,
        file: &[u8],
        at_once: u32,
        may_wait_ms: u64,
    ) -> OpenDeposit {
        use futures::StreamExt;
        let (withdraw, withdrawn) = tokio::sync::oneshot::channel::<()>();
        let first = announcement(
            self.access(identity, self.network()),
            file.len() as u64,
            Turn {
                at_once,
                may_wait_ms,
            },
            file.to_vec(),
        );
        let messages = futures::stream::iter([first]).chain(
            futures::stream::once(withdrawn).filter_map(|w| {
                std::future::ready(w.ok().map(|()| DepositChunk {
                    withdraw: true,
                    ..Default::default()
                }))
            }),
        );
        let mut agent = self.agent.clone();
        OpenDeposit {
            withdraw: Some(withdraw),
            answer: tokio::spawn(async move {
                agent
                    .deposit(messages)
                    .await
                    .map(tonic::Response::into_inner)
            }),
        }
    }

    /// Waits (at most 10 s) until the mock has registered `n` deposits.
    pub async fn registered(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.mock.deposits_list().await.len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the mock did not register {n} deposits"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn deposit(&self, identity: Identity, file: &[u8]) -> DepositResponse {
        self.deposit_with(self.access(identity, self.network()), file, 64 * 1024)
            .await
            .unwrap()
    }

    pub async fn list(&self, identity: Identity, debut: &str, fin: &str) -> ListDepositsResponse {
        self.list_with(identity, debut, fin, 0).await
    }

    /// A listing that waits for its turn among `at_once` requests at once.
    pub async fn list_with(
        &self,
        identity: Identity,
        debut: &str,
        fin: &str,
        at_once: u32,
    ) -> ListDepositsResponse {
        self.agent
            .clone()
            .list_deposits(ListDepositsRequest {
                access: Some(self.access(identity, self.network())),
                debut: debut.into(),
                fin: fin.into(),
                at_once,
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
        self.mock_admin.send(method, path, Some(body)).await;
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

/// A deposit under way whose stream is open (see [`World::deposit_open`]).
pub struct OpenDeposit {
    withdraw: Option<tokio::sync::oneshot::Sender<()>>,
    pub answer: tokio::task::JoinHandle<Result<DepositResponse, tonic::Status>>,
}

impl OpenDeposit {
    /// Sends the withdrawal.
    pub fn withdraw(&mut self) {
        if let Some(w) = self.withdraw.take() {
            let _ = w.send(());
        }
    }

    /// Its answer (at most 20 s).
    pub async fn answer(self) -> DepositResponse {
        let OpenDeposit { withdraw, answer } = self;
        let r = tokio::time::timeout(Duration::from_secs(20), answer)
            .await
            .expect("an answer within 20 s")
            .unwrap()
            .unwrap();
        drop(withdraw);
        r
    }
}

/// How a deposit waits for its turn (`0`: the agent's defaults).
#[derive(Debug, Clone, Copy, Default)]
pub struct Turn {
    pub at_once: u32,
    pub may_wait_ms: u64,
}

/// The first message of a deposit: its announcement, with `data`, the file's first bytes.
pub fn announcement(
    access: NetEntreprisesAccess,
    total_size: u64,
    turn: Turn,
    data: Vec<u8>,
) -> DepositChunk {
    DepositChunk {
        start: Some(DepositStart {
            access: Some(access),
            deposit_id: "test-deposit".into(),
            total_size,
            at_once: turn.at_once,
            may_wait_ms: turn.may_wait_ms,
        }),
        data,
        withdraw: false,
    }
}
