//! The wire form of the authentication protocol iea-connect defines (documented in
//! `mock-servers/impact-emploi-auth/README.md`): the request body, the answers, and
//! which HTTP status goes with which answer.
//!
//! Invariant: nothing here knows tonic nor the network; [`crate::authenticate`] sends
//! and reads, this module only says what the bytes mean.

use iea_version::ImpactVersion;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Appended to the authentication server's address.
pub const AUTHENTICATE_PATH: &str = "api/v1/authenticate";

/// Largest answer read; a real answer is a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The URL of the authentication call under the server's `address`. A path in the
/// address is kept (`https://h/iea` → `https://h/iea/api/v1/authenticate`); a query or a
/// fragment is dropped.
pub fn authenticate_url(address: &Url) -> Result<Url, String> {
    let mut base = address.clone();
    base.set_query(None);
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(AUTHENTICATE_PATH).map_err(|e| e.to_string())
}

/// What the installation presents. The licence key is a secret: it is exposed only to
/// serialise the request body.
#[derive(Debug, Clone)]
pub struct Identity {
    pub installation_id: String,
    pub licence_key: SecretString,
    pub software_version: ImpactVersion,
    pub workstation: String,
}

#[derive(Serialize)]
struct WireRequest<'a> {
    installation_id: &'a str,
    licence_key: &'a str,
    software_version: ImpactVersion,
    workstation: &'a str,
}

impl Identity {
    /// The JSON request body. It holds the licence key: the caller keeps it secret too.
    pub fn request_body(&self) -> secrecy::SecretSlice<u8> {
        let wire = WireRequest {
            installation_id: &self.installation_id,
            licence_key: self.licence_key.expose_secret(),
            software_version: self.software_version,
            workstation: &self.workstation,
        };
        // Serialising strings (a version is one) into a Vec cannot fail.
        let bytes = serde_json::to_vec(&wire).unwrap_or_default();
        secrecy::SecretSlice::from(bytes)
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum WireAnswer {
    Authorized {
        licence_holder: String,
        valid_until: String,
        server_time: String,
    },
    Refused {
        message: String,
    },
    LicenceWithdrawn {
        unknown: bool,
        message: String,
    },
    /// A minimum version that is not a version makes the answer unparsable.
    UpdateRequired {
        minimum_version: ImpactVersion,
    },
    BadRequest {
        message: String,
    },
}

/// The server's decision, when it made one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Authorized {
        licence_holder: String,
        valid_until: OffsetDateTime,
        server_time: OffsetDateTime,
    },
    /// "Autorisation refusée".
    Refused {
        message: String,
    },
    /// `unknown`: "Licence d'installation non reconnue"; else "La licence vous a été
    /// retirée…". Consultation stays possible in both cases.
    LicenceWithdrawn {
        unknown: bool,
        message: String,
    },
    UpdateRequired {
        minimum_version: ImpactVersion,
    },
}

/// Why an answer is not a decision (English, for the technical detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotADecision {
    /// The server said our request was malformed.
    BadRequest { status: u16, message: String },
    /// A status the protocol does not use on this route.
    UnexpectedStatus { status: u16 },
    /// The body is not one of the protocol's answers, or does not go with the status.
    Unparsable { status: u16, reason: String },
}

/// Reads an answer of the authentication route. 5xx and 407 are not handled here: they
/// are network diagnoses, not protocol answers.
pub fn read_answer(status: u16, body: &[u8]) -> Result<Decision, NotADecision> {
    if !matches!(status, 200 | 400 | 403 | 409 | 426) {
        return Err(NotADecision::UnexpectedStatus { status });
    }
    let unparsable = |reason: String| NotADecision::Unparsable { status, reason };
    let answer: WireAnswer =
        serde_json::from_slice(body).map_err(|e| unparsable(format!("{e}")))?;
    let timestamp = |field: &str, text: &str| {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
            unparsable(format!(
                "{field} {text:?} is not an RFC 3339 timestamp: {e}"
            ))
        })
    };
    let mismatch = |result: &str| {
        unparsable(format!(
            "result {result:?} does not go with HTTP status {status}"
        ))
    };
    match answer {
        WireAnswer::Authorized {
            licence_holder,
            valid_until,
            server_time,
        } => {
            if status != 200 {
                return Err(mismatch("authorized"));
            }
            Ok(Decision::Authorized {
                licence_holder,
                valid_until: timestamp("valid_until", &valid_until)?,
                server_time: timestamp("server_time", &server_time)?,
            })
        }
        WireAnswer::Refused { message } if status == 403 => Ok(Decision::Refused { message }),
        WireAnswer::Refused { .. } => Err(mismatch("refused")),
        WireAnswer::LicenceWithdrawn { unknown, message } if status == 403 => {
            Ok(Decision::LicenceWithdrawn { unknown, message })
        }
        WireAnswer::LicenceWithdrawn { .. } => Err(mismatch("licence_withdrawn")),
        WireAnswer::UpdateRequired { minimum_version } if matches!(status, 409 | 426) => {
            Ok(Decision::UpdateRequired { minimum_version })
        }
        WireAnswer::UpdateRequired { .. } => Err(mismatch("update_required")),
        WireAnswer::BadRequest { message } => Err(NotADecision::BadRequest { status, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_path_is_appended_to_the_address_keeping_its_prefix() {
        let cases = [
            (
                "https://impact-emploi.urssaf.fr",
                "https://impact-emploi.urssaf.fr/api/v1/authenticate",
            ),
            ("https://h:8443/", "https://h:8443/api/v1/authenticate"),
            ("http://h:80/iea", "http://h/iea/api/v1/authenticate"),
            ("https://h/iea/?x=1#f", "https://h/iea/api/v1/authenticate"),
        ];
        for (address, expected) in cases {
            let url = authenticate_url(&Url::parse(address).unwrap()).unwrap();
            assert_eq!(url.as_str(), expected, "{address}");
        }
    }

    #[test]
    fn each_answer_of_the_protocol_is_read() {
        let ok = br#"{"result":"authorized","licence_holder":"Asso","valid_until":"2027-12-31T23:59:59+01:00","server_time":"2026-03-14T09:00:00Z"}"#;
        match read_answer(200, ok).unwrap() {
            Decision::Authorized {
                licence_holder,
                valid_until,
                ..
            } => {
                assert_eq!(licence_holder, "Asso");
                assert_eq!(valid_until.unix_timestamp(), 1_830_293_999);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read_answer(
                403,
                r#"{"result":"refused","message":"Autorisation refusée"}"#.as_bytes()
            )
            .unwrap(),
            Decision::Refused {
                message: "Autorisation refusée".into()
            }
        );
        assert_eq!(
            read_answer(
                403,
                br#"{"result":"licence_withdrawn","unknown":true,"message":"m"}"#
            )
            .unwrap(),
            Decision::LicenceWithdrawn {
                unknown: true,
                message: "m".into()
            }
        );
        assert_eq!(
            read_answer(
                426,
                br#"{"result":"update_required","minimum_version":"3.00.72","message":"m"}"#
            )
            .unwrap(),
            Decision::UpdateRequired {
                minimum_version: "3.00.72".parse().unwrap()
            }
        );
    }

    #[test]
    fn anything_else_is_not_a_decision_and_never_a_panic() {
        let cases: [(u16, &[u8]); 10] = [
            (200, b"<html>Portail captif</html>"),
            (200, b""),
            (200, br#"{"result":"authorized","licence_holder":"A","valid_until":"demain","server_time":"x"}"#),
            (200, br#"{"result":"refused","message":"m"}"#),
            (403, br#"{"result":"authorized","licence_holder":"A","valid_until":"2027-12-31T23:59:59Z","server_time":"2027-12-31T23:59:59Z"}"#),
            (403, br#"{"result":"welcome"}"#),
            (426, b"\xff\xfe"),
            (403, br#"{"result":"refused"}"#),
            (426, br#"{"result":"update_required","minimum_version":"3.0.72","message":"m"}"#),
            (409, br#"{"result":"update_required","minimum_version":"","message":"m"}"#),
        ];
        for (status, body) in cases {
            assert!(
                matches!(
                    read_answer(status, body),
                    Err(NotADecision::Unparsable { .. })
                ),
                "{status} {}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            read_answer(404, b"{}"),
            Err(NotADecision::UnexpectedStatus { status: 404 })
        );
        assert!(matches!(
            read_answer(400, br#"{"result":"bad_request","message":"m"}"#),
            Err(NotADecision::BadRequest { status: 400, .. })
        ));
    }

    #[test]
    fn the_licence_key_is_in_the_body_but_not_in_debug_output() {
        let identity = Identity {
            installation_id: "IEA-1".into(),
            licence_key: SecretString::from("CLE-SECRETE-42"),
            software_version: "3.00.72".parse().unwrap(),
            workstation: "POSTE".into(),
        };
        assert!(!format!("{identity:?}").contains("CLE-SECRETE-42"));
        let body = identity.request_body();
        let json: serde_json::Value = serde_json::from_slice(body.expose_secret()).unwrap();
        assert_eq!(json["licence_key"], "CLE-SECRETE-42");
        assert_eq!(json["installation_id"], "IEA-1");
        assert_eq!(json["software_version"], "3.00.72");
    }
}
