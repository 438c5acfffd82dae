//! Running extractions, bulk lookups and support lists (the worker's side).
//!
//! An extraction runs in two stages: the search projection selects candidates by what
//! it holds (municipality, position, id ranges, sex, birth dates, names, building) in
//! pages by id; the records' sections are then read in batches for what it does not
//! (citizenship, civil status, tax-code state, ...). The count is checked against the
//! limit as matches arrive, so an over-broad request stops early and is refused.

use std::collections::BTreeSet;

use anpr_domain::codice_fiscale::CodiceFiscale;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::IdAnprSoggetto;
use anpr_domain::operazione::StatoOperazione;
use anpr_domain::scheda::{
    Precisione, SchedaSoggetto, SezioneSoggetto, StatoCodiceFiscale, TipoEventoStatoCivile,
};
use anpr_store::{
    Elaborazione, EntityRef, FileElaborazione, IntervalloFamiglie, IntervalloIdComunale,
    OperationQuery, QueryEstrazione, RecordSections, StatoElaborazione, Store, SubjectQuery,
};
use base64::Engine;
use chrono::NaiveDate;

use super::criteri::{eta, CriteriEstrazione, TipoAtto, LIMITE_SOGGETTI};
use super::file::{appiattisci, Formato, Tabella};
use super::{Esito, CODICE_FILE_ILLEGGIBILE};
use crate::clock::inizio_giorno_italiano;
use crate::{Registry, ServiceError};

/// Subjects per page of stage one, and per batch read.
const PAGINA: u32 = 5_000;

/// EU member states other than Italy (ISTAT codes).
const STATI_UE: [&str; 26] = [
    "203", "206", "209", "315", "250", "212", "247", "214", "215", "216", "220", "221", "248",
    "249", "226", "227", "232", "233", "234", "257", "235", "255", "251", "239", "240", "244",
];
/// EEA states outside the EU and Switzerland (agreement on free movement).
const STATI_SEE_ASSOCIATI: [&str; 4] = ["223", "225", "231", "241"];

/// Code of `statoCodiceFiscale` (our codes, see `criteri`).
fn codice_stato_cf(s: StatoCodiceFiscale) -> &'static str {
    match s {
        StatoCodiceFiscale::Validato => "1",
        StatoCodiceFiscale::Provvisorio => "2",
        StatoCodiceFiscale::DatiDifformi => "3",
        StatoCodiceFiscale::Collegato => "4",
        StatoCodiceFiscale::Omocodice => "5",
        StatoCodiceFiscale::AssenteInAe => "6",
        StatoCodiceFiscale::NonValidato => "9",
    }
}

fn uguale(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.trim().eq_ignore_ascii_case(b.trim()))
}

/// Stage two: whether a record (its filter sections) matches the criteria.
pub(crate) fn corrisponde(c: &CriteriEstrazione, s: &SchedaSoggetto) -> bool {
    if c.senza_giorno_nascita
        && s.generalita.as_ref().map(|g| g.data_nascita.precisione) != Some(Precisione::SenzaGiorno)
    {
        return false;
    }
    if c.senza_giorno_mese_nascita
        && s.generalita.as_ref().map(|g| g.data_nascita.precisione)
            != Some(Precisione::SenzaGiornoMese)
    {
        return false;
    }
    if let Some(stato) = &c.stato_cf {
        if s.codice_fiscale
            .as_ref()
            .map(|cf| codice_stato_cf(cf.stato))
            != Some(stato.as_str())
        {
            return false;
        }
    }
    if let Some(sc) = &c.stato_civile {
        if s.stato_civile.as_ref().map(|x| x.stato_civile.as_str()) != Some(sc.as_str()) {
            return false;
        }
    }
    if let Some(sfd) = c.senza_fissa_dimora {
        let e = s
            .residenza
            .as_ref()
            .is_some_and(|r| r.tipo_indirizzo == "3")
            || s.iscrizione
                .as_ref()
                .is_some_and(|i| i.motivo_iscrizione == "8");
        if e != sfd {
            return false;
        }
    }
    let cittadinanze: Vec<&str> = s
        .cittadinanze
        .iter()
        .flatten()
        .map(|c| c.codice_stato.as_str())
        .collect();
    if let Some(t) = &c.tipo_cittadinanza {
        let italiana = cittadinanze.contains(&"100");
        let in_elenco = |l: &[&str]| cittadinanze.iter().any(|c| l.contains(c));
        let ok = match t.as_str() {
            "1" => italiana,
            "2" => !italiana && !cittadinanze.is_empty(),
            "3" => !italiana && in_elenco(&STATI_UE),
            "4" => !italiana && in_elenco(&STATI_SEE_ASSOCIATI),
            "5" => !italiana && !cittadinanze.is_empty() && !in_elenco(&STATI_UE),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    if let Some(cs) = &c.codice_stato {
        if !cittadinanze.contains(&cs.as_str()) {
            return false;
        }
    }
    if let Some(cons) = &c.codice_consolato {
        if s.aire.as_ref().map(|a| a.consolato.as_str()) != Some(cons.as_str()) {
            return false;
        }
    }
    let altri = s.altri_dati.as_ref();
    for (voluto, trovato) in [
        (
            &c.posizione_professionale,
            altri.and_then(|a| a.posizione_professionale.as_deref()),
        ),
        (
            &c.condizione_non_professionale,
            altri.and_then(|a| a.condizione_non_professionale.as_deref()),
        ),
        (
            &c.titolo_studio,
            altri.and_then(|a| a.titolo_studio.as_deref()),
        ),
    ] {
        if let Some(v) = voluto {
            if trovato != Some(v.as_str()) {
                return false;
            }
        }
    }
    if let Some(p) = c.patente {
        if s.patente.is_some() != p {
            return false;
        }
    }
    if let Some((tipo, anno, parte, serie)) = &c.atto {
        let atto_ok = |a: &anpr_domain::scheda::Atto| {
            a.anno == *anno
                && parte
                    .as_deref()
                    .is_none_or(|p| uguale(a.parte.as_deref(), p))
                && serie
                    .as_deref()
                    .is_none_or(|x| uguale(a.serie.as_deref(), x))
        };
        let ok = match tipo {
            TipoAtto::Nascita => s
                .atti
                .as_ref()
                .and_then(|a| a.atto_nascita.as_ref())
                .is_some_and(atto_ok),
            TipoAtto::Matrimonio => s.stato_civile.as_ref().is_some_and(|sc| {
                sc.eventi.iter().any(|ev| {
                    ev.tipo == TipoEventoStatoCivile::Matrimonio
                        && ev.atto.as_ref().is_some_and(atto_ok)
                })
            }),
            TipoAtto::Morte => s
                .cancellazione
                .as_ref()
                .and_then(|x| x.atto_morte.as_ref())
                .is_some_and(atto_ok),
        };
        if !ok {
            return false;
        }
    }
    let indirizzo = s.residenza.as_ref().and_then(|r| r.indirizzo.as_ref());
    if let Some(n) = &c.numero_civico {
        if !uguale(indirizzo.and_then(|i| i.numero_civico.numero.as_deref()), n) {
            return false;
        }
    }
    if let Some(den) = &c.denominazione_toponimo {
        let ok = indirizzo.is_some_and(|i| {
            anpr_domain::text::fold_key(&i.toponimo.denominazione_toponimo)
                .starts_with(den.as_str())
        });
        if !ok {
            return false;
        }
    }
    true
}

fn chiavi(sezioni: &[SezioneSoggetto]) -> Vec<String> {
    sezioni.iter().map(|s| s.key().to_owned()).collect()
}

impl Registry {
    /// Subjects touched by executed operations of the municipality registered in the
    /// period (Italian civil dates, both included), of the given services (any if empty).
    async fn soggetti_delle_operazioni(
        &self,
        store: &dyn Store,
        c: &CriteriEstrazione,
        (dal, al): (NaiveDate, NaiveDate),
    ) -> Result<Vec<u64>, ServiceError> {
        let mut out = BTreeSet::new();
        let mut dopo = None;
        loop {
            let pagina = store
                .operations(&OperationQuery {
                    comune: c.comune.clone(),
                    stato: Some(StatoOperazione::Eseguita),
                    dal: Some(inizio_giorno_italiano(dal)),
                    al: al.succ_opt().map(inizio_giorno_italiano),
                    dopo,
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .map_err(|e| self.interno(e))?;
            let Some(ultima) = pagina.last() else { break };
            dopo = Some(ultima.id);
            let fine = pagina.len() < 1000;
            for op in pagina {
                if !c.servizi.is_empty()
                    && !c
                        .servizi
                        .iter()
                        .any(|s| *s == op.codice_servizio.to_string())
                {
                    continue;
                }
                for e in op.entities {
                    if let EntityRef::Soggetto(id) = e {
                        out.insert(id.get());
                    }
                }
            }
            if fine {
                break;
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Runs an extraction: the matching subjects' requested sections into a file, or a
    /// refusal over the limit.
    pub(crate) async fn esegui_estrazione(
        &self,
        store: &dyn Store,
        id: u64,
        c: &CriteriEstrazione,
        formato: Formato,
        massiva: bool,
    ) -> Result<Esito, ServiceError> {
        let oggi = self.clock().today();
        // Subjects of the operations of the period, if that is a criterion.
        let gruppi: Vec<Option<Vec<u64>>> = match c.periodo {
            Some(p) => {
                let ids = self.soggetti_delle_operazioni(store, c, p).await?;
                ids.chunks(PAGINA as usize)
                    .map(|ch| Some(ch.to_vec()))
                    .collect()
            }
            None => vec![None],
        };
        let base = QueryEstrazione {
            comune: c.comune.clone(),
            posizioni: c.posizioni.clone(),
            id_da: c.id_anpr.map(|r| r.0),
            id_a: c.id_anpr.map(|r| r.1),
            id_comunale: c.id_comunale.as_ref().map(|(da, a)| IntervalloIdComunale {
                da: da.clone(),
                a: a.clone(),
            }),
            famiglie: c.famiglie.as_ref().and_then(|(tipo, ids, comunali)| {
                Some(IntervalloFamiglie {
                    tipo: tipo.tipo_famiglia()?.to_owned(),
                    id_da: ids.map(|r| r.0),
                    id_a: ids.map(|r| r.1),
                    id_comunale: comunali.as_ref().map(|(da, a)| IntervalloIdComunale {
                        da: da.clone(),
                        a: a.clone(),
                    }),
                })
            }),
            sesso: c.sesso.clone(),
            nascita_dal: c.nascita_dal,
            nascita_al: c.nascita_al,
            senza_cognome: c.senza_cognome,
            senza_nome: c.senza_nome,
            prefisso_indirizzo: c.prefisso_indirizzo.clone(),
            limit: PAGINA,
            ..Default::default()
        };
        let filtro = chiavi(&c.sezioni_filtro());
        let mut trovati: Vec<IdAnprSoggetto> = Vec::new();
        let mut esaminati = 0usize;
        'gruppi: for gruppo in gruppi {
            let mut q = base.clone();
            q.solo_id = gruppo;
            loop {
                let pagina = store
                    .soggetti_per_estrazione(&q)
                    .await
                    .map_err(|e| self.interno(e))?;
                let Some(ultimo) = pagina.last() else { break };
                q.dopo = Some(ultimo.id.get());
                let fine = pagina.len() < PAGINA as usize;
                esaminati += pagina.len();
                if filtro.is_empty() {
                    trovati.extend(pagina.iter().map(|s| s.id));
                } else {
                    let entita: Vec<EntityRef> =
                        pagina.iter().map(|s| EntityRef::Soggetto(s.id)).collect();
                    let letti = store
                        .sezioni_di(&entita, &filtro, None)
                        .await
                        .map_err(|e| self.interno(e))?;
                    for (e, sezioni) in letti {
                        let EntityRef::Soggetto(sid) = e else {
                            continue;
                        };
                        let scheda = SchedaSoggetto::from_sections(sezioni.iter())
                            .map_err(|x| self.interno(x))?;
                        if corrisponde(c, &scheda) {
                            trovati.push(sid);
                        }
                    }
                }
                if !massiva && trovati.len() > LIMITE_SOGGETTI {
                    break 'gruppi;
                }
                if fine {
                    break;
                }
            }
        }
        if !massiva && trovati.len() > LIMITE_SOGGETTI {
            return Ok(Esito::rifiutata(vec![Anomalia::errore(
                "EN115",
                "La richiesta ha individuato un numero di occorrenze troppo elevato: restringere i parametri della ricerca",
            )
            .campo("criteriRicerca")
            .valore(format!("oltre {LIMITE_SOGGETTI} soggetti"))
            .atteso(format!(
                "al massimo {LIMITE_SOGGETTI} soggetti: restringere il range di identificativi o aggiungere criteri"
            ))]));
        }
        trovati.sort();
        trovati.dedup();

        // The file: idANPR, age today, then the groups asked for.
        let mut uscita: Vec<SezioneSoggetto> = c.sezioni.clone();
        if !uscita.contains(&SezioneSoggetto::Generalita) {
            uscita.push(SezioneSoggetto::Generalita);
        }
        let mostra_generalita = c.sezioni.contains(&SezioneSoggetto::Generalita);
        let uscita = chiavi(&uscita);
        let mut t = Tabella::new(&["idANPR", "etaCittadino"]);
        for chunk in trovati.chunks(PAGINA as usize) {
            let entita: Vec<EntityRef> = chunk.iter().map(|s| EntityRef::Soggetto(*s)).collect();
            let letti = store
                .sezioni_di(&entita, &uscita, None)
                .await
                .map_err(|e| self.interno(e))?;
            for (e, sezioni) in letti {
                t.riga(riga_soggetto(e, &sezioni, oggi, mostra_generalita, None));
            }
        }
        let n = t.righe();
        let contenuto = t
            .scrivi(formato, "Estrazione")
            .map_err(|e| self.interno(e))?;
        let mut anomalie = Vec::new();
        if n == 0 {
            anomalie.push(Anomalia::avvertimento(
                "EN122",
                "La richiesta effettuata non produce alcun risultato",
            ));
        }
        Ok(Esito {
            stato: StatoElaborazione::Completata,
            esito: serde_json::json!({
                "soggetti": n,
                "esaminati": esaminati,
                "datiRichiesti": c.dati_richiesti,
                "datiNonGestiti": c.dati_non_gestiti,
                "anomalie": anomalie,
            }),
            file: Some(FileElaborazione {
                nome: format!("estrazione_{id}.{}", formato.as_str()),
                formato: formato.as_str().to_owned(),
                contenuto,
            }),
            nota: format!("completata {n} soggetti"),
        })
    }

    /// Runs a bulk lookup (4002): one row per code of the file, in its order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn esegui_rivestimento(
        &self,
        store: &dyn Store,
        e: &Elaborazione,
        data: NaiveDate,
        sezioni: &[SezioneSoggetto],
        dati_richiesti: &[u8],
        per_id_anpr: bool,
        valori: &[String],
        formato: Formato,
    ) -> Result<Esito, ServiceError> {
        let mut uscita: Vec<SezioneSoggetto> = sezioni.to_vec();
        if !uscita.contains(&SezioneSoggetto::Generalita) {
            uscita.push(SezioneSoggetto::Generalita);
        }
        let mostra_generalita = sezioni.contains(&SezioneSoggetto::Generalita);
        let uscita = chiavi(&uscita);
        let mut t = Tabella::new(&["riga", "valoreRicercato", "esito", "idANPR", "etaCittadino"]);
        let (mut trovati, mut non_trovati, mut altri) = (0u32, 0u32, 0u32);
        for (i, v) in valori.iter().enumerate() {
            let mut celle = vec![
                ("riga".to_owned(), (i + 1).to_string()),
                ("valoreRicercato".to_owned(), v.clone()),
            ];
            let indice = if per_id_anpr {
                match v.parse::<IdAnprSoggetto>() {
                    Ok(id) => store
                        .find_subjects(&SubjectQuery {
                            id: Some(id),
                            limit: 1,
                            ..Default::default()
                        })
                        .await
                        .map_err(|x| self.interno(x))?
                        .into_iter()
                        .next(),
                    Err(_) => {
                        celle.push(("esito".into(), "idANPR non valido".into()));
                        t.riga(celle);
                        non_trovati += 1;
                        continue;
                    }
                }
            } else {
                if v.parse::<CodiceFiscale>().is_err() {
                    celle.push(("esito".into(), "codice fiscale formalmente errato".into()));
                    t.riga(celle);
                    non_trovati += 1;
                    continue;
                }
                let mut righe = store
                    .find_subjects(&SubjectQuery {
                        codice_fiscale: Some(v.clone()),
                        limit: 10,
                        ..Default::default()
                    })
                    .await
                    .map_err(|x| self.interno(x))?;
                // A live record first (a removed duplicate may share the code).
                righe.sort_by_key(|s| s.posizione == "C");
                righe.into_iter().next()
            };
            let Some(indice) = indice else {
                celle.push(("esito".into(), "non trovato".into()));
                t.riga(celle);
                non_trovati += 1;
                continue;
            };
            if indice.comune != e.comune {
                celle.push((
                    "esito".into(),
                    "EN210 comune richiedente non competente sul soggetto".into(),
                ));
                t.riga(celle);
                altri += 1;
                continue;
            }
            let entita = [EntityRef::Soggetto(indice.id)];
            let letti = store
                .sezioni_di(&entita, &uscita, Some(data))
                .await
                .map_err(|x| self.interno(x))?;
            match letti.into_iter().next() {
                Some((ent, s)) => {
                    celle.push(("esito".into(), "trovato".into()));
                    celle.extend(riga_soggetto(ent, &s, data, mostra_generalita, None));
                    trovati += 1;
                }
                None => {
                    celle.push(("esito".into(), format!("non presente alla data {data}")));
                    non_trovati += 1;
                }
            }
            t.riga(celle);
        }
        let contenuto = t
            .scrivi(formato, "Rivestimento")
            .map_err(|x| self.interno(x))?;
        Ok(Esito {
            stato: StatoElaborazione::Completata,
            esito: serde_json::json!({
                "righe": valori.len(),
                "trovati": trovati,
                "nonTrovati": non_trovati,
                "nonDiCompetenza": altri,
                "dataRiferimento": data,
                "datiRichiesti": dati_richiesti,
            }),
            file: Some(FileElaborazione {
                nome: format!("rivestimento_{}.{}", e.id, formato.as_str()),
                formato: formato.as_str().to_owned(),
                contenuto,
            }),
            nota: format!("completata {trovati} trovati su {}", valori.len()),
        })
    }

    /// Runs a support list (4004) over the municipality's subjects.
    pub(crate) async fn esegui_elenco(
        &self,
        store: &dyn Store,
        e: &Elaborazione,
        tipo: u8,
        periodo: Option<(NaiveDate, NaiveDate)>,
        posizioni: &[String],
        formato: Formato,
    ) -> Result<Esito, ServiceError> {
        let sezioni = chiavi(&[
            SezioneSoggetto::Generalita,
            SezioneSoggetto::CodiceFiscale,
            SezioneSoggetto::Iscrizione,
            SezioneSoggetto::Competenza,
        ]);
        let mut t = Tabella::new(&[
            "idANPR",
            "codiceFiscale",
            "statoCodiceFiscale",
            "cognome",
            "nome",
            "sesso",
            "dataNascita",
            "posizione",
            "dataIscrizione",
            "motivo",
        ]);
        let mut q = QueryEstrazione {
            comune: Some(e.comune.clone()),
            posizioni: posizioni.to_vec(),
            limit: PAGINA,
            ..Default::default()
        };
        let mut n = 0usize;
        loop {
            let pagina = store
                .soggetti_per_estrazione(&q)
                .await
                .map_err(|x| self.interno(x))?;
            let Some(ultimo) = pagina.last() else { break };
            q.dopo = Some(ultimo.id.get());
            let fine = pagina.len() < PAGINA as usize;
            let entita: Vec<EntityRef> = pagina.iter().map(|s| EntityRef::Soggetto(s.id)).collect();
            for (ent, s) in store
                .sezioni_di(&entita, &sezioni, None)
                .await
                .map_err(|x| self.interno(x))?
            {
                let scheda =
                    SchedaSoggetto::from_sections(s.iter()).map_err(|x| self.interno(x))?;
                let motivo = match tipo {
                    1 => non_validato(&scheda, periodo),
                    _ => cf_errato(&scheda),
                };
                let Some(motivo) = motivo else { continue };
                n += 1;
                if n > LIMITE_SOGGETTI {
                    return Ok(Esito::rifiutata(vec![Anomalia::errore(
                        "EN115",
                        "La richiesta ha individuato un numero di occorrenze troppo elevato: restringere i parametri della ricerca",
                    )
                    .campo("datiRichiesta")
                    .valore(format!("oltre {LIMITE_SOGGETTI} soggetti"))
                    .atteso("restringere il periodo o la tipologia di cittadini")]));
                }
                t.riga(riga_elenco(ent, &scheda, motivo));
            }
            if fine {
                break;
            }
        }
        let contenuto = t.scrivi(formato, "Elenco").map_err(|x| self.interno(x))?;
        Ok(Esito {
            stato: StatoElaborazione::Completata,
            esito: serde_json::json!({"soggetti": n, "tipoElenco": tipo}),
            file: Some(FileElaborazione {
                nome: format!("elenco{tipo}_{}.{}", e.id, formato.as_str()),
                formato: formato.as_str().to_owned(),
                contenuto,
            }),
            nota: format!("completata {n} soggetti"),
        })
    }
}

/// List 1: the code is not validated by the tax agency (registered in the period, if
/// one is given).
fn non_validato(s: &SchedaSoggetto, periodo: Option<(NaiveDate, NaiveDate)>) -> Option<String> {
    if let Some((dal, al)) = periodo {
        let d = s.iscrizione.as_ref()?.data_iscrizione;
        if d < dal || d > al {
            return None;
        }
    }
    match &s.codice_fiscale {
        None => Some("codice fiscale assente".into()),
        Some(cf) if cf.stato == StatoCodiceFiscale::Validato => None,
        Some(cf) => Some(format!("non validato ({})", codice_stato_cf(cf.stato))),
    }
}

/// List 2: the code is formally wrong, flagged by the tax agency, or does not match the
/// subject's sex and birth date.
fn cf_errato(s: &SchedaSoggetto) -> Option<String> {
    let cf = s.codice_fiscale.as_ref()?;
    match cf.stato {
        StatoCodiceFiscale::DatiDifformi => {
            return Some("dati difformi in Agenzia delle Entrate".into())
        }
        StatoCodiceFiscale::AssenteInAe => return Some("assente in Agenzia delle Entrate".into()),
        _ => {}
    }
    let testo = cf.cod_fiscale.to_string();
    if testo.chars().all(|c| c.is_ascii_digit()) {
        return None; // a numeric provisional code carries no personal data
    }
    let dati = match anpr_domain::codice_fiscale::decodifica(&testo) {
        Ok(d) => d,
        Err(e) => return Some(format!("formalmente errato: {e}")),
    };
    let g = s.generalita.as_ref()?;
    if dati.sesso != g.sesso {
        return Some("sesso incoerente con le generalità".into());
    }
    if g.data_nascita.precisione == Precisione::Completa
        && !dati
            .date_candidate()
            .iter()
            .flatten()
            .any(|d| *d == g.data_nascita.data)
    {
        return Some("data di nascita incoerente con le generalità".into());
    }
    None
}

fn riga_elenco(e: EntityRef, s: &SchedaSoggetto, motivo: String) -> Vec<(String, String)> {
    let g = s.generalita.as_ref();
    let mut c = vec![
        ("idANPR".to_owned(), e.id().to_string()),
        ("motivo".to_owned(), motivo),
    ];
    if let Some(cf) = &s.codice_fiscale {
        c.push(("codiceFiscale".into(), cf.cod_fiscale.to_string()));
        c.push((
            "statoCodiceFiscale".into(),
            codice_stato_cf(cf.stato).into(),
        ));
    }
    if let Some(g) = g {
        if let Some(x) = &g.cognome {
            c.push(("cognome".into(), x.as_str().into()));
        }
        if let Some(x) = &g.nome {
            c.push(("nome".into(), x.as_str().into()));
        }
        c.push(("sesso".into(), g.sesso.code().into()));
        c.push(("dataNascita".into(), g.data_nascita.data.to_string()));
    }
    if let Some(comp) = &s.competenza {
        c.push(("posizione".into(), comp.posizione.code().into()));
    }
    if let Some(i) = &s.iscrizione {
        c.push(("dataIscrizione".into(), i.data_iscrizione.to_string()));
    }
    c
}

/// One subject's row: id, age at `data`, and the flattened sections (generalities only
/// when asked for: they are read anyway for the age).
fn riga_soggetto(
    e: EntityRef,
    s: &RecordSections,
    data: NaiveDate,
    mostra_generalita: bool,
    extra: Option<(String, String)>,
) -> Vec<(String, String)> {
    let mut celle = vec![("idANPR".to_owned(), e.id().to_string())];
    if let Some(nascita) = s
        .get(SezioneSoggetto::Generalita.key())
        .and_then(|g| g.pointer("/dataNascita/data"))
        .and_then(|d| d.as_str())
        .and_then(|d| d.parse::<NaiveDate>().ok())
    {
        celle.push(("etaCittadino".to_owned(), eta(nascita, data).to_string()));
    }
    for (k, v) in s.iter() {
        if k == SezioneSoggetto::Generalita.key() && !mostra_generalita {
            continue;
        }
        appiattisci(k, v, &mut celle);
    }
    celle.extend(extra);
    celle
}

/// Reads the codes of a 4002 file (base64): XML with `<codiceFiscale>` /
/// `<idSchedaSoggettoANPR>` elements, or text with one code per line (the first CSV
/// column; a header line that is not a code is skipped).
pub(crate) fn leggi_file_codici(b64: &str, per_id_anpr: bool) -> Result<Vec<String>, Anomalia> {
    let illeggibile = |perche: &str| {
        Anomalia::errore(CODICE_FILE_ILLEGGIBILE, "File dei codici illeggibile")
            .campo("criteriRicerca.fileCodiciFiscali")
            .valore(perche)
            .atteso("base64 di un file di testo UTF-8 (un codice per riga) o XML")
    };
    let compatto: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compatto.as_bytes())
        .map_err(|_| illeggibile("non è base64"))?;
    let testo = String::from_utf8(bytes).map_err(|_| illeggibile("non è testo UTF-8"))?;
    let testo = testo.trim_start_matches('\u{feff}');
    let mut out = Vec::new();
    if testo.trim_start().starts_with('<') {
        if testo.contains("<!DOCTYPE") || testo.contains("<!ENTITY") {
            return Err(illeggibile("DTD non ammessa"));
        }
        let tag = if per_id_anpr {
            "idSchedaSoggettoANPR"
        } else {
            "codiceFiscale"
        };
        let apri = format!("<{tag}>");
        let chiudi = format!("</{tag}>");
        let mut resto = testo;
        while let Some(i) = resto.find(&apri) {
            let dopo = &resto[i + apri.len()..];
            let j = dopo
                .find(&chiudi)
                .ok_or_else(|| illeggibile("elemento non chiuso"))?;
            out.push(dopo[..j].trim().to_uppercase());
            resto = &dopo[j + chiudi.len()..];
        }
        return Ok(out);
    }
    for (i, riga) in testo.lines().enumerate() {
        let primo = riga
            .split([',', ';', '\t'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if primo.is_empty() {
            continue;
        }
        let sembra_codice = if per_id_anpr {
            primo.chars().all(|c| c.is_ascii_digit())
        } else {
            // An ordinary code (16 characters) or a numeric provisional one (11 digits).
            (primo.len() == 16 && primo.chars().all(|c| c.is_ascii_alphanumeric()))
                || (primo.len() == 11 && primo.chars().all(|c| c.is_ascii_digit()))
        };
        if i == 0 && !sembra_codice {
            continue; // header
        }
        out.push(primo.to_uppercase());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_files_in_text_csv_and_xml() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            leggi_file_codici(
                &enc("codiceFiscale\nrssmra80a01h501u\n\nBNCLRA70A41H501X;x\n"),
                false
            )
            .unwrap(),
            vec!["RSSMRA80A01H501U", "BNCLRA70A41H501X"]
        );
        assert_eq!(
            leggi_file_codici(
                &enc("<lista><codiceFiscale>RSSMRA80A01H501U</codiceFiscale></lista>"),
                false
            )
            .unwrap(),
            vec!["RSSMRA80A01H501U"]
        );
        assert_eq!(
            leggi_file_codici(&enc("12\n13\n"), true).unwrap(),
            vec!["12", "13"]
        );
        assert_eq!(
            leggi_file_codici("%%%", false).unwrap_err().codice,
            CODICE_FILE_ILLEGGIBILE
        );
        assert!(leggi_file_codici(&enc("<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"), false).is_err());
    }
}
