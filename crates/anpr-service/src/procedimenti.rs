//! Administrative proceedings (*procedimenti amministrativi*, service 1014, SPEC M-2.6):
//! opening, state changes, links to subjects and registry operations, closing
//! (archiving), and their search.
//!
//! A 1014 request goes through the operation pipeline like every registry operation
//! (`idOperazioneComune` idempotency, stored refusals, audit); its effective date is the
//! request's `dataStato`, so a proceeding's states follow each other in time and the
//! proceeding can be read as at any date. The request is shaped after `Richiesta1014`
//! (XSD names in camelCase: `procedimentoIstruttoria`, `generalitaPerRicerca`) plus one
//! field of ours, `operazioniCollegate` (the `idOperazioneANPR` of registry operations
//! to link). `tipoOperazione`:
//!
//! | code | does | state | also |
//! |---|---|---|---|
//! | `I` | opens | 1 | `motivoAvvio` required (EN191), no `numeroPraticaAnpr` (EHR03); subjects and operations may be linked at once, subjects not for a registration (EN128) |
//! | `M` | changes | 3–7 | `motivoAvvio` may change |
//! | `A` | links subjects / operations | 3–7 | nothing else (EN432); at least one (EN445) |
//! | `E` | unlinks subjects / operations | 3–7 | nothing else (EN432); at least one (EN446) |
//! | `C` | closes (archives) | 2 | `esitoChiusura` C/R/S required (EHR77), `dataChiusura` defaults to `dataStato` |
//!
//! All but `I` name the proceeding by `numeroPraticaAnpr` or `numeroPraticaComune`
//! (EN247, EHRA0, EHRA1); a closed proceeding changes no more (EN442). A subject may
//! not be in two open proceedings of the municipality started by the same event
//! (EN176). A 1014 operation is annulled with 1013 (the 1xxx family), newest first
//! like every operation.
//!
//! Linked subjects are not the operation's subjects: a 1014 changes no individual record,
//! so suspended operations on those subjects do not block it.

use std::collections::BTreeSet;

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::CallerContext;
use anpr_domain::codice_fiscale::CodiceFiscaleSoggetto;
use anpr_domain::error::{
    Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_DATA_FUTURA, CODICE_VALORE_NON_VALIDO,
};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprSoggetto, IdOperazioneAnpr, NumeroPraticaAnpr, NumeroPraticaComune,
};
use anpr_domain::operazione::StatoOperazione;
use anpr_domain::procedimento::{
    nota_valida, sezione_evento, sezione_soggetto, DatiProcedimento, EventoCollegato,
    SchedaProcedimento, SoggettoCollegato, StatoCorrente, TipoOperazione1014, ESITI_CHIUSURA,
    INNESCHI_ISCRIZIONE, SEZIONE_DATI, SEZIONE_STATO, STATO_CHIUSURA,
};
use anpr_domain::scheda::Generalita;
use anpr_store::{
    EntityRef, IndexWrite, ProcedimentoIndex, ProcedimentoQuery, SectionWrite, Sequence, Store,
    SubjectIndex, SubjectQuery,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::authz::Permesso;
use crate::operazioni::{Piano, RispostaOperazione, Testata, CODICE_DECORRENZA_ANTERIORE};
use crate::{Registry, ServiceError};

/// Our code: the state is not in the table "Stato procedimento amministrativo".
pub const CODICE_STATO_INESISTENTE: &str = "EV070";
/// Our code: the state is not admitted for the `tipoOperazione` (1 only opens, 2 only
/// closes).
pub const CODICE_STATO_NON_AMMESSO: &str = "EV071";
/// Our code: `motivoAvvio` is not in the table "Innesco procedimento amministrativo".
pub const CODICE_INNESCO_INESISTENTE: &str = "EV072";
/// Our code: a field not admitted for the `tipoOperazione` (closing data outside `C`,
/// links with `M` or `C`).
pub const CODICE_CAMPO_NON_AMMESSO: &str = "EV073";
/// Our code: an operation to link does not exist in the municipality, is not in force,
/// or is itself a proceeding operation.
pub const CODICE_OPERAZIONE_NON_COLLEGABILE: &str = "EV074";
/// Our code: the operation is already linked (`A`) or not linked (`E`).
pub const CODICE_COLLEGAMENTO_OPERAZIONE: &str = "EV075";

/// Most subjects or operations one request may name.
pub const MAX_COLLEGAMENTI: usize = 100;
/// Default and largest page of a search.
pub const RICERCA_PREDEFINITA: u32 = 100;
pub const RICERCA_MASSIMA: u32 = 1000;

/// `procedimentoIstruttoria` (`tipoDatiProcedimentoIstruttoria`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcedimentoIstruttoria {
    pub numero_pratica_anpr: Option<String>,
    pub numero_pratica_comune: Option<String>,
    pub tipo_operazione: String,
    pub note_chiusura: Option<String>,
    pub data_chiusura: Option<String>,
    /// Code of "Innesco procedimento amministrativo".
    pub motivo_avvio: Option<String>,
    pub data_stato: String,
    /// Code of "Stato procedimento amministrativo".
    pub stato_procedimento: String,
    pub esito_chiusura: Option<String>,
    pub note_esito: Option<String>,
}

/// One of `generalitaPerRicerca`: how to find a subject. One of the national id (ours,
/// the XSD's `tipoGeneralita` has none), the codice fiscale or the municipal id is
/// needed; surname and name, when given, must match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneralitaPerRicerca {
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<String>,
    pub codice_fiscale: Option<String>,
    pub id_scheda_soggetto_comune: Option<String>,
    pub cognome: Option<String>,
    pub nome: Option<String>,
}

/// Request of service 1014.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta1014 {
    pub id_operazione_comune: Option<String>,
    pub procedimento_istruttoria: ProcedimentoIstruttoria,
    #[serde(default)]
    pub generalita_per_ricerca: Vec<GeneralitaPerRicerca>,
    /// Registry operations (`idOperazioneANPR`) to link or unlink (ours).
    #[serde(default)]
    pub operazioni_collegate: Vec<String>,
}

/// A proceeding search. Number, state, `aperto` and opening-period filters apply to
/// the current state; subject and operation filters to the links in force at
/// `dataRiferimento` (or now), and the proceedings are shown as at that date.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RicercaProcedimenti {
    pub numero_pratica_anpr: Option<String>,
    pub numero_pratica_comune: Option<String>,
    pub stato_procedimento: Option<String>,
    pub aperto: Option<bool>,
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<String>,
    pub codice_fiscale: Option<String>,
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: Option<String>,
    /// Opening date range, both ends inclusive.
    pub data_avvio_dal: Option<String>,
    pub data_avvio_al: Option<String>,
    pub data_riferimento: Option<String>,
    pub limite: Option<u32>,
}

/// A linked subject as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoggettoLetto {
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codice_fiscale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cognome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nome: Option<String>,
    pub data_associazione: NaiveDate,
}

/// A linked operation as shown, with its current state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventoLetto {
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: String,
    pub codice_servizio: String,
    pub data_associazione: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stato_operazione: Option<StatoOperazione>,
}

/// A proceeding as shown by the search.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcedimentoLetto {
    pub numero_pratica_anpr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numero_pratica_comune: Option<String>,
    pub comune: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motivo_avvio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descrizione_motivo_avvio: Option<String>,
    pub stato_procedimento: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descrizione_stato: Option<String>,
    pub data_stato: NaiveDate,
    pub data_avvio: NaiveDate,
    pub aperto: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_chiusura: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esito_chiusura: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_chiusura: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_esito: Option<String>,
    pub soggetti: Vec<SoggettoLetto>,
    pub eventi: Vec<EventoLetto>,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsitoRicercaProcedimenti {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_riferimento: Option<NaiveDate>,
    pub totale: usize,
    pub procedimenti: Vec<ProcedimentoLetto>,
}

fn data(campo: &str, s: &str, out: &mut Vec<Anomalia>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| {
            out.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Data non valida")
                    .campo(campo)
                    .valore(s)
                    .atteso("una data esistente AAAA-MM-GG"),
            )
        })
        .ok()
}

fn non_ammesso(campo: &str, tipo: TipoOperazione1014) -> Anomalia {
    Anomalia::errore(
        CODICE_CAMPO_NON_AMMESSO,
        format!("Campo non ammesso per tipo operazione {tipo}"),
    )
    .campo(campo)
    .atteso(match tipo {
        TipoOperazione1014::Chiusura => "i dati di chiusura, senza soggetti ne' operazioni",
        TipoOperazione1014::Modifica => {
            "stato, data stato e motivo avvio (soggetti e operazioni con A o E)"
        }
        _ => "i dati di chiusura solo con tipo operazione C",
    })
}

/// A subject found from `generalitaPerRicerca`.
#[derive(Debug, Clone)]
struct SoggettoTrovato {
    id: IdAnprSoggetto,
    /// Position in the request, for error fields.
    indice: usize,
}

/// The proceeding a change names, as currently stored.
#[derive(Debug)]
struct Esistente {
    index: ProcedimentoIndex,
    scheda: SchedaProcedimento,
    dati: DatiProcedimento,
}

impl Registry {
    /// Service 1014: opens, changes, links, unlinks or closes an administrative
    /// proceeding.
    pub async fn procedimento_amministrativo(
        &self,
        ctx: &CallerContext,
        req: &Richiesta1014,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "1014",
            Permesso::Procedimento,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _op| async move {
            self.decidi_1014(&*store, &comune, req).await
        })
        .await
    }

    async fn decidi_1014(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta1014,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let today = self.clock().today();
        let p = &req.procedimento_istruttoria;
        let mut e = Vec::new();
        let interno = |x: anpr_store::StoreError| vec![self.anomalia_interna(x)];

        let tipo = match p.tipo_operazione.parse::<TipoOperazione1014>() {
            Ok(tipo) => tipo,
            Err(_) => {
                return Err(vec![Anomalia::errore(
                    "EHR01",
                    format!(
                        "Valore del campo tipo operazione {} non ammesso; i valori possibili sono I, M, C, A, E",
                        p.tipo_operazione
                    ),
                )
                .campo("procedimentoIstruttoria.tipoOperazione")
                .valore(&p.tipo_operazione)
                .atteso("I (apertura), M (modifica), C (chiusura), A (associa), E (elimina)")])
            }
        };
        let data_stato = data("procedimentoIstruttoria.dataStato", &p.data_stato, &mut e);
        if data_stato.is_some_and(|d| d > today) {
            e.push(
                Anomalia::errore(CODICE_DATA_FUTURA, "Data successiva alla data corrente")
                    .campo("procedimentoIstruttoria.dataStato")
                    .valore(&p.data_stato)
                    .atteso(format!("una data non successiva al {today}")),
            );
        }
        let stato = &p.stato_procedimento;
        let descrizione_stato = t.code("stato_procedimento", stato, None);
        if descrizione_stato.is_none() {
            e.push(
                Anomalia::errore(
                    CODICE_STATO_INESISTENTE,
                    format!("Stato procedimento {stato} inesistente sulla tabella di riferimento"),
                )
                .campo("procedimentoIstruttoria.statoProcedimento")
                .valore(stato)
                .atteso("un codice della tabella Stato procedimento amministrativo"),
            );
        } else if !tipo.ammette_stato(stato) {
            e.push(
                Anomalia::errore(
                    CODICE_STATO_NON_AMMESSO,
                    format!("Stato procedimento {stato} non ammesso per tipo operazione {tipo}"),
                )
                .campo("procedimentoIstruttoria.statoProcedimento")
                .valore(stato)
                .atteso(tipo.stato_atteso()),
            );
        }
        let numero_anpr = p.numero_pratica_anpr.as_deref().and_then(|s| {
            s.parse::<NumeroPraticaAnpr>()
                .map_err(|x| {
                    e.push(Anomalia::from_invalid(
                        "procedimentoIstruttoria.numeroPraticaAnpr",
                        &x,
                    ))
                })
                .ok()
        });
        let numero_comune = p.numero_pratica_comune.as_deref().and_then(|s| {
            s.parse::<NumeroPraticaComune>()
                .map_err(|x| {
                    e.push(Anomalia::from_invalid(
                        "procedimentoIstruttoria.numeroPraticaComune",
                        &x,
                    ))
                })
                .ok()
        });
        for (campo, nota) in [
            ("procedimentoIstruttoria.noteChiusura", &p.note_chiusura),
            ("procedimentoIstruttoria.noteEsito", &p.note_esito),
        ] {
            if let Some(n) = nota.as_deref().filter(|n| !nota_valida(n)) {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Note non valide")
                        .campo(campo)
                        .valore(n.chars().take(64).collect::<String>())
                        .atteso("da 1 a 240 caratteri stampabili"),
                );
            }
        }
        if let Some(esito) = p
            .esito_chiusura
            .as_deref()
            .filter(|x| !ESITI_CHIUSURA.contains(x))
        {
            e.push(
                Anomalia::errore(
                    "EHR77",
                    format!("Il valore specificato nel campo esito chiusura {esito} non e' valido, valori ammessi C, R, S"),
                )
                .campo("procedimentoIstruttoria.esitoChiusura")
                .valore(esito)
                .atteso("C, R o S"),
            );
        }
        let data_chiusura = p
            .data_chiusura
            .as_deref()
            .and_then(|s| data("procedimentoIstruttoria.dataChiusura", s, &mut e));
        if let Some(m) = p
            .motivo_avvio
            .as_deref()
            .filter(|m| t.code("innesco_procedimento", m, None).is_none())
        {
            e.push(
                Anomalia::errore(
                    CODICE_INNESCO_INESISTENTE,
                    format!("Motivo di avvio {m} inesistente sulla tabella di riferimento"),
                )
                .campo("procedimentoIstruttoria.motivoAvvio")
                .valore(m)
                .atteso("un codice della tabella Innesco procedimento amministrativo"),
            );
        }
        if req.generalita_per_ricerca.len() > MAX_COLLEGAMENTI
            || req.operazioni_collegate.len() > MAX_COLLEGAMENTI
        {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Troppi soggetti o operazioni")
                    .campo("generalitaPerRicerca")
                    .atteso(format!("al massimo {MAX_COLLEGAMENTI} soggetti e {MAX_COLLEGAMENTI} operazioni per richiesta")),
            );
            return Err(e);
        }
        let ha_chiusura = p.note_chiusura.is_some()
            || p.data_chiusura.is_some()
            || p.esito_chiusura.is_some()
            || p.note_esito.is_some();
        let ha_collegamenti =
            !req.generalita_per_ricerca.is_empty() || !req.operazioni_collegate.is_empty();

        // What each kind admits.
        match tipo {
            TipoOperazione1014::Inserimento => {
                if p.numero_pratica_anpr.is_some() {
                    e.push(
                        Anomalia::errore(
                            "EHR03",
                            "Per tipo operazione I (inserimento) non e' possibile valorizzare il campo numeroPraticaAnpr",
                        )
                        .campo("procedimentoIstruttoria.numeroPraticaAnpr")
                        .valore(p.numero_pratica_anpr.clone().unwrap_or_default()),
                    );
                }
                if p.motivo_avvio.is_none() {
                    e.push(
                        Anomalia::errore(
                            "EN191",
                            "Il tipo innesco deve essere obbligatoriamente indicato in caso di apertura procedimento",
                        )
                        .campo("procedimentoIstruttoria.motivoAvvio")
                        .atteso("un codice della tabella Innesco procedimento amministrativo"),
                    );
                }
                if p.motivo_avvio
                    .as_deref()
                    .is_some_and(|m| INNESCHI_ISCRIZIONE.contains(&m))
                    && !req.generalita_per_ricerca.is_empty()
                {
                    e.push(
                        Anomalia::errore(
                            "EN128",
                            "Le generalita' del soggetto non devono essere indicate in caso di apertura procedimento per iscrizione",
                        )
                        .campo("generalitaPerRicerca"),
                    );
                }
                if ha_chiusura {
                    e.push(non_ammesso("procedimentoIstruttoria", tipo));
                }
            }
            TipoOperazione1014::Modifica => {
                if ha_chiusura {
                    e.push(non_ammesso("procedimentoIstruttoria", tipo));
                }
                if ha_collegamenti {
                    e.push(non_ammesso("generalitaPerRicerca", tipo));
                }
            }
            TipoOperazione1014::Chiusura => {
                if ha_collegamenti {
                    e.push(non_ammesso("generalitaPerRicerca", tipo));
                }
                if p.esito_chiusura.is_none() {
                    e.push(
                        Anomalia::errore(
                            CODICE_CAMPO_OBBLIGATORIO,
                            "Esito della chiusura non indicato",
                        )
                        .campo("procedimentoIstruttoria.esitoChiusura")
                        .atteso("C, R o S"),
                    );
                }
            }
            TipoOperazione1014::Associazione | TipoOperazione1014::Eliminazione => {
                if ha_chiusura || p.motivo_avvio.is_some() {
                    e.push(
                        Anomalia::errore(
                            "EN432",
                            "Per tipo operazione = associa o elimina soggetto, nei dati del procedimento valorizzare solo identificativo ANPR e/o identificativo comunale del procedimento, tipo operazione, data stato e stato procedimento",
                        )
                        .campo("procedimentoIstruttoria"),
                    );
                }
                if !ha_collegamenti {
                    let (codice, testo) = if tipo == TipoOperazione1014::Associazione {
                        (
                            "EN445",
                            "Non e' stato possibile associare nessun soggetto al procedimento",
                        )
                    } else {
                        (
                            "EN446",
                            "Non e' stato possibile eliminare alcun soggetto dal procedimento",
                        )
                    };
                    e.push(
                        Anomalia::errore(codice, testo)
                            .campo("generalitaPerRicerca")
                            .atteso("almeno un soggetto o un'operazione"),
                    );
                }
            }
        }

        // The proceeding a change names.
        let esistente = if tipo == TipoOperazione1014::Inserimento {
            if let Some(n) = &numero_comune {
                let taken = store
                    .find_procedimenti(&ProcedimentoQuery {
                        comune: Some(comune.clone()),
                        numero_pratica_comune: Some(n.to_string()),
                        limit: 1,
                        ..Default::default()
                    })
                    .await
                    .map_err(interno)?;
                if !taken.is_empty() {
                    e.push(
                        Anomalia::errore(
                            "EN151",
                            format!("Il numero pratica comune {n} indicato per il procedimento amministrativo e' gia' presente in base informativa"),
                        )
                        .campo("procedimentoIstruttoria.numeroPraticaComune")
                        .valore(n.as_str()),
                    );
                }
            }
            None
        } else {
            match self
                .trova_procedimento(store, comune, numero_anpr, numero_comune.as_ref(), p)
                .await
            {
                Ok(found) => found,
                Err(mut a) => {
                    e.append(&mut a);
                    None
                }
            }
        };
        if let Some(x) = &esistente {
            if !x.index.aperto {
                e.push(
                    Anomalia::errore("EN442", "Il procedimento indicato risulta chiuso")
                        .campo("procedimentoIstruttoria.numeroPraticaAnpr")
                        .valore(x.index.id.to_string()),
                );
            }
            if let Some(d) = data_stato.filter(|d| *d < x.index.data_stato) {
                e.push(
                    Anomalia::errore(
                        CODICE_DECORRENZA_ANTERIORE,
                        "Data stato anteriore all'ultimo stato del procedimento",
                    )
                    .campo("procedimentoIstruttoria.dataStato")
                    .valore(d.to_string())
                    .atteso(format!("una data non anteriore al {}", x.index.data_stato)),
                );
            }
            if let Some(d) = data_chiusura.filter(|d| *d < x.dati.data_avvio) {
                e.push(
                    Anomalia::errore(
                        CODICE_DECORRENZA_ANTERIORE,
                        "Data di chiusura anteriore all'apertura del procedimento",
                    )
                    .campo("procedimentoIstruttoria.dataChiusura")
                    .valore(d.to_string())
                    .atteso(format!("una data non anteriore al {}", x.dati.data_avvio)),
                );
            }
        }
        if data_chiusura.is_some_and(|d| d > today) {
            e.push(
                Anomalia::errore(CODICE_DATA_FUTURA, "Data successiva alla data corrente")
                    .campo("procedimentoIstruttoria.dataChiusura")
                    .atteso(format!("una data non successiva al {today}")),
            );
        }

        // Subjects and operations to link or unlink.
        let rimozione = tipo == TipoOperazione1014::Eliminazione;
        let soggetti = self
            .trova_soggetti(
                store,
                comune,
                &req.generalita_per_ricerca,
                rimozione,
                &mut e,
            )
            .await
            .map_err(interno)?;
        let operazioni = self
            .trova_operazioni(store, comune, &req.operazioni_collegate, rimozione, &mut e)
            .await
            .map_err(interno)?;
        let scheda = esistente.as_ref().map(|x| &x.scheda);
        for s in &soggetti {
            let campo = format!("generalitaPerRicerca[{}]", s.indice);
            let collegato = scheda.is_some_and(|x| x.collegato_a_soggetto(s.id));
            if rimozione && !collegato {
                e.push(
                    Anomalia::errore(
                        "EN433",
                        format!("Il soggetto con identificativo ANPR {} non risulta associato al procedimento indicato", s.id),
                    )
                    .campo(campo)
                    .valore(s.id.to_string()),
                );
            } else if !rimozione && collegato {
                e.push(
                    Anomalia::errore("EN186", "Il soggetto e' gia' associato al procedimento")
                        .campo(campo)
                        .valore(s.id.to_string()),
                );
            }
        }
        for (i, o) in &operazioni {
            let collegato = scheda.is_some_and(|x| x.collegato_a_evento(o.id));
            if rimozione != collegato {
                e.push(
                    Anomalia::errore(
                        CODICE_COLLEGAMENTO_OPERAZIONE,
                        if rimozione {
                            format!("L'operazione {} non e' collegata al procedimento", o.id)
                        } else {
                            format!("L'operazione {} e' gia' collegata al procedimento", o.id)
                        },
                    )
                    .campo(format!("operazioniCollegate[{i}]"))
                    .valore(o.id.to_string()),
                );
            }
        }
        // One open proceeding per subject and starting event in the municipality.
        let motivo = p
            .motivo_avvio
            .clone()
            .or_else(|| esistente.as_ref().and_then(|x| x.dati.motivo_avvio.clone()));
        if !rimozione {
            let proprio = esistente.as_ref().map(|x| x.index.id);
            for s in &soggetti {
                if let Some(a) = self
                    .procedimento_aperto(store, comune, s, motivo.as_deref(), proprio)
                    .await
                    .map_err(interno)?
                {
                    e.push(a);
                }
            }
        }

        let (Some(data_stato), true) = (data_stato, e.is_empty()) else {
            return Err(e);
        };

        // The writes.
        let (id, dati) = match esistente {
            Some(x) => (x.index.id, x.dati),
            None => {
                let id = store
                    .next_id(Sequence::Procedimento)
                    .await
                    .map_err(interno)?;
                let numero =
                    NumeroPraticaAnpr::new(id).map_err(|x| vec![self.anomalia_interna(x)])?;
                let dati = DatiProcedimento {
                    numero_pratica_anpr: numero,
                    numero_pratica_comune: numero_comune,
                    comune: comune.clone(),
                    motivo_avvio: p.motivo_avvio.clone(),
                    data_avvio: data_stato,
                    data_chiusura: None,
                    esito_chiusura: None,
                    note_chiusura: None,
                    note_esito: None,
                };
                (id, dati)
            }
        };
        let entity = EntityRef::Procedimento(id);
        let mut nuovi_dati = dati.clone();
        if tipo == TipoOperazione1014::Modifica {
            if let Some(m) = &p.motivo_avvio {
                nuovi_dati.motivo_avvio = Some(m.clone());
            }
        }
        if tipo == TipoOperazione1014::Chiusura {
            nuovi_dati.data_chiusura = Some(data_chiusura.unwrap_or(data_stato));
            nuovi_dati.esito_chiusura = p.esito_chiusura.clone();
            nuovi_dati.note_chiusura = p.note_chiusura.clone();
            nuovi_dati.note_esito = p.note_esito.clone();
        }
        let mut writes = Vec::new();
        if tipo == TipoOperazione1014::Inserimento || nuovi_dati != dati {
            writes.push(SectionWrite {
                entity,
                section: SEZIONE_DATI.to_owned(),
                value: Some(self.valore_sezione(&nuovi_dati)?),
                key: None,
            });
        }
        let stato_corrente = StatoCorrente {
            stato_procedimento: stato.clone(),
            data_stato,
        };
        writes.push(SectionWrite {
            entity,
            section: SEZIONE_STATO.to_owned(),
            value: Some(self.valore_sezione(&stato_corrente)?),
            key: None,
        });
        for s in &soggetti {
            let link = SoggettoCollegato {
                id_scheda_soggetto_anpr: s.id,
                data_associazione: data_stato,
            };
            writes.push(SectionWrite {
                entity,
                section: sezione_soggetto(s.id),
                value: if rimozione {
                    None
                } else {
                    Some(self.valore_sezione(&link)?)
                },
                key: Some(s.id.to_string()),
            });
        }
        for (_, o) in &operazioni {
            let link = EventoCollegato {
                id_operazione_anpr: o.id,
                codice_servizio: o.codice_servizio.clone(),
                data_associazione: data_stato,
            };
            writes.push(SectionWrite {
                entity,
                section: sezione_evento(o.id),
                value: if rimozione {
                    None
                } else {
                    Some(self.valore_sezione(&link)?)
                },
                key: Some(o.id.to_string()),
            });
        }
        let index = ProcedimentoIndex {
            id,
            comune: comune.clone(),
            numero_pratica_comune: nuovi_dati
                .numero_pratica_comune
                .as_ref()
                .map(ToString::to_string),
            stato: stato.clone(),
            aperto: stato != STATO_CHIUSURA,
            motivo_avvio: nuovi_dati.motivo_avvio.clone(),
            data_avvio: nuovi_dati.data_avvio,
            data_stato,
            data_chiusura: nuovi_dati.data_chiusura,
        };
        Ok(Piano {
            decorrenza: Some(data_stato),
            writes,
            indexes: vec![IndexWrite::Procedimento(index)],
            procedimenti: vec![id],
            ..Piano::default()
        })
    }

    /// Finds the proceeding a change names, by national and/or municipal number.
    async fn trova_procedimento(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        numero_anpr: Option<NumeroPraticaAnpr>,
        numero_comune: Option<&NumeroPraticaComune>,
        p: &ProcedimentoIstruttoria,
    ) -> Result<Option<Esistente>, Vec<Anomalia>> {
        let interno = |x: anpr_store::StoreError| vec![self.anomalia_interna(x)];
        if p.numero_pratica_anpr.is_none() && p.numero_pratica_comune.is_none() {
            return Err(vec![Anomalia::errore(
                "EN247",
                "Indicare Il numero del procedimento amministrativo",
            )
            .campo("procedimentoIstruttoria.numeroPraticaAnpr")
            .atteso("numeroPraticaAnpr o numeroPraticaComune")]);
        }
        let query = ProcedimentoQuery {
            id: numero_anpr.map(NumeroPraticaAnpr::get),
            comune: Some(comune.clone()),
            numero_pratica_comune: numero_comune.map(ToString::to_string),
            limit: 2,
            ..Default::default()
        };
        if (p.numero_pratica_anpr.is_some() && query.id.is_none())
            || (p.numero_pratica_comune.is_some() && query.numero_pratica_comune.is_none())
        {
            // A malformed number, already reported.
            return Ok(None);
        }
        let found = store.find_procedimenti(&query).await.map_err(interno)?;
        let Some(index) = found.into_iter().next() else {
            return Err(vec![match (&p.numero_pratica_anpr, &p.numero_pratica_comune) {
                (Some(n), _) => Anomalia::errore(
                    "EHRA0",
                    format!("Il numero del procedimento {n} non e' presente"),
                )
                .campo("procedimentoIstruttoria.numeroPraticaAnpr")
                .valore(n.clone())
                .atteso(format!(
                    "un procedimento del comune {comune}{}",
                    if p.numero_pratica_comune.is_some() {
                        " con il numero pratica comune indicato"
                    } else {
                        ""
                    }
                )),
                (None, n) => Anomalia::errore(
                    "EHRA1",
                    format!(
                        "Il numero pratica comune {} indicato per il procedimento amministrativo non e' presente",
                        n.clone().unwrap_or_default()
                    ),
                )
                .campo("procedimentoIstruttoria.numeroPraticaComune")
                .valore(n.clone().unwrap_or_default()),
            }]);
        };
        let record = store
            .record(EntityRef::Procedimento(index.id), None)
            .await
            .map_err(interno)?
            .ok_or_else(|| {
                vec![self.anomalia_interna(format!("proceeding {} has no sections", index.id))]
            })?;
        let scheda = SchedaProcedimento::from_sections(record.iter())
            .map_err(|x| vec![self.anomalia_interna(x)])?;
        let dati = scheda.dati.clone().ok_or_else(|| {
            vec![self.anomalia_interna(format!("proceeding {} has no data", index.id))]
        })?;
        Ok(Some(Esistente {
            index,
            scheda,
            dati,
        }))
    }

    /// Resolves `generalitaPerRicerca`. For a removal a national id needs no lookup (the
    /// subject may be gone, e.g. an annulled registration).
    async fn trova_soggetti(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        richiesti: &[GeneralitaPerRicerca],
        rimozione: bool,
        e: &mut Vec<Anomalia>,
    ) -> Result<Vec<SoggettoTrovato>, anpr_store::StoreError> {
        let mut out: Vec<SoggettoTrovato> = Vec::new();
        for (i, g) in richiesti.iter().enumerate() {
            let campo = format!("generalitaPerRicerca[{i}]");
            let non_trovato = |e: &mut Vec<Anomalia>, come: &str| {
                e.push(
                    Anomalia::errore(
                        "EN192",
                        format!(
                            "Errore nell'inserimento del soggetto cognome {} nome {} nel procedimento: {come}",
                            g.cognome.as_deref().unwrap_or("-"),
                            g.nome.as_deref().unwrap_or("-")
                        ),
                    )
                    .campo(campo.clone())
                    .atteso("un soggetto presente in ANPR"),
                );
            };
            let query = if let Some(raw) = &g.id_scheda_soggetto_anpr {
                match raw.parse::<IdAnprSoggetto>() {
                    Err(x) => {
                        e.push(Anomalia::from_invalid(
                            format!("{campo}.idSchedaSoggettoANPR"),
                            &x,
                        ));
                        continue;
                    }
                    Ok(id) if rimozione && g.cognome.is_none() && g.nome.is_none() => {
                        if !out.iter().any(|s| s.id == id) {
                            out.push(SoggettoTrovato { id, indice: i });
                        }
                        continue;
                    }
                    Ok(id) => SubjectQuery {
                        id: Some(id),
                        ..Default::default()
                    },
                }
            } else if let Some(raw) = &g.codice_fiscale {
                let upper = raw.trim().to_ascii_uppercase();
                match upper.parse::<CodiceFiscaleSoggetto>() {
                    Err(x) => {
                        e.push(
                            Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                                .campo(format!("{campo}.codiceFiscale"))
                                .valore(upper),
                        );
                        continue;
                    }
                    Ok(c) => SubjectQuery {
                        codice_fiscale: Some(c.as_str().to_owned()),
                        ..Default::default()
                    },
                }
            } else if let Some(raw) = &g.id_scheda_soggetto_comune {
                SubjectQuery {
                    id_comunale: Some(raw.clone()),
                    comune: Some(comune.clone()),
                    ..Default::default()
                }
            } else {
                e.push(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Soggetto non identificato")
                        .campo(campo.clone())
                        .atteso("idSchedaSoggettoANPR, codiceFiscale o idSchedaSoggettoComune"),
                );
                continue;
            };
            let found = store
                .find_subjects(&SubjectQuery { limit: 10, ..query })
                .await?;
            // A removed subject (position C) counts only when nobody else matches.
            let attivi: Vec<&SubjectIndex> = found.iter().filter(|s| s.posizione != "C").collect();
            let candidati: Vec<&SubjectIndex> = if attivi.is_empty() {
                found.iter().collect()
            } else {
                attivi
            };
            let s = match candidati.as_slice() {
                [] => {
                    non_trovato(e, "soggetto non presente");
                    continue;
                }
                [one] => *one,
                _ => {
                    non_trovato(e, "piu' soggetti corrispondono ai dati indicati");
                    continue;
                }
            };
            let coincide = |given: &Option<String>, key: &Option<String>| {
                given
                    .as_deref()
                    .is_none_or(|g| key.as_deref() == Some(anpr_domain::text::fold_key(g).as_str()))
            };
            if !coincide(&g.cognome, &s.cognome_key) || !coincide(&g.nome, &s.nome_key) {
                non_trovato(e, "cognome o nome non corrispondono al soggetto");
                continue;
            }
            if !out.iter().any(|x| x.id == s.id) {
                out.push(SoggettoTrovato {
                    id: s.id,
                    indice: i,
                });
            }
        }
        Ok(out)
    }

    /// Resolves `operazioniCollegate`: operations of the municipality, in force, not
    /// proceeding operations themselves. For a removal only the id is needed.
    async fn trova_operazioni(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        richieste: &[String],
        rimozione: bool,
        e: &mut Vec<Anomalia>,
    ) -> Result<Vec<(usize, OperazioneTrovata)>, anpr_store::StoreError> {
        let mut out: Vec<(usize, OperazioneTrovata)> = Vec::new();
        for (i, raw) in richieste.iter().enumerate() {
            let campo = format!("operazioniCollegate[{i}]");
            let id = match raw.parse::<IdOperazioneAnpr>() {
                Ok(id) => id,
                Err(x) => {
                    e.push(Anomalia::from_invalid(&campo, &x));
                    continue;
                }
            };
            if out.iter().any(|(_, o)| o.id == id) {
                continue;
            }
            let stored = store.operation(id).await?;
            let ok = stored.filter(|o| {
                o.comune.as_ref() == Some(comune)
                    && (rimozione
                        || (o.stato == StatoOperazione::Eseguita
                            && o.annulla.is_none()
                            && o.codice_servizio.as_str() != "1014"))
            });
            match ok {
                Some(o) => out.push((
                    i,
                    OperazioneTrovata {
                        id,
                        codice_servizio: o.codice_servizio,
                    },
                )),
                None => e.push(
                    Anomalia::errore(
                        CODICE_OPERAZIONE_NON_COLLEGABILE,
                        format!("Operazione {id} inesistente nel comune, non in vigore o non collegabile"),
                    )
                    .campo(campo)
                    .valore(raw)
                    .atteso(format!(
                        "un'operazione anagrafica eseguita del comune {comune}, diversa da un 1014"
                    )),
                ),
            }
        }
        Ok(out)
    }

    /// EN176: `s` is already in another open proceeding of `comune` started by the same
    /// event.
    async fn procedimento_aperto(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        s: &SoggettoTrovato,
        motivo: Option<&str>,
        proprio: Option<u64>,
    ) -> Result<Option<Anomalia>, anpr_store::StoreError> {
        let linked = store
            .by_section_key(&sezione_soggetto(s.id), &s.id.to_string(), None)
            .await?;
        for (entity, _) in linked {
            let EntityRef::Procedimento(id) = entity else {
                continue;
            };
            if Some(id) == proprio {
                continue;
            }
            let found = store
                .find_procedimenti(&ProcedimentoQuery {
                    id: Some(id),
                    comune: Some(comune.clone()),
                    aperto: Some(true),
                    limit: 1,
                    ..Default::default()
                })
                .await?;
            if let Some(other) = found
                .into_iter()
                .find(|o| o.motivo_avvio.as_deref() == motivo)
            {
                let per = other
                    .motivo_avvio
                    .as_deref()
                    .and_then(|m| self.tables().code("innesco_procedimento", m, None))
                    .map_or_else(
                        || "motivo non indicato".to_owned(),
                        |r| r.description.clone(),
                    );
                return Ok(Some(
                    Anomalia::errore(
                        "EN176",
                        format!(
                            "Per il soggetto esiste un procedimento aperto in data {} per {per}",
                            other.data_avvio
                        ),
                    )
                    .campo(format!("generalitaPerRicerca[{}]", s.indice))
                    .valore(s.id.to_string())
                    .atteso(format!(
                        "nessun altro procedimento aperto per lo stesso motivo (procedimento {})",
                        other.id
                    )),
                ));
            }
        }
        Ok(None)
    }

    /// Searches the municipality's proceedings; audited as a read of personal data (the
    /// linked subjects' generalities).
    pub async fn ricerca_procedimenti(
        &self,
        ctx: &CallerContext,
        req: &RicercaProcedimenti,
    ) -> Result<EsitoRicercaProcedimenti, ServiceError> {
        self.autorizza(ctx, Permesso::ConsultaProcedimenti, "ricercaProcedimenti")
            .await?;
        let rifiuto = |anomalie: Vec<Anomalia>| ServiceError::Rifiutata {
            anomalie,
            riferimento: self.riferimento(None),
        };
        let Some(comune) = ctx.comune.clone() else {
            return Err(rifiuto(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Comune dell'operatore non indicato",
            )
            .campo("codMittente")
            .atteso("il codice ISTAT del comune")]));
        };
        let mut e = Vec::new();
        let numero_anpr = req.numero_pratica_anpr.as_deref().and_then(|s| {
            s.parse::<NumeroPraticaAnpr>()
                .map_err(|x| e.push(Anomalia::from_invalid("numeroPraticaAnpr", &x)))
                .ok()
        });
        let numero_comune = req.numero_pratica_comune.as_deref().and_then(|s| {
            s.parse::<NumeroPraticaComune>()
                .map_err(|x| e.push(Anomalia::from_invalid("numeroPraticaComune", &x)))
                .ok()
        });
        if let Some(s) = req
            .stato_procedimento
            .as_deref()
            .filter(|s| self.tables().code("stato_procedimento", s, None).is_none())
        {
            e.push(
                Anomalia::errore(
                    CODICE_STATO_INESISTENTE,
                    format!("Stato procedimento {s} inesistente sulla tabella di riferimento"),
                )
                .campo("statoProcedimento")
                .valore(s),
            );
        }
        let soggetto = req.id_scheda_soggetto_anpr.as_deref().and_then(|s| {
            s.parse::<IdAnprSoggetto>()
                .map_err(|x| e.push(Anomalia::from_invalid("idSchedaSoggettoANPR", &x)))
                .ok()
        });
        let cf = req.codice_fiscale.as_deref().and_then(|raw| {
            let upper = raw.trim().to_ascii_uppercase();
            upper
                .parse::<CodiceFiscaleSoggetto>()
                .map_err(|x| {
                    e.push(
                        Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                            .campo("codiceFiscale")
                            .valore(upper.clone()),
                    )
                })
                .ok()
        });
        let operazione = req.id_operazione_anpr.as_deref().and_then(|s| {
            s.parse::<IdOperazioneAnpr>()
                .map_err(|x| e.push(Anomalia::from_invalid("idOperazioneANPR", &x)))
                .ok()
        });
        let dal = req
            .data_avvio_dal
            .as_deref()
            .and_then(|s| data("dataAvvioDal", s, &mut e));
        let al = req
            .data_avvio_al
            .as_deref()
            .and_then(|s| data("dataAvvioAl", s, &mut e));
        let at = req
            .data_riferimento
            .as_deref()
            .and_then(|s| data("dataRiferimento", s, &mut e));
        let limite = req.limite.unwrap_or(RICERCA_PREDEFINITA);
        if limite == 0 || limite > RICERCA_MASSIMA {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Limite non valido")
                    .campo("limite")
                    .valore(limite.to_string())
                    .atteso(format!("da 1 a {RICERCA_MASSIMA}")),
            );
        }
        if !e.is_empty() {
            return Err(rifiuto(e));
        }
        let store = self.store(ctx.ambiente)?;
        let interno = |x: anpr_store::StoreError| self.interno(x);

        // Candidates from the links, when a subject or an operation is asked for.
        let mut candidati: Option<BTreeSet<u64>> = None;
        let mut restringi = |ids: BTreeSet<u64>| {
            candidati = Some(match candidati.take() {
                None => ids,
                Some(prev) => prev.intersection(&ids).copied().collect(),
            });
        };
        if let Some(n) = numero_anpr {
            restringi(BTreeSet::from([n.get()]));
        }
        let mut soggetti_cercati: Vec<IdAnprSoggetto> = soggetto.into_iter().collect();
        if let Some(c) = &cf {
            let found = store
                .find_subjects(&SubjectQuery {
                    codice_fiscale: Some(c.as_str().to_owned()),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .map_err(interno)?;
            let ids: Vec<IdAnprSoggetto> = found.into_iter().map(|s| s.id).collect();
            if soggetti_cercati.is_empty() {
                soggetti_cercati = ids;
            } else {
                soggetti_cercati.retain(|s| ids.contains(s));
            }
        }
        if soggetto.is_some() || cf.is_some() {
            let mut ids = BTreeSet::new();
            for s in &soggetti_cercati {
                for (entity, _) in store
                    .by_section_key(&sezione_soggetto(*s), &s.to_string(), at)
                    .await
                    .map_err(interno)?
                {
                    if let EntityRef::Procedimento(id) = entity {
                        ids.insert(id);
                    }
                }
            }
            restringi(ids);
        }
        if let Some(o) = operazione {
            let ids = store
                .by_section_key(&sezione_evento(o), &o.to_string(), at)
                .await
                .map_err(interno)?
                .into_iter()
                .filter_map(|(entity, _)| match entity {
                    EntityRef::Procedimento(id) => Some(id),
                    _ => None,
                })
                .collect();
            restringi(ids);
        }
        let base = ProcedimentoQuery {
            comune: Some(comune.clone()),
            numero_pratica_comune: numero_comune.map(|n| n.to_string()),
            stato: req.stato_procedimento.clone(),
            aperto: req.aperto,
            avviato_dal: dal,
            avviato_al: al,
            limit: limite,
            ..Default::default()
        };
        let indici = match candidati {
            None => store.find_procedimenti(&base).await.map_err(interno)?,
            Some(ids) => {
                let mut out = Vec::new();
                for id in ids {
                    if out.len() >= limite as usize {
                        break;
                    }
                    out.extend(
                        store
                            .find_procedimenti(&ProcedimentoQuery {
                                id: Some(id),
                                limit: 1,
                                ..base.clone()
                            })
                            .await
                            .map_err(interno)?,
                    );
                }
                out
            }
        };

        let mut procedimenti = Vec::with_capacity(indici.len());
        for index in &indici {
            let Some(record) = store
                .record(EntityRef::Procedimento(index.id), at)
                .await
                .map_err(interno)?
            else {
                // Not opened yet at the reference date.
                continue;
            };
            let scheda =
                SchedaProcedimento::from_sections(record.iter()).map_err(|x| self.interno(x))?;
            procedimenti.push(self.procedimento_letto(&**store, scheda).await?);
        }
        let elenco: Vec<String> = procedimenti
            .iter()
            .take(50)
            .map(|p| p.numero_pratica_anpr.clone())
            .collect();
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            "ricercaProcedimenti",
            (!elenco.is_empty()).then(|| format!("procedimenti:{}", elenco.join(","))),
            format!("ok: {}", procedimenti.len()),
        );
        store.append_audit(voce).await.map_err(interno)?;
        Ok(EsitoRicercaProcedimenti {
            data_riferimento: at,
            totale: procedimenti.len(),
            procedimenti,
        })
    }

    /// A proceeding with its linked subjects' generalities and operations' states.
    async fn procedimento_letto(
        &self,
        store: &dyn Store,
        scheda: SchedaProcedimento,
    ) -> Result<ProcedimentoLetto, ServiceError> {
        let aperto = scheda.aperto();
        let (Some(dati), Some(stato)) = (scheda.dati, scheda.stato) else {
            return Err(self.interno("a proceeding without data or state"));
        };
        let t = self.tables();
        let mut soggetti = Vec::with_capacity(scheda.soggetti.len());
        for s in scheda.soggetti {
            let id = s.id_scheda_soggetto_anpr;
            let index = store
                .find_subjects(&SubjectQuery {
                    id: Some(id),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .map_err(|x| self.interno(x))?;
            let generalita: Option<Generalita> = store
                .record(EntityRef::Soggetto(id), None)
                .await
                .map_err(|x| self.interno(x))?
                .and_then(|r| r.get("generalita").cloned())
                .map(serde_json::from_value)
                .transpose()
                .map_err(|x| self.interno(x))?;
            soggetti.push(SoggettoLetto {
                id_scheda_soggetto_anpr: id.to_string(),
                codice_fiscale: index.into_iter().next().and_then(|i| i.codice_fiscale),
                cognome: generalita
                    .as_ref()
                    .and_then(|g| g.cognome.as_ref().map(|n| n.as_str().to_owned())),
                nome: generalita
                    .as_ref()
                    .and_then(|g| g.nome.as_ref().map(|n| n.as_str().to_owned())),
                data_associazione: s.data_associazione,
            });
        }
        let mut eventi = Vec::with_capacity(scheda.eventi.len());
        for ev in scheda.eventi {
            let stored = store
                .operation(ev.id_operazione_anpr)
                .await
                .map_err(|x| self.interno(x))?;
            eventi.push(EventoLetto {
                id_operazione_anpr: ev.id_operazione_anpr.to_string(),
                codice_servizio: ev.codice_servizio.to_string(),
                data_associazione: ev.data_associazione,
                stato_operazione: stored.map(|o| o.stato),
            });
        }
        Ok(ProcedimentoLetto {
            numero_pratica_anpr: dati.numero_pratica_anpr.to_string(),
            numero_pratica_comune: dati.numero_pratica_comune.map(|n| n.to_string()),
            comune: dati.comune.to_string(),
            descrizione_motivo_avvio: dati
                .motivo_avvio
                .as_deref()
                .and_then(|m| t.code("innesco_procedimento", m, None))
                .map(|r| r.description.clone()),
            motivo_avvio: dati.motivo_avvio,
            descrizione_stato: t
                .code("stato_procedimento", &stato.stato_procedimento, None)
                .map(|r| r.description.clone()),
            stato_procedimento: stato.stato_procedimento,
            data_stato: stato.data_stato,
            data_avvio: dati.data_avvio,
            aperto,
            data_chiusura: dati.data_chiusura,
            esito_chiusura: dati.esito_chiusura,
            note_chiusura: dati.note_chiusura,
            note_esito: dati.note_esito,
            soggetti,
            eventi,
        })
    }
}

/// An operation found from `operazioniCollegate`.
#[derive(Debug, Clone)]
struct OperazioneTrovata {
    id: IdOperazioneAnpr,
    codice_servizio: anpr_domain::operazione::CodiceServizio,
}

impl Registry {
    /// A section value (serialising these types cannot fail, but a failure must be an
    /// internal error, not a panic).
    fn valore_sezione<T: Serialize>(&self, v: &T) -> Result<serde_json::Value, Vec<Anomalia>> {
        serde_json::to_value(v).map_err(|x| vec![self.anomalia_interna(x)])
    }
}

/// `datiDelProcedimento` of a registry operation (`tipoDatiProcedimento`): the
/// proceeding the operation belongs to, by national or municipal number. The pipeline
/// links the operation to it in the operation's own transaction.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiDelProcedimento {
    pub numero_pratica_anpr: Option<String>,
    pub numero_pratica_comune: Option<String>,
    /// Date the municipality defined the case (kept in the request document).
    pub data_definizione_pratica: Option<String>,
}

impl Registry {
    /// Links operation `op` (service `codice`, effective `data`) to the open proceeding
    /// of `comune` that `dati` names: the write to add to the operation's plan and the
    /// proceeding's number. Annulling the operation removes the link with it.
    pub(crate) async fn collega_al_procedimento(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        dati: &DatiDelProcedimento,
        op: IdOperazioneAnpr,
        codice: &anpr_domain::operazione::CodiceServizio,
        data: NaiveDate,
    ) -> Result<(u64, SectionWrite), Vec<Anomalia>> {
        const CAMPO_ANPR: &str = "datiDelProcedimento.numeroPraticaAnpr";
        const CAMPO_COMUNE: &str = "datiDelProcedimento.numeroPraticaComune";
        let mut e = Vec::new();
        let numero_anpr = dati.numero_pratica_anpr.as_deref().and_then(|n| {
            n.trim()
                .parse::<NumeroPraticaAnpr>()
                .map_err(|x| e.push(Anomalia::from_invalid(CAMPO_ANPR, &x)))
                .ok()
        });
        let numero_comune = dati.numero_pratica_comune.as_deref().and_then(|n| {
            n.parse::<NumeroPraticaComune>()
                .map_err(|x| e.push(Anomalia::from_invalid(CAMPO_COMUNE, &x)))
                .ok()
        });
        if dati.numero_pratica_anpr.is_none() && dati.numero_pratica_comune.is_none() {
            e.push(
                Anomalia::errore(
                    "EN247",
                    "Indicare Il numero del procedimento amministrativo",
                )
                .campo(CAMPO_ANPR)
                .atteso("numeroPraticaAnpr o numeroPraticaComune"),
            );
        }
        if !e.is_empty() {
            return Err(e);
        }
        let query = ProcedimentoQuery {
            id: numero_anpr.map(NumeroPraticaAnpr::get),
            comune: Some(comune.clone()),
            numero_pratica_comune: numero_comune.map(|n| n.to_string()),
            limit: 1,
            ..Default::default()
        };
        let found = store
            .find_procedimenti(&query)
            .await
            .map_err(|x| vec![self.anomalia_interna(x)])?;
        let Some(p) = found.into_iter().next() else {
            return Err(vec![match &dati.numero_pratica_anpr {
                Some(n) => Anomalia::errore(
                    "EHRA0",
                    format!("Il numero del procedimento {n} non e' presente"),
                )
                .campo(CAMPO_ANPR)
                .valore(n.clone())
                .atteso(format!("un procedimento del comune {comune}")),
                None => Anomalia::errore(
                    "EHRA1",
                    "Il numero pratica comune indicato per il procedimento amministrativo non e' presente",
                )
                .campo(CAMPO_COMUNE)
                .valore(dati.numero_pratica_comune.clone().unwrap_or_default()),
            }]);
        };
        if !p.aperto {
            return Err(vec![Anomalia::errore(
                "EN442",
                "Il procedimento indicato risulta chiuso",
            )
            .campo(CAMPO_ANPR)
            .valore(p.id.to_string())]);
        }
        let link = EventoCollegato {
            id_operazione_anpr: op,
            codice_servizio: codice.clone(),
            data_associazione: data,
        };
        Ok((
            p.id,
            SectionWrite {
                entity: EntityRef::Procedimento(p.id),
                section: sezione_evento(op),
                value: Some(self.valore_sezione(&link)?),
                key: Some(op.to_string()),
            },
        ))
    }
}
