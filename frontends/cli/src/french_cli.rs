//! The command line's own words in French. clap writes its help and its errors in English
//! ("Usage:", "Commands:", "Print help", "[possible values: …]", "error: unexpected
//! argument"); this module rewrites the help template, the help and version flags and
//! the lists of values of every command, and says a parse error in French — in the JSON
//! error shape when `--json` was given.

use clap::error::{ContextKind, ErrorKind};
use clap::{Arg, ArgAction, Command, CommandFactory, FromArgMatches};
use serde_json::json;

use crate::args::Cli;

const TEMPLATE: &str = "{about-with-newline}\nUtilisation : {usage}\n\n{all-args}{after-help}";

/// Exit code of a command line that could not be read (clap's own).
const EXIT_USAGE: i32 = 2;

/// The `iea` command with its help in French.
pub fn command() -> Command {
    frenchify(Cli::command(), true)
}

fn frenchify(cmd: Command, root: bool) -> Command {
    let mut cmd = cmd
        .help_template(TEMPLATE)
        .subcommand_help_heading("Commandes")
        .disable_help_subcommand(true)
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("Affiche cette aide."),
        );
    if root {
        cmd = cmd.disable_version_flag(true).arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help("Affiche la version."),
        );
    }
    // clap's own words after an option's help ("[possible values: …]", "[default: …]",
    // "[env: …]") become French ones.
    let to_say: Vec<_> = cmd
        .get_arguments()
        .filter(|a| {
            a.get_action().takes_values()
                && (!a.get_possible_values().is_empty()
                    || !a.get_default_values().is_empty()
                    || a.get_env().is_some())
        })
        .map(|a| a.get_id().clone())
        .collect();
    for id in to_say {
        cmd = cmd.mut_arg(id, |a| {
            let mut help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            help = help.trim_end_matches('.').to_owned();
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if !values.is_empty() {
                help.push_str(&format!(" (valeurs : {})", values.join(", ")));
            }
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() {
                help.push_str(&format!(" (par défaut : {})", defaults.join(", ")));
            }
            if let Some(env) = a.get_env() {
                help.push_str(&format!(
                    " (variable d'environnement {})",
                    env.to_string_lossy()
                ));
            }
            help.push('.');
            a.hide_possible_values(true)
                .hide_default_value(true)
                .hide_env(true)
                .help(help)
        });
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |s| frenchify(s, false));
    }
    cmd
}

/// The arguments of this process, or the end of it: help and version printed, or a
/// parse error said in French (exit code 2).
pub fn parse() -> Cli {
    let json = std::env::args_os().any(|a| a == "--json");
    let parsed = command()
        .try_get_matches()
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                let message = message(&e);
                if json {
                    say!(
                        "{}",
                        json!({"error": {"code": "invalid_arguments", "message": message}})
                    );
                } else {
                    let args: Vec<String> = std::env::args().skip(1).collect();
                    eprintln!(
                        "Erreur : {message}\nPour l'aide : {} --help",
                        command_path(&command(), &args)
                    );
                }
                std::process::exit(EXIT_USAGE);
            }
        },
    }
}

/// The command a person was typing (« iea dsn list »): the subcommands named in `args`
/// from the start, as far as they are known; its help is the one to read.
pub fn command_path(cmd: &Command, args: &[String]) -> String {
    // An option's value (`--data-dir DIR`) is not a subcommand.
    let takes_value = |c: &Command, option: &str| {
        option.strip_prefix("--").is_some_and(|long| {
            c.get_arguments()
                .any(|a| a.get_long() == Some(long) && a.get_action().takes_values())
        })
    };
    let mut path = vec![cmd.get_name().to_owned()];
    let mut current = cmd;
    let mut previous: Option<&str> = None;
    for arg in args {
        let a_value = previous.is_some_and(|p| takes_value(current, p) || takes_value(cmd, p));
        if !a_value && !arg.starts_with('-') {
            match current.find_subcommand(arg) {
                Some(sub) => {
                    path.push(sub.get_name().to_owned());
                    current = sub;
                }
                None => break,
            }
        }
        previous = Some(arg);
    }
    path.join(" ")
}

/// A parse error in a French sentence.
pub fn message(e: &clap::Error) -> String {
    let ctx = |k| e.get(k).map(|v| v.to_string()).unwrap_or_default();
    let arg = ctx(ContextKind::InvalidArg);
    let sentence = match e.kind() {
        ErrorKind::InvalidValue => {
            let valid = ctx(ContextKind::ValidValue);
            let value = ctx(ContextKind::InvalidValue);
            if value.is_empty() {
                format!("{arg} attend une valeur")
            } else if valid.is_empty() {
                format!("la valeur « {value} » n'est pas acceptée pour {arg}")
            } else {
                format!("la valeur « {value} » n'est pas acceptée pour {arg} (valeurs : {valid})")
            }
        }
        ErrorKind::UnknownArgument => format!(
            "argument inattendu : « {arg} »{}",
            suggestion(e, ContextKind::SuggestedArg)
        ),
        ErrorKind::InvalidSubcommand => format!(
            "commande inconnue : « {} »{}",
            ctx(ContextKind::InvalidSubcommand),
            suggestion(e, ContextKind::SuggestedSubcommand)
        ),
        ErrorKind::MissingRequiredArgument => format!("il manque {arg}"),
        ErrorKind::MissingSubcommand => "il manque la commande".to_owned(),
        ErrorKind::ArgumentConflict => format!(
            "{arg} ne peut pas être donné avec {}",
            ctx(ContextKind::PriorArg)
        ),
        ErrorKind::ValueValidation => format!(
            "la valeur « {} » n'est pas acceptée pour {arg}",
            ctx(ContextKind::InvalidValue)
        ),
        ErrorKind::TooManyValues | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("nombre de valeurs incorrect pour {arg}")
        }
        _ => "la ligne de commande n'a pas pu être lue".to_owned(),
    };
    format!("{sentence}.")
}

/// « (vouliez-vous dire « status » ?) », « (vouliez-vous dire « stack » ou « status » ?) »
/// when clap found near names.
fn suggestion(e: &clap::Error, kind: ContextKind) -> String {
    let near: Vec<String> = match e.get(kind) {
        Some(clap::error::ContextValue::String(s)) => vec![s.clone()],
        Some(clap::error::ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let quoted: Vec<String> = near.iter().map(|n| format!("« {n} »")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => format!(" (vouliez-vous dire {last} ?)"),
        Some((last, rest)) => format!(" (vouliez-vous dire {} ou {last} ?)", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(args: &[&str]) -> String {
        let e = command().try_get_matches_from(args).unwrap_err();
        message(&e)
    }

    #[test]
    fn parse_errors_are_said_in_french() {
        assert_eq!(
            error(&["iea", "connection", "set", "--type", "autre"]),
            "la valeur « autre » n'est pas acceptée pour --type <CONNECTION_TYPE> (valeurs : proxy, direct, system)."
        );
        assert_eq!(
            error(&["iea", "status", "--vite"]),
            "argument inattendu : « --vite »."
        );
        assert_eq!(
            error(&["iea", "statut"]),
            "commande inconnue : « statut » (vouliez-vous dire « stack » ou « status » ?)."
        );
        assert_eq!(
            error(&["iea", "dsn", "list", "--mont", "2026-11"]),
            "argument inattendu : « --mont » (vouliez-vous dire « --month » ?)."
        );
        assert_eq!(
            error(&["iea", "database", "migrate", "--url", "x"]),
            "argument inattendu : « --url »."
        );
        assert_eq!(
            error(&["iea", "users", "add", "Dupont"]),
            "il manque --password-stdin."
        );
    }

    /// The help to read after a mistake is the one of the command being typed.
    #[test]
    fn the_help_named_after_a_mistake_is_the_command_s_own() {
        let path = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            command_path(&command(), &args)
        };
        assert_eq!(
            path(&["database", "migrate", "--url", "postgres://x"]),
            "iea database migrate"
        );
        assert_eq!(
            path(&["--data-dir", "dsn", "--json", "dsn", "list", "--vite"]),
            "iea dsn list"
        );
        assert_eq!(path(&["dsn", "depot", "f.dsn"]), "iea dsn");
        assert_eq!(path(&["statut"]), "iea");
        assert_eq!(path(&[]), "iea");
    }

    /// Every argument and option says what it is for: `--help` is the manual.
    #[test]
    fn every_argument_of_every_command_has_its_help() {
        fn check(cmd: &mut Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && !["help", "version"].contains(&id) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands_mut() {
                let name = format!("{path} {}", sub.get_name());
                check(sub, &name, missing);
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut missing = Vec::new();
        check(&mut cmd, "iea", &mut missing);
        assert!(missing.is_empty(), "without help:\n{}", missing.join("\n"));
    }

    #[test]
    fn the_help_is_french_in_every_command() {
        fn check(cmd: &mut Command, path: &str) {
            for help in [cmd.render_help(), cmd.render_long_help()] {
                let help = help.to_string();
                let lower = help.to_lowercase();
                for english in [
                    "usage:",
                    "commands:",
                    "print help",
                    "print version",
                    "possible values",
                    "default:",
                    "[env:",
                ] {
                    assert!(
                        !lower.contains(english),
                        "{path}: « {english} » in:\n{help}"
                    );
                }
                assert!(help.contains("Utilisation : "), "{path}:\n{help}");
                assert!(help.contains("Affiche cette aide."), "{path}:\n{help}");
            }
            for sub in cmd.get_subcommands_mut() {
                let name = format!("{path} {}", sub.get_name());
                check(sub, &name);
            }
        }
        let mut cmd = command();
        cmd.build();
        check(&mut cmd, "iea");
        let help = command().render_help().to_string();
        assert!(help.contains("Commandes"), "{help}");
        assert!(help.contains("Affiche la version."), "{help}");
        let mut connection = command();
        connection.build();
        let set = connection
            .find_subcommand_mut("connection")
            .unwrap()
            .find_subcommand_mut("set")
            .unwrap();
        let help = set.render_help().to_string();
        assert!(
            help.contains("Type de connexion (valeurs : proxy, direct, system)."),
            "{help}"
        );
        let help = command().render_help().to_string();
        assert!(
            help.contains("(variable d'environnement IEA_DATA_DIR)."),
            "{help}"
        );
    }
}
