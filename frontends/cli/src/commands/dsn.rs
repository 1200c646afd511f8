//! `iea dsn`: DSN files checked and written locally. Nothing here talks to the
//! orchestrator or sends anything: `check` reads the file and names each problem with its
//! line, `sample` writes a valid file (mode 0600: it holds made-up personal data shaped
//! like real ones).

use std::path::Path;

use iea_dsn::{DeclarationKind, Month, SampleSpec, Scanner, TestOrReal};
use serde_json::json;

use super::Ctx;
use crate::args::{DsnCommand, DsnKindArg, DsnSampleArgs};
use crate::output::{CliError, CliResult, print_json};

/// Exit code of `check` when the file has problems (as `credentials verify` when a
/// verification is not valid); other failures (unreadable file) exit 1.
pub const EXIT_INVALID: u8 = 3;

/// Most employees `sample` writes (a 100,000-employee file is already about 40 MB).
const MAX_EMPLOYEES: usize = 100_000;

pub fn run(ctx: &Ctx, cmd: DsnCommand) -> CliResult {
    match cmd {
        DsnCommand::Check { file } => check(ctx, &file),
        DsnCommand::Sample(args) => write_sample(ctx, args),
    }
}

fn check(ctx: &Ctx, file: &Path) -> CliResult {
    let read_failed = |e: std::io::Error| {
        CliError::new(
            "read_failed",
            format!("Le fichier {} n'a pas pu être lu : {e}", file.display()),
        )
    };
    // Read in chunks: a file of any size is checked in bounded memory.
    let verdict = Scanner::check_reader(std::fs::File::open(file).map_err(read_failed)?)
        .map_err(read_failed)?;
    match verdict {
        Ok(summary) => {
            let d = &summary.declaration;
            if ctx.json {
                print_json(&json!({
                    "ok": true,
                    "problems": [],
                    "declaration": {
                        "siret": d.siret(),
                        "month": d.month.to_string(),
                        "nature": d.nature,
                        "kind": d.kind.name(),
                        "fraction": d.fraction,
                        "test_or_real": d.test_or_real.name(),
                        "employees": summary.employees,
                    },
                }));
            } else {
                say!(
                    "Fichier DSN conforme aux contrôles avant envoi : {}",
                    file.display()
                );
                say!(
                    "  SIRET {} · mois {} · {} · {} · fraction {} · {} salarié(s) · {} lignes",
                    d.siret(),
                    d.month,
                    kind_fr(&d.kind),
                    match d.test_or_real {
                        TestOrReal::Test => "essai",
                        TestOrReal::Real => "réel",
                    },
                    d.fraction,
                    summary.employees,
                    summary.lines,
                );
                say!("Rien n'a été envoyé.");
            }
            Ok(())
        }
        Err(problems) => {
            if ctx.json {
                let list: Vec<_> = problems
                    .iter()
                    .map(|p| json!({"line": p.line, "code": p.code(), "message": p.message}))
                    .collect();
                print_json(&json!({"ok": false, "problems": list, "declaration": null}));
            } else {
                say!(
                    "Fichier DSN refusé avant envoi, {} problème(s) : {}",
                    problems.len(),
                    file.display()
                );
                for p in &problems {
                    say!("  {p}");
                }
                say!("Rien n'a été envoyé.");
            }
            // Printed above, on stdout, each flushed: only the exit code is left to give.
            std::process::exit(i32::from(EXIT_INVALID))
        }
    }
}

fn kind_fr(kind: &DeclarationKind) -> String {
    match kind {
        DeclarationKind::Normal => "déclaration normale".to_owned(),
        DeclarationKind::CancelsAndReplaces => "annule et remplace".to_owned(),
        DeclarationKind::Other(code) => format!("type {code}"),
    }
}

fn write_sample(ctx: &Ctx, args: DsnSampleArgs) -> CliResult {
    let siret = args.siret.trim();
    if siret.len() != 14
        || !siret.bytes().all(|b| b.is_ascii_digit())
        || !iea_dsn::siret_key_is_valid(siret)
    {
        return Err(CliError::new(
            "invalid_siret",
            format!(
                "SIRET « {} » invalide : 14 chiffres attendus, dont la clé de contrôle est \
                 juste (SIREN puis NIC, sans espace)",
                args.siret
            ),
        ));
    }
    let month: Month = args
        .month
        .parse()
        .map_err(|e: iea_dsn::MonthError| CliError::new("invalid_month", format!("{e}.")))?;
    if args.employees > MAX_EMPLOYEES {
        return Err(CliError::new(
            "invalid_employees",
            format!("Au plus {MAX_EMPLOYEES} salariés par fichier d'exemple."),
        ));
    }
    let spec = SampleSpec {
        siret: siret.to_owned(),
        month,
        employees: args.employees,
        test_or_real: if args.test {
            TestOrReal::Test
        } else {
            TestOrReal::Real
        },
        kind: match args.kind {
            DsnKindArg::Normal => DeclarationKind::Normal,
            DsnKindArg::CancelsAndReplaces => DeclarationKind::CancelsAndReplaces,
        },
        seed: args.seed,
    };
    let bytes = iea_dsn::sample(&spec);
    iea_runtime::pki::write_file(&args.out, &bytes, true).map_err(|e| {
        CliError::new(
            "write_failed",
            format!(
                "Le fichier {} n'a pas pu être écrit : {e:#}",
                args.out.display()
            ),
        )
    })?;
    if ctx.json {
        print_json(&json!({
            "file": args.out,
            "bytes": bytes.len(),
            "siret": spec.siret,
            "month": month.to_string(),
            "employees": spec.employees,
            "test_or_real": spec.test_or_real.name(),
            "kind": spec.kind.name(),
        }));
    } else {
        say!(
            "Fichier DSN d'exemple écrit : {} ({} salarié(s), mois {}, {}, {} octets)",
            args.out.display(),
            spec.employees,
            month,
            if args.test { "essai" } else { "réel" },
            bytes.len()
        );
    }
    Ok(())
}
