//! Network settings of one call.

use std::time::Duration;

use iea_proto::common::v1 as pb;
pub use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

/// Upper bound of a request timeout passed by the orchestrator.
pub const MAX_REQUEST_TIMEOUT_MS: u32 = 120_000;

/// The connection mode of the seeds' "Paramètres de connexion": the one definition,
/// stored by the orchestrator (as `normal`, `extended`, `secure`) and used by every agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMode {
    Normal,
    Extended,
    Secure,
}

impl From<ConnectionMode> for pb::ConnectionMode {
    fn from(m: ConnectionMode) -> Self {
        match m {
            ConnectionMode::Normal => pb::ConnectionMode::Normal,
            ConnectionMode::Extended => pb::ConnectionMode::Extended,
            ConnectionMode::Secure => pb::ConnectionMode::Secure,
        }
    }
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
            mode: pb::ConnectionMode::from(self.mode).into(),
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

/// Longest address accepted, in characters (a server name of 253 characters, a port and
/// a path leave room to spare).
pub const MAX_ADDRESS_CHARS: usize = 2_000;
/// Longest server name, in characters of its ASCII form (RFC 1035).
pub const MAX_HOST_CHARS: usize = 253;
/// Longest part of a server name between two dots (RFC 1035).
pub const MAX_LABEL_CHARS: usize = 63;

/// At most this many characters of what a person typed are quoted back in a message.
const QUOTE_CHARS: usize = 60;

/// `n` as French writes it: groups of three digits separated by a space (« 100 000 »).
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `raw`, shortened to its first [`QUOTE_CHARS`] characters and « … » when longer: a
/// message never carries a 100,000-character address back.
fn quoted(raw: &str) -> String {
    if raw.chars().count() <= QUOTE_CHARS {
        raw.to_owned()
    } else {
        let mut s: String = raw.chars().take(QUOTE_CHARS).collect();
        s.push('…');
        s
    }
}

/// Parses an address as a person typed it, refusing what the mode forbids and a server
/// name that DNS could not carry ([`check_domain`]). International names are converted
/// to their ASCII form (punycode) in the URL returned.
pub fn parse_address(raw: &str, mode: ConnectionMode) -> Result<Url, SettingsError> {
    const F: &str = "address";
    if raw.is_empty() {
        return Err(SettingsError::new(F, "L'adresse est vide."));
    }
    let chars = raw.chars().count();
    if chars > MAX_ADDRESS_CHARS {
        return Err(SettingsError::new(
            F,
            format!(
                "L'adresse « {} » compte {} caractères : {} au plus.",
                quoted(raw),
                count(chars),
                count(MAX_ADDRESS_CHARS)
            ),
        ));
    }
    let shown = quoted(raw);
    if raw.trim() != raw || raw.chars().any(char::is_whitespace) {
        return Err(SettingsError::new(
            F,
            format!("L'adresse « {shown} » contient des espaces : retirez-les."),
        ));
    }
    let url = Url::parse(raw).map_err(|e| {
        SettingsError::new(
            F,
            format!(
                "L'adresse « {shown} » n'est pas une adresse valide ({}).",
                parse_error(e)
            ),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if mode == ConnectionMode::Secure => {
            return Err(SettingsError::new(
                F,
                format!(
                    "L'adresse « {shown} » commence par http:// : le mode Sécurisé n'accepte que https://."
                ),
            ));
        }
        "http" => {}
        other => {
            return Err(SettingsError::new(
                F,
                format!(
                    "L'adresse « {shown} » utilise le protocole « {} » : seuls http:// et https:// sont acceptés.",
                    quoted(other)
                ),
            ));
        }
    }
    match url.host() {
        None => {
            return Err(SettingsError::new(
                F,
                format!("L'adresse « {shown} » ne nomme aucun serveur."),
            ));
        }
        Some(url::Host::Domain(name)) => check_domain(name)
            .map_err(|why| SettingsError::new(F, format!("L'adresse « {shown} » : {why}")))?,
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {}
    }
    Ok(url)
}

/// Parses the proxy's host as a person typed it: a server name, an IPv4 address, or an
/// IPv6 address in brackets (`[2001:db8::1]`), without scheme, port or path. Returns its
/// ASCII form (an international name in punycode), ready for `http://{host}:{port}`.
pub fn parse_proxy_host(raw: &str) -> Result<String, SettingsError> {
    const F: &str = "proxy.host";
    if raw.trim().is_empty() {
        return Err(SettingsError::new(
            F,
            "L'adresse du serveur proxy est vide : indiquez un nom ou une adresse IP.",
        ));
    }
    let chars = raw.chars().count();
    if chars > MAX_HOST_CHARS + 2 {
        return Err(SettingsError::new(
            F,
            format!(
                "« {} » compte {} caractères : un nom de serveur en a {MAX_HOST_CHARS} au plus.",
                quoted(raw),
                count(chars)
            ),
        ));
    }
    let shown = quoted(raw);
    if raw.chars().any(char::is_whitespace)
        || raw.contains("://")
        || raw.contains(['/', '\\', '@', '?', '#', '%'])
    {
        return Err(SettingsError::new(
            F,
            format!(
                "« {shown} » n'est pas un nom de serveur (sans espace, sans http:// ni chemin)."
            ),
        ));
    }
    if raw.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(SettingsError::new(
            F,
            format!("Une adresse IPv6 s'écrit entre crochets : [{raw}]."),
        ));
    }
    if !raw.starts_with('[') && raw.contains(':') {
        return Err(SettingsError::new(
            F,
            format!("« {shown} » contient « : » : indiquez le port à part, dans son propre champ."),
        ));
    }
    let host = url::Host::parse(raw).map_err(|e| {
        SettingsError::new(
            F,
            format!(
                "« {shown} » n'est ni un nom de serveur ni une adresse IP ({}).",
                parse_error(e)
            ),
        )
    })?;
    if let url::Host::Domain(name) = &host {
        check_domain(name).map_err(|why| SettingsError::new(F, format!("« {shown} » : {why}")))?;
    }
    Ok(host.to_string())
}

/// Why `url` refused an address, in French (its own messages are English).
fn parse_error(e: url::ParseError) -> &'static str {
    use url::ParseError as E;
    match e {
        E::EmptyHost => "aucun nom de serveur",
        E::IdnaError => "nom de serveur international invalide",
        E::InvalidPort => {
            "port invalide : un nombre de 1 à 65535 ; une adresse IPv6 s'écrit entre crochets"
        }
        E::InvalidIpv4Address => "adresse IPv4 invalide",
        E::InvalidIpv6Address => "adresse IPv6 invalide",
        E::InvalidDomainCharacter => "caractère interdit dans le nom du serveur",
        E::RelativeUrlWithoutBase => "elle doit commencer par https://",
        _ => "forme non reconnue",
    }
}

/// The DNS rules for a server name in its ASCII form (after punycode): at most
/// [`MAX_HOST_CHARS`] characters, parts between dots of 1 to [`MAX_LABEL_CHARS`]
/// characters, each made of letters, digits and hyphens, neither starting nor ending
/// with a hyphen. `Err` is the French reason, to follow « … » : .
pub fn check_domain(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if len > MAX_HOST_CHARS {
        return Err(format!(
            "le nom du serveur compte {len} caractères ({MAX_HOST_CHARS} au plus)."
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(
                "le nom du serveur contient deux points de suite, ou commence ou finit par un point."
                    .into(),
            );
        }
        let n = label.chars().count();
        if n > MAX_LABEL_CHARS {
            return Err(format!(
                "une partie du nom entre deux points compte {n} caractères ({MAX_LABEL_CHARS} au plus)."
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "le nom du serveur contient « {c} » : seuls les lettres, les chiffres et le tiret sont permis (ou une adresse IP)."
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "la partie « {} » du nom commence ou finit par un tiret.",
                quoted(label)
            ));
        }
    }
    Ok(())
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
                let host = parse_proxy_host(&proxy.host)?;
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
                    host,
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

    fn refused(raw: &str) -> SettingsError {
        parse_address(raw, ConnectionMode::Secure).unwrap_err()
    }

    /// A name of `labels` parts of `len` letters each, joined by dots.
    fn name(labels: usize, len: usize) -> String {
        vec!["a".repeat(len); labels].join(".")
    }

    #[test]
    fn counts_are_written_the_french_way() {
        assert_eq!(count(7), "7");
        assert_eq!(count(253), "253");
        assert_eq!(count(2_000), "2 000");
        assert_eq!(count(100_011), "100 011");
        assert_eq!(count(1_234_567), "1 234 567");
    }

    #[test]
    fn a_100000_character_name_is_refused_without_being_quoted_back() {
        let raw = format!("https://{}.fr", "a".repeat(100_000));
        let e = refused(&raw);
        assert_eq!(e.field, "address");
        assert!(e.message.contains("100 011 caractères"), "{e}");
        assert!(e.message.contains("2 000 au plus"), "{e}");
        assert!(
            e.message.len() < 300,
            "the message quotes at most a start: {e}"
        );
        // The same for the proxy host.
        let e = parse_proxy_host(&"a".repeat(100_000)).unwrap_err();
        assert_eq!(e.field, "proxy.host");
        assert!(e.message.contains("100 000 caractères"), "{e}");
        assert!(e.message.len() < 300, "{e}");
    }

    #[test]
    fn a_name_has_at_most_253_characters() {
        // 4 × 63 + 3 dots = 255; 3 × 63 + 61 + 3 dots = 253.
        let at_limit = format!("{}.{}", name(3, 63), "a".repeat(61));
        assert_eq!(at_limit.len(), MAX_HOST_CHARS);
        assert!(parse_address(&format!("https://{at_limit}"), ConnectionMode::Secure).is_ok());
        let over = format!("{}.{}", name(3, 63), "a".repeat(62));
        let e = refused(&format!("https://{over}/chemin"));
        assert!(e.message.contains("254 caractères (253 au plus)"), "{e}");
        let e = parse_proxy_host(&over).unwrap_err();
        assert!(e.message.contains("254 caractères (253 au plus)"), "{e}");
        assert_eq!(parse_proxy_host(&at_limit).unwrap(), at_limit);
    }

    #[test]
    fn each_part_of_a_name_has_at_most_63_characters() {
        let ok = format!("https://{}.fr", "a".repeat(63));
        assert!(parse_address(&ok, ConnectionMode::Secure).is_ok());
        let e = refused(&format!("https://{}.fr", "a".repeat(64)));
        assert!(e.message.contains("64 caractères (63 au plus)"), "{e}");
        let e = parse_proxy_host(&format!("proxy.{}.local", "b".repeat(64))).unwrap_err();
        assert!(e.message.contains("64 caractères (63 au plus)"), "{e}");
    }

    #[test]
    fn a_name_is_made_of_letters_digits_and_inner_hyphens() {
        assert!(
            parse_address(
                "https://impact-emploi.urssaf.fr:8443/x",
                ConnectionMode::Secure
            )
            .is_ok()
        );
        assert!(parse_address("https://serveur2.local", ConnectionMode::Secure).is_ok());
        for (raw, said) in [
            ("https://impact_emploi.fr", "« _ »"),
            ("https://impact*emploi.fr", "« * »"),
            ("https://impact!emploi.fr", "« ! »"),
            ("https://-impact.fr", "tiret"),
            ("https://impact-.fr", "tiret"),
            ("https://impact..fr", "deux points de suite"),
            ("https://impact.fr.", "finit par un point"),
        ] {
            let e = refused(raw);
            assert_eq!(e.field, "address", "{raw}");
            assert!(e.message.contains(said), "{raw}: {e}");
        }
        for (raw, said) in [
            ("proxy_1.local", "« _ »"),
            ("-proxy.local", "tiret"),
            ("proxy..local", "deux points de suite"),
        ] {
            let e = parse_proxy_host(raw).unwrap_err();
            assert_eq!(e.field, "proxy.host", "{raw}");
            assert!(e.message.contains(said), "{raw}: {e}");
        }
    }

    #[test]
    fn ip_addresses_are_accepted_ipv6_in_brackets() {
        for raw in [
            "https://192.0.2.10",
            "https://127.0.0.1:4443/updates",
            "https://[2001:db8::1]",
            "https://[::1]:8443/",
        ] {
            assert!(parse_address(raw, ConnectionMode::Secure).is_ok(), "{raw}");
        }
        let e = refused("https://2001:db8::1/");
        assert!(e.message.contains("entre crochets"), "{e}");
        let e = refused("https://999.0.0.1/");
        assert!(e.message.contains("adresse IPv4 invalide"), "{e}");
        let e = refused("impact-emploi.urssaf.fr");
        assert!(e.message.contains("doit commencer par https://"), "{e}");
        let e = parse_proxy_host("[2001:db8::zz]").unwrap_err();
        assert!(e.message.contains("adresse IPv6 invalide"), "{e}");
        assert_eq!(parse_proxy_host("192.0.2.10").unwrap(), "192.0.2.10");
        assert_eq!(parse_proxy_host("[2001:DB8::1]").unwrap(), "[2001:db8::1]");
        let e = parse_proxy_host("2001:db8::1").unwrap_err();
        assert!(e.message.contains("entre crochets : [2001:db8::1]"), "{e}");
    }

    #[test]
    fn international_names_are_converted_to_punycode() {
        let url =
            parse_address("https://éléphant.fr/mises-à-jour", ConnectionMode::Secure).unwrap();
        assert_eq!(url.host_str(), Some("xn--lphant-9uab.fr"));
        assert_eq!(
            parse_proxy_host("Proxy.Éléphant.fr").unwrap(),
            "proxy.xn--lphant-9uab.fr"
        );
        // The limits apply to the converted form: 61 characters typed, more than 63 once
        // converted (« xn-- », the 60 letters, « - » and the é's code).
        let typed = format!("{}é", "a".repeat(60));
        assert_eq!(typed.chars().count(), 61);
        let e = refused(&format!("https://{typed}.fr"));
        assert!(e.message.contains("63 au plus"), "{e}");
        // A name IDNA refuses is refused too.
        assert!(parse_address("https://xn--a.fr", ConnectionMode::Secure).is_err());
    }

    #[test]
    fn the_proxy_host_is_a_host_alone() {
        for (raw, said) in [
            ("http://proxy.local", "sans http://"),
            ("proxy.local/chemin", "sans http://"),
            ("proxy local", "sans espace"),
            ("moi@proxy.local", "n'est pas un nom de serveur"),
            ("proxy.local:3128", "port à part"),
            ("", "est vide"),
            ("   ", "est vide"),
        ] {
            let e = parse_proxy_host(raw).unwrap_err();
            assert_eq!(e.field, "proxy.host");
            assert!(e.message.contains(said), "{raw:?}: {e}");
        }
        assert_eq!(parse_proxy_host("Proxy.Local").unwrap(), "proxy.local");
    }

    #[test]
    fn the_agents_apply_the_proxy_host_rules_too() {
        let p = pb::NetworkSettings {
            connection_type: pb::ConnectionType::Proxy.into(),
            mode: pb::ConnectionMode::Normal.into(),
            proxy: Some(pb::ProxySettings {
                host: format!("{}.local", "p".repeat(64)),
                port: 3128,
                ..Default::default()
            }),
            address: "https://x.fr".into(),
            extra_ca_pem: String::new(),
            request_timeout_ms: 0,
        };
        assert_eq!(
            NetworkSettings::try_from(p.clone()).unwrap_err().field,
            "proxy.host"
        );
        let mut q = p;
        q.proxy.as_mut().unwrap().host = "Éléphant.fr".into();
        match NetworkSettings::try_from(q).unwrap().connection_type {
            ConnectionType::Proxy { host, .. } => assert_eq!(host, "xn--lphant-9uab.fr"),
            other => panic!("{other:?}"),
        }
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
