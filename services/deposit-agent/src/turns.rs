//! The turns of the requests to Net-entreprises: at most `at_once` at once, deposits and
//! their listings (`lister-depots`) together, in the order asked. The returns'
//! consultations are not counted here: the orchestrator bounds them itself
//! (`returns.concurrency`).
//!
//! The bound is the caller's (`DepositStart.at_once`, `ListDepositsRequest.at_once`: the
//! orchestrator's `deposits.concurrency`). It lives here, where the requests leave, so
//! that a deposit's file crosses from the orchestrator while other deposits are on their
//! way: a turn is held only for the requests themselves (authentication, deposit, the one
//! retry after a 401; a listing). An agent serves one orchestrator: the last bound given
//! is kept; a new one starts a new gate, the turns taken at the former running until
//! they end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

/// The bound when the caller gives none.
pub const DEFAULT_AT_ONCE: u32 = 4;
/// The largest bound taken (a larger one is this).
pub const MAX_AT_ONCE: u32 = 64;
/// How long a deposit may wait for its turn when the caller does not say.
pub const DEFAULT_MAY_WAIT: Duration = Duration::from_secs(60);

/// The gate of the requests to Net-entreprises and its bound.
#[derive(Debug, Default)]
pub struct Turns {
    gate: Mutex<Option<(u32, Arc<Semaphore>)>>,
}

impl Turns {
    /// The gate for a caller's bound `at_once` (0: [`DEFAULT_AT_ONCE`]).
    pub fn gate(&self, at_once: u32) -> Arc<Semaphore> {
        let at_once = match at_once {
            0 => DEFAULT_AT_ONCE,
            n => n.min(MAX_AT_ONCE),
        };
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        match &*gate {
            Some((n, s)) if *n == at_once => s.clone(),
            _ => {
                let s = Arc::new(Semaphore::new(at_once as usize));
                *gate = Some((at_once, s.clone()));
                s
            }
        }
    }
}

/// How long a deposit may wait for its turn: `may_wait_ms`, or [`DEFAULT_MAY_WAIT`] for 0.
pub fn may_wait(may_wait_ms: u64) -> Duration {
    match may_wait_ms {
        0 => DEFAULT_MAY_WAIT,
        ms => Duration::from_millis(ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_holds_the_last_bound_given() {
        let turns = Turns::default();
        let four = turns.gate(0);
        assert_eq!(four.available_permits(), DEFAULT_AT_ONCE as usize);
        assert!(
            Arc::ptr_eq(&four, &turns.gate(4)),
            "the same bound, the same gate"
        );
        let two = turns.gate(2);
        assert_eq!(two.available_permits(), 2);
        assert!(Arc::ptr_eq(&two, &turns.gate(2)));
        assert_eq!(turns.gate(1000).available_permits(), MAX_AT_ONCE as usize);
    }

    #[test]
    fn a_deposit_waits_a_minute_unless_told() {
        assert_eq!(may_wait(0), DEFAULT_MAY_WAIT);
        assert_eq!(may_wait(250), Duration::from_millis(250));
    }
}
