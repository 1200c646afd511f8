//! The times of the following, pure: the back-off between listings of a deposit, the
//! due date of a declaration, the listing windows in the service's local time, the
//! validity of a rate.

use crate::deposits::ListingZone;

/// Seconds to wait after the listing number `polls` (from 0) of a phase: the `polls`-th
/// delay of `backoff_minutes`, the last one repeating (1 minute when the list is empty).
pub fn backoff_next(backoff_minutes: &[u32], polls: i64) -> i64 {
    let i = usize::try_from(polls.max(0)).unwrap_or(usize::MAX);
    let minutes = backoff_minutes
        .get(i)
        .or(backoff_minutes.last())
        .copied()
        .unwrap_or(1)
        .max(1);
    i64::from(minutes) * 60
}

/// The due date (Unix seconds) of the declaration of `month` (`YYYY-MM`): `day` (5 or
/// 15) of the following month at noon, Paris time. `None` for a month that is not one.
pub fn due_date_of_month(month: &str, day: u8) -> Option<i64> {
    let (y, m) = month.split_once('-')?;
    let (y, m): (i32, u8) = (y.parse().ok()?, m.parse().ok()?);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let first = time::Date::from_calendar_date(ny, time::Month::try_from(nm).ok()?, 1).ok()?;
    // Midnight UTC of the 1st is 1 or 2 a.m. in Paris: the next due date after it is
    // that month's.
    let start = first.midnight().assume_utc().unix_timestamp();
    Some(crate::deposits::next_due(start, day))
}

/// `AAAAMMJJHHMMSS` of `unix` in the listing's zone.
pub fn listing_time(zone: ListingZone, unix: i64) -> String {
    let at = iea_fr_time::from_unix(unix);
    match zone {
        ListingZone::EuropeParis => iea_fr_time::paris_datetime(at)
            .strftime("%Y%m%d%H%M%S")
            .to_string(),
        ListingZone::Utc => at.strftime("%Y%m%d%H%M%S").to_string(),
    }
}

/// Seconds between two `AAAAMMJJHHMMSS` read as wall-clock times (as the service
/// measures a window); `None` if one is not such a time.
pub(super) fn wall_seconds(debut: &str, fin: &str) -> Option<i64> {
    fn parse(s: &str) -> Option<time::PrimitiveDateTime> {
        if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = |a: usize, b: usize| s[a..b].parse::<u32>().ok();
        let date = time::Date::from_calendar_date(
            n(0, 4)? as i32,
            time::Month::try_from(n(4, 6)? as u8).ok()?,
            n(6, 8)? as u8,
        )
        .ok()?;
        let t = time::Time::from_hms(n(8, 10)? as u8, n(10, 12)? as u8, n(12, 14)? as u8).ok()?;
        Some(time::PrimitiveDateTime::new(date, t))
    }
    Some((parse(fin)? - parse(debut)?).whole_seconds())
}

/// The end of a window starting at `debut` at most `minutes` wide as the service
/// measures it (wall-clock time of the zone: an hour shorter across the spring change),
/// and at most `limit`.
pub fn window_end(zone: ListingZone, debut: i64, minutes: i64, limit: i64) -> i64 {
    let width = minutes.max(1) * 60;
    let d = listing_time(zone, debut);
    let fits = |fin: i64| wall_seconds(&d, &listing_time(zone, fin)).is_none_or(|w| w <= width);
    let hi = (debut + width).min(limit).max(debut);
    if fits(hi) {
        return hi;
    }
    // Wall-clock width grows with the end: the latest end that fits.
    let (mut lo, mut hi) = (debut, hi);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    lo
}

/// The day (`YYYY-MM-DD`, Paris) of `unix`.
pub fn day_of(unix: i64) -> String {
    iea_fr_time::paris_date(iea_fr_time::from_unix(unix))
        .strftime("%Y-%m-%d")
        .to_string()
}

/// The day (`YYYY-MM-DD`) of a listing's `AAAAMMJJHHMMSS`, as written.
pub fn day_of_listing(text: &str) -> Option<String> {
    let t = text.trim();
    (t.len() >= 8 && t.bytes().take(8).all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &t[0..4], &t[4..6], &t[6..8]))
}

/// The last day a rate made available on `available_on` (`YYYY-MM-DD`) is valid: the
/// end of the second month after.
pub fn valid_until_of(available_on: &str) -> Option<String> {
    let (y, rest) = available_on.split_once('-')?;
    let (m, _) = rest.split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    if !(1..=12).contains(&m) {
        return None;
    }
    // Month + 2, then its last day: the day before the 1st of month + 3.
    let idx = y * 12 + (m as i32 - 1) + 3;
    let (ny, nm) = (idx.div_euclid(12), idx.rem_euclid(12) + 1);
    let first =
        time::Date::from_calendar_date(ny, time::Month::try_from(nm as u8).ok()?, 1).ok()?;
    let last = first.previous_day()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        last.year(),
        u8::from(last.month()),
        last.day()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_back_off_grows_then_repeats_its_last_delay() {
        let b = [1, 2, 5, 15, 60];
        let got: Vec<i64> = (0..7).map(|i| backoff_next(&b, i) / 60).collect();
        assert_eq!(got, vec![1, 2, 5, 15, 60, 60, 60]);
        assert_eq!(backoff_next(&[], 3), 60);
    }

    #[test]
    fn a_declarations_due_date_is_in_the_following_month() {
        assert_eq!(
            due_date_of_month("2026-11", 15),
            Some(datetime!(2026-12-15 11:00 UTC).unix_timestamp())
        );
        assert_eq!(
            due_date_of_month("2026-12", 5),
            Some(datetime!(2027-01-05 11:00 UTC).unix_timestamp())
        );
        assert_eq!(
            due_date_of_month("2026-06", 15),
            Some(datetime!(2026-07-15 10:00 UTC).unix_timestamp())
        );
        assert_eq!(due_date_of_month("2026-13", 15), None);
    }

    #[test]
    fn a_rate_is_valid_until_the_end_of_the_second_month_after() {
        assert_eq!(valid_until_of("2026-12-16").as_deref(), Some("2027-02-28"));
        assert_eq!(valid_until_of("2027-12-01").as_deref(), Some("2028-02-29"));
        assert_eq!(valid_until_of("2026-01-31").as_deref(), Some("2026-03-31"));
        assert_eq!(valid_until_of("x").as_deref(), None);
    }

    #[test]
    fn a_window_is_never_wider_than_asked_in_wall_clock_time() {
        let z = ListingZone::EuropeParis;
        // An ordinary hour.
        let d = datetime!(2026-12-01 10:00 UTC).unix_timestamp();
        assert_eq!(window_end(z, d, 60, i64::MAX), d + 3600);
        assert_eq!(window_end(z, d, 60, d + 600), d + 600);
        // Across the spring change (01:00 UTC on 2027-03-28): 00:30 UTC is 01:30 in
        // Paris, 01:30 UTC is 03:30: two wall-clock hours; the window is cut to one.
        let d = datetime!(2027-03-28 00:30 UTC).unix_timestamp();
        let fin = window_end(z, d, 60, i64::MAX);
        let wall = wall_seconds(&listing_time(z, d), &listing_time(z, fin)).unwrap();
        assert!(wall <= 3600, "{wall}");
        // 01:59:59 in Paris: the last second before the change.
        assert_eq!(fin, datetime!(2027-03-28 00:59:59 UTC).unix_timestamp());
        assert_eq!(window_end(ListingZone::Utc, d, 60, i64::MAX), d + 3600);
    }

    #[test]
    fn days_are_read_from_listings() {
        assert_eq!(
            day_of_listing("20261216120000").as_deref(),
            Some("2026-12-16")
        );
        assert_eq!(day_of_listing("bad"), None);
        assert_eq!(
            day_of(datetime!(2026-12-31 23:30 UTC).unix_timestamp()),
            "2027-01-01"
        );
    }
}
