//! The Net-entreprises mock in a test world, as the credential verifier's and the deposit
//! agent's tests start it (feature `net-entreprises`).

use std::net::SocketAddr;

use iea_mock_net_entreprises as mock;

use crate::TestWorld;

/// Bearer token of the mock's admin API in these tests.
pub const ADMIN_TOKEN: &str = "admin";

/// A running Net-entreprises mock.
pub struct NetEntreprisesMock {
    /// The in-process control: statistics, faults, clock.
    pub control: mock::Control,
    /// `https://127.0.0.1:<port>`.
    pub https: String,
    pub admin_addr: SocketAddr,
}

/// Starts the mock in `world` on free ports, accounts locked after 3 failed logins, then
/// `tweak`'s changes; it runs until the world stops.
pub async fn start(
    world: &TestWorld,
    tweak: impl FnOnce(&mut mock::Settings),
) -> NetEntreprisesMock {
    let mut settings = mock::Settings {
        listen: world.mock_listen(ADMIN_TOKEN),
        lock_threshold: 3,
        ..mock::Settings::default()
    };
    tweak(&mut settings);
    let app = mock::App::build(settings).await.expect("mock binds");
    let started = NetEntreprisesMock {
        control: app.control(),
        https: format!("https://127.0.0.1:{}", app.https_addr().port()),
        admin_addr: app.admin_addr(),
    };
    world.spawn(app.run_until(world.shutdown()));
    started
}
