//! What is wrong with a file: each problem with its line, a stable English code and a
//! French sentence.

use std::fmt;

/// The kind of a problem. [`ProblemKind::code`] is stable (logs, JSON, tests).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProblemKind {
    /// The file has no line at all.
    EmptyFile,
    /// A line is UTF-8 text with multi-byte sequences (accented letters): it would arrive
    /// garbled, since the file must be ISO-8859-1.
    NotLatin1,
    /// A line holds a control character other than the line end.
    ControlCharacter,
    /// A line is not `Sxx.Gyy.zz.nnn,'value'`.
    NotARubric,
    /// The first rubric is not `S10.G00.00.001`.
    FirstRubric,
    /// Not exactly one `S20.G00.05` declaration block (deposits are unitary).
    DeclarationCount,
    /// `S90.G00.90.001` is not the number of lines of the file.
    LineCountTotal,
    /// `S90.G00.90.002` is not 1.
    DeclarationCountTotal,
    /// A SIRET (sender's or declared establishment's) is malformed or fails its key.
    InvalidSiret,
    /// `S20.G00.05.005` is not `01MMAAAA` with a real month.
    InvalidMonth,
    /// `S21.G00.50.006` is not `[0-9]{1,2}.[0-9]{2}`.
    InvalidPasRate,
    /// A rubric the deposit needs is absent.
    MissingRubric,
    /// A coded value is not one the norm allows (e.g. `S10.G00.00.005` not 01 or 02).
    InvalidValue,
    /// A block appears where the norm does not allow it (a payment before any employee).
    MisplacedBlock,
    /// The declared month (`S20.G00.05.005`) has not begun yet in Paris: a month typed
    /// wrong in the payroll (the only check that needs today's date,
    /// [`crate::Declaration::month_not_begun`]).
    MonthNotBegun,
}

impl ProblemKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [ProblemKind; 15] = [
        ProblemKind::EmptyFile,
        ProblemKind::NotLatin1,
        ProblemKind::ControlCharacter,
        ProblemKind::NotARubric,
        ProblemKind::FirstRubric,
        ProblemKind::DeclarationCount,
        ProblemKind::LineCountTotal,
        ProblemKind::DeclarationCountTotal,
        ProblemKind::InvalidSiret,
        ProblemKind::InvalidMonth,
        ProblemKind::InvalidPasRate,
        ProblemKind::MissingRubric,
        ProblemKind::InvalidValue,
        ProblemKind::MisplacedBlock,
        ProblemKind::MonthNotBegun,
    ];

    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::EmptyFile => "empty_file",
            ProblemKind::NotLatin1 => "not_latin1",
            ProblemKind::ControlCharacter => "control_character",
            ProblemKind::NotARubric => "not_a_rubric",
            ProblemKind::FirstRubric => "first_rubric_not_s10",
            ProblemKind::DeclarationCount => "declaration_count",
            ProblemKind::LineCountTotal => "line_count_total",
            ProblemKind::DeclarationCountTotal => "declaration_count_total",
            ProblemKind::InvalidSiret => "invalid_siret",
            ProblemKind::InvalidMonth => "invalid_month",
            ProblemKind::InvalidPasRate => "invalid_pas_rate",
            ProblemKind::MissingRubric => "missing_rubric",
            ProblemKind::InvalidValue => "invalid_value",
            ProblemKind::MisplacedBlock => "misplaced_block",
            ProblemKind::MonthNotBegun => "month_not_begun",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem: where (line from 1, `None` when it concerns the whole file), what, and a
/// French sentence that never quotes personal data.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problem {
    pub line: Option<usize>,
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    pub fn new(line: Option<usize>, kind: ProblemKind, message: impl Into<String>) -> Self {
        Problem {
            line,
            kind,
            message: message.into(),
        }
    }

    /// Its code, as [`ProblemKind::code`].
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "ligne {line} : {}", self.message),
            None => write!(f, "fichier : {}", self.message),
        }
    }
}

/// The problems of a file: the first [`crate::MAX_PROBLEMS`] found, in line order
/// (whole-file problems last), and how many others were found but not kept
/// ([`Problems::omitted`]). Never empty when returned by [`crate::Dsn::parse`]. Display
/// lists them one per line in French, then [`Problems::omitted_sentence`] if any.
///
/// `.0` is the list kept; the count of the others is private (only the scanner makes
/// one).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problems(pub Vec<Problem>, usize);

impl Problems {
    pub(crate) fn new(kept: Vec<Problem>, omitted: usize) -> Self {
        Problems(kept, omitted)
    }

    /// Whether a problem of this kind is on this line (among those kept).
    pub fn has(&self, kind: ProblemKind, line: Option<usize>) -> bool {
        self.0.iter().any(|p| p.kind == kind && p.line == line)
    }

    /// The problems kept, in line order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Number of problems kept (at most [`crate::MAX_PROBLEMS`]).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Problems found past the ones kept: counted, not listed.
    pub fn omitted(&self) -> usize {
        self.1
    }

    /// Every problem found: kept and omitted.
    pub fn total(&self) -> usize {
        self.0.len() + self.1
    }

    /// « … et 99 900 autres problèmes (seuls les 100 premiers sont listés). » when some
    /// were not kept.
    pub fn omitted_sentence(&self) -> Option<String> {
        (self.1 > 0).then(|| omitted_sentence(self.1, self.0.len()))
    }
}

/// One problem found apart from the scanner ([`crate::Declaration::month_not_begun`]),
/// as a list of problems.
impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Problems(vec![p], 0)
    }
}

/// The French sentence for `omitted` problems not listed after the first `listed`:
/// « … et 99 900 autres problèmes (seuls les 100 premiers sont listés). ». For every
/// front-end that shortens a list of problems, so that all say it the same way.
pub fn omitted_sentence(omitted: usize, listed: usize) -> String {
    let others = if omitted == 1 {
        "1 autre problème".to_owned()
    } else {
        format!("{} autres problèmes", group_thousands(omitted))
    };
    let first = match listed {
        0 => "aucun n'est listé".to_owned(),
        1 => "seul le premier est listé".to_owned(),
        n => format!("seuls les {} premiers sont listés", group_thousands(n)),
    };
    format!("… et {others} ({first}).")
}

/// `99900` → `99 900`, groups of three digits separated by a narrow no-break space
/// (U+202F), as French writes numbers.
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        if let Some(s) = self.omitted_sentence() {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
