//! A DSN file read and checked: samples read back whole, and each bad file named with
//! the kind of its problem and its exact line.

use iea_dsn::{
    DeclarationKind, Dsn, Month, Problem, ProblemKind, Problems, SampleSpec, TestOrReal, sample,
};

/// A SIRET whose Luhn key is right.
const SIRET: &str = "73282932000074";

fn month() -> Month {
    "2025-03".parse().unwrap()
}

fn spec(employees: usize) -> SampleSpec {
    SampleSpec {
        siret: SIRET.into(),
        month: month(),
        employees,
        test_or_real: TestOrReal::Real,
        kind: DeclarationKind::Normal,
        seed: 42,
    }
}

/// The lines of a file, as bytes (ISO-8859-1 kept as is), without their LF.
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

/// Line number (from 1) of the first rubric with this code.
fn line_of(lines: &[Vec<u8>], code: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(code.as_bytes()))
        .unwrap_or_else(|| panic!("{code} not in the file"))
        + 1
}

fn set(lines: &mut [Vec<u8>], code: &str, value: &str) -> usize {
    let n = line_of(lines, code);
    lines[n - 1] = format!("{code},'{value}'").into_bytes();
    n
}

/// Keeps `S90.G00.90.001` equal to the number of lines, so that a test sees only the
/// problem it made.
fn fix_total(lines: &mut [Vec<u8>]) {
    let n = lines.len().to_string();
    set(lines, "S90.G00.90.001", &n);
}

fn problems(bytes: &[u8]) -> Problems {
    match Dsn::parse(bytes) {
        Ok(_) => panic!("a bad file was accepted"),
        Err(p) => {
            assert!(!p.is_empty());
            p
        }
    }
}

/// The file has exactly this one problem.
fn only(bytes: &[u8], kind: ProblemKind, line: Option<usize>) -> Problem {
    let p = problems(bytes);
    assert_eq!(p.len(), 1, "{p}");
    assert_eq!(p.0[0].kind, kind, "{p}");
    assert_eq!(p.0[0].line, line, "{p}");
    assert!(!p.0[0].message.is_empty());
    p.0[0].clone()
}

fn edited(edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let mut l = lines(&sample(&spec(3)));
    edit(&mut l);
    join(&l)
}

// ---- round trips ----

fn round_trip(employees: usize) {
    let bytes = sample(&spec(employees));
    let dsn = Dsn::parse(&bytes).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(dsn.employees().len(), employees);
    assert_eq!(dsn.rubrics().len(), lines(&bytes).len());
    let d = dsn.declaration();
    assert_eq!(d.siret(), SIRET);
    assert_eq!(d.month, month());
    assert_eq!(d.nature, "01");
    assert_eq!(d.kind, DeclarationKind::Normal);
    assert_eq!(d.fraction, "11");
    assert_eq!(d.test_or_real, TestOrReal::Real);
    assert_eq!(d.norm_version, "P24V01");
    let s = dsn.sender();
    assert_eq!(s.siret(), SIRET);
    assert_eq!(s.software, "iea-connect");
    assert!(!dsn.crlf());
    let total = dsn.rubric("S90.G00.90.001").unwrap();
    assert_eq!(total.value, dsn.rubrics().len().to_string());

    let mut matricules = std::collections::HashSet::new();
    for e in dsn.employees() {
        let nir = e.nir.as_deref().unwrap();
        assert_eq!(nir.len(), 13);
        assert!(nir.bytes().all(|b| b.is_ascii_digit()));
        assert!(matches!(&nir[..1], "1" | "2"));
        assert!(!e.nom.is_empty() && !e.prenoms.is_empty());
        let prenoms: Vec<&str> = e.prenoms.split(' ').collect();
        assert_eq!(prenoms.len(), 2);
        assert_ne!(prenoms[0], prenoms[1]);
        let birth_year: u32 = dsn.rubric_in(e.line, 6).unwrap().value[4..]
            .parse()
            .unwrap();
        let contract = &dsn.rubrics()[e.line - 1 + dsn.block_at(e.line).len()];
        assert_eq!(contract.code, "S21.G00.40.001");
        let hired: u32 = contract.value[4..].parse().unwrap();
        assert!(
            hired >= birth_year + 18 && hired < 2025,
            "{birth_year} {hired}"
        );
        assert!(matricules.insert(e.matricule.clone().unwrap()));
        assert_eq!(e.payments.len(), 1);
        let p = &e.payments[0];
        let base = cents(p.amount_subject.as_deref().unwrap());
        let rate = cents(p.pas_rate.as_deref().unwrap());
        let pas = cents(p.pas_amount.as_deref().unwrap());
        assert_eq!(pas, (base * rate + 5_000) / 10_000, "PAS = base × rate");
        match p.rate_type.as_deref().unwrap() {
            "01" => assert_eq!(p.rate_identifier.as_deref().map(str::len), Some(18)),
            "13" => assert!(p.rate_identifier.is_none()),
            "99" => {
                assert!(p.rate_identifier.is_none());
                assert_eq!((rate, pas), (0, 0));
            }
            other => panic!("rate type {other}"),
        }
    }
}

/// "1234.56" → 123456.
fn cents(v: &str) -> u64 {
    let (i, d) = v.split_once('.').unwrap();
    assert_eq!(d.len(), 2, "{v}");
    i.parse::<u64>().unwrap() * 100 + d.parse::<u64>().unwrap()
}

#[test]
fn a_sample_of_one_employee_reads_back() {
    round_trip(1);
}

#[test]
fn a_sample_of_ten_employees_reads_back() {
    round_trip(10);
}

#[test]
fn a_sample_of_a_thousand_employees_reads_back() {
    round_trip(1_000);
}

#[test]
fn samples_are_iso_8859_1_with_accented_names_and_deterministic_from_the_seed() {
    let bytes = sample(&spec(50));
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "é must be one byte, E9"
    );
    assert!(bytes.contains(&0xE9));
    let dsn = Dsn::parse(&bytes).unwrap();
    assert!(
        dsn.employees()
            .iter()
            .any(|e| e.prenoms.chars().any(|c| "éèëïôÉ".contains(c)))
    );
    assert_eq!(
        dsn.sender().name.as_deref(),
        Some("ASSOCIATION SPORTIVE DES ÉTANGS")
    );
    assert_eq!(bytes, sample(&spec(50)));
    let mut other = spec(50);
    other.seed = 43;
    assert_ne!(bytes, sample(&other));
    let rate_types: std::collections::HashSet<_> = dsn
        .employees()
        .iter()
        .map(|e| e.payments[0].rate_type.clone().unwrap())
        .collect();
    assert_eq!(
        rate_types.len(),
        3,
        "01, 13 and 99 all appear: {rate_types:?}"
    );
}

#[test]
fn test_or_real_and_cancels_and_replaces_are_written_and_read() {
    let mut s = spec(2);
    s.test_or_real = TestOrReal::Test;
    s.kind = DeclarationKind::CancelsAndReplaces;
    let dsn = Dsn::parse(&sample(&s)).unwrap();
    assert_eq!(dsn.declaration().test_or_real, TestOrReal::Test);
    assert_eq!(dsn.declaration().kind, DeclarationKind::CancelsAndReplaces);
    assert_eq!(dsn.rubric("S20.G00.05.002").unwrap().value, "03");
}

#[test]
fn crlf_line_ends_and_a_missing_final_newline_are_read_alike() {
    let lf = sample(&spec(10));
    let crlf: Vec<u8> = lf
        .iter()
        .flat_map(|b| {
            if *b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![*b]
            }
        })
        .collect();
    let a = Dsn::parse(&lf).unwrap();
    let b = Dsn::parse(&crlf).unwrap_or_else(|p| panic!("{p}"));
    assert!(b.crlf());
    assert_eq!(a.rubrics(), b.rubrics());
    assert_eq!(a.employees(), b.employees());
    let c = Dsn::parse(lf.strip_suffix(b"\n").unwrap()).unwrap();
    assert_eq!(a.rubrics(), c.rubrics());
    let d = Dsn::parse(crlf.strip_suffix(b"\r\n").unwrap()).unwrap();
    assert_eq!(a.rubrics(), d.rubrics());
}

#[test]
fn la_postes_sirets_follow_their_own_rule() {
    // Fails the Luhn key, digit sum 35: valid for La Poste.
    let mut s = spec(1);
    s.siret = "35600000039009".into();
    assert_eq!(
        Dsn::parse(&sample(&s)).unwrap().declaration().siret(),
        s.siret
    );
    // Digit sum 36: neither rule. Named on both NIC lines (sender and declared).
    s.siret = "35600000039010".into();
    let bytes = sample(&s);
    let l = lines(&bytes);
    let p = problems(&bytes);
    assert_eq!(p.len(), 2, "{p}");
    assert!(
        p.has(
            ProblemKind::InvalidSiret,
            Some(line_of(&l, "S10.G00.01.002"))
        ),
        "{p}"
    );
    assert!(
        p.has(
            ProblemKind::InvalidSiret,
            Some(line_of(&l, "S21.G00.11.001"))
        ),
        "{p}"
    );
}

// ---- each bad file, its problem and its line ----

#[test]
fn an_empty_file_is_refused() {
    only(b"", ProblemKind::EmptyFile, None);
    only(b"\n\r\n  \n", ProblemKind::EmptyFile, None);
}

#[test]
fn a_file_in_utf8_is_refused_on_each_line_with_an_accented_letter() {
    let latin1 = sample(&spec(5));
    let utf8: String = latin1.iter().map(|b| char::from(*b)).collect();
    let bytes = utf8.into_bytes();
    let accented: Vec<usize> = lines(&latin1)
        .iter()
        .enumerate()
        .filter(|(_, l)| l.iter().any(|b| *b >= 0x80))
        .map(|(i, _)| i + 1)
        .collect();
    assert!(accented.len() > 3);
    let p = problems(&bytes);
    let lines_named: Vec<usize> = p
        .iter()
        .filter(|x| x.kind == ProblemKind::NotLatin1)
        .map(|x| x.line.unwrap())
        .collect();
    assert_eq!(lines_named, accented, "{p}");
    assert!(p.iter().all(|x| x.kind == ProblemKind::NotLatin1), "{p}");
    assert!(p.0[0].message.contains("ISO-8859-1"));
}

#[test]
fn a_utf8_byte_order_mark_is_refused_on_line_one() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(sample(&spec(1)));
    let p = problems(&bytes);
    assert!(p.has(ProblemKind::NotLatin1, Some(1)), "{p}");
}

#[test]
fn control_characters_are_refused_with_their_line() {
    let mut at = 0;
    let bytes = edited(|l| {
        at = set(l, "S21.G00.30.002", "DU\tPONT");
    });
    let p = only(&bytes, ProblemKind::ControlCharacter, Some(at));
    assert!(p.message.contains("tabulation"), "{}", p.message);
    assert!(!p.message.contains("PONT"), "no personal data in a message");

    // Windows-1252's ’ (0x92) is no ISO-8859-1 character.
    let bytes = edited(|l| {
        at = line_of(l, "S10.G00.01.003");
        l[at - 1] = b"S10.G00.01.003,'L\x92ASSOCIATION'".to_vec();
    });
    let p = only(&bytes, ProblemKind::ControlCharacter, Some(at));
    assert!(p.message.contains("0x92"), "{}", p.message);

    // A lone carriage return inside a line.
    let bytes = edited(|l| {
        at = line_of(l, "S10.G00.01.006");
        l[at - 1] = b"S10.G00.01.006,'LY\rON'".to_vec();
    });
    only(&bytes, ProblemKind::ControlCharacter, Some(at));
}

#[test]
fn a_line_that_is_not_a_rubric_is_named() {
    for bad in [
        &b"nimporte quoi"[..],
        b"",
        b"S21.G00.30.002;'DUPONT'",
        b"S21.G00.30.002,DUPONT",
        b"S21.G00.30.002,'DUPONT",
        b"S21.G0.30.002,'DUPONT'",
        b"S21.G00.30.002,'DUPONT' ",
    ] {
        let at = 14;
        let mut l = lines(&sample(&spec(3)));
        l[at - 1] = bad.to_vec();
        let p = problems(&join(&l));
        assert!(p.has(ProblemKind::NotARubric, Some(at)), "{bad:?}: {p}");
        assert!(
            p.iter()
                .all(|x| x.kind != ProblemKind::NotARubric || x.line == Some(at)),
            "{p}"
        );
    }
    // A value may hold an apostrophe: it runs to the last one of the line.
    let bytes = edited(|l| {
        set(l, "S10.G00.01.003", "L'ASSOCIATION");
    });
    let dsn = Dsn::parse(&bytes).unwrap();
    assert_eq!(dsn.sender().name.as_deref(), Some("L'ASSOCIATION"));
}

#[test]
fn the_first_rubric_must_be_the_software_name() {
    let bytes = edited(|l| l.swap(0, 1));
    only(&bytes, ProblemKind::FirstRubric, Some(1));
}

#[test]
fn a_second_declaration_is_named_at_its_first_line() {
    let mut second = 0;
    let bytes = edited(|l| {
        let start = line_of(l, "S20.G00.05.001") - 1;
        let end = line_of(l, "S21.G00.06.001") - 1;
        let block: Vec<Vec<u8>> = l[start..end].to_vec();
        let after = line_of(l, "S90.G00.90.001") - 1;
        second = after + 1;
        for (i, r) in block.into_iter().enumerate() {
            l.insert(after + i, r);
        }
        fix_total(l);
    });
    let p = only(&bytes, ProblemKind::DeclarationCount, Some(second));
    assert!(p.message.contains("2"), "{}", p.message);
}

#[test]
fn a_file_without_declaration_is_refused() {
    let bytes = edited(|l| {
        l.retain(|r| !r.starts_with(b"S20.G00.05"));
        fix_total(l);
    });
    only(&bytes, ProblemKind::DeclarationCount, None);
}

#[test]
fn the_line_count_total_must_be_the_number_of_lines() {
    let mut at = 0;
    let bytes = edited(|l| {
        let n = l.len() + 1;
        at = set(l, "S90.G00.90.001", &n.to_string());
    });
    let p = only(&bytes, ProblemKind::LineCountTotal, Some(at));
    assert_eq!(at, lines(&bytes).len() - 1);
    assert!(
        p.message.contains(&format!("{} lignes", at + 1)),
        "{}",
        p.message
    );

    // A line added without updating the total.
    let bytes = edited(|l| {
        let i = line_of(l, "S21.G00.30.019");
        l.insert(i, b"S21.G00.30.020,'NTT123'".to_vec());
        at = line_of(l, "S90.G00.90.001");
    });
    only(&bytes, ProblemKind::LineCountTotal, Some(at));
}

#[test]
fn the_declaration_count_total_must_be_one() {
    let mut at = 0;
    let bytes = edited(|l| {
        at = set(l, "S90.G00.90.002", "2");
    });
    only(&bytes, ProblemKind::DeclarationCountTotal, Some(at));
}

#[test]
fn an_invalid_sender_siret_is_named_at_its_line() {
    let mut at = 0;
    // Key wrong: named at the NIC's line.
    let bytes = edited(|l| {
        at = set(l, "S10.G00.01.002", "00075");
    });
    let p = only(&bytes, ProblemKind::InvalidSiret, Some(at));
    assert!(p.message.contains("émetteur"), "{}", p.message);
    // A SIREN of 8 digits: named at the SIREN's line.
    let bytes = edited(|l| {
        at = set(l, "S10.G00.01.001", "73282932");
    });
    only(&bytes, ProblemKind::InvalidSiret, Some(at));
}

#[test]
fn an_invalid_declared_siret_is_named_at_its_line() {
    let mut at = 0;
    let bytes = edited(|l| {
        at = set(l, "S21.G00.11.001", "00084");
    });
    let p = only(&bytes, ProblemKind::InvalidSiret, Some(at));
    assert!(p.message.contains("établissement"), "{}", p.message);
    let bytes = edited(|l| {
        at = set(l, "S21.G00.06.001", "73282932X");
    });
    only(&bytes, ProblemKind::InvalidSiret, Some(at));
}

#[test]
fn a_malformed_month_is_named_at_its_line() {
    for bad in ["01132025", "15032025", "0103202", "2025-03", "01002025"] {
        let mut at = 0;
        let bytes = edited(|l| {
            at = set(l, "S20.G00.05.005", bad);
        });
        only(&bytes, ProblemKind::InvalidMonth, Some(at));
    }
}

#[test]
fn a_month_that_has_not_begun_is_named_at_its_line_and_the_others_pass() {
    // The sample declares March 2025.
    let bytes = sample(&spec(3));
    let dsn = Dsn::parse(&bytes).unwrap_or_else(|p| panic!("{p}"));
    let d = dsn.declaration();
    let at = line_of(&lines(&bytes), "S20.G00.05.005");
    assert_eq!(d.month_line, at);
    // Declared in its own month (ahead of its end) or later: nothing to say.
    for current in ["2025-03", "2025-04", "2026-01"] {
        assert_eq!(
            d.month_not_begun(current.parse().unwrap()),
            None,
            "{current}"
        );
    }
    // Declared in the month before, or years before: the month is typed wrong.
    for current in ["2025-02", "2024-12", "2019-03"] {
        let p = d
            .month_not_begun(current.parse().unwrap())
            .unwrap_or_else(|| panic!("{current}: March 2025 has not begun"));
        assert_eq!(p.kind, ProblemKind::MonthNotBegun);
        assert_eq!(p.code(), "month_not_begun");
        assert_eq!(p.line, Some(at));
    }
    let p = d.month_not_begun("2025-02".parse().unwrap()).unwrap();
    assert_eq!(
        p.to_string(),
        format!(
            "ligne {at} : mois principal déclaré (S20.G00.05.005) : mars 2025 n'a pas encore \
             commencé (nous sommes en février 2025) ; une DSN déclare la paie d'un mois \
             commencé, vérifiez le mois de la paie"
        )
    );
    // The scanner finds the same line.
    let summary = iea_dsn::Scanner::check_reader(&bytes[..]).unwrap().unwrap();
    assert_eq!(summary.declaration.month_line, at);
}

#[test]
fn a_malformed_pas_rate_is_named_at_its_line() {
    let mut messages = std::collections::HashSet::new();
    for bad in ["14", "7.5", "100.00", "7,50", ".50", "a.bc"] {
        let mut at = 0;
        let bytes = edited(|l| {
            at = set(l, "S21.G00.50.006", bad);
        });
        let p = only(&bytes, ProblemKind::InvalidPasRate, Some(at));
        // The same sentence whatever the value: a rate is personal data, never quoted.
        messages.insert(p.message);
    }
    assert_eq!(messages.len(), 1);
    for good in ["0.00", "7.50", "45.00"] {
        let bytes = edited(|l| {
            set(l, "S21.G00.50.006", good);
        });
        assert!(Dsn::parse(&bytes).is_ok(), "{good}");
    }
}

#[test]
fn test_or_real_must_be_01_or_02() {
    let mut at = 0;
    let bytes = edited(|l| {
        at = set(l, "S10.G00.00.005", "03");
    });
    only(&bytes, ProblemKind::InvalidValue, Some(at));
}

#[test]
fn a_missing_required_rubric_is_named() {
    let bytes = edited(|l| {
        l.retain(|r| !r.starts_with(b"S10.G00.00.006"));
        fix_total(l);
    });
    let p = only(&bytes, ProblemKind::MissingRubric, None);
    assert!(p.message.contains("S10.G00.00.006"));

    let mut at = 0;
    let bytes = edited(|l| {
        at = line_of(l, "S21.G00.30.001");
        l.remove(line_of(l, "S21.G00.30.002") - 1);
        fix_total(l);
    });
    only(&bytes, ProblemKind::MissingRubric, Some(at));
}

#[test]
fn a_payment_before_any_employee_is_misplaced() {
    let mut at = 0;
    let bytes = edited(|l| {
        at = line_of(l, "S21.G00.30.001");
        l.insert(at - 1, b"S21.G00.50.001,'31032025'".to_vec());
        fix_total(l);
    });
    only(&bytes, ProblemKind::MisplacedBlock, Some(at));
}

#[test]
fn every_problem_is_collected_in_line_order() {
    let mut expected = Vec::new();
    let bytes = edited(|l| {
        l[13] = b"garbage".to_vec();
        expected.push((ProblemKind::NotARubric, Some(14)));
        expected.push((
            ProblemKind::InvalidSiret,
            Some(set(l, "S10.G00.01.002", "00075")),
        ));
        expected.push((
            ProblemKind::InvalidMonth,
            Some(set(l, "S20.G00.05.005", "01132025")),
        ));
        expected.push((
            ProblemKind::InvalidPasRate,
            Some(set(l, "S21.G00.50.006", "7.5")),
        ));
        expected.push((
            ProblemKind::DeclarationCountTotal,
            Some(set(l, "S90.G00.90.002", "0")),
        ));
    });
    expected.sort_by_key(|(_, line)| *line);
    let p = problems(&bytes);
    let got: Vec<_> = p.iter().map(|x| (x.kind, x.line)).collect();
    assert_eq!(got, expected, "{p}");
    let text = p.to_string();
    assert_eq!(text.lines().count(), expected.len());
    assert!(text.starts_with("ligne 8 : "), "{text}");
}

#[test]
fn problem_codes_are_stable_distinct_snake_case() {
    let codes: std::collections::HashSet<_> = ProblemKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), ProblemKind::ALL.len());
    for c in &codes {
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
            "{c}"
        );
    }
    assert_eq!(ProblemKind::InvalidSiret.code(), "invalid_siret");
    assert_eq!(ProblemKind::EmptyFile.code(), "empty_file");
}

// ---- personal data ----

#[test]
fn debug_never_shows_a_nir_a_name_or_an_amount() {
    let dsn = Dsn::parse(&sample(&spec(20))).unwrap();
    let mut shown = format!("{dsn:?}");
    for e in dsn.employees() {
        shown.push_str(&format!("{e:?}"));
        for p in &e.payments {
            shown.push_str(&format!("{p:?}"));
        }
    }
    for r in dsn.rubrics() {
        shown.push_str(&format!("{r:?}"));
    }
    for e in dsn.employees() {
        let p = &e.payments[0];
        for secret in [
            e.nir.clone().unwrap(),
            e.nom.clone(),
            e.prenoms.clone(),
            p.amount_subject.clone().unwrap(),
            p.pas_amount.clone().unwrap(),
        ] {
            // "0.00" (rate type 99) is also in every rubric code ("S10.G00.00.001").
            if secret == "0.00" {
                continue;
            }
            assert!(
                !shown.contains(&secret),
                "Debug shows personal data: {secret} in {shown}"
            );
        }
    }
    assert!(shown.contains("employees: 20"), "{shown}");
}

#[test]
fn block_at_gives_the_rubrics_of_a_payment() {
    let dsn = Dsn::parse(&sample(&spec(3))).unwrap();
    let p = &dsn.employees()[1].payments[0];
    let block = dsn.block_at(p.line);
    assert_eq!(block[0].code, "S21.G00.50.001");
    assert!(block.iter().all(|r| r.block() == "S21.G00.50"));
    assert_eq!(
        block
            .iter()
            .find(|r| r.field() == 9)
            .map(|r| r.value.clone()),
        p.pas_amount
    );
    assert!(dsn.block_at(0).is_empty());
    let amount = dsn.rubric_in(p.line, 9).unwrap();
    assert_eq!(amount.code, "S21.G00.50.009");
    assert_eq!(Some(&amount.value), p.pas_amount.as_ref());
    assert_eq!(
        amount.line,
        p.line + block.iter().position(|r| r.field() == 9).unwrap()
    );
    assert!(dsn.rubric_in(p.line, 99).is_none());
}
