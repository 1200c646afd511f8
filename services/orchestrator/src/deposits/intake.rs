//! Receiving a DSN file into the store: hashed (SHA-256) and checked by `iea-dsn`'s
//! scanner as it arrives, written into a private temporary file (0600) beside the store
//! by [`WRITE_BATCH`] at most held at once (bounded memory, whatever the size), then,
//! once whole and valid, synced to disk and renamed `<sha256>.dsn` (the folder synced
//! too: the name survives a power cut as the record naming it does). A bad or incomplete
//! file leaves nothing behind. A small file takes one blocking task in all (create,
//! write, sync, rename), a large one one more per [`WRITE_BATCH`].
//!
//! A file declaring a month that has not begun yet in Paris is refused as a bad file too
//! (`iea_dsn::Declaration::month_not_begun`), before it is stored.
//!
//! A bad file is refused with its problems, each with its line: the scanner keeps the
//! first [`iea_dsn::MAX_PROBLEMS`] in line order and counts the others; the refusal lists
//! of those as many as fit in [`REFUSAL_BYTES`] ([`refusal_lines`]), then one French
//! sentence counting the others, so that the answer always reaches the person.
//!
//! [`StoredFile`] is the stored file as the worker sends it: read whole when small (in
//! the blocking task of the claim that marks the deposit `sending`), else opened there and
//! read by chunks as it is sent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::DepositError;
use crate::store::Store;

/// Largest file taken (bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Bytes received held before they are written to the temporary file.
pub const WRITE_BATCH: usize = 256 * 1024;
/// Largest stored file read whole before it is sent (bytes).
pub const READ_WHOLE: u64 = 1 << 20;

/// Bytes of problem sentences a refusal lists at most. A refusal is a gRPC error, and
/// its text travels in the trailers three times (`grpc-message`, percent-encoded, and in
/// `grpc-status-details-bin` as `Status.message` and as the `LocalizedMessage`, base64),
/// while gRPC clients refuse trailers over 16 KiB (hyper's default, hence the CLI's and
/// the web console's): one sentence per bad line of a large file made the person get
/// « Une erreur inattendue est survenue ». 3 KiB of sentences make at most about 13.5 KiB
/// of trailers, 18 to 28 problems of usual length (`refusals_fit_in_the_trailers`).
pub const REFUSAL_BYTES: usize = 3 * 1024;
/// Characters of one problem's sentence a refusal keeps (a sentence may quote the value
/// it is about, up to a line's 4096 bytes).
pub const PROBLEM_CHARS: usize = 240;

/// The lines of a refusal: the first problems, in line order, as many as fit in
/// [`REFUSAL_BYTES`] (each cut at [`PROBLEM_CHARS`]), then « … et N autres problèmes
/// (seuls les K premiers sont listés). » when some are not listed.
pub fn refusal_lines(problems: &iea_dsn::Problems) -> Vec<String> {
    let mut lines = Vec::new();
    let mut bytes = 0;
    for p in problems.iter() {
        let mut line = p.to_string();
        if line.chars().count() > PROBLEM_CHARS {
            line = line.chars().take(PROBLEM_CHARS - 1).collect::<String>() + "…";
        }
        if bytes + line.len() + 1 > REFUSAL_BYTES {
            break;
        }
        bytes += line.len() + 1;
        lines.push(line);
    }
    let omitted = problems.total() - lines.len();
    if omitted > 0 {
        lines.push(iea_dsn::omitted_sentence(omitted, lines.len()));
    }
    lines
}

/// A file as a front-end sends it: its name (for people), announced size and bytes.
pub struct Upload {
    pub file_name: String,
    pub total_size: u64,
    /// The bytes in order; an `Err` ends the upload (the sender went away).
    pub chunks: Pin<Box<dyn Stream<Item = Result<Vec<u8>, String>> + Send>>,
}

/// A stored, checked file and what the deposit needs of its declaration.
pub struct Checked {
    pub path: PathBuf,
    pub file_name: String,
    pub sha256: String,
    pub bytes: i64,
    pub siret: String,
    pub month: String,
    pub nature: String,
    pub kind: String,
    pub fraction: String,
    pub essai_reel: String,
}

/// Removes a temporary file however the intake ends, unless kept.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

pub(super) async fn receive(store_dir: &Path, mut upload: Upload) -> Result<Checked, DepositError> {
    if upload.total_size == 0 {
        return Err(DepositError::BadFile(vec![
            "fichier : le fichier est vide.".into(),
        ]));
    }
    if upload.total_size > MAX_FILE_BYTES {
        return Err(DepositError::InvalidInput(format!(
            "Le fichier dépasse la taille acceptée ({} Mio).",
            MAX_FILE_BYTES >> 20
        )));
    }
    let file_name = Path::new(upload.file_name.trim())
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(200).collect::<String>())
        .unwrap_or_default();
    let temp = store_dir.join(format!(".upload-{}", crate::sessions::random_secret(9)));
    let mut guard = TempGuard(Some(temp.clone()));
    let mut hasher = Sha256::new();
    let mut scanner = iea_dsn::Scanner::new();
    let mut received: u64 = 0;
    // Chunks received and not yet written; the file, once created (a large file).
    let mut pending = Pending::default();
    let mut file: Option<std::fs::File> = None;
    while let Some(chunk) = upload.chunks.next().await {
        let chunk = chunk.map_err(|e| {
            DepositError::InvalidInput(format!("L'envoi du fichier s'est interrompu ({e})."))
        })?;
        received += chunk.len() as u64;
        if received > upload.total_size {
            break;
        }
        hasher.update(&chunk);
        scanner.feed(&chunk);
        pending.push(chunk);
        if pending.bytes >= WRITE_BATCH {
            let batch = std::mem::take(&mut pending);
            let (path, open) = (temp.clone(), file.take());
            file = Some(
                tokio::task::spawn_blocking(move || {
                    let mut f = match open {
                        Some(f) => f,
                        None => create_private(&path)?,
                    };
                    batch.write_to(&mut f)?;
                    Ok::<_, std::io::Error>(f)
                })
                .await
                .map_err(anyhow::Error::from)?
                .map_err(anyhow::Error::from)?,
            );
        }
    }
    if received != upload.total_size {
        return Err(DepositError::InvalidInput(format!(
            "Le fichier reçu ne fait pas la taille annoncée ({received} octets reçus sur {}) : rien n'a été enregistré.",
            upload.total_size
        )));
    }
    let summary = match scanner.finish() {
        Ok(s) => s,
        Err(problems) => return Err(DepositError::BadFile(refusal_lines(&problems))),
    };
    // A month typed wrong in the payroll: refused before the file is stored.
    let current = iea_dsn::Month::in_paris_at(crate::sessions::now());
    if let Some(p) = summary.declaration.month_not_begun(current) {
        return Err(DepositError::BadFile(refusal_lines(&p.into())));
    }
    let sha256 = hex(&hasher.finalize());
    let path = store_dir.join(format!("{sha256}.dsn"));
    // The rest written, synced, then renamed and the folder synced: the file and its
    // name are on disk before any record names it, even against a power cut; or dropped
    // when the same bytes are stored already (a deposit rejected earlier, another in
    // progress: the duplicate check decides). One blocking task.
    {
        let (temp, path, dir) = (temp.clone(), path.clone(), store_dir.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut f = match file {
                Some(f) => f,
                None => create_private(&temp)?,
            };
            pending.write_to(&mut f)?;
            f.sync_all()?;
            drop(f);
            if path.exists() {
                std::fs::remove_file(&temp)
            } else {
                std::fs::rename(&temp, &path)?;
                std::fs::File::open(&dir)?.sync_all()
            }
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(anyhow::Error::from)?;
    }
    guard.0 = None;
    let d = &summary.declaration;
    Ok(Checked {
        path,
        file_name,
        sha256,
        bytes: received as i64,
        siret: d.siret(),
        month: d.month.to_string(),
        nature: d.nature.clone(),
        kind: d.kind.code().to_owned(),
        fraction: d.fraction.clone(),
        essai_reel: d.test_or_real.code().to_owned(),
    })
}

/// Removes a stored file that no deposit uses (a duplicate refused).
pub(super) async fn discard_unless_used(store: &Store, path: &Path, sha256: &str) {
    let used = store
        .deposit_file_used(sha256.to_owned())
        .await
        .unwrap_or(true);
    if !used {
        let _ = std::fs::remove_file(path);
    }
}

/// Chunks received, not yet written.
#[derive(Default)]
struct Pending {
    chunks: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pending {
    fn push(&mut self, chunk: Vec<u8>) {
        self.bytes += chunk.len();
        self.chunks.push(chunk);
    }

    fn write_to(&self, f: &mut std::fs::File) -> std::io::Result<()> {
        for c in &self.chunks {
            f.write_all(c)?;
        }
        Ok(())
    }
}

/// A stored file, ready to be sent.
pub enum StoredFile {
    /// Small: its bytes.
    Whole(Vec<u8>),
    /// Large: read by chunks as it is sent.
    Open(std::fs::File),
}

impl StoredFile {
    /// Opens the stored file at `path` (`bytes` long as recorded), reading it whole when
    /// at most [`READ_WHOLE`], on the calling thread (a blocking one: the worker's claim).
    /// An error: not here (another orchestrator's data directory) or unreadable.
    pub fn open_blocking(path: &Path, bytes: u64) -> std::io::Result<StoredFile> {
        let mut f = std::fs::File::open(path)?;
        if bytes > READ_WHOLE {
            return Ok(StoredFile::Open(f));
        }
        let mut buf = Vec::with_capacity(bytes as usize);
        f.read_to_end(&mut buf)?;
        Ok(StoredFile::Whole(buf))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use iea_proto::error::{ApiError, ErrorCode};
    use tonic::Status;

    /// Header list size as HTTP/2 counts it (RFC 7540 §6.5.2): name, value, 32 each.
    fn header_list_size(status: Status) -> usize {
        let mut map = tonic::metadata::MetadataMap::new().into_headers();
        status.add_header(&mut map).unwrap();
        map.iter()
            .map(|(k, v)| k.as_str().len() + v.as_bytes().len() + 32)
            .sum()
    }

    fn sample_with(extra: &[u8], lines: usize) -> Vec<u8> {
        let mut bytes = iea_dsn::sample(&iea_dsn::SampleSpec {
            siret: "73282932000074".into(),
            month: "2026-10".parse().unwrap(),
            employees: 20,
            test_or_real: iea_dsn::TestOrReal::Test,
            kind: iea_dsn::DeclarationKind::Normal,
            seed: 1,
        });
        for _ in 0..lines {
            bytes.extend_from_slice(extra);
        }
        bytes
    }

    #[test]
    fn refusals_fit_in_the_trailers() {
        // hyper's client (the CLI's, the web console's) refuses a header list over 16 KiB.
        const CLIENT_LIMIT: usize = 16 * 1024;
        for (what, file) in [
            ("bad lines", sample_with(b"ligne de trop\n", 100_000)),
            // UTF-8 accents: the longest usual sentence, with accents to escape.
            (
                "utf-8 lines",
                sample_with("S10.G00.02.003,'Émilie Hérault'\n".as_bytes(), 100_000),
            ),
            // A value quoted in its sentence, as long as a line may be.
            (
                "long values",
                sample_with(
                    &[
                        b"S21.G00.50.006,'".as_slice(),
                        &[b'9'; 4000],
                        b"'\n".as_slice(),
                    ]
                    .concat(),
                    1_000,
                ),
            ),
        ] {
            let problems = iea_dsn::Dsn::parse(&file).unwrap_err();
            assert_eq!(problems.len(), iea_dsn::MAX_PROBLEMS, "{what}");
            let lines = refusal_lines(&problems);
            let listed = lines.len() - 1;
            assert!(listed >= 10, "{what}: {listed}");
            let last = lines.last().unwrap();
            let omitted = iea_dsn::group_thousands(problems.total() - listed);
            assert_eq!(
                *last,
                format!(
                    "… et {omitted} autres problèmes (seuls les {listed} premiers sont listés)."
                ),
                "{what}"
            );
            // As `api::deposits` answers `DepositError::BadFile`.
            let status: Status = ApiError::of(
                ErrorCode::BadDsnFile,
                format!(
                    "Le fichier n'a pas été déposé : il ne respecte pas la norme DSN.\n{}",
                    lines.join("\n")
                ),
            )
            .into();
            let size = header_list_size(status.clone());
            // Room left for the other headers of a trailers-only answer.
            assert!(size <= CLIENT_LIMIT - 2048, "{what}: {size} bytes");
            // Read back as the front-ends read it: the list and its last sentence.
            let back = ApiError::from_status(&status);
            assert_eq!(back.code, "bad_dsn_file");
            assert!(back.message.ends_with(last.as_str()), "{what}");
            eprintln!("{what}: {listed} problems listed, {size} bytes of trailers");
        }
    }
}
