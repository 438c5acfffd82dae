//! Asynchronous requests (the durable queue of extractions and statistics) and the
//! reads extractions and ISTAT tables need (migration 7).
//!
//! Writes run on the writer thread like every other write, each in its savepoint with
//! its audit entry. Claiming is one `UPDATE ... WHERE id = (SELECT ...)`: the single
//! writer serialises claims, so two workers never take the same request.

use anpr_domain::audit::NuovaVoceAudit;
use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto};
use anpr_store::{
    ConclusioneElaborazione, Elaborazione, EntityRef, FileElaborazione, NuovaElaborazione,
    QueryElaborazioni, QueryEstrazione, QueryVersioniCampo, RecordSections, StatoElaborazione,
    StoreError, StoredVersion, SubjectIndex,
};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use sha2::{Digest, Sha256};

use crate::codec::{
    date_bound, date_from_sql, json_from_sql, json_to_sql, parse_stored, timestamp_bound,
    timestamp_from_sql, timestamp_to_sql, u64_from_sql, u64_to_sql, Context,
};
use crate::read::MAX_ROWS;
use crate::write::{chain_audit, entity_sql, op_id_from_sql, prepare_audit, INDEX_SECTION};

const COLONNE: &str = "id, servizio, comune, id_operazione_comune, utente, postazione, canale, \
     richiesta, stato, creata_il, presa_il, scadenza_presa, tentativi, conclusa_il, esito, \
     file_nome, file_formato, file_byte, file_sha256";

/// A write for the writer thread, checked and encoded beforehand.
#[derive(Debug)]
pub(crate) enum Scrittura {
    Inserisci {
        nuova: NuovaElaborazione,
        richiesta: String,
        creata_il: String,
    },
    Prendi {
        istante: String,
        scadenza: String,
    },
    Concludi {
        c: ConclusioneElaborazione,
        esito: String,
        conclusa_il: String,
        sha256: Option<String>,
    },
}

/// What a [`Scrittura`] produced.
#[derive(Debug)]
pub(crate) enum Fatto {
    Inserita(Elaborazione, bool),
    Presa(Option<Elaborazione>),
    Conclusa(bool),
}

/// An id already checked to fit (by [`Scrittura`]'s constructors).
fn sql_id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn con_oggetto(mut audit: NuovaVoceAudit, id: u64) -> Result<NuovaVoceAudit, StoreError> {
    if audit.oggetto.is_none() {
        audit.oggetto = Some(format!("elaborazione:{id}"));
    }
    prepare_audit(audit)
}

impl Scrittura {
    pub(crate) fn inserisci(mut nuova: NuovaElaborazione) -> Result<Self, StoreError> {
        u64_to_sql(nuova.id, "request id")?;
        if let Some(i) = nuova.id_operazione_comune {
            u64_to_sql(i, "idOperazioneComune")?;
        }
        nuova.audit = con_oggetto(nuova.audit, nuova.id)?;
        Ok(Scrittura::Inserisci {
            richiesta: json_to_sql(&nuova.richiesta, "request")?,
            creata_il: timestamp_to_sql(nuova.creata_il)?,
            nuova,
        })
    }

    pub(crate) fn prendi(
        istante: DateTime<Utc>,
        scadenza: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        Ok(Scrittura::Prendi {
            istante: timestamp_to_sql(istante)?,
            scadenza: timestamp_to_sql(scadenza)?,
        })
    }

    pub(crate) fn concludi(mut c: ConclusioneElaborazione) -> Result<Self, StoreError> {
        u64_to_sql(c.id, "request id")?;
        if !c.stato.conclusa() {
            return Err(StoreError::Invalid(format!(
                "a request is concluded as completata, rifiutata or errore, not {}",
                c.stato.as_str()
            )));
        }
        c.audit = con_oggetto(c.audit, c.id)?;
        let sha256 = c
            .file
            .as_ref()
            .map(|f| hex::encode(Sha256::digest(&f.contenuto)));
        Ok(Scrittura::Concludi {
            esito: json_to_sql(&c.esito, "outcome")?,
            conclusa_il: timestamp_to_sql(c.conclusa_il)?,
            sha256,
            c,
        })
    }
}

pub(crate) fn scrivi(conn: &Connection, s: &Scrittura) -> Result<Fatto, StoreError> {
    match s {
        Scrittura::Inserisci {
            nuova,
            richiesta,
            creata_il,
        } => {
            if let Some(idc) = nuova.id_operazione_comune {
                let esistente: Option<i64> = conn
                    .prepare_cached(
                        "SELECT id FROM elaborazioni WHERE comune = ?1 AND id_operazione_comune = ?2",
                    )
                    .and_then(|mut st| {
                        st.query_row(params![nuova.comune.as_str(), sql_id(idc)], |r| {
                            r.get(0)
                        })
                        .optional()
                    })
                    .ctx("looking up a request by idOperazioneComune")?;
                if let Some(id) = esistente {
                    let e = leggi(conn, u64_from_sql(id, "request id")?)?
                        .ok_or_else(|| StoreError::Corrupt("request vanished".into()))?;
                    return Ok(Fatto::Inserita(e, false));
                }
            }
            conn.prepare_cached(
                "INSERT INTO elaborazioni (id, servizio, comune, id_operazione_comune, utente, postazione,
                                           canale, richiesta, stato, creata_il, tentativi)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'inserita', ?9, 0)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    sql_id(nuova.id),
                    nuova.servizio,
                    nuova.comune.as_str(),
                    nuova.id_operazione_comune.map(sql_id),
                    nuova.utente,
                    nuova.postazione,
                    nuova.canale,
                    richiesta,
                    creata_il
                ])
            })
            .ctx("queueing a request")?;
            chain_audit(conn, nuova.audit.clone())?;
            let e = leggi(conn, nuova.id)?
                .ok_or_else(|| StoreError::Corrupt("queued request vanished".into()))?;
            Ok(Fatto::Inserita(e, true))
        }
        Scrittura::Prendi { istante, scadenza } => {
            let id: Option<i64> = conn
                .prepare_cached(
                    "UPDATE elaborazioni
                     SET stato = 'inElaborazione', presa_il = ?1, scadenza_presa = ?2,
                         tentativi = tentativi + 1
                     WHERE id = (SELECT id FROM elaborazioni
                                 WHERE stato = 'inserita'
                                    OR (stato = 'inElaborazione' AND scadenza_presa < ?1)
                                 ORDER BY id LIMIT 1)
                     RETURNING id",
                )
                .and_then(|mut st| {
                    st.query_row(params![istante, scadenza], |r| r.get(0))
                        .optional()
                })
                .ctx("taking a request")?;
            match id {
                Some(id) => Ok(Fatto::Presa(leggi(conn, u64_from_sql(id, "request id")?)?)),
                None => Ok(Fatto::Presa(None)),
            }
        }
        Scrittura::Concludi {
            c,
            esito,
            conclusa_il,
            sha256,
        } => {
            let (nome, formato, byte, contenuto) = match &c.file {
                Some(f) => (
                    Some(f.nome.clone()),
                    Some(f.formato.clone()),
                    Some(i64::try_from(f.contenuto.len()).unwrap_or(i64::MAX)),
                    Some(f.contenuto.clone()),
                ),
                None => (None, None, None, None),
            };
            let changed = conn
                .prepare_cached(
                    "UPDATE elaborazioni
                     SET stato = ?3, conclusa_il = ?4, esito = ?5, file_nome = ?6, file_formato = ?7,
                         file_byte = ?8, file_sha256 = ?9, file_contenuto = ?10, scadenza_presa = NULL
                     WHERE id = ?1 AND tentativi = ?2 AND stato = 'inElaborazione'",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        sql_id(c.id),
                        i64::from(c.tentativo),
                        c.stato.as_str(),
                        conclusa_il,
                        esito,
                        nome,
                        formato,
                        byte,
                        sha256,
                        contenuto
                    ])
                })
                .ctx("concluding a request")?;
            if changed == 0 {
                return Ok(Fatto::Conclusa(false));
            }
            chain_audit(conn, c.audit.clone())?;
            Ok(Fatto::Conclusa(true))
        }
    }
}

fn da_riga(r: &Row<'_>) -> Result<Elaborazione, StoreError> {
    let g = |e: rusqlite::Error| crate::codec::sql_error("reading a request", e);
    let id: i64 = r.get(0).map_err(g)?;
    let what = format!("request {id}");
    let ts = |v: Option<String>| -> Result<Option<DateTime<Utc>>, StoreError> {
        v.as_deref()
            .map(|t| timestamp_from_sql(t, &what))
            .transpose()
    };
    let stato: String = r.get(8).map_err(g)?;
    Ok(Elaborazione {
        id: u64_from_sql(id, "request id")?,
        servizio: r.get(1).map_err(g)?,
        comune: parse_stored(&r.get::<_, String>(2).map_err(g)?, &what)?,
        id_operazione_comune: r
            .get::<_, Option<i64>>(3)
            .map_err(g)?
            .map(|v| u64_from_sql(v, "idOperazioneComune"))
            .transpose()?,
        utente: r.get(4).map_err(g)?,
        postazione: r.get(5).map_err(g)?,
        canale: r.get(6).map_err(g)?,
        richiesta: json_from_sql(&r.get::<_, String>(7).map_err(g)?, &what)?,
        stato: StatoElaborazione::parse(&stato)
            .ok_or_else(|| StoreError::Corrupt(format!("{what}: state {stato}")))?,
        creata_il: timestamp_from_sql(&r.get::<_, String>(9).map_err(g)?, &what)?,
        presa_il: ts(r.get(10).map_err(g)?)?,
        scadenza_presa: ts(r.get(11).map_err(g)?)?,
        tentativi: u32::try_from(r.get::<_, i64>(12).map_err(g)?)
            .map_err(|_| StoreError::Corrupt(format!("{what}: attempts")))?,
        conclusa_il: ts(r.get(13).map_err(g)?)?,
        esito: r
            .get::<_, Option<String>>(14)
            .map_err(g)?
            .map(|v| json_from_sql(&v, &what))
            .transpose()?,
        file_nome: r.get(15).map_err(g)?,
        file_formato: r.get(16).map_err(g)?,
        file_byte: r
            .get::<_, Option<i64>>(17)
            .map_err(g)?
            .map(|v| u64_from_sql(v, "file size"))
            .transpose()?,
        file_sha256: r.get(18).map_err(g)?,
    })
}

pub(crate) fn leggi(conn: &Connection, id: u64) -> Result<Option<Elaborazione>, StoreError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    let mut st = conn
        .prepare_cached(&format!("SELECT {COLONNE} FROM elaborazioni WHERE id = ?1"))
        .ctx("preparing a request read")?;
    let mut rows = st.query([id]).ctx("reading a request")?;
    match rows.next().ctx("reading a request")? {
        Some(r) => Ok(Some(da_riga(r)?)),
        None => Ok(None),
    }
}

pub(crate) fn file(conn: &Connection, id: u64) -> Result<Option<FileElaborazione>, StoreError> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    type Grezzo = (Option<String>, Option<String>, Option<Vec<u8>>);
    let raw: Option<Grezzo> = conn
        .prepare_cached(
            "SELECT file_nome, file_formato, file_contenuto FROM elaborazioni WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .ctx("reading a result file")?;
    Ok(match raw {
        Some((Some(nome), Some(formato), Some(contenuto))) => Some(FileElaborazione {
            nome,
            formato,
            contenuto,
        }),
        _ => None,
    })
}

pub(crate) fn cerca(
    conn: &Connection,
    q: &QueryElaborazioni,
) -> Result<Vec<Elaborazione>, StoreError> {
    let mut sql = format!("SELECT {COLONNE} FROM elaborazioni WHERE 1 = 1");
    let mut valori: Vec<SqlValue> = Vec::new();
    let mut add = |clausola: &str, v: SqlValue| {
        sql.push_str(" AND ");
        sql.push_str(clausola);
        valori.push(v);
    };
    if let Some(c) = &q.comune {
        add("comune = ?", SqlValue::Text(c.as_str().to_owned()));
    }
    if let Some(s) = &q.servizio {
        add("servizio = ?", SqlValue::Text(s.clone()));
    }
    if let Some(s) = q.stato {
        add("stato = ?", SqlValue::Text(s.as_str().to_owned()));
    }
    if let Some(d) = q.dal {
        add("creata_il >= ?", SqlValue::Text(timestamp_bound(d)));
    }
    if let Some(d) = q.al {
        add("creata_il < ?", SqlValue::Text(timestamp_bound(d)));
    }
    let bound = |v: u64| SqlValue::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    if let Some(v) = q.id_da {
        add("id >= ?", bound(v));
    }
    if let Some(v) = q.id_a {
        add("id <= ?", bound(v));
    }
    if let Some(v) = q.dopo {
        add("id > ?", bound(v));
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    valori.push(SqlValue::Integer(i64::from(q.limit.min(MAX_ROWS))));
    let mut st = conn
        .prepare_cached(&sql)
        .ctx("preparing a request search")?;
    let mut rows = st
        .query(params_from_iter(valori.iter()))
        .ctx("searching requests")?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().ctx("searching requests")? {
        out.push(da_riga(r)?);
    }
    Ok(out)
}

/// The upper bound of a prefix range (see `read::prefix_end`).
fn fine_prefisso(prefix: &str) -> String {
    let mut end = String::with_capacity(prefix.len() + 4);
    end.push_str(prefix);
    end.push(char::MAX);
    end
}

pub(crate) fn soggetti(
    conn: &Connection,
    q: &QueryEstrazione,
) -> Result<Vec<SubjectIndex>, StoreError> {
    let mut sql = String::from(
        "SELECT s.id, s.comune, s.posizione, s.codice_fiscale, s.cognome_key, s.nome_key, s.sesso,
                s.data_nascita, s.id_comunale, s.id_famiglia, s.chiave_indirizzo
         FROM indice_soggetti s WHERE 1 = 1",
    );
    let mut p: Vec<SqlValue> = Vec::new();
    let int = |v: u64| SqlValue::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    let text = |v: &str| SqlValue::Text(v.to_owned());
    if let Some(c) = &q.comune {
        sql.push_str(" AND s.comune = ?");
        p.push(text(c.as_str()));
    }
    if !q.posizioni.is_empty() {
        sql.push_str(&format!(
            " AND s.posizione IN ({})",
            vec!["?"; q.posizioni.len()].join(", ")
        ));
        p.extend(q.posizioni.iter().map(|v| text(v)));
    }
    if let Some(v) = q.id_da {
        sql.push_str(" AND s.id >= ?");
        p.push(int(v));
    }
    if let Some(v) = q.id_a {
        sql.push_str(" AND s.id <= ?");
        p.push(int(v));
    }
    if let Some(v) = q.dopo {
        sql.push_str(" AND s.id > ?");
        p.push(int(v));
    }
    if let Some(ids) = &q.solo_id {
        let json = serde_json::to_string(ids)
            .map_err(|e| StoreError::Invalid(format!("subject ids: {e}")))?;
        sql.push_str(" AND s.id IN (SELECT value FROM json_each(?))");
        p.push(SqlValue::Text(json));
    }
    if let Some(r) = &q.id_comunale {
        sql.push_str(
            " AND s.id_comunale IS NOT NULL AND (length(s.id_comunale), s.id_comunale) >= (?, ?)
              AND (length(s.id_comunale), s.id_comunale) <= (?, ?)",
        );
        p.push(SqlValue::Integer(r.da.chars().count() as i64));
        p.push(text(&r.da));
        p.push(SqlValue::Integer(r.a.chars().count() as i64));
        p.push(text(&r.a));
    }
    if let Some(f) = &q.famiglie {
        let mut sub = String::from("SELECT f.id FROM indice_famiglie f WHERE f.tipo = ?");
        p.push(text(&f.tipo));
        if let Some(c) = &q.comune {
            sub.push_str(" AND f.comune = ?");
            p.push(text(c.as_str()));
        }
        if let Some(v) = f.id_da {
            sub.push_str(" AND f.id >= ?");
            p.push(int(v));
        }
        if let Some(v) = f.id_a {
            sub.push_str(" AND f.id <= ?");
            p.push(int(v));
        }
        if let Some(r) = &f.id_comunale {
            sub.push_str(
                " AND f.id_comunale IS NOT NULL AND (length(f.id_comunale), f.id_comunale) >= (?, ?)
                  AND (length(f.id_comunale), f.id_comunale) <= (?, ?)",
            );
            p.push(SqlValue::Integer(r.da.chars().count() as i64));
            p.push(text(&r.da));
            p.push(SqlValue::Integer(r.a.chars().count() as i64));
            p.push(text(&r.a));
        }
        sql.push_str(&format!(" AND s.id_famiglia IN ({sub})"));
    }
    if let Some(s) = &q.sesso {
        sql.push_str(" AND s.sesso = ?");
        p.push(text(s));
    }
    if let Some(d) = q.nascita_dal {
        sql.push_str(" AND s.data_nascita >= ?");
        p.push(SqlValue::Text(date_bound(d)));
    }
    if let Some(d) = q.nascita_al {
        sql.push_str(" AND s.data_nascita <= ?");
        p.push(SqlValue::Text(date_bound(d)));
    }
    if q.senza_cognome {
        sql.push_str(" AND s.cognome_key IS NULL");
    }
    if q.senza_nome {
        sql.push_str(" AND s.nome_key IS NULL");
    }
    if let Some(prefix) = &q.prefisso_indirizzo {
        sql.push_str(" AND s.chiave_indirizzo >= ? AND s.chiave_indirizzo < ?");
        p.push(text(prefix));
        p.push(SqlValue::Text(fine_prefisso(prefix)));
    }
    sql.push_str(" ORDER BY s.id LIMIT ?");
    p.push(SqlValue::Integer(i64::from(
        q.limit.min(anpr_store::elaborazioni::MAX_RIGHE_ESTRAZIONE),
    )));
    let mut st = conn
        .prepare_cached(&sql)
        .ctx("preparing an extraction query")?;
    let mut rows = st
        .query(params_from_iter(p.iter()))
        .ctx("running an extraction query")?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().ctx("running an extraction query")? {
        out.push(soggetto_da_riga(r)?);
    }
    Ok(out)
}

fn soggetto_da_riga(r: &Row<'_>) -> Result<SubjectIndex, StoreError> {
    let g = |e: rusqlite::Error| crate::codec::sql_error("reading a subject index row", e);
    let id: i64 = r.get(0).map_err(g)?;
    let what = format!("subject index {id}");
    Ok(SubjectIndex {
        id: parse_stored::<IdAnprSoggetto>(&id.to_string(), &what)?,
        comune: parse_stored(&r.get::<_, String>(1).map_err(g)?, &what)?,
        posizione: r.get(2).map_err(g)?,
        codice_fiscale: r.get(3).map_err(g)?,
        cognome_key: r.get(4).map_err(g)?,
        nome_key: r.get(5).map_err(g)?,
        sesso: r.get(6).map_err(g)?,
        data_nascita: r
            .get::<_, Option<String>>(7)
            .map_err(g)?
            .as_deref()
            .map(|d| date_from_sql(d, &what))
            .transpose()?,
        id_comunale: r.get(8).map_err(g)?,
        id_famiglia: r
            .get::<_, Option<i64>>(9)
            .map_err(g)?
            .map(|f| parse_stored::<IdAnprFamiglia>(&f.to_string(), &what))
            .transpose()?,
        chiave_indirizzo: r.get(10).map_err(g)?,
    })
}

pub(crate) fn sezioni_di(
    conn: &Connection,
    entita: &[EntityRef],
    sezioni: &[String],
    at: Option<NaiveDate>,
) -> Result<Vec<(EntityRef, RecordSections)>, StoreError> {
    if entita.len() > anpr_store::elaborazioni::MAX_ENTITA_SEZIONI {
        return Err(StoreError::Invalid(format!(
            "at most {} records per read, {} asked",
            anpr_store::elaborazioni::MAX_ENTITA_SEZIONI,
            entita.len()
        )));
    }
    if entita.is_empty() || sezioni.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(EntityRef, RecordSections)> = Vec::new();
    // One query per kind (subjects, families): `entity IN json_each(?)` drives the
    // timeline index (kind, entity, section, valido_al).
    for kind in ["S", "F", "P"] {
        let ids: Vec<i64> = entita
            .iter()
            .filter(|e| e.kind() == kind)
            .map(|e| entity_sql(*e))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let condizione = match at {
            Some(_) => "v.valido_dal <= ?4 AND (v.valido_al IS NULL OR ?4 < v.valido_al)",
            None => "v.valido_al IS NULL",
        };
        let sql = format!(
            "SELECT v.entity, v.section, v.value FROM versioni v
             WHERE v.kind = ?1 AND v.entity IN (SELECT value FROM json_each(?2))
               AND v.section IN (SELECT value FROM json_each(?3)) AND {condizione}
               AND v.section <> '{INDEX_SECTION}' AND v.value IS NOT NULL
             ORDER BY v.entity, v.section"
        );
        let mut p = vec![
            SqlValue::Text(kind.to_owned()),
            SqlValue::Text(
                serde_json::to_string(&ids).map_err(|e| StoreError::Invalid(e.to_string()))?,
            ),
            SqlValue::Text(
                serde_json::to_string(sezioni).map_err(|e| StoreError::Invalid(e.to_string()))?,
            ),
        ];
        if let Some(d) = at {
            p.push(SqlValue::Text(date_bound(d)));
        }
        let mut st = conn.prepare_cached(&sql).ctx("preparing a batch read")?;
        let raw = st
            .query_map(params_from_iter(p.iter()), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .ctx("reading records in a batch")?;
        for (id, section, value) in raw {
            let entity = EntityRef::from_parts(kind, u64_from_sql(id, "entity id")?)?;
            let value = json_from_sql(&value, &format!("{entity}, section {section}"))?;
            match out.last_mut() {
                Some((e, rs)) if *e == entity => rs.sections.push((section, value)),
                _ => out.push((
                    entity,
                    RecordSections {
                        sections: vec![(section, value)],
                    },
                )),
            }
        }
    }
    // In the caller's order.
    let posizione: std::collections::HashMap<EntityRef, usize> =
        entita.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    out.sort_by_key(|(e, _)| posizione.get(e).copied().unwrap_or(usize::MAX));
    Ok(out)
}

pub(crate) fn versioni_per_campo(
    conn: &Connection,
    q: &QueryVersioniCampo,
) -> Result<Vec<StoredVersion>, StoreError> {
    if !q.nomi_validi() {
        return Err(StoreError::Invalid(format!(
            "section {:?} / field {:?}: letters only",
            q.sezione, q.campo
        )));
    }
    // Section and field inlined (checked above: letters only), so that the partial
    // expression index `versioni_competenza_comune` applies.
    let sql = format!(
        "SELECT kind, entity, valido_dal, valido_al, creata_da, chiusa_da, value FROM versioni
         WHERE section = '{s}' AND json_extract(value, '$.{c}') = ?1
           AND valido_dal <= ?3 AND (valido_al IS NULL OR valido_al > ?2)
         ORDER BY kind, entity, valido_dal, id",
        s = q.sezione,
        c = q.campo
    );
    let mut st = conn
        .prepare_cached(&sql)
        .ctx("preparing a versions query")?;
    type Raw = (
        String,
        i64,
        String,
        Option<String>,
        i64,
        Option<i64>,
        Option<String>,
    );
    let raw = st
        .query_map(
            params![q.valore, date_bound(q.dal), date_bound(q.al)],
            |r| {
                Ok::<Raw, _>((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading versions by field")?;
    raw.into_iter()
        .map(|(kind, id, dal, al, creata, chiusa, value)| {
            let entity = EntityRef::from_parts(&kind, u64_from_sql(id, "entity id")?)?;
            let what = format!("{entity}, section {}", q.sezione);
            Ok(StoredVersion {
                entity,
                section: q.sezione.clone(),
                valido_dal: date_from_sql(&dal, &what)?,
                valido_al: al.as_deref().map(|a| date_from_sql(a, &what)).transpose()?,
                creata_da: op_id_from_sql(creata)?,
                chiusa_da: chiusa.map(op_id_from_sql).transpose()?,
                value: value
                    .as_deref()
                    .map(|v| json_from_sql(v, &what))
                    .transpose()?,
            })
        })
        .collect()
}
