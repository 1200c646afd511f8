//! The console's static files (stylesheet, icons, live-update script), compiled into the
//! binary: nothing is fetched at run time, nothing comes from a CDN.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// `(path under /static/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/console.css"),
    ),
    (
        "icons/connected.svg",
        "image/svg+xml",
        include_bytes!("../static/icons/connected.svg"),
    ),
    (
        "icons/disconnected.svg",
        "image/svg+xml",
        include_bytes!("../static/icons/disconnected.svg"),
    ),
    (
        "icons/consultation.svg",
        "image/svg+xml",
        include_bytes!("../static/icons/consultation.svg"),
    ),
    (
        "icons/assistance.svg",
        "image/svg+xml",
        include_bytes!("../static/icons/assistance.svg"),
    ),
    (
        "icons/unknown.svg",
        "image/svg+xml",
        include_bytes!("../static/icons/unknown.svg"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/static/{*path}", get(serve))
}

async fn serve(Path(path): Path<String>) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => {
            let mut r = (*bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        None => (StatusCode::NOT_FOUND, "introuvable").into_response(),
    }
}
