//! `iea.v1.Connection`: settings, server-access test, repair assistant.

use std::sync::Arc;

use iea_proto::common::v1 as pb;
use iea_proto::error::{ApiError, ErrorCode};
use iea_proto::v1::connection_server::Connection;
use iea_proto::v1::*;
use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::{internal, principal, timestamp};
use crate::Core;
use crate::access::{self, AccessTest, Probe, Proposal};
use crate::connection::{self, Candidate, ConnectionType, FieldError, Mode};
use crate::sessions::Principal;
use crate::users::Role;

pub struct ConnectionApi(pub Arc<Core>);

fn require_admin(p: &Principal) -> Result<(), ApiError> {
    if p.role == Role::Administrator {
        Ok(())
    } else {
        Err(ApiError::permission_denied(
            "Seul un administrateur peut modifier les paramètres de connexion.",
        ))
    }
}

fn to_proto(c: &Candidate) -> ConnectionSettings {
    let s = &c.settings;
    let (connection_type, proxy) = match &s.connection_type {
        ConnectionType::Direct => (pb::ConnectionType::Direct, None),
        ConnectionType::System => (pb::ConnectionType::System, None),
        ConnectionType::Proxy {
            host,
            port,
            username,
        } => (
            pb::ConnectionType::Proxy,
            Some(ProxyView {
                host: host.clone(),
                port: u32::from(*port),
                username: username.clone().unwrap_or_default(),
                password: String::new(),
                password_set: c.proxy_password.is_some(),
            }),
        ),
    };
    ConnectionSettings {
        connection_type: connection_type.into(),
        mode: pb::ConnectionMode::from(s.mode).into(),
        proxy,
        auth_server: s.auth_server.clone(),
        update_server: s.update_server.clone(),
        net_entreprises: s.net_entreprises.clone(),
    }
}

/// The settings a front-end sent, checked field by field. An empty proxy password keeps
/// the stored one (the settings window never shows it back).
fn from_proto(p: ConnectionSettings, current: &Candidate) -> Result<Candidate, Vec<FieldError>> {
    let mut errors = Vec::new();
    let err = |field: &str, message: &str| FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let mode = match pb::ConnectionMode::try_from(p.mode) {
        Ok(pb::ConnectionMode::Normal) => Mode::Normal,
        Ok(pb::ConnectionMode::Extended) => Mode::Extended,
        Ok(pb::ConnectionMode::Secure) => Mode::Secure,
        _ => {
            errors.push(err(
                "mode",
                "Mode de connexion : choisissez Normal, Étendu ou Sécurisé.",
            ));
            Mode::Secure
        }
    };
    let mut proxy_password = None;
    let connection_type = match pb::ConnectionType::try_from(p.connection_type) {
        Ok(pb::ConnectionType::Direct) => ConnectionType::Direct,
        Ok(pb::ConnectionType::System) => ConnectionType::System,
        Ok(pb::ConnectionType::Proxy) => {
            let v = p.proxy.unwrap_or_default();
            let port = match u16::try_from(v.port) {
                Ok(port) if port != 0 => port,
                _ => {
                    errors.push(err(
                        "proxy.port",
                        "Serveur proxy : le port doit être compris entre 1 et 65535.",
                    ));
                    0
                }
            };
            let username = Some(v.username).filter(|u| !u.is_empty());
            if username.is_some() {
                proxy_password = if v.password.is_empty() {
                    current.proxy_password.clone()
                } else {
                    Some(SecretString::from(v.password))
                };
            }
            ConnectionType::Proxy {
                host: v.host,
                port,
                username,
            }
        }
        _ => {
            errors.push(err(
                "connection_type",
                "Type de connexion : choisissez par un serveur proxy, directe ou paramètres du système.",
            ));
            ConnectionType::Direct
        }
    };
    let settings = connection::ConnectionSettings {
        connection_type,
        mode,
        auth_server: p.auth_server,
        update_server: p.update_server,
        net_entreprises: p.net_entreprises,
    };
    let more: Vec<FieldError> = connection::validate(&settings)
        .into_iter()
        .filter(|e| !errors.iter().any(|x| x.field == e.field))
        .collect();
    errors.extend(more);
    if errors.is_empty() {
        Ok(Candidate {
            settings,
            proxy_password,
        })
    } else {
        Err(errors)
    }
}

fn invalid(errors: Vec<FieldError>) -> ApiError {
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    tracing::info!(?fields, "connection settings refused");
    ApiError::of(
        ErrorCode::InvalidSettings,
        format!(
            "Les paramètres n'ont pas été enregistrés. {}",
            errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )
}

fn test_response(t: &AccessTest) -> TestServerAccessResponse {
    TestServerAccessResponse {
        all_reachable: t.all_reachable(),
        message: t.message(),
        tests: t
            .results
            .iter()
            .map(|(target, r)| AddressTest {
                target: target.name().to_owned(),
                result: Some(probe_result(r)),
            })
            .collect(),
        tested_at: Some(timestamp(t.tested_at)),
    }
}

/// What the test found at one address, as front-ends read it.
fn probe_result(p: &Probe) -> pb::ProbeResult {
    match p {
        Probe::Tried(d) => pb::ProbeResult::from(d.clone()),
        Probe::NotTested {
            address,
            message,
            detail,
        } => pb::ProbeResult {
            address: address.clone(),
            reachable: false,
            message: message.clone(),
            detail: detail.clone(),
            ..Default::default()
        },
    }
}

fn proposal(p: &Proposal) -> RepairProposal {
    RepairProposal {
        id: p.id.to_owned(),
        description: p.description.clone(),
        proposed: Some(to_proto(&p.candidate)),
        test: Some(test_response(&p.test)),
    }
}

impl ConnectionApi {
    async fn record_test(&self, t: &AccessTest) {
        if let Err(e) = access::record_test(&self.0.store, t).await {
            tracing::warn!(error = format!("{e:#}"), "last access test not recorded");
        }
    }

    /// Saves `c` atomically, puts it in force, and asks for a new authentication.
    async fn save(&self, c: Candidate) -> Result<(), ApiError> {
        connection::save(&self.0.store, &self.0.vault, &c)
            .await
            .map_err(internal)?;
        self.0.network.replace(c);
        tracing::info!("connection settings saved");
        self.0.authenticator.wake();
        Ok(())
    }
}

#[tonic::async_trait]
impl Connection for ConnectionApi {
    async fn get_connection_settings(
        &self,
        request: Request<GetConnectionSettingsRequest>,
    ) -> Result<Response<ConnectionSettings>, Status> {
        principal(&self.0, &request).await?;
        Ok(Response::new(to_proto(&self.0.network.current())))
    }

    #[tracing::instrument(skip_all)]
    async fn update_connection_settings(
        &self,
        request: Request<ConnectionSettings>,
    ) -> Result<Response<ConnectionSettings>, Status> {
        let caller = principal(&self.0, &request).await?;
        require_admin(&caller)?;
        let candidate =
            from_proto(request.into_inner(), &self.0.network.current()).map_err(invalid)?;
        self.save(candidate.clone()).await?;
        Ok(Response::new(to_proto(&candidate)))
    }

    #[tracing::instrument(skip_all)]
    async fn test_server_access(
        &self,
        request: Request<TestServerAccessRequest>,
    ) -> Result<Response<TestServerAccessResponse>, Status> {
        principal(&self.0, &request).await?;
        let current = self.0.network.current();
        let candidate = match request.into_inner().settings {
            Some(s) => from_proto(s, &current).map_err(invalid)?,
            None => current,
        };
        let t = access::test(&self.0.agents, &self.0.network, &candidate).await;
        self.record_test(&t).await;
        Ok(Response::new(test_response(&t)))
    }

    #[tracing::instrument(skip_all)]
    async fn propose_repairs(
        &self,
        request: Request<ProposeRepairsRequest>,
    ) -> Result<Response<ProposeRepairsResponse>, Status> {
        principal(&self.0, &request).await?;
        let (now, proposals) =
            access::propose(&self.0.agents, &self.0.network, &self.0.network.current()).await;
        self.record_test(&now).await;
        Ok(Response::new(ProposeRepairsResponse {
            current: Some(test_response(&now)),
            proposals: proposals.iter().map(proposal).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn apply_repair(
        &self,
        request: Request<ApplyRepairRequest>,
    ) -> Result<Response<ApplyRepairResponse>, Status> {
        let caller = principal(&self.0, &request).await?;
        require_admin(&caller)?;
        let id = request.into_inner().id;
        let before = self.0.network.current();
        // Proposed and tested again now: the network may have changed since it was shown.
        let (_, proposals) = access::propose(&self.0.agents, &self.0.network, &before).await;
        let Some(p) = proposals.into_iter().find(|p| p.id == id) else {
            return Err(ApiError::of(
            ErrorCode::RepairNotApplicable,
                "Cette réparation ne s'applique pas (ou plus) : relancez l'assistant de réparation.",
            )
            .into());
        };
        let changes = describe_changes(&before.settings, &p.candidate.settings);
        self.save(p.candidate.clone()).await?;
        let entry = access::RepairEntry {
            at: crate::sessions::now(),
            repair: p.id.to_owned(),
            changes: changes.clone(),
        };
        access::record_repair(&self.0.store, entry)
            .await
            .map_err(internal)?;
        // Re-authenticate now with the repaired settings.
        self.0
            .authenticator
            .authenticate_now()
            .await
            .map_err(internal)?;
        Ok(Response::new(ApplyRepairResponse {
            saved: Some(to_proto(&p.candidate)),
            changes: changes.join(" "),
        }))
    }
}

fn describe_changes(
    a: &connection::ConnectionSettings,
    b: &connection::ConnectionSettings,
) -> Vec<String> {
    let mut out = Vec::new();
    if a.mode != b.mode {
        out.push(format!("Mode de connexion : {:?} → {:?}.", a.mode, b.mode));
    }
    for t in connection::Target::ALL {
        if a.address(t) != b.address(t) {
            out.push(format!(
                "{} : {} → {}.",
                t.label(),
                a.address(t),
                b.address(t)
            ));
        }
    }
    out
}
