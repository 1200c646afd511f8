//! « Taux PAS »: the withholding (PAS) rates the DGFiP sent in its CRM nominatifs, as the
//! orchestrator keeps them (`iea.v1.Returns/ListRates`): per establishment and employee,
//! the rate in force, the identifier the next DSN quotes (`S21.G00.50.008`) and until when
//! it is valid; a SIRET filter and the expired rates on request; the same list as CSV,
//! column for column what `iea pas rates --csv` writes.
//!
//! Personal data: which rates a session sees is the orchestrator's decision (an
//! administrator all, another account those of its own deposits). As the `iea` command
//! does, a person reads the NIR masked but for its last three characters; the CSV and the
//! JSON API are for the payroll program and give every value whole. Nothing here logs a
//! NIR, a matricule or a rate (the span names the call and the filter's SIRET only).

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use iea_fr_time::date_text;
use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::{ListPasRatesRequest, PasRate};
use maud::html;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::{notice, page};
use crate::AppState;
use crate::orchestrator::{WebError, authed};
use crate::sessions::Current;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/taux-pas", get(show))
        .route("/taux-pas/taux.csv", get(download))
}

/// The rates the session may see; `siret` empty: every establishment.
pub async fn list(
    state: &AppState,
    current: &Current,
    siret: &str,
    include_expired: bool,
) -> Result<Vec<PasRate>, WebError> {
    let siret = siret.trim();
    Ok(ReturnsClient::new(state.orchestrator.channel())
        .list_rates(authed(
            &current.session.token,
            ListPasRatesRequest {
                siret: siret.to_owned(),
                include_expired,
            },
        ))
        .instrument(tracing::info_span!(
            "orchestrator",
            rpc = "ListRates",
            include_expired
        ))
        .await?
        .into_inner()
        .rates)
}

/// A future rate and the day it applies from.
#[derive(Serialize, ToSchema)]
pub struct FutureRateView {
    /// As the CRM writes it (« 8.10 », a percentage).
    pub rate: String,
    /// YYYY-MM-DD.
    pub effective_on: String,
}

/// One employee's current rate, whole (for programs: `iea pas rates --json`'s form).
#[derive(Serialize, ToSchema)]
pub struct RateView {
    pub siret: String,
    /// The NIR (13 characters); absent for an employee known by a temporary number.
    pub nir: Option<String>,
    /// The temporary number (NTT), when the employee has no NIR yet.
    pub ntt: Option<String>,
    pub matricule: String,
    /// As the CRM writes it (« 7.50 », a percentage); absent when the CRM gave none.
    pub rate: Option<String>,
    /// The same in hundredths of a percent (750).
    pub rate_hundredths: Option<u32>,
    /// The CRM's identifier: S21.G00.50.008 of the next DSN.
    pub rate_identifier: String,
    /// The day the CRM was made available, YYYY-MM-DD.
    pub available_on: String,
    /// The last day the rate is valid, YYYY-MM-DD.
    pub valid_until: String,
    /// Still valid today.
    pub valid: bool,
    pub future_rate: Option<FutureRateView>,
    /// The deposit whose CRM gave it; absent for a deposit made elsewhere.
    pub deposit_id: Option<i64>,
    pub idflux: Option<String>,
}

pub fn rate_view(r: &PasRate) -> RateView {
    RateView {
        siret: r.siret.clone(),
        nir: (!r.ntt).then(|| r.nir_or_ntt.clone()),
        ntt: r.ntt.then(|| r.nir_or_ntt.clone()),
        matricule: r.matricule.clone(),
        rate: Some(r.rate.clone()).filter(|s| !s.is_empty()),
        rate_hundredths: r.rate_hundredths,
        rate_identifier: r.rate_identifier.clone(),
        available_on: r.available_on.clone(),
        valid_until: r.valid_until.clone(),
        valid: r.valid,
        future_rate: (!r.future_rate.is_empty()).then(|| FutureRateView {
            rate: r.future_rate.clone(),
            effective_on: r.future_effective_on.clone(),
        }),
        deposit_id: (r.deposit_id != 0).then_some(r.deposit_id),
        idflux: Some(r.idflux.clone()).filter(|s| !s.is_empty()),
    }
}

/// The CSV, the masked NIR and the French percent, as `iea pas rates` gives them (one
/// writer for both front-ends).
pub use iea_proto::rates::{CSV_HEADER, masked, percent, to_csv};

/// A CSV attachment (UTF-8, `;`-separated); `name` is the file's name.
pub fn csv_response(csv: String, name: &str) -> Response {
    let mut r = csv.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// The CSV file's name: `taux-pas.csv`, or `taux-pas-<siret>.csv` for one establishment
/// (only when the filter is 14 digits, so nothing typed reaches the header).
pub fn csv_name(siret: &str) -> String {
    let s = siret.trim();
    if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
        format!("taux-pas-{s}.csv")
    } else {
        "taux-pas.csv".to_owned()
    }
}

/// The page's filter: `?siret=…&expires=on` (the « expirés » box).
#[derive(Deserialize, Default)]
pub struct RatesQuery {
    #[serde(default)]
    siret: String,
    #[serde(default)]
    expires: String,
}

impl RatesQuery {
    fn include_expired(&self) -> bool {
        matches!(self.expires.as_str(), "on" | "1" | "true")
    }

    /// The query string that gives the same list (for the CSV link).
    fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !self.siret.trim().is_empty() {
            q.append_pair("siret", self.siret.trim());
        }
        if self.include_expired() {
            q.append_pair("expires", "on");
        }
        let q = q.finish();
        if q.is_empty() { q } else { format!("?{q}") }
    }
}

fn query_or_error(q: Result<Query<RatesQuery>, QueryRejection>) -> Result<RatesQuery, WebError> {
    q.map(|Query(q)| q)
        .map_err(|_| WebError::invalid("Les paramètres de la demande ne sont pas valides."))
}

fn render(current: &Current, q: &RatesQuery, rates: Result<Vec<PasRate>, WebError>) -> Response {
    let status = rates.as_ref().err().map(|e| e.status);
    let body = html! {
        @if let Err(e) = &rates { (notice("error", &e.message)) }
        section {
            form method="get" action="/taux-pas" id="rates-filter" {
                label for="siret" { "SIRET de l'établissement (facultatif : tous ceux que vous suivez)" }
                input type="text" id="siret" name="siret" value=(q.siret.trim()) inputmode="numeric" maxlength="40";
                label {
                    input type="checkbox" id="expires" name="expires" value="on" checked[q.include_expired()];
                    " Afficher aussi les taux expirés"
                }
                div {
                    button type="submit" id="show-rates" { "Afficher" }
                    " "
                    a class="button" id="rates-csv" href={ "/taux-pas/taux.csv" (q.query_string()) } { "Télécharger en CSV" }
                }
            }
            p class="muted" {
                "Le NIR est masqué à l'écran, sauf ses trois derniers caractères ; le fichier CSV, destiné au logiciel de paie, donne chaque valeur en entier."
            }
        }
        @if let Ok(rates) = &rates {
            @if rates.is_empty() {
                p class="muted" id="no-rates" {
                    "Aucun taux de prélèvement à la source : aucun CRM PAS n'a encore été reçu pour les établissements que vous suivez."
                }
            } @else {
                @for siret in sirets(rates) {
                    @let of: Vec<&PasRate> = rates.iter().filter(|r| r.siret == siret).collect();
                    section class="rates" data-siret=(siret) {
                        h2 { "SIRET " (siret) " — " (of.len()) " salarié" @if of.len() != 1 { "s" } }
                        table {
                            thead { tr {
                                th { "Matricule" } th { "NIR / NTT" } th { "Taux" }
                                th { "Identifiant (S21.G00.50.008)" } th { "Disponible le" }
                                th { "Validité" } th { "Taux futur" } th { "Dépôt" }
                            } }
                            tbody {
                                @for r in &of {
                                    tr class="rate" data-valid=(r.valid) {
                                        td class="matricule" { @if r.matricule.is_empty() { "—" } @else { (r.matricule) } }
                                        td class="nir" { (if r.ntt { "NTT " } else { "NIR " }) (masked(&r.nir_or_ntt)) }
                                        td class="rate-value" { (percent(&r.rate)) }
                                        td class="identifier" { (r.rate_identifier) }
                                        td { (date_text(&r.available_on)) }
                                        td class={ "validity " @if r.valid { "ok" } @else { "ko" } } {
                                            @if r.valid { "valable jusqu'au " (date_text(&r.valid_until)) }
                                            @else { "n'est plus valable depuis le " (date_text(&r.valid_until)) }
                                        }
                                        td class="future" {
                                            @if !r.future_rate.is_empty() {
                                                (percent(&r.future_rate)) " à partir du " (date_text(&r.future_effective_on))
                                            }
                                        }
                                        td {
                                            @if r.deposit_id != 0 {
                                                a href={ "/declarations/" (r.deposit_id) "/retours" } { "n° " (r.deposit_id) }
                                            } @else { "déposée ailleurs" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let html = Html(page("Taux PAS", Some(current), body).into_string());
    (status.unwrap_or(StatusCode::OK), html).into_response()
}

/// The SIRETs of `rates`, in their order (the orchestrator sorts by SIRET).
fn sirets(rates: &[PasRate]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rates {
        if out.last() != Some(&r.siret) {
            out.push(r.siret.clone());
        }
    }
    out
}

async fn show(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    q: Result<Query<RatesQuery>, QueryRejection>,
) -> Response {
    let (q, rates) = match query_or_error(q) {
        Ok(q) => {
            let rates = list(&state, &current, &q.siret, q.include_expired()).await;
            (q, rates)
        }
        Err(e) => (RatesQuery::default(), Err(e)),
    };
    render(&current, &q, rates)
}

async fn download(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    q: Result<Query<RatesQuery>, QueryRejection>,
) -> Response {
    let result = match query_or_error(q) {
        Ok(q) => list(&state, &current, &q.siret, q.include_expired())
            .await
            .map(|rates| (q, rates)),
        Err(e) => Err(e),
    };
    match result {
        Ok((q, rates)) => csv_response(to_csv(&rates), &csv_name(&q.siret)),
        Err(e) => render(&current, &RatesQuery::default(), Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_is_the_command_s_quoted_and_never_a_formula() {
        let r = PasRate {
            siret: "78214563500010".into(),
            nir_or_ntt: "1800175123456".into(),
            matricule: "=A1;B\"2".into(),
            rate: "7.50".into(),
            rate_identifier: "123456789012345678".into(),
            available_on: "2026-12-01".into(),
            valid_until: "2027-02-28".into(),
            valid: true,
            deposit_id: 4,
            ..Default::default()
        };
        let csv = to_csv(&[r]);
        let mut lines = csv.split('\n');
        assert_eq!(lines.next(), Some(CSV_HEADER));
        assert_eq!(
            lines.next(),
            Some(
                "78214563500010;1800175123456;0;\"'=A1;B\"\"2\";7.50;123456789012345678;2026-12-01;2027-02-28;1;;;4;"
            )
        );
        assert_eq!(lines.next(), Some(""));
    }

    #[test]
    fn the_csv_name_takes_only_a_siret() {
        assert_eq!(csv_name(" 78214563500010 "), "taux-pas-78214563500010.csv");
        assert_eq!(csv_name("\"; x"), "taux-pas.csv");
        assert_eq!(csv_name(""), "taux-pas.csv");
    }

    #[test]
    fn the_csv_link_keeps_the_filter() {
        let q = RatesQuery {
            siret: " 78214563500010".into(),
            expires: "on".into(),
        };
        assert_eq!(q.query_string(), "?siret=78214563500010&expires=on");
        assert_eq!(RatesQuery::default().query_string(), "");
    }
}
