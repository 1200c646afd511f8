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

/// Eight bytes, each of them `LO` times a byte value.
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The bytes of `x` (eight, little-endian) that are not printable ASCII (0x20 to 0x7E)
/// have their high bit set in the answer. Exact for the lowest one (a borrow only
/// carries upwards, from a byte already flagged), which is all the callers use.
fn unprintable(x: u64) -> u64 {
    let below_space = x.wrapping_sub(LO * 0x20) & !x;
    let del = x ^ (LO * 0x7f);
    let del = del.wrapping_sub(LO) & !del;
    (x | below_space | del) & HI
}

/// The bytes of `x` equal to `b` have their high bit set (exact for the lowest).
fn equal(x: u64, b: u8) -> u64 {
    let y = x ^ (LO * u64::from(b));
    y.wrapping_sub(LO) & !y & HI
}

/// Index of the first byte of `bytes[from..]` for which `flag` (of eight bytes) or
/// `one` (of one byte) says so, eight bytes at a time.
fn first(
    bytes: &[u8],
    from: usize,
    flag: impl Fn(u64) -> u64,
    one: impl Fn(u8) -> bool,
) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut words = rest.chunks_exact(8);
    let mut at = from;
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        let m = flag(x);
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|b| one(*b))
        .map(|i| at + i)
}

/// Index of the first byte of `bytes[from..]` that is not printable ASCII.
pub(crate) fn first_unprintable(bytes: &[u8], from: usize) -> Option<usize> {
    first(bytes, from, unprintable, |b| b.wrapping_sub(0x20) >= 0x5f)
}

/// Index of the first LF of `bytes[from..]`.
pub(crate) fn first_newline(bytes: &[u8], from: usize) -> Option<usize> {
    first(bytes, from, |x| equal(x, b'\n'), |b| b == b'\n')
}

/// Whether every byte of the line is printable ASCII (0x20 to 0x7E): then it has no
/// encoding problem, and [`encoding_fault`] need not look at it.
pub(crate) fn printable_ascii(seg: &[u8]) -> bool {
    first_unprintable(seg, 0).is_none()
}

/// Length of a rubric's code, `Sxx.Gyy.zz.nnn`.
pub(crate) const CODE_LEN: usize = 14;

/// Reads `Sxx.Gyy.zz.nnn,'value'` without copying: the code (ASCII) and the value's
/// bytes (ISO-8859-1). The value runs from the quote after the comma to the last quote
/// of the line, quotes inside kept as written.
pub(crate) fn split_rubric(seg: &[u8]) -> Result<(&[u8; CODE_LEN], &[u8]), &'static str> {
    // Most lines: `Sdd.Gdd.dd.ddd,'` and a final quote, checked sixteen bytes at once.
    if let Some((head, rest)) = seg.split_first_chunk::<16>()
        && rest.last() == Some(&b'\'')
        && rubric_head(u128::from_le_bytes(*head))
        && let Some((code, _)) = seg.split_first_chunk::<CODE_LEN>()
    {
        return Ok((code, &rest[..rest.len() - 1]));
    }
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
        && digit(1)
        && digit(2)
        && digit(5)
        && digit(6)
        && digit(8)
        && digit(9)
        && digit(11)
        && digit(12)
        && digit(13);
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

/// Whether sixteen bytes (little-endian) are `Sdd.Gdd.dd.ddd,'` (d a digit).
fn rubric_head(x: u128) -> bool {
    const SHAPE: &[u8; 16] = b"S00.G00.00.000,'";
    const DIGITS: [usize; 9] = [1, 2, 5, 6, 8, 9, 11, 12, 13];
    // Per byte: 0xFF where the byte is fixed, 0xF0 where it is a digit (high nibble 3).
    const MASK: u128 = {
        let mut m = u128::MAX;
        let mut i = 0;
        while i < DIGITS.len() {
            m &= !(0x0f << (8 * DIGITS[i]));
            i += 1;
        }
        m
    };
    const LOW: u128 = {
        let mut m = 0;
        let mut i = 0;
        while i < DIGITS.len() {
            m |= 0x0f << (8 * DIGITS[i]);
            i += 1;
        }
        m
    };
    let shape = u128::from_le_bytes(*SHAPE);
    // A digit's low nibble is at most 9: adding 6 never reaches 0x10 (no carry out of
    // the byte either, 0x0F + 6 < 0x100).
    x & MASK == shape & MASK && ((x & LOW) + (LOW / 0x0f * 6)) & (LOW << 4) == 0
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time searches give what a byte-by-byte one gives: every byte value
    /// at every place of a word and of the tail, alone and after another one.
    #[test]
    fn word_searches_agree_with_bytes() {
        let slow_unprintable = |s: &[u8], from: usize| {
            s[from..]
                .iter()
                .position(|b| !(0x20..=0x7e).contains(b))
                .map(|i| i + from)
        };
        let slow_newline =
            |s: &[u8], from: usize| s[from..].iter().position(|b| *b == b'\n').map(|i| i + from);
        for len in [0, 1, 7, 8, 9, 16, 21] {
            for at in 0..len {
                for b in 0..=255u8 {
                    for before in [b'A', 0x00, 0x1f, 0x7f, 0x80, 0xff, b'\n'] {
                        let mut s = vec![b'x'; len];
                        s[at] = b;
                        if at > 0 {
                            s[at - 1] = before;
                        }
                        for from in [0, at.min(3), at] {
                            assert_eq!(
                                first_unprintable(&s, from),
                                slow_unprintable(&s, from),
                                "{s:?} from {from}"
                            );
                            assert_eq!(
                                first_newline(&s, from),
                                slow_newline(&s, from),
                                "{s:?} from {from}"
                            );
                        }
                        assert_eq!(printable_ascii(&s), slow_unprintable(&s, 0).is_none());
                    }
                }
            }
        }
        assert_eq!(first_newline(b"abc", 3), None);
    }

    /// The sixteen-bytes check of a rubric's start agrees with the byte-by-byte one:
    /// every byte value at every place.
    #[test]
    fn rubric_head_agrees_with_bytes() {
        let slow = |h: &[u8; 16]| {
            h.iter().zip(b"S00.G00.00.000,'").all(|(b, s)| {
                if s.is_ascii_digit() {
                    b.is_ascii_digit()
                } else {
                    b == s
                }
            })
        };
        let good = *b"S21.G00.50.006,'";
        assert!(rubric_head(u128::from_le_bytes(good)));
        for at in 0..16 {
            for b in 0..=255u8 {
                let mut h = good;
                h[at] = b;
                assert_eq!(rubric_head(u128::from_le_bytes(h)), slow(&h), "{h:?}");
            }
        }
        assert_eq!(first_newline(b"abc", 4), None);
    }
}
