//! What the mock knows: installations, the minimum software version, counters. Loaded
//! from a fixtures file at start, changed through the admin API, held in memory only.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use iea_version::ImpactVersion;

/// Licence status of an installation, as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceStatus {
    Active,
    /// "La licence vous a été retirée": consultation only.
    Withdrawn,
    /// "Autorisation refusée".
    Refused,
}

/// One installation known to the server.
#[derive(Clone)]
pub struct Installation {
    pub installation_id: String,
    pub licence_key: String,
    pub status: LicenceStatus,
    pub licence_holder: String,
    /// End of the licence; `None`: one year after each authentication.
    pub valid_until: Option<OffsetDateTime>,
    /// Key of the daily password; never returned by any API.
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("installation_id", &self.installation_id)
            .field("status", &self.status)
            .field("licence_holder", &self.licence_holder)
            .field("valid_until", &self.valid_until)
            .field("has_secret", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

/// An installation as the admin API and the fixtures file write it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInstallation {
    pub installation_id: String,
    pub licence_key: String,
    #[serde(default = "default_status")]
    pub status: LicenceStatus,
    #[serde(default)]
    pub licence_holder: String,
    /// RFC 3339.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Base64 (standard alphabet, padded), at least 16 bytes once decoded.
    #[serde(default)]
    pub secret: Option<String>,
}

fn default_status() -> LicenceStatus {
    LicenceStatus::Active
}

/// A partial change (`PATCH`): absent fields are left as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationPatch {
    pub licence_key: Option<String>,
    pub status: Option<LicenceStatus>,
    pub licence_holder: Option<String>,
    pub valid_until: Option<String>,
    pub secret: Option<String>,
}

/// An installation as the admin API shows it: neither the licence key nor the secret.
#[derive(Debug, Clone, Serialize)]
pub struct InstallationView {
    pub installation_id: String,
    pub status: LicenceStatus,
    pub licence_holder: String,
    pub valid_until: Option<String>,
    pub has_secret: bool,
}

impl From<&Installation> for InstallationView {
    fn from(i: &Installation) -> Self {
        Self {
            installation_id: i.installation_id.clone(),
            status: i.status,
            licence_holder: i.licence_holder.clone(),
            valid_until: i.valid_until.and_then(|t| t.format(&Rfc3339).ok()),
            has_secret: i.secret.is_some(),
        }
    }
}

/// The fixtures file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    #[serde(default)]
    pub minimum_version: Option<ImpactVersion>,
    #[serde(default)]
    pub installations: Vec<NewInstallation>,
}

/// The demonstration installations (`fixtures/demo.json`), compiled in.
const DEMO_FIXTURES: &str = include_str!("../fixtures/demo.json");

impl Fixtures {
    /// The demonstration installations the embedded stack loads with `--demo`.
    pub fn demo() -> anyhow::Result<Self> {
        serde_json::from_str(DEMO_FIXTURES).context("the demonstration fixtures")
    }
}

/// Minimum length of a daily-password secret, decoded.
pub const MIN_SECRET_LEN: usize = 16;

/// A value the admin API or the fixtures file cannot accept, with a French sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

fn parse_secret(b64: &str) -> Result<Vec<u8>, Invalid> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| invalid("secret", "Le secret doit être encodé en base64."))?;
    if bytes.len() < MIN_SECRET_LEN {
        return Err(invalid(
            "secret",
            format!("Le secret doit compter au moins {MIN_SECRET_LEN} octets."),
        ));
    }
    Ok(bytes)
}

fn parse_valid_until(text: &str) -> Result<OffsetDateTime, Invalid> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        invalid(
            "valid_until",
            format!("« {text} » n'est pas une date RFC 3339 (par exemple 2027-01-31T23:59:59Z)."),
        )
    })
}

fn check_licence_key(key: &str) -> Result<(), Invalid> {
    if key.is_empty() {
        return Err(invalid("licence_key", "La clé de licence est vide."));
    }
    Ok(())
}

impl TryFrom<NewInstallation> for Installation {
    type Error = Invalid;

    fn try_from(n: NewInstallation) -> Result<Self, Invalid> {
        if n.installation_id.trim().is_empty() || n.installation_id.len() > 128 {
            return Err(invalid(
                "installation_id",
                "L'identifiant d'installation doit être non vide (128 caractères au plus).",
            ));
        }
        check_licence_key(&n.licence_key)?;
        Ok(Self {
            installation_id: n.installation_id,
            licence_key: n.licence_key,
            status: n.status,
            licence_holder: n.licence_holder,
            valid_until: n
                .valid_until
                .as_deref()
                .map(parse_valid_until)
                .transpose()?,
            secret: n.secret.as_deref().map(parse_secret).transpose()?,
        })
    }
}

impl Installation {
    /// Applies `patch`, all or nothing.
    pub fn apply(&mut self, patch: InstallationPatch) -> Result<(), Invalid> {
        if let Some(k) = &patch.licence_key {
            check_licence_key(k)?;
        }
        let valid_until = patch
            .valid_until
            .as_deref()
            .map(parse_valid_until)
            .transpose()?;
        let secret = patch.secret.as_deref().map(parse_secret).transpose()?;
        if let Some(k) = patch.licence_key {
            self.licence_key = k;
        }
        if let Some(s) = patch.status {
            self.status = s;
        }
        if let Some(h) = patch.licence_holder {
            self.licence_holder = h;
        }
        if valid_until.is_some() {
            self.valid_until = valid_until;
        }
        if secret.is_some() {
            self.secret = secret;
        }
        Ok(())
    }
}

/// Counters of the authenticate route.
#[derive(Debug, Default)]
pub struct Stats {
    pub auth_requests: AtomicU64,
    pub authorized: AtomicU64,
    pub refused: AtomicU64,
    pub licence_withdrawn: AtomicU64,
    pub update_required: AtomicU64,
    pub bad_request: AtomicU64,
    /// The version the last well-formed request said was installed.
    pub last_software_version: std::sync::Mutex<Option<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    /// Every request that reached the authenticate route, whatever its answer.
    pub auth_requests: u64,
    pub by_result: BTreeMap<&'static str, u64>,
    pub last_software_version: Option<String>,
}

impl Stats {
    pub fn view(&self) -> StatsView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsView {
            auth_requests: get(&self.auth_requests),
            by_result: BTreeMap::from([
                ("authorized", get(&self.authorized)),
                ("refused", get(&self.refused)),
                ("licence_withdrawn", get(&self.licence_withdrawn)),
                ("update_required", get(&self.update_required)),
                ("bad_request", get(&self.bad_request)),
            ]),
            last_software_version: self
                .last_software_version
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    installations: BTreeMap<String, Installation>,
    minimum_version: Option<ImpactVersion>,
}

/// The mock's state, shared by the service and the admin API.
#[derive(Debug, Clone, Default)]
pub struct Store {
    inner: Arc<RwLock<Inner>>,
    stats: Arc<Stats>,
}

impl Store {
    /// A store holding `fixtures`.
    pub fn from_fixtures(fixtures: Fixtures) -> anyhow::Result<Self> {
        let store = Self::default();
        store.set_minimum_version(fixtures.minimum_version);
        for (i, n) in fixtures.installations.into_iter().enumerate() {
            let inst = Installation::try_from(n).with_context(|| format!("installations[{i}]"))?;
            store.upsert(inst);
        }
        Ok(store)
    }

    /// Reads a fixtures file (JSON).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading fixtures {}", path.display()))?;
        let fixtures: Fixtures = serde_json::from_str(&text)
            .with_context(|| format!("parsing fixtures {}", path.display()))?;
        Self::from_fixtures(fixtures).with_context(|| format!("fixtures {}", path.display()))
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Adds or replaces an installation; true if it is new.
    pub fn upsert(&self, inst: Installation) -> bool {
        let mut inner = self.inner.write().expect("store lock");
        inner
            .installations
            .insert(inst.installation_id.clone(), inst)
            .is_none()
    }

    pub fn get(&self, id: &str) -> Option<Installation> {
        self.inner
            .read()
            .expect("store lock")
            .installations
            .get(id)
            .cloned()
    }

    /// Applies `patch` to installation `id`; `Ok(None)` if it is unknown.
    pub fn patch(
        &self,
        id: &str,
        patch: InstallationPatch,
    ) -> Result<Option<Installation>, Invalid> {
        let mut inner = self.inner.write().expect("store lock");
        match inner.installations.get_mut(id) {
            None => Ok(None),
            Some(inst) => {
                inst.apply(patch)?;
                Ok(Some(inst.clone()))
            }
        }
    }

    pub fn minimum_version(&self) -> Option<ImpactVersion> {
        self.inner.read().expect("store lock").minimum_version
    }

    pub fn set_minimum_version(&self, v: Option<ImpactVersion>) {
        self.inner.write().expect("store lock").minimum_version = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_fixtures_load() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.json");
        let store = Store::load(&path).unwrap();
        assert!(store.minimum_version().is_some());
        let demo = store.get("IEA-DEMO-0001").unwrap();
        assert_eq!(demo.status, LicenceStatus::Active);
        assert!(demo.secret.is_some());
    }

    #[test]
    fn a_short_secret_or_a_bad_date_is_refused_and_nothing_changes() {
        let store = Store::from_fixtures(Fixtures {
            minimum_version: None,
            installations: vec![NewInstallation {
                installation_id: "A".into(),
                licence_key: "K".into(),
                status: LicenceStatus::Active,
                licence_holder: "H".into(),
                valid_until: None,
                secret: None,
            }],
        })
        .unwrap();
        let e = store
            .patch(
                "A",
                InstallationPatch {
                    status: Some(LicenceStatus::Withdrawn),
                    secret: Some("c2hvcnQ=".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.field, "secret");
        assert_eq!(store.get("A").unwrap().status, LicenceStatus::Active);
        let e = store
            .patch(
                "A",
                InstallationPatch {
                    valid_until: Some("demain".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.field, "valid_until");
    }

    #[test]
    fn debug_output_shows_neither_the_licence_key_nor_the_secret() {
        let inst = Installation {
            installation_id: "A".into(),
            licence_key: "CLE-TRES-SECRETE".into(),
            status: LicenceStatus::Active,
            licence_holder: "H".into(),
            valid_until: None,
            secret: Some(b"SECRET-DU-JOUR-0123".to_vec()),
        };
        let text = format!("{inst:?}");
        assert!(
            !text.contains("CLE-TRES-SECRETE") && !text.contains("SECRET-DU-JOUR"),
            "{text}"
        );
    }
}
