//! "Verify all": every account the caller may see, verified over one `VerifyMany`
//! stream to the credential verifier, each result recorded, then streamed to the caller
//! as it comes.

use std::collections::HashMap;

use tracing::Instrument;

use super::claims::{ClaimResult, Claimed};
use super::{Credentials, CredentialsError, Verification, VerificationResult};
use crate::agents::{AgentError, VerifyAnswer, VerifyItem, VerifyManySettings};
use crate::connection::Target;
use crate::sessions::Principal;
use crate::users::Role;

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

/// Results recorded in one transaction: once this many have come, they are recorded
/// without waiting longer (see `RECORD_GATHER`).
const RECORD_CHUNK: usize = 256;

/// How long the answers that follow a first one are awaited before they are recorded
/// together (unless `RECORD_CHUNK` came first): each transaction costs more than the rows
/// it writes (on a durable PostgreSQL, a WAL flush). Recording what arrived during the
/// previous commit, about 8 answers at a time, the server spent 49 µs of CPU per
/// verification in `cargo bench -p iea-cli --bench verify`; 15 to 18 µs gathering for
/// 10 ms (with the fillfactor of PostgreSQL's schema version 6). A person reading the results
/// does not see 10 ms.
const RECORD_GATHER: std::time::Duration = std::time::Duration::from_millis(10);

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

impl Credentials {
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
        let accounts: Vec<(i64, String)> = self
            .store
            .accounts_with_credentials()
            .await?
            .into_iter()
            .filter(|(id, _)| caller.role == Role::Administrator || *id == caller.user_id)
            .collect();
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
        let settings = VerifyManySettings {
            network: self.network.for_target(Target::NetEntreprises),
            service: self.network.net_entreprises_service(),
            concurrency: VERIFY_ALL_CONCURRENCY as u32,
        };
        let mut answers = match self
            .agents
            .verify_many(
                settings,
                tokio_stream::wrappers::ReceiverStream::new(outgoing),
            )
            .await
        {
            Ok(a) => a,
            Err(e) => {
                fail_all(claims.flat_map(futures::stream::iter), &e, &out).await;
                return;
            }
        };
        let mut requests = Some(requests);
        let mut pending = Pending::default();
        let (to_record, recording) = tokio::sync::mpsc::channel::<Vec<(Claimed, VerificationResult)>>(
            VERIFY_ALL_CONCURRENCY,
        );
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
                                let _ = r.send(items).await;
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
                let until = tokio::time::Instant::now() + RECORD_GATHER;
                while batches.iter().map(Vec::len).sum::<usize>() < RECORD_CHUNK {
                    let more = recording.recv_many(&mut batches, VERIFY_ALL_CONCURRENCY);
                    match tokio::time::timeout_at(until, more).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
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
    ) -> Vec<VerifyItem> {
        let mut items = Vec::with_capacity(chunk.len());
        for claim in chunk {
            let refused = match claim.map(|c| (self.identity(&c.row), c)) {
                Ok((Ok(identity), claimed)) => {
                    let id = pending.insert(claimed);
                    items.push(VerifyItem { id, identity });
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
        batch: Vec<VerifyAnswer>,
        pending: &mut Pending,
        out: &Results,
    ) -> Vec<(Claimed, VerificationResult)> {
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
