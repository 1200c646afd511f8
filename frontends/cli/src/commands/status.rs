//! `iea status`.

use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::{
    ActivateAssistanceRequest, DeactivateAssistanceRequest, GetStatusRequest, Indicator,
    ReauthenticateRequest, StatusReport, WatchStatusRequest,
};
use serde_json::json;
use tokio_stream::StreamExt;

use super::Ctx;
use crate::args::{AssistanceCommand, AuthCommand, StatusArgs};
use crate::client;
use crate::output::{CliResult, print_json, rfc3339, when};

/// The indicator's name in JSON: the four states, or `unknown` before the first
/// authentication.
pub fn indicator_name(i: i32) -> &'static str {
    match Indicator::try_from(i) {
        Ok(Indicator::Connected) => "connected",
        Ok(Indicator::Disconnected) => "disconnected",
        Ok(Indicator::Consultation) => "consultation",
        Ok(Indicator::Assistance) => "assistance",
        _ => "unknown",
    }
}

fn indicator_label(i: i32) -> &'static str {
    match Indicator::try_from(i) {
        Ok(Indicator::Connected) => "connecté (boule bleue)",
        Ok(Indicator::Disconnected) => "déconnecté (boule bleue au cœur rouge)",
        Ok(Indicator::Consultation) => "consultation seule (licence retirée)",
        Ok(Indicator::Assistance) => "mode assistance (scarabée rouge)",
        _ => "indéterminé",
    }
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let channel = client::connect(&stack).await?;
    if args.watch {
        return watch(ctx, channel).await;
    }
    let report = StatusClient::new(channel)
        .get_status(client::authed(
            &ctx.data_dir,
            GetStatusRequest {
                include_agents: true,
            },
        ))
        .await?
        .into_inner();
    let signed_in = client::session_token(&ctx.data_dir).is_some();
    if ctx.json {
        let mut v = to_json(&report, &stack.orchestrator);
        v["alerts"] = alerts_json(&report, signed_in);
        v["refused_deposit_accounts"] = refused_accounts_json(&report, signed_in);
        print_json(&v);
    } else {
        print_human(&report, &stack.orchestrator);
        if let Some(line) = alerts_line(&report, signed_in) {
            say!("{line}");
        }
        for line in refused_accounts_lines(&report) {
            say!("{line}");
        }
    }
    Ok(())
}

/// When this command is not of the orchestrator's version: what to do, in French.
fn cli_version_problem(orchestrator: &str) -> Option<String> {
    let own = iea_runtime::grpc::VERSION;
    (!orchestrator.is_empty() && orchestrator != own).then(|| {
        format!(
            "La commande iea est en version {own}, l'orchestrateur en version {orchestrator} : \
             installez la même version de chaque composant."
        )
    })
}

fn to_json(r: &StatusReport, orchestrator: &str) -> serde_json::Value {
    json!({
        "indicator": indicator_name(r.indicator),
        "reason": r.reason,
        "reason_code": r.reason_code,
        "since": rfc3339(r.since.as_ref()),
        "installation_id": r.installation_id,
        "software_version": r.software_version,
        "update_available": (!r.update_available.is_empty()).then_some(&r.update_available),
        "update_required": r.update_required,
        "orchestrator": {"address": orchestrator, "healthy": true, "version": r.orchestrator_version},
        "agents": r.agents.iter().map(|a| json!({
            "name": a.name,
            "address": a.address,
            "healthy": a.healthy,
            "version": (!a.version.is_empty()).then_some(&a.version),
            "version_mismatch": a.version_mismatch,
            "latency_ms": a.latency.as_ref().map(iea_proto::millis),
            "message": (!a.message.is_empty()).then_some(&a.message),
        })).collect::<Vec<_>>(),
    })
}

/// The board's alerts in the status: `null` without a session (the orchestrator gives
/// them only to a signed-in account), else their count and the most urgent one.
fn alerts_json(r: &StatusReport, signed_in: bool) -> serde_json::Value {
    if !signed_in {
        return serde_json::Value::Null;
    }
    json!({
        "count": r.alert_count,
        "most_urgent": r.most_urgent_alert.as_ref().map(super::dsn::alert_json),
    })
}

/// « 2 alertes — La DSN de novembre 2026 … » for a person.
fn alerts_line(r: &StatusReport, signed_in: bool) -> Option<String> {
    if !signed_in {
        return None;
    }
    Some(match (&r.most_urgent_alert, r.alert_count) {
        (_, 0) | (None, _) => "Échéances DSN : aucune alerte.".to_owned(),
        (Some(a), 1) => format!("Échéances DSN : 1 alerte — {}", a.message),
        (Some(a), n) => format!(
            "Échéances DSN : {n} alertes (iea dsn board) ; la plus urgente — {}",
            a.message
        ),
    })
}

/// The depositing accounts whose credentials were refused at their last verification
/// (made before each due date): `null` without a session, else each one.
fn refused_accounts_json(r: &StatusReport, signed_in: bool) -> serde_json::Value {
    if !signed_in {
        return serde_json::Value::Null;
    }
    r.refused_deposit_accounts
        .iter()
        .map(|a| {
            json!({
                "siret": a.siret,
                "user": a.user,
                "next_due": rfc3339(a.next_due.as_ref()),
                "checked_at": rfc3339(a.last_checked_at.as_ref()),
                "message": a.last_check_message,
            })
        })
        .collect()
}

/// « Identifiants Net-entreprises refusés : compte « X » (SIRET …, échéance le …) — … ».
fn refused_accounts_lines(r: &StatusReport) -> Vec<String> {
    r.refused_deposit_accounts
        .iter()
        .map(|a| {
            let due = when(a.next_due.as_ref())
                .map(|d| format!(", prochaine échéance le {d}"))
                .unwrap_or_default();
            format!(
                "Identifiants Net-entreprises refusés pour les dépôts DSN : compte « {} » (SIRET {}{due}) — {} Corrigez-les avant l'échéance (iea credentials set --user {}).",
                a.user, a.siret, a.last_check_message, a.user
            )
        })
        .collect()
}

/// « État de la connexion : connecté (boule bleue), depuis le 1er décembre 2026 à 11 h 20 ».
fn state_line(r: &StatusReport) -> String {
    match when(r.since.as_ref()) {
        Some(since) => format!(
            "État de la connexion : {}, depuis le {since}",
            indicator_label(r.indicator)
        ),
        None => format!("État de la connexion : {}", indicator_label(r.indicator)),
    }
}

fn print_human(r: &StatusReport, orchestrator: &str) {
    say!("{}", state_line(r));
    if !r.reason.is_empty() {
        say!("  {}", r.reason);
    }
    say!(
        "Installation : {} (Impact emploi {})",
        r.installation_id,
        r.software_version
    );
    say!(
        "Orchestrateur : en service ({orchestrator}, version {})",
        r.orchestrator_version
    );
    if let Some(problem) = cli_version_problem(&r.orchestrator_version) {
        say!("  {problem}");
    }
    for a in &r.agents {
        if a.healthy {
            let ms = a.latency.as_ref().map(iea_proto::millis).unwrap_or(0);
            say!("{} : en service ({ms} ms)", iea_proto::agent_label(&a.name));
            if a.version_mismatch {
                say!("  {}", a.message);
            }
        } else {
            say!(
                "{} : injoignable — {}",
                iea_proto::agent_label(&a.name),
                a.message
            );
        }
    }
}

/// One line, or one JSON object, per change, until the stream ends or Ctrl-C.
async fn watch(ctx: &Ctx, channel: tonic::transport::Channel) -> CliResult {
    let interrupted = iea_runtime::shutdown::signal();
    tokio::pin!(interrupted);
    let mut stream = StatusClient::new(channel)
        .watch_status(WatchStatusRequest {})
        .await?
        .into_inner();
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = &mut interrupted => return Ok(()),
        };
        let Some(report) = next else {
            return Err(crate::output::CliError::new(
                "unavailable",
                "L'orchestrateur a fermé le suivi de l'état (arrêt du service ?).",
            ));
        };
        let report = report?;
        if ctx.json {
            say!("{}", compact(&report));
        } else {
            say!(
                "{} — {} : {}",
                when(report.since.as_ref()).unwrap_or_default(),
                indicator_label(report.indicator),
                report.reason
            );
        }
    }
}

fn compact(r: &StatusReport) -> serde_json::Value {
    json!({
        "indicator": indicator_name(r.indicator),
        "reason": r.reason,
        "reason_code": r.reason_code,
        "since": rfc3339(r.since.as_ref()),
        "installation_id": r.installation_id,
    })
}

pub async fn auth(ctx: &Ctx, cmd: AuthCommand) -> CliResult {
    let AuthCommand::Retry = cmd;
    let stack = client::stack_file(&ctx.data_dir)?;
    let report = StatusClient::new(client::connect(&stack).await?)
        .reauthenticate(client::authed(&ctx.data_dir, ReauthenticateRequest {}))
        .await?
        .into_inner();
    if ctx.json {
        print_json(&compact(&report));
    } else {
        say!("{}", state_line(&report));
        say!("  {}", report.reason);
    }
    Ok(())
}

pub async fn assistance(ctx: &Ctx, cmd: AssistanceCommand) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let mut status = StatusClient::new(client::connect(&stack).await?);
    match cmd {
        AssistanceCommand::On => {
            let r = status
                .activate_assistance(client::authed(&ctx.data_dir, ActivateAssistanceRequest {}))
                .await?
                .into_inner();
            let report = r.status.unwrap_or_default();
            if ctx.json {
                let mut v = compact(&report);
                v["warning"] = json!(r.warning);
                print_json(&v);
            } else {
                say!("{}", r.warning);
                say!(
                    "État de la connexion : {}",
                    indicator_label(report.indicator)
                );
            }
        }
        AssistanceCommand::Off { daily_password } => {
            let report = status
                .deactivate_assistance(client::authed(
                    &ctx.data_dir,
                    DeactivateAssistanceRequest { daily_password },
                ))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&compact(&report));
            } else {
                say!("Mode assistance désactivé.");
                say!("  {}", report.reason);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_of_another_version_than_the_orchestrator_says_so() {
        assert_eq!(cli_version_problem(env!("CARGO_PKG_VERSION")), None);
        assert_eq!(cli_version_problem(""), None);
        let said = cli_version_problem("0.0.1").unwrap();
        assert!(said.contains("l'orchestrateur en version 0.0.1"), "{said}");
    }
}
