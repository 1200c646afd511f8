use iea_mock_updates::{App, NAME, Settings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iea_runtime::binary::run(NAME, |settings: Settings, shutdown| async move {
        App::build(settings).await?.run_until(shutdown).await
    })
    .await
}
