//! Civil-status events of the XSDs (`tipoMatrimonio`, `tipoVedovanza`,
//! `tipoAnnullamentoMatrimonio`, `tipoUnioneCivile`, `tipoConvivenzaDiFatto`) as the
//! events the use cases take (`EventoRichiesto` of 5008 and 5021: `dataEvento`,
//! `coniuge`, `luogoEvento` as a cadastral code, `atto`, `tipoCessazione`), and the
//! conversion of the polygamy service 5021.
//!
//! What an event of ours records is the date, the place, the deed and the other party
//! (by registry id or CF, otherwise by surname and name). Elements the XSD adds around
//! it that the record does not keep (the other party's birth data and citizenship, the
//! marriage's order number, the ruling's number and court, a contract's protocol...)
//! are accepted and reported with the non-blocking EV105: the gestionale is told what
//! was not stored rather than led to believe it was.

use anpr_domain::error::Anomalia;
use serde_json::{json, Map, Value};

use crate::richieste::{
    codice_tabella, data_xsd, put, testo, Conversione, Testata, CODICE_DATO_NON_GESTITO,
};
use crate::xml::Elemento;

/// The children of `tipoGeneralita` a reference to another person keeps.
const PERSONA_TENUTI: &[&str] = &[
    "codiceFiscale",
    "cognome",
    "nome",
    "idSchedaSoggettoANPR",
    "senzaCognome",
    "senzaNome",
];

impl Conversione<'_> {
    /// A warning (EV105, W) for each child of `e` among `nomi`: accepted, not stored.
    pub(crate) fn non_registrati(&mut self, e: &Elemento, percorso: &str, nomi: &[&str]) {
        for f in &e.figli {
            if nomi.contains(&f.nome.as_str()) {
                self.avvertimenti.push(
                    Anomalia::avvertimento(
                        CODICE_DATO_NON_GESTITO,
                        "Dato accettato ma non registrato in questa versione",
                    )
                    .campo(format!("{percorso}/{}", f.nome)),
                );
            }
        }
    }

    /// Another person (`tipoGeneralita`: spouse, partner, parent) as the use cases
    /// name them: registry id and CF, or surname and name for someone outside the
    /// registry. The rest of the generalities are not kept with the event (EV105, W).
    pub(crate) fn persona_riferita(&mut self, g: &Elemento, percorso: &str) -> Value {
        let mut m = Map::new();
        put(
            &mut m,
            "idSchedaSoggettoANPR",
            testo(g, "idSchedaSoggettoANPR"),
        );
        put(
            &mut m,
            "codiceFiscale",
            g.testo_a("codiceFiscale/codFiscale").map(str::to_owned),
        );
        put(&mut m, "cognome", testo(g, "cognome"));
        put(&mut m, "nome", testo(g, "nome"));
        // Someone in the registry has their data on their own record: the rest only
        // identifies them. For someone outside it, say what is not kept.
        if m.get("idSchedaSoggettoANPR").is_none() && m.get("codiceFiscale").is_none() {
            let altri: Vec<&str> = g
                .figli
                .iter()
                .map(|f| f.nome.as_str())
                .filter(|n| !PERSONA_TENUTI.contains(n))
                .collect();
            self.non_registrati(g, percorso, &altri);
        }
        Value::Object(m)
    }

    /// An error (EV105, E) for each child of `e` among `nomi`: storing the rest
    /// without it would record something else than what was sent.
    pub(crate) fn non_gestiti(&mut self, e: &Elemento, percorso: &str, nomi: &[&str]) {
        for f in &e.figli {
            if nomi.contains(&f.nome.as_str()) {
                self.anomalie.push(
                    Anomalia::errore(
                        CODICE_DATO_NON_GESTITO,
                        "Elemento previsto dallo schema ma non gestito in questa versione",
                    )
                    .campo(format!("{percorso}/{}", f.nome)),
                );
            }
        }
    }

    /// A parent (`tipoGenitore`): the person; their civil status, citizenship and
    /// other data as given in the deed are not kept with the reference.
    pub(crate) fn genitore_riferito(&mut self, e: &Elemento, percorso: &str) -> Value {
        let v = match e.figlio("generalita") {
            Some(g) => self.persona_riferita(g, &format!("{percorso}/generalita")),
            None => json!({}),
        };
        self.non_registrati(e, percorso, &["statoCivile", "cittadinanza", "altriDati"]);
        v
    }

    /// A deed of an event: `tipoAtto`, or `tipoAttoANPR` (its `atto`, or the ANSC deed,
    /// whose municipal number is the deed number and whose national id is not kept).
    fn atto_evento(&mut self, e: &Elemento, percorso: &str) -> Option<Value> {
        if let Some(a) = e.figlio("attoEvento") {
            return Some(self.atto(a, &format!("{percorso}/attoEvento")));
        }
        let anpr = e.figlio("attoEventoANPR")?;
        self.atto_anpr(anpr, &format!("{percorso}/attoEventoANPR"))
    }

    /// `tipoAttoANPR`: `atto` or `attoANSC`.
    pub(crate) fn atto_anpr(&mut self, anpr: &Elemento, percorso: &str) -> Option<Value> {
        if let Some(a) = anpr.figlio("atto") {
            return Some(self.atto(a, &format!("{percorso}/atto")));
        }
        let a = anpr.figlio("attoANSC")?;
        let p = format!("{percorso}/attoANSC");
        let mut v = self.atto(a, &p);
        put(v.as_object_mut()?, "numeroAtto", testo(a, "numeroComunale"));
        self.non_registrati(a, &p, &["idANSC"]);
        Some(v)
    }

    /// `tipoDatiEvento` into `m`: `dataEvento`, `luogoEvento` (cadastral code at the
    /// date of the event), `atto`. A date without day or month is not kept as such.
    fn dati_evento(&mut self, e: &Elemento, percorso: &str, m: &mut Map<String, Value>) {
        let data = e.testo_di("dataEvento").map(data_xsd);
        if let Some(l) = e.figlio("luogoEvento") {
            let at = data
                .as_deref()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let c = self.luogo_catastale(l, &format!("{percorso}/luogoEvento"), at);
            put(m, "luogoEvento", c);
        }
        put(m, "dataEvento", data);
        if let Some(a) = self.atto_evento(e, percorso) {
            m.insert("atto".into(), a);
        }
        // A date without day or month would be stored as a complete one.
        self.non_gestiti(e, percorso, &["senzaGiorno", "senzaGiornoMese"]);
    }

    /// `tipoMatrimonio`: the marriage with its spouse.
    pub(crate) fn matrimonio(&mut self, e: &Elemento, percorso: &str) -> Value {
        let mut m = Map::new();
        if let Some(g) = e.figlio("coniuge") {
            let p = self.persona_riferita(g, &format!("{percorso}/coniuge"));
            m.insert("coniuge".into(), p);
        }
        if let Some(d) = e.figlio("datiMatrimonio") {
            self.dati_evento(d, &format!("{percorso}/datiMatrimonio"), &mut m);
        }
        self.non_registrati(e, percorso, &["cittadinanza", "ordineMatrimonio"]);
        Value::Object(m)
    }

    /// `tipoVedovanza`: the spouse's death ends the marriage.
    pub(crate) fn vedovanza(&mut self, e: &Elemento, percorso: &str) -> Value {
        let mut m = Map::new();
        if let Some(d) = e.figlio("datiMorteconiuge") {
            self.dati_evento(d, &format!("{percorso}/datiMorteconiuge"), &mut m);
        }
        self.non_registrati(e, percorso, &["ordineMatrimonioPrecedente"]);
        Value::Object(m)
    }

    /// The date of an end decided by a ruling or a deed: the ruling's effective date,
    /// else its date, else the deed's date, else the operation's `dataDecorrenza`.
    fn data_fine(
        &mut self,
        sentenza: Option<&Elemento>,
        atto: Option<&Value>,
        decorrenza: Option<&str>,
    ) -> Option<String> {
        sentenza
            .and_then(|s| s.testo_di("dataValidita").or_else(|| s.testo_di("data")))
            .map(data_xsd)
            .or_else(|| {
                atto.and_then(|a| a["dataFormazioneAtto"].as_str())
                    .map(str::to_owned)
            })
            .or_else(|| decorrenza.map(str::to_owned))
    }

    /// `tipoAnnullamentoMatrimonio`: separation, divorce or annulment (`tipoCessazione`,
    /// table "Tipo cessazione matrimonio"), dated by its ruling or deed.
    pub(crate) fn cessazione(&mut self, e: &Elemento, percorso: &str, t: &Testata) -> Value {
        let mut m = Map::new();
        put(
            &mut m,
            "tipoCessazione",
            e.testo_di("tipoCessazione").map(codice_tabella),
        );
        let atto = match e.figlio("attoAnnullamentoMatrimonio") {
            Some(a) => Some(self.atto(a, &format!("{percorso}/attoAnnullamentoMatrimonio"))),
            None => e.figlio("attoAnnullamentoMatrimonioANPR").and_then(|a| {
                self.atto_anpr(a, &format!("{percorso}/attoAnnullamentoMatrimonioANPR"))
            }),
        };
        let sentenza = e.figlio("sentenza");
        let data = self.data_fine(sentenza, atto.as_ref(), t.data_decorrenza.as_deref());
        put(&mut m, "dataEvento", data);
        if let Some(a) = atto {
            m.insert("atto".into(), a);
        }
        if let Some(s) = sentenza {
            // The ruling dates the event; its number and court are not kept.
            self.non_registrati(
                s,
                &format!("{percorso}/sentenza"),
                &["numero", "tipoTribunale", "autorita"],
            );
        }
        Value::Object(m)
    }

    /// `tipoUnioneCivile`: the union (`unioneCivile`) or, with `scioglimentoUnione`,
    /// its dissolution (`scioglimentoUnione`), as (request field, event).
    pub(crate) fn unione_civile(
        &mut self,
        e: &Elemento,
        percorso: &str,
        t: &Testata,
    ) -> (&'static str, Value) {
        let mut m = Map::new();
        if let Some(g) = e.figlio("unitoCivilmente") {
            let p = self.persona_riferita(g, &format!("{percorso}/unitoCivilmente"));
            m.insert("coniuge".into(), p);
        }
        self.non_registrati(e, percorso, &["cittadinanza", "ordineUnione"]);
        if let Some(s) = e.figlio("scioglimentoUnione") {
            let ps = format!("{percorso}/scioglimentoUnione");
            if let Some(d) = s.figlio("datiEvento") {
                self.dati_evento(d, &format!("{ps}/datiEvento"), &mut m);
            }
            if !m.contains_key("dataEvento") {
                let data = self.data_fine(s.figlio("sentenza"), None, t.data_decorrenza.as_deref());
                put(&mut m, "dataEvento", data);
            }
            if let Some(x) = s.figlio("sentenza") {
                self.non_registrati(
                    x,
                    &format!("{ps}/sentenza"),
                    &["numero", "tipoTribunale", "autorita"],
                );
            }
            self.non_registrati(s, &ps, &["motivoScioglimento"]);
            // The union itself is already on the record.
            self.non_registrati(e, percorso, &["attoUnione"]);
            return ("scioglimentoUnione", Value::Object(m));
        }
        if let Some(d) = e.figlio("attoUnione") {
            self.dati_evento(d, &format!("{percorso}/attoUnione"), &mut m);
        } else {
            put(&mut m, "dataEvento", t.data_decorrenza.clone());
        }
        ("unioneCivile", Value::Object(m))
    }

    /// `tipoConvivenzaDiFatto`: the registered cohabitation contract
    /// (`convivenzaDiFatto`) or, with `contrattoRisoluzione`, its end
    /// (`risoluzioneConvivenza`), as (request field, event). The date is the
    /// contract's (`data`, else `dataDocumento`, else `dataNotifica`), else the
    /// operation's `dataDecorrenza`.
    pub(crate) fn convivenza_di_fatto(
        &mut self,
        e: &Elemento,
        percorso: &str,
        t: &Testata,
    ) -> (&'static str, Value) {
        let mut m = Map::new();
        if let Some(g) = e.figlio("convivente") {
            let p = self.persona_riferita(g, &format!("{percorso}/convivente"));
            m.insert("coniuge".into(), p);
        }
        self.non_registrati(e, percorso, &["cittadinanza", "ordineConvivenza"]);
        let (campo, contratto, p) = match e.figlio("contrattoRisoluzione") {
            Some(r) => {
                let p = format!("{percorso}/contrattoRisoluzione");
                self.non_registrati(r, &p, &["motivoRisoluzione"]);
                self.non_registrati(e, percorso, &["contrattoStipula"]);
                (
                    "risoluzioneConvivenza",
                    r.figlio("contratto"),
                    format!("{p}/contratto"),
                )
            }
            None => (
                "convivenzaDiFatto",
                e.figlio("contrattoStipula"),
                format!("{percorso}/contrattoStipula"),
            ),
        };
        let data = contratto
            .and_then(|c| {
                c.testo_di("data")
                    .or_else(|| c.testo_di("dataDocumento"))
                    .or_else(|| c.testo_di("dataNotifica"))
            })
            .map(data_xsd)
            .or_else(|| t.data_decorrenza.clone());
        if let Some(c) = contratto {
            if let Some(l) = c.figlio("luogoEvento") {
                let at = data
                    .as_deref()
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                let luogo = self.luogo_catastale(l, &format!("{p}/luogoEvento"), at);
                put(&mut m, "luogoEvento", luogo);
            }
            self.non_registrati(
                c,
                &p,
                &[
                    "dataNotifica",
                    "dataDocumento",
                    "protocollo",
                    "documento",
                    "estensione",
                    "professionista",
                    "comuneRegistrazione",
                    "stato",
                ],
            );
        }
        put(&mut m, "dataEvento", data);
        (campo, Value::Object(m))
    }

    /// `datiDelProcedimento` (`tipoDatiProcedimento`) as the use cases take it.
    pub(crate) fn procedimento(&mut self, r: &Elemento, m: &mut Map<String, Value>) {
        if let Some(p) = r.figlio("datiDelProcedimento") {
            let mut pm = Map::new();
            put(&mut pm, "numeroPraticaAnpr", testo(p, "numeroPraticaAnpr"));
            put(
                &mut pm,
                "numeroPraticaComune",
                testo(p, "numeroPraticaComune"),
            );
            put(
                &mut pm,
                "dataDefinizionePratica",
                p.testo_di("dataDefinizionePratica").map(data_xsd),
            );
            m.insert("datiDelProcedimento".into(), Value::Object(pm));
        }
    }
}

/// `Richiesta5021`, polygamous marriages: the pair (`matrimonioPerRicerca`), the
/// event of the type in `datiControllo/tipoMutazione` (one per request: the use case
/// does one change at a time), or the operation to annul (type 07).
pub(crate) fn converti_5021(
    c: &mut Conversione<'_>,
    r: &Elemento,
    t: &Testata,
    mut m: Map<String, Value>,
) -> Value {
    put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
    let mut tipi = r
        .figlio("datiControllo")
        .into_iter()
        .flat_map(|d| d.figli_nominati("tipoMutazione"));
    put(
        &mut m,
        "tipoMutazione",
        tipi.next().map(|e| e.testo.trim().to_owned()),
    );
    if tipi.next().is_some() {
        c.anomalie.push(
            Anomalia::errore(
                CODICE_DATO_NON_GESTITO,
                "Un solo tipoMutazione per richiesta di gestione poligamia",
            )
            .campo("datiControllo/tipoMutazione[2]")
            .atteso("una richiesta per ciascuna mutazione"),
        );
    }
    if let Some(mr) = r.figlio("matrimonioPerRicerca") {
        let mut pm = Map::new();
        if let Some(g) = mr.figlio("coniuge1") {
            pm.insert(
                "coniuge1".into(),
                c.soggetto(g, "matrimonioPerRicerca/coniuge1"),
            );
        }
        put(
            &mut pm,
            "dataMatrimonio",
            mr.testo_di("dataMatrimonio").map(data_xsd),
        );
        if let Some(g) = mr.figlio("coniuge2") {
            let p = c.persona_riferita(g, "matrimonioPerRicerca/coniuge2");
            pm.insert("coniuge2".into(), p);
        }
        m.insert("matrimonioPerRicerca".into(), Value::Object(pm));
    }
    if let Some(e) = r.figlio("matrimonio") {
        m.insert("matrimonio".into(), c.matrimonio(e, "matrimonio"));
    }
    if let Some(e) = r.figlio("vedovanza") {
        m.insert("vedovanza".into(), c.vedovanza(e, "vedovanza"));
    }
    if let Some(e) = r.figlio("separazioneAnnullamentoCessazioneMatrimonio") {
        let v = c.cessazione(e, "separazioneAnnullamentoCessazioneMatrimonio", t);
        m.insert("separazioneAnnullamentoCessazioneMatrimonio".into(), v);
    }
    if let Some(id) = r.testo_a("datiAnnullamento/idOperazioneANPR") {
        m.insert("datiAnnullamento".into(), json!({ "idOperazioneANPR": id }));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use crate::richieste::{converti, testata};
    use crate::xml::parse;

    const TESTATA: &str = "<testataRichiesta><idOperazioneComune>9</idOperazioneComune>\
        <codMittente>058091</codMittente><codDestinatario>999999</codDestinatario>\
        <operazioneRichiesta>5021</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta>\
        <tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio><dataDecorrenza>2021-06-01</dataDecorrenza>\
        </testataRichiesta>";

    #[test]
    fn a_5021_divorce_is_dated_by_its_ruling_and_says_what_is_not_kept() {
        let r = parse(
            format!(
                "<Richiesta5021>{TESTATA}<matrimonioPerRicerca><coniuge1><cognome>H</cognome><nome>K</nome>\
                 <idSchedaSoggettoANPR>12</idSchedaSoggettoANPR></coniuge1><coniuge2><cognome>Amrani</cognome>\
                 <nome>Nadia</nome><sesso>F</sesso></coniuge2></matrimonioPerRicerca>\
                 <separazioneAnnullamentoCessazioneMatrimonio><tipoCessazione>03</tipoCessazione><sentenza>\
                 <data>2021-05-01</data><tipoTribunale>1</tipoTribunale><autorita>Roma</autorita>\
                 <dataValidita>2021-05-15</dataValidita></sentenza></separazioneAnnullamentoCessazioneMatrimonio>\
                 <datiDelProcedimento><numeroPraticaComune>P 1</numeroPraticaComune></datiDelProcedimento>\
                 <datiControllo><tipoMutazione>03</tipoMutazione></datiControllo></Richiesta5021>"
            )
            .as_bytes(),
        )
        .unwrap();
        let t = testata(&r);
        assert_eq!(t.tipo_mutazione.as_deref(), Some("03"));
        let c = converti(anpr_tables::tables(), "5021", &r, &t)
            .unwrap()
            .unwrap();
        let v = &c.corpo;
        assert_eq!(v["tipoMutazione"], "03");
        assert_eq!(v["dataDecorrenza"], "2021-06-01");
        assert_eq!(
            v["matrimonioPerRicerca"]["coniuge1"]["idSchedaSoggettoANPR"],
            "12"
        );
        assert_eq!(v["matrimonioPerRicerca"]["coniuge2"]["cognome"], "Amrani");
        let fine = &v["separazioneAnnullamentoCessazioneMatrimonio"];
        assert_eq!(fine["dataEvento"], "2021-05-15");
        assert_eq!(fine["tipoCessazione"], "3");
        assert_eq!(v["datiDelProcedimento"]["numeroPraticaComune"], "P 1");
        let campi: Vec<_> = c
            .avvertimenti
            .iter()
            .filter_map(|a| a.campo.clone())
            .collect();
        assert_eq!(
            campi,
            [
                "matrimonioPerRicerca/coniuge2/sesso",
                "separazioneAnnullamentoCessazioneMatrimonio/sentenza/tipoTribunale",
                "separazioneAnnullamentoCessazioneMatrimonio/sentenza/autorita"
            ]
        );
    }

    #[test]
    fn a_5008_civil_union_dissolution_and_a_day_less_date() {
        let r = parse(
            format!(
                "<Richiesta5008>{}<generalitaPerRicerca><cognome>N</cognome><nome>O</nome>\
                 <idSchedaSoggettoANPR>3</idSchedaSoggettoANPR></generalitaPerRicerca>\
                 <unioneCivile><unitoCivilmente><cognome>Neri</cognome><nome>Luca</nome></unitoCivilmente>\
                 <scioglimentoUnione><datiEvento><dataEvento>2022-02-01</dataEvento><senzaGiorno>1</senzaGiorno>\
                 </datiEvento></scioglimentoUnione></unioneCivile>\
                 <datiControllo><tipoMutazione>19</tipoMutazione></datiControllo></Richiesta5008>",
                TESTATA.replace("5021", "5008")
            )
            .as_bytes(),
        )
        .unwrap();
        let t = testata(&r);
        let errs = converti(anpr_tables::tables(), "5008", &r, &t)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            errs[0].campo.as_deref(),
            Some("unioneCivile/scioglimentoUnione/datiEvento/senzaGiorno")
        );
        let mut ok = r.clone();
        let u = ok
            .figli
            .iter_mut()
            .find(|f| f.nome == "unioneCivile")
            .unwrap();
        u.figli[1].figli[0]
            .figli
            .retain(|f| f.nome != "senzaGiorno");
        let v = converti(anpr_tables::tables(), "5008", &ok, &t)
            .unwrap()
            .unwrap()
            .corpo;
        assert_eq!(v["scioglimentoUnione"]["dataEvento"], "2022-02-01");
        assert_eq!(v["scioglimentoUnione"]["coniuge"]["cognome"], "Neri");
        assert!(v.get("unioneCivile").is_none());
    }
}
