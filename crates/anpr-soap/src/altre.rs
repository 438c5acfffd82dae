//! Conversions of the other registry operations the service layer implements
//! (1010, 1014, 2003, 2009, 5001, 5013, 5014, A001, A002, A006), on the same
//! per-type helpers as [`crate::richieste`].

use anpr_domain::error::Anomalia;
use serde_json::{json, Map, Value};

use crate::richieste::{
    codice_tabella, data_xsd, put, testo, Conversione, Testata, CODICE_DATO_NON_GESTITO,
    CODICE_MOTIVO_NON_ESPRIMIBILE,
};
use crate::xml::Elemento;

/// The request children each conversion reads (see [`crate::richieste`]).
pub(crate) fn gestiti(codice: &str) -> Option<&'static [&'static str]> {
    Some(match codice {
        "1010" => &[
            "testataRichiesta",
            "generalitaSchedaConvivenza",
            "tutoreIntestatario",
            "residenzaConvivneza",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "1014" => &[
            "testataRichiesta",
            "procedimentoIstruttoria",
            "generalitaPerRicerca",
            "datiControllo",
        ],
        "2003" => &[
            "testataRichiesta",
            "datiCancellazione",
            "generalitaPerRicerca",
            "destinazione",
            "elencoSoggetti",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "2009" => &[
            "testataRichiesta",
            "estremiSchedaConvivenza",
            "datiArchiviazione",
            "datiControllo",
        ],
        "5001" => &[
            "testataRichiesta",
            "famigliaConvivenza",
            "elencoSoggettiFamiglia",
            "residenzaFamigliaConvivenza",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "5010" => &[
            "testataRichiesta",
            "idSoggetto",
            "certificabilita",
            "datiControllo",
        ],
        "5013" => &[
            "testataRichiesta",
            "schedaSoggetto",
            "motivoAnnullamento",
            "datiControllo",
        ],
        "5014" => &[
            "testataRichiesta",
            "generalitaPerRicerca",
            "tipoRettifica",
            "datiControllo",
        ],
        "A001" => &[
            "testataRichiesta",
            "generalitaA001",
            "attoNascita",
            "attoNascitaANPR",
            "altraCittadinanza",
            "paternita",
            "maternita",
            "famiglia",
            "legameSoggetto",
            "iscrizioneAire",
            "residenzaEstera",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "A002" => &[
            "testataRichiesta",
            "generalitaA002",
            "attoNascita",
            "attoNascitaANPR",
            "altraCittadinanza",
            "paternita",
            "maternita",
            "famiglia",
            "iscrizioneAire",
            "residenzaEstera",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "A006" => &[
            "testataRichiesta",
            "generalita",
            "famiglia",
            "legameSoggetto",
            "iscrizioneAire",
            "residenzaEstera",
            "datiDelProcedimento",
            "datiControllo",
        ],
        _ => return None,
    })
}

impl Conversione<'_> {
    /// `tipoPermessoSoggiorno`: number, kind ("Tipo soggiorno"), issue and expiry
    /// dates, police headquarters, passport. The record needs the number and the issue
    /// date, which the XSD leaves optional.
    pub(crate) fn permesso_soggiorno(&mut self, e: &Elemento, percorso: &str) -> Value {
        let mut m = Map::new();
        for (nome, chiave) in [
            ("numeroSoggiorno", "numeroSoggiorno"),
            ("dataRilascio", "dataRilascio"),
        ] {
            match e.testo_di(nome) {
                Some(v) => {
                    let v = if nome.starts_with("data") {
                        data_xsd(v)
                    } else {
                        v.to_owned()
                    };
                    m.insert(chiave.into(), json!(v));
                }
                None => self.anomalie.push(
                    Anomalia::errore(
                        anpr_domain::error::CODICE_CAMPO_OBBLIGATORIO,
                        "Dato obbligatorio per registrare il permesso di soggiorno",
                    )
                    .campo(format!("{percorso}/{nome}")),
                ),
            }
        }
        put(
            &mut m,
            "tipoSoggiorno",
            e.testo_di("tipoSoggiorno").map(codice_tabella),
        );
        put(
            &mut m,
            "dataScadenza",
            e.testo_di("dataScadenza").map(data_xsd),
        );
        put(
            &mut m,
            "questuraRilascio",
            testo(e, "questuraRilascioSoggiorno"),
        );
        put(&mut m, "numeroPassaporto", testo(e, "numeroPassaporto"));
        self.non_registrati(e, percorso, &["noteSoggiorno", "comune"]);
        Value::Object(m)
    }

    /// `tipoAltriDati`: education and professional condition (table codes).
    pub(crate) fn altri_dati(&mut self, e: &Elemento) -> Value {
        let mut m = Map::new();
        for nome in [
            "titoloStudio",
            "posizioneProfessionale",
            "condizioneNonProfessionale",
        ] {
            put(&mut m, nome, e.testo_di(nome).map(codice_tabella));
        }
        Value::Object(m)
    }

    /// The leaf children `nomi` of `e` copied under the same names (dates as
    /// `AAAA-MM-GG`); any other child is refused as not handled.
    fn foglie(&mut self, e: &Elemento, percorso: &str, nomi: &[&str]) -> Map<String, Value> {
        let mut m = Map::new();
        for f in &e.figli {
            if !nomi.contains(&f.nome.as_str()) {
                self.anomalie.push(
                    Anomalia::errore(
                        CODICE_DATO_NON_GESTITO,
                        "Elemento previsto dallo schema ma non gestito in questa versione",
                    )
                    .campo(format!("{percorso}/{}", f.nome))
                    .atteso(format!("solo: {}", nomi.join(", "))),
                );
                continue;
            }
            let v = f.testo.trim();
            let v = if f.nome.starts_with("data") {
                data_xsd(v)
            } else {
                v.to_owned()
            };
            m.insert(f.nome.clone(), json!(v));
        }
        m
    }

    /// A foreign residence (`tipoResidenza` with `localitaEstera`) as the AIRE use
    /// cases take it: `residenzaEstera` and `consolato`.
    fn residenza_estera(&mut self, r: &Elemento, m: &mut Map<String, Value>) {
        let Some(l) = r.figlio("localitaEstera") else {
            self.anomalie.push(
                Anomalia::errore(
                    anpr_domain::error::CODICE_CAMPO_OBBLIGATORIO,
                    "Localita' estera mancante",
                )
                .campo("residenzaEstera/localitaEstera"),
            );
            return;
        };
        if let Some(i) = l.figlio("indirizzoEstero") {
            let mut im = Map::new();
            put(
                &mut im,
                "codiceStato",
                i.testo_a("localita/codiceStato").map(str::to_owned),
            );
            put(
                &mut im,
                "localita",
                i.testo_a("localita/descrizioneLocalita").map(str::to_owned),
            );
            put(
                &mut im,
                "provinciaContea",
                i.testo_a("localita/provinciaContea").map(str::to_owned),
            );
            put(&mut im, "cap", testo(i, "cap"));
            let via = [
                i.testo_a("toponimo/denominazione"),
                i.testo_a("toponimo/numeroCivico"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            if !via.is_empty() {
                im.insert("indirizzo".into(), json!(via));
            }
            m.insert("residenzaEstera".into(), Value::Object(im));
        }
        put(
            m,
            "consolato",
            l.testo_a("consolato/codiceConsolato").map(str::to_owned),
        );
    }

    /// `iscrizioneAire` (`tipoIscrizioneAIRE`): reason, initiative, criterion.
    fn iscrizione_aire(&mut self, r: &Elemento, m: &mut Map<String, Value>, con_motivo: bool) {
        let Some(i) = r.figlio("iscrizioneAire") else {
            return;
        };
        if con_motivo {
            let mut mm = Map::new();
            put(&mut mm, "idMotivoIscrizione", testo(i, "motivoIscrizione"));
            put(&mut mm, "note", testo(i, "noteMotivoIscrizione"));
            m.insert("motivoIscrizione".into(), Value::Object(mm));
        }
        put(
            m,
            "iniziativaIscrizione",
            i.testo_di("iniziativaIscrizione").map(codice_tabella),
        );
        put(
            m,
            "individuazioneComuneIscrizione",
            i.testo_di("individuazioneComuneIscrizione")
                .map(codice_tabella),
        );
    }

    /// An AIRE registration (A001, A002).
    fn aire(
        &mut self,
        codice: &str,
        r: &Elemento,
        t: &Testata,
        mut m: Map<String, Value>,
    ) -> Value {
        put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
        let gen = if codice == "A001" {
            "generalitaA001"
        } else {
            "generalitaA002"
        };
        if let Some(g) = r.a(&format!("{gen}/generalita")) {
            let mut gv = self.generalita(g, &format!("{gen}/generalita"));
            if let Some(cf) = r.testo_a("datiControllo/gestioneCF") {
                gv["gestioneCF"] = json!(cf);
            }
            if let Some(a) = g
                .testo_di("annoEspatrio")
                .and_then(|a| a.parse::<i32>().ok())
            {
                m.insert("annoEspatrio".into(), json!(a));
            }
            m.insert("generalita".into(), gv);
        }
        // An AIRE registration is of an Italian citizen: the XSD lists only the
        // other citizenships.
        let mut cz = vec![json!({"codiceStato": "100"})];
        cz.extend(
            r.figli_nominati("altraCittadinanza")
                .map(|e| self.cittadinanza(e)),
        );
        m.insert("cittadinanza".into(), json!(cz));
        if let Some(p) = r.figlio("paternita") {
            m.insert("paternita".into(), self.genitore_riferito(p, "paternita"));
        }
        if let Some(p) = r.figlio("maternita") {
            m.insert("maternita".into(), self.genitore_riferito(p, "maternita"));
        }
        if let Some(a) = r.figlio("attoNascita") {
            m.insert("attoNascita".into(), self.atto(a, "attoNascita"));
        } else if let Some(a) = r.figlio("attoNascitaANPR") {
            if let Some(v) = self.atto_anpr(a, "attoNascitaANPR") {
                m.insert("attoNascita".into(), v);
            }
        }
        self.iscrizione_aire(r, &mut m, true);
        if let Some(res) = r.figlio("residenzaEstera") {
            self.residenza_estera(res, &mut m);
        }
        let (famiglia, legame) = if codice == "A001" {
            (r.figlio("famiglia"), r.figlio("legameSoggetto"))
        } else {
            (r.a("famiglia/famiglia"), r.a("famiglia/legameSoggetto"))
        };
        let mut fm = Map::new();
        put(
            &mut fm,
            "idFamigliaConvivenzaANPR",
            famiglia.and_then(|f| testo(f, "idFamigliaConvivenzaANPR")),
        );
        put(
            &mut fm,
            "codiceLegame",
            legame.and_then(|l| testo(l, "codiceLegame")),
        );
        m.insert("famiglia".into(), Value::Object(fm));
        Value::Object(m)
    }
}

/// Converts the operations of this module; `None` for a service without conversion.
pub(crate) fn converti(
    c: &mut Conversione<'_>,
    codice: &str,
    r: &Elemento,
    t: &Testata,
    mut m: Map<String, Value>,
) -> Option<Value> {
    Some(match codice {
        "1010" => {
            let g = r.figlio("generalitaSchedaConvivenza");
            let decorrenza = t.data_decorrenza.clone().or_else(|| {
                g.and_then(|g| g.testo_di("dataOrigineFamigliaConvivenza"))
                    .map(data_xsd)
            });
            put(&mut m, "dataDecorrenza", decorrenza);
            if let Some(g) = g {
                put(
                    &mut m,
                    "denominazioneConvivenza",
                    testo(g, "denominazioneConvivenza"),
                );
                put(
                    &mut m,
                    "specieConvivenza",
                    g.testo_di("specieConvivenza").map(codice_tabella),
                );
                put(
                    &mut m,
                    "idFamigliaConvivenzaComune",
                    g.testo_a("idFamigliaConvivenzaComune/idFamigliaConvivenza")
                        .map(str::to_owned),
                );
            }
            if let Some(res) = r.figlio("residenzaConvivneza") {
                put(
                    &mut m,
                    "residenza",
                    c.residenza_indirizzo(res, "residenzaConvivneza"),
                );
            }
            if r.figlio("tutoreIntestatario").is_some() {
                // The XSD requires the head here; our cohabitation record gets its
                // members (head included) through 1002/5001/5005, so say so rather
                // than drop it silently.
                c.avvertimenti.push(
                    Anomalia::avvertimento(
                        CODICE_DATO_NON_GESTITO,
                        "tutoreIntestatario non registrato con la scheda: iscrivere il responsabile della convivenza con 1002, 5001 o 5005",
                    )
                    .campo("Richiesta1010/tutoreIntestatario"),
                );
            }
            Value::Object(m)
        }
        "1014" => {
            if let Some(p) = r.figlio("procedimentoIstruttoria") {
                let pm = c.foglie(
                    p,
                    "procedimentoIstruttoria",
                    &[
                        "numeroPraticaAnpr",
                        "numeroPraticaComune",
                        "tipoOperazione",
                        "noteChiusura",
                        "dataChiusura",
                        "motivoAvvio",
                        "dataStato",
                        "statoProcedimento",
                        "esitoChiusura",
                        "noteEsito",
                    ],
                );
                m.insert("procedimentoIstruttoria".into(), Value::Object(pm));
            }
            let soggetti: Vec<Value> = r
                .figli_nominati("generalitaPerRicerca")
                .map(|g| {
                    let mut gm = Map::new();
                    put(
                        &mut gm,
                        "idSchedaSoggettoANPR",
                        testo(g, "idSchedaSoggettoANPR"),
                    );
                    put(
                        &mut gm,
                        "codiceFiscale",
                        g.testo_a("codiceFiscale/codFiscale").map(str::to_owned),
                    );
                    put(
                        &mut gm,
                        "idSchedaSoggettoComune",
                        g.testo_a("idSchedaSoggettoComune/idSchedaSoggetto")
                            .map(str::to_owned),
                    );
                    put(&mut gm, "cognome", testo(g, "cognome"));
                    put(&mut gm, "nome", testo(g, "nome"));
                    Value::Object(gm)
                })
                .collect();
            m.insert("generalitaPerRicerca".into(), json!(soggetti));
            Value::Object(m)
        }
        "2003" => {
            // Richiesta2003 has no element for the AIRE data of a transfer abroad
            // (reason 8: consulate, foreign address) nor for the record that stays in
            // a double registration (reason 10): say so instead of letting the use
            // case ask for fields the gestionale cannot send.
            let motivo = r
                .testo_a("datiCancellazione/motivoCancellazione")
                .map(codice_tabella);
            if let Some(testo) = match motivo.as_deref() {
                Some("8") => Some("Il trasferimento all'estero con iscrizione AIRE (motivo 8) richiede consolato e residenza estera, che Richiesta2003 non prevede: usare POST /api/v1/operazioni/2003 (campo aire)"),
                Some("10") => Some("La doppia iscrizione (motivo 10) richiede la scheda che resta iscritta, che Richiesta2003 non prevede: usare POST /api/v1/operazioni/2003 (campo soggettoPrevalente)"),
                _ => None,
            } {
                c.anomalie.push(
                    Anomalia::errore(CODICE_MOTIVO_NON_ESPRIMIBILE, testo)
                        .campo("datiCancellazione/motivoCancellazione")
                        .valore(motivo.clone().unwrap_or_default()),
                );
            }
            if let Some(d) = r.figlio("datiCancellazione") {
                c.non_registrati(d, "datiCancellazione", &["datiSentenza"]);
                put(
                    &mut m,
                    "motivoCancellazione",
                    d.testo_di("motivoCancellazione").map(codice_tabella),
                );
                put(
                    &mut m,
                    "dataDecorrenza",
                    d.testo_di("dataDecorrenzaCancellazione").map(data_xsd),
                );
                put(&mut m, "note", testo(d, "notecancellazione"));
            }
            if let Some(g) = r.figlio("generalitaPerRicerca") {
                m.insert("soggetto".into(), c.soggetto(g, "generalitaPerRicerca"));
            }
            if let Some(d) = r.figlio("destinazione") {
                let mut dm = Map::new();
                if let Some(cm) = d.figlio("comune") {
                    let istat = c.comune_istat(cm, "destinazione/comune", None);
                    put(&mut dm, "comune", istat);
                }
                put(
                    &mut dm,
                    "codiceStato",
                    d.testo_a("localita/codiceStato").map(str::to_owned),
                );
                m.insert("destinazione".into(), Value::Object(dm));
            }
            let el = c.soggetti_movimentati(r, "elencoSoggetti");
            if !el.is_empty() {
                m.insert("elencoSoggettiFamiglia".into(), json!(el));
            }
            Value::Object(m)
        }
        "2009" => {
            put(
                &mut m,
                "dataDecorrenza",
                r.testo_a("datiArchiviazione/dataDecorrenzaArchiviazione")
                    .map(data_xsd),
            );
            put(
                &mut m,
                "idFamigliaConvivenzaANPR",
                r.testo_a("estremiSchedaConvivenza/idFamigliaConvivenzaANPR")
                    .map(str::to_owned),
            );
            Value::Object(m)
        }
        "5001" => {
            put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
            if let Some(f) = r.figlio("famigliaConvivenza") {
                put(
                    &mut m,
                    "idFamigliaConvivenzaANPR",
                    testo(f, "idFamigliaConvivenzaANPR"),
                );
                if f.figlio("denominazioneConvivenza").is_some()
                    || f.figlio("specieConvivenza").is_some()
                {
                    let mut dc = Map::new();
                    put(
                        &mut dc,
                        "denominazioneConvivenza",
                        testo(f, "denominazioneConvivenza"),
                    );
                    put(
                        &mut dc,
                        "specieConvivenza",
                        f.testo_di("specieConvivenza").map(codice_tabella),
                    );
                    m.insert("datiConvivenza".into(), Value::Object(dc));
                }
                c.non_registrati(
                    f,
                    "famigliaConvivenza",
                    &[
                        "famigliaAire",
                        "dataOrigineFamigliaConvivenza",
                        "motivoCostituzione",
                        "presenzaFamigliaCoabitante",
                    ],
                );
            }
            let tipi: Vec<Value> = r
                .testo_a("datiControllo/tipoMutazione")
                .map(|t| vec![json!(codice_tabella(t))])
                .unwrap_or_default();
            m.insert("tipoMutazione".into(), json!(tipi));
            let el = c.soggetti_movimentati(r, "elencoSoggettiFamiglia");
            // tipoMovimentazione 5 or 6 ("Scomposizione in famiglia nuova", also "per
            // matrimonio"): the members listed leave the family and form a new one at
            // the same address, with the relationships given (one of them the head);
            // the family's municipal id, when given, is the new family's.
            let scissione = r
                .testo_a("famigliaConvivenza/tipoMovimentazione")
                .map(codice_tabella)
                .is_some_and(|t| t == "5" || t == "6");
            if scissione {
                let mut sm = Map::new();
                sm.insert("soggetti".into(), json!(el));
                put(
                    &mut sm,
                    "idFamigliaConvivenzaComune",
                    r.testo_a("famigliaConvivenza/idFamigliaConvivenzaComune/idFamigliaConvivenza")
                        .map(str::to_owned),
                );
                m.insert("scissione".into(), Value::Object(sm));
            } else {
                m.insert("elencoSoggettiFamiglia".into(), json!(el));
            }
            if let Some(res) = r.figlio("residenzaFamigliaConvivenza") {
                put(
                    &mut m,
                    "residenza",
                    c.residenza_indirizzo(res, "residenzaFamigliaConvivenza"),
                );
            }
            Value::Object(m)
        }
        "5010" => {
            // The certifiability part (table 42); the electoral lists are refused
            // (EV105) by the generic check of the request children.
            put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
            let mut sm = Map::new();
            put(&mut sm, "idSchedaSoggettoANPR", testo(r, "idSoggetto"));
            m.insert("soggetto".into(), Value::Object(sm));
            if let Some(cz) = r.figlio("certificabilita") {
                let mut cm = Map::new();
                put(
                    &mut cm,
                    "soggettoCertificabile",
                    cz.testo_di("soggettoCertificabile").map(codice_tabella),
                );
                m.insert("certificabilita".into(), Value::Object(cm));
            }
            Value::Object(m)
        }
        "5013" => {
            put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
            if let Some(g) = r.a("schedaSoggetto/generalitaPerRicerca") {
                m.insert(
                    "soggetto".into(),
                    c.soggetto(g, "schedaSoggetto/generalitaPerRicerca"),
                );
            }
            put(
                &mut m,
                "tipoRevoca",
                r.testo_a("datiControllo/tipoRevoca").map(codice_tabella),
            );
            if let Some(a) = r.figlio("motivoAnnullamento") {
                put(
                    &mut m,
                    "motivoRevoca",
                    a.testo_di("motivoRevoca").map(codice_tabella),
                );
                put(&mut m, "note", testo(a, "noteRevoca"));
            }
            Value::Object(m)
        }
        "5014" => {
            if let Some(g) = r.figlio("generalitaPerRicerca") {
                m.insert("soggetto".into(), c.soggetto(g, "generalitaPerRicerca"));
            }
            if let Some(tr) = r.figlio("tipoRettifica") {
                let p = "tipoRettifica";
                if let Some(e) = tr.figlio("richiestaRettifica101") {
                    let v = c.foglie(
                        e,
                        &format!("{p}/richiestaRettifica101"),
                        &["dataDecorrenzaResidenza"],
                    );
                    m.insert("richiestaRettifica101".into(), Value::Object(v));
                }
                if let Some(e) = tr.figlio("richiestaRettifica102") {
                    let mut v = Map::new();
                    put(
                        &mut v,
                        "idMotivoIscrizione",
                        e.testo_di("idMotivoIscrizione").map(codice_tabella),
                    );
                    put(&mut v, "note", testo(e, "note"));
                    if let Some(pr) = e.figlio("provenienza") {
                        let mut pm = Map::new();
                        if let Some(cm) = pr.figlio("comune") {
                            let istat = c.comune_istat(
                                cm,
                                &format!("{p}/richiestaRettifica102/provenienza/comune"),
                                None,
                            );
                            put(&mut pm, "comune", istat);
                        }
                        put(
                            &mut pm,
                            "codiceStato",
                            pr.testo_a("localita/codiceStato").map(str::to_owned),
                        );
                        v.insert("provenienza".into(), Value::Object(pm));
                    }
                    m.insert("richiestaRettifica102".into(), Value::Object(v));
                }
                if let Some(e) = tr.figlio("richiestaRettifica103") {
                    let v = c.foglie(
                        e,
                        &format!("{p}/richiestaRettifica103"),
                        &["dataPrimaIscrizioneComune", "dataIngressoFamiglia"],
                    );
                    m.insert("richiestaRettifica103".into(), Value::Object(v));
                }
                if let Some(e) = tr.figlio("richiestaRettifica104") {
                    let v = c.foglie(
                        e,
                        &format!("{p}/richiestaRettifica104"),
                        &[
                            "dataPrimaIscrizioneComune",
                            "dataDecorrenzaResidenza",
                            "dataIngressoFamiglia",
                            "dataDecorrenzaLegame",
                        ],
                    );
                    m.insert("richiestaRettifica104".into(), Value::Object(v));
                }
                if let Some(e) = tr.a("richiestaRettifica105/luogoNascita") {
                    let l = c.luogo_catastale(
                        e,
                        &format!("{p}/richiestaRettifica105/luogoNascita"),
                        None,
                    );
                    m.insert("richiestaRettifica105".into(), json!({"luogoNascita": l}));
                }
            }
            Value::Object(m)
        }
        "A001" | "A002" => c.aire(codice, r, t, m),
        "A006" => {
            put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
            // Naming the subject's AIRE family makes the new foreign address the whole
            // family's (the use case checks it is the subject's family).
            if let Some(id) = r.testo_a("famiglia/idFamigliaConvivenzaANPR") {
                m.insert("idFamigliaConvivenzaANPR".into(), json!(id));
                m.insert("tuttaLaFamiglia".into(), json!(true));
            }
            if let Some(g) = r.figlio("generalita") {
                m.insert("soggetto".into(), c.soggetto(g, "generalita"));
                if let Some(a) = g
                    .testo_di("annoEspatrio")
                    .and_then(|a| a.parse::<i32>().ok())
                {
                    m.insert("annoEspatrio".into(), json!(a));
                }
            }
            c.iscrizione_aire(r, &mut m, false);
            if let Some(res) = r.figlio("residenzaEstera") {
                c.residenza_estera(res, &mut m);
            }
            Value::Object(m)
        }
        _ => return None,
    })
}
