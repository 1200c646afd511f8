//! Is an address reachable with these settings, and if not, where did it stop?

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use iea_proto::common::v1 as pb;

use crate::client::{HttpClient, NetError};
use crate::settings::{ConnectionType, NetworkSettings};

/// The step a connection attempt reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Ok,
    Address,
    NameResolution,
    Proxy,
    Connect,
    Tls,
    Http,
    Timeout,
}

impl Step {
    const ALL: [Step; 8] = [
        Step::Ok,
        Step::Address,
        Step::NameResolution,
        Step::Proxy,
        Step::Connect,
        Step::Tls,
        Step::Http,
        Step::Timeout,
    ];

    /// Stable code, for storage and programs.
    pub fn code(self) -> &'static str {
        match self {
            Step::Ok => "ok",
            Step::Address => "address",
            Step::NameResolution => "name_resolution",
            Step::Proxy => "proxy",
            Step::Connect => "connect",
            Step::Tls => "tls",
            Step::Http => "http",
            Step::Timeout => "timeout",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl TryFrom<pb::ProbeStep> for Step {
    type Error = pb::ProbeStep;

    /// Every step but `Unspecified`.
    fn try_from(p: pb::ProbeStep) -> Result<Self, pb::ProbeStep> {
        Self::ALL
            .into_iter()
            .find(|s| pb::ProbeStep::from(*s) == p)
            .ok_or(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    UnknownAuthority,
    Expired,
    WrongName,
    Handshake,
}

impl TlsProblem {
    const ALL: [TlsProblem; 4] = [
        TlsProblem::UnknownAuthority,
        TlsProblem::Expired,
        TlsProblem::WrongName,
        TlsProblem::Handshake,
    ];

    /// Stable code, for storage and programs.
    pub fn code(self) -> &'static str {
        match self {
            TlsProblem::UnknownAuthority => "unknown_authority",
            TlsProblem::Expired => "expired",
            TlsProblem::WrongName => "wrong_name",
            TlsProblem::Handshake => "handshake",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    fn to_proto(problem: Option<Self>) -> pb::TlsProblem {
        match problem {
            None => pb::TlsProblem::Unspecified,
            Some(TlsProblem::UnknownAuthority) => pb::TlsProblem::UnknownAuthority,
            Some(TlsProblem::Expired) => pb::TlsProblem::Expired,
            Some(TlsProblem::WrongName) => pb::TlsProblem::WrongName,
            Some(TlsProblem::Handshake) => pb::TlsProblem::Handshake,
        }
    }
}

/// The outcome of an attempt, for people and for programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub address: String,
    pub step: Step,
    pub tls_problem: Option<TlsProblem>,
    pub http_status: Option<u16>,
    pub latency: Duration,
    /// French sentence.
    pub message: String,
    /// English technical detail, for support.
    pub detail: String,
}

impl Diagnosis {
    pub fn reachable(&self) -> bool {
        self.step == Step::Ok
    }
}

/// Probes `settings.address` with a GET through `client`. Any HTTP answer below 500
/// means the server is there (a 404 or 405 on a POST-only address still proves it); a
/// 5xx says it is there but not serving; a 407 is the proxy refusing us.
pub async fn probe(settings: &NetworkSettings, user_agent: &str) -> Diagnosis {
    let span = tracing::info_span!("probe", address = %settings.address);
    let _enter = span.enter();
    let client = match HttpClient::new(settings, user_agent) {
        Ok(c) => c,
        Err(NetError::Settings(detail)) => {
            return Diagnosis {
                address: settings.address.to_string(),
                step: Step::Address,
                tls_problem: None,
                http_status: None,
                latency: Duration::ZERO,
                message: "Les paramètres de connexion ne permettent pas de joindre ce serveur."
                    .into(),
                detail,
            };
        }
        Err(NetError::Transport(d)) => return d,
    };
    drop(_enter);
    let started = Instant::now();
    let url = settings.address.clone();
    let result = client.send(|c| c.get(url.clone())).await;
    let latency = started.elapsed();
    match result {
        Ok(resp) => {
            let status = resp.status();
            let mut d = from_status(settings, status.as_u16());
            d.latency = latency;
            d
        }
        Err(NetError::Transport(mut d)) => {
            d.latency = latency;
            d
        }
        Err(NetError::Settings(detail)) => Diagnosis {
            address: settings.address.to_string(),
            step: Step::Address,
            tls_problem: None,
            http_status: None,
            latency,
            message: "Les paramètres de connexion ne permettent pas de joindre ce serveur.".into(),
            detail,
        },
    }
}

/// Diagnosis of an HTTP answer's status.
pub fn from_status(settings: &NetworkSettings, status: u16) -> Diagnosis {
    let host = host_label(settings);
    let (step, message) = match status {
        407 => (
            Step::Proxy,
            "Le serveur proxy demande une identification, ou refuse l'identifiant et le mot de passe fournis.".to_owned(),
        ),
        500..=599 => (
            Step::Http,
            format!("Le serveur {host} répond, mais signale qu'il n'est pas disponible (code HTTP {status})."),
        ),
        _ => (Step::Ok, format!("Le serveur {host} est joignable.")),
    };
    Diagnosis {
        address: settings.address.to_string(),
        step,
        tls_problem: None,
        http_status: Some(status),
        latency: Duration::ZERO,
        message,
        detail: format!("HTTP status {status}"),
    }
}

fn host_label(settings: &NetworkSettings) -> String {
    let host = settings.address.host_str().unwrap_or("?");
    match settings.address.port() {
        Some(p) => format!("« {host}:{p} »"),
        None => format!("« {host} »"),
    }
}

/// Where a failed request stopped, read from reqwest's error and its causes.
pub fn classify(err: &reqwest::Error, settings: &NetworkSettings) -> Diagnosis {
    let host = host_label(settings);
    let detail = chain_text(err);
    let lower = detail.to_lowercase();
    let through_proxy = matches!(settings.connection_type, ConnectionType::Proxy { .. });
    let (step, tls_problem, message) = if let Some(tls) = find_tls_problem(err) {
        let message = match tls {
            TlsProblem::UnknownAuthority => format!(
                "Le certificat de sécurité du serveur {host} n'est pas délivré par une autorité reconnue : la connexion n'est pas sûre et a été refusée."
            ),
            TlsProblem::Expired => format!(
                "Le certificat de sécurité du serveur {host} a expiré (ou la date de ce poste est fausse) : la connexion a été refusée."
            ),
            TlsProblem::WrongName => format!(
                "Le certificat de sécurité présenté ne correspond pas au nom du serveur {host} : la connexion a été refusée."
            ),
            TlsProblem::Handshake => {
                format!("La connexion sécurisée avec le serveur {host} n'a pas pu être établie.")
            }
        };
        (Step::Tls, Some(tls), message)
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
    {
        (
            Step::NameResolution,
            None,
            format!(
                "Le nom du serveur {host} est introuvable : vérifiez l'adresse saisie et la connexion internet de ce poste."
            ),
        )
    } else if lower.contains("tunnel") || (through_proxy && lower.contains("proxy")) {
        // A proxy was in the way: the explicit one, or the system's (HTTPS_PROXY).
        let message = if lower.contains("407") || lower.contains("auth") {
            "Le serveur proxy refuse l'identifiant ou le mot de passe fournis.".to_owned()
        } else if lower.contains("tunnel") {
            "Le serveur proxy a refusé d'ouvrir la connexion vers ce serveur : identifiant ou mot de passe du proxy refusé, ou destination interdite par le proxy.".to_owned()
        } else {
            "Le serveur proxy ne répond pas ou refuse la connexion : vérifiez son adresse et son port.".to_owned()
        };
        (Step::Proxy, None, message)
    } else if err.is_timeout() {
        if err.is_connect() {
            (
                Step::Connect,
                None,
                format!(
                    "Le serveur {host} ne répond pas : la connexion n'a pas abouti dans le délai prévu (pare-feu ou port bloqué ?)."
                ),
            )
        } else {
            let secs = settings.request_timeout().as_secs();
            (
                Step::Timeout,
                None,
                format!(
                    "Le serveur {host} accepte la connexion mais ne répond pas dans le délai de {secs} secondes."
                ),
            )
        }
    } else if err.is_connect() {
        if through_proxy {
            (
                Step::Proxy,
                None,
                "Le serveur proxy ne répond pas ou refuse la connexion : vérifiez son adresse et son port.".to_owned(),
            )
        } else {
            (
                Step::Connect,
                None,
                format!(
                    "Le serveur {host} refuse la connexion : vérifiez l'adresse, le port, et qu'un pare-feu ne bloque pas l'accès."
                ),
            )
        }
    } else {
        (
            Step::Http,
            None,
            format!("La communication avec le serveur {host} a été interrompue."),
        )
    };
    Diagnosis {
        address: settings.address.to_string(),
        step,
        tls_problem,
        http_status: None,
        latency: Duration::ZERO,
        message,
        detail,
    }
}

fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        parts.push(e.to_string());
        cur = e.source();
    }
    parts.join(": ")
}

/// Finds a rustls error among the causes. An `io::Error` hides its inner error from
/// `source()`, so each one is opened with `get_ref`.
fn find_tls_problem(err: &(dyn StdError + 'static)) -> Option<TlsProblem> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls_problem(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls_problem(tls));
            }
            if let Some(found) = find_tls_problem(inner) {
                return Some(found);
            }
        }
        cur = e.source();
    }
    None
}

fn tls_problem(e: &rustls::Error) -> TlsProblem {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature | C::UnhandledCriticalExtension => {
                TlsProblem::UnknownAuthority
            }
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsProblem::Expired,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsProblem::WrongName,
            _ => TlsProblem::Handshake,
        },
        _ => TlsProblem::Handshake,
    }
}

impl From<Step> for pb::ProbeStep {
    fn from(s: Step) -> Self {
        match s {
            Step::Ok => Self::Ok,
            Step::Address => Self::Address,
            Step::NameResolution => Self::NameResolution,
            Step::Proxy => Self::Proxy,
            Step::Connect => Self::Connect,
            Step::Tls => Self::Tls,
            Step::Http => Self::Http,
            Step::Timeout => Self::Timeout,
        }
    }
}

impl From<Diagnosis> for pb::ProbeResult {
    fn from(d: Diagnosis) -> Self {
        let step: pb::ProbeStep = d.step.into();
        let tls = TlsProblem::to_proto(d.tls_problem);
        pb::ProbeResult {
            reachable: d.step == Step::Ok,
            address: d.address,
            step: step.into(),
            latency: prost_duration(d.latency),
            http_status: d.http_status.map(u32::from).unwrap_or(0),
            tls_problem: tls.into(),
            message: d.message,
            detail: d.detail,
        }
    }
}

impl TryFrom<pb::ProbeResult> for Diagnosis {
    type Error = &'static str;

    /// A probe result from an agent; refused without a step (the field that is wrong is
    /// named).
    fn try_from(p: pb::ProbeResult) -> Result<Self, &'static str> {
        let step = pb::ProbeStep::try_from(p.step)
            .ok()
            .and_then(|s| Step::try_from(s).ok())
            .ok_or("step")?;
        let tls_problem = TlsProblem::ALL
            .into_iter()
            .find(|t| TlsProblem::to_proto(Some(*t)) as i32 == p.tls_problem);
        Ok(Diagnosis {
            address: p.address,
            step,
            tls_problem,
            http_status: u16::try_from(p.http_status).ok().filter(|s| *s != 0),
            latency: p
                .latency
                .and_then(|d| Duration::try_from(d).ok())
                .unwrap_or_default(),
            message: p.message,
            detail: p.detail,
        })
    }
}

fn prost_duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

/// The `Probe` RPC of every agent: settings that cannot be used are reported as the
/// `address` step rather than as an RPC error, so a front-end shows them like any other
/// failed step.
pub async fn probe_rpc(settings: Option<pb::NetworkSettings>, user_agent: &str) -> pb::ProbeResult {
    let raw = settings.unwrap_or_default();
    let address = raw.address.clone();
    match NetworkSettings::try_from(raw) {
        Ok(s) => probe(&s, user_agent).await.into(),
        Err(e) => pb::ProbeResult {
            address,
            reachable: false,
            step: pb::ProbeStep::Address.into(),
            message: e.message,
            detail: format!("invalid setting: {}", e.field),
            ..Default::default()
        },
    }
}
