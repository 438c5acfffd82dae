//! Responses, written element by element in the XSD order of each response type.
//!
//! Registry operations answer `Risposta_Comune` (or `rispostaKO`) built from the
//! operation's stored response document, so a replayed `idOperazioneComune` yields the
//! same business content (ids, outcome, anomalies, support reference) as the first
//! answer; only the header's echo of the request (`dataOraRichiesta`...) follows the
//! message at hand. Consultations answer `RispostaNNNN_OK`, table downloads
//! `RispostaMultipla7001`. Every error list ends with the support entry (ANPR's
//! EN527: date and `idOperazioneANPR` to quote to the help desk).

use anpr_domain::error::{Anomalia, Gravita};
use anpr_tables::Tables;
use base64::Engine;
use serde_json::Value;

use crate::busta::{scrivi_anomalia, Scrittore};
use crate::catalogo::{Operazione, Servizio, NS_RISPOSTA_COMUNE};
use crate::richieste::{Testata, DESTINATARIO_ANPR};
use crate::scheda::{
    nome_stato, scrivi_generalita, scrivi_residenza, scrivi_soggetto, Gruppi, Letto, Variante,
};

/// ANPR's code of the support entry appended to every error list.
pub const CODICE_ASSISTENZA: &str = "EN527";

/// `esitoOperazione` values (`tipoDatoTestataRisposta`).
pub const ESITO_OK: &str = "2";
pub const ESITO_KO: &str = "3";
pub const ESITO_OK_CON_AVVERTIMENTI: &str = "6";

/// The outcome and ids of an answer, for its `testataRisposta`.
#[derive(Debug, Clone, Default)]
pub struct EsitoTestata<'a> {
    pub id_operazione_anpr: &'a str,
    pub esito: &'a str,
    pub data_decorrenza: Option<&'a str>,
    /// Fallback for `idOperazioneComune` when the request had none (XSD: mandatory).
    pub id_operazione_comune: Option<&'a str>,
}

impl<'a> EsitoTestata<'a> {
    /// A plain success (`esito` 1) under ANPR's id `id_operazione_anpr`.
    pub fn ok(id_operazione_anpr: &'a str) -> Self {
        Self {
            id_operazione_anpr,
            esito: ESITO_OK,
            ..Self::default()
        }
    }
}

fn data_ora_valida(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

fn data_valida(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// `testataRisposta`: the request header echoed, with ANPR's id and the outcome.
pub fn scrivi_testata(w: &mut Scrittore, t: &Testata, codice: &str, e: &EsitoTestata<'_>) {
    w.apri("testataRisposta");
    let id = if t.id_operazione_comune.is_empty() {
        e.id_operazione_comune.unwrap_or("0")
    } else {
        &t.id_operazione_comune
    };
    w.campo_max("idOperazioneComune", id, 30);
    // An empty or malformed echo would make the response invalid; the authoritative
    // values then replace it (the request was already refused or answered for them).
    let mittente = if t.cod_mittente.is_empty() {
        "0"
    } else {
        &t.cod_mittente
    };
    w.campo_max("codMittente", mittente, 6);
    w.campo("codDestinatario", DESTINATARIO_ANPR);
    w.campo("operazioneRichiesta", codice);
    let ora = if data_ora_valida(&t.data_ora_richiesta) {
        t.data_ora_richiesta.clone()
    } else {
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
    };
    w.campo("dataOraRichiesta", &ora);
    if let Some(p) = &t.protocollo_comune {
        // Cut by characters: a byte slice could split a multi-byte one.
        w.campo_max("protocolloComune", p, 20);
    }
    w.campo_opt(
        "dataProtocolloComune",
        t.data_protocollo_comune
            .as_deref()
            .filter(|d| data_valida(d)),
    );
    let decorrenza = e.data_decorrenza.or(t.data_decorrenza.as_deref());
    w.campo_opt("dataDecorrenza", decorrenza.filter(|d| data_valida(d)));
    w.campo("idOperazioneANPR", e.id_operazione_anpr);
    w.campo("esitoOperazione", e.esito);
    w.chiudi("testataRisposta");
}

/// The support entry (EN527) for reference `data` / `id`.
pub fn voce_assistenza(data: &str, id: &str) -> Anomalia {
    Anomalia::avvertimento(
        CODICE_ASSISTENZA,
        format!(
            "Informazioni sull'operazione da fornire in caso di assistenza: data {data}, idOperazioneANPR {id}"
        ),
    )
}

/// `RispostaNNNN` carrying `rispostaKO` with `anomalie` and the support entry. The
/// families differ in two details: 6001 names its refusal `Risposta6001KO`, and the
/// bodies' services (E001-E004) use `tipoTestataRispostaE000` and list the errors as
/// repeated `listaErrori` without the `errore` wrapper.
pub fn ko(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    id_operazione_anpr: &str,
    anomalie: &[Anomalia],
    riferimento: (&str, &str),
) -> String {
    let enti = servizio.famiglia.starts_with('E');
    let elemento = if servizio.famiglia == "6001" {
        "ns:Risposta6001KO"
    } else {
        "ns:rispostaKO"
    };
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri(elemento);
    let esito = EsitoTestata {
        id_operazione_anpr,
        esito: ESITO_KO,
        ..EsitoTestata::default()
    };
    if enti {
        scrivi_testata_enti(&mut w, t, &op.codice, &esito);
    } else {
        scrivi_testata(&mut w, t, &op.codice, &esito);
    }
    let assistenza = voce_assistenza(riferimento.0, riferimento.1);
    if enti {
        for a in anomalie.iter().chain(std::iter::once(&assistenza)) {
            scrivi_anomalia(&mut w, "listaErrori", a);
        }
    } else {
        w.apri("listaErrori");
        for a in anomalie.iter().chain(std::iter::once(&assistenza)) {
            scrivi_anomalia(&mut w, "errore", a);
        }
        w.chiudi("listaErrori");
    }
    w.chiudi(elemento);
    tipo_mutazione_5021(&mut w, op, t);
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// Risposta5021 requires `tipoMutazione` (two digits) after the outcome, refusal or
/// success alike: the request's, as received.
fn tipo_mutazione_5021(w: &mut Scrittore, op: &Operazione, t: &Testata) {
    if op.codice == "5021" {
        let tm = t
            .tipo_mutazione
            .as_deref()
            .filter(|v| v.len() == 2 && v.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or("00");
        w.campo("tipoMutazione", tm);
    }
}

/// `tipoTestataRispostaE000`: the bodies' header (`idOperazioneClient`).
pub(crate) fn scrivi_testata_enti(
    w: &mut Scrittore,
    t: &Testata,
    codice: &str,
    e: &EsitoTestata<'_>,
) {
    w.apri("testataRisposta");
    let id = if t.id_operazione_comune.is_empty() {
        "0"
    } else {
        &t.id_operazione_comune
    };
    w.campo_max("idOperazioneClient", id, 30);
    let mittente = if t.cod_mittente.is_empty() {
        "0"
    } else {
        &t.cod_mittente
    };
    w.campo_max("codMittente", mittente, 6);
    w.campo("codDestinatario", DESTINATARIO_ANPR);
    w.campo_max("operazioneRichiesta", codice, 4);
    let ora = if data_ora_valida(&t.data_ora_richiesta) {
        t.data_ora_richiesta.clone()
    } else {
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
    };
    w.campo("dataOraRichiesta", &ora);
    w.campo("idOperazioneANPR", e.id_operazione_anpr);
    w.campo("esitoOperazione", e.esito);
    w.chiudi("testataRisposta");
}

fn anomalie_di(doc: &Value) -> Vec<Anomalia> {
    doc["anomalie"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| serde_json::from_value(v.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The answer to a registry operation from its stored response document (the JSON
/// the pipeline stores, see `anpr_service::operazioni`).
/// `avvertimenti`: the conversion's own warnings, shown after the stored ones.
pub fn operazione(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    documento: &str,
    avvertimenti: &[Anomalia],
) -> String {
    let doc: Value = serde_json::from_str(documento).unwrap_or(Value::Null);
    let id_anpr = doc["idOperazioneANPR"].as_str().unwrap_or("0");
    let mut anomalie = anomalie_di(&doc);
    anomalie.extend(avvertimenti.iter().cloned());
    if doc["esito"] != "OK" {
        let data = doc["riferimento"]["data"].as_str().unwrap_or("");
        let id = doc["riferimento"]["id"].as_str().unwrap_or(id_anpr);
        return ko(servizio, op, t, id_anpr, &anomalie, (data, id));
    }
    let esito = if anomalie.is_empty() {
        ESITO_OK
    } else {
        ESITO_OK_CON_AVVERTIMENTI
    };
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri_ns("rc", "Risposta_Comune", NS_RISPOSTA_COMUNE);
    scrivi_testata(
        &mut w,
        t,
        &op.codice,
        &EsitoTestata {
            id_operazione_anpr: id_anpr,
            esito,
            data_decorrenza: doc["decorrenza"].as_str(),
            id_operazione_comune: doc["idOperazioneComune"].as_str(),
        },
    );
    let soggetti = doc["soggetti"].as_array().cloned().unwrap_or_default();
    if !soggetti.is_empty() {
        w.apri("listaSoggettiVariati");
        for s in &soggetti {
            w.apri("datiSoggetto");
            w.apri("identificativi");
            w.campo("idANPR", s["idANPR"].as_str().unwrap_or_default());
            w.chiudi("identificativi");
            w.chiudi("datiSoggetto");
        }
        w.chiudi("listaSoggettiVariati");
    }
    if !anomalie.is_empty() {
        w.apri("listaAnomalie");
        for a in &anomalie {
            scrivi_anomalia(&mut w, "anomalie", a);
        }
        w.chiudi("listaAnomalie");
    }
    w.chiudi("rc:Risposta_Comune");
    tipo_mutazione_5021(&mut w, op, t);
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `Risposta3002_OK` / `Risposta3006_OK`: the records found, with the data groups
/// asked for.
pub fn consultazione(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    tabelle: &Tables,
    soggetti: &[Letto<'_>],
    gruppi: &Gruppi,
    riferimento_id: &str,
) -> String {
    let variante = if op.codice == "3006" {
        Variante::Ente3006
    } else {
        Variante::Comune3002
    };
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri(&format!("ns:{}_OK", op.risposta));
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    if !soggetti.is_empty() {
        w.apri("listaSoggetti");
        for l in soggetti {
            scrivi_soggetto(&mut w, tabelle, *l, gruppi, variante);
        }
        w.chiudi("listaSoggetti");
    }
    w.chiudi(&format!("ns:{}_OK", op.risposta));
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `Risposta3001_OK`: the candidates for father and mother (`tipoGenitore3000`:
/// generalities, first citizenship, residence and family).
pub fn genitori<'a>(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    tabelle: &Tables,
    padri: &[(String, &'a anpr_domain::scheda::SchedaSoggetto)],
    madri: &[(String, &'a anpr_domain::scheda::SchedaSoggetto)],
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:Risposta3001_OK");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    for (tag, elenco) in [
        ("elencoSoggettiPadre", padri),
        ("elencoSoggettiMadre", madri),
    ] {
        for (id, s) in elenco {
            w.apri(tag);
            w.apri("genitore");
            scrivi_generalita(&mut w, tabelle, id, s);
            if let Some(c) = s.cittadinanze.iter().flatten().next() {
                w.apri("cittadinanza");
                w.campo_max(
                    "descrizioneStato",
                    &nome_stato(tabelle, &c.codice_stato),
                    120,
                );
                w.campo("codiceStato", &c.codice_stato);
                w.chiudi("cittadinanza");
            }
            w.chiudi("genitore");
            if let Some(r) = &s.residenza {
                scrivi_residenza(&mut w, tabelle, r);
            }
            if let Some(l) = &s.legame {
                w.apri("famiglia");
                w.campo(
                    "idFamigliaConvivenzaANPR",
                    &l.id_famiglia_convivenza_anpr.to_string(),
                );
                w.campo(
                    "tipoScheda",
                    match l.tipo_legame {
                        anpr_domain::scheda::TipoScheda::Famiglia => "1",
                        anpr_domain::scheda::TipoScheda::Convivenza => "2",
                    },
                );
                w.chiudi("famiglia");
            }
            w.chiudi(tag);
        }
    }
    w.chiudi("ns:Risposta3001_OK");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// The XML file of a decoding table carried (base64) in `RispostaMultipla7001`: one
/// `riga` per row, one element per column, in the row's column order.
pub fn file_tabella(nome: &str, numero: u32, versione: &str, righe: &[Value]) -> String {
    let mut s = String::with_capacity(righe.len() * 120 + 200);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><tabella nome=\"");
    crate::xml::escape(nome, &mut s);
    s.push_str(&format!("\" numero=\"{numero}\" versione=\""));
    crate::xml::escape(versione, &mut s);
    s.push_str("\">");
    for r in righe {
        s.push_str("<riga>");
        if let Value::Object(m) = r {
            for (k, v) in m {
                if v.is_null() {
                    continue;
                }
                let testo = match v {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                // Column names are our serde field names (ASCII identifiers).
                s.push('<');
                s.push_str(k);
                s.push('>');
                crate::xml::escape(&testo, &mut s);
                s.push_str("</");
                s.push_str(k);
                s.push('>');
            }
        }
        s.push_str("</riga>");
    }
    s.push_str("</tabella>");
    s
}

/// `RispostaMultipla7001`: table `id_tabella` as a base64 XML file.
pub fn tabella(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    id_tabella: u32,
    file: &str,
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaMultipla7001");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    w.apri("datiDettaglioRisposta");
    w.campo("idTabella", &format!("{id_tabella:03}"));
    w.campo(
        "xmlFile",
        &base64::engine::general_purpose::STANDARD.encode(file.as_bytes()),
    );
    w.chiudi("datiDettaglioRisposta");
    w.chiudi("ns:RispostaMultipla7001");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `RispostaMultipla7003`: the interface version this server implements.
pub fn versioni(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    versione: &str,
    dal: &str,
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaMultipla7003");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    let mut parti = versione.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    w.apri("statoVersioni");
    w.apri("versioneCorrente");
    w.campo("CodDestinatario", DESTINATARIO_ANPR);
    w.campo("VersioneCompleta", versione);
    w.campo("VersioneMajor", &parti.next().unwrap_or(0).to_string());
    w.campo("VersioneMinor", &parti.next().unwrap_or(0).to_string());
    w.campo("VersionePatch", &parti.next().unwrap_or(0).to_string());
    w.campo("DataInizio", dal);
    w.chiudi("versioneCorrente");
    w.chiudi("statoVersioni");
    w.chiudi("ns:RispostaMultipla7003");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// True when the outcome blocks (severity E).
pub fn bloccante(a: &Anomalia) -> bool {
    a.gravita == Gravita::Errore
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogo::servizio;
    use crate::xml::parse;

    fn testata() -> Testata {
        Testata {
            id_operazione_comune: "7".into(),
            cod_mittente: "058091".into(),
            data_ora_richiesta: "2026-11-23T10:00:00".into(),
            // 25 characters, several of them multi-byte: cut by characters, not bytes.
            protocollo_comune: Some("èèèèèèèèèèèèèèèèèèèèèèèèè".into()),
            ..Testata::default()
        }
    }

    #[test]
    fn an_operation_with_warnings_is_outcome_6_and_lists_them() {
        let s = servizio("AnprService1000").unwrap();
        let op = s.operazione("Richiesta1002").unwrap();
        let doc = r#"{"idOperazioneANPR":"12","esito":"OK","soggetti":[{"idANPR":"5"}],"anomalie":[{"codice":"EA044","gravita":"W","testo":"CF da validare"}],"decorrenza":"2020-03-01"}"#;
        let extra = [Anomalia::avvertimento("EV105", "non registrato")];
        let xml = operazione(s, op, &testata(), doc, &extra);
        let e = parse(xml.as_bytes()).unwrap();
        let rc = e.a("Body/Risposta1002/Risposta_Comune").unwrap();
        assert_eq!(rc.testo_a("testataRisposta/esitoOperazione"), Some("6"));
        assert_eq!(rc.testo_a("testataRisposta/idOperazioneANPR"), Some("12"));
        assert_eq!(
            rc.testo_a("testataRisposta/dataDecorrenza"),
            Some("2020-03-01")
        );
        assert_eq!(
            rc.testo_a("testataRisposta/protocolloComune")
                .map(|p| p.chars().count()),
            Some(20)
        );
        let codici: Vec<_> = rc
            .figlio("listaAnomalie")
            .unwrap()
            .figli
            .iter()
            .map(|a| a.testo_di("codiceErroreAnomalia").unwrap().to_owned())
            .collect();
        assert_eq!(codici, ["EA044", "EV105"]);
        assert_eq!(
            rc.testo_a("listaSoggettiVariati/datiSoggetto/identificativi/idANPR"),
            Some("5")
        );
    }

    #[test]
    fn a_refusal_ends_with_the_support_entry() {
        let s = servizio("AnprService5000").unwrap();
        let op = s.operazione("Richiesta5005").unwrap();
        let doc = r#"{"idOperazioneANPR":"13","esito":"KO","anomalie":[{"codice":"EF054","gravita":"E","testo":"x","campo":"soggetti"}],"riferimento":{"data":"2026-11-23T10:00:00Z","id":"13"}}"#;
        let xml = operazione(s, op, &testata(), doc, &[]);
        let e = parse(xml.as_bytes()).unwrap();
        let ko = e.a("Body/Risposta5005/rispostaKO").unwrap();
        assert_eq!(ko.testo_a("testataRisposta/esitoOperazione"), Some("3"));
        let errori = &ko.figlio("listaErrori").unwrap().figli;
        assert_eq!(errori[0].testo_di("codiceErroreAnomalia"), Some("EF054"));
        assert_eq!(errori[0].testo_di("campoErroreAnomalia"), Some("soggetti"));
        let ultimo = errori.last().unwrap();
        assert_eq!(
            ultimo.testo_di("codiceErroreAnomalia"),
            Some(CODICE_ASSISTENZA)
        );
        assert!(ultimo
            .testo_di("testoErroreAnomalia")
            .unwrap()
            .contains("idOperazioneANPR 13"));
    }
}
