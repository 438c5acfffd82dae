//! Cross-check of the codice fiscale against an independent implementation.
//!
//! Generates 3000 deterministic pseudo-random people and pipes them, with the codes we
//! compute, to `tests/independent/cf_crosscheck.py`, which recomputes everything with
//! python-codicefiscale (PyPI, by Fabio Caccamo; version pinned in
//! `tests/independent/requirements.txt`) and reports every disagreement. The test FAILS,
//! it does not skip, when Python or the package is missing: run
//! `pip install -r tests/independent/requirements.txt` (set `ANPR_PYTHON` to use another
//! interpreter than `python3`).
//!
//! What is compared, per person: the code; our base code and 7 variants against the
//! library's omocodes with the k rightmost numeric positions substituted (it lists all 128
//! combinations, the tax agency issues only those 8); the library's validity and omocode
//! checks on each of our codes; and the library's decoding of one variant (chosen at
//! random) against both the person's data and our decoding.
//!
//! Categories included: names and surnames with accents, typographic and modifier-letter
//! apostrophes, spaces, hyphens, random upper/lower case, very short (`Bo`, `Li`, `Fo`),
//! vowel-only, with four or more consonants, and with Latin letters that do not decompose
//! (`ß`, `Ø`, `Æ`, `Ł`, `Ð`, `Þ`, `đ`, `ı`, `Ĳ`, `Ħ`, `Ŋ`), whose transliteration matches
//! unidecode's; both sexes; birth dates 1900-2025 (including 29 February) inside each place code's
//! validity; places from the pool below.
//!
//! Categories excluded, and why:
//! - Foreign states that no longer exist (Czechoslovakia Z105, GDR Z111, Yugoslavia Z118,
//!   ...): the ANPR table `tab_Stati_Esteri.csv` lists only current states, and the pool
//!   is taken from the ANPR tables; the library knows them, our code has nothing
//!   state-specific, so nothing is lost.
//! - Nine active municipalities (A121, A134, B749, D902, H521, I879, L487, L878, M332)
//!   that the library's archive closes in 2023-2024 while ANPR's keeps them active: a
//!   disagreement between two municipality archives, not between two algorithms. The
//!   pool keeps only codes the library knows for the whole period drawn from (see
//!   `tests/independent/cf_pool.py`, which produced the pool).
//! - Letters of non-Latin scripts: we refuse them (`CarattereNonTraslitterabile`), the
//!   library transliterates them with unidecode. A deliberate difference: ANPR names are
//!   in the Latin alphabet, and guessing a transliteration computes someone else's code.
//! - Names without letters: we refuse them (`NessunaLettera`), the library pads to `XXX`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anpr_domain::codice_fiscale::{calcola, decodifica, omocodici, DatiCalcolo};
use anpr_domain::ids::{CodiceCatastale, Sesso};
use chrono::{Datelike, Days, NaiveDate};
use serde_json::json;

const PERSONE: usize = 3000;

/// What kind of place a cadastral code was at the time of the births drawn for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Luogo {
    /// A municipality that exists today.
    Attivo,
    /// A municipality that no longer exists (merged or abolished); births are drawn from
    /// before it ceased.
    Cessato,
    /// A foreign state (Z code).
    Estero,
}

/// Cadastral code, first and last date of validity (clipped to 1900-2025), kind. Chosen
/// from `shared/reference/anpr/tables` (ANPR_archivio_comuni.csv, tab_Stati_Esteri.csv
/// column CODAT) by `tests/independent/cf_pool.py`.
const POOL: &[(&str, &str, &str, Luogo)] = &[
    ("A662", "1900-01-01", "2025-12-31", Luogo::Attivo), // BARI
    ("A944", "1900-01-01", "2025-12-31", Luogo::Attivo), // BOLOGNA
    ("C351", "1900-01-01", "2025-12-31", Luogo::Attivo), // CATANIA
    ("D612", "1900-01-01", "2025-12-31", Luogo::Attivo), // FIRENZE
    ("F205", "1900-01-01", "2025-12-31", Luogo::Attivo), // MILANO
    ("F839", "1900-01-01", "2025-12-31", Luogo::Attivo), // NAPOLI
    ("G273", "1900-01-01", "2025-12-31", Luogo::Attivo), // PALERMO
    ("H501", "1900-01-01", "2025-12-31", Luogo::Attivo), // ROMA
    ("L219", "1900-01-01", "2025-12-31", Luogo::Attivo), // TORINO
    ("L736", "1900-01-01", "2025-12-31", Luogo::Attivo), // VENEZIA
    ("A001", "1900-01-01", "2025-12-31", Luogo::Attivo), // ABANO TERME
    ("A246", "1927-06-07", "2025-12-31", Luogo::Attivo), // ALZANO LOMBARDO
    ("A486", "1900-01-01", "2025-12-31", Luogo::Attivo), // ATINA
    ("A740", "1900-01-01", "2025-12-31", Luogo::Attivo), // BELFORTE ALL'ISAURO
    ("B008", "1900-01-01", "2025-12-31", Luogo::Attivo), // BORGOROSE
    ("B284", "1946-12-24", "2025-12-31", Luogo::Attivo), // BUSANO
    ("B554", "1900-01-01", "2025-12-31", Luogo::Attivo), // CAMPONOGARA
    ("B802", "1900-01-01", "2025-12-31", Luogo::Attivo), // CAROLEI
    ("C064", "1900-01-01", "2025-12-31", Luogo::Attivo), // CASTEL BOGLIONE
    ("C312", "1900-01-01", "2025-12-31", Luogo::Attivo), // CASTIGLIONE DELLE STIVIERE
    ("C564", "1900-01-01", "2025-12-31", Luogo::Attivo), // CESANA TORINESE
    ("C819", "1900-01-01", "2025-12-31", Luogo::Attivo), // COGGIOLA
    ("D100", "1900-01-01", "2025-12-31", Luogo::Attivo), // COSSOINE
    ("D384", "1900-01-01", "2025-12-31", Luogo::Attivo), // DUMENZA
    ("D651", "1920-10-16", "2025-12-31", Luogo::Attivo), // FOLGARIA
    ("D892", "1900-01-01", "2025-12-31", Luogo::Attivo), // GAMBARANA
    ("E145", "1900-01-01", "2025-12-31", Luogo::Attivo), // GRANTORTO
    ("E406", "1900-01-01", "2025-12-31", Luogo::Attivo), // LAGNASCO
    ("E673", "1947-11-26", "2025-12-31", Luogo::Attivo), // LONGHENA
    ("E938", "1920-10-16", "2025-12-31", Luogo::Attivo), // MAREBBE
    ("F193", "1946-12-17", "2025-12-31", Luogo::Attivo), // MICIGLIANO
    ("F454", "1900-01-01", "2025-12-31", Luogo::Attivo), // MONTECASSIANO
    ("F701", "1900-01-01", "2025-12-31", Luogo::Attivo), // MONTÙ BECCARIA
    ("F958", "1950-04-05", "2025-12-31", Luogo::Attivo), // NOVEDRATE
    ("G204", "1900-01-01", "2025-12-31", Luogo::Attivo), // OZZANO MONFERRATO
    ("G455", "1900-01-01", "2025-12-31", Luogo::Attivo), // PERITO
    ("G705", "1900-01-01", "2025-12-31", Luogo::Attivo), // PISCINA
    ("G961", "1900-01-01", "2025-12-31", Luogo::Attivo), // POZZOLO FORMIGARO
    ("H257", "1900-01-01", "2025-12-31", Luogo::Attivo), // REZZO
    ("H502", "1900-01-01", "2025-12-31", Luogo::Attivo), // ROMAGNANO SESIA
    ("H775", "1900-01-01", "2025-12-31", Luogo::Attivo), // SAN BENIGNO CANAVESE
    ("I029", "1900-01-01", "2025-12-31", Luogo::Attivo), // SAN MAURO FORTE
    ("I304", "1900-01-01", "2025-12-31", Luogo::Attivo), // SANTARCANGELO DI ROMAGNA
    ("I562", "1900-01-01", "2025-12-31", Luogo::Attivo), // SEDEGLIANO
    ("I821", "1900-01-01", "2025-12-31", Luogo::Attivo), // SOMMACAMPAGNA
    ("L084", "1900-01-01", "2025-12-31", Luogo::Attivo), // TEGLIO
    ("L336", "1900-01-01", "2025-12-31", Luogo::Attivo), // TRASQUERA
    ("L601", "1929-05-15", "2025-12-31", Luogo::Attivo), // VALLE DI CASIES
    ("L888", "1900-01-01", "2025-12-31", Luogo::Attivo), // VIGNOLO
    ("M167", "1900-01-01", "2025-12-31", Luogo::Attivo), // ZERBOLÒ
    ("M423", "2019-01-30", "2025-12-31", Luogo::Attivo), // VALBRENTA
    ("A002", "1900-01-01", "1928-03-06", Luogo::Cessato), // ABBADIA SOPRA ADDA
    ("A331", "1900-01-01", "1926-02-05", Luogo::Cessato), // APPARIZIONE
    ("A608", "1920-10-16", "1928-11-26", Luogo::Cessato), // BANCO
    ("A866", "1900-01-01", "2018-12-31", Luogo::Cessato), // BIGARELLO
    ("B078", "1920-10-16", "1928-09-08", Luogo::Cessato), // BOSENTINO
    ("B273", "1900-01-01", "1924-01-13", Luogo::Cessato), // BURANO
    ("B518", "1920-10-16", "1928-04-02", Luogo::Cessato), // CAMPO
    ("B821", "1900-01-01", "1929-02-07", Luogo::Cessato), // CARPIGNAGO
    ("C192", "1900-01-01", "1928-04-17", Luogo::Cessato), // CASTELLONE AL VOLTURNO
    ("C546", "1900-01-01", "1929-03-01", Luogo::Cessato), // CERVAROLO
    ("C827", "1900-01-01", "1928-06-28", Luogo::Cessato), // COIMO
    ("D047", "1900-01-01", "1927-12-24", Luogo::Cessato), // CORTABBIO
    ("D241", "1900-01-01", "1928-07-28", Luogo::Cessato), // CUZZAGO
    ("D387", "1900-01-01", "1928-02-21", Luogo::Cessato), // DUSINO
    ("D602", "1900-01-01", "1927-01-12", Luogo::Cessato), // FINALE PIA
    ("D877", "1900-01-01", "1927-08-02", Luogo::Cessato), // GALLICO
    ("E181", "1920-10-16", "1928-03-07", Luogo::Cessato), // GRIMALDO
    ("E449", "1920-10-16", "1928-06-19", Luogo::Cessato), // LAPPAGO
    ("E643", "1920-10-16", "1928-02-08", Luogo::Cessato), // LOCCA
    ("E849", "1921-01-05", "1928-09-08", Luogo::Cessato), // MALCHINA
    ("F143", "1900-01-01", "1928-02-25", Luogo::Cessato), // MERCURAGO
    ("F362", "1920-10-16", "1929-03-24", Luogo::Cessato), // MONGHEZZO DI FUORI
    ("F757", "1920-10-16", "1928-12-09", Luogo::Cessato), // MORTER
    ("G024", "1900-01-01", "1928-06-30", Luogo::Cessato), // OLGIA
    ("G329", "1956-11-10", "2014-02-03", Luogo::Cessato), // PARÈ
    ("G595", "1900-01-01", "1927-01-12", Luogo::Cessato), // PIEDILUCO
    ("G928", "1900-01-01", "1927-12-08", Luogo::Cessato), // PORZANO
    ("H111", "1900-01-01", "1928-06-26", Luogo::Cessato), // QUARTI
    ("H306", "1920-10-16", "1928-05-29", Luogo::Cessato), // RIOMOLINO
    ("H616", "1929-05-14", "1947-05-22", Luogo::Cessato), // ROVETTA CON FINO
    ("H871", "1921-01-05", "1947-09-15", Luogo::Cessato), // SAN GIACOMO IN COLLE
    ("I106", "1900-01-01", "1928-04-16", Luogo::Cessato), // SAN PIETRO D'ORZIO
    ("I398", "1900-01-01", "1929-02-04", Luogo::Cessato), // SAN VITO IN MONTE
    ("I650", "1900-01-01", "2017-05-04", Luogo::Cessato), // SERRA PEDACE
    ("I897", "1900-01-01", "1928-05-18", Luogo::Cessato), // SPEZZANO GRANDE
    ("L101", "1900-01-01", "2013-12-31", Luogo::Cessato), // TEOR
    ("L343", "1900-01-01", "1928-04-30", Luogo::Cessato), // TRAVERSA
    ("L602", "1921-01-05", "1947-09-15", Luogo::Cessato), // VALLE D'ISTRIA
    ("L761", "1900-01-01", "1928-04-18", Luogo::Cessato), // VERGANO NOVARESE
    ("L941", "1920-10-16", "1928-05-29", Luogo::Cessato), // VILLA D'UTA
    ("M191", "1900-01-01", "1929-05-28", Luogo::Cessato), // ZORLESCO
    ("Z100", "1900-01-01", "2025-12-31", Luogo::Estero), // ALBANIA
    ("Z107", "1900-01-01", "2025-12-31", Luogo::Estero), // DANIMARCA
    ("Z116", "1900-01-01", "2025-12-31", Luogo::Estero), // IRLANDA
    ("Z125", "1900-01-01", "2025-12-31", Luogo::Estero), // NORVEGIA
    ("Z131", "1900-01-01", "2025-12-31", Luogo::Estero), // SPAGNA
    ("Z140", "1900-01-01", "2025-12-31", Luogo::Estero), // MOLDOVA
    ("Z150", "1900-01-01", "2025-12-31", Luogo::Estero), // SLOVENIA
    ("Z159", "1900-01-01", "2025-12-31", Luogo::Estero), // MONTENEGRO
    ("Z205", "1900-01-01", "2025-12-31", Luogo::Estero), // BHUTAN
    ("Z211", "1900-01-01", "2025-12-31", Luogo::Estero), // CIPRO
    ("Z219", "1900-01-01", "2025-12-31", Luogo::Estero), // GIAPPONE
    ("Z226", "1900-01-01", "2025-12-31", Luogo::Estero), // ISRAELE
    ("Z234", "1900-01-01", "2025-12-31", Luogo::Estero), // NEPAL
    ("Z242", "1900-01-01", "2025-12-31", Luogo::Estero), // TIMOR ORIENTALE
    ("Z251", "1900-01-01", "2025-12-31", Luogo::Estero), // VIETNAM
    ("Z257", "1900-01-01", "2025-12-31", Luogo::Estero), // TAGIKISTAN
    ("Z305", "1900-01-01", "2025-12-31", Luogo::Estero), // BURUNDI
    ("Z311", "1900-01-01", "2025-12-31", Luogo::Estero), // CONGO
    ("Z317", "1900-01-01", "2025-12-31", Luogo::Estero), // GAMBIA
    ("Z325", "1900-01-01", "2025-12-31", Luogo::Estero), // LIBERIA
    ("Z331", "1900-01-01", "2025-12-31", Luogo::Estero), // MAURITANIA
    ("Z337", "1900-01-01", "2025-12-31", Luogo::Estero), // ZIMBABWE
    ("Z345", "1900-01-01", "2025-12-31", Luogo::Estero), // SOMALIA
    ("Z353", "1900-01-01", "2025-12-31", Luogo::Estero), // UGANDA
    ("Z361", "1900-01-01", "2025-12-31", Luogo::Estero), // GIBUTI
    ("Z504", "1900-01-01", "2025-12-31", Luogo::Estero), // CUBA
    ("Z511", "1900-01-01", "2025-12-31", Luogo::Estero), // HONDURAS
    ("Z524", "1900-01-01", "2025-12-31", Luogo::Estero), // GRENADA
    ("Z600", "1900-01-01", "2025-12-31", Luogo::Estero), // ARGENTINA
    ("Z606", "1900-01-01", "2025-12-31", Luogo::Estero), // GUYANA
    ("Z614", "1900-01-01", "2025-12-31", Luogo::Estero), // VENEZUELA
    ("Z724", "1900-01-01", "2025-12-31", Luogo::Estero), // ISOLE SALOMONE
    ("Z733", "1900-01-01", "2025-12-31", Luogo::Estero), // VANUATU
];

const COGNOMI: &[&str] = &[
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Mancini",
    "Costa",
    "Giordano",
    "Rizzo",
    "Lombardi",
    "Moretti",
    "D'Angelo",
    "D’Amico",
    "DʼAlessandro",
    "Dell'Acqua",
    "De Santis",
    "Lo Russo",
    "La Rosa",
    "Di Pietro",
    "Dall'Olio",
    "Sant'Angelo",
    "Della  Valle",
    "Marchetti-Lamagna",
    "Fo",
    "Bo",
    "Li",
    "Re",
    "Ré",
    "Yu",
    "Ng",
    "Oe",
    "Aia",
    "Iai",
    "Cantù",
    "Calò",
    "Abbà",
    "Niccolò",
    "Ìzzo",
    "Perù",
    "Von Müller",
    "Weiß",
    "Øberg",
    "Ærø",
    "Łukasiewicz",
    "Núñez",
    "Gonçalves",
    "Šimić",
    "Dvořák",
    "Ibáñez",
    "O'Brien",
    "Mc Donald",
    "Yıldız",
    "Ĳzerman",
    "Ħaġar",
    "Ŋata",
    "Đukić",
    "Þórsson",
    "Ðurić",
    "Xhaferi",
    "Krzyżanowski",
    "Wójcik",
    "Ahn",
    "Kim",
];

const NOMI: &[&str] = &[
    "Mario",
    "Giuseppe",
    "Giovanni",
    "Antonio",
    "Francesco",
    "Luca",
    "Marco",
    "Alessandro",
    "Andrea",
    "Matteo",
    "Lorenzo",
    "Niccolò",
    "Nicolò",
    "Maria",
    "Anna",
    "Giulia",
    "Sofia",
    "Aurora",
    "Chiara",
    "Francesca",
    "Sara",
    "Martina",
    "Giorgia",
    "Alice",
    "Maria Grazia",
    "Anna Maria",
    "Gian Luca",
    "Pier Paolo",
    "Jean-Luc",
    "Zoë",
    "Noè",
    "Mosè",
    "Bo",
    "Li",
    "Ugo",
    "Ida",
    "Eva",
    "Aoi",
    "Aia",
    "Ia",
    "Ue",
    "Christian",
    "Cristoforo",
    "Gualtiero",
    "Xhulja",
    "Krzysztof",
    "Björn",
    "Søren",
    "Åsa",
    "Ægir",
    "Đorđe",
    "Þór",
    "Łucja",
    "Ignazio",
    "Ilaria",
    "Yuri",
    "Jürgen",
    "Gioele",
    "Ettore",
    "D'Artagnan",
];

/// SplitMix64: tiny, well-mixed, and reproducible on every platform, which is all a
/// deterministic test-data generator needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        // n is small, so the modulo bias is negligible for test data.
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn date(iso: &str) -> NaiveDate {
    iso.parse()
        .unwrap_or_else(|e| panic!("pool date {iso}: {e}"))
}

/// Upper-cases, lower-cases or keeps a name, as registry data comes in every style.
fn random_case(rng: &mut Rng, name: &str) -> String {
    match rng.below(4) {
        0 => name.to_uppercase(),
        1 => name.to_lowercase(),
        _ => name.to_owned(),
    }
}

struct Persona {
    cognome: String,
    nome: String,
    sesso: Sesso,
    data_nascita: NaiveDate,
    luogo_nascita: CodiceCatastale,
    tipo_luogo: Luogo,
}

fn genera(quante: usize) -> Vec<Persona> {
    let mut rng = Rng(0x00C0_D1CE_F15C_A1E5);
    (0..quante)
        .map(|indice| {
            let &(codice, inizio, fine, tipo_luogo) = rng.pick(POOL);
            let (inizio, fine) = (date(inizio), date(fine));
            let giorni =
                usize::try_from((fine - inizio).num_days()).expect("pool range ordered") + 1;
            let mut data_nascita = inizio + Days::new(rng.below(giorni) as u64);
            // Make sure leap days are exercised: every 50th person is moved to the nearest
            // 29 February inside the range, if there is one.
            if indice % 50 == 0 {
                let bisestile = (data_nascita.year()..=fine.year())
                    .filter_map(|anno| NaiveDate::from_ymd_opt(anno, 2, 29))
                    .find(|d| *d >= inizio && *d <= fine);
                data_nascita = bisestile.unwrap_or(data_nascita);
            }
            let cognome = *rng.pick(COGNOMI);
            let nome = *rng.pick(NOMI);
            Persona {
                cognome: random_case(&mut rng, cognome),
                nome: random_case(&mut rng, nome),
                sesso: if rng.below(2) == 0 {
                    Sesso::Maschio
                } else {
                    Sesso::Femmina
                },
                data_nascita,
                luogo_nascita: codice
                    .parse()
                    .unwrap_or_else(|e| panic!("pool code {codice}: {e}")),
                tipo_luogo,
            }
        })
        .collect()
}

#[test]
fn pool_is_well_formed() {
    for &(codice, inizio, fine, tipo) in POOL {
        let luogo: CodiceCatastale = codice.parse().unwrap_or_else(|e| panic!("{codice}: {e}"));
        assert!(date(inizio) <= date(fine), "{codice}");
        assert!(
            date(inizio) >= date("1900-01-01") && date(fine) <= date("2025-12-31"),
            "{codice}"
        );
        assert_eq!(luogo.is_foreign_state(), tipo == Luogo::Estero, "{codice}");
        assert_eq!(
            tipo == Luogo::Cessato,
            date(fine) < date("2025-12-31"),
            "{codice}"
        );
    }
    for tipo in [Luogo::Attivo, Luogo::Cessato, Luogo::Estero] {
        assert!(
            POOL.iter().filter(|p| p.3 == tipo).count() >= 30,
            "{tipo:?} under-represented"
        );
    }
}

#[test]
fn agrees_with_python_codicefiscale() {
    let persone = genera(PERSONE);
    let mut rng = Rng(42);
    let mut righe = String::new();
    for persona in &persone {
        let dati = DatiCalcolo {
            cognome: &persona.cognome,
            nome: &persona.nome,
            sesso: persona.sesso,
            data_nascita: persona.data_nascita,
            luogo_nascita: &persona.luogo_nascita,
        };
        let cf =
            calcola(&dati).unwrap_or_else(|e| panic!("{} {}: {e}", persona.cognome, persona.nome));
        let varianti = omocodici(&cf);
        let scelto = *rng.pick(&varianti);
        let decodificato = decodifica(scelto).unwrap_or_else(|e| panic!("{scelto}: {e}"));
        let riga = json!({
            "cognome": persona.cognome,
            "nome": persona.nome,
            "sesso": persona.sesso.code(),
            "data_nascita": persona.data_nascita.format("%Y-%m-%d").to_string(),
            "luogo_nascita": persona.luogo_nascita.as_str(),
            "cf": cf.as_str(),
            "omocodici": varianti.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
            "scelto": scelto.as_str(),
            "decodifica_scelto": {
                "sesso": decodificato.sesso.code(),
                "giorno": decodificato.giorno,
                "mese": decodificato.mese,
                "yy": decodificato.anno.yy(),
                "luogo": decodificato.luogo_nascita.as_str(),
                "livello": decodificato.livello_omocodia,
            },
        });
        righe.push_str(&riga.to_string());
        righe.push('\n');
    }

    // The sample must contain every category the comment above promises.
    for tipo in [Luogo::Attivo, Luogo::Cessato, Luogo::Estero] {
        assert!(
            persone.iter().filter(|p| p.tipo_luogo == tipo).count() >= 500,
            "too few {tipo:?}"
        );
    }
    let conta = |f: &dyn Fn(&Persona) -> bool| persone.iter().filter(|p| f(p)).count();
    assert!(conta(&|p| p.data_nascita.month() == 2 && p.data_nascita.day() == 29) >= 20);
    assert!(
        conta(&|p| p.data_nascita.year() < 1926) >= 100,
        "people who could be over 100"
    );
    assert!(conta(&|p| p.cognome.contains(['\'', '’', 'ʼ'])) >= 100);
    assert!(conta(&|p| p.cognome.contains(' ') || p.nome.contains(' ')) >= 100);
    assert!(conta(&|p| !p.cognome.is_ascii() || !p.nome.is_ascii()) >= 500);
    assert!(conta(&|p| p.cognome.chars().count() == 2) >= 100);

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/independent/cf_crosscheck.py");
    let python = std::env::var("ANPR_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let aiuto = "install Python 3 and run `pip install -r tests/independent/requirements.txt` \
                 from the workspace root";
    let mut figlio = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{python}`: {e}; {aiuto}"));
    // Write from another thread: the script prints while it reads, and a full pipe in
    // each direction would otherwise deadlock.
    let mut ingresso = figlio.stdin.take().expect("stdin was piped");
    let scrittore = std::thread::spawn(move || ingresso.write_all(righe.as_bytes()));
    let uscita = figlio
        .wait_with_output()
        .expect("waiting for the cross-check script");
    let scritto = scrittore.join().expect("writer thread");

    let stdout = String::from_utf8_lossy(&uscita.stdout);
    let stderr = String::from_utf8_lossy(&uscita.stderr);
    // Checked before the write result: a script that exits at once breaks the pipe.
    if uscita.status.code() == Some(2) {
        panic!("python-codicefiscale is missing: {aiuto}\n{stderr}");
    }
    if let Err(errore) = scritto {
        panic!("writing to the cross-check script: {errore}\n{stderr}");
    }
    let ultima = stdout.lines().last().unwrap_or_default();
    assert!(
        uscita.status.success() && ultima == format!("cf_crosscheck: {PERSONE} passed, 0 failed"),
        "cross-check failed ({}):\n{}\n{stderr}",
        uscita.status,
        stdout.lines().take(60).collect::<Vec<_>>().join("\n"),
    );
}
