//! Family and cohabitation records (SPEC M-1.2, M-2.1–M-2.3): change of a family or
//! cohabitation (service 5001: new head, relationships, merge with members of other
//! families, split into a new family, address, cohabitation data), registration of a
//! cohabitation record (1010) and its archiving (2009).
//!
//! Requests are shaped after `Richiesta5001`, `Richiesta1010`, `Richiesta2009`.

use std::collections::BTreeMap;

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdComunale};
use anpr_domain::scheda::{
    DatiFamiglia, Indirizzo, Intestatario, PosizioneAnagrafica, Residenza, SchedaFamiglia,
    StatoFamiglia, TipoScheda, RELAZIONE_INTESTATARIO,
};
use anpr_store::{Sequence, Store};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::authz::Permesso;
use crate::lavoro::{legame, FamigliaCorrente, Modifiche, SoggettoCorrente};
use crate::mutazione::CODICE_NESSUNA_MODIFICA;
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::residenza::{nuova_famiglia, SoggettoMovimentato};
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// Members leaving a family to form a new one at the same address.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scissione {
    pub soggetti: Vec<SoggettoMovimentato>,
    pub id_famiglia_convivenza_comune: Option<String>,
}

/// General data of a cohabitation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiConvivenza {
    pub denominazione_convivenza: Option<String>,
    /// Code of "Specie convivenza".
    pub specie_convivenza: Option<String>,
}

/// Request of service 5001.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta5001 {
    pub id_operazione_comune: Option<String>,
    pub data_decorrenza: String,
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: String,
    /// Codes of "Tipo mutazione famiglia convivenza" the request declares.
    #[serde(default)]
    pub tipo_mutazione: Vec<String>,
    /// Members with their new relationship, and subjects of other families of the
    /// municipality who join this one (merge).
    #[serde(default)]
    pub elenco_soggetti_famiglia: Vec<SoggettoMovimentato>,
    pub scissione: Option<Scissione>,
    /// New address of the whole family (all members move with it).
    pub residenza: Option<Indirizzo>,
    pub dati_convivenza: Option<DatiConvivenza>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Request of service 1010.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta1010 {
    pub id_operazione_comune: Option<String>,
    pub data_decorrenza: String,
    pub denominazione_convivenza: String,
    /// Code of "Specie convivenza".
    pub specie_convivenza: String,
    pub residenza: Indirizzo,
    pub id_famiglia_convivenza_comune: Option<String>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Request of service 2009.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta2009 {
    pub id_operazione_comune: Option<String>,
    pub data_decorrenza: String,
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: String,
}

impl Registry {
    /// Service 5001: change of a family or cohabitation.
    pub async fn mutazione_famiglia(
        &self,
        ctx: &CallerContext,
        req: &Richiesta5001,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "5001",
            Permesso::Mutazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_5001(&*store, &comune, req).await
        })
        .await
    }

    /// Service 1010: registration of a cohabitation record.
    pub async fn iscrizione_convivenza(
        &self,
        ctx: &CallerContext,
        req: &Richiesta1010,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "1010",
            Permesso::Iscrizione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_1010(&*store, &comune, req).await
        })
        .await
    }

    /// Service 2009: archiving of an empty cohabitation record.
    pub async fn archiviazione_convivenza(
        &self,
        ctx: &CallerContext,
        req: &Richiesta2009,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "2009",
            Permesso::Cancellazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            let mut e = Vec::new();
            let data = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
            v::non_futura("dataDecorrenza", data, self.clock().today(), &mut e);
            let f = self
                .carica_famiglia(&*store, "idFamigliaConvivenzaANPR", &req.id_famiglia_convivenza_anpr, Some(&comune))
                .await
                .map_err(|a| vec![a])?;
            if f.tipo() != TipoScheda::Convivenza || !f.attiva() {
                e.push(
                    Anomalia::errore("EN135", "Identificativo Convivenza non valido o di competenza di altro comune")
                        .campo("idFamigliaConvivenzaANPR")
                        .valore(f.id.to_string())
                        .atteso("una convivenza attiva del comune"),
                );
            }
            if !f.componenti.is_empty() {
                e.push(
                    Anomalia::errore("EN126", "Per archiviare una famiglia/convivenza non devono essere associati ad essa componenti")
                        .campo("idFamigliaConvivenzaANPR")
                        .valore(format!("{} componenti", f.componenti.len())),
                );
            }
            let (Some(data), true) = (data, e.is_empty()) else {
                return Err(e);
            };
            let mut dopo = f.scheda.clone();
            dopo.stato = Some(StatoFamiglia::Archiviata);
            let mut m = Modifiche::default();
            m.famiglia(f.id, &f.scheda, &dopo);
            Ok(m.piano(data, Vec::new()))
        })
        .await
    }

    async fn decidi_1010(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta1010,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let mut e = Vec::new();
        let data = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", data, self.clock().today(), &mut e);
        v::codice_tabella(
            t,
            "specie_convivenza",
            &req.specie_convivenza,
            None,
            "EC005",
            "Codice specie convivenza",
            "specieConvivenza",
            &mut e,
        );
        v::indirizzo_nel_comune(t, "residenza", &req.residenza, comune, data, &mut e);
        let mut avvertimenti = Vec::new();
        if req.denominazione_convivenza.trim().is_empty() {
            avvertimenti.push(
                Anomalia::avvertimento("EN480", "La denominazione della convivenza e' assente")
                    .campo("denominazioneConvivenza"),
            );
        }
        let id_comunale = id_comunale(
            "idFamigliaConvivenzaComune",
            req.id_famiglia_convivenza_comune.as_deref(),
            &mut e,
        );
        let (Some(data), true) = (data, e.is_empty()) else {
            return Err(e);
        };
        let id = nuovo_id_famiglia(self, store).await?;
        let scheda = SchedaFamiglia {
            dati: Some(DatiFamiglia {
                tipo_scheda: TipoScheda::Convivenza,
                comune: comune.clone(),
                id_famiglia_convivenza_comune: id_comunale,
                famiglia_aire: false,
                data_origine_famiglia_convivenza: data,
                motivo_costituzione: None,
                denominazione_convivenza: Some(req.denominazione_convivenza.trim().to_owned())
                    .filter(|d| !d.is_empty()),
                specie_convivenza: Some(req.specie_convivenza.clone()),
            }),
            intestatario: None,
            residenza: Some(residenza_italiana(&req.residenza, data)),
            stato: Some(StatoFamiglia::Attiva),
        };
        let mut m = Modifiche::default();
        m.famiglia(id, &SchedaFamiglia::default(), &scheda);
        Ok(m.piano(data, avvertimenti))
    }

    async fn decidi_5001(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta5001,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let mut e = Vec::new();
        let data = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", data, self.clock().today(), &mut e);
        for (i, c) in req.tipo_mutazione.iter().enumerate() {
            v::codice_tabella(
                t,
                "tipo_mutazione_famiglia_convivenza",
                c,
                None,
                "EN371",
                "Tipo mutazione famiglia convivenza",
                &format!("tipoMutazione[{i}]"),
                &mut e,
            );
        }
        let f = self
            .carica_famiglia(
                store,
                "idFamigliaConvivenzaANPR",
                &req.id_famiglia_convivenza_anpr,
                Some(comune),
            )
            .await
            .map_err(|a| vec![a])?;
        if !f.attiva() {
            e.push(
                Anomalia::errore("EF002", "Identificativo scheda famiglia/convivenza attribuito da ANPR non trovato o scheda famiglia archiviata")
                    .campo("idFamigliaConvivenzaANPR")
                    .valore(f.id.to_string()),
            );
        }
        if let Some(r) = &req.residenza {
            v::indirizzo_nel_comune(t, "residenza", r, comune, data, &mut e);
        }
        let convivenza = f.tipo() == TipoScheda::Convivenza;
        if let Some(d) = &req.dati_convivenza {
            if !convivenza {
                e.push(
                    Anomalia::errore("EN342", "Il tipo scheda della convivenza deve essere = 4")
                        .campo("datiConvivenza")
                        .atteso("una scheda convivenza"),
                );
            }
            if let Some(s) = &d.specie_convivenza {
                v::codice_tabella(
                    t,
                    "specie_convivenza",
                    s,
                    None,
                    "EC005",
                    "Codice specie convivenza",
                    "datiConvivenza.specieConvivenza",
                    &mut e,
                );
            }
        }
        let (Some(data), true) = (data, e.is_empty()) else {
            return Err(e);
        };
        // Membership after the change: subject → relationship.
        let mut membri: BTreeMap<IdAnprSoggetto, String> = f.componenti.clone();
        let mut caricati: BTreeMap<IdAnprSoggetto, SoggettoCorrente> = BTreeMap::new();
        let mut altre: BTreeMap<IdAnprFamiglia, FamigliaCorrente> = BTreeMap::new();
        let mut m = Modifiche::default();
        let mut avvertimenti = Vec::new();
        let (tab, cod, descr) = if convivenza {
            (
                "legame_convivenza",
                "EC003",
                "Codice legame scheda convivenza",
            )
        } else {
            (
                "relazione_parentela",
                "EC002",
                "Codice relazione di parentela",
            )
        };
        for (i, x) in req.elenco_soggetti_famiglia.iter().enumerate() {
            let campo = format!("elencoSoggettiFamiglia[{i}]");
            let s = match self
                .carica_soggetto(store, &campo, &x.soggetto, Some(comune))
                .await
            {
                Ok(s) => s,
                Err(a) => {
                    e.push(a);
                    continue;
                }
            };
            let Some(codice) = &x.codice_legame else {
                e.push(Anomalia::errore("EF006", "Indicare obbligatoriamente i dati del legame soggetto con la famiglia di appartenenza").campo(format!("{campo}.codiceLegame")));
                continue;
            };
            v::codice_tabella(
                t,
                tab,
                codice,
                None,
                cod,
                descr,
                &format!("{campo}.codiceLegame"),
                &mut e,
            );
            if s.posizione() != Some(PosizioneAnagrafica::Residente) {
                e.push(
                    Anomalia::errore(
                        crate::lavoro::CODICE_POSIZIONE_NON_AMMESSA,
                        format!("Il soggetto {} non e' residente", s.id),
                    )
                    .campo(&campo)
                    .atteso("un soggetto residente del comune"),
                );
                continue;
            }
            if let Some(altra) = s.famiglia().filter(|id| *id != f.id) {
                // Merge: the subject leaves its family and joins this one.
                if let std::collections::btree_map::Entry::Vacant(slot) = altre.entry(altra) {
                    match self
                        .carica_famiglia_id(store, &campo, altra, Some(comune))
                        .await
                    {
                        Ok(af) => {
                            slot.insert(af);
                        }
                        Err(a) => {
                            e.push(a);
                            continue;
                        }
                    }
                }
            }
            membri.insert(s.id, codice.clone());
            caricati.insert(s.id, s);
        }
        // Split: these members leave for a new family at the same address.
        let mut nuova: Option<(
            IdAnprFamiglia,
            BTreeMap<IdAnprSoggetto, String>,
            Option<IdComunale>,
        )> = None;
        if let Some(sc) = &req.scissione {
            let mut nm = BTreeMap::new();
            for (i, x) in sc.soggetti.iter().enumerate() {
                let campo = format!("scissione.soggetti[{i}]");
                let s = match self
                    .carica_soggetto(store, &campo, &x.soggetto, Some(comune))
                    .await
                {
                    Ok(s) => s,
                    Err(a) => {
                        e.push(a);
                        continue;
                    }
                };
                if s.famiglia() != Some(f.id) {
                    e.push(
                        Anomalia::errore(
                            "EF044",
                            "I soggetti devono appartenere alla stessa famiglia dichiarata",
                        )
                        .campo(&campo)
                        .valore(s.id.to_string()),
                    );
                    continue;
                }
                let Some(codice) = &x.codice_legame else {
                    e.push(Anomalia::errore("EF006", "Indicare obbligatoriamente i dati del legame soggetto con la famiglia di appartenenza").campo(format!("{campo}.codiceLegame")));
                    continue;
                };
                v::codice_tabella(
                    t,
                    "relazione_parentela",
                    codice,
                    None,
                    "EC002",
                    "Codice relazione di parentela",
                    &format!("{campo}.codiceLegame"),
                    &mut e,
                );
                membri.remove(&s.id);
                nm.insert(s.id, codice.clone());
                caricati.insert(s.id, s);
            }
            if !nm.is_empty() {
                check_intestatario("scissione.soggetti", &nm, false, &mut e);
                let idc = id_comunale(
                    "scissione.idFamigliaConvivenzaComune",
                    sc.id_famiglia_convivenza_comune.as_deref(),
                    &mut e,
                );
                nuova = Some((nuovo_id_famiglia(self, store).await?, nm, idc));
            }
        }
        check_intestatario("elencoSoggettiFamiglia", &membri, convivenza, &mut e);
        let vecchio = f
            .componenti
            .iter()
            .find(|(_, c)| c.as_str() == RELAZIONE_INTESTATARIO)
            .map(|(id, _)| *id);
        let nuovo = membri
            .iter()
            .find(|(_, c)| c.as_str() == RELAZIONE_INTESTATARIO)
            .map(|(id, _)| *id);
        if let (Some(v_), Some(n)) = (vecchio, nuovo) {
            if v_ != n && membri.contains_key(&v_) && !caricati.contains_key(&v_) {
                e.push(
                    Anomalia::errore("EN482", "In caso di variazione intestatario scheda, la lista dei soggetti deve contenere anche il precedente intestatario con la nuova relazione di parentela")
                        .campo("elencoSoggettiFamiglia")
                        .valore(v_.to_string()),
                );
            }
        }
        if !e.is_empty() {
            return Err(e);
        }
        // Load the members not named in the request whose record still changes (a new
        // family address moves everyone).
        let famiglia_residenza = req.residenza.as_ref().map(|r| residenza_italiana(r, data));
        if famiglia_residenza.is_some() {
            for id in membri.keys() {
                if !caricati.contains_key(id) {
                    let chi = crate::lavoro::SoggettoPerRicerca {
                        id_scheda_soggetto_anpr: Some(id.to_string()),
                        codice_fiscale: None,
                    };
                    let s = self
                        .carica_soggetto(store, "componenti", &chi, None)
                        .await
                        .map_err(|a| vec![a])?;
                    caricati.insert(*id, s);
                }
            }
        }
        let mut dopo = f.scheda.clone();
        if let Some(r) = &famiglia_residenza {
            dopo.residenza = Some(r.clone());
        }
        if let (Some(d), Some(dc)) = (dopo.dati.as_mut(), &req.dati_convivenza) {
            if dc.denominazione_convivenza.is_some() {
                d.denominazione_convivenza = dc.denominazione_convivenza.clone();
            }
            if dc.specie_convivenza.is_some() {
                d.specie_convivenza = dc.specie_convivenza.clone();
            }
        }
        if nuovo != vecchio {
            dopo.intestatario = nuovo.map(|id| Intestatario {
                id_anpr: id,
                data_decorrenza: data,
            });
        }
        if dopo == f.scheda && caricati.is_empty() {
            return Err(vec![Anomalia::errore(
                CODICE_NESSUNA_MODIFICA,
                "La richiesta non modifica la famiglia",
            )
            .campo("idFamigliaConvivenzaANPR")]);
        }
        for (id, s) in &caricati {
            let mut sd = s.scheda.clone();
            if let Some(codice) = membri.get(id) {
                let invariato = s.famiglia() == Some(f.id) && f.componenti.get(id) == Some(codice);
                if !invariato {
                    sd.legame = Some(legame(f.id, f.tipo(), codice, data));
                }
                if let Some(r) = &famiglia_residenza {
                    sd.residenza = Some(r.clone());
                } else if s.famiglia() != Some(f.id) {
                    sd.residenza = f.scheda.residenza.clone().map(|mut r| {
                        r.data_decorrenza_residenza = data;
                        r
                    });
                }
            } else if let Some((nid, nm, _)) = &nuova {
                if let Some(codice) = nm.get(id) {
                    sd.legame = Some(legame(*nid, TipoScheda::Famiglia, codice, data));
                }
            }
            m.soggetto(*id, &s.scheda, &sd);
        }
        m.famiglia(f.id, &f.scheda, &dopo);
        // Families that gave members: archived when emptied, warned when headless.
        for (id, af) in &altre {
            let (ad, senza_intestatario) = af.dopo_uscita(|s| membri.contains_key(s));
            if senza_intestatario {
                avvertimenti.push(
                    Anomalia::avvertimento("EN225", "Aggiornare la famiglia di provenienza indicando un nuovo intestatario ed eventualmente i relativi rapporti di parentela")
                        .campo("elencoSoggettiFamiglia")
                        .valore(id.to_string()),
                );
            }
            m.famiglia(*id, &af.scheda, &ad);
        }
        if let Some((nid, nm, idc)) = nuova {
            let head = nm
                .iter()
                .find(|(_, c)| c.as_str() == RELAZIONE_INTESTATARIO)
                .map(|(id, _)| *id);
            let res = dopo.residenza.clone().unwrap_or_else(|| Residenza {
                tipo_indirizzo: "1".into(),
                indirizzo: None,
                indirizzo_estero: None,
                presso: None,
                note_indirizzo: None,
                data_decorrenza_residenza: data,
            });
            if let Some(head) = head {
                let nf = nuova_famiglia(comune, idc, head, data, &res);
                m.famiglia(nid, &SchedaFamiglia::default(), &nf);
            }
        }
        Ok(m.piano(data, avvertimenti))
    }
}

/// Exactly one head in a family; at most one person in charge in a cohabitation.
fn check_intestatario(
    campo: &str,
    membri: &BTreeMap<IdAnprSoggetto, String>,
    convivenza: bool,
    e: &mut Vec<Anomalia>,
) {
    let n = membri
        .values()
        .filter(|c| c.as_str() == RELAZIONE_INTESTATARIO)
        .count();
    if n > 1 {
        e.push(
            Anomalia::errore(
                "EF009",
                "Intestatario della scheda famiglia/convivenza non univoco",
            )
            .campo(campo)
            .valore(n.to_string())
            .atteso("un solo soggetto con codice legame 1"),
        );
    } else if n == 0 && !convivenza && !membri.is_empty() {
        e.push(
            Anomalia::errore(
                "EF008",
                "Intestatario della scheda famiglia/convivenza assente",
            )
            .campo(campo)
            .atteso("un soggetto con codice legame 1"),
        );
    }
}

fn id_comunale(campo: &str, s: Option<&str>, e: &mut Vec<Anomalia>) -> Option<IdComunale> {
    s.and_then(|s| {
        s.parse::<IdComunale>()
            .map_err(|x| e.push(Anomalia::from_invalid(campo, &x)))
            .ok()
    })
}

async fn nuovo_id_famiglia(
    r: &Registry,
    store: &dyn Store,
) -> Result<IdAnprFamiglia, Vec<Anomalia>> {
    IdAnprFamiglia::new(
        store
            .next_id(Sequence::Famiglia)
            .await
            .map_err(|x| vec![r.anomalia_interna(x)])?,
    )
    .map_err(|x| vec![r.anomalia_interna(x)])
}

/// An Italian residence address from `data`.
pub(crate) fn residenza_italiana(ind: &Indirizzo, data: NaiveDate) -> Residenza {
    Residenza {
        tipo_indirizzo: "1".into(),
        indirizzo: Some(ind.clone()),
        indirizzo_estero: None,
        presso: None,
        note_indirizzo: None,
        data_decorrenza_residenza: data,
    }
}
