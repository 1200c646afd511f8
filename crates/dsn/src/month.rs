//! A declared month: `YYYY-MM` for people and programs, `01MMAAAA` in the file.

use std::fmt;
use std::str::FromStr;

/// A calendar month. Display and FromStr use `YYYY-MM`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Month {
    pub year: i32,
    pub month: u8,
}

/// Years a DSN month may carry (the DSN began in 2013; the upper bound only keeps typos
/// such as 20255 out).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2999;

/// A month that could not be read; Display is a French sentence.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("mois « {0} » invalide : attendu AAAA-MM, par exemple 2025-03")]
pub struct MonthError(pub String);

impl Month {
    /// A month, if `month` is 1 to 12 and the year plausible.
    pub fn new(year: i32, month: u8) -> Option<Month> {
        ((1..=12).contains(&month) && YEARS.contains(&year)).then_some(Month { year, month })
    }

    /// The month in progress in Paris at `unix_seconds` (seconds since
    /// 1970-01-01T00:00:00Z): the payroll's calendar, whatever the machine's zone.
    pub fn in_paris_at(unix_seconds: i64) -> Month {
        let d = iea_fr_time::paris_date(iea_fr_time::from_unix(unix_seconds));
        Month {
            year: i32::from(d.year()),
            month: d.month() as u8,
        }
    }

    /// Reads the file's form `01MMAAAA` (the first day of the month).
    pub fn from_dsn(value: &str) -> Option<Month> {
        let b = value.as_bytes();
        if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) || &value[..2] != "01" {
            return None;
        }
        Month::new(value[4..].parse().ok()?, value[2..4].parse().ok()?)
    }

    /// The file's form `01MMAAAA`.
    pub fn to_dsn(self) -> String {
        format!("01{:02}{:04}", self.month, self.year)
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Number of days in this month (Gregorian calendar).
    pub fn days(self) -> u8 {
        match self.month {
            4 | 6 | 9 | 11 => 30,
            2 => {
                let y = self.year;
                if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                    29
                } else {
                    28
                }
            }
            _ => 31,
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = MonthError;

    fn from_str(s: &str) -> Result<Month, MonthError> {
        let err = || MonthError(s.to_owned());
        let (y, m) = s.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        Month::new(y.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?).ok_or_else(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_forms() {
        let m: Month = "2025-03".parse().unwrap();
        assert_eq!(
            m,
            Month {
                year: 2025,
                month: 3
            }
        );
        assert_eq!(m.to_string(), "2025-03");
        assert_eq!(m.to_dsn(), "01032025");
        assert_eq!(Month::from_dsn("01032025"), Some(m));
        assert_eq!(
            m.next(),
            Month {
                year: 2025,
                month: 4
            }
        );
        assert_eq!(
            "2025-12".parse::<Month>().unwrap().next().to_string(),
            "2026-01"
        );
    }

    #[test]
    fn the_month_in_progress_is_the_one_of_paris() {
        // 31 December 2026, 22:59:59 UTC is 23:59:59 in Paris: still December.
        assert_eq!(Month::in_paris_at(1_798_757_999).to_string(), "2026-12");
        // One second later it is midnight in Paris, while still 2026 in UTC.
        assert_eq!(Month::in_paris_at(1_798_758_000).to_string(), "2027-01");
        // Summer time: 31 July 2026, 22:00 UTC is midnight of 1 August in Paris.
        assert_eq!(Month::in_paris_at(1_785_535_199).to_string(), "2026-07");
        assert_eq!(Month::in_paris_at(1_785_535_200).to_string(), "2026-08");
    }

    #[test]
    fn refuses_what_is_not_a_month() {
        for bad in [
            "2025-13", "2025-00", "2025-3", "25-03", "2025/03", "", "abcd-ef", "0999-01",
        ] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
        for bad in ["01132025", "02032025", "0103202", "01ab2025", "00002025"] {
            assert!(Month::from_dsn(bad).is_none(), "{bad}");
        }
        assert!(
            "2025-13"
                .parse::<Month>()
                .unwrap_err()
                .to_string()
                .contains("invalide")
        );
    }

    #[test]
    fn counts_days() {
        assert_eq!(Month::new(2024, 2).unwrap().days(), 29);
        assert_eq!(Month::new(2025, 2).unwrap().days(), 28);
        assert_eq!(Month::new(2100, 2).unwrap().days(), 28);
        assert_eq!(Month::new(2000, 2).unwrap().days(), 29);
        assert_eq!(Month::new(2025, 4).unwrap().days(), 30);
        assert_eq!(Month::new(2025, 12).unwrap().days(), 31);
    }
}
