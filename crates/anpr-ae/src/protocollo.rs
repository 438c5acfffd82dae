//! The HTTP protocol between the registry and the tax agency: JSON over HTTP, ours.
//!
//! Every call is a `POST` of a JSON object (`Content-Type: application/json`, UTF-8) to a
//! path under the agency's base URL; codes and personal data travel only in bodies, never
//! in URLs. Field names are camelCase, as in the ANPR vocabulary; dates are `YYYY-MM-DD`.
//!
//! | path | request | answer (200) |
//! |---|---|---|
//! | `/ae/v1/valida` | `{"gestioneCF":"0".."3", "codiceFiscale"?, "dati", "comune"}` | esito |
//! | `/ae/v1/consulta` | `{"codiceFiscale"}` | `{"posizione": posizione \| null}` |
//! | `/ae/v1/conferma-ae` | `{"codiceFiscale", "dati", "comune"}` | esito |
//! | `/ae/v1/conferma-anpr` | `{"codiceFiscale", "dati", "comune"}` | esito |
//! | `/ae/v1/collega` | `{"codiceAnpr", "codiceAe", "comune"}` | esito |
//!
//! - `dati`: `{"cognome", "nome", "sesso":"M"|"F", "dataNascita", "luogoNascita"}`
//!   (`luogoNascita` a cadastral code); `comune`: the ISTAT code of the municipality.
//! - esito: `{"codiceFiscale"?, "stato", "codiciCollegati":[...], "anomalie":[...],
//!   "datiAe"?}` with `stato` one of `validato`, `nonValidato`, `provvisorio`,
//!   `datiDifformi`, `collegato`, `omocodice`, `assenteInAe`, and each anomaly
//!   `{"codice","gravita":"E"|"W","testo","campo"?,"valore"?,"atteso"?}`.
//! - posizione: `{"codiceFiscale", "dati", "marcato", "inTrattamento", "codiceAttuale"?,
//!   "codiciCollegati", "comuneResidenza"?}`.
//!
//! The agency's business answers (EAV31, EAM15, ...) are `200` esiti. A request that is
//! not the protocol is `400` (`413` beyond [`MAX_BYTE_RICHIESTA`], `404` for an unknown
//! path, `405` for a method other than `POST`) with `{"anomalie":[...]}` (EV001 malformed
//! value or body, EV002 missing field). Unknown fields are refused, so a misspelt
//! optional field is not silently ignored.

use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, Sesso};
use anpr_domain::scheda::StatoCodiceFiscale;
use serde::{Deserialize, Serialize};

use crate::tipi::{
    data_iso, DatiAnagraficiAe, EsitoAe, GestioneCf, PosizioneAe, RichiestaAe,
    RichiestaAllineamento, RichiestaCollegamento,
};

/// Verification and attribution.
pub const PERCORSO_VALIDA: &str = "/ae/v1/valida";
/// Consultation by code.
pub const PERCORSO_CONSULTA: &str = "/ae/v1/consulta";
/// "Conferma AE".
pub const PERCORSO_CONFERMA_AE: &str = "/ae/v1/conferma-ae";
/// "Conferma ANPR".
pub const PERCORSO_CONFERMA_ANPR: &str = "/ae/v1/conferma-anpr";
/// Link of two codes.
pub const PERCORSO_COLLEGA: &str = "/ae/v1/collega";

/// Largest request body the simulator accepts (requests are a few hundred bytes).
pub const MAX_BYTE_RICHIESTA: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DatiWire {
    pub cognome: String,
    pub nome: String,
    pub sesso: String,
    pub data_nascita: String,
    pub luogo_nascita: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RichiestaValidaWire {
    #[serde(rename = "gestioneCF")]
    pub gestione_cf: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codice_fiscale: Option<String>,
    pub dati: DatiWire,
    pub comune: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RichiestaConsultaWire {
    pub codice_fiscale: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RispostaConsultaWire {
    pub posizione: Option<PosizioneWire>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PosizioneWire {
    pub codice_fiscale: String,
    pub dati: DatiWire,
    pub marcato: bool,
    pub in_trattamento: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codice_attuale: Option<String>,
    #[serde(default)]
    pub codici_collegati: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comune_residenza: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RichiestaAllineamentoWire {
    pub codice_fiscale: String,
    pub dati: DatiWire,
    pub comune: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RichiestaCollegamentoWire {
    pub codice_anpr: String,
    pub codice_ae: String,
    pub comune: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EsitoWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codice_fiscale: Option<String>,
    pub stato: String,
    #[serde(default)]
    pub codici_collegati: Vec<String>,
    #[serde(default)]
    pub anomalie: Vec<Anomalia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dati_ae: Option<DatiWire>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErroreWire {
    pub anomalie: Vec<Anomalia>,
}

fn stato_wire(stato: StatoCodiceFiscale) -> &'static str {
    match stato {
        StatoCodiceFiscale::Validato => "validato",
        StatoCodiceFiscale::NonValidato => "nonValidato",
        StatoCodiceFiscale::Provvisorio => "provvisorio",
        StatoCodiceFiscale::DatiDifformi => "datiDifformi",
        StatoCodiceFiscale::Collegato => "collegato",
        StatoCodiceFiscale::Omocodice => "omocodice",
        StatoCodiceFiscale::AssenteInAe => "assenteInAe",
    }
}

fn stato_da_wire(testo: &str) -> Result<StatoCodiceFiscale, Anomalia> {
    Ok(match testo {
        "validato" => StatoCodiceFiscale::Validato,
        "nonValidato" => StatoCodiceFiscale::NonValidato,
        "provvisorio" => StatoCodiceFiscale::Provvisorio,
        "datiDifformi" => StatoCodiceFiscale::DatiDifformi,
        "collegato" => StatoCodiceFiscale::Collegato,
        "omocodice" => StatoCodiceFiscale::Omocodice,
        "assenteInAe" => StatoCodiceFiscale::AssenteInAe,
        _ => return Err(non_valido(
            "stato",
            testo,
            "validato, nonValidato, provvisorio, datiDifformi, collegato, omocodice o assenteInAe",
        )),
    })
}

fn non_valido(campo: &str, valore: &str, atteso: &str) -> Anomalia {
    Anomalia::errore(
        CODICE_VALORE_NON_VALIDO,
        format!("Valore non valido per {campo}"),
    )
    .campo(campo)
    .valore(valore)
    .atteso(atteso)
}

fn obbligatorio(campo: &str, valore: &str) -> Result<(), Anomalia> {
    if valore.trim().is_empty() {
        return Err(
            Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, format!("{campo} obbligatorio"))
                .campo(campo),
        );
    }
    Ok(())
}

fn comune_da_wire(campo: &str, testo: &str) -> Result<CodiceIstatComune, Anomalia> {
    obbligatorio(campo, testo)?;
    testo
        .parse()
        .map_err(|_| non_valido(campo, testo, "un codice ISTAT di sei cifre, es. 058091"))
}

impl From<&DatiAnagraficiAe> for DatiWire {
    fn from(d: &DatiAnagraficiAe) -> Self {
        Self {
            cognome: d.cognome.clone(),
            nome: d.nome.clone(),
            sesso: d.sesso.code().to_owned(),
            data_nascita: d.data_nascita.format("%Y-%m-%d").to_string(),
            luogo_nascita: d.luogo_nascita.as_str().to_owned(),
        }
    }
}

impl DatiWire {
    /// Parses the data; `prefisso` is the path of the object in the body (`dati`).
    pub fn in_dominio(&self, prefisso: &str) -> Result<DatiAnagraficiAe, Anomalia> {
        let campo = |nome: &str| format!("{prefisso}.{nome}");
        obbligatorio(&campo("cognome"), &self.cognome)?;
        obbligatorio(&campo("nome"), &self.nome)?;
        obbligatorio(&campo("sesso"), &self.sesso)?;
        obbligatorio(&campo("dataNascita"), &self.data_nascita)?;
        obbligatorio(&campo("luogoNascita"), &self.luogo_nascita)?;
        let sesso = match self.sesso.as_str() {
            "M" => Sesso::Maschio,
            "F" => Sesso::Femmina,
            altro => return Err(non_valido(&campo("sesso"), altro, "M o F")),
        };
        let data_nascita = data_iso(&self.data_nascita).ok_or_else(|| {
            non_valido(
                &campo("dataNascita"),
                &self.data_nascita,
                "una data AAAA-MM-GG",
            )
        })?;
        let luogo_nascita: CodiceCatastale = self.luogo_nascita.parse().map_err(|_| {
            non_valido(
                &campo("luogoNascita"),
                &self.luogo_nascita,
                "un codice catastale, es. H501 o Z404",
            )
        })?;
        Ok(DatiAnagraficiAe {
            cognome: self.cognome.clone(),
            nome: self.nome.clone(),
            sesso,
            data_nascita,
            luogo_nascita,
        })
    }
}

impl From<&RichiestaAe> for RichiestaValidaWire {
    fn from(r: &RichiestaAe) -> Self {
        Self {
            gestione_cf: r.gestione.codice().to_owned(),
            codice_fiscale: r.codice_fiscale.clone(),
            dati: (&r.dati).into(),
            comune: r.comune.as_str().to_owned(),
        }
    }
}

impl RichiestaValidaWire {
    pub fn in_dominio(&self) -> Result<RichiestaAe, Anomalia> {
        obbligatorio("gestioneCF", &self.gestione_cf)?;
        let gestione: GestioneCf = self
            .gestione_cf
            .parse()
            .map_err(|e| Anomalia::from_invalid("gestioneCF", &e))?;
        Ok(RichiestaAe {
            gestione,
            codice_fiscale: self.codice_fiscale.clone(),
            dati: self.dati.in_dominio("dati")?,
            comune: comune_da_wire("comune", &self.comune)?,
        })
    }
}

impl From<&RichiestaAllineamento> for RichiestaAllineamentoWire {
    fn from(r: &RichiestaAllineamento) -> Self {
        Self {
            codice_fiscale: r.codice_fiscale.clone(),
            dati: (&r.dati).into(),
            comune: r.comune.as_str().to_owned(),
        }
    }
}

impl RichiestaAllineamentoWire {
    pub fn in_dominio(&self) -> Result<RichiestaAllineamento, Anomalia> {
        obbligatorio("codiceFiscale", &self.codice_fiscale)?;
        Ok(RichiestaAllineamento {
            codice_fiscale: self.codice_fiscale.clone(),
            dati: self.dati.in_dominio("dati")?,
            comune: comune_da_wire("comune", &self.comune)?,
        })
    }
}

impl From<&RichiestaCollegamento> for RichiestaCollegamentoWire {
    fn from(r: &RichiestaCollegamento) -> Self {
        Self {
            codice_anpr: r.codice_anpr.clone(),
            codice_ae: r.codice_ae.clone(),
            comune: r.comune.as_str().to_owned(),
        }
    }
}

impl RichiestaCollegamentoWire {
    pub fn in_dominio(&self) -> Result<RichiestaCollegamento, Anomalia> {
        obbligatorio("codiceAnpr", &self.codice_anpr)?;
        obbligatorio("codiceAe", &self.codice_ae)?;
        Ok(RichiestaCollegamento {
            codice_anpr: self.codice_anpr.clone(),
            codice_ae: self.codice_ae.clone(),
            comune: comune_da_wire("comune", &self.comune)?,
        })
    }
}

impl From<&EsitoAe> for EsitoWire {
    fn from(e: &EsitoAe) -> Self {
        Self {
            codice_fiscale: e.codice_fiscale.clone(),
            stato: stato_wire(e.stato).to_owned(),
            codici_collegati: e.codici_collegati.clone(),
            anomalie: e.anomalie.clone(),
            dati_ae: e.dati_ae.as_ref().map(DatiWire::from),
        }
    }
}

impl EsitoWire {
    pub fn in_dominio(self) -> Result<EsitoAe, Anomalia> {
        Ok(EsitoAe {
            stato: stato_da_wire(&self.stato)?,
            dati_ae: self
                .dati_ae
                .as_ref()
                .map(|d| d.in_dominio("datiAe"))
                .transpose()?,
            codice_fiscale: self.codice_fiscale,
            codici_collegati: self.codici_collegati,
            anomalie: self.anomalie,
        })
    }
}

impl From<&PosizioneAe> for PosizioneWire {
    fn from(p: &PosizioneAe) -> Self {
        Self {
            codice_fiscale: p.codice_fiscale.clone(),
            dati: (&p.dati).into(),
            marcato: p.marcato,
            in_trattamento: p.in_trattamento,
            codice_attuale: p.codice_attuale.clone(),
            codici_collegati: p.codici_collegati.clone(),
            comune_residenza: p.comune_residenza.as_ref().map(|c| c.as_str().to_owned()),
        }
    }
}

impl PosizioneWire {
    pub fn in_dominio(self) -> Result<PosizioneAe, Anomalia> {
        Ok(PosizioneAe {
            dati: self.dati.in_dominio("posizione.dati")?,
            comune_residenza: self
                .comune_residenza
                .as_deref()
                .map(|c| comune_da_wire("posizione.comuneResidenza", c))
                .transpose()?,
            codice_fiscale: self.codice_fiscale,
            marcato: self.marcato,
            in_trattamento: self.in_trattamento,
            codice_attuale: self.codice_attuale,
            codici_collegati: self.codici_collegati,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips() {
        for stato in [
            StatoCodiceFiscale::Validato,
            StatoCodiceFiscale::NonValidato,
            StatoCodiceFiscale::Provvisorio,
            StatoCodiceFiscale::DatiDifformi,
            StatoCodiceFiscale::Collegato,
            StatoCodiceFiscale::Omocodice,
            StatoCodiceFiscale::AssenteInAe,
        ] {
            assert_eq!(stato_da_wire(stato_wire(stato)), Ok(stato));
        }
        assert_eq!(
            stato_da_wire("VALIDATO").map_err(|a| a.codice),
            Err("EV001".to_owned())
        );
    }

    #[test]
    fn requests_are_parsed_with_coded_errors() {
        let testo = r#"{"gestioneCF":"1","dati":{"cognome":"Rossi","nome":"Mario","sesso":"M",
            "dataNascita":"1980-01-01","luogoNascita":"H501"},"comune":"058091"}"#;
        let wire: RichiestaValidaWire = serde_json::from_str(testo).unwrap();
        let req = wire.in_dominio().unwrap();
        assert_eq!(req.gestione, GestioneCf::PrimaAttribuzione);
        assert_eq!(req.codice_fiscale, None);
        // Round trip through the wire form.
        let di_nuovo = RichiestaValidaWire::from(&req).in_dominio().unwrap();
        assert_eq!(di_nuovo, req);

        let check = |json: &str, codice: &str, campo: &str| {
            let wire: RichiestaValidaWire = serde_json::from_str(json).unwrap();
            let a = wire.in_dominio().unwrap_err();
            assert_eq!(
                (a.codice.as_str(), a.campo.as_deref()),
                (codice, Some(campo)),
                "{json}"
            );
        };
        check(&testo.replace("\"1\"", "\"7\""), "EV001", "gestioneCF");
        check(&testo.replace("\"1\"", "\"\""), "EV002", "gestioneCF");
        check(&testo.replace("\"M\"", "\"X\""), "EV001", "dati.sesso");
        check(
            &testo.replace("1980-01-01", "1980-13-01"),
            "EV001",
            "dati.dataNascita",
        );
        check(&testo.replace("H501", "h501"), "EV001", "dati.luogoNascita");
        check(&testo.replace("Rossi", " "), "EV002", "dati.cognome");
        check(&testo.replace("058091", "58091"), "EV001", "comune");
        // Unknown fields are refused by the parser itself.
        assert!(serde_json::from_str::<RichiestaValidaWire>(
            &testo.replace("\"comune\"", "\"codiceFiscal\":\"X\",\"comune\"")
        )
        .is_err());
    }
}
