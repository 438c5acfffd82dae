//! Public worked examples of the codice fiscale, computed, checked and decoded through the
//! public API. Each example names where it is published, so a disagreement points either
//! at our code or at a known, citable source.

use anpr_domain::codice_fiscale::{
    calcola, decodifica, forma_base, livello_omocodia, omocodici, verifica, DatiCalcolo,
    ErroreCodiceFiscale,
};
use anpr_domain::ids::{CodiceCatastale, Sesso};
use chrono::NaiveDate;

/// Computes the code of a person and checks it against the published one, then checks
/// that the published code verifies and decodes back to the person's data.
fn check(
    cognome: &str,
    nome: &str,
    sesso: Sesso,
    (anno, mese, giorno): (i32, u32, u32),
    luogo: &str,
    atteso: &str,
) {
    let luogo_nascita: CodiceCatastale = luogo.parse().expect("test place code");
    let data_nascita = NaiveDate::from_ymd_opt(anno, mese, giorno).expect("test date");
    let dati = DatiCalcolo {
        cognome,
        nome,
        sesso,
        data_nascita,
        luogo_nascita: &luogo_nascita,
    };
    let calcolato = calcola(&dati).unwrap_or_else(|e| panic!("{cognome} {nome}: {e}"));
    assert_eq!(calcolato.as_str(), atteso, "{cognome} {nome}");

    let decodificato = decodifica(atteso).unwrap_or_else(|e| panic!("{atteso}: {e}"));
    assert_eq!(decodificato.sesso, sesso, "{atteso}");
    assert_eq!(u32::from(decodificato.giorno), giorno, "{atteso}");
    assert_eq!(u32::from(decodificato.mese), mese, "{atteso}");
    assert!(
        decodificato.anno.candidati().contains(&anno),
        "{atteso}: {:?}",
        decodificato.anno
    );
    assert_eq!(decodificato.luogo_nascita, luogo_nascita, "{atteso}");
    assert_eq!(decodificato.livello_omocodia, 0, "{atteso}");
}

#[test]
fn published_examples() {
    // The fictitious "Mario Rossi" used throughout Italian documentation.
    check(
        "Rossi",
        "Mario",
        Sesso::Maschio,
        (1980, 1, 1),
        "H501",
        "RSSMRA80A01H501U",
    );
    // Wikipedia (en, "Italian fiscal code"): Matteo Moretti, Milan, 9 April 1925.
    check(
        "Moretti",
        "Matteo",
        Sesso::Maschio,
        (1925, 4, 9),
        "F205",
        "MRTMTT25D09F205Z",
    );
    // Wikipedia (en): Samantha Miller, born in the USA on 25 September 1982.
    check(
        "Miller",
        "Samantha",
        Sesso::Femmina,
        (1982, 9, 25),
        "Z404",
        "MLLSNT82P65Z404U",
    );
    // codice-fiscale-utils (npm) test suite: diacritics and apostrophes in both names.
    check(
        "Verònesi",
        "Génny",
        Sesso::Femmina,
        (1907, 4, 28),
        "C351",
        "VRNGNY07D68C351V",
    );
    check(
        "Màrin'",
        "Mìa'",
        Sesso::Femmina,
        (1902, 5, 5),
        "L219",
        "MRNMIA02E45L219X",
    );
    // python-codicefiscale README and tests: a year below 10, a name with 3 consonants.
    check(
        "Caccamo",
        "Fabio",
        Sesso::Maschio,
        (1985, 4, 3),
        "L219",
        "CCCFBA85D03L219P",
    );
    check(
        "Rossi",
        "Mario",
        Sesso::Maschio,
        (2004, 11, 29),
        "L219",
        "RSSMRA04S29L219G",
    );
}

#[test]
fn published_omocodic_variants() {
    // codice-fiscale-utils test suite, variants #1, #2 (its bitmap 3) and all seven.
    let base = verifica("VRNGNY07D68C351V").expect("published code");
    let varianti = omocodici(&base);
    assert_eq!(varianti[0].as_str(), "VRNGNY07D68C35MN");
    assert_eq!(varianti[1].as_str(), "VRNGNY07D68C3RMZ");
    assert_eq!(varianti[6].as_str(), "VRNGNYLTDSUCPRMT");
    for (rango, variante) in varianti.iter().enumerate() {
        assert_eq!(usize::from(livello_omocodia(variante)), rango + 1);
        assert_eq!(forma_base(variante), base);
    }
}

#[test]
fn widely_copied_wrong_example_is_refused() {
    // "RSSMRA85M01H501Z" circulates as an example, but its check character is wrong.
    assert_eq!(
        verifica("RSSMRA85M01H501Z"),
        Err(ErroreCodiceFiscale::CarattereControlloErrato {
            atteso: 'Q',
            trovato: 'Z'
        })
    );
}
