//! What the command prints: French sentences for people, JSON for programs, and one
//! error shape for both.

use std::io::Write;

use iea_proto::error::ApiError;

/// `println!` that ends the program quietly when the reader of its output has gone
/// (`iea status | head -1`) instead of panicking on the broken pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

pub fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|_| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}
use serde_json::json;

/// A failure of a command: stable code (English) and French message.
#[derive(Debug)]
pub struct CliError {
    pub code: String,
    pub message: String,
}

impl CliError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<ApiError> for CliError {
    fn from(e: ApiError) -> Self {
        Self {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        ApiError::from_status(&s).into()
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

pub fn print_error(e: &CliError, json: bool) {
    if json {
        say!(
            "{}",
            json!({"error": {"code": e.code, "message": e.message}})
        );
    } else {
        eprintln!("Erreur : {}", e.message);
    }
}

pub fn print_json(value: &serde_json::Value) {
    say!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A protobuf timestamp for a person: « 1er décembre 2026 à 11 h 20 », Paris time
/// (`iea_fr_time`, the one formatting every front-end shares). Human output uses this,
/// never [`rfc3339`].
pub fn when(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.map(|t| iea_fr_time::date_time_unix(t.seconds))
}

/// The day only, « 1er décembre 2026 », Paris time.
pub fn day(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.map(|t| iea_fr_time::date(iea_fr_time::from_unix(t.seconds)))
}

/// RFC 3339 UTC form of a protobuf timestamp: for JSON output only.
pub fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    time::OffsetDateTime::from_unix_timestamp(ts.seconds)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}
