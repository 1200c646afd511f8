//! `iea`, the command line of iea-connect. See `iea --help`.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod client;
mod commands;
mod output;

#[tokio::main]
async fn main() -> ExitCode {
    restore_sigpipe();
    let args = args::Cli::parse();
    let json = args.json;
    iea_runtime::install_crypto_provider();
    match commands::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e, json);
            ExitCode::FAILURE
        }
    }
}

/// Like other command-line tools, end quietly when the reader of our output goes away
/// (`iea status | head -1`) instead of panicking on a broken pipe. Rust ignores SIGPIPE by
/// default; this restores the default action.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; `signal` with
    // `SIG_DFL` only resets the disposition of SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
