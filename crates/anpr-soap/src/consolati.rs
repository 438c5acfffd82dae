//! The consulates' read-only AIRE queries (`CONSOLATIServizi.xsd`): C001 (the
//! registry data of a person registered in AIRE) and C010 (whether a person is
//! registered in AIRE). Both are the consultation search restricted to AIRE subjects;
//! C001 answers the records as 3002 does (`tipoDatiRispostaEstrazioneSoggetti`).
//!
//! A consulate is not a municipality: the edge builds its caller without one, so
//! the search is national unless C001 names the AIRE municipality
//! (`comuneIscrizioneAIRE`, mandatory in the XSD).

use anpr_domain::error::Anomalia;
use anpr_tables::Tables;
use serde_json::{json, Map, Value};

use crate::busta::Scrittore;
use crate::catalogo::{Operazione, Servizio};
use crate::richieste::{data_xsd, put, testo, Consultazione, Testata, CODICE_DATO_NON_GESTITO};
use crate::risposte::{scrivi_testata, EsitoTestata};
use crate::scheda::{scrivi_soggetto, Gruppi, Letto, Variante};

/// The children of `tipoGeneralita` this release searches by.
const CRITERI: &[&str] = &[
    "codiceFiscale",
    "cognome",
    "nome",
    "sesso",
    "dataNascita",
    "soggettoAIRE",
    "idSchedaSoggettoANPR",
];

/// Converts `RichiestaC001` or `RichiestaC010` into the consultation search of AIRE
/// subjects: by CF, by `idSchedaSoggettoANPR`, or by surname and name (with sex and
/// birth date). Other parts of `generalita` (`senzaCognome`, `senzaNome`, a partial
/// birth date, `luogoNascita`, `annoEspatrio`, `idSchedaSoggettoComune`, `note`) and
/// C001's `consolato` are refused with EV105 naming them; `soggettoAIRE` is implied
/// (S). `datiRichiedente` (the consulate's user and workstation) is not used: the
/// requester is the authenticated caller.
pub fn converti(r: &crate::xml::Elemento) -> Result<Consultazione, Vec<Anomalia>> {
    let radice = r.nome.as_str();
    let mut anomalie = Vec::new();
    let mut criteri = Map::new();
    let mut m = Map::new();
    if r.figlio("consolato").is_some() {
        anomalie.push(
            Anomalia::errore(
                CODICE_DATO_NON_GESTITO,
                "Ricerca per consolato non gestita in questa versione",
            )
            .campo(format!("{radice}/consolato")),
        );
    }
    if let Some(g) = r.figlio("generalita") {
        for f in &g.figli {
            if !CRITERI.contains(&f.nome.as_str()) {
                anomalie.push(
                    Anomalia::errore(
                        CODICE_DATO_NON_GESTITO,
                        "Criterio non gestito in questa versione",
                    )
                    .campo(format!("{radice}/generalita/{}", f.nome))
                    .atteso(format!("uno di: {}", CRITERI.join(", "))),
                );
            }
        }
        if let Some(cf) = testo(g, "codiceFiscale") {
            put(&mut criteri, "codiceFiscale", Some(cf));
        } else if let Some(id) = testo(g, "idSchedaSoggettoANPR") {
            put(&mut criteri, "idANPR", Some(id));
        } else {
            put(&mut criteri, "cognome", testo(g, "cognome"));
            put(&mut criteri, "nome", testo(g, "nome"));
            put(
                &mut criteri,
                "sesso",
                testo(g, "sesso").map(|s| s.to_ascii_uppercase()),
            );
            if let Some(d) = g.testo_di("dataNascita") {
                m.insert("datiNascita".into(), json!({"dataEvento": data_xsd(d)}));
            }
        }
    }
    m.insert("criteriRicerca".into(), Value::Object(criteri));
    let mut dm = Map::new();
    put(
        &mut dm,
        "comuneResidenza",
        r.testo_a("comuneIscrizioneAIRE/codiceIstat")
            .map(str::to_owned),
    );
    dm.insert("posizioni".into(), json!(["aire"]));
    m.insert("datiRichiesta".into(), Value::Object(dm));
    if anomalie.is_empty() {
        Ok(Consultazione {
            corpo: Value::Object(m),
            gruppi: Gruppi::default(),
            famiglia: false,
        })
    } else {
        Err(anomalie)
    }
}

/// `RispostaC001`: the AIRE records found (the whole record, as 3002 writes it).
pub fn risposta_c001(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    tabelle: &Tables,
    soggetti: &[Letto<'_>],
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaC001");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    if !soggetti.is_empty() {
        w.apri("listaSoggetti");
        for l in soggetti {
            scrivi_soggetto(
                &mut w,
                tabelle,
                *l,
                &Gruppi::default(),
                Variante::Comune3002,
            );
        }
        w.chiudi("listaSoggetti");
    }
    w.chiudi("ns:RispostaC001");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// `RispostaC010`: whether the person is registered in AIRE.
pub fn risposta_c010(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    aire: bool,
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaC010");
    scrivi_testata(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    w.campo("isAire", if aire { "true" } else { "false" });
    w.chiudi("ns:RispostaC010");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn one_criterion_among_the_generalities_and_only_aire_subjects() {
        let r = parse(b"<RichiestaC001><generalita><cognome>Neri</cognome><nome>Irene</nome>\
            <idSchedaSoggettoANPR>7</idSchedaSoggettoANPR></generalita>\
            <comuneIscrizioneAIRE><codiceIstat>058091</codiceIstat></comuneIscrizioneAIRE></RichiestaC001>").unwrap();
        let c = converti(&r).unwrap();
        assert_eq!(
            c.corpo["criteriRicerca"],
            serde_json::json!({"idANPR": "7"})
        );
        assert_eq!(c.corpo["datiRichiesta"]["comuneResidenza"], "058091");
        assert_eq!(
            c.corpo["datiRichiesta"]["posizioni"],
            serde_json::json!(["aire"])
        );
        let r = parse(
            b"<RichiestaC010><generalita><cognome>Neri</cognome><nome>Irene</nome>\
            <dataNascita>1971-08-08</dataNascita><luogoNascita/></generalita></RichiestaC010>",
        )
        .unwrap();
        let e = converti(&r).unwrap_err();
        assert_eq!(
            (e[0].codice.as_str(), e[0].campo.as_deref()),
            ("EV105", Some("RichiestaC010/generalita/luogoNascita"))
        );
    }
}
