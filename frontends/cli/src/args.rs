//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Authentification de l'installation auprès du serveur Impact emploi.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Mode assistance (scarabée rouge).
    #[command(subcommand)]
    Assistance(AssistanceCommand),
    /// Paramètres de connexion, test d'accès aux serveurs, réparations.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Mises à jour d'Impact emploi, notes de version, scripts de maintenance.
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Demande de support technique.
    #[command(subcommand)]
    Support(SupportCommand),
    /// Comptes utilisateurs et mode d'installation.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Identifiants Net-entreprises de chaque compte.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Déclarations sociales nominatives (DSN) : contrôle, dépôt, retours et échéances.
    #[command(subcommand)]
    Dsn(DsnCommand),
    /// Base de données de l'orchestrateur (« Changer de base de données… »).
    #[command(subcommand)]
    Database(DatabaseCommand),
    /// Prélèvement à la source : les taux transmis par la DGFiP (CRM PAS).
    #[command(subcommand)]
    Pas(PasCommand),
}

#[derive(Debug, Subcommand)]
pub enum PasCommand {
    /// Les taux en vigueur de chaque salarié (le dernier CRM PAS encore valable), avec
    /// l'identifiant du taux à reprendre dans la prochaine DSN (S21.G00.50.008).
    Rates {
        /// Un seul établissement (14 chiffres).
        #[arg(long)]
        siret: Option<String>,
        /// Sortie CSV pour le logiciel de paie (NIR complets ; incompatible avec --json).
        #[arg(long)]
        csv: bool,
        /// Affiche aussi les salariés dont le dernier taux n'est plus valable.
        #[arg(long)]
        expired: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Copie tout l'état de l'installation (SQLite) vers une base PostgreSQL vide, vérifie
    /// les comptes, et la choisit pour les prochains démarrages ; la base SQLite n'est
    /// pas modifiée. La pile doit être arrêtée.
    Migrate {
        /// La base de destination : postgres://utilisateur:motdepasse@serveur:port/base
        #[arg(long = "to")]
        to: String,
    },
    /// Affiche la base de données utilisée par la pile de ce répertoire.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum DsnCommand {
    /// Contrôle un fichier DSN sans rien envoyer : chaque problème avec sa ligne (code de
    /// sortie 3 s'il y en a).
    Check {
        /// Le fichier DSN (ISO-8859-1).
        file: PathBuf,
    },
    /// Écrit un fichier DSN valide pour la démonstration et les tests (mode 0600).
    Sample(DsnSampleArgs),
    /// Dépose un fichier DSN sur Net-entreprises (contrôlé d'abord, déposé une seule fois)
    /// et attend le résultat (code de sortie 3 s'il n'est pas accepté).
    Deposit {
        /// Le fichier DSN (ISO-8859-1).
        file: PathBuf,
        /// Le compte dont les identifiants Net-entreprises déposent (par défaut : celui
        /// désigné pour l'établissement ; un utilisateur ne peut indiquer que lui-même).
        #[arg(long)]
        user: Option<String>,
        /// N'attend pas le résultat : affiche le dépôt dès qu'il est enregistré.
        #[arg(long)]
        no_wait: bool,
        /// Attente au plus, en secondes.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Liste les dépôts DSN, les plus récents d'abord (500 au plus).
    List {
        /// Seulement ceux de cet établissement (SIRET, 14 chiffres).
        #[arg(long)]
        siret: Option<String>,
        /// Seulement ceux de ce mois déclaré (AAAA-MM).
        #[arg(long)]
        month: Option<String>,
        /// Seulement ceux dans cet état.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(iea_proto::DEPOSIT_STATES))]
        state: Option<String>,
        /// Au plus ce nombre de dépôts (1 à 500).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: Option<u32>,
        /// Seulement ceux plus anciens que ce dépôt (son numéro) : la suite d'une liste
        /// incomplète.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        before: Option<i64>,
    },
    /// Affiche un dépôt DSN.
    Show {
        /// Le numéro du dépôt (iea dsn list).
        id: i64,
    },
    /// Règle un dépôt dont la réponse a été perdue : ce flux est le sien, ou il est
    /// renvoyé.
    #[command(group(clap::ArgGroup::new("resolution").required(true).args(["idflux", "resend"])))]
    Resolve {
        /// Le numéro du dépôt à régler.
        id: i64,
        /// L'identifiant du flux (idflux) de ce dépôt, vu sur net-entreprises.fr.
        #[arg(long)]
        idflux: Option<String>,
        /// Aucun flux n'est le sien : il est envoyé de nouveau.
        #[arg(long)]
        resend: bool,
    },
    /// Le compte qui dépose pour chaque établissement.
    #[command(subcommand)]
    Accounts(DsnAccountsCommand),
    /// Tableau des échéances : par établissement et par mois, l'échéance, le dépôt, la
    /// conformité, le CRM PAS et les jours restants ; puis les alertes, la plus urgente
    /// d'abord.
    Board {
        /// Un seul établissement (14 chiffres).
        #[arg(long)]
        siret: Option<String>,
    },
    /// « Suivre maintenant » (administrateur) : consulte tout de suite les retours de
    /// chaque dépôt suivi et de chaque déclarant (accusé, conformité, CRM PAS), télécharge
    /// et lit ceux qui sont publiés, puis dit ce qui a été trouvé.
    Follow {
        /// Affiche ensuite les retours de ce dépôt : conformité, CRM PAS et nombre de taux.
        #[arg(long, value_name = "ID")]
        deposit: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DsnAccountsCommand {
    /// Désigne le compte dont les identifiants déposent pour un SIRET (administrateur).
    Set {
        /// Le SIRET de l'établissement (14 chiffres, espaces acceptés).
        #[arg(long)]
        siret: String,
        /// Le compte dont les identifiants Net-entreprises déposeront ses DSN.
        #[arg(long)]
        user: String,
    },
    /// Liste les comptes désignés.
    List,
}

#[derive(Debug, Args)]
pub struct DsnSampleArgs {
    /// SIRET de l'établissement déclaré (aussi émetteur), 14 chiffres.
    #[arg(long)]
    pub siret: String,
    /// Mois déclaré, AAAA-MM.
    #[arg(long)]
    pub month: String,
    /// Nombre de salariés.
    #[arg(long, default_value_t = 1)]
    pub employees: usize,
    /// Fichier à écrire.
    #[arg(long)]
    pub out: PathBuf,
    /// Déclaration d'essai (par défaut : réelle).
    #[arg(long)]
    pub test: bool,
    /// Type de déclaration.
    #[arg(long, value_enum, default_value_t = DsnKindArg::Normal)]
    pub kind: DsnKindArg,
    /// Graine des noms, NIR et montants inventés (même graine, même fichier).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DsnKindArg {
    /// Déclaration normale (01).
    Normal,
    /// Annule et remplace (03).
    CancelsAndReplaces,
}

/// `--type` of the connection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConnectionTypeChoice {
    Proxy,
    Direct,
    /// Les paramètres du système (HTTPS_PROXY…).
    System,
}

/// `--mode` of the connection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConnectionModeChoice {
    Normal,
    /// Étendu : délais plus longs, nouvelles tentatives.
    Extended,
    /// Sécurisé : HTTPS seulement.
    Secure,
}

/// `iea users mode …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InstallationModeChoice {
    Monoposte,
    Reseau,
}

/// `iea update scripts apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScriptsAction {
    Apply,
}

/// Changes to the connection settings, as typed (absent: unchanged).
#[derive(Debug, Args, Default)]
pub struct ConnectionChanges {
    /// Type de connexion.
    #[arg(long = "type", value_enum)]
    pub connection_type: Option<ConnectionTypeChoice>,
    /// Serveur proxy : http://[identifiant@]hôte:port
    #[arg(long)]
    pub proxy: Option<String>,
    /// Lit le mot de passe du proxy sur l'entrée standard.
    #[arg(long)]
    pub proxy_password_stdin: bool,
    /// Mode de connexion.
    #[arg(long, value_enum)]
    pub mode: Option<ConnectionModeChoice>,
    /// Adresse du serveur d'authentification.
    #[arg(long)]
    pub auth_server: Option<String>,
    /// Adresse du serveur de mise à jour.
    #[arg(long)]
    pub update_server: Option<String>,
    /// Adresse d'authentification Net-entreprises.
    #[arg(long)]
    pub net_entreprises: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Affiche les paramètres enregistrés (jamais le mot de passe du proxy).
    Show,
    /// Modifie et enregistre les paramètres (administrateur).
    Set(ConnectionChanges),
    /// Teste l'accès aux trois serveurs, avec les paramètres enregistrés ou modifiés par
    /// les options (sans les enregistrer).
    Test(ConnectionChanges),
    /// Diagnostique et propose les réparations connues, chacune testée avant d'être
    /// proposée ; --apply applique la première (ou celle nommée par --id).
    Repair {
        /// Applique la réparation proposée (enregistre les paramètres qu'elle donne).
        #[arg(long)]
        apply: bool,
        /// La réparation à appliquer, par l'identifiant que la proposition affiche.
        #[arg(long, requires = "apply")]
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Recherche les nouvelles versions.
    Check,
    /// Notes de version (« Lisez-moi ») d'une version, par défaut la plus récente.
    Notes { version: Option<String> },
    /// « Mettre à jour Impact Emploi maintenant » : télécharge, vérifie et installe.
    Apply {
        /// Version à installer (par défaut la plus récente).
        #[arg(long)]
        version: Option<String>,
        /// Sans demander de confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Scripts de maintenance en attente ; `apply` les applique.
    Scripts {
        #[arg(value_enum)]
        action: Option<ScriptsAction>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SupportCommand {
    /// Prépare le message pour le support (fichier .eml prêt à envoyer).
    Request {
        /// Fichier à écrire (par défaut : demande-support-<installation>.eml).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Votre adresse électronique, comme expéditeur.
        #[arg(long)]
        from: Option<String>,
        /// Quelques mots pour décrire le problème.
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Relancer l'authentification auprès du serveur.
    Retry,
}

#[derive(Debug, Subcommand)]
pub enum AssistanceCommand {
    /// Active le mode assistance (sans mot de passe, même hors connexion).
    On,
    /// Désactive le mode assistance avec le mot de passe du jour donné par le support.
    Off {
        /// Le mot de passe du jour, donné par le support pour cette installation.
        #[arg(long)]
        daily_password: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Liste les comptes.
    List,
    /// Crée un compte (mot de passe lu sur l'entrée standard).
    Add {
        /// Le nom du nouveau compte (1 à 64 caractères).
        name: String,
        /// Compte administrateur.
        #[arg(long)]
        admin: bool,
        /// Lit le mot de passe du nouveau compte sur l'entrée standard (première ligne).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Supprime un compte (pas tant que son identité Net-entreprises sert encore : un
    /// établissement pour lequel il dépose, un dépôt en cours, des retours attendus).
    Remove {
        /// Le compte à supprimer.
        name: String,
    },
    /// Change le mot de passe d'un compte. Pour le sien : mot de passe actuel puis
    /// nouveau, une ligne chacun ; un administrateur pour un autre compte : le nouveau.
    Passwd {
        /// Le compte dont le mot de passe change.
        name: String,
        /// Lit les mots de passe sur l'entrée standard ; sans cette option, ils sont
        /// demandés sans écho sur un terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Affiche ou change le mode d'installation.
    Mode {
        #[arg(value_enum)]
        mode: Option<InstallationModeChoice>,
    },
}

#[derive(Debug, Args)]
pub struct Target {
    /// Le compte concerné.
    #[arg(long, conflicts_with = "all")]
    pub user: Option<String>,
    /// Tous les comptes (administrateur).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Enregistre l'identité Net-entreprises d'un compte. Entrée standard, une ligne
    /// chacun : le mot de passe Impact emploi du compte, puis le mot de passe
    /// Net-entreprises (sur un terminal, ils sont demandés sans écho).
    Set {
        /// Le compte dont l'identité change.
        #[arg(long)]
        user: String,
        /// Le SIRET du déclarant (14 chiffres, espaces acceptés).
        #[arg(long)]
        siret: String,
        /// Le nom du déclarant, tel qu'enregistré sur Net-entreprises.
        #[arg(long)]
        nom: String,
        /// Le prénom du déclarant, tel qu'enregistré sur Net-entreprises.
        #[arg(long)]
        prenom: String,
        /// Lit les deux mots de passe sur l'entrée standard, une ligne chacun.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Affiche l'identité enregistrée (jamais le mot de passe).
    Show(Target),
    /// Copie l'identité d'un compte vers d'autres (administrateur).
    Copy {
        /// Le compte dont l'identité est copiée.
        #[arg(long)]
        from: String,
        /// Un compte qui la reçoit (l'option se répète : --to Dupont --to Martin).
        #[arg(long = "to", required = true)]
        to: Vec<String>,
    },
    /// Vérifie les identifiants auprès de Net-entreprises (code de sortie 3 si au moins
    /// une vérification n'est pas valide).
    Verify(Target),
    /// Remplace la clé de chiffrement des secrets enregistrés (administrateur).
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Démarre la pile et attend Ctrl-C.
    Up {
        /// Charge les données de démonstration dans les serveurs simulés, dont un déclarant
        /// Net-entreprises de démonstration, dont le compte « Administrateur » reçoit
        /// l'identité : il est prêt à déposer une DSN (iea dsn sample, iea dsn deposit).
        #[arg(long)]
        demo: bool,
        /// La base de données de l'orchestrateur (postgres://… ou un fichier SQLite),
        /// retenue pour les démarrages suivants ; par défaut celle choisie la dernière
        /// fois, sinon SQLite dans le répertoire de données.
        #[arg(long, env = "IEA_DATABASE_URL")]
        database: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Crée l'autorité interne et les certificats de chaque composant dans DIR.
    Init {
        /// Le répertoire où écrire l'autorité et les certificats.
        dir: PathBuf,
        /// Nom supplémentaire (DNS ou IP) à inscrire dans chaque certificat.
        #[arg(long = "san")]
        extra_names: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Suit l'état en continu : une ligne (ou un objet JSON) par changement.
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Nom du compte (par exemple « Administrateur »).
    #[arg(long)]
    pub user: String,
    /// Lit le mot de passe sur l'entrée standard (première ligne) ; sans cette option,
    /// il est demandé sans écho sur un terminal.
    #[arg(long)]
    pub password_stdin: bool,
}
