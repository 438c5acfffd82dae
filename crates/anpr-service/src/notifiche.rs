//! The municipality's requests and the notifications addressed to it, read back
//! (SPEC M-5.5; services 3003, 3005 and 3007; the web application's "Utilità e
//! notifiche"). A gestionale that exposes no endpoint for ANPR's notifications keeps
//! its local database aligned by polling: 3007 lists the ids of its requests and of the
//! notifications prepared for it, 3003 returns them with ANPR's answers, 3005 one of
//! them by id.
//!
//! **What is listed** depends on the processing state asked for
//! (`tab_stati_di_lavorazione`):
//!
//! | code | state | what |
//! |---|---|---|
//! | 1 | in elaborazione | the municipality's asynchronous requests (4001-4004) a worker is running |
//! | 2 | completata con esito positivo | its registry operations applied without warnings (annulled ones are 4) |
//! | 3 | completata con esito negativo | its refused operations (stored for replay) |
//! | 4 | annullata | its operations annulled since |
//! | 5 | richieste di estrazione da elaborare | its asynchronous requests still queued |
//! | 6 | completata con esito positivo e warning | its operations applied with warnings |
//! | 7 | notifiche da prendere in carico | the notifications addressed to it not yet taken |
//! | 8 | notifiche fruite | the notifications it has taken |
//! | 9 | tutte le notifiche | both |
//!
//! Registry operations are synchronous, so none of them is ever "in elaborazione".
//!
//! **A notification** is identified, as in ANPR, by the `idOperazioneANPR` of the
//! operation that produced it (e.g. the 5005 of the destination municipality for
//! N010); one operation notifies a municipality at most once per kind. Returning its
//! content (3003, 3005) **takes** it (*presa in carico*): it moves from state 7 to 8.
//! Listing ids (3007) takes nothing.
//!
//! **Availability** (DPCM 194/2014, annex D, A.1): the outcome of a registration is
//! available for one year, the events notified for 180 days; older ones are not
//! returned, whatever period is asked for.
//!
//! **Scope and audit**: only the caller's own municipality ([`Permesso::Notifiche`]);
//! the listing is audited once, and each request or notification whose content is
//! returned gets its own entry (the contents carry personal data), in one durable write.

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceIstatComune, IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune};
use anpr_domain::operazione::{CodiceServizio, StatoOperazione};
use anpr_store::elaborazioni::{Elaborazione, QueryElaborazioni, StatoElaborazione};
use anpr_store::{
    EntityRef, OperationQuery, OutboxMessage, QueryNotifiche, Store, StoredOperation, SubjectQuery,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;

use crate::authz::Permesso;
use crate::clock::inizio_giorno_italiano;
use crate::{Registry, ServiceError};

/// Audit action of the reads.
const AZIONE: &str = "richiesteNotifiche";

/// Days the outcome of a municipality's request stays available.
pub const GIORNI_RICHIESTE: i64 = 365;
/// Days a notification stays available.
pub const GIORNI_NOTIFICHE: i64 = 180;

/// Rows read from the store per page while filtering in memory.
const PAGINA: u32 = 500;
/// Most store pages one selection scans (bounds the work of a broad request).
const MAX_PAGINE: usize = 20;

/// Processing state (`tab_stati_di_lavorazione`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatoLavorazione {
    InElaborazione,
    Positiva,
    Negativa,
    Annullata,
    DaElaborare,
    PositivaConAvvertimenti,
    NotificheDaPrendere,
    NotificheFruite,
    TutteLeNotifiche,
}

impl StatoLavorazione {
    pub const ALL: [StatoLavorazione; 9] = [
        StatoLavorazione::InElaborazione,
        StatoLavorazione::Positiva,
        StatoLavorazione::Negativa,
        StatoLavorazione::Annullata,
        StatoLavorazione::DaElaborare,
        StatoLavorazione::PositivaConAvvertimenti,
        StatoLavorazione::NotificheDaPrendere,
        StatoLavorazione::NotificheFruite,
        StatoLavorazione::TutteLeNotifiche,
    ];

    /// The table's code.
    pub fn codice(self) -> &'static str {
        match self {
            StatoLavorazione::InElaborazione => "1",
            StatoLavorazione::Positiva => "2",
            StatoLavorazione::Negativa => "3",
            StatoLavorazione::Annullata => "4",
            StatoLavorazione::DaElaborare => "5",
            StatoLavorazione::PositivaConAvvertimenti => "6",
            StatoLavorazione::NotificheDaPrendere => "7",
            StatoLavorazione::NotificheFruite => "8",
            StatoLavorazione::TutteLeNotifiche => "9",
        }
    }

    /// From the table's code (`"02"` and `"2"` alike).
    pub fn da_codice(s: &str) -> Option<Self> {
        let n = s.trim().trim_start_matches('0');
        Self::ALL.into_iter().find(|st| st.codice() == n)
    }

    /// True for the notification states (7, 8, 9).
    pub fn di_notifiche(self) -> bool {
        matches!(
            self,
            StatoLavorazione::NotificheDaPrendere
                | StatoLavorazione::NotificheFruite
                | StatoLavorazione::TutteLeNotifiche
        )
    }
}

/// What a single search looks for (`tipoOperazione3003`: 1 a request of the
/// municipality, 2 a notification addressed to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Genere {
    Richiesta,
    Notifica,
}

impl Genere {
    pub fn da_codice(s: &str) -> Option<Self> {
        match s.trim() {
            "1" => Some(Genere::Richiesta),
            "2" => Some(Genere::Notifica),
            _ => None,
        }
    }
}

/// The key of a single search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chiave {
    /// ANPR's id (of the request, or of the operation that produced the notification).
    Anpr(IdOperazioneAnpr),
    /// The municipality's own id of a request (`idOperazioneComune`).
    Comune(IdOperazioneComune),
}

/// The selection of a 3003/3007 request, validated by the edge. All given criteria
/// must match; results are in ascending id order, at most `limite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selezione {
    pub stato: StatoLavorazione,
    /// Service code of the requests, or kind of the notifications (`N010`).
    pub tipo: Option<String>,
    /// Registration (or queuing) period, both ends included.
    pub dal: Option<DateTime<Utc>>,
    pub al: Option<DateTime<Utc>>,
    /// ANPR id range, both ends included (for notifications: of the operation that
    /// produced them).
    pub id_da: Option<IdOperazioneAnpr>,
    pub id_a: Option<IdOperazioneAnpr>,
    /// The municipality's own id range (`idOperazioneComune`), both ends included;
    /// only requests carry one.
    pub id_comune_da: Option<IdOperazioneComune>,
    pub id_comune_a: Option<IdOperazioneComune>,
    /// Only what concerns this subject.
    pub soggetto: Option<IdAnprSoggetto>,
    /// Only what concerns the subject with this tax code (none when nobody has it).
    pub codice_fiscale: Option<String>,
    pub limite: u32,
}

impl Selezione {
    /// Everything in state `stato`, up to `limite`.
    pub fn di_stato(stato: StatoLavorazione, limite: u32) -> Self {
        Self {
            stato,
            tipo: None,
            dal: None,
            al: None,
            id_da: None,
            id_a: None,
            id_comune_da: None,
            id_comune_a: None,
            soggetto: None,
            codice_fiscale: None,
            limite,
        }
    }
}

/// Notifications per REST page when the request does not say.
pub const LIMITE_PREDEFINITO: u32 = 100;
/// Most notifications per REST page.
pub const LIMITE_MASSIMO: u32 = 500;

/// The REST filters of the notifications (`GET /api/v1/notifiche`), as received.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParametriNotifiche {
    /// `daPrendere` (default), `prese` or `tutte`.
    pub stato: Option<String>,
    /// The kind, e.g. `N010`.
    pub tipo: Option<String>,
    /// First and last day of queuing (Italian civil dates, both included).
    pub dal: Option<String>,
    pub al: Option<String>,
    /// Keyset pagination: notifications of operations with a greater id.
    pub dopo: Option<String>,
    /// Page size, 1 to [`LIMITE_MASSIMO`].
    pub limit: Option<String>,
}

impl Selezione {
    /// The selection of a REST notifications page, reporting every malformed filter
    /// (EV001, EN478 for `dal` after `al`). The page asks for one more than `limit`,
    /// so the caller can tell whether another follows.
    pub fn da_parametri(p: &ParametriNotifiche) -> Result<Self, Vec<Anomalia>> {
        let mut e = Vec::new();
        let stato = match p.stato.as_deref().map(str::trim) {
            None | Some("daPrendere") => StatoLavorazione::NotificheDaPrendere,
            Some("prese") => StatoLavorazione::NotificheFruite,
            Some("tutte") => StatoLavorazione::TutteLeNotifiche,
            Some(altro) => {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Stato delle notifiche non valido")
                        .campo("stato")
                        .valore(altro)
                        .atteso("daPrendere, prese o tutte"),
                );
                StatoLavorazione::NotificheDaPrendere
            }
        };
        let data = |campo: &str, v: &Option<String>, e: &mut Vec<Anomalia>| {
            v.as_deref().and_then(|s| {
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map_err(|_| {
                        e.push(
                            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Data non valida")
                                .campo(campo)
                                .valore(s)
                                .atteso("una data AAAA-MM-GG"),
                        );
                    })
                    .ok()
            })
        };
        let dal = data("dal", &p.dal, &mut e);
        let al = data("al", &p.al, &mut e);
        if let (Some(d), Some(a)) = (dal, al) {
            if a < d {
                e.push(Anomalia::periodo_invertito("al", d, a));
            }
        }
        let dopo = p
            .dopo
            .as_deref()
            .and_then(|s| crate::ricerca::parsed::<IdOperazioneAnpr>("dopo", s, &mut e));
        let limite = match p.limit.as_deref().map(str::trim) {
            None => LIMITE_PREDEFINITO,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if (1..=LIMITE_MASSIMO).contains(&n) => n,
                _ => {
                    e.push(
                        Anomalia::errore(
                            CODICE_VALORE_NON_VALIDO,
                            "Numero di notifiche per pagina non valido",
                        )
                        .campo("limit")
                        .valore(s)
                        .atteso(format!("un numero da 1 a {LIMITE_MASSIMO}")),
                    );
                    LIMITE_PREDEFINITO
                }
            },
        };
        if !e.is_empty() {
            return Err(e);
        }
        Ok(Selezione {
            tipo: p
                .tipo
                .as_deref()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
            dal: dal.map(inizio_giorno_italiano),
            al: al
                .and_then(|a| a.succ_opt())
                .map(|a| inizio_giorno_italiano(a) - Duration::microseconds(1)),
            id_da: dopo.and_then(|d| IdOperazioneAnpr::new(d.get() + 1).ok()),
            ..Selezione::di_stato(stato, limite + 1)
        })
    }
}

/// What a read returns and does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lettura {
    /// The contents are returned (each one audited).
    pub contenuti: bool,
    /// The notifications among the items are taken (7 -> 8).
    pub prendi: bool,
}

impl Lettura {
    /// Ids and states only (3007).
    pub const IDENTIFICATIVI: Lettura = Lettura {
        contenuti: false,
        prendi: false,
    };
    /// Contents, and the notifications taken (3003, 3005: delivery by polling).
    pub const CONSEGNA: Lettura = Lettura {
        contenuti: true,
        prendi: true,
    };
    /// Contents without taking anything (REST: the client acknowledges apart).
    pub const CONTENUTI: Lettura = Lettura {
        contenuti: true,
        prendi: false,
    };
    /// Taking only (REST acknowledgement).
    pub const PRESA: Lettura = Lettura {
        contenuti: false,
        prendi: true,
    };
}

/// What an item is.
#[derive(Debug, Clone, PartialEq)]
pub enum Contenuto {
    /// A registry operation of the municipality, with its stored documents.
    Operazione(Box<StoredOperation>),
    /// An asynchronous request of the municipality (4001-4004).
    Elaborazione(Box<Elaborazione>),
    /// A notification addressed to the municipality.
    Notifica(Box<OutboxMessage>),
}

/// One request or notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Voce {
    pub id_operazione_anpr: IdOperazioneAnpr,
    /// `tipoOperazione`: the service code, or the notification's kind.
    pub tipo: String,
    pub stato: StatoLavorazione,
    pub contenuto: Contenuto,
}

/// Whether a stored response document carries warnings.
fn con_avvertimenti(risposta: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(risposta)
        .ok()
        .and_then(|d| d["anomalie"].as_array().map(|a| !a.is_empty()))
        .unwrap_or(false)
}

fn voce_operazione(op: StoredOperation) -> Voce {
    let stato = match op.stato {
        StatoOperazione::Rifiutata => StatoLavorazione::Negativa,
        StatoOperazione::Annullata => StatoLavorazione::Annullata,
        StatoOperazione::Eseguita if con_avvertimenti(&op.risposta) => {
            StatoLavorazione::PositivaConAvvertimenti
        }
        StatoOperazione::Eseguita => StatoLavorazione::Positiva,
    };
    Voce {
        id_operazione_anpr: op.id,
        tipo: op.codice_servizio.to_string(),
        stato,
        contenuto: Contenuto::Operazione(Box::new(op)),
    }
}

fn voce_notifica(m: OutboxMessage) -> Option<Voce> {
    let id = m.id_operazione_anpr?;
    let stato = if m.consegnato_il.is_some() {
        StatoLavorazione::NotificheFruite
    } else {
        StatoLavorazione::NotificheDaPrendere
    };
    Some(Voce {
        id_operazione_anpr: id,
        tipo: m.message.tipo.clone(),
        stato,
        contenuto: Contenuto::Notifica(Box::new(m)),
    })
}

fn voce_elaborazione(e: Elaborazione) -> Option<Voce> {
    let stato = match e.stato {
        StatoElaborazione::Inserita => StatoLavorazione::DaElaborare,
        StatoElaborazione::InElaborazione => StatoLavorazione::InElaborazione,
        StatoElaborazione::Completata => StatoLavorazione::Positiva,
        StatoElaborazione::Rifiutata | StatoElaborazione::Errore => StatoLavorazione::Negativa,
    };
    Some(Voce {
        id_operazione_anpr: IdOperazioneAnpr::new(e.id).ok()?,
        tipo: e.servizio.clone(),
        stato,
        contenuto: Contenuto::Elaborazione(Box::new(e)),
    })
}

/// Whether notification `m` names subject `s`.
fn nomina(m: &OutboxMessage, s: IdAnprSoggetto) -> bool {
    let s = s.to_string();
    m.message.payload["soggetti"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(s.as_str())))
}

impl Registry {
    /// The caller's municipality, which these reads need.
    fn comune_richieste(&self, ctx: &CallerContext) -> Result<CodiceIstatComune, ServiceError> {
        ctx.comune.clone().ok_or_else(|| {
            self.rifiuto(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Comune mittente non indicato",
            )
            .campo("codMittente")
            .atteso(
                "il codice ISTAT del comune di cui leggere richieste e notifiche",
            )])
        })
    }

    /// The earliest instant still available for requests or notifications.
    fn disponibili_dal(&self, notifiche: bool) -> DateTime<Utc> {
        let giorni = if notifiche {
            GIORNI_NOTIFICHE
        } else {
            GIORNI_RICHIESTE
        };
        self.clock().now() - Duration::days(giorni)
    }

    /// The requests or notifications of `sel` (see the module documentation), read as
    /// `lettura` says: ids only, contents (each one audited), and/or the notifications
    /// among them taken.
    pub async fn richieste_notifiche(
        &self,
        ctx: &CallerContext,
        sel: &Selezione,
        lettura: Lettura,
    ) -> Result<Vec<Voce>, ServiceError> {
        self.autorizza(ctx, Permesso::Notifiche, AZIONE).await?;
        let comune = self.comune_richieste(ctx)?;
        let store = self.store(ctx.ambiente)?;
        let mut sel = sel.clone();
        if let Some(cf) = sel.codice_fiscale.take() {
            let q = SubjectQuery {
                codice_fiscale: Some(cf.trim().to_uppercase()),
                limit: 1,
                ..SubjectQuery::default()
            };
            let trovati = store.find_subjects(&q).await.map_err(|e| self.interno(e))?;
            match (trovati.first(), sel.soggetto) {
                (Some(s), None) => sel.soggetto = Some(s.id),
                (Some(s), Some(id)) if s.id == id => {}
                // Nobody has it, or not the subject also named: nothing concerns both.
                _ => {
                    return self
                        .consegna(ctx, store.as_ref(), &comune, Vec::new(), lettura)
                        .await
                }
            }
        }
        let sel = &sel;
        let voci = if sel.stato.di_notifiche() {
            self.seleziona_notifiche(store.as_ref(), &comune, sel)
                .await?
        } else if matches!(
            sel.stato,
            StatoLavorazione::InElaborazione | StatoLavorazione::DaElaborare
        ) {
            self.seleziona_elaborazioni(store.as_ref(), &comune, sel)
                .await?
        } else {
            self.seleziona_operazioni(store.as_ref(), &comune, sel)
                .await?
        };
        self.consegna(ctx, store.as_ref(), &comune, voci, lettura)
            .await
    }

    /// One request or notification by id: the municipality's own request
    /// (operation, or asynchronous request) first, else a notification addressed to it
    /// (`genere` narrows the search), read as `lettura` says (see
    /// [`Registry::richieste_notifiche`]).
    pub async fn richiesta_notifica(
        &self,
        ctx: &CallerContext,
        chiave: Chiave,
        genere: Option<Genere>,
        lettura: Lettura,
    ) -> Result<Option<Voce>, ServiceError> {
        self.autorizza(ctx, Permesso::Notifiche, AZIONE).await?;
        let comune = self.comune_richieste(ctx)?;
        let store = self.store(ctx.ambiente)?;
        let trovata = self.trova(store.as_ref(), &comune, chiave, genere).await?;
        let mut voci = self
            .consegna(
                ctx,
                store.as_ref(),
                &comune,
                trovata.into_iter().collect(),
                lettura,
            )
            .await?;
        Ok(voci.pop())
    }

    /// Takes the notifications addressed to the caller's municipality that `ids` name
    /// (the REST acknowledgement), in one audited write; returns each id with whether it
    /// named one (already taken ones stay taken).
    pub async fn prendi_notifiche(
        &self,
        ctx: &CallerContext,
        ids: &[IdOperazioneAnpr],
    ) -> Result<Vec<(IdOperazioneAnpr, bool)>, ServiceError> {
        self.autorizza(ctx, Permesso::Notifiche, AZIONE).await?;
        let comune = self.comune_richieste(ctx)?;
        let store = self.store(ctx.ambiente)?;
        let mut trovate = Vec::new();
        let mut esiti = Vec::with_capacity(ids.len());
        for &id in ids {
            // Named twice: taken once.
            if trovate.iter().any(|v: &Voce| v.id_operazione_anpr == id) {
                esiti.push((id, true));
                continue;
            }
            let v = self
                .trova(
                    store.as_ref(),
                    &comune,
                    Chiave::Anpr(id),
                    Some(Genere::Notifica),
                )
                .await?;
            esiti.push((id, v.is_some()));
            trovate.extend(v);
        }
        self.consegna(ctx, store.as_ref(), &comune, trovate, Lettura::PRESA)
            .await?;
        Ok(esiti)
    }

    /// The request or notification `chiave` names, still available (see
    /// [`Registry::richiesta_notifica`]).
    async fn trova(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        chiave: Chiave,
        genere: Option<Genere>,
    ) -> Result<Option<Voce>, ServiceError> {
        let id = match chiave {
            // Only requests carry the municipality's id.
            Chiave::Comune(_) if genere == Some(Genere::Notifica) => return Ok(None),
            Chiave::Comune(id) => {
                let op = store
                    .operation_by_comune_id(comune, id)
                    .await
                    .map_err(|e| self.interno(e))?;
                return Ok(op
                    .filter(|o| o.registrata_il >= self.disponibili_dal(false))
                    .map(voce_operazione));
            }
            Chiave::Anpr(id) => id,
        };
        if genere != Some(Genere::Notifica) {
            let op = store.operation(id).await.map_err(|e| self.interno(e))?;
            if let Some(op) = op.filter(|o| {
                o.comune.as_ref() == Some(comune) && o.registrata_il >= self.disponibili_dal(false)
            }) {
                return Ok(Some(voce_operazione(op)));
            }
            let e = store
                .elaborazione(id.get())
                .await
                .map_err(|e| self.interno(e))?;
            if let Some(v) = e
                .filter(|e| &e.comune == comune && e.creata_il >= self.disponibili_dal(false))
                .and_then(voce_elaborazione)
            {
                return Ok(Some(v));
            }
        }
        if genere == Some(Genere::Richiesta) {
            return Ok(None);
        }
        let q = QueryNotifiche {
            destinatario: comune.to_string(),
            dal: Some(self.disponibili_dal(true)),
            operazione_da: Some(id),
            operazione_a: Some(id),
            limit: 1,
            ..QueryNotifiche::default()
        };
        let m = store.notifiche(&q).await.map_err(|e| self.interno(e))?;
        Ok(m.into_iter().next().and_then(voce_notifica))
    }

    async fn seleziona_operazioni(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        sel: &Selezione,
    ) -> Result<Vec<Voce>, ServiceError> {
        let stato = match sel.stato {
            StatoLavorazione::Negativa => StatoOperazione::Rifiutata,
            StatoLavorazione::Annullata => StatoOperazione::Annullata,
            _ => StatoOperazione::Eseguita,
        };
        let codice_servizio = match &sel.tipo {
            Some(t) => match t.parse::<CodiceServizio>() {
                Ok(c) => Some(c),
                // No operation has a code that is not one.
                Err(_) => return Ok(Vec::new()),
            },
            None => None,
        };
        let dal = sel.dal.max(Some(self.disponibili_dal(false)));
        let mut query = OperationQuery {
            comune: Some(comune.clone()),
            codice_servizio,
            stato: Some(stato),
            entity: sel.soggetto.map(EntityRef::Soggetto),
            dal,
            al: sel.al.map(|a| a + Duration::microseconds(1)),
            dopo: sel
                .id_da
                .and_then(|d| d.get().checked_sub(1))
                .and_then(|d| IdOperazioneAnpr::new(d).ok()),
            limit: PAGINA,
        };
        let mut voci = Vec::new();
        for _ in 0..MAX_PAGINE {
            let rows = store
                .operations(&query)
                .await
                .map_err(|e| self.interno(e))?;
            let fine = rows.len() < PAGINA as usize;
            query.dopo = rows.last().map(|o| o.id).or(query.dopo);
            for op in rows {
                if sel.id_a.is_some_and(|a| op.id > a) {
                    return Ok(voci);
                }
                let id_comune = op.id_operazione_comune.map(|i| i.get());
                if sel
                    .id_comune_da
                    .is_some_and(|d| id_comune.is_none_or(|i| i < d.get()))
                    || sel
                        .id_comune_a
                        .is_some_and(|a| id_comune.is_none_or(|i| i > a.get()))
                {
                    continue;
                }
                let v = voce_operazione(op);
                if v.stato == sel.stato {
                    voci.push(v);
                    if voci.len() >= sel.limite as usize {
                        return Ok(voci);
                    }
                }
            }
            if fine {
                break;
            }
        }
        Ok(voci)
    }

    async fn seleziona_elaborazioni(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        sel: &Selezione,
    ) -> Result<Vec<Voce>, ServiceError> {
        // Asynchronous requests concern no single subject, nor carry a municipal id
        // range the store could apply: such criteria select none of them.
        if sel.soggetto.is_some() || sel.id_comune_da.is_some() || sel.id_comune_a.is_some() {
            return Ok(Vec::new());
        }
        let stato = if sel.stato == StatoLavorazione::InElaborazione {
            StatoElaborazione::InElaborazione
        } else {
            StatoElaborazione::Inserita
        };
        let q = QueryElaborazioni {
            comune: Some(comune.clone()),
            servizio: sel.tipo.clone(),
            stato: Some(stato),
            dal: sel.dal.max(Some(self.disponibili_dal(false))),
            al: sel.al.map(|a| a + Duration::microseconds(1)),
            id_da: sel.id_da.map(IdOperazioneAnpr::get),
            id_a: sel.id_a.map(IdOperazioneAnpr::get),
            dopo: None,
            limit: sel.limite,
        };
        let rows = store.elaborazioni(&q).await.map_err(|e| self.interno(e))?;
        Ok(rows.into_iter().filter_map(voce_elaborazione).collect())
    }

    async fn seleziona_notifiche(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        sel: &Selezione,
    ) -> Result<Vec<Voce>, ServiceError> {
        // Notifications carry no municipal id.
        if sel.id_comune_da.is_some() || sel.id_comune_a.is_some() {
            return Ok(Vec::new());
        }
        let prese = match sel.stato {
            StatoLavorazione::NotificheDaPrendere => Some(false),
            StatoLavorazione::NotificheFruite => Some(true),
            _ => None,
        };
        let mut query = QueryNotifiche {
            destinatario: comune.to_string(),
            tipo: sel.tipo.clone(),
            prese,
            dal: sel.dal.max(Some(self.disponibili_dal(true))),
            al: sel.al.map(|a| a + Duration::microseconds(1)),
            operazione_da: sel.id_da,
            operazione_a: sel.id_a,
            dopo: None,
            limit: PAGINA,
        };
        let mut voci = Vec::new();
        for _ in 0..MAX_PAGINE {
            let rows = store.notifiche(&query).await.map_err(|e| self.interno(e))?;
            let fine = rows.len() < PAGINA as usize;
            query.dopo = rows.last().map(|m| m.id).or(query.dopo);
            for m in rows {
                if sel.soggetto.is_some_and(|s| !nomina(&m, s)) {
                    continue;
                }
                voci.extend(voce_notifica(m));
                if voci.len() >= sel.limite as usize {
                    return Ok(voci);
                }
            }
            if fine {
                break;
            }
        }
        Ok(voci)
    }

    /// Audits what is returned and takes the notifications among them when `lettura`
    /// says so (their state in the answer becomes 8): each content returned and each
    /// notification taken gets its own entry.
    async fn consegna(
        &self,
        ctx: &CallerContext,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        mut voci: Vec<Voce>,
        lettura: Lettura,
    ) -> Result<Vec<Voce>, ServiceError> {
        let mut audit = vec![self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            AZIONE,
            Some(format!("comune:{comune}")),
            format!("{} voci", voci.len()),
        )];
        let da_prendere: Vec<usize> = if lettura.prendi {
            voci.iter()
                .enumerate()
                .filter(|(_, v)| {
                    matches!(&v.contenuto, Contenuto::Notifica(m) if m.consegnato_il.is_none())
                })
                .map(|(i, _)| i)
                .collect()
        } else {
            Vec::new()
        };
        for (i, v) in voci.iter().enumerate() {
            let oggetto = match &v.contenuto {
                Contenuto::Notifica(_) => format!("notifica:{}:{}", v.tipo, v.id_operazione_anpr),
                _ => format!("operazione:{}", v.id_operazione_anpr),
            };
            let esito = match (lettura.contenuti, da_prendere.contains(&i)) {
                (true, true) => "contenuto, presa in carico",
                (true, false) => "contenuto",
                (false, true) => "presa in carico",
                (false, false) => continue,
            };
            audit.push(self.voce_audit(
                ctx,
                TipoEvento::Lettura,
                AZIONE,
                Some(oggetto),
                esito.into(),
            ));
        }
        store
            .append_audit_batch(audit)
            .await
            .map_err(|e| self.interno(e))?;
        for i in da_prendere {
            let v = &mut voci[i];
            if let Contenuto::Notifica(m) = &mut v.contenuto {
                store
                    .outbox_mark(m.id, true)
                    .await
                    .map_err(|e| self.interno(e))?;
                m.consegnato_il = Some(self.clock().now());
                v.stato = StatoLavorazione::NotificheFruite;
            }
        }
        Ok(voci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_states_read_as_the_table_codes() {
        for s in StatoLavorazione::ALL {
            assert_eq!(StatoLavorazione::da_codice(s.codice()), Some(s));
            assert_eq!(
                StatoLavorazione::da_codice(&format!("0{}", s.codice())),
                Some(s)
            );
        }
        for bad in ["0", "10", "", "x", "12"] {
            assert_eq!(StatoLavorazione::da_codice(bad), None, "{bad}");
        }
        let notifiche: Vec<_> = StatoLavorazione::ALL
            .into_iter()
            .filter(|s| s.di_notifiche())
            .map(StatoLavorazione::codice)
            .collect();
        assert_eq!(notifiche, ["7", "8", "9"]);
    }

    #[test]
    fn an_answer_with_anomalies_is_a_success_with_warnings() {
        assert!(con_avvertimenti(
            r#"{"esito":"OK","anomalie":[{"codice":"EA044"}]}"#
        ));
        assert!(!con_avvertimenti(r#"{"esito":"OK","anomalie":[]}"#));
        assert!(!con_avvertimenti(r#"{"esito":"OK"}"#));
        assert!(!con_avvertimenti("not json"));
    }
}
