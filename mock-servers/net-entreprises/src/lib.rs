//! Mock of the Net-entreprises authentication service (`/authentifier/1.0/`), behaving as
//! the real one does as far as public sources tell (see `README.md` beside this crate and
//! `shared/net-entreprises-api.md`): XML body, 415 and 422 form checks, 200 with a base64
//! token and `Expires`, 401 with the exact `WWW-Authenticate` realms, 403 once an account
//! has had `lock_threshold` consecutive failures, 500 for the nom `kaboom`, and the mock
//! kit's faults (503, slow, reset).
//!
//! Layout:
//! - [`form`]: the XML body and the form checks;
//! - [`declarants`]: accounts, fixtures, failed-login counters and the decision;
//! - `service`: the authentication route;
//! - `admin`: the control API under `/__admin/`;
//! - [`Control`]: the same controls in process, for tests that embed the mock.

pub mod declarants;
pub mod form;

mod admin;
mod service;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use iea_mock_kit::{Faults, MockListen, MockServer};
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};

use crate::declarants::{DeclarantState, Declarants, Duplicate, Fixtures, NewDeclarant};
use crate::form::FormRules;

/// Name of the binary's settings (`IEA_MOCK_NET_ENTREPRISES__*`) and of the mock in logs.
pub const COMPONENT: &str = "mock-net-entreprises";

/// The authentication route, with its trailing slash as the publisher writes it (the
/// route without it is served too).
pub const AUTH_PATH: &str = "/authentifier/1.0/";

/// What a declarant registered on the portal but not to the requested service gets.
/// Sources differ: the publisher's guide gives a realm of its own, the simulator kit
/// answers like a wrong password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotRegisteredAnswer {
    /// 401 `DSNLogin realm="Utilisateur non-inscrit au service"`.
    #[default]
    Realm,
    /// 401 `Basic realm="net-entreprises.fr"`, as the simulator kit does.
    WrongCredentials,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub listen: MockListen,
    /// Declarants to start with (JSON, see `fixtures/declarants.json`). Unset: the
    /// fixtures bundled in the crate.
    pub fixtures: Option<PathBuf>,
    /// Consecutive failed logins that lock an account (0: never). The real threshold is
    /// not published.
    pub lock_threshold: u32,
    /// Lifetime of a token, announced in the `Expires` header of a 200.
    pub token_lifetime_secs: u64,
    pub not_registered: NotRegisteredAnswer,
    /// Form checks that can be tuned: element order, length limits.
    pub form: FormRules,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: MockListen::default(),
            fixtures: None,
            lock_threshold: 5,
            token_lifetime_secs: 3600,
            not_registered: NotRegisteredAnswer::Realm,
            form: FormRules::default(),
        }
    }
}

/// Counters of the authentication route, as `GET /__admin/stats` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every request that reached the authentication route, refused ones included (a 503
    /// of the `unavailable` fault or a reset connection never reaches it).
    pub auth_requests: u64,
    /// Answers of the route by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// 200 answers.
    pub tokens_issued: u64,
    /// 401 `Basic realm="net-entreprises.fr"` answers: unknown account or wrong password.
    pub failed_logins: u64,
}

struct Inner {
    declarants: Mutex<Declarants>,
    stats: Mutex<Stats>,
    faults: Faults,
    lock_threshold: u32,
    token_lifetime: Duration,
    not_registered: NotRegisteredAnswer,
    form: FormRules,
}

/// The mock's state and controls, shared by its routes; cheap to clone. Tests that embed
/// the mock may use it instead of the admin API.
#[derive(Clone)]
pub struct Control(Arc<Inner>);

impl Control {
    fn declarants(&self) -> MutexGuard<'_, Declarants> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.0.declarants.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats_mut(&self) -> MutexGuard<'_, Stats> {
        self.0.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a declarant; a triple SIRET, nom, prénom already known is refused with the id
    /// it has.
    pub fn add_declarant(&self, new: NewDeclarant) -> Result<u64, Duplicate> {
        self.declarants().add(new)
    }

    pub fn declarant(&self, id: u64) -> Option<DeclarantState> {
        self.declarants().get(id)
    }

    pub fn declarants_list(&self) -> Vec<DeclarantState> {
        self.declarants().list()
    }

    pub fn unlock(&self, id: u64) -> Option<DeclarantState> {
        self.declarants().unlock(id)
    }

    pub fn stats(&self) -> Stats {
        self.stats_mut().clone()
    }

    /// The kit's faults of this mock (`POST /__admin/faults`).
    pub fn faults(&self) -> &Faults {
        &self.0.faults
    }
}

/// The mock, bound and ready to run.
pub struct App {
    server: MockServer,
    control: Control,
}

impl App {
    /// Loads the fixtures and binds the three listeners: the ports are ready on return.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let fixtures = match &settings.fixtures {
            Some(path) => Fixtures::load(path)?,
            None => Fixtures::bundled()?,
        };
        let faults = Faults::default();
        let control = Control(Arc::new(Inner {
            declarants: Mutex::new(Declarants::from_fixtures(fixtures)?),
            stats: Mutex::new(Stats::default()),
            faults: faults.clone(),
            lock_threshold: settings.lock_threshold,
            token_lifetime: Duration::from_secs(settings.token_lifetime_secs),
            not_registered: settings.not_registered,
            form: settings.form.clone(),
        }));
        let service = Router::new()
            .route(AUTH_PATH, post(service::authenticate))
            .route(AUTH_PATH.trim_end_matches('/'), post(service::authenticate))
            .with_state(control.clone());
        let admin = admin::routes(control.clone());
        let server =
            MockServer::bind("net-entreprises", &settings.listen, service, admin, faults).await?;
        Ok(Self { server, control })
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.server.https_addr()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Serves until `shutdown` fires.
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        self.server.run_until(shutdown).await
    }
}
