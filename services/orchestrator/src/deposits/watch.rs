//! Following a deposit without polling (`iea.v1.Deposits/WatchDeposit`).
//!
//! Every write of a deposit by this orchestrator goes through [`DepositStore`], which
//! signals the deposit once the write is committed ([`Changes`]: one `watch` channel per
//! deposit being watched, so that a write wakes that deposit's watchers only, and costs a
//! map look-up when nobody watches it). A watcher re-reads its deposit (one store read by
//! id) when signalled (several writes meanwhile: one read), and also every
//! `poll_interval_ms` whatever happens: another orchestrator sharing the
//! PostgreSQL database (réseau mode) writes deposits this one is never told about. It
//! gives a deposit only when what the front-end sees of it changed, and stops after a
//! settled one, when its receiver is dropped (the client went away), or when asked to
//! (the server stops): nothing of it is left then (its task ends, its subscription with it).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{DepositError, DepositRecord, Deposits, NewDeposit, State};
use crate::sessions::Principal;
use crate::store::{AccountFacts, Claim, Duplicate, Store, Transition};

/// Messages a watcher gets ahead of its client.
const AHEAD: usize = 2;

/// The deposits' change signal: for each deposit someone watches, a `watch` channel whose
/// value is bumped at each write of it.
#[derive(Clone, Default)]
pub(crate) struct Changes(Arc<Mutex<HashMap<i64, watch::Sender<u64>>>>);

impl Changes {
    /// Deposit `id` was written.
    pub(crate) fn changed(&self, id: i64) {
        if let Some(tx) = self.0.lock().expect("changes lock").get(&id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Told of each write of deposit `id` from now on, until dropped.
    fn subscribe(&self, id: i64) -> Subscription {
        let rx = self
            .0
            .lock()
            .expect("changes lock")
            .entry(id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription {
            changes: self.clone(),
            id,
            rx: Some(rx),
        }
    }

    /// (Deposits watched, watchers.)
    #[cfg(test)]
    fn watched(&self) -> (usize, usize) {
        let map = self.0.lock().expect("changes lock");
        (map.len(), map.values().map(|tx| tx.receiver_count()).sum())
    }
}

/// One watcher's signal; dropped, the deposit's channel goes with its last watcher.
struct Subscription {
    changes: Changes,
    id: i64,
    /// `None` only while dropped.
    rx: Option<watch::Receiver<u64>>,
}

impl Subscription {
    /// The next write of the deposit (at once if one came since the last call).
    async fn changed(&mut self) {
        match self.rx.as_mut() {
            // The sender lives in the map as long as a receiver does.
            Some(rx) => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut map = self.changes.0.lock().expect("changes lock");
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&self.id);
        }
    }
}

/// The store as the deposits module writes it: each method below that writes a deposit
/// signals it once committed; everything else is the [`Store`]'s own (through `Deref`).
/// Methods of the store that write a deposit's row as front-ends see it are shadowed
/// here, so that `inner.store.transition_deposit(…)` in the worker and the intake
/// signals without the caller doing anything. A write that bypasses it is still seen by
/// the watchers' periodic re-read, as another orchestrator's is.
#[derive(Clone)]
pub(crate) struct DepositStore {
    store: Store,
    changes: Changes,
}

impl Deref for DepositStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl DepositStore {
    pub(super) fn new(store: Store) -> Self {
        Self {
            store,
            changes: Changes::default(),
        }
    }

    pub(crate) fn changes(&self) -> &Changes {
        &self.changes
    }

    /// [`Store::record_deposit`], signalled.
    pub async fn record_deposit<F>(
        &self,
        new: NewDeposit,
        now: i64,
        route: F,
    ) -> anyhow::Result<Result<DepositRecord, Duplicate>>
    where
        F: FnOnce(&str, AccountFacts) -> Transition + Send + 'static,
    {
        let out = self.store.record_deposit(new, now, route).await?;
        if let Ok(r) = &out {
            self.changes.changed(r.id);
        }
        Ok(out)
    }

    /// [`Store::transition_deposit`], signalled when written.
    pub async fn transition_deposit(
        &self,
        id: i64,
        owner: String,
        t: Transition,
        release: bool,
        now: i64,
    ) -> anyhow::Result<bool> {
        let written = self
            .store
            .transition_deposit(id, owner, t, release, now)
            .await?;
        if written {
            self.changes.changed(id);
        }
        Ok(written)
    }

    /// [`Store::claim_deposits_with`], each deposit claimed signalled (those started
    /// are `sending` now).
    pub async fn claim_deposits_with<T, F>(
        &self,
        owner: String,
        now: i64,
        until: i64,
        limit: i64,
        prepare: F,
    ) -> anyhow::Result<Vec<(DepositRecord, T)>>
    where
        T: Send + 'static,
        F: Fn(&DepositRecord, AccountFacts) -> Claim<T> + Send + 'static,
    {
        let claimed = self
            .store
            .claim_deposits_with(owner, now, until, limit, prepare)
            .await?;
        for (rec, _) in &claimed {
            self.changes.changed(rec.id);
        }
        Ok(claimed)
    }

    /// [`Store::decide_deposit`], signalled when written.
    pub async fn decide_deposit(
        &self,
        id: i64,
        from: &'static [State],
        t: Transition,
        now: i64,
    ) -> anyhow::Result<Option<(DepositRecord, bool)>> {
        let out = self.store.decide_deposit(id, from, t, now).await?;
        if let Some((_, true)) = &out {
            self.changes.changed(id);
        }
        Ok(out)
    }

    /// [`Store::recover_deposits`], each deposit made `uncertain` signalled.
    pub async fn recover_deposits(&self, owner: String, now: i64) -> anyhow::Result<Vec<i64>> {
        let ids = self.store.recover_deposits(owner, now).await?;
        for &id in &ids {
            self.changes.changed(id);
        }
        Ok(ids)
    }
}

impl Deposits {
    /// Follows deposit `id` for `caller`, refused as [`Self::get`] refuses (before
    /// anything is sent). The receiver gets `view` of the deposit as it is now, then of
    /// each change of that view (never the same twice in a row), and ends after a settled
    /// one; an error (the deposit no longer visible to `caller`, the store failing) is
    /// its last item. The watcher's task ends when the receiver is dropped or `stop`
    /// fires.
    pub async fn watch<T, V>(
        &self,
        caller: &Principal,
        id: i64,
        view: V,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<mpsc::Receiver<Result<T, DepositError>>, DepositError>
    where
        T: PartialEq + Clone + Send + 'static,
        V: Fn(DepositRecord) -> T + Send + 'static,
    {
        // Subscribed before the first read: a change written after it is signalled.
        let signal = self.inner.store.changes().subscribe(id);
        let first = self.get(caller, id).await?;
        let (tx, rx) = mpsc::channel(AHEAD);
        let watcher = Watcher {
            deposits: self.clone(),
            caller: caller.clone(),
            id,
            signal,
            every: Duration::from_millis(self.inner.settings.poll_interval_ms.max(10)),
        };
        tokio::spawn(watcher.run(first, view, tx, stop));
        Ok(rx)
    }

    /// Watchers now running (each holds one subscription to its deposit's signal), and
    /// deposits watched (each a channel).
    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        let (deposits, watchers) = self.inner.store.changes().watched();
        assert!(
            (deposits == 0) == (watchers == 0),
            "{deposits} deposits watched by {watchers} watchers"
        );
        watchers
    }
}

struct Watcher {
    deposits: Deposits,
    caller: Principal,
    id: i64,
    signal: Subscription,
    every: Duration,
}

impl Watcher {
    async fn run<T, V>(
        mut self,
        first: DepositRecord,
        view: V,
        tx: mpsc::Sender<Result<T, DepositError>>,
        stop: impl Future<Output = ()> + Send + 'static,
    ) where
        T: PartialEq + Clone + Send + 'static,
        V: Fn(DepositRecord) -> T + Send + 'static,
    {
        tokio::pin!(stop);
        let mut last: Option<T> = None;
        let mut rec = first;
        loop {
            let settled = rec.state.is_settled();
            let now = view(rec);
            if last.as_ref() != Some(&now) {
                tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    sent = tx.send(Ok(now.clone())) => if sent.is_err() { return },
                }
                last = Some(now);
            }
            if settled {
                return;
            }
            tokio::select! {
                biased;
                _ = &mut stop => return,
                _ = tx.closed() => return,
                _ = self.next_look() => {}
            }
            rec = match self.deposits.get(&self.caller, self.id).await {
                Ok(r) => r,
                Err(e) => {
                    if !matches!(e, DepositError::NotFound(_)) {
                        tracing::warn!(
                            deposit = self.id,
                            error = format!("{e:#}"),
                            "deposit watch ended: read failed"
                        );
                    }
                    tokio::select! {
                        biased;
                        _ = &mut stop => {}
                        _ = tx.send(Err(e)) => {}
                    }
                    return;
                }
            };
        }
    }

    /// Waits until the deposit is worth reading again: written by this orchestrator, or
    /// `every` passed (another orchestrator's writes).
    async fn next_look(&mut self) {
        tokio::select! {
            _ = tokio::time::sleep(self.every) => {}
            _ = self.signal.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! On the engine of the test run (SQLite, or PostgreSQL with `IEA_TEST_DATABASE_URL`).
    //! Transitions are written with the calls the worker and a person's decision make,
    //! through the queue's store; the whole path through the deposit agent is the
    //! end-to-end suite's (`iea dsn deposit` follows its deposit with `WatchDeposit`).

    use std::sync::Arc;

    use super::*;
    use crate::deposits::DepositSettings;
    use crate::deposits::testing::new;
    use crate::store::testing::{TestDb, store};
    use crate::users::Role;

    /// Long enough that only a signal can bring a change within a test's wait.
    const NO_FALLBACK_MS: u64 = 600_000;
    /// Longest wait for something a test expects.
    const WAIT: Duration = Duration::from_secs(10);

    struct World {
        db: TestDb,
        deposits: Deposits,
        admin: Principal,
        _data: tempfile::TempDir,
    }

    /// A deposit queue on a fresh database, its watchers re-reading every `poll_ms`; no
    /// worker runs: the tests write the transitions.
    async fn world(poll_ms: u64) -> World {
        let db = store().await;
        let admin_id = db
            .store
            .insert_first_user("Administrateur", Role::Administrator, "h", 1)
            .await
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let pki = data.path().join("pki");
        iea_runtime::pki::init(&pki, &[]).unwrap();
        let agents = crate::agents::Agents::new(
            &crate::agents::AgentAddresses::default(),
            &iea_runtime::pki::component_files(&pki, "orchestrator"),
        )
        .unwrap();
        let keyring =
            crate::crypto::Keyring::load_or_create(&data.path().join("secrets.key")).unwrap();
        let vault = crate::vault::Vault::new(db.store.clone(), keyring)
            .await
            .unwrap();
        let network = Arc::new(
            crate::network::Network::load(crate::network::NetworkDefaults::default(), None)
                .unwrap(),
        );
        let settings = DepositSettings {
            poll_interval_ms: poll_ms,
            folder_enabled: false,
            ..Default::default()
        };
        let deposits = Deposits::new(
            db.store.clone(),
            vault,
            agents,
            network,
            settings,
            2,
            data.path(),
        )
        .unwrap();
        World {
            db,
            deposits,
            admin: Principal {
                user_id: admin_id,
                name: "Administrateur".into(),
                role: Role::Administrator,
            },
            _data: data,
        }
    }

    impl World {
        fn store(&self) -> &DepositStore {
            &self.deposits.inner.store
        }

        /// A deposit recorded and queued with the administrator's identity, as an upload
        /// records it.
        async fn queued(&self, sha: &str) -> i64 {
            let user_id = self.admin.user_id;
            self.store()
                .record_deposit(new(sha, "01"), 10, move |_, _| Transition {
                    state: Some(State::Queued),
                    user_id: Some(user_id),
                    message: Some("En file d'attente.".into()),
                    ..Default::default()
                })
                .await
                .unwrap()
                .unwrap()
                .id
        }

        /// The worker's claim: `sending`, committed.
        async fn claim(&self, id: i64) {
            let user_id = self.admin.user_id;
            let owner = self.deposits.inner.owner.clone();
            let claimed = self
                .store()
                .claim_deposits_with(owner, 11, 100, 1, move |_, _| Claim::Start(user_id, ()))
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1);
            assert_eq!(claimed[0].0.id, id);
        }

        /// The worker's answer to an attempt.
        async fn answer(&self, id: i64, t: Transition) {
            let owner = self.deposits.inner.owner.clone();
            assert!(
                self.store()
                    .transition_deposit(id, owner, t, true, 12)
                    .await
                    .unwrap()
            );
        }

        async fn watch(
            &self,
            caller: &Principal,
            id: i64,
        ) -> Result<mpsc::Receiver<Result<DepositRecord, DepositError>>, DepositError> {
            self.deposits
                .watch(caller, id, |r| r, std::future::pending())
                .await
        }

        /// Until the watchers are `n` (a task ends a moment after its receiver is dropped).
        async fn watchers_become(&self, n: usize) {
            tokio::time::timeout(WAIT, async {
                while self.deposits.watchers() != n {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{} watchers, not {n}", self.deposits.watchers()));
        }
    }

    /// The next item, which must come within [`WAIT`].
    async fn next<T>(rx: &mut mpsc::Receiver<T>) -> Option<T> {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("the watch said nothing in time")
    }

    fn accepted() -> Transition {
        Transition {
            state: Some(State::Accepted),
            idflux: Some("ABC123".into()),
            message: Some("Dépôt enregistré.".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_watch_follows_a_deposit_through_its_transitions_and_ends_once_accepted() {
        let w = world(NO_FALLBACK_MS).await;
        let id = w.queued("a").await;
        let mut rx = w.watch(&w.admin, id).await.unwrap();
        let first = next(&mut rx).await.unwrap().unwrap();
        assert_eq!((first.id, first.state), (id, State::Queued));
        assert_eq!(w.deposits.watchers(), 1);
        w.claim(id).await;
        let sending = next(&mut rx).await.unwrap().unwrap();
        assert_eq!((sending.state, sending.attempts), (State::Sending, 1));
        w.answer(id, accepted()).await;
        let last = next(&mut rx).await.unwrap().unwrap();
        assert_eq!(last.state, State::Accepted);
        assert_eq!(last.idflux.as_deref(), Some("ABC123"));
        // The end, right after the settled deposit.
        assert!(next(&mut rx).await.is_none());
        w.watchers_become(0).await;
    }

    #[tokio::test]
    async fn a_signal_that_changes_nothing_sends_nothing() {
        let w = world(NO_FALLBACK_MS).await;
        let id = w.queued("a").await;
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let view = move |r: DepositRecord| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r
        };
        let mut rx = w
            .deposits
            .watch(&w.admin, id, view, std::future::pending())
            .await
            .unwrap();
        assert_eq!(next(&mut rx).await.unwrap().unwrap().state, State::Queued);
        // Signalled without a change (as a write another orchestrator's lease renewal
        // would be): read again, found the same, not sent.
        w.store().changes().changed(id);
        tokio::time::timeout(WAIT, async {
            while reads.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the signal made the watcher read again");
        w.claim(id).await;
        // The next message is the change (a message sent for the read above would come
        // first: it was sent, if at all, before the watcher read again).
        assert_eq!(next(&mut rx).await.unwrap().unwrap().state, State::Sending);
    }

    #[tokio::test]
    async fn a_settled_deposit_gives_one_message_then_the_end() {
        let w = world(NO_FALLBACK_MS).await;
        let id = w.queued("a").await;
        w.claim(id).await;
        w.answer(id, accepted()).await;
        let mut rx = w.watch(&w.admin, id).await.unwrap();
        let only = next(&mut rx).await.unwrap().unwrap();
        assert_eq!(only.state, State::Accepted);
        assert!(next(&mut rx).await.is_none());
        w.watchers_become(0).await;
    }

    #[tokio::test]
    async fn another_users_deposit_is_refused_as_get_refuses_it() {
        let w = world(NO_FALLBACK_MS).await;
        let id = w.queued("a").await;
        let bob = Principal {
            user_id: w.admin.user_id + 1,
            name: "bob".into(),
            role: Role::User,
        };
        assert!(
            matches!(w.deposits.get(&bob, id).await, Err(DepositError::NotFound(i)) if i == id)
        );
        assert!(matches!(w.watch(&bob, id).await, Err(DepositError::NotFound(i)) if i == id));
        // A deposit that does not exist: the same answer.
        assert!(matches!(
            w.watch(&w.admin, id + 1).await,
            Err(DepositError::NotFound(_))
        ));
        assert!(matches!(
            w.deposits.get(&w.admin, id + 1).await,
            Err(DepositError::NotFound(_))
        ));
        // Refused before anything: no watcher left.
        assert_eq!(w.deposits.watchers(), 0);
        // One's own deposit (requested by them) is followed.
        let mut mine = new("b", "03");
        mine.requested_by = "bob".into();
        let own = w
            .store()
            .record_deposit(mine, 10, |_, _| Transition::default())
            .await
            .unwrap()
            .unwrap();
        let mut rx = w.watch(&bob, own.id).await.unwrap();
        assert_eq!(next(&mut rx).await.unwrap().unwrap().id, own.id);
    }

    #[tokio::test]
    async fn another_orchestrators_change_is_seen_by_the_periodic_read() {
        let w = world(100).await;
        let id = w.queued("a").await;
        let mut rx = w.watch(&w.admin, id).await.unwrap();
        assert_eq!(next(&mut rx).await.unwrap().unwrap().state, State::Queued);
        // Written by another orchestrator on the same database: no signal here.
        let other = Store::open(&w.db.url).await.unwrap();
        let (_, written) = other
            .decide_deposit(id, &[State::Queued], accepted(), 12)
            .await
            .unwrap()
            .unwrap();
        assert!(written);
        let seen = next(&mut rx).await.unwrap().unwrap();
        assert_eq!(seen.state, State::Accepted);
        assert!(next(&mut rx).await.is_none());
        w.watchers_become(0).await;
    }

    #[tokio::test]
    async fn a_watcher_dropped_or_stopped_leaves_nothing_behind() {
        let w = world(NO_FALLBACK_MS).await;
        let id = w.queued("a").await;
        let mut rxs = Vec::new();
        for _ in 0..3 {
            let mut rx = w.watch(&w.admin, id).await.unwrap();
            next(&mut rx).await.unwrap().unwrap();
            rxs.push(rx);
        }
        assert_eq!(w.deposits.watchers(), 3);
        // The clients go away while nothing changes: each task sees it and ends.
        drop(rxs);
        w.watchers_become(0).await;
        // The server stops: the watch ends without a settled message.
        let (fire, stop) = tokio::sync::oneshot::channel::<()>();
        let mut rx = w
            .deposits
            .watch(&w.admin, id, |r| r, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        next(&mut rx).await.unwrap().unwrap();
        assert_eq!(w.deposits.watchers(), 1);
        fire.send(()).unwrap();
        assert!(next(&mut rx).await.is_none());
        w.watchers_become(0).await;
    }
}
