//! A gRPC server every component builds the same way: bind first (port 0 works, and the
//! port is known before serving), then run until a [`Shutdown`] fires. Each server also
//! offers the standard health service (every named service and the empty name set to
//! SERVING while it runs) and server reflection, both `grpc.reflection.v1` and
//! `grpc.reflection.v1alpha` (grpcui, Evans, Postman and older grpcurl speak only the
//! latter).
//!
//! Reflection lists exactly what the server serves: the services named at
//! [`GrpcServer::bind`], health and the two reflection services. So the orchestrator
//! lists its `iea.v1` services and no agent's, and each agent its own `iea.agent.v1`
//! service only. Every iea descriptor stays registered, so that the types of a listed
//! service (and the files it imports) can be described.
//!
//! Shutdown is graceful: the listener closes, health turns NOT_SERVING, in-flight calls
//! complete, then `run_until` returns.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::shutdown::Shutdown;

pub struct GrpcServer {
    component: &'static str,
    listener: TcpListener,
    local_addr: SocketAddr,
    routes: Routes,
    /// The services `routes` serves: reported SERVING by health, listed by reflection.
    services: Vec<&'static str>,
    tls: Option<ServerTlsConfig>,
}

impl GrpcServer {
    /// Binds `addr` now. `component` names the server in logs; `services` are the full
    /// names of the services in `routes` (`<S as NamedService>::NAME`), which health
    /// reports and reflection lists (health and reflection are added here).
    pub async fn bind(
        component: &'static str,
        addr: SocketAddr,
        tls: Option<ServerTlsConfig>,
        routes: Routes,
        services: &[&'static str],
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("{component}: binding {addr}"))?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            component,
            listener,
            local_addr,
            routes,
            services: services.to_vec(),
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` fires, then drains in-flight calls.
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        for name in &self.services {
            reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        let routes = self
            .routes
            .add_service(health)
            .add_service(reflection(&self.services).build_v1()?)
            .add_service(reflection(&self.services).build_v1alpha()?);

        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls)?;
        }
        let component = self.component;
        let services = self.services;
        let signal = async move {
            shutdown.wait().await;
            tracing::info!(component, "shutting down: draining in-flight calls");
            for name in services {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
        };
        tracing::info!(component, addr = %self.local_addr, "ready");
        builder
            .layer(tower::util::MapResponseLayer::new(with_version))
            .add_routes(routes)
            // Small messages both ways: without TCP_NODELAY, Nagle's algorithm holds a
            // response back until the previous one is acknowledged.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                signal,
            )
            .await
            .with_context(|| format!("{component}: serving"))?;
        tracing::info!(component, "stopped");
        Ok(())
    }
}

/// The version of iea-connect this component was built as: every answer of every gRPC
/// server carries it in the [`VERSION_HEADER`] header, so that the orchestrator can tell
/// an agent of another version (a partial update) and the command line an orchestrator of
/// another version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The response header that carries [`VERSION`].
pub const VERSION_HEADER: &str = "iea-version";

/// The version a gRPC answer says its server was built as, if it says one.
pub fn answer_version(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    metadata
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Adds [`VERSION_HEADER`] to an answer.
fn with_version<B>(
    mut answer: tonic::codegen::http::Response<B>,
) -> tonic::codegen::http::Response<B> {
    answer.headers_mut().insert(
        VERSION_HEADER,
        tonic::codegen::http::HeaderValue::from_static(VERSION),
    );
    answer
}

/// What every server serves besides its own services.
pub const STANDARD_SERVICES: [&str; 3] = [
    tonic_health::pb::health_server::SERVICE_NAME,
    tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
    tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
];

/// A reflection service (either version) listing `services` and [`STANDARD_SERVICES`],
/// and able to describe every iea, health and reflection type.
fn reflection(services: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(iea_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // Both versions' descriptors in both services: each lists the other too.
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    services
        .iter()
        .chain(&STANDARD_SERVICES)
        .fold(builder, |b, name| b.with_service_name(*name))
}

/// Deadlines for calls between components.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A lazily connected channel to `addr` (`host:port`) over TLS: the first call connects,
/// and a peer that restarts is reconnected on the next call. `timeout` bounds each call.
pub fn channel(addr: &str, tls: ClientTlsConfig, timeout: Duration) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .with_context(|| format!("invalid address {addr}"))?
        .tls_config(tls)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}
