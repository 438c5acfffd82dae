//! The file name convention and its checks (EN001, EN008, EN038, EN039).
//!
//! `APR_<ISTAT>_<progressivo>_<totale>.xml` and `AIRE_<ISTAT>_<progressivo>_<totale>.xml`,
//! the two numbers on three digits (the generator writes these names,
//! `anpr_generatore::nome_file`). The name carries the municipality and the part
//! number, which the real system checks against the sender and the declared total.

use anpr_domain::error::{Anomalia, Gravita};
use anpr_domain::ids::CodiceIstatComune;

use crate::controlli::anomalia;

/// APR (residents) or AIRE (citizens abroad).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TipoFile {
    Apr,
    Aire,
}

/// A parsed file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NomeFile {
    pub tipo: TipoFile,
    pub comune: CodiceIstatComune,
    pub progressivo: u32,
    pub totale: u32,
}

/// Parses and checks a file name sent by `comune`.
pub fn verifica_nome(nome: &str, comune: &CodiceIstatComune) -> Result<NomeFile, Anomalia> {
    let tabelle = anpr_tables::tables();
    let formato = || {
        anomalia(tabelle, "EN001", Gravita::Errore, "nomeFile")
            .valore(nome)
            .atteso("APR_<ISTAT>_<NNN>_<TTT>.xml o AIRE_<ISTAT>_<NNN>_<TTT>.xml")
    };
    let base = nome.strip_suffix(".xml").ok_or_else(formato)?;
    let parti: Vec<&str> = base.split('_').collect();
    let [tipo, istat, prog, tot] = parti.as_slice() else {
        return Err(formato());
    };
    let tipo = match *tipo {
        "APR" => TipoFile::Apr,
        "AIRE" => TipoFile::Aire,
        _ => return Err(formato()),
    };
    let numero = |s: &str| {
        (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (Some(progressivo), Some(totale)) = (numero(prog), numero(tot)) else {
        return Err(formato());
    };
    let comune_nome: CodiceIstatComune = istat.parse().map_err(|_| formato())?;
    if &comune_nome != comune {
        return Err(anomalia(tabelle, "EN039", Gravita::Errore, "nomeFile")
            .valore(istat.to_string())
            .atteso(comune.as_str().to_owned()));
    }
    if totale == 0 {
        return Err(anomalia(tabelle, "EN038", Gravita::Errore, "nomeFile")
            .valore(nome)
            .atteso("totale almeno 001"));
    }
    if progressivo == 0 || progressivo > totale {
        return Err(anomalia(tabelle, "EN008", Gravita::Errore, "nomeFile")
            .valore(prog.to_string())
            .atteso(format!("da 001 a {tot}")));
    }
    Ok(NomeFile {
        tipo,
        comune: comune_nome,
        progressivo,
        totale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(nome: &str, esito: Result<(), &str>) {
        let comune: CodiceIstatComune = "001272".parse().unwrap();
        match (verifica_nome(nome, &comune), esito) {
            (Ok(_), Ok(())) => {}
            (Err(a), Err(codice)) => assert_eq!(a.codice, codice, "{nome}"),
            (got, want) => panic!("{nome}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn names() {
        check("APR_001272_001_001.xml", Ok(()));
        check("AIRE_001272_002_003.xml", Ok(()));
        check("APR_001272_001_001.txt", Err("EN001"));
        check("apr_001272_001_001.xml", Err("EN001"));
        check("APR_001272_1_1.xml", Err("EN001"));
        check("APR_058091_001_001.xml", Err("EN039"));
        check("APR_001272_004_003.xml", Err("EN008"));
        check("APR_001272_000_003.xml", Err("EN008"));
        check("APR_001272_001_000.xml", Err("EN038"));
    }
}
