//! Use cases through the service layer on a real SQLite store.

use std::collections::BTreeMap;
use std::sync::Arc;

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_domain::ids::{IdAnprSoggetto, IdOperazioneAnpr};
use anpr_domain::operazione::StatoOperazione;
use anpr_domain::scheda::SezioneSoggetto;
use anpr_service::clock::FixedClock;
use anpr_service::codice_fiscale::RichiestaCalcolo;
use anpr_service::tabelle::FiltroComuni;
use anpr_service::{Registry, ServiceError};
use anpr_store::{EntityRef, NewOperation, SectionWrite, Sequence, Store};
use anpr_store_sqlite::SqliteStore;
use chrono::NaiveDate;
use serde_json::json;

struct Fixture {
    registry: Registry,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_in_dir(dir.path(), Ambiente::Test).unwrap());
    let mut stores = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
    let clock = Arc::new(FixedClock("2026-11-23T10:00:00Z".parse().unwrap()));
    Fixture {
        registry: Registry::new(stores, clock),
        store,
        _dir: dir,
    }
}

fn ctx(profili: &[Profilo]) -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: Some("058091".parse().unwrap()),
        utente: "BNCLRA70A41H501X".into(),
        profili: profili.iter().copied().collect(),
        postazione: Some("058091-PC-0001".into()),
        canale: Canale::Rest,
    }
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Writes a subject directly through the store (registrations are another issue's use
/// cases); returns its id.
async fn seed_subject(store: &Arc<dyn Store>) -> IdAnprSoggetto {
    let s = IdAnprSoggetto::new(store.next_id(Sequence::Soggetto).await.unwrap()).unwrap();
    let generalita = |cognome: &str| {
        json!({"cognome": cognome, "nome": "Maria", "sesso": "F",
               "dataNascita": {"data": "1980-05-01", "precisione": "completa"},
               "luogoNascita": {"tipo": "comune", "codiceIstat": "058091", "codiceCatastale": "H501", "nomeComune": "Roma"}})
    };
    for (decorrenza, cognome) in [
        (day(2000, 1, 1), "Rossi"),
        (day(2010, 6, 1), "Rossì-Bianchi"),
    ] {
        let id = IdOperazioneAnpr::new(store.next_id(Sequence::Operazione).await.unwrap()).unwrap();
        let mut op: NewOperation =
            anpr_store::conformance::operation(id, "5008", "058091", None, decorrenza);
        op.writes.push(SectionWrite {
            entity: EntityRef::Soggetto(s),
            section: "generalita".into(),
            value: Some(generalita(cognome)),
            key: None,
        });
        op.writes.push(SectionWrite {
            entity: EntityRef::Soggetto(s),
            section: "cittadinanze".into(),
            value: Some(json!([{"codiceStato": "100"}])),
            key: None,
        });
        store.apply(op).await.unwrap();
    }
    s
}

#[tokio::test]
async fn denied_calls_are_refused_coded_and_audited() {
    let f = fixture();
    let s = seed_subject(&f.store).await;
    let err = f
        .registry
        .leggi_scheda(&ctx(&[Profilo::OperatoreSubentro]), s, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::AccessoNegato { .. }), "{err:?}");
    assert_eq!(
        err.anomalie()[0].codice,
        anpr_service::error::CODICE_ACCESSO_NEGATO
    );
    let audit = f.store.audit_page(0, 100).await.unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (
            last.voce.evento,
            last.voce.azione.as_str(),
            last.voce.esito.as_str()
        ),
        (TipoEvento::AccessoNegato, "consultaScheda", "negato")
    );
    assert_eq!(last.voce.utente, "BNCLRA70A41H501X");
}

#[tokio::test]
async fn reads_are_audited_and_as_at_dates_are_exact() {
    let f = fixture();
    let s = seed_subject(&f.store).await;
    let operator = ctx(&[Profilo::OperatoreConsultazione]);
    let now = f
        .registry
        .leggi_scheda(&operator, s, None, None)
        .await
        .unwrap();
    let cognome = |r: &anpr_service::consultazione::SchedaLetta| {
        r.scheda
            .generalita
            .as_ref()
            .unwrap()
            .cognome
            .as_ref()
            .unwrap()
            .as_str()
            .to_owned()
    };
    assert_eq!(cognome(&now), "Rossì-Bianchi");
    let then = f
        .registry
        .leggi_scheda(&operator, s, Some(day(2005, 1, 1)), None)
        .await
        .unwrap();
    assert_eq!(cognome(&then), "Rossi");
    let before = f
        .registry
        .leggi_scheda(&operator, s, Some(day(1999, 1, 1)), None)
        .await
        .unwrap_err();
    assert!(matches!(before, ServiceError::NonTrovato { .. }));
    // Data minimisation: only the sections asked for.
    let only = f
        .registry
        .leggi_scheda(&operator, s, None, Some(&[SezioneSoggetto::Cittadinanze]))
        .await
        .unwrap();
    assert!(only.scheda.generalita.is_none());
    assert_eq!(
        only.scheda.cittadinanze.as_ref().unwrap()[0].codice_stato,
        "100"
    );

    let audit = f.store.audit_page(0, 100).await.unwrap();
    let reads: Vec<_> = audit
        .iter()
        .filter(|v| v.voce.evento == TipoEvento::Lettura)
        .collect();
    assert_eq!(reads.len(), 4);
    assert!(reads
        .iter()
        .all(|v| v.voce.oggetto.as_deref() == Some(format!("soggetto:{s}").as_str())));
    assert_eq!(reads[2].voce.esito, "non trovato");
    let report = f
        .registry
        .verifica_audit(&ctx(&[Profilo::GestoreSistema]))
        .await
        .unwrap();
    assert!(report.integro(), "{report:?}");
    assert_eq!(report.voci_verificate, audit.len() as u64);
    let ops = f
        .store
        .operations(&anpr_store::OperationQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(ops.iter().all(|o| o.stato == StatoOperazione::Eseguita));
}

#[tokio::test]
async fn an_environment_not_served_is_refused_with_its_code() {
    let f = fixture();
    let mut c = ctx(&[Profilo::GestoreSistema]);
    c.ambiente = Ambiente::Produzione;
    let err = f.registry.verifica_audit(&c).await.unwrap_err();
    assert_eq!(
        err.anomalie()[0].codice,
        anpr_service::CODICE_AMBIENTE_NON_DISPONIBILE
    );
}

fn calcolo(cognome: &str, nome: &str, sesso: &str, data: &str, luogo: &str) -> RichiestaCalcolo {
    RichiestaCalcolo {
        cognome: cognome.into(),
        nome: nome.into(),
        sesso: sesso.into(),
        data_nascita: data.into(),
        luogo_nascita: luogo.into(),
    }
}

async fn refusal_codes(f: &Fixture, req: RichiestaCalcolo) -> Vec<(String, Option<String>)> {
    match f.registry.calcola_codice_fiscale(&ctx(&[]), &req).await {
        Err(ServiceError::Rifiutata { anomalie, .. }) => {
            anomalie.into_iter().map(|a| (a.codice, a.campo)).collect()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn tax_code_birth_place_must_be_valid_at_the_birth_date() {
    let f = fixture();
    let anyone = ctx(&[]);
    let r = f
        .registry
        .calcola_codice_fiscale(
            &anyone,
            &calcolo("Rossi", "Mario", "M", "1980-01-01", "H501"),
        )
        .await
        .unwrap();
    assert_eq!(r.codice_fiscale, "RSSMRA80A01H501U");
    assert_eq!(r.omocodici.len(), 7);
    assert_eq!(r.luogo_nascita.denominazione.to_uppercase(), "ROMA");
    // Abetone (A012) was merged away at the end of 2016.
    let born_then = f
        .registry
        .calcola_codice_fiscale(
            &anyone,
            &calcolo("Rossi", "Mario", "M", "1980-01-01", "A012"),
        )
        .await
        .unwrap();
    assert_eq!(
        born_then.luogo_nascita.codice_istat.as_deref(),
        Some("047001")
    );
    assert_eq!(
        refusal_codes(&f, calcolo("Rossi", "Mario", "M", "2020-01-01", "A012")).await,
        vec![("EC007".into(), Some("luogoNascita".into()))]
    );
    // Foreign state (United States).
    let abroad = f
        .registry
        .calcola_codice_fiscale(
            &anyone,
            &calcolo("Smith", "John", "M", "1975-07-04", "Z404"),
        )
        .await
        .unwrap();
    assert_eq!(abroad.luogo_nascita.tipo, "statoEstero");
    assert_eq!(&abroad.codice_fiscale[11..15], "Z404");
    assert_eq!(
        refusal_codes(&f, calcolo("Rossi", "Mario", "M", "1980-01-01", "Z999")).await,
        vec![("EC030".into(), Some("luogoNascita".into()))]
    );
}

#[tokio::test]
async fn tax_code_input_errors_are_all_reported_with_fields() {
    let f = fixture();
    let codes = refusal_codes(&f, calcolo("", "Mario", "X", "1980-02-30", "H50")).await;
    assert_eq!(
        codes,
        vec![
            ("EV002".into(), Some("cognome".into())),
            ("EV001".into(), Some("sesso".into())),
            ("EV001".into(), Some("dataNascita".into())),
            ("EV001".into(), Some("luogoNascita".into())),
        ]
    );
    assert_eq!(
        refusal_codes(&f, calcolo("Rossi", "Mario", "M", "2030-01-01", "H501")).await,
        vec![("EV003".into(), Some("dataNascita".into()))]
    );
    let no_letters = refusal_codes(&f, calcolo("1234", "Mario", "M", "1980-01-01", "H501")).await;
    assert_eq!(no_letters[0].1.as_deref(), Some("cognome"));
}

#[tokio::test]
async fn tax_code_check_and_decode() {
    let f = fixture();
    let anyone = ctx(&[]);
    let ok = f
        .registry
        .verifica_codice_fiscale(&anyone, "rssmra80a01h501u")
        .await
        .unwrap();
    assert!(ok.valido);
    assert_eq!(ok.livello_omocodia, Some(0));
    let omo = f
        .registry
        .verifica_codice_fiscale(&anyone, "RSSMRA80A01H50MM")
        .await;
    // Either valid omocode with its base, or a precise reason: never a panic.
    let omo = omo.unwrap();
    if omo.valido {
        assert_eq!(omo.forma_base.as_deref(), Some("RSSMRA80A01H501U"));
    }
    let bad = f
        .registry
        .verifica_codice_fiscale(&anyone, "RSSMRA80A01H501X")
        .await
        .unwrap();
    assert!(!bad.valido);
    assert_eq!(bad.anomalie.len(), 1);
    let short = f
        .registry
        .verifica_codice_fiscale(&anyone, "RSSMRA80")
        .await
        .unwrap();
    assert_eq!(short.anomalie[0].codice, "EA001");
    let d = f
        .registry
        .decodifica_codice_fiscale(&anyone, "RSSMRA80A01H501U")
        .await
        .unwrap();
    assert_eq!(
        (d.giorno, d.mese, d.anno_due_cifre, d.anni_candidati),
        (1, 1, 80, [1980, 2080])
    );
    assert_eq!(d.data_nascita_probabile, Some(day(1980, 1, 1)));
    assert_eq!(
        d.luogo_nascita.unwrap().codice_istat.as_deref(),
        Some("058091")
    );
}

#[tokio::test]
async fn municipalities_by_state_date_and_name() {
    let f = fixture();
    let anyone = ctx(&[]);
    let active = f
        .registry
        .comuni(
            &anyone,
            &FiltroComuni {
                stato: Some(anpr_tables::StatoComune::Attivo),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(active.totale, 7901);
    let abetone_1990 = f
        .registry
        .comuni(
            &anyone,
            &FiltroComuni {
                codice_istat: Some("047001".parse().unwrap()),
                data_riferimento: Some(day(1990, 1, 1)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        abetone_1990
            .comuni
            .iter()
            .map(|c| c.nome.as_str())
            .collect::<Vec<_>>(),
        vec!["ABETONE"]
    );
    let abetone_today = f
        .registry
        .comuni(
            &anyone,
            &FiltroComuni {
                codice_istat: Some("047001".parse().unwrap()),
                data_riferimento: Some(day(2026, 1, 1)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(abetone_today.totale, 0);
    let by_name = f
        .registry
        .comuni(
            &anyone,
            &FiltroComuni {
                denominazione: Some("cittá di castello".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        by_name.comuni.iter().any(|c| c.istat.as_str() == "054013"),
        "{:?}",
        by_name.comuni
    );
    let unknown = f
        .registry
        .righe_tabella(&anyone, "non_esiste", None)
        .await
        .unwrap_err();
    assert_eq!(
        unknown.anomalie()[0].codice,
        anpr_service::tabelle::CODICE_TABELLA_INESISTENTE
    );
    let civil = f
        .registry
        .righe_tabella(&anyone, "stato_civile", None)
        .await
        .unwrap();
    assert!(civil.totale >= 6);
}
