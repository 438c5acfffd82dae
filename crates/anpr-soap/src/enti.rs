//! The public bodies' services (`E000Vocabolario.xsd`): requests converted into the
//! use cases' inputs and the answers written in the XSD's order.
//!
//! A body (profile ENTE_FRUITORE) reads nationally and has no municipality: the edge
//! builds its caller without one, so nothing here narrows a search to `codMittente`
//! (in these services it is the body's code, not an ISTAT code). E001 answers the
//! decoding tables as 7001 does, E002 the subject consultation as 3002 does, both
//! with the bodies' header (`tipoTestataRispostaE000`, `idOperazioneClient`).

use anpr_domain::error::Anomalia;
use anpr_tables::Tables;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::busta::{scrivi_anomalia, Scrittore};
use crate::catalogo::{Operazione, Servizio};
use crate::richieste::{data_xsd, put, testo, Consultazione, Testata, CODICE_DATO_NON_GESTITO};
use crate::risposte::{scrivi_testata_enti, EsitoTestata, ESITO_OK, ESITO_OK_CON_AVVERTIMENTI};
use crate::scheda::{scrivi_soggetto, Gruppi, Letto, Variante};
use crate::servizi::CODICE_VALORE_NON_GESTITO;

/// E001: the table asked for (`datiRichiesta/idTabella`, the ANPR table number).
/// `compressione` (`numerico1`) other than 0 is refused with EV118: the table is
/// sent uncompressed, as 7001 sends it.
pub fn converti_e001(r: &crate::xml::Elemento) -> Result<String, Vec<Anomalia>> {
    let id = r
        .testo_a("datiRichiesta/idTabella")
        .unwrap_or("")
        .to_owned();
    match r.testo_a("datiRichiesta/compressione").map(str::trim) {
        None | Some("0") => Ok(id),
        Some(altro) => Err(vec![Anomalia::errore(
            CODICE_VALORE_NON_GESTITO,
            "Compressione del file non gestita in questa versione: la tabella e' inviata non compressa",
        )
        .campo("RichiestaE001/datiRichiesta/compressione")
        .valore(altro)
        .atteso("0 o nessun valore (file non compresso)")]),
    }
}

/// `RispostaMultiplaE001`: table `id_tabella` as an XML file (`tipoFileMeta`).
pub fn risposta_e001(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    id_tabella: u32,
    file: &str,
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaMultiplaE001");
    scrivi_testata_enti(&mut w, t, &op.codice, &EsitoTestata::ok(riferimento_id));
    w.apri("datiDettaglioRisposta");
    w.campo("idTabella", &format!("{id_tabella:03}"));
    w.apri("file");
    w.campo("formato", "xml");
    w.campo("nome", &format!("tabella_{id_tabella:03}.xml"));
    w.campo(
        "contenuto",
        &base64::engine::general_purpose::STANDARD.encode(file.as_bytes()),
    );
    w.chiudi("file");
    w.chiudi("datiDettaglioRisposta");
    w.chiudi("ns:RispostaMultiplaE001");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

/// The criteria of `tipoCriteriRicercaE002` this release searches by.
const CRITERI_E002: &[&str] = &[
    "codiceFiscale",
    "cognome",
    "nome",
    "sesso",
    "datiNascita",
    "idANPR",
];

/// A consultation of a body (`RichiestaE002`) converted: the same search as 3002 over
/// the whole country, plus the warnings of what is accepted but not recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsultazioneEnte {
    pub consultazione: Consultazione,
    pub avvertimenti: Vec<Anomalia>,
}

/// Converts `RichiestaE002`.
///
/// Criteria: CF, `idANPR`, surname, name, sex and `datiNascita/dataEvento`
/// (`senzaCognome`, `senzaNome`, a birth date without day or month and the place of
/// birth: EV105). `verifica` (checking data the body holds against the registry) is
/// refused with EV105: no use case answers it. `datiRichiesta`:
/// `schedaAnagraficaRichiesta` 1 (the individual record) or 2 (with the members of
/// the subject's family or cohabitation), `dataRiferimentoRichiesta`,
/// `datiAnagraficiRichiesti` (table "Dati richiesti"; none or 1 = all). `motivoRichiesta`
/// is not recorded (W EV105); `casoUso`, the agreement's use case, is not checked (the
/// registry keeps no register of agreements).
pub fn converti_e002(r: &crate::xml::Elemento) -> Result<ConsultazioneEnte, Vec<Anomalia>> {
    let mut anomalie = Vec::new();
    let mut avvertimenti = Vec::new();
    let non_gestito = |campo: String| {
        Anomalia::errore(
            CODICE_DATO_NON_GESTITO,
            "Criterio non gestito in questa versione",
        )
        .campo(campo)
    };
    if r.figlio("verifica").is_some() {
        anomalie.push(
            Anomalia::errore(
                CODICE_DATO_NON_GESTITO,
                "Verifica dei dati posseduti dall'ente non gestita in questa versione",
            )
            .campo("RichiestaE002/verifica"),
        );
    }
    let mut criteri = Map::new();
    let mut m = Map::new();
    if let Some(c) = r.figlio("criteriRicerca") {
        for f in &c.figli {
            if !CRITERI_E002.contains(&f.nome.as_str()) {
                anomalie.push(
                    non_gestito(format!("RichiestaE002/criteriRicerca/{}", f.nome))
                        .atteso(format!("uno di: {}", CRITERI_E002.join(", "))),
                );
            }
        }
        put(&mut criteri, "codiceFiscale", testo(c, "codiceFiscale"));
        put(&mut criteri, "cognome", testo(c, "cognome"));
        put(&mut criteri, "nome", testo(c, "nome"));
        put(
            &mut criteri,
            "sesso",
            testo(c, "sesso").map(|s| s.to_ascii_uppercase()),
        );
        put(&mut criteri, "idANPR", testo(c, "idANPR"));
        if let Some(d) = c.figlio("datiNascita") {
            for f in &d.figli {
                if f.nome != "dataEvento" {
                    anomalie.push(non_gestito(format!(
                        "RichiestaE002/criteriRicerca/datiNascita/{}",
                        f.nome
                    )));
                }
            }
            if let Some(e) = d.testo_di("dataEvento") {
                m.insert("datiNascita".into(), json!({"dataEvento": data_xsd(e)}));
            }
        }
    }
    m.insert("criteriRicerca".into(), Value::Object(criteri));
    let mut gruppi = Vec::new();
    let mut famiglia = false;
    let mut dm = Map::new();
    if let Some(d) = r.figlio("datiRichiesta") {
        let p = "RichiestaE002/datiRichiesta";
        crate::richieste::dati_richiesti(d, p, &mut famiglia, &mut gruppi, &mut anomalie);
        put(
            &mut dm,
            "dataRiferimentoRichiesta",
            d.testo_di("dataRiferimentoRichiesta").map(data_xsd),
        );
        if let Some(motivo) = d.testo_di("motivoRichiesta") {
            avvertimenti.push(
                Anomalia::avvertimento(
                    CODICE_DATO_NON_GESTITO,
                    "Motivo della richiesta non registrato in questa versione",
                )
                .campo(format!("{p}/motivoRichiesta"))
                .valore(motivo),
            );
        }
    }
    let g = Gruppi::da_codici(gruppi);
    if let Some(sezioni) = g.sezioni(famiglia || g.serve_famiglia()) {
        dm.insert("sezioni".into(), json!(sezioni));
    }
    m.insert("datiRichiesta".into(), Value::Object(dm));
    if anomalie.is_empty() {
        Ok(ConsultazioneEnte {
            consultazione: Consultazione {
                corpo: Value::Object(m),
                gruppi: g,
                famiglia,
            },
            avvertimenti,
        })
    } else {
        Err(anomalie)
    }
}

/// `RispostaE002_OK`: the records found, with the data groups asked for, and the
/// conversion's warnings (outcome 6 when there are any).
#[allow(clippy::too_many_arguments)]
pub fn risposta_e002(
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    tabelle: &Tables,
    soggetti: &[Letto<'_>],
    gruppi: &Gruppi,
    avvertimenti: &[Anomalia],
    riferimento_id: &str,
) -> String {
    let mut w = Scrittore::busta();
    w.apri_ns("ns", &op.risposta, &servizio.namespace);
    w.apri("ns:RispostaE002_OK");
    scrivi_testata_enti(
        &mut w,
        t,
        &op.codice,
        &EsitoTestata {
            id_operazione_anpr: riferimento_id,
            esito: if avvertimenti.is_empty() {
                ESITO_OK
            } else {
                ESITO_OK_CON_AVVERTIMENTI
            },
            ..EsitoTestata::default()
        },
    );
    if !soggetti.is_empty() {
        w.apri("listaSoggetti");
        for l in soggetti {
            scrivi_soggetto(&mut w, tabelle, *l, gruppi, Variante::EnteE002);
        }
        w.chiudi("listaSoggetti");
    }
    for a in avvertimenti {
        scrivi_anomalia(&mut w, "listaAnomalie", a);
    }
    w.chiudi("ns:RispostaE002_OK");
    w.chiudi(&format!("ns:{}", op.risposta));
    w.fine()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn codici_campi(a: &[Anomalia]) -> Vec<(String, String)> {
        a.iter()
            .map(|a| (a.codice.clone(), a.campo.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn e001_refuses_a_compression_it_cannot_send() {
        let r = parse(b"<RichiestaE001><datiRichiesta><idTabella>001</idTabella><compressione>0</compressione></datiRichiesta></RichiestaE001>").unwrap();
        assert_eq!(converti_e001(&r).unwrap(), "001");
        let r = parse(b"<RichiestaE001><datiRichiesta><idTabella>001</idTabella><compressione>1</compressione></datiRichiesta></RichiestaE001>").unwrap();
        assert_eq!(
            codici_campi(&converti_e001(&r).unwrap_err()),
            [(
                "EV118".to_owned(),
                "RichiestaE001/datiRichiesta/compressione".to_owned()
            )]
        );
    }

    #[test]
    fn e002_becomes_the_national_search_and_names_what_it_refuses() {
        let r = parse(b"<RichiestaE002><criteriRicerca><cognome>Ferri</cognome><nome>Carla</nome>\
            <datiNascita><dataEvento>1982-04-04</dataEvento></datiNascita></criteriRicerca>\
            <datiRichiesta><schedaAnagraficaRichiesta>2</schedaAnagraficaRichiesta>\
            <dataRiferimentoRichiesta>2026-11-23</dataRiferimentoRichiesta>\
            <motivoRichiesta>Verifica</motivoRichiesta><casoUso>CU01</casoUso></datiRichiesta></RichiestaE002>").unwrap();
        let c = converti_e002(&r).unwrap();
        assert!(c.consultazione.famiglia);
        assert_eq!(c.consultazione.corpo["criteriRicerca"]["cognome"], "Ferri");
        assert_eq!(
            c.consultazione.corpo["datiNascita"]["dataEvento"],
            "1982-04-04"
        );
        // National: no municipality narrows the search.
        assert!(c.consultazione.corpo["datiRichiesta"]
            .get("comuneResidenza")
            .is_none());
        assert_eq!(
            codici_campi(&c.avvertimenti),
            [(
                "EV105".to_owned(),
                "RichiestaE002/datiRichiesta/motivoRichiesta".to_owned()
            )]
        );
        let r = parse(b"<RichiestaE002><criteriRicerca><senzaCognome>1</senzaCognome></criteriRicerca>\
            <verifica/><datiRichiesta><schedaAnagraficaRichiesta>1</schedaAnagraficaRichiesta>\
            <dataRiferimentoRichiesta>2026-11-23</dataRiferimentoRichiesta><casoUso>CU01</casoUso></datiRichiesta></RichiestaE002>").unwrap();
        let campi: Vec<_> = codici_campi(&converti_e002(&r).unwrap_err())
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            campi,
            [
                "RichiestaE002/verifica",
                "RichiestaE002/criteriRicerca/senzaCognome"
            ]
        );
    }
}
