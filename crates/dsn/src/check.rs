//! The checks made before anything is sent, and the building of a [`Dsn`] from a file
//! that passes them all. Every problem is collected, not only the first.

use iea_declarant::siret_key_is_valid;

use crate::read::{self, Lines};
use crate::{
    Declaration, DeclarationKind, Dsn, Employee, Month, Payment, Problem, ProblemKind, Problems,
    Rubric, Sender, TestOrReal,
};

/// One occurrence of a block: its rubrics, contiguous in the file.
struct Block<'a> {
    rubrics: &'a [Rubric],
}

impl<'a> Block<'a> {
    fn code(&self) -> &'a str {
        self.rubrics[0].block()
    }

    fn line(&self) -> usize {
        self.rubrics[0].line
    }

    fn get(&self, field: u16) -> Option<&'a Rubric> {
        self.rubrics.iter().find(|r| r.field() == field)
    }

    fn value(&self, field: u16) -> Option<String> {
        self.get(field).map(|r| r.value.clone())
    }
}

/// Cuts rubrics into block occurrences: a new one starts when the block code changes or
/// the rubric number does not grow (the same block repeated, as for each employee).
fn blocks(rubrics: &[Rubric]) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=rubrics.len() {
        let cut = i == rubrics.len()
            || rubrics[i].block() != rubrics[i - 1].block()
            || rubrics[i].field() <= rubrics[i - 1].field();
        if cut {
            out.push(Block {
                rubrics: &rubrics[start..i],
            });
            start = i;
        }
    }
    out
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Dsn, Problems> {
    let mut problems = Vec::new();
    let lines = read::read(bytes, &mut problems);
    if lines.blank {
        return Err(Problems(vec![Problem::new(
            None,
            ProblemKind::EmptyFile,
            "le fichier est vide : aucune rubrique à déposer",
        )]));
    }
    let built = Checker {
        lines: &lines,
        problems: &mut problems,
    }
    .run();
    match built {
        Some(parts) if problems.is_empty() => {
            let Lines { rubrics, crlf, .. } = lines;
            let (sender, declaration, employees) = parts;
            Ok(Dsn {
                rubrics,
                sender,
                declaration,
                employees,
                crlf,
            })
        }
        _ => {
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(Problems(problems))
        }
    }
}

struct Checker<'a> {
    lines: &'a Lines,
    problems: &'a mut Vec<Problem>,
}

type Parts = (Sender, Declaration, Vec<Employee>);

impl Checker<'_> {
    fn push(&mut self, line: Option<usize>, kind: ProblemKind, message: impl Into<String>) {
        self.problems.push(Problem::new(line, kind, message));
    }

    fn find(&self, code: &str) -> Option<&Rubric> {
        self.lines.rubrics.iter().find(|r| r.code == code)
    }

    /// The rubric, or a `missing_rubric` problem naming it.
    fn required(&mut self, code: &str, what: &str) -> Option<Rubric> {
        let found = self.find(code).cloned();
        if found.is_none() {
            self.push(
                None,
                ProblemKind::MissingRubric,
                format!("rubrique {code} ({what}) absente"),
            );
        }
        found
    }

    fn run(mut self) -> Option<Parts> {
        let rubrics = &self.lines.rubrics;
        let blocks = blocks(rubrics);

        // The envoi block opens the file.
        if let Some(first) = rubrics.first()
            && first.code != "S10.G00.00.001"
        {
            self.push(
                Some(first.line),
                ProblemKind::FirstRubric,
                format!(
                    "la première rubrique doit être S10.G00.00.001 (nom du logiciel de paie), \
                     lu {}",
                    first.code
                ),
            );
        }

        // One declaration per deposit.
        let declarations: Vec<&Block> =
            blocks.iter().filter(|b| b.code() == "S20.G00.05").collect();
        match declarations.len() {
            0 => self.push(
                None,
                ProblemKind::DeclarationCount,
                "aucune déclaration (bloc S20.G00.05) : le fichier doit en contenir exactement une",
            ),
            1 => {}
            n => {
                let first = declarations[0].line();
                for extra in &declarations[1..] {
                    self.push(
                        Some(extra.line()),
                        ProblemKind::DeclarationCount,
                        format!(
                            "déclaration supplémentaire (bloc S20.G00.05, la première est ligne \
                             {first}) : un dépôt ne contient qu'une déclaration, ce fichier en \
                             contient {n}"
                        ),
                    );
                }
            }
        }

        self.totals();

        let test_or_real = self
            .required("S10.G00.00.005", "essai ou réel")
            .and_then(|r| {
                let v = TestOrReal::from_code(&r.value);
                if v.is_none() {
                    self.push(
                        Some(r.line),
                        ProblemKind::InvalidValue,
                        format!(
                            "S10.G00.00.005 (essai ou réel) doit valoir 01 (essai) ou 02 (réel), \
                             lu « {} »",
                            r.value
                        ),
                    );
                }
                v
            });
        let norm_version = self.required("S10.G00.00.006", "version de la norme");

        let sender_siren = self.required("S10.G00.01.001", "SIREN de l'émetteur");
        let sender_nic = self.required("S10.G00.01.002", "NIC de l'émetteur");
        let sender_ok = self.siret("de l'émetteur", sender_siren.as_ref(), sender_nic.as_ref());
        let siren = self.required("S21.G00.06.001", "SIREN de l'entreprise déclarée");
        let nic = self.required("S21.G00.11.001", "NIC de l'établissement déclaré");
        let declared_ok = self.siret("de l'établissement déclaré", siren.as_ref(), nic.as_ref());

        let declaration = declarations.first().and_then(|d| self.declaration_block(d));
        self.pas_rates();
        let employees = self.employees(&blocks);

        let sender = Sender {
            siren: sender_siren?.value,
            nic: sender_nic?.value,
            name: self.find("S10.G00.01.003").map(|r| r.value.clone()),
            software: self.find("S10.G00.00.001")?.value.clone(),
            publisher: self.find("S10.G00.00.002").map(|r| r.value.clone()),
            software_version: self.find("S10.G00.00.003").map(|r| r.value.clone()),
            deposit_point: self.find("S10.G00.00.007").map(|r| r.value.clone()),
        };
        let (nature, kind, fraction, month, business_id, line) = declaration?;
        if !(sender_ok && declared_ok) {
            return None;
        }
        let declaration = Declaration {
            nature,
            kind,
            fraction,
            month,
            siren: siren?.value,
            nic: nic?.value,
            test_or_real: test_or_real?,
            norm_version: norm_version?.value,
            business_id,
            line,
        };
        Some((sender, declaration, employees))
    }

    /// `S90.G00.90`: number of lines and of declarations.
    fn totals(&mut self) {
        let count = self.lines.count;
        if let Some(r) = self.required("S90.G00.90.001", "nombre de rubriques du fichier")
            && r.value.parse::<usize>().ok() != Some(count)
        {
            self.push(
                Some(r.line),
                ProblemKind::LineCountTotal,
                format!(
                    "S90.G00.90.001 indique « {} » rubriques, le fichier compte {count} lignes",
                    r.value
                ),
            );
        }
        if let Some(r) = self.required("S90.G00.90.002", "nombre de déclarations")
            && r.value.parse::<u32>().ok() != Some(1)
        {
            self.push(
                Some(r.line),
                ProblemKind::DeclarationCountTotal,
                format!(
                    "S90.G00.90.002 indique « {} » déclarations : un dépôt n'en contient qu'une, \
                     la valeur doit être 1",
                    r.value
                ),
            );
        }
    }

    /// A SIREN and a NIC that must make a valid SIRET; true when they do.
    fn siret(&mut self, whose: &str, siren: Option<&Rubric>, nic: Option<&Rubric>) -> bool {
        let (Some(siren), Some(nic)) = (siren, nic) else {
            return false;
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let mut ok = true;
        if !digits(&siren.value, 9) {
            ok = false;
            self.push(
                Some(siren.line),
                ProblemKind::InvalidSiret,
                format!(
                    "SIREN {whose} ({}) invalide : il doit compter 9 chiffres, lu « {} »",
                    siren.code, siren.value
                ),
            );
        }
        if !digits(&nic.value, 5) {
            ok = false;
            self.push(
                Some(nic.line),
                ProblemKind::InvalidSiret,
                format!(
                    "NIC {whose} ({}) invalide : il doit compter 5 chiffres, lu « {} »",
                    nic.code, nic.value
                ),
            );
        }
        if ok && !siret_key_is_valid(&format!("{}{}", siren.value, nic.value)) {
            ok = false;
            self.push(
                Some(nic.line),
                ProblemKind::InvalidSiret,
                format!(
                    "SIRET {whose} {}{} invalide (SIREN ligne {}, NIC ligne {}) : la clé de \
                     contrôle ne correspond pas ; vérifiez le SIREN et le NIC",
                    siren.value, nic.value, siren.line, nic.line
                ),
            );
        }
        ok
    }

    fn declaration_block(
        &mut self,
        d: &Block,
    ) -> Option<(
        String,
        DeclarationKind,
        String,
        Month,
        Option<String>,
        usize,
    )> {
        let field = |this: &mut Self, n: u16, what: &str| {
            let v = d.value(n);
            if v.is_none() {
                this.push(
                    Some(d.line()),
                    ProblemKind::MissingRubric,
                    format!("rubrique S20.G00.05.{n:03} ({what}) absente de la déclaration"),
                );
            }
            v
        };
        let nature = field(self, 1, "nature de la déclaration");
        let kind = field(self, 2, "type de la déclaration");
        let fraction = field(self, 3, "numéro de fraction");
        let month_value = field(self, 5, "mois principal déclaré");
        let month = match (d.get(5), month_value) {
            (Some(r), Some(v)) => {
                let m = Month::from_dsn(&v);
                if m.is_none() {
                    self.push(
                        Some(r.line),
                        ProblemKind::InvalidMonth,
                        format!(
                            "mois principal déclaré (S20.G00.05.005) invalide : attendu 01MMAAAA, \
                             premier jour d'un mois réel (par exemple 01032025), lu « {v} »"
                        ),
                    );
                }
                m
            }
            _ => None,
        };
        Some((
            nature?,
            DeclarationKind::from_code(&kind?),
            fraction?,
            month?,
            d.value(9),
            d.line(),
        ))
    }

    /// `S21.G00.50.006` written `[0-9]{1,2}.[0-9]{2}` wherever present.
    fn pas_rates(&mut self) {
        let bad: Vec<usize> = self
            .lines
            .rubrics
            .iter()
            .filter(|r| r.code == "S21.G00.50.006" && !pas_rate_ok(&r.value))
            .map(|r| r.line)
            .collect();
        for line in bad {
            self.push(
                Some(line),
                ProblemKind::InvalidPasRate,
                "taux de prélèvement à la source (S21.G00.50.006) mal écrit : attendu un ou deux \
                 chiffres, un point et deux décimales, par exemple 7.50",
            );
        }
    }

    /// Each `S21.G00.30` opens an employee; the `S21.G00.50` that follow are theirs.
    fn employees(&mut self, blocks: &[Block]) -> Vec<Employee> {
        let mut out: Vec<Employee> = Vec::new();
        for b in blocks {
            match b.code() {
                "S21.G00.30" => {
                    let need = |this: &mut Self, n: u16, what: &str| {
                        let v = b.value(n);
                        if v.is_none() {
                            this.push(
                                Some(b.line()),
                                ProblemKind::MissingRubric,
                                format!("rubrique S21.G00.30.{n:03} ({what}) absente du salarié"),
                            );
                        }
                        v.unwrap_or_default()
                    };
                    let nom = need(self, 2, "nom de famille");
                    let prenoms = need(self, 4, "prénoms");
                    out.push(Employee {
                        nir: b.value(1),
                        ntt: b.value(20),
                        matricule: b.value(19),
                        nom,
                        prenoms,
                        payments: Vec::new(),
                        line: b.line(),
                    });
                }
                "S21.G00.50" => {
                    let payment = Payment {
                        line: b.line(),
                        date: b.value(1),
                        pas_rate: b.value(6),
                        rate_type: b.value(7),
                        rate_identifier: b.value(8),
                        pas_amount: b.value(9),
                        amount_subject: b.value(13),
                    };
                    match out.last_mut() {
                        Some(e) => e.payments.push(payment),
                        None => self.push(
                            Some(b.line()),
                            ProblemKind::MisplacedBlock,
                            "versement (bloc S21.G00.50) avant tout salarié (bloc S21.G00.30)",
                        ),
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// `[0-9]{1,2}\.[0-9]{2}`.
pub(crate) fn pas_rate_ok(v: &str) -> bool {
    let Some((int, dec)) = v.split_once('.') else {
        return false;
    };
    (1..=2).contains(&int.len())
        && dec.len() == 2
        && int.bytes().chain(dec.bytes()).all(|b| b.is_ascii_digit())
}
