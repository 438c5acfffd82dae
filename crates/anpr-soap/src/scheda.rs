//! The individual record as the consultations answer it: `datiSoggetto` of
//! `Risposta3002_OK` (`tipoDatiRispostaEstrazioneSoggetti`) and of `Risposta3006_OK`
//! (`tipoDatiRispostaInterrCittadinoEnte`), each in its own XSD element order, with
//! the data groups of `datiRichiesta/datiAnagraficiRichiesti` (table "Dati richiesti").
//!
//! Everything the registry holds and the XSD can carry is written: generalities with
//! the CF and its validation state, civil status and its events (the current marriage,
//! its widowhood or end, the other marriages of a polygamous subject in
//! `listaDatiPoligamia`, civil union, de facto cohabitation), birth deed,
//! citizenships, parents, residence (Italian, or foreign with the consulate for AIRE),
//! identity card, residence permit, relationship and family or cohabitation, the head
//! of the family (`tutoreIntestatario`), other data, registration, removal and death
//! data, origin and destination. What the XSD requires and the registry does not hold
//! (the deed of a ruling, a deed without `parte`...) is left out rather than invented.

use std::collections::BTreeSet;

use anpr_domain::error::Anomalia;
use anpr_domain::scheda::{
    Atto, EventoStatoCivile, Genitore, Luogo, PosizioneAnagrafica, Precisione, Provenienza,
    Residenza, SchedaFamiglia, SchedaSoggetto, TipoEventoStatoCivile, TipoScheda,
};
use anpr_tables::Tables;
use chrono::NaiveDate;

use crate::busta::{scrivi_anomalia, Scrittore};
use crate::richieste::CODICE_DATO_NON_GESTITO;

/// Which consultation answers: the municipalities' (3002), the public bodies' through
/// the municipal family (3006) or through their own channel (E002,
/// `tipoDatiSoggettiEnte`: the 3002 order without the leading `identificativi` and the
/// polygamy list, the national id last in `tipoIdentificativi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variante {
    Comune3002,
    Ente3006,
    EnteE002,
}

/// The data groups asked for (`datiAnagraficiRichiesti`, codes of table "Dati
/// richiesti"); none or `1` = the whole record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gruppi {
    codici: BTreeSet<u8>,
}

/// Groups of table "Dati richiesti" the registry does not hold (attributes,
/// transliterated data, electoral and military lists, census, vehicles, digital
/// domicile): asked for, they are reported as not available.
pub const GRUPPI_NON_TENUTI: &[(u8, &str)] = &[
    (4, "attributiSoggetto"),
    (11, "datiTranslitterati"),
    (18, "listaElettorale"),
    (19, "listaDiLeva"),
    (20, "censimento"),
    (24, "autoveicoli"),
    (25, "domicilioDigitale"),
];

impl Gruppi {
    /// The groups of codes `codici` (1 to 30); an empty list is the whole record.
    pub fn da_codici(codici: impl IntoIterator<Item = u8>) -> Self {
        Self {
            codici: codici.into_iter().collect(),
        }
    }

    /// The whole record.
    pub fn completo(&self) -> bool {
        self.codici.is_empty() || self.codici.contains(&1)
    }

    /// Whether one of `codici` was asked for.
    pub fn vuole(&self, codici: &[u8]) -> bool {
        self.completo() || codici.iter().any(|c| self.codici.contains(c))
    }

    /// The record sections to read (`SezioneSoggetto` keys): those of the groups asked
    /// for, plus generalities, tax code and competence (the answer's mandatory
    /// `generalita`) and the relationship, when a family has to be found. `None`: all.
    pub fn sezioni(&self, con_famiglia: bool) -> Option<Vec<&'static str>> {
        if self.completo() {
            return None;
        }
        let mut s: BTreeSet<&'static str> = ["generalita", "codiceFiscale", "competenza"].into();
        let mut add = |codici: &[u8], sezioni: &[&'static str]| {
            if self.vuole(codici) {
                s.extend(sezioni);
            }
        };
        add(&[3, 13, 14, 15], &["statoCivile"]);
        add(&[5], &["atti"]);
        add(&[6, 7], &["cittadinanze"]);
        add(&[8, 9], &["genitori"]);
        add(&[10], &["residenza", "aire"]);
        add(&[12, 21, 22], &["legame"]);
        add(&[16], &["cartaIdentita"]);
        add(&[17], &["permessoSoggiorno"]);
        add(&[23], &["altriDati"]);
        add(&[26], &["iscrizione", "aire", "competenza"]);
        add(&[27, 28, 30], &["cancellazione"]);
        add(&[29], &["iscrizione"]);
        if con_famiglia {
            s.insert("legame");
        }
        Some(s.into_iter().collect())
    }

    /// Whether the family record is needed (`famigliaConvivenza`, `tutoreIntestatario`).
    pub fn serve_famiglia(&self) -> bool {
        self.vuole(&[12, 22])
    }
}

/// One record to write, with what was read around it.
#[derive(Debug, Clone, Copy)]
pub struct Letto<'a> {
    pub id: &'a str,
    pub scheda: &'a SchedaSoggetto,
    /// The subject's family or cohabitation (id, record) at the date.
    pub famiglia: Option<(&'a str, &'a SchedaFamiglia)>,
    /// The head of that family (id, record), for `tutoreIntestatario`.
    pub intestatario: Option<(&'a str, &'a SchedaSoggetto)>,
}

/// `tipoComune` for an ISTAT code, with name and province from the tables.
pub(crate) fn scrivi_comune(
    w: &mut Scrittore,
    tag: &str,
    tabelle: &Tables,
    istat: &str,
    nome: Option<&str>,
    sigla: Option<&str>,
) {
    let c = istat
        .parse()
        .ok()
        .and_then(|code| tabelle.comune_history_by_istat(&code).into_iter().last());
    w.apri(tag);
    w.campo_max(
        "nomeComune",
        nome.or(c.map(|c| c.nome.as_str())).unwrap_or(istat),
        80,
    );
    w.campo("codiceIstat", istat);
    w.campo(
        "siglaProvinciaIstat",
        sigla
            .or(c.map(|c| c.sigla_provincia.as_str()))
            .unwrap_or("EE"),
    );
    w.chiudi(tag);
}

/// The name of a foreign state (ISTAT code) as the tables hold it.
pub(crate) fn nome_stato(tabelle: &Tables, codice: &str) -> String {
    tabelle
        .stato_estero_by_istat(codice, None)
        .map(|s| s.nome.clone())
        .unwrap_or_else(|| {
            if codice == "100" {
                "ITALIA".into()
            } else {
                codice.into()
            }
        })
}

/// `tipoLocalita` of a foreign state.
fn scrivi_localita(w: &mut Scrittore, tabelle: &Tables, codice: &str, localita: Option<&str>) {
    w.apri("localita");
    w.campo_opt("descrizioneLocalita", localita);
    w.campo_max("descrizioneStato", &nome_stato(tabelle, codice), 120);
    w.campo("codiceStato", codice);
    w.chiudi("localita");
}

/// `tipoLuogoEvento`.
fn scrivi_luogo(w: &mut Scrittore, tag: &str, tabelle: &Tables, l: &Luogo) {
    w.apri(tag);
    match l {
        Luogo::Comune {
            codice_istat,
            nome_comune,
            sigla_provincia,
            ..
        } => scrivi_comune(
            w,
            "comune",
            tabelle,
            codice_istat.as_str(),
            Some(nome_comune),
            sigla_provincia.as_deref(),
        ),
        Luogo::Estero {
            codice_stato,
            descrizione_stato,
            localita,
            ..
        } => {
            w.apri("localita");
            w.campo_opt("descrizioneLocalita", localita.as_deref());
            w.campo_max("descrizioneStato", descrizione_stato, 120);
            w.campo("codiceStato", codice_stato);
            w.chiudi("localita");
        }
        Luogo::Eccezionale { descrizione } => w.campo_max("luogoEccezionale", descrizione, 120),
    }
    w.chiudi(tag);
}

/// `tipoAtto`; a deed without `parte` (which the XSD requires) is left out.
fn scrivi_atto(w: &mut Scrittore, tag: &str, tabelle: &Tables, a: &Atto) {
    let Some(parte) = a.parte.as_deref() else {
        return;
    };
    w.apri(tag);
    scrivi_comune(
        w,
        "comuneRegistrazione",
        tabelle,
        a.comune_registrazione.as_str(),
        None,
        None,
    );
    w.campo_opt("ufficioMunicipio", a.ufficio_municipio.as_deref());
    w.campo("anno", &format!("{:04}", a.anno));
    w.campo("parte", parte);
    w.campo_opt("serie", a.serie.as_deref());
    w.campo("numeroAtto", &a.numero_atto);
    w.campo_opt("volume", a.volume.as_deref());
    w.campo_opt(
        "dataFormazioneAtto",
        a.data_formazione_atto.map(|d| d.to_string()).as_deref(),
    );
    if a.trascritto {
        w.campo("trascritto", "1");
    }
    w.chiudi(tag);
}

/// `tipoDatiEvento`: date, place, deed.
fn scrivi_evento(w: &mut Scrittore, tag: &str, tabelle: &Tables, e: &EventoStatoCivile) {
    w.apri(tag);
    w.campo("dataEvento", &e.data_evento.to_string());
    if let Some(l) = &e.luogo_evento {
        scrivi_luogo(w, "luogoEvento", tabelle, l);
    }
    if let Some(a) = &e.atto {
        scrivi_atto(w, "attoEvento", tabelle, a);
    }
    w.chiudi(tag);
}

/// `tipoGeneralita` of another person (spouse, partner, parent, head of family) as
/// the record names them: names, CF, national id.
fn scrivi_persona(w: &mut Scrittore, tag: &str, p: &Genitore) {
    w.apri(tag);
    if let Some(cf) = &p.codice_fiscale {
        w.apri("codiceFiscale");
        w.campo("codFiscale", cf.as_str());
        w.chiudi("codiceFiscale");
    }
    match &p.cognome {
        Some(c) => w.campo("cognome", c.as_str()),
        None => w.campo("senzaCognome", "1"),
    }
    match &p.nome {
        Some(n) => w.campo("nome", n.as_str()),
        None => w.campo("senzaNome", "1"),
    }
    w.campo_opt(
        "idSchedaSoggettoANPR",
        p.id_anpr.map(|i| i.to_string()).as_deref(),
    );
    w.chiudi(tag);
}

pub(crate) fn scrivi_residenza(w: &mut Scrittore, tabelle: &Tables, r: &Residenza) {
    scrivi_residenza_con(w, tabelle, r, None);
}

/// `tipoResidenza`: an Italian address, or (AIRE) a foreign one with its consulate.
fn scrivi_residenza_con(
    w: &mut Scrittore,
    tabelle: &Tables,
    r: &Residenza,
    consolato: Option<&str>,
) {
    if let Some(i) = r.indirizzo.as_ref() {
        // The XSD makes cap, comune and toponimo mandatory in an Italian address; an
        // address without a postcode cannot be written validly and is left out.
        if i.cap.is_none() {
            return;
        }
        w.apri("residenza");
        w.campo("tipoIndirizzo", &r.tipo_indirizzo);
        w.campo_opt("noteIndirizzo", r.note_indirizzo.as_deref());
        w.apri("indirizzo");
        w.campo_opt("cap", i.cap.as_deref());
        scrivi_comune(w, "comune", tabelle, i.comune.as_str(), None, None);
        w.campo_opt("frazione", i.frazione.as_deref());
        w.apri("toponimo");
        w.campo_opt("codSpecie", i.toponimo.cod_specie.as_deref());
        w.campo_max("specie", &i.toponimo.specie, 30);
        w.campo_opt("codToponimo", i.toponimo.cod_toponimo.as_deref());
        w.campo_max(
            "denominazioneToponimo",
            &i.toponimo.denominazione_toponimo,
            100,
        );
        w.chiudi("toponimo");
        let n = &i.numero_civico;
        if n.numero.is_some() || n.lettera.is_some() || n.esponente1.is_some() {
            w.apri("numeroCivico");
            w.campo_opt("numero", n.numero.as_deref());
            w.campo_opt("lettera", n.lettera.as_deref());
            w.campo_opt("esponente1", n.esponente1.as_deref());
            if n.scala.is_some() || n.piano.is_some() || n.interno.is_some() {
                w.apri("civicoInterno");
                w.campo_opt("scala", n.scala.as_deref());
                w.campo_opt("interno1", n.interno.as_deref());
                w.campo_opt("piano", n.piano.as_deref());
                w.chiudi("civicoInterno");
            }
            w.chiudi("numeroCivico");
        }
        w.chiudi("indirizzo");
    } else if let (Some(e), Some(codice)) = (r.indirizzo_estero.as_ref(), consolato) {
        // A foreign address needs its consulate (`tipoLocalitaEstera`).
        let Some(c) = tabelle.consolato(codice) else {
            return;
        };
        w.apri("residenza");
        w.campo("tipoIndirizzo", &r.tipo_indirizzo);
        w.campo_opt("noteIndirizzo", r.note_indirizzo.as_deref());
        w.apri("localitaEstera");
        w.apri("indirizzoEstero");
        w.campo_opt("cap", e.cap.as_deref());
        w.apri("localita");
        w.campo_max("descrizioneLocalita", &e.localita, 120);
        w.campo_max(
            "descrizioneStato",
            &nome_stato(tabelle, &e.codice_stato),
            120,
        );
        w.campo("codiceStato", &e.codice_stato);
        w.campo_opt("provinciaContea", e.provincia_contea.as_deref());
        w.chiudi("localita");
        w.apri("toponimo");
        w.campo_max("denominazione", &e.indirizzo, 120);
        w.chiudi("toponimo");
        w.chiudi("indirizzoEstero");
        w.apri("consolato");
        w.campo("codiceConsolato", &c.codice);
        w.campo_max("descrizioneConsolato", &c.sede, 120);
        w.chiudi("consolato");
        w.chiudi("localitaEstera");
    } else {
        return;
    }
    w.campo_opt("presso", r.presso.as_deref());
    w.campo(
        "dataDecorrenzaResidenza",
        &r.data_decorrenza_residenza.to_string(),
    );
    w.chiudi("residenza");
}

/// `tipoGeneralita` of a record (CF and its validation state, names, birth,
/// municipal and national ids).
pub(crate) fn scrivi_generalita(w: &mut Scrittore, tabelle: &Tables, id: &str, s: &SchedaSoggetto) {
    w.apri("generalita");
    if let Some(cf) = &s.codice_fiscale {
        w.apri("codiceFiscale");
        w.campo("codFiscale", cf.cod_fiscale.as_str());
        w.campo("validitaCF", cf.stato.validita_cf());
        w.campo_opt(
            "dataAttribuzioneValidita",
            cf.data_attribuzione_validita
                .map(|d| d.to_string())
                .as_deref(),
        );
        w.chiudi("codiceFiscale");
    }
    if let Some(g) = &s.generalita {
        match &g.cognome {
            Some(c) => w.campo("cognome", c.as_str()),
            None => w.campo("senzaCognome", "1"),
        }
        match &g.nome {
            Some(n) => w.campo("nome", n.as_str()),
            None => w.campo("senzaNome", "1"),
        }
        w.campo("sesso", g.sesso.code());
        w.campo("dataNascita", &g.data_nascita.data.to_string());
        match g.data_nascita.precisione {
            Precisione::Completa => {}
            Precisione::SenzaGiorno => w.campo("senzaGiorno", "1"),
            Precisione::SenzaGiornoMese => w.campo("senzaGiornoMese", "1"),
        }
        scrivi_luogo(w, "luogoNascita", tabelle, &g.luogo_nascita);
    } else {
        w.campo("senzaCognome", "1");
        w.campo("senzaNome", "1");
    }
    if let Some(c) = &s.competenza {
        if c.posizione == PosizioneAnagrafica::Aire {
            w.campo("soggettoAIRE", "S");
        }
        if let Some(a) = s.aire.as_ref().and_then(|a| a.anno_espatrio) {
            w.campo("annoEspatrio", &format!("{a:04}"));
        }
        if let Some(idc) = &c.id_scheda_soggetto_comune {
            w.apri("idSchedaSoggettoComune");
            w.campo("idSchedaSoggettoComuneIstat", c.comune.as_str());
            w.campo("idSchedaSoggetto", idc.as_str());
            w.chiudi("idSchedaSoggettoComune");
        }
    }
    w.campo("idSchedaSoggettoANPR", id);
    if let Some(n) = s.generalita.as_ref().and_then(|g| g.note.as_deref()) {
        w.campo_max("note", n, 240);
    }
    w.chiudi("generalita");
}

/// One marriage of the record with how it ended, if it did.
struct Coppia<'a> {
    matrimonio: &'a EventoStatoCivile,
    fine: Option<&'a EventoStatoCivile>,
}

fn stessa_persona(a: Option<&Genitore>, b: Option<&Genitore>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => match (a.id_anpr, b.id_anpr, &a.codice_fiscale, &b.codice_fiscale) {
            (Some(x), Some(y), ..) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => {
                let n = |g: &Genitore| {
                    (
                        g.cognome.as_ref().map(|c| c.key()),
                        g.nome.as_ref().map(|c| c.key()),
                    )
                };
                n(a) == n(b)
            }
        },
        // An end naming nobody is the end of the marriage open at the time.
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

/// The marriages of the record, each with its end (the widowhood, divorce or
/// annulment that names the same spouse, or names none, after it).
fn coppie(eventi: &[EventoStatoCivile]) -> Vec<Coppia<'_>> {
    let mut out: Vec<Coppia<'_>> = Vec::new();
    for e in eventi {
        match e.tipo {
            TipoEventoStatoCivile::Matrimonio => out.push(Coppia {
                matrimonio: e,
                fine: None,
            }),
            TipoEventoStatoCivile::Vedovanza
            | TipoEventoStatoCivile::Divorzio
            | TipoEventoStatoCivile::AnnullamentoMatrimonio => {
                if let Some(c) = out.iter_mut().rev().find(|c| {
                    c.fine.is_none()
                        && stessa_persona(c.matrimonio.coniuge.as_ref(), e.coniuge.as_ref())
                }) {
                    c.fine = Some(e);
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether some marriage began while another was still open (polygamy, 5021).
fn poligamo(coppie: &[Coppia<'_>]) -> bool {
    coppie.iter().enumerate().any(|(i, c)| {
        coppie[..i].iter().any(|p| {
            p.fine
                .is_none_or(|f| f.data_evento > c.matrimonio.data_evento)
        })
    })
}

/// `matrimonio`, `vedovanza` / `annullamentoMatrimonio` of one marriage.
fn scrivi_coppia(w: &mut Scrittore, tabelle: &Tables, c: &Coppia<'_>, ordine: Option<usize>) {
    w.apri("matrimonio");
    match &c.matrimonio.coniuge {
        Some(p) => scrivi_persona(w, "coniuge", p),
        None => {
            w.apri("coniuge");
            w.campo("senzaCognome", "1");
            w.campo("senzaNome", "1");
            w.chiudi("coniuge");
        }
    }
    scrivi_evento(w, "datiMatrimonio", tabelle, c.matrimonio);
    if let Some(o) = ordine {
        w.campo("ordineMatrimonio", &o.to_string());
    }
    w.chiudi("matrimonio");
    let Some(f) = c.fine else { return };
    if f.tipo == TipoEventoStatoCivile::Vedovanza {
        w.apri("vedovanza");
        scrivi_evento(w, "datiMorteconiuge", tabelle, f);
        w.chiudi("vedovanza");
    } else {
        // Without the code of the end, "annulment" or "other end" (table "Tipo
        // cessazione matrimonio").
        let tipo = f.tipo_cessazione.as_deref().unwrap_or(
            if f.tipo == TipoEventoStatoCivile::AnnullamentoMatrimonio {
                "2"
            } else {
                "22"
            },
        );
        w.apri("annullamentoMatrimonio");
        w.campo_max("tipoCessazione", tipo, 2);
        if let Some(a) = &f.atto {
            scrivi_atto(w, "attoAnnullamentoMatrimonio", tabelle, a);
        }
        w.chiudi("annullamentoMatrimonio");
    }
}

/// The last event of kind `apre` and the first of kind `chiude` after it.
fn ultimo_con_fine(
    eventi: &[EventoStatoCivile],
    apre: TipoEventoStatoCivile,
    chiude: TipoEventoStatoCivile,
) -> Option<(&EventoStatoCivile, Option<&EventoStatoCivile>)> {
    let i = eventi.iter().rposition(|e| e.tipo == apre)?;
    Some((
        &eventi[i],
        eventi[i + 1..].iter().find(|e| e.tipo == chiude),
    ))
}

fn scrivi_unione(w: &mut Scrittore, tabelle: &Tables, eventi: &[EventoStatoCivile]) {
    let Some((u, fine)) = ultimo_con_fine(
        eventi,
        TipoEventoStatoCivile::UnioneCivile,
        TipoEventoStatoCivile::ScioglimentoUnione,
    ) else {
        return;
    };
    w.apri("unioneCivile");
    if let Some(p) = &u.coniuge {
        scrivi_persona(w, "unitoCivilmente", p);
    }
    scrivi_evento(w, "attoUnione", tabelle, u);
    if let Some(f) = fine {
        w.apri("scioglimentoUnione");
        scrivi_evento(w, "datiEvento", tabelle, f);
        w.chiudi("scioglimentoUnione");
    }
    w.chiudi("unioneCivile");
}

fn scrivi_convivenza(w: &mut Scrittore, tabelle: &Tables, eventi: &[EventoStatoCivile]) {
    let Some((c, fine)) = ultimo_con_fine(
        eventi,
        TipoEventoStatoCivile::ConvivenzaDiFatto,
        TipoEventoStatoCivile::RisoluzioneConvivenza,
    ) else {
        return;
    };
    w.apri("convivenzaDiFatto");
    if let Some(p) = &c.coniuge {
        scrivi_persona(w, "convivente", p);
    }
    let contratto = |w: &mut Scrittore, tag: &str, e: &EventoStatoCivile| {
        w.apri(tag);
        w.campo("data", &e.data_evento.to_string());
        if let Some(l) = &e.luogo_evento {
            scrivi_luogo(w, "luogoEvento", tabelle, l);
        }
        w.chiudi(tag);
    };
    contratto(w, "contrattoStipula", c);
    if let Some(f) = fine {
        w.apri("contrattoRisoluzione");
        contratto(w, "contratto", f);
        w.chiudi("contrattoRisoluzione");
    }
    w.chiudi("convivenzaDiFatto");
}

fn scrivi_genitore(w: &mut Scrittore, tag: &str, g: &Genitore) {
    w.apri(tag);
    scrivi_persona(w, "generalita", g);
    w.chiudi(tag);
}

fn scrivi_provenienza(w: &mut Scrittore, tag: &str, tabelle: &Tables, p: &Provenienza) {
    if let Some(c) = &p.comune {
        w.apri(tag);
        scrivi_comune(w, "comune", tabelle, c.as_str(), None, None);
        w.chiudi(tag);
    } else if let Some(s) = &p.codice_stato {
        w.apri(tag);
        scrivi_localita(w, tabelle, s, None);
        w.chiudi(tag);
    }
}

fn descrizione(tabelle: &Tables, tabella: &str, codice: &str) -> Option<String> {
    tabelle
        .code(tabella, codice, None)
        .map(|r| testo_note(&r.description))
}

/// A free text in the character set of the XSD's note types (`tipoNote`: letters,
/// digits, accented Latin letters, space and `,.-'":;`): typographic quotes become
/// plain ones, other characters are dropped.
pub(crate) fn testo_note(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\u{2018}' | '\u{2019}' | '`' => Some('\''),
            '\u{201c}' | '\u{201d}' => Some('"'),
            c if c.is_ascii_alphanumeric() || " ,.-'\":;".contains(c) => Some(c),
            c if ('\u{c0}'..='\u{17e}').contains(&c) || c == '\u{189}' => Some(c),
            _ => None,
        })
        .collect()
}

/// The blocks of a record, each writing its XSD element(s) when the record holds it
/// and the group was asked for.
struct Blocchi<'a> {
    t: &'a Tables,
    l: Letto<'a>,
    g: &'a Gruppi,
    v: Variante,
}

impl Blocchi<'_> {
    fn stato_civile(&self, w: &mut Scrittore) {
        if let (true, Some(sc)) = (self.g.vuole(&[3]), &self.l.scheda.stato_civile) {
            w.apri("statoCivile");
            w.campo_max("statoCivile", &sc.stato_civile, 2);
            w.chiudi("statoCivile");
        }
    }

    fn atto_nascita(&self, w: &mut Scrittore) {
        if let (true, Some(a)) = (
            self.g.vuole(&[5]),
            self.l
                .scheda
                .atti
                .as_ref()
                .and_then(|a| a.atto_nascita.as_ref()),
        ) {
            scrivi_atto(w, "attoNascita", self.t, a);
        }
    }

    fn cittadinanze(&self, w: &mut Scrittore) {
        if !self.g.vuole(&[6, 7]) {
            return;
        }
        for c in self.l.scheda.cittadinanze.iter().flatten() {
            w.apri("cittadinanza");
            w.campo_max(
                "descrizioneStato",
                &nome_stato(self.t, &c.codice_stato),
                120,
            );
            w.campo("codiceStato", &c.codice_stato);
            w.campo_opt(
                "dataValidita",
                c.data_validita.map(|d| d.to_string()).as_deref(),
            );
            w.chiudi("cittadinanza");
        }
    }

    fn genitori(&self, w: &mut Scrittore, madre: bool) {
        let g = self.l.scheda.genitori.as_ref();
        let (codice, tag, p) = if madre {
            (9, "maternita", g.and_then(|g| g.madre.as_ref()))
        } else {
            (8, "paternita", g.and_then(|g| g.padre.as_ref()))
        };
        if let (true, Some(p)) = (self.g.vuole(&[codice]), p) {
            scrivi_genitore(w, tag, p);
        }
    }

    fn residenza(&self, w: &mut Scrittore) {
        if let (true, Some(r)) = (self.g.vuole(&[10]), &self.l.scheda.residenza) {
            let consolato = self.l.scheda.aire.as_ref().map(|a| a.consolato.as_str());
            scrivi_residenza_con(w, self.t, r, consolato);
        }
    }

    fn tutore(&self, w: &mut Scrittore) {
        let (true, Some((id, h)), Some((_, f))) =
            (self.g.vuole(&[12]), self.l.intestatario, self.l.famiglia)
        else {
            return;
        };
        let Some(i) = &f.intestatario else { return };
        w.apri("tutoreIntestatario");
        let persona = Genitore {
            id_anpr: id.parse().ok(),
            codice_fiscale: h.codice_fiscale.as_ref().map(|c| c.cod_fiscale),
            cognome: h.generalita.as_ref().and_then(|g| g.cognome.clone()),
            nome: h.generalita.as_ref().and_then(|g| g.nome.clone()),
        };
        scrivi_persona(w, "generalita", &persona);
        w.campo("dataIntestarioConvivenza", &i.data_decorrenza.to_string());
        w.chiudi("tutoreIntestatario");
    }

    fn matrimoni(&self, w: &mut Scrittore) -> Vec<usize> {
        let Some(sc) = (self.g.vuole(&[13, 14, 15]))
            .then_some(())
            .and(self.l.scheda.stato_civile.as_ref())
        else {
            return Vec::new();
        };
        let cc = coppie(&sc.eventi);
        let Some(ultima) = cc.len().checked_sub(1) else {
            return Vec::new();
        };
        let poli = poligamo(&cc);
        scrivi_coppia(w, self.t, &cc[ultima], poli.then_some(cc.len()));
        if poli {
            (0..ultima).collect()
        } else {
            Vec::new()
        }
    }

    fn poligamia(&self, w: &mut Scrittore, altre: &[usize]) {
        let Some(sc) = self.l.scheda.stato_civile.as_ref() else {
            return;
        };
        if altre.is_empty() {
            return;
        }
        let cc = coppie(&sc.eventi);
        w.apri("listaDatiPoligamia");
        for &i in altre {
            w.apri("poligamia");
            scrivi_coppia(w, self.t, &cc[i], Some(i + 1));
            w.chiudi("poligamia");
        }
        w.chiudi("listaDatiPoligamia");
    }

    fn unione_convivenza(&self, w: &mut Scrittore, unione_prima: bool) {
        if !self.g.vuole(&[3]) {
            return;
        }
        let Some(sc) = self.l.scheda.stato_civile.as_ref() else {
            return;
        };
        if unione_prima {
            scrivi_unione(w, self.t, &sc.eventi);
            scrivi_convivenza(w, self.t, &sc.eventi);
        } else {
            scrivi_convivenza(w, self.t, &sc.eventi);
            scrivi_unione(w, self.t, &sc.eventi);
        }
    }

    fn carta(&self, w: &mut Scrittore) {
        let (true, Some(c)) = (self.g.vuole(&[16]), &self.l.scheda.carta_identita) else {
            return;
        };
        if c.comune_rilascio.is_none() && c.consolato_rilascio.is_none() {
            // The XSD requires where it was issued.
            return;
        }
        w.apri("cartaIdentita");
        w.campo_max("numero", &c.numero, 20);
        w.campo("dataRilascio", &c.data_rilascio.to_string());
        w.campo(
            "interdizioneEspatrio",
            if c.interdizione_espatrio { "S" } else { "N" },
        );
        if let Some(cm) = &c.comune_rilascio {
            scrivi_comune(w, "comuneRilascio", self.t, cm.as_str(), None, None);
        } else if let Some(cs) = &c.consolato_rilascio {
            w.apri("consolatoRilascio");
            w.campo("codiceConsolato", cs);
            w.campo_max(
                "descrizioneConsolato",
                &self
                    .t
                    .consolato(cs)
                    .map_or_else(|| cs.clone(), |c| c.sede.clone()),
                120,
            );
            w.chiudi("consolatoRilascio");
        }
        w.campo("dataScadenza", &c.data_scadenza.to_string());
        w.campo_opt(
            "dataAnnullamento",
            c.data_annullamento.map(|d| d.to_string()).as_deref(),
        );
        w.chiudi("cartaIdentita");
    }

    fn permesso(&self, w: &mut Scrittore) {
        let (true, Some(p)) = (self.g.vuole(&[17]), &self.l.scheda.permesso_soggiorno) else {
            return;
        };
        w.apri("permessoSoggiorno");
        w.campo_max("numeroSoggiorno", &p.numero_soggiorno, 20);
        w.campo_max("tipoSoggiorno", &p.tipo_soggiorno, 2);
        w.campo("dataRilascio", &p.data_rilascio.to_string());
        w.campo_opt(
            "dataScadenza",
            p.data_scadenza.map(|d| d.to_string()).as_deref(),
        );
        if let Some(q) = &p.questura_rilascio {
            w.campo_max("questuraRilascioSoggiorno", q, 50);
        }
        w.campo_opt("numeroPassaporto", p.numero_passaporto.as_deref());
        w.chiudi("permessoSoggiorno");
    }

    fn legame(&self, w: &mut Scrittore) {
        let (true, Some(l)) = (self.g.vuole(&[21]), &self.l.scheda.legame) else {
            return;
        };
        w.apri("legameSoggetto");
        w.campo(
            "tipoLegame",
            match l.tipo_legame {
                TipoScheda::Famiglia => "1",
                TipoScheda::Convivenza => "2",
            },
        );
        w.campo("dataDecorrenza", &l.data_decorrenza.to_string());
        w.campo_max("codiceLegame", &l.codice_legame, 2);
        w.chiudi("legameSoggetto");
    }

    fn famiglia(&self, w: &mut Scrittore) {
        let (true, Some((id, f))) = (self.g.vuole(&[22]), self.l.famiglia) else {
            return;
        };
        let Some(d) = &f.dati else { return };
        w.apri("famigliaConvivenza");
        if let Some(c) = &d.id_famiglia_convivenza_comune {
            w.apri("idFamigliaConvivenzaComune");
            w.campo("idFamigliaConvivenzaComuneIstat", d.comune.as_str());
            w.campo("idFamigliaConvivenza", c.as_str());
            w.chiudi("idFamigliaConvivenzaComune");
        }
        w.campo("idFamigliaConvivenzaANPR", id);
        w.campo("famigliaAire", if d.famiglia_aire { "S" } else { "N" });
        w.campo(
            "dataOrigineFamigliaConvivenza",
            &d.data_origine_famiglia_convivenza.to_string(),
        );
        if let Some(m) = &d.motivo_costituzione {
            w.campo_max("motivoCostituzione", m, 2);
        }
        if let Some(n) = &d.denominazione_convivenza {
            w.campo_max("denominazioneConvivenza", n, 100);
        }
        if let Some(s) = &d.specie_convivenza {
            w.campo_max("specieConvivenza", s, 2);
        }
        w.campo(
            "tipoScheda",
            match d.tipo_scheda {
                TipoScheda::Famiglia => "1",
                TipoScheda::Convivenza => "2",
            },
        );
        w.chiudi("famigliaConvivenza");
    }

    fn altri_dati(&self, w: &mut Scrittore) {
        let (true, Some(a)) = (self.g.vuole(&[23]), &self.l.scheda.altri_dati) else {
            return;
        };
        w.apri("altriDati");
        for (tag, v) in [
            ("posizioneProfessionale", &a.posizione_professionale),
            (
                "condizioneNonProfessionale",
                &a.condizione_non_professionale,
            ),
            ("titoloStudio", &a.titolo_studio),
        ] {
            if let Some(v) = v {
                w.campo_max(tag, v, 2);
            }
        }
        w.chiudi("altriDati");
    }

    fn iscrizione(&self, w: &mut Scrittore) {
        let (true, Some(i)) = (self.g.vuole(&[26]), &self.l.scheda.iscrizione) else {
            return;
        };
        let aire = self
            .l
            .scheda
            .competenza
            .as_ref()
            .is_some_and(|c| c.posizione == PosizioneAnagrafica::Aire);
        let dati_aire = self.l.scheda.aire.as_ref().and_then(|a| {
            Some((
                a.iniziativa_iscrizione.as_deref()?,
                a.individuazione_comune_iscrizione.as_deref()?,
                a.data_arrivo_consolato,
            ))
        });
        match (aire, dati_aire) {
            (false, _) => {
                w.apri("datiIscrizione");
                w.apri("iscrizioneResidente");
                w.campo_max("motivoIscrizione", &i.motivo_iscrizione, 2);
                if let Some(d) = descrizione(self.t, "motivi_iscrizione_apr", &i.motivo_iscrizione)
                {
                    w.campo_max("descrizioneMotivoIscrizione", &d, 240);
                }
                w.chiudi("iscrizioneResidente");
                w.chiudi("datiIscrizione");
            }
            (true, Some((iniziativa, individuazione, arrivo))) => {
                w.apri("datiIscrizione");
                w.apri("tipoIscrizioneAIRE");
                w.campo_max("motivoIscrizione", &i.motivo_iscrizione, 3);
                w.campo_opt("noteMotivoIscrizione", i.note.as_deref());
                w.campo_max("iniziativaIscrizione", iniziativa, 2);
                w.campo_max("individuazioneComuneIscrizione", individuazione, 2);
                w.campo_opt(
                    "dataArrivoConsolato",
                    arrivo.map(|d| d.to_string()).as_deref(),
                );
                w.chiudi("tipoIscrizioneAIRE");
                w.chiudi("datiIscrizione");
            }
            (true, None) => {}
        }
    }

    fn cancellazione(&self, w: &mut Scrittore) {
        let Some(c) = &self.l.scheda.cancellazione else {
            return;
        };
        if self.g.vuole(&[27]) {
            w.apri("datiCancellazione");
            w.campo_max("motivoCancellazione", &c.motivo_cancellazione, 2);
            if let Some(n) = &c.note {
                w.campo_max("notecancellazione", n, 80);
            }
            w.campo(
                "dataDecorrenzaCancellazione",
                &c.data_decorrenza_cancellazione.to_string(),
            );
            w.chiudi("datiCancellazione");
        }
        if self.g.vuole(&[28]) && matches!(c.motivo_cancellazione.as_str(), "1" | "2") {
            w.apri("datiDecesso");
            w.campo("dataEvento", &c.data_decorrenza_cancellazione.to_string());
            if let Some(a) = &c.atto_morte {
                scrivi_atto(w, "attoEvento", self.t, a);
            }
            w.chiudi("datiDecesso");
        }
    }

    fn provenienza_destinazione(&self, w: &mut Scrittore) {
        if let (true, Some(p)) = (
            self.g.vuole(&[29]),
            self.l
                .scheda
                .iscrizione
                .as_ref()
                .and_then(|i| i.provenienza.as_ref()),
        ) {
            scrivi_provenienza(w, "provenienza", self.t, p);
        }
        if let (true, Some(p)) = (
            self.g.vuole(&[30]),
            self.l
                .scheda
                .cancellazione
                .as_ref()
                .and_then(|c| c.destinazione.as_ref()),
        ) {
            scrivi_provenienza(w, "destinazione", self.t, p);
        }
    }

    /// `erroriAnomalie` (3002 and E002): groups asked for that the registry does not
    /// hold.
    fn non_tenuti(&self, w: &mut Scrittore) {
        if self.v == Variante::Ente3006 || self.g.completo() {
            return;
        }
        for (codice, nome) in GRUPPI_NON_TENUTI {
            if self.g.codici.contains(codice) {
                let a = Anomalia::avvertimento(
                    CODICE_DATO_NON_GESTITO,
                    format!("Dato richiesto {codice} ({nome}) non gestito in questa versione"),
                )
                .campo("datiRichiesta/datiAnagraficiRichiesti")
                .valore(codice.to_string());
                scrivi_anomalia(w, "erroriAnomalie", &a);
            }
        }
    }
}

/// One `datiSoggetto` of a consultation, in the variant's element order.
pub fn scrivi_soggetto(w: &mut Scrittore, tabelle: &Tables, l: Letto<'_>, g: &Gruppi, v: Variante) {
    let b = Blocchi {
        t: tabelle,
        l,
        g,
        v,
    };
    w.apri("datiSoggetto");
    match v {
        Variante::Comune3002 => {
            w.apri("identificativi");
            w.campo("idANPR", l.id);
            w.chiudi("identificativi");
            scrivi_generalita(w, tabelle, l.id, l.scheda);
            b.stato_civile(w);
            b.atto_nascita(w);
            b.cittadinanze(w);
            b.genitori(w, false);
            b.genitori(w, true);
            b.residenza(w);
            b.tutore(w);
            let altre = b.matrimoni(w);
            // 3002 order: convivenzaDiFatto, then unioneCivile.
            b.unione_convivenza(w, false);
            b.carta(w);
            b.permesso(w);
            b.legame(w);
            b.famiglia(w);
            b.altri_dati(w);
            b.iscrizione(w);
            b.cancellazione(w);
            b.provenienza_destinazione(w);
            b.non_tenuti(w);
            b.poligamia(w, &altre);
        }
        Variante::Ente3006 => {
            scrivi_generalita(w, tabelle, l.id, l.scheda);
            b.stato_civile(w);
            b.atto_nascita(w);
            b.cittadinanze(w);
            b.genitori(w, false);
            b.genitori(w, true);
            b.residenza(w);
            b.matrimoni(w);
            b.unione_convivenza(w, true);
            b.famiglia(w);
            b.altri_dati(w);
            b.legame(w);
            b.iscrizione(w);
            b.cancellazione(w);
            b.provenienza_destinazione(w);
            b.carta(w);
            b.permesso(w);
        }
        Variante::EnteE002 => {
            scrivi_generalita(w, tabelle, l.id, l.scheda);
            b.stato_civile(w);
            b.atto_nascita(w);
            b.cittadinanze(w);
            b.genitori(w, false);
            b.genitori(w, true);
            b.residenza(w);
            b.tutore(w);
            b.matrimoni(w);
            b.unione_convivenza(w, false);
            b.carta(w);
            b.permesso(w);
            b.legame(w);
            b.famiglia(w);
            b.altri_dati(w);
            b.iscrizione(w);
            b.cancellazione(w);
            b.provenienza_destinazione(w);
            b.non_tenuti(w);
            w.apri("tipoIdentificativi");
            w.campo("idANPR", l.id);
            w.chiudi("tipoIdentificativi");
        }
    }
    w.chiudi("datiSoggetto");
}

/// The reference date of a consultation (`dataRiferimentoRichiesta`), for the family
/// read alongside the records.
pub fn data_riferimento(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}
