//! Property tests of the codice fiscale: what must hold for every person and every input,
//! not just for the worked examples.

use anpr_domain::codice_fiscale::{
    calcola, coerente_con_dati, decodifica, forma_base, livello_omocodia, omocodia_progressiva,
    omocodici, verifica, verifica_provvisorio, CodiceFiscale, CodiceFiscaleSoggetto, DatiCalcolo,
    ErroreCodiceFiscale,
};
use anpr_domain::ids::{CodiceCatastale, Sesso};
use chrono::{Datelike, Days, NaiveDate};
use proptest::prelude::*;

/// A person's data, owned so that proptest can generate and shrink it.
#[derive(Debug, Clone)]
struct Persona {
    cognome: String,
    nome: String,
    sesso: Sesso,
    data_nascita: NaiveDate,
    luogo_nascita: CodiceCatastale,
}

impl Persona {
    fn dati(&self) -> DatiCalcolo<'_> {
        DatiCalcolo {
            cognome: &self.cognome,
            nome: &self.nome,
            sesso: self.sesso,
            data_nascita: self.data_nascita,
            luogo_nascita: &self.luogo_nascita,
        }
    }
}

/// Names with at least one Latin letter, mixing accents, apostrophes, spaces and hyphens.
fn nome() -> impl Strategy<Value = String> {
    "[a-zA-Z àèéìòùÀÈÉÌÒÙäöüßçñøæŁ'’-]{0,12}[a-zA-ZàèìòùÄÖÜßçñ][a-zA-Z àèìòù'-]{0,12}"
}

fn persona() -> impl Strategy<Value = Persona> {
    let inizio = NaiveDate::from_ymd_opt(1800, 1, 1).expect("valid date");
    (
        nome(),
        nome(),
        prop_oneof![Just(Sesso::Maschio), Just(Sesso::Femmina)],
        0u64..110_000,
        "[A-MZ][0-9]{3}",
    )
        .prop_map(move |(cognome, nome, sesso, giorni, luogo)| Persona {
            cognome,
            nome,
            sesso,
            data_nascita: inizio
                .checked_add_days(Days::new(giorni))
                .expect("date in range"),
            luogo_nascita: luogo.parse().expect("generated place code"),
        })
}

fn codice(persona: &Persona) -> CodiceFiscale {
    calcola(&persona.dati()).unwrap_or_else(|e| panic!("{persona:?}: {e}"))
}

/// The data a decoded code must give back for `persona`.
fn assert_decodes_to(cf: &CodiceFiscale, persona: &Persona) {
    let dati = decodifica(cf).unwrap_or_else(|e| panic!("{cf}: {e}"));
    let nascita = persona.data_nascita;
    assert_eq!(dati.sesso, persona.sesso, "{cf}");
    assert_eq!(u32::from(dati.giorno), nascita.day(), "{cf}");
    assert_eq!(u32::from(dati.mese), nascita.month(), "{cf}");
    assert_eq!(
        i32::from(dati.anno.yy()),
        nascita.year().rem_euclid(100),
        "{cf}"
    );
    if (1900..2100).contains(&nascita.year()) {
        assert!(dati.anno.candidati().contains(&nascita.year()), "{cf}");
        assert!(dati.date_candidate().contains(&Some(nascita)), "{cf}");
    }
    assert_eq!(dati.luogo_nascita, persona.luogo_nascita, "{cf}");
}

proptest! {
    #[test]
    fn computed_codes_verify_and_decode(persona in persona()) {
        let cf = codice(&persona);
        prop_assert_eq!(verifica(cf.as_str()), Ok(cf));
        prop_assert_eq!(livello_omocodia(&cf), 0);
        prop_assert_eq!(forma_base(&cf), cf);
        prop_assert_eq!(coerente_con_dati(&cf, &persona.dati()), Ok(()));
        assert_decodes_to(&cf, &persona);
    }

    #[test]
    fn every_variant_verifies_and_decodes_to_the_same_data(persona in persona()) {
        let cf = codice(&persona);
        let varianti = omocodici(&cf);
        prop_assert_eq!(varianti.len(), 7);
        for (rango, variante) in varianti.iter().enumerate() {
            prop_assert_eq!(verifica(variante.as_str()), Ok(*variante));
            prop_assert_ne!(variante, &cf);
            prop_assert_eq!(forma_base(variante), cf);
            prop_assert_eq!(usize::from(livello_omocodia(variante)), rango + 1);
            prop_assert!(omocodia_progressiva(variante));
            prop_assert_eq!(&omocodici(variante), &varianti);
            prop_assert_eq!(coerente_con_dati(variante, &persona.dati()), Ok(()));
            assert_decodes_to(variante, &persona);
        }
    }

    #[test]
    fn any_single_character_change_is_refused(
        persona in persona(),
        livello in 0usize..=7,
        posizione in 0usize..16,
        sostituto in "[A-Z0-9]",
    ) {
        let cf = codice(&persona);
        let cf = if livello == 0 { cf } else { omocodici(&cf)[livello - 1] };
        let mut alterato: Vec<char> = cf.as_str().chars().collect();
        let nuovo = sostituto.chars().next().unwrap_or('A');
        prop_assume!(alterato[posizione] != nuovo);
        alterato[posizione] = nuovo;
        let alterato: String = alterato.into_iter().collect();
        // The check character's tables give distinct values to every character a position
        // admits, so a single change can never produce another valid code.
        prop_assert!(verifica(&alterato).is_err(), "{} -> {} accepted", cf, alterato);
    }

    #[test]
    fn parsing_never_panics(input in any::<String>()) {
        if let Ok(cf) = verifica(&input) {
            prop_assert_eq!(cf.as_str(), input.to_ascii_uppercase());
        }
        let _ = decodifica(&input);
        let _ = input.parse::<CodiceFiscaleSoggetto>();
        let _ = verifica_provvisorio(&input);
    }

    #[test]
    fn well_shaped_random_codes_are_consistent(
        primi in concat!(
            "[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST]",
            "[0-7LMNPQRST][0-9LMNPQRSTUV][A-MZ][0-9LMNPQRSTUV]{3}"
        ),
    ) {
        // Complete the random prefix with whichever check letter verifies; the prefix is
        // discarded only when its day does not exist (then no letter can verify).
        let cf = ('A'..='Z').find_map(|controllo| verifica(&format!("{primi}{controllo}")).ok());
        prop_assume!(cf.is_some());
        let cf = cf.ok_or_else(|| TestCaseError::fail("assumed"))?;
        let dati = decodifica(cf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let base = forma_base(&cf);
        let dati_base = decodifica(base).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(dati.livello_omocodia, livello_omocodia(&cf));
        prop_assert_eq!(dati_base.livello_omocodia, 0);
        prop_assert_eq!(
            (dati.sesso, dati.giorno, dati.mese, dati.anno),
            (dati_base.sesso, dati_base.giorno, dati_base.mese, dati_base.anno)
        );
        prop_assert_eq!(&dati.luogo_nascita, &dati_base.luogo_nascita);
        prop_assert_eq!(
            (dati.codice_cognome, dati.codice_nome),
            (dati_base.codice_cognome, dati_base.codice_nome)
        );
        // Every variant of a (possibly non-progressive) code has the same base.
        for variante in omocodici(&cf) {
            prop_assert_eq!(forma_base(&variante), base);
        }
    }

    #[test]
    fn names_never_panic(
        cognome in any::<String>(),
        nome in any::<String>(),
        persona in persona(),
    ) {
        let dati = DatiCalcolo { cognome: &cognome, nome: &nome, ..persona.dati() };
        match calcola(&dati) {
            Ok(cf) => prop_assert_eq!(verifica(cf.as_str()), Ok(cf)),
            Err(errore) => prop_assert!(
                matches!(
                    errore,
                    ErroreCodiceFiscale::NessunaLettera { .. }
                        | ErroreCodiceFiscale::CarattereNonTraslitterabile { .. }
                ),
                "{}", errore
            ),
        }
    }

    #[test]
    fn provisional_codes_detect_any_single_digit_change(
        cifre in "[0-9]{10}",
        posizione in 0usize..11,
        sostituto in 0u8..10,
    ) {
        let valido = (0..10u8)
            .map(|controllo| format!("{cifre}{controllo}"))
            .find(|candidato| verifica_provvisorio(candidato).is_ok());
        prop_assume!(cifre != "0000000000");
        let valido =
            valido.ok_or_else(|| TestCaseError::fail(format!("no check digit for {cifre}")))?;
        let mut alterato = valido.clone().into_bytes();
        prop_assume!(alterato[posizione] != b'0' + sostituto);
        alterato[posizione] = b'0' + sostituto;
        let alterato = String::from_utf8(alterato).unwrap_or_default();
        prop_assert!(
            verifica_provvisorio(&alterato).is_err(),
            "{} -> {} accepted",
            valido,
            alterato
        );
    }
}

#[test]
fn calcola_refuses_place_letters_no_cadastral_code_uses() {
    let luogo: CodiceCatastale = "N123".parse().expect("well-formed cadastral code");
    let nascita = NaiveDate::from_ymd_opt(1980, 1, 1).expect("valid date");
    let dati = DatiCalcolo {
        cognome: "Rossi",
        nome: "Mario",
        sesso: Sesso::Maschio,
        data_nascita: nascita,
        luogo_nascita: &luogo,
    };
    assert_eq!(
        calcola(&dati),
        Err(ErroreCodiceFiscale::LuogoNonValido {
            codice: "N123".to_owned()
        })
    );
}
