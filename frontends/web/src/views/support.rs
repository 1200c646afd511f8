//! « Demande de support technique »: the orchestrator prepares the e-mail (every secret
//! removed) and the browser downloads it as an `.eml` file to send.

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use iea_proto::v1::PrepareSupportRequestRequest;
use iea_proto::v1::support_client::SupportClient;
use maud::html;
use serde::Deserialize;
use tracing::Instrument;

use super::{csrf_field, error_page, ok, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed};
use crate::sessions::Current;

pub fn routes() -> Router<AppState> {
    Router::new().route("/support", get(show).post(download))
}

async fn show(Extension(current): Extension<Current>) -> Response {
    let body = html! {
        section {
            p { "iea-connect prépare un message pour le support avec un résumé du diagnostic, sans aucun mot de passe. Téléchargez-le puis envoyez-le depuis votre messagerie." }
            form method="post" action="/support" {
                (csrf_field(&current))
                label for="from" { "Votre adresse électronique" }
                input type="text" id="from" name="from" autocomplete="email";
                label for="description" { "Description du problème" }
                textarea id="description" name="description" rows="5" cols="60" {}
                div { button type="submit" id="download-support" { "Télécharger le message" } }
            }
        }
    };
    ok(page("Demande de support technique", Some(&current), body))
}

#[derive(Deserialize)]
pub struct SupportForm {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub from: String,
}

/// The prepared message.
pub async fn prepare(
    state: &AppState,
    current: &Current,
    f: SupportForm,
) -> Result<iea_proto::v1::SupportRequest, WebError> {
    Ok(SupportClient::new(state.orchestrator.channel())
        .prepare_support_request(authed(
            &current.session.token,
            PrepareSupportRequestRequest {
                description: f.description,
                from: f.from,
            },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "PrepareSupportRequest"
        ))
        .await?
        .into_inner())
}

/// An `.eml` attachment answer.
pub fn eml_response(eml: Vec<u8>) -> Response {
    let mut r = eml.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"demande-support-iea-connect.eml\""),
    );
    r
}

async fn download(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    Form(f): Form<SupportForm>,
) -> Response {
    match prepare(&state, &current, f).await {
        Ok(s) => eml_response(s.eml),
        Err(e) => error_page(&e, Some(&current)),
    }
}
