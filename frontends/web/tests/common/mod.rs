//! Test harness: the embedded stack (mocks, agents, orchestrator) as the one stack driver
//! starts it (`iea_stack_testkit::TestStack`: a temporary data directory, the mocks' demo
//! fixtures, the test database — SQLite, or PostgreSQL when `IEA_TEST_DATABASE_URL` names
//! a server) with a web console in front of it, and an HTTP client that keeps cookies by
//! hand (so the tests read every `Set-Cookie` themselves). A `Harness` dereferences to its
//! `TestStack`: `dir`, `file()`, `admin_password()`, `mock(…)`, `set_licence(…)`,
//! `installation_secrets()` are the driver's.

#![allow(dead_code)]

pub mod webdriver;

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use iea_runtime::shutdown::Shutdown;
use iea_stack_testkit::TestStack;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, Response};

pub struct Harness {
    pub stack: TestStack,
    pub web: SocketAddr,
    /// The console's folder where uploaded files wait (`iea_web::App::upload_dir`), in the
    /// stack's data directory.
    pub uploads: PathBuf,
    stop: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Deref for Harness {
    type Target = TestStack;

    fn deref(&self) -> &TestStack {
        &self.stack
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

impl Harness {
    /// Gives Administrateur, through the API of `s`, the Net-entreprises identity of
    /// DUPONT Marie (the mock's directory) for `siret`, with `password`.
    pub async fn set_admin_identity(&self, s: &Session, siret: &str, password: &str) {
        use iea_mock_net_entreprises::fixtures::DUPONT;
        let r = s
            .call(Method::PUT, "/api/v1/credentials/Administrateur")
            .json(&serde_json::json!({
                "account_password": self.admin_password(), "siret": siret,
                "nom": DUPONT.nom, "prenom": DUPONT.prenom, "password": password,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "identity of Administrateur");
    }

    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// `secure_cookies`: the console as it runs behind TLS.
    pub async fn start_with(secure_cookies: bool) -> Self {
        Self::start_stack(secure_cookies, |_| {}).await
    }

    /// The orchestrator's settings as `customize` adjusts them (shorter waits of the
    /// deposits' worker…).
    pub async fn start_customized(customize: iea_stack::OrchestratorHook) -> Self {
        Self::start_stack(false, |o| o.customize_orchestrator = Some(customize)).await
    }

    async fn start_stack(
        secure_cookies: bool,
        configure: impl FnOnce(&mut iea_stack::StackOptions),
    ) -> Self {
        iea_runtime::install_crypto_provider();
        // Always an embedded stack of its own (never a composed one): the tests read its
        // installation's secrets.
        let stack = TestStack::start_configured(configure).await;
        let f = stack.file();
        // Uploads wait in a folder of the stack's data directory, the console's own (the
        // upload tests watch it), rather than in the system's temporary folder.
        let app = iea_web::App::build(iea_web::Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            orchestrator: f.orchestrator.clone(),
            ca: f.ca.clone(),
            orchestrator_server_name: f.orchestrator_server_name.clone(),
            secure_cookies,
            tls: None,
            upload_dir: Some(stack.dir.path().join("web-uploads")),
        })
        .await
        .expect("web console builds");
        let web = app.local_addr();
        let uploads = app.upload_dir().to_owned();
        let stop = Shutdown::new();
        let task = tokio::spawn(app.run_until(stop.clone()));
        Self {
            stack,
            web,
            uploads,
            stop,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.web)
    }

    /// Signs in through the JSON API; the session.
    pub async fn api_session(&self) -> Session {
        let r = client()
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({"user": "Administrateur", "password": self.admin_password()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "sign-in");
        let cookie = session_cookie(&r).expect("a session cookie");
        let body: serde_json::Value = r.json().await.unwrap();
        Session {
            base: self.url(""),
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn stop(self) {
        self.stop.trigger();
        self.task.await.unwrap().expect("web console stops cleanly");
        self.stack.stop().await;
    }
}

/// `name=value` of the `iea_session` cookie an answer sets.
pub fn session_cookie(r: &Response) -> Option<String> {
    set_cookies(r)
        .into_iter()
        .find(|c| c.starts_with("iea_session=") && !c.starts_with("iea_session=;"))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

pub fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// A signed-in client.
pub struct Session {
    pub base: String,
    /// `iea_session=…`
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        client()
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
    }

    /// A state-changing JSON call with the CSRF token.
    pub fn call(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
            .header("x-csrf-token", &self.csrf)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.request(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// Deposit `id` (`GET /api/v1/deposits/{id}`) once settled, asked every 200 ms for at
    /// most `within`.
    pub async fn settled_deposit(
        &self,
        id: impl std::fmt::Display,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let d = self.get_json(&format!("/api/v1/deposits/{id}")).await;
            if d["settled"] == true {
                return d;
            }
            assert!(tokio::time::Instant::now() < deadline, "not settled: {d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The value of hidden field `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Deposits the sample DSN (`tests/fixtures/sample-78214563500010-2026-10.dsn`) from the
/// « Déclarations » page in `browser`, as a person would, and waits until the deposit's
/// own page is loaded.
pub async fn deposit_sample_in(h: &Harness, browser: &webdriver::Browser) {
    browser.goto(&h.url("/declarations")).await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sample-78214563500010-2026-10.dsn");
    browser.type_into("#file", file.to_str().unwrap()).await;
    browser.click("#deposit-button").await;
    browser
        .wait_for(
            "return location.pathname.startsWith('/declarations/') && document.readyState === 'complete' && !!document.getElementById('deposit');",
            serde_json::json!(true),
        )
        .await;
}
