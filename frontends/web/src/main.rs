//! `iea-web`: the web console and JSON API. Settings from `--config FILE` and
//! `IEA_WEB__*` variables (listen, orchestrator, ca, orchestrator_server_name).

use std::process::ExitCode;

fn main() -> ExitCode {
    iea_runtime::binary::main(
        iea_web::COMPONENT,
        |settings: iea_web::Settings, shutdown| async move {
            iea_web::App::build(settings)
                .await?
                .run_until(shutdown)
                .await
        },
    )
}
