//! A 100 MB file goes through the agent's binary, a process of its own, with its memory
//! growing by less than 32 MiB: the file is streamed, gzipped on the way and kept aside
//! compressed, never held whole.

use std::time::Duration;

use iea_agent_testkit::{TestWorld, direct_network, net_entreprises};
use iea_mock_net_entreprises::fixtures::DUPONT;
use iea_proto::agent::v1::deposit_agent_client::DepositAgentClient;
use iea_proto::agent::v1::{
    DeclarantIdentity, DepositChunk, DepositStart, NetEntreprisesAccess, deposit_response,
};
use iea_proto::common::v1::ConnectionMode;

const FILE_BYTES: usize = 100 << 20;
const CHUNK: usize = 1 << 20;

/// A kilobyte-sized block of DSN-like lines, different for each `i`.
fn block(i: usize) -> Vec<u8> {
    let mut s = String::new();
    for j in 0..8 {
        s.push_str(&format!(
            "S21.G00.30.001,'1{:012}'\nS21.G00.30.002,'NOM{i}X{j}'\nS21.G00.50.002,'{}.{:02}'\n",
            i * 8 + j,
            1000 + (i * 7 + j) % 3000,
            (i + j) % 100
        ));
    }
    s.into_bytes()
}

/// The file's chunks, made as they are sent (the test holds one at a time).
fn chunks() -> impl Iterator<Item = Vec<u8>> {
    let mut i = 0;
    let mut made = 0;
    let header = b"S10.G00.00.001,'IEA'\nS10.G00.00.005,'01'\n".to_vec();
    let mut first = Some(header);
    std::iter::from_fn(move || {
        if made >= FILE_BYTES {
            return None;
        }
        let mut c = first.take().unwrap_or_default();
        while c.len() < CHUNK {
            c.extend(block(i));
            i += 1;
        }
        c.truncate((FILE_BYTES - made).min(CHUNK));
        made += c.len();
        Some(c)
    })
}

fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_100_mb_file_grows_the_agents_memory_by_less_than_32_mib() {
    let test = TestWorld::new();
    let agent_files = test.component_files("deposit-agent");
    let started = net_entreprises::start(&test, |_| {}).await;
    let control = started.control;

    let port = iea_agent_testkit::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_iea-deposit-agent"))
        .env("IEA_DEPOSIT_AGENT__LISTEN", format!("127.0.0.1:{port}"))
        .env("IEA_DEPOSIT_AGENT__TLS__CA", &agent_files.ca)
        .env("IEA_DEPOSIT_AGENT__TLS__CERT", &agent_files.cert)
        .env("IEA_DEPOSIT_AGENT__TLS__KEY", &agent_files.key)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let channel = test.channel(
        "deposit-agent",
        ([127, 0, 0, 1], port).into(),
        Duration::from_secs(600),
    );
    let mut agent = DepositAgentClient::new(channel);
    iea_agent_testkit::wait_listening(port, Duration::from_secs(30)).await;

    let access = NetEntreprisesAccess {
        network: Some(direct_network(
            ConnectionMode::Secure,
            &started.https,
            &test.mocks_ca_pem(),
        )),
        auth_address: String::new(),
        identity: Some(DeclarantIdentity {
            siret: DUPONT.siret.into(),
            nom: DUPONT.nom.into(),
            prenom: DUPONT.prenom.into(),
            password: DUPONT.password.into(),
        }),
        service: 25,
    };
    // A small deposit first: the baseline has its connections, token and buffers.
    let small = block(0);
    let start = |total: usize| DepositChunk {
        start: Some(DepositStart {
            access: Some(access.clone()),
            deposit_id: "memory".into(),
            total_size: total as u64,
            ..Default::default()
        }),
        data: Vec::new(),
        withdraw: false,
    };
    let mut first = b"S10.G00.00.001,'IEA'\n".to_vec();
    first.extend(&small);
    let r = agent
        .deposit(futures::stream::iter([
            start(first.len()),
            DepositChunk {
                data: first,
                ..Default::default()
            },
        ]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(r.outcome, Some(deposit_response::Outcome::Accepted(_))),
        "{r:?}"
    );
    let baseline = memory_kib(pid, "VmRSS:");

    let messages = std::iter::once(start(FILE_BYTES)).chain(chunks().map(|data| DepositChunk {
        data,
        ..Default::default()
    }));
    let r = agent
        .deposit(futures::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(r.outcome, Some(deposit_response::Outcome::Accepted(_))),
        "{r:?}"
    );
    assert_eq!(r.bytes, FILE_BYTES as u64);
    let peak = memory_kib(pid, "VmHWM:");
    let deposits = control.deposits_list().await;
    assert_eq!(deposits.last().unwrap().bytes, FILE_BYTES as u64);

    child.kill().unwrap();
    child.wait().unwrap();
    test.stop().await;
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!(
        "agent memory: baseline {} MiB, peak {} MiB",
        baseline / 1024,
        peak / 1024
    );
    assert!(growth_mib < 32, "the agent grew by {growth_mib} MiB");
}
