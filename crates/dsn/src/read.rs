//! One line of a file (its line end already removed): the ISO-8859-1 check, and the
//! `Sxx.Gyy.zz.nnn,'value'` syntax. The value runs from the quote after the comma to the
//! last quote of the line; quotes inside are kept as written.

use crate::{Problem, ProblemKind};

/// What is wrong with a line's encoding, found without making a sentence.
#[derive(Clone, Copy)]
pub(crate) enum Fault {
    /// UTF-8 text with multi-byte sequences.
    Utf8,
    /// A control character: its column (from 0) and byte.
    Control(usize, u8),
}

/// The encoding fault of one line, if any: UTF-8 text, or else a control character.
pub(crate) fn encoding_fault(seg: &[u8]) -> Option<Fault> {
    let high = seg.iter().any(|b| *b >= 0x80);
    if high && std::str::from_utf8(seg).is_ok() {
        return Some(Fault::Utf8);
    }
    let col = seg.iter().position(|b| is_control(*b))?;
    Some(Fault::Control(col, seg[col]))
}

/// The problem of line `line` for `fault`.
pub(crate) fn encoding_problem(line: usize, fault: Fault) -> Problem {
    let (col, b) = match fault {
        Fault::Utf8 => {
            return Problem::new(
                Some(line),
                ProblemKind::NotLatin1,
                "caractères accentués encodés en UTF-8 : le fichier doit être en ISO-8859-1 \
                 (Latin-1), sinon ils arriveraient déformés ; réenregistrez-le dans cet encodage",
            );
        }
        Fault::Control(col, b) => (col, b),
    };
    let what = match b {
        b'\r' => "un retour chariot isolé".to_owned(),
        b'\t' => "une tabulation".to_owned(),
        0x80..=0x9f => format!(
            "l'octet 0x{b:02X}, qui n'est pas un caractère ISO-8859-1 (sans doute un \
             caractère Windows-1252 comme €, ’ ou œ)"
        ),
        _ => format!("le caractère de contrôle 0x{b:02X}"),
    };
    Problem::new(
        Some(line),
        ProblemKind::ControlCharacter,
        format!(
            "{what} en colonne {} : seuls les caractères imprimables ISO-8859-1 sont admis",
            col + 1
        ),
    )
}

/// Control characters of ISO-8859-1 (C0, DEL, C1). The line end is already removed.
fn is_control(b: u8) -> bool {
    b < 0x20 || (0x7f..=0x9f).contains(&b)
}

/// Whether every byte of the line is printable ASCII (0x20 to 0x7E): then it has no
/// encoding problem, and [`encoding_problem`] need not look at it. No early exit inside
/// a block of 16 bytes, so that the compiler makes it a few vector instructions.
pub(crate) fn printable_ascii(seg: &[u8]) -> bool {
    let mut blocks = seg.chunks_exact(16);
    for block in &mut blocks {
        let mut other = false;
        for b in block {
            other |= b.wrapping_sub(0x20) >= 0x5f;
        }
        if other {
            return false;
        }
    }
    blocks
        .remainder()
        .iter()
        .all(|b| b.wrapping_sub(0x20) < 0x5f)
}

/// Length of a rubric's code, `Sxx.Gyy.zz.nnn`.
pub(crate) const CODE_LEN: usize = 14;

/// Reads `Sxx.Gyy.zz.nnn,'value'` without copying: the code (ASCII) and the value's
/// bytes (ISO-8859-1). The value runs from the quote after the comma to the last quote
/// of the line, quotes inside kept as written.
pub(crate) fn split_rubric(seg: &[u8]) -> Result<(&[u8; CODE_LEN], &[u8]), &'static str> {
    if seg.is_empty() {
        return Err("ligne vide");
    }
    let Some((code, rest)) = seg.split_first_chunk::<CODE_LEN>() else {
        return Err("code de rubrique absent ou mal formé");
    };
    let digit = |i: usize| code[i].is_ascii_digit();
    let shaped = code[0] == b'S'
        && code[3] == b'.'
        && code[4] == b'G'
        && code[7] == b'.'
        && code[10] == b'.'
        && [1, 2, 5, 6, 8, 9, 11, 12, 13].into_iter().all(digit);
    if !shaped {
        return Err("code de rubrique absent ou mal formé");
    }
    let Some(rest) = rest.strip_prefix(b",") else {
        return Err("virgule attendue après le code de rubrique");
    };
    let Some(rest) = rest.strip_prefix(b"'") else {
        return Err("apostrophe attendue au début de la valeur");
    };
    let Some(value) = rest.strip_suffix(b"'") else {
        return Err("apostrophe attendue à la fin de la ligne, après la valeur");
    };
    Ok((code, value))
}

/// ISO-8859-1 to Unicode: each byte is the code point of the same value.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // The same characters, one byte each: no decoding needed.
        return String::from_utf8(bytes.to_vec()).unwrap_or_default();
    }
    bytes.iter().map(|b| char::from(*b)).collect()
}

/// Unicode to ISO-8859-1; `None` if a character is beyond U+00FF.
pub(crate) fn to_latin1(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}
