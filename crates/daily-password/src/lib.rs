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
use time::{Date, Month, OffsetDateTime};

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

/// The calendar day in Europe/Paris at instant `at`, from the IANA time-zone database
/// compiled into the binary ([`iea_fr_time::paris`]): the same answer on every machine,
/// with or without `/usr/share/zoneinfo`.
pub fn paris_date(at: OffsetDateTime) -> Date {
    let day = iea_fr_time::paris_date(iea_fr_time::from_unix(at.unix_timestamp()));
    let month = Month::try_from(day.month().unsigned_abs()).expect("jiff months are 1 to 12");
    Date::from_calendar_date(i32::from(day.year()), month, day.day().unsigned_abs())
        .expect("a day jiff represents exists in the proleptic Gregorian calendar")
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

    fn day(at: OffsetDateTime) -> String {
        format_date(paris_date(at))
    }

    #[test]
    fn the_paris_day_follows_winter_and_summer_time() {
        // Winter: UTC+1.
        assert_eq!(day(datetime!(2026-01-10 22:59:59 UTC)), "2026-01-10");
        assert_eq!(day(datetime!(2026-01-10 23:00 UTC)), "2026-01-11");
        // Summer: UTC+2.
        assert_eq!(day(datetime!(2026-07-10 21:59:59 UTC)), "2026-07-10");
        assert_eq!(day(datetime!(2026-07-10 22:00 UTC)), "2026-07-11");
        // An instant given with another offset is the same instant.
        assert_eq!(day(datetime!(2026-07-11 00:30 +02:00)), "2026-07-11");
        assert_eq!(day(datetime!(2026-07-10 18:30 -04:00)), "2026-07-11");
    }

    #[test]
    fn the_spring_change_over_night() {
        // Sunday 29 March 2026: 02:00 CET (01:00 UTC) becomes 03:00 CEST.
        // Local midnight that night is still winter time: 23:00 UTC the day before.
        assert_eq!(day(datetime!(2026-03-28 22:59:59 UTC)), "2026-03-28");
        assert_eq!(day(datetime!(2026-03-28 23:00 UTC)), "2026-03-29");
        // Around the switch itself the day does not move.
        assert_eq!(day(datetime!(2026-03-29 00:59:59 UTC)), "2026-03-29");
        assert_eq!(day(datetime!(2026-03-29 01:00 UTC)), "2026-03-29");
        // The next midnight is summer time: 22:00 UTC.
        assert_eq!(day(datetime!(2026-03-29 21:59:59 UTC)), "2026-03-29");
        assert_eq!(day(datetime!(2026-03-29 22:00 UTC)), "2026-03-30");
        // Another year, another last Sunday: 28 March 2027.
        assert_eq!(day(datetime!(2027-03-27 22:59 UTC)), "2027-03-27");
        assert_eq!(day(datetime!(2027-03-27 23:00 UTC)), "2027-03-28");
        assert_eq!(day(datetime!(2027-03-28 22:00 UTC)), "2027-03-29");
    }

    #[test]
    fn the_autumn_change_over_night() {
        // Sunday 25 October 2026: 03:00 CEST (01:00 UTC) becomes 02:00 CET.
        // Local midnight that night is still summer time: 22:00 UTC the day before.
        assert_eq!(day(datetime!(2026-10-24 21:59:59 UTC)), "2026-10-24");
        assert_eq!(day(datetime!(2026-10-24 22:00 UTC)), "2026-10-25");
        assert_eq!(day(datetime!(2026-10-25 00:59:59 UTC)), "2026-10-25");
        assert_eq!(day(datetime!(2026-10-25 01:00 UTC)), "2026-10-25");
        // The next midnight is winter time: 23:00 UTC.
        assert_eq!(day(datetime!(2026-10-25 22:30 UTC)), "2026-10-25");
        assert_eq!(day(datetime!(2026-10-25 22:59:59 UTC)), "2026-10-25");
        assert_eq!(day(datetime!(2026-10-25 23:00 UTC)), "2026-10-26");
        // 31 October 2027.
        assert_eq!(day(datetime!(2027-10-30 22:00 UTC)), "2027-10-31");
        assert_eq!(day(datetime!(2027-10-31 22:59 UTC)), "2027-10-31");
        assert_eq!(day(datetime!(2027-10-31 23:00 UTC)), "2027-11-01");
    }

    #[test]
    fn the_password_changes_at_paris_midnight_on_the_change_over_nights() {
        let secret = b"0123456789abcdef";
        let at = |t: OffsetDateTime| daily_password(secret, "IEA-0001", &day(t));
        // 30 minutes after local midnight, support reads out the new day's code.
        assert_eq!(
            at(datetime!(2026-03-28 23:30 UTC)),
            daily_password(secret, "IEA-0001", "2026-03-29")
        );
        assert_eq!(
            at(datetime!(2026-10-24 22:30 UTC)),
            daily_password(secret, "IEA-0001", "2026-10-25")
        );
        assert_ne!(
            at(datetime!(2026-10-24 21:30 UTC)),
            at(datetime!(2026-10-24 22:30 UTC))
        );
    }

    /// The change-over tests again, in a process whose `TZDIR` names an empty directory:
    /// the day comes from the database compiled in, not from the machine's.
    #[test]
    fn the_change_over_nights_need_no_zoneinfo_on_the_machine() {
        let empty = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::the_spring_change_over_night",
                "tests::the_autumn_change_over_night",
                "--test-threads=1",
            ])
            .env("TZDIR", empty.path())
            .env("TZ", "Europe/Paris")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("2 passed"), "{stdout}");
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
