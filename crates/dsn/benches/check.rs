//! The check the orchestrator runs on every uploaded file: `iea_dsn::Scanner` fed in
//! chunks of 64 KiB (as `Scanner::check_reader`), then `finish`. Three files: (a) a sample
//! of 10 employees (about 5 KB, scanned many times per run), (b) one of 10,000 employees,
//! (c) a bad file with many problems (a sample of 1,000 employees whose every tenth line
//! is broken in turn: UTF-8 accents, a control character, not a rubric, a bad PAS rate).
//! For each: the median and best of several runs, in ns per byte and bytes/s.
//!
//! `cargo bench -p iea-dsn --bench check` (release build). `IEA_BENCH_RUNS` changes the
//! number of runs (default 15), `IEA_BENCH_SMALL_REPEAT` how many times the small file
//! is scanned per run (default 2,000). Under `valgrind --tool=callgrind`, use
//! `IEA_BENCH_RUNS=1 IEA_BENCH_SMALL_REPEAT=200` (200 small files, as in the profile
//! that motivated it), `IEA_BENCH_ONLY=small|big|bad` to run one file and
//! `--toggle-collect='check::scan'` to count the scans alone (not the samples' writing).

use std::time::{Duration, Instant};

use iea_dsn::{DeclarationKind, SampleSpec, Scanner, TestOrReal, sample};

const SIRET: &str = "73282932000074";
const CHUNK: usize = 64 * 1024;

fn spec(employees: usize) -> SampleSpec {
    SampleSpec {
        siret: SIRET.into(),
        month: "2026-11".parse().expect("a month"),
        employees,
        test_or_real: TestOrReal::Real,
        kind: DeclarationKind::Normal,
        seed: 11,
    }
}

/// A sample of 1,000 employees whose every tenth line is broken, four ways in turn.
fn bad_file() -> Vec<u8> {
    let good = sample(&spec(1_000));
    let mut out = Vec::with_capacity(good.len() + good.len() / 10);
    for (i, line) in good.split_inclusive(|b| *b == b'\n').enumerate() {
        if i % 10 != 9 {
            out.extend_from_slice(line);
            continue;
        }
        match (i / 10) % 4 {
            0 => out.extend_from_slice("S21.G00.30.002,'MÉNARD'\n".as_bytes()),
            1 => out.extend_from_slice(b"S21.G00.30.004,'A\tB'\n"),
            2 => out.extend_from_slice(b"pas une rubrique\n"),
            _ => out.extend_from_slice(b"S21.G00.50.006,'7,5'\n"),
        }
    }
    out
}

/// Scans `bytes` as the orchestrator does; true when the file passed. Not inlined, so
/// that callgrind counts it alone: `--toggle-collect='check::scan'`.
#[inline(never)]
fn scan(bytes: &[u8]) -> bool {
    let mut scanner = Scanner::new();
    for c in bytes.chunks(CHUNK) {
        scanner.feed(c);
    }
    std::hint::black_box(scanner.finish()).is_ok()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `repeat` scans of `bytes` per run, `runs` times; prints the figures.
fn measure(name: &str, bytes: &[u8], repeat: usize, runs: usize, ok: bool) {
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        for _ in 0..repeat {
            assert_eq!(scan(std::hint::black_box(bytes)), ok, "{name}");
        }
        times.push(started.elapsed());
    }
    times.sort();
    let total = (bytes.len() * repeat) as f64;
    let ns_per_byte = |d: Duration| d.as_secs_f64() * 1e9 / total;
    let (best, median) = (times[0], times[times.len() / 2]);
    println!(
        "check {name}: {} bytes x {repeat} per run, {runs} runs: median {:.2} ns/byte \
         ({:.1} MB/s, {:.0} bytes/s), best {:.2} ns/byte ({:.1} MB/s)",
        bytes.len(),
        ns_per_byte(median),
        total / median.as_secs_f64() / 1e6,
        total / median.as_secs_f64(),
        ns_per_byte(best),
        total / best.as_secs_f64() / 1e6,
    );
}

fn main() {
    let runs = env("IEA_BENCH_RUNS", 15).max(1);
    let small_repeat = env("IEA_BENCH_SMALL_REPEAT", 2_000).max(1);
    let only = std::env::var("IEA_BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only == name;
    if run("small") {
        let small = sample(&spec(10));
        measure("10 employees", &small, small_repeat, runs, true);
    }
    if run("big") {
        let big = sample(&spec(10_000));
        measure("10,000 employees", &big, 1, runs, true);
    }
    if run("bad") {
        let bad = bad_file();
        measure(
            "bad file (1,000 employees, 1 line in 10 broken)",
            &bad,
            1,
            runs,
            false,
        );
    }
}
