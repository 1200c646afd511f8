//! Reaching the orchestrator: its address and CA come from `stack.json` in the data
//! directory; the session token from `session.json` beside it (mode 0600).

use std::path::{Path, PathBuf};
use std::time::Duration;

use iea_stack::StackFile;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

use crate::output::{CliError, CliResult};

pub const SESSION_FILE: &str = "session.json";

/// `--data-dir`, `IEA_DATA_DIR`, or the user's data directory.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("iea-connect")
    })
}

pub fn stack_file(data_dir: &Path) -> CliResult<StackFile> {
    if !StackFile::path(data_dir).exists() {
        return Err(CliError::new(
            "stack_not_found",
            format!(
                "Aucune pile iea-connect n'est démarrée avec le répertoire {} : lancez « iea stack up --data-dir {} », ou indiquez le bon répertoire (--data-dir ou IEA_DATA_DIR).",
                data_dir.display(),
                data_dir.display()
            ),
        ));
    }
    StackFile::read(data_dir).map_err(|e| {
        CliError::new(
            "stack_file_invalid",
            format!(
                "Le fichier {} est illisible (détail technique : {e:#}).",
                StackFile::path(data_dir).display()
            ),
        )
    })
}

/// A connected channel to the orchestrator.
pub async fn connect(stack: &StackFile) -> CliResult<Channel> {
    let unreachable = |detail: String| {
        CliError::new(
            "unavailable",
            format!(
                "L'orchestrateur iea-connect ne répond pas à l'adresse {} ({detail}) : la pile est-elle démarrée ?",
                stack.orchestrator
            ),
        )
    };
    let tls = iea_runtime::tls::front_end_config(&stack.ca, &stack.orchestrator_server_name)
        .map_err(|e| {
            CliError::new(
                "tls_material",
                format!("Certificat de l'autorité illisible (détail technique : {e:#})."),
            )
        })?;
    Endpoint::from_shared(format!("https://{}", stack.orchestrator))
        .map_err(|e| unreachable(crate::output::connect_error_fr(&e)))?
        .tls_config(tls)
        .map_err(|e| unreachable(crate::output::connect_error_fr(&e)))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(150))
        .connect()
        .await
        .map_err(|e| unreachable(crate::output::connect_error_fr(&e)))
}

#[derive(Serialize, Deserialize)]
pub struct SavedSession {
    pub user: String,
    pub token: String,
    pub expires_at: i64,
}

pub fn save_session(data_dir: &Path, s: &SavedSession) -> CliResult {
    let text = serde_json::to_string(s).map_err(|e| CliError::new("internal", e.to_string()))?;
    iea_runtime::pki::write_file(&data_dir.join(SESSION_FILE), text.as_bytes(), true).map_err(|e| {
        CliError::new(
            "session_not_saved",
            format!("La session n'a pas pu être enregistrée (détail technique : {e:#})."),
        )
    })
}

pub fn forget_session(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(SESSION_FILE));
}

/// The saved session's user name, if any.
pub fn session_user(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(SESSION_FILE)).ok()?;
    let s: SavedSession = serde_json::from_str(&text).ok()?;
    Some(s.user)
}

/// The saved session's token, if any.
pub fn session_token(data_dir: &Path) -> Option<SecretString> {
    let text = std::fs::read_to_string(data_dir.join(SESSION_FILE)).ok()?;
    let s: SavedSession = serde_json::from_str(&text).ok()?;
    Some(SecretString::from(s.token))
}

/// `req` with the saved session attached; without one, the orchestrator will answer
/// `unauthenticated` with the sentence to show.
pub fn authed<T>(data_dir: &Path, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    if let Some(token) = session_token(data_dir)
        && let Ok(v) = format!("Bearer {}", token.expose_secret()).parse()
    {
        req.metadata_mut().insert("authorization", v);
    }
    req
}
