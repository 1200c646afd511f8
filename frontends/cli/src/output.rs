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

/// Exit code of a command that failed (README: 0 success, 1 failure, 2 wrong usage, 3
/// a check that ran and did not pass).
pub const EXIT_FAILURE: u8 = 1;

/// A failure of a command: stable code (English), French message, and the exit code it
/// ends the program with ([`EXIT_FAILURE`] unless the command says otherwise).
#[derive(Debug)]
pub struct CliError {
    pub code: String,
    pub message: String,
    pub exit: u8,
}

impl CliError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            exit: EXIT_FAILURE,
        }
    }

    /// The same error, ending the program with `exit` (printed the same way).
    pub fn with_exit(self, exit: u8) -> Self {
        Self { exit, ..self }
    }
}

impl From<ApiError> for CliError {
    fn from(e: ApiError) -> Self {
        Self {
            code: e.code,
            message: e.message,
            exit: EXIT_FAILURE,
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

/// A system error in French words, for a message to a person: the system's own text is
/// English, so it is given only as a technical detail when the kind is not a usual one.
pub fn io_error_fr(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let said = match e.kind() {
        K::NotFound => "fichier ou répertoire introuvable",
        K::PermissionDenied => "permission refusée",
        K::AlreadyExists => "le fichier existe déjà",
        K::ConnectionRefused => "connexion refusée",
        K::ConnectionReset | K::ConnectionAborted => "connexion interrompue",
        K::TimedOut => "délai dépassé",
        K::StorageFull => "disque plein",
        K::ReadOnlyFilesystem => "système de fichiers en lecture seule",
        K::IsADirectory => "c'est un répertoire",
        K::NotADirectory => "un élément du chemin n'est pas un répertoire",
        K::InvalidData => "contenu illisible",
        _ => return format!("erreur du système (détail technique : {e})"),
    };
    said.to_owned()
}

/// Why a connection failed, in French: the first system error in `e`'s chain of causes,
/// or the chain itself as a technical detail.
pub fn connect_error_fr(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io_error_fr(io);
        }
        cur = err.source();
    }
    let mut chain = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        chain.push_str(": ");
        chain.push_str(&inner.to_string());
        cur = inner.source();
    }
    format!("détail technique : {chain}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_errors_are_said_in_french() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_error_fr(&refused), "connexion refusée");
        let denied = std::io::Error::from_raw_os_error(13);
        assert_eq!(io_error_fr(&denied), "permission refusée");
        let odd = std::io::Error::other("strange");
        assert_eq!(
            io_error_fr(&odd),
            "erreur du système (détail technique : strange)"
        );
    }

    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("transport error")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_connection_failure_is_said_by_its_system_cause() {
        let e = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(connect_error_fr(&e), "connexion refusée");
        let e = std::fmt::Error;
        assert_eq!(
            connect_error_fr(&e),
            "détail technique : an error occurred when formatting an argument"
        );
    }

    #[test]
    fn times_for_people_are_french_words_in_paris_time() {
        let ts = prost_types::Timestamp {
            seconds: 1_796_120_404,
            nanos: 0,
        };
        assert_eq!(when(Some(&ts)).unwrap(), "1er décembre 2026 à 11 h 20");
        assert_eq!(day(Some(&ts)).unwrap(), "1er décembre 2026");
        assert_eq!(rfc3339(Some(&ts)).unwrap(), "2026-12-01T10:20:04Z");
        assert_eq!(when(None), None);
    }
}
