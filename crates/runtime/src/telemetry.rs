//! Tracing for every component: `RUST_LOG` filters (default `info`), `IEA_LOG_FORMAT=json`
//! switches to one JSON object per line for log collectors.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl LogFormat {
    /// From `IEA_LOG_FORMAT` (`json` or anything else for human).
    pub fn from_env() -> Self {
        match std::env::var("IEA_LOG_FORMAT").as_deref() {
            Ok("json") => Self::Json,
            _ => Self::Human,
        }
    }
}

/// Targets kept at `info` or above whatever is asked: the PostgreSQL driver logs each
/// query's parameters at `debug` (names, SIRETs, hashes), which must never reach a log.
const QUIET: &[&str] = &["tokio_postgres=info", "postgres=info"];

/// The filter of every component: `RUST_LOG`, else `default`, with [`QUIET`] applied.
pub fn filter(default: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    for directive in QUIET {
        filter = filter.add_directive(directive.parse().expect("literal directive"));
    }
    filter
}

/// Installs the global subscriber, writing to stderr. Does nothing if one is installed.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = filter(default_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
