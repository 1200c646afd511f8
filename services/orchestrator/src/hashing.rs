//! Password hashing on a small dedicated pool of threads.
//!
//! argon2id uses 19 MiB per hash by design. Run on the general blocking pool, every
//! thread that ever hashed keeps its own malloc arena holding such a block, and memory
//! grows with the number of threads (seen: 2.5 GB after 1,000 account creations). Two
//! long-lived threads bound it to two blocks, and bound the CPU that logins can take.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

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
    run(move || crate::sessions::hash_password(password.expose_secret())).await?
}

/// Whether `password` matches `hash`.
pub async fn verify(password: SecretString, hash: String) -> anyhow::Result<bool> {
    run(move || crate::sessions::verify_password(password.expose_secret(), &hash)).await
}

/// Spends the time of a real check, for refusals that must not be told apart by timing.
pub async fn verify_nobody(password: SecretString) -> anyhow::Result<()> {
    run(move || {
        let _ = crate::sessions::verify_password(
            password.expose_secret(),
            crate::sessions::dummy_hash(),
        );
    })
    .await
}
