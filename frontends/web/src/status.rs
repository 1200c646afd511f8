//! The status indicator as the console shows it ([`StatusView`]: state, icon, French
//! label, reason, since when in French words and in RFC 3339) and the one watch of the
//! orchestrator's status that every live page and event stream shares: [`follow`] keeps a
//! `WatchStatus` stream open (reconnecting with a growing pause when it breaks) and puts
//! each report in a `tokio::sync::watch`, so a thousand browsers cost one gRPC stream.

use std::time::Duration;

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

/// A status as published to subscribers: the view and its JSON, encoded once for all.
#[derive(Debug, Clone)]
pub struct Published {
    pub view: StatusView,
    pub json: std::sync::Arc<str>,
}

/// The latest status seen on the shared watch; `None` until the first report.
pub struct StatusWatch {
    tx: watch::Sender<Option<Published>>,
}

impl Default for StatusWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusWatch {
    pub fn new() -> Self {
        Self {
            tx: watch::channel(None).0,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<Published>> {
        self.tx.subscribe()
    }

    pub fn publish(&self, view: StatusView) {
        self.tx.send_if_modified(|cur| {
            if cur.as_ref().is_some_and(|p| p.view == view) {
                return false;
            }
            match serde_json::to_string(&view) {
                Ok(json) => {
                    *cur = Some(Published {
                        view,
                        json: json.into(),
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
}

/// Follows the orchestrator's status until the console stops.
pub async fn follow(state: AppState) {
    let stop = state.shutdown.wait();
    tokio::pin!(stop);
    let mut pause = Duration::from_millis(200);
    loop {
        let round = async {
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
        .instrument(tracing::info_span!("orchestrator", rpc = "WatchStatus"));
        let outcome = tokio::select! {
            _ = &mut stop => return,
            r = round => r,
        };
        match outcome {
            Ok(()) => pause = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(code = ?e.code(), error = %e.message(), "status watch interrupted");
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
