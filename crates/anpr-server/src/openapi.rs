//! The OpenAPI 3.1 document of `/api/v1`, written out by hand from the handlers'
//! request and response shapes. A test walks every documented path against the router,
//! so a route missing from either side fails the build.

use anpr_domain::scheda::SezioneSoggetto;
use anpr_service::{monitoraggio, notifiche, ricerca};
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

/// Adds the entries of `extra` (an object) to the object at `doc[key]`.
fn extend(doc: &mut Value, key: &str, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (doc[key].as_object_mut(), extra) {
        target.extend(extra);
    }
}

/// How callers prove who they are (docs/SICUREZZA.md).
fn sicurezza() -> Value {
    use anpr_sicurezza::jws::{CLAIM_RICHIESTA, INTESTAZIONE_FIRMA, INTESTAZIONE_FIRMA_POSTAZIONE};
    json!({
        "tlsReciproco": {"type": "mutualTLS", "description": "Certificato di postazione, del server del comune o della carta, emesso dalla nostra CA (anpr serve --tls); obbligatorio in produzione"},
        "sessione": {"type": "http", "scheme": "bearer", "description": "Gettone di sessione (password giornaliera o passkey)"},
        "firmaRichiesta": {"type": "apiKey", "in": "header", "name": INTESTAZIONE_FIRMA, "description": "JWS compatto (ES256/RS256, certificato in x5c) con iat, exp, sub = codice fiscale dell'utente e signed_headers[].digest = SHA-256 del corpo; obbligatorio in produzione per il software comunale"},
        "firmaPostazione": {"type": "apiKey", "in": "header", "name": INTESTAZIONE_FIRMA_POSTAZIONE, "description": format!("JWS compatto del certificato della postazione con postazione, iat, exp e {CLAIM_RICHIESTA} = SHA-256 (base64url) della firma della richiesta; in produzione la postazione va provata così o con il TLS reciproco del suo certificato")}
    })
}

/// The document.
pub fn spec() -> Value {
    let mut doc = base();
    let ambiente_header = ambiente_header();
    extend(&mut doc, "paths", paths_ricerca(&ambiente_header));
    extend(&mut doc["components"], "schemas", schemas_ricerca());
    extend(
        &mut doc,
        "paths",
        paths_sospese_procedimenti(&ambiente_header),
    );
    extend(&mut doc, "paths", paths_subentro(&ambiente_header));
    extend(
        &mut doc["components"],
        "schemas",
        schemas_sospese_procedimenti(),
    );
    extend(
        &mut doc,
        "paths",
        crate::openapi_certificati::paths(&ambiente_header),
    );
    extend(
        &mut doc["components"],
        "schemas",
        crate::openapi_certificati::schemas(),
    );
    extend(
        &mut doc,
        "paths",
        crate::rest_sicurezza::paths_openapi(&ambiente_header),
    );
    extend(
        &mut doc,
        "paths",
        crate::rest_estrazioni::paths_openapi(&ambiente_header),
    );
    doc["components"]["securitySchemes"] = sicurezza();
    // Without a scheme: public services, sessions (bearer) and, outside `produzione`,
    // the development headers; the use case decides with the permission matrix.
    doc["security"] = json!([{}, {"tlsReciproco": []}, {"sessione": []}, {"firmaRichiesta": []}, {"firmaRichiesta": [], "firmaPostazione": []}]);
    doc
}

fn ambiente_header() -> Value {
    json!({"name": "X-ANPR-Ambiente", "in": "header", "required": false, "schema": {"type": "string", "enum": ["test", "presubentro", "produzione"]}, "description": "Ambiente (data set) della richiesta; predefinito quello di avvio del server."})
}

/// Searches and monitoring (SPEC M-5.2, M-5.5).
fn paths_ricerca(ambiente_header: &Value) -> Value {
    let query = |name: &str, schema: Value, description: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description});
    json!({
            "/api/v1/soggetti/ricerca": post("Ricerca di schede individuali per un solo criterio (codice fiscale, idANPR, identificativo comunale, generalita' anche per chiave parziale), alla data, con le sezioni richieste. Piu' risultati del limite: EN115. Ogni scheda restituita e' registrata nel log di audit.", "RichiestaRicercaSoggetti", "RisultatoRicercaSoggetti"),
            "/api/v1/famiglie/ricerca": post("Ricerca di schede famiglia/convivenza con i componenti: per idFamigliaConvivenzaANPR, per un componente (codiceFiscale o idANPR) o per indirizzo (stesso edificio: via e civico, interno escluso). L'identificativo comunale della famiglia non e' indicizzato (EN053).", "RichiestaRicercaFamiglie", "RisultatoRicercaFamiglie"),
            "/api/v1/operazioni": {"get": {
                "summary": "Monitoraggio delle operazioni del comune dell'utente (profili nazionali: di tutti i comuni), in ordine di idOperazioneANPR con paginazione per chiave. I documenti di richiesta e risposta solo su richiesta e solo a chi puo' consultare le schede. Consultazione registrata nel log di audit.",
                "parameters": [
                    ambiente_header,
                    query("comune", json!({"type": "string", "pattern": "^[0-9]{6}$"}), "Codice ISTAT del comune; per i profili comunali solo il proprio (altrimenti accesso negato)"),
                    query("codiceServizio", json!({"type": "string", "pattern": "^[0-9A-Z][0-9]{3}$"}), "Codice del servizio, es. 1002"),
                    query("stato", json!({"type": "string", "enum": ["eseguita", "rifiutata", "annullata"]}), "Stato dell'operazione"),
                    query("dal", json!({"type": "string", "format": "date"}), "Primo giorno di registrazione (data civile italiana, incluso)"),
                    query("al", json!({"type": "string", "format": "date"}), "Ultimo giorno di registrazione (incluso); non anteriore a dal (EN478)"),
                    query("idANPR", json!({"type": "string", "pattern": "^[0-9]{1,16}$"}), "Solo operazioni sul soggetto con questo idANPR"),
                    query("idFamigliaConvivenzaANPR", json!({"type": "string", "pattern": "^[0-9]{1,16}$"}), "Solo operazioni sulla famiglia/convivenza (in alternativa a idANPR)"),
                    query("dopo", json!({"type": "string", "pattern": "^[0-9]{1,18}$"}), "Paginazione: operazioni con idOperazioneANPR maggiore (il valore prossimaPagina della pagina precedente)"),
                    query("limit", json!({"type": "integer", "minimum": 1, "maximum": monitoraggio::LIMITE_MASSIMO, "default": monitoraggio::LIMITE_PREDEFINITO}), "Operazioni per pagina"),
                    query("documenti", json!({"type": "boolean", "default": false}), "Includere i documenti di richiesta e risposta (richiede anche il permesso di consultazione delle schede)")
                ],
                "responses": {"200": ok_ref("ElencoOperazioni"), "400": errore_ref(), "403": errore_ref(), "422": errore_ref()}
            }},
            "/api/v1/notifiche": {"get": {
                "summary": "Notifiche indirizzate al comune dell'utente (es. N010: soggetti trasferiti in altro comune), in ordine di idOperazioneANPR dell'operazione che le ha prodotte, con il contenuto; disponibili per 180 giorni. La lettura non le prende in carico (vedi presa-in-carico). Permesso Notifiche; lettura registrata nel log di audit, una voce per notifica.",
                "parameters": [
                    ambiente_header,
                    query("stato", json!({"type": "string", "enum": ["daPrendere", "prese", "tutte"], "default": "daPrendere"}), "Notifiche da prendere in carico, gia' prese, o tutte"),
                    query("tipo", json!({"type": "string", "pattern": "^[A-Z0-9]{4}$"}), "Tipo di notifica, es. N010"),
                    query("dal", json!({"type": "string", "format": "date"}), "Primo giorno (data civile italiana, incluso)"),
                    query("al", json!({"type": "string", "format": "date"}), "Ultimo giorno (incluso); non anteriore a dal (EN478)"),
                    query("dopo", json!({"type": "string", "pattern": "^[0-9]{1,18}$"}), "Paginazione: notifiche di operazioni con idOperazioneANPR maggiore (prossimaPagina della pagina precedente)"),
                    query("limit", json!({"type": "integer", "minimum": 1, "maximum": notifiche::LIMITE_MASSIMO, "default": notifiche::LIMITE_PREDEFINITO}), "Notifiche per pagina")
                ],
                "responses": {"200": ok_ref("ElencoNotifiche"), "400": errore_ref(), "403": errore_ref()}
            }},
            "/api/v1/notifiche/presa-in-carico": post("Presa in carico delle notifiche memorizzate dal software comunale (stato 7 -> 8): quelle gia' prese restano tali; gli identificativi che non indicano notifiche del comune sono elencati in nonTrovate. Da 1 a 100 identificativi.", "PresaInCarico", "EsitoPresaInCarico")
    })
}

fn schemas_ricerca() -> Value {
    let sezioni: Vec<&str> = SezioneSoggetto::ALL.iter().map(|k| k.key()).collect();
    json!({
            "Indirizzo": {"type": "object", "required": ["comune", "toponimo"], "properties": {
                "cap": {"type": "string"}, "comune": {"type": "string", "pattern": "^[0-9]{6}$"}, "frazione": {"type": "string"},
                "toponimo": {"type": "object", "required": ["specie", "denominazioneToponimo"], "properties": {"codSpecie": {"type": "string"}, "specie": {"type": "string"}, "denominazioneToponimo": {"type": "string"}, "codToponimo": {"type": "string"}}},
                "numeroCivico": {"type": "object", "properties": {"numero": {"type": "string"}, "lettera": {"type": "string"}, "esponente1": {"type": "string"}, "scala": {"type": "string"}, "piano": {"type": "string"}, "interno": {"type": "string"}}}
            }},
            "RichiestaRicercaSoggetti": {"type": "object", "additionalProperties": false, "required": ["criteriRicerca"], "description": "Forma di Richiesta3002 (3000consultazione.xsd). Un solo criterio tra codiceFiscale, idANPR, idSchedaSoggettoComune e generalita' (cognome obbligatorio; nome, sesso, datiNascita facoltativi): nessuno EN448, piu' d'uno EV050. Cognome e nome si confrontano senza maiuscole, accenti, apostrofi e trattini.", "properties": {
                "criteriRicerca": {"type": "object", "additionalProperties": false, "properties": {
                    "codiceFiscale": {"type": "string", "description": "Codice fiscale (16 caratteri) o provvisorio (11 cifre)"},
                    "idANPR": {"type": "string", "pattern": "^[0-9]{1,16}$"},
                    "idSchedaSoggettoComune": {"type": "string", "description": "Identificativo comunale della scheda, nel comune datiRichiesta.comuneResidenza (predefinito: il comune dell'utente)"},
                    "cognome": {"type": "string"}, "nome": {"type": "string"}, "sesso": {"type": "string", "enum": ["M", "F"]},
                    "genitore": {"type": "object", "additionalProperties": false, "description": "Figli di un genitore: le schede che lo indicano come padre o madre (per idANPR o codice fiscale, uno solo)", "properties": {"idANPR": {"type": "string", "pattern": "^[0-9]{1,16}$"}, "codiceFiscale": {"type": "string"}}}
                }},
                "ricercaChiaveParziale": {"type": "object", "additionalProperties": false, "required": ["ricercaCognomeNomeParziale"], "properties": {
                    "ricercaCognomeNomeParziale": {"type": "integer", "minimum": 0, "maximum": 3, "description": "0 nessuna, 1 cognome, 2 nome, 3 cognome e nome per parte iniziale (almeno 2 lettere: EHR62; altri valori: EN149)"}
                }},
                "datiNascita": {"type": "object", "additionalProperties": false, "required": ["dataEvento"], "properties": {"dataEvento": {"type": "string", "format": "date"}}},
                "datiRichiesta": {"type": "object", "additionalProperties": false, "properties": {
                    "dataRiferimentoRichiesta": {"type": "string", "format": "date", "description": "Schede come erano a questa data; i criteri si applicano ai dati attuali (indice corrente). Schede non ancora esistenti alla data: escluse."},
                    "comuneResidenza": {"type": "string", "pattern": "^[0-9]{6}$", "description": "Solo soggetti di competenza di questo comune"},
                    "sezioni": {"type": "array", "items": {"type": "string", "enum": sezioni}, "description": "Sezioni della scheda da restituire (tutte se assente)"},
                    "posizioni": {"type": "array", "items": {"type": "string", "enum": ["residente", "aire", "cancellato"]}, "description": "Predefinito residente e aire: i cancellati solo se richiesti"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": ricerca::LIMITE_MASSIMO, "default": ricerca::LIMITE_PREDEFINITO, "description": "Numero massimo di schede; se la ricerca ne individua di piu': EN115"}
                }}
            }},
            "RisultatoRicercaSoggetti": {"type": "object", "required": ["totale", "soggetti"], "properties": {"totale": {"type": "integer"}, "dataRiferimento": {"type": ["string", "null"], "format": "date"}, "soggetti": {"type": "array", "items": {"$ref": "#/components/schemas/SchedaLetta"}}, "ambiente": {"type": "string"}}},
            "RichiestaRicercaFamiglie": {"type": "object", "additionalProperties": false, "required": ["criteriRicerca"], "description": "Un solo criterio (nessuno EV002, piu' d'uno EV050).", "properties": {
                "criteriRicerca": {"type": "object", "additionalProperties": false, "properties": {
                    "idFamigliaConvivenzaANPR": {"type": "string", "pattern": "^[0-9]{1,16}$"},
                    "idFamigliaConvivenzaComune": {"type": "string", "description": "Non indicizzato: EN053"},
                    "codiceFiscale": {"type": "string", "description": "Di un componente: la famiglia/convivenza a cui apparteneva alla data"},
                    "idANPR": {"type": "string", "pattern": "^[0-9]{1,16}$", "description": "idANPR di un componente"},
                    "indirizzo": {"$ref": "#/components/schemas/Indirizzo"}
                }},
                "datiRichiesta": {"type": "object", "additionalProperties": false, "properties": {
                    "dataRiferimentoRichiesta": {"type": "string", "format": "date"},
                    "includiArchiviate": {"type": "boolean", "default": false, "description": "Ricerca per indirizzo: anche famiglie/convivenze archiviate"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": ricerca::LIMITE_MASSIMO, "default": ricerca::LIMITE_PREDEFINITO}
                }}
            }},
            "RisultatoRicercaFamiglie": {"type": "object", "required": ["totale", "famiglie"], "properties": {"totale": {"type": "integer"}, "dataRiferimento": {"type": ["string", "null"], "format": "date"}, "famiglie": {"type": "array", "items": {"$ref": "#/components/schemas/FamigliaLetta"}}, "ambiente": {"type": "string"}}},
            "SintesiOperazione": {"type": "object", "required": ["idOperazioneANPR", "codiceServizio", "stato", "decorrenza", "dataOraRegistrazione", "utente", "canale", "soggetti", "famiglie"], "properties": {
                "idOperazioneANPR": {"type": "string"}, "codiceServizio": {"type": "string"},
                "stato": {"type": "string", "enum": ["eseguita", "rifiutata", "annullata"]},
                "idOperazioneComune": {"type": "string"}, "comune": {"type": "string"},
                "decorrenza": {"type": "string", "format": "date"}, "dataOraRegistrazione": {"type": "string", "format": "date-time"},
                "utente": {"type": "string"}, "postazione": {"type": "string"}, "canale": {"type": "string"},
                "annullataDa": {"type": "string", "description": "idOperazioneANPR dell'annullamento"},
                "annulla": {"type": "string", "description": "Per gli annullamenti: l'operazione annullata"},
                "soggetti": {"type": "array", "items": {"type": "string"}, "description": "idANPR dei soggetti toccati"},
                "famiglie": {"type": "array", "items": {"type": "string"}, "description": "idANPR delle famiglie/convivenze toccate"},
                "richiesta": {"description": "Documento di richiesta memorizzato (solo con documenti=true)"},
                "risposta": {"description": "Documento di risposta memorizzato (solo con documenti=true)"}
            }},
            "Notifica": {"type": "object", "required": ["idOperazioneANPR", "tipo", "stato", "creataIl", "contenuto"], "properties": {
                "idOperazioneANPR": {"type": "string", "description": "L'operazione che ha prodotto la notifica"},
                "tipo": {"type": "string"}, "stato": {"type": "string", "enum": ["daPrendere", "presa"]},
                "creataIl": {"type": "string", "format": "date-time"}, "presaIl": {"type": ["string", "null"], "format": "date-time"},
                "contenuto": {"type": "object", "description": "Per N010: comuneProvenienza, comuneDestinazione, dataDecorrenza, soggetti (idANPR), famigliaProvenienza"}
            }},
            "ElencoNotifiche": {"type": "object", "required": ["notifiche"], "properties": {"notifiche": {"type": "array", "items": {"$ref": "#/components/schemas/Notifica"}}, "prossimaPagina": {"type": ["string", "null"]}, "ambiente": {"type": "string"}}},
            "PresaInCarico": {"type": "object", "required": ["idOperazioneANPR"], "additionalProperties": false, "properties": {"idOperazioneANPR": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "pattern": "^[0-9]{1,18}$"}}}},
            "EsitoPresaInCarico": {"type": "object", "required": ["prese", "nonTrovate"], "properties": {"prese": {"type": "array", "items": {"type": "string"}}, "nonTrovate": {"type": "array", "items": {"type": "string"}}, "ambiente": {"type": "string"}}},
            "ElencoOperazioni": {"type": "object", "required": ["operazioni"], "properties": {"operazioni": {"type": "array", "items": {"$ref": "#/components/schemas/SintesiOperazione"}}, "prossimaPagina": {"type": "string", "description": "Valore di dopo per la pagina successiva; assente all'ultima"}, "ambiente": {"type": "string"}}}
    })
}

/// The document's first slice: health, tables, tax code, consultation, operations.
fn base() -> Value {
    let ambiente_header = ambiente_header();
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

/// Paths of suspended operations and proceedings (kept apart: one `json!` literal has a
/// recursion limit).
/// Subentro (SPEC M-6): upload of a municipality's files and download of the outcomes.
fn paths_subentro(ambiente_header: &Value) -> Value {
    json!({
        "/api/v1/subentro": {"post": {
            "summary": "Subentro: carica i file APR/AIRE del comune (multipart, una parte `file` per file, nominata come richiedono i controlli EN001) ed esegue l'acquisizione nell'ambiente della richiesta per il comune del chiamante; risponde con lo stato finale, i conteggi e il riepilogo delle anomalie per codice. Profilo OPERATORE_SUBENTRO. Dettagli: docs/SUBENTRO.md.",
            "parameters": [ambiente_header.clone()],
            "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}}, "required": ["file"]}}}},
            "responses": {"200": {"description": "Esito dell'acquisizione (ELABORATO, o INSERITO KO con le anomalie bloccanti)", "content": {"application/json": {"schema": {"type": "object"}}}}, "400": errore_ref(), "403": errore_ref(), "422": errore_ref()}
        }},
        "/api/v1/subentro/{idOperazioneANPR}/esiti/{nome}": {"get": {
            "summary": "Scarica un file di esito di un'acquisizione del proprio comune",
            "parameters": [ambiente_header.clone(),
                {"name": "idOperazioneANPR", "in": "path", "required": true, "schema": {"type": "string"}},
                {"name": "nome", "in": "path", "required": true, "schema": {"type": "string", "enum": crate::rest_subentro::ESITI}}],
            "responses": {"200": {"description": "File CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}, "403": errore_ref(), "404": errore_ref()}
        }}
    })
}

fn paths_sospese_procedimenti(ambiente_header: &Value) -> Value {
    json!({
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

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
