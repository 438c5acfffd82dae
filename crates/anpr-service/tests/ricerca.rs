//! Searches (M-5.2) and operations monitoring (M-5.5) through the service layer, on
//! SQLite and on PostgreSQL: each criterion, accents and case, partial keys, as-at reads,
//! sections, positions, limits and coded refusals, families at an address, monitoring
//! filters, scope and pagination, and the audit entries every read leaves.

mod common;

use anpr_domain::audit::{TipoEvento, VoceAudit};
use anpr_domain::caller::{CallerContext, Profilo};
use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto, IdOperazioneAnpr};
use anpr_domain::operazione::StatoOperazione;
use anpr_domain::scheda::{Indirizzo, TipoScheda};
use anpr_service::annullamento::RichiestaAnnullamento;
use anpr_service::monitoraggio::{FiltroOperazioni, ParametriMonitoraggio, SintesiOperazione};
use anpr_service::ricerca::{
    CriteriRicerca, CriteriRicercaFamiglie, RichiestaRicercaFamiglie, RichiestaRicercaSoggetti,
};
use anpr_service::ServiceError;
use anpr_store::{
    EntityRef, FamilyIndex, IndexWrite, SectionWrite, Sequence, SubjectIndex, SubjectQuery,
};
use chrono::NaiveDate;
use common::{ctx, ids, iscrivi, iscrizione, operatore, Fixture, MILANO, ROMA};
use serde_json::{json, Value};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn codes(anomalie: &[anpr_domain::error::Anomalia]) -> Vec<String> {
    anomalie.iter().map(|a| a.codice.clone()).collect()
}

fn refusal_codes(err: &ServiceError) -> Vec<String> {
    match err {
        ServiceError::Rifiutata { anomalie, .. } => codes(anomalie),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn criteri(v: Value) -> CriteriRicerca {
    let req: RichiestaRicercaSoggetti = serde_json::from_value(v).unwrap();
    CriteriRicerca::da_richiesta(&req).unwrap()
}

fn criteri_refused(v: Value) -> Vec<(String, Option<String>)> {
    let req: RichiestaRicercaSoggetti = serde_json::from_value(v).unwrap();
    CriteriRicerca::da_richiesta(&req)
        .unwrap_err()
        .into_iter()
        .map(|a| (a.codice, a.campo))
        .collect()
}

fn criteri_famiglie(v: Value) -> CriteriRicercaFamiglie {
    let req: RichiestaRicercaFamiglie = serde_json::from_value(v).unwrap();
    CriteriRicercaFamiglie::da_richiesta(&req).unwrap()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_by_key(|s| s.parse::<u64>().unwrap());
    v
}

/// Ids of the subjects a search finds, as the operator of Rome.
async fn cerca(f: &Fixture, v: Value) -> Vec<String> {
    f.registry
        .ricerca_soggetti(&operatore(), &criteri(v))
        .await
        .unwrap()
        .iter()
        .map(|s| s.id_anpr.to_string())
        .collect()
}

async fn cerca_famiglie(f: &Fixture, v: Value) -> Vec<String> {
    f.registry
        .ricerca_famiglie(&operatore(), &criteri_famiglie(v))
        .await
        .unwrap()
        .iter()
        .map(|s| s.id_anpr.to_string())
        .collect()
}

async fn audit_tail(f: &Fixture, n: usize) -> Vec<VoceAudit> {
    let all = f.store.audit_page(0, 100_000).await.unwrap();
    all[all.len().saturating_sub(n)..].to_vec()
}

fn summary(v: &VoceAudit) -> (TipoEvento, String, Option<String>, String) {
    (
        v.voce.evento,
        v.voce.azione.clone(),
        v.voce.oggetto.clone(),
        v.voce.esito.clone(),
    )
}

/// The population of the search scenarios (all in Rome):
/// - F1 at via Nazionale 10: Rossi Mario (a, head, from 2020-03-01, municipal id A-1) and
///   Bianchi Anna (b, spouse, joined 2020-06-01, municipal id A-2);
/// - F3 at via Nazionale 10 internal 5: Rossini Marco (d);
/// - F4 at via Nazionale 12: Rossi Maria (e);
/// - F2 at piazza Navona 1: D'Àngelo Nicolò (c, from 2021-06-01).
struct Popolazione {
    a: String,
    b: String,
    c: String,
    d: String,
    e: String,
    f1: String,
    f2: String,
    f3: String,
    f4: String,
}

async fn popola(f: &Fixture) -> Popolazione {
    let op = operatore();
    let mut body = iscrizione(1, "Rossi", "Mario", "M", "1980-01-01", "2020-03-01");
    body["generalita"]["idSchedaSoggettoComune"] = json!("A-1");
    let (a, f1) = ids(&iscrivi(f, &op, &body).await);
    let mut body = iscrizione(2, "Rossini", "Marco", "M", "1990-02-02", "2020-03-01");
    body["residenza"]["numeroCivico"]["interno"] = json!("5");
    let (d, f3) = ids(&iscrivi(f, &op, &body).await);
    let mut body = iscrizione(3, "Rossi", "Maria", "F", "1985-03-03", "2020-03-01");
    body["residenza"]["numeroCivico"]["numero"] = json!("12");
    let (e, f4) = ids(&iscrivi(f, &op, &body).await);
    let mut body = iscrizione(4, "Bianchi", "Anna", "F", "1982-05-10", "2020-06-01");
    body["generalita"]["idSchedaSoggettoComune"] = json!("A-2");
    body["famiglia"] = json!({"idFamigliaConvivenzaANPR": f1, "codiceLegame": "2"});
    let (b, _) = ids(&iscrivi(f, &op, &body).await);
    let mut body = iscrizione(5, "D'Àngelo", "Nicolò", "M", "1975-07-20", "2021-06-01");
    body["residenza"]["toponimo"] = json!({"specie": "PIAZZA", "denominazioneToponimo": "Navona"});
    body["residenza"]["numeroCivico"]["numero"] = json!("1");
    let (c, f2) = ids(&iscrivi(f, &op, &body).await);
    Popolazione {
        a,
        b,
        c,
        d,
        e,
        f1,
        f2,
        f3,
        f4,
    }
}

async fn next_op(f: &Fixture) -> IdOperazioneAnpr {
    IdOperazioneAnpr::new(f.store.next_id(Sequence::Operazione).await.unwrap()).unwrap()
}

fn subject(id: &str) -> IdAnprSoggetto {
    id.parse().unwrap()
}

async fn index_row(f: &Fixture, id: &str) -> SubjectIndex {
    let q = SubjectQuery {
        id: Some(subject(id)),
        limit: 1,
        ..Default::default()
    };
    f.store.find_subjects(&q).await.unwrap().remove(0)
}

/// Changes a subject's surname from `decorrenza` directly through the store (the change
/// services are another issue's), index included.
async fn rinomina(f: &Fixture, id: &str, cognome: &str, decorrenza: &str) {
    let entity = EntityRef::Soggetto(subject(id));
    let current = f.store.record(entity, None).await.unwrap().unwrap();
    let mut generalita = current.get("generalita").unwrap().clone();
    generalita["cognome"] = json!(cognome);
    let mut row = index_row(f, id).await;
    row.cognome_key = Some(anpr_domain::text::fold_key(cognome));
    let mut op =
        anpr_store::conformance::operation(next_op(f).await, "5008", ROMA, None, day(decorrenza));
    op.writes.push(SectionWrite {
        entity,
        section: "generalita".into(),
        value: Some(generalita),
        key: None,
    });
    op.indexes.push(IndexWrite::Soggetto(row));
    f.store.apply(op).await.unwrap();
}

/// Removes a subject from the registry (position `C`) directly through the store.
async fn cancella(f: &Fixture, id: &str, decorrenza: &str) {
    let entity = EntityRef::Soggetto(subject(id));
    let mut row = index_row(f, id).await;
    row.posizione = "C".into();
    let mut op =
        anpr_store::conformance::operation(next_op(f).await, "2001", ROMA, None, day(decorrenza));
    op.writes.push(SectionWrite {
        entity,
        section: "competenza".into(),
        value: Some(json!({"comune": ROMA, "posizione": "cancellato"})),
        key: None,
    });
    op.indexes.push(IndexWrite::Soggetto(row));
    f.store.apply(op).await.unwrap();
}

async fn soggetti_per_ogni_criterio(f: Fixture) {
    let p = popola(&f).await;
    let op = operatore();
    // By national id; the record comes back whole.
    let found = f
        .registry
        .ricerca_soggetti(&op, &criteri(json!({"criteriRicerca": {"idANPR": p.b}})))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id_anpr.to_string(), p.b);
    assert_eq!(found[0].data_riferimento, None);
    let scheda = &found[0].scheda;
    assert!(scheda.residenza.is_some() && scheda.legame.is_some());
    let cf = scheda
        .codice_fiscale
        .as_ref()
        .unwrap()
        .cod_fiscale
        .as_str()
        .to_owned();
    // By tax code, given in lower case with blanks around.
    assert_eq!(
        cerca(
            &f,
            json!({"criteriRicerca": {"codiceFiscale": format!(" {} ", cf.to_lowercase())}})
        )
        .await,
        vec![p.b.clone()]
    );
    // By municipal id: in the caller's municipality unless another is named.
    assert_eq!(
        cerca(
            &f,
            json!({"criteriRicerca": {"idSchedaSoggettoComune": "A-2"}})
        )
        .await,
        vec![p.b.clone()]
    );
    assert!(cerca(
        &f,
        json!({"criteriRicerca": {"idSchedaSoggettoComune": "A-2"}, "datiRichiesta": {"comuneResidenza": MILANO}})
    )
    .await
    .is_empty());
    // A caller acting for no municipality must name it.
    let national = ctx(None, &[Profilo::OperatoreConsultazione]);
    let err = f
        .registry
        .ricerca_soggetti(
            &national,
            &criteri(json!({"criteriRicerca": {"idSchedaSoggettoComune": "A-2"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(refusal_codes(&err), vec!["EV002"]);
    let found = f
        .registry
        .ricerca_soggetti(
            &national,
            &criteri(json!({"criteriRicerca": {"idSchedaSoggettoComune": "A-1"}, "datiRichiesta": {"comuneResidenza": ROMA}})),
        )
        .await
        .unwrap();
    assert_eq!(found[0].id_anpr.to_string(), p.a);
    // By generalities: the whole surname matches exactly (not Rossini).
    assert_eq!(
        cerca(&f, json!({"criteriRicerca": {"cognome": "rossi"}})).await,
        sorted(vec![p.a.clone(), p.e.clone()])
    );
    assert_eq!(
        cerca(
            &f,
            json!({"criteriRicerca": {"cognome": "ROSSI", "nome": "mario"}})
        )
        .await,
        vec![p.a.clone()]
    );
    assert_eq!(
        cerca(
            &f,
            json!({"criteriRicerca": {"cognome": "Rossi", "sesso": "F"}})
        )
        .await,
        vec![p.e.clone()]
    );
    assert_eq!(
        cerca(
            &f,
            json!({"criteriRicerca": {"cognome": "Rossi"}, "datiNascita": {"dataEvento": "1985-03-03"}})
        )
        .await,
        vec![p.e.clone()]
    );
    assert!(cerca(
        &f,
        json!({"criteriRicerca": {"cognome": "Rossi"}, "datiRichiesta": {"comuneResidenza": MILANO}})
    )
    .await
    .is_empty());
    assert!(cerca(&f, json!({"criteriRicerca": {"cognome": "Verdi"}}))
        .await
        .is_empty());
}

async fn chiavi_parziali_accenti_e_maiuscole(f: Fixture) {
    let p = popola(&f).await;
    let partial = |n: u32, criteri: Value| json!({"criteriRicerca": criteri, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": n}});
    assert_eq!(
        cerca(&f, partial(1, json!({"cognome": "ros"}))).await,
        sorted(vec![p.a.clone(), p.d.clone(), p.e.clone()])
    );
    assert_eq!(
        cerca(&f, partial(3, json!({"cognome": "ROSS", "nome": "ma"}))).await,
        sorted(vec![p.a.clone(), p.d.clone(), p.e.clone()])
    );
    // Name partial, surname whole.
    assert_eq!(
        cerca(&f, partial(2, json!({"cognome": "rossi", "nome": "MAR"}))).await,
        sorted(vec![p.a.clone(), p.e.clone()])
    );
    // Surname partial, name whole.
    assert_eq!(
        cerca(&f, partial(1, json!({"cognome": "ross", "nome": "marco"}))).await,
        vec![p.d.clone()]
    );
    // Accents, case, apostrophes (typed or typographic) and hyphens do not matter.
    for cognome in [
        "d'angelo",
        "D ANGELO",
        "d\u{2019}Àngelo",
        "D-Angelo",
        "  d'ANGELO ",
    ] {
        assert_eq!(
            cerca(&f, json!({"criteriRicerca": {"cognome": cognome}})).await,
            vec![p.c.clone()],
            "{cognome}"
        );
    }
    for nome in ["nicolo", "NICOLÒ", "Nicolo'"] {
        assert_eq!(
            cerca(
                &f,
                json!({"criteriRicerca": {"cognome": "d'angelo", "nome": nome}})
            )
            .await,
            vec![p.c.clone()],
            "{nome}"
        );
    }
    assert_eq!(
        cerca(&f, partial(1, json!({"cognome": "d'a"}))).await,
        vec![p.c.clone()]
    );
    // The apostrophe separates words: "DANGELO" is another surname.
    assert!(cerca(&f, json!({"criteriRicerca": {"cognome": "dangelo"}}))
        .await
        .is_empty());
}

async fn sezioni_data_di_riferimento_e_posizioni(f: Fixture) {
    let p = popola(&f).await;
    let op = operatore();
    // Only the sections asked for.
    let found = f
        .registry
        .ricerca_soggetti(
            &op,
            &criteri(json!({"criteriRicerca": {"idANPR": p.c}, "datiRichiesta": {"sezioni": ["generalita", "codiceFiscale"]}})),
        )
        .await
        .unwrap();
    let scheda = &found[0].scheda;
    assert!(scheda.generalita.is_some() && scheda.codice_fiscale.is_some());
    assert!(scheda.residenza.is_none() && scheda.legame.is_none() && scheda.competenza.is_none());
    // As at a date: a record that did not exist yet is left out.
    let at = |date: &str, criteri: Value| json!({"criteriRicerca": criteri, "datiRichiesta": {"dataRiferimentoRichiesta": date}});
    assert!(cerca(&f, at("2021-01-01", json!({"cognome": "d'angelo"})))
        .await
        .is_empty());
    let found = f
        .registry
        .ricerca_soggetti(
            &op,
            &criteri(at("2021-07-01", json!({"cognome": "d'angelo"}))),
        )
        .await
        .unwrap();
    assert_eq!(found[0].id_anpr.to_string(), p.c);
    assert_eq!(found[0].data_riferimento, Some(day("2021-07-01")));
    assert!(cerca(&f, at("2020-04-01", json!({"idANPR": p.b})))
        .await
        .is_empty());

    // A surname change: the index is current, the record is read as at the date.
    rinomina(&f, &p.a, "Rossi Bianchi", "2022-01-01").await;
    assert_eq!(
        cerca(&f, json!({"criteriRicerca": {"cognome": "rossi"}})).await,
        vec![p.e.clone()]
    );
    let now = f
        .registry
        .ricerca_soggetti(
            &op,
            &criteri(json!({"criteriRicerca": {"cognome": "rossi bianchi"}})),
        )
        .await
        .unwrap();
    let then = f
        .registry
        .ricerca_soggetti(
            &op,
            &criteri(at("2021-01-01", json!({"cognome": "rossi bianchi"}))),
        )
        .await
        .unwrap();
    let cognome = |s: &anpr_service::consultazione::SchedaLetta| {
        s.scheda
            .generalita
            .as_ref()
            .unwrap()
            .cognome
            .as_ref()
            .unwrap()
            .as_str()
            .to_owned()
    };
    assert_eq!(
        (now[0].id_anpr.to_string(), cognome(&now[0])),
        (p.a.clone(), "Rossi Bianchi".to_owned())
    );
    assert_eq!(
        (then[0].id_anpr.to_string(), cognome(&then[0])),
        (p.a.clone(), "Rossi".to_owned())
    );

    // Removed subjects are found only when asked for.
    cancella(&f, &p.d, "2023-01-01").await;
    let partial = |criteri: Value, posizioni: Value| json!({"criteriRicerca": criteri, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": 1}, "datiRichiesta": {"posizioni": posizioni}});
    assert!(cerca(&f, json!({"criteriRicerca": {"cognome": "rossini"}}))
        .await
        .is_empty());
    assert_eq!(
        cerca(
            &f,
            partial(json!({"cognome": "rossini"}), json!(["cancellato"]))
        )
        .await,
        vec![p.d.clone()]
    );
    assert_eq!(
        cerca(
            &f,
            partial(
                json!({"cognome": "ross"}),
                json!(["residente", "cancellato"])
            )
        )
        .await,
        sorted(vec![p.a.clone(), p.d.clone(), p.e.clone()])
    );
    assert!(
        cerca(&f, partial(json!({"cognome": "ross"}), json!(["aire"])))
            .await
            .is_empty()
    );
}

async fn limiti_rifiuti_e_audit(f: Fixture) {
    let p = popola(&f).await;
    let op = operatore();
    // More matches than the limit: refused, not truncated, and the probe is audited.
    let broad = |limit: u32| json!({"criteriRicerca": {"cognome": "ros"}, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": 1}, "datiRichiesta": {"limit": limit}});
    let err = f
        .registry
        .ricerca_soggetti(&op, &criteri(broad(2)))
        .await
        .unwrap_err();
    assert_eq!(refusal_codes(&err), vec!["EN115"]);
    let last = audit_tail(&f, 1).await;
    assert_eq!(
        summary(&last[0]),
        (
            TipoEvento::Lettura,
            "ricercaSoggetti".into(),
            Some("criterio:generalita".into()),
            "troppi risultati".into()
        )
    );
    assert_eq!(cerca(&f, broad(3)).await.len(), 3);

    // Every record returned is audited by its id, after the search's own entry, which
    // names the kind of criterion and never its values.
    let found = cerca(&f, json!({"criteriRicerca": {"cognome": "Rossi"}})).await;
    assert_eq!(found.len(), 2);
    let tail = audit_tail(&f, 3).await;
    let mut expected = vec![(
        TipoEvento::Lettura,
        "ricercaSoggetti".to_owned(),
        Some("criterio:generalita".to_owned()),
        "2 trovati".to_owned(),
    )];
    for id in sorted(vec![p.a.clone(), p.e.clone()]) {
        expected.push((
            TipoEvento::Lettura,
            "ricercaSoggetti".into(),
            Some(format!("soggetto:{id}")),
            "ok".into(),
        ));
    }
    assert_eq!(tail.iter().map(summary).collect::<Vec<_>>(), expected);
    assert!(tail
        .iter()
        .all(|v| !format!("{:?}", v.voce).to_uppercase().contains("ROSSI")));
    // Nothing found is an empty answer, audited as such.
    assert!(cerca(&f, json!({"criteriRicerca": {"cognome": "Neri"}}))
        .await
        .is_empty());
    assert_eq!(audit_tail(&f, 1).await[0].voce.esito, "0 trovati");

    // Denied profiles are refused and audited.
    let err = f
        .registry
        .ricerca_soggetti(
            &ctx(Some(ROMA), &[Profilo::OperatoreSubentro]),
            &criteri(json!({"criteriRicerca": {"idANPR": p.a}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::AccessoNegato { .. }), "{err:?}");
    assert_eq!(
        summary(&audit_tail(&f, 1).await[0]),
        (
            TipoEvento::AccessoNegato,
            "ricercaSoggetti".into(),
            None,
            "negato".into()
        )
    );

    // Criteria built by hand are checked again by the use case.
    let mut c = criteri(json!({"criteriRicerca": {"idANPR": p.a}}));
    c.limit = 0;
    let err = f.registry.ricerca_soggetti(&op, &c).await.unwrap_err();
    assert_eq!(refusal_codes(&err), vec!["EV001"]);
}

/// Request validation needs no store.
#[test]
fn malformed_criteria_get_their_codes() {
    let only = |v: Value| {
        criteri_refused(v)
            .into_iter()
            .map(|(c, _)| c)
            .collect::<Vec<_>>()
    };
    assert_eq!(only(json!({"criteriRicerca": {}})), vec!["EN448"]);
    assert_eq!(
        only(json!({"criteriRicerca": {"codiceFiscale": "RSSMRA80A01H501U", "cognome": "Rossi"}})),
        vec!["EV050"]
    );
    assert_eq!(
        only(json!({"criteriRicerca": {"idANPR": "1", "idSchedaSoggettoComune": "A-1"}})),
        vec!["EV050"]
    );
    // A name without surname is not a search by generalities.
    assert_eq!(
        only(json!({"criteriRicerca": {"nome": "Mario"}})),
        vec!["EN448"]
    );
    let partial = |n: u32, criteri: Value| json!({"criteriRicerca": criteri, "ricercaChiaveParziale": {"ricercaCognomeNomeParziale": n}});
    assert_eq!(only(partial(4, json!({"cognome": "Rossi"}))), vec!["EN149"]);
    assert_eq!(
        criteri_refused(partial(1, json!({"cognome": "R'"}))),
        vec![("EHR62".into(), Some("criteriRicerca.cognome".into()))]
    );
    assert_eq!(
        criteri_refused(partial(2, json!({"cognome": "Rossi"}))),
        vec![("EHR62".into(), Some("criteriRicerca.nome".into()))]
    );
    assert_eq!(only(partial(1, json!({"idANPR": "5"}))), vec!["EV050"]);
    assert_eq!(
        only(json!({"criteriRicerca": {"codiceFiscale": "RSS"}})),
        vec!["EA001"]
    );
    assert_eq!(
        only(json!({"criteriRicerca": {"cognome": "'-'"}})),
        vec!["EV001"]
    );
    // Every malformed value at once, each naming its field.
    let all = criteri_refused(json!({
        "criteriRicerca": {"cognome": "Rossi", "sesso": "X"},
        "datiNascita": {"dataEvento": "1980-13-01"},
        "datiRichiesta": {"dataRiferimentoRichiesta": "ieri", "comuneResidenza": "58091", "sezioni": ["generalita", "nessuna"], "posizioni": ["morto"], "limit": 0}
    }));
    let mut campi: Vec<String> = all.iter().map(|(_, c)| c.clone().unwrap()).collect();
    campi.sort();
    assert_eq!(
        campi,
        vec![
            "criteriRicerca.sesso",
            "datiNascita.dataEvento",
            "datiRichiesta.comuneResidenza",
            "datiRichiesta.dataRiferimentoRichiesta",
            "datiRichiesta.limit",
            "datiRichiesta.posizioni",
            "datiRichiesta.sezioni",
        ]
    );
    assert!(all.iter().all(|(c, _)| c == "EV001"), "{all:?}");
    assert_eq!(
        only(
            json!({"criteriRicerca": {"idANPR": "1"}, "datiRichiesta": {"limit": anpr_service::ricerca::LIMITE_MASSIMO + 1}})
        ),
        vec!["EV001"]
    );
    // Unknown fields are not silently ignored.
    assert!(serde_json::from_value::<RichiestaRicercaSoggetti>(
        json!({"criteriRicerca": {"cognome": "Rossi", "eta": 3}})
    )
    .is_err());
    // Families: one criterion, and the municipal family id is not indexed.
    let famiglie = |v: Value| {
        let req: RichiestaRicercaFamiglie = serde_json::from_value(v).unwrap();
        codes(&CriteriRicercaFamiglie::da_richiesta(&req).unwrap_err())
    };
    assert_eq!(famiglie(json!({"criteriRicerca": {}})), vec!["EV002"]);
    assert_eq!(
        famiglie(json!({"criteriRicerca": {"idFamigliaConvivenzaComune": "F-1"}})),
        vec!["EN053"]
    );
    assert_eq!(
        famiglie(json!({"criteriRicerca": {"idANPR": "1", "idFamigliaConvivenzaANPR": "2"}})),
        vec!["EV050"]
    );
    assert_eq!(
        famiglie(
            json!({"criteriRicerca": {"idFamigliaConvivenzaANPR": "x"}, "datiRichiesta": {"limit": 999}})
        ),
        vec!["EV001", "EV001"]
    );
}

/// A cohabitation at `indirizzo` with one member, written directly through the store
/// (cohabitation services are another issue's). Returns (cohabitation id, member id).
async fn convivenza(f: &Fixture, indirizzo: &Indirizzo) -> (String, String) {
    let famiglia = IdAnprFamiglia::new(f.store.next_id(Sequence::Famiglia).await.unwrap()).unwrap();
    let soggetto = IdAnprSoggetto::new(f.store.next_id(Sequence::Soggetto).await.unwrap()).unwrap();
    let chiave = indirizzo.chiave_edificio();
    let mut op =
        anpr_store::conformance::operation(next_op(f).await, "5001", ROMA, None, day("2022-05-01"));
    let fe = EntityRef::Famiglia(famiglia);
    let se = EntityRef::Soggetto(soggetto);
    for (entity, section, value, key) in [
        (
            fe,
            "dati",
            json!({"tipoScheda": "convivenza", "comune": ROMA, "dataOrigineFamigliaConvivenza": "2022-05-01", "denominazioneConvivenza": "Casa di riposo Nazionale", "specieConvivenza": "2"}),
            None,
        ),
        (fe, "stato", json!("attiva"), None),
        (
            fe,
            "intestatario",
            json!({"idAnpr": soggetto.to_string(), "dataDecorrenza": "2022-05-01"}),
            None,
        ),
        (
            se,
            "generalita",
            json!({"cognome": "Verdi", "nome": "Ugo", "sesso": "M", "dataNascita": {"data": "1930-01-01", "precisione": "completa"}, "luogoNascita": {"tipo": "estero", "codiceStato": "404", "descrizioneStato": "STATI UNITI D'AMERICA"}}),
            None,
        ),
        (
            se,
            "competenza",
            json!({"comune": ROMA, "posizione": "residente"}),
            None,
        ),
        (
            se,
            "legame",
            json!({"idFamigliaConvivenzaAnpr": famiglia.to_string(), "tipoLegame": "convivenza", "codiceLegame": "1", "dataDecorrenza": "2022-05-01"}),
            Some(famiglia.to_string()),
        ),
    ] {
        op.writes.push(SectionWrite {
            entity,
            section: section.into(),
            value: Some(value),
            key,
        });
    }
    op.indexes.push(IndexWrite::Soggetto(SubjectIndex {
        id: soggetto,
        comune: ROMA.parse().unwrap(),
        posizione: "R".into(),
        codice_fiscale: None,
        cognome_key: Some("VERDI".into()),
        nome_key: Some("UGO".into()),
        sesso: Some("M".into()),
        data_nascita: Some(day("1930-01-01")),
        id_comunale: None,
        id_famiglia: Some(famiglia),
        chiave_indirizzo: Some(chiave.clone()),
    }));
    op.indexes.push(IndexWrite::Famiglia(FamilyIndex {
        id: famiglia,
        comune: ROMA.parse().unwrap(),
        tipo: "C".into(),
        stato: "A".into(),
        id_comunale: None,
        chiave_indirizzo: Some(chiave),
    }));
    f.store.apply(op).await.unwrap();
    (famiglia.to_string(), soggetto.to_string())
}

/// Archives a family directly through the store.
async fn archivia(f: &Fixture, id: &str, decorrenza: &str) {
    let famiglia: IdAnprFamiglia = id.parse().unwrap();
    let mut index = f.store.family_index(famiglia).await.unwrap().unwrap();
    index.stato = "X".into();
    let mut op =
        anpr_store::conformance::operation(next_op(f).await, "5001", ROMA, None, day(decorrenza));
    op.writes.push(SectionWrite {
        entity: EntityRef::Famiglia(famiglia),
        section: "stato".into(),
        value: Some(json!("archiviata")),
        key: None,
    });
    op.indexes.push(IndexWrite::Famiglia(index));
    f.store.apply(op).await.unwrap();
}

async fn famiglie_per_id_componente_e_indirizzo(f: Fixture) {
    let p = popola(&f).await;
    let op = operatore();
    // By id, with its members.
    let found = f
        .registry
        .ricerca_famiglie(
            &op,
            &criteri_famiglie(json!({"criteriRicerca": {"idFamigliaConvivenzaANPR": p.f1}})),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let members: Vec<(String, String)> = found[0]
        .componenti
        .iter()
        .map(|c| (c.id_anpr.to_string(), c.codice_legame.clone()))
        .collect();
    assert_eq!(
        members,
        vec![(p.a.clone(), "1".to_owned()), (p.b.clone(), "2".to_owned())]
    );
    // By a member, by tax code or national id.
    let cf = f
        .registry
        .ricerca_soggetti(&op, &criteri(json!({"criteriRicerca": {"idANPR": p.b}})))
        .await
        .unwrap()[0]
        .scheda
        .codice_fiscale
        .as_ref()
        .unwrap()
        .cod_fiscale
        .as_str()
        .to_owned();
    assert_eq!(
        cerca_famiglie(&f, json!({"criteriRicerca": {"codiceFiscale": cf}})).await,
        vec![p.f1.clone()]
    );
    assert_eq!(
        cerca_famiglie(&f, json!({"criteriRicerca": {"idANPR": p.d}})).await,
        vec![p.f3.clone()]
    );
    // As at a date before the member existed: nothing.
    assert!(cerca_famiglie(
        &f,
        json!({"criteriRicerca": {"idANPR": p.b}, "datiRichiesta": {"dataRiferimentoRichiesta": "2020-04-01"}})
    )
    .await
    .is_empty());
    // By address: the building (street and number, whatever the internal), any case.
    let indirizzo = |specie: &str, nome: &str, numero: &str| json!({"criteriRicerca": {"indirizzo": {"comune": ROMA, "toponimo": {"specie": specie, "denominazioneToponimo": nome}, "numeroCivico": {"numero": numero}}}});
    assert_eq!(
        cerca_famiglie(&f, indirizzo("via", "NAZIONALE", "10")).await,
        sorted(vec![p.f1.clone(), p.f3.clone()])
    );
    assert_eq!(
        cerca_famiglie(&f, indirizzo("VIA", "Nazionale", "12")).await,
        vec![p.f4.clone()]
    );
    assert_eq!(
        cerca_famiglie(&f, indirizzo("Piazza", "navona", "1")).await,
        vec![p.f2.clone()]
    );
    assert!(cerca_famiglie(&f, indirizzo("VIA", "Nazionale", "11"))
        .await
        .is_empty());
    // Audited: the search (even when it finds nothing), then each family read.
    let tail = audit_tail(&f, 1).await;
    assert_eq!(
        summary(&tail[0]),
        (
            TipoEvento::Lettura,
            "ricercaFamiglie".into(),
            Some("criterio:indirizzo".into()),
            "0 trovate".into()
        )
    );
    cerca_famiglie(&f, indirizzo("via", "NAZIONALE", "10")).await;
    let tail = audit_tail(&f, 3).await;
    let mut expected = vec![(
        TipoEvento::Lettura,
        "ricercaFamiglie".to_owned(),
        Some("criterio:indirizzo".to_owned()),
        "2 trovate".to_owned(),
    )];
    for id in sorted(vec![p.f1.clone(), p.f3.clone()]) {
        expected.push((
            TipoEvento::Lettura,
            "ricercaFamiglie".into(),
            Some(format!("famiglia:{id}")),
            "ok".into(),
        ));
    }
    assert_eq!(tail.iter().map(summary).collect::<Vec<_>>(), expected);

    // As at a date, members are those of that date.
    let at = f
        .registry
        .ricerca_famiglie(
            &op,
            &criteri_famiglie(json!({"criteriRicerca": {"indirizzo": {"comune": ROMA, "toponimo": {"specie": "VIA", "denominazioneToponimo": "NAZIONALE"}, "numeroCivico": {"numero": "10"}}}, "datiRichiesta": {"dataRiferimentoRichiesta": "2020-04-01"}})),
        )
        .await
        .unwrap();
    let at: Vec<(String, usize)> = at
        .iter()
        .map(|f| (f.id_anpr.to_string(), f.componenti.len()))
        .collect();
    let mut expected = vec![(p.f1.clone(), 1), (p.f3.clone(), 1)];
    expected.sort_by_key(|(id, _)| id.parse::<u64>().unwrap());
    assert_eq!(at, expected);
    // Too many for the limit.
    let err = f
        .registry
        .ricerca_famiglie(
            &op,
            &criteri_famiglie(json!({"criteriRicerca": {"indirizzo": {"comune": ROMA, "toponimo": {"specie": "VIA", "denominazioneToponimo": "NAZIONALE"}, "numeroCivico": {"numero": "10"}}}, "datiRichiesta": {"limit": 1}})),
        )
        .await
        .unwrap_err();
    assert_eq!(refusal_codes(&err), vec!["EN115"]);

    // Cohabitations at the building are found with the families; archived families
    // only when asked for.
    let building: Indirizzo = serde_json::from_value(
        json!({"comune": ROMA, "toponimo": {"specie": "Via", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10", "interno": "9"}}),
    )
    .unwrap();
    let (casa, ospite) = convivenza(&f, &building).await;
    archivia(&f, &p.f3, "2024-01-01").await;
    let found = f
        .registry
        .ricerca_famiglie(&op, &criteri_famiglie(indirizzo("via", "nazionale", "10")))
        .await
        .unwrap();
    let got: Vec<(String, TipoScheda, Vec<String>)> = found
        .iter()
        .map(|f| {
            (
                f.id_anpr.to_string(),
                f.scheda.dati.as_ref().unwrap().tipo_scheda,
                f.componenti.iter().map(|c| c.id_anpr.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                p.f1.clone(),
                TipoScheda::Famiglia,
                sorted(vec![p.a.clone(), p.b.clone()])
            ),
            (casa.clone(), TipoScheda::Convivenza, vec![ospite.clone()]),
        ]
    );
    let mut with_archived = indirizzo("via", "nazionale", "10");
    with_archived["datiRichiesta"] = json!({"includiArchiviate": true});
    assert_eq!(
        cerca_famiglie(&f, with_archived).await,
        sorted(vec![p.f1.clone(), p.f3.clone(), casa])
    );
}

// ---------------------------------------------------------------------------------------
// Monitoring.

fn filtro(v: Value) -> FiltroOperazioni {
    let p: ParametriMonitoraggio = serde_json::from_value(v).unwrap();
    FiltroOperazioni::da_parametri(&p).unwrap()
}

fn monitor() -> CallerContext {
    ctx(Some(ROMA), &[Profilo::OperatoreMonitoraggio])
}

async fn elenco(f: &Fixture, who: &CallerContext, v: Value) -> Vec<SintesiOperazione> {
    f.registry
        .elenco_operazioni(who, &filtro(v))
        .await
        .unwrap()
        .operazioni
}

fn op_ids(list: &[SintesiOperazione]) -> Vec<String> {
    list.iter()
        .map(|o| o.id_operazione_anpr.to_string())
        .collect()
}

struct Operazioni {
    op1: String,
    op2: String,
    op3: String,
    op4: String,
    op5: String,
    op6: String,
    s1: String,
    f1: String,
}

/// Rome: op1 registration (1 March), op2 refused (5 March), op3 registration and op4 its
/// annulment (10 March), op6 registration at 00:30 in Rome on 1 April (22:30 UTC on
/// 31 March). Milan: op5 registration (15 March).
async fn registra_operazioni(f: &Fixture) -> Operazioni {
    let op = operatore();
    f.clock.set("2026-03-01T10:00:00Z");
    let r1 = iscrivi(
        f,
        &op,
        &iscrizione(1, "Rossi", "Mario", "M", "1980-01-01", "2020-03-01"),
    )
    .await;
    let (s1, f1) = ids(&r1);
    f.clock.set("2026-03-05T10:00:00Z");
    let mut bad = iscrizione(2, "Neri", "Ugo", "M", "1970-01-01", "2020-03-01");
    bad["motivoIscrizione"]["idMotivoIscrizione"] = json!("77");
    let req = serde_json::from_value(bad.clone()).unwrap();
    let r2 = f
        .registry
        .iscrizione_altri_motivi(&op, &req, &bad)
        .await
        .unwrap();
    assert!(!r2.eseguita);
    f.clock.set("2026-03-10T09:00:00Z");
    let r3 = iscrivi(
        f,
        &op,
        &iscrizione(3, "Verdi", "Luca", "M", "1990-01-01", "2020-03-01"),
    )
    .await;
    f.clock.set("2026-03-10T11:00:00Z");
    let raw =
        json!({"idOperazioneComune": "4", "idOperazioneANPR": r3.id_operazione_anpr.to_string()});
    let req: RichiestaAnnullamento = serde_json::from_value(raw.clone()).unwrap();
    let r4 = f
        .registry
        .annulla_operazione(&op, "1013", &req, &raw)
        .await
        .unwrap();
    assert!(r4.eseguita, "{}", r4.documento);
    f.clock.set("2026-03-15T10:00:00Z");
    let mut milano = iscrizione(1, "Bruni", "Sara", "F", "1995-01-01", "2020-03-01");
    milano["residenza"]["comune"] = json!(MILANO);
    let r5 = iscrivi(
        f,
        &ctx(Some(MILANO), &[Profilo::OperatoreAnagrafe]),
        &milano,
    )
    .await;
    f.clock.set("2026-03-31T22:30:00Z");
    let r6 = iscrivi(
        f,
        &op,
        &iscrizione(5, "Galli", "Elena", "F", "2000-01-01", "2020-03-01"),
    )
    .await;
    f.clock.set("2026-04-02T10:00:00Z");
    Operazioni {
        op1: r1.id_operazione_anpr.to_string(),
        op2: r2.id_operazione_anpr.to_string(),
        op3: r3.id_operazione_anpr.to_string(),
        op4: r4.id_operazione_anpr.to_string(),
        op5: r5.id_operazione_anpr.to_string(),
        op6: r6.id_operazione_anpr.to_string(),
        s1,
        f1,
    }
}

async fn monitoraggio_filtri_e_pagine(f: Fixture) {
    let o = registra_operazioni(&f).await;
    let m = monitor();
    let roma = vec![
        o.op1.clone(),
        o.op2.clone(),
        o.op3.clone(),
        o.op4.clone(),
        o.op6.clone(),
    ];
    let all = elenco(&f, &m, json!({})).await;
    assert_eq!(op_ids(&all), roma);
    // The listing is audited with the scope and the count.
    assert_eq!(
        summary(&audit_tail(&f, 1).await[0]),
        (
            TipoEvento::Lettura,
            "monitoraggioOperazioni".into(),
            Some(format!("comune:{ROMA}")),
            "5 operazioni".into()
        )
    );
    // The summary of a registration: header and records, no documents.
    let first = &all[0];
    assert_eq!(first.codice_servizio.as_str(), "1002");
    assert_eq!(first.stato, StatoOperazione::Eseguita);
    assert_eq!(
        first.id_operazione_comune.map(|i| i.to_string()),
        Some("1".into())
    );
    assert_eq!(first.comune.as_ref().map(|c| c.as_str()), Some(ROMA));
    assert_eq!(first.decorrenza, day("2020-03-01"));
    assert_eq!(
        first.data_ora_registrazione,
        "2026-03-01T10:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(first.utente, "BNCLRA70A41H501X");
    assert_eq!(first.canale, "rest");
    assert_eq!(
        first
            .soggetti
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![o.s1.clone()]
    );
    assert_eq!(
        first
            .famiglie
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![o.f1.clone()]
    );
    assert!(first.richiesta.is_none() && first.risposta.is_none());

    // By service code and state; annulment links both ways.
    let annulments = elenco(&f, &m, json!({"codiceServizio": "1013"})).await;
    assert_eq!(op_ids(&annulments), vec![o.op4.clone()]);
    assert_eq!(
        annulments[0].annulla.map(|i| i.to_string()),
        Some(o.op3.clone())
    );
    let annulled = elenco(&f, &m, json!({"stato": "annullata"})).await;
    assert_eq!(op_ids(&annulled), vec![o.op3.clone()]);
    assert_eq!(
        annulled[0].annullata_da.map(|i| i.to_string()),
        Some(o.op4.clone())
    );
    assert_eq!(
        op_ids(&elenco(&f, &m, json!({"stato": "rifiutata"})).await),
        vec![o.op2.clone()]
    );
    assert_eq!(
        op_ids(
            &elenco(
                &f,
                &m,
                json!({"stato": "eseguita", "codiceServizio": "1002"})
            )
            .await
        ),
        vec![o.op1.clone(), o.op6.clone()]
    );
    // By period: Italian civil dates, both ends included.
    assert_eq!(
        op_ids(&elenco(&f, &m, json!({"dal": "2026-03-05", "al": "2026-03-10"})).await),
        vec![o.op2.clone(), o.op3.clone(), o.op4.clone()]
    );
    assert_eq!(
        op_ids(&elenco(&f, &m, json!({"dal": "2026-04-01", "al": "2026-04-01"})).await),
        vec![o.op6.clone()]
    );
    assert_eq!(
        op_ids(&elenco(&f, &m, json!({"al": "2026-03-31"})).await),
        roma[..4].to_vec()
    );
    assert!(elenco(&f, &m, json!({"dal": "2026-04-02"}))
        .await
        .is_empty());
    // By record.
    assert_eq!(
        op_ids(&elenco(&f, &m, json!({"idANPR": o.s1})).await),
        vec![o.op1.clone()]
    );
    assert_eq!(
        op_ids(&elenco(&f, &m, json!({"idFamigliaConvivenzaANPR": o.f1})).await),
        vec![o.op1.clone()]
    );

    // Keyset pagination.
    let page = |dopo: Option<&str>| {
        let mut v = json!({"limit": "2"});
        if let Some(d) = dopo {
            v["dopo"] = json!(d);
        }
        filtro(v)
    };
    let p1 = f.registry.elenco_operazioni(&m, &page(None)).await.unwrap();
    assert_eq!(op_ids(&p1.operazioni), roma[..2].to_vec());
    let next = p1.prossima_pagina.unwrap().to_string();
    assert_eq!(next, o.op2);
    let p2 = f
        .registry
        .elenco_operazioni(&m, &page(Some(&next)))
        .await
        .unwrap();
    assert_eq!(op_ids(&p2.operazioni), roma[2..4].to_vec());
    let next = p2.prossima_pagina.unwrap().to_string();
    let p3 = f
        .registry
        .elenco_operazioni(&m, &page(Some(&next)))
        .await
        .unwrap();
    assert_eq!(op_ids(&p3.operazioni), roma[4..].to_vec());
    assert_eq!(p3.prossima_pagina, None);
    let exact = f
        .registry
        .elenco_operazioni(&m, &filtro(json!({"limit": "5"})))
        .await
        .unwrap();
    assert_eq!((exact.operazioni.len(), exact.prossima_pagina), (5, None));
}

async fn monitoraggio_ambito_documenti_e_rifiuti(f: Fixture) {
    let o = registra_operazioni(&f).await;
    let m = monitor();
    // Another municipality is out of a municipal profile's scope: denied, audited.
    let err = f
        .registry
        .elenco_operazioni(&m, &filtro(json!({"comune": MILANO})))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::AccessoNegato { .. }), "{err:?}");
    assert_eq!(
        summary(&audit_tail(&f, 1).await[0]),
        (
            TipoEvento::AccessoNegato,
            "monitoraggioOperazioni".into(),
            None,
            "negato".into()
        )
    );
    assert_eq!(elenco(&f, &m, json!({"comune": ROMA})).await.len(), 5);
    // National staff see every municipality, or the one they name.
    let gestore = ctx(None, &[Profilo::GestoreSistema]);
    assert_eq!(
        op_ids(&elenco(&f, &gestore, json!({})).await),
        vec![
            o.op1.clone(),
            o.op2.clone(),
            o.op3.clone(),
            o.op4.clone(),
            o.op5.clone(),
            o.op6.clone()
        ]
    );
    assert_eq!(
        op_ids(&elenco(&f, &gestore, json!({"comune": MILANO})).await),
        vec![o.op5.clone()]
    );
    assert_eq!(
        audit_tail(&f, 1).await[0].voce.oggetto.as_deref(),
        Some("comune:015146")
    );
    // A municipal profile acting for no municipality cannot be scoped.
    let err = f
        .registry
        .elenco_operazioni(
            &ctx(None, &[Profilo::OperatoreMonitoraggio]),
            &filtro(json!({})),
        )
        .await
        .unwrap_err();
    assert_eq!(refusal_codes(&err), vec!["EV002"]);
    // Profiles without monitoring are denied.
    let err = f
        .registry
        .elenco_operazioni(&operatore(), &filtro(json!({})))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ServiceError::AccessoNegato {
            permesso: anpr_service::authz::Permesso::Monitoraggio,
            ..
        }
    ));

    // Documents: only with the record-reading permission too; each one audited.
    let err = f
        .registry
        .elenco_operazioni(&m, &filtro(json!({"documenti": "true"})))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ServiceError::AccessoNegato {
            permesso: anpr_service::authz::Permesso::ConsultaScheda,
            ..
        }
    ));
    let superuser = ctx(Some(ROMA), &[Profilo::SuperUtente]);
    let with_docs = elenco(
        &f,
        &superuser,
        json!({"documenti": "true", "codiceServizio": "1002", "stato": "eseguita"}),
    )
    .await;
    assert_eq!(op_ids(&with_docs), vec![o.op1.clone(), o.op6.clone()]);
    let richiesta = with_docs[0].richiesta.as_ref().unwrap();
    assert_eq!(richiesta["generalita"]["cognome"], "Rossi");
    let risposta = with_docs[0].risposta.as_ref().unwrap();
    assert_eq!(risposta["idOperazioneANPR"], json!(o.op1));
    assert_eq!(risposta["esito"], "OK");
    let tail = audit_tail(&f, 3).await;
    assert_eq!(
        tail.iter().map(summary).collect::<Vec<_>>(),
        vec![
            (
                TipoEvento::Lettura,
                "monitoraggioOperazioni".into(),
                Some(format!("comune:{ROMA}")),
                "2 operazioni".into()
            ),
            (
                TipoEvento::Lettura,
                "monitoraggioOperazioni".into(),
                Some(format!("operazione:{}", o.op1)),
                "documenti".into()
            ),
            (
                TipoEvento::Lettura,
                "monitoraggioOperazioni".into(),
                Some(format!("operazione:{}", o.op6)),
                "documenti".into()
            ),
        ]
    );
    // Filters built by hand are checked again.
    let mut bad = filtro(json!({}));
    bad.dal = Some(day("2026-03-02"));
    bad.al = Some(day("2026-03-01"));
    let err = f.registry.elenco_operazioni(&m, &bad).await.unwrap_err();
    assert_eq!(refusal_codes(&err), vec!["EN478"]);
}

#[test]
fn malformed_monitoring_filters_get_their_codes() {
    let refused = |v: Value| {
        let p: ParametriMonitoraggio = serde_json::from_value(v).unwrap();
        FiltroOperazioni::da_parametri(&p)
            .unwrap_err()
            .into_iter()
            .map(|a| (a.codice, a.campo.unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let all = refused(json!({
        "stato": "boh", "codiceServizio": "12", "dal": "2026-02-30", "al": "domani",
        "idANPR": "abc", "dopo": "-1", "limit": "molti", "documenti": "si", "comune": "1"
    }));
    let mut campi: Vec<&str> = all.iter().map(|(_, c)| c.as_str()).collect();
    campi.sort_unstable();
    assert_eq!(
        campi,
        vec![
            "al",
            "codiceServizio",
            "comune",
            "dal",
            "documenti",
            "dopo",
            "idANPR",
            "limit",
            "stato"
        ]
    );
    assert!(all.iter().all(|(c, _)| c == "EV001"), "{all:?}");
    assert_eq!(
        refused(json!({"dal": "2026-03-02", "al": "2026-03-01"})),
        vec![("EN478".to_owned(), "al".to_owned())]
    );
    for limit in ["0", "501"] {
        assert_eq!(
            refused(json!({ "limit": limit })),
            vec![("EV001".to_owned(), "limit".to_owned())]
        );
    }
    assert_eq!(
        refused(json!({"idANPR": "1", "idFamigliaConvivenzaANPR": "2"})),
        vec![("EV050".to_owned(), "idANPR".to_owned())]
    );
    let ok = filtro(
        json!({"limit": "500", "stato": "eseguita", "dal": "2026-03-01", "al": "2026-03-01", "documenti": "false"}),
    );
    assert_eq!(
        (ok.limit, ok.stato, ok.documenti),
        (500, Some(StatoOperazione::Eseguita), false)
    );
    assert_eq!(
        filtro(json!({})).limit,
        anpr_service::monitoraggio::LIMITE_PREDEFINITO
    );
}

on_both_backends!(
    "2026-11-23T10:00:00Z",
    soggetti_per_ogni_criterio,
    chiavi_parziali_accenti_e_maiuscole,
    sezioni_data_di_riferimento_e_posizioni,
    limiti_rifiuti_e_audit,
    famiglie_per_id_componente_e_indirizzo,
    monitoraggio_filtri_e_pagine,
    monitoraggio_ambito_documenti_e_rifiuti,
);
