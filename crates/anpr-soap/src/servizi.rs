//! Services answered outside the registry pipeline: certificates (6001), asynchronous
//! extractions and ISTAT tables (4001-4005) and the download of their files (7002),
//! the subentro upload (S001).
//!
//! Requests are converted by hand into the input of their use case (for the 4000
//! family the REST body, whose field names are the XSD's: see `docs/ESTRAZIONI.md`);
//! answers are written in the XSD's element order. Parts of a request the answer
//! repeats with the same XSD type (`criteriRicerca`, `datiRichiesta`,
//! `soggettoIntestatario`...) are echoed as received: they were validated against
//! that type on the way in.

use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO};
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::busta::{scrivi_anomalia, Scrittore};
use crate::catalogo::{Operazione, Servizio};
use crate::richieste::{Testata, CODICE_DATO_NON_GESTITO};
use crate::risposte::{scrivi_testata, EsitoTestata, ESITO_OK, ESITO_OK_CON_AVVERTIMENTI};
use crate::xml::Elemento;

/// Our code for a value the XSD admits that this release does not handle (e.g. 6001
/// `tipoRichiesta` 2, a preview, a 4005 detail level other than `ID`).
pub const CODICE_VALORE_NON_GESTITO: &str = "EV118";

fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An element as JSON, the way the REST bodies of the 4000 family take it: a leaf is
/// its trimmed text, an element with children an object keyed by the children's names;
/// the children named in `ripetuti` (`maxOccurs` > 1) are arrays.
pub fn in_json(e: &Elemento, ripetuti: &[&str]) -> Value {
    if e.figli.is_empty() {
        return Value::String(e.testo.trim().to_owned());
    }
    let mut m = Map::new();
    for f in &e.figli {
        let v = in_json(f, ripetuti);
        if ripetuti.contains(&f.nome.as_str()) {
            match m
                .entry(f.nome.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(a) => a.push(v),
                altro => *altro = Value::Array(vec![v]),
            }
        } else {
            m.insert(f.nome.clone(), v);
        }
    }
    Value::Object(m)
}

/// Converts a submission of the 4000 family (4001-4004) into the REST body of its use
/// case. `None`: not a submission.
pub fn converti_4000(codice: &str, r: &Elemento, t: &Testata) -> Option<Value> {
    let (parte, ripetuti): (&str, &[&str]) = match codice {
        "4001" => ("criteriRicerca", &["datiAnagraficiRichiesti"]),
        "4002" => ("criteriRicerca", &["datiRichiesti"]),
        "4003" | "4004" => ("datiRichiesta", &[]),
        _ => return None,
    };
    let mut m = Map::new();
    m.insert("idOperazioneComune".into(), json!(t.id_operazione_comune));
    let mut v = r
        .figlio(parte)
        .map_or_else(|| json!({}), |p| in_json(p, ripetuti));
    if let Some(Value::String(s)) = v.get_mut("xmlFileCodiciFiscali") {
        // base64 may be folded on several lines.
        s.retain(|c| !c.is_ascii_whitespace());
    }
    m.insert(parte.into(), v);
    Some(Value::Object(m))
}

/// The path of a request part named by a REST body error (`unknown field `x``).
pub fn rifiuto_corpo(r: &Elemento, parte: &str, errore: &str) -> Anomalia {
    Anomalia::errore(
        CODICE_DATO_NON_GESTITO,
        "Elemento previsto dallo schema ma non gestito in questa versione",
    )
    .campo(format!("{}/{parte}", r.nome))
    .valore(errore.chars().take(200).collect::<String>())
}

/// An accepted asynchronous request (4001-4004): `RispostaMultipla400N` with the
/// request id, echoing the criteria.
pub fn accettata_4000(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    r: &Elemento,
    id_operazione_anpr: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    let multipla = format!("ns:RispostaMultipla{}", op.codice);
    w.apri(&multipla);
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(id_operazione_anpr));
    match op.codice.as_str() {
        "4001" => {
            if let Some(c) = r.figlio("criteriRicerca") {
                w.copia("criteriRicerca", c);
            }
        }
        "4002" => {
            if let Some(c) = r.figlio("criteriRicerca") {
                w.apri("datiRichiesti");
                if let Some(d) = c.figlio("dataRiferimento") {
                    w.copia("dataRiferimento", d);
                }
                for d in c.figli_nominati("datiRichiesti") {
                    w.copia("datiRichiesti", d);
                }
                w.chiudi("datiRichiesti");
            }
        }
        _ => {
            if let Some(d) = r.figlio("datiRichiesta") {
                w.copia("datiRichiesta", d);
            }
        }
    }
    w.campo("idOperazioneANPR", id_operazione_anpr);
    w.chiudi(&multipla);
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// What a 4005 request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Richiesta4005 {
    /// `verificaStato`: one request (its `idOperazioneANPR`).
    Stato(String),
    /// `elaborazione`: the municipality's requests, as the REST list filter
    /// (`statoRichiesta`, `servizio`, `dal`, `al`).
    Elenco(Value),
}

/// Converts a 4005 request. The file is answered in one block (`progressivo` 1);
/// the detail level is `ID` (ids and states; the files through `verificaStato` or
/// 7002).
pub fn converti_4005(r: &Elemento) -> Result<Richiesta4005, Vec<Anomalia>> {
    let non_gestito = |campo: String, valore: &str, atteso: &str| {
        Anomalia::errore(
            CODICE_VALORE_NON_GESTITO,
            "Valore previsto dallo schema ma non gestito in questa versione",
        )
        .campo(campo)
        .valore(valore)
        .atteso(atteso)
    };
    if let Some(v) = r.figlio("verificaStato") {
        let p = format!("{}/verificaStato", r.nome);
        let prog = v.testo_di("progressivo").unwrap_or("1");
        if !matches!(prog.trim_start_matches('0'), "" | "1") {
            return Err(vec![non_gestito(
                format!("{p}/progressivo"),
                prog,
                "1 (il file e' fornito in un solo blocco)",
            )]);
        }
        return Ok(Richiesta4005::Stato(
            v.testo_di("idOperazioneANPR").unwrap_or("").to_owned(),
        ));
    }
    let p = format!("{}/elaborazione", r.nome);
    let e = r.figlio("elaborazione");
    let mut errori = Vec::new();
    if let Some(d) = e.and_then(|e| e.testo_di("dettaglioDati")) {
        if d != "ID" {
            errori.push(non_gestito(
                format!("{p}/dettaglioDati"),
                d,
                "ID (i file con verificaStato o 7002)",
            ));
        }
    }
    let mut f = Map::new();
    if let Some(c) = e.and_then(|e| e.figlio("ricercaElenchiRichieste")) {
        let pc = format!("{p}/ricercaElenchiRichieste");
        if let Some(s) = c.testo_di("statoLavorazione") {
            let s = s.trim_start_matches('0');
            f.insert(
                "statoRichiesta".into(),
                json!(if s.is_empty() { "0" } else { s }),
            );
        }
        if let Some(o) = c.testo_di("operazioneRichiesta") {
            f.insert("servizio".into(), json!(o));
        }
        if let Some(pr) = c.figlio("periodoRiferimentoRichieste") {
            let data = |n: &str| {
                pr.testo_di(n)
                    .map(|d| d.chars().take(10).collect::<String>())
            };
            f.insert("dal".into(), json!(data("dataOraIniziale")));
            f.insert("al".into(), json!(data("dataOraFinale")));
        }
        if c.figlio("identificativiANPR").is_some() {
            errori.push(
                Anomalia::errore(
                    CODICE_DATO_NON_GESTITO,
                    "Elemento previsto dallo schema ma non gestito in questa versione",
                )
                .campo(format!("{pc}/identificativiANPR"))
                .atteso("statoLavorazione, operazioneRichiesta, periodoRiferimentoRichieste"),
            );
        }
    }
    if errori.is_empty() {
        Ok(Richiesta4005::Elenco(Value::Object(f)))
    } else {
        Err(errori)
    }
}

/// One request in a 4005 answer (`tipodatiRisposta4005`).
#[derive(Debug, Clone, Default)]
pub struct VoceRichiesta {
    pub id_operazione_anpr: String,
    pub stato: String,
    pub servizio: String,
    /// The result (file, or the outcome document of a refused or failed request).
    pub contenuto: Option<(Vec<u8>, String)>,
}

/// `RispostaMultipla4005`. `stato`/`id`/`disponibile`: the request verified (or, for a
/// list, `2`, the answer's reference and now).
pub fn risposta_4005(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    r: &Elemento,
    (stato, id, disponibile): (&str, &str, &str),
    voci: &[VoceRichiesta],
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaMultipla4005");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    w.campo("statoRichiesta", stato);
    w.campo("idOperazioneANPR", id);
    w.campo("dataDisponibilita", disponibile);
    if let Some(e) = r.figlio("elaborazione") {
        if let Some(c) = e.figlio("comuneRichiesta") {
            w.copia("comuneRichiesta", c);
        }
        if let Some(c) = e.figlio("ricercaElenchiRichieste") {
            w.copia("ricercaElenchiRichieste", c);
        }
    }
    if r.figlio("verificaStato").is_some() && voci.iter().any(|v| v.contenuto.is_some()) {
        w.apri("datiFornitura");
        w.campo("progressivoCorrente", "1");
        w.campo("progressivoTotale", "1");
        w.chiudi("datiFornitura");
    }
    for v in voci {
        w.apri("elencoRisposte");
        w.campo("idOperazioneANPR", &v.id_operazione_anpr);
        w.campo_max("statoLavorazione", &v.stato, 2);
        w.campo_max("tipoOperazione", &v.servizio, 4);
        if let Some((dati, formato)) = &v.contenuto {
            w.campo("contenutoRisposta", &base64(dati));
            w.campo_max("formatoRisposta", formato, 4);
        }
        w.chiudi("elencoRisposte");
    }
    w.chiudi("ns:RispostaMultipla4005");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `RispostaMultipla7002`: the file of a concluded request.
pub fn risposta_7002(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    r: &Elemento,
    file: &[u8],
    formato: &str,
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaMultipla7002");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    match r.figlio("datiRichiesta") {
        Some(d) => w.copia("datiRichiesta", d),
        None => {
            w.apri("datiRichiesta");
            w.campo("idOperazioneANPR", "0");
            w.chiudi("datiRichiesta");
        }
    }
    w.apri("file");
    w.campo("contenutoFile", &base64(file));
    w.chiudi("file");
    w.campo("formato", formato);
    w.chiudi("ns:RispostaMultipla7002");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `Richiesta6001` converted: the certificate request of the use case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Richiesta6001 {
    /// The subject: national id (`idSchedaSoggettoANPR`) or tax code.
    pub id_anpr: Option<String>,
    pub codice_fiscale: Option<String>,
    pub tipi: Vec<u8>,
    /// Second language (DE, FR, SL); Italian is implied.
    pub lingua: Option<String>,
    /// Reference date of the historical certificates: `dataDecorrenza` of the header.
    pub data_riferimento: Option<String>,
    /// Applicant other than the subject (`tipoRichiedente` 1): surname, name, CF.
    pub richiedente: Option<(String, String, Option<String>)>,
    pub esenzione_bollo: Option<String>,
    pub descrizione_esenzione_bollo: Option<String>,
    /// The use printed on the certificate (`paEstera` 1-4).
    pub uso: Option<String>,
    pub forza_certificazione: bool,
    /// Data accepted but not used (EV105 W).
    pub avvertimenti: Vec<Anomalia>,
}

/// Converts `Richiesta6001` (checked against its XSD).
///
/// Issues one certificate (`tipoRichiesta` 1, `emissione` 1 or 2); `tipoRichiesta` 2
/// (data only) and `emissione` 3 (preview) answer EV118. The amounts (`bollo`,
/// `diritti`) are computed by the use case from the exemption (`esenzioneBollo`, table
/// "Esenzione bollo") and the municipality's parameters, and echoed in
/// `parametriRichiesta`; the officer is the municipality's signing officer.
pub fn converti_6001(r: &Elemento, t: &Testata) -> Result<Richiesta6001, Vec<Anomalia>> {
    let mut out = Richiesta6001::default();
    let mut errori = Vec::new();
    let n = &r.nome;
    let non_gestito = |campo: String, valore: &str, atteso: &str| {
        Anomalia::errore(
            CODICE_VALORE_NON_GESTITO,
            "Valore previsto dallo schema ma non gestito in questa versione",
        )
        .campo(campo)
        .valore(valore)
        .atteso(atteso)
    };
    // The subject.
    if let Some(g) = r.a("soggettoIntestatario/generalita") {
        out.id_anpr = g.testo_di("idSchedaSoggettoANPR").map(str::to_owned);
        out.codice_fiscale = g.testo_a("codiceFiscale/codFiscale").map(str::to_owned);
    }
    if out.id_anpr.is_none() && out.codice_fiscale.is_none() {
        errori.push(
            Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Intestatario non identificato")
                .campo(format!("{n}/soggettoIntestatario/generalita"))
                .atteso("idSchedaSoggettoANPR o codiceFiscale/codFiscale"),
        );
    }
    // Types: table 13 codes.
    for (i, e) in r
        .a("listaTipiCertificati")
        .map(|l| l.figli_nominati("tipoCertificato").collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match e.testo.trim().parse::<u8>() {
            Ok(c) => out.tipi.push(c),
            Err(_) => errori.push(
                Anomalia::errore(
                    anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                    "Tipo di certificato non valido",
                )
                .campo(format!(
                    "{n}/listaTipiCertificati/tipoCertificato[{}]",
                    i + 1
                ))
                .valore(e.testo.trim()),
            ),
        }
    }
    // Languages: Italian always; at most one second language.
    let lingue: Vec<String> = r
        .figlio("linguaCertificato")
        .map(|l| {
            l.figli_nominati("tipoLinguaCertificato")
                .map(|e| e.testo.trim().to_ascii_uppercase())
                .filter(|l| l != "IT")
                .collect()
        })
        .unwrap_or_default();
    match lingue.as_slice() {
        [] => {}
        [l] => out.lingua = Some(l.clone()),
        [_, altra, ..] => errori.push(non_gestito(
            format!("{n}/linguaCertificato/tipoLinguaCertificato"),
            altra,
            "IT e al piu' una seconda lingua (DE, FR, SL)",
        )),
    }
    out.data_riferimento = t.data_decorrenza.clone();
    let d = r.figlio("datiControllo");
    let dc = |x: &str| d.and_then(|d| d.testo_di(x));
    let pd = format!("{n}/datiControllo");
    if let Some(v) = dc("tipoRichiesta").filter(|v| *v != "1") {
        errori.push(non_gestito(
            format!("{pd}/tipoRichiesta"),
            v,
            "1 (emissione del certificato)",
        ));
    }
    if let Some(v) = dc("emissione").filter(|v| !matches!(*v, "1" | "2")) {
        errori.push(non_gestito(
            format!("{pd}/emissione"),
            v,
            "1 (sportello) o 2 (internet)",
        ));
    }
    match dc("tipoRichiedente") {
        Some("1") => match r.a("generalitaRichiedente/generalita") {
            Some(g) => {
                out.richiedente = Some((
                    g.testo_di("cognome").unwrap_or("").to_owned(),
                    g.testo_di("nome").unwrap_or("").to_owned(),
                    g.testo_a("codiceFiscale/codFiscale").map(str::to_owned),
                ));
            }
            None => errori.push(
                Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    "Richiedente diverso dall'intestatario: indicarne le generalita'",
                )
                .campo(format!("{n}/generalitaRichiedente"))
                .atteso("generalitaRichiedente con tipoRichiedente 1"),
            ),
        },
        Some("2" | "3") | None => {}
        Some(v) => errori.push(non_gestito(
            format!("{pd}/tipoRichiedente"),
            v,
            "1 (altra persona), 2 (l'intestatario) o 3 (una PA)",
        )),
    }
    out.uso = match dc("paEstera").map(|v| v.trim_start_matches('0')) {
        None | Some("") => None,
        Some("1") => Some("PER PUBBLICA AMMINISTRAZIONE ESTERA".into()),
        Some("2" | "3") => Some(
            "CERTIFICATO RILASCIATO PER PROCEDIMENTI DISCIPLINATI DALLE NORME SULL'IMMIGRAZIONE"
                .into(),
        ),
        Some("4") => Some("CERTIFICATO RILASCIATO PER L'ESTERO".into()),
        Some(v) => {
            errori.push(non_gestito(format!("{pd}/paEstera"), v, "da 0 a 4"));
            None
        }
    };
    out.esenzione_bollo = dc("esenzioneBollo")
        .map(|v| v.trim_start_matches('0'))
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    out.descrizione_esenzione_bollo = dc("descrizioneEsenzioneBollo").map(str::to_owned);
    out.forza_certificazione = dc("forzaCertificazione") == Some("1");
    if d.and_then(|d| d.figlio("listaAnnotazioni")).is_some() {
        errori.push(
            Anomalia::errore(
                CODICE_DATO_NON_GESTITO,
                "Annotazioni sul certificato non gestite in questa versione",
            )
            .campo(format!("{pd}/listaAnnotazioni")),
        );
    }
    for x in [
        "bolloVirtuale",
        "esenzioneDiritti",
        "modalita",
        "tipoFirmaElettorale",
    ] {
        if let Some(v) = dc(x) {
            out.avvertimenti.push(
                Anomalia::avvertimento(
                    CODICE_DATO_NON_GESTITO,
                    "Dato accettato ma non registrato in questa versione",
                )
                .campo(format!("{pd}/{x}"))
                .valore(v),
            );
        }
    }
    if r.a("generalitaRichiedente/docRiconoscimento").is_some() {
        out.avvertimenti.push(
            Anomalia::avvertimento(
                CODICE_DATO_NON_GESTITO,
                "Dato accettato ma non registrato in questa versione",
            )
            .campo(format!("{n}/generalitaRichiedente/docRiconoscimento")),
        );
    }
    if errori.is_empty() {
        Ok(out)
    } else {
        Err(errori)
    }
}

/// An issued certificate, for [`risposta_6001`].
#[derive(Debug, Clone)]
pub struct Emesso<'a> {
    pub numero_protocollo: u64,
    pub bollo: u32,
    pub diritti: u32,
    pub pdf: &'a [u8],
    /// Warnings of the conversion.
    pub avvertimenti: &'a [Anomalia],
}

/// `Risposta6001OK`: the request's languages, types and subject echoed, the protocol
/// number, the parameters with the amounts charged, the PDF (`file/certificatoPdf`).
pub fn risposta_6001(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    r: &Elemento,
    e: &Emesso<'_>,
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:Risposta6001OK");
    let esito = if e.avvertimenti.is_empty() {
        ESITO_OK
    } else {
        ESITO_OK_CON_AVVERTIMENTI
    };
    scrivi_testata(
        &mut w,
        t,
        &op.codice,
        &EsitoTestata {
            id_operazione_anpr: riferimento_id,
            esito,
            ..EsitoTestata::default()
        },
    );
    if let Some(l) = r.figlio("linguaCertificato") {
        w.copia("linguaCertificato", l);
    }
    if let Some(l) = r.figlio("listaTipiCertificati") {
        w.copia("listaTipiCertificato", l);
    }
    if let Some(s) = r.figlio("soggettoIntestatario") {
        w.copia("soggettoIntestatario", s);
    }
    w.apri("protocolloANPR");
    w.campo("numeroProtocolloANPR", &e.numero_protocollo.to_string());
    w.chiudi("protocolloANPR");
    w.apri("parametriRichiesta");
    let d = r.figlio("datiControllo");
    let dc = |x: &str| d.and_then(|d| d.testo_di(x));
    w.campo("tipoRichiedente", dc("tipoRichiedente").unwrap_or("2"));
    w.campo("tipoRichiesta", dc("tipoRichiesta").unwrap_or("1"));
    w.campo("paEstera", dc("paEstera").unwrap_or("0"));
    w.campo("emissione", dc("emissione").unwrap_or("1"));
    w.campo("bollo", &e.bollo.to_string());
    w.campo_opt("bolloVirtuale", dc("bolloVirtuale"));
    w.campo_opt("esenzioneDiritti", dc("esenzioneDiritti"));
    w.campo("diritti", &e.diritti.to_string());
    w.campo_opt("esenzioneBollo", dc("esenzioneBollo"));
    w.campo_opt("descrizioneEsenzioneBollo", dc("descrizioneEsenzioneBollo"));
    w.campo_opt("forzaCertificazione", dc("forzaCertificazione"));
    w.chiudi("parametriRichiesta");
    w.apri("file");
    w.campo("certificatoPdf", &base64(e.pdf));
    w.chiudi("file");
    if !e.avvertimenti.is_empty() {
        w.apri("listaAnomalie");
        for a in e.avvertimenti {
            scrivi_anomalia(&mut w, "anomalie", a);
        }
        w.chiudi("listaAnomalie");
    }
    w.chiudi("ns:Risposta6001OK");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// Converts `Richiesta3004` (one criterion, the XSD's choice) into the proceeding
/// search of the REST edge (`POST /api/v1/procedimenti/ricerca`): the proceeding's
/// ANPR or municipal number, a linked registry operation (`idOpANPRCollegata`) or a
/// linked subject (by `idSchedaSoggettoANPR` or CF). `idOpComunaleCollegata` answers
/// EV105 (the links record ANPR's operation id).
pub fn converti_3004(r: &Elemento) -> Result<Value, Vec<Anomalia>> {
    let p = format!("{}/parametriRicerca3004", r.nome);
    let mut m = Map::new();
    let Some(c) = r.figlio("parametriRicerca3004") else {
        return Err(vec![Anomalia::errore(
            CODICE_CAMPO_OBBLIGATORIO,
            "Parametri di ricerca mancanti",
        )
        .campo(p)]);
    };
    if let Some(v) = c.testo_di("numeroProcedimentoAmm") {
        m.insert("numeroPraticaAnpr".into(), json!(v));
    } else if let Some(v) = c.testo_di("numeroPraticaComune") {
        m.insert("numeroPraticaComune".into(), json!(v));
    } else if let Some(v) = c.testo_di("idOpANPRCollegata") {
        m.insert("idOperazioneANPR".into(), json!(v));
    } else if let Some(g) = c.figlio("generalitaSoggettoCollegato") {
        if let Some(id) = g.testo_di("idSchedaSoggettoANPR") {
            m.insert("idSchedaSoggettoANPR".into(), json!(id));
        } else if let Some(cf) = g.testo_a("codiceFiscale/codFiscale") {
            m.insert("codiceFiscale".into(), json!(cf));
        } else {
            return Err(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Soggetto non identificato",
            )
            .campo(format!("{p}/generalitaSoggettoCollegato"))
            .atteso("idSchedaSoggettoANPR o codiceFiscale/codFiscale")]);
        }
    } else {
        return Err(vec![Anomalia::errore(
            CODICE_DATO_NON_GESTITO,
            "Criterio previsto dallo schema ma non gestito in questa versione",
        )
        .campo(format!("{p}/idOpComunaleCollegata"))
        .atteso("numeroProcedimentoAmm, numeroPraticaComune, idOpANPRCollegata o generalitaSoggettoCollegato")]);
    }
    Ok(Value::Object(m))
}

/// A note as `tipoNoteBase` admits it (letters, digits, Latin letters with diacritics,
/// `,.-'":;` and spaces), else `None`: a stored note the XSD cannot carry is left out.
fn nota(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    let ok = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || " ,.-'\":;".contains(c)
                || ('\u{c0}'..='\u{17e}').contains(&c)
        });
    ok.then(|| s.chars().take(240).collect())
}

/// `Risposta3004_OK` from the search's answer (`EsitoRicercaProcedimenti` as JSON):
/// every proceeding with its data and linked subjects (`tipoOperazione` `I` while
/// open, `C` once closed). The linked operations are not listed: the XSD requires
/// their municipal id, which the links do not keep (REST lists them).
pub fn risposta_3004(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    r: &Elemento,
    esito: &Value,
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:Risposta3004_OK");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    if let Some(p) = r.figlio("parametriRicerca3004") {
        w.copia("parametriRicerca3004", p);
    }
    w.apri("listaProcAmm");
    let s = |v: &Value, k: &str| v[k].as_str().map(str::to_owned);
    for p in esito["procedimenti"].as_array().into_iter().flatten() {
        w.apri("elemProcAmm");
        w.apri("procedimentoIstruttoria");
        w.campo_opt("numeroPraticaAnpr", s(p, "numeroPraticaAnpr").as_deref());
        w.campo_opt(
            "numeroPraticaComune",
            s(p, "numeroPraticaComune").as_deref(),
        );
        let aperto = p["aperto"].as_bool().unwrap_or(true);
        w.campo("tipoOperazione", if aperto { "I" } else { "C" });
        w.campo_opt("noteChiusura", nota(&p["noteChiusura"]).as_deref());
        w.campo_opt("dataChiusura", s(p, "dataChiusura").as_deref());
        w.campo_opt("motivoAvvio", s(p, "motivoAvvio").as_deref());
        w.campo(
            "dataStato",
            s(p, "dataStato").as_deref().unwrap_or("1900-01-01"),
        );
        w.campo(
            "statoProcedimento",
            s(p, "statoProcedimento").as_deref().unwrap_or("0"),
        );
        w.campo_opt("esitoChiusura", s(p, "esitoChiusura").as_deref());
        w.campo_opt("noteEsito", nota(&p["noteEsito"]).as_deref());
        w.chiudi("procedimentoIstruttoria");
        for g in p["soggetti"].as_array().into_iter().flatten() {
            w.apri("generalitaSoggettoCollegato");
            if let Some(cf) = s(g, "codiceFiscale") {
                w.apri("codiceFiscale");
                w.campo("codFiscale", &cf);
                w.chiudi("codiceFiscale");
            }
            match s(g, "cognome") {
                Some(c) => w.campo("cognome", &c),
                None => w.campo("senzaCognome", "1"),
            }
            match s(g, "nome") {
                Some(n) => w.campo("nome", &n),
                None => w.campo("senzaNome", "1"),
            }
            w.campo_opt(
                "idSchedaSoggettoANPR",
                s(g, "idSchedaSoggettoANPR").as_deref(),
            );
            w.chiudi("generalitaSoggettoCollegato");
        }
        w.chiudi("elemProcAmm");
    }
    w.chiudi("listaProcAmm");
    w.chiudi("ns:Risposta3004_OK");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `RispostaS001/rispostaOK`: the header (outcome 2, or 6 when the load found
/// anomalies) and `datiDettaglioRisposta` (the file's name, what became of it). A
/// refusal is `risposte::ko`, which writes `RispostaS001/rispostaKO`.
pub fn risposta_s001(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    id_operazione_anpr: &str,
    con_anomalie: bool,
    nome_file: &str,
    descrizione: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:rispostaOK");
    scrivi_testata(
        &mut w,
        t,
        &op.codice,
        &EsitoTestata {
            id_operazione_anpr,
            esito: if con_anomalie {
                ESITO_OK_CON_AVVERTIMENTI
            } else {
                ESITO_OK
            },
            ..EsitoTestata::default()
        },
    );
    w.apri("datiDettaglioRisposta");
    w.campo("nomeFile", nome_file);
    w.campo("descrizioneEsito", descrizione);
    w.chiudi("datiDettaglioRisposta");
    w.chiudi("ns:rispostaOK");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn el(x: &str) -> Elemento {
        parse(x.as_bytes()).unwrap()
    }

    #[test]
    fn elements_become_the_rest_bodies_with_arrays_for_repeated_children() {
        let r = el("<Richiesta4001><testataRichiesta/><criteriRicerca>\
             <datiAnagraficiRichiesti>2</datiAnagraficiRichiesti>\
             <datiAnagraficiRichiesti>10</datiAnagraficiRichiesti>\
             <identificativiANPR><tipoScheda>1</tipoScheda></identificativiANPR>\
             </criteriRicerca></Richiesta4001>");
        let t = Testata {
            id_operazione_comune: "5".into(),
            ..Testata::default()
        };
        let v = converti_4000("4001", &r, &t).unwrap();
        assert_eq!(v["idOperazioneComune"], "5");
        assert_eq!(
            v["criteriRicerca"]["datiAnagraficiRichiesti"],
            json!(["2", "10"])
        );
        assert_eq!(v["criteriRicerca"]["identificativiANPR"]["tipoScheda"], "1");
        assert!(converti_4000("4005", &r, &t).is_none());
    }

    #[test]
    fn a_6001_names_the_subject_types_language_and_refuses_what_it_cannot_do() {
        let r = el("<Richiesta6001><testataRichiesta/>\
             <linguaCertificato><tipoLinguaCertificato>IT</tipoLinguaCertificato>\
             <tipoLinguaCertificato>de</tipoLinguaCertificato></linguaCertificato>\
             <listaTipiCertificati><tipoCertificato>8</tipoCertificato><tipoCertificato>5</tipoCertificato></listaTipiCertificati>\
             <soggettoIntestatario><generalita><cognome>R</cognome><idSchedaSoggettoANPR>12</idSchedaSoggettoANPR></generalita></soggettoIntestatario>\
             <datiControllo><cognomeUffAnagrafe>A</cognomeUffAnagrafe><nomeUffAnagrafe>B</nomeUffAnagrafe>\
             <tipoRichiedente>2</tipoRichiedente><tipoRichiesta>1</tipoRichiesta><paEstera>4</paEstera>\
             <emissione>1</emissione><bollo>1600</bollo><diritti>52</diritti><esenzioneBollo>00</esenzioneBollo>\
             <modalita>1</modalita></datiControllo></Richiesta6001>");
        let v = converti_6001(&r, &Testata::default()).unwrap();
        assert_eq!(v.id_anpr.as_deref(), Some("12"));
        assert_eq!(v.tipi, [8, 5]);
        assert_eq!(v.lingua.as_deref(), Some("DE"));
        assert_eq!(v.esenzione_bollo, None);
        assert_eq!(
            v.uso.as_deref(),
            Some("CERTIFICATO RILASCIATO PER L'ESTERO")
        );
        assert_eq!(
            v.avvertimenti[0].campo.as_deref(),
            Some("Richiesta6001/datiControllo/modalita")
        );

        let r = el("<Richiesta6001><testataRichiesta/>\
             <listaTipiCertificati><tipoCertificato>8</tipoCertificato></listaTipiCertificati>\
             <soggettoIntestatario><generalita><cognome>R</cognome></generalita></soggettoIntestatario>\
             <datiControllo><tipoRichiedente>1</tipoRichiedente><tipoRichiesta>2</tipoRichiesta>\
             <emissione>3</emissione></datiControllo></Richiesta6001>");
        let errori: Vec<_> = converti_6001(&r, &Testata::default())
            .unwrap_err()
            .into_iter()
            .map(|a| (a.codice, a.campo.unwrap_or_default()))
            .collect();
        assert_eq!(
            errori,
            [
                (
                    CODICE_CAMPO_OBBLIGATORIO.to_owned(),
                    "Richiesta6001/soggettoIntestatario/generalita".to_owned()
                ),
                (
                    CODICE_VALORE_NON_GESTITO.to_owned(),
                    "Richiesta6001/datiControllo/tipoRichiesta".to_owned()
                ),
                (
                    CODICE_VALORE_NON_GESTITO.to_owned(),
                    "Richiesta6001/datiControllo/emissione".to_owned()
                ),
                (
                    CODICE_CAMPO_OBBLIGATORIO.to_owned(),
                    "Richiesta6001/generalitaRichiedente".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_4005_asks_a_state_or_a_list() {
        let r = el("<Richiesta4005><testataRichiesta/><verificaStato>\
             <idOperazioneANPR>42</idOperazioneANPR><progressivo>1</progressivo></verificaStato></Richiesta4005>");
        assert_eq!(converti_4005(&r), Ok(Richiesta4005::Stato("42".into())));
        let r = el("<Richiesta4005><testataRichiesta/><verificaStato>\
             <idOperazioneANPR>42</idOperazioneANPR><progressivo>2</progressivo></verificaStato></Richiesta4005>");
        assert_eq!(
            converti_4005(&r).unwrap_err()[0].codice,
            CODICE_VALORE_NON_GESTITO
        );
        let r = el("<Richiesta4005><testataRichiesta/><elaborazione><dettaglioDati>ID</dettaglioDati>\
             <ricercaElenchiRichieste><statoLavorazione>02</statoLavorazione><operazioneRichiesta>4001</operazioneRichiesta>\
             </ricercaElenchiRichieste></elaborazione></Richiesta4005>");
        assert_eq!(
            converti_4005(&r),
            Ok(Richiesta4005::Elenco(
                json!({"statoRichiesta": "2", "servizio": "4001"})
            ))
        );
    }
}
