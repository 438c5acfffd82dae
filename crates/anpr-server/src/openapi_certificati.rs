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
        "/api/v1/carte-identita": {
            "post": {
                "summary": "Emissione di una carta d'identità (M-4.2): cartacea, con i dati del titolare dalla scheda e dei testimoni, stampa della carta e delle due copie del cartellino (PDF/A); elettronica (CIE) solo con codice fiscale validato (EN141). Il titolare deve essere residente nel comune (EV255)",
                "parameters": [ambiente],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RichiestaCartaIdentita"}}}},
                "responses": risposte("EsitoEmissioneCartaIdentita")
            },
            "get": {
                "summary": "Elenco delle carte d'identità emesse dal comune nel periodo, con il totale dei diritti (annullate escluse)",
                "parameters": [ambiente,
                    {"name": "dal", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "al", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": risposte("ElencoCarteIdentita")
            }
        },
        "/api/v1/carte-identita/{id}/pdf": {"get": {
            "summary": "Ristampa della carta d'identità cartacea e del cartellino (application/pdf)",
            "parameters": [ambiente, id_path()],
            "responses": {"200": {"description": "PDF/A-2b", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}, "404": {"description": "Non trovata"}}
        }},
        "/api/v1/carte-identita/{id}/annulla": {"post": {
            "summary": "Annullamento della carta d'identità per errore materiale (di nuovo: EV256)",
            "parameters": [ambiente, id_path()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["motivo"], "properties": {"motivo": {"type": "string", "maxLength": 256}}}}}},
            "responses": risposte("EsitoEmissioneCartaIdentita")
        }},
        "/api/v1/comuni/{istat}/parametri": {
            "get": {
                "summary": "Parametri del comune per i documenti (logo, autorizzazione al bollo virtuale, importi, seconda lingua, sindaco, ufficiale d'anagrafe); predefiniti (versione 0) se mai impostati. Solo sindaco e amministratore di primo livello del comune",
                "parameters": [ambiente, {"name": "istat", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{6}$"}}],
                "responses": risposte("ParametriComune")
            },
            "put": {
                "summary": "Sostituisce i parametri del comune (i campi assenti tornano al valore predefinito); registrato nel log di audit",
                "parameters": [ambiente, {"name": "istat", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{6}$"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RichiestaParametriComune"}}}},
                "responses": risposte("ParametriComune")
            }
        },
        "/api/v1/certificati/{id}/annulla": {"post": {
            "summary": "Annullamento del certificato per errore materiale",
            "parameters": [ambiente, id_path()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["motivo"], "properties": {"motivo": {"type": "string", "maxLength": 256}}}}}},
            "responses": risposte("EsitoEmissioneCertificato")
        }}
    })
}

pub(crate) fn schemas() -> Value {
    let mut s = schemas_certificati();
    if let (Some(m), Value::Object(altri)) = (s.as_object_mut(), schemas_documenti()) {
        m.extend(altri);
    }
    s
}

fn importo(descrizione: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": anpr_service::parametri::IMPORTO_MASSIMO, "description": format!("{descrizione}, in centesimi")})
}

fn schemas_documenti() -> Value {
    let testimone = json!({"type": "object", "additionalProperties": false, "required": ["cognome", "nome"], "properties": {
        "cognome": {"type": "string"}, "nome": {"type": "string"}, "luogoNascita": {"type": "string"},
        "dataNascita": {"type": "string", "format": "date"}, "residenza": {"type": "string"},
        "documento": {"type": "string", "description": "Estremi del documento del testimone"}
    }});
    json!({
        "RichiestaCartaIdentita": {"type": "object", "additionalProperties": false, "required": ["idSchedaSoggettoANPR", "cartaceaElettronica", "numero"], "properties": {
            "idSchedaSoggettoANPR": {"type": "string", "pattern": "^[0-9]{1,16}$"},
            "cartaceaElettronica": {"type": "string", "enum": ["C", "E"], "description": "C cartacea, E elettronica (CIE); altro: EC059"},
            "numero": {"type": "string", "pattern": "^[0-9a-zA-Z ]{1,20}$"},
            "dataScadenza": {"type": "string", "format": "date", "description": "Predefinita: compleanno dopo 3 (meno di 3 anni), 5 (minori) o 10 anni"},
            "validaEspatrio": {"type": "boolean", "default": true},
            "statura": {"type": "integer", "minimum": 30, "maximum": 260},
            "coloreCapelli": {"type": "string"}, "coloreOcchi": {"type": "string"}, "segniParticolari": {"type": "string"}, "professione": {"type": "string"},
            "testimoni": {"type": "array", "maxItems": anpr_service::carte_identita::TESTIMONI_MASSIMI, "items": testimone}
        }},
        "CartaIdentita": {"type": "object", "properties": {
            "idCarta": {"type": "string"}, "numeroProtocollo": {"type": "integer"}, "anno": {"type": "integer"},
            "idSchedaSoggettoANPR": {"type": "string"}, "cartaceaElettronica": {"type": "string"}, "numero": {"type": "string"},
            "dataRilascio": {"type": "string", "format": "date"}, "dataScadenza": {"type": "string", "format": "date"},
            "validaEspatrio": {"type": "boolean"}, "diritti": {"type": "integer", "description": "centesimi"},
            "annullataIl": {"type": ["string", "null"], "format": "date-time"}, "motivoAnnullamento": {"type": ["string", "null"]}
        }},
        "EsitoEmissioneCartaIdentita": {"type": "object", "properties": {
            "cartaIdentita": {"$ref": "#/components/schemas/CartaIdentita"},
            "cartaIdentitaPdf": {"type": "string", "contentEncoding": "base64", "contentMediaType": "application/pdf", "description": "Solo per la carta cartacea"},
            "ambiente": {"type": "string"}
        }},
        "ElencoCarteIdentita": {"type": "object", "properties": {
            "carte": {"type": "array", "items": {"$ref": "#/components/schemas/CartaIdentita"}},
            "totaleDiritti": {"type": "integer", "description": "centesimi"}, "ambiente": {"type": "string"}
        }},
        "RichiestaParametriComune": {"type": "object", "additionalProperties": false, "properties": {
            "importoBollo": importo("Imposta di bollo sul certificato (predefinito 1600)"),
            "dirittiSegreteria": importo("Diritti di segreteria (predefinito 52)"),
            "dirittiSegreteriaEsente": importo("Diritti di segreteria su certificato esente da bollo (predefinito 26)"),
            "dirittiCartaIdentita": importo("Diritti per la carta d'identità cartacea (predefinito 542)"),
            "autorizzazioneBolloVirtuale": {"type": "string", "maxLength": 300},
            "secondaLingua": {"type": "string", "enum": ["DE", "FR", "SL"]},
            "sindaco": {"type": "string", "maxLength": 300},
            "ufficialeAnagrafe": {"type": "string", "maxLength": 300},
            "logo": {"type": "object", "additionalProperties": false, "required": ["dati"], "properties": {"dati": {"type": "string", "contentEncoding": "base64", "description": "File PNG o JPEG (grigio o RGB), al massimo 262144 byte e 2000 pixel per lato; altrimenti EV253"}}}
        }},
        "ParametriComune": {"type": "object", "properties": {
            "comune": {"type": "string"}, "importoBollo": {"type": "integer"}, "dirittiSegreteria": {"type": "integer"},
            "dirittiSegreteriaEsente": {"type": "integer"}, "dirittiCartaIdentita": {"type": "integer"},
            "autorizzazioneBolloVirtuale": {"type": "string"}, "secondaLingua": {"type": "string"},
            "sindaco": {"type": "string"}, "ufficialeAnagrafe": {"type": "string"}, "logoMime": {"type": "string"},
            "logo": {"type": "string", "contentEncoding": "base64"},
            "versione": {"type": "integer", "description": "0 finche' il comune non li imposta"},
            "aggiornatoIl": {"type": "string", "format": "date-time"}, "aggiornatoDa": {"type": "string"}, "ambiente": {"type": "string"}
        }}
    })
}

fn schemas_certificati() -> Value {
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
