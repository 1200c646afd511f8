//! Server reflection as stock tools use it: every `GrpcServer` answers both
//! `grpc.reflection.v1` and `grpc.reflection.v1alpha`, lists the services it was given plus
//! health and reflection, and can describe each of them; and every answer carries the
//! server's version.

use std::time::Duration;

use iea_runtime::grpc::{GrpcServer, STANDARD_SERVICES};
use iea_runtime::shutdown::Shutdown;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint};

/// `list` and `describe` for one version of the reflection protocol (v1 and v1alpha have
/// the same messages in two packages).
macro_rules! reflection_client {
    ($module:ident) => {
        mod $module {
            use tokio_stream::StreamExt;
            use tonic::transport::Channel;
            use tonic_reflection::pb::$module::ServerReflectionRequest;
            use tonic_reflection::pb::$module::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$module::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$module::server_reflection_response::MessageResponse;

            /// The server's answer; tonic-reflection answers an unknown symbol with an
            /// error status on the stream.
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
                    other => panic!("unexpected answer {other:?}"),
                }
            }

            /// How many file descriptors the server sends for `symbol`; Err with the
            /// server's message when it cannot describe it.
            pub async fn describe(channel: Channel, symbol: &str) -> Result<usize, String> {
                let request = MessageRequest::FileContainingSymbol(symbol.to_owned());
                match ask(channel, request).await {
                    Ok(MessageResponse::FileDescriptorResponse(f)) => {
                        Ok(f.file_descriptor_proto.len())
                    }
                    Ok(MessageResponse::ErrorResponse(e)) => Err(e.error_message),
                    Ok(other) => panic!("unexpected answer {other:?}"),
                    Err(status) => Err(status.message().to_owned()),
                }
            }
        }
    };
}

reflection_client!(v1);
reflection_client!(v1alpha);

async fn start(services: &[&'static str]) -> (Channel, Shutdown) {
    let server = GrpcServer::bind(
        "reflection-test",
        "127.0.0.1:0".parse().unwrap(),
        None,
        Routes::default(),
        services,
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let stop = Shutdown::new();
    tokio::spawn(server.run_until(stop.clone()));
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    (channel, stop)
}

#[tokio::test]
async fn both_reflection_versions_list_health_and_reflection_and_describe_them() {
    let (channel, stop) = start(&[]).await;
    let mut expected: Vec<String> = STANDARD_SERVICES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        expected,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
    );
    assert_eq!(v1::list(channel.clone()).await, expected);
    assert_eq!(v1alpha::list(channel.clone()).await, expected);
    for name in &expected {
        let files = v1::describe(channel.clone(), name).await;
        assert!(files.is_ok_and(|n| n > 0), "v1 cannot describe {name}");
        let files = v1alpha::describe(channel.clone(), name).await;
        assert!(files.is_ok_and(|n| n > 0), "v1alpha cannot describe {name}");
    }
    stop.trigger();
}

#[tokio::test]
async fn the_services_named_at_bind_are_listed_and_no_other_iea_service() {
    // The names a component gives (here the auth agent's): listed, and described from the
    // iea descriptors; the other iea services are not listed.
    let (channel, stop) = start(&["iea.agent.v1.AuthAgent"]).await;
    for names in [
        v1::list(channel.clone()).await,
        v1alpha::list(channel.clone()).await,
    ] {
        let own: Vec<&String> = names.iter().filter(|n| n.starts_with("iea.")).collect();
        assert_eq!(own, ["iea.agent.v1.AuthAgent"], "{names:?}");
        assert_eq!(names.len(), 1 + STANDARD_SERVICES.len(), "{names:?}");
    }
    assert!(
        v1alpha::describe(channel.clone(), "iea.agent.v1.AuthAgent")
            .await
            .is_ok_and(|n| n > 0)
    );
    // An unknown symbol is an error answer, not a broken stream.
    let unknown = v1::describe(channel.clone(), "iea.v1.NoSuchService").await;
    assert!(unknown.is_err(), "{unknown:?}");
    stop.trigger();
}

/// Every answer says which version of iea-connect the server was built as (what the
/// orchestrator compares with its own for each agent).
#[tokio::test]
async fn every_answer_carries_the_servers_version() {
    let (channel, stop) = start(&[]).await;
    let answer = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(
        iea_runtime::grpc::answer_version(answer.metadata()).as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    stop.trigger();
}
