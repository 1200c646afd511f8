//! Automatic mode: the deposit folder the payroll program writes its DSN files into
//! (default `<data_dir>/dsn/a-deposer`).
//!
//! A file is taken only once complete: a name ending in `.tmp` is never taken (the
//! payroll writes `*.tmp`, then renames), and any other file only once its size and
//! modification time have not changed for `folder_settle_secs`. Taking is a rename into
//! `en-cours/<this orchestrator>/` (0700) — atomic, so of two orchestrators watching one
//! folder only one takes a file, and nothing is ever taken twice —, and the file, which
//! holds NIRs, names and pay, is 0600 from then on whatever mode the payroll wrote it
//! in. It is then received as
//! an upload (checked, stored, queued); once its deposit is settled it goes to `deposes/`
//! (accepted) or `rejetes/` (bad file, duplicate, rejected, refused), with
//! `<name>.motif.txt` beside it saying why in French. A file found in this orchestrator's
//! `en-cours/` at start without a deposit (it died between the rename and the record) is
//! received again; nothing in the folder is ever deleted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{DepositError, DepositRecord, Deposits, State, Upload};
use crate::sessions::Principal;
use crate::users::Role;

/// Where a file of the folder is.
pub(super) struct Layout {
    pub watch: PathBuf,
    /// `en-cours/<owner>`.
    pub taken: PathBuf,
    pub deposited: PathBuf,
    pub rejected: PathBuf,
}

impl Layout {
    pub(super) fn new(watch: PathBuf, owner: &str) -> Self {
        Self {
            taken: watch.join("en-cours").join(owner),
            deposited: watch.join("deposes"),
            rejected: watch.join("rejetes"),
            watch,
        }
    }

    fn create(&self) -> std::io::Result<()> {
        for d in [&self.watch, &self.deposited, &self.rejected] {
            std::fs::create_dir_all(d)?;
        }
        iea_runtime::pki::private_dir(&self.taken)
    }
}

/// What the watcher remembers of each file between two looks: size, modification time,
/// and since when they have not changed.
#[derive(Default)]
pub(super) struct Watch {
    seen: HashMap<PathBuf, (u64, Option<SystemTime>, std::time::Instant)>,
    started: bool,
}

/// The one who deposits what the folder holds.
fn automatic() -> Principal {
    Principal {
        user_id: 0,
        name: "dépôt automatique".into(),
        role: Role::Administrator,
    }
}

fn is_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !(name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".motif.txt"))
}

/// A path in `dir` named like `name`, not yet taken (`name`, `name.1`, …).
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut p = dir.join(name);
    let mut i = 1;
    while p.exists() {
        p = dir.join(format!("{name}.{i}"));
        i += 1;
    }
    p
}

/// Moves `file` into `dir` with its reason beside it.
fn settle_file(file: &Path, dir: &Path, reason: &str) -> std::io::Result<PathBuf> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dsn".into());
    let dest = free_name(dir, &name);
    let motif_name = format!(
        "{}.motif.txt",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    iea_runtime::pki::write_file(
        &dir.join(motif_name),
        format!("{reason}\n").as_bytes(),
        true,
    )
    .map_err(std::io::Error::other)?;
    std::fs::rename(file, &dest)?;
    Ok(dest)
}

impl Deposits {
    /// One look at the folder: settled deposits' files moved out, complete files taken.
    pub(super) async fn watch_folder(&self, watch: &mut Watch) -> anyhow::Result<()> {
        let Some(layout) = &self.inner.folder else {
            return Ok(());
        };
        layout.create()?;
        if !watch.started {
            watch.started = true;
            self.resume_taken(layout).await?;
        }
        self.move_settled(layout).await?;
        let settle = Duration::from_secs(self.inner.settings.folder_settle_secs);
        let mut present = Vec::new();
        for entry in std::fs::read_dir(&layout.watch)? {
            let entry = entry?;
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || !is_candidate(&path) {
                continue;
            }
            present.push(path.clone());
            let now = std::time::Instant::now();
            let (size, modified) = (meta.len(), meta.modified().ok());
            let stable_since = match watch.seen.get(&path) {
                Some((s, m, since)) if *s == size && *m == modified => *since,
                _ => {
                    watch.seen.insert(path.clone(), (size, modified, now));
                    continue;
                }
            };
            let untouched = modified
                .and_then(|m| m.elapsed().ok())
                .is_none_or(|e| e >= settle);
            if now.duration_since(stable_since) < settle || !untouched {
                continue;
            }
            watch.seen.remove(&path);
            let name = path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            let taken = layout.taken.join(&name);
            // Atomic: another orchestrator watching this folder cannot take it too.
            match std::fs::rename(&path, &taken) {
                Ok(()) => {
                    // Ours from now on, in whatever mode the payroll wrote it: it holds
                    // NIRs, names and pay, here and later in deposes/ or rejetes/.
                    if let Err(e) = iea_runtime::pki::private_file(&taken) {
                        tracing::warn!(file = %taken.display(), error = %e, "taken file not made private");
                    }
                    self.receive_taken(layout, &taken).await
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        watch.seen.retain(|p, _| present.contains(p));
        Ok(())
    }

    /// Files this orchestrator took but did not record (it stopped in between).
    async fn resume_taken(&self, layout: &Layout) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(&layout.taken)? {
            let path = entry?.path();
            if !path.is_file() || !is_candidate(&path) {
                continue;
            }
            let known = self
                .inner
                .store
                .deposit_by_source(path.display().to_string())
                .await?;
            if known.is_none() {
                tracing::warn!(file = %path.display(), "taken file without a deposit: received again");
                self.receive_taken(layout, &path).await;
            }
        }
        Ok(())
    }

    /// Receives a taken file as an upload; a file refused at once goes to `rejetes/`.
    async fn receive_taken(&self, layout: &Layout, taken: &Path) {
        let upload = match file_upload(taken).await {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(file = %taken.display(), error = %e, "taken file unreadable");
                return;
            }
        };
        let source = taken.display().to_string();
        let result = self
            .submit_from(&automatic(), None, upload, Some(source.clone()))
            .await;
        let reason = match result {
            Ok(d) => {
                tracing::info!(deposit = d.id, file = %taken.display(), "file of the deposit folder taken");
                return;
            }
            Err(DepositError::BadFile(problems)) => format!(
                "Fichier refusé avant envoi : il ne respecte pas la norme DSN. Rien n'a été déposé.\n{}",
                problems.join("\n")
            ),
            Err(DepositError::Duplicate {
                existing,
                same_file,
            }) => {
                if same_file {
                    format!(
                        "Ce fichier a déjà été déposé ou est en cours de dépôt (dépôt n° {existing}) : il n'a pas été envoyé une seconde fois."
                    )
                } else {
                    format!(
                        "Une déclaration normale du même établissement, du même mois et de la même fraction a déjà été déposée ou est en cours de dépôt (dépôt n° {existing}) : pour la corriger, déposez une déclaration « annule et remplace »."
                    )
                }
            }
            Err(DepositError::InvalidInput(m)) => m,
            Err(e) => {
                // Not recorded (a busy database…): back into the folder, taken again
                // later. Recorded but not routed: it stays taken, the worker routes it.
                tracing::error!(file = %taken.display(), error = ?e, "taken file not recorded");
                let recorded = self.inner.store.deposit_by_source(source.clone()).await;
                if let Ok(None) = recorded
                    && let Some(name) = taken.file_name()
                    && let Err(e) = std::fs::rename(taken, layout.watch.join(name))
                {
                    tracing::error!(file = %taken.display(), error = %e, "taken file not put back");
                }
                return;
            }
        };
        if let Err(e) = settle_file(taken, &layout.rejected, &reason) {
            tracing::error!(file = %taken.display(), error = %e, "refused file not moved");
        }
    }

    /// Files of settled deposits leave `en-cours/`.
    async fn move_settled(&self, layout: &Layout) -> anyhow::Result<()> {
        for d in self.inner.store.deposits_with_source().await? {
            let dir = match d.state {
                State::Accepted => &layout.deposited,
                State::Rejected | State::Failed => &layout.rejected,
                _ => continue,
            };
            let Some(source) = d.source_path.clone() else {
                continue;
            };
            let path = PathBuf::from(&source);
            // Another orchestrator's file (its own en-cours/) is its to move.
            if !path.starts_with(&layout.taken) {
                continue;
            }
            if path.exists() {
                settle_file(&path, dir, &motif(&d))?;
            }
            self.inner.store.clear_deposit_source(d.id).await?;
            tracing::info!(
                deposit = d.id,
                state = d.state.code(),
                "file of the deposit folder moved"
            );
        }
        Ok(())
    }
}

fn motif(d: &DepositRecord) -> String {
    let mut s = format!(
        "Dépôt n° {} — {} — SIRET {}, mois {}.\n{}",
        d.id,
        d.state.label_fr(),
        d.siret,
        iea_fr_time::de(&iea_fr_time::month_text(&d.month)),
        d.message
    );
    for a in &d.anomalies {
        s.push_str(&format!("\nAnomalie {} : {}", a.code, a.message));
    }
    s
}

/// A file as an upload, read by a task of its own in chunks.
async fn file_upload(path: &Path) -> std::io::Result<Upload> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let total_size = file.metadata().await?.len();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, String>>(2);
    tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    break;
                }
            }
        }
    });
    Ok(Upload {
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        total_size,
        chunks: Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)),
    })
}
