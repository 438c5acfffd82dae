//! The pipeline every registry operation goes through (SPEC M-2, M-2.8).
//!
//! authorise → idempotency (`idOperazioneComune` seen before: return the stored response
//! byte for byte; used by another service: EN079) → decide (the use case validates and
//! returns a plan or coded refusals) → persist (operation log, sections, indexes, outbox
//! and audit in one transaction) → respond. Refusals are stored too, so a replay returns
//! the same refusal. The response document is built before the commit and stored with
//! the operation.

use std::future::Future;
use std::sync::Arc;

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune,
};
use anpr_domain::operazione::{CodiceServizio, StatoOperazione};
use anpr_store::{
    IndexWrite, NewOperation, NewOutboxMessage, SectionWrite, Sequence, Store, StoreError,
};
use chrono::NaiveDate;
use serde_json::json;

use crate::authz::Permesso;
use crate::{Registry, ServiceError};

/// Our code for an `idOperazioneComune` not greater than the last one of the municipality.
pub const CODICE_ID_NON_CRESCENTE: &str = "EV030";
/// Our code for a change dated before the version it would replace.
pub const CODICE_DECORRENZA_ANTERIORE: &str = "EV031";

/// ANPR code for an annulment out of order (only the newest operation on a record).
pub const CODICE_NON_ULTIMA: &str = "EN077";
/// Our code for annulling an operation that is not in force.
pub const CODICE_NON_IN_VIGORE: &str = "EV035";

/// What a use case decided: the writes of the operation.
#[derive(Debug, Default)]
pub struct Piano {
    pub decorrenza: Option<NaiveDate>,
    pub writes: Vec<SectionWrite>,
    pub indexes: Vec<IndexWrite>,
    pub outbox: Vec<NewOutboxMessage>,
    pub soggetti: Vec<IdAnprSoggetto>,
    pub famiglie: Vec<IdAnprFamiglia>,
    pub avvertimenti: Vec<Anomalia>,
    /// For annulments: the operation to annul (the plan then carries no writes).
    pub annulla: Option<IdOperazioneAnpr>,
    /// Administrative proceedings the operation opened or changed (`numeroPraticaAnpr`),
    /// named in the response.
    pub procedimenti: Vec<u64>,
}

/// The answer to an operation: the stored response document and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RispostaOperazione {
    pub id_operazione_anpr: IdOperazioneAnpr,
    pub eseguita: bool,
    /// True when this is the stored answer to an already-seen `idOperazioneComune`.
    pub replay: bool,
    /// The response document (JSON), identical on every replay.
    pub documento: String,
}

/// The operation's header as received.
#[derive(Debug, Clone)]
pub struct Testata<'a> {
    pub codice: &'a str,
    pub permesso: Permesso,
    pub id_operazione_comune: Option<&'a str>,
    pub richiesta: &'a serde_json::Value,
    /// The suspended operation this one completes (SPEC M-2.5), if any.
    pub id_operazione_sospesa: Option<u64>,
}

impl<'a> Testata<'a> {
    /// The header of an operation that completes no suspended one.
    pub fn new(
        codice: &'a str,
        permesso: Permesso,
        id_operazione_comune: Option<&'a str>,
        richiesta: &'a serde_json::Value,
    ) -> Self {
        Self {
            codice,
            permesso,
            id_operazione_comune,
            richiesta,
            id_operazione_sospesa: None,
        }
    }

    /// The same header, completing suspended operation `id`.
    pub fn completa(mut self, id: Option<u64>) -> Self {
        self.id_operazione_sospesa = id;
        self
    }
}

impl Registry {
    /// A refusal with its coded outcomes and a fresh support reference.
    pub(crate) fn rifiuto(&self, anomalie: Vec<Anomalia>) -> ServiceError {
        ServiceError::Rifiutata {
            anomalie,
            riferimento: self.riferimento(None),
        }
    }

    /// Runs one operation through the pipeline. `decide` gets the environment's store,
    /// the municipality and the allocated operation id and returns the plan or the
    /// blocking outcomes.
    pub async fn esegui_operazione<F, Fut>(
        &self,
        ctx: &CallerContext,
        testata: Testata<'_>,
        decide: F,
    ) -> Result<RispostaOperazione, ServiceError>
    where
        F: FnOnce(Arc<dyn Store>, CodiceIstatComune, IdOperazioneAnpr) -> Fut,
        Fut: Future<Output = Result<Piano, Vec<Anomalia>>>,
    {
        self.autorizza(ctx, testata.permesso, testata.codice)
            .await?;
        let codice: CodiceServizio = testata
            .codice
            .parse()
            .map_err(|e| self.rifiuto(vec![Anomalia::from_invalid("codiceServizio", &e)]))?;
        let comune = ctx.comune.clone().ok_or_else(|| {
            self.rifiuto(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Comune mittente non indicato",
            )
            .campo("codMittente")
            .atteso("il codice ISTAT del comune che esegue l'operazione")])
        })?;
        let id_comune = testata
            .id_operazione_comune
            .map(|s| {
                s.parse::<IdOperazioneComune>().map_err(|e| {
                    self.rifiuto(vec![Anomalia::from_invalid("idOperazioneComune", &e)])
                })
            })
            .transpose()?;
        let store = self.store(ctx.ambiente)?;
        if let Some(id) = id_comune {
            if let Some(previous) = store
                .operation_by_comune_id(&comune, id)
                .await
                .map_err(|e| self.interno(e))?
            {
                // The stored operation may be another request's, committed but not yet
                // on disk (a retry racing its original): answer only once it is durable.
                store
                    .conferma_durevole()
                    .await
                    .map_err(|e| self.interno(e))?;
                return self.replay(previous, &codice);
            }
        }
        let op_id = IdOperazioneAnpr::new(
            store
                .next_id(Sequence::Operazione)
                .await
                .map_err(|e| self.interno(e))?,
        )
        .map_err(|e| self.interno(e))?;
        let now = self.clock().now();
        let mut outcome = decide(store.clone(), comune.clone(), op_id).await;
        if let Some(dati) = testata.richiesta.get("datiDelProcedimento") {
            outcome = match outcome {
                Ok(mut piano) => self
                    .nel_procedimento(&**store, &comune, dati, op_id, &codice, &mut piano)
                    .await
                    .map(|()| piano),
                Err(a) => Err(a),
            };
        }
        if let Ok(piano) = &outcome {
            let sospesa = testata.id_operazione_sospesa;
            if let Some(a) = self
                .controlla_sospese(ctx, &**store, &comune, &codice, sospesa, &piano.soggetti)
                .await?
            {
                outcome = Err(vec![a]);
            }
        }
        let (stato, piano, anomalie) = match outcome {
            Ok(piano) => {
                let warnings = piano.avvertimenti.clone();
                (StatoOperazione::Eseguita, piano, warnings)
            }
            Err(anomalie) => (StatoOperazione::Rifiutata, Piano::default(), anomalie),
        };
        let eseguita = stato == StatoOperazione::Eseguita;
        let piano_annulla = piano.annulla;
        let riferimento = self.riferimento(Some(op_id));
        let mut documento = json!({
            "idOperazioneANPR": op_id.to_string(),
            "codiceServizio": codice.as_str(),
            "esito": if eseguita { "OK" } else { "KO" },
            "ambiente": ctx.ambiente,
            "dataOraRegistrazione": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "soggetti": piano.soggetti.iter().map(|s| json!({"idANPR": s.to_string()})).collect::<Vec<_>>(),
            "famiglie": piano.famiglie.iter().map(|f| json!({"idANPR": f.to_string()})).collect::<Vec<_>>(),
            "anomalie": anomalie,
        });
        if let Some(id) = id_comune {
            documento["idOperazioneComune"] = json!(id.to_string());
        }
        if let Some(d) = piano.decorrenza {
            documento["decorrenza"] = json!(d);
        }
        if !piano.procedimenti.is_empty() {
            documento["procedimenti"] = piano
                .procedimenti
                .iter()
                .map(|p| json!({"numeroPraticaAnpr": p.to_string()}))
                .collect();
        }
        if !eseguita {
            documento["riferimento"] = json!(riferimento);
        }
        let documento = documento.to_string();
        let esito = if eseguita {
            "ok".to_owned()
        } else {
            format!(
                "rifiutata: {}",
                anomalie.first().map_or("", |a| a.codice.as_str())
            )
        };
        let mut audit = self.voce_audit(ctx, TipoEvento::Operazione, codice.as_str(), None, esito);
        audit.id_operazione_anpr = Some(op_id.get());
        audit.oggetto = piano
            .soggetti
            .first()
            .map(|s| format!("soggetto:{s}"))
            .or_else(|| {
                piano
                    .procedimenti
                    .first()
                    .map(|p| format!("procedimento:{p}"))
            });
        let op = NewOperation {
            id: op_id,
            codice_servizio: codice.clone(),
            comune: Some(comune),
            id_operazione_comune: id_comune,
            utente: ctx.utente.clone(),
            postazione: ctx.postazione.clone(),
            canale: ctx.canale.as_str().to_owned(),
            decorrenza: piano.decorrenza.unwrap_or_else(|| self.clock().today()),
            registrata_il: now,
            stato,
            richiesta: testata.richiesta.to_string(),
            risposta: documento.clone(),
            writes: piano.writes,
            indexes: piano.indexes,
            outbox: piano.outbox,
            completa_sospesa: testata.id_operazione_sospesa.filter(|_| eseguita),
            audit,
        };
        let annulla = if eseguita { piano_annulla } else { None };
        let result = match annulla {
            Some(target) => store.annul(target, op).await,
            None => store.apply(op).await,
        };
        match result {
            Ok(_) => Ok(RispostaOperazione { id_operazione_anpr: op_id, eseguita, replay: false, documento }),
            Err(StoreError::DuplicateIdOperazioneComune { existing, .. }) => {
                // A concurrent request with the same id won the race: answer as a replay.
                let previous = store.operation(existing).await.map_err(|e| self.interno(e))?.ok_or_else(|| self.interno("operation vanished"))?;
                self.replay(previous, &codice)
            }
            Err(StoreError::IdOperazioneComuneNotIncreasing { id, last }) => Err(self.rifiuto(vec![Anomalia::errore(
                CODICE_ID_NON_CRESCENTE,
                "idOperazioneComune non successivo all'ultimo utilizzato dal comune",
            )
            .campo("idOperazioneComune")
            .valore(id.to_string())
            .atteso(format!("un numero maggiore di {last}"))])),
            Err(StoreError::DecorrenzaBeforeCurrent { section, decorrenza, current_from, .. }) => Err(self.rifiuto(vec![Anomalia::errore(
                CODICE_DECORRENZA_ANTERIORE,
                format!("Data di decorrenza anteriore all'ultima variazione dei dati ({section})"),
            )
            .campo("dataDecorrenza")
            .valore(decorrenza.to_string())
            .atteso(format!("una data non anteriore al {current_from}"))])),
            Err(StoreError::NotNewest { op, entity, newer }) => Err(self.rifiuto(vec![Anomalia::errore(
                CODICE_NON_ULTIMA,
                format!("L'operazione {op} non e' l'ultima sulla scheda ({entity}): annullare prima l'operazione {newer}"),
            )
            .campo("idOperazioneANPR")
            .valore(op.to_string())
            .atteso(format!("l'operazione piu' recente, {newer}"))])),
            Err(StoreError::SospesaNotFound(id)) => Err(self.rifiuto(vec![crate::sospese::sospesa_inesistente(id)])),
            Err(StoreError::OperationNotInForce(op)) => Err(self.rifiuto(vec![Anomalia::errore(
                CODICE_NON_IN_VIGORE,
                format!("L'operazione {op} e' gia' annullata o non e' stata eseguita"),
            )
            .campo("idOperazioneANPR")
            .valore(op.to_string())])),
            Err(e) => Err(self.interno(e)),
        }
    }

    /// Links the operation to the proceeding named by `datiDelProcedimento` (SPEC
    /// M-2.6): one more write in the plan, so the link exists exactly when the
    /// operation does.
    async fn nel_procedimento(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        dati: &serde_json::Value,
        op_id: IdOperazioneAnpr,
        codice: &CodiceServizio,
        piano: &mut Piano,
    ) -> Result<(), Vec<Anomalia>> {
        let dati: crate::procedimenti::DatiDelProcedimento = serde_json::from_value(dati.clone())
            .map_err(|e| {
            vec![Anomalia::errore(
                CODICE_VALORE_NON_VALIDO,
                "Dati del procedimento non conformi",
            )
            .campo("datiDelProcedimento")
            .valore(e.to_string())
            .atteso("numeroPraticaAnpr e/o numeroPraticaComune, dataDefinizionePratica")]
        })?;
        if piano.annulla.is_some() {
            return Err(vec![Anomalia::errore(
                CODICE_VALORE_NON_VALIDO,
                "Un annullamento non si collega a un procedimento: l'annullamento dell'operazione ne rimuove il collegamento",
            )
            .campo("datiDelProcedimento")]);
        }
        let data = piano.decorrenza.unwrap_or_else(|| self.clock().today());
        let (id, write) = self
            .collega_al_procedimento(store, comune, &dati, op_id, codice, data)
            .await?;
        piano.writes.push(write);
        if !piano.procedimenti.contains(&id) {
            piano.procedimenti.push(id);
        }
        Ok(())
    }

    fn replay(
        &self,
        previous: anpr_store::StoredOperation,
        codice: &CodiceServizio,
    ) -> Result<RispostaOperazione, ServiceError> {
        if &previous.codice_servizio != codice {
            return Err(self.rifiuto(vec![Anomalia::errore(
                "EN079",
                "id operazione comune gia' presente per un servizio diverso",
            )
            .campo("idOperazioneComune")
            .valore(
                previous
                    .id_operazione_comune
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
            )
            .atteso(format!(
                "un id non ancora usato (usato per il servizio {})",
                previous.codice_servizio
            ))]));
        }
        Ok(RispostaOperazione {
            id_operazione_anpr: previous.id,
            eseguita: previous.stato != StatoOperazione::Rifiutata,
            replay: true,
            documento: previous.risposta,
        })
    }
}
