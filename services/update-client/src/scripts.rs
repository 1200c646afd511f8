//! Maintenance scripts and the parameters table they change.
//!
//! A maintenance script is a signed target `iea-V.script-NNN.json` holding
//!
//! ```json
//! {"version": "3.00.72", "order": 1, "description": "…",
//!  "set": {"connexion.mode_par_defaut": "securise"}, "remove": ["ancien.parametre"]}
//! ```
//!
//! Applying it sets and removes entries of the installation's parameters table (a
//! stand-in for the payroll software's settings tables). Scripts are fetched through
//! tough (length and hash checked against signed targets), then recorded as *pending*
//! in `scripts.json` in the state directory with their document and hash; they are
//! applied in order (version, then `NNN`), once: the table change and the *applied*
//! record are written together, atomically, script by script. A script whose name is
//! already recorded is not recorded again. In assistance mode (`hold_scripts`) they stay
//! pending until `ApplyScripts`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::UpdateError;
use crate::install::{FailPoints, Step};
use iea_version::ImpactVersion;

pub const SCRIPTS_FILE: &str = "scripts.json";
/// The largest script accepted, in bytes.
pub const MAX_SCRIPT: u64 = 64 * 1024;

/// The JSON document of a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptDocument {
    pub version: String,
    pub order: u32,
    pub description: String,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

impl ScriptDocument {
    /// Parses and checks a script against the name it was signed under.
    pub fn parse(bytes: &[u8], version: &ImpactVersion, order: u32) -> Result<Self, UpdateError> {
        let doc: ScriptDocument = serde_json::from_slice(bytes)
            .map_err(|e| UpdateError::ScriptRefused(format!("script document: {e}")))?;
        if doc.version.parse::<ImpactVersion>().ok().as_ref() != Some(version) || doc.order != order
        {
            return Err(UpdateError::ScriptRefused(
                "script version or order disagrees with its signed name".into(),
            ));
        }
        let key_ok = |k: &String| {
            !k.is_empty()
                && k.len() <= 128
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if !doc.set.keys().all(key_ok)
            || !doc.remove.iter().all(key_ok)
            || doc.set.values().any(|v| v.len() > 4096)
        {
            return Err(UpdateError::ScriptRefused(
                "parameter names or values".into(),
            ));
        }
        Ok(doc)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptState {
    Pending,
    Applied,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScriptRecord {
    /// Signed target name, `iea-V.script-NNN.json`.
    pub name: String,
    pub version: String,
    pub order: u32,
    pub sha256: String,
    pub state: ScriptState,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub applied_at: Option<OffsetDateTime>,
    pub document: ScriptDocument,
}

/// `scripts.json`: the parameters table and the script journal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScriptsFile {
    pub parameters: BTreeMap<String, String>,
    pub scripts: Vec<ScriptRecord>,
}

impl ScriptsFile {
    pub fn read(state_dir: &Path) -> Result<Self, UpdateError> {
        let path = state_dir.join(SCRIPTS_FILE);
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b)
                .with_context(|| format!("parsing {}", path.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn write(&self, state_dir: &Path) -> Result<(), UpdateError> {
        iea_runtime::pki::write_file(
            &state_dir.join(SCRIPTS_FILE),
            &serde_json::to_vec_pretty(self).context("serialising scripts")?,
            true,
        )?;
        Ok(())
    }

    /// Records verified scripts as pending, unless already recorded.
    pub fn add_pending(&mut self, scripts: Vec<(String, String, ScriptDocument)>) -> usize {
        let mut added = 0;
        for (name, sha256, document) in scripts {
            if self.scripts.iter().any(|r| r.name == name) {
                continue;
            }
            self.scripts.push(ScriptRecord {
                name,
                version: document.version.clone(),
                order: document.order,
                sha256,
                state: ScriptState::Pending,
                received_at: OffsetDateTime::now_utc(),
                applied_at: None,
                document,
            });
            added += 1;
        }
        added
    }

    /// Forgets the pending scripts of `version` (a version that was not installed).
    pub fn drop_pending(&mut self, version: &ImpactVersion) {
        self.scripts.retain(|r| {
            !(r.state == ScriptState::Pending
                && r.version.parse::<ImpactVersion>().ok().as_ref() == Some(version))
        });
    }

    pub fn pending_count(&self) -> usize {
        self.scripts
            .iter()
            .filter(|r| r.state == ScriptState::Pending)
            .count()
    }
}

/// Applies the pending scripts of versions up to `installed`, in order, each with its
/// record in one atomic write. Returns the records applied.
pub fn apply_pending(
    state_dir: &Path,
    installed: &ImpactVersion,
    fail: &FailPoints,
) -> Result<Vec<ScriptRecord>, UpdateError> {
    let mut file = ScriptsFile::read(state_dir)?;
    let mut order: Vec<usize> = file
        .scripts
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.state == ScriptState::Pending
                && r.version
                    .parse::<ImpactVersion>()
                    .ok()
                    .is_some_and(|v| v <= *installed)
        })
        .map(|(i, _)| i)
        .collect();
    order.sort_by(|a, b| {
        let (ra, rb) = (&file.scripts[*a], &file.scripts[*b]);
        ra.version
            .parse::<ImpactVersion>()
            .ok()
            .cmp(&rb.version.parse::<ImpactVersion>().ok())
            .then(ra.order.cmp(&rb.order))
    });
    let mut applied = Vec::new();
    for (n, i) in order.into_iter().enumerate() {
        if n == 1 {
            fail.hit(Step::ScriptApplied)?;
        }
        let document = file.scripts[i].document.clone();
        for (k, v) in document.set {
            file.parameters.insert(k, v);
        }
        for k in &document.remove {
            file.parameters.remove(k);
        }
        let record = &mut file.scripts[i];
        record.state = ScriptState::Applied;
        record.applied_at = Some(OffsetDateTime::now_utc());
        tracing::info!(script = %record.name, "maintenance script applied");
        applied.push(record.clone());
        file.write(state_dir)?;
    }
    Ok(applied)
}
