//! `iea stack up`: the whole stack in this process until Ctrl-C.

use iea_stack::{RunningStack, StackOptions};

use super::Ctx;
use crate::args::StackCommand;
use crate::output::{CliError, CliResult, print_json};

pub async fn run(ctx: &Ctx, cmd: StackCommand) -> CliResult {
    let StackCommand::Up { demo, database } = cmd;
    let database = database
        .map(|d| iea_orchestrator::store::DatabaseUrl::parse(&d))
        .transpose()
        .map_err(|e| CliError::new("invalid_input", e))?;
    iea_runtime::telemetry::init(iea_runtime::telemetry::LogFormat::from_env(), "info");
    // Handlers first: a Ctrl-C during start-up stops the stack cleanly once started.
    let interrupted = iea_runtime::shutdown::signal();
    let stack = RunningStack::start(StackOptions {
        data_dir: ctx.data_dir.clone(),
        demo,
        // The demonstration declarant, and the administrator ready to deposit with it.
        demo_account: demo,
        database,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        CliError::new(
            "stack_start_failed",
            format!("La pile n'a pas pu démarrer (détail technique : {e:#})."),
        )
    })?;
    let admin_password = stack.file.data_dir.join("admin-password");
    if ctx.json {
        print_json(
            &serde_json::to_value(&stack.file)
                .map_err(|e| CliError::new("internal", e.to_string()))?,
        );
    } else {
        say!(
            "Pile iea-connect démarrée (répertoire {}).",
            stack.file.data_dir.display()
        );
        say!("  Orchestrateur : {}", stack.file.orchestrator);
        if let Some(web) = &stack.file.web {
            say!("  Console web : {web} (à ouvrir dans un navigateur)");
        }
        for (name, addr) in &stack.file.agents {
            say!("  Agent {name} : {addr}");
        }
        for (name, m) in &stack.file.mocks {
            say!(
                "  Serveur simulé {name} : {} (administration {})",
                m.https,
                m.admin
            );
        }
        if demo {
            let d = iea_stack::DEMO_DECLARANT;
            say!(
                "Démonstration : le compte « Administrateur » dépose avec l'identité Net-entreprises du déclarant {} {} (SIRET {}) ; essayez iea dsn sample --siret {} --month 2026-11 --out dsn.txt, puis iea dsn deposit dsn.txt.",
                d.prenom,
                d.nom,
                d.siret,
                d.siret
            );
        }
        if admin_password.exists() {
            say!(
                "Mot de passe initial du compte « Administrateur » : {}",
                admin_password.display()
            );
        }
        say!("Ctrl-C pour arrêter.");
    }
    interrupted.await;
    if !ctx.json {
        say!("Arrêt en cours…");
    }
    stack.stop().await.map_err(|e| {
        CliError::new(
            "stack_stop_failed",
            format!("L'arrêt de la pile a rencontré une erreur (détail technique : {e:#})."),
        )
    })?;
    if !ctx.json {
        say!("Pile arrêtée.");
    }
    Ok(())
}
