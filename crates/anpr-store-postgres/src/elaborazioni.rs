//! Asynchronous requests (the durable queue of extractions and statistics) and the
//! reads extractions and ISTAT tables need (migration 7).
//!
//! Claiming uses `FOR UPDATE SKIP LOCKED`, so workers of several processes sharing the
//! database never take the same request and never wait on one another.

use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto};
use anpr_store::{
    ConclusioneElaborazione, Elaborazione, EntityRef, FileElaborazione, NuovaElaborazione,
    QueryElaborazioni, QueryEstrazione, QueryVersioniCampo, RecordSections, StatoElaborazione,
    StoreError, StoredVersion, SubjectIndex,
};
use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::{to_i64, to_u64, Context, Failure};
use crate::read::{col, entity, op_id, INDEX_SECTION, MAX_ROWS};
use crate::write::{
    append_chained, confirm_durable, exec, lock_audit_head, micros, normalised, plain_outcome,
    query, relax_commit, with_retries, Statements,
};
use crate::PostgresStore;

const COLONNE: &str = "id, servizio, comune, id_operazione_comune, utente, postazione, canale, \
     richiesta, stato, creata_il, presa_il, scadenza_presa, tentativi, conclusa_il, esito, \
     file_nome, file_formato, file_byte, file_sha256";

fn da_riga(r: &Row) -> Result<Elaborazione, StoreError> {
    let id: i64 = col(r, 0)?;
    let stato: String = col(r, 8)?;
    Ok(Elaborazione {
        id: to_u64(id, "request id")?,
        servizio: col(r, 1)?,
        comune: col::<String>(r, 2)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("request {id}: municipality: {e}")))?,
        id_operazione_comune: col::<Option<i64>>(r, 3)?
            .map(|v| to_u64(v, "idOperazioneComune"))
            .transpose()?,
        utente: col(r, 4)?,
        postazione: col(r, 5)?,
        canale: col(r, 6)?,
        richiesta: col(r, 7)?,
        stato: StatoElaborazione::parse(&stato)
            .ok_or_else(|| StoreError::Corrupt(format!("request {id}: state {stato}")))?,
        creata_il: col(r, 9)?,
        presa_il: col(r, 10)?,
        scadenza_presa: col(r, 11)?,
        tentativi: u32::try_from(col::<i32>(r, 12)?)
            .map_err(|_| StoreError::Corrupt(format!("request {id}: attempts")))?,
        conclusa_il: col(r, 13)?,
        esito: col(r, 14)?,
        file_nome: col(r, 15)?,
        file_formato: col(r, 16)?,
        file_byte: col::<Option<i64>>(r, 17)?
            .map(|v| to_u64(v, "file size"))
            .transpose()?,
        file_sha256: col(r, 18)?,
    })
}

fn senza_nul(s: &str) -> bool {
    !s.contains('\0')
}

/// `Store::inserisci_elaborazione`.
pub(crate) async fn inserisci(
    store: &PostgresStore,
    mut nuova: NuovaElaborazione,
) -> Result<(Elaborazione, bool), StoreError> {
    let id = to_i64(nuova.id, "request id")?;
    let idc = nuova
        .id_operazione_comune
        .map(|v| to_i64(v, "idOperazioneComune"))
        .transpose()?;
    if !senza_nul(&nuova.utente) || !senza_nul(&nuova.servizio) {
        return Err(StoreError::Invalid("NUL in a request field".into()));
    }
    if nuova.audit.oggetto.is_none() {
        nuova.audit.oggetto = Some(format!("elaborazione:{}", nuova.id));
    }
    let audit = normalised(nuova.audit.clone());
    let creata_il = micros(nuova.creata_il);
    let outcome = with_retries("inserisci_elaborazione", nuova.id, || async {
        let mut client = store.client().await?;
        let tx = client
            .transaction()
            .await
            .ctx("inserisci_elaborazione: begin")?;
        let st = Statements::prepare(&tx).await?;
        // The municipality's row of `ultimo_id_comune` is not involved: a request id of
        // the municipality is only an idempotency key here. Concurrent duplicates are
        // settled by the unique constraint (ON CONFLICT DO NOTHING, then read).
        let rows = query(
            &tx,
            "queueing a request",
            &format!(
                "INSERT INTO elaborazioni (id, servizio, comune, id_operazione_comune, utente, postazione,
                                           canale, richiesta, stato, creata_il, tentativi)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'inserita', $9, 0)
                 ON CONFLICT (comune, id_operazione_comune) DO NOTHING
                 RETURNING {COLONNE}"
            ),
            &[
                &id,
                &nuova.servizio,
                &nuova.comune.as_str(),
                &idc,
                &nuova.utente,
                &nuova.postazione,
                &nuova.canale,
                &nuova.richiesta,
                &creata_il,
            ],
        )
        .await?;
        let Some(r) = rows.first() else {
            let rows = query(
                &tx,
                "reading the request already queued",
                &format!(
                    "SELECT {COLONNE} FROM elaborazioni WHERE comune = $1 AND id_operazione_comune = $2"
                ),
                &[&nuova.comune.as_str(), &idc],
            )
            .await?;
            let e = match rows.first() {
                Some(r) => da_riga(r)?,
                None => return Err(StoreError::Corrupt("queued request vanished".into()).into()),
            };
            tx.commit().await.ctx("inserisci_elaborazione: commit")?;
            return Ok((e, false));
        };
        let e = da_riga(r)?;
        relax_commit(&tx).await?;
        let head = lock_audit_head(&tx, &st).await?;
        append_chained(&tx, &st, head, audit.clone(), None).await?;
        tx.commit().await.ctx("inserisci_elaborazione: commit")?;
        confirm_durable(&client, "inserisci_elaborazione").await?;
        Ok((e, true))
    })
    .await;
    plain_outcome("inserisci_elaborazione", outcome)
}

/// `Store::prendi_elaborazione`.
pub(crate) async fn prendi(
    store: &PostgresStore,
    istante: DateTime<Utc>,
    scadenza: DateTime<Utc>,
) -> Result<Option<Elaborazione>, StoreError> {
    let (istante, scadenza) = (micros(istante), micros(scadenza));
    let outcome = with_retries("prendi_elaborazione", 0, || async {
        let mut client = store.client().await?;
        let tx = client
            .transaction()
            .await
            .ctx("prendi_elaborazione: begin")?;
        let rows = query(
            &tx,
            "taking a request",
            &format!(
                "UPDATE elaborazioni
                 SET stato = 'inElaborazione', presa_il = $1, scadenza_presa = $2,
                     tentativi = tentativi + 1
                 WHERE id = (SELECT id FROM elaborazioni
                             WHERE stato = 'inserita'
                                OR (stato = 'inElaborazione' AND scadenza_presa < $1)
                             ORDER BY id LIMIT 1
                             FOR UPDATE SKIP LOCKED)
                 RETURNING {COLONNE}"
            ),
            &[&istante, &scadenza],
        )
        .await?;
        let e = rows.first().map(da_riga).transpose()?;
        tx.commit().await.ctx("prendi_elaborazione: commit")?;
        Ok(e)
    })
    .await;
    plain_outcome("prendi_elaborazione", outcome)
}

/// `Store::concludi_elaborazione`.
pub(crate) async fn concludi(
    store: &PostgresStore,
    mut c: ConclusioneElaborazione,
) -> Result<bool, StoreError> {
    if !c.stato.conclusa() {
        return Err(StoreError::Invalid(format!(
            "a request is concluded as completata, rifiutata or errore, not {}",
            c.stato.as_str()
        )));
    }
    let id = to_i64(c.id, "request id")?;
    if c.audit.oggetto.is_none() {
        c.audit.oggetto = Some(format!("elaborazione:{}", c.id));
    }
    let audit = normalised(c.audit.clone());
    let conclusa_il = micros(c.conclusa_il);
    let tentativo = i32::try_from(c.tentativo)
        .map_err(|_| StoreError::Invalid("attempt number too large".into()))?;
    let (nome, formato, byte, contenuto, sha) = match &c.file {
        Some(f) => (
            Some(f.nome.clone()),
            Some(f.formato.clone()),
            Some(i64::try_from(f.contenuto.len()).unwrap_or(i64::MAX)),
            Some(f.contenuto.clone()),
            Some(hex::encode(Sha256::digest(&f.contenuto))),
        ),
        None => (None, None, None, None, None),
    };
    let outcome = with_retries("concludi_elaborazione", c.id, || async {
        let mut client = store.client().await?;
        let tx = client
            .transaction()
            .await
            .ctx("concludi_elaborazione: begin")?;
        let st = Statements::prepare(&tx).await?;
        let changed = exec(
            &tx,
            "concluding a request",
            "UPDATE elaborazioni
             SET stato = $3, conclusa_il = $4, esito = $5, file_nome = $6, file_formato = $7,
                 file_byte = $8, file_sha256 = $9, file_contenuto = $10, scadenza_presa = NULL
             WHERE id = $1 AND tentativi = $2 AND stato = 'inElaborazione'",
            &[
                &id,
                &tentativo,
                &c.stato.as_str(),
                &conclusa_il,
                &c.esito,
                &nome,
                &formato,
                &byte,
                &sha,
                &contenuto,
            ],
        )
        .await?;
        if changed == 0 {
            tx.commit().await.ctx("concludi_elaborazione: commit")?;
            return Ok(false);
        }
        relax_commit(&tx).await?;
        let head = lock_audit_head(&tx, &st).await?;
        append_chained(&tx, &st, head, audit.clone(), None).await?;
        tx.commit().await.ctx("concludi_elaborazione: commit")?;
        confirm_durable(&client, "concludi_elaborazione").await?;
        Ok(true)
    })
    .await;
    plain_outcome("concludi_elaborazione", outcome)
}

/// `Store::elaborazione`.
pub(crate) async fn leggi(store: &PostgresStore, id: u64) -> Result<Option<Elaborazione>, Failure> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!("SELECT {COLONNE} FROM elaborazioni WHERE id = $1"))
        .await
        .ctx("reading a request")?;
    let row = client
        .query_opt(&stmt, &[&id])
        .await
        .ctx("reading a request")?;
    Ok(row.as_ref().map(da_riga).transpose()?)
}

/// `Store::file_elaborazione`.
pub(crate) async fn file(
    store: &PostgresStore,
    id: u64,
) -> Result<Option<FileElaborazione>, Failure> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT file_nome, file_formato, file_contenuto FROM elaborazioni WHERE id = $1",
        )
        .await
        .ctx("reading a result file")?;
    let row = client
        .query_opt(&stmt, &[&id])
        .await
        .ctx("reading a result file")?;
    let Some(r) = row else { return Ok(None) };
    let (nome, formato, contenuto): (Option<String>, Option<String>, Option<Vec<u8>>) =
        (col(&r, 0)?, col(&r, 1)?, col(&r, 2)?);
    Ok(match (nome, formato, contenuto) {
        (Some(nome), Some(formato), Some(contenuto)) => Some(FileElaborazione {
            nome,
            formato,
            contenuto,
        }),
        _ => None,
    })
}

/// A `WHERE` clause built from optional criteria (`$?` stands for the next parameter).
#[derive(Default)]
struct Filtro {
    clausole: Vec<String>,
    parametri: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Filtro {
    fn add(&mut self, clausola: &str, v: impl ToSql + Sync + Send + 'static) {
        self.parametri.push(Box::new(v));
        self.clausole
            .push(clausola.replace("$?", &format!("${}", self.parametri.len())));
    }

    /// Adds a clause with several parameters (`$?` each, in order).
    fn add_n(&mut self, clausola: &str, vs: Vec<Box<dyn ToSql + Sync + Send>>) {
        let mut out = String::new();
        let mut rest = clausola;
        for v in vs {
            self.parametri.push(v);
            match rest.find("$?") {
                Some(i) => {
                    out.push_str(&rest[..i]);
                    out.push_str(&format!("${}", self.parametri.len()));
                    rest = &rest[i + 2..];
                }
                None => break,
            }
        }
        out.push_str(rest);
        self.clausole.push(out);
    }

    fn where_clause(&self) -> String {
        if self.clausole.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clausole.join(" AND "))
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.parametri
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

fn i64_sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `Store::elaborazioni`.
pub(crate) async fn cerca(
    store: &PostgresStore,
    q: &QueryElaborazioni,
) -> Result<Vec<Elaborazione>, Failure> {
    let mut f = Filtro::default();
    if let Some(c) = &q.comune {
        f.add("comune = $?", c.as_str().to_owned());
    }
    if let Some(s) = &q.servizio {
        if !senza_nul(s) {
            return Ok(Vec::new());
        }
        f.add("servizio = $?", s.clone());
    }
    if let Some(s) = q.stato {
        f.add("stato = $?", s.as_str().to_owned());
    }
    if let Some(d) = q.dal {
        f.add("creata_il >= $?", d);
    }
    if let Some(d) = q.al {
        f.add("creata_il < $?", d);
    }
    if let Some(v) = q.id_da {
        f.add("id >= $?", i64_sat(v));
    }
    if let Some(v) = q.id_a {
        f.add("id <= $?", i64_sat(v));
    }
    if let Some(v) = q.dopo {
        f.add("id > $?", i64_sat(v));
    }
    let sql = format!(
        "SELECT {COLONNE} FROM elaborazioni{} ORDER BY id LIMIT {}",
        f.where_clause(),
        i64::from(q.limit.min(MAX_ROWS))
    );
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&sql)
        .await
        .ctx("searching requests")?;
    let rows = client
        .query(&stmt, &f.params())
        .await
        .ctx("searching requests")?;
    Ok(rows.iter().map(da_riga).collect::<Result<Vec<_>, _>>()?)
}

fn soggetto_da_riga(row: &Row) -> Result<SubjectIndex, StoreError> {
    let id: i64 = col(row, 0)?;
    Ok(SubjectIndex {
        id: IdAnprSoggetto::new(to_u64(id, "subject id")?)
            .map_err(|e| StoreError::Corrupt(format!("stored subject id: {e}")))?,
        comune: col::<String>(row, 1)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("stored municipality: {e}")))?,
        posizione: col(row, 2)?,
        codice_fiscale: col(row, 3)?,
        cognome_key: col(row, 4)?,
        nome_key: col(row, 5)?,
        sesso: col(row, 6)?,
        data_nascita: col(row, 7)?,
        id_comunale: col(row, 8)?,
        id_famiglia: col::<Option<i64>>(row, 9)?
            .map(|v| {
                IdAnprFamiglia::new(to_u64(v, "family id")?)
                    .map_err(|e| StoreError::Corrupt(format!("stored family id: {e}")))
            })
            .transpose()?,
        chiave_indirizzo: col(row, 10)?,
    })
}

/// `Store::soggetti_per_estrazione`.
pub(crate) async fn soggetti(
    store: &PostgresStore,
    q: &QueryEstrazione,
) -> Result<Vec<SubjectIndex>, Failure> {
    let testi = [
        q.sesso.as_deref(),
        q.prefisso_indirizzo.as_deref(),
        q.id_comunale.as_ref().map(|r| r.da.as_str()),
        q.id_comunale.as_ref().map(|r| r.a.as_str()),
    ];
    if testi.iter().flatten().any(|t| !senza_nul(t)) || q.posizioni.iter().any(|p| !senza_nul(p)) {
        return Ok(Vec::new());
    }
    let mut f = Filtro::default();
    if let Some(c) = &q.comune {
        f.add("s.comune = $?", c.as_str().to_owned());
    }
    if !q.posizioni.is_empty() {
        f.add("s.posizione = ANY($?)", q.posizioni.clone());
    }
    if let Some(v) = q.id_da {
        f.add("s.id >= $?", i64_sat(v));
    }
    if let Some(v) = q.id_a {
        f.add("s.id <= $?", i64_sat(v));
    }
    if let Some(v) = q.dopo {
        f.add("s.id > $?", i64_sat(v));
    }
    if let Some(ids) = &q.solo_id {
        let ids: Vec<i64> = ids.iter().map(|v| i64_sat(*v)).collect();
        f.add("s.id = ANY($?)", ids);
    }
    let lunghezza = |s: &str| i32::try_from(s.chars().count()).unwrap_or(i32::MAX);
    if let Some(r) = &q.id_comunale {
        f.add_n(
            "s.id_comunale IS NOT NULL AND (length(s.id_comunale), s.id_comunale) >= ($?, $?) \
             AND (length(s.id_comunale), s.id_comunale) <= ($?, $?)",
            vec![
                Box::new(lunghezza(&r.da)),
                Box::new(r.da.clone()),
                Box::new(lunghezza(&r.a)),
                Box::new(r.a.clone()),
            ],
        );
    }
    if let Some(fam) = &q.famiglie {
        if !senza_nul(&fam.tipo) {
            return Ok(Vec::new());
        }
        let mut sub = String::from("SELECT f.id FROM indice_famiglie f WHERE f.tipo = $?");
        let mut vs: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(fam.tipo.clone())];
        if let Some(c) = &q.comune {
            sub.push_str(" AND f.comune = $?");
            vs.push(Box::new(c.as_str().to_owned()));
        }
        if let Some(v) = fam.id_da {
            sub.push_str(" AND f.id >= $?");
            vs.push(Box::new(i64_sat(v)));
        }
        if let Some(v) = fam.id_a {
            sub.push_str(" AND f.id <= $?");
            vs.push(Box::new(i64_sat(v)));
        }
        if let Some(r) = &fam.id_comunale {
            if !senza_nul(&r.da) || !senza_nul(&r.a) {
                return Ok(Vec::new());
            }
            sub.push_str(
                " AND f.id_comunale IS NOT NULL AND (length(f.id_comunale), f.id_comunale) >= ($?, $?) \
                 AND (length(f.id_comunale), f.id_comunale) <= ($?, $?)",
            );
            vs.push(Box::new(lunghezza(&r.da)));
            vs.push(Box::new(r.da.clone()));
            vs.push(Box::new(lunghezza(&r.a)));
            vs.push(Box::new(r.a.clone()));
        }
        f.add_n(&format!("s.id_famiglia IN ({sub})"), vs);
    }
    if let Some(s) = &q.sesso {
        f.add("s.sesso = $?", s.clone());
    }
    if let Some(d) = q.nascita_dal {
        f.add("s.data_nascita >= $?", d);
    }
    if let Some(d) = q.nascita_al {
        f.add("s.data_nascita <= $?", d);
    }
    if q.senza_cognome {
        f.clausole.push("s.cognome_key IS NULL".into());
    }
    if q.senza_nome {
        f.clausole.push("s.nome_key IS NULL".into());
    }
    if let Some(p) = &q.prefisso_indirizzo {
        f.add("starts_with(s.chiave_indirizzo, $?)", p.clone());
    }
    let sql = format!(
        "SELECT s.id, s.comune, s.posizione, s.codice_fiscale, s.cognome_key, s.nome_key, s.sesso, \
                s.data_nascita, s.id_comunale, s.id_famiglia, s.chiave_indirizzo \
         FROM indice_soggetti s{} ORDER BY s.id LIMIT {}",
        f.where_clause(),
        i64::from(q.limit.min(anpr_store::elaborazioni::MAX_RIGHE_ESTRAZIONE))
    );
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&sql)
        .await
        .ctx("running an extraction query")?;
    let rows = client
        .query(&stmt, &f.params())
        .await
        .ctx("running an extraction query")?;
    Ok(rows
        .iter()
        .map(soggetto_da_riga)
        .collect::<Result<Vec<_>, _>>()?)
}

/// `Store::sezioni_di`.
pub(crate) async fn sezioni_di(
    store: &PostgresStore,
    entita: &[EntityRef],
    sezioni: &[String],
    at: Option<NaiveDate>,
) -> Result<Vec<(EntityRef, RecordSections)>, Failure> {
    if entita.len() > anpr_store::elaborazioni::MAX_ENTITA_SEZIONI {
        return Err(StoreError::Invalid(format!(
            "at most {} records per read, {} asked",
            anpr_store::elaborazioni::MAX_ENTITA_SEZIONI,
            entita.len()
        ))
        .into());
    }
    if entita.is_empty() || sezioni.is_empty() || sezioni.iter().any(|s| !senza_nul(s)) {
        return Ok(Vec::new());
    }
    let client = store.client().await?;
    let mut out: Vec<(EntityRef, RecordSections)> = Vec::new();
    for kind in ["S", "F", "P"] {
        let ids: Vec<i64> = entita
            .iter()
            .filter(|e| e.kind() == kind)
            .map(|e| i64_sat(e.id()))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let condizione = match at {
            Some(_) => "valido_dal <= $4 AND (valido_al IS NULL OR $4 < valido_al)",
            None => "valido_al IS NULL",
        };
        let sql = format!(
            "SELECT entita, sezione, valore FROM versioni
             WHERE kind = $1 AND entita = ANY($2) AND sezione = ANY($3) AND {condizione}
               AND sezione <> '{INDEX_SECTION}' AND valore IS NOT NULL
             ORDER BY entita, sezione"
        );
        let stmt = client
            .prepare_cached(&sql)
            .await
            .ctx("reading records in a batch")?;
        let rows = match at {
            Some(d) => client.query(&stmt, &[&kind, &ids, &sezioni, &d]).await,
            None => client.query(&stmt, &[&kind, &ids, &sezioni]).await,
        }
        .ctx("reading records in a batch")?;
        for r in &rows {
            let e = entity(kind, col(r, 0)?)?;
            let section: String = col(r, 1)?;
            let value: serde_json::Value = col(r, 2)?;
            match out.last_mut() {
                Some((last, rs)) if *last == e => rs.sections.push((section, value)),
                _ => out.push((
                    e,
                    RecordSections {
                        sections: vec![(section, value)],
                    },
                )),
            }
        }
    }
    let posizione: std::collections::HashMap<EntityRef, usize> =
        entita.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    out.sort_by_key(|(e, _)| posizione.get(e).copied().unwrap_or(usize::MAX));
    Ok(out)
}

/// `Store::versioni_per_campo`.
pub(crate) async fn versioni_per_campo(
    store: &PostgresStore,
    q: &QueryVersioniCampo,
) -> Result<Vec<StoredVersion>, Failure> {
    if !q.nomi_validi() {
        return Err(StoreError::Invalid(format!(
            "section {:?} / field {:?}: letters only",
            q.sezione, q.campo
        ))
        .into());
    }
    if !senza_nul(&q.valore) {
        return Ok(Vec::new());
    }
    // Section and field inlined (letters only, checked above) so that the partial
    // expression index `versioni_competenza_comune` applies.
    let sql = format!(
        "SELECT kind, entita, valido_dal, valido_al, creata_da, chiusa_da, valore FROM versioni
         WHERE sezione = '{s}' AND (valore ->> '{c}') = $1
           AND valido_dal <= $3 AND (valido_al IS NULL OR valido_al > $2)
         ORDER BY kind, entita, valido_dal, id",
        s = q.sezione,
        c = q.campo
    );
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&sql)
        .await
        .ctx("reading versions by field")?;
    let rows = client
        .query(&stmt, &[&q.valore, &q.dal, &q.al])
        .await
        .ctx("reading versions by field")?;
    rows.iter()
        .map(|r| {
            let kind: String = col(r, 0)?;
            Ok(StoredVersion {
                entity: entity(&kind, col(r, 1)?)?,
                section: q.sezione.clone(),
                valido_dal: col(r, 2)?,
                valido_al: col(r, 3)?,
                creata_da: op_id(col(r, 4)?)?,
                chiusa_da: col::<Option<i64>>(r, 5)?.map(op_id).transpose()?,
                value: col(r, 6)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()
        .map_err(Failure::from)
}
