//! The status indicator as the console shows it ([`StatusView`]: state, icon, French
//! label, reason, since when in French words and in RFC 3339) and the one watch of the
//! orchestrator's status that every live page and event stream shares: [`follow`] keeps a
//! `WatchStatus` stream open (reconnecting with a growing pause when it breaks) and puts
//! each report in a `tokio::sync::watch`, so a thousand browsers cost one gRPC stream.
//!
//! A subscriber costs as little as it can: each change is rendered once into the whole
//! server-sent event (`Bytes` that every stream writes), one timer beats the keep-alive of
//! all streams through the same watch, and the console's stop closes the watch, so each
//! stream waits on one future only ([`StatusWatch::events`]).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::{Indicator, StatusReport, WatchStatusRequest};
use serde::Serialize;
use tokio::sync::watch;
use tracing::Instrument;
use utoipa::ToSchema;

use crate::AppState;
use crate::orchestrator::{french, rfc3339};

/// The indicator's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorState {
    /// No authentication has completed yet.
    Unknown,
    /// Blue ball.
    Connected,
    /// Blue ball with a red heart.
    Disconnected,
    /// The licence was withdrawn: reading only.
    Consultation,
    /// Red beetle.
    Assistance,
}

impl IndicatorState {
    pub fn from_proto(i: i32) -> Self {
        match Indicator::try_from(i).unwrap_or(Indicator::Unspecified) {
            Indicator::Unspecified => Self::Unknown,
            Indicator::Connected => Self::Connected,
            Indicator::Disconnected => Self::Disconnected,
            Indicator::Consultation => Self::Consultation,
            Indicator::Assistance => Self::Assistance,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Consultation => "consultation",
            Self::Assistance => "assistance",
        }
    }

    /// What the icon shows, in French (its text alternative).
    pub fn label(self) -> &'static str {
        match self {
            Self::Unknown => "État en cours de détermination",
            Self::Connected => "Connecté (boule bleue)",
            Self::Disconnected => "Déconnecté (boule bleue au cœur rouge)",
            Self::Consultation => "Consultation seule (licence retirée)",
            Self::Assistance => "Mode assistance (coccinelle rouge)",
        }
    }

    /// The icon's address under `/static/`.
    pub fn icon(self) -> String {
        format!("/static/icons/{}.svg", self.as_str())
    }
}

/// The status as pages and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatusView {
    pub indicator: IndicatorState,
    /// French label of the state (the icon's text alternative).
    pub label: String,
    /// Address of the state's icon.
    pub icon: String,
    /// French sentence: which server, which step, which message.
    pub reason: String,
    /// Stable code of the reason.
    pub reason_code: String,
    /// Since when, RFC 3339 UTC.
    pub since: Option<String>,
    /// Since when, in French words, Paris time.
    pub since_fr: Option<String>,
    pub installation_id: String,
    pub software_version: String,
    /// The version available, when an update is.
    pub update_available: Option<String>,
    pub update_required: bool,
}

impl From<&StatusReport> for StatusView {
    fn from(r: &StatusReport) -> Self {
        let indicator = IndicatorState::from_proto(r.indicator);
        Self {
            indicator,
            label: indicator.label().to_owned(),
            icon: indicator.icon(),
            reason: r.reason.clone(),
            reason_code: r.reason_code.clone(),
            since: r.since.as_ref().map(rfc3339),
            since_fr: r.since.as_ref().map(french),
            installation_id: r.installation_id.clone(),
            software_version: r.software_version.clone(),
            update_available: Some(r.update_available.clone()).filter(|s| !s.is_empty()),
            update_required: r.update_required,
        }
    }
}

/// The services as the orchestrator checked them just now (the status page's « Services »).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServicesView {
    /// The orchestrator's version of iea-connect.
    pub orchestrator_version: String,
    /// Each agent the orchestrator calls.
    pub agents: Vec<AgentView>,
}

/// One agent as the orchestrator found it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentView {
    /// `auth-client`, `update-client`, `credential-verifier` or `deposit-agent`.
    pub name: String,
    /// Its name for a person, in French.
    pub label: String,
    /// It answered its health check, serving.
    pub healthy: bool,
    /// How long its health check took, when it answered.
    pub latency_ms: Option<i64>,
    /// Its version of iea-connect ("" when it does not say).
    pub version: String,
    /// It answers, but is not of the orchestrator's version.
    pub version_mismatch: bool,
    /// French sentence when it does not answer or is of another version; "" otherwise.
    pub message: String,
}

impl From<&StatusReport> for ServicesView {
    fn from(r: &StatusReport) -> Self {
        Self {
            orchestrator_version: r.orchestrator_version.clone(),
            agents: r
                .agents
                .iter()
                .map(|a| AgentView {
                    name: a.name.clone(),
                    label: iea_proto::agent_label(&a.name),
                    healthy: a.healthy,
                    latency_ms: a
                        .latency
                        .as_ref()
                        .filter(|_| a.healthy)
                        .map(iea_proto::millis),
                    version: a.version.clone(),
                    version_mismatch: a.version_mismatch,
                    message: a.message.clone(),
                })
                .collect(),
        }
    }
}

/// How often an idle event stream gets a comment line, so that proxies and browsers keep
/// it open (axum's default, for every subscriber at once from one timer).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The comment line sent on each keep-alive beat.
const KEEP_ALIVE_FRAME: &[u8] = b":\n\n";

/// A status as published to subscribers: the view, and the whole server-sent event
/// (`event: status`, `data:` its JSON) rendered once for all of them.
#[derive(Debug)]
struct Published {
    view: StatusView,
    /// `event: status\ndata: {…}\n\n`: every subscriber writes this same buffer.
    frame: Bytes,
    /// Counts the changes, so that a subscriber knows whether it already sent this one.
    seq: u64,
}

/// What the shared watch holds. Every change wakes every subscriber: a new status is
/// sent, anything else (a keep-alive beat) sends a comment, `closed` ends the streams.
#[derive(Debug, Default)]
struct Latest {
    status: Option<Published>,
    closed: bool,
}

/// The latest status seen on the shared watch (none until the first report), and the
/// event streams that follow it.
pub struct StatusWatch {
    tx: watch::Sender<Latest>,
}

impl Default for StatusWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusWatch {
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(Latest::default()),
        }
    }

    /// The status last published, if any.
    pub fn current(&self) -> Option<StatusView> {
        self.tx.borrow().status.as_ref().map(|p| p.view.clone())
    }

    /// Publishes `view` unless it is the one already published: its event is rendered
    /// here, once, and every subscriber then writes the same bytes.
    pub fn publish(&self, view: StatusView) {
        self.tx.send_if_modified(|cur| {
            if cur.status.as_ref().is_some_and(|p| p.view == view) {
                return false;
            }
            // Compact JSON escapes every control character: the data is one line.
            match serde_json::to_string(&view) {
                Ok(json) => {
                    let frame = format!("event: status\ndata: {json}\n\n");
                    let seq = cur.status.as_ref().map_or(0, |p| p.seq + 1);
                    cur.status = Some(Published {
                        view,
                        frame: Bytes::from(frame),
                        seq,
                    });
                    true
                }
                Err(e) => {
                    tracing::error!(error = %e, "status not encoded");
                    false
                }
            }
        });
    }

    /// Wakes every subscriber: those with nothing new send a keep-alive comment.
    pub fn beat(&self) {
        self.tx.send_modify(|_| {});
    }

    /// Ends every event stream (the console stops); later subscribers end at once.
    pub fn close(&self) {
        self.tx.send_modify(|l| l.closed = true);
    }

    /// Server-sent events: the status now (or as soon as there is one), then each
    /// change, a comment on each keep-alive beat, until [`close`](Self::close). Each item
    /// is a clone of a shared buffer; a subscriber's own state is its watch receiver and
    /// the one future that waits on it.
    pub fn events(&self) -> impl Stream<Item = Bytes> + Send + 'static {
        struct Subscriber {
            rx: watch::Receiver<Latest>,
            /// `seq` of the last status sent.
            sent: Option<u64>,
            started: bool,
        }
        let sub = Subscriber {
            rx: self.tx.subscribe(),
            sent: None,
            started: false,
        };
        futures::stream::unfold(sub, |mut sub| async move {
            loop {
                let first = !sub.started;
                if sub.started {
                    // The sender lives as long as the console's state: an error is the end.
                    sub.rx.changed().await.ok()?;
                }
                sub.started = true;
                let frame = {
                    let latest = sub.rx.borrow_and_update();
                    if latest.closed {
                        return None;
                    }
                    match &latest.status {
                        Some(p) if sub.sent != Some(p.seq) => {
                            sub.sent = Some(p.seq);
                            Some(p.frame.clone())
                        }
                        _ if first => None,
                        _ => Some(Bytes::from_static(KEEP_ALIVE_FRAME)),
                    }
                };
                if let Some(frame) = frame {
                    return Some((frame, sub));
                }
            }
        })
    }

    /// The `text/event-stream` answer of [`events`](Self::events).
    pub fn events_response(&self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from_stream(self.events().map(Ok::<_, Infallible>)),
        )
            .into_response()
    }
}

/// Follows the orchestrator's status until the console stops, beats the keep-alive of
/// every event stream, and ends them all when the console stops.
pub async fn follow(state: AppState) {
    tokio::select! {
        _ = state.shutdown.wait() => {}
        _ = watch_orchestrator(&state) => {}
        _ = keep_alive(&state.status) => {}
    }
    state.status.close();
}

/// One `WatchStatus` stream at a time, reopened with a growing pause when it breaks.
async fn watch_orchestrator(state: &AppState) {
    let mut pause = Duration::from_millis(200);
    loop {
        let outcome = async {
            let mut client = StatusClient::new(state.orchestrator.channel());
            let mut stream = client
                .watch_status(WatchStatusRequest {})
                .await?
                .into_inner();
            while let Some(report) = stream.message().await? {
                state.status.publish(StatusView::from(&report));
            }
            Ok::<_, tonic::Status>(())
        }
        .instrument(tracing::info_span!("orchestrator", rpc = "WatchStatus"))
        .await;
        match outcome {
            Ok(()) => pause = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(code = ?e.code(), error = %e.message(), "status watch interrupted");
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// One timer for every event stream's keep-alive.
async fn keep_alive(status: &StatusWatch) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        status.beat();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(indicator: IndicatorState, reason: &str) -> StatusView {
        StatusView {
            indicator,
            label: indicator.label().to_owned(),
            icon: indicator.icon(),
            reason: reason.to_owned(),
            reason_code: "code".to_owned(),
            since: None,
            since_fr: None,
            installation_id: "inst".to_owned(),
            software_version: "1.0".to_owned(),
            update_available: None,
            update_required: false,
        }
    }

    async fn next(s: &mut (impl Stream<Item = Bytes> + Unpin)) -> Option<Bytes> {
        tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("an item or the end within 5 s")
    }

    fn data(frame: &Bytes) -> serde_json::Value {
        let text = std::str::from_utf8(frame).unwrap();
        let mut lines = text.strip_suffix("\n\n").expect("one event").lines();
        assert_eq!(lines.next(), Some("event: status"));
        let json = lines.next().unwrap().strip_prefix("data: ").unwrap();
        assert_eq!(lines.next(), None, "the data is one line");
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn every_subscriber_writes_the_same_rendered_event() {
        let w = StatusWatch::new();
        let mut a = Box::pin(w.events());
        let mut b = Box::pin(w.events());
        w.publish(view(IndicatorState::Connected, "ok"));
        let (fa, fb) = (next(&mut a).await.unwrap(), next(&mut b).await.unwrap());
        assert_eq!(data(&fa)["indicator"], "connected");
        assert_eq!(fa.as_ptr(), fb.as_ptr(), "one buffer for both subscribers");

        // The same status again is no change; another one is.
        w.publish(view(IndicatorState::Connected, "ok"));
        w.publish(view(IndicatorState::Assistance, "support"));
        let fa = next(&mut a).await.unwrap();
        assert_eq!(data(&fa)["indicator"], "assistance");
        assert_eq!(data(&fa)["reason"], "support");
        assert_eq!(
            data(&next(&mut b).await.unwrap())["indicator"],
            "assistance"
        );

        // A late subscriber gets the status now, at once.
        let mut c = Box::pin(w.events());
        assert_eq!(next(&mut c).await.unwrap(), fa);
        assert_eq!(w.current().unwrap().indicator, IndicatorState::Assistance);
    }

    #[tokio::test]
    async fn idle_streams_get_a_comment_on_each_beat_and_end_when_closed() {
        let w = StatusWatch::new();
        let mut early = Box::pin(w.events());
        // No status yet: nothing to send until the beat.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), early.next())
                .await
                .is_err()
        );
        w.beat();
        assert_eq!(&next(&mut early).await.unwrap()[..], b":\n\n");
        w.publish(view(IndicatorState::Connected, "ok"));
        assert_eq!(
            data(&next(&mut early).await.unwrap())["indicator"],
            "connected"
        );
        w.beat();
        assert_eq!(&next(&mut early).await.unwrap()[..], b":\n\n");

        w.close();
        assert_eq!(next(&mut early).await, None, "closed: the stream ends");
        let mut late = Box::pin(w.events());
        assert_eq!(
            next(&mut late).await,
            None,
            "a stream opened after the close ends"
        );
    }
}
