//! `GET /lister-depots/1.0/{debut}[/{fin}]`: the token's declarant's deposits received in
//! a window, checked in the simulator kit's order:
//!
//! 1. `debut` or `fin` not a `AAAAMMJJHHMMSS` time: 422;
//! 2. `Accept-Encoding` present without gzip: 406;
//! 3. token: 401 with its realm;
//! 4. `fin` (now when absent) more than `listing_window_minutes` after `debut`: 429
//!    (exactly the window is fine);
//! 5. 200 with `<depots>`, `Accept-Ranges: minutes=0-<window>`, `Cache-Control: no-cache`
//!    and `Expires`.
//!
//! Times are wall-clock times of the `time_zone` setting; both ends are included, to the
//! second. A `fin` before `debut` is an empty window.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use time::{Duration, OffsetDateTime};

use crate::business::{self, Caller, escape};
use crate::{Control, LIST_DEPOSITS_PATH, Outcome};

pub async fn list_from(
    State(control): State<Control>,
    Path(debut): Path<String>,
    headers: HeaderMap,
) -> Response {
    counted(&control, answer(&control, &headers, &debut, None))
}

pub async fn list_between(
    State(control): State<Control>,
    Path((debut, fin)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    counted(&control, answer(&control, &headers, &debut, Some(&fin)))
}

fn counted(control: &Control, response: Response) -> Response {
    control.count(LIST_DEPOSITS_PATH, Outcome::Status(response.status()));
    response
}

/// The window `debut`..`fin` read in `control`'s zone, or the 422 / 429 to answer.
pub enum Window {
    Ok(OffsetDateTime, OffsetDateTime),
    Unparsable,
    TooWide(OffsetDateTime, OffsetDateTime),
}

impl Window {
    /// The window asked, once read.
    pub fn bounds(&self) -> Option<(OffsetDateTime, OffsetDateTime)> {
        match *self {
            Window::Ok(start, end) | Window::TooWide(start, end) => Some((start, end)),
            Window::Unparsable => None,
        }
    }
}

/// Reads a listing window of the service `path` (its widest window asked is counted);
/// `fin` defaults to now on the mock's clock.
pub fn window(control: &Control, path: &str, debut: &str, fin: Option<&str>) -> Window {
    let tz = control.settings().time_zone;
    let Some(start) = tz.parse_compact(debut) else {
        return Window::Unparsable;
    };
    let end = match fin {
        Some(f) => match tz.parse_compact(f) {
            Some(end) => end,
            None => return Window::Unparsable,
        },
        None => control
            .clock()
            .now()
            .replace_nanosecond(0)
            .unwrap_or(control.clock().now()),
    };
    control.record_window(path, (end - start).whole_seconds());
    let allowed = Duration::minutes(control.settings().listing_window_minutes.into());
    if end - start > allowed {
        return Window::TooWide(start, end);
    }
    Window::Ok(start, end)
}

/// `Accept-Ranges: minutes=0-<window>`.
pub fn accept_ranges(control: &Control) -> (HeaderName, HeaderValue) {
    let value = format!("minutes=0-{}", control.settings().listing_window_minutes);
    (
        header::ACCEPT_RANGES,
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("minutes=0-60")),
    )
}

fn answer(control: &Control, headers: &HeaderMap, debut: &str, fin: Option<&str>) -> Response {
    let window = window(control, LIST_DEPOSITS_PATH, debut, fin);
    if matches!(window, Window::Unparsable) {
        tracing::info!(status = 422, "deposit listing refused: unparsable window");
        return business::empty(StatusCode::UNPROCESSABLE_ENTITY);
    }
    if business::refuses_gzip(headers) {
        return business::empty(StatusCode::NOT_ACCEPTABLE);
    }
    let caller = match business::caller(control, headers) {
        Ok(c) => c,
        Err(realm) => return business::unauthorized(realm),
    };
    let response = listed(control, headers, &caller, &window);
    if let Some((start, end)) = window.bounds() {
        control.record_declarant_window(
            LIST_DEPOSITS_PATH,
            caller.declarant,
            start,
            end,
            response.status(),
        );
    }
    response
}

/// The answer to `caller` once its token is accepted: 429 or the listing.
fn listed(control: &Control, headers: &HeaderMap, caller: &Caller, window: &Window) -> Response {
    let (start, end) = match *window {
        Window::Ok(start, end) => (start, end),
        Window::TooWide(..) | Window::Unparsable => {
            tracing::info!(status = 429, "deposit listing refused: window too wide");
            return business::empty(StatusCode::TOO_MANY_REQUESTS);
        }
    };
    let tz = control.settings().time_zone;
    let depots: String = control
        .deposits()
        .of_declarant_between(caller.declarant, start, end)
        .map(|d| {
            format!(
                "<depot><idflux>{}</idflux><date>{}</date><statut>{}</statut></depot>",
                d.idflux,
                tz.format_compact(d.received_at),
                d.status.as_str()
            )
        })
        .collect();
    let body = if depots.is_empty() {
        "<depots></depots>".to_owned()
    } else {
        format!(
            "<depots><declarant><siret>{}</siret><nom>{}</nom><prenom>{}</prenom>{depots}</declarant></depots>",
            escape(&caller.siret),
            escape(&caller.nom),
            escape(&caller.prenom)
        )
    };
    business::xml(
        control,
        headers,
        StatusCode::OK,
        body,
        &[accept_ranges(control)],
    )
}
