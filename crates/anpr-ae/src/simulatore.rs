//! The built-in tax-agency simulator: its own register of codes, in memory, shared behind
//! an `Arc` and safe to call from any thread.
//!
//! It answers as the agency does in the operators' manual (seed 000), for the test and
//! pre-onboarding environments, and for tests. Its register holds *positions*: a code with
//! the five personal data, whether it is marked (aligned with a registry record), whether
//! it is being processed, and which newer code replaced it. Positions come from seeding
//! ([`Simulatore::carica_csv`], [`Simulatore::inserisci`]; format in [`crate::seme`]) and
//! from the simulator's own attributions.
//!
//! # Behaviour
//!
//! Two positions are *the same person* when their five data are equal as the agency
//! compares them (see [`DatiAnagraficiAe::differenze`]). Codes that are omocodic
//! variants of one base belong to different people: that is why the agency issued them.
//!
//! - `gestioneCF` 1 (first attribution): if the agency already holds the person, its code
//!   is returned (Validato, W EA002); if it holds them under codes of two families, EAM9C.
//!   Otherwise the code is computed ([`calcola`]); if a position already has it, the next
//!   free omocodic variant in the agency's order is issued (Omocodice). The new position
//!   is marked.
//! - `gestioneCF` 2 (omocode request): the next free omocodic variant (never the base) is
//!   issued to a new position (Omocodice).
//! - `gestioneCF` 0 (verification): same data → Validato and the position is marked;
//!   different data → DatiDifformi with W EAV31 naming the fields and the agency's
//!   values; unknown code → AssenteInAe with W EAV91; a code replaced by a newer one →
//!   Collegato, the newer code and the others, W EAA40.
//! - `gestioneCF` 3: no call; the code stays NonValidato.
//! - A position being processed answers EAM15 to everything but consultation; one with a
//!   non-unifiable twin (seeded, or two current positions of the same person with codes
//!   of different families) answers EAM9C until the codes are linked.
//! - Read-only mode (pre-subentro): attributions, omocodes, resolutions and links answer
//!   EV063; verification and consultation work, and verification marks nothing.
//!
//! Misalignment resolution (M-3.3): "Conferma AE" marks the position and returns the
//! agency's data for the registry to adopt; "Conferma ANPR" rectifies the agency's data
//! with the registry's, refused with EAM93 beyond three changed data, and when the new
//! data give another code issues it and links the old one to it (as the agency does on a
//! 5008 change of generalities); a link joins a numeric provisional code to the person's
//! alphanumeric code under the rules of [`AgenziaEntrate::collega`].

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use anpr_domain::codice_fiscale::{
    calcola, forma_base, livello_omocodia, omocodice, CodiceFiscale, CodiceFiscaleSoggetto,
    DatiCalcolo, ErroreCodiceFiscale,
};
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::{CodiceCatastale, CodiceIstatComune, Sesso};
use anpr_domain::scheda::StatoCodiceFiscale;
use async_trait::async_trait;
use chrono::NaiveDate;

use crate::codici::{self, CODICE_CF_NON_AMMESSO, CODICE_OMOCODICI_ESAURITI};
use crate::collegamento::forme_collegamento;
use crate::errore::ErroreAe;
use crate::seme::{errore_riga, leggi_csv, ErroreSeme, PosizioneSeme, StatoSeme};
use crate::tipi::{
    chiave_nome, con_differenze, DatiAnagraficiAe, EsitoAe, GestioneCf, PosizioneAe, RichiestaAe,
    RichiestaAllineamento, RichiestaCollegamento,
};
use crate::AgenziaEntrate;

/// Most data a variation or link may change (seed 000: "non si differenziano per più di
/// tre dati anagrafici").
pub const MAX_DATI_VARIATI: usize = 3;

/// The simulated agency.
#[derive(Debug, Default)]
pub struct Simulatore {
    registro: Mutex<Registro>,
    sola_lettura: AtomicBool,
}

/// A deliberate discrepancy seeded on a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forzatura {
    NonUnificabile,
    VariazioneBloccata,
}

#[derive(Debug, Clone)]
struct Posizione {
    codice: CodiceFiscaleSoggetto,
    dati: DatiAnagraficiAe,
    marcato: bool,
    in_trattamento: bool,
    forzatura: Option<Forzatura>,
    /// For a replaced code, the person's current code (always the last of the chain).
    attuale: Option<String>,
    /// For a current code, the codes it replaced, oldest first.
    collegati: Vec<String>,
    comune_residenza: Option<CodiceIstatComune>,
}

/// The five data as the agency compares them.
type ChiaveDati = (String, String, Sesso, NaiveDate, CodiceCatastale);

fn chiave(dati: &DatiAnagraficiAe) -> ChiaveDati {
    (
        chiave_nome(&dati.cognome),
        chiave_nome(&dati.nome),
        dati.sesso,
        dati.data_nascita,
        dati.luogo_nascita.clone(),
    )
}

/// Codes of one family are the same code or omocodic variants of one base: issued to
/// different people on purpose. A numeric code is a family of its own.
fn famiglia(codice: &CodiceFiscaleSoggetto) -> String {
    match codice {
        CodiceFiscaleSoggetto::Ordinario(c) => forma_base(c).as_str().to_owned(),
        CodiceFiscaleSoggetto::Provvisorio(p) => p.as_str().to_owned(),
    }
}

fn livello(codice: &CodiceFiscaleSoggetto) -> u8 {
    codice.ordinario().map_or(0, livello_omocodia)
}

#[derive(Debug, Default)]
struct Registro {
    posizioni: HashMap<String, Posizione>,
    per_dati: HashMap<ChiaveDati, Vec<String>>,
}

impl Registro {
    fn inserisci(&mut self, posizione: Posizione) {
        let codice = posizione.codice.as_str().to_owned();
        self.per_dati
            .entry(chiave(&posizione.dati))
            .or_default()
            .push(codice.clone());
        self.posizioni.insert(codice, posizione);
    }

    fn aggiorna_dati(&mut self, codice: &str, dati: DatiAnagraficiAe) {
        let Some(posizione) = self.posizioni.get_mut(codice) else {
            return;
        };
        let vecchia = chiave(&posizione.dati);
        posizione.dati = dati;
        let nuova = chiave(&posizione.dati);
        if let Some(codici) = self.per_dati.get_mut(&vecchia) {
            codici.retain(|c| c != codice);
            if codici.is_empty() {
                self.per_dati.remove(&vecchia);
            }
        }
        self.per_dati
            .entry(nuova)
            .or_default()
            .push(codice.to_owned());
    }

    /// The current positions holding `dati`.
    fn correnti_con_dati(&self, dati: &DatiAnagraficiAe) -> Vec<&Posizione> {
        self.per_dati
            .get(&chiave(dati))
            .into_iter()
            .flatten()
            .filter_map(|c| self.posizioni.get(c))
            .filter(|p| p.attuale.is_none())
            .collect()
    }

    /// The other current positions of the same person under a code of another family:
    /// the agency cannot unify them with `posizione` (EAM9C).
    fn gemelli(&self, posizione: &Posizione) -> Vec<String> {
        let propria = famiglia(&posizione.codice);
        self.correnti_con_dati(&posizione.dati)
            .into_iter()
            .filter(|p| famiglia(&p.codice) != propria)
            .map(|p| p.codice.as_str().to_owned())
            .collect()
    }

    /// EAM9C when `posizione` has a non-unifiable twin.
    fn controlla_gemelli(&self, posizione: &Posizione) -> Result<(), Anomalia> {
        let gemelli = self.gemelli(posizione);
        if posizione.forzatura == Some(Forzatura::NonUnificabile) || !gemelli.is_empty() {
            let mut a = codici::eam9c().campo("codiceFiscale");
            if !gemelli.is_empty() {
                a = a.valore(gemelli.join(","));
            }
            return Err(a);
        }
        Ok(())
    }

    /// The person's codes, oldest first, current one last.
    fn gruppo(&self, attuale: &str) -> Vec<String> {
        let mut codici = self
            .posizioni
            .get(attuale)
            .map(|p| p.collegati.clone())
            .unwrap_or_default();
        codici.push(attuale.to_owned());
        codici
    }

    /// The person's codes other than `codice`.
    fn altri_codici(&self, codice: &str) -> Vec<String> {
        let attuale = self
            .posizioni
            .get(codice)
            .and_then(|p| p.attuale.clone())
            .unwrap_or_else(|| codice.to_owned());
        self.gruppo(&attuale)
            .into_iter()
            .filter(|c| c != codice)
            .collect()
    }

    fn vista(&self, codice: &str) -> Option<PosizioneAe> {
        let p = self.posizioni.get(codice)?;
        Some(PosizioneAe {
            codice_fiscale: codice.to_owned(),
            dati: p.dati.clone(),
            marcato: p.marcato,
            in_trattamento: p.in_trattamento,
            codice_attuale: p.attuale.clone(),
            codici_collegati: self.altri_codici(codice),
            comune_residenza: p.comune_residenza.clone(),
        })
    }

    /// Links the current code `vecchio` (and the codes it replaced) to the current code
    /// `nuovo`: they all point at `nuovo`, which lists them after its own older codes.
    fn collega(&mut self, vecchio: &str, nuovo: &str) {
        let mut spostati = Vec::new();
        if let Some(p) = self.posizioni.get_mut(vecchio) {
            spostati = std::mem::take(&mut p.collegati);
            p.marcato = false;
        }
        spostati.push(vecchio.to_owned());
        for codice in &spostati {
            if let Some(p) = self.posizioni.get_mut(codice) {
                p.attuale = Some(nuovo.to_owned());
            }
        }
        if let Some(p) = self.posizioni.get_mut(nuovo) {
            p.collegati.extend(spostati);
        }
    }

    /// The first code of `base`'s family from variant `da_livello` on that no position
    /// holds (codes are never reissued, not even those replaced).
    fn primo_libero(&self, base: &CodiceFiscale, da_livello: u8) -> Option<CodiceFiscale> {
        (da_livello..=7)
            .filter_map(|l| omocodice(base, l))
            .find(|c| !self.posizioni.contains_key(c.as_str()))
    }

    /// Answer for a code replaced by a newer one.
    fn esito_collegato(&self, codice: &str, attuale: &str) -> EsitoAe {
        EsitoAe {
            codice_fiscale: Some(attuale.to_owned()),
            stato: StatoCodiceFiscale::Collegato,
            codici_collegati: self.altri_codici(attuale),
            anomalie: vec![codici::eaa40().campo("codiceFiscale").valore(codice)],
            dati_ae: self.posizioni.get(attuale).map(|p| p.dati.clone()),
        }
    }

    /// Answer for a current code after a successful write or verification.
    fn esito_attuale(
        &self,
        codice: &str,
        stato: StatoCodiceFiscale,
        anomalie: Vec<Anomalia>,
    ) -> EsitoAe {
        EsitoAe {
            codice_fiscale: Some(codice.to_owned()),
            stato,
            codici_collegati: self.altri_codici(codice),
            anomalie,
            dati_ae: self.posizioni.get(codice).map(|p| p.dati.clone()),
        }
    }

    /// Stores a newly issued code for `dati`, marked.
    fn nuova_posizione(
        &mut self,
        codice: CodiceFiscale,
        dati: &DatiAnagraficiAe,
        comune: &CodiceIstatComune,
    ) -> StatoCodiceFiscale {
        self.inserisci(Posizione {
            codice: codice.into(),
            dati: dati.clone(),
            marcato: true,
            in_trattamento: false,
            forzatura: None,
            attuale: None,
            collegati: Vec::new(),
            comune_residenza: Some(comune.clone()),
        });
        if livello_omocodia(&codice) == 0 {
            StatoCodiceFiscale::Validato
        } else {
            StatoCodiceFiscale::Omocodice
        }
    }
}

/// The coded anomaly for a code that cannot be read, or data no code can be computed
/// from (the same mapping as the registry's own codice fiscale checks).
pub(crate) fn anomalia_cf(campo: &str, valore: &str, errore: &ErroreCodiceFiscale) -> Anomalia {
    let atteso = match errore {
        ErroreCodiceFiscale::NessunaLettera { .. }
        | ErroreCodiceFiscale::CarattereNonTraslitterabile { .. } => {
            "almeno una lettera dell'alfabeto latino (anche accentata)"
        }
        _ => {
            "un codice fiscale di 16 caratteri (o provvisorio numerico di 11) con carattere di \
             controllo corretto"
        }
    };
    Anomalia::errore(
        errore.codice_anpr().unwrap_or(errore.code()),
        errore.to_string(),
    )
    .campo(campo)
    .valore(valore)
    .atteso(atteso)
}

/// Reads a code sent by the registry.
fn leggi_codice(campo: &str, testo: &str) -> Result<CodiceFiscaleSoggetto, Anomalia> {
    testo
        .trim()
        .parse::<CodiceFiscaleSoggetto>()
        .map_err(|e| anomalia_cf(campo, testo, &e))
}

/// Computes the base code of `dati`.
fn codice_base(dati: &DatiAnagraficiAe) -> Result<CodiceFiscale, Anomalia> {
    calcola(&DatiCalcolo {
        cognome: &dati.cognome,
        nome: &dati.nome,
        sesso: dati.sesso,
        data_nascita: dati.data_nascita,
        luogo_nascita: &dati.luogo_nascita,
    })
    .map_err(|e| {
        let campo = match &e {
            ErroreCodiceFiscale::NessunaLettera { campo }
            | ErroreCodiceFiscale::CarattereNonTraslitterabile { campo, .. } => {
                format!("dati.{campo}")
            }
            _ => "dati.luogoNascita".to_owned(),
        };
        let valore = if campo == "dati.cognome" {
            dati.cognome.as_str()
        } else if campo == "dati.nome" {
            dati.nome.as_str()
        } else {
            dati.luogo_nascita.as_str()
        };
        anomalia_cf(&campo, valore, &e)
    })
}

impl Simulatore {
    /// An empty register, writable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read-only mode (pre-subentro): writes answer EV063.
    pub fn imposta_sola_lettura(&self, sola_lettura: bool) {
        self.sola_lettura.store(sola_lettura, Ordering::SeqCst);
    }

    pub fn in_sola_lettura(&self) -> bool {
        self.sola_lettura.load(Ordering::SeqCst)
    }

    fn registro(&self) -> MutexGuard<'_, Registro> {
        // The register's invariants hold between statements that cannot panic, so a
        // poisoned lock (a panic elsewhere while holding it) leaves it usable.
        self.registro
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Number of positions (replaced codes included).
    pub fn len(&self) -> usize {
        self.registro().posizioni.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one position (see [`Simulatore::carica`]).
    pub fn inserisci(&self, posizione: PosizioneSeme) -> Result<(), ErroreSeme> {
        self.carica("(programma)", vec![(0, posizione)]).map(|_| ())
    }

    /// Reads a CSV file of positions (format in [`crate::seme`]) and loads it.
    pub fn carica_csv_file(&self, percorso: &Path) -> Result<usize, ErroreSeme> {
        let nome = percorso.display().to_string();
        let file = std::fs::File::open(percorso).map_err(|e| ErroreSeme::Lettura {
            file: nome.clone(),
            dettaglio: e.to_string(),
        })?;
        self.carica_csv(&nome, std::io::BufReader::new(file))
    }

    /// Reads CSV positions from `input` (named `file` in errors) and loads them.
    pub fn carica_csv(&self, file: &str, input: impl BufRead) -> Result<usize, ErroreSeme> {
        let righe = leggi_csv(file, input)?;
        self.carica(file, righe)
    }

    /// Loads positions, each with the line it came from (0 when built in code): all or
    /// none. Refused: a code already present, a link to a code neither loaded nor present,
    /// a link of a code to itself or in a cycle, a replaced code marked.
    pub fn carica(
        &self,
        file: &str,
        posizioni: Vec<(usize, PosizioneSeme)>,
    ) -> Result<usize, ErroreSeme> {
        let mut registro = self.registro();
        let mut nuove: HashMap<String, usize> = HashMap::with_capacity(posizioni.len());
        for (indice, (riga, p)) in posizioni.iter().enumerate() {
            let codice = p.codice_fiscale.as_str();
            if registro.posizioni.contains_key(codice) || nuove.contains_key(codice) {
                return Err(errore_riga(
                    file,
                    *riga,
                    "codice_fiscale",
                    codice,
                    "codice fiscale già presente nel registro simulato",
                    "un codice non ancora caricato",
                ));
            }
            nuove.insert(codice.to_owned(), indice);
        }
        for (riga, p) in &posizioni {
            let Some(collegato) = &p.collegato_a else {
                continue;
            };
            let destinazione = collegato.as_str();
            let errore = |testo: &str, atteso: &str| {
                errore_riga(file, *riga, "collegato_a", destinazione, testo, atteso)
            };
            if destinazione == p.codice_fiscale.as_str() {
                return Err(errore(
                    "codice collegato a sé stesso",
                    "un altro codice della stessa persona",
                ));
            }
            if !nuove.contains_key(destinazione) && !registro.posizioni.contains_key(destinazione) {
                return Err(errore(
                    "codice collegato sconosciuto",
                    "un codice presente nel file o già nel registro simulato",
                ));
            }
            if p.stato == StatoSeme::Marcato {
                return Err(errore_riga(
                    file,
                    *riga,
                    "stato",
                    StatoSeme::Marcato.codice(),
                    "un codice sostituito da un altro non può essere marcato",
                    "non_marcato",
                ));
            }
        }
        // Resolves every new link to the final code, refusing cycles among the new rows
        // (positions already loaded point at their current code, so they end a chain).
        let mut finali: Vec<Option<String>> = Vec::with_capacity(posizioni.len());
        for (riga, p) in &posizioni {
            let mut corrente = p.collegato_a.map(|c| c.as_str().to_owned());
            let mut passi = 0usize;
            while let Some(codice) = corrente.clone() {
                match nuove.get(&codice) {
                    Some(&i) => match &posizioni[i].1.collegato_a {
                        Some(prossimo) => corrente = Some(prossimo.as_str().to_owned()),
                        None => break,
                    },
                    None => {
                        corrente = registro
                            .posizioni
                            .get(&codice)
                            .and_then(|p| p.attuale.clone())
                            .or(Some(codice));
                        break;
                    }
                }
                passi += 1;
                if passi > posizioni.len() {
                    return Err(errore_riga(
                        file,
                        *riga,
                        "collegato_a",
                        p.collegato_a
                            .map(|c| c.to_string())
                            .as_deref()
                            .unwrap_or(""),
                        "collegamenti circolari",
                        "una catena di codici che termina nel codice attuale",
                    ));
                }
            }
            finali.push(corrente);
        }
        let quante = posizioni.len();
        let mut collegamenti = Vec::new();
        for ((_, p), finale) in posizioni.into_iter().zip(finali) {
            let codice = p.codice_fiscale.as_str().to_owned();
            registro.inserisci(Posizione {
                codice: p.codice_fiscale,
                dati: p.dati,
                marcato: p.stato == StatoSeme::Marcato,
                in_trattamento: p.in_trattamento,
                forzatura: match p.stato {
                    StatoSeme::NonUnificabile => Some(Forzatura::NonUnificabile),
                    StatoSeme::VariazioneBloccata => Some(Forzatura::VariazioneBloccata),
                    StatoSeme::Marcato | StatoSeme::NonMarcato => None,
                },
                attuale: None,
                collegati: Vec::new(),
                comune_residenza: p.comune_residenza,
            });
            if let Some(finale) = finale {
                collegamenti.push((codice, finale));
            }
        }
        for (codice, finale) in collegamenti {
            if let Some(p) = registro.posizioni.get_mut(&codice) {
                p.attuale = Some(finale.clone());
            }
            if let Some(p) = registro.posizioni.get_mut(&finale) {
                p.collegati.push(codice);
            }
        }
        Ok(quante)
    }

    /// Starts or ends the processing of a position (EAM15 meanwhile). Returns whether the
    /// code is in the register.
    pub fn imposta_in_trattamento(&self, codice_fiscale: &str, in_trattamento: bool) -> bool {
        let mut registro = self.registro();
        let codice = codice_fiscale.trim().to_ascii_uppercase();
        match registro.posizioni.get_mut(&codice) {
            Some(p) => {
                p.in_trattamento = in_trattamento;
                true
            }
            None => false,
        }
    }

    /// The position of `codice_fiscale`, as the agency's consultation shows it. A code
    /// that cannot be read is simply not in the register.
    pub fn posizione(&self, codice_fiscale: &str) -> Option<PosizioneAe> {
        let codice = codice_fiscale
            .trim()
            .parse::<CodiceFiscaleSoggetto>()
            .ok()?;
        self.registro().vista(codice.as_str())
    }

    /// For each code, whether a position exists ([`AgenziaEntrate::presenti`]): one
    /// lock for the whole batch.
    pub fn presenza(&self, codici: &[String]) -> Vec<bool> {
        let registro = self.registro();
        codici
            .iter()
            .map(|c| {
                c.trim()
                    .parse::<CodiceFiscaleSoggetto>()
                    .is_ok_and(|c| registro.posizioni.contains_key(c.as_str()))
            })
            .collect()
    }

    /// Answers a call on registration or change (see the module documentation).
    pub fn esegui_valida(&self, req: &RichiestaAe) -> EsitoAe {
        match req.gestione {
            GestioneCf::NessunaChiamata => EsitoAe::senza_chiamata(req),
            GestioneCf::Verifica => self.verifica(req),
            GestioneCf::PrimaAttribuzione | GestioneCf::RichiestaOmocodice => self.attribuisci(req),
        }
    }

    fn verifica(&self, req: &RichiestaAe) -> EsitoAe {
        let Some(testo) = req.codice_fiscale.as_deref() else {
            return EsitoAe::rifiuto(
                None,
                Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    "Codice fiscale obbligatorio per la verifica (gestioneCF 0)",
                )
                .campo("codiceFiscale")
                .atteso("il codice fiscale presente nella scheda"),
            );
        };
        let codice = match leggi_codice("codiceFiscale", testo) {
            Ok(c) => c,
            Err(a) => return EsitoAe::rifiuto(Some(testo.to_owned()), a),
        };
        let codice = codice.as_str();
        let mut registro = self.registro();
        let Some(posizione) = registro.posizioni.get(codice).cloned() else {
            return EsitoAe {
                codice_fiscale: Some(codice.to_owned()),
                stato: StatoCodiceFiscale::AssenteInAe,
                codici_collegati: Vec::new(),
                anomalie: vec![codici::eav91().campo("codiceFiscale").valore(codice)],
                dati_ae: None,
            };
        };
        if let Err(a) = in_trattamento(&registro, &posizione) {
            return EsitoAe::rifiuto(Some(codice.to_owned()), a);
        }
        if let Some(attuale) = &posizione.attuale {
            return registro.esito_collegato(codice, attuale);
        }
        if let Err(a) = registro.controlla_gemelli(&posizione) {
            return EsitoAe::rifiuto(Some(codice.to_owned()), a);
        }
        let diverse = req.dati.differenze(&posizione.dati);
        if !diverse.is_empty() {
            let a = con_differenze(codici::eav31(), &diverse, &posizione.dati);
            return registro.esito_attuale(codice, StatoCodiceFiscale::DatiDifformi, vec![a]);
        }
        if !self.in_sola_lettura() {
            if let Some(p) = registro.posizioni.get_mut(codice) {
                p.marcato = true;
                p.comune_residenza = Some(req.comune.clone());
            }
        }
        registro.esito_attuale(codice, StatoCodiceFiscale::Validato, Vec::new())
    }

    fn attribuisci(&self, req: &RichiestaAe) -> EsitoAe {
        if self.in_sola_lettura() {
            return EsitoAe::rifiuto(None, codici::sola_lettura().campo("gestioneCF"));
        }
        if let Some(testo) = &req.codice_fiscale {
            return EsitoAe::rifiuto(
                Some(testo.clone()),
                Anomalia::errore(
                    CODICE_CF_NON_AMMESSO,
                    format!(
                        "Codice fiscale non ammesso con gestioneCF {}: il codice è attribuito \
                         dall'Agenzia delle Entrate",
                        req.gestione
                    ),
                )
                .campo("codiceFiscale")
                .valore(testo.as_str())
                .atteso("nessun codice fiscale con gestioneCF 1 o 2"),
            );
        }
        let base = match codice_base(&req.dati) {
            Ok(b) => b,
            Err(a) => return EsitoAe::rifiuto(None, a),
        };
        let mut registro = self.registro();
        let da_livello = if req.gestione == GestioneCf::PrimaAttribuzione {
            let mut esistenti: Vec<Posizione> = registro
                .correnti_con_dati(&req.dati)
                .into_iter()
                .cloned()
                .collect();
            if !esistenti.is_empty() {
                return self.restituisci_esistente(&mut registro, &mut esistenti, req);
            }
            0
        } else {
            1
        };
        let Some(codice) = registro.primo_libero(&base, da_livello) else {
            return EsitoAe::rifiuto(
                None,
                Anomalia::errore(
                    CODICE_OMOCODICI_ESAURITI,
                    "Tutte le varianti di omocodia del codice fiscale sono già attribuite",
                )
                .campo("dati")
                .valore(base.as_str())
                .atteso(format!(
                    "rivolgersi all'Agenzia delle Entrate ({})",
                    codici::CASELLA_ARCHIVIO_ANAGRAFICO
                )),
            );
        };
        let stato = registro.nuova_posizione(codice, &req.dati, &req.comune);
        registro.esito_attuale(codice.as_str(), stato, Vec::new())
    }

    /// First attribution for a person the agency already holds: their code, unless it is
    /// being processed or held under two families (EAM9C).
    fn restituisci_esistente(
        &self,
        registro: &mut Registro,
        esistenti: &mut [Posizione],
        req: &RichiestaAe,
    ) -> EsitoAe {
        if let Some(p) = esistenti.iter().find(|p| p.in_trattamento) {
            return EsitoAe::rifiuto(
                None,
                codici::eam15()
                    .campo("codiceFiscale")
                    .valore(p.codice.as_str()),
            );
        }
        let famiglie: std::collections::BTreeSet<String> =
            esistenti.iter().map(|p| famiglia(&p.codice)).collect();
        let forzata = esistenti
            .iter()
            .any(|p| p.forzatura == Some(Forzatura::NonUnificabile));
        if famiglie.len() > 1 || forzata {
            let codici_esistenti: Vec<&str> = esistenti.iter().map(|p| p.codice.as_str()).collect();
            return EsitoAe::rifiuto(
                None,
                codici::eam9c()
                    .campo("dati")
                    .valore(codici_esistenti.join(",")),
            );
        }
        // Same family: the earliest code (the base before its variants) is the person's.
        esistenti.sort_by_key(|p| (livello(&p.codice), p.codice.as_str().to_owned()));
        let codice = esistenti[0].codice.as_str().to_owned();
        if let Some(p) = registro.posizioni.get_mut(&codice) {
            p.marcato = true;
            p.comune_residenza = Some(req.comune.clone());
        }
        let a = codici::ea002()
            .campo("codiceFiscale")
            .valore(codice.as_str());
        registro.esito_attuale(&codice, StatoCodiceFiscale::Validato, vec![a])
    }

    /// The checks shared by both resolutions: writable, readable code, present, not being
    /// processed, unifiable. `Ok(Err(esito))` is a final answer (a replaced code).
    fn prepara_allineamento(
        &self,
        registro: &Registro,
        req: &RichiestaAllineamento,
    ) -> Result<Result<Posizione, EsitoAe>, EsitoAe> {
        let testo = &req.codice_fiscale;
        if self.in_sola_lettura() {
            return Err(EsitoAe::rifiuto(
                Some(testo.clone()),
                codici::sola_lettura(),
            ));
        }
        let codice = leggi_codice("codiceFiscale", testo)
            .map_err(|a| EsitoAe::rifiuto(Some(testo.clone()), a))?;
        let codice = codice.as_str();
        let posizione = registro.posizioni.get(codice).cloned().ok_or_else(|| {
            EsitoAe::rifiuto(
                Some(codice.to_owned()),
                assente_bloccante("codiceFiscale", codice),
            )
        })?;
        in_trattamento(registro, &posizione)
            .map_err(|a| EsitoAe::rifiuto(Some(codice.to_owned()), a))?;
        if let Some(attuale) = &posizione.attuale {
            return Ok(Err(registro.esito_collegato(codice, attuale)));
        }
        registro
            .controlla_gemelli(&posizione)
            .map_err(|a| EsitoAe::rifiuto(Some(codice.to_owned()), a))?;
        Ok(Ok(posizione))
    }

    /// "Conferma AE": the registry adopts the agency's data; the position is marked.
    pub fn esegui_conferma_dati_ae(&self, req: &RichiestaAllineamento) -> EsitoAe {
        let mut registro = self.registro();
        let posizione = match self.prepara_allineamento(&registro, req) {
            Ok(Ok(p)) => p,
            Ok(Err(esito)) | Err(esito) => return esito,
        };
        let codice = posizione.codice.as_str();
        if let Some(p) = registro.posizioni.get_mut(codice) {
            p.marcato = true;
            p.comune_residenza = Some(req.comune.clone());
        }
        registro.esito_attuale(codice, StatoCodiceFiscale::Validato, Vec::new())
    }

    /// "Conferma ANPR": the agency's data are rectified with the registry's.
    pub fn esegui_conferma_dati_anpr(&self, req: &RichiestaAllineamento) -> EsitoAe {
        let mut registro = self.registro();
        let posizione = match self.prepara_allineamento(&registro, req) {
            Ok(Ok(p)) => p,
            Ok(Err(esito)) | Err(esito) => return esito,
        };
        let codice = posizione.codice.as_str().to_owned();
        let rifiuto = |a: Anomalia| EsitoAe::rifiuto(Some(codice.clone()), a);
        if posizione.forzatura == Some(Forzatura::VariazioneBloccata) {
            return rifiuto(
                codici::eam93()
                    .campo("codiceFiscale")
                    .valore(codice.as_str()),
            );
        }
        let diverse = req.dati.differenze(&posizione.dati);
        if diverse.len() > MAX_DATI_VARIATI {
            return rifiuto(con_differenze(codici::eam93(), &diverse, &posizione.dati));
        }
        let nuova_base = match codice_base(&req.dati) {
            Ok(b) => b,
            Err(a) => return rifiuto(a),
        };
        let stessa_famiglia = posizione
            .codice
            .ordinario()
            .is_some_and(|c| forma_base(c) == nuova_base);
        if diverse.is_empty() || stessa_famiglia {
            registro.aggiorna_dati(&codice, req.dati.clone());
            if let Some(p) = registro.posizioni.get_mut(&codice) {
                p.marcato = true;
                p.comune_residenza = Some(req.comune.clone());
            }
            return registro.esito_attuale(&codice, StatoCodiceFiscale::Validato, Vec::new());
        }
        // The new data give another code. If the agency already holds the person under
        // the new data, the two positions cannot be unified by a rectification.
        let gia_presenti: Vec<String> = registro
            .correnti_con_dati(&req.dati)
            .into_iter()
            .map(|p| p.codice.as_str().to_owned())
            .filter(|c| *c != codice)
            .collect();
        if !gia_presenti.is_empty() {
            return rifiuto(codici::eam9c().campo("dati").valore(gia_presenti.join(",")));
        }
        let Some(nuovo) = registro.primo_libero(&nuova_base, 0) else {
            return rifiuto(
                Anomalia::errore(
                    CODICE_OMOCODICI_ESAURITI,
                    "Tutte le varianti di omocodia del codice fiscale sono già attribuite",
                )
                .campo("dati")
                .valore(nuova_base.as_str()),
            );
        };
        let stato = registro.nuova_posizione(nuovo, &req.dati, &req.comune);
        registro.collega(&codice, nuovo.as_str());
        registro.esito_attuale(nuovo.as_str(), stato, Vec::new())
    }

    /// Links a numeric provisional code to the person's alphanumeric code (see
    /// [`AgenziaEntrate::collega`]).
    pub fn esegui_collega(&self, req: &RichiestaCollegamento) -> EsitoAe {
        let rifiuto = |a: Anomalia| EsitoAe::rifiuto(Some(req.codice_anpr.clone()), a);
        if self.in_sola_lettura() {
            return rifiuto(codici::sola_lettura());
        }
        let (numerico, alfanumerico) = match forme_collegamento(req) {
            Ok(forme) => forme,
            Err(a) => return rifiuto(a),
        };
        let (numerico, alfanumerico) = (numerico.as_str(), alfanumerico.as_str());
        let mut registro = self.registro();
        let Some(pos_num) = registro.posizioni.get(numerico).cloned() else {
            return rifiuto(assente_bloccante("codiceAnpr", numerico));
        };
        let Some(pos_alfa) = registro.posizioni.get(alfanumerico).cloned() else {
            return rifiuto(assente_bloccante("codiceAe", alfanumerico));
        };
        for p in [&pos_num, &pos_alfa] {
            if let Err(a) = in_trattamento(&registro, p) {
                return rifiuto(a);
            }
        }
        for (campo, p) in [("codiceAnpr", &pos_num), ("codiceAe", &pos_alfa)] {
            if let Some(attuale) = &p.attuale {
                return rifiuto(
                    Anomalia::errore(
                        codici::CODICE_COLLEGAMENTO_FORMA,
                        format!("Codice fiscale già collegato al codice {attuale}"),
                    )
                    .campo(campo)
                    .valore(p.codice.as_str())
                    .atteso("un codice fiscale attuale, non sostituito da altri"),
                );
            }
        }
        if pos_alfa.marcato {
            return rifiuto(
                Anomalia::errore(
                    codici::CODICE_COLLEGAMENTO_AE_MARCATO,
                    "Il codice fiscale in Agenzia delle Entrate è marcato: collegamento non \
                     consentito",
                )
                .campo("codiceAe")
                .valore(alfanumerico)
                .atteso("un codice fiscale corretto e non marcato in Agenzia delle Entrate"),
            );
        }
        for (campo, p) in [("codiceAnpr", &pos_num), ("codiceAe", &pos_alfa)] {
            if p.forzatura == Some(Forzatura::VariazioneBloccata) {
                return rifiuto(codici::eam93().campo(campo).valore(p.codice.as_str()));
            }
        }
        let diverse = pos_num.dati.differenze(&pos_alfa.dati);
        if diverse.len() > MAX_DATI_VARIATI {
            return rifiuto(con_differenze(codici::eam93(), &diverse, &pos_alfa.dati));
        }
        if let Some(residenza) = &pos_alfa.comune_residenza {
            if *residenza != req.comune {
                return rifiuto(codici::eam93().campo("comune").valore(residenza.as_str()));
            }
        }
        registro.collega(numerico, alfanumerico);
        for codice in [numerico, alfanumerico] {
            if let Some(p) = registro.posizioni.get_mut(codice) {
                if p.forzatura == Some(Forzatura::NonUnificabile) {
                    p.forzatura = None;
                }
            }
        }
        if let Some(p) = registro.posizioni.get_mut(alfanumerico) {
            p.marcato = true;
            p.comune_residenza = Some(req.comune.clone());
        }
        registro.esito_attuale(alfanumerico, StatoCodiceFiscale::Validato, Vec::new())
    }
}

/// EAV91 where the code is the object of the operation, so nothing can proceed.
fn assente_bloccante(campo: &str, codice: &str) -> Anomalia {
    let mut a = codici::eav91().campo(campo).valore(codice);
    a.gravita = anpr_domain::error::Gravita::Errore;
    a
}

/// EAM15 when the position, or the person's current position, is being processed.
fn in_trattamento(registro: &Registro, posizione: &Posizione) -> Result<(), Anomalia> {
    let attuale_in_trattamento = posizione
        .attuale
        .as_ref()
        .and_then(|c| registro.posizioni.get(c))
        .is_some_and(|p| p.in_trattamento);
    if posizione.in_trattamento || attuale_in_trattamento {
        return Err(codici::eam15()
            .campo("codiceFiscale")
            .valore(posizione.codice.as_str()));
    }
    Ok(())
}

#[async_trait]
impl AgenziaEntrate for Simulatore {
    async fn valida(&self, req: &RichiestaAe) -> Result<EsitoAe, ErroreAe> {
        Ok(self.esegui_valida(req))
    }

    async fn consulta(&self, codice_fiscale: &str) -> Result<Option<PosizioneAe>, ErroreAe> {
        Ok(self.posizione(codice_fiscale))
    }

    async fn conferma_dati_ae(&self, req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe> {
        Ok(self.esegui_conferma_dati_ae(req))
    }

    async fn conferma_dati_anpr(&self, req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe> {
        Ok(self.esegui_conferma_dati_anpr(req))
    }

    async fn collega(&self, req: &RichiestaCollegamento) -> Result<EsitoAe, ErroreAe> {
        Ok(self.esegui_collega(req))
    }

    fn sola_lettura(&self) -> bool {
        self.in_sola_lettura()
    }

    /// One lock for the whole batch, no position built.
    async fn presenti(&self, codici: &[String]) -> Result<Vec<bool>, ErroreAe> {
        Ok(self.presenza(codici))
    }
}
