//! The DSN upload form (« Déclarations DSN » → Déposer) over HTTP, its multipart bodies
//! written by hand: its CSRF token must be the form's first field and is checked before
//! anything reaches the orchestrator; a file over the limit (a valid DSN, which the
//! orchestrator would record had it been sent), a broken body, a body that is not
//! multipart, no file, an empty file, a file that is not a DSN: a French sentence and
//! nothing deposited; a file with CRLF line ends and ISO-8859-1 accents is stored byte for
//! byte. A file waits in the console's upload folder (the harness gives it one, 0700, in
//! the stack's data directory), unnamed and 0600, while it arrives (observed through this
//! process's `/proc/self/fd`: the console runs in the test's process), and nothing of it is
//! left however the upload ends; a file of several MiB reaches the Net-entreprises mock
//! byte for byte.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Harness, Session};
use iea_dsn::{Month, SampleSpec};
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_stack_testkit::eventually;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use tokio::sync::mpsc;

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

async fn assert_nothing_deposited(s: &Session, what: &str) {
    assert_eq!(
        s.get_json("/api/v1/deposits").await,
        serde_json::json!([]),
        "{what}: nothing reached the orchestrator"
    );
}

/// A valid DSN of DUPONT's establishment with `employees` employees (~420 bytes each).
fn sample_of(employees: usize) -> Vec<u8> {
    iea_dsn::sample(&SampleSpec::new(
        DUPONT.siret,
        Month::new(2026, 10).unwrap(),
        employees,
    ))
}

/// The modes (octal) of the files the console holds open in its upload folder: this
/// process's open files (the console runs in it) whose path is in the folder (an unnamed
/// file reads `<folder>/#… (deleted)`).
fn open_uploads(h: &Harness) -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to.starts_with(&h.uploads)))
        .filter_map(|fd| std::fs::metadata(fd.path()).ok())
        .map(|m| format!("{:o}", m.mode() & 0o7777))
        .collect()
}

/// Nothing of an upload is left: no name in the console's upload folder, and no file of
/// it open (the file's last handle may go just after the answer, with the orchestrator's
/// stream).
async fn assert_no_upload_left(h: &Harness, what: &str) {
    assert_eq!(
        std::fs::read_dir(&h.uploads).unwrap().count(),
        0,
        "{what}: a file left in the upload folder"
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while !open_uploads(h).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: an upload's file still open"));
}

/// The upload form sent as a stream: the request under way, and the sender of its body
/// (an `Err` breaks the connection off, as a browser closed mid-file; dropping the sender
/// ends the body).
fn post_form_streamed(
    s: &Session,
) -> (
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
    mpsc::Sender<std::io::Result<Vec<u8>>>,
) {
    let (tx, rx) = mpsc::channel(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let request = s
        .request(Method::POST, "/declarations/deposer")
        .header(CONTENT_TYPE, multipart())
        .body(body)
        .send();
    (tokio::spawn(request), tx)
}

/// Waits until the console holds the upload's file: one, mode 0600, unnamed.
async fn assert_one_private_upload(h: &Harness) {
    eventually(|| async { !open_uploads(h).is_empty() }).await;
    assert_eq!(open_uploads(h), ["600"], "one file, private");
    assert_eq!(std::fs::read_dir(&h.uploads).unwrap().count(), 0, "unnamed");
    assert_eq!(
        std::fs::metadata(&h.uploads).unwrap().mode() & 0o7777,
        0o700,
        "the upload folder is the console's alone"
    );
}

#[tokio::test]
async fn an_upload_without_its_token_first_or_not_well_formed_is_refused_in_french_and_deposits_nothing()
 {
    let h = Harness::start().await;
    let s = h.api_session().await;
    let other = h.api_session().await;
    h.set_admin_identity(&s, DUPONT.siret, DUPONT.password)
        .await;
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

    // A valid DSN just over the limit (the orchestrator would record it, were it sent):
    // 413, the French sentence on the deposits page, nothing sent.
    let big = sample_of(LIMIT / 400);
    assert!(
        big.len() > LIMIT && big.len() < LIMIT + (8 << 20),
        "{}",
        big.len()
    );
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
    // The API's upload, which waits in the same folder: its own refusal (400).
    let r = s
        .call(Method::POST, "/api/v1/deposits?file_name=enorme.dsn")
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_input", "{e}");
    assert_eq!(
        e["error"]["message"], "Le fichier envoyé est trop grand.",
        "{e}"
    );
    drop(big);
    assert_nothing_deposited(&s, "a file over the limit").await;
    assert_no_upload_left(&h, "a file over the limit").await;

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
    assert_no_upload_left(&h, "a broken body, no file").await;

    // A file that is not a DSN: the orchestrator's refusal on the deposits page.
    let r = post_form(
        &s,
        &multipart(),
        form(&[
            ("csrf", None, csrf),
            ("file", Some("faux.dsn"), b"ceci n'est pas une DSN\n"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Le fichier n'a pas été déposé : il ne respecte pas la norme DSN."),
        "{page}"
    );
    assert_nothing_deposited(&s, "a file that is not a DSN").await;
    assert_no_upload_left(&h, "a file that is not a DSN").await;

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
    assert_no_upload_left(&h, "a file deposited").await;
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
    h.set_admin_identity(&s, DUPONT.siret, DUPONT.password)
        .await;
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

    // A second declaration, November's: the list by month, state and limit, on the page
    // and through the API; a wrong filter is refused in French.
    let november = iea_dsn::sample(&SampleSpec::new(
        DUPONT.siret,
        Month::new(2026, 11).unwrap(),
        1,
    ));
    let r = post_form(
        &s,
        &multipart(),
        form(&[
            ("csrf", None, s.csrf.as_bytes()),
            ("file", Some("novembre.dsn"), &november),
            ("user", None, b"Administrateur"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let months = |v: serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["month"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        months(s.get_json("/api/v1/deposits").await),
        ["2026-11", "2026-10"]
    );
    assert_eq!(
        months(s.get_json("/api/v1/deposits?month=2026-10").await),
        ["2026-10"]
    );
    assert_eq!(
        months(s.get_json("/api/v1/deposits?limit=1").await),
        ["2026-11"]
    );
    assert!(months(s.get_json("/api/v1/deposits?state=to_check").await).is_empty());
    // Older ones left out: the `Link` header names the next page, the same filters kept;
    // the last page has none.
    let r = s
        .request(Method::GET, "/api/v1/deposits?limit=1&state=accepted")
        .send()
        .await
        .unwrap();
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    let first: serde_json::Value = r.json().await.unwrap();
    let newest = first[0]["id"].as_i64().unwrap();
    assert_eq!(
        link,
        format!("</api/v1/deposits?state=accepted&limit=1&before={newest}>; rel=\"next\"")
    );
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let r = s.request(Method::GET, next).send().await.unwrap();
    assert!(r.headers().get("link").is_none(), "{:?}", r.headers());
    assert_eq!(months(r.json().await.unwrap()), ["2026-10"]);
    let r = s
        .request(Method::GET, "/api/v1/deposits")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none(), "{:?}", r.headers());
    for (query, message) in [
        (
            "month=2026-13",
            "Mois « 2026-13 » invalide : attendu AAAA-MM, par exemple 2025-03.",
        ),
        (
            "siret=123",
            "Le SIRET doit compter 14 chiffres ; « 123 » en compte 3.",
        ),
        (
            "limit=beaucoup",
            "Les paramètres de la demande ne sont pas valides.",
        ),
        (
            "limit=501",
            "Une liste donne au plus 500 dépôts : demandez-en 500 au plus.",
        ),
        (
            "before=-3",
            "Le numéro de dépôt à partir duquel lister doit être un nombre positif.",
        ),
    ] {
        let r = s
            .request(Method::GET, &format!("/api/v1/deposits?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_input", "{query}: {v}");
        assert_eq!(v["error"]["message"], message, "{query}: {v}");
    }
    let page = |path: &'static str| {
        let s = &s;
        async move {
            let r = s.request(Method::GET, path).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (code, html) = page("/declarations?month=2026-11").await;
    assert_eq!(code, 200);
    assert!(
        html.contains("novembre 2026") && !html.contains("octobre 2026"),
        "{html}"
    );
    assert!(
        html.contains("value=\"2026-11\""),
        "the filter kept: {html}"
    );
    let (_, html) = page("/declarations?state=to_check").await;
    assert!(html.contains("Aucun dépôt ne correspond."), "{html}");
    assert!(
        html.contains("<option value=\"to_check\" selected>"),
        "{html}"
    );
    let (_, html) = page("/declarations?limit=1").await;
    assert!(html.contains("id=\"deposits-truncated\""), "{html}");
    assert!(html.contains("seul le plus récent l'est."), "{html}");
    // « Dépôts plus anciens »: the next page, October's.
    let older = format!("/declarations?limit=1&amp;before={newest}");
    assert!(html.contains(&format!("href=\"{older}\"")), "{html}");
    let r = s
        .request(Method::GET, &older.replace("&amp;", "&"))
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("octobre 2026") && !html.contains("novembre 2026"),
        "{html}"
    );
    assert!(!html.contains("deposits-truncated"), "{html}");
    // And back to the newest, the same limit kept.
    assert!(html.contains("id=\"deposits-newest\""), "{html}");
    assert!(html.contains("href=\"/declarations?limit=1\""), "{html}");
    let (_, html) = page("/declarations").await;
    assert!(!html.contains("deposits-truncated"), "{html}");
    assert!(!html.contains("deposits-newest"), "{html}");
    let (code, html) = page("/declarations?month=2026-13").await;
    assert_eq!(code, 400);
    assert!(html.contains("Mois « 2026-13 » invalide"), "{html}");
    assert!(
        html.contains("id=\"deposits-filter\""),
        "the form again: {html}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_file_of_several_mib_waits_in_a_private_file_then_reaches_net_entreprises_byte_for_byte()
{
    let h = Harness::start().await;
    let s = h.api_session().await;
    h.set_admin_identity(&s, DUPONT.siret, DUPONT.password)
        .await;
    let file = sample_of(10_000);
    assert!(file.len() > 3 << 20, "several MiB: {}", file.len());
    let expected = sha256sum(&file);
    let body = form(&[
        ("csrf", None, s.csrf.as_bytes()),
        ("file", Some("gros.dsn"), &file),
        ("user", None, b""),
    ]);

    // Half the body: the file waits in the console's folder, nothing sent yet.
    let (request, tx) = post_form_streamed(&s);
    let half = body.len() / 2;
    tx.send(Ok(body[..half].to_vec())).await.unwrap();
    assert_one_private_upload(&h).await;
    assert_nothing_deposited(&s, "half the file received").await;
    tx.send(Ok(body[half..].to_vec())).await.unwrap();
    drop(tx);
    let r = request.await.unwrap().unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/declarations/").unwrap().to_owned();
    assert_no_upload_left(&h, "a file deposited").await;
    let d = s.get_json(&format!("/api/v1/deposits/{id}")).await;
    assert_eq!(d["sha256"], expected.as_str(), "{d}");
    assert_eq!(d["bytes"], file.len());

    // Deposited: the bytes Net-entreprises received are the file's.
    let d = s.settled_deposit(&id, Duration::from_secs(120)).await;
    assert_eq!(d["state"], "accepted", "{d}");
    let at_mock = h.mock("net-entreprises").get("/deposits").await;
    let at_mock: Vec<&serde_json::Value> = at_mock
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["idflux"] == d["idflux"])
        .collect();
    assert_eq!(at_mock.len(), 1, "{at_mock:?}");
    assert_eq!(at_mock[0]["sha256"], expected.as_str());
    assert_eq!(at_mock[0]["bytes"], file.len());

    // A browser gone mid-file: its file goes, nothing more deposited.
    let (request, tx) = post_form_streamed(&s);
    tx.send(Ok(body[..half].to_vec())).await.unwrap();
    assert_one_private_upload(&h).await;
    tx.send(Err(std::io::Error::other("the browser is closed")))
        .await
        .unwrap();
    assert!(request.await.unwrap().is_err(), "the request broken off");
    assert_no_upload_left(&h, "a browser gone mid-file").await;
    let list = s.get_json("/api/v1/deposits").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    h.stop().await;
}
