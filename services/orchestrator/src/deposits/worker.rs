//! The worker: claims due deposits under a lease, sends the queued ones through the
//! deposit agent and settles the uncertain ones by listing the declarant's deposits.
//!
//! Order of an attempt, in one store call (one blocking task, one transaction): lease
//! taken (conditional `UPDATE`), account and identity read, the stored file opened (read
//! whole when small), the access made, `sending` with the attempt's start written; once
//! that is committed, the file is streamed to the agent; the answer is written under the
//! same lease, released by the same statement. Two store calls per deposit sent. A lease is renewed
//! while the work goes on; a `sending` record whose lease expired (its orchestrator died)
//! becomes `uncertain`, never `queued`.
//!
//! Turns: at most `concurrency` requests go to Net-entreprises at once, a bound the
//! deposit agent keeps (its turns, deposits and listings together), and
//! [`CLAIMS_PER_TURN`] times as many deposits are claimed at once, `sending` committed: each one's file goes to the agent
//! at once and waits there for its turn, so that the next request leaves as soon as one
//! ends, instead of after a claim's commit (whose sync takes milliseconds) and the hop to
//! the agent. One waits at most `min(max_attempt_secs, 60 s)` for its turn, else never
//! leaves the agent and goes back to `queued`: an attempt whose end is unknown may thus
//! have left up to `max_attempt_secs` after its start, and its listing window closes
//! `2 × max_attempt_secs` after it.
//!
//! Stop: on shutdown the loop takes no more deposits, the deposits waiting for their turn
//! are withdrawn (those whose turn had not come go back to `queued`; the others are
//! under way), then it waits for every attempt under way (a file being sent and its
//! answer written, a listing of an uncertain deposit) and
//! for the verifications before due dates it started, at most `stop_deadline_secs`. What
//! still runs then is dropped with a warning naming the deposit: its record stays as a
//! killed process would leave it (`sending` under this orchestrator's lease, so
//! `uncertain` at the next start and settled by listing, never sent blindly), and once
//! [`run`] returns no attempt of this worker writes the store or calls the agent (a
//! verification before a due date already asked goes on in the credentials module's own
//! task, which records its answer as any verification's).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use iea_declarant::Identity;
use iea_runtime::shutdown::Shutdown;

use super::intake::StoredFile;
use super::{
    Anomaly, Candidate, DepositRecord, Inner, ListOutcome, ListingZone, SendOutcome, State,
    WaitKind,
};
use crate::agents::{DepositAccess, DepositTurn};
use crate::connection::Target;
use crate::credentials::VerificationResult;
use crate::sessions;
use crate::store::{AccountFacts, Claim, CredentialRow, Transition, VerificationWrite};

/// The account a deposit goes out with, and its identity as stored.
struct Account {
    user_id: i64,
    name: String,
    row: CredentialRow,
}

/// Why a deposit cannot go out now: the kind and a French sentence.
type Wait = (WaitKind, String, Option<i64>);

/// The account that deposits (`facts`: read with the deposit), with its identity, or why
/// there is none.
fn account_from(budget: u32, siret: &str, facts: AccountFacts) -> Result<Account, Wait> {
    let Some((user_id, name)) = facts.chosen else {
        return Err((
            WaitKind::NoAccount,
            if facts.with_credentials == 0 {
                format!(
                    "Aucun compte n'a d'identifiants Net-entreprises : enregistrez ceux du déclarant (iea credentials set) ou désignez le compte qui dépose pour le SIRET {siret} (iea dsn accounts set --siret {siret} --user NOM)."
                )
            } else {
                format!(
                    "Plusieurs comptes ont des identifiants Net-entreprises : désignez celui qui dépose pour le SIRET {siret} (iea dsn accounts set --siret {siret} --user NOM)."
                )
            },
            None,
        ));
    };
    let Some(row) = facts.credential else {
        return Err((
            WaitKind::NoCredentials,
            format!(
                "Le compte « {name} » n'a pas d'identifiants Net-entreprises : le dépôt attend qu'ils soient enregistrés (iea credentials set --user {name})."
            ),
            None,
        ));
    };
    if row.consecutive_failures >= budget {
        return Err((
            WaitKind::Refused,
            format!(
                "Les {} dernières authentifications du compte « {} » ont été refusées par Net-entreprises : pour ne pas provoquer le blocage du compte du déclarant, aucun dépôt ne sera tenté tant que ses identifiants n'auront pas été corrigés.",
                row.consecutive_failures, row.user
            ),
            Some(row.updated_at),
        ));
    }
    Ok(Account {
        user_id,
        name: row.user.clone(),
        row,
    })
}

/// The account of `rec` as the store says now (one call).
async fn account_of(inner: &Inner, rec: &DepositRecord) -> anyhow::Result<Result<Account, Wait>> {
    let facts = inner.store.deposit_account_facts(rec.clone()).await?;
    Ok(account_from(inner.budget, &rec.siret, facts))
}

fn waiting(wait: Wait) -> Transition {
    let (kind, message, at) = wait;
    Transition {
        state: Some(State::Waiting),
        message: Some(message),
        wait: Some((kind, at)),
        ..Default::default()
    }
}

/// What a checked deposit becomes: queued with its account, or waiting and saying why.
fn routed(decision: Result<Account, Wait>) -> Transition {
    match decision {
        Ok(a) => Transition {
            state: Some(State::Queued),
            user_id: Some(a.user_id),
            message: Some(format!(
                "Le dépôt sera fait avec les identifiants Net-entreprises du compte « {} ».",
                a.name
            )),
            ..Default::default()
        },
        Err(w) => waiting(w),
    }
}

/// The routing of a file being recorded, decided in the store's call that records it
/// ([`crate::store::Store::record_deposit`]).
pub(super) fn routing(
    budget: u32,
) -> impl FnOnce(&str, AccountFacts) -> Transition + Send + 'static {
    move |siret, facts| routed(account_from(budget, siret, facts))
}

/// A checked deposit left unrouted (its intake's routing failed): queued with its
/// account, or waiting and saying why.
pub(super) async fn route(inner: &Inner, rec: DepositRecord) -> anyhow::Result<DepositRecord> {
    let t = routed(account_of(inner, &rec).await?);
    let (after, _) = inner
        .store
        .decide_deposit(rec.id, &[State::Checked], t, sessions::now())
        .await?
        .ok_or_else(|| anyhow::anyhow!("deposit {} vanished", rec.id))?;
    if after.state == State::Waiting {
        tracing::info!(deposit = after.id, siret = %after.siret, "dsn deposit waiting for an account");
    }
    Ok(after)
}

pub(super) async fn run(inner: Arc<Inner>, shutdown: Shutdown) {
    match inner
        .store
        .recover_deposits(inner.owner.clone(), sessions::now())
        .await
    {
        Ok(ids) => {
            for id in ids {
                tracing::warn!(
                    deposit = id,
                    "dsn deposit interrupted while sending: now uncertain"
                );
            }
        }
        Err(e) => tracing::error!(error = format!("{e:#}"), "deposit recovery failed"),
    }
    let places = Places::new(inner.settings.concurrency);
    let poll = Duration::from_millis(inner.settings.poll_interval_ms.max(50));
    let deposits = super::Deposits {
        inner: inner.clone(),
    };
    let mut watch = super::folder::Watch::default();
    let mut last_due_check: Option<std::time::Instant> = None;
    let mut last_upkeep: Option<std::time::Instant> = None;
    let mut attempts = Attempts::default();
    let mut checks = JoinSet::new();
    loop {
        attempts.reap();
        while let Some(ended) = checks.try_join_next() {
            log_abnormal_end(ended, None);
        }
        let every = Duration::from_secs(inner.settings.due_check_interval_secs.max(1));
        if last_due_check.is_none_or(|t| t.elapsed() >= every) {
            last_due_check = Some(std::time::Instant::now());
            let deposits = deposits.clone();
            // In a task of its own: a verification waits on Net-entreprises.
            checks.spawn(async move {
                if let Err(e) = deposits.check_before_due().await {
                    tracing::warn!(error = format!("{e:#}"), "checks before due dates failed");
                }
            });
        }
        // The upkeep (the deposit folder, other orchestrators' expired leases, waiting and
        // unrouted deposits) every poll interval, or when asked; a wake for the queue
        // alone (a deposit recorded, an attempt ended) looks only at the queue: at a
        // deposit's pace, the upkeep's queries would cost more than the deposit's own.
        let upkeep_asked = inner
            .upkeep
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if upkeep_asked || last_upkeep.is_none_or(|t| t.elapsed() >= poll) {
            last_upkeep = Some(std::time::Instant::now());
            if let Err(e) = deposits.watch_folder(&mut watch).await {
                tracing::error!(error = format!("{e:#}"), "deposit folder look failed");
            }
            if let Err(e) = upkeep(&inner).await {
                tracing::error!(error = format!("{e:#}"), "deposit queue upkeep failed");
            }
        }
        if let Err(e) = tick(&inner, &places, &mut attempts, &shutdown).await {
            tracing::error!(error = format!("{e:#}"), "deposit queue tick failed");
        }
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
    let deadline = Duration::from_secs(inner.settings.stop_deadline_secs);
    stop(deadline, attempts, checks).await;
}

/// The attempts under way (each a task working on one deposit), so that a stop waits for
/// them.
#[derive(Default)]
struct Attempts {
    tasks: JoinSet<()>,
    /// The deposit each running task works on.
    deposits: HashMap<tokio::task::Id, i64>,
}

impl Attempts {
    fn spawn(&mut self, deposit: i64, work: impl Future<Output = ()> + Send + 'static) {
        let task = self.tasks.spawn(work);
        self.deposits.insert(task.id(), deposit);
    }

    /// Lets go of the attempts that ended.
    fn reap(&mut self) {
        while let Some(ended) = self.tasks.try_join_next_with_id() {
            self.ended(ended);
        }
    }

    fn ended(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let task = match &ended {
            Ok((task, ())) => *task,
            Err(e) => e.id(),
        };
        let deposit = self.deposits.remove(&task);
        log_abnormal_end(ended.map(|_| ()), deposit);
    }

    /// Waits for every attempt to end.
    async fn join_all(&mut self) {
        while let Some(ended) = self.tasks.join_next_with_id().await {
            self.ended(ended);
        }
    }
}

/// A task that panicked says so (its deposit, if any, stays as its lease leaves it).
fn log_abnormal_end(ended: Result<(), tokio::task::JoinError>, deposit: Option<i64>) {
    if let Err(e) = ended
        && e.is_panic()
    {
        tracing::error!(deposit, "deposit worker task panicked");
    }
}

/// On shutdown: waits for the attempts under way and the verifications before due dates,
/// at most `deadline`; what still runs then is dropped, each deposit named. The deposits
/// whose attempt was dropped.
async fn stop(deadline: Duration, mut attempts: Attempts, mut checks: JoinSet<()>) -> Vec<i64> {
    attempts.reap();
    if attempts.tasks.is_empty() && checks.is_empty() {
        return Vec::new();
    }
    tracing::info!(
        attempts = attempts.tasks.len(),
        checks = checks.len(),
        deadline_secs = deadline.as_secs(),
        "deposit worker stopping: waiting for the work under way"
    );
    let ended = tokio::time::timeout(deadline, async {
        attempts.join_all().await;
        while let Some(ended) = checks.join_next().await {
            log_abnormal_end(ended, None);
        }
    })
    .await;
    if ended.is_ok() {
        tracing::info!("deposit worker stopped: no attempt left under way");
        return Vec::new();
    }
    let mut left: Vec<i64> = attempts.deposits.values().copied().collect();
    left.sort_unstable();
    for &deposit in &left {
        tracing::warn!(
            deposit,
            "dsn deposit attempt still under way at the stop deadline: dropped, left to the next start, which settles it by listing"
        );
    }
    if !checks.is_empty() {
        tracing::warn!(
            checks = checks.len(),
            "verification before due dates still under way at the stop deadline: dropped"
        );
    }
    // Aborted, and waited for: nothing of them runs once the worker has returned.
    attempts.tasks.shutdown().await;
    checks.shutdown().await;
    left
}

/// What the queue needs now and then: attempts of a dead orchestrator settled, waiting
/// deposits queued once what they wait for is there, recorded ones routed.
async fn upkeep(inner: &Arc<Inner>) -> anyhow::Result<()> {
    let now = sessions::now();
    // Another orchestrator's attempt whose lease expired: it died while sending.
    for id in inner.store.recover_deposits(String::new(), now).await? {
        tracing::warn!(
            deposit = id,
            "dsn deposit lease expired while sending: now uncertain"
        );
    }
    for id in inner
        .store
        .deposits_due(&[State::Waiting], now, 100)
        .await?
    {
        requeue_if_possible(inner, id).await?;
    }
    // Recorded but not routed (the intake's routing failed): routed now.
    for id in inner
        .store
        .deposits_due(&[State::Checked], now, 100)
        .await?
    {
        if let Some(rec) = inner.store.deposit(id).await?
            && rec.created_at < now - 2
        {
            route(inner, rec).await?;
        }
    }
    Ok(())
}

/// The longest a deposit waits for its turn at the agent (within `max_attempt_secs`):
/// half the orchestrator's deadline on a call to an agent, so that the request itself
/// has the other half.
const MAX_TURN_WAIT: Duration = Duration::from_secs(60);

/// Deposits claimed at once per request to Net-entreprises at once. A claim lasts from
/// its commit to its answer's, a request only its own round trip: at a few milliseconds
/// of the service's latency, the claims' commits and the hops to the agent take about as
/// long again, and the turns would stay idle with fewer claims waiting at the agent.
const CLAIMS_PER_TURN: usize = 4;

/// The worker's places: `claims`, the deposits claimed at once: those under way at the
/// agent (at most `concurrency`, the agent's bound), the others waiting there for their
/// turn.
struct Places {
    claims: Arc<Semaphore>,
}

impl Places {
    fn new(concurrency: usize) -> Self {
        Self {
            claims: Arc::new(Semaphore::new(CLAIMS_PER_TURN * concurrency.max(1))),
        }
    }
}

/// How a deposit of this worker waits for its turn at the agent.
fn turn(inner: &Inner) -> DepositTurn {
    DepositTurn {
        at_once: at_once(inner),
        may_wait: Duration::from_secs(inner.settings.max_attempt_secs).min(MAX_TURN_WAIT),
    }
}

/// The requests to Net-entreprises at once, kept by the agent.
fn at_once(inner: &Inner) -> u32 {
    u32::try_from(inner.settings.concurrency.max(1)).unwrap_or(u32::MAX)
}

/// Starts work on due deposits while there is room: as many as there are free claims are
/// claimed in one store call, with what decides their account.
async fn tick(
    inner: &Arc<Inner>,
    places: &Places,
    attempts: &mut Attempts,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let room = places.claims.available_permits();
    if room == 0 {
        // Every claim is taken: the one that ends wakes the worker.
        return Ok(());
    }
    let now = sessions::now();
    let prepare = {
        let inner = inner.clone();
        move |rec: &DepositRecord, facts: AccountFacts| prepare(&inner, rec, facts)
    };
    let claimed = inner
        .store
        .claim_deposits_with(
            inner.owner.clone(),
            now,
            now + inner.settings.lease_secs as i64,
            room as i64,
            prepare,
        )
        .await?;
    for (rec, ready) in claimed {
        // Only this loop takes claims: the room counted above is there.
        let claim = Claimed {
            permit: Some(places.claims.clone().try_acquire_owned()?),
            inner: inner.clone(),
        };
        let inner = inner.clone();
        let shutdown = shutdown.clone();
        // A file of the deposit folder moves out of it once its deposit is settled.
        let from_folder = rec.source_path.is_some();
        attempts.spawn(rec.id, async move {
            work(inner.clone(), rec, ready, shutdown).await;
            if from_folder {
                inner.wake_for_upkeep();
            }
            drop(claim);
        });
    }
    Ok(())
}

/// A waiting deposit goes back to the queue once what it waited for is there: an account,
/// credentials, or (after a refusal) an identity that changed since.
async fn requeue_if_possible(inner: &Inner, id: i64) -> anyhow::Result<()> {
    let Some(rec) = inner.store.deposit(id).await? else {
        return Ok(());
    };
    let Ok(account) = account_of(inner, &rec).await? else {
        return Ok(());
    };
    if rec.wait_kind == Some(WaitKind::Refused)
        && rec.wait_credential_at == Some(account.row.updated_at)
    {
        return Ok(());
    }
    let t = Transition {
        state: Some(State::Queued),
        user_id: Some(account.user_id),
        message: Some(format!(
            "Le dépôt sera fait avec les identifiants Net-entreprises du compte « {} ».",
            account.name
        )),
        ..Default::default()
    };
    if let Some((_, true)) = inner
        .store
        .decide_deposit(id, &[State::Waiting], t, sessions::now())
        .await?
    {
        tracing::info!(deposit = id, "dsn deposit queued again");
    }
    Ok(())
}

/// Renews a lease until dropped.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renew(inner: &Arc<Inner>, id: i64) -> Renewal {
    let inner = inner.clone();
    Renewal(tokio::spawn(async move {
        let every = Duration::from_secs((inner.settings.lease_secs / 3).max(1));
        loop {
            tokio::time::sleep(every).await;
            let until = sessions::now() + inner.settings.lease_secs as i64;
            match inner
                .store
                .renew_deposit_lease(id, inner.owner.clone(), until)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(deposit = id, "deposit lease lost");
                    break;
                }
                Err(e) => tracing::warn!(
                    deposit = id,
                    error = format!("{e:#}"),
                    "lease renewal failed"
                ),
            }
        }
    }))
}

/// A deposit going out: its account, access and stored file.
struct Outgoing {
    account: Account,
    access: DepositAccess,
    file: StoredFile,
}

/// What a claimed deposit is ready for, decided in the claim's store call.
enum Ready {
    /// Marked `sending` in the claim's transaction: the file goes out now.
    Send(Box<Outgoing>),
    /// Queued, but no account can deposit it now.
    Wait(Wait),
    /// Queued, its stored file not in this orchestrator's data directory.
    NotHere,
    /// Queued, the access could not be made (the sealed password could not be opened).
    Failed(anyhow::Error),
    /// Uncertain: settled by listing.
    Settle(Box<AccountFacts>),
}

/// Run in the claim's store call, on the blocking pool: for a queued deposit, its account,
/// its stored file (read whole when small) and its access, and whether it starts now
/// (`sending` committed in the same transaction as the claim, before anything leaves).
fn prepare(inner: &Inner, rec: &DepositRecord, facts: AccountFacts) -> Claim<Ready> {
    if rec.state != State::Queued {
        return Claim::Keep(Ready::Settle(Box::new(facts)));
    }
    let account = match account_from(inner.budget, &rec.siret, facts) {
        Ok(a) => a,
        Err(w) => return Claim::Keep(Ready::Wait(w)),
    };
    // The stored file lives in the data directory of the orchestrator that received it:
    // another one sharing the database leaves the deposit to it.
    let Ok(file) = StoredFile::open_blocking(Path::new(&rec.file_path), rec.bytes as u64) else {
        return Claim::Keep(Ready::NotHere);
    };
    match access(inner, &account, &inner.settings.deposit_address) {
        Ok(access) => Claim::Start(
            account.user_id,
            Ready::Send(Box::new(Outgoing {
                account,
                access,
                file,
            })),
        ),
        Err(e) => Claim::Keep(Ready::Failed(e)),
    }
}

/// A claimed deposit's place among the worker's claims; given back when dropped, once
/// its work has ended, waking the worker, which may claim the next deposit: the claim is
/// free before the worker looks again (woken while it was still held, it would find no
/// room and wait for the next wake).
struct Claimed {
    permit: Option<OwnedSemaphorePermit>,
    inner: Arc<Inner>,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.inner.wake.notify_one();
    }
}

async fn work(inner: Arc<Inner>, rec: DepositRecord, ready: Ready, shutdown: Shutdown) {
    let id = rec.id;
    let owner = inner.owner.clone();
    let _renewal = renew(&inner, id);
    let result = match ready {
        Ready::Settle(facts) => settle(inner.clone(), rec, *facts).await,
        Ready::Send(outgoing) => send(inner.clone(), rec, *outgoing, &shutdown).await,
        Ready::Wait(w) => inner
            .store
            .transition_deposit(id, owner, waiting(w), true, sessions::now())
            .await
            .map(drop),
        Ready::NotHere => {
            tracing::debug!(
                deposit = id,
                "stored file not here: left to another orchestrator"
            );
            let t = Transition {
                not_before: Some(sessions::now() + 1),
                ..Default::default()
            };
            inner
                .store
                .transition_deposit(id, owner, t, true, sessions::now())
                .await
                .map(drop)
        }
        Ready::Failed(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!(
            deposit = id,
            error = format!("{e:#}"),
            "deposit work failed"
        );
        // An attempt that may have left is uncertain, never queued again as it is.
        let sending = matches!(
            inner.store.deposit(id).await,
            Ok(Some(r)) if r.state == State::Sending
        );
        let t = if sending {
            uncertain(sessions::now())
        } else {
            Transition {
                not_before: Some(sessions::now() + inner.settings.retry_delay_secs as i64),
                ..Default::default()
            }
        };
        let _ = inner
            .store
            .transition_deposit(id, inner.owner.clone(), t, true, sessions::now())
            .await;
    }
}

fn access(inner: &Inner, account: &Account, address: &str) -> anyhow::Result<DepositAccess> {
    let mut network = inner.network.for_target(Target::NetEntreprises);
    let auth_address = std::mem::replace(&mut network.address, address.to_owned());
    let password = inner.vault.open(
        &account.row.sealed,
        &crate::vault::credential_aad(account.user_id),
    )?;
    Ok(DepositAccess {
        network,
        auth_address,
        identity: Identity {
            siret: account.row.siret.clone(),
            nom: account.row.nom.clone(),
            prenom: account.row.prenom.clone(),
            password,
        },
        service: inner.network.net_entreprises_service(),
    })
}

/// A refused authentication counts against the account's budget, as a verification's.
async fn record_refusal(inner: &Inner, account: &Account, v: &VerificationResult) -> Transition {
    if v.outcome.is_refusal() {
        let write = VerificationWrite {
            user_id: account.user_id,
            updated_at: account.row.updated_at,
            result: v.clone(),
        };
        if let Err(e) = inner
            .store
            .record_verifications(vec![write], sessions::now())
            .await
        {
            tracing::error!(error = format!("{e:#}"), "refusal not recorded");
        }
    }
    tracing::warn!(user = %account.name, outcome = v.outcome.code(), "net-entreprises authentication refused for a deposit");
    if v.outcome.is_refusal() || v.outcome == crate::credentials::Outcome::InvalidInput {
        waiting((
            WaitKind::Refused,
            format!(
                "Net-entreprises a refusé l'authentification du compte « {} » : {} Le dépôt attend que ses identifiants soient corrigés.",
                account.name, v.message
            ),
            Some(account.row.updated_at),
        ))
    } else {
        retry_later(
            inner,
            &format!(
                "La DSN n'a pas été déposée : l'authentification à Net-entreprises n'a pas abouti. {}",
                v.message
            ),
        )
    }
}

/// Back to `queued` for another try after the retry delay, nothing having been deposited:
/// `why` (a French sentence saying so) followed by when the next try comes.
fn retry_later(inner: &Inner, why: &str) -> Transition {
    let delay = inner.settings.retry_delay_secs;
    Transition {
        state: Some(State::Queued),
        message: Some(format!(
            "{} Nouvel essai automatique dans {delay} s.",
            why.trim()
        )),
        not_before: Some(sessions::now() + delay as i64),
        ..Default::default()
    }
}

/// A deposit whose turn did not come (withdrawn as the worker stops, or the requests
/// under way took too long): back to `queued`, nothing having left.
async fn give_back(inner: &Inner, id: i64) -> anyhow::Result<()> {
    if inner
        .store
        .unclaim_deposit(id, inner.owner.clone(), sessions::now())
        .await?
    {
        tracing::info!(
            deposit = id,
            "dsn deposit without a turn given back: nothing sent"
        );
    }
    Ok(())
}

/// Sends a claimed deposit and writes the answer. Its file goes to the agent at once and
/// waits there for its turn; the worker's stop withdraws it (if its turn has not come,
/// it goes back to `queued`). The agent's turn is free as soon as its request has ended:
/// the next deposit goes out while this answer comes back and is written (the record
/// says `sending` until then, under this orchestrator's lease, as if it were still going).
async fn send(
    inner: Arc<Inner>,
    rec: DepositRecord,
    outgoing: Outgoing,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let inner: &Inner = &inner;
    let id = rec.id;
    let owner = inner.owner.clone();
    let Outgoing {
        account,
        access,
        file,
    } = outgoing;
    anyhow::ensure!(
        rec.state == State::Sending,
        "deposit {id} not marked sending"
    );
    tracing::info!(deposit = id, siret = %rec.siret, attempt = rec.attempts, bytes = rec.bytes, "dsn deposit sending");
    let (withdraw, withdrawn) = tokio::sync::oneshot::channel();
    let call = inner
        .agents
        .deposit(access, id, file, rec.bytes as u64, turn(inner), withdrawn);
    tokio::pin!(call);
    let report = tokio::select! {
        biased;
        report = &mut call => report,
        () = shutdown.wait() => {
            // Withdrawn if its turn has not come; else its answer is awaited as any.
            let _ = withdraw.send(());
            call.await
        }
    };
    let now = sessions::now();
    let t = match report {
        Err(e) => {
            tracing::warn!(deposit = id, error = %e, "no answer from the deposit agent: deposit uncertain");
            uncertain(now)
        }
        Ok(r) => {
            tracing::info!(deposit = id, http_status = r.http_status, detail = %r.detail, "deposit agent answered");
            match r.outcome {
                SendOutcome::Accepted { idflux, .. } => {
                    tracing::info!(deposit = id, idflux = %idflux, "dsn deposit accepted");
                    Transition {
                        state: Some(State::Accepted),
                        message: Some(format!(
                            "Dépôt enregistré par Net-entreprises (flux {idflux})."
                        )),
                        idflux: Some(idflux),
                        ..Default::default()
                    }
                }
                SendOutcome::Rejected {
                    anomalies,
                    anomalies_omitted,
                    idflux,
                } => {
                    tracing::info!(
                        deposit = id,
                        anomalies = anomalies.len(),
                        anomalies_omitted,
                        "dsn deposit rejected"
                    );
                    rejected(anomalies, anomalies_omitted, idflux)
                }
                SendOutcome::Authentication(v) => record_refusal(inner, &account, &v).await,
                SendOutcome::NotSent => retry_later(inner, &r.message),
                SendOutcome::NoTurn => {
                    tracing::info!(deposit = id, detail = %r.detail, "dsn deposit without a turn");
                    return give_back(inner, id).await;
                }
                SendOutcome::Refused => Transition {
                    state: Some(State::Failed),
                    message: Some(format!("{} Rien n'a été déposé.", r.message.trim())),
                    ..Default::default()
                },
                SendOutcome::Uncertain => uncertain(now),
            }
        }
    };
    // The answer must be written: a busy database is tried again, for a while.
    let mut tries = 0;
    loop {
        match inner
            .store
            .transition_deposit(id, owner.clone(), t.clone(), true, sessions::now())
            .await
        {
            Ok(true) => break,
            Ok(false) => {
                tracing::warn!(
                    deposit = id,
                    "deposit lease lost before its answer was written"
                );
                break;
            }
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::warn!(
                    deposit = id,
                    error = format!("{e:#}"),
                    "answer not written yet"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What an ARE writes on its deposit: `rejected`, its message, its first anomalies and
/// the count of the others.
pub(crate) fn rejected(
    anomalies: Vec<Anomaly>,
    anomalies_omitted: u64,
    idflux: Option<String>,
) -> Transition {
    Transition {
        state: Some(State::Rejected),
        message: Some(rejected_message(&anomalies, anomalies_omitted)),
        idflux,
        anomalies: Some(anomalies),
        anomalies_omitted,
        ..Default::default()
    }
}

/// Most anomalies a rejected deposit's message names (those kept are all in its record,
/// which front-ends list): the message is one sentence for a person, shown in lists and
/// status lines.
const MESSAGE_ANOMALIES: usize = 10;
/// Longest list of anomalies in that message, in characters: anomalies are named whole
/// while they fit (the first always, cut with « … » if it alone is longer).
const MESSAGE_ANOMALIES_CHARS: usize = 1_500;

/// The message of a deposit rejected by Net-entreprises (ARE): its first anomalies (at
/// most [`MESSAGE_ANOMALIES`], within [`MESSAGE_ANOMALIES_CHARS`]), then a sentence counting
/// the others, and saying that only the first ones are kept when the agent left
/// `omitted` out.
fn rejected_message(anomalies: &[Anomaly], omitted: u64) -> String {
    let mut listed = String::new();
    let mut named = 0;
    let mut chars = 0;
    for a in anomalies.iter().take(MESSAGE_ANOMALIES) {
        let item = format!("{} : {}", a.code, a.message);
        let len = item.chars().count();
        if named == 0 {
            if len > MESSAGE_ANOMALIES_CHARS {
                listed.extend(item.chars().take(MESSAGE_ANOMALIES_CHARS - 1));
                listed.push('…');
            } else {
                listed.push_str(&item);
            }
        } else {
            if chars + 3 + len > MESSAGE_ANOMALIES_CHARS {
                break;
            }
            listed.push_str(" ; ");
            listed.push_str(&item);
        }
        chars = listed.chars().count();
        named += 1;
    }
    let mut message = format!("Net-entreprises a rejeté le dépôt (avis de rejet) : {listed}");
    let others = (anomalies.len() - named) as u64 + omitted;
    if others > 0 {
        if named > 0 {
            message.push_str(" ;");
        }
        let s = if others == 1 { "" } else { "s" };
        message.push_str(&format!(
            " … et {} autre{s} anomalie{s}",
            iea_dsn::group_thousands(usize::try_from(others).unwrap_or(usize::MAX))
        ));
        if omitted > 0 {
            message.push_str(&match anomalies.len() {
                0 => String::new(),
                1 => " (seule la première est conservée)".to_owned(),
                kept => format!(
                    " (seules les {} premières sont conservées)",
                    iea_dsn::group_thousands(kept)
                ),
            });
        }
        message.push('.');
    }
    message
}

fn uncertain(now: i64) -> Transition {
    Transition {
        state: Some(State::Uncertain),
        attempt_ended_at: Some(now),
        not_before: Some(0),
        message: Some(
            "La réponse de Net-entreprises à ce dépôt n'a pas été reçue : il sera vérifié sur la liste des dépôts avant tout nouvel envoi."
                .into(),
        ),
        ..Default::default()
    }
}

/// `AAAAMMJJHHMMSS` of `unix` in the listing's zone.
fn listing_time(zone: ListingZone, unix: i64) -> String {
    let at = iea_fr_time::from_unix(unix);
    match zone {
        ListingZone::EuropeParis => iea_fr_time::paris_datetime(at)
            .strftime("%Y%m%d%H%M%S")
            .to_string(),
        ListingZone::Utc => at.strftime("%Y%m%d%H%M%S").to_string(),
    }
}

/// An uncertain deposit: the declarant's deposits over the attempt's window tell
/// whether it was registered.
async fn settle(inner: Arc<Inner>, rec: DepositRecord, facts: AccountFacts) -> anyhow::Result<()> {
    let inner: &Inner = &inner;
    let id = rec.id;
    let owner = inner.owner.clone();
    let s = &inner.settings;
    let account = match account_from(inner.budget, &rec.siret, facts) {
        Ok(a) => a,
        Err((_, why, _)) => {
            let t = Transition {
                state: Some(State::ToCheck),
                message: Some(format!(
                    "La réponse de Net-entreprises à ce dépôt n'a pas été reçue et la liste des dépôts ne peut pas être consultée : {why} Vérifiez sur net-entreprises.fr, puis indiquez le flux (iea dsn resolve {id} --idflux X) ou renvoyez-le (--resend)."
                )),
                ..Default::default()
            };
            inner
                .store
                .transition_deposit(id, owner, t, true, sessions::now())
                .await?;
            return Ok(());
        }
    };
    let started = rec.attempt_started_at.unwrap_or(rec.updated_at);
    // Unknown end (its orchestrator stopped): it may have waited up to `max_attempt_secs`
    // for its turn at the agent, then taken as long.
    let ended = rec
        .attempt_ended_at
        .unwrap_or(started + 2 * s.max_attempt_secs as i64);
    let margin = s.window_margin_secs as i64;
    let from = started - margin;
    let to = (ended + margin).min(from + 3600);
    let now = sessions::now();
    let fin = to.min(now);
    let access = access(inner, &account, &s.consultation_address)?;
    let listed = inner
        .agents
        .list_deposits(
            access,
            listing_time(s.listing_time_zone, from),
            listing_time(s.listing_time_zone, fin),
            at_once(inner),
        )
        .await;
    let t = match listed {
        Err(e) => {
            tracing::warn!(deposit = id, error = %e, "listing failed: deposit stays uncertain");
            later(inner)
        }
        Ok((ListOutcome::Failed, message)) => {
            tracing::warn!(deposit = id, "listing failed: deposit stays uncertain");
            Transition {
                message: Some(format!(
                    "La réponse de Net-entreprises à ce dépôt n'a pas été reçue et la liste des dépôts n'a pas pu être consultée ({}) : nouvel essai automatique dans {} s.",
                    message.trim(),
                    s.retry_delay_secs
                )),
                ..later(inner)
            }
        }
        Ok((ListOutcome::Authentication(v), _)) => {
            let mut t = record_refusal(inner, &account, &v).await;
            if t.state == Some(State::Queued) {
                // Unavailable: not a refusal; the deposit stays uncertain.
                later(inner)
            } else {
                t.state = Some(State::ToCheck);
                t
            }
        }
        Ok((ListOutcome::Listing(all), _)) => {
            let ids: Vec<String> = all.iter().map(|c| c.idflux.clone()).collect();
            let known = inner.store.known_idflux(ids).await?;
            let unknown: Vec<Candidate> = all
                .into_iter()
                .zip(known)
                .filter(|(_, k)| !k)
                .map(|(c, _)| c)
                .collect();
            let others = inner
                .store
                .unsettled_overlapping(id, account.user_id, from, to)
                .await?;
            tracing::info!(
                deposit = id,
                candidates = unknown.len(),
                others,
                "uncertain deposit listed"
            );
            match unknown.len() {
                0 if now >= to => Transition {
                    state: Some(State::Queued),
                    not_before: Some(0),
                    message: Some(
                        "Net-entreprises n'a pas enregistré le dépôt dont la réponse a été perdue : il est envoyé de nouveau."
                            .into(),
                    ),
                    ..Default::default()
                },
                0 => Transition {
                    not_before: Some(to + 1),
                    ..Default::default()
                },
                1 if others == 0 => {
                    let c = unknown.into_iter().next().expect("one candidate");
                    let ko = c.statut.eq_ignore_ascii_case("KO");
                    tracing::info!(deposit = id, idflux = %c.idflux, "uncertain deposit found in the listing");
                    Transition {
                        state: Some(if ko { State::Rejected } else { State::Accepted }),
                        message: Some(if ko {
                            format!("Net-entreprises a rejeté le dépôt (flux {}, retrouvé sur la liste des dépôts) : le détail de l'avis de rejet est dans ses retours.", c.idflux)
                        } else {
                            format!("Dépôt enregistré par Net-entreprises (flux {}, retrouvé sur la liste des dépôts après la perte de la réponse).", c.idflux)
                        }),
                        idflux: Some(c.idflux),
                        ..Default::default()
                    }
                }
                _ => Transition {
                    state: Some(State::ToCheck),
                    message: Some(format!(
                        "La réponse de Net-entreprises à ce dépôt a été perdue et la liste des dépôts montre {} dépôts qui pourraient être celui-ci : indiquez lequel (iea dsn resolve {id} --idflux X) ou renvoyez-le (iea dsn resolve {id} --resend).",
                        unknown.len()
                    )),
                    candidates: Some(unknown),
                    ..Default::default()
                },
            }
        }
    };
    inner
        .store
        .transition_deposit(id, owner, t, true, sessions::now())
        .await?;
    Ok(())
}

/// Stays as it is; looked at again after the retry delay.
fn later(inner: &Inner) -> Transition {
    Transition {
        not_before: Some(sessions::now() + inner.settings.retry_delay_secs as i64),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::deposits::testing::anomalies;

    /// A task that ends after `ms`, counting its end in `ended`.
    fn ends_after(ms: u64, ended: &Arc<AtomicUsize>) -> impl Future<Output = ()> + Send + 'static {
        let ended = ended.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ended.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_stop_waits_for_the_attempts_and_checks_under_way() {
        let ended = Arc::new(AtomicUsize::new(0));
        let mut attempts = Attempts::default();
        attempts.spawn(7, ends_after(300, &ended));
        attempts.spawn(8, ends_after(10, &ended));
        let mut checks = JoinSet::new();
        checks.spawn(ends_after(200, &ended));
        let started = std::time::Instant::now();
        let left = stop(Duration::from_secs(10), attempts, checks).await;
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(ended.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_stop_drops_what_still_runs_at_its_deadline() {
        let ended = Arc::new(AtomicUsize::new(0));
        let mut attempts = Attempts::default();
        attempts.spawn(7, ends_after(10, &ended));
        attempts.spawn(9, ends_after(5_000, &ended));
        attempts.spawn(8, ends_after(5_000, &ended));
        let mut checks = JoinSet::new();
        checks.spawn(ends_after(5_000, &ended));
        let started = std::time::Instant::now();
        let left = stop(Duration::from_millis(200), attempts, checks).await;
        let took = started.elapsed();
        assert_eq!(left, vec![8, 9]);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // Dropped: none of them goes on once the stop returned.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(ended.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn ended_attempts_are_let_go_while_the_worker_runs() {
        let ended = Arc::new(AtomicUsize::new(0));
        let mut attempts = Attempts::default();
        attempts.spawn(1, ends_after(0, &ended));
        attempts.spawn(2, ends_after(5_000, &ended));
        tokio::time::sleep(Duration::from_millis(100)).await;
        attempts.reap();
        assert_eq!(attempts.tasks.len(), 1);
        assert_eq!(
            attempts.deposits.values().copied().collect::<Vec<_>>(),
            vec![2]
        );
        let left = stop(Duration::ZERO, attempts, JoinSet::new()).await;
        assert_eq!(left, vec![2]);
    }

    #[test]
    fn a_rejection_with_few_anomalies_names_them_all() {
        assert_eq!(
            rejected_message(&anomalies(2), 0),
            "Net-entreprises a rejeté le dépôt (avis de rejet) : A0 : anomalie 0 ; A1 : anomalie 1"
        );
        let m = rejected_message(&anomalies(MESSAGE_ANOMALIES), 0);
        assert!(m.ends_with("A9 : anomalie 9"), "{m}");
    }

    #[test]
    fn a_rejection_with_many_anomalies_names_the_first_and_counts_the_others() {
        // All kept: the others are in the record, only counted here.
        let m = rejected_message(&anomalies(12), 0);
        assert!(
            m.ends_with("A9 : anomalie 9 ; … et 2 autres anomalies."),
            "{m}"
        );
        assert!(!m.contains("A10"), "{m}");
        // The agent kept 100 of 5,000.
        let m = rejected_message(&anomalies(100), 4_900);
        assert_eq!(
            m,
            format!(
                "Net-entreprises a rejeté le dépôt (avis de rejet) : {} ; … et 4\u{202f}990 autres \
                 anomalies (seules les 100 premières sont conservées).",
                (0..10)
                    .map(|i| format!("A{i} : anomalie {i}"))
                    .collect::<Vec<_>>()
                    .join(" ; ")
            )
        );
        let m = rejected_message(&anomalies(1), 1);
        assert!(
            m.ends_with(
                "A0 : anomalie 0 ; … et 1 autre anomalie (seule la première est conservée)."
            ),
            "{m}"
        );
    }

    #[test]
    fn a_rejection_message_stays_short_whatever_the_anomalies_say() {
        let long = |code: &str| Anomaly {
            code: code.into(),
            message: "é".repeat(5_000),
        };
        let m = rejected_message(&[long("L0"), long("L1"), long("L2")], 7);
        let listed = m
            .split_once(" : ")
            .map(|(_, rest)| rest.split(" ; … et").next().unwrap())
            .unwrap();
        assert_eq!(listed.chars().count(), MESSAGE_ANOMALIES_CHARS, "{listed}");
        assert!(listed.starts_with("L0 : éé") && listed.ends_with('…'));
        assert!(
            m.ends_with(" ; … et 9 autres anomalies (seules les 3 premières sont conservées)."),
            "{m}"
        );
        // Ten short ones fit; a long one after the first is left to the count.
        let mut some = anomalies(3);
        some.insert(1, long("L"));
        let m = rejected_message(&some, 0);
        assert_eq!(
            m,
            "Net-entreprises a rejeté le dépôt (avis de rejet) : A0 : anomalie 0 ; … et 3 autres anomalies."
        );
        assert!(m.chars().count() < MESSAGE_ANOMALIES_CHARS + 200);
    }
}
