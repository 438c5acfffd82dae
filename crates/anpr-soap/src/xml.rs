//! A small, hostile-input-safe XML reader producing an element tree, and the escaping
//! used by the writers.
//!
//! Safety rules (SPEC: XML parsing refuses DTDs, external entities and entity
//! expansion; sizes bounded): any `<!DOCTYPE` is refused outright, so no entity can be
//! declared; references other than the five predefined entities and character
//! references are refused (never looked up); the document must be UTF-8; nesting depth
//! and element count are bounded. The byte size is bounded by the HTTP edge before the
//! body reaches us. Attributes other than namespace declarations are not used by the
//! ANPR messages and are ignored.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Deepest nesting accepted. The deepest ANPR request is about 10 levels inside the
/// SOAP body; 64 leaves room and stops stack-exhaustion payloads.
pub const MAX_PROFONDITA: usize = 64;
/// Most elements accepted in one document (the largest real request has a few hundred).
pub const MAX_ELEMENTI: usize = 20_000;

/// One element: namespace, local name, text (concatenated, not trimmed) and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Elemento {
    pub ns: Option<String>,
    pub nome: String,
    pub testo: String,
    pub figli: Vec<Elemento>,
    /// Attributes by local name (namespace declarations excluded), unescaped.
    pub attributi: Vec<(String, String)>,
}

impl Elemento {
    /// The value of attribute `nome` (local name).
    pub fn attributo(&self, nome: &str) -> Option<&str> {
        self.attributi
            .iter()
            .find(|(n, _)| n == nome)
            .map(|(_, v)| v.as_str())
    }

    /// The first child named `nome` (any namespace: ANPR children are unqualified).
    pub fn figlio(&self, nome: &str) -> Option<&Elemento> {
        self.figli.iter().find(|f| f.nome == nome)
    }

    /// Every child named `nome`, in document order.
    pub fn figli_nominati<'a>(&'a self, nome: &'a str) -> impl Iterator<Item = &'a Elemento> {
        self.figli.iter().filter(move |f| f.nome == nome)
    }

    /// The trimmed text of child `nome`, when present and not empty.
    pub fn testo_di(&self, nome: &str) -> Option<&str> {
        self.figlio(nome)
            .map(|f| f.testo.trim())
            .filter(|t| !t.is_empty())
    }

    /// The trimmed text of the element at `percorso` (child names separated by `/`).
    pub fn testo_a(&self, percorso: &str) -> Option<&str> {
        let mut e = self;
        let mut parti = percorso.split('/').peekable();
        while let Some(p) = parti.next() {
            if parti.peek().is_none() {
                return e.testo_di(p);
            }
            e = e.figlio(p)?;
        }
        None
    }

    /// The element at `percorso` (child names separated by `/`).
    pub fn a(&self, percorso: &str) -> Option<&Elemento> {
        percorso.split('/').try_fold(self, |e, p| e.figlio(p))
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErroreXml {
    #[error("il documento non e' codificato in UTF-8")]
    NonUtf8,
    #[error("DTD e dichiarazioni DOCTYPE non ammesse")]
    Dtd,
    #[error("riferimento a entita' non ammesso: &{0};")]
    Entita(String),
    #[error("XML non ben formato: {0}")]
    Malformato(String),
    #[error("annidamento oltre {MAX_PROFONDITA} livelli")]
    TroppoProfondo,
    #[error("oltre {MAX_ELEMENTI} elementi")]
    TroppiElementi,
    #[error("documento senza elemento radice")]
    Vuoto,
}

fn malformato(e: impl std::fmt::Display) -> ErroreXml {
    ErroreXml::Malformato(e.to_string().chars().take(200).collect())
}

/// The five entities every XML processor knows without a DTD.
fn predefinita(nome: &str) -> Option<char> {
    match nome {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// The attributes of a start tag; an entity reference other than the predefined ones
/// (which `unescape_value` refuses without looking anything up) is an error.
fn attributi(s: &quick_xml::events::BytesStart<'_>) -> Result<Vec<(String, String)>, ErroreXml> {
    let mut out = Vec::new();
    for a in s.attributes().with_checks(true) {
        let a = a.map_err(malformato)?;
        let key = a.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let v = a.unescape_value().map_err(|e| match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, n)) => {
                ErroreXml::Entita(n)
            }
            e => malformato(e),
        })?;
        out.push((
            String::from_utf8_lossy(key.local_name().as_ref()).into_owned(),
            v.into_owned(),
        ));
    }
    Ok(out)
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Elemento, ErroreXml> {
    let text = std::str::from_utf8(bytes).map_err(|_| ErroreXml::NonUtf8)?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = false;
    let mut stack: Vec<Elemento> = Vec::new();
    let mut root: Option<Elemento> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(malformato)?;
        let ns = match ns {
            ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(ErroreXml::Malformato(format!(
                    "prefisso di namespace non dichiarato: {}",
                    String::from_utf8_lossy(&p)
                )))
            }
        };
        match event {
            Event::DocType(_) => return Err(ErroreXml::Dtd),
            Event::Decl(d) => {
                if let Some(Ok(enc)) = d.encoding() {
                    let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                    if enc != "utf-8" && enc != "utf8" {
                        return Err(ErroreXml::NonUtf8);
                    }
                }
            }
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(ErroreXml::Malformato(
                    "contenuto dopo l'elemento radice".into(),
                ));
            }
            Event::Start(s) => {
                count += 1;
                if count > MAX_ELEMENTI {
                    return Err(ErroreXml::TroppiElementi);
                }
                if stack.len() >= MAX_PROFONDITA {
                    return Err(ErroreXml::TroppoProfondo);
                }
                stack.push(Elemento {
                    ns,
                    nome: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    attributi: attributi(&s)?,
                    ..Elemento::default()
                });
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTI {
                    return Err(ErroreXml::TroppiElementi);
                }
                let e = Elemento {
                    ns,
                    nome: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    attributi: attributi(&s)?,
                    ..Elemento::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.figli.push(e),
                    None => root = Some(e),
                }
            }
            Event::End(_) => {
                let e = stack.pop().ok_or_else(|| malformato("chiusura inattesa"))?;
                match stack.last_mut() {
                    Some(parent) => parent.figli.push(e),
                    None => root = Some(e),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(malformato)?;
                match stack.last_mut() {
                    Some(e) => e.testo.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(malformato("testo fuori dall'elemento radice")),
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(malformato)?;
                match stack.last_mut() {
                    Some(e) => e.testo.push_str(&s),
                    None => return Err(malformato("CDATA fuori dall'elemento radice")),
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(malformato)?
                } else {
                    let nome = r.decode().map_err(malformato)?;
                    Some(predefinita(&nome).ok_or_else(|| ErroreXml::Entita(nome.into_owned()))?)
                };
                let c = c.ok_or_else(|| malformato("riferimento a carattere non valido"))?;
                match stack.last_mut() {
                    Some(e) => e.testo.push(c),
                    None => return Err(malformato("riferimento fuori dall'elemento radice")),
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformato("documento troncato: elementi non chiusi"));
    }
    root.ok_or(ErroreXml::Vuoto)
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped rather than emitted.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_text_and_predefined_references() {
        let e = parse(
            br#"<?xml version="1.0" encoding="UTF-8"?>
            <a:r xmlns:a="urn:x"><c>D&apos;Angelo &amp; co &#233;</c><e/></a:r>"#,
        )
        .unwrap();
        assert_eq!(e.ns.as_deref(), Some("urn:x"));
        assert_eq!(e.nome, "r");
        assert_eq!(e.testo_di("c"), Some("D'Angelo & co \u{e9}"));
        assert!(e.figlio("e").is_some());
    }

    #[test]
    fn refuses_doctype_entities_and_bad_encoding() {
        assert_eq!(
            parse(b"<!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>"),
            Err(ErroreXml::Dtd)
        );
        assert_eq!(parse(b"<r>&x;</r>"), Err(ErroreXml::Entita("x".into())));
        assert_eq!(parse(b"<r>\xff</r>"), Err(ErroreXml::NonUtf8));
        assert_eq!(
            parse(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r/>"),
            Err(ErroreXml::NonUtf8)
        );
    }

    #[test]
    fn refuses_deep_nesting_and_malformed_documents() {
        let deep = "<a>".repeat(MAX_PROFONDITA + 1) + &"</a>".repeat(MAX_PROFONDITA + 1);
        assert_eq!(parse(deep.as_bytes()), Err(ErroreXml::TroppoProfondo));
        assert!(matches!(
            parse(b"<a><b></a>"),
            Err(ErroreXml::Malformato(_))
        ));
        assert!(matches!(parse(b"<a>"), Err(ErroreXml::Malformato(_))));
        assert!(matches!(parse(b"<a/><b/>"), Err(ErroreXml::Malformato(_))));
        assert!(matches!(parse(b"<p:a/>"), Err(ErroreXml::Malformato(_))));
        assert_eq!(parse(b"  "), Err(ErroreXml::Vuoto));
    }

    #[test]
    fn escapes_markup() {
        let mut s = String::new();
        escape("a<b & 'c'\u{1}", &mut s);
        assert_eq!(s, "a&lt;b &amp; &apos;c&apos;");
    }
}
