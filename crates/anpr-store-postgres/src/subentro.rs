//! The subentro bulk load (`Store::carica_subentro`) on PostgreSQL.
//!
//! One transaction for the whole municipality; records arrive in batches and each
//! batch goes in with `COPY ... FROM STDIN` (text format) into `versioni`,
//! `indice_soggetti`, `indice_famiglie` and `operazioni_entita`: no per-row statement,
//! no per-row round trip. Nothing is visible to others until the commit, and a crash
//! (of this process or of the server) before it leaves nothing: all or nothing per
//! municipality comes from the transaction itself.

use std::fmt::Write as _;

use anpr_domain::audit::{concatena, NuovaVoceAudit, TestaCatena, VoceAudit};
use anpr_domain::ids::CodiceIstatComune;
use anpr_store::{
    CodiceFiscalePresente, EntityRef, FileSubentro, FineSubentro, IndexWrite, InizioSubentro,
    MessaggioSubentro, NewOperation, RecordSubentro, SezioneSubentro, StoreError,
};
use bytes::Bytes;
use chrono::NaiveDate;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Transaction;

use crate::error::{describe, to_i64, to_u64};
use crate::PostgresStore;

/// The internal section versioning index rows (as in `write.rs`).
const INDEX_SECTION: &str = "_indice";

fn pg(what: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(describe(what, &e))
}

/// Escapes a value for COPY's text format.
fn copia(out: &mut String, v: &str) {
    // Runs without special characters (nearly everything) are copied in one go.
    let mut inizio = 0;
    for (i, b) in v.bytes().enumerate() {
        let sostituto = match b {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => continue,
        };
        out.push_str(&v[inizio..i]);
        out.push_str(sostituto);
        inizio = i + 1;
    }
    out.push_str(&v[inizio..]);
}

fn campo(out: &mut String, v: Option<&str>) {
    match v {
        Some(v) => copia(out, v),
        None => out.push_str("\\N"),
    }
}

/// COPY buffers of one batch.
#[derive(Default)]
struct Buffer {
    versioni: String,
    soggetti: String,
    famiglie: String,
    legami: String,
}

impl Buffer {
    fn versione(
        &mut self,
        e: EntityRef,
        dal: NaiveDate,
        op: i64,
        s: &str,
        valore: &str,
        chiave: Option<&str>,
    ) {
        let v = &mut self.versioni;
        let _ = write!(v, "{}\t{}\t", e.kind(), e.id());
        copia(v, s);
        let _ = write!(v, "\t{dal}\t{op}\t");
        copia(v, valore);
        v.push('\t');
        campo(v, chiave);
        v.push('\n');
    }

    fn record(&mut self, op: i64, r: &RecordSubentro) -> Result<(), StoreError> {
        if r.index.entity() != r.entity {
            return Err(StoreError::Invalid(format!(
                "index row of another record than {}",
                r.entity
            )));
        }
        for s in &r.sections {
            if s.section == INDEX_SECTION {
                return Err(StoreError::Invalid("section _indice is reserved".into()));
            }
            self.versione(
                r.entity,
                r.valido_dal,
                op,
                s.section,
                &s.json,
                s.key.as_deref(),
            );
        }
        let json = match &r.index {
            IndexWrite::Soggetto(s) => serde_json::to_string(s),
            IndexWrite::Famiglia(f) => serde_json::to_string(f),
            IndexWrite::Procedimento(_) => {
                return Err(StoreError::Invalid(
                    "a subentro loads subjects and families only".into(),
                ))
            }
        }
        .map_err(|e| StoreError::Invalid(format!("index row: {e}")))?;
        self.versione(r.entity, r.valido_dal, op, INDEX_SECTION, &json, None);
        match &r.index {
            IndexWrite::Soggetto(s) => {
                let b = &mut self.soggetti;
                let _ = write!(b, "{}\t", s.id);
                for v in [
                    Some(s.comune.as_str()),
                    Some(s.posizione.as_str()),
                    s.codice_fiscale.as_deref(),
                    s.cognome_key.as_deref(),
                    s.nome_key.as_deref(),
                    s.sesso.as_deref(),
                ] {
                    campo(b, v);
                    b.push('\t');
                }
                campo(b, s.data_nascita.map(|d| d.to_string()).as_deref());
                b.push('\t');
                campo(b, s.id_comunale.as_deref());
                b.push('\t');
                campo(b, s.id_famiglia.map(|f| f.to_string()).as_deref());
                b.push('\t');
                campo(b, s.chiave_indirizzo.as_deref());
                b.push('\n');
            }
            IndexWrite::Famiglia(f) => {
                let b = &mut self.famiglie;
                let _ = write!(b, "{}\t", f.id);
                for v in [
                    Some(f.comune.as_str()),
                    Some(f.tipo.as_str()),
                    Some(f.stato.as_str()),
                    f.id_comunale.as_deref(),
                ] {
                    campo(b, v);
                    b.push('\t');
                }
                campo(b, f.chiave_indirizzo.as_deref());
                b.push('\n');
            }
            IndexWrite::Procedimento(_) => {}
        }
        let _ = writeln!(self.legami, "{op}\t{}\t{}", r.entity.kind(), r.entity.id());
        Ok(())
    }

    async fn scrivi(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        for (sql, buf) in [
            ("COPY versioni (kind, entita, sezione, valido_dal, creata_da, valore, chiave) FROM STDIN", &mut self.versioni),
            (
                "COPY indice_soggetti (id, comune, posizione, codice_fiscale, cognome_key, nome_key, sesso, data_nascita, id_comunale, id_famiglia, chiave_indirizzo) FROM STDIN",
                &mut self.soggetti,
            ),
            ("COPY indice_famiglie (id, comune, tipo, stato, id_comunale, chiave_indirizzo) FROM STDIN", &mut self.famiglie),
            ("COPY operazioni_entita (op, kind, entita) FROM STDIN", &mut self.legami),
        ] {
            if buf.is_empty() {
                continue;
            }
            let sink = tx.copy_in(sql).await.map_err(pg("starting a COPY"))?;
            futures_util::pin_mut!(sink);
            sink.send(Bytes::from(std::mem::take(buf))).await.map_err(pg("sending COPY data"))?;
            sink.finish().await.map_err(pg("finishing a COPY"))?;
        }
        Ok(())
    }
}

/// Copies are sent when a buffer grows past this many bytes (a few batches).
const SOGLIA: usize = 8 << 20;

/// How filling a buffer ended.
enum Riempito {
    /// Past the threshold: to be copied.
    Pieno,
    /// The end of the load (`None`: the sender went away without concluding).
    Fine(Option<FineSubentro>),
}

/// Encodes records from the channel into `buffer` until it passes [`SOGLIA`] or the
/// load ends.
async fn riempi(
    records: &mut mpsc::Receiver<MessaggioSubentro>,
    buffer: &mut Buffer,
    op_id: i64,
) -> Result<Riempito, StoreError> {
    loop {
        match records.recv().await {
            Some(MessaggioSubentro::Lotto(lotto)) => {
                for r in &lotto {
                    buffer.record(op_id, r)?;
                }
            }
            Some(MessaggioSubentro::Sezioni(sezioni)) => {
                for (e, dal, s) in &sezioni {
                    let SezioneSubentro { section, json, key } = s;
                    if *section == INDEX_SECTION {
                        return Err(StoreError::Invalid("section _indice is reserved".into()));
                    }
                    buffer.versione(*e, *dal, op_id, section, json, key.as_deref());
                }
            }
            Some(MessaggioSubentro::Fine(fine)) => return Ok(Riempito::Fine(Some(fine))),
            None => return Ok(Riempito::Fine(None)),
        }
        if buffer.versioni.len() > SOGLIA {
            return Ok(Riempito::Pieno);
        }
    }
}

pub(crate) async fn carica(
    store: &PostgresStore,
    inizio: InizioSubentro,
    mut records: mpsc::Receiver<MessaggioSubentro>,
) -> Result<VoceAudit, StoreError> {
    let comune = inizio
        .operazione
        .comune
        .clone()
        .ok_or_else(|| StoreError::Invalid("a subentro names its municipality".into()))?;
    let op = inizio.operazione;
    let op_id = to_i64(op.id.get(), "operation id")?;
    let mut client = store
        .client()
        .await
        .map_err(crate::error::Failure::into_store_error)?;
    let tx = client.transaction().await.map_err(pg("subentro: begin"))?;
    if inizio.azzera_comune {
        azzera(&tx, &comune).await?;
    }
    inserisci_operazione(&tx, &op, "eseguita").await?;
    let senza_verifiche = sospendi_verifiche(&tx).await?;
    // Double buffering: while one full buffer is being copied (the server parses and
    // indexes it), the next one is filled from the channel, so the server, this task's
    // encoding and the checker thread work at the same time.
    let mut buffer = Buffer::default();
    let mut in_volo: Option<Buffer> = None;
    let fine = loop {
        let scrittura = async {
            match in_volo.take() {
                Some(mut pieno) => pieno.scrivi(&tx).await,
                None => Ok(()),
            }
        };
        let riempimento = riempi(&mut records, &mut buffer, op_id);
        let (scritto, riempito) = tokio::join!(scrittura, riempimento);
        scritto?;
        match riempito? {
            Riempito::Pieno => in_volo = Some(std::mem::take(&mut buffer)),
            Riempito::Fine(fine) => break fine,
        }
    };
    match fine {
        Some(fine) if fine.esito_positivo => {
            buffer.scrivi(&tx).await?;
            if senza_verifiche {
                // The operation, file, outbox and audit rows below are checked as usual
                // (and the audit table's append-only triggers are on again).
                tx.batch_execute("SET LOCAL session_replication_role = origin")
                    .await
                    .map_err(pg("subentro: restoring the checks"))?;
            }
            let voce = concludi(&tx, &op, fine, true).await?;
            tx.commit().await.map_err(pg("subentro: commit"))?;
            Ok(voce)
        }
        Some(fine) => {
            drop(buffer);
            tx.rollback().await.map_err(pg("subentro: rollback"))?;
            let tx = client
                .transaction()
                .await
                .map_err(pg("subentro refusal: begin"))?;
            inserisci_operazione(&tx, &op, "rifiutata").await?;
            let voce = concludi(&tx, &op, fine, false).await?;
            tx.commit().await.map_err(pg("subentro refusal: commit"))?;
            Ok(voce)
        }
        None => {
            tx.rollback().await.map_err(pg("subentro: rollback"))?;
            Err(StoreError::Invalid(
                "the subentro load was interrupted before its end: nothing was written".into(),
            ))
        }
    }
}

/// Turns off, for the load's records only, the foreign-key triggers that PostgreSQL runs
/// for every row: each is a query on `operazioni` (about a third of the server's time
/// in a load, measured), and every row of a load references the load's own operation,
/// inserted just before in the same transaction, so the check cannot fail. Needs the
/// right to set `session_replication_role` (a superuser, or on PostgreSQL 15+
/// `GRANT SET ON PARAMETER session_replication_role TO <role>`); without it the load
/// runs with the checks, only slower. Returns whether they were turned off.
async fn sospendi_verifiche(tx: &Transaction<'_>) -> Result<bool, StoreError> {
    tx.batch_execute("SAVEPOINT verifiche")
        .await
        .map_err(pg("subentro: savepoint"))?;
    match tx
        .batch_execute("SET LOCAL session_replication_role = replica")
        .await
    {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT verifiche")
                .await
                .map_err(pg("subentro: savepoint"))?;
            Ok(true)
        }
        Err(e) => {
            tracing::info!(
                error = %describe("session_replication_role", &e),
                "subentro: foreign keys checked row by row (the role may not turn them off)"
            );
            tx.batch_execute("ROLLBACK TO SAVEPOINT verifiche; RELEASE SAVEPOINT verifiche")
                .await
                .map_err(pg("subentro: savepoint"))?;
            Ok(false)
        }
    }
}

async fn azzera(tx: &Transaction<'_>, comune: &CodiceIstatComune) -> Result<(), StoreError> {
    let c = comune.as_str();
    tx.execute(
        "CREATE TEMP TABLE azzera ON COMMIT DROP AS
         SELECT 'S'::text AS kind, id AS entita FROM indice_soggetti WHERE comune = $1
         UNION ALL SELECT 'F', id FROM indice_famiglie WHERE comune = $1",
        &[&c],
    )
    .await
    .map_err(pg("listing the records to reset"))?;
    for sql in [
        "DELETE FROM versioni v USING azzera a WHERE v.kind = a.kind AND v.entita = a.entita",
        "DELETE FROM operazioni_entita o USING azzera a WHERE o.kind = a.kind AND o.entita = a.entita",
    ] {
        tx.execute(sql, &[]).await.map_err(pg("removing the previous records"))?;
    }
    for sql in [
        "DELETE FROM indice_soggetti WHERE comune = $1",
        "DELETE FROM indice_famiglie WHERE comune = $1",
        "DELETE FROM subentro_file WHERE comune = $1",
    ] {
        tx.execute(sql, &[&c])
            .await
            .map_err(pg("removing the previous index"))?;
    }
    Ok(())
}

async fn inserisci_operazione(
    tx: &Transaction<'_>,
    op: &NewOperation,
    stato: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO operazioni (id, codice_servizio, comune, id_operazione_comune, utente, postazione, canale,
                                 decorrenza, registrata_il, stato, annulla, richiesta, risposta)
         VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, NULL, $10, $11)",
        &[
            &to_i64(op.id.get(), "operation id")?,
            &op.codice_servizio.as_str(),
            &op.comune.as_ref().map(|c| c.as_str()),
            &op.utente,
            &op.postazione,
            &op.canale,
            &op.decorrenza,
            &op.registrata_il,
            &stato,
            &op.richiesta,
            &op.risposta,
        ],
    )
    .await
    .map_err(pg("inserting the subentro operation"))?;
    Ok(())
}

async fn concludi(
    tx: &Transaction<'_>,
    op: &NewOperation,
    fine: FineSubentro,
    positivo: bool,
) -> Result<VoceAudit, StoreError> {
    let op_id = to_i64(op.id.get(), "operation id")?;
    tx.execute(
        "UPDATE operazioni SET risposta = $1 WHERE id = $2",
        &[&fine.risposta, &op_id],
    )
    .await
    .map_err(pg("storing the response"))?;
    for f in &fine.files {
        tx.execute(
            "INSERT INTO subentro_file (comune, nome_file, sha256, stato, id_operazione, registrato_il, soggetti, famiglie)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &f.comune.as_str(),
                &f.nome_file,
                &f.sha256,
                &f.stato,
                &positivo.then_some(op_id),
                &f.registrato_il,
                &to_i64(f.soggetti, "soggetti")?,
                &to_i64(f.famiglie, "famiglie")?,
            ],
        )
        .await
        .map_err(pg("recording a subentro file"))?;
    }
    for m in &fine.outbox {
        tx.execute(
            "INSERT INTO outbox (id_operazione_anpr, tipo, destinatario, payload) VALUES ($1, $2, $3, $4)",
            &[&op_id, &m.tipo, &m.destinatario, &m.payload],
        )
        .await
        .map_err(pg("queueing the outcome mail"))?;
    }
    chain(tx, fine.audit, op_id).await
}

/// Chains the audit entry after the head, under the head's row lock (as every write).
async fn chain(
    tx: &Transaction<'_>,
    entry: NuovaVoceAudit,
    op: i64,
) -> Result<VoceAudit, StoreError> {
    let mut entry = entry;
    entry.istante = crate::write::micros(entry.istante);
    let row = tx
        .query_one(
            "SELECT seq, hash FROM audit_testa WHERE unica FOR UPDATE",
            &[],
        )
        .await
        .map_err(pg("locking the audit head"))?;
    let seq: i64 = row.get(0);
    let head = (seq != 0).then(|| TestaCatena {
        seq: to_u64(seq, "audit seq").unwrap_or(0),
        hash: row.get(1),
    });
    let voce = concatena(head.as_ref(), entry);
    let id_operazione = voce
        .voce
        .id_operazione_anpr
        .map(|v| to_i64(v, "audit id"))
        .transpose()?;
    tx.execute(
        "WITH voce AS (
             INSERT INTO audit (seq, istante, evento, azione, utente, comune, postazione, canale, oggetto,
                                id_operazione_anpr, esito, hash_precedente, hash, operazione)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         )
         UPDATE audit_testa SET seq = $1, hash = $13",
        &[
            &to_i64(voce.seq, "audit seq")?,
            &voce.voce.istante,
            &voce.voce.evento.as_str(),
            &voce.voce.azione,
            &voce.voce.utente,
            &voce.voce.comune,
            &voce.voce.postazione,
            &voce.voce.canale,
            &voce.voce.oggetto,
            &id_operazione,
            &voce.voce.esito,
            &voce.hash_precedente,
            &voce.hash,
            &op,
        ],
    )
    .await
    .map_err(pg("appending to the audit log"))?;
    Ok(voce)
}

pub(crate) async fn file_subentro(
    store: &PostgresStore,
    comune: &CodiceIstatComune,
) -> Result<Vec<FileSubentro>, StoreError> {
    let client = store
        .client()
        .await
        .map_err(crate::error::Failure::into_store_error)?;
    let rows = client
        .query(
            "SELECT nome_file, sha256, stato, id_operazione, registrato_il, soggetti, famiglie
             FROM subentro_file WHERE comune = $1 ORDER BY n",
            &[&comune.as_str()],
        )
        .await
        .map_err(pg("reading the subentro files"))?;
    rows.iter()
        .map(|r| {
            Ok(FileSubentro {
                comune: comune.clone(),
                nome_file: r.get(0),
                sha256: r.get(1),
                stato: r.get(2),
                id_operazione: r
                    .get::<_, Option<i64>>(3)
                    .map(|v| {
                        to_u64(v, "id_operazione").and_then(|v| {
                            anpr_domain::ids::IdOperazioneAnpr::new(v)
                                .map_err(|e| StoreError::Corrupt(e.to_string()))
                        })
                    })
                    .transpose()?,
                registrato_il: r.get(4),
                soggetti: to_u64(r.get(5), "soggetti")?,
                famiglie: to_u64(r.get(6), "famiglie")?,
            })
        })
        .collect()
}

pub(crate) async fn codici_fiscali_presenti(
    store: &PostgresStore,
    codici: &[String],
) -> Result<Vec<CodiceFiscalePresente>, StoreError> {
    let client = store
        .client()
        .await
        .map_err(crate::error::Failure::into_store_error)?;
    let rows = client
        .query(
            "SELECT codice_fiscale, comune, posizione FROM indice_soggetti WHERE codice_fiscale = ANY($1)",
            &[&codici],
        )
        .await
        .map_err(pg("looking up tax codes"))?;
    rows.iter()
        .map(|r| {
            let comune: String = r.get(1);
            Ok(CodiceFiscalePresente {
                codice_fiscale: r.get(0),
                comune: comune
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("comune {comune}")))?,
                posizione: r.get(2),
            })
        })
        .collect()
}

pub(crate) async fn next_ids(
    store: &PostgresStore,
    sequenza: &str,
    count: u64,
) -> Result<Vec<u64>, StoreError> {
    let client = store
        .client()
        .await
        .map_err(crate::error::Failure::into_store_error)?;
    let sql = format!("SELECT nextval('{sequenza}') FROM generate_series(1, $1::bigint)");
    let rows = client
        .query(&sql, &[&to_i64(count, "count")?])
        .await
        .map_err(pg("reserving ids"))?;
    rows.iter()
        .map(|r| to_u64(r.get(0), "sequence value"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: &str, atteso: &str) {
        let mut out = String::from(">");
        copia(&mut out, v);
        assert_eq!(out, format!(">{atteso}"), "{v:?}");
    }

    #[test]
    fn copy_text_escapes_only_its_special_characters() {
        check("", "");
        check("{\"a\":\"b\"}", "{\"a\":\"b\"}");
        check("a\\b", "a\\\\b");
        check("\ttab\nriga\r", "\\ttab\\nriga\\r");
        check("Nicolò D'Angelo\\\\", "Nicolò D'Angelo\\\\\\\\");
        check("\\", "\\\\");
    }
}
