//! Network settings of one call.

use std::time::Duration;

use iea_proto::common::v1 as pb;
pub use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

/// Upper bound of a request timeout passed by the orchestrator.
pub const MAX_REQUEST_TIMEOUT_MS: u32 = 120_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionMode {
    Normal,
    Extended,
    Secure,
}

impl ConnectionMode {
    /// Bound on establishing a connection (TCP and TLS).
    pub fn connect_timeout(self) -> Duration {
        match self {
            Self::Normal | Self::Secure => Duration::from_secs(5),
            Self::Extended => Duration::from_secs(15),
        }
    }

    /// Bound on a whole request, from connecting to the last byte of the answer.
    pub fn request_timeout(self) -> Duration {
        match self {
            Self::Normal | Self::Secure => Duration::from_secs(10),
            Self::Extended => Duration::from_secs(30),
        }
    }

    /// Extra attempts after a transient failure (network error or 5xx), never after a
    /// refusal.
    pub fn retries(self) -> u32 {
        match self {
            Self::Extended => 2,
            Self::Normal | Self::Secure => 0,
        }
    }
}

#[derive(Clone)]
pub enum ConnectionType {
    Proxy {
        host: String,
        port: u16,
        username: Option<String>,
        password: Option<SecretString>,
    },
    Direct,
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` from the environment.
    System,
}

impl std::fmt::Debug for ConnectionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Proxy {
                host,
                port,
                username,
                password,
            } => f
                .debug_struct("Proxy")
                .field("host", host)
                .field("port", port)
                .field("username", username)
                .field("password_set", &password.is_some())
                .finish(),
            Self::Direct => f.write_str("Direct"),
            Self::System => f.write_str("System"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub connection_type: ConnectionType,
    pub mode: ConnectionMode,
    pub address: Url,
    /// Extra trusted certificate authorities, PEM.
    pub extra_ca_pem: Option<String>,
    /// Overrides of the mode's timeouts (tests, and callers with a tighter budget).
    pub connect_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
}

impl NetworkSettings {
    /// Direct connection in `mode` to `address`.
    pub fn direct(mode: ConnectionMode, address: &str) -> Result<Self, SettingsError> {
        Ok(Self {
            connection_type: ConnectionType::Direct,
            mode,
            address: parse_address(address, mode)?,
            extra_ca_pem: None,
            connect_timeout: None,
            request_timeout: None,
        })
    }

    /// Never longer than the whole request's bound.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .unwrap_or(self.mode.connect_timeout())
            .min(self.request_timeout())
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout.unwrap_or(self.mode.request_timeout())
    }

    /// The proto form, with secrets (this travels only orchestrator → agent, over mTLS).
    pub fn to_proto(&self) -> pb::NetworkSettings {
        let (connection_type, proxy) = match &self.connection_type {
            ConnectionType::Proxy {
                host,
                port,
                username,
                password,
            } => (
                pb::ConnectionType::Proxy,
                Some(pb::ProxySettings {
                    host: host.clone(),
                    port: u32::from(*port),
                    username: username.clone().unwrap_or_default(),
                    password: password
                        .as_ref()
                        .map(|p| p.expose_secret().to_owned())
                        .unwrap_or_default(),
                }),
            ),
            ConnectionType::Direct => (pb::ConnectionType::Direct, None),
            ConnectionType::System => (pb::ConnectionType::System, None),
        };
        pb::NetworkSettings {
            connection_type: connection_type.into(),
            mode: match self.mode {
                ConnectionMode::Normal => pb::ConnectionMode::Normal,
                ConnectionMode::Extended => pb::ConnectionMode::Extended,
                ConnectionMode::Secure => pb::ConnectionMode::Secure,
            }
            .into(),
            proxy,
            address: self.address.to_string(),
            extra_ca_pem: self.extra_ca_pem.clone().unwrap_or_default(),
            request_timeout_ms: self
                .request_timeout
                .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
                .unwrap_or(0),
        }
    }
}

/// A setting that cannot be used, named by its field path, with a French sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub field: String,
    pub message: String,
}

impl SettingsError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Parses an address as a person typed it, refusing what the mode forbids.
pub fn parse_address(raw: &str, mode: ConnectionMode) -> Result<Url, SettingsError> {
    const F: &str = "address";
    if raw.is_empty() {
        return Err(SettingsError::new(F, "L'adresse est vide."));
    }
    if raw.trim() != raw || raw.chars().any(char::is_whitespace) {
        return Err(SettingsError::new(
            F,
            format!("L'adresse « {raw} » contient des espaces : retirez-les."),
        ));
    }
    let url = Url::parse(raw).map_err(|e| {
        SettingsError::new(
            F,
            format!("L'adresse « {raw} » n'est pas une adresse valide ({e})."),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if mode == ConnectionMode::Secure => {
            return Err(SettingsError::new(
                F,
                format!(
                    "L'adresse « {raw} » commence par http:// : le mode Sécurisé n'accepte que https://."
                ),
            ));
        }
        "http" => {}
        other => {
            return Err(SettingsError::new(
                F,
                format!(
                    "L'adresse « {raw} » utilise le protocole « {other} » : seuls http:// et https:// sont acceptés."
                ),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SettingsError::new(
            F,
            format!("L'adresse « {raw} » ne nomme aucun serveur."),
        ));
    }
    Ok(url)
}

impl TryFrom<pb::NetworkSettings> for NetworkSettings {
    type Error = SettingsError;

    fn try_from(p: pb::NetworkSettings) -> Result<Self, Self::Error> {
        let mode = match pb::ConnectionMode::try_from(p.mode) {
            Ok(pb::ConnectionMode::Normal) => ConnectionMode::Normal,
            Ok(pb::ConnectionMode::Extended) => ConnectionMode::Extended,
            Ok(pb::ConnectionMode::Secure) => ConnectionMode::Secure,
            _ => {
                return Err(SettingsError::new(
                    "mode",
                    "Le mode de connexion n'est pas indiqué.",
                ));
            }
        };
        let connection_type = match pb::ConnectionType::try_from(p.connection_type) {
            Ok(pb::ConnectionType::Direct) => ConnectionType::Direct,
            Ok(pb::ConnectionType::System) => ConnectionType::System,
            Ok(pb::ConnectionType::Proxy) => {
                let proxy = p.proxy.unwrap_or_default();
                if proxy.host.trim().is_empty() {
                    return Err(SettingsError::new(
                        "proxy.host",
                        "Le type de connexion « par un serveur proxy » demande l'adresse du proxy.",
                    ));
                }
                let port = u16::try_from(proxy.port)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        SettingsError::new(
                            "proxy.port",
                            format!(
                                "Le port du proxy ({}) doit être compris entre 1 et 65535.",
                                proxy.port
                            ),
                        )
                    })?;
                ConnectionType::Proxy {
                    host: proxy.host,
                    port,
                    username: Some(proxy.username).filter(|u| !u.is_empty()),
                    password: Some(proxy.password)
                        .filter(|p| !p.is_empty())
                        .map(SecretString::from),
                }
            }
            _ => {
                return Err(SettingsError::new(
                    "connection_type",
                    "Le type de connexion n'est pas indiqué.",
                ));
            }
        };
        Ok(Self {
            connection_type,
            mode,
            address: parse_address(&p.address, mode)?,
            extra_ca_pem: Some(p.extra_ca_pem).filter(|s| !s.trim().is_empty()),
            connect_timeout: None,
            request_timeout: (p.request_timeout_ms > 0).then(|| {
                Duration::from_millis(u64::from(p.request_timeout_ms.min(MAX_REQUEST_TIMEOUT_MS)))
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_mode_refuses_http_and_names_the_reason() {
        let e =
            parse_address("http://impact-emploi.urssaf.fr", ConnectionMode::Secure).unwrap_err();
        assert!(e.message.contains("Sécurisé"), "{e}");
        assert!(parse_address("http://impact-emploi.urssaf.fr", ConnectionMode::Normal).is_ok());
    }

    #[test]
    fn spaces_and_unknown_schemes_are_named() {
        assert!(
            parse_address(" https://x.fr", ConnectionMode::Normal)
                .unwrap_err()
                .message
                .contains("espaces")
        );
        assert!(
            parse_address("ftp://x.fr", ConnectionMode::Normal)
                .unwrap_err()
                .message
                .contains("ftp")
        );
        assert!(parse_address("pas une adresse", ConnectionMode::Normal).is_err());
    }

    #[test]
    fn a_proxy_needs_a_host_and_a_valid_port() {
        let p = pb::NetworkSettings {
            connection_type: pb::ConnectionType::Proxy.into(),
            mode: pb::ConnectionMode::Normal.into(),
            proxy: Some(pb::ProxySettings {
                host: "proxy.local".into(),
                port: 70000,
                ..Default::default()
            }),
            address: "https://x.fr".into(),
            extra_ca_pem: String::new(),
            request_timeout_ms: 0,
        };
        assert_eq!(
            NetworkSettings::try_from(p.clone()).unwrap_err().field,
            "proxy.port"
        );
        let mut q = p;
        q.proxy = None;
        assert_eq!(
            NetworkSettings::try_from(q).unwrap_err().field,
            "proxy.host"
        );
    }

    #[test]
    fn the_proxy_password_is_not_in_debug_output() {
        let s = ConnectionType::Proxy {
            host: "p".into(),
            port: 3128,
            username: Some("u".into()),
            password: Some(SecretString::from("Tr3sSecret")),
        };
        assert!(!format!("{s:?}").contains("Tr3sSecret"));
    }
}
