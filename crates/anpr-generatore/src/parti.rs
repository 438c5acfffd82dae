//! A generated file split into a multi-part supply (`totaleInvii` > 1), as a
//! municipality sends a registry too big for one file: every part carries the supply
//! totals (`datiFornitura`, `totaleInvii` = the number of parts) and its own counters
//! (`datiInvio`, `progressivoInvio`); each family travels with its members, so no
//! subject points to a family of another part.
//!
//! Works on the files [`crate::genera`] writes (one record per line), not on any
//! subentro file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::xml::Totali;

fn tra<'a>(riga: &'a str, tag: &str) -> Option<&'a str> {
    let apri = format!("<{tag}>");
    let chiudi = format!("</{tag}>");
    let inizio = riga.find(&apri)? + apri.len();
    let fine = riga[inizio..].find(&chiudi)? + inizio;
    Some(&riga[inizio..fine])
}

fn non_valido(messaggio: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, messaggio.to_owned())
}

/// Splits `file` (`<TIPO>_<ISTAT>_001_001.xml`, written by [`crate::genera`]) into
/// `parti` files `<TIPO>_<ISTAT>_<NNN>_<parti>.xml` in the same directory; returns
/// them in order. Families are dealt to the parts in turn.
pub fn dividi_in_parti(file: &Path, parti: u32) -> io::Result<Vec<PathBuf>> {
    if parti == 0 || parti > 999 {
        return Err(non_valido("parti tra 1 e 999"));
    }
    let nome = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| non_valido("nome del file"))?;
    let radice = nome
        .strip_suffix("_001_001.xml")
        .ok_or_else(|| non_valido("atteso un file <TIPO>_<ISTAT>_001_001.xml"))?;
    let righe: Vec<String> = BufReader::new(File::open(file)?)
        .lines()
        .collect::<io::Result<_>>()?;
    let fornitura = righe
        .iter()
        .find(|r| r.starts_with("<datiFornitura>"))
        .ok_or_else(|| non_valido("datiFornitura"))?
        .replace(
            "<totaleInvii>1</totaleInvii>",
            &format!("<totaleInvii>{parti}</totaleInvii>"),
        );
    let data_estrazione = righe
        .iter()
        .find_map(|r| tra(r, "dataEstrazione"))
        .ok_or_else(|| non_valido("dataEstrazione"))?
        .to_owned();

    // Families (and cohabitations) in turn, then each subject with its family.
    let mut parte_di: HashMap<String, usize> = HashMap::new();
    let mut nuclei: Vec<Vec<(&str, &str)>> = vec![Vec::new(); parti as usize];
    let mut sezione = "";
    for r in &righe {
        match r.as_str() {
            "<famiglie>" => sezione = "famiglie",
            "<convivenze>" => sezione = "convivenze",
            "</famiglie>" | "</convivenze>" => sezione = "",
            _ if !sezione.is_empty() => {
                let id = tra(r, "idFamigliaConvivenza").ok_or_else(|| non_valido("famiglia"))?;
                let p = parte_di.len() % parti as usize;
                parte_di.insert(id.to_owned(), p);
                nuclei[p].push((sezione, r));
            }
            _ => {}
        }
    }
    let mut soggetti: Vec<Vec<&str>> = vec![Vec::new(); parti as usize];
    let mut totali = vec![Totali::default(); parti as usize];
    for r in righe.iter().filter(|r| r.starts_with("<soggetto>")) {
        let p = tra(r, "idFamConvComune")
            .and_then(|id| parte_di.get(id).copied())
            .unwrap_or(0);
        let t = &mut totali[p];
        t.soggetti += 1;
        if r.contains("<codiceStato>100</codiceStato></cittadinanza>") {
            t.italiani += 1;
        } else {
            t.non_italiani += 1;
        }
        if r.contains("<sesso>F</sesso>") {
            t.femmine += 1;
        } else {
            t.maschi += 1;
        }
        soggetti[p].push(r);
    }
    let cartella = file.parent().unwrap_or(Path::new("."));
    let mut scritti = Vec::new();
    for (i, t) in totali.iter_mut().enumerate() {
        for (sezione, _) in &nuclei[i] {
            if *sezione == "famiglie" {
                t.famiglie += 1;
            } else {
                t.convivenze += 1;
            }
        }
        let percorso = cartella.join(format!("{radice}_{:03}_{parti:03}.xml", i + 1));
        let mut out = BufWriter::new(File::create(&percorso)?);
        writeln!(out, "{}", righe[0])?;
        writeln!(out, "{}", righe[1])?;
        writeln!(out, "{fornitura}")?;
        writeln!(
            out,
            "<datiInvio><progressivoInvio>{}</progressivoInvio><dataEstrazione>{data_estrazione}</dataEstrazione><numeroSchedeSoggettoInvio>{}</numeroSchedeSoggettoInvio><numeroCittadiniItalianiInvio>{}</numeroCittadiniItalianiInvio><numeroIscrittiNonItalianiInvio>{}</numeroIscrittiNonItalianiInvio><numeroPersoneSessoFemminileInvio>{}</numeroPersoneSessoFemminileInvio><numeroPersoneSessoMaschileInvio>{}</numeroPersoneSessoMaschileInvio><numeroTotaleSchedeFamigliaInvio>{}</numeroTotaleSchedeFamigliaInvio><numeroTotaleSchedeConvivenzaInvio>{}</numeroTotaleSchedeConvivenzaInvio></datiInvio>",
            i + 1, t.soggetti, t.italiani, t.non_italiani, t.femmine, t.maschi, t.famiglie, t.convivenze
        )?;
        writeln!(out, "<generalitaSoggetti>")?;
        for s in &soggetti[i] {
            writeln!(out, "{s}")?;
        }
        writeln!(out, "</generalitaSoggetti>")?;
        for tag in ["famiglie", "convivenze"] {
            let mut di_sezione = nuclei[i].iter().filter(|(s, _)| *s == tag).peekable();
            if di_sezione.peek().is_some() {
                writeln!(out, "<{tag}>")?;
                for (_, r) in di_sezione {
                    writeln!(out, "{r}")?;
                }
                writeln!(out, "</{tag}>")?;
            }
        }
        writeln!(out, "</sub:subentro>")?;
        out.flush()?;
        scritti.push(percorso);
    }
    Ok(scritti)
}
