//! The claim on an account for one verification (one at a time per account), the
//! budget of consecutive refusals judged under that claim, and the recording of each
//! result, after which the claim is released.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use iea_declarant::Identity;
use secrecy::SecretString;

use super::{Credentials, CredentialsError, Verification, VerificationResult};
use crate::connection::Target;
use crate::sessions;
use crate::store::{CredentialRow, VerificationWrite};

/// An account taken for verification, with its row as read under that claim.
pub(super) struct Claimed {
    _guard: InProgressGuard,
    pub(super) row: CredentialRow,
}

/// What taking an account gives: the claim, or (account, why it was refused).
pub(super) type ClaimResult = Result<Claimed, (String, CredentialsError)>;

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

impl Credentials {
    /// Takes each account for verification (one at a time per account) and reads its row
    /// under that claim, all in one database call; an account whose budget is spent is
    /// refused here, before anything is sent.
    pub(super) async fn claim(&self, accounts: Vec<(i64, String)>) -> Vec<ClaimResult> {
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
        match self.store.credentials_of(ids).await {
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
    pub(super) async fn ask_verifier(
        &self,
        claimed: &Claimed,
    ) -> Result<VerificationResult, CredentialsError> {
        let identity = self.identity(&claimed.row)?;
        Ok(self
            .agents
            .verify(
                self.network.for_target(Target::NetEntreprises),
                self.network.net_entreprises_service(),
                &identity,
            )
            .await?)
    }

    /// The identity as the verifier receives it, its password opened from the seal.
    pub(super) fn identity(&self, r: &CredentialRow) -> Result<Identity, CredentialsError> {
        let password: SecretString = self.open(r.user_id, &r.sealed)?;
        Ok(Identity {
            siret: r.siret.clone(),
            nom: r.nom.clone(),
            prenom: r.prenom.clone(),
            password,
        })
    }

    /// Records answers in one transaction; each claim is released once its answer is
    /// written, so that the next verification of that account sees the new count.
    pub(super) async fn record(
        &self,
        answered: Vec<(Claimed, VerificationResult)>,
    ) -> Vec<(String, Result<Verification, CredentialsError>)> {
        if answered.is_empty() {
            return Vec::new();
        }
        let verified_at = sessions::now();
        let writes = answered
            .iter()
            .map(|(c, result)| VerificationWrite {
                user_id: c.row.user_id,
                updated_at: c.row.updated_at,
                result: result.clone(),
            })
            .collect();
        let written = self.store.record_verifications(writes, verified_at).await;
        answered
            .into_iter()
            .map(|(claimed, result)| {
                let user = claimed.row.user.clone();
                let r = match &written {
                    Ok(()) => {
                        tracing::info!(user = %user, outcome = result.outcome.code(), "net-entreprises identity verified");
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
}
