//! Encryption at rest of the secrets the orchestrator must be able to read back (each
//! account's Net-entreprises password, a proxy password).
//!
//! XChaCha20-Poly1305 with a random 192-bit nonce per value, and associated data that
//! binds a ciphertext to its row and purpose, so a value copied into another row does not
//! decrypt. The 256-bit key lives in a file outside the database (`secrets.key`, mode
//! 0600), created on first start; each ciphertext records the id of the key that sealed
//! it.
//!
//! Rotation is crash-safe: the new key is written to `secrets.key.next`, every value is
//! re-sealed in one database transaction, then the new file is renamed over the old. A
//! start that finds `secrets.key.next` loads both keys, and [`Keyring::pending_rotation`]
//! tells the caller to finish the job.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

pub const KEY_FILE: &str = "secrets.key";
const NEXT_SUFFIX: &str = "next";

/// A sealed value, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

struct KeyEntry {
    id: String,
    key: SecretBox<[u8; 32]>,
}

impl KeyEntry {
    fn new(bytes: [u8; 32]) -> Self {
        let id = hex(&Sha256::digest(bytes)[..8]);
        Self {
            id,
            key: SecretBox::new(Box::new(bytes)),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.key.expose_secret()))
    }
}

pub struct Keyring {
    path: PathBuf,
    /// Seals new values.
    current: KeyEntry,
    /// The key being replaced, while a rotation is unfinished.
    previous: Option<KeyEntry>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn next_path(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "{}.{NEXT_SUFFIX}",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ))
}

fn read_key(path: &Path) -> anyhow::Result<KeyEntry> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("{} does not hold a 32-byte key", path.display()))?;
    Ok(KeyEntry::new(arr))
}

fn new_key(path: &Path) -> anyhow::Result<KeyEntry> {
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    let bytes: [u8; 32] = key.into();
    iea_runtime::pki::write_file(path, &bytes, true)?;
    Ok(KeyEntry::new(bytes))
}

impl Keyring {
    /// Loads the key at `path`, creating it if this is the first start.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let next = next_path(path);
        if !path.exists() {
            anyhow::ensure!(
                !next.exists(),
                "{} exists without {}: restore the key file",
                next.display(),
                path.display()
            );
            let current = new_key(path)?;
            tracing::info!(path = %path.display(), key_id = %current.id, "encryption key created");
            return Ok(Self {
                path: path.to_owned(),
                current,
                previous: None,
            });
        }
        let old = read_key(path)?;
        if next.exists() {
            let current = read_key(&next)?;
            return Ok(Self {
                path: path.to_owned(),
                current,
                previous: Some(old),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            current: old,
            previous: None,
        })
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// True when a rotation was interrupted: re-seal, then [`Keyring::commit_rotation`].
    pub fn pending_rotation(&self) -> bool {
        self.previous.is_some()
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Sealed> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .current
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        Ok(Sealed {
            key_id: self.current.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> anyhow::Result<SecretString> {
        let entry = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| anyhow::anyhow!("no key with id {} (wrong key file?)", sealed.key_id))?;
        anyhow::ensure!(sealed.nonce.len() == 24, "stored nonce has a wrong length");
        let plain = entry
            .cipher()
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "a stored secret does not decrypt (altered, or moved to another row)"
                )
            })?;
        let text = String::from_utf8(plain).context("a stored secret is not UTF-8")?;
        Ok(SecretString::from(text))
    }

    /// Starts a rotation: a new key is written beside the current one and seals from now
    /// on; the old one still opens. Re-seal everything, then call `commit_rotation`.
    pub fn begin_rotation(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.previous.is_none(), "a rotation is already under way");
        let new = new_key(&next_path(&self.path))?;
        let old = std::mem::replace(&mut self.current, new);
        self.previous = Some(old);
        Ok(())
    }

    /// Ends a rotation once no value is sealed with the old key.
    pub fn commit_rotation(&mut self) -> anyhow::Result<()> {
        std::fs::rename(next_path(&self.path), &self.path)
            .context("installing the new key file")?;
        self.previous = None;
        tracing::info!(key_id = %self.current.id, "encryption key rotated");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_associated_data() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::load_or_create(&dir.path().join(KEY_FILE)).unwrap();
        let sealed = ring.seal(b"Refonte01", b"ne-password:1").unwrap();
        assert!(!sealed.ciphertext.windows(9).any(|w| w == b"Refonte01"));
        assert_eq!(
            ring.open(&sealed, b"ne-password:1")
                .unwrap()
                .expose_secret(),
            "Refonte01"
        );
        assert!(ring.open(&sealed, b"ne-password:2").is_err());
    }

    #[test]
    fn the_key_file_is_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let ring = Keyring::load_or_create(&path).unwrap();
        let sealed = ring.seal(b"x", b"a").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = Keyring::load_or_create(&path).unwrap();
        assert_eq!(again.current_id(), ring.current_id());
        assert_eq!(again.open(&sealed, b"a").unwrap().expose_secret(), "x");
    }

    #[test]
    fn an_interrupted_rotation_keeps_both_keys_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let mut ring = Keyring::load_or_create(&path).unwrap();
        let old = ring.seal(b"ancien", b"a").unwrap();
        ring.begin_rotation().unwrap();
        let new = ring.seal(b"nouveau", b"a").unwrap();
        assert_ne!(old.key_id, new.key_id);
        // "Crash" here: a restart sees both files.
        let mut reloaded = Keyring::load_or_create(&path).unwrap();
        assert!(reloaded.pending_rotation());
        assert_eq!(reloaded.open(&old, b"a").unwrap().expose_secret(), "ancien");
        assert_eq!(
            reloaded.open(&new, b"a").unwrap().expose_secret(),
            "nouveau"
        );
        reloaded.commit_rotation().unwrap();
        let done = Keyring::load_or_create(&path).unwrap();
        assert!(!done.pending_rotation());
        assert_eq!(done.current_id(), new.key_id);
        assert!(done.open(&old, b"a").is_err(), "the old key is gone");
    }
}
