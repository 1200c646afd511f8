//! The deposits the mock registered, accepted (AEE) or rejected (ARE), in order of
//! arrival, and what the control API shows of each.
//!
//! The DSN itself is not kept: only its size, its SHA-256, the declaration's facts read
//! with `iea-dsn` (SIREN, NIC, month), the conformity checks' anomalies and what the CRM
//! needs of each employee (NIR, matricule, rates applied). Names, NIRs and the file's
//! contents are never logged.

use std::sync::Arc;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::conformity::{self, Anomaly, EmployeeFacts};
use crate::faults::Rejection;

/// Length of an `idflux` (public clients reject any other).
pub const IDFLUX_LEN: usize = 23;

/// `OK` (AEE) or `KO` (ARE), as the listings write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "KO")]
    Ko,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Ko => "KO",
        }
    }
}

/// What the deposit service reads of a file before answering: its size, its digest and
/// its envelope (`S10.G00.00`, `S10.G00.01`), the lines the AEE quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub bytes: u64,
    pub sha256: String,
    /// `S10.G00.00.005` (`01` test, `02` real) when the file has it.
    pub essai_reel: Option<String>,
    /// SIRET of the sender (`S10.G00.01.001` and `.002`) when the file has both.
    pub emetteur_siret: Option<String>,
    /// `S10.G00.00.007`, the deposit point, when the file has it.
    pub point_de_depot: Option<String>,
}

impl Envelope {
    /// Reads `dsn` (the decompressed file): its digest, and the values of the envelope's
    /// lines at its start (the lines before the first one not starting with `S10.`), as
    /// the deposit service reads them to write the AEE. The file itself is read later,
    /// with `iea-dsn` ([`DsnFacts`]).
    pub fn read(dsn: &[u8]) -> Self {
        let mut essai_reel = None;
        let mut siren = None;
        let mut nic = None;
        let mut point_de_depot = None;
        for line in dsn.split(|b| *b == b'\n') {
            if !line.starts_with(b"S10.") {
                break;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some((code, value)) = envelope_value(line) else {
                continue;
            };
            let slot = match code {
                b"S10.G00.00.005" => &mut essai_reel,
                b"S10.G00.00.007" => &mut point_de_depot,
                b"S10.G00.01.001" => &mut siren,
                b"S10.G00.01.002" => &mut nic,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        Self {
            bytes: dsn.len() as u64,
            sha256: hex(&Sha256::digest(dsn)),
            essai_reel,
            emetteur_siret: siren.zip(nic).map(|(s, n)| format!("{s}{n}")),
            point_de_depot,
        }
    }
}

/// `CODE,'value'` of an envelope line whose value is a short code of digits (what the AEE
/// quotes: test or real, deposit point, SIREN, NIC).
fn envelope_value(line: &[u8]) -> Option<(&[u8], String)> {
    let comma = line.iter().position(|b| *b == b',')?;
    let (code, rest) = (&line[..comma], &line[comma + 1..]);
    let value = rest.strip_prefix(b"'")?.strip_suffix(b"'")?;
    (!value.is_empty() && value.len() <= 14 && value.iter().all(u8::is_ascii_digit))
        .then(|| (code, String::from_utf8_lossy(value).into_owned()))
}

/// What the mock reads of a deposited file with `iea-dsn`, after answering the deposit
/// (a 100 MB file takes a while): the declaration, the conformity checks' anomalies and
/// what the CRM needs of each employee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnFacts {
    /// SIREN, NIC, month (`YYYY-MM`)… of the declaration, when `iea-dsn` reads the file.
    pub declaration: Option<DeclarationFacts>,
    /// The conformity checks' anomalies (nature 11): `iea-dsn`'s problems for a file it
    /// refuses.
    pub anomalies: Vec<Anomaly>,
    /// What the CRM nominatif (nature 94) needs, when `iea-dsn` reads the file.
    pub employees: Vec<EmployeeFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationFacts {
    pub siren: String,
    pub nic: String,
    pub month: String,
    pub year_month: (i32, u8),
    /// `S20.G00.05.009`.
    pub business_id: Option<String>,
    /// `S20.G00.05.002`.
    pub kind: String,
    /// `S10.G00.00.006`.
    pub norm_version: String,
}

impl DsnFacts {
    /// Reads and checks `dsn` (the decompressed file) with `iea-dsn`.
    pub fn read(dsn: &[u8]) -> Self {
        match iea_dsn::Dsn::parse(dsn) {
            Ok(d) => {
                let decl = d.declaration();
                Self {
                    declaration: Some(DeclarationFacts {
                        siren: decl.siren.clone(),
                        nic: decl.nic.clone(),
                        month: decl.month.to_string(),
                        year_month: (decl.month.year, decl.month.month),
                        business_id: decl.business_id.clone(),
                        kind: decl.kind.code().to_owned(),
                        norm_version: decl.norm_version.clone(),
                    }),
                    anomalies: conformity::check(&d),
                    employees: conformity::employees(&d),
                }
            }
            Err(problems) => Self {
                declaration: None,
                anomalies: conformity::problems_of(&problems),
                employees: Vec::new(),
            },
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One registered deposit.
#[derive(Debug, Clone)]
pub struct Deposit {
    pub idflux: String,
    pub declarant: u64,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub received_at: OffsetDateTime,
    pub status: Status,
    /// The anomaly of an ARE.
    pub anomaly: Option<Rejection>,
    pub envelope: Envelope,
    /// `None` until the file is read (after the answer).
    pub facts: Option<Arc<DsnFacts>>,
    /// The AEE or ARE answered (the nature 10 return).
    pub report: String,
}

/// A deposit as `GET /__admin/deposits` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DepositView {
    pub idflux: String,
    pub declarant: u64,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    /// RFC 3339, UTC, on the mock's clock.
    pub received_at: String,
    pub status: Status,
    pub anomaly: Option<Rejection>,
    pub bytes: u64,
    pub sha256: String,
    pub essai_reel: Option<String>,
    pub siren: Option<String>,
    pub nic: Option<String>,
    pub month: Option<String>,
}

impl Deposit {
    pub fn view(&self) -> DepositView {
        let decl = self.facts.as_ref().and_then(|f| f.declaration.as_ref());
        DepositView {
            idflux: self.idflux.clone(),
            declarant: self.declarant,
            siret: self.siret.clone(),
            nom: self.nom.clone(),
            prenom: self.prenom.clone(),
            received_at: self
                .received_at
                .format(&Rfc3339)
                .unwrap_or_else(|_| self.received_at.to_string()),
            status: self.status,
            anomaly: self.anomaly.clone(),
            bytes: self.envelope.bytes,
            sha256: self.envelope.sha256.clone(),
            essai_reel: self.envelope.essai_reel.clone(),
            siren: decl.map(|d| d.siren.clone()),
            nic: decl.map(|d| d.nic.clone()),
            month: decl.map(|d| d.month.clone()),
        }
    }
}

/// Every deposit registered, in order of arrival, indexed by `idflux`.
#[derive(Default)]
pub struct Deposits {
    list: Vec<Deposit>,
    by_idflux: std::collections::HashMap<String, usize>,
}

impl Deposits {
    /// A fresh `idflux`: 23 characters of `[A-Za-z0-9]`, never given before.
    pub fn new_idflux(&self) -> String {
        loop {
            let id: String = rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(IDFLUX_LEN)
                .map(char::from)
                .collect();
            if self.get(&id).is_none() {
                return id;
            }
        }
    }

    pub fn push(&mut self, deposit: Deposit) {
        self.by_idflux
            .insert(deposit.idflux.clone(), self.list.len());
        self.list.push(deposit);
    }

    pub fn get(&self, idflux: &str) -> Option<&Deposit> {
        self.by_idflux.get(idflux).map(|&i| &self.list[i])
    }

    /// Records what was read of a deposit's file; answers the deposit.
    pub fn set_facts(&mut self, idflux: &str, facts: DsnFacts) -> Option<&Deposit> {
        let i = *self.by_idflux.get(idflux)?;
        self.list[i].facts = Some(Arc::new(facts));
        Some(&self.list[i])
    }

    pub fn all(&self) -> &[Deposit] {
        &self.list
    }

    /// The deposits of `declarant` received from `debut` to `fin`, both included, to the
    /// second.
    pub fn of_declarant_between(
        &self,
        declarant: u64,
        debut: OffsetDateTime,
        fin: OffsetDateTime,
    ) -> impl Iterator<Item = &Deposit> {
        self.list.iter().filter(move |d| {
            let at = d.received_at.replace_nanosecond(0).unwrap_or(d.received_at);
            d.declarant == declarant && at >= debut && at <= fin
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idflux_are_23_alphanumeric_characters_each_new() {
        let deposits = Deposits::default();
        let a = deposits.new_idflux();
        let b = deposits.new_idflux();
        assert_eq!(a.len(), IDFLUX_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn the_envelope_gives_size_digest_test_or_real_and_sender() {
        let file = b"S10.G00.00.001,'x'\r\nS10.G00.00.005,'01'\r\nS10.G00.01.001,'782145635'\r\nS10.G00.01.002,'00010'\r\nS20.G00.05.001,'01'\r\nS10.G00.00.007,'02'\r\n";
        let e = Envelope::read(file);
        assert_eq!(e.bytes, file.len() as u64);
        assert_eq!(e.sha256.len(), 64);
        assert_eq!(e.essai_reel.as_deref(), Some("01"));
        assert_eq!(e.emetteur_siret.as_deref(), Some("78214563500010"));
        assert_eq!(
            e.point_de_depot, None,
            "only the envelope at the start is read"
        );
        assert_eq!(Envelope::read(b"S10").essai_reel, None);
        assert_eq!(Envelope::read(b"S10.G00.00.005,'x1'\n").essai_reel, None);
    }

    #[test]
    fn a_file_iea_dsn_refuses_has_its_problems_as_anomalies_and_no_declaration() {
        let facts = DsnFacts::read(b"S10.G00.00.001,'x'\n");
        assert_eq!(facts.declaration, None);
        assert!(!facts.anomalies.is_empty());
        assert!(
            facts
                .anomalies
                .iter()
                .all(|a| a.code.starts_with("DSN-") && a.blocking)
        );
    }
}
