//! Differential test of the checks: a corpus of valid and bad files (samples of several
//! sizes and kinds, LF, CRLF, no final newline; each known bad case) whose verdicts —
//! summary, every rubric and employee of `Dsn::parse` (as a hash), or every problem
//! sentence and the count of the others — were recorded in `tests/data/scanner_golden.txt`
//! by the scanner as it was before its hot path was rewritten (commit ff51fbd). The
//! scanner fed whole, in chunks of several sizes, split at every offset of small files
//! and one byte at a time, `Scanner::check_reader` and `Dsn::parse` must all give that
//! record. `IEA_DSN_BLESS=1 cargo test -p iea-dsn --test scanner_golden` writes it again
//! (only when the verdicts are meant to change).

use std::fmt::Write as _;

use iea_dsn::{
    DeclarationKind, Dsn, MAX_LINE_LEN, Problems, SampleSpec, Scanner, Summary, TestOrReal, sample,
};

const SIRET: &str = "73282932000074";
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/scanner_golden.txt");

fn spec(
    employees: usize,
    seed: u64,
    test_or_real: TestOrReal,
    kind: DeclarationKind,
) -> SampleSpec {
    SampleSpec {
        siret: SIRET.into(),
        month: "2025-02".parse().unwrap(),
        employees,
        test_or_real,
        kind,
        seed,
    }
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in bytes {
        if *b == b'\n' {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

/// The file with the first line starting with `code` replaced by `line`.
fn replace(base: &[Vec<u8>], code: &str, line: &[u8]) -> Vec<u8> {
    let mut l = base.to_vec();
    let i = l
        .iter()
        .position(|x| x.starts_with(code.as_bytes()))
        .unwrap_or_else(|| panic!("{code}"));
    l[i] = line.to_vec();
    join(&l)
}

fn set(base: &[Vec<u8>], code: &str, value: &[u8]) -> Vec<u8> {
    let mut line = format!("{code},'").into_bytes();
    line.extend_from_slice(value);
    line.push(b'\'');
    replace(base, code, &line)
}

fn without(base: &[Vec<u8>], code: &str) -> Vec<u8> {
    let l: Vec<Vec<u8>> = base
        .iter()
        .filter(|x| !x.starts_with(code.as_bytes()))
        .cloned()
        .collect();
    join(&l)
}

/// The corpus: (name, bytes).
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let kinds = [
        (0, 1, TestOrReal::Test, DeclarationKind::Normal),
        (1, 2, TestOrReal::Real, DeclarationKind::Normal),
        (3, 3, TestOrReal::Test, DeclarationKind::CancelsAndReplaces),
        (10, 4, TestOrReal::Real, DeclarationKind::Normal),
        (57, 5, TestOrReal::Real, DeclarationKind::Other("05".into())),
        (300, 6, TestOrReal::Test, DeclarationKind::Normal),
    ];
    for (n, seed, tor, kind) in kinds {
        let s = sample(&spec(n, seed, tor, kind));
        out.push((format!("sample {n} lf"), s.clone()));
        out.push((format!("sample {n} crlf"), crlf(&s)));
        out.push((
            format!("sample {n} no final newline"),
            s.strip_suffix(b"\n").unwrap().to_vec(),
        ));
    }
    let good = sample(&spec(3, 9, TestOrReal::Real, DeclarationKind::Normal));
    let base = lines(&good);
    let n = base.len();
    let mut bad = |name: &str, bytes: Vec<u8>| out.push((name.to_owned(), bytes));

    bad("empty", Vec::new());
    bad("blank lines only", b"\n\n  \n\r\n\t\n".to_vec());
    bad("one newline", b"\n".to_vec());
    bad("no newline, one rubric", b"S10.G00.00.001,'x'".to_vec());
    bad(
        "utf8 accents",
        set(&base, "S21.G00.30.002", "MÉNARD".as_bytes()),
    );
    bad(
        "utf8 accents in a key rubric",
        set(&base, "S10.G00.01.003", "ÉTANGS".as_bytes()),
    );
    bad(
        "utf8 accents in the first rubric",
        set(&base, "S10.G00.00.001", "logiciel é".as_bytes()),
    );
    bad(
        "latin1 accents in key rubrics",
        set(&base, "S10.G00.00.002", b"\xc9diteur \xe9t\xe9 \xff\xa0"),
    );
    bad(
        "latin1 that looks like the start of utf8",
        set(&base, "S21.G00.30.002", b"\xc3 A"),
    );
    bad(
        "utf8 and a control character",
        set(&base, "S21.G00.30.002", "É\tA".as_bytes()),
    );
    bad(
        "latin1 and a control character",
        set(&base, "S21.G00.30.002", b"\xc9\x01A"),
    );
    bad("tab", set(&base, "S21.G00.30.004", b"A\tB"));
    bad("isolated cr", set(&base, "S21.G00.30.004", b"A\rB"));
    bad("nul", set(&base, "S21.G00.30.004", b"A\x00B"));
    bad("del", set(&base, "S21.G00.30.004", b"A\x7fB"));
    bad("c1 0x85", set(&base, "S21.G00.30.004", b"A\x85B"));
    bad("c1 0x9f", set(&base, "S21.G00.30.004", b"\x9f"));
    bad("cr cr lf", {
        let mut l = base.clone();
        l[4].push(b'\r');
        crlf(&join(&l))
    });
    bad("mixed crlf and lf", {
        let mut b = join(&base[..n / 2]);
        b = crlf(&b);
        b.extend_from_slice(&join(&base[n / 2..]));
        b
    });
    for (i, line) in [
        &b"pas une rubrique"[..],
        b"",
        b"   ",
        b"S10.G00.00.001'x'",
        b"S10.G00.00.001,x'",
        b"S10.G00.00.001,'x",
        b"S10.G00.00.001,'",
        b"S10.G00.00.001,''",
        b"S10.G00.00.001,'a'b'",
        b"S10.G00.00.001,'a'b",
        b"s10.g00.00.001,'x'",
        b"S10.G00.00.01,'x'",
        b"S10.G00.00.0011,'x'",
        b"S1O.G00.00.001,'x'",
        b"S10.G00.00.00",
        b"S10.G00.00.001",
        b"S10.G00.00.001,",
        b"\xc9",
        b"S10.G00.00.\xc9\xc9\xc9,'x'",
    ]
    .into_iter()
    .enumerate()
    {
        let mut l = base.clone();
        l.insert(5, line.to_vec());
        bad(&format!("not a rubric {i}"), join(&l));
    }
    bad("first rubric not s10", {
        let mut l = base.clone();
        l.swap(0, 1);
        join(&l)
    });
    bad("first line not a rubric", {
        let mut l = base.clone();
        l.insert(0, b"DSN".to_vec());
        join(&l)
    });
    bad("two declarations", {
        let mut l = base.clone();
        let block: Vec<Vec<u8>> = l
            .iter()
            .filter(|x| x.starts_with(b"S20.G00.05."))
            .cloned()
            .collect();
        let at = l.iter().position(|x| x.starts_with(b"S21.")).unwrap();
        for (k, b) in block.into_iter().enumerate() {
            l.insert(at + k, b);
        }
        join(&l)
    });
    bad("200 declarations", {
        let mut l = base.clone();
        let block: Vec<Vec<u8>> = l
            .iter()
            .filter(|x| x.starts_with(b"S20.G00.05."))
            .cloned()
            .collect();
        let at = l.iter().position(|x| x.starts_with(b"S21.")).unwrap();
        for _ in 0..199 {
            for (k, b) in block.iter().enumerate() {
                l.insert(at + k, b.clone());
            }
        }
        join(&l)
    });
    bad("no declaration", without(&base, "S20.G00.05"));
    bad(
        "declaration without fraction and month",
        without(&lines(&without(&base, "S20.G00.05.003")), "S20.G00.05.005"),
    );
    bad("business id", set(&base, "S20.G00.05.009", b"ABC-1"));
    bad("kind other", set(&base, "S20.G00.05.002", b"07"));
    bad(
        "s90 lines not a number",
        set(&base, "S90.G00.90.001", b"12x"),
    );
    bad("s90 lines wrong", set(&base, "S90.G00.90.001", b"3"));
    bad("s90 declarations 2", set(&base, "S90.G00.90.002", b"2"));
    bad("s90 declarations +1", set(&base, "S90.G00.90.002", b"+1"));
    bad("no s90", without(&base, "S90"));
    bad("no test or real", without(&base, "S10.G00.00.005"));
    bad("test or real 07", set(&base, "S10.G00.00.005", b"07"));
    bad("no norm version", without(&base, "S10.G00.00.006"));
    bad("no sender", without(&base, "S10.G00.01"));
    bad(
        "sender siren 8 digits",
        set(&base, "S10.G00.01.001", b"73282932"),
    );
    bad("sender nic letters", set(&base, "S10.G00.01.002", b"0007A"));
    bad("sender siret key", set(&base, "S10.G00.01.002", b"00075"));
    bad("declared siren", set(&base, "S21.G00.06.001", b"732829320"));
    bad("declared nic", set(&base, "S21.G00.11.001", b"\xe900074"));
    bad("no declared siren", without(&base, "S21.G00.06.001"));
    for (i, m) in [
        &b"01132025"[..],
        b"02022025",
        b"0102202",
        b"01ab2025",
        b"01021899",
        b"",
    ]
    .into_iter()
    .enumerate()
    {
        bad(&format!("bad month {i}"), set(&base, "S20.G00.05.005", m));
    }
    for (i, r) in [
        &b"7,5"[..],
        b"100.00",
        b"7.5",
        b".50",
        b"7.500",
        b"\xe9.50",
        b"1.2.3",
    ]
    .into_iter()
    .enumerate()
    {
        bad(
            &format!("bad pas rate {i}"),
            set(&base, "S21.G00.50.006", r),
        );
    }
    bad("payment before any employee", {
        let mut l = base.clone();
        let at = l
            .iter()
            .position(|x| x.starts_with(b"S21.G00.30."))
            .unwrap();
        l.insert(at, b"S21.G00.50.001,'28022025'".to_vec());
        join(&l)
    });
    bad("employee without nom", without(&base, "S21.G00.30.002"));
    bad("employee without prenoms", without(&base, "S21.G00.30.004"));
    bad("employee fields out of order", {
        let mut l = base.clone();
        let a = l
            .iter()
            .position(|x| x.starts_with(b"S21.G00.30.002"))
            .unwrap();
        let b = l
            .iter()
            .position(|x| x.starts_with(b"S21.G00.30.004"))
            .unwrap();
        l.swap(a, b);
        join(&l)
    });
    let long = |len: usize| {
        let mut line = b"S10.G00.01.004,'".to_vec();
        line.extend(std::iter::repeat_n(b'A', len - line.len() - 1));
        line.push(b'\'');
        assert_eq!(line.len(), len);
        line
    };
    for len in [
        MAX_LINE_LEN - 1,
        MAX_LINE_LEN,
        MAX_LINE_LEN + 1,
        3 * MAX_LINE_LEN,
    ] {
        let mut l = base.clone();
        l.insert(8, long(len));
        let lf = join(&l);
        bad(&format!("line of {len} bytes crlf"), crlf(&lf));
        bad(&format!("line of {len} bytes"), lf);
    }
    bad("last line overlong without newline", {
        let mut b = good.clone();
        b.extend_from_slice(&long(MAX_LINE_LEN + 5));
        b
    });
    bad("2000 bad lines", {
        let mut b = good.clone();
        for i in 0..2000 {
            b.extend_from_slice(format!("ligne de trop {i}\n").as_bytes());
        }
        b
    });
    bad("150 bad lines before the end", {
        let mut l = base.clone();
        for i in 0..150 {
            l.insert(
                10,
                format!("S99.G00.99.{:03},'\t{i}'", i % 1000).into_bytes(),
            );
        }
        join(&l)
    });
    bad("random bytes", {
        let mut x: u64 = 0x1234_5678;
        (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    });
    out
}

/// FNV-1a, to record every rubric and employee in a line.
struct Fnv(u64);

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes.iter().chain(&[0xff]) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
    fn opt(&mut self, v: &Option<String>) {
        match v {
            Some(v) => self.add(format!("some {v}").as_bytes()),
            None => self.add(b"none"),
        }
    }
}

fn render_problems(p: &Problems) -> String {
    let mut s = format!("problems kept {} omitted {}\n", p.len(), p.omitted());
    for x in p {
        writeln!(s, "  {} {x}", x.code()).unwrap();
    }
    s
}

fn render_summary(r: &Result<Summary, Problems>) -> String {
    match r {
        Ok(s) => format!("ok {s:?}\n"),
        Err(p) => render_problems(p),
    }
}

fn render_dsn(r: &Result<Dsn, Problems>) -> String {
    match r {
        Ok(d) => {
            let mut h = Fnv(0xcbf2_9ce4_8422_2325);
            for r in d.rubrics() {
                h.add(format!("{} {} {}", r.line, r.code, r.value).as_bytes());
            }
            let mut e = Fnv(0xcbf2_9ce4_8422_2325);
            for x in d.employees() {
                e.add(format!("{} {} {}", x.line, x.nom, x.prenoms).as_bytes());
                e.opt(&x.nir);
                e.opt(&x.ntt);
                e.opt(&x.matricule);
                for p in &x.payments {
                    e.add(p.line.to_string().as_bytes());
                    for v in [
                        &p.date,
                        &p.pas_rate,
                        &p.rate_type,
                        &p.rate_identifier,
                        &p.pas_amount,
                        &p.amount_subject,
                    ] {
                        e.opt(v);
                    }
                }
            }
            format!(
                "dsn ok {:?} {:?} crlf {} rubrics {} hash {:016x} employees {} hash {:016x}\n",
                d.sender(),
                d.declaration(),
                d.crlf(),
                d.rubrics().len(),
                h.0,
                d.employees().len(),
                e.0
            )
        }
        Err(p) => format!("dsn {}", render_problems(p)),
    }
}

fn scan(bytes: &[u8], chunks: impl IntoIterator<Item = std::ops::Range<usize>>) -> String {
    let mut s = Scanner::new();
    for r in chunks {
        s.feed(&bytes[r]);
    }
    render_summary(&s.finish())
}

fn sized(len: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    (0..len.div_ceil(size).max(1))
        .map(|i| i * size..((i + 1) * size).min(len))
        .collect()
}

/// What the whole corpus gives, as recorded.
fn record(corpus: &[(String, Vec<u8>)]) -> String {
    let mut out = String::new();
    for (name, bytes) in corpus {
        writeln!(out, "== {name} ({} bytes)", bytes.len()).unwrap();
        out.push_str(&scan(bytes, std::iter::once(0..bytes.len())));
        out.push_str(&render_dsn(&Dsn::parse(bytes)));
    }
    out
}

#[test]
fn every_file_of_the_corpus_gets_the_recorded_verdict() {
    let corpus = corpus();
    let got = record(&corpus);
    if std::env::var_os("IEA_DSN_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(GOLDEN).parent().unwrap()).unwrap();
        std::fs::write(GOLDEN, &got).unwrap();
    }
    let want = std::fs::read_to_string(GOLDEN).expect("the recorded verdicts");
    for (g, w) in got.lines().zip(want.lines()) {
        assert_eq!(g, w, "first difference with {GOLDEN}");
    }
    assert_eq!(got.lines().count(), want.lines().count());
    assert!(
        want.contains("problems kept 100 omitted"),
        "the bound is exercised"
    );
    assert!(
        want.contains("\nok Summary"),
        "valid files are in the corpus"
    );
}

#[test]
fn any_chunking_gives_the_verdict_of_the_whole_file() {
    for (name, bytes) in corpus() {
        let whole = scan(&bytes, std::iter::once(0..bytes.len()));
        let sizes: &[usize] = if bytes.len() <= 40_000 {
            &[1, 2, 3, 7, 13, 64, 4095, 4096, 4097, 65536]
        } else {
            &[4096, 65536]
        };
        for size in sizes {
            assert_eq!(
                scan(&bytes, sized(bytes.len(), *size)),
                whole,
                "{name}, chunks of {size}"
            );
        }
        assert_eq!(
            render_summary(&Scanner::check_reader(&bytes[..]).unwrap()),
            whole,
            "{name}, check_reader"
        );
        // Empty chunks change nothing.
        let mut s = Scanner::new();
        s.feed(&[]);
        s.feed(&bytes);
        s.feed(&[]);
        assert_eq!(render_summary(&s.finish()), whole, "{name}, empty chunks");
    }
}

#[test]
fn a_small_file_split_at_every_offset_gets_its_verdict() {
    let good = sample(&spec(1, 3, TestOrReal::Test, DeclarationKind::Normal));
    let mut base = lines(&good);
    base[6] = b"S10.G00.01.003,'\xc9TANGS \tB'".to_vec();
    base.insert(9, "S10.G00.99.001,'UTF-8 é'".as_bytes().to_vec());
    base.insert(12, b"pas une rubrique".to_vec());
    let bad = join(&base);
    for bytes in [good.clone(), crlf(&good), bad.clone(), crlf(&bad)] {
        let whole = scan(&bytes, std::iter::once(0..bytes.len()));
        for at in 0..=bytes.len() {
            assert_eq!(
                scan(&bytes, [0..at, at..bytes.len()]),
                whole,
                "split at {at}"
            );
        }
        // Three pieces: every first offset, the second a few bytes further.
        for at in 0..bytes.len() {
            for gap in [1, 2, 5] {
                let b = (at + gap).min(bytes.len());
                assert_eq!(
                    scan(&bytes, [0..at, at..b, b..bytes.len()]),
                    whole,
                    "split at {at} and {b}"
                );
            }
        }
    }
}
