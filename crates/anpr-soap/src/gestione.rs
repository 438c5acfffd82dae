//! The municipality's requests and notifications read back: 3003
//! (`gestione_richieste`), 3005 (`visualizzazione_eleaborati`) and 3007
//! (`ricerca_identificativi_anpr`). The selection is read here and run by the service
//! layer (`anpr_service::notifiche`, which documents the states); the answers carry
//! ANPR's documents base64-encoded: a request's answer as the XML it had
//! (`RispostaNNNN`, regenerated from the stored response document), a notification as
//! the XML of [`notifica_xml`].

use std::fmt::Display;
use std::str::FromStr;

use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{IdAnprSoggetto, IdOperazioneAnpr, IdOperazioneComune, InvalidValue};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::busta::Scrittore;
use crate::catalogo::{self, Operazione, Servizio};
use crate::richieste::{Testata, CODICE_DATO_NON_GESTITO};
use crate::risposte::{self, scrivi_testata, EsitoTestata};
use crate::xml::Elemento;

/// Namespace of the notification documents (ANPR publishes no schema for them).
pub const NS_NOTIFICHE: &str = "urn:anpr:notifiche";

/// Code for two criteria the XSD admits together but that exclude each other.
const CODICE_CRITERI_INCOMPATIBILI: &str = "EV050";

/// A `xs:dateTime` as received: with its offset, or a civil time to be read in Rome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOra {
    Assoluta(DateTime<Utc>),
    Locale(NaiveDateTime),
}

/// What a 3003/3007 request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ricerca {
    /// `ricercaSingolaRichiesta`: one request (`genere` 1) or notification (2), by
    /// ANPR's id or by the municipality's.
    Singola {
        chiave: ChiaveSingola,
        genere: &'static str,
    },
    /// `ricercaElenchiRichieste`.
    Elenco {
        /// `tab_stati_di_lavorazione` code, `1` to `9`.
        stato: String,
        tipo: Option<String>,
        dal: Option<DataOra>,
        al: Option<DataOra>,
        id_da: Option<IdOperazioneAnpr>,
        id_a: Option<IdOperazioneAnpr>,
        id_comune_da: Option<IdOperazioneComune>,
        id_comune_a: Option<IdOperazioneComune>,
    },
}

/// The id of a single search: ANPR's when given, else the municipality's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChiaveSingola {
    Anpr(IdOperazioneAnpr),
    Comune(IdOperazioneComune),
}

/// A converted 3003/3007 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Richiesta3003 {
    /// `comuneRichiesta/codiceIstat`, when given (it must be the caller's).
    pub comune: Option<String>,
    pub ricerca: Ricerca,
    /// `parametriRicercaSoggetto/datiSoggetto`: `idSchedaSoggettoANPR`, `codiceFiscale`.
    pub id_soggetto: Option<IdAnprSoggetto>,
    pub codice_fiscale: Option<String>,
}

fn data_ora(
    e: &Elemento,
    nome: &str,
    percorso: &str,
    errori: &mut Vec<Anomalia>,
) -> Option<DataOra> {
    let v = e.testo_di(nome)?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(DataOra::Assoluta(t.with_timezone(&Utc)));
    }
    if let Ok(n) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(DataOra::Locale(n));
    }
    errori.push(
        Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Data e ora non valida")
            .campo(format!("{percorso}/{nome}"))
            .valore(v)
            .atteso("una data e ora xs:dateTime (AAAA-MM-GGThh:mm:ss, con o senza fuso)"),
    );
    None
}

/// The id in child `nome` as the registry's type: the XSD admits up to 30 digits, an
/// id out of the registry's range is refused (EV001) rather than dropped, which would
/// widen the selection.
fn identificativo<T: FromStr<Err = InvalidValue>>(
    e: &Elemento,
    nome: &str,
    percorso: &str,
    errori: &mut Vec<Anomalia>,
) -> Option<T> {
    let v = e.testo_di(nome)?.trim();
    v.parse::<T>()
        .map_err(|x| errori.push(Anomalia::from_invalid(format!("{percorso}/{nome}"), &x)))
        .ok()
}

/// EV001 on `campo` (the range's end) when range `da`..=`a` is empty.
fn intervallo<T: Ord + Display>(
    da: Option<T>,
    a: Option<T>,
    campo: String,
    errori: &mut Vec<Anomalia>,
) {
    if let (Some(da), Some(a)) = (da, a) {
        if a < da {
            errori.push(
                Anomalia::errore(
                    CODICE_VALORE_NON_VALIDO,
                    "Intervallo di identificativi vuoto",
                )
                .campo(campo)
                .valore(a.to_string())
                .atteso(format!("non minore di {da}")),
            );
        }
    }
}

fn non_gestito(campo: String, atteso: &str) -> Anomalia {
    Anomalia::errore(
        CODICE_DATO_NON_GESTITO,
        "Criterio previsto dallo schema ma non gestito in questa versione",
    )
    .campo(campo)
    .atteso(atteso)
}

/// Reads a `Richiesta3003` or `Richiesta3007` (same children), reporting every
/// malformed or unsupported criterion: `protocolloComune` (the registry does not keep
/// the municipality's protocol), the subject's names and birth, `dettaglioElenco` and
/// `parametriProcedimenti` (3004 searches proceedings) answer EV105.
pub fn converti_3003(r: &Elemento) -> Result<Richiesta3003, Vec<Anomalia>> {
    let radice = r.nome.as_str();
    let mut e = Vec::new();
    let singola = r.figlio("ricercaSingolaRichiesta");
    let elenchi = r.figlio("ricercaElenchiRichieste");
    let ricerca = match (singola, elenchi) {
        (Some(_), Some(_)) => {
            e.push(
                Anomalia::errore(
                    CODICE_CRITERI_INCOMPATIBILI,
                    "Indicare una sola modalita' di ricerca",
                )
                .campo(format!("{radice}/ricercaElenchiRichieste"))
                .atteso("ricercaSingolaRichiesta oppure ricercaElenchiRichieste"),
            );
            None
        }
        (None, None) => {
            e.push(
                Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Modalita' di ricerca mancante")
                    .campo(format!("{radice}/ricercaSingolaRichiesta"))
                    .atteso("ricercaSingolaRichiesta oppure ricercaElenchiRichieste"),
            );
            None
        }
        (Some(s), None) => singola_richiesta(s, radice, &mut e),
        (None, Some(l)) => elenco_richieste(l, radice, &mut e),
    };
    let mut id_soggetto = None;
    let mut codice_fiscale = None;
    if let Some(p) = r.figlio("parametriRicercaSoggetto") {
        let percorso = format!("{radice}/parametriRicercaSoggetto");
        if singola.is_some() {
            e.push(
                Anomalia::errore(
                    CODICE_CRITERI_INCOMPATIBILI,
                    "I parametri del soggetto restringono un elenco, non una ricerca singola",
                )
                .campo(percorso.clone())
                .atteso("ricercaElenchiRichieste con parametriRicercaSoggetto"),
            );
        }
        if p.figlio("dettaglioElenco").is_some() {
            e.push(non_gestito(
                format!("{percorso}/dettaglioElenco"),
                "datiSoggetto con idSchedaSoggettoANPR o codiceFiscale",
            ));
        }
        if let Some(d) = p.figlio("datiSoggetto") {
            let percorso = format!("{percorso}/datiSoggetto");
            id_soggetto = identificativo(d, "idSchedaSoggettoANPR", &percorso, &mut e);
            codice_fiscale = d.testo_di("codiceFiscale").map(str::to_owned);
            for f in &d.figli {
                if matches!(f.nome.as_str(), "cognome" | "nome" | "datiNascitaSoggetto") {
                    e.push(non_gestito(
                        format!("{percorso}/{}", f.nome),
                        "idSchedaSoggettoANPR o codiceFiscale",
                    ));
                }
            }
        }
    }
    if r.figlio("parametriProcedimenti").is_some() {
        e.push(non_gestito(
            format!("{radice}/parametriProcedimenti"),
            "i procedimenti si consultano con il servizio 3004",
        ));
    }
    match ricerca {
        Some(ricerca) if e.is_empty() => Ok(Richiesta3003 {
            comune: r.testo_a("comuneRichiesta/codiceIstat").map(str::to_owned),
            ricerca,
            id_soggetto,
            codice_fiscale,
        }),
        _ => Err(e),
    }
}

fn singola_richiesta(s: &Elemento, radice: &str, e: &mut Vec<Anomalia>) -> Option<Ricerca> {
    let percorso = format!("{radice}/ricercaSingolaRichiesta");
    let genere = match s.testo_di("tipoOperazione").map(str::trim) {
        Some("1") => "1",
        Some("2") => "2",
        altro => {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Tipo operazione non valido")
                    .campo(format!("{percorso}/tipoOperazione"))
                    .valore(altro.unwrap_or(""))
                    .atteso("1 (richiesta del comune) o 2 (notifica al comune)"),
            );
            return None;
        }
    };
    if s.figlio("protocolloComune").is_some() {
        e.push(non_gestito(
            format!("{percorso}/protocolloComune"),
            "idOperazioneANPR o idOperazioneComune",
        ));
        return None;
    }
    let id_anpr = identificativo(s, "idOperazioneANPR", &percorso, e);
    let id_comune = identificativo(s, "idOperazioneComune", &percorso, e);
    if s.figlio("idOperazioneANPR").is_none() && s.figlio("idOperazioneComune").is_none() {
        e.push(
            Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Identificativo della richiesta mancante",
            )
            .campo(format!("{percorso}/idOperazioneANPR"))
            .atteso("idOperazioneANPR o idOperazioneComune"),
        );
    }
    let chiave = id_anpr
        .map(ChiaveSingola::Anpr)
        .or(id_comune.map(ChiaveSingola::Comune));
    if genere == "2"
        && s.figlio("idOperazioneComune").is_some()
        && s.figlio("idOperazioneANPR").is_none()
    {
        e.push(
            Anomalia::errore(
                CODICE_CRITERI_INCOMPATIBILI,
                "Le notifiche non hanno un identificativo del comune",
            )
            .campo(format!("{percorso}/idOperazioneComune"))
            .atteso("idOperazioneANPR dell'operazione notificata"),
        );
    }
    let chiave = chiave.filter(|_| e.is_empty())?;
    Some(Ricerca::Singola { chiave, genere })
}

fn elenco_richieste(l: &Elemento, radice: &str, e: &mut Vec<Anomalia>) -> Option<Ricerca> {
    let percorso = format!("{radice}/ricercaElenchiRichieste");
    let stato_ricevuto = l.testo_di("statoLavorazione").unwrap_or("").trim();
    let stato = stato_ricevuto.trim_start_matches('0');
    if !matches!(stato, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9") {
        e.push(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Stato di lavorazione non valido")
                .campo(format!("{percorso}/statoLavorazione"))
                .valore(stato_ricevuto)
                .atteso("un codice della tabella degli stati di lavorazione, da 1 a 9"),
        );
    }
    let (mut dal, mut al) = (None, None);
    if let Some(p) = l.figlio("periodoRiferimentoRichieste") {
        let pp = format!("{percorso}/periodoRiferimentoRichieste");
        dal = data_ora(p, "dataOraIniziale", &pp, e);
        al = data_ora(p, "dataOraFinale", &pp, e);
        let confrontabili = match (dal, al) {
            (Some(DataOra::Assoluta(d)), Some(DataOra::Assoluta(a))) => {
                Some((d.naive_utc(), a.naive_utc()))
            }
            (Some(DataOra::Locale(d)), Some(DataOra::Locale(a))) => Some((d, a)),
            _ => None,
        };
        if let Some((d, a)) = confrontabili {
            if a < d {
                e.push(Anomalia::periodo_invertito(
                    format!("{pp}/dataOraFinale"),
                    d,
                    a,
                ));
            }
        }
    }
    let (mut id_da, mut id_a) = (None, None);
    if let Some(i) = l.figlio("identificativiANPR") {
        let pi = format!("{percorso}/identificativiANPR");
        id_da = identificativo(i, "protocolloANPRDa", &pi, e);
        id_a = identificativo(i, "protocolloANPRA", &pi, e);
        intervallo(id_da, id_a, format!("{pi}/protocolloANPRA"), e);
    }
    let (mut id_comune_da, mut id_comune_a) = (None, None);
    if let Some(i) = l.figlio("identificativiComune") {
        let pi = format!("{percorso}/identificativiComune");
        for n in ["protocolloComuneDa", "protocolloComuneA"] {
            if i.figlio(n).is_some() {
                e.push(non_gestito(
                    format!("{pi}/{n}"),
                    "idOperazioneComuneDa e idOperazioneComuneA",
                ));
            }
        }
        id_comune_da = identificativo(i, "idOperazioneComuneDa", &pi, e);
        id_comune_a = identificativo(i, "idOperazioneComuneA", &pi, e);
        intervallo(
            id_comune_da,
            id_comune_a,
            format!("{pi}/idOperazioneComuneA"),
            e,
        );
    }
    e.is_empty().then(|| Ricerca::Elenco {
        stato: stato.to_owned(),
        tipo: l
            .testo_di("operazioneRichiesta")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        dal,
        al,
        id_da,
        id_a,
        id_comune_da,
        id_comune_a,
    })
}

/// One item of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoceRisposta {
    pub stato: String,
    pub tipo: String,
    pub id_operazione_anpr: String,
    /// The document (3003 only); `None` for asynchronous requests, whose outcome is
    /// read with 4005 and file with 7002.
    pub xml: Option<String>,
}

/// `comuneRichiesta` of the answers: name, ISTAT code, province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComuneRichiesta {
    pub nome: String,
    pub codice_istat: String,
    pub sigla_provincia: String,
}

fn scrivi_comune(w: &mut Scrittore, c: &ComuneRichiesta) {
    w.apri("comuneRichiesta");
    w.campo("nomeComune", &c.nome);
    w.campo("codiceIstat", &c.codice_istat);
    w.campo("siglaProvinciaIstat", &c.sigla_provincia);
    w.chiudi("comuneRichiesta");
}

/// `Risposta3003_OK` (with `elencoRisposte`) or `Risposta3007_OK` (with
/// `listaOperazioniAnpr`), echoing the selection.
pub fn risposta_3003(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    r: &Elemento,
    comune: &ComuneRichiesta,
    voci: &[VoceRisposta],
    riferimento_id: &str,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let radice = format!("ns:{}_OK", op.risposta);
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri(&radice);
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    scrivi_comune(&mut w, comune);
    for nome in [
        "ricercaSingolaRichiesta",
        "ricercaElenchiRichieste",
        "parametriRicercaSoggetto",
        "parametriProcedimenti",
    ] {
        if let Some(e) = r.figlio(nome) {
            w.copia(nome, e);
        }
    }
    if op.codice == "3007" {
        w.apri("listaOperazioniAnpr");
        for v in voci {
            w.apri("operazioneANPR");
            w.campo("statoLavorazione", &v.stato);
            w.campo("tipoOperazione", &v.tipo);
            w.campo("idOperazioneANPR", &v.id_operazione_anpr);
            w.chiudi("operazioneANPR");
        }
        w.chiudi("listaOperazioniAnpr");
    } else {
        for v in voci {
            w.apri("elencoRisposte");
            w.campo("statoLavorazione", &v.stato);
            w.campo("tipoOperazione", &v.tipo);
            if let Some(x) = &v.xml {
                w.campo("xmlRisposta", &b64.encode(x.as_bytes()));
            }
            w.chiudi("elencoRisposte");
        }
    }
    w.chiudi(&radice);
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `Risposta3005_OK`: the document of `idOperazioneANPR`, base64 in `file/xmlFile`.
pub fn risposta_3005(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    r: &Elemento,
    contenuto: &[u8],
    riferimento_id: &str,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:Risposta3005_OK");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    w.apri("datiRichiesta");
    w.campo_max(
        "idOperazioneANPR",
        r.testo_a("datiRichiesta/idOperazioneANPR").unwrap_or("0"),
        30,
    );
    w.chiudi("datiRichiesta");
    w.apri("file");
    w.campo("xmlFile", &b64.encode(contenuto));
    w.chiudi("file");
    w.chiudi("ns:Risposta3005_OK");
    w.chiudi("ns:Risposta3005");
    w.fine()
}

/// The service and operation of ANPR service code `codice` (`1001`...).
fn operazione_di(codice: &str) -> Option<(&'static Servizio, &'static Operazione)> {
    catalogo::servizi().iter().find_map(|s| {
        s.operazioni
            .iter()
            .find(|o| o.codice == codice)
            .map(|o| (s, o))
    })
}

/// The SOAP envelope's body content, as a standalone XML document.
fn senza_busta(messaggio: &str) -> String {
    let inizio = messaggio
        .find("<soap:Body>")
        .map_or(0, |i| i + "<soap:Body>".len());
    let fine = messaggio.rfind("</soap:Body>").unwrap_or(messaggio.len());
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>{}",
        messaggio.get(inizio..fine).unwrap_or_default()
    )
}

/// A stored operation's answer (`RispostaNNNN`), as the municipality received it:
/// regenerated from the stored response document, the header rebuilt from what the
/// operation recorded (its ids, service, municipality, registration time). `None` for
/// a service code without a SOAP answer.
pub fn risposta_operazione(
    codice: &str,
    comune: &str,
    id_operazione_comune: Option<&str>,
    registrata_il: DateTime<Utc>,
    documento: &str,
) -> Option<String> {
    let (servizio, op) = operazione_di(codice)?;
    let t = Testata {
        id_operazione_comune: id_operazione_comune.unwrap_or_default().to_owned(),
        cod_mittente: comune.to_owned(),
        cod_destinatario: crate::richieste::DESTINATARIO_ANPR.to_owned(),
        operazione_richiesta: codice.to_owned(),
        data_ora_richiesta: registrata_il.format("%Y-%m-%dT%H:%M:%S").to_string(),
        ..Testata::default()
    };
    Some(senza_busta(&risposte::operazione(
        servizio,
        op,
        &t,
        documento,
        &[],
    )))
}

/// A notification as an XML document (namespace [`NS_NOTIFICHE`]): its kind, the
/// operation that produced it, when it was queued, and its content (the notification's
/// fields as elements, lists repeated).
pub fn notifica_xml(
    tipo: &str,
    id_operazione_anpr: &str,
    creata_il: DateTime<Utc>,
    contenuto: &Value,
) -> String {
    let mut w = Scrittore::documento();
    w.apri_ns("n", "notifica", NS_NOTIFICHE);
    w.campo("tipoNotifica", tipo);
    w.campo("idOperazioneANPR", id_operazione_anpr);
    w.campo(
        "dataOraNotifica",
        &creata_il.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    w.apri("contenuto");
    scrivi_valore(&mut w, contenuto);
    w.chiudi("contenuto");
    w.chiudi("n:notifica");
    w.fine_documento()
}

fn scrivi_valore(w: &mut Scrittore, v: &Value) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            // Keys are ours (the service layer's), always XML names; anything else
            // is skipped rather than written as a malformed element.
            let nome_valido = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !nome_valido {
                continue;
            }
            match v {
                Value::Array(a) => {
                    for x in a {
                        scrivi_campo(w, k, x);
                    }
                }
                _ => scrivi_campo(w, k, v),
            }
        }
    }
}

fn scrivi_campo(w: &mut Scrittore, nome: &str, v: &Value) {
    match v {
        Value::Null => {}
        Value::Object(_) => {
            w.apri(nome);
            scrivi_valore(w, v);
            w.chiudi(nome);
        }
        Value::String(s) => w.campo(nome, s),
        altro => w.campo(nome, &altro.to_string()),
    }
}
