//! `POST /deposer-dsn/1.0/` over real HTTPS: the kit's order of checks, AEE and ARE,
//! tokens, the deposit faults, and what the control API shows of each deposit.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use support::*;

const VALID_SIRET: &str = "78214563500010";

fn assert_idflux(idflux: &str) {
    assert_eq!(idflux.len(), 23, "{idflux}");
    assert!(
        idflux.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{idflux}"
    );
}

#[tokio::test]
async fn a_deposit_gets_a_gzipped_aee_with_a_fresh_idflux_echoing_test_or_real() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let file = dsn(VALID_SIRET, 3, false);
    let resp = mock.deposit(&token, &file).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (headers, body) = read_body(resp).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    assert_eq!(headers["cache-control"], "no-cache");
    assert_expires_in(&headers, 120);

    let doc = roxmltree::Document::parse(&body).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "rapport");
    assert_eq!(root.tag_name().namespace(), Some("http://www.gip-mds.fr/"));
    assert_eq!(root.attribute("type"), Some("AEE"));
    assert_eq!(root.attribute("profil"), Some("DSN"));
    let declarant = doc
        .descendants()
        .find(|n| n.has_tag_name("declarant"))
        .unwrap();
    let child = |name: &str| {
        declarant
            .children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(str::to_owned)
    };
    assert_eq!(child("siret").as_deref(), Some(SIMULATOR.0));
    assert_eq!(child("nom").as_deref(), Some("declarant"));
    assert_eq!(child("prenom").as_deref(), Some("declarant"));
    let idflux = text_of(&body, "idflux");
    assert_idflux(&idflux);
    assert_eq!(text_of(&body, "essai_reel"), "01");
    assert_eq!(text_of(&body, "envoi_etat"), "OK");
    assert_eq!(text_of(&body, "emetteur_siret"), VALID_SIRET);
    assert_eq!(text_of(&body, "date_enregistrement").len(), 10);
    assert_eq!(text_of(&body, "heure_reception").len(), 8);

    // A real declaration echoes 02; each deposit has its own idflux.
    let real = mock.deposit(&token, &dsn(VALID_SIRET, 2, true)).await;
    let (_, real_body) = read_body(real).await;
    assert_eq!(text_of(&real_body, "essai_reel"), "02");
    let second = text_of(&real_body, "idflux");
    assert_idflux(&second);
    assert_ne!(idflux, second);

    // Without Accept-Encoding the AEE comes plain.
    let plain = mock
        .client
        .post(format!("{}/deposer-dsn/1.0/", mock.https))
        .header("content-type", "text/plain; charset=ISO-8859-1")
        .header("content-encoding", "gzip")
        .header("authorization", format!("DSNLogin jeton={token}"))
        .body(gzip(&file))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get("content-encoding").is_none());
    let text = plain.text().await.unwrap();
    assert_idflux(&text_of(&text, "idflux"));
    assert_eq!(mock.deposits().await.len(), 3);
    mock.stop().await;
}

#[tokio::test]
async fn the_control_api_shows_each_deposit_with_its_digest_and_declaration() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(DUPONT).await;
    let file = dsn(VALID_SIRET, 4, true);
    let idflux = mock.deposit_ok(&token, &file).await;
    // A file that starts like a DSN but that iea-dsn cannot read: accepted (as the real
    // service does), its declaration unknown.
    let odd = b"S10.G00.00.001,'logiciel'\nS10.G00.00.005,'01'\n".to_vec();
    let odd_idflux = mock.deposit_ok(&token, &odd).await;

    let deposits = mock.deposits().await;
    assert_eq!(deposits.len(), 2);
    let d = &deposits[0];
    assert_eq!(d["idflux"], idflux.as_str());
    assert_eq!(d["siret"], DUPONT.0);
    assert_eq!(d["nom"], "DUPONT");
    assert_eq!(d["prenom"], "Marie");
    assert_eq!(d["status"], "OK");
    assert_eq!(d["bytes"], file.len() as u64);
    let digest: String = Sha256::digest(&file)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(d["sha256"], digest.as_str());
    assert_eq!(d["essai_reel"], "02");
    assert_eq!(d["siren"], &VALID_SIRET[..9]);
    assert_eq!(d["nic"], &VALID_SIRET[9..]);
    assert_eq!(d["month"], "2026-11");
    let received = time::OffsetDateTime::parse(
        d["received_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((time::OffsetDateTime::now_utc() - received).abs() < time::Duration::seconds(30));

    let o = &deposits[1];
    assert_eq!(o["idflux"], odd_idflux.as_str());
    assert_eq!(o["essai_reel"], "01");
    assert_eq!(o["bytes"], odd.len() as u64);
    for field in ["siren", "nic", "month"] {
        assert!(o[field].is_null(), "{field}: {o}");
    }
    let (status, one) = mock
        .admin(Method::GET, &format!("/__admin/deposits/{idflux}"), None)
        .await;
    assert_eq!((status, &one), (StatusCode::OK, d));
    let (status, unknown) = mock
        .admin(Method::GET, "/__admin/deposits/inconnu", None)
        .await;
    assert_eq!(
        (status, unknown["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    mock.stop().await;
}

#[tokio::test]
async fn each_check_answers_in_the_kit_order_and_refusals_register_nothing() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let file = dsn(VALID_SIRET, 1, false);
    let url = format!("{}/deposer-dsn/1.0/", mock.https);
    // Each case breaks its own check and every later one: the status shows which check
    // came first.
    struct Case {
        encoding: Option<&'static str>,
        content_type: Option<&'static str>,
        accept: Option<&'static str>,
        body: Vec<u8>,
        token: Option<&'static str>,
        expected: StatusCode,
    }
    let cases = [
        Case {
            encoding: None,
            content_type: Some("application/json"),
            accept: Some("deflate"),
            body: vec![],
            token: None,
            expected: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            encoding: Some("GZIP"),
            content_type: Some("text/plain"),
            accept: None,
            body: gzip(&file),
            token: Some("valid"),
            expected: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            encoding: Some("gzip"),
            content_type: Some("application/octet-stream"),
            accept: Some("deflate"),
            body: vec![],
            token: None,
            expected: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            encoding: Some("gzip"),
            content_type: None,
            accept: None,
            body: gzip(&file),
            token: Some("valid"),
            expected: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            encoding: Some("gzip"),
            content_type: Some("text/plain"),
            accept: Some("deflate, br"),
            body: vec![],
            token: None,
            expected: StatusCode::NOT_ACCEPTABLE,
        },
        Case {
            encoding: Some("gzip"),
            content_type: Some("text/plain"),
            accept: Some("gzip"),
            body: vec![],
            token: None,
            expected: StatusCode::UNPROCESSABLE_ENTITY,
        },
        Case {
            encoding: Some("gzip"),
            content_type: Some("text/plain"),
            accept: Some("gzip"),
            body: file.clone(),
            token: None,
            expected: StatusCode::BAD_REQUEST,
        },
        Case {
            encoding: Some("gzip"),
            content_type: Some("text/plain"),
            accept: Some("gzip"),
            body: gzip(b"pas une DSN"),
            token: None,
            expected: StatusCode::UNAUTHORIZED,
        },
        Case {
            encoding: Some("gzip"),
            content_type: Some("text/plain"),
            accept: Some("gzip"),
            body: gzip(b"S10.G00.00.001,'kaboom'\n"),
            token: Some("valid"),
            expected: StatusCode::INTERNAL_SERVER_ERROR,
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let mut req = mock.client.post(&url).body(case.body);
        for (name, value) in [
            ("content-encoding", case.encoding),
            ("content-type", case.content_type),
            ("accept-encoding", case.accept),
        ] {
            if let Some(v) = value {
                req = req.header(name, v);
            }
        }
        if case.token.is_some() {
            req = req.header("authorization", format!("DSNLogin jeton={token}"));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), case.expected, "case {i}");
        if case.expected == StatusCode::UNAUTHORIZED {
            assert_eq!(www_authenticate(&resp).as_deref(), Some(REALM_INVALID));
        }
        assert_eq!(resp.bytes().await.unwrap().len(), 0, "case {i}: empty body");
    }
    assert!(mock.deposits().await.is_empty(), "nothing registered");

    // A file that is not a DSN, with a valid token: 422 with an ARE, registered as KO.
    let resp = mock.deposit(&token, b"Bonjour").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (headers, body) = read_body(resp).await;
    assert!(
        headers.get("cache-control").is_none(),
        "only a 200 says no-cache"
    );
    let doc = roxmltree::Document::parse(&body).unwrap();
    assert_eq!(doc.root_element().attribute("type"), Some("ARE"));
    assert_eq!(text_of(&body, "envoi_etat"), "KO");
    assert_eq!(text_of(&body, "essai_reel"), "");
    assert_eq!(text_of(&body, "code"), "B1-105-15");
    assert!(!text_of(&body, "message").is_empty());
    assert!(
        !doc.descendants()
            .any(|n| n.has_tag_name("date_enregistrement")),
        "an ARE has no registration date"
    );
    let idflux = text_of(&body, "idflux");
    assert_idflux(&idflux);
    let deposits = mock.deposits().await;
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0]["idflux"], idflux.as_str());
    assert_eq!(deposits[0]["status"], "KO");
    assert_eq!(deposits[0]["anomaly"]["code"], "B1-105-15");

    let stats = mock.get_admin("/__admin/stats").await;
    let deposit = &stats["services"]["/deposer-dsn/1.0/"];
    assert_eq!(deposit["requests"], 10);
    assert_eq!(deposit["by_status"]["415"], 4);
    assert_eq!(deposit["by_status"]["406"], 1);
    assert_eq!(deposit["by_status"]["422"], 2);
    assert_eq!(deposit["by_status"]["400"], 1);
    assert_eq!(deposit["by_status"]["401"], 1);
    assert_eq!(deposit["by_status"]["500"], 1);
    assert_eq!(stats["deposits_registered"], 1);
    assert_eq!(stats["services"]["/authentifier/1.0/"]["requests"], 1);
    mock.stop().await;
}

#[tokio::test]
async fn reject_deposits_answers_an_are_with_the_given_anomaly_until_cleared() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let set = mock
        .set_faults(json!({
            "reject_deposits": {"code": "B1-999-01", "message": "Fichier <refusé> & rejeté"}
        }))
        .await;
    assert_eq!(set["reject_deposits"]["code"], "B1-999-01");
    let shown = mock.get_admin("/__admin/faults").await;
    assert_eq!(shown, set);
    let resp = mock.deposit(&token, &dsn(VALID_SIRET, 1, true)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, body) = read_body(resp).await;
    assert_eq!(text_of(&body, "code"), "B1-999-01");
    assert_eq!(text_of(&body, "message"), "Fichier <refusé> & rejeté");
    assert_eq!(text_of(&body, "envoi_etat"), "KO");
    let deposits = mock.deposits().await;
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0]["status"], "KO");
    assert_eq!(
        deposits[0]["anomaly"]["message"],
        "Fichier <refusé> & rejeté"
    );

    mock.set_faults(json!({"mode": "none"})).await;
    let resp = mock.deposit(&token, &dsn(VALID_SIRET, 1, true)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    mock.stop().await;
}

#[tokio::test]
async fn expired_unknown_and_unregistered_tokens_get_their_realms() {
    let mock = Mock::start(|s| s.token_lifetime_secs = 600).await;
    let file = dsn(VALID_SIRET, 1, false);
    let token = mock.token(SIMULATOR).await;
    assert_eq!(mock.deposit(&token, &file).await.status(), StatusCode::OK);

    for bad in ["", "jeton-jamais-donné", "YWJj"] {
        let resp = mock.deposit(bad, &file).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(www_authenticate(&resp).as_deref(), Some(REALM_INVALID));
    }
    let other_scheme = mock
        .client
        .post(format!("{}/deposer-dsn/1.0/", mock.https))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .header("authorization", format!("Bearer {token}"))
        .body(gzip(&file))
        .send()
        .await
        .unwrap();
    assert_eq!(
        www_authenticate(&other_scheme).as_deref(),
        Some(REALM_INVALID)
    );

    // The clock moves past the lifetime: expired.
    let (status, clock) = mock
        .admin(
            Method::POST,
            "/__admin/clock",
            Some(json!({"advance_secs": 601})),
        )
        .await;
    assert_eq!(
        (status, clock["offset_secs"].as_i64()),
        (StatusCode::OK, Some(601))
    );
    let resp = mock.deposit(&token, &file).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(www_authenticate(&resp).as_deref(), Some(REALM_EXPIRED));

    // A new token works; the control API expires it at once.
    let fresh = mock.token(SIMULATOR).await;
    assert_eq!(mock.deposit(&fresh, &file).await.status(), StatusCode::OK);
    let (status, expired) = mock
        .admin(Method::POST, "/__admin/tokens/expire", Some(json!({})))
        .await;
    assert_eq!(
        (status, expired["expired"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let resp = mock.deposit(&fresh, &file).await;
    assert_eq!(www_authenticate(&resp).as_deref(), Some(REALM_EXPIRED));

    // Registration withdrawn after the token was given: not registered.
    let dupont = mock.token(DUPONT).await;
    let (status, _) = mock
        .admin(
            Method::PATCH,
            "/__admin/declarants/2",
            Some(json!({"registered": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = mock.deposit(&dupont, &file).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        www_authenticate(&resp).as_deref(),
        Some(REALM_NOT_REGISTERED)
    );
    let (status, _) = mock
        .admin(
            Method::POST,
            "/__admin/tokens/expire",
            Some(json!({"declarant": 99})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(
        mock.deposits().await.len(),
        2,
        "refused deposits are not registered"
    );
    mock.stop().await;
}

#[tokio::test]
async fn lost_answer_registers_the_deposit_once_and_cuts_the_connection() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let file = dsn(VALID_SIRET, 2, false);
    // Over HTTPS (HTTP/2 after ALPN: the stream is reset) and over plain HTTP/1.1 (the
    // connection is closed): no answer either way.
    for (n, base) in [mock.https.clone(), mock.http.clone()].iter().enumerate() {
        let set = mock.set_faults(json!({"lost_answer": 1})).await;
        assert_eq!(set["lost_answer"], 1);
        let result = mock.deposit_request(base, &token, &file).send().await;
        let err = result.expect_err("the answer is lost");
        assert!(!err.is_timeout() && !err.is_status(), "{err:?}");
        let deposits = mock.deposits().await;
        assert_eq!(deposits.len(), n + 1, "registered once: {deposits:?}");
        assert_eq!(deposits[n]["status"], "OK");
        assert_eq!(mock.get_admin("/__admin/faults").await["lost_answer"], 0);
    }
    // The fault was for one deposit: the next one is answered.
    let idflux = mock.deposit_ok(&token, &file).await;
    assert_eq!(mock.deposits().await[2]["idflux"], idflux.as_str());
    let stats = mock.get_admin("/__admin/stats").await;
    assert_eq!(stats["services"]["/deposer-dsn/1.0/"]["cut"], 2);
    assert_eq!(
        stats["services"]["/deposer-dsn/1.0/"]["by_status"]["200"],
        1
    );
    assert_eq!(stats["deposits_registered"], 3);
    mock.stop().await;
}

#[tokio::test]
async fn lost_request_cuts_the_connection_and_registers_nothing() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let file = dsn(VALID_SIRET, 2, false);
    mock.set_faults(json!({"lost_request": true})).await;
    for base in [&mock.https, &mock.http] {
        let err = mock
            .deposit_request(base, &token, &file)
            .send()
            .await
            .expect_err("the request is lost");
        assert!(!err.is_timeout(), "{err:?}");
    }
    assert!(mock.deposits().await.is_empty());
    assert_eq!(
        mock.get_admin("/__admin/faults").await["lost_request"],
        true
    );
    mock.set_faults(json!({"lost_request": false})).await;
    mock.deposit_ok(&token, &file).await;
    assert_eq!(mock.deposits().await.len(), 1);
    let stats = mock.get_admin("/__admin/stats").await;
    assert_eq!(stats["services"]["/deposer-dsn/1.0/"]["cut"], 2);
    assert_eq!(stats["deposits_registered"], 1);

    // The same fault set in process, for the next deposit only.
    mock.control
        .set_all_faults(iea_mock_net_entreprises::AllFaults {
            lost_request: iea_mock_net_entreprises::Times::Next(1),
            ..Default::default()
        });
    assert!(
        mock.deposit_request(&mock.https, &token, &file)
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        mock.control.all_faults().lost_request,
        iea_mock_net_entreprises::Times::Next(0)
    );
    mock.deposit_ok(&token, &file).await;
    assert_eq!(mock.deposits().await.len(), 2);
    mock.stop().await;
}

#[tokio::test]
async fn deposits_past_the_size_limits_get_413_and_are_not_registered() {
    let mock = Mock::start(|s| {
        s.max_deposit_bytes = 4_096;
        s.max_dsn_bytes = 2_000;
    })
    .await;
    let token = mock.token(SIMULATOR).await;
    let small = dsn(VALID_SIRET, 1, false);
    assert!(small.len() < 2_000, "{}", small.len());
    assert_eq!(mock.deposit(&token, &small).await.status(), StatusCode::OK);
    // Compresses under 4 KiB, decompresses past 2 000 bytes.
    let big = dsn(VALID_SIRET, 8, false);
    assert!(big.len() > 2_000 && gzip(&big).len() < 4_096);
    assert_eq!(
        mock.deposit(&token, &big).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Past 4 KiB gzipped.
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let resp = mock
        .client
        .post(format!("{}/deposer-dsn/1.0/", mock.https))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .header("authorization", format!("DSNLogin jeton={token}"))
        .body(noise)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(mock.deposits().await.len(), 1);
    mock.stop().await;
}

#[tokio::test]
async fn the_kit_faults_still_apply_to_the_deposit() {
    let mock = Mock::start(|_| {}).await;
    let token = mock.token(SIMULATOR).await;
    let file = dsn(VALID_SIRET, 1, false);
    mock.set_faults(json!({"mode": "unavailable"})).await;
    let resp = mock.deposit(&token, &file).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    mock.set_faults(json!({"mode": "reset"})).await;
    // A new connection (a kept-alive one would still be served).
    let fresh = reqwest::Client::new()
        .post(format!("{}/deposer-dsn/1.0/", mock.http))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .header("authorization", format!("DSNLogin jeton={token}"))
        .body(gzip(&file))
        .send()
        .await;
    assert!(fresh.is_err(), "{fresh:?}");
    let (status, body) = mock
        .admin(
            Method::POST,
            "/__admin/faults",
            Some(json!({"lost_answers": 1})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    assert_eq!(
        mock.get_admin("/__admin/faults").await["mode"],
        "reset",
        "unchanged"
    );
    mock.set_faults(json!({"mode": "none"})).await;
    assert!(mock.deposits().await.is_empty());
    mock.deposit_ok(&token, &file).await;
    mock.stop().await;
}
