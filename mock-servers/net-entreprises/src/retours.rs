//! The return services, in the simulator kit's order of checks:
//!
//! - `GET /lister-retours-flux/1.0/{idflux}`: 422 (`idflux` over 50 characters), 406,
//!   401, 500 (`idflux` `kaboom`), 404 (a flux unknown, or another declarant's), 200
//!   `<retours>` (empty before any return is published);
//! - `GET /lister-retours-declarant/1.0/{debut}[/{fin}]`: as the deposit listing (422,
//!   406, 401, 429; `Accept-Ranges`), the returns of the token's declarant published in
//!   the window, grouped by flux;
//! - `GET /telecharger-retour/1.0/{idflux}/{id}`: 406, 422 (`idflux` over 50 or `id`
//!   over 10 characters), 401, 500 (`id` `kaboom`), 404 (unknown, not yet published,
//!   purged, overwritten, or another declarant's), 200 the document (XML).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use crate::business::{self, Caller, escape};
use crate::listing::{self, Window};
use crate::returns::Return;
use crate::{Control, DOWNLOAD_PATH, LIST_RETURNS_DECLARANT_PATH, LIST_RETURNS_FLUX_PATH, Outcome};

fn counted(control: &Control, path: &str, response: Response) -> Response {
    control.count(path, Outcome::Status(response.status()));
    response
}

/// An HTTP/2 request names its host in the URI's authority, without a `Host` header:
/// gives it one, so that download addresses name the host the client asked.
fn with_host(headers: &mut HeaderMap, uri: &Uri) {
    if !headers.contains_key(header::HOST)
        && let Some(v) = uri
            .authority()
            .and_then(|a| header::HeaderValue::from_str(a.as_str()).ok())
    {
        headers.insert(header::HOST, v);
    }
}

/// The base of download addresses: the `download_base_url` setting, else `https://` and
/// the request's `Host`.
fn download_base(control: &Control, headers: &HeaderMap) -> String {
    if let Some(base) = &control.settings().download_base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("https://{host}")
}

fn retour_xml(r: &Return, control: &Control, base: &str) -> String {
    let tz = control.settings().time_zone;
    format!(
        "<retour><publication>{}</publication><production>{}</production><nature>{}</nature><statut>{}</statut><id>{}</id><url>{}</url></retour>",
        tz.format_compact(r.publication),
        tz.format_compact(r.production),
        r.nature,
        escape(&r.status),
        r.id,
        escape(
            &r.url
                .clone()
                .unwrap_or_else(|| format!("{base}{DOWNLOAD_PATH}{}/{}", r.idflux, r.id))
        ),
    )
}

/// `<retours>` with one `<flux>` per flux, in order of first appearance.
fn retours_xml(returns: &[Return], control: &Control, base: &str) -> String {
    let mut fluxes: Vec<(&str, String)> = Vec::new();
    for r in returns {
        let xml = retour_xml(r, control, base);
        match fluxes.iter_mut().find(|(id, _)| *id == r.idflux) {
            Some((_, body)) => body.push_str(&xml),
            None => fluxes.push((&r.idflux, xml)),
        }
    }
    let body: String = fluxes
        .into_iter()
        .map(|(id, retours)| format!("<flux><id>{id}</id>{retours}</flux>"))
        .collect();
    format!("<retours>{body}</retours>")
}

/// 406 then 401: the caller, or the status and realm to answer.
fn caller(
    control: &Control,
    headers: &HeaderMap,
) -> Result<Caller, (StatusCode, Option<&'static str>)> {
    if business::refuses_gzip(headers) {
        return Err((StatusCode::NOT_ACCEPTABLE, None));
    }
    business::caller(control, headers).map_err(|realm| (StatusCode::UNAUTHORIZED, Some(realm)))
}

fn refusal((status, realm): (StatusCode, Option<&'static str>)) -> Response {
    match realm {
        Some(realm) => business::unauthorized(realm),
        None => business::empty(status),
    }
}

pub async fn list_flux(
    State(control): State<Control>,
    Path(idflux): Path<String>,
    uri: Uri,
    mut headers: HeaderMap,
) -> Response {
    with_host(&mut headers, &uri);
    control.wait_reads().await;
    let response = answer_flux(&control, &headers, &idflux);
    counted(&control, LIST_RETURNS_FLUX_PATH, response)
}

fn answer_flux(control: &Control, headers: &HeaderMap, idflux: &str) -> Response {
    if idflux.chars().count() > 50 {
        return business::empty(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let caller = match caller(control, headers) {
        Ok(c) => c,
        Err(refused) => return refusal(refused),
    };
    if idflux == "kaboom" {
        return business::empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let now = control.clock().now();
    let returns = {
        let deposits = control.deposits();
        if deposits
            .get(idflux)
            .is_none_or(|d| d.declarant != caller.declarant)
        {
            return business::empty(StatusCode::NOT_FOUND);
        }
        let mut returns = control.returns();
        returns.make_documents(&deposits, now);
        returns
            .listed_of_flux(idflux, now)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    let body = if returns.is_empty() {
        "<retours></retours>".to_owned()
    } else {
        retours_xml(&returns, control, &download_base(control, headers))
    };
    business::xml(control, headers, StatusCode::OK, body, &[])
}

pub async fn list_declarant_from(
    State(control): State<Control>,
    Path(debut): Path<String>,
    uri: Uri,
    mut headers: HeaderMap,
) -> Response {
    with_host(&mut headers, &uri);
    control.wait_reads().await;
    let response = answer_declarant(&control, &headers, &debut, None);
    counted(&control, LIST_RETURNS_DECLARANT_PATH, response)
}

pub async fn list_declarant_between(
    State(control): State<Control>,
    Path((debut, fin)): Path<(String, String)>,
    uri: Uri,
    mut headers: HeaderMap,
) -> Response {
    with_host(&mut headers, &uri);
    control.wait_reads().await;
    let response = answer_declarant(&control, &headers, &debut, Some(&fin));
    counted(&control, LIST_RETURNS_DECLARANT_PATH, response)
}

fn answer_declarant(
    control: &Control,
    headers: &HeaderMap,
    debut: &str,
    fin: Option<&str>,
) -> Response {
    let window = listing::window(control, LIST_RETURNS_DECLARANT_PATH, debut, fin);
    if matches!(window, Window::Unparsable) {
        return business::empty(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let caller = match caller(control, headers) {
        Ok(c) => c,
        Err(refused) => return refusal(refused),
    };
    let response = declarant_listed(control, headers, &caller, &window);
    if let Some((start, end)) = window.bounds() {
        control.record_declarant_window(
            LIST_RETURNS_DECLARANT_PATH,
            caller.declarant,
            start,
            end,
            response.status(),
        );
    }
    response
}

/// The answer to `caller` once its token is accepted: 429 or the returns of the window.
fn declarant_listed(
    control: &Control,
    headers: &HeaderMap,
    caller: &Caller,
    window: &Window,
) -> Response {
    let (start, end) = match *window {
        Window::Ok(start, end) => (start, end),
        Window::TooWide(..) | Window::Unparsable => {
            return business::empty(StatusCode::TOO_MANY_REQUESTS);
        }
    };
    let now = control.clock().now();
    let returns = {
        let deposits = control.deposits();
        let mut returns = control.returns();
        returns.make_documents(&deposits, now);
        returns
            .listed_of_declarant(caller.declarant, start, end, now)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    let body = retours_xml(&returns, control, &download_base(control, headers));
    business::xml(
        control,
        headers,
        StatusCode::OK,
        body,
        &[listing::accept_ranges(control)],
    )
}

pub async fn download(
    State(control): State<Control>,
    Path((idflux, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    control.wait_reads().await;
    let response = answer_download(&control, &headers, &idflux, &id);
    counted(&control, DOWNLOAD_PATH, response)
}

fn answer_download(control: &Control, headers: &HeaderMap, idflux: &str, id: &str) -> Response {
    if business::refuses_gzip(headers) {
        return business::empty(StatusCode::NOT_ACCEPTABLE);
    }
    if idflux.chars().count() > 50 || id.chars().count() > 10 {
        return business::empty(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let caller = match business::caller(control, headers) {
        Ok(c) => c,
        Err(realm) => return business::unauthorized(realm),
    };
    if id == "kaboom" {
        return business::empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let now = control.clock().now();
    let document = {
        let deposits = control.deposits();
        if deposits
            .get(idflux)
            .is_none_or(|d| d.declarant != caller.declarant)
        {
            return business::empty(StatusCode::NOT_FOUND);
        }
        let mut returns = control.returns();
        returns.make_documents(&deposits, now);
        returns.document(idflux, id, now)
    };
    match document {
        Some(doc) => {
            control.record_download(idflux, id);
            business::xml(control, headers, StatusCode::OK, doc.to_string(), &[])
        }
        None => business::empty(StatusCode::NOT_FOUND),
    }
}
