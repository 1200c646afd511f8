//! Times shown to people, the one way: in French words and in Europe/Paris time, e.g.
//! « 1er décembre 2026 à 11 h 20 ». Every front-end (the `iea` command, the support
//! e-mail, the web console) formats through [`date_time`] or [`date`], so a person reads
//! the same form everywhere; programs get RFC 3339 UTC instead, never this.
//!
//! The zone is always Europe/Paris, not the machine's: Impact emploi's support desk, the
//! *mot de passe du jour* and the payroll calendar all live in Paris time, and the
//! machines iea-connect runs on (servers, containers) are often set to UTC. The zone comes
//! from the IANA database compiled into the binary ([`TimeZoneDatabase::bundled`]), so it
//! works on a machine without `/usr/share/zoneinfo` and gives the same answer on every
//! machine. [`date_time_in`] formats in another zone for a caller that has one.
//!
//! French conventions followed: the first day of a month is « 1er », months are lower
//! case, the time is « 11 h 20 » (hours without a leading zero, minutes always two
//! digits, midnight « 0 h 00 »). The result has no article: callers write « le … »,
//! « depuis le … », « jusqu'au … ».
//!
//! Counts read the French way too ([`count`]: « 0 salarié », « 1 salarié », « 2 salariés »).
//!
//! Months and dates that are not instants (a declaration's month, a rate's last day) have
//! their forms here too: [`month_year`], and [`month_text`], [`date_text`], [`time_text`]
//! and [`listed_text`] for the `2026-11`, `2027-02-28`, `18:16:13` and `20261201112004`
//! the API and Net-entreprises write them as.

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{TimeZone, TimeZoneDatabase};

/// The IANA name of the zone people's times are shown in.
pub const ZONE: &str = "Europe/Paris";

static PARIS: LazyLock<TimeZone> = LazyLock::new(|| {
    TimeZoneDatabase::bundled()
        .get(ZONE)
        .expect("Europe/Paris is in the time-zone database compiled into the binary")
});

/// Europe/Paris, from the time-zone database compiled into the binary.
pub fn paris() -> &'static TimeZone {
    &PARIS
}

/// The wall-clock date and time in Paris at instant `at`.
pub fn paris_datetime(at: Timestamp) -> DateTime {
    paris().to_datetime(at)
}

/// The calendar day in Paris at instant `at`.
pub fn paris_date(at: Timestamp) -> Date {
    paris_datetime(at).date()
}

/// The instant `seconds` after 1970-01-01T00:00:00Z (as protobuf timestamps and SQLite
/// columns hold it), clamped to the range jiff represents (years -9999 to 9999).
pub fn from_unix(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap_or(if seconds < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// « 1er décembre 2026 à 11 h 20 », in Paris time.
pub fn date_time(at: Timestamp) -> String {
    date_time_in(at, paris())
}

/// [`date_time`] of an instant given in seconds since the Unix epoch.
pub fn date_time_unix(seconds: i64) -> String {
    date_time(from_unix(seconds))
}

/// « 1er décembre 2026 », the day in Paris.
pub fn date(at: Timestamp) -> String {
    civil_date(paris_date(at))
}

/// [`date_time`] in another zone.
pub fn date_time_in(at: Timestamp, tz: &TimeZone) -> String {
    let dt = tz.to_datetime(at);
    format!(
        "{} à {} h {:02}",
        civil_date(dt.date()),
        dt.hour(),
        dt.minute()
    )
}

/// « 1er décembre 2026 », « 2 janvier 2027 ».
pub fn civil_date(d: Date) -> String {
    let day = if d.day() == 1 {
        "1er".to_owned()
    } else {
        d.day().to_string()
    };
    format!(
        "{day} {} {}",
        month_name(d.month().unsigned_abs()),
        d.year()
    )
}

/// « 18 h 16 » for a wall-clock time written `18:16:13` or `18:16` (as Net-entreprises'
/// acknowledgements give it, already French time); the text as it is otherwise.
pub fn time_text(time: &str) -> String {
    match time.parse::<jiff::civil::Time>() {
        Ok(t) if matches!(time.len(), 5 | 8) => format!("{} h {:02}", t.hour(), t.minute()),
        _ => time.to_owned(),
    }
}

/// « 1er décembre 2026 à 11 h 20 » for `20261201112004` (`AAAAMMJJHHMMSS`, the time
/// Net-entreprises' listings give, already French time); the text as it is otherwise.
pub fn listed_text(stamp: &str) -> String {
    let b = stamp.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return stamp.to_owned();
    }
    let date = format!("{}-{}-{}", &stamp[..4], &stamp[4..6], &stamp[6..8]);
    let time = format!("{}:{}", &stamp[8..10], &stamp[10..12]);
    match (date.parse::<Date>(), time.parse::<jiff::civil::Time>()) {
        (Ok(d), Ok(_)) => format!("{} à {}", civil_date(d), time_text(&time)),
        _ => stamp.to_owned(),
    }
}

/// « 1 salarié », « 10 salariés »: a count and its noun (or adjective), singular for 0 and
/// 1 as French has it.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n <= 1 { one } else { many })
}

/// A due date's days left, as the deadline board says them: « aujourd'hui », « demain »,
/// « dans 3 jours », « dépassée d'un jour », « dépassée de 2 jours » (Paris calendar days,
/// negative once past).
pub fn days_left(days: i32) -> String {
    match days {
        0 => "aujourd'hui".to_owned(),
        1 => "demain".to_owned(),
        d if d > 1 => format!("dans {d} jours"),
        -1 => "dépassée d'un jour".to_owned(),
        d => format!("dépassée de {} jours", -i64::from(d)),
    }
}

/// How a declaration deposited and accepted stands against its due date: « déposée à
/// temps » (`None`), else how late it was registered, in Paris calendar days after the
/// due date's (« déposée en retard, le jour de l'échéance », « déposée avec un jour de
/// retard », « déposée avec 18 jours de retard »).
pub fn deposited(days_late: Option<i32>) -> String {
    match days_late {
        None => "déposée à temps".to_owned(),
        Some(d) if d <= 0 => "déposée en retard, le jour de l'échéance".to_owned(),
        Some(1) => "déposée avec un jour de retard".to_owned(),
        Some(d) => format!("déposée avec {d} jours de retard"),
    }
}

/// A size for people, in decimal units as a download's announced size is: « 1 octet »,
/// « 512 octets », « 65,5 ko », « 12,3 Mo », « 2,5 Go ».
pub fn size(bytes: u64) -> String {
    let (value, unit) = match bytes {
        0..1_000 => return count(bytes, "octet", "octets"),
        1_000..1_000_000 => (bytes as f64 / 1e3, "ko"),
        1_000_000..1_000_000_000 => (bytes as f64 / 1e6, "Mo"),
        _ => (bytes as f64 / 1e9, "Go"),
    };
    format!("{value:.1} {unit}").replace('.', ",")
}

/// « de novembre 2026 », « d'octobre 2026 »: `text` after « de », elided before a vowel
/// or a mute h as French writes it.
pub fn de(text: &str) -> String {
    let elides = text
        .chars()
        .next()
        .is_some_and(|c| "aàâeéèêëiîïoôuùûüyhAÀÂEÉÈÊËIÎÏOÔUÙÛÜYH".contains(c));
    if elides {
        format!("d'{text}")
    } else {
        format!("de {text}")
    }
}

/// « décembre » for 12: the month's name, lower case (« ? » outside 1 to 12).
pub fn month_name(month: u8) -> &'static str {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    usize::from(month)
        .checked_sub(1)
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("?")
}

/// « novembre 2026 »: a month of a year (a declaration's month, a due month).
pub fn month_year(year: i32, month: u8) -> String {
    format!("{} {year}", month_name(month))
}

/// [`month_year`] of a month written `2026-11` (as the API gives it); the text as it is
/// when it is not such a month, so that a person still reads what the program had.
pub fn month_text(month: &str) -> String {
    match month.split_once('-') {
        Some((y, m)) if y.len() == 4 && m.len() == 2 => match (y.parse::<i32>(), m.parse::<u8>()) {
            (Ok(y), Ok(m @ 1..=12)) => month_year(y, m),
            _ => month.to_owned(),
        },
        _ => month.to_owned(),
    }
}

/// [`civil_date`] of a date written `2027-02-28` (as the API gives it); the text as it is
/// when it is not a date of the calendar.
pub fn date_text(date: &str) -> String {
    match date.parse::<Date>() {
        Ok(d) if date.len() == 10 => civil_date(d),
        _ => date.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        rfc3339.parse().unwrap()
    }

    #[test]
    fn the_example_of_the_issue_reads_in_paris_winter_time() {
        // 10:20 UTC in December is 11:20 in Paris (UTC+1).
        assert_eq!(
            date_time(at("2026-12-01T10:20:04Z")),
            "1er décembre 2026 à 11 h 20"
        );
    }

    #[test]
    fn summer_time_is_two_hours_ahead_of_utc() {
        assert_eq!(
            date_time(at("2026-07-14T08:05:00Z")),
            "14 juillet 2026 à 10 h 05"
        );
        assert_eq!(
            date_time(at("2026-08-15T21:59:59Z")),
            "15 août 2026 à 23 h 59"
        );
    }

    #[test]
    fn midnight_is_zero_hour_and_belongs_to_the_new_day() {
        // Winter: 23:00 UTC is midnight in Paris, the next day, and the 1st of a month.
        assert_eq!(
            date_time(at("2026-01-31T23:00:00Z")),
            "1er février 2026 à 0 h 00"
        );
        assert_eq!(
            date_time(at("2026-01-31T22:59:00Z")),
            "31 janvier 2026 à 23 h 59"
        );
        // Summer: 22:00 UTC is midnight.
        assert_eq!(
            date_time(at("2026-06-30T22:00:00Z")),
            "1er juillet 2026 à 0 h 00"
        );
        // New Year's Eve turns over in Paris an hour before it does in UTC.
        assert_eq!(
            date_time(at("2026-12-31T23:30:00Z")),
            "1er janvier 2027 à 0 h 30"
        );
    }

    #[test]
    fn only_the_first_of_the_month_takes_er_and_months_are_lower_case() {
        assert_eq!(date(at("2026-03-01T12:00:00Z")), "1er mars 2026");
        assert_eq!(date(at("2026-03-02T12:00:00Z")), "2 mars 2026");
        assert_eq!(date(at("2026-03-11T12:00:00Z")), "11 mars 2026");
        assert_eq!(date(at("2026-03-21T12:00:00Z")), "21 mars 2026");
        let months: Vec<String> = (1..=12)
            .map(|m| civil_date(Date::new(2026, m, 10).unwrap()))
            .collect();
        assert_eq!(
            months,
            [
                "10 janvier 2026",
                "10 février 2026",
                "10 mars 2026",
                "10 avril 2026",
                "10 mai 2026",
                "10 juin 2026",
                "10 juillet 2026",
                "10 août 2026",
                "10 septembre 2026",
                "10 octobre 2026",
                "10 novembre 2026",
                "10 décembre 2026",
            ]
        );
    }

    #[test]
    fn the_spring_change_over_skips_from_two_to_three() {
        // Sunday 29 March 2026, 01:00 UTC: 02:00 CET becomes 03:00 CEST.
        assert_eq!(
            date_time(at("2026-03-29T00:59:00Z")),
            "29 mars 2026 à 1 h 59"
        );
        assert_eq!(
            date_time(at("2026-03-29T01:00:00Z")),
            "29 mars 2026 à 3 h 00"
        );
        // Midnight of that night is still UTC+1.
        assert_eq!(
            date_time(at("2026-03-28T23:00:00Z")),
            "29 mars 2026 à 0 h 00"
        );
        // The next midnight is UTC+2.
        assert_eq!(
            date_time(at("2026-03-29T22:00:00Z")),
            "30 mars 2026 à 0 h 00"
        );
    }

    #[test]
    fn the_autumn_change_over_shows_half_past_two_twice() {
        // Sunday 25 October 2026, 01:00 UTC: 03:00 CEST becomes 02:00 CET.
        assert_eq!(
            date_time(at("2026-10-25T00:30:00Z")),
            "25 octobre 2026 à 2 h 30"
        );
        assert_eq!(
            date_time(at("2026-10-25T01:30:00Z")),
            "25 octobre 2026 à 2 h 30"
        );
        assert_eq!(
            date_time(at("2026-10-24T22:00:00Z")),
            "25 octobre 2026 à 0 h 00"
        );
        assert_eq!(
            date_time(at("2026-10-25T23:00:00Z")),
            "26 octobre 2026 à 0 h 00"
        );
    }

    #[test]
    fn another_zone_can_be_asked_for() {
        let reunion = TimeZoneDatabase::bundled().get("Indian/Reunion").unwrap();
        assert_eq!(
            date_time_in(at("2026-12-01T10:20:00Z"), &reunion),
            "1er décembre 2026 à 14 h 20"
        );
    }

    #[test]
    fn unix_seconds_are_read_and_clamped_at_the_ends_of_the_range() {
        assert_eq!(date_time_unix(0), "1er janvier 1970 à 1 h 00");
        assert_eq!(
            date_time_unix(1_796_120_404),
            date_time(at("2026-12-01T10:20:04Z"))
        );
        assert_eq!(from_unix(i64::MAX), Timestamp::MAX);
        assert_eq!(from_unix(i64::MIN), Timestamp::MIN);
    }

    #[test]
    fn months_and_dates_written_as_the_api_gives_them_read_in_french() {
        assert_eq!(month_text("2026-11"), "novembre 2026");
        assert_eq!(month_text("2027-01"), "janvier 2027");
        assert_eq!(date_text("2027-02-28"), "28 février 2027");
        assert_eq!(date_text("2027-01-01"), "1er janvier 2027");
        // What is not a month or a date of the calendar is shown as it is.
        let odd_months = [
            "2026-13", "2026-00", "2026", "", "bientôt", "2026-1", "26-11",
        ];
        for odd in odd_months {
            assert_eq!(month_text(odd), odd);
        }
        let odd_dates = [
            "2027-02-30",
            "2027-13-01",
            "bientôt",
            "",
            "2027-02-28T10:00:00",
        ];
        for odd in odd_dates {
            assert_eq!(date_text(odd), odd);
        }
        assert_eq!(month_name(0), "?");
        assert_eq!(month_name(13), "?");
        assert_eq!(month_name(u8::MAX), "?");
    }

    #[test]
    fn net_entreprises_times_read_in_french() {
        assert_eq!(listed_text("20261201092004"), "1er décembre 2026 à 9 h 20");
        assert_eq!(time_text("18:16:13"), "18 h 16");
        assert_eq!(time_text("09:05"), "9 h 05");
        assert_eq!(time_text("00:00:00"), "0 h 00");
        // Not such a time: as it is.
        let odd_stamps = [
            "2026",
            "",
            "20261301092004",
            "20261201252004",
            "2026120109200a",
        ];
        for odd in odd_stamps {
            assert_eq!(listed_text(odd), odd);
        }
        for odd in ["25:00:00", "18h16", "", "18:16:13.5"] {
            assert_eq!(time_text(odd), odd);
        }
    }

    #[test]
    fn a_due_date_says_its_days_left_and_a_deposit_how_late_it_was() {
        assert_eq!(days_left(0), "aujourd'hui");
        assert_eq!(days_left(1), "demain");
        assert_eq!(days_left(12), "dans 12 jours");
        assert_eq!(days_left(-1), "dépassée d'un jour");
        assert_eq!(days_left(-3), "dépassée de 3 jours");
        assert_eq!(days_left(i32::MIN), "dépassée de 2147483648 jours");
        assert_eq!(deposited(None), "déposée à temps");
        assert_eq!(
            deposited(Some(0)),
            "déposée en retard, le jour de l'échéance"
        );
        assert_eq!(deposited(Some(1)), "déposée avec un jour de retard");
        assert_eq!(deposited(Some(18)), "déposée avec 18 jours de retard");
    }

    #[test]
    fn counts_take_their_plural_and_de_is_elided_before_a_vowel() {
        assert_eq!(count(0, "salarié", "salariés"), "0 salarié");
        assert_eq!(count(1, "salarié", "salariés"), "1 salarié");
        assert_eq!(count(2, "salarié", "salariés"), "2 salariés");
        assert_eq!(de(&month_year(2026, 11)), "de novembre 2026");
        assert_eq!(de(&month_year(2026, 10)), "d'octobre 2026");
        assert_eq!(de(&month_year(2026, 4)), "d'avril 2026");
        assert_eq!(de(&month_year(2026, 8)), "d'août 2026");
        assert_eq!(de(""), "de ");
    }

    /// Run again by [`the_zone_does_not_need_the_machines_database`] with `TZDIR`
    /// pointing at an empty directory; also a test of its own.
    #[test]
    fn paris_is_found_in_the_compiled_in_database() {
        assert!(!TimeZoneDatabase::bundled().is_definitively_empty());
        assert_eq!(paris().iana_name(), Some(ZONE));
        assert_eq!(
            date_time(at("2026-07-01T10:00:00Z")),
            "1er juillet 2026 à 12 h 00"
        );
    }

    #[test]
    fn the_zone_does_not_need_the_machines_database() {
        let empty = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::paris_is_found_in_the_compiled_in_database",
                "--test-threads=1",
            ])
            .env("TZDIR", empty.path())
            .env("TZ", "Europe/Paris")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }

    #[test]
    fn sizes_are_written_in_french_decimal_units() {
        assert_eq!(size(1), "1 octet");
        assert_eq!(size(512), "512 octets");
        assert_eq!(size(64 * 1024), "65,5 ko");
        assert_eq!(size(12_345_678), "12,3 Mo");
        assert_eq!(size(2_500_000_000), "2,5 Go");
    }
}
