//! Certificates, made with rcgen.
//!
//! Two authorities, kept apart on purpose:
//! - the **internal CA** signs one certificate per component (orchestrator and agents);
//!   each certificate serves as both server and client identity for mutual TLS, and
//!   front-ends trust this CA to reach the orchestrator;
//! - the **mocks CA** stands in for the web PKI: it signs the mock servers' certificate,
//!   and agents are configured to trust it beside the system roots. Verification is never
//!   turned off anywhere.
//!
//! Files in the PKI directory (keys are mode 0600):
//! `ca.pem ca.key`, `<component>.pem <component>.key` for each of [`COMPONENTS`],
//! `mocks-ca.pem mocks-ca.key`, `mocks.pem mocks.key`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Components that talk gRPC over mutual TLS, each with its own certificate.
pub const COMPONENTS: &[&str] = &[
    "orchestrator",
    "auth-client",
    "update-client",
    "credential-verifier",
    "deposit-agent",
];

/// Host names of the mock servers (compose service names), all in the mocks' certificate.
pub const MOCK_HOSTS: &[&str] = &[
    "impact-emploi-auth",
    "impact-emploi-updates",
    "net-entreprises",
];

const INTERNAL_CA_NAME: &str = "iea-connect internal CA";
const MOCKS_CA_NAME: &str = "iea-connect mocks test CA";

/// The three files a TLS endpoint needs: the CA it trusts, its certificate and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The files of `component` in the PKI directory `dir`.
pub fn component_files(dir: &Path, component: &str) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{component}.pem")),
        key: dir.join(format!("{component}.key")),
    }
}

/// The mock servers' files: `ca` is the mocks CA that clients must trust.
pub fn mock_files(dir: &Path) -> TlsFiles {
    TlsFiles {
        ca: dir.join("mocks-ca.pem"),
        cert: dir.join("mocks.pem"),
        key: dir.join("mocks.key"),
    }
}

/// What [`init`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyPresent,
}

/// Creates the PKI directory if it does not hold one yet. `extra_names` are added to
/// every certificate's names (beside the component name, `localhost`, `127.0.0.1`, `::1`),
/// for deployments reached under another host name.
///
/// A directory holding only part of the files is an error, never silently completed:
/// mixing certificates of two CAs would fail later, far from the cause.
pub fn init(dir: &Path, extra_names: &[String]) -> anyhow::Result<InitOutcome> {
    let expected = expected_files(dir);
    let present = expected.iter().filter(|p| p.exists()).count();
    if present == expected.len() {
        return Ok(InitOutcome::AlreadyPresent);
    }
    if present > 0 {
        anyhow::bail!(
            "the PKI directory {} is incomplete ({present} of {} files); remove it or restore it",
            dir.display(),
            expected.len()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let ca = CertificateAuthority::new(INTERNAL_CA_NAME)?;
    ca.write(&dir.join("ca.pem"), &dir.join("ca.key"))?;
    for component in COMPONENTS {
        let mut names = default_names(component);
        names.extend(extra_names.iter().cloned());
        let leaf = ca.issue(component, &names, Validity::default())?;
        leaf.write(
            &dir.join(format!("{component}.pem")),
            &dir.join(format!("{component}.key")),
        )?;
    }

    let mocks_ca = CertificateAuthority::new(MOCKS_CA_NAME)?;
    mocks_ca.write(&dir.join("mocks-ca.pem"), &dir.join("mocks-ca.key"))?;
    let mut names: Vec<String> = MOCK_HOSTS.iter().map(|s| s.to_string()).collect();
    names.extend(default_names("localhost"));
    names.extend(extra_names.iter().cloned());
    names.dedup();
    let leaf = mocks_ca.issue("iea-connect mock servers", &names, Validity::default())?;
    let files = mock_files(dir);
    leaf.write(&files.cert, &files.key)?;
    Ok(InitOutcome::Created)
}

fn expected_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![dir.join("ca.pem"), dir.join("ca.key")];
    for c in COMPONENTS {
        let f = component_files(dir, c);
        v.push(f.cert);
        v.push(f.key);
    }
    let m = mock_files(dir);
    v.extend([m.ca, dir.join("mocks-ca.key"), m.cert, m.key]);
    v
}

fn default_names(name: &str) -> Vec<String> {
    let mut v = vec![
        name.to_owned(),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    v.dedup();
    v
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Default for Validity {
    /// From yesterday (clock skew) for two years.
    fn default() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(730),
        }
    }
}

impl Validity {
    /// A validity that ended yesterday, for tests of expired certificates.
    pub fn expired() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
        }
    }
}

/// A certificate authority held in memory, able to issue leaf certificates.
pub struct CertificateAuthority {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
}

impl CertificateAuthority {
    /// A new self-signed CA valid for ten years.
    pub fn new(common_name: &str) -> anyhow::Result<Self> {
        let params = ca_params(common_name)?;
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Self {
            params,
            key,
            cert_pem,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for `names` (DNS names or IP addresses), usable as server and
    /// client identity.
    pub fn issue(
        &self,
        common_name: &str,
        names: &[String],
        validity: Validity,
    ) -> anyhow::Result<IssuedCert> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn write(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        write_file(cert, self.cert_pem.as_bytes(), false)?;
        write_file(key, self.key.serialize_pem().as_bytes(), true)
    }
}

fn ca_params(common_name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "iea-connect");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    Ok(params)
}

/// A leaf certificate and its private key, PEM-encoded.
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

impl IssuedCert {
    pub fn write(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        write_file(cert, self.cert_pem.as_bytes(), false)?;
        write_file(key, self.key_pem.as_bytes(), true)
    }
}

/// Writes `bytes` to `path` atomically (temporary file, then rename); `private` files are
/// created mode 0600 from the start, never readable by others even for an instant.
pub fn write_file(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Creates `dir` (and its missing parents) and makes it 0700: a folder of personal data or
/// secrets, closed to other users (the parents keep the mode they were given).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Makes an existing file 0600 (a file someone else wrote, now ours to keep private).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_every_file_once_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(init(dir.path(), &[]).unwrap(), InitOutcome::Created);
        for f in expected_files(dir.path()) {
            assert!(f.exists(), "{} missing", f.display());
            #[cfg(unix)]
            if f.extension().is_some_and(|e| e == "key") {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", f.display());
            }
        }
        let ca_before = std::fs::read(dir.path().join("ca.pem")).unwrap();
        assert_eq!(init(dir.path(), &[]).unwrap(), InitOutcome::AlreadyPresent);
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca_before);
    }

    #[test]
    fn a_partial_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &[]).unwrap();
        std::fs::remove_file(dir.path().join("auth-client.key")).unwrap();
        let err = init(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("incomplete"), "{err}");
    }
}
