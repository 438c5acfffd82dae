//! `anpr generate` (synthetic population) and `anpr subentro import` (onboarding a
//! municipality from its files), with a progress bar and a final summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anpr_domain::caller::Ambiente;
use anpr_domain::ids::CodiceIstatComune;
use anpr_subentro::{FileIngresso, Opzioni, StatoSubentro};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::StorageArgs;

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// ISTAT code of a municipality (repeatable: one APR and one AIRE file each).
    #[arg(long = "comune", required = true)]
    comuni: Vec<CodiceIstatComune>,
    /// Persons per municipality.
    #[arg(long)]
    persone: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Probability per person of one injected anomaly (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    anomalie: f64,
    /// Declare wrong totals in the first APR file (expects INSERITO KO).
    #[arg(long)]
    totali_errati: bool,
    /// Extraction date written in the files (AAAA-MM-GG).
    #[arg(long, default_value = "2026-11-01")]
    data_estrazione: chrono::NaiveDate,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SubentroCommand {
    /// Onboard a municipality's files into an environment; writes the outcome files.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The APR and AIRE files (named APR_<ISTAT>_<NNN>_<TTT>.xml / AIRE_...).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long)]
    comune: CodiceIstatComune,
    /// presubentro or produzione.
    #[arg(long)]
    ambiente: Ambiente,
    #[command(flatten)]
    storage: StorageArgs,
    /// Directory for esiti.csv, anomalie_*.csv, riepilogo.csv, stato_file.csv.
    #[arg(long)]
    esiti: PathBuf,
    /// Tax-agency register (CSV, crates/anpr-ae format) for the validation of the tax
    /// codes; without it the codes stay "not validated".
    #[arg(long, env = "ANPR_AE_REGISTRO")]
    ae_registro: Option<PathBuf>,
    /// Largest file accepted, in bytes (EN002).
    #[arg(long, default_value_t = 8 << 30)]
    dimensione_massima: u64,
    /// No progress bar (logs, CI).
    #[arg(long)]
    quiet: bool,
    /// PostgreSQL schema to use instead of the environment's own (several registries
    /// in one database, tests).
    #[arg(long, requires = "database_url", hide = true)]
    schema: Option<String>,
}

pub(crate) fn generate(args: GenerateArgs) -> ExitCode {
    let inizio = Instant::now();
    let cfg = anpr_generatore::Configurazione {
        comuni: args.comuni,
        persone: args.persone,
        seme: args.seed,
        anomalie: args.anomalie,
        totali_errati: args.totali_errati,
        data_estrazione: args.data_estrazione,
        cartella: args.out,
    };
    match anpr_generatore::genera(&cfg) {
        Ok(r) => {
            for f in &r.file {
                println!("{}", f.display());
            }
            println!("{}", r.registro_ae.display());
            println!("{}", r.anomalie_attese.display());
            println!(
                "{} schede soggetto, {} schede famiglia/convivenza, {} anomalie iniettate in {:.1} s",
                r.soggetti,
                r.famiglie,
                r.anomalie.values().sum::<u64>(),
                inizio.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("errore: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) async fn subentro(cmd: SubentroCommand) -> ExitCode {
    let SubentroCommand::Import(args) = cmd;
    // Warnings by default; `RUST_LOG=info` adds the store's phase timings of the load.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    if !matches!(args.ambiente, Ambiente::Presubentro | Ambiente::Produzione) {
        eprintln!("errore: --ambiente deve essere presubentro o produzione");
        return ExitCode::from(2);
    }
    let store: Arc<dyn anpr_store::Store> = match (&args.schema, &args.storage.database_url) {
        (Some(schema), Some(url)) => {
            match anpr_store_postgres::PostgresStore::connect(url, schema).await {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    eprintln!("errore: PostgreSQL ({schema}): {e}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => match crate::open_stores(&args.storage, &[args.ambiente]).await {
            Ok((s, _)) => match s.get(&args.ambiente) {
                Some(s) => Arc::clone(s),
                None => return ExitCode::from(2),
            },
            Err(e) => {
                eprintln!("errore: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let ae: Option<Arc<dyn anpr_ae::AgenziaEntrate>> = match &args.ae_registro {
        // The onboarding only asks whether the agency holds each code: a compact,
        // presence-only view of the register (16 bytes per position) instead of the
        // whole simulator, so a big register stays within the memory bound.
        Some(p) => match anpr_subentro::RegistroCodiciAe::da_csv_file(p) {
            Ok(mut registro) => {
                // Pre-subentro consults the agency read-only (SPEC M-6.1).
                registro.imposta_sola_lettura(args.ambiente == Ambiente::Presubentro);
                Some(Arc::new(registro))
            }
            Err(e) => {
                eprintln!(
                    "errore: registro dell'Agenzia delle Entrate {}: {e}",
                    p.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let totale: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let barra = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(totale)
    };
    barra.set_style(
        ProgressStyle::with_template(
            "{bar:40} {percent:>3}% {msg} [{elapsed_precise} / ETA {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = barra.clone();
    let inizio = Instant::now();
    let avanzamento: anpr_subentro::Avanzamento = Arc::new(move |byte, soggetti| {
        b.set_position(byte);
        let secondi = inizio.elapsed().as_secs_f64().max(1e-3);
        b.set_message(format!(
            "{soggetti} schede, {:.0}/s",
            soggetti as f64 / secondi
        ));
    });
    let opzioni = Opzioni {
        comune: args.comune,
        ambiente: args.ambiente,
        oggi: anpr_service::clock::italian_date(chrono::Utc::now()),
        utente: std::env::var("USER").map_or_else(|_| "cli".to_owned(), |u| format!("cli:{u}")),
        canale: "cli".into(),
        dimensione_massima: args.dimensione_massima,
        cartella_esiti: args.esiti.clone(),
    };
    let files = args
        .files
        .iter()
        .map(|p| FileIngresso::da_percorso(p))
        .collect();
    let esito = anpr_subentro::importa(store, ae, opzioni, files, avanzamento).await;
    barra.finish_and_clear();
    match esito {
        Ok(e) => {
            let secondi = inizio.elapsed().as_secs_f64();
            println!(
                "esito {}: idOperazioneANPR {}, {} schede soggetto lette, {} caricate, {} schede famiglia/convivenza, {:.1} s ({:.0} schede/s)",
                e.stato.as_str(),
                e.id_operazione,
                e.soggetti_letti,
                e.soggetti_caricati,
                e.famiglie_caricate,
                secondi,
                e.soggetti_letti as f64 / secondi.max(1e-3)
            );
            for ((codice, gravita), n) in &e.riepilogo {
                println!("  {codice} {gravita} {n}");
            }
            for a in &e.bloccanti {
                eprintln!("errore: {a}");
            }
            println!("esiti in {}", args.esiti.display());
            if args.storage.database_url.is_none() {
                // The load answered once its WAL was synced; a one-shot command then
                // leaves the database file complete, not a WAL as large as the supply.
                let percorso = anpr_store_sqlite::SqliteStore::path_in_dir(
                    &args.storage.data_dir,
                    args.ambiente,
                );
                let t = Instant::now();
                let copia = tokio::task::spawn_blocking(move || {
                    anpr_store_sqlite::SqliteStore::checkpoint_completo(&percorso)
                })
                .await;
                match copia {
                    Ok(Ok(byte)) => println!(
                        "WAL di {} MiB copiato nel database in {:.1} s",
                        byte >> 20,
                        t.elapsed().as_secs_f64()
                    ),
                    Ok(Err(e)) => eprintln!(
                        "avviso: il WAL non è stato copiato nel database ({e}); lo farà il server all'avvio"
                    ),
                    Err(e) => eprintln!("avviso: copia del WAL interrotta: {e}"),
                }
            }
            if e.stato == StatoSubentro::Elaborato {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("errore: {e}");
            ExitCode::from(2)
        }
    }
}
