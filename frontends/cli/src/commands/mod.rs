//! One module per command family.

mod certs;
mod connection;
mod credentials;
mod database;
mod dsn;
mod pas;
mod secrets;
mod session;
mod stack;
mod status;
mod support;
mod update;
mod users;

use crate::args::{Cli, Command};
use crate::client;
use crate::output::CliResult;

/// What every command knows.
pub struct Ctx {
    pub json: bool,
    pub data_dir: std::path::PathBuf,
}

pub async fn run(cli: Cli) -> CliResult {
    let ctx = Ctx {
        json: cli.json,
        data_dir: client::data_dir(cli.data_dir),
    };
    match cli.command {
        Command::Stack(c) => stack::run(&ctx, c).await,
        Command::Certs(c) => certs::run(&ctx, c),
        Command::Status(a) => status::run(&ctx, a).await,
        Command::Login(a) => session::login(&ctx, a).await,
        Command::Logout => session::logout(&ctx).await,
        Command::Whoami => session::whoami(&ctx).await,
        Command::Auth(c) => status::auth(&ctx, c).await,
        Command::Assistance(c) => status::assistance(&ctx, c).await,
        Command::Connection(c) => connection::run(&ctx, c).await,
        Command::Support(c) => support::run(&ctx, c).await,
        Command::Update(c) => update::run(&ctx, c).await,
        Command::Users(c) => users::run(&ctx, c).await,
        Command::Credentials(c) => credentials::run(&ctx, c).await,
        Command::Dsn(c) => dsn::run(&ctx, c).await,
        Command::Database(c) => database::run(&ctx, c).await,
        Command::Pas(c) => pas::run(&ctx, c).await,
    }
}
