//! The signed repository (TUF, consistent snapshots) and what the service serves from it.
//!
//! Honest metadata is made by tough's `RepositoryEditor` from every published release
//! (targets, snapshot and timestamp signed by their own ed25519 key; root chain signed by
//! the root key, by the old and the new one across a root rotation). Attack modes
//! ([`crate::attack`]) add an *overlay*: files served instead of, or beside, the honest
//! ones, some of them validly signed (a compromised or careless repository), some not.
//!
//! Metadata versions come from one counter that starts at the Unix time of the mock's
//! start (or past the last one used, kept in the repository directory), so that
//! versions keep going up across restarts of a mock whose keys persist.
//! Every change (publish, rotation, attack switched) signs a new timestamp, snapshot and
//! targets with fresh versions.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tough::editor::RepositoryEditor;
use tough::editor::signed::SignedRole;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::{Hashes, KeyHolder, Metafile, RoleKeys, Root, Signed, Target, Timestamp};

use crate::attack::Attack;
use crate::keys::{KeySet, Role, SigningKey};
use crate::release::ReleaseSpec;
use iea_version::ImpactVersion;

const SPEC_VERSION: &str = "1.0.0";

/// How long each role's metadata stays valid after it is signed, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expiry {
    pub root_secs: u64,
    pub targets_secs: u64,
    pub snapshot_secs: u64,
    pub timestamp_secs: u64,
}

impl Default for Expiry {
    fn default() -> Self {
        Self {
            root_secs: 365 * 86_400,
            targets_secs: 30 * 86_400,
            snapshot_secs: 7 * 86_400,
            timestamp_secs: 86_400,
        }
    }
}

/// What a served path holds.
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Bytes),
    /// A target file on disk.
    File {
        path: PathBuf,
        len: u64,
    },
}

/// One target file of the honest repository.
#[derive(Debug, Clone)]
struct TargetFile {
    path: PathBuf,
    target: Target,
}

/// A release as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseView {
    pub version: ImpactVersion,
    pub published_at: String,
    pub required: bool,
    pub package: String,
    pub package_length: u64,
    pub package_sha256: String,
    pub notes: Option<String>,
    pub scripts: Vec<String>,
}

/// Versions of the metadata currently served (honest).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MetadataVersions {
    pub root: u64,
    pub targets: u64,
    pub snapshot: u64,
    pub timestamp: u64,
}

pub struct Repo {
    /// Where target files and scratch metadata are written.
    work: PathBuf,
    /// Keys and root chain kept across restarts, when set.
    persist: Option<PathBuf>,
    pub(crate) keys: KeySet,
    /// Root metadata, versions 1..=N, as served.
    roots: Vec<Bytes>,
    pub(crate) root: Signed<Root>,
    /// By version, so the last is the newest.
    releases: BTreeMap<ImpactVersion, ReleaseSpec>,
    published_at: HashMap<ImpactVersion, String>,
    files: BTreeMap<String, TargetFile>,
    /// `metadata/<file>` and `targets/<file>` of the honest repository.
    served: HashMap<String, Content>,
    /// Every timestamp and snapshot ever signed, oldest first (rollback attacks).
    pub(crate) timestamps: Vec<Bytes>,
    pub(crate) snapshots: Vec<(u64, Bytes)>,
    pub(crate) versions: MetadataVersions,
    counter: u64,
    pub(crate) expiry: Expiry,
    pub(crate) attack: Attack,
    /// Files served instead of (or beside) the honest ones while an attack is on.
    pub(crate) overlay: HashMap<String, Content>,
    /// Written with the latest root after every root change.
    root_file: Option<PathBuf>,
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Whole seconds: tough writes expiry times to the second, and what is signed must be
/// what is served.
pub(crate) fn expires_in(secs: i64) -> anyhow::Result<jiff::Timestamp> {
    Ok(jiff::Timestamp::from_second(unix_now() + secs)?)
}

fn nz(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN)
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 4)
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The three signed files of one signing of targets, snapshot and timestamp.
pub(crate) struct SignedMeta {
    pub targets: Bytes,
    pub snapshot: Bytes,
    pub timestamp: Bytes,
}

/// Overrides for one signing (attacks).
#[derive(Default)]
pub(crate) struct SignOptions {
    pub expires: HashMap<Role, jiff::Timestamp>,
    /// Same version for the three roles; a fresh one from the counter when absent.
    pub version: Option<u64>,
}

impl Repo {
    /// A repository with new keys (or the persisted ones), root version 1 unless a
    /// persisted chain exists.
    pub async fn create(
        work: PathBuf,
        persist: Option<PathBuf>,
        root_file: Option<PathBuf>,
        expiry: Expiry,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(work.join("targets"))?;
        let keys = match &persist {
            Some(dir) => KeySet::load_or_generate(&dir.join("keys"))?,
            None => KeySet::generate()?,
        };
        let mut roots = Vec::new();
        if let Some(dir) = &persist {
            let mut n = 1u64;
            loop {
                let path = dir.join("metadata").join(format!("{n}.root.json"));
                if !path.exists() {
                    break;
                }
                roots.push(Bytes::from(std::fs::read(&path)?));
                n += 1;
            }
        }
        // Versions only go up, also across restarts (clients refuse older ones).
        let persisted_counter = persist
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("metadata-version")).ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let root = match roots.last() {
            Some(bytes) => serde_json::from_slice(bytes).context("persisted root")?,
            None => Signed {
                signed: Root {
                    spec_version: SPEC_VERSION.into(),
                    consistent_snapshot: true,
                    version: NonZeroU64::MIN,
                    expires: expires_in(secs(expiry.root_secs))?,
                    keys: HashMap::new(),
                    roles: HashMap::new(),
                    _extra: HashMap::new(),
                },
                signatures: Vec::new(),
            },
        };
        let mut repo = Self {
            work,
            persist,
            keys,
            roots,
            root,
            releases: BTreeMap::new(),
            published_at: HashMap::new(),
            files: BTreeMap::new(),
            served: HashMap::new(),
            timestamps: Vec::new(),
            snapshots: Vec::new(),
            versions: MetadataVersions::default(),
            counter: u64::try_from(unix_now())
                .unwrap_or(1)
                .max(persisted_counter),
            expiry,
            attack: Attack::None,
            overlay: HashMap::new(),
            root_file,
        };
        if repo.roots.is_empty() {
            let root = repo.root_for(&repo.keys.clone(), 1)?;
            let signed = repo
                .sign_root(root, &[repo.keys.get(Role::Root).clone()])
                .await?;
            repo.push_root(signed)?;
        } else {
            repo.versions.root = repo.root.signed.version.get();
            repo.write_root_files()?;
        }
        Ok(repo)
    }

    /// Root metadata of `version` naming the keys of `keys`, one per role, threshold 1.
    pub(crate) fn root_for(&self, keys: &KeySet, version: u64) -> anyhow::Result<Root> {
        let mut map = HashMap::new();
        let mut roles = HashMap::new();
        for role in Role::ALL {
            let key = keys.get(role);
            map.insert(key.keyid().clone(), key.public().clone());
            roles.insert(
                role.tuf(),
                RoleKeys {
                    keyids: vec![key.keyid().clone()],
                    threshold: NonZeroU64::MIN,
                    _extra: HashMap::new(),
                },
            );
        }
        Ok(Root {
            spec_version: SPEC_VERSION.into(),
            consistent_snapshot: true,
            version: nz(version),
            expires: expires_in(secs(self.expiry.root_secs))?,
            keys: map,
            roles,
            _extra: HashMap::new(),
        })
    }

    /// Signs `root` with each of `signers`, whichever root (old or new) names them.
    pub(crate) async fn sign_root(
        &self,
        root: Root,
        signers: &[SigningKey],
    ) -> anyhow::Result<Signed<Root>> {
        let rng = SystemRandom::new();
        let mut signatures = Vec::new();
        for key in signers {
            let holder_root = if root.keys.contains_key(key.keyid()) {
                root.clone()
            } else {
                self.root.signed.clone()
            };
            let signed = SignedRole::new(
                root.clone(),
                &KeyHolder::Root(holder_root),
                &[key.source()],
                &rng,
            )
            .await
            .context("signing root metadata")?;
            for s in &signed.signed().signatures {
                if !signatures
                    .iter()
                    .any(|x: &tough::schema::Signature| x.keyid == s.keyid)
                {
                    signatures.push(s.clone());
                }
            }
        }
        Ok(Signed {
            signed: root,
            signatures,
        })
    }

    /// Makes `root` the latest root: served, persisted, written for clients.
    pub(crate) fn push_root(&mut self, root: Signed<Root>) -> anyhow::Result<()> {
        let bytes = pretty(&root)?;
        self.versions.root = root.signed.version.get();
        self.roots.push(bytes.clone());
        self.root = root;
        if let Some(dir) = &self.persist {
            iea_runtime::pki::write_file(
                &dir.join("metadata")
                    .join(format!("{}.root.json", self.versions.root)),
                &bytes,
                false,
            )?;
        }
        self.write_root_files()
    }

    fn write_root_files(&self) -> anyhow::Result<()> {
        let latest = self.roots.last().cloned().unwrap_or_default();
        iea_runtime::pki::write_file(&self.work.join("root.json"), &latest, false)?;
        if let Some(path) = &self.root_file {
            iea_runtime::pki::write_file(path, &latest, false)?;
        }
        Ok(())
    }

    /// The latest root metadata: what a client is configured to trust.
    pub fn latest_root(&self) -> Bytes {
        self.roots.last().cloned().unwrap_or_default()
    }

    fn next_version(&mut self) -> u64 {
        self.counter += 1;
        if let Some(dir) = &self.persist
            && let Err(e) = iea_runtime::pki::write_file(
                &dir.join("metadata-version"),
                self.counter.to_string().as_bytes(),
                false,
            )
        {
            tracing::warn!(error = %e, "could not keep the metadata version counter");
        }
        self.counter
    }

    /// Adds (or replaces) a release and signs a new repository.
    pub async fn publish(&mut self, spec: ReleaseSpec) -> anyhow::Result<ReleaseView> {
        let published_at = spec.published_at.clone().unwrap_or_else(|| {
            jiff::Timestamp::from_second(unix_now())
                .map(|t| t.to_string())
                .unwrap_or_default()
        });
        // Old files of a replaced release are removed from the repository.
        let prefix = format!("iea-{}.", spec.version);
        self.files.retain(|name, _| !name.starts_with(&prefix));
        let dir = self.work.join("targets");
        let custom_base = |kind: &str| {
            let mut m = HashMap::new();
            m.insert("kind".to_owned(), serde_json::Value::from(kind));
            m.insert(
                "version".to_owned(),
                serde_json::Value::from(spec.version.to_string()),
            );
            m
        };
        // Package.
        let scratch = dir.join(format!(".{}.tmp", spec.package_name()));
        let spec2 = spec.clone();
        let scratch2 = scratch.clone();
        tokio::task::spawn_blocking(move || spec2.write_package(&scratch2)).await??;
        let mut custom = custom_base("package");
        custom.insert("published_at".into(), published_at.clone().into());
        custom.insert("required".into(), spec.required.into());
        self.add_file(&spec.package_name(), FileSource::Path(scratch), custom)
            .await?;
        if let Some(notes) = &spec.notes {
            self.add_file(
                &spec.notes_name(),
                FileSource::Bytes(notes.clone().into_bytes()),
                custom_base("notes"),
            )
            .await?;
        }
        for (order, doc) in spec.script_documents() {
            let mut custom = custom_base("script");
            custom.insert("order".into(), order.into());
            self.add_file(
                &spec.script_name(order),
                FileSource::Bytes(serde_json::to_vec_pretty(&doc)?),
                custom,
            )
            .await?;
        }
        self.published_at.insert(spec.version, published_at);
        self.releases.insert(spec.version, spec.clone());
        self.sign_honest().await?;
        tracing::info!(version = %spec.version, "release published");
        self.release_view(&spec)
    }

    async fn add_file(
        &mut self,
        name: &str,
        source: FileSource,
        custom: HashMap<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        let dir = self.work.join("targets");
        let (path, digest, length) = match source {
            FileSource::Bytes(b) => {
                let digest = sha256(&b);
                let path = dir.join(format!("{}.{name}", hex::encode(&digest)));
                tokio::fs::write(&path, &b).await?;
                (path, digest, b.len() as u64)
            }
            FileSource::Path(scratch) => {
                let s2 = scratch.clone();
                let (digest, length) =
                    tokio::task::spawn_blocking(move || hash_file(&s2)).await??;
                let path = dir.join(format!("{}.{name}", hex::encode(&digest)));
                tokio::fs::rename(&scratch, &path).await?;
                (path, digest, length)
            }
        };
        let target = Target {
            length,
            hashes: Hashes {
                sha256: Decoded::from(digest),
                _extra: HashMap::new(),
            },
            custom,
            _extra: HashMap::new(),
        };
        self.files
            .insert(name.to_owned(), TargetFile { path, target });
        Ok(())
    }

    /// A target file for an attack: written beside the honest ones, not listed.
    pub(crate) async fn write_loose_target(
        &self,
        file_name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<Content> {
        let path = self.work.join("targets").join(format!(
            ".overlay.{}",
            hex::encode(sha256(file_name.as_bytes()))
        ));
        tokio::fs::write(&path, bytes).await?;
        Ok(Content::File {
            path,
            len: bytes.len() as u64,
        })
    }

    /// The honest target list: name → (target, file).
    pub(crate) fn target_entries(&self) -> Vec<(String, Target)> {
        self.files
            .iter()
            .map(|(n, f)| (n.clone(), f.target.clone()))
            .collect()
    }

    pub(crate) fn target_path(&self, name: &str) -> Option<(PathBuf, Target)> {
        self.files
            .get(name)
            .map(|f| (f.path.clone(), f.target.clone()))
    }

    /// The consistent-snapshot file name of a target.
    pub(crate) fn consistent_name(name: &str, target: &Target) -> String {
        format!("{}.{name}", hex::encode(&target.hashes.sha256))
    }

    /// Signs targets, snapshot and timestamp over `entries` with tough's editor.
    pub(crate) async fn sign_meta(
        &mut self,
        entries: &[(String, Target)],
        options: SignOptions,
    ) -> anyhow::Result<(u64, SignedMeta)> {
        let version = match options.version {
            Some(v) => v,
            None => self.next_version(),
        };
        let exp = |role: Role, default: u64| -> anyhow::Result<jiff::Timestamp> {
            match options.expires.get(&role) {
                Some(t) => Ok(*t),
                None => expires_in(secs(default)),
            }
        };
        let mut editor = RepositoryEditor::new(self.work.join("root.json"))
            .await
            .context("opening the repository editor")?;
        for (name, target) in entries {
            editor
                .add_target(name.clone(), target.clone())
                .with_context(|| format!("adding target {name}"))?;
        }
        editor
            .targets_version(nz(version))?
            .targets_expires(exp(Role::Targets, self.expiry.targets_secs)?)?
            .snapshot_version(nz(version))
            .snapshot_expires(exp(Role::Snapshot, self.expiry.snapshot_secs)?)
            .timestamp_version(nz(version))
            .timestamp_expires(exp(Role::Timestamp, self.expiry.timestamp_secs)?);
        let signed = editor
            .sign(&self.keys.editor_sources())
            .await
            .context("signing the repository")?;
        let out = self.work.join(format!(".sign-{version}"));
        let _ = tokio::fs::remove_dir_all(&out).await;
        signed
            .write(&out)
            .await
            .context("writing signed metadata")?;
        let read = |name: String| {
            let path = out.join(name);
            async move {
                tokio::fs::read(&path)
                    .await
                    .map(Bytes::from)
                    .with_context(|| format!("reading {}", path.display()))
            }
        };
        let meta = SignedMeta {
            targets: read(format!("{version}.targets.json")).await?,
            snapshot: read(format!("{version}.snapshot.json")).await?,
            timestamp: read("timestamp.json".into()).await?,
        };
        let _ = tokio::fs::remove_dir_all(&out).await;
        Ok((version, meta))
    }

    /// Signs the honest repository anew and serves it.
    pub async fn sign_honest(&mut self) -> anyhow::Result<()> {
        let entries = self.target_entries();
        let (version, meta) = self.sign_meta(&entries, SignOptions::default()).await?;
        self.versions.targets = version;
        self.versions.snapshot = version;
        self.versions.timestamp = version;
        self.served.insert(
            format!("metadata/{version}.targets.json"),
            Content::Bytes(meta.targets),
        );
        self.served.insert(
            format!("metadata/{version}.snapshot.json"),
            Content::Bytes(meta.snapshot.clone()),
        );
        self.served.insert(
            "metadata/timestamp.json".into(),
            Content::Bytes(meta.timestamp.clone()),
        );
        self.snapshots.push((version, meta.snapshot));
        self.timestamps.push(meta.timestamp);
        for (name, file) in &self.files {
            self.served.insert(
                format!("targets/{}", Self::consistent_name(name, &file.target)),
                Content::File {
                    path: file.path.clone(),
                    len: file.target.length,
                },
            );
        }
        Ok(())
    }

    /// Serves the metadata and files of a signing (an attack's) in the overlay.
    pub(crate) fn overlay_meta(&mut self, version: u64, meta: SignedMeta, which: &[Role]) {
        for role in which {
            let (path, bytes) = match role {
                Role::Targets => (
                    format!("metadata/{version}.targets.json"),
                    meta.targets.clone(),
                ),
                Role::Snapshot => (
                    format!("metadata/{version}.snapshot.json"),
                    meta.snapshot.clone(),
                ),
                Role::Timestamp => ("metadata/timestamp.json".to_owned(), meta.timestamp.clone()),
                Role::Root => continue,
            };
            self.overlay.insert(path, Content::Bytes(bytes));
        }
    }

    /// What `path` (`metadata/…` or `targets/…`) serves now.
    pub fn lookup(&self, path: &str) -> Option<Content> {
        if let Some(c) = self.overlay.get(path) {
            return Some(c.clone());
        }
        if let Some(rest) = path.strip_prefix("metadata/") {
            if let Some(n) = rest.strip_suffix(".root.json") {
                let n: usize = n.parse().ok()?;
                return self
                    .roots
                    .get(n.checked_sub(1)?)
                    .cloned()
                    .map(Content::Bytes);
            }
            if rest == "root.json" {
                return Some(Content::Bytes(self.latest_root()));
            }
        }
        self.served.get(path).cloned()
    }

    /// Rotates the key of `role`: a new root version names the new key; a new root key
    /// signs beside the old one.
    pub async fn rotate(&mut self, role: Role) -> anyhow::Result<()> {
        let mut keys = self.keys.clone();
        let new_key = SigningKey::generate()?;
        keys.0.insert(role, new_key.clone());
        let root = self.root_for(&keys, self.versions.root + 1)?;
        let mut signers = vec![self.keys.get(Role::Root).clone()];
        if role == Role::Root {
            signers.push(new_key.clone());
        }
        let signed = self.sign_root(root, &signers).await?;
        self.push_root(signed)?;
        if let Some(dir) = &self.persist {
            iea_runtime::pki::write_file(
                &dir.join("keys").join(format!("{}.pk8", role.name())),
                new_key.pkcs8(),
                true,
            )?;
        }
        self.keys = keys;
        tracing::info!(
            role = role.name(),
            root_version = self.versions.root,
            "key rotated"
        );
        self.sign_honest().await
    }

    pub fn releases(&self) -> Vec<ReleaseView> {
        self.releases
            .values()
            .filter_map(|s| self.release_view(s).ok())
            .collect()
    }

    fn release_view(&self, spec: &ReleaseSpec) -> anyhow::Result<ReleaseView> {
        let package = self
            .files
            .get(&spec.package_name())
            .context("package of a published release")?;
        Ok(ReleaseView {
            version: spec.version,
            published_at: self
                .published_at
                .get(&spec.version)
                .cloned()
                .unwrap_or_default(),
            required: spec.required,
            package: spec.package_name(),
            package_length: package.target.length,
            package_sha256: hex::encode(&package.target.hashes.sha256),
            notes: spec.notes.as_ref().map(|_| spec.notes_name()),
            scripts: spec
                .script_documents()
                .iter()
                .map(|(o, _)| spec.script_name(*o))
                .collect(),
        })
    }

    /// The release with the highest version.
    pub(crate) fn latest_release(&self) -> Option<&ReleaseSpec> {
        self.releases.values().next_back()
    }

    pub(crate) fn timestamp_signed(&self) -> anyhow::Result<Signed<Timestamp>> {
        let bytes = self.timestamps.last().context("no timestamp yet")?;
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Signs `role` (a non-root role) with the current key of its role.
    pub(crate) async fn sign_role<T>(&self, role: T, key: Role) -> anyhow::Result<Signed<T>>
    where
        T: tough::schema::Role + Serialize + Clone,
    {
        let rng = SystemRandom::new();
        let signed = SignedRole::new(
            role,
            &KeyHolder::Root(self.root.signed.clone()),
            &[self.keys.get(key).source()],
            &rng,
        )
        .await
        .context("signing metadata")?;
        Ok(signed.signed().clone())
    }

    pub(crate) fn fresh_version(&mut self) -> u64 {
        self.next_version()
    }

    pub(crate) fn metafile(bytes: &[u8], version: u64) -> Metafile {
        Metafile {
            length: Some(bytes.len() as u64),
            hashes: Some(Hashes {
                sha256: Decoded::from(sha256(bytes)),
                _extra: HashMap::new(),
            }),
            version: nz(version),
            _extra: HashMap::new(),
        }
    }

    pub(crate) fn decoded(bytes: Vec<u8>) -> Decoded<Hex> {
        Decoded::from(bytes)
    }
}

enum FileSource {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

/// Pretty JSON plus a final newline, as tough's editor writes metadata.
pub(crate) fn pretty<T: Serialize>(value: &T) -> anyhow::Result<Bytes> {
    let mut v = serde_json::to_vec_pretty(value)?;
    v.push(b'\n');
    Ok(Bytes::from(v))
}

fn hash_file(path: &Path) -> anyhow::Result<(Vec<u8>, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((h.finalize().to_vec(), len))
}

/// Shared handle.
pub type SharedRepo = Arc<tokio::sync::Mutex<Repo>>;
