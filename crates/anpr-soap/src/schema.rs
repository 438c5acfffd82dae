//! Request validation against the published XSDs, driven by a checked-in table of their
//! content models and simple types (`data/schema.txt`, produced from the XSDs under
//! `wsdl/` by `tools/derive_schema.py`).
//!
//! Before a request is mapped to the service layer it is checked against its element's
//! type as an XSD validator would: every child must be one the model declares (unknown
//! elements are refused, not ignored: a gestionale that sends data we would silently
//! drop must know), in the model's order, as many times as it allows (sequences,
//! choices, `minOccurs`/`maxOccurs`); every text value must follow its simple type —
//! the primitive base (`xs:date`, `xs:dateTime`, decimals, booleans, base64), the
//! whitespace rule, length bounds, patterns (alternatives of one derivation step ORed,
//! steps ANDed), enumerations and numeric bounds. Each finding names the element path
//! (`Richiesta1002/generalita1002/generalita/cognome`) and what was expected, as
//! ANPR's error list does; all findings are returned at once (at most
//! [`MAX_ANOMALIE`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use anpr_domain::error::Anomalia;
use regex::Regex;

use crate::xml::Elemento;

/// Our code for a request that does not follow its XSD.
pub const CODICE_NON_CONFORME_XSD: &str = "EV101";

/// Most findings reported for one request: a document full of errors needs the first
/// few, not thousands.
pub const MAX_ANOMALIE: usize = 20;

const TABELLA: &str = include_str!("../data/schema.txt");

/// A type reference of a particle: index into the complex or simple types.
#[derive(Debug, Clone, Copy)]
enum Tipo {
    Complesso(usize),
    Semplice(usize),
}

#[derive(Debug)]
enum Particella {
    Elemento {
        nome: &'static str,
        tipo: Tipo,
        min: u32,
        /// `None` = unbounded.
        max: Option<u32>,
    },
    Gruppo {
        scelta: bool,
        min: u32,
        max: Option<u32>,
        figli: Vec<Particella>,
    },
}

impl Particella {
    fn min(&self) -> u32 {
        match self {
            Particella::Elemento { min, .. } | Particella::Gruppo { min, .. } => *min,
        }
    }

    /// Whether `nome` can be the first element this particle matches.
    fn inizia_con(&self, nome: &str) -> bool {
        match self {
            Particella::Elemento { nome: n, .. } => *n == nome,
            Particella::Gruppo {
                scelta: true,
                figli,
                ..
            } => figli.iter().any(|f| f.inizia_con(nome)),
            Particella::Gruppo { figli, .. } => {
                for f in figli {
                    if f.inizia_con(nome) {
                        return true;
                    }
                    if f.min() > 0 {
                        return false;
                    }
                }
                false
            }
        }
    }

    /// Every element name of the particle, in schema order.
    fn nomi(&self, out: &mut Vec<&'static str>) {
        match self {
            Particella::Elemento { nome, .. } => {
                if !out.contains(nome) {
                    out.push(nome);
                }
            }
            Particella::Gruppo { figli, .. } => figli.iter().for_each(|f| f.nomi(out)),
        }
    }

    /// The element particle named `nome`, anywhere in the model.
    fn elemento(&self, nome: &str) -> Option<(Tipo, Option<u32>)> {
        match self {
            Particella::Elemento {
                nome: n, tipo, max, ..
            } => (*n == nome).then_some((*tipo, *max)),
            Particella::Gruppo { figli, .. } => figli.iter().find_map(|f| f.elemento(nome)),
        }
    }
}

/// Primitive base of a simple type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Stringa,
    Data,
    DataOra,
    Decimale,
    Booleano,
    Base64,
}

#[derive(Debug)]
struct Semplice {
    base: Base,
    /// Whitespace rule: `p` preserve, `r` replace, `c` collapse.
    spazi: u8,
    min: Option<usize>,
    max: Option<usize>,
    /// Pattern indexes per derivation step (each step: one of them must match).
    pattern: Vec<Vec<usize>>,
    enumerazione: Vec<&'static str>,
    nmin: Option<f64>,
    nmax: Option<f64>,
}

#[derive(Debug, Default)]
struct Modelli {
    /// (family, request element) -> complex type.
    radici: HashMap<(&'static str, &'static str), usize>,
    complessi: Vec<Option<Particella>>,
    /// The element names of each complex type's model, in schema order.
    nomi: Vec<Vec<&'static str>>,
    semplici: Vec<Semplice>,
    /// Anchored patterns and their XSD source.
    regex: Vec<(Regex, &'static str)>,
}

fn limite(s: &str) -> Option<u32> {
    s.parse().ok()
}

fn modelli() -> &'static Modelli {
    static M: OnceLock<Modelli> = OnceLock::new();
    M.get_or_init(carica)
}

/// Reads the table. The table is generated and checked in; a line that does not parse
/// is a build defect the unit tests catch (every request element and pattern is
/// exercised there), so it is skipped rather than failing the server.
fn carica() -> Modelli {
    let mut m = Modelli::default();
    let mut complessi: HashMap<&'static str, usize> = HashMap::new();
    let mut semplici: HashMap<&'static str, usize> = HashMap::new();
    let mut pattern: HashMap<&'static str, usize> = HashMap::new();
    // First pass: give every type an index, so particles can refer to later types.
    for riga in TABELLA.lines() {
        let mut campi = riga.splitn(3, ' ');
        match (campi.next(), campi.next()) {
            (Some("T"), Some(k)) => {
                complessi.insert(k, complessi.len());
            }
            (Some("S"), Some(k)) => {
                semplici.insert(k, semplici.len());
            }
            _ => {}
        }
    }
    m.complessi = (0..complessi.len()).map(|_| None).collect();
    let tipo = |k: &str| -> Option<Tipo> {
        if k.starts_with('s') {
            semplici.get(k).map(|i| Tipo::Semplice(*i))
        } else {
            complessi.get(k).map(|i| Tipo::Complesso(*i))
        }
    };
    let mut corrente: Option<usize> = None;
    let mut pila: Vec<Particella> = Vec::new();
    for riga in TABELLA.lines() {
        let campi: Vec<&'static str> = riga.split(' ').collect();
        match campi.as_slice() {
            ["E", famiglia, elemento, k] => {
                if let Some(i) = complessi.get(k) {
                    m.radici.insert((famiglia, elemento), *i);
                }
            }
            ["T", k] => corrente = complessi.get(k).copied(),
            ["G", kind, min, max] => pila.push(Particella::Gruppo {
                scelta: *kind == "c",
                min: limite(min).unwrap_or(1),
                max: limite(max),
                figli: Vec::new(),
            }),
            ["C", nome, k, min, max] => {
                if let (Some(Particella::Gruppo { figli, .. }), Some(t)) =
                    (pila.last_mut(), tipo(k))
                {
                    figli.push(Particella::Elemento {
                        nome,
                        tipo: t,
                        min: limite(min).unwrap_or(1),
                        max: limite(max),
                    });
                }
            }
            ["/"] => {
                if let Some(g) = pila.pop() {
                    match pila.last_mut() {
                        Some(Particella::Gruppo { figli, .. }) => figli.push(g),
                        _ => {
                            if let Some(c) = corrente {
                                m.complessi[c] = Some(g);
                            }
                        }
                    }
                }
            }
            ["S", _k, base, spazi, min, max] => m.semplici.push(Semplice {
                base: match *base {
                    "date" => Base::Data,
                    "dateTime" => Base::DataOra,
                    "decimal" => Base::Decimale,
                    "boolean" => Base::Booleano,
                    "base64Binary" => Base::Base64,
                    _ => Base::Stringa,
                },
                spazi: spazi.bytes().next().unwrap_or(b'p'),
                min: min.parse().ok(),
                max: max.parse().ok(),
                pattern: Vec::new(),
                enumerazione: Vec::new(),
                nmin: None,
                nmax: None,
            }),
            ["P", livello, ..] => {
                // The pattern is the rest of the line (it may contain spaces).
                let sorgente = riga.splitn(3, ' ').nth(2).unwrap_or("");
                let (Ok(livello), Some(s)) = (livello.parse::<usize>(), m.semplici.last_mut())
                else {
                    continue;
                };
                let i = match pattern.get(sorgente) {
                    Some(i) => *i,
                    None => {
                        let Ok(r) = Regex::new(&format!("^(?:{sorgente})$")) else {
                            continue;
                        };
                        m.regex.push((r, sorgente));
                        pattern.insert(sorgente, m.regex.len() - 1);
                        m.regex.len() - 1
                    }
                };
                while s.pattern.len() <= livello {
                    s.pattern.push(Vec::new());
                }
                s.pattern[livello].push(i);
            }
            ["V", ..] => {
                if let Some(s) = m.semplici.last_mut() {
                    s.enumerazione.push(riga.get(2..).unwrap_or(""));
                }
            }
            ["N", lo, hi] => {
                if let Some(s) = m.semplici.last_mut() {
                    s.nmin = lo.parse().ok();
                    s.nmax = hi.parse().ok();
                }
            }
            _ => {}
        }
    }
    for s in &mut m.semplici {
        s.pattern.retain(|l| !l.is_empty());
    }
    m.nomi = m
        .complessi
        .iter()
        .map(|c| {
            let mut v = Vec::new();
            if let Some(c) = c {
                c.nomi(&mut v);
            }
            v
        })
        .collect();
    m
}

/// True when the table knows the request element `elemento` of `famiglia`.
pub fn conosciuto(famiglia: &str, elemento: &str) -> bool {
    modelli().radici.contains_key(&(famiglia, elemento))
}

/// The children the XSD declares for request element `elemento` of `famiglia`, in
/// schema order (empty when the table does not know the request).
pub fn figli_richiesta(famiglia: &str, elemento: &str) -> Vec<&'static str> {
    let m = modelli();
    let mut out = Vec::new();
    if let Some(Some(p)) = m
        .radici
        .get(&(famiglia, elemento))
        .and_then(|i| m.complessi.get(*i))
    {
        p.nomi(&mut out);
    }
    out
}

/// Checks `richiesta` (the body's child, e.g. `Richiesta1002`) against its XSD type.
/// Returns every finding (empty = valid).
pub fn controlla(famiglia: &str, richiesta: &Elemento) -> Vec<Anomalia> {
    let m = modelli();
    let Some(i) = m.radici.get(&(famiglia, richiesta.nome.as_str())) else {
        return vec![Anomalia::errore(
            CODICE_NON_CONFORME_XSD,
            "Elemento di richiesta non previsto dal servizio",
        )
        .campo(richiesta.nome.clone())];
    };
    let mut v = Validazione { m, out: Vec::new() };
    let radice = Percorso {
        padre: None,
        nome: &richiesta.nome,
        indice: None,
    };
    v.complesso(*i, richiesta, &radice);
    v.out
}

struct Validazione<'a> {
    m: &'a Modelli,
    out: Vec<Anomalia>,
}

/// An element's path, built into a string only when a finding names it.
#[derive(Clone, Copy)]
struct Percorso<'a> {
    padre: Option<&'a Percorso<'a>>,
    nome: &'a str,
    /// Position among the siblings of the same name, for repeatable elements.
    indice: Option<usize>,
}

impl Percorso<'_> {
    fn scrivi(&self, out: &mut String) {
        if let Some(p) = self.padre {
            p.scrivi(out);
            out.push('/');
        }
        out.push_str(self.nome);
        if let Some(i) = self.indice {
            out.push_str(&format!("[{i}]"));
        }
    }

    fn stringa(&self) -> String {
        let mut s = String::with_capacity(64);
        self.scrivi(&mut s);
        s
    }

    fn figlio(&self, nome: &str) -> String {
        format!("{}/{nome}", self.stringa())
    }
}

fn errore(testo: &str, campo: String) -> Anomalia {
    Anomalia::errore(CODICE_NON_CONFORME_XSD, testo).campo(campo)
}

fn valore(s: &str) -> String {
    s.chars().take(60).collect()
}

/// A match of the children against a content model: which particle each child
/// matched, the findings, how far it got.
struct Abbinamento<'a> {
    figli: &'a [&'a Elemento],
    pos: usize,
    /// (child index, its type, whether the particle repeats).
    tipi: Vec<(usize, Tipo, bool)>,
    /// Names of mandatory elements (or choices) missing.
    mancanti: Vec<String>,
}

impl Abbinamento<'_> {
    fn corrente(&self) -> Option<&str> {
        self.figli.get(self.pos).map(|e| e.nome.as_str())
    }

    /// Matches particle `p` as many times as it allows (greedily: the published models
    /// are deterministic, as XSD's unique particle attribution requires), noting the
    /// mandatory elements it could not find.
    fn particella(&mut self, p: &Particella) {
        match p {
            Particella::Elemento {
                nome,
                tipo,
                min,
                max,
            } => {
                let mut n = 0;
                while max.is_none_or(|x| n < x) && self.corrente() == Some(nome) {
                    self.tipi.push((self.pos, *tipo, *max != Some(1)));
                    self.pos += 1;
                    n += 1;
                }
                if n < *min {
                    self.mancanti.push((*nome).to_owned());
                }
            }
            Particella::Gruppo {
                scelta,
                min,
                max,
                figli,
            } => {
                let mut n = 0;
                while max.is_none_or(|x| n < x) {
                    let inizio = self.pos;
                    let parte = self.corrente().is_some_and(|c| p.inizia_con(c));
                    if !parte && n >= *min {
                        break;
                    }
                    if *scelta {
                        match self
                            .corrente()
                            .and_then(|c| figli.iter().find(|f| f.inizia_con(c)))
                        {
                            Some(f) => self.particella(f),
                            None => {
                                // A mandatory choice with none of its alternatives.
                                if figli.iter().all(|f| f.min() > 0) {
                                    let mut nomi = Vec::new();
                                    p.nomi(&mut nomi);
                                    self.mancanti.push(format!("uno tra {}", nomi.join(", ")));
                                }
                            }
                        }
                    } else {
                        for f in figli {
                            self.particella(f);
                        }
                    }
                    n += 1;
                    if self.pos == inizio {
                        break;
                    }
                }
            }
        }
    }
}

impl Validazione<'_> {
    fn pieno(&self) -> bool {
        self.out.len() >= MAX_ANOMALIE
    }

    fn push(&mut self, a: Anomalia) {
        if !self.pieno() {
            self.out.push(a);
        }
    }

    fn complesso(&mut self, t: usize, e: &Elemento, percorso: &Percorso<'_>) {
        let Some(Some(modello)) = self.m.complessi.get(t) else {
            return;
        };
        if !e.testo.trim().is_empty() {
            self.push(
                errore(
                    "Testo non ammesso in un elemento composto",
                    percorso.stringa(),
                )
                .valore(valore(e.testo.trim())),
            );
        }
        let nomi = &self.m.nomi[t];
        let mut noti: Vec<&Elemento> = Vec::with_capacity(e.figli.len());
        for f in &e.figli {
            // The ANPR schemas are elementFormDefault="unqualified": a child in a
            // namespace is another element, whatever its local name.
            if let Some(ns) = &f.ns {
                self.push(
                    errore(
                        "Elemento in un namespace non previsto",
                        percorso.figlio(&f.nome),
                    )
                    .valore(ns.clone())
                    .atteso("un elemento senza namespace (elementFormDefault=\"unqualified\")"),
                );
            } else if !nomi.contains(&f.nome.as_str()) {
                self.push(
                    errore(
                        "Elemento non previsto dallo schema",
                        percorso.figlio(&f.nome),
                    )
                    .atteso(format!("uno di: {}", nomi.join(", "))),
                );
            } else {
                noti.push(f);
            }
        }
        let mut a = Abbinamento {
            figli: &noti,
            pos: 0,
            tipi: Vec::with_capacity(noti.len()),
            mancanti: Vec::new(),
        };
        a.particella(modello);
        for nome in std::mem::take(&mut a.mancanti) {
            // Present but misplaced: reported below as out of the schema's order.
            if noti.iter().any(|f| f.nome == nome) {
                continue;
            }
            self.push(if let Some(scelta) = nome.strip_prefix("uno tra ") {
                errore("Elemento obbligatorio mancante", percorso.stringa())
                    .atteso(format!("uno tra {scelta}"))
            } else {
                errore("Elemento obbligatorio mancante", percorso.figlio(&nome))
            });
        }
        if let Some(f) = noti.get(a.pos) {
            // The first child the model could not place: repeated beyond its maximum,
            // or out of the schema's order.
            let (_, max) = modello
                .elemento(&f.nome)
                .unwrap_or((Tipo::Semplice(0), None));
            let presenti = noti.iter().filter(|x| x.nome == f.nome).count();
            let p = percorso.figlio(&f.nome);
            self.push(match max {
                Some(max) if presenti as u32 > max => {
                    errore("Elemento ripetuto oltre il massimo", p)
                        .valore(presenti.to_string())
                        .atteso(format!("al massimo {max}"))
                }
                _ => errore("Elemento in una posizione non prevista dallo schema", p)
                    .atteso(format!("l'ordine dello schema: {}", nomi.join(", "))),
            });
        }
        // Each placed child against its own type; repeated ones numbered.
        let mut contatori: Vec<(&str, usize)> = Vec::new();
        for (i, tipo, ripetuto) in a.tipi {
            if self.pieno() {
                return;
            }
            let f = noti[i];
            let indice = ripetuto.then(|| match contatori.iter_mut().find(|(n, _)| *n == f.nome) {
                Some((_, c)) => {
                    *c += 1;
                    *c
                }
                None => {
                    contatori.push((f.nome.as_str(), 1));
                    1
                }
            });
            let p = Percorso {
                padre: Some(percorso),
                nome: &f.nome,
                indice,
            };
            match tipo {
                Tipo::Complesso(c) => self.complesso(c, f, &p),
                Tipo::Semplice(s) => self.semplice(s, f, &p),
            }
        }
    }

    fn semplice(&mut self, s: usize, e: &Elemento, percorso: &Percorso<'_>) {
        let Some(t) = self.m.semplici.get(s) else {
            return;
        };
        if !e.figli.is_empty() {
            self.push(
                errore("Elemento semplice con elementi figli", percorso.stringa())
                    .atteso("solo testo"),
            );
            return;
        }
        let normalizzato;
        let testo = e.testo.as_str();
        let v: &str = match t.spazi {
            // Most values have nothing to normalise: no allocation then.
            b'c' if testo.bytes().any(|b| b.is_ascii_whitespace()) => {
                normalizzato = testo.split_whitespace().collect::<Vec<_>>().join(" ");
                &normalizzato
            }
            b'r' if testo.contains(['\t', '\n', '\r']) => {
                normalizzato = testo.replace(['\t', '\n', '\r'], " ");
                &normalizzato
            }
            _ => testo,
        };
        if let Some(atteso) = base_non_valida(t.base, v) {
            self.push(
                errore(
                    "Valore non conforme al tipo dello schema",
                    percorso.stringa(),
                )
                .valore(valore(v))
                .atteso(atteso),
            );
            return;
        }
        if t.base != Base::Base64 {
            let n = v.chars().count();
            let corto = t.min.is_some_and(|m| n < m);
            let lungo = t.max.is_some_and(|m| n > m);
            if corto || lungo {
                let atteso = match (t.min, t.max) {
                    (Some(a), Some(b)) if a == b => format!("{a} caratteri"),
                    (Some(a), Some(b)) => format!("da {a} a {b} caratteri"),
                    (Some(a), None) => format!("almeno {a} caratteri"),
                    (None, Some(b)) => format!("al massimo {b} caratteri"),
                    (None, None) => String::new(),
                };
                let testo = if n == 0 {
                    "Valore obbligatorio vuoto"
                } else {
                    "Lunghezza del valore non ammessa"
                };
                self.push(
                    errore(testo, percorso.stringa())
                        .valore(valore(v))
                        .atteso(atteso),
                );
                return;
            }
        }
        for livello in &t.pattern {
            if !livello.iter().any(|i| self.m.regex[*i].0.is_match(v)) {
                let sorgenti: Vec<&str> = livello.iter().map(|i| self.m.regex[*i].1).collect();
                self.push(
                    errore(
                        "Valore non conforme al formato dello schema",
                        percorso.stringa(),
                    )
                    .valore(valore(v))
                    .atteso(format!("il formato {}", sorgenti.join(" oppure "))),
                );
                return;
            }
        }
        if !t.enumerazione.is_empty() && !t.enumerazione.contains(&v) {
            self.push(
                errore("Valore non previsto dallo schema", percorso.stringa())
                    .valore(valore(v))
                    .atteso(format!("uno di: {}", t.enumerazione.join(", "))),
            );
            return;
        }
        if t.nmin.is_some() || t.nmax.is_some() {
            let n: f64 = v.parse().unwrap_or(f64::NAN);
            if t.nmin.is_some_and(|m| n < m) || t.nmax.is_some_and(|m| n > m) {
                self.push(
                    errore("Valore fuori dall'intervallo ammesso", percorso.stringa())
                        .valore(valore(v))
                        .atteso(format!(
                            "un numero tra {} e {}",
                            t.nmin.map_or("-".into(), |x| x.to_string()),
                            t.nmax.map_or("-".into(), |x| x.to_string())
                        )),
                );
            }
        }
    }
}

/// `None` when `v` is a value of primitive `base`, else what was expected.
fn base_non_valida(base: Base, v: &str) -> Option<&'static str> {
    let ok = match base {
        Base::Stringa => true,
        Base::Data => data_valida(v),
        Base::DataOra => data_ora_valida(v),
        Base::Decimale => decimale_valido(v),
        Base::Booleano => matches!(v, "true" | "false" | "1" | "0"),
        Base::Base64 => base64_valido(v),
    };
    (!ok).then_some(match base {
        Base::Stringa => "",
        Base::Data => "una data AAAA-MM-GG (xs:date)",
        Base::DataOra => "data e ora AAAA-MM-GGThh:mm:ss (xs:dateTime)",
        Base::Decimale => "un numero (xs:decimal)",
        Base::Booleano => "true, false, 1 o 0 (xs:boolean)",
        Base::Base64 => "un contenuto base64 (xs:base64Binary)",
    })
}

/// The time zone suffix of an XSD date or time (`Z`, `+hh:mm`, `-hh:mm`) is valid.
fn fuso_valido(s: &str) -> bool {
    match s.as_bytes() {
        [] | [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit())
                && (s[1..3].parse::<u32>().unwrap_or(99) <= 14)
                && (s[4..6].parse::<u32>().unwrap_or(99) <= 59)
        }
        _ => false,
    }
}

fn data_valida(v: &str) -> bool {
    v.len() >= 10
        && v.is_char_boundary(10)
        && chrono::NaiveDate::parse_from_str(&v[..10], "%Y-%m-%d").is_ok()
        && v.as_bytes()[4] == b'-'
        && fuso_valido(&v[10..])
}

fn data_ora_valida(v: &str) -> bool {
    if v.len() < 19 || !v.is_char_boundary(10) || !data_valida(&v[..10]) || v.as_bytes()[10] != b'T'
    {
        return false;
    }
    let resto = &v[11..];
    let (ora, dopo) = resto.split_at(resto.len().min(8));
    if chrono::NaiveTime::parse_from_str(ora, "%H:%M:%S").is_err() {
        return false;
    }
    let dopo = match dopo.strip_prefix('.') {
        Some(f) => {
            let cifre = f.bytes().take_while(u8::is_ascii_digit).count();
            if cifre == 0 {
                return false;
            }
            &f[cifre..]
        }
        None => dopo,
    };
    fuso_valido(dopo)
}

fn decimale_valido(v: &str) -> bool {
    let v = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (intera, frazione) = v.split_once('.').unwrap_or((v, ""));
    (!intera.is_empty() || !frazione.is_empty())
        && intera.bytes().all(|b| b.is_ascii_digit())
        && frazione.bytes().all(|b| b.is_ascii_digit())
}

fn base64_valido(v: &str) -> bool {
    let mut n = 0usize;
    let mut pad = 0usize;
    for b in v.bytes() {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            b'=' => pad += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if pad == 0 => {}
            _ => return false,
        }
        n += 1;
    }
    n.is_multiple_of(4) && pad <= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn the_table_covers_every_published_request_and_its_patterns_compile() {
        let m = modelli();
        // Every request of every WSDL (E001-E004 share one vocabulary).
        for s in crate::catalogo::servizi() {
            for op in &s.operazioni {
                assert!(
                    conosciuto(&s.famiglia, &op.richiesta),
                    "{} {}",
                    s.famiglia,
                    op.richiesta
                );
            }
        }
        assert!(!conosciuto("1000", "Richiesta3002"));
        let sorgenti = TABELLA.lines().filter(|l| l.starts_with("P ")).count();
        assert!(sorgenti > 0);
        let distinti: std::collections::HashSet<&str> = TABELLA
            .lines()
            .filter_map(|l| l.strip_prefix("P "))
            .map(|l| l.split_once(' ').map_or("", |(_, r)| r))
            .collect();
        assert_eq!(m.regex.len(), distinti.len(), "a pattern did not compile");
        assert!(
            m.complessi.iter().all(Option::is_some),
            "a type without model"
        );
    }

    fn campi(found: &[Anomalia]) -> Vec<String> {
        found.iter().filter_map(|a| a.campo.clone()).collect()
    }

    const TESTATA: &str = "<testataRichiesta><idOperazioneComune>1</idOperazioneComune>\
        <codMittente>058091</codMittente><codDestinatario>999999</codDestinatario>\
        <operazioneRichiesta>7003</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta>\
        <tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio></testataRichiesta>";

    #[test]
    fn a_valid_request_has_no_findings() {
        let e =
            parse(format!("<Richiesta7003>{TESTATA}<datiRichiesta/></Richiesta7003>").as_bytes())
                .unwrap();
        assert_eq!(controlla("7001", &e), vec![]);
    }

    #[test]
    fn finds_unknown_missing_and_too_long_elements_with_their_path() {
        let e = parse(
            b"<Richiesta7001><testataRichiesta><idOperazioneComune>1</idOperazioneComune>\
              <codMittente>0580910</codMittente></testataRichiesta><intruso/></Richiesta7001>",
        )
        .unwrap();
        let found = controlla("7001", &e);
        let c = campi(&found);
        assert!(c.contains(&"Richiesta7001/intruso".to_owned()), "{c:?}");
        assert!(
            c.contains(&"Richiesta7001/datiRichiesta".to_owned()),
            "{c:?}"
        );
        assert!(
            c.contains(&"Richiesta7001/testataRichiesta/codMittente".to_owned()),
            "{c:?}"
        );
        assert!(
            c.contains(&"Richiesta7001/testataRichiesta/codDestinatario".to_owned()),
            "{c:?}"
        );
        assert!(found.iter().all(|a| a.codice == CODICE_NON_CONFORME_XSD));
    }

    #[test]
    fn qualified_children_are_not_the_xsd_elements() {
        let e = parse(
            b"<Richiesta7003 xmlns:x=\"urn:x\"><x:testataRichiesta/><datiRichiesta/></Richiesta7003>",
        )
        .unwrap();
        let found = controlla("7001", &e);
        assert!(
            campi(&found).contains(&"Richiesta7003/testataRichiesta".to_owned()),
            "{found:?}"
        );
        assert_eq!(found[0].valore.as_deref(), Some("urn:x"));
    }

    #[test]
    fn patterns_dates_and_order_are_enforced() {
        let testata = TESTATA
            .replace(
                "<idOperazioneComune>1</idOperazioneComune>",
                "<idOperazioneComune>1-2</idOperazioneComune>",
            )
            .replace("2026-11-23T10:00:00", "2026-02-30T10:00:00")
            // tipoInvio before tipoOperazione: out of order.
            .replace(
                "<tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio>",
                "<tipoInvio>TEST</tipoInvio><tipoOperazione>C</tipoOperazione>",
            );
        let e =
            parse(format!("<Richiesta7003>{testata}<datiRichiesta/></Richiesta7003>").as_bytes())
                .unwrap();
        let found = controlla("7001", &e);
        let per = |campo: &str| {
            found
                .iter()
                .find(|a| a.campo.as_deref() == Some(campo))
                .unwrap_or_else(|| panic!("{campo}: {found:?}"))
        };
        let id = per("Richiesta7003/testataRichiesta/idOperazioneComune");
        assert_eq!(id.valore.as_deref(), Some("1-2"));
        assert!(
            id.atteso.as_deref().unwrap().contains("([0-9a-zA-Z])*"),
            "{id:?}"
        );
        let ora = per("Richiesta7003/testataRichiesta/dataOraRichiesta");
        assert!(ora.atteso.as_deref().unwrap().contains("xs:dateTime"));
        let ordine = per("Richiesta7003/testataRichiesta/tipoOperazione");
        assert!(ordine.testo.contains("posizione"), "{ordine:?}");
    }

    #[test]
    fn choices_and_repetitions() {
        // tipoGeneralita: cognome | senzaCognome is a mandatory choice.
        let e = parse(
            format!(
                "<Richiesta5014>{}<generalitaPerRicerca><nome>A</nome><nome>B</nome>\
                 <idSchedaSoggettoANPR>12</idSchedaSoggettoANPR></generalitaPerRicerca>\
                 <tipoRettifica><richiestaRettifica101><dataDecorrenzaResidenza>2020-01-01</dataDecorrenzaResidenza>\
                 </richiestaRettifica101></tipoRettifica></Richiesta5014>",
                TESTATA.replace("7003", "5014")
            )
            .as_bytes(),
        )
        .unwrap();
        let found = controlla("5000", &e);
        let manca = found
            .iter()
            .find(|a| a.campo.as_deref() == Some("Richiesta5014/generalitaPerRicerca"))
            .unwrap_or_else(|| panic!("{found:?}"));
        assert!(
            manca.atteso.as_deref().unwrap().contains("cognome"),
            "{manca:?}"
        );
        let doppio = found
            .iter()
            .find(|a| a.campo.as_deref() == Some("Richiesta5014/generalitaPerRicerca/nome"))
            .unwrap_or_else(|| panic!("{found:?}"));
        assert!(doppio.testo.contains("ripetuto"), "{doppio:?}");
    }

    #[test]
    fn primitive_values() {
        assert!(
            data_valida("2020-02-29")
                && data_valida("2020-02-29Z")
                && data_valida("2020-02-29+01:00")
        );
        assert!(
            !data_valida("2021-02-29") && !data_valida("2020-2-1") && !data_valida("2020-02-29X")
        );
        assert!(
            data_ora_valida("2026-11-23T10:00:00") && data_ora_valida("2026-11-23T10:00:00.123Z")
        );
        assert!(!data_ora_valida("2026-11-23 10:00:00") && !data_ora_valida("2026-11-23T25:00:00"));
        assert!(
            decimale_valido("-1.5")
                && decimale_valido("12")
                && !decimale_valido("1e3")
                && !decimale_valido(".")
        );
        assert!(
            base64_valido("QUJD")
                && base64_valido("QQ==")
                && !base64_valido("QQ=")
                && !base64_valido("Q$==")
        );
    }
}
