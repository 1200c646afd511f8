//! Releases: what one version of Impact emploi association is made of, and the files
//! the repository publishes for it.
//!
//! A release `V` publishes these targets (flat names, see the README):
//! - `iea-V.tar`: the package, a tar archive holding `VERSION` (the version, one line),
//!   `start-check` (`ok` or `fail`: what the new version's first start reports),
//!   `bin/impact-emploi` (a stand-in for the program), `lisez-moi.txt`, and
//!   `data/payload.bin` (deterministic filler, to make packages of any size);
//! - `iea-V.lisez-moi.txt`: the release notes, plain UTF-8 text, when there are some;
//! - `iea-V.script-NNN.json`: maintenance scripts, applied in order `NNN` (README).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use iea_version::ImpactVersion;
use serde::{Deserialize, Serialize};

/// The seeds' release notes.
pub const NOTES_3_00_70: &str = include_str!("../fixtures/lisez-moi-3.00.70.txt");
pub const NOTES_3_00_72: &str = include_str!("../fixtures/lisez-moi-3.00.72.txt");

/// A release as the admin API publishes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// `3.00.72`: a JSON string that is not an Impact emploi version is refused when the
    /// body is read.
    pub version: ImpactVersion,
    /// RFC 3339; now when absent.
    #[serde(default)]
    pub published_at: Option<String>,
    /// Installations below this version must update.
    #[serde(default)]
    pub required: bool,
    /// Release notes ("Lisez-moi"), plain text.
    #[serde(default)]
    pub notes: Option<String>,
    /// What the new version's start check reports.
    #[serde(default)]
    pub start_check: StartCheck,
    /// Size of the filler file inside the package, in bytes.
    #[serde(default = "default_payload")]
    pub payload_bytes: u64,
    /// Maintenance scripts, in the order they must run.
    #[serde(default)]
    pub scripts: Vec<ScriptSpec>,
    /// Extra archive entries, name → text. Names are written as given, `../` included:
    /// the mock can publish a hostile archive.
    #[serde(default)]
    pub extra_files: BTreeMap<String, String>,
}

fn default_payload() -> u64 {
    64 * 1024
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartCheck {
    #[default]
    Ok,
    Fail,
}

/// A maintenance script: parameter updates for the parameters table of the installation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSpec {
    /// French sentence saying what the script changes.
    pub description: String,
    /// Parameters to set (name → value).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Parameters to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The JSON document a script target holds (the update client's `scripts` module reads
/// it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScriptDocument {
    pub version: String,
    pub order: u32,
    pub description: String,
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

impl ReleaseSpec {
    pub fn package_name(&self) -> String {
        format!("iea-{}.tar", self.version)
    }

    pub fn notes_name(&self) -> String {
        format!("iea-{}.lisez-moi.txt", self.version)
    }

    pub fn script_name(&self, order: u32) -> String {
        format!("iea-{}.script-{order:03}.json", self.version)
    }

    /// The two releases of the seeds.
    pub fn fixtures() -> Vec<ReleaseSpec> {
        vec![
            ReleaseSpec {
                version: crate::fixtures::FIRST.parse().expect("a version"),
                published_at: Some("2019-02-22T08:00:00Z".into()),
                required: false,
                notes: Some(NOTES_3_00_70.into()),
                start_check: StartCheck::Ok,
                payload_bytes: default_payload(),
                scripts: vec![ScriptSpec {
                    description: "Forfait social : suppression pour les entreprises de moins de 50 salariés (1er janvier 2019)".into(),
                    set: BTreeMap::from([
                        ("forfait_social.moins_50_salaries.taux".into(), "0".into()),
                        ("forfait_social.date_effet".into(), "2019-01-01".into()),
                    ]),
                    remove: vec![],
                }],
                extra_files: BTreeMap::new(),
            },
            ReleaseSpec {
                version: crate::fixtures::LATEST.parse().expect("a version"),
                published_at: Some("2019-03-19T08:00:00Z".into()),
                required: false,
                notes: Some(NOTES_3_00_72.into()),
                start_check: StartCheck::Ok,
                payload_bytes: default_payload(),
                scripts: vec![
                    ScriptSpec {
                        description: "Serveur d'authentification en mode sécurisé (https://)".into(),
                        set: BTreeMap::from([
                            ("connexion.mode_par_defaut".into(), "securise".into()),
                            (
                                "connexion.adresse_authentification".into(),
                                "https://impact-emploi.urssaf.fr".into(),
                            ),
                        ]),
                        remove: vec![],
                    },
                    ScriptSpec {
                        description: "DSN : bulletins sans référence à un temps de travail".into(),
                        set: BTreeMap::from([(
                            "dsn.bulletin_sans_temps_de_travail".into(),
                            "corrige".into(),
                        )]),
                        remove: vec![],
                    },
                ],
                extra_files: BTreeMap::new(),
            },
        ]
    }

    /// Writes the package archive to `path`.
    pub fn write_package(&self, path: &Path) -> anyhow::Result<()> {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        let mut add = |name: &str, size: u64, data: &mut dyn Read| -> anyhow::Result<()> {
            let mut header = tar::Header::new_gnu();
            // Written byte for byte so that hostile names (`../x`) can be published; the
            // tar crate's own path setter would refuse them.
            let bytes = name.as_bytes();
            anyhow::ensure!(bytes.len() < 100, "archive entry name too long: {name}");
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_size(size);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mtime(0);
            header.set_cksum();
            tar.append(&header, data)?;
            Ok(())
        };
        let version = format!("{}\n", self.version);
        add("VERSION", version.len() as u64, &mut version.as_bytes())?;
        let check = match self.start_check {
            StartCheck::Ok => "ok\n",
            StartCheck::Fail => "fail\n",
        };
        add("start-check", check.len() as u64, &mut check.as_bytes())?;
        let program = format!(
            "#!/bin/sh\necho \"Impact emploi association {}\"\n",
            self.version
        );
        add(
            "bin/impact-emploi",
            program.len() as u64,
            &mut program.as_bytes(),
        )?;
        let notes = self.notes.clone().unwrap_or_default();
        add("lisez-moi.txt", notes.len() as u64, &mut notes.as_bytes())?;
        for (name, text) in &self.extra_files {
            add(name, text.len() as u64, &mut text.as_bytes())?;
        }
        let mut filler = Filler::new(&self.version.to_string(), self.payload_bytes);
        add("data/payload.bin", self.payload_bytes, &mut filler)?;
        let mut out = tar.into_inner()?;
        out.flush()?;
        Ok(())
    }

    /// The script documents, in order (1, 2, …).
    pub fn script_documents(&self) -> Vec<(u32, ScriptDocument)> {
        self.scripts
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let order = u32::try_from(i + 1).unwrap_or(u32::MAX);
                (
                    order,
                    ScriptDocument {
                        version: self.version.to_string(),
                        order,
                        description: s.description.clone(),
                        set: s.set.clone(),
                        remove: s.remove.clone(),
                    },
                )
            })
            .collect()
    }
}

/// Deterministic pseudo-random bytes (xorshift), so that packages of any size can be made
/// without holding them in memory and do not compress to nothing.
struct Filler {
    state: u64,
    left: u64,
}

impl Filler {
    fn new(seed: &str, len: u64) -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for b in seed.bytes() {
            state = (state ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        Self {
            state: state | 1,
            left: len,
        }
    }
}

impl Read for Filler {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_holds_its_version_and_start_check() {
        let dir = tempfile::tempdir().unwrap();
        let spec = &ReleaseSpec::fixtures()[1];
        let path = dir.path().join("p.tar");
        spec.write_package(&path).unwrap();
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name == "VERSION" {
                let mut s = String::new();
                entry.read_to_string(&mut s).unwrap();
                assert_eq!(s, "3.00.72\n");
            }
            names.push(name);
        }
        assert!(names.contains(&"start-check".to_owned()), "{names:?}");
        assert!(names.contains(&"data/payload.bin".to_owned()), "{names:?}");
    }
}
