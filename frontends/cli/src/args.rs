//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "iea",
    version,
    about = "Gestionnaire de services d'Impact emploi association (iea-connect)"
)]
pub struct Cli {
    /// Sortie JSON pour les programmes (erreurs : {"error":{"code":…,"message":…}}).
    #[arg(long, global = true)]
    pub json: bool,

    /// Répertoire de données de la pile (stack.json, certificats, base).
    #[arg(long, global = true, env = "IEA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pile embarquée : orchestrateur, agents et serveurs simulés dans un seul processus.
    #[command(subcommand)]
    Stack(StackCommand),
    /// Certificats internes (TLS mutuel) et de test.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// État de la connexion et des services.
    Status(StatusArgs),
    /// Ouvre une session (le mot de passe est lu sur l'entrée standard).
    Login(LoginArgs),
    /// Ferme la session.
    Logout,
    /// Affiche l'utilisateur de la session.
    Whoami,
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Démarre la pile et attend Ctrl-C.
    Up {
        /// Charge les données de démonstration dans les serveurs simulés.
        #[arg(long)]
        demo: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Crée l'autorité interne et les certificats de chaque composant dans DIR.
    Init {
        dir: PathBuf,
        /// Nom supplémentaire (DNS ou IP) à inscrire dans chaque certificat.
        #[arg(long = "san")]
        extra_names: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Nom du compte (par exemple « Administrateur »).
    #[arg(long)]
    pub user: String,
    /// Lit le mot de passe sur l'entrée standard (première ligne).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}
