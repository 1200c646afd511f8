use iea_deposit_agent::{App, COMPONENT, Settings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iea_runtime::binary::run(COMPONENT, |settings: Settings, shutdown| async move {
        App::build(settings).await?.run_until(shutdown).await
    })
    .await
}
