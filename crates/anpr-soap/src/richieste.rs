//! Requests: the header (`testataRichiesta`) and the conversion of each XSD request
//! into the input of its use case — the same JSON document the REST edge accepts
//! (`docs/OPERAZIONI.md`), which the service layer then parses into its typed request.
//!
//! The conversion is written by hand after the XSDs, one function per request element,
//! on helpers per XSD type (`tipoGeneralita`, `tipoIndirizzo`, `tipoAtto`...). Places
//! are given in the XSD by ISTAT code or name (`tipoComune`) or state code
//! (`tipoLocalita`); the use cases take cadastral codes, so they are looked up in the
//! decoding tables at the date of the event. A request child the XSD allows but this
//! release does not handle is refused (EV105) rather than dropped: a gestionale must
//! never believe we stored data we did not.

use anpr_domain::caller::Ambiente;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_tables::Tables;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use crate::xml::Elemento;

/// Our code for an operation of the WSDL that has no use case in this release.
pub const CODICE_NON_DISPONIBILE: &str = "EV100";
/// Our code for `codDestinatario` other than ANPR's 999999.
pub const CODICE_DESTINATARIO: &str = "EV102";
/// Our code for `operazioneRichiesta` not matching the request element.
pub const CODICE_OPERAZIONE_RICHIESTA: &str = "EV103";
/// Our code for a `tipoInvio` that names no environment.
pub const CODICE_TIPO_INVIO: &str = "EV104";
/// Our code for an element the XSD allows but this release does not handle.
pub const CODICE_DATO_NON_GESTITO: &str = "EV105";
/// Our code for a place (municipality, state) not found in the decoding tables.
pub const CODICE_LUOGO_SCONOSCIUTO: &str = "EV106";

/// Our code for a removal reason whose data `Richiesta2003` cannot carry (8: the AIRE
/// data of a transfer abroad; 10: the record that stays in a double registration).
pub const CODICE_MOTIVO_NON_ESPRIMIBILE: &str = "EV117";

/// ANPR's code for the recipient of every request.
pub const DESTINATARIO_ANPR: &str = "999999";

/// `testataRichiesta` (`tipoDatoTestataRichiesta`) as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Testata {
    pub id_operazione_comune: String,
    pub cod_mittente: String,
    pub cod_destinatario: String,
    pub operazione_richiesta: String,
    pub data_ora_richiesta: String,
    pub tipo_operazione: String,
    pub protocollo_comune: Option<String>,
    pub data_protocollo_comune: Option<String>,
    pub tipo_invio: String,
    pub data_decorrenza: Option<String>,
    /// `tipoMutazione` of the request (5021's answer must echo it after its outcome).
    pub tipo_mutazione: Option<String>,
}

/// Reads the header of a request already checked against its XSD (mandatory fields
/// are present; missing ones read as empty and are caught by the checks).
pub fn testata(richiesta: &Elemento) -> Testata {
    let t = richiesta.figlio("testataRichiesta");
    let s = |n: &str| t.and_then(|t| t.testo_di(n)).map(str::to_owned);
    Testata {
        // The bodies' services (E001-E004) call it idOperazioneClient.
        id_operazione_comune: s("idOperazioneComune")
            .or_else(|| s("idOperazioneClient"))
            .unwrap_or_default(),
        cod_mittente: s("codMittente").unwrap_or_default(),
        cod_destinatario: s("codDestinatario").unwrap_or_default(),
        operazione_richiesta: s("operazioneRichiesta").unwrap_or_default(),
        data_ora_richiesta: s("dataOraRichiesta").unwrap_or_default(),
        tipo_operazione: s("tipoOperazione").unwrap_or_default(),
        protocollo_comune: s("protocolloComune"),
        data_protocollo_comune: s("dataProtocolloComune").map(|d| data_xsd(&d)),
        tipo_invio: s("tipoInvio").unwrap_or_default(),
        data_decorrenza: s("dataDecorrenza").map(|d| data_xsd(&d)),
        tipo_mutazione: richiesta
            .testo_di("tipoMutazione")
            .or_else(|| richiesta.testo_a("datiControllo/tipoMutazione"))
            .map(str::to_owned),
    }
}

/// The environment a request is for: `tipoInvio` TEST, PRE_SUB or PROD.
pub fn ambiente(t: &Testata) -> Result<Ambiente, Anomalia> {
    match t.tipo_invio.to_ascii_uppercase().as_str() {
        "TEST" => Ok(Ambiente::Test),
        "PRE_SUB" | "PRESUB" | "PRESUBENTRO" => Ok(Ambiente::Presubentro),
        "PROD" | "PRODUZIONE" => Ok(Ambiente::Produzione),
        _ => Err(Anomalia::errore(CODICE_TIPO_INVIO, "tipoInvio non ammesso")
            .campo("testataRichiesta/tipoInvio")
            .valore(t.tipo_invio.clone())
            .atteso("TEST, PRE_SUB o PROD")),
    }
}

/// Header rules that do not depend on the caller: the recipient is ANPR and the
/// declared operation is the one in the body.
pub fn controlla_testata(t: &Testata, codice: &str) -> Vec<Anomalia> {
    let mut out = Vec::new();
    if t.cod_destinatario != DESTINATARIO_ANPR {
        out.push(
            Anomalia::errore(CODICE_DESTINATARIO, "codDestinatario diverso da ANPR")
                .campo("testataRichiesta/codDestinatario")
                .valore(t.cod_destinatario.clone())
                .atteso(DESTINATARIO_ANPR),
        );
    }
    if t.operazione_richiesta != codice {
        out.push(
            Anomalia::errore(
                CODICE_OPERAZIONE_RICHIESTA,
                "operazioneRichiesta non corrisponde alla richiesta inviata",
            )
            .campo("testataRichiesta/operazioneRichiesta")
            .valore(t.operazione_richiesta.clone())
            .atteso(codice.to_owned()),
        );
    }
    out
}

/// An `xs:date` as `AAAA-MM-GG` (a time-zone suffix, which the XSD admits, dropped).
pub(crate) fn data_xsd(s: &str) -> String {
    s.trim().chars().take(10).collect()
}

/// A table code as the decoding tables hold it: the XSDs write some codes on fixed
/// digits (`numerico2`: "02"), the tables without leading zeros ("2").
pub(crate) fn codice_tabella(s: &str) -> String {
    let c = s.trim().trim_start_matches('0');
    if c.is_empty() {
        "0".into()
    } else {
        c.to_owned()
    }
}

fn parse_data(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&data_xsd(s), "%Y-%m-%d").ok()
}

/// The conversion of one request, collecting every finding.
pub(crate) struct Conversione<'a> {
    pub(crate) tabelle: &'a Tables,
    pub(crate) anomalie: Vec<Anomalia>,
    /// Non-blocking findings shown with the answer (data the XSD requires that this
    /// release does not record).
    pub(crate) avvertimenti: Vec<Anomalia>,
}

/// A converted request: the use case's JSON input and the conversion's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Convertita {
    pub corpo: Value,
    pub avvertimenti: Vec<Anomalia>,
}

/// Inserts `v` under `k` when present.
pub(crate) fn put(m: &mut Map<String, Value>, k: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        m.insert(k.to_owned(), v.into());
    }
}

pub(crate) fn testo(e: &Elemento, n: &str) -> Option<String> {
    e.testo_di(n).map(str::to_owned)
}

impl Conversione<'_> {
    /// A municipality (`tipoComune`) as its ISTAT code: the code when given, else
    /// looked up by name (and province) at `data`.
    pub(crate) fn comune_istat(
        &mut self,
        e: &Elemento,
        percorso: &str,
        data: Option<NaiveDate>,
    ) -> Option<String> {
        if let Some(c) = e.testo_di("codiceIstat") {
            return Some(c.to_owned());
        }
        let nome = e.testo_di("nomeComune")?;
        let sigla = e.testo_di("siglaProvinciaIstat");
        // Without the date of an event, the name means the municipality as it is now.
        let at = data.unwrap_or_else(|| chrono::Utc::now().date_naive());
        let mut trovati: Vec<String> = self
            .tabelle
            .comuni_by_name(nome, Some(at))
            .into_iter()
            .filter(|c| sigla.is_none_or(|s| c.sigla_provincia.eq_ignore_ascii_case(s)))
            .map(|c| c.istat.to_string())
            .collect();
        trovati.dedup();
        match trovati.as_slice() {
            [c] => Some(c.clone()),
            _ => {
                self.anomalie.push(
                    Anomalia::errore(
                        CODICE_LUOGO_SCONOSCIUTO,
                        "Comune non individuato nelle tabelle",
                    )
                    .campo(format!("{percorso}/nomeComune"))
                    .valore(nome)
                    .atteso("il codiceIstat o un nome e una sigla di provincia univoci"),
                );
                None
            }
        }
    }

    /// A place of an event (`tipoLuogoEvento`) as the cadastral code the use cases take.
    pub(crate) fn luogo_catastale(
        &mut self,
        e: &Elemento,
        percorso: &str,
        data: Option<NaiveDate>,
    ) -> Option<String> {
        let at = data.unwrap_or_else(|| chrono::Utc::now().date_naive());
        if let Some(c) = e.figlio("comune") {
            let p = format!("{percorso}/comune");
            let istat = self.comune_istat(c, &p, data)?;
            let trovato = istat
                .parse::<CodiceIstatComune>()
                .ok()
                .and_then(|code| self.tabelle.comune_by_istat(&code, at))
                .and_then(|c| c.catastale.clone());
            if trovato.is_none() {
                self.anomalie.push(
                    Anomalia::errore(
                        CODICE_LUOGO_SCONOSCIUTO,
                        "Comune non valido alla data dell'evento",
                    )
                    .campo(format!("{p}/codiceIstat"))
                    .valore(istat)
                    .atteso(format!("un comune esistente il {at}")),
                );
            }
            return trovato.map(|c| c.to_string());
        }
        if let Some(l) = e.figlio("localita") {
            let codice = l.testo_di("codiceStato").unwrap_or("");
            let trovato = self
                .tabelle
                .stato_estero_by_istat(codice, Some(at))
                .or_else(|| self.tabelle.stato_estero_by_istat(codice, None))
                .and_then(|s| s.catastale.clone());
            if trovato.is_none() {
                self.anomalie.push(
                    Anomalia::errore(CODICE_LUOGO_SCONOSCIUTO, "Stato estero non individuato")
                        .campo(format!("{percorso}/localita/codiceStato"))
                        .valore(codice)
                        .atteso("un codice ISTAT di stato estero (tabella stati esteri)"),
                );
            }
            return trovato.map(|c| c.to_string());
        }
        self.anomalie.push(
            Anomalia::errore(
                CODICE_DATO_NON_GESTITO,
                "Luogo eccezionale non gestito in questa versione",
            )
            .campo(percorso)
            .atteso("comune o localita"),
        );
        None
    }

    /// `tipoGeneralita` of a subject to register.
    pub(crate) fn generalita(&mut self, g: &Elemento, percorso: &str) -> Value {
        let mut m = Map::new();
        put(&mut m, "cognome", testo(g, "cognome"));
        put(&mut m, "nome", testo(g, "nome"));
        put(
            &mut m,
            "sesso",
            testo(g, "sesso").map(|s| s.to_ascii_uppercase()),
        );
        let nascita = g.testo_di("dataNascita").map(data_xsd);
        if let Some(l) = g.figlio("luogoNascita") {
            let data = nascita.as_deref().and_then(parse_data);
            let c = self.luogo_catastale(l, &format!("{percorso}/luogoNascita"), data);
            put(&mut m, "luogoNascita", c);
        }
        put(&mut m, "dataNascita", nascita);
        // A birth date without day or month would be stored as a complete one.
        self.non_gestiti(g, percorso, &["senzaGiorno", "senzaGiornoMese"]);
        self.non_registrati(g, percorso, &["note", "soggettoAIRE"]);
        put(
            &mut m,
            "codiceFiscale",
            g.testo_a("codiceFiscale/codFiscale").map(str::to_owned),
        );
        put(
            &mut m,
            "idSchedaSoggettoComune",
            g.testo_a("idSchedaSoggettoComune/idSchedaSoggetto")
                .map(str::to_owned),
        );
        put(
            &mut m,
            "idSchedaSoggettoANPR",
            testo(g, "idSchedaSoggettoANPR"),
        );
        Value::Object(m)
    }

    /// A subject named in a change (`generalitaPerRicerca`): by national id or CF.
    pub(crate) fn soggetto(&mut self, g: &Elemento, percorso: &str) -> Value {
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
        if m.is_empty() {
            self.anomalie.push(
                Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Soggetto non identificato")
                    .campo(percorso)
                    .atteso("idSchedaSoggettoANPR o codiceFiscale/codFiscale"),
            );
        }
        Value::Object(m)
    }

    pub(crate) fn cittadinanza(&mut self, e: &Elemento) -> Value {
        let mut m = Map::new();
        put(&mut m, "codiceStato", testo(e, "codiceStato"));
        put(
            &mut m,
            "dataValidita",
            e.testo_di("dataValidita").map(data_xsd),
        );
        Value::Object(m)
    }

    /// A deed (`tipoAtto` / `tipoAttoNascita`).
    pub(crate) fn atto(&mut self, e: &Elemento, percorso: &str) -> Value {
        let mut m = Map::new();
        if let Some(c) = e.figlio("comuneRegistrazione") {
            let istat = self.comune_istat(c, &format!("{percorso}/comuneRegistrazione"), None);
            put(&mut m, "comuneRegistrazione", istat);
        }
        if let Some(a) = e.testo_di("anno") {
            m.insert(
                "anno".into(),
                a.parse::<i64>().map_or_else(|_| json!(a), |n| json!(n)),
            );
        }
        put(&mut m, "ufficioMunicipio", testo(e, "ufficioMunicipio"));
        put(&mut m, "parte", testo(e, "parte"));
        put(&mut m, "serie", testo(e, "serie"));
        put(&mut m, "numeroAtto", testo(e, "numeroAtto"));
        put(&mut m, "volume", testo(e, "volume"));
        put(
            &mut m,
            "dataFormazioneAtto",
            e.testo_di("dataFormazioneAtto").map(data_xsd),
        );
        if let Some(t) = e.testo_di("trascritto") {
            m.insert("trascritto".into(), json!(t == "1"));
        }
        Value::Object(m)
    }

    /// An Italian address (`tipoIndirizzo`).
    pub(crate) fn indirizzo(&mut self, e: &Elemento, percorso: &str) -> Value {
        let mut m = Map::new();
        put(&mut m, "cap", testo(e, "cap"));
        if let Some(c) = e.figlio("comune") {
            let istat = self.comune_istat(c, &format!("{percorso}/comune"), None);
            put(&mut m, "comune", istat);
        }
        put(&mut m, "frazione", testo(e, "frazione"));
        if let Some(t) = e.figlio("toponimo") {
            let mut tm = Map::new();
            put(&mut tm, "codSpecie", testo(t, "codSpecie"));
            put(&mut tm, "specie", testo(t, "specie"));
            put(
                &mut tm,
                "denominazioneToponimo",
                testo(t, "denominazioneToponimo"),
            );
            put(&mut tm, "codToponimo", testo(t, "codToponimo"));
            m.insert("toponimo".into(), Value::Object(tm));
        }
        let mut nc = Map::new();
        if let Some(n) = e.figlio("numeroCivico") {
            put(&mut nc, "numero", testo(n, "numero"));
            put(&mut nc, "lettera", testo(n, "lettera"));
            put(&mut nc, "esponente1", testo(n, "esponente1"));
            if let Some(i) = n.figlio("civicoInterno") {
                put(&mut nc, "scala", testo(i, "scala"));
                put(&mut nc, "piano", testo(i, "piano"));
                put(&mut nc, "interno", testo(i, "interno1"));
            }
        }
        m.insert("numeroCivico".into(), Value::Object(nc));
        Value::Object(m)
    }

    /// The Italian address of a residence (`tipoResidenza`); a foreign one is AIRE's.
    pub(crate) fn residenza_indirizzo(&mut self, r: &Elemento, percorso: &str) -> Option<Value> {
        match r.figlio("indirizzo") {
            Some(i) => Some(self.indirizzo(i, &format!("{percorso}/indirizzo"))),
            None => {
                self.anomalie.push(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Indirizzo italiano mancante")
                        .campo(format!("{percorso}/indirizzo"))
                        .atteso(
                            "un indirizzo nel comune (la localita' estera e' dei servizi AIRE)",
                        ),
                );
                None
            }
        }
    }

    /// Members with their relationship (`elencoSoggettiFamiglia`: generalita +
    /// legameSoggetto).
    pub(crate) fn soggetti_movimentati(&mut self, r: &Elemento, nome: &str) -> Vec<Value> {
        r.figli_nominati(nome)
            .enumerate()
            .map(|(i, s)| {
                let p = format!("{nome}[{}]", i + 1);
                let mut v = match s.figlio("generalita") {
                    Some(g) => self.soggetto(g, &format!("{p}/generalita")),
                    None => json!({}),
                };
                if let Some(c) = s.testo_a("legameSoggetto/codiceLegame") {
                    v["codiceLegame"] = json!(c);
                }
                self.non_registrati(s, &p, &["autoveicoli"]);
                v
            })
            .collect()
    }

    /// The annulled operation and its note (`tipoDatiOperazione`).
    pub(crate) fn annullamento(
        &mut self,
        r: &Elemento,
        t: &Testata,
        elemento: &str,
        controllo: &str,
    ) -> Value {
        let op = r.figlio(elemento);
        let mut m = Map::new();
        m.insert("idOperazioneComune".into(), json!(t.id_operazione_comune));
        put(
            &mut m,
            "idOperazioneANPR",
            op.and_then(|o| testo(o, "idOperazioneANPR")),
        );
        put(&mut m, "note", op.and_then(|o| testo(o, "noteOperazione")));
        if let Some(a) = r
            .figlio("datiControllo")
            .and_then(|d| d.testo_di(controllo))
        {
            m.insert(
                "annullamentoAttribuzioneCF".into(),
                json!(a.eq_ignore_ascii_case("S")),
            );
        }
        Value::Object(m)
    }
}

/// The request children each conversion reads; any other child present is refused
/// with EV105 (the XSD admits it, this release would drop it).
fn gestiti(codice: &str) -> Option<&'static [&'static str]> {
    Some(match codice {
        "1001" => &[
            "testataRichiesta",
            "generalita1001",
            "attoNascita",
            "attoNascitaANPR",
            "cittadinanza",
            "paternita",
            "maternita",
            "famConv",
            "legameSoggetto",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "1002" => &[
            "testataRichiesta",
            "motivoIscrizione",
            "generalita1002",
            "cittadinanza",
            "provenienza",
            "residenza",
            "famiglia",
            "convivenza",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "1013" => &[
            "testataRichiesta",
            "datiOperazione",
            "datiSchedaSoggettoFamigliaConvivenza",
            "datiControllo",
        ],
        "2011" | "5012" => &[
            "testataRichiesta",
            "datiOperazioneDaAnnullare",
            "datiSchedaSoggettoFamigliaConvivenza",
            "datiControllo",
        ],
        "2001" => &[
            "testataRichiesta",
            "motivoCancellazione",
            "generalitaPerRicerca",
            "datiDecesso",
            "datiSentenza",
            "elencoSoggettiFamiglia",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "5005" => &[
            "testataRichiesta",
            "generalitaSchedaFamiglia",
            "residenzaFamiglia",
            "elencoSoggettiFamiglia",
            "datiDelProcedimento",
            "datiControllo",
        ],
        "5021" => &[
            "testataRichiesta",
            "matrimonioPerRicerca",
            "matrimonio",
            "vedovanza",
            "separazioneAnnullamentoCessazioneMatrimonio",
            "datiDelProcedimento",
            "datiControllo",
            "datiAnnullamento",
        ],
        "5008" => &[
            "testataRichiesta",
            "generalitaPerRicerca",
            "generalitaDaModificare",
            "attoNascita",
            "attoNascitaANPR",
            "paternita",
            "maternita",
            "cittadinanza",
            "matrimonio",
            "vedovanza",
            "separazioneAnnullamentoCessazioneMatrimonio",
            "convivenzaDiFatto",
            "unioneCivile",
            "permessoSoggiorno",
            "altriDati",
            "datiDelProcedimento",
            "datiControllo",
        ],
        other => return crate::altre::gestiti(other),
    })
}

/// The request children of service `codice` (request element of `famiglia`) the XSD
/// allows but this release refuses with EV105, in schema order: the exact list
/// `docs/SOAP.md` publishes (a test keeps the two equal).
pub fn elementi_non_gestiti(famiglia: &str, codice: &str) -> Vec<&'static str> {
    let Some(gestiti) = gestiti(codice) else {
        return Vec::new();
    };
    crate::schema::figli_richiesta(famiglia, &format!("Richiesta{codice}"))
        .into_iter()
        .filter(|n| !gestiti.contains(n))
        .collect()
}

/// True when this release answers service `codice` (a conversion or a read exists);
/// the others answer EV100.
pub fn supportato(codice: &str) -> bool {
    matches!(
        codice,
        "3001"
            | "3002"
            | "3003"
            | "3004"
            | "3005"
            | "3006"
            | "3007"
            | "4001"
            | "4002"
            | "4003"
            | "4004"
            | "4005"
            | "6001"
            | "7001"
            | "7002"
            | "7003"
            | "C001"
            | "C010"
            | "E001"
            | "E002"
            | "S001"
    ) || gestiti(codice).is_some()
}

/// Converts request `r` of service `codice` into the use case's JSON input. `None`:
/// the service has no conversion in this release (answer EV100).
pub fn converti(
    tabelle: &Tables,
    codice: &str,
    r: &Elemento,
    t: &Testata,
) -> Option<Result<Convertita, Vec<Anomalia>>> {
    let consentiti = gestiti(codice)?;
    let mut c = Conversione {
        tabelle,
        anomalie: Vec::new(),
        avvertimenti: Vec::new(),
    };
    for f in &r.figli {
        if !consentiti.contains(&f.nome.as_str()) {
            c.anomalie.push(
                Anomalia::errore(
                    CODICE_DATO_NON_GESTITO,
                    "Elemento previsto dallo schema ma non gestito in questa versione",
                )
                .campo(format!("{}/{}", r.nome, f.nome))
                .atteso(format!("solo: {}", consentiti.join(", "))),
            );
        }
    }
    let mut m = Map::new();
    m.insert("idOperazioneComune".into(), json!(t.id_operazione_comune));
    let mut v = match codice {
        "1001" => {
            if let Some(g) = r.a("generalita1001/generalita") {
                let mut gv = c.generalita(g, "generalita1001/generalita");
                if let Some(cf) = r.testo_a("datiControllo/gestioneCF") {
                    gv["gestioneCF"] = json!(cf);
                }
                m.insert("generalita".into(), gv);
            }
            if let Some(a) = r.figlio("attoNascita") {
                m.insert("attoNascita".into(), c.atto(a, "attoNascita"));
            } else if let Some(a) = r.figlio("attoNascitaANPR") {
                if let Some(v) = c.atto_anpr(a, "attoNascitaANPR") {
                    m.insert("attoNascita".into(), v);
                }
            }
            let cz: Vec<Value> = r
                .figli_nominati("cittadinanza")
                .map(|e| c.cittadinanza(e))
                .collect();
            m.insert("cittadinanza".into(), json!(cz));
            if let Some(p) = r.figlio("paternita") {
                m.insert("paternita".into(), c.genitore_riferito(p, "paternita"));
            }
            if let Some(p) = r.figlio("maternita") {
                m.insert("maternita".into(), c.genitore_riferito(p, "maternita"));
            }
            if r.figlio("famConv").is_some() || r.figlio("legameSoggetto").is_some() {
                let mut f = Map::new();
                put(
                    &mut f,
                    "idFamigliaConvivenzaANPR",
                    r.testo_a("famConv/idFamigliaConvivenzaANPR")
                        .map(str::to_owned),
                );
                put(
                    &mut f,
                    "codiceLegame",
                    r.testo_a("legameSoggetto/codiceLegame").map(str::to_owned),
                );
                m.insert("famiglia".into(), Value::Object(f));
            }
            Value::Object(m)
        }
        "1002" => {
            if let Some(mi) = r.figlio("motivoIscrizione") {
                let mut mm = Map::new();
                put(
                    &mut mm,
                    "idMotivoIscrizione",
                    testo(mi, "idMotivoIscrizione"),
                );
                put(&mut mm, "note", testo(mi, "note"));
                m.insert("motivoIscrizione".into(), Value::Object(mm));
            }
            put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
            if let Some(g) = r.a("generalita1002/generalita") {
                let mut gv = c.generalita(g, "generalita1002/generalita");
                if let Some(cf) = r.testo_a("datiControllo/gestioneCF") {
                    gv["gestioneCF"] = json!(cf);
                }
                m.insert("generalita".into(), gv);
            }
            let cz: Vec<Value> = r
                .figli_nominati("cittadinanza")
                .map(|e| c.cittadinanza(e))
                .collect();
            m.insert("cittadinanza".into(), json!(cz));
            if let Some(p) = r.figlio("provenienza") {
                let mut pm = Map::new();
                if let Some(cm) = p.figlio("comune") {
                    let istat = c.comune_istat(cm, "provenienza/comune", None);
                    put(&mut pm, "comune", istat);
                }
                put(
                    &mut pm,
                    "codiceStato",
                    p.testo_a("localita/codiceStato").map(str::to_owned),
                );
                m.insert("provenienza".into(), Value::Object(pm));
            }
            let mut residenze = r.figli_nominati("residenza");
            if let Some(res) = residenze.next() {
                put(
                    &mut m,
                    "residenza",
                    c.residenza_indirizzo(res, "residenza[1]"),
                );
            }
            if residenze.next().is_some() {
                c.anomalie.push(
                    Anomalia::errore(
                        CODICE_DATO_NON_GESTITO,
                        "Una sola residenza gestita in questa versione",
                    )
                    .campo("residenza[2]"),
                );
            }
            for nome in ["famiglia", "convivenza"] {
                if let Some(f) = r.figlio(nome) {
                    let mut fm = Map::new();
                    put(
                        &mut fm,
                        "idFamigliaConvivenzaANPR",
                        f.testo_a(&format!("{nome}/idFamigliaConvivenzaANPR"))
                            .map(str::to_owned),
                    );
                    put(
                        &mut fm,
                        "idFamigliaConvivenzaComune",
                        f.testo_a(&format!(
                            "{nome}/idFamigliaConvivenzaComune/idFamigliaConvivenza"
                        ))
                        .map(str::to_owned),
                    );
                    put(
                        &mut fm,
                        "codiceLegame",
                        f.testo_a("legameSoggetto/codiceLegame").map(str::to_owned),
                    );
                    m.insert("famiglia".into(), Value::Object(fm));
                }
            }
            Value::Object(m)
        }
        "1013" => c.annullamento(r, t, "datiOperazione", "annullamentoAttribuzione"),
        "2011" | "5012" => c.annullamento(
            r,
            t,
            "datiOperazioneDaAnnullare",
            "annullamentoAttribuzioneCF",
        ),
        "2001" => {
            put(
                &mut m,
                "motivoCancellazione",
                r.testo_a("motivoCancellazione/tipoMotivoCancellazione")
                    .map(str::to_owned),
            );
            if let Some(g) = r.figlio("generalitaPerRicerca") {
                m.insert("soggetto".into(), c.soggetto(g, "generalitaPerRicerca"));
            }
            if let Some(d) = r.figlio("datiDecesso") {
                let mut dm = Map::new();
                let data = d.testo_di("dataEvento").map(data_xsd);
                if let Some(l) = d.figlio("luogoEvento") {
                    if let Some(cm) = l.figlio("comune") {
                        let at = data.as_deref().and_then(parse_data);
                        put(
                            &mut dm,
                            "comuneMorte",
                            c.comune_istat(cm, "datiDecesso/luogoEvento/comune", at),
                        );
                    }
                    put(
                        &mut dm,
                        "statoMorte",
                        l.testo_a("localita/codiceStato").map(str::to_owned),
                    );
                }
                put(&mut dm, "dataMorte", data);
                if let Some(a) = d.figlio("attoEvento") {
                    dm.insert("attoMorte".into(), c.atto(a, "datiDecesso/attoEvento"));
                }
                m.insert("datiDecesso".into(), Value::Object(dm));
            }
            if let Some(s) = r.figlio("datiSentenza") {
                let mut sm = Map::new();
                put(
                    &mut sm,
                    "dataSentenza",
                    s.testo_di("dataSentenza").map(data_xsd),
                );
                put(
                    &mut sm,
                    "tribunale",
                    testo(s, "tribunale").or_else(|| testo(s, "descrizioneTribunale")),
                );
                put(&mut sm, "numeroSentenza", testo(s, "numeroSentenza"));
                m.insert("datiSentenza".into(), Value::Object(sm));
            }
            let el = c.soggetti_movimentati(r, "elencoSoggettiFamiglia");
            if !el.is_empty() {
                m.insert("elencoSoggettiFamiglia".into(), json!(el));
            }
            Value::Object(m)
        }
        "5005" => {
            put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
            put(
                &mut m,
                "tipoMutazione",
                r.testo_a("datiControllo/tipoMutazione").map(codice_tabella),
            );
            let el = c.soggetti_movimentati(r, "elencoSoggettiFamiglia");
            m.insert("soggetti".into(), json!(el));
            if let Some(res) = r.figlio("residenzaFamiglia") {
                put(
                    &mut m,
                    "residenza",
                    c.residenza_indirizzo(res, "residenzaFamiglia[1]"),
                );
                put(&mut m, "presso", testo(res, "presso"));
            }
            // tipoMovimentazione (table "Tipo movimentazione") says whether the movers
            // form a new family (1, 2, 5, 6) or join an existing one (3, 4, 7, 8);
            // without it the whole family moves together.
            if let Some(f) = r.figlio("generalitaSchedaFamiglia") {
                match f.testo_di("tipoMovimentazione") {
                    Some("1" | "2" | "5" | "6") => {
                        m.insert("famiglia".into(), json!({}));
                    }
                    Some(_) => {
                        let mut fm = Map::new();
                        put(
                            &mut fm,
                            "idFamigliaConvivenzaANPR",
                            testo(f, "idFamigliaConvivenzaANPR"),
                        );
                        m.insert("famiglia".into(), Value::Object(fm));
                    }
                    None => {}
                }
            }
            Value::Object(m)
        }
        "5008" => {
            put(&mut m, "dataDecorrenza", t.data_decorrenza.clone());
            if let Some(g) = r.figlio("generalitaPerRicerca") {
                m.insert("soggetto".into(), c.soggetto(g, "generalitaPerRicerca"));
            }
            let tipi: Vec<Value> = r
                .figlio("datiControllo")
                .map(|d| {
                    // The XSD writes the table code on two digits ("01"); the table
                    // "Tipi mutazione" has it without the leading zero.
                    d.figli_nominati("tipoMutazione")
                        .map(|e| json!(codice_tabella(&e.testo)))
                        .collect()
                })
                .unwrap_or_default();
            m.insert("tipoMutazione".into(), json!(tipi));
            if let Some(g) = r.a("generalitaDaModificare/generalita") {
                let mut gv = c.generalita(g, "generalitaDaModificare/generalita");
                if let Value::Object(o) = &mut gv {
                    // The subject is named by generalitaPerRicerca; ids here would be
                    // a second, conflicting naming.
                    o.remove("idSchedaSoggettoANPR");
                    o.remove("idSchedaSoggettoComune");
                }
                if let Some(cf) = r.testo_a("datiControllo/gestioneCF") {
                    gv["gestioneCF"] = json!(cf);
                }
                m.insert("generalita".into(), gv);
            }
            let cz: Vec<Value> = r
                .figli_nominati("cittadinanza")
                .map(|e| c.cittadinanza(e))
                .collect();
            if !cz.is_empty() {
                m.insert("cittadinanza".into(), json!(cz));
            }
            for nome in ["paternita", "maternita"] {
                if let Some(p) = r.figlio(nome) {
                    m.insert(nome.into(), c.genitore_riferito(p, nome));
                }
            }
            if let Some(a) = r.figlio("attoNascita") {
                m.insert("attoNascita".into(), c.atto(a, "attoNascita"));
            } else if let Some(a) = r.figlio("attoNascitaANPR") {
                if let Some(v) = c.atto_anpr(a, "attoNascitaANPR") {
                    m.insert("attoNascita".into(), v);
                }
            }
            // Civil-status events: the use case takes one per request (EN321).
            if let Some(e) = r.figlio("matrimonio") {
                m.insert("matrimonio".into(), c.matrimonio(e, "matrimonio"));
            }
            if let Some(e) = r.figlio("vedovanza") {
                m.insert("vedovanza".into(), c.vedovanza(e, "vedovanza"));
            }
            if let Some(e) = r.figlio("separazioneAnnullamentoCessazioneMatrimonio") {
                let v = c.cessazione(e, "separazioneAnnullamentoCessazioneMatrimonio", t);
                m.insert("cessazioneMatrimonio".into(), v);
            }
            if let Some(e) = r.figlio("unioneCivile") {
                let (campo, v) = c.unione_civile(e, "unioneCivile", t);
                m.insert(campo.into(), v);
            }
            if let Some(e) = r.figlio("convivenzaDiFatto") {
                let (campo, v) = c.convivenza_di_fatto(e, "convivenzaDiFatto", t);
                m.insert(campo.into(), v);
            }
            if let Some(e) = r.figlio("permessoSoggiorno") {
                let v = c.permesso_soggiorno(e, "permessoSoggiorno");
                m.insert("permessoSoggiorno".into(), v);
            }
            if let Some(e) = r.figlio("altriDati") {
                m.insert("altriDati".into(), c.altri_dati(e));
            }
            Value::Object(m)
        }
        "5021" => crate::stato_civile::converti_5021(&mut c, r, t, m),
        other => crate::altre::converti(&mut c, other, r, t, m)?,
    };
    if consentiti.contains(&"datiDelProcedimento") {
        if let Value::Object(o) = &mut v {
            c.procedimento(r, o);
        }
    }
    Some(if c.anomalie.is_empty() {
        Ok(Convertita {
            corpo: v,
            avvertimenti: c.avvertimenti,
        })
    } else {
        Err(c.anomalie)
    })
}

/// Converts the parents of `Richiesta3001` into one search each (`paternita`,
/// `maternita`): by national id, tax code or generalities and birth date.
pub fn converti_genitori(r: &Elemento) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for nome in ["paternita", "maternita"] {
        let Some(g) = r.a(&format!("{nome}/generalita")) else {
            continue;
        };
        let mut criteri = Map::new();
        let mut dati = Map::new();
        if let Some(id) = testo(g, "idSchedaSoggettoANPR") {
            criteri.insert("idANPR".into(), json!(id));
        } else if let Some(cf) = g.testo_a("codiceFiscale/codFiscale") {
            criteri.insert("codiceFiscale".into(), json!(cf));
        } else {
            put(&mut criteri, "cognome", testo(g, "cognome"));
            put(&mut criteri, "nome", testo(g, "nome"));
            put(
                &mut criteri,
                "sesso",
                testo(g, "sesso").map(|s| s.to_ascii_uppercase()),
            );
            if let Some(d) = g.testo_di("dataNascita") {
                dati.insert("dataEvento".into(), json!(data_xsd(d)));
            }
        }
        let mut m = Map::new();
        m.insert("criteriRicerca".into(), Value::Object(criteri));
        if !dati.is_empty() {
            m.insert("datiNascita".into(), Value::Object(dati));
        }
        out.push((nome, Value::Object(m)));
    }
    out
}

/// A subject consultation (`Richiesta3002`, `Richiesta3006`) converted: the search the
/// REST edge accepts (`POST /api/v1/soggetti/ricerca`), the data groups to answer
/// with, and whether the whole family or cohabitation of each subject is asked for
/// (`schedaAnagraficaRichiesta` 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Consultazione {
    pub corpo: Value,
    pub gruppi: crate::scheda::Gruppi,
    pub famiglia: bool,
}

/// Converts a subject consultation (`Richiesta3002`, `Richiesta3006`).
///
/// Criteria: CF, national id (`idSchedaSoggettoANPR`/`idANPR`), municipal id, surname,
/// name and sex with `datiNascita/dataEvento`; `soggettoAIRE` S/N restricts the search
/// to AIRE or resident subjects. `datiRichiesta`: `dataRiferimentoRichiesta` (the
/// record as at that date), `schedaAnagraficaRichiesta` (1 the individual record, 2 the
/// records of the subject's whole family or cohabitation), `datiAnagraficiRichiesti`
/// (the groups of table "Dati richiesti"; none or 1 = all), `comuneResidenza`, or
/// `ricercaNazionale` 0 (only the sender's municipality).
pub fn converti_ricerca(r: &Elemento, t: &Testata) -> Result<Consultazione, Vec<Anomalia>> {
    const GESTITI: &[&str] = &[
        "testataRichiesta",
        "criteriRicerca",
        "datiNascita",
        "datiRichiesta",
    ];
    const CRITERI: &[&str] = &[
        "codiceFiscale",
        "cognome",
        "nome",
        "sesso",
        "soggettoAIRE",
        "idSchedaSoggettoANPR",
        "idANPR",
        "idSchedaSoggettoComune",
    ];
    let mut anomalie = Vec::new();
    let non_gestito = |campo: String| {
        Anomalia::errore(
            CODICE_DATO_NON_GESTITO,
            "Criterio non gestito in questa versione",
        )
        .campo(campo)
    };
    for f in &r.figli {
        if !GESTITI.contains(&f.nome.as_str()) {
            anomalie.push(non_gestito(format!("{}/{}", r.nome, f.nome)));
        }
    }
    let mut criteri = Map::new();
    let mut posizioni = None;
    if let Some(c) = r.figlio("criteriRicerca") {
        for f in &c.figli {
            if !CRITERI.contains(&f.nome.as_str()) {
                anomalie.push(
                    non_gestito(format!("{}/criteriRicerca/{}", r.nome, f.nome))
                        .atteso(format!("uno di: {}", CRITERI.join(", "))),
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
        put(
            &mut criteri,
            "idANPR",
            testo(c, "idSchedaSoggettoANPR").or_else(|| testo(c, "idANPR")),
        );
        put(
            &mut criteri,
            "idSchedaSoggettoComune",
            c.testo_a("idSchedaSoggettoComune/idSchedaSoggetto")
                .map(str::to_owned),
        );
        posizioni = match c
            .testo_di("soggettoAIRE")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("S") => Some(vec!["aire"]),
            Some("N") => Some(vec!["residente"]),
            _ => None,
        };
    }
    let mut m = Map::new();
    m.insert("criteriRicerca".into(), Value::Object(criteri));
    if let Some(d) = r.figlio("datiNascita") {
        for f in &d.figli {
            if f.nome != "dataEvento" {
                anomalie.push(non_gestito(format!("{}/datiNascita/{}", r.nome, f.nome)));
            }
        }
        if let Some(e) = d.testo_di("dataEvento") {
            m.insert("datiNascita".into(), json!({"dataEvento": data_xsd(e)}));
        }
    }
    let mut gruppi = Vec::new();
    let mut famiglia = false;
    let mut dm = Map::new();
    if let Some(d) = r.figlio("datiRichiesta") {
        let p = format!("{}/datiRichiesta", r.nome);
        for f in &d.figli {
            if f.nome == "parametriANPR" {
                anomalie.push(non_gestito(format!("{p}/parametriANPR")));
            }
        }
        dati_richiesti(d, &p, &mut famiglia, &mut gruppi, &mut anomalie);
        put(
            &mut dm,
            "dataRiferimentoRichiesta",
            d.testo_di("dataRiferimentoRichiesta").map(data_xsd),
        );
        let comune = d
            .testo_a("comuneResidenza/codiceIstat")
            .map(str::to_owned)
            .or_else(|| {
                (d.testo_di("ricercaNazionale") == Some("0")).then(|| t.cod_mittente.clone())
            });
        put(&mut dm, "comuneResidenza", comune);
    }
    let g = crate::scheda::Gruppi::da_codici(gruppi);
    if let Some(sezioni) = g.sezioni(famiglia || g.serve_famiglia()) {
        dm.insert("sezioni".into(), json!(sezioni));
    }
    put(&mut dm, "posizioni", posizioni);
    m.insert("datiRichiesta".into(), Value::Object(dm));
    if anomalie.is_empty() {
        Ok(Consultazione {
            corpo: Value::Object(m),
            gruppi: g,
            famiglia,
        })
    } else {
        Err(anomalie)
    }
}

/// `schedaAnagraficaRichiesta` (1 individual, 2 family: sets `famiglia`) and the
/// `datiAnagraficiRichiesti` codes (1–30, into `gruppi`) of a consultation's
/// `datiRichiesta` at path `p` (3002/3006 and E002); any other value is refused with
/// `CODICE_VALORE_NON_VALIDO` naming its element.
pub(crate) fn dati_richiesti(
    d: &Elemento,
    p: &str,
    famiglia: &mut bool,
    gruppi: &mut Vec<u8>,
    anomalie: &mut Vec<Anomalia>,
) {
    match d.testo_di("schedaAnagraficaRichiesta") {
        Some("1") | None => {}
        Some("2") => *famiglia = true,
        Some(altro) => anomalie.push(
            Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Scheda anagrafica richiesta non prevista",
            )
            .campo(format!("{p}/schedaAnagraficaRichiesta"))
            .valore(altro)
            .atteso("1 (scheda individuale) o 2 (scheda di famiglia o convivenza)"),
        ),
    }
    for (i, e) in d.figli_nominati("datiAnagraficiRichiesti").enumerate() {
        match e.testo.trim().parse::<u8>() {
            Ok(c @ 1..=30) => gruppi.push(c),
            _ => anomalie.push(
                Anomalia::errore(
                    anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                    "Dato richiesto non presente nella tabella Dati richiesti",
                )
                .campo(format!("{p}/datiAnagraficiRichiesti[{}]", i + 1))
                .valore(e.testo.trim())
                .atteso("un codice da 1 a 30"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn richiesta(xml: &str) -> Elemento {
        parse(xml.as_bytes()).unwrap()
    }

    const TESTATA: &str = "<testataRichiesta><idOperazioneComune>7</idOperazioneComune>\
        <codMittente>058091</codMittente><codDestinatario>999999</codDestinatario>\
        <operazioneRichiesta>1002</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta>\
        <tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio><dataDecorrenza>2020-03-01Z</dataDecorrenza>\
        </testataRichiesta>";

    #[test]
    fn header_rules() {
        let r = richiesta(&format!("<Richiesta1002>{TESTATA}</Richiesta1002>"));
        let t = testata(&r);
        assert_eq!(t.data_decorrenza.as_deref(), Some("2020-03-01"));
        assert_eq!(ambiente(&t), Ok(Ambiente::Test));
        assert!(controlla_testata(&t, "1002").is_empty());
        let codici: Vec<_> = controlla_testata(
            &Testata {
                cod_destinatario: "1".into(),
                ..t.clone()
            },
            "1001",
        )
        .into_iter()
        .map(|a| a.codice)
        .collect();
        assert_eq!(codici, [CODICE_DESTINATARIO, CODICE_OPERAZIONE_RICHIESTA]);
        let t = Testata {
            tipo_invio: "X".into(),
            ..t
        };
        assert_eq!(ambiente(&t).unwrap_err().codice, CODICE_TIPO_INVIO);
    }

    #[test]
    fn a_1002_becomes_the_rest_document_with_cadastral_and_istat_codes() {
        let r = richiesta(&format!(
            "<Richiesta1002>{TESTATA}<motivoIscrizione><idMotivoIscrizione>4</idMotivoIscrizione></motivoIscrizione>\
             <generalita1002><generalita><cognome>Rossi</cognome><nome>Anna</nome><sesso>f</sesso>\
             <dataNascita>1980-01-01</dataNascita><luogoNascita><comune><nomeComune>ROMA</nomeComune>\
             <codiceIstat>058091</codiceIstat><siglaProvinciaIstat>RM</siglaProvinciaIstat></comune></luogoNascita>\
             </generalita></generalita1002>\
             <cittadinanza><descrizioneStato>ITALIA</descrizioneStato><codiceStato>100</codiceStato></cittadinanza>\
             <provenienza><localita><descrizioneStato>USA</descrizioneStato><codiceStato>404</codiceStato></localita></provenienza>\
             <residenza><tipoIndirizzo>1</tipoIndirizzo><indirizzo><cap>00184</cap><comune><nomeComune>ROMA</nomeComune>\
             <siglaProvinciaIstat>RM</siglaProvinciaIstat></comune><toponimo><specie>VIA</specie>\
             <denominazioneToponimo>Nazionale</denominazioneToponimo></toponimo><numeroCivico><numero>10</numero></numeroCivico>\
             </indirizzo></residenza><famiglia><famiglia><tipoScheda>1</tipoScheda></famiglia><legameSoggetto>\
             <dataDecorrenza>2020-03-01</dataDecorrenza><codiceLegame>1</codiceLegame></legameSoggetto></famiglia>\
             <datiControllo><attribuzioneFamiglia>1</attribuzioneFamiglia></datiControllo></Richiesta1002>"
        ));
        let t = testata(&r);
        let v = converti(anpr_tables::tables(), "1002", &r, &t)
            .unwrap()
            .unwrap()
            .corpo;
        assert_eq!(v["idOperazioneComune"], "7");
        assert_eq!(v["dataDecorrenza"], "2020-03-01");
        assert_eq!(v["generalita"]["luogoNascita"], "H501");
        assert_eq!(v["generalita"]["sesso"], "F");
        assert_eq!(v["cittadinanza"][0]["codiceStato"], "100");
        assert_eq!(v["provenienza"]["codiceStato"], "404");
        assert_eq!(
            v["residenza"]["comune"], "058091",
            "found by name and province"
        );
        assert_eq!(
            v["residenza"]["toponimo"]["denominazioneToponimo"],
            "Nazionale"
        );
        assert_eq!(v["famiglia"]["codiceLegame"], "1");
    }

    #[test]
    fn unknown_places_and_unhandled_elements_are_refused_with_their_path() {
        let r = richiesta(&format!(
            "<Richiesta1002>{TESTATA}<generalita1002><generalita><cognome>R</cognome><nome>A</nome>\
             <dataNascita>1980-01-01</dataNascita><luogoNascita><localita><descrizioneStato>X</descrizioneStato>\
             <codiceStato>999</codiceStato></localita></luogoNascita></generalita></generalita1002>\
             <matrimonio/></Richiesta1002>"
        ));
        let t = testata(&r);
        let errs = converti(anpr_tables::tables(), "1002", &r, &t)
            .unwrap()
            .unwrap_err();
        let found: Vec<_> = errs
            .iter()
            .map(|a| (a.codice.as_str(), a.campo.clone().unwrap_or_default()))
            .collect();
        assert!(
            found.contains(&(CODICE_DATO_NON_GESTITO, "Richiesta1002/matrimonio".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&(
                CODICE_LUOGO_SCONOSCIUTO,
                "generalita1002/generalita/luogoNascita/localita/codiceStato".into()
            )),
            "{found:?}"
        );
        assert!(converti(anpr_tables::tables(), "2012", &r, &t).is_none());
    }
}

#[cfg(test)]
mod elenco {
    /// The services this release converts, with their family.
    const SERVITI: &[(&str, &str)] = &[
        ("1000", "1001"),
        ("1000", "1002"),
        ("1000", "1010"),
        ("1000", "1013"),
        ("1000", "1014"),
        ("2000", "2001"),
        ("2000", "2003"),
        ("2000", "2009"),
        ("2000", "2011"),
        ("5000", "5001"),
        ("5000", "5005"),
        ("5000", "5008"),
        ("5000", "5010"),
        ("5000", "5012"),
        ("5000", "5013"),
        ("5000", "5014"),
        ("5000", "5021"),
        ("A000", "A001"),
        ("A000", "A002"),
        ("A000", "A006"),
    ];

    /// docs/SOAP.md publishes, between its `ev105` markers, one row per service with
    /// the request children refused with EV105: it must be exactly the code's list.
    #[test]
    fn the_published_ev105_list_is_the_code_s() {
        let doc = include_str!("../../../docs/SOAP.md");
        let start = doc.find("<!-- ev105:start -->").expect("start marker");
        let end = doc.find("<!-- ev105:end -->").expect("end marker");
        let mut pubblicati = std::collections::BTreeMap::new();
        for riga in doc[start..end].lines().filter(|l| l.starts_with("| ")) {
            let celle: Vec<&str> = riga.split('|').map(str::trim).collect();
            if celle.len() < 3 || celle[1] == "service" || celle[1].starts_with('-') {
                continue;
            }
            let elementi: Vec<String> = celle[2]
                .split(',')
                .map(|e| e.trim().trim_matches('`').to_owned())
                .filter(|e| !e.is_empty())
                .collect();
            pubblicati.insert(celle[1].to_owned(), elementi);
        }
        for (famiglia, codice) in SERVITI {
            assert!(super::supportato(codice), "{codice}");
            let attesi: Vec<String> = super::elementi_non_gestiti(famiglia, codice)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let doc = pubblicati.remove(*codice).unwrap_or_default();
            assert_eq!(doc, attesi, "docs/SOAP.md EV105 row of {codice}");
        }
        assert!(
            pubblicati.is_empty(),
            "rows of unserved services: {pubblicati:?}"
        );
    }

    /// docs/SOAP.md publishes, between its `ev100` markers, the operations of every
    /// endpoint that answer EV100: exactly those of the WSDLs this release does not
    /// serve.
    #[test]
    fn the_published_ev100_list_is_the_code_s() {
        let doc = include_str!("../../../docs/SOAP.md");
        let start = doc.find("<!-- ev100:start -->").expect("start marker");
        let end = doc.find("<!-- ev100:end -->").expect("end marker");
        let mut pubblicati = std::collections::BTreeMap::new();
        for riga in doc[start..end].lines().filter(|l| l.starts_with("| `")) {
            let celle: Vec<&str> = riga.split('|').map(str::trim).collect();
            let operazioni: Vec<String> = celle[2]
                .split(',')
                .map(|e| e.trim().trim_matches('`').to_owned())
                .collect();
            pubblicati.insert(celle[1].trim_matches('`').to_owned(), operazioni);
        }
        let mut attesi = std::collections::BTreeMap::new();
        for s in crate::catalogo::servizi() {
            let v: Vec<String> = s
                .operazioni
                .iter()
                .filter(|o| !super::supportato(&o.codice))
                .map(|o| o.codice.clone())
                .collect();
            if !v.is_empty() {
                attesi.insert(s.nome.clone(), v);
            }
        }
        assert_eq!(pubblicati, attesi, "docs/SOAP.md EV100 table");
        // The README lists the same operations in one sentence.
        let readme = include_str!("../../../README.md");
        let start = readme.find("<!-- ev100:start -->").expect("start marker");
        let end = readme.find("<!-- ev100:end -->").expect("end marker");
        let mut nel_readme: Vec<String> = readme[start + "<!-- ev100:start -->".len()..end]
            .split(',')
            .map(|c| c.trim().to_owned())
            .collect();
        nel_readme.sort();
        let mut tutti: Vec<String> = attesi.into_values().flatten().collect();
        tutti.sort();
        assert_eq!(nel_readme, tutti, "README.md EV100 list");
    }
}
