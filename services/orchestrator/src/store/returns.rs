//! Returns of DSN deposits (issue 13): the following of each accepted deposit, the
//! returns listed (one row per version: an overwrite adds a row and marks the older one
//! overwritten), their documents and what reading them gave (anomalies, CRMs and their
//! rates), and the cursor of each declarant's scan.
//!
//! Following, downloading and scanning take leases as deposits do (two columns taken
//! with a conditional `UPDATE`): two orchestrators on one PostgreSQL database never list
//! the same deposit nor download the same return at once. On SQLite, a lease (or the
//! start of a following) that finds the database busy past its busy timeout (another
//! orchestrator's long write transaction on the same file) is asked again for a while
//! instead of failing the pass's work until the next pass.
//!
//! Personal data: NIRs, matricules and rates are columns here; nothing of them is logged.

use super::Store;
use super::engine::{Db, Row};
use crate::returns::{
    AcceptedDeposit, CrmFile, CrmRate, CurrentRate, DownloadEnd, DownloadState, FollowRecord,
    FollowState, FollowSummary, FollowUpdate, ListedReturn, NewFollow, ReadResult, ReturnAnomaly,
    ReturnDetail, ReturnRecord, ScanCursor,
};

macro_rules! follow_select {
    ($rest:literal) => {
        concat!(
            "SELECT f.deposit_id, f.idflux, f.user_id, f.siret, f.month, f.due_at, f.started_at, \
             f.until_at, f.state, f.phase_started_at, f.polls, f.next_at, f.last_polled_at, \
             f.message, f.lease_owner, f.lease_until, f.updated_at FROM return_follows f ",
            $rest
        )
    };
}

fn follow_of(r: &Row<'_>) -> anyhow::Result<FollowRecord> {
    let state: String = r.get(8)?;
    Ok(FollowRecord {
        deposit_id: r.get(0)?,
        idflux: r.get(1)?,
        user_id: r.get(2)?,
        siret: r.get(3)?,
        month: r.get(4)?,
        due_at: r.get(5)?,
        started_at: r.get(6)?,
        until_at: r.get(7)?,
        state: FollowState::from_code(&state)
            .ok_or_else(|| anyhow::anyhow!("unknown follow state {state} stored"))?,
        phase_started_at: r.get(9)?,
        polls: r.get(10)?,
        next_at: r.get(11)?,
        last_polled_at: r.get(12)?,
        message: r.get(13)?,
        lease_owner: r.get(14)?,
        lease_until: r.get(15)?,
        updated_at: r.get(16)?,
    })
}

macro_rules! return_select {
    ($rest:literal) => {
        concat!(
            "SELECT r.id, r.idflux, r.deposit_id, r.user_id, r.nature, r.statut, r.publication, \
             r.production, r.return_id, r.url, r.version, r.overwritten_at, r.seen_at, \
             r.download_state, r.attempts, r.next_try_at, r.message, r.file_path, r.sha256, \
             r.bytes, r.downloaded_at, r.read_status, r.lease_owner, r.lease_until \
             FROM dsn_returns r ",
            $rest
        )
    };
}

fn return_of(r: &Row<'_>) -> anyhow::Result<ReturnRecord> {
    let state: String = r.get(13)?;
    let nature: i64 = r.get(4)?;
    Ok(ReturnRecord {
        row: r.get(0)?,
        idflux: r.get(1)?,
        deposit_id: r.get(2)?,
        user_id: r.get(3)?,
        nature: u32::try_from(nature).unwrap_or(0),
        statut: r.get(5)?,
        publication: r.get(6)?,
        production: r.get(7)?,
        return_id: r.get(8)?,
        url: r.get(9)?,
        version: r.get(10)?,
        overwritten_at: r.get(11)?,
        seen_at: r.get(12)?,
        download_state: DownloadState::from_code(&state)
            .ok_or_else(|| anyhow::anyhow!("unknown download state {state} stored"))?,
        attempts: r.get(14)?,
        next_try_at: r.get(15)?,
        message: r.get(16)?,
        file_path: r.get(17)?,
        sha256: r.get(18)?,
        bytes: r.get(19)?,
        downloaded_at: r.get(20)?,
        read_status: r.get(21)?,
        lease_owner: r.get(22)?,
        lease_until: r.get(23)?,
    })
}

macro_rules! scan_select {
    ($rest:literal) => {
        concat!(
            "SELECT user_id, cursor_at, window_minutes, announced_minutes, next_at, \
             last_scan_at, message, lease_owner, lease_until FROM return_scans ",
            $rest
        )
    };
}

fn scan_of(r: &Row<'_>) -> anyhow::Result<ScanCursor> {
    Ok(ScanCursor {
        user_id: r.get(0)?,
        cursor_at: r.get(1)?,
        window_minutes: r.get(2)?,
        announced_minutes: r.get(3)?,
        next_at: r.get(4)?,
        last_scan_at: r.get(5)?,
        message: r.get(6)?,
        lease_owner: r.get(7)?,
        lease_until: r.get(8)?,
    })
}

fn anomalies_of(db: &mut Db<'_>, row: i64) -> anyhow::Result<Vec<ReturnAnomaly>> {
    db.query(
        "SELECT code, message, rubric, category FROM return_anomalies WHERE return_row = $1 \
         ORDER BY seq",
        &[&row],
        |r| {
            Ok(ReturnAnomaly {
                code: r.get(0)?,
                message: r.get(1)?,
                rubric: r.get(2)?,
                category: r.get(3)?,
            })
        },
    )
}

/// The CRM read from return `row`: (its id, identifier, number of rates).
fn crm_of(db: &mut Db<'_>, row: i64) -> anyhow::Result<Option<(i64, String, i64)>> {
    db.query_opt(
        "SELECT c.id, c.identifiant, (SELECT count(*) FROM pas_rates p WHERE p.crm_id = c.id) \
         FROM pas_crms c WHERE c.return_row = $1",
        &[&row],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

fn follow_by_id(db: &mut Db<'_>, id: i64) -> anyhow::Result<Option<FollowRecord>> {
    db.query_opt(follow_select!("WHERE f.deposit_id = $1"), &[&id], follow_of)
}

fn return_by_row(db: &mut Db<'_>, row: i64) -> anyhow::Result<Option<ReturnRecord>> {
    db.query_opt(return_select!("WHERE r.id = $1"), &[&row], return_of)
}

fn returns_of_flux_db(db: &mut Db<'_>, idflux: &str) -> anyhow::Result<Vec<ReturnRecord>> {
    db.query(
        return_select!("WHERE r.idflux = $1 ORDER BY r.nature, r.version, r.id"),
        &[&idflux],
        return_of,
    )
}

/// The filter "deposits `user` may see" (requested by them or made with their identity)
/// as two parameters; `None`: all.
fn who(for_user: &Option<(i64, String)>) -> (i64, String, i64) {
    match for_user {
        Some((id, name)) => (*id, name.clone(), 0),
        None => (0, String::new(), 1),
    }
}

impl Store {
    /// Accepted deposits (with their idflux) not followed yet, oldest first.
    pub async fn deposits_to_follow(&self, limit: i64) -> anyhow::Result<Vec<AcceptedDeposit>> {
        self.read(move |db| {
            db.query(
                "SELECT d.id, d.idflux, d.user_id, d.siret, d.month, \
                 COALESCE(d.attempt_ended_at, d.attempt_started_at, d.updated_at) \
                 FROM deposits d LEFT JOIN return_follows f ON f.deposit_id = d.id \
                 WHERE d.state = 'accepted' AND d.idflux IS NOT NULL AND f.deposit_id IS NULL \
                 ORDER BY d.id LIMIT $1",
                &[&limit],
                |r| {
                    Ok(AcceptedDeposit {
                        id: r.get(0)?,
                        idflux: r.get(1)?,
                        user_id: r.get(2)?,
                        siret: r.get(3)?,
                        month: r.get(4)?,
                        accepted_at: r.get(5)?,
                    })
                },
            )
        })
        .await
    }

    /// Starts following these deposits (those already followed are left as they are);
    /// returns already listed for their flux (by a declarant's scan) become theirs.
    pub async fn start_follows(&self, new: Vec<NewFollow>, now: i64) -> anyhow::Result<u64> {
        self.write_when_free(move |db| {
            let mut n = 0;
            for f in &new {
                n += db.execute(
                    "INSERT INTO return_follows (deposit_id, idflux, user_id, siret, month, due_at, \
                     started_at, until_at, state, phase_started_at, polls, next_at, message, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'following', $7, 0, $9, '', $10) \
                     ON CONFLICT (deposit_id) DO NOTHING",
                    &[
                        &f.deposit_id,
                        &f.idflux,
                        &f.user_id,
                        &f.siret,
                        &f.month,
                        &f.due_at,
                        &f.started_at,
                        &f.until_at,
                        &f.next_at,
                        &now,
                    ],
                )?;
                db.execute(
                    "UPDATE dsn_returns SET deposit_id = $1 WHERE idflux = $2 AND deposit_id IS NULL",
                    &[&f.deposit_id, &f.idflux],
                )?;
            }
            Ok(n)
        })
        .await
    }

    /// Deposits being followed whose next listing is due (`all`: whatever its time) and
    /// whose lease is free or expired.
    pub async fn follows_due(&self, now: i64, all: bool, limit: i64) -> anyhow::Result<Vec<i64>> {
        let all = i64::from(all);
        self.read(move |db| {
            db.query(
                "SELECT deposit_id FROM return_follows WHERE state = 'following' \
                 AND (next_at <= $1 OR CAST($2 AS BIGINT) = 1) \
                 AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_at, deposit_id LIMIT $3",
                &[&now, &all, &limit],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Takes the lease of the following of deposit `id` if it is still followed and its
    /// lease is free or expired.
    pub async fn lease_follow(
        &self,
        id: i64,
        owner: String,
        now: i64,
        until: i64,
    ) -> anyhow::Result<Option<FollowRecord>> {
        self.write_when_free(move |db| {
            let n = db.execute(
                "UPDATE return_follows SET lease_owner = $2, lease_until = $3 WHERE deposit_id = $1 \
                 AND state = 'following' AND (lease_until IS NULL OR lease_until < $4)",
                &[&id, &owner, &until, &now],
            )?;
            if n == 1 { follow_by_id(db, id) } else { Ok(None) }
        })
        .await
    }

    /// Writes what a listing did and frees the lease, if `owner` still holds it.
    pub async fn finish_follow(
        &self,
        id: i64,
        owner: String,
        u: FollowUpdate,
        now: i64,
    ) -> anyhow::Result<bool> {
        self.read(move |db| {
            Ok(db.execute(
                "UPDATE return_follows SET state = $3, phase_started_at = $4, polls = $5, \
                 next_at = $6, last_polled_at = $7, message = $8, updated_at = $9, \
                 lease_owner = NULL, lease_until = NULL WHERE deposit_id = $1 AND lease_owner = $2",
                &[
                    &id,
                    &owner,
                    &u.state.code(),
                    &u.phase_started_at,
                    &u.polls,
                    &u.next_at,
                    &u.last_polled_at,
                    &u.message,
                    &now,
                ],
            )? == 1)
        })
        .await
    }

    /// Extends a lease on a following, a return or a scan still held by `owner`.
    pub async fn renew_return_lease(
        &self,
        what: LeaseOf,
        owner: String,
        until: i64,
    ) -> anyhow::Result<bool> {
        self.read(move |db| {
            let n = match what {
                LeaseOf::Follow(id) => db.execute(
                    "UPDATE return_follows SET lease_until = $3 WHERE deposit_id = $1 AND lease_owner = $2",
                    &[&id, &owner, &until],
                )?,
                LeaseOf::Return(row) => db.execute(
                    "UPDATE dsn_returns SET lease_until = $3 WHERE id = $1 AND lease_owner = $2",
                    &[&row, &owner, &until],
                )?,
                LeaseOf::Scan(user) => db.execute(
                    "UPDATE return_scans SET lease_until = $3 WHERE user_id = $1 AND lease_owner = $2",
                    &[&user, &owner, &until],
                )?,
            };
            Ok(n == 1)
        })
        .await
    }

    pub async fn follow_record(&self, deposit_id: i64) -> anyhow::Result<Option<FollowRecord>> {
        self.read(move |db| follow_by_id(db, deposit_id)).await
    }

    /// Records what a listing gave: each return not seen before is a new row (a new
    /// version when its flux already had one of that nature: the older version is then
    /// overwritten, and the new one too if an even newer one is already known); a known
    /// one gets its status and dates as listed. The new rows, in the listing's order.
    pub async fn record_listed_returns(
        &self,
        listed: Vec<ListedReturn>,
        user_id: Option<i64>,
        now: i64,
    ) -> anyhow::Result<Vec<ReturnRecord>> {
        self.write(move |db| {
            // A following and a scan may list the same flux at once: each flux's versions
            // are decided under its lock, taken in one order (no two calls wait on each
            // other's).
            let mut fluxes: Vec<&str> = listed.iter().map(|l| l.idflux.as_str()).collect();
            fluxes.sort_unstable();
            fluxes.dedup();
            for idflux in fluxes {
                db.lock_key(&format!("returns:{idflux}"))?;
            }
            let mut new_rows = Vec::new();
            for l in &listed {
                let nature = i64::from(l.nature);
                let known: Option<i64> = db.query_opt(
                    "SELECT id FROM dsn_returns WHERE idflux = $1 AND nature = $2 AND return_id = $3",
                    &[&l.idflux, &nature, &l.id],
                    |r| r.get(0),
                )?;
                if let Some(row) = known {
                    db.execute(
                        "UPDATE dsn_returns SET statut = $2, publication = $3, production = $4 \
                         WHERE id = $1",
                        &[&row, &l.statut, &l.publication, &l.production],
                    )?;
                    continue;
                }
                let deposit: Option<i64> = db.query_opt(
                    "SELECT id FROM deposits WHERE idflux = $1",
                    &[&l.idflux],
                    |r| r.get(0),
                )?;
                let version: i64 = db.query_value(
                    "SELECT COALESCE(max(version), 0) + 1 FROM dsn_returns WHERE idflux = $1 AND nature = $2",
                    &[&l.idflux, &nature],
                )?;
                let newer: i64 = db.query_value(
                    "SELECT count(*) FROM dsn_returns WHERE idflux = $1 AND nature = $2 \
                     AND overwritten_at IS NULL AND publication > $3",
                    &[&l.idflux, &nature, &l.publication],
                )?;
                let state = if l.id.is_empty() || l.url.is_empty() {
                    DownloadState::None
                } else {
                    DownloadState::Pending
                };
                let overwritten = (newer > 0).then_some(now);
                let row: i64 = db.query_value(
                    "INSERT INTO dsn_returns (idflux, deposit_id, user_id, nature, statut, \
                     publication, production, return_id, url, version, overwritten_at, seen_at, \
                     download_state, attempts, next_try_at, message) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, 0, '') \
                     RETURNING id",
                    &[
                        &l.idflux,
                        &deposit,
                        &user_id,
                        &nature,
                        &l.statut,
                        &l.publication,
                        &l.production,
                        &l.id,
                        &l.url,
                        &version,
                        &overwritten,
                        &now,
                        &state.code(),
                    ],
                )?;
                if overwritten.is_none() {
                    db.execute(
                        "UPDATE dsn_returns SET overwritten_at = $4 WHERE idflux = $1 AND nature = $2 \
                         AND id <> $3 AND overwritten_at IS NULL",
                        &[&l.idflux, &nature, &row, &now],
                    )?;
                }
                if let Some(r) = return_by_row(db, row)? {
                    new_rows.push(r);
                }
            }
            Ok(new_rows)
        })
        .await
    }

    /// Current returns whose document is to be downloaded now (pending, or failed and
    /// due again) and whose lease is free or expired.
    pub async fn returns_to_download(&self, now: i64, limit: i64) -> anyhow::Result<Vec<i64>> {
        self.read(move |db| {
            db.query(
                "SELECT id FROM dsn_returns WHERE download_state IN ('pending', 'failed') \
                 AND overwritten_at IS NULL AND next_try_at <= $1 \
                 AND (lease_until IS NULL OR lease_until < $1) ORDER BY id LIMIT $2",
                &[&now, &limit],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Takes the lease of return `row` to download it, if it is still to download.
    pub async fn lease_return(
        &self,
        row: i64,
        owner: String,
        now: i64,
        until: i64,
    ) -> anyhow::Result<Option<ReturnRecord>> {
        self.write_when_free(move |db| {
            let n = db.execute(
                "UPDATE dsn_returns SET lease_owner = $2, lease_until = $3 WHERE id = $1 \
                 AND download_state IN ('pending', 'failed') AND overwritten_at IS NULL \
                 AND (lease_until IS NULL OR lease_until < $4)",
                &[&row, &owner, &until, &now],
            )?;
            if n == 1 {
                return_by_row(db, row)
            } else {
                Ok(None)
            }
        })
        .await
    }

    /// Writes how the download of `row` ended, with what reading it gave (anomalies, the
    /// CRM and its rates, all in one transaction), and frees its lease; false if `owner`
    /// no longer held it (nothing written).
    pub async fn finish_return(
        &self,
        row: i64,
        owner: String,
        end: DownloadEnd,
        now: i64,
    ) -> anyhow::Result<bool> {
        self.write(move |db| {
            db.lock_rows("SELECT id FROM dsn_returns WHERE id = $1 FOR UPDATE", &[&row])?;
            let held: Option<String> = db
                .query_opt(
                    "SELECT lease_owner FROM dsn_returns WHERE id = $1",
                    &[&row],
                    |r| r.get::<Option<String>>(0),
                )?
                .flatten();
            if held.as_deref() != Some(owner.as_str()) {
                return Ok(false);
            }
            match &end {
                DownloadEnd::Downloaded {
                    file_path,
                    sha256,
                    bytes,
                    read,
                } => {
                    let (status, message, anomalies, crm) = match read.as_ref() {
                        ReadResult::Conformity {
                            status,
                            anomalies,
                            message,
                        } => (Some(status.clone()), message.clone(), anomalies.as_slice(), None),
                        ReadResult::Crm {
                            status,
                            crm,
                            anomalies,
                            message,
                        } => (
                            Some(status.clone()),
                            message.clone(),
                            anomalies.as_slice(),
                            Some(crm),
                        ),
                        ReadResult::Kept { message } => (None, message.clone(), &[][..], None),
                    };
                    db.execute(
                        "UPDATE dsn_returns SET download_state = 'downloaded', file_path = $2, \
                         sha256 = $3, bytes = $4, downloaded_at = $5, read_status = $6, \
                         message = $7, attempts = attempts + 1 WHERE id = $1",
                        &[&row, file_path, sha256, bytes, &now, &status, &message],
                    )?;
                    db.execute("DELETE FROM return_anomalies WHERE return_row = $1", &[&row])?;
                    for (i, a) in anomalies.iter().enumerate() {
                        db.execute(
                            "INSERT INTO return_anomalies (return_row, seq, code, message, rubric, \
                             category) VALUES ($1, $2, $3, $4, $5, $6)",
                            &[&row, &(i as i64), &a.code, &a.message, &a.rubric, &a.category],
                        )?;
                    }
                    db.execute("DELETE FROM pas_crms WHERE return_row = $1", &[&row])?;
                    if let Some(c) = crm {
                        let crm_id: i64 = db.query_value(
                            "INSERT INTO pas_crms (return_row, siret, identifiant, available_on, \
                             valid_until, file_name, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                             RETURNING id",
                            &[
                                &row,
                                &c.siret,
                                &c.identifiant,
                                &c.available_on,
                                &c.valid_until,
                                &c.file_name,
                                &now,
                            ],
                        )?;
                        for (i, p) in c.rates.iter().enumerate() {
                            db.execute(
                                "INSERT INTO pas_rates (crm_id, seq, siret, nir_or_ntt, ntt, matricule, \
                                 rate, rate_hundredths, future_rate, future_rate_hundredths, \
                                 future_effective_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                                &[
                                    &crm_id,
                                    &(i as i64),
                                    &c.siret,
                                    &p.nir_or_ntt,
                                    &i64::from(p.ntt),
                                    &p.matricule,
                                    &p.rate,
                                    &p.rate_hundredths,
                                    &p.future_rate,
                                    &p.future_rate_hundredths,
                                    &p.future_effective_on,
                                ],
                            )?;
                        }
                    }
                }
                DownloadEnd::Refused(message) | DownloadEnd::Gone(message) => {
                    let state = if matches!(end, DownloadEnd::Refused(_)) {
                        DownloadState::Refused
                    } else {
                        DownloadState::Gone
                    };
                    db.execute(
                        "UPDATE dsn_returns SET download_state = $2, message = $3, \
                         attempts = attempts + 1 WHERE id = $1",
                        &[&row, &state.code(), message],
                    )?;
                }
                DownloadEnd::Failed {
                    message,
                    next_try_at,
                } => {
                    db.execute(
                        "UPDATE dsn_returns SET download_state = 'failed', message = $2, \
                         next_try_at = $3, attempts = attempts + 1 WHERE id = $1",
                        &[&row, message, next_try_at],
                    )?;
                }
            }
            db.execute(
                "UPDATE dsn_returns SET lease_owner = NULL, lease_until = NULL WHERE id = $1",
                &[&row],
            )?;
            Ok(true)
        })
        .await
    }

    pub async fn return_record(&self, row: i64) -> anyhow::Result<Option<ReturnRecord>> {
        self.read(move |db| return_by_row(db, row)).await
    }

    /// Every version of every return of a flux, by nature and version.
    pub async fn returns_of_flux(&self, idflux: String) -> anyhow::Result<Vec<ReturnRecord>> {
        self.read(move |db| returns_of_flux_db(db, &idflux)).await
    }

    /// The returns of deposit `deposit_id` (every version), each with its anomalies and,
    /// for a CRM, its identifier and number of rates.
    pub async fn returns_of_deposit(&self, deposit_id: i64) -> anyhow::Result<Vec<ReturnDetail>> {
        self.read(move |db| {
            let rows = db.query(
                return_select!("WHERE r.deposit_id = $1 ORDER BY r.nature, r.version, r.id"),
                &[&deposit_id],
                return_of,
            )?;
            rows.into_iter()
                .map(|r| {
                    let anomalies = anomalies_of(db, r.row)?;
                    let crm = crm_of(db, r.row)?.map(|(_, id, n)| (id, n));
                    Ok(ReturnDetail {
                        record: r,
                        anomalies,
                        crm,
                    })
                })
                .collect()
        })
        .await
    }

    /// The current rate of each employee: among the rates of CRMs whose return is not
    /// overwritten, per (SIRET, NIR/NTT, matricule), the newest one still valid on `today`
    /// (`YYYY-MM-DD`), else (with `include_expired`) the newest one. `siret`: only that
    /// establishment; `for_user`: only CRMs of deposits that account requested or made.
    pub async fn current_rates(
        &self,
        siret: Option<String>,
        for_user: Option<(i64, String)>,
        today: String,
        include_expired: bool,
    ) -> anyhow::Result<Vec<CurrentRate>> {
        let (uid, uname, everyone) = who(&for_user);
        let siret_filter = siret.clone().unwrap_or_default();
        let any_siret = i64::from(siret.is_none());
        self.read(move |db| {
            let all = db.query(
                "SELECT p.siret, p.nir_or_ntt, p.ntt, p.matricule, p.rate, p.rate_hundredths, \
                 p.future_rate, p.future_rate_hundredths, p.future_effective_on, c.identifiant, \
                 c.available_on, c.valid_until, c.id, r.deposit_id, r.idflux \
                 FROM pas_rates p JOIN pas_crms c ON c.id = p.crm_id \
                 JOIN dsn_returns r ON r.id = c.return_row \
                 LEFT JOIN deposits d ON d.id = r.deposit_id \
                 WHERE r.overwritten_at IS NULL \
                 AND (CAST($1 AS BIGINT) = 1 OR p.siret = $2) \
                 AND (CAST($3 AS BIGINT) = 1 OR d.user_id = $4 OR lower(d.requested_by) = lower($5)) \
                 ORDER BY p.siret, p.nir_or_ntt, p.matricule, c.available_on DESC, c.id DESC",
                &[&any_siret, &siret_filter, &everyone, &uid, &uname],
                |r| {
                    let valid_until: String = r.get(11)?;
                    Ok(CurrentRate {
                        siret: r.get(0)?,
                        rate: CrmRate {
                            nir_or_ntt: r.get(1)?,
                            ntt: r.get::<i64>(2)? != 0,
                            matricule: r.get(3)?,
                            rate: r.get(4)?,
                            rate_hundredths: r.get(5)?,
                            future_rate: r.get(6)?,
                            future_rate_hundredths: r.get(7)?,
                            future_effective_on: r.get(8)?,
                        },
                        identifiant: r.get(9)?,
                        available_on: r.get(10)?,
                        valid: valid_until.as_str() >= today.as_str(),
                        valid_until,
                        crm_id: r.get(12)?,
                        deposit_id: r.get(13)?,
                        idflux: r.get(14)?,
                    })
                },
            )?;
            // Rows come newest first within each employee: keep the first valid one, else
            // the first one.
            let mut out: Vec<CurrentRate> = Vec::new();
            let mut i = 0;
            while i < all.len() {
                let key = |c: &CurrentRate| {
                    (
                        c.siret.clone(),
                        c.rate.nir_or_ntt.clone(),
                        c.rate.matricule.clone(),
                    )
                };
                let k = key(&all[i]);
                let mut j = i;
                while j < all.len() && key(&all[j]) == k {
                    j += 1;
                }
                let group = &all[i..j];
                if let Some(v) = group.iter().find(|c| c.valid) {
                    out.push(v.clone());
                } else if include_expired {
                    out.push(group[0].clone());
                }
                i = j;
            }
            Ok(out)
        })
        .await
    }

    /// The establishments of the CRMs read from any version of `idflux`'s returns.
    pub async fn crm_sirets_of_flux(&self, idflux: String) -> anyhow::Result<Vec<String>> {
        self.read(move |db| {
            db.query(
                "SELECT DISTINCT c.siret FROM pas_crms c JOIN dsn_returns r ON r.id = c.return_row \
                 WHERE r.idflux = $1 ORDER BY c.siret",
                &[&idflux],
                |r| r.get(0),
            )
        })
        .await
    }

    /// The CRMs of an establishment with their kept documents, current and overwritten.
    pub async fn crm_files(&self, siret: String) -> anyhow::Result<Vec<CrmFile>> {
        self.read(move |db| {
            db.query(
                "SELECT c.id, c.file_name, r.file_path, r.overwritten_at FROM pas_crms c \
                 JOIN dsn_returns r ON r.id = c.return_row WHERE c.siret = $1 ORDER BY c.id",
                &[&siret],
                |r| {
                    Ok(CrmFile {
                        crm_id: r.get(0)?,
                        file_name: r.get(1)?,
                        file_path: r.get::<Option<String>>(2)?.unwrap_or_default(),
                        current: r.get::<Option<i64>>(3)?.is_none(),
                    })
                },
            )
        })
        .await
    }

    /// Every following (`siret`: of that establishment; `for_user`: of deposits that
    /// account requested or made), newest deposit first, with what came back.
    pub async fn follow_summaries(
        &self,
        siret: Option<String>,
        for_user: Option<(i64, String)>,
    ) -> anyhow::Result<Vec<FollowSummary>> {
        let (uid, uname, everyone) = who(&for_user);
        let siret_filter = siret.clone().unwrap_or_default();
        let any_siret = i64::from(siret.is_none());
        self.read(move |db| {
            let follows = db.query(
                follow_select!(
                    "JOIN deposits d ON d.id = f.deposit_id \
                     WHERE (CAST($1 AS BIGINT) = 1 OR f.siret = $2) \
                     AND (CAST($3 AS BIGINT) = 1 OR d.user_id = $4 OR lower(d.requested_by) = lower($5)) \
                     ORDER BY f.deposit_id DESC"
                ),
                &[&any_siret, &siret_filter, &everyone, &uid, &uname],
                follow_of,
            )?;
            let mut out = Vec::with_capacity(follows.len());
            for follow in follows {
                let returns = returns_of_flux_db(db, &follow.idflux)?;
                let current = |n: u32| {
                    returns
                        .iter()
                        .rev()
                        .find(|r| r.nature == n && r.is_current())
                        .cloned()
                };
                let conformity = current(11);
                let anomaly_count = match &conformity {
                    Some(c) => db.query_value(
                        "SELECT count(*) FROM return_anomalies WHERE return_row = $1",
                        &[&c.row],
                    )?,
                    None => 0,
                };
                let crm = match current(94) {
                    Some(r) => crm_of(db, r.row)?.map(|(_, id, n)| (r, id, n)),
                    None => None,
                };
                out.push(FollowSummary {
                    aee: current(10),
                    conformity,
                    anomaly_count,
                    crm,
                    refused_count: returns
                        .iter()
                        .filter(|r| r.download_state == DownloadState::Refused)
                        .count() as i64,
                    gone_count: returns
                        .iter()
                        .filter(|r| r.download_state == DownloadState::Gone)
                        .count() as i64,
                    follow,
                });
            }
            Ok(out)
        })
        .await
    }

    /// The accounts to scan (those whose identity made an accepted deposit and that still
    /// have credentials), each with its first accepted deposit's time.
    pub async fn scan_accounts(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        self.read(|db| {
            db.query(
                "SELECT d.user_id, min(COALESCE(d.attempt_started_at, d.created_at)) FROM deposits d \
                 JOIN credentials c ON c.user_id = d.user_id \
                 WHERE d.state = 'accepted' AND d.idflux IS NOT NULL GROUP BY d.user_id ORDER BY d.user_id",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    /// Takes the lease of `user_id`'s scan (created at `cursor_at` with windows of
    /// `window_minutes` the first time) if it is due (`all`: whatever its time) and free.
    #[allow(clippy::too_many_arguments)]
    pub async fn lease_scan(
        &self,
        user_id: i64,
        owner: String,
        now: i64,
        until: i64,
        cursor_at: i64,
        window_minutes: i64,
        all: bool,
    ) -> anyhow::Result<Option<ScanCursor>> {
        let all = i64::from(all);
        self.write_when_free(move |db| {
            db.execute(
                "INSERT INTO return_scans (user_id, cursor_at, window_minutes, next_at, message, \
                 updated_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (user_id) DO NOTHING",
                &[&user_id, &cursor_at, &window_minutes, &now],
            )?;
            let n = db.execute(
                "UPDATE return_scans SET lease_owner = $2, lease_until = $3 WHERE user_id = $1 \
                 AND (next_at <= $4 OR CAST($5 AS BIGINT) = 1) \
                 AND (lease_until IS NULL OR lease_until < $4)",
                &[&user_id, &owner, &until, &now, &all],
            )?;
            if n == 1 {
                db.query_opt(scan_select!("WHERE user_id = $1"), &[&user_id], scan_of)
            } else {
                Ok(None)
            }
        })
        .await
    }

    /// Moves `user_id`'s scan on (`release`: and frees its lease), if `owner` holds it.
    #[allow(clippy::too_many_arguments)]
    pub async fn advance_scan(
        &self,
        user_id: i64,
        owner: String,
        cursor_at: i64,
        window_minutes: i64,
        announced_minutes: Option<i64>,
        next_at: i64,
        message: String,
        release: bool,
        now: i64,
    ) -> anyhow::Result<bool> {
        let release = i64::from(release);
        self.read(move |db| {
            Ok(db.execute(
                "UPDATE return_scans SET cursor_at = $3, window_minutes = $4, \
                 announced_minutes = COALESCE(CAST($5 AS BIGINT), announced_minutes), next_at = $6, \
                 message = $7, last_scan_at = $8, updated_at = $8, \
                 lease_owner = CASE WHEN CAST($9 AS BIGINT) = 1 THEN NULL ELSE lease_owner END, \
                 lease_until = CASE WHEN CAST($9 AS BIGINT) = 1 THEN NULL ELSE lease_until END \
                 WHERE user_id = $1 AND lease_owner = $2",
                &[
                    &user_id,
                    &owner,
                    &cursor_at,
                    &window_minutes,
                    &announced_minutes,
                    &next_at,
                    &message,
                    &now,
                    &release,
                ],
            )? == 1)
        })
        .await
    }

    pub async fn scan_cursor(&self, user_id: i64) -> anyhow::Result<Option<ScanCursor>> {
        self.read(move |db| db.query_opt(scan_select!("WHERE user_id = $1"), &[&user_id], scan_of))
            .await
    }
}

/// Tries of a write that finds the database busy (each waits SQLite's busy timeout).
const BUSY_TRIES: u32 = 10;

/// Whether `e` is the database being busy: SQLite's busy timeout ran out while another
/// connection (another orchestrator on the same file) held the write lock.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    })
}

impl Store {
    /// [`Store::write`], asked again while the database is busy (at most [`BUSY_TRIES`]
    /// times): taking a lease must not fail because another orchestrator's transaction
    /// outlasted SQLite's busy timeout.
    async fn write_when_free<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: Fn(&mut Db<'_>) -> anyhow::Result<T> + Clone + Send + 'static,
    {
        let mut tries = 1;
        loop {
            match self.write(f.clone()).await {
                Err(e) if tries < BUSY_TRIES && is_busy(&e) => {
                    tries += 1;
                    tracing::warn!(tries, "database busy: the returns lease is asked again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                r => return r,
            }
        }
    }
}

/// Which lease [`Store::renew_return_lease`] extends.
#[derive(Debug, Clone, Copy)]
pub enum LeaseOf {
    Follow(i64),
    Return(i64),
    Scan(i64),
}

#[cfg(test)]
impl Store {
    /// Another orchestrator in a long write transaction on the database at `url`: from a
    /// connection of its own, takes the write lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
    /// the returns tables locked against writes, reads still allowed, as SQLite's WAL
    /// allows them) and holds it for `hold` on a thread of its own. Returns once the lock
    /// is held; the thread ends once it is released.
    pub(crate) fn hold_write_lock_for_tests(
        url: &super::DatabaseUrl,
        hold: std::time::Duration,
    ) -> std::thread::JoinHandle<()> {
        let url = url.clone();
        let (held, taken) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut conn = Store::connect(&url).expect("a second connection");
            match &mut conn {
                super::engine::Conn::Sqlite(c) => c.execute_batch("BEGIN IMMEDIATE").unwrap(),
                super::engine::Conn::Postgres { client, .. } => client
                    .batch_execute(
                        "BEGIN; LOCK TABLE return_follows, dsn_returns, return_scans \
                         IN EXCLUSIVE MODE",
                    )
                    .unwrap(),
            }
            held.send(()).unwrap();
            std::thread::sleep(hold);
            match &mut conn {
                super::engine::Conn::Sqlite(c) => c.execute_batch("ROLLBACK").unwrap(),
                super::engine::Conn::Postgres { client, .. } => {
                    client.batch_execute("ROLLBACK").unwrap()
                }
            }
        });
        taken.recv().expect("the lock taken");
        thread
    }
}

#[cfg(test)]
mod tests {
    //! On the engine of the test run (SQLite, or PostgreSQL with `IEA_TEST_DATABASE_URL`).

    use super::*;
    use crate::deposits::{NewDeposit, State};
    use crate::returns::{CrmRecord, FollowState};
    use crate::store::Transition;
    use crate::store::testing::store;
    use crate::users::Role;

    const SIRET: &str = "78214563500010";

    async fn accepted(s: &Store, user: i64, idflux: &str) -> i64 {
        let d = s
            .insert_deposit(
                NewDeposit {
                    requested_by: "Administrateur".into(),
                    user_id: Some(user),
                    siret: SIRET.into(),
                    month: "2026-11".into(),
                    nature: "01".into(),
                    kind: "03".into(),
                    fraction: "11".into(),
                    essai_reel: "02".into(),
                    file_name: "dsn.txt".into(),
                    file_path: format!("/nowhere/{idflux}.dsn"),
                    sha256: idflux.into(),
                    bytes: 10,
                    source_path: None,
                },
                5,
            )
            .await
            .unwrap()
            .unwrap();
        let t = Transition {
            state: Some(State::Accepted),
            idflux: Some(idflux.into()),
            user_id: Some(user),
            ..Default::default()
        };
        s.decide_deposit(d.id, &[State::Checked], t, 6)
            .await
            .unwrap();
        d.id
    }

    fn listed(idflux: &str, nature: u32, id: &str, publication: &str) -> ListedReturn {
        ListedReturn {
            idflux: idflux.into(),
            publication: publication.into(),
            production: publication.into(),
            nature,
            statut: "OK".into(),
            id: id.into(),
            url: format!("https://ne.test/telecharger-retour/1.0/{idflux}/{id}"),
        }
    }

    fn crm_end(identifiant: &str, rate: &str, available_on: &str) -> DownloadEnd {
        DownloadEnd::Downloaded {
            file_path: "/kept.xml".into(),
            sha256: "ab".into(),
            bytes: 10,
            read: Box::new(ReadResult::Crm {
                status: "OK".into(),
                crm: CrmRecord {
                    siret: SIRET.into(),
                    identifiant: identifiant.into(),
                    available_on: available_on.into(),
                    valid_until: crate::returns::valid_until_of(available_on).unwrap(),
                    file_name: format!("crm-{identifiant}.xml"),
                    rates: vec![CrmRate {
                        nir_or_ntt: "1850775123456".into(),
                        ntt: false,
                        matricule: "M-1".into(),
                        rate: rate.into(),
                        rate_hundredths: Some(750),
                        future_rate: String::new(),
                        future_rate_hundredths: None,
                        future_effective_on: String::new(),
                    }],
                },
                anomalies: vec![ReturnAnomaly {
                    code: "TST01".into(),
                    message: "Taux appliqué différent.".into(),
                    rubric: "S21.G00.50.006".into(),
                    category: "non-bloquant".into(),
                }],
                message: "CRM reçu.".into(),
            }),
        }
    }

    #[tokio::test]
    async fn returns_versions_crms_and_rates_round_trip() {
        let t = store().await;
        let s = &t.store;
        let user = s
            .insert_first_user("Administrateur", Role::Administrator, "h", 1)
            .await
            .unwrap();
        let id = accepted(s, user, "F1").await;
        let todo = s.deposits_to_follow(10).await.unwrap();
        assert_eq!(todo.len(), 1);
        assert_eq!((todo[0].id, todo[0].idflux.as_str()), (id, "F1"));
        let new = NewFollow {
            deposit_id: id,
            idflux: "F1".into(),
            user_id: Some(user),
            siret: SIRET.into(),
            month: "2026-11".into(),
            due_at: 1000,
            started_at: 6,
            until_at: 5000,
            next_at: 66,
        };
        assert_eq!(s.start_follows(vec![new.clone()], 7).await.unwrap(), 1);
        assert_eq!(s.start_follows(vec![new], 7).await.unwrap(), 0, "once");
        assert!(s.deposits_to_follow(10).await.unwrap().is_empty());
        assert!(s.follows_due(65, false, 10).await.unwrap().is_empty());
        assert_eq!(s.follows_due(66, false, 10).await.unwrap(), vec![id]);
        let f = s
            .lease_follow(id, "me".into(), 66, 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((f.state, f.next_at), (FollowState::Following, 66));
        assert!(
            s.lease_follow(id, "other".into(), 67, 100)
                .await
                .unwrap()
                .is_none()
        );
        let u = FollowUpdate {
            state: FollowState::Following,
            phase_started_at: 6,
            polls: 1,
            next_at: 200,
            last_polled_at: Some(66),
            message: "En attente.".into(),
        };
        assert!(
            !s.finish_follow(id, "other".into(), u.clone(), 70)
                .await
                .unwrap()
        );
        assert!(s.finish_follow(id, "me".into(), u, 70).await.unwrap());
        let f = s.follow_record(id).await.unwrap().unwrap();
        assert_eq!((f.polls, f.next_at, f.lease_owner), (1, 200, None));

        // Listed twice: recorded once; an overwrite is a new version.
        let first = vec![listed("F1", 94, "A", "20261216120000")];
        assert_eq!(
            s.record_listed_returns(first.clone(), Some(user), 80)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            s.record_listed_returns(first, Some(user), 81)
                .await
                .unwrap()
                .is_empty()
        );
        let row_a = s.returns_of_flux("F1".into()).await.unwrap()[0].row;
        assert_eq!(s.returns_to_download(90, 10).await.unwrap(), vec![row_a]);
        let other = Store::open(&t.url).await.unwrap();
        let (a, b) = tokio::join!(
            s.lease_return(row_a, "me".into(), 90, 200),
            other.lease_return(row_a, "two".into(), 90, 200)
        );
        assert_eq!(
            [a.unwrap().is_some(), b.unwrap().is_some()]
                .iter()
                .filter(|x| **x)
                .count(),
            1,
            "one orchestrator downloads it"
        );
        let holder = if s
            .return_record(row_a)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .as_deref()
            == Some("me")
        {
            "me"
        } else {
            "two"
        };
        assert!(
            !s.finish_return(
                row_a,
                "nobody".into(),
                crm_end("111", "7.50", "2026-12-16"),
                95
            )
            .await
            .unwrap()
        );
        assert!(
            s.finish_return(
                row_a,
                holder.into(),
                crm_end("111", "7.50", "2026-12-16"),
                95
            )
            .await
            .unwrap()
        );
        let r = s.return_record(row_a).await.unwrap().unwrap();
        assert_eq!(
            (r.download_state, r.read_status.as_deref(), r.version),
            (DownloadState::Downloaded, Some("OK"), 1)
        );
        let details = s.returns_of_deposit(id).await.unwrap();
        assert_eq!(details[0].anomalies[0].rubric, "S21.G00.50.006");
        assert_eq!(details[0].crm, Some(("111".into(), 1)));
        let rates = s
            .current_rates(None, None, "2027-01-10".into(), false)
            .await
            .unwrap();
        assert_eq!(rates.len(), 1);
        assert_eq!(
            (rates[0].rate.rate.as_str(), rates[0].valid_until.as_str()),
            ("7.50", "2027-02-28")
        );
        // Past its validity: only with include_expired, marked so.
        assert!(
            s.current_rates(None, None, "2027-03-01".into(), false)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !s.current_rates(None, None, "2027-03-01".into(), true)
                .await
                .unwrap()[0]
                .valid
        );
        // Another account sees nothing of it.
        assert!(
            s.current_rates(
                None,
                Some((user + 1, "Bob".into())),
                "2027-01-10".into(),
                true
            )
            .await
            .unwrap()
            .is_empty()
        );
        assert_eq!(
            s.current_rates(
                Some(SIRET.into()),
                Some((user, "x".into())),
                "2027-01-10".into(),
                true
            )
            .await
            .unwrap()
            .len(),
            1
        );

        // The overwrite: version 2, the first no longer current nor used.
        let new = s
            .record_listed_returns(
                vec![listed("F1", 94, "B", "20261220120000")],
                Some(user),
                100,
            )
            .await
            .unwrap();
        assert_eq!(new[0].version, 2);
        assert!(
            s.return_record(row_a)
                .await
                .unwrap()
                .unwrap()
                .overwritten_at
                .is_some()
        );
        assert!(
            s.current_rates(None, None, "2027-01-10".into(), true)
                .await
                .unwrap()
                .is_empty()
        );
        let row_b = new[0].row;
        s.lease_return(row_b, "me".into(), 101, 200)
            .await
            .unwrap()
            .unwrap();
        s.finish_return(
            row_b,
            "me".into(),
            crm_end("222", "9.99", "2026-12-20"),
            102,
        )
        .await
        .unwrap();
        let rates = s
            .current_rates(None, None, "2027-01-10".into(), false)
            .await
            .unwrap();
        assert_eq!(
            (rates[0].identifiant.as_str(), rates[0].rate.rate.as_str()),
            ("222", "9.99")
        );
        let files = s.crm_files(SIRET.into()).await.unwrap();
        assert_eq!(
            files.iter().map(|f| f.current).collect::<Vec<_>>(),
            vec![false, true]
        );
        assert_eq!(
            s.crm_sirets_of_flux("F1".into()).await.unwrap(),
            vec![SIRET.to_owned()]
        );
        // An older version listed late stays overwritten.
        let late = s
            .record_listed_returns(
                vec![listed("F1", 94, "Z", "20261201120000")],
                Some(user),
                103,
            )
            .await
            .unwrap();
        assert!(late[0].overwritten_at.is_some());

        // Failed and gone downloads.
        let g = s
            .record_listed_returns(
                vec![listed("F1", 10, "G", "20261202120000")],
                Some(user),
                104,
            )
            .await
            .unwrap()[0]
            .row;
        s.lease_return(g, "me".into(), 105, 200)
            .await
            .unwrap()
            .unwrap();
        s.finish_return(
            g,
            "me".into(),
            DownloadEnd::Failed {
                message: "plus tard".into(),
                next_try_at: 500,
            },
            106,
        )
        .await
        .unwrap();
        assert!(s.returns_to_download(499, 10).await.unwrap().is_empty());
        assert_eq!(s.returns_to_download(500, 10).await.unwrap(), vec![g]);
        s.lease_return(g, "me".into(), 500, 600)
            .await
            .unwrap()
            .unwrap();
        s.finish_return(g, "me".into(), DownloadEnd::Gone("purgé".into()), 501)
            .await
            .unwrap();
        let g = s.return_record(g).await.unwrap().unwrap();
        assert_eq!((g.download_state, g.attempts), (DownloadState::Gone, 2));

        let summary = s.follow_summaries(None, None).await.unwrap();
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].crm.as_ref().map(|c| c.1.as_str()), Some("222"));
        assert_eq!(summary[0].gone_count, 1);

        // The scan cursor: created once, leased by one, moved on.
        let c = s
            .lease_scan(user, "me".into(), 10, 100, 1000, 10, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.cursor_at, c.window_minutes, c.announced_minutes),
            (1000, 10, None)
        );
        assert!(
            other
                .lease_scan(user, "two".into(), 11, 100, 0, 10, true)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.renew_return_lease(LeaseOf::Scan(user), "me".into(), 150)
                .await
                .unwrap()
        );
        assert!(
            s.advance_scan(
                user,
                "me".into(),
                4600,
                60,
                Some(60),
                300,
                String::new(),
                true,
                12
            )
            .await
            .unwrap()
        );
        assert!(
            s.lease_scan(user, "two".into(), 200, 300, 0, 10, false)
                .await
                .unwrap()
                .is_none(),
            "not due"
        );
        let c = other
            .lease_scan(user, "two".into(), 300, 400, 0, 10, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.cursor_at, c.window_minutes, c.announced_minutes),
            (4600, 60, Some(60))
        );
    }

    /// `iea database migrate` copies the returns, CRMs, rates and cursors too.
    #[tokio::test]
    async fn returns_are_copied_to_another_database() {
        let dir = tempfile::tempdir().unwrap();
        let from = Store::open_sqlite(&dir.path().join("from.db"))
            .await
            .unwrap();
        let user = from
            .insert_first_user("Administrateur", Role::Administrator, "h", 1)
            .await
            .unwrap();
        let id = accepted(&from, user, "F1").await;
        from.start_follows(
            vec![NewFollow {
                deposit_id: id,
                idflux: "F1".into(),
                user_id: Some(user),
                siret: SIRET.into(),
                month: "2026-11".into(),
                due_at: 1000,
                started_at: 6,
                until_at: 5000,
                next_at: 66,
            }],
            7,
        )
        .await
        .unwrap();
        let row = from
            .record_listed_returns(
                vec![listed("F1", 94, "A", "20261216120000")],
                Some(user),
                80,
            )
            .await
            .unwrap()[0]
            .row;
        from.lease_return(row, "me".into(), 90, 200)
            .await
            .unwrap()
            .unwrap();
        from.finish_return(row, "me".into(), crm_end("111", "7.50", "2026-12-16"), 95)
            .await
            .unwrap();
        from.lease_scan(user, "me".into(), 1, 2, 1000, 10, true)
            .await
            .unwrap();
        let to = store().await;
        let report = crate::store::copy_all(&from, &to.store).await.unwrap();
        let count = |t: &str| report.tables.iter().find(|(n, _)| *n == t).unwrap().1;
        assert_eq!(
            [
                count("return_follows"),
                count("dsn_returns"),
                count("return_anomalies"),
                count("pas_crms"),
                count("pas_rates"),
                count("return_scans")
            ],
            [1, 1, 1, 1, 1, 1]
        );
        let rates = to
            .store
            .current_rates(None, None, "2027-01-01".into(), false)
            .await
            .unwrap();
        assert_eq!(rates[0].identifiant, "111");
        // New rows get ids of their own.
        let next = to
            .store
            .record_listed_returns(
                vec![listed("F1", 11, "B", "20261216120000")],
                Some(user),
                99,
            )
            .await
            .unwrap();
        assert!(next[0].row > row);
    }
}
