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
    let ambiente_header = json!({"name": "X-ANPR-Ambiente", "in": "header", "required": false, "schema": {"type": "string", "enum": ["test", "presubentro", "produzione"]}, "description": "Ambiente (data set) della richiesta; predefinito quello di avvio del server."});
    let data_rif = json!({"name": "dataRiferimento", "in": "query", "required": false, "schema": {"type": "string", "format": "date"}, "description": "Solo le righe valide a questa data."});
    let mut doc = json!({
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
            "/api/v1/operazioni/{codice}": crate::openapi_operazioni::path(&ambiente_header),
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
    });
    if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        schemas.extend(crate::openapi_operazioni::schemas());
    }
    doc
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
