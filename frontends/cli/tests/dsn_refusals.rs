//! A large bad file, checked with `iea dsn check` and deposited with `iea dsn deposit`
//! through a running stack: the first problems listed, one French sentence counting the
//! others, the exit code of a refused file (3 for both commands), nothing recorded nor
//! sent; a deposit that fails for another reason (orchestrator unreachable, file
//! unreadable) still exits 1. On SQLite, or on PostgreSQL when `IEA_TEST_DATABASE_URL`
//! names a server.

use iea_stack_testkit::{ChildOptions, ChildStack, test_database_url};

/// The demonstration declarant's SIRET (`iea_stack::DEMO_DECLARANT`).
const DEMO_SIRET: &str = "73282932000074";
/// Bad lines appended to a valid file.
const BAD_LINES: usize = 100_000;
/// Exit code of a file `iea dsn check` refuses, and of `iea dsn deposit` of a file the
/// orchestrator refuses for its problems.
const EXIT_INVALID: i32 = 3;
/// Exit code of a command that fails (orchestrator unreachable, file unreadable).
const EXIT_ERROR: i32 = 1;

fn deposits_sent(s: &ChildStack) -> u64 {
    iea_runtime::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats = rt.block_on(s.mock("net-entreprises").get("/stats"));
    stats["services"]["/deposer-dsn/1.0/"]["requests"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn a_file_with_a_hundred_thousand_bad_lines_is_refused_with_its_first_problems_and_a_count() {
    let s = ChildStack::start(
        env!("CARGO_BIN_EXE_iea"),
        ChildOptions {
            demo: true,
            database: test_database_url(),
            ..Default::default()
        },
    );
    let (code, out, err) = s.raw(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let file = s.dir.path().join("DSN_trop_de_lignes.dsn");
    let (code, out, err) = s.raw(
        &[
            "dsn",
            "sample",
            "--siret",
            DEMO_SIRET,
            "--month",
            "2026-10",
            "--employees",
            "1000",
            "--out",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    let mut bytes = std::fs::read(&file).unwrap();
    let lines = bytes.iter().filter(|b| **b == b'\n').count();
    for i in 0..BAD_LINES {
        bytes.extend_from_slice(format!("ligne de trop {i}\n").as_bytes());
    }
    std::fs::write(&file, &bytes).unwrap();
    let path = file.to_str().unwrap();
    // One problem per bad line, and the wrong line total S90.G00.90.001 gives.
    let total = BAD_LINES + 1;
    let sent_before = deposits_sent(&s);

    // Checked here: the first 100 listed, the others counted.
    let (code, out, err) = s.raw(&["dsn", "check", path], "");
    assert_eq!(code, EXIT_INVALID, "{out}{err}");
    assert!(
        out.contains("refusé avant envoi, 100\u{202f}001 problèmes"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  ligne {} : S90.G00.90.001", lines - 1)),
        "{out}"
    );
    assert!(
        out.contains(&format!("  ligne {} : code", lines + 99)),
        "{out}"
    );
    assert!(!out.contains(&format!("ligne {} :", lines + 100)), "{out}");
    assert!(
        out.contains("  … et 99\u{202f}901 autres problèmes (seuls les 100 premiers sont listés).\nRien n'a été envoyé."),
        "{out}"
    );
    let (code, out, err) = s.raw(&["dsn", "check", path, "--json"], "");
    assert_eq!(code, EXIT_INVALID, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 100);
    assert_eq!(v["problems"][0]["code"], "line_count_total");
    assert_eq!(v["problems"][1]["line"], lines + 1);
    assert_eq!(v["omitted"], total - 100);
    assert_eq!(
        v["omitted_message"],
        "… et 99\u{202f}901 autres problèmes (seuls les 100 premiers sont listés)."
    );

    // Deposited: the orchestrator refuses it in French, its first problems and a count,
    // instead of an answer too large for gRPC (« Une erreur inattendue est survenue »).
    let (code, out, err) = s.raw(&["dsn", "deposit", path], "");
    assert_eq!(code, EXIT_INVALID, "{out}{err}");
    assert_eq!(
        deposits_sent(&s),
        sent_before,
        "nothing reached Net-entreprises"
    );
    assert!(
        err.contains("Le fichier n'a pas été déposé : il ne respecte pas la norme DSN."),
        "{err}"
    );
    assert!(
        err.contains(&format!("\nligne {} : S90.G00.90.001", lines - 1)),
        "{err}"
    );
    assert!(
        err.contains(&format!("\nligne {} : code", lines + 1)),
        "{err}"
    );
    let last = err.trim_end().lines().last().unwrap();
    let listed: usize = last
        .split("seuls les ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((10..100).contains(&listed), "{err}");
    // Every problem not listed is counted: 100,001 in all.
    assert_eq!(
        last,
        format!(
            "… et {} autres problèmes (seuls les {listed} premiers sont listés).",
            iea_dsn::group_thousands(total - listed)
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!("\nligne {} : code", lines + listed - 1)),
        "{err}"
    );
    assert!(
        !err.contains(&format!("ligne {} :", lines + listed)),
        "{err}"
    );
    for no_wait in [false, true] {
        let mut args = vec!["dsn", "deposit", path, "--json"];
        if no_wait {
            args.push("--no-wait");
        }
        let (code, out, err) = s.raw(&args, "");
        assert_eq!(code, EXIT_INVALID, "{args:?}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["error"]["code"], "bad_dsn_file", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.ends_with(last), "{message}");
        assert_eq!(
            deposits_sent(&s),
            sent_before,
            "nothing reached Net-entreprises"
        );
    }

    // Real failures still exit 1: a file that cannot be read...
    let missing = s.dir.path().join("absent.dsn");
    let (code, out, err) = s.raw(&["dsn", "deposit", missing.to_str().unwrap(), "--json"], "");
    assert_eq!(code, EXIT_ERROR, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "read_failed", "{v}");
    // (said in French to a person, as `check` says it: a folder given for a file)
    let folder = s.dir.path().to_str().unwrap();
    for command in ["check", "deposit"] {
        let (code, out, err) = s.raw(&["dsn", command, folder], "");
        assert_eq!(code, EXIT_ERROR, "{command}: {out}{err}");
        assert!(
            err.contains(&format!(
                "Le fichier {folder} n'a pas pu être lu : c'est un répertoire"
            )),
            "{command}: {err}"
        );
    }
    // ...and an orchestrator that does not answer (the stack's file and session, its
    // address a closed port).
    let elsewhere = tempfile::tempdir().unwrap();
    let mut stack: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.path().join("stack.json")).unwrap())
            .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    stack["orchestrator"] = format!("127.0.0.1:{}", closed.local_addr().unwrap().port()).into();
    drop(closed);
    std::fs::write(
        elsewhere.path().join("stack.json"),
        serde_json::to_vec(&stack).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        s.dir.path().join("session.json"),
        elsewhere.path().join("session.json"),
    )
    .unwrap();
    let out = iea_stack_testkit::iea_command(env!("CARGO_BIN_EXE_iea"), elsewhere.path())
        .args(["dsn", "deposit", path, "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_ERROR), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["error"]["code"], "unavailable", "{v}");

    // Nothing recorded, stored nor sent.
    let (code, out, err) = s.raw(&["dsn", "list", "--json"], "");
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deposits"].as_array().map(Vec::len), Some(0), "{v}");
    let stored: Vec<_> = std::fs::read_dir(s.dir.path().join("dsn/store"))
        .unwrap()
        .collect();
    assert!(stored.is_empty(), "{stored:?}");
    assert_eq!(deposits_sent(&s), sent_before);
}
