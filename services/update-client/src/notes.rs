//! Release notes as plain text. Notes are shown only when signed metadata covers them
//! (the caller's job); here they are made safe to print: valid UTF-8, line ends made
//! `\n`, control characters (terminal escapes included) removed, and anything that looks
//! like markup or a script (`<tag`, `</`, `<!`, `<?`, `javascript:`) refused outright
//! rather than "cleaned", since a release note has no reason to carry any.

/// The longest notes accepted, in bytes.
pub const MAX_NOTES: u64 = 256 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum NotesProblem {
    NotUtf8,
    ActiveContent,
}

pub fn to_plain_text(bytes: &[u8]) -> Result<String, NotesProblem> {
    let text = std::str::from_utf8(bytes).map_err(|_| NotesProblem::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if has_active_content(text) {
        return Err(NotesProblem::ActiveContent);
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    Ok(text
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect())
}

fn has_active_content(text: &str) -> bool {
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'<'
            && let Some(next) = bytes.get(i + 1)
            && (next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'?'))
        {
            return true;
        }
    }
    let lower = text.to_lowercase();
    ["javascript:", "vbscript:", "data:text/html"]
        .iter()
        .any(|p| lower.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_french_text_passes_unchanged() {
        let t = "Lisez-moi — V.3.00.72\r\n» Sécurité : « https:// »\nmoins de 50 salariés (< 50)\n";
        assert_eq!(
            to_plain_text(t.as_bytes()).unwrap(),
            "Lisez-moi — V.3.00.72\n» Sécurité : « https:// »\nmoins de 50 salariés (< 50)\n"
        );
    }

    #[test]
    fn markup_and_scripts_are_refused() {
        for t in [
            "<script>alert(1)</script>",
            "texte <img src=x onerror=alert(1)>",
            "<!-- commentaire -->",
            "voir JavaScript:alert(1)",
        ] {
            assert_eq!(
                to_plain_text(t.as_bytes()),
                Err(NotesProblem::ActiveContent),
                "{t}"
            );
        }
    }

    #[test]
    fn terminal_escapes_are_removed() {
        assert_eq!(
            to_plain_text("a\u{1b}[31mrouge\u{7}".as_bytes()).unwrap(),
            "a[31mrouge"
        );
        assert_eq!(to_plain_text(&[0xff, 0xfe]), Err(NotesProblem::NotUtf8));
    }
}
