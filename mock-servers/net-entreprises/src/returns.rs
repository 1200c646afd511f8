//! The returns the mock publishes for each deposit, and their documents.
//!
//! When a deposit is registered, its returns are planned, each with a publication time:
//! - nature 10 (AEE `OK`, or ARE `KO`), `returns.aee_delay_secs` after the deposit;
//! - for an accepted deposit, nature 11 (conformity: `OK` certificate, `ANO`/`KO` list of
//!   anomalies, see `conformity`), `returns.conformity_delay_secs` after;
//! - for an accepted deposit whose declaration `iea-dsn` reads, nature 94 (CRM
//!   nominatif), `returns.crm_delay_secs` after, and not before the declaration's due date
//!   (`returns.due_day` of the following month at noon) when `returns.crm_after_due_date`.
//!
//! A return is published once the mock's clock reaches its time (or at once with
//! `POST /__admin/returns/publish`); its publication date is that time. Its document is
//! made when it is published (a CRM takes the rate table as it is then) and kept. An
//! overwritten return gives way to a new version (new id, status, dates); the old one and
//! a purged one can no longer be downloaded (404). Documents hold personal data: never
//! logged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::business::escape;
use crate::clock::TimeZone;
use crate::conformity::EmployeeFacts;
use crate::conformity::{self, Anomaly};
use crate::deposits::{DeclarationFacts, Deposit, Deposits, Status};

/// Delays and due date of the returns (settings, `returns.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ReturnSettings {
    /// Nature 10 (AEE or ARE), seconds after the deposit.
    pub aee_delay_secs: u64,
    /// Nature 11 (conformity), seconds after the deposit.
    pub conformity_delay_secs: u64,
    /// Nature 94 (CRM nominatif), seconds after the deposit.
    pub crm_delay_secs: u64,
    /// The CRM is not published before the declaration's due date.
    pub crm_after_due_date: bool,
    /// Day of the following month whose noon is the due date (5 or 15).
    pub due_day: u8,
}

impl Default for ReturnSettings {
    fn default() -> Self {
        Self {
            aee_delay_secs: 60,
            conformity_delay_secs: 3_600,
            crm_delay_secs: 86_400,
            crm_after_due_date: true,
            due_day: 15,
        }
    }
}

/// A rate the control API sets for a NIR (`PUT /__admin/pas-rates/{nir}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasRate {
    /// Percentage with two decimals, e.g. `"7.50"`.
    pub taux: String,
    /// A future rate and the date (`YYYY-MM-DD`) it applies from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taux_futur: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_effet: Option<String>,
}

impl PasRate {
    /// A French sentence when the rate is not well formed.
    pub fn problem(&self) -> Option<String> {
        if !is_rate(&self.taux) {
            return Some(format!(
                "Taux « {} » invalide : un pourcentage avec deux décimales est attendu (ex. 7.50).",
                self.taux
            ));
        }
        match (&self.taux_futur, &self.date_effet) {
            (None, None) => None,
            (Some(t), Some(d)) => {
                if !is_rate(t) {
                    Some(format!("Taux futur « {t} » invalide."))
                } else if !is_date(d) {
                    Some(format!(
                        "Date d'effet « {d} » invalide : AAAA-MM-JJ attendu."
                    ))
                } else {
                    None
                }
            }
            _ => Some("Un taux futur va avec sa date d'effet (les deux ou aucun).".into()),
        }
    }
}

fn is_rate(text: &str) -> bool {
    let Some((units, decimals)) = text.split_once('.') else {
        return false;
    };
    (1..=2).contains(&units.len())
        && decimals.len() == 2
        && units
            .bytes()
            .chain(decimals.bytes())
            .all(|b| b.is_ascii_digit())
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (
        text[0..4].parse::<i32>(),
        text[5..7].parse::<u8>(),
        text[8..10].parse::<u8>(),
    ) else {
        return false;
    };
    Month::try_from(m).is_ok_and(|m| Date::from_calendar_date(y, m, d).is_ok())
}

/// The rate of a NIR without one in the table: derived from its digest, 0.00 to 25.00 by
/// tenths, the same every time.
pub fn derived_rate(nir: &str) -> String {
    let d = Sha256::digest(nir.as_bytes());
    let tenths = u16::from_be_bytes([d[0], d[1]]) % 251;
    format!("{}.{}0", tenths / 10, tenths % 10)
}

/// Where a version of a return stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Current,
    /// Replaced by a newer version: neither listed nor downloadable.
    Overwritten,
    /// Still listed, no longer downloadable.
    Purged,
}

/// One version of a return.
#[derive(Debug, Clone)]
pub struct Return {
    pub idflux: String,
    pub declarant: u64,
    pub nature: u8,
    pub status: String,
    /// At most 10 characters (digits here).
    pub id: String,
    pub production: OffsetDateTime,
    pub publication: OffsetDateTime,
    pub state: State,
    /// Made when published.
    pub document: Option<Arc<String>>,
    /// The `url` the listings give instead of the download service's (set by an
    /// overwrite, to test a client against a return pointing elsewhere).
    pub url: Option<String>,
}

/// What an overwrite changes (`POST /__admin/returns/{idflux}/{id}/overwrite`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// `OK`, `ANO`, `KO` or `EN COURS`.
    pub statut: String,
    /// The new document; absent: the old one with its status changed.
    #[serde(default)]
    pub document: Option<String>,
    /// The `url` listings give for the new version; absent: the download service's.
    #[serde(default)]
    pub url: Option<String>,
}

impl Return {
    pub fn published(&self, now: OffsetDateTime) -> bool {
        self.publication <= now
    }
}

/// A return as `GET /__admin/returns` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnView {
    pub idflux: String,
    pub id: String,
    pub nature: u8,
    pub status: String,
    pub state: State,
    pub published: bool,
    /// `AAAAMMJJHHMMSS` in the mock's zone, as the listings write them.
    pub production: String,
    pub publication: String,
}

/// Every return planned or published, in order of planning, with indexes so that a
/// deposit's registration, a flux's listing and a download cost the same after a million
/// deposits as after one.
#[derive(Default)]
pub struct Returns {
    list: Vec<Return>,
    /// Every id given, whatever its return's state (an id is never given twice).
    ids: HashSet<String>,
    /// The positions in `list` of each flux's returns, in order of planning.
    by_flux: HashMap<String, Vec<usize>>,
    /// The positions in `list` of the returns without a document yet.
    undocumented: Vec<usize>,
    /// The rate table of `PUT /__admin/pas-rates/{nir}`.
    pub rates: HashMap<String, PasRate>,
}

fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2))
}

/// The due date of a declaration of `year`/`month`: `due_day` of the next month at noon.
pub fn due_date(year: i32, month: u8, due_day: u8, tz: TimeZone) -> Option<OffsetDateTime> {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let date = Date::from_calendar_date(y, Month::try_from(m).ok()?, due_day).ok()?;
    let local = PrimitiveDateTime::new(date, Time::from_hms(12, 0, 0).ok()?).assume_utc();
    let text = TimeZone::Utc.format_compact(local);
    tz.parse_compact(&text)
}

impl Returns {
    /// A return's id never given before.
    fn new_id(&mut self) -> String {
        loop {
            let id = format!("{:010}", rand::thread_rng().gen_range(0..10_000_000_000u64));
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    /// Adds `r` to the list and its indexes.
    fn push(&mut self, r: Return) {
        let i = self.list.len();
        self.by_flux.entry(r.idflux.clone()).or_default().push(i);
        if r.document.is_none() {
            self.undocumented.push(i);
        }
        self.list.push(r);
    }

    /// The returns of `idflux`, in order of planning.
    fn of_flux<'a>(&'a self, idflux: &str) -> impl Iterator<Item = (usize, &'a Return)> + 'a {
        self.by_flux
            .get(idflux)
            .into_iter()
            .flatten()
            .map(|&i| (i, &self.list[i]))
    }

    fn plan(&mut self, deposit: &Deposit, nature: u8, status: &str, at: OffsetDateTime) {
        let id = self.new_id();
        self.push(Return {
            idflux: deposit.idflux.clone(),
            declarant: deposit.declarant,
            nature,
            status: status.to_owned(),
            id,
            production: at,
            publication: at,
            state: State::Current,
            document: None,
            url: None,
        });
    }

    /// Plans the acknowledgement (nature 10) of a deposit just registered.
    pub fn plan_acknowledgement(&mut self, deposit: &Deposit, settings: &ReturnSettings) {
        self.plan(
            deposit,
            10,
            deposit.status.as_str(),
            deposit.received_at + secs(settings.aee_delay_secs),
        );
    }

    /// Plans the returns that need the file read (natures 11 and 94) of an accepted
    /// deposit.
    pub fn plan_reading(&mut self, deposit: &Deposit, settings: &ReturnSettings, tz: TimeZone) {
        let (Some(facts), Status::Ok) = (&deposit.facts, deposit.status) else {
            return;
        };
        let at = deposit.received_at;
        self.plan(
            deposit,
            11,
            conformity::status_of(&facts.anomalies),
            at + secs(settings.conformity_delay_secs),
        );
        if let Some(decl) = &facts.declaration {
            let mut crm_at = at + secs(settings.crm_delay_secs);
            if settings.crm_after_due_date
                && let Some(due) =
                    due_date(decl.year_month.0, decl.year_month.1, settings.due_day, tz)
            {
                crm_at = crm_at.max(due);
            }
            self.plan(deposit, 94, "OK", crm_at);
        }
    }

    /// Publishes now every return still to come; answers how many.
    pub fn publish_all(&mut self, now: OffsetDateTime) -> usize {
        let mut n = 0;
        for r in self
            .list
            .iter_mut()
            .filter(|r| r.state == State::Current && !r.published(now))
        {
            r.publication = now;
            r.production = r.production.min(now);
            n += 1;
        }
        n
    }

    /// Makes the documents of the returns published by `now` that have none yet.
    pub fn make_documents(&mut self, deposits: &Deposits, now: OffsetDateTime) {
        let (pending, later): (Vec<usize>, Vec<usize>) = std::mem::take(&mut self.undocumented)
            .into_iter()
            .filter(|&i| self.list[i].document.is_none())
            .partition(|&i| self.list[i].published(now));
        self.undocumented = later;
        for i in pending {
            let r = &self.list[i];
            let Some(deposit) = deposits.get(&r.idflux) else {
                continue;
            };
            let document = match r.nature {
                10 => deposit.report.clone(),
                11 => conformity_document(deposit, &r.status),
                _ => {
                    let identifiant = format!(
                        "{}{:017}",
                        rand::thread_rng().gen_range(1..10u8),
                        rand::thread_rng().gen_range(0..100_000_000_000_000_000u64)
                    );
                    crm_document(deposit, &self.rates, &identifiant)
                }
            };
            self.list[i].document = Some(Arc::new(document));
        }
    }

    /// The returns of `idflux` that the listings show at `now`.
    pub fn listed_of_flux(&self, idflux: &str, now: OffsetDateTime) -> Vec<&Return> {
        self.of_flux(idflux)
            .map(|(_, r)| r)
            .filter(|r| r.state != State::Overwritten && r.published(now))
            .collect()
    }

    /// The returns of `declarant` published from `debut` to `fin` (both included, to the
    /// second), listed at `now`.
    pub fn listed_of_declarant(
        &self,
        declarant: u64,
        debut: OffsetDateTime,
        fin: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Vec<&Return> {
        self.list
            .iter()
            .filter(|r| {
                let at = r.publication.replace_nanosecond(0).unwrap_or(r.publication);
                r.declarant == declarant
                    && r.state != State::Overwritten
                    && r.published(now)
                    && at >= debut
                    && at <= fin
            })
            .collect()
    }

    /// The document of a current, published return.
    pub fn document(&self, idflux: &str, id: &str, now: OffsetDateTime) -> Option<Arc<String>> {
        self.of_flux(idflux)
            .map(|(_, r)| r)
            .find(|r| r.id == id && r.state == State::Current && r.published(now))
            .and_then(|r| r.document.clone())
    }

    pub fn views(&self, tz: TimeZone, now: OffsetDateTime) -> Vec<ReturnView> {
        self.list
            .iter()
            .map(|r| ReturnView {
                idflux: r.idflux.clone(),
                id: r.id.clone(),
                nature: r.nature,
                status: r.status.clone(),
                state: r.state,
                published: r.published(now),
                production: tz.format_compact(r.production),
                publication: tz.format_compact(r.publication),
            })
            .collect()
    }

    fn find_current(&mut self, idflux: &str, id: &str) -> Option<usize> {
        self.of_flux(idflux)
            .find(|(_, r)| r.id == id && r.state == State::Current)
            .map(|(i, _)| i)
    }

    /// Overwrites a return: a new version with a new id, the new status, dates `now`,
    /// the new document (or the old one with its status changed) and `url`; the old one
    /// is no longer listed nor downloadable. `None` if no current return has this id.
    pub fn overwrite(
        &mut self,
        idflux: &str,
        id: &str,
        version: NewVersion,
        now: OffsetDateTime,
    ) -> Option<Return> {
        let i = self.find_current(idflux, id)?;
        let old = self.list[i].clone();
        self.list[i].state = State::Overwritten;
        let document = version.document.or_else(|| {
            old.document
                .as_deref()
                .map(|d| with_status(d, &old.status, &version.statut))
        });
        let new = Return {
            id: self.new_id(),
            status: version.statut,
            production: now,
            publication: now,
            state: State::Current,
            document: document.map(Arc::new),
            url: version.url,
            ..old
        };
        self.push(new.clone());
        Some(new)
    }

    /// Purges a return: still listed, no longer downloadable.
    pub fn purge(&mut self, idflux: &str, id: &str) -> bool {
        match self.find_current(idflux, id) {
            Some(i) => {
                self.list[i].state = State::Purged;
                true
            }
            None => false,
        }
    }
}

/// `document` with its state elements saying `new` instead of `old`.
fn with_status(document: &str, old: &str, new: &str) -> String {
    let mut out = document.to_owned();
    for tag in ["envoi_etat", "etat"] {
        out = out.replace(
            &format!("<{tag}>{}</{tag}>", escape(old)),
            &format!("<{tag}>{}</{tag}>", escape(new)),
        );
    }
    out
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>";

fn anomaly_xml(a: &Anomaly) -> String {
    let mut out = format!(
        "<declaration_anomalie><description><code>{}</code><categorie>{}</categorie><message>{}</message></description>",
        escape(&a.code),
        a.category(),
        escape(&a.message)
    );
    if a.rubric.is_some() || a.line.is_some() {
        out.push_str("<valeurs><rubrique_declenchante>");
        if let Some(r) = &a.rubric {
            out.push_str(&format!("<identifiant>{}</identifiant>", escape(r)));
        }
        if let Some(l) = a.line {
            out.push_str(&format!("<ligne>{l}</ligne>"));
        }
        if let Some(v) = &a.value {
            out.push_str(&format!("<valeur>{}</valeur>", escape(v)));
        }
        out.push_str("</rubrique_declenchante></valeurs>");
    }
    if a.nir.is_some() || a.matricule.is_some() {
        out.push_str("<environnement><salarie origine=\"DSN\">");
        if let Some(n) = &a.nir {
            out.push_str(&format!("<NIR>{}</NIR>", escape(n)));
        }
        if let Some(m) = &a.matricule {
            out.push_str(&format!("<matricule>{}</matricule>", escape(m)));
        }
        out.push_str("</salarie></environnement>");
    }
    out.push_str("</declaration_anomalie>");
    out
}

/// The declaration's facts of a deposit whose file was read.
fn declaration_of(deposit: &Deposit) -> Option<&DeclarationFacts> {
    deposit.facts.as_ref().and_then(|f| f.declaration.as_ref())
}

fn envoi(deposit: &Deposit) -> String {
    let norm = declaration_of(deposit)
        .map(|d| d.norm_version.clone())
        .unwrap_or_default();
    format!(
        "<envoi><envoi_identification><idflux>{}</idflux><version_norme>{}</version_norme><emetteur_siret>{}</emetteur_siret></envoi_identification>\
         <envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>",
        deposit.idflux,
        escape(&norm),
        escape(
            deposit
                .envelope
                .emetteur_siret
                .as_deref()
                .unwrap_or(&deposit.siret)
        ),
    )
}

fn declaration_identification(deposit: &Deposit) -> String {
    match declaration_of(deposit) {
        Some(d) => format!(
            "<declaration_identification><rang>1</rang><type>{}</type><identifiant_metier>{}</identifiant_metier><SIREN>{}</SIREN><nic_affectation>{}</nic_affectation><mois>{}</mois></declaration_identification>",
            escape(&d.kind),
            escape(d.business_id.as_deref().unwrap_or("")),
            escape(&d.siren),
            escape(&d.nic),
            escape(&d.month)
        ),
        None => "<declaration_identification><rang>1</rang></declaration_identification>".into(),
    }
}

/// Nature 11: the conformity certificate (`OK`) or the list of anomalies (`ANO`, `KO`).
fn conformity_document(deposit: &Deposit, status: &str) -> String {
    let kind = if status == "OK" {
        "Certificat de conformité"
    } else {
        "Bilan d'anomalies"
    };
    let anomalies: String = deposit
        .facts
        .iter()
        .flat_map(|f| &f.anomalies)
        .map(anomaly_xml)
        .collect();
    format!(
        "{HEAD}<gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"{kind}\" version=\"v01r04\">{}\
         <declaration>{}<declaration_bilan><etat>{}</etat></declaration_bilan>{anomalies}</declaration></gipmds:rapport>",
        envoi(deposit),
        declaration_identification(deposit),
        escape(status),
    )
}

/// Nature 94: the CRM nominatif, a rate for every employee (the table's, else derived
/// from the NIR or NTT), `TST01` where the DSN applied another rate.
fn crm_document(deposit: &Deposit, rates: &HashMap<String, PasRate>, identifiant: &str) -> String {
    let mut salaries = String::new();
    let mut anomalies = String::new();
    let employees: &[EmployeeFacts] = deposit.facts.as_ref().map_or(&[], |f| &f.employees);
    for e in employees {
        let Some(key) = e.nir.as_ref().or(e.ntt.as_ref()) else {
            continue;
        };
        let rate = rates.get(key).cloned().unwrap_or_else(|| PasRate {
            taux: derived_rate(key),
            taux_futur: None,
            date_effet: None,
        });
        let ident = match (&e.nir, &e.ntt) {
            (Some(n), _) => format!("<NIR>{}</NIR>", escape(n)),
            (None, Some(t)) => format!("<NTT>{}</NTT>", escape(t)),
            (None, None) => String::new(),
        };
        let matricule = e
            .matricule
            .as_ref()
            .map(|m| format!("<matricule>{}</matricule>", escape(m)))
            .unwrap_or_default();
        let future = match (&rate.taux_futur, &rate.date_effet) {
            (Some(t), Some(d)) => format!(
                "<future_imposition_PAS><taux>{}</taux><date_effet>{}</date_effet></future_imposition_PAS>",
                escape(t),
                escape(d)
            ),
            _ => String::new(),
        };
        salaries.push_str(&format!(
            "<salarie>{ident}{matricule}<taux_imposition_PAS>{}</taux_imposition_PAS>{future}</salarie>",
            escape(&rate.taux)
        ));
        let valid = conformity::hundredths(&rate.taux);
        if let Some((applied, line)) = e
            .applied_rates
            .iter()
            .find(|(applied, _)| conformity::hundredths(applied) != valid)
        {
            anomalies.push_str(&anomaly_xml(&Anomaly {
                code: "TST01".into(),
                blocking: false,
                message: format!(
                    "Le taux appliqué n'est pas le taux valide transmis par la DGFiP ({}).",
                    rate.taux
                ),
                rubric: Some("S21.G00.50.006".into()),
                line: Some(*line),
                value: Some(applied.clone()),
                nir: e.nir.clone(),
                matricule: e.matricule.clone(),
            }));
        }
    }
    let count = employees
        .iter()
        .filter(|e| e.nir.is_some() || e.ntt.is_some())
        .count();
    format!(
        "{HEAD}<gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"CRM nominatif\" version=\"v01r07\" identifiant=\"{identifiant}\" \
         message=\"En cas d&apos;absence de taux communiqué par la DGFIP, appliquez le taux non personnalisé.\">{}\
         <declaration>{}<declaration_bilan><etat>OK</etat><declaration_contenu><salaries>{count}</salaries></declaration_contenu>{salaries}</declaration_bilan>{anomalies}</declaration></gipmds:rapport>",
        envoi(deposit),
        declaration_identification(deposit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_dates_of_the_table_are_checked() {
        let ok = PasRate {
            taux: "7.50".into(),
            taux_futur: Some("10.10".into()),
            date_effet: Some("2027-01-01".into()),
        };
        assert_eq!(ok.problem(), None);
        for (taux, futur, date) in [
            ("7.5", None, None),
            ("150.00", None, None),
            ("7,50", None, None),
            ("7.50", Some("8.00"), None),
            ("7.50", Some("8.00"), Some("2027-02-30")),
            ("7.50", Some("x"), Some("2027-01-01")),
        ] {
            let r = PasRate {
                taux: taux.into(),
                taux_futur: futur.map(Into::into),
                date_effet: date.map(Into::into),
            };
            assert!(r.problem().is_some(), "{r:?}");
        }
    }

    #[test]
    fn a_derived_rate_is_stable_and_well_formed() {
        let a = derived_rate("1850775123456");
        assert_eq!(a, derived_rate("1850775123456"));
        assert!(is_rate(&a), "{a}");
        assert!(conformity::hundredths(&a).unwrap() <= 2_500);
    }

    #[test]
    fn the_due_date_is_noon_of_the_due_day_of_the_next_month() {
        let due = due_date(2026, 12, 15, TimeZone::EuropeParis).unwrap();
        assert_eq!(TimeZone::EuropeParis.format_compact(due), "20270115120000");
        let due = due_date(2026, 11, 5, TimeZone::Utc).unwrap();
        assert_eq!(TimeZone::Utc.format_compact(due), "20261205120000");
    }

    #[test]
    fn an_overwritten_document_says_its_new_status() {
        assert_eq!(
            with_status("<a><etat>OK</etat></a>", "OK", "KO"),
            "<a><etat>KO</etat></a>"
        );
    }
}
