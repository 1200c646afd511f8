//! The DSN upload form (« Déclarations DSN » → Déposer) over HTTP, its multipart bodies
//! written by hand: its CSRF token must be the form's first field and is checked before
//! anything reaches the orchestrator; a file over the limit, a broken body, a body that is
//! not multipart, no file, an empty file: a French sentence and nothing deposited; a file
//! with CRLF line ends and ISO-8859-1 accents is stored byte for byte.

mod common;

use std::path::{Path, PathBuf};

use common::{Harness, Session};
use iea_mock_net_entreprises::fixtures::DUPONT;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, LOCATION};

const BOUNDARY: &str = "----iea-test-boundary-7MA4YWxkTrZu0gW";
/// The console's limit of a DSN file (`iea_web::sessions::UPLOAD_LIMIT`).
const LIMIT: usize = iea_web::sessions::UPLOAD_LIMIT;

/// A valid DSN (invented people), written by `iea dsn sample --siret 78214563500010
/// --month 2026-10 --employees 2 --seed 14`.
const SAMPLE_DSN: &[u8] = include_bytes!("fixtures/sample-78214563500010-2026-10.dsn");

/// One part: name, file name (a file part), its bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` body of `parts`, in order.
fn form(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file_name {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: text/plain; charset=ISO-8859-1\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_form(s: &Session, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    s.request(Method::POST, "/declarations/deposer")
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn multipart() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// The administrator's Net-entreprises identity for DUPONT's SIRET (the account that
/// deposits).
async fn designate(h: &Harness, s: &Session) {
    let r = s
        .call(Method::PUT, "/api/v1/credentials/Administrateur")
        .json(
            &serde_json::json!({"account_password": h.admin_password(), "siret": DUPONT.siret,
                      "nom": DUPONT.nom, "prenom": DUPONT.prenom, "password": DUPONT.password}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn assert_nothing_deposited(s: &Session, what: &str) {
    assert_eq!(
        s.get_json("/api/v1/deposits").await,
        serde_json::json!([]),
        "{what}: nothing reached the orchestrator"
    );
}

#[tokio::test]
async fn an_upload_without_its_token_first_or_not_well_formed_is_refused_in_french_and_deposits_nothing()
 {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let other = h.api_session().await;
    designate(&h, &s).await;
    let csrf = s.csrf.as_bytes();

    // No token, a wrong one, another session's: 403, the console's CSRF page.
    let wrong = "0".repeat(64);
    for parts in [
        vec![("file", Some("octobre.dsn"), SAMPLE_DSN)],
        vec![
            ("csrf", None, wrong.as_bytes()),
            ("file", Some("octobre.dsn"), SAMPLE_DSN),
        ],
        vec![
            ("csrf", None, other.csrf.as_bytes()),
            ("file", Some("octobre.dsn"), SAMPLE_DSN),
        ],
        // The right token, after the file: refused (the token is the form's first field).
        vec![
            ("file", Some("octobre.dsn"), SAMPLE_DSN),
            ("csrf", None, csrf),
        ],
        // The right token after another field.
        vec![
            ("user", None, b"Administrateur"),
            ("csrf", None, csrf),
            ("file", Some("octobre.dsn"), SAMPLE_DSN),
        ],
    ] {
        let names: Vec<&str> = parts.iter().map(|p| p.0).collect();
        let r = post_form(&s, &multipart(), form(&parts)).await;
        assert_eq!(r.status(), 403, "{names:?}");
        let page = r.text().await.unwrap();
        assert!(page.contains("csrf_token_invalid"), "{names:?}");
        assert!(page.contains("jeton anti-falsification"), "{names:?}");
    }
    // A multipart body to another path, even with its token: refused.
    let r = s
        .request(Method::POST, "/api/v1/deposits?file_name=octobre.dsn")
        .header(CONTENT_TYPE, multipart())
        .body(form(&[
            ("csrf", None, csrf),
            ("file", Some("octobre.dsn"), SAMPLE_DSN),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "csrf_token_invalid");
    assert_nothing_deposited(&s, "without the token first").await;

    // A file one byte over the limit: 413, the French sentence on the deposits page.
    let mut big = SAMPLE_DSN.to_vec();
    big.resize(LIMIT + 1, b'\n');
    let r = post_form(
        &s,
        &multipart(),
        form(&[("csrf", None, csrf), ("file", Some("enorme.dsn"), &big)]),
    )
    .await;
    assert_eq!(r.status(), 413);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Le fichier envoyé est trop grand (64 Mio au plus)."),
        "{page}"
    );
    assert!(page.contains("Déposer un fichier DSN"), "the deposits page");
    drop(big);
    assert_nothing_deposited(&s, "a file over the limit").await;

    // A body cut in the middle of the file (no closing delimiter): 400 in French.
    let mut cut = form(&[
        ("csrf", None, csrf),
        ("file", Some("octobre.dsn"), SAMPLE_DSN),
    ]);
    cut.truncate(cut.len() - BOUNDARY.len() - 20);
    let r = post_form(&s, &multipart(), cut).await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Le formulaire d'envoi n'est pas valide ou son envoi s'est interrompu."),
        "{page}"
    );
    // A part whose headers never end.
    let mut broken =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n")
            .into_bytes();
    broken.extend_from_slice(csrf);
    broken.extend_from_slice(
        format!("\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"").as_bytes(),
    );
    let r = post_form(&s, &multipart(), broken).await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Le formulaire d'envoi n'est pas valide")
    );
    // Not multipart at all (a urlencoded form with its token): 400 in French.
    let r = post_form(
        &s,
        "application/x-www-form-urlencoded",
        format!("csrf={}&file=octobre.dsn", s.csrf).into_bytes(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Le formulaire d'envoi n'est pas valide.")
    );
    // No file; an empty one (a form sent without choosing one).
    for parts in [
        vec![("csrf", None, csrf), ("user", None, b"".as_slice())],
        vec![("csrf", None, csrf), ("file", Some(""), b"".as_slice())],
    ] {
        let r = post_form(&s, &multipart(), form(&parts)).await;
        assert_eq!(r.status(), 400);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Choisissez un fichier DSN à déposer.")
        );
    }
    assert_nothing_deposited(&s, "a broken body, no file").await;

    // With its token first, the same file goes through.
    let r = post_form(
        &s,
        &multipart(),
        form(&[
            ("csrf", None, csrf),
            ("file", Some("octobre.dsn"), SAMPLE_DSN),
            ("user", None, b""),
        ]),
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let list = s.get_json("/api/v1/deposits").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["file_name"], "octobre.dsn");
    h.stop().await;
}

/// SHA-256 of `bytes`, hex (coreutils' `sha256sum`: the test crate has no hash of its own).
fn sha256sum(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// Every file named `name` under `dir`.
fn find(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            find(&path, name, found);
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
}

#[tokio::test]
async fn a_file_with_crlf_and_latin1_accents_arrives_byte_for_byte() {
    let h = Harness::start().await;
    let s = h.api_session().await;
    designate(&h, &s).await;
    // The sample with CRLF line ends and accented names in ISO-8859-1 (É: 0xC9, è: 0xE8).
    let mut file = Vec::new();
    for line in SAMPLE_DSN.split_inclusive(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.starts_with(b"S21.G00.30.002,") {
            file.extend_from_slice(b"S21.G00.30.002,'GIRAUD-L\xc9ON'");
        } else if line.starts_with(b"S21.G00.30.004,") {
            file.extend_from_slice(b"S21.G00.30.004,'H\xe8l\xe8ne'");
        } else {
            file.extend_from_slice(line);
        }
        file.extend_from_slice(b"\r\n");
    }
    assert!(file.windows(2).any(|w| w == b"\r\n") && file.contains(&0xc9));
    let expected = sha256sum(&file);

    let r = post_form(
        &s,
        &multipart(),
        form(&[
            ("csrf", None, s.csrf.as_bytes()),
            ("file", Some("C:\\paie\\d\u{e9}cembre.dsn"), &file),
            ("user", None, b"Administrateur"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/declarations/").unwrap();
    let d = s.get_json(&format!("/api/v1/deposits/{id}")).await;
    assert_eq!(d["sha256"], expected.as_str(), "{d}");
    assert_eq!(d["bytes"], file.len());
    assert_eq!(
        d["file_name"], "d\u{e9}cembre.dsn",
        "the name only, not the path"
    );
    assert_eq!(d["siret"], DUPONT.siret);
    // The orchestrator's stored copy, named by its hash, is the file itself.
    let mut stored = Vec::new();
    find(h.dir.path(), &format!("{expected}.dsn"), &mut stored);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(std::fs::read(&stored[0]).unwrap(), file);
    h.stop().await;
}
