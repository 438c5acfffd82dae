//! S001 (`subentroS001`): one compressed file of the municipality's subentro supply,
//! base64 in `fileXml`, named by `nomeFile`.
//!
//! The edge only decodes: `fileXml` is taken out of the parsed message and decoded in
//! 64 KiB steps into a temporary file (never a second copy in memory, at most one byte
//! past the compressed-size bound written); the checks, the staging of the parts and
//! the load are `anpr_subentro::consegna`, which runs the same load as the REST upload.
//! The answer: `rispostaOK` (outcome 2; 6 when the load found anomalies) with
//! `datiDettaglioRisposta` (file name and what became of it: staged and what is still
//! missing, or the load's state, counts, anomalies per code and where the outcome
//! files are), or `rispostaKO` with the blocking anomalies and the support entry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_soap::busta::Busta;
use anpr_soap::catalogo::{Operazione, Servizio};
use anpr_soap::richieste::Testata;
use anpr_soap::{risposte, servizi};
use anpr_subentro::consegna::{self, EsitoParte, Limiti, Parte, StatoParte};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;

use super::{errore_servizio, id_da_riferimento, xml};
use crate::AppState;

static ARRIVI: AtomicU64 = AtomicU64::new(0);

/// Decodes base64 `testo` (whitespace allowed between characters) into `a`, writing
/// at most `massimo + 1` bytes: a longer file is cut there, and refused by size.
/// `Ok(false)`: not base64.
fn decodifica(testo: &str, a: &Path, massimo: u64) -> std::io::Result<bool> {
    let motore = &base64::engine::general_purpose::STANDARD;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(a)?);
    let mut quartine: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut decodificati = vec![0u8; (1 << 16) / 4 * 3 + 3];
    let mut scritti: u64 = 0;
    let mut byte = testo
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .peekable();
    while byte.peek().is_some() {
        quartine.clear();
        quartine.extend(byte.by_ref().take(1 << 16));
        // Only the last step may end with a partial group: then it is malformed.
        if byte.peek().is_some() && !quartine.len().is_multiple_of(4) {
            return Ok(false);
        }
        let Ok(n) = motore.decode_slice(&quartine, &mut decodificati) else {
            return Ok(false);
        };
        let resto = (massimo + 1).saturating_sub(scritti);
        let k = (n as u64).min(resto) as usize;
        out.write_all(&decodificati[..k])?;
        scritti += k as u64;
        if scritti > massimo {
            break;
        }
    }
    out.flush()?;
    Ok(true)
}

/// Runs S001 for a checked request; `b` is taken apart (`fileXml` moved out).
pub(super) async fn s001(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    mut b: Busta,
) -> Response {
    let registry = &state.registry;
    let limiti = Limiti::default();
    let nome_file = b.corpo.testo_di("nomeFile").map(str::to_owned);
    let testo = b
        .corpo
        .figli
        .iter_mut()
        .find(|f| f.nome == "fileXml")
        .map(|f| std::mem::take(&mut f.testo));
    drop(b);
    let cartella = state.cartella_esiti.join(ctx.ambiente.as_str());
    let arrivo: Option<PathBuf> = match testo {
        None => None,
        Some(testo) => {
            if let Err(e) = std::fs::create_dir_all(&cartella) {
                return errore_servizio(servizio, op, t, &registry.interno(e));
            }
            let percorso = cartella.join(format!(
                "arrivo-{}-{}.bin",
                std::process::id(),
                ARRIVI.fetch_add(1, Ordering::Relaxed)
            ));
            let p = percorso.clone();
            let decodificato =
                tokio::task::spawn_blocking(move || decodifica(&testo, &p, limiti.compresso)).await;
            match decodificato {
                Ok(Ok(true)) => Some(percorso),
                Ok(Ok(false)) => {
                    let _ = std::fs::remove_file(&percorso);
                    let a = Anomalia::errore(
                        anpr_soap::schema::CODICE_NON_CONFORME_XSD,
                        "Contenuto base64 non valido",
                    )
                    .campo("RichiestaS001/fileXml")
                    .atteso("un contenuto base64 (xs:base64Binary)");
                    return super::rifiuto(state, servizio, op, t, &[a]);
                }
                Ok(Err(e)) => {
                    let _ = std::fs::remove_file(&percorso);
                    return errore_servizio(servizio, op, t, &registry.interno(e));
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&percorso);
                    return errore_servizio(servizio, op, t, &registry.interno(e));
                }
            }
        }
    };
    let esito = consegna::consegna_parte(
        registry,
        ctx,
        &cartella,
        Parte {
            id_operazione_comune: &t.id_operazione_comune,
            nome_file: nome_file.as_deref(),
            compresso: arrivo.as_deref(),
        },
        limiti,
    )
    .await;
    if let Some(p) = &arrivo {
        let _ = std::fs::remove_file(p);
    }
    match esito {
        Ok(e) => risposta(servizio, op, t, &e),
        Err(e) => errore_servizio(servizio, op, t, &e),
    }
}

fn risposta(servizio: &Servizio, op: &Operazione, t: &Testata, e: &EsitoParte) -> Response {
    let id = e
        .id_operazione_anpr
        .clone()
        .unwrap_or_else(|| id_da_riferimento(&e.riferimento_id));
    let body = match e.stato {
        StatoParte::Acquisita | StatoParte::Elaborata => servizi::risposta_s001(
            servizio,
            op,
            t,
            &id,
            !e.riepilogo.is_empty(),
            &e.nome_file,
            &e.descrizione,
        ),
        StatoParte::Rifiutata => {
            let data = e.riferimento_data.format("%Y-%m-%d %H:%M:%S").to_string();
            let mut anomalie = e.anomalie.clone();
            if anomalie.is_empty() {
                anomalie.push(Anomalia::errore("EN009", e.descrizione.clone()));
            }
            risposte::ko(servizio, op, t, &id, &anomalie, (&data, &e.riferimento_id))
        }
    };
    xml(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(testo: &str, massimo: u64) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        decodifica(testo, &p, massimo)
            .unwrap()
            .then(|| std::fs::read(&p).unwrap())
    }

    #[test]
    fn base64_is_decoded_in_steps_and_bounded() {
        let dati: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&dati);
        assert_eq!(check(&b64, 1 << 20).as_deref(), Some(&dati[..]));
        // Folded on lines, as MIME encoders write it.
        let piegato: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(check(&piegato, 1 << 20).as_deref(), Some(&dati[..]));
        // Cut one byte past the bound.
        assert_eq!(check(&b64, 1000).map(|v| v.len()), Some(1001));
        assert_eq!(check("QUJD$", 100), None);
        assert_eq!(check("QQ=QUJD", 100), None);
        assert_eq!(check("", 100).as_deref(), Some(&[][..]));
    }
}
