//! The status indicator: the user's whole picture of the connection (blue ball, red
//! heart, consultation, red beetle), with its reason and since when.
//!
//! [`StatusHub`] holds the current [`Snapshot`], persists every change (the state
//! survives a restart) and broadcasts it, in order, to every watcher. A watcher gets the
//! current snapshot first, then each change; one that falls more than
//! [`WATCH_BUFFER`] changes behind is sent the current snapshot again and goes on from
//! there.

use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, broadcast};

use crate::store::Store;

/// Changes a slow watcher may fall behind before it is resynchronised.
pub const WATCH_BUFFER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// No authentication has completed yet on this installation.
    Unknown,
    Connected,
    Disconnected,
    Consultation,
    Assistance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub indicator: Indicator,
    /// Stable code of the reason: `authorized`, `auth_refused`, `auth_unreachable`, ...
    pub reason_code: String,
    /// French sentence: which server, which step, which message.
    pub reason: String,
    /// Unix seconds.
    pub since: i64,
    /// The server requires a newer version than the installed one.
    pub update_required: bool,
    /// A newer version the server announced, if any.
    pub update_available: Option<iea_version::ImpactVersion>,
}

impl Snapshot {
    pub fn new(indicator: Indicator, reason_code: &str, reason: impl Into<String>) -> Self {
        Self {
            indicator,
            reason_code: reason_code.to_owned(),
            reason: reason.into(),
            since: crate::sessions::now(),
            update_required: false,
            update_available: None,
        }
    }

    fn initial() -> Self {
        Self::new(
            Indicator::Unknown,
            "not_determined",
            "L'installation ne s'est pas encore authentifiée auprès du serveur Impact emploi.",
        )
    }

    /// Same state, same reason: not a transition (only `since` would differ).
    fn same_as(&self, other: &Snapshot) -> bool {
        self.indicator == other.indicator
            && self.reason_code == other.reason_code
            && self.reason == other.reason
            && self.update_required == other.update_required
            && self.update_available == other.update_available
    }
}

/// Changes kept for the support request's "recent errors".
pub const HISTORY: usize = 20;

pub struct StatusHub {
    store: Store,
    /// The last [`HISTORY`] changes, oldest first.
    recent: std::sync::Mutex<std::collections::VecDeque<Snapshot>>,
    current: RwLock<Snapshot>,
    tx: broadcast::Sender<Snapshot>,
    /// Serialises changes so that persistence and broadcast happen in one order.
    order: Mutex<()>,
}

impl StatusHub {
    /// Restores the last persisted snapshot.
    pub async fn load(store: Store) -> anyhow::Result<Self> {
        // An unreadable snapshot (from a version that wrote another shape) is forgotten:
        // the next authentication sets the status again.
        let saved = store
            .load::<Snapshot>()
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = format!("{e:#}"), "stored status unreadable, reset");
                None
            })
            .unwrap_or_else(Snapshot::initial);
        let (tx, _) = broadcast::channel(WATCH_BUFFER);
        Ok(Self {
            store,
            recent: Default::default(),
            current: RwLock::new(saved),
            tx,
            order: Mutex::new(()),
        })
    }

    /// The last changes since this start, oldest first.
    pub fn recent(&self) -> Vec<Snapshot> {
        self.recent
            .lock()
            .expect("history lock")
            .iter()
            .cloned()
            .collect()
    }

    /// The licence is withdrawn: Impact emploi is usable in consultation only, and
    /// payroll-domain writes are refused.
    pub fn in_consultation(&self) -> bool {
        self.current().indicator == Indicator::Consultation
    }

    pub fn current(&self) -> Snapshot {
        self.current.read().expect("status lock").clone()
    }

    /// The current snapshot and a receiver of every later change, atomically.
    pub fn subscribe(&self) -> (Snapshot, broadcast::Receiver<Snapshot>) {
        let cur = self.current.read().expect("status lock");
        (cur.clone(), self.tx.subscribe())
    }

    /// Records `next` if it differs from the current state; returns the state in force.
    pub async fn set(&self, next: Snapshot) -> anyhow::Result<Snapshot> {
        self.update(|_| Some(next)).await
    }

    /// Computes the next state from the current one under the ordering lock (`None`:
    /// no change).
    pub async fn update(
        &self,
        f: impl FnOnce(&Snapshot) -> Option<Snapshot>,
    ) -> anyhow::Result<Snapshot> {
        let _order = self.order.lock().await;
        let cur = self.current();
        let Some(next) = f(&cur) else { return Ok(cur) };
        if next.same_as(&cur) {
            return Ok(cur);
        }
        self.store.save(next.clone()).await?;
        tracing::info!(
            from = ?cur.indicator,
            to = ?next.indicator,
            reason_code = %next.reason_code,
            "status changed"
        );
        {
            let mut recent = self.recent.lock().expect("history lock");
            if recent.len() == HISTORY {
                recent.pop_front();
            }
            recent.push_back(next.clone());
        }
        let mut w = self.current.write().expect("status lock");
        *w = next.clone();
        let _ = self.tx.send(next.clone());
        Ok(next)
    }
}
