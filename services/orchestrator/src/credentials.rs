//! Each account's Net-entreprises identity: stored with its password sealed
//! ([`crate::crypto`]), never shown back, verified through the credential verifier.
//!
//! Rules (the first sheet of the seeds, and Net-entreprises' lockout):
//! - changing an account's identity needs that account's Impact emploi password; a user
//!   sees and changes only their own, an administrator may see all and copy one account's
//!   identity to others in one step;
//! - what a person typed is checked before it is stored (spaces, invisible characters,
//!   SIRET key, lengths), each problem named;
//! - a verification is one attempt, never retried; after `budget` consecutive refusals
//!   (wrong password, expired, not registered, locked) no further attempt is made until
//!   the identity changes, so we can never be what locks the declarant's real account;
//! - one verification per account at a time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use iea_declarant::{InputProblem, validate};
use iea_proto::agent::v1::{
    DeclarantIdentity, VerifyManyAnswer, VerifyManyItem, VerifyManyRequest, VerifyOutcome,
    VerifyRequest, VerifyResponse,
};
use prost::Message;
use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use tracing::Instrument;

use crate::agents::{AgentError, Agents};
use crate::connection::Target;
use crate::crypto::Sealed;
use crate::network::Network;
use crate::sessions::{self, Principal};
use crate::store::{self, Role, Store};
use crate::vault::{Vault, credential_aad as aad};

/// Parallel verifications in "verify all".
pub const VERIFY_ALL_CONCURRENCY: usize = 8;

/// Identities handed to the verifier and not answered yet in "verify all": four times
/// what it authenticates at once, so that it starts the next as soon as one ends while
/// answers travel back in batches (see `SEND_BATCH`), without more load on
/// Net-entreprises.
const OUTSTANDING: usize = 4 * VERIFY_ALL_CONCURRENCY;

/// Identities sent to the verifier in one message, once that many answers have made room:
/// the verifier answers in batches too, so that at thousands of verifications a second
/// the messages between the two, each a write and a wake-up on both sides, do not cost
/// more than the verifications themselves.
const SEND_BATCH: usize = VERIFY_ALL_CONCURRENCY;

/// Accounts claimed and read in one database call, ahead of their verification.
const CLAIM_CHUNK: usize = 2 * OUTSTANDING;

/// At most this many results recorded in one transaction.
const RECORD_CHUNK: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("not allowed")]
    PermissionDenied,
    #[error("no such account")]
    NoSuchAccount(String),
    #[error("no credentials")]
    NotConfigured(String),
    #[error("account password wrong")]
    WrongAccountPassword,
    #[error("invalid identity")]
    InvalidInput(Vec<InputProblem>),
    #[error("blocked by budget")]
    BlockedByBudget { user: String, failures: u32 },
    #[error("verification in progress")]
    InProgress(String),
    #[error("agent unavailable")]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// An identity as a person typed it, not yet checked.
pub struct Typed {
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub password: SecretString,
}

/// What may be shown of an account's identity: never the password.
#[derive(Debug, Clone)]
pub struct Summary {
    pub user: String,
    pub configured: bool,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub updated_at: Option<i64>,
    pub consecutive_failures: u32,
    pub last: Option<Verification>,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub user: String,
    pub result: VerifyResponse,
    pub verified_at: i64,
}

/// An outcome that counts against the budget: Net-entreprises refused the login.
pub fn is_refusal(outcome: VerifyOutcome) -> bool {
    matches!(
        outcome,
        VerifyOutcome::InvalidCredentials
            | VerifyOutcome::PasswordExpired
            | VerifyOutcome::NotRegistered
            | VerifyOutcome::AccountLocked
    )
}

struct Row {
    user_id: i64,
    user: String,
    siret: String,
    nom: String,
    prenom: String,
    sealed: Sealed,
    updated_at: i64,
    consecutive_failures: u32,
    last_result: Option<Vec<u8>>,
    last_verified_at: Option<i64>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        user_id: r.get(0)?,
        user: r.get(1)?,
        siret: r.get(2)?,
        nom: r.get(3)?,
        prenom: r.get(4)?,
        sealed: Sealed {
            key_id: r.get(5)?,
            nonce: r.get(6)?,
            ciphertext: r.get(7)?,
        },
        updated_at: r.get(8)?,
        consecutive_failures: r.get(9)?,
        last_result: r.get(10)?,
        last_verified_at: r.get(11)?,
    })
}

const ROW_BY_USER: &str = "SELECT c.user_id, u.name, c.siret, c.nom, c.prenom, c.password_key_id, \
     c.password_nonce, c.password_ct, c.updated_at, c.consecutive_failures, c.last_result, \
     c.last_verified_at FROM credentials c JOIN users u ON u.id = c.user_id WHERE c.user_id = ?1";

fn row_of(conn: &rusqlite::Connection, user_id: i64) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(ROW_BY_USER)?
        .query_row(params![user_id], row)
        .optional()
}

fn summary(user: String, row: Option<Row>) -> Summary {
    match row {
        None => Summary {
            user,
            configured: false,
            siret: String::new(),
            nom: String::new(),
            prenom: String::new(),
            updated_at: None,
            consecutive_failures: 0,
            last: None,
        },
        Some(r) => {
            let last = match (r.last_result, r.last_verified_at) {
                (Some(bytes), Some(at)) => {
                    VerifyResponse::decode(bytes.as_slice())
                        .ok()
                        .map(|result| Verification {
                            user: r.user.clone(),
                            result,
                            verified_at: at,
                        })
                }
                _ => None,
            };
            Summary {
                user: r.user,
                configured: true,
                siret: r.siret,
                nom: r.nom,
                prenom: r.prenom,
                updated_at: Some(r.updated_at / 1_000_000_000),
                consecutive_failures: r.consecutive_failures,
                last,
            }
        }
    }
}

/// An account taken for verification, with its row as read under that claim.
struct Claimed {
    _guard: InProgressGuard,
    row: Row,
}

/// What taking an account gives: the claim, or (account, why it was refused).
type ClaimResult = Result<Claimed, (String, CredentialsError)>;

/// Where "verify all" sends each account's result, in the order they are known.
type Results = tokio::sync::mpsc::Sender<(String, Result<Verification, CredentialsError>)>;

/// The accounts sent to the verifier and not answered yet, under the id their answer
/// will carry.
#[derive(Default)]
struct Pending {
    by_id: HashMap<u64, Claimed>,
    last_id: u64,
}

impl Pending {
    fn insert(&mut self, claimed: Claimed) -> u64 {
        self.last_id += 1;
        self.by_id.insert(self.last_id, claimed);
        self.last_id
    }
}

/// Removes an account from the in-progress set when the verification ends, however.
struct InProgressGuard {
    set: Arc<Mutex<HashSet<i64>>>,
    id: i64,
}

impl Drop for InProgressGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.id);
        }
    }
}

#[derive(Clone)]
pub struct Credentials {
    store: Store,
    vault: Vault,
    agents: Agents,
    network: Arc<Network>,
    budget: u32,
    in_progress: Arc<Mutex<HashSet<i64>>>,
}

impl Credentials {
    pub fn new(
        store: Store,
        vault: Vault,
        agents: Agents,
        network: Arc<Network>,
        budget: u32,
    ) -> Self {
        Self {
            store,
            vault,
            agents,
            network,
            budget,
            in_progress: Arc::default(),
        }
    }

    /// The account `name`, if the caller may act on it.
    async fn target(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<(i64, String), CredentialsError> {
        let own = caller.name.eq_ignore_ascii_case(name);
        if !own && caller.role != Role::Administrator {
            return Err(CredentialsError::PermissionDenied);
        }
        let lookup = name.to_owned();
        let user = self
            .store
            .call(move |conn| Ok(store::user_by_name(conn, &lookup)?))
            .await?;
        let user = user.ok_or_else(|| CredentialsError::NoSuchAccount(name.to_owned()))?;
        Ok((user.id, user.name))
    }

    fn seal(&self, user_id: i64, password: &SecretString) -> Result<Sealed, CredentialsError> {
        Ok(self.vault.seal(password.expose_secret(), &aad(user_id))?)
    }

    fn open(&self, user_id: i64, sealed: &Sealed) -> Result<SecretString, CredentialsError> {
        Ok(self.vault.open(sealed, &aad(user_id))?)
    }

    /// Sets `user`'s identity, confirmed by that account's Impact emploi password.
    pub async fn set(
        &self,
        caller: &Principal,
        user: &str,
        account_password: SecretString,
        typed: Typed,
    ) -> Result<Summary, CredentialsError> {
        let (user_id, name) = self.target(caller, user).await?;
        let identity = validate(&typed.siret, &typed.nom, &typed.prenom, &typed.password)
            .map_err(CredentialsError::InvalidInput)?;
        let hash = self
            .store
            .call(move |conn| {
                Ok(conn.query_row(
                    "SELECT password_hash FROM users WHERE id = ?1",
                    params![user_id],
                    |r| r.get::<_, String>(0),
                )?)
            })
            .await?;
        let ok = crate::hashing::verify(account_password, hash).await?;
        if !ok {
            tracing::warn!(user = %name, "identity change refused: wrong account password");
            return Err(CredentialsError::WrongAccountPassword);
        }
        let sealed = self.seal(user_id, &identity.password)?;
        self.store
            .call(move |conn| {
                upsert(
                    conn,
                    user_id,
                    &identity.siret,
                    &identity.nom,
                    &identity.prenom,
                    &sealed,
                )?;
                Ok(())
            })
            .await?;
        tracing::info!(user = %name, "net-entreprises identity set");
        self.get(caller, &name).await
    }

    pub async fn get(&self, caller: &Principal, user: &str) -> Result<Summary, CredentialsError> {
        let (user_id, name) = self.target(caller, user).await?;
        let r = self
            .store
            .call(move |conn| Ok(row_of(conn, user_id)?))
            .await?;
        Ok(summary(name, r))
    }

    /// Every account for an administrator, one's own for a user.
    pub async fn list(&self, caller: &Principal) -> Result<Vec<Summary>, CredentialsError> {
        let caller = caller.clone();
        let all = self
            .store
            .call(move |conn| {
                let users = store::list_users(conn)?;
                let mut out = Vec::new();
                for u in users {
                    if caller.role == Role::Administrator || u.id == caller.user_id {
                        let r = row_of(conn, u.id)?;
                        out.push(summary(u.name, r));
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(all)
    }

    /// Copies `from`'s identity to each of `to`, in one transaction. Administrator only.
    pub async fn copy(
        &self,
        caller: &Principal,
        from: &str,
        to: &[String],
    ) -> Result<Vec<Summary>, CredentialsError> {
        if caller.role != Role::Administrator {
            return Err(CredentialsError::PermissionDenied);
        }
        let (from_id, from_name) = self.target(caller, from).await?;
        let source = self
            .store
            .call(move |conn| Ok(row_of(conn, from_id)?))
            .await?
            .ok_or(CredentialsError::NotConfigured(from_name))?;
        let password = self.open(from_id, &source.sealed)?;
        let mut targets = Vec::new();
        for name in to {
            let (id, name) = self.target(caller, name).await?;
            if id != from_id {
                targets.push((id, name, self.seal(id, &password)?));
            }
        }
        let names: Vec<String> = targets.iter().map(|t| t.1.clone()).collect();
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                for (id, _, sealed) in &targets {
                    upsert(&tx, *id, &source.siret, &source.nom, &source.prenom, sealed)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        tracing::info!(from = %source.user, to = ?names, "net-entreprises identity copied");
        let mut out = Vec::new();
        for n in names {
            out.push(self.get(caller, &n).await?);
        }
        Ok(out)
    }

    /// One verification of `user`'s identity against Net-entreprises.
    pub async fn verify(
        &self,
        caller: &Principal,
        user: &str,
    ) -> Result<Verification, CredentialsError> {
        let (user_id, name) = self.target(caller, user).await?;
        // In a task of its own: a caller that goes away must not drop an attempt that may
        // have reached Net-entreprises before its answer is recorded.
        let this = self.clone();
        tokio::spawn(
            async move {
                let claimed = this
                    .claim(vec![(user_id, name)])
                    .await
                    .pop()
                    .ok_or_else(|| anyhow::anyhow!("no claim"))?
                    .map_err(|(_, e)| e)?;
                let answer = this.ask_verifier(&claimed).await?;
                let (_, recorded) = this
                    .record(vec![(claimed, answer)])
                    .await
                    .pop()
                    .ok_or_else(|| anyhow::anyhow!("nothing recorded"))?;
                recorded
            }
            .instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| CredentialsError::Internal(anyhow::anyhow!("verification task: {e}")))?
    }

    /// Every configured account the caller may see, `VERIFY_ALL_CONCURRENCY` at a time,
    /// each result as it completes (see `drive_verify_all`, which runs in a task
    /// of its own so that the caller's departure never cuts a verification short).
    pub async fn verify_all(
        &self,
        caller: &Principal,
    ) -> Result<
        impl futures::Stream<Item = (String, Result<Verification, CredentialsError>)> + use<>,
        CredentialsError,
    > {
        let caller = caller.clone();
        let accounts: Vec<(i64, String)> = self
            .store
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT u.id, u.name FROM credentials c JOIN users u ON u.id = c.user_id ORDER BY u.name COLLATE NOCASE",
                )?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows
                    .into_iter()
                    .filter(|(id, _)| caller.role == Role::Administrator || *id == caller.user_id)
                    .collect())
            })
            .await?;
        let (out, results) = tokio::sync::mpsc::channel(VERIFY_ALL_CONCURRENCY * 2);
        let this = self.clone();
        tokio::spawn(
            async move { this.drive_verify_all(accounts, out).await }
                .instrument(tracing::Span::current()),
        );
        Ok(tokio_stream::wrappers::ReceiverStream::new(results))
    }

    /// "Verify all" over one `VerifyMany` stream to the verifier: accounts are claimed
    /// and read `CLAIM_CHUNK` at a time and sent `SEND_BATCH` to a message, the verifier
    /// authenticates `VERIFY_ALL_CONCURRENCY` at a time with the rest of `OUTSTANDING`
    /// queued behind, and the answers that arrive together are recorded in one
    /// transaction before they are passed on.
    /// If the caller goes away, nothing more is sent, but what was sent is still awaited
    /// and recorded: a refusal counts against the budget whoever is listening.
    async fn drive_verify_all(self, accounts: Vec<(i64, String)>, out: Results) {
        use futures::StreamExt;
        let claims = futures::stream::iter(accounts)
            .chunks(CLAIM_CHUNK)
            .then(|chunk| self.claim(chunk))
            .flat_map(futures::stream::iter)
            .ready_chunks(SEND_BATCH);
        tokio::pin!(claims);
        let (requests, outgoing) = tokio::sync::mpsc::channel(VERIFY_ALL_CONCURRENCY);
        let mut answers = match self
            .agents
            .verify_many(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await
        {
            Ok(a) => a,
            Err(e) => {
                fail_all(claims.flat_map(futures::stream::iter), &e, &out).await;
                return;
            }
        };
        let mut network = Some(self.network.for_target(Target::NetEntreprises));
        let service = self.network.net_entreprises_service();
        let mut requests = Some(requests);
        let mut pending = Pending::default();
        let (to_record, recording) =
            tokio::sync::mpsc::channel::<Vec<(Claimed, VerifyResponse)>>(VERIFY_ALL_CONCURRENCY);
        let feed = async {
            let to_record = to_record;
            loop {
                // A caller gone stops the feeding, not the verifications already sent: their
                // answers are still recorded, since a refusal counts against the budget.
                let can_send = requests.is_some()
                    && pending.by_id.len() + SEND_BATCH <= OUTSTANDING
                    && !out.is_closed();
                tokio::select! {
                    // Answers first: recording frees room for the next accounts.
                    biased;
                    (batch, broken) = answers.next_batch(RECORD_CHUNK), if !pending.by_id.is_empty() => {
                        let answered = self.match_answers(batch, &mut pending, &out).await;
                        if !answered.is_empty() && to_record.send(answered).await.is_err() {
                            return;
                        }
                        if let Some(e) = broken {
                            let lost = pending.by_id.drain().map(|(_, claimed)| Ok(claimed));
                            let rest = claims.flat_map(futures::stream::iter);
                            fail_all(futures::stream::iter(lost).chain(rest), &e, &out).await;
                            return;
                        }
                    }
                    chunk = claims.next(), if can_send => match chunk {
                        None => requests = None,
                        Some(chunk) => {
                            let items = self.items_of(chunk, &mut pending, &out).await;
                            // A closed stream shows on the answers' side.
                            if let (false, Some(r)) = (items.is_empty(), &requests) {
                                let request = VerifyManyRequest {
                                    network: network.take(),
                                    service,
                                    concurrency: VERIFY_ALL_CONCURRENCY as u32,
                                    items,
                                };
                                let _ = r.send(request).await;
                            }
                        }
                    },
                    else => break,
                }
            }
        };
        // Recording runs beside the feeding, so that a database write never holds back
        // the next request; a claim is released only once its answer is recorded.
        let record = async {
            let mut recording = recording;
            let mut batches = Vec::new();
            while recording
                .recv_many(&mut batches, VERIFY_ALL_CONCURRENCY)
                .await
                > 0
            {
                let answered: Vec<_> = batches.drain(..).flatten().collect();
                for item in self.record(answered).await {
                    // Recorded already; a caller gone just does not read it.
                    let _ = out.send(item).await;
                }
            }
        };
        tokio::join!(feed, record);
    }

    /// The claimed accounts of `chunk` as items for the verifier, each kept in `pending`
    /// under its id; an account refused at the claim, or whose password cannot be
    /// opened, is reported at once.
    async fn items_of(
        &self,
        chunk: Vec<ClaimResult>,
        pending: &mut Pending,
        out: &Results,
    ) -> Vec<VerifyManyItem> {
        let mut items = Vec::with_capacity(chunk.len());
        for claim in chunk {
            let refused = match claim.map(|c| (self.identity(&c.row), c)) {
                Ok((Ok(identity), claimed)) => {
                    let id = pending.insert(claimed);
                    items.push(VerifyManyItem {
                        id,
                        identity: Some(identity),
                    });
                    continue;
                }
                Ok((Err(e), claimed)) => (claimed.row.user.clone(), Err(e)),
                Err((user, e)) => (user, Err(e)),
            };
            let _ = out.send(refused).await;
        }
        items
    }

    /// The answers of `batch` with the claims they answer, taken out of `pending`; an
    /// answer without a result is reported at once as the verifier's failure.
    async fn match_answers(
        &self,
        batch: Vec<VerifyManyAnswer>,
        pending: &mut Pending,
        out: &Results,
    ) -> Vec<(Claimed, VerifyResponse)> {
        let mut answered = Vec::with_capacity(batch.len());
        for a in batch {
            let Some(claimed) = pending.by_id.remove(&a.id) else {
                tracing::warn!(id = a.id, "answer for no outstanding verification, ignored");
                continue;
            };
            match a.result {
                Some(result) => answered.push((claimed, result)),
                None => {
                    let e = AgentError::Unavailable {
                        agent: self.agents.credentials.name,
                        detail: "an answer without a result".into(),
                    };
                    let _ = out.send((claimed.row.user.clone(), Err(e.into()))).await;
                }
            }
        }
        answered
    }

    /// Takes each account for verification (one at a time per account) and reads its row
    /// under that claim, all in one database call; an account whose budget is spent is
    /// refused here, before anything is sent.
    async fn claim(&self, accounts: Vec<(i64, String)>) -> Vec<ClaimResult> {
        let mut out = Vec::with_capacity(accounts.len());
        let mut taken = Vec::with_capacity(accounts.len());
        {
            let mut set = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
            for (id, name) in accounts {
                if set.insert(id) {
                    let guard = InProgressGuard {
                        set: self.in_progress.clone(),
                        id,
                    };
                    taken.push((guard, name));
                } else {
                    out.push(Err((name.clone(), CredentialsError::InProgress(name))));
                }
            }
        }
        if taken.is_empty() {
            return out;
        }
        let ids: Vec<i64> = taken.iter().map(|(g, _)| g.id).collect();
        let rows = self
            .store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(ROW_BY_USER)?;
                let rows = ids
                    .into_iter()
                    .map(|id| stmt.query_row(params![id], row).optional())
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await;
        match rows {
            Err(e) => out.extend(taken.into_iter().map(|(_, name)| {
                Err((name, CredentialsError::Internal(anyhow::anyhow!("{e:#}"))))
            })),
            Ok(rows) => {
                for ((guard, name), row) in taken.into_iter().zip(rows) {
                    out.push(match row {
                        None => Err((name.clone(), CredentialsError::NotConfigured(name))),
                        Some(r) if r.consecutive_failures >= self.budget => Err((
                            name.clone(),
                            CredentialsError::BlockedByBudget {
                                user: name,
                                failures: r.consecutive_failures,
                            },
                        )),
                        Some(row) => Ok(Claimed { _guard: guard, row }),
                    });
                }
            }
        }
        out
    }

    /// One authentication through the credential verifier.
    async fn ask_verifier(&self, claimed: &Claimed) -> Result<VerifyResponse, CredentialsError> {
        let request = VerifyRequest {
            network: Some(self.network.for_target(Target::NetEntreprises)),
            identity: Some(self.identity(&claimed.row)?),
            service: self.network.net_entreprises_service(),
        };
        Ok(self.agents.verify(request).await?)
    }

    /// The identity as the verifier receives it, its password opened from the seal.
    fn identity(&self, r: &Row) -> Result<DeclarantIdentity, CredentialsError> {
        let password = self.open(r.user_id, &r.sealed)?;
        Ok(DeclarantIdentity {
            siret: r.siret.clone(),
            nom: r.nom.clone(),
            prenom: r.prenom.clone(),
            password: password.expose_secret().to_owned(),
        })
    }

    /// Records answers in one transaction; each claim is released once its answer is
    /// written, so that the next verification of that account sees the new count.
    async fn record(
        &self,
        answered: Vec<(Claimed, VerifyResponse)>,
    ) -> Vec<(String, Result<Verification, CredentialsError>)> {
        if answered.is_empty() {
            return Vec::new();
        }
        let verified_at = sessions::now();
        let writes: Vec<_> = answered
            .iter()
            .map(|(c, result)| {
                let outcome =
                    VerifyOutcome::try_from(result.outcome).unwrap_or(VerifyOutcome::Unspecified);
                (
                    c.row.user_id,
                    result.encode_to_vec(),
                    is_refusal(outcome),
                    outcome == VerifyOutcome::Valid,
                    c.row.updated_at,
                )
            })
            .collect();
        let written = self
            .store
            .call(move |conn| {
                let tx = conn.transaction()?;
                {
                    // Recorded only if the identity did not change meanwhile: a refusal
                    // of the old password must not count against the new one.
                    let mut stmt = tx.prepare_cached(
                        "UPDATE credentials SET last_result = ?2, last_verified_at = ?3, \
                         consecutive_failures = CASE WHEN ?4 THEN consecutive_failures + 1 WHEN ?5 THEN 0 ELSE consecutive_failures END \
                         WHERE user_id = ?1 AND updated_at = ?6",
                    )?;
                    for (user_id, bytes, refusal, valid, updated_at) in writes {
                        stmt.execute(params![user_id, bytes, verified_at, refusal, valid, updated_at])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await;
        answered
            .into_iter()
            .map(|(claimed, result)| {
                let user = claimed.row.user.clone();
                let r = match &written {
                    Ok(()) => {
                        let outcome = VerifyOutcome::try_from(result.outcome)
                            .unwrap_or(VerifyOutcome::Unspecified);
                        tracing::info!(user = %user, outcome = outcome.as_str_name(), "net-entreprises identity verified");
                        Ok(Verification {
                            user: user.clone(),
                            result,
                            verified_at,
                        })
                    }
                    Err(e) => Err(CredentialsError::Internal(anyhow::anyhow!("{e:#}"))),
                };
                (user, r)
            })
            .collect()
    }

    /// Replaces the encryption key and re-seals every stored secret. Administrator only.
    pub async fn rotate_key(&self, caller: &Principal) -> Result<usize, CredentialsError> {
        if caller.role != Role::Administrator {
            return Err(CredentialsError::PermissionDenied);
        }
        Ok(self.vault.rotate().await?)
    }
}

/// Reports `error` for every account still to be verified (their claims are taken and
/// released on the way, so that the refusals of the claim itself are reported as usual).
async fn fail_all(
    claims: impl futures::Stream<Item = ClaimResult>,
    error: &AgentError,
    out: &Results,
) {
    use futures::StreamExt;
    tokio::pin!(claims);
    while let Some(claim) = claims.next().await {
        let item = match claim {
            Ok(claimed) => (claimed.row.user.clone(), Err(error.clone().into())),
            Err(refused) => (refused.0, Err(refused.1)),
        };
        if out.send(item).await.is_err() {
            return;
        }
    }
}

fn upsert(
    conn: &rusqlite::Connection,
    user_id: i64,
    siret: &str,
    nom: &str,
    prenom: &str,
    sealed: &Sealed,
) -> rusqlite::Result<()> {
    // A new identity starts a new budget and forgets the old verification.
    conn.execute(
        "INSERT INTO credentials (user_id, siret, nom, prenom, password_key_id, password_nonce, password_ct, updated_at,          consecutive_failures, last_result, last_verified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, NULL, NULL)          ON CONFLICT(user_id) DO UPDATE SET siret = excluded.siret, nom = excluded.nom, prenom = excluded.prenom,          password_key_id = excluded.password_key_id, password_nonce = excluded.password_nonce,          password_ct = excluded.password_ct, updated_at = excluded.updated_at, consecutive_failures = 0,          last_result = NULL, last_verified_at = NULL",
        params![user_id, siret, nom, prenom, sealed.key_id, sealed.nonce, sealed.ciphertext, now_nanos()],
    )?;
    Ok(())
}

/// `updated_at` in nanoseconds: two changes within one second must differ, since a
/// verification's result is recorded only if `updated_at` did not move.
fn now_nanos() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}
