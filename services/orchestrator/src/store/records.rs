//! Settings records: one typed value per kind, each under its key. Every key is declared
//! here and nowhere else; a record is stored as text (the JSON of its type, or the plain
//! word of the older records, kept as existing installations wrote them).

use super::Store;
use super::engine::Db;
use crate::users::InstallationMode;

/// A kind of settings record.
pub trait Record: Sized + Send + 'static {
    const KEY: &'static str;
    fn encode(&self) -> anyhow::Result<String>;
    fn decode(text: &str) -> anyhow::Result<Self>;
}

macro_rules! json_record {
    ($type:ty, $key:literal) => {
        impl Record for $type {
            const KEY: &'static str = $key;
            fn encode(&self) -> anyhow::Result<String> {
                Ok(serde_json::to_string(self)?)
            }
            fn decode(text: &str) -> anyhow::Result<Self> {
                Ok(serde_json::from_str(text)?)
            }
        }
    };
}

json_record!(crate::status::Snapshot, "status");
json_record!(crate::connection::ConnectionSettings, "connection");
json_record!(crate::assistance::LockState, "assistance_lock");
json_record!(crate::access::TestRecord, "last_access_test");
json_record!(crate::access::RepairHistory, "repair_history");
json_record!(crate::returns::FollowPolicy, "returns_follow");

impl Record for InstallationMode {
    const KEY: &'static str = "installation_mode";
    fn encode(&self) -> anyhow::Result<String> {
        Ok(match self {
            InstallationMode::Monoposte => "monoposte",
            InstallationMode::Reseau => "reseau",
        }
        .to_owned())
    }
    fn decode(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "reseau" => InstallationMode::Reseau,
            _ => InstallationMode::Monoposte,
        })
    }
}

/// The installed Impact emploi version, as the last update left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledVersion(pub iea_version::ImpactVersion);

impl Record for InstalledVersion {
    const KEY: &'static str = "installed_version";
    fn encode(&self) -> anyhow::Result<String> {
        Ok(self.0.to_string())
    }
    fn decode(text: &str) -> anyhow::Result<Self> {
        Ok(Self(text.parse()?))
    }
}

pub(super) fn get<R: Record>(db: &mut Db<'_>) -> anyhow::Result<Option<R>> {
    let text: Option<String> = db.query_opt(
        "SELECT value FROM settings WHERE key = $1",
        &[&R::KEY],
        |r| r.get(0),
    )?;
    text.map(|t| R::decode(&t)).transpose()
}

pub(super) fn put<R: Record>(db: &mut Db<'_>, record: &R) -> anyhow::Result<()> {
    let text = record.encode()?;
    db.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&R::KEY, &text],
    )?;
    Ok(())
}

pub(super) fn installation_mode(db: &mut Db<'_>) -> anyhow::Result<InstallationMode> {
    Ok(get(db)?.unwrap_or(InstallationMode::Monoposte))
}

impl Store {
    /// The record of kind `R`, if one was ever saved.
    pub async fn load<R: Record>(&self) -> anyhow::Result<Option<R>> {
        self.read(get::<R>).await
    }

    pub async fn save<R: Record>(&self, record: R) -> anyhow::Result<()> {
        self.read(move |db| put(db, &record)).await
    }

    /// Reads, changes and writes the record of kind `R` in one transaction.
    pub async fn update<R: Record>(
        &self,
        change: impl FnOnce(Option<R>) -> R + Send + 'static,
    ) -> anyhow::Result<()> {
        self.write(move |db| {
            db.lock_key(&format!("setting:{}", R::KEY))?;
            let next = change(get(db)?);
            put(db, &next)
        })
        .await
    }
}
