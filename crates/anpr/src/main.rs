//! The `anpr` command: runs the server and the operator/administrator tools.
//!
//! Storage is chosen here, once: SQLite files in a data directory (the embedded
//! default, one file per environment) or PostgreSQL (one schema per environment).
#![forbid(unsafe_code)]

mod subentro_cli;

/// mimalloc instead of the system allocator: the registry's request path allocates many
/// small, short-lived objects (JSON documents, SQL parameters) across threads, and with
/// glibc's allocator `malloc`/`free` were about a sixth of the CPU per operation
/// (BENCHMARKS.md, "Session 5").
#[global_allocator]
static ALLOCATORE: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_service::clock::SystemClock;
use anpr_service::codice_fiscale::RichiestaCalcolo;
use anpr_service::tabelle::FiltroComuni;
use anpr_service::{Registry, ServiceError};
use anpr_store::Store;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "anpr",
    version,
    about = "ANPR - Anagrafe Nazionale della Popolazione Residente"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (REST API, health, metrics).
    Serve(ServeArgs),
    /// Decoding tables: list and look up.
    #[command(subcommand)]
    Tables(TablesCommand),
    /// Codice fiscale: compute, check, decode.
    #[command(subcommand)]
    Cf(CfCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Generate a synthetic population as subentro files (APR, AIRE), the tax-agency
    /// register and the expected anomalies.
    Generate(subentro_cli::GenerateArgs),
    /// Subentro: onboard a municipality from its files.
    #[command(subcommand)]
    Subentro(subentro_cli::SubentroCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct StorageArgs {
    /// Directory of the embedded SQLite databases (one file per environment).
    #[arg(long, env = "ANPR_DATA_DIR", default_value = "./anpr-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL; when given, it is used instead of the data directory.
    #[arg(long, env = "ANPR_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[arg(long, env = "ANPR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    /// Environment of requests that do not choose one (X-ANPR-Ambiente header).
    #[arg(long, env = "ANPR_AMBIENTE", default_value = "test")]
    ambiente: Ambiente,
    /// Accept the development identity headers (X-ANPR-Utente, ...). Never honoured
    /// for produzione.
    #[arg(long, env = "ANPR_IDENTITA_DA_HEADER")]
    identita_da_header: bool,
    /// Public URL of the certificate verification endpoint printed in QR codes
    /// (default: this server's `/api/v1/certificati/verifica`).
    #[arg(long, env = "ANPR_URL_VERIFICA_CERTIFICATI")]
    url_verifica_certificati: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Base URL of the tax agency's service for the `produzione` environment (our
    /// JSON protocol, see crates/anpr-ae). Without it every environment uses the
    /// built-in simulator.
    #[arg(long, env = "ANPR_AE_URL")]
    ae_url: Option<String>,
    /// CSV register to seed the tax-agency simulators with (format in crates/anpr-ae).
    #[arg(long, env = "ANPR_AE_REGISTRO")]
    ae_registro: Option<std::path::PathBuf>,
    /// Serve over mutual TLS: our CA (kept in the produzione store) issues the endpoint
    /// certificate and verifies client certificates against its CRL. Without it the
    /// server speaks plain HTTP, for local development, and refuses `produzione`.
    #[arg(long, env = "ANPR_TLS")]
    tls: bool,
    /// DNS names and IP addresses of the TLS endpoint certificate.
    #[arg(
        long,
        env = "ANPR_TLS_NOMI",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1"
    )]
    tls_nomi: Vec<String>,
    /// Reverse proxies (IP addresses) trusted to name the client in X-Forwarded-For,
    /// for the municipalities' authorised IP addresses. Without it the peer address of
    /// the connection is the client's.
    #[arg(long, env = "ANPR_PROXY_FIDATI", value_delimiter = ',')]
    proxy_fidati: Vec<std::net::IpAddr>,
    /// SMTP relay (host:port) delivering the security mails (PIN/PUK halves, ...).
    /// Without it they stay queued in the store's security outbox.
    #[arg(long, env = "ANPR_SMTP_RELAY")]
    smtp_relay: Option<String>,
    /// Sender address of the security mails.
    #[arg(long, env = "ANPR_SMTP_MITTENTE", default_value = "anpr@localhost")]
    smtp_mittente: String,
    /// Upgrade the relay connection with STARTTLS (needed for --smtp-utente).
    #[arg(long, env = "ANPR_SMTP_STARTTLS")]
    smtp_starttls: bool,
    /// PEM file of the roots trusted for the relay's certificate (default: the system
    /// bundle).
    #[arg(long, env = "ANPR_SMTP_CA")]
    smtp_ca: Option<PathBuf>,
    /// AUTH PLAIN user at the relay (password in ANPR_SMTP_PASSWORD).
    #[arg(long, env = "ANPR_SMTP_UTENTE")]
    smtp_utente: Option<String>,
    /// WebAuthn relying party id (the domain operators reach us on) enabling passkey
    /// logins (default: the first of --tls-nomi).
    #[arg(long, env = "ANPR_WEBAUTHN_RP_ID")]
    webauthn_rp_id: Option<String>,
    /// Origins the WebAuthn pages run on (default: https://<rp id>:<listen port>).
    #[arg(long, env = "ANPR_WEBAUTHN_ORIGINI", value_delimiter = ',')]
    webauthn_origini: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum TablesCommand {
    /// List the tables with their row counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Look up municipalities by ISTAT code, cadastral code or name, optionally at a date.
    Comune {
        #[arg(long)]
        istat: Option<String>,
        #[arg(long)]
        catastale: Option<String>,
        #[arg(long)]
        nome: Option<String>,
        /// Only municipalities valid at this date (YYYY-MM-DD).
        #[arg(long)]
        data: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the rows of one table.
    Show {
        nome: String,
        #[arg(long)]
        data: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CfCommand {
    /// Compute the codice fiscale and its omocodic variants.
    Calcola {
        #[arg(long)]
        cognome: String,
        #[arg(long)]
        nome: String,
        #[arg(long)]
        sesso: String,
        #[arg(long)]
        data_nascita: String,
        /// Cadastral code of the birth municipality (valid at the birth date) or Z code
        /// of the foreign state.
        #[arg(long)]
        luogo_nascita: String,
        #[arg(long)]
        json: bool,
    },
    /// Check a codice fiscale (exit status 1 when not valid).
    Verifica {
        codice: String,
        #[arg(long)]
        json: bool,
    },
    /// Decode a codice fiscale.
    Decodifica {
        codice: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of an environment's audit log (exit status 1 if broken).
    Verify {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long, default_value = "test")]
        ambiente: Ambiente,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("errore: impossibile avviare il runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli))
}

fn cli_caller(ambiente: Ambiente) -> CallerContext {
    CallerContext {
        ambiente,
        comune: None,
        utente: std::env::var("USER").map_or_else(|_| "cli".to_owned(), |u| format!("cli:{u}")),
        profili: [Profilo::GestoreSistema].into_iter().collect(),
        postazione: None,
        canale: Canale::Cli,
    }
}

async fn open_stores(
    storage: &StorageArgs,
    ambienti: &[Ambiente],
) -> Result<(BTreeMap<Ambiente, Arc<dyn Store>>, &'static str), String> {
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    match &storage.database_url {
        Some(url) => {
            for a in ambienti {
                let s = anpr_store_postgres::PostgresStore::connect_env(url, *a)
                    .await
                    .map_err(|e| format!("PostgreSQL ({a}): {e}"))?;
                stores.insert(*a, Arc::new(s));
            }
            Ok((stores, "postgres"))
        }
        None => {
            std::fs::create_dir_all(&storage.data_dir)
                .map_err(|e| format!("data directory {}: {e}", storage.data_dir.display()))?;
            for a in ambienti {
                let s = anpr_store_sqlite::SqliteStore::open_in_dir(&storage.data_dir, *a)
                    .map_err(|e| format!("SQLite ({a}): {e}"))?;
                stores.insert(*a, Arc::new(s));
            }
            Ok((stores, "sqlite"))
        }
    }
}

fn print_refusal(err: &ServiceError) {
    for a in err.anomalie() {
        eprintln!("errore: {a}");
    }
    eprintln!("riferimento: {}", err.riferimento());
}

/// Reports a refusal (as JSON with `--json`) and returns exit status 2.
fn report_refusal(err: &ServiceError, json: bool) -> ExitCode {
    if json {
        print_json(
            &serde_json::json!({"esito": "KO", "anomalie": err.anomalie(), "riferimento": err.riferimento()}),
        );
    } else {
        print_refusal(err);
    }
    ExitCode::from(2)
}

fn parse_date(s: Option<&str>) -> Result<Option<chrono::NaiveDate>, String> {
    s.map(|s| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| format!("data non valida {s:?}: atteso AAAA-MM-GG"))
    })
    .transpose()
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("errore: {e}"),
    }
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Tables(cmd) => tables(cmd).await,
        Command::Cf(cmd) => cf(cmd).await,
        Command::Audit(AuditCommand::Verify {
            storage,
            ambiente,
            json,
        }) => audit_verify(storage, ambiente, json).await,
        Command::Generate(args) => subentro_cli::generate(args),
        Command::Subentro(cmd) => subentro_cli::subentro(cmd).await,
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
    }
    let (stores, backend) = match open_stores(&args.storage, &Ambiente::ALL).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("errore: {e}");
            return ExitCode::from(2);
        }
    };
    let stores_sicurezza = stores.get(&Ambiente::Produzione).cloned();
    let mut registry = Registry::new(stores, Arc::new(SystemClock));
    // The certificate signing key lives in the data directory, so that certificates
    // keep verifying across restarts.
    let chiave = args.storage.data_dir.join("certificati-ed25519.pk8");
    match anpr_certificati::Firmatario::da_file_o_nuovo(&chiave) {
        Ok(firmatario) => {
            let url_verifica = args
                .url_verifica_certificati
                .clone()
                .unwrap_or_else(|| format!("http://{}/api/v1/certificati/verifica", args.listen));
            registry =
                registry.con_certificati(anpr_service::certificati::ConfigurazioneCertificati {
                    firmatario,
                    url_verifica,
                });
        }
        Err(e) => {
            eprintln!("errore: chiave di firma dei certificati: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.ae_registro {
        for ambiente in Ambiente::ALL {
            let sim = anpr_ae::Simulatore::new();
            sim.imposta_sola_lettura(ambiente == Ambiente::Presubentro);
            if let Err(e) = sim.carica_csv_file(path) {
                eprintln!(
                    "errore: registro dell'Agenzia delle Entrate {}: {e}",
                    path.display()
                );
                return ExitCode::from(2);
            }
            registry = registry.con_agenzia_entrate(ambiente, Arc::new(sim));
        }
    }
    if let Some(url) = &args.ae_url {
        match anpr_ae::ClientHttp::new(anpr_ae::ConfigurazioneClientHttp::new(url.clone())) {
            Ok(c) => registry = registry.con_agenzia_entrate(Ambiente::Produzione, Arc::new(c)),
            Err(e) => {
                eprintln!("errore: --ae-url {url}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // Security: our CA and the directory of users, cards and certificates, kept in the
    // produzione store so that every process on the same database shares them (the
    // files an earlier version kept in <data-dir>/sicurezza are imported once).
    let Some(store_sicurezza) = stores_sicurezza.clone() else {
        eprintln!("errore: nessun archivio per la sicurezza");
        return ExitCode::from(2);
    };
    match anpr_service::sicurezza::Sicurezza::apri_con_importazione(
        store_sicurezza,
        &args.storage.data_dir,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(s) => {
            registry =
                registry.con_sicurezza(Arc::new(s.con_proxy_fidati(args.proxy_fidati.clone())))
        }
        Err(e) => {
            eprintln!("errore: sicurezza: {e}");
            return ExitCode::from(2);
        }
    }
    let registry = Arc::new(registry);
    // The worker of asynchronous requests (extractions, ISTAT tables): it also takes up
    // whatever a previous run left queued.
    let _lavoratore = anpr_service::estrazioni::avvia_lavoratore(registry.clone());
    match smtp(&args) {
        Ok(Some(cfg)) => {
            tracing::info!(relay = %format!("{}:{}", cfg.host, cfg.porta), "security mail worker started");
            let postino = anpr_server::posta::Postino::new(registry.clone(), cfg);
            tokio::spawn(
                postino.esegui(std::time::Duration::from_secs(15), std::future::pending()),
            );
        }
        Ok(None) => tracing::warn!(
            "no SMTP relay configured (--smtp-relay): security mails stay queued in the outbox"
        ),
        Err(e) => {
            eprintln!("errore: {e}");
            return ExitCode::from(2);
        }
    }
    let config = anpr_server::ServerConfig {
        ambiente_predefinito: args.ambiente,
        backend,
        identita_da_header: args.identita_da_header,
    };
    let app = anpr_server::router(registry.clone(), config);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("errore: impossibile ascoltare su {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    let where_ = match &args.storage.database_url {
        Some(_) => "PostgreSQL".to_owned(),
        None => format!("SQLite in {}", args.storage.data_dir.display()),
    };
    println!(
        "anpr {} in ascolto su {}://{addr} (ambiente predefinito {}, archivio {where_})",
        env!("CARGO_PKG_VERSION"),
        if args.tls { "https" } else { "http" },
        args.ambiente
    );
    tracing::info!(%addr, backend, ambiente = %args.ambiente, tls = args.tls, "listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if args.tls {
        let endpoint =
            match anpr_server::tls::certificato_endpoint(&registry, args.tls_nomi.clone()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("errore: certificato TLS: {e}");
                    return ExitCode::from(2);
                }
            };
        return match anpr_server::tls::serve_tls(
            listener,
            app,
            registry,
            endpoint,
            args.ambiente,
            shutdown,
        )
        .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("errore del server TLS: {e}");
                ExitCode::from(2)
            }
        };
    }
    // The peer address is kept for the municipalities' authorised IP addresses.
    match axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("errore del server: {e}");
            ExitCode::from(2)
        }
    }
}

/// The relay of the security mails, from the command line.
fn smtp(args: &ServeArgs) -> Result<Option<anpr_server::posta::ConfigurazioneSmtp>, String> {
    let Some(relay) = &args.smtp_relay else {
        return Ok(None);
    };
    let (host, porta) = relay
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--smtp-relay {relay:?}: atteso host:porta"))?;
    let radici_pem = args
        .smtp_ca
        .as_ref()
        .map(|p| std::fs::read(p).map_err(|e| format!("--smtp-ca {}: {e}", p.display())))
        .transpose()?;
    let credenziali = match &args.smtp_utente {
        Some(u) => Some((
            u.clone(),
            std::env::var("ANPR_SMTP_PASSWORD")
                .map_err(|_| "--smtp-utente richiede ANPR_SMTP_PASSWORD".to_owned())?,
        )),
        None => None,
    };
    if credenziali.is_some() && !args.smtp_starttls {
        return Err(
            "--smtp-utente richiede --smtp-starttls (le credenziali non viaggiano in chiaro)"
                .into(),
        );
    }
    Ok(Some(anpr_server::posta::ConfigurazioneSmtp {
        host,
        porta,
        mittente: args.smtp_mittente.clone(),
        nome_helo: args
            .tls_nomi
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".into()),
        starttls: args.smtp_starttls,
        radici_pem,
        credenziali,
    }))
}

fn offline_registry() -> Registry {
    Registry::new(BTreeMap::new(), Arc::new(SystemClock))
}

async fn tables(cmd: TablesCommand) -> ExitCode {
    let registry = offline_registry();
    let ctx = cli_caller(Ambiente::Test);
    match cmd {
        TablesCommand::List { json } => match registry.elenco_tabelle(&ctx).await {
            Ok(list) if json => {
                print_json(&list);
                ExitCode::SUCCESS
            }
            Ok(list) => {
                println!(
                    "Tabelle di decodifica, versione {}",
                    registry.tables().version()
                );
                for t in list {
                    println!("{:<45} {:>6} righe  {}", t.name, t.rows, t.description);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                print_refusal(&e);
                ExitCode::from(2)
            }
        },
        TablesCommand::Comune {
            istat,
            catastale,
            nome,
            data,
            json,
        } => {
            let data = match parse_date(data.as_deref()) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("errore: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut filtro = FiltroComuni {
                data_riferimento: data,
                denominazione: nome,
                ..Default::default()
            };
            if let Some(i) = istat {
                match i.parse() {
                    Ok(c) => filtro.codice_istat = Some(c),
                    Err(e) => {
                        eprintln!("errore: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            if let Some(k) = catastale {
                match k.to_ascii_uppercase().parse() {
                    Ok(c) => filtro.codice_catastale = Some(c),
                    Err(e) => {
                        eprintln!("errore: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            match registry.comuni(&ctx, &filtro).await {
                Ok(elenco) if json => {
                    print_json(&elenco);
                    ExitCode::SUCCESS
                }
                Ok(elenco) => {
                    for c in &elenco.comuni {
                        let until = c
                            .valid_to
                            .map_or_else(|| "oggi".to_owned(), |d| d.to_string());
                        let catastale = c.catastale.as_ref().map_or("-", |k| k.as_str());
                        println!(
                            "{} {} {:<40} ({}) {} .. {}  stato {}",
                            c.istat,
                            catastale,
                            c.nome,
                            c.sigla_provincia,
                            c.valid_from,
                            until,
                            c.stato.code()
                        );
                    }
                    if elenco.totale == 0 {
                        eprintln!("nessun comune trovato");
                        return ExitCode::from(1);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    print_refusal(&e);
                    ExitCode::from(2)
                }
            }
        }
        TablesCommand::Show { nome, data, json } => {
            let data = match parse_date(data.as_deref()) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("errore: {e}");
                    return ExitCode::from(2);
                }
            };
            match registry.righe_tabella(&ctx, &nome, data).await {
                Ok(r) if json => {
                    print_json(&r);
                    ExitCode::SUCCESS
                }
                Ok(r) => {
                    for row in &r.righe {
                        println!("{row}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    print_refusal(&e);
                    ExitCode::from(2)
                }
            }
        }
    }
}

async fn cf(cmd: CfCommand) -> ExitCode {
    let registry = offline_registry();
    let ctx = cli_caller(Ambiente::Test);
    match cmd {
        CfCommand::Calcola {
            cognome,
            nome,
            sesso,
            data_nascita,
            luogo_nascita,
            json,
        } => {
            let req = RichiestaCalcolo {
                cognome,
                nome,
                sesso,
                data_nascita,
                luogo_nascita,
            };
            match registry.calcola_codice_fiscale(&ctx, &req).await {
                Ok(r) if json => {
                    print_json(&r);
                    ExitCode::SUCCESS
                }
                Ok(r) => {
                    println!("{}", r.codice_fiscale);
                    println!(
                        "luogo di nascita: {} ({})",
                        r.luogo_nascita.denominazione, r.luogo_nascita.codice_catastale
                    );
                    println!("omocodici: {}", r.omocodici.join(" "));
                    ExitCode::SUCCESS
                }
                Err(e) => report_refusal(&e, json),
            }
        }
        CfCommand::Verifica { codice, json } => {
            match registry.verifica_codice_fiscale(&ctx, &codice).await {
                Ok(r) => {
                    if json {
                        print_json(&r);
                    } else if r.valido {
                        println!(
                            "{} valido ({})",
                            r.codice_fiscale,
                            r.tipo.unwrap_or("ordinario")
                        );
                        if let Some(base) = &r.forma_base {
                            println!(
                                "omocodice di livello {}; forma base {base}",
                                r.livello_omocodia.unwrap_or(0)
                            );
                        }
                    } else {
                        for a in &r.anomalie {
                            println!("{} non valido: {a}", r.codice_fiscale);
                        }
                    }
                    if r.valido {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    print_refusal(&e);
                    ExitCode::from(2)
                }
            }
        }
        CfCommand::Decodifica { codice, json } => match registry
            .decodifica_codice_fiscale(&ctx, &codice)
            .await
        {
            Ok(r) if json => {
                print_json(&r);
                ExitCode::SUCCESS
            }
            Ok(r) => {
                println!("sesso: {}", r.sesso);
                println!(
                    "nascita: giorno {} mese {} anno ..{:02} ({} o {})",
                    r.giorno, r.mese, r.anno_due_cifre, r.anni_candidati[0], r.anni_candidati[1]
                );
                if let Some(d) = r.data_nascita_probabile {
                    println!("data più probabile: {d}");
                }
                match &r.luogo_nascita {
                    Some(l) => println!("luogo: {} ({})", l.denominazione, r.codice_catastale),
                    None => println!(
                        "luogo: {} (non trovato nelle tabelle alla data)",
                        r.codice_catastale
                    ),
                }
                if let Some(base) = &r.forma_base {
                    println!(
                        "omocodice di livello {}; forma base {base}",
                        r.livello_omocodia
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => report_refusal(&e, json),
        },
    }
}

async fn audit_verify(storage: StorageArgs, ambiente: Ambiente, json: bool) -> ExitCode {
    let (stores, _) = match open_stores(&storage, &[ambiente]).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("errore: {e}");
            return ExitCode::from(2);
        }
    };
    let registry = Registry::new(stores, Arc::new(SystemClock));
    match registry.verifica_audit(&cli_caller(ambiente)).await {
        Ok(r) => {
            if json {
                print_json(&r);
            } else if let (Some(v), Some(seq)) = (&r.violazione, r.voce) {
                println!(
                    "catena di audit NON integra (ambiente {}): voce {seq}: {v}",
                    r.ambiente
                );
                println!(
                    "voci verificate prima della violazione: {}",
                    r.voci_verificate
                );
            } else {
                println!(
                    "catena di audit integra (ambiente {}): {} voci verificate",
                    r.ambiente, r.voci_verificate
                );
            }
            if r.integro() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            print_refusal(&e);
            ExitCode::from(2)
        }
    }
}
