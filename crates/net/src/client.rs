//! The HTTP client of one call.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::ExposeSecret;

use crate::probe::{Diagnosis, classify};
use crate::settings::{ConnectionMode, ConnectionType, NetworkSettings};

/// Why a call did not get an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The settings cannot make a client (bad proxy address, unreadable CA bundle).
    #[error("{0}")]
    Settings(String),
    /// The request did not get an answer: where it stopped, and why.
    #[error("{}", .0.detail)]
    Transport(Diagnosis),
}

/// A reqwest client configured for one set of network settings.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    settings: Arc<NetworkSettings>,
}

impl HttpClient {
    /// `user_agent` is sent with every request.
    pub fn new(settings: &NetworkSettings, user_agent: &str) -> Result<Self, NetError> {
        Self::build(settings, user_agent, false)
    }

    /// The same client, HTTP/1.1 only, for bulk downloads (update packages): one stream
    /// per connection moves large bodies markedly faster than hyper's HTTP/2 here.
    pub fn new_http1(settings: &NetworkSettings, user_agent: &str) -> Result<Self, NetError> {
        Self::build(settings, user_agent, true)
    }

    fn build(settings: &NetworkSettings, user_agent: &str, http1: bool) -> Result<Self, NetError> {
        let mut tls = tls_config(settings)?;
        if http1 {
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .dns_resolver(Arc::new(SystemResolver))
            .user_agent(user_agent)
            .connect_timeout(settings.connect_timeout())
            .timeout(settings.request_timeout())
            .redirect(reqwest::redirect::Policy::limited(3))
            .pool_idle_timeout(Duration::from_secs(30));
        match settings.mode {
            ConnectionMode::Secure => b = b.https_only(true),
            ConnectionMode::Extended => b = b.http1_only(),
            ConnectionMode::Normal => {}
        }
        if http1 {
            b = b.http1_only();
        }
        match &settings.connection_type {
            ConnectionType::Direct => b = b.no_proxy(),
            // reqwest reads HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY by default.
            ConnectionType::System => {}
            ConnectionType::Proxy {
                host,
                port,
                username,
                password,
            } => {
                let url = format!("http://{host}:{port}");
                let mut proxy = reqwest::Proxy::all(&url)
                    .map_err(|e| NetError::Settings(format!("proxy address {url}: {e}")))?;
                if let Some(user) = username {
                    let pass = password.as_ref().map(|p| p.expose_secret()).unwrap_or("");
                    proxy = proxy.basic_auth(user, pass);
                }
                b = b.no_proxy().proxy(proxy);
            }
        }
        let inner = b
            .build()
            .map_err(|e| NetError::Settings(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            inner,
            settings: Arc::new(settings.clone()),
        })
    }

    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends the request `build` makes. In *Étendu* mode, a network failure or a 5xx is
    /// tried again (twice, after 0.5 s then 1 s); any other answer, a refusal above all,
    /// is returned as it came, never repeated.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, NetError> {
        let retries = self.settings.mode.retries();
        let mut attempt = 0;
        loop {
            let result = build(&self.inner).send().await;
            let transient = match &result {
                Ok(r) => r.status().is_server_error(),
                Err(e) => !e.is_builder() && !e.is_redirect(),
            };
            if !transient || attempt >= retries {
                return result.map_err(|e| NetError::Transport(classify(&e, &self.settings)));
            }
            attempt += 1;
            tracing::debug!(attempt, "transient failure, trying again (extended mode)");
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
}

/// System roots, loaded once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::debug!(error = %e, "a system certificate could not be loaded");
        }
        loaded.certs
    })
}

fn tls_config(settings: &NetworkSettings) -> Result<rustls::ClientConfig, NetError> {
    let mut roots = RootCertStore::empty();
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(pem) = &settings.extra_ca_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NetError::Settings(format!("extra CA bundle: {e}")))?;
        if certs.is_empty() {
            return Err(NetError::Settings(
                "extra CA bundle holds no certificate".into(),
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| NetError::Settings(format!("extra CA bundle: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Settings(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = match settings.mode {
        ConnectionMode::Extended => vec![b"http/1.1".to_vec()],
        _ => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(cfg)
}

/// The system's resolver (getaddrinfo), except that names under `.invalid` fail at once
/// without a query, as RFC 6761 §6.4 asks of resolution libraries.
struct SystemResolver;

impl reqwest::dns::Resolve for SystemResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == "invalid" || host.ends_with(".invalid") {
                let e = std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "failed to lookup address information: reserved .invalid name",
                );
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
