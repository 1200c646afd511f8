//! The deposits the mock registered, accepted (AEE) or rejected (ARE), in order of
//! arrival, and what the control API shows of each.
//!
//! The DSN itself is not kept: only its size, its SHA-256, the declaration's facts read
//! with `iea-dsn` (SIREN, NIC, month), the conformity checks' anomalies and what the CRM
//! needs of each employee (NIR, matricule, rates applied). Names, NIRs and the file's
//! contents are never logged.

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

/// What the mock read of a deposited file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub bytes: u64,
    pub sha256: String,
    /// `S10.G00.00.005` (`01` test, `02` real) when the file has it.
    pub essai_reel: Option<String>,
    /// SIRET of the sender (`S10.G00.01`), when `iea-dsn` reads the file.
    pub emetteur_siret: Option<String>,
    /// `S10.G00.00.007`, the deposit point, when `iea-dsn` reads the file.
    pub point_de_depot: Option<String>,
    /// SIREN, NIC and month (`YYYY-MM`) of the declaration, when `iea-dsn` reads the file.
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

impl FileFacts {
    /// Reads `dsn` (the decompressed file). A file that `iea-dsn` refuses still has a size,
    /// a digest and, if written, its `S10.G00.00.005`.
    pub fn read(dsn: &[u8]) -> Self {
        let sha256 = hex(&Sha256::digest(dsn));
        let (parsed, anomalies) = match iea_dsn::Dsn::parse(dsn) {
            Ok(d) => {
                let anomalies = conformity::check(&d);
                (Some(d), anomalies)
            }
            Err(problems) => (None, conformity::problems_of(&problems)),
        };
        let essai_reel = match &parsed {
            Some(d) => Some(d.declaration().test_or_real.code().to_owned()),
            None => test_or_real_of_unreadable(dsn),
        };
        Self {
            bytes: dsn.len() as u64,
            sha256,
            essai_reel,
            emetteur_siret: parsed.as_ref().map(|d| d.sender().siret()),
            point_de_depot: parsed
                .as_ref()
                .and_then(|d| d.sender().deposit_point.clone()),
            declaration: parsed.as_ref().map(|d| {
                let decl = d.declaration();
                DeclarationFacts {
                    siren: decl.siren.clone(),
                    nic: decl.nic.clone(),
                    month: decl.month.to_string(),
                    year_month: (decl.month.year, decl.month.month),
                    business_id: decl.business_id.clone(),
                    kind: decl.kind.code().to_owned(),
                    norm_version: decl.norm_version.clone(),
                }
            }),
            anomalies,
            employees: parsed
                .as_ref()
                .map(conformity::employees)
                .unwrap_or_default(),
        }
    }
}

/// The value of the `S10.G00.00.005` line of a file `iea-dsn` refused (the real service
/// answers an AEE to such a file and reports its problems later): that one line is looked
/// up, nothing else is read.
fn test_or_real_of_unreadable(dsn: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = b"S10.G00.00.005,'";
    dsn.split(|b| *b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(PREFIX)?;
        let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
        let value = rest.strip_suffix(b"'")?;
        (value.len() <= 2 && value.iter().all(u8::is_ascii_digit))
            .then(|| String::from_utf8_lossy(value).into_owned())
    })
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
    pub file: FileFacts,
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
        let decl = self.file.declaration.as_ref();
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
            bytes: self.file.bytes,
            sha256: self.file.sha256.clone(),
            essai_reel: self.file.essai_reel.clone(),
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
    fn a_file_iea_dsn_refuses_keeps_its_size_digest_and_test_or_real() {
        let facts = FileFacts::read(b"S10.G00.00.001,'x'\r\nS10.G00.00.005,'01'\r\n");
        assert_eq!(facts.bytes, 41);
        assert_eq!(facts.sha256.len(), 64);
        assert_eq!(facts.essai_reel.as_deref(), Some("01"));
        assert_eq!(facts.declaration, None);
        assert_eq!(FileFacts::read(b"S10").essai_reel, None);
    }
}
