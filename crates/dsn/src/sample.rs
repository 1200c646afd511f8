//! Writes a valid DSN file for demos and tests: a monthly declaration of one
//! establishment, its employees with made-up but valid-looking identities (NIR, names
//! with accented letters), contracts and payments with the withholding-tax (PAS) fields
//! consistent with each other. Everything is derived from the seed: the same spec gives
//! the same bytes.

use crate::read::to_latin1;
use crate::{DeclarationKind, Month, TestOrReal};

/// What [`sample`] writes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SampleSpec {
    /// The declared establishment's SIRET, also the sender's (14 digits, checked by the
    /// caller: a wrong one is written as given, and [`crate::Dsn::parse`] refuses it).
    pub siret: String,
    pub month: Month,
    pub employees: usize,
    pub test_or_real: TestOrReal,
    pub kind: DeclarationKind,
    /// Names, NIRs, pay and rates are derived from it.
    pub seed: u64,
}

impl SampleSpec {
    /// A test, normal declaration with seed 0.
    pub fn new(siret: impl Into<String>, month: Month, employees: usize) -> Self {
        SampleSpec {
            siret: siret.into(),
            month,
            employees,
            test_or_real: TestOrReal::Test,
            kind: DeclarationKind::Normal,
            seed: 0,
        }
    }
}

/// Software name written in `S10.G00.00.001`.
pub const SOFTWARE: &str = "iea-connect";
/// Norm version written in `S10.G00.00.006`.
pub const NORM_VERSION: &str = "P24V01";

const NOMS: &[&str] = &[
    "MARTIN",
    "BERNARD",
    "LEFÈVRE",
    "MÉNARD",
    "GARÇON",
    "DUPONT",
    "BÉRANGER",
    "PETIT",
    "FAURÉ",
    "ROUSSEAU",
    "NOËL",
    "CHÂTEAU",
    "LEMAÎTRE",
    "GIRAUD",
    "BOUCHÉ",
    "MOREAU",
];

/// Prénoms with the sex code of `S21.G00.30.005` (01 man, 02 woman), which the NIR's
/// first digit repeats.
const PRENOMS: &[(&str, u8)] = &[
    ("Élodie", 2),
    ("Jérôme", 1),
    ("François", 1),
    ("Chloé", 2),
    ("Zoé", 2),
    ("Hélène", 2),
    ("Noël", 1),
    ("Gaëlle", 2),
    ("Loïc", 1),
    ("Anaïs", 2),
    ("Benoît", 1),
    ("Cécile", 2),
    ("Agnès", 2),
    ("Raphaël", 1),
    ("Thérèse", 2),
    ("Aurélien", 1),
];

/// Personalised rates the tax office might send (type 01).
const DGFIP_RATES: &[u32] = &[0, 90, 250, 430, 750, 1120, 1400, 1680, 2030];

/// 2024 neutral scale for metropolitan France (type 13): monthly base ceiling in cents,
/// rate in hundredths of a percent.
const NEUTRAL_SCALE: &[(u64, u32)] = &[
    (159_100, 0),
    (165_300, 50),
    (175_900, 130),
    (187_800, 210),
    (200_600, 290),
    (211_300, 350),
    (225_300, 410),
    (266_600, 530),
    (305_200, 750),
    (347_600, 990),
    (402_100, 1190),
    (473_400, 1380),
    (561_000, 1580),
    (653_100, 1790),
    (749_200, 2000),
    (870_600, 2400),
    (1_035_100, 2800),
    (1_251_800, 3300),
    (1_585_800, 3800),
    (2_042_400, 4300),
    (u64::MAX, 4500),
];

/// splitmix64: small, deterministic, good enough to pick sample data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// Writes lines `code,'value'` in ISO-8859-1 and counts them.
struct Writer {
    bytes: Vec<u8>,
    lines: usize,
}

impl Writer {
    fn put(&mut self, code: &str, value: &str) {
        self.bytes.extend_from_slice(code.as_bytes());
        self.bytes.extend_from_slice(b",'");
        // Every value here is made of characters up to U+00FF; any other would be '?'.
        let encoded = to_latin1(value).unwrap_or_else(|| {
            value
                .chars()
                .map(|c| u8::try_from(c).unwrap_or(b'?'))
                .collect()
        });
        self.bytes.extend_from_slice(&encoded);
        self.bytes.extend_from_slice(b"'\n");
        self.lines += 1;
    }
}

/// Cents as the DSN writes amounts: `1234.56`.
fn amount(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Hundredths of a percent as the PAS rate: `14.00`.
fn rate(hundredths: u32) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// PAS amount: base × rate, rounded to the nearest cent (half up).
pub(crate) fn pas_cents(base_cents: u64, rate_hundredths: u32) -> u64 {
    (base_cents * u64::from(rate_hundredths) + 5_000) / 10_000
}

/// Writes a valid DSN (ISO-8859-1 bytes, LF line ends).
pub fn sample(spec: &SampleSpec) -> Vec<u8> {
    let mut rng = Rng(spec.seed ^ 0x1EA_C0DE);
    let mut w = Writer {
        bytes: Vec::with_capacity(1_024 + spec.employees * 400),
        lines: 0,
    };
    let siren = spec.siret.get(..9).unwrap_or(&spec.siret);
    let nic = spec.siret.get(9..).unwrap_or("");
    let month = spec.month;
    let last_day = format!("{:02}{:02}{:04}", month.days(), month.month, month.year);
    let next = month.next();

    w.put("S10.G00.00.001", SOFTWARE);
    w.put("S10.G00.00.002", "iea-connect");
    w.put("S10.G00.00.003", env!("CARGO_PKG_VERSION"));
    w.put("S10.G00.00.005", spec.test_or_real.code());
    w.put("S10.G00.00.006", NORM_VERSION);
    w.put("S10.G00.00.007", "01");
    w.put("S10.G00.01.001", siren);
    w.put("S10.G00.01.002", nic);
    w.put("S10.G00.01.003", "ASSOCIATION SPORTIVE DES ÉTANGS");
    w.put("S10.G00.01.004", "12 RUE DE LA RÉPUBLIQUE");
    w.put("S10.G00.01.005", "69002");
    w.put("S10.G00.01.006", "LYON");
    w.put("S10.G00.02.001", "01");
    w.put("S10.G00.02.002", "SERVICE PAIE");
    w.put("S10.G00.02.004", "paie@association.example");
    w.put("S10.G00.02.005", "0400000000");
    w.put("S20.G00.05.001", "01");
    w.put("S20.G00.05.002", spec.kind.code());
    w.put("S20.G00.05.003", "11");
    w.put("S20.G00.05.004", "1");
    w.put("S20.G00.05.005", &month.to_dsn());
    w.put(
        "S20.G00.05.007",
        &format!("05{:02}{:04}", next.month, next.year),
    );
    w.put("S20.G00.05.008", "01");
    w.put(
        "S20.G00.05.009",
        &format!("{}{:04}{:02}11", spec.siret, month.year, month.month),
    );
    w.put("S20.G00.05.010", "01");
    w.put("S21.G00.06.001", siren);
    w.put("S21.G00.06.002", "9499Z");
    w.put("S21.G00.06.003", "12 RUE DE LA RÉPUBLIQUE");
    w.put("S21.G00.06.004", "69002");
    w.put("S21.G00.06.005", "LYON");
    w.put("S21.G00.11.001", nic);
    w.put("S21.G00.11.002", "9499Z");
    w.put("S21.G00.11.003", "12 RUE DE LA RÉPUBLIQUE");
    w.put("S21.G00.11.004", "69002");
    w.put("S21.G00.11.005", "LYON");

    // One CRM identifier for the file, as one CRM gives the rates of every employee.
    let rate_identifier = rng
        .range(100_000_000_000_000_000, 999_999_999_999_999_999)
        .to_string();
    for i in 0..spec.employees {
        let nom = *rng.pick(NOMS);
        let (prenom, sex) = *rng.pick(PRENOMS);
        // A second prénom of the same sex, different from the first.
        let same: Vec<&str> = PRENOMS
            .iter()
            .filter(|(p, x)| *x == sex && *p != prenom)
            .map(|(p, _)| *p)
            .collect();
        let second = *rng.pick(&same);
        let year = rng.range(1960, 2005);
        let birth_month = rng.range(1, 12);
        let day = rng.range(1, 28);
        let dept = match rng.range(1, 94) {
            20 => 95,
            d => d,
        };
        let nir = format!(
            "{sex}{:02}{birth_month:02}{dept:02}{:03}{:03}",
            year % 100,
            rng.range(1, 899),
            rng.range(1, 999)
        );
        w.put("S21.G00.30.001", &nir);
        w.put("S21.G00.30.002", nom);
        w.put("S21.G00.30.004", &format!("{prenom} {second}"));
        w.put("S21.G00.30.005", &format!("{sex:02}"));
        w.put(
            "S21.G00.30.006",
            &format!("{day:02}{birth_month:02}{year:04}"),
        );
        w.put("S21.G00.30.019", &format!("M{:05}", i + 1));

        // Hired at 18 at the earliest, before the declared year.
        let earliest = (year + 18).max(2000);
        let hired = rng.range(
            earliest,
            u64::try_from(month.year - 1).unwrap_or(0).max(earliest),
        );
        w.put(
            "S21.G00.40.001",
            &format!("{:02}{:02}{hired:04}", rng.range(1, 28), rng.range(1, 12)),
        );
        w.put("S21.G00.40.007", "01");
        w.put("S21.G00.40.009", &format!("{:05}", i + 1));

        let base = rng.range(80_000, 400_000);
        let (rate_type, hundredths) = match rng.range(0, 9) {
            0..=6 => ("01", *rng.pick(DGFIP_RATES)),
            7 | 8 => (
                "13",
                NEUTRAL_SCALE
                    .iter()
                    .find(|(ceiling, _)| base <= *ceiling)
                    .map_or(0, |(_, r)| *r),
            ),
            _ => ("99", 0),
        };
        let pas = pas_cents(base, hundredths);
        w.put("S21.G00.50.001", &last_day);
        w.put("S21.G00.50.002", &amount(base));
        w.put("S21.G00.50.004", &amount(base - pas));
        w.put("S21.G00.50.006", &rate(hundredths));
        w.put("S21.G00.50.007", rate_type);
        if rate_type == "01" {
            w.put("S21.G00.50.008", &rate_identifier);
        }
        w.put("S21.G00.50.009", &amount(pas));
        w.put("S21.G00.50.013", &amount(base));
    }

    let total = w.lines + 2;
    w.put("S90.G00.90.001", &total.to_string());
    w.put("S90.G00.90.002", "1");
    w.bytes
}
