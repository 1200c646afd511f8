//! `GET /lister-depots/1.0/{debut}[/{fin}]` over real HTTPS: the 60-minute window, its
//! errors, and only the token's declarant's deposits.

mod support;

use reqwest::StatusCode;
use support::*;
use time::{Duration, OffsetDateTime};

const VALID_SIRET: &str = "78214563500010";

/// The `<idflux>` of each `<depot>` of a `<depots>` answer, with its date and status.
fn depots(xml: &str) -> Vec<(String, String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "depots");
    doc.descendants()
        .filter(|n| n.has_tag_name("depot"))
        .map(|d| {
            let t = |name: &str| {
                d.children()
                    .find(|c| c.has_tag_name(name))
                    .and_then(|c| c.text())
                    .unwrap_or_default()
                    .to_owned()
            };
            (t("idflux"), t("date"), t("statut"))
        })
        .collect()
}

#[tokio::test]
async fn the_listing_shows_only_the_declarants_own_deposits_in_the_window() {
    let mock = Mock::start(|_| {}).await;
    let simulator = mock.token(SIMULATOR).await;
    let dupont = mock.token(DUPONT).await;
    let mine = mock
        .deposit_ok(&simulator, &dsn(VALID_SIRET, 1, false))
        .await;
    let theirs = mock.deposit_ok(&dupont, &dsn(VALID_SIRET, 1, true)).await;
    let now = OffsetDateTime::now_utc();
    let path = format!(
        "/lister-depots/1.0/{}/{}",
        mock.compact(now - Duration::minutes(30)),
        mock.compact(now + Duration::minutes(30))
    );
    let resp = mock.get_business(&path, &simulator).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (headers, body) = read_body(resp).await;
    assert_eq!(headers["accept-ranges"], "minutes=0-60");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_expires_in(&headers, 120);
    let listed = depots(&body);
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0].0, mine);
    assert_eq!(listed[0].2, "OK");
    assert_eq!(listed[0].1.len(), 14);
    assert_eq!(text_of(&body, "siret"), SIMULATOR.0);
    // The date is the deposit's, in the mock's zone, within the window.
    let at = mock.time_zone.parse_compact(&listed[0].1).unwrap();
    assert!((at - now).abs() < Duration::seconds(30));

    let resp = mock.get_business(&path, &dupont).await;
    let (_, body) = read_body(resp).await;
    let listed = depots(&body);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, theirs);
    assert_eq!(text_of(&body, "nom"), "DUPONT");

    // Without fin: up to now.
    let resp = mock
        .get_business(
            &format!(
                "/lister-depots/1.0/{}",
                mock.compact(now - Duration::minutes(10))
            ),
            &simulator,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(depots(&read_body(resp).await.1).len(), 1);

    // A window before the deposits: empty.
    let resp = mock
        .get_business(
            &format!(
                "/lister-depots/1.0/{}/{}",
                mock.compact(now - Duration::minutes(90)),
                mock.compact(now - Duration::minutes(40))
            ),
            &simulator,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(read_body(resp).await.1, "<depots></depots>");
    mock.stop().await;
}

#[tokio::test]
async fn a_window_of_exactly_sixty_minutes_is_fine_and_a_wider_one_gets_429() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let debut = OffsetDateTime::now_utc() - Duration::hours(5);
    let get = |fin: Duration| {
        let path = format!(
            "/lister-depots/1.0/{}/{}",
            mock.compact(debut),
            mock.compact(debut + fin)
        );
        let token = token.clone();
        let mock = &mock;
        async move { mock.get_business(&path, &token).await }
    };
    let ok = get(Duration::minutes(60)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["accept-ranges"], "minutes=0-60");
    for wider in [
        Duration::minutes(60) + Duration::seconds(1),
        Duration::minutes(61),
        Duration::days(1),
    ] {
        let resp = get(wider).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "{wider}");
        assert_eq!(resp.bytes().await.unwrap().len(), 0);
    }
    // Without fin the window ends now: 61 minutes ago is too wide.
    let resp = mock
        .get_business(
            &format!(
                "/lister-depots/1.0/{}",
                mock.compact(OffsetDateTime::now_utc() - Duration::minutes(61))
            ),
            &token,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let stats = mock.get_admin("/__admin/stats").await;
    let listing = &stats["services"]["/lister-depots/1.0/"];
    assert_eq!(listing["requests"], 5);
    assert_eq!(listing["by_status"]["200"], 1);
    assert_eq!(listing["by_status"]["429"], 4);
    mock.stop().await;
}

#[tokio::test]
async fn unparsable_times_get_422_before_the_token_and_the_encoding_is_checked() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let good = mock.compact(OffsetDateTime::now_utc() - Duration::minutes(5));
    for path in [
        "/lister-depots/1.0/2026-11-01".to_owned(),
        "/lister-depots/1.0/20261301000000".to_owned(),
        "/lister-depots/1.0/20261131000000".to_owned(),
        "/lister-depots/1.0/2026110100000".to_owned(),
        format!("/lister-depots/1.0/{good}/demain"),
    ] {
        // Even without a token: the dates are read first.
        let resp = mock.get_business(&path, "").await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    let path = format!("/lister-depots/1.0/{good}");
    let resp = mock.get_business(&path, "").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(www_authenticate(&resp).as_deref(), Some(REALM_INVALID));
    let resp = mock
        .client
        .get(format!("{}{path}", mock.https))
        .header("accept-encoding", "br")
        .header("authorization", format!("DSNLogin jeton={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    // Without Accept-Encoding the listing comes plain.
    let resp = mock
        .client
        .get(format!("{}{path}", mock.https))
        .header("authorization", format!("DSNLogin jeton={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("content-encoding").is_none());
    assert_eq!(resp.text().await.unwrap(), "<depots></depots>");
    mock.stop().await;
}

#[tokio::test]
async fn the_zone_and_the_window_are_settings() {
    let mock = Mock::start(|s| {
        s.time_zone = iea_mock_net_entreprises::clock::TimeZone::Utc;
        s.listing_window_minutes = 10;
    })
    .await;
    let token = mock.token(SIMULATOR).await;
    let idflux = mock.deposit_ok(&token, &dsn(VALID_SIRET, 1, false)).await;
    let now = OffsetDateTime::now_utc();
    let utc = |at: OffsetDateTime| {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    };
    let resp = mock
        .get_business(
            &format!(
                "/lister-depots/1.0/{}/{}",
                utc(now - Duration::minutes(5)),
                utc(now + Duration::minutes(5))
            ),
            &token,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["accept-ranges"], "minutes=0-10");
    let (_, body) = read_body(resp).await;
    assert_eq!(depots(&body)[0].0, idflux);
    let resp = mock
        .get_business(
            &format!(
                "/lister-depots/1.0/{}/{}",
                utc(now - Duration::minutes(6)),
                utc(now + Duration::minutes(5))
            ),
            &token,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    mock.stop().await;
}

#[tokio::test]
async fn a_lost_answer_deposit_is_found_by_the_listing_over_the_attempts_window() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    mock.set_faults(serde_json::json!({"lost_answer": 1})).await;
    let started = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    assert!(
        mock.deposit_request(&mock.https, &token, &dsn(VALID_SIRET, 1, false))
            .send()
            .await
            .is_err()
    );
    let resp = mock
        .get_business(
            &format!("/lister-depots/1.0/{}", mock.compact(started)),
            &token,
        )
        .await;
    let (_, body) = read_body(resp).await;
    let listed = depots(&body);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].0,
        mock.deposits().await[0]["idflux"].as_str().unwrap()
    );
    mock.stop().await;
}
