//! The SOAP 1.1 envelope: reading a request envelope, writing response envelopes and
//! `soap:Fault`s.
//!
//! Faults are for messages we cannot treat as an ANPR request at all (not XML, DTDs,
//! not a SOAP 1.1 envelope, unknown operation, a body that does not follow the XSD...);
//! a well-formed request refused by a rule gets the XSD's own `rispostaKO`. Client
//! faults travel with HTTP 400 (413 for an oversize body) rather than the 500 of WS-I
//! BP R1126: the project answers a caller's mistake with a 4xx, and SOAP stacks (zeep,
//! JAX-WS, .NET) read the fault from the body whatever the status. Server faults (ours)
//! use 500 and show only the support reference.

use anpr_domain::error::Anomalia;

use crate::xml::{self, escape, Elemento, ErroreXml};

/// SOAP 1.1 envelope namespace (the published bindings are SOAP 1.1).
pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2 envelope namespace: recognised only to answer with a version mismatch.
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// Our namespace for the fault detail and the development identity header.
pub const NS_ANPR_SOAP: &str = "urn:anpr:soap";

/// Our code for a message that is not well-formed XML (or not UTF-8).
pub const CODICE_XML_NON_VALIDO: &str = "EV110";
/// Our code for a DTD or an entity reference (refused, never expanded).
pub const CODICE_DTD_ENTITA: &str = "EV111";
/// Our code for a body over the size limit.
pub const CODICE_TROPPO_GRANDE: &str = "EV112";
/// Our code for a document that is not a SOAP 1.1 envelope with one body element.
pub const CODICE_NON_BUSTA_SOAP: &str = "EV113";
/// Our code for a body element that is no operation of the endpoint (name or namespace).
pub const CODICE_OPERAZIONE_SCONOSCIUTA: &str = "EV114";
/// Our code for a `SOAPAction` the WSDL does not declare.
pub const CODICE_SOAP_ACTION: &str = "EV115";
/// Our code for an endpoint or published document that does not exist.
pub const CODICE_SERVIZIO_SCONOSCIUTO: &str = "EV116";

/// Fault code (SOAP 1.1 §4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodiceFault {
    VersionMismatch,
    Client,
    Server,
}

impl CodiceFault {
    fn as_str(self) -> &'static str {
        match self {
            CodiceFault::VersionMismatch => "soap:VersionMismatch",
            CodiceFault::Client => "soap:Client",
            CodiceFault::Server => "soap:Server",
        }
    }
}

/// A fault to send: code, reason, coded details, and the HTTP status to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub codice: CodiceFault,
    pub motivo: String,
    pub anomalie: Vec<Anomalia>,
    pub status: u16,
    /// Support reference (date and id) to quote to the help desk.
    pub riferimento: Option<String>,
}

impl Fault {
    /// A client fault with one coded outcome.
    pub fn client(codice: &str, motivo: impl Into<String>) -> Self {
        let motivo = motivo.into();
        Self {
            codice: CodiceFault::Client,
            anomalie: vec![Anomalia::errore(codice, motivo.clone())],
            motivo,
            status: 400,
            riferimento: None,
        }
    }

    pub fn con_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn con_anomalie(mut self, anomalie: Vec<Anomalia>) -> Self {
        self.anomalie = anomalie;
        self
    }

    pub fn con_riferimento(mut self, riferimento: impl Into<String>) -> Self {
        self.riferimento = Some(riferimento.into());
        self
    }

    /// The fault for a document our XML reader refused.
    pub fn da_xml(e: &ErroreXml) -> Self {
        let codice = match e {
            ErroreXml::Dtd | ErroreXml::Entita(_) => CODICE_DTD_ENTITA,
            _ => CODICE_XML_NON_VALIDO,
        };
        Fault::client(codice, e.to_string())
    }

    /// The body too large for the endpoint.
    pub fn troppo_grande(limite: usize) -> Self {
        Fault::client(
            CODICE_TROPPO_GRANDE,
            format!("Messaggio oltre il limite di {limite} byte"),
        )
        .con_status(413)
    }
}

/// A request envelope: the optional header and the single body element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busta {
    pub intestazione: Option<Elemento>,
    pub corpo: Elemento,
}

/// Reads a SOAP 1.1 request envelope.
pub fn leggi(bytes: &[u8]) -> Result<Busta, Fault> {
    let radice = xml::parse(bytes).map_err(|e| Fault::da_xml(&e))?;
    if radice.nome != "Envelope" || radice.ns.as_deref() != Some(NS_SOAP11) {
        if radice.nome == "Envelope" && radice.ns.as_deref() == Some(NS_SOAP12) {
            return Err(Fault {
                codice: CodiceFault::VersionMismatch,
                ..Fault::client(
                    CODICE_NON_BUSTA_SOAP,
                    "Versione SOAP non supportata: i servizi ANPR usano SOAP 1.1",
                )
            });
        }
        return Err(Fault::client(
            CODICE_NON_BUSTA_SOAP,
            format!(
                "Elemento radice {{{}}}{} non e' una busta SOAP 1.1 ({{{NS_SOAP11}}}Envelope)",
                radice.ns.as_deref().unwrap_or(""),
                radice.nome
            ),
        ));
    }
    let mut intestazione = None;
    let mut corpo = None;
    for f in radice.figli {
        match (f.nome.as_str(), f.ns.as_deref()) {
            ("Header", Some(NS_SOAP11)) if intestazione.is_none() && corpo.is_none() => {
                intestazione = Some(f)
            }
            ("Body", Some(NS_SOAP11)) if corpo.is_none() => corpo = Some(f),
            (n, _) => {
                return Err(Fault::client(
                    CODICE_NON_BUSTA_SOAP,
                    format!("Elemento {n} non ammesso nella busta SOAP"),
                ))
            }
        }
    }
    let corpo =
        corpo.ok_or_else(|| Fault::client(CODICE_NON_BUSTA_SOAP, "Busta SOAP senza soap:Body"))?;
    let mut figli = corpo.figli.into_iter();
    match (figli.next(), figli.next()) {
        (Some(c), None) => Ok(Busta {
            intestazione,
            corpo: c,
        }),
        _ => Err(Fault::client(
            CODICE_NON_BUSTA_SOAP,
            "soap:Body deve contenere esattamente un elemento di richiesta",
        )),
    }
}

/// A small writer for response documents: elements in the order the caller writes
/// them (the XSD order), text escaped.
#[derive(Debug, Default)]
pub struct Scrittore {
    out: String,
}

impl Scrittore {
    /// Starts a response envelope.
    pub fn busta() -> Self {
        let mut s = Self {
            out: String::with_capacity(2048),
        };
        s.out.push_str(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>",
        );
        s
    }

    /// Starts a standalone XML document (no envelope), finished by
    /// [`Scrittore::fine_documento`].
    pub fn documento() -> Self {
        let mut s = Self {
            out: String::with_capacity(1024),
        };
        s.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        s
    }

    /// Returns a standalone document started by [`Scrittore::documento`].
    pub fn fine_documento(self) -> String {
        self.out
    }

    /// Opens a qualified global element declaring its namespace on a prefix.
    pub fn apri_ns(&mut self, prefisso: &str, nome: &str, ns: &str) {
        self.out.push('<');
        self.out.push_str(prefisso);
        self.out.push(':');
        self.out.push_str(nome);
        self.out.push_str(" xmlns:");
        self.out.push_str(prefisso);
        self.out.push_str("=\"");
        escape(ns, &mut self.out);
        self.out.push_str("\">");
    }

    /// Opens an (unqualified) element.
    pub fn apri(&mut self, nome: &str) {
        self.out.push('<');
        self.out.push_str(nome);
        self.out.push('>');
    }

    /// Closes element `nome` (with its prefix when qualified).
    pub fn chiudi(&mut self, nome: &str) {
        self.out.push_str("</");
        self.out.push_str(nome);
        self.out.push('>');
    }

    /// A leaf element with text.
    pub fn campo(&mut self, nome: &str, testo: &str) {
        self.apri(nome);
        escape(testo, &mut self.out);
        self.chiudi(nome);
    }

    /// A leaf element when there is a value.
    pub fn campo_opt(&mut self, nome: &str, testo: Option<&str>) {
        if let Some(t) = testo {
            self.campo(nome, t);
        }
    }

    /// A leaf whose text is cut to `max` characters (XSD `maxLength`).
    pub fn campo_max(&mut self, nome: &str, testo: &str, max: usize) {
        let t: String = testo.chars().take(max).collect();
        self.campo(nome, &t);
    }

    /// Writes a received (unqualified) element again, with its children and trimmed
    /// text, under name `nome`: the echo of a request part whose XSD type the response
    /// repeats (it was validated against that type on the way in).
    pub fn copia(&mut self, nome: &str, e: &Elemento) {
        self.apri(nome);
        if e.figli.is_empty() {
            escape(e.testo.trim(), &mut self.out);
        }
        for f in &e.figli {
            self.copia(&f.nome, f);
        }
        self.chiudi(nome);
    }

    /// Closes the envelope and returns the document.
    pub fn fine(mut self) -> String {
        self.out.push_str("</soap:Body></soap:Envelope>");
        self.out
    }
}

/// Writes one coded outcome as `tipoErroriAnomalia` (children in XSD order; texts cut
/// to the XSD's 240 characters).
pub fn scrivi_anomalia(w: &mut Scrittore, tag: &str, a: &Anomalia) {
    w.apri(tag);
    w.campo_max("codiceErroreAnomalia", &a.codice, 6);
    w.campo("tipoErroreAnomalia", a.gravita.code());
    let testo = match &a.atteso {
        Some(atteso) => format!("{} (atteso: {atteso})", a.testo),
        None => a.testo.clone(),
    };
    w.campo_max("testoErroreAnomalia", &testo, 240);
    if let Some(c) = &a.campo {
        w.campo_max("campoErroreAnomalia", c, 240);
    }
    if let Some(v) = &a.valore {
        w.campo_max("valoreErroreAnomalia", v, 240);
    }
    w.chiudi(tag);
}

/// The whole fault envelope.
pub fn scrivi_fault(f: &Fault) -> String {
    let mut w = Scrittore::busta();
    w.apri("soap:Fault");
    w.campo("faultcode", f.codice.as_str());
    w.campo("faultstring", &f.motivo);
    w.apri("detail");
    w.apri_ns("anpr", "errori", NS_ANPR_SOAP);
    for a in &f.anomalie {
        scrivi_anomalia(&mut w, "errore", a);
    }
    if let Some(r) = &f.riferimento {
        w.campo("riferimento", r);
    }
    w.chiudi("anpr:errori");
    w.chiudi("detail");
    w.chiudi("soap:Fault");
    w.fine()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> String {
        format!(
            "<s:Envelope xmlns:s=\"{NS_SOAP11}\"><s:Header/><s:Body>{body}</s:Body></s:Envelope>"
        )
    }

    #[test]
    fn reads_the_single_body_element() {
        let b = leggi(envelope("<x:R xmlns:x=\"urn:r\"><a>1</a></x:R>").as_bytes()).unwrap();
        assert_eq!(b.corpo.nome, "R");
        assert_eq!(b.corpo.ns.as_deref(), Some("urn:r"));
        assert!(b.intestazione.is_some());
    }

    #[test]
    fn refuses_what_is_not_one_soap_11_request() {
        let code = |doc: &str| leggi(doc.as_bytes()).unwrap_err();
        assert_eq!(code("<a/>").anomalie[0].codice, CODICE_NON_BUSTA_SOAP);
        let soap12 = format!("<e:Envelope xmlns:e=\"{NS_SOAP12}\"><e:Body/></e:Envelope>");
        assert_eq!(code(&soap12).codice, CodiceFault::VersionMismatch);
        assert_eq!(
            code(&envelope("")).anomalie[0].codice,
            CODICE_NON_BUSTA_SOAP
        );
        assert_eq!(
            code(&envelope("<a/><b/>")).anomalie[0].codice,
            CODICE_NON_BUSTA_SOAP
        );
        assert_eq!(code("<a>&x;</a>").anomalie[0].codice, CODICE_DTD_ENTITA);
        assert_eq!(code("<a>").anomalie[0].codice, CODICE_XML_NON_VALIDO);
    }

    #[test]
    fn a_fault_is_a_soap_11_envelope_with_coded_detail() {
        let f = Fault::client(CODICE_SOAP_ACTION, "SOAPAction <x>").con_riferimento("R1");
        let doc = scrivi_fault(&f);
        let e = xml::parse(doc.as_bytes()).unwrap();
        let fault = e.a("Body/Fault").unwrap();
        assert_eq!(fault.testo_di("faultcode"), Some("soap:Client"));
        assert_eq!(fault.testo_di("faultstring"), Some("SOAPAction <x>"));
        assert_eq!(
            fault.testo_a("detail/errori/errore/codiceErroreAnomalia"),
            Some(CODICE_SOAP_ACTION)
        );
        assert_eq!(fault.testo_a("detail/errori/riferimento"), Some("R1"));
    }
}
