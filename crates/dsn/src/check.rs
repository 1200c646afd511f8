//! The checks made before anything is sent. They run line by line in a [`Scanner`], so
//! that a file of any size is checked in bounded memory (a line is at most
//! [`MAX_LINE_LEN`] bytes; the first [`MAX_PROBLEMS`] problems in line order are kept,
//! the others only counted, so a file with a million bad lines holds a hundred sentences);
//! [`crate::Dsn::parse`] is the same scanner keeping every rubric and employee. Every
//! problem is found, not only the first.

use std::io::Read;

use iea_declarant::siret_key_is_valid;

use crate::read::{
    CODE_LEN, encoding_fault, encoding_problem, first_newline, first_unprintable, latin1,
    printable_ascii, split_rubric,
};
use crate::{
    Declaration, DeclarationKind, Dsn, Employee, Month, Payment, Problem, ProblemKind, Problems,
    Rubric, Sender, TestOrReal,
};

/// Longest line accepted, in bytes (DSN values are a few dozen characters).
pub const MAX_LINE_LEN: usize = 4096;
/// Problems kept in detail, the first in line order; the others are counted
/// ([`Problems::omitted`]). A hundred is more than a person reads before fixing the file
/// (a file with a few mistakes lists them all; a file broken throughout, wrong encoding
/// or format, shows its pattern in its first lines), and a hundred sentences (about
/// 12 KB) stay a small answer for every front-end, where one sentence per bad line of
/// a 100 MB file overflowed the orchestrator's answer. The scanner never holds more.
pub const MAX_PROBLEMS: usize = 100;

/// Rubrics whose first occurrence in the file the checks and the summary need.
const KEYS: [&str; 13] = [
    "S10.G00.00.001",
    "S10.G00.00.002",
    "S10.G00.00.003",
    "S10.G00.00.005",
    "S10.G00.00.006",
    "S10.G00.00.007",
    "S10.G00.01.001",
    "S10.G00.01.002",
    "S10.G00.01.003",
    "S21.G00.06.001",
    "S21.G00.11.001",
    "S90.G00.90.001",
    "S90.G00.90.002",
];

/// A rubric's code as one number, to compare it with [`KEYS`] in one instruction.
const fn packed(code: &[u8]) -> u128 {
    let mut out = 0u128;
    let mut i = 0;
    while i < code.len() && i < CODE_LEN {
        out |= (code[i] as u128) << (8 * i);
        i += 1;
    }
    out
}

/// Whether `code` may be one of [`KEYS`]: only S10, S90 and the S21.G00.06 and .11
/// blocks hold one (most lines are not looked up).
fn may_be_key(code: &[u8]) -> bool {
    match code.get(..3) {
        Some(b"S10" | b"S90") => true,
        Some(b"S21") => matches!(code.get(8..10), Some(b"06" | b"11")),
        _ => false,
    }
}

/// [`KEYS`], packed.
const PACKED_KEYS: [u128; KEYS.len()] = {
    let mut out = [0u128; KEYS.len()];
    let mut i = 0;
    while i < KEYS.len() {
        out[i] = packed(KEYS[i].as_bytes());
        i += 1;
    }
    out
};

/// Block (`Sxx.Gyy.zz`) of a rubric's code.
type BlockCode = [u8; 10];

/// What a file that passed every check declares, without its rubrics nor employees: what
/// a deposit needs, from a [`Scanner`] in bounded memory.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Summary {
    pub sender: Sender,
    pub declaration: Declaration,
    /// Number of employees (`S21.G00.30` blocks).
    pub employees: usize,
    /// Number of lines (= rubrics) of the file.
    pub lines: usize,
    /// Whether the lines end with CRLF.
    pub crlf: bool,
}

/// A rubric's value and line.
#[derive(Clone)]
struct Seen {
    line: usize,
    value: String,
}

/// The fields of the `S20.G00.05` block, read and checked.
struct Fields {
    nature: String,
    kind: DeclarationKind,
    fraction: String,
    month: Month,
    month_line: usize,
    business_id: Option<String>,
    line: usize,
}

/// The block being read: its code and last rubric number.
struct Open {
    code: BlockCode,
    last_field: u16,
}

/// The employee being read, with which required rubrics were seen.
struct Current {
    employee: Employee,
    has_nom: bool,
    has_prenoms: bool,
}

/// Checks a DSN file fed in chunks of any size (for instance as it is read or received),
/// keeping only what the checks need. `Scanner::default()`, then [`Scanner::feed`] each
/// chunk, then [`Scanner::finish`].
#[derive(Default)]
pub struct Scanner {
    /// Keep every rubric and employee (for [`Dsn`]).
    collect: bool,
    partial: Vec<u8>,
    overlong: bool,
    lines: usize,
    crlf: bool,
    not_blank: bool,
    /// The first problems in line order (at most [`MAX_PROBLEMS`]), each with its rank
    /// of finding (same line: found first, listed first).
    problems: Vec<(Problem, usize)>,
    /// Problems found so far, kept or not.
    found: usize,
    /// Once [`MAX_PROBLEMS`] are kept: the index of the last kept in line order, which a
    /// new problem must come before to be kept; `None` when not known.
    worst: Option<usize>,
    first_seen: bool,
    block: Option<Open>,
    keys: [Option<Seen>; KEYS.len()],
    /// First line of the first `S20.G00.05` blocks (at most [`MAX_PROBLEMS`] + 1: the
    /// others could not be among the problems kept).
    declarations: Vec<usize>,
    /// Number of `S20.G00.05` blocks.
    declaration_count: usize,
    /// Fields of the first `S20.G00.05` block, by number.
    declaration_fields: Vec<(u16, Seen)>,
    current: Option<Current>,
    employee_count: usize,
    employees: Vec<Employee>,
    rubrics: Vec<Rubric>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("lines", &self.lines)
            .field("problems", &self.problems.len())
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// A scanner that keeps nothing but what [`Summary`] holds.
    pub fn new() -> Self {
        Scanner::default()
    }

    /// Reads and checks everything `reader` gives, in bounded memory.
    pub fn check_reader(mut reader: impl Read) -> std::io::Result<Result<Summary, Problems>> {
        let mut scanner = Scanner::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => scanner.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(scanner.finish())
    }

    /// Checks the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        // One pass finds both the line ends and whether a line is printable ASCII: the
        // first byte outside 0x20..=0x7E is most often its LF (or the CR of its CRLF).
        let mut start = 0;
        let mut printable = true;
        let mut from = 0;
        while let Some(pos) = first_unprintable(chunk, from) {
            let end = match chunk[pos] {
                b'\n' => pos,
                b'\r' if chunk.get(pos + 1) == Some(&b'\n') => pos + 1,
                _ => {
                    // Checked in full by `line`; only its end is looked for.
                    printable = false;
                    match first_newline(chunk, pos + 1) {
                        Some(end) => end,
                        None => break,
                    }
                }
            };
            self.end_line(&chunk[start..end], printable);
            start = end + 1;
            from = start;
            printable = true;
        }
        self.buffer(&chunk[start..]);
    }

    /// The end of a line: `line` is its last bytes (without the LF), the first ones
    /// being in `partial` if the line began in an earlier chunk. `printable`: every
    /// byte of `line` but a final CR is printable ASCII.
    fn end_line(&mut self, line: &[u8], printable: bool) {
        if self.partial.is_empty() && !self.overlong {
            self.line(line, false, printable);
        } else {
            self.buffer(line);
            let line = std::mem::take(&mut self.partial);
            let overlong = std::mem::take(&mut self.overlong);
            self.line(&line, overlong, false);
            self.partial = line;
            self.partial.clear();
        }
    }

    /// The end of the file: the last checks, and what the file declares or every
    /// problem found.
    pub fn finish(self) -> Result<Summary, Problems> {
        let (sender, declaration, s) = self.conclude()?;
        Ok(Summary {
            sender,
            declaration,
            employees: s.employee_count,
            lines: s.lines,
            crlf: s.crlf,
        })
    }

    pub(crate) fn collecting() -> Self {
        Scanner {
            collect: true,
            ..Scanner::default()
        }
    }

    pub(crate) fn finish_dsn(self) -> Result<Dsn, Problems> {
        let (sender, declaration, s) = self.conclude()?;
        Ok(Dsn {
            rubrics: s.rubrics,
            sender,
            declaration,
            employees: s.employees,
            crlf: s.crlf,
        })
    }

    /// Adds bytes to the unfinished line, up to [`MAX_LINE_LEN`].
    fn buffer(&mut self, bytes: &[u8]) {
        let room = (MAX_LINE_LEN + 1).saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.overlong = true;
        }
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Keeps `p` if it is among the first [`MAX_PROBLEMS`] in line order (whole-file
    /// problems last), else only counts it: memory bounded whatever the file.
    fn line_problem(&mut self, p: Problem) {
        let rank = self.found;
        self.found += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push((p, rank));
            return;
        }
        // The last kept in line order: replaced when the new one comes before it.
        let (i, last) = self.worst_kept();
        if order(p.line, rank) < last {
            self.problems[i] = (p, rank);
            self.worst = None;
        }
    }

    /// Index and order of the last problem kept in line order (the bound reached).
    fn worst_kept(&mut self) -> (usize, (usize, usize)) {
        if let Some(i) = self.worst {
            return (i, order(self.problems[i].0.line, self.problems[i].1));
        }
        let (i, last) = self
            .problems
            .iter()
            .map(|(q, r)| order(q.line, *r))
            .enumerate()
            .max_by_key(|(_, k)| *k)
            .unwrap_or((0, (usize::MAX, usize::MAX)));
        self.worst = Some(i);
        (i, last)
    }

    /// Whether a problem found now on `line` would be kept; when not, the caller only
    /// counts it ([`Scanner::count_only`]) rather than write its sentence.
    fn would_keep(&mut self, line: usize) -> bool {
        self.problems.len() < MAX_PROBLEMS || order(Some(line), self.found) < self.worst_kept().1
    }

    /// A problem found but not kept.
    fn count_only(&mut self) {
        self.found += 1;
    }

    /// A problem on `line`, its sentence written only if it is kept.
    fn line_problem_with(&mut self, line: usize, make: impl FnOnce() -> Problem) {
        if self.would_keep(line) {
            self.line_problem(make());
        } else {
            self.count_only();
        }
    }

    fn push(&mut self, line: Option<usize>, kind: ProblemKind, message: impl Into<String>) {
        self.line_problem(Problem::new(line, kind, message));
    }

    /// One line, its LF removed. `printable`: known to be printable ASCII but for a
    /// final CR (else looked at here).
    fn line(&mut self, raw: &[u8], overlong: bool, printable: bool) {
        self.lines += 1;
        let number = self.lines;
        let seg = match raw.strip_suffix(b"\r") {
            Some(s) => {
                self.crlf = true;
                s
            }
            None => raw,
        };
        if overlong || seg.len() > MAX_LINE_LEN {
            self.not_blank = true;
            self.line_problem_with(number, || {
                Problem::new(
                    Some(number),
                    ProblemKind::NotARubric,
                    format!(
                        "ligne de plus de {MAX_LINE_LEN} caractères : ce n'est pas une rubrique"
                    ),
                )
            });
            return;
        }
        if !self.not_blank && seg.iter().any(|b| !b.is_ascii_whitespace()) {
            self.not_blank = true;
        }
        // Most lines are printable ASCII: nothing to check then.
        if !(printable || printable_ascii(seg))
            && let Some(fault) = encoding_fault(seg)
        {
            self.line_problem_with(number, || encoding_problem(number, fault));
        }
        match split_rubric(seg) {
            Ok((code, value)) => self.rubric(number, code, value),
            Err(why) => self.line_problem_with(number, || {
                Problem::new(
                    Some(number),
                    ProblemKind::NotARubric,
                    format!("{why} ; attendu une rubrique de la forme S21.G00.30.001,'valeur'"),
                )
            }),
        }
    }

    /// A rubric: its line, code (ASCII, checked) and value (ISO-8859-1 bytes, decoded
    /// only when kept).
    fn rubric(&mut self, line: usize, code: &[u8; CODE_LEN], value: &[u8]) {
        let code_str = || String::from_utf8_lossy(code).into_owned();
        if !self.first_seen {
            self.first_seen = true;
            if code != b"S10.G00.00.001" {
                self.line_problem(Problem::new(
                    Some(line),
                    ProblemKind::FirstRubric,
                    format!(
                        "la première rubrique doit être S10.G00.00.001 (nom du logiciel de \
                         paie), lu {}",
                        code_str()
                    ),
                ));
            }
        }
        let block: &BlockCode = code.first_chunk().unwrap_or(&[0; 10]);
        // Three digits, checked by `split_rubric`.
        let field = u16::from(code[11] - b'0') * 100
            + u16::from(code[12] - b'0') * 10
            + u16::from(code[13] - b'0');
        let opens = match &mut self.block {
            Some(open) if open.code == *block && field > open.last_field => {
                open.last_field = field;
                false
            }
            _ => true,
        };
        if opens {
            self.open_block(line, block, field);
        }
        let collect = self.collect;
        match block {
            b"S20.G00.05" if self.declaration_count == 1 => {
                self.declaration_fields.push((
                    field,
                    Seen {
                        line,
                        value: latin1(value),
                    },
                ));
            }
            b"S21.G00.30" => {
                if let Some(c) = &mut self.current {
                    match field {
                        2 => c.has_nom = true,
                        4 => c.has_prenoms = true,
                        _ => {}
                    }
                    // The employee's values only for `Dsn` (the summary counts them).
                    if collect {
                        let v = Some(latin1(value));
                        match field {
                            1 => c.employee.nir = v,
                            2 => c.employee.nom = latin1(value),
                            4 => c.employee.prenoms = latin1(value),
                            19 => c.employee.matricule = v,
                            20 => c.employee.ntt = v,
                            _ => {}
                        }
                    }
                }
            }
            b"S21.G00.50" if collect => {
                if let Some(p) = self
                    .current
                    .as_mut()
                    .and_then(|c| c.employee.payments.last_mut())
                {
                    let v = Some(latin1(value));
                    match field {
                        1 => p.date = v,
                        6 => p.pas_rate = v,
                        7 => p.rate_type = v,
                        8 => p.rate_identifier = v,
                        9 => p.pas_amount = v,
                        13 => p.amount_subject = v,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        if may_be_key(code)
            && let Some(i) = PACKED_KEYS.iter().position(|k| *k == packed(code))
            && self.keys[i].is_none()
        {
            self.keys[i] = Some(Seen {
                line,
                value: latin1(value),
            });
        }
        if code == b"S21.G00.50.006" && !pas_rate_ok(value) {
            self.line_problem_with(line, || {
                Problem::new(
                    Some(line),
                    ProblemKind::InvalidPasRate,
                    "taux de prélèvement à la source (S21.G00.50.006) mal écrit : attendu un ou \
                     deux chiffres, un point et deux décimales, par exemple 7.50",
                )
            });
        }
        if collect {
            self.rubrics.push(Rubric {
                line,
                code: code_str(),
                value: latin1(value),
            });
        }
    }

    /// A new block occurrence starts on `line`.
    fn open_block(&mut self, line: usize, block: &BlockCode, field: u16) {
        match block {
            b"S20.G00.05" => {
                self.declaration_count += 1;
                if self.declarations.len() <= MAX_PROBLEMS {
                    self.declarations.push(line);
                }
            }
            b"S21.G00.30" => {
                self.close_employee();
                self.current = Some(Current {
                    employee: Employee {
                        nir: None,
                        ntt: None,
                        matricule: None,
                        nom: String::new(),
                        prenoms: String::new(),
                        payments: Vec::new(),
                        line,
                    },
                    has_nom: false,
                    has_prenoms: false,
                });
            }
            b"S21.G00.50" => match &mut self.current {
                // The payments only for `Dsn`.
                Some(c) if self.collect => c.employee.payments.push(Payment {
                    line,
                    ..Payment::default()
                }),
                Some(_) => {}
                None => self.line_problem_with(line, || {
                    Problem::new(
                        Some(line),
                        ProblemKind::MisplacedBlock,
                        "versement (bloc S21.G00.50) avant tout salarié (bloc S21.G00.30)",
                    )
                }),
            },
            _ => {}
        }
        self.block = Some(Open {
            code: *block,
            last_field: field,
        });
    }

    /// The employee being read is complete: its required rubrics are checked.
    fn close_employee(&mut self) {
        let Some(c) = self.current.take() else {
            return;
        };
        let line = c.employee.line;
        for (has, n, what) in [
            (c.has_nom, 2, "nom de famille"),
            (c.has_prenoms, 4, "prénoms"),
        ] {
            if !has {
                self.line_problem(Problem::new(
                    Some(line),
                    ProblemKind::MissingRubric,
                    format!("rubrique S21.G00.30.{n:03} ({what}) absente du salarié"),
                ));
            }
        }
        self.employee_count += 1;
        if self.collect {
            self.employees.push(c.employee);
        }
    }

    fn key(&self, code: &str) -> Option<Seen> {
        let i = KEYS.iter().position(|k| *k == code)?;
        self.keys[i].clone()
    }

    /// The key rubric, or a `missing_rubric` problem naming it.
    fn required(&mut self, code: &str, what: &str) -> Option<Seen> {
        let found = self.key(code);
        if found.is_none() {
            self.push(
                None,
                ProblemKind::MissingRubric,
                format!("rubrique {code} ({what}) absente"),
            );
        }
        found
    }

    /// The whole-file checks; the sender and declaration when there is no problem.
    fn conclude(mut self) -> Result<(Sender, Declaration, Scanner), Problems> {
        if !self.partial.is_empty() || self.overlong {
            let line = std::mem::take(&mut self.partial);
            let overlong = self.overlong;
            self.line(&line, overlong, false);
        }
        if !self.not_blank {
            return Err(Problems::new(
                vec![Problem::new(
                    None,
                    ProblemKind::EmptyFile,
                    "le fichier est vide : aucune rubrique à déposer",
                )],
                0,
            ));
        }
        self.close_employee();
        let built = self.whole_file();
        match built {
            Some((sender, declaration)) if self.found == 0 => Ok((sender, declaration, self)),
            _ => {
                let mut problems = std::mem::take(&mut self.problems);
                problems.sort_by_key(|(p, rank)| (p.line.unwrap_or(usize::MAX), *rank));
                let omitted = self.found - problems.len();
                Err(Problems::new(
                    problems.into_iter().map(|(p, _)| p).collect(),
                    omitted,
                ))
            }
        }
    }

    fn whole_file(&mut self) -> Option<(Sender, Declaration)> {
        self.declaration_count();
        self.totals();

        let test_or_real = self
            .required("S10.G00.00.005", "essai ou réel")
            .and_then(|r| {
                let v = TestOrReal::from_code(&r.value);
                if v.is_none() {
                    self.push(
                        Some(r.line),
                        ProblemKind::InvalidValue,
                        format!(
                            "S10.G00.00.005 (essai ou réel) doit valoir 01 (essai) ou 02 (réel), \
                             lu « {} »",
                            r.value
                        ),
                    );
                }
                v
            });
        let norm_version = self.required("S10.G00.00.006", "version de la norme");
        let sender_siren = self.required("S10.G00.01.001", "SIREN de l'émetteur");
        let sender_nic = self.required("S10.G00.01.002", "NIC de l'émetteur");
        let sender_ok = self.siret(
            "de l'émetteur",
            ("S10.G00.01.001", sender_siren.as_ref()),
            ("S10.G00.01.002", sender_nic.as_ref()),
        );
        let siren = self.required("S21.G00.06.001", "SIREN de l'entreprise déclarée");
        let nic = self.required("S21.G00.11.001", "NIC de l'établissement déclaré");
        let declared_ok = self.siret(
            "de l'établissement déclaré",
            ("S21.G00.06.001", siren.as_ref()),
            ("S21.G00.11.001", nic.as_ref()),
        );
        let declaration = self.declaration_block();

        let software = self.key("S10.G00.00.001")?.value;
        let value = |s: &Self, code: &str| s.key(code).map(|r| r.value);
        let sender = Sender {
            siren: sender_siren?.value,
            nic: sender_nic?.value,
            name: value(self, "S10.G00.01.003"),
            software,
            publisher: value(self, "S10.G00.00.002"),
            software_version: value(self, "S10.G00.00.003"),
            deposit_point: value(self, "S10.G00.00.007"),
        };
        let Fields {
            nature,
            kind,
            fraction,
            month,
            month_line,
            business_id,
            line,
        } = declaration?;
        if !(sender_ok && declared_ok) {
            return None;
        }
        let declaration = Declaration {
            nature,
            kind,
            fraction,
            month,
            month_line,
            siren: siren?.value,
            nic: nic?.value,
            test_or_real: test_or_real?,
            norm_version: norm_version?.value,
            business_id,
            line,
        };
        Some((sender, declaration))
    }

    /// One declaration per deposit.
    fn declaration_count(&mut self) {
        let declarations = std::mem::take(&mut self.declarations);
        let n = self.declaration_count;
        match declarations.as_slice() {
            [] => self.push(
                None,
                ProblemKind::DeclarationCount,
                "aucune déclaration (bloc S20.G00.05) : le fichier doit en contenir exactement une",
            ),
            [_] => {}
            [first, extra @ ..] => {
                for line in extra {
                    self.push(
                        Some(*line),
                        ProblemKind::DeclarationCount,
                        format!(
                            "déclaration supplémentaire (bloc S20.G00.05, la première est ligne \
                             {first}) : un dépôt ne contient qu'une déclaration, ce fichier en \
                             contient {n}"
                        ),
                    );
                }
                // Those not listed (past the bound) are counted among the others.
                self.found += n - declarations.len();
            }
        }
        self.declarations = declarations;
    }

    /// `S90.G00.90`: number of lines and of declarations.
    fn totals(&mut self) {
        let count = self.lines;
        if let Some(r) = self.required("S90.G00.90.001", "nombre de rubriques du fichier")
            && r.value.parse::<usize>().ok() != Some(count)
        {
            self.push(
                Some(r.line),
                ProblemKind::LineCountTotal,
                format!(
                    "S90.G00.90.001 indique « {} » rubriques, le fichier compte {count} lignes",
                    r.value
                ),
            );
        }
        if let Some(r) = self.required("S90.G00.90.002", "nombre de déclarations")
            && r.value.parse::<u32>().ok() != Some(1)
        {
            self.push(
                Some(r.line),
                ProblemKind::DeclarationCountTotal,
                format!(
                    "S90.G00.90.002 indique « {} » déclarations : un dépôt n'en contient qu'une, \
                     la valeur doit être 1",
                    r.value
                ),
            );
        }
    }

    /// A SIREN and a NIC that must make a valid SIRET; true when they do.
    fn siret(
        &mut self,
        whose: &str,
        (siren_code, siren): (&str, Option<&Seen>),
        (nic_code, nic): (&str, Option<&Seen>),
    ) -> bool {
        let (Some(siren), Some(nic)) = (siren, nic) else {
            return false;
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let mut ok = true;
        if !digits(&siren.value, 9) {
            ok = false;
            self.push(
                Some(siren.line),
                ProblemKind::InvalidSiret,
                format!(
                    "SIREN {whose} ({siren_code}) invalide : il doit compter 9 chiffres, lu « {} »",
                    siren.value
                ),
            );
        }
        if !digits(&nic.value, 5) {
            ok = false;
            self.push(
                Some(nic.line),
                ProblemKind::InvalidSiret,
                format!(
                    "NIC {whose} ({nic_code}) invalide : il doit compter 5 chiffres, lu « {} »",
                    nic.value
                ),
            );
        }
        if ok && !siret_key_is_valid(&format!("{}{}", siren.value, nic.value)) {
            ok = false;
            self.push(
                Some(nic.line),
                ProblemKind::InvalidSiret,
                format!(
                    "SIRET {whose} {}{} invalide (SIREN ligne {}, NIC ligne {}) : la clé de \
                     contrôle ne correspond pas ; vérifiez le SIREN et le NIC",
                    siren.value, nic.value, siren.line, nic.line
                ),
            );
        }
        ok
    }

    /// The fields of the (first) `S20.G00.05` block.
    fn declaration_block(&mut self) -> Option<Fields> {
        let block_line = *self.declarations.first()?;
        let get = |s: &Self, n: u16| {
            s.declaration_fields
                .iter()
                .find(|(f, _)| *f == n)
                .map(|(_, seen)| seen.clone())
        };
        let field = |s: &mut Self, n: u16, what: &str| {
            let v = get(s, n);
            if v.is_none() {
                s.push(
                    Some(block_line),
                    ProblemKind::MissingRubric,
                    format!("rubrique S20.G00.05.{n:03} ({what}) absente de la déclaration"),
                );
            }
            v
        };
        let nature = field(self, 1, "nature de la déclaration");
        let kind = field(self, 2, "type de la déclaration");
        let fraction = field(self, 3, "numéro de fraction");
        let month = field(self, 5, "mois principal déclaré").and_then(|r| {
            let m = Month::from_dsn(&r.value).map(|m| (m, r.line));
            if m.is_none() {
                self.push(
                    Some(r.line),
                    ProblemKind::InvalidMonth,
                    format!(
                        "mois principal déclaré (S20.G00.05.005) invalide : attendu 01MMAAAA, \
                         premier jour d'un mois réel (par exemple 01032025), lu « {} »",
                        r.value
                    ),
                );
            }
            m
        });
        Some(Fields {
            nature: nature?.value,
            kind: DeclarationKind::from_code(&kind?.value),
            fraction: fraction?.value,
            month: month?.0,
            month_line: month?.1,
            business_id: get(self, 9).map(|s| s.value),
            line: block_line,
        })
    }
}

/// `[0-9]{1,2}\.[0-9]{2}`, on the value's bytes.
pub(crate) fn pas_rate_ok(v: &[u8]) -> bool {
    let Some(dot) = v.iter().position(|b| *b == b'.') else {
        return false;
    };
    let (int, dec) = (&v[..dot], &v[dot + 1..]);
    (1..=2).contains(&int.len()) && dec.len() == 2 && int.iter().chain(dec).all(u8::is_ascii_digit)
}

/// A problem's place in line order: its line (whole-file problems last), then its rank
/// of finding.
fn order(line: Option<usize>, rank: usize) -> (usize, usize) {
    (line.unwrap_or(usize::MAX), rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_may_be_a_key() {
        for k in KEYS {
            assert!(may_be_key(k.as_bytes()), "{k}");
        }
        assert!(!may_be_key(b"S21.G00.30.001"));
    }
}
