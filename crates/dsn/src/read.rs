//! One line of a file (its line end already removed): the ISO-8859-1 check, and the
//! `Sxx.Gyy.zz.nnn,'value'` syntax. The value runs from the quote after the comma to the
//! last quote of the line; quotes inside are kept as written.

use crate::{Problem, ProblemKind};

/// The encoding problem of one line, if any: UTF-8 text, or else a control character.
pub(crate) fn encoding_problem(line: usize, seg: &[u8]) -> Option<Problem> {
    let high = seg.iter().any(|b| *b >= 0x80);
    if high && std::str::from_utf8(seg).is_ok() {
        return Some(Problem::new(
            Some(line),
            ProblemKind::NotLatin1,
            "caractères accentués encodés en UTF-8 : le fichier doit être en ISO-8859-1 \
             (Latin-1), sinon ils arriveraient déformés ; réenregistrez-le dans cet encodage",
        ));
    }
    let col = seg.iter().position(|b| is_control(*b))?;
    let b = seg[col];
    let what = match b {
        b'\r' => "un retour chariot isolé".to_owned(),
        b'\t' => "une tabulation".to_owned(),
        0x80..=0x9f => format!(
            "l'octet 0x{b:02X}, qui n'est pas un caractère ISO-8859-1 (sans doute un \
             caractère Windows-1252 comme €, ’ ou œ)"
        ),
        _ => format!("le caractère de contrôle 0x{b:02X}"),
    };
    Some(Problem::new(
        Some(line),
        ProblemKind::ControlCharacter,
        format!(
            "{what} en colonne {} : seuls les caractères imprimables ISO-8859-1 sont admis",
            col + 1
        ),
    ))
}

/// Control characters of ISO-8859-1 (C0, DEL, C1). The line end is already removed.
fn is_control(b: u8) -> bool {
    b < 0x20 || (0x7f..=0x9f).contains(&b)
}

/// Reads `Sxx.Gyy.zz.nnn,'value'`: the value runs from the quote after the comma to the
/// last quote of the line, quotes inside kept as written.
pub(crate) fn rubric(seg: &[u8]) -> Result<(String, String), &'static str> {
    if seg.is_empty() {
        return Err("ligne vide");
    }
    let shape = b"S00.G00.00.000";
    if seg.len() < shape.len()
        || !seg.iter().zip(shape).all(|(b, s)| {
            if s.is_ascii_digit() {
                b.is_ascii_digit()
            } else {
                b == s
            }
        })
    {
        return Err("code de rubrique absent ou mal formé");
    }
    let rest = &seg[shape.len()..];
    let Some(rest) = rest.strip_prefix(b",") else {
        return Err("virgule attendue après le code de rubrique");
    };
    let Some(rest) = rest.strip_prefix(b"'") else {
        return Err("apostrophe attendue au début de la valeur");
    };
    let Some(value) = rest.strip_suffix(b"'") else {
        return Err("apostrophe attendue à la fin de la ligne, après la valeur");
    };
    let code = String::from_utf8_lossy(&seg[..shape.len()]).into_owned();
    Ok((code, latin1(value)))
}

/// ISO-8859-1 to Unicode: each byte is the code point of the same value.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

/// Unicode to ISO-8859-1; `None` if a character is beyond U+00FF.
pub(crate) fn to_latin1(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}
