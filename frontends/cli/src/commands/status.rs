//! `iea status`.

use iea_proto::v1::status_client::StatusClient;
use iea_proto::v1::{GetStatusRequest, Indicator, StatusReport};
use serde_json::json;

use super::Ctx;
use crate::args::StatusArgs;
use crate::client;
use crate::output::{CliResult, print_json, rfc3339};

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

pub async fn run(ctx: &Ctx, _args: StatusArgs) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let channel = client::connect(&stack).await?;
    let report = StatusClient::new(channel)
        .get_status(GetStatusRequest {
            include_agents: true,
        })
        .await?
        .into_inner();
    if ctx.json {
        print_json(&to_json(&report, &stack.orchestrator));
    } else {
        print_human(&report, &stack.orchestrator);
    }
    Ok(())
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
        "orchestrator": {"address": orchestrator, "healthy": true},
        "agents": r.agents.iter().map(|a| json!({
            "name": a.name,
            "address": a.address,
            "healthy": a.healthy,
            "latency_ms": a.latency.map(|d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000),
            "message": (!a.message.is_empty()).then_some(&a.message),
        })).collect::<Vec<_>>(),
    })
}

fn print_human(r: &StatusReport, orchestrator: &str) {
    println!("État de la connexion : {}", indicator_label(r.indicator));
    if !r.reason.is_empty() {
        println!("  {}", r.reason);
    }
    println!(
        "Installation : {} (Impact emploi {})",
        r.installation_id, r.software_version
    );
    println!("Orchestrateur : en service ({orchestrator})");
    for a in &r.agents {
        if a.healthy {
            let ms = a
                .latency
                .map(|d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000)
                .unwrap_or(0);
            println!("Service {} : en service ({ms} ms)", a.name);
        } else {
            println!("Service {} : injoignable — {}", a.name, a.message);
        }
    }
}
