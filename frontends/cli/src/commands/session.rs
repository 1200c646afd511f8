//! `iea login`, `iea logout`, `iea whoami`.

use iea_proto::v1::sessions_client::SessionsClient;
use iea_proto::v1::{LoginRequest, LogoutRequest, Role, WhoAmIRequest};
use secrecy::ExposeSecret;
use serde_json::json;

use super::Ctx;
use crate::args::LoginArgs;
use crate::client::{self, SavedSession};
use crate::output::{CliResult, print_json, rfc3339, when};

fn role_name(r: i32) -> &'static str {
    match Role::try_from(r) {
        Ok(Role::Administrator) => "administrator",
        Ok(Role::User) => "user",
        _ => "unknown",
    }
}

pub async fn login(ctx: &Ctx, args: LoginArgs) -> CliResult {
    let password = super::secrets::read(&["Mot de passe"], args.password_stdin)?
        .remove(0)
        .expose_secret()
        .to_owned();
    let stack = client::stack_file(&ctx.data_dir)?;
    let channel = client::connect(&stack).await?;
    let resp = SessionsClient::new(channel)
        .login(LoginRequest {
            user: args.user,
            password,
        })
        .await?
        .into_inner();
    let user = resp.user.unwrap_or_default();
    let expires_at = resp.expires_at.as_ref().map(|t| t.seconds).unwrap_or(0);
    client::save_session(
        &ctx.data_dir,
        &SavedSession {
            user: user.name.clone(),
            token: resp.token,
            expires_at,
        },
    )?;
    if ctx.json {
        print_json(
            &json!({"user": user.name, "role": role_name(user.role), "expires_at": rfc3339(resp.expires_at.as_ref())}),
        );
    } else {
        match when(resp.expires_at.as_ref()) {
            Some(until) => say!(
                "Session ouverte pour « {} », valable jusqu'au {until}.",
                user.name
            ),
            None => say!("Session ouverte pour « {} ».", user.name),
        }
    }
    Ok(())
}

pub async fn logout(ctx: &Ctx) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let channel = client::connect(&stack).await?;
    let result = SessionsClient::new(channel)
        .logout(client::authed(&ctx.data_dir, LogoutRequest {}))
        .await;
    client::forget_session(&ctx.data_dir);
    match result {
        Ok(_) => {}
        // Already gone on the server: the local copy is removed all the same.
        Err(s) if s.code() == tonic::Code::Unauthenticated => {}
        Err(s) => return Err(s.into()),
    }
    if ctx.json {
        print_json(&json!({"logged_out": true}));
    } else {
        say!("Session fermée.");
    }
    Ok(())
}

pub async fn whoami(ctx: &Ctx) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let channel = client::connect(&stack).await?;
    let user = SessionsClient::new(channel)
        .who_am_i(client::authed(&ctx.data_dir, WhoAmIRequest {}))
        .await?
        .into_inner();
    if ctx.json {
        print_json(&json!({"user": user.name, "role": role_name(user.role)}));
    } else {
        let role = if role_name(user.role) == "administrator" {
            "administrateur"
        } else {
            "utilisateur"
        };
        say!("{} ({role})", user.name);
    }
    Ok(())
}
