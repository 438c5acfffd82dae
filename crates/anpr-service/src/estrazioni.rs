//! Asynchronous extractions (SPEC M-5.3; services 4001, 4002, 4004, 4005, 7002).
//!
//! A request is authorised, validated (every error coded, nothing stored on a refusal),
//! stored in the environment's durable queue and answered at once with its
//! `idOperazioneANPR`; the worker ([`avvia_lavoratore`], a tokio task of the server)
//! runs it and stores the outcome and the file; the caller polls the state (4005) and
//! downloads the file (7002). A restart loses nothing: requests still queued, or held
//! by a worker whose lease expired, are taken up again.
//!
//! **Limits.** An ordinary extraction returns at most [`criteri::LIMITE_SOGGETTI`]
//! subjects: a larger result is **refused** (state 3, EN115, naming the limit), never
//! truncated. Criteria that select on data of the records (further selections) need a
//! limiting criterion — an id range, a period of registrations, deed or street —, else
//! EHR21. A **mass extraction** (`motivoEstrazioneMassiva`) is for the mayor's profile
//! only ([`Permesso::EstrazioneMassiva`]), only for loss of the local database
//! (`perditaBaseDati`) or change of software supplier (`cambioSoftware`), has no subject
//! limit, and is audited with its reason; its file is downloadable by the mayor only.
//!
//! **Audit.** The submission, the outcome (with the number of subjects returned) and
//! every download are audited, naming the request (`elaborazione:<id>`). The subjects an
//! extraction returned are the content of its stored file.

pub mod criteri;
mod esegui;
pub mod file;

use std::sync::Arc;
use std::time::Duration;

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext, Canale};
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_store::{
    ConclusioneElaborazione, Elaborazione, FileElaborazione, NuovaElaborazione, QueryElaborazioni,
    Sequence, StatoElaborazione,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::authz::{self, Permesso};
use crate::{Registry, ServiceError};

pub use criteri::{ComuneRichiesta, CriteriEstrazione, CriteriRicerca4001, LIMITE_SOGGETTI};
pub use file::Formato;

/// How long a worker holds a request before another may take it over.
pub const DURATA_PRESA: Duration = Duration::from_secs(600);
/// A request taken this many times without concluding (the process died each time) is
/// concluded with an error instead of being run again.
pub const TENTATIVI_MASSIMI: u32 = 3;
/// How often an idle worker looks at the queues anyway (requests queued by another
/// process, leases expired).
pub const INTERVALLO_CONTROLLO: Duration = Duration::from_secs(2);
/// Most codes in a 4002 file (EN101).
pub const LIMITE_CODICI_FILE: usize = 2_000;

/// Our codes (EV300-EV349).
pub const CODICE_FORMATO: &str = "EV300";
pub const CODICE_MOTIVO_MASSIVA: &str = "EV301";
pub const CODICE_FILE_ILLEGGIBILE: &str = "EV302";
pub const CODICE_FILE_ASSENTE: &str = "EV303";

/// Reasons admitted for a mass extraction (seed 000).
pub const MOTIVI_MASSIVA: [&str; 2] = ["perditaBaseDati", "cambioSoftware"];

/// Request 4001 (REST body).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta4001 {
    /// The municipality's own request id: a resubmission returns the first request.
    pub id_operazione_comune: Option<String>,
    /// `csv` (default) or `xlsx`.
    pub formato: Option<String>,
    /// Mass extraction, mayor only: `perditaBaseDati` or `cambioSoftware`.
    pub motivo_estrazione_massiva: Option<String>,
    pub criteri_ricerca: CriteriRicerca4001,
}

/// `tipoCriteriRicerca4002`: the codes travel as a file (base64, one code per line or
/// CSV with the code in the first column; an XML file with `<codiceFiscale>` or
/// `<idSchedaSoggettoANPR>` elements is read too) or as a JSON list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CriteriRicerca4002 {
    pub data_riferimento: Option<NaiveDate>,
    #[serde(default)]
    pub dati_richiesti: Vec<String>,
    /// The file of codes, base64 (`xmlFileCodiciFiscali` in the XSD).
    #[serde(alias = "xmlFileCodiciFiscali")]
    pub file_codici_fiscali: Option<String>,
    pub codici_fiscali: Option<Vec<String>>,
    /// `1` the file holds idANPR, `2` (default) codici fiscali.
    pub criterio_selezione: Option<String>,
}

/// Request 4002 (REST body).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta4002 {
    pub id_operazione_comune: Option<String>,
    pub formato: Option<String>,
    pub criteri_ricerca: CriteriRicerca4002,
}

/// `tipoDatiRichiesta4004`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiRichiesta4004 {
    pub comune: Option<ComuneRichiesta>,
    /// `1` codici fiscali not validated by the tax agency, `2` wrong codici fiscali.
    pub tipo_elenco: Option<String>,
    pub data_riferimento_iniziale: Option<NaiveDate>,
    pub data_riferimento_finale: Option<NaiveDate>,
    /// `1` residents, `2` AIRE, `3` (default) both.
    pub tipologia_cittadini: Option<String>,
}

/// Request 4004 (REST body).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta4004 {
    pub id_operazione_comune: Option<String>,
    pub formato: Option<String>,
    pub dati_richiesta: DatiRichiesta4004,
}

/// What the worker runs, stored with the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "tipo", rename_all = "camelCase")]
pub enum Lavoro {
    Estrazione {
        criteri: CriteriEstrazione,
        formato: Formato,
        massiva: Option<String>,
    },
    Rivestimento {
        data_riferimento: NaiveDate,
        sezioni: Vec<anpr_domain::scheda::SezioneSoggetto>,
        dati_richiesti: Vec<u8>,
        per_id_anpr: bool,
        valori: Vec<String>,
        formato: Formato,
    },
    Elenco {
        tipo_elenco: u8,
        periodo: Option<(NaiveDate, NaiveDate)>,
        posizioni: Vec<String>,
        formato: Formato,
    },
    Prospetto(crate::statistiche::RichiestaProspetto),
}

/// A request as stored: who asked (the worker audits in their name) and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichiestaMemorizzata {
    pub chiamante: CallerContext,
    pub lavoro: Lavoro,
}

/// The answer to a submission (4001-4004: `RispostaMultipla` with the id).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RichiestaAccettata {
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: String,
    pub servizio: String,
    /// `tipoStatoRichiesta`: 0 queued, 1 running, 2 done, 3 refused, 99 failed.
    pub stato_richiesta: String,
    pub stato: StatoElaborazione,
    pub data_ora_richiesta: DateTime<Utc>,
    /// False when an earlier request with the same `idOperazioneComune` is returned.
    pub nuova: bool,
}

/// The state of a request (4005 `verificaStato`) and, once concluded, its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatoRichiesta {
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: String,
    pub servizio: String,
    pub stato_richiesta: String,
    pub stato: StatoElaborazione,
    pub comune: CodiceIstatComune,
    pub utente: String,
    pub data_ora_richiesta: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_ora_conclusione: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub esito: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<DescrizioneFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescrizioneFile {
    pub nome: String,
    pub formato: String,
    pub byte: u64,
    pub sha256: String,
}

/// Filters of the request list (4005 `ricercaElenchiRichieste`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FiltroRichieste {
    /// 0 queued, 1 running, 2 done, 3 refused, 99 failed.
    pub stato_richiesta: Option<String>,
    /// `operazioneRichiesta`: 4001-4004.
    pub servizio: Option<String>,
    pub dal: Option<NaiveDate>,
    pub al: Option<NaiveDate>,
    pub dopo: Option<String>,
    pub limit: Option<String>,
}

/// Outcome of one run, before it is stored.
#[derive(Debug)]
pub(crate) struct Esito {
    pub stato: StatoElaborazione,
    pub esito: serde_json::Value,
    pub file: Option<FileElaborazione>,
    /// Audit outcome text (never personal data).
    pub nota: String,
}

impl Esito {
    pub(crate) fn rifiutata(anomalie: Vec<Anomalia>) -> Self {
        let nota = anomalie
            .iter()
            .map(|a| a.codice.clone())
            .collect::<Vec<_>>()
            .join(",");
        Esito {
            stato: StatoElaborazione::Rifiutata,
            esito: serde_json::json!({ "anomalie": anomalie }),
            file: None,
            nota: format!("rifiutata {nota}"),
        }
    }
}

pub(crate) fn rifiuto(registry: &Registry, anomalie: Vec<Anomalia>) -> ServiceError {
    ServiceError::Rifiutata {
        anomalie,
        riferimento: registry.riferimento(None),
    }
}

fn formato(campo: &str, v: Option<&str>, e: &mut Vec<Anomalia>) -> Formato {
    match v {
        None => Formato::Csv,
        Some(s) => Formato::parse(s).unwrap_or_else(|| {
            e.push(
                Anomalia::errore(CODICE_FORMATO, "Formato del file non ammesso")
                    .campo(campo)
                    .valore(s)
                    .atteso("csv o xlsx"),
            );
            Formato::Csv
        }),
    }
}

fn id_operazione_comune(v: Option<&str>, e: &mut Vec<Anomalia>) -> Option<u64> {
    let v = v?;
    match v.trim().parse::<u64>() {
        Ok(n) if n >= 1 && i64::try_from(n).is_ok() => Some(n),
        _ => {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "idOperazioneComune non valido")
                    .campo("idOperazioneComune")
                    .valore(v)
                    .atteso("un numero intero positivo"),
            );
            None
        }
    }
}

impl Registry {
    /// The municipality a request is for: the one named (`comuneRichiesta`), which
    /// must be the caller's (EN167), or the caller's (EN129 when neither).
    pub(crate) fn comune_della_richiesta(
        &self,
        ctx: &CallerContext,
        campo: &str,
        richiesta: Option<&ComuneRichiesta>,
        e: &mut Vec<Anomalia>,
    ) -> Option<CodiceIstatComune> {
        let chiesto = richiesta.map(|c| c.codice_istat.trim().to_owned());
        match (chiesto, &ctx.comune) {
            (Some(c), Some(mio)) if c == mio.as_str() => Some(mio.clone()),
            (Some(c), Some(mio)) => {
                e.push(
                    Anomalia::errore(
                        "EN167",
                        "Operazione non effettuabile: il mittente non e' competente sul comune indicato nella richiesta",
                    )
                    .campo(format!("{campo}.codiceIstat"))
                    .valore(c)
                    .atteso(mio.to_string()),
                );
                None
            }
            (None, Some(mio)) => Some(mio.clone()),
            (_, None) => {
                e.push(
                    Anomalia::errore(
                        "EN129",
                        "Indicare obbligatoriamente la sezione comuneRichiesta",
                    )
                    .campo(campo)
                    .atteso("il comune per cui si chiede (quello dell'utente)"),
                );
                None
            }
        }
    }

    /// Queues a validated request and wakes the worker.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn accoda(
        &self,
        ctx: &CallerContext,
        servizio: &str,
        comune: CodiceIstatComune,
        id_operazione_comune: Option<u64>,
        lavoro: Lavoro,
        azione: &str,
        nota_audit: String,
    ) -> Result<RichiestaAccettata, ServiceError> {
        let store = self.store(ctx.ambiente)?;
        let id = store
            .next_id(Sequence::Operazione)
            .await
            .map_err(|e| self.interno(e))?;
        let richiesta = serde_json::to_value(RichiestaMemorizzata {
            chiamante: ctx.clone(),
            lavoro,
        })
        .map_err(|e| self.interno(e))?;
        let mut voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            azione,
            Some(format!("elaborazione:{id}")),
            nota_audit,
        );
        voce.id_operazione_anpr = Some(id);
        let (e, nuova) = store
            .inserisci_elaborazione(NuovaElaborazione {
                id,
                servizio: servizio.to_owned(),
                comune,
                id_operazione_comune,
                utente: ctx.utente.clone(),
                postazione: ctx.postazione.clone(),
                canale: ctx.canale.as_str().to_owned(),
                richiesta,
                creata_il: self.clock().now(),
                audit: voce,
            })
            .await
            .map_err(|e| self.interno(e))?;
        if nuova {
            self.risveglia_lavoratore();
        }
        Ok(RichiestaAccettata {
            id_operazione_anpr: e.id.to_string(),
            servizio: e.servizio,
            stato_richiesta: e.stato.codice().to_owned(),
            stato: e.stato,
            data_ora_richiesta: e.creata_il,
            nuova,
        })
    }

    /// 4001: queues an extraction of citizens' data (see the module documentation).
    pub async fn richiedi_estrazione(
        &self,
        ctx: &CallerContext,
        r: &Richiesta4001,
    ) -> Result<RichiestaAccettata, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "estrazione4001")
            .await?;
        let massiva = r.motivo_estrazione_massiva.as_deref().map(str::trim);
        if massiva.is_some() {
            // Mayor only; the denial is audited.
            self.autorizza(ctx, Permesso::EstrazioneMassiva, "estrazioneMassiva")
                .await?;
        }
        let mut e = Vec::new();
        if let Some(m) = massiva {
            if !MOTIVI_MASSIVA.contains(&m) {
                e.push(
                    Anomalia::errore(
                        CODICE_MOTIVO_MASSIVA,
                        "Estrazione massiva ammessa solo per perdita della base dati o cambio di fornitore del software",
                    )
                    .campo("motivoEstrazioneMassiva")
                    .valore(m)
                    .atteso(MOTIVI_MASSIVA.join(" o ")),
                );
            }
        }
        let idc = id_operazione_comune(r.id_operazione_comune.as_deref(), &mut e);
        let formato = formato("formato", r.formato.as_deref(), &mut e);
        let comune = self.comune_della_richiesta(
            ctx,
            "criteriRicerca.comuneRichiesta",
            r.criteri_ricerca.comune_richiesta.as_ref(),
            &mut e,
        );
        let criteri = match &comune {
            Some(c) => match criteri::valida(
                self.tables(),
                &r.criteri_ricerca,
                c,
                self.clock().today(),
                massiva.is_some(),
            ) {
                Ok(c) => Some(c),
                Err(mut errs) => {
                    e.append(&mut errs);
                    None
                }
            },
            None => None,
        };
        let (Some(comune), Some(criteri), true) = (comune, criteri, e.is_empty()) else {
            return Err(rifiuto(self, e));
        };
        let (azione, nota) = match massiva {
            Some(m) => ("estrazioneMassiva", format!("accodata motivo={m}")),
            None => ("estrazione4001", "accodata".to_owned()),
        };
        self.accoda(
            ctx,
            "4001",
            comune,
            idc,
            Lavoro::Estrazione {
                criteri,
                formato,
                massiva: massiva.map(str::to_owned),
            },
            azione,
            nota,
        )
        .await
    }

    /// 4002: queues the enrichment of a list of codici fiscali (or idANPR) with the data
    /// groups asked for, as at a date, into a spreadsheet. Only subjects of the caller's
    /// municipality are enriched; the others are reported row by row (EN210).
    pub async fn richiedi_rivestimento(
        &self,
        ctx: &CallerContext,
        r: &Richiesta4002,
    ) -> Result<RichiestaAccettata, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "rivestimento4002")
            .await?;
        let mut e = Vec::new();
        let idc = id_operazione_comune(r.id_operazione_comune.as_deref(), &mut e);
        let formato = formato("formato", r.formato.as_deref(), &mut e);
        let comune = self.comune_della_richiesta(ctx, "criteriRicerca", None, &mut e);
        let c = &r.criteri_ricerca;
        let oggi = self.clock().today();
        let data_riferimento = match c.data_riferimento {
            Some(d) if d > oggi => {
                e.push(
                    Anomalia::errore(
                        "EHR09",
                        "Data richiesta errata o non compatibile con la data di sistema",
                    )
                    .campo("criteriRicerca.dataRiferimento")
                    .valore(d.to_string())
                    .atteso(format!("una data non successiva a {oggi}")),
                );
                oggi
            }
            Some(d) => d,
            None => {
                e.push(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Indicare la data di riferimento")
                        .campo("criteriRicerca.dataRiferimento")
                        .atteso("una data (AAAA-MM-GG)"),
                );
                oggi
            }
        };
        let (sezioni, dati_richiesti, _) =
            criteri::dati_richiesti("criteriRicerca.datiRichiesti", &c.dati_richiesti, &mut e);
        let per_id_anpr = match c.criterio_selezione.as_deref().map(str::trim) {
            None | Some("2") => false,
            Some("1") => true,
            Some(other) => {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Criterio di selezione non valido")
                        .campo("criteriRicerca.criterioSelezione")
                        .valore(other)
                        .atteso("1 (idANPR) o 2 (codice fiscale)"),
                );
                false
            }
        };
        let valori = match (&c.file_codici_fiscali, &c.codici_fiscali) {
            (Some(f), None) => esegui::leggi_file_codici(f, per_id_anpr).unwrap_or_else(|a| {
                e.push(a);
                Vec::new()
            }),
            (None, Some(l)) => l.iter().map(|s| s.trim().to_uppercase()).collect(),
            _ => {
                e.push(
                    Anomalia::errore(
                        CODICE_CAMPO_OBBLIGATORIO,
                        "Indicare il file dei codici oppure l'elenco dei codici",
                    )
                    .campo("criteriRicerca.fileCodiciFiscali")
                    .atteso("fileCodiciFiscali (base64) oppure codiciFiscali, uno dei due"),
                );
                Vec::new()
            }
        };
        if valori.is_empty() && e.is_empty() {
            e.push(
                Anomalia::errore("EN196", "Indicare nella richiesta almeno un soggetto")
                    .campo("criteriRicerca.fileCodiciFiscali")
                    .atteso("almeno un codice"),
            );
        }
        if valori.len() > LIMITE_CODICI_FILE {
            e.push(
                Anomalia::errore(
                    "EN101",
                    "Il file allegato supera i limiti dimensionali previsti: non indicare piu' di 2000 codici fiscali",
                )
                .campo("criteriRicerca.fileCodiciFiscali")
                .valore(valori.len().to_string())
                .atteso(format!("al massimo {LIMITE_CODICI_FILE} codici")),
            );
        }
        let (Some(comune), true) = (comune, e.is_empty()) else {
            return Err(rifiuto(self, e));
        };
        let n = valori.len();
        self.accoda(
            ctx,
            "4002",
            comune,
            idc,
            Lavoro::Rivestimento {
                data_riferimento,
                sezioni,
                dati_richiesti,
                per_id_anpr,
                valori,
                formato,
            },
            "rivestimento4002",
            format!("accodata {n} codici"),
        )
        .await
    }

    /// 4004: queues a support list — 1: subjects whose codice fiscale is not validated
    /// by the tax agency (optionally registered in a period, residents and/or AIRE);
    /// 2: subjects whose codice fiscale is wrong (formally, or not matching their
    /// generalities; no period, EN468).
    pub async fn richiedi_elenco(
        &self,
        ctx: &CallerContext,
        r: &Richiesta4004,
    ) -> Result<RichiestaAccettata, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "elenco4004")
            .await?;
        let mut e = Vec::new();
        let idc = id_operazione_comune(r.id_operazione_comune.as_deref(), &mut e);
        let formato = formato("formato", r.formato.as_deref(), &mut e);
        let d = &r.dati_richiesta;
        let comune =
            self.comune_della_richiesta(ctx, "datiRichiesta.comune", d.comune.as_ref(), &mut e);
        let tipo_elenco = match d.tipo_elenco.as_deref().map(str::trim) {
            Some("1") => 1,
            Some("2") => 2,
            Some(other) => {
                e.push(
                    Anomalia::errore(
                        "EN473",
                        "Non e' possibile utilizzare il servizio per il tipo elenco richiesto",
                    )
                    .campo("datiRichiesta.tipoElenco")
                    .valore(other)
                    .atteso("1 (codici fiscali non validati) o 2 (codici fiscali errati)"),
                );
                0
            }
            None => {
                e.push(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Indicare il tipo di elenco")
                        .campo("datiRichiesta.tipoElenco")
                        .atteso("1 o 2"),
                );
                0
            }
        };
        let posizioni: Vec<String> = match d.tipologia_cittadini.as_deref().map(str::trim) {
            None | Some("3") => vec!["R".into(), "A".into()],
            Some("1") => vec!["R".into()],
            Some("2") => vec!["A".into()],
            Some(other) => {
                e.push(
                    Anomalia::errore(
                        CODICE_VALORE_NON_VALIDO,
                        "Tipologia di cittadini non valida",
                    )
                    .campo("datiRichiesta.tipologiaCittadini")
                    .valore(other)
                    .atteso("1 residenti, 2 AIRE, 3 entrambi"),
                );
                Vec::new()
            }
        };
        let periodo = match (d.data_riferimento_iniziale, d.data_riferimento_finale) {
            (None, None) => None,
            (Some(a), Some(b)) if a <= b => Some((a, b)),
            (Some(a), Some(b)) => {
                e.push(
                    Anomalia::errore(
                        "EHR16",
                        "Data finale della richiesta minore della data iniziale o maggiore della data di sistema",
                    )
                    .campo("datiRichiesta.dataRiferimentoFinale")
                    .valore(b.to_string())
                    .atteso(format!("una data non anteriore a {a}")),
                );
                None
            }
            _ => {
                e.push(
                    Anomalia::errore("EHR20", "Occorre impostare sia il parametro iniziale che finale del range di ricerca")
                        .campo("datiRichiesta.dataRiferimentoIniziale")
                        .atteso("inizio e fine del periodo"),
                );
                None
            }
        };
        if tipo_elenco == 2 && periodo.is_some() {
            e.push(
                Anomalia::errore(
                    "EN468",
                    "Per il tipo elenco richiesto non e' possibile indicare: periodo di riferimento - tipologia di cittadini",
                )
                .campo("datiRichiesta.dataRiferimentoIniziale")
                .atteso("nessun periodo per l'elenco dei codici fiscali errati"),
            );
        }
        let (Some(comune), true) = (comune, e.is_empty()) else {
            return Err(rifiuto(self, e));
        };
        self.accoda(
            ctx,
            "4004",
            comune,
            idc,
            Lavoro::Elenco {
                tipo_elenco,
                periodo,
                posizioni,
                formato,
            },
            "elenco4004",
            format!("accodata tipoElenco={tipo_elenco}"),
        )
        .await
    }

    /// Reads a request the caller may see: of their municipality (or any, for national
    /// profiles); a mass extraction only by holders of [`Permesso::EstrazioneMassiva`].
    /// Anything else does not exist for the caller (404, audited as a read).
    async fn elaborazione_visibile(
        &self,
        ctx: &CallerContext,
        id: &str,
        azione: &str,
    ) -> Result<Elaborazione, ServiceError> {
        let store = self.store(ctx.ambiente)?;
        let trovata = match id.trim().parse::<u64>() {
            Ok(n) => store.elaborazione(n).await.map_err(|e| self.interno(e))?,
            Err(_) => None,
        };
        let visibile = trovata.filter(|e| {
            let del_comune = authz::ambito_nazionale(ctx) || ctx.comune.as_ref() == Some(&e.comune);
            let massiva = e
                .richiesta
                .pointer("/lavoro/massiva")
                .is_some_and(|m| !m.is_null());
            del_comune && (!massiva || authz::autorizza(ctx, Permesso::EstrazioneMassiva).is_ok())
        });
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            azione,
            Some(format!("elaborazione:{}", id.trim())),
            if visibile.is_some() {
                "ok"
            } else {
                "non trovato"
            }
            .into(),
        );
        store
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        visibile.ok_or_else(|| ServiceError::NonTrovato {
            cosa: format!("richiesta {}", id.trim()),
            riferimento: self.riferimento(None),
        })
    }

    /// 4005 `verificaStato`: the state of a request and, once concluded, its outcome.
    pub async fn stato_richiesta(
        &self,
        ctx: &CallerContext,
        id: &str,
    ) -> Result<StatoRichiesta, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "verificaStato4005")
            .await?;
        let e = self
            .elaborazione_visibile(ctx, id, "verificaStato4005")
            .await?;
        Ok(stato_di(e))
    }

    /// 4005 `ricercaElenchiRichieste`: the municipality's requests.
    pub async fn elenco_richieste(
        &self,
        ctx: &CallerContext,
        f: &FiltroRichieste,
    ) -> Result<Vec<StatoRichiesta>, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "elencoRichieste4005")
            .await?;
        let mut e = Vec::new();
        let stato = f.stato_richiesta.as_deref().map(str::trim).and_then(|s| {
            let st = StatoElaborazione::ALL.into_iter().find(|x| x.codice() == s);
            if st.is_none() {
                e.push(
                    Anomalia::errore("EC021", "Valore del campo stato lavorazione non presente sulla tabella di riferimento")
                        .campo("statoRichiesta")
                        .valore(s)
                        .atteso("0, 1, 2, 3 o 99"),
                );
            }
            st
        });
        if let (Some(a), Some(b)) = (f.dal, f.al) {
            if a > b {
                e.push(Anomalia::periodo_invertito("al", a, b));
            }
        }
        let dopo = f
            .dopo
            .as_deref()
            .and_then(|s| match s.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    e.push(
                        Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Valore non valido per dopo")
                            .campo("dopo")
                            .valore(s)
                            .atteso("un idOperazioneANPR"),
                    );
                    None
                }
            });
        let limit = match f.limit.as_deref() {
            None => 100,
            Some(s) => match s.trim().parse::<u32>() {
                Ok(n) if (1..=500).contains(&n) => n,
                _ => {
                    e.push(
                        Anomalia::errore(
                            CODICE_VALORE_NON_VALIDO,
                            "Numero di richieste per pagina non valido",
                        )
                        .campo("limit")
                        .valore(s)
                        .atteso("un numero da 1 a 500"),
                    );
                    100
                }
            },
        };
        if !e.is_empty() {
            return Err(rifiuto(self, e));
        }
        let q = QueryElaborazioni {
            comune: if authz::ambito_nazionale(ctx) {
                None
            } else {
                match &ctx.comune {
                    Some(c) => Some(c.clone()),
                    None => return Ok(Vec::new()),
                }
            },
            servizio: f.servizio.as_deref().map(|s| s.trim().to_owned()),
            stato,
            dal: f.dal.map(crate::clock::inizio_giorno_italiano),
            al: f
                .al
                .and_then(|d| d.succ_opt())
                .map(crate::clock::inizio_giorno_italiano),
            dopo,
            limit,
            ..Default::default()
        };
        let store = self.store(ctx.ambiente)?;
        let righe = store.elaborazioni(&q).await.map_err(|e| self.interno(e))?;
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            "elencoRichieste4005",
            None,
            format!("{} richieste", righe.len()),
        );
        store
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        let massiva_ok = authz::autorizza(ctx, Permesso::EstrazioneMassiva).is_ok();
        Ok(righe
            .into_iter()
            .filter(|e| {
                massiva_ok
                    || e.richiesta
                        .pointer("/lavoro/massiva")
                        .is_none_or(serde_json::Value::is_null)
            })
            .map(stato_di)
            .collect())
    }

    /// 7002: the file of a concluded request. Not concluded yet: EN108 (queued) or
    /// EN109 (running); concluded without a file (refused, failed, a statistics
    /// request): EV303. Every download is audited.
    pub async fn scarica_file(
        &self,
        ctx: &CallerContext,
        id: &str,
    ) -> Result<FileElaborazione, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "download7002")
            .await?;
        let e = self.elaborazione_visibile(ctx, id, "download7002").await?;
        let non_pronta = |codice: &str, testo: &str| {
            rifiuto(
                self,
                vec![Anomalia::errore(codice, testo)
                    .campo("idOperazioneANPR")
                    .valore(e.id.to_string())
                    .atteso("una richiesta conclusa con esito positivo")],
            )
        };
        match e.stato {
            StatoElaborazione::Inserita => {
                return Err(non_pronta(
                    "EN108",
                    "Richiesta presa in carico ma non ancora elaborata",
                ))
            }
            StatoElaborazione::InElaborazione => {
                return Err(non_pronta("EN109", "Richiesta in corso di elaborazione"))
            }
            _ => {}
        }
        let store = self.store(ctx.ambiente)?;
        store
            .file_elaborazione(e.id)
            .await
            .map_err(|x| self.interno(x))?
            .ok_or_else(|| {
                non_pronta(
                    CODICE_FILE_ASSENTE,
                    "La richiesta non ha prodotto un file (rifiutata, in errore o senza file)",
                )
            })
    }

    /// Wakes the worker (a request was queued).
    pub fn risveglia_lavoratore(&self) {
        self.risveglio.notify_one();
    }

    /// Takes and runs the next request of `ambiente`, if any; `true` when one was run.
    pub async fn esegui_prossima(&self, ambiente: Ambiente) -> Result<bool, ServiceError> {
        let store = self.store(ambiente)?;
        let adesso = self.clock().now();
        let scadenza = adesso
            + chrono::Duration::from_std(DURATA_PRESA).unwrap_or(chrono::Duration::minutes(10));
        let Some(e) = store
            .prendi_elaborazione(adesso, scadenza)
            .await
            .map_err(|x| self.interno(x))?
        else {
            return Ok(false);
        };
        let memorizzata: Result<RichiestaMemorizzata, _> =
            serde_json::from_value(e.richiesta.clone());
        let esito = match memorizzata {
            Err(x) => Err(self.interno(format!("request {} unreadable: {x}", e.id))),
            Ok(_) if e.tentativi > TENTATIVI_MASSIMI => Err(self.interno(format!(
                "request {} taken {} times without concluding",
                e.id, e.tentativi
            ))),
            Ok(m) => self.esegui(ambiente, &e, &m).await,
        };
        let esito = match esito {
            Ok(x) => x,
            Err(ServiceError::Rifiutata { anomalie, .. }) => Esito::rifiutata(anomalie),
            Err(x) => {
                let riferimento = x.riferimento().clone();
                Esito {
                    stato: StatoElaborazione::Errore,
                    esito: serde_json::json!({"anomalie": x.anomalie(), "riferimento": riferimento}),
                    file: None,
                    nota: format!("errore {}", riferimento.id),
                }
            }
        };
        let chiamante = serde_json::from_value::<RichiestaMemorizzata>(e.richiesta.clone())
            .map(|m| m.chiamante)
            .unwrap_or_else(|_| CallerContext {
                ambiente,
                comune: Some(e.comune.clone()),
                utente: e.utente.clone(),
                profili: Default::default(),
                postazione: e.postazione.clone(),
                canale: Canale::Sistema,
            });
        let mut voce = self.voce_audit(
            &chiamante,
            TipoEvento::Lettura,
            &format!("conclusione{}", e.servizio),
            Some(format!("elaborazione:{}", e.id)),
            esito.nota.clone(),
        );
        voce.id_operazione_anpr = Some(e.id);
        let conclusa = store
            .concludi_elaborazione(ConclusioneElaborazione {
                id: e.id,
                tentativo: e.tentativi,
                stato: esito.stato,
                conclusa_il: self.clock().now(),
                esito: esito.esito,
                file: esito.file,
                audit: voce,
            })
            .await
            .map_err(|x| self.interno(x))?;
        if !conclusa {
            tracing::warn!(
                id = e.id,
                "request taken over by another worker; result dropped"
            );
        }
        Ok(true)
    }

    async fn esegui(
        &self,
        ambiente: Ambiente,
        e: &Elaborazione,
        m: &RichiestaMemorizzata,
    ) -> Result<Esito, ServiceError> {
        let store = self.store(ambiente)?.clone();
        match &m.lavoro {
            Lavoro::Estrazione {
                criteri,
                formato,
                massiva,
            } => {
                self.esegui_estrazione(&*store, e.id, criteri, *formato, massiva.is_some())
                    .await
            }
            Lavoro::Rivestimento {
                data_riferimento,
                sezioni,
                dati_richiesti,
                per_id_anpr,
                valori,
                formato,
            } => {
                self.esegui_rivestimento(
                    &*store,
                    e,
                    *data_riferimento,
                    sezioni,
                    dati_richiesti,
                    *per_id_anpr,
                    valori,
                    *formato,
                )
                .await
            }
            Lavoro::Elenco {
                tipo_elenco,
                periodo,
                posizioni,
                formato,
            } => {
                self.esegui_elenco(&*store, e, *tipo_elenco, *periodo, posizioni, *formato)
                    .await
            }
            Lavoro::Prospetto(r) => self.calcola_prospetto(&*store, &e.comune, r).await,
        }
    }
}

fn stato_di(e: Elaborazione) -> StatoRichiesta {
    let file = match (e.file_nome, e.file_formato, e.file_byte, e.file_sha256) {
        (Some(nome), Some(formato), Some(byte), Some(sha256)) => Some(DescrizioneFile {
            nome,
            formato,
            byte,
            sha256,
        }),
        _ => None,
    };
    StatoRichiesta {
        id_operazione_anpr: e.id.to_string(),
        servizio: e.servizio,
        stato_richiesta: e.stato.codice().to_owned(),
        stato: e.stato,
        comune: e.comune,
        utente: e.utente,
        data_ora_richiesta: e.creata_il,
        data_ora_conclusione: e.conclusa_il,
        esito: e.esito,
        file,
    }
}

/// Starts the worker of `registry`: a tokio task running queued requests of every
/// environment, woken by each submission and every [`INTERVALLO_CONTROLLO`] (requests
/// queued by another process, expired leases, and those left by a restart). Failures
/// are logged and the loop goes on.
pub fn avvia_lavoratore(registry: Arc<Registry>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut lavorato = false;
            for ambiente in registry.ambienti() {
                match registry.esegui_prossima(ambiente).await {
                    Ok(true) => lavorato = true,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(%ambiente, error = %e, "extraction worker");
                    }
                }
            }
            if !lavorato {
                tokio::select! {
                    () = registry.risveglio.notified() => {}
                    () = tokio::time::sleep(INTERVALLO_CONTROLLO) => {}
                }
            }
        }
    })
}
