//! `iea-healthcheck`: the health checks of the iea-connect containers (`HEALTHCHECK` /
//! compose `healthcheck.test`).
//!
//! - `iea-healthcheck grpc ADDR --ca CA --server-name NAME [--cert C --key K]`: the
//!   standard gRPC health check (`grpc.health.v1.Health/Check`) over TLS, trusting only
//!   `CA` and checking `NAME` in the server's certificate. With `--cert`/`--key` it
//!   presents a client certificate: agents require one from the internal CA, so an agent
//!   checks itself with its own certificate. The orchestrator's front-end port needs none.
//! - `iea-healthcheck http URL`: a plain HTTP/1.1 `GET` (the mocks' `/healthz` on their
//!   admin port), healthy on a 2xx status.
//!
//! Exits 0 when healthy, 1 otherwise with one line on stderr saying why (Docker keeps it
//! in `docker inspect`), 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, Parser)]
#[command(name = "iea-healthcheck", version, about)]
struct Args {
    /// Bound on the whole check, in milliseconds.
    #[arg(long, global = true, default_value_t = 3000)]
    timeout_ms: u64,
    #[command(subcommand)]
    check: Check,
}

#[derive(Debug, Subcommand)]
enum Check {
    /// gRPC health check over TLS.
    Grpc(GrpcCheck),
    /// Plain HTTP GET; healthy on a 2xx status.
    Http {
        /// `http://HOST:PORT/PATH`
        url: String,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct GrpcCheck {
    /// `HOST:PORT`
    addr: String,
    /// CA the server's certificate must chain to.
    #[arg(long)]
    ca: PathBuf,
    /// Name checked in the server's certificate.
    #[arg(long)]
    server_name: String,
    /// Client certificate (mutual TLS); needs `--key`.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Client key; needs `--cert`.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Service to ask about; empty: the server as a whole.
    #[arg(long, default_value = "")]
    service: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    iea_runtime::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("unhealthy: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let result = runtime.block_on(async {
        match tokio::time::timeout(timeout, run(&args.check)).await {
            Ok(r) => r,
            Err(_) => bail!("no answer within {} ms", args.timeout_ms),
        }
    });
    match result {
        Ok(what) => {
            println!("healthy: {what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(check: &Check) -> anyhow::Result<String> {
    match check {
        Check::Grpc(g) => grpc(g).await,
        Check::Http { url } => http(url).await,
    }
}

/// `Health/Check` over TLS; `Ok` only for SERVING.
async fn grpc(check: &GrpcCheck) -> anyhow::Result<String> {
    let tls = match (&check.cert, &check.key) {
        (Some(cert), Some(key)) => iea_runtime::tls::client_config(
            &iea_runtime::pki::TlsFiles {
                ca: check.ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            },
            &check.server_name,
        )?,
        _ => iea_runtime::tls::front_end_config(&check.ca, &check.server_name)?,
    };
    let channel = Endpoint::from_shared(format!("https://{}", check.addr))
        .with_context(|| format!("invalid address {}", check.addr))?
        .tls_config(tls)?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {}: {}", check.addr, chain(&e)))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: check.service.clone(),
        })
        .await
        .map_err(|s| {
            // A server that requires a client certificate ends the handshake of a client
            // without one; the call then fails with a bare transport error.
            let hint = if check.cert.is_none() && s.code() == tonic::Code::Unknown {
                " (does the server require a client certificate? give --cert and --key)"
            } else {
                ""
            };
            anyhow::anyhow!("health check refused: {}: {}{hint}", s.code(), s.message())
        })?
        .into_inner();
    let status = ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown);
    if status != ServingStatus::Serving {
        bail!("{} reports {}", check.addr, status.as_str_name());
    }
    Ok(format!("{} SERVING", check.addr))
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// `http://HOST[:PORT][/PATH]` split into the address to connect to, the `Host` header
/// and the request target.
fn parse_url(url: &str) -> anyhow::Result<(String, String, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are checked, not {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("no host in {url}");
    }
    let has_port = match authority.rfind(':') {
        // `[::1]` has colons but no port.
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let addr = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_owned(), path.to_owned()))
}

/// One `GET`, `Connection: close`; `Ok` for a 2xx status line.
async fn http(url: &str) -> anyhow::Result<String> {
    let (addr, host, path) = parse_url(url)?;
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // The status line is all we need; read until it is complete (or the peer closes).
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        bail!("{url}: no HTTP status line in the answer");
    };
    if !version.starts_with("HTTP/") {
        bail!("{url}: not an HTTP answer ({line:?})");
    }
    match code.parse::<u16>() {
        Ok(c) if (200..300).contains(&c) => Ok(format!("{url} {c}")),
        Ok(c) => bail!("{url} answered {c}"),
        Err(_) => bail!("{url}: bad status line {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iea_runtime::grpc::GrpcServer;
    use iea_runtime::pki;
    use iea_runtime::shutdown::Shutdown;
    use tokio::net::TcpListener;
    use tonic::service::Routes;

    #[test]
    fn urls_split_into_address_host_and_path() {
        assert_eq!(
            parse_url("http://127.0.0.1:9090/healthz").unwrap(),
            (
                "127.0.0.1:9090".into(),
                "127.0.0.1:9090".into(),
                "/healthz".into()
            )
        );
        assert_eq!(
            parse_url("http://mock").unwrap(),
            ("mock:80".into(), "mock".into(), "/".into())
        );
        assert_eq!(parse_url("http://[::1]/x").unwrap().0, "[::1]:80");
        assert_eq!(parse_url("http://[::1]:8/x").unwrap().0, "[::1]:8");
        assert!(parse_url("https://127.0.0.1/healthz").is_err());
        assert!(parse_url("http:///healthz").is_err());
    }

    /// A one-request HTTP server answering `status_line`.
    async fn http_server(status_line: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await.unwrap();
            let body = format!("{status_line}\r\nContent-Length: 2\r\n\r\nok");
            s.write_all(body.as_bytes()).await.unwrap();
        });
        format!("http://{addr}/healthz")
    }

    #[tokio::test]
    async fn http_is_healthy_on_2xx_only() {
        let url = http_server("HTTP/1.1 200 OK").await;
        assert!(http(&url).await.is_ok());
        let url = http_server("HTTP/1.1 503 Service Unavailable").await;
        let err = http(&url).await.unwrap_err().to_string();
        assert!(err.contains("503"), "{err}");
    }

    #[tokio::test]
    async fn http_reports_a_closed_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = http(&format!("http://{addr}/healthz")).await.unwrap_err();
        assert!(format!("{err:#}").contains("connecting"), "{err:#}");
    }

    struct Servers {
        certs: tempfile::TempDir,
        agent: String,
        front: String,
        stop: Shutdown,
    }

    /// An agent-like server (client certificate required) and an orchestrator-like one
    /// (server TLS only), both with the standard health service.
    async fn servers() -> Servers {
        iea_runtime::install_crypto_provider();
        let certs = tempfile::tempdir().unwrap();
        pki::init(certs.path(), &[]).unwrap();
        let stop = Shutdown::new();
        let agent_tls = iea_runtime::tls::server_config(
            &pki::component_files(certs.path(), "auth-client"),
            true,
        )
        .unwrap();
        let agent = GrpcServer::bind(
            "test-agent",
            "127.0.0.1:0".parse().unwrap(),
            Some(agent_tls),
            Routes::default(),
            &[],
        )
        .await
        .unwrap();
        let front_tls = iea_runtime::tls::server_config(
            &pki::component_files(certs.path(), "orchestrator"),
            false,
        )
        .unwrap();
        let front = GrpcServer::bind(
            "test-front",
            "127.0.0.1:0".parse().unwrap(),
            Some(front_tls),
            Routes::default(),
            &[],
        )
        .await
        .unwrap();
        let (a, f) = (agent.local_addr(), front.local_addr());
        tokio::spawn(agent.run_until(stop.clone()));
        tokio::spawn(front.run_until(stop.clone()));
        Servers {
            certs,
            agent: a.to_string(),
            front: f.to_string(),
            stop,
        }
    }

    fn check(s: &Servers, addr: &str, name: &str, client: Option<&str>) -> GrpcCheck {
        let dir = s.certs.path();
        GrpcCheck {
            addr: addr.to_owned(),
            ca: dir.join("ca.pem"),
            server_name: name.to_owned(),
            cert: client.map(|c| pki::component_files(dir, c).cert),
            key: client.map(|c| pki::component_files(dir, c).key),
            service: String::new(),
        }
    }

    #[tokio::test]
    async fn an_agent_is_healthy_with_a_client_certificate_only() {
        let s = servers().await;
        let ok = grpc(&check(&s, &s.agent, "auth-client", Some("auth-client"))).await;
        assert!(ok.is_ok(), "{ok:?}");
        let refused = grpc(&check(&s, &s.agent, "auth-client", None)).await;
        assert!(
            refused.is_err(),
            "an agent must refuse a client without certificate"
        );
        s.stop.trigger();
    }

    #[tokio::test]
    async fn the_front_end_port_is_healthy_with_server_tls_and_checks_the_name() {
        let s = servers().await;
        let ok = grpc(&check(&s, &s.front, "orchestrator", None)).await;
        assert!(ok.is_ok(), "{ok:?}");
        let wrong_name = grpc(&check(&s, &s.front, "not-the-orchestrator", None)).await;
        assert!(wrong_name.is_err(), "the server name must be checked");
        s.stop.trigger();
    }

    #[tokio::test]
    async fn an_unknown_service_is_unhealthy() {
        let s = servers().await;
        let mut c = check(&s, &s.front, "orchestrator", None);
        c.service = "iea.v1.Nothing".into();
        assert!(grpc(&c).await.is_err());
        s.stop.trigger();
    }
}
