//! No secret nor DSN content reaches the logs: the agent's logs, at TRACE (HTTP stacks
//! included), are captured while it authenticates, deposits and lists against a server
//! whose token is known (wiremock: the Net-entreprises mock never shows its tokens), and
//! while it lists and downloads a CRM nominatif, then searched for the token, the
//! password, the file's personal data and the CRM's NIR, matricule and rate. A binary of its
//! own, since it installs the global log subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iea_agent_testkit::TestWorld;
use iea_deposit_agent::App;
use iea_proto::agent::v1::deposit_agent_client::DepositAgentClient;
use iea_proto::agent::v1::{
    DeclarantIdentity, DepositChunk, DepositStart, DownloadReturnRequest, ListDepositsRequest,
    ListFluxReturnsRequest, NetEntreprisesAccess, deposit_response, download_outcome,
    list_deposits_response, list_returns_response,
};
use iea_proto::common::v1::{ConnectionMode, ConnectionType, NetworkSettings};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "U2VjcmV0VG9rZW5PZlRoZVRlc3RzMDEyMzQ1Njc4OQ==";
const PASSWORD: &str = "Jardin#Partage2024";
const NIR: &str = "2850763123456";
const NAME: &str = "BÉRÉNICE-ZÉLIE";
const CRM_NIR: &str = "1770375987654";
const MATRICULE: &str = "MAT-SECRET-77";
const RATE: &str = "13.37";
const IDFLUX: &str = "UR5WJEBAhi54RcZN8Lur71F";

fn crm() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"CRM nominatif\" version=\"v01r07\" identifiant=\"123456789123456789\">\
         <envoi><envoi_identification><idflux>{IDFLUX}</idflux></envoi_identification><envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>\
         <declaration><declaration_identification><SIREN>782145635</SIREN><nic_affectation>00010</nic_affectation></declaration_identification>\
         <declaration_bilan><etat>OK</etat><salarie><NIR>{CRM_NIR}</NIR><matricule>{MATRICULE}</matricule><taux_imposition_PAS>{RATE}</taux_imposition_PAS></salarie></declaration_bilan>\
         <declaration_anomalie><description><code>TST01</code><categorie>non-bloquant</categorie><message>Taux valide {RATE}</message></description>\
         <environnement><salarie origine=\"DSN\"><NIR>{CRM_NIR}</NIR><matricule>{MATRICULE}</matricule></salarie></environnement></declaration_anomalie>\
         </declaration></gipmds:rapport>"
    )
}

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

const AEE: &str = r#"<?xml version="1.0" encoding="UTF-8" ?><gipmds:rapport type="AEE" profil="DSN" version="v01r04" xmlns:gipmds="http://www.gip-mds.fr/"><envoi><envoi_identification><idflux>UR5WJEBAhi54RcZN8Lur71F</idflux><essai_reel>01</essai_reel><date_enregistrement>2026-12-01</date_enregistrement><heure_enregistrement>14:47:42</heure_enregistrement></envoi_identification><envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi></gipmds:rapport>"#;

#[tokio::test]
async fn no_token_password_or_dsn_content_appears_in_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    iea_runtime::install_crypto_provider();

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/authentifier/1.0/"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("expires", "Wed, 21 Oct 2099 07:28:00 GMT")
                .set_body_string(TOKEN),
        )
        .expect(1)
        .mount(&server)
        .await;
    let authorization = format!("DSNLogin jeton={TOKEN}");
    Mock::given(method("POST"))
        .and(path("/deposer-dsn/1.0/"))
        .and(header("authorization", authorization.as_str()))
        .and(header("content-encoding", "gzip"))
        .respond_with(ResponseTemplate::new(200).set_body_string(AEE))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/lister-depots/1.0/[0-9]{14}/[0-9]{14}$"))
        .and(header("authorization", authorization.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("accept-ranges", "minutes=0-60")
                .set_body_string("<depots><declarant><depot><idflux>UR5WJEBAhi54RcZN8Lur71F</idflux><date>20261201144742</date><statut>OK</statut></depot></declarant></depots>"),
        )
        .expect(1)
        .mount(&server)
        .await;

    Mock::given(method("GET"))
        .and(path(format!("/lister-retours-flux/1.0/{IDFLUX}")))
        .and(header("authorization", authorization.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!(
            "<retours><flux><id>{IDFLUX}</id><retour><publication>20261215120000</publication>\
             <production>20261215120000</production><nature>94</nature><statut>OK</statut><id>0123456789</id>\
             <url>{}/telecharger-retour/1.0/{IDFLUX}/0123456789</url></retour></flux></retours>",
            server.uri()
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/telecharger-retour/1.0/{IDFLUX}/0123456789")))
        .and(header("authorization", authorization.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(crm()))
        .expect(1)
        .mount(&server)
        .await;

    let test = TestWorld::new();
    let app = App::build(test.agent_settings("deposit-agent"))
        .await
        .unwrap();
    let channel = test.channel("deposit-agent", app.local_addr(), Duration::from_secs(20));
    test.spawn(app.run_until(test.shutdown()));
    let mut agent = DepositAgentClient::new(channel);

    let access = NetEntreprisesAccess {
        network: Some(NetworkSettings {
            connection_type: ConnectionType::Direct.into(),
            mode: ConnectionMode::Normal.into(),
            address: server.uri(),
            ..NetworkSettings::default()
        }),
        auth_address: String::new(),
        identity: Some(DeclarantIdentity {
            siret: "78214563500010".into(),
            nom: "DUPONT".into(),
            prenom: "Marie".into(),
            password: PASSWORD.into(),
        }),
        service: 25,
    };
    let file: Vec<u8> = format!(
        "S10.G00.00.001,'IEA'\nS21.G00.30.001,'{NIR}'\nS21.G00.30.002,'{NAME}'\nS21.G00.50.002,'1834.27'\n"
    )
    .chars()
    .map(|c| c as u32 as u8)
    .collect();
    let messages = vec![
        DepositChunk {
            start: Some(DepositStart {
                access: Some(access.clone()),
                deposit_id: "secrets".into(),
                total_size: file.len() as u64,
                ..Default::default()
            }),
            data: file[..10].to_vec(),
            withdraw: false,
        },
        DepositChunk {
            data: file[10..].to_vec(),
            ..Default::default()
        },
    ];
    let r = agent
        .deposit(futures::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(r.outcome, Some(deposit_response::Outcome::Accepted(_))),
        "{r:?}"
    );
    let l = agent
        .list_deposits(ListDepositsRequest {
            access: Some(access.clone()),
            debut: "20261201140000".into(),
            fin: "20261201150000".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(l.outcome, Some(list_deposits_response::Outcome::Listing(_))),
        "{l:?}"
    );
    let returns = agent
        .list_flux_returns(ListFluxReturnsRequest {
            access: Some(access.clone()),
            idflux: IDFLUX.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(list_returns_response::Outcome::Listing(listing)) = &returns.outcome else {
        panic!("{returns:?}")
    };
    let mut stream = agent
        .download_return(DownloadReturnRequest {
            access: Some(access),
            url: listing.returns[0].url.clone(),
            max_bytes: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut document = Vec::new();
    let mut outcome = None;
    while let Some(m) = stream.message().await.unwrap() {
        document.extend_from_slice(&m.data);
        outcome = m.outcome.or(outcome);
    }
    assert_eq!(document, crm().into_bytes());
    let outcome = outcome.unwrap();
    assert!(
        matches!(outcome.outcome, Some(download_outcome::Outcome::Done(_))),
        "{outcome:?}"
    );
    let answers = format!("{r:?} {l:?} {returns:?} {outcome:?}");
    test.stop().await;
    server.verify().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("deposit done"), "the logs were captured");
    assert!(
        logs.contains("return downloaded"),
        "the download's logs were captured"
    );
    for (what, secret) in [
        ("token", TOKEN),
        ("token without padding", TOKEN.trim_end_matches('=')),
        ("password", PASSWORD),
        ("NIR", NIR),
        ("employee's name", "NICE-Z"),
        ("pay", "1834.27"),
        ("CRM's NIR", CRM_NIR),
        ("CRM's matricule", MATRICULE),
        ("CRM's rate", RATE),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
        assert!(!answers.contains(secret), "the {what} appears in an answer");
    }
}
