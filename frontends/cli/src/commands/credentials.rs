//! `iea credentials …`.

use futures::StreamExt;
use iea_proto::v1::credentials_client::CredentialsClient;
use iea_proto::v1::*;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Ctx, secrets};
use crate::args::{CredentialsCommand, Target};
use crate::client;
use crate::codes;
use crate::output::{CliError, CliResult, print_json, rfc3339, when};

/// Exit code of `verify` when a verification ran and its outcome is not `valid`.
pub const EXIT_NOT_VALID: u8 = 3;

fn result_json(v: &VerificationResult) -> Value {
    if !v.error_code.is_empty() {
        return json!({"user": v.user, "outcome": null, "error": {"code": v.error_code, "message": v.blocked_reason}});
    }
    let r: Verification = v.result.clone().unwrap_or_default();
    json!({
        "user": v.user,
        "outcome": codes::outcome(r.outcome),
        "message": r.message,
        "http_status": (r.http_status != 0).then_some(r.http_status),
        "realm": (!r.realm.is_empty()).then_some(&r.realm),
        "step": r.probe.as_ref().map(|p| codes::step(p.step)),
        "token_expires_at": rfc3339(r.token_expires_at.as_ref()),
        "input_problems": r.input_problems.iter().map(|p| json!({"field": p.field, "code": p.code, "message": p.message})).collect::<Vec<_>>(),
        "verified_at": rfc3339(v.verified_at.as_ref()),
    })
}

fn print_result_human(v: &VerificationResult) {
    if !v.error_code.is_empty() {
        say!("{} : non vérifié — {}", v.user, v.blocked_reason);
        return;
    }
    let r = v.result.clone().unwrap_or_default();
    let mark = if r.outcome == VerificationOutcome::Valid as i32 {
        "✔"
    } else {
        "✘"
    };
    say!("{mark} {} : {}", v.user, r.message);
    for p in &r.input_problems {
        say!("    - {}", p.message);
    }
}

fn is_valid(v: &VerificationResult) -> bool {
    v.result
        .as_ref()
        .is_some_and(|r| r.outcome == VerificationOutcome::Valid as i32)
}

/// The closing line of `verify --all`: how many accounts, how many to look at again.
fn all_summary_human(results: &[VerificationResult]) -> String {
    let n = results.len();
    if n == 0 {
        return "Aucun compte n'a d'identifiants Net-entreprises enregistrés : rien à vérifier."
            .into();
    }
    let valid = results.iter().filter(|v| is_valid(v)).count();
    let accounts = if n == 1 {
        "1 compte vérifié".to_owned()
    } else {
        format!("{n} comptes vérifiés")
    };
    match n - valid {
        0 if n == 1 => format!("{accounts} : identifiants valides."),
        0 => format!("{accounts} : tous valides."),
        k => format!(
            "{accounts} : {}, {k} à revoir (ci-dessus).",
            iea_fr_time::count(valid as u64, "valide", "valides")
        ),
    }
}

fn summary_json(s: &CredentialSummary) -> Value {
    json!({
        "user": s.user,
        "configured": s.configured,
        "siret": (s.configured).then_some(&s.siret),
        "nom": (s.configured).then_some(&s.nom),
        "prenom": (s.configured).then_some(&s.prenom),
        "updated_at": rfc3339(s.updated_at.as_ref()),
        "consecutive_failures": s.consecutive_failures,
        "last_verification": s.last_verification.as_ref().map(result_json),
    })
}

fn print_summary_human(s: &CredentialSummary) {
    if !s.configured {
        say!("{} : aucun identifiant Net-entreprises enregistré", s.user);
        return;
    }
    say!(
        "{} : SIRET {}, nom « {} », prénom « {} », mot de passe enregistré (jamais affiché)",
        s.user,
        s.siret,
        s.nom,
        s.prenom
    );
    match &s.last_verification {
        Some(v) => {
            let r = v.result.clone().unwrap_or_default();
            match when(v.verified_at.as_ref()) {
                Some(at) => say!("    dernière vérification le {at} : {}", r.message),
                None => say!("    dernière vérification : {}", r.message),
            }
        }
        None => say!("    jamais vérifié"),
    }
}

pub async fn run(ctx: &Ctx, cmd: CredentialsCommand) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let mut creds = CredentialsClient::new(client::connect(&stack).await?);
    let me = || {
        client::session_user(&ctx.data_dir).ok_or_else(|| {
            CliError::new(
                "unauthenticated",
                "Vous devez vous connecter : iea login --user NOM --password-stdin.",
            )
        })
    };
    match cmd {
        CredentialsCommand::Set {
            user,
            siret,
            nom,
            prenom,
            password_stdin,
        } => {
            let pw = secrets::read(
                &[
                    &format!("Mot de passe Impact emploi du compte « {user} »"),
                    "Mot de passe Net-entreprises",
                ],
                password_stdin,
            )?;
            let s = creds
                .set_credentials(client::authed(
                    &ctx.data_dir,
                    SetCredentialsRequest {
                        user,
                        account_password: pw[0].expose_secret().to_owned(),
                        identity: Some(NetEntreprisesIdentity {
                            siret,
                            nom,
                            prenom,
                            password: pw[1].expose_secret().to_owned(),
                        }),
                    },
                ))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&summary_json(&s));
            } else {
                say!(
                    "Identifiants Net-entreprises enregistrés pour « {} ».",
                    s.user
                );
                say!(
                    "Ils seront pris en compte à la prochaine connexion de ce compte. Vérifiez-les : iea credentials verify --user \"{}\"",
                    s.user
                );
            }
        }
        CredentialsCommand::Show(Target { user, all }) => {
            let list = if all {
                creds
                    .list_credentials(client::authed(&ctx.data_dir, ListCredentialsRequest {}))
                    .await?
                    .into_inner()
                    .credentials
            } else {
                let user = match user {
                    Some(u) => u,
                    None => me()?,
                };
                vec![
                    creds
                        .get_credentials(client::authed(
                            &ctx.data_dir,
                            GetCredentialsRequest { user },
                        ))
                        .await?
                        .into_inner(),
                ]
            };
            if ctx.json {
                if all {
                    print_json(
                        &json!({"credentials": list.iter().map(summary_json).collect::<Vec<_>>()}),
                    );
                } else {
                    print_json(&summary_json(&list[0]));
                }
            } else {
                list.iter().for_each(print_summary_human);
            }
        }
        CredentialsCommand::Copy { from, to } => {
            let list = creds
                .copy_credentials(client::authed(
                    &ctx.data_dir,
                    CopyCredentialsRequest {
                        from_user: from.clone(),
                        to_users: to,
                    },
                ))
                .await?
                .into_inner()
                .credentials;
            if ctx.json {
                print_json(
                    &json!({"credentials": list.iter().map(summary_json).collect::<Vec<_>>()}),
                );
            } else {
                let names: Vec<_> = list.iter().map(|s| format!("« {} »", s.user)).collect();
                say!("Identité de « {from} » copiée vers {}.", names.join(", "));
            }
        }
        CredentialsCommand::Verify(Target { user, all }) => {
            let results = if all {
                let mut stream = creds
                    .verify_all_credentials(client::authed(
                        &ctx.data_dir,
                        VerifyAllCredentialsRequest {},
                    ))
                    .await?
                    .into_inner();
                let mut out = Vec::new();
                while let Some(item) = stream.next().await {
                    let item = item?;
                    if !ctx.json {
                        print_result_human(&item);
                    }
                    out.push(item);
                }
                out
            } else {
                let user = match user {
                    Some(u) => u,
                    None => me()?,
                };
                let v = creds
                    .verify_credentials(client::authed(
                        &ctx.data_dir,
                        VerifyCredentialsRequest { user },
                    ))
                    .await?
                    .into_inner();
                if !ctx.json {
                    print_result_human(&v);
                }
                vec![v]
            };
            if ctx.json {
                if all {
                    print_json(
                        &json!({"results": results.iter().map(result_json).collect::<Vec<_>>()}),
                    );
                } else {
                    print_json(&result_json(&results[0]));
                }
            } else if all {
                say!("{}", all_summary_human(&results));
            }
            if !results.iter().all(is_valid) {
                std::process::exit(i32::from(EXIT_NOT_VALID));
            }
        }
        CredentialsCommand::RotateKey => {
            let r = creds
                .rotate_encryption_key(client::authed(&ctx.data_dir, RotateEncryptionKeyRequest {}))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&json!({"resealed": r.resealed}));
            } else {
                say!(
                    "Nouvelle clé de chiffrement en place : {}.",
                    iea_fr_time::count(
                        r.resealed.into(),
                        "mot de passe rechiffré",
                        "mots de passe rechiffrés"
                    )
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(user: &str, outcome: VerificationOutcome) -> VerificationResult {
        VerificationResult {
            user: user.into(),
            result: Some(Verification {
                outcome: outcome as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn verify_all_closes_with_a_count_in_french() {
        assert_eq!(
            all_summary_human(&[]),
            "Aucun compte n'a d'identifiants Net-entreprises enregistrés : rien à vérifier."
        );
        assert_eq!(
            all_summary_human(&[result("a", VerificationOutcome::Valid)]),
            "1 compte vérifié : identifiants valides."
        );
        let blocked = VerificationResult {
            user: "c".into(),
            error_code: "blocked_by_budget".into(),
            ..Default::default()
        };
        assert_eq!(
            all_summary_human(&[
                result("a", VerificationOutcome::Valid),
                result("b", VerificationOutcome::InvalidCredentials),
                blocked,
            ]),
            "3 comptes vérifiés : 1 valide, 2 à revoir (ci-dessus)."
        );
        assert_eq!(
            all_summary_human(&[
                result("a", VerificationOutcome::Valid),
                result("b", VerificationOutcome::Valid)
            ]),
            "2 comptes vérifiés : tous valides."
        );
    }
}
