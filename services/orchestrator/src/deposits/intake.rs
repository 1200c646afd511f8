//! Receiving a DSN file into the store: written as it arrives into a private temporary
//! file (0600) beside the store, hashed (SHA-256) and checked by `iea-dsn`'s scanner on
//! the way (bounded memory, whatever the size), then renamed `<sha256>.dsn` once whole
//! and valid. A bad or incomplete file leaves nothing behind.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::DepositError;
use crate::store::Store;

/// Largest file taken (bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

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
    let file = create_private(&temp).map_err(anyhow::Error::from)?;
    let mut writer =
        tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    let mut scanner = iea_dsn::Scanner::new();
    let mut received: u64 = 0;
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
        writer
            .write_all(&chunk)
            .await
            .map_err(anyhow::Error::from)?;
    }
    if received != upload.total_size {
        return Err(DepositError::InvalidInput(format!(
            "Le fichier reçu ne fait pas la taille annoncée ({received} octets reçus sur {}) : rien n'a été enregistré.",
            upload.total_size
        )));
    }
    let summary = match scanner.finish() {
        Ok(s) => s,
        Err(problems) => {
            return Err(DepositError::BadFile(
                problems.iter().map(ToString::to_string).collect(),
            ));
        }
    };
    writer.flush().await.map_err(anyhow::Error::from)?;
    let file = writer.into_inner();
    file.sync_all().await.map_err(anyhow::Error::from)?;
    drop(file);
    let sha256 = hex(&hasher.finalize());
    let path = store_dir.join(format!("{sha256}.dsn"));
    if path.exists() {
        // The same bytes are stored already (a deposit rejected earlier, another in
        // progress): the duplicate check decides.
        drop(guard);
    } else {
        std::fs::rename(&temp, &path).map_err(anyhow::Error::from)?;
        guard.0 = None;
    }
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
