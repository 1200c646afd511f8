//! `iea dsn follow [--deposit ID]`: « Suivre maintenant », as the web console's button
//! and `POST /api/v1/returns/follow-now`. The orchestrator runs one pass of its following
//! of returns over every followed deposit and declarant (`iea.v1.Returns/FollowNow`,
//! administrators only: it refuses anyone else, and that refusal is shown as any other)
//! and answers once the pass is done, with what it listed, downloaded, refused and found
//! gone. With `--deposit`, that deposit's returns are read afterwards
//! (`iea.v1.Returns/ListReturns`): its following, its conformity, each return and its
//! CRM PAS with the number of rates it gave (the rates themselves: `iea pas rates`).

use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::{
    DsnReturn, DsnReturnsOfDeposit, FollowNowRequest, FollowNowResponse, ListDsnReturnsRequest,
};
use serde_json::{Value, json};

use super::Ctx;
use crate::client;
use crate::output::{CliResult, print_json, rfc3339, when};

pub async fn run(ctx: &Ctx, deposit: Option<i64>) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let mut returns = ReturnsClient::new(client::connect(&stack).await?);
    let pass = returns
        .follow_now(client::authed(
            &ctx.data_dir,
            FollowNowRequest { all: true },
        ))
        .await?
        .into_inner();
    let of_deposit = match deposit {
        Some(deposit_id) => Some(
            returns
                .list_returns(client::authed(
                    &ctx.data_dir,
                    ListDsnReturnsRequest { deposit_id },
                ))
                .await?
                .into_inner(),
        ),
        None => None,
    };
    if ctx.json {
        print_json(&json!({
            "follow": pass_json(&pass),
            "deposit": of_deposit.as_ref().map(deposit_json),
        }));
        return Ok(());
    }
    for line in lines(&pass, of_deposit.as_ref()) {
        say!("{line}");
    }
    Ok(())
}

fn pass_json(p: &FollowNowResponse) -> Value {
    json!({
        "flux_listed": p.flux_listed,
        "windows_listed": p.windows_listed,
        "downloaded": p.downloaded,
        "refused": p.refused,
        "gone": p.gone,
        "message": p.message,
    })
}

/// The current CRM PAS (nature 94) of a deposit, once received.
fn current_crm(d: &DsnReturnsOfDeposit) -> Option<&DsnReturn> {
    d.returns
        .iter()
        .filter(|r| r.nature == 94 && r.current && !r.crm_identifier.is_empty())
        .max_by_key(|r| r.version)
}

/// `OK`, `ANO`, `KO` as the board's JSON (`iea dsn board --json`) gives them: lower case;
/// `None` until known.
fn conformity_code(c: &str) -> Option<String> {
    let c = c.trim();
    (!c.is_empty()).then(|| c.to_ascii_lowercase())
}

/// A deposit's returns as `--json` gives them (`iea dsn follow --deposit`, `iea dsn show`).
pub(super) fn deposit_json(d: &DsnReturnsOfDeposit) -> Value {
    json!({
        "id": d.deposit_id,
        "idflux": (!d.idflux.is_empty()).then_some(&d.idflux),
        "follow_state": (!d.follow_state.is_empty()).then_some(&d.follow_state),
        "conformity": conformity_code(&d.conformity),
        "conformity_message": (!d.conformity_message.is_empty()).then_some(&d.conformity_message),
        "crm": current_crm(d).map(|r| json!({
            "identifier": r.crm_identifier,
            "rates": r.rate_count,
            "downloaded_at": rfc3339(r.downloaded_at.as_ref()),
        })),
        "returns": d.returns.iter().map(|r| json!({
            "nature": r.nature,
            "nature_label": r.nature_label,
            "statut": r.statut,
            "publication": r.publication,
            "version": r.version,
            "current": r.current,
            "download_state": r.download_state,
            "message": (!r.message.is_empty()).then_some(&r.message),
            "anomalies": r.anomalies.iter().map(|a| json!({
                "code": a.code,
                "message": a.message,
                "rubric": (!a.rubric.is_empty()).then_some(&a.rubric),
                "category": (!a.category.is_empty()).then_some(&a.category),
            })).collect::<Vec<_>>(),
            "crm_identifier": (!r.crm_identifier.is_empty()).then_some(&r.crm_identifier),
            "rate_count": (r.nature == 94).then_some(r.rate_count),
        })).collect::<Vec<_>>(),
        "next_check_at": rfc3339(d.next_check_at.as_ref()),
        "follow_until": rfc3339(d.follow_until.as_ref()),
    })
}

/// What a person reads, line by line: the pass, then the deposit's returns if asked.
fn lines(pass: &FollowNowResponse, deposit: Option<&DsnReturnsOfDeposit>) -> Vec<String> {
    let mut out = vec![pass.message.clone()];
    let Some(d) = deposit else {
        return out;
    };
    let flux = if d.idflux.is_empty() {
        String::new()
    } else {
        format!(" (flux {})", d.idflux)
    };
    out.push(format!(
        "Dépôt DSN n° {}{flux} : {}",
        d.deposit_id,
        follow_state_fr(&d.follow_state)
    ));
    out.extend(detail_lines(d));
    out
}

/// What `iea dsn show` adds to a deposit it shows: the following of its returns, then
/// [`detail_lines`]; nothing for a deposit whose returns are not followed (not accepted).
pub(super) fn show_lines(d: &DsnReturnsOfDeposit) -> Vec<String> {
    if d.follow_state.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!(
        "  Suivi des retours : {}",
        follow_state_fr(&d.follow_state)
    )];
    out.extend(detail_lines(d));
    out
}

/// A followed deposit's conformity, CRM PAS and returns, one line each (none when its
/// returns are not followed).
fn detail_lines(d: &DsnReturnsOfDeposit) -> Vec<String> {
    let mut out = Vec::new();
    if d.follow_state.is_empty() {
        return out;
    }
    let conformity = conformity_fr(&d.conformity);
    if d.conformity_message.is_empty() {
        out.push(format!("  Conformité : {conformity}"));
    } else {
        out.push(format!(
            "  Conformité : {conformity} — {}",
            d.conformity_message
        ));
    }
    match current_crm(d) {
        Some(r) => out.push(format!(
            "  CRM PAS n° {} reçu : {} taux (« iea pas rates » les affiche)",
            r.crm_identifier, r.rate_count
        )),
        None => out.push("  CRM PAS : pas encore reçu".to_owned()),
    }
    if d.returns.is_empty() {
        out.push("  Aucun retour publié pour l'instant.".to_owned());
    } else {
        out.push(format!("  Retours ({}) :", d.returns.len()));
    }
    for r in &d.returns {
        let mut line = format!(
            "    nature {} — {} : {}",
            r.nature,
            r.nature_label,
            statut_fr(r.nature, &r.statut)
        );
        if r.version > 1 {
            line.push_str(&format!(", version {}", r.version));
        }
        if !r.current {
            line.push_str(" (remplacé par une version plus récente)");
        }
        line.push_str(&format!(" · {}", download_state_fr(&r.download_state)));
        if !r.message.is_empty() {
            line.push_str(&format!(" : {}", r.message));
        }
        out.push(line);
        for a in &r.anomalies {
            if a.rubric.is_empty() {
                out.push(format!("      anomalie {} : {}", a.code, a.message));
            } else {
                out.push(format!(
                    "      anomalie {} (rubrique {}) : {}",
                    a.code, a.rubric, a.message
                ));
            }
        }
    }
    if d.follow_state == "following" {
        if let Some(t) = when(d.next_check_at.as_ref()) {
            out.push(format!("  Prochaine consultation le {t}"));
        }
        if let Some(t) = when(d.follow_until.as_ref()) {
            out.push(format!("  Suivi jusqu'au {t} au plus tard"));
        }
    }
    out
}

fn follow_state_fr(s: &str) -> String {
    match s {
        "following" => "suivi en cours".to_owned(),
        "done" => "suivi terminé : accusé, conformité et CRM PAS reçus".to_owned(),
        "expired" => {
            "suivi arrêté : le délai de suivi est passé avant que tout soit reçu".to_owned()
        }
        "" => "non suivi (seuls les dépôts acceptés ont des retours)".to_owned(),
        other => format!("état de suivi « {other} »"),
    }
}

fn conformity_fr(c: &str) -> &'static str {
    match c.trim().to_ascii_uppercase().as_str() {
        "OK" => "conforme",
        "ANO" => "conforme avec anomalies",
        "KO" => "non conforme",
        "" => "attendue",
        _ => "inconnue",
    }
}

/// A return's status as listed, for its nature.
fn statut_fr(nature: u32, statut: &str) -> String {
    match (nature, statut.trim().to_ascii_uppercase().as_str()) {
        (10, "OK") => "AEE, déclaration enregistrée".to_owned(),
        (10, "KO") => "ARE, déclaration rejetée".to_owned(),
        (11, "OK") => "conforme".to_owned(),
        (11, "ANO") => "conforme avec anomalies".to_owned(),
        (11, "KO") => "non conforme".to_owned(),
        (_, "OK") => "disponible".to_owned(),
        (_, "ANO") => "avec anomalies".to_owned(),
        (_, "KO") => "en erreur".to_owned(),
        (_, "EN COURS") => "en cours".to_owned(),
        _ => format!("statut « {statut} »"),
    }
}

fn download_state_fr(s: &str) -> String {
    match s {
        "pending" => "à télécharger".to_owned(),
        "downloaded" => "téléchargé et lu".to_owned(),
        "refused" => "refusé".to_owned(),
        "gone" => "plus disponible (purgé par Net-entreprises)".to_owned(),
        "failed" => "échec du téléchargement, nouvel essai plus tard".to_owned(),
        "none" => "sans document".to_owned(),
        other => format!("document « {other} »"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iea_proto::v1::ReturnAnomaly;

    fn pass() -> FollowNowResponse {
        FollowNowResponse {
            flux_listed: 1,
            downloaded: 3,
            message: "Suivi des retours : 1 dépôt consulté, 0 fenêtre du déclarant, 3 nouveaux retours, 3 téléchargés, 0 refusé, 0 plus disponible.".into(),
            ..Default::default()
        }
    }

    fn ret(nature: u32, statut: &str) -> DsnReturn {
        DsnReturn {
            nature,
            nature_label: iea_orchestrator::returns::read_nature_label(nature).into(),
            statut: statut.into(),
            version: 1,
            current: true,
            download_state: "downloaded".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_deposit_followed_to_its_crm_reads_as_french_sentences() {
        let d = DsnReturnsOfDeposit {
            deposit_id: 4,
            idflux: "0123456789012345678901A".into(),
            follow_state: "done".into(),
            conformity: "ANO".into(),
            conformity_message: "Conforme avec 1 anomalie.".into(),
            returns: vec![
                ret(10, "OK"),
                DsnReturn {
                    anomalies: vec![ReturnAnomaly {
                        code: "CCH-11".into(),
                        message: "Rubrique mal renseignée".into(),
                        rubric: "S21.G00.50.009".into(),
                        ..Default::default()
                    }],
                    ..ret(11, "ANO")
                },
                DsnReturn {
                    crm_identifier: "123456789012345678".into(),
                    rate_count: 2,
                    ..ret(94, "OK")
                },
            ],
            ..Default::default()
        };
        let text = lines(&pass(), Some(&d));
        assert_eq!(
            text,
            [
                pass().message.as_str(),
                "Dépôt DSN n° 4 (flux 0123456789012345678901A) : suivi terminé : accusé, conformité et CRM PAS reçus",
                "  Conformité : conforme avec anomalies — Conforme avec 1 anomalie.",
                "  CRM PAS n° 123456789012345678 reçu : 2 taux (« iea pas rates » les affiche)",
                "  Retours (3) :",
                "    nature 10 — Accusé d'enregistrement électronique (AEE) ou avis de rejet (ARE) : AEE, déclaration enregistrée · téléchargé et lu",
                "    nature 11 — Certificat de conformité ou bilan d'anomalies : conforme avec anomalies · téléchargé et lu",
                "      anomalie CCH-11 (rubrique S21.G00.50.009) : Rubrique mal renseignée",
                "    nature 94 — Compte rendu des taux de prélèvement à la source (CRM nominatif) : disponible · téléchargé et lu",
            ]
        );
        let v = deposit_json(&d);
        assert_eq!(v["conformity"], "ano");
        assert_eq!(v["crm"]["identifier"], "123456789012345678");
        assert_eq!(v["crm"]["rates"], 2);
        assert_eq!(v["returns"][0]["rate_count"], Value::Null);
        assert_eq!(v["returns"][2]["rate_count"], 2);
    }

    #[test]
    fn without_a_deposit_only_the_pass_is_said_and_an_unfollowed_one_is_named() {
        assert_eq!(lines(&pass(), None), [pass().message]);
        let d = DsnReturnsOfDeposit {
            deposit_id: 2,
            ..Default::default()
        };
        assert_eq!(
            lines(&pass(), Some(&d))[1],
            "Dépôt DSN n° 2 : non suivi (seuls les dépôts acceptés ont des retours)"
        );
        let v = deposit_json(&d);
        assert_eq!(v["conformity"], Value::Null);
        assert_eq!(v["crm"], Value::Null);
    }
}
