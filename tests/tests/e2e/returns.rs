//! Returns and CRM PAS end to end (issue 13): a deposit goes to the Net-entreprises mock,
//! the mock publishes its returns (nature 10, 11, 94), the orchestrator follows them
//! (`FollowNow` makes a pass now instead of waiting for its schedule), and the result is
//! seen where a payroll manager sees it: the deposit's conformity, the rates
//! (`iea pas rates`' call), the export folder for the payroll program, the deadline board
//! and the status. The mock's control API publishes, overwrites and purges returns.

use std::time::Duration;

use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::v1::board_client::BoardClient;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::*;
use tonic::transport::Channel;

use crate::helpers::{MockAdmin, TestStack, authed};

const ADMIN: &str = "Administrateur";
const SIRET: &str = DUPONT.siret;
const NOM: &str = DUPONT.nom;
const PRENOM: &str = DUPONT.prenom;
const PASSWORD: &str = DUPONT.password;

struct Env {
    t: TestStack,
    token: String,
    deposits: DepositsClient<Channel>,
    returns: ReturnsClient<Channel>,
    board: BoardClient<Channel>,
    ne: MockAdmin,
}

impl Env {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A stack whose orchestrator settings `customize` adjusts after the suite's own.
    async fn start_with(
        customize: impl FnOnce(&mut iea_orchestrator::Settings) + Send + 'static,
    ) -> Self {
        let t = TestStack::start_with(|s| {
            s.deposits.poll_interval_ms = 100;
            s.deposits.retry_delay_secs = 1;
            // The declarant scan (which finds overwritten returns) lists up to now, not
            // two minutes before: a test does not wait for the publication lag.
            s.returns.scan_lag_secs = 0;
            customize(s);
        })
        .await;
        let token = t.login_admin().await;
        let ch = t.channel().await;
        CredentialsClient::new(ch.clone())
            .set_credentials(authed(
                &token,
                SetCredentialsRequest {
                    user: ADMIN.into(),
                    account_password: t.admin_password(),
                    identity: Some(NetEntreprisesIdentity {
                        siret: SIRET.into(),
                        nom: NOM.into(),
                        prenom: PRENOM.into(),
                        password: PASSWORD.into(),
                    }),
                },
            ))
            .await
            .expect("identity set");
        let ne = t.mock("net-entreprises");
        Self {
            deposits: DepositsClient::new(ch.clone()),
            returns: ReturnsClient::new(ch.clone()),
            board: BoardClient::new(ch),
            t,
            token,
            ne,
        }
    }

    /// Deposits `file` and waits until Net-entreprises accepted it.
    async fn deposit_accepted(&self, file: &[u8]) -> DsnDeposit {
        let d = crate::deposits::upload(&mut self.deposits.clone(), &self.token, file, "")
            .await
            .expect("recorded");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let d = self
                .deposits
                .clone()
                .get_deposit(authed(&self.token, GetDsnDepositRequest { id: d.id }))
                .await
                .unwrap()
                .into_inner();
            if d.settled {
                assert_eq!(d.state, "accepted", "{d:#?}");
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never settled: {d:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn returns_of(&self, deposit_id: i64) -> DsnReturnsOfDeposit {
        self.returns
            .clone()
            .list_returns(authed(&self.token, ListDsnReturnsRequest { deposit_id }))
            .await
            .expect("returns listed")
            .into_inner()
    }

    /// Runs following passes until the deposit's returns satisfy `pred` (at most 60 s).
    async fn follow_until(
        &self,
        deposit_id: i64,
        pred: impl Fn(&DsnReturnsOfDeposit) -> bool,
    ) -> DsnReturnsOfDeposit {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            self.returns
                .clone()
                .follow_now(authed(&self.token, FollowNowRequest { all: true }))
                .await
                .expect("a following pass");
            let r = self.returns_of(deposit_id).await;
            if pred(&r) {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the returns of deposit {deposit_id} never reached the condition; last: {r:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn rates(&self, siret: &str) -> Vec<PasRate> {
        self.returns
            .clone()
            .list_rates(authed(
                &self.token,
                ListPasRatesRequest {
                    siret: siret.into(),
                    include_expired: false,
                },
            ))
            .await
            .expect("rates listed")
            .into_inner()
            .rates
    }

    async fn board(&self, token: &str) -> BoardReport {
        self.board
            .clone()
            .get_board(authed(token, GetBoardRequest::default()))
            .await
            .expect("board")
            .into_inner()
    }

    /// The mock's returns of `idflux` still current (not overwritten nor purged).
    async fn mock_returns(&self, idflux: &str) -> Vec<serde_json::Value> {
        self.ne
            .get("/returns")
            .await
            .as_array()
            .expect("an array of returns")
            .iter()
            .filter(|r| r["idflux"] == idflux && r["state"] == "current")
            .cloned()
            .collect()
    }

    /// The mock's witness that the following was polite: no listing of the declarant's
    /// returns refused for its window (429), none wider than the 60 minutes the mock
    /// announces. Returns the requests per returns service, for the record.
    async fn assert_no_window_too_wide(&self) -> serde_json::Value {
        let stats = self.ne.get("/stats").await;
        let scan = &stats["services"]["/lister-retours-declarant/1.0/"];
        assert_eq!(
            scan["by_status"]["429"],
            serde_json::Value::Null,
            "{stats:#}"
        );
        if let Some(widest) = scan["widest_window_secs"].as_i64() {
            assert!(
                widest <= 3600,
                "a window of {widest} s was asked: {stats:#}"
            );
        }
        serde_json::json!({
            "flux": stats["services"]["/lister-retours-flux/1.0/"]["requests"],
            "declarant": scan["requests"],
            "download": stats["services"]["/telecharger-retour/1.0/"]["requests"],
        })
    }

    async fn mock_return(&self, idflux: &str, nature: u64) -> serde_json::Value {
        self.mock_returns(idflux)
            .await
            .into_iter()
            .find(|r| r["nature"] == nature)
            .unwrap_or_else(|| panic!("no current return of nature {nature} for {idflux}"))
    }
}

/// A sample DSN of `month` (2026) with `employees`, real (02).
fn sample(month: u8, employees: usize, seed: u64) -> Vec<u8> {
    let mut spec =
        iea_dsn::SampleSpec::new(SIRET, iea_dsn::Month::new(2026, month).unwrap(), employees);
    spec.seed = seed;
    spec.test_or_real = iea_dsn::TestOrReal::Real;
    iea_dsn::sample(&spec)
}

/// The NIRs of a DSN's employees, in order.
fn nirs(file: &[u8]) -> Vec<String> {
    iea_dsn::Dsn::parse(file)
        .expect("a valid sample")
        .employees()
        .iter()
        .filter_map(|e| e.nir.clone())
        .collect()
}

/// `file` with the first payment's PAS amount (`S21.G00.50.009`) wrong by 100 €: the
/// same length of file, the same number of lines, still a well-formed DSN.
fn with_wrong_pas_amount(file: &[u8]) -> Vec<u8> {
    let text: String = file.iter().map(|b| *b as char).collect();
    let mut done = false;
    let out: Vec<String> = text
        .split('\n')
        .map(|line| {
            if !done && line.starts_with("S21.G00.50.009,'") {
                done = true;
                let value = line
                    .trim_end_matches('\r')
                    .trim_start_matches("S21.G00.50.009,'")
                    .trim_end_matches('\'');
                let cents: u64 = value.replace('.', "").parse().expect("an amount");
                let wrong = cents + 10_000;
                format!("S21.G00.50.009,'{}.{:02}'", wrong / 100, wrong % 100)
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(done, "the sample has a PAS amount");
    out.join("\n").chars().map(|c| c as u8).collect()
}

fn nature(r: &DsnReturnsOfDeposit, n: u32) -> Vec<&DsnReturn> {
    r.returns.iter().filter(|x| x.nature == n).collect()
}

fn current(r: &DsnReturnsOfDeposit, n: u32) -> Option<&DsnReturn> {
    r.returns.iter().find(|x| x.nature == n && x.current)
}

/// Every return of the deposit is in: 10 and 11 read, 94 read with its rates.
fn all_in(r: &DsnReturnsOfDeposit) -> bool {
    [10, 11, 94]
        .iter()
        .all(|n| current(r, *n).is_some_and(|x| x.download_state == "downloaded"))
        && !r.conformity.is_empty()
}

/// The last day of the second month after `available_on` (`YYYY-MM-DD`).
fn end_of_second_month_after(available_on: &str) -> String {
    let y: i32 = available_on[..4].parse().unwrap();
    let m: u32 = available_on[5..7].parse().unwrap();
    let (y2, m2) = if m + 2 > 12 {
        (y + 1, m + 2 - 12)
    } else {
        (y, m + 2)
    };
    let days = match m2 {
        2 if y2 % 4 == 0 && (y2 % 100 != 0 || y2 % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    format!("{y2:04}-{m2:02}-{days:02}")
}

#[tokio::test]
async fn a_deposit_gets_its_conformity_and_its_crm_pas_rates_reach_the_payroll() {
    let env = Env::start().await;
    let file = sample(11, 3, 31);
    let people = nirs(&file);
    assert_eq!(people.len(), 3);
    // The tax office's rate for the first employee, with a future rate.
    env.ne
        .send(
            reqwest::Method::PUT,
            &format!("/pas-rates/{}", people[0]),
            serde_json::json!({"taux": "7.50", "taux_futur": "8.10", "date_effet": "2027-02-01"}),
        )
        .await;
    let d = env.deposit_accepted(&file).await;

    // Before any return: the board shows the declaration, its conformity awaited.
    let board = env.board(&env.token).await;
    let row = board
        .rows
        .iter()
        .find(|r| r.siret == SIRET && r.month == "2026-11")
        .unwrap_or_else(|| panic!("no board row for November: {board:#?}"));
    assert_eq!(row.deposit_id, d.id);
    assert_eq!(row.deposit_state, "accepted");
    assert!(row.deposited_at.is_some());
    assert_eq!(row.conformity, "awaited");
    assert!(!row.crm_received);

    let published = env.ne.post("/returns/publish", serde_json::json!({})).await;
    assert!(published["published"].as_u64().unwrap() >= 3, "{published}");
    let r = env.follow_until(d.id, all_in).await;
    assert_eq!(r.conformity, "OK", "{r:#?}");
    assert_eq!(r.idflux, d.idflux);
    let crm = current(&r, 94).unwrap();
    assert_eq!(crm.rate_count, 3);
    assert_eq!(crm.crm_identifier.len(), 18, "{crm:#?}");
    assert!(crm.crm_identifier.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(
        env.mock_return(&d.idflux, 94).await["id"],
        crm.return_id.as_str()
    );

    // The rates, as `iea pas rates` lists them.
    let rates = env.rates(SIRET).await;
    assert_eq!(rates.len(), 3, "{rates:#?}");
    for p in &people {
        let rate = rates
            .iter()
            .find(|x| &x.nir_or_ntt == p)
            .expect("a rate per employee");
        assert_eq!(rate.siret, SIRET);
        assert_eq!(rate.rate_identifier, crm.crm_identifier);
        assert!(rate.valid);
        assert!(!rate.available_on.is_empty());
        assert_eq!(
            rate.valid_until,
            end_of_second_month_after(&rate.available_on),
            "{rate:#?}"
        );
        assert_eq!(rate.deposit_id, d.id);
        assert!(
            !rate.rate.is_empty(),
            "the mock derives a rate for everyone"
        );
    }
    let first = rates.iter().find(|x| x.nir_or_ntt == people[0]).unwrap();
    assert_eq!(first.rate, "7.50");
    assert_eq!(first.rate_hundredths, Some(750));
    assert_eq!(first.future_rate, "8.10");
    assert_eq!(first.future_effective_on, "2027-02-01");

    // The export folder for the payroll program: the CRM as received and taux.csv.
    let folder = env.t.dir.path().join("crm-pas").join(SIRET);
    let csv_path = folder.join("taux.csv");
    let csv = std::fs::read_to_string(&csv_path)
        .unwrap_or_else(|e| panic!("{} unreadable: {e}", csv_path.display()));
    for p in &people {
        let line = csv
            .lines()
            .find(|l| l.contains(p.as_str()))
            .unwrap_or_else(|| panic!("no line for an employee in taux.csv:\n{csv}"));
        assert!(line.contains(&crm.crm_identifier), "{line}");
        let rate = rates.iter().find(|x| &x.nir_or_ntt == p).unwrap();
        assert!(line.contains(&rate.valid_until), "{line}");
        assert!(line.contains(&rate.available_on), "{line}");
    }
    assert!(
        csv.lines()
            .find(|l| l.contains(people[0].as_str()))
            .unwrap()
            .contains("7.50")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&csv_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "taux.csv holds NIRs and rates");
    }
    let kept: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "taux.csv")
        .collect();
    assert!(
        !kept.is_empty(),
        "the CRM as received is kept beside taux.csv"
    );

    // The board: conform, the CRM with its rates, no alert.
    let board = env.board(&env.token).await;
    let row = board
        .rows
        .iter()
        .find(|r| r.siret == SIRET && r.month == "2026-11")
        .unwrap();
    assert_eq!(row.conformity, "ok", "{row:#?}");
    assert!(row.crm_received);
    assert_eq!(row.rates, 3);
    assert_eq!(row.crm_identifier, crm.crm_identifier);
    assert!(board.alerts.is_empty(), "{:#?}", board.alerts);
    let requests = env.assert_no_window_too_wide().await;
    eprintln!("requests to the mock's returns services for one deposit: {requests}");
    env.t.stop().await;
}

#[tokio::test]
async fn a_wrong_pas_amount_gets_a_conformity_ko_shown_on_the_board_and_in_the_status() {
    let env = Env::start().await;
    let file = with_wrong_pas_amount(&sample(11, 2, 32));
    iea_dsn::Dsn::parse(&file).expect("still a well-formed DSN");
    let d = env.deposit_accepted(&file).await;
    env.ne.post("/returns/publish", serde_json::json!({})).await;
    let r = env
        .follow_until(d.id, |r| {
            current(r, 11).is_some_and(|x| x.download_state == "downloaded")
                && !r.conformity.is_empty()
        })
        .await;
    assert_eq!(r.conformity, "KO", "{r:#?}");
    let conformity = current(&r, 11).unwrap();
    assert_eq!(conformity.statut, "KO");
    let anomaly = conformity
        .anomalies
        .iter()
        .find(|a| a.rubric == "S21.G00.50.009")
        .unwrap_or_else(|| panic!("no anomaly names S21.G00.50.009: {conformity:#?}"));
    assert_eq!(anomaly.code, "CCH-PAS-01");
    assert!(!anomaly.message.is_empty());
    assert!(
        r.conformity_message.contains("CCH-PAS-01"),
        "{}",
        r.conformity_message
    );

    // The board: the declaration is not conform, and the alert says why.
    let board = env.board(&env.token).await;
    let row = board.rows.iter().find(|r| r.month == "2026-11").unwrap();
    assert_eq!(row.conformity, "ko");
    assert!(row.anomalies >= 1);
    let alert = board
        .alerts
        .iter()
        .find(|a| a.code == "conformity_ko")
        .unwrap_or_else(|| panic!("no conformity_ko alert: {board:#?}"));
    assert_eq!(alert.deposit_id, d.id);
    assert_eq!(
        (alert.siret.as_str(), alert.month.as_str()),
        (SIRET, "2026-11")
    );
    assert!(
        alert.message.contains("S21.G00.50.009"),
        "{}",
        alert.message
    );
    assert!(alert.message.contains("novembre 2026"), "{}", alert.message);
    assert_eq!(board.alerts[0].code, "conformity_ko", "the most urgent");

    // The status: with a session, the number of alerts and the most urgent one.
    let mut status = StatusClient::new(env.t.channel().await);
    let s = status
        .get_status(authed(&env.token, GetStatusRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.alert_count as usize, board.alerts.len());
    let top = s.most_urgent_alert.expect("the most urgent alert");
    assert_eq!(top.code, "conformity_ko");
    assert_eq!(top.message, alert.message);
    // Without a session the status is still readable, without the alerts.
    let anonymous = status
        .get_status(GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(anonymous.alert_count, 0);
    assert!(anonymous.most_urgent_alert.is_none());

    // Another account, which deposited nothing, sees neither the board nor the alert.
    env.t
        .add_user(&env.token, "paie", "Bulletin#Mensuel2026")
        .await;
    let other = env.t.login("paie", "Bulletin#Mensuel2026").await;
    let theirs = env.board(&other).await;
    assert!(theirs.rows.is_empty(), "{theirs:#?}");
    assert!(theirs.alerts.is_empty());
    let s = status
        .get_status(authed(&other, GetStatusRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.alert_count, 0);
    env.t.stop().await;
}

/// A CRM nominatif for `idflux` giving `rate` to each of `nirs`, with `identifiant`.
fn crm_document(idflux: &str, identifiant: &str, nirs: &[String], rate: &str) -> String {
    let salaries: String = nirs
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "<salarie><NIR>{n}</NIR><matricule>M{i:03}</matricule><taux_imposition_PAS>{rate}</taux_imposition_PAS></salarie>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<ns2:rapport xmlns:ns2=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"CRM nominatif\" version=\"v01r07\" identifiant=\"{identifiant}\" message=\"Taux corrigés\">\
<envoi><envoi_identification><idflux>{idflux}</idflux><version_norme>P24V01</version_norme><emetteur_siret>{SIRET}</emetteur_siret></envoi_identification>\
<envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>\
<declaration><declaration_identification><rang>1</rang><type>01</type><identifiant_metier>1</identifiant_metier>\
<SIREN>{}</SIREN><nic_affectation>{}</nic_affectation></declaration_identification>\
<declaration_bilan><etat>OK</etat><declaration_contenu><salaries>{}</salaries></declaration_contenu>{salaries}</declaration_bilan>\
</declaration></ns2:rapport>",
        &SIRET[..9],
        &SIRET[9..],
        nirs.len()
    )
}

#[tokio::test]
async fn an_overwritten_return_is_fetched_again_and_a_purged_one_stops_nothing_else() {
    let env = Env::start().await;
    // October: its CRM will be purged before the orchestrator can download it.
    let october = sample(10, 2, 41);
    let oct = env.deposit_accepted(&october).await;
    let file = sample(11, 2, 42);
    let people = nirs(&file);
    let nov = env.deposit_accepted(&file).await;
    // October's CRM is purged as soon as published, before any following pass (the
    // orchestrator's own passes wait a minute after a deposit): listed, never
    // downloadable.
    env.ne.post("/returns/publish", serde_json::json!({})).await;
    let planned = env.mock_return(&oct.idflux, 94).await;
    env.ne
        .post(
            &format!(
                "/returns/{}/{}/purge",
                oct.idflux,
                planned["id"].as_str().unwrap()
            ),
            serde_json::json!({}),
        )
        .await;
    let first = env.follow_until(nov.id, all_in).await;
    let old_crm = current(&first, 94).unwrap().clone();
    let old_conformity = current(&first, 11).unwrap().clone();
    assert_eq!(first.conformity, "OK");
    let oct_returns = env
        .follow_until(oct.id, |r| {
            current(r, 94).is_some_and(|x| x.download_state == "gone")
                && current(r, 11).is_some_and(|x| x.download_state == "downloaded")
        })
        .await;
    assert!(!current(&oct_returns, 94).unwrap().message.is_empty());
    // November's rates came in spite of October's purged CRM.
    assert_eq!(env.rates(SIRET).await.len(), 2);

    // The conformity is overwritten with KO, the CRM with new rates and a new identifier.
    env.ne
        .post(
            &format!(
                "/returns/{}/{}/overwrite",
                nov.idflux, old_conformity.return_id
            ),
            serde_json::json!({"statut": "KO"}),
        )
        .await;
    let new_identifier = "987654321098765432";
    assert_ne!(old_crm.crm_identifier, new_identifier);
    env.ne
        .post(
            &format!("/returns/{}/{}/overwrite", nov.idflux, old_crm.return_id),
            serde_json::json!({
                "statut": "OK",
                "document": crm_document(&nov.idflux, new_identifier, &people, "9.90"),
            }),
        )
        .await;
    let r = env
        .follow_until(nov.id, |r| {
            nature(r, 11).len() == 2
                && nature(r, 94).len() == 2
                && current(r, 94).is_some_and(|x| x.download_state == "downloaded")
                && current(r, 11).is_some_and(|x| x.download_state == "downloaded")
        })
        .await;
    let crm = current(&r, 94).unwrap();
    assert_ne!(crm.return_id, old_crm.return_id);
    assert_eq!(crm.version, 2);
    assert_eq!(crm.crm_identifier, new_identifier);
    let old = nature(&r, 94)
        .into_iter()
        .find(|x| x.return_id == old_crm.return_id)
        .unwrap();
    assert!(!old.current);
    assert_eq!(r.conformity, "KO", "the new version's status counts");
    // Only the new version's rates are used.
    let rates = env.rates(SIRET).await;
    assert_eq!(rates.len(), 2, "{rates:#?}");
    for x in &rates {
        assert_eq!(x.rate, "9.90");
        assert_eq!(x.rate_identifier, new_identifier);
    }
    let csv = std::fs::read_to_string(
        env.t
            .dir
            .path()
            .join("crm-pas")
            .join(SIRET)
            .join("taux.csv"),
    )
    .unwrap();
    assert!(csv.contains(new_identifier), "{csv}");
    assert!(!csv.contains(&old_crm.crm_identifier), "{csv}");
    // The board follows the new versions too.
    let board = env.board(&env.token).await;
    let row = board.rows.iter().find(|r| r.month == "2026-11").unwrap();
    assert_eq!(row.conformity, "ko");
    assert_eq!(row.crm_identifier, new_identifier);
    env.assert_no_window_too_wide().await;
    env.t.stop().await;
}

#[tokio::test]
async fn a_hostile_return_is_refused_and_the_others_are_read() {
    // A small size cap, so that a document past it stays a small request to the mock.
    let env = Env::start_with(|s| s.returns.max_bytes = 32 << 10).await;
    let november = sample(11, 2, 51);
    let d = env.deposit_accepted(&november).await;
    env.ne.post("/returns/publish", serde_json::json!({})).await;
    let first = env.follow_until(d.id, all_in).await;
    let aee = current(&first, 10).unwrap().clone();
    let conformity = current(&first, 11).unwrap().clone();
    let crm = current(&first, 94).unwrap().clone();
    assert_eq!(env.rates(SIRET).await.len(), 2);

    // The acknowledgement overwritten with an address on another host; the conformity
    // with a document carrying a DTD and an entity.
    let marker = "CONTENU-HOSTILE-A-NE-PAS-REPRENDRE";
    env.ne
        .post(
            &format!("/returns/{}/{}/overwrite", d.idflux, aee.return_id),
            serde_json::json!({
                "statut": "OK",
                "url": format!("https://attaquant.example.invalid/telecharger-retour/1.0/{}/0000000001", d.idflux),
            }),
        )
        .await;
    env.ne
        .post(
            &format!("/returns/{}/{}/overwrite", d.idflux, conformity.return_id),
            serde_json::json!({
                "statut": "KO",
                "document": format!(
                    "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x \"{marker}\">]>\
<gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" type=\"Bilan d'anomalies\"><envoi><envoi_bilan><envoi_etat>&x;</envoi_etat></envoi_bilan></envoi></gipmds:rapport>"
                ),
            }),
        )
        .await;
    // Another declaration, deposited and followed meanwhile; then its CRM is overwritten
    // with a document past the size cap.
    let december = sample(12, 1, 52);
    let other = env.deposit_accepted(&december).await;
    env.ne.post("/returns/publish", serde_json::json!({})).await;
    let second = env.follow_until(other.id, all_in).await;
    assert_eq!(second.conformity, "OK");
    assert_eq!(env.rates(SIRET).await.len(), 3);
    let big_crm = current(&second, 94).unwrap().clone();
    env.ne
        .post(
            &format!("/returns/{}/{}/overwrite", other.idflux, big_crm.return_id),
            serde_json::json!({
                "statut": "OK",
                "document": format!(
                    "<?xml version=\"1.0\"?><!-- {} --><gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\"/>",
                    "x".repeat(40 << 10)
                ),
            }),
        )
        .await;

    let r = env
        .follow_until(d.id, |r| {
            nature(r, 10).len() == 2
                && nature(r, 11).len() == 2
                && current(r, 10).is_some_and(|x| x.download_state == "refused")
                && current(r, 11).is_some_and(|x| x.download_state == "refused")
        })
        .await;
    let r2 = env
        .follow_until(other.id, |r| {
            nature(r, 94).len() == 2
                && current(r, 94).is_some_and(|x| x.download_state == "refused")
        })
        .await;
    for x in [current(&r, 10), current(&r, 11), current(&r2, 94)] {
        let x = x.unwrap();
        assert!(!x.message.is_empty(), "a refusal says why: {x:#?}");
        assert!(!x.message.contains(marker), "{}", x.message);
        assert!(x.anomalies.is_empty());
    }
    // November's CRM was never touched: its rates are still the payroll's; December's
    // were overwritten by the refused version and are no longer used.
    assert_eq!(current(&r, 94).unwrap().return_id, crm.return_id);
    let rates = env.rates(SIRET).await;
    assert_eq!(rates.len(), 2, "{rates:#?}");
    assert!(
        rates
            .iter()
            .all(|x| x.rate_identifier == crm.crm_identifier)
    );
    let people = nirs(&november);
    assert!(rates.iter().all(|x| people.contains(&x.nir_or_ntt)));
    // The orchestrator still answers, and the board still shows both declarations.
    let board = env.board(&env.token).await;
    assert!(board.rows.iter().any(|w| w.month == "2026-11"));
    assert!(board.rows.iter().any(|w| w.month == "2026-12"));
    env.t.stop().await;
}
