//! The update mock over plain HTTP: signed metadata is served, targets answer `Range`
//! requests, attack modes change what is served, and the admin API needs its token.

use std::time::Duration;

use iea_mock_updates::{App, Settings};
use iea_runtime::pki;
use iea_runtime::shutdown::Shutdown;
use serde_json::{Value, json};

const TOKEN: &str = "mock-updates-tests";

struct Mock {
    base: String,
    admin: String,
    http: reqwest::Client,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn start() -> Mock {
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    pki::init(dir.path(), &[]).expect("pki");
    let mut settings = Settings::default();
    settings.listen.tls = pki::mock_files(dir.path());
    settings.listen.admin_token = TOKEN.into();
    settings.root_file = Some(dir.path().join("root.json"));
    let app = App::build(settings).await.expect("mock binds");
    let mock = Mock {
        base: format!("http://{}", app.http_addr()),
        admin: format!("http://{}", app.admin_addr()),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        shutdown: Shutdown::new(),
        _dir: dir,
    };
    tokio::spawn(app.run_until(mock.shutdown.clone()));
    mock
}

impl Mock {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("answer")
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("json")
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("admin answer");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("admin json")
    }

    /// The consistent path of the package of `version`, from the signed targets.
    async fn package_path(&self) -> (String, u64) {
        let ts = self.json("/metadata/timestamp.json").await;
        let v = ts["signed"]["meta"]["snapshot.json"]["version"]
            .as_u64()
            .unwrap();
        let snap = self.json(&format!("/metadata/{v}.snapshot.json")).await;
        let tv = snap["signed"]["meta"]["targets.json"]["version"]
            .as_u64()
            .unwrap();
        let targets = self.json(&format!("/metadata/{tv}.targets.json")).await;
        let t = &targets["signed"]["targets"]["iea-3.00.72.tar"];
        (
            format!(
                "/targets/{}.iea-3.00.72.tar",
                t["hashes"]["sha256"].as_str().unwrap()
            ),
            t["length"].as_u64().unwrap(),
        )
    }
}

#[tokio::test]
async fn the_fixtures_are_signed_and_listed_with_notes_and_scripts() {
    let mock = start().await;
    let root = mock.json("/metadata/1.root.json").await;
    assert_eq!(root["signed"]["_type"], "root");
    assert_eq!(root["signed"]["consistent_snapshot"], true);
    let releases = mock
        .admin(reqwest::Method::GET, "/__admin/releases", None)
        .await;
    let versions: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["3.00.70", "3.00.72"]);
    assert_eq!(releases[1]["scripts"].as_array().unwrap().len(), 2);
    assert_eq!(releases[1]["notes"], "iea-3.00.72.lisez-moi.txt");
    // The root file for clients is written.
    let written = std::fs::read(mock._dir.path().join("root.json")).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&written).unwrap(), root);
}

#[tokio::test]
async fn a_release_whose_version_is_not_an_impact_emploi_version_is_refused_and_nothing_changes() {
    let mock = start().await;
    let before = mock
        .admin(reqwest::Method::GET, "/__admin/releases", None)
        .await;
    for bad in ["3.0.73", "3.00.73.1", "../3.00.73", "trois"] {
        let r = mock
            .http
            .post(format!("{}/__admin/releases", mock.admin))
            .bearer_auth(TOKEN)
            .json(&json!({"version": bad}))
            .send()
            .await
            .expect("admin answer");
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "invalid_input", "{bad}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("n'est pas un numéro de version")),
            "{bad}: {body}"
        );
    }
    let after = mock
        .admin(reqwest::Method::GET, "/__admin/releases", None)
        .await;
    assert_eq!(after, before);
    // Releases are listed in numeric order: 3.00.100 after 3.00.72 (as text it would come
    // before).
    mock.admin(
        reqwest::Method::POST,
        "/__admin/releases",
        Some(json!({"version": "3.00.100"})),
    )
    .await;
    let releases = mock
        .admin(reqwest::Method::GET, "/__admin/releases", None)
        .await;
    let versions: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["3.00.70", "3.00.72", "3.00.100"]);
}

#[tokio::test]
async fn a_range_request_gets_the_rest_of_the_package() {
    let mock = start().await;
    let (path, len) = mock.package_path().await;
    let whole = mock.get(&path).await.bytes().await.unwrap();
    assert_eq!(whole.len() as u64, len);
    let r = mock
        .http
        .get(format!("{}{path}", mock.base))
        .header("Range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1000-{}/{len}", len - 1)
    );
    assert_eq!(r.bytes().await.unwrap(), whole.slice(1000..));
    let stats = mock
        .admin(reqwest::Method::GET, "/__admin/stats", None)
        .await;
    assert_eq!(stats["range_requests"], 1);

    mock.admin(
        reqwest::Method::PUT,
        "/__admin/transfer",
        Some(json!({"ranges": false})),
    )
    .await;
    let r = mock
        .http
        .get(format!("{}{path}", mock.base))
        .header("Range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "ranges switched off");
}

#[tokio::test]
async fn attack_modes_change_what_is_served() {
    let mock = start().await;
    let (path, len) = mock.package_path().await;
    mock.admin(
        reqwest::Method::POST,
        "/__admin/attack",
        Some(json!({"mode": "oversize_package"})),
    )
    .await;
    let body = mock.get(&path).await.bytes().await.unwrap();
    assert!(body.len() as u64 > len);

    let before = mock.json("/metadata/timestamp.json").await;
    mock.admin(
        reqwest::Method::POST,
        "/__admin/attack",
        Some(json!({"mode": "old_timestamp"})),
    )
    .await;
    let old = mock.json("/metadata/timestamp.json").await;
    assert!(old["signed"]["version"].as_u64() < before["signed"]["version"].as_u64());

    mock.admin(
        reqwest::Method::POST,
        "/__admin/attack",
        Some(json!({"mode": "none"})),
    )
    .await;
    let after = mock.json("/metadata/timestamp.json").await;
    assert!(after["signed"]["version"].as_u64() > before["signed"]["version"].as_u64());
}

#[tokio::test]
async fn the_admin_api_needs_the_token() {
    let mock = start().await;
    let r = mock
        .http
        .get(format!("{}/__admin/root", mock.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_persistent_repository_keeps_its_root_and_raises_versions_across_restarts() {
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    pki::init(&dir.path().join("pki"), &[]).expect("pki");
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let mut settings = Settings::default();
        settings.listen.tls = pki::mock_files(&dir.path().join("pki"));
        settings.listen.admin_token = TOKEN.into();
        settings.repository_dir = Some(dir.path().join("repo"));
        let app = App::build(settings).await.expect("mock binds");
        let root = app.root_json().await;
        let admin = format!("http://{}", app.admin_addr());
        let stop = Shutdown::new();
        let task = tokio::spawn(app.run_until(stop.clone()));
        let versions: Value = http
            .get(format!("{admin}/__admin/metadata"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stop.trigger();
        task.await.unwrap().unwrap();
        seen.push((root, versions["timestamp"].as_u64().unwrap()));
    }
    assert_eq!(seen[0].0, seen[1].0, "same root after a restart");
    assert!(seen[1].1 > seen[0].1, "versions go up: {seen:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("repo/keys/root.pk8"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
