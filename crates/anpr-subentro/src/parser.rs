//! Streaming reader of the subentro bulk file (`subentro.xsd`).
//!
//! The file is read event by event (quick-xml) and handed out one record at a time, so
//! memory does not depend on the file's size. Safety: a DOCTYPE is refused (so no DTD,
//! no external or expanded entity can exist), element nesting and text lengths are
//! bounded, and only the five predefined entities and character references are
//! decoded.
//!
//! Structure is checked against the XSD as it streams: the root, the order of the
//! top-level sections, the children allowed in a `soggetto`, in its
//! `generalitaSubIscr` and in a family record, the mandatory elements, and the lexical
//! form of every value read (dates, numbers, sex, codes). A violation stops the reading
//! with the element path (`/subentro/generalitaSoggetti/soggetto[12]/generalitaSubIscr/sesso`).
//! Content of optional sub-structures the onboarding does not use (e.g. `matrimonio`,
//! `cartaIdentita`) is skipped, not validated: `xmllint --schema` stays the reference
//! for those.

use std::io::BufRead;

use quick_xml::events::Event;
use quick_xml::Reader;

/// The namespace of the root element.
pub const NAMESPACE: &str = "http://sogei.it/ANPR/subentro";

/// Deepest nesting accepted (the XSD needs about 8).
const MAX_PROFONDITA: usize = 24;
/// Longest text value accepted (the longest XSD type is a few hundred characters).
const MAX_TESTO: usize = 4096;

/// A counter group (`datiFornitura` / `datiInvio`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totali {
    pub soggetti: u64,
    pub italiani: u64,
    pub non_italiani: u64,
    pub femmine: u64,
    pub maschi: u64,
    pub famiglie: u64,
    pub convivenze: u64,
}

/// The declared totals at the top of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Testata {
    pub totale_invii: u64,
    pub fornitura: Totali,
    pub progressivo_invio: Option<u64>,
    pub invio: Option<Totali>,
}

/// A place of birth as written.
#[derive(Debug, Clone, Default)]
pub struct LuogoLetto {
    pub comune_istat: Option<String>,
    pub nome_comune: Option<String>,
    pub stato_codice: Option<String>,
    pub stato_descrizione: Option<String>,
    pub localita: Option<String>,
    pub eccezionale: Option<String>,
}

/// A residence as written.
#[derive(Debug, Clone, Default)]
pub struct ResidenzaLetta {
    pub tipo_indirizzo: Option<String>,
    pub cap: Option<String>,
    pub comune_istat: Option<String>,
    pub frazione: Option<String>,
    pub specie: Option<String>,
    pub toponimo: Option<String>,
    pub numero: Option<String>,
    pub estero_codice_stato: Option<String>,
    pub estero_localita: Option<String>,
    pub estero_indirizzo: Option<String>,
    pub estero_cap: Option<String>,
    pub estero_provincia: Option<String>,
    pub consolato: Option<String>,
    pub presso: Option<String>,
    pub data_decorrenza: Option<String>,
}

/// Membership of a family or cohabitation as written.
#[derive(Debug, Clone, Default)]
pub struct LegameLetto {
    pub id: String,
    pub convivenza: bool,
    pub codice: String,
    pub decorrenza: Option<String>,
}

/// A `soggetto` element.
#[derive(Debug, Clone, Default)]
pub struct SoggettoLetto {
    /// Position in the file, from 1.
    pub indice: u64,
    pub codice_fiscale: Option<String>,
    pub cognome: Option<String>,
    pub nome: Option<String>,
    pub sesso: String,
    pub data_nascita: String,
    pub senza_cognome: bool,
    pub senza_nome: bool,
    pub senza_giorno: bool,
    pub senza_giorno_mese: bool,
    pub luogo: LuogoLetto,
    pub aire: bool,
    pub id_comunale: Option<String>,
    pub data_prima_iscrizione: Option<String>,
    pub stato_civile: Option<String>,
    pub data_ultimo_aggiornamento: Option<String>,
    pub motivo_iscrizione: Option<String>,
    pub cittadinanza: Option<String>,
    pub residenza: Option<ResidenzaLetta>,
    pub legame: Option<LegameLetto>,
}

/// A `famiglia` or `convivenza` record.
#[derive(Debug, Clone, Default)]
pub struct FamigliaLetta {
    pub indice: u64,
    pub convivenza: bool,
    pub id: Option<String>,
    pub aire: bool,
    pub data_origine: Option<String>,
    pub motivo_costituzione: Option<String>,
    pub denominazione: Option<String>,
    pub specie: Option<String>,
}

/// One item of the file.
#[derive(Debug, Clone)]
pub enum Elemento {
    Testata(Testata),
    Soggetto(Box<SoggettoLetto>),
    Famiglia(FamigliaLetta),
}

/// Why the file is not a valid subentro file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{percorso}: {messaggio}")]
pub struct ErroreStruttura {
    /// Element path, e.g. `/subentro/generalitaSoggetti/soggetto[3]/generalitaSubIscr/sesso`.
    pub percorso: String,
    pub messaggio: String,
    pub valore: Option<String>,
}

/// Children a `soggetto` may have (`tipoGeneralitaSoggetto`), in XSD order.
const FIGLI_SOGGETTO: &[&str] = &[
    "generalitaSubIscr",
    "statoCivile",
    "attributiSoggetto",
    "dataUltimoAggiornamento",
    "motivoIscrizioneAPR",
    "attoNascita",
    "cittadinanza",
    "paternita",
    "maternita",
    "residenza",
    "altraLingua",
    "famiglia",
    "convivenza",
    "matrimonio",
    "vedovanza",
    "separazioneAnnullamentoCessazioneMatrimonio",
    "cartaIdentita",
    "permessoSoggiorno",
    "listaElettorale",
    "listaLeva",
    "censimento",
    "autoveicoli",
    "altriDati",
    "unioneCivile",
    "convivenzaDiFatto",
    "altraCittadinanza",
];

/// Children of `generalitaSubIscr` (`tipoGeneralitaSubIscr`), in XSD order.
const FIGLI_GENERALITA: &[&str] = &[
    "codiceFiscale",
    "cognome",
    "senzaCognome",
    "nome",
    "senzaNome",
    "sesso",
    "dataNascita",
    "senzaGiorno",
    "senzaGiornoMese",
    "luogoNascita",
    "soggettoAIRE",
    "idSchedaSoggettoComune",
    "idSchedaSoggettoANPR",
    "dataPrimaIscrizioneComune",
];

/// Children of a family/cohabitation record (`tipoFamiglieSub`).
const FIGLI_FAMIGLIA: &[&str] = &[
    "idFamigliaConvivenzaComune",
    "idFamigliaConvivenzaANPR",
    "famigliaAire",
    "dataOrigineFamigliaConvivenza",
    "motivoCostituzione",
    "denominazioneConvivenza",
    "specieConvivenza",
    "tipoMovimentazione",
    "presenzaFamigliaCoabitante",
    "tipoScheda",
    "tipoTutoreIntestatario",
];

const CONTATORI: &[&str] = &[
    "numeroTotaleSchedeSoggetto",
    "numeroTotaleCittadiniItaliani",
    "numeroTotaleIscrittiNonItaliani",
    "numeroTotalePersoneSessoFemminile",
    "numeroTotalePersoneSessoMaschile",
    "numeroTotaleSchedeFamiglia",
    "numeroTotaleSchedeConvivenza",
];

const CONTATORI_INVIO: &[&str] = &[
    "numeroSchedeSoggettoInvio",
    "numeroCittadiniItalianiInvio",
    "numeroIscrittiNonItalianiInvio",
    "numeroPersoneSessoFemminileInvio",
    "numeroPersoneSessoMaschileInvio",
    "numeroTotaleSchedeFamigliaInvio",
    "numeroTotaleSchedeConvivenzaInvio",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fase {
    Inizio,
    Radice,
    Fornitura,
    Invio,
    Soggetti,
    Famiglie,
    Convivenze,
    Fine,
}

/// The streaming reader. Call [`LettoreSubentro::prossimo`] until it returns `None`.
#[derive(Debug)]
pub struct LettoreSubentro<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    /// Local names of the open elements.
    pila: Vec<String>,
    /// Names popped from `pila`, reused for the next elements (no allocation per tag).
    riserva: Vec<String>,
    fase: Fase,
    testata: Testata,
    testata_data: bool,
    soggetto: Option<SoggettoLetto>,
    famiglia: Option<FamigliaLetta>,
    n_soggetti: u64,
    n_famiglie: u64,
    n_convivenze: u64,
    /// Position of the last direct child seen in the current record (XSD order).
    ultimo_figlio: usize,
    testo: String,
    /// Bytes read so far (for progress).
    pub letti: u64,
}

impl<R: BufRead> LettoreSubentro<R> {
    pub fn new(input: R) -> Self {
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = true;
        config.check_end_names = true;
        Self {
            reader,
            buf: Vec::with_capacity(4096),
            pila: Vec::new(),
            riserva: Vec::new(),
            fase: Fase::Inizio,
            testata: Testata::default(),
            testata_data: false,
            soggetto: None,
            famiglia: None,
            n_soggetti: 0,
            n_famiglie: 0,
            n_convivenze: 0,
            ultimo_figlio: 0,
            testo: String::new(),
            letti: 0,
        }
    }

    fn percorso(&self) -> String {
        let mut p = String::new();
        for (i, nome) in self.pila.iter().enumerate() {
            p.push('/');
            p.push_str(nome);
            if i == 2 {
                let n = match nome.as_str() {
                    "soggetto" => Some(self.n_soggetti),
                    "famiglia" => Some(self.n_famiglie),
                    "convivenza" => Some(self.n_convivenze),
                    _ => None,
                };
                if let Some(n) = n {
                    p.push_str(&format!("[{n}]"));
                }
            }
        }
        p
    }

    fn errore(&self, messaggio: impl Into<String>, valore: Option<&str>) -> ErroreStruttura {
        ErroreStruttura {
            percorso: self.percorso(),
            messaggio: messaggio.into(),
            valore: valore.map(str::to_owned),
        }
    }

    /// The next record, `None` at the end of a valid file.
    pub fn prossimo(&mut self) -> Option<Result<Elemento, ErroreStruttura>> {
        loop {
            match self.passo() {
                Ok(Some(e)) => return Some(Ok(e)),
                Ok(None) if self.fase == Fase::Fine => return None,
                Ok(None) => {}
                Err(e) => {
                    self.fase = Fase::Fine;
                    return Some(Err(e));
                }
            }
        }
    }

    fn passo(&mut self) -> Result<Option<Elemento>, ErroreStruttura> {
        // The buffer is taken out so the event (which borrows it) and `self` can be
        // used together; it is put back for the next read.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let esito = match self.reader.read_event_into(&mut buf) {
            Ok(evento) => {
                self.letti = self.reader.buffer_position();
                self.evento(evento)
            }
            Err(e) => Err(ErroreStruttura {
                percorso: self.percorso(),
                messaggio: format!("XML non ben formato: {e}"),
                valore: None,
            }),
        };
        self.buf = buf;
        esito
    }

    fn evento(&mut self, evento: Event<'_>) -> Result<Option<Elemento>, ErroreStruttura> {
        match evento {
            Event::DocType(_) => Err(self.errore("DTD non ammessa nel file di subentro", None)),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => Ok(None),
            Event::Eof => {
                if self.fase == Fase::Fine {
                    Ok(None)
                } else {
                    Err(self.errore("fine del file prima della chiusura di subentro", None))
                }
            }
            Event::Start(e) => {
                let mut nome = self.riserva.pop().unwrap_or_default();
                nome.clear();
                nome.push_str(&String::from_utf8_lossy(e.local_name().as_ref()));
                if self.pila.is_empty() {
                    if nome != "subentro" || self.fase != Fase::Inizio {
                        self.pila.push(nome);
                        return Err(self.errore("elemento radice atteso: subentro", None));
                    }
                    let ns_ok = e.attributes().flatten().any(|a| {
                        a.key.as_ref().starts_with(b"xmlns")
                            && a.value.as_ref() == NAMESPACE.as_bytes()
                    });
                    self.pila.push(nome);
                    if !ns_ok {
                        return Err(self.errore(format!("namespace atteso {NAMESPACE}"), None));
                    }
                    self.fase = Fase::Radice;
                    return Ok(None);
                }
                self.pila.push(nome);
                if self.pila.len() > MAX_PROFONDITA {
                    return Err(self.errore("annidamento eccessivo", None));
                }
                self.testo.clear();
                self.apri()?;
                // The header is complete when the subjects start: hand it out once.
                if self.fase == Fase::Soggetti && !self.testata_data {
                    self.testata_data = true;
                    return Ok(Some(Elemento::Testata(self.testata.clone())));
                }
                Ok(None)
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| self.errore(format!("testo non UTF-8: {e}"), None))?;
                self.aggiungi_testo(&s)
            }
            Event::GeneralRef(r) => {
                let nome = r
                    .decode()
                    .map_err(|e| self.errore(format!("riferimento non valido: {e}"), None))?;
                let c = match &*nome {
                    "amp" => '&'.to_string(),
                    "lt" => '<'.to_string(),
                    "gt" => '>'.to_string(),
                    "apos" => '\''.to_string(),
                    "quot" => '"'.to_string(),
                    _ => match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => return Err(self.errore("entità non ammessa", Some(&nome))),
                    },
                };
                self.aggiungi_testo(&c)
            }
            Event::CData(t) => {
                let s = String::from_utf8_lossy(&t).into_owned();
                self.aggiungi_testo(&s)
            }
            Event::End(_) => {
                let testo = std::mem::take(&mut self.testo);
                let out = self.chiudi(testo.trim())?;
                if let Some(nome) = self.pila.pop() {
                    self.riserva.push(nome);
                }
                if self.pila.is_empty() {
                    self.fase = Fase::Fine;
                }
                Ok(out)
            }
            Event::Empty(_) => Ok(None),
        }
    }

    fn aggiungi_testo(&mut self, s: &str) -> Result<Option<Elemento>, ErroreStruttura> {
        if self.testo.len() + s.len() > MAX_TESTO {
            return Err(self.errore("testo troppo lungo", None));
        }
        self.testo.push_str(s);
        Ok(None)
    }

    /// Checks an opening element against the structure.
    fn apri(&mut self) -> Result<(), ErroreStruttura> {
        let d = self.pila.len();
        let nome = self.pila[d - 1].as_str();
        match d {
            2 => {
                let fase = match nome {
                    "datiFornitura" => Fase::Fornitura,
                    "datiInvio" => Fase::Invio,
                    "generalitaSoggetti" => Fase::Soggetti,
                    "famiglie" => Fase::Famiglie,
                    "convivenze" => Fase::Convivenze,
                    _ => return Err(self.errore("elemento non previsto dallo schema", None)),
                };
                if fase <= self.fase {
                    return Err(
                        self.errore("elemento fuori dall'ordine dello schema o ripetuto", None)
                    );
                }
                if fase > Fase::Fornitura && self.fase < Fase::Fornitura {
                    return Err(self.errore("datiFornitura deve precedere", None));
                }
                if fase > Fase::Soggetti && self.fase < Fase::Soggetti {
                    return Err(self.errore("generalitaSoggetti deve precedere", None));
                }
                if fase == Fase::Invio {
                    self.testata.invio = Some(Totali::default());
                }
                self.fase = fase;
            }
            3 => {
                let atteso = match self.fase {
                    Fase::Soggetti => "soggetto",
                    Fase::Famiglie => "famiglia",
                    Fase::Convivenze => "convivenza",
                    _ => return Ok(()),
                };
                if nome != atteso {
                    return Err(self.errore(format!("atteso {atteso}"), None));
                }
                self.ultimo_figlio = 0;
                match self.fase {
                    Fase::Soggetti => {
                        self.n_soggetti += 1;
                        self.soggetto = Some(SoggettoLetto {
                            indice: self.n_soggetti,
                            ..SoggettoLetto::default()
                        });
                    }
                    Fase::Famiglie | Fase::Convivenze => {
                        let convivenza = self.fase == Fase::Convivenze;
                        if convivenza {
                            self.n_convivenze += 1;
                        } else {
                            self.n_famiglie += 1;
                        }
                        self.famiglia = Some(FamigliaLetta {
                            indice: if convivenza {
                                self.n_convivenze
                            } else {
                                self.n_famiglie
                            },
                            convivenza,
                            ..FamigliaLetta::default()
                        });
                    }
                    _ => {}
                }
            }
            4 => {
                let (lista, ultimo) = match self.fase {
                    Fase::Soggetti => (FIGLI_SOGGETTO, self.ultimo_figlio),
                    Fase::Famiglie | Fase::Convivenze => (FIGLI_FAMIGLIA, self.ultimo_figlio),
                    _ => return Ok(()),
                };
                let pos = 1 + lista
                    .iter()
                    .position(|n| *n == nome)
                    .ok_or_else(|| self.errore("elemento non previsto dallo schema", None))?;
                // altraLingua and altraCittadinanza repeat; everything else appears at
                // most once, in XSD order. Positions count from 1; 0 = nothing seen yet.
                let ripetibile = matches!(nome, "altraLingua" | "altraCittadinanza");
                if pos < ultimo || (pos == ultimo && !ripetibile) {
                    return Err(
                        self.errore("elemento fuori dall'ordine dello schema o ripetuto", None)
                    );
                }
                if self.fase == Fase::Soggetti && ultimo == 0 && pos != 1 {
                    return Err(self.errore(
                        "generalitaSubIscr deve essere il primo elemento del soggetto",
                        None,
                    ));
                }
                self.ultimo_figlio = pos;
                if nome == "residenza" {
                    if let Some(s) = self.soggetto.as_mut() {
                        s.residenza = Some(ResidenzaLetta::default());
                    }
                }
            }
            5 if self.fase == Fase::Soggetti
                && self.pila[3] == "generalitaSubIscr"
                && !FIGLI_GENERALITA.contains(&nome) =>
            {
                return Err(self.errore("elemento non previsto dallo schema", None));
            }
            _ => {}
        }
        Ok(())
    }

    /// Handles a closing element with its text.
    fn chiudi(&mut self, testo: &str) -> Result<Option<Elemento>, ErroreStruttura> {
        let d = self.pila.len();
        match (self.fase, d) {
            (Fase::Fornitura | Fase::Invio, 3) => {
                self.contatore(testo)?;
                Ok(None)
            }
            (Fase::Fornitura, 2) => Ok(None),
            (Fase::Invio, 2) => Ok(None),
            (Fase::Soggetti, 2) => {
                if self.n_soggetti == 0 {
                    return Err(self.errore("almeno un soggetto richiesto", None));
                }
                Ok(None)
            }
            (Fase::Soggetti, 3) => {
                let s = self.soggetto.take().unwrap_or_default();
                self.verifica_soggetto(&s)?;
                Ok(Some(Elemento::Soggetto(Box::new(s))))
            }
            (Fase::Famiglie | Fase::Convivenze, 3) => {
                let f = self.famiglia.take().unwrap_or_default();
                if self.ultimo_figlio
                    <= FIGLI_FAMIGLIA
                        .iter()
                        .position(|n| *n == "tipoScheda")
                        .unwrap_or(0)
                {
                    return Err(self.errore("manca tipoScheda", None));
                }
                Ok(Some(Elemento::Famiglia(f)))
            }
            (Fase::Soggetti, _) if d >= 4 => {
                self.campo_soggetto(testo)?;
                Ok(None)
            }
            (Fase::Famiglie | Fase::Convivenze, _) if d >= 4 => {
                self.campo_famiglia(testo)?;
                Ok(None)
            }
            (
                Fase::Radice
                | Fase::Fornitura
                | Fase::Invio
                | Fase::Soggetti
                | Fase::Famiglie
                | Fase::Convivenze,
                1,
            ) => {
                if self.fase < Fase::Soggetti {
                    return Err(self.errore("generalitaSoggetti mancante", None));
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn numero(&self, testo: &str) -> Result<u64, ErroreStruttura> {
        if testo.is_empty() || testo.len() > 9 || !testo.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.errore("numero atteso (massimo 9 cifre)", Some(testo)));
        }
        testo
            .parse()
            .map_err(|_| self.errore("numero atteso", Some(testo)))
    }

    fn contatore(&mut self, testo: &str) -> Result<(), ErroreStruttura> {
        let nome = self.pila[2].clone();
        let invio = self.fase == Fase::Invio;
        match nome.as_str() {
            "versioneFornitura" => {
                self.numero(testo)?;
            }
            "totaleInvii" => self.testata.totale_invii = self.numero(testo)?,
            "progressivoInvio" => self.testata.progressivo_invio = Some(self.numero(testo)?),
            "dataEstrazione" => {
                data(testo).ok_or_else(|| self.errore("data attesa (AAAA-MM-GG)", Some(testo)))?;
            }
            _ => {
                let lista = if invio { CONTATORI_INVIO } else { CONTATORI };
                let i = lista
                    .iter()
                    .position(|n| *n == nome)
                    .ok_or_else(|| self.errore("elemento non previsto dallo schema", None))?;
                let v = self.numero(testo)?;
                let t = if invio {
                    self.testata.invio.get_or_insert_with(Totali::default)
                } else {
                    &mut self.testata.fornitura
                };
                *[
                    &mut t.soggetti,
                    &mut t.italiani,
                    &mut t.non_italiani,
                    &mut t.femmine,
                    &mut t.maschi,
                    &mut t.famiglie,
                    &mut t.convivenze,
                ][i] = v;
            }
        }
        Ok(())
    }

    fn campo_soggetto(&mut self, testo: &str) -> Result<(), ErroreStruttura> {
        let Some(mut s) = self.soggetto.take() else {
            return Ok(());
        };
        let esito = self.campo_soggetto_in(&mut s, testo);
        self.soggetto = Some(s);
        esito
    }

    fn campo_soggetto_in(&self, s: &mut SoggettoLetto, testo: &str) -> Result<(), ErroreStruttura> {
        let mut nomi = [""; MAX_PROFONDITA];
        let sotto = &self.pila[3..];
        for (n, s) in nomi.iter_mut().zip(sotto) {
            *n = s.as_str();
        }
        let percorso = &nomi[..sotto.len()];
        let valore = || Some(testo.to_owned());
        let errore = |m: &str| self.errore(m, Some(testo));
        match percorso {
            ["generalitaSubIscr", "codiceFiscale", "codFiscale"] => {
                if !(11..=16).contains(&testo.len())
                    || !testo.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(errore("codice fiscale: da 11 a 16 caratteri alfanumerici"));
                }
                s.codice_fiscale = valore();
            }
            ["generalitaSubIscr", "cognome"] => s.cognome = valore(),
            ["generalitaSubIscr", "nome"] => s.nome = valore(),
            ["generalitaSubIscr", "sesso"] => {
                if !matches!(testo, "M" | "F" | "N" | "m" | "f" | "n") {
                    return Err(errore("sesso: M, F o N"));
                }
                s.sesso = testo.to_ascii_uppercase();
            }
            ["generalitaSubIscr", "dataNascita"] => {
                data(testo).ok_or_else(|| errore("data attesa (AAAA-MM-GG)"))?;
                s.data_nascita = testo.to_owned();
            }
            ["generalitaSubIscr", "senzaCognome"] => s.senza_cognome = true,
            ["generalitaSubIscr", "senzaNome"] => s.senza_nome = true,
            ["generalitaSubIscr", "senzaGiorno"] => s.senza_giorno = true,
            ["generalitaSubIscr", "senzaGiornoMese"] => s.senza_giorno_mese = true,
            ["generalitaSubIscr", "luogoNascita", "comune", "codiceIstat"] => {
                s.luogo.comune_istat = valore()
            }
            ["generalitaSubIscr", "luogoNascita", "comune", "nomeComune"] => {
                s.luogo.nome_comune = valore()
            }
            ["generalitaSubIscr", "luogoNascita", "localita", "codiceStato"] => {
                s.luogo.stato_codice = valore()
            }
            ["generalitaSubIscr", "luogoNascita", "localita", "descrizioneStato"] => {
                s.luogo.stato_descrizione = valore()
            }
            ["generalitaSubIscr", "luogoNascita", "localita", "descrizioneLocalita"] => {
                s.luogo.localita = valore()
            }
            ["generalitaSubIscr", "luogoNascita", "luogoEccezionale", ..] if !testo.is_empty() => {
                s.luogo.eccezionale = valore()
            }
            ["generalitaSubIscr", "soggettoAIRE"] => s.aire = matches!(testo, "S" | "s"),
            ["generalitaSubIscr", "idSchedaSoggettoComune", "idSchedaSoggetto"] => {
                s.id_comunale = valore()
            }
            ["generalitaSubIscr", "dataPrimaIscrizioneComune"] => {
                data(testo).ok_or_else(|| errore("data attesa (AAAA-MM-GG)"))?;
                s.data_prima_iscrizione = valore();
            }
            ["generalitaSubIscr"] => {
                let mancante = if s.cognome.is_none() && !s.senza_cognome {
                    Some("cognome")
                } else if s.nome.is_none() && !s.senza_nome {
                    Some("nome")
                } else if s.sesso.is_empty() {
                    Some("sesso")
                } else if s.data_nascita.is_empty() {
                    Some("dataNascita")
                } else {
                    None
                };
                if let Some(m) = mancante {
                    return Err(self.errore(format!("manca {m}"), None));
                }
            }
            ["statoCivile", "statoCivile"] => s.stato_civile = valore(),
            ["dataUltimoAggiornamento"] => {
                data(testo).ok_or_else(|| errore("data attesa (AAAA-MM-GG)"))?;
                s.data_ultimo_aggiornamento = valore();
            }
            ["motivoIscrizioneAPR"] => s.motivo_iscrizione = valore(),
            ["cittadinanza", "codiceStato"] => s.cittadinanza = valore(),
            ["residenza", rest @ ..] => {
                let r = s.residenza.get_or_insert_with(ResidenzaLetta::default);
                match rest {
                    ["tipoIndirizzo"] => r.tipo_indirizzo = valore(),
                    ["indirizzo", "cap"] => r.cap = valore(),
                    ["indirizzo", "comune", "codiceIstat"] => r.comune_istat = valore(),
                    ["indirizzo", "frazione"] => r.frazione = valore(),
                    ["indirizzo", "toponimo", "specie"] => r.specie = valore(),
                    ["indirizzo", "toponimo", "denominazioneToponimo"] => r.toponimo = valore(),
                    ["indirizzo", "numeroCivico", "numero"] => r.numero = valore(),
                    ["localitaEstera", "indirizzoEstero", "localita", "codiceStato"] => {
                        r.estero_codice_stato = valore()
                    }
                    ["localitaEstera", "indirizzoEstero", "localita", "descrizioneLocalita"] => {
                        r.estero_localita = valore()
                    }
                    ["localitaEstera", "indirizzoEstero", "localita", "provinciaContea"] => {
                        r.estero_provincia = valore()
                    }
                    ["localitaEstera", "indirizzoEstero", "cap"] => r.estero_cap = valore(),
                    ["localitaEstera", "indirizzoEstero", "toponimo", "denominazione"] => {
                        r.estero_indirizzo = valore()
                    }
                    ["localitaEstera", "consolato", "codiceConsolato"] => r.consolato = valore(),
                    ["presso"] => r.presso = valore(),
                    ["dataDecorrenzaResidenza"] => {
                        data(testo)
                            .ok_or_else(|| self.errore("data attesa (AAAA-MM-GG)", Some(testo)))?;
                        r.data_decorrenza = valore();
                    }
                    _ => {}
                }
            }
            [tag @ ("famiglia" | "convivenza"), rest @ ..] => {
                let convivenza = *tag == "convivenza";
                let l = s.legame.get_or_insert_with(|| LegameLetto {
                    convivenza,
                    ..LegameLetto::default()
                });
                match rest {
                    ["idFamConvComune"] => l.id = testo.to_owned(),
                    ["legameSoggetto", "codiceLegame"] => {
                        if testo.is_empty()
                            || testo.len() > 2
                            || !testo.bytes().all(|b| b.is_ascii_digit())
                        {
                            return Err(self.errore(
                                "codiceLegame: numero di al massimo 2 cifre",
                                Some(testo),
                            ));
                        }
                        l.codice = testo.to_owned();
                    }
                    ["legameSoggetto", "dataDecorrenza"] => {
                        data(testo)
                            .ok_or_else(|| self.errore("data attesa (AAAA-MM-GG)", Some(testo)))?;
                        l.decorrenza = valore();
                    }
                    [] if l.id.is_empty() => return Err(self.errore("manca idFamConvComune", None)),
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn campo_famiglia(&mut self, testo: &str) -> Result<(), ErroreStruttura> {
        let Some(mut f) = self.famiglia.take() else {
            return Ok(());
        };
        let mut nomi = [""; MAX_PROFONDITA];
        let sotto = &self.pila[3..];
        for (n, s) in nomi.iter_mut().zip(sotto) {
            *n = s.as_str();
        }
        let percorso = &nomi[..sotto.len()];
        let valore = Some(testo.to_owned());
        match percorso {
            ["idFamigliaConvivenzaComune", "idFamigliaConvivenza"] => f.id = valore,
            ["famigliaAire"] => f.aire = matches!(testo, "S" | "s"),
            ["dataOrigineFamigliaConvivenza"] => {
                if data(testo).is_none() {
                    return Err(self.errore("data attesa (AAAA-MM-GG)", Some(testo)));
                }
                f.data_origine = valore;
            }
            ["motivoCostituzione"] => f.motivo_costituzione = valore,
            ["denominazioneConvivenza"] => f.denominazione = valore,
            ["specieConvivenza"] => f.specie = valore,
            _ => {}
        }
        self.famiglia = Some(f);
        Ok(())
    }

    fn verifica_soggetto(&self, s: &SoggettoLetto) -> Result<(), ErroreStruttura> {
        if self.ultimo_figlio == 0 {
            return Err(self.errore("manca generalitaSubIscr", None));
        }
        if s.luogo.comune_istat.is_none()
            && s.luogo.nome_comune.is_none()
            && s.luogo.stato_codice.is_none()
            && s.luogo.eccezionale.is_none()
        {
            return Err(ErroreStruttura {
                percorso: format!("{}/generalitaSubIscr/luogoNascita", self.percorso()),
                messaggio: "manca luogoNascita".into(),
                valore: None,
            });
        }
        Ok(())
    }
}

/// An `xs:date` in the form the files use.
pub fn data(s: &str) -> Option<chrono::NaiveDate> {
    // The usual `AAAA-MM-GG` read by hand (chrono's format interpreter costs more than
    // the rest of a record's dates together); anything else goes through chrono, so
    // what is accepted does not change.
    let b = s.as_bytes();
    let cifre = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |v, c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(a), Some(m), Some(g)) = (cifre(0..4), cifre(5..7), cifre(8..10)) {
            return chrono::NaiveDate::from_ymd_opt(i32::try_from(a).ok()?, m, g);
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) {
        assert_eq!(
            data(s),
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
            "{s:?}"
        );
    }

    #[test]
    fn dates_read_by_hand_as_chrono_reads_them() {
        for s in [
            "2026-11-23",
            "1900-01-01",
            "2024-02-29",
            "2023-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-32",
            "0000-01-01",
            "2026-1-05",
            "2026-01-5",
            "+2026-01-05",
            "2026/01/05",
            "2026-01-05Z",
            "20a6-01-05",
            "",
            "2026-01-0x",
        ] {
            check(s);
        }
        assert_eq!(
            data("2024-02-29"),
            chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
        );
    }
}
