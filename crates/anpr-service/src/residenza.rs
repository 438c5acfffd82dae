//! Change of residence (service 5005, SPEC M-2.2): a move within the municipality, or a
//! transfer from another municipality (the caller is the destination; the origin loses
//! competence and gets notification N010 in the outbox), of a whole family or of some of
//! its members, who then join an existing family or form a new one.
//!
//! The request is shaped after `Richiesta5005` (XSD names in camelCase).

use std::collections::BTreeSet;

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia, IdComunale};
use anpr_domain::scheda::{
    DatiFamiglia, Indirizzo, Intestatario, PosizioneAnagrafica, Residenza, SchedaFamiglia,
    StatoFamiglia, TipoScheda, RELAZIONE_INTESTATARIO,
};
use anpr_store::{NewOutboxMessage, Sequence, Store};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use crate::authz::Permesso;
use crate::lavoro::{
    legame, FamigliaCorrente, Modifiche, SoggettoCorrente, SoggettoPerRicerca,
    CODICE_POSIZIONE_NON_AMMESSA,
};
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// A subject the operation moves, with its relationship in the destination family
/// (`elencoSoggettiFamiglia`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SoggettoMovimentato {
    #[serde(flatten)]
    pub soggetto: SoggettoPerRicerca,
    /// Code of "Relazione di parentela" in the destination family; required when the
    /// subjects join another family or form a new one.
    pub codice_legame: Option<String>,
}

/// Where the moved subjects go when not the whole family moves.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FamigliaDestinazione {
    /// An existing family of the destination municipality; absent = a new family.
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: Option<String>,
    pub id_famiglia_convivenza_comune: Option<String>,
}

/// Request of service 5005.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta5005 {
    pub id_operazione_comune: Option<String>,
    pub data_decorrenza: String,
    /// Code of "Tipo mutazione residenza" (2 = residence, default).
    pub tipo_mutazione: Option<String>,
    pub soggetti: Vec<SoggettoMovimentato>,
    pub residenza: Indirizzo,
    #[serde(default)]
    pub presso: Option<String>,
    /// Absent: the whole family moves together and stays one family.
    pub famiglia: Option<FamigliaDestinazione>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Our code for a partial family move without a destination family.
pub const CODICE_DESTINAZIONE_MANCANTE: &str = "EV039";

impl Registry {
    /// Service 5005: change of residence or transfer from another municipality.
    pub async fn mutazione_residenza(
        &self,
        ctx: &CallerContext,
        req: &Richiesta5005,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "5005",
            Permesso::Mutazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, op| async move {
            self.decidi_5005(&*store, &comune, op, req).await
        })
        .await
    }

    async fn decidi_5005(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        op: anpr_domain::ids::IdOperazioneAnpr,
        req: &Richiesta5005,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let decorrenza = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", decorrenza, oggi, &mut e);
        let tipo = req.tipo_mutazione.as_deref().unwrap_or("2");
        v::codice_tabella(
            t,
            "tipo_mutazione_residenza",
            tipo,
            None,
            "EN371",
            "Tipo mutazione residenza",
            "tipoMutazione",
            &mut e,
        );
        v::indirizzo_nel_comune(t, "residenza", &req.residenza, comune, decorrenza, &mut e);
        if req.soggetti.is_empty() {
            e.push(
                Anomalia::errore(
                    "EN223",
                    "Inserire almeno un soggetto in elenco soggetti famiglia",
                )
                .campo("soggetti"),
            );
        }
        // Load every subject (any municipality: a transfer moves subjects of another).
        let mut soggetti: Vec<(SoggettoCorrente, Option<String>)> = Vec::new();
        for (i, s) in req.soggetti.iter().enumerate() {
            let campo = format!("soggetti[{i}]");
            match self.carica_soggetto(store, &campo, &s.soggetto, None).await {
                Err(a) => e.push(a),
                Ok(cur) => {
                    if cur.posizione() != Some(PosizioneAnagrafica::Residente) {
                        e.push(
                            Anomalia::errore(
                                CODICE_POSIZIONE_NON_AMMESSA,
                                format!("Il soggetto {} non e' residente in Italia", cur.id),
                            )
                            .campo(&campo)
                            .valore(cur.posizione().map_or("", |p| p.code()))
                            .atteso("un soggetto residente (APR)"),
                        );
                    } else if soggetti.iter().any(|(x, _)| x.id == cur.id) {
                        e.push(
                            Anomalia::errore(
                                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                                format!("Soggetto {} indicato piu' volte", cur.id),
                            )
                            .campo(&campo),
                        );
                    } else {
                        if let Some(d) = decorrenza {
                            cur.non_prima_della_nascita(d, "dataDecorrenza", &mut e);
                        }
                        soggetti.push((cur, s.codice_legame.clone()));
                    }
                }
            }
        }
        let (Some(decorrenza), true) = (decorrenza, e.is_empty()) else {
            return Err(e);
        };
        // All moved subjects come from one family of one municipality.
        let origini: BTreeSet<IdAnprFamiglia> =
            soggetti.iter().filter_map(|(s, _)| s.famiglia()).collect();
        let origine_comune = soggetti[0].0.comune().cloned();
        if origini.len() != 1
            || soggetti
                .iter()
                .any(|(s, _)| s.comune() != origine_comune.as_ref())
        {
            return Err(vec![Anomalia::errore(
                "EF054",
                "I soggetti devono appartenere alla stessa famiglia",
            )
            .campo("soggetti")
            .valore(
                origini
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .atteso("soggetti di un'unica famiglia o convivenza")]);
        }
        let origine_comune = origine_comune.unwrap_or_else(|| comune.clone());
        let trasferimento = &origine_comune != comune;
        let id_origine = *origini
            .first()
            .ok_or_else(|| vec![self.anomalia_interna("moved subjects without family")])?;
        let origine = self
            .carica_famiglia_id(store, "soggetti", id_origine, None)
            .await
            .map_err(|a| vec![a])?;
        let tutti = origine.componenti.len() == soggetti.len();
        let residenza = Residenza {
            tipo_indirizzo: match tipo {
                "3" => "2".into(),
                "4" => "3".into(),
                _ => "1".into(),
            },
            indirizzo: Some(req.residenza.clone()),
            indirizzo_estero: None,
            presso: req.presso.clone(),
            note_indirizzo: (tipo == "1").then(|| "senza fissa dimora".to_owned()),
            data_decorrenza_residenza: decorrenza,
        };
        let mut m = Modifiche::default();
        let mut avvertimenti = Vec::new();
        match &req.famiglia {
            None if tutti => {
                // The family moves as a whole (and changes municipality on a transfer).
                let mut dopo = origine.scheda.clone();
                dopo.residenza = Some(residenza.clone());
                if let Some(d) = dopo.dati.as_mut() {
                    d.comune = comune.clone();
                }
                m.famiglia(origine.id, &origine.scheda, &dopo);
                for (s, _) in &soggetti {
                    let mut n = s.scheda.clone();
                    n.residenza = Some(residenza.clone());
                    if let Some(c) = n.competenza.as_mut() {
                        c.comune = comune.clone();
                    }
                    m.soggetto(s.id, &s.scheda, &n);
                }
            }
            None => {
                return Err(vec![Anomalia::errore(
                    CODICE_DESTINAZIONE_MANCANTE,
                    "Si spostano solo alcuni componenti: indicare la famiglia di destinazione (esistente o nuova)",
                )
                .campo("famiglia")
                .valore(format!("{} di {} componenti", soggetti.len(), origine.componenti.len()))
                .atteso("famiglia.idFamigliaConvivenzaANPR, oppure famiglia senza id per una nuova famiglia")])
            }
            Some(dest) => {
                let destinazione = self
                    .famiglia_destinazione(store, comune, dest, &soggetti, decorrenza, &residenza)
                    .await?;
                let (id_dest, tipo_dest, nuova) = match &destinazione {
                    Destinazione::Esistente(f) => (f.id, f.tipo(), None),
                    Destinazione::Nuova(id, scheda) => (*id, TipoScheda::Famiglia, Some(scheda)),
                };
                if id_dest == origine.id {
                    return Err(vec![Anomalia::errore(
                        "EN220",
                        "La famiglia di destinazione coincide con quella di provenienza: per cambiare l'indirizzo di tutta la famiglia non indicare la famiglia",
                    )
                    .campo("famiglia.idFamigliaConvivenzaANPR")
                    .valore(id_dest.to_string())])
                }
                match destinazione {
                    Destinazione::Esistente(f) => {
                        if f.scheda.residenza.as_ref().and_then(|r| r.indirizzo.as_ref()) != Some(&req.residenza) {
                            avvertimenti.push(
                                Anomalia::avvertimento(
                                    "EN226",
                                    "L'indirizzo indicato differisce da quello della famiglia di destinazione: i soggetti assumono l'indirizzo indicato",
                                )
                                .campo("residenza"),
                            );
                        }
                        m.famiglia(f.id, &f.scheda, &f.scheda);
                    }
                    Destinazione::Nuova(id, _) => {
                        m.famiglia(id, &SchedaFamiglia::default(), nuova.map_or(&SchedaFamiglia::default(), |s| s));
                    }
                }
                for (s, codice) in &soggetti {
                    let mut n = s.scheda.clone();
                    n.residenza = Some(residenza.clone());
                    if let Some(c) = n.competenza.as_mut() {
                        c.comune = comune.clone();
                    }
                    n.legame = Some(legame(id_dest, tipo_dest, codice.as_deref().unwrap_or_default(), decorrenza));
                    m.soggetto(s.id, &s.scheda, &n);
                }
                // What stays behind: archived when empty, a warning when headless.
                let (origine_dopo, senza_intestatario) =
                    origine.dopo_uscita(|id| soggetti.iter().any(|(s, _)| s.id == *id));
                if senza_intestatario {
                    avvertimenti.push(
                        Anomalia::avvertimento(
                            "EN226",
                            "Aggiornare la famiglia di provenienza del soggetto di cui e' stata cambiata la residenza ed eventualmente i relativi rapporti di parentela",
                        )
                        .campo("soggetti")
                        .valore(origine.id.to_string())
                        .atteso("una mutazione famiglia (5001) che nomini il nuovo intestatario"),
                    );
                }
                m.famiglia(origine.id, &origine.scheda, &origine_dopo);
            }
        }
        if trasferimento {
            m.outbox.push(NewOutboxMessage {
                tipo: "N010".into(),
                destinatario: origine_comune.to_string(),
                payload: json!({
                    "notifica": "N010",
                    "descrizione": "Mutazione di residenza: soggetti trasferiti in altro comune",
                    "idOperazioneANPR": op.to_string(),
                    "comuneProvenienza": origine_comune.as_str(),
                    "comuneDestinazione": comune.as_str(),
                    "dataDecorrenza": decorrenza,
                    "soggetti": soggetti.iter().map(|(s, _)| s.id.to_string()).collect::<Vec<_>>(),
                    "famigliaProvenienza": origine.id.to_string(),
                }),
            });
        }
        Ok(m.piano(decorrenza, avvertimenti))
    }

    /// Resolves and checks the destination family of a partial move, and the
    /// relationship codes of the moved subjects in it.
    async fn famiglia_destinazione(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        dest: &FamigliaDestinazione,
        soggetti: &[(SoggettoCorrente, Option<String>)],
        decorrenza: NaiveDate,
        residenza: &Residenza,
    ) -> Result<Destinazione, Vec<Anomalia>> {
        let t = self.tables();
        let mut e = Vec::new();
        let esistente = match &dest.id_famiglia_convivenza_anpr {
            Some(raw) => {
                let f = self
                    .carica_famiglia(
                        store,
                        "famiglia.idFamigliaConvivenzaANPR",
                        raw,
                        Some(comune),
                    )
                    .await
                    .map_err(|a| vec![a])?;
                if !f.attiva() {
                    return Err(vec![Anomalia::errore(
                        crate::lavoro::CODICE_FAMIGLIA_NON_TROVATA,
                        "Identificativo scheda famiglia/convivenza attribuito da ANPR non trovato o scheda famiglia archiviata",
                    )
                    .campo("famiglia.idFamigliaConvivenzaANPR")
                    .valore(raw)]);
                }
                Some(f)
            }
            None => None,
        };
        let convivenza = esistente
            .as_ref()
            .is_some_and(|f| f.tipo() == TipoScheda::Convivenza);
        let mut intestatari = 0;
        for (i, (_, codice)) in soggetti.iter().enumerate() {
            let campo = format!("soggetti[{i}].codiceLegame");
            let Some(codice) = codice else {
                e.push(
                    Anomalia::errore("EF006", "Indicare obbligatoriamente i dati del legame soggetto con la famiglia di appartenenza")
                        .campo(campo),
                );
                continue;
            };
            let (tabella, codice_anpr, descr) = if convivenza {
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
            v::codice_tabella(t, tabella, codice, None, codice_anpr, descr, &campo, &mut e);
            if codice == RELAZIONE_INTESTATARIO {
                intestatari += 1;
            }
        }
        match &esistente {
            Some(f) => {
                let ha_intestatario = f.componenti.values().any(|c| c == RELAZIONE_INTESTATARIO);
                if intestatari > 0 && ha_intestatario {
                    e.push(
                        Anomalia::errore(
                            "EF007",
                            "Intestatario della scheda famiglia/convivenza gia' presente",
                        )
                        .campo("soggetti")
                        .atteso("nessun soggetto con codice legame 1"),
                    );
                }
            }
            None => {
                if intestatari != 1 {
                    e.push(
                        Anomalia::errore(
                            if intestatari == 0 { "EF008" } else { "EN166" },
                            if intestatari == 0 {
                                "Intestatario della scheda famiglia/convivenza assente"
                            } else {
                                "La famiglia non puo' avere piu' di un intestatario"
                            },
                        )
                        .campo("soggetti")
                        .valore(intestatari.to_string())
                        .atteso("esattamente un soggetto con codice legame 1 nella nuova famiglia"),
                    );
                }
            }
        }
        let id_comunale = dest.id_famiglia_convivenza_comune.as_deref().and_then(|s| {
            s.parse::<IdComunale>()
                .map_err(|x| {
                    e.push(Anomalia::from_invalid(
                        "famiglia.idFamigliaConvivenzaComune",
                        &x,
                    ))
                })
                .ok()
        });
        if !e.is_empty() {
            return Err(e);
        }
        if let Some(f) = esistente {
            return Ok(Destinazione::Esistente(f));
        }
        let id = IdAnprFamiglia::new(
            store
                .next_id(Sequence::Famiglia)
                .await
                .map_err(|x| vec![self.anomalia_interna(x)])?,
        )
        .map_err(|x| vec![self.anomalia_interna(x)])?;
        let intestatario = soggetti
            .iter()
            .find(|(_, c)| c.as_deref() == Some(RELAZIONE_INTESTATARIO))
            .map(|(s, _)| s.id)
            .ok_or_else(|| {
                vec![Anomalia::errore(
                    "EF008",
                    "Intestatario della scheda famiglia/convivenza assente",
                )
                .campo("soggetti")]
            })?;
        Ok(Destinazione::Nuova(
            id,
            nuova_famiglia(comune, id_comunale, intestatario, decorrenza, residenza),
        ))
    }
}

/// The destination of a partial move.
#[derive(Debug)]
enum Destinazione {
    Esistente(FamigliaCorrente),
    Nuova(IdAnprFamiglia, SchedaFamiglia),
}

/// A new family record headed by `intestatario` from `data`.
pub(crate) fn nuova_famiglia(
    comune: &CodiceIstatComune,
    id_comunale: Option<IdComunale>,
    intestatario: anpr_domain::ids::IdAnprSoggetto,
    data: NaiveDate,
    residenza: &Residenza,
) -> SchedaFamiglia {
    SchedaFamiglia {
        dati: Some(DatiFamiglia {
            tipo_scheda: TipoScheda::Famiglia,
            comune: comune.clone(),
            id_famiglia_convivenza_comune: id_comunale,
            famiglia_aire: residenza.indirizzo_estero.is_some(),
            data_origine_famiglia_convivenza: data,
            motivo_costituzione: None,
            denominazione_convivenza: None,
            specie_convivenza: None,
        }),
        intestatario: Some(Intestatario {
            id_anpr: intestatario,
            data_decorrenza: data,
        }),
        residenza: Some(residenza.clone()),
        stato: Some(StatoFamiglia::Attiva),
    }
}
