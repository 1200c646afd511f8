//! The scanner: the same checks fed in chunks of any size, in bounded memory, giving the
//! same verdict as `Dsn::parse`.

use iea_dsn::{
    DeclarationKind, Dsn, MAX_LINE_LEN, MAX_PROBLEMS, ProblemKind, Problems, SampleSpec, Scanner,
    Summary, TestOrReal, sample,
};

const SIRET: &str = "73282932000074";

fn spec(employees: usize) -> SampleSpec {
    SampleSpec {
        siret: SIRET.into(),
        month: "2024-12".parse().unwrap(),
        employees,
        test_or_real: TestOrReal::Test,
        kind: DeclarationKind::Normal,
        seed: 7,
    }
}

fn scan(bytes: &[u8], chunk: usize) -> Result<Summary, Problems> {
    let mut s = Scanner::new();
    for c in bytes.chunks(chunk) {
        s.feed(c);
    }
    s.finish()
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| {
            if *b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![*b]
            }
        })
        .collect()
}

#[test]
fn any_chunking_gives_what_parse_gives() {
    let lf = sample(&spec(7));
    for bytes in [
        lf.clone(),
        crlf(&lf),
        lf.strip_suffix(b"\n").unwrap().to_vec(),
    ] {
        let dsn = Dsn::parse(&bytes).unwrap();
        for chunk in [1, 2, 3, 7, 64, 4096, bytes.len()] {
            let s = scan(&bytes, chunk).unwrap_or_else(|p| panic!("chunk {chunk}: {p}"));
            assert_eq!(&s.declaration, dsn.declaration(), "chunk {chunk}");
            assert_eq!(&s.sender, dsn.sender());
            assert_eq!(s.employees, 7);
            assert_eq!(s.lines, dsn.rubrics().len());
            assert_eq!(s.crlf, dsn.crlf());
        }
    }
}

#[test]
fn bad_files_get_the_same_problems_whatever_the_chunking() {
    let good = sample(&spec(3));
    let text: Vec<Vec<u8>> = good
        .strip_suffix(b"\n")
        .unwrap()
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let mut bad = text.clone();
    bad[3] = b"S10.G00.00.005,'07'".to_vec();
    bad[9] = b"pas une rubrique".to_vec();
    bad[12] = b"S10.G00.02.001,'0\t1'".to_vec();
    bad[20] = b"S20.G00.05.005,'01132024'".to_vec();
    let bad = bad.join(&b'\n');
    let expected = Dsn::parse(&bad).unwrap_err();
    assert!(expected.len() >= 4, "{expected}");
    for chunk in [1, 5, 100, bad.len()] {
        assert_eq!(scan(&bad, chunk).unwrap_err(), expected, "chunk {chunk}");
        assert_eq!(
            scan(&crlf(&bad), chunk).unwrap_err(),
            expected,
            "crlf chunk {chunk}"
        );
    }
    assert_eq!(scan(b"", 1).unwrap_err().0[0].kind, ProblemKind::EmptyFile);
}

#[test]
fn check_reader_reads_a_big_file_to_its_summary() {
    let bytes = sample(&spec(5_000));
    let summary = Scanner::check_reader(&bytes[..]).unwrap().unwrap();
    assert_eq!(summary.employees, 5_000);
    assert_eq!(summary.declaration.siret(), SIRET);
    assert_eq!(summary.declaration.month.to_string(), "2024-12");
    assert_eq!(summary.lines, bytes.iter().filter(|b| **b == b'\n').count());
}

#[test]
fn a_line_longer_than_the_limit_is_named_and_not_kept() {
    let good = sample(&spec(2));
    let mut lines: Vec<Vec<u8>> = good
        .strip_suffix(b"\n")
        .unwrap()
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let mut long = b"S10.G00.01.004,'".to_vec();
    long.extend(std::iter::repeat_n(b'A', MAX_LINE_LEN * 3));
    long.push(b'\'');
    lines[9] = long;
    let bytes = lines.join(&b'\n');
    for chunk in [1, 1000, bytes.len()] {
        let p = scan(&bytes, chunk).unwrap_err();
        assert_eq!(p.len(), 1, "{p}");
        assert_eq!(
            (p.0[0].kind, p.0[0].line),
            (ProblemKind::NotARubric, Some(10))
        );
    }
    // Exactly the limit is fine.
    let mut exact = b"S10.G00.01.004,'".to_vec();
    exact.extend(std::iter::repeat_n(b'A', MAX_LINE_LEN - exact.len() - 1));
    exact.push(b'\'');
    assert_eq!(exact.len(), MAX_LINE_LEN);
    lines[9] = exact;
    assert!(scan(&lines.join(&b'\n'), 333).is_ok());
}

#[test]
fn a_hundred_thousand_bad_lines_keep_the_first_problems_and_count_the_others() {
    let good = sample(&spec(50));
    let lines = good.iter().filter(|b| **b == b'\n').count();
    let mut bytes = good.clone();
    let bad = 100_000;
    for i in 0..bad {
        bytes.extend_from_slice(format!("ligne de trop {i}\n").as_bytes());
    }
    // As the orchestrator and `iea dsn check` read it: in chunks, in bounded memory.
    let mut scanner = Scanner::new();
    for c in bytes.chunks(64 * 1024) {
        scanner.feed(c);
        // Never more than the bound held while scanning, not only at the end.
        let held = format!("{scanner:?}");
        let n: usize = held
            .split("problems: ")
            .nth(1)
            .and_then(|r| r.split([',', ' ', '}']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{held}"));
        assert!(n <= MAX_PROBLEMS, "{held}");
    }
    let p = scanner.finish().unwrap_err();
    assert_eq!(MAX_PROBLEMS, 100);
    assert_eq!(p.len(), MAX_PROBLEMS);
    // One problem per bad line, and the total of lines S90.G00.90.001 gives is wrong.
    assert_eq!(p.total(), bad + 1);
    assert_eq!(p.omitted(), bad + 1 - MAX_PROBLEMS);
    // The first in line order: the wrong total (found last, on an earlier line), then
    // the first bad lines.
    let first: Vec<(Option<usize>, ProblemKind)> = p.iter().map(|x| (x.line, x.kind)).collect();
    assert_eq!(first[0], (Some(lines - 1), ProblemKind::LineCountTotal));
    for (i, (line, kind)) in first[1..].iter().enumerate() {
        assert_eq!(
            (*line, *kind),
            (Some(lines + 1 + i), ProblemKind::NotARubric)
        );
    }
    let sentence = p.omitted_sentence().unwrap();
    assert_eq!(
        sentence,
        "… et 99\u{202f}901 autres problèmes (seuls les 100 premiers sont listés)."
    );
    let text = p.to_string();
    assert_eq!(text.lines().count(), MAX_PROBLEMS + 1);
    assert!(text.ends_with(&sentence), "{text}");
    // Dsn::parse is the same scanner: the same verdict.
    assert_eq!(Dsn::parse(&bytes).unwrap_err(), p);
}

#[test]
fn past_the_bound_any_problem_is_counted_and_a_small_file_lists_all() {
    // Many declaration blocks: one problem each past the first, bounded as well.
    let good = sample(&spec(1));
    let block: Vec<u8> = good
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"S20.G00.05."))
        .flat_map(|l| [l, b"\n"].concat())
        .collect();
    let find = |what: &[u8]| good.windows(what.len()).position(|w| w == what).unwrap();
    let (head, tail) = (&good[..find(b"S20.G00.05.001")], &good[find(b"S21.")..]);
    let extra = 5_000;
    let mut bytes = head.to_vec();
    for _ in 0..=extra {
        bytes.extend_from_slice(&block);
    }
    let first_block_len = block.iter().filter(|b| **b == b'\n').count();
    let head_lines = head.iter().filter(|b| **b == b'\n').count();
    bytes.extend_from_slice(tail);
    let p = Dsn::parse(&bytes).unwrap_err();
    assert_eq!(p.len(), MAX_PROBLEMS);
    assert!(
        p.iter()
            .all(|x| x.kind == ProblemKind::DeclarationCount && x.line.is_some()),
        "{p}"
    );
    // Extra declarations, the wrong line total and the wrong declaration count.
    assert_eq!(p.total(), extra + 1, "{p}");
    assert!(p.has(
        ProblemKind::DeclarationCount,
        Some(head_lines + first_block_len + 1)
    ));
    assert!(p.to_string().contains("autres problèmes"), "{p}");

    // Exactly the bound: all listed, no sentence.
    let mut bytes = good.clone();
    for _ in 0..MAX_PROBLEMS - 1 {
        bytes.extend_from_slice(b"S99.G00.99.001,'A\tB'\n");
    }
    let p = Dsn::parse(&bytes).unwrap_err();
    // Each line: a control character, and the wrong total once.
    assert_eq!((p.len(), p.omitted()), (MAX_PROBLEMS, 0), "{p}");
    assert_eq!(p.omitted_sentence(), None);
    bytes.extend_from_slice(b"S99.G00.99.001,'A\tB'\n");
    let p = Dsn::parse(&bytes).unwrap_err();
    assert_eq!((p.len(), p.omitted()), (MAX_PROBLEMS, 1));
    assert_eq!(
        p.omitted_sentence().unwrap(),
        "… et 1 autre problème (seuls les 100 premiers sont listés)."
    );
}
