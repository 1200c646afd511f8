//! `iea database`: which database the stack of this data directory uses, and moving an
//! installation from SQLite to PostgreSQL (*réseau* mode).

use iea_orchestrator::store::{CopyReport, DatabaseUrl, Store};
use serde_json::json;

use super::Ctx;
use crate::args::DatabaseCommand;
use crate::output::{CliError, CliResult, print_json};

pub async fn run(ctx: &Ctx, cmd: DatabaseCommand) -> CliResult {
    match cmd {
        DatabaseCommand::Show => show(ctx),
        DatabaseCommand::Migrate { to } => migrate(ctx, &to).await,
    }
}

/// The database of the stack in the data directory.
fn current(ctx: &Ctx) -> CliResult<DatabaseUrl> {
    Ok(iea_stack::chosen_database(&ctx.data_dir)
        .map_err(|e| CliError::new("invalid_settings", format!("{e:#}")))?
        .unwrap_or_else(|| DatabaseUrl::Sqlite(ctx.data_dir.join(iea_orchestrator::DATABASE_FILE))))
}

fn show(ctx: &Ctx) -> CliResult {
    let url = current(ctx)?;
    if ctx.json {
        let engine = match url {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        };
        print_json(&json!({"database": {"engine": engine, "url": url.to_string()}}));
    } else {
        say!("Base de données : {url}");
    }
    Ok(())
}

/// Is an orchestrator answering for this data directory?
async fn stack_running(ctx: &Ctx) -> bool {
    let Ok(file) = iea_stack::StackFile::read(&ctx.data_dir) else {
        return false;
    };
    let connect = tokio::net::TcpStream::connect(file.orchestrator.as_str());
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

async fn migrate(ctx: &Ctx, to: &str) -> CliResult {
    let to = DatabaseUrl::parse(to).map_err(|e| CliError::new("invalid_input", e))?;
    let DatabaseUrl::Postgres(_) = &to else {
        return Err(CliError::new(
            "invalid_input",
            "La destination doit être une base PostgreSQL (postgres://…).",
        ));
    };
    let source = match current(ctx)? {
        DatabaseUrl::Sqlite(path) => path,
        DatabaseUrl::Postgres(_) => {
            return Err(CliError::new(
                "already_migrated",
                "Cette installation utilise déjà une base PostgreSQL : rien à copier.",
            ));
        }
    };
    if stack_running(ctx).await {
        return Err(CliError::new(
            "stack_running",
            "La pile de ce répertoire est en cours d'exécution : arrêtez-la (Ctrl-C) avant de changer de base de données.",
        ));
    }
    let report = Store::migrate_sqlite(&source, &to).await.map_err(|e| {
        CliError::new(
            "migration_failed",
            format!("La copie a échoué, rien n'a été changé : {e:#}"),
        )
    })?;
    iea_stack::choose_database(&ctx.data_dir, &to).map_err(|e| {
        CliError::new(
            "migration_failed",
            format!(
                "La base a été copiée, mais le choix n'a pas pu être enregistré ({e:#}) : démarrez la pile avec --database."
            ),
        )
    })?;
    if ctx.json {
        let tables: serde_json::Map<String, serde_json::Value> = report
            .tables
            .iter()
            .map(|(t, n)| ((*t).to_owned(), json!(n)))
            .collect();
        print_json(&json!({"migration": {
            "from": format!("sqlite://{}", source.display()),
            "to": to.to_string(),
            "rows": tables,
        }}));
    } else {
        say!("Installation copiée vers {to} :");
        for line in copied_lines(&report) {
            say!("  {line}");
        }
        say!(
            "La base SQLite {} n'a pas été modifiée. Les prochains démarrages (iea stack up) utiliseront PostgreSQL.",
            source.display()
        );
    }
    Ok(())
}

/// What was copied, a line each for a person: the accounts and their identities, then the
/// DSN deposits and what came back (those only when there are some).
fn copied_lines(report: &CopyReport) -> Vec<String> {
    let count = |t: &str| {
        report
            .tables
            .iter()
            .find(|(name, _)| *name == t)
            .map_or(0, |(_, n)| *n)
    };
    let fr = |t, one, many| iea_fr_time::count(count(t), one, many);
    let mut lines = vec![
        fr("users", "compte utilisateur", "comptes utilisateurs"),
        format!(
            "{} (mots de passe toujours chiffrés)",
            fr(
                "credentials",
                "identifiant Net-entreprises",
                "identifiants Net-entreprises"
            )
        ),
        fr("secrets", "secret chiffré", "secrets chiffrés"),
        fr("settings", "réglage", "réglages"),
        fr("sessions", "session ouverte", "sessions ouvertes"),
    ];
    for (table, one, many) in [
        (
            "deposit_accounts",
            "établissement et son compte qui dépose",
            "établissements et leur compte qui dépose",
        ),
        ("deposits", "dépôt DSN", "dépôts DSN"),
        (
            "dsn_returns",
            "retour de Net-entreprises (accusé, conformité, CRM PAS)",
            "retours de Net-entreprises (accusés, conformités, CRM PAS)",
        ),
        (
            "pas_rates",
            "taux de prélèvement à la source",
            "taux de prélèvement à la source",
        ),
    ] {
        if count(table) > 0 {
            lines.push(fr(table, one, many));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DSN part says what was deposited and what came back, when there is any.
    #[test]
    fn the_copy_is_told_table_by_table_in_french() {
        let report = CopyReport {
            tables: vec![
                ("users", 2),
                ("credentials", 1),
                ("secrets", 2),
                ("settings", 0),
                ("sessions", 1),
                ("deposit_accounts", 1),
                ("deposits", 14),
                ("dsn_returns", 30),
                ("pas_rates", 0),
            ],
        };
        assert_eq!(
            copied_lines(&report),
            [
                "2 comptes utilisateurs",
                "1 identifiant Net-entreprises (mots de passe toujours chiffrés)",
                "2 secrets chiffrés",
                "0 réglage",
                "1 session ouverte",
                "1 établissement et son compte qui dépose",
                "14 dépôts DSN",
                "30 retours de Net-entreprises (accusés, conformités, CRM PAS)",
            ]
        );
    }
}
