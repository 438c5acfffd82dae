//! The OpenAPI 3.1 document of `/api/v1`, written out by hand from the handlers'
//! request and response shapes. A test walks every documented path against the router,
//! so a route missing from either side fails the build.

use axum::Json;
use serde_json::{json, Value};

fn errore_ref() -> Value {
    json!({"description": "Richiesta rifiutata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}})
}

fn ok_ref(schema: &str) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn body_ref(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn post(summary: &str, body: &str, response: &str) -> Value {
    json!({"post": {"summary": summary, "requestBody": body_ref(body), "responses": {"200": ok_ref(response), "400": errore_ref(), "403": errore_ref(), "404": errore_ref(), "422": errore_ref()}}})
}

/// The document.
pub fn spec() -> Value {
    let mut doc = spec_base();
    let ambiente_header = json!({"name": "X-ANPR-Ambiente", "in": "header", "required": false, "schema": {"type": "string", "enum": ["test", "presubentro", "produzione"]}, "description": "Ambiente (data set) della richiesta; predefinito quello di avvio del server."});
    merge(
        &mut doc["paths"],
        paths_sospese_procedimenti(&ambiente_header),
    );
    merge(
        &mut doc["components"]["schemas"],
        schemas_sospese_procedimenti(),
    );
    doc
}

fn spec_base() -> Value {
    let ambiente_header = json!({"name": "X-ANPR-Ambiente", "in": "header", "required": false, "schema": {"type": "string", "enum": ["test", "presubentro", "produzione"]}, "description": "Ambiente (data set) della richiesta; predefinito quello di avvio del server."});
    let data_rif = json!({"name": "dataRiferimento", "in": "query", "required": false, "schema": {"type": "string", "format": "date"}, "description": "Solo le righe valide a questa data."});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ANPR - Anagrafe Nazionale della Popolazione Residente",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "API REST del registro. Nomi dei campi dal vocabolario ANPR (XSD pubblicati). Gli identificativi personali viaggiano nel corpo delle richieste, mai nell'URL. Ogni risposta indica l'ambiente nell'intestazione X-ANPR-Ambiente.",
            "license": {"name": "EUPL-1.2", "identifier": "EUPL-1.2"}
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/healthz": {"get": {"summary": "Stato del servizio", "responses": {"200": ok_ref("Salute"), "503": ok_ref("Salute")}}},
            "/metrics": {"get": {"summary": "Metriche Prometheus", "responses": {"200": {"description": "Formato di esposizione Prometheus", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/api/v1/openapi.json": {"get": {"summary": "Questo documento", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/api/v1/tabelle": {"get": {"summary": "Elenco delle tabelle di decodifica", "parameters": [ambiente_header], "responses": {"200": ok_ref("ElencoTabelle")}}},
            "/api/v1/tabelle/comuni": {"get": {
                "summary": "Comuni (archivio storico ANPR) con filtri",
                "parameters": [
                    ambiente_header,
                    {"name": "stato", "in": "query", "schema": {"type": "string", "enum": ["A", "C", "D"]}, "description": "A attivo, C cessato, D da istituire"},
                    data_rif,
                    {"name": "denominazione", "in": "query", "schema": {"type": "string"}, "description": "Nome italiano o nella seconda lingua; maiuscole e accenti ignorati"},
                    {"name": "codiceIstat", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{6}$"}},
                    {"name": "codiceCatastale", "in": "query", "schema": {"type": "string", "pattern": "^[A-Za-z][0-9]{3}$"}}
                ],
                "responses": {"200": ok_ref("ElencoComuni"), "400": errore_ref()}
            }},
            "/api/v1/tabelle/{nome}": {"get": {
                "summary": "Righe di una tabella di decodifica",
                "parameters": [ambiente_header, {"name": "nome", "in": "path", "required": true, "schema": {"type": "string"}}, data_rif],
                "responses": {"200": ok_ref("RigheTabella"), "400": errore_ref(), "422": errore_ref()}
            }},
            "/api/v1/codice-fiscale/calcola": post("Calcolo del codice fiscale e degli omocodici", "RichiestaCalcoloCf", "RispostaCalcoloCf"),
            "/api/v1/codice-fiscale/verifica": post("Verifica formale di un codice fiscale", "RichiestaCodiceFiscale", "RispostaVerificaCf"),
            "/api/v1/codice-fiscale/decodifica": post("Decodifica di un codice fiscale", "RichiestaCodiceFiscale", "RispostaDecodificaCf"),
            "/api/v1/soggetti/consulta": post("Consultazione della scheda individuale (anche alla data)", "RichiestaConsultaSoggetto", "SchedaLetta"),
            "/api/v1/famiglie/consulta": post("Consultazione della scheda famiglia/convivenza con i componenti", "RichiestaConsultaFamiglia", "FamigliaLetta"),
            "/api/v1/operazioni/{codice}": {"post": {
                "summary": "Operazione anagrafica (1002 iscrizione per altri motivi; 1013, 5012, 2011 annullamenti). La risposta e' il documento memorizzato: reinviare lo stesso idOperazioneComune restituisce la stessa risposta.",
                "parameters": [ambiente_header, {"name": "codice", "in": "path", "required": true, "schema": {"type": "string", "enum": ["1002", "1013", "5012", "2011"]}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "description": "Richiesta1002 (motivoIscrizione, dataDecorrenza, generalita, cittadinanza, provenienza, residenza, famiglia) o RichiestaAnnullamento (idOperazioneANPR)"}}}},
                "responses": {"200": ok_ref("EsitoOperazione"), "400": errore_ref(), "403": errore_ref(), "422": ok_ref("EsitoOperazione")}
            }},
            "/api/v1/audit/verifica": {"post": {"summary": "Verifica della catena di audit dell'ambiente", "responses": {"200": ok_ref("RapportoAudit"), "403": errore_ref()}}}
        },
        "components": {"schemas": {
            "Anomalia": {"type": "object", "required": ["codice", "gravita", "testo"], "properties": {
                "codice": {"type": "string", "description": "Codice ANPR (errors.csv) o codice proprio documentato"},
                "gravita": {"type": "string", "enum": ["E", "W"]},
                "testo": {"type": "string"},
                "campo": {"type": "string"}, "valore": {"type": "string"}, "atteso": {"type": "string"}
            }},
            "Errore": {"type": "object", "required": ["esito", "anomalie"], "properties": {
                "esito": {"const": "KO"},
                "ambiente": {"type": "string"},
                "anomalie": {"type": "array", "items": {"$ref": "#/components/schemas/Anomalia"}},
                "riferimento": {"type": "object", "properties": {"data": {"type": "string", "format": "date-time"}, "id": {"type": "string"}}}
            }},
            "Salute": {"type": "object", "required": ["status", "version", "environment", "backend"], "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]}, "version": {"type": "string"},
                "environment": {"type": "string"}, "backend": {"type": "string", "enum": ["sqlite", "postgres"]},
                "ambienti": {"type": "object"}, "tabelle": {"type": "string"}
            }},
            "ElencoTabelle": {"type": "object", "required": ["totale", "tabelle"], "properties": {"totale": {"type": "integer"}, "versione": {"type": "string"}, "tabelle": {"type": "array", "items": {"type": "object"}}, "ambiente": {"type": "string"}}},
            "ElencoComuni": {"type": "object", "required": ["totale", "comuni"], "properties": {"totale": {"type": "integer"}, "comuni": {"type": "array", "items": {"type": "object"}}, "ambiente": {"type": "string"}}},
            "RigheTabella": {"type": "object", "required": ["nome", "totale", "righe"], "properties": {"nome": {"type": "string"}, "versione": {"type": "string"}, "totale": {"type": "integer"}, "righe": {"type": "array", "items": {"type": "object"}}}},
            "RichiestaCalcoloCf": {"type": "object", "additionalProperties": false, "required": ["cognome", "nome", "sesso", "dataNascita", "luogoNascita"], "properties": {
                "cognome": {"type": "string"}, "nome": {"type": "string"}, "sesso": {"type": "string", "enum": ["M", "F"]},
                "dataNascita": {"type": "string", "format": "date"},
                "luogoNascita": {"type": "string", "description": "Codice catastale del comune di nascita (valido alla data) o codice Z dello stato estero"}
            }},
            "RispostaCalcoloCf": {"type": "object", "required": ["codiceFiscale", "omocodici"], "properties": {"codiceFiscale": {"type": "string"}, "omocodici": {"type": "array", "items": {"type": "string"}}, "luogoNascita": {"type": "object"}}},
            "RichiestaCodiceFiscale": {"type": "object", "additionalProperties": false, "required": ["codiceFiscale"], "properties": {"codiceFiscale": {"type": "string"}}},
            "RispostaVerificaCf": {"type": "object", "required": ["codiceFiscale", "valido"], "properties": {"codiceFiscale": {"type": "string"}, "valido": {"type": "boolean"}, "tipo": {"type": "string"}, "formaBase": {"type": "string"}, "livelloOmocodia": {"type": "integer"}, "anomalie": {"type": "array", "items": {"$ref": "#/components/schemas/Anomalia"}}}},
            "RispostaDecodificaCf": {"type": "object", "properties": {"codiceFiscale": {"type": "string"}, "sesso": {"type": "string"}, "giorno": {"type": "integer"}, "mese": {"type": "integer"}, "annoDueCifre": {"type": "integer"}, "anniCandidati": {"type": "array", "items": {"type": "integer"}}, "dataNascitaProbabile": {"type": "string", "format": "date"}, "codiceCatastale": {"type": "string"}, "luogoNascita": {"type": "object"}, "livelloOmocodia": {"type": "integer"}, "formaBase": {"type": "string"}}},
            "RichiestaConsultaSoggetto": {"type": "object", "additionalProperties": false, "required": ["idANPR"], "properties": {"idANPR": {"type": "string", "pattern": "^[0-9]{1,16}$"}, "dataRiferimento": {"type": "string", "format": "date"}, "sezioni": {"type": "array", "items": {"type": "string"}}}},
            "RichiestaConsultaFamiglia": {"type": "object", "additionalProperties": false, "required": ["idANPR"], "properties": {"idANPR": {"type": "string", "pattern": "^[0-9]{1,16}$"}, "dataRiferimento": {"type": "string", "format": "date"}}},
            "SchedaLetta": {"type": "object", "properties": {"idAnpr": {"type": "string"}, "dataRiferimento": {"type": "string", "format": "date"}, "scheda": {"type": "object"}}},
            "FamigliaLetta": {"type": "object", "properties": {"idAnpr": {"type": "string"}, "dataRiferimento": {"type": "string", "format": "date"}, "scheda": {"type": "object"}, "componenti": {"type": "array", "items": {"type": "object"}}}},
            "EsitoOperazione": {"type": "object", "required": ["idOperazioneANPR", "esito", "codiceServizio"], "properties": {"idOperazioneANPR": {"type": "string"}, "idOperazioneComune": {"type": "string"}, "codiceServizio": {"type": "string"}, "esito": {"type": "string", "enum": ["OK", "KO"]}, "decorrenza": {"type": "string", "format": "date"}, "dataOraRegistrazione": {"type": "string", "format": "date-time"}, "soggetti": {"type": "array", "items": {"type": "object"}}, "famiglie": {"type": "array", "items": {"type": "object"}}, "anomalie": {"type": "array", "items": {"$ref": "#/components/schemas/Anomalia"}}, "riferimento": {"type": "object"}}},
            "RapportoAudit": {"type": "object", "properties": {"ambiente": {"type": "string"}, "vociVerificate": {"type": "integer"}, "violazione": {"type": ["string", "null"]}, "voce": {"type": ["integer", "null"]}}}
        }}
    })
}

/// Paths of suspended operations and proceedings, and the operations path with 1014
/// (kept apart from [`spec_base`], whose entries they replace or add to: one `json!`
/// literal has a recursion limit).
fn paths_sospese_procedimenti(ambiente_header: &Value) -> Value {
    json!({
            "/api/v1/operazioni/{codice}": {"post": {
                "summary": "Operazione anagrafica (1002 iscrizione per altri motivi; 1014 procedimento amministrativo; 1013, 5012, 2011 annullamenti). La risposta e' il documento memorizzato: reinviare lo stesso idOperazioneComune restituisce la stessa risposta.",
                "parameters": [ambiente_header.clone(), {"name": "codice", "in": "path", "required": true, "schema": {"type": "string", "enum": ["1002", "1013", "1014", "5012", "2011"]}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"type": "object", "description": "Richiesta1002 (motivoIscrizione, dataDecorrenza, generalita, cittadinanza, provenienza, residenza, famiglia; idOperazioneSospesa per completare un'operazione sospesa)"},
                    {"$ref": "#/components/schemas/Richiesta1014"},
                    {"type": "object", "description": "RichiestaAnnullamento (idOperazioneANPR)"}
                ]}}}},
                "responses": {"200": ok_ref("EsitoOperazione"), "400": errore_ref(), "403": errore_ref(), "422": ok_ref("EsitoOperazione")}
            }},
            "/api/v1/operazioni-sospese": {
                "get": {
                    "summary": "Operazioni sospese dell'operatore (di tutto il comune per un superutente), senza la richiesta salvata",
                    "parameters": [ambiente_header.clone(),
                        {"name": "codiceServizio", "in": "query", "required": false, "schema": {"type": "string", "enum": ["1001", "1002", "A001", "A002", "5008"]}},
                        {"name": "limite", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                    "responses": {"200": ok_ref("ElencoSospese"), "400": errore_ref(), "403": errore_ref(), "422": errore_ref()}
                },
                "post": {
                    "summary": "Salva un'operazione sospesa (nuova, o nuovo contenuto di una esistente con idOperazioneSospesa)",
                    "parameters": [ambiente_header.clone()],
                    "requestBody": body_ref("RichiestaSospesa"),
                    "responses": {"200": ok_ref("OperazioneSospesa"), "400": errore_ref(), "403": errore_ref(), "404": errore_ref(), "422": errore_ref()}
                }
            },
            "/api/v1/operazioni-sospese/ricerca": {"post": {
                "summary": "Operazioni sospese con tutti i filtri (soggetto, codice fiscale, operatore) nel corpo",
                "parameters": [ambiente_header.clone()],
                "requestBody": body_ref("FiltroSospese"),
                "responses": {"200": ok_ref("ElencoSospese"), "400": errore_ref(), "403": errore_ref(), "422": errore_ref()}
            }},
            "/api/v1/operazioni-sospese/{id}": {
                "get": {
                    "summary": "Riprende un'operazione sospesa: la restituisce con la richiesta salvata (solo il titolare o un superutente)",
                    "parameters": [ambiente_header.clone(), {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
                    "responses": {"200": ok_ref("OperazioneSospesa"), "400": errore_ref(), "403": errore_ref(), "404": errore_ref(), "422": errore_ref()}
                },
                "delete": {
                    "summary": "Elimina un'operazione sospesa (solo il titolare o un superutente)",
                    "parameters": [ambiente_header.clone(), {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
                    "responses": {"200": ok_ref("EsitoEliminazione"), "400": errore_ref(), "403": errore_ref(), "404": errore_ref(), "422": errore_ref()}
                }
            },
            "/api/v1/procedimenti/ricerca": {"post": {
                "summary": "Ricerca dei procedimenti amministrativi del comune (per numero, stato, soggetto, operazione collegata, periodo di avvio), alla data di riferimento",
                "parameters": [ambiente_header.clone()],
                "requestBody": body_ref("RicercaProcedimenti"),
                "responses": {"200": ok_ref("EsitoRicercaProcedimenti"), "400": errore_ref(), "403": errore_ref(), "422": errore_ref()}
            }}
    })
}

/// Schemas of suspended operations and proceedings (and `EsitoOperazione`, which
/// names proceedings).
fn schemas_sospese_procedimenti() -> Value {
    json!({
            "EsitoOperazione": {"type": "object", "required": ["idOperazioneANPR", "esito", "codiceServizio"], "properties": {"idOperazioneANPR": {"type": "string"}, "idOperazioneComune": {"type": "string"}, "codiceServizio": {"type": "string"}, "esito": {"type": "string", "enum": ["OK", "KO"]}, "decorrenza": {"type": "string", "format": "date"}, "dataOraRegistrazione": {"type": "string", "format": "date-time"}, "soggetti": {"type": "array", "items": {"type": "object"}}, "famiglie": {"type": "array", "items": {"type": "object"}}, "procedimenti": {"type": "array", "items": {"type": "object", "properties": {"numeroPraticaAnpr": {"type": "string"}}}}, "anomalie": {"type": "array", "items": {"$ref": "#/components/schemas/Anomalia"}}, "riferimento": {"type": "object"}}},
            "Richiesta1014": {"type": "object", "additionalProperties": false, "required": ["procedimentoIstruttoria"], "properties": {
                "idOperazioneComune": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                "procedimentoIstruttoria": {"type": "object", "additionalProperties": false, "required": ["tipoOperazione", "dataStato", "statoProcedimento"], "properties": {
                    "numeroPraticaAnpr": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    "numeroPraticaComune": {"type": "string", "pattern": "^[0-9a-zA-Z -]{1,20}$"},
                    "tipoOperazione": {"type": "string", "enum": ["I", "M", "C", "A", "E"], "description": "I apertura, M modifica, C chiusura (archiviazione), A associa soggetti/operazioni, E elimina soggetti/operazioni"},
                    "motivoAvvio": {"type": "string", "description": "Codice della tabella Innesco procedimento amministrativo (obbligatorio con I)"},
                    "dataStato": {"type": "string", "format": "date", "description": "Data dello stato; e' la decorrenza dell'operazione"},
                    "statoProcedimento": {"type": "string", "description": "Codice della tabella Stato procedimento amministrativo: 1 solo con I, 2 solo con C"},
                    "dataChiusura": {"type": "string", "format": "date"},
                    "esitoChiusura": {"type": "string", "enum": ["C", "R", "S"]},
                    "noteChiusura": {"type": "string", "maxLength": 240},
                    "noteEsito": {"type": "string", "maxLength": 240}
                }},
                "generalitaPerRicerca": {"type": "array", "maxItems": 100, "items": {"type": "object", "additionalProperties": false, "properties": {
                    "idSchedaSoggettoANPR": {"type": "string"}, "codiceFiscale": {"type": "string"}, "idSchedaSoggettoComune": {"type": "string"}, "cognome": {"type": "string"}, "nome": {"type": "string"}}}},
                "operazioniCollegate": {"type": "array", "maxItems": 100, "items": {"type": "string"}, "description": "idOperazioneANPR delle operazioni del comune da collegare (I, A) o scollegare (E); estensione non presente nell'XSD"}
            }},
            "RichiestaSospesa": {"type": "object", "additionalProperties": false, "required": ["codiceServizio", "richiesta"], "properties": {
                "idOperazioneSospesa": {"type": "string", "description": "Per aggiornare un'operazione sospesa esistente"},
                "codiceServizio": {"type": "string", "enum": ["1001", "1002", "A001", "A002", "5008"]},
                "idSchedaSoggettoANPR": {"type": "string"},
                "codiceFiscale": {"type": "string", "description": "Predefinito: generalita.codiceFiscale della richiesta salvata"},
                "richiesta": {"type": "object", "description": "La richiesta parziale (al massimo 256 KiB)"},
                "note": {"type": "string", "maxLength": 240}
            }},
            "FiltroSospese": {"type": "object", "additionalProperties": false, "properties": {
                "codiceServizio": {"type": "string"}, "utente": {"type": "string", "description": "Solo per un superutente"},
                "idSchedaSoggettoANPR": {"type": "string"}, "codiceFiscale": {"type": "string"}, "limite": {"type": "integer", "minimum": 1, "maximum": 1000}
            }},
            "OperazioneSospesa": {"type": "object", "required": ["idOperazioneSospesa", "codiceServizio", "comune", "utente", "creataIl", "aggiornataIl"], "properties": {
                "idOperazioneSospesa": {"type": "string"}, "codiceServizio": {"type": "string"}, "comune": {"type": "string"}, "utente": {"type": "string"},
                "creataIl": {"type": "string", "format": "date-time"}, "aggiornataIl": {"type": "string", "format": "date-time"},
                "idSchedaSoggettoANPR": {"type": "string"}, "codiceFiscale": {"type": "string"}, "note": {"type": "string"}, "richiesta": {"type": "object"}, "ambiente": {"type": "string"}
            }},
            "ElencoSospese": {"type": "object", "required": ["totale", "operazioniSospese"], "properties": {"totale": {"type": "integer"}, "operazioniSospese": {"type": "array", "items": {"$ref": "#/components/schemas/OperazioneSospesa"}}, "ambiente": {"type": "string"}}},
            "EsitoEliminazione": {"type": "object", "properties": {"esito": {"const": "OK"}, "idOperazioneSospesa": {"type": "string"}, "ambiente": {"type": "string"}}},
            "RicercaProcedimenti": {"type": "object", "additionalProperties": false, "properties": {
                "numeroPraticaAnpr": {"type": "string"}, "numeroPraticaComune": {"type": "string"}, "statoProcedimento": {"type": "string"}, "aperto": {"type": "boolean"},
                "idSchedaSoggettoANPR": {"type": "string"}, "codiceFiscale": {"type": "string"}, "idOperazioneANPR": {"type": "string"},
                "dataAvvioDal": {"type": "string", "format": "date"}, "dataAvvioAl": {"type": "string", "format": "date"},
                "dataRiferimento": {"type": "string", "format": "date", "description": "Procedimenti e collegamenti come erano a questa data"},
                "limite": {"type": "integer", "minimum": 1, "maximum": 1000}
            }},
            "Procedimento": {"type": "object", "required": ["numeroPraticaAnpr", "comune", "statoProcedimento", "dataStato", "dataAvvio", "aperto", "soggetti", "eventi"], "properties": {
                "numeroPraticaAnpr": {"type": "string"}, "numeroPraticaComune": {"type": "string"}, "comune": {"type": "string"},
                "motivoAvvio": {"type": "string"}, "descrizioneMotivoAvvio": {"type": "string"},
                "statoProcedimento": {"type": "string"}, "descrizioneStato": {"type": "string"}, "dataStato": {"type": "string", "format": "date"},
                "dataAvvio": {"type": "string", "format": "date"}, "aperto": {"type": "boolean"}, "dataChiusura": {"type": "string", "format": "date"},
                "esitoChiusura": {"type": "string"}, "noteChiusura": {"type": "string"}, "noteEsito": {"type": "string"},
                "soggetti": {"type": "array", "items": {"type": "object", "properties": {"idSchedaSoggettoANPR": {"type": "string"}, "codiceFiscale": {"type": "string"}, "cognome": {"type": "string"}, "nome": {"type": "string"}, "dataAssociazione": {"type": "string", "format": "date"}}}},
                "eventi": {"type": "array", "items": {"type": "object", "properties": {"idOperazioneANPR": {"type": "string"}, "codiceServizio": {"type": "string"}, "dataAssociazione": {"type": "string", "format": "date"}, "statoOperazione": {"type": "string"}}}}
            }},
            "EsitoRicercaProcedimenti": {"type": "object", "required": ["totale", "procedimenti"], "properties": {"dataRiferimento": {"type": "string", "format": "date"}, "totale": {"type": "integer"}, "procedimenti": {"type": "array", "items": {"$ref": "#/components/schemas/Procedimento"}}, "ambiente": {"type": "string"}}}
    })
}

/// Adds the members of `extra` (an object) to the object `into`.
fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(into), Value::Object(extra)) = (into, extra) {
        into.extend(extra);
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
