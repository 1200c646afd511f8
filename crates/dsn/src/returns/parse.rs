//! The reading itself: guards (size, DOCTYPE, encoding), roxmltree without DTD, then
//! each kind's elements.

use std::borrow::Cow;

use roxmltree::{Document, Node, ParsingOptions};

use super::{
    Accepted, Acknowledgement, Anomaly, CalendarDate, Category, Conformity, ConformityKind, Crm,
    CrmEmployee, DeclarationId, EmployeeRef, FutureRate, Kind, PersonId, Rate, RateIdentifier,
    Rejected, RejectionAnomaly, ReturnDocument, ReturnError, ReturnStatus,
};
use crate::Month;

/// Longest NIR or NTT taken (a NIR is 13 characters, 15 with its key; an NTT up to 40).
const MAX_PERSON_ID: usize = 40;

/// Whether `bytes` hold `<!DOCTYPE` (any case) anywhere. Refused even when empty
/// (`<!DOCTYPE r>`, which roxmltree alone would let through) or inside a comment: a
/// Net-entreprises return never has one.
pub fn has_doctype(bytes: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"<!doctype";
    bytes
        .windows(NEEDLE.len())
        .any(|w| w[0] == b'<' && w.eq_ignore_ascii_case(NEEDLE))
}

/// The encoding the XML declaration names, lowercased, if any.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(b"<?xml") {
        return None;
    }
    let end = bytes.iter().take(512).position(|&b| b == b'>')?;
    let decl = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let rest = &decl[decl.find("encoding")? + "encoding".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].trim().to_owned())
}

fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ReturnError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match declared_encoding(bytes).as_deref() {
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1") => {
            Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
        }
        None | Some("utf-8" | "utf8") => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| ReturnError::Encoding),
        Some(_) => Err(ReturnError::Encoding),
    }
}

fn xml_error(e: &roxmltree::Error) -> ReturnError {
    use roxmltree::Error as E;
    let pos = e.pos();
    match e {
        E::DtdDetected => ReturnError::Doctype,
        E::UnknownEntityReference(..)
        | E::MalformedEntityReference(_)
        | E::EntityReferenceLoop(_)
        | E::UnexpectedEntityCloseTag(_) => ReturnError::Entity { row: pos.row },
        _ => ReturnError::Malformed {
            row: pos.row,
            col: pos.col,
        },
    }
}

pub(super) fn read(
    bytes: &[u8],
    max_bytes: usize,
    expected: Option<Kind>,
) -> Result<ReturnDocument, ReturnError> {
    if bytes.len() > max_bytes {
        return Err(ReturnError::TooLarge {
            size: bytes.len(),
            max: max_bytes,
        });
    }
    if has_doctype(bytes) {
        return Err(ReturnError::Doctype);
    }
    let text = decode(bytes)?;
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(&text, options).map_err(|e| xml_error(&e))?;
    let root = doc.root_element();
    if root.tag_name().name() != "rapport" {
        return Err(ReturnError::NotAReport);
    }
    let (kind, conformity_kind) = kind_of(root.attribute("type").unwrap_or_default())?;
    if let Some(expected) = expected
        && expected != kind
    {
        return Err(ReturnError::WrongKind {
            expected,
            found: kind,
        });
    }
    Ok(match kind {
        Kind::Acknowledgement => ReturnDocument::Acknowledgement(acknowledgement(root)?),
        Kind::Conformity => ReturnDocument::Conformity(conformity(
            root,
            conformity_kind.unwrap_or(ConformityKind::AnomalyList),
        )?),
        Kind::Crm => ReturnDocument::Crm(crm(root)?),
    })
}

fn kind_of(type_: &str) -> Result<(Kind, Option<ConformityKind>), ReturnError> {
    let t = type_.trim().to_lowercase();
    if t == "aee" || t == "are" {
        Ok((Kind::Acknowledgement, None))
    } else if t.starts_with("certificat") {
        Ok((Kind::Conformity, Some(ConformityKind::Certificate)))
    } else if t.starts_with("bilan") {
        Ok((Kind::Conformity, Some(ConformityKind::AnomalyList)))
    } else if t.starts_with("crm") {
        Ok((Kind::Crm, None))
    } else {
        Err(ReturnError::UnknownType)
    }
}

// ---- Helpers ----

fn is(node: &Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| is(n, name))
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| is(n, name))
}

/// The element's text, trimmed (all its text, entities resolved).
fn text(node: Node<'_, '_>) -> String {
    let mut out = String::new();
    for t in node.descendants().filter(|n| n.is_text()) {
        out.push_str(t.text().unwrap_or_default());
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_owned()
    }
}

/// The text of the child `name`, `None` when absent or empty.
fn child_text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(text).filter(|s| !s.is_empty())
}

/// The text of the first descendant `name`, `None` when absent or empty.
fn descendant_text(node: Node<'_, '_>, name: &str) -> Option<String> {
    node.descendants()
        .find(|n| is(n, name))
        .map(text)
        .filter(|s| !s.is_empty())
}

/// An idflux as the services give it: letters and digits, 1 to 50 (23 for a deposit).
fn is_idflux(s: &str) -> bool {
    (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `envoi/envoi_identification/idflux` (or any `idflux`), checked.
fn idflux(root: Node<'_, '_>) -> Result<String, ReturnError> {
    let id = child(root, "envoi")
        .and_then(|e| child(e, "envoi_identification"))
        .and_then(|e| child_text(e, "idflux"))
        .or_else(|| descendant_text(root, "idflux"))
        .ok_or(ReturnError::Missing { field: "idflux" })?;
    if is_idflux(&id) {
        Ok(id)
    } else {
        Err(ReturnError::Invalid {
            field: "idflux",
            employee: None,
        })
    }
}

/// `declaration_bilan/etat` of the declaration, else `envoi_bilan/envoi_etat`.
fn status(
    root: Node<'_, '_>,
    declaration: Option<Node<'_, '_>>,
) -> Result<ReturnStatus, ReturnError> {
    let text = declaration
        .and_then(|d| child(d, "declaration_bilan"))
        .and_then(|b| child_text(b, "etat"))
        .or_else(|| {
            child(root, "envoi")
                .and_then(|e| child(e, "envoi_bilan"))
                .and_then(|b| child_text(b, "envoi_etat"))
        })
        .ok_or(ReturnError::Missing { field: "etat" })?;
    ReturnStatus::parse(&text).ok_or(ReturnError::Invalid {
        field: "etat",
        employee: None,
    })
}

/// The one `declaration` of the report (`None` when there is none).
fn declaration<'a, 'i>(root: Node<'a, 'i>) -> Result<Option<Node<'a, 'i>>, ReturnError> {
    let mut all = children(root, "declaration");
    let first = all.next();
    if all.next().is_some() {
        return Err(ReturnError::Invalid {
            field: "declaration",
            employee: None,
        });
    }
    Ok(first)
}

fn declaration_id(declaration: Option<Node<'_, '_>>) -> Result<DeclarationId, ReturnError> {
    let Some(ident) = declaration.and_then(|d| child(d, "declaration_identification")) else {
        return Ok(DeclarationId::default());
    };
    let invalid = |field| ReturnError::Invalid {
        field,
        employee: None,
    };
    let siren = child_text(ident, "SIREN");
    if siren.as_deref().is_some_and(|s| !digits(s, 9)) {
        return Err(invalid("SIREN"));
    }
    let nic = child_text(ident, "nic_affectation");
    if nic.as_deref().is_some_and(|s| !digits(s, 5)) {
        return Err(invalid("nic_affectation"));
    }
    let month = match child_text(ident, "mois") {
        None => None,
        Some(m) => Some(
            m.parse::<Month>()
                .ok()
                .or_else(|| Month::from_dsn(&m))
                .ok_or_else(|| invalid("mois"))?,
        ),
    };
    Ok(DeclarationId {
        siren,
        nic,
        month,
        kind: child_text(ident, "type"),
        business_id: child_text(ident, "identifiant_metier"),
    })
}

fn person_id(node: Node<'_, '_>, employee: Option<usize>) -> Result<Option<PersonId>, ReturnError> {
    let id = match (child_text(node, "NIR"), child_text(node, "NTT")) {
        (Some(nir), _) => PersonId::Nir(nir),
        (None, Some(ntt)) => PersonId::Ntt(ntt),
        (None, None) => return Ok(None),
    };
    let s = id.as_str();
    if s.chars().count() > MAX_PERSON_ID || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ReturnError::Invalid {
            field: if id.is_nir() { "NIR" } else { "NTT" },
            employee,
        });
    }
    Ok(Some(id))
}

/// A `declaration_anomalie` (or `envoi_anomalie` holding one `description`).
fn anomaly(node: Node<'_, '_>) -> Result<Anomaly, ReturnError> {
    let description = child(node, "description").unwrap_or(node);
    let code = child_text(description, "code").ok_or(ReturnError::Missing { field: "code" })?;
    let trigger = child(node, "valeurs").and_then(|v| child(v, "rubrique_declenchante"));
    let employee = match child(node, "environnement").and_then(|e| child(e, "salarie")) {
        Some(s) => Some(EmployeeRef {
            id: person_id(s, None)?,
            matricule: child_text(s, "matricule"),
        }),
        None => None,
    };
    Ok(Anomaly {
        code,
        category: Category::parse(&child_text(description, "categorie").unwrap_or_default()),
        message: child_text(description, "message").unwrap_or_default(),
        rubric: trigger.and_then(|t| child_text(t, "identifiant")),
        line: trigger
            .and_then(|t| child_text(t, "ligne"))
            .and_then(|l| l.parse().ok()),
        value: trigger.and_then(|t| child_text(t, "valeur")),
        employee,
    })
}

// ---- Each kind ----

fn acknowledgement(root: Node<'_, '_>) -> Result<Acknowledgement, ReturnError> {
    let id = descendant_text(root, "idflux");
    let etat = descendant_text(root, "envoi_etat").unwrap_or_default();
    if root.attribute("type").map(str::trim) == Some("AEE") {
        let idflux = id.ok_or(ReturnError::Missing { field: "idflux" })?;
        if !is_idflux(&idflux) {
            return Err(ReturnError::Invalid {
                field: "idflux",
                employee: None,
            });
        }
        if !etat.eq_ignore_ascii_case("OK") {
            return Err(ReturnError::Invalid {
                field: "envoi_etat",
                employee: None,
            });
        }
        return Ok(Acknowledgement::Accepted(Accepted {
            idflux,
            date_enregistrement: descendant_text(root, "date_enregistrement").unwrap_or_default(),
            heure_enregistrement: descendant_text(root, "heure_enregistrement").unwrap_or_default(),
            essai_reel: descendant_text(root, "essai_reel").unwrap_or_default(),
        }));
    }
    let anomalies = root
        .descendants()
        .filter(|n| is(n, "envoi_anomalie"))
        .flat_map(|a| a.descendants().filter(|n| is(n, "description")))
        .map(|d| RejectionAnomaly {
            code: child_text(d, "code").unwrap_or_default(),
            message: child_text(d, "message").unwrap_or_default(),
        })
        .collect();
    Ok(Acknowledgement::Rejected(Rejected {
        idflux: id.filter(|i| is_idflux(i)),
        anomalies,
    }))
}

fn conformity(root: Node<'_, '_>, kind: ConformityKind) -> Result<Conformity, ReturnError> {
    let idflux = idflux(root)?;
    let declaration = declaration(root)?;
    let status = status(root, declaration)?;
    let mut anomalies = Vec::new();
    if let Some(envoi) = child(root, "envoi") {
        for a in children(envoi, "envoi_anomalie") {
            anomalies.push(anomaly(a)?);
        }
    }
    if let Some(d) = declaration {
        for a in children(d, "declaration_anomalie") {
            anomalies.push(anomaly(a)?);
        }
    }
    Ok(Conformity {
        idflux,
        kind,
        status,
        declaration: declaration_id(declaration)?,
        anomalies,
    })
}

fn crm(root: Node<'_, '_>) -> Result<Crm, ReturnError> {
    let identifier = match root.attribute("identifiant") {
        None => {
            return Err(ReturnError::Missing {
                field: "identifiant",
            });
        }
        Some(i) => RateIdentifier::parse(i).ok_or(ReturnError::Invalid {
            field: "identifiant",
            employee: None,
        })?,
    };
    let idflux = idflux(root)?;
    let declaration = declaration(root)?.ok_or(ReturnError::Missing {
        field: "declaration",
    })?;
    let status = status(root, Some(declaration))?;
    let id = declaration_id(Some(declaration))?;
    if id.siren.is_none() {
        return Err(ReturnError::Missing { field: "SIREN" });
    }
    if id.nic.is_none() {
        return Err(ReturnError::Missing {
            field: "nic_affectation",
        });
    }
    let announced_employees = child(declaration, "declaration_bilan")
        .and_then(|b| child(b, "declaration_contenu"))
        .and_then(|c| child_text(c, "salaries"))
        .map(|n| {
            n.parse::<u32>().map_err(|_| ReturnError::Invalid {
                field: "salaries",
                employee: None,
            })
        })
        .transpose()?;
    let mut employees = Vec::new();
    for s in declaration
        .descendants()
        .filter(|n| is(n, "salarie") && n.parent_element().is_none_or(|p| !is(&p, "environnement")))
    {
        employees.push(crm_employee(s, employees.len() + 1)?);
    }
    let mut anomalies = Vec::new();
    for a in children(declaration, "declaration_anomalie") {
        anomalies.push(anomaly(a)?);
    }
    Ok(Crm {
        identifier,
        idflux,
        status,
        declaration: id,
        announced_employees,
        employees,
        anomalies,
        notice: root
            .attribute("message")
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
    })
}

fn crm_employee(node: Node<'_, '_>, position: usize) -> Result<CrmEmployee, ReturnError> {
    let invalid = |field| ReturnError::Invalid {
        field,
        employee: Some(position),
    };
    let id = person_id(node, Some(position))?.ok_or_else(|| invalid("NIR ou NTT"))?;
    let rate = match child_text(node, "taux_imposition_PAS") {
        None => None,
        Some(t) => Some(Rate::parse(&t).ok_or_else(|| invalid("taux_imposition_PAS"))?),
    };
    let future = match child(node, "future_imposition_PAS") {
        None => None,
        Some(f) => match (child_text(f, "taux"), child_text(f, "date_effet")) {
            (None, None) => None,
            (Some(t), Some(d)) => Some(FutureRate {
                rate: Rate::parse(&t).ok_or_else(|| invalid("future_imposition_PAS/taux"))?,
                from: CalendarDate::parse(&d)
                    .ok_or_else(|| invalid("future_imposition_PAS/date_effet"))?,
            }),
            _ => return Err(invalid("future_imposition_PAS")),
        },
    };
    Ok(CrmEmployee {
        id,
        matricule: child_text(node, "matricule"),
        rate,
        future,
    })
}
