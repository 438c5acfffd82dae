//! Suspended operations (*operazioni sospese*, SPEC M-2.5).
//!
//! Registrations (1001, 1002, A001, A002) and "change all data" (5008) can be saved
//! part-way, with what the operator has confirmed so far, and later resumed, completed
//! or deleted. Rules:
//!
//! - A suspended operation belongs to the operator who saved it. Only that operator may
//!   see, resume, update or delete it; a super-user (`SUPER_UTENTE`) sees and may act on
//!   every suspended operation of the municipality. Other municipalities' ones do not
//!   exist for the caller.
//! - The saved request must be a JSON object of at most [`MAX_RICHIESTA_SOSPESA`] bytes.
//! - While it exists, it blocks conflicting operations of its municipality: any
//!   operation on the same subject, and registrations of the same codice fiscale
//!   ([`CODICE_SOSPESA_IN_CONFLITTO`]). The operation that completes it names it
//!   (`idOperazioneSospesa`), is exempt from the block, and deletes it in its own
//!   transaction: if it was deleted or completed meanwhile, the operation fails with
//!   [`CODICE_SOSPESA_INESISTENTE`] and writes nothing.
//!
//! Saves and deletions are audited in the same transaction; lists and resumptions are
//! audited as reads (the saved request holds personal data). The audit log names
//! suspended operations by id only.

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{CallerContext, Profilo};
use anpr_domain::codice_fiscale::CodiceFiscaleSoggetto;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceIstatComune, IdAnprSoggetto};
use anpr_domain::operazione::CodiceServizio;
use anpr_domain::procedimento::nota_valida;
use anpr_store::{NuovaSospesa, OperazioneSospesa, QuerySospese, Store, StoreError, SubjectQuery};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::authz::Permesso;
use crate::{Registry, ServiceError};

/// ANPR code: a suspended operation blocks this one (same subject or codice fiscale):
/// "Operazione non effettuabile. Esiste un'operazione sospesa per il soggetto".
pub const CODICE_SOSPESA_IN_CONFLITTO: &str = "EN203";
/// Our code: the suspended operation belongs to another operator (and the caller is
/// not a super-user).
pub const CODICE_SOSPESA_ALTRUI: &str = "EV051";
/// Our code: the suspended operation to complete or update does not exist (any more).
pub const CODICE_SOSPESA_INESISTENTE: &str = "EV052";
/// Our code: the saved request is not a JSON object, is too large or holds NUL.
pub const CODICE_RICHIESTA_SOSPESA_NON_VALIDA: &str = "EV053";
/// Our code: the service cannot be suspended, or the suspended operation is of
/// another service than the one completing it.
pub const CODICE_SERVIZIO_NON_SOSPENDIBILE: &str = "EV054";
/// Our code: the subject named is not a subject of the municipality.
pub const CODICE_SOGGETTO_NON_DEL_COMUNE: &str = "EV055";

/// The services that can be suspended (seed 000: births and other registrations, also
/// AIRE, and "change all data").
pub const SERVIZI_SOSPENDIBILI: [&str; 5] = ["1001", "1002", "A001", "A002", "5008"];

/// Largest saved request, serialised (the HTTP edge accepts bodies up to 1 MiB).
pub const MAX_RICHIESTA_SOSPESA: usize = 256 * 1024;

/// Default and largest page of a listing.
pub const ELENCO_PREDEFINITO: u32 = 100;
pub const ELENCO_MASSIMO: u32 = 1000;

/// A save request: a new suspended operation, or (with `idOperazioneSospesa`) a new
/// content for an existing one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaSospesa {
    pub id_operazione_sospesa: Option<String>,
    pub codice_servizio: String,
    /// The subject concerned, when known (changes).
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<String>,
    /// The subject's codice fiscale, when known; by default `generalita.codiceFiscale` of
    /// the saved request.
    pub codice_fiscale: Option<String>,
    /// The partial request as the operator has confirmed it so far.
    pub richiesta: serde_json::Value,
    pub note: Option<String>,
}

/// Filter of a listing. Without super-user profile only the caller's own are listed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FiltroSospese {
    pub codice_servizio: Option<String>,
    /// Another operator's (super-user only).
    pub utente: Option<String>,
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<String>,
    pub codice_fiscale: Option<String>,
    /// At most this many (default [`ELENCO_PREDEFINITO`], at most [`ELENCO_MASSIMO`]).
    pub limite: Option<u32>,
}

/// A suspended operation as shown: everything but the saved request in listings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SospesaLetta {
    pub id_operazione_sospesa: String,
    pub codice_servizio: String,
    pub comune: String,
    pub utente: String,
    pub creata_il: DateTime<Utc>,
    pub aggiornata_il: DateTime<Utc>,
    #[serde(
        rename = "idSchedaSoggettoANPR",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_scheda_soggetto_anpr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codice_fiscale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub richiesta: Option<serde_json::Value>,
}

impl SospesaLetta {
    fn from_stored(s: OperazioneSospesa, con_richiesta: bool) -> Self {
        Self {
            id_operazione_sospesa: s.id.to_string(),
            codice_servizio: s.codice_servizio.to_string(),
            comune: s.comune.to_string(),
            utente: s.utente,
            creata_il: s.creata_il,
            aggiornata_il: s.aggiornata_il,
            id_scheda_soggetto_anpr: s.soggetto.map(|id| id.to_string()),
            codice_fiscale: s.codice_fiscale,
            note: s.note,
            richiesta: con_richiesta.then_some(s.richiesta),
        }
    }
}

/// The refusal for a suspended operation that does not exist (any more).
pub(crate) fn sospesa_inesistente(id: u64) -> Anomalia {
    Anomalia::errore(
        CODICE_SOSPESA_INESISTENTE,
        format!("Operazione sospesa {id} inesistente o gia' completata o eliminata"),
    )
    .campo("idOperazioneSospesa")
    .valore(id.to_string())
    .atteso("un'operazione sospesa esistente del comune")
}

fn non_valida(campo: &str, testo: &str, valore: String, atteso: &str) -> Anomalia {
    Anomalia::errore(CODICE_RICHIESTA_SOSPESA_NON_VALIDA, testo)
        .campo(campo)
        .valore(valore)
        .atteso(atteso)
}

/// True when any string or key of `v` holds a NUL character, which the stores' text
/// types cannot keep.
fn contiene_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(contiene_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contiene_nul(v)),
        _ => false,
    }
}

/// Checks the saved request: an object, bounded, storable.
fn valida_richiesta(v: &serde_json::Value) -> Result<(), Anomalia> {
    let atteso = "un oggetto JSON di al massimo 256 KiB, senza caratteri NUL";
    if !v.is_object() {
        let tipo = match v {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "booleano",
            serde_json::Value::Number(_) => "numero",
            serde_json::Value::String(_) => "stringa",
            serde_json::Value::Array(_) => "array",
            serde_json::Value::Object(_) => "oggetto",
        };
        return Err(non_valida(
            "richiesta",
            "La richiesta sospesa deve essere un oggetto JSON",
            tipo.into(),
            atteso,
        ));
    }
    let size = serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    if size > MAX_RICHIESTA_SOSPESA {
        return Err(non_valida(
            "richiesta",
            "Richiesta sospesa troppo grande",
            format!("{size} byte"),
            atteso,
        ));
    }
    if contiene_nul(v) {
        return Err(non_valida(
            "richiesta",
            "La richiesta sospesa contiene caratteri NUL",
            "\\u0000".into(),
            atteso,
        ));
    }
    Ok(())
}

fn codice_sospendibile(raw: &str) -> Result<CodiceServizio, Anomalia> {
    let refuse = || {
        Anomalia::errore(
            CODICE_SERVIZIO_NON_SOSPENDIBILE,
            "Il servizio indicato non prevede la sospensione",
        )
        .campo("codiceServizio")
        .valore(raw)
        .atteso(SERVIZI_SOSPENDIBILI.join(", "))
    };
    if !SERVIZI_SOSPENDIBILI.contains(&raw) {
        return Err(refuse());
    }
    raw.parse().map_err(|_| refuse())
}

fn codice_fiscale(campo: &str, raw: &str) -> Result<String, Anomalia> {
    let upper = raw.trim().to_ascii_uppercase();
    upper
        .parse::<CodiceFiscaleSoggetto>()
        .map(|c| c.as_str().to_owned())
        .map_err(|x| {
            Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                .campo(campo)
                .valore(upper.clone())
        })
}

impl Registry {
    fn rifiuto_sospese(&self, anomalie: Vec<Anomalia>) -> ServiceError {
        ServiceError::Rifiutata {
            anomalie,
            riferimento: self.riferimento(None),
        }
    }

    fn non_trovata(&self, id: u64) -> ServiceError {
        ServiceError::NonTrovato {
            cosa: format!("operazione sospesa {id}"),
            riferimento: self.riferimento(None),
        }
    }

    fn comune_chiamante(&self, ctx: &CallerContext) -> Result<CodiceIstatComune, ServiceError> {
        ctx.comune.clone().ok_or_else(|| {
            self.rifiuto_sospese(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Comune dell'operatore non indicato",
            )
            .campo("codMittente")
            .atteso("il codice ISTAT del comune dell'operatore")])
        })
    }

    /// Parses the `idOperazioneSospesa` of a request (a positive number as a string).
    pub fn id_sospesa(&self, raw: Option<&str>) -> Result<Option<u64>, ServiceError> {
        raw.map(|s| {
            s.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                self.rifiuto_sospese(vec![Anomalia::errore(
                    CODICE_VALORE_NON_VALIDO,
                    "Valore non valido per idOperazioneSospesa",
                )
                .campo("idOperazioneSospesa")
                .valore(s)
                .atteso("un numero positivo")])
            })
        })
        .transpose()
    }

    /// The owner rule: the operator who saved it, or a super-user of the same
    /// municipality. Another municipality's suspended operation does not exist for the
    /// caller.
    fn verifica_titolare(
        &self,
        ctx: &CallerContext,
        comune: &CodiceIstatComune,
        s: &OperazioneSospesa,
    ) -> Result<(), ServiceError> {
        if &s.comune != comune {
            return Err(self.non_trovata(s.id));
        }
        if s.utente != ctx.utente && !ctx.has(Profilo::SuperUtente) {
            return Err(self.rifiuto_sospese(vec![Anomalia::errore(
                CODICE_SOSPESA_ALTRUI,
                format!(
                    "L'operazione sospesa {} e' di un altro operatore: solo il titolare o un superutente possono operarvi",
                    s.id
                ),
            )
            .campo("idOperazioneSospesa")
            .valore(s.id.to_string())
            .atteso("un'operazione sospesa salvata dall'operatore in sessione")]));
        }
        Ok(())
    }

    /// Saves a suspended operation (new, or a new content for an existing one).
    pub async fn salva_sospesa(
        &self,
        ctx: &CallerContext,
        req: &RichiestaSospesa,
    ) -> Result<SospesaLetta, ServiceError> {
        self.autorizza(ctx, Permesso::OperazioniSospese, "salvaSospesa")
            .await?;
        let codice =
            codice_sospendibile(&req.codice_servizio).map_err(|a| self.rifiuto_sospese(vec![a]))?;
        let permesso = if codice.as_str() == "5008" {
            Permesso::Mutazione
        } else {
            Permesso::Iscrizione
        };
        self.autorizza(ctx, permesso, "salvaSospesa").await?;
        let comune = self.comune_chiamante(ctx)?;
        let id = self.id_sospesa(req.id_operazione_sospesa.as_deref())?;
        let store = self.store(ctx.ambiente)?;

        let mut anomalie = Vec::new();
        if let Err(a) = valida_richiesta(&req.richiesta) {
            anomalie.push(a);
        }
        if let Some(note) = &req.note {
            if !nota_valida(note) {
                anomalie.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Note non valide")
                        .campo("note")
                        .valore(note.chars().take(64).collect::<String>())
                        .atteso("da 1 a 240 caratteri stampabili"),
                );
            }
        }
        let dal_contenuto = req
            .richiesta
            .pointer("/generalita/codiceFiscale")
            .and_then(serde_json::Value::as_str);
        let cf = match (&req.codice_fiscale, dal_contenuto) {
            (Some(raw), _) => codice_fiscale("codiceFiscale", raw)
                .map_err(|a| anomalie.push(a))
                .ok(),
            (None, Some(raw)) => codice_fiscale("richiesta.generalita.codiceFiscale", raw)
                .map_err(|a| anomalie.push(a))
                .ok(),
            (None, None) => None,
        };
        let soggetto = match &req.id_scheda_soggetto_anpr {
            None => None,
            Some(raw) => match raw.parse::<IdAnprSoggetto>() {
                Err(e) => {
                    anomalie.push(Anomalia::from_invalid("idSchedaSoggettoANPR", &e));
                    None
                }
                Ok(id) => {
                    let found = store
                        .find_subjects(&SubjectQuery {
                            id: Some(id),
                            limit: 1,
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| self.interno(e))?;
                    if !found.iter().any(|s| s.comune == comune) {
                        anomalie.push(
                            Anomalia::errore(
                                CODICE_SOGGETTO_NON_DEL_COMUNE,
                                "Soggetto inesistente o non appartenente al comune",
                            )
                            .campo("idSchedaSoggettoANPR")
                            .valore(raw)
                            .atteso(format!("un soggetto del comune {comune}")),
                        );
                    }
                    Some(id)
                }
            },
        };
        if !anomalie.is_empty() {
            return Err(self.rifiuto_sospese(anomalie));
        }
        if let Some(id) = id {
            let existing = store
                .sospesa(id)
                .await
                .map_err(|e| self.interno(e))?
                .ok_or_else(|| self.rifiuto_sospese(vec![sospesa_inesistente(id)]))?;
            self.verifica_titolare(ctx, &comune, &existing)?;
            if existing.codice_servizio != codice {
                return Err(self.rifiuto_sospese(vec![Anomalia::errore(
                    CODICE_SERVIZIO_NON_SOSPENDIBILE,
                    format!(
                        "L'operazione sospesa {id} e' del servizio {}",
                        existing.codice_servizio
                    ),
                )
                .campo("codiceServizio")
                .valore(codice.as_str())
                .atteso(existing.codice_servizio.to_string())]));
            }
        }
        let oggetto = id.map(|id| format!("sospesa:{id}"));
        let azione = format!("salvaSospesa {codice}");
        let audit = self.voce_audit(
            ctx,
            TipoEvento::Amministrazione,
            &azione,
            oggetto,
            "ok".into(),
        );
        let nuova = NuovaSospesa {
            id,
            comune,
            codice_servizio: codice,
            utente: ctx.utente.clone(),
            istante: self.clock().now(),
            soggetto,
            codice_fiscale: cf,
            richiesta: req.richiesta.clone(),
            note: req.note.clone(),
            audit,
        };
        match store.salva_sospesa(nuova).await {
            Ok(saved) => Ok(SospesaLetta::from_stored(saved, true)),
            Err(StoreError::SospesaNotFound(id)) => {
                Err(self.rifiuto_sospese(vec![sospesa_inesistente(id)]))
            }
            Err(e) => Err(self.interno(e)),
        }
    }

    /// Lists the municipality's suspended operations the caller may see, without their
    /// saved requests.
    pub async fn elenco_sospese(
        &self,
        ctx: &CallerContext,
        filtro: &FiltroSospese,
    ) -> Result<Vec<SospesaLetta>, ServiceError> {
        self.autorizza(ctx, Permesso::OperazioniSospese, "elencoSospese")
            .await?;
        let comune = self.comune_chiamante(ctx)?;
        let mut anomalie = Vec::new();
        let utente = match &filtro.utente {
            Some(u) if u != &ctx.utente && !ctx.has(Profilo::SuperUtente) => {
                anomalie.push(
                    Anomalia::errore(
                        CODICE_SOSPESA_ALTRUI,
                        "Solo un superutente vede le operazioni sospese degli altri operatori",
                    )
                    .campo("utente")
                    .valore(u)
                    .atteso(ctx.utente.clone()),
                );
                None
            }
            Some(u) => Some(u.clone()),
            None if ctx.has(Profilo::SuperUtente) => None,
            None => Some(ctx.utente.clone()),
        };
        let codice = filtro
            .codice_servizio
            .as_deref()
            .map(|c| codice_sospendibile(c).map_err(|a| anomalie.push(a)).ok())
            .unwrap_or(None);
        let soggetto = filtro
            .id_scheda_soggetto_anpr
            .as_deref()
            .map(|s| {
                s.parse::<IdAnprSoggetto>()
                    .map_err(|e| anomalie.push(Anomalia::from_invalid("idSchedaSoggettoANPR", &e)))
                    .ok()
            })
            .unwrap_or(None);
        let cf = filtro
            .codice_fiscale
            .as_deref()
            .map(|c| {
                codice_fiscale("codiceFiscale", c)
                    .map_err(|a| anomalie.push(a))
                    .ok()
            })
            .unwrap_or(None);
        let limite = filtro.limite.unwrap_or(ELENCO_PREDEFINITO);
        if limite == 0 || limite > ELENCO_MASSIMO {
            anomalie.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Limite non valido")
                    .campo("limite")
                    .valore(limite.to_string())
                    .atteso(format!("da 1 a {ELENCO_MASSIMO}")),
            );
        }
        if !anomalie.is_empty() {
            return Err(self.rifiuto_sospese(anomalie));
        }
        let store = self.store(ctx.ambiente)?;
        let found = store
            .sospese(&QuerySospese {
                comune: Some(comune),
                utente,
                soggetto,
                codice_fiscale: cf,
                codice_servizio: codice,
                limit: limite,
            })
            .await
            .map_err(|e| self.interno(e))?;
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            "elencoSospese",
            None,
            format!("ok: {}", found.len()),
        );
        store
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        Ok(found
            .into_iter()
            .map(|s| SospesaLetta::from_stored(s, false))
            .collect())
    }

    /// Reads one suspended operation with its saved request, to resume it.
    pub async fn riprendi_sospesa(
        &self,
        ctx: &CallerContext,
        id: u64,
    ) -> Result<SospesaLetta, ServiceError> {
        self.autorizza(ctx, Permesso::OperazioniSospese, "riprendiSospesa")
            .await?;
        let comune = self.comune_chiamante(ctx)?;
        let store = self.store(ctx.ambiente)?;
        let found = store.sospesa(id).await.map_err(|e| self.interno(e))?;
        let outcome = match &found {
            None => Err(self.non_trovata(id)),
            Some(s) => self.verifica_titolare(ctx, &comune, s),
        };
        // Probing for other operators' ids is itself worth a trace.
        let esito = match &outcome {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!(
                "rifiutata: {}",
                e.anomalie().first().map_or("", |a| a.codice.as_str())
            ),
        };
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            "riprendiSospesa",
            Some(format!("sospesa:{id}")),
            esito,
        );
        store
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        outcome?;
        let s = found.ok_or_else(|| self.non_trovata(id))?;
        Ok(SospesaLetta::from_stored(s, true))
    }

    /// Deletes (abandons) a suspended operation.
    pub async fn elimina_sospesa(&self, ctx: &CallerContext, id: u64) -> Result<(), ServiceError> {
        self.autorizza(ctx, Permesso::OperazioniSospese, "eliminaSospesa")
            .await?;
        let comune = self.comune_chiamante(ctx)?;
        let store = self.store(ctx.ambiente)?;
        let found = store
            .sospesa(id)
            .await
            .map_err(|e| self.interno(e))?
            .ok_or_else(|| self.non_trovata(id))?;
        self.verifica_titolare(ctx, &comune, &found)?;
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Amministrazione,
            &format!("eliminaSospesa {}", found.codice_servizio),
            Some(format!("sospesa:{id}")),
            "ok".into(),
        );
        if store
            .elimina_sospesa(id, voce)
            .await
            .map_err(|e| self.interno(e))?
        {
            Ok(())
        } else {
            // Completed or deleted between the read and the delete.
            Err(self.non_trovata(id))
        }
    }

    /// The blocking outcome when a suspended operation of `comune` concerns one of
    /// `soggetti` or the codice fiscale `codice_fiscale`, other than `esclusa` (the one
    /// being completed); `None` when there is none.
    pub(crate) async fn sospesa_in_conflitto(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        soggetti: &[IdAnprSoggetto],
        codice_fiscale: Option<&str>,
        esclusa: Option<u64>,
    ) -> Result<Option<Anomalia>, StoreError> {
        let base = QuerySospese {
            comune: Some(comune.clone()),
            limit: 2,
            ..Default::default()
        };
        let mut queries: Vec<(QuerySospese, &str, String)> = soggetti
            .iter()
            .map(|s| {
                (
                    QuerySospese {
                        soggetto: Some(*s),
                        ..base.clone()
                    },
                    "idSchedaSoggettoANPR",
                    s.to_string(),
                )
            })
            .collect();
        if let Some(cf) = codice_fiscale {
            queries.push((
                QuerySospese {
                    codice_fiscale: Some(cf.to_owned()),
                    ..base.clone()
                },
                "codiceFiscale",
                cf.to_owned(),
            ));
        }
        for (query, campo, valore) in queries {
            let found = store.sospese(&query).await?;
            if let Some(s) = found.into_iter().find(|s| Some(s.id) != esclusa) {
                return Ok(Some(
                    Anomalia::errore(
                        CODICE_SOSPESA_IN_CONFLITTO,
                        format!(
                            "Esiste l'operazione sospesa {} (servizio {}) dell'operatore {} del {}: completarla o eliminarla prima di procedere",
                            s.id,
                            s.codice_servizio,
                            s.utente,
                            s.aggiornata_il.format("%Y-%m-%d")
                        ),
                    )
                    .campo(campo)
                    .valore(valore)
                    .atteso("nessuna operazione sospesa sul soggetto"),
                ));
            }
        }
        Ok(None)
    }

    /// The pipeline's check (see `operazioni`): the suspended operation an operation
    /// completes must exist in the municipality, be of the same service and be the
    /// caller's (or the caller a super-user); and no other suspended operation may
    /// concern the operation's subjects.
    pub(crate) async fn controlla_sospese(
        &self,
        ctx: &CallerContext,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        codice: &CodiceServizio,
        da_completare: Option<u64>,
        soggetti: &[IdAnprSoggetto],
    ) -> Result<Option<Anomalia>, ServiceError> {
        if let Some(id) = da_completare {
            let found = store.sospesa(id).await.map_err(|e| self.interno(e))?;
            let Some(s) = found.filter(|s| &s.comune == comune) else {
                return Ok(Some(sospesa_inesistente(id)));
            };
            if &s.codice_servizio != codice {
                return Ok(Some(
                    Anomalia::errore(
                        CODICE_SERVIZIO_NON_SOSPENDIBILE,
                        format!(
                            "L'operazione sospesa {id} e' del servizio {}, non {codice}",
                            s.codice_servizio
                        ),
                    )
                    .campo("idOperazioneSospesa")
                    .valore(id.to_string())
                    .atteso(format!("un'operazione sospesa del servizio {codice}")),
                ));
            }
            if let Err(e) = self.verifica_titolare(ctx, comune, &s) {
                return Ok(e.anomalie().into_iter().next());
            }
        }
        self.sospesa_in_conflitto(store, comune, soggetti, None, da_completare)
            .await
            .map_err(|e| self.interno(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn saved_requests_are_objects_bounded_and_storable() {
        assert!(valida_richiesta(&json!({"generalita": {"cognome": "Rossi"}})).is_ok());
        for bad in [json!([1, 2]), json!("x"), json!(null), json!(3)] {
            let a = valida_richiesta(&bad).unwrap_err();
            assert_eq!(a.codice, CODICE_RICHIESTA_SOSPESA_NON_VALIDA, "{bad}");
        }
        let big = json!({"x": "a".repeat(MAX_RICHIESTA_SOSPESA)});
        assert_eq!(
            valida_richiesta(&big).unwrap_err().codice,
            CODICE_RICHIESTA_SOSPESA_NON_VALIDA
        );
        assert!(valida_richiesta(&json!({"a": ["ok", {"b": "x\u{0}y"}]})).is_err());
        assert!(valida_richiesta(&json!({"a\u{0}": 1})).is_err());
    }

    #[test]
    fn only_the_five_services_can_be_suspended() {
        for ok in SERVIZI_SOSPENDIBILI {
            assert!(codice_sospendibile(ok).is_ok(), "{ok}");
        }
        for bad in ["1013", "5005", "2001", "xx", ""] {
            assert_eq!(
                codice_sospendibile(bad).unwrap_err().codice,
                CODICE_SERVIZIO_NON_SOSPENDIBILE,
                "{bad}"
            );
        }
    }
}
