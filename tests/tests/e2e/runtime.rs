//! Properties of the service runtime every component shares: mutual TLS between the
//! orchestrator and the agents, graceful shutdown, health and reflection (v1 and v1alpha,
//! as stock tools speak them).

use std::time::Duration;

use iea_proto::agent::v1::auth_agent_client::AuthAgentClient;
use iea_proto::common::v1::{
    ConnectionMode, ConnectionType, NetworkSettings, ProbeRequest, ProbeStep,
};
use iea_runtime::grpc::STANDARD_SERVICES;
use iea_runtime::pki;
use iea_runtime::shutdown::Shutdown;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

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

/// `list` and `describe` as a stock reflection client does them, for one version of the
/// protocol (v1 and v1alpha have the same messages in two packages).
macro_rules! reflection_client {
    ($module:ident) => {
        mod $module {
            use tokio_stream::StreamExt;
            use tonic::transport::Channel;
            use tonic_reflection::pb::$module::ServerReflectionRequest;
            use tonic_reflection::pb::$module::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$module::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$module::server_reflection_response::MessageResponse;

            async fn ask(
                channel: Channel,
                request: MessageRequest,
            ) -> Result<MessageResponse, tonic::Status> {
                let req = ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(request),
                };
                let mut answers = ServerReflectionClient::new(channel)
                    .server_reflection_info(tokio_stream::iter([req]))
                    .await?
                    .into_inner();
                let answer = answers.next().await.expect("one answer")?;
                Ok(answer.message_response.expect("a message"))
            }

            /// The service names the server lists, sorted.
            pub async fn list(channel: Channel) -> Vec<String> {
                let answer = ask(channel, MessageRequest::ListServices(String::new())).await;
                match answer.expect("a list") {
                    MessageResponse::ListServicesResponse(l) => {
                        let mut names: Vec<String> =
                            l.service.into_iter().map(|s| s.name).collect();
                        names.sort();
                        names
                    }
                    other => panic!("unexpected reflection answer {other:?}"),
                }
            }

            /// Whether the server can describe `symbol` (the file defining it).
            pub async fn describes(channel: Channel, symbol: &str) -> bool {
                let request = MessageRequest::FileContainingSymbol(symbol.to_owned());
                matches!(
                    ask(channel, request).await,
                    Ok(MessageResponse::FileDescriptorResponse(f))
                        if !f.file_descriptor_proto.is_empty()
                )
            }
        }
    };
}

reflection_client!(v1);
reflection_client!(v1alpha);

/// What `names` holds besides health and reflection, checking those three are there.
fn own_services(names: &[String]) -> Vec<&str> {
    for standard in STANDARD_SERVICES {
        assert!(
            names.iter().any(|n| n == standard),
            "{standard} missing from {names:?}"
        );
    }
    names
        .iter()
        .map(String::as_str)
        .filter(|n| !STANDARD_SERVICES.contains(n))
        .collect()
}

#[tokio::test]
async fn a_reflection_client_lists_only_what_each_component_serves_over_v1_and_v1alpha() {
    let stack = TestStack::start().await;
    let orchestrator = stack.channel().await;
    let listed = [
        v1::list(orchestrator.clone()).await,
        v1alpha::list(orchestrator.clone()).await,
    ];
    assert_eq!(
        listed[0], listed[1],
        "v1 and v1alpha list the same services"
    );
    let own = own_services(&listed[0]);
    for s in [
        "iea.v1.Status",
        "iea.v1.Sessions",
        "iea.v1.Users",
        "iea.v1.Credentials",
        "iea.v1.Connection",
        "iea.v1.Updates",
        "iea.v1.Support",
    ] {
        assert!(own.contains(&s), "{s} missing from {own:?}");
    }
    // Only the front-end API: no agent's service (they answer UNIMPLEMENTED here).
    assert!(
        own.iter().all(|s| s.starts_with("iea.v1.")),
        "the orchestrator lists a service it does not serve: {own:?}"
    );
    // Each listed service can be described, over either version.
    for name in &listed[0] {
        assert!(
            v1::describes(orchestrator.clone(), name).await,
            "v1: {name}"
        );
        assert!(
            v1alpha::describes(orchestrator.clone(), name).await,
            "v1alpha: {name}"
        );
    }

    // Each agent: its own iea.agent.v1 service only.
    let certs = stack.dir.path().join("certs");
    let expected = [
        ("auth-client", "iea.agent.v1.AuthAgent"),
        ("update-client", "iea.agent.v1.UpdateAgent"),
        ("credential-verifier", "iea.agent.v1.CredentialAgent"),
    ];
    for (agent, _) in expected {
        assert!(
            stack.file().agents.contains_key(agent),
            "{agent} not started"
        );
    }
    for (agent, addr) in &stack.file().agents {
        let tls =
            iea_runtime::tls::client_config(&pki::component_files(&certs, "orchestrator"), agent)
                .unwrap();
        let channel = try_connect(addr, tls).await.unwrap();
        let listed = [
            v1::list(channel.clone()).await,
            v1alpha::list(channel.clone()).await,
        ];
        assert_eq!(listed[0], listed[1], "{agent}");
        let own = own_services(&listed[0]);
        match expected.iter().find(|(a, _)| a == agent) {
            Some((_, service)) => assert_eq!(own, [*service], "{agent}"),
            None => assert!(
                own.len() == 1 && own[0].starts_with("iea.agent.v1."),
                "{agent}: {own:?}"
            ),
        }
        assert!(v1alpha::describes(channel, own[0]).await, "{agent}");
    }
    stack.stop().await;
}
