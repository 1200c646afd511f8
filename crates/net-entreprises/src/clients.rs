//! HTTP clients kept per network settings, and [`Authenticator`]: one authentication
//! attempt of an identity checked first, on a kept client.
//!
//! A client is kept per distinct network settings (keyed by a SHA-256 digest, so that the
//! proxy password is not kept in the key; at most [`MAX_CLIENTS`]), so successive calls
//! reuse connections. After an answer that says the server is in trouble (unavailable,
//! unexpected), the caller forgets the client: the next call starts on new connections
//! rather than on one kept from a server in trouble.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use iea_declarant::{Identity, TypedIdentity};
use iea_net::{HttpClient, NetError, NetworkSettings, SettingsError};
use prost::Message;
use reqwest::Url;
use sha2::{Digest, Sha256};

use crate::auth::{auth_url, authenticate, user_agent};
use crate::outcome::{Authentication, Outcome};
use crate::service::ServiceCode;

/// HTTP clients kept for reuse (one per distinct network settings).
pub const MAX_CLIENTS: usize = 16;

/// Tuning that the network settings of a call do not carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Upper bound on the connection and request timeouts of the call's mode (a caller
    /// with a tighter budget, and tests of a slow server).
    pub max_timeout: Option<Duration>,
}

/// Authenticates identities; keeps an HTTP client per distinct network settings, which
/// callers may use for their own requests ([`Authenticator::client`]).
pub struct Authenticator {
    user_agent: String,
    options: Options,
    clients: Mutex<HashMap<[u8; 32], HttpClient>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("user_agent", &self.user_agent)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new(Options::default())
    }
}

impl Authenticator {
    /// With the `Client-DSN` user agent ([`user_agent`]).
    pub fn new(options: Options) -> Self {
        Self::with_user_agent(user_agent(), options)
    }

    pub fn with_user_agent(user_agent: impl Into<String>, options: Options) -> Self {
        Self {
            user_agent: user_agent.into(),
            options,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> Options {
        self.options
    }

    /// Checks the identity as typed, then, only if it is fit, authenticates once.
    pub async fn authenticate_typed(
        &self,
        typed: &TypedIdentity,
        service: ServiceCode,
        settings: &NetworkSettings,
    ) -> Authentication {
        match typed.validate() {
            Ok(identity) => self.authenticate(&identity, service, settings).await,
            Err(problems) => Authentication::invalid_input(problems),
        }
    }

    /// One authentication of a checked identity.
    pub async fn authenticate(
        &self,
        identity: &Identity,
        service: ServiceCode,
        settings: &NetworkSettings,
    ) -> Authentication {
        self.authenticate_prepared(identity, service, &self.prepare(settings))
            .await
    }

    /// Settings bounded by the options, with the key of their client: computed once for
    /// a stream of calls.
    pub fn prepare(&self, settings: &NetworkSettings) -> Prepared {
        let settings = self.bounded(settings);
        Prepared {
            key: client_key(&settings),
            url: auth_url(&settings.address),
            settings,
        }
    }

    /// One authentication of a checked identity, with prepared settings (whose address
    /// is the authentication service's).
    pub async fn authenticate_prepared(
        &self,
        identity: &Identity,
        service: ServiceCode,
        prepared: &Prepared,
    ) -> Authentication {
        let client = match self.client(prepared) {
            Ok(c) => c,
            Err(NetError::Settings(detail)) => {
                return Authentication::unusable_settings(
                    prepared.settings.address.as_str(),
                    &SettingsError {
                        field: "network".into(),
                        message: format!(
                            "Les paramètres de connexion ne permettent pas de joindre Net-entreprises ({detail})."
                        ),
                    },
                );
            }
            Err(NetError::Transport(d)) => return Authentication::unavailable(d),
        };
        let v = authenticate(
            &client,
            &prepared.url,
            identity,
            service,
            &prepared.settings,
        )
        .await;
        if matches!(v.outcome, Outcome::Unavailable | Outcome::Unexpected) {
            // A server in trouble: the next call starts on new connections rather than on
            // one kept from before (it may be half-dead, or the server may now refuse new
            // ones).
            self.forget(prepared);
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

    /// The kept client of these settings, made if there is none.
    pub fn client(&self, prepared: &Prepared) -> Result<HttpClient, NetError> {
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&prepared.key)
        {
            return Ok(c.clone());
        }
        // Built without the lock held: it reads the trusted certificates.
        let client = HttpClient::new(&prepared.settings, &self.user_agent)?;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(prepared.key, client.clone());
        Ok(client)
    }

    /// Drops the kept client of these settings: the next call opens new connections.
    pub fn forget(&self, prepared: &Prepared) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&prepared.key);
    }
}

/// Network settings made ready for calls: bounded, their client's key, the
/// authentication address (the settings' address, [`crate::AUTH_PATH`] added when it has
/// no path).
#[derive(Debug, Clone)]
pub struct Prepared {
    settings: NetworkSettings,
    key: [u8; 32],
    url: Url,
}

impl Prepared {
    /// The settings, timeouts bounded by the options.
    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// Where an authentication with these settings is posted.
    pub fn auth_url(&self) -> &Url {
        &self.url
    }

    /// A digest that tells these settings apart (no secret can be read back from it).
    pub fn key(&self) -> [u8; 32] {
        self.key
    }
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use iea_net::{ConnectionMode, Step};
    use secrecy::SecretString;
    use wiremock::matchers::{any, body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    fn settings(address: &str) -> NetworkSettings {
        NetworkSettings::direct(ConnectionMode::Normal, address).unwrap()
    }

    fn input(siret: &str, nom: &str, prenom: &str, password: &str) -> TypedIdentity {
        TypedIdentity {
            siret: siret.into(),
            nom: nom.into(),
            prenom: prenom.into(),
            password: SecretString::from(password.to_owned()),
        }
    }

    fn authenticator() -> Authenticator {
        Authenticator::with_user_agent(
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
            let v = authenticator()
                .authenticate_typed(case, ServiceCode::DSN_TEST, &s)
                .await;
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
        let mut v = authenticator()
            .authenticate_typed(
                &input(
                    "782 145 635 00010",
                    "O'HARA & FILS",
                    "Éloïse",
                    "<S3cret&\"x'>",
                ),
                ServiceCode::DSN_TEST,
                &settings(&server.uri()),
            )
            .await;
        assert_eq!(v.outcome, Outcome::Valid, "{v:?}");
        assert_eq!(v.http_status, Some(200));
        let expiry = httpdate::parse_http_date("Wed, 21 Oct 2099 07:28:00 GMT").unwrap();
        assert_eq!(v.token_expires_at, Some(expiry));
        assert!(
            !format!("{v:?}").contains("c2VjcmV0"),
            "the token never prints"
        );
        let token = v.take_token().expect("the token, as a secret");
        assert_eq!(token.expires_at(), Some(expiry));
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
            let v = authenticator()
                .authenticate_typed(
                    &input("99900000300015", "declarant", "declarant", "x"),
                    ServiceCode::DSN_TEST,
                    &s,
                )
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
            let v = authenticator()
                .authenticate_typed(&id, ServiceCode::DSN_TEST, &s)
                .await;
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
}
