//! Password hashing on a small dedicated pool of threads.
//!
//! argon2id uses 19 MiB per hash by design. Run on the general blocking pool, every
//! thread that ever hashed keeps its own malloc arena holding such a block, and memory
//! grows with the number of threads (seen: 2.5 GB after 1,000 account creations). Two
//! long-lived threads bound it to two blocks, and bound the CPU that logins can take.
//!
//! Invariant: the argon2 functions are private to this module, so that no caller can
//! hash anywhere but on the pool (nor while holding the database, as account creation
//! once did).

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};

/// Threads that hash.
pub const THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Mutex<mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a hashing thread");
        }
        Mutex::new(tx)
    })
}

async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    pool()
        .lock()
        .map_err(|_| anyhow::anyhow!("hashing pool lock"))?
        .send(job)
        .map_err(|_| anyhow::anyhow!("hashing pool stopped"))?;
    rx.await.map_err(|_| anyhow::anyhow!("hashing job lost"))
}

/// argon2id hash of `password`, PHC string.
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    run(move || hash_password(password.expose_secret())).await?
}

/// Whether `password` matches `hash`.
pub async fn verify(password: SecretString, hash: String) -> anyhow::Result<bool> {
    run(move || verify_password(password.expose_secret(), &hash)).await
}

/// Spends the time of a real check, for refusals that must not be told apart by timing.
pub async fn verify_nobody(password: SecretString) -> anyhow::Result<()> {
    run(move || {
        let _ = verify_password(password.expose_secret(), dummy_hash());
    })
    .await
}

thread_local! {
    /// argon2's 19 MiB working memory, kept by each hashing thread and reused: allocated
    /// anew for every hash, glibc's adaptive mmap threshold would keep each freed block
    /// (seen: +10 MB of resident memory per login).
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn argon2_into(
    password: &str,
    salt: &[u8],
    params: argon2::Params,
    out: &mut [u8],
) -> anyhow::Result<()> {
    let n = params.block_count();
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < n {
            blocks.resize(n, argon2::Block::default());
        }
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut blocks[..n])
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
}

/// argon2id hash in PHC string form. Slow on purpose: only ever run on the pool.
fn hash_password(password: &str) -> anyhow::Result<String> {
    let params = argon2::Params::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(password, salt_raw, params.clone(), &mut out)?;
    let phc = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(
            argon2::password_hash::Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?,
        ),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash`, compared in constant time.
fn verify_password(password: &str, hash: &str) -> bool {
    let check = || -> anyhow::Result<bool> {
        let phc = PasswordHash::new(hash).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            phc.algorithm == argon2::Algorithm::Argon2id.ident(),
            "not argon2id"
        );
        let params = argon2::Params::try_from(&phc).map_err(|e| anyhow::anyhow!("{e}"))?;
        let expected = phc.hash.ok_or_else(|| anyhow::anyhow!("no hash"))?;
        let mut salt_buf = [0u8; 64];
        let salt = phc
            .salt
            .ok_or_else(|| anyhow::anyhow!("no salt"))?
            .decode_b64(&mut salt_buf)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut out = vec![0u8; expected.len()];
        argon2_into(password, salt, params, &mut out)?;
        Ok(
            argon2::password_hash::Output::new(&out).map_err(|e| anyhow::anyhow!("{e}"))?
                == expected,
        )
    };
    check().unwrap_or(false)
}

/// The hash of a random password nobody knows, for constant-cost refusals.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&crate::sessions::random_secret(16)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_reads_as_standard_phc() {
        let h = hash_password("Mot-de-passe").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("Mot-de-passe", &h));
        assert!(!verify_password("mot-de-passe", &h));
        // A hash made by the argon2 crate's own API verifies too.
        use argon2::password_hash::PasswordHasher;
        let other = Argon2::default()
            .hash_password(b"x", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_password("x", &other));
    }

    #[test]
    fn the_dummy_hash_is_a_valid_hash() {
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }
}
