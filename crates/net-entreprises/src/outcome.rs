//! What one authentication found: a typed [`Outcome`] with its stable English code, a
//! French sentence, the HTTP status and the realm for diagnosis, and — for a success —
//! the token as a secret. The mapping of an answer (status and `WWW-Authenticate`) to an
//! outcome is [`interpret`]; which outcomes are refusals is [`Outcome::is_refusal`],
//! defined here once for every caller.

use std::time::{Duration, SystemTime};

use iea_declarant::InputProblem;
use iea_net::probe::from_status;
use iea_net::{Diagnosis, NetworkSettings, SettingsError, Step};

use crate::auth::{Token, parse_realm};
use crate::service::ServiceCode;

/// Realms of the authentication service's 401 answers.
pub const REALM_WRONG_CREDENTIALS: &str = "net-entreprises.fr";
pub const REALM_PASSWORD_EXPIRED: &str = "Expiration du mot de passe";
pub const REALM_NOT_REGISTERED: &str = "Utilisateur non-inscrit au service";
/// Realms of business services' 401 answers about the token.
pub const REALM_TOKEN_INVALID: &str = "Jeton manquant ou invalide";
pub const REALM_TOKEN_EXPIRED: &str = "Expiration du jeton";

/// What an authentication found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Valid,
    InvalidCredentials,
    PasswordExpired,
    NotRegistered,
    AccountLocked,
    RejectedFormat,
    Unavailable,
    Unexpected,
    InvalidInput,
}

impl Outcome {
    pub const ALL: [Self; 9] = [
        Self::Valid,
        Self::InvalidCredentials,
        Self::PasswordExpired,
        Self::NotRegistered,
        Self::AccountLocked,
        Self::RejectedFormat,
        Self::Unavailable,
        Self::Unexpected,
        Self::InvalidInput,
    ];

    /// Stable English code, for logs and programs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::InvalidCredentials => "invalid_credentials",
            Self::PasswordExpired => "password_expired",
            Self::NotRegistered => "not_registered",
            Self::AccountLocked => "account_locked",
            Self::RejectedFormat => "rejected_format",
            Self::Unavailable => "unavailable",
            Self::Unexpected => "unexpected",
            Self::InvalidInput => "invalid_input",
        }
    }

    /// The outcome of a [`Outcome::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }

    /// Did Net-entreprises refuse the credentials (an attempt that may count towards the
    /// lock of the account)? The one definition of what counts against a declarant's
    /// budget of consecutive refusals.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Self::InvalidCredentials
                | Self::PasswordExpired
                | Self::NotRegistered
                | Self::AccountLocked
        )
    }
}

/// The result of one authentication.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub outcome: Outcome,
    /// Status of the answer, when one came.
    pub http_status: Option<u16>,
    /// Realm of `WWW-Authenticate` (its whole value when it names none).
    pub realm: Option<String>,
    /// For [`Outcome::Unavailable`]: where the attempt stopped.
    pub diagnosis: Option<Diagnosis>,
    /// For [`Outcome::Valid`]: when the token obtained expires, if the answer said.
    pub token_expires_at: Option<SystemTime>,
    /// For [`Outcome::InvalidInput`].
    pub input_problems: Vec<InputProblem>,
    /// French sentence.
    pub message: String,
    /// For [`Outcome::Valid`]: the token, a secret (its `Debug` is redacted).
    pub(crate) token: Option<Token>,
}

impl Authentication {
    pub(crate) fn new(outcome: Outcome, message: String) -> Self {
        Self {
            outcome,
            http_status: None,
            realm: None,
            diagnosis: None,
            token_expires_at: None,
            input_problems: Vec::new(),
            message,
            token: None,
        }
    }

    /// The token of a [`Outcome::Valid`] authentication, taken out (a caller that does
    /// not need it simply drops the whole value).
    pub fn take_token(&mut self) -> Option<Token> {
        self.token.take()
    }

    /// Refused before anything was sent.
    pub fn invalid_input(problems: Vec<InputProblem>) -> Self {
        let message = match problems.len() {
            1 => format!(
                "{} Rien n'a été envoyé à Net-entreprises.",
                problems[0].message
            ),
            n => format!(
                "Les identifiants saisis comportent {n} problèmes, détaillés ci-dessous : rien n'a été envoyé à Net-entreprises."
            ),
        };
        Self {
            input_problems: problems,
            ..Self::new(Outcome::InvalidInput, message)
        }
    }

    /// No answer: where it stopped.
    pub fn unavailable(diagnosis: Diagnosis) -> Self {
        let message = format!(
            "Net-entreprises est injoignable ou indisponible : les identifiants n'ont pas pu être vérifiés. {}",
            diagnosis.message
        );
        Self {
            http_status: diagnosis.http_status,
            diagnosis: Some(diagnosis),
            ..Self::new(Outcome::Unavailable, message)
        }
    }

    /// The network settings of the call cannot be used: nothing was sent.
    pub fn unusable_settings(address: &str, error: &SettingsError) -> Self {
        Self::unavailable(settings_diagnosis(address, error))
    }
}

/// Where a call stopped when its network settings cannot be used: at the address step,
/// nothing sent.
pub fn settings_diagnosis(address: &str, error: &SettingsError) -> Diagnosis {
    Diagnosis {
        address: address.to_owned(),
        step: Step::Address,
        tls_problem: None,
        http_status: None,
        latency: Duration::ZERO,
        message: error.message.clone(),
        detail: format!("invalid setting: {}", error.field),
    }
}

/// The outcome of an answer of the authentication service. `token`: the non-trivial
/// token a 200 carried, if it did.
pub fn interpret(
    status: u16,
    www_authenticate: Option<&str>,
    expires: Option<SystemTime>,
    token: Option<Token>,
    settings: &NetworkSettings,
    service: ServiceCode,
) -> Authentication {
    let realm = www_authenticate.map(|h| parse_realm(h).unwrap_or_else(|| h.to_owned()));
    let mut v = match (status, token) {
        (200, Some(token)) => {
            let mut v = Authentication::new(
                Outcome::Valid,
                "Les identifiants Net-entreprises sont valides : l'authentification a réussi.".into(),
            );
            v.token_expires_at = expires.filter(|e| *e > SystemTime::now());
            v.token = Some(token.with_expiry(v.token_expires_at));
            v
        }
        (200, None) => Authentication::new(
            Outcome::Unexpected,
            "Net-entreprises a accepté la connexion mais sa réponse ne contient pas de jeton exploitable. \
             Réessayez plus tard ; si le problème persiste, préparez une demande de support."
                .into(),
        ),
        (401, _) => refusal(realm.as_deref(), service),
        (403, _) => Authentication::new(
            Outcome::AccountLocked,
            "Net-entreprises a bloqué ce compte après plusieurs échecs de connexion. Seul le déclarant peut \
             le débloquer, sur net-entreprises.fr ; ne réessayez pas avant."
                .into(),
        ),
        (422, _) => Authentication::new(
            Outcome::RejectedFormat,
            "Net-entreprises a rejeté la demande à ses contrôles de format (un champ trop long ou manquant). \
             Vérifiez les identifiants ; si le problème persiste, préparez une demande de support."
                .into(),
        ),
        (404, _) => {
            let host = settings.address.host_str().unwrap_or("?");
            Authentication::unavailable(Diagnosis {
                address: settings.address.to_string(),
                step: Step::Http,
                tls_problem: None,
                http_status: Some(404),
                latency: Duration::ZERO,
                message: format!(
                    "Le serveur « {host} » répond, mais le service d'authentification n'y est pas disponible \
                     (code HTTP 404). Vérifiez l'adresse, ou réessayez plus tard."
                ),
                detail: "HTTP status 404".into(),
            })
        }
        (502..=504, _) => Authentication::unavailable(from_status(settings, status)),
        _ => Authentication::new(
            Outcome::Unexpected,
            format!(
                "Net-entreprises a répondu de façon inattendue (code HTTP {status}) : les identifiants n'ont pas pu \
                 être vérifiés. Réessayez plus tard ; si le problème persiste, préparez une demande de support."
            ),
        ),
    };
    v.http_status = Some(status);
    v.realm = realm;
    v
}

/// Whether `realm` is `expected` (case and surrounding spaces aside).
pub(crate) fn realm_is(realm: Option<&str>, expected: &str) -> bool {
    realm.is_some_and(|r| r.trim().eq_ignore_ascii_case(expected))
}

/// A 401 of the authentication service, by realm. A realm the service is not known to
/// send is taken as a refusal of the credentials: it counts as a failed login for the
/// caller's lockout budget, the safe side.
pub fn refusal(realm: Option<&str>, service: ServiceCode) -> Authentication {
    if realm_is(realm, REALM_PASSWORD_EXPIRED) {
        return Authentication::new(
            Outcome::PasswordExpired,
            "Le mot de passe Net-entreprises a expiré : le déclarant doit le changer sur net-entreprises.fr, \
             puis le nouveau mot de passe doit être enregistré ici."
                .into(),
        );
    }
    if realm_is(realm, REALM_NOT_REGISTERED) {
        return not_registered(service);
    }
    if !realm_is(realm, REALM_WRONG_CREDENTIALS) {
        tracing::warn!(
            realm = realm.unwrap_or(""),
            "401 with an unknown realm, taken as wrong credentials"
        );
    }
    Authentication::new(
        Outcome::InvalidCredentials,
        "Net-entreprises refuse ces identifiants : le SIRET, le nom, le prénom ou le mot de passe est erroné. \
         Vérifiez-les (majuscules, accents, espaces) avant un nouvel essai : après plusieurs échecs, \
         Net-entreprises bloque le compte."
            .into(),
    )
}

/// The declarant is not registered to `service`.
pub(crate) fn not_registered(service: ServiceCode) -> Authentication {
    Authentication::new(
        Outcome::NotRegistered,
        format!(
            "Ce déclarant n'est pas inscrit au service {} sur Net-entreprises. Une inscription récente \
             ne prend effet que le lendemain.",
            service.label()
        ),
    )
}

#[cfg(test)]
mod tests {
    use iea_net::ConnectionMode;
    use secrecy::SecretString;

    use super::*;

    fn settings(address: &str) -> NetworkSettings {
        NetworkSettings::direct(ConnectionMode::Normal, address).unwrap()
    }

    fn token() -> Option<Token> {
        Some(Token::new(SecretString::from(
            "c2VjcmV0LXRva2VuLWZvci10ZXN0cw==",
        )))
    }

    #[test]
    fn each_status_and_realm_maps_to_its_outcome() {
        let s = settings("https://services.net-entreprises.fr");
        let svc = ServiceCode::DSN_PRODUCTION;
        let cases: &[(u16, Option<&str>, bool, Outcome)] = &[
            (200, None, true, Outcome::Valid),
            (200, None, false, Outcome::Unexpected),
            (
                401,
                Some("Basic realm=\"net-entreprises.fr\""),
                false,
                Outcome::InvalidCredentials,
            ),
            (
                401,
                Some("Basic realm=\"Expiration du mot de passe\""),
                false,
                Outcome::PasswordExpired,
            ),
            (
                401,
                Some("DSNLogin realm=\"Utilisateur non-inscrit au service\""),
                false,
                Outcome::NotRegistered,
            ),
            (
                401,
                Some("Basic realm=\"autre chose\""),
                false,
                Outcome::InvalidCredentials,
            ),
            (401, None, false, Outcome::InvalidCredentials),
            (403, None, false, Outcome::AccountLocked),
            (422, None, false, Outcome::RejectedFormat),
            (404, None, false, Outcome::Unavailable),
            (503, None, false, Outcome::Unavailable),
            (502, None, false, Outcome::Unavailable),
            (500, None, false, Outcome::Unexpected),
            (415, None, false, Outcome::Unexpected),
            (407, None, false, Outcome::Unexpected),
            (302, None, false, Outcome::Unexpected),
        ];
        for (status, www, with_token, expected) in cases {
            let t = if *with_token { token() } else { None };
            let v = interpret(*status, *www, None, t, &s, svc);
            assert_eq!(v.outcome, *expected, "{status} {www:?}");
            assert_eq!(v.http_status, Some(*status));
            assert!(!v.message.is_empty());
            assert_eq!(v.diagnosis.is_some(), *expected == Outcome::Unavailable);
            assert_eq!(v.token.is_some(), *expected == Outcome::Valid);
        }
        let v = interpret(
            401,
            Some("DSNLogin realm=\"Utilisateur non-inscrit au service\""),
            None,
            None,
            &s,
            svc,
        );
        assert_eq!(
            v.realm.as_deref(),
            Some("Utilisateur non-inscrit au service")
        );
        assert!(
            v.message.contains("DSN régime général (code 25)"),
            "{}",
            v.message
        );
        let v = interpret(503, None, None, None, &s, svc);
        assert_eq!(v.diagnosis.unwrap().step, Step::Http);
    }

    #[test]
    fn an_expiry_in_the_past_or_unreadable_is_not_reported() {
        let s = settings("https://services.net-entreprises.fr");
        let past = SystemTime::now() - Duration::from_secs(10);
        let v = interpret(200, None, Some(past), token(), &s, ServiceCode::DSN_TEST);
        assert_eq!((v.outcome, v.token_expires_at), (Outcome::Valid, None));
    }

    #[test]
    fn refusals_are_the_four_answers_that_count_against_the_account() {
        let refusals: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .filter(|o| o.is_refusal())
            .collect();
        assert_eq!(
            refusals,
            [
                Outcome::InvalidCredentials,
                Outcome::PasswordExpired,
                Outcome::NotRegistered,
                Outcome::AccountLocked
            ]
        );
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_code(o.code()), Some(o));
        }
        assert_eq!(Outcome::from_code("nope"), None);
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let s = settings("https://services.net-entreprises.fr");
        let v = interpret(200, None, None, token(), &s, ServiceCode::DSN_TEST);
        assert!(!format!("{v:?} {v:#?}").contains("c2VjcmV0"));
    }
}
