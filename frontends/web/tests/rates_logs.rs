//! Rates are personal data and never reach a log line: every component's logs (the
//! console, the orchestrator, the agents, the mocks), at TRACE, are captured while a
//! deposit is followed to its CRM PAS through the console's API and while the « Taux
//! PAS » page, its CSV, the rates' JSON, the deposit's returns and the board are asked
//! for; then the captured text is searched for the employees' NIRs and for the rate and
//! future rate the tax office gave (as written in the CRM and as the page writes them). A
//! binary of its own, since it installs the global log subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, client};
use iea_mock_net_entreprises::fixtures::DUPONT;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SAMPLE_DSN: &[u8] = include_bytes!("fixtures/sample-78214563500010-2026-10.dsn");

fn sample_nirs() -> Vec<String> {
    let text: String = SAMPLE_DSN.iter().map(|b| *b as char).collect();
    text.lines()
        .filter_map(|l| l.strip_prefix("S21.G00.30.001,'"))
        .map(|v| v.trim_end_matches('\r').trim_end_matches('\'').to_owned())
        .collect()
}

#[tokio::test]
async fn no_nir_nor_rate_reaches_the_logs_while_the_rates_pages_are_shown() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(iea_runtime::telemetry::filter("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let h = Harness::start().await;
    let s = h.api_session().await;
    h.set_admin_identity(&s, DUPONT.siret, DUPONT.password)
        .await;
    let nirs = sample_nirs();
    assert_eq!(nirs.len(), 2);
    // Values found nowhere else: a rate and a future rate of the tax office.
    let (rate, future_rate) = ("37.91", "41.23");
    let f = h.file();
    let ne = |method: Method, path: &str, body: Value| {
        client()
            .request(
                method,
                format!("{}{path}", f.mocks["net-entreprises"].admin),
            )
            .bearer_auth(&f.mocks_admin_token)
            .json(&body)
            .send()
    };
    let r = ne(
        Method::PUT,
        &format!("/pas-rates/{}", nirs[0]),
        json!({"taux": rate, "taux_futur": future_rate, "date_effet": "2027-02-01"}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success());

    let r = s
        .call(Method::POST, "/api/v1/deposits?file_name=octobre.dsn")
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(SAMPLE_DSN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let d = s.settled_deposit(id, Duration::from_secs(60)).await;
    assert_eq!(d["state"], "accepted", "{d}");
    let r = ne(Method::POST, "/returns/publish", json!({}))
        .await
        .unwrap();
    assert!(r.status().is_success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let r = s
            .call(Method::POST, "/api/v1/returns/follow-now")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rates = s.get_json("/api/v1/rates").await;
        if rates
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["nir"] == nirs[0].as_str() && r["rate"] == rate)
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no rate: {rates}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Every place that shows them, each asked for once.
    let french = rate.replace('.', ",");
    for (path, shows) in [
        ("/taux-pas".to_owned(), french.as_str()),
        ("/taux-pas?expires=on".to_owned(), french.as_str()),
        ("/taux-pas/taux.csv".to_owned(), rate),
        ("/api/v1/rates?expired=true".to_owned(), rate),
        ("/api/v1/rates.csv".to_owned(), rate),
        (format!("/declarations/{id}/retours"), "CRM PAS"),
        (format!("/api/v1/deposits/{id}/returns"), "crm_identifier"),
        ("/api/v1/board".to_owned(), "crm"),
        ("/echeancier".to_owned(), "CRM PAS"),
        ("/".to_owned(), "Échéances DSN"),
    ] {
        let r = s.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(shows), "{shows} in {path}");
    }
    h.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("web console listening") && logs.contains("rpc=\"ListRates\""),
        "the console's logs were captured"
    );
    assert!(
        logs.contains("return listed"),
        "the orchestrator's following was captured"
    );
    for nir in &nirs {
        assert!(!logs.contains(nir.as_str()), "a NIR appears in the logs");
    }
    for value in [rate, future_rate, french.as_str()] {
        assert_eq!(
            iea_stack_testkit::logs::standalone(&logs, value),
            None,
            "personal data « {value} » appears in the logs"
        );
    }
}
