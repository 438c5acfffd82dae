//! Streaming writer of one subentro file.
//!
//! Records are written as they are generated into a temporary body file while the
//! totals are counted; [`ScrittoreFile::chiudi`] then writes the real file: the
//! `datiFornitura`/`datiInvio` header (which comes first in the XSD but can only be
//! known at the end) followed by the body. Element order follows `subentro.xsd`
//! exactly; text is escaped and restricted to the characters the XSD patterns admit.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anpr_domain::ids::{CodiceIstatComune, Sesso};
use chrono::NaiveDate;

/// Root namespace of the subentro file (children are unqualified).
pub(crate) const NAMESPACE: &str = "http://sogei.it/ANPR/subentro";

pub(crate) enum LuogoNascita {
    Comune {
        nome: String,
        istat: String,
        sigla: String,
    },
    Estero {
        descrizione: String,
        codice: String,
    },
}

pub(crate) enum ResidenzaFile {
    Italia {
        cap: String,
        comune_nome: String,
        istat: String,
        sigla: String,
        specie: &'static str,
        strada: &'static str,
        numero: u32,
        decorrenza: NaiveDate,
    },
    Estero {
        codice_stato: String,
        descrizione_stato: String,
        localita: String,
        indirizzo: String,
        consolato: String,
        descrizione_consolato: String,
        decorrenza: NaiveDate,
    },
}

pub(crate) struct LegameFile {
    pub id_famiglia: String,
    pub convivenza: bool,
    /// `3` family, `4` cohabitation, `5` AIRE family (`tipoScheda`).
    pub tipo_scheda: &'static str,
    pub codice: String,
    pub decorrenza: NaiveDate,
}

pub(crate) struct SoggettoFile {
    pub codice_fiscale: Option<String>,
    pub cognome: String,
    pub nome: String,
    pub sesso: Sesso,
    pub nascita: NaiveDate,
    pub luogo: LuogoNascita,
    pub aire: bool,
    pub comune: CodiceIstatComune,
    pub id_comunale: String,
    pub prima_iscrizione: NaiveDate,
    pub stato_civile: &'static str,
    pub ultimo_aggiornamento: NaiveDate,
    pub motivo_iscrizione: Option<&'static str>,
    pub cittadinanza: (String, String),
    pub residenza: ResidenzaFile,
    pub legame: Option<LegameFile>,
}

pub(crate) struct FamigliaFile {
    pub id: String,
    pub comune: CodiceIstatComune,
    pub aire: bool,
    /// Name and kind (table "Specie convivenza") of a cohabitation.
    pub convivenza: Option<(String, &'static str)>,
    pub origine: NaiveDate,
}

/// Counted totals of one file (the `datiInvio` counters).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totali {
    pub soggetti: u64,
    pub italiani: u64,
    pub non_italiani: u64,
    pub femmine: u64,
    pub maschi: u64,
    pub famiglie: u64,
    pub convivenze: u64,
}

pub(crate) struct ScrittoreFile {
    path: PathBuf,
    corpo_path: PathBuf,
    corpo: BufWriter<File>,
    pub totali: Totali,
    /// Families and cohabitations are written after all subjects (XSD order): they are
    /// buffered as their own temporary sections.
    famiglie: BufWriter<File>,
    famiglie_path: PathBuf,
    convivenze: BufWriter<File>,
    convivenze_path: PathBuf,
}

fn temporaneo(path: &Path, suffisso: &str) -> io::Result<(PathBuf, BufWriter<File>)> {
    let p = path.with_extension(format!("xml.{suffisso}.tmp"));
    let f = File::create(&p)?;
    Ok((p, BufWriter::with_capacity(1 << 16, f)))
}

impl ScrittoreFile {
    pub(crate) fn nuovo(path: &Path) -> io::Result<Self> {
        let (corpo_path, corpo) = temporaneo(path, "soggetti")?;
        let (famiglie_path, famiglie) = temporaneo(path, "famiglie")?;
        let (convivenze_path, convivenze) = temporaneo(path, "convivenze")?;
        Ok(Self {
            path: path.to_owned(),
            corpo_path,
            corpo,
            totali: Totali::default(),
            famiglie,
            famiglie_path,
            convivenze,
            convivenze_path,
        })
    }

    pub(crate) fn soggetto(&mut self, s: &SoggettoFile) -> io::Result<()> {
        let t = &mut self.totali;
        t.soggetti += 1;
        if s.cittadinanza.0 == "100" {
            t.italiani += 1;
        } else {
            t.non_italiani += 1;
        }
        match s.sesso {
            Sesso::Femmina => t.femmine += 1,
            Sesso::Maschio => t.maschi += 1,
        }
        let w = &mut self.corpo;
        w.write_all(b"<soggetto><generalitaSubIscr>")?;
        if let Some(cf) = &s.codice_fiscale {
            write!(
                w,
                "<codiceFiscale><codFiscale>{cf}</codFiscale></codiceFiscale>"
            )?;
        }
        write!(
            w,
            "<cognome>{}</cognome><nome>{}</nome><sesso>{}</sesso><dataNascita>{}</dataNascita><luogoNascita>",
            Testo(&s.cognome),
            Testo(&s.nome),
            s.sesso.code(),
            s.nascita
        )?;
        match &s.luogo {
            LuogoNascita::Comune { nome, istat, sigla } => write!(
                w,
                "<comune><nomeComune>{}</nomeComune><codiceIstat>{istat}</codiceIstat><siglaProvinciaIstat>{sigla}</siglaProvinciaIstat></comune>",
                Testo(nome)
            )?,
            LuogoNascita::Estero { descrizione, codice } => write!(
                w,
                "<localita><descrizioneStato>{}</descrizioneStato><codiceStato>{codice}</codiceStato></localita>",
                Testo(descrizione)
            )?,
        }
        w.write_all(b"</luogoNascita>")?;
        if s.aire {
            w.write_all(b"<soggettoAIRE>S</soggettoAIRE>")?;
        }
        write!(
            w,
            "<idSchedaSoggettoComune><idSchedaSoggettoComuneIstat>{}</idSchedaSoggettoComuneIstat><idSchedaSoggetto>{}</idSchedaSoggetto></idSchedaSoggettoComune><dataPrimaIscrizioneComune>{}</dataPrimaIscrizioneComune></generalitaSubIscr>",
            s.comune, s.id_comunale, s.prima_iscrizione
        )?;
        write!(
            w,
            "<statoCivile><statoCivile>{}</statoCivile></statoCivile><dataUltimoAggiornamento>{}</dataUltimoAggiornamento>",
            s.stato_civile, s.ultimo_aggiornamento
        )?;
        if let Some(m) = s.motivo_iscrizione {
            write!(w, "<motivoIscrizioneAPR>{m}</motivoIscrizioneAPR>")?;
        }
        write!(
            w,
            "<cittadinanza><descrizioneStato>{}</descrizioneStato><codiceStato>{}</codiceStato></cittadinanza>",
            Testo(&s.cittadinanza.1),
            s.cittadinanza.0
        )?;
        match &s.residenza {
            ResidenzaFile::Italia {
                cap,
                comune_nome,
                istat,
                sigla,
                specie,
                strada,
                numero,
                decorrenza,
            } => write!(
                w,
                "<residenza><tipoIndirizzo>1</tipoIndirizzo><indirizzo><cap>{cap}</cap><comune><nomeComune>{}</nomeComune><codiceIstat>{istat}</codiceIstat><siglaProvinciaIstat>{sigla}</siglaProvinciaIstat></comune><toponimo><specie>{specie}</specie><denominazioneToponimo>{}</denominazioneToponimo></toponimo><numeroCivico><numero>{numero}</numero></numeroCivico></indirizzo><dataDecorrenzaResidenza>{decorrenza}</dataDecorrenzaResidenza></residenza>",
                Testo(comune_nome),
                Testo(strada)
            )?,
            ResidenzaFile::Estero {
                codice_stato,
                descrizione_stato,
                localita,
                indirizzo,
                consolato,
                descrizione_consolato,
                decorrenza,
            } => write!(
                w,
                "<residenza><tipoIndirizzo>4</tipoIndirizzo><localitaEstera><indirizzoEstero><localita><descrizioneLocalita>{}</descrizioneLocalita><descrizioneStato>{}</descrizioneStato><codiceStato>{codice_stato}</codiceStato></localita><toponimo><denominazione>{}</denominazione></toponimo></indirizzoEstero><consolato><codiceConsolato>{consolato}</codiceConsolato><descrizioneConsolato>{}</descrizioneConsolato></consolato></localitaEstera><dataDecorrenzaResidenza>{decorrenza}</dataDecorrenzaResidenza></residenza>",
                Testo(localita),
                Testo(descrizione_stato),
                Testo(indirizzo),
                Testo(descrizione_consolato)
            )?,
        }
        if let Some(l) = &s.legame {
            let tag = if l.convivenza {
                "convivenza"
            } else {
                "famiglia"
            };
            write!(
                w,
                "<{tag}><idFamConvComune>{}</idFamConvComune><legameSoggetto><tipoLegame>{}</tipoLegame><dataDecorrenza>{}</dataDecorrenza><codiceLegame>{}</codiceLegame></legameSoggetto></{tag}>",
                l.id_famiglia, l.tipo_scheda, l.decorrenza, l.codice
            )?;
        }
        w.write_all(b"</soggetto>\n")
    }

    pub(crate) fn famiglia(&mut self, f: &FamigliaFile) -> io::Result<()> {
        let (w, tag, tipo) = match (&f.convivenza, f.aire) {
            (Some(_), _) => {
                self.totali.convivenze += 1;
                (&mut self.convivenze, "convivenza", "4")
            }
            (None, aire) => {
                self.totali.famiglie += 1;
                (&mut self.famiglie, "famiglia", if aire { "5" } else { "3" })
            }
        };
        write!(
            w,
            "<{tag}><idFamigliaConvivenzaComune><idFamigliaConvivenzaComuneIstat>{}</idFamigliaConvivenzaComuneIstat><idFamigliaConvivenza>{}</idFamigliaConvivenza></idFamigliaConvivenzaComune><famigliaAire>{}</famigliaAire><dataOrigineFamigliaConvivenza>{}</dataOrigineFamigliaConvivenza>",
            f.comune,
            f.id,
            if f.aire { "S" } else { "N" },
            f.origine
        )?;
        if let Some((nome, specie)) = &f.convivenza {
            write!(
                w,
                "<denominazioneConvivenza>{}</denominazioneConvivenza><specieConvivenza>{specie}</specieConvivenza>",
                Testo(nome)
            )?;
        }
        writeln!(w, "<tipoScheda>{tipo}</tipoScheda></{tag}>")
    }

    /// Writes the final file: header with the totals (deliberately wrong with
    /// `totali_errati`), then subjects, families, cohabitations; removes the temporary
    /// files.
    pub(crate) fn chiudi(
        mut self,
        data_estrazione: NaiveDate,
        totali_errati: bool,
    ) -> io::Result<()> {
        self.corpo.flush()?;
        self.famiglie.flush()?;
        self.convivenze.flush()?;
        drop((self.corpo, self.famiglie, self.convivenze));
        let mut out = BufWriter::with_capacity(1 << 16, File::create(&self.path)?);
        let t = self.totali;
        // A wrong declared total in this send (EN011) only: the supply totals stay right,
        // so the expected outcome is exactly one code.
        let soggetti_invio = if totali_errati {
            t.soggetti + 1
        } else {
            t.soggetti
        };
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sub:subentro xmlns:sub=\"{NAMESPACE}\">\n<datiFornitura><versioneFornitura>1</versioneFornitura><totaleInvii>1</totaleInvii><numeroTotaleSchedeSoggetto>{}</numeroTotaleSchedeSoggetto><numeroTotaleCittadiniItaliani>{}</numeroTotaleCittadiniItaliani><numeroTotaleIscrittiNonItaliani>{}</numeroTotaleIscrittiNonItaliani><numeroTotalePersoneSessoFemminile>{}</numeroTotalePersoneSessoFemminile><numeroTotalePersoneSessoMaschile>{}</numeroTotalePersoneSessoMaschile><numeroTotaleSchedeFamiglia>{}</numeroTotaleSchedeFamiglia><numeroTotaleSchedeConvivenza>{}</numeroTotaleSchedeConvivenza></datiFornitura>\n",
            t.soggetti, t.italiani, t.non_italiani, t.femmine, t.maschi, t.famiglie, t.convivenze
        )?;
        write!(
            out,
            "<datiInvio><progressivoInvio>1</progressivoInvio><dataEstrazione>{data_estrazione}</dataEstrazione><numeroSchedeSoggettoInvio>{}</numeroSchedeSoggettoInvio><numeroCittadiniItalianiInvio>{}</numeroCittadiniItalianiInvio><numeroIscrittiNonItalianiInvio>{}</numeroIscrittiNonItalianiInvio><numeroPersoneSessoFemminileInvio>{}</numeroPersoneSessoFemminileInvio><numeroPersoneSessoMaschileInvio>{}</numeroPersoneSessoMaschileInvio><numeroTotaleSchedeFamigliaInvio>{}</numeroTotaleSchedeFamigliaInvio><numeroTotaleSchedeConvivenzaInvio>{}</numeroTotaleSchedeConvivenzaInvio></datiInvio>\n<generalitaSoggetti>\n",
            soggetti_invio, t.italiani, t.non_italiani, t.femmine, t.maschi, t.famiglie, t.convivenze
        )?;
        io::copy(&mut BufReader::new(File::open(&self.corpo_path)?), &mut out)?;
        out.write_all(b"</generalitaSoggetti>\n")?;
        for (path, tag, n) in [
            (&self.famiglie_path, "famiglie", t.famiglie),
            (&self.convivenze_path, "convivenze", t.convivenze),
        ] {
            if n > 0 {
                writeln!(out, "<{tag}>")?;
                io::copy(&mut BufReader::new(File::open(path)?), &mut out)?;
                writeln!(out, "</{tag}>")?;
            }
        }
        out.write_all(b"</sub:subentro>\n")?;
        out.flush()?;
        for p in [&self.corpo_path, &self.famiglie_path, &self.convivenze_path] {
            std::fs::remove_file(p)?;
        }
        Ok(())
    }
}

/// Text content, escaped, with characters outside the XSD's name/address patterns
/// replaced by a space (table texts such as state names may contain them).
pub(crate) struct Testo<'a>(pub &'a str);

impl std::fmt::Display for Testo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '\'' => f.write_str("&apos;")?,
                c if c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '.' | ',') => {
                    f.write_char(c)?
                }
                c if ('\u{C0}'..='\u{17E}').contains(&c) => f.write_char(c)?,
                _ => f.write_char(' ')?,
            }
        }
        Ok(())
    }
}
