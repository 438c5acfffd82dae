//! Issued documents (certificates, paper identity cards) and the protocol register.
//!
//! Writes run on the writer thread like every other write: the protocol number is
//! taken from `protocolli` with an upsert in the same savepoint as the insert and the
//! audit entry, so numbers are gap-free per municipality and year and never reused.

use anpr_domain::audit::NuovaVoceAudit;
use anpr_domain::ids::IdAnprSoggetto;
use anpr_store::{DocumentoEmesso, NuovoDocumento, QueryDocumenti, StoreError, TipoDocumento};
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::codec::{
    json_from_sql, json_to_sql, parse_stored, timestamp_bound, timestamp_from_sql,
    timestamp_to_sql, u64_from_sql, Context,
};
use crate::read::MAX_ROWS;
use crate::write::{chain_audit, domain_id_sql, prepare_audit};

const COLONNE: &str =
    "id, tipo, comune, anno, protocollo, soggetto, emesso_il, utente, contenuto, \
                       annullato_il, motivo_annullamento";

/// A document checked and encoded before it reaches the writer thread.
#[derive(Debug)]
pub(crate) struct DocumentoPreparato {
    doc: NuovoDocumento,
    emesso_il: String,
    contenuto: String,
}

impl DocumentoPreparato {
    pub(crate) fn new(mut doc: NuovoDocumento) -> Result<Self, StoreError> {
        if doc.audit.oggetto.is_none() {
            doc.audit.oggetto = Some(format!("documento:{}", doc.id));
        }
        doc.audit = prepare_audit(doc.audit)?;
        Ok(Self {
            emesso_il: timestamp_to_sql(doc.emesso_il)?,
            contenuto: json_to_sql(&doc.contenuto, "document content")?,
            doc,
        })
    }
}

/// An annulment checked before it reaches the writer thread.
#[derive(Debug)]
pub(crate) struct AnnullamentoPreparato {
    id: String,
    istante: String,
    motivo: String,
    audit: NuovaVoceAudit,
}

impl AnnullamentoPreparato {
    pub(crate) fn new(
        id: &str,
        istante: DateTime<Utc>,
        motivo: String,
        audit: NuovaVoceAudit,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            id: id.to_owned(),
            istante: timestamp_to_sql(istante)?,
            motivo,
            audit: prepare_audit(audit)?,
        })
    }
}

pub(crate) fn emetti(
    conn: &Connection,
    p: &DocumentoPreparato,
) -> Result<DocumentoEmesso, StoreError> {
    let d = &p.doc;
    let protocollo: i64 = conn
        .prepare_cached(
            "INSERT INTO protocolli (comune, anno, ultimo) VALUES (?1, ?2, 1)
             ON CONFLICT (comune, anno) DO UPDATE SET ultimo = ultimo + 1
             RETURNING ultimo",
        )
        .and_then(|mut s| s.query_row(params![d.comune.as_str(), d.anno], |r| r.get(0)))
        .ctx("allocating a protocol number")?;
    conn.prepare_cached(
        "INSERT INTO documenti (id, tipo, comune, anno, protocollo, soggetto, emesso_il, utente, contenuto)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            d.id,
            d.tipo.as_str(),
            d.comune.as_str(),
            d.anno,
            protocollo,
            d.soggetto.map(|s| domain_id_sql(s.get())),
            p.emesso_il,
            d.utente,
            p.contenuto
        ])
    })
    .ctx("inserting an issued document")?;
    chain_audit(conn, d.audit.clone())?;
    leggi(conn, &d.id)?.ok_or_else(|| StoreError::Corrupt("issued document vanished".into()))
}

pub(crate) fn annulla(
    conn: &Connection,
    a: &AnnullamentoPreparato,
) -> Result<Option<DocumentoEmesso>, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE documenti SET annullato_il = ?2, motivo_annullamento = ?3
             WHERE id = ?1 AND annullato_il IS NULL",
        )
        .and_then(|mut s| s.execute(params![a.id, a.istante, a.motivo]))
        .ctx("annulling a document")?;
    if changed > 0 {
        chain_audit(conn, a.audit.clone())?;
    }
    leggi(conn, &a.id)
}

pub(crate) fn leggi(conn: &Connection, id: &str) -> Result<Option<DocumentoEmesso>, StoreError> {
    let raw = conn
        .prepare_cached(&format!("SELECT {COLONNE} FROM documenti WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], Grezzo::da_riga).optional())
        .ctx("reading an issued document")?;
    raw.map(Grezzo::decodifica).transpose()
}

pub(crate) fn cerca(
    conn: &Connection,
    q: &QueryDocumenti,
) -> Result<Vec<DocumentoEmesso>, StoreError> {
    let mut sql = format!("SELECT {COLONNE} FROM documenti WHERE 1 = 1");
    let mut valori: Vec<SqlValue> = Vec::new();
    let mut add = |clausola: &str, v: SqlValue| {
        sql.push_str(" AND ");
        sql.push_str(clausola);
        valori.push(v);
    };
    if let Some(c) = &q.comune {
        add("comune = ?", SqlValue::Text(c.as_str().to_owned()));
    }
    if let Some(t) = q.tipo {
        add("tipo = ?", SqlValue::Text(t.as_str().to_owned()));
    }
    if let Some(s) = q.soggetto {
        add("soggetto = ?", SqlValue::Integer(domain_id_sql(s.get())));
    }
    if let Some(t) = q.dal {
        add("emesso_il >= ?", SqlValue::Text(timestamp_bound(t)));
    }
    if let Some(t) = q.al {
        add("emesso_il < ?", SqlValue::Text(timestamp_bound(t)));
    }
    sql.push_str(" ORDER BY emesso_il, id LIMIT ?");
    valori.push(SqlValue::Integer(i64::from(q.limit.min(MAX_ROWS))));
    let mut st = conn
        .prepare_cached(&sql)
        .ctx("preparing a documents query")?;
    let raw = st
        .query_map(params_from_iter(valori.iter()), Grezzo::da_riga)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .ctx("reading issued documents")?;
    raw.into_iter().map(Grezzo::decodifica).collect()
}

/// A row as stored, decoded outside the driver's callback.
struct Grezzo {
    id: String,
    tipo: String,
    comune: String,
    anno: i32,
    protocollo: i64,
    soggetto: Option<i64>,
    emesso_il: String,
    utente: String,
    contenuto: String,
    annullato_il: Option<String>,
    motivo_annullamento: Option<String>,
}

impl Grezzo {
    fn da_riga(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            tipo: r.get(1)?,
            comune: r.get(2)?,
            anno: r.get(3)?,
            protocollo: r.get(4)?,
            soggetto: r.get(5)?,
            emesso_il: r.get(6)?,
            utente: r.get(7)?,
            contenuto: r.get(8)?,
            annullato_il: r.get(9)?,
            motivo_annullamento: r.get(10)?,
        })
    }

    fn decodifica(self) -> Result<DocumentoEmesso, StoreError> {
        Ok(DocumentoEmesso {
            tipo: TipoDocumento::parse(&self.tipo)
                .ok_or_else(|| StoreError::Corrupt(format!("document kind {}", self.tipo)))?,
            comune: parse_stored(&self.comune, "document municipality")?,
            anno: self.anno,
            protocollo: u64_from_sql(self.protocollo, "protocol number")?,
            soggetto: self
                .soggetto
                .map(|s| {
                    u64_from_sql(s, "document subject").and_then(|s| {
                        IdAnprSoggetto::new(s)
                            .map_err(|_| StoreError::Corrupt(format!("document subject {s}")))
                    })
                })
                .transpose()?,
            emesso_il: timestamp_from_sql(&self.emesso_il, "issue time")?,
            utente: self.utente,
            contenuto: json_from_sql(&self.contenuto, "document content")?,
            annullato_il: self
                .annullato_il
                .map(|t| timestamp_from_sql(&t, "annulment time"))
                .transpose()?,
            motivo_annullamento: self.motivo_annullamento,
            id: self.id,
        })
    }
}

/// Municipality parameters checked and encoded before they reach the writer thread.
#[derive(Debug)]
pub(crate) struct ParametriPreparati {
    p: anpr_store::NuoviParametriComune,
    valori: String,
    istante: String,
}

impl ParametriPreparati {
    pub(crate) fn new(mut p: anpr_store::NuoviParametriComune) -> Result<Self, StoreError> {
        if p.logo
            .as_ref()
            .is_some_and(|l| l.len() > anpr_store::LOGO_MAX_BYTES)
        {
            return Err(StoreError::Invalid(format!(
                "logo over {} bytes",
                anpr_store::LOGO_MAX_BYTES
            )));
        }
        if p.audit.oggetto.is_none() {
            p.audit.oggetto = Some(format!("parametri:{}", p.comune));
        }
        p.audit = prepare_audit(p.audit)?;
        Ok(Self {
            valori: json_to_sql(&p.valori, "municipality parameters")?,
            istante: timestamp_to_sql(p.istante)?,
            p,
        })
    }
}

pub(crate) fn salva_parametri(
    conn: &Connection,
    p: &ParametriPreparati,
) -> Result<anpr_store::ParametriComune, StoreError> {
    conn.prepare_cached(
        "INSERT INTO parametri_comune (comune, valori, logo, aggiornato_il, utente, versione)
         VALUES (?1, ?2, ?3, ?4, ?5, 1)
         ON CONFLICT (comune) DO UPDATE SET valori = excluded.valori, logo = excluded.logo,
             aggiornato_il = excluded.aggiornato_il, utente = excluded.utente,
             versione = parametri_comune.versione + 1",
    )
    .and_then(|mut s| {
        s.execute(params![
            p.p.comune.as_str(),
            p.valori,
            p.p.logo,
            p.istante,
            p.p.utente
        ])
    })
    .ctx("saving municipality parameters")?;
    chain_audit(conn, p.p.audit.clone())?;
    leggi_parametri(conn, p.p.comune.as_str())?
        .ok_or_else(|| StoreError::Corrupt("saved municipality parameters vanished".into()))
}

pub(crate) fn leggi_parametri(
    conn: &Connection,
    comune: &str,
) -> Result<Option<anpr_store::ParametriComune>, StoreError> {
    type Riga = (String, String, Option<Vec<u8>>, String, String, i64);
    let riga: Option<Riga> = conn
        .prepare_cached(
            "SELECT comune, valori, logo, aggiornato_il, utente, versione
             FROM parametri_comune WHERE comune = ?1",
        )
        .and_then(|mut s| {
            s.query_row([comune], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()
        })
        .ctx("reading municipality parameters")?;
    riga.map(|(comune, valori, logo, aggiornato_il, utente, versione)| {
        Ok(anpr_store::ParametriComune {
            comune: parse_stored(&comune, "parameters municipality")?,
            valori: json_from_sql(&valori, "municipality parameters")?,
            logo,
            aggiornato_il: timestamp_from_sql(&aggiornato_il, "parameters time")?,
            utente,
            versione: u64_from_sql(versione, "parameters version")?,
        })
    })
    .transpose()
}
