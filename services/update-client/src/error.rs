//! What can go wrong with an update, typed; the French sentence for a person and the
//! stable code are decided here, once, from the variant ([`UpdateError::to_api`]).

use iea_net::Diagnosis;
use iea_proto::error::ApiError;
use tonic::Code;

use crate::install::Step;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The agent lacks a setting it needs (trusted root, directories).
    #[error("not configured: {0}")]
    NotConfigured(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The update server could not be reached; the diagnosis says where it stopped.
    #[error("unreachable: {}", .0.detail)]
    Unreachable(Diagnosis),
    /// The overall deadline of a metadata refresh or a download passed.
    #[error("deadline exceeded: {0}")]
    Deadline(&'static str),
    #[error("metadata expired: {0}")]
    MetadataExpired(String),
    /// The system clock is behind the latest time this agent has seen.
    #[error("system clock set back")]
    ClockSetBack,
    #[error("rollback refused: {0}")]
    Rollback(String),
    /// Bad signatures, thresholds, hashes or versions that disagree, a root not signed
    /// by its predecessor…
    #[error("metadata refused: {0}")]
    MetadataRefused(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("unknown version {0}")]
    UnknownVersion(String),
    #[error("downgrade refused: {requested} is not above {installed}")]
    Downgrade {
        requested: String,
        installed: String,
    },
    #[error("no signed release notes for {0}")]
    NotesUnavailable(String),
    #[error("release notes of {0} carry active content")]
    NotesUnsafe(String),
    /// The package (or a script) does not match its signed length or hash.
    #[error("download refused: {0}")]
    DownloadRefused(String),
    #[error("archive refused: {0}")]
    ArchiveRefused(String),
    #[error("start check of {version} failed")]
    StartCheckFailed {
        version: String,
        fallback: Option<String>,
    },
    #[error("script refused: {0}")]
    ScriptRefused(String),
    #[error("another update is in progress")]
    Busy,
    /// The caller went away during the download; the partial file is kept for a resume.
    #[error("cancelled")]
    Cancelled,
    /// A failure point injected by tests: the process "dies" here.
    #[error("injected crash at {0:?}")]
    Crash(Step),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<std::io::Error> for UpdateError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl UpdateError {
    /// Stable code and French sentence.
    pub fn to_api(&self) -> ApiError {
        use UpdateError as E;
        let (status, code, message) = match self {
            E::NotConfigured(_) => (
                Code::FailedPrecondition,
                "not_configured",
                "Le service de mise à jour n'est pas configuré (racine de confiance ou répertoires manquants).".to_owned(),
            ),
            E::InvalidRequest(m) => (Code::InvalidArgument, "invalid_input", m.clone()),
            E::Unreachable(d) => (Code::Unavailable, "unreachable", d.message.clone()),
            E::Deadline(what) => (
                Code::DeadlineExceeded,
                "deadline_exceeded",
                format!("Le serveur de mise à jour est trop lent : le délai prévu pour {what} est dépassé. Réessayez plus tard."),
            ),
            E::MetadataExpired(_) => (
                Code::FailedPrecondition,
                "metadata_expired",
                "Les informations de mise à jour publiées par le serveur sont périmées : elles sont refusées. Réessayez plus tard ou contactez l'assistance.".to_owned(),
            ),
            E::ClockSetBack => (
                Code::FailedPrecondition,
                "clock_set_back",
                "L'horloge de ce poste a reculé depuis la dernière vérification des mises à jour : corrigez la date et l'heure du poste, puis réessayez.".to_owned(),
            ),
            E::Rollback(_) => (
                Code::FailedPrecondition,
                "rollback_refused",
                "Le serveur de mise à jour propose des informations plus anciennes que celles déjà reçues : elles sont refusées (possible tentative de retour en arrière).".to_owned(),
            ),
            E::MetadataRefused(_) => (
                Code::FailedPrecondition,
                "metadata_refused",
                "Les informations de mise à jour reçues ne sont pas correctement signées : elles sont refusées et rien n'est installé.".to_owned(),
            ),
            E::TooLarge(_) => (
                Code::FailedPrecondition,
                "too_large",
                "Le serveur de mise à jour envoie plus de données que prévu : le téléchargement est interrompu.".to_owned(),
            ),
            E::UnknownVersion(v) => (
                Code::NotFound,
                "unknown_version",
                format!("La version {v} n'est pas publiée par le serveur de mise à jour."),
            ),
            E::Downgrade {
                requested,
                installed,
            } => (
                Code::FailedPrecondition,
                "downgrade_refused",
                format!("La version {requested} n'est pas plus récente que la version {installed} déjà installée : elle n'est pas installée."),
            ),
            E::NotesUnavailable(v) => (
                Code::NotFound,
                "notes_unavailable",
                format!("Aucune note de version (Lisez-moi) signée n'est publiée pour la version {v}."),
            ),
            E::NotesUnsafe(v) => (
                Code::FailedPrecondition,
                "notes_refused",
                format!("Les notes de version de la version {v} contiennent du contenu actif (HTML ou script) : elles ne sont pas affichées."),
            ),
            E::DownloadRefused(_) => (
                Code::DataLoss,
                "download_refused",
                "Le fichier téléchargé ne correspond pas à celui qui a été signé : il est écarté et rien n'est installé.".to_owned(),
            ),
            E::ArchiveRefused(_) => (
                Code::FailedPrecondition,
                "archive_refused",
                "Le paquet de mise à jour contient des chemins de fichiers dangereux : il n'est pas installé.".to_owned(),
            ),
            E::StartCheckFailed { version, fallback } => (
                Code::Aborted,
                "start_check_failed",
                match fallback {
                    Some(prev) => format!("La version {version} n'a pas démarré correctement : retour automatique à la version {prev}."),
                    None => format!("La version {version} n'a pas démarré correctement : elle n'est pas installée."),
                },
            ),
            E::ScriptRefused(_) => (
                Code::FailedPrecondition,
                "script_refused",
                "Un script de maintenance n'est pas couvert par les informations signées : il n'est pas exécuté.".to_owned(),
            ),
            E::Busy => (
                Code::Aborted,
                "busy",
                "Une mise à jour est déjà en cours sur ce poste.".to_owned(),
            ),
            E::Cancelled => (
                Code::Cancelled,
                "cancelled",
                "Le téléchargement a été interrompu : il reprendra là où il s'est arrêté.".to_owned(),
            ),
            E::Crash(_) | E::Internal(_) => return ApiError::internal(),
        };
        ApiError::new(status, code, message)
    }
}
