//! Extraction of 2,000 subjects with three criteria over a large database (issue 6:
//! target under 1 s at 1,000,000 persons), against a baseline measured in the same run.
//!
//! ```sh
//! cargo bench -p anpr-server --bench estrazioni -- --persone 1000000 --ripetizioni 11
//! ```
//!
//! The database is the one the `consultazione` bench builds (`support`), reused from
//! `--dati`. The extraction is a 4001 request as a municipality sends it: residents
//! (`tipoResidenza` 1), women (`sesso` F), aged 30 to 60 (`fasciaEtaDa`/`fasciaEtaA`),
//! within a range of national ids (`identificativiANPR`, which broad criteria require)
//! chosen so that exactly 2,000 subjects match (fewer in the smoke run), with the
//! personal data group (`datiAnagraficiRichiesti` 2), as CSV. One repetition is the
//! whole life of a request: validation and queueing (audited), the worker taking it,
//! the two-stage selection, reading the records, writing the file, concluding (audited).
//! The result is checked (state done, the expected number of subjects).
//!
//! Baseline, same run, same store: the data access alone — the same stage-one pages of
//! the search projection and one batch read of the 2,000 records' output sections —
//! with none of the use case around it.

use std::collections::BTreeSet;
use std::time::Instant;

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_service::estrazioni::{Lavoro, Richiesta4001, RichiestaMemorizzata};
use anpr_service::Registry;
use anpr_store::elaborazioni::MAX_ENTITA_SEZIONI;
use anpr_store::{EntityRef, QueryEstrazione, Store};

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Subjects the extraction must select.
const SOGGETTI: usize = 2_000;

fn operatore() -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Presubentro,
        comune: Some(support::COMUNE.parse().unwrap()),
        utente: "BNCLRA70A41H501X".into(),
        profili: BTreeSet::from([Profilo::OperatoreConsultazione]),
        postazione: None,
        canale: Canale::Rest,
    }
}

fn richiesta(id_da: u64, id_a: u64) -> Richiesta4001 {
    serde_json::from_value(serde_json::json!({
        "formato": "csv",
        "criteriRicerca": {
            "datiAnagraficiRichiesti": ["2"],
            "identificativiANPR": {
                "idSchedaSoggettoANPRDa": id_da.to_string(),
                "idSchedaSoggettoANPRA": id_a.to_string(),
            },
            "ulterioriSelezioni": {
                "tipoResidenza": "1",
                "sesso": "F",
                "fasciaEtaDa": "30",
                "fasciaEtaA": "60",
            },
        },
    }))
    .unwrap()
}

/// Submits and runs one extraction to its end; its elapsed time (ms) and the number of
/// subjects in its file (`None`: refused).
async fn estrazione(registry: &Registry, r: &Richiesta4001) -> (f64, Option<u64>) {
    let ctx = operatore();
    let t = Instant::now();
    let accettata = registry.richiedi_estrazione(&ctx, r).await.unwrap();
    assert!(registry
        .esegui_prossima(Ambiente::Presubentro)
        .await
        .unwrap());
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let stato = registry
        .stato_richiesta(&ctx, &accettata.id_operazione_anpr)
        .await
        .unwrap();
    let soggetti = (stato.stato_richiesta == "2")
        .then(|| stato.esito.as_ref().and_then(|e| e["soggetti"].as_u64()))
        .flatten();
    (ms, soggetti)
}

/// The baseline: stage one's pages and one read of the output sections.
async fn accesso_ai_dati(
    store: &dyn Store,
    q: &QueryEstrazione,
    sezioni: &[String],
) -> (f64, usize) {
    let t = Instant::now();
    let mut q = q.clone();
    let mut ids = Vec::new();
    loop {
        let pagina = store.soggetti_per_estrazione(&q).await.unwrap();
        let Some(ultimo) = pagina.last() else { break };
        q.dopo = Some(ultimo.id.get());
        let fine = pagina.len() < q.limit as usize;
        ids.extend(pagina.iter().map(|s| EntityRef::Soggetto(s.id)));
        if fine {
            break;
        }
    }
    let mut letti = 0;
    for chunk in ids.chunks(MAX_ENTITA_SEZIONI) {
        letti += store.sezioni_di(chunk, sezioni, None).await.unwrap().len();
    }
    (t.elapsed().as_secs_f64() * 1000.0, letti)
}

fn main() {
    let a = support::argomenti();
    let rt = support::runtime();
    let tmp = tempfile::tempdir().unwrap();
    let dir = support::cartella(&a, tmp.path());
    rt.block_on(async {
        let (store, _) = support::database(&dir, a.persone).await;
        let registry = support::registry(store.clone());

        // Calibration: the criteria as the use case stores them (age band turned into
        // birth dates), then the id range holding exactly SOGGETTI matches.
        let primo = store
            .soggetti_per_estrazione(&QueryEstrazione {
                comune: Some(support::COMUNE.parse().unwrap()),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()[0]
            .id
            .get();
        let ctx = operatore();
        let prova = registry
            .richiedi_estrazione(&ctx, &richiesta(primo, 999_999_999_999))
            .await
            .unwrap();
        let memorizzata = store
            .elaborazione(prova.id_operazione_anpr.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let memorizzata: RichiestaMemorizzata =
            serde_json::from_value(memorizzata.richiesta).unwrap();
        let Lavoro::Estrazione { criteri, .. } = memorizzata.lavoro else {
            panic!("not an extraction");
        };
        assert!(criteri.sezioni_filtro().is_empty(), "stage one selects alone");
        let mut q = QueryEstrazione {
            comune: criteri.comune.clone(),
            posizioni: criteri.posizioni.clone(),
            id_da: Some(primo),
            sesso: criteri.sesso.clone(),
            nascita_dal: criteri.nascita_dal,
            nascita_al: criteri.nascita_al,
            limit: 10_000,
            ..Default::default()
        };
        let mut trovati = Vec::new();
        while trovati.len() < SOGGETTI {
            let pagina = store.soggetti_per_estrazione(&q).await.unwrap();
            let Some(ultimo) = pagina.last() else { break };
            q.dopo = Some(ultimo.id.get());
            trovati.extend(pagina.iter().map(|s| s.id.get()));
        }
        trovati.truncate(SOGGETTI);
        let ultimo = *trovati.last().expect("some subject matches");
        q.dopo = None;
        q.id_a = Some(ultimo);
        q.limit = 5_000;
        // The calibration request runs too (refused as too broad, or all of the small
        // smoke population): a warm-up.
        let ms = estrazione_in_coda(&registry).await;
        println!("warm-up (the calibration request, open range): {ms:.1} ms");

        let mut sezioni = criteri.sezioni.clone();
        if !sezioni.contains(&anpr_domain::scheda::SezioneSoggetto::Generalita) {
            sezioni.push(anpr_domain::scheda::SezioneSoggetto::Generalita);
        }
        let sezioni: Vec<String> = sezioni.iter().map(|s| s.key().to_owned()).collect();
        let r = richiesta(primo, ultimo);
        println!(
            "estrazioni bench: {} persons, ids {primo}..={ultimo}, {} expected subjects, {} repetitions",
            a.persone,
            trovati.len(),
            a.ripetizioni
        );
        let mut base = Vec::new();
        let mut estr = Vec::new();
        // Alternating, so that both see the same machine load.
        for _ in 0..a.ripetizioni {
            let (ms, letti) = accesso_ai_dati(&*store, &q, &sezioni).await;
            assert_eq!(letti, trovati.len());
            base.push(ms);
            let (ms, n) = estrazione(&registry, &r).await;
            assert_eq!(n, Some(trovati.len() as u64), "the extraction's subjects");
            estr.push(ms);
        }
        let b = support::mediana_ms(&mut base);
        let e = support::mediana_ms(&mut estr);
        println!(
            "baseline: stage one + batch read of {} records   median {b:>8.1} ms  (min {:.1}, max {:.1})",
            trovati.len(),
            base[0],
            base[base.len() - 1]
        );
        println!(
            "extraction 4001, {} subjects, 3 criteria + id range   median {e:>8.1} ms  (min {:.1}, max {:.1})  ratio {:.2}x",
            trovati.len(),
            estr[0],
            estr[estr.len() - 1],
            e / b
        );
    });
}

/// Runs the request already queued (the calibration one).
async fn estrazione_in_coda(registry: &Registry) -> f64 {
    let t = Instant::now();
    assert!(registry
        .esegui_prossima(Ambiente::Presubentro)
        .await
        .unwrap());
    t.elapsed().as_secs_f64() * 1000.0
}
