//! A downloaded document read with `iea_dsn::returns` (which refuses a DOCTYPE, entities
//! and documents past the size cap), turned into what the store keeps; and a deposit's
//! conformity from its returns. Never logs a document's content.

use iea_dsn::returns::{self as r, ReturnDocument, ReturnError};

use super::schedule;
use super::types::{CrmRate, CrmRecord, ReadResult, ReturnAnomaly, ReturnDetail, ReturnRecord};

/// The French name of a nature.
pub fn nature_label(nature: u32) -> &'static str {
    match nature {
        10 => "Accusé d'enregistrement électronique (AEE) ou avis de rejet (ARE)",
        11 => "Certificat de conformité ou bilan d'anomalies",
        20 | 21 => "Identification des salariés",
        50 | 51 => "Retour d'un organisme complémentaire",
        60..=62 => "Retour de l'Urssaf",
        70 | 71 => "Retour de l'AGIRC-ARRCO",
        92 => "Accusé de réception de la DGFiP",
        94 => "Compte rendu des taux de prélèvement à la source (CRM nominatif)",
        _ => "Autre retour",
    }
}

fn category(c: &r::Category) -> String {
    match c {
        r::Category::Blocking => "bloquant".into(),
        r::Category::NonBlocking => "non-bloquant".into(),
        r::Category::Other(s) => s.clone(),
    }
}

fn anomaly(a: &r::Anomaly) -> ReturnAnomaly {
    ReturnAnomaly {
        code: a.code.clone(),
        message: a.message.clone(),
        rubric: a.rubric.clone().unwrap_or_default(),
        category: category(&a.category),
    }
}

/// Anomalies a return's message names at most; the return keeps them all (its detail lists
/// them), but a bilan of a large file can hold thousands and the message is a sentence.
const MESSAGE_ANOMALIES: usize = 10;
/// Characters of the anomalies a return's message names at most.
const MESSAGE_ANOMALIES_CHARS: usize = 1_500;

/// The first anomalies (at most [`MESSAGE_ANOMALIES`], within [`MESSAGE_ANOMALIES_CHARS`],
/// the first always, cut if it is longer), then « … et N autres anomalies (voir le détail
/// du retour) » when some are not named.
fn listed(anomalies: &[ReturnAnomaly]) -> String {
    let mut text = String::new();
    let mut named = 0;
    for a in anomalies.iter().take(MESSAGE_ANOMALIES) {
        let item = if a.rubric.is_empty() {
            format!("{} : {}", a.code, a.message)
        } else {
            format!("{} ({}) : {}", a.code, a.rubric, a.message)
        };
        let (used, len) = (text.chars().count(), item.chars().count());
        if named == 0 && len > MESSAGE_ANOMALIES_CHARS {
            text.extend(item.chars().take(MESSAGE_ANOMALIES_CHARS - 1));
            text.push('…');
        } else if named > 0 && used + 3 + len > MESSAGE_ANOMALIES_CHARS {
            break;
        } else {
            if named > 0 {
                text.push_str(" ; ");
            }
            text.push_str(&item);
        }
        named += 1;
    }
    let others = anomalies.len() - named;
    if others > 0 {
        let s = if others == 1 { "" } else { "s" };
        text.push_str(&format!(
            " ; … et {} autre{s} anomalie{s} (voir le détail du retour)",
            iea_dsn::group_thousands(others)
        ));
    }
    text
}

/// Why a document is refused (`Err`): a French sentence, and whether it is hostile.
pub type Refusal = (String, &'static str);

/// Reads the document of return `rec` (`bytes`, at most `max_bytes`). `file_name`: the
/// name a CRM takes in the export folder.
pub fn read_document(
    rec: &ReturnRecord,
    bytes: &[u8],
    max_bytes: usize,
) -> Result<ReadResult, Refusal> {
    let refused = |e: ReturnError| (e.to_string(), e.code());
    if !matches!(rec.nature, 10 | 11 | 94) {
        // Kept as received, unread; hostile documents are refused all the same.
        if bytes.len() > max_bytes {
            return Err(refused(ReturnError::TooLarge {
                size: bytes.len(),
                max: max_bytes,
            }));
        }
        if r::has_doctype(bytes) {
            return Err(refused(ReturnError::Doctype));
        }
        return Ok(ReadResult::Kept {
            message: format!("Retour de nature {} conservé.", rec.nature),
        });
    }
    let doc = r::read_nature(rec.nature, bytes, max_bytes).map_err(refused)?;
    Ok(match doc {
        ReturnDocument::Acknowledgement(r::Acknowledgement::Accepted(a)) => {
            ReadResult::Conformity {
                status: "OK".into(),
                anomalies: Vec::new(),
                message: format!(
                    "Dépôt enregistré par Net-entreprises (accusé d'enregistrement du {} à {}).",
                    iea_fr_time::date_text(&a.date_enregistrement),
                    iea_fr_time::time_text(&a.heure_enregistrement)
                ),
            }
        }
        ReturnDocument::Acknowledgement(r::Acknowledgement::Rejected(x)) => {
            let anomalies: Vec<ReturnAnomaly> = x
                .anomalies
                .iter()
                .map(|a| ReturnAnomaly {
                    code: a.code.clone(),
                    message: a.message.clone(),
                    rubric: String::new(),
                    category: "bloquant".into(),
                })
                .collect();
            ReadResult::Conformity {
                status: "KO".into(),
                message: format!("Dépôt rejeté (avis de rejet) : {}", listed(&anomalies)),
                anomalies,
            }
        }
        ReturnDocument::Conformity(c) => {
            let anomalies: Vec<ReturnAnomaly> = c.anomalies.iter().map(anomaly).collect();
            let status = c.status.as_str().to_owned();
            let message = match c.status {
                r::ReturnStatus::Ok => "Déclaration conforme (certificat de conformité).".into(),
                r::ReturnStatus::Ano => format!(
                    "Déclaration acceptée avec des anomalies non bloquantes : {}",
                    listed(&anomalies)
                ),
                r::ReturnStatus::Ko => format!(
                    "Déclaration non conforme (anomalies bloquantes) : {}",
                    listed(&anomalies)
                ),
                r::ReturnStatus::EnCours => "Contrôle de conformité en cours.".into(),
            };
            ReadResult::Conformity {
                status,
                anomalies,
                message,
            }
        }
        ReturnDocument::Crm(c) => {
            let available_on = schedule::day_of_listing(&rec.publication)
                .or_else(|| schedule::day_of_listing(&rec.production))
                .ok_or_else(|| {
                    (
                        "La date de mise à disposition du CRM n'est pas lisible.".to_owned(),
                        "invalid_value",
                    )
                })?;
            let valid_until = schedule::valid_until_of(&available_on).ok_or_else(|| {
                (
                    "La date de mise à disposition du CRM n'est pas lisible.".to_owned(),
                    "invalid_value",
                )
            })?;
            let siret = c.siret();
            if siret.len() != 14 || !siret.bytes().all(|b| b.is_ascii_digit()) {
                return Err((
                    "Le CRM ne nomme pas l'établissement (SIREN et NIC) : il n'a pas été lu."
                        .to_owned(),
                    "missing_element",
                ));
            }
            let rates = c
                .employees
                .iter()
                .map(|e| CrmRate {
                    nir_or_ntt: e.id.as_str().to_owned(),
                    ntt: !e.id.is_nir(),
                    matricule: e.matricule.clone().unwrap_or_default(),
                    rate: e.rate.map(|x| x.to_string()).unwrap_or_default(),
                    rate_hundredths: e.rate.map(|x| i64::from(x.hundredths())),
                    future_rate: e.future.map(|f| f.rate.to_string()).unwrap_or_default(),
                    future_rate_hundredths: e.future.map(|f| i64::from(f.rate.hundredths())),
                    future_effective_on: e.future.map(|f| f.from.to_string()).unwrap_or_default(),
                })
                .collect::<Vec<_>>();
            let anomalies: Vec<ReturnAnomaly> = c.anomalies.iter().map(anomaly).collect();
            let message = format!(
                "CRM nominatif reçu : {} taux, identifiant {}, valables jusqu'au {}.",
                rates.len(),
                c.identifier,
                iea_fr_time::date_text(&valid_until)
            );
            ReadResult::Crm {
                status: c.status.as_str().to_owned(),
                crm: CrmRecord {
                    file_name: crm_file_name(c.identifier.as_str(), rec),
                    siret,
                    identifiant: c.identifier.as_str().to_owned(),
                    available_on,
                    valid_until,
                    rates,
                },
                anomalies,
                message,
            }
        }
    })
}

/// The name of a CRM in its establishment's export folder.
pub fn crm_file_name(identifiant: &str, rec: &ReturnRecord) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    format!(
        "crm-{}-{}-{}.xml",
        safe(identifiant),
        safe(&rec.idflux),
        safe(&rec.return_id)
    )
}

/// A deposit's conformity from its returns: the current nature 11 once read, else an
/// ARE (nature 10 `KO`); with its French sentence.
pub fn conformity_of(returns: &[ReturnDetail]) -> (String, String) {
    let current = |n: u32| {
        returns
            .iter()
            .map(|d| &d.record)
            .rev()
            .find(|r| r.nature == n && r.is_current() && r.read_status.is_some())
    };
    if let Some(r) = current(11) {
        return (r.read_status.clone().unwrap_or_default(), r.message.clone());
    }
    if let Some(r) = current(10)
        && r.read_status.as_deref() == Some("KO")
    {
        return ("KO".into(), r.message.clone());
    }
    (String::new(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anomaly(i: usize, rubric: &str, message: &str) -> ReturnAnomaly {
        ReturnAnomaly {
            code: format!("CCH-{i}"),
            message: message.into(),
            rubric: rubric.into(),
            category: "bloquant".into(),
        }
    }

    #[test]
    fn a_few_anomalies_are_all_named() {
        let a = [
            anomaly(1, "S21.G00.40.009", "Date invalide"),
            anomaly(2, "", "Rubrique absente"),
        ];
        assert_eq!(
            listed(&a),
            "CCH-1 (S21.G00.40.009) : Date invalide ; CCH-2 : Rubrique absente"
        );
    }

    #[test]
    fn a_bilan_of_thousands_names_the_first_and_counts_the_others() {
        let a: Vec<_> = (0..5_000)
            .map(|i| anomaly(i, "S21.G00.30.001", "NIR invalide"))
            .collect();
        let text = listed(&a);
        assert!(text.starts_with("CCH-0 (S21.G00.30.001) : NIR invalide ; CCH-1 "));
        assert!(
            text.ends_with(" ; … et 4\u{202f}990 autres anomalies (voir le détail du retour)"),
            "{text}"
        );
        assert!(text.chars().count() < MESSAGE_ANOMALIES_CHARS + 100);

        // Long messages: fewer named, within the bound; a first one too long is cut.
        let long: Vec<_> = (0..3).map(|i| anomaly(i, "", &"x".repeat(1_000))).collect();
        let text = listed(&long);
        assert!(text.ends_with(" ; … et 2 autres anomalies (voir le détail du retour)"));
        let huge = [anomaly(0, "", &"y".repeat(5_000))];
        let text = listed(&huge);
        assert_eq!(text.chars().count(), MESSAGE_ANOMALIES_CHARS);
        assert!(text.ends_with('…'));
    }
}
