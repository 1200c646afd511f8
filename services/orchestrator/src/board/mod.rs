//! The deadline board and its alerts (issue 13 item 4): per establishment (SIRET) and
//! declared month, the DSN's due date, its deposit (state, AEE date), its conformity
//! (nature 11), its CRM PAS (nature 94: how many rates) and the days left; and the alerts
//! a payroll manager must act on, each with a stable code, a French sentence and an
//! urgency order:
//!
//! 1. `deposit_rejected` — Net-entreprises rejected the deposit (ARE) or refused it;
//! 2. `conformity_ko` — the conformity return lists a blocking anomaly;
//! 3. `not_deposited` — no accepted deposit once the due date has passed;
//! 4. `conformity_anomalies` — accepted with non-blocking anomalies (ANO);
//! 5. `crm_missing` — no CRM PAS `crm_grace_days` (default 5) after the due date, or
//!    after the deposit for a declaration deposited late;
//! 6. `rates_expiring` — rates whose validity ends before the next payroll's due date;
//! 7. `employee_without_rate` — an employee of the last DSN has no rate from the DGFiP.
//!
//! The board is computed on each request from the store (deposits, the returns' tables)
//! and from the last accepted DSN file of each establishment (its employees, read with
//! `iea-dsn` once per file and kept in memory by digest). The rules are in `compute.rs`,
//! free of I/O.
//!
//! Access: an administrator sees every establishment; another account those of its own
//! deposits (requested by it or made with its identity) and those it deposits for.
//! Invariant: no NIR, name, amount or rate in a log line or in an alert (an alert names
//! employees by their matricule only).

mod compute;

pub use compute::{compute, days_left, due_of, month_fr};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use iea_dsn::Month;
use serde::{Deserialize, Serialize};

use crate::deposits::{DepositSettings, State};
use crate::sessions::{self, Principal};
use crate::store::Store;
use crate::users::Role;

/// `[board]` of the orchestrator's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardSettings {
    /// Days after a declaration's due date (after its deposit, when it was deposited
    /// late) before a missing CRM PAS is an alert.
    pub crm_grace_days: u32,
    /// The largest stored DSN file whose employees are read (bytes).
    pub max_dsn_bytes: u64,
}

impl Default for BoardSettings {
    fn default() -> Self {
        Self {
            crm_grace_days: 5,
            max_dsn_bytes: 64 << 20,
        }
    }
}

/// What the rules need of the settings.
#[derive(Debug, Clone)]
pub struct Rules {
    pub due_day: u8,
    pub due_days: BTreeMap<String, u8>,
    pub crm_grace_days: u32,
}

impl Rules {
    pub fn new(deposits: &DepositSettings, board: &BoardSettings) -> Self {
        Self {
            due_day: deposits.due_day,
            due_days: deposits.due_days.clone(),
            crm_grace_days: board.crm_grace_days,
        }
    }

    /// The due day (5 or 15) of `siret`'s declarations.
    pub fn due_day(&self, siret: &str) -> u8 {
        self.due_days
            .get(siret)
            .copied()
            .filter(|d| *d == 5 || *d == 15)
            .unwrap_or(if self.due_day == 5 { 5 } else { 15 })
    }
}

/// A deposit as the board needs it.
#[derive(Debug, Clone)]
pub struct DepositFact {
    pub id: i64,
    pub siret: String,
    /// `YYYY-MM`.
    pub month: String,
    pub state: State,
    pub idflux: Option<String>,
    /// The ARE's anomalies (code, French message), for a rejected deposit.
    pub anomalies: Vec<(String, String)>,
    pub created_at: i64,
    /// When Net-entreprises answered the AEE (the end of the accepted attempt).
    pub registered_at: Option<i64>,
    pub user_id: Option<i64>,
    pub requested_by: String,
    pub file_path: String,
    pub sha256: String,
    pub bytes: i64,
}

/// The conformity of a deposit (nature 11), or that it is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conformity {
    Ok,
    Ano,
    Ko,
    /// Accepted; no conformity return yet.
    Awaited,
}

impl Conformity {
    pub fn code(self) -> &'static str {
        match self {
            Conformity::Ok => "ok",
            Conformity::Ano => "ano",
            Conformity::Ko => "ko",
            Conformity::Awaited => "awaited",
        }
    }

    /// From a return's status (`OK`, `ANO`, `KO`); `EN COURS` and others: awaited.
    pub fn from_status(statut: &str) -> Conformity {
        match statut.trim().to_ascii_uppercase().as_str() {
            "OK" => Conformity::Ok,
            "ANO" => Conformity::Ano,
            "KO" => Conformity::Ko,
            _ => Conformity::Awaited,
        }
    }
}

/// An anomaly of a conformity return: its code and the rubric that triggered it.
#[derive(Debug, Clone)]
pub struct ConformityAnomaly {
    pub code: String,
    pub rubric: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConformityFact {
    pub deposit_id: i64,
    pub status: Conformity,
    pub anomalies: Vec<ConformityAnomaly>,
    pub received_at: i64,
}

/// A CRM PAS received.
#[derive(Debug, Clone)]
pub struct CrmFact {
    pub siret: String,
    /// The declared month it answers, `YYYY-MM` (empty if unknown).
    pub month: String,
    pub deposit_id: Option<i64>,
    pub received_at: i64,
    pub rates: u32,
    /// The rate identifier the next DSN quotes.
    pub identifier: String,
}

/// The current rate of one employee. Never logged.
#[derive(Clone)]
pub struct RateFact {
    pub siret: String,
    /// NIR or NTT.
    pub employee: String,
    /// `None`: the CRM gave none.
    pub rate: Option<String>,
    pub valid_until: Option<i64>,
}

/// An employee of a DSN, as the board compares it with the rates. Never logged.
#[derive(Clone)]
pub struct DsnEmployee {
    /// NIR, else NTT.
    pub key: String,
    pub matricule: Option<String>,
}

/// The last accepted DSN of an establishment.
#[derive(Clone)]
pub struct LastDsn {
    pub deposit_id: i64,
    pub month: Month,
    pub employees: Arc<Vec<DsnEmployee>>,
}

/// Everything the board is computed from.
#[derive(Default, Clone)]
pub struct Facts {
    /// Establishments known without a deposit (an account is designated for them).
    pub sirets: Vec<String>,
    pub deposits: Vec<DepositFact>,
    pub conformities: Vec<ConformityFact>,
    pub crms: Vec<CrmFact>,
    pub rates: Vec<RateFact>,
    pub last_dsn: BTreeMap<String, LastDsn>,
}

/// One declaration of the board.
#[derive(Debug, Clone)]
pub struct Row {
    pub siret: String,
    pub month: Month,
    pub due: i64,
    pub days_left: i32,
    /// An accepted deposit registered after the due date: Paris calendar days from the
    /// due date's day to its registration's (0 on the due day, after noon).
    pub days_late: Option<i32>,
    /// Its due time has passed and no deposit was accepted for it (a rejected one does not
    /// count): what the `not_deposited` alert says, and what a front-end shows in red.
    pub overdue: bool,
    pub deposit: Option<DepositFact>,
    /// `None`: no accepted deposit.
    pub conformity: Option<Conformity>,
    pub anomalies: usize,
    pub crm: Option<CrmFact>,
}

impl Row {
    /// The due date's state in French: how an accepted deposit stood against it
    /// (« déposée à temps », « déposée avec 18 jours de retard »), else the days left
    /// (« dans 3 jours », « dépassée de 2 jours »).
    pub fn due_words(&self) -> String {
        if self
            .deposit
            .as_ref()
            .is_some_and(|d| d.state == State::Accepted)
        {
            iea_fr_time::deposited(self.days_late)
        } else {
            iea_fr_time::days_left(self.days_left)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertCode {
    DepositRejected,
    ConformityKo,
    NotDeposited,
    ConformityAnomalies,
    CrmMissing,
    RatesExpiring,
    EmployeeWithoutRate,
}

impl AlertCode {
    pub fn code(self) -> &'static str {
        match self {
            AlertCode::DepositRejected => "deposit_rejected",
            AlertCode::ConformityKo => "conformity_ko",
            AlertCode::NotDeposited => "not_deposited",
            AlertCode::ConformityAnomalies => "conformity_anomalies",
            AlertCode::CrmMissing => "crm_missing",
            AlertCode::RatesExpiring => "rates_expiring",
            AlertCode::EmployeeWithoutRate => "employee_without_rate",
        }
    }

    /// 1 is the most urgent.
    pub fn urgency(self) -> u32 {
        match self {
            AlertCode::DepositRejected => 1,
            AlertCode::ConformityKo => 2,
            AlertCode::NotDeposited => 3,
            AlertCode::ConformityAnomalies => 4,
            AlertCode::CrmMissing => 5,
            AlertCode::RatesExpiring => 6,
            AlertCode::EmployeeWithoutRate => 7,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub code: AlertCode,
    /// French sentence.
    pub message: String,
    pub siret: String,
    pub month: Month,
    pub deposit_id: Option<i64>,
    pub due: i64,
}

/// The board at one instant.
#[derive(Debug, Clone)]
pub struct Report {
    pub rows: Vec<Row>,
    pub alerts: Vec<Alert>,
    pub computed_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("invalid input")]
    InvalidInput(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The board; cheap to clone.
#[derive(Clone)]
pub struct Board {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    rules: Rules,
    max_dsn_bytes: u64,
    /// Employees of a stored DSN, by its SHA-256 (a stored file never changes).
    employees: Mutex<HashMap<String, Arc<Vec<DsnEmployee>>>>,
}

/// Files whose employees are kept in memory at most.
const EMPLOYEE_CACHE: usize = 64;

impl Board {
    pub fn new(store: Store, deposits: &DepositSettings, settings: &BoardSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                rules: Rules::new(deposits, settings),
                max_dsn_bytes: settings.max_dsn_bytes,
                employees: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The board `caller` may see, optionally of one establishment.
    pub async fn report(
        &self,
        caller: &Principal,
        siret: Option<&str>,
    ) -> Result<Report, BoardError> {
        let only = iea_declarant::optional_siret(siret.unwrap_or_default())
            .map_err(BoardError::InvalidInput)?;
        let now = sessions::now();
        let facts = self.facts(caller, only.as_deref(), now).await?;
        let (rows, alerts) = compute(&facts, &self.inner.rules, now);
        Ok(Report {
            rows,
            alerts,
            computed_at: now,
        })
    }

    /// How many alerts `caller` has, and the most urgent one.
    pub async fn alerts(&self, caller: &Principal) -> Result<(usize, Option<Alert>), BoardError> {
        let r = self.report(caller, None).await?;
        Ok((r.alerts.len(), r.alerts.into_iter().next()))
    }

    /// The establishments `caller` may see (`None`: every one).
    async fn visible(&self, caller: &Principal) -> anyhow::Result<Option<BTreeSet<String>>> {
        if caller.role == Role::Administrator {
            return Ok(None);
        }
        Ok(Some(
            self.inner
                .store
                .board_sirets_of(caller.user_id, caller.name.clone())
                .await?
                .into_iter()
                .collect(),
        ))
    }

    async fn facts(
        &self,
        caller: &Principal,
        only: Option<&str>,
        now: i64,
    ) -> anyhow::Result<Facts> {
        let visible = self.visible(caller).await?;
        let keep = |siret: &str| {
            only.is_none_or(|o| o == siret) && visible.as_ref().is_none_or(|v| v.contains(siret))
        };
        // A year and two months back: enough for the rows shown and their CRMs.
        let mut since = Month::in_paris_at(now);
        for _ in 0..compute::MONTHS_SHOWN + 1 {
            since = if since.month == 1 {
                Month {
                    year: since.year - 1,
                    month: 12,
                }
            } else {
                Month {
                    year: since.year,
                    month: since.month - 1,
                }
            };
        }
        let store = &self.inner.store;
        let mut facts = Facts {
            sirets: store
                .board_designated_sirets()
                .await?
                .into_iter()
                .filter(|s| keep(s))
                .collect(),
            deposits: store
                .board_deposits(since.to_string())
                .await?
                .into_iter()
                .filter(|d| keep(&d.siret))
                .collect(),
            ..Default::default()
        };
        let ids: Vec<i64> = facts
            .deposits
            .iter()
            .filter(|d| d.state == State::Accepted)
            .map(|d| d.id)
            .collect();
        facts.conformities = store.board_conformities(since.to_string(), ids).await?;
        // CRMs of the months shown come after their due dates: the same 14 months back.
        let crm_since = now - i64::from(compute::MONTHS_SHOWN + 1) * 31 * 86_400;
        facts.crms = store
            .board_crms(crm_since)
            .await?
            .into_iter()
            .filter(|c| keep(&c.siret))
            .collect();
        // Per employee, the newest CRM still valid today that gives a rate.
        let today = iea_fr_time::paris_date(iea_fr_time::from_unix(now)).to_string();
        let mut rates: Vec<RateFact> = Vec::new();
        for row in store.board_rates(today).await? {
            if !keep(&row.siret) {
                continue;
            }
            let rate = Some(row.rate).filter(|r| !r.trim().is_empty());
            let valid_until = end_of_day(&row.valid_until);
            match rates.last_mut() {
                Some(last) if last.siret == row.siret && last.employee == row.employee => {
                    if last.rate.is_none() && rate.is_some() {
                        last.rate = rate;
                        last.valid_until = valid_until;
                    }
                }
                _ => rates.push(RateFact {
                    siret: row.siret,
                    employee: row.employee,
                    rate,
                    valid_until,
                }),
            }
        }
        facts.rates = rates;
        // The last accepted DSN of each establishment.
        let mut last: BTreeMap<String, &DepositFact> = BTreeMap::new();
        for d in facts.deposits.iter().filter(|d| d.state == State::Accepted) {
            let later = |o: &DepositFact| (d.month.as_str(), d.id) > (o.month.as_str(), o.id);
            if last.get(&d.siret).is_none_or(|o| later(o)) {
                last.insert(d.siret.clone(), d);
            }
        }
        let mut last_dsn = BTreeMap::new();
        for (siret, d) in last {
            let Ok(month) = d.month.parse::<Month>() else {
                continue;
            };
            if let Some(employees) = self.employees_of(d).await {
                last_dsn.insert(
                    siret,
                    LastDsn {
                        deposit_id: d.id,
                        month,
                        employees,
                    },
                );
            }
        }
        facts.last_dsn = last_dsn;
        Ok(facts)
    }

    /// The employees of a stored DSN, read once per file.
    async fn employees_of(&self, d: &DepositFact) -> Option<Arc<Vec<DsnEmployee>>> {
        if let Some(e) = self
            .inner
            .employees
            .lock()
            .expect("employee cache")
            .get(&d.sha256)
        {
            return Some(e.clone());
        }
        if u64::try_from(d.bytes).unwrap_or(u64::MAX) > self.inner.max_dsn_bytes {
            return None;
        }
        let path = std::path::PathBuf::from(&d.file_path);
        let read = tokio::task::spawn_blocking(move || -> Option<Vec<DsnEmployee>> {
            let bytes = std::fs::read(&path).ok()?;
            let dsn = iea_dsn::Dsn::parse(&bytes).ok()?;
            Some(
                dsn.employees()
                    .iter()
                    .filter_map(|e| {
                        Some(DsnEmployee {
                            key: e.nir.clone().or_else(|| e.ntt.clone())?,
                            matricule: e.matricule.clone(),
                        })
                    })
                    .collect(),
            )
        })
        .await
        .ok()
        .flatten();
        let Some(employees) = read else {
            tracing::warn!(deposit = d.id, "stored dsn file unreadable for the board");
            return None;
        };
        let employees = Arc::new(employees);
        let mut cache = self.inner.employees.lock().expect("employee cache");
        if cache.len() >= EMPLOYEE_CACHE {
            cache.clear();
        }
        cache.insert(d.sha256.clone(), employees.clone());
        Some(employees)
    }
}

/// The last second of `date` (`YYYY-MM-DD`) in Paris.
pub fn end_of_day(date: &str) -> Option<i64> {
    let mut parts = date.trim().splitn(3, '-');
    let y: i16 = parts.next()?.parse().ok()?;
    let m: i8 = parts.next()?.parse().ok()?;
    let d: i8 = parts.next()?.parse().ok()?;
    let dt = iea_fr_time::paris_datetime(iea_fr_time::from_unix(0))
        .with()
        .year(y)
        .month(m)
        .day(d)
        .hour(23)
        .minute(59)
        .second(59)
        .subsec_nanosecond(0)
        .build()
        .ok()?;
    iea_fr_time::paris()
        .to_timestamp(dt)
        .ok()
        .map(|t| t.as_second())
}

#[cfg(test)]
mod tests;
