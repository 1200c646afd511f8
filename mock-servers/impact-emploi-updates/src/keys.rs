//! Signing keys of the mock repository.
//!
//! Every key is an ed25519 key held as PKCS#8 (v2) DER, the form tough's `parse_keypair`
//! reads; aws-lc-rs (which tough depends on anyway) generates them. With a repository
//! directory the keys are written there (`<role>.pk8`, mode 0600) at first start and read
//! back afterwards, so that clients keep trusting the same root across restarts; without
//! one they live only in memory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use tough::async_trait;
use tough::key_source::KeySource;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::sign::{Sign, parse_keypair};

/// One private key, in memory. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SigningKey {
    pkcs8: Arc<Vec<u8>>,
    public: Key,
    keyid: Decoded<Hex>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("keyid", &hex::encode(&self.keyid))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random ed25519 key.
    pub fn generate() -> anyhow::Result<Self> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|e| anyhow::anyhow!("generating an ed25519 key: {e}"))?;
        Self::from_pkcs8(doc.as_ref().to_vec())
    }

    pub fn from_pkcs8(pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        let pair = parse_keypair(&pkcs8).map_err(|e| anyhow::anyhow!("reading a key: {e}"))?;
        let public = pair.tuf_key();
        let keyid = public
            .key_id()
            .map_err(|e| anyhow::anyhow!("computing a key id: {e}"))?;
        Ok(Self {
            pkcs8: Arc::new(pkcs8),
            public,
            keyid,
        })
    }

    /// Reads `path`, or generates a key and writes it there (mode 0600).
    pub fn load_or_generate(path: &Path) -> anyhow::Result<Self> {
        if path.exists() {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            return Self::from_pkcs8(bytes).with_context(|| format!("key {}", path.display()));
        }
        let key = Self::generate()?;
        iea_runtime::pki::write_file(path, &key.pkcs8, true)?;
        Ok(key)
    }

    /// The public half, as root metadata lists it.
    pub fn public(&self) -> &Key {
        &self.public
    }

    /// The private key, PKCS#8 DER.
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn keyid(&self) -> &Decoded<Hex> {
        &self.keyid
    }

    /// This key as tough's editor takes it.
    pub fn source(&self) -> Box<dyn KeySource> {
        Box::new(self.clone())
    }

    /// Signs `msg` (canonical JSON of a role).
    pub async fn sign(&self, msg: &[u8]) -> anyhow::Result<Vec<u8>> {
        let pair = parse_keypair(&self.pkcs8).map_err(|e| anyhow::anyhow!("reading a key: {e}"))?;
        pair.sign(msg, &SystemRandom::new())
            .await
            .map_err(|e| anyhow::anyhow!("signing: {e}"))
    }
}

#[async_trait]
impl KeySource for SigningKey {
    async fn as_sign(
        &self,
    ) -> Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(Box::new(parse_keypair(&self.pkcs8)?))
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err("the mock's keys are not written back through tough".into())
    }
}

/// The four top-level roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp];

    pub fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }

    pub fn tuf(self) -> tough::schema::RoleType {
        use tough::schema::RoleType;
        match self {
            Role::Root => RoleType::Root,
            Role::Targets => RoleType::Targets,
            Role::Snapshot => RoleType::Snapshot,
            Role::Timestamp => RoleType::Timestamp,
        }
    }
}

/// One key per role.
#[derive(Debug, Clone)]
pub struct KeySet(pub HashMap<Role, SigningKey>);

impl KeySet {
    pub fn generate() -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        for role in Role::ALL {
            map.insert(role, SigningKey::generate()?);
        }
        Ok(Self(map))
    }

    /// Keys from `dir/<role>.pk8`, generated where missing.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        for role in Role::ALL {
            map.insert(
                role,
                SigningKey::load_or_generate(&dir.join(format!("{}.pk8", role.name())))?,
            );
        }
        Ok(Self(map))
    }

    pub fn get(&self, role: Role) -> &SigningKey {
        &self.0[&role]
    }

    /// Keys of the non-root roles, as tough's editor takes them.
    pub fn editor_sources(&self) -> Vec<Box<dyn KeySource>> {
        [Role::Targets, Role::Snapshot, Role::Timestamp]
            .into_iter()
            .map(|r| self.get(r).source())
            .collect()
    }
}
