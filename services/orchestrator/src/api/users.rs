//! `iea.v1.Users`.

use std::sync::Arc;

use iea_proto::error::{ApiError, ErrorCode};
use iea_proto::v1::users_server::Users;
use iea_proto::v1::*;
use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::sessions::role;
use super::{internal, principal};
use crate::Core;
use crate::users::{InstallationMode as Mode, UserSummary, UsersError};

pub struct UsersApi(pub Arc<Core>);

fn users_error(e: UsersError) -> ApiError {
    match e {
        UsersError::PermissionDenied => ApiError::permission_denied(
            "Seul un administrateur peut gérer les comptes des autres utilisateurs.",
        ),
        UsersError::NotFound(n) => ApiError::not_found(format!("Le compte « {n} » n'existe pas.")),
        UsersError::AlreadyExists(n) => ApiError::of(
            ErrorCode::AlreadyExists,
            format!("Le compte « {n} » existe déjà."),
        ),
        UsersError::InvalidName(_) => ApiError::invalid_input(
            "Le nom du compte doit compter de 1 à 64 caractères, sans espace au début ni à la fin ni caractère de contrôle.",
        ),
        UsersError::WeakPassword => {
            ApiError::invalid_input("Le mot de passe doit compter de 8 à 128 caractères.")
        }
        UsersError::WrongCurrentPassword => ApiError::of(
            ErrorCode::WrongCurrentPassword,
            "Le mot de passe actuel est incorrect : le mot de passe n'a pas été changé.",
        ),
        UsersError::LastAdministrator => ApiError::of(
            ErrorCode::LastAdministrator,
            "C'est le dernier compte administrateur : il ne peut pas être supprimé.",
        ),
        UsersError::RemoveSelf => ApiError::of(
            ErrorCode::RemoveSelf,
            "Vous ne pouvez pas supprimer le compte avec lequel vous êtes connecté.",
        ),
        UsersError::InUse(name, what) => {
            ApiError::of(ErrorCode::AccountInUse, account_in_use(&name, &what))
        }
        UsersError::Monoposte => ApiError::of(
            ErrorCode::Monoposte,
            "En mode monoposte, l'installation n'a qu'un compte : passez en mode réseau pour en créer d'autres (ou supprimez d'abord les comptes en trop).",
        ),
        UsersError::Internal(e) => internal(e),
    }
}

/// « Le compte « Martin » ne peut pas être supprimé : … », each use of its identity
/// named with what to do about it.
fn account_in_use(name: &str, what: &crate::store::InUse) -> String {
    let mut uses = Vec::new();
    if !what.sirets.is_empty() {
        let of = if what.sirets.len() > 1 {
            "des établissements"
        } else {
            "de l'établissement"
        };
        uses.push(format!(
            "il dépose les DSN {of} {} (désignez d'abord un autre compte : \
             iea dsn accounts set --siret {} --user NOM)",
            what.sirets.join(", "),
            what.sirets[0]
        ));
    }
    if what.deposits > 0 {
        uses.push(format!(
            "{} avec ses identifiants (attendez qu'{} réglé{})",
            iea_fr_time::count(what.deposits as u64, "dépôt en cours", "dépôts en cours"),
            if what.deposits > 1 {
                "ils soient"
            } else {
                "il soit"
            },
            if what.deposits > 1 { "s" } else { "" },
        ));
    }
    if what.follows > 0 {
        uses.push(format!(
            "{} dont les retours (accusé, conformité, CRM PAS) sont encore attendus avec ses \
             identifiants : supprimé, ils ne pourraient plus être consultés",
            iea_fr_time::count(what.follows as u64, "dépôt", "dépôts"),
        ));
    }
    format!(
        "Le compte « {name} » ne peut pas être supprimé : {}. Pour lui retirer l'accès dès \
         maintenant, changez son mot de passe.",
        uses.join(" ; ")
    )
}

fn info(u: UserSummary) -> UserInfo {
    UserInfo {
        name: u.name,
        role: role(u.role).into(),
    }
}

fn mode_message(m: Mode) -> InstallationModeMessage {
    InstallationModeMessage {
        mode: match m {
            Mode::Monoposte => InstallationMode::Monoposte,
            Mode::Reseau => InstallationMode::Reseau,
        }
        .into(),
    }
}

#[tonic::async_trait]
impl Users for UsersApi {
    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let users = self.0.users.list(&caller).await.map_err(users_error)?;
        Ok(Response::new(ListUsersResponse {
            users: users.into_iter().map(info).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(user = %request.get_ref().name))]
    async fn add_user(
        &self,
        request: Request<AddUserRequest>,
    ) -> Result<Response<UserInfo>, Status> {
        let caller = principal(&self.0, &request).await?;
        let req = request.into_inner();
        let r = match Role::try_from(req.role) {
            Ok(Role::Administrator) => crate::users::Role::Administrator,
            _ => crate::users::Role::User,
        };
        let u = self
            .0
            .users
            .add(&caller, &req.name, r, SecretString::from(req.password))
            .await
            .map_err(users_error)?;
        Ok(Response::new(info(u)))
    }

    #[tracing::instrument(skip_all, fields(user = %request.get_ref().name))]
    async fn remove_user(
        &self,
        request: Request<RemoveUserRequest>,
    ) -> Result<Response<RemoveUserResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        self.0
            .users
            .remove(&caller, &request.get_ref().name)
            .await
            .map_err(users_error)?;
        Ok(Response::new(RemoveUserResponse {}))
    }

    #[tracing::instrument(skip_all, fields(user = %request.get_ref().name))]
    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        let req = request.into_inner();
        let current = Some(req.current_password)
            .filter(|p| !p.is_empty())
            .map(SecretString::from);
        self.0
            .users
            .change_password(
                &caller,
                &req.name,
                current,
                SecretString::from(req.new_password),
            )
            .await
            .map_err(users_error)?;
        Ok(Response::new(ChangePasswordResponse {}))
    }

    async fn get_installation_mode(
        &self,
        request: Request<GetInstallationModeRequest>,
    ) -> Result<Response<InstallationModeMessage>, Status> {
        principal(&self.0, &request).await?;
        let m = self.0.users.mode().await.map_err(users_error)?;
        Ok(Response::new(mode_message(m)))
    }

    async fn set_installation_mode(
        &self,
        request: Request<InstallationModeMessage>,
    ) -> Result<Response<InstallationModeMessage>, Status> {
        let caller = principal(&self.0, &request).await?;
        let mode = match InstallationMode::try_from(request.get_ref().mode) {
            Ok(InstallationMode::Monoposte) => Mode::Monoposte,
            Ok(InstallationMode::Reseau) => Mode::Reseau,
            _ => {
                return Err(
                    ApiError::invalid_input("Indiquez le mode : monoposte ou réseau.").into(),
                );
            }
        };
        let m = self
            .0
            .users
            .set_mode(&caller, mode)
            .await
            .map_err(users_error)?;
        Ok(Response::new(mode_message(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::account_in_use;
    use crate::store::InUse;

    #[test]
    fn an_account_in_use_is_refused_naming_each_use_in_french() {
        let all = InUse {
            sirets: vec!["73282932000074".into(), "78214563500010".into()],
            deposits: 1,
            follows: 2,
        };
        assert_eq!(
            account_in_use("Martin", &all),
            "Le compte « Martin » ne peut pas être supprimé : il dépose les DSN des \
             établissements 73282932000074, 78214563500010 (désignez d'abord un autre compte : \
             iea dsn accounts set --siret 73282932000074 --user NOM) ; 1 dépôt en cours avec \
             ses identifiants (attendez qu'il soit réglé) ; 2 dépôts dont les retours (accusé, \
             conformité, CRM PAS) sont encore attendus avec ses identifiants : supprimé, ils ne \
             pourraient plus être consultés. Pour lui retirer l'accès dès maintenant, changez \
             son mot de passe."
        );
        let two_on_their_way = InUse {
            deposits: 2,
            ..Default::default()
        };
        assert_eq!(
            account_in_use("Martin", &two_on_their_way),
            "Le compte « Martin » ne peut pas être supprimé : 2 dépôts en cours avec ses \
             identifiants (attendez qu'ils soient réglés). Pour lui retirer l'accès dès \
             maintenant, changez son mot de passe."
        );
    }
}
