//! The returns services of the deposit agent against the real Net-entreprises mock (the
//! world of `deposit.rs`): listings by flux and by declarant, and downloads, with the
//! mock's returns published through its control API.

use std::collections::BTreeSet;

use iea_dsn::returns::{self as documents, Acknowledgement, ReturnStatus};
use iea_dsn::{Month, SampleSpec};
use iea_mock_net_entreprises as mock;
use iea_proto::agent::v1::{
    DownloadFailure, DownloadOutcome, DownloadReturnRequest, ListDeclarantReturnsRequest,
    ListFluxReturnsRequest, ListReturnsResponse, ListedReturn, ListingFailure, ReturnsListing,
    VerifyOutcome, deposit_response, download_outcome, list_returns_response,
};
use serde_json::json;
use world::*;

mod world;

const SIRET: &str = DUPONT.siret;

/// The world, with the mock's download addresses on its HTTPS port. The mock derives
/// them from the `Host` header otherwise, which an HTTP/2 request (ALPN over TLS) does not
/// carry: it would give `https://localhost/…` (reported; the setting is the mock's
/// documented way to name its download service).
async fn start(tweak: impl FnOnce(&mut mock::Settings)) -> World {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    World::start(|s| {
        s.listen.https_listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        s.download_base_url = Some(format!("https://127.0.0.1:{port}"));
        tweak(s);
    })
    .await
}

/// A valid DSN of `employees` employees of DUPONT's establishment, which the mock reads
/// (so that it publishes natures 11 and 94 too).
fn valid_dsn(employees: usize) -> Vec<u8> {
    iea_dsn::sample(&SampleSpec::new(
        SIRET,
        Month::new(2026, 10).unwrap(),
        employees,
    ))
}

/// Deposits a valid DSN; answers its idflux.
async fn deposited(world: &World, employees: usize) -> String {
    let r = world.deposit(DUPONT, &valid_dsn(employees)).await;
    match r.outcome {
        Some(deposit_response::Outcome::Accepted(a)) => a.idflux,
        other => panic!("accepted: {other:?} {}", r.message),
    }
}

async fn publish(world: &World) {
    world
        .admin(reqwest::Method::POST, "/__admin/returns/publish", json!({}))
        .await;
}

async fn list_flux(world: &World, identity: Identity, idflux: &str) -> ListReturnsResponse {
    world
        .agent
        .clone()
        .list_flux_returns(ListFluxReturnsRequest {
            access: Some(world.access(identity, world.network())),
            idflux: idflux.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn list_declarant(world: &World, debut: &str, fin: &str) -> ListReturnsResponse {
    world
        .agent
        .clone()
        .list_declarant_returns(ListDeclarantReturnsRequest {
            access: Some(world.access(DUPONT, world.network())),
            debut: debut.into(),
            fin: fin.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn listing(r: &ListReturnsResponse) -> &ReturnsListing {
    match &r.outcome {
        Some(list_returns_response::Outcome::Listing(l)) => l,
        other => panic!("a listing: {other:?} {}", r.message),
    }
}

fn listing_failure(r: &ListReturnsResponse) -> ListingFailure {
    match &r.outcome {
        Some(list_returns_response::Outcome::Failed(f)) => f.failure(),
        other => panic!("a failure: {other:?}"),
    }
}

fn of_nature(l: &ReturnsListing, nature: u32) -> ListedReturn {
    l.returns
        .iter()
        .find(|r| r.nature == nature)
        .cloned()
        .unwrap_or_else(|| panic!("nature {nature} in {:?}", l.returns))
}

/// A download's data chunks and its last message.
struct Downloaded {
    chunks: Vec<Vec<u8>>,
    outcome: DownloadOutcome,
}

impl Downloaded {
    fn data(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    fn failure(&self) -> DownloadFailure {
        match &self.outcome.outcome {
            Some(download_outcome::Outcome::Failed(f)) => f.failure(),
            other => panic!("a failure: {other:?} {}", self.outcome.message),
        }
    }

    fn done(&self) -> &iea_proto::agent::v1::DownloadDone {
        match &self.outcome.outcome {
            Some(download_outcome::Outcome::Done(d)) => d,
            other => panic!("done: {other:?} {}", self.outcome.message),
        }
    }
}

async fn download(world: &World, identity: Identity, url: &str, max_bytes: u64) -> Downloaded {
    let mut stream = world
        .agent
        .clone()
        .download_return(DownloadReturnRequest {
            access: Some(world.access(identity, world.network())),
            url: url.into(),
            max_bytes,
        })
        .await
        .unwrap()
        .into_inner();
    let mut chunks = Vec::new();
    let mut outcome = None;
    while let Some(m) = stream.message().await.unwrap() {
        assert!(outcome.is_none(), "nothing after the outcome");
        match m.outcome {
            Some(o) => {
                assert!(m.data.is_empty());
                outcome = Some(o);
            }
            None => chunks.push(m.data),
        }
    }
    Downloaded {
        chunks,
        outcome: outcome.expect("a last message with the outcome"),
    }
}

fn path_requests(world: &World, path: &str) -> u64 {
    world
        .mock
        .stats()
        .services
        .get(path)
        .map_or(0, |s| s.requests)
}

#[tokio::test]
async fn the_flux_listing_is_empty_before_publication_then_gives_the_three_natures() {
    let world = start(|_| {}).await;
    let idflux = deposited(&world, 3).await;

    let r = list_flux(&world, DUPONT, &idflux).await;
    assert_eq!(r.http_status, 200);
    let l = listing(&r);
    assert!(l.returns.is_empty(), "{:?}", l.returns);
    assert_eq!(l.window_max_minutes, 0, "no window on this service");
    assert!(
        (100..=120).contains(&l.expires_in_seconds),
        "the mock's Expires is two minutes ahead: {}",
        l.expires_in_seconds
    );

    publish(&world).await;
    let r = list_flux(&world, DUPONT, &idflux).await;
    let l = listing(&r);
    let natures: BTreeSet<u32> = l.returns.iter().map(|r| r.nature).collect();
    assert_eq!(natures, BTreeSet::from([10, 11, 94]));
    assert_eq!(r.message, "Net-entreprises liste 3 retours pour ce dépôt.");
    for ret in &l.returns {
        assert_eq!(ret.idflux, idflux);
        assert_eq!(ret.id.len(), 10);
        assert_eq!(ret.publication.len(), 14);
        assert_eq!(ret.production.len(), 14);
        assert_eq!(
            ret.url,
            format!(
                "{}/telecharger-retour/1.0/{idflux}/{}",
                world.mock_https, ret.id
            )
        );
    }
    assert_eq!(of_nature(l, 10).statut, "OK");
    assert_eq!(of_nature(l, 94).statut, "OK");
    assert!(!r.reauthenticated);
    assert_eq!(world.auth_requests(), 1, "the deposit's token is reused");
    world.stop().await;
}

#[tokio::test]
async fn an_unknown_flux_is_unknown_and_a_malformed_one_is_not_sent() {
    let world = start(|_| {}).await;
    let r = list_flux(&world, DUPONT, "AAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(listing_failure(&r), ListingFailure::UnknownFlux);
    assert_eq!(r.http_status, 404);
    assert!(
        r.message.contains("ne connaît pas ce dépôt"),
        "{}",
        r.message
    );
    let before = path_requests(&world, mock::LIST_RETURNS_FLUX_PATH);
    assert_eq!(before, 1);
    for bad in ["", "a-b", &"A".repeat(51)] {
        let e = world
            .agent
            .clone()
            .list_flux_returns(ListFluxReturnsRequest {
                access: Some(world.access(DUPONT, world.network())),
                idflux: bad.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}");
    }
    assert_eq!(path_requests(&world, mock::LIST_RETURNS_FLUX_PATH), before);
    world.stop().await;
}

#[tokio::test]
async fn the_declarant_listing_reads_the_announced_window_and_is_refused_past_it() {
    // 45, not the usual 60: the agent reads the window, it does not assume it.
    let world = start(|s| s.listing_window_minutes = 45).await;
    let idflux = deposited(&world, 2).await;
    publish(&world).await;

    let r = list_declarant(&world, &world.mock_time(-30), &world.mock_time(1)).await;
    assert_eq!(r.http_status, 200);
    let l = listing(&r);
    assert_eq!(l.window_max_minutes, 45);
    assert!((100..=120).contains(&l.expires_in_seconds));
    assert_eq!(l.returns.len(), 3);
    assert!(l.returns.iter().all(|r| r.idflux == idflux));
    assert_eq!(r.message, "Net-entreprises liste 3 retours sur la période.");

    // Before the publication: nothing.
    let r = list_declarant(&world, &world.mock_time(-40), &world.mock_time(-10)).await;
    assert!(listing(&r).returns.is_empty());

    let r = list_declarant(&world, &world.mock_time(-120), &world.mock_time(0)).await;
    assert_eq!(listing_failure(&r), ListingFailure::WindowTooWide);
    assert_eq!(r.http_status, 429);
    let stats = world
        .mock
        .stats()
        .services
        .get(mock::LIST_RETURNS_DECLARANT_PATH)
        .cloned()
        .unwrap();
    assert_eq!(
        stats.widest_window_secs,
        Some(120 * 60),
        "the window asked is the caller's, never widened"
    );

    // A day the agent's format check lets through but no calendar has: the service's 422.
    let r = list_declarant(&world, "20260230120000", "20260230123000").await;
    assert_eq!(listing_failure(&r), ListingFailure::BadDates);
    assert_eq!(r.http_status, 422);
    world.stop().await;
}

#[tokio::test]
async fn each_nature_downloads_in_chunks_with_its_sha256_and_reads_with_iea_dsn() {
    let world = start(|_| {}).await;
    let employees = 2_000;
    let idflux = deposited(&world, employees).await;
    publish(&world).await;
    let l = listing(&list_flux(&world, DUPONT, &idflux).await).clone();

    let crm = download(&world, DUPONT, &of_nature(&l, 94).url, 0).await;
    let done = crm.done();
    let data = crm.data();
    assert!(data.len() > 150_000, "{}", data.len());
    assert_eq!(done.bytes, data.len() as u64);
    assert_eq!(done.sha256, sha256_hex(&data));
    assert!((100..=120).contains(&done.expires_in_seconds));
    assert!(crm.chunks.len() >= 3, "{} chunks", crm.chunks.len());
    assert!(
        crm.chunks
            .iter()
            .all(|c| !c.is_empty() && c.len() <= 64 * 1024)
    );
    assert_eq!(crm.outcome.http_status, 200);
    let read = documents::read_crm(&data, documents::DEFAULT_MAX_BYTES).unwrap();
    assert_eq!(read.idflux, idflux);
    assert_eq!(read.siret(), SIRET);
    assert_eq!(read.employees.len(), employees);
    assert!(read.employees.iter().all(|e| e.rate.is_some()));
    assert_eq!(read.identifier.as_str().len(), 18);

    let aee = download(&world, DUPONT, &of_nature(&l, 10).url, 0).await;
    let Acknowledgement::Accepted(a) =
        documents::read_acknowledgement(&aee.data(), documents::DEFAULT_MAX_BYTES).unwrap()
    else {
        panic!("an AEE")
    };
    assert_eq!(a.idflux, idflux);
    assert_eq!(aee.done().sha256, sha256_hex(&aee.data()));

    let conformity = download(&world, DUPONT, &of_nature(&l, 11).url, 0).await;
    let c = documents::read_conformity(&conformity.data(), documents::DEFAULT_MAX_BYTES).unwrap();
    assert_eq!(c.status.as_str(), of_nature(&l, 11).statut);
    assert_eq!(path_requests(&world, mock::DOWNLOAD_PATH), 3);
    world.stop().await;
}

#[tokio::test]
async fn an_overwritten_returns_old_address_is_gone_and_the_new_one_is_listed() {
    let world = start(|_| {}).await;
    let idflux = deposited(&world, 2).await;
    publish(&world).await;
    let old = of_nature(listing(&list_flux(&world, DUPONT, &idflux).await), 11);
    world
        .admin(
            reqwest::Method::POST,
            &format!("/__admin/returns/{idflux}/{}/overwrite", old.id),
            json!({"statut": "KO"}),
        )
        .await;

    let gone = download(&world, DUPONT, &old.url, 0).await;
    assert_eq!(gone.failure(), DownloadFailure::Gone);
    assert_eq!(gone.outcome.http_status, 404);
    assert!(gone.chunks.is_empty());

    let new = of_nature(listing(&list_flux(&world, DUPONT, &idflux).await), 11);
    assert_ne!(new.id, old.id);
    assert_eq!(new.statut, "KO");
    let d = download(&world, DUPONT, &new.url, 0).await;
    d.done();
    let c = documents::read_conformity(&d.data(), documents::DEFAULT_MAX_BYTES).unwrap();
    assert_eq!(c.status, ReturnStatus::Ko);
    world.stop().await;
}

#[tokio::test]
async fn an_address_outside_the_download_service_is_refused_and_nothing_is_sent() {
    let world = start(|_| {}).await;
    let idflux = deposited(&world, 1).await;
    publish(&world).await;
    let real = of_nature(listing(&list_flux(&world, DUPONT, &idflux).await), 10);
    let port: u16 = world
        .mock_https
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // A return overwritten with an address on another host, as a listing may give it.
    world
        .admin(
            reqwest::Method::POST,
            &format!("/__admin/returns/{idflux}/{}/overwrite", real.id),
            json!({"statut": "OK", "url": format!("https://evil.example:{port}/telecharger-retour/1.0/{idflux}/1")}),
        )
        .await;
    let listed = of_nature(listing(&list_flux(&world, DUPONT, &idflux).await), 10);
    assert!(
        listed.url.starts_with("https://evil.example:"),
        "{}",
        listed.url
    );

    let auth_before = world.auth_requests();
    let stats_before = world.mock.stats().services;
    for url in [
        listed.url.clone(),
        real.url.replace("https://", "http://"),
        real.url
            .replace(&format!(":{port}/"), &format!(":{}/", port + 1)),
        real.url.replace("127.0.0.1", "localhost"),
        real.url
            .replace("/telecharger-retour/1.0/", "/lister-retours-flux/1.0/"),
        format!(
            "{}/telecharger-retour/1.0/../../__admin/returns",
            world.mock_https
        ),
        format!("{}?x=1", real.url),
        "file:///etc/passwd".into(),
    ] {
        let d = download(&world, DUPONT, &url, 0).await;
        assert_eq!(d.failure(), DownloadFailure::ForeignAddress, "{url}");
        assert!(d.chunks.is_empty());
        assert_eq!(d.outcome.http_status, 0);
        assert!(
            d.outcome.message.contains("rien n'a été demandé"),
            "{}",
            d.outcome.message
        );
    }
    assert_eq!(
        world.auth_requests(),
        auth_before,
        "no authentication either"
    );
    assert_eq!(
        world.mock.stats().services,
        stats_before,
        "the mock saw no request"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_document_past_the_cap_is_stopped_and_refused() {
    let world = start(|_| {}).await;
    let idflux = deposited(&world, 500).await;
    publish(&world).await;
    let crm = of_nature(listing(&list_flux(&world, DUPONT, &idflux).await), 94);
    let whole = download(&world, DUPONT, &crm.url, 0).await;
    let size = whole.done().bytes;
    assert!(size > 20_000, "{size}");

    let cut = download(&world, DUPONT, &crm.url, size - 1).await;
    assert_eq!(cut.failure(), DownloadFailure::TooLarge);
    assert!(cut.data().len() < size as usize);
    assert!(cut.outcome.message.contains("dépasse la taille admise"));

    let exact = download(&world, DUPONT, &crm.url, size).await;
    assert_eq!(exact.done().sha256, whole.done().sha256);

    // A document overwritten with 1.5 MB of blanks, which the mock gzips to a few KiB:
    // the decompressed size is what counts (the control API takes bodies up to 2 MB).
    world
        .admin(
            reqwest::Method::POST,
            &format!("/__admin/returns/{idflux}/{}/overwrite", crm.id),
            json!({"statut": "OK", "document": format!("<r>{}</r>", " ".repeat(1_500_000))}),
        )
        .await;
    let big = of_nature(listing(&list_flux(&world, DUPONT, &idflux).await), 94);
    let d = download(&world, DUPONT, &big.url, 1 << 20).await;
    assert_eq!(d.failure(), DownloadFailure::TooLarge);
    assert!(d.data().len() <= 1 << 20);
    world.stop().await;
}

#[tokio::test]
async fn an_expired_token_gets_one_new_authentication_for_listings_and_downloads() {
    let world = start(|_| {}).await;
    let idflux = deposited(&world, 1).await;
    publish(&world).await;
    assert_eq!(world.auth_requests(), 1);

    assert!(world.mock.expire_tokens(None) >= 1);
    let r = list_flux(&world, DUPONT, &idflux).await;
    assert!(r.reauthenticated);
    let url = of_nature(listing(&r), 94).url;
    assert_eq!(world.auth_requests(), 2, "exactly one new authentication");
    assert_eq!(path_requests(&world, mock::LIST_RETURNS_FLUX_PATH), 2);

    assert!(world.mock.expire_tokens(None) >= 1);
    let d = download(&world, DUPONT, &url, 0).await;
    d.done();
    assert!(d.outcome.reauthenticated);
    assert_eq!(world.auth_requests(), 3);
    let stats = world
        .mock
        .stats()
        .services
        .get(mock::DOWNLOAD_PATH)
        .cloned()
        .unwrap();
    assert_eq!(stats.requests, 2, "the refused one and the one after");
    assert_eq!(stats.by_status.get(&401), Some(&1));

    assert!(world.mock.expire_tokens(None) >= 1);
    let r = list_declarant(&world, &world.mock_time(-30), &world.mock_time(0)).await;
    assert!(r.reauthenticated);
    assert_eq!(listing(&r).returns.len(), 3);
    assert_eq!(world.auth_requests(), 4);
    world.stop().await;
}

#[tokio::test]
async fn a_refused_authentication_is_final_and_sends_nothing_else() {
    let world = start(|_| {}).await;
    let idflux = deposited(&world, 1).await;
    publish(&world).await;
    let url = of_nature(listing(&list_flux(&world, DUPONT, &idflux).await), 10).url;
    let auth_before = world.auth_requests();

    let r = list_flux(&world, WRONG_PASSWORD, &idflux).await;
    match &r.outcome {
        Some(list_returns_response::Outcome::Authentication(a)) => {
            assert_eq!(a.outcome(), VerifyOutcome::InvalidCredentials)
        }
        other => panic!("authentication: {other:?}"),
    }
    assert_eq!(world.auth_requests(), auth_before + 1, "never retried");

    let d = download(&world, WRONG_PASSWORD, &url, 0).await;
    assert!(
        matches!(
            d.outcome.outcome,
            Some(download_outcome::Outcome::Authentication(_))
        ),
        "{:?}",
        d.outcome
    );
    assert_eq!(world.auth_requests(), auth_before + 2);
    assert_eq!(path_requests(&world, mock::LIST_RETURNS_FLUX_PATH), 1);
    assert_eq!(path_requests(&world, mock::DOWNLOAD_PATH), 0);
    world.stop().await;
}

#[tokio::test]
async fn a_server_fault_is_unavailable_and_a_refused_id_unexpected() {
    let world = start(|_| {}).await;
    let idflux = deposited(&world, 1).await;
    let base = format!("{}/telecharger-retour/1.0/{idflux}", world.mock_https);
    let d = download(&world, DUPONT, &format!("{base}/kaboom"), 0).await;
    assert_eq!(d.failure(), DownloadFailure::Unavailable);
    assert_eq!(d.outcome.http_status, 500);
    let d = download(&world, DUPONT, &format!("{base}/01234567890"), 0).await;
    assert_eq!(d.failure(), DownloadFailure::Unexpected);
    assert_eq!(d.outcome.http_status, 422);
    // Not published yet: not there.
    let d = download(&world, DUPONT, &format!("{base}/0123456789"), 0).await;
    assert_eq!(d.failure(), DownloadFailure::Gone);
    let r = list_flux(&world, DUPONT, "kaboom").await;
    assert_eq!(listing_failure(&r), ListingFailure::Unavailable);
    assert_eq!(r.http_status, 500);
    world.stop().await;
}
