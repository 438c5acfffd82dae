//! Calls to the tax agency on registration and change of generalities (SPEC M-3.2):
//! `gestioneCF` 1 attributes a code (the agency may issue an omocode), 0 verifies the
//! code the registry holds, 2 asks for an omocode, 3 makes no call. The agency's state
//! of the code is kept on the record (validated, different data, linked, omocode, not in
//! AE). Its blocking messages (EAM9C, EAM15, EAM93, ...) refuse the operation; its
//! warnings travel with the answer.
//!
//! When the agency cannot be reached, the operation goes on with the code computed by
//! the registry, marked not validated, and a warning says so: a registry office must
//! not stop because another administration's service is down. In an environment whose
//! agency is read-only (presubentro), calls that would write (1, 2) become verifications.

use anpr_ae::{DatiAnagraficiAe, GestioneCf, RichiestaAe};
use anpr_domain::caller::Ambiente;
use anpr_domain::codice_fiscale::CodiceFiscaleSoggetto;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, Sesso};
use anpr_domain::scheda::{DatiCodiceFiscale, StatoCodiceFiscale};
use chrono::NaiveDate;

use crate::Registry;

/// Our code: the tax agency could not be consulted; the code stays not validated.
pub const CODICE_AE_NON_DISPONIBILE: &str = "EV060";

/// The five data the agency matches, plus the code the registry holds.
#[derive(Debug, Clone)]
pub(crate) struct DatiCf<'a> {
    pub cognome: &'a str,
    pub nome: &'a str,
    pub sesso: Sesso,
    pub nascita: NaiveDate,
    pub luogo: &'a CodiceCatastale,
}

/// Parses `gestioneCF` (absent: verification when a code is given, attribution
/// otherwise).
pub(crate) fn gestione(
    campo: &str,
    raw: Option<&str>,
    codice_dato: bool,
    e: &mut Vec<Anomalia>,
) -> GestioneCf {
    match raw {
        Some(s) => s.trim().parse().unwrap_or_else(|x| {
            e.push(Anomalia::from_invalid(campo, &x));
            GestioneCf::NessunaChiamata
        }),
        None if codice_dato => GestioneCf::Verifica,
        None => GestioneCf::PrimaAttribuzione,
    }
}

impl Registry {
    /// Calls the tax agency of `ambiente` and returns the codice fiscale section the
    /// record must hold: the agency's code and state, or the registry's own code (not
    /// validated) when no call is made or possible. Blocking agency messages are the
    /// `Err`.
    pub(crate) async fn codice_fiscale_ae(
        &self,
        ambiente: Ambiente,
        comune: &CodiceIstatComune,
        gestione: GestioneCf,
        locale: &CodiceFiscaleSoggetto,
        dati: &DatiCf<'_>,
        avvertimenti: &mut Vec<Anomalia>,
    ) -> Result<DatiCodiceFiscale, Vec<Anomalia>> {
        let Some(ae) = self.agenzia_entrate(ambiente) else {
            return Ok(non_validato(locale));
        };
        let mut gestione = gestione;
        if ae.sola_lettura() && gestione.scrive() {
            gestione = GestioneCf::Verifica;
        }
        if !gestione.chiama_ae() {
            return Ok(non_validato(locale));
        }
        let req = RichiestaAe {
            gestione,
            codice_fiscale: (gestione == GestioneCf::Verifica).then(|| locale.as_str().to_owned()),
            dati: dati_ae(dati),
            comune: comune.clone(),
        };
        let esito = ae.valida(&req).await;
        self.esito_ae(esito, locale, avvertimenti)
    }

    /// After a change of generalities (5008): the agency's data are aligned with the
    /// registry's ("Conferma ANPR" on the code the record held); the agency issues a
    /// new code when the data change it and links the old one. With a read-only agency,
    /// or for a provisional code, the new code is verified instead.
    pub(crate) async fn allinea_ae(
        &self,
        ambiente: Ambiente,
        comune: &CodiceIstatComune,
        vecchio: &CodiceFiscaleSoggetto,
        nuovo: &CodiceFiscaleSoggetto,
        dati: &DatiCf<'_>,
        avvertimenti: &mut Vec<Anomalia>,
    ) -> Result<DatiCodiceFiscale, Vec<Anomalia>> {
        let sola_lettura = self
            .agenzia_entrate(ambiente)
            .is_none_or(|ae| ae.sola_lettura());
        let (Some(ae), false, CodiceFiscaleSoggetto::Ordinario(_)) =
            (self.agenzia_entrate(ambiente), sola_lettura, vecchio)
        else {
            return self
                .codice_fiscale_ae(
                    ambiente,
                    comune,
                    GestioneCf::Verifica,
                    nuovo,
                    dati,
                    avvertimenti,
                )
                .await;
        };
        let req = anpr_ae::RichiestaAllineamento {
            codice_fiscale: vecchio.as_str().to_owned(),
            dati: dati_ae(dati),
            comune: comune.clone(),
        };
        let esito = ae.conferma_dati_anpr(&req).await;
        self.esito_ae(esito, nuovo, avvertimenti)
    }

    /// Maps the agency's answer onto the record's codice fiscale section.
    fn esito_ae(
        &self,
        esito: Result<anpr_ae::EsitoAe, anpr_ae::ErroreAe>,
        locale: &CodiceFiscaleSoggetto,
        avvertimenti: &mut Vec<Anomalia>,
    ) -> Result<DatiCodiceFiscale, Vec<Anomalia>> {
        let esito = match esito {
            Ok(esito) => esito,
            Err(err) => {
                tracing::warn!(error = %err, "tax agency not reachable");
                avvertimenti.push(
                    Anomalia::avvertimento(
                        CODICE_AE_NON_DISPONIBILE,
                        "Agenzia delle Entrate non raggiungibile: codice fiscale calcolato da ANPR, da validare",
                    )
                    .campo("generalita.codiceFiscale")
                    .valore(err.codice()),
                );
                return Ok(non_validato(locale));
            }
        };
        if esito.bloccante() {
            return Err(esito.anomalie);
        }
        avvertimenti.extend(esito.anomalie.iter().cloned());
        let codice = match esito
            .codice_fiscale
            .as_deref()
            .map(str::parse::<CodiceFiscaleSoggetto>)
        {
            Some(Ok(c)) => c,
            Some(Err(x)) => {
                return Err(vec![self.anomalia_interna(format!(
                    "tax agency returned a malformed code: {x}"
                ))])
            }
            None => *locale,
        };
        let collegati = esito
            .codici_collegati
            .iter()
            .filter_map(|c| c.parse::<CodiceFiscaleSoggetto>().ok())
            .collect();
        Ok(DatiCodiceFiscale {
            data_attribuzione_validita: (esito.stato == StatoCodiceFiscale::Validato
                || esito.stato == StatoCodiceFiscale::Omocodice)
                .then(|| self.clock().today()),
            stato: esito.stato,
            cod_fiscale: codice,
            codici_collegati: collegati,
        })
    }
}

fn dati_ae(d: &DatiCf<'_>) -> DatiAnagraficiAe {
    DatiAnagraficiAe {
        cognome: d.cognome.to_owned(),
        nome: d.nome.to_owned(),
        sesso: d.sesso,
        data_nascita: d.nascita,
        luogo_nascita: d.luogo.clone(),
    }
}

/// The registry's own code, not validated by the agency.
fn non_validato(c: &CodiceFiscaleSoggetto) -> DatiCodiceFiscale {
    DatiCodiceFiscale {
        stato: match c {
            CodiceFiscaleSoggetto::Provvisorio(_) => StatoCodiceFiscale::Provvisorio,
            CodiceFiscaleSoggetto::Ordinario(_) => StatoCodiceFiscale::NonValidato,
        },
        cod_fiscale: *c,
        data_attribuzione_validita: None,
        codici_collegati: Vec::new(),
    }
}
