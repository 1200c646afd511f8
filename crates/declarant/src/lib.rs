//! A declarant's identity checked before anything is sent to Net-entreprises: the
//! sheet's advice "copy-paste, watch spaces, capitals and special characters" as code.
//!
//! - The SIRET is normalised: spaces of any kind (as when it is typed or printed in
//!   groups, "999 000 003 00015") are removed. It must then be 14 digits whose Luhn key is
//!   right, except for La Poste (SIREN 356000000), whose establishments' SIRETs are valid
//!   when the sum of their digits is a multiple of 5 (INSEE's known exception; the head
//!   office, 35600000000048, passes the Luhn key, so either rule is accepted there).
//! - In the nom, the prénom and the password: a leading or trailing space, a
//!   non-breaking or other unusual space, a zero-width or other invisible formatting
//!   character, a control character (tab, line break) are each named; so are an empty
//!   value and one longer than Net-entreprises accepts (nom 64, prénom 39, password 30
//!   characters).
//!
//! Each problem names its field with a stable code and a French sentence. A sentence
//! about the password never quotes it, nor tells its length or where a character is.
//!
//! The identity has one definition, in two states: [`TypedIdentity`], as a person typed
//! it (or as an agent received it), and [`Identity`], checked and fit to be sent
//! ([`TypedIdentity::validate`]). Both keep the password a [`SecretString`] and redact it
//! from `Debug`.
//!
//! Invariant: no tonic and no network here.

use secrecy::{ExposeSecret, SecretString};

/// Longest values Net-entreprises accepts, in characters.
pub const NOM_MAX: usize = 64;
pub const PRENOM_MAX: usize = 39;
pub const PASSWORD_MAX: usize = 30;
pub const SIRET_LEN: usize = 14;

/// SIREN of La Poste, whose SIRETs follow their own key rule.
pub const LA_POSTE_SIREN: &str = "356000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Siret,
    Nom,
    Prenom,
    Password,
}

impl Field {
    /// The name programs see (`InputProblem.field`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Siret => "siret",
            Self::Nom => "nom",
            Self::Prenom => "prenom",
            Self::Password => "password",
        }
    }

    /// The field in a French sentence, as its subject.
    fn label(self) -> &'static str {
        match self {
            Self::Siret => "Le SIRET",
            Self::Nom => "Le nom",
            Self::Prenom => "Le prénom",
            Self::Password => "Le mot de passe",
        }
    }

    fn max_len(self) -> usize {
        match self {
            Self::Siret => SIRET_LEN,
            Self::Nom => NOM_MAX,
            Self::Prenom => PRENOM_MAX,
            Self::Password => PASSWORD_MAX,
        }
    }

    fn is_secret(self) -> bool {
        self == Self::Password
    }
}

/// Stable codes of [`InputProblem`].
pub mod code {
    pub const EMPTY: &str = "empty";
    pub const LEADING_SPACE: &str = "leading_space";
    pub const TRAILING_SPACE: &str = "trailing_space";
    pub const NON_BREAKING_SPACE: &str = "non_breaking_space";
    pub const UNUSUAL_SPACE: &str = "unusual_space";
    pub const ZERO_WIDTH: &str = "zero_width";
    pub const CONTROL_CHARACTER: &str = "control_character";
    pub const TOO_LONG: &str = "too_long";
    pub const NOT_DIGITS: &str = "not_digits";
    pub const WRONG_LENGTH: &str = "wrong_length";
    pub const BAD_CHECK_DIGIT: &str = "bad_check_digit";
}

/// One thing wrong with what was typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub field: Field,
    /// One of [`code`].
    pub code: &'static str,
    /// French sentence; never quotes the password.
    pub message: String,
}

/// A Net-entreprises identity as a person typed it (or as an agent received it), not yet
/// checked: the orchestrator's form and API, the agents' requests.
#[derive(Clone)]
pub struct TypedIdentity {
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub password: SecretString,
}

impl std::fmt::Debug for TypedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedIdentity")
            .field("siret", &self.siret)
            .field("nom", &self.nom)
            .field("prenom", &self.prenom)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl TypedIdentity {
    /// The identity fit to be sent, or every problem found ([`validate`]).
    pub fn validate(&self) -> Result<Identity, Vec<InputProblem>> {
        validate(&self.siret, &self.nom, &self.prenom, &self.password)
    }
}

/// An identity fit to be sent: SIRET normalised, other fields exactly as typed.
#[derive(Clone)]
pub struct Identity {
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub password: SecretString,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("siret", &self.siret)
            .field("nom", &self.nom)
            .field("prenom", &self.prenom)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Checks every field and gives the identity to send, or every problem found.
pub fn validate(
    siret: &str,
    nom: &str,
    prenom: &str,
    password: &SecretString,
) -> Result<Identity, Vec<InputProblem>> {
    let mut problems = Vec::new();
    let siret = check_siret(siret, &mut problems);
    check_text(Field::Nom, nom, &mut problems);
    check_text(Field::Prenom, prenom, &mut problems);
    check_text(Field::Password, password.expose_secret(), &mut problems);
    match siret {
        Some(siret) if problems.is_empty() => Ok(Identity {
            siret,
            nom: nom.to_owned(),
            prenom: prenom.to_owned(),
            password: password.clone(),
        }),
        _ => Err(problems),
    }
}

/// An establishment's SIRET alone (the one an account deposits for), normalised and
/// checked as in [`validate`], or its problems.
pub fn siret(raw: &str) -> Result<String, Vec<InputProblem>> {
    let mut problems = Vec::new();
    check_siret(raw, &mut problems).ok_or(problems)
}

/// [`siret`] for a caller with one French sentence to give: its problems, joined.
pub fn siret_or_reason(raw: &str) -> Result<String, String> {
    siret(raw).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// An optional SIRET, as a filter (« only this establishment »): nothing typed (or only
/// spaces) is `None`; anything else must be a valid SIRET ([`siret_or_reason`]).
pub fn optional_siret(raw: &str) -> Result<Option<String>, String> {
    if normalize_siret(raw).is_empty() {
        return Ok(None);
    }
    siret_or_reason(raw).map(Some)
}

/// Spaces a SIRET may be typed or printed with, removed by normalisation.
fn is_siret_separator(c: char) -> bool {
    c.is_whitespace() && !c.is_control()
}

/// Removes spaces of any kind from a SIRET.
pub fn normalize_siret(raw: &str) -> String {
    raw.chars().filter(|c| !is_siret_separator(*c)).collect()
}

/// Is this 14-digit SIRET's key right (Luhn, or La Poste's rule)?
pub fn siret_key_is_valid(siret: &str) -> bool {
    if siret.len() != SIRET_LEN || !siret.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if luhn(siret) {
        return true;
    }
    siret.starts_with(LA_POSTE_SIREN)
        && siret
            .bytes()
            .map(|b| u32::from(b - b'0'))
            .sum::<u32>()
            .is_multiple_of(5)
}

/// The Luhn check of a string of ASCII digits.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn check_siret(raw: &str, problems: &mut Vec<InputProblem>) -> Option<String> {
    let field = Field::Siret;
    let siret = normalize_siret(raw);
    let before = problems.len();
    if siret.is_empty() {
        problems.push(problem(field, code::EMPTY, "Le SIRET est vide.".into()));
        return None;
    }
    invisible_characters(field, &siret, problems);
    let others: Vec<char> = siret
        .chars()
        .filter(|c| !c.is_ascii_digit() && !is_zero_width(*c) && !c.is_control())
        .collect();
    if !others.is_empty() {
        let mut shown: Vec<String> = Vec::new();
        for c in others {
            let s = format!("« {c} »");
            if !shown.contains(&s) {
                shown.push(s);
            }
        }
        problems.push(problem(
            field,
            code::NOT_DIGITS,
            format!(
                "Le SIRET ne doit contenir que des chiffres ; il contient {}.",
                join_fr(&shown)
            ),
        ));
    }
    if problems.len() > before {
        return None;
    }
    let digits = siret.len();
    if digits != SIRET_LEN {
        problems.push(problem(
            field,
            code::WRONG_LENGTH,
            format!("Le SIRET doit compter 14 chiffres ; « {siret} » en compte {digits}."),
        ));
        return None;
    }
    if !siret_key_is_valid(&siret) {
        problems.push(problem(
            field,
            code::BAD_CHECK_DIGIT,
            format!(
                "Le SIRET « {siret} » n'est pas valide : sa clé de contrôle ne correspond pas. \
                 Vérifiez chaque chiffre (une faute de frappe ou deux chiffres inversés sont probables)."
            ),
        ));
        return None;
    }
    Some(siret)
}

fn is_non_breaking_space(c: char) -> bool {
    matches!(c, '\u{00A0}' | '\u{202F}' | '\u{2007}')
}

/// Invisible characters that take no room: zero-width spaces and joiners, word joiner,
/// byte order mark, soft hyphen, direction marks and embeddings.
fn is_zero_width(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

fn check_text(field: Field, value: &str, problems: &mut Vec<InputProblem>) {
    let label = field.label();
    let visible =
        value.trim_matches(|c: char| c.is_whitespace() || is_zero_width(c) || c.is_control());
    if visible.is_empty() {
        let message = if value.is_empty() {
            format!("{label} est vide.")
        } else {
            format!("{label} ne contient que des espaces ou des caractères invisibles.")
        };
        problems.push(problem(field, code::EMPTY, message));
        return;
    }
    if value.starts_with(char::is_whitespace) {
        problems.push(problem(
            field,
            code::LEADING_SPACE,
            format!("{label} commence par une espace : retirez-la (un copier-coller en apporte souvent une, invisible)."),
        ));
    }
    if value.ends_with(char::is_whitespace) {
        problems.push(problem(
            field,
            code::TRAILING_SPACE,
            format!("{label} se termine par une espace : retirez-la (un copier-coller en apporte souvent une, invisible)."),
        ));
    }
    invisible_characters(field, value, problems);
    let length = value.chars().count();
    let max = field.max_len();
    if length > max {
        let message = if field.is_secret() {
            format!(
                "{label} dépasse {max} caractères, la longueur maximale acceptée par Net-entreprises."
            )
        } else {
            format!(
                "{label} compte {length} caractères ; Net-entreprises en accepte {max} au plus."
            )
        };
        problems.push(problem(field, code::TOO_LONG, message));
    }
}

/// Non-breaking and unusual spaces, zero-width and control characters anywhere in
/// `value`, one problem per kind, with positions unless the field is secret.
fn invisible_characters(field: Field, value: &str, problems: &mut Vec<InputProblem>) {
    let label = field.label();
    let mut nbsp = Vec::new();
    let mut unusual = Vec::new();
    let mut zero = Vec::new();
    let mut control = Vec::new();
    for (i, c) in value.chars().enumerate() {
        let position = i + 1;
        if is_non_breaking_space(c) {
            nbsp.push(position);
        } else if c.is_control() {
            control.push(position);
        } else if is_zero_width(c) {
            zero.push(position);
        } else if c.is_whitespace() && c != ' ' {
            unusual.push(position);
        }
    }
    let where_ = |positions: &[usize]| -> String {
        if field.is_secret() {
            String::new()
        } else {
            let list: Vec<String> = positions.iter().map(usize::to_string).collect();
            if list.len() == 1 {
                format!(" (en position {})", list[0])
            } else {
                format!(" (en positions {})", join_fr(&list))
            }
        }
    };
    if !nbsp.is_empty() {
        problems.push(problem(
            field,
            code::NON_BREAKING_SPACE,
            format!(
                "{label} contient une espace insécable{}, invisible à l'écran et souvent apportée par un copier-coller : \
                 remplacez-la par une espace ordinaire ou retirez-la.",
                where_(&nbsp)
            ),
        ));
    }
    if !unusual.is_empty() {
        problems.push(problem(
            field,
            code::UNUSUAL_SPACE,
            format!(
                "{label} contient une espace inhabituelle{} (espace fine ou large, venue d'un copier-coller) : \
                 remplacez-la par une espace ordinaire ou retirez-la.",
                where_(&unusual)
            ),
        ));
    }
    if !zero.is_empty() {
        problems.push(problem(
            field,
            code::ZERO_WIDTH,
            format!(
                "{label} contient un caractère invisible{} (espace de largeur nulle ou marque de mise en forme, \
                 souvent apporté par un copier-coller) : ressaisissez-le au clavier.",
                where_(&zero)
            ),
        ));
    }
    if !control.is_empty() {
        problems.push(problem(
            field,
            code::CONTROL_CHARACTER,
            format!(
                "{label} contient un caractère de contrôle{} (tabulation ou retour à la ligne) : retirez-le.",
                where_(&control)
            ),
        ));
    }
}

fn problem(field: Field, code: &'static str, message: String) -> InputProblem {
    InputProblem {
        field,
        code,
        message,
    }
}

/// "a", "a et b", "a, b et c".
fn join_fr(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} et {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIRET: &str = "99900000300015";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn problems(
        siret: &str,
        nom: &str,
        prenom: &str,
        password: &str,
    ) -> Vec<(Field, &'static str)> {
        match validate(siret, nom, prenom, &secret(password)) {
            Ok(_) => Vec::new(),
            Err(p) => p.into_iter().map(|p| (p.field, p.code)).collect(),
        }
    }

    #[test]
    fn the_simulator_identity_is_valid_as_typed() {
        let id = validate(SIRET, "declarant", "declarant", &secret("Refonte01")).unwrap();
        assert_eq!(id.siret, SIRET);
        assert_eq!(id.password.expose_secret(), "Refonte01");
    }

    #[test]
    fn a_siret_alone_is_normalised_or_refused_with_the_same_problems() {
        assert_eq!(siret("999 000 003\u{a0}00015").unwrap(), SIRET);
        assert_eq!(
            optional_siret(" 999 000 003 00015").unwrap(),
            Some(SIRET.into())
        );
        assert_eq!(optional_siret(" \u{a0} "), Ok(None));
        assert_eq!(
            siret_or_reason("9990000030001"),
            Err("Le SIRET doit compter 14 chiffres ; « 9990000030001 » en compte 13.".into())
        );
        for (typed, code) in [
            ("99900000300016", code::BAD_CHECK_DIGIT),
            ("9990000030001", code::WRONG_LENGTH),
            ("999-000-003-00015", code::NOT_DIGITS),
            ("", code::EMPTY),
        ] {
            let p = siret(typed).unwrap_err();
            assert_eq!(
                p.iter().map(|p| (p.field, p.code)).collect::<Vec<_>>(),
                [(Field::Siret, code)],
                "{typed}"
            );
            if !typed.is_empty() {
                assert_eq!(
                    optional_siret(typed),
                    Err(siret_or_reason(typed).unwrap_err())
                );
            }
            // The same as within a whole identity.
            assert_eq!(
                problems(typed, "declarant", "declarant", "Refonte01"),
                [(Field::Siret, code)],
                "{typed}"
            );
        }
    }

    #[test]
    fn a_siret_typed_in_groups_with_any_kind_of_space_is_normalised() {
        for typed in [
            "999 000 003 00015",
            " 99900000300015 ",
            "999\u{a0}000\u{202f}003\u{2009}00015",
        ] {
            let id = validate(typed, "declarant", "declarant", &secret("Refonte01")).unwrap();
            assert_eq!(id.siret, SIRET, "{typed:?}");
        }
    }

    #[test]
    fn a_siret_with_a_wrong_key_is_refused_and_named() {
        let p = validate("99900000300016", "n", "p", &secret("x")).unwrap_err();
        assert_eq!(
            (p[0].field, p[0].code),
            (Field::Siret, code::BAD_CHECK_DIGIT)
        );
        assert!(p[0].message.contains("99900000300016"), "{}", p[0].message);
    }

    #[test]
    fn a_siret_of_the_wrong_length_or_with_letters_is_refused() {
        assert_eq!(
            problems("9990000030001", "n", "p", "x"),
            vec![(Field::Siret, code::WRONG_LENGTH)]
        );
        assert_eq!(
            problems("999000003000150", "n", "p", "x"),
            vec![(Field::Siret, code::WRONG_LENGTH)]
        );
        assert_eq!(
            problems("9990000030001O", "n", "p", "x"),
            vec![(Field::Siret, code::NOT_DIGITS)]
        );
        assert_eq!(
            problems("999.000.003.00015", "n", "p", "x"),
            vec![(Field::Siret, code::NOT_DIGITS)]
        );
        assert_eq!(
            problems("", "n", "p", "x"),
            vec![(Field::Siret, code::EMPTY)]
        );
        assert_eq!(
            problems("   ", "n", "p", "x"),
            vec![(Field::Siret, code::EMPTY)]
        );
    }

    #[test]
    fn invisible_characters_in_a_siret_are_named_not_removed() {
        assert_eq!(
            problems("9990000030\u{200b}0015", "n", "p", "x"),
            vec![(Field::Siret, code::ZERO_WIDTH)]
        );
        assert_eq!(
            problems("99900000300015\t", "n", "p", "x"),
            vec![(Field::Siret, code::CONTROL_CHARACTER)]
        );
    }

    #[test]
    fn the_luhn_key_is_computed_as_insee_does() {
        for valid in [
            "99900000300015",
            "73282932000074",
            "78214563500010",
            "44187654700015",
        ] {
            assert!(siret_key_is_valid(valid), "{valid}");
        }
        for invalid in ["99900000300014", "73282932000075", "12345678901234"] {
            assert!(!siret_key_is_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn a_la_poste_siret_is_valid_when_its_digit_sum_is_a_multiple_of_five() {
        // Fails the Luhn key, digit sum 35.
        assert!(!luhn("35600000039009"));
        assert!(siret_key_is_valid("35600000039009"));
        assert!(validate("35600000039009", "n", "p", &secret("x")).is_ok());
        // The head office passes the Luhn key.
        assert!(siret_key_is_valid("35600000000048"));
        // Neither rule: digit sum 36, Luhn wrong.
        assert!(!siret_key_is_valid("35600000039010"));
        // The exception belongs to La Poste alone.
        // Digit sum 30, Luhn wrong, but not La Poste.
        assert!(!siret_key_is_valid("45600000039003"));
    }

    #[test]
    fn leading_and_trailing_spaces_are_named_for_each_field() {
        assert_eq!(
            problems(SIRET, " Dupont", "Marie ", " x "),
            vec![
                (Field::Nom, code::LEADING_SPACE),
                (Field::Prenom, code::TRAILING_SPACE),
                (Field::Password, code::LEADING_SPACE),
                (Field::Password, code::TRAILING_SPACE),
            ]
        );
    }

    #[test]
    fn non_breaking_spaces_are_named_with_their_position_except_in_the_password() {
        let p = validate(
            SIRET,
            "De\u{a0}La Fontaine",
            "Jean\u{202f}Pierre",
            &secret("a\u{a0}b"),
        )
        .unwrap_err();
        let codes: Vec<_> = p.iter().map(|p| (p.field, p.code)).collect();
        assert_eq!(
            codes,
            vec![
                (Field::Nom, code::NON_BREAKING_SPACE),
                (Field::Prenom, code::NON_BREAKING_SPACE),
                (Field::Password, code::NON_BREAKING_SPACE),
            ]
        );
        assert!(p[0].message.contains("en position 3"), "{}", p[0].message);
        assert!(!p[2].message.contains("position"), "{}", p[2].message);
    }

    #[test]
    fn a_leading_non_breaking_space_is_named_both_as_leading_and_as_non_breaking() {
        assert_eq!(
            problems(SIRET, "\u{a0}Dupont", "p", "x"),
            vec![
                (Field::Nom, code::LEADING_SPACE),
                (Field::Nom, code::NON_BREAKING_SPACE)
            ]
        );
    }

    #[test]
    fn zero_width_and_control_characters_are_named() {
        assert_eq!(
            problems(SIRET, "Du\u{200b}pont", "p", "x"),
            vec![(Field::Nom, code::ZERO_WIDTH)]
        );
        assert_eq!(
            problems(SIRET, "\u{feff}Dupont", "p", "x"),
            vec![(Field::Nom, code::ZERO_WIDTH)]
        );
        assert_eq!(
            problems(SIRET, "n", "Ma\u{ad}rie", "x"),
            vec![(Field::Prenom, code::ZERO_WIDTH)]
        );
        assert_eq!(
            problems(SIRET, "n", "p", "Refonte01\u{200d}"),
            vec![(Field::Password, code::ZERO_WIDTH)]
        );
        assert_eq!(
            problems(SIRET, "n", "p", "Refonte01\n"),
            vec![
                (Field::Password, code::TRAILING_SPACE),
                (Field::Password, code::CONTROL_CHARACTER)
            ]
        );
        assert_eq!(
            problems(SIRET, "Du\tpont", "p", "x"),
            vec![(Field::Nom, code::CONTROL_CHARACTER)]
        );
        assert_eq!(
            problems(SIRET, "Du\u{2003}pont", "p", "x"),
            vec![(Field::Nom, code::UNUSUAL_SPACE)]
        );
    }

    #[test]
    fn lengths_are_limited_in_characters() {
        let ok = problems(SIRET, &"é".repeat(64), &"ï".repeat(39), &"ù".repeat(30));
        assert!(ok.is_empty(), "{ok:?}");
        assert_eq!(
            problems(SIRET, &"é".repeat(65), &"ï".repeat(40), &"ù".repeat(31)),
            vec![
                (Field::Nom, code::TOO_LONG),
                (Field::Prenom, code::TOO_LONG),
                (Field::Password, code::TOO_LONG)
            ]
        );
    }

    #[test]
    fn empty_fields_are_named_once_each() {
        assert_eq!(
            problems("", "", " ", "\u{200b}"),
            vec![
                (Field::Siret, code::EMPTY),
                (Field::Nom, code::EMPTY),
                (Field::Prenom, code::EMPTY),
                (Field::Password, code::EMPTY)
            ]
        );
    }

    #[test]
    fn no_message_quotes_the_password_or_tells_its_length() {
        let password = format!(" Sécr\u{a0}et\u{200b}\t{} ", "z".repeat(40));
        let p = validate(SIRET, "n", "p", &secret(&password)).unwrap_err();
        assert!(p.iter().all(|p| p.field == Field::Password));
        assert!(p.len() >= 5, "{p:?}");
        let length = password.chars().count().to_string();
        for problem in &p {
            assert!(!problem.message.contains("Sécr"), "{}", problem.message);
            assert!(!problem.message.contains("zzz"), "{}", problem.message);
            assert!(!problem.message.contains(&length), "{}", problem.message);
            assert!(!problem.message.contains("position"), "{}", problem.message);
        }
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let typed = TypedIdentity {
            siret: SIRET.into(),
            nom: "n".into(),
            prenom: "p".into(),
            password: secret("Refonte01"),
        };
        assert!(!format!("{typed:?}").contains("Refonte01"));
        let id = typed.validate().unwrap();
        assert!(!format!("{id:?}").contains("Refonte01"));
    }

    #[test]
    fn a_typed_identity_is_checked_as_typed() {
        let typed = TypedIdentity {
            siret: "999 000 003 00015".into(),
            nom: "declarant".into(),
            prenom: "declarant ".into(),
            password: secret("Refonte01"),
        };
        let problems: Vec<_> = typed
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| (p.field, p.code))
            .collect();
        assert_eq!(problems, [(Field::Prenom, code::TRAILING_SPACE)]);
        let fixed = TypedIdentity {
            prenom: "declarant".into(),
            ..typed
        };
        let id = fixed.validate().unwrap();
        assert_eq!(
            (id.siret.as_str(), id.prenom.as_str()),
            (SIRET, "declarant")
        );
    }
}
