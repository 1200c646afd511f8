//! What the deadline board reads: deposits, the establishments accounts deposit for, and
//! (from the returns' tables, which the returns module writes) conformities, CRMs and
//! current rates. Read only: the board writes nothing.

use super::Store;
use super::engine::Row;
use std::collections::{HashMap, HashSet};

use crate::board::{Conformity, ConformityAnomaly, ConformityFact, CrmFact, DepositFact};
use crate::deposits::{Anomaly, State};

fn deposit_of(r: &Row<'_>) -> anyhow::Result<DepositFact> {
    let state: String = r.get(3)?;
    let anomalies: Option<String> = r.get(6)?;
    let state = State::from_code(&state)
        .ok_or_else(|| anyhow::anyhow!("unknown deposit state {state} stored"))?;
    Ok(DepositFact {
        id: r.get(0)?,
        siret: r.get(1)?,
        month: r.get(2)?,
        state,
        idflux: r.get(4)?,
        created_at: r.get(5)?,
        anomalies: match anomalies {
            Some(j) => serde_json::from_str::<Vec<Anomaly>>(&j)?
                .into_iter()
                .map(|a| (a.code, a.message))
                .collect(),
            None => Vec::new(),
        },
        registered_at: if state == State::Accepted {
            r.get::<Option<i64>>(7)?.or(Some(r.get::<i64>(8)?))
        } else {
            None
        },
        user_id: r.get(9)?,
        requested_by: r.get(10)?,
        file_path: r.get(11)?,
        sha256: r.get(12)?,
        bytes: r.get(13)?,
    })
}

/// A rate of a CRM as stored (never logged).
pub struct RateRow {
    pub siret: String,
    /// NIR or NTT.
    pub employee: String,
    /// Empty: the CRM gave none.
    pub rate: String,
    /// `YYYY-MM-DD`.
    pub valid_until: String,
}

impl Store {
    /// Every deposit of a declared month `since` (`YYYY-MM`) or later.
    pub async fn board_deposits(&self, since: String) -> anyhow::Result<Vec<DepositFact>> {
        self.read(move |db| {
            db.query(
                "SELECT id, siret, month, state, idflux, created_at, anomalies, attempt_ended_at, \
                 updated_at, user_id, requested_by, file_path, sha256, bytes \
                 FROM deposits WHERE month >= $1 ORDER BY id",
                &[&since],
                deposit_of,
            )
        })
        .await
    }

    /// The establishments an account is designated to deposit for.
    pub async fn board_designated_sirets(&self) -> anyhow::Result<Vec<String>> {
        self.read(|db| {
            db.query(
                "SELECT siret FROM deposit_accounts ORDER BY siret",
                &[],
                |r| r.get(0),
            )
        })
        .await
    }

    /// The establishments a (non-administrator) account may see on the board: those of
    /// the deposits it requested or that were made with its identity, and those it is
    /// designated to deposit for.
    pub async fn board_sirets_of(&self, user_id: i64, name: String) -> anyhow::Result<Vec<String>> {
        self.read(move |db| {
            db.query(
                "SELECT DISTINCT siret FROM deposits WHERE user_id = $1 OR lower(requested_by) = lower($2) \
                 UNION SELECT siret FROM deposit_accounts WHERE user_id = $1",
                &[&user_id, &name],
                |r| r.get(0),
            )
        })
        .await
    }
}

impl Store {
    /// The current conformity return (nature 11, not overwritten) of each deposit among
    /// `deposit_ids`, with its anomalies (code and rubric) in order.
    /// Only deposits of a declared month `since` (`YYYY-MM`) or later are read.
    pub async fn board_conformities(
        &self,
        since: String,
        deposit_ids: Vec<i64>,
    ) -> anyhow::Result<Vec<ConformityFact>> {
        let wanted: HashSet<i64> = deposit_ids.into_iter().collect();
        self.read(move |db| {
            let returns: Vec<(i64, i64, String, i64)> = db.query(
                "SELECT r.id, r.deposit_id, r.statut, COALESCE(r.downloaded_at, r.seen_at) \
                 FROM dsn_returns r JOIN deposits d ON d.id = r.deposit_id \
                 WHERE r.nature = 11 AND r.overwritten_at IS NULL AND d.month >= $1 \
                 ORDER BY r.version, r.id",
                &[&since],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let anomalies: Vec<(i64, String, String)> = db.query(
                "SELECT a.return_row, a.code, a.rubric FROM return_anomalies a \
                 JOIN dsn_returns r ON r.id = a.return_row JOIN deposits d ON d.id = r.deposit_id \
                 WHERE r.nature = 11 AND r.overwritten_at IS NULL AND d.month >= $1 \
                 ORDER BY a.return_row, a.seq",
                &[&since],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let mut by_row: HashMap<i64, Vec<ConformityAnomaly>> = HashMap::new();
            for (row, code, rubric) in anomalies {
                by_row.entry(row).or_default().push(ConformityAnomaly {
                    code,
                    rubric: Some(rubric).filter(|r| !r.is_empty()),
                });
            }
            // The last current version of each deposit's conformity.
            let mut out: HashMap<i64, ConformityFact> = HashMap::new();
            for (row, deposit_id, statut, at) in returns {
                if !wanted.contains(&deposit_id) {
                    continue;
                }
                out.insert(
                    deposit_id,
                    ConformityFact {
                        deposit_id,
                        status: Conformity::from_status(&statut),
                        anomalies: by_row.remove(&row).unwrap_or_default(),
                        received_at: at,
                    },
                );
            }
            Ok(out.into_values().collect())
        })
        .await
    }

    /// Every current CRM PAS (its return not overwritten): establishment, declared month
    /// (of its deposit, when it is one of ours), when it came, how many rates it gives.
    /// Only CRMs received at `since` (Unix seconds) or later are read.
    pub async fn board_crms(&self, since: i64) -> anyhow::Result<Vec<CrmFact>> {
        self.read(move |db| {
            db.query(
                "SELECT c.siret, COALESCE(d.month, ''), r.deposit_id, c.received_at, c.identifiant, \
                 (SELECT COUNT(*) FROM pas_rates p WHERE p.crm_id = c.id AND p.rate <> '') \
                 FROM pas_crms c JOIN dsn_returns r ON r.id = c.return_row \
                 LEFT JOIN deposits d ON d.id = r.deposit_id \
                 WHERE r.overwritten_at IS NULL AND c.received_at >= $1 \
                 ORDER BY c.received_at, c.id",
                &[&since],
                |r| {
                    Ok(CrmFact {
                        siret: r.get(0)?,
                        month: r.get(1)?,
                        deposit_id: r.get(2)?,
                        received_at: r.get(3)?,
                        identifier: r.get(4)?,
                        rates: u32::try_from(r.get::<i64>(5)?).unwrap_or(u32::MAX),
                    })
                },
            )
        })
        .await
    }

    /// The rates of current CRMs still valid on `since` (`YYYY-MM-DD`) or later, newest
    /// CRM first within each establishment and employee.
    pub async fn board_rates(&self, since: String) -> anyhow::Result<Vec<RateRow>> {
        self.read(move |db| {
            db.query(
                "SELECT p.siret, p.nir_or_ntt, p.rate, c.valid_until \
                 FROM pas_rates p JOIN pas_crms c ON c.id = p.crm_id \
                 JOIN dsn_returns r ON r.id = c.return_row \
                 WHERE r.overwritten_at IS NULL AND c.valid_until >= $1 \
                 ORDER BY p.siret, p.nir_or_ntt, c.available_on DESC, c.id DESC",
                &[&since],
                |r| {
                    Ok(RateRow {
                        siret: r.get(0)?,
                        employee: r.get(1)?,
                        rate: r.get(2)?,
                        valid_until: r.get(3)?,
                    })
                },
            )
        })
        .await
    }
}
