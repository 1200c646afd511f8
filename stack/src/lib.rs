//! The whole iea-connect stack in one process: the three mock servers, the four agents,
//! the orchestrator and the web console in front of it, each on its own loopback port and
//! still talking HTTPS and mutual-TLS gRPC to the others, exactly as in separate
//! processes. `iea stack up` runs it for people; the end-to-end tests run it too.
//!
//! The composition root: this crate depends on every component, mock and front-end it
//! runs, so it sits at the top of the tree (`stack/`), not among the libraries of
//! `crates/`; it takes from a mock only what the mock's library exports.
//!
//! On first start it creates, in the data directory: `certs/` (internal CA, components'
//! certificates, mocks test CA), the SQLite database and `admin-password` (through the
//! orchestrator). On every start it writes `stack.json` (mode 0600: it holds the mocks'
//! admin token) naming every component's address.
//!
//! A component named in [`StackOptions::external`] is not run here: the stack reserves its
//! loopback port and writes the settings it must run with (`config/<component>.toml`,
//! 0600), and the caller runs its binary with them (`iea-orchestrator --config …`), so
//! that a test can kill that process and start it again on the same address.
//!
//! Tests move time and stop the orchestrator through the stack: [`RunningStack::advance_clocks`]
//! moves the Net-entreprises mock's clock and the embedded orchestrator's returns clock
//! together (so that days of returns pass without waiting), [`RunningStack::returns_clock`]
//! gives the latter, and [`RunningStack::stop_orchestrator`] /
//! [`RunningStack::start_orchestrator`] stop the embedded orchestrator as if its process
//! stopped and start it again on the same address, database and settings.
//!
//! With [`StackOptions::demo_account`] (`iea stack up --demo`), the Net-entreprises mock
//! knows a demonstration declarant ([`DEMO_DECLARANT`]) and the `Administrateur` account
//! deposits with its identity: a sample DSN of its SIRET (`iea dsn sample`) can be
//! deposited at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use iea_mock_kit::MockListen;
use iea_runtime::pki;
use iea_runtime::shutdown::Shutdown;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

/// Name of the file describing a running stack, in its data directory.
pub const STACK_FILE: &str = "stack.json";
/// The PKI directory, inside the data directory.
pub const CERTS_DIR: &str = "certs";

/// Adjusts the orchestrator's settings before it starts (tests: another address, a
/// shorter timeout).
pub type OrchestratorHook = Box<dyn FnOnce(&mut iea_orchestrator::Settings) + Send>;

#[derive(Default)]
pub struct StackOptions {
    pub data_dir: PathBuf,
    /// Load the mocks' demo fixtures.
    pub demo: bool,
    /// The orchestrator's database; `None`: the one this data directory used last
    /// (`database-url`), else SQLite in the data directory.
    pub database: Option<iea_orchestrator::store::DatabaseUrl>,
    pub customize_orchestrator: Option<OrchestratorHook>,
    /// Components run by separate processes (`orchestrator`, or an agent's name): the
    /// stack writes their settings to `config/<component>.toml` instead of running them.
    pub external: BTreeSet<String>,
    /// Registers the demonstration declarant at the Net-entreprises mock and, once, gives
    /// its identity to `Administrateur` for its SIRET (with an embedded orchestrator).
    pub demo_account: bool,
}

/// The settings directory of external components, inside the data directory.
pub const CONFIG_DIR: &str = "config";

/// The settings file an external `component` runs with.
pub fn config_file(data_dir: &Path, component: &str) -> PathBuf {
    data_dir.join(CONFIG_DIR).join(format!("{component}.toml"))
}

/// A fictitious declarant of the demonstration (`iea stack up --demo`).
#[derive(Debug, Clone, Copy)]
pub struct DemoDeclarant {
    pub siret: &'static str,
    pub nom: &'static str,
    pub prenom: &'static str,
    pub password: &'static str,
}

/// The demonstration declarant: registered to the deposit (25) and returns (97) services of
/// the Net-entreprises mock; a demonstration password, not a secret.
pub const DEMO_DECLARANT: DemoDeclarant = DemoDeclarant {
    siret: "73282932000074",
    nom: "DEMONSTRATION",
    prenom: "Camille",
    password: "Demo#Depot2026",
};

/// File, in the data directory, naming the database chosen with `--database` (0600: a
/// PostgreSQL URL may hold a password), so that later starts use it too.
pub const DATABASE_CHOICE_FILE: &str = "database-url";

/// The database chosen for the stack in `data_dir`, if one was.
pub fn chosen_database(
    data_dir: &Path,
) -> anyhow::Result<Option<iea_orchestrator::store::DatabaseUrl>> {
    let path = data_dir.join(DATABASE_CHOICE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => iea_orchestrator::store::DatabaseUrl::parse(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::from(e).context(format!("reading {}", path.display()))),
    }
}

/// Records `url` as the database of the stack in `data_dir`.
pub fn choose_database(
    data_dir: &Path,
    url: &iea_orchestrator::store::DatabaseUrl,
) -> anyhow::Result<()> {
    let text = serde_json::to_value(url)?
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    pki::write_file(&data_dir.join(DATABASE_CHOICE_FILE), text.as_bytes(), true)
}

impl StackOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Default::default()
        }
    }
}

/// How a mock is reached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MockAddresses {
    /// `https://127.0.0.1:PORT`
    pub https: String,
    /// `https://127.0.0.1:PORT`: the same service on the fallback port, where the mock
    /// has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// Base URL of the control API, e.g. `http://127.0.0.1:PORT/__admin`.
    pub admin: String,
}

/// Contents of `stack.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackFile {
    pub pid: u32,
    pub data_dir: PathBuf,
    /// Front-end API: `host:port`.
    pub orchestrator: String,
    /// This installation, as the authentication server knows it.
    pub installation_id: String,
    /// CA that front-ends trust to reach the orchestrator.
    pub ca: PathBuf,
    /// Name to check in the orchestrator's certificate.
    pub orchestrator_server_name: String,
    pub agents: BTreeMap<String, String>,
    pub mocks: BTreeMap<String, MockAddresses>,
    /// Bearer token of every mock's control API.
    pub mocks_admin_token: String,
    /// CA of the mocks' certificates.
    pub mocks_ca: PathBuf,
    /// Components this stack does not run, each with its settings file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external: BTreeMap<String, PathBuf>,
    /// The web console, `http://127.0.0.1:PORT` (absent from a stack that has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
}

impl StackFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(STACK_FILE)
    }

    /// Reads `stack.json`; relative paths in it are relative to `data_dir` (a file
    /// written inside a container for a directory mounted from the host).
    pub fn read(data_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(data_dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut file: Self =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for p in [&mut file.ca, &mut file.mocks_ca, &mut file.data_dir] {
            if p.is_relative() {
                *p = data_dir.join(&*p);
            }
        }
        Ok(file)
    }
}

/// A started stack. Dropping it does not stop it: call [`RunningStack::stop`].
pub struct RunningStack {
    pub file: StackFile,
    orchestrator_stop: Shutdown,
    mocks_stop: Shutdown,
    web_stop: Shutdown,
    web_task: JoinHandle<anyhow::Result<()>>,
    /// `None` when the orchestrator is external or stopped.
    orchestrator_task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The embedded orchestrator's settings as it was built with (its bound address
    /// included), to start it again; `None` when it is external.
    orchestrator_settings: Option<iea_orchestrator::Settings>,
    /// The embedded orchestrator's returns clock; while it is stopped, a clock of its own
    /// that keeps the offset the next start takes. `None` when it is external.
    returns_clock: Option<iea_orchestrator::returns::Clock>,
    /// The Net-entreprises mock's controls (its clock).
    net_entreprises: iea_mock_net_entreprises::Control,
    /// Each agent with the token that stops it alone.
    agent_tasks: BTreeMap<String, (Shutdown, JoinHandle<anyhow::Result<()>>)>,
    mock_tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// The installation's licence key and daily-password key, for tests that prove
    /// they appear nowhere.
    installation_secrets: (secrecy::SecretString, secrecy::SecretString),
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn spawn<F>(f: F) -> JoinHandle<anyhow::Result<()>>
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::spawn(f)
}

fn mock_addresses(https: SocketAddr, http: SocketAddr, admin: SocketAddr) -> MockAddresses {
    MockAddresses {
        https: format!("https://{https}"),
        fallback: None,
        http: format!("http://{http}"),
        admin: format!("http://{admin}/__admin"),
    }
}

impl RunningStack {
    /// Starts every component; returns once all listen.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        iea_runtime::install_crypto_provider();
        let data_dir = options.data_dir.clone();
        let data_dir = &data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        let certs = data_dir.join(CERTS_DIR);
        if pki::init(&certs, &[])? == pki::InitOutcome::Created {
            tracing::info!(dir = %certs.display(), "certificates created");
        }
        let mocks_stop = Shutdown::new();
        let orchestrator_stop = Shutdown::new();

        // Mocks.
        let admin_token = random_token();
        let listen = MockListen {
            https_listen: loopback(),
            fallback_listen: loopback(),
            http_listen: loopback(),
            admin_listen: loopback(),
            tls: pki::mock_files(&certs),
            admin_token: admin_token.clone(),
        };
        let mut mocks = BTreeMap::new();
        let mut mock_tasks = Vec::new();

        // Mocks listen where they did last time when they can, so that saved connection
        // settings still point at them after a restart.
        let mut ports = Ports::load(&data_dir);
        // The update server's keys and root stay across restarts, so the update client's
        // trust (and its rollback protection) does too.
        let updates_repo = data_dir.join("updates-repository");
        let updates_root = updates_repo.join("root.json");
        let auth = build_reusing(&ports, "impact-emploi-auth", &listen, |listen| {
            iea_mock_auth::App::build(iea_mock_auth::Settings {
                listen,
                fixtures: None,
            })
        })
        .await?;
        ports.record(
            "impact-emploi-auth",
            auth.https_addr(),
            Some(auth.fallback_addr()),
            auth.http_addr(),
            auth.admin_addr(),
        );
        if options.demo {
            let demo = iea_mock_auth::store::Fixtures::demo()?;
            for i in demo.installations {
                auth.store().upsert(i.try_into()?);
            }
        }
        let auth_store = auth.store().clone();
        let auth_fallback_port = auth.fallback_addr().port();
        mocks.insert(
            "impact-emploi-auth".to_owned(),
            MockAddresses {
                fallback: Some(format!("https://{}", auth.fallback_addr())),
                ..mock_addresses(auth.https_addr(), auth.http_addr(), auth.admin_addr())
            },
        );
        mock_tasks.push(spawn(auth.run_until(mocks_stop.clone())));

        let updates = build_reusing(&ports, "impact-emploi-updates", &listen, |listen| {
            iea_mock_updates::App::build(iea_mock_updates::Settings {
                listen,
                repository_dir: Some(updates_repo.clone()),
                root_file: Some(updates_root.clone()),
                ..Default::default()
            })
        })
        .await?;
        ports.record(
            "impact-emploi-updates",
            updates.https_addr(),
            None,
            updates.http_addr(),
            updates.admin_addr(),
        );
        mocks.insert(
            "impact-emploi-updates".to_owned(),
            mock_addresses(
                updates.https_addr(),
                updates.http_addr(),
                updates.admin_addr(),
            ),
        );
        mock_tasks.push(spawn(updates.run_until(mocks_stop.clone())));

        let ne = build_reusing(&ports, "net-entreprises", &listen, |listen| {
            iea_mock_net_entreprises::App::build(iea_mock_net_entreprises::Settings {
                listen,
                ..Default::default()
            })
        })
        .await?;
        ports.record(
            "net-entreprises",
            ne.https_addr(),
            None,
            ne.http_addr(),
            ne.admin_addr(),
        );
        ports.save(&data_dir);
        if options.demo_account {
            let d = DEMO_DECLARANT;
            let declarant: iea_mock_net_entreprises::declarants::NewDeclarant =
                serde_json::from_value(serde_json::json!({
                    "siret": d.siret, "nom": d.nom, "prenom": d.prenom,
                    "motdepasse": d.password, "services": [25, 97],
                }))?;
            ne.control()
                .add_declarant(declarant)
                .map_err(|e| anyhow::anyhow!("demonstration declarant: {e:?}"))?;
        }
        mocks.insert(
            "net-entreprises".to_owned(),
            mock_addresses(ne.https_addr(), ne.http_addr(), ne.admin_addr()),
        );
        let net_entreprises = ne.control();
        mock_tasks.push(spawn(ne.run_until(mocks_stop.clone())));

        // Agents.
        let mut agents = BTreeMap::new();
        let mut agent_tasks = BTreeMap::new();
        let mut external = BTreeMap::new();
        for name in &options.external {
            anyhow::ensure!(
                name == iea_orchestrator::COMPONENT || AGENTS.contains(&name.as_str()),
                "no component named {name}"
            );
        }
        for name in AGENTS {
            if options.external.contains(name) {
                let addr = reserve_port()?;
                let file = config_file(&data_dir, name);
                write_config(&file, &agent_config(name, addr, &data_dir)?)?;
                agents.insert(name.to_owned(), addr.to_string());
                external.insert(name.to_owned(), file);
                continue;
            }
            let stop = Shutdown::new();
            let (addr, task) = start_agent(name, loopback(), &data_dir, stop.clone()).await?;
            agents.insert(name.to_owned(), addr.to_string());
            agent_tasks.insert(name.to_owned(), (stop, task));
        }

        // Orchestrator.
        let database = match options.database {
            Some(url) => {
                choose_database(&data_dir, &url)?;
                Some(url)
            }
            None => chosen_database(&data_dir)?,
        };
        let mut orchestrator_settings = iea_orchestrator::Settings {
            listen: loopback(),
            tls: pki::component_files(&certs, iea_orchestrator::COMPONENT),
            data_dir: data_dir.clone(),
            database: iea_orchestrator::DatabaseSettings { url: database },
            agents: iea_orchestrator::AgentAddresses {
                auth_client: agents[iea_auth_client::COMPONENT].clone(),
                update_client: agents[iea_update_client::COMPONENT].clone(),
                credential_verifier: agents[iea_credential_verifier::COMPONENT].clone(),
                deposit_agent: agents[iea_deposit_agent::COMPONENT].clone(),
            },
            // The mock serves deposit and consultation on its one HTTPS address.
            deposits: iea_orchestrator::deposits::DepositSettings {
                deposit_address: mocks["net-entreprises"].https.clone(),
                consultation_address: mocks["net-entreprises"].https.clone(),
                ..Default::default()
            },
            network: iea_orchestrator::network::NetworkDefaults {
                auth_server: mocks["impact-emploi-auth"].https.clone(),
                update_server: mocks["impact-emploi-updates"].https.clone(),
                net_entreprises: format!(
                    "{}{}",
                    mocks["net-entreprises"].https,
                    iea_mock_net_entreprises::AUTH_PATH
                ),
                extra_ca_file: Some(pki::mock_files(&certs).ca),
                fallback_port: auth_fallback_port,
                ..Default::default()
            },
            ..Default::default()
        };
        if let Some(customize) = options.customize_orchestrator {
            customize(&mut orchestrator_settings);
        }
        let mut embedded = None;
        let (registration, orchestrator_addr, orchestrator_task) =
            if options.external.contains(iea_orchestrator::COMPONENT) {
                // Its identity is given in its settings (as compose does), so that the
                // auth mock can know it before the process starts.
                let file = config_file(&data_dir, iea_orchestrator::COMPONENT);
                orchestrator_settings.listen = reserve_port()?;
                orchestrator_settings.installation = installation_of(&file)?;
                let i = &orchestrator_settings.installation;
                let registration = iea_orchestrator::Registration {
                    installation_id: i.id.clone().unwrap_or_default(),
                    licence_key: i.licence_key.clone().unwrap_or_default().into(),
                    daily_password_key: i.daily_password_key.clone().unwrap_or_default().into(),
                };
                write_config(&file, &toml::to_string(&orchestrator_settings)?)?;
                external.insert(iea_orchestrator::COMPONENT.to_owned(), file);
                (registration, orchestrator_settings.listen, None)
            } else {
                let orchestrator =
                    iea_orchestrator::App::build(orchestrator_settings.clone()).await?;
                let reg = orchestrator.registration();
                let registration = iea_orchestrator::Registration {
                    installation_id: reg.installation_id.clone(),
                    licence_key: reg.licence_key.clone(),
                    daily_password_key: reg.daily_password_key.clone(),
                };
                let addr = orchestrator.local_addr();
                orchestrator_settings.listen = addr;
                embedded = Some((orchestrator_settings, orchestrator.returns_clock()));
                let task = spawn(orchestrator.run_until(orchestrator_stop.clone()));
                (registration, addr, Some(task))
            };
        // The mock server keeps no state across starts: tell it about this installation
        // every time, as its licence would be known to the real server.
        let reg = &registration;
        auth_store.upsert(iea_mock_auth::store::Installation {
            installation_id: reg.installation_id.clone(),
            licence_key: reg.licence_key.expose_secret().to_owned(),
            status: iea_mock_auth::store::LicenceStatus::Active,
            licence_holder: "Association de démonstration".to_owned(),
            valid_until: None,
            secret: Some(reg.daily_password_key.expose_secret().as_bytes().to_vec()),
        });
        let installation_id = reg.installation_id.clone();
        let installation_secrets = (reg.licence_key.clone(), reg.daily_password_key.clone());

        // The web console, in front of the orchestrator, on its former port when free.
        let web_settings = |port: u16| iea_web::Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            orchestrator: orchestrator_addr.to_string(),
            ca: certs.join("ca.pem"),
            orchestrator_server_name: iea_orchestrator::COMPONENT.to_owned(),
            secure_cookies: false,
            tls: None,
            upload_dir: Some(data_dir.join("web-uploads")),
        };
        let former = ports.0.get("web").and_then(|p| p.get("http")).copied();
        let web = match former {
            Some(port) => match iea_web::App::build(web_settings(port)).await {
                Ok(app) => app,
                Err(e) => {
                    tracing::warn!(
                        port,
                        error = format!("{e:#}"),
                        "former web port unavailable"
                    );
                    iea_web::App::build(web_settings(0)).await?
                }
            },
            None => iea_web::App::build(web_settings(0)).await?,
        };
        let web_addr = web.local_addr();
        ports.0.insert(
            "web".to_owned(),
            BTreeMap::from([("http".to_owned(), web_addr.port())]),
        );
        ports.save(&data_dir);
        let web_stop = Shutdown::new();
        let web_task = spawn(web.run_until(web_stop.clone()));

        let file = StackFile {
            pid: std::process::id(),
            data_dir: data_dir.clone(),
            orchestrator: orchestrator_addr.to_string(),
            installation_id,
            ca: certs.join("ca.pem"),
            orchestrator_server_name: iea_orchestrator::COMPONENT.to_owned(),
            agents,
            mocks,
            mocks_admin_token: admin_token,
            mocks_ca: pki::mock_files(&certs).ca,
            external,
            web: Some(format!("http://{web_addr}")),
        };
        // Before stack.json: whoever waits for it finds the demonstration ready.
        if options.demo_account && orchestrator_task.is_some() {
            demo_account(&file).await?;
        }
        pki::write_file(
            &StackFile::path(&data_dir),
            serde_json::to_string_pretty(&file)?.as_bytes(),
            true,
        )?;
        tracing::info!(orchestrator = %file.orchestrator, "stack started");
        Ok(Self {
            file,
            orchestrator_stop,
            mocks_stop,
            web_stop,
            web_task,
            orchestrator_task,
            orchestrator_settings: embedded.as_ref().map(|(s, _)| s.clone()),
            returns_clock: embedded.map(|(_, c)| c),
            net_entreprises,
            agent_tasks,
            installation_secrets,
            mock_tasks,
        })
    }

    /// Stops the web console, the orchestrator (draining its calls), then the agents, then
    /// the mocks, and removes `stack.json`. Returns the first failure any component reported.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut first_error = None;
        let mut note = |r: Result<anyhow::Result<()>, tokio::task::JoinError>| {
            let r = r.map_err(anyhow::Error::from).and_then(|x| x);
            if let Err(e) = r {
                tracing::error!(error = format!("{e:#}"), "component failed");
                first_error.get_or_insert(e);
            }
        };
        self.web_stop.trigger();
        note(self.web_task.await);
        self.orchestrator_stop.trigger();
        if let Some(task) = self.orchestrator_task {
            note(task.await);
        }
        for (stop, _) in self.agent_tasks.values() {
            stop.trigger();
        }
        for (_, (_, t)) in self.agent_tasks {
            note(t.await);
        }
        self.mocks_stop.trigger();
        for t in self.mock_tasks {
            note(t.await);
        }
        let _ = std::fs::remove_file(StackFile::path(&self.file.data_dir));
        tracing::info!("stack stopped");
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A free loopback port (bound, then released for the external process to take).
fn reserve_port() -> anyhow::Result<SocketAddr> {
    Ok(iea_runtime::ports::reserve_loopback_port()?)
}

/// Writes an external component's settings (0600: they may name a database password or
/// the installation's keys).
fn write_config(file: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    pki::write_file(file, text.as_bytes(), true)
}

/// The identity of an external orchestrator: the one its settings file already gives
/// (the database keeps the first one anyway), else a new one.
fn installation_of(file: &Path) -> anyhow::Result<iea_orchestrator::InstallationSettings> {
    if let Ok(text) = std::fs::read_to_string(file) {
        let former: iea_orchestrator::Settings =
            toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let i = former.installation;
        if i.id.is_some() && i.licence_key.is_some() && i.daily_password_key.is_some() {
            return Ok(i);
        }
    }
    Ok(iea_orchestrator::InstallationSettings {
        id: Some(format!("IEA-{}", random_token()[..12].to_uppercase())),
        licence_key: Some(random_token()),
        daily_password_key: Some(random_token()),
    })
}

/// The settings file of agent `name` run as its own process on `listen`.
fn agent_config(name: &str, listen: SocketAddr, data_dir: &Path) -> anyhow::Result<String> {
    let settings = iea_runtime::agent::AgentSettings {
        listen,
        tls: pki::component_files(&data_dir.join(CERTS_DIR), name),
    };
    Ok(match name {
        iea_update_client::COMPONENT => {
            toml::to_string(&update_client_settings(settings, data_dir))?
        }
        _ => toml::to_string(&settings)?,
    })
}

fn update_client_settings(
    agent: iea_runtime::agent::AgentSettings,
    data_dir: &Path,
) -> iea_update_client::Settings {
    iea_update_client::Settings {
        agent,
        state_dir: data_dir.join("update-client"),
        install_dir: data_dir.join("impact-emploi"),
        trusted_root: Some(data_dir.join("updates-repository").join("root.json")),
        installed_version: Some(INSTALLED_VERSION.to_owned()),
        ..Default::default()
    }
}

/// `msg` with the session `token`.
fn authed<T>(token: &str, msg: T) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

/// `--demo`: the `Administrateur` account deposits with the demonstration declarant's
/// identity, set as a front-end would (its session, its password). Done once: an account
/// that already has an identity keeps it; without the bootstrap password file (a person
/// took it away), nothing is set.
async fn demo_account(file: &StackFile) -> anyhow::Result<()> {
    use iea_proto::v1::credentials_client::CredentialsClient;
    use iea_proto::v1::deposits_client::DepositsClient;
    use iea_proto::v1::sessions_client::SessionsClient;
    use iea_proto::v1::{
        GetCredentialsRequest, LoginRequest, LogoutRequest, NetEntreprisesIdentity,
        SetCredentialsRequest, SetDepositAccountRequest,
    };
    const ADMIN: &str = "Administrateur";
    let Ok(password) = std::fs::read_to_string(file.data_dir.join("admin-password")) else {
        tracing::info!("no bootstrap password file: the demonstration account is left as it is");
        return Ok(());
    };
    let password = password.trim().to_owned();
    let tls = iea_runtime::tls::front_end_config(&file.ca, &file.orchestrator_server_name)?;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://{}", file.orchestrator))?
            .tls_config(tls)?
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .connect()
            .await
            .context("reaching the orchestrator")?;
    let mut sessions = SessionsClient::new(channel.clone());
    let token = match sessions
        .login(LoginRequest {
            user: ADMIN.into(),
            password: password.clone(),
        })
        .await
    {
        Ok(r) => r.into_inner().token,
        Err(e) => {
            tracing::warn!(
                code = ?e.code(),
                "the bootstrap password no longer opens a session: the demonstration account is left as it is"
            );
            return Ok(());
        }
    };
    let mut credentials = CredentialsClient::new(channel.clone());
    let current = credentials
        .get_credentials(authed(
            &token,
            GetCredentialsRequest { user: ADMIN.into() },
        )?)
        .await
        .context("reading the administrator's identity")?
        .into_inner();
    let d = DEMO_DECLARANT;
    if !current.configured {
        credentials
            .set_credentials(authed(
                &token,
                SetCredentialsRequest {
                    user: ADMIN.into(),
                    account_password: password,
                    identity: Some(NetEntreprisesIdentity {
                        siret: d.siret.into(),
                        nom: d.nom.into(),
                        prenom: d.prenom.into(),
                        password: d.password.into(),
                    }),
                },
            )?)
            .await
            .context("setting the demonstration identity")?;
        DepositsClient::new(channel.clone())
            .set_deposit_account(authed(
                &token,
                SetDepositAccountRequest {
                    siret: d.siret.into(),
                    user: ADMIN.into(),
                },
            )?)
            .await
            .context("designating the demonstration account")?;
        tracing::info!(siret = d.siret, "demonstration account ready to deposit");
    }
    let _ = sessions.logout(authed(&token, LogoutRequest {})?).await;
    Ok(())
}

/// The Impact emploi version the embedded stack starts with: the update mock's first
/// release, so that its repository offers the next one (one definition, the mock's).
pub const INSTALLED_VERSION: &str = iea_mock_updates::fixtures::FIRST;

/// The agents, by component name.
pub const AGENTS: [&str; 4] = [
    iea_auth_client::COMPONENT,
    iea_update_client::COMPONENT,
    iea_credential_verifier::COMPONENT,
    iea_deposit_agent::COMPONENT,
];

/// Builds and spawns agent `name` on `listen`.
async fn start_agent(
    name: &str,
    listen: SocketAddr,
    data_dir: &Path,
    stop: Shutdown,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let settings = iea_runtime::agent::AgentSettings {
        listen,
        tls: pki::component_files(&data_dir.join(CERTS_DIR), name),
    };
    Ok(match name {
        iea_auth_client::COMPONENT => {
            let app = iea_auth_client::App::build(settings).await?;
            (app.local_addr(), spawn(app.run_until(stop)))
        }
        iea_update_client::COMPONENT => {
            let app =
                iea_update_client::App::build(update_client_settings(settings, data_dir)).await?;
            (app.local_addr(), spawn(app.run_until(stop)))
        }
        iea_credential_verifier::COMPONENT => {
            let app = iea_credential_verifier::App::build(settings).await?;
            (app.local_addr(), spawn(app.run_until(stop)))
        }
        iea_deposit_agent::COMPONENT => {
            let app = iea_deposit_agent::App::build(settings).await?;
            (app.local_addr(), spawn(app.run_until(stop)))
        }
        other => anyhow::bail!("no agent named {other}"),
    })
}

impl RunningStack {
    /// The clock of the embedded orchestrator's following of returns (`None` when the
    /// orchestrator is external). A test that moves it alone makes the orchestrator's time
    /// differ from Net-entreprises'; [`RunningStack::advance_clocks`] moves both. A start
    /// after [`RunningStack::stop_orchestrator`] gives the orchestrator a new clock (with
    /// the same offset): take it again then.
    pub fn returns_clock(&self) -> Option<iea_orchestrator::returns::Clock> {
        self.returns_clock.clone()
    }

    /// Makes `secs` pass (negative: go back) for the Net-entreprises mock (its clock: token
    /// expiry, deposit dates, listing windows, publication of returns) and the embedded
    /// orchestrator's returns clock together, as `POST /__admin/clock` would for the mock.
    /// While the orchestrator is stopped, its start takes the moved time. Answers the
    /// mock's offset from the real time, seconds.
    pub fn advance_clocks(&self, secs: i64) -> i64 {
        if let Some(clock) = &self.returns_clock {
            clock.advance(secs);
        }
        self.net_entreprises.advance_clock_secs(secs)
    }

    /// Stops the embedded orchestrator (draining its calls), as if its process stopped;
    /// the web console, the agents and the mocks keep running. Its time goes on moving with
    /// [`RunningStack::advance_clocks`] for its next start.
    pub async fn stop_orchestrator(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.orchestrator_settings.is_some(),
            "the orchestrator is external"
        );
        let task = self
            .orchestrator_task
            .take()
            .ok_or_else(|| anyhow::anyhow!("the orchestrator is not running"))?;
        self.orchestrator_stop.trigger();
        // From now on the stopped orchestrator's clock is no longer moved: work it may
        // still finish keeps its own time.
        if let Some(clock) = &self.returns_clock {
            let detached = iea_orchestrator::returns::Clock::default();
            detached.advance(clock.offset());
            self.returns_clock = Some(detached);
        }
        task.await??;
        Ok(())
    }

    /// Starts the embedded orchestrator again on its former address, with the settings
    /// and the database it had, and its returns clock where it was left.
    pub async fn start_orchestrator(&mut self) -> anyhow::Result<()> {
        let settings = self
            .orchestrator_settings
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the orchestrator is external"))?;
        anyhow::ensure!(
            self.orchestrator_task.is_none(),
            "the orchestrator is running"
        );
        let orchestrator = iea_orchestrator::App::build(settings).await?;
        let clock = orchestrator.returns_clock();
        if let Some(former) = &self.returns_clock {
            clock.advance(former.offset() - clock.offset());
        }
        self.returns_clock = Some(clock);
        self.orchestrator_stop = Shutdown::new();
        self.orchestrator_task = Some(spawn(
            orchestrator.run_until(self.orchestrator_stop.clone()),
        ));
        tracing::info!(orchestrator = %self.file.orchestrator, "orchestrator started again");
        Ok(())
    }

    /// The installation's licence key and daily-password key (never in `stack.json`).
    pub fn installation_secrets(&self) -> &(secrecy::SecretString, secrecy::SecretString) {
        &self.installation_secrets
    }

    /// Stops one agent, as if its process died (tests of the orchestrator's resilience).
    pub async fn stop_agent(&mut self, name: &str) -> anyhow::Result<()> {
        let (stop, task) = self
            .agent_tasks
            .remove(name)
            .ok_or_else(|| anyhow::anyhow!("agent {name} is not running"))?;
        stop.trigger();
        task.await??;
        Ok(())
    }

    /// Starts a stopped agent again on its former address.
    pub async fn start_agent(&mut self, name: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.agent_tasks.contains_key(name),
            "agent {name} is running"
        );
        let addr: SocketAddr = self
            .file
            .agents
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("no agent named {name}"))?
            .parse()?;
        let stop = Shutdown::new();
        let (_, task) = start_agent(name, addr, &self.file.data_dir, stop.clone()).await?;
        self.agent_tasks.insert(name.to_owned(), (stop, task));
        Ok(())
    }
}

/// The mocks' ports of the last start (`ports.json`, kept across stops).
#[derive(Default, Serialize, Deserialize)]
struct Ports(BTreeMap<String, BTreeMap<String, u16>>);

const PORTS_FILE: &str = "ports.json";

impl Ports {
    fn load(dir: &Path) -> Self {
        std::fs::read_to_string(dir.join(PORTS_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save(&self, dir: &Path) {
        if let Ok(text) = serde_json::to_string_pretty(self)
            && let Err(e) = pki::write_file(&dir.join(PORTS_FILE), text.as_bytes(), false)
        {
            tracing::warn!(error = %e, "ports not recorded");
        }
    }

    /// `base` with the ports `mock` had last time, if it had any.
    fn listen(&self, mock: &str, base: &MockListen) -> Option<MockListen> {
        let p = self.0.get(mock)?;
        let at = |key: &str, default: SocketAddr| {
            p.get(key)
                .map(|port| SocketAddr::new(default.ip(), *port))
                .unwrap_or(default)
        };
        Some(MockListen {
            https_listen: at("https", base.https_listen),
            fallback_listen: at("fallback", base.fallback_listen),
            http_listen: at("http", base.http_listen),
            admin_listen: at("admin", base.admin_listen),
            ..base.clone()
        })
    }

    fn record(
        &mut self,
        mock: &str,
        https: SocketAddr,
        fallback: Option<SocketAddr>,
        http: SocketAddr,
        admin: SocketAddr,
    ) {
        let mut p = BTreeMap::from([
            ("https".to_owned(), https.port()),
            ("http".to_owned(), http.port()),
            ("admin".to_owned(), admin.port()),
        ]);
        if let Some(f) = fallback {
            p.insert("fallback".to_owned(), f.port());
        }
        self.0.insert(mock.to_owned(), p);
    }
}

/// Builds a mock on its former ports, or on new ones if those are taken.
async fn build_reusing<A, F, Fut>(
    ports: &Ports,
    mock: &str,
    base: &MockListen,
    build: F,
) -> anyhow::Result<A>
where
    F: Fn(MockListen) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<A>>,
{
    if let Some(listen) = ports.listen(mock, base) {
        match build(listen).await {
            Ok(app) => return Ok(app),
            Err(e) => tracing::warn!(
                mock,
                error = format!("{e:#}"),
                "former ports unavailable, taking new ones"
            ),
        }
    }
    build(base.clone()).await
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
