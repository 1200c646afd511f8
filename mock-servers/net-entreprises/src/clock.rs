//! The mock's clock and the time zone of the business services.
//!
//! Every time the mock shows or compares (token expiry, `Expires`, deposit dates, listing
//! windows, return publication) comes from [`Clock`]: the real time plus an offset that
//! the control API can move (`POST /__admin/clock`), so that a test makes hours or days
//! pass without waiting. Dates in the business answers (`AAAAMMJJHHMMSS`, the AEE's date
//! and time of reception) are wall-clock times in the [`TimeZone`] setting: Europe/Paris by
//! default, as the publisher's servers (the simulator kit uses its server's zone), or UTC.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The zone of the dates written and read by the business services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeZone {
    /// Central European time with the EU summer rule (UTC+1, UTC+2 from the last Sunday
    /// of March to the last Sunday of October, changes at 01:00 UTC).
    #[default]
    EuropeParis,
    Utc,
}

impl TimeZone {
    /// The offset from UTC at the instant `at`.
    pub fn offset_at(self, at: OffsetDateTime) -> UtcOffset {
        match self {
            TimeZone::Utc => UtcOffset::UTC,
            TimeZone::EuropeParis => {
                let utc = at.to_offset(UtcOffset::UTC);
                let year = utc.year();
                let starts = change_instant(year, Month::March);
                let ends = change_instant(year, Month::October);
                let hours = if utc >= starts && utc < ends { 2 } else { 1 };
                UtcOffset::from_hms(hours, 0, 0).expect("1 or 2 hours is a valid offset")
            }
        }
    }

    /// `at` as a wall-clock time of this zone, `AAAAMMJJHHMMSS`.
    pub fn format_compact(self, at: OffsetDateTime) -> String {
        let local = at.to_offset(self.offset_at(at));
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            local.year(),
            u8::from(local.month()),
            local.day(),
            local.hour(),
            local.minute(),
            local.second()
        )
    }

    /// `at` as this zone's date `AAAA-MM-JJ` and time `HH:MM:SS` (the AEE's fields).
    pub fn date_and_time(self, at: OffsetDateTime) -> (String, String) {
        let local = at.to_offset(self.offset_at(at));
        (
            format!(
                "{:04}-{:02}-{:02}",
                local.year(),
                u8::from(local.month()),
                local.day()
            ),
            format!(
                "{:02}:{:02}:{:02}",
                local.hour(),
                local.minute(),
                local.second()
            ),
        )
    }

    /// Reads a strict `AAAAMMJJHHMMSS` wall-clock time of this zone. A time that does not
    /// exist (spring) takes the winter offset; one that exists twice (autumn), the first.
    pub fn parse_compact(self, text: &str) -> Option<OffsetDateTime> {
        if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = |r: std::ops::Range<usize>| text[r].parse::<u32>().ok();
        let year = i32::try_from(n(0..4)?).ok()?;
        let month = Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
        let date = Date::from_calendar_date(year, month, u8::try_from(n(6..8)?).ok()?).ok()?;
        let time = Time::from_hms(
            u8::try_from(n(8..10)?).ok()?,
            u8::try_from(n(10..12)?).ok()?,
            u8::try_from(n(12..14)?).ok()?,
        )
        .ok()?;
        let naive = PrimitiveDateTime::new(date, time).assume_utc();
        // The offset in force two hours before, read as UTC: right on both sides of a change.
        let offset = self.offset_at(naive - Duration::hours(2));
        Some(naive - Duration::seconds(offset.whole_seconds().into()))
    }
}

/// 01:00 UTC on the last Sunday of `month`.
fn change_instant(year: i32, month: Month) -> OffsetDateTime {
    let days = time::util::days_in_month(month, year);
    let mut day = Date::from_calendar_date(year, month, days).expect("last day of a month");
    while day.weekday() != time::Weekday::Sunday {
        day = day.previous_day().expect("a day before the end of a month");
    }
    PrimitiveDateTime::new(day, Time::from_hms(1, 0, 0).expect("01:00")).assume_utc()
}

/// The real time plus an offset set through the control API; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<Mutex<Duration>>);

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset()
    }

    /// The same instant as a `SystemTime` (for HTTP dates).
    pub fn now_system(&self) -> SystemTime {
        SystemTime::from(self.now())
    }

    pub fn offset(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock by `by` (negative goes back) and answers the new offset.
    pub fn advance(&self, by: Duration) -> Duration {
        let mut offset = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
        *offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn paris_is_one_hour_ahead_in_winter_and_two_in_summer_changing_at_one_utc() {
        let tz = TimeZone::EuropeParis;
        assert_eq!(
            tz.format_compact(datetime!(2026-01-15 12:00:00 UTC)),
            "20260115130000"
        );
        assert_eq!(
            tz.format_compact(datetime!(2026-07-15 12:00:00 UTC)),
            "20260715140000"
        );
        // 2026: last Sunday of March is the 29th, of October the 25th.
        assert_eq!(
            tz.format_compact(datetime!(2026-03-29 00:59:59 UTC)),
            "20260329015959"
        );
        assert_eq!(
            tz.format_compact(datetime!(2026-03-29 01:00:00 UTC)),
            "20260329030000"
        );
        assert_eq!(
            tz.format_compact(datetime!(2026-10-25 01:00:00 UTC)),
            "20261025020000"
        );
        assert_eq!(
            TimeZone::Utc.format_compact(datetime!(2026-07-15 12:00:00 UTC)),
            "20260715120000"
        );
    }

    #[test]
    fn compact_times_read_back_to_the_same_instant_and_malformed_ones_are_refused() {
        for tz in [TimeZone::EuropeParis, TimeZone::Utc] {
            for at in [
                datetime!(2026-01-15 12:34:56 UTC),
                datetime!(2026-07-15 23:59:59 UTC),
                datetime!(2026-03-29 01:30:00 UTC),
                datetime!(2026-03-29 00:30:00 UTC),
                datetime!(2026-10-25 00:30:00 UTC),
                datetime!(2026-10-25 02:30:00 UTC),
            ] {
                assert_eq!(tz.parse_compact(&tz.format_compact(at)), Some(at));
            }
        }
        for bad in [
            "",
            "2026011512345",
            "202601151234567",
            "20261315123456",
            "20260230123456",
            "20260115243456",
            "2026011512345a",
            "+0260115123456",
        ] {
            assert_eq!(TimeZone::Utc.parse_compact(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_clock_moves_by_the_offset_set() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::days(3));
        let after = clock.now();
        assert!(after - before >= Duration::days(3));
        assert!(after - before < Duration::days(3) + Duration::seconds(5));
    }
}
