//! A stack run by docker compose (`docker/compose-e2e.sh`), which [`crate::TestStack`]
//! drives instead of an embedded one when `IEA_E2E_COMPOSE_DATA` names its data directory.

use iea_stack::StackFile;

/// A stack run by docker compose.
pub struct Compose {
    pub project: String,
    pub file: StackFile,
    pub(crate) admin_password: String,
}

impl Compose {
    /// The composed stack `IEA_E2E_COMPOSE_DATA` names (project `IEA_E2E_COMPOSE_PROJECT`,
    /// default `iea-smoke`), if any.
    pub(crate) fn from_env() -> Option<Self> {
        let data = std::path::PathBuf::from(std::env::var_os("IEA_E2E_COMPOSE_DATA")?);
        let project =
            std::env::var("IEA_E2E_COMPOSE_PROJECT").unwrap_or_else(|_| "iea-smoke".into());
        let file = StackFile::read(&data).expect("the composed stack's stack.json");
        let out = compose_cmd(
            &project,
            &[
                "exec",
                "-T",
                "orchestrator",
                "cat",
                "/var/lib/iea-connect/admin-password",
            ],
        );
        let admin_password = String::from_utf8(out).unwrap().trim().to_owned();
        Some(Self {
            project,
            file,
            admin_password,
        })
    }
}

/// Runs `docker compose -p PROJECT ARGS` (or `docker-compose`) on the repository's
/// `docker-compose.yml`; its stdout.
pub fn compose_cmd(project: &str, args: &[&str]) -> Vec<u8> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker-compose.yml");
    let v2 = std::process::Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = if v2 {
        let mut c = std::process::Command::new("docker");
        c.arg("compose");
        c
    } else {
        std::process::Command::new("docker-compose")
    };
    let out = cmd
        .args(["-p", project, "-f", root])
        .args(args)
        .output()
        .expect("docker compose runs");
    assert!(
        out.status.success(),
        "docker compose {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `docker ARGS`; its stdout.
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
