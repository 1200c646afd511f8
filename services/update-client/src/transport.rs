//! tough's `Transport` over the shared HTTP client (`iea-net`), so that metadata is
//! fetched with the network settings of the call (proxy, mode, extra CA) and never with a
//! client of tough's own.
//!
//! Every fetch has a span, the client's request timeout, and a hard ceiling on the bytes
//! it returns ([`MAX_FETCH`]); tough adds its per-role limits below that. When a fetch
//! does not get an answer, the diagnosis (which step failed, in French) is kept so the
//! caller can tell "unreachable" apart from "refused".

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use iea_net::{Diagnosis, HttpClient, NetError};
use reqwest::{StatusCode, Url};
use tough::{Bytes, Transport, TransportError, TransportErrorKind, TransportStream};
use tracing::Instrument;

/// No metadata file is read past this, whatever tough's limits say.
pub const MAX_FETCH: u64 = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct NetTransport {
    client: HttpClient,
    /// The last failure to get an answer.
    last_failure: Arc<Mutex<Option<Diagnosis>>>,
}

impl std::fmt::Debug for NetTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetTransport")
            .field("address", &self.client.settings().address.as_str())
            .finish_non_exhaustive()
    }
}

impl NetTransport {
    pub fn new(client: HttpClient) -> Self {
        Self {
            client,
            last_failure: Arc::default(),
        }
    }

    /// The diagnosis of the last fetch that got no answer, if any.
    pub fn last_failure(&self) -> Option<Diagnosis> {
        self.last_failure.lock().ok().and_then(|g| g.clone())
    }

    fn note_failure(&self, d: Diagnosis) {
        if let Ok(mut g) = self.last_failure.lock() {
            *g = Some(d);
        }
    }
}

#[tough::async_trait]
impl Transport for NetTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        let span = tracing::debug_span!("fetch_metadata", url = %url.path());
        async {
            let u = url.clone();
            let response = match self.client.send(|c| c.get(u.clone())).await {
                Ok(r) => r,
                Err(NetError::Transport(d)) => {
                    tracing::debug!(step = ?d.step, "no answer");
                    let detail = d.detail.clone();
                    self.note_failure(d);
                    return Err(TransportError::new_with_cause(
                        TransportErrorKind::Other,
                        url,
                        detail,
                    ));
                }
                Err(NetError::Settings(detail)) => {
                    return Err(TransportError::new_with_cause(
                        TransportErrorKind::Other,
                        url,
                        detail,
                    ));
                }
            };
            let status = response.status();
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Err(TransportError::new(TransportErrorKind::FileNotFound, url));
            }
            if !status.is_success() {
                if status.is_server_error() {
                    self.note_failure(iea_net::probe::from_status(
                        self.client.settings(),
                        status.as_u16(),
                    ));
                }
                return Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    url,
                    format!("HTTP status {status}"),
                ));
            }
            tracing::debug!(%status, "answer");
            let err_url = url.to_string();
            let mut seen: u64 = 0;
            let stream = response.bytes_stream().map(move |item| match item {
                Ok(bytes) => {
                    seen += bytes.len() as u64;
                    if seen > MAX_FETCH {
                        Err(TransportError::new_with_cause(
                            TransportErrorKind::Other,
                            &err_url,
                            format!("more than {MAX_FETCH} bytes"),
                        ))
                    } else {
                        Ok::<Bytes, TransportError>(bytes)
                    }
                }
                Err(e) => Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    &err_url,
                    e,
                )),
            });
            Ok(Box::pin(stream) as TransportStream)
        }
        .instrument(span)
        .await
    }
}
