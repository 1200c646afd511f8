//! Returns over real HTTPS: natures 10, 11 and 94 published after their delays, the
//! conformity checks, the CRM's rate table, overwriting and purging, and the three return
//! services with their errors.

mod support;

use iea_dsn::{Dsn, Month, SampleSpec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use time::{Duration, OffsetDateTime};

const VALID_SIRET: &str = "78214563500010";

/// One `<retour>` of a listing.
#[derive(Debug, Clone)]
struct Listed {
    flux: String,
    nature: String,
    statut: String,
    id: String,
    url: String,
    publication: String,
}

fn listed(xml: &str) -> Vec<Listed> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "retours");
    let mut out = Vec::new();
    for flux in doc.descendants().filter(|n| n.has_tag_name("flux")) {
        let flux_id = flux
            .children()
            .find(|c| c.has_tag_name("id"))
            .and_then(|c| c.text())
            .unwrap()
            .to_owned();
        for r in flux.children().filter(|c| c.has_tag_name("retour")) {
            let t = |name: &str| {
                r.children()
                    .find(|c| c.has_tag_name(name))
                    .and_then(|c| c.text())
                    .unwrap_or_default()
                    .to_owned()
            };
            out.push(Listed {
                flux: flux_id.clone(),
                nature: t("nature"),
                statut: t("statut"),
                id: t("id"),
                url: t("url"),
                publication: t("publication"),
            });
        }
    }
    out
}

async fn list_flux(mock: &Mock, token: &str, idflux: &str) -> Vec<Listed> {
    let resp = mock
        .get_business(&format!("/lister-retours-flux/1.0/{idflux}"), token)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (headers, body) = read_body(resp).await;
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers.contains_key("expires"));
    listed(&body)
}

/// Downloads a return at the `url` its listing gave.
async fn download(mock: &Mock, token: &str, url: &str) -> (StatusCode, String) {
    let resp = mock
        .client
        .get(url)
        .header("accept-encoding", "gzip")
        .header("authorization", format!("DSNLogin jeton={token}"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, read_body(resp).await.1)
}

fn of_nature<'a>(returns: &'a [Listed], nature: &str) -> &'a Listed {
    returns
        .iter()
        .find(|r| r.nature == nature)
        .unwrap_or_else(|| panic!("no nature {nature} in {returns:?}"))
}

async fn publish(mock: &Mock) -> u64 {
    let (status, body) = mock
        .admin(Method::POST, "/__admin/returns/publish", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["published"].as_u64().unwrap()
}

async fn advance(mock: &Mock, secs: i64) {
    let (status, _) = mock
        .admin(
            Method::POST,
            "/__admin/clock",
            Some(json!({ "advance_secs": secs })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// `dsn` (ISO-8859-1) with the value of the first line of `code` replaced.
fn with_value(dsn: &[u8], code: &str, value: &str) -> Vec<u8> {
    let prefix = format!("{code},");
    let mut done = false;
    let mut out = Vec::new();
    for line in dsn.split_inclusive(|b| *b == b'\n') {
        if !done && line.starts_with(prefix.as_bytes()) {
            done = true;
            out.extend_from_slice(format!("{code},'{value}'\n").as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    assert!(done, "{code}");
    out
}

fn no_due_date_wait(s: &mut iea_mock_net_entreprises::Settings) {
    s.returns.aee_delay_secs = 60;
    s.returns.conformity_delay_secs = 600;
    s.returns.crm_delay_secs = 3_600;
    s.returns.crm_after_due_date = false;
}

#[tokio::test]
async fn returns_appear_after_their_delays_and_are_downloaded_at_their_url() {
    let mock = Mock::start(no_due_date_wait).await;
    let token = mock.token(SIMULATOR).await;
    let file = dsn(VALID_SIRET, 5, false);
    let idflux = mock.deposit_ok(&token, &file).await;
    assert!(list_flux(&mock, &token, &idflux).await.is_empty());
    let resp = mock
        .get_business(&format!("/lister-retours-flux/1.0/{idflux}"), &token)
        .await;
    let (headers, body) = read_body(resp).await;
    assert_eq!(body, "<retours></retours>");
    assert_expires_in(&headers, 120);

    advance(&mock, 61).await;
    // `Date` and `Expires` both follow the moved clock: still two minutes apart.
    let resp = mock
        .get_business(&format!("/lister-retours-flux/1.0/{idflux}"), &token)
        .await;
    let (headers, _) = read_body(resp).await;
    assert_expires_in(&headers, 120);
    let date = httpdate::parse_http_date(headers["date"].to_str().unwrap()).unwrap();
    let ahead = date
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .as_secs();
    assert!(
        (55..=61).contains(&ahead),
        "Date {ahead} s ahead of real time"
    );
    let returns = list_flux(&mock, &token, &idflux).await;
    assert_eq!(returns.len(), 1, "{returns:?}");
    let aee = of_nature(&returns, "10");
    assert_eq!(
        (aee.flux.as_str(), aee.statut.as_str()),
        (idflux.as_str(), "OK")
    );
    assert!(aee.id.len() <= 10 && !aee.id.is_empty());
    assert_eq!(
        aee.url,
        format!("{}/telecharger-retour/1.0/{idflux}/{}", mock.https, aee.id)
    );
    assert_eq!(aee.publication.len(), 14);
    let (status, doc) = download(&mock, &token, &aee.url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&doc, "idflux"), idflux);
    assert_eq!(text_of(&doc, "envoi_etat"), "OK");

    advance(&mock, 600).await;
    let returns = list_flux(&mock, &token, &idflux).await;
    assert_eq!(returns.len(), 2);
    let conformity = of_nature(&returns, "11");
    assert_eq!(conformity.statut, "OK");
    let (status, doc) = download(&mock, &token, &conformity.url).await;
    assert_eq!(status, StatusCode::OK);
    let parsed = roxmltree::Document::parse(&doc).unwrap();
    assert_eq!(
        parsed.root_element().attribute("type"),
        Some("Certificat de conformité")
    );
    assert_eq!(text_of(&doc, "etat"), "OK");
    assert_eq!(text_of(&doc, "SIREN"), &VALID_SIRET[..9]);

    // The CRM is due in an hour; the control API publishes it now.
    assert_eq!(publish(&mock).await, 1);
    assert_eq!(publish(&mock).await, 0);
    let returns = list_flux(&mock, &token, &idflux).await;
    let crm = of_nature(&returns, "94");
    let (status, doc) = download(&mock, &token, &crm.url).await;
    assert_eq!(status, StatusCode::OK);
    let parsed = roxmltree::Document::parse(&doc).unwrap();
    let root = parsed.root_element();
    assert_eq!(root.attribute("type"), Some("CRM nominatif"));
    let identifiant = root.attribute("identifiant").unwrap();
    assert_eq!(identifiant.len(), 18);
    assert!(identifiant.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(text_of(&doc, "salaries"), "5");
    let dsn = Dsn::parse(&file).unwrap();
    let salaries: Vec<_> = parsed
        .descendants()
        .filter(|n| n.has_tag_name("salarie") && n.attribute("origine").is_none())
        .collect();
    assert_eq!(salaries.len(), 5);
    for (s, e) in salaries.iter().zip(dsn.employees()) {
        let child = |name: &str| {
            s.children()
                .find(|c| c.has_tag_name(name))
                .and_then(|c| c.text())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(Some(child("NIR")), e.nir.clone());
        assert_eq!(Some(child("matricule")), e.matricule.clone());
        let taux = child("taux_imposition_PAS");
        let (units, decimals) = taux.split_once('.').unwrap();
        assert!(
            (1..=2).contains(&units.len()) && decimals.len() == 2,
            "{taux}"
        );
    }
    // Each document served is counted for its return.
    assert_eq!(download(&mock, &token, &aee.url).await.0, StatusCode::OK);
    let stats = mock.get_admin("/__admin/stats").await;
    let downloads = &stats["downloads"];
    assert_eq!(downloads[format!("{idflux}/{}", aee.id)], 2, "{stats:#}");
    assert_eq!(downloads[format!("{idflux}/{}", conformity.id)], 1);
    assert_eq!(downloads[format!("{idflux}/{}", crm.id)], 1);
    assert_eq!(downloads.as_object().unwrap().len(), 3);
    mock.stop().await;
}

#[tokio::test]
async fn a_wrong_pas_amount_gives_a_ko_conformity_naming_rubric_009_and_its_line() {
    let mock = Mock::start(no_due_date_wait).await;
    let token = mock.token(SIMULATOR).await;
    let file = with_value(&dsn(VALID_SIRET, 3, true), "S21.G00.50.009", "98765.43");
    let parsed = Dsn::parse(&file).unwrap();
    let first = &parsed.employees()[0].payments[0];
    let line = parsed.rubric_in(first.line, 9).unwrap().line;
    let idflux = mock.deposit_ok(&token, &file).await;
    publish(&mock).await;
    let returns = list_flux(&mock, &token, &idflux).await;
    let conformity = of_nature(&returns, "11");
    assert_eq!(conformity.statut, "KO");
    let (status, doc) = download(&mock, &token, &conformity.url).await;
    assert_eq!(status, StatusCode::OK);
    let parsed_doc = roxmltree::Document::parse(&doc).unwrap();
    assert_eq!(
        parsed_doc.root_element().attribute("type"),
        Some("Bilan d'anomalies")
    );
    assert_eq!(text_of(&doc, "etat"), "KO");
    let anomaly = parsed_doc
        .descendants()
        .find(|n| {
            n.has_tag_name("rubrique_declenchante")
                && n.children()
                    .any(|c| c.has_tag_name("identifiant") && c.text() == Some("S21.G00.50.009"))
        })
        .expect("an anomaly on S21.G00.50.009");
    let t = |name: &str| {
        anomaly
            .children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .unwrap()
            .to_owned()
    };
    assert_eq!(t("ligne"), line.to_string());
    assert_eq!(t("valeur"), "98765.43");
    let description = anomaly
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .children()
        .find(|c| c.has_tag_name("description"))
        .unwrap();
    let code = description
        .children()
        .find(|c| c.has_tag_name("code"))
        .and_then(|c| c.text())
        .unwrap();
    assert!(code.starts_with("CCH-PAS-0"), "{code}");
    assert!(
        description
            .children()
            .any(|c| c.has_tag_name("categorie") && c.text() == Some("bloquant"))
    );
    mock.stop().await;
}

#[tokio::test]
async fn the_crm_takes_the_rate_table_and_names_another_rate_applied_tst01() {
    let mock = Mock::start(no_due_date_wait).await;
    let token = mock.token(DUPONT).await;
    let file = dsn(VALID_SIRET, 12, false);
    let parsed = Dsn::parse(&file).unwrap();
    // Two employees whose rate applies (type other than 99).
    let applied: Vec<(String, String)> = parsed
        .employees()
        .iter()
        .filter_map(|e| {
            let p = e.payments.first()?;
            (p.rate_type.as_deref() != Some("99"))
                .then(|| (e.nir.clone().unwrap(), p.pas_rate.clone().unwrap()))
        })
        .take(2)
        .collect();
    assert_eq!(applied.len(), 2, "the sample has employees subject to PAS");
    let (same_nir, same_rate) = &applied[0];
    let (other_nir, other_rate) = &applied[1];
    let different = if other_rate == "42.00" {
        "41.00"
    } else {
        "42.00"
    };
    for (nir, body) in [
        (same_nir, json!({"taux": same_rate})),
        (
            other_nir,
            json!({"taux": different, "taux_futur": "3.10", "date_effet": "2027-02-01"}),
        ),
    ] {
        let (status, answer) = mock
            .admin(
                Method::PUT,
                &format!("/__admin/pas-rates/{nir}"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    for bad in [
        json!({"taux": "7,50"}),
        json!({"taux": "7.50", "taux_futur": "8.00"}),
        json!({"taux": "7.50", "inconnu": 1}),
    ] {
        let (status, answer) = mock
            .admin(
                Method::PUT,
                &format!("/__admin/pas-rates/{same_nir}"),
                Some(bad),
            )
            .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_input"))
        );
    }
    let table = mock.get_admin("/__admin/pas-rates").await;
    assert_eq!(table[same_nir.as_str()]["taux"], same_rate.as_str());

    let idflux = mock.deposit_ok(&token, &file).await;
    publish(&mock).await;
    let returns = list_flux(&mock, &token, &idflux).await;
    let (status, doc) = download(&mock, &token, &of_nature(&returns, "94").url).await;
    assert_eq!(status, StatusCode::OK);
    let crm = roxmltree::Document::parse(&doc).unwrap();
    let salarie = |nir: &str| {
        crm.descendants()
            .find(|n| {
                n.has_tag_name("salarie")
                    && n.attribute("origine").is_none()
                    && n.children()
                        .any(|c| c.has_tag_name("NIR") && c.text() == Some(nir))
            })
            .unwrap()
    };
    let rate_of = |nir: &str| {
        salarie(nir)
            .children()
            .find(|c| c.has_tag_name("taux_imposition_PAS"))
            .and_then(|c| c.text())
            .unwrap()
            .to_owned()
    };
    assert_eq!(&rate_of(same_nir), same_rate);
    assert_eq!(rate_of(other_nir), different);
    let future = salarie(other_nir)
        .children()
        .find(|c| c.has_tag_name("future_imposition_PAS"))
        .expect("the future rate");
    assert!(
        future
            .children()
            .any(|c| c.has_tag_name("date_effet") && c.text() == Some("2027-02-01"))
    );
    // TST01 for the employee whose applied rate is not the valid one, not for the other.
    let tst01_for = |nir: &str| {
        crm.descendants()
            .filter(|n| n.has_tag_name("declaration_anomalie"))
            .any(|a| {
                a.descendants()
                    .any(|c| c.has_tag_name("code") && c.text() == Some("TST01"))
                    && a.descendants()
                        .any(|c| c.has_tag_name("NIR") && c.text() == Some(nir))
            })
    };
    assert!(tst01_for(other_nir));
    assert!(!tst01_for(same_nir));
    mock.stop().await;
}

#[tokio::test]
async fn an_overwritten_return_gets_a_new_id_and_the_old_one_is_no_longer_downloadable() {
    let mock = Mock::start(no_due_date_wait).await;
    let token = mock.token(SIMULATOR).await;
    let idflux = mock.deposit_ok(&token, &dsn(VALID_SIRET, 2, false)).await;
    publish(&mock).await;
    let before = list_flux(&mock, &token, &idflux).await;
    assert_eq!(before.len(), 3);
    let old = of_nature(&before, "11").clone();
    advance(&mock, 300).await;
    let (status, new) = mock
        .admin(
            Method::POST,
            &format!("/__admin/returns/{idflux}/{}/overwrite", old.id),
            Some(json!({"statut": "KO"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{new}");
    let new_id = new["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, old.id);
    assert_eq!(new["status"], "KO");

    let after = list_flux(&mock, &token, &idflux).await;
    assert_eq!(after.len(), 3);
    assert!(
        after.iter().all(|r| r.id != old.id),
        "the old version is gone"
    );
    let current = of_nature(&after, "11");
    assert_eq!(
        (current.id.as_str(), current.statut.as_str()),
        (new_id.as_str(), "KO")
    );
    assert!(
        current.publication > old.publication,
        "a new publication date"
    );
    assert_eq!(
        download(&mock, &token, &old.url).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, doc) = download(&mock, &token, &current.url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&doc, "etat"), "KO");
    // Overwriting the old version again: it is no longer current.
    let (status, _) = mock
        .admin(
            Method::POST,
            &format!("/__admin/returns/{idflux}/{}/overwrite", old.id),
            Some(json!({"statut": "OK"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = mock
        .admin(
            Method::POST,
            &format!("/__admin/returns/{idflux}/{new_id}/overwrite"),
            Some(json!({"statut": "PEUT-ÊTRE"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A purged return stays listed, no longer downloadable; the others still are.
    let aee = of_nature(&after, "10").clone();
    let (status, _) = mock
        .admin(
            Method::POST,
            &format!("/__admin/returns/{idflux}/{}/purge", aee.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed_after_purge = list_flux(&mock, &token, &idflux).await;
    assert!(listed_after_purge.iter().any(|r| r.id == aee.id));
    assert_eq!(
        download(&mock, &token, &aee.url).await.0,
        StatusCode::NOT_FOUND
    );
    let crm = of_nature(&after, "94");
    assert_eq!(download(&mock, &token, &crm.url).await.0, StatusCode::OK);

    let all = mock.get_admin("/__admin/returns").await;
    let states: Vec<(String, String)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(states.contains(&(old.id.clone(), "overwritten".into())));
    assert!(states.contains(&(aee.id.clone(), "purged".into())));
    assert!(states.contains(&(new_id, "current".into())));
    mock.stop().await;
}

#[tokio::test]
async fn an_overwrite_can_give_a_hostile_document_and_url_for_client_tests() {
    let mock = Mock::start(no_due_date_wait).await;
    let token = mock.token(SIMULATOR).await;
    let idflux = mock.deposit_ok(&token, &dsn(VALID_SIRET, 1, false)).await;
    publish(&mock).await;
    let before = list_flux(&mock, &token, &idflux).await;
    let crm = of_nature(&before, "94").clone();
    let hostile = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>";
    let (status, new) = mock
        .admin(
            Method::POST,
            &format!("/__admin/returns/{idflux}/{}/overwrite", crm.id),
            Some(json!({"statut": "OK", "document": hostile})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{new}");
    let listed = list_flux(&mock, &token, &idflux).await;
    let current = of_nature(&listed, "94");
    let (status, doc) = download(&mock, &token, &current.url).await;
    assert_eq!((status, doc.as_str()), (StatusCode::OK, hostile));

    let (status, _) = mock
        .admin(
            Method::POST,
            &format!("/__admin/returns/{idflux}/{}/overwrite", current.id),
            Some(json!({"statut": "OK", "url": "https://ailleurs.example/telecharger-retour/1.0/x/1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = list_flux(&mock, &token, &idflux).await;
    assert_eq!(
        of_nature(&listed, "94").url,
        "https://ailleurs.example/telecharger-retour/1.0/x/1"
    );
    mock.stop().await;
}

#[tokio::test]
async fn a_rejected_deposit_has_only_its_are_as_nature_10() {
    let mock = Mock::start(no_due_date_wait).await;
    let token = mock.token(SIMULATOR).await;
    let resp = mock.deposit(&token, b"pas une DSN").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let idflux = text_of(&read_body(resp).await.1, "idflux");
    publish(&mock).await;
    let returns = list_flux(&mock, &token, &idflux).await;
    assert_eq!(returns.len(), 1);
    assert_eq!(
        (returns[0].nature.as_str(), returns[0].statut.as_str()),
        ("10", "KO")
    );
    let (_, doc) = download(&mock, &token, &returns[0].url).await;
    assert_eq!(
        roxmltree::Document::parse(&doc)
            .unwrap()
            .root_element()
            .attribute("type"),
        Some("ARE")
    );
    mock.stop().await;
}

#[tokio::test]
async fn the_crm_waits_for_the_declarations_due_date() {
    let mock = Mock::start(|s| s.returns.due_day = 5).await;
    let token = mock.token(SIMULATOR).await;
    let file = iea_dsn::sample(&SampleSpec::new(
        VALID_SIRET,
        Month::new(2030, 1).unwrap(),
        1,
    ));
    let idflux = mock.deposit_ok(&token, &file).await;
    let all = mock.get_admin("/__admin/returns").await;
    let crm = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["idflux"] == idflux.as_str() && r["nature"] == 94)
        .unwrap();
    // 5 February 2030 at noon, Paris time.
    assert_eq!(crm["publication"], "20300205120000");
    assert_eq!(crm["published"], false);
    mock.stop().await;
}

#[tokio::test]
async fn the_declarant_listing_has_its_window_and_only_its_own_returns() {
    let mock = Mock::start(no_due_date_wait).await;
    let simulator = mock.token(SIMULATOR).await;
    let dupont = mock.token(DUPONT).await;
    let mine = mock
        .deposit_ok(&simulator, &dsn(VALID_SIRET, 1, false))
        .await;
    let theirs = mock.deposit_ok(&dupont, &dsn(VALID_SIRET, 1, false)).await;
    publish(&mock).await;
    let now = OffsetDateTime::now_utc();
    let path = format!(
        "/lister-retours-declarant/1.0/{}/{}",
        mock.compact(now - Duration::minutes(30)),
        mock.compact(now + Duration::minutes(30))
    );
    let resp = mock.get_business(&path, &simulator).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (headers, body) = read_body(resp).await;
    assert_eq!(headers["accept-ranges"], "minutes=0-60");
    assert_eq!(headers["content-encoding"], "gzip");
    let returns = listed(&body);
    assert_eq!(returns.len(), 3, "{body}");
    assert!(returns.iter().all(|r| r.flux == mine));
    let resp = mock.get_business(&path, &dupont).await;
    assert!(
        listed(&read_body(resp).await.1)
            .iter()
            .all(|r| r.flux == theirs)
    );

    let wide = format!(
        "/lister-retours-declarant/1.0/{}/{}",
        mock.compact(now - Duration::minutes(31)),
        mock.compact(now + Duration::minutes(30))
    );
    let resp = mock.get_business(&wide, &simulator).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let resp = mock
        .get_business("/lister-retours-declarant/1.0/hier", &simulator)
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Before the returns' publication: none.
    let early = format!(
        "/lister-retours-declarant/1.0/{}/{}",
        mock.compact(now - Duration::minutes(120)),
        mock.compact(now - Duration::minutes(61))
    );
    let resp = mock.get_business(&early, &simulator).await;
    assert_eq!(read_body(resp).await.1, "<retours></retours>");

    let stats = mock.get_admin("/__admin/stats").await;
    let s = &stats["services"]["/lister-retours-declarant/1.0/"];
    assert_eq!(s["requests"], 5);
    assert_eq!(s["by_status"]["429"], 1);
    assert_eq!(s["widest_window_secs"], 61 * 60);
    // Per declarant (the simulator's id is 1, DUPONT's 2); the 422 is nobody's.
    let by = &s["by_declarant"];
    assert_eq!(by["1"]["requests"], 3, "{stats:#}");
    assert_eq!(by["1"]["by_status"]["200"], 2);
    assert_eq!(by["1"]["by_status"]["429"], 1);
    assert_eq!(by["1"]["widest_window_secs"], 61 * 60);
    assert_eq!(
        by["1"]["latest_end_unix"],
        (now + Duration::minutes(30)).unix_timestamp()
    );
    assert_eq!(by["2"]["requests"], 1);
    assert_eq!(by["2"]["widest_window_secs"], 60 * 60);
    mock.stop().await;
}

#[tokio::test]
async fn the_return_services_check_in_the_kit_order() {
    let mock = Mock::start(no_due_date_wait).await;
    let simulator = mock.token(SIMULATOR).await;
    let dupont = mock.token(DUPONT).await;
    let idflux = mock
        .deposit_ok(&simulator, &dsn(VALID_SIRET, 1, false))
        .await;
    publish(&mock).await;
    let long = "x".repeat(51);
    let get = |path: String, token: &str, accept: Option<&str>| {
        let mut req = mock
            .client
            .get(format!("{}{path}", mock.https))
            .header("authorization", format!("DSNLogin jeton={token}"));
        if let Some(a) = accept {
            req = req.header("accept-encoding", a);
        }
        async move { req.send().await.unwrap().status() }
    };
    let cases: Vec<(String, &str, Option<&str>, StatusCode)> = vec![
        (
            format!("/lister-retours-flux/1.0/{long}"),
            "",
            Some("br"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/lister-retours-flux/1.0/{idflux}"),
            "",
            Some("br"),
            StatusCode::NOT_ACCEPTABLE,
        ),
        (
            format!("/lister-retours-flux/1.0/{idflux}"),
            "",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/lister-retours-flux/1.0/kaboom".into(),
            &simulator,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            "/lister-retours-flux/1.0/inconnu".into(),
            &simulator,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/lister-retours-flux/1.0/{idflux}"),
            &dupont,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/telecharger-retour/1.0/{long}/1"),
            "",
            Some("br"),
            StatusCode::NOT_ACCEPTABLE,
        ),
        (
            format!("/telecharger-retour/1.0/{idflux}/12345678901"),
            "",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/telecharger-retour/1.0/{idflux}/1"),
            "",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/telecharger-retour/1.0/{idflux}/kaboom"),
            &simulator,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            format!("/telecharger-retour/1.0/{idflux}/0"),
            &simulator,
            None,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, token, accept, expected) in cases {
        assert_eq!(get(path.clone(), token, accept).await, expected, "{path}");
    }
    // Another declarant cannot download this flux's returns.
    let returns = list_flux(&mock, &simulator, &idflux).await;
    assert_eq!(
        download(&mock, &dupont, &returns[0].url).await.0,
        StatusCode::NOT_FOUND
    );
    let stats: Value = mock.get_admin("/__admin/stats").await;
    assert_eq!(stats["services"]["/telecharger-retour/1.0/"]["requests"], 6);
    mock.stop().await;
}
