//! The orchestrator: the only owner of an installation's state (SQLite), the gRPC API
//! that front-ends use, and the caller of the three agents.
//!
//! Layout:
//! - [`store`]: the database, its migrations and queries;
//! - [`sessions`]: accounts' passwords (argon2id), the bootstrap administrator, sessions;
//! - [`agents`]: mutual-TLS channels to the agents, and their health;
//! - `api`: the tonic services, thin, mapping typed errors to `ApiError`.
//!
//! Invariants: front-ends never reach an agent, agents never reach a front-end; nothing
//! but this crate writes the database; no secret is logged or returned by the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use iea_proto::v1::board_server::BoardServer;
use iea_proto::v1::connection_server::ConnectionServer;
use iea_proto::v1::credentials_server::CredentialsServer;
use iea_proto::v1::deposits_server::DepositsServer;
use iea_proto::v1::returns_server::ReturnsServer;
use iea_proto::v1::sessions_server::SessionsServer;
use iea_proto::v1::status_server::StatusServer;
use iea_proto::v1::support_server::SupportServer;
use iea_proto::v1::updates_server::UpdatesServer;
use iea_proto::v1::users_server::UsersServer;
use iea_runtime::grpc::GrpcServer;
use iea_runtime::pki::TlsFiles;
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};
use tonic::server::NamedService;
use tonic::service::Routes;

pub mod access;
pub mod agents;
mod api;
pub mod assistance;
pub mod authenticator;
pub mod board;
pub mod connection;
pub mod credentials;
pub mod crypto;
pub mod deposits;
pub mod hashing;
pub mod network;
pub mod returns;
pub mod sessions;
pub mod status;
pub mod store;
pub mod support;
pub mod updates;
pub mod users;
pub mod vault;

pub use agents::AgentAddresses;

pub const COMPONENT: &str = "orchestrator";
/// Name of the database file in the data directory.
pub const DATABASE_FILE: &str = "iea.db";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Front-end API address.
    pub listen: SocketAddr,
    /// The orchestrator's certificate and key (served to front-ends, presented to agents)
    /// and the internal CA (agents' certificates must chain to it).
    pub tls: TlsFiles,
    /// Holds the SQLite database (unless `database.url` names another) and the bootstrap
    /// administrator's password file.
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub agents: AgentAddresses,
    /// The installed Impact emploi version.
    pub software_version: iea_version::ImpactVersion,
    /// Lifetime of a front-end session.
    pub session_ttl_secs: u64,
    /// Connection settings passed to the agents.
    pub network: network::NetworkDefaults,
    /// Consecutive Net-entreprises refusals after which an account is no longer verified
    /// until its identity changes.
    pub credential_failure_budget: u32,
    /// The key that seals stored secrets; default `<data_dir>/secrets.key`.
    pub secrets_key_file: Option<PathBuf>,
    /// When the installation authenticates.
    pub auth: authenticator::AuthSchedule,
    /// This workstation's name, sent when authenticating; default: the host name.
    pub workstation: Option<String>,
    /// Between two automatic update checks, in seconds; 0 disables them.
    pub update_check_interval_secs: u64,
    /// The installation's identity, when the deployment provides it. Read on first start
    /// only: afterwards the database (secrets sealed) is authoritative.
    pub installation: InstallationSettings,
    /// The DSN deposit queue: Net-entreprises' deposit and consultation addresses,
    /// concurrency, delays.
    pub deposits: deposits::DepositSettings,
    /// Returns of deposits and CRM PAS: the download address, the back-off, the scans.
    pub returns: returns::ReturnSettings,
    /// The deadline board: days after a due date before a missing CRM PAS is an alert.
    pub board: board::BoardSettings,
}

/// Where the state lives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host/db` (*réseau* mode: several workstations on one
    /// database server) or a SQLite file; default: `iea.db` in the data directory.
    pub url: Option<store::DatabaseUrl>,
}

impl Settings {
    /// The database this orchestrator uses.
    pub fn database_url(&self) -> store::DatabaseUrl {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| store::DatabaseUrl::Sqlite(self.data_dir.join(DATABASE_FILE)))
    }
}

/// An installation's identity as given to it (licence letter, support).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InstallationSettings {
    pub id: Option<String>,
    pub licence_key: Option<String>,
    /// Key of the daily password (its UTF-8 bytes are the HMAC key); support holds the
    /// same.
    pub daily_password_key: Option<String>,
}

impl std::fmt::Debug for InstallationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationSettings")
            .field("id", &self.id)
            .field("licence_key_set", &self.licence_key.is_some())
            .field("daily_password_key_set", &self.daily_password_key.is_some())
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".parse().expect("literal address"),
            tls: TlsFiles::default(),
            data_dir: PathBuf::from("data"),
            database: DatabaseSettings::default(),
            agents: AgentAddresses::default(),
            software_version: "3.00.70".parse().expect("literal version"),
            session_ttl_secs: 8 * 3600,
            network: network::NetworkDefaults::default(),
            credential_failure_budget: 2,
            secrets_key_file: None,
            auth: authenticator::AuthSchedule::default(),
            workstation: None,
            installation: InstallationSettings::default(),
            update_check_interval_secs: 6 * 3600,
            deposits: deposits::DepositSettings::default(),
            returns: returns::ReturnSettings::default(),
            board: board::BoardSettings::default(),
        }
    }
}

/// What every API service shares.
pub struct Core {
    pub(crate) store: store::Store,
    pub(crate) vault: vault::Vault,
    pub(crate) network: Arc<network::Network>,
    pub(crate) hub: Arc<status::StatusHub>,
    pub(crate) authenticator: authenticator::Authenticator,
    pub(crate) assistance: assistance::Assistance,
    pub(crate) sessions: sessions::Sessions,
    pub(crate) users: users::Users,
    pub(crate) credentials: credentials::Credentials,
    pub(crate) deposits: deposits::Deposits,
    pub(crate) returns: returns::Returns,
    pub(crate) board: board::Board,
    pub(crate) updates: updates::Updates,
    /// Fires when the server shuts down, ending long-lived streams.
    pub(crate) shutdown: Shutdown,
    pub(crate) agents: agents::Agents,
    pub(crate) installation_id: String,
    pub(crate) software_version: authenticator::InstalledVersion,
}

/// What the Impact emploi server must know of this installation. Given to the embedded
/// stack in process (it registers the installation with the mock); no API returns it.
pub struct Registration {
    pub installation_id: String,
    pub licence_key: secrecy::SecretString,
    /// Key of the daily password, shared with support.
    pub daily_password_key: secrecy::SecretString,
}

fn workstation_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "poste".to_owned())
}

pub struct App {
    server: GrpcServer,
    core: Arc<Core>,
    update_check_interval: Duration,
    registration: Registration,
    admin_password_file: Option<PathBuf>,
}

impl App {
    /// Opens (or creates) the database, creates the bootstrap administrator on first
    /// start, and binds the API.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.deposits.check()?;
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating {}", settings.data_dir.display()))?;
        let database = settings.database_url();
        let store = store::Store::open(&database).await?;
        tracing::info!(database = %database, "database open");
        let given_id = settings.installation.id.clone();
        let (installation_id, created) = store
            .installation_id_or_create(
                move || {
                    given_id.unwrap_or_else(|| {
                        format!("IEA-{}", sessions::random_secret(9).to_uppercase())
                    })
                },
                sessions::now(),
            )
            .await?;
        if created {
            tracing::info!(installation_id = %installation_id, "installation created");
        }
        let sessions = sessions::Sessions::new(
            store.clone(),
            Duration::from_secs(settings.session_ttl_secs),
        );
        let admin_password_file = sessions.bootstrap(&settings.data_dir).await?;
        let agents = agents::Agents::new(&settings.agents, &settings.tls)?;
        let key_file = settings
            .secrets_key_file
            .clone()
            .unwrap_or_else(|| settings.data_dir.join(crypto::KEY_FILE));
        let vault =
            vault::Vault::new(store.clone(), crypto::Keyring::load_or_create(&key_file)?).await?;
        let saved = connection::load(&store, &vault).await?;
        let network = Arc::new(network::Network::load(settings.network.clone(), saved)?);
        let credentials = credentials::Credentials::new(
            store.clone(),
            vault.clone(),
            agents.clone(),
            network.clone(),
            settings.credential_failure_budget,
        );
        // Given by the deployment when the server already knows the installation (compose);
        // otherwise made here on first start (the embedded stack registers them).
        let given = settings.installation.clone();
        let licence_key = vault
            .get_or_create("licence_key", move || {
                given
                    .licence_key
                    .unwrap_or_else(|| sessions::random_secret(18))
            })
            .await?;
        let given = settings.installation.clone();
        let daily_secret = vault
            .get_or_create("daily_password_key", move || {
                given
                    .daily_password_key
                    .unwrap_or_else(|| sessions::random_secret(32))
            })
            .await?;
        let hub = Arc::new(status::StatusHub::load(store.clone()).await?);
        let software_version =
            authenticator::InstalledVersion::load(store.clone(), settings.software_version).await?;
        let authenticator = authenticator::Authenticator::new(
            hub.clone(),
            agents.clone(),
            network.clone(),
            authenticator::Installation {
                id: installation_id.clone(),
                licence_key: licence_key.clone(),
                software_version: software_version.clone(),
                workstation: settings
                    .workstation
                    .clone()
                    .unwrap_or_else(workstation_name),
            },
            settings.auth.clone(),
        );
        let assistance = assistance::Assistance::new(
            store.clone(),
            hub.clone(),
            authenticator.clone(),
            installation_id.clone(),
            daily_secret.clone(),
        );
        let registration = Registration {
            installation_id: installation_id.clone(),
            licence_key,
            daily_password_key: daily_secret,
        };
        let updates = updates::Updates::new(
            agents.clone(),
            network.clone(),
            hub.clone(),
            software_version.clone(),
            authenticator.clone(),
        );
        let deposits = deposits::Deposits::new(
            store.clone(),
            vault.clone(),
            agents.clone(),
            network.clone(),
            settings.deposits.clone(),
            settings.credential_failure_budget,
            &settings.data_dir,
        )?
        .with_credentials(credentials.clone());
        let returns = returns::Returns::new(
            store.clone(),
            vault.clone(),
            Arc::new(agents.clone()),
            network.clone(),
            settings.returns.clone(),
            &settings.deposits,
            settings.credential_failure_budget,
            &settings.data_dir,
            returns::Clock::default(),
        )?;
        let core = Arc::new(Core {
            store: store.clone(),
            vault: vault.clone(),
            network: network.clone(),
            hub,
            authenticator,
            updates,
            assistance,
            sessions,
            users: users::Users::new(store.clone()),
            credentials,
            deposits,
            returns,
            board: board::Board::new(store.clone(), &settings.deposits, &settings.board),
            shutdown: Shutdown::new(),
            agents,
            installation_id,
            software_version,
        });

        let routes = Routes::new(StatusServer::new(api::StatusApi(core.clone())))
            .add_service(SessionsServer::new(api::SessionsApi(core.clone())))
            .add_service(UsersServer::new(api::UsersApi(core.clone())))
            .add_service(CredentialsServer::new(api::CredentialsApi(core.clone())))
            .add_service(ConnectionServer::new(api::ConnectionApi(core.clone())))
            .add_service(UpdatesServer::new(api::UpdatesApi(core.clone())))
            .add_service(SupportServer::new(api::SupportApi(core.clone())))
            .add_service(DepositsServer::new(api::DepositsApi(core.clone())))
            .add_service(ReturnsServer::new(api::ReturnsApi(core.clone())))
            .add_service(BoardServer::new(api::BoardApi(core.clone())));
        let names = [
            <StatusServer<api::StatusApi> as NamedService>::NAME,
            <SessionsServer<api::SessionsApi> as NamedService>::NAME,
            <UsersServer<api::UsersApi> as NamedService>::NAME,
            <CredentialsServer<api::CredentialsApi> as NamedService>::NAME,
            <ConnectionServer<api::ConnectionApi> as NamedService>::NAME,
            <UpdatesServer<api::UpdatesApi> as NamedService>::NAME,
            <SupportServer<api::SupportApi> as NamedService>::NAME,
            <DepositsServer<api::DepositsApi> as NamedService>::NAME,
            <ReturnsServer<api::ReturnsApi> as NamedService>::NAME,
            <BoardServer<api::BoardApi> as NamedService>::NAME,
        ];
        // Front-ends authenticate the orchestrator by its certificate, then open a session.
        let tls = iea_runtime::tls::server_config(&settings.tls, false)?;
        let server =
            GrpcServer::bind(COMPONENT, settings.listen, Some(tls), routes, &names).await?;
        Ok(Self {
            server,
            core,
            update_check_interval: Duration::from_secs(settings.update_check_interval_secs),
            admin_password_file,
            registration,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The clock of the following of returns: a test moves it ahead to make days pass.
    pub fn returns_clock(&self) -> returns::Clock {
        self.core.returns.clock()
    }

    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Set when this start created the bootstrap administrator.
    pub fn admin_password_file(&self) -> Option<&std::path::Path> {
        self.admin_password_file.as_deref()
    }

    /// Serves until `shutdown` fires, then drains: the API's in-flight calls, and the
    /// background loops (authentication, deposit queue, returns, update checks), each of
    /// which finishes the round under way (a pass over returns, an authentication already
    /// sent) and stops. The deposit queue takes no new deposit and waits for each attempt
    /// under way (a file being sent until its answer is written, a listing, a verification
    /// before a due date) at most `deposits.stop_deadline_secs`; one still running then is
    /// dropped with a warning and settled by listing at the next start. Once this
    /// returns, nothing of this orchestrator touches the database or a server any more, so
    /// that another one may start on the same database at once.
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let streams = self.core.shutdown.clone();
        let outer = shutdown.clone();
        tokio::spawn(async move {
            outer.wait().await;
            streams.trigger();
        });
        // The loops' own token: fires with `shutdown`, or alone if the server ends first.
        let stop = shutdown.child();
        let mut loops = vec![
            (
                "authentication",
                tokio::spawn(self.core.authenticator.clone().run(stop.clone())),
            ),
            (
                "deposits",
                tokio::spawn(self.core.deposits.clone().run(stop.clone())),
            ),
            (
                "returns",
                tokio::spawn(self.core.returns.clone().run(stop.clone())),
            ),
        ];
        if self.update_check_interval.as_secs() > 0 {
            loops.push((
                "update checks",
                tokio::spawn(
                    self.core
                        .updates
                        .clone()
                        .check_periodically(self.update_check_interval, stop.clone()),
                ),
            ));
        }
        let served = self.server.run_until(shutdown).await;
        // The server may also end on an error: the loops are stopped all the same.
        stop.trigger();
        for (name, task) in loops {
            if let Err(e) = task.await {
                tracing::error!(task = name, error = %e, "background task ended abnormally");
            }
        }
        served
    }
}
