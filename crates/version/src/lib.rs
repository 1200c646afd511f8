//! The Impact emploi association version number, as IEA writes it (`3.00.70`, `3.00.72`,
//! `3.02.004`): the one definition used by the auth client, the update client and both
//! Impact emploi mocks, so that a version is read, written and compared the same way at
//! every hop.
//!
//! # Grammar
//!
//! ```text
//! version = major "." minor "." patch
//! major   = "0" / %x31-39 0*2DIGIT   ; 0 to 999, no leading zero   (3)
//! minor   = 2DIGIT                   ; exactly two digits          (00, 02)
//! patch   = 2DIGIT / 3DIGIT          ; two or three digits         (70, 004)
//! ```
//!
//! ASCII digits only, nothing before, after or between (no spaces, no `v`, no sign): a
//! version is therefore at most 10 characters of `[0-9.]` and is safe as a file or
//! directory name (the update client names its installed versions after it).
//!
//! The patch keeps the width it was written with: IEA wrote `3.00.72` and `3.02.004`, so
//! both widths exist. [`Display`](fmt::Display) gives back exactly the text that was
//! parsed, and two versions are equal only if they are written the same way.
//!
//! # Order
//!
//! Numeric, part by part: `3.00.70 < 3.00.72 < 3.01.00 < 3.02.004 < 10.00.00`. Between two
//! writings of the same number (`3.02.04` and `3.02.004`, which IEA does not publish) the
//! three-digit one is the greater, so that the order agrees with equality.
//!
//! # Serde
//!
//! A version is serialised as its text and deserialised from a string through the same
//! parser, so a malformed version in JSON is refused with the same French message.

use std::fmt;
use std::str::FromStr;

/// An Impact emploi version number: see the crate documentation for the grammar and the
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImpactVersion {
    // Field order is the comparison order (derived `Ord`).
    major: u16,
    minor: u8,
    patch: u16,
    /// 2 or 3: how many digits the patch was written with.
    patch_digits: u8,
}

impl ImpactVersion {
    /// The first number (`3` in `3.02.004`).
    pub fn major(&self) -> u16 {
        self.major
    }

    /// The second number (`2` in `3.02.004`).
    pub fn minor(&self) -> u8 {
        self.minor
    }

    /// The third number (`4` in `3.02.004`).
    pub fn patch(&self) -> u16 {
        self.patch
    }
}

impl fmt::Display for ImpactVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02}.{:0width$}",
            self.major,
            self.minor,
            self.patch,
            width = usize::from(self.patch_digits)
        )
    }
}

/// Which rule of the grammar a text breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The text is empty.
    Empty,
    /// Not three parts separated by dots.
    Shape,
    /// The first part is not 1 to 3 digits without a leading zero.
    Major,
    /// The second part is not exactly 2 digits.
    Minor,
    /// The third part is not 2 or 3 digits.
    Patch,
}

impl Problem {
    fn sentence(self) -> &'static str {
        match self {
            Self::Empty => "le numéro est vide",
            Self::Shape => "il faut trois nombres séparés par des points",
            Self::Major => "le premier nombre doit avoir de un à trois chiffres, sans zéro en tête",
            Self::Minor => "le deuxième nombre doit avoir exactement deux chiffres",
            Self::Patch => "le troisième nombre doit avoir deux ou trois chiffres",
        }
    }
}

/// A text that is not a version: which rule it breaks, and a French sentence quoting (the
/// beginning of) the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("« {shown} » n'est pas un numéro de version d'Impact emploi : {} (par exemple 3.00.72).", problem.sentence())]
pub struct ParseVersionError {
    problem: Problem,
    /// The offending text as quoted in the message: at most [`QUOTED_CHARS`] characters,
    /// control characters escaped.
    shown: String,
}

/// How many characters of a bad text the message quotes.
const QUOTED_CHARS: usize = 24;

impl ParseVersionError {
    fn new(text: &str, problem: Problem) -> Self {
        let mut shown = String::new();
        for (i, c) in text.chars().enumerate() {
            if i == QUOTED_CHARS {
                shown.push('…');
                break;
            }
            if c.is_control() {
                shown.extend(c.escape_default());
            } else {
                shown.push(c);
            }
        }
        Self { problem, shown }
    }

    /// The rule the text breaks.
    pub fn problem(&self) -> Problem {
        self.problem
    }
}

fn all_digits(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a part already checked to be 1 to 3 ASCII digits.
fn number(part: &str) -> u16 {
    part.bytes().fold(0, |n, b| n * 10 + u16::from(b - b'0'))
}

impl FromStr for ImpactVersion {
    type Err = ParseVersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |problem| ParseVersionError::new(text, problem);
        if text.is_empty() {
            return Err(err(Problem::Empty));
        }
        let mut parts = text.split('.');
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err(Problem::Shape));
        };
        if !all_digits(major) || major.len() > 3 || (major.len() > 1 && major.starts_with('0')) {
            return Err(err(Problem::Major));
        }
        if !all_digits(minor) || minor.len() != 2 {
            return Err(err(Problem::Minor));
        }
        if !all_digits(patch) || !(2..=3).contains(&patch.len()) {
            return Err(err(Problem::Patch));
        }
        Ok(Self {
            major: number(major),
            // Two digits: at most 99.
            minor: number(minor) as u8,
            patch: number(patch),
            patch_digits: patch.len() as u8,
        })
    }
}

impl TryFrom<&str> for ImpactVersion {
    type Error = ParseVersionError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl serde::Serialize for ImpactVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImpactVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ImpactVersion;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an Impact emploi version such as \"3.00.72\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ImpactVersion {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    #[test]
    fn versions_as_iea_writes_them_are_read_number_by_number() {
        let parts = |x: ImpactVersion| (x.major(), x.minor(), x.patch());
        assert_eq!(parts(v("3.00.70")), (3, 0, 70));
        assert_eq!(parts(v("3.02.004")), (3, 2, 4));
        assert_eq!(parts(v("10.99.999")), (10, 99, 999));
        assert_eq!(parts(v("0.00.00")), (0, 0, 0));
        assert_eq!(ImpactVersion::try_from("3.00.72"), Ok(v("3.00.72")));
    }

    #[test]
    fn display_gives_back_the_text_that_was_parsed() {
        for text in [
            "3.00.70",
            "3.00.72",
            "3.01.00",
            "3.02.004",
            "3.02.04",
            "0.00.00",
            "999.99.999",
        ] {
            assert_eq!(v(text).to_string(), text);
            assert_eq!(v(&v(text).to_string()), v(text));
        }
    }

    #[test]
    fn versions_compare_as_numbers() {
        let ordered = [
            "0.00.00", "3.00.09", "3.00.10", "3.00.70", "3.00.72", "3.00.99", "3.00.100",
            "3.01.00", "3.02.004", "3.10.00", "10.00.00",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
        }
        let mut shuffled: Vec<ImpactVersion> = ordered.iter().rev().map(|t| v(t)).collect();
        shuffled.sort();
        let sorted: Vec<String> = shuffled.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ordered);
        assert_eq!(v("3.00.72").cmp(&v("3.00.72")), std::cmp::Ordering::Equal);
    }

    #[test]
    fn two_writings_of_one_patch_differ_and_the_order_agrees() {
        assert_ne!(v("3.02.04"), v("3.02.004"));
        assert!(v("3.02.04") < v("3.02.004"));
        assert!(v("3.02.004") < v("3.02.05"));
        assert!(v("3.02.03") < v("3.02.04"));
    }

    #[test]
    fn texts_that_are_not_versions_are_refused_naming_the_rule() {
        let cases = [
            ("", Problem::Empty),
            ("3", Problem::Shape),
            ("3.00", Problem::Shape),
            ("3.00.72.1", Problem::Shape),
            ("3.00.72/..", Problem::Shape),
            ("%2e%2e", Problem::Shape),
            ("../x", Problem::Major),
            ("03.00.72", Problem::Major),
            ("1000.00.00", Problem::Major),
            ("v3.00.72", Problem::Major),
            (" 3.00.72", Problem::Major),
            ("+3.00.72", Problem::Major),
            (".00.72", Problem::Major),
            ("3..72", Problem::Minor),
            ("3.0.72", Problem::Minor),
            ("3.000.72", Problem::Minor),
            ("3.0a.72", Problem::Minor),
            ("3.00.7", Problem::Patch),
            ("3.00.", Problem::Patch),
            ("3.00.0072", Problem::Patch),
            ("3.00.72 ", Problem::Patch),
            ("3.00.72\n", Problem::Patch),
            ("3.00.72-beta", Problem::Patch),
            ("3.00.-1", Problem::Patch),
            ("3.00.٧٢", Problem::Patch),
        ];
        for (text, problem) in cases {
            let e = text.parse::<ImpactVersion>().unwrap_err();
            assert_eq!(e.problem(), problem, "{text:?}");
        }
    }

    #[test]
    fn the_message_is_french_quotes_the_text_and_names_the_rule() {
        let e = "3.0.72".parse::<ImpactVersion>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "« 3.0.72 » n'est pas un numéro de version d'Impact emploi : le deuxième nombre \
             doit avoir exactement deux chiffres (par exemple 3.00.72)."
        );
        let e = "".parse::<ImpactVersion>().unwrap_err();
        assert!(e.to_string().contains("le numéro est vide"), "{e}");
        // A long text is cut, control characters are escaped.
        let long = format!("3.00.72\n{}", "9".repeat(1000));
        let message = long.parse::<ImpactVersion>().unwrap_err().to_string();
        assert!(message.starts_with("« 3.00.72\\n9999"), "{message}");
        assert!(message.contains("… »") && message.len() < 200, "{message}");
    }

    #[test]
    fn serde_writes_and_reads_the_text() {
        let json = serde_json::to_string(&v("3.02.004")).unwrap();
        assert_eq!(json, r#""3.02.004""#);
        assert_eq!(
            serde_json::from_str::<ImpactVersion>(&json).unwrap(),
            v("3.02.004")
        );
        let e = serde_json::from_str::<ImpactVersion>(r#""3.0.72""#).unwrap_err();
        assert!(
            e.to_string().contains("n'est pas un numéro de version"),
            "{e}"
        );
        assert!(serde_json::from_str::<ImpactVersion>("3").is_err());
    }
}
