//! What comes back for a DSN deposit (issue 13): each accepted deposit's returns are
//! followed until its natures are in (10 the AEE/ARE, 11 the conformity, 94 the CRM PAS
//! after the due date) or a limit of days passes; each declarant's returns are scanned
//! window by window from a persisted cursor, to catch overwritten returns and those of
//! deposits made elsewhere. Each new return (or new version) is downloaded once, kept
//! (0600) with its SHA-256, and read: 10/11 give the deposit's conformity and anomalies,
//! 94 the withholding rates, exported for the payroll program.
//!
//! Invariants: nothing of a return's content (NIR, names, amounts, rates) is logged: logs
//! carry deposit ids, idflux, natures, return ids, sizes and states; a download address
//! outside the configured download service is refused before anything is sent.

mod types;

pub use types::*;

use serde::{Deserialize, Serialize};

/// The limits of the following, a settings record (`returns_follow`) an administrator
/// may change; these defaults apply until one is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowPolicy {
    /// A deposit is no longer listed this many days after it was accepted.
    pub limit_days: u32,
}

impl Default for FollowPolicy {
    fn default() -> Self {
        Self { limit_days: 60 }
    }
}
