//! The published WSDLs and XSDs (embedded verbatim from `wsdl/`) and the catalogue of
//! services and operations read from them.
//!
//! The catalogue is not written by hand: every `wsdl:service` becomes an endpoint
//! (`/ws/<service name>`), every `portType` operation an operation of it, named by its
//! request and response elements. So the set of endpoints and the SOAP operations we
//! recognise are exactly those of the published interface; which of them we *implement*
//! is decided in [`crate::richieste`].
//!
//! Served documents are the published ones with two rewrites, so a client generated
//! from our server talks to our server: `soap:address` points at our endpoint and every
//! `schemaLocation` at `<endpoint>?xsd=<file>`.

use std::sync::OnceLock;

use crate::xml::{self, Elemento};

macro_rules! documenti {
    ($($nome:literal),* $(,)?) => {
        /// Every published document: (file name, content).
        pub const DOCUMENTI: &[(&str, &str)] = &[$(($nome, include_str!(concat!("../wsdl/", $nome)))),*];
    };
}

documenti!(
    "1000iscrizione.xsd",
    "1000serviziIscrizione.wsdl",
    "2000cancellazione.xsd",
    "2000serviziCancellazione.wsdl",
    "3000consultazione.xsd",
    "3000serviziConsultazione.wsdl",
    "4000estrazione.xsd",
    "4000serviziEstrazione.wsdl",
    "5000mutazione.xsd",
    "5000serviziMutazione.wsdl",
    "6001certificazione.xsd",
    "6001servizioCertificazione.wsdl",
    "7001scaricoTabelle.xsd",
    "7001servizioScaricoTabelle.wsdl",
    "A000aire.xsd",
    "A000serviziAire.wsdl",
    "CIE0Servizi.xsd",
    "CONSOLATIServizi.xsd",
    "E000Vocabolario.xsd",
    "E001ScaricoTabelle.wsdl",
    "E002Consultazione.wsdl",
    "E003Estrazione.wsdl",
    "E004DownloadFile.wsdl",
    "P000ServiziCittadino.wsdl",
    "P000sc.xsd",
    "S001subentro.wsdl",
    "S001subentro.xsd",
    "rispostaComune.xsd",
    "serviziCIE0.wsdl",
    "serviziCONSOLATI.wsdl",
    "subentro.xsd",
    "tipoDato.xsd",
    "vocabolario1000iscrizione.xsd",
    "vocabolario2000cancellazione.xsd",
    "vocabolario3000consultazione.xsd",
    "vocabolario4000estrazione.xsd",
    "vocabolario5000mutazione.xsd",
    "vocabolario6001certificazione.xsd",
    "vocabolario7001scaricoTabelle.xsd",
    "vocabolarioA000aire.xsd",
    "vocabolarioCIEServizi.xsd",
    "vocabolarioCONSOLATIServizi.xsd",
    "vocabolarioP000sc.xsd",
    "vocabolarioRispostaComune.xsd",
    "vocabolarioSubentro.xsd",
);

/// Namespace of the common response element `Risposta_Comune`.
pub const NS_RISPOSTA_COMUNE: &str = "http://sogei.it/ANPR/rispostaComune";

/// One SOAP operation of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operazione {
    /// The WSDL operation name, e.g. `iscrizione_altriMotivi`.
    pub nome: String,
    /// Request element (local name), e.g. `Richiesta1002`.
    pub richiesta: String,
    /// Response element (local name), e.g. `Risposta1002`.
    pub risposta: String,
    /// The ANPR service code: the request element without `Richiesta` (`1002`, `CIE2`).
    pub codice: String,
}

/// One WSDL service: an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Servizio {
    /// `wsdl:service` name, also the endpoint path segment (`AnprService1000`).
    pub nome: String,
    /// The family (`1000`, `CIE`): the service name without `AnprService`.
    pub famiglia: String,
    /// WSDL file name.
    pub wsdl: &'static str,
    /// Namespace of the request and response elements.
    pub namespace: String,
    pub operazioni: Vec<Operazione>,
}

impl Servizio {
    /// The operation whose request element is `richiesta`.
    pub fn operazione(&self, richiesta: &str) -> Option<&Operazione> {
        self.operazioni.iter().find(|o| o.richiesta == richiesta)
    }
}

/// The content of published document `nome`.
pub fn documento(nome: &str) -> Option<&'static str> {
    DOCUMENTI
        .iter()
        .find(|(n, _)| *n == nome)
        .map(|(_, c)| c.trim_start_matches('\u{feff}'))
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn leggi_servizio(file: &'static str, radice: &Elemento) -> Option<Servizio> {
    let service = radice.figlio("service")?;
    let nome = service.attributo("name")?.to_owned();
    let namespace = radice
        .figlio("types")
        .and_then(|t| t.figlio("schema"))
        .and_then(|s| s.figlio("import"))
        .and_then(|i| i.attributo("namespace"))?
        .to_owned();
    let elemento_di = |messaggio: &str| -> Option<String> {
        radice
            .figli_nominati("message")
            .find(|m| m.attributo("name") == Some(local(messaggio)))?
            .figlio("part")?
            .attributo("element")
            .map(|e| local(e).to_owned())
    };
    let mut operazioni = Vec::new();
    for op in radice.figlio("portType")?.figli_nominati("operation") {
        let richiesta = elemento_di(op.figlio("input")?.attributo("message")?)?;
        let risposta = elemento_di(op.figlio("output")?.attributo("message")?)?;
        operazioni.push(Operazione {
            nome: op.attributo("name")?.to_owned(),
            codice: richiesta
                .strip_prefix("Richiesta")
                .unwrap_or(&richiesta)
                .to_owned(),
            richiesta,
            risposta,
        });
    }
    Some(Servizio {
        famiglia: nome.strip_prefix("AnprService").unwrap_or(&nome).to_owned(),
        nome,
        wsdl: file,
        namespace,
        operazioni,
    })
}

/// Every service of the published WSDLs, in file order.
pub fn servizi() -> &'static [Servizio] {
    static S: OnceLock<Vec<Servizio>> = OnceLock::new();
    S.get_or_init(|| {
        DOCUMENTI
            .iter()
            .filter(|(n, _)| n.ends_with(".wsdl"))
            .filter_map(|(n, c)| {
                // The published files are embedded at build time and parsed by our own
                // reader; a file that does not parse is a build defect the catalogue
                // test catches, so skipping it here is enough.
                let radice = xml::parse(c.trim_start_matches('\u{feff}').as_bytes()).ok()?;
                leggi_servizio(n, &radice)
            })
            .collect()
    })
}

/// The service whose endpoint is `/ws/<nome>`.
pub fn servizio(nome: &str) -> Option<&'static Servizio> {
    servizi().iter().find(|s| s.nome == nome)
}

/// Replaces the value of every `attr="..."` in `doc` with `nuovo(old value)`.
fn riscrivi_attributo(doc: &str, attr: &str, nuovo: impl Fn(&str) -> String) -> String {
    let chiave = format!("{attr}=\"");
    let mut out = String::with_capacity(doc.len() + 256);
    let mut resto = doc;
    while let Some(i) = resto.find(&chiave) {
        let inizio = i + chiave.len();
        out.push_str(&resto[..inizio]);
        let Some(fine) = resto[inizio..].find('"') else {
            resto = &resto[inizio..];
            break;
        };
        out.push_str(&nuovo(&resto[inizio..inizio + fine]));
        resto = &resto[inizio + fine..];
    }
    out.push_str(resto);
    out
}

/// The file name a `schemaLocation` refers to (published ones are relative, sometimes
/// with a directory).
fn nome_file(location: &str) -> &str {
    let senza_query = location.rsplit('=').next().unwrap_or(location);
    senza_query.rsplit('/').next().unwrap_or(senza_query)
}

/// The WSDL of `servizio` with our address and schema locations (`endpoint` is the
/// absolute URL of the service, e.g. `http://host:8080/ws/AnprService1000`).
pub fn wsdl(servizio: &Servizio, endpoint: &str) -> String {
    let doc = documento(servizio.wsdl).unwrap_or_default();
    let doc = riscrivi_attributo(doc, "schemaLocation", |old| {
        format!("{endpoint}?xsd={}", nome_file(old))
    });
    // The leading space keeps `schemaLocation` (already rewritten) out of the match.
    riscrivi_attributo(&doc, " location", |_| endpoint.to_owned())
}

/// Schema `nome` with its imports pointing at our server, or `None` if not published.
pub fn xsd(nome: &str, endpoint: &str) -> Option<String> {
    if !nome.ends_with(".xsd") {
        return None;
    }
    let doc = documento(nome)?;
    Some(riscrivi_attributo(doc, "schemaLocation", |old| {
        format!("{endpoint}?xsd={}", nome_file(old))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_wsdl_is_a_service_with_operations() {
        let wsdl = DOCUMENTI
            .iter()
            .filter(|(n, _)| n.ends_with(".wsdl"))
            .count();
        assert_eq!(servizi().len(), wsdl);
        let famiglie: Vec<_> = servizi().iter().map(|s| s.famiglia.as_str()).collect();
        for f in [
            "1000",
            "2000",
            "3000",
            "4000",
            "5000",
            "6001",
            "7001",
            "A000",
            "S001",
            "CIE",
            "CONSOLATI",
            "P000",
            "E001",
            "E002",
            "E003",
            "E004",
        ] {
            assert!(famiglie.contains(&f), "{f} missing from {famiglie:?}");
        }
        let s = servizio("AnprService1000").unwrap();
        assert_eq!(s.namespace, "http://sogei.it/ANPR/1000iscrizione");
        let op = s.operazione("Richiesta1002").unwrap();
        assert_eq!(
            (op.nome.as_str(), op.risposta.as_str(), op.codice.as_str()),
            ("iscrizione_altriMotivi", "Risposta1002", "1002")
        );
        let total: usize = servizi().iter().map(|s| s.operazioni.len()).sum();
        assert_eq!(total, 54, "SERVICES.md lists 54 operations");
    }

    #[test]
    fn served_documents_point_at_our_endpoint() {
        let s = servizio("AnprService3000").unwrap();
        let w = wsdl(s, "http://h:1/ws/AnprService3000");
        assert!(w.contains("location=\"http://h:1/ws/AnprService3000\""));
        assert!(w.contains(
            "schemaLocation=\"http://h:1/ws/AnprService3000?xsd=3000consultazione.xsd\""
        ));
        assert!(!w.contains("sogei.it/Interno/ANPR/AnprService3000\""));
        let x = xsd("vocabolario3000consultazione.xsd", "http://h:1/ws/X").unwrap();
        assert!(x.contains("schemaLocation=\"http://h:1/ws/X?xsd=tipoDato.xsd\""));
        assert!(xsd("../../etc/passwd", "x").is_none());
        assert!(xsd("1000serviziIscrizione.wsdl", "x").is_none());
    }
}
