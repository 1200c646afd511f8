//! Reading what the deposit and consultation services answer: the body (gzipped when the
//! service chose to), the AEE / ARE report of a deposit, the `<depots>` of a listing and
//! the window of `Accept-Ranges`. XML is read with roxmltree, which refuses a document
//! type declaration (no entity expansion, no external fetch).

use std::io::Read;

use reqwest::header::{CONTENT_ENCODING, HeaderMap};

/// What an AEE says: the deposit is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub idflux: String,
    pub date_enregistrement: String,
    pub heure_enregistrement: String,
    pub essai_reel: String,
}

/// One anomaly of an ARE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub code: String,
    pub message: String,
}

/// What an ARE says: the deposit is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub idflux: Option<String>,
    pub anomalies: Vec<Anomaly>,
}

/// A report of the deposit service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Aee(Accepted),
    Are(Rejected),
}

/// One deposit of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub idflux: String,
    pub date: String,
    pub statut: String,
}

/// The body as text: gunzipped (at most `max` bytes) when `Content-Encoding` says gzip,
/// UTF-8, or ISO-8859-1 when it is not UTF-8.
pub fn body_text(headers: &HeaderMap, body: Vec<u8>, max: usize) -> Result<String, String> {
    let gz = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let bytes = if gz {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(body.as_slice())
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip answer cannot be read: {e}"))?;
        if out.len() > max {
            return Err(format!("answer larger than {max} bytes once gunzipped"));
        }
        out
    } else {
        body
    };
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

fn parse(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(xml, options).map_err(|e| format!("invalid XML: {e}"))
}

/// The text of the first descendant of `node` named `name` (namespace aside), trimmed.
fn text_of(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or("").trim().to_owned())
}

/// An idflux as the services give it: letters and digits, 1 to 50 (23 for a deposit).
fn is_idflux(s: &str) -> bool {
    (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Reads an AEE or an ARE (`<rapport type="AEE|ARE">`).
pub fn read_report(xml: &str) -> Result<Report, String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if root.tag_name().name() != "rapport" {
        return Err(format!(
            "root element is {}, not rapport",
            root.tag_name().name()
        ));
    }
    let idflux = text_of(root, "idflux").filter(|s| !s.is_empty());
    let etat = text_of(root, "envoi_etat").unwrap_or_default();
    match root.attribute("type") {
        Some("AEE") => {
            let idflux = idflux.ok_or("AEE without idflux")?;
            if !is_idflux(&idflux) {
                return Err(format!(
                    "AEE idflux of {} characters, not letters and digits",
                    idflux.len()
                ));
            }
            if !etat.eq_ignore_ascii_case("OK") {
                return Err(format!("AEE with envoi_etat {etat:?}"));
            }
            Ok(Report::Aee(Accepted {
                idflux,
                date_enregistrement: text_of(root, "date_enregistrement").unwrap_or_default(),
                heure_enregistrement: text_of(root, "heure_enregistrement").unwrap_or_default(),
                essai_reel: text_of(root, "essai_reel").unwrap_or_default(),
            }))
        }
        Some("ARE") => {
            let anomalies = root
                .descendants()
                .filter(|n| n.is_element() && n.tag_name().name() == "envoi_anomalie")
                .flat_map(|a| {
                    a.descendants()
                        .filter(|n| n.is_element() && n.tag_name().name() == "description")
                })
                .map(|d| Anomaly {
                    code: text_of(d, "code").unwrap_or_default(),
                    message: text_of(d, "message").unwrap_or_default(),
                })
                .collect();
            Ok(Report::Are(Rejected {
                idflux: idflux.filter(|i| is_idflux(i)),
                anomalies,
            }))
        }
        other => Err(format!("report of type {other:?}")),
    }
}

/// Reads the `<depots>` of a listing.
pub fn read_listing(xml: &str) -> Result<Vec<Listed>, String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if root.tag_name().name() != "depots" {
        return Err(format!(
            "root element is {}, not depots",
            root.tag_name().name()
        ));
    }
    root.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "depot")
        .map(|d| {
            let idflux = text_of(d, "idflux").unwrap_or_default();
            if !is_idflux(&idflux) {
                return Err("a listed deposit has no valid idflux".to_owned());
            }
            Ok(Listed {
                idflux,
                date: text_of(d, "date").unwrap_or_default(),
                statut: text_of(d, "statut").unwrap_or_default(),
            })
        })
        .collect()
}

/// The widest window of `Accept-Ranges: minutes=0-N`, in minutes.
pub fn window_minutes(accept_ranges: &str) -> Option<u32> {
    let lower = accept_ranges.to_ascii_lowercase();
    let rest = &lower[lower.find("minutes=")? + "minutes=".len()..];
    let range = rest.split([',', ';', ' ']).next()?;
    let (_, max) = range.split_once('-')?;
    max.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AEE: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<gipmds:rapport type="AEE" profil="DSN" version="v01r04" xmlns:gipmds="http://www.gip-mds.fr/">
 <envoi><envoi_identification>
  <declarant><siret>99999106200019</siret><nom>TEST</nom><prenom>MICHEL</prenom></declarant>
  <idflux>UR5WJEBAhi54RcZN8Lur71F</idflux><identifiant>MtoM</identifiant>
  <point_de_depot>01</point_de_depot><essai_reel>02</essai_reel>
  <emetteur_siret>99999106200019</emetteur_siret>
  <date_reception>2014-01-15</date_reception><heure_reception>14:47:42</heure_reception>
  <date_enregistrement>2014-01-15</date_enregistrement><heure_enregistrement>14:47:42</heure_enregistrement>
 </envoi_identification>
 <envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi></gipmds:rapport>"#;

    #[test]
    fn the_kits_aee_is_read() {
        assert_eq!(
            read_report(AEE).unwrap(),
            Report::Aee(Accepted {
                idflux: "UR5WJEBAhi54RcZN8Lur71F".into(),
                date_enregistrement: "2014-01-15".into(),
                heure_enregistrement: "14:47:42".into(),
                essai_reel: "02".into(),
            })
        );
    }

    #[test]
    fn an_are_gives_its_anomalies() {
        let are = r#"<gipmds:rapport type="ARE" profil="DSN" version="v01r04" xmlns:gipmds="http://www.gip-mds.fr/">
 <envoi><envoi_identification><idflux>UR5WJEBAhi54RcZN8Lur71F</idflux><essai_reel/></envoi_identification>
 <envoi_bilan><envoi_etat>KO</envoi_etat></envoi_bilan>
 <envoi_anomalie><description><code>B1-105-15</code><message>Le format du fichier n'est pas reconnu.</message></description>
 <description><code>X</code><message>Deux &amp; trois</message></description></envoi_anomalie></envoi></gipmds:rapport>"#;
        let Report::Are(r) = read_report(are).unwrap() else {
            panic!("an ARE")
        };
        assert_eq!(r.idflux.as_deref(), Some("UR5WJEBAhi54RcZN8Lur71F"));
        assert_eq!(
            r.anomalies,
            [
                Anomaly {
                    code: "B1-105-15".into(),
                    message: "Le format du fichier n'est pas reconnu.".into()
                },
                Anomaly {
                    code: "X".into(),
                    message: "Deux & trois".into()
                }
            ]
        );
    }

    #[test]
    fn a_dtd_or_a_bad_aee_is_refused() {
        let dtd = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><rapport type="AEE"><idflux>&x;</idflux></rapport>"#;
        assert!(read_report(dtd).is_err());
        assert!(
            read_report("<rapport type=\"AEE\"><envoi_etat>OK</envoi_etat></rapport>").is_err()
        );
        assert!(
            read_report(
                "<rapport type=\"AEE\"><idflux>a-b</idflux><envoi_etat>OK</envoi_etat></rapport>"
            )
            .is_err()
        );
        assert!(
            read_report(
                "<rapport type=\"AEE\"><idflux>ab</idflux><envoi_etat>KO</envoi_etat></rapport>"
            )
            .is_err()
        );
        assert!(read_report("<autre/>").is_err());
        assert!(read_report("not xml").is_err());
    }

    #[test]
    fn a_listing_gives_each_deposit() {
        let xml = "<depots><declarant><siret>1</siret><nom>n</nom><prenom>p</prenom>\
            <depot><idflux>AAAAAAAAAAAAAAAAAAAAAA1</idflux><date>20130801123242</date><statut>OK</statut></depot>\
            <depot><idflux>BBBBBBBBBBBBBBBBBBBBBB2</idflux><date>20130801124000</date><statut>KO</statut></depot>\
            </declarant></depots>";
        let l = read_listing(xml).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].idflux, "BBBBBBBBBBBBBBBBBBBBBB2");
        assert_eq!(l[1].statut, "KO");
        assert_eq!(read_listing("<depots></depots>").unwrap(), []);
        assert!(read_listing("<retours/>").is_err());
    }

    #[test]
    fn the_window_is_read_from_accept_ranges() {
        assert_eq!(window_minutes("minutes=0-60"), Some(60));
        assert_eq!(window_minutes("Minutes=0-10, bytes"), Some(10));
        assert_eq!(window_minutes("bytes"), None);
        assert_eq!(window_minutes("minutes=abc"), None);
    }

    #[test]
    fn a_gzipped_body_is_gunzipped_within_its_limit() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(AEE.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(body_text(&h, bytes.clone(), 1 << 20).unwrap(), AEE);
        assert!(body_text(&h, bytes, 100).is_err());
        assert_eq!(
            body_text(&HeaderMap::new(), b"caf\xe9".to_vec(), 10).unwrap(),
            "café"
        );
    }
}
