//! `iea support request`.

use iea_proto::v1::PrepareSupportRequestRequest;
use iea_proto::v1::support_client::SupportClient;
use serde_json::json;

use super::Ctx;
use crate::args::SupportCommand;
use crate::client;
use crate::output::{CliError, CliResult, print_json};

pub async fn run(ctx: &Ctx, cmd: SupportCommand) -> CliResult {
    let SupportCommand::Request {
        out,
        from,
        description,
    } = cmd;
    let stack = client::stack_file(&ctx.data_dir)?;
    let r = SupportClient::new(client::connect(&stack).await?)
        .prepare_support_request(client::authed(
            &ctx.data_dir,
            PrepareSupportRequestRequest {
                description: description.unwrap_or_default(),
                from: from.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    let out =
        out.unwrap_or_else(|| format!("demande-support-{}.eml", stack.installation_id).into());
    std::fs::write(&out, &r.eml).map_err(|e| {
        CliError::new(
            "write_failed",
            format!(
                "Le fichier {} n'a pas pu être écrit : {}.",
                out.display(),
                crate::output::io_error_fr(&e)
            ),
        )
    })?;
    if ctx.json {
        print_json(&json!({"file": out, "to": r.to, "subject": r.subject}));
    } else {
        say!("Message prêt : {}", out.display());
        say!(
            "Ouvrez-le dans votre messagerie et envoyez-le à {} (objet « {} »).",
            r.to,
            r.subject
        );
    }
    Ok(())
}
