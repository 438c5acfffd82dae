//! Seeding the simulator's register: positions built in code, or read from a CSV file.
//!
//! # The CSV format
//!
//! UTF-8 (a leading byte-order mark is ignored), comma-separated, one position per line,
//! `\n` or `\r\n` line ends, a header line naming the columns (in any order). A field
//! containing a comma or a quote is written between double quotes, with inner quotes
//! doubled (`"D""Amico"`); fields may not span lines. Blank lines are skipped.
//!
//! | column | content |
//! |---|---|
//! | `codice_fiscale` | the position's code: 16 characters, or 11 digits for a numeric provisional code; formally valid (check character) |
//! | `cognome`, `nome` | as the agency writes them (any case; compared folded: upper case, no accents, separators ignored) |
//! | `sesso` | `M` or `F` |
//! | `data_nascita` | `YYYY-MM-DD` |
//! | `luogo_nascita` | cadastral code, e.g. `H501` or `Z404` |
//! | `stato` | `marcato` (aligned with a registry record), `non_marcato` (empty means this), or a deliberate discrepancy: `non_unificabile` (writes and verifications of this code answer EAM9C until it is linked), `variazione_bloccata` (variations and links answer EAM93) |
//! | `collegato_a` | empty, or the code this one was linked to (replaced by); it must be in the file or already in the register; chains resolve to the last code |
//! | `in_trattamento` | `true`/`false` (also `1`/`0`, any case; empty is `false`): the position is being processed, calls answer EAM15 |
//! | `comune_residenza` | optional column: ISTAT code of the municipality of residence the agency knows (a link from another municipality answers EAM93) |
//!
//! The other discrepancies come from the data themselves: EAV31 from a row whose data
//! differ from the registry's, EAV91 from a code with no row, EAM9C also from two current
//! rows with the same five data and codes of different families (e.g. a numeric
//! provisional code and an alphanumeric one), EAM93 also from a variation or link that
//! changes more than three data. Two rows with the same data whose codes are omocodic
//! variants of one base are two different people, as the agency issues them.
//!
//! A file loads completely or not at all. A malformed row is refused with a coded
//! [`Anomalia`] naming the line and the column: EV002 for a missing mandatory value, EV001
//! for everything else (malformed value, unknown state, duplicate code, link to an unknown
//! code, a linked code marked, a cycle of links).

use std::fmt;
use std::io::{BufRead, Read};

use anpr_domain::codice_fiscale::CodiceFiscaleSoggetto;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, Sesso};

use crate::tipi::{data_iso, DatiAnagraficiAe};

/// Columns every file must have.
pub const COLONNE: [&str; 9] = [
    "codice_fiscale",
    "cognome",
    "nome",
    "sesso",
    "data_nascita",
    "luogo_nascita",
    "stato",
    "collegato_a",
    "in_trattamento",
];

/// The optional column.
pub const COLONNA_COMUNE_RESIDENZA: &str = "comune_residenza";

/// Longest line accepted (a position is about 100 bytes; this only stops runaway input).
const MAX_RIGA: usize = 4096;

/// The state a seeded position starts in (the `stato` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StatoSeme {
    /// Aligned with a registry record.
    Marcato,
    /// Present, not aligned.
    #[default]
    NonMarcato,
    /// Deliberate EAM9C: the agency holds another position of this person it cannot
    /// unify; cleared by linking the codes.
    NonUnificabile,
    /// Deliberate EAM93: the agency refuses variations and links of this position.
    VariazioneBloccata,
}

impl StatoSeme {
    /// The CSV spelling.
    pub fn codice(self) -> &'static str {
        match self {
            StatoSeme::Marcato => "marcato",
            StatoSeme::NonMarcato => "non_marcato",
            StatoSeme::NonUnificabile => "non_unificabile",
            StatoSeme::VariazioneBloccata => "variazione_bloccata",
        }
    }

    fn parse(testo: &str) -> Option<Self> {
        Some(match testo {
            "" | "non_marcato" => StatoSeme::NonMarcato,
            "marcato" => StatoSeme::Marcato,
            "non_unificabile" => StatoSeme::NonUnificabile,
            "variazione_bloccata" => StatoSeme::VariazioneBloccata,
            _ => return None,
        })
    }
}

/// One position to put into the simulator's register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosizioneSeme {
    pub codice_fiscale: CodiceFiscaleSoggetto,
    pub dati: DatiAnagraficiAe,
    pub stato: StatoSeme,
    /// The code this one was linked to (replaced by).
    pub collegato_a: Option<CodiceFiscaleSoggetto>,
    pub in_trattamento: bool,
    pub comune_residenza: Option<CodiceIstatComune>,
}

impl PosizioneSeme {
    /// A plain position: not marked, not linked, not being processed.
    pub fn new(codice_fiscale: CodiceFiscaleSoggetto, dati: DatiAnagraficiAe) -> Self {
        Self {
            codice_fiscale,
            dati,
            stato: StatoSeme::NonMarcato,
            collegato_a: None,
            in_trattamento: false,
            comune_residenza: None,
        }
    }
}

/// Why seeding failed. Nothing was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErroreSeme {
    /// The file could not be read.
    Lettura { file: String, dettaglio: String },
    /// A line (1 = the header) is refused; the anomaly names the column in `campo`.
    Riga {
        file: String,
        riga: usize,
        anomalia: Anomalia,
    },
}

impl ErroreSeme {
    /// The coded anomaly of a refused line, `None` for a read failure.
    pub fn anomalia(&self) -> Option<&Anomalia> {
        match self {
            ErroreSeme::Riga { anomalia, .. } => Some(anomalia),
            ErroreSeme::Lettura { .. } => None,
        }
    }

    /// The refused line, `None` for a read failure.
    pub fn riga(&self) -> Option<usize> {
        match self {
            ErroreSeme::Riga { riga, .. } => Some(*riga),
            ErroreSeme::Lettura { .. } => None,
        }
    }
}

impl fmt::Display for ErroreSeme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErroreSeme::Lettura { file, dettaglio } => {
                write!(f, "{file}: lettura non riuscita: {dettaglio}")
            }
            ErroreSeme::Riga {
                file,
                riga,
                anomalia,
            } => write!(f, "{file}:{riga}: {anomalia}"),
        }
    }
}

impl std::error::Error for ErroreSeme {}

/// Builds the error for `riga`, column `colonna`.
pub(crate) fn errore_riga(
    file: &str,
    riga: usize,
    colonna: &str,
    valore: &str,
    testo: impl Into<String>,
    atteso: impl Into<String>,
) -> ErroreSeme {
    let codice = if valore.is_empty() {
        CODICE_CAMPO_OBBLIGATORIO
    } else {
        CODICE_VALORE_NON_VALIDO
    };
    ErroreSeme::Riga {
        file: file.to_owned(),
        riga,
        anomalia: Anomalia::errore(codice, testo)
            .campo(colonna)
            .valore(valore)
            .atteso(atteso),
    }
}

/// Reads a whole CSV file of positions (see the module documentation) with the line each
/// starts on. `file` names the input in errors.
pub fn leggi_csv(
    file: &str,
    input: impl BufRead,
) -> Result<Vec<(usize, PosizioneSeme)>, ErroreSeme> {
    let mut righe = Vec::new();
    scorri_csv(file, input, |numero, posizione| {
        righe.push((numero, posizione));
        Ok(())
    })?;
    Ok(righe)
}

/// Streams a CSV file of positions: `per_riga` gets each position with its line, in
/// order, as soon as it is read (a register of millions of positions is never held
/// whole). Returns the number of positions. Same checks as [`leggi_csv`].
pub fn scorri_csv(
    file: &str,
    mut input: impl BufRead,
    mut per_riga: impl FnMut(usize, PosizioneSeme) -> Result<(), ErroreSeme>,
) -> Result<usize, ErroreSeme> {
    let mut quante = 0usize;
    let mut intestazione: Option<Intestazione> = None;
    let mut buffer = Vec::new();
    let mut numero = 0usize;
    loop {
        buffer.clear();
        let letti = Read::take(&mut input, MAX_RIGA as u64 + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(|e| ErroreSeme::Lettura {
                file: file.to_owned(),
                dettaglio: e.to_string(),
            })?;
        if letti == 0 {
            break;
        }
        numero += 1;
        if buffer.len() > MAX_RIGA {
            return Err(errore_riga(
                file,
                numero,
                "riga",
                "(troppo lunga)",
                "riga troppo lunga",
                format!("al più {MAX_RIGA} byte"),
            ));
        }
        let testo = std::str::from_utf8(&buffer).map_err(|_| {
            errore_riga(
                file,
                numero,
                "riga",
                "(byte non UTF-8)",
                "riga non codificata in UTF-8",
                "testo UTF-8",
            )
        })?;
        let mut testo = testo.trim_end_matches(['\n', '\r']);
        if numero == 1 {
            testo = testo.trim_start_matches('\u{feff}');
        }
        if testo.trim().is_empty() {
            continue;
        }
        let campi = dividi(testo).map_err(|motivo| {
            errore_riga(
                file,
                numero,
                "riga",
                testo,
                motivo,
                "CSV separato da virgole",
            )
        })?;
        match &intestazione {
            None => intestazione = Some(Intestazione::leggi(file, numero, &campi)?),
            Some(colonne) => {
                per_riga(numero, colonne.posizione(file, numero, &campi)?)?;
                quante += 1;
            }
        }
    }
    if intestazione.is_none() {
        return Err(errore_riga(
            file,
            1,
            "intestazione",
            "",
            "file vuoto: manca l'intestazione",
            COLONNE.join(","),
        ));
    }
    Ok(quante)
}

/// Splits one line into fields, undoubling quotes inside quoted fields.
fn dividi(riga: &str) -> Result<Vec<String>, String> {
    let mut campi = Vec::new();
    let mut caratteri = riga.chars().peekable();
    loop {
        let mut campo = String::new();
        if caratteri.peek() == Some(&'"') {
            caratteri.next();
            loop {
                match caratteri.next() {
                    Some('"') if caratteri.peek() == Some(&'"') => {
                        caratteri.next();
                        campo.push('"');
                    }
                    Some('"') => break,
                    Some(c) => campo.push(c),
                    None => return Err("campo tra virgolette non chiuso".to_owned()),
                }
            }
            match caratteri.next() {
                None => {
                    campi.push(campo);
                    return Ok(campi);
                }
                Some(',') => campi.push(campo),
                Some(c) => {
                    return Err(format!(
                        "carattere {c:?} dopo un campo tra virgolette: attesa una virgola"
                    ))
                }
            }
        } else {
            loop {
                match caratteri.next() {
                    None => {
                        campi.push(campo);
                        return Ok(campi);
                    }
                    Some(',') => {
                        campi.push(campo);
                        break;
                    }
                    Some('"') => {
                        return Err("virgolette all'interno di un campo non quotato".to_owned())
                    }
                    Some(c) => campo.push(c),
                }
            }
        }
    }
}

/// Column positions read from the header.
#[derive(Debug)]
struct Intestazione {
    /// Index of each of [`COLONNE`], in that order.
    indici: [usize; 9],
    comune_residenza: Option<usize>,
    larghezza: usize,
}

impl Intestazione {
    fn leggi(file: &str, riga: usize, campi: &[String]) -> Result<Self, ErroreSeme> {
        for (i, nome) in campi.iter().enumerate() {
            let nome = nome.trim();
            let noto = COLONNE.contains(&nome) || nome == COLONNA_COMUNE_RESIDENZA;
            if !noto {
                return Err(errore_riga(
                    file,
                    riga,
                    "intestazione",
                    nome,
                    format!("colonna sconosciuta {nome:?}"),
                    format!("{},{COLONNA_COMUNE_RESIDENZA}", COLONNE.join(",")),
                ));
            }
            if campi[..i].iter().any(|c| c.trim() == nome) {
                return Err(errore_riga(
                    file,
                    riga,
                    "intestazione",
                    nome,
                    format!("colonna {nome:?} ripetuta"),
                    "ogni colonna una volta",
                ));
            }
        }
        let posizione = |nome: &str| campi.iter().position(|c| c.trim() == nome);
        let mut indici = [0usize; 9];
        for (slot, nome) in indici.iter_mut().zip(COLONNE) {
            *slot = posizione(nome).ok_or_else(|| {
                errore_riga(
                    file,
                    riga,
                    "intestazione",
                    "",
                    format!("manca la colonna {nome:?}"),
                    COLONNE.join(","),
                )
            })?;
        }
        Ok(Self {
            indici,
            comune_residenza: posizione(COLONNA_COMUNE_RESIDENZA),
            larghezza: campi.len(),
        })
    }

    fn posizione(
        &self,
        file: &str,
        riga: usize,
        campi: &[String],
    ) -> Result<PosizioneSeme, ErroreSeme> {
        if campi.len() != self.larghezza {
            return Err(errore_riga(
                file,
                riga,
                "riga",
                &format!("{} campi", campi.len()),
                "numero di campi diverso dall'intestazione",
                format!("{} campi", self.larghezza),
            ));
        }
        let campo = |i: usize| campi[self.indici[i]].trim();
        let errore = |colonna: &str, valore: &str, testo: String, atteso: &str| {
            errore_riga(file, riga, colonna, valore, testo, atteso)
        };
        let obbligatorio = |i: usize, atteso: &str| {
            let valore = campo(i);
            if valore.is_empty() {
                Err(errore(
                    COLONNE[i],
                    "",
                    format!("{} mancante", COLONNE[i]),
                    atteso,
                ))
            } else {
                Ok(valore)
            }
        };
        let codice = |colonna: &str, valore: &str| {
            valore.parse::<CodiceFiscaleSoggetto>().map_err(|e| {
                errore(
                    colonna,
                    valore,
                    format!("codice fiscale non valido: {e}"),
                    "16 caratteri con carattere di controllo corretto, o 11 cifre",
                )
            })
        };

        let testo_cf = obbligatorio(0, "il codice fiscale della posizione")?;
        let codice_fiscale = codice(COLONNE[0], testo_cf)?;
        let mut nomi = [String::new(), String::new()];
        for (slot, i) in nomi.iter_mut().zip([1usize, 2]) {
            let valore = obbligatorio(i, "un testo con almeno una lettera")?;
            if valore.chars().any(char::is_control) || !valore.chars().any(char::is_alphabetic) {
                return Err(errore(
                    COLONNE[i],
                    valore,
                    format!("{} non valido", COLONNE[i]),
                    "un testo con almeno una lettera, senza caratteri di controllo",
                ));
            }
            *slot = valore.to_owned();
        }
        let [cognome, nome] = nomi;
        let sesso_testo = obbligatorio(3, "M o F")?;
        let sesso = match sesso_testo {
            "M" => Sesso::Maschio,
            "F" => Sesso::Femmina,
            altro => {
                return Err(errore(
                    COLONNE[3],
                    altro,
                    "sesso non valido".into(),
                    "M o F",
                ))
            }
        };
        let data_testo = obbligatorio(4, "una data AAAA-MM-GG")?;
        let data_nascita = data_iso(data_testo).ok_or_else(|| {
            errore(
                COLONNE[4],
                data_testo,
                "data di nascita non valida".into(),
                "una data AAAA-MM-GG, es. 1980-01-31",
            )
        })?;
        let luogo_testo = obbligatorio(5, "un codice catastale, es. H501")?;
        let luogo_nascita = luogo_testo.parse::<CodiceCatastale>().map_err(|_| {
            errore(
                COLONNE[5],
                luogo_testo,
                "luogo di nascita non valido".into(),
                "un codice catastale: una lettera maiuscola e tre cifre, es. H501 o Z404",
            )
        })?;
        let stato_testo = campo(6);
        let stato = StatoSeme::parse(stato_testo).ok_or_else(|| {
            errore(
                COLONNE[6],
                stato_testo,
                "stato della posizione sconosciuto".into(),
                "marcato, non_marcato, non_unificabile o variazione_bloccata",
            )
        })?;
        let collegato_testo = campo(7);
        let collegato_a = if collegato_testo.is_empty() {
            None
        } else {
            Some(codice(COLONNE[7], collegato_testo)?)
        };
        let trattamento_testo = campo(8);
        let in_trattamento = match trattamento_testo.to_ascii_lowercase().as_str() {
            "" | "false" | "0" => false,
            "true" | "1" => true,
            _ => {
                return Err(errore(
                    COLONNE[8],
                    trattamento_testo,
                    "valore di in_trattamento non valido".into(),
                    "true o false (anche 1 o 0)",
                ))
            }
        };
        let comune_residenza = match self.comune_residenza.map(|i| campi[i].trim()) {
            None | Some("") => None,
            Some(valore) => Some(valore.parse::<CodiceIstatComune>().map_err(|_| {
                errore(
                    COLONNA_COMUNE_RESIDENZA,
                    valore,
                    "comune di residenza non valido".into(),
                    "un codice ISTAT di sei cifre, es. 058091",
                )
            })?),
        };
        Ok(PosizioneSeme {
            codice_fiscale,
            dati: DatiAnagraficiAe {
                cognome,
                nome,
                sesso,
                data_nascita,
                luogo_nascita,
            },
            stato,
            collegato_a,
            in_trattamento,
            comune_residenza,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTESTAZIONE: &str =
        "codice_fiscale,cognome,nome,sesso,data_nascita,luogo_nascita,stato,collegato_a,in_trattamento\n";

    fn leggi(testo: &str) -> Result<Vec<(usize, PosizioneSeme)>, ErroreSeme> {
        leggi_csv("ae.csv", testo.as_bytes())
    }

    /// Expects `testo` refused at `riga`, column `campo`, with `codice`.
    fn check_rifiuto(testo: &str, riga: usize, campo: &str, codice: &str) {
        let errore = leggi(testo).expect_err(testo);
        let anomalia = errore.anomalia().expect("a line error");
        assert_eq!(
            (
                errore.riga(),
                anomalia.campo.as_deref(),
                anomalia.codice.as_str()
            ),
            (Some(riga), Some(campo), codice),
            "{testo:?}: {errore}"
        );
        assert!(errore.to_string().starts_with(&format!("ae.csv:{riga}: ")));
    }

    #[test]
    fn reads_every_column_with_quotes_and_crlf() {
        let testo = format!(
            "\u{feff}{INTESTAZIONE}\
             RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,marcato,,false\r\n\
             \n\
             01234567897,\"D\"\"Amico, detto Gino\",Luigi,M,1970-05-06,Z404,,RSSMRA80A01H501U,TRUE\n"
        );
        let righe = leggi(&testo).unwrap();
        assert_eq!(righe.len(), 2);
        let (riga, p) = &righe[0];
        assert_eq!(*riga, 2);
        assert_eq!(p.codice_fiscale.as_str(), "RSSMRA80A01H501U");
        assert_eq!(p.stato, StatoSeme::Marcato);
        assert!(!p.in_trattamento && p.collegato_a.is_none());
        let (riga, p) = &righe[1];
        assert_eq!(*riga, 4);
        assert_eq!(p.dati.cognome, "D\"Amico, detto Gino");
        assert_eq!(p.dati.luogo_nascita.as_str(), "Z404");
        assert_eq!(p.stato, StatoSeme::NonMarcato);
        assert!(p.in_trattamento);
        assert_eq!(
            p.collegato_a.map(|c| c.to_string()).as_deref(),
            Some("RSSMRA80A01H501U")
        );
    }

    #[test]
    fn columns_in_any_order_and_the_optional_residence() {
        let testo = "stato,in_trattamento,collegato_a,comune_residenza,luogo_nascita,data_nascita,sesso,nome,cognome,codice_fiscale\n\
                     variazione_bloccata,0,,058091,H501,1980-01-01,M,Mario,Rossi,rssmra80a01h501u\n";
        let righe = leggi(testo).unwrap();
        let p = &righe[0].1;
        assert_eq!(p.stato, StatoSeme::VariazioneBloccata);
        assert_eq!(p.codice_fiscale.as_str(), "RSSMRA80A01H501U");
        assert_eq!(
            p.comune_residenza.as_ref().map(|c| c.as_str()),
            Some("058091")
        );
        assert_eq!(p.dati.nome, "Mario");
    }

    #[test]
    fn malformed_rows_name_line_and_column() {
        let buona = "RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,,,\n";
        let con = |riga: &str| format!("{INTESTAZIONE}{buona}{riga}");
        check_rifiuto(
            &con("RSSMRA80A01H501X,Rossi,Mario,M,1980-01-01,H501,,,\n"),
            3,
            "codice_fiscale",
            "EV001",
        );
        check_rifiuto(
            &con(",Rossi,Mario,M,1980-01-01,H501,,,\n"),
            3,
            "codice_fiscale",
            "EV002",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,,Mario,M,1980-01-01,H501,,,\n"),
            3,
            "cognome",
            "EV002",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,123,M,1980-01-01,H501,,,\n"),
            3,
            "nome",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,X,1980-01-01,H501,,,\n"),
            3,
            "sesso",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,M,01/01/1980,H501,,,\n"),
            3,
            "data_nascita",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,M,1980-02-30,H501,,,\n"),
            3,
            "data_nascita",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,Roma,,,\n"),
            3,
            "luogo_nascita",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,validato,,\n"),
            3,
            "stato",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,,0123456789,\n"),
            3,
            "collegato_a",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,,,forse\n"),
            3,
            "in_trattamento",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,Rossi,Mario,M,1980-01-01,H501,,\n"),
            3,
            "riga",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,\"Rossi,Mario,M,1980-01-01,H501,,,\n"),
            3,
            "riga",
            "EV001",
        );
        check_rifiuto(
            &con("RSSMRA80A01H501U,\"Rossi\"x,Mario,M,1980-01-01,H501,,,\n"),
            3,
            "riga",
            "EV001",
        );
    }

    #[test]
    fn header_problems_are_line_one() {
        check_rifiuto("", 1, "intestazione", "EV002");
        check_rifiuto(
            "codice_fiscale,cognome,nome,sesso,data_nascita,luogo_nascita,stato,collegato_a\n",
            1,
            "intestazione",
            "EV002",
        );
        check_rifiuto(
            &INTESTAZIONE.replace("stato", "stato_cf"),
            1,
            "intestazione",
            "EV001",
        );
        check_rifiuto(
            &INTESTAZIONE.replace("\n", ",nome\n"),
            1,
            "intestazione",
            "EV001",
        );
    }

    #[test]
    fn invalid_utf8_and_overlong_lines_are_refused() {
        let mut bytes = INTESTAZIONE.as_bytes().to_vec();
        bytes.extend_from_slice(b"RSSMRA80A01H501U,Ross\xff,Mario,M,1980-01-01,H501,,,\n");
        let errore = leggi_csv("ae.csv", bytes.as_slice()).unwrap_err();
        assert_eq!(errore.riga(), Some(2));
        let lunga = format!("{INTESTAZIONE}{}\n", "a".repeat(MAX_RIGA + 10));
        let errore = leggi(&lunga).unwrap_err();
        assert_eq!(errore.riga(), Some(2));
        assert_eq!(
            errore.anomalia().and_then(|a| a.campo.as_deref()),
            Some("riga")
        );
    }
}
