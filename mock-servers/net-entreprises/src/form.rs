//! The body of an authentication request and the service's form checks.
//!
//! The real service wants, without XML declaration, exactly
//! `<identifiants><siret/><nom/><prenom/><motdepasse/><service/></identifiants>` in that
//! order, values XML-escaped. Any failure of the checks below is a 422 with an empty body.
//!
//! Choices where the public sources are silent (see the README):
//! - an XML declaration is tolerated, a DTD is refused (roxmltree refuses DTDs);
//! - whitespace between elements is tolerated, values are taken verbatim (never trimmed:
//!   a pasted leading space makes the credentials wrong, as on the real portal);
//! - the order of the five elements is checked unless `strict_order` is off;
//! - the length limits are the documented ones by default, and settings
//!   ([`FormRules`]), so that a test can make the service stricter than its client;
//! - an unknown or repeated element, or an element inside a value, fails the checks;
//! - lengths count characters (Unicode scalar values), not bytes;
//! - `siret` must be exactly 14 characters but need not be digits, and `service` at most
//!   2 characters: anything else is the authentication's business (a 401).
use serde::{Deserialize, Serialize};

/// The five values, as sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Identifiants {
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub motdepasse: String,
    pub service: String,
}

impl std::fmt::Debug for Identifiants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identifiants")
            .field("siret", &self.siret)
            .field("nom", &self.nom)
            .field("prenom", &self.prenom)
            .field("motdepasse", &"<redacted>")
            .field("service", &self.service)
            .finish()
    }
}

/// The elements, in the order the service expects them.
pub const ELEMENTS: [&str; 5] = ["siret", "nom", "prenom", "motdepasse", "service"];

/// Maximum length of each element, in characters (`siret` is exact).
pub const SIRET_LEN: usize = 14;
pub const NOM_MAX: usize = 64;
pub const PRENOM_MAX: usize = 39;
pub const MOTDEPASSE_MAX: usize = 30;
pub const SERVICE_MAX: usize = 2;

/// The checks that can be tuned (the mock's `form` settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormRules {
    /// Refuse elements out of the documented order.
    pub strict_order: bool,
    pub nom_max: usize,
    pub prenom_max: usize,
    pub motdepasse_max: usize,
}

impl Default for FormRules {
    fn default() -> Self {
        Self {
            strict_order: true,
            nom_max: NOM_MAX,
            prenom_max: PRENOM_MAX,
            motdepasse_max: MOTDEPASSE_MAX,
        }
    }
}

/// Why a body fails the form checks (English, for the mock's log only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    NotUtf8,
    NotXml(String),
    WrongRoot(String),
    UnknownElement(String),
    Repeated(&'static str),
    Missing(&'static str),
    OutOfOrder,
    NotText(&'static str),
    Length { field: &'static str, chars: usize },
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("body is not UTF-8"),
            Self::NotXml(e) => write!(f, "body is not well-formed XML: {e}"),
            Self::WrongRoot(name) => write!(f, "root element is <{name}>, not <identifiants>"),
            Self::UnknownElement(name) => write!(f, "unknown element <{name}>"),
            Self::Repeated(name) => write!(f, "element <{name}> appears twice"),
            Self::Missing(name) => write!(f, "element <{name}> is missing"),
            Self::OutOfOrder => {
                f.write_str("elements are not in the order siret, nom, prenom, motdepasse, service")
            }
            Self::NotText(name) => write!(f, "element <{name}> holds something else than text"),
            Self::Length { field, chars } => {
                write!(f, "element <{field}> has a length of {chars} characters")
            }
        }
    }
}

/// Parses and checks a body.
pub fn parse(body: &[u8], rules: &FormRules) -> Result<Identifiants, FormError> {
    let text = std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
    let doc = roxmltree::Document::parse(text).map_err(|e| FormError::NotXml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "identifiants" {
        return Err(FormError::WrongRoot(root.tag_name().name().to_owned()));
    }
    let mut values: [Option<String>; 5] = Default::default();
    let mut seen = Vec::with_capacity(5);
    for child in root.children() {
        if child.is_text() {
            if child.text().is_some_and(|t| !t.trim().is_empty()) {
                return Err(FormError::NotText("identifiants"));
            }
            continue;
        }
        if !child.is_element() {
            // Comments and processing instructions carry nothing.
            continue;
        }
        let name = child.tag_name().name();
        let index = ELEMENTS
            .iter()
            .position(|e| *e == name)
            .ok_or_else(|| FormError::UnknownElement(name.to_owned()))?;
        if values[index].is_some() {
            return Err(FormError::Repeated(ELEMENTS[index]));
        }
        let mut value = String::new();
        for part in child.children() {
            if part.is_element() {
                return Err(FormError::NotText(ELEMENTS[index]));
            }
            if part.is_text()
                && let Some(t) = part.text()
            {
                value.push_str(t);
            }
        }
        values[index] = Some(value);
        seen.push(index);
    }
    if let Some(missing) = values.iter().position(Option::is_none) {
        return Err(FormError::Missing(ELEMENTS[missing]));
    }
    if rules.strict_order && seen.windows(2).any(|w| w[0] > w[1]) {
        return Err(FormError::OutOfOrder);
    }
    let [siret, nom, prenom, motdepasse, service] = values.map(Option::unwrap_or_default);
    // (field, value, shortest, longest), in characters.
    let checks = [
        ("siret", &siret, SIRET_LEN, SIRET_LEN),
        ("nom", &nom, 0, rules.nom_max),
        ("prenom", &prenom, 0, rules.prenom_max),
        ("motdepasse", &motdepasse, 0, rules.motdepasse_max),
        ("service", &service, 0, SERVICE_MAX),
    ];
    for (field, value, shortest, longest) in checks {
        let chars = value.chars().count();
        if chars < shortest || chars > longest {
            return Err(FormError::Length { field, chars });
        }
    }
    Ok(Identifiants {
        siret,
        nom,
        prenom,
        motdepasse,
        service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(siret: &str, nom: &str, prenom: &str, mdp: &str, service: &str) -> String {
        format!(
            "<identifiants><siret>{siret}</siret><nom>{nom}</nom><prenom>{prenom}</prenom><motdepasse>{mdp}</motdepasse><service>{service}</service></identifiants>"
        )
    }

    #[test]
    fn a_well_formed_body_gives_the_five_values_unescaped_and_untrimmed() {
        let b = body(
            "99900000300015",
            " D&amp;C",
            "J&lt;&gt;",
            "a&quot;&apos;b",
            "97",
        );
        let id = parse(b.as_bytes(), &FormRules::default()).unwrap();
        assert_eq!(id.siret, "99900000300015");
        assert_eq!(id.nom, " D&C");
        assert_eq!(id.prenom, "J<>");
        assert_eq!(id.motdepasse, "a\"'b");
        assert_eq!(id.service, "97");
    }

    #[test]
    fn a_declaration_and_whitespace_between_elements_are_tolerated() {
        let b = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            body("99900000300015", "n", "p", "m", "97").replace("><", ">\n  <")
        );
        assert!(parse(b.as_bytes(), &FormRules::default()).is_ok());
    }

    #[test]
    fn each_form_check_fails_as_expected() {
        let ok = body("99900000300015", "n", "p", "m", "97");
        let cases: Vec<(String, FormError)> = vec![
            (
                ok.replace("<service>97</service>", ""),
                FormError::Missing("service"),
            ),
            (
                ok.replace("99900000300015", "9990000030001"),
                FormError::Length {
                    field: "siret",
                    chars: 13,
                },
            ),
            (
                ok.replace(">n<", &format!(">{}<", "é".repeat(65))),
                FormError::Length {
                    field: "nom",
                    chars: 65,
                },
            ),
            (
                ok.replace(">p<", &format!(">{}<", "p".repeat(40))),
                FormError::Length {
                    field: "prenom",
                    chars: 40,
                },
            ),
            (
                ok.replace(">m<", &format!(">{}<", "m".repeat(31))),
                FormError::Length {
                    field: "motdepasse",
                    chars: 31,
                },
            ),
            (
                ok.replace(">97<", ">097<"),
                FormError::Length {
                    field: "service",
                    chars: 3,
                },
            ),
            (
                ok.replace("identifiants>", "ident>"),
                FormError::WrongRoot("ident".into()),
            ),
            (
                ok.replace("<service>", "<x/><service>"),
                FormError::UnknownElement("x".into()),
            ),
            (
                ok.replace("<nom>n</nom>", "<nom>n</nom><nom>n</nom>"),
                FormError::Repeated("nom"),
            ),
            (ok.replace(">n<", "><b>n</b><"), FormError::NotText("nom")),
        ];
        for (b, expected) in cases {
            assert_eq!(
                parse(b.as_bytes(), &FormRules::default()).unwrap_err(),
                expected,
                "{b}"
            );
        }
        assert!(matches!(
            parse(b"<identifiants>", &FormRules::default()),
            Err(FormError::NotXml(_))
        ));
        assert_eq!(
            parse(&[0xff, 0xfe], &FormRules::default()).unwrap_err(),
            FormError::NotUtf8
        );
    }

    #[test]
    fn the_order_is_checked_only_when_strict() {
        let swapped = "<identifiants><nom>n</nom><siret>99900000300015</siret><prenom>p</prenom><motdepasse>m</motdepasse><service>97</service></identifiants>";
        assert_eq!(
            parse(swapped.as_bytes(), &FormRules::default()).unwrap_err(),
            FormError::OutOfOrder
        );
        assert!(
            parse(
                swapped.as_bytes(),
                &FormRules {
                    strict_order: false,
                    ..FormRules::default()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn a_dtd_is_refused() {
        let b = format!(
            "<!DOCTYPE identifiants [<!ENTITY x \"y\">]>{}",
            body("99900000300015", "&x;", "p", "m", "97")
        );
        assert!(matches!(
            parse(b.as_bytes(), &FormRules::default()),
            Err(FormError::NotXml(_))
        ));
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let id = parse(
            body("99900000300015", "n", "p", "Refonte01", "97").as_bytes(),
            &FormRules::default(),
        )
        .unwrap();
        assert!(!format!("{id:?}").contains("Refonte01"));
    }
}
