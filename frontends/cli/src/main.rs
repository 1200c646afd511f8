//! `iea`, the command line of iea-connect. See `iea --help`.

use std::process::ExitCode;

#[macro_use]
mod output;
mod args;
mod client;
mod codes;
mod commands;
mod french_cli;

#[tokio::main]
async fn main() -> ExitCode {
    let args = french_cli::parse();
    let json = args.json;
    iea_runtime::install_crypto_provider();
    match commands::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e, json);
            ExitCode::from(e.exit)
        }
    }
}
