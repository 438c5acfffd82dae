//! Tax-code use cases (SPEC M-3.1): compute, check and decode, with the birth place
//! checked against the decoding tables.
//!
//! The algorithm lives in `anpr_domain::codice_fiscale`; what this module adds is the
//! registry's knowledge of places: a birth place is the cadastral code of a municipality
//! **valid at the birth date** (a municipality merged away in 2014 is a valid birth
//! place for someone born in 1980, not for someone born in 2020) or of a foreign state.

use anpr_domain::caller::CallerContext;
use anpr_domain::codice_fiscale::{self as cf, CodiceFiscale, DatiCalcolo, ErroreCodiceFiscale};
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::{CodiceCatastale, Sesso};
use chrono::NaiveDate;
use serde::Serialize;

use crate::authz::Permesso;
use crate::{Registry, ServiceError};

/// Input of a computation, as received (strings are parsed here, with coded errors).
#[derive(Debug, Clone, Default)]
pub struct RichiestaCalcolo {
    pub cognome: String,
    pub nome: String,
    pub sesso: String,
    pub data_nascita: String,
    /// Cadastral code of the birth municipality, or Z code of the foreign state.
    pub luogo_nascita: String,
}

/// The place a cadastral code denoted on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LuogoDecodificato {
    pub codice_catastale: String,
    /// `comune` or `statoEstero`.
    pub tipo: &'static str,
    pub denominazione: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codice_istat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigla_provincia: Option<String>,
}

/// Result of a computation: the code and its omocodic variants in the order the tax
/// agency issues them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RispostaCalcolo {
    pub codice_fiscale: String,
    pub omocodici: Vec<String>,
    pub luogo_nascita: LuogoDecodificato,
}

/// Result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RispostaVerifica {
    pub codice_fiscale: String,
    pub valido: bool,
    /// `ordinario` or `provvisorio` (11 digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tipo: Option<&'static str>,
    /// For omocodic codes, the base form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forma_base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub livello_omocodia: Option<u8>,
    /// Why it is not valid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalie: Vec<Anomalia>,
}

/// Result of a decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RispostaDecodifica {
    pub codice_fiscale: String,
    pub sesso: Sesso,
    pub giorno: u8,
    pub mese: u8,
    /// The two digits of the year and both candidate years: the code cannot tell a
    /// newborn from a centenarian.
    pub anno_due_cifre: u8,
    pub anni_candidati: [i32; 2],
    /// The latest candidate date not after today.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_nascita_probabile: Option<NaiveDate>,
    pub codice_catastale: String,
    /// The place at the probable birth date, when the tables know it then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub luogo_nascita: Option<LuogoDecodificato>,
    pub livello_omocodia: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forma_base: Option<String>,
}

/// Our code for a codice fiscale refused by the algorithm (ANPR has only EA001 for the
/// length); the precise reason is in the text and the error's own code is the value's
/// expectation.
fn anomalia_cf(campo: &str, valore: &str, err: &ErroreCodiceFiscale) -> Anomalia {
    Anomalia::errore(err.codice_anpr().unwrap_or(err.code()), err.to_string()).campo(campo).valore(valore).atteso(match err {
        ErroreCodiceFiscale::NessunaLettera { .. } | ErroreCodiceFiscale::CarattereNonTraslitterabile { .. } => {
            "almeno una lettera dell'alfabeto latino (anche accentata)"
        }
        _ => "un codice fiscale di 16 caratteri (o provvisorio numerico di 11) con carattere di controllo corretto",
    })
}

impl Registry {
    /// The place `codice` denoted on `data`: a municipality valid then, or a foreign
    /// state valid then. The error names the ANPR code for a birth place not valid at
    /// the birth date (EC007 municipalities, EC030 foreign states).
    pub fn luogo_alla_data(
        &self,
        codice: &CodiceCatastale,
        data: NaiveDate,
        campo: &str,
    ) -> Result<LuogoDecodificato, Anomalia> {
        let t = self.tables();
        if codice.is_foreign_state() {
            let stato = t.stato_estero_by_catastale(codice, data).ok_or_else(|| {
                Anomalia::errore("EC030", format!("Stato estero di nascita {codice} inesistente sulla tabella di riferimento alla data {data}"))
                    .campo(campo)
                    .valore(codice.as_str())
                    .atteso(format!("il codice catastale (Z...) di uno stato estero valido il {data}"))
            })?;
            Ok(LuogoDecodificato {
                codice_catastale: codice.to_string(),
                tipo: "statoEstero",
                denominazione: stato.nome.clone(),
                codice_istat: Some(stato.istat.clone()),
                sigla_provincia: None,
            })
        } else {
            let comune = t.comune_by_catastale(codice, data).ok_or_else(|| {
                let altri: Vec<String> = t
                    .comuni()
                    .iter()
                    .filter(|c| c.catastale.as_ref() == Some(codice))
                    .map(|c| format!("{} ({} - {})", c.nome, c.valid_from, c.valid_to.map_or("oggi".to_owned(), |d| d.to_string())))
                    .collect();
                let hint = if altri.is_empty() {
                    "il codice catastale di un comune valido alla data di nascita".to_owned()
                } else {
                    format!("un comune valido alla data di nascita; il codice {codice} indica: {}", altri.join(", "))
                };
                Anomalia::errore("EC007", format!("Comune/provincia di nascita {codice} inesistente o non valido alla data di nascita {data}"))
                    .campo(campo)
                    .valore(codice.as_str())
                    .atteso(hint)
            })?;
            Ok(LuogoDecodificato {
                codice_catastale: codice.to_string(),
                tipo: "comune",
                denominazione: comune.nome.clone(),
                codice_istat: Some(comune.istat.to_string()),
                sigla_provincia: Some(comune.sigla_provincia.clone()),
            })
        }
    }

    /// Computes the codice fiscale and its omocodic variants.
    pub async fn calcola_codice_fiscale(
        &self,
        ctx: &CallerContext,
        req: &RichiestaCalcolo,
    ) -> Result<RispostaCalcolo, ServiceError> {
        self.autorizza(ctx, Permesso::CalcoloCodiceFiscale, "calcoloCodiceFiscale")
            .await?;
        let mut anomalie = Vec::new();
        for (campo, valore) in [("cognome", &req.cognome), ("nome", &req.nome)] {
            if valore.trim().is_empty() {
                anomalie.push(
                    Anomalia::errore(
                        CODICE_CAMPO_OBBLIGATORIO,
                        format!("Il campo {campo} è obbligatorio"),
                    )
                    .campo(campo)
                    .atteso("un testo non vuoto"),
                );
            }
        }
        let sesso = req
            .sesso
            .parse::<Sesso>()
            .map_err(|e| anomalie.push(Anomalia::from_invalid("sesso", &e)))
            .ok();
        let data = NaiveDate::parse_from_str(&req.data_nascita, "%Y-%m-%d")
            .map_err(|_| {
                anomalie.push(
                    Anomalia::errore(
                        anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                        "Data di nascita non valida",
                    )
                    .campo("dataNascita")
                    .valore(&req.data_nascita)
                    .atteso("una data esistente nel formato AAAA-MM-GG"),
                )
            })
            .ok();
        if let Some(d) = data {
            if d > self.clock().today() {
                anomalie.push(
                    Anomalia::errore(
                        anpr_domain::error::CODICE_DATA_FUTURA,
                        "Data di nascita successiva alla data corrente",
                    )
                    .campo("dataNascita")
                    .valore(&req.data_nascita)
                    .atteso("una data non successiva a oggi"),
                );
            }
        }
        let luogo = req
            .luogo_nascita
            .trim()
            .to_ascii_uppercase()
            .parse::<CodiceCatastale>()
            .map_err(|e| anomalie.push(Anomalia::from_invalid("luogoNascita", &e)))
            .ok();
        let place = match (&luogo, data) {
            (Some(l), Some(d)) => self
                .luogo_alla_data(l, d, "luogoNascita")
                .map_err(|a| anomalie.push(a))
                .ok(),
            _ => None,
        };
        let (Some(sesso), Some(data), Some(luogo), Some(place), true) =
            (sesso, data, luogo, place, anomalie.is_empty())
        else {
            return Err(ServiceError::Rifiutata {
                anomalie,
                riferimento: self.riferimento(None),
            });
        };
        let dati = DatiCalcolo {
            cognome: &req.cognome,
            nome: &req.nome,
            sesso,
            data_nascita: data,
            luogo_nascita: &luogo,
        };
        let codice = cf::calcola(&dati).map_err(|e| {
            let campo = match &e {
                ErroreCodiceFiscale::NessunaLettera { campo }
                | ErroreCodiceFiscale::CarattereNonTraslitterabile { campo, .. } => {
                    campo.to_string()
                }
                _ => "codiceFiscale".to_owned(),
            };
            let valore = if campo == "cognome" {
                &req.cognome
            } else {
                &req.nome
            };
            ServiceError::Rifiutata {
                anomalie: vec![anomalia_cf(&campo, valore, &e)],
                riferimento: self.riferimento(None),
            }
        })?;
        Ok(RispostaCalcolo {
            codice_fiscale: codice.to_string(),
            omocodici: cf::omocodici(&codice)
                .iter()
                .map(ToString::to_string)
                .collect(),
            luogo_nascita: place,
        })
    }

    /// Checks a codice fiscale (ordinary, omocodic or numeric provisional). An invalid
    /// code is a normal answer (`valido: false` with the reason), not a refusal.
    pub async fn verifica_codice_fiscale(
        &self,
        ctx: &CallerContext,
        codice: &str,
    ) -> Result<RispostaVerifica, ServiceError> {
        self.autorizza(ctx, Permesso::CalcoloCodiceFiscale, "verificaCodiceFiscale")
            .await?;
        let input = codice.trim().to_ascii_uppercase();
        let base = RispostaVerifica {
            codice_fiscale: input.clone(),
            valido: false,
            tipo: None,
            forma_base: None,
            livello_omocodia: None,
            anomalie: Vec::new(),
        };
        let parsed = if input.len() == 11 {
            cf::verifica_provvisorio(&input).map(|_| None)
        } else {
            cf::verifica(&input).map(Some)
        };
        Ok(match parsed {
            Ok(None) => RispostaVerifica {
                valido: true,
                tipo: Some("provvisorio"),
                ..base
            },
            Ok(Some(c)) => {
                let livello = cf::livello_omocodia(&c);
                RispostaVerifica {
                    valido: true,
                    tipo: Some("ordinario"),
                    forma_base: (livello > 0).then(|| cf::forma_base(&c).to_string()),
                    livello_omocodia: Some(livello),
                    ..base
                }
            }
            Err(e) => RispostaVerifica {
                anomalie: vec![anomalia_cf("codiceFiscale", &input, &e)],
                ..base
            },
        })
    }

    /// Decodes a codice fiscale; the place is looked up at the probable birth date.
    pub async fn decodifica_codice_fiscale(
        &self,
        ctx: &CallerContext,
        codice: &str,
    ) -> Result<RispostaDecodifica, ServiceError> {
        self.autorizza(
            ctx,
            Permesso::CalcoloCodiceFiscale,
            "decodificaCodiceFiscale",
        )
        .await?;
        let input = codice.trim().to_ascii_uppercase();
        let dati = cf::decodifica(&input).map_err(|e| ServiceError::Rifiutata {
            anomalie: vec![anomalia_cf("codiceFiscale", &input, &e)],
            riferimento: self.riferimento(None),
        })?;
        let probabile = dati.data_nascita_probabile(self.clock().today());
        let luogo = probabile.and_then(|d| {
            self.luogo_alla_data(&dati.luogo_nascita, d, "codiceFiscale")
                .ok()
        });
        let parsed: Option<CodiceFiscale> = input.parse().ok();
        Ok(RispostaDecodifica {
            codice_fiscale: input,
            sesso: dati.sesso,
            giorno: dati.giorno,
            mese: dati.mese,
            anno_due_cifre: dati.anno.yy(),
            anni_candidati: dati.anno.candidati(),
            data_nascita_probabile: probabile,
            codice_catastale: dati.luogo_nascita.to_string(),
            luogo_nascita: luogo,
            livello_omocodia: dati.livello_omocodia,
            forma_base: parsed
                .filter(|_| dati.livello_omocodia > 0)
                .map(|c| cf::forma_base(&c).to_string()),
        })
    }
}
