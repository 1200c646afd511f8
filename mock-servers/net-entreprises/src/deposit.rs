//! `POST /deposer-dsn/1.0/`: the deposit of one DSN file, gzipped, checked in the
//! publisher's simulator kit's order:
//!
//! 1. `Content-Encoding` exactly `gzip`, else 415;
//! 2. `Content-Type` `text/plain` (parameters allowed), else 415;
//! 3. `Accept-Encoding` present without gzip: 406;
//! 4. empty body: 422; a body that is not gzip: 400; past `max_dsn_bytes` once
//!    decompressed: 413;
//! 5. token: 401 with its realm;
//! 6. decompressed file not starting with `S10`: 422 with an ARE (registered `KO`);
//! 7. `kaboom` anywhere in the file (any case): 500, nothing registered;
//! 8. otherwise 200 with an AEE (registered `OK`), or, with the `reject_deposits` fault,
//!    422 with an ARE naming the fault's anomaly (registered `KO`).
//!
//! The `lost_request` fault cuts the connection before step 1; `lost_answer` cuts it
//! after the registration, instead of the answer; `hold_before_register` holds the
//! request before step 1, then cuts it (nothing registered); `hold_after_register` holds
//! the answer once the deposit is registered. Error bodies are empty, ARE and AEE are
//! XML, gzipped when the client accepts gzip.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use flate2::read::MultiGzDecoder;
use iea_mock_kit::CutConnection;

use crate::business::{self, Caller, escape};
use crate::deposits::{Deposit, DsnFacts, Envelope, Status};
use crate::faults::Rejection;
use crate::{Control, DEPOSIT_PATH, Outcome};

/// The anomaly of a file that is not a DSN (the simulator kit's).
pub const NOT_A_DSN_CODE: &str = "B1-105-15";
pub const NOT_A_DSN_MESSAGE: &str = "Le format du fichier depot_mtom n'est pas reconnu.";

/// The word that makes the simulator fail (500).
const KABOOM: &[u8] = b"kaboom";

pub async fn deposit(State(control): State<Control>, headers: HeaderMap, body: Bytes) -> Response {
    let _in_flight = control.in_flight(DEPOSIT_PATH);
    let response = answer(&control, &headers, body).await;
    let outcome = if response.extensions().get::<CutConnection>().is_some() {
        Outcome::Cut
    } else {
        Outcome::Status(response.status())
    };
    control.count(DEPOSIT_PATH, outcome);
    response
}

async fn answer(control: &Control, headers: &HeaderMap, body: Bytes) -> Response {
    if control.deposit_faults().take_lost_request() {
        tracing::info!("deposit lost before it was registered (lost_request fault)");
        return CutConnection::response();
    }
    let hold = control.deposit_faults().take_hold_before_register();
    if let Some(hold) = hold {
        tracing::info!(
            hold_ms = hold.as_millis() as u64,
            "deposit held before it was registered (hold_before_register fault)"
        );
        tokio::time::sleep(hold).await;
        tracing::info!("held deposit cut, never registered (hold_before_register fault)");
        return CutConnection::response();
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    if encoding != Some("gzip") {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content encoding is not gzip",
        );
    }
    if !is_text_plain(headers) {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type is not text/plain",
        );
    }
    if business::refuses_gzip(headers) {
        return refused(StatusCode::NOT_ACCEPTABLE, "accept-encoding without gzip");
    }
    if body.is_empty() {
        return refused(StatusCode::UNPROCESSABLE_ENTITY, "empty body");
    }
    let max = control.settings().max_dsn_bytes;
    let read = tokio::task::spawn_blocking(move || {
        decompress(&body, max).map(|dsn| {
            let envelope = Envelope::read(&dsn);
            let starts_s10 = dsn.starts_with(b"S10");
            let kaboom = contains_kaboom(&dsn);
            (dsn, envelope, starts_s10, kaboom)
        })
    })
    .await;
    let (dsn, envelope, starts_s10, kaboom) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(Unreadable::NotGzip)) => {
            return refused(StatusCode::BAD_REQUEST, "body is not gzip");
        }
        Ok(Err(Unreadable::TooLarge)) => {
            return refused(StatusCode::PAYLOAD_TOO_LARGE, "decompressed body too large");
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a deposit failed");
            return business::empty(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let caller = match business::caller(control, headers) {
        Ok(c) => c,
        Err(realm) => {
            tracing::info!(status = 401, realm, "deposit refused: token");
            return business::unauthorized(realm);
        }
    };
    if !starts_s10 {
        let rejection = Rejection {
            code: NOT_A_DSN_CODE.into(),
            message: NOT_A_DSN_MESSAGE.into(),
            count: 1,
        };
        return register(control, headers, &caller, dsn, envelope, Some(rejection)).await;
    }
    if kaboom {
        tracing::info!(status = 500, "kaboom");
        return business::empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let rejection = control.deposit_faults().reject_deposits.clone();
    register(control, headers, &caller, dsn, envelope, rejection).await
}

fn refused(status: StatusCode, reason: &'static str) -> Response {
    tracing::info!(status = status.as_u16(), reason, "deposit refused");
    business::empty(status)
}

/// `text/plain`, parameters (a charset) allowed, case-insensitive.
fn is_text_plain(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/plain"))
}

enum Unreadable {
    NotGzip,
    TooLarge,
}

fn decompress(body: &[u8], max: u64) -> Result<Vec<u8>, Unreadable> {
    let mut out = Vec::new();
    MultiGzDecoder::new(body)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| Unreadable::NotGzip)?;
    if out.len() as u64 > max {
        return Err(Unreadable::TooLarge);
    }
    Ok(out)
}

fn contains_kaboom(dsn: &[u8]) -> bool {
    dsn.windows(KABOOM.len())
        .any(|w| w.eq_ignore_ascii_case(KABOOM))
}

/// Registers the deposit (an AEE without `rejection`, an ARE with it), has its file read
/// in the background, and answers it (after `hold_after_register`'s wait), or cuts the
/// connection with the `lost_answer` fault.
async fn register(
    control: &Control,
    headers: &HeaderMap,
    caller: &Caller,
    dsn: Vec<u8>,
    file: Envelope,
    rejection: Option<Rejection>,
) -> Response {
    let now = control.clock().now();
    let tz = control.settings().time_zone;
    let (date, heure) = tz.date_and_time(now);
    let deposit = {
        let mut deposits = control.deposits();
        let idflux = deposits.new_idflux();
        let report = match &rejection {
            None => aee(caller, &idflux, &file, &date, &heure),
            Some(r) => are(caller, &idflux, &file, &date, &heure, r),
        };
        let deposit = Deposit {
            idflux,
            declarant: caller.declarant,
            siret: caller.siret.clone(),
            nom: caller.nom.clone(),
            prenom: caller.prenom.clone(),
            received_at: now,
            status: if rejection.is_some() {
                Status::Ko
            } else {
                Status::Ok
            },
            anomaly: rejection,
            envelope: file,
            facts: None,
            report,
        };
        deposits.push(deposit.clone());
        control
            .returns()
            .plan_acknowledgement(&deposit, &control.settings().returns);
        deposit
    };
    read_in_background(control, deposit.idflux.clone(), dsn);
    control.count_registered();
    tracing::info!(
        idflux = %deposit.idflux,
        declarant = deposit.declarant,
        status = deposit.status.as_str(),
        bytes = deposit.envelope.bytes,
        "deposit registered"
    );
    let hold = control.deposit_faults().take_hold_after_register();
    if let Some(hold) = hold {
        tracing::info!(
            idflux = %deposit.idflux,
            hold_ms = hold.as_millis() as u64,
            "deposit answer held (hold_after_register fault)"
        );
        tokio::time::sleep(hold).await;
    }
    if control.deposit_faults().take_lost_answer() {
        tracing::info!(idflux = %deposit.idflux, "deposit answer lost (lost_answer fault)");
        return CutConnection::response();
    }
    let status = match deposit.status {
        Status::Ok => StatusCode::OK,
        Status::Ko => StatusCode::UNPROCESSABLE_ENTITY,
    };
    business::xml(control, headers, status, deposit.report, &[])
}

/// Reads the deposited file with `iea-dsn` off the answer's path, then records its facts
/// and plans the returns that depend on them. Readers of facts and returns wait for it
/// ([`Control::wait_reads`]).
fn read_in_background(control: &Control, idflux: String, dsn: Vec<u8>) {
    let control = control.clone();
    control.read_started();
    tokio::spawn(async move {
        match tokio::task::spawn_blocking(move || DsnFacts::read(&dsn)).await {
            Ok(facts) => control.facts_read(&idflux, facts),
            Err(e) => {
                tracing::error!(idflux = %idflux, error = %e, "reading a deposited file failed")
            }
        }
        control.read_done();
    });
}

fn identification(
    caller: &Caller,
    idflux: &str,
    file: &Envelope,
    essai_reel: Option<&str>,
    date: &str,
    heure: &str,
) -> String {
    let essai_reel = match essai_reel {
        Some(v) => format!("<essai_reel>{}</essai_reel>", escape(v)),
        None => "<essai_reel/>".to_owned(),
    };
    format!(
        "<declarant><siret>{siret}</siret><nom>{nom}</nom><prenom>{prenom}</prenom></declarant>\
         <idflux>{idflux}</idflux><identifiant>MtoM</identifiant>\
         <point_de_depot>{point}</point_de_depot>{essai_reel}\
         <emetteur_siret>{emetteur}</emetteur_siret>\
         <date_reception>{date}</date_reception><heure_reception>{heure}</heure_reception>",
        siret = escape(&caller.siret),
        nom = escape(&caller.nom),
        prenom = escape(&caller.prenom),
        point = escape(file.point_de_depot.as_deref().unwrap_or("01")),
        emetteur = escape(file.emetteur_siret.as_deref().unwrap_or(&caller.siret)),
    )
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>";

/// The AEE (accusé d'enregistrement électronique).
fn aee(caller: &Caller, idflux: &str, file: &Envelope, date: &str, heure: &str) -> String {
    format!(
        "{HEAD}<gipmds:rapport type=\"AEE\" profil=\"DSN\" version=\"v01r04\" xmlns:gipmds=\"http://www.gip-mds.fr/\">\
         <envoi><envoi_identification>{ident}\
         <date_enregistrement>{date}</date_enregistrement><heure_enregistrement>{heure}</heure_enregistrement>\
         </envoi_identification><envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi></gipmds:rapport>",
        ident = identification(
            caller,
            idflux,
            file,
            file.essai_reel.as_deref(),
            date,
            heure
        ),
    )
}

/// The ARE (avis de rejet): empty `essai_reel`, no registration date, the anomaly (`count`
/// of them, numbered when more than one).
fn are(
    caller: &Caller,
    idflux: &str,
    file: &Envelope,
    date: &str,
    heure: &str,
    rejection: &Rejection,
) -> String {
    let count = rejection.count.clamp(1, crate::faults::MAX_ANOMALIES);
    let code = escape(&rejection.code);
    let mut anomalies = String::new();
    for n in 1..=count {
        let message = if count == 1 {
            escape(&rejection.message)
        } else {
            escape(&format!("{} (anomalie {n} sur {count})", rejection.message))
        };
        anomalies.push_str(&format!(
            "<envoi_anomalie><description><code>{code}</code><message>{message}</message></description></envoi_anomalie>"
        ));
    }
    format!(
        "{HEAD}<gipmds:rapport type=\"ARE\" profil=\"DSN\" version=\"v01r04\" xmlns:gipmds=\"http://www.gip-mds.fr/\">\
         <envoi><envoi_identification>{ident}</envoi_identification>\
         <envoi_bilan><envoi_etat>KO</envoi_etat></envoi_bilan>\
         {anomalies}\
         </envoi></gipmds:rapport>",
        ident = identification(caller, idflux, file, None, date, heure),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaboom_is_found_in_any_case_and_gzip_is_required() {
        assert!(contains_kaboom(b"S10.G00.00.001,'KaBoOm'"));
        assert!(!contains_kaboom(b"S10.G00.00.001,'kabo om'"));
        assert!(matches!(
            decompress(b"S10 plain", 100),
            Err(Unreadable::NotGzip)
        ));
        let gz = business::gzip(b"S10.G00.00.001,'x'");
        assert_eq!(
            decompress(&gz, 100).ok().as_deref(),
            Some(&b"S10.G00.00.001,'x'"[..])
        );
        assert!(matches!(decompress(&gz, 5), Err(Unreadable::TooLarge)));
    }
}
