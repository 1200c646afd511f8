//! The *mot de passe du jour*: the code support reads out on the phone to end assistance
//! mode. It is valid for one installation and one calendar day in Europe/Paris.
//!
//! Definition (shared by this mock, which plays the support desk, and the orchestrator,
//! which checks what the user types):
//!
//! ```text
//! mac  = HMAC-SHA256(key = installation secret, message = installation_id ‖ "|" ‖ date)
//! code = the first 50 bits of mac, as 10 symbols of Crockford's base 32
//!        (alphabet 0123456789ABCDEFGHJKMNPQRSTVWXYZ: no I, L, O, U)
//! ```
//!
//! `date` is `YYYY-MM-DD`, the day in Europe/Paris ([`paris_date`]). The date has a fixed
//! length at the end of the message, so no (id, date) pair can be confused with another.
//! Typing is forgiving ([`normalize`]): case, spaces and dashes are ignored, and `O`, `I`,
//! `L` are read as `0`, `1`, `1`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::macros::time;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Number of symbols of a daily password.
pub const DAILY_PASSWORD_LEN: usize = 10;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The daily password of `installation_id` for `date` (`YYYY-MM-DD`, Europe/Paris).
pub fn daily_password(secret: &[u8], installation_id: &str, date: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(installation_id.as_bytes());
    mac.update(b"|");
    mac.update(date.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let bits = u64::from_be_bytes(first);
    (0..DAILY_PASSWORD_LEN)
        .map(|i| {
            let index = (bits >> (64 - 5 * (i + 1))) & 0x1f;
            char::from(ALPHABET[index as usize])
        })
        .collect()
}

/// What a person typed, made comparable: upper case, without spaces, dashes or dots, and
/// with the letters that look like digits read as those digits.
pub fn normalize(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '_'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// Whether `typed` is the daily password of `installation_id` for `date`, compared in
/// constant time after [`normalize`].
pub fn verify_daily_password(
    secret: &[u8],
    installation_id: &str,
    date: &str,
    typed: &str,
) -> bool {
    let expected = daily_password(secret, installation_id, date);
    let typed = normalize(typed);
    typed.len() == expected.len()
        && typed
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The calendar day in Europe/Paris at instant `at`: UTC+1, or UTC+2 from the last
/// Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC (the EU rule in
/// force since 1996).
pub fn paris_date(at: OffsetDateTime) -> Date {
    let utc = at.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let summer_starts =
        PrimitiveDateTime::new(last_sunday(year, Month::March), time!(1:00)).assume_utc();
    let summer_ends =
        PrimitiveDateTime::new(last_sunday(year, Month::October), time!(1:00)).assume_utc();
    let offset = if utc >= summer_starts && utc < summer_ends {
        2
    } else {
        1
    };
    (utc + Duration::hours(offset)).date()
}

/// Today in Europe/Paris, as `YYYY-MM-DD`.
pub fn paris_today() -> String {
    format_date(paris_date(OffsetDateTime::now_utc()))
}

/// `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Reads a strict `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if text.len() != 10 {
        return None;
    }
    Date::parse(text, format).ok()
}

fn last_sunday(year: i32, month: Month) -> Date {
    let days = time::util::days_in_month(month, year);
    let last = Date::from_calendar_date(year, month, days).expect("last day of a month exists");
    last - Duration::days(i64::from(last.weekday().number_days_from_sunday()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_same_installation_and_day_give_the_same_password() {
        let a = daily_password(b"0123456789abcdef", "IEA-0001", "2026-03-14");
        let b = daily_password(b"0123456789abcdef", "IEA-0001", "2026-03-14");
        assert_eq!(a, b);
        assert_eq!(a.len(), DAILY_PASSWORD_LEN);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)), "{a}");
    }

    #[test]
    fn another_day_another_installation_or_another_secret_give_another_password() {
        let base = daily_password(b"0123456789abcdef", "IEA-0001", "2026-03-14");
        assert_ne!(
            base,
            daily_password(b"0123456789abcdef", "IEA-0001", "2026-03-15")
        );
        assert_ne!(
            base,
            daily_password(b"0123456789abcdef", "IEA-0002", "2026-03-14")
        );
        assert_ne!(
            base,
            daily_password(b"fedcba9876543210", "IEA-0001", "2026-03-14")
        );
    }

    #[test]
    fn typing_is_forgiving_about_case_separators_and_look_alike_letters() {
        let secret = b"0123456789abcdef";
        let code = daily_password(secret, "IEA-0001", "2026-03-14");
        let typed = format!(" {}-{} ", code[..5].to_lowercase(), &code[5..]);
        assert!(verify_daily_password(
            secret,
            "IEA-0001",
            "2026-03-14",
            &typed
        ));
        let looks_alike: String = code.replace('0', "O").replace('1', "l");
        assert!(verify_daily_password(
            secret,
            "IEA-0001",
            "2026-03-14",
            &looks_alike
        ));
        assert!(!verify_daily_password(
            secret,
            "IEA-0001",
            "2026-03-15",
            &code
        ));
        assert!(!verify_daily_password(
            secret,
            "IEA-0001",
            "2026-03-14",
            &code[..9]
        ));
    }

    #[test]
    fn the_paris_day_follows_winter_and_summer_time() {
        // Winter: UTC+1.
        assert_eq!(
            format_date(paris_date(datetime!(2026-01-10 22:59 UTC))),
            "2026-01-10"
        );
        assert_eq!(
            format_date(paris_date(datetime!(2026-01-10 23:00 UTC))),
            "2026-01-11"
        );
        // Summer: UTC+2.
        assert_eq!(
            format_date(paris_date(datetime!(2026-07-10 21:59 UTC))),
            "2026-07-10"
        );
        assert_eq!(
            format_date(paris_date(datetime!(2026-07-10 22:00 UTC))),
            "2026-07-11"
        );
        // 2026 switches on 29 March and 25 October, at 01:00 UTC.
        assert_eq!(
            last_sunday(2026, Month::March),
            time::macros::date!(2026 - 03 - 29)
        );
        assert_eq!(
            last_sunday(2026, Month::October),
            time::macros::date!(2026 - 10 - 25)
        );
        assert_eq!(
            format_date(paris_date(datetime!(2026-03-28 23:30 UTC))),
            "2026-03-29"
        );
        assert_eq!(
            format_date(paris_date(datetime!(2026-10-24 22:30 UTC))),
            "2026-10-25"
        );
        assert_eq!(
            format_date(paris_date(datetime!(2026-10-25 22:30 UTC))),
            "2026-10-25"
        );
    }

    #[test]
    fn only_strict_dates_are_read() {
        assert_eq!(
            parse_date("2026-03-14"),
            Some(time::macros::date!(2026 - 03 - 14))
        );
        for bad in [
            "2026-3-14",
            "14/03/2026",
            "2026-02-30",
            "",
            "2026-03-14T00:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
