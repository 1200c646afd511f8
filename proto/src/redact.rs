//! `Debug` for messages that hold a secret: every field but the secret ones is printed.

use std::fmt;

use crate::{agent, common, v1};

const REDACTED: &str = "<redacted>";

fn secret(s: &str) -> &'static str {
    if s.is_empty() { "" } else { REDACTED }
}

impl fmt::Debug for common::v1::ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &secret(&self.password))
            .finish()
    }
}

impl fmt::Debug for agent::v1::DeclarantIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeclarantIdentity")
            .field("siret", &self.siret)
            .field("nom", &self.nom)
            .field("prenom", &self.prenom)
            .field("password", &secret(&self.password))
            .finish()
    }
}

impl fmt::Debug for agent::v1::DepositChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DepositChunk")
            .field("start", &self.start)
            .field("data_len", &self.data.len())
            .field("withdraw", &self.withdraw)
            .finish()
    }
}

impl fmt::Debug for agent::v1::DownloadReturnChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadReturnChunk")
            .field("data_len", &self.data.len())
            .field("outcome", &self.outcome)
            .finish()
    }
}

impl fmt::Debug for v1::PasRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasRate")
            .field("siret", &self.siret)
            .field("ntt", &self.ntt)
            .field("rate_identifier", &self.rate_identifier)
            .field("available_on", &self.available_on)
            .field("valid_until", &self.valid_until)
            .field("valid", &self.valid)
            .field("deposit_id", &self.deposit_id)
            .field("idflux", &self.idflux)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for v1::DsnUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsnUpload")
            .field("start", &self.start)
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl fmt::Debug for agent::v1::InstallationIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallationIdentity")
            .field("installation_id", &self.installation_id)
            .field("licence_key", &secret(&self.licence_key))
            .field("software_version", &self.software_version)
            .field("workstation", &self.workstation)
            .finish()
    }
}

impl fmt::Debug for v1::LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("user", &self.user)
            .field("password", &secret(&self.password))
            .finish()
    }
}

impl fmt::Debug for v1::LoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &secret(&self.token))
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish()
    }
}

impl fmt::Debug for v1::AddUserRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddUserRequest")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password", &secret(&self.password))
            .finish()
    }
}

impl fmt::Debug for v1::ChangePasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangePasswordRequest")
            .field("name", &self.name)
            .field("current_password", &secret(&self.current_password))
            .field("new_password", &secret(&self.new_password))
            .finish()
    }
}

impl fmt::Debug for v1::NetEntreprisesIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetEntreprisesIdentity")
            .field("siret", &self.siret)
            .field("nom", &self.nom)
            .field("prenom", &self.prenom)
            .field("password", &secret(&self.password))
            .finish()
    }
}

impl fmt::Debug for v1::SetCredentialsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetCredentialsRequest")
            .field("user", &self.user)
            .field("account_password", &secret(&self.account_password))
            .field("identity", &self.identity)
            .finish()
    }
}

impl fmt::Debug for v1::DeactivateAssistanceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeactivateAssistanceRequest")
            .field("daily_password", &secret(&self.daily_password))
            .finish()
    }
}

impl fmt::Debug for v1::ProxyView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyView")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &secret(&self.password))
            .field("password_set", &self.password_set)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_password() {
        let req = v1::SetCredentialsRequest {
            user: "Dupont".into(),
            account_password: "Impact-Secret-1".into(),
            identity: Some(v1::NetEntreprisesIdentity {
                siret: "99900000300015".into(),
                nom: "declarant".into(),
                prenom: "declarant".into(),
                password: "Refonte01".into(),
            }),
        };
        let out = format!("{req:?} {:#?}", req);
        assert!(!out.contains("Impact-Secret-1"), "{out}");
        assert!(!out.contains("Refonte01"), "{out}");
        assert!(out.contains("99900000300015"));
    }

    #[test]
    fn a_deposit_chunk_prints_neither_the_password_nor_the_file() {
        let chunk = agent::v1::DepositChunk {
            start: Some(agent::v1::DepositStart {
                access: Some(agent::v1::NetEntreprisesAccess {
                    identity: Some(agent::v1::DeclarantIdentity {
                        siret: "99900000300015".into(),
                        nom: "declarant".into(),
                        prenom: "declarant".into(),
                        password: "Refonte01".into(),
                    }),
                    ..Default::default()
                }),
                deposit_id: "d-1".into(),
                total_size: 27,
                ..Default::default()
            }),
            data: b"S21.G00.30.001,'1800175123456'".to_vec(),
            withdraw: false,
        };
        let out = format!("{chunk:?} {chunk:#?}");
        assert!(!out.contains("Refonte01"), "{out}");
        assert!(
            !out.contains("1800175123456") && !out.contains("83, 50"),
            "{out}"
        );
        assert!(out.contains("data_len: 30"), "{out}");
    }

    #[test]
    fn a_pas_rate_prints_neither_the_nir_the_matricule_nor_the_rate() {
        let rate = v1::PasRate {
            siret: "73282932000074".into(),
            nir_or_ntt: "1800175123456".into(),
            matricule: "M-0042".into(),
            rate: "7.35".into(),
            rate_hundredths: Some(735),
            future_rate: "8.10".into(),
            future_rate_hundredths: Some(810),
            rate_identifier: "123456789123456789".into(),
            ..Default::default()
        };
        let out = format!("{rate:?} {rate:#?}");
        for personal in ["1800175123456", "M-0042", "7.35", "735", "8.10", "810"] {
            assert!(!out.contains(personal), "{personal} in {out}");
        }
        assert!(out.contains("73282932000074"), "{out}");
    }
}
