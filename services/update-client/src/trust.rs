//! Trusted metadata: one refresh of the TUF metadata with tough, against what this agent
//! trusted before, and the catalogue of releases read from the result.
//!
//! What was last trusted (root, timestamp, snapshot, targets, and the latest time seen)
//! lives in `trust.json` in the state directory, written atomically. A refresh runs
//! tough's client workflow in a scratch datastore seeded from that file, with the root it
//! holds (or, the first time, the configured trusted root); only when tough and our own
//! checks accept the result is `trust.json` replaced. So a refused update never changes
//! what is trusted, versions never go down across restarts, and the time of the update
//! start is fixed by tough (which also refuses a clock that went backwards).
//!
//! Our own checks beside tough's: a role of the root must not list one public key under
//! two key ids (a threshold counts a key once); target names must have one of the exact
//! forms below, any other name (`../../x`, percent-encoded forms, absolute paths) is
//! ignored and never becomes a path.
//!
//! Target names (flat): `iea-V.tar` (package), `iea-V.lisez-moi.txt` (notes),
//! `iea-V.script-NNN.json` (maintenance script NNN), V a version.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use iea_net::HttpClient;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tough::schema::Target;
use tough::{Limits, Repository, RepositoryLoader};

use crate::error::UpdateError;
use crate::transport::NetTransport;
use iea_version::ImpactVersion;

/// The state file.
pub const TRUST_FILE: &str = "trust.json";

/// Files of tough's datastore kept between refreshes.
const DATASTORE_FILES: &[&str] = &[
    "root.json",
    "timestamp.json",
    "snapshot.json",
    "targets.json",
    "latest_known_time.json",
];

/// Ceilings for metadata whose length no signed parent gives.
pub const LIMITS: Limits = Limits {
    max_root_size: 512 * 1024,
    max_targets_size: 4 * 1024 * 1024,
    max_timestamp_size: 64 * 1024,
    max_snapshot_size: 1024 * 1024,
    max_root_updates: 64,
};

/// What `trust.json` holds: the datastore files, as tough wrote them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TrustFile {
    pub files: BTreeMap<String, String>,
}

impl TrustFile {
    pub fn read(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(TRUST_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn write(&self, state_dir: &Path) -> anyhow::Result<()> {
        iea_runtime::pki::write_file(
            &state_dir.join(TRUST_FILE),
            &serde_json::to_vec(self)?,
            true,
        )
    }
}

/// Metadata accepted by one refresh, and what is needed to read targets through it.
pub struct Trusted {
    pub repo: Repository,
    pub transport: NetTransport,
    pub targets_base: Url,
    /// Holds the scratch datastore that `repo` reads its clock file from.
    _datastore: tempfile::TempDir,
}

impl std::fmt::Debug for Trusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trusted")
            .field("targets_base", &self.targets_base.as_str())
            .finish_non_exhaustive()
    }
}

fn with_slash(url: &Url, path: &str) -> Result<Url, UpdateError> {
    let mut base = url.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.join(path).map_err(|e| {
        UpdateError::InvalidRequest(format!("adresse du serveur de mise à jour : {e}"))
    })
}

/// Refreshes the metadata from the server at `client`'s address.
#[tracing::instrument(skip_all, fields(address = %client.settings().address))]
pub async fn refresh(
    state_dir: &Path,
    initial_root: Option<&PathBuf>,
    client: HttpClient,
    deadline: Duration,
) -> Result<Trusted, UpdateError> {
    std::fs::create_dir_all(state_dir)?;
    let trust = TrustFile::read(state_dir)?;
    let root = match trust.files.get("root.json") {
        Some(r) => r.clone().into_bytes(),
        None => {
            let path = initial_root.ok_or_else(|| {
                UpdateError::NotConfigured("no trusted root configured (trusted_root)".into())
            })?;
            std::fs::read(path).map_err(|e| {
                UpdateError::NotConfigured(format!("trusted root {}: {e}", path.display()))
            })?
        }
    };
    let datastore = tempfile::Builder::new()
        .prefix(".tuf-")
        .tempdir_in(state_dir)?;
    for (name, text) in &trust.files {
        if DATASTORE_FILES.contains(&name.as_str()) {
            std::fs::write(datastore.path().join(name), text)?;
        }
    }
    let address = client.settings().address.clone();
    let metadata_base = with_slash(&address, "metadata/")?;
    let targets_base = with_slash(&address, "targets/")?;
    let transport = NetTransport::new(client);
    let loader = RepositoryLoader::new(&root, metadata_base, targets_base.clone())
        .transport(transport.clone())
        .limits(LIMITS)
        .datastore(datastore.path());
    let repo = match tokio::time::timeout(deadline, loader.load()).await {
        Err(_) => {
            tracing::warn!(?deadline, "metadata refresh deadline exceeded");
            return Err(UpdateError::Deadline("la vérification des mises à jour"));
        }
        Ok(Err(e)) => {
            let err = classify(&e, &transport);
            tracing::warn!(error = %e, kind = %err, "metadata refused");
            return Err(err);
        }
        Ok(Ok(repo)) => repo,
    };
    check_distinct_keys(repo.root())?;
    let mut files = BTreeMap::new();
    for name in DATASTORE_FILES {
        match std::fs::read_to_string(datastore.path().join(name)) {
            Ok(text) => {
                files.insert((*name).to_owned(), text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    TrustFile { files }.write(state_dir)?;
    tracing::info!(
        root = repo.root().signed.version.get(),
        timestamp = repo.timestamp().signed.version.get(),
        snapshot = repo.snapshot().signed.version.get(),
        targets = repo.targets().signed.version.get(),
        "metadata trusted"
    );
    Ok(Trusted {
        repo,
        transport,
        targets_base,
        _datastore: datastore,
    })
}

/// Maps tough's refusal to ours.
fn classify(e: &tough::error::Error, transport: &NetTransport) -> UpdateError {
    use tough::error::Error as T;
    let detail = e.to_string();
    if chain_has_max_size(e) {
        return UpdateError::TooLarge(detail);
    }
    match e {
        T::ExpiredMetadata { role, .. } => UpdateError::MetadataExpired(role.to_string()),
        T::SystemTimeSteppedBackward { .. } => UpdateError::ClockSetBack,
        T::OlderMetadata { .. }
        | T::OlderSnapshotInTimestamp { .. }
        | T::SnapshotRoleRollback { .. }
        | T::SnapshotRoleMissing { .. } => UpdateError::Rollback(detail),
        T::Transport { .. } => match transport.last_failure() {
            Some(d) => UpdateError::Unreachable(d),
            None => UpdateError::MetadataRefused(detail),
        },
        _ => UpdateError::MetadataRefused(detail),
    }
}

/// Whether the refusal is a ceiling of ours (a fixed limit) being reached: endless data.
/// A file longer than the length its signed parent gives is a mismatch, not this.
fn chain_has_max_size(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(tough::error::Error::MaxSizeExceeded { specifier, .. }) =
            err.downcast_ref::<tough::error::Error>()
        {
            return specifier.contains("argument") || specifier.contains("parameter");
        }
        if err.to_string().starts_with("more than ") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A threshold counts a key once: refuses a root whose role lists one public key under
/// two key ids (tough counts distinct key ids, not distinct keys).
fn check_distinct_keys(
    root: &tough::schema::Signed<tough::schema::Root>,
) -> Result<(), UpdateError> {
    for (role, keys) in &root.signed.roles {
        let mut seen = HashSet::new();
        for id in &keys.keyids {
            let Some(key) = root.signed.keys.get(id) else {
                continue;
            };
            let public = match key {
                tough::schema::key::Key::Ed25519 { keyval, .. } => keyval.public.to_vec(),
                tough::schema::key::Key::Rsa { keyval, .. } => keyval.public.to_vec(),
                tough::schema::key::Key::Ecdsa { keyval, .. }
                | tough::schema::key::Key::EcdsaOld { keyval, .. } => keyval.public.to_vec(),
            };
            if !seen.insert(public) {
                return Err(UpdateError::MetadataRefused(format!(
                    "root version {} lists one {role} key under several key ids",
                    root.signed.version
                )));
            }
        }
    }
    Ok(())
}

/// One signed target, as the client uses it.
#[derive(Debug, Clone)]
pub struct TargetRef {
    pub name: String,
    pub length: u64,
    pub sha256: Vec<u8>,
}

impl TargetRef {
    fn new(name: &str, t: &Target) -> Self {
        Self {
            name: name.to_owned(),
            length: t.length,
            sha256: t.hashes.sha256.to_vec(),
        }
    }

    /// The file name under the targets base (consistent snapshots).
    pub fn file_name(&self) -> String {
        format!("{}.{}", hex::encode(&self.sha256), self.name)
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(&self.sha256)
    }
}

/// One release read from signed targets.
#[derive(Debug, Clone)]
pub struct ReleaseInfo {
    pub version: ImpactVersion,
    pub published_at: Option<OffsetDateTime>,
    pub required: bool,
    pub package: Option<TargetRef>,
    pub notes: Option<TargetRef>,
    /// In order.
    pub scripts: Vec<(u32, TargetRef)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Package,
    Notes,
    Script(u32),
}

/// Reads a target name of one of the exact forms; anything else is `None`.
fn parse_name(name: &str) -> Option<(ImpactVersion, Kind)> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return None;
    }
    let rest = name.strip_prefix("iea-")?;
    if let Some(v) = rest.strip_suffix(".lisez-moi.txt") {
        return Some((v.parse::<ImpactVersion>().ok()?, Kind::Notes));
    }
    if let Some(v) = rest.strip_suffix(".tar") {
        return Some((v.parse::<ImpactVersion>().ok()?, Kind::Package));
    }
    let (v, script) = rest.split_once(".script-")?;
    let n = script.strip_suffix(".json")?;
    if n.len() != 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let order: u32 = n.parse().ok()?;
    (order > 0).then_some(())?;
    Some((v.parse::<ImpactVersion>().ok()?, Kind::Script(order)))
}

/// The releases that signed targets describe, oldest first. Targets whose name has
/// another form, or whose `custom` fields disagree with their name, are ignored.
pub fn catalogue(repo: &Repository) -> Vec<ReleaseInfo> {
    let mut by_version: BTreeMap<ImpactVersion, ReleaseInfo> = BTreeMap::new();
    for (name, target) in &repo.targets().signed.targets {
        let raw = name.raw();
        let Some((version, kind)) = parse_name(raw).filter(|_| raw == name.resolved()) else {
            tracing::warn!(target = %raw.escape_debug(), "ignoring a target whose name has an unexpected form");
            continue;
        };
        let custom_version = target.custom.get("version").and_then(|v| v.as_str());
        if custom_version
            .is_some_and(|cv| cv.parse::<ImpactVersion>().ok().as_ref() != Some(&version))
        {
            tracing::warn!(target = %raw, "ignoring a target whose custom version disagrees with its name");
            continue;
        }
        let entry = by_version.entry(version).or_insert_with(|| ReleaseInfo {
            version,
            published_at: None,
            required: false,
            package: None,
            notes: None,
            scripts: Vec::new(),
        });
        let r = TargetRef::new(raw, target);
        match kind {
            Kind::Package => {
                entry.published_at = target
                    .custom
                    .get("published_at")
                    .and_then(|v| v.as_str())
                    .and_then(|s| {
                        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                            .ok()
                    });
                entry.required = target
                    .custom
                    .get("required")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                entry.package = Some(r);
            }
            Kind::Notes => entry.notes = Some(r),
            Kind::Script(order) => entry.scripts.push((order, r)),
        }
    }
    let mut out: Vec<ReleaseInfo> = by_version
        .into_values()
        .filter(|r| r.package.is_some())
        .collect();
    for r in &mut out {
        r.scripts.sort_by_key(|(o, _)| *o);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_name_forms_are_read() {
        assert_eq!(
            parse_name("iea-3.00.72.tar").map(|(v, k)| (v.to_string(), k)),
            Some(("3.00.72".into(), Kind::Package))
        );
        assert_eq!(
            parse_name("iea-3.00.72.script-002.json").map(|(_, k)| k),
            Some(Kind::Script(2))
        );
        assert!(parse_name("iea-3.00.72.lisez-moi.txt").is_some());
        for bad in [
            "../../iea-9.99.99.tar",
            "..%2F..%2Fiea-9.99.99.tar",
            "%2e%2e/%2e%2e/iea-9.99.98.tar",
            "/etc/iea-9.99.97.tar",
            "iea-9.99.96.tar/../../../evil",
            "iea-...tar",
            "iea-3.00.72.script-000.json",
            "iea-3.00.72.script-1.json",
        ] {
            assert!(parse_name(bad).is_none(), "{bad}");
        }
    }
}
