//! Net-entreprises service codes: the `<service>` of an authentication, which names the
//! declaration the token is for.

/// A Net-entreprises service code (`<service>`). Known codes have two digits; any other
/// non-zero code is sent as it is, and the service's form checks judge it (a code of
/// three digits gets a 422, so [`crate::Outcome::RejectedFormat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceCode(u32);

impl ServiceCode {
    /// DSN régime général, production.
    pub const DSN_PRODUCTION: Self = Self(25);
    /// DSN régime général, publishers' test.
    pub const DSN_TEST: Self = Self(97);
    /// DSN régime agricole, production.
    pub const DSN_AGRICOLE: Self = Self(26);
    /// DSN régime agricole, publishers' test.
    pub const DSN_AGRICOLE_TEST: Self = Self(94);
    /// Concentrator.
    pub const CONCENTRATOR: Self = Self(98);

    /// Any code but 0, the proto's "not given".
    pub fn new(code: u32) -> Option<Self> {
        (code != 0).then_some(Self(code))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The service in French, for messages.
    pub fn label(self) -> String {
        let name = match self.0 {
            25 => "DSN régime général",
            97 => "DSN régime général, test des éditeurs",
            26 => "DSN régime agricole",
            94 => "DSN régime agricole, test des éditeurs",
            98 => "concentrateur",
            _ => return format!("service {}", self.0),
        };
        format!("{name} (code {})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_code_must_be_given_and_is_sent_as_it_is() {
        assert_eq!(ServiceCode::new(25), Some(ServiceCode::DSN_PRODUCTION));
        assert_eq!(ServiceCode::new(0), None);
        assert_eq!(ServiceCode::new(100).map(ServiceCode::get), Some(100));
        assert_eq!(ServiceCode::new(100).unwrap().label(), "service 100");
        assert_eq!(
            ServiceCode::DSN_TEST.label(),
            "DSN régime général, test des éditeurs (code 97)"
        );
    }
}
