//! The reading itself: guards (size, DOCTYPE, encoding), then one pass of a pull parser
//! (quick-xml) over the document, without DTD, turning each kind's elements into values
//! as they come.
//!
//! No tree of the whole document is built: the memory beyond the input and the values
//! read is bounded by the largest element kept for reading (a `salarie` of a CRM, an
//! anomaly, `declaration_identification`), whatever the number of employees. Those few
//! elements are gathered into a small tree of their own ([`Tree`]) and read with the same
//! rules as before: an element's text is all its text, trimmed; a child is the first of
//! its name; an empty element is absent. The other elements that matter (`idflux`,
//! `etat`, `salaries`…) only have their text kept.
//!
//! A document is well formed or refused whole: every event is checked up to the end
//! (characters allowed by XML, names, namespaces, references, one root) before any value
//! is judged, so a malformed document is refused as malformed even when it also holds a
//! bad value.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};
use std::ops::Range;

use quick_xml::NsReader;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{
    Accepted, Acknowledgement, Anomaly, CalendarDate, Category, Conformity, ConformityKind, Crm,
    CrmEmployee, DeclarationId, EmployeeRef, FutureRate, Kind, PersonId, Rate, RateIdentifier,
    Rejected, RejectionAnomaly, ReturnDocument, ReturnError, ReturnStatus,
};
use crate::Month;

/// Longest NIR or NTT taken (a NIR is 13 characters, 15 with its key; an NTT up to 40).
const MAX_PERSON_ID: usize = 40;

/// Whether `bytes` hold `<!DOCTYPE` (any case) anywhere. Refused even when empty
/// (`<!DOCTYPE r>`), after the XML declaration or a comment, inside a comment or deeper in
/// the document: a Net-entreprises return never has one.
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

/// How the document's bytes are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    /// Each byte is the character of that code point; given to the parser as UTF-8, a
    /// chunk at a time ([`Latin1`]).
    Latin1,
}

/// The document's encoding: UTF-8 (checked whole, no copy) unless the declaration says
/// ISO-8859-1; any other is refused.
fn encoding(bytes: &[u8]) -> Result<Encoding, ReturnError> {
    match declared_encoding(bytes).as_deref() {
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1") => Ok(Encoding::Latin1),
        None | Some("utf-8" | "utf8") => std::str::from_utf8(bytes)
            .map(|_| Encoding::Utf8)
            .map_err(|_| ReturnError::Encoding),
        Some(_) => Err(ReturnError::Encoding),
    }
}

/// ISO-8859-1 bytes read as UTF-8, [`Latin1::CHUNK`] bytes of the source at a time.
struct Latin1<'a> {
    source: &'a [u8],
    chunk: Vec<u8>,
    pos: usize,
}

impl<'a> Latin1<'a> {
    const CHUNK: usize = 8 << 10;

    fn new(source: &'a [u8]) -> Latin1<'a> {
        Latin1 {
            source,
            chunk: Vec::with_capacity(2 * Self::CHUNK),
            pos: 0,
        }
    }
}

impl Read for Latin1<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Latin1<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.chunk.len() && !self.source.is_empty() {
            let (next, rest) = self.source.split_at(self.source.len().min(Self::CHUNK));
            self.chunk.clear();
            self.pos = 0;
            let mut utf8 = [0; 2];
            for &b in next {
                self.chunk
                    .extend_from_slice(char::from(b).encode_utf8(&mut utf8).as_bytes());
            }
            self.source = rest;
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

/// The document as the parser sees it (after a byte order mark), for positions and
/// character checks: the parser counts UTF-8 bytes, which for ISO-8859-1 are not the
/// document's.
struct Source<'a> {
    body: &'a [u8],
    encoding: Encoding,
    /// Parser offset and document offset reached by [`Source::advance`].
    parsed: usize,
    offset: usize,
}

impl Source<'_> {
    /// The document offset of a parser offset (from the start: for errors only).
    fn offset_of(&self, parsed: usize) -> usize {
        match self.encoding {
            Encoding::Utf8 => parsed.min(self.body.len()),
            Encoding::Latin1 => {
                let mut utf8 = 0;
                self.body
                    .iter()
                    .position(|&b| {
                        utf8 += if b < 0x80 { 1 } else { 2 };
                        utf8 > parsed
                    })
                    .unwrap_or(self.body.len())
            }
        }
    }

    /// Moves to the parser offset `parsed` and checks the characters passed over: only
    /// those XML allows, else malformed at the first other one.
    fn advance(&mut self, parsed: usize) -> Result<(), ReturnError> {
        let from = self.offset;
        let to = match self.encoding {
            Encoding::Utf8 => parsed.min(self.body.len()),
            Encoding::Latin1 => {
                let mut to = self.offset;
                let mut at = self.parsed;
                while at < parsed && to < self.body.len() {
                    at += if self.body[to] < 0x80 { 1 } else { 2 };
                    to += 1;
                }
                to
            }
        };
        self.parsed = parsed;
        self.offset = to.max(from);
        let passed = &self.body[from..self.offset];
        let bad = match self.encoding {
            Encoding::Latin1 => passed.iter().position(|&b| !is_xml_byte(b)),
            // In valid UTF-8, the only characters XML refuses are the controls and
            // U+FFFE, U+FFFF (EF BF BE, EF BF BF).
            Encoding::Utf8 => passed.iter().enumerate().position(|(i, &b)| {
                !is_xml_byte(b)
                    || (b == 0xEF && matches!(passed.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])))
            }),
        };
        match bad {
            Some(i) => Err(self.malformed_at_offset(from + i)),
            None => Ok(()),
        }
    }

    /// Row and column (from 1, in characters) of a document offset.
    fn position(&self, offset: usize) -> (u32, u32) {
        let before = &self.body[..offset.min(self.body.len())];
        let row = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line = &before[before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)..];
        let col = 1 + match self.encoding {
            Encoding::Latin1 => line.len(),
            Encoding::Utf8 => line.iter().filter(|&&b| b & 0xC0 != 0x80).count(),
        };
        (
            u32::try_from(row).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    }

    fn malformed_at_offset(&self, offset: usize) -> ReturnError {
        let (row, col) = self.position(offset);
        ReturnError::Malformed { row, col }
    }

    /// Malformed at a parser offset.
    fn malformed(&self, parsed: usize) -> ReturnError {
        self.malformed_at_offset(self.offset_of(parsed))
    }

    /// A refused reference in a text at a parser offset: malformed when the text
    /// (up to the next markup) holds `]]>`, checked first as roxmltree did.
    fn text_reference(&self, parsed: usize) -> ReturnError {
        let from = self.offset_of(parsed);
        let rest = &self.body[from..];
        let text = &rest[..rest.iter().position(|&b| b == b'<').unwrap_or(rest.len())];
        match text.windows(3).position(|w| w == b"]]>") {
            Some(i) => self.malformed_at_offset(from + i),
            None => self.entity(parsed),
        }
    }

    /// A refused entity or reference at a parser offset.
    fn entity(&self, parsed: usize) -> ReturnError {
        ReturnError::Entity {
            row: self.position(self.offset_of(parsed)).0,
        }
    }
}

/// XML's `Char` for one byte of ASCII or ISO-8859-1.
fn is_xml_byte(b: u8) -> bool {
    b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r')
}

/// XML's `Char` (a `char` is never a surrogate).
fn is_xml_char(c: char) -> bool {
    match u32::from(c) {
        0..0x20 => matches!(c, '\t' | '\n' | '\r'),
        0xFFFE | 0xFFFF => false,
        _ => true,
    }
}

/// A character of an XML name (non-ASCII ones let through).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.') || !c.is_ascii()
}

/// A name as XML allows it.
fn is_xml_name(name: &str) -> bool {
    match name.chars().next() {
        None => false,
        Some(first) => {
            (first.is_ascii_alphabetic() || matches!(first, '_' | ':') || !first.is_ascii())
                && name.chars().all(is_name_char)
        }
    }
}

/// An element or attribute name: a name, with at most one `:` between a prefix and a
/// local name.
fn is_qualified_name(name: &str) -> bool {
    is_xml_name(name)
        && match name.split_once(':') {
            None => true,
            Some((prefix, local)) => {
                !prefix.is_empty() && is_xml_name(local) && !local.contains(':')
            }
        }
}

/// What is between `<?` and `?>`, as roxmltree took it: the XML declaration (`xml`
/// and a space) at the very start only, else a processing instruction whose target is a
/// name (what follows it is the instruction's).
fn is_instruction(content: &str, at_start: bool) -> bool {
    if content.starts_with("xml ") {
        return at_start && is_declaration(content);
    }
    let target = &content[..content
        .find(|c: char| !is_name_char(c))
        .unwrap_or(content.len())];
    is_xml_name(target)
}

/// The XML declaration's content (`xml version="1.0" encoding="…" standalone="…"`) as
/// roxmltree took it: `version` first, then optionally `encoding` and `standalone`.
fn is_declaration(content: &str) -> bool {
    fn spaces(s: &str) -> &str {
        s.trim_start_matches([' ', '\t', '\n', '\r'])
    }
    /// A `name = "value"`, and what follows it.
    fn attribute(s: &str) -> Option<&str> {
        let end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        let s = spaces(spaces(&s[end..]).strip_prefix('=')?);
        let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value = &s[1..];
        let end = value.find(quote)?;
        (!value[..end].contains('<')).then(|| &value[end + 1..])
    }
    /// Spaces, required unless at the end.
    fn separator(s: &str) -> Option<&str> {
        let after = spaces(s);
        (after.len() < s.len() || after.is_empty()).then_some(after)
    }
    let Some(mut s) = content.strip_prefix("xml").and_then(separator) else {
        return false;
    };
    for (name, required) in [
        ("version", true),
        ("encoding", false),
        ("standalone", false),
    ] {
        if s.starts_with(name) {
            match attribute(s).and_then(separator) {
                Some(rest) => s = rest,
                None => return false,
            }
        } else if required {
            return false;
        }
    }
    s.is_empty()
}

/// The character of a reference's name (`amp`, `#48`, `#x30`): XML's five predefined
/// entities and character references of characters XML allows; `None` for any other
/// (refused, there is no DTD to declare one).
fn reference(name: &str) -> Option<char> {
    match name {
        "quot" => return Some('"'),
        "amp" => return Some('&'),
        "apos" => return Some('\''),
        "lt" => return Some('<'),
        "gt" => return Some('>'),
        _ => {}
    }
    let number = name.strip_prefix('#')?;
    let (digits, radix) = match number.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (number, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    char::from_u32(u32::from_str_radix(digits, radix).ok()?).filter(|&c| is_xml_char(c))
}

/// An attribute's value normalized as XML says (each tab, line feed or carriage return
/// written as such is a space, CR LF one space) with its references replaced; a `<` in
/// it is malformed, and checked first (as roxmltree did).
fn attribute_value(raw: &str, out: &mut String) -> Result<(), ValueError> {
    out.clear();
    if raw.contains('<') {
        return Err(ValueError::Malformed);
    }
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        match c {
            b'&' => {
                let at = raw.len() - rest.len() - 1;
                let end = rest.find(';').ok_or(ValueError::Reference(at))?;
                out.push(reference(&rest[..end]).ok_or(ValueError::Reference(at))?);
                rest = &rest[end + 1..];
            }
            b'\r' if rest.starts_with('\n') => {}
            _ => out.push(' '),
        }
    }
    out.push_str(rest);
    Ok(())
}

enum ValueError {
    Malformed,
    /// A refused reference, at this offset of the value.
    Reference(usize),
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
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let encoding = encoding(body)?;
    let mut source = Source {
        body,
        encoding,
        parsed: 0,
        offset: 0,
    };
    let mut reader = Reader::new(expected);
    match encoding {
        Encoding::Utf8 => parse(body, &mut source, &mut reader)?,
        Encoding::Latin1 => parse(Latin1::new(body), &mut source, &mut reader)?,
    }
    reader.finish()
}

/// Every event of the document, checked, given to `reader`.
fn parse<R: BufRead>(
    input: R,
    source: &mut Source<'_>,
    reader: &mut Reader,
) -> Result<(), ReturnError> {
    let mut xml = NsReader::from_reader(input);
    let config = xml.config_mut();
    config.check_comments = true;
    config.check_end_names = true;
    let mut buf = Vec::new();
    let mut value = String::new();
    let mut depth = 0usize;
    let mut had_root = false;
    let mut pending_cr = false;
    loop {
        buf.clear();
        let start = to_usize(xml.buffer_position());
        let (unbound, event) = match xml.read_resolved_event_into(&mut buf) {
            // A prefix bound by no `xmlns:` in scope.
            Ok((resolved, event)) => (matches!(resolved, ResolveResult::Unknown(_)), event),
            Err(e) => {
                let at = to_usize(xml.error_position());
                source.advance(at)?;
                return Err(xml_error(&e, source, at, depth));
            }
        };
        source.advance(to_usize(xml.buffer_position()))?;
        // A carriage return just before a reference stays one (as roxmltree had it);
        // elsewhere, the end of a line.
        if pending_cr {
            pending_cr = false;
            reader.text(if matches!(event, Event::GeneralRef(_)) {
                "\r"
            } else {
                "\n"
            });
        }
        match event {
            Event::Decl(ref decl) => {
                if !is_instruction(decl, start == 0) {
                    return Err(source.malformed(start));
                }
            }
            Event::PI(ref pi) => {
                if !is_instruction(pi, start == 0) {
                    return Err(source.malformed(start));
                }
            }
            Event::DocType(_) => return Err(ReturnError::Doctype),
            Event::Comment(_) => {}
            Event::Start(ref element) | Event::Empty(ref element) => {
                if depth == 0 && had_root {
                    return Err(source.malformed(start));
                }
                had_root = true;
                let root = attributes(element, &xml, source, start, depth == 0, &mut value)?;
                if unbound {
                    return Err(source.malformed(start + 1));
                }
                reader.start(element.local_name().as_ref(), depth, root);
                if matches!(event, Event::Empty(_)) {
                    reader.end(depth);
                } else {
                    depth += 1;
                }
            }
            Event::End(_) => {
                // Never below the root: quick-xml refuses an unmatched end tag.
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| source.malformed(start))?;
                reader.end(depth);
            }
            Event::Text(text) => {
                if depth == 0 {
                    if !text.bytes().all(|b| b.is_ascii_whitespace()) {
                        return Err(source.malformed(start));
                    }
                } else {
                    if let Some(i) = text.find("]]>") {
                        return Err(source.malformed(start + i));
                    }
                    let mut content = text.xml10_content();
                    if text.ends_with('\r') {
                        // Normalized to a line feed, told apart after the next event.
                        content.to_mut().pop();
                        pending_cr = true;
                    }
                    reader.text(&content);
                }
            }
            Event::CData(data) => {
                if depth == 0 {
                    return Err(source.malformed(start));
                }
                reader.text(&data.xml10_content());
            }
            Event::GeneralRef(name) => {
                if depth == 0 {
                    return Err(source.malformed(start));
                }
                let c = reference(&name).ok_or_else(|| source.text_reference(start))?;
                reader.text(c.encode_utf8(&mut [0; 4]));
            }
            Event::Eof => {
                if depth > 0 || !had_root {
                    return Err(source.malformed(start));
                }
                return Ok(());
            }
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn xml_error(e: &XmlError, source: &Source<'_>, at: usize, depth: usize) -> ReturnError {
    match e {
        XmlError::Syntax(SyntaxError::UnclosedDoctype)
        | XmlError::IllFormed(IllFormedError::MissingDoctypeName) => ReturnError::Doctype,
        XmlError::IllFormed(IllFormedError::UnclosedReference) | XmlError::Escape(_)
            if depth > 0 =>
        {
            source.text_reference(at)
        }
        _ => source.malformed(at),
    }
}

/// Whether each attribute of a tag (its text after the name) is followed by a space or
/// the end of the tag, as XML requires (`a="1"b="2"` is refused).
fn attributes_apart(raw: &str) -> bool {
    let mut quote = None;
    let mut closed = false;
    for c in raw.chars() {
        if closed && !matches!(c, ' ' | '\t' | '\n' | '\r' | '/') {
            return false;
        }
        closed = false;
        match quote {
            None if c == '"' || c == '\'' => quote = Some(c),
            Some(q) if c == q => {
                quote = None;
                closed = true;
            }
            _ => {}
        }
    }
    true
}

/// The root's attributes read here.
#[derive(Default)]
struct RootAttributes {
    type_: Option<String>,
    identifier: Option<String>,
    message: Option<String>,
}

/// Checks an element's name and every attribute (name, namespace, value and its
/// references); for the root, the attributes read.
fn attributes<R>(
    element: &BytesStart<'_>,
    xml: &NsReader<R>,
    source: &Source<'_>,
    start: usize,
    root: bool,
    value: &mut String,
) -> Result<Option<RootAttributes>, ReturnError> {
    if !is_qualified_name(element.name().as_ref()) {
        return Err(source.malformed(start + 1));
    }
    let mut kept = root.then(RootAttributes::default);
    // Twice the same attribute is checked here, after its value (as roxmltree did), on
    // the namespace and local name.
    let mut seen: Vec<(Option<String>, String)> = Vec::new();
    let mut all = element.attributes();
    all.with_checks(false);
    for attribute in all {
        let attribute = attribute.map_err(|_| source.malformed(start))?;
        let key = attribute.key;
        if !is_qualified_name(key.as_ref()) {
            return Err(source.malformed(start));
        }
        attribute_value(&attribute.value, value).map_err(|e| match e {
            ValueError::Malformed => source.malformed(start),
            ValueError::Reference(at) => {
                // Its line: where the value is in the tag (after `<`), when it is there.
                let tag: &str = element;
                let in_tag = match &attribute.value {
                    Cow::Borrowed(v) => (v.as_ptr() as usize)
                        .checked_sub(tag.as_ptr() as usize)
                        .filter(|&o| o <= tag.len()),
                    Cow::Owned(_) => None,
                };
                source.entity(in_tag.map_or(start, |o| start + 1 + o + at))
            }
        })?;
        if key.as_namespace_binding().is_some() {
            if seen.iter().any(|(ns, n)| ns.is_none() && n == key.as_ref()) {
                return Err(source.malformed(start));
            }
            seen.push((None, key.as_ref().to_owned()));
            continue;
        }
        let namespace = match xml.resolver().resolve_attribute(key) {
            (ResolveResult::Unknown(_), _) => return Err(source.malformed(start)),
            (ResolveResult::Bound(ns), _) => Some(ns.0.to_owned()),
            (ResolveResult::Unbound, _) => None,
        };
        let name = (namespace, key.local_name().as_ref().to_owned());
        if seen.contains(&name) {
            return Err(source.malformed(start));
        }
        seen.push(name);
        if let Some(kept) = kept.as_mut()
            && key.prefix().is_none()
        {
            let slot = match key.local_name().as_ref() {
                "type" => &mut kept.type_,
                "identifiant" => &mut kept.identifier,
                "message" => &mut kept.message,
                _ => continue,
            };
            *slot = Some(value.clone());
        }
    }
    // After the values, whose references roxmltree judged first.
    if !attributes_apart(element.attributes_raw()) {
        return Err(source.malformed(start));
    }
    Ok(kept)
}

// ---- What is read, as the events come ----

/// What the root announces, hence what is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not a report of an expected kind: the document is only checked to its end.
    Skip,
    Acknowledgement {
        accepted: bool,
    },
    Conformity,
    Crm,
}

/// The elements whose place matters (the first child of its name, on the way to a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Envoi,
    EnvoiIdentification,
    EnvoiBilan,
    Declaration,
    DeclarationBilan,
    DeclarationContenu,
    Other,
}

/// Names of which only an element's first child counts (one bit each in [`Frame::seen`]).
const FIRST_OF: [&str; 11] = [
    "envoi",
    "envoi_identification",
    "envoi_bilan",
    "idflux",
    "envoi_etat",
    "declaration",
    "declaration_identification",
    "declaration_bilan",
    "etat",
    "declaration_contenu",
    "salaries",
];

/// An open element.
struct Frame {
    role: Role,
    /// Which of [`FIRST_OF`] have been seen among its children.
    seen: u16,
    is_environnement: bool,
    /// The report's declaration or inside it.
    in_declaration: bool,
}

impl Frame {
    /// Whether `name` is the first child of that name (counted once).
    fn first(&mut self, name: &str) -> bool {
        let Some(i) = FIRST_OF.iter().position(|n| *n == name) else {
            return false;
        };
        let bit = 1 << i;
        let first = self.seen & bit == 0;
        self.seen |= bit;
        first
    }
}

/// Texts kept (all the element's text, as it comes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// `envoi/envoi_identification/idflux`.
    EnvoiIdflux,
    /// `envoi/envoi_bilan/envoi_etat`.
    EnvoiEtat,
    /// `declaration/declaration_bilan/etat`.
    DeclarationEtat,
    /// `declaration/declaration_bilan/declaration_contenu/salaries`.
    Salaries,
    /// The first of these names anywhere.
    AnyIdflux,
    AnyEnvoiEtat,
    AnyDateEnregistrement,
    AnyHeureEnregistrement,
    AnyEssaiReel,
}

const SLOTS: usize = 9;

/// Elements gathered whole, then read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gathered {
    /// A `envoi_anomalie` of `envoi` (nature 11).
    EnvoiAnomaly,
    /// A `declaration_anomalie` of the declaration (natures 11 and 94).
    DeclarationAnomaly,
    DeclarationIdentification,
    /// A `salarie` of a CRM (with the `salarie` inside it, if any).
    Employee,
    /// An outermost `envoi_anomalie` of an ARE.
    Rejection,
}

struct Gathering {
    what: Gathered,
    depth: usize,
    tree: Tree,
}

/// Anomalies read in order, until the first that is refused.
#[derive(Default)]
struct Anomalies {
    read: Vec<Anomaly>,
    error: Option<ReturnError>,
}

impl Anomalies {
    fn push(&mut self, node: Elem<'_>) {
        if self.error.is_none() {
            match anomaly(node) {
                Ok(a) => self.read.push(a),
                Err(e) => self.error = Some(e),
            }
        }
    }
}

struct Reader {
    expected: Option<Kind>,
    mode: Mode,
    root_is_report: bool,
    root: RootAttributes,
    frames: Vec<Frame>,
    texts: [Option<String>; SLOTS],
    /// Slots being filled, with the depth of their element.
    filling: Vec<(Slot, usize)>,
    gathering: Vec<Gathering>,
    /// A tree read and cleared, kept for the next element gathered.
    spare: Option<Tree>,
    declarations: usize,
    declaration_identification: Option<Tree>,
    envoi_anomalies: Anomalies,
    declaration_anomalies: Anomalies,
    rejections: Vec<RejectionAnomaly>,
    /// In document order (an employee's position is its index plus one).
    employees: Vec<CrmEmployee>,
    /// The first employee refused (nothing is read after it).
    employee_error: Option<ReturnError>,
}

impl Reader {
    fn new(expected: Option<Kind>) -> Reader {
        Reader {
            expected,
            mode: Mode::Skip,
            root_is_report: false,
            root: RootAttributes::default(),
            frames: Vec::new(),
            texts: Default::default(),
            filling: Vec::new(),
            gathering: Vec::new(),
            spare: None,
            declarations: 0,
            declaration_identification: None,
            envoi_anomalies: Anomalies::default(),
            declaration_anomalies: Anomalies::default(),
            rejections: Vec::new(),
            employees: Vec::new(),
            employee_error: None,
        }
    }

    fn start(&mut self, name: &str, depth: usize, root: Option<RootAttributes>) {
        if depth == 0 {
            self.start_root(name, root.unwrap_or_default());
            return;
        }
        for g in &mut self.gathering {
            g.tree.open(name);
        }
        let Some(parent) = self.frames.last_mut() else {
            return;
        };
        let mut frame = Frame {
            role: Role::Other,
            seen: 0,
            is_environnement: name == "environnement",
            in_declaration: parent.in_declaration,
        };
        let mut slot = None;
        let mut gather = None;
        match self.mode {
            Mode::Skip => {}
            Mode::Acknowledgement { accepted } => {
                slot = match name {
                    "idflux" => Some(Slot::AnyIdflux),
                    "envoi_etat" => Some(Slot::AnyEnvoiEtat),
                    "date_enregistrement" if accepted => Some(Slot::AnyDateEnregistrement),
                    "heure_enregistrement" if accepted => Some(Slot::AnyHeureEnregistrement),
                    "essai_reel" if accepted => Some(Slot::AnyEssaiReel),
                    _ => None,
                };
                if !accepted
                    && name == "envoi_anomalie"
                    && !self.gathering.iter().any(|g| g.what == Gathered::Rejection)
                {
                    gather = Some(Gathered::Rejection);
                }
            }
            Mode::Conformity | Mode::Crm => {
                let crm = self.mode == Mode::Crm;
                if name == "idflux" {
                    slot = Some(Slot::AnyIdflux);
                }
                match (parent.role, name) {
                    (Role::Root, "envoi") if parent.first(name) => frame.role = Role::Envoi,
                    (Role::Root, "declaration") => {
                        self.declarations += 1;
                        if parent.first(name) {
                            frame.role = Role::Declaration;
                            frame.in_declaration = true;
                        }
                    }
                    (Role::Envoi, "envoi_identification") if parent.first(name) => {
                        frame.role = Role::EnvoiIdentification;
                    }
                    (Role::Envoi, "envoi_bilan") if parent.first(name) => {
                        frame.role = Role::EnvoiBilan;
                    }
                    (Role::Envoi, "envoi_anomalie") if !crm => {
                        gather = Some(Gathered::EnvoiAnomaly);
                    }
                    (Role::EnvoiIdentification, "idflux") if parent.first(name) => {
                        slot = Some(Slot::EnvoiIdflux);
                    }
                    (Role::EnvoiBilan, "envoi_etat") if parent.first(name) => {
                        slot = Some(Slot::EnvoiEtat);
                    }
                    (Role::Declaration, "declaration_identification") if parent.first(name) => {
                        gather = Some(Gathered::DeclarationIdentification);
                    }
                    (Role::Declaration, "declaration_bilan") if parent.first(name) => {
                        frame.role = Role::DeclarationBilan;
                    }
                    (Role::Declaration, "declaration_anomalie") => {
                        gather = Some(Gathered::DeclarationAnomaly);
                    }
                    (Role::DeclarationBilan, "etat") if parent.first(name) => {
                        slot = Some(Slot::DeclarationEtat);
                    }
                    (Role::DeclarationBilan, "declaration_contenu") if parent.first(name) => {
                        frame.role = Role::DeclarationContenu;
                    }
                    (Role::DeclarationContenu, "salaries") if parent.first(name) && crm => {
                        slot = Some(Slot::Salaries);
                    }
                    _ => {}
                }
                // A `salarie` inside an employee's is read with it (in document order).
                if crm
                    && name == "salarie"
                    && parent.in_declaration
                    && !parent.is_environnement
                    && !self.gathering.iter().any(|g| g.what == Gathered::Employee)
                {
                    gather = Some(Gathered::Employee);
                }
            }
        }
        // `idflux` can be both the first child of `envoi_identification` and the first
        // anywhere: the first anywhere is then this one too.
        if slot == Some(Slot::EnvoiIdflux) && self.texts[Slot::AnyIdflux as usize].is_none() {
            self.begin_text(Slot::AnyIdflux, depth);
        }
        if let Some(slot) = slot {
            self.begin_text(slot, depth);
        }
        if let Some(what) = gather {
            let mut tree = self.spare.take().unwrap_or_default();
            tree.clear();
            tree.open(name);
            self.gathering.push(Gathering { what, depth, tree });
        }
        self.frames.push(frame);
    }

    fn start_root(&mut self, name: &str, root: RootAttributes) {
        self.root_is_report = name == "rapport";
        let type_ = root.type_.as_deref().unwrap_or_default();
        self.mode = match kind_of(type_) {
            Ok((kind, _)) if self.root_is_report && self.expected.is_none_or(|e| e == kind) => {
                match kind {
                    Kind::Acknowledgement => Mode::Acknowledgement {
                        accepted: type_.trim() == "AEE",
                    },
                    Kind::Conformity => Mode::Conformity,
                    Kind::Crm => Mode::Crm,
                }
            }
            _ => Mode::Skip,
        };
        self.root = root;
        self.frames.push(Frame {
            role: Role::Root,
            seen: 0,
            is_environnement: name == "environnement",
            in_declaration: false,
        });
    }

    /// Starts keeping the text of the element at `depth` in `slot`, unless the slot
    /// already has an element's (only the first counts).
    fn begin_text(&mut self, slot: Slot, depth: usize) {
        let text = &mut self.texts[slot as usize];
        if text.is_none() {
            *text = Some(String::new());
            self.filling.push((slot, depth));
        }
    }

    fn text(&mut self, text: &str) {
        for (slot, _) in &self.filling {
            if let Some(t) = self.texts[*slot as usize].as_mut() {
                t.push_str(text);
            }
        }
        for g in &mut self.gathering {
            g.tree.text(text);
        }
    }

    fn end(&mut self, depth: usize) {
        self.frames.pop();
        self.filling.retain(|(_, d)| *d != depth);
        for g in &mut self.gathering {
            g.tree.close();
        }
        // Only the innermost gathering can end here (one starts per element at most).
        if self.gathering.last().is_some_and(|g| g.depth == depth)
            && let Some(g) = self.gathering.pop()
        {
            self.gathered(g.what, g.tree);
        }
    }

    fn gathered(&mut self, what: Gathered, tree: Tree) {
        if what == Gathered::DeclarationIdentification {
            self.declaration_identification = Some(tree);
            return;
        }
        self.read_gathered(what, tree.root());
        // Its buffers serve the next element.
        self.spare = Some(tree);
    }

    fn read_gathered(&mut self, what: Gathered, node: Elem<'_>) {
        match what {
            Gathered::EnvoiAnomaly => self.envoi_anomalies.push(node),
            Gathered::DeclarationAnomaly => self.declaration_anomalies.push(node),
            Gathered::DeclarationIdentification => {}
            Gathered::Employee => {
                let employees = node.descendants().filter(|e| {
                    e.name() == "salarie" && e.parent().is_none_or(|p| p.name() != "environnement")
                });
                for e in employees {
                    if self.employee_error.is_some() {
                        return;
                    }
                    match crm_employee(e, self.employees.len() + 1) {
                        Ok(employee) => self.employees.push(employee),
                        Err(error) => self.employee_error = Some(error),
                    }
                }
            }
            Gathered::Rejection => {
                for a in node.descendants().filter(|n| n.name() == "envoi_anomalie") {
                    for d in a.descendants().filter(|n| n.name() == "description") {
                        self.rejections.push(RejectionAnomaly {
                            code: d.child_text("code").unwrap_or_default(),
                            message: d.child_text("message").unwrap_or_default(),
                        });
                    }
                }
            }
        }
    }

    /// The text of a slot, trimmed; `None` when absent or empty.
    fn take(&mut self, slot: Slot) -> Option<String> {
        self.texts[slot as usize]
            .take()
            .map(trimmed)
            .filter(|s| !s.is_empty())
    }

    /// The document, once every event has been read and checked.
    fn finish(mut self) -> Result<ReturnDocument, ReturnError> {
        if !self.root_is_report {
            return Err(ReturnError::NotAReport);
        }
        let (kind, conformity_kind) = kind_of(self.root.type_.as_deref().unwrap_or_default())?;
        if let Some(expected) = self.expected
            && expected != kind
        {
            return Err(ReturnError::WrongKind {
                expected,
                found: kind,
            });
        }
        Ok(match self.mode {
            Mode::Acknowledgement { accepted } => {
                ReturnDocument::Acknowledgement(self.acknowledgement(accepted)?)
            }
            Mode::Conformity => ReturnDocument::Conformity(
                self.conformity(conformity_kind.unwrap_or(ConformityKind::AnomalyList))?,
            ),
            Mode::Crm => ReturnDocument::Crm(self.crm()?),
            Mode::Skip => return Err(ReturnError::UnknownType),
        })
    }

    fn acknowledgement(&mut self, accepted: bool) -> Result<Acknowledgement, ReturnError> {
        let id = self.take(Slot::AnyIdflux);
        let etat = self.take(Slot::AnyEnvoiEtat).unwrap_or_default();
        if accepted {
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
                date_enregistrement: self.take(Slot::AnyDateEnregistrement).unwrap_or_default(),
                heure_enregistrement: self.take(Slot::AnyHeureEnregistrement).unwrap_or_default(),
                essai_reel: self.take(Slot::AnyEssaiReel).unwrap_or_default(),
            }));
        }
        Ok(Acknowledgement::Rejected(Rejected {
            idflux: id.filter(|i| is_idflux(i)),
            anomalies: std::mem::take(&mut self.rejections),
        }))
    }

    /// `envoi/envoi_identification/idflux`, else the first `idflux`, checked.
    fn idflux(&mut self) -> Result<String, ReturnError> {
        let id = self
            .take(Slot::EnvoiIdflux)
            .or_else(|| self.take(Slot::AnyIdflux))
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

    /// The report's one `declaration`: whether there is one.
    fn declaration(&self) -> Result<bool, ReturnError> {
        if self.declarations > 1 {
            return Err(ReturnError::Invalid {
                field: "declaration",
                employee: None,
            });
        }
        Ok(self.declarations == 1)
    }

    /// `declaration_bilan/etat` of the declaration, else `envoi_bilan/envoi_etat`.
    fn status(&mut self) -> Result<ReturnStatus, ReturnError> {
        let text = self
            .take(Slot::DeclarationEtat)
            .or_else(|| self.take(Slot::EnvoiEtat))
            .ok_or(ReturnError::Missing { field: "etat" })?;
        ReturnStatus::parse(&text).ok_or(ReturnError::Invalid {
            field: "etat",
            employee: None,
        })
    }

    fn conformity(&mut self, kind: ConformityKind) -> Result<Conformity, ReturnError> {
        let idflux = self.idflux()?;
        self.declaration()?;
        let status = self.status()?;
        if let Some(e) = self.envoi_anomalies.error.take() {
            return Err(e);
        }
        if let Some(e) = self.declaration_anomalies.error.take() {
            return Err(e);
        }
        let mut anomalies = std::mem::take(&mut self.envoi_anomalies.read);
        anomalies.append(&mut self.declaration_anomalies.read);
        Ok(Conformity {
            idflux,
            kind,
            status,
            declaration: declaration_id(self.declaration_identification.as_ref().map(Tree::root))?,
            anomalies,
        })
    }

    fn crm(&mut self) -> Result<Crm, ReturnError> {
        let identifier = match self.root.identifier.as_deref() {
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
        let idflux = self.idflux()?;
        if !self.declaration()? {
            return Err(ReturnError::Missing {
                field: "declaration",
            });
        }
        let status = self.status()?;
        let id = declaration_id(self.declaration_identification.as_ref().map(Tree::root))?;
        if id.siren.is_none() {
            return Err(ReturnError::Missing { field: "SIREN" });
        }
        if id.nic.is_none() {
            return Err(ReturnError::Missing {
                field: "nic_affectation",
            });
        }
        let announced_employees = self
            .take(Slot::Salaries)
            .map(|n| {
                n.parse::<u32>().map_err(|_| ReturnError::Invalid {
                    field: "salaries",
                    employee: None,
                })
            })
            .transpose()?;
        if let Some(e) = self.employee_error.take() {
            return Err(e);
        }
        let employees = std::mem::take(&mut self.employees);
        if let Some(e) = self.declaration_anomalies.error.take() {
            return Err(e);
        }
        Ok(Crm {
            identifier,
            idflux,
            status,
            declaration: id,
            announced_employees,
            employees,
            anomalies: std::mem::take(&mut self.declaration_anomalies.read),
            notice: self
                .root
                .message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        })
    }
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

// ---- A gathered element ----

/// An element gathered whole, flat: its elements and texts in document order, each
/// element followed by what it holds (no recursion to read it nor to drop it, however
/// deep). Names and texts are ranges of two buffers, so that a tree cleared and used
/// again for the next element allocates nothing.
#[derive(Debug, Default)]
struct Tree {
    nodes: Vec<Node>,
    names: String,
    texts: String,
    /// The elements open while gathering.
    open: Vec<usize>,
}

#[derive(Debug)]
struct Node {
    /// Local name of an element (in `names`); `None` for a text.
    name: Option<Range<usize>>,
    /// A text's (in `texts`).
    text: Range<usize>,
    parent: Option<usize>,
    /// Index after the last node it holds.
    end: usize,
}

impl Tree {
    fn clear(&mut self) {
        self.nodes.clear();
        self.names.clear();
        self.texts.clear();
        self.open.clear();
    }

    fn open(&mut self, name: &str) {
        let i = self.nodes.len();
        let from = self.names.len();
        self.names.push_str(name);
        self.nodes.push(Node {
            name: Some(from..self.names.len()),
            text: 0..0,
            parent: self.open.last().copied(),
            end: i + 1,
        });
        self.open.push(i);
    }

    /// Closes the innermost open element; whether the tree is complete.
    fn close(&mut self) -> bool {
        if let Some(i) = self.open.pop() {
            self.nodes[i].end = self.nodes.len();
        }
        self.open.is_empty()
    }

    fn text(&mut self, text: &str) {
        let Some(&parent) = self.open.last() else {
            return;
        };
        let from = self.texts.len();
        self.texts.push_str(text);
        let to = self.texts.len();
        if let Some(last) = self.nodes.last_mut()
            && last.name.is_none()
            && last.parent == Some(parent)
            && last.text.end == from
        {
            last.text.end = to;
            return;
        }
        let i = self.nodes.len();
        self.nodes.push(Node {
            name: None,
            text: from..to,
            parent: Some(parent),
            end: i + 1,
        });
    }

    fn root(&self) -> Elem<'_> {
        Elem { tree: self, i: 0 }
    }
}

/// An element of a [`Tree`].
#[derive(Debug, Clone, Copy)]
struct Elem<'a> {
    tree: &'a Tree,
    i: usize,
}

impl<'a> Elem<'a> {
    fn name(self) -> &'a str {
        self.tree.nodes[self.i]
            .name
            .clone()
            .map_or("", |r| &self.tree.names[r])
    }

    fn parent(self) -> Option<Elem<'a>> {
        self.tree.nodes[self.i]
            .parent
            .map(|i| Elem { tree: self.tree, i })
    }

    fn end(self) -> usize {
        self.tree.nodes[self.i].end
    }

    /// Its child elements.
    fn elements(self) -> impl Iterator<Item = Elem<'a>> {
        let tree = self.tree;
        let end = self.end();
        let mut j = self.i + 1;
        std::iter::from_fn(move || {
            while j < end {
                let node = &tree.nodes[j];
                let here = j;
                j = node.end.max(j + 1);
                if node.name.is_some() {
                    return Some(Elem { tree, i: here });
                }
            }
            None
        })
    }

    /// The first child `name`.
    fn child(self, name: &str) -> Option<Elem<'a>> {
        self.elements().find(|e| e.name() == name)
    }

    /// The element and every element inside, in document order.
    fn descendants(self) -> impl Iterator<Item = Elem<'a>> {
        let tree = self.tree;
        (self.i..self.end())
            .filter(move |&j| tree.nodes[j].name.is_some())
            .map(move |i| Elem { tree, i })
    }

    /// The element's text, trimmed (all its text, references replaced).
    fn text(self) -> String {
        let mut out = String::new();
        for node in &self.tree.nodes[self.i + 1..self.end()] {
            if node.name.is_none() {
                out.push_str(&self.tree.texts[node.text.clone()]);
            }
        }
        trimmed(out)
    }

    /// The text of the child `name`, `None` when absent or empty.
    fn child_text(self, name: &str) -> Option<String> {
        self.child(name).map(Elem::text).filter(|s| !s.is_empty())
    }
}

fn trimmed(text: String) -> String {
    let t = text.trim();
    if t.len() == text.len() {
        text
    } else {
        t.to_owned()
    }
}

// ---- Values ----

/// An idflux as the services give it: letters and digits, 1 to 50 (23 for a deposit).
fn is_idflux(s: &str) -> bool {
    (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn declaration_id(ident: Option<Elem<'_>>) -> Result<DeclarationId, ReturnError> {
    let Some(ident) = ident else {
        return Ok(DeclarationId::default());
    };
    let invalid = |field| ReturnError::Invalid {
        field,
        employee: None,
    };
    let siren = ident.child_text("SIREN");
    if siren.as_deref().is_some_and(|s| !digits(s, 9)) {
        return Err(invalid("SIREN"));
    }
    let nic = ident.child_text("nic_affectation");
    if nic.as_deref().is_some_and(|s| !digits(s, 5)) {
        return Err(invalid("nic_affectation"));
    }
    let month = match ident.child_text("mois") {
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
        kind: ident.child_text("type"),
        business_id: ident.child_text("identifiant_metier"),
    })
}

fn person_id(node: Elem<'_>, employee: Option<usize>) -> Result<Option<PersonId>, ReturnError> {
    let id = match (node.child_text("NIR"), node.child_text("NTT")) {
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
fn anomaly(node: Elem<'_>) -> Result<Anomaly, ReturnError> {
    let description = node.child("description").unwrap_or(node);
    let code = description
        .child_text("code")
        .ok_or(ReturnError::Missing { field: "code" })?;
    let trigger = node
        .child("valeurs")
        .and_then(|v| v.child("rubrique_declenchante"));
    let employee = match node.child("environnement").and_then(|e| e.child("salarie")) {
        Some(s) => Some(EmployeeRef {
            id: person_id(s, None)?,
            matricule: s.child_text("matricule"),
        }),
        None => None,
    };
    Ok(Anomaly {
        code,
        category: Category::parse(&description.child_text("categorie").unwrap_or_default()),
        message: description.child_text("message").unwrap_or_default(),
        rubric: trigger.and_then(|t| t.child_text("identifiant")),
        line: trigger
            .and_then(|t| t.child_text("ligne"))
            .and_then(|l| l.parse().ok()),
        value: trigger.and_then(|t| t.child_text("valeur")),
        employee,
    })
}

fn crm_employee(node: Elem<'_>, position: usize) -> Result<CrmEmployee, ReturnError> {
    let invalid = |field| ReturnError::Invalid {
        field,
        employee: Some(position),
    };
    let id = person_id(node, Some(position))?.ok_or_else(|| invalid("NIR ou NTT"))?;
    let rate = match node.child_text("taux_imposition_PAS") {
        None => None,
        Some(t) => Some(Rate::parse(&t).ok_or_else(|| invalid("taux_imposition_PAS"))?),
    };
    let future = match node.child("future_imposition_PAS") {
        None => None,
        Some(f) => match (f.child_text("taux"), f.child_text("date_effet")) {
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
        matricule: node.child_text("matricule"),
        rate,
        future,
    })
}
