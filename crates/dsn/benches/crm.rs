//! Reading a CRM nominatif of 10,000 employees (nature 94) with `iea_dsn::returns`:
//! prints the document's size, the best and median time of several reads, and bytes/s.
//!
//! `cargo bench -p iea-dsn --bench crm` (release build). `IEA_BENCH_EMPLOYEES` changes
//! the number of employees, `IEA_BENCH_RUNS` the number of reads (default 20).

use std::time::{Duration, Instant};

use iea_dsn::returns::{self, DEFAULT_MAX_BYTES};

/// A CRM as the Net-entreprises mock writes it: every employee with a NIR, a matricule
/// and a rate, one in ten with a future rate, one in a hundred with a TST01 anomaly.
fn crm(employees: usize) -> String {
    let mut salaries = String::with_capacity(employees * 140);
    let mut anomalies = String::new();
    for i in 0..employees {
        let future = if i % 10 == 0 {
            "<future_imposition_PAS><taux>9.90</taux><date_effet>2027-01-01</date_effet></future_imposition_PAS>"
        } else {
            ""
        };
        salaries.push_str(&format!(
            "<salarie><NIR>{}{:012}</NIR><matricule>M{i:06}</matricule><taux_imposition_PAS>{}.{}0</taux_imposition_PAS>{future}</salarie>",
            1 + i % 2,
            i,
            i % 26,
            i % 10
        ));
        if i % 100 == 0 {
            anomalies.push_str(&format!(
                "<declaration_anomalie><description><code>TST01</code><categorie>non-bloquant</categorie><message>Le taux appliqué n&apos;est pas le taux valide transmis par la DGFiP.</message></description>\
                 <valeurs><rubrique_declenchante><identifiant>S21.G00.50.006</identifiant><ligne>{}</ligne><valeur>4.50</valeur></rubrique_declenchante></valeurs>\
                 <environnement><salarie origine=\"DSN\"><NIR>1{i:012}</NIR><matricule>M{i:06}</matricule></salarie></environnement></declaration_anomalie>",
                20 + i * 12
            ));
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"CRM nominatif\" version=\"v01r07\" identifiant=\"123456789123456789\" message=\"Notice.\">\
         <envoi><envoi_identification><idflux>AbCdEfGhIjKlMnOpQrStUv1</idflux><version_norme>P24V01</version_norme><emetteur_siret>78214563500010</emetteur_siret></envoi_identification>\
         <envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>\
         <declaration><declaration_identification><rang>1</rang><type>01</type><identifiant_metier></identifiant_metier><SIREN>782145635</SIREN><nic_affectation>00010</nic_affectation><mois>2026-11</mois></declaration_identification>\
         <declaration_bilan><etat>OK</etat><declaration_contenu><salaries>{employees}</salaries></declaration_contenu>{salaries}</declaration_bilan>{anomalies}</declaration></gipmds:rapport>"
    )
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let employees = env("IEA_BENCH_EMPLOYEES", 10_000);
    let runs = env("IEA_BENCH_RUNS", 20).max(1);
    let xml = crm(employees);
    let bytes = xml.as_bytes();
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let crm = returns::read_crm(std::hint::black_box(bytes), DEFAULT_MAX_BYTES)
            .expect("the generated CRM is read");
        times.push(started.elapsed());
        assert_eq!(crm.employees.len(), employees);
        std::hint::black_box(crm);
    }
    times.sort();
    let best = times[0];
    let median = times[times.len() / 2];
    let rate = |d: Duration| bytes.len() as f64 / d.as_secs_f64();
    println!(
        "crm: {employees} employees, {} bytes ({:.2} MiB), {runs} reads",
        bytes.len(),
        bytes.len() as f64 / (1 << 20) as f64
    );
    println!(
        "crm: best {:.2} ms ({:.1} MB/s), median {:.2} ms ({:.1} MB/s, {:.0} bytes/s)",
        best.as_secs_f64() * 1e3,
        rate(best) / 1e6,
        median.as_secs_f64() * 1e3,
        rate(median) / 1e6,
        rate(median)
    );
}
