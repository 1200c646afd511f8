//! DSN deposits as durable records, the lease that lets one orchestrator at a time work on
//! a deposit, and which account deposits for each establishment (SIRET).
//!
//! A lease is two columns (`lease_owner`, `lease_until`) taken with a conditional
//! `UPDATE`: on one PostgreSQL database shared by several orchestrators, only one of them
//! gets a row whose lease is free or expired, so a deposit is never worked on twice at
//! once. The `sending` state and the attempt's start are committed before a request
//! leaves; whatever happens next, the record says an attempt may have reached
//! Net-entreprises.
//!
//! The deposit's own steps each take one call (one blocking task, one transaction):
//! recording a checked file with its routing ([`Store::record_deposit`]), claiming due
//! deposits with what decides their account ([`Store::claim_deposits`]), committing
//! `sending` ([`Store::start_deposit_attempt`]) and writing the answer while the lease is
//! held, releasing it in the same statement ([`Store::transition_deposit`]).
//!
//! The record and the claim (`sending`) are on disk before their call returns, even
//! against a power cut (`Store::write_durably`; on SQLite, whose other commits are synced
//! at checkpoints only, the log is synced at theirs), as is a person's decision: a
//! `sending` lost with the power would leave the deposit `queued` once the machine is
//! back, and it would be sent twice; a record lost would be a deposit its sender was
//! told about gone. The answer's commit needs no sync of its own: lost, the deposit is
//! `sending` again, so `uncertain`, and settled by listing.

use std::collections::HashMap;

use super::Store;
use super::credentials::{CredentialRow, identity_of};
use super::engine::{Db, Row};
use crate::deposits::{Anomaly, Candidate, DepositRecord, NewDeposit, State, WaitKind};

/// A deposit's columns in the order [`record_of`] reads them, in a statement on the
/// `deposits` table (not aliased): the list of a `SELECT`, or the `RETURNING` of the
/// `INSERT` or `UPDATE` that writes it, so that a write gives the record as written without
/// a second round trip to read it. The account's name comes from a subquery, not a join,
/// which a `RETURNING` cannot have.
macro_rules! record_columns {
    () => {
        "id, created_at, updated_at, state, requested_by, user_id, \
         (SELECT u.name FROM users u WHERE u.id = deposits.user_id), siret, month, nature, \
         kind, fraction, essai_reel, file_name, file_path, sha256, bytes, message, idflux, \
         anomalies, candidates, attempts, attempt_started_at, attempt_ended_at, not_before, \
         wait_kind, wait_credential_at, lease_owner, lease_until, source_path, \
         anomalies_omitted"
    };
}

macro_rules! select {
    ($rest:literal) => {
        concat!("SELECT ", record_columns!(), " FROM deposits ", $rest)
    };
}

fn record_of(r: &Row<'_>) -> anyhow::Result<DepositRecord> {
    let state: String = r.get(3)?;
    let anomalies: Option<String> = r.get(19)?;
    let candidates: Option<String> = r.get(20)?;
    let wait_kind: Option<String> = r.get(25)?;
    Ok(DepositRecord {
        id: r.get(0)?,
        created_at: r.get(1)?,
        updated_at: r.get(2)?,
        state: State::from_code(&state)
            .ok_or_else(|| anyhow::anyhow!("unknown deposit state {state} stored"))?,
        requested_by: r.get(4)?,
        user_id: r.get(5)?,
        account: r.get(6)?,
        siret: r.get(7)?,
        month: r.get(8)?,
        nature: r.get(9)?,
        kind: r.get(10)?,
        fraction: r.get(11)?,
        essai_reel: r.get(12)?,
        file_name: r.get(13)?,
        file_path: r.get(14)?,
        sha256: r.get(15)?,
        bytes: r.get(16)?,
        message: r.get::<Option<String>>(17)?.unwrap_or_default(),
        idflux: r.get(18)?,
        anomalies: match anomalies {
            Some(j) => serde_json::from_str::<Vec<Anomaly>>(&j)?,
            None => Vec::new(),
        },
        candidates: match candidates {
            Some(j) => serde_json::from_str::<Vec<Candidate>>(&j)?,
            None => Vec::new(),
        },
        attempts: r.get(21)?,
        attempt_started_at: r.get(22)?,
        attempt_ended_at: r.get(23)?,
        not_before: r.get(24)?,
        wait_kind: wait_kind.as_deref().and_then(WaitKind::from_code),
        wait_credential_at: r.get(26)?,
        lease_owner: r.get(27)?,
        lease_until: r.get(28)?,
        source_path: r.get(29)?,
        anomalies_omitted: u64::try_from(r.get::<i64>(30)?).unwrap_or(0),
    })
}

fn by_id(db: &mut Db<'_>, id: i64) -> anyhow::Result<Option<DepositRecord>> {
    db.query_opt(select!("WHERE id = $1"), &[&id], record_of)
}

/// What decides which account a deposit goes out with, read with the deposit.
#[derive(Debug, Clone)]
pub struct AccountFacts {
    /// The account: the deposit's own, else the one designated for its SIRET, else the one
    /// account with credentials; `None` when there is none or several.
    pub chosen: Option<(i64, String)>,
    /// Accounts with credentials, counted up to 2, when neither the deposit nor its SIRET
    /// names one.
    pub with_credentials: usize,
    /// The chosen account's identity (its last verification not read).
    pub credential: Option<CredentialRow>,
}

/// The identity whose columns (`identity_columns!`) begin at column `first`; `None` when
/// they are null (an account without credentials, from a left join).
fn identity_at(r: &Row<'_>, first: usize) -> anyhow::Result<Option<CredentialRow>> {
    match r.get::<Option<i64>>(first)? {
        Some(_) => identity_of(r, first).map(Some),
        None => Ok(None),
    }
}

/// What decides a deposit's account, as rows (`x.source`: 0 the account designated or
/// the deposit's own, 1 an account with credentials; `x.user_id`; the account's name;
/// its identity, if any) after the joins of `facts_joins!`, which start from one row (`o`).
macro_rules! facts_columns {
    () => {
        concat!("x.source, x.user_id, u.name, ", identity_columns!())
    };
}

/// The joins that give [`facts_columns`]: for a deposit whose own account is set
/// (`by_user`, `$p` its id), that account; otherwise (`$p` the SIRET) the account
/// designated for the SIRET, then the first two accounts with credentials by name. A left
/// join each, so that the row they start from stays when there is none; `ORDER BY` after
/// them puts the designated account first.
macro_rules! facts_joins {
    (by_user, $p:literal) => {
        concat!(
            " LEFT JOIN (SELECT CAST(0 AS BIGINT) AS source, CAST(",
            $p,
            " AS BIGINT) AS user_id) x ON true",
            facts_joins!(accounts)
        )
    };
    (by_siret, $p:literal) => {
        concat!(
            " LEFT JOIN (SELECT CAST(0 AS BIGINT) AS source, user_id FROM deposit_accounts \
             WHERE siret = ",
            $p,
            " UNION ALL SELECT CAST(1 AS BIGINT) AS source, user_id FROM \
             (SELECT c.user_id FROM credentials c JOIN users u ON u.id = c.user_id \
             ORDER BY lower(u.name) LIMIT 2) two) x ON true",
            facts_joins!(accounts)
        )
    };
    (accounts) => {
        " LEFT JOIN users u ON u.id = x.user_id LEFT JOIN credentials c ON c.user_id = x.user_id \
         ORDER BY x.source, lower(u.name)"
    };
}

/// One row of [`facts_columns`], from column `first`.
type FactsRow = (
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<CredentialRow>,
);

fn facts_row_at(r: &Row<'_>, first: usize) -> anyhow::Result<FactsRow> {
    Ok((
        r.get(first)?,
        r.get(first + 1)?,
        r.get(first + 2)?,
        identity_at(r, first + 3)?,
    ))
}

/// The account facts of the rows of [`facts_columns`], for a deposit whose own account
/// is `user_id`, if set.
fn facts_of_rows(rows: Vec<FactsRow>, user_id: Option<i64>) -> AccountFacts {
    if let Some(id) = user_id {
        // The account's name, with its identity if it has one.
        let (name, credential) = rows
            .into_iter()
            .next()
            .map(|(_, _, name, credential)| (name.unwrap_or_default(), credential))
            .unwrap_or_default();
        return AccountFacts {
            chosen: Some((id, name)),
            with_credentials: 0,
            credential,
        };
    }
    let mut candidates: Vec<(i64, (i64, String), Option<CredentialRow>)> = rows
        .into_iter()
        .filter_map(|(source, user_id, name, credential)| {
            Some((source?, (user_id?, name?), credential))
        })
        .collect();
    // The designated account, else the one account with credentials, if only one.
    let designated = candidates.first().is_some_and(|c| c.0 == 0);
    let with_credentials = if designated { 0 } else { candidates.len() };
    let (chosen, credential) = if designated || with_credentials == 1 {
        let (_, chosen, credential) = candidates.swap_remove(0);
        (Some(chosen), credential)
    } else {
        (None, None)
    };
    AccountFacts {
        chosen,
        with_credentials,
        credential,
    }
}

/// What decides the account of a deposit of `siret` whose own account is `user_id`, if
/// set (one query).
fn account_facts(
    db: &mut Db<'_>,
    siret: &str,
    user_id: Option<i64>,
) -> anyhow::Result<AccountFacts> {
    macro_rules! facts {
        ($by:ident) => {
            concat!(
                "SELECT ",
                facts_columns!(),
                " FROM (SELECT 1 AS one) o",
                facts_joins!($by, "$1")
            )
        };
    }
    let rows = match user_id {
        Some(id) => db.query(facts!(by_user), &[&id], |r| facts_row_at(r, 0))?,
        None => db.query(facts!(by_siret), &[&siret], |r| facts_row_at(r, 0))?,
    };
    Ok(facts_of_rows(rows, user_id))
}

/// What stops a new deposit from being recorded.
#[derive(Debug)]
pub enum Duplicate {
    /// The same bytes are already deposited or on their way (that deposit's id).
    SameFile(i64),
    /// A normal declaration of the same SIRET, month and fraction is (that deposit's id).
    SameDeclaration(i64),
}

/// What the worker makes of a deposit it claims ([`Store::claim_deposits_with`]).
pub enum Claim<T> {
    /// Mark it `sending` now, with this account (user id), in the claim's transaction.
    Start(i64, T),
    /// Leave it as claimed.
    Keep(T),
}

/// A change of a deposit's state, written only while the writer holds its lease.
#[derive(Default, Clone)]
pub struct Transition {
    pub state: Option<State>,
    pub message: Option<String>,
    pub idflux: Option<String>,
    pub anomalies: Option<Vec<Anomaly>>,
    /// With `anomalies`: how many more the ARE listed. Written with `anomalies` only, so
    /// that the count always goes with the list it completes.
    pub anomalies_omitted: u64,
    pub candidates: Option<Vec<Candidate>>,
    pub not_before: Option<i64>,
    pub attempt_ended_at: Option<i64>,
    pub user_id: Option<i64>,
    pub wait: Option<(WaitKind, Option<i64>)>,
}

impl Store {
    /// Records a new deposit, unless the same file or the same normal declaration is
    /// already deposited or on its way.
    pub async fn insert_deposit(
        &self,
        new: NewDeposit,
        now: i64,
    ) -> anyhow::Result<Result<DepositRecord, Duplicate>> {
        self.write_durably(move |db| insert(db, &new, now)).await
    }

    /// Records a new deposit as [`Self::insert_deposit`] does, with what `route` decides
    /// from its SIRET and the account facts (queued with its account, or waiting and why)
    /// written by the `INSERT` itself; the record as written.
    pub async fn record_deposit<F>(
        &self,
        new: NewDeposit,
        now: i64,
        route: F,
    ) -> anyhow::Result<Result<DepositRecord, Duplicate>>
    where
        F: FnOnce(&str, AccountFacts) -> Transition + Send + 'static,
    {
        self.write_durably(move |db| {
            let facts = match duplicate_or_facts(db, &new)? {
                Ok(facts) => facts,
                Err(dup) => return Ok(Err(dup)),
            };
            let routing = route(&new.siret, facts);
            insert_unchecked(db, &new, &routing, now).map(Ok)
        })
        .await
    }

    /// What decides the account of `rec` now, in one call.
    pub async fn deposit_account_facts(&self, rec: DepositRecord) -> anyhow::Result<AccountFacts> {
        self.read(move |db| account_facts(db, &rec.siret, rec.user_id))
            .await
    }

    pub async fn deposit(&self, id: i64) -> anyhow::Result<Option<DepositRecord>> {
        self.read(move |db| by_id(db, id)).await
    }

    /// The deposits `filter` keeps (its SIRET, month and state, each when given), newest
    /// first, at most `limit` (`filter.limit` is the caller's to apply); `for_user`: only
    /// those requested by that account or made with its identity.
    pub async fn deposits(
        &self,
        for_user: Option<(i64, String)>,
        filter: crate::deposits::ListFilter,
        limit: i64,
    ) -> anyhow::Result<Vec<DepositRecord>> {
        // An empty text filters nothing: one statement whatever is asked.
        let siret = filter.siret.unwrap_or_default();
        let month = filter.month.map(|m| m.to_string()).unwrap_or_default();
        let state = filter.state.map(|s| s.code()).unwrap_or_default();
        // No page asked: every number is below the largest.
        let before = filter.before.unwrap_or(i64::MAX);
        self.read(move |db| match for_user {
            None => db.query(
                select!(
                    "WHERE ($1 = '' OR siret = $1) AND ($2 = '' OR month = $2) \
                     AND ($3 = '' OR state = $3) AND id < $4 \
                     ORDER BY id DESC LIMIT $5"
                ),
                &[&siret, &month, &state, &before, &limit],
                record_of,
            ),
            Some((user_id, name)) => db.query(
                select!(
                    "WHERE ($1 = '' OR siret = $1) AND ($2 = '' OR month = $2) \
                     AND ($3 = '' OR state = $3) AND id < $4 \
                     AND (user_id = $5 OR lower(requested_by) = lower($6)) \
                     ORDER BY id DESC LIMIT $7"
                ),
                &[&siret, &month, &state, &before, &user_id, &name, &limit],
                record_of,
            ),
        })
        .await
    }

    /// Ids of deposits in `states` whose lease is free or expired and whose time has come.
    pub async fn deposits_due(
        &self,
        states: &'static [State],
        now: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<i64>> {
        self.read(move |db| {
            let mut out = Vec::new();
            for &state in states {
                out.extend(db.query(due_sql(state)?, &[&now, &limit], |r| r.get::<i64>(0))?);
            }
            out.sort_unstable();
            Ok(out)
        })
        .await
    }

    /// Takes the lease of deposit `id` for `owner` until `until`, if it is in `state` and
    /// its lease is free or expired; the record as taken.
    pub async fn lease_deposit(
        &self,
        id: i64,
        state: State,
        owner: String,
        now: i64,
        until: i64,
    ) -> anyhow::Result<Option<DepositRecord>> {
        self.write(move |db| {
            db.query_opt(
                concat!(
                    "UPDATE deposits SET lease_owner = $2, lease_until = $3 WHERE id = $1 \
                     AND state = $4 AND (lease_until IS NULL OR lease_until < $5) RETURNING ",
                    record_columns!()
                ),
                &[&id, &owner, &until, &state.code(), &now],
                record_of,
            )
        })
        .await
    }

    /// Extends a lease still held by `owner`; false if it was lost.
    pub async fn renew_deposit_lease(
        &self,
        id: i64,
        owner: String,
        until: i64,
    ) -> anyhow::Result<bool> {
        self.read(move |db| {
            Ok(db.execute(
                "UPDATE deposits SET lease_until = $3 WHERE id = $1 AND lease_owner = $2",
                &[&id, &owner, &until],
            )? == 1)
        })
        .await
    }

    /// Marks the deposit `sending` with the attempt's start, committed before anything
    /// leaves; false if `owner` no longer holds it queued.
    pub async fn start_deposit_attempt(
        &self,
        id: i64,
        owner: String,
        user_id: i64,
        now: i64,
    ) -> anyhow::Result<bool> {
        self.write_durably(move |db| Ok(start_attempt(db, id, &owner, user_id, now)?.is_some()))
            .await
    }

    /// Writes `t` on deposit `id` if `owner` holds its lease (`release`: and frees it), in
    /// one statement. Not synced at its commit (the attempt's answer): lost with the
    /// power, the deposit is `sending` again at the next start, so `uncertain`, and the
    /// listing settles it; nothing is sent again blindly.
    pub async fn transition_deposit(
        &self,
        id: i64,
        owner: String,
        t: Transition,
        release: bool,
        now: i64,
    ) -> anyhow::Result<bool> {
        self.read(move |db| Ok(apply_held(db, id, &owner, &t, release, now)? == 1))
            .await
    }

    /// Takes the lease (for `owner`, until `until`) of at most `limit` deposits that are
    /// due (their time come, their lease free or expired): `uncertain` ones first, then
    /// `queued` ones, each oldest first; in one transaction, each as taken with what
    /// decides its account. Each deposit is claimed by one statement ([`CLAIM_DUE`]), whose
    /// search starts at the first due row of each state's index, whatever the length of
    /// the queue. On one database shared by several
    /// orchestrators a deposit is taken by one of them only: the conditional `UPDATE` is
    /// judged again on the row as another one left it.
    pub async fn claim_deposits(
        &self,
        owner: String,
        now: i64,
        until: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(DepositRecord, AccountFacts)>> {
        self.claim_deposits_with(owner, now, until, limit, |_, facts| Claim::Keep(facts))
            .await
    }

    /// [`Self::claim_deposits`], each claimed deposit handed to `prepare` in the same call
    /// (on the blocking pool: it may read files); when `prepare` says
    /// [`Claim::Start`], the deposit (queued) is marked `sending` with the attempt's start
    /// (`now`) and that account, as [`Self::start_deposit_attempt`] does, in the same
    /// transaction: committed before this returns, so before anything can be sent. Each
    /// deposit as it is after the call, with what `prepare` gave.
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
        self.write_durably(move |db| {
            let taken = claim_due(db, &owner, until, now, limit)?;
            // Deposits claimed together often share their account: its facts are read
            // once.
            let mut facts_of: HashMap<(Option<i64>, String), AccountFacts> = HashMap::new();
            let mut claims = Vec::with_capacity(taken.len());
            for rec in taken {
                let key = match rec.user_id {
                    Some(id) => (Some(id), String::new()),
                    None => (None, rec.siret.clone()),
                };
                let facts = match facts_of.get(&key) {
                    Some(facts) => facts.clone(),
                    None => {
                        let facts = account_facts(db, &rec.siret, rec.user_id)?;
                        facts_of.insert(key, facts.clone());
                        facts
                    }
                };
                let claim = prepare(&rec, facts);
                claims.push((rec, claim));
            }
            start_attempts(db, claims, &owner, now)
        })
        .await
    }

    /// A claimed deposit (`sending`) that never went out, because its turn did not come
    /// at the deposit agent (withdrawn as the worker stops, or waited too long): `queued`
    /// again as before its claim, its attempt not counted and its lease freed, if `owner`
    /// still holds it `sending`; whether it did.
    pub async fn unclaim_deposit(&self, id: i64, owner: String, now: i64) -> anyhow::Result<bool> {
        self.write(move |db| {
            Ok(db.execute(
                "UPDATE deposits SET state = 'queued', attempts = attempts - 1, \
                 attempt_started_at = NULL, attempt_ended_at = NULL, not_before = 0, \
                 lease_owner = NULL, lease_until = NULL, updated_at = $3, \
                 message = 'En file d''attente : le dépôt partira dès qu''une place d''envoi se libère.' \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'sending'",
                &[&id, &owner, &now],
            )? == 1)
        })
        .await
    }

    /// A person's decision (or a waiting deposit set going again): writes `t` if the
    /// deposit is in one of `from` and nobody holds its lease; the record, and whether
    /// `t` was written.
    pub async fn decide_deposit(
        &self,
        id: i64,
        from: &'static [State],
        t: Transition,
        now: i64,
    ) -> anyhow::Result<Option<(DepositRecord, bool)>> {
        self.write_durably(move |db| {
            // A claim at the same moment waits for this decision, then finds it written.
            db.lock_rows("SELECT id FROM deposits WHERE id = $1 FOR UPDATE", &[&id])?;
            let Some(rec) = by_id(db, id)? else {
                return Ok(None);
            };
            let leased = rec.lease_until.is_some_and(|u| u >= now);
            if !from.contains(&rec.state) || leased {
                return Ok(Some((rec, false)));
            }
            Ok(apply(db, id, &t, now)?.map(|r| (r, true)))
        })
        .await
    }

    /// The deposit of a file of the deposit folder, by where it was taken to.
    pub async fn deposit_by_source(&self, source: String) -> anyhow::Result<Option<i64>> {
        self.read(move |db| db.query_opt(BY_SOURCE, &[&source], |r| r.get(0)))
            .await
    }

    /// Deposits whose file still waits in the deposit folder's `en-cours/`.
    pub async fn deposits_with_source(&self) -> anyhow::Result<Vec<DepositRecord>> {
        let mut found = self
            .read(|db| db.query(WITH_SOURCE, &[], record_of))
            .await?;
        found.sort_unstable_by_key(|d| d.id);
        Ok(found)
    }

    /// The file of deposit `id` left the deposit folder's `en-cours/`.
    pub async fn clear_deposit_source(&self, id: i64) -> anyhow::Result<()> {
        self.read(move |db| {
            db.execute(
                "UPDATE deposits SET source_path = NULL WHERE id = $1",
                &[&id],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether a deposit holds the file of this SHA-256.
    pub async fn deposit_file_used(&self, sha256: String) -> anyhow::Result<bool> {
        self.read(move |db| {
            Ok(db
                .query_opt(
                    "SELECT id FROM deposits WHERE sha256 = $1 LIMIT 1",
                    &[&sha256],
                    |r| r.get::<i64>(0),
                )?
                .is_some())
        })
        .await
    }

    /// Whether an `idflux` is already one of our deposits'.
    pub async fn known_idflux(&self, idflux: Vec<String>) -> anyhow::Result<Vec<bool>> {
        self.read(move |db| {
            idflux
                .iter()
                .map(|f| {
                    Ok(db
                        .query_opt("SELECT id FROM deposits WHERE idflux = $1", &[f], |r| {
                            r.get::<i64>(0)
                        })?
                        .is_some())
                })
                .collect()
        })
        .await
    }

    /// Our other deposits made with `user_id`'s identity whose attempt may overlap
    /// `[from, to]` and that are not settled (`sending`, `uncertain`).
    pub async fn unsettled_overlapping(
        &self,
        id: i64,
        user_id: i64,
        from: i64,
        to: i64,
    ) -> anyhow::Result<i64> {
        self.read(move |db| {
            db.query_value(
                "SELECT count(*) FROM deposits WHERE id <> $1 AND user_id = $2 \
                 AND state IN ('sending','uncertain') AND attempt_started_at <= $4 \
                 AND COALESCE(attempt_ended_at, attempt_started_at + 86400) >= $3",
                &[&id, &user_id, &from, &to],
            )
        })
        .await
    }

    /// `sending` deposits whose attempt lost its worker (a lease of `owner`, this
    /// orchestrator's former life, or any expired lease) become `uncertain`; their ids.
    pub async fn recover_deposits(&self, owner: String, now: i64) -> anyhow::Result<Vec<i64>> {
        // One statement: a lease renewed or an answer written meanwhile is judged on the
        // row as it is then, never overwritten.
        self.read(move |db| {
            let mut ids: Vec<i64> = db.query(
                "UPDATE deposits SET state = 'uncertain', lease_owner = NULL, \
                 lease_until = NULL, updated_at = $2, not_before = 0, \
                 message = 'La réponse de Net-entreprises à ce dépôt n''a pas été reçue : il sera vérifié sur la liste des dépôts avant tout nouvel envoi.' \
                 WHERE state = 'sending' \
                 AND (lease_owner = $1 OR lease_until IS NULL OR lease_until < $2) RETURNING id",
                &[&owner, &now],
                |r| r.get(0),
            )?;
            ids.sort_unstable();
            Ok(ids)
        })
        .await
    }

    /// The account that deposits for `siret`, if one is set: (user id, name).
    pub async fn deposit_account(&self, siret: String) -> anyhow::Result<Option<(i64, String)>> {
        self.read(move |db| {
            db.query_opt(
                "SELECT a.user_id, u.name FROM deposit_accounts a JOIN users u ON u.id = a.user_id \
                 WHERE a.siret = $1",
                &[&siret],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    pub async fn set_deposit_account(
        &self,
        siret: String,
        user_id: i64,
        now: i64,
    ) -> anyhow::Result<()> {
        self.write(move |db| {
            db.execute(
                "INSERT INTO deposit_accounts (siret, user_id, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (siret) DO UPDATE SET user_id = excluded.user_id, \
                 updated_at = excluded.updated_at",
                &[&siret, &user_id, &now],
            )?;
            Ok(())
        })
        .await
    }

    /// (SIRET, account name) of every setting, by SIRET.
    pub async fn deposit_accounts(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.read(|db| {
            db.query(
                "SELECT a.siret, u.name FROM deposit_accounts a JOIN users u ON u.id = a.user_id \
                 ORDER BY a.siret",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }
}

/// The deposits whose file waits in the deposit folder, on the `deposits_source` index
/// (in no order: SQLite would rather walk the table in id order than sort them).
const WITH_SOURCE: &str = select!("WHERE source_path IS NOT NULL");
/// The deposit of a file of the deposit folder (`$1`), on the `deposits_source` index.
const BY_SOURCE: &str = "SELECT id FROM deposits WHERE source_path = $1";

/// The search for the due deposits of `state` (`$1` now, `$2` the limit: ids, oldest
/// first). The state is written in the text, not bound: PostgreSQL then sees the query is
/// within the state's partial index (`deposits_due_<state>`, holding that state's rows
/// only), whatever plan it keeps for the prepared statement.
fn due_sql(state: State) -> anyhow::Result<&'static str> {
    macro_rules! due {
        ($state:literal) => {
            concat!(
                "SELECT id FROM deposits WHERE state = '",
                $state,
                "' AND not_before <= $1 AND (lease_until IS NULL OR lease_until < $1) \
                 ORDER BY id LIMIT $2"
            )
        };
    }
    Ok(match state {
        State::Checked => due!("checked"),
        State::Queued => due!("queued"),
        State::Waiting => due!("waiting"),
        State::Uncertain => due!("uncertain"),
        other => anyhow::bail!("no queue of {} deposits", other.code()),
    })
}

/// The claim of the oldest due deposit (`$1` owner, `$2` lease end, `$3` now: its record),
/// the uncertain ones before the queued ones, in one statement: each state searched on
/// its own partial index (`deposits_due_<state>`, the state written in the text so that
/// PostgreSQL sees the search is within it, whatever plan it keeps for the prepared
/// statement), the row found then written looked up by its id. One row at a time, `LIMIT
/// 1` written out: SQLite re-prepares a statement whose `LIMIT` is a bound parameter each
/// time it is bound, and a generic plan of PostgreSQL made while the table was small
/// writes a set of ids (`= ANY`, `IN`) by walking the table, where it looks one id up by
/// the index. A row another orchestrator took meanwhile is judged again as it left it.
const CLAIM_DUE: &str = concat!(
    "UPDATE deposits SET lease_owner = $1, lease_until = $2 WHERE id = (SELECT id FROM (\
     SELECT 0 AS k, id FROM (SELECT id FROM deposits WHERE state = 'uncertain' \
     AND not_before <= $3 AND (lease_until IS NULL OR lease_until < $3) ORDER BY id LIMIT 1) u \
     UNION ALL \
     SELECT 1 AS k, id FROM (SELECT id FROM deposits WHERE state = 'queued' \
     AND not_before <= $3 AND (lease_until IS NULL OR lease_until < $3) ORDER BY id LIMIT 1) q\
     ) due ORDER BY k LIMIT 1) \
     AND state IN ('uncertain', 'queued') AND not_before <= $3 \
     AND (lease_until IS NULL OR lease_until < $3) RETURNING ",
    record_columns!()
);

/// Takes the lease (for `owner`, until `until`) of at most `limit` due deposits, the
/// uncertain ones first, then the queued ones, each oldest first ([`CLAIM_DUE`]); each
/// as taken.
fn claim_due(
    db: &mut Db<'_>,
    owner: &str,
    until: i64,
    now: i64,
    limit: i64,
) -> anyhow::Result<Vec<DepositRecord>> {
    let mut taken = Vec::new();
    while (taken.len() as i64) < limit {
        match db.query_opt(CLAIM_DUE, &[&owner, &until, &now], record_of)? {
            Some(rec) => taken.push(rec),
            None => break,
        }
    }
    Ok(taken)
}

/// Marks `sending` each claimed deposit whose claim says [`Claim::Start`]
/// ([`start_attempt`]); each deposit as it is then, with what its claim gave.
fn start_attempts<T>(
    db: &mut Db<'_>,
    claims: Vec<(DepositRecord, Claim<T>)>,
    owner: &str,
    now: i64,
) -> anyhow::Result<Vec<(DepositRecord, T)>> {
    claims
        .into_iter()
        .map(|(rec, claim)| match claim {
            Claim::Keep(t) => Ok((rec, t)),
            Claim::Start(user_id, t) => {
                let id = rec.id;
                let rec = start_attempt(db, id, owner, user_id, now)?
                    .ok_or_else(|| anyhow::anyhow!("deposit {id} could not be marked sending"))?;
                Ok((rec, t))
            }
        })
        .collect()
}

/// `sending` with the attempt's start, if `owner` holds deposit `id` queued; the record as
/// written.
fn start_attempt(
    db: &mut Db<'_>,
    id: i64,
    owner: &str,
    user_id: i64,
    now: i64,
) -> anyhow::Result<Option<DepositRecord>> {
    db.query_opt(
        concat!(
            "UPDATE deposits SET state = 'sending', attempt_started_at = $3, \
             attempt_ended_at = NULL, attempts = attempts + 1, user_id = $4, updated_at = $3, \
             message = '', wait_kind = NULL, wait_credential_at = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state = 'queued' RETURNING ",
            record_columns!()
        ),
        &[&id, &owner, &now, &user_id],
        record_of,
    )
}

/// Inserts a checked deposit (`checked`, not routed) unless the same file or the same
/// normal declaration is already deposited or on its way; the record as written.
fn insert(
    db: &mut Db<'_>,
    new: &NewDeposit,
    now: i64,
) -> anyhow::Result<Result<DepositRecord, Duplicate>> {
    if let Err(dup) = duplicate_or_facts(db, new)? {
        return Ok(Err(dup));
    }
    insert_unchecked(db, new, &Transition::default(), now).map(Ok)
}

/// The search of a deposit that the same file (`what` 0), or the same normal declaration
/// (1, only when the new one is normal), already is (deposited or on its way), the same
/// file first: `$1` the SHA-256, `$2` the kind, `$3` the SIRET, `$4` the month, `$5` the
/// fraction, `$6` test or real. One query, both searches.
macro_rules! duplicate_search {
    () => {
        concat!(
            "SELECT CAST(0 AS BIGINT) AS what, id FROM deposits WHERE sha256 = $1 AND state IN ",
            "('received','checked','queued','waiting','sending','uncertain','to_check','accepted')",
            " UNION ALL ",
            "SELECT CAST(1 AS BIGINT), id FROM deposits WHERE $2 = '01' AND siret = $3 ",
            "AND month = $4 AND fraction = $5 AND kind = '01' AND essai_reel = $6 AND state IN ",
            "('received','checked','queued','waiting','sending','uncertain','to_check','accepted')",
            " ORDER BY 1, 2 LIMIT 1"
        )
    };
}

/// Takes the locks under which a new deposit is searched for among those recorded, then
/// inserted; they hold until the transaction ends. Two intakes of one file, or of one
/// normal declaration, at once (two workstations, two uploads) would both read "not
/// recorded": the second waits here until the first has committed, then finds it. The
/// file's lock first, always: no two intakes wait on each other's. A statement of its
/// own: the search that follows must see what was committed while it waited.
fn lock_intake(db: &mut Db<'_>, new: &NewDeposit) -> anyhow::Result<()> {
    let file = format!("deposit-file:{}", new.sha256);
    if new.kind == "01" {
        let declaration = format!(
            "deposit-declaration:{}:{}:{}:{}",
            new.siret, new.month, new.fraction, new.essai_reel
        );
        db.lock_keys(&[&file, &declaration])
    } else {
        db.lock_key(&file)
    }
}

fn duplicate_of(what: i64, id: i64) -> Duplicate {
    if what == 0 {
        Duplicate::SameFile(id)
    } else {
        Duplicate::SameDeclaration(id)
    }
}

/// The deposit that the same file, or the same normal declaration, already is, if any,
/// searched under the intake's locks ([`lock_intake`]); or else what decides the new
/// deposit's account ([`account_facts`]): both read in one query (one round trip), the
/// facts joined to the search's one row.
fn duplicate_or_facts(
    db: &mut Db<'_>,
    new: &NewDeposit,
) -> anyhow::Result<Result<AccountFacts, Duplicate>> {
    macro_rules! search {
        ($by:ident) => {
            concat!(
                "SELECT d.what, d.id, ",
                facts_columns!(),
                " FROM (SELECT 1 AS one) o LEFT JOIN (",
                duplicate_search!(),
                ") d ON true",
                facts_joins!($by, "$7")
            )
        };
    }
    lock_intake(db, new)?;
    let (sql, by): (&'static str, &dyn super::engine::Value) = match &new.user_id {
        Some(id) => (search!(by_user), id),
        None => (search!(by_siret), &new.siret),
    };
    let mut found: Option<(i64, i64)> = None;
    let rows = db.query(
        sql,
        &[
            &new.sha256,
            &new.kind,
            &new.siret,
            &new.month,
            &new.fraction,
            &new.essai_reel,
            by,
        ],
        |r| {
            if let (Some(what), Some(id)) = (r.get::<Option<i64>>(0)?, r.get::<Option<i64>>(1)?) {
                found = Some((what, id));
            }
            facts_row_at(r, 2)
        },
    )?;
    Ok(match found {
        Some((what, id)) => Err(duplicate_of(what, id)),
        None => Ok(facts_of_rows(rows, new.user_id)),
    })
}

/// Inserts a checked deposit, as `routing` (a [`Transition`] from `checked`) routes it:
/// its state (else `checked`), account (else the deposit's own), message and wait, written
/// by the `INSERT` itself; the record as written.
fn insert_unchecked(
    db: &mut Db<'_>,
    new: &NewDeposit,
    routing: &Transition,
    now: i64,
) -> anyhow::Result<DepositRecord> {
    // Every field named, so that a field added to `Transition` is decided here too.
    let Transition {
        state,
        message,
        user_id,
        wait,
        idflux,
        anomalies,
        anomalies_omitted: _,
        candidates,
        not_before,
        attempt_ended_at,
    } = routing;
    debug_assert!(
        idflux.is_none()
            && anomalies.is_none()
            && candidates.is_none()
            && not_before.is_none()
            && attempt_ended_at.is_none(),
        "a routing sets a new deposit's state, account, message and wait only"
    );
    let (wait_kind, wait_at) = match wait {
        Some((k, at)) => (Some(k.code()), *at),
        None => (None, None),
    };
    db.query_one(
        concat!(
            "INSERT INTO deposits (created_at, updated_at, state, requested_by, user_id, siret, \
             month, nature, kind, fraction, essai_reel, file_name, file_path, sha256, bytes, \
             message, attempts, not_before, source_path, wait_kind, wait_credential_at) \
             VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, 0, \
             $16, $17, $18) RETURNING ",
            record_columns!()
        ),
        &[
            &now,
            &state.unwrap_or(State::Checked).code(),
            &new.requested_by,
            &user_id.or(new.user_id),
            &new.siret,
            &new.month,
            &new.nature,
            &new.kind,
            &new.fraction,
            &new.essai_reel,
            &new.file_name,
            &new.file_path,
            &new.sha256,
            &new.bytes,
            &message.as_deref().unwrap_or(""),
            &new.source_path,
            &wait_kind,
            &wait_at,
        ],
        record_of,
    )
}

/// The columns a [`Transition`] writes; its parameters as [`transition_values`] gives them.
macro_rules! transition_set {
    () => {
        "UPDATE deposits SET updated_at = $2, \
         state = COALESCE($3, state), message = COALESCE($4, message), \
         idflux = COALESCE($5, idflux), anomalies = COALESCE($6, anomalies), \
         candidates = COALESCE($7, candidates), not_before = COALESCE(CAST($8 AS BIGINT), not_before), \
         attempt_ended_at = COALESCE(CAST($9 AS BIGINT), attempt_ended_at), \
         user_id = COALESCE(CAST($10 AS BIGINT), user_id), \
         wait_kind = CASE WHEN CAST($13 AS BIGINT) = 1 THEN $11 ELSE wait_kind END, \
         wait_credential_at = CASE WHEN CAST($13 AS BIGINT) = 1 THEN CAST($12 AS BIGINT) ELSE wait_credential_at END, \
         anomalies_omitted = COALESCE(CAST($14 AS BIGINT), anomalies_omitted)"
    };
}

/// A transition's values, as bound to [`transition_set`]'s `$3`…`$14`.
struct TransitionValues<'t> {
    state: Option<&'static str>,
    message: &'t Option<String>,
    idflux: &'t Option<String>,
    anomalies: Option<String>,
    candidates: Option<String>,
    not_before: &'t Option<i64>,
    attempt_ended_at: &'t Option<i64>,
    user_id: &'t Option<i64>,
    wait_kind: Option<&'static str>,
    wait_at: Option<i64>,
    wait_written: i64,
    /// Set only with `anomalies`.
    anomalies_omitted: Option<i64>,
}

fn transition_values(t: &Transition) -> anyhow::Result<TransitionValues<'_>> {
    let (wait_kind, wait_at) = match &t.wait {
        Some((k, at)) => (Some(k.code()), *at),
        None => (None, None),
    };
    Ok(TransitionValues {
        state: t.state.map(State::code),
        message: &t.message,
        idflux: &t.idflux,
        anomalies: t
            .anomalies
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
        candidates: t
            .candidates
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
        not_before: &t.not_before,
        attempt_ended_at: &t.attempt_ended_at,
        user_id: &t.user_id,
        wait_kind,
        wait_at,
        wait_written: i64::from(t.wait.is_some() || t.state.is_some_and(|s| s != State::Waiting)),
        anomalies_omitted: t
            .anomalies
            .as_ref()
            .map(|_| i64::try_from(t.anomalies_omitted).unwrap_or(i64::MAX)),
    })
}

/// Writes `t` on deposit `id`; the record as written.
fn apply(
    db: &mut Db<'_>,
    id: i64,
    t: &Transition,
    now: i64,
) -> anyhow::Result<Option<DepositRecord>> {
    let v = transition_values(t)?;
    db.query_opt(
        concat!(
            transition_set!(),
            " WHERE id = $1 RETURNING ",
            record_columns!()
        ),
        &[
            &id,
            &now,
            &v.state,
            v.message,
            v.idflux,
            &v.anomalies,
            &v.candidates,
            v.not_before,
            v.attempt_ended_at,
            v.user_id,
            &v.wait_kind,
            &v.wait_at,
            &v.wait_written,
            &v.anomalies_omitted,
        ],
        record_of,
    )
}

/// [`apply`] if `owner` holds the lease of `id` (`release`: and frees it); rows written.
fn apply_held(
    db: &mut Db<'_>,
    id: i64,
    owner: &str,
    t: &Transition,
    release: bool,
    now: i64,
) -> anyhow::Result<u64> {
    let v = transition_values(t)?;
    db.execute(
        concat!(
            transition_set!(),
            ", lease_owner = CASE WHEN CAST($16 AS BIGINT) = 1 THEN NULL ELSE lease_owner END, \
             lease_until = CASE WHEN CAST($16 AS BIGINT) = 1 THEN NULL ELSE lease_until END \
             WHERE id = $1 AND lease_owner = $15"
        ),
        &[
            &id,
            &now,
            &v.state,
            v.message,
            v.idflux,
            &v.anomalies,
            &v.candidates,
            v.not_before,
            v.attempt_ended_at,
            v.user_id,
            &v.wait_kind,
            &v.wait_at,
            &v.wait_written,
            &v.anomalies_omitted,
            &owner,
            &i64::from(release),
        ],
    )
}

#[cfg(test)]
mod tests {
    //! On the engine of the test run (SQLite, or PostgreSQL with `IEA_TEST_DATABASE_URL`).

    use super::*;
    use crate::store::testing::store;

    use crate::deposits::testing::{anomalies, new};

    /// A normal declaration of the file `sha`, recorded and queued.
    async fn queued_deposit(s: &Store, sha: &str) -> DepositRecord {
        let d = s.insert_deposit(new(sha, "01"), 1).await.unwrap().unwrap();
        s.decide_deposit(d.id, &[State::Checked], queued(), 1)
            .await
            .unwrap();
        d
    }

    fn queued() -> Transition {
        Transition {
            state: Some(State::Queued),
            ..Default::default()
        }
    }

    /// A list keeps what each filter asks (SIRET, month, state), newest first, at most
    /// its limit; an account that is not an administrator sees only its own deposits.
    #[tokio::test]
    async fn deposits_are_listed_by_siret_month_and_state_newest_first() {
        use crate::deposits::ListFilter;
        let t = store().await;
        let s = &t.store;
        // 3 months of two establishments; the first month of each requested by « Martin ».
        let mut ids = Vec::new();
        for (i, siret) in ["78214563500010", "73282932000074"].into_iter().enumerate() {
            for (j, month) in ["2026-09", "2026-10", "2026-11"].into_iter().enumerate() {
                let mut d = new(&format!("f{i}{j}"), "03");
                d.siret = siret.into();
                d.month = month.into();
                if j == 0 {
                    d.requested_by = "Martin".into();
                }
                ids.push(s.insert_deposit(d, 1).await.unwrap().unwrap().id);
            }
        }
        s.decide_deposit(ids[4], &[State::Checked], queued(), 2)
            .await
            .unwrap();
        let list = |for_user: Option<(i64, String)>, siret: &str, month: &str, state: &str| {
            let filter = ListFilter::parse(siret, month, state, 0).unwrap();
            async move {
                s.deposits(for_user, filter, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|d| d.id)
                    .collect::<Vec<_>>()
            }
        };
        let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
        assert_eq!(list(None, "", "", "").await, newest_first);
        assert_eq!(
            list(None, "78214563500010", "", "").await,
            vec![ids[2], ids[1], ids[0]]
        );
        assert_eq!(list(None, "", "2026-10", "").await, vec![ids[4], ids[1]]);
        assert_eq!(
            list(None, "73282932000074", "2026-10", "").await,
            vec![ids[4]]
        );
        assert_eq!(list(None, "", "", "queued").await, vec![ids[4]]);
        assert_eq!(list(None, "", "2026-09", "queued").await, Vec::<i64>::new());
        assert_eq!(
            list(Some((999, "martin".into())), "", "", "").await,
            vec![ids[3], ids[0]]
        );
        assert_eq!(
            list(Some((999, "Martin".into())), "78214563500010", "", "").await,
            vec![ids[0]]
        );
        // The limit: the newest.
        let two = s
            .deposits(None, ListFilter::default(), 2)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect::<Vec<_>>();
        assert_eq!(two, vec![ids[5], ids[4]]);
        // The next page: from the last one given, with the same filters.
        let page = |for_user: Option<(i64, String)>, siret: &str, before: i64| {
            let filter = ListFilter::parse(siret, "", "", 0)
                .unwrap()
                .older_than(before)
                .unwrap();
            async move {
                s.deposits(for_user, filter, 2)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|d| d.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(page(None, "", ids[4]).await, vec![ids[3], ids[2]]);
        assert_eq!(page(None, "", ids[0]).await, Vec::<i64>::new());
        assert_eq!(
            page(None, "73282932000074", ids[5]).await,
            vec![ids[4], ids[3]]
        );
        assert_eq!(
            page(Some((999, "Martin".into())), "", ids[3]).await,
            vec![ids[0]]
        );
    }

    /// The front-ends' list of states (their filters) is the deposits' own.
    #[test]
    fn the_front_ends_know_every_state() {
        assert_eq!(State::ALL.map(State::code), iea_proto::DEPOSIT_STATES);
    }

    /// What a person or a program asks is checked before anything is read.
    #[test]
    fn a_list_filter_names_what_is_wrong_in_french() {
        use crate::deposits::{DepositError, LIST_MAX, ListFilter};
        let message = |r: Result<ListFilter, DepositError>| match r {
            Err(DepositError::InvalidInput(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(ListFilter::parse("7821456350001", "", "", 0)),
            "Le SIRET doit compter 14 chiffres ; « 7821456350001 » en compte 13."
        );
        assert_eq!(
            message(ListFilter::parse("", "2026-13", "", 0)),
            "Mois « 2026-13 » invalide : attendu AAAA-MM, par exemple 2025-03."
        );
        assert!(
            message(ListFilter::parse("", "", "acepted", 0))
                .starts_with("État de dépôt « acepted » inconnu : attendu l'un de received, ")
        );
        let f = ListFilter::parse(" 782 145 635 00010 ", " 2026-11 ", "to_check", 0).unwrap();
        assert_eq!(f.siret.as_deref(), Some("78214563500010"));
        assert_eq!(f.month.map(|m| m.to_string()).as_deref(), Some("2026-11"));
        assert_eq!(f.state, Some(State::ToCheck));
        assert_eq!(f.limit, LIST_MAX);
        assert_eq!(ListFilter::parse("", "", "", 7).unwrap().limit, 7);
        assert_eq!(ListFilter::parse("", "", "", 500).unwrap().limit, LIST_MAX);
        assert_eq!(
            message(ListFilter::parse("", "", "", 501)),
            "Une liste donne au plus 500 dépôts : demandez-en 500 au plus."
        );
        let f = ListFilter::parse("", "", "", 0).unwrap();
        assert_eq!(f.clone().older_than(0).unwrap().before, None);
        assert_eq!(f.clone().older_than(12).unwrap().before, Some(12));
        assert_eq!(
            message(f.older_than(-1)),
            "Le numéro de dépôt à partir duquel lister doit être un nombre positif."
        );
    }

    #[tokio::test]
    async fn the_same_declaration_is_refused_unless_it_cancels_and_replaces() {
        let t = store().await;
        let s = &t.store;
        let first = s.insert_deposit(new("a", "01"), 1).await.unwrap().unwrap();
        assert_eq!(first.state, State::Checked);
        assert!(matches!(
            s.insert_deposit(new("a", "01"), 2).await.unwrap(),
            Err(Duplicate::SameFile(id)) if id == first.id
        ));
        assert!(matches!(
            s.insert_deposit(new("b", "01"), 2).await.unwrap(),
            Err(Duplicate::SameDeclaration(id)) if id == first.id
        ));
        // An "annule et remplace" of the same month goes through.
        let replace = s.insert_deposit(new("c", "03"), 3).await.unwrap().unwrap();
        assert_eq!(replace.kind, "03");
        // Once the first is rejected, the same normal declaration may be sent again.
        let rejected = Transition {
            state: Some(State::Rejected),
            ..Default::default()
        };
        s.decide_deposit(first.id, &[State::Checked], rejected, 4)
            .await
            .unwrap();
        assert!(s.insert_deposit(new("b", "01"), 5).await.unwrap().is_ok());
    }

    /// Another orchestrator records a file and has not committed yet: recording the same
    /// file here, or another file of the same normal declaration, waits for it, then finds
    /// it (without the intake's lock both were recorded, and both would be sent).
    #[tokio::test]
    async fn one_declaration_recorded_at_once_by_two_orchestrators_is_recorded_once() {
        let t = store().await;
        let hold = std::time::Duration::from_millis(300);
        let mut october = new("b", "01");
        october.month = "2026-10".into();
        let mut october_again = new("c", "01");
        october_again.month = "2026-10".into();
        for (theirs, ours, same_file) in [
            (new("a", "01"), new("a", "03"), true),
            (october, october_again, false),
        ] {
            let other = crate::store::testing::other_transaction(&t.url, hold, move |db| {
                Ok(insert(db, &theirs, 1)?
                    .map(|r| r.id)
                    .map_err(|_| anyhow::anyhow!("a duplicate")))
            });
            let here = t.store.insert_deposit(ours, 2).await.unwrap();
            let theirs = other.join().unwrap().unwrap();
            match here {
                Err(Duplicate::SameFile(id)) if same_file => assert_eq!(id, theirs),
                Err(Duplicate::SameDeclaration(id)) if !same_file => assert_eq!(id, theirs),
                other => panic!(
                    "recorded twice, or not as expected: {:?}",
                    other.map(|r| r.id)
                ),
            }
        }
        assert_eq!(
            t.store
                .deposits(None, Default::default(), 10)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    /// Another orchestrator claims a queued deposit and has not committed yet: a person's
    /// decision on it here waits for the claim, then leaves the deposit to it.
    #[tokio::test]
    async fn a_decision_waits_for_a_claim_under_way_and_leaves_the_deposit_to_it() {
        let t = store().await;
        let d = queued_deposit(&t.store, "a").await;
        let id = d.id;
        let other = crate::store::testing::other_transaction(
            &t.url,
            std::time::Duration::from_millis(300),
            move |db| {
                db.execute(
                    "UPDATE deposits SET lease_owner = 'other', lease_until = 1000000 \
                     WHERE id = $1 AND lease_until IS NULL",
                    &[&id],
                )
            },
        );
        let rejected = Transition {
            state: Some(State::Rejected),
            ..Default::default()
        };
        let (rec, written) = t
            .store
            .decide_deposit(id, &[State::Queued], rejected, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(other.join().unwrap(), 1, "the claim was taken");
        assert!(!written, "a decision wrote over a claim under way");
        assert_eq!(rec.state, State::Queued);
        assert_eq!(rec.lease_owner.as_deref(), Some("other"));
    }

    /// Two orchestrators on one database: two stores (two connections) race for the same
    /// deposit; exactly one gets its lease, and a taken lease is not taken again before it
    /// expires.
    #[tokio::test]
    async fn a_lease_is_taken_by_one_orchestrator_only() {
        let t = store().await;
        let other = Store::open(&t.url).await.unwrap();
        let d = queued_deposit(&t.store, "a").await;
        for round in 0..20 {
            let now = 100 + round * 1000;
            let (a, b) = tokio::join!(
                t.store
                    .lease_deposit(d.id, State::Queued, "one".into(), now, now + 60),
                other.lease_deposit(d.id, State::Queued, "two".into(), now, now + 60),
            );
            let taken = [a.unwrap(), b.unwrap()];
            assert_eq!(
                taken.iter().filter(|x| x.is_some()).count(),
                1,
                "round {round}"
            );
            // Still held a second later.
            assert!(
                other
                    .lease_deposit(d.id, State::Queued, "two".into(), now + 1, now + 61)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert_eq!(
            t.store
                .deposits_due(&[State::Queued], 19_150, 10)
                .await
                .unwrap(),
            Vec::<i64>::new()
        );
        assert_eq!(
            t.store
                .deposits_due(&[State::Queued], 19_200, 10)
                .await
                .unwrap(),
            vec![d.id]
        );
    }

    #[tokio::test]
    async fn an_attempt_is_committed_before_sending_and_recovered_as_uncertain() {
        let t = store().await;
        let s = &t.store;
        let d = s.insert_deposit(new("a", "01"), 1).await.unwrap().unwrap();
        s.decide_deposit(d.id, &[State::Checked], queued(), 1)
            .await
            .unwrap();
        let user = s
            .insert_first_user(
                "Administrateur",
                crate::users::Role::Administrator,
                "hash",
                1,
            )
            .await
            .unwrap();
        // Without the lease, no attempt starts.
        assert!(
            !s.start_deposit_attempt(d.id, "me".into(), user, 10)
                .await
                .unwrap()
        );
        s.lease_deposit(d.id, State::Queued, "me".into(), 10, 70)
            .await
            .unwrap()
            .unwrap();
        assert!(
            s.start_deposit_attempt(d.id, "me".into(), user, 10)
                .await
                .unwrap()
        );
        let r = s.deposit(d.id).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.attempt_started_at, r.attempts),
            (State::Sending, Some(10), 1)
        );
        // Another orchestrator's live lease is left alone; its own former life's is not.
        assert!(
            s.recover_deposits("someone".into(), 20)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.recover_deposits("me".into(), 20).await.unwrap(),
            vec![d.id]
        );
        let r = s.deposit(d.id).await.unwrap().unwrap();
        assert_eq!(r.state, State::Uncertain);
        assert_eq!(r.lease_owner, None);
        // A writer that lost its lease writes nothing.
        let accepted = Transition {
            state: Some(State::Accepted),
            idflux: Some("X".repeat(23)),
            ..Default::default()
        };
        assert!(
            !s.transition_deposit(d.id, "me".into(), accepted, true, 30)
                .await
                .unwrap()
        );
        assert_eq!(
            s.deposit(d.id).await.unwrap().unwrap().state,
            State::Uncertain
        );
    }

    /// The first account, an administrator, with a Net-entreprises identity (at time 1).
    async fn administrator_with_credentials(s: &Store) -> i64 {
        let user = s
            .insert_first_user("Administrateur", crate::users::Role::Administrator, "h", 1)
            .await
            .unwrap();
        s.set_credentials(vec![identity(user)], 1).await.unwrap();
        user
    }

    fn identity(user_id: i64) -> crate::store::NewIdentity {
        crate::store::NewIdentity {
            user_id,
            siret: "78214563500010".into(),
            nom: "DUPONT".into(),
            prenom: "Marie".into(),
            sealed: crate::crypto::Sealed {
                key_id: "k".into(),
                nonce: vec![1; 24],
                ciphertext: vec![2; 40],
            },
        }
    }

    /// The routing a test gives: queued with the chosen account, or waiting (no account).
    fn route_to_chosen(siret: &str, facts: AccountFacts) -> Transition {
        assert_eq!(siret, "78214563500010");
        match (facts.chosen, facts.credential) {
            (Some((id, _)), Some(c)) => {
                assert_eq!((c.user_id, c.nom.as_str()), (id, "DUPONT"));
                Transition {
                    state: Some(State::Queued),
                    user_id: Some(id),
                    ..Default::default()
                }
            }
            _ => Transition {
                state: Some(State::Waiting),
                message: Some(format!("{} with credentials", facts.with_credentials)),
                wait: Some((WaitKind::NoAccount, None)),
                ..Default::default()
            },
        }
    }

    /// The account a deposit goes out with: the one designated for its SIRET (with its
    /// credentials, or none), else the only one with credentials; with two, none, and both
    /// counted.
    #[tokio::test]
    async fn the_account_is_the_designated_one_else_the_only_one_with_credentials() {
        let t = store().await;
        let s = &t.store;
        let admin = crate::store::testing::reseau_with_administrator(s).await;
        s.set_credentials(vec![identity(admin)], 1).await.unwrap();
        let rec = s.insert_deposit(new("a", "03"), 2).await.unwrap().unwrap();
        let facts = |rec: &DepositRecord| s.deposit_account_facts(rec.clone());
        let only = facts(&rec).await.unwrap();
        assert_eq!(only.chosen, Some((admin, "Administrateur".to_owned())));
        assert_eq!(only.with_credentials, 1);
        assert_eq!(only.credential.map(|c| c.user_id), Some(admin));

        let ids = crate::store::testing::add_users(s, &["Bruno", "Chloé"]).await;
        let (bruno, chloe) = (ids[0], ids[1]);
        s.set_credentials(vec![identity(bruno)], 3).await.unwrap();
        let two = facts(&rec).await.unwrap();
        assert_eq!(two.chosen, None);
        assert_eq!(two.with_credentials, 2);
        assert!(two.credential.is_none());

        s.set_deposit_account(rec.siret.clone(), bruno, 4)
            .await
            .unwrap();
        let designated = facts(&rec).await.unwrap();
        assert_eq!(designated.chosen, Some((bruno, "Bruno".to_owned())));
        let c = designated.credential.expect("Bruno's credentials");
        assert_eq!(
            (c.user_id, c.user.as_str(), c.nom.as_str()),
            (bruno, "Bruno", "DUPONT")
        );
        assert_eq!(c.sealed.nonce, vec![1; 24]);

        s.set_deposit_account(rec.siret.clone(), chloe, 5)
            .await
            .unwrap();
        let without = facts(&rec).await.unwrap();
        assert_eq!(without.chosen, Some((chloe, "Chloé".to_owned())));
        assert!(without.credential.is_none());

        // A deposit with its account already set keeps it, whatever the SIRET's: its name
        // read from the store (not from the record), its identity if it has one.
        let mut own = rec.clone();
        (own.user_id, own.account) = (Some(admin), None);
        let kept = facts(&own).await.unwrap();
        assert_eq!(kept.chosen, Some((admin, "Administrateur".to_owned())));
        assert_eq!(kept.credential.map(|c| c.user_id), Some(admin));
        s.set_deposit_account(rec.siret.clone(), bruno, 6)
            .await
            .unwrap();
        own.user_id = Some(chloe);
        let kept = facts(&own).await.unwrap();
        assert_eq!(kept.chosen, Some((chloe, "Chloé".to_owned())));
        assert!(kept.credential.is_none());
    }

    /// An account whose identity is still needed is not removed: designated for an
    /// establishment, with a deposit on its way, or with returns followed. A deposit of
    /// its waiting for credentials does not keep it; once nothing needs it, it goes.
    #[tokio::test]
    async fn an_account_whose_identity_is_still_needed_is_not_removed() {
        use crate::store::{InUse, Removed};
        let t = store().await;
        let s = &t.store;
        let admin = crate::store::testing::reseau_with_administrator(s).await;
        let bruno = crate::store::testing::add_users(s, &["Bruno"]).await[0];
        let in_use = |r: Removed| match r {
            Removed::InUse(what) => what,
            _ => panic!("Bruno was removed"),
        };
        let state = |id: i64, state: &'static str| {
            s.write(move |db| {
                db.execute(
                    "UPDATE deposits SET state = $2 WHERE id = $1",
                    &[&id, &state],
                )
            })
        };

        s.set_deposit_account("78214563500010".into(), bruno, 2)
            .await
            .unwrap();
        assert_eq!(
            in_use(s.remove_user("Bruno", admin).await.unwrap()),
            InUse {
                sirets: vec!["78214563500010".into()],
                ..Default::default()
            }
        );
        s.set_deposit_account("78214563500010".into(), admin, 3)
            .await
            .unwrap();

        let mut his = new("a", "03");
        his.user_id = Some(bruno);
        let his = s.insert_deposit(his, 4).await.unwrap().unwrap();
        for on_its_way in [
            "received",
            "checked",
            "queued",
            "sending",
            "uncertain",
            "to_check",
        ] {
            state(his.id, on_its_way).await.unwrap();
            assert_eq!(
                in_use(s.remove_user("Bruno", admin).await.unwrap()),
                InUse {
                    deposits: 1,
                    ..Default::default()
                },
                "{on_its_way}"
            );
        }
        state(his.id, "accepted").await.unwrap();
        s.start_follows(
            vec![crate::returns::NewFollow {
                deposit_id: his.id,
                idflux: "F1".into(),
                user_id: Some(bruno),
                siret: his.siret.clone(),
                month: his.month.clone(),
                due_at: 10,
                started_at: 5,
                until_at: 100,
                next_at: 6,
            }],
            5,
        )
        .await
        .unwrap();
        assert_eq!(
            in_use(s.remove_user("Bruno", admin).await.unwrap()),
            InUse {
                follows: 1,
                ..Default::default()
            }
        );
        s.write(move |db| {
            db.execute(
                "UPDATE return_follows SET state = 'done' WHERE deposit_id = $1",
                &[&his.id],
            )
        })
        .await
        .unwrap();

        let mut waiting = new("b", "03");
        waiting.user_id = Some(bruno);
        let waiting = s.insert_deposit(waiting, 7).await.unwrap().unwrap();
        state(waiting.id, "waiting").await.unwrap();
        assert!(matches!(
            s.remove_user("Bruno", admin).await.unwrap(),
            Removed::Removed(u) if u.id == bruno
        ));
        // The establishment keeps the account designated for it.
        assert_eq!(
            s.deposit_accounts().await.unwrap().len(),
            1,
            "the administrator's designation"
        );
    }

    /// A file is recorded and routed in one call: with no account having credentials it
    /// waits; once one has, the next is queued with it; a duplicate writes nothing.
    #[tokio::test]
    async fn a_deposit_is_recorded_and_routed_in_one_call() {
        let t = store().await;
        let s = &t.store;
        let user = s
            .insert_first_user("Administrateur", crate::users::Role::Administrator, "h", 1)
            .await
            .unwrap();
        let first = s
            .record_deposit(new("a", "03"), 2, route_to_chosen)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.state, State::Waiting);
        assert_eq!(first.message, "0 with credentials");
        assert_eq!(first.wait_kind, Some(WaitKind::NoAccount));
        s.set_credentials(vec![identity(user)], 3).await.unwrap();
        let second = s
            .record_deposit(new("b", "03"), 4, route_to_chosen)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (second.state, second.user_id, second.account.as_deref()),
            (State::Queued, Some(user), Some("Administrateur"))
        );
        assert!(matches!(
            s.record_deposit(new("b", "03"), 5, route_to_chosen)
                .await
                .unwrap(),
            Err(Duplicate::SameFile(id)) if id == second.id
        ));
        // A normal declaration, then the same one in another file; and a deposit whose own
        // account is set, routed with that account's facts.
        let normal = s
            .record_deposit(new("c", "01"), 6, route_to_chosen)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            s.record_deposit(new("d", "01"), 7, route_to_chosen)
                .await
                .unwrap(),
            Err(Duplicate::SameDeclaration(id)) if id == normal.id
        ));
        let mut own = new("e", "03");
        own.user_id = Some(user);
        let own = s
            .record_deposit(own, 8, route_to_chosen)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((own.state, own.user_id), (State::Queued, Some(user)));
        assert_eq!(
            s.deposits(None, Default::default(), 10)
                .await
                .unwrap()
                .len(),
            4
        );
    }

    /// Claims take due deposits oldest first, at most as many as asked, each with its
    /// account's facts; two orchestrators claiming at once never take the same one; the
    /// answer is written only by the lease's holder, which it releases.
    /// Once the table holds mostly settled deposits and a long queue, finding the oldest
    /// due deposit of a state starts at that state's rows, on each engine and whatever
    /// plan PostgreSQL keeps for the prepared statement: its generic plan once walked the
    /// primary key through every settled row, then the search of the uncertain ones (at
    /// every claim) read every queued row to test its state.
    #[tokio::test]
    async fn the_queue_is_searched_among_due_deposits_only() {
        let t = store().await;
        let s = &t.store;
        // First as a new database's connections make their generic plans, before the
        // table was ever analysed; then with 300 settled and 200 queued deposits, which
        // the search of another state reads neither of.
        check_queue_plans(s, "new, never analysed", false).await;
        let accepted = Transition {
            state: Some(State::Accepted),
            ..Default::default()
        };
        for i in 0..500 {
            let mut n = new(&format!("row-{i}"), "03");
            n.month = format!("20{:02}-{:02}", 10 + i / 12, 1 + i % 12);
            let d = s.insert_deposit(n, 1).await.unwrap().unwrap();
            let to = if i < 300 { accepted.clone() } else { queued() };
            s.decide_deposit(d.id, &[State::Checked], to, 1)
                .await
                .unwrap();
        }
        check_queue_plans(s, "with 500 deposits", true).await;
    }

    /// The plans of each state's search and of the claim ([`plans_of`]): each scan starts
    /// at its state's rows, and the claim writes the row it found looked up by its id.
    async fn check_queue_plans(s: &Store, table: &'static str, analyse: bool) {
        let plan_of = move |db: &mut Db<'_>, case: PlanCase<'_>| {
            let plans = if analyse {
                plans_of(db, &[case])
            } else {
                plans_as_they_are(db, &[case])
            };
            plans.map(|mut p| p.remove(0))
        };
        for state in [
            State::Checked,
            State::Queued,
            State::Waiting,
            State::Uncertain,
        ] {
            let due = due_sql(state).unwrap();
            let plan = s
                .write(move |db| plan_of(db, (due, "10, 1", &[&10_i64, &1_i64])))
                .await
                .unwrap();
            assert!(
                !walks_the_table(&plan) && scans_start_at(&plan, &[state.code()]),
                "the search of {state:?} reads other rows than its own ({table}):\n{plan}"
            );
        }
        let claim = s
            .write(move |db| plan_of(db, (CLAIM_DUE, "'x', 20, 10", &[&"x", &20_i64, &10_i64])))
            .await
            .unwrap();
        assert!(
            !walks_the_table(&claim) && scans_start_at(&claim, &["uncertain", "queued"]),
            "the claim reads other rows than the due ones ({table}):\n{claim}"
        );
        // The claim writes the row it found, looked up by its id: a semi-join of the
        // search with the table (`id IN (…)`), or a set of ids (`= ANY`), walked the whole
        // table at each claim.
        assert!(
            claim.contains("Index Cond: (id = $")
                || claim.contains("USING INTEGER PRIMARY KEY (rowid=?)"),
            "the claim does not write the row found by its id ({table}):\n{claim}"
        );
    }

    /// Whether `plan` reads the whole `deposits` table (PostgreSQL's `Seq Scan`, SQLite's
    /// `SCAN deposits`).
    fn walks_the_table(plan: &str) -> bool {
        plan.contains("Seq Scan on deposits") || plan.lines().any(|l| l.trim() == "SCAN deposits")
    }

    /// The deposits whose file waits in the deposit folder are found on an index of
    /// those only, not by reading every deposit (the folder is looked at every few
    /// seconds, and each file found there is looked for), on each engine and whatever
    /// plan PostgreSQL keeps for the prepared statement.
    #[tokio::test]
    async fn the_folder_s_deposits_are_found_without_reading_the_others() {
        let t = store().await;
        let s = &t.store;
        // 3,000 deposits made, 3 of them from the folder (in one transaction: quicker).
        s.write(|db| {
            for i in 0..3000 {
                let mut n = new(&format!("row-{i}"), "03");
                n.month = format!("{}-{:02}", 2000 + i / 12, 1 + i % 12);
                if i % 1000 == 0 {
                    n.source_path = Some(format!("/data/dsn/en-cours/{}.dsn", i / 1000));
                }
                insert(db, &n, 1)?.map_err(|d| anyhow::anyhow!("{d:?}"))?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let path = "/data/dsn/en-cours/1.dsn";
        let plans = s
            .write(move |db| {
                plans_of(
                    db,
                    &[
                        (WITH_SOURCE, "", &[]),
                        (BY_SOURCE, &format!("'{path}'"), &[&path]),
                    ],
                )
            })
            .await
            .unwrap();
        for plan in plans {
            assert!(
                plan.contains("deposits_source"),
                "the deposit folder's deposits are searched among all:\n{plan}"
            );
        }
        let found = s.deposits_with_source().await.unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(
            s.deposit_by_source("/data/dsn/en-cours/2.dsn".into())
                .await
                .unwrap(),
            Some(found[2].id)
        );
    }

    /// A statement, its arguments written as SQL (`"10, 'x'"`, for PostgreSQL) and bound
    /// (for SQLite).
    type PlanCase<'a> = (
        &'static str,
        &'a str,
        &'a [&'a dyn super::super::engine::Value],
    );

    /// The plan of each statement with its arguments: on PostgreSQL the generic plan of
    /// the prepared statement (the plan it may keep whatever the arguments), after an
    /// `ANALYZE`; on SQLite the plan of the statement with the arguments bound.
    fn plans_of(db: &mut Db<'_>, cases: &[PlanCase<'_>]) -> anyhow::Result<Vec<String>> {
        if db.is_postgres() {
            db.batch("ANALYZE deposits")?;
        }
        plans_as_they_are(db, cases)
    }

    /// [`plans_of`] without the `ANALYZE`: the plans made on the statistics the table
    /// has (none on a new database, until the server's autovacuum has looked at it).
    fn plans_as_they_are(db: &mut Db<'_>, cases: &[PlanCase<'_>]) -> anyhow::Result<Vec<String>> {
        let mut plans = Vec::new();
        let postgres = db.is_postgres();
        if postgres {
            db.batch("SET LOCAL plan_cache_mode = force_generic_plan")?;
        }
        for (sql, sql_args, args) in cases {
            let lines: Vec<String> = if postgres {
                db.batch(&format!("PREPARE plan_of AS {sql}"))?;
                let explain = if sql_args.is_empty() {
                    "EXPLAIN EXECUTE plan_of".to_owned()
                } else {
                    format!("EXPLAIN EXECUTE plan_of({sql_args})")
                };
                let explain: &'static str = Box::leak(explain.into_boxed_str());
                let lines = db.query(explain, &[], |r| r.get(0))?;
                db.batch("DEALLOCATE plan_of")?;
                lines
            } else {
                let explain: &'static str =
                    Box::leak(format!("EXPLAIN QUERY PLAN {sql}").into_boxed_str());
                db.query(explain, args, |r| r.get(3))?
            };
            plans.push(lines.join("\n"));
        }
        Ok(plans)
    }

    /// Whether each scan of `deposits` in `plan` starts at `state`'s rows, instead of
    /// testing the state of each row it reads (whether settled or of another queue): on
    /// PostgreSQL, that state's partial index (`deposits_due_<state>`), the state as an
    /// index condition, or the one row of an id found so; on SQLite, the `(state, id)`
    /// index entered at the state.
    fn scans_start_at(plan: &str, states: &[&str]) -> bool {
        // PostgreSQL's plan nodes: a line starting `->` (or the first), then its details.
        let mut nodes: Vec<(&str, Vec<&str>)> = Vec::new();
        for line in plan.lines().map(str::trim_start) {
            match nodes.last_mut() {
                Some((_, details)) if !line.starts_with("->") => details.push(line),
                _ => nodes.push((line, Vec::new())),
            }
        }
        let mut scans = nodes
            .iter()
            .filter(|(node, _)| node.contains("Scan") && node.contains(" on deposits"))
            .peekable();
        if scans.peek().is_none() {
            return plan.contains("deposits_queue (state=?");
        }
        scans.all(|(node, details)| {
            states.iter().any(|state| {
                node.contains(&format!("using deposits_due_{state} on deposits"))
                    || details.iter().any(|d| {
                        d.starts_with("Index Cond:") && d.contains(&format!("state = '{state}'"))
                    })
            }) || details.iter().any(|d| d.starts_with("Index Cond: (id = $"))
        })
    }

    #[tokio::test]
    async fn claims_take_each_due_deposit_once() {
        let t = store().await;
        let s = &t.store;
        let other = Store::open(&t.url).await.unwrap();
        let user = administrator_with_credentials(s).await;
        s.set_deposit_account("78214563500010".into(), user, 1)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..12 {
            let d = s
                .insert_deposit(new(&format!("f{i}"), "03"), 1)
                .await
                .unwrap()
                .unwrap();
            s.decide_deposit(d.id, &[State::Checked], queued(), 1)
                .await
                .unwrap();
            ids.push(d.id);
        }
        // One not due yet, one uncertain (due), one sending (not due).
        let later = Transition {
            not_before: Some(500),
            ..Default::default()
        };
        s.decide_deposit(ids[10], &[State::Queued], later, 1)
            .await
            .unwrap();
        let uncertain = Transition {
            state: Some(State::Uncertain),
            ..Default::default()
        };
        s.decide_deposit(ids[11], &[State::Queued], uncertain, 1)
            .await
            .unwrap();
        // Uncertain ones first, then the queue, oldest first.
        let first = s.claim_deposits("one".into(), 10, 70, 3).await.unwrap();
        assert_eq!(
            first.iter().map(|(r, _)| r.id).collect::<Vec<_>>(),
            vec![ids[11], ids[0], ids[1]]
        );
        for (r, f) in &first {
            assert_eq!(r.lease_owner.as_deref(), Some("one"));
            assert_eq!(f.chosen, Some((user, "Administrateur".to_owned())));
            assert_eq!(f.credential.as_ref().map(|c| c.user_id), Some(user));
        }
        let (a, b) = tokio::join!(
            s.claim_deposits("one".into(), 11, 71, 64),
            other.claim_deposits("two".into(), 11, 71, 64),
        );
        let mut taken: Vec<i64> = a
            .unwrap()
            .iter()
            .chain(b.unwrap().iter())
            .map(|(r, _)| r.id)
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, ids[2..10].to_vec(), "each due deposit taken once");
        assert!(
            s.claim_deposits("one".into(), 12, 72, 64)
                .await
                .unwrap()
                .is_empty()
        );
        // The answer: not by someone else, by the holder, which releases the lease.
        let accepted = Transition {
            state: Some(State::Accepted),
            idflux: Some("X".repeat(23)),
            ..Default::default()
        };
        assert!(
            !s.transition_deposit(ids[0], "two".into(), accepted.clone(), true, 13)
                .await
                .unwrap()
        );
        assert!(
            s.transition_deposit(ids[0], "one".into(), accepted, true, 13)
                .await
                .unwrap()
        );
        let r = s.deposit(ids[0]).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.idflux.as_deref(), r.lease_owner, r.lease_until),
            (State::Accepted, Some("X".repeat(23).as_str()), None, None)
        );
        // Kept (not released): the lease stays.
        let note = Transition {
            message: Some("note".into()),
            ..Default::default()
        };
        assert!(
            s.transition_deposit(ids[1], "one".into(), note, false, 14)
                .await
                .unwrap()
        );
        let r = s.deposit(ids[1]).await.unwrap().unwrap();
        assert_eq!(
            (r.message.as_str(), r.lease_owner.as_deref(), r.lease_until),
            ("note", Some("one"), Some(70))
        );
        // Once the leases expire, the not-yet-due one too is claimed when its time comes.
        let again = s.claim_deposits("one".into(), 600, 660, 64).await.unwrap();
        assert!(again.iter().any(|(r, _)| r.id == ids[10]));
        assert!(!again.iter().any(|(r, _)| r.id == ids[0]));
    }

    /// A claim that starts the attempt commits `sending` (with the attempt's start and
    /// account) in its own transaction; a claim that keeps leaves the deposit queued.
    #[tokio::test]
    async fn a_claim_starts_the_attempt_in_its_own_transaction() {
        let t = store().await;
        let s = &t.store;
        let user = administrator_with_credentials(s).await;
        let mut ids = Vec::new();
        for sha in ["a", "b"] {
            let d = s.insert_deposit(new(sha, "03"), 1).await.unwrap().unwrap();
            s.decide_deposit(d.id, &[State::Checked], queued(), 1)
                .await
                .unwrap();
            ids.push(d.id);
        }
        let first = ids[0];
        let claimed = s
            .claim_deposits_with("me".into(), 20, 80, 2, move |rec, facts| {
                let chosen = facts.chosen.map(|(id, _)| id);
                if rec.id == first {
                    Claim::Start(user, chosen)
                } else {
                    Claim::Keep(chosen)
                }
            })
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let (started, chosen) = &claimed[0];
        assert_eq!(*chosen, Some(user));
        assert_eq!(
            (
                started.state,
                started.attempt_started_at,
                started.attempts,
                started.user_id
            ),
            (State::Sending, Some(20), 1, Some(user))
        );
        // Committed: another connection sees it.
        let other = Store::open(&t.url).await.unwrap();
        let seen = other.deposit(first).await.unwrap().unwrap();
        assert_eq!(
            (seen.state, seen.lease_owner.as_deref()),
            (State::Sending, Some("me"))
        );
        let kept = other.deposit(ids[1]).await.unwrap().unwrap();
        assert_eq!(
            (kept.state, kept.attempts, kept.lease_owner.as_deref()),
            (State::Queued, 0, Some("me"))
        );
        // Restarted, this orchestrator finds the attempt uncertain.
        assert_eq!(
            s.recover_deposits("me".into(), 30).await.unwrap(),
            vec![first]
        );
    }

    /// Deposits claimed together are each handed the facts of their own account (read
    /// once per account), and those started are `sending` together, each with the account
    /// its claim gave, in the claims' order.
    #[tokio::test]
    async fn deposits_claimed_together_start_together_each_with_its_account() {
        let t = store().await;
        let s = &t.store;
        let admin = crate::store::testing::reseau_with_administrator(s).await;
        let bruno = crate::store::testing::add_users(s, &["Bruno"]).await[0];
        s.set_credentials(vec![identity(admin), identity(bruno)], 2)
            .await
            .unwrap();
        s.set_deposit_account("78214563500010".into(), bruno, 2)
            .await
            .unwrap();
        // Bruno's SIRET twice, a SIRET with no account designated (two accounts have
        // credentials: none chosen), and one deposit whose own account is set.
        let mut ids = Vec::new();
        for (sha, siret, own) in [
            ("a", "78214563500010", None),
            ("b", "44306184100047", None),
            ("c", "78214563500010", None),
            ("d", "44306184100047", Some(admin)),
        ] {
            let mut n = new(sha, "03");
            (n.siret, n.user_id) = (siret.into(), own);
            let d = s.insert_deposit(n, 1).await.unwrap().unwrap();
            s.decide_deposit(d.id, &[State::Checked], queued(), 1)
                .await
                .unwrap();
            ids.push(d.id);
        }
        let claimed = s
            .claim_deposits_with("me".into(), 20, 80, 10, |_, facts| {
                match facts.chosen.clone() {
                    Some((id, _)) => Claim::Start(id, facts),
                    None => Claim::Keep(facts),
                }
            })
            .await
            .unwrap();
        let seen: Vec<_> = claimed
            .iter()
            .map(|(r, f)| (r.id, r.state, r.user_id, f.chosen.as_ref().map(|c| c.0)))
            .collect();
        assert_eq!(
            seen,
            vec![
                (ids[0], State::Sending, Some(bruno), Some(bruno)),
                (ids[1], State::Queued, None, None),
                (ids[2], State::Sending, Some(bruno), Some(bruno)),
                (ids[3], State::Sending, Some(admin), Some(admin)),
            ]
        );
        assert_eq!(claimed[1].1.with_credentials, 2);
        // Committed, each with its attempt counted once and its lease.
        let other = Store::open(&t.url).await.unwrap();
        for (id, state, attempts) in [
            (ids[0], State::Sending, 1),
            (ids[1], State::Queued, 0),
            (ids[2], State::Sending, 1),
            (ids[3], State::Sending, 1),
        ] {
            let r = other.deposit(id).await.unwrap().unwrap();
            assert_eq!(
                (r.state, r.attempts, r.lease_owner.as_deref()),
                (state, attempts, Some("me"))
            );
            if state == State::Sending {
                assert_eq!(r.attempt_started_at, Some(20));
            }
        }
    }

    /// A deposit claimed ahead and given back is `queued` as before its claim (no attempt
    /// counted, no lease, due at once), and claimed again; only by the owner of its
    /// lease, only while `sending`.
    #[tokio::test]
    async fn a_claim_given_back_leaves_the_deposit_as_before_it() {
        let t = store().await;
        let s = &t.store;
        let user = administrator_with_credentials(s).await;
        let d = queued_deposit(s, "a").await;
        let start = move |_: &DepositRecord, _: AccountFacts| Claim::Start(user, ());
        let claimed = s
            .claim_deposits_with("me".into(), 20, 80, 1, start)
            .await
            .unwrap();
        assert_eq!(claimed[0].0.state, State::Sending);
        assert!(!s.unclaim_deposit(d.id, "other".into(), 21).await.unwrap());
        assert!(s.unclaim_deposit(d.id, "me".into(), 21).await.unwrap());
        let back = s.deposit(d.id).await.unwrap().unwrap();
        assert_eq!(
            (
                back.state,
                back.attempts,
                back.attempt_started_at,
                back.lease_owner.as_deref()
            ),
            (State::Queued, 0, None, None)
        );
        assert!(
            back.message.contains("En file d'attente"),
            "{}",
            back.message
        );
        // Nothing left to recover; claimed again at once, by anyone.
        assert!(
            s.recover_deposits("me".into(), 22)
                .await
                .unwrap()
                .is_empty()
        );
        let again = s
            .claim_deposits_with("other".into(), 22, 80, 1, start)
            .await
            .unwrap();
        assert_eq!(
            (again[0].0.id, again[0].0.state, again[0].0.attempts),
            (d.id, State::Sending, 1)
        );
        // Once sent (its lease another's, or answered), never given back.
        assert!(!s.unclaim_deposit(d.id, "me".into(), 23).await.unwrap());
        let accepted = Transition {
            state: Some(State::Accepted),
            idflux: Some("X".repeat(23)),
            ..Default::default()
        };
        s.transition_deposit(d.id, "other".into(), accepted, true, 24)
            .await
            .unwrap();
        assert!(!s.unclaim_deposit(d.id, "other".into(), 25).await.unwrap());
        assert_eq!(
            s.deposit(d.id).await.unwrap().unwrap().state,
            State::Accepted
        );
    }

    /// An ARE's count of the anomalies left out goes with its list: written by the
    /// rejection (the worker's, lease held), kept by what leaves the list, replaced with
    /// the list; a deposit never rejected has none.
    #[tokio::test]
    async fn the_count_of_anomalies_left_out_is_kept_with_the_list() {
        let t = store().await;
        let s = &t.store;
        let d = s.insert_deposit(new("a", "01"), 1).await.unwrap().unwrap();
        assert_eq!((d.anomalies.len(), d.anomalies_omitted), (0, 0));
        s.decide_deposit(d.id, &[State::Checked], queued(), 1)
            .await
            .unwrap();
        s.lease_deposit(d.id, State::Queued, "me".into(), 10, 70)
            .await
            .unwrap()
            .unwrap();
        let rejected = Transition {
            state: Some(State::Rejected),
            anomalies: Some(anomalies(100)),
            anomalies_omitted: 4_900,
            ..Default::default()
        };
        assert!(
            s.transition_deposit(d.id, "me".into(), rejected, true, 11)
                .await
                .unwrap()
        );
        let r = s.deposit(d.id).await.unwrap().unwrap();
        assert_eq!(
            (
                r.state,
                r.anomalies.len(),
                r.anomalies_omitted,
                r.lease_owner
            ),
            (State::Rejected, 100, 4_900, None)
        );
        assert_eq!(r.anomalies[99].code, "A99");
        // A transition that leaves the list leaves its count, even one that names a count.
        let note = Transition {
            message: Some("note".into()),
            anomalies_omitted: 7,
            ..Default::default()
        };
        let (r, written) = s
            .decide_deposit(d.id, &[State::Rejected], note, 12)
            .await
            .unwrap()
            .unwrap();
        assert!(written);
        assert_eq!(
            (r.message.as_str(), r.anomalies.len(), r.anomalies_omitted),
            ("note", 100, 4_900)
        );
        // A new list comes with its own count: 0 when it is whole.
        let whole = Transition {
            anomalies: Some(anomalies(2)),
            ..Default::default()
        };
        let (r, _) = s
            .decide_deposit(d.id, &[State::Rejected], whole, 13)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((r.anomalies.len(), r.anomalies_omitted), (2, 0));
        // Read alike in a listing.
        let listed = s.deposits(None, Default::default(), 10).await.unwrap();
        assert_eq!(listed[0].anomalies_omitted, 0);
    }

    /// `iea database migrate`: deposits and the accounts per SIRET go with the rest, and
    /// the next deposit gets a new id.
    #[tokio::test]
    async fn deposits_are_copied_to_another_database() {
        let dir = tempfile::tempdir().unwrap();
        let from = Store::open_sqlite(&dir.path().join("from.db"))
            .await
            .unwrap();
        let user = from
            .insert_first_user("Administrateur", crate::users::Role::Administrator, "h", 1)
            .await
            .unwrap();
        let d = from
            .insert_deposit(new("a", "01"), 1)
            .await
            .unwrap()
            .unwrap();
        from.set_deposit_account("78214563500010".into(), user, 2)
            .await
            .unwrap();
        let rejected = Transition {
            state: Some(State::Rejected),
            anomalies: Some(anomalies(100)),
            anomalies_omitted: 12,
            ..Default::default()
        };
        from.decide_deposit(d.id, &[State::Checked], rejected, 2)
            .await
            .unwrap();
        let to = store().await;
        let report = crate::store::copy_all(&from, &to.store).await.unwrap();
        let count = |t: &str| report.tables.iter().find(|(n, _)| *n == t).unwrap().1;
        assert_eq!((count("deposits"), count("deposit_accounts")), (1, 1));
        let copied = to.store.deposit(d.id).await.unwrap().unwrap();
        assert_eq!(
            (
                copied.sha256.as_str(),
                copied.state,
                copied.anomalies.len(),
                copied.anomalies_omitted
            ),
            ("a", State::Rejected, 100, 12)
        );
        assert_eq!(
            to.store.deposit_accounts().await.unwrap(),
            vec![("78214563500010".to_owned(), "Administrateur".to_owned())]
        );
        let next = to
            .store
            .insert_deposit(new("b", "03"), 3)
            .await
            .unwrap()
            .unwrap();
        assert!(next.id > d.id);
    }
}
