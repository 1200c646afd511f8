//! The documents Net-entreprises publishes after a deposit ("retours"), read into typed
//! values: nature 10 (AEE: registered, or ARE: rejected, the same report the deposit
//! service answers), nature 11 (certificate of conformity, or list of anomalies) and
//! nature 94 (the DGFiP's CRM nominatif: each employee's withholding rate).
//!
//! Pure: bytes in, values out; no I/O, no logging. Every reader takes the caller's size
//! cap and refuses, before parsing anything:
//! - a document larger than the cap ([`ReturnError::TooLarge`]);
//! - a document with a `<!DOCTYPE` anywhere ([`ReturnError::Doctype`]): no DTD, hence no
//!   entity expansion (billion laughs) and no external fetch; an entity reference other
//!   than XML's five predefined ones or a character reference is refused too
//!   ([`ReturnError::Entity`]).
//!
//! The text is UTF-8, or ISO-8859-1 when the XML declaration says so.
//!
//! Read as a stream of events (quick-xml), not as a tree of the whole document: beyond
//! the input and the values read, memory is bounded by the largest element kept for
//! reading (an employee of a CRM, an anomaly), not by the document's size. The document
//! is still checked to its end (well-formed, no entity) before any value is judged.
//!
//! Rates are [`Rate`]s, integer hundredths of a percent (`7.50` % is 750), never floats.
//! Debug of the values holding personal data ([`PersonId`], [`CrmEmployee`], [`Rate`],
//! [`Anomaly`], [`EmployeeRef`], [`Crm`], [`Conformity`]) prints no NIR, NTT, matricule,
//! name, rate, amount nor anomaly text: counts, codes and rubrics only. Error messages
//! ([`ReturnError`]'s Display, French) never quote the document's content.
//!
//! Entry points: [`read`] (any of the three, told apart by the root's `type`),
//! [`read_nature`] (the nature a listing announced, checked against the document),
//! [`read_acknowledgement`], [`read_conformity`], [`read_crm`].

mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::Month;

pub use parse::has_doctype;

/// Default size cap of a return document, in bytes (the download's default too).
pub const DEFAULT_MAX_BYTES: usize = 16 << 20;

/// Nature of the acknowledgement (AEE / ARE).
pub const NATURE_ACKNOWLEDGEMENT: u32 = 10;
/// Nature of the conformity certificate or list of anomalies.
pub const NATURE_CONFORMITY: u32 = 11;
/// Nature of the CRM nominatif (withholding rates).
pub const NATURE_CRM: u32 = 94;

/// Why a document was not read. Display is a French sentence that never quotes the
/// document's content; [`ReturnError::code`] a stable English code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReturnError {
    #[error(
        "Le document de retour fait {size} octets, au-delà de la limite de {max} octets : il n'a pas été lu."
    )]
    TooLarge { size: usize, max: usize },
    #[error(
        "Le document de retour contient une déclaration de type de document (DOCTYPE) : refusé, un retour de \
         Net-entreprises n'en contient jamais."
    )]
    Doctype,
    #[error("Le document de retour utilise une entité XML non prédéfinie (ligne {row}) : refusé.")]
    Entity { row: u32 },
    #[error(
        "Le document de retour n'est ni en UTF-8 ni en ISO-8859-1 déclaré : il n'a pas été lu."
    )]
    Encoding,
    #[error(
        "Le document de retour n'est pas un XML bien formé (ligne {row}, colonne {col}) : il n'a pas été lu."
    )]
    Malformed { row: u32, col: u32 },
    #[error("Le document n'est pas un rapport de Net-entreprises (élément racine inattendu).")]
    NotAReport,
    #[error("Le rapport est d'un type que ce lecteur ne connaît pas.")]
    UnknownType,
    #[error("Le document est {found}, alors qu'il devait être {expected}.")]
    WrongKind { expected: Kind, found: Kind },
    #[error("Les retours de nature {0} ne sont pas lus ici (seulement 10, 11 et 94).")]
    UnsupportedNature(u32),
    #[error("Le rapport ne contient pas l'élément obligatoire « {field} ».")]
    Missing { field: &'static str },
    #[error("{}", invalid_message(field, *employee))]
    Invalid {
        field: &'static str,
        /// Position (from 1) of the employee concerned in the document, if any.
        employee: Option<usize>,
    },
}

fn invalid_message(field: &str, employee: Option<usize>) -> String {
    match employee {
        Some(n) => {
            format!("La valeur de « {field} » du salarié n° {n} du rapport n'est pas valide.")
        }
        None => format!("La valeur de « {field} » du rapport n'est pas valide."),
    }
}

impl ReturnError {
    /// Stable English code (logs, JSON, tests).
    pub fn code(&self) -> &'static str {
        match self {
            ReturnError::TooLarge { .. } => "too_large",
            ReturnError::Doctype => "doctype",
            ReturnError::Entity { .. } => "entity",
            ReturnError::Encoding => "encoding",
            ReturnError::Malformed { .. } => "malformed",
            ReturnError::NotAReport => "not_a_report",
            ReturnError::UnknownType => "unknown_type",
            ReturnError::WrongKind { .. } => "wrong_kind",
            ReturnError::UnsupportedNature(_) => "unsupported_nature",
            ReturnError::Missing { .. } => "missing_element",
            ReturnError::Invalid { .. } => "invalid_value",
        }
    }

    /// Whether the document is hostile rather than merely unreadable (a DOCTYPE, an
    /// entity, past the size cap).
    pub fn is_hostile(&self) -> bool {
        matches!(
            self,
            ReturnError::TooLarge { .. } | ReturnError::Doctype | ReturnError::Entity { .. }
        )
    }
}

/// The kind of a return document, from its root's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `AEE` or `ARE` (nature 10).
    Acknowledgement,
    /// `Certificat de conformité` or `Bilan d'anomalies` (nature 11).
    Conformity,
    /// `CRM nominatif` (nature 94).
    Crm,
}

impl Kind {
    /// The nature a listing gives this kind.
    pub fn nature(self) -> u32 {
        match self {
            Kind::Acknowledgement => NATURE_ACKNOWLEDGEMENT,
            Kind::Conformity => NATURE_CONFORMITY,
            Kind::Crm => NATURE_CRM,
        }
    }

    /// The kind of a nature, for the three read here.
    pub fn of_nature(nature: u32) -> Option<Kind> {
        match nature {
            NATURE_ACKNOWLEDGEMENT => Some(Kind::Acknowledgement),
            NATURE_CONFORMITY => Some(Kind::Conformity),
            NATURE_CRM => Some(Kind::Crm),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Acknowledgement => "un accusé d'enregistrement ou un avis de rejet (nature 10)",
            Kind::Conformity => "un certificat de conformité ou un bilan d'anomalies (nature 11)",
            Kind::Crm => "un compte rendu des taux de prélèvement à la source (CRM, nature 94)",
        })
    }
}

/// A status as Net-entreprises writes it (`OK`, `ANO`, `KO`, `EN COURS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnStatus {
    Ok,
    /// Anomalies, none blocking.
    Ano,
    /// Blocking anomalies.
    Ko,
    EnCours,
}

impl ReturnStatus {
    pub fn parse(text: &str) -> Option<ReturnStatus> {
        match text.trim().to_ascii_uppercase().as_str() {
            "OK" => Some(ReturnStatus::Ok),
            "ANO" => Some(ReturnStatus::Ano),
            "KO" => Some(ReturnStatus::Ko),
            "EN COURS" => Some(ReturnStatus::EnCours),
            _ => None,
        }
    }

    /// As written: `OK`, `ANO`, `KO`, `EN COURS`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Ok => "OK",
            ReturnStatus::Ano => "ANO",
            ReturnStatus::Ko => "KO",
            ReturnStatus::EnCours => "EN COURS",
        }
    }
}

impl fmt::Display for ReturnStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A withholding rate in hundredths of a percent (`7.50` % is 750), 0.00 to 99.99 as the
/// norm writes it (`[0-9]{1,2}\.[0-9]{2}`). Display gives `7.50`; Debug never prints it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u16);

impl Rate {
    pub const MAX_HUNDREDTHS: u16 = 9_999;

    pub fn from_hundredths(hundredths: u16) -> Option<Rate> {
        (hundredths <= Self::MAX_HUNDREDTHS).then_some(Rate(hundredths))
    }

    pub fn hundredths(self) -> u16 {
        self.0
    }

    /// Reads `7.50` (one or two digits, a dot, two digits).
    pub fn parse(text: &str) -> Option<Rate> {
        let (units, decimals) = text.split_once('.')?;
        if !(1..=2).contains(&units.len())
            || decimals.len() != 2
            || !units
                .bytes()
                .chain(decimals.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let units: u16 = units.parse().ok()?;
        let decimals: u16 = decimals.parse().ok()?;
        Rate::from_hundredths(units * 100 + decimals)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rate(<redacted>)")
    }
}

impl FromStr for Rate {
    type Err = ReturnError;

    fn from_str(s: &str) -> Result<Rate, ReturnError> {
        Rate::parse(s).ok_or(ReturnError::Invalid {
            field: "taux",
            employee: None,
        })
    }
}

/// A calendar day, `AAAA-MM-JJ` (Display and FromStr).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CalendarDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl CalendarDate {
    pub fn new(year: i32, month: u8, day: u8) -> Option<CalendarDate> {
        let m = Month::new(year, month)?;
        (1..=m.days())
            .contains(&day)
            .then_some(CalendarDate { year, month, day })
    }

    /// Reads `AAAA-MM-JJ`.
    pub fn parse(text: &str) -> Option<CalendarDate> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| {
            text[r.clone()]
                .bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| text[r].parse::<u32>().ok())
                .flatten()
        };
        CalendarDate::new(
            i32::try_from(digits(0..4)?).ok()?,
            u8::try_from(digits(5..7)?).ok()?,
            u8::try_from(digits(8..10)?).ok()?,
        )
    }

    pub fn month(self) -> Month {
        Month {
            year: self.year,
            month: self.month,
        }
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for CalendarDate {
    type Err = ReturnError;

    fn from_str(s: &str) -> Result<CalendarDate, ReturnError> {
        CalendarDate::parse(s).ok_or(ReturnError::Invalid {
            field: "date",
            employee: None,
        })
    }
}

/// The CRM's rate identifier (its root `identifiant`, up to 18 digits): the next DSN
/// quotes it in `S21.G00.50.008` for each rate it applies from this CRM.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RateIdentifier(String);

impl RateIdentifier {
    pub fn parse(text: &str) -> Option<RateIdentifier> {
        let t = text.trim();
        ((1..=18).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| RateIdentifier(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RateIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an employee is identified: the NIR, or a temporary number (NTT) while there is
/// none. Debug never prints it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PersonId {
    Nir(String),
    Ntt(String),
}

impl PersonId {
    pub fn as_str(&self) -> &str {
        match self {
            PersonId::Nir(s) | PersonId::Ntt(s) => s,
        }
    }

    pub fn is_nir(&self) -> bool {
        matches!(self, PersonId::Nir(_))
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PersonId::Nir(_) => "Nir(<redacted>)",
            PersonId::Ntt(_) => "Ntt(<redacted>)",
        })
    }
}

// ---- Nature 10 ----

/// What an AEE says: the deposit is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// 1 to 50 letters and digits (23 for a deposit).
    pub idflux: String,
    /// As the AEE gives them: `2014-01-15`, `14:47:42` (the server's time).
    pub date_enregistrement: String,
    pub heure_enregistrement: String,
    /// `01` test, `02` real.
    pub essai_reel: String,
}

/// One anomaly of an ARE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionAnomaly {
    pub code: String,
    pub message: String,
}

/// What an ARE says: the deposit is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub idflux: Option<String>,
    pub anomalies: Vec<RejectionAnomaly>,
}

/// Nature 10: the AEE or the ARE (also the deposit service's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledgement {
    Accepted(Accepted),
    Rejected(Rejected),
}

// ---- Natures 11 and 94 ----

/// `declaration_identification`: which declaration the report is about. Each field as
/// written, when present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeclarationId {
    /// 9 digits.
    pub siren: Option<String>,
    /// 5 digits.
    pub nic: Option<String>,
    /// The declared month (`<mois>AAAA-MM</mois>` when given).
    pub month: Option<Month>,
    /// `01` monthly…
    pub kind: Option<String>,
    pub business_id: Option<String>,
}

impl DeclarationId {
    /// SIREN and NIC together, when both are there.
    pub fn siret(&self) -> Option<String> {
        Some(format!("{}{}", self.siren.as_ref()?, self.nic.as_ref()?))
    }
}

/// Whether an anomaly blocks (`bloquant`) or not (`non-bloquant`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Category {
    Blocking,
    NonBlocking,
    /// Another category, as written (empty when absent).
    Other(String),
}

impl Category {
    fn parse(text: &str) -> Category {
        match text.trim().to_lowercase().as_str() {
            "bloquant" | "bloquante" => Category::Blocking,
            "non-bloquant" | "non bloquant" | "non-bloquante" | "non bloquante" => {
                Category::NonBlocking
            }
            other => Category::Other(other.to_owned()),
        }
    }
}

/// The employee an anomaly is about (`environnement/salarie`). Debug never prints it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EmployeeRef {
    pub id: Option<PersonId>,
    pub matricule: Option<String>,
}

impl fmt::Debug for EmployeeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmployeeRef")
            .field("id", &self.id)
            .field("matricule", &self.matricule.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An anomaly of a conformity report or of a CRM (`declaration_anomalie`). Its message
/// and value may quote an amount, a rate or a NIR: Debug prints neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// `CCH-PAS-01`, `TST01`…
    pub code: String,
    pub category: Category,
    /// French, as written by the organisation.
    pub message: String,
    /// The rubric that triggered it (`S21.G00.50.009`), when named.
    pub rubric: Option<String>,
    /// Its line in the deposited file, when named.
    pub line: Option<u32>,
    /// The rubric's value, when quoted.
    pub value: Option<String>,
    pub employee: Option<EmployeeRef>,
}

impl fmt::Debug for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anomaly")
            .field("code", &self.code)
            .field("category", &self.category)
            .field("message_chars", &self.message.chars().count())
            .field("rubric", &self.rubric)
            .field("line", &self.line)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("employee", &self.employee)
            .finish()
    }
}

/// Certificate of conformity or list of anomalies, from the report's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConformityKind {
    /// `Certificat de conformité`.
    Certificate,
    /// `Bilan d'anomalies`.
    AnomalyList,
}

/// Nature 11: the declaration's conformity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conformity {
    pub idflux: String,
    pub kind: ConformityKind,
    /// `declaration_bilan/etat` (else `envoi_etat`): `OK` conforming, `ANO` anomalies
    /// none blocking, `KO` blocking anomalies.
    pub status: ReturnStatus,
    pub declaration: DeclarationId,
    pub anomalies: Vec<Anomaly>,
}

impl Conformity {
    pub fn is_conforming(&self) -> bool {
        self.status == ReturnStatus::Ok
    }
}

/// A rate announced for later (`future_imposition_PAS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureRate {
    pub rate: Rate,
    /// The day it applies from (`date_effet`).
    pub from: CalendarDate,
}

/// One `salarie` of a CRM. Debug never prints its identity nor its rates.
#[derive(Clone, PartialEq, Eq)]
pub struct CrmEmployee {
    pub id: PersonId,
    pub matricule: Option<String>,
    /// `taux_imposition_PAS`; `None` when empty (no rate given for this employee).
    pub rate: Option<Rate>,
    pub future: Option<FutureRate>,
}

impl fmt::Debug for CrmEmployee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrmEmployee")
            .field("id", &self.id)
            .field("matricule", &self.matricule.as_ref().map(|_| "<redacted>"))
            .field("has_rate", &self.rate.is_some())
            .field("has_future_rate", &self.future.is_some())
            .finish()
    }
}

/// Nature 94: the CRM nominatif, the DGFiP's withholding rate of each employee of a
/// declaration.
#[derive(Clone, PartialEq, Eq)]
pub struct Crm {
    /// The rate identifier to quote in the next DSN (`S21.G00.50.008`).
    pub identifier: RateIdentifier,
    pub idflux: String,
    /// `declaration_bilan/etat` (else `envoi_etat`).
    pub status: ReturnStatus,
    /// SIREN (9 digits) and NIC (5 digits) are required in a CRM.
    pub declaration: DeclarationId,
    /// `declaration_contenu/salaries`, when given (not checked against `employees`).
    pub announced_employees: Option<u32>,
    pub employees: Vec<CrmEmployee>,
    pub anomalies: Vec<Anomaly>,
    /// The root's `message` (a general notice of the DGFiP), when given.
    pub notice: Option<String>,
}

impl Crm {
    pub fn siren(&self) -> &str {
        self.declaration.siren.as_deref().unwrap_or_default()
    }

    pub fn nic(&self) -> &str {
        self.declaration.nic.as_deref().unwrap_or_default()
    }

    /// The establishment the rates are for.
    pub fn siret(&self) -> String {
        format!("{}{}", self.siren(), self.nic())
    }
}

impl fmt::Debug for Crm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crm")
            .field("identifier", &self.identifier)
            .field("idflux", &self.idflux)
            .field("status", &self.status)
            .field("declaration", &self.declaration)
            .field("announced_employees", &self.announced_employees)
            .field("employees", &self.employees.len())
            .field("anomalies", &self.anomalies)
            .finish_non_exhaustive()
    }
}

/// Any of the three documents read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnDocument {
    Acknowledgement(Acknowledgement),
    Conformity(Conformity),
    Crm(Crm),
}

impl ReturnDocument {
    pub fn kind(&self) -> Kind {
        match self {
            ReturnDocument::Acknowledgement(_) => Kind::Acknowledgement,
            ReturnDocument::Conformity(_) => Kind::Conformity,
            ReturnDocument::Crm(_) => Kind::Crm,
        }
    }
}

/// Reads a return document of any of the three kinds (told apart by the root's `type`),
/// at most `max_bytes` long.
pub fn read(bytes: &[u8], max_bytes: usize) -> Result<ReturnDocument, ReturnError> {
    parse::read(bytes, max_bytes, None)
}

/// Reads the document of a return that a listing gave as of `nature`: refused
/// ([`ReturnError::WrongKind`]) when the document is of another kind,
/// [`ReturnError::UnsupportedNature`] for a nature other than 10, 11 and 94.
pub fn read_nature(
    nature: u32,
    bytes: &[u8],
    max_bytes: usize,
) -> Result<ReturnDocument, ReturnError> {
    let kind = Kind::of_nature(nature).ok_or(ReturnError::UnsupportedNature(nature))?;
    parse::read(bytes, max_bytes, Some(kind))
}

/// Reads an AEE or an ARE (nature 10, or the deposit service's answer).
pub fn read_acknowledgement(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<Acknowledgement, ReturnError> {
    match parse::read(bytes, max_bytes, Some(Kind::Acknowledgement))? {
        ReturnDocument::Acknowledgement(a) => Ok(a),
        other => Err(wrong(Kind::Acknowledgement, other.kind())),
    }
}

/// Reads a certificate of conformity or a list of anomalies (nature 11).
pub fn read_conformity(bytes: &[u8], max_bytes: usize) -> Result<Conformity, ReturnError> {
    match parse::read(bytes, max_bytes, Some(Kind::Conformity))? {
        ReturnDocument::Conformity(c) => Ok(c),
        other => Err(wrong(Kind::Conformity, other.kind())),
    }
}

/// Reads a CRM nominatif (nature 94).
pub fn read_crm(bytes: &[u8], max_bytes: usize) -> Result<Crm, ReturnError> {
    match parse::read(bytes, max_bytes, Some(Kind::Crm))? {
        ReturnDocument::Crm(c) => Ok(c),
        other => Err(wrong(Kind::Crm, other.kind())),
    }
}

fn wrong(expected: Kind, found: Kind) -> ReturnError {
    ReturnError::WrongKind { expected, found }
}
