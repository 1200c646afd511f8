//! The `main` of every component's binary: settings, tracing, signals, run, exit code.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::shutdown::Shutdown;
use crate::telemetry::{self, LogFormat};

/// Async worker threads of a component's process, unless `TOKIO_WORKER_THREADS` says
/// otherwise: one. Each component waits on the network far more than it computes, and
/// what computes at length runs on the blocking pool or threads of its own (the
/// orchestrator's store, DSN checks and password hashing, the deposit agent's spool);
/// one worker spares the cross-thread wake-ups that, with several processes sharing the
/// two cores of an association's workstation, cost as much CPU as the work itself: in
/// `cargo bench -p iea-cli --bench verify`, the orchestrator spent 34 µs per verification
/// on two workers and 23 µs on one, the credential verifier 50 and 42.
pub const WORKER_THREADS: usize = 1;

/// The runtime of a component's process: [`WORKER_THREADS`] async workers (or
/// `TOKIO_WORKER_THREADS`), timers and I/O enabled. The binaries and the benchmarks that
/// run a component in a process of its own build it here.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(WORKER_THREADS);
    }
    builder.enable_all().build()
}

/// A component's `main`: its [`runtime`], then [`run`] on it.
pub fn main<S, F, Fut>(component: &'static str, run: F) -> ExitCode
where
    S: DeserializeOwned + Serialize + Default,
    F: FnOnce(S, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    match runtime() {
        Ok(rt) => rt.block_on(self::run(component, run)),
        Err(e) => {
            eprintln!("{component}: cannot start its runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `component` until SIGINT/SIGTERM. Settings come from the file named by
/// `--config FILE` (or `IEA_CONFIG`), overridden by `IEA_<COMPONENT>__*` variables.
/// Exits 0 after a clean stop, 1 after a failure (logged).
pub async fn run<S, F, Fut>(component: &'static str, run: F) -> ExitCode
where
    S: DeserializeOwned + Serialize + Default,
    F: FnOnce(S, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    telemetry::init(LogFormat::from_env(), "info");
    crate::install_crypto_provider();
    let config = config_path();
    let settings = match crate::settings::load::<S>(component, config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(component, error = format!("{e:#}"), "invalid settings");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signal();
    match run(settings, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(component, error = format!("{e:#}"), "failed");
            ExitCode::FAILURE
        }
    }
}

fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("IEA_CONFIG").map(PathBuf::from)
}
