//! Operations monitoring (SPEC M-5.5; the web application's "Utilità - Monitoraggio
//! operazioni"): the operations of the caller's municipality by service code, state,
//! registration period and record, in ascending id order with keyset pagination.
//!
//! **Scope.** Municipal profiles see only the operations of the municipality they act
//! for; asking for another one is a denied access (audited). National profiles
//! ([`crate::authz::ambito_nazionale`]) see every municipality's, optionally filtered by
//! one.
//!
//! **Summaries, documents on request.** The list gives each operation's header (ids,
//! service, state, dates, user, annulment links, records touched). The stored request
//! and response documents carry personal data: they are returned only when asked for,
//! and only to callers who may also read records ([`Permesso::ConsultaScheda`]); each
//! operation whose documents are returned gets its own audit entry. The listing itself
//! is audited too (it names the operators who worked).
//!
//! **Period.** `dal` and `al` are Italian civil dates, both included: an operation
//! registered at 00:30 in Rome on 1 March (23:30 UTC the day before) belongs to 1 March.

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune,
};
use anpr_domain::operazione::{CodiceServizio, StatoOperazione};
use anpr_store::{EntityRef, OperationQuery, StoredOperation};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permesso};
use crate::clock::inizio_giorno_italiano;
use crate::ricerca::{data, parsed, CODICE_CRITERI_INCOMPATIBILI};
use crate::{Registry, ServiceError};

/// Operations per page when the request does not say.
pub const LIMITE_PREDEFINITO: u32 = 100;
/// Most operations per page.
pub const LIMITE_MASSIMO: u32 = 500;

/// Audit action of the listing.
const AZIONE: &str = "monitoraggioOperazioni";

/// Filters as received (query parameters: every value a string, so each malformed one
/// gets its own coded outcome naming the parameter).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParametriMonitoraggio {
    /// ISTAT code; national profiles only (others may name only their own).
    pub comune: Option<String>,
    pub codice_servizio: Option<String>,
    /// `eseguita`, `rifiutata` or `annullata`.
    pub stato: Option<String>,
    /// First and last day of registration (Italian civil dates, both included).
    pub dal: Option<String>,
    pub al: Option<String>,
    /// Only operations that touched this subject.
    #[serde(rename = "idANPR")]
    pub id_anpr: Option<String>,
    /// Only operations that touched this family or cohabitation.
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: Option<String>,
    /// Keyset pagination: operations with an id greater than this.
    pub dopo: Option<String>,
    /// Page size, 1 to [`LIMITE_MASSIMO`].
    pub limit: Option<String>,
    /// `true` to include the stored request and response documents.
    pub documenti: Option<String>,
}

/// Filters, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiltroOperazioni {
    pub comune: Option<CodiceIstatComune>,
    pub codice_servizio: Option<CodiceServizio>,
    pub stato: Option<StatoOperazione>,
    pub dal: Option<NaiveDate>,
    pub al: Option<NaiveDate>,
    /// The record the operations touched.
    pub entita: Option<EntityRef>,
    pub dopo: Option<IdOperazioneAnpr>,
    pub limit: u32,
    pub documenti: bool,
}

impl Default for FiltroOperazioni {
    fn default() -> Self {
        Self {
            comune: None,
            codice_servizio: None,
            stato: None,
            dal: None,
            al: None,
            entita: None,
            dopo: None,
            limit: LIMITE_PREDEFINITO,
            documenti: false,
        }
    }
}

impl FiltroOperazioni {
    /// Validates the filters as received, reporting every malformed one: unknown state
    /// or service code, malformed date or id (EV001), `dal` after `al` (EN478), page
    /// size out of range (EV001), both a subject and a family (EV050).
    pub fn da_parametri(p: &ParametriMonitoraggio) -> Result<Self, Vec<Anomalia>> {
        let mut e = Vec::new();
        let comune = p
            .comune
            .as_deref()
            .and_then(|s| parsed("comune", s, &mut e));
        let codice_servizio = p
            .codice_servizio
            .as_deref()
            .and_then(|s| parsed("codiceServizio", s, &mut e));
        let stato = p.stato.as_deref().and_then(|s| {
            let found = StatoOperazione::parse(s.trim());
            if found.is_none() {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Stato dell'operazione non valido")
                        .campo("stato")
                        .valore(s)
                        .atteso("eseguita, rifiutata o annullata"),
                );
            }
            found
        });
        let dal = p.dal.as_deref().and_then(|s| data("dal", s, &mut e));
        let al = p.al.as_deref().and_then(|s| data("al", s, &mut e));
        let soggetto = p
            .id_anpr
            .as_deref()
            .and_then(|s| parsed::<IdAnprSoggetto>("idANPR", s, &mut e));
        let famiglia = p
            .id_famiglia_convivenza_anpr
            .as_deref()
            .and_then(|s| parsed::<IdAnprFamiglia>("idFamigliaConvivenzaANPR", s, &mut e));
        if p.id_anpr.is_some() && p.id_famiglia_convivenza_anpr.is_some() {
            e.push(
                Anomalia::errore(
                    CODICE_CRITERI_INCOMPATIBILI,
                    "Indicare un solo criterio di ricerca",
                )
                .campo("idANPR")
                .valore("idANPR, idFamigliaConvivenzaANPR")
                .atteso("uno solo tra idANPR e idFamigliaConvivenzaANPR"),
            );
        }
        let dopo = p.dopo.as_deref().and_then(|s| parsed("dopo", s, &mut e));
        let limit = match p.limit.as_deref() {
            None => LIMITE_PREDEFINITO,
            Some(s) => s.trim().parse::<u32>().unwrap_or(0),
        };
        let documenti = match p.documenti.as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Valore non valido per documenti")
                        .campo("documenti")
                        .valore(other)
                        .atteso("true o false"),
                );
                false
            }
        };
        let filtro = FiltroOperazioni {
            comune,
            codice_servizio,
            stato,
            dal,
            al,
            entita: soggetto
                .map(EntityRef::Soggetto)
                .or(famiglia.map(EntityRef::Famiglia)),
            dopo,
            limit,
            documenti,
        };
        e.extend(filtro.controlla_con(p.limit.as_deref()));
        if e.is_empty() {
            Ok(filtro)
        } else {
            Err(e)
        }
    }

    /// The rules typed filters can still break: page size in range, `dal` not after
    /// `al` (EN478). [`Registry::elenco_operazioni`] checks them again.
    pub fn controlla(&self) -> Vec<Anomalia> {
        self.controlla_con(None)
    }

    fn controlla_con(&self, limit_ricevuto: Option<&str>) -> Vec<Anomalia> {
        let mut e = Vec::new();
        if !(1..=LIMITE_MASSIMO).contains(&self.limit) {
            e.push(
                Anomalia::errore(
                    CODICE_VALORE_NON_VALIDO,
                    "Numero di operazioni per pagina non valido",
                )
                .campo("limit")
                .valore(limit_ricevuto.map_or_else(|| self.limit.to_string(), str::to_owned))
                .atteso(format!("un numero da 1 a {LIMITE_MASSIMO}")),
            );
        }
        if let (Some(dal), Some(al)) = (self.dal, self.al) {
            if dal > al {
                e.push(Anomalia::periodo_invertito("al", dal, al));
            }
        }
        e
    }
}

/// One operation as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SintesiOperazione {
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: IdOperazioneAnpr,
    pub codice_servizio: CodiceServizio,
    pub stato: StatoOperazione,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_operazione_comune: Option<IdOperazioneComune>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comune: Option<CodiceIstatComune>,
    pub decorrenza: NaiveDate,
    pub data_ora_registrazione: DateTime<Utc>,
    /// The operator (tax code or system principal).
    pub utente: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postazione: Option<String>,
    pub canale: String,
    /// The annulment that annulled this operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annullata_da: Option<IdOperazioneAnpr>,
    /// For annulments: the operation annulled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annulla: Option<IdOperazioneAnpr>,
    /// National ids of the subjects the operation touched.
    pub soggetti: Vec<IdAnprSoggetto>,
    /// National ids of the families and cohabitations it touched.
    pub famiglie: Vec<IdAnprFamiglia>,
    /// The stored request document (JSON), only when asked for and allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub richiesta: Option<serde_json::Value>,
    /// The stored response document, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risposta: Option<serde_json::Value>,
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElencoOperazioni {
    pub operazioni: Vec<SintesiOperazione>,
    /// The `dopo` value that gives the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prossima_pagina: Option<IdOperazioneAnpr>,
}

/// A stored document as JSON; one that is not JSON (older formats) is given as a string.
fn documento(raw: String) -> serde_json::Value {
    serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw))
}

fn sintesi(op: StoredOperation, documenti: bool) -> SintesiOperazione {
    let soggetti = op
        .entities
        .iter()
        .filter_map(|e| match e {
            EntityRef::Soggetto(s) => Some(*s),
            _ => None,
        })
        .collect();
    let famiglie = op
        .entities
        .iter()
        .filter_map(|e| match e {
            EntityRef::Famiglia(f) => Some(*f),
            _ => None,
        })
        .collect();
    let (richiesta, risposta) = if documenti {
        (Some(documento(op.richiesta)), Some(documento(op.risposta)))
    } else {
        (None, None)
    };
    SintesiOperazione {
        id_operazione_anpr: op.id,
        codice_servizio: op.codice_servizio,
        stato: op.stato,
        id_operazione_comune: op.id_operazione_comune,
        comune: op.comune,
        decorrenza: op.decorrenza,
        data_ora_registrazione: op.registrata_il,
        utente: op.utente,
        postazione: op.postazione,
        canale: op.canale,
        annullata_da: op.annullata_da,
        annulla: op.annulla,
        soggetti,
        famiglie,
        richiesta,
        risposta,
    }
}

impl Registry {
    /// Lists operations for monitoring (M-5.5); see the module documentation for scope,
    /// documents, period and audit.
    pub async fn elenco_operazioni(
        &self,
        ctx: &CallerContext,
        filtro: &FiltroOperazioni,
    ) -> Result<ElencoOperazioni, ServiceError> {
        self.autorizza(ctx, Permesso::Monitoraggio, AZIONE).await?;
        if filtro.documenti {
            self.autorizza(ctx, Permesso::ConsultaScheda, AZIONE)
                .await?;
        }
        let regole = filtro.controlla();
        if !regole.is_empty() {
            return Err(self.rifiuto(regole));
        }
        let comune = if authz::ambito_nazionale(ctx) {
            filtro.comune.clone()
        } else {
            let own = ctx.comune.clone().ok_or_else(|| {
                self.rifiuto(vec![Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    "Comune mittente non indicato",
                )
                .campo("codMittente")
                .atteso("il codice ISTAT del comune di cui consultare le operazioni")])
            })?;
            if filtro.comune.as_ref().is_some_and(|c| c != &own) {
                return Err(self.nega(ctx, Permesso::Monitoraggio, AZIONE).await);
            }
            Some(own)
        };
        let query = OperationQuery {
            comune: comune.clone(),
            codice_servizio: filtro.codice_servizio.clone(),
            stato: filtro.stato,
            entity: filtro.entita,
            dal: filtro.dal.map(inizio_giorno_italiano),
            // `al` is included: the store's bound is exclusive, so the next day's start.
            al: filtro
                .al
                .and_then(|d| d.succ_opt())
                .map(inizio_giorno_italiano),
            dopo: filtro.dopo,
            // One more than the page tells whether another page follows.
            limit: filtro.limit + 1,
        };
        let store = self.store(ctx.ambiente)?;
        let mut rows = store
            .operations(&query)
            .await
            .map_err(|e| self.interno(e))?;
        let altre = rows.len() > filtro.limit as usize;
        rows.truncate(filtro.limit as usize);
        let ambito = comune
            .as_ref()
            .map_or_else(|| "tutti".to_owned(), ToString::to_string);
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            AZIONE,
            Some(format!("comune:{ambito}")),
            format!("{} operazioni", rows.len()),
        );
        store
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        if filtro.documenti {
            for op in &rows {
                let voce = self.voce_audit(
                    ctx,
                    TipoEvento::Lettura,
                    AZIONE,
                    Some(format!("operazione:{}", op.id)),
                    "documenti".into(),
                );
                store
                    .append_audit(voce)
                    .await
                    .map_err(|e| self.interno(e))?;
            }
        }
        let prossima_pagina = if altre {
            rows.last().map(|op| op.id)
        } else {
            None
        };
        Ok(ElencoOperazioni {
            operazioni: rows
                .into_iter()
                .map(|op| sintesi(op, filtro.documenti))
                .collect(),
            prossima_pagina,
        })
    }
}
