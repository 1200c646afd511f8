//! Version numbers of Impact emploi association (`3.00.70`, `3.00.72`, `3.02.004`):
//! numbers separated by dots, compared number by number, written as they came.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, Eq)]
pub struct Version {
    parts: Vec<u32>,
    text: String,
}

impl Version {
    /// At least two parts, digits only, 32 characters at most: anything else (`../x`,
    /// `%2e`, an empty string) is not a version.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > 32 {
            return None;
        }
        let parts = text
            .split('.')
            .map(|p| {
                if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    p.parse().ok()
                }
            })
            .collect::<Option<Vec<u32>>>()?;
        if parts.len() < 2 {
            return None;
        }
        Some(Self {
            parts,
            text: text.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_number_by_number() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("3.00.70") < v("3.00.72"));
        assert!(v("3.00.72") < v("3.02.004"));
        assert_eq!(v("3.00.72"), v("3.0.72"));
        assert_eq!(v("3.00.72").to_string(), "3.00.72");
    }

    #[test]
    fn names_that_are_not_versions_are_refused() {
        for s in [
            "",
            "3",
            "../x",
            "3.00.72/..",
            "%2e%2e",
            "3..1",
            "3.a",
            "3.00.72 ",
        ] {
            assert!(Version::parse(s).is_none(), "{s:?}");
        }
    }
}
