//! Shared machinery of the operations that change existing records: load a record as it
//! is now, let the use case change it as a value, and turn the difference into section
//! writes and index rows ([`Modifiche`]). An operation therefore writes exactly the
//! sections it changed, and annulling it restores exactly those.

use std::collections::BTreeMap;

use anpr_domain::error::Anomalia;
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto};
use anpr_domain::scheda::{
    Componenti, Legame, PosizioneAnagrafica, SchedaFamiglia, SchedaSoggetto, SezioneFamiglia,
    SezioneSoggetto, StatoFamiglia, TipoScheda,
};
use anpr_store::{
    EntityRef, FamilyIndex, IndexWrite, NewOutboxMessage, SectionWrite, Store, SubjectIndex,
    SubjectQuery,
};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::operazioni::Piano;
use crate::Registry;

/// ANPR code for a subject id not present in the registry.
pub const CODICE_SOGGETTO_INESISTENTE: &str = "ES101";
/// ANPR code for a codice fiscale not present in the registry.
pub const CODICE_CF_INESISTENTE: &str = "ES102";
/// ANPR code for a subject record of another municipality's competence.
pub const CODICE_NON_DI_COMPETENZA: &str = "EN117";
/// ANPR code for a family id not found (or archived).
pub const CODICE_FAMIGLIA_NON_TROVATA: &str = "EF002";
/// ANPR code for a family of another municipality's competence.
pub const CODICE_FAMIGLIA_ALTRO_COMUNE: &str = "EN119";
/// Our code for a record in a position the operation does not apply to (e.g. already
/// cancelled).
pub const CODICE_POSIZIONE_NON_AMMESSA: &str = "EV037";
/// Our code for a request that identifies nobody, or two different subjects.
pub const CODICE_SOGGETTO_NON_IDENTIFICATO: &str = "EV038";

/// How a request names an existing subject (`generalitaPerRicerca`): by national id or
/// by codice fiscale; when both are given they must name the same subject.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SoggettoPerRicerca {
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<String>,
    pub codice_fiscale: Option<String>,
}

/// A subject as loaded for a change: its id, current record and index row.
#[derive(Debug, Clone)]
pub struct SoggettoCorrente {
    pub id: IdAnprSoggetto,
    pub scheda: SchedaSoggetto,
}

impl SoggettoCorrente {
    pub fn posizione(&self) -> Option<PosizioneAnagrafica> {
        self.scheda.competenza.as_ref().map(|c| c.posizione)
    }

    pub fn comune(&self) -> Option<&CodiceIstatComune> {
        self.scheda.competenza.as_ref().map(|c| &c.comune)
    }

    /// The subject as the other party named on a record (parent, spouse): registry id,
    /// codice fiscale and name as they are now.
    pub fn come_persona(&self) -> anpr_domain::scheda::Genitore {
        let g = self.scheda.generalita.as_ref();
        anpr_domain::scheda::Genitore {
            id_anpr: Some(self.id),
            codice_fiscale: self.scheda.codice_fiscale.as_ref().map(|c| c.cod_fiscale),
            cognome: g.and_then(|g| g.cognome.clone()),
            nome: g.and_then(|g| g.nome.clone()),
        }
    }

    /// An event of the subject dated `d` cannot precede its birth (ES008).
    pub fn non_prima_della_nascita(&self, d: NaiveDate, campo: &str, e: &mut Vec<Anomalia>) {
        if let Some(n) = self.scheda.generalita.as_ref().map(|g| g.data_nascita.data) {
            if n > d {
                e.push(
                    Anomalia::errore(
                        "ES008",
                        format!("Data di nascita {n} successiva alla data decorrenza operazione"),
                    )
                    .campo(campo)
                    .valore(d.to_string())
                    .atteso(format!("una data non anteriore al {n}")),
                );
            }
        }
    }

    pub fn famiglia(&self) -> Option<IdAnprFamiglia> {
        self.scheda
            .legame
            .as_ref()
            .map(|l| l.id_famiglia_convivenza_anpr)
    }
}

/// A family or cohabitation as loaded for a change, with its members now.
#[derive(Debug, Clone)]
pub struct FamigliaCorrente {
    pub id: IdAnprFamiglia,
    pub scheda: SchedaFamiglia,
    pub componenti: Componenti,
}

impl FamigliaCorrente {
    pub fn comune(&self) -> Option<&CodiceIstatComune> {
        self.scheda.dati.as_ref().map(|d| &d.comune)
    }

    pub fn attiva(&self) -> bool {
        self.scheda.stato == Some(StatoFamiglia::Attiva)
    }

    pub fn tipo(&self) -> TipoScheda {
        self.scheda
            .dati
            .as_ref()
            .map_or(TipoScheda::Famiglia, |d| d.tipo_scheda)
    }

    /// The record after the members `esce` selects have left: an emptied family is
    /// archived (a cohabitation, an institution, stays until archived with 2009). The
    /// flag says whether members are left behind without their head.
    pub fn dopo_uscita(&self, esce: impl Fn(&IdAnprSoggetto) -> bool) -> (SchedaFamiglia, bool) {
        let mut restano = self
            .componenti
            .iter()
            .filter(|(id, _)| !esce(id))
            .peekable();
        let mut dopo = self.scheda.clone();
        if restano.peek().is_none() {
            if self.tipo() == TipoScheda::Famiglia {
                dopo.stato = Some(StatoFamiglia::Archiviata);
            }
            return (dopo, false);
        }
        let senza_intestatario =
            !restano.any(|(_, c)| c == anpr_domain::scheda::RELAZIONE_INTESTATARIO);
        (dopo, senza_intestatario)
    }
}

/// The index row of a subject, derived from its record (so it can never disagree with
/// it).
pub fn indice_soggetto(id: IdAnprSoggetto, s: &SchedaSoggetto) -> Option<SubjectIndex> {
    let competenza = s.competenza.as_ref()?;
    let g = s.generalita.as_ref();
    Some(SubjectIndex {
        id,
        comune: competenza.comune.clone(),
        posizione: competenza.posizione.code().into(),
        codice_fiscale: s
            .codice_fiscale
            .as_ref()
            .map(|c| c.cod_fiscale.as_str().to_owned()),
        cognome_key: g.and_then(|g| g.cognome.as_ref()).map(|n| n.key()),
        nome_key: g.and_then(|g| g.nome.as_ref()).map(|n| n.key()),
        sesso: g.map(|g| g.sesso.code().into()),
        data_nascita: g.map(|g| g.data_nascita.data),
        id_comunale: competenza
            .id_scheda_soggetto_comune
            .as_ref()
            .map(|i| i.to_string()),
        id_famiglia: s.legame.as_ref().map(|l| l.id_famiglia_convivenza_anpr),
        chiave_indirizzo: s
            .residenza
            .as_ref()
            .and_then(|r| r.indirizzo.as_ref())
            .map(|i| i.chiave_edificio()),
    })
}

/// The index row of a family or cohabitation, derived from its record.
pub fn indice_famiglia(id: IdAnprFamiglia, f: &SchedaFamiglia) -> Option<FamilyIndex> {
    let dati = f.dati.as_ref()?;
    Some(FamilyIndex {
        id,
        comune: dati.comune.clone(),
        tipo: match dati.tipo_scheda {
            TipoScheda::Famiglia => "F".into(),
            TipoScheda::Convivenza => "C".into(),
        },
        stato: match f.stato {
            Some(StatoFamiglia::Archiviata) => "X".into(),
            _ => "A".into(),
        },
        id_comunale: dati
            .id_famiglia_convivenza_comune
            .as_ref()
            .map(|i| i.to_string()),
        chiave_indirizzo: f
            .residenza
            .as_ref()
            .and_then(|r| r.indirizzo.as_ref())
            .map(|i| i.chiave_edificio()),
    })
}

/// The writes of one operation, accumulated record by record.
#[derive(Debug, Default)]
pub struct Modifiche {
    writes: Vec<SectionWrite>,
    indexes: BTreeMap<EntityRef, IndexWrite>,
    soggetti: Vec<IdAnprSoggetto>,
    famiglie: Vec<IdAnprFamiglia>,
    pub outbox: Vec<NewOutboxMessage>,
}

impl Modifiche {
    /// Records the change of a subject from `prima` (empty for a new one) to `dopo`:
    /// one write per changed section (absent in `dopo` = closed) and the index row.
    pub fn soggetto(&mut self, id: IdAnprSoggetto, prima: &SchedaSoggetto, dopo: &SchedaSoggetto) {
        let entity = EntityRef::Soggetto(id);
        for kind in SezioneSoggetto::ALL {
            let (a, b) = (prima.section_json(*kind), dopo.section_json(*kind));
            if a != b {
                let key = match (kind, &dopo.legame) {
                    (SezioneSoggetto::Legame, Some(l)) => {
                        Some(l.id_famiglia_convivenza_anpr.to_string())
                    }
                    _ => None,
                };
                self.writes.push(SectionWrite {
                    entity,
                    section: kind.key().to_owned(),
                    value: b,
                    key,
                });
            }
        }
        if let Some(index) = indice_soggetto(id, dopo) {
            self.indexes.insert(entity, IndexWrite::Soggetto(index));
        }
        if !self.soggetti.contains(&id) {
            self.soggetti.push(id);
        }
    }

    /// Records the change of a family from `prima` to `dopo`. The index row is always
    /// written, so an operation that only changes the membership is linked to the
    /// family too (and annulments on it stay newest first).
    pub fn famiglia(&mut self, id: IdAnprFamiglia, prima: &SchedaFamiglia, dopo: &SchedaFamiglia) {
        let entity = EntityRef::Famiglia(id);
        for kind in SezioneFamiglia::ALL {
            let (a, b) = (prima.section_json(*kind), dopo.section_json(*kind));
            if a != b {
                self.writes.push(SectionWrite {
                    entity,
                    section: kind.key().to_owned(),
                    value: b,
                    key: None,
                });
            }
        }
        if let Some(index) = indice_famiglia(id, dopo) {
            self.indexes.insert(entity, IndexWrite::Famiglia(index));
        }
        if !self.famiglie.contains(&id) {
            self.famiglie.push(id);
        }
    }

    pub fn soggetti(&self) -> &[IdAnprSoggetto] {
        &self.soggetti
    }

    /// The plan of the operation.
    pub fn piano(self, decorrenza: NaiveDate, avvertimenti: Vec<Anomalia>) -> Piano {
        Piano {
            decorrenza: Some(decorrenza),
            writes: self.writes,
            indexes: self.indexes.into_values().collect(),
            outbox: self.outbox,
            soggetti: self.soggetti,
            famiglie: self.famiglie,
            avvertimenti,
            annulla: None,
            procedimenti: Vec::new(),
        }
    }
}

/// A family membership for a subject from `data`.
pub fn legame(famiglia: IdAnprFamiglia, tipo: TipoScheda, codice: &str, data: NaiveDate) -> Legame {
    Legame {
        id_famiglia_convivenza_anpr: famiglia,
        tipo_legame: tipo,
        codice_legame: codice.to_owned(),
        data_decorrenza: data,
    }
}

impl Registry {
    /// Loads the current record of a subject named by a request, checking that it is
    /// of `comune`'s competence when given.
    pub(crate) async fn carica_soggetto(
        &self,
        store: &dyn Store,
        campo: &str,
        chi: &SoggettoPerRicerca,
        comune: Option<&CodiceIstatComune>,
    ) -> Result<SoggettoCorrente, Anomalia> {
        let by_id = match chi.id_scheda_soggetto_anpr.as_deref() {
            Some(raw) => Some(raw.trim().parse::<IdAnprSoggetto>().map_err(|e| {
                Anomalia::from_invalid(format!("{campo}.idSchedaSoggettoANPR"), &e)
            })?),
            None => None,
        };
        let by_cf = match chi.codice_fiscale.as_deref() {
            Some(cf) => {
                let cf = cf.trim().to_ascii_uppercase();
                let q = SubjectQuery {
                    codice_fiscale: Some(cf.clone()),
                    limit: 10,
                    ..Default::default()
                };
                let found = store
                    .find_subjects(&q)
                    .await
                    .map_err(|e| self.anomalia_interna(e))?;
                // A CF may belong to a cancelled subject and a live one (re-registered);
                // the live one wins.
                let live = found
                    .iter()
                    .find(|s| s.posizione != PosizioneAnagrafica::Cancellato.code())
                    .or(found.first());
                match live {
                    Some(s) => Some(s.id),
                    None => {
                        return Err(Anomalia::errore(
                            CODICE_CF_INESISTENTE,
                            format!("Codice fiscale {cf} non presente su ANPR"),
                        )
                        .campo(format!("{campo}.codiceFiscale"))
                        .valore(cf))
                    }
                }
            }
            None => None,
        };
        let id = match (by_id, by_cf) {
            (Some(a), Some(b)) if a != b => {
                return Err(Anomalia::errore(
                    CODICE_SOGGETTO_NON_IDENTIFICATO,
                    "Identificativo ANPR e codice fiscale indicano soggetti diversi",
                )
                .campo(campo)
                .valore(format!("{a} / {b}"))
                .atteso("identificativo e codice fiscale dello stesso soggetto"))
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                return Err(Anomalia::errore(
                    CODICE_SOGGETTO_NON_IDENTIFICATO,
                    "Soggetto non indicato",
                )
                .campo(campo)
                .atteso("idSchedaSoggettoANPR o codiceFiscale"))
            }
        };
        let record = store
            .record(EntityRef::Soggetto(id), None)
            .await
            .map_err(|e| self.anomalia_interna(e))?
            .ok_or_else(|| {
                Anomalia::errore(
                    CODICE_SOGGETTO_INESISTENTE,
                    format!("Soggetto {id} inesistente su ANPR"),
                )
                .campo(format!("{campo}.idSchedaSoggettoANPR"))
                .valore(id.to_string())
            })?;
        let scheda =
            SchedaSoggetto::from_sections(record.iter()).map_err(|e| self.anomalia_interna(e))?;
        let s = SoggettoCorrente { id, scheda };
        if let Some(comune) = comune {
            if s.comune() != Some(comune) {
                return Err(Anomalia::errore(
                    CODICE_NON_DI_COMPETENZA,
                    format!("Soggetto {id} non di competenza del comune {comune}"),
                )
                .campo(campo)
                .valore(s.comune().map(|c| c.to_string()).unwrap_or_default())
                .atteso(comune.to_string()));
            }
        }
        Ok(s)
    }

    /// Loads the current record of a family or cohabitation with its members.
    pub(crate) async fn carica_famiglia(
        &self,
        store: &dyn Store,
        campo: &str,
        raw: &str,
        comune: Option<&CodiceIstatComune>,
    ) -> Result<FamigliaCorrente, Anomalia> {
        let id = raw
            .trim()
            .parse::<IdAnprFamiglia>()
            .map_err(|e| Anomalia::from_invalid(campo, &e))?;
        self.carica_famiglia_id(store, campo, id, comune).await
    }

    pub(crate) async fn carica_famiglia_id(
        &self,
        store: &dyn Store,
        campo: &str,
        id: IdAnprFamiglia,
        comune: Option<&CodiceIstatComune>,
    ) -> Result<FamigliaCorrente, Anomalia> {
        let record = store
            .record(EntityRef::Famiglia(id), None)
            .await
            .map_err(|e| self.anomalia_interna(e))?
            .ok_or_else(|| {
                Anomalia::errore(
                    CODICE_FAMIGLIA_NON_TROVATA,
                    format!("Famiglia o convivenza {id} non presente su ANPR"),
                )
                .campo(campo)
                .valore(id.to_string())
            })?;
        let scheda =
            SchedaFamiglia::from_sections(record.iter()).map_err(|e| self.anomalia_interna(e))?;
        let members = store
            .by_section_key(SezioneSoggetto::Legame.key(), &id.to_string(), None)
            .await
            .map_err(|e| self.anomalia_interna(e))?;
        let mut componenti = Componenti::new();
        for (entity, value) in members {
            if let EntityRef::Soggetto(sid) = entity {
                let l: Legame =
                    serde_json::from_value(value).map_err(|e| self.anomalia_interna(e))?;
                componenti.insert(sid, l.codice_legame);
            }
        }
        let f = FamigliaCorrente {
            id,
            scheda,
            componenti,
        };
        if let Some(comune) = comune {
            if f.comune() != Some(comune) {
                return Err(Anomalia::errore(
                    CODICE_FAMIGLIA_ALTRO_COMUNE,
                    format!("Famiglia o convivenza {id} di competenza di altro comune"),
                )
                .campo(campo)
                .valore(f.comune().map(|c| c.to_string()).unwrap_or_default())
                .atteso(comune.to_string()));
            }
        }
        Ok(f)
    }
}
