//! Tests of the embedded data set through the public API: counts the source documents,
//! known municipalities and states at known dates, name matching, code tables, errors.

use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune};
use anpr_tables::{tables, Comune, Severity, StatoComune, TableKind};
use chrono::NaiveDate;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test dates are valid")
}

fn istat(code: &str) -> CodiceIstatComune {
    code.parse().expect("test ISTAT codes are valid")
}

fn catastale(code: &str) -> CodiceCatastale {
    code.parse().expect("test cadastral codes are valid")
}

/// "Today" for the tests: a fixed date after the last change in the data, so the tests
/// do not start failing when the calendar moves on.
fn today() -> NaiveDate {
    date("2025-06-01")
}

fn describe(comune: Option<&Comune>) -> Option<String> {
    comune.map(|c| {
        let catastale = c.catastale.as_ref().map_or("-", |code| code.as_str());
        format!("{} {} {} {}", c.istat, catastale, c.nome, c.stato)
    })
}

#[test]
fn municipality_counts_match_the_archive() {
    let t = tables();
    let check = |what: &str, found: usize, expected: usize| {
        assert_eq!(found, expected, "{what}");
    };
    check("all rows", t.comuni().len(), 19_352);
    check(
        "active",
        t.comuni_by_stato(StatoComune::Attivo).count(),
        7_901,
    );
    check(
        "ceased",
        t.comuni_by_stato(StatoComune::Cessato).count(),
        11_451,
    );
    check(
        "to be established",
        t.comuni_by_stato(StatoComune::DaIstituire).count(),
        0,
    );
    check(
        "rows without cadastral code (ND)",
        t.comuni().iter().filter(|c| c.catastale.is_none()).count(),
        28,
    );
    check(
        "active rows valid today",
        t.comuni().iter().filter(|c| c.is_valid_at(today())).count(),
        7_901,
    );
}

#[test]
fn municipalities_by_code_at_a_date() {
    let t = tables();
    // (ISTAT or cadastral code, date, expected "istat catastale name state").
    let by_istat: &[(&str, &str, Option<&str>)] = &[
        ("058091", "2025-06-01", Some("058091 H501 ROMA A")),
        ("058091", "1950-01-01", Some("058091 H501 ROMA C")),
        // ABANO became ABANO TERME: the cessation date is the last valid day.
        ("028001", "1924-11-13", Some("028001 A001 ABANO C")),
        ("028001", "1924-11-14", Some("028001 A001 ABANO TERME A")),
        // Zambana merged into Terre d'Adige on 2019-01-01.
        ("022225", "1990-01-01", Some("022225 M142 ZAMBANA C")),
        ("022225", "2018-12-31", Some("022225 M142 ZAMBANA C")),
        ("022225", "2019-01-01", None),
        ("022225", "2025-06-01", None),
        ("022251", "2025-06-01", Some("022251 M407 TERRE D'ADIGE A")),
        ("022251", "1990-01-01", None),
        ("999999", "2025-06-01", None),
    ];
    for (code, at, expected) in by_istat {
        let found = describe(t.comune_by_istat(&istat(code), date(at)));
        assert_eq!(found.as_deref(), *expected, "ISTAT {code} at {at}");
    }
    let by_catastale: &[(&str, &str, Option<&str>)] = &[
        ("H501", "2025-06-01", Some("058091 H501 ROMA A")),
        ("M142", "1990-01-01", Some("022225 M142 ZAMBANA C")),
        ("M142", "2025-06-01", None),
        // One cadastral code, three ISTAT codes over time (Bolzano changed province).
        ("A952", "1921-06-01", Some("802039 A952 BOLZANO C")),
        ("A952", "1926-01-01", Some("022954 A952 BOLZANO C")),
        ("A952", "2025-06-01", Some("021008 A952 BOLZANO A")),
        ("A952", "1900-01-01", None),
        ("Z404", "2025-06-01", None),
    ];
    for (code, at, expected) in by_catastale {
        let found = describe(t.comune_by_catastale(&catastale(code), date(at)));
        assert_eq!(found.as_deref(), *expected, "cadastral {code} at {at}");
    }
}

#[test]
fn a_municipality_history_is_ordered_and_contiguous() {
    let t = tables();
    let roma = t.comune_history_by_istat(&istat("058091"));
    assert_eq!(roma.len(), 11, "periods of Roma");
    assert_eq!(roma.first().map(|c| c.valid_from), Some(date("1884-09-11")));
    assert_eq!(
        roma.last().map(|c| c.valid_to),
        Some(None),
        "the last period is open"
    );
    for pair in roma.windows(2) {
        let next_day = pair[0].valid_to.and_then(|to| to.succ_opt());
        assert_eq!(
            next_day,
            Some(pair[1].valid_from),
            "Roma periods follow each other"
        );
    }
    let bolzano = t.comune_history_by_catastale(&catastale("A952"));
    let codes: Vec<&str> = bolzano.iter().map(|c| c.istat.as_str()).collect();
    assert_eq!(codes, ["802039", "022954", "022954", "021008"]);
}

#[test]
fn periods_of_one_code_never_overlap() {
    let t = tables();
    let mut by_catastale: std::collections::HashMap<&str, Vec<&Comune>> = Default::default();
    for comune in t.comuni() {
        if let Some(code) = &comune.catastale {
            by_catastale.entry(code.as_str()).or_default().push(comune);
        }
    }
    let mut overlaps = Vec::new();
    for (code, mut periods) in by_catastale {
        periods.sort_by_key(|c| c.valid_from);
        for pair in periods.windows(2) {
            if pair[0].valid_to.is_none_or(|to| pair[1].valid_from <= to) {
                overlaps.push(code);
            }
        }
    }
    // One quirk of the source: D588 is given both to MARNE (016098) and to FILAGO (016828)
    // from 1861-03-17 to 1928-01-25. Any other overlap would be new and needs a look.
    assert_eq!(
        overlaps,
        ["D588"],
        "cadastral codes with overlapping periods"
    );
    let d588 = t.comuni_by_catastale(&catastale("D588"), date("1900-01-01"));
    let names: Vec<&str> = d588.iter().map(|c| c.nome.as_str()).collect();
    assert_eq!(names, ["MARNE", "FILAGO"], "both holders of D588 in 1900");
    let first = describe(t.comune_by_catastale(&catastale("D588"), date("1900-01-01")));
    assert_eq!(
        first.as_deref(),
        Some("016098 D588 MARNE C"),
        "lowest ISTAT code first"
    );
    // Only active rows are open-ended, and every active row is.
    for comune in t.comuni() {
        assert_eq!(
            comune.valid_to.is_none(),
            comune.stato == StatoComune::Attivo,
            "open end iff active: {} {}",
            comune.istat,
            comune.nome
        );
    }
}

#[test]
fn municipalities_by_name_ignore_case_accents_and_language() {
    let t = tables();
    // (query, date or None for all periods, expected "istat name" of each match).
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        (
            "citta di castello",
            Some("2025-06-01"),
            &["054013 CITTÀ DI CASTELLO"],
        ),
        (
            "CITTA' DI CASTELLO",
            Some("2025-06-01"),
            &["054013 CITTÀ DI CASTELLO"],
        ),
        ("Bozen", Some("2025-06-01"), &["021008 BOLZANO"]),
        ("bolzano", Some("2025-06-01"), &["021008 BOLZANO"]),
        ("Trst", Some("2025-06-01"), &["032006 TRIESTE"]),
        ("Sgonico", Some("2025-06-01"), &["032005 SGONICO-ZGONIK"]),
        ("Zgonik", Some("2025-06-01"), &["032005 SGONICO-ZGONIK"]),
        ("zambana", Some("1990-01-01"), &["022225 ZAMBANA"]),
        ("zambana", Some("2025-06-01"), &[]),
        (
            "Bozen",
            None,
            &[
                "021008 BOLZANO",
                "022954 BOLZANO",
                "022954 BOLZANO",
                "802039 BOLZANO",
            ],
        ),
        ("no such place", None, &[]),
        ("", None, &[]),
    ];
    for (query, at, expected) in cases {
        let found: Vec<String> = t
            .comuni_by_name(query, at.map(date))
            .iter()
            .map(|c| format!("{} {}", c.istat, c.nome))
            .collect();
        assert_eq!(found, *expected, "name {query:?} at {at:?}");
    }
}

#[test]
fn foreign_states() {
    let t = tables();
    let usa = t.stato_estero_by_catastale(&catastale("Z404"), today());
    assert_eq!(
        usa.map(|s| (s.istat.as_str(), s.nome.as_str(), s.iso3.as_deref())),
        Some(("536", "STATI UNITI D'AMERICA", Some("USA")))
    );
    assert_eq!(
        t.stato_estero_by_istat("536", Some(today())).map(|s| s.id),
        usa.map(|s| s.id)
    );
    assert!(
        t.stato_estero_by_catastale(&catastale("H501"), today())
            .is_none(),
        "H501 is not a state"
    );
    // (ISTAT code, expected name, citizenship, birth, residence).
    let special: &[(&str, &str, bool, bool, bool)] = &[
        ("100", "ITALIA", true, false, true),
        ("997", "In corso di definizione", true, false, false),
        ("998", "NON ATTRIBUIBILE", true, true, false),
        ("999", "APOLIDE", true, false, false),
        (
            "888",
            "Riconosciuti non cittadini (lettoni)*",
            false,
            false,
            false,
        ),
    ];
    for (code, name, cittadinanza, nascita, residenza) in special {
        let stato = t.stato_estero_by_istat(code, None);
        assert_eq!(
            stato.map(|s| (s.nome.as_str(), s.cittadinanza, s.nascita, s.residenza)),
            Some((*name, *cittadinanza, *nascita, *residenza)),
            "state {code}"
        );
        assert!(
            stato.is_some_and(|s| s.catastale.is_none()),
            "{code} has no Z code"
        );
    }
    assert_eq!(
        t.stato_estero_by_istat("53", None).map(|s| s.id),
        None,
        "two digits"
    );
    assert_eq!(t.stati_esteri().len(), 238);
    let names: Vec<&str> = t
        .stati_esteri_by_name("united states", Some(today()))
        .iter()
        .map(|s| s.istat.as_str())
        .collect();
    assert_eq!(names, ["536"], "English ISTAT name");
}

#[test]
fn the_shipped_state_table_has_no_ceased_state() {
    // Documents a property of this table version (2019): ceased states such as the USSR or
    // Yugoslavia are not listed at all, so none can be found at a historical date. The
    // lookup logic for ceased periods is tested on a fixture in `stati_esteri.rs`. When a
    // newer table brings ceased rows, this test fails: replace it with a real example.
    let t = tables();
    let ceased: Vec<&str> = t
        .stati_esteri()
        .iter()
        .filter(|s| s.valid_to.is_some())
        .map(|s| s.nome.as_str())
        .collect();
    assert_eq!(ceased, Vec::<&str>::new());
    for name in ["Jugoslavia", "Unione Sovietica", "URSS", "Cecoslovacchia"] {
        assert_eq!(t.stati_esteri_by_name(name, None).len(), 0, "{name}");
    }
}

#[test]
fn consulates() {
    let t = tables();
    let tirana = t.consolato("2200100");
    assert_eq!(
        tirana.map(|c| (
            c.sede.as_str(),
            c.rango.as_str(),
            c.denominazione_stato.as_str()
        )),
        Some(("TIRANA", "AMBASCIATA D'ITALIA", "ALBANIA"))
    );
    assert!(t.consolato("0000000").is_none());
    assert_eq!(t.consolati().len(), 197);
    assert_eq!(t.stati_consolati().len(), 308);
    let doubled: Vec<&str> = t
        .consolati()
        .iter()
        .filter(|c| format!("{}{}{}", c.rango, c.sede, c.indirizzo).contains("''"))
        .map(|c| c.codice.as_str())
        .collect();
    assert_eq!(doubled, Vec::<&str>::new(), "doubled apostrophes are fixed");
    let france: Vec<&str> = t
        .consolati_for_stato("215")
        .iter()
        .map(|c| c.sede.as_str())
        .collect();
    assert_eq!(france, ["PARIGI", "LIONE", "MARSIGLIA", "NIZZA", "METZ"]);
    assert!(t.consolati_for_stato("999").is_empty());
}

#[test]
fn every_code_table_is_non_empty_with_unique_codes() {
    let t = tables();
    assert_eq!(t.code_tables().len(), 43, "generic tables");
    for table in t.code_tables() {
        assert!(!table.rows().is_empty(), "{} is empty", table.name());
        let mut keys: Vec<_> = table
            .rows()
            .iter()
            .map(|row| (row.code.as_str(), row.valid_from, row.valid_to))
            .collect();
        let total = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            total,
            "{}: a code repeats for the same validity",
            table.name()
        );
        for row in table.rows() {
            assert!(
                !row.description.is_empty(),
                "{} {}: no description",
                table.name(),
                row.code
            );
            assert_eq!(
                table.get(&row.code, None).map(|r| r.code.as_str()),
                Some(row.code.as_str()),
                "{} {} is found by code",
                table.name(),
                row.code
            );
        }
        let info = t.table_info(table.name());
        assert_eq!(
            info.map(|i| i.rows),
            Some(table.rows().len()),
            "{}: manifest rows",
            table.name()
        );
    }
}

#[test]
fn code_lookups_by_name_alias_and_date() {
    let t = tables();
    // (table name as a caller writes it, code, date, expected description).
    let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
        ("stato_civile", "1", None, Some("Celibe/Nubile")),
        (
            "Tabella 1",
            "9",
            None,
            Some("Non classificabile/ignoto/n.c"),
        ),
        ("tabella_5", "26", None, Some("Tutore")),
        (
            "tab_Relazione_di_parentela___Famiglia",
            "80",
            Some("2015-09-15"),
            Some("Adottato"),
        ),
        ("relazione_parentela", "80", Some("2015-09-16"), None),
        (
            "posizione_professione",
            "A",
            Some("2015-12-31"),
            Some("Dirigente o impiegato"),
        ),
        ("posizione_professione", "A", Some("2016-01-01"), None),
        ("lingue", "DE", None, Some("Tedesca")),
        (
            "motivi_iscrizione_aire",
            "C01",
            None,
            Some("Espatrio e/o residenza all' estero"),
        ),
        ("specie_toponimo", "998", None, Some("ALTRO")),
        (
            "titolo_studio",
            "Z",
            None,
            Some("Non conosciuto / non fornito"),
        ),
        (
            "righe_prospetti_statistici",
            "2.40",
            None,
            Some("Senza fissa dimora"),
        ),
        (
            "conversione_codici_aire",
            "posizione_professione/2",
            None,
            Some("Dirigente o impiegato"),
        ),
        (
            "tipo_movimentazione",
            "7",
            Some("2025-06-01"),
            Some("Scomposizione entrano in coabitazione"),
        ),
        (
            "tabella_43",
            "98",
            None,
            Some("Decesso del convivente/unito civilmente"),
        ),
        ("stato_civile", "5", None, None),
        ("no_such_table", "1", None, None),
        ("comuni", "058091", None, None),
    ];
    for (table, code, at, expected) in cases {
        let found = t
            .code(table, code, at.map(date))
            .map(|row| row.description.as_str());
        assert_eq!(found, *expected, "{table} {code} at {at:?}");
    }
    let conversion = t.code("conversione_codici_aire", "posizione_professione/2", None);
    assert_eq!(
        conversion.and_then(|row| row.attribute("codice_anpr")),
        Some("A")
    );
    assert_eq!(
        conversion.and_then(|row| row.attribute("solo_subentro")),
        Some("S")
    );
    let notes = t
        .table("cessazione_unione_civile")
        .map(|table| table.notes().len());
    assert_eq!(notes, Some(3), "footnotes are kept out of the rows");
    assert_eq!(
        t.table("servizi_web").map(|table| table.kind()),
        Some(TableKind::Elenco)
    );
}

#[test]
fn outcome_codes() {
    let t = tables();
    // (code, severity, start of the text); EHR98 is one of the two codes without severity.
    let cases: &[(&str, Option<Severity>, &str)] = &[
        (
            "EC011",
            Some(Severity::Error),
            "Campo noteStato cittadinanza obbligatorio se campo codice stato = 998",
        ),
        (
            "EC008",
            Some(Severity::Warning),
            "Data di nascita non indicata",
        ),
        (
            "ES099",
            Some(Severity::Error),
            "Il codice stato di residenza deve essere diverso da 998",
        ),
        (
            "EHR01",
            Some(Severity::Error),
            "Valore del campo tipo operazione @ non ammesso",
        ),
        (
            "EHR98",
            None,
            "La data di validita' della sentenza di morte",
        ),
    ];
    for (code, severity, text_start) in cases {
        let found = t
            .errore(code)
            .map(|e| (e.severity, e.text.starts_with(text_start)));
        assert_eq!(found, Some((*severity, true)), "{code}");
    }
    assert!(t.errore("EN527").is_none(), "EN527 is not an ANPR code");
    assert_eq!(t.errori().len(), 847);
    assert_eq!(
        t.errori().iter().filter(|e| e.severity.is_none()).count(),
        2
    );
}

#[test]
fn table_listing_and_version() {
    let t = tables();
    let names = t.table_names();
    assert_eq!(names.len(), 48, "tables in the manifest");
    for expected in [
        "comuni",
        "stati_esteri",
        "consolati",
        "stati_consolati",
        "errori",
        "stato_civile",
    ] {
        assert!(
            names.iter().any(|info| info.name == expected),
            "{expected} listed"
        );
    }
    for info in &names {
        assert_eq!(info.sha256.len(), 64, "{} hash", info.name);
        assert!(info.rows > 0, "{} rows", info.name);
    }
    assert_eq!(
        t.table_info("Tabella 3").map(|i| i.name.as_str()),
        Some("comuni")
    );
    assert_eq!(t.table_info("tabella_2").map(|i| i.rows), Some(238));
    let version = t.version();
    assert_eq!(
        version.source_commit,
        "f513577e240644a0c01c7e47304faa56331bc2dc"
    );
    assert_eq!(version.source_date, date("2026-01-19"));
    assert_eq!(version.content_sha256.len(), 64);
    assert!(version
        .to_string()
        .starts_with("ANPR decoding tables f513577e2406 (2026-01-19)"));
}

#[test]
fn json_uses_the_anpr_vocabulary() {
    let t = tables();
    let roma = t.comune_by_istat(&istat("058091"), today());
    let json = serde_json::to_value(roma).expect("serialises");
    let check = |key: &str, expected: serde_json::Value| {
        assert_eq!(json.get(key), Some(&expected), "comune.{key}");
    };
    check("codiceIstat", "058091".into());
    check("codiceCatastale", "H501".into());
    check("denominazione", "ROMA".into());
    check("denominazioneAltraLingua", serde_json::Value::Null);
    check("siglaProvincia", "RM".into());
    check("dataInizioValidita", "1992-04-04".into());
    check("dataFineValidita", serde_json::Value::Null);
    check("stato", "A".into());

    let row = serde_json::to_value(t.code("stato_civile", "1", None)).expect("serialises");
    assert_eq!(row.get("codice"), Some(&"1".into()));
    assert_eq!(row.get("descrizione"), Some(&"Celibe/Nubile".into()));
    let errore = serde_json::to_value(t.errore("EC011")).expect("serialises");
    assert_eq!(errore.get("codiceErroreAnomalia"), Some(&"EC011".into()));
    assert_eq!(errore.get("tipoErroreAnomalia"), Some(&"E".into()));
    let usa = serde_json::to_value(t.stato_estero_by_istat("536", None)).expect("serialises");
    assert_eq!(usa.get("codiceCatastale"), Some(&"Z404".into()));
}
