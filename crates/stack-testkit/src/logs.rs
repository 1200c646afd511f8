//! Searching the logs for personal data.

/// Where `value` stands in `logs` as a number of its own, not inside a longer number nor
/// a time of day: a log line's timestamp (`…T11:19:37.912345Z`) holds any two-decimal
/// value below 60 as its seconds, which is no leak.
pub fn standalone(logs: &str, value: &str) -> Option<usize> {
    logs.match_indices(value).map(|(i, _)| i).find(|&i| {
        let before = logs[..i].chars().next_back();
        let after = logs[i + value.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == ':' || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::standalone;

    #[test]
    fn a_rate_is_found_as_a_number_but_not_in_a_timestamp() {
        assert_eq!(
            standalone("2026-12-01T11:19:37.912345Z  INFO x", "37.91"),
            None
        );
        assert_eq!(standalone("latency=137.915", "37.91"), None);
        assert!(standalone("t=2026-12-01T11:19:37.912345Z taux=37.91", "37.91").is_some());
        assert!(standalone("{\"taux\":\"41.23\"}", "41.23").is_some());
    }
}
