use super::*;

const MAX: usize = DEFAULT_MAX_BYTES;

const AEE: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<gipmds:rapport type="AEE" profil="DSN" version="v01r04" xmlns:gipmds="http://www.gip-mds.fr/">
 <envoi><envoi_identification>
  <declarant><siret>99999106200019</siret><nom>TEST</nom><prenom>MICHEL</prenom></declarant>
  <idflux>UR5WJEBAhi54RcZN8Lur71F</idflux><identifiant>MtoM</identifiant>
  <point_de_depot>01</point_de_depot><essai_reel>02</essai_reel>
  <emetteur_siret>99999106200019</emetteur_siret>
  <date_reception>2014-01-15</date_reception><heure_reception>14:47:42</heure_reception>
  <date_enregistrement>2014-01-15</date_enregistrement><heure_enregistrement>14:47:42</heure_enregistrement>
 </envoi_identification>
 <envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi></gipmds:rapport>"#;

/// As the Net-entreprises mock writes a list of anomalies (one line).
const BILAN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"Bilan d'anomalies\" version=\"v01r04\">\
<envoi><envoi_identification><idflux>AbCdEfGhIjKlMnOpQrStUv1</idflux><version_norme>P24V01</version_norme><emetteur_siret>78214563500010</emetteur_siret></envoi_identification>\
<envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>\
<declaration><declaration_identification><rang>1</rang><type>01</type><identifiant_metier>M1</identifiant_metier><SIREN>782145635</SIREN><nic_affectation>00010</nic_affectation><mois>2026-11</mois></declaration_identification>\
<declaration_bilan><etat>KO</etat></declaration_bilan>\
<declaration_anomalie><description><code>CCH-PAS-01</code><categorie>bloquant</categorie><message>Le montant du pr\u{e9}l\u{e8}vement \u{e0} la source ne correspond pas (attendu 67.50 \u{e0} 1 \u{20ac} pr\u{e8}s).</message></description>\
<valeurs><rubrique_declenchante><identifiant>S21.G00.50.009</identifiant><ligne>57</ligne><valeur>98765.43</valeur></rubrique_declenchante></valeurs>\
<environnement><salarie origine=\"DSN\"><NIR>1850775123456</NIR><matricule>M-042</matricule></salarie></environnement></declaration_anomalie>\
<declaration_anomalie><description><code>CCH-PAS-03</code><categorie>non-bloquant</categorie><message>Identifiant de taux absent.</message></description></declaration_anomalie>\
</declaration></gipmds:rapport>";

const CERTIFICAT: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"Certificat de conformit\u{e9}\" version=\"v01r04\">\
<envoi><envoi_identification><idflux>AbCdEfGhIjKlMnOpQrStUv1</idflux><version_norme>P24V01</version_norme><emetteur_siret>78214563500010</emetteur_siret></envoi_identification>\
<envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>\
<declaration><declaration_identification><rang>1</rang><type>01</type><identifiant_metier></identifiant_metier><SIREN>782145635</SIREN><nic_affectation>00010</nic_affectation><mois>2026-11</mois></declaration_identification>\
<declaration_bilan><etat>OK</etat></declaration_bilan></declaration></gipmds:rapport>";

/// A CRM as the mock writes it, with `salaries` inside `declaration_bilan`.
fn crm_xml(salaries: &str, anomalies: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><gipmds:rapport xmlns:gipmds=\"http://www.gip-mds.fr/\" profil=\"DSN\" type=\"CRM nominatif\" version=\"v01r07\" identifiant=\"123456789123456789\" \
         message=\"En cas d&apos;absence de taux communiqu\u{e9} par la DGFIP, appliquez le taux non personnalis\u{e9}.\">\
         <envoi><envoi_identification><idflux>AbCdEfGhIjKlMnOpQrStUv1</idflux><version_norme>P24V01</version_norme><emetteur_siret>78214563500010</emetteur_siret></envoi_identification>\
         <envoi_bilan><envoi_etat>OK</envoi_etat></envoi_bilan></envoi>\
         <declaration><declaration_identification><rang>1</rang><type>01</type><identifiant_metier></identifiant_metier><SIREN>782145635</SIREN><nic_affectation>00010</nic_affectation><mois>2026-11</mois></declaration_identification>\
         <declaration_bilan><etat>OK</etat><declaration_contenu><salaries>3</salaries></declaration_contenu>{salaries}</declaration_bilan>{anomalies}</declaration></gipmds:rapport>"
    )
}

const SALARIES: &str = "<salarie><NIR>1850775123456</NIR><matricule>M-042</matricule><taux_imposition_PAS>7.50</taux_imposition_PAS></salarie>\
<salarie><NTT>NTT0000000042</NTT><matricule>M-043</matricule><taux_imposition_PAS></taux_imposition_PAS></salarie>\
<salarie><NIR>2900175123456</NIR><taux_imposition_PAS>14.00</taux_imposition_PAS><future_imposition_PAS><taux>10.10</taux><date_effet>2027-01-01</date_effet></future_imposition_PAS></salarie>";

const TST01: &str = "<declaration_anomalie><description><code>TST01</code><categorie>non-bloquant</categorie><message>Le taux appliqu\u{e9} n&apos;est pas le taux valide transmis par la DGFiP (7.50).</message></description>\
<valeurs><rubrique_declenchante><identifiant>S21.G00.50.006</identifiant><ligne>40</ligne><valeur>4.50</valeur></rubrique_declenchante></valeurs>\
<environnement><salarie origine=\"DSN\"><NIR>1850775123456</NIR><matricule>M-042</matricule></salarie></environnement></declaration_anomalie>";

#[test]
fn nature_10_the_kits_aee_is_read() {
    assert_eq!(
        read_acknowledgement(AEE.as_bytes(), MAX).unwrap(),
        Acknowledgement::Accepted(Accepted {
            idflux: "UR5WJEBAhi54RcZN8Lur71F".into(),
            date_enregistrement: "2014-01-15".into(),
            heure_enregistrement: "14:47:42".into(),
            essai_reel: "02".into(),
        })
    );
    let doc = read_nature(10, AEE.as_bytes(), MAX).unwrap();
    assert_eq!(doc.kind(), Kind::Acknowledgement);
    assert_eq!(doc.kind().nature(), 10);
}

#[test]
fn nature_10_an_are_gives_its_anomalies() {
    let are = r#"<gipmds:rapport type="ARE" profil="DSN" version="v01r04" xmlns:gipmds="http://www.gip-mds.fr/">
 <envoi><envoi_identification><idflux>UR5WJEBAhi54RcZN8Lur71F</idflux><essai_reel/></envoi_identification>
 <envoi_bilan><envoi_etat>KO</envoi_etat></envoi_bilan>
 <envoi_anomalie><description><code>B1-105-15</code><message>Le format du fichier n'est pas reconnu.</message></description>
 <description><code>X</code><message>Deux &amp; trois</message></description></envoi_anomalie></envoi></gipmds:rapport>"#;
    let Acknowledgement::Rejected(r) = read_acknowledgement(are.as_bytes(), MAX).unwrap() else {
        panic!("an ARE")
    };
    assert_eq!(r.idflux.as_deref(), Some("UR5WJEBAhi54RcZN8Lur71F"));
    assert_eq!(
        r.anomalies,
        [
            RejectionAnomaly {
                code: "B1-105-15".into(),
                message: "Le format du fichier n'est pas reconnu.".into()
            },
            RejectionAnomaly {
                code: "X".into(),
                message: "Deux & trois".into()
            }
        ]
    );
}

#[test]
fn nature_10_a_bad_aee_is_refused_with_its_reason() {
    let read = |s: &str| read_acknowledgement(s.as_bytes(), MAX).unwrap_err();
    assert_eq!(
        read("<rapport type=\"AEE\"><envoi_etat>OK</envoi_etat></rapport>"),
        ReturnError::Missing { field: "idflux" }
    );
    assert_eq!(
        read("<rapport type=\"AEE\"><idflux>a-b</idflux><envoi_etat>OK</envoi_etat></rapport>")
            .code(),
        "invalid_value"
    );
    assert_eq!(
        read("<rapport type=\"AEE\"><idflux>ab</idflux><envoi_etat>KO</envoi_etat></rapport>")
            .code(),
        "invalid_value"
    );
    assert_eq!(read("<autre/>"), ReturnError::NotAReport);
    assert_eq!(read("<rapport type=\"XYZ\"/>"), ReturnError::UnknownType);
    assert_eq!(read("not xml").code(), "malformed");
}

#[test]
fn nature_11_a_list_of_anomalies_names_code_message_and_rubric() {
    let c = read_conformity(BILAN.as_bytes(), MAX).unwrap();
    assert_eq!(c.idflux, "AbCdEfGhIjKlMnOpQrStUv1");
    assert_eq!(c.kind, ConformityKind::AnomalyList);
    assert_eq!(c.status, ReturnStatus::Ko);
    assert!(!c.is_conforming());
    assert_eq!(c.declaration.siret().as_deref(), Some("78214563500010"));
    assert_eq!(c.declaration.month, Some(Month::new(2026, 11).unwrap()));
    assert_eq!(c.declaration.kind.as_deref(), Some("01"));
    assert_eq!(c.declaration.business_id.as_deref(), Some("M1"));
    assert_eq!(c.anomalies.len(), 2);
    let a = &c.anomalies[0];
    assert_eq!(a.code, "CCH-PAS-01");
    assert_eq!(a.category, Category::Blocking);
    assert!(
        a.message.starts_with("Le montant du prélèvement"),
        "{}",
        a.message
    );
    assert_eq!(a.rubric.as_deref(), Some("S21.G00.50.009"));
    assert_eq!(a.line, Some(57));
    assert_eq!(a.value.as_deref(), Some("98765.43"));
    let e = a.employee.as_ref().unwrap();
    assert_eq!(e.id, Some(PersonId::Nir("1850775123456".into())));
    assert_eq!(e.matricule.as_deref(), Some("M-042"));
    let b = &c.anomalies[1];
    assert_eq!(
        (b.code.as_str(), &b.category, &b.rubric, &b.employee),
        ("CCH-PAS-03", &Category::NonBlocking, &None, &None)
    );
}

#[test]
fn nature_11_a_certificate_is_conforming() {
    let ReturnDocument::Conformity(c) = read_nature(11, CERTIFICAT.as_bytes(), MAX).unwrap() else {
        panic!("conformity")
    };
    assert_eq!(c.kind, ConformityKind::Certificate);
    assert_eq!(c.status, ReturnStatus::Ok);
    assert!(c.is_conforming());
    assert!(c.anomalies.is_empty());
    // An empty element is absent.
    assert_eq!(c.declaration.business_id, None);
    // An overwritten certificate (the mock changes `etat`) says its new status.
    let ko = CERTIFICAT.replace("<etat>OK</etat>", "<etat>KO</etat>");
    assert_eq!(
        read_conformity(ko.as_bytes(), MAX).unwrap().status,
        ReturnStatus::Ko
    );
}

#[test]
fn nature_94_each_employee_gets_a_rate_in_hundredths() {
    let xml = crm_xml(SALARIES, TST01);
    let crm = read_crm(xml.as_bytes(), MAX).unwrap();
    assert_eq!(crm.identifier.as_str(), "123456789123456789");
    assert_eq!(crm.idflux, "AbCdEfGhIjKlMnOpQrStUv1");
    assert_eq!(crm.status, ReturnStatus::Ok);
    assert_eq!((crm.siren(), crm.nic()), ("782145635", "00010"));
    assert_eq!(crm.siret(), "78214563500010");
    assert_eq!(crm.declaration.month, Some(Month::new(2026, 11).unwrap()));
    assert_eq!(crm.announced_employees, Some(3));
    assert!(
        crm.notice
            .as_deref()
            .unwrap()
            .starts_with("En cas d'absence")
    );
    assert_eq!(crm.employees.len(), 3);

    let e = &crm.employees[0];
    assert_eq!(e.id, PersonId::Nir("1850775123456".into()));
    assert_eq!(e.matricule.as_deref(), Some("M-042"));
    assert_eq!(e.rate.map(Rate::hundredths), Some(750));
    assert_eq!(e.rate.unwrap().to_string(), "7.50");
    assert_eq!(e.future, None);

    let e = &crm.employees[1];
    assert_eq!(e.id, PersonId::Ntt("NTT0000000042".into()));
    assert_eq!(e.rate, None, "an empty rate is no rate");

    let e = &crm.employees[2];
    assert_eq!(e.matricule, None);
    assert_eq!(e.rate.map(Rate::hundredths), Some(1400));
    let f = e.future.unwrap();
    assert_eq!(f.rate.hundredths(), 1010);
    assert_eq!(f.from, CalendarDate::new(2027, 1, 1).unwrap());
    assert_eq!(f.from.to_string(), "2027-01-01");

    assert_eq!(crm.anomalies.len(), 1);
    let a = &crm.anomalies[0];
    assert_eq!(a.code, "TST01");
    assert_eq!(a.category, Category::NonBlocking);
    assert_eq!(a.rubric.as_deref(), Some("S21.G00.50.006"));
    assert_eq!(a.line, Some(40));
    assert_eq!(
        a.employee.as_ref().unwrap().id,
        Some(PersonId::Nir("1850775123456".into()))
    );
    // The dispatcher gives the same.
    assert_eq!(
        read(xml.as_bytes(), MAX).unwrap(),
        ReturnDocument::Crm(crm.clone())
    );
}

#[test]
fn nature_94_bad_values_are_refused_naming_the_employee_by_position_only() {
    let bad_rate = SALARIES.replace("14.00", "14,00");
    let e = read_crm(crm_xml(&bad_rate, "").as_bytes(), MAX).unwrap_err();
    assert_eq!(
        e,
        ReturnError::Invalid {
            field: "taux_imposition_PAS",
            employee: Some(3)
        }
    );
    assert!(e.to_string().contains("salarié n° 3"), "{e}");
    assert!(!e.to_string().contains("14,00"));
    for (from, to, field) in [
        ("10.10", "110.10", "future_imposition_PAS/taux"),
        (
            "2027-01-01",
            "2027-02-30",
            "future_imposition_PAS/date_effet",
        ),
        (
            "<date_effet>2027-01-01</date_effet>",
            "",
            "future_imposition_PAS",
        ),
        ("<NIR>2900175123456</NIR>", "", "NIR ou NTT"),
    ] {
        let e = read_crm(crm_xml(&SALARIES.replace(from, to), "").as_bytes(), MAX).unwrap_err();
        assert_eq!(
            e,
            ReturnError::Invalid {
                field,
                employee: Some(3)
            },
            "{from} → {to}"
        );
    }
    let no_id = crm_xml(SALARIES, "").replace(" identifiant=\"123456789123456789\"", "");
    assert_eq!(
        read_crm(no_id.as_bytes(), MAX).unwrap_err(),
        ReturnError::Missing {
            field: "identifiant"
        }
    );
    let long_id = crm_xml(SALARIES, "").replace("123456789123456789", "1234567891234567890");
    assert_eq!(
        read_crm(long_id.as_bytes(), MAX).unwrap_err().code(),
        "invalid_value"
    );
    let no_siren = crm_xml(SALARIES, "").replace("<SIREN>782145635</SIREN>", "");
    assert_eq!(
        read_crm(no_siren.as_bytes(), MAX).unwrap_err(),
        ReturnError::Missing { field: "SIREN" }
    );
    let two = crm_xml(SALARIES, "").replace("</declaration>", "</declaration><declaration/>");
    assert_eq!(
        read_crm(two.as_bytes(), MAX).unwrap_err().code(),
        "invalid_value"
    );
}

#[test]
fn a_document_of_another_kind_than_announced_is_refused() {
    let crm = crm_xml(SALARIES, "");
    assert_eq!(
        read_nature(11, crm.as_bytes(), MAX).unwrap_err(),
        ReturnError::WrongKind {
            expected: Kind::Conformity,
            found: Kind::Crm
        }
    );
    assert_eq!(
        read_crm(AEE.as_bytes(), MAX).unwrap_err(),
        ReturnError::WrongKind {
            expected: Kind::Crm,
            found: Kind::Acknowledgement
        }
    );
    assert_eq!(
        read_nature(20, AEE.as_bytes(), MAX).unwrap_err(),
        ReturnError::UnsupportedNature(20)
    );
}

#[test]
fn a_doctype_is_refused_even_empty_and_before_anything_is_parsed() {
    let with_entity = r#"<?xml version="1.0"?><!DOCTYPE rapport [<!ENTITY nir "1850775123456">]><rapport type="AEE"><idflux>&nir;</idflux></rapport>"#;
    assert_eq!(
        read(with_entity.as_bytes(), MAX).unwrap_err(),
        ReturnError::Doctype
    );
    let empty = "<!doctype rapport><rapport type=\"AEE\"/>";
    assert_eq!(
        read(empty.as_bytes(), MAX).unwrap_err(),
        ReturnError::Doctype
    );
    let external = r#"<!DOCTYPE rapport SYSTEM "http://example.invalid/x.dtd"><rapport/>"#;
    assert_eq!(
        read(external.as_bytes(), MAX).unwrap_err(),
        ReturnError::Doctype
    );
    assert!(ReturnError::Doctype.is_hostile());
    assert!(has_doctype(b"<a><!-- <!DocType x> --></a>"));
    assert!(!has_doctype(AEE.as_bytes()));
}

#[test]
fn billion_laughs_is_refused_at_once() {
    let mut xml = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        xml.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    xml.push_str("]><rapport type=\"CRM nominatif\">&lol9;</rapport>");
    let started = std::time::Instant::now();
    assert_eq!(read(xml.as_bytes(), MAX).unwrap_err(), ReturnError::Doctype);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn an_undeclared_entity_is_refused() {
    let e = read(
        b"<rapport type=\"AEE\"><idflux>&xxe;</idflux></rapport>",
        MAX,
    )
    .unwrap_err();
    assert_eq!(e, ReturnError::Entity { row: 1 });
    assert!(e.is_hostile());
    // XML's predefined entities and character references are text.
    let ok = CERTIFICAT.replace("<type>01</type>", "<type>&#48;1</type>");
    assert_eq!(
        read_conformity(ok.as_bytes(), MAX)
            .unwrap()
            .declaration
            .kind
            .as_deref(),
        Some("01")
    );
}

#[test]
fn a_document_past_the_callers_cap_is_refused_unread() {
    let xml = crm_xml(SALARIES, "");
    let cap = xml.len() - 1;
    let e = read_crm(xml.as_bytes(), cap).unwrap_err();
    assert_eq!(
        e,
        ReturnError::TooLarge {
            size: xml.len(),
            max: cap
        }
    );
    assert!(e.to_string().contains("au-delà de la limite"), "{e}");
    assert!(read_crm(xml.as_bytes(), xml.len()).is_ok());
}

#[test]
fn malformed_documents_give_a_position_never_content() {
    for bad in [
        "",
        "<rapport type=\"AEE\">",
        "<rapport type=\"AEE\"><idflux>1850775123456</idfluxx></rapport>",
        "<a></b>",
        "<rapport type=\"AEE\"></rapport><second/>",
    ] {
        let e = read(bad.as_bytes(), MAX).unwrap_err();
        assert_eq!(e.code(), "malformed", "{bad:?}: {e:?}");
        assert!(!e.to_string().contains("1850775123456"));
        assert!(!e.is_hostile());
    }
    // Not UTF-8, nothing declared.
    assert_eq!(
        read(b"<rapport type=\"AEE\">caf\xe9</rapport>", MAX).unwrap_err(),
        ReturnError::Encoding
    );
}

#[test]
fn iso_8859_1_is_read_when_declared() {
    let xml = CERTIFICAT
        .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"")
        .replace(
            "<identifiant_metier></identifiant_metier>",
            "<identifiant_metier>caf\u{e9}</identifiant_metier>",
        );
    let latin1: Vec<u8> = xml
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    let c = read_conformity(&latin1, MAX).unwrap();
    assert_eq!(c.kind, ConformityKind::Certificate);
    assert_eq!(c.declaration.business_id.as_deref(), Some("café"));
    let other = CERTIFICAT.replace("encoding=\"UTF-8\"", "encoding=\"UTF-16\"");
    assert_eq!(
        read(other.as_bytes(), MAX).unwrap_err(),
        ReturnError::Encoding
    );
}

#[test]
fn debug_never_shows_nirs_matricules_rates_nor_anomaly_text() {
    let crm = read_crm(crm_xml(SALARIES, TST01).as_bytes(), MAX).unwrap();
    let conformity = read_conformity(BILAN.as_bytes(), MAX).unwrap();
    let shown = format!(
        "{crm:?} {:?} {:?} {conformity:?} {:#?}",
        crm.employees, crm.anomalies, crm.employees
    );
    for secret in [
        "1850775123456",
        "2900175123456",
        "NTT0000000042",
        "M-042",
        "M-043",
        "7.50",
        "14.00",
        "10.10",
        "4.50",
        "98765.43",
        "attendu",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("TST01") && shown.contains("CCH-PAS-01"));
    assert!(
        shown.contains("123456789123456789"),
        "the identifier is not personal"
    );
}

#[test]
fn rates_and_dates_are_read_strictly() {
    assert_eq!(Rate::parse("0.00").map(Rate::hundredths), Some(0));
    assert_eq!(Rate::parse("99.99").map(Rate::hundredths), Some(9_999));
    assert_eq!(Rate::parse("7.05").unwrap().to_string(), "7.05");
    for bad in [
        "7.5", "7", "100.00", "7,50", "-1.00", ".50", "7.500", " 7.50", "+7.50",
    ] {
        assert_eq!(Rate::parse(bad), None, "{bad}");
    }
    assert_eq!(Rate::from_hundredths(10_000), None);
    assert_eq!("12.34".parse::<Rate>().unwrap().hundredths(), 1234);
    assert!(CalendarDate::parse("2028-02-29").is_some());
    for bad in [
        "2027-02-29",
        "2027-13-01",
        "2027-1-01",
        "27-01-01",
        "2027/01/01",
        "2027-01-+1",
    ] {
        assert_eq!(CalendarDate::parse(bad), None, "{bad}");
    }
    assert_eq!(ReturnStatus::parse("en cours"), Some(ReturnStatus::EnCours));
    assert_eq!(ReturnStatus::parse("PENDING"), None);
    assert_eq!(RateIdentifier::parse("12a"), None);
}

#[test]
fn every_error_has_a_french_sentence_and_a_code() {
    let all = [
        ReturnError::TooLarge { size: 2, max: 1 },
        ReturnError::Doctype,
        ReturnError::Entity { row: 1 },
        ReturnError::Encoding,
        ReturnError::Malformed { row: 1, col: 2 },
        ReturnError::NotAReport,
        ReturnError::UnknownType,
        ReturnError::WrongKind {
            expected: Kind::Crm,
            found: Kind::Conformity,
        },
        ReturnError::UnsupportedNature(20),
        ReturnError::Missing { field: "idflux" },
        ReturnError::Invalid {
            field: "taux",
            employee: None,
        },
    ];
    let mut codes = std::collections::HashSet::new();
    for e in all {
        assert!(codes.insert(e.code()), "{}", e.code());
        let s = e.to_string();
        assert!(s.starts_with(|c: char| c.is_uppercase()), "{s}");
        assert!(s.ends_with('.'), "{s}");
    }
}

#[test]
fn a_large_crm_is_read_whole() {
    let mut salaries = String::new();
    for i in 0..2_000u32 {
        salaries.push_str(&format!(
            "<salarie><NIR>1{:012}</NIR><matricule>M{i}</matricule><taux_imposition_PAS>{}.{:02}</taux_imposition_PAS></salarie>",
            i,
            i % 40,
            i % 100
        ));
    }
    let crm = read_crm(crm_xml(&salaries, "").as_bytes(), MAX).unwrap();
    assert_eq!(crm.employees.len(), 2_000);
    assert_eq!(
        crm.employees[1999].rate.unwrap().hundredths(),
        39 * 100 + 99
    );
}

// ---- What reading as a stream could get wrong ----

/// A CRM of `n` employees, each matricule with an accented letter.
fn large_crm(n: u32) -> String {
    let mut salaries = String::new();
    for i in 0..n {
        salaries.push_str(&format!(
            "<salarie><NIR>1{i:012}</NIR><matricule>M\u{e9}{i}</matricule><taux_imposition_PAS>{}.{:02}</taux_imposition_PAS></salarie>\n",
            i % 40,
            i % 100
        ));
    }
    crm_xml(&salaries, TST01)
}

fn latin1(xml: &str) -> Vec<u8> {
    xml.replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect()
}

#[test]
fn a_document_cut_anywhere_is_refused_never_read_in_part() {
    let xml = crm_xml(SALARIES, TST01);
    let root = xml.find("<gipmds:rapport").unwrap();
    for cut in (0..xml.len()).filter(|&i| xml.is_char_boundary(i)) {
        let e = read(&xml.as_bytes()[..cut], MAX).unwrap_err();
        // Inside a reference (`&apos;`), the reference is cut: refused as such.
        assert!(
            matches!(
                e,
                ReturnError::Malformed { .. } | ReturnError::Entity { .. }
            ),
            "cut at {cut}: {e:?}"
        );
        let in_reference = xml[..cut]
            .rfind('&')
            .is_some_and(|amp| !xml[amp..cut].contains(';'));
        if cut > root && !in_reference {
            assert_eq!(e.code(), "malformed", "cut at {cut}");
        }
    }
    // A large CRM cut after thousands of good employees gives none of them.
    let big = large_crm(3_000);
    let half = big.len() / 2;
    assert_eq!(
        read_crm(&big.as_bytes()[..half], MAX).unwrap_err().code(),
        "malformed"
    );
    // Cut at the end of an employee, between two of them, the same.
    let between = big[..half].rfind("</salarie>").unwrap() + "</salarie>".len();
    assert_eq!(
        read_crm(&big.as_bytes()[..between], MAX)
            .unwrap_err()
            .code(),
        "malformed"
    );
}

#[test]
fn an_iso_8859_1_crm_larger_than_what_is_decoded_at_once_reads_as_its_utf8_twin() {
    let xml = large_crm(2_000);
    let bytes = latin1(&xml);
    assert!(bytes.len() > 20 * (8 << 10), "{} bytes", bytes.len());
    let crm = read_crm(&bytes, MAX).unwrap();
    assert_eq!(crm, read_crm(xml.as_bytes(), MAX).unwrap());
    assert_eq!(crm.employees.len(), 2_000);
    assert_eq!(crm.employees[1_999].matricule.as_deref(), Some("Mé1999"));
    // A fault far in gives its place in the document's characters, not in the UTF-8
    // the parser reads: line 1,501, column 1 + the 9 characters of `<salarie>`.
    let line = |n| xml.split('\n').nth(n).unwrap().len() + 1;
    let at: usize = (0..1_500).map(line).sum::<usize>() + "<salarie>".len();
    let mut bad = xml.clone();
    bad.insert(at, '\u{1}');
    let expected = ReturnError::Malformed {
        row: 1_501,
        col: 10,
    };
    assert_eq!(read_crm(&latin1(&bad), MAX).unwrap_err(), expected);
    assert_eq!(read_crm(bad.as_bytes(), MAX).unwrap_err(), expected);
}

#[test]
fn a_doctype_is_refused_after_the_declaration_after_a_comment_and_inside_the_document() {
    for xml in [
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE rapport [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<rapport type=\"AEE\"><idflux>&xxe;</idflux></rapport>",
        "<?xml version=\"1.0\"?><!-- retour --><!DOCTYPE rapport><rapport type=\"AEE\"/>",
        "<!-- retour -->\n<!DocType rapport>\n<rapport type=\"AEE\"/>",
        "<rapport type=\"AEE\"><idflux>AB1</idflux><!DOCTYPE x></rapport>",
        "<rapport type=\"AEE\"><![CDATA[<!DOCTYPE x>]]></rapport>",
    ] {
        assert_eq!(
            read(xml.as_bytes(), MAX).unwrap_err(),
            ReturnError::Doctype,
            "{xml}"
        );
    }
    // In a large CRM, after thousands of employees, the same.
    let big = large_crm(2_000).replace("</declaration>", "<!DOCTYPE x></declaration>");
    assert_eq!(
        read_crm(big.as_bytes(), MAX).unwrap_err(),
        ReturnError::Doctype
    );
}

#[test]
fn an_entity_reference_is_refused_wherever_it_is() {
    let crm =
        |salaries: &str, anomalies: &str| read_crm(crm_xml(salaries, anomalies).as_bytes(), MAX);
    // In an employee's NIR, in an element no one reads, in an anomaly, in an attribute.
    for (salaries, anomalies) in [
        (
            SALARIES.replace("<NIR>2900175123456</NIR>", "<NIR>&xxe;</NIR>"),
            String::new(),
        ),
        (
            SALARIES.replace("<matricule>M-043</matricule>", "<inconnu>&xxe;</inconnu>"),
            String::new(),
        ),
        (SALARIES.to_owned(), TST01.replace("(7.50)", "(&xxe;)")),
        (
            SALARIES.replace("<salarie>", "<salarie origine=\"&xxe;\">"),
            String::new(),
        ),
        (SALARIES.replace("7.50", "&#0;"), String::new()),
        (SALARIES.replace("7.50", "7&50"), String::new()),
    ] {
        assert_eq!(
            crm(&salaries, &anomalies).unwrap_err(),
            ReturnError::Entity { row: 1 },
            "{salaries} {anomalies}"
        );
    }
    // Its line, counted in the document, in a text or in a value on a tag's later line.
    let xml = "<rapport type=\"ARE\">\n<envoi_anomalie>\n<description><code>&xxe;</code></description></envoi_anomalie></rapport>";
    assert_eq!(
        read(xml.as_bytes(), MAX).unwrap_err(),
        ReturnError::Entity { row: 3 }
    );
    let xml = "<rapport type=\"ARE\">\n<envoi_anomalie\n  a=\"1\"\n  b=\"x&xxe;\"/></rapport>";
    assert_eq!(
        read(xml.as_bytes(), MAX).unwrap_err(),
        ReturnError::Entity { row: 4 }
    );
    // A hostile document is refused as such even when a value before is bad: the whole
    // document is checked before any value is judged.
    let bad_rate_then_entity = crm_xml(
        &SALARIES.replace("14.00", "14,00"),
        "<inconnu>&xxe;</inconnu>",
    );
    assert_eq!(
        read_crm(bad_rate_then_entity.as_bytes(), MAX).unwrap_err(),
        ReturnError::Entity { row: 1 }
    );
    let bad_rate_then_malformed = crm_xml(&SALARIES.replace("14.00", "14,00"), "<inconnu>");
    assert_eq!(
        read_crm(bad_rate_then_malformed.as_bytes(), MAX)
            .unwrap_err()
            .code(),
        "malformed"
    );
}

#[test]
fn names_namespaces_and_characters_are_checked_as_xml_says() {
    for bad in [
        // A prefix bound by no `xmlns`.
        "<x:rapport type=\"AEE\"><idflux>AB1</idflux><envoi_etat>OK</envoi_etat></x:rapport>",
        "<rapport type=\"AEE\" y:a=\"1\"><idflux>AB1</idflux><envoi_etat>OK</envoi_etat></rapport>",
        // Attributes not apart, twice the same, `<` in a value.
        "<rapport type=\"AEE\"a=\"1\"><idflux>AB1</idflux><envoi_etat>OK</envoi_etat></rapport>",
        "<rapport type=\"AEE\" type=\"AEE\"><idflux>AB1</idflux><envoi_etat>OK</envoi_etat></rapport>",
        "<rapport type=\"A<E\"><idflux>AB1</idflux><envoi_etat>OK</envoi_etat></rapport>",
        // A character XML does not allow, `]]>` in a text, a name starting with a digit.
        "<rapport type=\"AEE\"><idflux>AB1\u{1}</idflux><envoi_etat>OK</envoi_etat></rapport>",
        "<rapport type=\"AEE\"><idflux>AB1]]></idflux><envoi_etat>OK</envoi_etat></rapport>",
        "<rapport type=\"AEE\"><1idflux>AB1</1idflux><envoi_etat>OK</envoi_etat></rapport>",
        // A declaration elsewhere than at the very start.
        " <?xml version=\"1.0\"?><rapport type=\"AEE\"><idflux>AB1</idflux><envoi_etat>OK</envoi_etat></rapport>",
        // Text outside the root.
        "<rapport type=\"AEE\"><idflux>AB1</idflux><envoi_etat>OK</envoi_etat></rapport>x",
    ] {
        let e = read(bad.as_bytes(), MAX).unwrap_err();
        assert_eq!(e.code(), "malformed", "{bad}: {e:?}");
    }
    let good = "<?xml version=\"1.0\"?><!-- c --><?pi x?><r:rapport xmlns:r=\"u\" type=\"AEE\"><idflux><![CDATA[AB]]>1</idflux><envoi_etat> OK </envoi_etat></r:rapport>\n";
    let Acknowledgement::Accepted(a) = read_acknowledgement(good.as_bytes(), MAX).unwrap() else {
        panic!("an AEE")
    };
    assert_eq!(a.idflux, "AB1");
}

#[test]
fn employees_are_counted_in_document_order_wherever_they_are_in_the_declaration() {
    // A `salarie` inside another, and one in an anomaly but not in its `environnement`:
    // employees too, in document order, as when the whole tree was read.
    let salaries = "<salarie><NIR>1850775123456</NIR><salarie><NTT>N2</NTT><taux_imposition_PAS>1.00</taux_imposition_PAS></salarie></salarie>";
    let anomalies = "<declaration_anomalie><description><code>A</code></description><salarie><NTT>N3</NTT></salarie>\
                     <environnement><salarie><NIR>1850775123456</NIR></salarie></environnement></declaration_anomalie>";
    let crm = read_crm(crm_xml(salaries, anomalies).as_bytes(), MAX).unwrap();
    let ids: Vec<&str> = crm.employees.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1850775123456", "N2", "N3"]);
    assert_eq!(crm.employees[1].rate.map(Rate::hundredths), Some(100));
    assert_eq!(crm.anomalies.len(), 1);
    // The inner one refused is named by its position.
    let bad = salaries.replace("1.00", "1,00");
    assert_eq!(
        read_crm(crm_xml(&bad, "").as_bytes(), MAX).unwrap_err(),
        ReturnError::Invalid {
            field: "taux_imposition_PAS",
            employee: Some(2)
        }
    );
}
