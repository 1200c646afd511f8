//! `iea dsn sample` and `iea dsn check` as a person or a script runs them: local only,
//! no stack needed.

use std::path::Path;
use std::process::{Command, Output};

/// A SIRET whose Luhn key is right.
const SIRET: &str = "73282932000074";

fn iea(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iea"))
        .env("IEA_DATA_DIR", data_dir)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sample(dir: &Path, name: &str, employees: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    let o = iea(
        dir,
        &[
            "dsn",
            "sample",
            "--siret",
            SIRET,
            "--month",
            "2025-03",
            "--employees",
            employees,
            "--out",
            file.to_str().unwrap(),
            "--test",
        ],
    );
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    // Said for a person: the month in words, the size in French units.
    let said = stdout(&o);
    assert!(said.contains("mars 2025, essai,"), "{said}");
    assert!(said.contains(" ko)") || said.contains(" octets)"), "{said}");
    file
}

#[test]
fn a_sample_passes_the_check_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path(), "mars.dsn", "10");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let o = iea(
        dir.path(),
        &["dsn", "check", file.to_str().unwrap(), "--json"],
    );
    assert!(o.status.success(), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    let d = &v["declaration"];
    assert_eq!(d["siret"], SIRET);
    assert_eq!(d["month"], "2025-03");
    assert_eq!(d["nature"], "01");
    assert_eq!(d["kind"], "normal");
    assert_eq!(d["fraction"], "11");
    assert_eq!(d["test_or_real"], "test");
    assert_eq!(d["employees"], 10);

    let o = iea(dir.path(), &["dsn", "check", file.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("conforme"), "{}", stdout(&o));
}

#[test]
fn a_broken_file_exits_non_zero_naming_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path(), "mars.dsn", "3");
    let bytes = std::fs::read(&file).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes
        .strip_suffix(b"\n")
        .unwrap()
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let month_line = lines
        .iter()
        .position(|l| l.starts_with(b"S20.G00.05.005"))
        .unwrap();
    lines[month_line] = b"S20.G00.05.005,'01132025'".to_vec();
    lines[13] = b"pas une rubrique".to_vec();
    let broken = dir.path().join("casse.dsn");
    std::fs::write(&broken, lines.join(&b'\n')).unwrap();

    let o = iea(dir.path(), &["dsn", "check", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("ligne 14 : "), "{text}");
    assert!(
        text.contains(&format!("ligne {} : mois", month_line + 1)),
        "{text}"
    );
    assert!(text.contains("Rien n'a été envoyé"), "{text}");

    let o = iea(
        dir.path(),
        &["dsn", "check", broken.to_str().unwrap(), "--json"],
    );
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let problems: Vec<(u64, String)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(!p["message"].as_str().unwrap().is_empty());
            (
                p["line"].as_u64().unwrap(),
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            (14, "not_a_rubric".to_owned()),
            (month_line as u64 + 1, "invalid_month".to_owned()),
        ]
    );
}

#[test]
fn a_month_that_has_not_begun_is_refused_at_its_line_and_this_month_passes() {
    let dir = tempfile::tempdir().unwrap();
    let this_month = iea_dsn::Month::in_paris_at(jiff::Timestamp::now().as_second());
    let check = |month: iea_dsn::Month| {
        let file = dir.path().join(format!("{month}.dsn"));
        let o = iea(
            dir.path(),
            &[
                "dsn",
                "sample",
                "--siret",
                SIRET,
                "--month",
                &month.to_string(),
                "--out",
                file.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stdout(&o));
        let o = iea(
            dir.path(),
            &["dsn", "check", file.to_str().unwrap(), "--json"],
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v)
    };
    // Deposited ahead, in its own month: fine.
    let (code, v) = check(this_month);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    // Next month: a month typed wrong, named at the line of S20.G00.05.005.
    let (code, v) = check(this_month.next());
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(v["ok"], false, "{v}");
    let p = &v["problems"][0];
    assert_eq!(p["code"], "month_not_begun", "{v}");
    let file = std::fs::read(dir.path().join(format!("{}.dsn", this_month.next()))).unwrap();
    let month_line = file
        .split(|b| *b == b'\n')
        .position(|l| l.starts_with(b"S20.G00.05.005"))
        .unwrap()
        + 1;
    assert_eq!(p["line"], month_line as u64, "{v}");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("n'a pas encore commencé"),
        "{v}"
    );
}

#[test]
fn a_utf8_file_is_refused_and_an_empty_one_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path(), "mars.dsn", "2");
    let utf8: String = std::fs::read(&file)
        .unwrap()
        .iter()
        .map(|b| char::from(*b))
        .collect();
    let converted = dir.path().join("utf8.dsn");
    std::fs::write(&converted, utf8).unwrap();
    let o = iea(
        dir.path(),
        &["dsn", "check", converted.to_str().unwrap(), "--json"],
    );
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert!(!problems.is_empty());
    assert!(
        problems
            .iter()
            .all(|p| p["code"] == "not_latin1" && p["line"].is_u64()),
        "{v}"
    );

    let empty = dir.path().join("vide.dsn");
    std::fs::write(&empty, b"").unwrap();
    let o = iea(
        dir.path(),
        &["dsn", "check", empty.to_str().unwrap(), "--json"],
    );
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["problems"][0]["code"], "empty_file");
    assert!(v["problems"][0]["line"].is_null());
}

#[test]
fn sample_refuses_a_bad_siret_or_month_in_french_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.dsn");
    for (siret, month, code) in [
        ("73282932000075", "2025-03", "invalid_siret"),
        ("7328293200007", "2025-03", "invalid_siret"),
        (SIRET, "2025-13", "invalid_month"),
        (SIRET, "03/2025", "invalid_month"),
    ] {
        let o = iea(
            dir.path(),
            &[
                "dsn",
                "sample",
                "--siret",
                siret,
                "--month",
                month,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("invalide"), "{err}");
        assert!(!out.exists());
        let o = iea(
            dir.path(),
            &[
                "dsn",
                "sample",
                "--siret",
                siret,
                "--month",
                month,
                "--out",
                out.to_str().unwrap(),
                "--json",
            ],
        );
        assert!(!o.status.success());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["error"]["code"], code);
    }
}

#[test]
fn a_missing_file_is_an_error_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let o = iea(
        dir.path(),
        &[
            "dsn",
            "check",
            dir.path().join("absent.dsn").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("n'a pas pu être lu"));
}
