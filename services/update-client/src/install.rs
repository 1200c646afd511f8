//! The install directory: versions side by side, one atomic switch, the previous one
//! kept, and the start check.
//!
//! ```text
//! <install>/versions/3.00.70/…     one complete version per directory
//! <install>/versions/3.00.72/…
//! <install>/current  -> versions/3.00.72   symlink, replaced by rename (atomic)
//! <install>/previous -> versions/3.00.70   what to fall back to
//! ```
//!
//! A version directory appears only by renaming a fully extracted and checked staging
//! directory (`versions/.staging-V`), so a directory under its version's name is always
//! complete. Archive entries are checked before anything is written: regular files and
//! directories only, relative names made of plain components (no `..`, no root, no
//! backslash), so no name from the package can choose a path outside the staging
//! directory.
//!
//! The start check: the new version passes when its `VERSION` file names the version
//! being installed and its `start-check` file's first line is `ok`. (The real program
//! would be started with a self-test; the mock's packages say what that self-test
//! reports.)

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::UpdateError;
use iea_version::ImpactVersion;

/// The steps of an apply, in order; also the failure points tests inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The package is downloaded and verified.
    Downloaded,
    /// Scripts are fetched, verified and recorded as pending.
    ScriptsRecorded,
    /// Half of the archive is extracted into the staging directory.
    Extracting,
    /// The version directory is in place, nothing switched yet.
    Staged,
    /// `previous` names the old version, `current` still too.
    PreviousSet,
    /// `current` names the new version, its start check not run yet.
    Switched,
    /// The start check passed.
    Checked,
    /// The first script is applied, not the others.
    ScriptApplied,
    /// Everything is done but the journal is not cleared yet.
    Done,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Downloaded,
        Step::ScriptsRecorded,
        Step::Extracting,
        Step::Staged,
        Step::PreviousSet,
        Step::Switched,
        Step::Checked,
        Step::ScriptApplied,
        Step::Done,
    ];
}

/// Failure points for tests: `hit(step)` is an injected crash when `step` is armed.
#[derive(Debug, Clone, Default)]
pub struct FailPoints(std::sync::Arc<std::sync::Mutex<Option<Step>>>);

impl FailPoints {
    /// Arms `step` (or disarms with `None`). Fires once.
    pub fn arm(&self, step: Option<Step>) {
        if let Ok(mut g) = self.0.lock() {
            *g = step;
        }
    }

    pub fn hit(&self, step: Step) -> Result<(), UpdateError> {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(_) => return Ok(()),
        };
        if *g == Some(step) {
            *g = None;
            tracing::warn!(?step, "injected crash");
            return Err(UpdateError::Crash(step));
        }
        Ok(())
    }
}

pub const VERSIONS: &str = "versions";
pub const CURRENT: &str = "current";
pub const PREVIOUS: &str = "previous";
const STAGING_PREFIX: &str = ".staging-";

/// Most entries, and deepest path, an archive may have.
const MAX_ENTRIES: usize = 10_000;
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone)]
pub struct InstallDir {
    root: PathBuf,
}

impl InstallDir {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn versions(&self) -> PathBuf {
        self.root.join(VERSIONS)
    }

    pub fn version_dir(&self, v: &ImpactVersion) -> PathBuf {
        self.versions().join(v.to_string())
    }

    /// The version a pointer (`current` or `previous`) names, if it names a complete one.
    pub fn pointer(&self, name: &str) -> Option<ImpactVersion> {
        let target = std::fs::read_link(self.root.join(name)).ok()?;
        let mut comps = target.components();
        if comps.next() != Some(Component::Normal(VERSIONS.as_ref())) {
            return None;
        }
        let Some(Component::Normal(v)) = comps.next() else {
            return None;
        };
        if comps.next().is_some() {
            return None;
        }
        let v = v.to_str()?.parse::<ImpactVersion>().ok()?;
        self.is_complete(&v).then_some(v)
    }

    pub fn current(&self) -> Option<ImpactVersion> {
        self.pointer(CURRENT)
    }

    pub fn previous(&self) -> Option<ImpactVersion> {
        self.pointer(PREVIOUS)
    }

    /// A version directory whose `VERSION` names it.
    pub fn is_complete(&self, v: &ImpactVersion) -> bool {
        std::fs::read_to_string(self.version_dir(v).join("VERSION"))
            .ok()
            .and_then(|s| s.trim().parse::<ImpactVersion>().ok())
            .is_some_and(|found| found == *v)
    }

    /// Versions present (complete ones).
    pub fn versions_present(&self) -> Vec<ImpactVersion> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.versions()) {
            for e in entries.flatten() {
                if let Some(v) = e
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<ImpactVersion>().ok())
                    && self.is_complete(&v)
                {
                    out.push(v);
                }
            }
        }
        out.sort();
        out
    }

    /// Removes what a crash can leave: staging directories and half-made pointers.
    pub fn clean_leftovers(&self) {
        if let Ok(entries) = std::fs::read_dir(self.versions()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(STAGING_PREFIX) {
                    tracing::info!(dir = %name, "removing an unfinished staging directory");
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".current.") || name.starts_with(".previous.") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Extracts the package at `archive` as version `v`; returns once
    /// `versions/<v>` exists, complete.
    pub fn stage(
        &self,
        archive: &Path,
        v: &ImpactVersion,
        fail: &FailPoints,
    ) -> Result<PathBuf, UpdateError> {
        let versions = self.versions();
        std::fs::create_dir_all(&versions)?;
        let staging = versions.join(format!("{STAGING_PREFIX}{v}"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir(&staging)?;
        let count = {
            let mut a = tar::Archive::new(std::fs::File::open(archive)?);
            a.entries()?.count()
        };
        let mut a = tar::Archive::new(std::fs::File::open(archive)?);
        for (i, entry) in a.entries()?.enumerate() {
            if i >= MAX_ENTRIES {
                return Err(UpdateError::ArchiveRefused("too many entries".into()));
            }
            if i == count / 2 {
                fail.hit(Step::Extracting)?;
            }
            let mut entry = entry.map_err(|e| UpdateError::ArchiveRefused(e.to_string()))?;
            let raw = entry.path_bytes().into_owned();
            let rel = safe_relative(&raw).ok_or_else(|| {
                UpdateError::ArchiveRefused(format!(
                    "entry name {:?}",
                    String::from_utf8_lossy(&raw)
                ))
            })?;
            let dest = staging.join(&rel);
            match entry.header().entry_type() {
                tar::EntryType::Directory => std::fs::create_dir_all(&dest)?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let exec = entry
                        .header()
                        .mode()
                        .map(|m| m & 0o111 != 0)
                        .unwrap_or(false);
                    let mut opts = std::fs::OpenOptions::new();
                    opts.write(true).create_new(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::OpenOptionsExt;
                        opts.mode(if exec { 0o755 } else { 0o644 });
                    }
                    let mut out = opts.open(&dest)?;
                    std::io::copy(&mut (&mut entry).take(u64::MAX), &mut out)?;
                    out.sync_all()?;
                }
                other => {
                    return Err(UpdateError::ArchiveRefused(format!(
                        "entry {} of type {other:?}",
                        rel.display()
                    )));
                }
            }
        }
        let named = std::fs::read_to_string(staging.join("VERSION"))
            .ok()
            .and_then(|s| s.trim().parse::<ImpactVersion>().ok());
        if named.as_ref() != Some(v) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(UpdateError::ArchiveRefused(format!(
                "VERSION names {named:?}, not {v}"
            )));
        }
        let dest = self.version_dir(v);
        if dest.exists() {
            // Left by an attempt that did not switch to it: replaced by this one.
            std::fs::remove_dir_all(&dest)?;
        }
        std::fs::rename(&staging, &dest)?;
        sync_dir(&versions);
        Ok(dest)
    }

    /// Points `name` at `versions/<v>` atomically (symlink made aside, then renamed).
    pub fn set_pointer(&self, name: &str, v: &ImpactVersion) -> Result<(), UpdateError> {
        let tmp = self.root.join(format!(".{name}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let target = Path::new(VERSIONS).join(v.to_string());
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &tmp)?;
        #[cfg(not(unix))]
        return Err(UpdateError::Internal(anyhow::anyhow!(
            "the install directory needs symbolic links"
        )));
        std::fs::rename(&tmp, self.root.join(name))?;
        sync_dir(&self.root);
        Ok(())
    }

    /// The start check of version `v` (see the module documentation).
    pub fn start_check(&self, v: &ImpactVersion) -> bool {
        let dir = self.version_dir(v);
        let named = std::fs::read_to_string(dir.join("VERSION"))
            .ok()
            .and_then(|s| s.trim().parse::<ImpactVersion>().ok());
        let check = std::fs::read_to_string(dir.join("start-check")).unwrap_or_default();
        let ok = named.as_ref() == Some(v) && check.lines().next().map(str::trim) == Some("ok");
        tracing::info!(version = %v, ok, "start check");
        ok
    }

    /// Removes version directories other than `keep`.
    pub fn prune(&self, keep: &[&ImpactVersion]) {
        for v in self.versions_present() {
            if !keep.contains(&&v) {
                tracing::info!(version = %v, "removing an old version");
                let _ = std::fs::remove_dir_all(self.version_dir(&v));
            }
        }
    }

    pub fn remove_version(&self, v: &ImpactVersion) {
        let _ = std::fs::remove_dir_all(self.version_dir(v));
    }
}

/// A relative path made only of plain components, or `None`.
fn safe_relative(raw: &[u8]) -> Option<PathBuf> {
    let text = std::str::from_utf8(raw).ok()?;
    if text.is_empty() || text.contains('\\') || text.contains('\0') || text.starts_with('/') {
        return None;
    }
    let path = Path::new(text.trim_end_matches('/'));
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let depth = out.components().count();
    (depth > 0 && depth <= MAX_DEPTH).then_some(out)
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_are_accepted() {
        assert_eq!(
            safe_relative(b"bin/impact-emploi"),
            Some(PathBuf::from("bin/impact-emploi"))
        );
        assert_eq!(safe_relative(b"./VERSION"), Some(PathBuf::from("VERSION")));
        for bad in [
            &b"../x"[..],
            b"a/../../x",
            b"/etc/passwd",
            b"a\\..\\x",
            b"",
            b".",
        ] {
            assert!(
                safe_relative(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
