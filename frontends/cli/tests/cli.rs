//! The `iea` binary as a person or a script runs it.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::{Stack, iea, interrupt, wait_for_stack};
use iea_mock_net_entreprises::fixtures::DUPONT;

#[test]
fn stack_up_then_status_reports_every_component_healthy_and_ctrl_c_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = iea(dir.path())
        .args(["stack", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    wait_for_stack(dir.path(), &mut stack);

    let out = iea(dir.path()).args(["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "healthy after {:?}",
        started.elapsed()
    );
    assert_eq!(v["orchestrator"]["healthy"], true, "{v}");
    let agents = v["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 4, "{v}");
    assert!(agents.iter().all(|a| a["healthy"] == true), "{v}");
    let version = &v["orchestrator"]["version"];
    assert_eq!(version, env!("CARGO_PKG_VERSION"), "{v}");
    assert!(
        agents
            .iter()
            .all(|a| &a["version"] == version && a["version_mismatch"] == false),
        "{v}"
    );

    assert!(interrupt(&stack));
    let status = stack.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C must stop the stack cleanly");
    assert!(
        !dir.path().join("stack.json").exists(),
        "stack.json is removed on stop"
    );
}

#[test]
fn a_failure_prints_a_stable_code_and_a_french_message_in_json_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = iea(dir.path()).args(["status", "--json"]).output().unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "stack_not_found", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("iea stack up"),
        "{v}"
    );

    let human = iea(dir.path()).args(["status"]).output().unwrap();
    assert!(!human.status.success());
    assert!(String::from_utf8_lossy(&human.stderr).starts_with("Erreur : "));
}

#[test]
fn certs_init_creates_the_certificates_once() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = iea(dir.path())
        .args(["certs", "init"])
        .arg(&certs)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["created"], true);
    assert!(certs.join("auth-client.pem").exists());
    let again = iea(dir.path())
        .args(["certs", "init"])
        .arg(&certs)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["created"], false);
}

/// What `cli.rs` asks of the shared stack.
trait Run {
    /// Runs `iea ARGS --json` with `stdin`; (exit code, JSON on stdout).
    fn run(&self, args: &[&str], stdin: &str) -> (i32, serde_json::Value);
    /// Runs `iea ARGS` for a person; (exit code, what it printed).
    fn run_human(&self, args: &[&str]) -> (i32, String);
}

impl Run for Stack {
    fn run(&self, args: &[&str], stdin: &str) -> (i32, serde_json::Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, out, _) = self.raw(&all, stdin);
        let json = serde_json::from_str(&out).unwrap_or(serde_json::Value::String(out));
        (code, json)
    }

    fn run_human(&self, args: &[&str]) -> (i32, String) {
        let (code, out, _) = self.raw(args, "");
        (code, out)
    }
}

#[test]
fn a_person_sets_and_verifies_net_entreprises_credentials_from_the_command_line() {
    let s = Stack::start();
    let (code, v) = s.run(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{v}");
    let (code, text) = s.run_human(&["credentials", "verify", "--all"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("rien à vérifier"), "{text}");
    let (code, v) = s.run(&["users", "mode", "reseau"], "");
    assert_eq!((code, &v["mode"]), (0, &serde_json::json!("reseau")), "{v}");
    let (code, v) = s.run(
        &["users", "add", "Dupont", "--password-stdin"],
        "Mot-de-passe-Dupont\n",
    );
    assert_eq!(code, 0, "{v}");

    // Standard input: the account's Impact emploi password, then the Net-entreprises one.
    // The SIRET typed with spaces: normalised, not refused.
    let siret = DUPONT.siret;
    let spaced_siret = format!(
        "{} {} {} {}",
        &siret[..3],
        &siret[3..6],
        &siret[6..9],
        &siret[9..]
    );
    let (code, v) = s.run(
        &[
            "credentials",
            "set",
            "--user",
            "Dupont",
            "--siret",
            &spaced_siret,
            "--nom",
            DUPONT.nom,
            "--prenom",
            DUPONT.prenom,
            "--password-stdin",
        ],
        &format!("Mot-de-passe-Dupont\n{}\n", DUPONT.password),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["siret"], DUPONT.siret);
    assert!(!v.to_string().contains(DUPONT.password));

    let (code, v) = s.run(&["credentials", "verify", "--user", "Dupont"], "");
    assert_eq!(
        (code, &v["outcome"]),
        (0, &serde_json::json!("valid")),
        "{v}"
    );
    let (code, text) = s.run_human(&["credentials", "verify", "--all"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("✔ Dupont"), "{text}");
    assert!(
        text.ends_with("1 compte vérifié : identifiants valides.\n"),
        "{text}"
    );

    // A wrong password: the verification runs, says so, and exits 3.
    s.run(
        &[
            "credentials",
            "set",
            "--user",
            "Dupont",
            "--siret",
            DUPONT.siret,
            "--nom",
            DUPONT.nom,
            "--prenom",
            DUPONT.prenom,
            "--password-stdin",
        ],
        "Mot-de-passe-Dupont\nFaux\n",
    );
    let (code, v) = s.run(&["credentials", "verify", "--all"], "");
    assert_eq!(code, 3, "{v}");
    let dupont = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"] == "Dupont")
        .unwrap();
    assert_eq!(dupont["outcome"], "invalid_credentials", "{v}");

    let (code, v) = s.run(&["credentials", "show", "--all"], "");
    assert_eq!(code, 0);
    assert!(
        !v.to_string().contains("Faux"),
        "show never prints a password: {v}"
    );

    // Bad input: named, exit 1, the JSON error shape.
    let (code, v) = s.run(
        &[
            "credentials",
            "set",
            "--user",
            "Dupont",
            "--siret",
            "78214563500011",
            "--nom",
            DUPONT.nom,
            "--prenom",
            DUPONT.prenom,
            "--password-stdin",
        ],
        &format!("Mot-de-passe-Dupont\n{}\n", DUPONT.password),
    );
    assert_eq!(code, 1);
    assert_eq!(v["error"]["code"], "invalid_input", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("SIRET"),
        "{v}"
    );
}

#[test]
fn status_follows_assistance_mode_switched_from_the_command_line() {
    let s = Stack::start();
    s.run(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    let (code, v) = s.run(&["assistance", "on"], "");
    assert_eq!(code, 0, "{v}");
    assert!(v["warning"].as_str().unwrap().contains("scripts"), "{v}");
    let (_, v) = s.run(&["status"], "");
    assert_eq!(v["indicator"], "assistance", "{v}");
    let (code, v) = s.run(&["assistance", "off", "--daily-password", "FAUX000000"], "");
    assert_eq!(
        (code, &v["error"]["code"]),
        (1, &serde_json::json!("wrong_daily_password")),
        "{v}"
    );
    let (code, v) = s.run(&["connection", "test"], "");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["all_reachable"], true, "{v}");
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["step"] == "ok" && r["latency_ms"].is_number()),
        "{v}"
    );
}

/// "Changer de base de données…": an installation used on SQLite is copied to PostgreSQL
/// and goes on there with the same accounts, sessions and credentials, while its SQLite
/// file stays byte for byte as it was. Needs a PostgreSQL server (`IEA_TEST_DATABASE_URL`,
/// which `.ci/run` provides).
#[test]
fn an_installation_moves_from_sqlite_to_postgres_and_goes_on_there() {
    let Some(server) = std::env::var("IEA_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        // `.ci/run` runs this test again with a server.
        eprintln!("skipped: IEA_TEST_DATABASE_URL names no PostgreSQL server");
        return;
    };
    let mut s = Stack::start();
    let dir = s.dir.path().to_owned();
    let (code, v) = s.run(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    assert_eq!(code, 0, "{v}");
    s.run(&["users", "mode", "reseau"], "");
    let (code, v) = s.run(
        &["users", "add", "Dupont", "--password-stdin"],
        "Mot-de-passe-Dupont\n",
    );
    assert_eq!(code, 0, "{v}");
    let set = [
        "credentials",
        "set",
        "--user",
        "Dupont",
        "--siret",
        DUPONT.siret,
        "--nom",
        DUPONT.nom,
        "--prenom",
        DUPONT.prenom,
        "--password-stdin",
    ];
    let (code, v) = s.run(&set, &format!("Mot-de-passe-Dupont\n{}\n", DUPONT.password));
    assert_eq!(code, 0, "{v}");
    let (code, v) = s.run(&["credentials", "verify", "--user", "Dupont"], "");
    assert_eq!(
        (code, &v["outcome"]),
        (0, &serde_json::json!("valid")),
        "{v}"
    );
    let (_, before) = s.run(&["credentials", "show", "--all"], "");

    // Stopped, then copied.
    assert!(interrupt(&s.child));
    assert!(s.child.wait().unwrap().success());
    let sqlite = std::fs::read(dir.join("iea.db")).unwrap();
    let url = iea_orchestrator::store::create_database_for_tests(&server).unwrap();
    let out = iea(&dir)
        .args(["database", "migrate", "--to", &url, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!(v["migration"]["rows"]["users"], 2, "{v}");
    assert_eq!(v["migration"]["rows"]["credentials"], 1, "{v}");
    assert!(!v.to_string().contains(DUPONT.password));
    // A second copy into the same database is refused: it is no longer empty.
    let again = iea(&dir)
        .args(["database", "migrate", "--to", &url, "--json"])
        .output()
        .unwrap();
    assert!(!again.status.success());

    // The stack starts on PostgreSQL by itself, and the session of before still holds.
    assert!(
        !dir.join("stack.json").exists(),
        "a stopped stack removes it"
    );
    s.child = iea(&dir)
        .args(["stack", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_stack(&dir, &mut s.child);
    let (code, v) = s.run(&["database", "show"], "");
    assert_eq!(
        (code, &v["database"]["engine"]),
        (0, &serde_json::json!("postgres")),
        "{v}"
    );
    let (code, v) = s.run(&["whoami"], "");
    assert_eq!(code, 0, "{v}");
    let (_, after) = s.run(&["credentials", "show", "--all"], "");
    assert_eq!(
        after, before,
        "the same accounts, identities and last verifications"
    );
    let (code, v) = s.run(&["credentials", "verify", "--user", "Dupont"], "");
    assert_eq!(
        (code, &v["outcome"]),
        (0, &serde_json::json!("valid")),
        "{v}"
    );
    let (code, v) = s.run(&["users", "list"], "");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v.to_string().matches("\"name\"").count(), 2, "{v}");
    // Stopped (the data directory kept for the last look).
    let _kept = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    assert_eq!(
        std::fs::read(dir.join("iea.db")).unwrap(),
        sqlite,
        "the SQLite file is unchanged"
    );
}
