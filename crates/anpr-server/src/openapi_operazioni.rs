//! The OpenAPI description of `POST /api/v1/operazioni/{codice}`: one request schema per
//! service, written after the service layer's request types (which refuse unknown
//! fields, so `additionalProperties: false` holds).

use serde_json::{json, Map, Value};

/// The services the endpoint runs, with their request schema and summary.
const SERVIZI: &[(&str, &str, &str)] = &[
    ("1001", "Richiesta1001", "Iscrizione per nascita"),
    (
        "1002",
        "Richiesta1002",
        "Iscrizione per altri motivi (anche reiscrizione)",
    ),
    ("1010", "Richiesta1010", "Iscrizione scheda convivenza"),
    (
        "1014",
        "Richiesta1014",
        "Procedimento amministrativo (avvio, aggiornamento, archiviazione)",
    ),
    ("A001", "RichiestaAire", "Iscrizione AIRE per nascita"),
    ("A002", "RichiestaAire", "Iscrizione AIRE per altri motivi"),
    ("5001", "Richiesta5001", "Mutazione famiglia/convivenza"),
    (
        "5005",
        "Richiesta5005",
        "Mutazione residenza (anche trasferimento tra comuni)",
    ),
    ("5008", "Richiesta5008", "Mutazione dati della scheda"),
    (
        "5010",
        "Richiesta5010",
        "Certificabilita' del soggetto (tabella Motivi di non certificabilita')",
    ),
    ("5013", "Richiesta5013", "Revoca di un dato"),
    ("5014", "Richiesta5014", "Rettifica dati"),
    ("5021", "Richiesta5021", "Gestione poligamia"),
    ("A006", "RichiestaA006", "Mutazione dati AIRE"),
    (
        "2001",
        "Richiesta2001",
        "Cancellazione per morte o morte presunta",
    ),
    ("2003", "Richiesta2003", "Cancellazione per altri motivi"),
    ("2009", "Richiesta2009", "Archiviazione scheda convivenza"),
    (
        "1013",
        "RichiestaAnnullamento",
        "Annullamento di un'iscrizione",
    ),
    (
        "5012",
        "RichiestaAnnullamento",
        "Annullamento di una mutazione",
    ),
    (
        "2011",
        "RichiestaAnnullamento",
        "Annullamento di una cancellazione",
    ),
];

fn s(t: &str) -> Value {
    json!({"type": t})
}

fn data() -> Value {
    json!({"type": "string", "format": "date"})
}

fn r(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

fn arr(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

/// A closed object schema.
fn obj(required: &[&str], props: &[(&str, Value)]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert((*k).to_owned(), v.clone());
    }
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": p})
}

/// The path item.
pub fn path(ambiente_header: &Value) -> Value {
    let codici: Vec<&str> = SERVIZI.iter().map(|(c, ..)| *c).collect();
    let elenco: Vec<String> = SERVIZI
        .iter()
        .map(|(c, schema, d)| format!("{c} {d} ({schema})"))
        .collect();
    let mut uniche: Vec<&str> = SERVIZI.iter().map(|(_, s, _)| *s).collect();
    uniche.sort_unstable();
    uniche.dedup();
    json!({"post": {
        "summary": "Operazione anagrafica",
        "description": format!("Servizi: {}. La risposta e' il documento memorizzato: reinviare lo stesso idOperazioneComune restituisce la stessa risposta byte per byte. Regole e codici: docs/OPERAZIONI.md.", elenco.join("; ")),
        "parameters": [ambiente_header, {"name": "codice", "in": "path", "required": true, "schema": {"type": "string", "enum": codici}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": uniche.iter().map(|s| r(s)).collect::<Vec<_>>()}}}},
        "responses": {
            "200": {"description": "Operazione eseguita", "content": {"application/json": {"schema": r("EsitoOperazione")}}},
            "400": {"description": "Corpo non conforme", "content": {"application/json": {"schema": r("Errore")}}},
            "403": {"description": "Accesso negato", "content": {"application/json": {"schema": r("Errore")}}},
            "422": {"description": "Operazione rifiutata (documento memorizzato, con riferimento)", "content": {"application/json": {"schema": r("EsitoOperazione")}}}
        }
    }})
}

/// The request schemas of the operations, to merge into `components.schemas`.
pub fn schemas() -> Map<String, Value> {
    let id = || s("string");
    let soggetto = obj(
        &[],
        &[("idSchedaSoggettoANPR", id()), ("codiceFiscale", id())],
    );
    let soggetto_legame = obj(
        &[],
        &[
            ("idSchedaSoggettoANPR", id()),
            ("codiceFiscale", id()),
            ("codiceLegame", id()),
        ],
    );
    let persona = obj(
        &[],
        &[
            ("idSchedaSoggettoANPR", id()),
            ("codiceFiscale", id()),
            ("cognome", id()),
            ("nome", id()),
        ],
    );
    let indirizzo = json!({"type": "object", "required": ["comune", "toponimo"], "properties": {
        "cap": id(), "comune": {"type": "string", "pattern": "^[0-9]{6}$"}, "frazione": id(),
        "toponimo": obj(&["specie", "denominazioneToponimo"], &[("codSpecie", id()), ("specie", id()), ("denominazioneToponimo", id()), ("codToponimo", id())]),
        "numeroCivico": obj(&[], &[("numero", id()), ("lettera", id()), ("esponente1", id()), ("scala", id()), ("piano", id()), ("interno", id())])
    }});
    let estero = obj(
        &["codiceStato", "localita", "indirizzo"],
        &[
            ("codiceStato", id()),
            ("localita", id()),
            ("provinciaContea", id()),
            ("cap", id()),
            ("indirizzo", id()),
        ],
    );
    let generalita = obj(
        &["cognome", "nome", "sesso", "dataNascita", "luogoNascita"],
        &[
            ("cognome", id()),
            ("nome", id()),
            ("sesso", json!({"enum": ["M", "F"]})),
            ("dataNascita", data()),
            (
                "luogoNascita",
                json!({"type": "string", "description": "codice catastale valido alla data di nascita (Z... per gli stati esteri)"}),
            ),
            ("codiceFiscale", id()),
            ("idSchedaSoggettoComune", id()),
            (
                "idSchedaSoggettoANPR",
                json!({"type": "string", "description": "per reiscrivere un soggetto cancellato"}),
            ),
        ],
    );
    let famiglia = obj(
        &["codiceLegame"],
        &[
            ("idFamigliaConvivenzaANPR", id()),
            ("idFamigliaConvivenzaComune", id()),
            ("codiceLegame", id()),
        ],
    );
    let motivo = obj(
        &["idMotivoIscrizione"],
        &[("idMotivoIscrizione", id()), ("note", id())],
    );
    let cittadinanze = arr(obj(
        &["codiceStato"],
        &[("codiceStato", id()), ("dataValidita", data())],
    ));
    let provenienza = obj(&[], &[("comune", id()), ("codiceStato", id())]);
    let atto = json!({"type": "object", "required": ["comuneRegistrazione", "anno", "numeroAtto"], "properties": {"comuneRegistrazione": id(), "anno": s("integer"), "ufficioMunicipio": id(), "parte": id(), "serie": id(), "numeroAtto": id(), "volume": id(), "dataFormazioneAtto": data(), "trascritto": s("boolean")}});
    let evento = obj(
        &["dataEvento"],
        &[
            ("dataEvento", data()),
            ("coniuge", persona.clone()),
            ("luogoEvento", id()),
            ("atto", atto.clone()),
            ("tipoCessazione", id()),
        ],
    );
    let date_rettifica = obj(
        &[],
        &[
            ("dataDecorrenzaResidenza", data()),
            ("dataPrimaIscrizioneComune", data()),
            ("dataIngressoFamiglia", data()),
            ("dataDecorrenzaLegame", data()),
        ],
    );
    let ioc = || json!({"type": "string", "pattern": "^[0-9]{1,18}$", "description": "idOperazioneComune: crescente per comune; reinvio = stessa risposta"});
    let mut m = Map::new();
    let mut add = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    add(
        "Richiesta1001",
        obj(
            &["generalita"],
            &[
                ("idOperazioneComune", ioc()),
                ("generalita", generalita.clone()),
                ("attoNascita", atto.clone()),
                ("cittadinanza", cittadinanze.clone()),
                ("paternita", persona.clone()),
                ("maternita", persona.clone()),
                ("famiglia", famiglia.clone()),
                ("residenza", indirizzo.clone()),
            ],
        ),
    );
    add(
        "Richiesta1002",
        obj(
            &[
                "motivoIscrizione",
                "dataDecorrenza",
                "generalita",
                "residenza",
                "famiglia",
            ],
            &[
                ("idOperazioneComune", ioc()),
                ("motivoIscrizione", motivo.clone()),
                ("dataDecorrenza", data()),
                ("generalita", generalita.clone()),
                ("cittadinanza", cittadinanze.clone()),
                ("provenienza", provenienza.clone()),
                ("residenza", indirizzo.clone()),
                ("famiglia", famiglia.clone()),
            ],
        ),
    );
    add(
        "Richiesta1010",
        obj(
            &[
                "dataDecorrenza",
                "denominazioneConvivenza",
                "specieConvivenza",
                "residenza",
            ],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("denominazioneConvivenza", id()),
                ("specieConvivenza", id()),
                ("residenza", indirizzo.clone()),
                ("idFamigliaConvivenzaComune", id()),
            ],
        ),
    );
    add(
        "RichiestaAire",
        obj(
            &[
                "motivoIscrizione",
                "generalita",
                "residenzaEstera",
                "consolato",
                "famiglia",
            ],
            &[
                ("idOperazioneComune", ioc()),
                ("motivoIscrizione", motivo),
                ("dataDecorrenza", data()),
                ("generalita", generalita),
                ("cittadinanza", cittadinanze.clone()),
                ("paternita", persona.clone()),
                ("maternita", persona.clone()),
                ("attoNascita", atto.clone()),
                ("residenzaEstera", estero.clone()),
                ("consolato", id()),
                ("iniziativaIscrizione", id()),
                ("individuazioneComuneIscrizione", id()),
                ("annoEspatrio", s("integer")),
                ("famiglia", famiglia),
            ],
        ),
    );
    add(
        "Richiesta5001",
        obj(
            &["dataDecorrenza", "idFamigliaConvivenzaANPR"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("idFamigliaConvivenzaANPR", id()),
                ("tipoMutazione", arr(id())),
                ("elencoSoggettiFamiglia", arr(soggetto_legame.clone())),
                (
                    "scissione",
                    obj(
                        &["soggetti"],
                        &[
                            ("soggetti", arr(soggetto_legame.clone())),
                            ("idFamigliaConvivenzaComune", id()),
                        ],
                    ),
                ),
                ("residenza", indirizzo.clone()),
                (
                    "datiConvivenza",
                    obj(
                        &[],
                        &[
                            ("denominazioneConvivenza", id()),
                            ("specieConvivenza", id()),
                        ],
                    ),
                ),
            ],
        ),
    );
    add(
        "Richiesta5005",
        obj(
            &["dataDecorrenza", "soggetti", "residenza"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("tipoMutazione", id()),
                ("soggetti", arr(soggetto_legame.clone())),
                ("residenza", indirizzo),
                ("presso", id()),
                (
                    "famiglia",
                    obj(
                        &[],
                        &[
                            ("idFamigliaConvivenzaANPR", id()),
                            ("idFamigliaConvivenzaComune", id()),
                        ],
                    ),
                ),
            ],
        ),
    );
    add(
        "Richiesta5008",
        obj(
            &["dataDecorrenza", "soggetto"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("soggetto", soggetto.clone()),
                ("tipoMutazione", arr(id())),
                (
                    "generalita",
                    obj(
                        &[],
                        &[
                            ("cognome", id()),
                            ("nome", id()),
                            ("sesso", id()),
                            ("dataNascita", data()),
                            ("luogoNascita", id()),
                            ("codiceFiscale", id()),
                        ],
                    ),
                ),
                ("cittadinanza", cittadinanze),
                ("paternita", persona.clone()),
                ("maternita", persona.clone()),
                ("matrimonio", evento.clone()),
                ("vedovanza", evento.clone()),
                ("cessazioneMatrimonio", evento.clone()),
                ("unioneCivile", evento.clone()),
                ("scioglimentoUnione", evento.clone()),
                ("convivenzaDiFatto", evento.clone()),
                ("risoluzioneConvivenza", evento.clone()),
                ("permessoSoggiorno", s("object")),
                ("altriDati", s("object")),
                ("attoNascita", atto.clone()),
            ],
        ),
    );
    add(
        "Richiesta5013",
        obj(
            &["dataDecorrenza", "soggetto", "tipoRevoca", "motivoRevoca"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("soggetto", soggetto.clone()),
                ("tipoRevoca", id()),
                ("motivoRevoca", id()),
                ("note", id()),
            ],
        ),
    );
    add(
        "Richiesta5010",
        obj(
            &["soggetto", "certificabilita"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("soggetto", soggetto.clone()),
                (
                    "certificabilita",
                    obj(
                        &["soggettoCertificabile"],
                        &[("soggettoCertificabile", id())],
                    ),
                ),
            ],
        ),
    );
    add(
        "Richiesta5021",
        obj(
            &["tipoMutazione", "matrimonioPerRicerca"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("tipoMutazione", id()),
                (
                    "matrimonioPerRicerca",
                    obj(
                        &["coniuge1"],
                        &[
                            ("coniuge1", soggetto.clone()),
                            ("dataMatrimonio", data()),
                            ("coniuge2", persona.clone()),
                        ],
                    ),
                ),
                ("matrimonio", evento.clone()),
                ("vedovanza", evento.clone()),
                (
                    "separazioneAnnullamentoCessazioneMatrimonio",
                    evento.clone(),
                ),
                (
                    "datiAnnullamento",
                    obj(
                        &["idOperazioneANPR"],
                        &[("idOperazioneANPR", id()), ("note", id())],
                    ),
                ),
            ],
        ),
    );
    add(
        "Richiesta5014",
        obj(
            &["soggetto"],
            &[
                ("idOperazioneComune", ioc()),
                ("soggetto", soggetto.clone()),
                ("richiestaRettifica101", date_rettifica.clone()),
                (
                    "richiestaRettifica102",
                    obj(
                        &["idMotivoIscrizione"],
                        &[
                            ("idMotivoIscrizione", id()),
                            ("note", id()),
                            ("provenienza", provenienza.clone()),
                        ],
                    ),
                ),
                ("richiestaRettifica103", date_rettifica.clone()),
                ("richiestaRettifica104", date_rettifica),
                (
                    "richiestaRettifica105",
                    obj(&["luogoNascita"], &[("luogoNascita", id())]),
                ),
            ],
        ),
    );
    add(
        "RichiestaA006",
        obj(
            &["dataDecorrenza", "soggetto"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("soggetto", soggetto.clone()),
                ("residenzaEstera", estero.clone()),
                ("consolato", id()),
                ("iniziativaIscrizione", id()),
                ("individuazioneComuneIscrizione", id()),
                ("annoEspatrio", s("integer")),
                ("tuttaLaFamiglia", s("boolean")),
                ("idFamigliaConvivenzaANPR", id()),
            ],
        ),
    );
    add(
        "Richiesta2001",
        obj(
            &["motivoCancellazione", "soggetto"],
            &[
                ("idOperazioneComune", ioc()),
                ("motivoCancellazione", json!({"enum": ["1", "2"]})),
                ("soggetto", soggetto.clone()),
                (
                    "datiDecesso",
                    obj(
                        &["dataMorte"],
                        &[
                            ("dataMorte", data()),
                            ("comuneMorte", id()),
                            ("statoMorte", id()),
                            ("attoMorte", atto),
                        ],
                    ),
                ),
                (
                    "datiSentenza",
                    obj(
                        &["dataSentenza", "tribunale"],
                        &[
                            ("dataSentenza", data()),
                            ("tribunale", id()),
                            ("numeroSentenza", id()),
                        ],
                    ),
                ),
                ("elencoSoggettiFamiglia", arr(soggetto_legame.clone())),
            ],
        ),
    );
    add(
        "Richiesta2003",
        obj(
            &["motivoCancellazione", "dataDecorrenza", "soggetto"],
            &[
                ("idOperazioneComune", ioc()),
                ("motivoCancellazione", id()),
                ("dataDecorrenza", data()),
                ("soggetto", soggetto.clone()),
                ("destinazione", provenienza),
                (
                    "aire",
                    obj(
                        &["consolato", "residenzaEstera"],
                        &[
                            ("consolato", id()),
                            ("residenzaEstera", estero),
                            ("annoEspatrio", s("integer")),
                            ("idFamigliaConvivenzaANPR", id()),
                            ("codiceLegame", id()),
                        ],
                    ),
                ),
                ("soggettoPrevalente", soggetto),
                ("note", id()),
                ("elencoSoggettiFamiglia", arr(soggetto_legame)),
            ],
        ),
    );
    add(
        "Richiesta2009",
        obj(
            &["dataDecorrenza", "idFamigliaConvivenzaANPR"],
            &[
                ("idOperazioneComune", ioc()),
                ("dataDecorrenza", data()),
                ("idFamigliaConvivenzaANPR", id()),
            ],
        ),
    );
    add(
        "RichiestaAnnullamento",
        obj(
            &["idOperazioneANPR"],
            &[
                ("idOperazioneComune", ioc()),
                ("idOperazioneANPR", id()),
                ("note", id()),
                ("annullamentoAttribuzioneCF", s("boolean")),
            ],
        ),
    );
    // The services that can complete a suspended operation (SPEC M-2.5).
    for k in [
        "Richiesta1001",
        "Richiesta1002",
        "RichiestaAire",
        "Richiesta5008",
    ] {
        if let Some(Value::Object(p)) = m.get_mut(k).and_then(|v| v.get_mut("properties")) {
            p.insert("idOperazioneSospesa".into(), json!({"type": "string", "description": "operazione sospesa che questa richiesta completa"}));
        }
    }
    // The services whose XSD request carries `datiDelProcedimento` (SPEC M-2.6).
    let procedimento = obj(
        &[],
        &[
            ("numeroPraticaAnpr", id()),
            ("numeroPraticaComune", id()),
            ("dataDefinizionePratica", data()),
        ],
    );
    for k in [
        "Richiesta1001",
        "Richiesta1002",
        "Richiesta1010",
        "RichiestaAire",
        "Richiesta2001",
        "Richiesta2003",
        "Richiesta5001",
        "Richiesta5005",
        "Richiesta5008",
        "Richiesta5021",
        "RichiestaA006",
    ] {
        if let Some(Value::Object(p)) = m.get_mut(k).and_then(|v| v.get_mut("properties")) {
            p.insert("datiDelProcedimento".into(), procedimento.clone());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_of_the_endpoint_is_documented_with_its_schema() {
        let spec = crate::openapi::spec();
        let schemas = spec["components"]["schemas"].as_object().unwrap();
        for (codice, schema, _) in SERVIZI {
            assert!(schemas.contains_key(*schema), "{codice}: {schema}");
        }
        let documented: Vec<&str> = SERVIZI.iter().map(|(c, ..)| *c).collect();
        let mut served = crate::rest::SERVIZI.to_vec();
        served.sort_unstable();
        let mut d = documented.clone();
        d.sort_unstable();
        assert_eq!(d, served);
    }
}
