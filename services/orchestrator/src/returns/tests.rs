//! Tests of the following with a fake deposit agent that plays Net-entreprises' returns
//! services (listings with `Expires` and `Accept-Ranges`, 429 past the window, 404 once
//! purged or overwritten), on the engine of the test run (SQLite, or PostgreSQL with
//! `IEA_TEST_DATABASE_URL`). Time is the injected [`Clock`], moved ahead for days.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::schedule::wall_seconds;
use super::*;
use crate::agents::{AgentError, DepositAccess};
use crate::deposits::{NewDeposit, State};
use crate::sessions::Principal;
use crate::store::testing::{TestDb, store};
use crate::store::{NewIdentity, Store, Transition};
use crate::users::Role;

const SIRET: &str = "78214563500010";
const BASE: &str = "https://ne.test";

#[derive(Clone)]
enum Doc {
    Bytes(Vec<u8>),
    Gone,
}

#[derive(Default)]
struct FakeState {
    /// Every return as listed now (overwritten versions are no longer listed).
    listed: Vec<ListedReturn>,
    docs: HashMap<String, Doc>,
    flux_calls: usize,
    /// Every declarant window asked: (debut, fin).
    windows: Vec<(String, String)>,
    too_wide: usize,
    downloads: HashMap<String, usize>,
}

/// Net-entreprises' returns services as the deposit agent would report them.
#[derive(Default)]
struct Fake(Mutex<FakeState>);

const WINDOW_MAX: u32 = 60;

impl Fake {
    fn publish(&self, idflux: &str, nature: u32, id: &str, statut: &str, at: i64, doc: Doc) {
        let url = format!("{BASE}/telecharger-retour/1.0/{idflux}/{id}");
        self.publish_at_url(idflux, nature, id, statut, at, doc, &url);
    }

    #[allow(clippy::too_many_arguments)]
    fn publish_at_url(
        &self,
        idflux: &str,
        nature: u32,
        id: &str,
        statut: &str,
        at: i64,
        doc: Doc,
        url: &str,
    ) {
        let t = listing_time(ListingZone::EuropeParis, at);
        let mut s = self.0.lock().unwrap();
        s.listed.push(ListedReturn {
            idflux: idflux.into(),
            publication: t.clone(),
            production: t,
            nature,
            statut: statut.into(),
            id: id.into(),
            url: url.into(),
        });
        s.docs.insert(url.into(), doc);
    }

    /// A new version of `idflux`'s return of `nature`: the old one is no longer listed
    /// nor downloadable.
    fn overwrite(&self, idflux: &str, nature: u32, id: &str, statut: &str, at: i64, doc: Doc) {
        {
            let mut s = self.0.lock().unwrap();
            let old: Vec<String> = s
                .listed
                .iter()
                .filter(|r| r.idflux == idflux && r.nature == nature)
                .map(|r| r.url.clone())
                .collect();
            s.listed
                .retain(|r| !(r.idflux == idflux && r.nature == nature));
            for u in old {
                s.docs.insert(u, Doc::Gone);
            }
        }
        self.publish(idflux, nature, id, statut, at, doc);
    }

    fn purge(&self, idflux: &str, nature: u32) {
        let mut s = self.0.lock().unwrap();
        let urls: Vec<String> = s
            .listed
            .iter()
            .filter(|r| r.idflux == idflux && r.nature == nature)
            .map(|r| r.url.clone())
            .collect();
        for u in urls {
            s.docs.insert(u, Doc::Gone);
        }
    }

    fn downloads_of(&self, url: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .downloads
            .get(url)
            .copied()
            .unwrap_or(0)
    }
}

impl ReturnsAgent for Fake {
    fn list_flux_returns(
        &self,
        _access: DepositAccess,
        idflux: String,
    ) -> BoxFuture<'_, Result<ReturnsListing, AgentError>> {
        let mut s = self.0.lock().unwrap();
        s.flux_calls += 1;
        let returns: Vec<ListedReturn> = s
            .listed
            .iter()
            .filter(|r| r.idflux == idflux)
            .cloned()
            .collect();
        Box::pin(futures::future::ready(Ok(ReturnsListing::Listing {
            returns,
            window_max_minutes: 0,
            expires_in_secs: 300,
        })))
    }

    fn list_declarant_returns(
        &self,
        _access: DepositAccess,
        debut: String,
        fin: String,
    ) -> BoxFuture<'_, Result<ReturnsListing, AgentError>> {
        let mut s = self.0.lock().unwrap();
        s.windows.push((debut.clone(), fin.clone()));
        let width = wall_seconds(&debut, &fin).expect("dates the service reads");
        let answer = if width > i64::from(WINDOW_MAX) * 60 {
            s.too_wide += 1;
            ReturnsListing::Failed {
                failure: ListingFailure::WindowTooWide,
                message: "Fenêtre trop large.".into(),
            }
        } else {
            ReturnsListing::Listing {
                returns: s
                    .listed
                    .iter()
                    .filter(|r| r.publication >= debut && r.publication <= fin)
                    .cloned()
                    .collect(),
                window_max_minutes: WINDOW_MAX,
                expires_in_secs: 120,
            }
        };
        Box::pin(futures::future::ready(Ok(answer)))
    }

    fn download_return(
        &self,
        _access: DepositAccess,
        url: String,
        max_bytes: u64,
        dest: std::path::PathBuf,
    ) -> BoxFuture<'_, Result<ReturnDownload, AgentError>> {
        let doc = {
            let mut s = self.0.lock().unwrap();
            *s.downloads.entry(url.clone()).or_default() += 1;
            s.docs.get(&url).cloned()
        };
        let answer = match doc {
            None | Some(Doc::Gone) => ReturnDownload::Failed {
                failure: DownloadFailure::Gone,
                message: "Retour introuvable (404).".into(),
            },
            Some(Doc::Bytes(b)) if b.len() as u64 > max_bytes => ReturnDownload::Failed {
                failure: DownloadFailure::TooLarge,
                message: "Le document dépasse la taille maximale : téléchargement arrêté.".into(),
            },
            Some(Doc::Bytes(b)) => {
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&dest)
                    .unwrap();
                std::io::Write::write_all(&mut f, &b).unwrap();
                ReturnDownload::Done {
                    bytes: b.len() as u64,
                    sha256: Sha256::digest(&b)
                        .iter()
                        .map(|x| format!("{x:02x}"))
                        .collect(),
                    expires_in_secs: 120,
                }
            }
        };
        Box::pin(futures::future::ready(Ok(answer)))
    }
}

fn aee(idflux: &str) -> Doc {
    Doc::Bytes(format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<gipmds:rapport type="AEE" profil="DSN" version="v01r04" xmlns:gipmds="http://www.gip-mds.fr/">
 <envoi><envoi_identification>
  <idflux>{idflux}</idflux><essai_reel>02</essai_reel>
  <date_enregistrement>2026-12-01</date_enregistrement><heure_enregistrement>10:00:00</heure_enregistrement>
 </envoi_identification>
 <envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi></gipmds:rapport>"#
    ).into_bytes())
}

fn head(idflux: &str, kind: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"{kind}\" version=\"v01r07\"{extra}>\
         <envoi><envoi_identification><idflux>{idflux}</idflux><version_norme>P24V01</version_norme><emetteur_siret>{SIRET}</emetteur_siret></envoi_identification>\
         <envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>\
         <declaration><declaration_identification><rang>1</rang><type>01</type><identifiant_metier></identifiant_metier><SIREN>782145635</SIREN><nic_affectation>00010</nic_affectation><mois>2026-11</mois></declaration_identification>"
    )
}

/// A list of anomalies naming the PAS amount (`S21.G00.50.009`).
fn bilan_ko(idflux: &str) -> Doc {
    Doc::Bytes(format!(
        "{}<declaration_bilan><etat>KO</etat></declaration_bilan>\
         <declaration_anomalie><description><code>CCH-PAS-01</code><categorie>bloquant</categorie><message>Le montant du prélèvement à la source ne correspond pas.</message></description>\
         <valeurs><rubrique_declenchante><identifiant>S21.G00.50.009</identifiant><ligne>57</ligne><valeur>98.00</valeur></rubrique_declenchante></valeurs></declaration_anomalie>\
         </declaration></gipmds:rapport>",
        head(idflux, "Bilan d'anomalies", "")
    ).into_bytes())
}

fn certificate(idflux: &str) -> Doc {
    Doc::Bytes(format!(
        "{}<declaration_bilan><etat>OK</etat></declaration_bilan></declaration></gipmds:rapport>",
        head(idflux, "Certificat de conformité", "")
    ).into_bytes())
}

/// A CRM nominatif with these (NIR, matricule, rate) and one more employee by NTT.
fn crm(idflux: &str, identifiant: &str, rates: &[(&str, &str, &str)]) -> Doc {
    let mut salaries = String::new();
    for (nir, matricule, rate) in rates {
        salaries.push_str(&format!(
            "<salarie><NIR>{nir}</NIR><matricule>{matricule}</matricule><taux_imposition_PAS>{rate}</taux_imposition_PAS></salarie>"
        ));
    }
    salaries.push_str("<salarie><NTT>NTT0000000042</NTT><matricule>M-9</matricule><taux_imposition_PAS>0.00</taux_imposition_PAS><future_imposition_PAS><taux>1.10</taux><date_effet>2027-02-01</date_effet></future_imposition_PAS></salarie>");
    Doc::Bytes(format!(
        "{}<declaration_bilan><etat>OK</etat><declaration_contenu><salaries>{}</salaries></declaration_contenu>{salaries}</declaration_bilan></declaration></gipmds:rapport>",
        head(idflux, "CRM nominatif", &format!(" identifiant=\"{identifiant}\"")),
        rates.len() + 1
    ).into_bytes())
}

struct World {
    db: TestDb,
    data: tempfile::TempDir,
    fake: Arc<Fake>,
    returns: Returns,
    clock: Clock,
    admin: Principal,
    vault: Vault,
}

fn settings() -> (ReturnSettings, DepositSettings) {
    (
        ReturnSettings::default(),
        DepositSettings {
            consultation_address: BASE.into(),
            ..Default::default()
        },
    )
}

fn returns_on(
    store: Store,
    vault: Vault,
    fake: Arc<Fake>,
    data_dir: &Path,
    settings: ReturnSettings,
    clock: Clock,
) -> Returns {
    let (_, deposits) = self::settings();
    let network = Arc::new(
        crate::network::Network::load(crate::network::NetworkDefaults::default(), None).unwrap(),
    );
    Returns::new(
        store, vault, fake, network, settings, &deposits, 2, data_dir, clock,
    )
    .unwrap()
}

async fn world_with(settings: ReturnSettings) -> World {
    let db = store().await;
    let s = &db.store;
    let data = tempfile::tempdir().unwrap();
    let admin_id = s
        .insert_first_user("Administrateur", Role::Administrator, "h", 1)
        .await
        .unwrap();
    let keyring = crate::crypto::Keyring::load_or_create(&data.path().join("secrets.key")).unwrap();
    let vault = Vault::new(s.clone(), keyring).await.unwrap();
    let sealed = vault
        .seal("mot de passe", &crate::vault::credential_aad(admin_id))
        .unwrap();
    s.set_credentials(
        vec![NewIdentity {
            user_id: admin_id,
            siret: SIRET.into(),
            nom: "DUPONT".into(),
            prenom: "Jeanne".into(),
            sealed,
        }],
        1,
    )
    .await
    .unwrap();
    let fake = Arc::new(Fake::default());
    let clock = Clock::default();
    let returns = returns_on(
        s.clone(),
        vault.clone(),
        fake.clone(),
        data.path(),
        settings,
        clock.clone(),
    );
    World {
        db,
        data,
        fake,
        returns,
        clock,
        admin: Principal {
            user_id: admin_id,
            name: "Administrateur".into(),
            role: Role::Administrator,
        },
        vault,
    }
}

async fn world() -> World {
    world_with(settings().0).await
}

impl World {
    fn store(&self) -> &Store {
        &self.db.store
    }

    /// An accepted deposit of `idflux` made with the administrator's identity.
    async fn accepted(&self, sha: &str, idflux: &str, month: &str) -> i64 {
        let s = self.store();
        let d = s
            .insert_deposit(
                NewDeposit {
                    requested_by: "Administrateur".into(),
                    user_id: Some(self.admin.user_id),
                    siret: SIRET.into(),
                    month: month.into(),
                    nature: "01".into(),
                    kind: "03".into(),
                    fraction: "11".into(),
                    essai_reel: "02".into(),
                    file_name: "dsn.txt".into(),
                    file_path: format!("/nowhere/{sha}.dsn"),
                    sha256: sha.into(),
                    bytes: 10,
                    source_path: None,
                },
                crate::sessions::now(),
            )
            .await
            .unwrap()
            .unwrap();
        let t = Transition {
            state: Some(State::Accepted),
            idflux: Some(idflux.into()),
            user_id: Some(self.admin.user_id),
            ..Default::default()
        };
        s.decide_deposit(d.id, &[State::Checked], t, crate::sessions::now())
            .await
            .unwrap();
        d.id
    }

    fn url(idflux: &str, id: &str) -> String {
        format!("{BASE}/telecharger-retour/1.0/{idflux}/{id}")
    }
}

fn flux(n: u32) -> String {
    format!("FLUX{n:019}")
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_deposit_is_followed_to_its_crm_and_the_rates_are_exported() {
    let w = world().await;
    let f = flux(1);
    let id = w.accepted("a", &f, "2026-11").await;
    let now = w.clock.now();
    w.fake.publish(&f, 10, "R10", "OK", now, aee(&f));
    w.fake.publish(&f, 11, "R11", "KO", now, bilan_ko(&f));
    w.fake.publish(
        &f,
        94,
        "R94",
        "OK",
        now,
        crm(
            &f,
            "123456789123456789",
            &[
                ("1850775123456", "M-1", "7.50"),
                ("2900175123456", "M-2", "14.00"),
            ],
        ),
    );
    let report = w.returns.pass(true).await.unwrap();
    assert_eq!(report.started, 1);
    assert_eq!(report.downloaded, 3, "{report:?}");
    assert_eq!((report.refused, report.gone), (0, 0));

    // Conformity KO naming the PAS amount.
    let d = w.returns.of_deposit(&w.admin, id).await.unwrap();
    assert_eq!(d.conformity, "KO");
    assert!(
        d.conformity_message.contains("S21.G00.50.009"),
        "{}",
        d.conformity_message
    );
    // The acknowledgement read, its date and time in French words.
    let ten = d.returns.iter().find(|r| r.record.nature == 10).unwrap();
    assert_eq!(
        ten.record.message,
        "Dépôt enregistré par Net-entreprises (accusé d'enregistrement du 1er décembre 2026 à 10 h 00)."
    );
    let eleven = d.returns.iter().find(|r| r.record.nature == 11).unwrap();
    assert_eq!(eleven.anomalies[0].code, "CCH-PAS-01");
    assert_eq!(eleven.anomalies[0].rubric, "S21.G00.50.009");
    assert_eq!(eleven.anomalies[0].category, "bloquant");
    let kept = eleven.record.file_path.clone().unwrap();
    assert_eq!(mode(Path::new(&kept)), 0o600);
    assert_eq!(
        eleven.record.sha256.as_deref().unwrap(),
        Sha256::digest(std::fs::read(&kept).unwrap())
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    );
    let follow = d.follow.unwrap();
    assert_eq!(follow.state, FollowState::Done);

    // The rates, with the CRM's identifier and validity (end of the second month after).
    let rates = w.returns.rates(&w.admin, None, false).await.unwrap();
    assert_eq!(rates.len(), 3);
    let available = schedule::day_of_listing(&listing_time(ListingZone::EuropeParis, now)).unwrap();
    let r = rates.iter().find(|r| r.rate.matricule == "M-1").unwrap();
    assert_eq!(r.rate.rate, "7.50");
    assert_eq!(r.rate.rate_hundredths, Some(750));
    assert_eq!(r.identifiant, "123456789123456789");
    assert_eq!(r.available_on, available);
    assert_eq!(r.valid_until, valid_until_of(&available).unwrap());
    assert_eq!(r.deposit_id, Some(id));
    let ntt = rates.iter().find(|r| r.rate.ntt).unwrap();
    assert_eq!(
        (
            ntt.rate.future_rate.as_str(),
            ntt.rate.future_effective_on.as_str()
        ),
        ("1.10", "2027-02-01")
    );

    // The export folder: the CRM as received and taux.csv, private.
    let dir = w.returns.export_dir(SIRET);
    assert_eq!(mode(&dir), 0o700);
    let csv = std::fs::read_to_string(dir.join("taux.csv")).unwrap();
    assert_eq!(mode(&dir.join("taux.csv")), 0o600);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], CSV_HEADER);
    assert_eq!(lines.len(), 4);
    assert!(
        lines.contains(
            &format!(
                "1850775123456,M-1,7.50,123456789123456789,{available},{},,",
                r.valid_until
            )
            .as_str()
        ),
        "{csv}"
    );
    let crm_files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    assert_eq!(crm_files.len(), 1);
    assert_eq!(mode(&crm_files[0]), 0o600);
    let Doc::Bytes(original) = crm(
        &f,
        "123456789123456789",
        &[
            ("1850775123456", "M-1", "7.50"),
            ("2900175123456", "M-2", "14.00"),
        ],
    ) else {
        unreachable!()
    };
    assert_eq!(
        std::fs::read(&crm_files[0]).unwrap(),
        original,
        "as received"
    );
    // No temporary file is left behind.
    assert!(
        std::fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp"))
    );

    // Downloaded once: another pass lists but does not download again.
    w.returns.pass(true).await.unwrap();
    for n in ["R10", "R11", "R94"] {
        assert_eq!(w.fake.downloads_of(&World::url(&f, n)), 1, "{n}");
    }

    // Access: another account sees neither the deposit's returns nor its rates.
    let bob = Principal {
        user_id: w.admin.user_id + 1,
        name: "Bob".into(),
        role: Role::User,
    };
    assert!(matches!(
        w.returns.of_deposit(&bob, id).await,
        Err(ReturnsError::NotFound(_))
    ));
    assert!(w.returns.rates(&bob, None, true).await.unwrap().is_empty());
    assert!(w.returns.follows(&bob, None).await.unwrap().is_empty());
    assert!(matches!(
        w.returns.follow_now(&bob, true).await,
        Err(ReturnsError::PermissionDenied(_))
    ));
    assert!(matches!(
        w.returns.rates(&w.admin, Some("123"), false).await,
        Err(ReturnsError::InvalidInput(_))
    ));
    let board = w.returns.follows(&w.admin, Some(SIRET)).await.unwrap();
    assert_eq!(board.len(), 1);
    assert_eq!(board[0].crm.as_ref().unwrap().2, 3);
    assert_eq!(board[0].anomaly_count, 1);
    drop(w.vault);
}

#[tokio::test]
async fn an_overwritten_return_is_fetched_again_and_the_old_version_is_no_longer_used() {
    let w = world().await;
    let f = flux(2);
    let id = w.accepted("a", &f, "2026-11").await;
    let now = w.clock.now();
    w.fake.publish(&f, 10, "R10", "OK", now, aee(&f));
    w.fake.publish(&f, 11, "R11", "OK", now, certificate(&f));
    w.fake.publish(
        &f,
        94,
        "R94",
        "OK",
        now,
        crm(&f, "111", &[("1850775123456", "M-1", "7.50")]),
    );
    w.returns.pass(true).await.unwrap();
    let dir = w.returns.export_dir(SIRET);
    let old_files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    assert_eq!(old_files.len(), 1);

    // The DGFiP overwrites its CRM: new id, new rate; the old one is gone. The deposit's
    // following is over: the declarant's scan finds it.
    w.clock.advance(600);
    w.fake.overwrite(
        &f,
        94,
        "R94B",
        "OK",
        w.clock.now(),
        crm(&f, "222", &[("1850775123456", "M-1", "9.99")]),
    );
    w.clock.advance(600);
    let report = w.returns.pass(true).await.unwrap();
    assert_eq!(report.downloaded, 1, "{report:?}");
    assert_eq!(w.fake.downloads_of(&World::url(&f, "R94B")), 1);
    assert_eq!(
        w.fake.downloads_of(&World::url(&f, "R94")),
        1,
        "the old one is not asked again"
    );

    let rates = w.returns.rates(&w.admin, Some(SIRET), true).await.unwrap();
    let m1 = rates.iter().find(|r| r.rate.matricule == "M-1").unwrap();
    assert_eq!(
        (m1.rate.rate.as_str(), m1.identifiant.as_str()),
        ("9.99", "222")
    );
    let d = w.returns.of_deposit(&w.admin, id).await.unwrap();
    let versions: Vec<(i64, bool)> = d
        .returns
        .iter()
        .filter(|r| r.record.nature == 94)
        .map(|r| (r.record.version, r.record.is_current()))
        .collect();
    assert_eq!(versions, vec![(1, false), (2, true)]);
    // The export folder holds the new CRM only, and its rate.
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    assert_eq!(files.len(), 1);
    assert_ne!(files, old_files);
    let csv = std::fs::read_to_string(dir.join("taux.csv")).unwrap();
    assert!(csv.contains(",M-1,9.99,222,"), "{csv}");
    assert!(!csv.contains("7.50"), "{csv}");
}

#[tokio::test]
async fn a_purged_return_does_not_stop_the_others() {
    let w = world().await;
    let f = flux(3);
    let id = w.accepted("a", &f, "2026-11").await;
    let now = w.clock.now();
    w.fake.publish(&f, 10, "R10", "OK", now, aee(&f));
    w.fake.purge(&f, 10);
    w.fake.publish(&f, 11, "R11", "OK", now, certificate(&f));
    w.fake.publish(
        &f,
        94,
        "R94",
        "OK",
        now,
        crm(&f, "111", &[("1850775123456", "M-1", "7.50")]),
    );
    let report = w.returns.pass(true).await.unwrap();
    assert_eq!((report.gone, report.downloaded), (1, 2), "{report:?}");
    let d = w.returns.of_deposit(&w.admin, id).await.unwrap();
    let ten = d.returns.iter().find(|r| r.record.nature == 10).unwrap();
    assert_eq!(ten.record.download_state, DownloadState::Gone);
    assert!(
        ten.record.message.contains("plus téléchargeable"),
        "{}",
        ten.record.message
    );
    assert_eq!(d.conformity, "OK");
    assert_eq!(
        w.returns.rates(&w.admin, None, false).await.unwrap().len(),
        2
    );
    // Gone is final: not asked again.
    w.returns.pass(true).await.unwrap();
    assert_eq!(w.fake.downloads_of(&World::url(&f, "R10")), 1);
}

#[tokio::test]
async fn hostile_returns_are_refused_with_a_reason_and_the_others_go_on() {
    let mut settings = settings().0;
    settings.max_bytes = 8 * 1024;
    let w = world_with(settings).await;
    let f = flux(4);
    let id = w.accepted("a", &f, "2026-11").await;
    let now = w.clock.now();
    // A download address on another host.
    let foreign = format!("https://evil.test/telecharger-retour/1.0/{f}/R10");
    w.fake
        .publish_at_url(&f, 10, "R10", "OK", now, aee(&f), &foreign);
    // A DTD with entities.
    let dtd = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;\">]>{}",
        String::from_utf8(match certificate(&f) {
            Doc::Bytes(b) => b,
            Doc::Gone => unreachable!(),
        })
        .unwrap()
        .split_once("?>")
        .unwrap()
        .1
    );
    w.fake
        .publish(&f, 11, "R11", "OK", now, Doc::Bytes(dtd.into_bytes()));
    // A CRM past the size cap.
    let many: Vec<(String, String)> = (0..400)
        .map(|i| (format!("1850775{i:06}"), format!("M-{i}")))
        .collect();
    let many: Vec<(&str, &str, &str)> = many
        .iter()
        .map(|(n, m)| (n.as_str(), m.as_str(), "7.50"))
        .collect();
    w.fake
        .publish(&f, 94, "R94", "OK", now, crm(&f, "111", &many));
    // Another deposit's returns are fine.
    let g = flux(5);
    let other = w.accepted("b", &g, "2026-10").await;
    w.fake.publish(&g, 10, "S10", "OK", now, aee(&g));
    w.fake.publish(&g, 11, "S11", "OK", now, certificate(&g));

    let report = w.returns.pass(true).await.unwrap();
    assert_eq!((report.refused, report.downloaded), (3, 2), "{report:?}");
    assert_eq!(
        w.fake.downloads_of(&foreign),
        0,
        "nothing is sent to a foreign address"
    );
    let d = w.returns.of_deposit(&w.admin, id).await.unwrap();
    for r in &d.returns {
        assert_eq!(
            r.record.download_state,
            DownloadState::Refused,
            "{}",
            r.record.nature
        );
        assert!(r.record.file_path.is_none());
        assert!(!r.record.message.is_empty());
    }
    let msg = |n: u32| {
        d.returns
            .iter()
            .find(|r| r.record.nature == n)
            .unwrap()
            .record
            .message
            .clone()
    };
    assert!(msg(10).contains("service de téléchargement"), "{}", msg(10));
    assert!(msg(11).contains("DOCTYPE"), "{}", msg(11));
    assert!(msg(94).contains("taille"), "{}", msg(94));
    assert!(
        w.returns
            .rates(&w.admin, None, true)
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing of the refused documents was kept.
    let kept: Vec<String> = std::fs::read_dir(w.data.path().join("returns"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml") || n.ends_with(".part"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|n| n.starts_with(&g)));
    assert_eq!(
        w.returns
            .of_deposit(&w.admin, other)
            .await
            .unwrap()
            .conformity,
        "OK"
    );
    // Refused is final.
    let again = w.returns.pass(true).await.unwrap();
    assert_eq!(again.refused, 0);
}

#[tokio::test]
async fn the_declarant_scan_catches_up_over_days_without_a_429_nor_a_wider_window() {
    let w = world().await;
    let f = flux(6);
    w.accepted("a", &f, "2026-11").await;
    let start = w.clock.now();
    // The orchestrator is stopped for 3 days; meanwhile a deposit made elsewhere gets its
    // CRM, published on the second day.
    let elsewhere = flux(7);
    w.fake.publish(
        &elsewhere,
        94,
        "E94",
        "OK",
        start + 36 * 3600,
        crm(&elsewhere, "333", &[("1850775123456", "M-1", "5.00")]),
    );
    w.clock.advance(3 * 86_400);
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes < 20, "the scan does not catch up");
        w.returns.pass(false).await.unwrap();
        let c = w
            .store()
            .scan_cursor(w.admin.user_id)
            .await
            .unwrap()
            .unwrap();
        if c.cursor_at >= w.clock.now() - 121 {
            break;
        }
    }
    {
        let s = w.fake.0.lock().unwrap();
        assert_eq!(s.too_wide, 0, "no 429");
        let widths: Vec<i64> = s
            .windows
            .iter()
            .map(|(d, f)| wall_seconds(d, f).unwrap())
            .collect();
        assert!(
            widths[0] <= 600,
            "10 minutes before any answer: {}",
            widths[0]
        );
        assert!(
            widths.iter().all(|w| *w <= 3600),
            "never wider than announced"
        );
        assert!(widths.len() >= 72, "{} windows", widths.len());
        // Windows follow each other without a gap.
        for pair in s.windows.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
    }
    // The CRM of the deposit made elsewhere: its rates, for an administrator only.
    let rates = w.returns.rates(&w.admin, None, false).await.unwrap();
    assert_eq!(rates.len(), 2, "{rates:?}");
    assert!(
        rates
            .iter()
            .all(|r| r.deposit_id.is_none() && r.idflux == elsewhere)
    );
    let bob = Principal {
        user_id: 999,
        name: "Bob".into(),
        role: Role::User,
    };
    assert!(w.returns.rates(&bob, None, true).await.unwrap().is_empty());
}

#[tokio::test]
async fn after_a_429_the_window_is_narrowed_and_remembered() {
    let w = world().await;
    w.accepted("a", &flux(8), "2026-11").await;
    // A cursor that believes in 120-minute windows (as if announced once).
    w.store()
        .lease_scan(
            w.admin.user_id,
            "x".into(),
            0,
            1,
            w.clock.now() - 4 * 3600,
            120,
            true,
        )
        .await
        .unwrap();
    w.store()
        .advance_scan(
            w.admin.user_id,
            "x".into(),
            w.clock.now() - 4 * 3600,
            120,
            Some(120),
            0,
            String::new(),
            true,
            1,
        )
        .await
        .unwrap();
    w.returns.pass(true).await.unwrap();
    let c = w
        .store()
        .scan_cursor(w.admin.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.window_minutes, 60,
        "learned from the answer after the 429"
    );
    assert_eq!(c.announced_minutes, Some(60));
    let s = w.fake.0.lock().unwrap();
    assert_eq!(s.too_wide, 1, "one 429, then never again");
}

#[tokio::test]
async fn two_orchestrators_on_one_database_download_each_return_once() {
    let w = world().await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_store = Store::open(&w.db.url).await.unwrap();
    let keyring =
        crate::crypto::Keyring::load_or_create(&w.data.path().join("secrets.key")).unwrap();
    let other_vault = Vault::new(other_store.clone(), keyring).await.unwrap();
    let other = returns_on(
        other_store,
        other_vault,
        w.fake.clone(),
        other_dir.path(),
        settings().0,
        w.clock.clone(),
    );
    let now = w.clock.now();
    let mut urls = Vec::new();
    for n in 0..6 {
        let f = flux(100 + n);
        w.accepted(&format!("s{n}"), &f, "2026-11").await;
        w.fake.publish(&f, 10, "R10", "OK", now, aee(&f));
        w.fake.publish(&f, 11, "R11", "OK", now, certificate(&f));
        urls.push(World::url(&f, "R10"));
        urls.push(World::url(&f, "R11"));
    }
    let mut downloaded = 0;
    for _ in 0..3 {
        let (a, b) = tokio::join!(w.returns.pass(true), other.pass(true));
        let (a, b) = (a.unwrap(), b.unwrap());
        downloaded += a.downloaded + b.downloaded;
    }
    // Work one of them leased is left to it by the other (possibly to its next pass),
    // never done twice.
    assert_eq!(downloaded, 12);
    for u in &urls {
        assert_eq!(w.fake.downloads_of(u), 1, "{u}");
    }
}

#[tokio::test]
async fn a_pass_waits_out_another_orchestrators_long_write_transaction() {
    let w = world().await;
    let f = flux(30);
    w.accepted("busy", &f, "2026-11").await;
    // The deposit is followed (nothing published yet), then its returns come.
    w.returns.pass(true).await.unwrap();
    let now = w.clock.now();
    w.fake.publish(&f, 10, "B10", "OK", now, aee(&f));
    w.fake.publish(&f, 11, "B11", "OK", now, certificate(&f));
    // Another orchestrator on the same database keeps its write lock for longer than
    // SQLite waits for it (5 s): the leases of this pass are taken once it is released,
    // not given up until the next pass.
    let other = Store::hold_write_lock_for_tests(&w.db.url, std::time::Duration::from_secs(6));
    let report = w.returns.pass(true).await.unwrap();
    other.join().unwrap();
    assert_eq!(report.flux_listed, 1, "{report:?}");
    assert_eq!(report.downloaded, 2, "{report:?}");
    assert_eq!(w.fake.downloads_of(&World::url(&f, "B10")), 1);
    assert_eq!(w.fake.downloads_of(&World::url(&f, "B11")), 1);
}

fn follow(now: i64) -> FollowRecord {
    FollowRecord {
        deposit_id: 1,
        idflux: flux(1),
        user_id: Some(1),
        siret: SIRET.into(),
        month: "2026-11".into(),
        due_at: now + 14 * 86_400,
        started_at: now,
        until_at: now + 60 * 86_400,
        state: FollowState::Following,
        phase_started_at: now,
        polls: 0,
        next_at: now + 60,
        last_polled_at: None,
        message: String::new(),
        lease_owner: None,
        lease_until: None,
        updated_at: now,
    }
}

#[test]
fn the_schedule_backs_off_honours_expires_then_waits_for_the_due_date() {
    use super::follow::plan;
    use std::collections::BTreeSet;
    let b = [1, 2, 5, 15, 60];
    let t0 = 1_764_583_200; // 2025-12-01 10:00 UTC
    let mut f = follow(t0);
    let none = BTreeSet::new();
    // Nothing yet: 2, 5, 15, 60, 60 minutes after each listing.
    let mut at = t0 + 60;
    let mut gaps = Vec::new();
    for _ in 0..5 {
        let u = plan(&f, &none, at, true, 0, &b, None);
        assert_eq!(u.state, FollowState::Following);
        gaps.push((u.next_at - at) / 60);
        f.polls = u.polls;
        f.phase_started_at = u.phase_started_at;
        at = u.next_at;
    }
    assert_eq!(gaps, vec![2, 5, 15, 60, 60]);
    // Never before the answer's Expires.
    let u = plan(&follow(t0), &none, t0 + 60, true, 600, &b, None);
    assert_eq!(u.next_at, t0 + 60 + 600);
    // 10 and 11 in: the next listing is just after the due date, with the back-off
    // starting again from there.
    let two: BTreeSet<u32> = [10, 11].into();
    let u = plan(&f, &two, at, true, 120, &b, None);
    let due = f.due_at;
    assert_eq!((u.phase_started_at, u.polls, u.next_at), (due, 0, due + 60));
    // All in: done. Past the limit: expired.
    let all: BTreeSet<u32> = [10, 11, 94].into();
    assert_eq!(
        plan(&f, &all, at, true, 0, &b, None).state,
        FollowState::Done
    );
    let late = plan(&f, &two, f.until_at, true, 0, &b, None);
    assert_eq!(late.state, FollowState::Expired);
    assert!(late.message.contains("CRM PAS"), "{}", late.message);
    // The last look is at the limit, not after.
    let near = plan(&f, &none, f.until_at - 30, true, 0, &b, None);
    assert_eq!(near.next_at, f.until_at);
}

#[tokio::test]
async fn a_deposit_is_listed_on_the_back_off_and_not_before() {
    // A back-off quicker than the default, so that the answer's `Expires` decides.
    let w = world_with(ReturnSettings {
        backoff_minutes: vec![1, 2, 5, 15, 60],
        ..settings().0
    })
    .await;
    let f = flux(9);
    w.accepted("a", &f, "2026-11").await;
    // Not yet due: the first listing is a minute after the deposit.
    w.returns.pass(false).await.unwrap();
    assert_eq!(w.fake.0.lock().unwrap().flux_calls, 0);
    w.clock.advance(61);
    w.returns.pass(false).await.unwrap();
    assert_eq!(w.fake.0.lock().unwrap().flux_calls, 1);
    // The answer's Expires (300 s) holds it back although the back-off says 2 minutes.
    w.clock.advance(130);
    w.returns.pass(false).await.unwrap();
    assert_eq!(w.fake.0.lock().unwrap().flux_calls, 1);
    w.clock.advance(171);
    w.returns.pass(false).await.unwrap();
    assert_eq!(w.fake.0.lock().unwrap().flux_calls, 2);
    let rec = w
        .store()
        .follow_record(
            w.store()
                .deposits(None, Default::default(), 10)
                .await
                .unwrap()[0]
                .id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.polls, 2);
    assert!(rec.message.contains("l'AEE"), "{}", rec.message);
}

#[tokio::test]
async fn by_default_a_deposit_is_listed_after_a_minute_then_not_before_an_hour() {
    // The default schedule (what the returns benchmark measures against its target of ten
    // requests per deposit): the AEE a minute after the deposit, then hourly at the most.
    let w = world().await;
    w.accepted("a", &flux(10), "2026-11").await;
    w.clock.advance(61);
    w.returns.pass(false).await.unwrap();
    assert_eq!(w.fake.0.lock().unwrap().flux_calls, 1);
    w.clock.advance(59 * 60);
    w.returns.pass(false).await.unwrap();
    assert_eq!(w.fake.0.lock().unwrap().flux_calls, 1, "not before an hour");
    w.clock.advance(2 * 60);
    w.returns.pass(false).await.unwrap();
    assert_eq!(w.fake.0.lock().unwrap().flux_calls, 2);
}
