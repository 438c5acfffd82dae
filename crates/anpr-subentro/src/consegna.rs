//! Delivery of a supply file by file (SOAP S001, SPEC M-6.2): each call brings one
//! compressed file of the supply; the files are staged on disk and the load runs —
//! the same [`crate::servizio`] load as the REST upload — when the supply is complete.
//!
//! ```text
//!  part ─► authorised? ─► same idOperazioneComune already answered? ─► that answer
//!       ─► name (EN001/EN008/EN038/EN039) ─► compressed size (EN002) ─► onboarded (EN034)
//!       ─► already staged (EN007)
//!       ─► decompressed, bounded (EN002/EN009) ─► header: totaleInvii, datiInvio (EN038/EN031/EN008)
//!       ─► staged ─► complete (APR 1..T and AIRE 1..T)? ─► load ─► staging emptied
//! ```
//!
//! Layout under the environment's outcome directory `cartella`:
//! `consegne/<comune>/parti/<name>.xml` (staged parts, decompressed),
//! `consegne/<comune>/risposte/<idOperazioneComune>.json` (the answer of every call, for
//! idempotency), `consegne/<comune>/lavoro-*` (temporary), and the load's outcome files
//! in `<idOperazioneANPR>/` as the REST upload leaves them (so
//! `GET /api/v1/subentro/{id}/esiti/{nome}` serves both).
//!
//! A supply is complete when every part of the APR file and of the AIRE file has
//! arrived (a load never starts without one of the two, as ANPR's, procedure 010).
//! Compression: ZIP (one file inside, stored or deflated) or gzip, recognised by their
//! signatures; anything else is EN009.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anpr_domain::caller::{Ambiente, CallerContext};
use anpr_domain::error::{Anomalia, Gravita, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::{CodiceIstatComune, IdOperazioneComune};
use anpr_service::{Registry, ServiceError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::controlli::anomalia;
use crate::importa::{FileIngresso, StatoSubentro, CODICE_SERVIZIO_SUBENTRO};
use crate::nome_file::{verifica_nome, NomeFile, TipoFile};
use crate::parser::{Elemento, LettoreSubentro};
use crate::servizio::{self, DIMENSIONE_MASSIMA};

/// Largest compressed file accepted by one S001 call (EN002): 40 MiB, whose base64
/// (about 54 MiB) fits the S001 endpoint's 64 MiB message limit. A bigger registry is
/// sent in more parts (`totaleInvii`).
pub const DIMENSIONE_MASSIMA_COMPRESSA: u64 = 40 << 20;

/// Size bounds of one part.
#[derive(Debug, Clone, Copy)]
pub struct Limiti {
    /// Compressed, as received (EN002).
    pub compresso: u64,
    /// Decompressed (EN002 too: a small archive must not fill the disk).
    pub decompresso: u64,
}

impl Default for Limiti {
    fn default() -> Self {
        Self {
            compresso: DIMENSIONE_MASSIMA_COMPRESSA,
            decompresso: DIMENSIONE_MASSIMA,
        }
    }
}

/// One call's file.
#[derive(Debug, Clone, Copy)]
pub struct Parte<'a> {
    pub id_operazione_comune: &'a str,
    /// `nomeFile` as sent.
    pub nome_file: Option<&'a str>,
    /// `fileXml` decoded, still compressed, on disk (the caller removes it).
    pub compresso: Option<&'a Path>,
}

/// What became of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatoParte {
    /// Staged: the supply is not complete yet.
    Acquisita,
    /// It completed the supply and the load ended ELABORATO (`riepilogo` says whether
    /// with anomalies).
    Elaborata,
    /// Refused: the part itself, or the load it started (INSERITO KO, SCARTATO).
    Rifiutata,
}

/// The answer to one call, stored for idempotency.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EsitoParte {
    /// The file's name (the logical `.xml` one once recognised).
    pub nome_file: String,
    pub stato: StatoParte,
    /// The load's operation, when the part started one.
    pub id_operazione_anpr: Option<String>,
    pub descrizione: String,
    /// The blocking anomalies of a refusal.
    pub anomalie: Vec<Anomalia>,
    /// Anomalies of the load per (code, severity): count.
    pub riepilogo: Vec<(String, String, u64)>,
    pub riferimento_data: DateTime<Utc>,
    pub riferimento_id: String,
    /// This is the stored answer of an earlier call with the same id.
    #[serde(default, skip_serializing)]
    pub ripetuta: bool,
}

static LAVORI: AtomicU64 = AtomicU64::new(0);

/// Receives one part of the caller's supply; runs the load when it completes it.
/// `cartella`: the environment's outcome directory.
pub async fn consegna_parte(
    registry: &Registry,
    ctx: &CallerContext,
    cartella: &Path,
    parte: Parte<'_>,
    limiti: Limiti,
) -> Result<EsitoParte, ServiceError> {
    let comune = servizio::verifica_chiamante(registry, ctx).await?;
    let id_comune: IdOperazioneComune =
        parte
            .id_operazione_comune
            .parse()
            .map_err(|e| ServiceError::Rifiutata {
                anomalie: vec![Anomalia::from_invalid("idOperazioneComune", &e)],
                riferimento: registry.riferimento(None),
            })?;
    let base = cartella.join("consegne").join(comune.as_str());
    let risposta = base.join("risposte").join(format!("{id_comune}.json"));
    if let Some(e) = risposta_memorizzata(registry, &risposta)? {
        return Ok(e);
    }
    // An id of the municipality's registry operations is not reused here (EN079).
    let store = Arc::clone(registry.store(ctx.ambiente)?);
    if let Some(op) = store
        .operation_by_comune_id(&comune, id_comune)
        .await
        .map_err(|e| registry.interno(e))?
    {
        if op.codice_servizio.as_str() != CODICE_SERVIZIO_SUBENTRO {
            return Err(ServiceError::Rifiutata {
                anomalie: vec![Anomalia::errore(
                    "EN079",
                    "id operazione comune gia' presente per un servizio diverso",
                )
                .campo("idOperazioneComune")
                .valore(id_comune.to_string())
                .atteso(format!(
                    "un id non usato (gia' usato per il servizio {})",
                    op.codice_servizio.as_str()
                ))],
                riferimento: registry.riferimento(None),
            });
        }
    }
    let Some(guardia) = servizio::serratura(&store, &comune).attendi().await else {
        return Err(servizio::in_elaborazione(registry, &comune));
    };
    // The same id may have been answered while this call waited.
    if let Some(e) = risposta_memorizzata(registry, &risposta)? {
        return Ok(e);
    }
    let esito = ricevi(
        registry, ctx, &comune, &base, cartella, parte, limiti, &guardia,
    )
    .await?;
    // Stored before the lock is released: a resend waiting for it finds the answer.
    let json = serde_json::to_vec(&esito).map_err(|e| registry.interno(e))?;
    scrivi_atomico(&risposta, &json).map_err(|e| registry.interno(e))?;
    drop(guardia);
    Ok(esito)
}

fn risposta_memorizzata(
    registry: &Registry,
    percorso: &Path,
) -> Result<Option<EsitoParte>, ServiceError> {
    match std::fs::read(percorso) {
        Ok(b) => {
            let mut e: EsitoParte = serde_json::from_slice(&b).map_err(|e| registry.interno(e))?;
            e.ripetuta = true;
            Ok(Some(e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(registry.interno(e)),
    }
}

fn scrivi_atomico(percorso: &Path, dati: &[u8]) -> io::Result<()> {
    if let Some(d) = percorso.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = percorso.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(dati)?;
    f.sync_all()?;
    std::fs::rename(&tmp, percorso)
}

/// The logical name of a sent file: compression suffixes dropped, `.xml` ensured
/// (`APR_058091_001_001.zip`, `….xml.zip`, `….xml.gz` → `APR_058091_001_001.xml`).
pub fn nome_logico(nome: &str) -> String {
    let mut base = nome.trim();
    for suffisso in [".zip", ".ZIP", ".gz", ".GZ"] {
        if let Some(b) = base.strip_suffix(suffisso) {
            base = b;
            break;
        }
    }
    if base.ends_with(".xml") {
        base.to_owned()
    } else {
        format!("{base}.xml")
    }
}

#[allow(clippy::too_many_arguments)]
async fn ricevi(
    registry: &Registry,
    ctx: &CallerContext,
    comune: &CodiceIstatComune,
    base: &Path,
    cartella: &Path,
    parte: Parte<'_>,
    limiti: Limiti,
    guardia: &servizio::Guardia,
) -> Result<EsitoParte, ServiceError> {
    let tabelle = registry.tables();
    let rif = registry.riferimento(None);
    let rifiuto = |nome: &str, a: Vec<Anomalia>| EsitoParte {
        nome_file: nome.to_owned(),
        stato: StatoParte::Rifiutata,
        id_operazione_anpr: None,
        descrizione: format!("File {nome} scartato"),
        anomalie: a,
        riepilogo: Vec::new(),
        riferimento_data: rif.data,
        riferimento_id: rif.id.clone(),
        ripetuta: false,
    };
    let Some(inviato) = parte.nome_file.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(rifiuto(
            "",
            vec![anomalia(tabelle, "EN001", Gravita::Errore, "nomeFile")
                .atteso("APR_<ISTAT>_<NNN>_<TTT>.xml.zip o AIRE_<ISTAT>_<NNN>_<TTT>.xml.zip")],
        ));
    };
    let logico = nome_logico(inviato);
    let nome = match verifica_nome(&logico, comune) {
        Ok(n) => n,
        Err(a) => return Ok(rifiuto(inviato, vec![a])),
    };
    let Some(compresso) = parte.compresso else {
        return Ok(rifiuto(
            &logico,
            vec![
                Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Contenuto del file mancante")
                    .campo("fileXml")
                    .atteso("il file compresso, in base64"),
            ],
        ));
    };
    let dimensione = std::fs::metadata(compresso)
        .map_err(|e| registry.interno(e))?
        .len();
    if dimensione > limiti.compresso {
        return Ok(rifiuto(
            &logico,
            vec![anomalia(tabelle, "EN002", Gravita::Errore, "fileXml")
                .valore(format!(
                    "{inviato} (oltre {} byte compressi)",
                    limiti.compresso
                ))
                .atteso(format!("al massimo {} byte compressi", limiti.compresso))],
        ));
    }
    // A municipality already onboarded in produzione sends nothing more (EN034, which
    // the load would give anyway: said at the first part, not after the last).
    if ctx.ambiente == Ambiente::Produzione {
        let precedenti = registry
            .store(ctx.ambiente)?
            .file_subentro(comune)
            .await
            .map_err(|e| registry.interno(e))?;
        if precedenti
            .iter()
            .any(|p| p.stato == StatoSubentro::Elaborato.as_str())
        {
            return Ok(rifiuto(
                &logico,
                vec![anomalia(tabelle, "EN034", Gravita::Errore, "comune")
                    .valore(comune.as_str())
                    .atteso("un comune non ancora subentrato")],
            ));
        }
    }
    let parti = base.join("parti");
    std::fs::create_dir_all(&parti).map_err(|e| registry.interno(e))?;
    let presenti = in_attesa(&parti, comune).map_err(|e| registry.interno(e))?;
    if presenti.contains_key(&logico) {
        return Ok(rifiuto(
            &logico,
            vec![anomalia(tabelle, "EN007", Gravita::Errore, "nomeFile")
                .valore(logico.clone())
                .atteso("un file non ancora inviato in questa fornitura")],
        ));
    }
    if let Some(altro) = presenti
        .values()
        .find(|n| n.tipo == nome.tipo && n.totale != nome.totale)
    {
        return Ok(rifiuto(
            &logico,
            vec![anomalia(tabelle, "EN038", Gravita::Errore, "nomeFile")
                .valore(format!("{:03}", nome.totale))
                .atteso(format!(
                    "{:03}, il totale dei file gia' ricevuti della fornitura",
                    altro.totale
                ))],
        ));
    }

    // Decompressed into a work directory, checked, then moved among the staged parts.
    let lavoro = base.join(format!(
        "lavoro-{}-{}",
        std::process::id(),
        LAVORI.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&lavoro).map_err(|e| registry.interno(e))?;
    let risultato = {
        let (da, a) = (compresso.to_owned(), lavoro.join(&logico));
        let nome = nome.clone();
        let logico = logico.clone();
        tokio::task::spawn_blocking(move || -> io::Result<Result<(), Vec<Anomalia>>> {
            if let Err(a) = decomprimi(&da, &a, limiti.decompresso)? {
                return Ok(Err(vec![a.campo("fileXml")]));
            }
            Ok(controlla_testata(&a, &logico, &nome))
        })
        .await
        .map_err(|e| registry.interno(e))?
    };
    let esito = match risultato {
        Ok(Ok(())) => std::fs::rename(lavoro.join(&logico), parti.join(&logico))
            .map_err(|e| registry.interno(e)),
        Ok(Err(a)) => {
            let _ = std::fs::remove_dir_all(&lavoro);
            return Ok(rifiuto(&logico, a));
        }
        Err(e) => Err(registry.interno(e)),
    };
    let _ = std::fs::remove_dir_all(&lavoro);
    esito?;

    let mut presenti = presenti;
    presenti.insert(logico.clone(), nome.clone());
    let mancanti = mancanti(&presenti, comune);
    if !mancanti.is_empty() {
        return Ok(EsitoParte {
            nome_file: logico.clone(),
            stato: StatoParte::Acquisita,
            id_operazione_anpr: None,
            descrizione: format!(
                "File {logico} acquisito ({} di {} {}); la fornitura sara' elaborata all'arrivo di: {}",
                nome.progressivo,
                nome.totale,
                tipo(nome.tipo),
                mancanti.join(", ")
            ),
            anomalie: Vec::new(),
            riepilogo: Vec::new(),
            riferimento_data: rif.data,
            riferimento_id: rif.id.clone(),
            ripetuta: false,
        });
    }

    // The supply is complete: the load, then the staging emptied whatever the outcome
    // (a new supply starts from its first file).
    guardia.in_carico();
    let files: Vec<FileIngresso> = presenti
        .keys()
        .map(|n| FileIngresso {
            nome: n.clone(),
            percorso: parti.join(n),
        })
        .collect();
    let esiti_lavoro = base.join(format!(
        "esiti-{}-{}",
        std::process::id(),
        LAVORI.fetch_add(1, Ordering::Relaxed)
    ));
    let esito = servizio::carica(
        registry,
        ctx,
        comune.clone(),
        files,
        &esiti_lavoro,
        Arc::new(|_, _| {}),
    )
    .await;
    let esito = match esito {
        Ok(e) => e,
        Err(e) => {
            // Our failure: the last part is taken back, so that resending it works.
            let _ = std::fs::remove_file(parti.join(&logico));
            let _ = std::fs::remove_dir_all(&esiti_lavoro);
            return Err(e);
        }
    };
    let destinazione = cartella.join(esito.id_operazione.to_string());
    let spostati = sposta_esiti(&esiti_lavoro, &destinazione);
    let _ = std::fs::remove_dir_all(&esiti_lavoro);
    let _ = std::fs::remove_dir_all(&parti);
    spostati.map_err(|e| registry.interno(e))?;

    let rif = registry.riferimento(Some(esito.id_operazione));
    let riepilogo: Vec<(String, String, u64)> = esito
        .riepilogo
        .iter()
        .map(|((c, g), n)| (c.clone(), g.clone(), *n))
        .collect();
    let anomalie_testo = if riepilogo.is_empty() {
        "nessuna anomalia".to_owned()
    } else {
        let voci: Vec<String> = riepilogo
            .iter()
            .map(|(c, g, n)| format!("{c} ({g}) {n}"))
            .collect();
        format!("anomalie: {}", voci.join(", "))
    };
    let elenco: Vec<&str> = presenti.keys().map(String::as_str).collect();
    let descrizione = format!(
        "Fornitura {} ({}) elaborata con stato {}: schede soggetto lette {}, caricate {}; schede famiglia/convivenza caricate {}; {}; file degli esiti: /api/v1/subentro/{}/esiti/esiti.csv",
        elenco.join(", "),
        ctx.ambiente.as_str(),
        esito.stato.as_str(),
        esito.soggetti_letti,
        esito.soggetti_caricati,
        esito.famiglie_caricate,
        anomalie_testo,
        esito.id_operazione,
    );
    let positivo = esito.stato == StatoSubentro::Elaborato;
    Ok(EsitoParte {
        nome_file: logico,
        stato: if positivo {
            StatoParte::Elaborata
        } else {
            StatoParte::Rifiutata
        },
        id_operazione_anpr: Some(esito.id_operazione.to_string()),
        descrizione,
        anomalie: esito.bloccanti,
        riepilogo,
        riferimento_data: rif.data,
        riferimento_id: rif.id,
        ripetuta: false,
    })
}

fn tipo(t: TipoFile) -> &'static str {
    match t {
        TipoFile::Apr => "APR",
        TipoFile::Aire => "AIRE",
    }
}

/// The staged parts, by name (files not following the convention are ignored).
fn in_attesa(parti: &Path, comune: &CodiceIstatComune) -> io::Result<BTreeMap<String, NomeFile>> {
    let mut out = BTreeMap::new();
    for voce in std::fs::read_dir(parti)? {
        let voce = voce?;
        let nome = voce.file_name().to_string_lossy().into_owned();
        if let Ok(n) = verifica_nome(&nome, comune) {
            out.insert(nome, n);
        }
    }
    Ok(out)
}

/// The names still missing for a complete supply (APR and AIRE, every part).
fn mancanti(presenti: &BTreeMap<String, NomeFile>, comune: &CodiceIstatComune) -> Vec<String> {
    let mut out = Vec::new();
    for t in [TipoFile::Apr, TipoFile::Aire] {
        let ricevuti: BTreeSet<u32> = presenti
            .values()
            .filter(|n| n.tipo == t)
            .map(|n| n.progressivo)
            .collect();
        let Some(totale) = presenti.values().find(|n| n.tipo == t).map(|n| n.totale) else {
            out.push(format!("{}_{comune}_001_<TTT>.xml", tipo(t)));
            continue;
        };
        for p in (1..=totale).filter(|p| !ricevuti.contains(p)) {
            out.push(format!("{}_{comune}_{p:03}_{totale:03}.xml", tipo(t)));
        }
    }
    out
}

/// Moves the load's outcome files to where the REST download finds them.
fn sposta_esiti(da: &Path, a: &Path) -> io::Result<()> {
    std::fs::create_dir_all(a)?;
    for voce in std::fs::read_dir(da)? {
        let voce = voce?;
        let destinazione = a.join(voce.file_name());
        if std::fs::rename(voce.path(), &destinazione).is_err() {
            std::fs::copy(voce.path(), &destinazione)?;
        }
    }
    Ok(())
}

/// Decompresses `da` (ZIP with one file, or gzip) into `a`, at most `massimo` bytes.
/// `Ok(Err)`: the municipality's problem (EN009 format, EN002 size); `Err`: ours.
pub fn decomprimi(da: &Path, a: &Path, massimo: u64) -> io::Result<Result<u64, Anomalia>> {
    let tabelle = anpr_tables::tables();
    let formato = |dettaglio: &str| {
        let mut x = anomalia(tabelle, "EN009", Gravita::Errore, "fileXml");
        x.testo = format!("{}: {dettaglio}", x.testo);
        x.atteso("un file XML compresso (ZIP con un solo file, oppure gzip)")
    };
    let mut firma = [0u8; 4];
    let letti = {
        let mut f = File::open(da)?;
        let mut n = 0;
        while n < firma.len() {
            let k = f.read(&mut firma[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    };
    let mut uscita = io::BufWriter::with_capacity(1 << 16, File::create(a)?);
    let copiati = if letti == 4 && firma == *b"PK\x03\x04" {
        let mut archivio = match zip::ZipArchive::new(BufReader::new(File::open(da)?)) {
            Ok(z) => z,
            Err(e) => return Ok(Err(formato(&format!("archivio ZIP non leggibile ({e})")))),
        };
        let file: Vec<usize> = (0..archivio.len())
            .filter(|i| archivio.by_index_raw(*i).is_ok_and(|f| f.is_file()))
            .collect();
        let [indice] = file.as_slice() else {
            return Ok(Err(formato(&format!(
                "l'archivio ZIP contiene {} file, ne e' atteso uno",
                file.len()
            ))));
        };
        let voce = match archivio.by_index(*indice) {
            Ok(v) => v,
            Err(e) => return Ok(Err(formato(&format!("voce ZIP non leggibile ({e})")))),
        };
        if voce.size() > massimo {
            return Ok(Err(troppo_grande(tabelle, massimo)));
        }
        copia_limitata(voce, &mut uscita, massimo)
    } else if letti >= 2 && firma[..2] == [0x1f, 0x8b] {
        copia_limitata(
            flate2::read::MultiGzDecoder::new(BufReader::new(File::open(da)?)),
            &mut uscita,
            massimo,
        )
    } else {
        return Ok(Err(formato("il file non e' compresso")));
    };
    let copiati = match copiati? {
        Copia::Fatta(n) => n,
        Copia::Oltre => return Ok(Err(troppo_grande(tabelle, massimo))),
        Copia::Illeggibile(e) => return Ok(Err(formato(&format!("decompressione fallita ({e})")))),
    };
    uscita.flush()?;
    Ok(Ok(copiati))
}

fn troppo_grande(tabelle: &anpr_tables::Tables, massimo: u64) -> Anomalia {
    anomalia(tabelle, "EN002", Gravita::Errore, "fileXml")
        .valore(format!("oltre {massimo} byte una volta decompresso"))
        .atteso(format!("al massimo {massimo} byte decompressi"))
}

/// How a bounded copy ended.
enum Copia {
    Fatta(u64),
    /// More than the bound.
    Oltre,
    /// The compressed stream is broken (the sender's problem, not an I/O failure).
    Illeggibile(io::Error),
}

/// Copies at most `massimo` bytes: read errors are the input's, write errors ours.
fn copia_limitata(mut da: impl Read, a: &mut impl Write, massimo: u64) -> io::Result<Copia> {
    let mut buf = vec![0u8; 1 << 16];
    let mut n: u64 = 0;
    loop {
        let k = match da.read(&mut buf) {
            Ok(0) => return Ok(Copia::Fatta(n)),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Copia::Illeggibile(e)),
        };
        n += k as u64;
        if n > massimo {
            return Ok(Copia::Oltre);
        }
        a.write_all(&buf[..k])?;
    }
}

/// The header of a decompressed part against its name: XML of the subentro schema
/// (EN009), `totaleInvii` equal to the name's total (EN038), `datiInvio` present when
/// the supply has more parts (EN031), its `progressivoInvio` the name's (EN008).
fn controlla_testata(percorso: &Path, logico: &str, nome: &NomeFile) -> Result<(), Vec<Anomalia>> {
    let tabelle = anpr_tables::tables();
    let file = match File::open(percorso) {
        Ok(f) => f,
        Err(e) => {
            return Err(vec![
                anomalia(tabelle, "EN009", Gravita::Errore, "fileXml").valore(e.to_string())
            ])
        }
    };
    let mut lettore = LettoreSubentro::new(BufReader::with_capacity(1 << 16, file));
    let t = match lettore.prossimo() {
        Some(Ok(Elemento::Testata(t))) => t,
        Some(Err(e)) => {
            let mut a = anomalia(tabelle, "EN009", Gravita::Errore, &e.percorso);
            a.testo = format!("{} ({logico}): {}", a.testo, e.messaggio);
            if let Some(v) = &e.valore {
                a = a.valore(v.as_str());
            }
            return Err(vec![a.atteso("un file conforme a subentro.xsd")]);
        }
        _ => {
            return Err(vec![anomalia(tabelle, "EN009", Gravita::Errore, "fileXml")
                .valore(logico)
                .atteso("un file conforme a subentro.xsd")])
        }
    };
    let mut anomalie = Vec::new();
    if t.totale_invii != u64::from(nome.totale) {
        anomalie.push(
            anomalia(
                tabelle,
                "EN038",
                Gravita::Errore,
                "datiFornitura/totaleInvii",
            )
            .valore(format!("{:03}", nome.totale))
            .atteso(format!(
                "{} (totaleInvii del file {logico})",
                t.totale_invii
            )),
        );
    }
    if t.totale_invii > 1 && t.invio.is_none() {
        anomalie.push(anomalia(tabelle, "EN031", Gravita::Errore, "datiInvio").valore(logico));
    }
    if let Some(p) = t.progressivo_invio {
        if p != u64::from(nome.progressivo) {
            anomalie.push(
                anomalia(
                    tabelle,
                    "EN008",
                    Gravita::Errore,
                    "datiInvio/progressivoInvio",
                )
                .valore(p.to_string())
                .atteso(format!(
                    "{} (il progressivo nel nome {logico})",
                    nome.progressivo
                )),
            );
        }
    }
    if anomalie.is_empty() {
        Ok(())
    } else {
        Err(anomalie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_di(nomi_contenuti: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            for (n, c) in nomi_contenuti {
                z.start_file(
                    *n,
                    zip::write::SimpleFileOptions::default()
                        .compression_method(zip::CompressionMethod::Deflated),
                )
                .unwrap();
                z.write_all(c).unwrap();
            }
            z.finish().unwrap();
        }
        buf.into_inner()
    }

    fn gzip_di(c: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(c).unwrap();
        e.finish().unwrap()
    }

    /// Decompresses `compresso` with bound `massimo`: the text, or the code refused.
    fn check(compresso: &[u8], massimo: u64) -> Result<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let (da, a) = (dir.path().join("in"), dir.path().join("out.xml"));
        std::fs::write(&da, compresso).unwrap();
        match decomprimi(&da, &a, massimo).unwrap() {
            Ok(n) => {
                let t = std::fs::read_to_string(&a).unwrap();
                assert_eq!(n as usize, t.len());
                Ok(t)
            }
            Err(x) => Err(x.codice),
        }
    }

    #[test]
    fn decompression_is_bounded_and_knows_zip_and_gzip() {
        let xml = b"<subentro/>".repeat(100);
        let testo = String::from_utf8(xml.clone()).unwrap();
        assert_eq!(
            check(&zip_di(&[("APR.xml", &xml)]), 1 << 20),
            Ok(testo.clone())
        );
        assert_eq!(check(&gzip_di(&xml), 1 << 20), Ok(testo.clone()));
        // Exactly at the bound passes, one byte over is EN002 (zip declares its size,
        // gzip is cut while streaming).
        assert_eq!(check(&gzip_di(&xml), xml.len() as u64), Ok(testo));
        assert_eq!(
            check(&gzip_di(&xml), xml.len() as u64 - 1),
            Err("EN002".into())
        );
        assert_eq!(
            check(&zip_di(&[("APR.xml", &xml)]), 100),
            Err("EN002".into())
        );
        // A small archive of a big file (a "bomb") stops at the bound.
        let bomba = gzip_di(&vec![b' '; 4 << 20]);
        assert!(bomba.len() < 64 << 10);
        assert_eq!(check(&bomba, 1 << 20), Err("EN002".into()));
        // Not compressed, two files, garbage after a signature: EN009.
        assert_eq!(check(&xml, 1 << 20), Err("EN009".into()));
        assert_eq!(
            check(&zip_di(&[("a.xml", b"<a/>"), ("b.xml", b"<b/>")]), 1 << 20),
            Err("EN009".into())
        );
        assert_eq!(check(b"PK\x03\x04garbage", 1 << 20), Err("EN009".into()));
        assert_eq!(
            check(&[0x1f, 0x8b, 8, 0, 1, 2, 3], 1 << 20),
            Err("EN009".into())
        );
    }

    /// The header of a part against its name, on generated files split in two.
    #[test]
    fn a_part_s_header_must_match_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let r = anpr_generatore::genera(&anpr_generatore::Configurazione {
            comuni: vec!["058091".parse().unwrap()],
            persone: 40,
            seme: 2,
            anomalie: 0.0,
            totali_errati: false,
            data_estrazione: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            cartella: dir.path().to_owned(),
        })
        .unwrap();
        let comune: CodiceIstatComune = "058091".parse().unwrap();
        let parti = anpr_generatore::dividi_in_parti(&r.file[0], 2).unwrap();
        let check = |file: &Path, nome: &str| -> Vec<String> {
            let n = verifica_nome(nome, &comune).unwrap();
            match controlla_testata(file, nome, &n) {
                Ok(()) => Vec::new(),
                Err(a) => a.into_iter().map(|a| a.codice).collect(),
            }
        };
        assert!(check(&parti[0], "APR_058091_001_002.xml").is_empty());
        assert!(check(&parti[1], "APR_058091_002_002.xml").is_empty());
        assert!(check(&r.file[0], "APR_058091_001_001.xml").is_empty());
        // totaleInvii 2 in a file named as one of three, 1 in a file named as one of two.
        assert_eq!(check(&parti[0], "APR_058091_001_003.xml"), ["EN038"]);
        assert_eq!(check(&r.file[0], "APR_058091_001_002.xml"), ["EN038"]);
        // The second part named as the first.
        assert_eq!(check(&parti[1], "APR_058091_001_002.xml"), ["EN008"]);
        // A part of two without datiInvio.
        let senza = dir.path().join("senza.xml");
        let testo = std::fs::read_to_string(&parti[0]).unwrap();
        let testo: String = testo
            .lines()
            .filter(|l| !l.starts_with("<datiInvio>"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&senza, testo).unwrap();
        assert_eq!(check(&senza, "APR_058091_001_002.xml"), ["EN031"]);
        // Not XML at all.
        std::fs::write(&senza, "PK garbage").unwrap();
        assert_eq!(check(&senza, "APR_058091_001_001.xml"), ["EN009"]);
    }

    #[test]
    fn logical_names() {
        for (inviato, logico) in [
            ("APR_058091_001_001.zip", "APR_058091_001_001.xml"),
            ("APR_058091_001_001.xml.zip", "APR_058091_001_001.xml"),
            ("AIRE_058091_002_003.xml.gz", "AIRE_058091_002_003.xml"),
            ("APR_058091_001_001.xml", "APR_058091_001_001.xml"),
            ("APR_058091_001_001", "APR_058091_001_001.xml"),
        ] {
            assert_eq!(nome_logico(inviato), logico);
        }
    }

    #[test]
    fn a_supply_needs_every_part_of_both_files() {
        let comune: CodiceIstatComune = "058091".parse().unwrap();
        let mut presenti = BTreeMap::new();
        let mut aggiungi = |n: &str| {
            presenti.insert(n.to_owned(), verifica_nome(n, &comune).unwrap());
            mancanti(&presenti, &comune)
        };
        assert_eq!(
            aggiungi("APR_058091_002_002.xml"),
            ["APR_058091_001_002.xml", "AIRE_058091_001_<TTT>.xml"]
        );
        assert_eq!(
            aggiungi("AIRE_058091_001_001.xml"),
            ["APR_058091_001_002.xml"]
        );
        assert!(aggiungi("APR_058091_001_002.xml").is_empty());
    }
}
