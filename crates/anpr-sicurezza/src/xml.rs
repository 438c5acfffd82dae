//! A small, strict XML tree and Exclusive XML Canonicalization 1.0 (without comments).
//!
//! Signature checking must canonicalise exactly the element the signature designates,
//! in the namespace context of the whole document, so we parse into a tree that keeps
//! every element's in-scope namespaces. The parser refuses what a signed message never
//! needs and attackers love: DTDs (hence external and custom entities), undefined entity
//! references, documents over [`DIMENSIONE_MASSIMA`] bytes or deeper than
//! [`PROFONDITA_MASSIMA`].
//!
//! Canonical form (W3C exc-c14n): UTF-8; start and end tag for every element; namespace
//! declarations only where *visibly utilised* and not already in force in the output
//! ancestors, sorted by prefix; attributes sorted by namespace URI then local name; the
//! prescribed escapes in text and attribute values; comments dropped; the document's
//! line endings already normalised by parsing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::errore::{ErroreSicurezza, CODICE_XML_NON_AMMESSO};

/// Largest document accepted.
pub const DIMENSIONE_MASSIMA: usize = 4 * 1024 * 1024;
/// Deepest nesting accepted.
pub const PROFONDITA_MASSIMA: usize = 64;

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// In-scope namespace bindings: prefix (`""` for the default) → URI. Shared between an
/// element and its children when they declare nothing.
pub type Ambito = Arc<BTreeMap<String, String>>;

/// An attribute (never a namespace declaration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributo {
    pub prefisso: String,
    pub locale: String,
    /// Namespace URI; empty for unprefixed attributes.
    pub ns: String,
    pub valore: String,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nodo {
    Elemento(Elemento),
    Testo(String),
    Istruzione(String),
}

/// An element with its in-scope namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elemento {
    pub prefisso: String,
    pub locale: String,
    /// Namespace URI of the element (empty when none).
    pub ns: String,
    pub attributi: Vec<Attributo>,
    pub ambito: Ambito,
    pub figli: Vec<Nodo>,
}

fn errore(m: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::messaggio(CODICE_XML_NON_AMMESSO, format!("XML non ammesso: {m}"))
}

fn dividi(qname: &str) -> (&str, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname),
    }
}

fn entita_predefinita(nome: &str) -> Option<char> {
    match nome {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// Attribute-value normalisation of XML 1.0 for CDATA attributes: line ends become one
/// `\n`, then every literal white-space character becomes a space; character references
/// (still escaped here) keep their character.
fn valore_attributo(raw: &str) -> Result<String, ErroreSicurezza> {
    let normalizzato = raw.replace("\r\n", "\n").replace(['\r', '\n', '\t'], " ");
    quick_xml::escape::unescape(&normalizzato)
        .map(|c| c.into_owned())
        .map_err(errore)
}

impl Elemento {
    /// The child elements.
    pub fn elementi(&self) -> impl Iterator<Item = &Elemento> {
        self.figli.iter().filter_map(|n| match n {
            Nodo::Elemento(e) => Some(e),
            _ => None,
        })
    }

    /// The child elements named `{ns}locale`.
    pub fn figli_nominati<'a>(
        &'a self,
        ns: &'a str,
        locale: &'a str,
    ) -> impl Iterator<Item = &'a Elemento> {
        self.elementi()
            .filter(move |e| e.ns == ns && e.locale == locale)
    }

    /// True when this element is `{ns}locale`.
    pub fn e(&self, ns: &str, locale: &str) -> bool {
        self.ns == ns && self.locale == locale
    }

    /// An attribute's value by namespace and local name.
    pub fn attributo(&self, ns: &str, locale: &str) -> Option<&str> {
        self.attributi
            .iter()
            .find(|a| a.ns == ns && a.locale == locale)
            .map(|a| a.valore.as_str())
    }

    /// The concatenated text content (direct and nested).
    pub fn testo(&self) -> String {
        let mut s = String::new();
        fn raccogli(e: &Elemento, s: &mut String) {
            for n in &e.figli {
                match n {
                    Nodo::Testo(t) => s.push_str(t),
                    Nodo::Elemento(f) => raccogli(f, s),
                    Nodo::Istruzione(_) => {}
                }
            }
        }
        raccogli(self, &mut s);
        s
    }

    /// Every element of the subtree, this one included, depth first.
    pub fn discendenti(&self) -> Vec<&Elemento> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            let e = out[i];
            out.extend(e.elementi());
            i += 1;
        }
        out
    }
}

/// Parses a document into its root element.
pub fn analizza(documento: &[u8]) -> Result<Elemento, ErroreSicurezza> {
    if documento.len() > DIMENSIONE_MASSIMA {
        return Err(errore(format!(
            "documento di {} byte oltre il limite di {DIMENSIONE_MASSIMA}",
            documento.len()
        )));
    }
    let testo = std::str::from_utf8(documento).map_err(|_| errore("non UTF-8"))?;
    let mut reader = Reader::from_str(testo);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;
    let mut pila: Vec<Elemento> = Vec::new();
    let mut radice: Option<Elemento> = None;
    let base: Ambito = Arc::new(BTreeMap::from([("xml".to_owned(), NS_XML.to_owned())]));
    loop {
        let evento = reader.read_event().map_err(errore)?;
        match evento {
            Event::DocType(_) => return Err(errore("DTD non ammessa")),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Start(s) => {
                if radice.is_some() {
                    return Err(errore("contenuto dopo l'elemento radice"));
                }
                if pila.len() >= PROFONDITA_MASSIMA {
                    return Err(errore("annidamento eccessivo"));
                }
                let ambito_padre = pila
                    .last()
                    .map_or_else(|| base.clone(), |p| p.ambito.clone());
                let mut dichiarazioni = Vec::new();
                let mut grezzi = Vec::new();
                for a in s.attributes().with_checks(true) {
                    let a = a.map_err(errore)?;
                    let chiave = std::str::from_utf8(a.key.as_ref()).map_err(errore)?;
                    let raw = std::str::from_utf8(&a.value).map_err(errore)?;
                    let valore = valore_attributo(raw)?;
                    if chiave == "xmlns" {
                        dichiarazioni.push((String::new(), valore));
                    } else if let Some(p) = chiave.strip_prefix("xmlns:") {
                        if valore.is_empty() {
                            return Err(errore("annullamento di un prefisso non ammesso"));
                        }
                        dichiarazioni.push((p.to_owned(), valore));
                    } else {
                        grezzi.push((chiave.to_owned(), valore));
                    }
                }
                let ambito = if dichiarazioni.is_empty() {
                    ambito_padre
                } else {
                    let mut m = (*ambito_padre).clone();
                    for (p, u) in dichiarazioni {
                        m.insert(p, u);
                    }
                    Arc::new(m)
                };
                let nome = std::str::from_utf8(s.name().as_ref())
                    .map_err(errore)?
                    .to_owned();
                let (prefisso, locale) = dividi(&nome);
                let ns = match ambito.get(prefisso) {
                    Some(u) => u.clone(),
                    None if prefisso.is_empty() => String::new(),
                    None => return Err(errore(format!("prefisso {prefisso} non dichiarato"))),
                };
                let mut attributi = Vec::with_capacity(grezzi.len());
                let mut visti = BTreeSet::new();
                for (chiave, valore) in grezzi {
                    let (p, l) = dividi(&chiave);
                    let ans = if p.is_empty() {
                        String::new()
                    } else {
                        ambito
                            .get(p)
                            .cloned()
                            .ok_or_else(|| errore(format!("prefisso {p} non dichiarato")))?
                    };
                    if !visti.insert((ans.clone(), l.to_owned())) {
                        return Err(errore(format!("attributo {chiave} ripetuto")));
                    }
                    attributi.push(Attributo {
                        prefisso: p.to_owned(),
                        locale: l.to_owned(),
                        ns: ans,
                        valore,
                    });
                }
                pila.push(Elemento {
                    prefisso: prefisso.to_owned(),
                    locale: locale.to_owned(),
                    ns,
                    attributi,
                    ambito,
                    figli: Vec::new(),
                });
            }
            Event::End(_) => {
                let e = pila
                    .pop()
                    .ok_or_else(|| errore("chiusura senza apertura"))?;
                match pila.last_mut() {
                    Some(p) => p.figli.push(Nodo::Elemento(e)),
                    None => radice = Some(e),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(errore)?;
                aggiungi_testo(&mut pila, &radice, &s)?;
            }
            Event::CData(t) => {
                let s = t.xml10_content().map_err(errore)?;
                aggiungi_testo(&mut pila, &radice, &s)?;
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(errore)? {
                    Some(c) => c,
                    None => {
                        let nome = std::str::from_utf8(&r).map_err(errore)?;
                        entita_predefinita(nome)
                            .ok_or_else(|| errore(format!("entità {nome} non ammessa")))?
                    }
                };
                aggiungi_testo(&mut pila, &radice, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::PI(pi) => {
                if let Some(p) = pila.last_mut() {
                    let s = std::str::from_utf8(&pi).map_err(errore)?;
                    p.figli.push(Nodo::Istruzione(s.to_owned()));
                }
            }
            // Empty elements arrive as start and end (expand_empty_elements).
            Event::Empty(_) => return Err(errore("evento inatteso")),
            Event::Eof => break,
        }
    }
    if !pila.is_empty() {
        return Err(errore("documento troncato"));
    }
    radice.ok_or_else(|| errore("nessun elemento radice"))
}

fn aggiungi_testo(
    pila: &mut [Elemento],
    _radice: &Option<Elemento>,
    s: &str,
) -> Result<(), ErroreSicurezza> {
    match pila.last_mut() {
        Some(p) => {
            if let Some(Nodo::Testo(t)) = p.figli.last_mut() {
                t.push_str(s);
            } else {
                p.figli.push(Nodo::Testo(s.to_owned()));
            }
            Ok(())
        }
        // White space around the root element is not content.
        None if s.trim().is_empty() => Ok(()),
        None => Err(errore("testo fuori dall'elemento radice")),
    }
}

fn escape_testo(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attributo(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Exclusive canonical form of `el` (its whole subtree), with the prefixes of an
/// `InclusiveNamespaces PrefixList` (`#default` for the default namespace) treated as
/// in inclusive canonicalisation.
pub fn c14n_esclusiva(el: &Elemento, prefissi_inclusivi: &[String]) -> String {
    let mut out = String::with_capacity(1024);
    scrivi(el, &BTreeMap::new(), prefissi_inclusivi, &mut out);
    out
}

fn scrivi(el: &Elemento, resi: &BTreeMap<String, String>, inclusivi: &[String], out: &mut String) {
    let mut usati: BTreeSet<&str> = BTreeSet::new();
    usati.insert(el.prefisso.as_str());
    for a in &el.attributi {
        if !a.prefisso.is_empty() {
            usati.insert(a.prefisso.as_str());
        }
    }
    for p in inclusivi {
        let p = if p == "#default" { "" } else { p.as_str() };
        if el.ambito.contains_key(p) {
            usati.insert(p);
        }
    }
    let mut nuovi: Option<BTreeMap<String, String>> = None;
    out.push('<');
    scrivi_nome(&el.prefisso, &el.locale, out);
    for p in usati {
        if p == "xml" {
            continue;
        }
        let uri = el.ambito.get(p).map_or("", String::as_str);
        let gia = resi.get(p).map_or("", String::as_str);
        // An empty default namespace needs no declaration unless an output ancestor
        // declared a non-empty one.
        if uri == gia && (resi.contains_key(p) || uri.is_empty()) {
            continue;
        }
        out.push_str(" xmlns");
        if !p.is_empty() {
            out.push(':');
            out.push_str(p);
        }
        out.push_str("=\"");
        escape_attributo(uri, out);
        out.push('"');
        nuovi
            .get_or_insert_with(|| resi.clone())
            .insert(p.to_owned(), uri.to_owned());
    }
    let mut attributi: Vec<&Attributo> = el.attributi.iter().collect();
    attributi.sort_by(|a, b| (&a.ns, &a.locale).cmp(&(&b.ns, &b.locale)));
    for a in attributi {
        out.push(' ');
        scrivi_nome(&a.prefisso, &a.locale, out);
        out.push_str("=\"");
        escape_attributo(&a.valore, out);
        out.push('"');
    }
    out.push('>');
    let resi_figli = nuovi.as_ref().unwrap_or(resi);
    for n in &el.figli {
        match n {
            Nodo::Testo(t) => escape_testo(t, out),
            Nodo::Elemento(e) => scrivi(e, resi_figli, inclusivi, out),
            Nodo::Istruzione(pi) => {
                out.push_str("<?");
                out.push_str(pi);
                out.push_str("?>");
            }
        }
    }
    out.push_str("</");
    scrivi_nome(&el.prefisso, &el.locale, out);
    out.push('>');
}

fn scrivi_nome(prefisso: &str, locale: &str, out: &mut String) {
    if !prefisso.is_empty() {
        out.push_str(prefisso);
        out.push(':');
    }
    out.push_str(locale);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, path: &[&str]) -> String {
        let mut e = &analizza(xml.as_bytes()).unwrap();
        for p in path {
            e = e.elementi().find(|c| c.locale == *p).unwrap();
        }
        c14n_esclusiva(e, &[])
    }

    #[test]
    fn only_visibly_utilised_namespaces_are_rendered_sorted() {
        let xml = r#"<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns:z="urn:z"><b:c z:y="2" x="1" b:w="3"><d>t&amp;&lt;&gt;"</d></b:c></a:r>"#;
        assert_eq!(
            c14n(xml, &["c"]),
            r#"<b:c xmlns:b="urn:b" xmlns:z="urn:z" x="1" b:w="3" z:y="2"><d>t&amp;&lt;&gt;"</d></b:c>"#
        );
    }

    #[test]
    fn default_namespace_is_undeclared_when_an_ancestor_rendered_one() {
        let xml = r#"<r xmlns="urn:d"><s><t xmlns=""><u/></t></s></r>"#;
        assert_eq!(
            c14n(xml, &["s"]),
            r#"<s xmlns="urn:d"><t xmlns=""><u></u></t></s>"#
        );
    }

    #[test]
    fn attribute_values_are_normalised_and_escaped() {
        let xml = "<r a=\"x\ty\r\nz&#xA;&quot;&lt;\">a\r\nb&#xD;</r>";
        assert_eq!(
            c14n(xml, &[]),
            "<r a=\"x y z&#xA;&quot;&lt;\">a\nb&#xD;</r>"
        );
    }

    #[test]
    fn dtds_entities_and_bad_documents_are_refused() {
        for bad in [
            "<!DOCTYPE r [<!ENTITY x \"y\">]><r>&x;</r>",
            "<r>&x;</r>",
            "<r><s></r>",
            "<p:r/>",
            "<r a=\"1\" a=\"2\"/>",
            "<r/><r/>",
        ] {
            let err = analizza(bad.as_bytes()).unwrap_err();
            assert_eq!(err.codice(), CODICE_XML_NON_AMMESSO, "{bad}");
        }
        let deep = "<a>".repeat(PROFONDITA_MASSIMA + 1);
        assert!(analizza(deep.as_bytes()).is_err());
    }
}
