//! A real HTTP proxy for the tests of connection settings.

use std::time::{Duration, Instant};

/// A real HTTP proxy (tinyproxy, from Debian's packages) on a loopback port, requiring
/// `user`/`password`. Stopped when dropped.
pub struct Tinyproxy {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub async fn start(user: &str, password: &str) -> Self {
        let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("tinyproxy is needed by the proxy tests: apt-get install tinyproxy (.ci/run installs it)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 50\nLogLevel Warning\nBasicAuth {user} {password}\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "tinyproxy did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
