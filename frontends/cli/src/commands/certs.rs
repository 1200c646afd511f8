//! `iea certs init DIR`.

use iea_runtime::pki::{self, InitOutcome};
use serde_json::json;

use super::Ctx;
use crate::args::CertsCommand;
use crate::output::{CliError, CliResult, print_json};

pub fn run(ctx: &Ctx, cmd: CertsCommand) -> CliResult {
    let CertsCommand::Init { dir, extra_names } = cmd;
    let outcome = pki::init(&dir, &extra_names).map_err(|e| {
        CliError::new(
            "certs_init_failed",
            format!(
                "Les certificats n'ont pas pu être créés dans {} (détail technique : {e:#}).",
                dir.display()
            ),
        )
    })?;
    let created = outcome == InitOutcome::Created;
    if ctx.json {
        print_json(&json!({"dir": dir, "created": created}));
    } else if created {
        say!("Certificats créés dans {}.", dir.display());
    } else {
        say!(
            "Les certificats existent déjà dans {} : rien n'a été modifié.",
            dir.display()
        );
    }
    Ok(())
}
