//! What the deposit agent's test binaries share: the agent's internal PKI.

use iea_runtime::pki::{CertificateAuthority, TlsFiles, Validity};

/// A CA, the agent's certificate and the orchestrator's (the runtime's `pki::init` does
/// not issue one for the deposit agent yet). Answers (agent's files, orchestrator's).
pub fn internal_pki(dir: &std::path::Path) -> (TlsFiles, TlsFiles) {
    let ca = CertificateAuthority::new("deposit agent tests internal CA").unwrap();
    std::fs::write(dir.join("internal-ca.pem"), ca.cert_pem()).unwrap();
    let files = |name: &str| {
        let names = vec![name.to_owned(), "localhost".into(), "127.0.0.1".into()];
        let leaf = ca.issue(name, &names, Validity::default()).unwrap();
        let f = TlsFiles {
            ca: dir.join("internal-ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        leaf.write(&f.cert, &f.key).unwrap();
        f
    };
    (files("deposit-agent"), files("orchestrator"))
}
