//! Codice fiscale, the Italian tax code (SPEC M-3.1).
//!
//! - [`CodiceFiscale`]: the 16-character code of a natural person, formally checked by
//!   [`verifica`] (every failure has a precise, coded reason: [`ErroreCodiceFiscale`]);
//!   [`CodiceFiscaleProvvisorio`]: the 11-digit numeric provisional code; and
//!   [`CodiceFiscaleSoggetto`]: either of them, which is what a subject's record holds.
//! - [`calcola`]: the tax agency's algorithm from the five personal data ([`DatiCalcolo`]).
//! - [`omocodici`], [`forma_base`], [`livello_omocodia`]: the variants issued when codes
//!   collide, in the tax agency's order (rightmost digit first; see [`omocodia`](self#omocodia)).
//! - [`decodifica`]: what a code says (sex, day, month, two-digit year with both candidate
//!   centuries, place, omocodia level); [`coerente_con_dati`]: which data disagree with it.
//!
//! This module only knows the code's own rules: whether a cadastral code exists, or
//! existed on a birth date, is for the decoding tables (`anpr-tables`); whether the tax
//! agency issued a code is for the agency.
//!
//! # Omocodia
//!
//! When two people get the same code, the tax agency issues the later one a variant in
//! which digits are replaced by letters (0 = L, 1 = M, ..., 9 = V), starting from the
//! rightmost digit (position 15) and moving left through positions 14, 13, 11, 10, 8, 7:
//! the n-th variant has the n rightmost digits replaced. The check character is
//! recomputed for each variant.
//!
//! # Example
//!
//! ```
//! use anpr_domain::codice_fiscale::{calcola, decodifica, forma_base, omocodici, DatiCalcolo};
//! use anpr_domain::ids::{CodiceCatastale, Sesso};
//! use chrono::NaiveDate;
//!
//! let roma: CodiceCatastale = "H501".parse()?;
//! let dati = DatiCalcolo {
//!     cognome: "Rossi",
//!     nome: "Mario",
//!     sesso: Sesso::Maschio,
//!     data_nascita: NaiveDate::from_ymd_opt(1980, 1, 1).ok_or("date")?,
//!     luogo_nascita: &roma,
//! };
//! let cf = calcola(&dati)?;
//! assert_eq!(cf.as_str(), "RSSMRA80A01H501U");
//!
//! let primo = omocodici(&cf)[0];
//! assert_eq!(primo.as_str(), "RSSMRA80A01H50MM");
//! assert_eq!(forma_base(&primo), cf);
//! assert_eq!(decodifica(primo)?.anno.candidati(), [1980, 2080]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod calcolo;
mod codice;
mod decodifica;
mod errore;
mod omocodia;
mod provvisorio;
mod tabelle;

pub use calcolo::{
    calcola, codice_cognome, codice_nome, traslitterazione, CodiceNominativo, DatiCalcolo,
};
pub use codice::{verifica, CodiceFiscale};
pub use decodifica::{
    coerente_con_dati, decodifica, AnnoDueCifre, DatiDecodificati, DatoAnagrafico, Discrepanza,
};
pub use errore::{CampoNominativo, ErroreCodiceFiscale};
pub use omocodia::{forma_base, livello_omocodia, omocodia_progressiva, omocodice, omocodici};
pub use provvisorio::{verifica_provvisorio, CodiceFiscaleProvvisorio, CodiceFiscaleSoggetto};
