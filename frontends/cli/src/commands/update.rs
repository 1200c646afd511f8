//! `iea update …`: a progress bar for people, one JSON object per event for programs.

use std::io::{BufRead, IsTerminal, Write};

use futures::StreamExt;
use iea_proto::v1::updates_client::UpdatesClient;
use iea_proto::v1::*;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use serde_json::json;

use super::Ctx;
use crate::args::UpdateCommand;
use crate::client;
use crate::output::{CliError, CliResult, day, print_json, rfc3339, when};

fn check_json(c: &UpdateCheck) -> serde_json::Value {
    json!({
        "installed_version": c.installed_version,
        "minimum_version": (!c.minimum_version.is_empty()).then_some(&c.minimum_version),
        "available": c.available.iter().map(|r| json!({
            "version": r.version,
            "published_at": rfc3339(r.published_at.as_ref()),
            "package_length": r.package_length,
            "scripts": r.script_count,
            "notes_available": r.notes_available,
        })).collect::<Vec<_>>(),
    })
}

fn progress_json(p: &UpdateProgress) -> serde_json::Value {
    json!({
        "phase": crate::codes::phase(p.phase),
        "bytes_done": p.bytes_done,
        "bytes_total": p.bytes_total,
        "bytes_per_second": p.bytes_per_second,
        "seconds_remaining": p.seconds_remaining,
        "message": p.message,
    })
}

fn confirm(question: &str) -> CliResult<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            "confirmation_needed",
            "Confirmation impossible sans terminal : relancez avec --yes.",
        ));
    }
    print!("{question} [o/N] ");
    std::io::stdout().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok();
    Ok(matches!(
        line.trim().to_lowercase().as_str(),
        "o" | "oui" | "y" | "yes"
    ))
}

/// A remaining time: « 45 s », « 2 min 05 s », « 1 h 02 min ».
fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3_600, (s % 3_600) / 60),
    }
}

/// A maintenance script's state for a person (JSON keeps the code: `pending`,
/// `applied`).
fn script_state(s: &MaintenanceScript) -> String {
    match ScriptState::try_from(s.state).unwrap_or(ScriptState::Unspecified) {
        ScriptState::Pending => "en attente".into(),
        ScriptState::Applied => match when(s.applied_at.as_ref()) {
            Some(at) => format!("appliqué le {at}"),
            None => "appliqué".into(),
        },
        ScriptState::Unspecified => "état inconnu".into(),
    }
}

pub async fn run(ctx: &Ctx, cmd: UpdateCommand) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let mut updates = UpdatesClient::new(client::connect(&stack).await?);
    match cmd {
        UpdateCommand::Check => {
            let c = updates
                .check_updates(client::authed(&ctx.data_dir, CheckUpdatesRequest {}))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&check_json(&c));
            } else {
                say!("Version installée : {}", c.installed_version);
                if c.available.is_empty() {
                    say!("Impact emploi est à jour.");
                }
                for r in &c.available {
                    say!(
                        "Nouvelle version {} ({}{}{}){}",
                        r.version,
                        day(r.published_at.as_ref())
                            .map(|d| format!("publiée le {d}, "))
                            .unwrap_or_default(),
                        iea_fr_time::size(r.package_length),
                        if r.script_count > 0 {
                            format!(
                                ", {}",
                                iea_fr_time::count(
                                    r.script_count.into(),
                                    "script de maintenance",
                                    "scripts de maintenance"
                                )
                            )
                        } else {
                            String::new()
                        },
                        if r.notes_available {
                            " — notes : iea update notes"
                        } else {
                            ""
                        }
                    );
                }
                if !c.minimum_version.is_empty() {
                    say!(
                        "Version minimale exigée par le serveur : {}",
                        c.minimum_version
                    );
                }
            }
        }
        UpdateCommand::Notes { version } => {
            let n = updates
                .get_release_notes(client::authed(
                    &ctx.data_dir,
                    GetReleaseNotesRequest {
                        version: version.unwrap_or_default(),
                    },
                ))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&json!({"version": n.version, "text": n.text}));
            } else {
                say!("Lisez-moi — version {}\n", n.version);
                say!("{}", n.text);
            }
        }
        UpdateCommand::Apply { version, yes } => {
            if !yes && !ctx.json {
                let what = version.clone().unwrap_or_else(|| "la plus récente".into());
                if !confirm(&format!("Installer la version {what} d'Impact emploi ?"))? {
                    say!("Mise à jour abandonnée.");
                    return Ok(());
                }
            }
            let mut stream = updates
                .apply_update(client::authed(
                    &ctx.data_dir,
                    ApplyUpdateRequest {
                        version: version.unwrap_or_default(),
                    },
                ))
                .await?
                .into_inner();
            let bar = (!ctx.json).then(|| {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:40} [{bar:30}] {fait}/{total} {debit} reste {reste}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .with_key("fait", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&iea_fr_time::size(s.pos()));
                    })
                    .with_key("total", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&iea_fr_time::size(s.len().unwrap_or(0)));
                    })
                    .with_key("debit", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}/s", iea_fr_time::size(s.per_sec() as u64));
                    })
                    .with_key("reste", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&duration(s.eta()));
                    })
                    .progress_chars("=> "),
                );
                b
            });
            let mut last = None;
            while let Some(item) = stream.next().await {
                let p = item?;
                match &bar {
                    Some(b) => {
                        if p.bytes_total > 0 {
                            b.set_length(p.bytes_total);
                            b.set_position(p.bytes_done);
                        }
                        b.set_message(p.message.clone());
                    }
                    None => say!("{}", progress_json(&p)),
                }
                last = Some(p);
            }
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            match last {
                Some(p) if p.phase == UpdatePhase::Done as i32 => {
                    if !ctx.json {
                        say!("{}", p.message);
                    }
                }
                _ => {
                    return Err(CliError::new(
                        "update_incomplete",
                        "La mise à jour s'est interrompue avant la fin : la version précédente reste installée.",
                    ));
                }
            }
        }
        UpdateCommand::Scripts { action } => {
            let r = if action.is_some() {
                updates
                    .apply_pending_scripts(client::authed(
                        &ctx.data_dir,
                        ApplyPendingScriptsRequest {},
                    ))
                    .await?
                    .into_inner()
                    .applied
            } else {
                updates
                    .list_pending_scripts(client::authed(
                        &ctx.data_dir,
                        ListPendingScriptsRequest {},
                    ))
                    .await?
                    .into_inner()
                    .scripts
            };
            if ctx.json {
                print_json(
                    &json!({"scripts": r.iter().map(|s| json!({"name": s.name, "version": s.version, "state": crate::codes::script_state(s.state), "applied_at": rfc3339(s.applied_at.as_ref())})).collect::<Vec<_>>()}),
                );
            } else if r.is_empty() {
                say!("Aucun script de maintenance.");
            } else {
                for s in &r {
                    say!("{} ({}) : {}", s.name, s.version, script_state(s));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_in_french() {
        assert_eq!(duration(std::time::Duration::from_secs(45)), "45 s");
        assert_eq!(duration(std::time::Duration::from_secs(125)), "2 min 05 s");
        assert_eq!(
            duration(std::time::Duration::from_secs(3_720)),
            "1 h 02 min"
        );
    }

    #[test]
    fn script_states_are_french_for_people() {
        let mut s = MaintenanceScript {
            name: "iea-3.00.72.script-001.json".into(),
            version: "3.00.72".into(),
            state: ScriptState::Pending.into(),
            applied_at: None,
        };
        assert_eq!(script_state(&s), "en attente");
        s.state = ScriptState::Applied.into();
        s.applied_at = Some(prost_types::Timestamp {
            seconds: 1_796_120_404,
            nanos: 0,
        });
        assert_eq!(script_state(&s), "appliqué le 1er décembre 2026 à 11 h 20");
        s.state = 42;
        assert_eq!(script_state(&s), "état inconnu");
    }
}
