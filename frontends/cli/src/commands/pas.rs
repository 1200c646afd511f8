//! `iea pas rates`: the withholding (PAS) rates the DGFiP sent in its CRM nominatifs, as
//! the orchestrator keeps them: per establishment and employee, the rate in force, the
//! identifier the next DSN quotes (`S21.G00.50.008`) and until when it is valid.
//!
//! Personal data: a person reads the NIR masked but for its last three characters (the
//! matricule is what a payroll manager looks for; the tail tells two namesakes apart);
//! `--json` and `--csv` are for the payroll program and give every value whole.

use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::{ListPasRatesRequest, PasRate};
use serde_json::json;

use super::Ctx;
use crate::args::PasCommand;
use crate::client;
use crate::output::{CliError, CliResult, print_json};

pub async fn run(ctx: &Ctx, cmd: PasCommand) -> CliResult {
    let PasCommand::Rates {
        siret,
        csv,
        expired,
    } = cmd;
    if csv && ctx.json {
        return Err(CliError::new(
            "invalid_input",
            "Choisissez une seule sortie : --json ou --csv.",
        ));
    }
    let stack = client::stack_file(&ctx.data_dir)?;
    let rates = ReturnsClient::new(client::connect(&stack).await?)
        .list_rates(client::authed(
            &ctx.data_dir,
            ListPasRatesRequest {
                siret: siret.unwrap_or_default(),
                include_expired: expired,
            },
        ))
        .await?
        .into_inner()
        .rates;
    if ctx.json {
        print_json(&json!({"rates": rates.iter().map(rate_json).collect::<Vec<_>>()}));
    } else if csv {
        say!("{}", to_csv(&rates).trim_end_matches('\n'));
    } else {
        print_human(&rates);
    }
    Ok(())
}

fn rate_json(r: &PasRate) -> serde_json::Value {
    json!({
        "siret": r.siret,
        "nir": (!r.ntt).then_some(&r.nir_or_ntt),
        "ntt": r.ntt.then_some(&r.nir_or_ntt),
        "matricule": r.matricule,
        "rate": (!r.rate.is_empty()).then_some(&r.rate),
        "rate_identifier": r.rate_identifier,
        "available_on": r.available_on,
        "valid_until": r.valid_until,
        "valid": r.valid,
        "future_rate": (!r.future_rate.is_empty()).then(|| json!({
            "rate": r.future_rate,
            "effective_on": r.future_effective_on,
        })),
        "deposit_id": (r.deposit_id != 0).then_some(r.deposit_id),
        "idflux": (!r.idflux.is_empty()).then_some(&r.idflux),
    })
}

use iea_fr_time::date_text;
/// The forms shared with the web console: CSV, the masked NIR, the French percent.
use iea_proto::rates::{masked, percent, to_csv};

fn print_human(rates: &[PasRate]) {
    if rates.is_empty() {
        say!(
            "Aucun taux de prélèvement à la source : aucun CRM PAS n'a encore été reçu pour les établissements que vous suivez."
        );
        return;
    }
    let mut current_siret: Option<&str> = None;
    for r in rates {
        if current_siret != Some(r.siret.as_str()) {
            let n = rates.iter().filter(|x| x.siret == r.siret).count();
            say!(
                "SIRET {} — {} salarié{} :",
                r.siret,
                n,
                if n == 1 { "" } else { "s" }
            );
            current_siret = Some(r.siret.as_str());
        }
        let who = format!(
            "matricule {} ({} {})",
            if r.matricule.is_empty() {
                "—"
            } else {
                &r.matricule
            },
            if r.ntt { "NTT" } else { "NIR" },
            masked(&r.nir_or_ntt)
        );
        let validity = if r.valid {
            format!("valable jusqu'au {}", date_text(&r.valid_until))
        } else {
            format!("n'est plus valable depuis le {}", date_text(&r.valid_until))
        };
        say!(
            "  {who} : taux {}, identifiant {} (S21.G00.50.008), {validity}",
            percent(&r.rate),
            r.rate_identifier
        );
        if !r.future_rate.is_empty() {
            say!(
                "    puis {} à partir du {}",
                percent(&r.future_rate),
                date_text(&r.future_effective_on)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        let r = PasRate {
            siret: "78214563500010".into(),
            nir_or_ntt: "1800175123456".into(),
            matricule: "=A1;B\"2".into(),
            rate: "7.50".into(),
            rate_identifier: "123456789012345678".into(),
            available_on: "2026-12-01".into(),
            valid_until: "2027-02-28".into(),
            valid: true,
            ..Default::default()
        };
        let csv = to_csv(&[r]);
        let mut lines = csv.split('\n');
        assert_eq!(lines.next(), Some(iea_proto::rates::CSV_HEADER));
        assert_eq!(
            lines.next(),
            Some(
                "78214563500010;1800175123456;0;\"'=A1;B\"\"2\";7.50;123456789012345678;2026-12-01;2027-02-28;1;;;;"
            )
        );
    }
}
