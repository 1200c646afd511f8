//! The licence key is a secret: with every log of every crate switched on at TRACE, an
//! authentication that succeeds, one that is refused and one that cannot reach the server
//! leave no trace of it. One test in its own binary, as it installs the global subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{LICENCE_KEY, start};
use iea_proto::agent::v1::authenticate_response::Outcome;
use iea_proto::common::v1 as pb;
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_licence_key_appears_in_no_log_line_even_at_trace_level() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");

    let world = start().await;
    let https = world.settings(pb::ConnectionMode::Secure, &world.https_address());
    let outcome = world
        .authenticate_with(https.clone(), LICENCE_KEY, "3.00.72")
        .await;
    assert!(matches!(outcome, Outcome::Authorized(_)), "{outcome:?}");

    world
        .admin(
            reqwest::Method::PATCH,
            &format!("/__admin/installations/{}", common::INSTALLATION),
            json!({"status": "refused"}),
        )
        .await;
    let outcome = world.authenticate_with(https, LICENCE_KEY, "3.00.72").await;
    assert!(matches!(outcome, Outcome::Refused(_)), "{outcome:?}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let nowhere = world.settings(
        pb::ConnectionMode::Normal,
        &format!("http://127.0.0.1:{closed}"),
    );
    let outcome = world
        .authenticate_with(nowhere, LICENCE_KEY, "3.00.72")
        .await;
    assert!(matches!(outcome, Outcome::Unreachable(_)), "{outcome:?}");

    let logs = String::from_utf8_lossy(&capture.0.lock().expect("capture lock")).into_owned();
    assert!(
        logs.contains("authentication answered"),
        "the logs were captured"
    );
    assert!(
        logs.contains("authentication server unreachable"),
        "the logs were captured"
    );
    assert!(!logs.contains(LICENCE_KEY), "the licence key was logged");
}
