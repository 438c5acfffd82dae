//! ISTAT tables (SPEC M-5.4; service 4003): population movements and population of a
//! municipality, in two steps as ANPR does them — **compute** (a queued request; the
//! table is stored with the request) and **print** (PDF or CSV of the stored table) —,
//! plus SVG charts of the monthly series.
//!
//! The tables are `tab_Prospetti_statistici` 1-5 with the rows of
//! `tab_Righe_dettaglio_Prospetti_Statistici`. They are computed from the registry's
//! history: every registration, transfer, emigration and death changes the subject's
//! `competenza` (municipality, position) from the operation's effective date, and the
//! operation that made the change says which movement it is ([`classifica`]). The
//! population at a date is the residents whose `competenza` in force then is the
//! municipality. A transfer between two municipalities is one change, a departure for
//! one and an arrival for the other: it counts once in each. Because movements and
//! populations come from the same history, the balance closes: population at the end =
//! at the start + births − deaths + registered − removed (the stored `quadratura` shows
//! it, and any records loaded by the onboarding, which are not movements).
//!
//! **Dates.** A movement belongs to the period of its effective date (*decorrenza*). A
//! late registration with an earlier effective date changes an earlier period: computing
//! it again gives the corrected table (ANPR counts by the date the case was defined
//! instead, see `docs/ESTRAZIONI.md`). The current month can be computed, marked
//! provisional; an annual table only for a year that has ended (EN171).

pub mod classifica;
mod grafico;
mod stampa;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceIstatComune, IdOperazioneAnpr};
use anpr_domain::scheda::{SchedaSoggetto, SezioneSoggetto, TipoScheda};
use anpr_store::{
    EntityRef, QueryElaborazioni, QueryVersioniCampo, StatoElaborazione, Store, StoredVersion,
};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::authz::Permesso;
use crate::estrazioni::{rifiuto, ComuneRichiesta, Esito, Lavoro, RichiestaAccettata};
use crate::{Registry, ServiceError};

use classifica::{Contesto, Movimento, Stato};

pub use grafico::serie_mensile_svg;

/// Request 4003 (REST body), `tipoDatiRichiesta4003`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta4003 {
    pub id_operazione_comune: Option<String>,
    pub dati_richiesta: DatiRichiesta4003,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiRichiesta4003 {
    pub comune: Option<ComuneRichiesta>,
    /// 1 monthly; 2, 3, 4, 5 annual (`tab_Prospetti_statistici`).
    pub tipologia_prospetto: Option<String>,
    pub mese: Option<String>,
    pub anno: Option<String>,
}

/// A validated table request, stored with the queued request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichiestaProspetto {
    pub tipologia: u8,
    pub anno: i32,
    pub mese: Option<u32>,
}

impl RichiestaProspetto {
    /// First and last day of the period.
    pub fn periodo(&self) -> (NaiveDate, NaiveDate) {
        match self.mese {
            Some(m) => {
                let dal = NaiveDate::from_ymd_opt(self.anno, m, 1).unwrap_or(NaiveDate::MIN);
                let al = dal
                    .checked_add_months(chrono::Months::new(1))
                    .and_then(|d| d.pred_opt())
                    .unwrap_or(dal);
                (dal, al)
            }
            None => (
                NaiveDate::from_ymd_opt(self.anno, 1, 1).unwrap_or(NaiveDate::MIN),
                NaiveDate::from_ymd_opt(self.anno, 12, 31).unwrap_or(NaiveDate::MIN),
            ),
        }
    }
}

/// Males, females and total of one row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conteggio {
    pub totale_maschi: i64,
    pub totale_femmine: i64,
    pub totale_complessivo: i64,
}

impl Conteggio {
    fn add(&mut self, maschio: bool) {
        if maschio {
            self.totale_maschi += 1;
        } else {
            self.totale_femmine += 1;
        }
        self.totale_complessivo += 1;
    }

    fn solo_totale(n: usize) -> Self {
        Conteggio {
            totale_complessivo: i64::try_from(n).unwrap_or(i64::MAX),
            ..Default::default()
        }
    }

    fn piu(self, o: Self) -> Self {
        Conteggio {
            totale_maschi: self.totale_maschi + o.totale_maschi,
            totale_femmine: self.totale_femmine + o.totale_femmine,
            totale_complessivo: self.totale_complessivo + o.totale_complessivo,
        }
    }

    fn meno(self, o: Self) -> Self {
        Conteggio {
            totale_maschi: self.totale_maschi - o.totale_maschi,
            totale_femmine: self.totale_femmine - o.totale_femmine,
            totale_complessivo: self.totale_complessivo - o.totale_complessivo,
        }
    }
}

/// One row of a table (`tipoDatiElaborati`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Riga {
    pub id_dato: u32,
    pub descrizione: String,
    #[serde(flatten)]
    pub conteggio: Conteggio,
}

/// A row of the breakdowns of the annual tables 3-5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RigaDettaglio {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codice_stato: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anno_nascita: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stato_civile: Option<String>,
    #[serde(flatten)]
    pub conteggio: Conteggio,
}

/// A computed table, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prospetto {
    pub comune: CodiceIstatComune,
    pub tipologia_prospetto: u8,
    pub descrizione: String,
    pub anno: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mese: Option<u32>,
    pub dal: NaiveDate,
    pub al: NaiveDate,
    /// The period was not over when computed.
    pub provvisorio: bool,
    pub calcolato_il: chrono::DateTime<chrono::Utc>,
    pub righe: Vec<Riga>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dettaglio: Vec<RigaDettaglio>,
    /// Population at the start + balance against the population at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quadratura: Option<Quadratura>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quadratura {
    pub popolazione_inizio: i64,
    pub saldo: i64,
    pub popolazione_fine: i64,
    /// Records of the period loaded by the onboarding (not movements).
    pub iscritti_subentro: i64,
    /// `popolazione_fine - (popolazione_inizio + saldo + iscritti_subentro)`: zero.
    pub differenza: i64,
}

/// A resident at a date, as the tables need them.
#[derive(Debug, Clone)]
struct Residente {
    maschio: bool,
    straniero: bool,
    convivenza: bool,
    famiglia: Option<(u64, bool)>,
    anno_nascita: Option<i32>,
    nato_in_italia: bool,
    stato_civile: Option<String>,
    cittadinanza: Option<String>,
    senza_fissa_dimora: bool,
}

fn descrizione_riga(tipologia: u8, id: u32) -> String {
    anpr_tables::tables()
        .code(
            "righe_prospetti_statistici",
            &format!("{tipologia}.{id}"),
            None,
        )
        .map(|r| {
            r.description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn descrizione_prospetto(tipologia: u8) -> String {
    anpr_tables::tables()
        .code("prospetti_statistici", &tipologia.to_string(), None)
        .map(|r| {
            r.description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

impl Registry {
    /// 4003, first step: validates and queues the computation of a table; the worker
    /// stores it with the request. Print it with [`Registry::stampa_prospetto`].
    pub async fn richiedi_prospetto(
        &self,
        ctx: &CallerContext,
        r: &Richiesta4003,
    ) -> Result<RichiestaAccettata, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "prospetto4003")
            .await?;
        let mut e = Vec::new();
        let d = &r.dati_richiesta;
        let comune =
            self.comune_della_richiesta(ctx, "datiRichiesta.comune", d.comune.as_ref(), &mut e);
        let idc = r
            .id_operazione_comune
            .as_deref()
            .and_then(|v| match v.trim().parse::<u64>() {
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
            });
        let richiesta = valida(d, self.clock().today(), &mut e);
        let (Some(comune), Some(richiesta), true) = (comune, richiesta, e.is_empty()) else {
            return Err(rifiuto(self, e));
        };
        let nota = format!(
            "accodata prospetto {} {}{}",
            richiesta.tipologia,
            richiesta.anno,
            richiesta
                .mese
                .map(|m| format!("-{m:02}"))
                .unwrap_or_default()
        );
        self.accoda_prospetto(ctx, comune, idc, richiesta, nota)
            .await
    }

    async fn accoda_prospetto(
        &self,
        ctx: &CallerContext,
        comune: CodiceIstatComune,
        idc: Option<u64>,
        r: RichiestaProspetto,
        nota: String,
    ) -> Result<RichiestaAccettata, ServiceError> {
        self.accoda(
            ctx,
            "4003",
            comune,
            idc,
            Lavoro::Prospetto(r),
            "prospetto4003",
            nota,
        )
        .await
    }

    /// The computed table of a concluded 4003 request (audited as a read).
    pub async fn prospetto(
        &self,
        ctx: &CallerContext,
        id: &str,
    ) -> Result<Prospetto, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "prospetto4003")
            .await?;
        let stato = self.stato_richiesta(ctx, id).await?;
        let non_pronto = |codice: &str, testo: &str| {
            rifiuto(
                self,
                vec![Anomalia::errore(codice, testo)
                    .campo("idOperazioneANPR")
                    .valore(id.to_owned())
                    .atteso("una richiesta di prospetto (4003) elaborata")],
            )
        };
        if stato.servizio != "4003" {
            return Err(non_pronto(
                "EN107",
                "L'identificativo specificato non corrisponde ad una richiesta di prospetto",
            ));
        }
        match stato.stato {
            StatoElaborazione::Inserita => Err(non_pronto("EN108", "Richiesta presa in carico ma non ancora elaborata")),
            StatoElaborazione::InElaborazione => Err(non_pronto("EN109", "Richiesta in corso di elaborazione")),
            StatoElaborazione::Completata => {
                let esito = stato.esito.unwrap_or_default();
                serde_json::from_value(esito).map_err(|e| self.interno(e))
            }
            _ => Err(non_pronto("EN099", "La risposta all'elaborazione richiesta non e' disponibile (richiesta rifiutata o in errore)")),
        }
    }

    /// 4003, second step: the stored table printed as PDF/A (`pdf`) or CSV (`csv`):
    /// (bytes, file name, media type).
    pub async fn stampa_prospetto(
        &self,
        ctx: &CallerContext,
        id: &str,
        formato: &str,
    ) -> Result<(Vec<u8>, String, &'static str), ServiceError> {
        let p = self.prospetto(ctx, id).await?;
        let nome = format!(
            "prospetto{}_{}_{}{}",
            p.tipologia_prospetto,
            p.comune,
            p.anno,
            p.mese.map(|m| format!("-{m:02}")).unwrap_or_default()
        );
        match formato.trim() {
            "csv" => Ok((
                stampa::csv(&p).map_err(|e| self.interno(e))?,
                format!("{nome}.csv"),
                "text/csv; charset=utf-8",
            )),
            "pdf" => {
                let pdf = stampa::pdf(&p, ctx.ambiente, self.clock().now())
                    .map_err(|e| self.interno(e))?;
                Ok((pdf, format!("{nome}.pdf"), "application/pdf"))
            }
            other => Err(rifiuto(
                self,
                vec![Anomalia::errore(
                    crate::estrazioni::CODICE_FORMATO,
                    "Formato di stampa non ammesso",
                )
                .campo("formato")
                .valore(other)
                .atteso("pdf o csv")],
            )),
        }
    }

    /// The monthly series of a year (births, deaths, registered, removed, population at
    /// the end of the month) from the monthly tables computed for the caller's
    /// municipality, as an SVG chart. Months never computed are gaps, named in the chart.
    pub async fn grafico_serie_mensile(
        &self,
        ctx: &CallerContext,
        anno: i32,
    ) -> Result<String, ServiceError> {
        self.autorizza(ctx, Permesso::Estrazione, "graficoProspetti")
            .await?;
        let Some(comune) = ctx.comune.clone() else {
            return Err(rifiuto(
                self,
                vec![
                    Anomalia::errore("EN129", "Indicare obbligatoriamente il comune")
                        .campo("comune"),
                ],
            ));
        };
        let store = self.store(ctx.ambiente)?;
        let mut mesi: BTreeMap<u32, Prospetto> = BTreeMap::new();
        let mut dopo = None;
        loop {
            let pagina = store
                .elaborazioni(&QueryElaborazioni {
                    comune: Some(comune.clone()),
                    servizio: Some("4003".into()),
                    stato: Some(StatoElaborazione::Completata),
                    dopo,
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .map_err(|e| self.interno(e))?;
            let Some(ultima) = pagina.last() else { break };
            dopo = Some(ultima.id);
            let fine = pagina.len() < 1000;
            for e in pagina {
                let Some(esito) = e.esito else { continue };
                let Ok(p) = serde_json::from_value::<Prospetto>(esito) else {
                    continue;
                };
                if p.tipologia_prospetto == 1 && p.anno == anno {
                    if let Some(m) = p.mese {
                        // Ascending ids: the latest computation of a month wins.
                        mesi.insert(m, p);
                    }
                }
            }
            if fine {
                break;
            }
        }
        let voce = self.voce_audit(
            ctx,
            anpr_domain::audit::TipoEvento::Lettura,
            "graficoProspetti",
            None,
            format!("anno {anno}, {} mesi", mesi.len()),
        );
        store
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        Ok(serie_mensile_svg(&comune, anno, &mesi))
    }

    /// Computes a table (the worker's side of 4003).
    pub(crate) async fn calcola_prospetto(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        r: &RichiestaProspetto,
    ) -> Result<Esito, ServiceError> {
        let p = calcola(self, store, comune, r).await?;
        let nota = format!(
            "completata prospetto {} righe {}",
            p.tipologia_prospetto,
            p.righe.len()
        );
        Ok(Esito {
            stato: StatoElaborazione::Completata,
            esito: serde_json::to_value(&p).map_err(|e| self.interno(e))?,
            file: None,
            nota,
        })
    }
}

fn valida(
    d: &DatiRichiesta4003,
    oggi: NaiveDate,
    e: &mut Vec<Anomalia>,
) -> Option<RichiestaProspetto> {
    let tipologia = match d
        .tipologia_prospetto
        .as_deref()
        .map(str::trim)
        .map(str::parse::<u8>)
    {
        Some(Ok(n)) if (1..=5).contains(&n) => Some(n),
        other => {
            e.push(
                Anomalia::errore("EN104", "Valore del campo prospetto selezionato errato, indicare un valore compreso tra 1 e 5")
                    .campo("datiRichiesta.tipologiaProspetto")
                    .valore(if other.is_some() { d.tipologia_prospetto.clone().unwrap_or_default() } else { String::new() })
                    .atteso("1 (mensile), 2-5 (annuali)"),
            );
            None
        }
    };
    let anno = match d.anno.as_deref().map(str::trim) {
        None | Some("") => {
            e.push(
                Anomalia::errore("EN102", "Campo anno obbligatorio")
                    .campo("datiRichiesta.anno")
                    .atteso("AAAA"),
            );
            None
        }
        Some(s) => match s.parse::<i32>() {
            Ok(n) if (1900..=9999).contains(&n) => Some(n),
            _ => {
                e.push(
                    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Anno non valido")
                        .campo("datiRichiesta.anno")
                        .valore(s)
                        .atteso("un anno di quattro cifre"),
                );
                None
            }
        },
    };
    let mese = d.mese.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let mese = match (tipologia, mese) {
        (Some(1), Some(m)) => match m.parse::<u32>() {
            Ok(n) if (1..=12).contains(&n) => Some(n),
            _ => {
                e.push(
                    Anomalia::errore(
                        "EN103",
                        "Campo mese valore errato, indicare un valore compreso tra 1 e 12",
                    )
                    .campo("datiRichiesta.mese")
                    .valore(m)
                    .atteso("1-12"),
                );
                None
            }
        },
        (Some(1), None) => {
            e.push(
                Anomalia::errore(
                    "EN103",
                    "Campo mese valore errato, indicare un valore compreso tra 1 e 12",
                )
                .campo("datiRichiesta.mese")
                .atteso("1-12"),
            );
            None
        }
        (Some(_), Some(m)) => {
            e.push(
                Anomalia::errore("EN105", "Per la richiesta di un prospetto annuale il campo mese non deve essere valorizzato")
                    .campo("datiRichiesta.mese")
                    .valore(m)
                    .atteso("nessun mese"),
            );
            None
        }
        _ => None,
    };
    let (Some(tipologia), Some(anno)) = (tipologia, anno) else {
        return None;
    };
    let r = RichiestaProspetto {
        tipologia,
        anno,
        mese,
    };
    if tipologia == 1 && mese.is_none() {
        return None;
    }
    let (dal, al) = r.periodo();
    if tipologia == 1 && dal > oggi {
        e.push(
            Anomalia::errore(
                "EHR15",
                "Data iniziale della richiesta maggiore della data di sistema",
            )
            .campo("datiRichiesta.mese")
            .valore(format!("{anno}-{:02}", mese.unwrap_or(0)))
            .atteso(format!("un mese non successivo a {}", oggi.format("%Y-%m"))),
        );
        return None;
    }
    if tipologia > 1 && al >= oggi {
        e.push(
            Anomalia::errore(
                "EN171",
                "Non e' ancora possibile richiedere un prospetto annuale",
            )
            .campo("datiRichiesta.anno")
            .valore(anno.to_string())
            .atteso(format!("un anno concluso (fino al {})", oggi.year() - 1)),
        );
        return None;
    }
    Some(r)
}

/// The sections read for residents at a date.
fn sezioni_residenti() -> Vec<String> {
    [
        SezioneSoggetto::Generalita,
        SezioneSoggetto::Cittadinanze,
        SezioneSoggetto::Legame,
        SezioneSoggetto::StatoCivile,
        SezioneSoggetto::Residenza,
        SezioneSoggetto::Iscrizione,
    ]
    .iter()
    .map(|s| s.key().to_owned())
    .collect()
}

async fn residenti(
    reg: &Registry,
    store: &dyn Store,
    ids: &[EntityRef],
    at: NaiveDate,
) -> Result<Vec<Residente>, ServiceError> {
    let sezioni = sezioni_residenti();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(anpr_store::elaborazioni::MAX_ENTITA_SEZIONI) {
        for (_, s) in store
            .sezioni_di(chunk, &sezioni, Some(at))
            .await
            .map_err(|e| reg.interno(e))?
        {
            let scheda = SchedaSoggetto::from_sections(s.iter()).map_err(|e| reg.interno(e))?;
            out.push(residente(&scheda));
        }
    }
    Ok(out)
}

fn straniero(s: &SchedaSoggetto) -> bool {
    let c = s.cittadinanze.as_deref().unwrap_or(&[]);
    !c.is_empty() && !c.iter().any(|x| x.codice_stato == "100")
}

fn residente(s: &SchedaSoggetto) -> Residente {
    let g = s.generalita.as_ref();
    Residente {
        maschio: g.is_some_and(|g| g.sesso.code() == "M"),
        straniero: straniero(s),
        convivenza: s
            .legame
            .as_ref()
            .is_some_and(|l| l.tipo_legame == TipoScheda::Convivenza),
        famiglia: s.legame.as_ref().map(|l| {
            (
                l.id_famiglia_convivenza_anpr.get(),
                l.codice_legame == anpr_domain::scheda::RELAZIONE_INTESTATARIO,
            )
        }),
        anno_nascita: g.map(|g| g.data_nascita.data.year()),
        nato_in_italia: g
            .is_some_and(|g| matches!(g.luogo_nascita, anpr_domain::scheda::Luogo::Comune { .. })),
        stato_civile: s.stato_civile.as_ref().map(|x| x.stato_civile.clone()),
        cittadinanza: s
            .cittadinanze
            .as_ref()
            .and_then(|c| c.first())
            .map(|c| c.codice_stato.clone()),
        senza_fissa_dimora: s
            .residenza
            .as_ref()
            .is_some_and(|r| r.tipo_indirizzo == "3")
            || s.iscrizione
                .as_ref()
                .is_some_and(|i| i.motivo_iscrizione == "8"),
    }
}

/// The version of a timeline in force at `d` (valid time, `[dal, al)`).
fn in_vigore(v: &StoredVersion, d: NaiveDate) -> bool {
    v.valido_dal <= d && v.valido_al.is_none_or(|al| d < al)
}

/// One movement of the period, with what the annual table breaks it down by.
#[derive(Debug, Clone)]
struct MovimentoContato {
    tipo: Movimento,
    maschio: bool,
    operazione: IdOperazioneAnpr,
    motivo: Option<String>,
}

async fn movimenti(
    reg: &Registry,
    store: &dyn Store,
    comune: &str,
    versioni: &[StoredVersion],
    dal: NaiveDate,
    al: NaiveDate,
) -> Result<Vec<MovimentoContato>, ServiceError> {
    // Records with a version of the municipality starting or ending in the period.
    let mobili: BTreeSet<EntityRef> = versioni
        .iter()
        .filter(|v| {
            (v.valido_dal >= dal && v.valido_dal <= al)
                || v.valido_al.is_some_and(|a| a >= dal && a <= al)
        })
        .map(|v| v.entity)
        .collect();
    let mut servizi: HashMap<IdOperazioneAnpr, String> = HashMap::new();
    let mut out = Vec::new();
    let contesto_sezioni: Vec<String> = [
        SezioneSoggetto::Generalita,
        SezioneSoggetto::Cittadinanze,
        SezioneSoggetto::Iscrizione,
        SezioneSoggetto::Cancellazione,
    ]
    .iter()
    .map(|s| s.key().to_owned())
    .collect();
    for e in mobili {
        let storia: Vec<StoredVersion> = store
            .history(e, SezioneSoggetto::Competenza.key())
            .await
            .map_err(|x| reg.interno(x))?
            .into_iter()
            // A version replaced on its own effective date was never in force.
            .filter(|v| v.valido_al != Some(v.valido_dal))
            .collect();
        let mut precedente: Option<&StoredVersion> = None;
        let mut transizioni = Vec::new();
        for v in &storia {
            // A gap (the datum removed) is a change to "nothing".
            if let Some(p) = precedente {
                if p.valido_al.is_some_and(|a| a < v.valido_dal) {
                    transizioni.push((
                        Some(p),
                        None,
                        p.valido_al.unwrap_or(v.valido_dal),
                        p.chiusa_da,
                    ));
                    precedente = None;
                }
            }
            transizioni.push((precedente, Some(v), v.valido_dal, Some(v.creata_da)));
            precedente = Some(v);
        }
        if let Some(p) = precedente {
            if let Some(a) = p.valido_al {
                transizioni.push((Some(p), None, a, p.chiusa_da));
            }
        }
        for (prima, dopo, t, op) in transizioni {
            if t < dal || t > al {
                continue;
            }
            let prima_s = prima
                .and_then(|v| v.value.as_ref())
                .and_then(Stato::da_json);
            let dopo_s = dopo.and_then(|v| v.value.as_ref()).and_then(Stato::da_json);
            let era = prima_s
                .as_ref()
                .is_some_and(|s| s.comune == comune && s.posizione == "residente");
            let e_ora = dopo_s
                .as_ref()
                .is_some_and(|s| s.comune == comune && s.posizione == "residente");
            if era == e_ora {
                continue;
            }
            let Some(op) = op else { continue };
            if let std::collections::hash_map::Entry::Vacant(voce) = servizi.entry(op) {
                let s = store
                    .operation(op)
                    .await
                    .map_err(|x| reg.interno(x))?
                    .map(|o| o.codice_servizio.to_string())
                    .unwrap_or_default();
                voce.insert(s);
            }
            let servizio = servizi.get(&op).cloned().unwrap_or_default();
            // The record as it was on the day of the change (before it, for a departure's
            // sex and citizenship, which are the same).
            let letti = store
                .sezioni_di(&[e], &contesto_sezioni, Some(t))
                .await
                .map_err(|x| reg.interno(x))?;
            let scheda = match letti.into_iter().next() {
                Some((_, s)) => {
                    SchedaSoggetto::from_sections(s.iter()).map_err(|x| reg.interno(x))?
                }
                None => SchedaSoggetto::default(),
            };
            let luogo = scheda.generalita.as_ref().map(|g| match &g.luogo_nascita {
                anpr_domain::scheda::Luogo::Comune { codice_istat, .. } => {
                    Some(codice_istat.as_str().to_owned())
                }
                _ => None,
            });
            let atto = scheda
                .cancellazione
                .as_ref()
                .and_then(|c| c.atto_morte.as_ref())
                .map(|a| (a.comune_registrazione.as_str().to_owned(), a.trascritto));
            let motivo_iscrizione = scheda
                .iscrizione
                .as_ref()
                .map(|i| i.motivo_iscrizione.clone());
            let motivo_cancellazione = scheda
                .cancellazione
                .as_ref()
                .map(|c| c.motivo_cancellazione.clone());
            let ctx = Contesto {
                servizio: &servizio,
                motivo_iscrizione: motivo_iscrizione.as_deref(),
                motivo_cancellazione: motivo_cancellazione.as_deref(),
                luogo_nascita: luogo.as_ref().map(|l| l.as_deref()),
                atto_morte: atto.as_ref().map(|(c, t)| (c.as_str(), *t)),
            };
            let Some(tipo) =
                classifica::classifica(comune, prima_s.as_ref(), dopo_s.as_ref(), &ctx)
            else {
                continue;
            };
            let motivo = match tipo {
                Movimento::IscrittoAltriMotivi => motivo_iscrizione.clone(),
                Movimento::CancellatoAltriMotivi => motivo_cancellazione.clone(),
                _ => None,
            };
            out.push(MovimentoContato {
                tipo,
                maschio: scheda
                    .generalita
                    .as_ref()
                    .is_some_and(|g| g.sesso.code() == "M"),
                operazione: op,
                motivo,
            });
        }
    }
    Ok(out)
}

fn conta<'a>(it: impl Iterator<Item = &'a MovimentoContato>) -> Conteggio {
    let mut c = Conteggio::default();
    for m in it {
        c.add(m.maschio);
    }
    c
}

fn conta_residenti<'a>(it: impl Iterator<Item = &'a Residente>) -> Conteggio {
    let mut c = Conteggio::default();
    for r in it {
        c.add(r.maschio);
    }
    c
}

async fn calcola(
    reg: &Registry,
    store: &dyn Store,
    comune: &CodiceIstatComune,
    r: &RichiestaProspetto,
) -> Result<Prospetto, ServiceError> {
    let (dal, al) = r.periodo();
    let vigilia = dal.pred_opt().unwrap_or(dal);
    let versioni = store
        .versioni_per_campo(&QueryVersioniCampo {
            sezione: SezioneSoggetto::Competenza.key().into(),
            campo: "comune".into(),
            valore: comune.to_string(),
            dal: vigilia,
            al,
        })
        .await
        .map_err(|e| reg.interno(e))?;
    let residenti_a = |d: NaiveDate| -> Vec<EntityRef> {
        let mut v: Vec<EntityRef> = versioni
            .iter()
            .filter(|x| in_vigore(x, d))
            .filter(|x| {
                x.value
                    .as_ref()
                    .and_then(Stato::da_json)
                    .is_some_and(|s| s.posizione == "residente")
            })
            .map(|x| x.entity)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let oggi = reg.clock().today();
    let mut note = Vec::new();
    let provvisorio = al >= oggi;
    if provvisorio {
        note.push(format!(
            "Prospetto provvisorio: il periodo non è concluso ({oggi})."
        ));
    }
    let fine = residenti(reg, store, &residenti_a(al), al).await?;
    let mut righe = Vec::new();
    let mut dettaglio = Vec::new();
    let mut quadratura = None;
    let riga = |t: u8, id: u32, c: Conteggio| Riga {
        id_dato: id,
        descrizione: descrizione_riga(t, id),
        conteggio: c,
    };
    let famiglie = |f: &[Residente], convivenza: bool| {
        let ids: BTreeSet<u64> = f
            .iter()
            .filter(|x| x.convivenza == convivenza)
            .filter_map(|x| x.famiglia.map(|f| f.0))
            .collect();
        ids.len()
    };
    match r.tipologia {
        1 | 2 => {
            let inizio = residenti(reg, store, &residenti_a(vigilia), vigilia).await?;
            let mov = movimenti(reg, store, comune.as_str(), &versioni, dal, al).await?;
            let di = |t: Movimento| conta(mov.iter().filter(move |m| m.tipo == t));
            let p_inizio = conta_residenti(inizio.iter());
            let p_fine = conta_residenti(fine.iter());
            let nati = [
                Movimento::NatoStessoComune,
                Movimento::NatoAltroComune,
                Movimento::NatoEstero,
            ]
            .map(di);
            let morti = [
                Movimento::DecedutoStessoComune,
                Movimento::DecedutoAltroComune,
                Movimento::DecedutoEstero,
            ]
            .map(di);
            let tot_nati = nati[0].piu(nati[1]).piu(nati[2]);
            let tot_morti = morti[0].piu(morti[1]).piu(morti[2]);
            let isc = [
                Movimento::IscrittoAltroComune,
                Movimento::IscrittoEstero,
                Movimento::IscrittoAltriMotivi,
            ]
            .map(di);
            let can = [
                Movimento::CancellatoAltroComune,
                Movimento::CancellatoEstero,
                Movimento::CancellatoAltriMotivi,
            ]
            .map(di);
            let tot_isc = isc[0].piu(isc[1]).piu(isc[2]);
            let tot_can = can[0].piu(can[1]).piu(can[2]);
            let naturale = tot_nati.meno(tot_morti);
            let migratorio = tot_isc.meno(tot_can);
            let subentro = di(Movimento::Subentro);
            let in_famiglia = conta_residenti(fine.iter().filter(|x| !x.convivenza));
            let in_convivenza = conta_residenti(fine.iter().filter(|x| x.convivenza));
            let migr: Vec<&MovimentoContato> = mov.iter().filter(|m| m.tipo.migratorio()).collect();
            let pratiche: BTreeSet<IdOperazioneAnpr> = migr.iter().map(|m| m.operazione).collect();
            quadratura = Some(Quadratura {
                popolazione_inizio: p_inizio.totale_complessivo,
                saldo: naturale.piu(migratorio).totale_complessivo,
                popolazione_fine: p_fine.totale_complessivo,
                iscritti_subentro: subentro.totale_complessivo,
                differenza: p_fine.totale_complessivo
                    - (p_inizio.totale_complessivo
                        + naturale.piu(migratorio).totale_complessivo
                        + subentro.totale_complessivo),
            });
            if subentro.totale_complessivo > 0 {
                note.push(format!(
                    "{} soggetti caricati dal subentro nel periodo: non sono movimenti anagrafici.",
                    subentro.totale_complessivo
                ));
            }
            note.push("Variazioni territoriali non gestite: la riga relativa vale 0.".into());
            if r.tipologia == 1 {
                let t = 1;
                righe = vec![
                    riga(t, 1, p_inizio),
                    riga(t, 2, nati[0]),
                    riga(t, 3, nati[1]),
                    riga(t, 4, nati[2]),
                    riga(t, 5, tot_nati),
                    riga(t, 6, morti[0]),
                    riga(t, 7, morti[1]),
                    riga(t, 8, morti[2]),
                    riga(t, 9, tot_morti),
                    riga(t, 10, naturale),
                    riga(t, 11, isc[0]),
                    riga(t, 12, isc[1]),
                    riga(t, 13, isc[2]),
                    riga(t, 14, tot_isc),
                    riga(t, 15, can[0]),
                    riga(t, 16, can[1]),
                    riga(t, 17, can[2]),
                    riga(t, 18, tot_can),
                    riga(t, 19, migratorio),
                    riga(t, 20, naturale.piu(migratorio)),
                    riga(t, 21, Conteggio::default()),
                    riga(t, 22, in_famiglia),
                    riga(t, 23, in_convivenza),
                    riga(t, 24, p_fine),
                    riga(t, 25, Conteggio::solo_totale(pratiche.len())),
                    riga(t, 26, conta(migr.iter().copied())),
                    riga(t, 27, Conteggio::solo_totale(famiglie(&fine, false))),
                    riga(t, 28, Conteggio::solo_totale(famiglie(&fine, true))),
                ];
            } else {
                let t = 2;
                let per_motivo = |tipo: Movimento, motivi: &[&str]| {
                    conta(mov.iter().filter(move |m| {
                        m.tipo == tipo && m.motivo.as_deref().is_some_and(|x| motivi.contains(&x))
                    }))
                };
                let i_rett = per_motivo(Movimento::IscrittoAltriMotivi, &["7"]);
                let i_ripr = per_motivo(Movimento::IscrittoAltriMotivi, &["10"]);
                let i_altro = isc[2].meno(i_rett).meno(i_ripr);
                let c_rett = per_motivo(Movimento::CancellatoAltriMotivi, &["9"]);
                let c_irr = per_motivo(Movimento::CancellatoAltriMotivi, &["6"]);
                let c_art7 = per_motivo(Movimento::CancellatoAltriMotivi, &["7"]);
                let c_altro = can[2].meno(c_rett).meno(c_irr).meno(c_art7);
                // Foreign residents at the start who are Italian citizens at the end.
                let acquisizioni = {
                    let inizio_ids = residenti_a(vigilia);
                    let fine_ids: BTreeSet<EntityRef> = residenti_a(al).into_iter().collect();
                    let entrambi: Vec<EntityRef> = inizio_ids
                        .into_iter()
                        .filter(|e| fine_ids.contains(e))
                        .collect();
                    let prima = residenti(reg, store, &entrambi, vigilia).await?;
                    let dopo = residenti(reg, store, &entrambi, al).await?;
                    let mut c = Conteggio::default();
                    for (p, d) in prima.iter().zip(dopo.iter()) {
                        if p.straniero && !d.straniero && d.cittadinanza.is_some() {
                            c.add(d.maschio);
                        }
                    }
                    c
                };
                let limite_minori = NaiveDate::from_ymd_opt(r.anno - 18, 12, 31)
                    .map(|d| d.year())
                    .unwrap_or(0);
                let stranieri_fine: Vec<&Residente> = fine.iter().filter(|x| x.straniero).collect();
                let famiglie_con_stranieri = {
                    let ids: BTreeSet<u64> = fine
                        .iter()
                        .filter(|x| !x.convivenza && x.straniero)
                        .filter_map(|x| x.famiglia.map(|f| f.0))
                        .collect();
                    ids.len()
                };
                let intestatari_stranieri = fine
                    .iter()
                    .filter(|x| !x.convivenza && x.straniero && x.famiglia.is_some_and(|f| f.1))
                    .count();
                righe = vec![
                    riga(t, 1, p_inizio),
                    riga(t, 2, nati[0]),
                    riga(t, 3, nati[1]),
                    riga(t, 4, nati[2]),
                    riga(t, 5, tot_nati),
                    riga(t, 6, morti[0]),
                    riga(t, 7, morti[1]),
                    riga(t, 8, morti[2]),
                    riga(t, 9, tot_morti),
                    riga(t, 10, naturale),
                    riga(t, 11, isc[0]),
                    riga(t, 12, isc[1]),
                    riga(t, 13, i_rett),
                    riga(t, 14, i_ripr),
                    riga(t, 15, i_altro),
                    riga(t, 16, isc[2]),
                    riga(t, 17, tot_isc),
                    riga(t, 18, can[0]),
                    riga(t, 19, can[1]),
                    riga(t, 20, c_rett),
                    riga(t, 21, c_irr),
                    riga(t, 22, c_art7),
                    riga(t, 23, c_altro),
                    riga(t, 24, can[2]),
                    riga(t, 25, acquisizioni),
                    riga(t, 26, tot_can),
                    riga(t, 27, migratorio),
                    riga(t, 28, naturale.piu(migratorio)),
                    riga(t, 29, Conteggio::default()),
                    riga(t, 30, p_fine),
                    riga(t, 31, in_famiglia),
                    riga(t, 32, in_convivenza),
                    riga(t, 33, p_fine),
                    riga(
                        t,
                        34,
                        conta_residenti(
                            stranieri_fine
                                .iter()
                                .copied()
                                .filter(|x| x.anno_nascita.is_some_and(|a| a > limite_minori)),
                        ),
                    ),
                    riga(
                        t,
                        35,
                        conta_residenti(
                            stranieri_fine.iter().copied().filter(|x| x.nato_in_italia),
                        ),
                    ),
                    riga(t, 36, Conteggio::solo_totale(famiglie(&fine, false))),
                    riga(t, 37, Conteggio::solo_totale(famiglie_con_stranieri)),
                    riga(t, 38, Conteggio::solo_totale(intestatari_stranieri)),
                    riga(t, 39, Conteggio::solo_totale(famiglie(&fine, true))),
                    riga(
                        t,
                        40,
                        conta_residenti(fine.iter().filter(|x| x.senza_fissa_dimora)),
                    ),
                ];
                note.push(
                    "Riga 25: stranieri residenti a inizio e fine anno divenuti cittadini italiani nell'anno.".into(),
                );
            }
        }
        3 => {
            let mut per_stato: BTreeMap<String, Conteggio> = BTreeMap::new();
            for x in fine.iter().filter(|x| x.straniero) {
                per_stato
                    .entry(x.cittadinanza.clone().unwrap_or_default())
                    .or_default()
                    .add(x.maschio);
            }
            righe = vec![riga(
                3,
                1,
                conta_residenti(fine.iter().filter(|x| x.straniero)),
            )];
            dettaglio = per_stato
                .into_iter()
                .map(|(s, c)| RigaDettaglio {
                    codice_stato: Some(s),
                    anno_nascita: None,
                    stato_civile: None,
                    conteggio: c,
                })
                .collect();
        }
        4 | 5 => {
            let stranieri = r.tipologia == 5;
            let scelti: Vec<&Residente> =
                fine.iter().filter(|x| !stranieri || x.straniero).collect();
            let mut per: BTreeMap<(i32, Option<String>), Conteggio> = BTreeMap::new();
            for x in &scelti {
                let sc = if stranieri {
                    None
                } else {
                    x.stato_civile.clone()
                };
                per.entry((x.anno_nascita.unwrap_or(0), sc))
                    .or_default()
                    .add(x.maschio);
            }
            let tot = conta_residenti(scelti.iter().copied());
            righe = vec![
                riga(r.tipologia, 1, tot),
                riga(
                    r.tipologia,
                    2,
                    Conteggio::solo_totale(usize::try_from(tot.totale_maschi).unwrap_or(0)),
                ),
                riga(
                    r.tipologia,
                    3,
                    Conteggio::solo_totale(usize::try_from(tot.totale_femmine).unwrap_or(0)),
                ),
            ];
            dettaglio = per
                .into_iter()
                .map(|((anno, sc), c)| RigaDettaglio {
                    codice_stato: None,
                    anno_nascita: Some(anno),
                    stato_civile: sc,
                    conteggio: c,
                })
                .collect();
        }
        _ => {}
    }
    Ok(Prospetto {
        comune: comune.clone(),
        tipologia_prospetto: r.tipologia,
        descrizione: descrizione_prospetto(r.tipologia),
        anno: r.anno,
        mese: r.mese,
        dal,
        al,
        provvisorio,
        calcolato_il: reg.clock().now(),
        righe,
        dettaglio,
        quadratura,
        note,
    })
}
