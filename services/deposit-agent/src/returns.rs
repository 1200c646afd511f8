//! The returns Net-entreprises publishes after a deposit (natures 10, 11, 94…):
//! - `GET {consultation}/lister-retours-flux/1.0/{idflux}`: the returns of one deposit (no
//!   window; 404: a flux the service does not know);
//! - `GET {consultation}/lister-retours-declarant/1.0/{debut}[/{fin}]`: the declarant's
//!   returns published over a window (429 past the widest window, which each 200 announces
//!   in `Accept-Ranges: minutes=0-N`, read here, never assumed; 422 unreadable dates);
//! - `GET {url}` of a listed return (download service): the document, streamed to the
//!   caller decompressed, in chunks of at most [`CHUNK`] bytes as it arrives, its SHA-256
//!   computed on the way, cut off past the caller's cap.
//!
//! Requests are built as `listing.rs` builds them (token, `Accept-Encoding: gzip`, the
//! `Client-DSN` user agent and the timeouts of the client kept per network settings, a
//! span per call); a 401 gets one new authentication and one more request
//! ([`Sessions::call`]), an authentication refusal is final. Nothing is retried
//! otherwise. A download address is checked before anything is sent: same scheme, host
//! and port as the download service's address, a path under [`DOWNLOAD_PATH`] made of
//! letters, digits, `-` and `_` only, no user, query or fragment.
//!
//! Logs carry the idflux, the return's id, natures, sizes and statuses; never a document's
//! content (NIRs, names, rates).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use iea_net::probe::{classify, from_status};
use iea_net::{Diagnosis, HttpClient, NetError, NetworkSettings, Step};
use iea_net_entreprises::{Authentication, Token};
use reqwest::Url;
use reqwest::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, HeaderMap, WWW_AUTHENTICATE,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::deposit::{error_chain, service_url};
use crate::listing::{self, Attempt, MAX_LISTING, Window};
use crate::report::{self, ListedReturn};
use crate::session::{Access, Called, Sessions};

/// Path of the listing of one deposit's returns.
pub const FLUX_PATH: &str = "/lister-retours-flux/1.0/";
/// Path of the listing of a declarant's returns over a window.
pub const DECLARANT_PATH: &str = "/lister-retours-declarant/1.0/";
/// Path every download address must be under.
pub const DOWNLOAD_PATH: &str = "/telecharger-retour/1.0/";
/// Size cap of a document when the caller gives none (bytes, decompressed).
pub const DEFAULT_MAX_BYTES: u64 = iea_dsn::returns::DEFAULT_MAX_BYTES as u64;
/// Largest chunk of a document sent to the caller.
pub const CHUNK: usize = 64 * 1024;
/// Compressed bytes handed to the gzip decoder at once: at most ~1,000 times that comes
/// out (deflate's ratio), so a "gzip bomb" never inflates much before the cap is seen.
const GZ_SLICE: usize = 512;

// ---- Listings ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFailure {
    /// 429.
    WindowTooWide,
    /// 422 (of the declarant listing).
    BadDates,
    /// No answer, 5xx, 404 of the declarant listing.
    Unavailable,
    Unexpected,
    /// 404 of the flux listing.
    UnknownFlux,
}

#[derive(Debug)]
pub enum ListOutcome {
    Listing {
        returns: Vec<ListedReturn>,
        window_max_minutes: Option<u32>,
        expires_in_seconds: u32,
    },
    Authentication(Authentication),
    Failed(ListFailure, Option<Diagnosis>),
}

#[derive(Debug)]
pub struct ListReport {
    pub outcome: ListOutcome,
    pub http_status: Option<u16>,
    /// French sentence.
    pub message: String,
    pub reauthenticated: bool,
}

fn www_401(status: u16, headers: &HeaderMap) -> Option<Option<String>> {
    (status == 401).then(|| {
        headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// The client kept for these settings, or why there is none.
fn client(sessions: &Sessions, access: &Access) -> Result<HttpClient, Diagnosis> {
    let settings = access.business.settings();
    match sessions.authenticator().client(&access.business) {
        Ok(c) => Ok(c),
        Err(NetError::Transport(d)) => Err(d),
        Err(NetError::Settings(detail)) => Err(Diagnosis {
            address: settings.address.to_string(),
            step: Step::Address,
            tls_problem: None,
            http_status: None,
            latency: Duration::ZERO,
            message: format!(
                "Les paramètres de connexion ne permettent pas de joindre Net-entreprises ({detail})."
            ),
            detail: format!("client: {detail}"),
        }),
    }
}

/// A GET with the token, as every business service takes it.
fn get(client: &HttpClient, token: Token, url: &Url) -> reqwest::RequestBuilder {
    token.authorize(
        client
            .reqwest()
            .get(url.clone())
            .header(ACCEPT_ENCODING, "gzip"),
    )
}

enum Which<'a> {
    Flux(&'a str),
    Declarant(&'a Window),
}

impl Which<'_> {
    fn what(&self) -> &'static str {
        match self {
            Which::Flux(_) => "La liste des retours du dépôt",
            Which::Declarant(_) => "La liste des retours du déclarant",
        }
    }
}

/// The returns of one deposit (`idflux`: 1 to 50 letters and digits, checked by the
/// caller).
pub async fn list_flux(sessions: &Sessions, access: &Access, idflux: &str) -> ListReport {
    list(sessions, access, Which::Flux(idflux)).await
}

/// The declarant's returns published over `window` (never widened here).
pub async fn list_declarant(sessions: &Sessions, access: &Access, window: &Window) -> ListReport {
    list(sessions, access, Which::Declarant(window)).await
}

async fn list(sessions: &Sessions, access: &Access, which: Which<'_>) -> ListReport {
    let settings = access.business.settings();
    let (mut url, span) = match &which {
        Which::Flux(idflux) => (
            service_url(&settings.address, FLUX_PATH),
            tracing::info_span!(
                "net_entreprises_list_flux_returns",
                idflux = %idflux,
                siret = %access.identity.siret,
            ),
        ),
        Which::Declarant(window) => (
            service_url(&settings.address, DECLARANT_PATH),
            tracing::info_span!(
                "net_entreprises_list_declarant_returns",
                debut = %window.debut,
                fin = window.fin.as_deref().unwrap_or(""),
                siret = %access.identity.siret,
            ),
        ),
    };
    let path = match &which {
        Which::Flux(idflux) => format!("{}{idflux}", url.path()),
        Which::Declarant(Window {
            debut,
            fin: Some(fin),
        }) => format!("{}{debut}/{fin}", url.path()),
        Which::Declarant(Window { debut, fin: None }) => format!("{}{debut}", url.path()),
    };
    url.set_path(&path);
    let client = match client(sessions, access) {
        Ok(c) => c,
        Err(d) => return list_unavailable(&which, d, None, false),
    };
    let called = sessions
        .call(
            access,
            |token| {
                let request = get(&client, token, &url);
                listing::fetch(request, "returns").instrument(span.clone())
            },
            |a: &Attempt| match a {
                Attempt::Answer {
                    status, headers, ..
                } => www_401(*status, headers),
                Attempt::Failed(_) => None,
            },
        )
        .await;
    let (attempt, reauthenticated) = match called {
        Called::Done(a, r) => (a, r),
        Called::Authentication(a, r) => {
            return ListReport {
                http_status: a.http_status,
                message: format!("{} n'a pas pu être obtenue : {}", which.what(), a.message),
                outcome: ListOutcome::Authentication(*a),
                reauthenticated: r,
            };
        }
    };
    let report = interpret_listing(&which, attempt, settings, reauthenticated);
    if matches!(
        report.outcome,
        ListOutcome::Failed(ListFailure::Unavailable, _)
    ) {
        sessions.authenticator().forget(&access.business);
    }
    span.in_scope(|| match &report.outcome {
        ListOutcome::Listing {
            returns,
            window_max_minutes,
            expires_in_seconds,
        } => {
            let natures: Vec<u32> = returns.iter().map(|r| r.nature).collect();
            tracing::info!(
                returns = returns.len(),
                natures = ?natures,
                window_max_minutes = window_max_minutes.unwrap_or(0),
                expires_in_seconds,
                reauthenticated,
                "returns listed"
            );
        }
        ListOutcome::Failed(f, _) => tracing::info!(
            failure = ?f,
            http_status = report.http_status.unwrap_or(0),
            reauthenticated,
            "returns listing failed"
        ),
        ListOutcome::Authentication(_) => {}
    });
    report
}

fn list_unavailable(
    which: &Which<'_>,
    d: Diagnosis,
    status: Option<u16>,
    reauthenticated: bool,
) -> ListReport {
    ListReport {
        message: format!(
            "{} n'a pas pu être obtenue : Net-entreprises est injoignable ou indisponible. {}",
            which.what(),
            d.message
        ),
        outcome: ListOutcome::Failed(ListFailure::Unavailable, Some(d)),
        http_status: status,
        reauthenticated,
    }
}

fn interpret_listing(
    which: &Which<'_>,
    attempt: Attempt,
    settings: &NetworkSettings,
    reauthenticated: bool,
) -> ListReport {
    let (status, headers, body) = match attempt {
        Attempt::Failed(e) => {
            return list_unavailable(which, classify(&e, settings), None, reauthenticated);
        }
        Attempt::Answer {
            status,
            headers,
            body,
        } => (status, headers, body),
    };
    let failed = |failure, message: String| ListReport {
        outcome: ListOutcome::Failed(failure, None),
        http_status: Some(status),
        message,
        reauthenticated,
    };
    let flux = matches!(which, Which::Flux(_));
    match status {
        200 => {
            let window_max_minutes = headers
                .get(ACCEPT_RANGES)
                .and_then(|v| v.to_str().ok())
                .and_then(report::window_minutes);
            let expires_in_seconds = report::expires_in(&headers, SystemTime::now());
            let text = match body {
                Ok(Some(b)) => report::body_text(&headers, b, MAX_LISTING),
                Ok(None) => Err("listing too large".into()),
                Err(e) => Err(format!("listing cut: {}", error_chain(&e))),
            };
            match text.and_then(|t| report::read_returns(&t)) {
                Ok(returns) => ListReport {
                    message: format!(
                        "Net-entreprises liste {}{}.",
                        iea_fr_time::count(returns.len() as u64, "retour", "retours"),
                        if flux { " pour ce dépôt" } else { " sur la période" }
                    ),
                    outcome: ListOutcome::Listing {
                        returns,
                        window_max_minutes,
                        expires_in_seconds,
                    },
                    http_status: Some(200),
                    reauthenticated,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "returns listing unreadable");
                    failed(
                        ListFailure::Unexpected,
                        format!(
                            "{} renvoyée par Net-entreprises est illisible. Réessayez plus tard ; si le \
                             problème persiste, préparez une demande de support.",
                            which.what()
                        ),
                    )
                }
            }
        }
        404 if flux => failed(
            ListFailure::UnknownFlux,
            "Net-entreprises ne connaît pas ce dépôt (pas encore, ou pas pour ce déclarant) : aucun retour \
             ne peut être listé."
                .into(),
        ),
        429 => failed(
            ListFailure::WindowTooWide,
            "Net-entreprises refuse une période aussi longue pour la liste des retours : demandez une \
             période plus courte."
                .into(),
        ),
        422 if !flux => failed(
            ListFailure::BadDates,
            "Net-entreprises n'a pas pu lire les dates de la période demandée.".into(),
        ),
        404 | 500..=599 => {
            let mut d = from_status(settings, status);
            d.http_status = Some(status);
            if status == 404 {
                d.step = Step::Http;
                d.message =
                    "Le service de consultation ne répond pas à cette adresse (code HTTP 404).".into();
                d.detail = "HTTP status 404".into();
            }
            list_unavailable(which, d, Some(status), reauthenticated)
        }
        _ => failed(
            ListFailure::Unexpected,
            format!(
                "Net-entreprises a répondu de façon inattendue à la demande de liste des retours \
                 (code HTTP {status})."
            ),
        ),
    }
}

// ---- Download ----

/// Why a download address is refused (English, for logs; it names no content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignReason {
    Unparsable,
    Scheme,
    Host,
    Port,
    /// A user, a password, a query or a fragment.
    Extra,
    Path,
}

/// Checks that `url` is a document of the download service at `service`: same scheme,
/// host and port, path `/telecharger-retour/1.0/` then segments of letters, digits, `-`
/// and `_`. Answers the URL to request.
pub fn check_url(service: &Url, url: &str) -> Result<Url, ForeignReason> {
    let u = Url::parse(url.trim()).map_err(|_| ForeignReason::Unparsable)?;
    if u.scheme() != service.scheme() {
        return Err(ForeignReason::Scheme);
    }
    let host = |x: &Url| x.host_str().map(|h| h.to_ascii_lowercase());
    if host(&u).is_none() || host(&u) != host(service) {
        return Err(ForeignReason::Host);
    }
    if u.port_or_known_default() != service.port_or_known_default() {
        return Err(ForeignReason::Port);
    }
    if !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
    {
        return Err(ForeignReason::Extra);
    }
    let rest = u
        .path()
        .strip_prefix(DOWNLOAD_PATH)
        .ok_or(ForeignReason::Path)?;
    let ok = !rest.is_empty()
        && rest.split('/').all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok { Ok(u) } else { Err(ForeignReason::Path) }
}

/// `(idflux, id)` of a download address already checked, for logs.
fn ids_of(url: &Url) -> (String, String) {
    let rest = url.path().strip_prefix(DOWNLOAD_PATH).unwrap_or_default();
    let mut parts = rest.split('/');
    (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFailure {
    ForeignAddress,
    /// 404.
    Gone,
    /// Past the cap.
    TooLarge,
    /// No answer, 5xx, a body cut.
    Unavailable,
    Unexpected,
}

#[derive(Debug)]
pub enum DownloadOutcome {
    Done {
        bytes: u64,
        sha256: String,
        expires_in_seconds: u32,
    },
    Authentication(Authentication),
    Failed(DownloadFailure, Option<Diagnosis>),
    /// The caller stopped reading: nothing more to say to it.
    CallerGone,
}

#[derive(Debug)]
pub struct DownloadReport {
    pub outcome: DownloadOutcome,
    pub http_status: Option<u16>,
    /// French sentence.
    pub message: String,
    pub reauthenticated: bool,
}

impl DownloadReport {
    /// A refused address: nothing was sent.
    pub fn foreign(reason: ForeignReason) -> Self {
        tracing::warn!(
            reason = ?reason,
            "download refused before anything was sent: the address is outside the download service"
        );
        DownloadReport {
            outcome: DownloadOutcome::Failed(DownloadFailure::ForeignAddress, None),
            http_status: None,
            message: "L'adresse de téléchargement de ce retour n'est pas celle du service de téléchargement \
                      de Net-entreprises configuré : rien n'a été demandé."
                .into(),
            reauthenticated: false,
        }
    }
}

/// How streaming a 200's body ended.
#[derive(Debug)]
enum Streamed {
    Done { bytes: u64, sha256: String },
    TooLarge { bytes: u64 },
    Cut(String),
    BadEncoding(String),
    CallerGone,
}

/// What one download request gave.
#[derive(Debug)]
enum DownloadAttempt {
    Streamed {
        headers: HeaderMap,
        streamed: Streamed,
    },
    /// Anything but a 200 (its body is not read).
    Answer {
        status: u16,
        headers: HeaderMap,
    },
    Failed(reqwest::Error),
}

/// The sink of a gzip decoder that refuses to grow past the cap.
struct Capped {
    out: Vec<u8>,
    total: u64,
    max: u64,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.total + data.len() as u64 > self.max {
            self.over = true;
            return Err(std::io::Error::other("document past the size cap"));
        }
        self.total += data.len() as u64;
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the decompressed bytes on in chunks of at most [`CHUNK`], hashing them.
struct Emitter<'a> {
    sink: &'a mpsc::Sender<Vec<u8>>,
    pending: Vec<u8>,
    hasher: Sha256,
    bytes: u64,
}

impl Emitter<'_> {
    /// `false`: the caller is gone.
    async fn push(&mut self, data: &[u8]) -> bool {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.pending.extend_from_slice(data);
        while self.pending.len() >= CHUNK {
            let rest = self.pending.split_off(CHUNK);
            let chunk = std::mem::replace(&mut self.pending, rest);
            if self.sink.send(chunk).await.is_err() {
                return false;
            }
        }
        true
    }

    async fn finish(mut self) -> Result<(u64, String), ()> {
        if !self.pending.is_empty()
            && self
                .sink
                .send(std::mem::take(&mut self.pending))
                .await
                .is_err()
        {
            return Err(());
        }
        Ok((self.bytes, format!("{:x}", self.hasher.finalize())))
    }
}

async fn stream_body(
    mut response: reqwest::Response,
    max: u64,
    sink: &mpsc::Sender<Vec<u8>>,
) -> Streamed {
    let encoding = response
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let mut decoder = match encoding.as_deref() {
        None | Some("identity") => None,
        Some("gzip") => Some(flate2::write::MultiGzDecoder::new(Capped {
            out: Vec::new(),
            total: 0,
            max,
            over: false,
        })),
        Some(_) => return Streamed::BadEncoding("unsupported Content-Encoding".into()),
    };
    let mut emitter = Emitter {
        sink,
        pending: Vec::new(),
        hasher: Sha256::new(),
        bytes: 0,
    };
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Streamed::Cut(error_chain(&e)),
        };
        match &mut decoder {
            None => {
                if emitter.bytes + chunk.len() as u64 > max {
                    return Streamed::TooLarge {
                        bytes: emitter.bytes,
                    };
                }
                if !emitter.push(&chunk).await {
                    return Streamed::CallerGone;
                }
            }
            Some(d) => {
                for slice in chunk.chunks(GZ_SLICE) {
                    if let Err(e) = d.write_all(slice) {
                        return if d.get_ref().over {
                            Streamed::TooLarge {
                                bytes: emitter.bytes,
                            }
                        } else {
                            Streamed::BadEncoding(format!("gzip: {e}"))
                        };
                    }
                    let out = std::mem::take(&mut d.get_mut().out);
                    if !out.is_empty() && !emitter.push(&out).await {
                        return Streamed::CallerGone;
                    }
                }
            }
        }
    }
    if let Some(mut d) = decoder {
        if let Err(e) = d.try_finish() {
            return if d.get_ref().over {
                Streamed::TooLarge {
                    bytes: emitter.bytes,
                }
            } else {
                Streamed::BadEncoding(format!("gzip: {e}"))
            };
        }
        let out = std::mem::take(&mut d.get_mut().out);
        if !out.is_empty() && !emitter.push(&out).await {
            return Streamed::CallerGone;
        }
    }
    match emitter.finish().await {
        Ok((bytes, sha256)) => Streamed::Done { bytes, sha256 },
        Err(()) => Streamed::CallerGone,
    }
}

/// Downloads `url` (already [`check_url`]ed), sending the document's bytes to `sink` in
/// chunks of at most [`CHUNK`]; at most `max` bytes once decompressed. The report is the
/// last word: anything but `Done` means the bytes sent must be thrown away.
pub async fn download(
    sessions: &Sessions,
    access: &Access,
    url: &Url,
    max: u64,
    sink: &mpsc::Sender<Vec<u8>>,
) -> DownloadReport {
    let settings = access.business.settings();
    let (idflux, id) = ids_of(url);
    let span = tracing::info_span!(
        "net_entreprises_download_return",
        idflux = %idflux,
        return_id = %id,
        siret = %access.identity.siret,
        max_bytes = max,
    );
    let client = match client(sessions, access) {
        Ok(c) => c,
        Err(d) => return download_unavailable(d, None, false),
    };
    let called = sessions
        .call(
            access,
            |token| {
                let request = get(&client, token, url);
                async move {
                    let started = Instant::now();
                    let attempt = match request.send().await {
                        Ok(r) if r.status().as_u16() == 200 => {
                            let headers = r.headers().clone();
                            let streamed = stream_body(r, max, sink).await;
                            DownloadAttempt::Streamed { headers, streamed }
                        }
                        Ok(r) => DownloadAttempt::Answer {
                            status: r.status().as_u16(),
                            headers: r.headers().clone(),
                        },
                        Err(e) => DownloadAttempt::Failed(e),
                    };
                    match &attempt {
                        DownloadAttempt::Streamed { streamed, .. } => tracing::info!(
                            http_status = 200,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            streamed = ?streamed,
                            "download answered"
                        ),
                        DownloadAttempt::Answer { status, .. } => tracing::info!(
                            http_status = status,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "download answered"
                        ),
                        DownloadAttempt::Failed(e) => {
                            tracing::info!(error = %error_chain(e), "download without an answer")
                        }
                    }
                    attempt
                }
                .instrument(span.clone())
            },
            |a: &DownloadAttempt| match a {
                DownloadAttempt::Answer { status, headers } => www_401(*status, headers),
                _ => None,
            },
        )
        .await;
    let (attempt, reauthenticated) = match called {
        Called::Done(a, r) => (a, r),
        Called::Authentication(a, r) => {
            return DownloadReport {
                http_status: a.http_status,
                message: format!("Le retour n'a pas pu être téléchargé : {}", a.message),
                outcome: DownloadOutcome::Authentication(*a),
                reauthenticated: r,
            };
        }
    };
    let report = interpret_download(attempt, settings, max, reauthenticated);
    if matches!(
        report.outcome,
        DownloadOutcome::Failed(DownloadFailure::Unavailable, _)
    ) {
        sessions.authenticator().forget(&access.business);
    }
    span.in_scope(|| match &report.outcome {
        DownloadOutcome::Done { bytes, .. } => {
            tracing::info!(bytes, reauthenticated, "return downloaded")
        }
        DownloadOutcome::Failed(f, _) => tracing::info!(
            failure = ?f,
            http_status = report.http_status.unwrap_or(0),
            reauthenticated,
            "return not downloaded"
        ),
        DownloadOutcome::CallerGone => tracing::info!("the caller left during the download"),
        DownloadOutcome::Authentication(_) => {}
    });
    report
}

fn download_unavailable(
    d: Diagnosis,
    status: Option<u16>,
    reauthenticated: bool,
) -> DownloadReport {
    DownloadReport {
        message: format!(
            "Le retour n'a pas pu être téléchargé : Net-entreprises est injoignable ou indisponible. {}",
            d.message
        ),
        outcome: DownloadOutcome::Failed(DownloadFailure::Unavailable, Some(d)),
        http_status: status,
        reauthenticated,
    }
}

fn interpret_download(
    attempt: DownloadAttempt,
    settings: &NetworkSettings,
    max: u64,
    reauthenticated: bool,
) -> DownloadReport {
    let failed = |failure, status: u16, message: String| DownloadReport {
        outcome: DownloadOutcome::Failed(failure, None),
        http_status: Some(status),
        message,
        reauthenticated,
    };
    match attempt {
        DownloadAttempt::Failed(e) => {
            download_unavailable(classify(&e, settings), None, reauthenticated)
        }
        DownloadAttempt::Streamed { headers, streamed } => match streamed {
            Streamed::Done { bytes, sha256 } => DownloadReport {
                outcome: DownloadOutcome::Done {
                    bytes,
                    sha256,
                    expires_in_seconds: report::expires_in(&headers, SystemTime::now()),
                },
                http_status: Some(200),
                message: format!("Le retour a été téléchargé ({bytes} octets)."),
                reauthenticated,
            },
            Streamed::TooLarge { bytes } => {
                tracing::warn!(
                    streamed_bytes = bytes,
                    max_bytes = max,
                    "download stopped: the document is past the size cap"
                );
                failed(
                DownloadFailure::TooLarge,
                200,
                format!(
                    "Le retour dépasse la taille admise ({max} octets) : son téléchargement a été arrêté \
                     et il n'est pas gardé."
                    ),
                )
            }
            Streamed::Cut(detail) => {
                let d = Diagnosis {
                    address: settings.address.to_string(),
                    step: Step::Http,
                    tls_problem: None,
                    http_status: Some(200),
                    latency: Duration::ZERO,
                    message: "Le téléchargement a été interrompu avant la fin du document.".into(),
                    detail,
                };
                download_unavailable(d, Some(200), reauthenticated)
            }
            Streamed::BadEncoding(detail) => {
                tracing::warn!(detail = %detail, "downloaded document cannot be decompressed");
                failed(
                    DownloadFailure::Unexpected,
                    200,
                    "Le document renvoyé par Net-entreprises est illisible (compression). Réessayez plus \
                     tard ; si le problème persiste, préparez une demande de support."
                        .into(),
                )
            }
            Streamed::CallerGone => DownloadReport {
                outcome: DownloadOutcome::CallerGone,
                http_status: Some(200),
                message: "Le téléchargement a été abandonné par le demandeur.".into(),
                reauthenticated,
            },
        },
        DownloadAttempt::Answer { status, .. } => match status {
            404 => failed(
                DownloadFailure::Gone,
                404,
                "Ce retour n'est plus téléchargeable (purgé, remplacé par une nouvelle version, ou \
                 inconnu) : listez à nouveau les retours du dépôt."
                    .into(),
            ),
            500..=599 => {
                let mut d = from_status(settings, status);
                d.http_status = Some(status);
                download_unavailable(d, Some(status), reauthenticated)
            }
            _ => failed(
                DownloadFailure::Unexpected,
                status,
                format!(
                    "Net-entreprises a répondu de façon inattendue à la demande de téléchargement \
                     (code HTTP {status})."
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_documents_of_the_download_service_are_asked_for() {
        let service = Url::parse("https://telechargement.example:8443/").unwrap();
        let ok = "https://telechargement.example:8443/telecharger-retour/1.0/AbC123/0123456789";
        assert_eq!(check_url(&service, ok).unwrap().as_str(), ok);
        let upper = "https://TELECHARGEMENT.example:8443/telecharger-retour/1.0/A/1";
        assert!(check_url(&service, upper).is_ok());
        for (url, reason) in [
            ("not a url", ForeignReason::Unparsable),
            (
                "http://telechargement.example:8443/telecharger-retour/1.0/A/1",
                ForeignReason::Scheme,
            ),
            (
                "https://evil.example:8443/telecharger-retour/1.0/A/1",
                ForeignReason::Host,
            ),
            (
                "https://telechargement.example/telecharger-retour/1.0/A/1",
                ForeignReason::Port,
            ),
            (
                "https://telechargement.example:8444/telecharger-retour/1.0/A/1",
                ForeignReason::Port,
            ),
            (
                "https://u:p@telechargement.example:8443/telecharger-retour/1.0/A/1",
                ForeignReason::Extra,
            ),
            (
                "https://telechargement.example:8443/telecharger-retour/1.0/A/1?x=1",
                ForeignReason::Extra,
            ),
            (
                "https://telechargement.example:8443/telecharger-retour/1.0/A/1#f",
                ForeignReason::Extra,
            ),
            (
                "https://telechargement.example:8443/lister-depots/1.0/A/1",
                ForeignReason::Path,
            ),
            (
                "https://telechargement.example:8443/telecharger-retour/1.0/../../admin",
                ForeignReason::Path,
            ),
            (
                "https://telechargement.example:8443/telecharger-retour/1.0/%2e%2e/%2E%2e/x",
                ForeignReason::Path,
            ),
            (
                "https://telechargement.example:8443/telecharger-retour/1.0/",
                ForeignReason::Path,
            ),
            (
                "https://telechargement.example:8443/telecharger-retour/1.0/A//1",
                ForeignReason::Path,
            ),
        ] {
            assert_eq!(check_url(&service, url).unwrap_err(), reason, "{url}");
        }
        // The default port written or not is the same port.
        let default = Url::parse("https://h.example").unwrap();
        assert!(check_url(&default, "https://h.example:443/telecharger-retour/1.0/A/1").is_ok());
        assert_eq!(
            ids_of(&Url::parse(ok).unwrap()),
            ("AbC123".into(), "0123456789".into())
        );
    }

    async fn collect(mut rx: mpsc::Receiver<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(c) = rx.recv().await {
            out.push(c);
        }
        out
    }

    #[tokio::test]
    async fn the_capped_decoder_stops_a_gzip_bomb_early() {
        // 64 MiB of zeros gzip to about 64 KiB; the cap is 1 MiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..64 {
            gz.write_all(&vec![0u8; 1 << 20]).unwrap();
        }
        let bomb = gz.finish().unwrap();
        let mut d = flate2::write::MultiGzDecoder::new(Capped {
            out: Vec::new(),
            total: 0,
            max: 1 << 20,
            over: false,
        });
        let (tx, rx) = mpsc::channel(1024);
        let reader = tokio::spawn(collect(rx));
        let mut emitter = Emitter {
            sink: &tx,
            pending: Vec::new(),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let mut largest_out = 0;
        let mut stopped = false;
        for slice in bomb.chunks(GZ_SLICE) {
            if d.write_all(slice).is_err() {
                assert!(d.get_ref().over);
                stopped = true;
                break;
            }
            let out = std::mem::take(&mut d.get_mut().out);
            largest_out = largest_out.max(out.len());
            assert!(emitter.push(&out).await);
        }
        assert!(stopped, "the cap stops it");
        assert!(emitter.bytes <= 1 << 20);
        assert!(largest_out <= 1 << 20, "{largest_out}");
        drop(emitter);
        drop(tx);
        let chunks = reader.await.unwrap();
        assert!(chunks.iter().all(|c| c.len() == CHUNK));
    }

    #[tokio::test]
    async fn chunks_are_at_most_64_kib_and_the_digest_is_of_all_bytes() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (tx, rx) = mpsc::channel(64);
        let reader = tokio::spawn(collect(rx));
        let mut emitter = Emitter {
            sink: &tx,
            pending: Vec::new(),
            hasher: Sha256::new(),
            bytes: 0,
        };
        for piece in data.chunks(7_000) {
            assert!(emitter.push(piece).await);
        }
        let (bytes, sha) = emitter.finish().await.unwrap();
        drop(tx);
        let chunks = reader.await.unwrap();
        assert_eq!(bytes, 200_000);
        assert_eq!(sha, format!("{:x}", Sha256::digest(&data)));
        assert!(chunks.iter().all(|c| c.len() <= CHUNK && !c.is_empty()));
        assert_eq!(chunks.concat(), data);
    }
}
