//! One deposit: `POST {address}/deposer-dsn/1.0/` with the gzipped file, and what became
//! of it.
//!
//! The request: `Content-Type: text/plain`, `Content-Encoding: gzip`,
//! `Accept-Encoding: gzip`, `Content-Length` (the compressed size), the `Client-DSN` user
//! agent, `Authorization: DSNLogin jeton=…` (marked sensitive). Its timeout is the call's
//! request timeout plus the time to send the compressed file at [`MIN_UPLOAD_RATE`] and
//! for the service to read the file at [`MIN_PROCESS_RATE`]: a deposit that times out
//! becomes uncertain, costlier than waiting.
//!
//! The outcome says above all whether the deposit may be registered:
//! - `Accepted` (200 and its AEE) and `Rejected` (422 and its ARE): registered, the report
//!   says how (an ARE's first [`MAX_ANOMALIES`] anomalies, and the count of the others);
//! - `NotSent`: nothing registered for sure — no connection, TLS refused, the file cut
//!   or timed out before its last byte was handed over (the service cannot hold the
//!   whole file, so cannot have registered it), or an answer saying the service is
//!   unavailable (503, 404, a proxy's 407); safe to send again later;
//! - `Refused`: the service refused the request itself (another 4xx): nothing registered;
//! - `Authentication`: no token (or a 401 "non-inscrit"): nothing sent, or nothing
//!   registered;
//! - `Uncertain`: the last byte left and no answer says what became of it (timeout, cut,
//!   a 5xx other than 503, a 200 whose AEE cannot be read). Never retried here: the
//!   orchestrator lists the deposits of the attempt's window.
//!
//! The one retry is after a 401 of the deposit service (see [`crate::session`]): a 401
//! means the deposit was not registered.

use std::time::{Duration, Instant};

use iea_net::probe::{classify, from_status};
use iea_net::{Diagnosis, HttpClient, NetError, NetworkSettings, Step};
use iea_net_entreprises::{Authentication, Token, read_limited};
use reqwest::Url;
use reqwest::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE,
};
use tracing::Instrument;

use crate::report::{self, Accepted, Anomaly, Rejected, Report};
use crate::session::{Access, Called, Sessions};
use crate::spool::Spool;

/// Path of the deposit service, added to an address that does not end with it.
pub const DEPOSIT_PATH: &str = "/deposer-dsn/1.0/";
/// Slowest upload allowed for: the request's timeout grows by the compressed size at
/// this rate (bytes a second).
pub const MIN_UPLOAD_RATE: u64 = 256 * 1024;
/// Slowest reading of the file by the service allowed for: the timeout grows by the
/// file's size at this rate (bytes a second).
pub const MIN_PROCESS_RATE: u64 = 1024 * 1024;

/// The timeout of a deposit of `spool` with a request timeout of `base`.
pub fn deposit_timeout(base: Duration, spool: &Spool) -> Duration {
    base + Duration::from_millis(
        spool.compressed * 1000 / MIN_UPLOAD_RATE + spool.bytes * 1000 / MIN_PROCESS_RATE,
    )
}
/// Largest answer read (an AEE or ARE is a few kilobytes).
const MAX_ANSWER: usize = 1024 * 1024;
/// Most anomalies of an ARE passed on, the first ones in the ARE's order. An ARE of a
/// large bad file can list tens of thousands within [`MAX_ANSWER`]; passed on whole they
/// would swell the answer to the orchestrator, the deposit's record, its French message
/// and the gRPC answers to front-ends (which fail over 4 MiB), and a person reads the
/// first ones anyway: the others are only counted ([`Rejection::omitted`]).
pub const MAX_ANOMALIES: usize = 100;

/// An ARE as the agent passes it on: its first [`MAX_ANOMALIES`] anomalies in order, and
/// how many more it listed.
#[derive(Debug)]
pub struct Rejection {
    /// When the ARE names one.
    pub idflux: Option<String>,
    pub anomalies: Vec<Anomaly>,
    /// Anomalies of the ARE after the first [`MAX_ANOMALIES`], left out.
    pub omitted: usize,
}

impl Rejection {
    /// `are` with its first [`MAX_ANOMALIES`] anomalies kept, the others counted.
    pub fn keeping_the_first(are: Rejected) -> Self {
        let mut anomalies = are.anomalies;
        let omitted = anomalies.len().saturating_sub(MAX_ANOMALIES);
        anomalies.truncate(MAX_ANOMALIES);
        anomalies.shrink_to_fit();
        Self {
            idflux: are.idflux,
            anomalies,
            omitted,
        }
    }

    /// How many anomalies the ARE listed.
    pub fn total(&self) -> usize {
        self.anomalies.len() + self.omitted
    }
}

/// What became of a deposit.
#[derive(Debug)]
pub enum Outcome {
    Accepted(Accepted),
    Rejected(Rejection),
    Authentication(Authentication),
    NotSent(Diagnosis),
    Refused,
    Uncertain(Option<Diagnosis>),
}

impl Outcome {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Accepted(_) => "accepted",
            Self::Rejected(_) => "rejected",
            Self::Authentication(_) => "authentication",
            Self::NotSent(_) => "not_sent",
            Self::Refused => "refused",
            Self::Uncertain(_) => "uncertain",
        }
    }
}

/// A deposit's outcome with what a person and support need.
#[derive(Debug)]
pub struct DepositReport {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// French sentence.
    pub message: String,
    /// English detail (never a secret nor DSN content).
    pub detail: String,
    pub bytes: u64,
    pub compressed_bytes: u64,
    pub reauthenticated: bool,
}

/// The URL of a business service: `address` if its path already ends with
/// `service_path`, else `address` + `service_path`.
pub fn service_url(address: &Url, service_path: &str) -> Url {
    let mut u = address.clone();
    let path = u.path().trim_end_matches('/').to_owned();
    let wanted = service_path.trim_end_matches('/');
    if path.ends_with(wanted) {
        u.set_path(&format!("{path}/"));
    } else {
        u.set_path(&format!("{path}{service_path}"));
    }
    u.set_query(None);
    u
}

/// What one POST gave.
#[derive(Debug)]
enum Attempt {
    Answer {
        status: u16,
        headers: HeaderMap,
        /// The body, or why it could not be read (`None`: larger than allowed).
        body: Result<Option<Vec<u8>>, reqwest::Error>,
        handed: bool,
    },
    Failed {
        error: reqwest::Error,
        handed: bool,
    },
}

impl Attempt {
    fn www_401(&self) -> Option<Option<String>> {
        match self {
            Attempt::Answer {
                status: 401,
                headers,
                ..
            } => Some(
                headers
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            _ => None,
        }
    }
}

/// Deposits `spool` with the identity of `access`.
pub async fn deposit(
    sessions: &Sessions,
    access: &Access,
    spool: &Spool,
    deposit_id: &str,
) -> DepositReport {
    let settings = access.business.settings();
    let url = service_url(&settings.address, DEPOSIT_PATH);
    let report =
        |outcome, http_status, message: String, detail: String, reauthenticated| DepositReport {
            outcome,
            http_status,
            message,
            detail,
            bytes: spool.bytes,
            compressed_bytes: spool.compressed,
            reauthenticated,
        };
    let client = match sessions.authenticator().client(&access.business) {
        Ok(c) => c,
        Err(e) => {
            let d = match e {
                NetError::Transport(d) => d,
                NetError::Settings(detail) => Diagnosis {
                    address: settings.address.to_string(),
                    step: Step::Address,
                    tls_problem: None,
                    http_status: None,
                    latency: Duration::ZERO,
                    message: format!(
                        "Les paramètres de connexion ne permettent pas de joindre Net-entreprises ({detail})."
                    ),
                    detail: format!("client: {detail}"),
                },
            };
            let (message, detail) = not_sent_message(&d);
            return report(Outcome::NotSent(d), None, message, detail, false);
        }
    };
    let timeout = deposit_timeout(settings.request_timeout(), spool);
    let mut attempt_no = 0u32;
    let called = sessions
        .call(
            access,
            |token| {
                attempt_no += 1;
                let span = tracing::info_span!(
                    "net_entreprises_deposit",
                    deposit_id,
                    url = %url,
                    siret = %access.identity.siret,
                    compressed_bytes = spool.compressed,
                    attempt = attempt_no,
                );
                send_once(&client, &url, token, spool, timeout).instrument(span)
            },
            Attempt::www_401,
        )
        .await;
    let (attempt, reauthenticated) = match called {
        Called::Done(a, r) => (a, r),
        Called::Authentication(a, r) => {
            let message = format!("La DSN n'a pas été déposée : {}", a.message);
            let detail = format!("authentication: {}", a.outcome.code());
            let status = a.http_status;
            return report(Outcome::Authentication(*a), status, message, detail, r);
        }
    };
    let (outcome, http_status, message, detail) = interpret(attempt, settings, timeout);
    if matches!(outcome, Outcome::Uncertain(_) | Outcome::NotSent(_)) {
        // A server in trouble: the next call starts on new connections.
        sessions.authenticator().forget(&access.business);
    }
    report(outcome, http_status, message, detail, reauthenticated)
}

async fn send_once(
    client: &HttpClient,
    url: &Url,
    token: Token,
    spool: &Spool,
    timeout: Duration,
) -> Attempt {
    let (body, handed) = spool.body();
    let request = client
        .reqwest()
        .post(url.clone())
        .timeout(timeout)
        .header(CONTENT_TYPE, "text/plain")
        .header(CONTENT_ENCODING, "gzip")
        .header(ACCEPT_ENCODING, "gzip")
        .header(CONTENT_LENGTH, spool.compressed)
        .body(body);
    let started = Instant::now();
    let attempt = match token.authorize(request).send().await {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = read_limited(&mut response, MAX_ANSWER).await;
            Attempt::Answer {
                status,
                headers,
                body,
                handed: handed.all(),
            }
        }
        Err(error) => Attempt::Failed {
            error,
            handed: handed.all(),
        },
    };
    match &attempt {
        Attempt::Answer { status, handed, .. } => tracing::info!(
            http_status = status,
            all_handed = handed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "deposit answered"
        ),
        Attempt::Failed { error, handed } => tracing::info!(
            all_handed = handed,
            error = %error_chain(error),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "deposit without an answer"
        ),
    }
    attempt
}

/// An error and its causes, for logs (a URL at most, never a header).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn not_sent_message(d: &Diagnosis) -> (String, String) {
    (
        format!(
            "La DSN n'a pas été déposée : Net-entreprises est injoignable ou indisponible. {}",
            d.message
        ),
        d.detail.clone(),
    )
}

fn uncertain_message(what: &str) -> String {
    format!(
        "La réponse de Net-entreprises au dépôt n'est pas parvenue ({what}) : la DSN a peut-être été \
         enregistrée. Elle ne sera pas renvoyée sans vérification : la liste des dépôts de \
         Net-entreprises le dira."
    )
}

/// The outcome of the last attempt.
fn interpret(
    attempt: Attempt,
    settings: &NetworkSettings,
    timeout: Duration,
) -> (Outcome, Option<u16>, String, String) {
    let (status, headers, body, handed) = match attempt {
        Attempt::Failed { error, handed } => {
            let mut d = classify(&error, settings);
            if d.step == Step::Timeout {
                let host = settings.address.host_str().unwrap_or("?");
                d.message = format!(
                    "Le serveur « {host} » n'a pas répondu au dépôt dans le délai de {} secondes.",
                    timeout.as_secs().max(1)
                );
            }
            if handed {
                let message = uncertain_message(&d.message);
                let detail = format!("after the last byte: {}", d.detail);
                return (Outcome::Uncertain(Some(d)), None, message, detail);
            }
            let (message, detail) = not_sent_message(&d);
            return (Outcome::NotSent(d), None, message, detail);
        }
        Attempt::Answer {
            status,
            headers,
            body,
            handed,
        } => (status, headers, body, handed),
    };
    let text = match body {
        Ok(Some(b)) => report::body_bytes(&headers, b, MAX_ANSWER),
        Ok(None) => Err(format!("answer larger than {MAX_ANSWER} bytes")),
        Err(e) => Err(format!("answer cut: {}", error_chain(&e))),
    };
    let s = Some(status);
    match status {
        200 => match text.and_then(|t| report::read_report(&t)) {
            Ok(Report::Accepted(a)) => {
                let test = if a.essai_reel == "01" {
                    " C'était un dépôt de test."
                } else {
                    ""
                };
                let message = format!(
                    "La DSN a été déposée sur Net-entreprises : accusé d'enregistrement électronique (AEE) \
                     n° {}, enregistré le {} à {}.{test}",
                    a.idflux, a.date_enregistrement, a.heure_enregistrement
                );
                let detail = format!("AEE {}", a.idflux);
                (Outcome::Accepted(a), s, message, detail)
            }
            Ok(Report::Rejected(_)) => (
                Outcome::Uncertain(None),
                s,
                uncertain_message("un avis de rejet accompagnait un code de succès"),
                "200 with an ARE".into(),
            ),
            Err(e) => (
                Outcome::Uncertain(None),
                s,
                uncertain_message("l'accusé d'enregistrement est illisible"),
                format!("200 without a readable AEE: {e}"),
            ),
        },
        422 => match text.and_then(|t| report::read_report(&t)) {
            Ok(Report::Rejected(are)) => {
                let r = Rejection::keeping_the_first(are);
                let message = rejected_message(&r);
                let mut detail = format!("ARE, {} anomalies", r.total());
                if r.omitted > 0 {
                    detail.push_str(&format!(", the first {} passed on", r.anomalies.len()));
                }
                (Outcome::Rejected(r), s, message, detail)
            }
            _ => (
                Outcome::Refused,
                s,
                "Net-entreprises a refusé le fichier à ses contrôles de forme (code HTTP 422, sans avis de \
                 rejet) : rien n'a été enregistré. Vérifiez le fichier ; si le problème persiste, préparez \
                 une demande de support."
                    .into(),
                "422 without an ARE".into(),
            ),
        },
        401 => (
            Outcome::Refused,
            s,
            "Net-entreprises refuse le jeton de connexion, même renouvelé : la DSN n'a pas été \
             enregistrée. Réessayez plus tard ; si le problème persiste, préparez une demande de support."
                .into(),
            "401 after a new authentication".into(),
        ),
        503 | 407 => {
            let d = from_status(settings, status);
            let (message, detail) = not_sent_message(&d);
            (Outcome::NotSent(d), s, message, detail)
        }
        404 => {
            let host = settings.address.host_str().unwrap_or("?");
            let d = Diagnosis {
                address: settings.address.to_string(),
                step: Step::Http,
                tls_problem: None,
                http_status: Some(404),
                latency: Duration::ZERO,
                message: format!(
                    "Le serveur « {host} » répond, mais le service de dépôt n'y est pas disponible \
                     (code HTTP 404). Vérifiez l'adresse, ou réessayez plus tard."
                ),
                detail: "HTTP status 404".into(),
            };
            let (message, detail) = not_sent_message(&d);
            (Outcome::NotSent(d), s, message, detail)
        }
        500..=599 if handed => (
            Outcome::Uncertain(None),
            s,
            uncertain_message(&format!("le serveur a signalé une erreur, code HTTP {status}")),
            format!("HTTP status {status} after the last byte"),
        ),
        500..=599 => {
            let d = from_status(settings, status);
            let (message, detail) = not_sent_message(&d);
            (Outcome::NotSent(d), s, message, format!("{detail}, before the last byte"))
        }
        413 => (
            Outcome::Refused,
            s,
            "Net-entreprises refuse ce fichier : il dépasse la taille acceptée (code HTTP 413). Rien n'a \
             été enregistré."
                .into(),
            "HTTP status 413".into(),
        ),
        _ => (
            Outcome::Refused,
            s,
            format!(
                "Net-entreprises a refusé la demande de dépôt (code HTTP {status}) : rien n'a été enregistré. \
                 Si le problème persiste, préparez une demande de support."
            ),
            format!("HTTP status {status}"),
        ),
    }
}

fn rejected_message(r: &Rejection) -> String {
    let Some(a) = r.anomalies.first() else {
        return "Net-entreprises a rejeté la DSN (avis de rejet, ARE), sans en donner le motif."
            .into();
    };
    match r.total() - 1 {
        0 => format!(
            "Net-entreprises a rejeté la DSN (avis de rejet, ARE) : {} — {}",
            a.code, a.message
        ),
        others => format!(
            "Net-entreprises a rejeté la DSN (avis de rejet, ARE) : {} — {} (et {} autres anomalies).",
            a.code,
            a.message,
            iea_dsn::group_thousands(others)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deposit_path_is_added_once() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            service_url(&u("https://depot.dsnrg.net-entreprises.fr"), DEPOSIT_PATH).as_str(),
            "https://depot.dsnrg.net-entreprises.fr/deposer-dsn/1.0/"
        );
        assert_eq!(
            service_url(&u("https://h:8443/deposer-dsn/1.0"), DEPOSIT_PATH).as_str(),
            "https://h:8443/deposer-dsn/1.0/"
        );
        assert_eq!(
            service_url(&u("https://h/prefix/"), DEPOSIT_PATH).as_str(),
            "https://h/prefix/deposer-dsn/1.0/"
        );
    }

    #[test]
    fn a_rejection_names_its_first_anomaly() {
        let r = Rejection::keeping_the_first(Rejected {
            idflux: None,
            anomalies: vec![
                report::Anomaly {
                    code: "B1-105-15".into(),
                    message: "Format non reconnu.".into(),
                },
                report::Anomaly {
                    code: "X".into(),
                    message: "y".into(),
                },
            ],
        });
        assert_eq!((r.anomalies.len(), r.omitted), (2, 0));
        let m = rejected_message(&r);
        assert!(
            m.contains("B1-105-15 — Format non reconnu.") && m.contains("et 1 autres"),
            "{m}"
        );
    }

    /// A 422 answer whose ARE lists `n` anomalies, `A0` to `A{n-1}`.
    fn are_with(n: usize) -> Attempt {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\
             <gipmds:rapport type=\"ARE\" profil=\"DSN\" version=\"v01r04\" xmlns:gipmds=\"http://www.gip-mds.fr/\">\
             <envoi><envoi_identification><idflux>UR5WJEBAhi54RcZN8Lur71F</idflux></envoi_identification>\
             <envoi_bilan><envoi_etat>KO</envoi_etat></envoi_bilan><envoi_anomalie>",
        );
        for i in 0..n {
            xml.push_str(&format!(
                "<description><code>A{i}</code><message>Anomalie n° {i} de la ligne {i}.</message></description>"
            ));
        }
        xml.push_str("</envoi_anomalie></envoi></gipmds:rapport>");
        Attempt::Answer {
            status: 422,
            headers: HeaderMap::new(),
            body: Ok(Some(xml.into_bytes())),
            handed: true,
        }
    }

    fn settings() -> NetworkSettings {
        NetworkSettings::direct(iea_net::ConnectionMode::Normal, "https://depot.invalid").unwrap()
    }

    #[test]
    fn an_are_with_thousands_of_anomalies_passes_on_the_first_hundred_and_counts_the_others() {
        let (outcome, status, message, detail) =
            interpret(are_with(5_000), &settings(), Duration::from_secs(30));
        assert_eq!(status, Some(422));
        let Outcome::Rejected(r) = outcome else {
            panic!("rejected: {outcome:?}")
        };
        assert_eq!(r.anomalies.len(), MAX_ANOMALIES);
        assert_eq!(r.anomalies.len(), 100);
        assert_eq!(r.omitted, 4_900);
        assert_eq!(r.total(), 5_000);
        for (i, a) in r.anomalies.iter().enumerate() {
            assert_eq!(a.code, format!("A{i}"), "kept in the ARE's order");
            assert_eq!(a.message, format!("Anomalie n° {i} de la ligne {i}."));
        }
        assert_eq!(r.idflux.as_deref(), Some("UR5WJEBAhi54RcZN8Lur71F"));
        assert_eq!(
            message,
            "Net-entreprises a rejeté la DSN (avis de rejet, ARE) : A0 — Anomalie n° 0 de la \
             ligne 0. (et 4\u{202f}999 autres anomalies)."
        );
        assert_eq!(detail, "ARE, 5000 anomalies, the first 100 passed on");

        // What the orchestrator receives: the same hundred, and the count.
        let p = crate::deposit_to_proto(DepositReport {
            outcome: Outcome::Rejected(r),
            http_status: status,
            message,
            detail,
            bytes: 1,
            compressed_bytes: 1,
            reauthenticated: false,
        });
        let Some(iea_proto::agent::v1::deposit_response::Outcome::Rejected(p)) = p.outcome else {
            panic!("rejected")
        };
        assert_eq!(p.anomalies.len(), 100);
        assert_eq!(p.anomalies[99].code, "A99");
        assert_eq!(p.anomalies_omitted, 4_900);
    }

    #[test]
    fn an_are_within_the_bound_is_passed_on_whole() {
        for n in [1, 5, MAX_ANOMALIES] {
            let (outcome, _, _, detail) =
                interpret(are_with(n), &settings(), Duration::from_secs(30));
            let Outcome::Rejected(r) = outcome else {
                panic!("rejected: {outcome:?}")
            };
            assert_eq!((r.anomalies.len(), r.omitted), (n, 0));
            assert_eq!(r.anomalies.last().unwrap().code, format!("A{}", n - 1));
            assert_eq!(detail, format!("ARE, {n} anomalies"));
        }
        let (outcome, ..) = interpret(
            are_with(MAX_ANOMALIES + 1),
            &settings(),
            Duration::from_secs(30),
        );
        let Outcome::Rejected(r) = outcome else {
            panic!("rejected: {outcome:?}")
        };
        assert_eq!((r.anomalies.len(), r.omitted), (MAX_ANOMALIES, 1));
    }
}
