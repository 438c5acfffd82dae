//! OpenAPI entries of the certificate endpoints (SPEC M-4.1), merged into the document
//! by `openapi::spec`.

use serde_json::{json, Value};

fn risposte(schema: &str) -> Value {
    json!({
        "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
        "400": {"description": "Richiesta non valida", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}},
        "403": {"description": "Accesso negato", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}},
        "404": {"description": "Non trovato", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}},
        "422": {"description": "Rifiutata (codice ANPR)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errore"}}}}
    })
}

fn id_path() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "description": "Identificativo casuale del certificato"})
}

pub(crate) fn paths(ambiente: &Value) -> Value {
    json!({
        "/api/v1/certificati": {
            "post": {
                "summary": "Emissione di un certificato (servizio 6001): uno o più dei 20 tipi della tabella 13, bilingue dove il comune ha la seconda lingua; PDF/A-2b con QR firmato",
                "parameters": [ambiente],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RichiestaCertificato"}}}},
                "responses": risposte("EsitoEmissioneCertificato")
            },
            "get": {
                "summary": "Elenco dei certificati emessi dal comune nel periodo, con i totali di bollo e diritti (annullati esclusi)",
                "parameters": [ambiente,
                    {"name": "dal", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "al", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": risposte("ElencoCertificati")
            }
        },
        "/api/v1/certificati/verifica": {"get": {
            "summary": "Verifica pubblica (senza autenticazione) del codice QR di un certificato: autentico e non annullato; solo dati minimi; ogni verifica è registrata",
            "parameters": [ambiente, {"name": "c", "in": "query", "required": true, "schema": {"type": "string", "maxLength": 200}}],
            "responses": risposte("EsitoVerificaCertificato")
        }},
        "/api/v1/certificati/{id}/pdf": {"get": {
            "summary": "Ristampa del certificato emesso (application/pdf)",
            "parameters": [ambiente, id_path()],
            "responses": {"200": {"description": "PDF/A-2b", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}, "404": {"description": "Non trovato"}}
        }},
        "/api/v1/certificati/{id}/annulla": {"post": {
            "summary": "Annullamento del certificato per errore materiale",
            "parameters": [ambiente, id_path()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["motivo"], "properties": {"motivo": {"type": "string", "maxLength": 256}}}}}},
            "responses": risposte("EsitoEmissioneCertificato")
        }}
    })
}

pub(crate) fn schemas() -> Value {
    json!({
        "RichiestaCertificato": {"type": "object", "required": ["idANPR", "tipiCertificato"], "additionalProperties": false, "properties": {
            "idANPR": {"type": "integer"},
            "tipiCertificato": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 20}},
            "linguaCertificato": {"type": "string", "enum": ["DE", "FR", "SL"]},
            "dataRiferimento": {"type": "string", "format": "date", "description": "Solo per i certificati storici di residenza"},
            "richiedente": {"type": "object", "properties": {"cognome": {"type": "string"}, "nome": {"type": "string"}, "codiceFiscale": {"type": "string"}}},
            "esenzioneBollo": {"type": "string", "description": "Codice della tabella Esenzione bollo"},
            "descrizioneEsenzioneBollo": {"type": "string", "maxLength": 256},
            "uso": {"type": "string"},
            "forzaCertificazione": {"type": "boolean"}
        }},
        "Certificato": {"type": "object", "properties": {
            "idCertificato": {"type": "string"}, "numeroProtocollo": {"type": "integer"}, "anno": {"type": "integer"},
            "tipi": {"type": "array", "items": {"type": "integer"}}, "dataEmissione": {"type": "string", "format": "date"},
            "importi": {"type": "object", "properties": {"bollo": {"type": "integer", "description": "centesimi"}, "dirittiSegreteria": {"type": "integer", "description": "centesimi"}}},
            "payloadVerifica": {"type": "string"}, "urlVerifica": {"type": "string"},
            "annullatoIl": {"type": ["string", "null"], "format": "date-time"}, "motivoAnnullamento": {"type": ["string", "null"]}
        }},
        "EsitoEmissioneCertificato": {"type": "object", "properties": {
            "certificato": {"$ref": "#/components/schemas/Certificato"},
            "certificatoPdf": {"type": "string", "contentEncoding": "base64", "contentMediaType": "application/pdf"},
            "ambiente": {"type": "string"}
        }},
        "ElencoCertificati": {"type": "object", "properties": {
            "certificati": {"type": "array", "items": {"$ref": "#/components/schemas/Certificato"}},
            "totaleBollo": {"type": "integer"}, "totaleDirittiSegreteria": {"type": "integer"}, "ambiente": {"type": "string"}
        }},
        "EsitoVerificaCertificato": {"type": "object", "properties": {
            "esito": {"type": "string", "enum": ["valido", "annullato"]}, "idCertificato": {"type": "string"},
            "tipi": {"type": "array", "items": {"type": "string"}}, "dataEmissione": {"type": "string", "format": "date"},
            "comune": {"type": "string"}, "numeroProtocollo": {"type": "integer"}, "anno": {"type": "integer"},
            "annullatoIl": {"type": ["string", "null"], "format": "date-time"}, "ambiente": {"type": "string"}
        }}
    })
}
