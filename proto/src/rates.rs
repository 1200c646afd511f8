//! The withholding rates (`iea.v1.PasRate`) in the forms both front-ends give (`iea pas
//! rates`, the web console's « Taux PAS » page and download), so that a person reads the
//! same thing in either:
//!
//! - as CSV ([`to_csv`]): `;`-separated as French spreadsheets expect, RFC 4180 quoting, a
//!   header line of French column names, and a field a spreadsheet would take for a
//!   formula made inert;
//! - to a person: the NIR or NTT [`masked`] but for its end, the rate as a French
//!   [`percent`]. (Dates: `iea_fr_time::date_text`.)

use crate::v1::PasRate;

/// The NIR or NTT with all but its last three characters hidden, as a person sees it
/// (« ••••••••••456 »): enough to tell two employees apart, not to read the number.
pub fn masked(id: &str) -> String {
    let n = id.chars().count();
    if n <= 3 {
        return "•".repeat(n);
    }
    let tail: String = id.chars().skip(n - 3).collect();
    format!("{}{tail}", "•".repeat(n - 3))
}

/// « 7,50 % » for `7.50`; « aucun » when the CRM gave none.
pub fn percent(rate: &str) -> String {
    if rate.is_empty() {
        "aucun".to_owned()
    } else {
        format!("{} %", rate.replace('.', ","))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_sees_only_the_end_of_a_nir() {
        assert_eq!(masked("1800175123456"), "••••••••••456");
        assert_eq!(masked("12"), "••");
        assert_eq!(masked(""), "");
    }

    #[test]
    fn rates_read_as_french_percents() {
        assert_eq!(percent("7.50"), "7,50 %");
        assert_eq!(percent("0"), "0 %");
        assert_eq!(percent(""), "aucun");
    }
}
