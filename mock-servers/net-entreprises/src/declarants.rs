//! The declarants the mock knows, their failed-login counters, and the decision an
//! authentication attempt gets.
//!
//! An account is identified by the triple SIRET, nom, prénom (compared exactly, case
//! included); the password is its secret. Only a wrong password for a known account
//! counts as a failed login; an unknown triple is refused the same way (401) without
//! counting. When an account reaches `lock_threshold` consecutive failures it is locked:
//! every later attempt, right password included, gets 403 until it is unlocked through
//! the admin API. A right password resets the counter.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::form::Identifiants;

/// Service codes a new declarant is registered to when none are given: DSN régime
/// général, production and publishers' test.
pub const DEFAULT_SERVICES: [u8; 2] = [25, 97];

fn default_services() -> Vec<u8> {
    DEFAULT_SERVICES.to_vec()
}

fn yes() -> bool {
    true
}

/// A declarant as given by a fixtures file or `POST /__admin/declarants`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeclarant {
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub motdepasse: String,
    /// Service codes the declarant is registered to.
    #[serde(default = "default_services")]
    pub services: Vec<u8>,
    #[serde(default)]
    pub password_expired: bool,
    /// `false`: the registration is not effective yet (it is the next day on the real
    /// portal), so every service answers "not registered".
    #[serde(default = "yes")]
    pub registered: bool,
    /// Starts locked (fixtures of a locked account).
    #[serde(default)]
    pub locked: bool,
}

impl std::fmt::Debug for NewDeclarant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDeclarant")
            .field("siret", &self.siret)
            .field("nom", &self.nom)
            .field("prenom", &self.prenom)
            .field("motdepasse", &"<redacted>")
            .field("services", &self.services)
            .field("password_expired", &self.password_expired)
            .field("registered", &self.registered)
            .field("locked", &self.locked)
            .finish()
    }
}

/// `PATCH /__admin/declarants/{id}`: the fields to change.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclarantChange {
    pub motdepasse: Option<String>,
    pub services: Option<Vec<u8>>,
    pub password_expired: Option<bool>,
    pub registered: Option<bool>,
}

/// What the admin API shows of a declarant: never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclarantState {
    pub id: u64,
    pub siret: String,
    pub nom: String,
    pub prenom: String,
    pub services: Vec<u8>,
    pub password_expired: bool,
    pub registered: bool,
    /// Consecutive failed logins since the last success or unlock.
    pub failed_attempts: u32,
    pub locked: bool,
}

/// A fixtures file: `{"declarants": [ … ]}`, each entry shaped like the body of
/// `POST /__admin/declarants`. Other top-level keys (a `description`) are ignored.
#[derive(Debug, Deserialize)]
pub struct Fixtures {
    pub declarants: Vec<NewDeclarant>,
}

/// The fixtures shipped with the crate: the publisher's simulator declarant and a few
/// demonstration accounts.
pub const BUNDLED_FIXTURES: &str = include_str!("../fixtures/declarants.json");

impl Fixtures {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        serde_json::from_str(text).context("fixtures: not the expected JSON")
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("fixtures file {}", path.display()))
    }

    pub fn bundled() -> anyhow::Result<Self> {
        Self::parse(BUNDLED_FIXTURES)
    }
}

struct Declarant {
    new: NewDeclarant,
    failed_attempts: u32,
    locked: bool,
}

impl Declarant {
    fn state(&self, id: u64) -> DeclarantState {
        DeclarantState {
            id,
            siret: self.new.siret.clone(),
            nom: self.new.nom.clone(),
            prenom: self.new.prenom.clone(),
            services: self.new.services.clone(),
            password_expired: self.new.password_expired,
            registered: self.new.registered,
            failed_attempts: self.failed_attempts,
            locked: self.locked,
        }
    }
}

/// The answer an attempt gets once it passed the form checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 200 with a token for this declarant (its id) and this service code.
    Granted { declarant: u64, service: u8 },
    /// 401 `Basic realm="net-entreprises.fr"`.
    WrongCredentials,
    /// 401 `Basic realm="Expiration du mot de passe"`.
    PasswordExpired,
    /// 401 `DSNLogin realm="Utilisateur non-inscrit au service"`.
    NotRegistered,
    /// 403.
    Locked,
}

/// `POST /__admin/declarants` for a triple already known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate(pub u64);

/// Every declarant, by id (ids start at 1, in order of creation).
#[derive(Default)]
pub struct Declarants {
    by_id: BTreeMap<u64, Declarant>,
    next_id: u64,
}

impl Declarants {
    pub fn from_fixtures(fixtures: Fixtures) -> anyhow::Result<Self> {
        let mut this = Self::default();
        for d in fixtures.declarants {
            let (siret, nom, prenom) = (d.siret.clone(), d.nom.clone(), d.prenom.clone());
            this.add(d).map_err(|_| {
                anyhow::anyhow!("fixtures: declarant {siret} {nom} {prenom} appears twice")
            })?;
        }
        Ok(this)
    }

    fn find(&self, siret: &str, nom: &str, prenom: &str) -> Option<u64> {
        self.by_id
            .iter()
            .find(|(_, d)| d.new.siret == siret && d.new.nom == nom && d.new.prenom == prenom)
            .map(|(id, _)| *id)
    }

    pub fn add(&mut self, new: NewDeclarant) -> Result<u64, Duplicate> {
        if let Some(id) = self.find(&new.siret, &new.nom, &new.prenom) {
            return Err(Duplicate(id));
        }
        self.next_id += 1;
        let id = self.next_id;
        let locked = new.locked;
        self.by_id.insert(
            id,
            Declarant {
                new,
                failed_attempts: 0,
                locked,
            },
        );
        Ok(id)
    }

    pub fn get(&self, id: u64) -> Option<DeclarantState> {
        self.by_id.get(&id).map(|d| d.state(id))
    }

    pub fn list(&self) -> Vec<DeclarantState> {
        self.by_id.iter().map(|(id, d)| d.state(*id)).collect()
    }

    pub fn change(&mut self, id: u64, change: DeclarantChange) -> Option<DeclarantState> {
        let d = self.by_id.get_mut(&id)?;
        if let Some(p) = change.motdepasse {
            d.new.motdepasse = p;
        }
        if let Some(s) = change.services {
            d.new.services = s;
        }
        if let Some(e) = change.password_expired {
            d.new.password_expired = e;
        }
        if let Some(r) = change.registered {
            d.new.registered = r;
        }
        Some(d.state(id))
    }

    pub fn unlock(&mut self, id: u64) -> Option<DeclarantState> {
        let d = self.by_id.get_mut(&id)?;
        d.failed_attempts = 0;
        d.locked = false;
        Some(d.state(id))
    }

    /// Decides an attempt and updates the account's counter. `lock_threshold` is the
    /// number of consecutive failures that locks an account (0 never locks).
    pub fn authenticate(&mut self, id: &Identifiants, lock_threshold: u32) -> Decision {
        let Some(key) = self.find(&id.siret, &id.nom, &id.prenom) else {
            return Decision::WrongCredentials;
        };
        let Some(d) = self.by_id.get_mut(&key) else {
            return Decision::WrongCredentials;
        };
        if d.locked {
            return Decision::Locked;
        }
        if d.new.motdepasse != id.motdepasse {
            d.failed_attempts = d.failed_attempts.saturating_add(1);
            if lock_threshold > 0 && d.failed_attempts >= lock_threshold {
                d.locked = true;
                tracing::info!(
                    declarant = key,
                    failed_attempts = d.failed_attempts,
                    "declarant locked"
                );
            }
            return Decision::WrongCredentials;
        }
        d.failed_attempts = 0;
        if d.new.password_expired {
            return Decision::PasswordExpired;
        }
        match id.service.parse::<u8>() {
            Ok(service) if d.new.registered && d.new.services.contains(&service) => {
                Decision::Granted {
                    declarant: key,
                    service,
                }
            }
            _ => Decision::NotRegistered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(password: &str, service: &str) -> Identifiants {
        Identifiants {
            siret: "99900000300015".into(),
            nom: "declarant".into(),
            prenom: "declarant".into(),
            motdepasse: password.into(),
            service: service.into(),
        }
    }

    fn store() -> Declarants {
        Declarants::from_fixtures(Fixtures::bundled().unwrap()).unwrap()
    }

    #[test]
    fn the_bundled_fixtures_hold_the_simulator_declarant_for_service_97_only() {
        let mut s = store();
        let d = s.get(1).unwrap();
        assert_eq!(
            (d.siret.as_str(), d.services.as_slice()),
            ("99900000300015", &[97u8][..])
        );
        assert_eq!(
            s.authenticate(&attempt("Refonte01", "97"), 5),
            Decision::Granted {
                declarant: 1,
                service: 97
            }
        );
        assert_eq!(
            s.authenticate(&attempt("Refonte01", "25"), 5),
            Decision::NotRegistered
        );
        assert_eq!(
            s.authenticate(&attempt("refonte01", "97"), 5),
            Decision::WrongCredentials
        );
    }

    #[test]
    fn the_nth_consecutive_failure_locks_and_a_success_before_resets() {
        let mut s = store();
        for _ in 0..2 {
            assert_eq!(
                s.authenticate(&attempt("x", "97"), 3),
                Decision::WrongCredentials
            );
        }
        assert_eq!(
            s.authenticate(&attempt("Refonte01", "97"), 3),
            Decision::Granted {
                declarant: 1,
                service: 97
            }
        );
        assert_eq!(s.get(1).unwrap().failed_attempts, 0);
        for _ in 0..3 {
            assert_eq!(
                s.authenticate(&attempt("x", "97"), 3),
                Decision::WrongCredentials
            );
        }
        assert!(s.get(1).unwrap().locked);
        assert_eq!(
            s.authenticate(&attempt("Refonte01", "97"), 3),
            Decision::Locked
        );
        s.unlock(1).unwrap();
        assert_eq!(
            s.authenticate(&attempt("Refonte01", "97"), 3),
            Decision::Granted {
                declarant: 1,
                service: 97
            }
        );
    }

    #[test]
    fn an_unknown_triple_is_refused_without_counting() {
        let mut s = store();
        let mut a = attempt("Refonte01", "97");
        a.prenom = "Declarant".into();
        assert_eq!(s.authenticate(&a, 1), Decision::WrongCredentials);
        assert_eq!(s.get(1).unwrap().failed_attempts, 0);
    }

    #[test]
    fn a_duplicate_triple_is_refused_with_the_existing_id() {
        let mut s = store();
        let d: NewDeclarant = serde_json::from_str(
            r#"{"siret":"99900000300015","nom":"declarant","prenom":"declarant","motdepasse":"x"}"#,
        )
        .unwrap();
        assert_eq!(s.add(d), Err(Duplicate(1)));
    }
}
