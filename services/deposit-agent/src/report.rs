//! Reading what the deposit and consultation services answer: the body (gzipped when the
//! service chose to), the AEE / ARE report of a deposit (`iea_dsn::returns`, the same
//! reader as a nature 10 return's), the `<depots>` and `<retours>` of listings, the
//! window of `Accept-Ranges` and the delay of `Expires`. XML is read with roxmltree
//! without DTD, and a document with a `<!DOCTYPE` is refused before parsing (no entity
//! expansion, no external fetch).

use std::io::Read;
use std::time::SystemTime;

use reqwest::header::{CONTENT_ENCODING, DATE, EXPIRES, HeaderMap};

pub use iea_dsn::returns::{
    Accepted, Acknowledgement as Report, Rejected, RejectionAnomaly as Anomaly,
};

/// One deposit of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub idflux: String,
    pub date: String,
    pub statut: String,
}

/// One `<retour>` of a returns listing, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedReturn {
    /// The `<flux><id>` it was listed under.
    pub idflux: String,
    pub publication: String,
    pub production: String,
    pub nature: u32,
    pub statut: String,
    /// Empty for a return without a document (then `url` is empty too).
    pub id: String,
    pub url: String,
}

/// Whether `Content-Encoding` says gzip.
pub fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

/// The body's bytes: gunzipped (at most `max` bytes) when `Content-Encoding` says gzip.
pub fn body_bytes(headers: &HeaderMap, body: Vec<u8>, max: usize) -> Result<Vec<u8>, String> {
    if !is_gzip(headers) {
        return Ok(body);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body.as_slice())
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip answer cannot be read: {e}"))?;
    if out.len() > max {
        return Err(format!("answer larger than {max} bytes once gunzipped"));
    }
    Ok(out)
}

/// The body as text: [`body_bytes`], UTF-8, or ISO-8859-1 when it is not UTF-8.
pub fn body_text(headers: &HeaderMap, body: Vec<u8>, max: usize) -> Result<String, String> {
    let bytes = body_bytes(headers, body, max)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

fn parse(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    if iea_dsn::returns::has_doctype(xml.as_bytes()) {
        return Err("document type declaration refused".into());
    }
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

/// The text of the child of `node` named `name`, trimmed (empty when absent).
fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .and_then(|n| n.text())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// An idflux as the services give it: letters and digits, 1 to 50 (23 for a deposit).
pub fn is_idflux(s: &str) -> bool {
    (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Reads an AEE or an ARE (`<rapport type="AEE|ARE">`, UTF-8 or declared ISO-8859-1);
/// the error is `iea_dsn`'s stable code.
pub fn read_report(xml: &[u8]) -> Result<Report, String> {
    iea_dsn::returns::read_acknowledgement(xml, usize::MAX).map_err(|e| e.code().to_owned())
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

/// Reads the `<retours>` of a returns listing: each `<retour>` under its `<flux>`.
pub fn read_returns(xml: &str) -> Result<Vec<ListedReturn>, String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    if root.tag_name().name() != "retours" {
        return Err(format!(
            "root element is {}, not retours",
            root.tag_name().name()
        ));
    }
    let mut out = Vec::new();
    for flux in root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "flux")
    {
        let idflux = child_text(flux, "id");
        if !is_idflux(&idflux) {
            return Err("a listed flux has no valid id".into());
        }
        for r in flux
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "retour")
        {
            let nature = child_text(r, "nature");
            let nature = nature.parse::<u32>().map_err(|_| {
                format!(
                    "a listed return has a nature of {} characters that is not a number",
                    nature.len()
                )
            })?;
            let id = child_text(r, "id");
            if id.chars().count() > 10 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(
                    "a listed return has an id that is not 10 letters or digits at most".into(),
                );
            }
            out.push(ListedReturn {
                idflux: idflux.clone(),
                publication: child_text(r, "publication"),
                production: child_text(r, "production"),
                nature,
                statut: child_text(r, "statut"),
                id,
                url: child_text(r, "url"),
            });
        }
    }
    Ok(out)
}

/// Seconds from the answer until its `Expires` (relative to its `Date` when it has one,
/// else to `now`); 0 when absent, unreadable or already past.
pub fn expires_in(headers: &HeaderMap, now: SystemTime) -> u32 {
    let date = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
    };
    let Some(expires) = date(EXPIRES) else {
        return 0;
    };
    let base = date(DATE).unwrap_or(now);
    expires
        .duration_since(base)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
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

    /// The AEE / ARE themselves are tested in `iea_dsn::returns`; here, that the deposit
    /// reads them through it.
    #[test]
    fn the_deposit_reads_its_aee_with_iea_dsn() {
        let Report::Accepted(a) = read_report(AEE.as_bytes()).unwrap() else {
            panic!("an AEE")
        };
        assert_eq!(a.idflux, "UR5WJEBAhi54RcZN8Lur71F");
        assert_eq!(
            read_report(b"<!DOCTYPE r><rapport type=\"AEE\"/>").unwrap_err(),
            "doctype"
        );
        assert_eq!(read_report(b"<autre/>").unwrap_err(), "not_a_report");
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
        assert!(read_listing("<!DOCTYPE depots><depots></depots>").is_err());
    }

    #[test]
    fn a_returns_listing_gives_each_return_under_its_flux() {
        let xml = "<retours><flux><id>AAAAAAAAAAAAAAAAAAAAAA1</id>\
            <retour><publication>20261201150000</publication><production>20261201140000</production><nature>10</nature><statut>OK</statut><id>0123456789</id><url>https://h/telecharger-retour/1.0/AAAAAAAAAAAAAAAAAAAAAA1/0123456789</url></retour>\
            <retour><publication>20261201150100</publication><production>20261201150100</production><nature>92</nature><statut>EN COURS</statut></retour>\
            </flux><flux><id>BBBBBBBBBBBBBBBBBBBBBB2</id>\
            <retour><publication>20261201160000</publication><production>20261201160000</production><nature>94</nature><statut>OK</statut><id>9</id><url>u</url></retour>\
            </flux></retours>";
        let r = read_returns(xml).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            ListedReturn {
                idflux: "AAAAAAAAAAAAAAAAAAAAAA1".into(),
                publication: "20261201150000".into(),
                production: "20261201140000".into(),
                nature: 10,
                statut: "OK".into(),
                id: "0123456789".into(),
                url: "https://h/telecharger-retour/1.0/AAAAAAAAAAAAAAAAAAAAAA1/0123456789".into(),
            }
        );
        assert_eq!(
            (r[1].id.as_str(), r[1].url.as_str(), r[1].statut.as_str()),
            ("", "", "EN COURS")
        );
        assert_eq!(
            (r[2].idflux.as_str(), r[2].nature),
            ("BBBBBBBBBBBBBBBBBBBBBB2", 94)
        );
        assert_eq!(read_returns("<retours></retours>").unwrap(), []);
        for bad in [
            "<depots/>",
            "<!DOCTYPE retours><retours></retours>",
            "<retours><flux><id>a-b</id></flux></retours>",
            "<retours><flux><id>A1</id><retour><nature>x</nature></retour></flux></retours>",
            "<retours><flux><id>A1</id><retour><nature>10</nature><id>01234567890</id></retour></flux></retours>",
        ] {
            assert!(read_returns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expires_is_counted_from_the_answers_date() {
        use reqwest::header::HeaderValue;
        use std::time::Duration;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let http = |t: SystemTime| HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(expires_in(&h, now), 0);
        h.insert(EXPIRES, http(now + Duration::from_secs(120)));
        assert_eq!(expires_in(&h, now), 120);
        // The server's clock rules when it says what it is.
        h.insert(DATE, http(now - Duration::from_secs(1000)));
        assert_eq!(expires_in(&h, now), 1120);
        h.insert(DATE, http(now + Duration::from_secs(200)));
        assert_eq!(expires_in(&h, now), 0, "already past");
        h.insert(EXPIRES, HeaderValue::from_static("0"));
        assert_eq!(expires_in(&h, now), 0, "unreadable");
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
