//! `iea users …`.

use iea_proto::v1::users_client::UsersClient;
use iea_proto::v1::*;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{Ctx, secrets};
use crate::args::{InstallationModeChoice, UsersCommand};
use crate::client;
use crate::output::{CliResult, print_json};

fn role_label(r: i32) -> (&'static str, &'static str) {
    match Role::try_from(r) {
        Ok(Role::Administrator) => ("administrator", "administrateur"),
        _ => ("user", "utilisateur"),
    }
}

fn mode_label(m: i32) -> (&'static str, &'static str) {
    match InstallationMode::try_from(m) {
        Ok(InstallationMode::Reseau) => ("reseau", "réseau"),
        _ => ("monoposte", "monoposte"),
    }
}

pub async fn run(ctx: &Ctx, cmd: UsersCommand) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let mut users = UsersClient::new(client::connect(&stack).await?);
    match cmd {
        UsersCommand::List => {
            let list = users
                .list_users(client::authed(&ctx.data_dir, ListUsersRequest {}))
                .await?
                .into_inner()
                .users;
            if ctx.json {
                print_json(
                    &json!({"users": list.iter().map(|u| json!({"name": u.name, "role": role_label(u.role).0})).collect::<Vec<_>>()}),
                );
            } else {
                for u in list {
                    say!("{} ({})", u.name, role_label(u.role).1);
                }
            }
        }
        UsersCommand::Add {
            name,
            admin,
            password_stdin,
        } => {
            let pw = secrets::read(&["Mot de passe du nouveau compte"], password_stdin)?;
            let role = if admin {
                Role::Administrator
            } else {
                Role::User
            };
            let u = users
                .add_user(client::authed(
                    &ctx.data_dir,
                    AddUserRequest {
                        name,
                        role: role.into(),
                        password: pw[0].expose_secret().to_owned(),
                    },
                ))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&json!({"name": u.name, "role": role_label(u.role).0}));
            } else {
                say!("Compte « {} » créé ({}).", u.name, role_label(u.role).1);
            }
        }
        UsersCommand::Remove { name } => {
            users
                .remove_user(client::authed(
                    &ctx.data_dir,
                    RemoveUserRequest { name: name.clone() },
                ))
                .await?;
            if ctx.json {
                print_json(&json!({"removed": name}));
            } else {
                say!("Compte « {name} » supprimé.");
            }
        }
        UsersCommand::Passwd {
            name,
            password_stdin,
        } => {
            let own =
                client::session_user(&ctx.data_dir).is_some_and(|u| u.eq_ignore_ascii_case(&name));
            let (current, new) = if own {
                let pw = secrets::read(
                    &["Mot de passe actuel", "Nouveau mot de passe"],
                    password_stdin,
                )?;
                (
                    pw[0].expose_secret().to_owned(),
                    pw[1].expose_secret().to_owned(),
                )
            } else {
                let pw = secrets::read(&["Nouveau mot de passe"], password_stdin)?;
                (String::new(), pw[0].expose_secret().to_owned())
            };
            users
                .change_password(client::authed(
                    &ctx.data_dir,
                    ChangePasswordRequest {
                        name: name.clone(),
                        current_password: current,
                        new_password: new,
                    },
                ))
                .await?;
            if ctx.json {
                print_json(&json!({"changed": name}));
            } else {
                say!("Mot de passe du compte « {name} » changé.");
            }
        }
        UsersCommand::Mode { mode } => {
            let m = match mode {
                None => {
                    users
                        .get_installation_mode(client::authed(
                            &ctx.data_dir,
                            GetInstallationModeRequest {},
                        ))
                        .await?
                }
                Some(m) => {
                    let mode = match m {
                        InstallationModeChoice::Reseau => InstallationMode::Reseau,
                        InstallationModeChoice::Monoposte => InstallationMode::Monoposte,
                    };
                    users
                        .set_installation_mode(client::authed(
                            &ctx.data_dir,
                            InstallationModeMessage { mode: mode.into() },
                        ))
                        .await?
                }
            }
            .into_inner();
            if ctx.json {
                print_json(&json!({"mode": mode_label(m.mode).0}));
            } else {
                say!("Mode d'installation : {}", mode_label(m.mode).1);
            }
        }
    }
    Ok(())
}
