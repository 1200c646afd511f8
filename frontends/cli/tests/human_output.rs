//! What a person reads from `iea`: times in French words and Paris time, never RFC 3339,
//! while `--json` keeps RFC 3339 UTC for programs (issue 15); French words for states; and
//! an address beyond the limits refused without being saved.

use std::process::Stdio;
use std::time::Duration;

use iea_mock_net_entreprises::fixtures::DUPONT;
use serde_json::Value;

mod common;

use common::{Stack, iea};

/// What `human_output.rs` asks of the shared stack.
trait Person {
    fn human(&self, args: &[&str], stdin: &str) -> String;
    fn json(&self, args: &[&str], stdin: &str) -> Value;
}

impl Person for Stack {
    /// `iea ARGS` for a person: its output, after checking it succeeded and holds no
    /// RFC 3339 timestamp, on standard output or standard error.
    fn human(&self, args: &[&str], stdin: &str) -> String {
        let (code, out, err) = self.raw(args, stdin);
        assert_eq!(code, 0, "iea {args:?}: {out}{err}");
        for text in [&out, &err] {
            assert_eq!(
                rfc3339_in(text),
                None,
                "iea {args:?} shows a person an RFC 3339 time: {text}"
            );
        }
        out
    }

    /// `iea ARGS --json`: its JSON, after checking it succeeded.
    fn json(&self, args: &[&str], stdin: &str) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, out, err) = self.raw(&all, stdin);
        assert_eq!(code, 0, "iea {all:?}: {out}{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("iea {all:?}: {e}: {out}"))
    }
}

/// The first `YYYY-MM-DDTHH:MM` in `text` (the shape of every RFC 3339 timestamp).
fn rfc3339_in(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd";
    (0..b.len().saturating_sub(shape.len() - 1)).find_map(|i| {
        let fits = shape.iter().enumerate().all(|(k, s)| match s {
            b'd' => b[i + k].is_ascii_digit(),
            c => b[i + k] == *c,
        });
        fits.then(|| &text[i..i + shape.len()])
    })
}

/// An RFC 3339 UTC time from JSON, as a person reads it.
fn in_words(v: &Value) -> String {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert!(text.ends_with('Z'), "JSON times are UTC: {text}");
    let at: jiff::Timestamp = text.parse().unwrap();
    iea_fr_time::date_time(at)
}

/// `read()` between two `status --json` that agree on `since`; (that since in words, what
/// `read` returned).
fn settled(s: &Stack, read: impl Fn() -> String) -> (String, String) {
    for _ in 0..20 {
        let before = s.json(&["status"], "")["since"].clone();
        let text = read();
        let after = s.json(&["status"], "")["since"].clone();
        if before == after {
            return (in_words(&after), text);
        }
    }
    panic!("the status kept changing");
}

/// The first line `iea status --watch` prints (the current state), then the watch is
/// stopped.
fn first_watch_line(s: &Stack) -> String {
    use std::io::BufRead;
    let mut watch = iea(s.dir.path())
        .args(["status", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10));
    let _ = watch.kill();
    let _ = watch.wait();
    line.expect("status --watch prints the current state first")
}

#[test]
fn the_rfc3339_shape_is_recognised() {
    assert_eq!(
        rfc3339_in("depuis 2026-12-01T10:20:04Z."),
        Some("2026-12-01T10:20")
    );
    assert_eq!(rfc3339_in("le 1er décembre 2026 à 11 h 20"), None);
    assert_eq!(rfc3339_in("2026-12-01 10:20"), None);
}

#[test]
fn people_read_times_in_french_words_and_programs_in_rfc3339() {
    let s = Stack::start();

    // Login: the session's end in words, the JSON in RFC 3339.
    let login = ["login", "--user", "Administrateur", "--password-stdin"];
    let text = s.human(&login, &s.admin_password());
    assert!(
        text.starts_with("Session ouverte pour « Administrateur », valable jusqu'au "),
        "{text}"
    );
    assert!(text.contains(" à ") && text.contains(" h "), "{text}");
    let v = s.json(&login, &s.admin_password());
    assert!(
        rfc3339_in(v["expires_at"].as_str().unwrap()).is_some(),
        "{v}"
    );

    // Status: "since" in words, the very instant the JSON gives (read again until no
    // authentication changed the state in between).
    let (since, text) = settled(&s, || s.human(&["status"], ""));
    assert!(text.contains(&format!(", depuis le {since}\n")), "{text}");
    // The watch's first line is the current state, its time in words too.
    let (since, line) = settled(&s, || first_watch_line(&s));
    assert!(line.starts_with(&format!("{since} — ")), "{line}");
    assert_eq!(rfc3339_in(&line), None, "{line}");
    assert!(
        text.contains("Service d'authentification Impact emploi (auth-client) : en service"),
        "{text}"
    );
    // Every agent is named in words, its program's name in brackets.
    for agent in [
        "auth-client",
        "update-client",
        "credential-verifier",
        "deposit-agent",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("Service d") && l.contains(&format!(" ({agent}) : "))),
            "{agent}: {text}"
        );
    }

    // Connection test: when it was made.
    let v = s.json(&["connection", "test"], "");
    assert!(
        rfc3339_in(v["tested_at"].as_str().unwrap()).is_some(),
        "{v}"
    );
    let text = s.human(&["connection", "test"], "");
    assert!(text.contains("Test effectué le "), "{text}");

    // Credentials: the last verification.
    s.json(
        &[
            "credentials",
            "set",
            "--user",
            "Administrateur",
            "--siret",
            DUPONT.siret,
            "--nom",
            DUPONT.nom,
            "--prenom",
            DUPONT.prenom,
            "--password-stdin",
        ],
        &format!("{}\n{}\n", s.admin_password().trim_end(), DUPONT.password),
    );
    s.json(&["credentials", "verify", "--user", "Administrateur"], "");
    let v = s.json(&["credentials", "show", "--user", "Administrateur"], "");
    let verified = in_words(&v["last_verification"]["verified_at"]);
    let text = s.human(&["credentials", "show", "--user", "Administrateur"], "");
    assert!(
        text.contains(&format!("dernière vérification le {verified} : ")),
        "{text}"
    );

    // Updates: the publication day, then the maintenance scripts in French.
    let v = s.json(&["update", "check"], "");
    let release = &v["available"][0];
    assert!(
        rfc3339_in(release["published_at"].as_str().unwrap()).is_some(),
        "{v}"
    );
    let text = s.human(&["update", "check"], "");
    assert!(text.contains(" (publiée le "), "{text}");
    // In assistance mode the scripts wait to be applied by hand.
    s.human(&["assistance", "on"], "");
    s.human(&["update", "apply", "--yes"], "");
    let text = s.human(&["update", "scripts"], "");
    assert!(text.contains(" : en attente"), "{text}");
    assert!(!text.contains("pending"), "{text}");
    let text = s.human(&["update", "scripts", "apply"], "");
    assert!(text.contains(" : appliqué le "), "{text}");
    assert!(!text.contains("applied"), "{text}");
    let v = s.json(&["update", "scripts", "apply"], "");
    let v = if v["scripts"].as_array().is_some_and(|a| !a.is_empty()) {
        v
    } else {
        s.json(&["update", "scripts"], "")
    };
    for script in v["scripts"].as_array().unwrap() {
        assert_eq!(script["state"], "applied", "JSON keeps the code: {v}");
        assert!(
            rfc3339_in(script["applied_at"].as_str().unwrap()).is_some(),
            "{v}"
        );
    }
}

#[test]
fn a_100000_character_server_name_is_refused_and_nothing_is_saved() {
    let s = Stack::start();
    s.json(
        &["login", "--user", "Administrateur", "--password-stdin"],
        &s.admin_password(),
    );
    let before = s.json(&["connection", "show"], "");
    let huge = format!("https://{}.fr", "a".repeat(100_000));
    let (code, out, err) = s.raw(&["connection", "set", "--auth-server", &huge], "");
    assert_eq!(code, 1, "{out}");
    assert!(
        err.starts_with("Erreur : Les paramètres n'ont pas été enregistrés."),
        "{err}"
    );
    assert!(
        err.contains("Adresse du serveur d'authentification") && err.contains("100 011 caractères"),
        "{err}"
    );
    assert!(err.len() < 1_000, "the name is not printed back whole");
    let (code, out, _) = s.raw(
        &[
            "connection",
            "set",
            "--proxy",
            "http://proxy_1.local:3128",
            "--json",
        ],
        "",
    );
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "invalid_settings", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Serveur proxy"),
        "{v}"
    );
    assert_eq!(
        s.json(&["connection", "show"], ""),
        before,
        "nothing was saved"
    );
}

#[test]
fn help_and_usage_errors_are_french() {
    let dir = tempfile::tempdir().unwrap();
    let out = iea(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Utilisation : iea "), "{help}");
    assert!(help.contains("Affiche cette aide."), "{help}");
    assert!(
        !help.contains("Usage:") && !help.contains("Print help"),
        "{help}"
    );

    let out = iea(dir.path())
        .args(["update", "scripts", "appliquer"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "Erreur : la valeur « appliquer » n'est pas acceptée pour [ACTION] (valeurs : apply)."
        ),
        "{err}"
    );
    // The help to read is the command's own, a near name suggested.
    assert!(
        err.ends_with("\nPour l'aide : iea update scripts --help\n"),
        "{err}"
    );
    let out = iea(dir.path())
        .args(["database", "migrate", "--too", "postgres://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Erreur : argument inattendu : « --too » (vouliez-vous dire « --to » ?).\nPour l'aide : iea database migrate --help\n"
    );

    let out = iea(dir.path())
        .args(["--json", "connection", "set", "--mode", "rapide"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "invalid_arguments", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(valeurs : normal, extended, secure)"),
        "{v}"
    );
}
