//! Change of AIRE data (service A006, SPEC M-2.2): the foreign residence, the consulate
//! and the AIRE registration data of a citizen resident abroad; with
//! `tuttaLaFamiglia` the new foreign address applies to the whole AIRE family.
//!
//! The request is shaped after `RichiestaA006` (XSD names in camelCase).

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::CodiceIstatComune;
use anpr_domain::scheda::{IndirizzoEstero, PosizioneAnagrafica, Residenza};
use anpr_store::Store;
use serde::Deserialize;

use crate::authz::Permesso;
use crate::lavoro::{Modifiche, SoggettoPerRicerca};
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// Request of service A006.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaA006 {
    pub id_operazione_comune: Option<String>,
    pub data_decorrenza: String,
    pub soggetto: SoggettoPerRicerca,
    pub residenza_estera: Option<IndirizzoEstero>,
    pub consolato: Option<String>,
    pub iniziativa_iscrizione: Option<String>,
    pub individuazione_comune_iscrizione: Option<String>,
    pub anno_espatrio: Option<i32>,
    /// The new foreign address applies to every member of the subject's AIRE family.
    #[serde(default)]
    pub tutta_la_famiglia: bool,
    /// The family the request names (SOAP `famiglia/idFamigliaConvivenzaANPR`): when
    /// given it must be the subject's own (EF002), as the change is about that family.
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: Option<String>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// ANPR code: service not consistent with an AIRE subject (or with a resident one).
pub const CODICE_NON_AIRE: &str = "ES077";

impl Registry {
    /// Service A006: change of AIRE data.
    pub async fn mutazione_aire(
        &self,
        ctx: &CallerContext,
        req: &RichiestaA006,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "A006",
            Permesso::Mutazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_a006(&*store, &comune, req).await
        })
        .await
    }

    async fn decidi_a006(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &RichiestaA006,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let mut e = Vec::new();
        let data = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", data, self.clock().today(), &mut e);
        let s = self
            .soggetto_da_modificare(store, comune, "soggetto", &req.soggetto, &mut e)
            .await;
        if let Some(s) = s
            .as_ref()
            .filter(|s| s.posizione() != Some(PosizioneAnagrafica::Aire))
        {
            e.push(
                Anomalia::errore(
                    CODICE_NON_AIRE,
                    "Servizio incongruente con tipo soggetto AIRE",
                )
                .campo("soggetto")
                .valore(s.id.to_string())
                .atteso("un soggetto iscritto all'AIRE del comune (per i residenti: 5005/5008)"),
            );
        }
        if let Some(c) = &req.consolato {
            if t.consolato(c).is_none() {
                e.push(Anomalia::errore("EC032", format!("Codice consolato di residenza {c} inesistente sulla tabella di riferimento")).campo("consolato").valore(c));
            }
        }
        if let Some(r) = &req.residenza_estera {
            if t.stato_estero_by_istat(&r.codice_stato, None).is_none() {
                e.push(
                    Anomalia::errore(
                        "EC053",
                        format!(
                            "Stato estero di residenza {} inesistente sulla tabella di riferimento",
                            r.codice_stato
                        ),
                    )
                    .campo("residenzaEstera.codiceStato")
                    .valore(&r.codice_stato),
                );
            }
        }
        if let Some(c) = &req.iniziativa_iscrizione {
            v::codice_tabella(
                t,
                "iniziativa_iscrizione_aire",
                c,
                None,
                "EC061",
                "Campo codice Iniziativa movimenti anagrafici AIRE",
                "iniziativaIscrizione",
                &mut e,
            );
        }
        if let Some(c) = &req.individuazione_comune_iscrizione {
            v::codice_tabella(
                t,
                "criterio_comune_iscrizione_aire",
                c,
                None,
                "EC062",
                "Campo codice Individuazione Comune Iscrizione AIRE",
                "individuazioneComuneIscrizione",
                &mut e,
            );
        }
        if let (Some(s), Some(raw)) = (&s, &req.id_famiglia_convivenza_anpr) {
            if s.famiglia().map(|f| f.to_string()).as_deref() != Some(raw.trim()) {
                e.push(
                    Anomalia::errore(
                        "EF002",
                        "La famiglia indicata non e' la famiglia AIRE del soggetto",
                    )
                    .campo("idFamigliaConvivenzaANPR")
                    .valore(raw.clone())
                    .atteso(
                        s.famiglia()
                            .map_or_else(|| "nessuna famiglia".into(), |f| f.to_string()),
                    ),
                );
            }
        }
        let (Some(s), Some(data), true) = (s, data, e.is_empty()) else {
            return Err(e);
        };
        let residenza = req.residenza_estera.as_ref().map(|r| Residenza {
            tipo_indirizzo: "4".into(),
            indirizzo: None,
            indirizzo_estero: Some(r.clone()),
            presso: None,
            note_indirizzo: None,
            data_decorrenza_residenza: data,
        });
        let mut m = Modifiche::default();
        let mut dopo = s.scheda.clone();
        if let Some(r) = &residenza {
            dopo.residenza = Some(r.clone());
        }
        if let Some(a) = dopo.aire.as_mut() {
            if let Some(c) = &req.consolato {
                a.consolato = c.clone();
            }
            if req.iniziativa_iscrizione.is_some() {
                a.iniziativa_iscrizione = req.iniziativa_iscrizione.clone();
            }
            if req.individuazione_comune_iscrizione.is_some() {
                a.individuazione_comune_iscrizione = req.individuazione_comune_iscrizione.clone();
            }
            if req.anno_espatrio.is_some() {
                a.anno_espatrio = req.anno_espatrio;
            }
        }
        if dopo == s.scheda {
            return Err(vec![Anomalia::errore(
                crate::mutazione::CODICE_NESSUNA_MODIFICA,
                "La richiesta non modifica alcun dato AIRE",
            )
            .campo("soggetto")]);
        }
        m.soggetto(s.id, &s.scheda, &dopo);
        if let (true, Some(r), Some(fid)) = (req.tutta_la_famiglia, &residenza, s.famiglia()) {
            let f = self
                .carica_famiglia_id(store, "soggetto", fid, Some(comune))
                .await
                .map_err(|a| vec![a])?;
            let mut fd = f.scheda.clone();
            fd.residenza = Some(r.clone());
            m.famiglia(f.id, &f.scheda, &fd);
            for id in f.componenti.keys().filter(|id| **id != s.id) {
                let chi = SoggettoPerRicerca {
                    id_scheda_soggetto_anpr: Some(id.to_string()),
                    codice_fiscale: None,
                };
                let c = self
                    .carica_soggetto(store, "componenti", &chi, Some(comune))
                    .await
                    .map_err(|a| vec![a])?;
                let mut cd = c.scheda.clone();
                cd.residenza = Some(r.clone());
                m.soggetto(c.id, &c.scheda, &cd);
            }
        }
        Ok(m.piano(data, Vec::new()))
    }
}
