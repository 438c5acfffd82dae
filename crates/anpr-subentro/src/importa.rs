//! The subentro pipeline: file-level checks, streaming read, per-record checks, bulk
//! load, outcome files.
//!
//! ```text
//!  files ─► names/sizes/duplicates ─► headers (declared totals) ─► ids reserved
//!        ─► reader thread: parse ──(chunks of items, bounded)──►
//!           checker thread: checks (tables; per batch: other municipalities, tax agency),
//!                           records serialised to their stored text
//!                                        ──(batches of records, bounded)──►
//!           store task: one transaction (SQLite inserts / PostgreSQL COPY)
//!        ─► totals counted vs declared ─► Fine (commit, or roll back and store the refusal)
//! ```
//!
//! Three stages over bounded channels keep both cores busy and memory bounded: a few
//! chunks and batches in flight. What the run must remember until its end (the tax
//! codes seen, the families and their members, the heads' residences, the anomalies of
//! loaded records) is on disk, with capped caches (`crate::appoggio`).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anpr_ae::AgenziaEntrate;
use anpr_domain::audit::{NuovaVoceAudit, TipoEvento};
use anpr_domain::caller::Ambiente;
use anpr_domain::error::{Anomalia, Gravita};
use anpr_domain::ids::{
    CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdComunale, IdOperazioneAnpr,
};
use anpr_domain::operazione::StatoOperazione;
use anpr_domain::scheda::{
    DatiCodiceFiscale, DatiFamiglia, Intestatario, Legame, SchedaFamiglia, SchedaSoggetto,
    SezioneFamiglia, SezioneSoggetto, StatoCodiceFiscale, StatoFamiglia, TipoScheda,
};
use anpr_service::lavoro::{indice_famiglia, indice_soggetto};
use anpr_store::{
    EntityRef, FileSubentro, FineSubentro, IndexWrite, InizioSubentro, MessaggioSubentro,
    NewOperation, NewOutboxMessage, RecordSubentro, Sequence, SezioneSubentro, Store, StoreError,
};
use anpr_tables::Tables;
use chrono::{NaiveDate, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::appoggio::{Appoggio, Deposito, IndiceNucleo, Nucleo};
use crate::controlli::{anomalia, controlla, SoggettoControllato, CODICE_CF_DUPLICATO_FORNITURA};
use crate::esiti::{RigaAnomalia, ScrittoreEsiti};
use crate::nome_file::{verifica_nome, NomeFile};
use crate::parser::{data, Elemento, LettoreSubentro, Testata, Totali};

/// Records per batch sent to the store (and per tax-code lookup).
const LOTTO: usize = 2048;
/// Families missing from the file listed at a time, at the end of a run.
const MANCANTI_PER_PAGINA: u32 = 1024;
/// Batches in flight between the reader and the store.
const LOTTI_IN_VOLO: usize = 4;
/// Service code of the onboarding in the operation log.
pub const CODICE_SERVIZIO_SUBENTRO: &str = "S001";

/// How a run ended, per file and overall (table "Stati di lavorazione" wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatoSubentro {
    /// Loaded (possibly with non-blocking anomalies and blocked records).
    #[default]
    Elaborato,
    /// Declared totals differ from the counted ones: nothing loaded.
    InseritoKo,
    /// Refused at file level (name, size, format, XSD, state of the onboarding).
    Scartato,
}

impl StatoSubentro {
    pub fn as_str(self) -> &'static str {
        match self {
            StatoSubentro::Elaborato => "ELABORATO",
            StatoSubentro::InseritoKo => "INSERITO KO",
            StatoSubentro::Scartato => "SCARTATO",
        }
    }
}

/// A file to onboard.
#[derive(Debug, Clone)]
pub struct FileIngresso {
    /// The name as sent (checked by EN001 & co.).
    pub nome: String,
    pub percorso: PathBuf,
}

impl FileIngresso {
    pub fn da_percorso(percorso: &Path) -> Self {
        Self {
            nome: percorso
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            percorso: percorso.to_owned(),
        }
    }
}

/// What the run needs besides the files.
#[derive(Debug, Clone)]
pub struct Opzioni {
    pub comune: CodiceIstatComune,
    pub ambiente: Ambiente,
    pub oggi: NaiveDate,
    /// Who runs it (user CF or `cli`), for the log and the audit.
    pub utente: String,
    pub canale: String,
    /// Largest file accepted (EN002).
    pub dimensione_massima: u64,
    pub cartella_esiti: PathBuf,
}

/// Progress callback: bytes read so far (all files), records read so far.
pub type Avanzamento = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct EsitoSubentro {
    pub stato: StatoSubentro,
    pub id_operazione: IdOperazioneAnpr,
    pub soggetti_letti: u64,
    pub soggetti_caricati: u64,
    pub famiglie_caricate: u64,
    /// Count per (code, severity).
    pub riepilogo: BTreeMap<(String, String), u64>,
    /// The anomalies that stopped the run (file level), empty when loaded.
    pub bloccanti: Vec<Anomalia>,
}

/// Failures that are ours, not the municipality's.
#[derive(Debug, thiserror::Error)]
pub enum ErroreSubentro {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("internal: {0}")]
    Interno(String),
}

/// Onboards `files` for `opzioni.comune` into `store` (SPEC M-6.2/M-6.3). Writes the
/// outcome files into `opzioni.cartella_esiti`. The tax agency, when given, validates
/// every coherent tax code (read only: a consultation).
pub async fn importa(
    store: Arc<dyn Store>,
    ae: Option<Arc<dyn AgenziaEntrate>>,
    opzioni: Opzioni,
    files: Vec<FileIngresso>,
    avanzamento: Avanzamento,
) -> Result<EsitoSubentro, ErroreSubentro> {
    let tabelle = anpr_tables::tables();
    let mut esiti = ScrittoreEsiti::nuovo(&opzioni.cartella_esiti)?;
    let mut bloccanti = Vec::new();
    let mut stato = StatoSubentro::Elaborato;

    // File-level checks: names, sizes, content hashes; APR before AIRE.
    let mut letti: Vec<(FileIngresso, NomeFile, u64, String)> = Vec::new();
    for f in files {
        let nome = match verifica_nome(&f.nome, &opzioni.comune) {
            Ok(n) => n,
            Err(a) => {
                bloccanti.push(a);
                continue;
            }
        };
        let dimensione = std::fs::metadata(&f.percorso)
            .map_err(|e| ErroreSubentro::Io(f.percorso.clone(), e))?
            .len();
        if dimensione > opzioni.dimensione_massima {
            bloccanti.push(
                anomalia(tabelle, "EN002", Gravita::Errore, "file")
                    .valore(format!("{} ({dimensione} byte)", f.nome))
                    .atteso(format!("al massimo {} byte", opzioni.dimensione_massima)),
            );
            continue;
        }
        let sha = sha256(&f.percorso)?;
        letti.push((f, nome, dimensione, sha));
    }
    letti.sort_by_key(|(_, n, _, _)| (n.tipo, n.progressivo));
    let precedenti = store.file_subentro(&opzioni.comune).await?;
    if opzioni.ambiente == Ambiente::Produzione
        && precedenti
            .iter()
            .any(|p| p.stato == StatoSubentro::Elaborato.as_str())
    {
        bloccanti.push(
            anomalia(tabelle, "EN034", Gravita::Errore, "comune")
                .valore(opzioni.comune.as_str())
                .atteso("un comune non ancora subentrato"),
        );
    }
    let azzera = opzioni.ambiente != Ambiente::Produzione
        && precedenti
            .iter()
            .any(|p| p.stato == StatoSubentro::Elaborato.as_str());

    // Headers: the declared totals size the id reservation.
    let mut testate = Vec::new();
    for (f, _, _, _) in &letti {
        let mut lettore = LettoreSubentro::new(apri(&f.percorso)?);
        match lettore.prossimo() {
            Some(Ok(Elemento::Testata(t))) => testate.push(t),
            Some(Err(e)) => {
                bloccanti.push(errore_struttura(tabelle, &f.nome, &e));
                testate.push(Testata::default());
            }
            _ => {
                bloccanti.push(
                    anomalia(tabelle, "EN009", Gravita::Errore, "file").valore(f.nome.as_str()),
                );
                testate.push(Testata::default());
            }
        }
    }
    if !bloccanti.is_empty() || letti.is_empty() {
        stato = StatoSubentro::Scartato;
        if letti.is_empty() && bloccanti.is_empty() {
            bloccanti.push(
                anomalia(tabelle, "EN001", Gravita::Errore, "file")
                    .atteso("almeno un file APR o AIRE"),
            );
        }
    }

    // Ids are reserved before the load starts: on SQLite the load holds the write lock
    // until its end. A subject takes at least ~100 bytes of XML, so declared totals
    // beyond what the files can hold are not reserved (the run ends INSERITO KO anyway).
    let (ids_s, ids_f) = if stato == StatoSubentro::Elaborato {
        let dimensione_totale: u64 = letti.iter().map(|(_, _, d, _)| *d).sum();
        let dichiarati_s: u64 = testate
            .iter()
            .map(|t| t.invio.map_or(t.fornitura.soggetti, |i| i.soggetti))
            .sum();
        let dichiarati_f: u64 = testate
            .iter()
            .map(|t| {
                t.invio
                    .map_or(t.fornitura.famiglie + t.fornitura.convivenze, |i| {
                        i.famiglie + i.convivenze
                    })
            })
            .sum();
        let tetto = dimensione_totale / 100 + 16;
        let n_s = dichiarati_s.min(tetto);
        let n_f = (dichiarati_f + n_s / 8 + 16).min(tetto);
        (
            store.next_ids(Sequence::Soggetto, n_s).await?,
            store.next_ids(Sequence::Famiglia, n_f).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let id_operazione = IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await?)
        .map_err(|e| ErroreSubentro::Interno(e.to_string()))?;
    let operazione = nuova_operazione(&opzioni, id_operazione, &letti);
    let (tx, rx) = mpsc::channel(LOTTI_IN_VOLO);
    let carico = {
        let store = Arc::clone(&store);
        let inizio = InizioSubentro {
            operazione,
            azzera_comune: azzera,
            soggetti_previsti: u64::try_from(ids_s.len()).unwrap_or(u64::MAX),
            famiglie_previste: u64::try_from(ids_f.len()).unwrap_or(u64::MAX),
        };
        tokio::spawn(async move { store.carica_subentro(inizio, rx).await })
    };

    let mut prodotto = Prodotto::default();
    if stato == StatoSubentro::Elaborato {
        let handle = tokio::runtime::Handle::current();
        let ctx = Contesto {
            tabelle,
            comune: opzioni.comune.clone(),
            oggi: opzioni.oggi,
            store: Arc::clone(&store),
            ae: ae.clone(),
            handle,
            avanzamento: Arc::clone(&avanzamento),
        };
        let files: Vec<(FileIngresso, Testata)> = letti
            .iter()
            .map(|(f, _, _, _)| f.clone())
            .zip(testate.iter().cloned())
            .collect();
        let tx2 = tx.clone();
        let deposito = Deposito::nuovo(&opzioni.cartella_esiti)?;
        let risultato = tokio::task::spawn_blocking(move || {
            let appoggio = match Appoggio::nuovo() {
                Ok(a) => a,
                Err(e) => return (Prodotto::default(), esiti, Err(e)),
            };
            let mut p = Produttore::new(ctx, ids_s, ids_f, tx2, esiti, deposito, appoggio);
            let r = p.esegui(&files);
            (p.prodotto, p.esiti, r)
        })
        .await
        .map_err(|e| ErroreSubentro::Interno(e.to_string()))?;
        prodotto = risultato.0;
        esiti = risultato.1;
        risultato.2?;
        if !prodotto.bloccanti.is_empty() {
            bloccanti.extend(prodotto.bloccanti.iter().cloned());
            stato = prodotto.stato;
        }
    }

    // The end: commit, or roll back and keep the refusal; the outcome mail either way.
    let positivo = stato == StatoSubentro::Elaborato;
    for a in &bloccanti {
        esiti.anomalia(&RigaAnomalia::file(a))?;
    }
    let files_stato: Vec<FileSubentro> = letti
        .iter()
        .map(|(f, _, _, sha)| {
            let (s, fam) = prodotto.per_file.get(&f.nome).copied().unwrap_or_default();
            FileSubentro {
                comune: opzioni.comune.clone(),
                nome_file: f.nome.clone(),
                sha256: sha.clone(),
                stato: stato.as_str().to_owned(),
                id_operazione: positivo.then_some(id_operazione),
                registrato_il: Utc::now(),
                soggetti: if positivo { s } else { 0 },
                famiglie: if positivo { fam } else { 0 },
            }
        })
        .collect();
    let risposta = serde_json::json!({
        "idOperazioneANPR": id_operazione.to_string(),
        "comune": opzioni.comune.as_str(),
        "ambiente": opzioni.ambiente.as_str(),
        "stato": stato.as_str(),
        "soggettiLetti": prodotto.soggetti_letti,
        "soggettiCaricati": if positivo { prodotto.soggetti_caricati } else { 0 },
        "famiglieCaricate": if positivo { prodotto.famiglie_caricate } else { 0 },
        "file": files_stato.iter().map(|f| serde_json::json!({"nomeFile": f.nome_file, "stato": f.stato, "sha256": f.sha256})).collect::<Vec<_>>(),
        "anomalieBloccanti": bloccanti,
    })
    .to_string();
    let fine = FineSubentro {
        esito_positivo: positivo,
        risposta,
        outbox: vec![mail(&opzioni, positivo, &bloccanti)],
        audit: NuovaVoceAudit {
            istante: Utc::now(),
            evento: TipoEvento::Operazione,
            azione: CODICE_SERVIZIO_SUBENTRO.into(),
            utente: opzioni.utente.clone(),
            comune: Some(opzioni.comune.as_str().to_owned()),
            postazione: None,
            canale: opzioni.canale.clone(),
            oggetto: Some(format!("subentro:{}", opzioni.comune)),
            id_operazione_anpr: Some(id_operazione.get()),
            esito: if positivo {
                "ok".into()
            } else {
                format!("rifiutata: {}", stato.as_str())
            },
        },
        files: files_stato.clone(),
    };
    // If the store task already failed, the send fails too: its error is the one to report.
    let _ = tx.send(MessaggioSubentro::Fine(fine)).await;
    drop(tx);
    carico
        .await
        .map_err(|e| ErroreSubentro::Interno(e.to_string()))??;

    let mut riepilogo = prodotto.riepilogo.clone();
    for a in &bloccanti {
        *riepilogo
            .entry((a.codice.clone(), a.gravita.code().to_owned()))
            .or_default() += 1;
    }
    esiti.concludi(positivo, &riepilogo, &files_stato)?;
    Ok(EsitoSubentro {
        stato,
        id_operazione,
        soggetti_letti: prodotto.soggetti_letti,
        soggetti_caricati: if positivo {
            prodotto.soggetti_caricati
        } else {
            0
        },
        famiglie_caricate: if positivo {
            prodotto.famiglie_caricate
        } else {
            0
        },
        riepilogo,
        bloccanti,
    })
}

fn apri(p: &Path) -> Result<BufReader<File>, ErroreSubentro> {
    File::open(p)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|e| ErroreSubentro::Io(p.to_owned(), e))
}

fn sha256(p: &Path) -> Result<String, ErroreSubentro> {
    let mut f = apri(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ErroreSubentro::Io(p.to_owned(), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn errore_struttura(tabelle: &Tables, file: &str, e: &crate::parser::ErroreStruttura) -> Anomalia {
    let mut a = anomalia(tabelle, "EN009", Gravita::Errore, &e.percorso);
    a.testo = format!("{} ({file}): {}", a.testo, e.messaggio);
    if let Some(v) = &e.valore {
        a = a.valore(v.as_str());
    }
    a.atteso("un file conforme a subentro.xsd")
}

fn nuova_operazione(
    opzioni: &Opzioni,
    id: IdOperazioneAnpr,
    files: &[(FileIngresso, NomeFile, u64, String)],
) -> NewOperation {
    NewOperation {
        id,
        codice_servizio: CODICE_SERVIZIO_SUBENTRO.parse().expect("a valid service code"),
        comune: Some(opzioni.comune.clone()),
        id_operazione_comune: None,
        utente: opzioni.utente.clone(),
        postazione: None,
        canale: opzioni.canale.clone(),
        decorrenza: opzioni.oggi,
        registrata_il: Utc::now(),
        stato: StatoOperazione::Eseguita,
        richiesta: serde_json::json!({
            "file": files.iter().map(|(f, _, d, sha)| serde_json::json!({"nomeFile": f.nome, "dimensione": d, "sha256": sha})).collect::<Vec<_>>(),
        })
        .to_string(),
        risposta: "{}".into(),
        writes: Vec::new(),
        indexes: Vec::new(),
        outbox: Vec::new(),
        completa_sospesa: None,
        audit: NuovaVoceAudit {
            istante: Utc::now(),
            evento: TipoEvento::Operazione,
            azione: CODICE_SERVIZIO_SUBENTRO.into(),
            utente: opzioni.utente.clone(),
            comune: Some(opzioni.comune.as_str().to_owned()),
            postazione: None,
            canale: opzioni.canale.clone(),
            oggetto: None,
            id_operazione_anpr: Some(id.get()),
            esito: "in corso".into(),
        },
    }
}

/// The outcome mail (seed 000: subject and body of the ministry's PEC).
fn mail(opzioni: &Opzioni, positivo: bool, bloccanti: &[Anomalia]) -> NewOutboxMessage {
    let oggetto = format!(
        "Esito elaborazione APR e AIRE in ambiente di {}",
        opzioni.ambiente.as_str()
    );
    let corpo = if positivo {
        format!(
            "Si comunica che l'attività in oggetto è terminata con esito positivo in data {}\n\nIl Ministero dell'Interno",
            opzioni.oggi.format("%d/%m/%Y")
        )
    } else {
        let righe: Vec<String> = bloccanti
            .iter()
            .map(|a| format!("{} - \"{}\"", a.codice, a.testo))
            .collect();
        format!(
            "Si comunica che l'attività in oggetto è terminata con esito negativo.\nDi seguito sono riportate le anomalie riscontrate che hanno determinato l'interruzione dell'elaborazione:\n{}\nOccorre eliminare le anomalie e procedere con un nuovo invio del file\n\nIl Ministero dell'Interno",
            righe.join("\n")
        )
    };
    NewOutboxMessage {
        tipo: "mail".into(),
        destinatario: opzioni.comune.as_str().to_owned(),
        payload: serde_json::json!({"oggetto": oggetto, "corpo": corpo, "esitoPositivo": positivo}),
    }
}

/// What the reader thread needs.
struct Contesto {
    tabelle: &'static Tables,
    comune: CodiceIstatComune,
    oggi: NaiveDate,
    store: Arc<dyn Store>,
    ae: Option<Arc<dyn AgenziaEntrate>>,
    handle: tokio::runtime::Handle,
    avanzamento: Avanzamento,
}

/// What the reader thread found.
#[derive(Debug, Default)]
struct Prodotto {
    stato: StatoSubentro,
    bloccanti: Vec<Anomalia>,
    soggetti_letti: u64,
    soggetti_caricati: u64,
    famiglie_caricate: u64,
    riepilogo: BTreeMap<(String, String), u64>,
    /// Per file name: subjects and families loaded.
    per_file: HashMap<String, (u64, u64)>,
}

/// Parsed items handed from the reader thread to the checker, a few hundred at a time.
const PEZZO: usize = 256;
/// Chunks in flight between the reader and the checker.
const PEZZI_IN_VOLO: usize = 8;

/// What the reader thread sends for one file.
enum Letto {
    /// Items in file order, and the bytes of the file read so far.
    Elementi(Vec<Result<Elemento, crate::parser::ErroreStruttura>>, u64),
    /// The end of the file (or of its reading, after a structure error), bytes read.
    Fine(u64),
}

/// Reads one file on its own thread: parsing is a third of the work and runs in
/// parallel with the checks (and, on the other side of the store channel, the inserts).
/// Stops at the first structure error, or when the checker stops listening.
fn leggi_in_parallelo(
    percorso: PathBuf,
) -> Result<
    (
        std::sync::mpsc::Receiver<Letto>,
        std::thread::JoinHandle<()>,
    ),
    ErroreSubentro,
> {
    let input = apri(&percorso)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(PEZZI_IN_VOLO);
    let thread = std::thread::Builder::new()
        .name("subentro-lettore".into())
        .spawn(move || {
            let mut lettore = LettoreSubentro::new(input);
            let mut pezzo = Vec::with_capacity(PEZZO);
            while let Some(e) = lettore.prossimo() {
                let errore = e.is_err();
                pezzo.push(e);
                if pezzo.len() == PEZZO || errore {
                    let pieno = std::mem::replace(&mut pezzo, Vec::with_capacity(PEZZO));
                    if tx.send(Letto::Elementi(pieno, lettore.letti)).is_err() {
                        return;
                    }
                }
                if errore {
                    break;
                }
            }
            if !pezzo.is_empty() && tx.send(Letto::Elementi(pezzo, lettore.letti)).is_err() {
                return;
            }
            let _ = tx.send(Letto::Fine(lettore.letti));
        })
        .map_err(|e| ErroreSubentro::Io(percorso.clone(), e))?;
    Ok((rx, thread))
}

/// Ids reserved for the run, as runs of consecutive values: the store hands them out
/// in blocks (SQLite always one block), so a million ids take a few bytes instead of
/// eight megabytes for the whole run.
#[derive(Debug, Default)]
struct IdRiservati {
    /// (first, one past the last), in the order given.
    blocchi: std::collections::VecDeque<(u64, u64)>,
}

impl IdRiservati {
    fn da(ids: Vec<u64>) -> Self {
        let mut blocchi: std::collections::VecDeque<(u64, u64)> = Default::default();
        for id in ids {
            match blocchi.back_mut() {
                Some((_, fine)) if *fine == id && id < u64::MAX => *fine = id + 1,
                _ => blocchi.push_back((id, id.saturating_add(1))),
            }
        }
        Self { blocchi }
    }

    fn prossimo(&mut self) -> Option<u64> {
        let (inizio, fine) = self.blocchi.front_mut()?;
        let id = *inizio;
        *inizio += 1;
        if inizio == fine {
            self.blocchi.pop_front();
        }
        Some(id)
    }
}

/// Sends a message to the store's load.
fn invia(tx: &mpsc::Sender<MessaggioSubentro>, m: MessaggioSubentro) -> Result<(), ErroreSubentro> {
    tx.blocking_send(m)
        .map_err(|_| ErroreSubentro::Interno("the store stopped receiving records".into()))
}

struct Produttore {
    ctx: Contesto,
    ids_s: IdRiservati,
    ids_f: IdRiservati,
    tx: mpsc::Sender<MessaggioSubentro>,
    esiti: ScrittoreEsiti,
    prodotto: Prodotto,
    /// What the run remembers until its end, on disk: the tax codes seen, the
    /// families and their loaded members, the non-blocking anomalies of loaded subjects
    /// (written with them at the end: EN063 is known only once the families are read).
    appoggio: Appoggio,
    lotto: Vec<RecordSubentro>,
    /// The heads' residences until their families are read.
    deposito: Deposito,
    ids_esauriti: bool,
    byte_precedenti: u64,
}

impl Produttore {
    fn new(
        ctx: Contesto,
        ids_s: Vec<u64>,
        ids_f: Vec<u64>,
        tx: mpsc::Sender<MessaggioSubentro>,
        esiti: ScrittoreEsiti,
        deposito: Deposito,
        appoggio: Appoggio,
    ) -> Self {
        Self {
            ctx,
            ids_s: IdRiservati::da(ids_s),
            ids_f: IdRiservati::da(ids_f),
            tx,
            esiti,
            prodotto: Prodotto::default(),
            appoggio,
            lotto: Vec::with_capacity(LOTTO),
            deposito,
            ids_esauriti: false,
            byte_precedenti: 0,
        }
    }

    fn invia(&mut self, m: MessaggioSubentro) -> Result<(), ErroreSubentro> {
        invia(&self.tx, m)
    }

    fn svuota(&mut self) -> Result<(), ErroreSubentro> {
        if !self.lotto.is_empty() {
            let lotto = std::mem::replace(&mut self.lotto, Vec::with_capacity(LOTTO));
            self.invia(MessaggioSubentro::Lotto(lotto))?;
        }
        Ok(())
    }

    fn conta(&mut self, a: &Anomalia) {
        *self
            .prodotto
            .riepilogo
            .entry((a.codice.clone(), a.gravita.code().to_owned()))
            .or_default() += 1;
    }

    fn blocca(&mut self, stato: StatoSubentro, a: Anomalia) {
        if self.prodotto.bloccanti.is_empty() || stato == StatoSubentro::Scartato {
            self.prodotto.stato = stato;
        }
        self.prodotto.bloccanti.push(a);
    }

    fn esegui(&mut self, files: &[(FileIngresso, Testata)]) -> Result<(), ErroreSubentro> {
        for (f, testata) in files {
            let contati = self.file(f, testata)?;
            if let Some(contati) = contati {
                self.quadratura(f, testata, &contati);
            }
            if self.prodotto.stato == StatoSubentro::Scartato {
                return Ok(());
            }
        }
        self.famiglie_mancanti()?;
        self.svuota()?;
        let mut sezioni = Vec::with_capacity(LOTTO);
        // The deferred anomalies are read from the scratch database while they are
        // sent: the sender is borrowed apart from it.
        self.appoggio.per_ogni_differita(|id, dal, json| {
            sezioni.push((
                EntityRef::Soggetto(id),
                dal,
                SezioneSubentro {
                    section: SezioneSoggetto::AnomalieSubentro.key(),
                    json,
                    key: None,
                },
            ));
            if sezioni.len() == LOTTO {
                invia(
                    &self.tx,
                    MessaggioSubentro::Sezioni(std::mem::take(&mut sezioni)),
                )?;
            }
            Ok(())
        })?;
        if !sezioni.is_empty() {
            self.invia(MessaggioSubentro::Sezioni(sezioni))?;
        }
        if self.ids_esauriti && self.prodotto.bloccanti.is_empty() {
            let a = anomalia(self.ctx.tabelle, "EV152", Gravita::Errore, "datiFornitura");
            self.blocca(StatoSubentro::InseritoKo, a);
        }
        Ok(())
    }

    /// Streams one file (parsed on a thread of its own); returns the counted totals, or
    /// `None` if it was refused.
    fn file(
        &mut self,
        f: &FileIngresso,
        _testata: &Testata,
    ) -> Result<Option<Totali>, ErroreSubentro> {
        let (rx, lettore) = leggi_in_parallelo(f.percorso.clone())?;
        let esito = self.consuma(f, &rx);
        // Dropping the receiver stops a reader still running (refused file).
        drop(rx);
        let _ = lettore.join();
        esito
    }

    fn consuma(
        &mut self,
        f: &FileIngresso,
        rx: &std::sync::mpsc::Receiver<Letto>,
    ) -> Result<Option<Totali>, ErroreSubentro> {
        let mut contati = Totali::default();
        let mut in_attesa: Vec<crate::parser::SoggettoLetto> = Vec::with_capacity(LOTTO);
        let mut letti;
        loop {
            let pezzo = match rx.recv() {
                Ok(Letto::Elementi(pezzo, byte)) => {
                    letti = byte;
                    pezzo
                }
                Ok(Letto::Fine(byte)) => {
                    letti = byte;
                    break;
                }
                Err(_) => {
                    return Err(ErroreSubentro::Interno(format!(
                        "the reader of {} stopped",
                        f.nome
                    )))
                }
            };
            for e in pezzo {
                match e {
                    Ok(Elemento::Testata(_)) => {}
                    Ok(Elemento::Soggetto(s)) => {
                        contati.soggetti += 1;
                        if s.cittadinanza.as_deref() == Some("100") {
                            contati.italiani += 1;
                        } else {
                            contati.non_italiani += 1;
                        }
                        match s.sesso.as_str() {
                            "F" => contati.femmine += 1,
                            "M" => contati.maschi += 1,
                            _ => {}
                        }
                        in_attesa.push(*s);
                        if in_attesa.len() == LOTTO {
                            self.soggetti(&f.nome, std::mem::take(&mut in_attesa))?;
                            (self.ctx.avanzamento)(
                                self.byte_precedenti + letti,
                                self.prodotto.soggetti_letti,
                            );
                        }
                    }
                    Ok(Elemento::Famiglia(fam)) => {
                        if !in_attesa.is_empty() {
                            self.soggetti(&f.nome, std::mem::take(&mut in_attesa))?;
                        }
                        if fam.convivenza {
                            contati.convivenze += 1;
                        } else {
                            contati.famiglie += 1;
                        }
                        self.famiglia(&f.nome, &fam)?;
                    }
                    Err(e) => {
                        let a = errore_struttura(self.ctx.tabelle, &f.nome, &e);
                        self.blocca(StatoSubentro::Scartato, a);
                        return Ok(None);
                    }
                }
            }
        }
        if !in_attesa.is_empty() {
            self.soggetti(&f.nome, in_attesa)?;
        }
        self.byte_precedenti += letti;
        (self.ctx.avanzamento)(self.byte_precedenti, self.prodotto.soggetti_letti);
        Ok(Some(contati))
    }
    /// Declared vs counted (EN011–EN024, EN031).
    fn quadratura(&mut self, f: &FileIngresso, t: &Testata, c: &Totali) {
        let coppie = |x: &Totali| {
            [
                x.soggetti,
                x.italiani,
                x.non_italiani,
                x.femmine,
                x.maschi,
                x.famiglie,
                x.convivenze,
            ]
        };
        const NOMI: [&str; 7] = [
            "SchedeSoggetto",
            "CittadiniItaliani",
            "IscrittiNonItaliani",
            "PersoneSessoFemminile",
            "PersoneSessoMaschile",
            "SchedeFamiglia",
            "SchedeConvivenza",
        ];
        let contati = coppie(c);
        if t.totale_invii > 1 && t.invio.is_none() {
            let a = anomalia(self.ctx.tabelle, "EN031", Gravita::Errore, "datiInvio")
                .valore(f.nome.as_str());
            self.blocca(StatoSubentro::InseritoKo, a);
        }
        if let Some(invio) = &t.invio {
            for (i, (d, k)) in coppie(invio).iter().zip(contati).enumerate() {
                if *d != k {
                    let codice = format!("EN{:03}", 11 + 2 * i);
                    let a = anomalia(
                        self.ctx.tabelle,
                        &codice,
                        Gravita::Errore,
                        &format!("datiInvio/numero{}Invio", NOMI[i]),
                    )
                    .valore(d.to_string())
                    .atteso(format!("{k} (contati nel file {})", f.nome));
                    self.blocca(StatoSubentro::InseritoKo, a);
                }
            }
        }
        // The supply totals can be checked file by file only for a one-file supply.
        if t.totale_invii <= 1 {
            for (i, (d, k)) in coppie(&t.fornitura).iter().zip(contati).enumerate() {
                if *d != k {
                    let codice = format!("EN{:03}", 12 + 2 * i);
                    let a = anomalia(
                        self.ctx.tabelle,
                        &codice,
                        Gravita::Errore,
                        &format!("datiFornitura/numeroTotale{}", NOMI[i]),
                    )
                    .valore(d.to_string())
                    .atteso(format!("{k} (contati nella fornitura {})", f.nome));
                    self.blocca(StatoSubentro::InseritoKo, a);
                }
            }
        }
    }

    fn prossimo_soggetto(&mut self) -> Option<IdAnprSoggetto> {
        let id = self
            .ids_s
            .prossimo()
            .and_then(|i| IdAnprSoggetto::new(i).ok());
        if id.is_none() {
            self.ids_esauriti = true;
        }
        id
    }

    fn prossima_famiglia(&mut self) -> Option<IdAnprFamiglia> {
        let id = self
            .ids_f
            .prossimo()
            .and_then(|i| IdAnprFamiglia::new(i).ok());
        if id.is_none() {
            self.ids_esauriti = true;
        }
        id
    }

    /// Checks and converts a batch of subjects: the record checks, then one lookup of
    /// other municipalities' subjects and one call to the tax agency for the batch.
    fn soggetti(
        &mut self,
        file: &str,
        lotto: Vec<crate::parser::SoggettoLetto>,
    ) -> Result<(), ErroreSubentro> {
        let controllati: Vec<SoggettoControllato> = lotto
            .iter()
            .map(|s| controlla(self.ctx.tabelle, &self.ctx.comune, self.ctx.oggi, s))
            .collect();
        let codici: Vec<String> = controllati
            .iter()
            .filter_map(|c| c.codice_fiscale.as_ref().map(|x| x.as_str().to_owned()))
            .collect();
        // The tax agency: every coherent code of the batch in one call.
        let da_validare: Vec<String> = match &self.ctx.ae {
            Some(_) => controllati
                .iter()
                .filter(|c| c.cf_da_validare)
                .filter_map(|c| c.codice_fiscale.as_ref().map(|x| x.as_str().to_owned()))
                .collect(),
            None => Vec::new(),
        };
        let store = Arc::clone(&self.ctx.store);
        let ae = self.ctx.ae.clone();
        let (presenti, agenzia) = self.ctx.handle.block_on(async move {
            // Other municipalities' subjects with the same codes (one lookup per batch).
            let presenti = store.codici_fiscali_presenti(&codici).await;
            let agenzia = match ae {
                Some(ae) if !da_validare.is_empty() => Some(ae.presenti(&da_validare).await),
                _ => None,
            };
            (presenti, agenzia)
        });
        let mut altrove: HashMap<String, (String, String)> = HashMap::new();
        for p in presenti? {
            if p.comune != self.ctx.comune {
                altrove.insert(
                    p.codice_fiscale,
                    (p.comune.as_str().to_owned(), p.posizione),
                );
            }
        }
        // The agency's answers, in the order of the codes asked.
        let mut risposte = match agenzia {
            Some(Ok(r)) => Some(r.into_iter()),
            Some(Err(e)) => {
                // An unreachable agency does not stop the onboarding: the codes stay
                // "not validated" and are validated later (M-3.2).
                tracing::warn!(error = %e, "tax agency unavailable during subentro");
                None
            }
            None => None,
        };
        for (letto, mut c) in lotto.into_iter().zip(controllati) {
            self.prodotto.soggetti_letti += 1;
            let posizione =
                if c.competenza.posizione == anpr_domain::scheda::PosizioneAnagrafica::Aire {
                    b'A'
                } else {
                    b'R'
                };
            let mut stato_cf = StatoCodiceFiscale::NonValidato;
            if let Some(cf) = c.codice_fiscale.as_ref().map(|x| x.as_str().to_owned()) {
                let campo = "generalitaSubIscr/codiceFiscale/codFiscale";
                let chiave = crate::registro_ae::chiave(&cf);
                if let Some((comune, pos)) = altrove.get(&cf) {
                    let codice = if pos == "A" || posizione == b'A' {
                        "EA031"
                    } else {
                        "EA030"
                    };
                    c.anomalie.push(
                        anomalia(self.ctx.tabelle, codice, Gravita::Avvertimento, campo)
                            .valore(cf.as_str())
                            .atteso(format!(
                                "un soggetto non iscritto anche nel comune {comune}"
                            )),
                    );
                } else if let Some(pos) = match chiave {
                    Some(k) => self.appoggio.codice(&k, posizione)?,
                    None => None,
                } {
                    let codice = if pos != posizione {
                        "EA031"
                    } else {
                        CODICE_CF_DUPLICATO_FORNITURA
                    };
                    c.anomalie.push(
                        anomalia(self.ctx.tabelle, codice, Gravita::Avvertimento, campo)
                            .valore(cf.as_str())
                            .atteso("un codice fiscale presente una sola volta"),
                    );
                }
                if c.cf_da_validare && self.ctx.ae.is_some() {
                    match risposte.as_mut().map(Iterator::next) {
                        Some(Some(true)) => stato_cf = StatoCodiceFiscale::Validato,
                        Some(Some(false)) => c.anomalie.push(
                            anomalia(self.ctx.tabelle, "EA029", Gravita::Avvertimento, campo)
                                .valore(cf.as_str())
                                .atteso("un codice fiscale presente in Anagrafe Tributaria"),
                        ),
                        // No answer (agency unavailable, or a short answer): not validated.
                        _ => {}
                    }
                }
            }
            let bloccato = c.bloccato();
            let id = if bloccato {
                None
            } else {
                self.prossimo_soggetto()
            };
            for a in &c.anomalie {
                self.conta(a);
                self.esiti
                    .anomalia(&RigaAnomalia::soggetto(file, &letto, id, a))?;
            }
            // The family link is known from the file whether or not the subject loads.
            let nucleo = match &c.legame {
                Some((fam, tipo, codice, dal)) => {
                    let indice = match self.appoggio.cerca_nucleo(fam.as_str())? {
                        Some(i) => i,
                        None => {
                            let Some(id_f) = self.prossima_famiglia() else {
                                self.esiti.soggetto(file, &letto, None)?;
                                continue;
                            };
                            self.nuovo_nucleo(fam, id_f, *tipo, posizione == b'A', *dal)?
                        }
                    };
                    let n = self.appoggio.nucleo_mut(indice)?;
                    n.membri_file += 1;
                    n.origine = n.origine.min(*dal);
                    let capo = id.is_some() && codice == "1" && n.intestatario.is_none();
                    if let (Some(id), true) = (id, capo) {
                        n.intestatario = Some((id, *dal));
                    }
                    Some((indice, n.id, *tipo, codice.clone(), *dal, capo))
                }
                None => None,
            };
            self.esiti.soggetto(file, &letto, id)?;
            let Some(id) = id else { continue };
            let mut scheda = SchedaSoggetto {
                competenza: Some(c.competenza),
                generalita: c.generalita,
                codice_fiscale: c.codice_fiscale.map(|cod| DatiCodiceFiscale {
                    cod_fiscale: cod,
                    stato: stato_cf,
                    data_attribuzione_validita: (stato_cf == StatoCodiceFiscale::Validato)
                        .then_some(self.ctx.oggi),
                    codici_collegati: Vec::new(),
                }),
                cittadinanze: (!c.cittadinanze.is_empty()).then_some(c.cittadinanze),
                stato_civile: c.stato_civile,
                residenza: c.residenza,
                iscrizione: c.iscrizione,
                aire: c.aire,
                ..SchedaSoggetto::default()
            };
            if let Some((indice, id_f, tipo, codice, dal, capo)) = nucleo {
                self.appoggio.membro(indice, id)?;
                scheda.legame = Some(Legame {
                    id_famiglia_convivenza_anpr: id_f,
                    tipo_legame: tipo,
                    codice_legame: codice,
                    data_decorrenza: dal.max(c.valido_dal),
                });
                if capo {
                    // The family's residence is its head's: its text waits in the
                    // deposit until the family record is read.
                    let residenza = match scheda.residenza.as_ref().map(testo).transpose()? {
                        Some(t) => Some(self.deposito.metti(&t)?),
                        None => None,
                    };
                    let chiave = match scheda.residenza.as_ref().and_then(|r| r.indirizzo.as_ref())
                    {
                        Some(i) => Some(self.deposito.metti(&i.chiave_edificio())?),
                        None => None,
                    };
                    let n = self.appoggio.nucleo_mut(indice)?;
                    n.residenza = residenza;
                    n.chiave_indirizzo = chiave;
                }
            }
            for a in &c.anomalie {
                self.appoggio.differita(id, c.valido_dal, &testo(a)?)?;
            }
            let record = record_soggetto(id, &scheda, c.valido_dal)?;
            self.lotto.push(record);
            self.prodotto.soggetti_caricati += 1;
            self.prodotto.per_file.entry(file.to_owned()).or_default().0 += 1;
            if self.lotto.len() >= LOTTO {
                self.svuota()?;
            }
        }
        Ok(())
    }

    fn nuovo_nucleo(
        &mut self,
        id_comunale: &str,
        id: IdAnprFamiglia,
        tipo: TipoScheda,
        aire: bool,
        origine: NaiveDate,
    ) -> Result<IndiceNucleo, ErroreSubentro> {
        let nucleo = Nucleo {
            id,
            tipo,
            aire,
            nel_file: false,
            membri_file: 0,
            origine,
            intestatario: None,
            residenza: None,
            chiave_indirizzo: None,
        };
        self.appoggio.nuovo_nucleo(id_comunale, nucleo)
    }

    fn famiglia(
        &mut self,
        file: &str,
        f: &crate::parser::FamigliaLetta,
    ) -> Result<(), ErroreSubentro> {
        let Some(id_comunale) = f.id.as_deref() else {
            return Ok(());
        };
        let tipo = if f.convivenza {
            TipoScheda::Convivenza
        } else {
            TipoScheda::Famiglia
        };
        let indice = match self.appoggio.cerca_nucleo(id_comunale)? {
            Some(i) => i,
            None => {
                let Some(id) = self.prossima_famiglia() else {
                    return Ok(());
                };
                let origine = f
                    .data_origine
                    .as_deref()
                    .and_then(data)
                    .unwrap_or(self.ctx.oggi);
                self.nuovo_nucleo(id_comunale, id, tipo, f.aire, origine)?
            }
        };
        let (id, membri) = {
            let n = self.appoggio.nucleo_mut(indice)?;
            n.nel_file = true;
            n.aire |= f.aire;
            (n.id, n.membri_file)
        };
        if membri == 0 {
            let a = anomalia(
                self.ctx.tabelle,
                "EF010",
                Gravita::Avvertimento,
                if f.convivenza {
                    "convivenze/convivenza"
                } else {
                    "famiglie/famiglia"
                },
            )
            .valore(id_comunale);
            self.conta(&a);
            self.esiti
                .anomalia(&RigaAnomalia::famiglia(file, id_comunale, Some(id), &a))?;
        }
        let origine = f.data_origine.as_deref().and_then(data);
        self.emetti_famiglia(file, indice, id_comunale, origine, f)
    }

    fn emetti_famiglia(
        &mut self,
        file: &str,
        indice: IndiceNucleo,
        id_comunale: &str,
        origine: Option<NaiveDate>,
        f: &crate::parser::FamigliaLetta,
    ) -> Result<(), ErroreSubentro> {
        let n = self.appoggio.nucleo(indice)?;
        let origine = origine.unwrap_or(n.origine).min(self.ctx.oggi);
        let scheda = SchedaFamiglia {
            dati: Some(DatiFamiglia {
                tipo_scheda: n.tipo,
                comune: self.ctx.comune.clone(),
                id_famiglia_convivenza_comune: id_comunale.parse::<IdComunale>().ok(),
                famiglia_aire: n.aire,
                data_origine_famiglia_convivenza: origine,
                motivo_costituzione: f.motivo_costituzione.clone(),
                denominazione_convivenza: f.denominazione.clone(),
                specie_convivenza: f.specie.clone(),
            }),
            intestatario: n.intestatario.map(|(id_anpr, d)| Intestatario {
                id_anpr,
                data_decorrenza: d.max(origine),
            }),
            // Kept as text in the family state: added to the sections below.
            residenza: None,
            stato: Some(StatoFamiglia::Attiva),
        };
        let id = n.id;
        let residenza = n.residenza.map(|p| self.deposito.leggi(p)).transpose()?;
        let chiave = n
            .chiave_indirizzo
            .map(|p| self.deposito.leggi(p))
            .transpose()?;
        let record = record_famiglia(
            id,
            &scheda,
            origine,
            residenza.as_deref(),
            chiave.as_deref(),
        )?;
        self.esiti
            .famiglia(file, id_comunale, f.convivenza, Some(id))?;
        self.lotto.push(record);
        self.prodotto.famiglie_caricate += 1;
        self.prodotto.per_file.entry(file.to_owned()).or_default().1 += 1;
        if self.lotto.len() >= LOTTO {
            self.svuota()?;
        }
        Ok(())
    }

    /// Families referenced by subjects but absent from the file (EN063, W): each such
    /// subject gets the anomaly, and the family is created from what its members say,
    /// so that the loaded subjects are never left pointing nowhere.
    fn famiglie_mancanti(&mut self) -> Result<(), ErroreSubentro> {
        // A page at a time, in the order of their municipal ids.
        let mut dopo: Option<Box<str>> = None;
        loop {
            let pagina = self
                .appoggio
                .mancanti(dopo.as_deref(), MANCANTI_PER_PAGINA)?;
            let Some((ultimo, _)) = pagina.last() else {
                return Ok(());
            };
            dopo = Some(ultimo.clone());
            for (id_comunale, indice) in pagina {
                self.famiglia_mancante(&id_comunale, indice)?;
            }
        }
    }

    fn famiglia_mancante(
        &mut self,
        id_comunale: &str,
        indice: IndiceNucleo,
    ) -> Result<(), ErroreSubentro> {
        let nucleo = self.appoggio.nucleo(indice)?;
        let convivenza = nucleo.tipo == TipoScheda::Convivenza;
        let campo = if convivenza {
            "convivenza/idFamConvComune"
        } else {
            "famiglia/idFamConvComune"
        };
        // Its loaded members, in loading order.
        for m in self.appoggio.membri_di(indice)? {
            let a = anomalia(self.ctx.tabelle, "EN063", Gravita::Avvertimento, campo)
                .valore(id_comunale)
                .atteso("una scheda famiglia/convivenza presente nello stesso file");
            self.conta(&a);
            self.esiti
                .anomalia(&RigaAnomalia::famiglia("", id_comunale, None, &a).con_soggetto(m))?;
            self.appoggio.differita(m, nucleo.origine, &testo(&a)?)?;
        }
        let finta = crate::parser::FamigliaLetta {
            convivenza,
            id: Some(id_comunale.to_owned()),
            ..Default::default()
        };
        self.emetti_famiglia("", indice, id_comunale, None, &finta)
    }
}

/// A section's stored JSON text, serialised straight from the domain type (the same
/// JSON as the operations write, without building a `serde_json::Value` first).
fn testo<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, ErroreSubentro> {
    serde_json::to_string(v).map_err(|e| ErroreSubentro::Interno(e.to_string()))
}

fn sezione_di<T: serde::Serialize>(
    out: &mut Vec<SezioneSubentro>,
    section: &'static str,
    v: Option<&T>,
    key: Option<String>,
) -> Result<(), ErroreSubentro> {
    if let Some(v) = v {
        out.push(SezioneSubentro {
            section,
            json: testo(v)?,
            key,
        });
    }
    Ok(())
}

/// The sections of a subject, in the order of [`SezioneSoggetto::ALL`]. The match is
/// exhaustive: a section added to the domain must be decided on here.
fn sezioni_soggetto(s: &SchedaSoggetto) -> Result<Vec<SezioneSubentro>, ErroreSubentro> {
    let mut out = Vec::with_capacity(10);
    for kind in SezioneSoggetto::ALL {
        let k = kind.key();
        let o = &mut out;
        match kind {
            SezioneSoggetto::Competenza => sezione_di(o, k, s.competenza.as_ref(), None)?,
            SezioneSoggetto::Generalita => sezione_di(o, k, s.generalita.as_ref(), None)?,
            SezioneSoggetto::CodiceFiscale => sezione_di(o, k, s.codice_fiscale.as_ref(), None)?,
            SezioneSoggetto::Cittadinanze => sezione_di(o, k, s.cittadinanze.as_ref(), None)?,
            SezioneSoggetto::Genitori => sezione_di(o, k, s.genitori.as_ref(), None)?,
            SezioneSoggetto::StatoCivile => sezione_di(o, k, s.stato_civile.as_ref(), None)?,
            SezioneSoggetto::Atti => sezione_di(o, k, s.atti.as_ref(), None)?,
            SezioneSoggetto::Residenza => sezione_di(o, k, s.residenza.as_ref(), None)?,
            SezioneSoggetto::Legame => sezione_di(
                o,
                k,
                s.legame.as_ref(),
                s.legame
                    .as_ref()
                    .map(|l| l.id_famiglia_convivenza_anpr.to_string()),
            )?,
            SezioneSoggetto::Iscrizione => sezione_di(o, k, s.iscrizione.as_ref(), None)?,
            SezioneSoggetto::Cancellazione => sezione_di(o, k, s.cancellazione.as_ref(), None)?,
            SezioneSoggetto::CartaIdentita => sezione_di(o, k, s.carta_identita.as_ref(), None)?,
            SezioneSoggetto::PermessoSoggiorno => {
                sezione_di(o, k, s.permesso_soggiorno.as_ref(), None)?
            }
            SezioneSoggetto::AltriDati => sezione_di(o, k, s.altri_dati.as_ref(), None)?,
            SezioneSoggetto::Patente => sezione_di(o, k, s.patente.as_ref(), None)?,
            SezioneSoggetto::AltraLingua => sezione_di(o, k, s.altra_lingua.as_ref(), None)?,
            SezioneSoggetto::Aire => sezione_di(o, k, s.aire.as_ref(), None)?,
            SezioneSoggetto::Attributi => sezione_di(o, k, s.attributi.as_ref(), None)?,
            SezioneSoggetto::AnomalieSubentro => {
                sezione_di(o, k, s.anomalie_subentro.as_ref(), None)?
            }
        }
    }
    Ok(out)
}

/// The sections and index row of a subject, as an operation would write them.
fn record_soggetto(
    id: IdAnprSoggetto,
    s: &SchedaSoggetto,
    dal: NaiveDate,
) -> Result<RecordSubentro, ErroreSubentro> {
    let index = indice_soggetto(id, s)
        .ok_or_else(|| ErroreSubentro::Interno("subject without competence".into()))?;
    Ok(RecordSubentro {
        entity: EntityRef::Soggetto(id),
        valido_dal: dal,
        sections: sezioni_soggetto(s)?,
        index: IndexWrite::Soggetto(index),
    })
}

/// The sections and index row of a family; its residence comes as text (the head's
/// section), with its building key.
fn record_famiglia(
    id: IdAnprFamiglia,
    f: &SchedaFamiglia,
    dal: NaiveDate,
    residenza: Option<&str>,
    chiave_indirizzo: Option<&str>,
) -> Result<RecordSubentro, ErroreSubentro> {
    let mut sections = Vec::with_capacity(4);
    for kind in SezioneFamiglia::ALL {
        let k = kind.key();
        let o = &mut sections;
        match kind {
            SezioneFamiglia::Dati => sezione_di(o, k, f.dati.as_ref(), None)?,
            SezioneFamiglia::Intestatario => sezione_di(o, k, f.intestatario.as_ref(), None)?,
            SezioneFamiglia::Residenza => match (&f.residenza, residenza) {
                (Some(r), _) => sezione_di(o, k, Some(r), None)?,
                (None, Some(json)) => o.push(SezioneSubentro {
                    section: k,
                    json: json.to_owned(),
                    key: None,
                }),
                (None, None) => {}
            },
            SezioneFamiglia::Stato => sezione_di(o, k, f.stato.as_ref(), None)?,
        }
    }
    let mut index = indice_famiglia(id, f)
        .ok_or_else(|| ErroreSubentro::Interno("family without data".into()))?;
    if f.residenza.is_none() {
        index.chiave_indirizzo = chiave_indirizzo.map(str::to_owned);
    }
    Ok(RecordSubentro {
        entity: EntityRef::Famiglia(id),
        valido_dal: dal,
        sections,
        index: IndexWrite::Famiglia(index),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserved ids come out in the order given, whether in one block or scattered (as
    /// a sequence shared with concurrent sessions may hand them out), and then run out.
    #[test]
    fn reserved_ids_come_out_in_order_and_run_out() {
        let dati: Vec<u64> = (100..100_000)
            .chain([7, 8, 9, 3, 200_000, 200_001])
            .chain(500..510)
            .collect();
        let mut ids = IdRiservati::da(dati.clone());
        // Consecutive values are kept as one block each.
        assert_eq!(ids.blocchi.len(), 5);
        let usciti: Vec<u64> = std::iter::from_fn(|| ids.prossimo()).collect();
        assert_eq!(usciti, dati);
        assert_eq!(ids.prossimo(), None);
        assert_eq!(IdRiservati::da(Vec::new()).prossimo(), None);
    }
}
