//! The board's rules on facts, at chosen instants.

use std::collections::BTreeMap;
use std::sync::Arc;

use iea_dsn::Month;
use time::macros::datetime;

use super::*;

const SIRET: &str = "78214563500010";

fn at(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn rules() -> Rules {
    Rules {
        due_day: 15,
        due_days: BTreeMap::new(),
        crm_grace_days: 5,
    }
}

fn deposit(id: i64, month: &str, state: State) -> DepositFact {
    DepositFact {
        id,
        siret: SIRET.into(),
        month: month.into(),
        state,
        idflux: (state == State::Accepted).then(|| format!("FLUX{id:019}")),
        anomalies: Vec::new(),
        created_at: at(datetime!(2026-12-01 09:00 UTC)),
        registered_at: (state == State::Accepted).then(|| at(datetime!(2026-12-01 09:00 UTC))),
        user_id: Some(1),
        requested_by: "Administrateur".into(),
        file_path: String::new(),
        sha256: format!("{id:064}"),
        bytes: 100,
    }
}

fn codes(alerts: &[Alert]) -> Vec<&'static str> {
    alerts.iter().map(|a| a.code.code()).collect()
}

#[test]
fn due_dates_are_noon_in_paris_of_the_following_month() {
    let nov = Month::new(2026, 11).unwrap();
    assert_eq!(due_of(nov, 15), at(datetime!(2026-12-15 11:00 UTC)));
    let dec = Month::new(2026, 12).unwrap();
    assert_eq!(due_of(dec, 5), at(datetime!(2027-01-05 11:00 UTC)));
    // Summer time: noon in Paris is 10:00 UTC.
    let jun = Month::new(2026, 6).unwrap();
    assert_eq!(due_of(jun, 15), at(datetime!(2026-07-15 10:00 UTC)));
    // Days are Paris calendar days: 23:30 UTC on the 1st is already the 2nd in Paris.
    assert_eq!(
        days_left(at(datetime!(2026-12-01 23:30 UTC)), due_of(nov, 15)),
        13
    );
    assert_eq!(
        days_left(at(datetime!(2026-12-01 10:00 UTC)), due_of(nov, 15)),
        14
    );
    assert_eq!(
        days_left(at(datetime!(2026-12-16 10:00 UTC)), due_of(nov, 15)),
        -1
    );
    assert_eq!(month_fr(dec), "décembre 2026");
}

#[test]
fn an_accepted_deposit_awaits_its_conformity_and_raises_nothing_before_its_due_date() {
    let facts = Facts {
        deposits: vec![deposit(1, "2026-11", State::Accepted)],
        ..Default::default()
    };
    let now = at(datetime!(2026-12-01 10:00 UTC));
    let (rows, alerts) = compute(&facts, &rules(), now);
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r.month.to_string(), "2026-11");
    assert_eq!(r.days_left, 14);
    assert_eq!(r.days_late, None, "registered before its due date");
    assert_eq!(r.conformity, Some(Conformity::Awaited));
    assert_eq!(r.deposit.as_ref().unwrap().id, 1);
}

#[test]
fn a_declaration_is_overdue_from_its_due_time_until_a_deposit_is_accepted() {
    let overdue = |d: DepositFact, now| {
        let facts = Facts {
            deposits: vec![d],
            ..Default::default()
        };
        let (rows, alerts) = compute(&facts, &rules(), at(now));
        let row = rows
            .iter()
            .find(|r| r.month.to_string() == "2026-11")
            .expect("November's row");
        // The row's fact is what its alert says.
        let alerted = alerts
            .iter()
            .any(|a| a.code == AlertCode::NotDeposited && a.month == row.month);
        assert_eq!(row.overdue, alerted, "{alerts:?}");
        row.overdue
    };
    let accepted_late = {
        let mut d = deposit(1, "2026-11", State::Accepted);
        d.registered_at = Some(at(datetime!(2026-12-18 09:00 UTC)));
        d
    };
    // Due on 15 December at noon, Paris (11:00 UTC): overdue from noon on the due day
    // itself, when the days left are still 0.
    let queued = || deposit(1, "2026-11", State::Queued);
    assert!(!overdue(queued(), datetime!(2026-12-15 10:59 UTC)));
    assert!(
        overdue(queued(), datetime!(2026-12-15 11:00 UTC)),
        "at noon"
    );
    assert!(overdue(
        deposit(1, "2026-11", State::Rejected),
        datetime!(2026-12-20 10:00 UTC)
    ));
    assert!(!overdue(
        deposit(1, "2026-11", State::Accepted),
        datetime!(2026-12-20 10:00 UTC)
    ));
    assert!(
        !overdue(accepted_late, datetime!(2026-12-20 10:00 UTC)),
        "accepted late"
    );
}

#[test]
fn a_declaration_accepted_after_its_due_date_says_how_late_in_paris_days() {
    let accepted_at = |t| {
        let mut d = deposit(1, "2026-10", State::Accepted);
        d.registered_at = Some(at(t));
        Facts {
            deposits: vec![d],
            ..Default::default()
        }
    };
    let late = |facts: &Facts| {
        let (rows, _) = compute(facts, &rules(), at(datetime!(2026-12-20 10:00 UTC)));
        let row = rows.iter().find(|r| r.month.to_string() == "2026-10");
        row.expect("October's row").days_late
    };
    // Due on 15 November at noon, Paris (11:00 UTC).
    assert_eq!(late(&accepted_at(datetime!(2026-11-15 10:59 UTC))), None);
    assert_eq!(late(&accepted_at(datetime!(2026-11-15 11:00 UTC))), None);
    assert_eq!(late(&accepted_at(datetime!(2026-11-15 14:00 UTC))), Some(0));
    // 23:30 UTC on the 15th is already the 16th in Paris.
    assert_eq!(late(&accepted_at(datetime!(2026-11-15 23:30 UTC))), Some(1));
    assert_eq!(
        late(&accepted_at(datetime!(2026-12-03 16:00 UTC))),
        Some(18)
    );
    // Not accepted: the days left say it.
    let rejected = Facts {
        deposits: vec![deposit(1, "2026-10", State::Rejected)],
        ..Default::default()
    };
    assert_eq!(late(&rejected), None);
}

#[test]
fn the_due_date_says_the_days_left_until_a_deposit_is_accepted_then_how_late_it_was() {
    let words = |deposits: Vec<DepositFact>, now| {
        let facts = Facts {
            sirets: [SIRET.to_owned()].into(),
            deposits,
            ..Default::default()
        };
        let (rows, _) = compute(&facts, &rules(), at(now));
        let row = rows.iter().find(|r| r.month.to_string() == "2026-11");
        row.expect("November's row").due_words()
    };
    // November's DSN is due on 15 December at noon, Paris.
    assert_eq!(
        words(vec![], datetime!(2026-12-12 10:00 UTC)),
        "dans 3 jours"
    );
    assert_eq!(
        words(vec![], datetime!(2026-12-15 10:00 UTC)),
        "aujourd'hui"
    );
    let rejected = deposit(1, "2026-11", State::Rejected);
    assert_eq!(
        words(vec![rejected.clone()], datetime!(2026-12-17 10:00 UTC)),
        "dépassée de 2 jours"
    );
    // Accepted on 1 December: on time, however long ago.
    let accepted = deposit(2, "2026-11", State::Accepted);
    assert_eq!(
        words(vec![accepted], datetime!(2027-01-20 10:00 UTC)),
        "déposée à temps"
    );
    let mut late = deposit(3, "2026-11", State::Accepted);
    late.registered_at = Some(at(datetime!(2027-01-02 09:00 UTC)));
    assert_eq!(
        words(vec![rejected, late], datetime!(2027-01-20 10:00 UTC)),
        "déposée avec 18 jours de retard"
    );
}

#[test]
fn alerts_come_most_urgent_first_with_a_french_sentence() {
    let mut rejected = deposit(3, "2026-10", State::Rejected);
    rejected.anomalies = vec![("B1-105-15".into(), "rejet".into())];
    // Deposited in time, before its due date of 15 September.
    let mut august = deposit(1, "2026-08", State::Accepted);
    august.created_at = at(datetime!(2026-09-10 09:00 UTC));
    august.registered_at = Some(august.created_at);
    let facts = Facts {
        deposits: vec![
            august,
            // September: never deposited.
            rejected,
            deposit(4, "2026-11", State::Accepted),
        ],
        conformities: vec![
            ConformityFact {
                deposit_id: 4,
                status: Conformity::Ko,
                anomalies: vec![ConformityAnomaly {
                    code: "CCH-PAS-01".into(),
                    rubric: Some("S21.G00.50.009".into()),
                }],
                received_at: at(datetime!(2026-12-01 10:00 UTC)),
            },
            ConformityFact {
                deposit_id: 1,
                status: Conformity::Ano,
                anomalies: vec![ConformityAnomaly {
                    code: "CCH-PAS-03".into(),
                    rubric: Some("S21.G00.50.008".into()),
                }],
                received_at: at(datetime!(2026-09-01 10:00 UTC)),
            },
        ],
        ..Default::default()
    };
    let now = at(datetime!(2026-12-01 10:00 UTC));
    let (rows, alerts) = compute(&facts, &rules(), now);
    assert_eq!(
        codes(&alerts),
        [
            "deposit_rejected",
            "conformity_ko",
            "not_deposited",
            "not_deposited",
            "conformity_anomalies",
            // August's CRM never came (due 15 September, 5 days of grace long past).
            "crm_missing",
        ],
        "{alerts:#?}"
    );
    assert_eq!(
        alerts.iter().map(|a| a.code.urgency()).collect::<Vec<_>>(),
        [1, 2, 3, 3, 4, 5]
    );
    assert!(
        alerts[1].message.contains("S21.G00.50.009"),
        "{}",
        alerts[1].message
    );
    assert!(alerts[1].message.contains("novembre 2026"));
    assert_eq!(alerts[1].deposit_id, Some(4));
    // Not deposited: September (none) and October (rejected), in order of due date.
    assert_eq!(alerts[2].month.to_string(), "2026-09");
    assert_eq!(alerts[3].month.to_string(), "2026-10");
    assert!(
        alerts[3].message.contains("rejeté"),
        "{}",
        alerts[3].message
    );
    // « de » elided before a vowel: « de septembre », « d'octobre », « d'août ».
    assert!(
        alerts[2].message.starts_with("La DSN de septembre 2026 "),
        "{}",
        alerts[2].message
    );
    assert!(
        alerts[3].message.starts_with("La DSN d'octobre 2026 "),
        "{}",
        alerts[3].message
    );
    assert!(
        alerts[5].message.contains("de la DSN d'août 2026 "),
        "{}",
        alerts[5].message
    );
    // Rows: newest month first, every month from the first deposited.
    assert_eq!(
        rows.iter().map(|r| r.month.to_string()).collect::<Vec<_>>(),
        ["2026-11", "2026-10", "2026-09", "2026-08"]
    );
    assert_eq!(rows[0].conformity, Some(Conformity::Ko));
    assert_eq!(rows[0].anomalies, 1);
    assert_eq!(rows[1].conformity, None);
    assert!(rows[2].deposit.is_none());
}

/// Deposited late, a declaration's CRM is awaited for its grace days from the deposit,
/// and the alert says so rather than counting from the missed due date.
#[test]
fn a_late_declaration_s_crm_is_awaited_for_its_grace_days_after_its_deposit() {
    // October, due 15 November; accepted 1 December at 10:00 in Paris.
    let facts = Facts {
        deposits: vec![deposit(1, "2026-10", State::Accepted)],
        ..Default::default()
    };
    let (_, alerts) = compute(&facts, &rules(), at(datetime!(2026-12-03 10:00 UTC)));
    assert!(!codes(&alerts).contains(&"crm_missing"), "{alerts:?}");
    let (_, alerts) = compute(&facts, &rules(), at(datetime!(2026-12-06 08:59 UTC)));
    assert!(!codes(&alerts).contains(&"crm_missing"), "{alerts:?}");
    let (_, alerts) = compute(&facts, &rules(), at(datetime!(2026-12-08 09:00 UTC)));
    let crm = alerts
        .iter()
        .find(|a| a.code.code() == "crm_missing")
        .expect("crm_missing");
    assert!(
        crm.message
            .contains("n'est pas arrivé, 7 jours après son dépôt du 1er décembre 2026"),
        "{}",
        crm.message
    );
}

#[test]
fn a_crm_is_awaited_for_its_grace_days_after_the_due_date() {
    let facts = Facts {
        deposits: vec![deposit(1, "2026-11", State::Accepted)],
        conformities: vec![ConformityFact {
            deposit_id: 1,
            status: Conformity::Ok,
            anomalies: Vec::new(),
            received_at: at(datetime!(2026-12-01 10:00 UTC)),
        }],
        ..Default::default()
    };
    // Due 15 December at noon; 5 days later is the 20th at noon.
    let (_, alerts) = compute(&facts, &rules(), at(datetime!(2026-12-20 10:00 UTC)));
    assert!(alerts.is_empty(), "{alerts:?}");
    let (rows, alerts) = compute(&facts, &rules(), at(datetime!(2026-12-20 11:00 UTC)));
    assert_eq!(codes(&alerts), ["crm_missing"]);
    assert!(
        alerts[0].message.contains("5 jours après l'échéance"),
        "{}",
        alerts[0].message
    );
    // December's declaration is now the one to come.
    assert_eq!(rows[0].month.to_string(), "2026-12");
    // The CRM came: no alert, the row counts its rates.
    let mut with_crm = facts.clone();
    with_crm.crms.push(CrmFact {
        siret: SIRET.into(),
        month: "2026-11".into(),
        deposit_id: Some(1),
        received_at: at(datetime!(2026-12-16 10:00 UTC)),
        rates: 3,
        identifier: "123456789012345678".into(),
    });
    let (rows, alerts) = compute(&with_crm, &rules(), at(datetime!(2026-12-20 11:00 UTC)));
    assert!(alerts.is_empty(), "{alerts:?}");
    let nov = rows
        .iter()
        .find(|r| r.month.to_string() == "2026-11")
        .unwrap();
    assert_eq!(nov.crm.as_ref().unwrap().rates, 3);
}

#[test]
fn rates_ending_before_the_next_payroll_and_employees_without_a_rate_are_alerts() {
    let rate = |nir: &str, rate: Option<&str>, until: i64| RateFact {
        siret: SIRET.into(),
        employee: nir.into(),
        rate: rate.map(str::to_owned),
        valid_until: Some(until),
    };
    let employee = |nir: &str, m: &str| DsnEmployee {
        key: nir.into(),
        matricule: Some(m.into()),
    };
    let now = at(datetime!(2026-12-01 10:00 UTC));
    let facts = Facts {
        deposits: vec![deposit(1, "2026-11", State::Accepted)],
        crms: vec![CrmFact {
            siret: SIRET.into(),
            month: "2026-10".into(),
            deposit_id: None,
            received_at: at(datetime!(2026-11-16 10:00 UTC)),
            rates: 2,
            identifier: "1".into(),
        }],
        rates: vec![
            // Valid until 31 December: before the due date of December's payroll (15
            // January).
            rate(
                "1800175000001",
                Some("7.50"),
                at(datetime!(2026-12-31 22:59 UTC)),
            ),
            rate(
                "2800175000002",
                Some("0.00"),
                at(datetime!(2027-01-31 22:59 UTC)),
            ),
            // The CRM gave no rate for this one.
            rate("1900175000003", None, at(datetime!(2027-01-31 22:59 UTC))),
        ],
        last_dsn: [(
            SIRET.to_owned(),
            LastDsn {
                deposit_id: 1,
                month: Month::new(2026, 11).unwrap(),
                employees: Arc::new(vec![
                    employee("1800175000001", "M001"),
                    employee("2800175000002", "M002"),
                    employee("1900175000003", "M003"),
                    employee("1990175000004", "M004"),
                ]),
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let (_, alerts) = compute(&facts, &rules(), now);
    assert_eq!(
        codes(&alerts),
        ["rates_expiring", "employee_without_rate"],
        "{alerts:#?}"
    );
    assert!(
        alerts[0].message.starts_with("1 taux"),
        "{}",
        alerts[0].message
    );
    assert!(
        alerts[0].message.contains("31 décembre 2026"),
        "{}",
        alerts[0].message
    );
    let m = &alerts[1].message;
    assert!(m.starts_with("2 salariés"), "{m}");
    assert!(m.contains("M003, M004"), "{m}");
    // Never a NIR in a sentence.
    for a in &alerts {
        assert!(!a.message.contains("175000"), "{}", a.message);
    }
}

#[test]
fn an_establishment_without_deposits_shows_its_declaration_to_come() {
    let facts = Facts {
        sirets: vec![SIRET.into()],
        ..Default::default()
    };
    let mut r = rules();
    r.due_days.insert(SIRET.into(), 5);
    // 1 December: November's declaration is due on 5 December.
    let (rows, alerts) = compute(&facts, &r, at(datetime!(2026-12-01 10:00 UTC)));
    assert!(alerts.is_empty());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].month.to_string(), "2026-11");
    assert_eq!(rows[0].due, at(datetime!(2026-12-05 11:00 UTC)));
    assert_eq!(rows[0].days_left, 4);
}
