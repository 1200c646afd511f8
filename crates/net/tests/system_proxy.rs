//! Connection type "system": the proxy comes from `HTTPS_PROXY`, and `NO_PROXY` bypasses
//! it. A binary of its own, since it sets the process environment before anything runs.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use iea_mock_kit::{Faults, MockListen, MockServer};
use iea_net::{ConnectionMode, ConnectionType, NetworkSettings, Step, probe};
use iea_runtime::pki::{CertificateAuthority, TlsFiles, Validity};
use iea_runtime::shutdown::Shutdown;

/// The proxy process, and the directory holding its configuration while it runs.
struct Proxy(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tinyproxy (Debian's package, installed by .ci/run) requiring `paie` / `Bon-mot`.
fn tinyproxy(port: u16) -> Proxy {
    let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("tinyproxy is needed: apt-get install tinyproxy (.ci/run installs it)");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nLogLevel Warning\nBasicAuth paie Bon-mot\n"),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tinyproxy did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proxy(child, dir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_system_setting_uses_https_proxy_and_honours_no_proxy() {
    let port = free_port();
    // Before any thread starts: the environment is then read by every client built.
    // SAFETY: no other thread exists yet in this test binary's only test.
    unsafe {
        std::env::set_var(
            "HTTPS_PROXY",
            format!("http://paie:Mauvais@127.0.0.1:{port}"),
        );
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let _proxy = tinyproxy(port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        iea_runtime::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::new("system proxy test CA").unwrap();
        let leaf = ca
            .issue(
                "s",
                &["127.0.0.1".into(), "localhost".into()],
                Validity::default(),
            )
            .unwrap();
        let (cert, key) = (dir.path().join("s.pem"), dir.path().join("s.key"));
        leaf.write(&cert, &key).unwrap();
        let listen = MockListen {
            tls: TlsFiles {
                ca: Default::default(),
                cert,
                key,
            },
            admin_token: "t".into(),
            ..Default::default()
        };
        let server = MockServer::bind(
            "system-proxy-test",
            &listen,
            Router::new().route("/", get(|| async { "ok" })),
            Router::new(),
            Faults::default(),
        )
        .await
        .unwrap();
        let url = format!("https://{}/", server.https_addr());
        let stop = Shutdown::new();
        tokio::spawn(server.run_until(stop.clone()));

        let mut settings = NetworkSettings::direct(ConnectionMode::Secure, &url).unwrap();
        settings.extra_ca_pem = Some(ca.cert_pem().to_owned());
        settings.connection_type = ConnectionType::System;

        // Through the environment's proxy, whose password is wrong: refused at the proxy.
        let d = probe(&settings, "test").await;
        assert_eq!(d.step, Step::Proxy, "HTTPS_PROXY is used: {d:?}");

        // Direct ignores the environment.
        settings.connection_type = ConnectionType::Direct;
        assert_eq!(probe(&settings, "test").await.step, Step::Ok);

        // NO_PROXY bypasses it.
        // SAFETY: the runtime's threads do not read or write the environment concurrently.
        unsafe { std::env::set_var("NO_PROXY", "127.0.0.1,localhost") };
        settings.connection_type = ConnectionType::System;
        let d = probe(&settings, "test").await;
        assert_eq!(d.step, Step::Ok, "NO_PROXY is honoured: {d:?}");
        stop.trigger();
    });
}
