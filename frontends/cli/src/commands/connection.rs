//! `iea connection …`.

use iea_proto::common::v1::{ConnectionMode, ConnectionType};
use iea_proto::v1::connection_client::ConnectionClient;
use iea_proto::v1::*;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{Ctx, secrets};
use crate::args::{
    ConnectionChanges, ConnectionCommand, ConnectionModeChoice, ConnectionTypeChoice,
};
use crate::client;
use crate::output::{CliError, CliResult, print_json, rfc3339, when};

fn type_name(t: i32) -> &'static str {
    match ConnectionType::try_from(t) {
        Ok(ConnectionType::Proxy) => "proxy",
        Ok(ConnectionType::Direct) => "direct",
        Ok(ConnectionType::System) => "system",
        _ => "unknown",
    }
}

fn mode_name(m: i32) -> &'static str {
    match ConnectionMode::try_from(m) {
        Ok(ConnectionMode::Normal) => "normal",
        Ok(ConnectionMode::Extended) => "extended",
        Ok(ConnectionMode::Secure) => "secure",
        _ => "unknown",
    }
}

fn settings_json(s: &ConnectionSettings) -> Value {
    json!({
        "type": type_name(s.connection_type),
        "proxy": s.proxy.as_ref().map(|p| json!({"host": p.host, "port": p.port, "username": (!p.username.is_empty()).then_some(&p.username), "password_set": p.password_set})),
        "mode": mode_name(s.mode),
        "auth_server": s.auth_server,
        "update_server": s.update_server,
        "net_entreprises": s.net_entreprises,
    })
}

fn print_settings(s: &ConnectionSettings) {
    let kind = match type_name(s.connection_type) {
        "proxy" => "par un serveur proxy",
        "direct" => "directe",
        _ => "paramètres du système",
    };
    say!("Type de connexion : {kind}");
    if let Some(p) = &s.proxy {
        let login = if p.username.is_empty() {
            String::new()
        } else {
            format!(
                ", identifiant « {} »{}",
                p.username,
                if p.password_set {
                    ", mot de passe enregistré"
                } else {
                    ""
                }
            )
        };
        say!("  Serveur proxy : {}:{}{login}", p.host, p.port);
    }
    let mode = match mode_name(s.mode) {
        "normal" => "Normal",
        "extended" => "Étendu",
        _ => "Sécurisé",
    };
    say!("Mode de connexion : {mode}");
    say!("Adresse du serveur d'authentification : {}", s.auth_server);
    say!("Adresse du serveur de mise à jour : {}", s.update_server);
    say!(
        "Adresse d'authentification Net-entreprises : {}",
        s.net_entreprises
    );
}

fn test_json(t: &TestServerAccessResponse) -> Value {
    json!({
        "all_reachable": t.all_reachable,
        "message": t.message,
        "tested_at": rfc3339(t.tested_at.as_ref()),
        "results": t.tests.iter().map(|a| {
            let r = a.result.clone().unwrap_or_default();
            json!({
                "target": a.target,
                "address": r.address,
                "reachable": r.reachable,
                "step": crate::codes::step(r.step),
                "latency_ms": r.latency.as_ref().map(iea_proto::millis),
                "http_status": (r.http_status != 0).then_some(r.http_status),
                "message": r.message,
            })
        }).collect::<Vec<_>>(),
    })
}

fn print_test(t: &TestServerAccessResponse) {
    for a in &t.tests {
        let r = a.result.clone().unwrap_or_default();
        let ms = r.latency.as_ref().map(iea_proto::millis).unwrap_or(0);
        let mark = if r.reachable { "✔" } else { "✘" };
        say!(
            "{mark} {} — {} ({ms} ms) : {}",
            target_label(&a.target),
            r.address,
            r.message
        );
    }
    say!("{}", t.message);
    if let Some(at) = when(t.tested_at.as_ref()) {
        say!("Test effectué le {at}.");
    }
}

/// The server a test is about, in French.
fn target_label(target: &str) -> &str {
    match target {
        "auth_server" => "Serveur d'authentification Impact emploi",
        "update_server" => "Serveur de mise à jour",
        "net_entreprises" => "Net-entreprises",
        other => other,
    }
}

/// The settings in force with `changes` applied.
fn apply_changes(mut s: ConnectionSettings, c: ConnectionChanges) -> CliResult<ConnectionSettings> {
    if let Some(t) = c.connection_type {
        s.connection_type = match t {
            ConnectionTypeChoice::Proxy => ConnectionType::Proxy,
            ConnectionTypeChoice::Direct => ConnectionType::Direct,
            ConnectionTypeChoice::System => ConnectionType::System,
        }
        .into();
    }
    if let Some(url) = c.proxy {
        let parsed = url::Url::parse(&url).map_err(|_| {
            CliError::new(
                "invalid_input",
                format!(
                    "« {url} » n'est pas une adresse de proxy (http://[identifiant@]hôte:port)."
                ),
            )
        })?;
        s.connection_type = ConnectionType::Proxy.into();
        s.proxy = Some(ProxyView {
            host: parsed.host_str().unwrap_or_default().to_owned(),
            port: u32::from(parsed.port_or_known_default().unwrap_or(0)),
            username: parsed.username().to_owned(),
            password: String::new(),
            password_set: false,
        });
    }
    if c.proxy_password_stdin {
        let pw = secrets::read(&["Mot de passe du proxy"], true)?;
        let p = s.proxy.get_or_insert_with(ProxyView::default);
        p.password = pw[0].expose_secret().to_owned();
    }
    if let Some(m) = c.mode {
        s.mode = match m {
            ConnectionModeChoice::Normal => ConnectionMode::Normal,
            ConnectionModeChoice::Extended => ConnectionMode::Extended,
            ConnectionModeChoice::Secure => ConnectionMode::Secure,
        }
        .into();
    }
    if let Some(a) = c.auth_server {
        s.auth_server = a;
    }
    if let Some(a) = c.update_server {
        s.update_server = a;
    }
    if let Some(a) = c.net_entreprises {
        s.net_entreprises = a;
    }
    Ok(s)
}

fn has_changes(c: &ConnectionChanges) -> bool {
    c.connection_type.is_some()
        || c.proxy.is_some()
        || c.proxy_password_stdin
        || c.mode.is_some()
        || c.auth_server.is_some()
        || c.update_server.is_some()
        || c.net_entreprises.is_some()
}

pub async fn run(ctx: &Ctx, cmd: ConnectionCommand) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let mut conn = ConnectionClient::new(client::connect(&stack).await?);
    let current = || async {
        conn.clone()
            .get_connection_settings(client::authed(
                &ctx.data_dir,
                GetConnectionSettingsRequest {},
            ))
            .await
            .map(|r| r.into_inner())
    };
    match cmd {
        ConnectionCommand::Show => {
            let s = current().await?;
            if ctx.json {
                print_json(&settings_json(&s));
            } else {
                print_settings(&s);
            }
        }
        ConnectionCommand::Set(changes) => {
            let s = apply_changes(current().await?, changes)?;
            let saved = conn
                .update_connection_settings(client::authed(&ctx.data_dir, s))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&settings_json(&saved));
            } else {
                say!("Paramètres de connexion enregistrés.");
                print_settings(&saved);
            }
        }
        ConnectionCommand::Test(changes) => {
            let settings = if has_changes(&changes) {
                Some(apply_changes(current().await?, changes)?)
            } else {
                None
            };
            let t = conn
                .test_server_access(client::authed(
                    &ctx.data_dir,
                    TestServerAccessRequest { settings },
                ))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&test_json(&t));
            } else {
                print_test(&t);
            }
            if !t.all_reachable {
                std::process::exit(3);
            }
        }
        ConnectionCommand::Repair { apply, id } => {
            let r = conn
                .propose_repairs(client::authed(&ctx.data_dir, ProposeRepairsRequest {}))
                .await?
                .into_inner();
            let chosen = match &id {
                Some(id) => r.proposals.iter().find(|p| &p.id == id),
                None => r.proposals.first(),
            };
            if apply {
                let Some(p) = chosen else {
                    return Err(CliError::new(
                        "no_repair",
                        "Aucune réparation connue ne s'applique, ou aucune n'a passé le test : préparez une demande de support (iea support request).",
                    ));
                };
                let done = conn
                    .apply_repair(client::authed(
                        &ctx.data_dir,
                        ApplyRepairRequest { id: p.id.clone() },
                    ))
                    .await?
                    .into_inner();
                if ctx.json {
                    print_json(
                        &json!({"applied": p.id, "changes": done.changes, "saved": done.saved.as_ref().map(settings_json)}),
                    );
                } else {
                    say!("Réparation appliquée : {}", p.description);
                    say!("{}", done.changes);
                }
                return Ok(());
            }
            if ctx.json {
                print_json(&json!({
                    "current": r.current.as_ref().map(test_json),
                    "proposals": r.proposals.iter().map(|p| json!({
                        "id": p.id,
                        "description": p.description,
                        "proposed": p.proposed.as_ref().map(settings_json),
                        "test": p.test.as_ref().map(test_json),
                    })).collect::<Vec<_>>(),
                }));
            } else {
                if let Some(t) = &r.current {
                    print_test(t);
                }
                if r.proposals.is_empty() {
                    say!("Aucune réparation connue ne s'applique.");
                }
                for p in &r.proposals {
                    say!("Réparation proposée ({}) : {}", p.id, p.description);
                    say!(
                        "  Testée avec succès. Pour l'appliquer : iea connection repair --apply --id {}",
                        p.id
                    );
                }
            }
        }
    }
    Ok(())
}
