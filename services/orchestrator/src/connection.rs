//! "Paramètres de connexion": how the installation reaches the Urssaf servers, validated
//! field by field, saved atomically (the proxy password sealed in the vault), and the
//! candidate settings a test or a repair is run with.

use iea_net::settings::{parse_address, parse_proxy_host};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::vault::Vault;

/// The three addresses the installation talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    AuthServer,
    UpdateServer,
    NetEntreprises,
}

impl Target {
    pub const ALL: [Target; 3] = [
        Target::AuthServer,
        Target::UpdateServer,
        Target::NetEntreprises,
    ];

    /// Stable name, also the settings field name.
    pub fn name(self) -> &'static str {
        match self {
            Target::AuthServer => "auth_server",
            Target::UpdateServer => "update_server",
            Target::NetEntreprises => "net_entreprises",
        }
    }

    /// French label, as in the settings window.
    pub fn label(self) -> &'static str {
        match self {
            Target::AuthServer => "Adresse du serveur d'authentification",
            Target::UpdateServer => "Adresse du serveur de mise à jour",
            Target::NetEntreprises => "Adresse d'authentification Net-entreprises",
        }
    }
}

/// The connection mode: `iea-net`'s one definition (stored as `normal`, `extended`,
/// `secure`, as before).
pub use iea_net::ConnectionMode as Mode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectionType {
    /// "par un serveur proxy". Its password, if any, lives in the vault.
    Proxy {
        host: String,
        port: u16,
        #[serde(default)]
        username: Option<String>,
    },
    Direct,
    /// The system's `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`.
    System,
}

/// Saved settings, without the proxy password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSettings {
    pub connection_type: ConnectionType,
    pub mode: Mode,
    pub auth_server: String,
    pub update_server: String,
    pub net_entreprises: String,
}

impl ConnectionSettings {
    pub fn address(&self, t: Target) -> &str {
        match t {
            Target::AuthServer => &self.auth_server,
            Target::UpdateServer => &self.update_server,
            Target::NetEntreprises => &self.net_entreprises,
        }
    }

    pub fn address_mut(&mut self, t: Target) -> &mut String {
        match t {
            Target::AuthServer => &mut self.auth_server,
            Target::UpdateServer => &mut self.update_server,
            Target::NetEntreprises => &mut self.net_entreprises,
        }
    }

    /// Settings of another era: a `http://` address, or a mode other than *Sécurisé*.
    pub fn is_legacy(&self) -> bool {
        self.mode != Mode::Secure
            || Target::ALL
                .iter()
                .any(|t| self.address(*t).starts_with("http://"))
    }
}

/// Settings to use or test, with the proxy password they go with.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub settings: ConnectionSettings,
    pub proxy_password: Option<SecretString>,
}

/// A field that cannot be saved, with a French sentence naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem of `s`, or nothing.
pub fn validate(s: &ConnectionSettings) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for t in Target::ALL {
        if let Err(e) = parse_address(s.address(t), s.mode) {
            errors.push(FieldError {
                field: t.name().to_owned(),
                message: format!("{} : {}", t.label(), e.message),
            });
        }
    }
    if let ConnectionType::Proxy {
        host,
        port,
        username,
    } = &s.connection_type
    {
        if let Err(e) = parse_proxy_host(host) {
            errors.push(FieldError {
                field: e.field,
                message: format!("Serveur proxy : {}", e.message),
            });
        }
        if *port == 0 {
            errors.push(FieldError {
                field: "proxy.port".into(),
                message: "Serveur proxy : le port doit être compris entre 1 et 65535.".into(),
            });
        }
        if username.as_deref().is_some_and(|u| u.trim() != u) {
            errors.push(FieldError {
                field: "proxy.username".into(),
                message: "Serveur proxy : l'identifiant commence ou finit par un espace.".into(),
            });
        }
    }
    errors
}

/// Name of the sealed proxy password among the installation's secrets.
pub const PROXY_PASSWORD: &str = "proxy_password";

/// The saved settings, if any were ever saved.
pub async fn load(store: &Store, vault: &Vault) -> anyhow::Result<Option<Candidate>> {
    let Some(settings) = store.load::<ConnectionSettings>().await? else {
        return Ok(None);
    };
    let proxy_password = vault.get(PROXY_PASSWORD).await?;
    Ok(Some(Candidate {
        settings,
        proxy_password,
    }))
}

/// Saves `c` in one transaction: the settings and the proxy password together, or
/// nothing.
pub async fn save(store: &Store, vault: &Vault, c: &Candidate) -> anyhow::Result<()> {
    let sealed = c
        .proxy_password
        .as_ref()
        .map(|p| vault.seal_secret(PROXY_PASSWORD, p))
        .transpose()?;
    store.save_connection(c.settings.clone(), sealed).await
}

/// `address` with its port replaced by `port` (the seeds' fallback port).
pub fn with_port(address: &str, port: u16) -> Option<String> {
    let mut url = reqwest_url(address)?;
    url.set_port(Some(port)).ok()?;
    let mut s = url.to_string();
    // Keep the form the person typed: no trailing slash added to a bare host.
    if !address.ends_with('/') && url.path() == "/" {
        s.pop();
    }
    Some(s)
}

fn reqwest_url(address: &str) -> Option<iea_net::settings::Url> {
    iea_net::settings::Url::parse(address).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            connection_type: ConnectionType::Direct,
            mode: Mode::Secure,
            auth_server: "https://impact-emploi.urssaf.fr".into(),
            update_server: "https://impact-emploi.urssaf.fr/updates".into(),
            net_entreprises: "https://services.net-entreprises.fr/authentifier/1.0/".into(),
        }
    }

    #[test]
    fn the_official_settings_are_valid_and_not_legacy() {
        assert!(validate(&settings()).is_empty());
        assert!(!settings().is_legacy());
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut s = settings();
        s.auth_server = "http://impact-emploi.urssaf.fr".into();
        s.update_server = "https://impact emploi.fr".into();
        s.net_entreprises = "ftp://x.fr".into();
        s.connection_type = ConnectionType::Proxy {
            host: "".into(),
            port: 0,
            username: None,
        };
        let fields: Vec<_> = validate(&s).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "auth_server",
                "update_server",
                "net_entreprises",
                "proxy.host",
                "proxy.port"
            ]
        );
    }

    #[test]
    fn the_fallback_port_replaces_the_port_and_keeps_the_path() {
        assert_eq!(
            with_port("https://impact-emploi.urssaf.fr", 80).unwrap(),
            "https://impact-emploi.urssaf.fr:80"
        );
        assert_eq!(
            with_port("https://127.0.0.1:4443/updates", 8443).unwrap(),
            "https://127.0.0.1:8443/updates"
        );
    }
}
