//! One verification: the identity is checked ([`crate::identity`]), then sent once to the
//! Net-entreprises authentication service, and the answer becomes a typed [`Outcome`]
//! with a French sentence, the HTTP status and the realm for diagnosis.
//!
//! The request: `POST`, `Content-Type: application/xml`, body
//! `<identifiants><siret/><nom/><prenom/><motdepasse/><service/></identifiants>` with the
//! values XML-escaped, to the address of the call's network settings; an address
//! without a path (`https://services.net-entreprises.fr`) gets `/authentifier/1.0/`.
//!
//! Retries. A refusal (401, 403, 422) is never repeated: repeated failures lock the
//! declarant's real account, which only they can unlock. Neither is a 5xx, a timeout or a
//! connection cut once the request may have left: nothing proves the server did not
//! count the attempt, so [`iea_net::HttpClient::send`]'s retry of transient failures in
//! *Étendu* mode is *not* used here. The one retry kept, in *Étendu* mode only, is for a
//! connection that could not be opened at all (name resolution or TCP connect): the
//! request had not left, and no server saw it. Redirects follow the client's policy (at
//! most three; the real service does not redirect).
//!
//! The token of a 200 is read into a secret, checked to be non-trivial, and dropped: it
//! never leaves this module and is never logged; only its expiry (`Expires`) is kept.
//!
//! Invariant: no tonic here; the gRPC service converts at the edge.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use iea_net::probe::{classify, from_status};
use iea_net::{Diagnosis, HttpClient, NetError, NetworkSettings, SettingsError, Step};
use prost::Message;
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, EXPIRES, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::identity::{self, Identity, InputProblem};

/// Path of the authentication service, added to an address that has none.
pub const AUTH_PATH: &str = "/authentifier/1.0/";

/// Realms of the service's 401 answers.
pub const REALM_WRONG_CREDENTIALS: &str = "net-entreprises.fr";
pub const REALM_PASSWORD_EXPIRED: &str = "Expiration du mot de passe";
pub const REALM_NOT_REGISTERED: &str = "Utilisateur non-inscrit au service";

/// Largest answer body read (a token is a few dozen bytes).
const MAX_BODY: usize = 16 * 1024;
/// Shortest answer taken for a token.
const MIN_TOKEN_LEN: usize = 16;
/// HTTP clients kept for reuse (one per distinct network settings).
const MAX_CLIENTS: usize = 16;

/// A Net-entreprises service code (`<service>`). Known codes have two digits; any other
/// non-zero code is sent as it is, and the service's form checks judge it (a code of
/// three digits gets a 422, so `REJECTED_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceCode(u32);

impl ServiceCode {
    /// DSN régime général, production.
    pub const DSN_PRODUCTION: Self = Self(25);
    /// DSN régime général, publishers' test.
    pub const DSN_TEST: Self = Self(97);

    /// Any code but 0, the proto's "not given".
    pub fn new(code: u32) -> Option<Self> {
        (code != 0).then_some(Self(code))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The service in French, for messages.
    pub fn label(self) -> String {
        let name = match self.0 {
            25 => "DSN régime général",
            97 => "DSN régime général, test des éditeurs",
            26 => "DSN régime agricole",
            94 => "DSN régime agricole, test des éditeurs",
            98 => "concentrateur",
            _ => return format!("service {}", self.0),
        };
        format!("{name} (code {})", self.0)
    }
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Valid,
    InvalidCredentials,
    PasswordExpired,
    NotRegistered,
    AccountLocked,
    RejectedFormat,
    Unavailable,
    Unexpected,
    InvalidInput,
}

impl Outcome {
    /// Stable English code, for logs and programs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::InvalidCredentials => "invalid_credentials",
            Self::PasswordExpired => "password_expired",
            Self::NotRegistered => "not_registered",
            Self::AccountLocked => "account_locked",
            Self::RejectedFormat => "rejected_format",
            Self::Unavailable => "unavailable",
            Self::Unexpected => "unexpected",
            Self::InvalidInput => "invalid_input",
        }
    }

    /// Did Net-entreprises refuse the credentials (an attempt that may count towards the
    /// lock of the account)?
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Self::InvalidCredentials
                | Self::PasswordExpired
                | Self::NotRegistered
                | Self::AccountLocked
        )
    }
}

/// The result of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub outcome: Outcome,
    /// Status of the answer, when one came.
    pub http_status: Option<u16>,
    /// Realm of `WWW-Authenticate` (its whole value when it names none).
    pub realm: Option<String>,
    /// For [`Outcome::Unavailable`]: where the attempt stopped.
    pub diagnosis: Option<Diagnosis>,
    /// For [`Outcome::Valid`]: when the token obtained expires, if the answer said.
    pub token_expires_at: Option<SystemTime>,
    /// For [`Outcome::InvalidInput`].
    pub input_problems: Vec<InputProblem>,
    /// French sentence.
    pub message: String,
}

impl Verification {
    fn new(outcome: Outcome, message: String) -> Self {
        Self {
            outcome,
            http_status: None,
            realm: None,
            diagnosis: None,
            token_expires_at: None,
            input_problems: Vec::new(),
            message,
        }
    }

    /// Refused before anything was sent.
    pub fn invalid_input(problems: Vec<InputProblem>) -> Self {
        let message = match problems.len() {
            1 => format!(
                "{} Rien n'a été envoyé à Net-entreprises.",
                problems[0].message
            ),
            n => format!(
                "Les identifiants saisis comportent {n} problèmes, détaillés ci-dessous : rien n'a été envoyé à Net-entreprises."
            ),
        };
        Self {
            input_problems: problems,
            ..Self::new(Outcome::InvalidInput, message)
        }
    }

    /// No answer: where it stopped.
    pub fn unavailable(diagnosis: Diagnosis) -> Self {
        let message = format!(
            "Net-entreprises est injoignable ou indisponible : les identifiants n'ont pas pu être vérifiés. {}",
            diagnosis.message
        );
        Self {
            http_status: diagnosis.http_status,
            diagnosis: Some(diagnosis),
            ..Self::new(Outcome::Unavailable, message)
        }
    }

    /// The network settings of the call cannot be used: nothing was sent.
    pub fn unusable_settings(address: &str, error: &SettingsError) -> Self {
        Self::unavailable(Diagnosis {
            address: address.to_owned(),
            step: Step::Address,
            tls_problem: None,
            http_status: None,
            latency: Duration::ZERO,
            message: error.message.clone(),
            detail: format!("invalid setting: {}", error.field),
        })
    }
}

/// What one verification is asked for, as typed.
#[derive(Debug, Clone)]
pub struct Input {
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub password: SecretString,
    pub service: ServiceCode,
}

impl Input {
    pub fn validate(&self) -> Result<Identity, Vec<InputProblem>> {
        identity::validate(&self.siret, &self.nom, &self.prenom, &self.password)
    }
}

/// Tuning of the verifier that the network settings of a call do not carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Upper bound on the connection and request timeouts of the call's mode (a caller
    /// with a tighter budget, and tests of a slow server).
    pub max_timeout: Option<Duration>,
}

/// Verifies credentials; keeps an HTTP client per distinct network settings so that
/// successive verifications reuse connections.
pub struct Verifier {
    user_agent: String,
    options: Options,
    clients: Mutex<HashMap<[u8; 32], HttpClient>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("user_agent", &self.user_agent)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(user_agent: impl Into<String>, options: Options) -> Self {
        Self {
            user_agent: user_agent.into(),
            options,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Checks the input, then, only if it is fit, authenticates once.
    pub async fn verify_input(&self, input: &Input, settings: &NetworkSettings) -> Verification {
        match input.validate() {
            Ok(identity) => self.verify(&identity, input.service, settings).await,
            Err(problems) => Verification::invalid_input(problems),
        }
    }

    /// One authentication of a checked identity.
    pub async fn verify(
        &self,
        identity: &Identity,
        service: ServiceCode,
        settings: &NetworkSettings,
    ) -> Verification {
        self.verify_prepared(identity, service, &self.prepare(settings))
            .await
    }

    /// Settings bounded by the options, with the key of their client: computed once for
    /// a stream of verifications.
    pub fn prepare(&self, settings: &NetworkSettings) -> Prepared {
        let settings = self.bounded(settings);
        Prepared {
            key: client_key(&settings),
            url: auth_url(&settings.address),
            settings,
        }
    }

    /// One authentication of a checked identity, with prepared settings.
    pub async fn verify_prepared(
        &self,
        identity: &Identity,
        service: ServiceCode,
        prepared: &Prepared,
    ) -> Verification {
        let Prepared { settings, key, url } = prepared;
        let client = match self.client(*key, settings) {
            Ok(c) => c,
            Err(NetError::Settings(detail)) => {
                return Verification::unusable_settings(
                    settings.address.as_str(),
                    &SettingsError {
                        field: "network".into(),
                        message: format!(
                            "Les paramètres de connexion ne permettent pas de joindre Net-entreprises ({detail})."
                        ),
                    },
                );
            }
            Err(NetError::Transport(d)) => return Verification::unavailable(d),
        };
        let v = authenticate(&client, url, identity, service, settings).await;
        if matches!(v.outcome, Outcome::Unavailable | Outcome::Unexpected) {
            // A server in trouble: the next verification starts on new connections
            // rather than on one kept from before (it may be half-dead, or the server
            // may now refuse new ones).
            self.clients
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
        }
        v
    }

    fn bounded(&self, settings: &NetworkSettings) -> NetworkSettings {
        let mut s = settings.clone();
        if let Some(max) = self.options.max_timeout {
            s.connect_timeout = Some(s.connect_timeout().min(max));
            s.request_timeout = Some(s.request_timeout().min(max));
        }
        s
    }

    fn client(&self, key: [u8; 32], settings: &NetworkSettings) -> Result<HttpClient, NetError> {
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        // Built without the lock held: it reads the trusted certificates.
        let client = HttpClient::new(settings, &self.user_agent)?;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// Network settings made ready for verifications: bounded, their client's key, the
/// authentication address.
#[derive(Debug, Clone)]
pub struct Prepared {
    settings: NetworkSettings,
    key: [u8; 32],
    url: Url,
}

/// The cache key of a client: a digest, so that the proxy password in the settings is not
/// kept in it.
fn client_key(settings: &NetworkSettings) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(settings.to_proto().encode_to_vec());
    hasher.update(settings.connect_timeout().as_nanos().to_le_bytes());
    hasher.update(settings.request_timeout().as_nanos().to_le_bytes());
    hasher.finalize().into()
}

/// The POST, tried again only if the connection could not be opened (extended mode).
async fn authenticate(
    client: &HttpClient,
    url: &Url,
    identity: &Identity,
    service: ServiceCode,
    settings: &NetworkSettings,
) -> Verification {
    let body = SecretString::from(xml_body(identity, service));
    let attempts = 1 + settings.mode.retries();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let span = tracing::info_span!(
            "net_entreprises_authenticate",
            url = %url,
            siret = %identity.siret,
            service = service.get(),
            attempt,
        );
        let started = Instant::now();
        let sent = client
            .reqwest()
            .post(url.clone())
            .header(CONTENT_TYPE, "application/xml")
            .body(body.expose_secret().to_owned())
            .send()
            .instrument(span.clone())
            .await;
        match sent {
            Ok(response) => {
                return read_answer(response, settings, service, started)
                    .instrument(span)
                    .await;
            }
            Err(e) => {
                let mut d = classify(&e, settings);
                d.latency = started.elapsed();
                let never_left =
                    e.is_connect() && matches!(d.step, Step::Connect | Step::NameResolution);
                span.in_scope(|| tracing::info!(step = ?d.step, detail = %d.detail, "no answer"));
                if never_left && attempt < attempts {
                    tracing::debug!(
                        attempt,
                        "connection not opened, trying again (extended mode)"
                    );
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    continue;
                }
                return Verification::unavailable(d);
            }
        }
    }
}

async fn read_answer(
    mut response: reqwest::Response,
    settings: &NetworkSettings,
    service: ServiceCode,
    started: Instant,
) -> Verification {
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let www_authenticate = header(WWW_AUTHENTICATE);
    let expires = header(EXPIRES).and_then(|e| httpdate::parse_http_date(&e).ok());
    let mut token_obtained = false;
    if status == 200 {
        match read_limited(&mut response).await {
            Ok(token) => token_obtained = token.as_ref().is_some_and(looks_like_token),
            Err(e) => {
                let mut d = classify(&e, settings);
                d.latency = started.elapsed();
                return Verification::unavailable(d);
            }
        }
    }
    let v = interpret(
        status,
        www_authenticate.as_deref(),
        expires,
        token_obtained,
        settings,
        service,
    );
    tracing::info!(
        outcome = v.outcome.code(),
        http_status = status,
        realm = v.realm.as_deref().unwrap_or(""),
        "answer"
    );
    v
}

/// The body, at most [`MAX_BODY`] bytes and UTF-8, as a secret (it is the token).
async fn read_limited(
    response: &mut reqwest::Response,
) -> Result<Option<SecretString>, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8(buf).ok().map(SecretString::from))
}

/// A non-trivial base64 text (standard or URL alphabet).
fn looks_like_token(token: &SecretString) -> bool {
    let t = token.expose_secret().trim();
    t.len() >= MIN_TOKEN_LEN
        && t.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
}

/// The URL to post to: `address`, or `address` + [`AUTH_PATH`] when it has no path.
pub fn auth_url(address: &Url) -> Url {
    if address.path() == "/" || address.path().is_empty() {
        let mut u = address.clone();
        u.set_path(AUTH_PATH);
        u
    } else {
        address.clone()
    }
}

/// The XML body, values escaped.
pub fn xml_body(identity: &Identity, service: ServiceCode) -> String {
    let mut b = String::with_capacity(192);
    b.push_str("<identifiants><siret>");
    escape_into(&identity.siret, &mut b);
    b.push_str("</siret><nom>");
    escape_into(&identity.nom, &mut b);
    b.push_str("</nom><prenom>");
    escape_into(&identity.prenom, &mut b);
    b.push_str("</prenom><motdepasse>");
    escape_into(identity.password.expose_secret(), &mut b);
    b.push_str("</motdepasse><service>");
    b.push_str(&service.get().to_string());
    b.push_str("</service></identifiants>");
    b
}

fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// The realm of a `WWW-Authenticate` value (`Basic realm="net-entreprises.fr"`).
pub fn parse_realm(header: &str) -> Option<String> {
    let lower = header.to_ascii_lowercase();
    let start = lower.find("realm=")? + "realm=".len();
    let rest = &header[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => return Some(value),
                c => value.push(c),
            }
        }
        Some(value)
    } else {
        Some(rest.split([',', ' ']).next().unwrap_or("").to_owned())
    }
}

/// The outcome of an answer. `token_obtained`: a 200 carried a non-trivial token.
pub fn interpret(
    status: u16,
    www_authenticate: Option<&str>,
    expires: Option<SystemTime>,
    token_obtained: bool,
    settings: &NetworkSettings,
    service: ServiceCode,
) -> Verification {
    let realm = www_authenticate.map(|h| parse_realm(h).unwrap_or_else(|| h.to_owned()));
    let mut v = match status {
        200 if token_obtained => {
            let mut v = Verification::new(
                Outcome::Valid,
                "Les identifiants Net-entreprises sont valides : l'authentification a réussi.".into(),
            );
            v.token_expires_at = expires.filter(|e| *e > SystemTime::now());
            v
        }
        200 => Verification::new(
            Outcome::Unexpected,
            "Net-entreprises a accepté la connexion mais sa réponse ne contient pas de jeton exploitable. \
             Réessayez plus tard ; si le problème persiste, préparez une demande de support."
                .into(),
        ),
        401 => refusal(realm.as_deref(), service),
        403 => Verification::new(
            Outcome::AccountLocked,
            "Net-entreprises a bloqué ce compte après plusieurs échecs de connexion. Seul le déclarant peut \
             le débloquer, sur net-entreprises.fr ; ne réessayez pas avant."
                .into(),
        ),
        422 => Verification::new(
            Outcome::RejectedFormat,
            "Net-entreprises a rejeté la demande à ses contrôles de format (un champ trop long ou manquant). \
             Vérifiez les identifiants ; si le problème persiste, préparez une demande de support."
                .into(),
        ),
        404 => {
            let host = settings.address.host_str().unwrap_or("?");
            Verification::unavailable(Diagnosis {
                address: settings.address.to_string(),
                step: Step::Http,
                tls_problem: None,
                http_status: Some(404),
                latency: Duration::ZERO,
                message: format!(
                    "Le serveur « {host} » répond, mais le service d'authentification n'y est pas disponible \
                     (code HTTP 404). Vérifiez l'adresse, ou réessayez plus tard."
                ),
                detail: "HTTP status 404".into(),
            })
        }
        502..=504 => Verification::unavailable(from_status(settings, status)),
        _ => Verification::new(
            Outcome::Unexpected,
            format!(
                "Net-entreprises a répondu de façon inattendue (code HTTP {status}) : les identifiants n'ont pas pu \
                 être vérifiés. Réessayez plus tard ; si le problème persiste, préparez une demande de support."
            ),
        ),
    };
    v.http_status = Some(status);
    v.realm = realm;
    v
}

/// A 401 of the authentication service, by realm. A realm the service is not known to
/// send is taken as a refusal of the credentials: it counts as a failed login for the
/// caller's lockout budget, the safe side.
fn refusal(realm: Option<&str>, service: ServiceCode) -> Verification {
    let is = |expected: &str| realm.is_some_and(|r| r.trim().eq_ignore_ascii_case(expected));
    if is(REALM_PASSWORD_EXPIRED) {
        return Verification::new(
            Outcome::PasswordExpired,
            "Le mot de passe Net-entreprises a expiré : le déclarant doit le changer sur net-entreprises.fr, \
             puis le nouveau mot de passe doit être enregistré ici."
                .into(),
        );
    }
    if is(REALM_NOT_REGISTERED) {
        return Verification::new(
            Outcome::NotRegistered,
            format!(
                "Ce déclarant n'est pas inscrit au service {} sur Net-entreprises. Une inscription récente \
                 ne prend effet que le lendemain.",
                service.label()
            ),
        );
    }
    if !is(REALM_WRONG_CREDENTIALS) {
        tracing::warn!(
            realm = realm.unwrap_or(""),
            "401 with an unknown realm, taken as wrong credentials"
        );
    }
    Verification::new(
        Outcome::InvalidCredentials,
        "Net-entreprises refuse ces identifiants : le SIRET, le nom, le prénom ou le mot de passe est erroné. \
         Vérifiez-les (majuscules, accents, espaces) avant un nouvel essai : après plusieurs échecs, \
         Net-entreprises bloque le compte."
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use iea_net::ConnectionMode;
    use wiremock::matchers::{any, body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    fn settings(address: &str) -> NetworkSettings {
        NetworkSettings::direct(ConnectionMode::Normal, address).unwrap()
    }

    fn input(siret: &str, nom: &str, prenom: &str, password: &str) -> Input {
        Input {
            siret: siret.into(),
            nom: nom.into(),
            prenom: prenom.into(),
            password: SecretString::from(password.to_owned()),
            service: ServiceCode::DSN_TEST,
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(
            "Client-DSN (iea-connect/test; iea-connect)",
            Options::default(),
        )
    }

    /// A server that fails the test if it receives anything.
    async fn must_receive_nothing() -> MockServer {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn each_input_problem_gives_invalid_input_and_nothing_is_sent() {
        let server = must_receive_nothing().await;
        let s = settings(&server.uri());
        let cases = [
            input("99900000300016", "declarant", "declarant", "Refonte01"),
            input("9990000030001", "declarant", "declarant", "Refonte01"),
            input("99900000300015", " declarant", "declarant", "Refonte01"),
            input("99900000300015", "declarant", "declarant ", "Refonte01"),
            input(
                "99900000300015",
                "decl\u{a0}arant",
                "declarant",
                "Refonte01",
            ),
            input(
                "99900000300015",
                "declarant",
                "decla\u{200b}rant",
                "Refonte01",
            ),
            input("99900000300015", "declarant", "declarant", "Refonte01\t"),
            input("99900000300015", &"n".repeat(65), "declarant", "Refonte01"),
            input("99900000300015", "declarant", &"p".repeat(40), "Refonte01"),
            input("99900000300015", "declarant", "declarant", &"m".repeat(31)),
            input("99900000300015", "declarant", "declarant", ""),
            input("35600000039010", "declarant", "declarant", "Refonte01"),
        ];
        for case in &cases {
            let v = verifier().verify_input(case, &s).await;
            assert_eq!(v.outcome, Outcome::InvalidInput, "{case:?}");
            assert!(!v.input_problems.is_empty());
            assert!(v.http_status.is_none());
            assert!(!v.message.contains("Refonte01"));
        }
        // `expect(0)` is checked when the server drops; check it now, by name.
        server.verify().await;
    }

    #[tokio::test]
    async fn the_body_is_the_documented_xml_with_escaped_values_and_the_expected_headers() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/authentifier/1.0/"))
            .and(header("content-type", "application/xml"))
            .and(header(
                "user-agent",
                "Client-DSN (iea-connect/test; iea-connect)",
            ))
            .and(body_string(
                "<identifiants><siret>78214563500010</siret><nom>O&apos;HARA &amp; FILS</nom>\
                 <prenom>Éloïse</prenom><motdepasse>&lt;S3cret&amp;&quot;x&apos;&gt;</motdepasse>\
                 <service>97</service></identifiants>",
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("expires", "Wed, 21 Oct 2099 07:28:00 GMT")
                    .set_body_string("c2VjcmV0LXRva2VuLWZvci10ZXN0cw=="),
            )
            .expect(1)
            .mount(&server)
            .await;
        let v = verifier()
            .verify_input(
                &input(
                    "782 145 635 00010",
                    "O'HARA & FILS",
                    "Éloïse",
                    "<S3cret&\"x'>",
                ),
                &settings(&server.uri()),
            )
            .await;
        assert_eq!(v.outcome, Outcome::Valid, "{v:?}");
        assert_eq!(v.http_status, Some(200));
        assert_eq!(
            v.token_expires_at,
            Some(httpdate::parse_http_date("Wed, 21 Oct 2099 07:28:00 GMT").unwrap())
        );
        assert!(
            !format!("{v:?}").contains("c2VjcmV0"),
            "the token never leaves"
        );
    }

    #[tokio::test]
    async fn a_refusal_is_sent_once_and_never_again_even_in_extended_mode() {
        for status in [401, 403, 422, 500, 503] {
            let server = MockServer::start().await;
            Mock::given(any())
                .respond_with(
                    ResponseTemplate::new(status)
                        .insert_header("www-authenticate", "Basic realm=\"net-entreprises.fr\""),
                )
                .expect(1)
                .mount(&server)
                .await;
            let s = NetworkSettings::direct(ConnectionMode::Extended, &server.uri()).unwrap();
            let v = verifier()
                .verify_input(&input("99900000300015", "declarant", "declarant", "x"), &s)
                .await;
            assert_eq!(v.http_status, Some(status));
            server.verify().await;
        }
    }

    #[tokio::test]
    async fn only_a_connection_that_never_opened_is_tried_again_and_only_in_extended_mode() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/authentifier/1.0/", l.local_addr().unwrap())
        };
        let id = input("99900000300015", "declarant", "declarant", "x");
        for (mode, at_least) in [
            (ConnectionMode::Normal, Duration::ZERO),
            (ConnectionMode::Extended, Duration::from_millis(1400)),
        ] {
            let started = Instant::now();
            let s = NetworkSettings::direct(mode, &closed).unwrap();
            let v = verifier().verify_input(&id, &s).await;
            let elapsed = started.elapsed();
            assert_eq!(v.outcome, Outcome::Unavailable, "{v:?}");
            assert_eq!(v.diagnosis.unwrap().step, Step::Connect);
            assert!(elapsed >= at_least, "{mode:?}: {elapsed:?}");
            if mode == ConnectionMode::Normal {
                assert!(
                    elapsed < Duration::from_millis(400),
                    "no retry in normal mode: {elapsed:?}"
                );
            }
        }
    }

    #[test]
    fn each_status_and_realm_maps_to_its_outcome() {
        let s = settings("https://services.net-entreprises.fr");
        let svc = ServiceCode::DSN_PRODUCTION;
        let cases: &[(u16, Option<&str>, bool, Outcome)] = &[
            (200, None, true, Outcome::Valid),
            (200, None, false, Outcome::Unexpected),
            (
                401,
                Some("Basic realm=\"net-entreprises.fr\""),
                false,
                Outcome::InvalidCredentials,
            ),
            (
                401,
                Some("Basic realm=\"Expiration du mot de passe\""),
                false,
                Outcome::PasswordExpired,
            ),
            (
                401,
                Some("DSNLogin realm=\"Utilisateur non-inscrit au service\""),
                false,
                Outcome::NotRegistered,
            ),
            (
                401,
                Some("Basic realm=\"autre chose\""),
                false,
                Outcome::InvalidCredentials,
            ),
            (401, None, false, Outcome::InvalidCredentials),
            (403, None, false, Outcome::AccountLocked),
            (422, None, false, Outcome::RejectedFormat),
            (404, None, false, Outcome::Unavailable),
            (503, None, false, Outcome::Unavailable),
            (502, None, false, Outcome::Unavailable),
            (500, None, false, Outcome::Unexpected),
            (415, None, false, Outcome::Unexpected),
            (407, None, false, Outcome::Unexpected),
            (302, None, false, Outcome::Unexpected),
        ];
        for (status, www, token, expected) in cases {
            let v = interpret(*status, *www, None, *token, &s, svc);
            assert_eq!(v.outcome, *expected, "{status} {www:?}");
            assert_eq!(v.http_status, Some(*status));
            assert!(!v.message.is_empty());
            assert_eq!(v.diagnosis.is_some(), *expected == Outcome::Unavailable);
        }
        let v = interpret(
            401,
            Some("DSNLogin realm=\"Utilisateur non-inscrit au service\""),
            None,
            false,
            &s,
            svc,
        );
        assert_eq!(
            v.realm.as_deref(),
            Some("Utilisateur non-inscrit au service")
        );
        assert!(
            v.message.contains("DSN régime général (code 25)"),
            "{}",
            v.message
        );
        let v = interpret(503, None, None, false, &s, svc);
        assert_eq!(v.diagnosis.unwrap().step, Step::Http);
    }

    #[test]
    fn an_expiry_in_the_past_or_unreadable_is_not_reported() {
        let s = settings("https://services.net-entreprises.fr");
        let past = SystemTime::now() - Duration::from_secs(10);
        let v = interpret(200, None, Some(past), true, &s, ServiceCode::DSN_TEST);
        assert_eq!((v.outcome, v.token_expires_at), (Outcome::Valid, None));
    }

    #[test]
    fn realms_are_read_quoted_or_not() {
        assert_eq!(
            parse_realm("Basic realm=\"net-entreprises.fr\"").as_deref(),
            Some("net-entreprises.fr")
        );
        assert_eq!(
            parse_realm("DSNLogin REALM=\"a \\\"b\\\"\", x=1").as_deref(),
            Some("a \"b\"")
        );
        assert_eq!(
            parse_realm("Basic realm=plain, x=1").as_deref(),
            Some("plain")
        );
        assert_eq!(parse_realm("Basic"), None);
    }

    #[test]
    fn an_address_without_a_path_gets_the_authentication_path() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            auth_url(&u("https://services.net-entreprises.fr")).as_str(),
            "https://services.net-entreprises.fr/authentifier/1.0/"
        );
        assert_eq!(
            auth_url(&u(
                "https://test-services.net-entreprises.fr/authentifier/1.0/"
            ))
            .as_str(),
            "https://test-services.net-entreprises.fr/authentifier/1.0/"
        );
        assert_eq!(
            auth_url(&u("http://127.0.0.1:8080/x")).as_str(),
            "http://127.0.0.1:8080/x"
        );
    }

    #[test]
    fn a_service_code_must_be_given_and_is_sent_as_it_is() {
        assert_eq!(ServiceCode::new(25), Some(ServiceCode::DSN_PRODUCTION));
        assert_eq!(ServiceCode::new(0), None);
        assert_eq!(ServiceCode::new(100).map(ServiceCode::get), Some(100));
        let id = crate::identity::validate(
            "99900000300015",
            "n",
            "p",
            &SecretString::from("x".to_owned()),
        )
        .unwrap();
        assert!(
            xml_body(&id, ServiceCode::new(98).unwrap())
                .ends_with("<service>98</service></identifiants>")
        );
    }
}
