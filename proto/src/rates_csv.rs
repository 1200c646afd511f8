//! The withholding rates (`iea.v1.PasRate`) as CSV, the one form both front-ends give
//! (`iea pas rates --csv`, the web console's download): `;`-separated as French
//! spreadsheets expect, RFC 4180 quoting, a header line of French column names, and a
//! field a spreadsheet would take for a formula made inert.

use crate::v1::PasRate;

/// The columns, in order.
pub const CSV_HEADER: &str = "siret;nir_ou_ntt;ntt;matricule;taux;identifiant_taux;disponible_le;valable_jusqu_au;valable;taux_futur;date_effet_taux_futur;depot;idflux";

/// One field: quoted when it holds the separator, a quote or a line break (RFC 4180, with
/// `;` as French spreadsheets expect); a field a spreadsheet would take for a formula
/// (`=`, `+`, `-`, `@` first) is prefixed with `'`.
fn field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// The rates: the header, then one line per rate.
pub fn to_csv(rates: &[PasRate]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rates {
        let cols = [
            r.siret.clone(),
            r.nir_or_ntt.clone(),
            if r.ntt { "1" } else { "0" }.to_owned(),
            r.matricule.clone(),
            r.rate.clone(),
            r.rate_identifier.clone(),
            r.available_on.clone(),
            r.valid_until.clone(),
            if r.valid { "1" } else { "0" }.to_owned(),
            r.future_rate.clone(),
            r.future_effective_on.clone(),
            if r.deposit_id == 0 {
                String::new()
            } else {
                r.deposit_id.to_string()
            },
            r.idflux.clone(),
        ];
        let line: Vec<String> = cols.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(";"));
        out.push('\n');
    }
    out
}
