//! Each account's Net-entreprises identity (password sealed), its budget of consecutive
//! refusals and its last verification, stored as columns.

use std::time::Duration;

use iea_net::probe::{Step, TlsProblem};

use super::Store;
use super::engine::{Db, Prepared, Row};
use super::secrets::sealed_of;
use super::users::{UserRow, user_of};
use crate::credentials::{FailedStep, Outcome, VerificationResult};
use crate::crypto::Sealed;

/// An identity as stored.
#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub user_id: i64,
    pub user: String,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub sealed: Sealed,
    /// Nanoseconds: two changes within a second must differ, since a verification's
    /// result is recorded only if this did not move meanwhile.
    pub updated_at: i64,
    pub consecutive_failures: u32,
    /// The last verification and when it was made (Unix seconds).
    pub last: Option<(VerificationResult, i64)>,
}

/// An identity to store for an account.
pub struct NewIdentity {
    pub user_id: i64,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub sealed: Sealed,
}

/// A verification's result to record, if the identity is still the one verified.
pub struct VerificationWrite {
    pub user_id: i64,
    /// The identity's `updated_at` when it was read for the verification.
    pub updated_at: i64,
    pub result: VerificationResult,
}

/// The columns a verification needs (identity, seal, budget), as `row_columns!` starts:
/// not the last verification, whose 14 columns a claim would only decode and drop.
macro_rules! identity_columns {
    () => {
        "c.user_id, u.name, c.siret, c.nom, c.prenom, c.password_key_id, c.password_nonce, \
         c.password_ct, c.updated_at, c.consecutive_failures"
    };
}

/// The columns of a [`CredentialRow`], `c` being `credentials` and `u` its user.
macro_rules! row_columns {
    () => {
        concat!(
            identity_columns!(),
            ", c.last_verified_at, c.last_outcome, c.last_message, c.last_http_status, \
             c.last_realm, c.last_token_expires_at, c.last_step, c.last_step_message, \
             c.last_step_detail, c.last_step_address, c.last_step_tls_problem, \
             c.last_step_http_status, c.last_step_latency_ms, c.last_input_problems"
        )
    };
}

/// A row of [`identity_columns`] from column `first`, its last verification not read.
pub(super) fn identity_of(r: &Row<'_>, first: usize) -> anyhow::Result<CredentialRow> {
    let at = |i: usize| first + i;
    Ok(CredentialRow {
        user_id: r.get(at(0))?,
        user: r.get(at(1))?,
        siret: r.get(at(2))?,
        nom: r.get(at(3))?,
        prenom: r.get(at(4))?,
        sealed: sealed_of(r, at(5))?,
        updated_at: r.get(at(8))?,
        consecutive_failures: u32::try_from(r.get::<i64>(at(9))?).unwrap_or(u32::MAX),
        last: None,
    })
}

fn row_of(r: &Row<'_>, first: usize) -> anyhow::Result<CredentialRow> {
    let at = |i: usize| first + i;
    let last = match (
        r.get::<Option<i64>>(at(10))?,
        r.get::<Option<String>>(at(11))?,
    ) {
        (Some(verified_at), Some(code)) => {
            let outcome = Outcome::from_code(&code)
                .ok_or_else(|| anyhow::anyhow!("unknown verification outcome {code} stored"))?;
            let failed_step = match r.get::<Option<String>>(at(16))? {
                Some(step) => Some(FailedStep {
                    step: Step::from_code(&step)
                        .ok_or_else(|| anyhow::anyhow!("unknown step {step} stored"))?,
                    message: r.get::<Option<String>>(at(17))?.unwrap_or_default(),
                    detail: r.get::<Option<String>>(at(18))?.unwrap_or_default(),
                    address: r.get::<Option<String>>(at(19))?.unwrap_or_default(),
                    tls_problem: r
                        .get::<Option<String>>(at(20))?
                        .and_then(|c| TlsProblem::from_code(&c)),
                    http_status: r
                        .get::<Option<i64>>(at(21))?
                        .and_then(|s| u16::try_from(s).ok()),
                    latency: Duration::from_millis(
                        r.get::<Option<i64>>(at(22))?
                            .and_then(|ms| u64::try_from(ms).ok())
                            .unwrap_or(0),
                    ),
                }),
                None => None,
            };
            let identity_problems = match r.get::<Option<String>>(at(23))? {
                Some(json) => serde_json::from_str(&json)?,
                None => Vec::new(),
            };
            Some((
                VerificationResult {
                    outcome,
                    message: r.get::<Option<String>>(at(12))?.unwrap_or_default(),
                    http_status: r
                        .get::<Option<i64>>(at(13))?
                        .and_then(|s| u16::try_from(s).ok()),
                    realm: r.get(at(14))?,
                    token_expires_at: r.get(at(15))?,
                    failed_step,
                    identity_problems,
                },
                verified_at,
            ))
        }
        _ => None,
    };
    Ok(CredentialRow {
        last,
        ..identity_of(r, first)?
    })
}

/// The identity of `$1` for a verification: [`identity_of`], `last` not read.
const IDENTITY_BY_USER: &str = concat!(
    "SELECT ",
    identity_columns!(),
    " FROM credentials c JOIN users u ON u.id = c.user_id WHERE c.user_id = $1"
);

fn by_user(db: &mut Db<'_>, user_id: i64) -> anyhow::Result<Option<CredentialRow>> {
    db.query_opt(
        concat!(
            "SELECT ",
            row_columns!(),
            " FROM credentials c JOIN users u ON u.id = c.user_id WHERE c.user_id = $1"
        ),
        &[&user_id],
        |r| row_of(r, 0),
    )
}

/// Writes a verification's result as the last one of `$1`, if its identity is still the
/// one of `$2` (its `updated_at`): a refusal of the old password must not count against
/// the new one. Parameters as [`write_result_with`] binds them.
const WRITE_RESULT: &str = "UPDATE credentials SET last_verified_at = $3, last_outcome = $4, \
     last_message = $5, last_http_status = $6, last_realm = $7, last_token_expires_at = $8, \
     last_step = $9, last_step_message = $10, last_step_detail = $11, last_input_problems = $12, \
     consecutive_failures = CASE WHEN CAST($13 AS BIGINT) = 1 THEN consecutive_failures + 1 \
     WHEN CAST($14 AS BIGINT) = 1 THEN 0 ELSE consecutive_failures END, \
     last_step_address = $15, last_step_tls_problem = $16, last_step_http_status = $17, \
     last_step_latency_ms = $18 \
     WHERE user_id = $1 AND updated_at = $2";

/// Writes `result` as the last verification of `user_id` (inside a transaction).
fn write_result(
    db: &mut Db<'_>,
    user_id: i64,
    updated_at: i64,
    result: &VerificationResult,
    verified_at: i64,
) -> anyhow::Result<()> {
    write_result_with(
        &mut db.prepare(WRITE_RESULT)?,
        user_id,
        updated_at,
        result,
        verified_at,
    )
}

/// [`write_result`] with [`WRITE_RESULT`] prepared, for a batch.
fn write_result_with(
    stmt: &mut Prepared<'_, '_>,
    user_id: i64,
    updated_at: i64,
    result: &VerificationResult,
    verified_at: i64,
) -> anyhow::Result<()> {
    let problems = (!result.identity_problems.is_empty())
        .then(|| serde_json::to_string(&result.identity_problems))
        .transpose()?;
    let step = result.failed_step.as_ref();
    stmt.execute(&[
        &user_id,
        &updated_at,
        &verified_at,
        &result.outcome.code(),
        &result.message,
        &result.http_status.map(i64::from),
        &result.realm,
        &result.token_expires_at,
        &step.map(|s| s.step.code()),
        &step.map(|s| s.message.as_str()),
        &step.map(|s| s.detail.as_str()),
        &problems,
        &i64::from(result.outcome.is_refusal()),
        &i64::from(result.outcome == Outcome::Valid),
        &step.map(|s| s.address.as_str()),
        &step.and_then(|s| s.tls_problem).map(TlsProblem::code),
        &step.and_then(|s| s.http_status).map(i64::from),
        &step.map(|s| i64::try_from(s.latency.as_millis()).unwrap_or(i64::MAX)),
    ])?;
    Ok(())
}

/// [`write_result`] for many at once, in one statement (PostgreSQL only: arrays): each
/// statement is a round trip to the server, which "verify all" would otherwise pay per
/// account. One statement is atomic on its own, so it runs outside a transaction, which
/// would add two round trips (`BEGIN`, `COMMIT`).
fn write_results_at_once(
    db: &mut Db<'_>,
    writes: &[VerificationWrite],
    verified_at: i64,
) -> anyhow::Result<()> {
    let n = writes.len();
    let (mut user_id, mut updated_at) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut outcome, mut message) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut http_status, mut realm) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut token_expires_at, mut problems) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut refusal, mut valid) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut step, mut step_message, mut step_detail) = (Vec::new(), Vec::new(), Vec::new());
    let (mut step_address, mut step_tls, mut step_http, mut step_latency) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for w in writes {
        let r = &w.result;
        user_id.push(w.user_id);
        updated_at.push(w.updated_at);
        outcome.push(r.outcome.code());
        message.push(r.message.as_str());
        http_status.push(r.http_status.map(i64::from));
        realm.push(r.realm.as_deref());
        token_expires_at.push(r.token_expires_at);
        problems.push(
            (!r.identity_problems.is_empty())
                .then(|| serde_json::to_string(&r.identity_problems))
                .transpose()?,
        );
        refusal.push(r.outcome.is_refusal());
        valid.push(r.outcome == Outcome::Valid);
        let f = r.failed_step.as_ref();
        step.push(f.map(|s| s.step.code()));
        step_message.push(f.map(|s| s.message.as_str()));
        step_detail.push(f.map(|s| s.detail.as_str()));
        step_address.push(f.map(|s| s.address.as_str()));
        step_tls.push(f.and_then(|s| s.tls_problem).map(TlsProblem::code));
        step_http.push(f.and_then(|s| s.http_status).map(i64::from));
        step_latency.push(f.map(|s| i64::try_from(s.latency.as_millis()).unwrap_or(i64::MAX)));
    }
    // As in `write_result`: only where the identity did not change meanwhile.
    db.query_postgres(
        "UPDATE credentials AS c SET last_verified_at = $1, last_outcome = v.outcome, \
         last_message = v.message, last_http_status = v.http_status, last_realm = v.realm, \
         last_token_expires_at = v.token_expires_at, last_step = v.step, \
         last_step_message = v.step_message, last_step_detail = v.step_detail, \
         last_input_problems = v.problems, consecutive_failures = CASE \
         WHEN v.refusal THEN c.consecutive_failures + 1 WHEN v.valid THEN 0 \
         ELSE c.consecutive_failures END, last_step_address = v.step_address, \
         last_step_tls_problem = v.step_tls, last_step_http_status = v.step_http, \
         last_step_latency_ms = v.step_latency \
         FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], \
         $7::text[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], \
         $13::bool[], $14::bool[], $15::text[], $16::text[], $17::bigint[], $18::bigint[]) \
         AS v(user_id, updated_at, outcome, message, http_status, realm, token_expires_at, \
         step, step_message, step_detail, problems, refusal, valid, step_address, step_tls, \
         step_http, step_latency) \
         WHERE c.user_id = v.user_id AND c.updated_at = v.updated_at",
        &[
            &verified_at,
            &user_id,
            &updated_at,
            &outcome,
            &message,
            &http_status,
            &realm,
            &token_expires_at,
            &step,
            &step_message,
            &step_detail,
            &problems,
            &refusal,
            &valid,
            &step_address,
            &step_tls,
            &step_http,
            &step_latency,
        ],
        |_| Ok(()),
    )?;
    Ok(())
}

impl Store {
    /// The identity of `user_id`, if set.
    pub async fn credential(&self, user_id: i64) -> anyhow::Result<Option<CredentialRow>> {
        self.read(move |db| by_user(db, user_id)).await
    }

    /// The identities of `ids`, in their order, in one call, as a verification needs
    /// them: without their last verification (`last` is `None`), which "verify all"
    /// would read and decode for each account only to drop it.
    pub async fn credentials_of(
        &self,
        ids: Vec<i64>,
    ) -> anyhow::Result<Vec<Option<CredentialRow>>> {
        if self.engine == super::Engine::Sqlite {
            // SQLite answers each from memory: one statement per account is cheapest, all
            // under the one lock of a read transaction.
            return self
                .read_together(move |db| {
                    let mut stmt = db.prepare(IDENTITY_BY_USER)?;
                    ids.into_iter()
                        .map(|id| stmt.query_opt(&[&id], |r| identity_of(r, 0)))
                        .collect()
                })
                .await;
        }
        self.read(move |db| {
            // One round trip to the server for the whole chunk. Joined from the ids, each
            // found through the primary key: `WHERE c.user_id = ANY($1)` made the server
            // read a bitmap of the table and hash every user, twice the time per chunk.
            let mut found: std::collections::HashMap<i64, CredentialRow> = db
                .query_postgres(
                    concat!(
                        "SELECT ",
                        identity_columns!(),
                        " FROM unnest($1::bigint[]) AS k(id) \
                         JOIN credentials c ON c.user_id = k.id \
                         JOIN users u ON u.id = c.user_id"
                    ),
                    &[&ids],
                    |r| identity_of(r, 0),
                )?
                .into_iter()
                .map(|r| (r.user_id, r))
                .collect();
            Ok(ids.iter().map(|id| found.remove(id)).collect())
        })
        .await
    }

    /// Every account, by name, with its identity if set.
    pub async fn users_with_credentials(
        &self,
    ) -> anyhow::Result<Vec<(UserRow, Option<CredentialRow>)>> {
        self.read(|db| {
            db.query(
                concat!(
                    "SELECT u.id, u.name, u.role, u.password_hash, u.failed_logins, u.locked_until, ",
                    row_columns!(),
                    " FROM users u LEFT JOIN credentials c ON c.user_id = u.id ORDER BY lower(u.name)"
                ),
                &[],
                |r| {
                    let user = user_of(r, 0)?;
                    let configured = r.get::<Option<i64>>(6)?.is_some();
                    Ok((user, configured.then(|| row_of(r, 6)).transpose()?))
                },
            )
        })
        .await
    }

    /// (id, name) of every account that has an identity, by name.
    pub async fn accounts_with_credentials(&self) -> anyhow::Result<Vec<(i64, String)>> {
        self.read(|db| {
            db.query(
                "SELECT u.id, u.name FROM credentials c JOIN users u ON u.id = c.user_id \
                 ORDER BY lower(u.name)",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    /// Sets each identity, in one transaction. A new identity starts a new budget and
    /// forgets the old verification.
    pub async fn set_credentials(
        &self,
        identities: Vec<NewIdentity>,
        updated_at: i64,
    ) -> anyhow::Result<()> {
        self.write(move |db| {
            for i in &identities {
                db.execute(
                    "INSERT INTO credentials (user_id, siret, nom, prenom, password_key_id, \
                     password_nonce, password_ct, updated_at, consecutive_failures) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) \
                     ON CONFLICT (user_id) DO UPDATE SET siret = excluded.siret, nom = excluded.nom, \
                     prenom = excluded.prenom, password_key_id = excluded.password_key_id, \
                     password_nonce = excluded.password_nonce, password_ct = excluded.password_ct, \
                     updated_at = excluded.updated_at, consecutive_failures = 0, \
                     last_verified_at = NULL, last_outcome = NULL, last_message = NULL, \
                     last_http_status = NULL, last_realm = NULL, last_token_expires_at = NULL, \
                     last_step = NULL, last_step_message = NULL, last_step_detail = NULL, \
                     last_step_address = NULL, last_step_tls_problem = NULL, \
                     last_step_http_status = NULL, last_step_latency_ms = NULL, \
                     last_input_problems = NULL",
                    &[
                        &i.user_id,
                        &i.siret,
                        &i.nom,
                        &i.prenom,
                        &i.sealed.key_id,
                        &i.sealed.nonce,
                        &i.sealed.ciphertext,
                        &updated_at,
                    ],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Records verifications all or none: on PostgreSQL in one statement (one round trip
    /// to the server), on SQLite in one transaction of one statement per account.
    pub async fn record_verifications(
        &self,
        writes: Vec<VerificationWrite>,
        verified_at: i64,
    ) -> anyhow::Result<()> {
        if self.engine == super::Engine::Postgres {
            return self
                .read(move |db| write_results_at_once(db, &writes, verified_at))
                .await;
        }
        self.write(move |db| {
            let mut stmt = db.prepare(WRITE_RESULT)?;
            for w in &writes {
                write_result_with(&mut stmt, w.user_id, w.updated_at, &w.result, verified_at)?;
            }
            Ok(())
        })
        .await
    }
}

/// Migration 4 (SQLite): the last verification result was stored as the encoded proto
/// message of the verifier's answer; it becomes columns, and the old column goes.
pub(super) fn convert_encoded_results(db: &mut Db<'_>) -> anyhow::Result<()> {
    use prost::Message;
    let encoded: Vec<(i64, i64, i64, Vec<u8>)> = db.query(
        "SELECT user_id, updated_at, last_verified_at, last_result FROM credentials \
         WHERE last_result IS NOT NULL AND last_verified_at IS NOT NULL",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (user_id, updated_at, verified_at, bytes) in encoded {
        // An unreadable old result is dropped: it only said how the last check went.
        let result = iea_proto::agent::v1::VerifyResponse::decode(bytes.as_slice())
            .ok()
            .map(crate::agents::verification_result);
        let Some(result) = result else {
            tracing::warn!(user_id, "unreadable stored verification result dropped");
            continue;
        };
        // The stored counter already counts this result: write the columns only.
        let failures: i64 = db.query_value(
            "SELECT consecutive_failures FROM credentials WHERE user_id = $1",
            &[&user_id],
        )?;
        write_result(db, user_id, updated_at, &result, verified_at)?;
        db.execute(
            "UPDATE credentials SET consecutive_failures = $2 WHERE user_id = $1",
            &[&user_id, &failures],
        )?;
    }
    db.batch("ALTER TABLE credentials DROP COLUMN last_result")
}

#[cfg(test)]
mod tests {
    use super::super::testing::store;
    use super::*;
    use crate::users::Role;

    /// What "verify all" claims is the stored identity, seal and budget, without the last
    /// verification (which it would only drop); on the engine of the test run.
    #[tokio::test]
    async fn a_claim_reads_the_identity_and_budget_without_the_last_verification() {
        let db = store().await;
        let s = &db.store;
        let alice = s
            .insert_first_user("Alice", Role::Administrator, "h", 1)
            .await
            .unwrap();
        let sealed = Sealed {
            key_id: "k1".into(),
            nonce: vec![1; 24],
            ciphertext: vec![2; 40],
        };
        s.set_credentials(
            vec![NewIdentity {
                user_id: alice,
                siret: "78214563500010".into(),
                nom: "DUPONT".into(),
                prenom: "Marie".into(),
                sealed: sealed.clone(),
            }],
            1_000,
        )
        .await
        .unwrap();
        let refused = VerificationResult {
            outcome: Outcome::InvalidCredentials,
            message: "Identifiants refusés.".into(),
            http_status: Some(401),
            realm: Some("net-entreprises.fr".into()),
            token_expires_at: None,
            failed_step: None,
            identity_problems: Vec::new(),
        };
        s.record_verifications(
            vec![VerificationWrite {
                user_id: alice,
                updated_at: 1_000,
                result: refused.clone(),
            }],
            50,
        )
        .await
        .unwrap();

        let full = s.credential(alice).await.unwrap().unwrap();
        assert_eq!(full.last, Some((refused, 50)));
        let rows = s.credentials_of(vec![alice, 999]).await.unwrap();
        let [Some(claimed), None] = &rows[..] else {
            panic!("one row for Alice, none for an unknown id: {rows:?}");
        };
        assert_eq!(
            (
                claimed.user_id,
                claimed.user.as_str(),
                claimed.siret.as_str(),
                claimed.nom.as_str(),
                claimed.prenom.as_str(),
                &claimed.sealed,
                claimed.updated_at,
                claimed.consecutive_failures,
            ),
            (
                alice,
                "Alice",
                "78214563500010",
                "DUPONT",
                "Marie",
                &sealed,
                1_000,
                1
            )
        );
        assert_eq!(claimed.last, None);
    }
}
