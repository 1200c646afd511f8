//! The stable codes of the API's enumerations, as JSON output and scripts see them
//! (`valid`, `name_resolution`, `download`…): written out here, one match per
//! enumeration, rather than derived from the generated names. A value this version does
//! not know is `unknown`.

use iea_proto::common::v1::ProbeStep;
use iea_proto::v1::{ScriptState, UpdatePhase, VerificationOutcome};

pub fn outcome(o: i32) -> &'static str {
    use VerificationOutcome as O;
    match O::try_from(o).unwrap_or(O::Unspecified) {
        O::Valid => "valid",
        O::InvalidCredentials => "invalid_credentials",
        O::PasswordExpired => "password_expired",
        O::NotRegistered => "not_registered",
        O::AccountLocked => "account_locked",
        O::RejectedFormat => "rejected_format",
        O::Unavailable => "unavailable",
        O::Unexpected => "unexpected",
        O::InvalidInput => "invalid_input",
        O::Unspecified => "unknown",
    }
}

pub fn step(s: i32) -> &'static str {
    use ProbeStep as S;
    match S::try_from(s).unwrap_or(S::Unspecified) {
        S::Ok => "ok",
        S::Address => "address",
        S::NameResolution => "name_resolution",
        S::Proxy => "proxy",
        S::Connect => "connect",
        S::Tls => "tls",
        S::Http => "http",
        S::Timeout => "timeout",
        S::Unspecified => "unknown",
    }
}

pub fn phase(p: i32) -> &'static str {
    use UpdatePhase as P;
    match P::try_from(p).unwrap_or(P::Unspecified) {
        P::Metadata => "metadata",
        P::Download => "download",
        P::Verify => "verify",
        P::Stage => "stage",
        P::Switch => "switch",
        P::StartCheck => "start_check",
        P::Scripts => "scripts",
        P::Done => "done",
        P::Unspecified => "unknown",
    }
}

pub fn script_state(s: i32) -> &'static str {
    match ScriptState::try_from(s).unwrap_or(ScriptState::Unspecified) {
        ScriptState::Pending => "pending",
        ScriptState::Applied => "applied",
        ScriptState::Unspecified => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_ones_scripts_rely_on() {
        assert_eq!(
            outcome(VerificationOutcome::InvalidCredentials as i32),
            "invalid_credentials"
        );
        assert_eq!(step(ProbeStep::NameResolution as i32), "name_resolution");
        assert_eq!(phase(UpdatePhase::StartCheck as i32), "start_check");
        assert_eq!(script_state(ScriptState::Applied as i32), "applied");
        assert_eq!(outcome(99), "unknown");
    }
}
