//! The board computed from facts, with no I/O: what the store and the stored DSN files
//! say at one instant in, rows and alerts out. Everything time-dependent takes `now`, so
//! the rules are tested without a clock.

use std::collections::{BTreeMap, BTreeSet};

use iea_dsn::Month;
use iea_fr_time::count;

use super::{Alert, AlertCode, Conformity, ConformityFact, DepositFact, Facts, Row, Rules};
use crate::deposits::State;

/// Months back from the current one a board shows (a year and the month before).
pub const MONTHS_SHOWN: i32 = 13;

/// The due date of `month`'s declaration: `day` (5 or 15) of the following month at noon,
/// Paris time (Unix seconds).
pub fn due_of(month: Month, day: u8) -> i64 {
    let next = month.next();
    let base = iea_fr_time::paris_datetime(iea_fr_time::from_unix(0));
    let dt = base
        .with()
        .year(next.year as i16)
        .month(next.month as i8)
        .day(day as i8)
        .hour(12)
        .minute(0)
        .second(0)
        .subsec_nanosecond(0)
        .build();
    match dt
        .ok()
        .and_then(|dt| iea_fr_time::paris().to_timestamp(dt).ok())
    {
        Some(t) => t.as_second(),
        // Only for a month outside jiff's range, which `Month` never holds.
        None => 0,
    }
}

fn months_between(a: Month, b: Month) -> i32 {
    (b.year - a.year) * 12 + i32::from(b.month) - i32::from(a.month)
}

fn prev(m: Month) -> Month {
    if m.month == 1 {
        Month {
            year: m.year - 1,
            month: 12,
        }
    } else {
        Month {
            year: m.year,
            month: m.month - 1,
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn civil_days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn paris_day_number(t: i64) -> i64 {
    let d = iea_fr_time::paris_date(iea_fr_time::from_unix(t));
    civil_days(
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    )
}

/// Calendar days in Paris from `now`'s day to `due`'s day (negative once past).
pub fn days_left(now: i64, due: i64) -> i32 {
    (paris_day_number(due) - paris_day_number(now)) as i32
}

/// « novembre 2026 ».
pub fn month_fr(m: Month) -> String {
    iea_fr_time::month_year(m.year, m.month)
}

/// The deposit that stands for a declaration: the latest accepted (an « annule et
/// remplace » comes after the declaration it replaces), else the latest of any state.
fn standing<'a>(deposits: &[&'a DepositFact]) -> Option<&'a DepositFact> {
    deposits
        .iter()
        .filter(|d| d.state == State::Accepted)
        .max_by_key(|d| d.id)
        .or_else(|| deposits.iter().max_by_key(|d| d.id))
        .copied()
}

/// Rows (newest month first, then SIRET) and alerts (most urgent first).
pub fn compute(facts: &Facts, settings: &Rules, now: i64) -> (Vec<Row>, Vec<Alert>) {
    let current = Month::in_paris_at(now);
    let mut alerts = Vec::new();

    // Every establishment shown, and the months of each.
    let mut by_declaration: BTreeMap<(String, Month), Vec<&DepositFact>> = BTreeMap::new();
    for d in &facts.deposits {
        if let Ok(m) = d.month.parse::<Month>() {
            by_declaration
                .entry((d.siret.clone(), m))
                .or_default()
                .push(d);
        }
    }
    let mut sirets: BTreeSet<String> = facts.sirets.iter().cloned().collect();
    sirets.extend(by_declaration.keys().map(|(s, _)| s.clone()));
    let mut keys: BTreeSet<(String, Month)> = BTreeSet::new();
    for siret in &sirets {
        let day = settings.due_day(siret);
        // The declaration to come: the month before the current one until its due date
        // has passed, then the current one.
        let previous = prev(current);
        let upcoming = if due_of(previous, day) > now {
            previous
        } else {
            current
        };
        keys.insert((siret.clone(), upcoming));
        // From the first month deposited, every month is a declaration to make.
        let first = by_declaration
            .keys()
            .filter(|(s, _)| s == siret)
            .map(|(_, m)| *m)
            .min();
        if let Some(first) = first {
            let mut m = first;
            while months_between(m, upcoming) > 0 {
                if months_between(m, current) <= MONTHS_SHOWN {
                    keys.insert((siret.clone(), m));
                }
                m = m.next();
            }
        }
    }
    for (siret, m) in by_declaration.keys() {
        if months_between(*m, current) <= MONTHS_SHOWN {
            keys.insert((siret.clone(), *m));
        }
    }

    let conformity: BTreeMap<i64, &ConformityFact> = facts
        .conformities
        .iter()
        .map(|c| (c.deposit_id, c))
        .collect();
    let mut rows = Vec::new();
    for (siret, month) in &keys {
        let day = settings.due_day(siret);
        let due = due_of(*month, day);
        let left = days_left(now, due);
        let deposits = by_declaration
            .get(&(siret.clone(), *month))
            .cloned()
            .unwrap_or_default();
        let deposit = standing(&deposits);
        let accepted = deposit.filter(|d| d.state == State::Accepted);
        let overdue = accepted.is_none() && due <= now;
        let conf = accepted.and_then(|d| conformity.get(&d.id).copied());
        let crm = facts
            .crms
            .iter()
            .filter(|c| {
                &c.siret == siret
                    && (c.month.parse::<Month>().ok() == Some(*month)
                        || accepted.is_some_and(|d| c.deposit_id == Some(d.id)))
            })
            .max_by_key(|c| c.received_at);
        let row = Row {
            siret: siret.clone(),
            month: *month,
            due,
            days_left: left,
            days_late: accepted
                .and_then(|d| d.registered_at)
                .filter(|&registered| registered > due)
                .map(|registered| -days_left(registered, due)),
            overdue,
            deposit: deposit.cloned(),
            conformity: match (accepted, conf) {
                (None, _) => None,
                (Some(_), None) => Some(Conformity::Awaited),
                (Some(_), Some(c)) => Some(c.status),
            },
            anomalies: conf.map(|c| c.anomalies.len()).unwrap_or(0),
            crm: crm.cloned(),
        };
        // « de novembre 2026 », « d'octobre 2026 ».
        let label = iea_fr_time::de(&month_fr(*month));
        let alert = |code: AlertCode, message: String, deposit_id: Option<i64>| Alert {
            code,
            message,
            siret: siret.clone(),
            month: *month,
            deposit_id,
            due,
        };
        match deposit.map(|d| d.state) {
            Some(State::Rejected) | Some(State::Failed) => {
                let d = deposit.expect("matched");
                let first = d
                    .anomalies
                    .first()
                    .map(|(code, _)| format!(" ({code})"))
                    .unwrap_or_default();
                alerts.push(alert(
                    AlertCode::DepositRejected,
                    format!(
                        "La DSN {label} du SIRET {siret} a été rejetée par Net-entreprises{first} (dépôt n° {}) : corrigez le fichier et déposez-le de nouveau avant le {}.",
                        d.id,
                        iea_fr_time::date_time_unix(due)
                    ),
                    Some(d.id),
                ));
            }
            _ => {}
        }
        if let (Some(d), Some(c)) = (accepted, conf) {
            let detail = c
                .anomalies
                .first()
                .map(|a| match &a.rubric {
                    Some(r) => format!(" ; première : {} sur la rubrique {r}", a.code),
                    None => format!(" ; première : {}", a.code),
                })
                .unwrap_or_default();
            let n = count(c.anomalies.len().max(1) as u64, "anomalie", "anomalies");
            match c.status {
                Conformity::Ko => alerts.push(alert(
                    AlertCode::ConformityKo,
                    format!(
                        "La DSN {label} du SIRET {siret} n'est pas conforme (dépôt n° {}, {n} dont au moins une bloquante{detail}) : corrigez-la et déposez une DSN « annule et remplace ».",
                        d.id
                    ),
                    Some(d.id),
                )),
                Conformity::Ano => alerts.push(alert(
                    AlertCode::ConformityAnomalies,
                    format!(
                        "La DSN {label} du SIRET {siret} a été acceptée avec {n} non {} (dépôt n° {}{detail}) : à corriger dans la prochaine paie.",
                        if c.anomalies.len() > 1 { "bloquantes" } else { "bloquante" },
                        d.id
                    ),
                    Some(d.id),
                )),
                _ => {}
            }
        }
        if overdue {
            let state = deposit
                .map(|d| format!(" (dépôt n° {} : {})", d.id, d.state.label_fr()))
                .unwrap_or_default();
            alerts.push(alert(
                AlertCode::NotDeposited,
                format!(
                    "La DSN {label} du SIRET {siret} n'a pas été déposée avant son échéance du {}{state} : déposez-la au plus vite.",
                    iea_fr_time::date_time_unix(due)
                ),
                deposit.map(|d| d.id),
            ));
        }
        let grace = i64::from(settings.crm_grace_days) * 86_400;
        if let Some(d) = accepted
            && crm.is_none()
            && row.conformity != Some(Conformity::Ko)
        {
            // The CRM follows the deposit: a declaration deposited late is given its
            // grace days from its deposit, not from the due date it missed.
            let registered = d.registered_at.unwrap_or(d.created_at);
            let since = due.max(registered);
            if now >= since + grace {
                let days = count(((now - since) / 86_400) as u64, "jour", "jours");
                let after = if since == due {
                    format!("{days} après l'échéance")
                } else {
                    format!(
                        "{days} après son dépôt du {}",
                        iea_fr_time::date(iea_fr_time::from_unix(registered))
                    )
                };
                alerts.push(alert(
                    AlertCode::CrmMissing,
                    format!(
                        "Le compte rendu des taux de prélèvement à la source (CRM PAS) de la DSN {label} du SIRET {siret} n'est pas arrivé, {after} (dépôt n° {}) : les taux de la prochaine paie en dépendent.",
                        d.id
                    ),
                    Some(d.id),
                ));
            }
        }
        rows.push(row);
    }

    // Per establishment: the rates of the next payroll, and the employees of its last DSN.
    for siret in &sirets {
        let day = settings.due_day(siret);
        // The payroll of the current month is declared by the following month's due date.
        let next_payroll_due = due_of(current, day);
        let rates: Vec<_> = facts.rates.iter().filter(|r| &r.siret == siret).collect();
        let expiring = rates
            .iter()
            .filter(|r| r.rate.is_some() && r.valid_until.is_some_and(|v| v < next_payroll_due))
            .count();
        if expiring > 0 {
            let soonest = rates
                .iter()
                .filter_map(|r| r.valid_until)
                .filter(|v| *v < next_payroll_due)
                .min()
                .unwrap_or(next_payroll_due);
            alerts.push(Alert {
                code: AlertCode::RatesExpiring,
                message: format!(
                    "{} du SIRET {siret} {} de valoir avant la paie de {} (le premier le {}) : attendez le prochain CRM PAS ou appliquez le barème par défaut.",
                    count(expiring as u64, "taux de prélèvement à la source", "taux de prélèvement à la source"),
                    if expiring == 1 { "cesse" } else { "cessent" },
                    month_fr(current),
                    iea_fr_time::date(iea_fr_time::from_unix(soonest))
                ),
                siret: siret.clone(),
                month: current,
                deposit_id: None,
                due: next_payroll_due,
            });
        }
        // Once a CRM PAS came for the establishment, every employee of its last accepted
        // DSN should have a rate.
        let Some(last) = facts.last_dsn.get(siret) else {
            continue;
        };
        if !facts.crms.iter().any(|c| &c.siret == siret) {
            continue;
        }
        let rated: BTreeSet<&str> = rates
            .iter()
            .filter(|r| r.rate.is_some())
            .map(|r| r.employee.as_str())
            .collect();
        let missing: Vec<&super::DsnEmployee> = last
            .employees
            .iter()
            .filter(|e| !rated.contains(e.key.as_str()))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let mut matricules: Vec<&str> = missing
            .iter()
            .filter_map(|e| e.matricule.as_deref())
            .take(5)
            .collect();
        matricules.sort_unstable();
        let list = if matricules.is_empty() {
            String::new()
        } else {
            format!(
                " (matricule{} {}{})",
                if matricules.len() == 1 { "" } else { "s" },
                matricules.join(", "),
                if missing.len() > matricules.len() {
                    ", …"
                } else {
                    ""
                }
            )
        };
        alerts.push(Alert {
            code: AlertCode::EmployeeWithoutRate,
            message: format!(
                "{} de la DSN {} du SIRET {siret}{list} {} pas de taux de prélèvement à la source transmis par la DGFiP : la paie appliquera le barème par défaut.",
                count(missing.len() as u64, "salarié", "salariés"),
                iea_fr_time::de(&month_fr(last.month)),
                if missing.len() == 1 { "n'a" } else { "n'ont" },
            ),
            siret: siret.clone(),
            month: last.month,
            deposit_id: Some(last.deposit_id),
            due: due_of(last.month, day),
        });
    }

    rows.sort_by(|a, b| b.month.cmp(&a.month).then_with(|| a.siret.cmp(&b.siret)));
    alerts.sort_by(|a, b| {
        a.code
            .urgency()
            .cmp(&b.code.urgency())
            .then_with(|| a.due.cmp(&b.due))
            .then_with(|| a.siret.cmp(&b.siret))
    });
    (rows, alerts)
}
