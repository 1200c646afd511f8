//! The accounts the mock's default directory knows (the bundled
//! `fixtures/declarants.json`, [`crate::declarants::BUNDLED_FIXTURES`]), as the clients'
//! tests type them: one definition for every test that drives the mock, instead of a copy
//! per test. Each is checked against the bundled file (`tests` below), so the two cannot
//! drift apart.
//!
//! Every SIRET has a valid key; the passwords are fictitious, not secrets (the tests'
//! searches for secrets in logs use them precisely because nothing may print them).

/// An account of the bundled directory, as a client types it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub siret: &'static str,
    pub nom: &'static str,
    pub prenom: &'static str,
    pub password: &'static str,
    /// The service codes it is registered to (25 DSN, 97 its publishers' test).
    pub services: &'static [u8],
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("siret", &self.siret)
            .field("nom", &self.nom)
            .field("prenom", &self.prenom)
            .field("password", &"<redacted>")
            .field("services", &self.services)
            .finish()
    }
}

/// The publisher's simulator declarant: service 97 only.
pub const SIMULATOR: Account = Account {
    siret: "99900000300015",
    nom: "declarant",
    prenom: "declarant",
    password: "Refonte01",
    services: &[97],
};

/// DUPONT Marie: registered to 25 and 97, ready to deposit.
pub const DUPONT: Account = Account {
    siret: "78214563500010",
    nom: "DUPONT",
    prenom: "Marie",
    password: "Jardin#Partage2024",
    services: &[25, 97],
};

/// MARTIN Jean-Pierre: his password has expired.
pub const MARTIN_PASSWORD_EXPIRED: Account = Account {
    siret: "81239045800014",
    nom: "MARTIN",
    prenom: "Jean-Pierre",
    password: "Ch0rale&Amis",
    services: &[25, 97],
};

/// LEFÈVRE Zoé: her registration is not effective yet (every service answers "not
/// registered").
pub const LEFEVRE_NOT_REGISTERED: Account = Account {
    siret: "50123456100014",
    nom: "LEFÈVRE",
    prenom: "Zoé",
    password: "Tennis<Club>56",
    services: &[25, 97],
};

/// BERNARD Luc: locked from the start.
pub const BERNARD_LOCKED: Account = Account {
    siret: "44187654700015",
    nom: "BERNARD",
    prenom: "Luc",
    password: "Verrou!2025",
    services: &[25, 97],
};

/// POSTE Agnès: a La Poste establishment, whose SIRET follows La Poste's key rule.
pub const LA_POSTE: Account = Account {
    siret: "35600000039009",
    nom: "POSTE",
    prenom: "Agnès",
    password: "LaPoste:5x5",
    services: &[25, 97],
};

/// Every account of the bundled directory, in its order.
pub const ALL: [Account; 6] = [
    SIMULATOR,
    DUPONT,
    MARTIN_PASSWORD_EXPIRED,
    LEFEVRE_NOT_REGISTERED,
    BERNARD_LOCKED,
    LA_POSTE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declarants::Fixtures;

    #[test]
    fn each_account_is_the_bundled_directorys_own() {
        let bundled = Fixtures::bundled().unwrap().declarants;
        assert_eq!(bundled.len(), ALL.len());
        for (a, d) in ALL.iter().zip(&bundled) {
            assert_eq!(
                (a.siret, a.nom, a.prenom, a.password, a.services),
                (
                    d.siret.as_str(),
                    d.nom.as_str(),
                    d.prenom.as_str(),
                    d.motdepasse.as_str(),
                    d.services.as_slice()
                ),
            );
        }
        let flags =
            |d: &crate::declarants::NewDeclarant| (d.password_expired, d.registered, d.locked);
        assert_eq!(flags(&bundled[2]), (true, true, false), "MARTIN");
        assert_eq!(flags(&bundled[3]), (false, false, false), "LEFÈVRE");
        assert_eq!(flags(&bundled[4]), (false, true, true), "BERNARD");
        for d in [&bundled[0], &bundled[1], &bundled[5]] {
            assert_eq!(flags(d), (false, true, false), "{}", d.nom);
        }
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        assert!(!format!("{DUPONT:?}").contains(DUPONT.password));
    }
}
