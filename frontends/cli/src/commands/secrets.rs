//! Reading passwords: from standard input, one per line, or, on a terminal, at a prompt
//! without echo. A password never appears on the command line.

use std::io::{BufRead, IsTerminal};

use secrecy::SecretString;

use crate::output::{CliError, CliResult};

/// Reads one secret per prompt: lines of standard input when it is not a terminal (or
/// `from_stdin`), prompts without echo otherwise.
pub fn read(prompts: &[&str], from_stdin: bool) -> CliResult<Vec<SecretString>> {
    let stdin = std::io::stdin();
    if !from_stdin && stdin.is_terminal() {
        return prompts
            .iter()
            .map(|p| {
                rpassword::prompt_password(format!("{p} : "))
                    .map(SecretString::from)
                    .map_err(|e| {
                        CliError::new(
                            "stdin_unreadable",
                            format!("Lecture impossible : {}.", crate::output::io_error_fr(&e)),
                        )
                    })
            })
            .collect();
    }
    let mut lines = stdin.lock().lines();
    prompts
        .iter()
        .map(|p| match lines.next() {
            Some(Ok(line)) => {
                let line = line.strip_suffix('\r').unwrap_or(&line).to_owned();
                if line.is_empty() {
                    Err(CliError::new(
                        "invalid_input",
                        format!("{p} : ligne vide sur l'entrée standard."),
                    ))
                } else {
                    Ok(SecretString::from(line))
                }
            }
            Some(Err(e)) => Err(CliError::new(
                "stdin_unreadable",
                format!("Lecture impossible : {}.", crate::output::io_error_fr(&e)),
            )),
            None => Err(CliError::new(
                "invalid_input",
                format!("{p} : attendu sur l'entrée standard, une ligne par mot de passe."),
            )),
        })
        .collect()
}
