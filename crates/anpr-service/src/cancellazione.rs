//! Removals (SPEC M-2.3): death and judicially declared presumed death (service 2001),
//! other reasons (2003: emigration to a non-onboarded municipality or abroad, transfer
//! to AIRE, untraceability, non-renewal of the habitual-residence declaration, double
//! registration, ...). The subject leaves its family; an emptied family is archived; a
//! family left without its head gets the new head named in the request, or a warning.
//!
//! Requests are shaped after `Richiesta2001` / `Richiesta2003` (XSD names in camelCase).

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia};
use anpr_domain::scheda::{
    Atto, DatiAire, DatiCancellazione, DatiIscrizione, EventoStatoCivile, IndirizzoEstero,
    Intestatario, PosizioneAnagrafica, Provenienza, Residenza, SchedaFamiglia, StatoCivile,
    TipoEventoStatoCivile, TipoScheda, RELAZIONE_INTESTATARIO,
};
use anpr_store::{Sequence, Store};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::authz::Permesso;
use crate::lavoro::{legame, Modifiche, SoggettoCorrente, SoggettoPerRicerca};
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::residenza::{nuova_famiglia, SoggettoMovimentato};
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// Death data (`datiDecesso`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiDecesso {
    pub data_morte: String,
    /// ISTAT code of the municipality of death, when in Italy.
    pub comune_morte: Option<CodiceIstatComune>,
    /// ISTAT code of the foreign state of death.
    pub stato_morte: Option<String>,
    pub atto_morte: Option<Atto>,
}

/// Court ruling of a presumed death (`datiSentenza`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiSentenza {
    pub data_sentenza: String,
    pub tribunale: String,
    pub numero_sentenza: Option<String>,
}

/// Request of service 2001.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta2001 {
    pub id_operazione_comune: Option<String>,
    /// 1 = death, 2 = presumed death judicially declared.
    pub motivo_cancellazione: String,
    pub soggetto: SoggettoPerRicerca,
    pub dati_decesso: Option<DatiDecesso>,
    pub dati_sentenza: Option<DatiSentenza>,
    /// The family members left behind, with their new relationships (a new head when
    /// the deceased was the head).
    #[serde(default)]
    pub elenco_soggetti_famiglia: Vec<SoggettoMovimentato>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// AIRE data of a subject who moves abroad and stays in the municipality's AIRE.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IscrizioneAireContestuale {
    pub consolato: String,
    pub residenza_estera: IndirizzoEstero,
    pub anno_espatrio: Option<i32>,
    /// An existing AIRE family of the municipality to join (with `codiceLegame`);
    /// absent = a new AIRE family headed by the subject.
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: Option<String>,
    pub codice_legame: Option<String>,
}

/// Request of service 2003.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta2003 {
    pub id_operazione_comune: Option<String>,
    /// Code of "Motivi di cancellazione" (APR, or AIRE for an AIRE subject).
    pub motivo_cancellazione: String,
    pub data_decorrenza: String,
    pub soggetto: SoggettoPerRicerca,
    pub destinazione: Option<Provenienza>,
    /// Transfer abroad with registration in the municipality's AIRE (APR reason 8).
    pub aire: Option<IscrizioneAireContestuale>,
    /// Double registration (reason 10): the record that stays.
    pub soggetto_prevalente: Option<SoggettoPerRicerca>,
    pub note: Option<String>,
    #[serde(default)]
    pub elenco_soggetti_famiglia: Vec<SoggettoMovimentato>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// ANPR code: subject already cancelled.
pub const CODICE_GIA_CANCELLATO: &str = "EN184";
/// Our code: the two records of a double registration do not describe one person.
pub const CODICE_DOPPIA_NON_COERENTE: &str = "EV041";

impl Registry {
    /// Service 2001: death or presumed death.
    pub async fn cancellazione_decesso(
        &self,
        ctx: &CallerContext,
        req: &Richiesta2001,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "2001",
            Permesso::Cancellazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_2001(&*store, &comune, req).await
        })
        .await
    }

    /// Service 2003: removal for other reasons.
    pub async fn cancellazione_altri_motivi(
        &self,
        ctx: &CallerContext,
        req: &Richiesta2003,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "2003",
            Permesso::Cancellazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_2003(&*store, &comune, req).await
        })
        .await
    }

    /// Loads the subject to remove and checks it is live and of `comune`.
    async fn soggetto_da_cancellare(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        chi: &SoggettoPerRicerca,
        e: &mut Vec<Anomalia>,
    ) -> Option<SoggettoCorrente> {
        match self
            .carica_soggetto(store, "soggetto", chi, Some(comune))
            .await
        {
            Err(a) => {
                e.push(a);
                None
            }
            Ok(s) if s.posizione() == Some(PosizioneAnagrafica::Cancellato) => {
                e.push(
                    Anomalia::errore(
                        CODICE_GIA_CANCELLATO,
                        format!("Il soggetto {} risulta gia' cancellato", s.id),
                    )
                    .campo("soggetto")
                    .valore(s.id.to_string()),
                );
                None
            }
            Ok(s) => Some(s),
        }
    }

    async fn decidi_2001(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta2001,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let motivo = req.motivo_cancellazione.as_str();
        if !matches!(motivo, "1" | "2") {
            e.push(
                Anomalia::errore("EN371", format!("Valore {motivo} del campo motivoCancellazione non ammesso per il servizio 2001"))
                    .campo("motivoCancellazione")
                    .valore(motivo)
                    .atteso("1 (morte accertata) o 2 (morte presunta giudizialmente dichiarata); gli altri motivi con il servizio 2003"),
            );
        }
        let soggetto = self
            .soggetto_da_cancellare(store, comune, &req.soggetto, &mut e)
            .await;
        let Some(decesso) = &req.dati_decesso else {
            e.push(
                Anomalia::errore("EN249", "Indicare i dati del decesso")
                    .campo("datiDecesso")
                    .atteso("datiDecesso.dataMorte"),
            );
            return Err(e);
        };
        let data_morte = v::data("datiDecesso.dataMorte", &decesso.data_morte, &mut e);
        v::non_futura("datiDecesso.dataMorte", data_morte, oggi, &mut e);
        if motivo == "2" {
            match &req.dati_sentenza {
                None => e.push(
                    Anomalia::errore("EHR93", "Cancellazione per morte presunta giudizialmente dichiarata: valorizzare la data di morte presunta e i dati della sentenza")
                        .campo("datiSentenza"),
                ),
                Some(s) => {
                    let ds = v::data("datiSentenza.dataSentenza", &s.data_sentenza, &mut e);
                    if let (Some(ds), Some(dm)) = (ds, data_morte) {
                        if ds < dm || ds > oggi {
                            e.push(
                                Anomalia::errore("EHR98", "La data di validita' della sentenza di morte non puo' essere precedente alla data di morte presunta ne' successiva alla data corrente")
                                    .campo("datiSentenza.dataSentenza")
                                    .valore(ds.to_string())
                                    .atteso(format!("una data tra il {dm} e il {oggi}")),
                            );
                        }
                    }
                }
            }
        }
        if let (Some(c), Some(d)) = (&decesso.comune_morte, data_morte) {
            if t.comune_by_istat(c, d).is_none() {
                e.push(
                    Anomalia::errore("EC106", format!("Comune/provincia di morte {c} inesistente o non valido alla data di riferimento"))
                        .campo("datiDecesso.comuneMorte")
                        .valore(c.as_str()),
                );
            }
        }
        if let Some(s) = &decesso.stato_morte {
            if t.stato_estero_by_istat(s, None).is_none() {
                e.push(
                    Anomalia::errore(
                        "EC170",
                        format!(
                            "Stato estero di morte {s} inesistente sulla tabella di riferimento"
                        ),
                    )
                    .campo("datiDecesso.statoMorte")
                    .valore(s),
                );
            }
        }
        if let Some(atto) = &decesso.atto_morte {
            if let Some(d) = data_morte {
                if atto.anno < d.format("%Y").to_string().parse::<i32>().unwrap_or(0)
                    || atto.data_formazione_atto.is_some_and(|f| f < d || f > oggi)
                {
                    e.push(
                        Anomalia::errore("EC184", "L'anno dell'atto e la data di formazione dell'atto di morte non possono essere precedenti alla data dell'evento ne' successivi alla data corrente")
                            .campo("datiDecesso.attoMorte")
                            .valore(atto.anno.to_string()),
                    );
                }
            }
        }
        if let (Some(s), Some(d)) = (&soggetto, data_morte) {
            s.non_prima_della_nascita(d, "datiDecesso.dataMorte", &mut e);
        }
        let (Some(s), Some(data_morte), true) = (soggetto, data_morte, e.is_empty()) else {
            return Err(e);
        };
        let mut m = Modifiche::default();
        let mut avvertimenti = Vec::new();
        let mut dopo = s.scheda.clone();
        if let Some(c) = dopo.competenza.as_mut() {
            c.posizione = PosizioneAnagrafica::Cancellato;
        }
        dopo.cancellazione = Some(DatiCancellazione {
            motivo_cancellazione: motivo.to_owned(),
            data_decorrenza_cancellazione: data_morte,
            destinazione: None,
            atto_morte: decesso.atto_morte.clone(),
            note: req
                .dati_sentenza
                .as_ref()
                .map(|s| format!("Sentenza del {} - {}", s.data_sentenza, s.tribunale)),
        });
        dopo.legame = None;
        m.soggetto(s.id, &s.scheda, &dopo);
        self.uscita_famiglia(
            store,
            &s,
            &req.elenco_soggetti_famiglia,
            data_morte,
            &mut m,
            &mut avvertimenti,
        )
        .await?;
        // The surviving spouse, when known to the registry, becomes widowed.
        self.vedovanza(store, &s, data_morte, &mut m, &mut avvertimenti)
            .await?;
        Ok(m.piano(data_morte, avvertimenti))
    }

    async fn decidi_2003(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta2003,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let decorrenza = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", decorrenza, oggi, &mut e);
        let soggetto = self
            .soggetto_da_cancellare(store, comune, &req.soggetto, &mut e)
            .await;
        let aire = soggetto
            .as_ref()
            .is_some_and(|s| s.posizione() == Some(PosizioneAnagrafica::Aire));
        let motivo = req.motivo_cancellazione.as_str();
        let tabella = if aire {
            "motivi_cancellazione_aire"
        } else {
            "motivi_cancellazione_apr"
        };
        v::codice_tabella(
            t,
            tabella,
            motivo,
            None,
            "EN371",
            "Motivo di cancellazione",
            "motivoCancellazione",
            &mut e,
        );
        if matches!(motivo, "1" | "2") {
            e.push(
                Anomalia::errore(
                    "EN371",
                    "La cancellazione per morte si registra con il servizio 2001",
                )
                .campo("motivoCancellazione")
                .valore(motivo)
                .atteso("un motivo diverso da 1 e 2"),
            );
        }
        if let (Some(s), Some(d)) = (&soggetto, decorrenza) {
            s.non_prima_della_nascita(d, "dataDecorrenza", &mut e);
        }
        let altro = if aire { "8" } else { "13" };
        if motivo == altro && req.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
            e.push(
                Anomalia::errore(
                    anpr_domain::error::CODICE_CAMPO_OBBLIGATORIO,
                    "Note obbligatorie per il motivo di cancellazione Altro",
                )
                .campo("note")
                .atteso("la descrizione del motivo"),
            );
        }
        let dest = req.destinazione.as_ref();
        match (aire, motivo) {
            (false, "3") | (true, "7") => match dest.and_then(|d| d.comune.as_ref()) {
                None => e.push(
                    Anomalia::errore(anpr_domain::error::CODICE_CAMPO_OBBLIGATORIO, "Comune di destinazione obbligatorio")
                        .campo("destinazione.comune"),
                ),
                Some(c) if decorrenza.is_some_and(|d| t.comune_by_istat(c, d).is_none()) => e.push(
                    Anomalia::errore("EC172", format!("Comune di destinazione {c} inesistente o non valido alla data di cancellazione"))
                        .campo("destinazione.comune")
                        .valore(c.as_str()),
                ),
                Some(c) if c == comune => e.push(
                    Anomalia::errore("EC172", "Il comune di destinazione coincide con il comune di competenza")
                        .campo("destinazione.comune")
                        .valore(c.as_str()),
                ),
                Some(_) => {}
            },
            (false, "5") => match dest.and_then(|d| d.codice_stato.as_deref()) {
                Some(s) if t.stato_estero_by_istat(s, None).is_some() => {}
                other => e.push(
                    Anomalia::errore("EC175", format!("Stato estero di destinazione {} inesistente sulla tabella di riferimento", other.unwrap_or("")))
                        .campo("destinazione.codiceStato")
                        .valore(other.unwrap_or("")),
                ),
            },
            (false, "8") => match &req.aire {
                None => e.push(
                    Anomalia::errore(anpr_domain::error::CODICE_CAMPO_OBBLIGATORIO, "Per il trasferimento all'estero con iscrizione AIRE indicare i dati AIRE")
                        .campo("aire")
                        .atteso("consolato e residenza estera"),
                ),
                Some(a) => self.valida_aire_contestuale(a, &mut e),
            },
            _ => {}
        }
        let prevalente = match (motivo, &req.soggetto_prevalente) {
            ("10", None) => {
                e.push(
                    Anomalia::errore(
                        anpr_domain::error::CODICE_CAMPO_OBBLIGATORIO,
                        "Per la doppia iscrizione indicare il soggetto che resta iscritto",
                    )
                    .campo("soggettoPrevalente"),
                );
                None
            }
            ("10", Some(p)) => match self
                .carica_soggetto(store, "soggettoPrevalente", p, None)
                .await
            {
                Err(a) => {
                    e.push(a);
                    None
                }
                Ok(p) => {
                    if let Some(s) = &soggetto {
                        stessa_persona(s, &p, &mut e);
                    }
                    Some(p)
                }
            },
            _ => None,
        };
        let (Some(s), Some(decorrenza), true) = (soggetto, decorrenza, e.is_empty()) else {
            return Err(e);
        };
        let mut m = Modifiche::default();
        let mut avvertimenti = Vec::new();
        let mut dopo = s.scheda.clone();
        if let (false, "8", Some(a)) = (aire, motivo, &req.aire) {
            // Transfer abroad: the subject stays in the municipality, in its AIRE.
            self.uscita_famiglia(
                store,
                &s,
                &req.elenco_soggetti_famiglia,
                decorrenza,
                &mut m,
                &mut avvertimenti,
            )
            .await?;
            let residenza = Residenza {
                tipo_indirizzo: "4".into(),
                indirizzo: None,
                indirizzo_estero: Some(a.residenza_estera.clone()),
                presso: None,
                note_indirizzo: None,
                data_decorrenza_residenza: decorrenza,
            };
            let (id_famiglia, codice) = match &a.id_famiglia_convivenza_anpr {
                Some(raw) => {
                    let f = self
                        .carica_famiglia(store, "aire.idFamigliaConvivenzaANPR", raw, Some(comune))
                        .await
                        .map_err(|x| vec![x])?;
                    if !f.attiva() || !f.scheda.dati.as_ref().is_some_and(|d| d.famiglia_aire) {
                        return Err(vec![Anomalia::errore(
                            "EF002",
                            "La famiglia indicata non e' una famiglia AIRE attiva del comune",
                        )
                        .campo("aire.idFamigliaConvivenzaANPR")
                        .valore(raw)]);
                    }
                    m.famiglia(f.id, &f.scheda, &f.scheda);
                    (f.id, a.codice_legame.clone().unwrap_or_default())
                }
                None => {
                    let id = IdAnprFamiglia::new(
                        store
                            .next_id(Sequence::Famiglia)
                            .await
                            .map_err(|x| vec![self.anomalia_interna(x)])?,
                    )
                    .map_err(|x| vec![self.anomalia_interna(x)])?;
                    let f = nuova_famiglia(comune, None, s.id, decorrenza, &residenza);
                    m.famiglia(id, &SchedaFamiglia::default(), &f);
                    (id, RELAZIONE_INTESTATARIO.to_owned())
                }
            };
            if let Some(c) = dopo.competenza.as_mut() {
                c.posizione = PosizioneAnagrafica::Aire;
            }
            dopo.residenza = Some(residenza);
            dopo.legame = Some(legame(
                id_famiglia,
                TipoScheda::Famiglia,
                &codice,
                decorrenza,
            ));
            dopo.aire = Some(DatiAire {
                consolato: a.consolato.clone(),
                iniziativa_iscrizione: None,
                individuazione_comune_iscrizione: None,
                anno_espatrio: a.anno_espatrio,
                data_arrivo_consolato: None,
            });
            dopo.iscrizione = Some(DatiIscrizione {
                motivo_iscrizione: "C01".into(),
                data_iscrizione: decorrenza,
                comune: comune.clone(),
                provenienza: None,
                note: req.note.clone(),
            });
            m.soggetto(s.id, &s.scheda, &dopo);
            return Ok(m.piano(decorrenza, avvertimenti));
        }
        if let Some(c) = dopo.competenza.as_mut() {
            c.posizione = PosizioneAnagrafica::Cancellato;
        }
        dopo.cancellazione = Some(DatiCancellazione {
            motivo_cancellazione: motivo.to_owned(),
            data_decorrenza_cancellazione: decorrenza,
            destinazione: req.destinazione.clone(),
            atto_morte: None,
            note: match &prevalente {
                Some(p) => Some(format!(
                    "Doppia iscrizione: resta iscritto il soggetto {}",
                    p.id
                )),
                None => req.note.clone(),
            },
        });
        dopo.legame = None;
        m.soggetto(s.id, &s.scheda, &dopo);
        self.uscita_famiglia(
            store,
            &s,
            &req.elenco_soggetti_famiglia,
            decorrenza,
            &mut m,
            &mut avvertimenti,
        )
        .await?;
        if let Some(p) = prevalente {
            // The cancelled record's tax code is linked to the record that stays.
            if let (Some(cf_c), Some(cf_p)) = (&s.scheda.codice_fiscale, &p.scheda.codice_fiscale) {
                if cf_c.cod_fiscale != cf_p.cod_fiscale
                    && !cf_p.codici_collegati.contains(&cf_c.cod_fiscale)
                {
                    let mut pd = p.scheda.clone();
                    if let Some(c) = pd.codice_fiscale.as_mut() {
                        c.codici_collegati.push(cf_c.cod_fiscale);
                    }
                    m.soggetto(p.id, &p.scheda, &pd);
                }
            }
        }
        Ok(m.piano(decorrenza, avvertimenti))
    }

    fn valida_aire_contestuale(&self, a: &IscrizioneAireContestuale, e: &mut Vec<Anomalia>) {
        let t = self.tables();
        if t.consolato(&a.consolato).is_none() {
            e.push(
                Anomalia::errore(
                    "EC032",
                    format!(
                        "Codice consolato di residenza {} inesistente sulla tabella di riferimento",
                        a.consolato
                    ),
                )
                .campo("aire.consolato")
                .valore(&a.consolato),
            );
        }
        if t.stato_estero_by_istat(&a.residenza_estera.codice_stato, None)
            .is_none()
        {
            e.push(
                Anomalia::errore(
                    "EC053",
                    format!(
                        "Stato estero di residenza {} inesistente sulla tabella di riferimento",
                        a.residenza_estera.codice_stato
                    ),
                )
                .campo("aire.residenzaEstera.codiceStato")
                .valore(&a.residenza_estera.codice_stato),
            );
        }
        if a.id_famiglia_convivenza_anpr.is_some() && a.codice_legame.is_none() {
            e.push(
                Anomalia::errore("EF006", "Indicare obbligatoriamente i dati del legame soggetto con la famiglia di appartenenza")
                    .campo("aire.codiceLegame"),
            );
        }
        if let Some(c) = &a.codice_legame {
            v::codice_tabella(
                t,
                "relazione_parentela",
                c,
                None,
                "EC002",
                "Codice relazione di parentela",
                "aire.codiceLegame",
                e,
            );
        }
    }

    /// The subject leaves its family: an emptied family is archived; when the head
    /// leaves, the request may name the new head and relationships (`elenco`),
    /// otherwise the family is left headless with warning EN225.
    pub(crate) async fn uscita_famiglia(
        &self,
        store: &dyn Store,
        s: &SoggettoCorrente,
        elenco: &[SoggettoMovimentato],
        data: NaiveDate,
        m: &mut Modifiche,
        avvertimenti: &mut Vec<Anomalia>,
    ) -> Result<(), Vec<Anomalia>> {
        let Some(id) = s.famiglia() else {
            return Ok(());
        };
        let f = self
            .carica_famiglia_id(store, "soggetto", id, None)
            .await
            .map_err(|a| vec![a])?;
        let (mut dopo, senza_intestatario) = f.dopo_uscita(|m| *m == s.id);
        let mut e = Vec::new();
        let mut nuovo_intestatario = None;
        for (i, x) in elenco.iter().enumerate() {
            let campo = format!("elencoSoggettiFamiglia[{i}]");
            let membro = match self.carica_soggetto(store, &campo, &x.soggetto, None).await {
                Err(a) => {
                    e.push(a);
                    continue;
                }
                Ok(mm) => mm,
            };
            if membro.famiglia() != Some(f.id) || membro.id == s.id {
                e.push(
                    Anomalia::errore(
                        "EF044",
                        "I soggetti devono appartenere alla stessa famiglia dichiarata",
                    )
                    .campo(&campo)
                    .valore(membro.id.to_string())
                    .atteso(format!("un altro componente della famiglia {}", f.id)),
                );
                continue;
            }
            let Some(codice) = &x.codice_legame else {
                e.push(Anomalia::errore("EF006", "Indicare obbligatoriamente i dati del legame soggetto con la famiglia di appartenenza").campo(format!("{campo}.codiceLegame")));
                continue;
            };
            let (tab, cod, descr) = match f.tipo() {
                TipoScheda::Convivenza => (
                    "legame_convivenza",
                    "EC003",
                    "Codice legame scheda convivenza",
                ),
                TipoScheda::Famiglia => (
                    "relazione_parentela",
                    "EC002",
                    "Codice relazione di parentela",
                ),
            };
            if !v::codice_tabella(
                self.tables(),
                tab,
                codice,
                None,
                cod,
                descr,
                &format!("{campo}.codiceLegame"),
                &mut e,
            ) {
                continue;
            }
            if codice == RELAZIONE_INTESTATARIO {
                if nuovo_intestatario.is_some() {
                    e.push(
                        Anomalia::errore(
                            "EN166",
                            "La famiglia non puo' avere piu' di un intestatario",
                        )
                        .campo(&campo),
                    );
                }
                nuovo_intestatario = Some(membro.id);
            }
            let mut md = membro.scheda.clone();
            md.legame = Some(legame(f.id, f.tipo(), codice, data));
            m.soggetto(membro.id, &membro.scheda, &md);
        }
        if !e.is_empty() {
            return Err(e);
        }
        match nuovo_intestatario {
            Some(n) => {
                dopo.intestatario = Some(Intestatario { id_anpr: n, data_decorrenza: data });
            }
            None if senza_intestatario => avvertimenti.push(
                Anomalia::avvertimento("EN225", "Aggiornare la famiglia del soggetto cancellato indicando un nuovo intestatario ed eventualmente i relativi rapporti di parentela")
                    .campo("elencoSoggettiFamiglia")
                    .valore(f.id.to_string())
                    .atteso("un componente con codice legame 1"),
            ),
            None => {}
        }
        m.famiglia(f.id, &f.scheda, &dopo);
        Ok(())
    }

    /// On a death, the spouse recorded in the deceased's last marriage, if in the
    /// registry and still married, becomes widowed from the date of death.
    async fn vedovanza(
        &self,
        store: &dyn Store,
        s: &SoggettoCorrente,
        data: NaiveDate,
        m: &mut Modifiche,
        avvertimenti: &mut Vec<Anomalia>,
    ) -> Result<(), Vec<Anomalia>> {
        let Some(sc) = s
            .scheda
            .stato_civile
            .as_ref()
            .filter(|sc| sc.stato_civile == "2")
        else {
            return Ok(());
        };
        // Every open marriage (more than one for a polygamous subject, service 5021).
        let coniugi: Vec<_> = crate::poligamia::matrimoni_aperti(&sc.eventi)
            .into_iter()
            .filter_map(|i| sc.eventi[i].coniuge.as_ref().and_then(|c| c.id_anpr))
            .collect();
        let defunto = s.come_persona();
        for id in coniugi {
            let chi = SoggettoPerRicerca {
                id_scheda_soggetto_anpr: Some(id.to_string()),
                codice_fiscale: None,
            };
            let Ok(c) = self.carica_soggetto(store, "coniuge", &chi, None).await else {
                continue;
            };
            if c.posizione() == Some(PosizioneAnagrafica::Cancellato)
                || c.scheda
                    .stato_civile
                    .as_ref()
                    .is_none_or(|sc| sc.stato_civile != "2")
            {
                continue;
            }
            let mut cd = c.scheda.clone();
            let mut sc = cd.stato_civile.clone().unwrap_or(StatoCivile {
                stato_civile: "3".into(),
                eventi: Vec::new(),
            });
            sc.eventi.push(EventoStatoCivile {
                tipo: TipoEventoStatoCivile::Vedovanza,
                data_evento: data,
                luogo_evento: None,
                atto: None,
                coniuge: Some(defunto.clone()),
                tipo_cessazione: None,
            });
            // A spouse with another marriage still open stays married.
            sc.stato_civile = if crate::poligamia::matrimoni_aperti(&sc.eventi).is_empty() {
                "3".into()
            } else {
                "2".into()
            };
            cd.stato_civile = Some(sc);
            m.soggetto(c.id, &c.scheda, &cd);
            avvertimenti.push(
                Anomalia::avvertimento(
                    "EN300",
                    "Stato civile del coniuge superstite aggiornato a vedovo/a",
                )
                .campo("coniuge")
                .valore(c.id.to_string()),
            );
        }
        Ok(())
    }
}

/// Two records of a double registration must describe one person: same sex, birth
/// date and surname.
fn stessa_persona(a: &SoggettoCorrente, b: &SoggettoCorrente, e: &mut Vec<Anomalia>) {
    let chiave = |s: &SoggettoCorrente| {
        s.scheda.generalita.as_ref().map(|g| {
            (
                g.sesso,
                g.data_nascita.data,
                g.cognome.as_ref().map(|c| c.key()),
            )
        })
    };
    if a.id == b.id
        || b.posizione() == Some(PosizioneAnagrafica::Cancellato)
        || chiave(a) != chiave(b)
    {
        e.push(
            Anomalia::errore(
                CODICE_DOPPIA_NON_COERENTE,
                "Il soggetto prevalente non e' un'altra iscrizione attiva della stessa persona",
            )
            .campo("soggettoPrevalente")
            .valore(b.id.to_string())
            .atteso("un soggetto attivo diverso, con stessi cognome, sesso e data di nascita"),
        );
    }
}
