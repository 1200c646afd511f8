//! The deposits of a declarant over a window: `GET {address}/lister-depots/1.0/{debut}[/{fin}]`
//! with the token (`Accept-Encoding: gzip`), dates `AAAAMMJJHHMMSS`. The answer gives
//! each deposit (idflux, date, status) and, in `Accept-Ranges: minutes=0-N`, the widest
//! window the service allows, read rather than assumed. A listing changes nothing, but
//! it is not retried either (the service rate-limits it); a 401 gets one new
//! authentication and one more request, as every business service.

use std::time::{Duration, Instant};

use iea_net::probe::{classify, from_status};
use iea_net::{Diagnosis, NetError, NetworkSettings, Step};
use iea_net_entreprises::{Authentication, read_limited};
use reqwest::header::{ACCEPT_ENCODING, ACCEPT_RANGES, HeaderMap, WWW_AUTHENTICATE};
use tracing::Instrument;

use crate::deposit::{error_chain, service_url};
use crate::report::{self, Listed};
use crate::session::{Access, Called, Sessions};

/// Path of the listing service.
pub const LIST_PATH: &str = "/lister-depots/1.0/";
/// Largest listing read (gzipped or not, and once gunzipped), deposits or returns.
pub(crate) const MAX_LISTING: usize = 4 * 1024 * 1024;

/// A window of the listing, as the service takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub debut: String,
    pub fin: Option<String>,
}

impl Window {
    /// Checks both dates (`AAAAMMJJHHMMSS`, `fin` optional); the error is French.
    pub fn new(debut: &str, fin: &str) -> Result<Self, String> {
        check_date("début", debut)?;
        if !fin.is_empty() {
            check_date("fin", fin)?;
            if fin < debut {
                return Err(format!(
                    "La fin de la période ({fin}) précède son début ({debut})."
                ));
            }
        }
        Ok(Self {
            debut: debut.to_owned(),
            fin: (!fin.is_empty()).then(|| fin.to_owned()),
        })
    }
}

fn check_date(which: &str, s: &str) -> Result<(), String> {
    let bad =
        || format!("La date de {which} de la période « {s} » n'est pas au format AAAAMMJJHHMMSS.");
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    let ok = (1..=12).contains(&n(4..6))
        && (1..=31).contains(&n(6..8))
        && n(8..10) < 24
        && n(10..12) < 60
        && n(12..14) < 60;
    if ok { Ok(()) } else { Err(bad()) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429.
    WindowTooWide,
    /// 422.
    BadDates,
    /// No answer, 5xx, 404.
    Unavailable,
    Unexpected,
}

#[derive(Debug)]
pub enum Outcome {
    Listing {
        deposits: Vec<Listed>,
        window_max_minutes: Option<u32>,
    },
    Authentication(Authentication),
    Failed(Failure, Option<Diagnosis>),
}

#[derive(Debug)]
pub struct ListingReport {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// French sentence.
    pub message: String,
    pub reauthenticated: bool,
}

/// What one listing request gave (deposits or returns).
#[derive(Debug)]
pub(crate) enum Attempt {
    Answer {
        status: u16,
        headers: HeaderMap,
        body: Result<Option<Vec<u8>>, reqwest::Error>,
    },
    Failed(reqwest::Error),
}

/// Sends one listing request (`listing` names which, for the log) and reads its answer,
/// at most [`MAX_LISTING`] bytes.
pub(crate) async fn fetch(request: reqwest::RequestBuilder, listing: &'static str) -> Attempt {
    let started = Instant::now();
    let attempt = match request.send().await {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = read_limited(&mut r, MAX_LISTING).await;
            Attempt::Answer {
                status,
                headers,
                body,
            }
        }
        Err(e) => Attempt::Failed(e),
    };
    match &attempt {
        Attempt::Answer { status, .. } => tracing::info!(
            listing,
            http_status = status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "listing answered"
        ),
        Attempt::Failed(e) => {
            tracing::info!(listing, error = %error_chain(e), "listing without an answer")
        }
    }
    attempt
}

pub async fn list(sessions: &Sessions, access: &Access, window: &Window) -> ListingReport {
    let settings = access.business.settings();
    let mut url = service_url(&settings.address, LIST_PATH);
    let path = match &window.fin {
        Some(fin) => format!("{}{}/{fin}", url.path(), window.debut),
        None => format!("{}{}", url.path(), window.debut),
    };
    url.set_path(&path);
    let client = match sessions.authenticator().client(&access.business) {
        Ok(c) => c,
        Err(NetError::Transport(d)) => return unavailable(d, None, false),
        Err(NetError::Settings(detail)) => {
            let d = Diagnosis {
                address: settings.address.to_string(),
                step: Step::Address,
                tls_problem: None,
                http_status: None,
                latency: Duration::ZERO,
                message: format!(
                    "Les paramètres de connexion ne permettent pas de joindre Net-entreprises ({detail})."
                ),
                detail: format!("client: {detail}"),
            };
            return unavailable(d, None, false);
        }
    };
    let called = sessions
        .call(
            access,
            |token| {
                let span = tracing::info_span!(
                    "net_entreprises_list_deposits",
                    url = %url,
                    siret = %access.identity.siret,
                );
                let request = token.authorize(
                    client
                        .reqwest()
                        .get(url.clone())
                        .header(ACCEPT_ENCODING, "gzip"),
                );
                fetch(request, "deposits").instrument(span)
            },
            |a: &Attempt| match a {
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
            },
        )
        .await;
    let (attempt, reauthenticated) = match called {
        Called::Done(a, r) => (a, r),
        Called::Authentication(a, r) => {
            return ListingReport {
                http_status: a.http_status,
                message: format!(
                    "La liste des dépôts n'a pas pu être obtenue : {}",
                    a.message
                ),
                outcome: Outcome::Authentication(*a),
                reauthenticated: r,
            };
        }
    };
    let report = interpret(attempt, settings, reauthenticated);
    if matches!(report.outcome, Outcome::Failed(Failure::Unavailable, _)) {
        sessions.authenticator().forget(&access.business);
    }
    report
}

fn unavailable(d: Diagnosis, status: Option<u16>, reauthenticated: bool) -> ListingReport {
    ListingReport {
        message: format!(
            "La liste des dépôts n'a pas pu être obtenue : Net-entreprises est injoignable ou \
             indisponible. {}",
            d.message
        ),
        outcome: Outcome::Failed(Failure::Unavailable, Some(d)),
        http_status: status,
        reauthenticated,
    }
}

fn interpret(attempt: Attempt, settings: &NetworkSettings, reauthenticated: bool) -> ListingReport {
    let (status, headers, body) = match attempt {
        Attempt::Failed(e) => return unavailable(classify(&e, settings), None, reauthenticated),
        Attempt::Answer {
            status,
            headers,
            body,
        } => (status, headers, body),
    };
    let failed = |failure, message: String| ListingReport {
        outcome: Outcome::Failed(failure, None),
        http_status: Some(status),
        message,
        reauthenticated,
    };
    match status {
        200 => {
            let window_max_minutes = headers
                .get(ACCEPT_RANGES)
                .and_then(|v| v.to_str().ok())
                .and_then(report::window_minutes);
            let text = match body {
                Ok(Some(b)) => report::body_text(&headers, b, MAX_LISTING),
                Ok(None) => Err("listing too large".into()),
                Err(e) => Err(format!("listing cut: {}", error_chain(&e))),
            };
            match text.and_then(|t| report::read_listing(&t)) {
                Ok(deposits) => ListingReport {
                    message: format!(
                        "Net-entreprises liste {} sur la période.",
                        iea_fr_time::count(deposits.len() as u64, "dépôt", "dépôts")
                    ),
                    outcome: Outcome::Listing {
                        deposits,
                        window_max_minutes,
                    },
                    http_status: Some(200),
                    reauthenticated,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "listing unreadable");
                    failed(
                        Failure::Unexpected,
                        "La liste des dépôts renvoyée par Net-entreprises est illisible. Réessayez plus tard ; \
                         si le problème persiste, préparez une demande de support."
                            .into(),
                    )
                }
            }
        }
        429 => failed(
            Failure::WindowTooWide,
            "Net-entreprises refuse une période aussi longue pour la liste des dépôts : demandez une \
             période plus courte."
                .into(),
        ),
        422 => failed(
            Failure::BadDates,
            "Net-entreprises n'a pas pu lire les dates de la période demandée.".into(),
        ),
        404 | 500..=599 => {
            let mut d = from_status(settings, status);
            d.http_status = Some(status);
            if status == 404 {
                d.step = Step::Http;
                d.message = "Le service de consultation ne répond pas à cette adresse (code HTTP 404).".into();
                d.detail = "HTTP status 404".into();
            }
            unavailable(d, Some(status), reauthenticated)
        }
        _ => failed(
            Failure::Unexpected,
            format!(
                "Net-entreprises a répondu de façon inattendue à la demande de liste des dépôts \
                 (code HTTP {status})."
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_before_anything_is_sent() {
        assert_eq!(
            Window::new("20260101120000", "").unwrap(),
            Window {
                debut: "20260101120000".into(),
                fin: None
            }
        );
        assert!(Window::new("20260101120000", "20260101130000").is_ok());
        for (d, f) in [
            ("2026010112000", ""),
            ("20261301120000", ""),
            ("20260101126000", ""),
            ("2026-01-01T12:00", ""),
            ("20260101120000", "20251231235959"),
            ("20260101120000", "x"),
        ] {
            let e = Window::new(d, f).unwrap_err();
            assert!(e.contains("AAAAMMJJHHMMSS") || e.contains("précède"), "{e}");
        }
    }
}
