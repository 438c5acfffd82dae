//! Two server processes on one database share one security directory: two registries,
//! each with its own store instance (its own connections, as a second process has) on
//! the same SQLite file or PostgreSQL schema, each with its own `Sicurezza` cache.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_service::clock::SystemClock;
use anpr_service::sicurezza::{AzioneCarta, Sicurezza};
use anpr_service::Registry;
use anpr_sicurezza::direttorio::Utente;
use anpr_store::Store;

const ROMA: &str = "058091";

/// Keeps the database alive until the test ends, then removes it.
#[allow(dead_code)]
enum Guardia {
    Dir(tempfile::TempDir),
    Schema(anpr_store_postgres::testing::SchemaGuard),
}

/// Two store instances on one fresh database.
async fn due_store(postgres: bool) -> Option<(Arc<dyn Store>, Arc<dyn Store>, Guardia)> {
    if postgres {
        let (a, guard) = anpr_store_postgres::testing::fresh().await?;
        let url = anpr_store_postgres::testing::test_url()?;
        let b = anpr_store_postgres::PostgresStore::connect(&url, a.schema())
            .await
            .unwrap();
        Some((Arc::new(a), Arc::new(b), Guardia::Schema(guard)))
    } else {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("produzione.sqlite3");
        let a = anpr_store_sqlite::SqliteStore::open(&path).unwrap();
        let b = anpr_store_sqlite::SqliteStore::open(&path).unwrap();
        Some((Arc::new(a), Arc::new(b), Guardia::Dir(dir)))
    }
}

async fn processo(store: Arc<dyn Store>) -> Registry {
    let sic = Sicurezza::apri(store.clone(), chrono::Utc::now())
        .await
        .unwrap()
        // Every use looks for the other process's changes: the test is deterministic.
        .con_intervallo_aggiornamento(Duration::ZERO);
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store);
    Registry::new(stores, Arc::new(SystemClock)).con_sicurezza(Arc::new(sic))
}

fn sistema() -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: None,
        utente: "SOGEI".into(),
        profili: BTreeSet::from([Profilo::GestoreSistema]),
        postazione: None,
        canale: Canale::Cli,
    }
}

/// Someone of `comune` with `profilo`.
fn ruolo(comune: &str, profilo: Profilo) -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: Some(comune.parse().unwrap()),
        utente: "RSSMRA80A01H501U".into(),
        profili: BTreeSet::from([profilo]),
        postazione: None,
        canale: Canale::Web,
    }
}

/// The workstation administrator of `comune`.
fn alp(comune: &str) -> CallerContext {
    ruolo(comune, Profilo::AmministratorePostazioni)
}

fn utente(cf: &str) -> Utente {
    Utente {
        codice_fiscale: cf.into(),
        cognome: "Prova".into(),
        nome: "Utente".into(),
        email: format!("{}@comune.roma.it", cf.to_lowercase()),
        ruoli: BTreeMap::new(),
    }
}

async fn scenario(postgres: bool) {
    let Some((sa, sb, _g)) = due_store(postgres).await else {
        return;
    };
    let a = processo(sa.clone()).await;
    let b = processo(sb).await;
    let (sic_a, sic_b) = (
        a.sicurezza_configurata().unwrap().clone(),
        b.sicurezza_configurata().unwrap().clone(),
    );
    assert_eq!(
        sic_a.ca().certificato_der(),
        sic_b.ca().certificato_der(),
        "one CA: the first process created it, the second read it"
    );
    let s = sistema();
    let p = |x| BTreeSet::from([x]);

    // A censuses and declares; B sees it and issues the certificates.
    a.censisci_utente(
        &s,
        ROMA,
        utente("RSSMRA80A01H501U"),
        p(Profilo::AmministratorePostazioni),
    )
    .await
    .unwrap();
    a.dichiara_postazioni(&s, ROMA, 2).await.unwrap();
    let seriali = b
        .emetti_certificati_postazione(&alp(ROMA), ROMA)
        .await
        .unwrap();
    assert_eq!(seriali.len(), 3);
    assert!(sic_b.direttorio().utenti.contains_key("RSSMRA80A01H501U"));

    // B revokes a workstation certificate: A's CRL (and TLS verifier) has it at A's
    // next use.
    let verificatore_a = sic_a.verificatore_tls().unwrap();
    b.revoca_certificato(&alp(ROMA), ROMA, seriali[0], false)
        .await
        .unwrap();
    a.verifica_registro_postazioni(&alp(ROMA)).await.unwrap();
    let der = sic_a.direttorio().certificati[&seriali[0]]
        .emesso
        .der
        .clone();
    let ancora_valido = sic_a.direttorio().certificati[&seriali[1]]
        .emesso
        .der
        .clone();
    for sic in [&sic_a, &sic_b] {
        let fiducia = sic.fiducia();
        let dopo = chrono::Utc::now() + chrono::Duration::seconds(1);
        assert_eq!(fiducia.verifica(&der, dopo).unwrap_err().codice(), "EV226");
        fiducia.verifica(&ancora_valido, dopo).unwrap();
    }
    drop(verificatore_a);

    // Cards: a card produced by A is blocked by B; A refuses it at once.
    a.censisci_utente(&s, ROMA, utente("VRDGNN80A01H501X"), p(Profilo::Sindaco))
        .await
        .unwrap();
    let n = a
        .richiedi_carta(&s, ROMA, "VRDGNN80A01H501X")
        .await
        .unwrap();
    for azione in [
        AzioneCarta::AvvioProduzione,
        AzioneCarta::ArrivoInPrefettura,
    ] {
        a.evento_carta(&s, &n, azione).await.unwrap();
    }
    a.evento_carta(
        &ruolo(ROMA, Profilo::AmministratorePrefettura),
        &n,
        AzioneCarta::Consegna,
    )
    .await
    .unwrap();
    let seriale_carta = sic_a
        .direttorio()
        .carta(&n)
        .unwrap()
        .seriale_certificato
        .unwrap();
    let cert_carta = sic_a.direttorio().certificati[&seriale_carta]
        .emesso
        .der
        .clone();
    a.chiamante_da_certificato(Ambiente::Test, &cert_carta, Canale::Rest)
        .await
        .unwrap();
    b.evento_carta(
        &ruolo(ROMA, Profilo::AmministratoreSicurezza),
        &n,
        AzioneCarta::Blocco,
    )
    .await
    .unwrap();
    let err = a
        .chiamante_da_certificato(Ambiente::Test, &cert_carta, Canale::Rest)
        .await
        .unwrap_err();
    assert_eq!(err.anomalie()[0].codice, "EV205");

    // Concurrent changes from both processes: none is lost, the register stays one
    // chain, counters (serials) never repeat.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut compiti = Vec::new();
    for i in 0..6u32 {
        let r = if i % 2 == 0 { a.clone() } else { b.clone() };
        let s = s.clone();
        compiti.push(tokio::spawn(async move {
            let ente = format!("0580{:02}", 10 + i);
            r.dichiara_postazioni(&s, &ente, 1).await.unwrap();
            r.emetti_certificati_postazione(&alp(&ente), &ente)
                .await
                .unwrap()
        }));
    }
    let mut tutti: Vec<u64> = seriali.clone();
    for c in compiti {
        tutti.extend(c.await.unwrap());
    }
    let mut unici = tutti.clone();
    unici.sort_unstable();
    unici.dedup();
    assert_eq!(
        unici.len(),
        tutti.len(),
        "serials are never handed out twice"
    );
    for r in [&a, &b] {
        assert!(r.verifica_registro_postazioni(&alp(ROMA)).await.unwrap() >= 3 + 1 + 12);
    }
    assert_eq!(sic_a.versione(), sic_b.versione());
    assert_eq!(*sic_a.direttorio(), *sic_b.direttorio());

    // A third process starting now reads the same directory.
    let c = processo(sa).await;
    assert_eq!(
        *c.sicurezza_configurata().unwrap().direttorio(),
        *sic_a.direttorio()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_directory_sqlite() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_directory_postgres() {
    scenario(true).await;
}

/// The files an earlier version kept in `<data-dir>/sicurezza` are imported once.
#[tokio::test]
async fn the_security_files_of_an_earlier_version_are_imported_once() {
    let dati = tempfile::tempdir().unwrap();
    let cartella = dati.path().join("sicurezza");
    std::fs::create_dir_all(&cartella).unwrap();
    let adesso = chrono::Utc::now();
    let ca = anpr_sicurezza::ca::AutoritaCertificazione::nuova(adesso).unwrap();
    let mut d = anpr_sicurezza::direttorio::Direttorio::default();
    d.censisci(
        ROMA,
        utente("RSSMRA80A01H501U"),
        BTreeSet::from([Profilo::AmministratorePostazioni]),
    )
    .unwrap();
    d.dichiara_postazioni(ROMA, 1).unwrap();
    d.emetti_certificati_postazione(&ca, ROMA, "X", adesso)
        .unwrap();
    std::fs::write(cartella.join("ca.der"), ca.certificato_der()).unwrap();
    std::fs::write(cartella.join("ca-chiave.pem"), ca.chiave_pem()).unwrap();
    std::fs::write(
        cartella.join("direttorio.json"),
        serde_json::to_vec(&d).unwrap(),
    )
    .unwrap();

    let store: Arc<dyn Store> =
        Arc::new(anpr_store_sqlite::SqliteStore::open(&dati.path().join("p.sqlite3")).unwrap());
    let sic = Sicurezza::apri_con_importazione(store.clone(), dati.path(), adesso)
        .await
        .unwrap();
    assert_eq!(sic.ca().certificato_der(), ca.certificato_der());
    assert_eq!(*sic.direttorio(), d);
    assert_eq!(sic.versione(), 1);
    assert!(!cartella.join("direttorio.json").exists());
    assert!(cartella.join("direttorio.json.importato").exists());
    // Opening again imports nothing more; a fresh process reads it from the store.
    let di_nuovo = Sicurezza::apri_con_importazione(store.clone(), dati.path(), adesso)
        .await
        .unwrap();
    assert_eq!(di_nuovo.versione(), 1);
    assert_eq!(*di_nuovo.direttorio(), d);
    di_nuovo.direttorio().registro.verifica().unwrap();
}

/// EV201: a prefecture's cards are requested only once its census has a security and a
/// workstation administrator, and then it keeps them; refusals change nothing.
async fn prefecture_census(postgres: bool) {
    let Some((store, _, _g)) = due_store(postgres).await else {
        return;
    };
    let r = processo(store.clone()).await;
    let s = sistema();
    let p = |x| BTreeSet::from([x]);
    r.censisci_utente(
        &s,
        "058",
        utente("PRFSCR80A01H501A"),
        p(Profilo::AmministratoreSicurezza),
    )
    .await
    .unwrap();
    let versione = r.sicurezza_configurata().unwrap().versione();
    let e = r
        .richiedi_carta(&s, "058", "PRFSCR80A01H501A")
        .await
        .unwrap_err();
    assert_eq!(e.anomalie()[0].codice, "EV201");
    assert_eq!(
        r.sicurezza_configurata().unwrap().versione(),
        versione,
        "nothing stored"
    );
    r.censisci_utente(
        &s,
        "058",
        utente("PRFPST80A01H501B"),
        p(Profilo::AmministratorePostazioni),
    )
    .await
    .unwrap();
    let n = r
        .richiedi_carta(&s, "058", "PRFSCR80A01H501A")
        .await
        .unwrap();
    assert_eq!(n, "0580000001");
    let e = r
        .cancella_utente(&s, "058", "PRFPST80A01H501B")
        .await
        .unwrap_err();
    assert_eq!(e.anomalie()[0].codice, "EV201");
    assert!(r
        .sicurezza_configurata()
        .unwrap()
        .direttorio()
        .utenti
        .contains_key("PRFPST80A01H501B"));
}

#[tokio::test]
async fn prefecture_census_sqlite() {
    prefecture_census(false).await;
}

#[tokio::test]
async fn prefecture_census_postgres() {
    prefecture_census(true).await;
}
