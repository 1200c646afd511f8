//! Impact emploi version numbers (`3.00.70`, `3.00.72`, `3.02.004`), compared numerically
//! part by part: leading zeros do not count and a missing part is zero, so
//! `3.00.70 < 3.00.72 < 3.02.004` and `3.2 == 3.02.0`.

use std::cmp::Ordering;
use std::fmt;

/// A parsed version; keeps the text it was read from for display.
#[derive(Debug, Clone)]
pub struct Version {
    parts: Vec<u64>,
    text: String,
}

/// Why a text is not a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError(pub String);

impl std::error::Error for VersionError {}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "« {} » n'est pas un numéro de version (attendu : des nombres séparés par des points, par exemple 3.00.72)",
            self.0
        )
    }
}

impl Version {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let err = || VersionError(text.to_owned());
        if text.is_empty() || text.len() > 64 {
            return Err(err());
        }
        let parts = text
            .split('.')
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                p.parse::<u64>().map_err(|_| err())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            parts,
            text: text.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.parts.len().max(other.parts.len());
        (0..len)
            .map(|i| {
                let a = self.parts.get(i).copied().unwrap_or(0);
                let b = other.parts.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_compare_numerically_part_by_part() {
        assert!(v("3.00.70") < v("3.00.72"));
        assert!(v("3.00.72") < v("3.02.004"));
        assert!(v("3.00.9") < v("3.00.10"));
        assert_eq!(v("3.2"), v("3.02.0"));
        assert!(v("3.02.004") > v("3.2.3"));
    }

    #[test]
    fn texts_that_are_not_versions_are_refused() {
        for bad in [
            "",
            "3..1",
            "3.00.x",
            "v3.00.72",
            " 3.00.72",
            "3.00.72-beta",
            "99999999999999999999999",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
