//! The export folder of the withholding rates, for the payroll program:
//! `<data_dir>/crm-pas/<siret>/` (0700) holds each current CRM of the establishment as
//! received and `taux.csv`, the current rate of each employee; files are 0600 and each is
//! written atomically (a temporary file beside it, fsync, rename, fsync of the folder), so
//! a reader never sees half a file. Rewritten after each new CRM; the CRMs an overwrite
//! replaced are removed.

use std::io::Write;
use std::path::Path;

use super::types::{CrmFile, CurrentRate};

/// The first line of `taux.csv`.
pub const CSV_HEADER: &str = "nir_or_ntt,matricule,taux,identifiant_taux,disponible_le,valide_jusqu_au,taux_futur,date_effet_futur";

/// Writes `bytes` to `path` atomically, mode 0600.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `taux.csv` of these rates (the current one of each employee).
pub fn rates_csv(rates: &[CurrentRate]) -> String {
    let mut out = String::with_capacity(64 + rates.len() * 96);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for r in rates.iter().filter(|r| r.valid) {
        let fields = [
            r.rate.nir_or_ntt.as_str(),
            r.rate.matricule.as_str(),
            r.rate.rate.as_str(),
            r.identifiant.as_str(),
            r.available_on.as_str(),
            r.valid_until.as_str(),
            r.rate.future_rate.as_str(),
            r.rate.future_effective_on.as_str(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Rewrites `dir` (the folder of one establishment): the current CRMs' documents (copied
/// when missing), the overwritten ones removed, `taux.csv` of `rates`.
pub fn rewrite(dir: &Path, crms: &[CrmFile], rates: &[CurrentRate]) -> anyhow::Result<()> {
    iea_runtime::pki::private_dir(dir)?;
    for c in crms {
        let target = dir.join(&c.file_name);
        if !c.current {
            match std::fs::remove_file(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        if target.exists() || c.file_path.is_empty() {
            continue;
        }
        let bytes = std::fs::read(&c.file_path)?;
        write_atomically(&target, &bytes)?;
    }
    write_atomically(&dir.join("taux.csv"), rates_csv(rates).as_bytes())?;
    Ok(())
}
