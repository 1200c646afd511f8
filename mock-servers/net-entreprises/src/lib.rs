//! Mock of the Net-entreprises services a DSN client uses, behaving as the real ones do as
//! far as public sources tell (see `README.md` beside this crate,
//! `shared/net-entreprises-api.md` and `shared/dsn-deposit-and-returns.md`):
//!
//! - authentication (`/authentifier/1.0/`): XML body, 415 and 422 form checks, 200 with a
//!   base64 token and `Expires`, 401 with the exact `WWW-Authenticate` realms, 403 once an
//!   account has had `lock_threshold` consecutive failures, 500 for the nom `kaboom`;
//! - deposit (`/deposer-dsn/1.0/`): the simulator kit's order of checks, AEE or ARE;
//! - deposit listing (`/lister-depots/1.0/{debut}[/{fin}]`): the 60-minute window;
//! - returns (natures 10, 11 and 94) published after delays, listed by flux or by
//!   declarant, downloaded; overwritten or purged through the control API;
//! - the mock kit's faults (503, slow, reset) and the deposit's own (rejection, lost
//!   request, lost answer).
//!
//! Layout:
//! - [`form`]: the XML body and the form checks;
//! - [`declarants`]: accounts, fixtures, failed-login counters and the decision;
//! - [`fixtures`]: the accounts of the bundled directory (`SIMULATOR`, `DUPONT`…), as
//!   the clients' tests type them;
//! - [`tokens`]: the tokens given and their expiry;
//! - [`clock`]: the mock's movable clock and the business services' time zone;
//! - `service`: the authentication route;
//! - `business`: what every business service shares (406, 401, gzip, `Expires`);
//! - `deposit`, [`deposits`]: the deposit route and the deposits registered;
//! - `listing`: the deposit listing;
//! - `conformity`, [`returns`], `retours`: the checks of nature 11, the returns and their
//!   documents, the return services;
//! - `faults`: the deposit faults and `/__admin/faults`;
//! - `admin`: the control API under `/__admin/`;
//! - [`Control`]: the same controls in process, for tests that embed the mock.

pub mod clock;
pub mod conformity;
pub mod declarants;
pub mod deposits;
pub mod fixtures;
pub mod form;
pub mod returns;
pub mod tokens;

mod admin;
mod business;
mod deposit;
mod faults;
mod listing;
mod retours;
mod service;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use iea_mock_kit::{Faults, MockListen, MockServer};
use iea_runtime::shutdown::Shutdown;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::{Clock, TimeZone};
use crate::declarants::{DeclarantState, Declarants, Duplicate, Fixtures, NewDeclarant};
use crate::deposits::{DepositView, Deposits};
use crate::faults::DepositFaults;
use crate::form::FormRules;
use crate::returns::{ReturnSettings, Returns};
use crate::tokens::Tokens;

pub use crate::business::{REALM_TOKEN_EXPIRED, REALM_TOKEN_INVALID};
pub use crate::deposit::{NOT_A_DSN_CODE, NOT_A_DSN_MESSAGE};
pub use crate::deposits::IDFLUX_LEN;
pub use crate::faults::{AllFaults, Rejection, Times};
pub use crate::service::{REALM_NOT_REGISTERED, REALM_PASSWORD_EXPIRED, REALM_WRONG_CREDENTIALS};

/// Name of the binary's settings (`IEA_MOCK_NET_ENTREPRISES__*`) and of the mock in logs.
pub const COMPONENT: &str = "mock-net-entreprises";

/// The authentication route, with its trailing slash as the publisher writes it (the
/// route without it is served too).
pub const AUTH_PATH: &str = "/authentifier/1.0/";

/// The deposit route.
pub const DEPOSIT_PATH: &str = "/deposer-dsn/1.0/";

/// The deposit listing's routes start with this (`{debut}` and `{debut}/{fin}` follow).
pub const LIST_DEPOSITS_PATH: &str = "/lister-depots/1.0/";

/// The returns of one deposit: `{idflux}` follows.
pub const LIST_RETURNS_FLUX_PATH: &str = "/lister-retours-flux/1.0/";

/// The returns of the declarant: `{debut}` and `{debut}/{fin}` follow.
pub const LIST_RETURNS_DECLARANT_PATH: &str = "/lister-retours-declarant/1.0/";

/// The download of a return: `{idflux}/{id}` follow.
pub const DOWNLOAD_PATH: &str = "/telecharger-retour/1.0/";

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
    /// Lifetime of a token, announced in the `Expires` header of a 200; past it the
    /// business services answer 401 "Expiration du jeton".
    pub token_lifetime_secs: u64,
    pub not_registered: NotRegisteredAnswer,
    /// Form checks that can be tuned: element order, length limits.
    pub form: FormRules,
    /// Zone of the business services' dates (`AAAAMMJJHHMMSS`, the AEE's date and time).
    pub time_zone: TimeZone,
    /// Widest window of the listings, in minutes (announced in `Accept-Ranges`).
    pub listing_window_minutes: u32,
    /// How far ahead a business 200's `Expires` is.
    pub answer_expires_secs: u64,
    /// Largest deposit body accepted, gzipped (413 beyond).
    pub max_deposit_bytes: usize,
    /// Largest DSN accepted once decompressed (413 beyond).
    pub max_dsn_bytes: u64,
    /// Delays of the returns and the due date of the CRM.
    pub returns: ReturnSettings,
    /// Base of the download addresses the return listings give (`url`). Unset:
    /// `https://` and the request's `Host`.
    pub download_base_url: Option<String>,
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
            time_zone: TimeZone::EuropeParis,
            listing_window_minutes: 60,
            answer_expires_secs: 120,
            max_deposit_bytes: 256 << 20,
            max_dsn_bytes: 1 << 30,
            returns: ReturnSettings::default(),
            download_base_url: None,
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
    /// Requests per service path (authentication included), as they reached the route.
    pub services: BTreeMap<String, PathStats>,
    /// Deposits registered (AEE and ARE), lost answers included.
    pub deposits_registered: u64,
    /// Documents served (200 of `telecharger-retour`) per return, `{idflux}/{id}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub downloads: BTreeMap<String, u64>,
}

/// Counters of one service path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStats {
    pub requests: u64,
    /// Answers by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests whose connection was cut instead of answered (`lost_request`,
    /// `lost_answer`).
    pub cut: u64,
    /// Deposits: the most requests in the route at once (from the request's whole body
    /// received to its answer or cut), to show that a client keeps its bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_in_flight: u64,
    /// Deposits: the requests in the route now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_flight: u64,
    /// Listings: the widest window asked (`fin` − `debut`, in seconds), refused ones
    /// included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widest_window_secs: Option<i64>,
    /// Listings: the requests of each declarant (its id) whose token was accepted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_declarant: BTreeMap<u64, DeclarantListingStats>,
}

/// Counters of one declarant's listings of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclarantListingStats {
    /// Requests whose token was this declarant's (429s included).
    pub requests: u64,
    /// Answers by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// The widest window asked (`fin` − `debut`, seconds), 429s included.
    pub widest_window_secs: i64,
    /// The latest `fin` asked (now on the mock's clock when absent), Unix seconds.
    pub latest_end_unix: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A request in its route, counted in `in_flight` until dropped.
struct InFlight {
    control: Control,
    path: &'static str,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut stats = self.control.stats_mut();
        if let Some(s) = stats.services.get_mut(self.path) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

/// How a request to a service ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Status(StatusCode),
    Cut,
}

struct Inner {
    declarants: Mutex<Declarants>,
    stats: Mutex<Stats>,
    tokens: Mutex<Tokens>,
    deposits: Mutex<Deposits>,
    returns: Mutex<Returns>,
    deposit_faults: Mutex<DepositFaults>,
    clock: Clock,
    /// Deposited files being read in the background.
    reading: tokio::sync::watch::Sender<usize>,
    settings: Settings,
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

    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.0.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deposits(&self) -> MutexGuard<'_, Deposits> {
        self.0.deposits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lock order: `deposits` before `returns`.
    fn returns(&self) -> MutexGuard<'_, Returns> {
        self.0.returns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record_window(&self, path: &str, secs: i64) {
        let mut stats = self.stats_mut();
        let s = stats.services.entry(path.to_owned()).or_default();
        s.widest_window_secs = Some(s.widest_window_secs.map_or(secs, |w| w.max(secs)));
    }

    /// Counts a listing of `declarant` over `start`..`end` answered `status`.
    fn record_declarant_window(
        &self,
        path: &str,
        declarant: u64,
        start: OffsetDateTime,
        end: OffsetDateTime,
        status: StatusCode,
    ) {
        let mut stats = self.stats_mut();
        let s = stats.services.entry(path.to_owned()).or_default();
        let d = s.by_declarant.entry(declarant).or_default();
        d.requests += 1;
        *d.by_status.entry(status.as_u16()).or_default() += 1;
        d.widest_window_secs = d.widest_window_secs.max((end - start).whole_seconds());
        d.latest_end_unix = d.latest_end_unix.max(end.unix_timestamp());
    }

    /// Counts a document served.
    fn record_download(&self, idflux: &str, id: &str) {
        *self
            .stats_mut()
            .downloads
            .entry(format!("{idflux}/{id}"))
            .or_default() += 1;
    }

    /// Every return planned or published.
    pub async fn returns_list(&self) -> Vec<returns::ReturnView> {
        self.wait_reads().await;
        let now = self.clock().now();
        self.returns().views(self.settings().time_zone, now)
    }

    /// Publishes now every return still to come; answers how many.
    pub async fn publish_returns(&self) -> usize {
        self.wait_reads().await;
        let now = self.clock().now();
        self.returns().publish_all(now)
    }

    /// Overwrites a current return (see [`returns::Returns::overwrite`]); its documents
    /// are made first, so that the new version can inherit the old one's.
    pub async fn overwrite_return(
        &self,
        idflux: &str,
        id: &str,
        version: returns::NewVersion,
    ) -> Option<returns::ReturnView> {
        self.wait_reads().await;
        let now = self.clock().now();
        let tz = self.settings().time_zone;
        let deposits = self.deposits();
        let mut returns = self.returns();
        returns.make_documents(&deposits, now);
        let new = returns.overwrite(idflux, id, version, now)?;
        returns.views(tz, now).into_iter().find(|v| v.id == new.id)
    }

    /// Purges a current return: still listed, no longer downloadable.
    pub async fn purge_return(&self, idflux: &str, id: &str) -> bool {
        self.wait_reads().await;
        self.returns().purge(idflux, id)
    }

    /// The rate table of the CRM (by NIR or NTT).
    pub fn pas_rates(&self) -> BTreeMap<String, returns::PasRate> {
        self.returns()
            .rates
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Sets the rate of a NIR (or NTT) for the CRMs made from now on.
    pub fn set_pas_rate(&self, nir: String, rate: returns::PasRate) {
        self.returns().rates.insert(nir, rate);
    }

    fn deposit_faults(&self) -> MutexGuard<'_, DepositFaults> {
        self.0
            .deposit_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// A request in the route of `path` until the guard is dropped.
    fn in_flight(&self, path: &'static str) -> InFlight {
        let mut stats = self.stats_mut();
        let s = stats.services.entry(path.to_owned()).or_default();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        InFlight {
            control: self.clone(),
            path,
        }
    }

    /// Counts a request that reached the route of `path`.
    fn count(&self, path: &str, outcome: Outcome) {
        let mut stats = self.stats_mut();
        let s = stats.services.entry(path.to_owned()).or_default();
        s.requests += 1;
        match outcome {
            Outcome::Status(status) => *s.by_status.entry(status.as_u16()).or_default() += 1,
            Outcome::Cut => s.cut += 1,
        }
    }

    fn count_registered(&self) {
        self.stats_mut().deposits_registered += 1;
    }

    /// The mock's clock (the control API moves it).
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// Moves the clock `secs` seconds (negative goes back), as `POST /__admin/clock` does;
    /// answers the new offset from the real time, seconds.
    pub fn advance_clock_secs(&self, secs: i64) -> i64 {
        let offset = self.clock().advance(time::Duration::seconds(secs));
        tracing::info!(offset_secs = offset.whole_seconds(), "clock moved");
        offset.whole_seconds()
    }

    fn read_started(&self) {
        self.0.reading.send_modify(|n| *n += 1);
    }

    fn read_done(&self) {
        self.0.reading.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Waits until every deposited file is read (facts recorded, returns planned).
    pub async fn wait_reads(&self) {
        let mut rx = self.0.reading.subscribe();
        // The sender lives as long as `self`: the wait ends when the count is 0.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Records what was read of a deposit's file and plans the returns that need it.
    fn facts_read(&self, idflux: &str, facts: deposits::DsnFacts) {
        let tz = self.settings().time_zone;
        let mut deposits = self.deposits();
        if let Some(deposit) = deposits.set_facts(idflux, facts) {
            self.returns()
                .plan_reading(deposit, &self.settings().returns, tz);
        }
    }

    /// Every deposit registered, in order of arrival (once their files are read).
    pub async fn deposits_list(&self) -> Vec<DepositView> {
        self.wait_reads().await;
        self.deposits().all().iter().map(|d| d.view()).collect()
    }

    pub async fn deposit(&self, idflux: &str) -> Option<DepositView> {
        self.wait_reads().await;
        self.deposits().get(idflux).map(|d| d.view())
    }

    /// Makes every token given so far (or only `declarant`'s) expired; answers how many
    /// were still valid.
    pub fn expire_tokens(&self, declarant: Option<u64>) -> usize {
        let now = self.clock().now();
        self.tokens().expire(declarant, now)
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
            tokens: Mutex::new(Tokens::default()),
            deposits: Mutex::new(Deposits::default()),
            returns: Mutex::new(Returns::default()),
            deposit_faults: Mutex::new(DepositFaults::default()),
            clock: Clock::default(),
            reading: tokio::sync::watch::Sender::new(0),
            settings: settings.clone(),
            faults: faults.clone(),
            lock_threshold: settings.lock_threshold,
            token_lifetime: Duration::from_secs(settings.token_lifetime_secs),
            not_registered: settings.not_registered,
            form: settings.form.clone(),
        }));
        let service = Router::new()
            .route(AUTH_PATH, post(service::authenticate))
            .route(AUTH_PATH.trim_end_matches('/'), post(service::authenticate))
            .route(
                DEPOSIT_PATH,
                post(deposit::deposit).layer(DefaultBodyLimit::max(settings.max_deposit_bytes)),
            )
            .route(
                DEPOSIT_PATH.trim_end_matches('/'),
                post(deposit::deposit).layer(DefaultBodyLimit::max(settings.max_deposit_bytes)),
            )
            .route(
                &format!("{LIST_DEPOSITS_PATH}{{debut}}"),
                get(listing::list_from),
            )
            .route(
                &format!("{LIST_DEPOSITS_PATH}{{debut}}/{{fin}}"),
                get(listing::list_between),
            )
            .route(
                &format!("{LIST_RETURNS_FLUX_PATH}{{idflux}}"),
                get(retours::list_flux),
            )
            .route(
                &format!("{LIST_RETURNS_DECLARANT_PATH}{{debut}}"),
                get(retours::list_declarant_from),
            )
            .route(
                &format!("{LIST_RETURNS_DECLARANT_PATH}{{debut}}/{{fin}}"),
                get(retours::list_declarant_between),
            )
            .route(
                &format!("{DOWNLOAD_PATH}{{idflux}}/{{id}}"),
                get(retours::download),
            )
            .with_state(control.clone());
        let admin = admin::routes(control.clone()).merge(faults::routes(control.clone()));
        let server = MockServer::bind_own_faults_api(
            "net-entreprises",
            &settings.listen,
            service,
            admin,
            faults,
        )
        .await?;
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
