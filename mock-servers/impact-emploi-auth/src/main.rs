use iea_mock_auth::{App, COMPONENT, Settings};

fn main() -> std::process::ExitCode {
    iea_runtime::binary::main(COMPONENT, |settings: Settings, shutdown| async move {
        App::build(settings).await?.run_until(shutdown).await
    })
}
