//! The checks behind the conformity return (nature 11), run on the deposited DSN with
//! `iea-dsn`'s accessors, and what the CRM nominatif (nature 94) needs of each employee.
//!
//! Checks, each an anomaly naming its code, a French message, the rubric and its line:
//! - a file `iea-dsn` refuses: each of its problems (`DSN-<kind>`, blocking);
//! - `CSL-NIR` (blocking): `S21.G00.30.001` not a NIR (13 characters: sex 1, 2, 3, 4, 7
//!   or 8, year, month, department digits or `2A`/`2B`, commune, order);
//! - `CCH-PAS-01` (blocking): `S21.G00.50.009` (PAS amount) differs from `.013` (amount
//!   subject) × `.006` (rate) by more than 1 €;
//! - `CCH-PAS-02` (blocking): rate type `99` with a non-zero rate (`.006`) or amount
//!   (`.009`);
//! - `CCH-PAS-03` (non-blocking): `.008` (rate identifier) present when `.007` is not
//!   `01`, or absent when it is.
//!
//! The status is `KO` with a blocking anomaly, `ANO` with only non-blocking ones, `OK`
//! without any. Values quoted in anomalies are the document's business (it goes to the
//! declarant): never logged.

use iea_dsn::Dsn;

/// One anomaly of a conformity return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub code: String,
    pub blocking: bool,
    pub message: String,
    /// The rubric that triggered it (`S21.G00.50.009`), when known.
    pub rubric: Option<String>,
    pub line: Option<usize>,
    pub value: Option<String>,
    /// The employee concerned: NIR and matricule, when known.
    pub nir: Option<String>,
    pub matricule: Option<String>,
}

impl Anomaly {
    pub fn category(&self) -> &'static str {
        if self.blocking {
            "bloquant"
        } else {
            "non-bloquant"
        }
    }
}

/// `OK`, `ANO` or `KO` for these anomalies.
pub fn status_of(anomalies: &[Anomaly]) -> &'static str {
    if anomalies.iter().any(|a| a.blocking) {
        "KO"
    } else if anomalies.is_empty() {
        "OK"
    } else {
        "ANO"
    }
}

/// What the CRM nominatif needs of an employee: identification and the rates applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployeeFacts {
    pub nir: Option<String>,
    pub ntt: Option<String>,
    pub matricule: Option<String>,
    /// Each payment's `.006` as written, with its line, for payments whose `.007` is not
    /// `99`.
    pub applied_rates: Vec<(String, usize)>,
}

/// The anomalies of a file `iea-dsn` refused.
pub fn problems_of(problems: &iea_dsn::Problems) -> Vec<Anomaly> {
    problems
        .0
        .iter()
        .map(|p| Anomaly {
            code: format!("DSN-{}", p.kind.code()),
            blocking: true,
            message: p.message.clone(),
            rubric: None,
            line: p.line,
            value: None,
            nir: None,
            matricule: None,
        })
        .collect()
}

/// The checks of a file `iea-dsn` read.
pub fn check(dsn: &Dsn) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for e in dsn.employees() {
        let anomaly = |code: &str, blocking, message: String, rubric: &str, line, value| Anomaly {
            code: code.to_owned(),
            blocking,
            message,
            rubric: Some(rubric.to_owned()),
            line: Some(line),
            value,
            nir: e.nir.clone(),
            matricule: e.matricule.clone(),
        };
        if let Some(nir) = &e.nir
            && !is_nir(nir)
        {
            let line = dsn.rubric_in(e.line, 1).map_or(e.line, |r| r.line);
            out.push(anomaly(
                "CSL-NIR",
                true,
                "Le NIR n'a pas le format attendu (13 caractères : sexe, année, mois, département, commune, ordre).".into(),
                "S21.G00.30.001",
                line,
                Some(nir.clone()),
            ));
        }
        for p in &e.payments {
            let line_of = |field: u16| dsn.rubric_in(p.line, field).map_or(p.line, |r| r.line);
            let rate = p.pas_rate.as_deref().and_then(hundredths);
            let amount = p.pas_amount.as_deref().and_then(hundredths);
            let subject = p.amount_subject.as_deref().and_then(hundredths);
            let none = p.rate_type.as_deref() == Some("99");
            if none {
                if rate.is_some_and(|r| r != 0) {
                    out.push(anomaly(
                        "CCH-PAS-02",
                        true,
                        "Type de taux 99 (non soumis) avec un taux de prélèvement non nul.".into(),
                        "S21.G00.50.006",
                        line_of(6),
                        p.pas_rate.clone(),
                    ));
                }
                if amount.is_some_and(|a| a != 0) {
                    out.push(anomaly(
                        "CCH-PAS-02",
                        true,
                        "Type de taux 99 (non soumis) avec un montant de prélèvement non nul."
                            .into(),
                        "S21.G00.50.009",
                        line_of(9),
                        p.pas_amount.clone(),
                    ));
                }
            } else if let (Some(rate), Some(amount), Some(subject)) = (rate, amount, subject) {
                // Cents × hundredths of a percent / 10 000 = cents.
                let expected = (i128::from(subject) * i128::from(rate) + 5_000) / 10_000;
                if (expected - i128::from(amount)).abs() > 100 {
                    out.push(anomaly(
                        "CCH-PAS-01",
                        true,
                        format!(
                            "Le montant du prélèvement à la source ne correspond pas au montant soumis multiplié par le taux (attendu {} à 1 € près).",
                            cents_text(expected)
                        ),
                        "S21.G00.50.009",
                        line_of(9),
                        p.pas_amount.clone(),
                    ));
                }
            }
            let dgfip = p.rate_type.as_deref() == Some("01");
            if dgfip != p.rate_identifier.is_some() {
                let message = if dgfip {
                    "Taux transmis par la DGFiP (type 01) sans l'identifiant du taux (S21.G00.50.008)."
                } else {
                    "Identifiant de taux (S21.G00.50.008) renseigné alors que le taux n'est pas celui transmis par la DGFiP (type 01)."
                };
                out.push(anomaly(
                    "CCH-PAS-03",
                    false,
                    message.into(),
                    "S21.G00.50.008",
                    line_of(if dgfip { 7 } else { 8 }),
                    p.rate_identifier.clone(),
                ));
            }
        }
    }
    out
}

/// What the CRM needs of each employee of `dsn`.
pub fn employees(dsn: &Dsn) -> Vec<EmployeeFacts> {
    dsn.employees()
        .iter()
        .map(|e| EmployeeFacts {
            nir: e.nir.clone(),
            ntt: e.ntt.clone(),
            matricule: e.matricule.clone(),
            applied_rates: e
                .payments
                .iter()
                .filter(|p| p.rate_type.as_deref() != Some("99"))
                .filter_map(|p| {
                    let line = dsn.rubric_in(p.line, 6).map_or(p.line, |r| r.line);
                    p.pas_rate.clone().map(|r| (r, line))
                })
                .collect(),
        })
        .collect()
}

/// A NIR as the DSN writes it: 13 characters without the key.
pub fn is_nir(nir: &str) -> bool {
    let b = nir.as_bytes();
    b.len() == 13
        && matches!(b[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && (b[5..7].iter().all(u8::is_ascii_digit) || &b[5..7] == b"2A" || &b[5..7] == b"2B")
        && b[7..].iter().all(u8::is_ascii_digit)
}

/// A decimal amount or rate (`1234.56`, `-12.5`, `14`) in hundredths.
pub fn hundredths(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (units, decimals) = digits.split_once('.').unwrap_or((digits, ""));
    if units.is_empty()
        || units.len() > 15
        || decimals.len() > 2
        || !units.bytes().all(|b| b.is_ascii_digit())
        || !decimals.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let decimals: i64 = match decimals.len() {
        0 => 0,
        1 => decimals.parse::<i64>().ok()? * 10,
        _ => decimals.parse().ok()?,
    };
    let value = units * 100 + decimals;
    Some(if negative { -value } else { value })
}

fn cents_text(cents: i128) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iea_dsn::{Month, SampleSpec};

    fn sample(employees: usize) -> Vec<u8> {
        iea_dsn::sample(&SampleSpec::new(
            "78214563500010",
            Month::new(2026, 11).unwrap(),
            employees,
        ))
    }

    /// `dsn` (ISO-8859-1 bytes) with the value of the first line of `code` replaced.
    fn with_value(dsn: &[u8], code: &str, value: &str) -> Vec<u8> {
        let prefix = format!("{code},");
        let mut done = false;
        let mut out = Vec::new();
        for line in dsn.split_inclusive(|b| *b == b'\n') {
            if !done && line.starts_with(prefix.as_bytes()) {
                done = true;
                out.extend_from_slice(format!("{code},'{value}'\n").as_bytes());
            } else {
                out.extend_from_slice(line);
            }
        }
        assert!(done, "{code} not in the sample");
        out
    }

    #[test]
    fn a_sample_dsn_is_conform() {
        let dsn = Dsn::parse(&sample(20)).unwrap();
        assert_eq!(check(&dsn), vec![]);
        assert_eq!(employees(&dsn).len(), 20);
    }

    #[test]
    fn a_wrong_pas_amount_is_a_blocking_anomaly_on_rubric_009_with_its_line() {
        let file = sample(3);
        let dsn = Dsn::parse(&file).unwrap();
        let first = &dsn.employees()[0].payments[0];
        // An amount far from subject × rate (unless the rate is 0, then any non-zero).
        let wrong = with_value(&file, "S21.G00.50.009", "99999.00");
        let dsn = Dsn::parse(&wrong).unwrap();
        let anomalies = check(&dsn);
        let a = anomalies
            .iter()
            .find(|a| a.rubric.as_deref() == Some("S21.G00.50.009"))
            .expect("an anomaly on .009");
        assert!(a.blocking);
        assert_eq!(a.value.as_deref(), Some("99999.00"));
        assert_eq!(
            a.line,
            dsn.rubric_in(first.line, 9).map(|r| r.line),
            "the line of the .009 rubric"
        );
        assert_eq!(status_of(&anomalies), "KO");
    }

    #[test]
    fn a_malformed_nir_and_a_missing_rate_identifier_are_named() {
        let file = with_value(&sample(2), "S21.G00.30.001", "12345");
        let dsn = Dsn::parse(&file).unwrap();
        let anomalies = check(&dsn);
        assert!(
            anomalies
                .iter()
                .any(|a| a.code == "CSL-NIR" && a.rubric.as_deref() == Some("S21.G00.30.001"))
        );
        assert!(is_nir("1850775123456"));
        assert!(is_nir("285072A123456"));
        assert!(!is_nir("5850775123456"));
        assert!(!is_nir("185077512345"));
        let identifier_only = Anomaly {
            code: "CCH-PAS-03".into(),
            blocking: false,
            message: String::new(),
            rubric: None,
            line: None,
            value: None,
            nir: None,
            matricule: None,
        };
        assert_eq!(status_of(&[identifier_only]), "ANO");
        assert_eq!(status_of(&[]), "OK");
    }

    #[test]
    fn amounts_read_in_hundredths() {
        assert_eq!(hundredths("1234.56"), Some(123_456));
        assert_eq!(hundredths("14"), Some(1_400));
        assert_eq!(hundredths("7.5"), Some(750));
        assert_eq!(hundredths("-12.30"), Some(-1_230));
        for bad in ["", ".5", "1.234", "1,5", "abc", "-"] {
            assert_eq!(hundredths(bad), None, "{bad}");
        }
        assert_eq!(cents_text(-5), "-0.05");
    }
}
