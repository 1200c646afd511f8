//! The faults of this mock: the kit's (`mode`, `delay_ms`, `close_default_port`) and the
//! deposit's own, all set by one `POST /__admin/faults` that replaces them all (a field
//! left out is off):
//!
//! - `reject_deposits`: `{"code", "message", "count"}`: every deposit that would get an AEE
//!   gets an ARE (422) with this anomaly instead (`count` times, 1 by default, numbered
//!   when more), and is registered as rejected (`KO`);
//! - `lost_answer`: the deposit is registered, then the connection is cut before any
//!   answer;
//! - `lost_request`: the connection is cut as soon as the deposit request reaches the
//!   service, before any check or registration;
//! - `hold_before_register`: the deposit request is held `hold_ms` as soon as it reaches
//!   the service, then its connection is cut: nothing is registered (the moment "our
//!   request is on its way but not yet at Net-entreprises", for tests that kill the
//!   sender then);
//! - `hold_after_register`: the deposit is registered, then its answer is held `hold_ms`
//!   before it is sent (the moment "registered, answer not yet received").
//!
//! `lost_answer`, `lost_request` and the holds take `true` (every deposit), `false` or `0`
//! (off), or a number N (the next N deposits, counted down; `GET` shows what remains, so
//! a test sees when a deposit is being held). `hold_ms` defaults to 30 000.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use iea_mock_kit::{AdminJson, FaultMode, FaultSettings};
use serde::{Deserialize, Serialize};

/// How many deposits a fault still applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Times {
    /// `true`: every deposit; `false`: none.
    Always(bool),
    /// The next N deposits.
    Next(u64),
}

impl Default for Times {
    fn default() -> Self {
        Times::Always(false)
    }
}

impl Times {
    /// Whether this deposit is hit, counting it down.
    fn take(&mut self) -> bool {
        match self {
            Times::Always(on) => *on,
            Times::Next(0) => false,
            Times::Next(n) => {
                *n -= 1;
                true
            }
        }
    }
}

/// The ARE anomaly of `reject_deposits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub code: String,
    pub message: String,
    /// How many anomalies the ARE lists (at least 1, at most [`MAX_ANOMALIES`]): a real
    /// ARE may list thousands, which a client must bound.
    #[serde(default = "one")]
    pub count: u32,
}

/// The most anomalies one ARE of this mock lists.
pub const MAX_ANOMALIES: u32 = 100_000;

fn one() -> u32 {
    1
}

/// How long a held deposit waits when `hold_ms` is not given.
pub const DEFAULT_HOLD_MS: u64 = 30_000;

fn default_hold_ms() -> u64 {
    DEFAULT_HOLD_MS
}

/// The deposit's own faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositFaults {
    pub reject_deposits: Option<Rejection>,
    pub lost_answer: Times,
    pub lost_request: Times,
    pub hold_before_register: Times,
    pub hold_after_register: Times,
    pub hold_ms: u64,
}

impl Default for DepositFaults {
    fn default() -> Self {
        Self {
            reject_deposits: None,
            lost_answer: Times::default(),
            lost_request: Times::default(),
            hold_before_register: Times::default(),
            hold_after_register: Times::default(),
            hold_ms: DEFAULT_HOLD_MS,
        }
    }
}

impl DepositFaults {
    pub fn take_lost_request(&mut self) -> bool {
        self.lost_request.take()
    }

    pub fn take_lost_answer(&mut self) -> bool {
        self.lost_answer.take()
    }

    /// How long this deposit is held before it reaches registration, if it is.
    pub fn take_hold_before_register(&mut self) -> Option<std::time::Duration> {
        self.hold_before_register
            .take()
            .then(|| std::time::Duration::from_millis(self.hold_ms))
    }

    /// How long this deposit's answer is held once it is registered, if it is.
    pub fn take_hold_after_register(&mut self) -> Option<std::time::Duration> {
        self.hold_after_register
            .take()
            .then(|| std::time::Duration::from_millis(self.hold_ms))
    }
}

/// The body of `GET|POST /__admin/faults`: the kit's settings and the deposit's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllFaults {
    #[serde(default)]
    pub mode: FaultMode,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub close_default_port: bool,
    #[serde(default)]
    pub reject_deposits: Option<Rejection>,
    #[serde(default)]
    pub lost_answer: Times,
    #[serde(default)]
    pub lost_request: Times,
    #[serde(default)]
    pub hold_before_register: Times,
    #[serde(default)]
    pub hold_after_register: Times,
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

impl Default for AllFaults {
    fn default() -> Self {
        Self {
            mode: FaultMode::default(),
            delay_ms: 0,
            close_default_port: false,
            reject_deposits: None,
            lost_answer: Times::default(),
            lost_request: Times::default(),
            hold_before_register: Times::default(),
            hold_after_register: Times::default(),
            hold_ms: DEFAULT_HOLD_MS,
        }
    }
}

pub fn routes(control: crate::Control) -> Router {
    Router::new()
        .route("/__admin/faults", get(show).post(set))
        .with_state(control)
}

impl crate::Control {
    /// The kit's faults and the deposit's, as `GET /__admin/faults` shows them.
    pub fn all_faults(&self) -> AllFaults {
        let k = self.faults().get();
        let deposit = self.deposit_faults().clone();
        AllFaults {
            mode: k.mode,
            delay_ms: k.delay_ms,
            close_default_port: k.close_default_port,
            reject_deposits: deposit.reject_deposits,
            lost_answer: deposit.lost_answer,
            lost_request: deposit.lost_request,
            hold_before_register: deposit.hold_before_register,
            hold_after_register: deposit.hold_after_register,
            hold_ms: deposit.hold_ms,
        }
    }

    /// Replaces every fault, as `POST /__admin/faults` does (in process, for tests that
    /// embed the mock).
    pub fn set_all_faults(&self, all: AllFaults) {
        self.faults().set(FaultSettings {
            mode: all.mode,
            delay_ms: all.delay_ms,
            close_default_port: all.close_default_port,
        });
        *self.deposit_faults() = DepositFaults {
            reject_deposits: all.reject_deposits.clone(),
            lost_answer: all.lost_answer,
            lost_request: all.lost_request,
            hold_before_register: all.hold_before_register,
            hold_after_register: all.hold_after_register,
            hold_ms: all.hold_ms,
        };
        tracing::info!(
            mode = ?all.mode,
            delay_ms = all.delay_ms,
            close_default_port = all.close_default_port,
            reject_deposits = all.reject_deposits.is_some(),
            lost_answer = ?all.lost_answer,
            lost_request = ?all.lost_request,
            hold_before_register = ?all.hold_before_register,
            hold_after_register = ?all.hold_after_register,
            hold_ms = all.hold_ms,
            "faults changed"
        );
    }
}

async fn show(State(control): State<crate::Control>) -> Response {
    Json(control.all_faults()).into_response()
}

async fn set(
    State(control): State<crate::Control>,
    AdminJson(all): AdminJson<AllFaults>,
) -> Response {
    control.set_all_faults(all);
    Json(control.all_faults()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_a_flag_or_a_count_and_a_count_runs_down() {
        let t: Times = serde_json::from_str("true").unwrap();
        assert_eq!(t, Times::Always(true));
        let mut t: Times = serde_json::from_str("2").unwrap();
        assert!(t.take());
        assert!(t.take());
        assert!(!t.take());
        assert_eq!(serde_json::to_string(&t).unwrap(), "0");
        let mut t = Times::Always(true);
        assert!(t.take() && t.take());
        assert!(!Times::default().take());
    }

    #[test]
    fn unknown_fault_fields_are_refused() {
        assert!(serde_json::from_str::<AllFaults>(r#"{"mode":"none","lost":1}"#).is_err());
        let f: AllFaults = serde_json::from_str(
            r#"{"reject_deposits":{"code":"B1","message":"m"},"lost_answer":1}"#,
        )
        .unwrap();
        assert_eq!(f.mode, FaultMode::None);
        assert_eq!(f.lost_answer, Times::Next(1));
        assert_eq!(f.hold_ms, DEFAULT_HOLD_MS);
        assert_eq!(f.hold_after_register, Times::Always(false));
    }

    #[test]
    fn a_hold_runs_down_and_carries_its_length() {
        let f: AllFaults =
            serde_json::from_str(r#"{"hold_before_register":1,"hold_ms":250}"#).unwrap();
        let mut d = DepositFaults {
            hold_before_register: f.hold_before_register,
            hold_ms: f.hold_ms,
            ..Default::default()
        };
        assert_eq!(
            d.take_hold_before_register(),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(d.take_hold_before_register(), None);
        assert_eq!(d.take_hold_after_register(), None);
    }
}
