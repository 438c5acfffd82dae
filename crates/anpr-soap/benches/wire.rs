//! CPU cost of the SOAP wire layer for one 1002 registration, against a same-run
//! baseline: parsing the equivalent REST JSON body with `serde_json` (what the REST
//! edge does before calling the same use case). Measured: reading the envelope
//! (safe XML reader), checking the request against its XSD model, converting it to
//! the use case's JSON input, and writing the `Risposta1002` answer from a stored
//! response document.
//!
//! Run with `cargo bench -p anpr-soap --bench wire`.

use std::hint::black_box;

use anpr_soap::catalogo::servizio;
use anpr_soap::{busta, richieste, risposte, schema};
use criterion::{criterion_group, criterion_main, Criterion};

const REST: &str = r#"{"idOperazioneComune":"7","motivoIscrizione":{"idMotivoIscrizione":"4"},"dataDecorrenza":"2020-03-01","generalita":{"cognome":"Rossi","nome":"Anna","sesso":"F","dataNascita":"1980-01-01","luogoNascita":"H501"},"cittadinanza":[{"codiceStato":"100"}],"provenienza":{"codiceStato":"404"},"residenza":{"comune":"058091","cap":"00184","toponimo":{"specie":"VIA","denominazioneToponimo":"Nazionale"},"numeroCivico":{"numero":"10"}},"famiglia":{"codiceLegame":"1"}}"#;

const SOAP: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\
<s:Header><a:identitaSviluppo xmlns:a=\"urn:anpr:soap\"><utente>BNCLRA70A41H501X</utente><profili>OPERATORE_ANAGRAFE</profili></a:identitaSviluppo></s:Header>\
<s:Body><r:Richiesta1002 xmlns:r=\"http://sogei.it/ANPR/1000iscrizione\"><testataRichiesta><idOperazioneComune>7</idOperazioneComune>\
<codMittente>058091</codMittente><codDestinatario>999999</codDestinatario><operazioneRichiesta>1002</operazioneRichiesta>\
<dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta><tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio>\
<dataDecorrenza>2020-03-01</dataDecorrenza></testataRichiesta><motivoIscrizione><idMotivoIscrizione>4</idMotivoIscrizione></motivoIscrizione>\
<generalita1002><generalita><cognome>Rossi</cognome><nome>Anna</nome><sesso>F</sesso><dataNascita>1980-01-01</dataNascita>\
<luogoNascita><comune><nomeComune>ROMA</nomeComune><codiceIstat>058091</codiceIstat><siglaProvinciaIstat>RM</siglaProvinciaIstat></comune></luogoNascita>\
</generalita></generalita1002><cittadinanza><descrizioneStato>ITALIA</descrizioneStato><codiceStato>100</codiceStato></cittadinanza>\
<provenienza><localita><descrizioneStato>STATI UNITI</descrizioneStato><codiceStato>404</codiceStato></localita></provenienza>\
<residenza><tipoIndirizzo>1</tipoIndirizzo><indirizzo><cap>00184</cap><comune><nomeComune>ROMA</nomeComune><codiceIstat>058091</codiceIstat>\
<siglaProvinciaIstat>RM</siglaProvinciaIstat></comune><toponimo><specie>VIA</specie><denominazioneToponimo>Nazionale</denominazioneToponimo>\
</toponimo><numeroCivico><numero>10</numero></numeroCivico></indirizzo></residenza><famiglia><famiglia><tipoScheda>1</tipoScheda></famiglia>\
<legameSoggetto><dataDecorrenza>2020-03-01</dataDecorrenza><codiceLegame>1</codiceLegame></legameSoggetto></famiglia>\
<datiControllo><attribuzioneFamiglia>1</attribuzioneFamiglia></datiControllo></r:Richiesta1002></s:Body></s:Envelope>";

const DOCUMENTO: &str = r#"{"idOperazioneANPR":"12","codiceServizio":"1002","esito":"OK","ambiente":"test","dataOraRegistrazione":"2026-11-23T10:00:00.000Z","soggetti":[{"idANPR":"5"}],"famiglie":[{"idANPR":"3"}],"anomalie":[],"idOperazioneComune":"7","decorrenza":"2020-03-01"}"#;

fn wire(c: &mut Criterion) {
    let tabelle = anpr_tables::tables();
    let s = servizio("AnprService1000").expect("service");
    let op = s.operazione("Richiesta1002").expect("operation");
    // Warm the lazily built catalogue and schema table outside the measurement.
    assert!(schema::conosciuto("1000", "Richiesta1002"));

    let mut group = c.benchmark_group("soap_1002");
    group.bench_function("baseline: serde_json parse of the REST body", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(REST)).expect("json"))
    });
    group.bench_function("request: envelope + XSD check + conversion", |b| {
        b.iter(|| {
            let busta = busta::leggi(black_box(SOAP.as_bytes())).expect("envelope");
            assert!(schema::controlla("1000", &busta.corpo).is_empty());
            let t = richieste::testata(&busta.corpo);
            richieste::converti(tabelle, "1002", &busta.corpo, &t)
                .expect("served")
                .expect("converted")
        })
    });
    let busta = busta::leggi(SOAP.as_bytes()).expect("envelope");
    let t = richieste::testata(&busta.corpo);
    group.bench_function("request, part: envelope only", |b| {
        b.iter(|| busta::leggi(black_box(SOAP.as_bytes())).expect("envelope"))
    });
    group.bench_function("request, part: XSD check only", |b| {
        b.iter(|| schema::controlla("1000", black_box(&busta.corpo)))
    });
    group.bench_function("request, part: conversion only", |b| {
        b.iter(|| richieste::converti(tabelle, "1002", black_box(&busta.corpo), &t))
    });
    group.bench_function("response: Risposta1002 from the stored document", |b| {
        b.iter(|| risposte::operazione(s, op, &t, black_box(DOCUMENTO), &[]))
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
