//! The population model: households, people, places, and the injection of anomalies.
//!
//! A municipality is filled household by household (single people, couples, couples
//! with children, single parents, a few cohabitations, and about one household in
//! twelve registered abroad in AIRE) until the requested number of persons is reached.
//! Every person gets a tax code computed from their data, and the same five data go to
//! the tax-agency register, so a clean population validates without a single anomaly.
//!
//! An anomaly is injected with probability `anomalie` per person, of one kind drawn
//! uniformly from those that apply to the person; each kind produces exactly one anomaly
//! of a known code (extra records are built clean apart from the one defect).

use std::collections::BTreeMap;
use std::io::{self, Write};

use anpr_domain::codice_fiscale::{calcola, omocodice, CodiceFiscale, DatiCalcolo};
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, Sesso};
use anpr_tables::Tables;
use anpr_tables::{Comune, Consolato, StatoEstero};
use chrono::{Datelike, Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::nomi;
use crate::xml::{
    FamigliaFile, LegameFile, LuogoNascita, ResidenzaFile, ScrittoreFile, SoggettoFile,
};
use crate::Configurazione;

/// The anomaly kinds the generator can inject, each with the ANPR code the onboarding
/// must report for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TipoAnomalia {
    /// A resident with no family or cohabitation record (E, blocks the record).
    SenzaFamiglia,
    /// Last-update date in the future (E).
    DataFutura,
    /// Birth date in the file differs from the tax code's (W).
    DataNascitaCf,
    /// Sex in the file differs from the tax code's (W).
    SessoCf,
    /// Tax code unknown to the tax agency (W).
    CfAssenteAe,
    /// Unknown family relationship code (W).
    RelazioneSconosciuta,
    /// A family record without members (W).
    FamigliaVuota,
    /// A subject pointing to a family that is not in the file (W).
    FamigliaAssente,
    /// The same person in APR and in AIRE (W).
    DuplicatoAprAire,
    /// The same resident in two municipalities (W).
    DuplicatoComuni,
    /// AIRE: unknown foreign state of residence (E).
    StatoEsteroSconosciuto,
    /// AIRE: unknown consulate (E).
    ConsolatoSconosciuto,
}

impl TipoAnomalia {
    pub fn codice(self) -> &'static str {
        match self {
            TipoAnomalia::SenzaFamiglia => "ES092",
            TipoAnomalia::DataFutura => "EN481",
            TipoAnomalia::DataNascitaCf => "EA038",
            TipoAnomalia::SessoCf => "EA042",
            TipoAnomalia::CfAssenteAe => "EA029",
            TipoAnomalia::RelazioneSconosciuta => "EC002",
            TipoAnomalia::FamigliaVuota => "EF010",
            TipoAnomalia::FamigliaAssente => "EN063",
            TipoAnomalia::DuplicatoAprAire => "EA031",
            TipoAnomalia::DuplicatoComuni => "EA030",
            TipoAnomalia::StatoEsteroSconosciuto => "EC053",
            TipoAnomalia::ConsolatoSconosciuto => "EC032",
        }
    }
}

const ANOMALIE_APR: &[TipoAnomalia] = &[
    TipoAnomalia::SenzaFamiglia,
    TipoAnomalia::DataFutura,
    TipoAnomalia::DataNascitaCf,
    TipoAnomalia::SessoCf,
    TipoAnomalia::CfAssenteAe,
    TipoAnomalia::RelazioneSconosciuta,
    TipoAnomalia::FamigliaVuota,
    TipoAnomalia::FamigliaAssente,
    TipoAnomalia::DuplicatoAprAire,
    TipoAnomalia::DuplicatoComuni,
];

const ANOMALIE_AIRE: &[TipoAnomalia] = &[
    TipoAnomalia::StatoEsteroSconosciuto,
    TipoAnomalia::ConsolatoSconosciuto,
    TipoAnomalia::CfAssenteAe,
];

/// A relationship code absent from table "Relazione di parentela" (EC002).
const RELAZIONE_INESISTENTE: &str = "88";
/// A state code absent from the foreign states table (EC053).
pub(crate) const STATO_INESISTENTE: &str = "990";
/// A consulate code absent from the consulates table (EC032).
pub(crate) const CONSOLATO_INESISTENTE: &str = "9999999";
/// The date used for "in the future" (EN481): far enough to stay future.
const DATA_FUTURA: (i32, u32, u32) = (2099, 1, 1);

/// A person before writing: the five data as the tax agency knows them.
#[derive(Clone)]
struct Persona {
    cognome: &'static str,
    nome: &'static str,
    sesso: Sesso,
    nascita: NaiveDate,
    luogo: LuogoNascitaP,
    cittadinanza: (String, String),
    cf: String,
}

#[derive(Clone)]
enum LuogoNascitaP {
    Comune(usize),
    Estero(usize),
}

/// The generator's state across municipalities.
pub(crate) struct Mondo<'t> {
    rng: ChaCha12Rng,
    tabelle: &'t Tables,
    cfg: Configurazione,
    comuni: Vec<&'t Comune>,
    grandi: Vec<(&'t Comune, u32)>,
    stati_nascita: Vec<&'t StatoEstero>,
    /// Consulates with the state they serve.
    consolati: Vec<(&'t Consolato, &'t StatoEstero)>,
    anomalie: BTreeMap<&'static str, u64>,
    /// Residents of the previous municipality waiting to be duplicated in the next one
    /// (EA030).
    duplicati_pendenti: Vec<Persona>,
    /// Residents of this municipality to repeat in its AIRE file (EA031).
    duplicati_aire: Vec<Persona>,
    /// Every tax code issued, to keep codes unique (omocodia when two collide): a
    /// `CodiceFiscale` is its 16 bytes, a `String` each took about three times the
    /// memory (the set is the generator's only state that grows with the population).
    cf_emessi: std::collections::HashSet<CodiceFiscale>,
    prossimo_id: u64,
}

impl<'t> Mondo<'t> {
    pub(crate) fn new(cfg: &Configurazione, tabelle: &'t Tables) -> Self {
        let comuni: Vec<&Comune> = tabelle
            .comuni()
            .iter()
            .filter(|c| c.catastale.is_some())
            .collect();
        let grandi = nomi::GRANDI_COMUNI
            .iter()
            .filter_map(|(istat, peso)| {
                let code: CodiceIstatComune = istat.parse().ok()?;
                Some((tabelle.comune_by_istat(&code, cfg.data_estrazione)?, *peso))
            })
            .collect();
        let stati_nascita = tabelle
            .stati_esteri()
            .iter()
            .filter(|s| {
                s.nascita && s.catastale.is_some() && s.valid_to.is_none() && s.istat != "100"
            })
            .collect();
        let consolati = tabelle
            .consolati()
            .iter()
            .filter_map(|c| {
                let stato = tabelle.stati_esteri().iter().find(|s| {
                    s.codice_mae.as_deref() == Some(c.codice_stato_mae.as_str())
                        && s.residenza
                        && s.valid_to.is_none()
                })?;
                Some((c, stato))
            })
            .collect();
        Self {
            rng: ChaCha12Rng::seed_from_u64(cfg.seme),
            tabelle,
            cfg: cfg.clone(),
            comuni,
            grandi,
            stati_nascita,
            consolati,
            anomalie: BTreeMap::new(),
            duplicati_pendenti: Vec::new(),
            duplicati_aire: Vec::new(),
            cf_emessi: std::collections::HashSet::new(),
            prossimo_id: 1,
        }
    }

    pub(crate) fn anomalie(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.anomalie.iter().map(|(k, v)| (*k, *v))
    }

    fn conta(&mut self, a: TipoAnomalia) {
        *self.anomalie.entry(a.codice()).or_default() += 1;
    }

    fn id(&mut self) -> u64 {
        self.prossimo_id += 1;
        self.prossimo_id
    }

    fn pesato<T: Copy>(&mut self, lista: &[(T, u32)]) -> T {
        let totale: u32 = lista.iter().map(|(_, p)| p).sum();
        let mut x = self.rng.random_range(0..totale);
        for (v, p) in lista {
            if x < *p {
                return *v;
            }
            x -= p;
        }
        lista[0].0
    }

    fn eta(&mut self, min: u32, max: u32) -> u32 {
        self.rng.random_range(min..=max)
    }

    fn data_nascita(&mut self, eta: u32) -> NaiveDate {
        let rif = self.cfg.data_estrazione;
        let anno = rif.year() - eta as i32 - 1;
        let giorno = self.rng.random_range(0..365);
        NaiveDate::from_ymd_opt(anno, 1, 1)
            .and_then(|d| d.checked_add_days(Days::new(giorno)))
            .unwrap_or(rif)
    }

    fn luogo_nascita(
        &mut self,
        residenza: &'t Comune,
        nascita: NaiveDate,
        straniero: bool,
    ) -> LuogoNascitaP {
        let x: f64 = self.rng.random();
        if straniero || x < 0.05 {
            for _ in 0..20 {
                let i = self.rng.random_range(0..self.stati_nascita.len());
                if self.stati_nascita[i].is_valid_at(nascita) {
                    return LuogoNascitaP::Estero(i);
                }
            }
        }
        let candidato: Option<&Comune> = if x < 0.65 {
            Some(residenza)
        } else if x < 0.90 {
            let g = self.grandi.clone();
            let idx: Vec<(usize, u32)> = g.iter().enumerate().map(|(i, (_, p))| (i, *p)).collect();
            Some(g[self.pesato(&idx)].0)
        } else {
            // Any municipality valid at the birth date: ceased ones included.
            (0..20).find_map(|_| {
                let c = self.comuni[self.rng.random_range(0..self.comuni.len())];
                c.is_valid_at(nascita).then_some(c)
            })
        };
        let scelto = candidato
            .and_then(|c| self.tabelle.comune_by_istat(&c.istat, nascita))
            .filter(|c| c.catastale.is_some());
        match scelto {
            Some(c) => LuogoNascitaP::Comune(self.indice_comune(c)),
            None => {
                let i = self.rng.random_range(0..self.stati_nascita.len());
                LuogoNascitaP::Estero(i)
            }
        }
    }

    fn indice_comune(&self, c: &Comune) -> usize {
        self.comuni
            .iter()
            .position(|x| std::ptr::eq(*x, c))
            .unwrap_or(0)
    }

    fn catastale(&self, luogo: &LuogoNascitaP) -> &'t CodiceCatastale {
        match luogo {
            LuogoNascitaP::Comune(i) => self.comuni[*i].catastale.as_ref().expect("filtered"),
            LuogoNascitaP::Estero(i) => {
                self.stati_nascita[*i].catastale.as_ref().expect("filtered")
            }
        }
    }

    fn persona(
        &mut self,
        residenza: &'t Comune,
        sesso: Sesso,
        eta: u32,
        cognome: Option<&'static str>,
        straniero: bool,
    ) -> Persona {
        let cognome = cognome.unwrap_or_else(|| self.pesato(nomi::COGNOMI));
        let nome = match sesso {
            Sesso::Maschio => self.pesato(nomi::NOMI_MASCHILI),
            Sesso::Femmina => self.pesato(nomi::NOMI_FEMMINILI),
        };
        let nascita = self.data_nascita(eta);
        let luogo = self.luogo_nascita(residenza, nascita, straniero);
        let cittadinanza = match (&luogo, straniero) {
            (LuogoNascitaP::Estero(i), true) => {
                let s = self.stati_nascita[*i];
                (s.istat.clone(), s.nome.clone())
            }
            _ => ("100".to_owned(), "ITALIA".to_owned()),
        };
        let dati = DatiCalcolo {
            cognome,
            nome,
            sesso,
            data_nascita: nascita,
            luogo_nascita: self.catastale(&luogo),
        };
        let base = calcola(&dati).expect("generated data always give a code");
        // Two people with the same five data: the agency issues omocodes in order.
        let mut codice = base;
        let mut livello = 1;
        while self.cf_emessi.contains(&codice) {
            match omocodice(&base, livello) {
                Some(o) => codice = o,
                None => break,
            }
            livello += 1;
        }
        self.cf_emessi.insert(codice);
        let cf = codice.as_str().to_owned();
        Persona {
            cognome,
            nome,
            sesso,
            nascita,
            luogo,
            cittadinanza,
            cf,
        }
    }

    fn registra_ae(
        &self,
        registro: &mut dyn Write,
        p: &Persona,
        comune: &CodiceIstatComune,
    ) -> io::Result<()> {
        writeln!(
            registro,
            "{},\"{}\",\"{}\",{},{},{},marcato,,false,{}",
            p.cf,
            p.cognome.replace('"', "\"\""),
            p.nome.replace('"', "\"\""),
            p.sesso.code(),
            p.nascita,
            self.catastale(&p.luogo),
            comune
        )
    }

    fn luogo_file(&self, l: &LuogoNascitaP) -> LuogoNascita {
        match l {
            LuogoNascitaP::Comune(i) => {
                let c = self.comuni[*i];
                LuogoNascita::Comune {
                    nome: c.nome.clone(),
                    istat: c.istat.to_string(),
                    sigla: c.sigla_provincia.clone(),
                }
            }
            LuogoNascitaP::Estero(i) => {
                let s = self.stati_nascita[*i];
                LuogoNascita::Estero {
                    descrizione: s.nome.clone(),
                    codice: s.istat.clone(),
                }
            }
        }
    }

    /// Generates one municipality: `persone` persons into the two files.
    pub(crate) fn genera_comune(
        &mut self,
        comune: &CodiceIstatComune,
        apr: &mut ScrittoreFile,
        aire: &mut ScrittoreFile,
        registro: &mut dyn Write,
    ) -> io::Result<()> {
        let residenza = self
            .tabelle
            .comune_by_istat(comune, self.cfg.data_estrazione)
            .expect("checked by genera");
        let pendenti = std::mem::take(&mut self.duplicati_pendenti);
        let mut generati: u64 = 0;
        // Duplicates of the previous municipality's residents (EA030): clean records,
        // already in the agency's register.
        for p in pendenti {
            let fam = format!("D{}", self.id());
            self.scrivi_nucleo(
                apr,
                registro,
                residenza,
                &[(p, "1".to_owned())],
                &fam,
                false,
                None,
                false,
            )?;
            self.conta(TipoAnomalia::DuplicatoComuni);
        }
        let mut convivenza_ogni = 3000u64;
        while generati < self.cfg.persone {
            let restanti = self.cfg.persone - generati;
            if generati >= convivenza_ogni && restanti >= 5 {
                convivenza_ogni += 3000;
                generati += self.convivenza(apr, registro, residenza, restanti.min(12))?;
                continue;
            }
            let aire_nucleo = self.rng.random_bool(0.08);
            let membri = self.nucleo(residenza, restanti, aire_nucleo);
            generati += membri.len() as u64;
            let fam = format!("F{}", self.id());
            if aire_nucleo {
                let consolato = self.rng.random_range(0..self.consolati.len());
                self.scrivi_nucleo(
                    aire,
                    registro,
                    residenza,
                    &membri,
                    &fam,
                    true,
                    Some(consolato),
                    true,
                )?;
            } else {
                self.scrivi_nucleo(apr, registro, residenza, &membri, &fam, false, None, true)?;
            }
        }
        for p in std::mem::take(&mut self.duplicati_aire) {
            let fam = format!("D{}", self.id());
            let consolato = self.rng.random_range(0..self.consolati.len());
            self.scrivi_nucleo(
                aire,
                registro,
                residenza,
                &[(p, "1".to_owned())],
                &fam,
                true,
                Some(consolato),
                false,
            )?;
        }
        Ok(())
    }

    /// A household's members with their relationship codes (head first).
    fn nucleo(
        &mut self,
        residenza: &'t Comune,
        restanti: u64,
        aire: bool,
    ) -> Vec<(Persona, String)> {
        let straniero = !aire && self.rng.random_bool(0.09);
        let tipo: f64 = self.rng.random();
        let mut membri = Vec::new();
        let eta_capo = self.eta(22, 92);
        let sesso_capo = if self.rng.random_bool(0.6) {
            Sesso::Maschio
        } else {
            Sesso::Femmina
        };
        let capo = self.persona(residenza, sesso_capo, eta_capo, None, straniero);
        let cognome = capo.cognome;
        membri.push((capo, "1".to_owned()));
        if tipo < 0.32 || restanti == 1 {
            return membri;
        }
        let coppia = tipo < 0.88;
        if coppia {
            let sesso = if sesso_capo == Sesso::Maschio {
                Sesso::Femmina
            } else {
                Sesso::Maschio
            };
            let eta = eta_capo.saturating_sub(self.rng.random_range(0..6)).max(19);
            membri.push((
                self.persona(residenza, sesso, eta, None, straniero),
                "2".to_owned(),
            ));
        }
        if tipo >= 0.50 && eta_capo < 70 {
            let figli = self
                .rng
                .random_range(1..=3u64)
                .min(restanti.saturating_sub(membri.len() as u64));
            for _ in 0..figli {
                let eta = self.eta(0, eta_capo.saturating_sub(20).max(1));
                let sesso = if self.rng.random_bool(0.5) {
                    Sesso::Maschio
                } else {
                    Sesso::Femmina
                };
                // Children take the head's surname when the head is the father.
                let cognome = (sesso_capo == Sesso::Maschio).then_some(cognome);
                membri.push((
                    self.persona(residenza, sesso, eta, cognome, straniero),
                    "3".to_owned(),
                ));
            }
        }
        membri
    }

    fn convivenza(
        &mut self,
        apr: &mut ScrittoreFile,
        registro: &mut dyn Write,
        residenza: &'t Comune,
        n: u64,
    ) -> io::Result<u64> {
        let id = format!("C{}", self.id());
        let mut membri = Vec::new();
        for i in 0..n {
            let eta = self.eta(60, 95);
            let sesso = if self.rng.random_bool(0.6) {
                Sesso::Femmina
            } else {
                Sesso::Maschio
            };
            let p = self.persona(residenza, sesso, eta, None, false);
            membri.push((p, if i == 0 { "1" } else { "2" }.to_owned()));
        }
        self.scrivi_nucleo(apr, registro, residenza, &membri, &id, false, None, true)?;
        Ok(n)
    }

    #[allow(clippy::too_many_arguments)]
    fn scrivi_nucleo(
        &mut self,
        file: &mut ScrittoreFile,
        registro: &mut dyn Write,
        residenza: &'t Comune,
        membri: &[(Persona, String)],
        id_famiglia: &str,
        aire: bool,
        consolato: Option<usize>,
        inietta: bool,
    ) -> io::Result<()> {
        let convivenza = id_famiglia.starts_with('C');
        let rif = self.cfg.data_estrazione;
        let capo_nascita = membri[0].0.nascita;
        let adulto = capo_nascita
            .checked_add_days(Days::new(18 * 366))
            .unwrap_or(capo_nascita);
        let span = (rif - adulto).num_days().max(1) as u64;
        // A household headed by a minor (a duplicated child) starts at the extraction
        // date at the latest: nothing generated is in the future.
        let mut origine = adulto
            .checked_add_days(Days::new(self.rng.random_range(0..span)))
            .unwrap_or(rif)
            .min(rif);
        // Nobody joins before being born.
        for (p, _) in membri {
            origine = origine.max(p.nascita);
        }
        let specie = nomi::SPECIE[self.rng.random_range(0..nomi::SPECIE.len())];
        let strada = nomi::STRADE[self.rng.random_range(0..nomi::STRADE.len())];
        let numero = self.rng.random_range(1..200);
        let residenza_file =
            |consolato: Option<(&Consolato, &StatoEstero)>,
             stato: Option<&str>,
             codice_consolato: Option<&str>| match consolato {
                None => ResidenzaFile::Italia {
                    cap: "00100".to_owned(),
                    comune_nome: residenza.nome.clone(),
                    istat: residenza.istat.to_string(),
                    sigla: residenza.sigla_provincia.clone(),
                    specie,
                    strada,
                    numero,
                    decorrenza: origine,
                },
                Some((c, s)) => ResidenzaFile::Estero {
                    codice_stato: stato.unwrap_or(&s.istat).to_owned(),
                    descrizione_stato: s.nome.clone(),
                    localita: c.sede.clone(),
                    indirizzo: format!("{strada} {numero}"),
                    consolato: codice_consolato.unwrap_or(&c.codice).to_owned(),
                    descrizione_consolato: format!("{} {}", c.rango, c.sede),
                    decorrenza: origine,
                },
            };
        let mut aggiungi_famiglia = true;
        for (i, (p, relazione)) in membri.iter().enumerate() {
            let mut p = p.clone();
            let mut relazione = relazione.clone();
            let mut ultimo = rif
                .checked_sub_days(Days::new(self.rng.random_range(0..400)))
                .unwrap_or(rif)
                .max(origine);
            let mut in_ae = true;
            let mut stato = None;
            let mut codice_consolato = None;
            let mut legame = Some(());
            let mut duplica_aire = false;
            let mut famiglia_vuota = false;
            let mut famiglia_assente = false;
            let iniezione =
                inietta && self.cfg.anomalie > 0.0 && self.rng.random_bool(self.cfg.anomalie);
            if iniezione {
                let scelte = if aire { ANOMALIE_AIRE } else { ANOMALIE_APR };
                let mut tipo = scelte[self.rng.random_range(0..scelte.len())];
                if tipo == TipoAnomalia::RelazioneSconosciuta && i == 0 {
                    tipo = TipoAnomalia::DataFutura;
                }
                if tipo == TipoAnomalia::DuplicatoComuni && self.cfg.comuni.len() < 2 {
                    tipo = TipoAnomalia::CfAssenteAe;
                }
                // A member of a cohabitation cannot lose a family relationship code.
                if convivenza && tipo == TipoAnomalia::RelazioneSconosciuta {
                    tipo = TipoAnomalia::SessoCf;
                }
                match tipo {
                    TipoAnomalia::SenzaFamiglia => legame = None,
                    TipoAnomalia::DataFutura => {
                        ultimo =
                            NaiveDate::from_ymd_opt(DATA_FUTURA.0, DATA_FUTURA.1, DATA_FUTURA.2)
                                .unwrap_or(rif)
                    }
                    TipoAnomalia::DataNascitaCf => {
                        // Another day of the same month, so only the date disagrees.
                        let d = if p.nascita.day() > 1 {
                            p.nascita.pred_opt()
                        } else {
                            p.nascita.succ_opt()
                        };
                        p.nascita = d.unwrap_or(p.nascita);
                    }
                    TipoAnomalia::SessoCf => {
                        p.sesso = if p.sesso == Sesso::Maschio {
                            Sesso::Femmina
                        } else {
                            Sesso::Maschio
                        }
                    }
                    TipoAnomalia::CfAssenteAe => in_ae = false,
                    TipoAnomalia::RelazioneSconosciuta => {
                        relazione = RELAZIONE_INESISTENTE.to_owned()
                    }
                    TipoAnomalia::FamigliaVuota => famiglia_vuota = true,
                    TipoAnomalia::FamigliaAssente => famiglia_assente = true,
                    TipoAnomalia::DuplicatoAprAire => duplica_aire = true,
                    TipoAnomalia::DuplicatoComuni => self.duplicati_pendenti.push(p.clone()),
                    TipoAnomalia::StatoEsteroSconosciuto => stato = Some(STATO_INESISTENTE),
                    TipoAnomalia::ConsolatoSconosciuto => {
                        codice_consolato = Some(CONSOLATO_INESISTENTE)
                    }
                }
                // A pending cross-municipality duplicate is counted when written.
                if tipo != TipoAnomalia::DuplicatoComuni {
                    self.conta(tipo);
                }
            }
            let original = &membri[i].0;
            // Duplicates (written with `inietta` false) are already in the register.
            if in_ae && inietta {
                self.registra_ae(registro, original, &residenza.istat)?;
            }
            let cons = consolato.map(|c| self.consolati[c]);
            let id_comunale = format!("S{}", self.id());
            let soggetto = SoggettoFile {
                codice_fiscale: Some(p.cf.clone()),
                cognome: p.cognome.to_owned(),
                nome: p.nome.to_owned(),
                sesso: p.sesso,
                nascita: p.nascita,
                luogo: self.luogo_file(&p.luogo),
                aire,
                comune: residenza.istat.clone(),
                id_comunale,
                prima_iscrizione: origine,
                stato_civile: if relazione == "2"
                    || (i == 0 && membri.get(1).is_some_and(|m| m.1 == "2"))
                {
                    "2"
                } else {
                    "1"
                },
                ultimo_aggiornamento: ultimo,
                motivo_iscrizione: (!aire).then_some(if p.nascita == origine { "1" } else { "4" }),
                cittadinanza: p.cittadinanza.clone(),
                residenza: residenza_file(cons, stato, codice_consolato),
                legame: legame.map(|()| LegameFile {
                    id_famiglia: id_famiglia.to_owned(),
                    convivenza,
                    tipo_scheda: if convivenza {
                        "4"
                    } else if aire {
                        "5"
                    } else {
                        "3"
                    },
                    codice: relazione.clone(),
                    decorrenza: origine,
                }),
            };
            file.soggetto(&soggetto)?;
            if famiglia_vuota {
                let id = format!("V{}", self.id());
                file.famiglia(&FamigliaFile {
                    id,
                    comune: residenza.istat.clone(),
                    aire,
                    convivenza: None,
                    origine,
                })?;
            }
            if famiglia_assente {
                // An extra clean resident whose family record is missing from the file.
                let extra = self.persona(residenza, Sesso::Femmina, 40, None, false);
                self.registra_ae(registro, &extra, &residenza.istat)?;
                let id_comunale = format!("S{}", self.id());
                let fam = format!("X{}", self.id());
                file.soggetto(&SoggettoFile {
                    codice_fiscale: Some(extra.cf.clone()),
                    cognome: extra.cognome.to_owned(),
                    nome: extra.nome.to_owned(),
                    sesso: extra.sesso,
                    nascita: extra.nascita,
                    luogo: self.luogo_file(&extra.luogo),
                    aire: false,
                    comune: residenza.istat.clone(),
                    id_comunale,
                    prima_iscrizione: origine,
                    stato_civile: "1",
                    ultimo_aggiornamento: origine,
                    motivo_iscrizione: Some("4"),
                    cittadinanza: extra.cittadinanza.clone(),
                    residenza: residenza_file(None, None, None),
                    legame: Some(LegameFile {
                        id_famiglia: fam,
                        convivenza: false,
                        tipo_scheda: "3",
                        codice: "1".to_owned(),
                        decorrenza: origine,
                    }),
                })?;
            }
            if duplica_aire {
                self.duplicati_aire.push(original.clone());
            }
            if legame.is_none() && membri.len() == 1 {
                // The only member left the family: no family record either (else EF010).
                aggiungi_famiglia = false;
            }
        }
        if aggiungi_famiglia {
            file.famiglia(&FamigliaFile {
                id: id_famiglia.to_owned(),
                comune: residenza.istat.clone(),
                aire,
                convivenza: convivenza.then(|| ("Casa di riposo San Giuseppe".to_owned(), "3")),
                origine,
            })?;
        }
        Ok(())
    }
}
