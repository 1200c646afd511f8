//! Properties of the service runtime every component shares: mutual TLS between the
//! orchestrator and the agents, graceful shutdown, health and reflection.

use std::time::Duration;

use iea_proto::agent::v1::auth_agent_client::AuthAgentClient;
use iea_proto::common::v1::{
    ConnectionMode, ConnectionType, NetworkSettings, ProbeRequest, ProbeStep,
};
use iea_runtime::pki;
use iea_runtime::shutdown::Shutdown;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::helpers::{TestStack, init_logs};

async fn try_connect(addr: &str, tls: ClientTlsConfig) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
}

fn probe_request(address: &str, ca_pem: &str) -> ProbeRequest {
    ProbeRequest {
        network: Some(NetworkSettings {
            connection_type: ConnectionType::Direct.into(),
            mode: ConnectionMode::Normal.into(),
            proxy: None,
            address: address.to_owned(),
            extra_ca_pem: ca_pem.to_owned(),
            request_timeout_ms: 0,
        }),
    }
}

/// A call through `tls` to the stack's auth agent; Err when refused at any layer.
async fn call_agent(stack: &TestStack, tls: ClientTlsConfig) -> Result<(), String> {
    let addr = &stack.file().agents["auth-client"];
    let channel = try_connect(addr, tls).await.map_err(|e| e.to_string())?;
    let mocks_ca = std::fs::read_to_string(&stack.file().mocks_ca).unwrap();
    AuthAgentClient::new(channel)
        .probe(probe_request(
            &stack.file().mocks["impact-emploi-auth"].https,
            &mocks_ca,
        ))
        .await
        .map(|_| ())
        .map_err(|s| s.to_string())
}

#[tokio::test]
async fn an_agent_accepts_the_orchestrator_certificate_and_refuses_any_other_client() {
    let stack = TestStack::start().await;
    let certs = stack.dir.path().join("certs");
    let good = iea_runtime::tls::client_config(
        &pki::component_files(&certs, "orchestrator"),
        "auth-client",
    )
    .unwrap();
    call_agent(&stack, good)
        .await
        .expect("the orchestrator's certificate is accepted");

    // No client certificate at all.
    let anonymous =
        iea_runtime::tls::front_end_config(&certs.join("ca.pem"), "auth-client").unwrap();
    assert!(
        call_agent(&stack, anonymous).await.is_err(),
        "a client without certificate must be refused"
    );

    // A certificate from another CA, while trusting the right server CA.
    let other = tempfile::tempdir().unwrap();
    pki::init(other.path(), &[]).unwrap();
    let mut foreign = pki::component_files(other.path(), "orchestrator");
    foreign.ca = certs.join("ca.pem");
    let foreign = iea_runtime::tls::client_config(&foreign, "auth-client").unwrap();
    assert!(
        call_agent(&stack, foreign).await.is_err(),
        "a certificate from another CA must be refused"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_client_refuses_a_server_whose_certificate_comes_from_another_ca() {
    let stack = TestStack::start().await;
    let other = tempfile::tempdir().unwrap();
    pki::init(other.path(), &[]).unwrap();
    // Our identity is fine for the agent, but we trust only the other CA.
    let mut files = pki::component_files(&stack.dir.path().join("certs"), "orchestrator");
    files.ca = other.path().join("ca.pem");
    let tls = iea_runtime::tls::client_config(&files, "auth-client").unwrap();
    let err = call_agent(&stack, tls).await.unwrap_err();
    assert!(!err.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn an_in_flight_call_completes_when_shutdown_starts() {
    init_logs();
    iea_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().to_owned();
    pki::init(&certs, &[]).unwrap();
    // A separate auth agent that this test stops.
    let agent = iea_auth_client::App::build(iea_runtime::agent::AgentSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: pki::component_files(&certs, "auth-client"),
    })
    .await
    .unwrap();
    let addr = agent.local_addr().to_string();
    let stop = Shutdown::new();
    let running = tokio::spawn(agent.run_until(stop.clone()));

    // A server that tells us when the request has arrived, then answers a second later.
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    let slow = slow_http_server(arrived_tx).await;

    let tls = iea_runtime::tls::client_config(
        &pki::component_files(&certs, "orchestrator"),
        "auth-client",
    )
    .unwrap();
    let channel = try_connect(&addr, tls.clone()).await.unwrap();
    let call = tokio::spawn({
        let req = probe_request(&format!("http://{slow}/"), "");
        async move { AuthAgentClient::new(channel).probe(req).await }
    });
    arrived.await.expect("the probe reaches the server");
    stop.trigger();

    let result = call
        .await
        .unwrap()
        .expect("the in-flight call completes")
        .into_inner();
    assert_eq!(result.step, ProbeStep::Ok as i32, "{result:?}");
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the agent stops once drained")
        .unwrap()
        .unwrap();
    assert!(
        try_connect(&addr, tls).await.is_err(),
        "a stopped agent accepts nothing"
    );
}

/// Accepts one connection, reports it, waits a second, answers 200.
async fn slow_http_server(arrived: tokio::sync::oneshot::Sender<()>) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = arrived.send(());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
    });
    addr
}

async fn list_services(channel: Channel) -> Vec<String> {
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn a_reflection_client_lists_the_services_of_the_orchestrator_and_of_an_agent() {
    let stack = TestStack::start().await;
    let services = list_services(stack.channel().await).await;
    for s in [
        "iea.v1.Status",
        "iea.v1.Sessions",
        "iea.v1.Users",
        "iea.v1.Credentials",
        "iea.v1.Connection",
        "iea.v1.Updates",
        "iea.v1.Support",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|x| x == s),
            "{s} missing from {services:?}"
        );
    }
    let certs = stack.dir.path().join("certs");
    let tls = iea_runtime::tls::client_config(
        &pki::component_files(&certs, "orchestrator"),
        "credential-verifier",
    )
    .unwrap();
    let agent = try_connect(&stack.file().agents["credential-verifier"], tls)
        .await
        .unwrap();
    let services = list_services(agent).await;
    assert!(
        services.iter().any(|x| x == "iea.agent.v1.CredentialAgent"),
        "{services:?}"
    );
    stack.stop().await;
}
