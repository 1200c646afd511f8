//! DSN files (the monthly social declaration) as the payroll program writes them: read,
//! checked before anything is sent, and written for demos and tests.
//!
//! A file is lines `Sxx.Gyy.zz.nnn,'value'` in ISO-8859-1, ending LF or CRLF, the final
//! newline optional. [`Dsn::parse`] decodes it byte for byte (ISO-8859-1 maps each byte
//! to the code point of the same value), checks it, and gives every problem it finds,
//! each with its line number and a French sentence, or a [`Dsn`] whose sender,
//! declaration and employees the deposit needs. At most [`MAX_PROBLEMS`] problems are
//! kept, the first in line order; the others are counted ([`Problems::omitted`]) and
//! named by one French sentence ([`omitted_sentence`]). [`sample`] writes a valid file.
//!
//! [`Scanner`] runs the same checks on a file fed in chunks, in bounded memory, and gives
//! a [`Summary`] (sender, declaration, counts) instead of every rubric: for files too
//! big to hold (a deposit may be 100 MB).
//!
//! [`returns`] reads what Net-entreprises sends back after a deposit: the AEE / ARE
//! (nature 10), the conformity certificate or list of anomalies (11), the CRM nominatif
//! with each employee's withholding rate (94); no DTD, a size cap, typed errors.
//! `cargo bench -p iea-dsn --bench crm` times reading a 10,000-employee CRM (bytes/s).
//! `cargo bench -p iea-dsn --bench check` times the [`Scanner`] (ns per byte) on a
//! 10-employee file, a 10,000-employee one and a file with many problems.
//!
//! Invariants:
//! - [`Dsn::parse`] and [`Scanner`] are one implementation: same problems, same lines.
//! - A [`Dsn`] exists only for a file that passed every check; [`Problems`] is never empty
//!   and holds at most [`MAX_PROBLEMS`] problems, whatever the file (memory bounded).
//! - Each [`ProblemKind`] has a stable English snake_case code ([`ProblemKind::code`]).
//! - Debug of [`Dsn`], [`Employee`], [`Payment`] and [`Rubric`] never prints a NIR, a
//!   name, an amount or a rate (personal data): counts and rubric codes only.
//! - No I/O, no network, no logging, no clock here: the one check that needs today's
//!   month ([`Declaration::month_not_begun`]) is given it by its caller.

mod check;
mod month;
mod problem;
mod read;
pub mod returns;
mod sample;

pub use check::{MAX_LINE_LEN, MAX_PROBLEMS, Scanner, Summary};
pub use month::{Month, MonthError};
pub use problem::{Problem, ProblemKind, Problems, group_thousands, omitted_sentence};
pub use sample::{NORM_VERSION, SOFTWARE, SampleSpec, sample};

/// Is this 14-digit SIRET's key right (Luhn, or La Poste's rule)? The check the file's
/// SIRETs pass, from `iea-declarant`.
pub use iea_declarant::siret_key_is_valid;

use std::fmt;

/// One line of the file: `code,'value'`.
#[derive(Clone, PartialEq, Eq)]
pub struct Rubric {
    /// Line number in the file, from 1.
    pub line: usize,
    /// The rubric's code, e.g. `S21.G00.50.009`.
    pub code: String,
    /// The value, decoded from ISO-8859-1.
    pub value: String,
}

impl Rubric {
    /// The block this rubric belongs to, e.g. `S21.G00.50`.
    pub fn block(&self) -> &str {
        self.code.get(..10).unwrap_or(&self.code)
    }

    /// The rubric's number within its block, e.g. 9 for `S21.G00.50.009`.
    pub fn field(&self) -> u16 {
        self.code
            .get(11..)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    }
}

impl fmt::Debug for Rubric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rubric")
            .field("line", &self.line)
            .field("code", &self.code)
            .field("value_chars", &self.value.chars().count())
            .finish()
    }
}

/// Test or real declaration (`S10.G00.00.005`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TestOrReal {
    /// `01`
    Test,
    /// `02`
    Real,
}

impl TestOrReal {
    /// The code written in the file (`01` or `02`), also `essai_reel` of the AEE.
    pub fn code(self) -> &'static str {
        match self {
            TestOrReal::Test => "01",
            TestOrReal::Real => "02",
        }
    }

    /// Reads the file's code; `None` for anything else than `01` or `02`.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "01" => Some(TestOrReal::Test),
            "02" => Some(TestOrReal::Real),
            _ => None,
        }
    }

    /// English name for JSON: `test` or `real`.
    pub fn name(self) -> &'static str {
        match self {
            TestOrReal::Test => "test",
            TestOrReal::Real => "real",
        }
    }
}

/// Type of the declaration (`S20.G00.05.002`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum DeclarationKind {
    /// `01`, déclaration normale.
    #[default]
    Normal,
    /// `03`, annule et remplace intégral.
    CancelsAndReplaces,
    /// Any other code, as written.
    Other(String),
}

impl DeclarationKind {
    /// The code written in the file.
    pub fn code(&self) -> &str {
        match self {
            DeclarationKind::Normal => "01",
            DeclarationKind::CancelsAndReplaces => "03",
            DeclarationKind::Other(c) => c,
        }
    }

    /// Reads the file's code.
    pub fn from_code(code: &str) -> Self {
        match code {
            "01" => DeclarationKind::Normal,
            "03" => DeclarationKind::CancelsAndReplaces,
            other => DeclarationKind::Other(other.to_owned()),
        }
    }

    /// English name for JSON: `normal`, `cancels_and_replaces` or `other`.
    pub fn name(&self) -> &'static str {
        match self {
            DeclarationKind::Normal => "normal",
            DeclarationKind::CancelsAndReplaces => "cancels_and_replaces",
            DeclarationKind::Other(_) => "other",
        }
    }
}

/// The sender: `S10.G00.00` (envoi) and `S10.G00.01` (émetteur).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Sender {
    /// `S10.G00.01.001`, 9 digits.
    pub siren: String,
    /// `S10.G00.01.002`, 5 digits.
    pub nic: String,
    /// `S10.G00.01.003`, the sender's name (a company's, not a person's).
    pub name: Option<String>,
    /// `S10.G00.00.001`, the payroll software's name.
    pub software: String,
    /// `S10.G00.00.002`, its publisher.
    pub publisher: Option<String>,
    /// `S10.G00.00.003`, its version.
    pub software_version: Option<String>,
    /// `S10.G00.00.007`, the deposit point (`01` Net-entreprises).
    pub deposit_point: Option<String>,
}

impl Sender {
    /// SIREN followed by NIC, 14 digits.
    pub fn siret(&self) -> String {
        format!("{}{}", self.siren, self.nic)
    }
}

/// The declaration: `S20.G00.05`, with the declared company (`S21.G00.06`) and
/// establishment (`S21.G00.11`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Declaration {
    /// `S20.G00.05.001` (`01` monthly).
    pub nature: String,
    /// `S20.G00.05.002`.
    pub kind: DeclarationKind,
    /// `S20.G00.05.003`.
    pub fraction: String,
    /// `S20.G00.05.005`, written `01MMAAAA`.
    pub month: Month,
    /// Line of `S20.G00.05.005`.
    pub month_line: usize,
    /// `S21.G00.06.001`, 9 digits.
    pub siren: String,
    /// `S21.G00.11.001`, 5 digits.
    pub nic: String,
    /// `S10.G00.00.005`.
    pub test_or_real: TestOrReal,
    /// `S10.G00.00.006`, e.g. `P24V01`.
    pub norm_version: String,
    /// `S20.G00.05.009`, the business identifier, when present.
    pub business_id: Option<String>,
    /// Line of the `S20.G00.05` block's first rubric.
    pub line: usize,
}

impl Declaration {
    /// The declared establishment's SIRET: SIREN followed by NIC.
    pub fn siret(&self) -> String {
        format!("{}{}", self.siren, self.nic)
    }

    /// The problem of a declaration whose month comes after `current` (the month in
    /// progress in Paris, which the caller reads from its clock): a monthly DSN declares
    /// the pay of a month that has begun (during that month at the earliest, a deposit
    /// made ahead), so a later month is a month typed wrong. Kept apart from the checks of
    /// the file alone ([`Scanner`]), which give the same answer whatever the day.
    pub fn month_not_begun(&self, current: Month) -> Option<Problem> {
        (self.month > current).then(|| {
            Problem::new(
                Some(self.month_line),
                ProblemKind::MonthNotBegun,
                format!(
                    "mois principal déclaré (S20.G00.05.005) : {} n'a pas encore commencé \
                     (nous sommes en {}) ; une DSN déclare la paie d'un mois commencé, \
                     vérifiez le mois de la paie",
                    iea_fr_time::month_year(self.month.year, self.month.month),
                    iea_fr_time::month_year(current.year, current.month),
                ),
            )
        })
    }
}

/// One employee: an `S21.G00.30` block and the payments (`S21.G00.50`) that follow it.
#[derive(Clone, PartialEq, Eq)]
pub struct Employee {
    /// `S21.G00.30.001`, 13 characters without key.
    pub nir: Option<String>,
    /// `S21.G00.30.020`, temporary number when there is no NIR.
    pub ntt: Option<String>,
    /// `S21.G00.30.019`.
    pub matricule: Option<String>,
    /// `S21.G00.30.002`.
    pub nom: String,
    /// `S21.G00.30.004`.
    pub prenoms: String,
    /// Payments to this employee, in file order.
    pub payments: Vec<Payment>,
    /// Line of the `S21.G00.30` block's first rubric.
    pub line: usize,
}

impl fmt::Debug for Employee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Employee")
            .field("line", &self.line)
            .field("has_nir", &self.nir.is_some())
            .field("has_ntt", &self.ntt.is_some())
            .field("payments", &self.payments.len())
            .finish_non_exhaustive()
    }
}

/// One payment (`S21.G00.50`), with the withholding-tax (PAS) fields as written.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payment {
    /// Line of the block's first rubric.
    pub line: usize,
    /// `.001`, date of payment `JJMMAAAA`.
    pub date: Option<String>,
    /// `.006`, PAS rate as written, e.g. `14.00`.
    pub pas_rate: Option<String>,
    /// `.007`, rate type (`01` DGFiP rate; `13`/`17` default scales; `99` none).
    pub rate_type: Option<String>,
    /// `.008`, rate identifier from the CRM.
    pub rate_identifier: Option<String>,
    /// `.009`, PAS amount.
    pub pas_amount: Option<String>,
    /// `.013`, amount subject to PAS.
    pub amount_subject: Option<String>,
}

impl fmt::Debug for Payment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payment")
            .field("line", &self.line)
            .field("has_pas_rate", &self.pas_rate.is_some())
            .field("has_pas_amount", &self.pas_amount.is_some())
            .finish_non_exhaustive()
    }
}

/// A DSN file read and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    rubrics: Vec<Rubric>,
    sender: Sender,
    declaration: Declaration,
    employees: Vec<Employee>,
    crlf: bool,
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dsn")
            .field("rubrics", &self.rubrics.len())
            .field("employees", &self.employees.len())
            .field("month", &self.declaration.month)
            .field("kind", &self.declaration.kind)
            .field("test_or_real", &self.declaration.test_or_real)
            .finish_non_exhaustive()
    }
}

impl Dsn {
    /// Reads and checks `bytes` (ISO-8859-1, LF or CRLF). Every problem found, each with
    /// its line number and a French sentence.
    pub fn parse(bytes: &[u8]) -> Result<Dsn, Problems> {
        let mut scanner = Scanner::collecting();
        scanner.feed(bytes);
        scanner.finish_dsn()
    }

    /// `S10.G00.00` and `S10.G00.01`.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// `S20.G00.05` with `S21.G00.06` and `S21.G00.11`.
    pub fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    /// Employees in file order.
    pub fn employees(&self) -> &[Employee] {
        &self.employees
    }

    /// Every rubric in file order (one per line).
    pub fn rubrics(&self) -> &[Rubric] {
        &self.rubrics
    }

    /// The first rubric with this code, if any.
    pub fn rubric(&self, code: &str) -> Option<&Rubric> {
        self.rubrics.iter().find(|r| r.code == code)
    }

    /// The rubrics of the block whose first rubric is on `line` (e.g. a [`Payment`]'s
    /// `line`), so that a check can name the line of the rubric it is about.
    pub fn block_at(&self, line: usize) -> &[Rubric] {
        let Some(start) = line.checked_sub(1).filter(|i| *i < self.rubrics.len()) else {
            return &[];
        };
        let block = self.rubrics[start].block();
        let mut end = start + 1;
        while end < self.rubrics.len()
            && self.rubrics[end].block() == block
            && self.rubrics[end].field() > self.rubrics[end - 1].field()
        {
            end += 1;
        }
        &self.rubrics[start..end]
    }

    /// Rubric number `field` of the block whose first rubric is on `line`, e.g. the
    /// `.009` (PAS amount) of a payment: `dsn.rubric_in(payment.line, 9)`. For checks
    /// that name the line of the rubric they are about.
    pub fn rubric_in(&self, line: usize, field: u16) -> Option<&Rubric> {
        self.block_at(line).iter().find(|r| r.field() == field)
    }

    /// Whether the file's lines end with CRLF (else LF).
    pub fn crlf(&self) -> bool {
        self.crlf
    }
}
