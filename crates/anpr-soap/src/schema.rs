//! The request content models of the published XSDs, as a checked-in table
//! (`data/schema.txt`, produced by `tools/derive_schema.py` from the XSDs under `wsdl/`).
//!
//! Before a request is mapped to the service layer it is checked against its element's
//! model: every child must be one the XSD declares (unknown elements are refused, not
//! ignored: a gestionale that sends data we would silently drop must know), mandatory
//! children must be present, singletons must not repeat, and text lengths stay within
//! the XSD bounds. Each finding names the element path, as ANPR's error list does.
//! Patterns and enumerations are left to the service layer, which checks values with
//! its own coded rules.

use std::collections::HashMap;
use std::sync::OnceLock;

use anpr_domain::error::Anomalia;

use crate::xml::Elemento;

/// Our code for a request that does not follow its XSD (unknown, missing or repeated
/// element, text too long).
pub const CODICE_NON_CONFORME_XSD: &str = "EV101";

const TABELLA: &str = include_str!("../data/schema.txt");

#[derive(Debug)]
struct Figlio {
    nome: &'static str,
    tipo: &'static str,
    min: u32,
    /// `None` = unbounded.
    max: Option<u32>,
}

#[derive(Debug, Default)]
struct Modelli {
    /// (family, request element) -> type key.
    radici: HashMap<(&'static str, &'static str), &'static str>,
    tipi: HashMap<&'static str, Vec<Figlio>>,
}

fn modelli() -> &'static Modelli {
    static M: OnceLock<Modelli> = OnceLock::new();
    M.get_or_init(|| {
        let mut m = Modelli::default();
        let mut corrente: Option<&'static str> = None;
        for riga in TABELLA.lines() {
            let campi: Vec<&'static str> = riga.split(' ').collect();
            match campi.as_slice() {
                ["E", famiglia, elemento, tipo] => {
                    m.radici.insert((famiglia, elemento), tipo);
                }
                ["T", tipo] => {
                    corrente = Some(tipo);
                    m.tipi.entry(tipo).or_default();
                }
                ["C", nome, tipo, min, max] => {
                    if let Some(t) = corrente {
                        m.tipi.entry(t).or_default().push(Figlio {
                            nome,
                            tipo,
                            min: min.parse().unwrap_or(0),
                            max: max.parse().ok(),
                        });
                    }
                }
                _ => {}
            }
        }
        m
    })
}

/// True when the table knows the request element `elemento` of `famiglia`.
pub fn conosciuto(famiglia: &str, elemento: &str) -> bool {
    modelli()
        .radici
        .keys()
        .any(|(f, e)| *f == famiglia && *e == elemento)
}

/// The children the XSD declares for request element `elemento` of `famiglia`, in
/// schema order (empty when the table does not know the request).
pub fn figli_richiesta(famiglia: &str, elemento: &str) -> Vec<&'static str> {
    let m = modelli();
    m.radici
        .iter()
        .find(|((f, e), _)| *f == famiglia && *e == elemento)
        .and_then(|(_, t)| m.tipi.get(t))
        .map(|figli| figli.iter().map(|f| f.nome).collect())
        .unwrap_or_default()
}

/// Checks `richiesta` (the body's child, e.g. `Richiesta1002`) against its model.
/// Returns every finding (empty = conforming as far as the table goes).
pub fn controlla(famiglia: &str, richiesta: &Elemento) -> Vec<Anomalia> {
    let m = modelli();
    let Some(tipo) = m
        .radici
        .iter()
        .find(|((f, e), _)| *f == famiglia && *e == richiesta.nome)
        .map(|(_, t)| *t)
    else {
        return vec![Anomalia::errore(
            CODICE_NON_CONFORME_XSD,
            "Elemento di richiesta non previsto dal servizio",
        )
        .campo(richiesta.nome.clone())];
    };
    let mut out = Vec::new();
    visita(m, tipo, richiesta, &richiesta.nome, &mut out);
    out
}

fn visita(m: &Modelli, tipo: &str, e: &Elemento, percorso: &str, out: &mut Vec<Anomalia>) {
    // Cap the list: a document full of errors needs the first few, not thousands.
    if out.len() >= 20 {
        return;
    }
    if let Some(limiti) = tipo.strip_prefix('-') {
        if !e.figli.is_empty() {
            out.push(
                Anomalia::errore(
                    CODICE_NON_CONFORME_XSD,
                    "Elemento semplice con elementi figli",
                )
                .campo(percorso)
                .atteso("solo testo"),
            );
            return;
        }
        let (lo, hi) = limiti.split_once(':').unwrap_or(("", ""));
        let n = e.testo.trim().chars().count();
        let lo: usize = lo.parse().unwrap_or(0);
        if let Ok(hi) = hi.parse::<usize>() {
            if n > hi || n < lo {
                out.push(
                    Anomalia::errore(CODICE_NON_CONFORME_XSD, "Lunghezza del valore non ammessa")
                        .campo(percorso)
                        .valore(e.testo.trim().chars().take(60).collect::<String>())
                        .atteso(format!("da {lo} a {hi} caratteri")),
                );
            }
        } else if n < lo {
            out.push(
                Anomalia::errore(CODICE_NON_CONFORME_XSD, "Valore obbligatorio vuoto")
                    .campo(percorso)
                    .atteso(format!("almeno {lo} caratteri")),
            );
        }
        return;
    }
    let Some(figli) = m.tipi.get(tipo) else {
        return;
    };
    if !e.testo.trim().is_empty() {
        out.push(
            Anomalia::errore(
                CODICE_NON_CONFORME_XSD,
                "Testo non ammesso in un elemento composto",
            )
            .campo(percorso)
            .valore(e.testo.trim().chars().take(60).collect::<String>()),
        );
    }
    for f in &e.figli {
        // The ANPR schemas are elementFormDefault="unqualified": a child in a
        // namespace is another element, whatever its local name.
        if let Some(ns) = &f.ns {
            out.push(
                Anomalia::errore(
                    CODICE_NON_CONFORME_XSD,
                    "Elemento in un namespace non previsto",
                )
                .campo(format!("{percorso}/{}", f.nome))
                .valore(ns.clone())
                .atteso("un elemento senza namespace (elementFormDefault=\"unqualified\")"),
            );
            continue;
        }
        if !figli.iter().any(|d| d.nome == f.nome) {
            out.push(
                Anomalia::errore(
                    CODICE_NON_CONFORME_XSD,
                    "Elemento non previsto dallo schema",
                )
                .campo(format!("{percorso}/{}", f.nome))
                .atteso(format!(
                    "uno di: {}",
                    figli.iter().map(|d| d.nome).collect::<Vec<_>>().join(", ")
                )),
            );
        }
    }
    for d in figli {
        let presenti = e.figli_nominati(d.nome).count();
        if presenti == 0 && d.min == 0 {
            // Absent and optional: nothing to check (and no path to build).
            continue;
        }
        let p = format!("{percorso}/{}", d.nome);
        if (presenti as u32) < d.min {
            out.push(
                Anomalia::errore(CODICE_NON_CONFORME_XSD, "Elemento obbligatorio mancante")
                    .campo(p.clone()),
            );
        }
        if let Some(max) = d.max {
            if presenti as u32 > max {
                out.push(
                    Anomalia::errore(
                        CODICE_NON_CONFORME_XSD,
                        "Elemento ripetuto oltre il massimo",
                    )
                    .campo(p.clone())
                    .valore(presenti.to_string())
                    .atteso(format!("al massimo {max}")),
                );
            }
        }
        for (i, f) in e.figli_nominati(d.nome).enumerate() {
            let p = if d.max == Some(1) {
                p.clone()
            } else {
                format!("{p}[{}]", i + 1)
            };
            visita(m, d.tipo, f, &p, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn the_table_covers_the_served_requests() {
        for (f, e) in [
            ("1000", "Richiesta1002"),
            ("3000", "Richiesta3002"),
            ("5000", "Richiesta5005"),
            ("7001", "Richiesta7001"),
            ("A000", "RichiestaA006"),
        ] {
            assert!(conosciuto(f, e), "{f} {e}");
        }
        assert!(!conosciuto("1000", "Richiesta3002"));
    }

    #[test]
    fn finds_unknown_missing_and_too_long_elements_with_their_path() {
        let e = parse(
            b"<Richiesta7001><testataRichiesta><idOperazioneComune>1</idOperazioneComune>\
              <codMittente>0580910</codMittente></testataRichiesta><intruso/></Richiesta7001>",
        )
        .unwrap();
        let found = controlla("7001", &e);
        let campi: Vec<_> = found.iter().filter_map(|a| a.campo.clone()).collect();
        assert!(
            campi.contains(&"Richiesta7001/intruso".to_owned()),
            "{campi:?}"
        );
        assert!(
            campi.contains(&"Richiesta7001/datiRichiesta".to_owned()),
            "{campi:?}"
        );
        assert!(
            campi.contains(&"Richiesta7001/testataRichiesta/codMittente".to_owned()),
            "{campi:?}"
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
        let campi: Vec<_> = found.iter().filter_map(|a| a.campo.clone()).collect();
        assert!(
            campi.contains(&"Richiesta7003/testataRichiesta".to_owned()),
            "{campi:?}"
        );
        assert_eq!(found[0].valore.as_deref(), Some("urn:x"));
    }
}
