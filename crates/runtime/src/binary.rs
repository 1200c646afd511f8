//! The `main` of every component's binary: settings, tracing, signals, run, exit code.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::shutdown::Shutdown;
use crate::telemetry::{self, LogFormat};

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
