//! "Demande de support technique": a ready-to-send RFC 5322 message to Impact emploi's
//! support, subject "Serveur de connexion `<installed version>`", whose body explains the
//! problem in French and whose attachment is a diagnostic summary.
//!
//! Invariant: the summary is built from an allow-list of fields; no password, key, token
//! or licence key is ever read here, so none can leak into it.

use mail_builder::MessageBuilder;
use serde_json::{Value, json};

use crate::Core;
use crate::access::{RepairHistory, TestRecord};
use crate::connection::{Candidate, ConnectionType};
use crate::credentials::CredentialsError;
use crate::sessions::Principal;
use crate::status::Snapshot;
use crate::users::InstallationMode;

pub const SUPPORT_ADDRESS: &str = "impact-emploi-association@urssaf.fr";
/// Used when the person gives no sender address.
pub const PLACEHOLDER_FROM: &str = "a-remplacer@iea-connect.invalid";

/// Everything the summary may say.
pub struct Facts {
    pub installation_id: String,
    pub software_version: iea_version::ImpactVersion,
    pub installation_mode: String,
    pub status: Snapshot,
    pub recent: Vec<Snapshot>,
    pub connection: Candidate,
    pub last_test: Option<TestRecord>,
    pub repair_history: RepairHistory,
    /// (account, configured, last outcome code, consecutive refusals)
    pub accounts: Vec<(String, bool, Option<String>, u32)>,
}

/// What the summary says now, as `caller` may see it (their own account only, unless
/// an administrator).
pub async fn facts(core: &Core, caller: &Principal) -> Result<Facts, CredentialsError> {
    let last_test = core.store.load::<TestRecord>().await?;
    let repair_history = core
        .store
        .load::<RepairHistory>()
        .await?
        .unwrap_or_default();
    let accounts = core
        .credentials
        .list(caller)
        .await?
        .into_iter()
        .map(|s| {
            let outcome = s.last.as_ref().map(|v| v.result.outcome.code().to_owned());
            (s.user, s.configured, outcome, s.consecutive_failures)
        })
        .collect();
    let mode = match core.users.mode().await {
        Ok(InstallationMode::Reseau) => "reseau",
        _ => "monoposte",
    };
    Ok(Facts {
        installation_id: core.installation_id.clone(),
        software_version: core.software_version.get(),
        installation_mode: mode.to_owned(),
        status: core.hub.current(),
        recent: core.hub.recent(),
        connection: core.network.current(),
        last_test,
        repair_history,
        accounts,
    })
}

pub fn subject(software_version: iea_version::ImpactVersion) -> String {
    format!("Serveur de connexion {software_version}")
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn snapshot(s: &Snapshot) -> Value {
    json!({
        "indicator": s.indicator,
        "reason_code": s.reason_code,
        "reason": s.reason,
        "since": rfc3339(s.since),
        "update_required": s.update_required,
    })
}

/// The diagnostic summary (JSON), from the allow-listed facts.
pub fn diagnostic(f: &Facts) -> Value {
    let s = &f.connection.settings;
    let connection_type = match &s.connection_type {
        ConnectionType::Direct => json!({"type": "direct"}),
        ConnectionType::System => json!({"type": "system"}),
        ConnectionType::Proxy {
            host,
            port,
            username,
        } => json!({
            "type": "proxy",
            "host": host,
            "port": port,
            "username": username,
            "password_set": f.connection.proxy_password.is_some(),
        }),
    };
    json!({
        "generated_at": rfc3339(crate::sessions::now()),
        "iea_connect_version": env!("CARGO_PKG_VERSION"),
        "software_version": f.software_version.to_string(),
        "installation_id": f.installation_id,
        "installation_mode": f.installation_mode,
        "status": snapshot(&f.status),
        "recent_status_changes": f.recent.iter().map(snapshot).collect::<Vec<_>>(),
        "connection_settings": {
            "connection_type": connection_type,
            "mode": s.mode,
            "auth_server": s.auth_server,
            "update_server": s.update_server,
            "net_entreprises": s.net_entreprises,
        },
        "last_server_access_test": f.last_test,
        "repair_history": f.repair_history,
        "net_entreprises_accounts": f.accounts.iter().map(|(user, configured, outcome, failures)| json!({
            "user": user,
            "configured": configured,
            "last_outcome": outcome,
            "consecutive_refusals": failures,
        })).collect::<Vec<_>>(),
    })
}

/// The French body of the message.
pub fn body(f: &Facts, description: &str) -> String {
    let mut b = String::from("Bonjour,\n\n");
    if !description.trim().is_empty() {
        b.push_str(description.trim());
        b.push_str("\n\n");
    }
    b.push_str(&format!(
        "L'installation {} (Impact emploi {}) rencontre un problème de connexion aux serveurs.\n\n",
        f.installation_id, f.software_version
    ));
    b.push_str(&format!("État de la connexion : {}\n", f.status.reason));
    if let Some(t) = &f.last_test {
        b.push_str(&format!(
            "\nDernier test d'accès aux serveurs (le {}) :\n",
            iea_fr_time::date_time_unix(t.tested_at)
        ));
        for r in &t.results {
            let mark = if r.reachable {
                "joignable"
            } else {
                "injoignable"
            };
            b.push_str(&format!("- {} : {mark}. {}\n", r.address, r.message));
        }
    }
    let errors: Vec<&Snapshot> = f
        .recent
        .iter()
        .filter(|s| s.reason_code != "authorized")
        .collect();
    if !errors.is_empty() {
        b.push_str("\nDerniers incidents :\n");
        for s in errors {
            b.push_str(&format!(
                "- le {} : {}\n",
                iea_fr_time::date_time_unix(s.since),
                s.reason
            ));
        }
    }
    b.push_str(
        "\nLe diagnostic détaillé est joint à ce message. Il ne contient aucun mot de passe, aucune clé ni aucun identifiant de connexion.\n\nCordialement,\n",
    );
    b
}

/// The whole message, RFC 5322.
pub fn message(f: &Facts, description: &str, from: &str) -> anyhow::Result<Vec<u8>> {
    let diagnostic = serde_json::to_vec_pretty(&diagnostic(f))?;
    let from = if from.trim().is_empty() {
        PLACEHOLDER_FROM
    } else {
        from.trim()
    };
    let eml = MessageBuilder::new()
        .from((
            format!("Installation {}", f.installation_id),
            from.to_owned(),
        ))
        .to(("Support Impact emploi association", SUPPORT_ADDRESS))
        .subject(subject(f.software_version))
        .text_body(body(f, description))
        .attachment(
            "application/json",
            format!("diagnostic-{}.json", f.installation_id),
            diagnostic,
        )
        .write_to_vec()?;
    Ok(eml)
}
