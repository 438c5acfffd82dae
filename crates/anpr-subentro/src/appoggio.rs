//! The run's working state that grows with the supply, kept on disk so that the memory
//! of a run does not grow with the size of the supply (issue 5: peak RSS under 1 GiB for
//! any file size).
//!
//! While it streams a supply the pipeline must remember, until the end of the run:
//!
//! - every tax code seen (a later record with the same code is a duplicate);
//! - every family named by a subject or listed in the file ([`Nucleo`]: its id, how many
//!   members point to it, its head; it is found again by the municipal id);
//! - the loaded members of each family (for EN063, once the file turns out not to list
//!   their family);
//! - the non-blocking anomalies of the loaded subjects, stored with them at the end;
//! - the heads' residences, until their families' records are read ([`Deposito`]).
//!
//! Kept in memory these cost about 70 bytes a person (measured at two million), so a
//! supply of ten million would have passed 1 GiB. They live instead in a private
//! temporary SQLite database ([`Appoggio`]; `""` as its name: SQLite creates it in the
//! temporary directory, `SQLITE_TMPDIR` or `TMPDIR`, and deletes it itself, so nothing is
//! left behind even after a crash) whose page cache is capped at [`CACHE_APPOGGIO_KIB`],
//! and in an anonymous temporary file in the outcome directory ([`Deposito`]). The
//! operating system's page cache keeps both in memory while there is room; they count
//! against the process only up to those caps.
//!
//! The scratch database is ordinary SQLite through the same crate as the store, with no
//! durability (no journal, no sync: a crash loses a run, which is restarted anyway).
//! The family of the subject just read is kept in memory and written back only when
//! another is needed: the members of a family usually come one after the other.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto};
use anpr_domain::scheda::TipoScheda;
use chrono::{Datelike, NaiveDate};
use rusqlite::{params, Connection, OptionalExtension};

use crate::importa::ErroreSubentro;

/// A family (or cohabitation) of the supply, by the order in which it was first named.
pub(crate) type IndiceNucleo = u32;

/// Page cache of the scratch database (KiB): its tables and indexes beyond this are
/// read back from its file (that is, from the operating system's page cache).
const CACHE_APPOGGIO_KIB: i64 = 16 * 1024;

/// Everything about a family learnt while streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nucleo {
    pub id: IdAnprFamiglia,
    pub tipo: TipoScheda,
    pub aire: bool,
    /// Its own record was read (families missing from the file get EN063).
    pub nel_file: bool,
    /// Subjects of the file pointing to it (loaded or not).
    pub membri_file: u32,
    pub origine: NaiveDate,
    pub intestatario: Option<(IdAnprSoggetto, NaiveDate)>,
    /// The head's residence, as the text of its section (the family's is the same),
    /// in the [`Deposito`].
    pub residenza: Option<Posto>,
    /// The building key of that residence (the family index row's), in the deposit.
    pub chiave_indirizzo: Option<Posto>,
}

/// Bytes of a [`Nucleo`] in the scratch database (`nel_file` is a column of its own).
const BYTE_NUCLEO: usize = 8 + 1 + 1 + 4 + 4 + (1 + 8 + 4) + 2 * (1 + 8 + 4);

impl Nucleo {
    fn codifica(&self) -> [u8; BYTE_NUCLEO] {
        let mut b = [0u8; BYTE_NUCLEO];
        let mut i = 0;
        let mut metti = |parte: &[u8]| {
            b[i..i + parte.len()].copy_from_slice(parte);
            i += parte.len();
        };
        metti(&self.id.get().to_le_bytes());
        metti(&[
            u8::from(self.tipo == TipoScheda::Convivenza),
            u8::from(self.aire),
        ]);
        metti(&self.membri_file.to_le_bytes());
        metti(&self.origine.num_days_from_ce().to_le_bytes());
        match self.intestatario {
            Some((id, dal)) => {
                metti(&[1]);
                metti(&id.get().to_le_bytes());
                metti(&dal.num_days_from_ce().to_le_bytes());
            }
            None => metti(&[0; 13]),
        }
        for posto in [self.residenza, self.chiave_indirizzo] {
            match posto {
                Some(p) => {
                    metti(&[1]);
                    metti(&p.inizio.to_le_bytes());
                    metti(&p.lunghezza.to_le_bytes());
                }
                None => metti(&[0; 13]),
            }
        }
        b
    }

    fn decodifica(b: &[u8], nel_file: bool) -> Result<Self, ErroreSubentro> {
        let guasto = || ErroreSubentro::Interno("a family of the scratch database".into());
        if b.len() != BYTE_NUCLEO {
            return Err(guasto());
        }
        let u64_a = |i: usize| {
            let mut x = [0; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let u32_a = |i: usize| {
            let mut x = [0; 4];
            x.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(x)
        };
        let data_a = |i: usize| {
            let mut x = [0; 4];
            x.copy_from_slice(&b[i..i + 4]);
            NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(x)).ok_or_else(guasto)
        };
        let posto_a = |i: usize| {
            (b[i] == 1).then(|| Posto {
                inizio: u64_a(i + 1),
                lunghezza: u32_a(i + 9),
            })
        };
        let intestatario = if b[18] == 1 {
            let id = IdAnprSoggetto::new(u64_a(19)).map_err(|_| guasto())?;
            Some((id, data_a(27)?))
        } else {
            None
        };
        Ok(Self {
            id: IdAnprFamiglia::new(u64_a(0)).map_err(|_| guasto())?,
            tipo: if b[8] == 1 {
                TipoScheda::Convivenza
            } else {
                TipoScheda::Famiglia
            },
            aire: b[9] == 1,
            nel_file,
            membri_file: u32_a(10),
            origine: data_a(14)?,
            intestatario,
            residenza: posto_a(31),
            chiave_indirizzo: posto_a(44),
        })
    }
}

/// The family in memory: the last one read or created.
struct Corrente {
    indice: IndiceNucleo,
    id_comunale: Box<str>,
    nucleo: Nucleo,
    modificato: bool,
}

/// The scratch database of a run (see the module documentation).
pub(crate) struct Appoggio {
    conn: Connection,
    corrente: Option<Corrente>,
    /// Families so far: the next one's index.
    nuclei: IndiceNucleo,
    /// Deferred anomalies so far: the next one's order.
    differite: i64,
    /// The members' index, created when first needed (after the streaming).
    membri_indicizzati: bool,
}

fn errore(e: rusqlite::Error) -> ErroreSubentro {
    ErroreSubentro::Interno(format!(
        "the run's scratch database (in the temporary directory): {e}"
    ))
}

impl Appoggio {
    pub(crate) fn nuovo() -> Result<Self, ErroreSubentro> {
        Self::con_cache(CACHE_APPOGGIO_KIB)
    }

    /// With a page cache of `cache_kib` KiB (tests use a small one to go past it).
    fn con_cache(cache_kib: i64) -> Result<Self, ErroreSubentro> {
        let conn = Connection::open("").map_err(errore)?;
        conn.execute_batch(&format!(
            "PRAGMA temp_store = FILE;
             PRAGMA cache_size = -{cache_kib};
             PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             CREATE TABLE codici (k BLOB PRIMARY KEY, posizione INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE nuclei (
                 indice      INTEGER PRIMARY KEY,
                 id_comunale TEXT    NOT NULL,
                 nel_file    INTEGER NOT NULL,
                 stato       BLOB    NOT NULL
             );
             CREATE UNIQUE INDEX nuclei_id_comunale ON nuclei (id_comunale);
             CREATE TABLE membri (nucleo INTEGER NOT NULL, soggetto INTEGER NOT NULL);
             CREATE TABLE differite (
                 soggetto INTEGER NOT NULL,
                 n        INTEGER NOT NULL,
                 dal      INTEGER NOT NULL,
                 testo    TEXT    NOT NULL,
                 PRIMARY KEY (soggetto, n)
             ) WITHOUT ROWID;
             BEGIN;"
        ))
        .map_err(errore)?;
        Ok(Self {
            conn,
            corrente: None,
            nuclei: 0,
            differite: 0,
            membri_indicizzati: false,
        })
    }

    /// Records a tax code (its fixed-size key) with the position of its subject (`R`,
    /// `A`) the first time; after that, gives back the position it was first seen with.
    pub(crate) fn codice(
        &mut self,
        chiave: &[u8; 16],
        posizione: u8,
    ) -> Result<Option<u8>, ErroreSubentro> {
        let nuovo = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO codici (k, posizione) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![&chiave[..], posizione]))
            .map_err(errore)?;
        if nuovo == 1 {
            return Ok(None);
        }
        self.conn
            .prepare_cached("SELECT posizione FROM codici WHERE k = ?1")
            .and_then(|mut s| s.query_row([&chiave[..]], |r| r.get(0)))
            .map(Some)
            .map_err(errore)
    }

    /// The family with this municipal id, if one was named already.
    pub(crate) fn cerca_nucleo(
        &mut self,
        id_comunale: &str,
    ) -> Result<Option<IndiceNucleo>, ErroreSubentro> {
        if let Some(c) = &self.corrente {
            if &*c.id_comunale == id_comunale {
                return Ok(Some(c.indice));
            }
        }
        self.conn
            .prepare_cached("SELECT indice FROM nuclei WHERE id_comunale = ?1")
            .and_then(|mut s| s.query_row([id_comunale], |r| r.get(0)).optional())
            .map_err(errore)
    }

    /// A family named for the first time; it becomes the current one.
    pub(crate) fn nuovo_nucleo(
        &mut self,
        id_comunale: &str,
        nucleo: Nucleo,
    ) -> Result<IndiceNucleo, ErroreSubentro> {
        let indice = self.nuclei;
        self.nuclei = indice
            .checked_add(1)
            .ok_or_else(|| ErroreSubentro::Interno("over 4 billion families".into()))?;
        self.conn
            .prepare_cached(
                "INSERT INTO nuclei (indice, id_comunale, nel_file, stato) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    indice,
                    id_comunale,
                    nucleo.nel_file,
                    &nucleo.codifica()[..]
                ])
            })
            .map_err(errore)?;
        self.scrivi_corrente()?;
        self.corrente = Some(Corrente {
            indice,
            id_comunale: id_comunale.into(),
            nucleo,
            modificato: false,
        });
        Ok(indice)
    }

    /// The family at `indice`.
    pub(crate) fn nucleo(&mut self, indice: IndiceNucleo) -> Result<Nucleo, ErroreSubentro> {
        Ok(self.carica(indice)?.nucleo)
    }

    /// The family at `indice`, to change.
    pub(crate) fn nucleo_mut(
        &mut self,
        indice: IndiceNucleo,
    ) -> Result<&mut Nucleo, ErroreSubentro> {
        let c = self.carica(indice)?;
        c.modificato = true;
        Ok(&mut c.nucleo)
    }

    fn carica(&mut self, indice: IndiceNucleo) -> Result<&mut Corrente, ErroreSubentro> {
        if self.corrente.as_ref().is_none_or(|c| c.indice != indice) {
            self.scrivi_corrente()?;
            let (id_comunale, nel_file, stato) = self
                .conn
                .prepare_cached("SELECT id_comunale, nel_file, stato FROM nuclei WHERE indice = ?1")
                .and_then(|mut s| {
                    s.query_row([indice], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, bool>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                        ))
                    })
                })
                .map_err(errore)?;
            self.corrente = Some(Corrente {
                indice,
                id_comunale: id_comunale.into(),
                nucleo: Nucleo::decodifica(&stato, nel_file)?,
                modificato: false,
            });
        }
        self.corrente
            .as_mut()
            .ok_or_else(|| ErroreSubentro::Interno("no current family".into()))
    }

    /// Writes the current family back, if it changed.
    fn scrivi_corrente(&mut self) -> Result<(), ErroreSubentro> {
        let Some(c) = self.corrente.as_mut().filter(|c| c.modificato) else {
            return Ok(());
        };
        self.conn
            .prepare_cached("UPDATE nuclei SET nel_file = ?2, stato = ?3 WHERE indice = ?1")
            .and_then(|mut s| {
                s.execute(params![
                    c.indice,
                    c.nucleo.nel_file,
                    &c.nucleo.codifica()[..]
                ])
            })
            .map_err(errore)?;
        c.modificato = false;
        Ok(())
    }

    /// Up to `quanti` families whose record the file did not list, in the order of
    /// their municipal ids (byte order), starting after `dopo`.
    pub(crate) fn mancanti(
        &mut self,
        dopo: Option<&str>,
        quanti: u32,
    ) -> Result<Vec<(Box<str>, IndiceNucleo)>, ErroreSubentro> {
        self.scrivi_corrente()?;
        // Through the municipal ids' index, in its order: no sort of all the families.
        let sql = match dopo {
            None => {
                "SELECT id_comunale, indice FROM nuclei INDEXED BY nuclei_id_comunale
                 WHERE nel_file = 0 ORDER BY id_comunale LIMIT ?1"
            }
            Some(_) => {
                "SELECT id_comunale, indice FROM nuclei INDEXED BY nuclei_id_comunale
                 WHERE nel_file = 0 AND id_comunale > ?2 ORDER BY id_comunale LIMIT ?1"
            }
        };
        let mut s = self.conn.prepare_cached(sql).map_err(errore)?;
        let riga = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?.into(), r.get(1)?));
        match dopo {
            None => s.query_map(params![quanti], riga),
            Some(d) => s.query_map(params![quanti, d], riga),
        }
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(errore)
    }

    /// A loaded subject pointing to a family.
    pub(crate) fn membro(
        &mut self,
        nucleo: IndiceNucleo,
        soggetto: IdAnprSoggetto,
    ) -> Result<(), ErroreSubentro> {
        self.conn
            .prepare_cached("INSERT INTO membri (nucleo, soggetto) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![nucleo, id_sql(soggetto.get())?]))
            .map_err(errore)?;
        Ok(())
    }

    /// The loaded members of a family, in loading order.
    pub(crate) fn membri_di(
        &mut self,
        nucleo: IndiceNucleo,
    ) -> Result<Vec<IdAnprSoggetto>, ErroreSubentro> {
        if !self.membri_indicizzati {
            // Built once, by a sort, when the first missing family is listed: the
            // entries are (family, rowid), so a family's members come in loading order.
            self.conn
                .execute_batch("CREATE INDEX membri_nucleo ON membri (nucleo)")
                .map_err(errore)?;
            self.membri_indicizzati = true;
        }
        let mut s = self
            .conn
            .prepare_cached(
                "SELECT soggetto FROM membri INDEXED BY membri_nucleo WHERE nucleo = ?1 ORDER BY rowid",
            )
            .map_err(errore)?;
        let ids = s
            .query_map([nucleo], |r| r.get::<_, i64>(0))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(errore)?;
        ids.into_iter()
            .map(|id| {
                u64::try_from(id)
                    .ok()
                    .and_then(|id| IdAnprSoggetto::new(id).ok())
                    .ok_or_else(|| ErroreSubentro::Interno(format!("member id {id}")))
            })
            .collect()
    }

    /// A non-blocking anomaly of a loaded subject (its JSON text), stored with the
    /// subject at the end of the run; `dal` is the validity of the subject's anomaly
    /// section if this is its first one.
    pub(crate) fn differita(
        &mut self,
        soggetto: IdAnprSoggetto,
        dal: NaiveDate,
        testo: &str,
    ) -> Result<(), ErroreSubentro> {
        let n = self.differite;
        self.differite += 1;
        self.conn
            .prepare_cached(
                "INSERT INTO differite (soggetto, n, dal, testo) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id_sql(soggetto.get())?,
                    n,
                    dal.num_days_from_ce(),
                    testo
                ])
            })
            .map_err(errore)?;
        Ok(())
    }

    /// Every subject with deferred anomalies, in id order: the validity of its first
    /// one and all of them as a JSON array, in the order they were given.
    pub(crate) fn per_ogni_differita(
        &self,
        mut f: impl FnMut(IdAnprSoggetto, NaiveDate, String) -> Result<(), ErroreSubentro>,
    ) -> Result<(), ErroreSubentro> {
        let mut s = self
            .conn
            .prepare_cached("SELECT soggetto, dal, testo FROM differite ORDER BY soggetto, n")
            .map_err(errore)?;
        let mut righe = s.query([]).map_err(errore)?;
        let mut aperta: Option<(i64, NaiveDate, String)> = None;
        let chiudi = |(id, dal, mut testo): (i64, NaiveDate, String)| {
            testo.push(']');
            let id = u64::try_from(id)
                .ok()
                .and_then(|id| IdAnprSoggetto::new(id).ok())
                .ok_or_else(|| ErroreSubentro::Interno(format!("subject id {id}")))?;
            Ok::<_, ErroreSubentro>((id, dal, testo))
        };
        while let Some(r) = righe.next().map_err(errore)? {
            let id: i64 = r.get(0).map_err(errore)?;
            let testo: String = r.get(2).map_err(errore)?;
            match aperta.as_mut() {
                Some((corrente, _, json)) if *corrente == id => {
                    json.push(',');
                    json.push_str(&testo);
                }
                _ => {
                    let giorni: i32 = r.get(1).map_err(errore)?;
                    let dal = NaiveDate::from_num_days_from_ce_opt(giorni).ok_or_else(|| {
                        ErroreSubentro::Interno(format!("deferred anomaly date {giorni}"))
                    })?;
                    if let Some(chiusa) = aperta.replace((id, dal, format!("[{testo}"))) {
                        let (id, dal, json) = chiudi(chiusa)?;
                        f(id, dal, json)?;
                    }
                }
            }
        }
        if let Some(chiusa) = aperta {
            let (id, dal, json) = chiudi(chiusa)?;
            f(id, dal, json)?;
        }
        Ok(())
    }
}

fn id_sql(id: u64) -> rusqlite::Result<i64> {
    i64::try_from(id).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Where a text is in the [`Deposito`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Posto {
    inizio: u64,
    lunghezza: u32,
}

/// Bytes of the [`Deposito`] kept in memory before they are written to its file.
const CODA_DEPOSITO: usize = 1 << 20;

/// The heads' residences, from the head's record to the family's, which may come much
/// later in the supply (the families are listed after the subjects). Kept in memory
/// they were the largest part of the per-family state — about 250 bytes a family, over
/// 100 MB for a million persons — so they go to an anonymous temporary file in the
/// outcome directory (the page cache holds it while there is room; nothing is left
/// behind, even after a crash) and only their place stays in the family's state.
pub(crate) struct Deposito {
    file: File,
    /// Texts not yet written: they start at `su_file`, the file's length.
    coda: Vec<u8>,
    su_file: u64,
    /// For errors: the directory holding the file.
    cartella: PathBuf,
}

impl Deposito {
    pub(crate) fn nuovo(cartella: &Path) -> Result<Self, ErroreSubentro> {
        Ok(Self {
            file: tempfile::tempfile_in(cartella)
                .map_err(|e| ErroreSubentro::Io(cartella.to_owned(), e))?,
            coda: Vec::with_capacity(CODA_DEPOSITO),
            su_file: 0,
            cartella: cartella.to_owned(),
        })
    }

    pub(crate) fn metti(&mut self, testo: &str) -> Result<Posto, ErroreSubentro> {
        let lunghezza = u32::try_from(testo.len())
            .map_err(|_| ErroreSubentro::Interno("a residence of over 4 GB".into()))?;
        let posto = Posto {
            inizio: self.su_file + self.coda.len() as u64,
            lunghezza,
        };
        self.coda.extend_from_slice(testo.as_bytes());
        if self.coda.len() >= CODA_DEPOSITO {
            self.file
                .write_all_at(&self.coda, self.su_file)
                .map_err(|e| ErroreSubentro::Io(self.cartella.clone(), e))?;
            self.su_file += self.coda.len() as u64;
            self.coda.clear();
        }
        Ok(posto)
    }

    /// The text at `posto` (each text is wholly in the file or wholly in the queue).
    pub(crate) fn leggi(&self, posto: Posto) -> Result<String, ErroreSubentro> {
        let mut testo = vec![0; posto.lunghezza as usize];
        if posto.inizio >= self.su_file {
            let da = usize::try_from(posto.inizio - self.su_file)
                .map_err(|_| ErroreSubentro::Interno("deposit offset".into()))?;
            let parte = self
                .coda
                .get(da..da + testo.len())
                .ok_or_else(|| ErroreSubentro::Interno("deposit offset past its end".into()))?;
            testo.copy_from_slice(parte);
        } else {
            self.file
                .read_exact_at(&mut testo, posto.inizio)
                .map_err(|e| ErroreSubentro::Io(self.cartella.clone(), e))?;
        }
        String::from_utf8(testo)
            .map_err(|_| ErroreSubentro::Interno("deposit text not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn giorno(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Days::new(u64::from(n))
    }

    fn nucleo(k: u32) -> Nucleo {
        Nucleo {
            id: IdAnprFamiglia::new(u64::from(k) * 1_000_003 + 1).unwrap(),
            tipo: if k.is_multiple_of(3) {
                TipoScheda::Convivenza
            } else {
                TipoScheda::Famiglia
            },
            aire: k.is_multiple_of(5),
            nel_file: false,
            membri_file: k % 11,
            origine: giorno(k % 40_000),
            intestatario: k.is_multiple_of(2).then(|| {
                (
                    IdAnprSoggetto::new(u64::from(k) + 7).unwrap(),
                    giorno(k % 30_000 + 1),
                )
            }),
            residenza: (k % 4 != 1).then_some(Posto {
                inizio: u64::from(k) << 20,
                lunghezza: k % 300,
            }),
            chiave_indirizzo: (k % 7 != 2).then_some(Posto {
                inizio: u64::MAX - u64::from(k),
                lunghezza: u32::MAX - k,
            }),
        }
    }

    /// Every field of a family survives its encoding, at the limits of its types too.
    #[test]
    fn a_family_is_encoded_and_decoded_unchanged() {
        for k in (0..2_000).chain([u32::MAX / 2, u32::MAX - 1]) {
            let n = nucleo(k);
            for nel_file in [false, true] {
                let n = Nucleo { nel_file, ..n };
                assert_eq!(Nucleo::decodifica(&n.codifica(), nel_file).unwrap(), n);
            }
        }
        let estremo = Nucleo {
            id: IdAnprFamiglia::new(IdAnprFamiglia::MAX).unwrap(),
            origine: NaiveDate::MIN,
            intestatario: Some((
                IdAnprSoggetto::new(IdAnprSoggetto::MAX).unwrap(),
                NaiveDate::MAX,
            )),
            ..nucleo(1)
        };
        assert_eq!(
            Nucleo::decodifica(&estremo.codifica(), false).unwrap(),
            estremo
        );
        assert!(Nucleo::decodifica(&estremo.codifica()[1..], false).is_err());
    }

    /// A tax code is new once; after that its first position comes back, also when the
    /// codes are many times the cache (so most are read back from the file).
    #[test]
    fn tax_codes_are_recognised_past_the_cache() {
        let mut a = Appoggio::con_cache(64).unwrap();
        let chiave = |k: u32| {
            let mut c = [0u8; 16];
            c[..10].copy_from_slice(format!("{:010}", k.wrapping_mul(2_654_435_761)).as_bytes());
            c
        };
        let posizione = |k: u32| if k.is_multiple_of(9) { b'A' } else { b'R' };
        for k in 0..60_000 {
            assert_eq!(a.codice(&chiave(k), posizione(k)).unwrap(), None, "{k}");
        }
        for k in (0..60_000).step_by(13) {
            // Seen again with the other position: the first one comes back, unchanged.
            assert_eq!(
                a.codice(&chiave(k), b'X').unwrap(),
                Some(posizione(k)),
                "{k}"
            );
            assert_eq!(
                a.codice(&chiave(k), b'R').unwrap(),
                Some(posizione(k)),
                "{k}"
            );
        }
        assert_eq!(a.codice(&chiave(60_000), b'R').unwrap(), None);
    }

    /// Families are found by municipal id, their changes survive switching between
    /// them (the one in memory is written back), and those whose record was not read
    /// are listed page by page in byte order of their ids, with their members in
    /// loading order.
    #[test]
    fn families_members_and_missing_ones_past_the_cache() {
        let mut a = Appoggio::con_cache(64).unwrap();
        let id_comunale = |k: u32| format!("F{}", k.wrapping_mul(7_919) % 100_003);
        let mut attesi = Vec::new();
        for k in 0..20_000 {
            let i = a.nuovo_nucleo(&id_comunale(k), nucleo(k)).unwrap();
            assert_eq!(i, k);
            attesi.push(nucleo(k));
        }
        // Members and changes, jumping between families.
        let mut membri: Vec<Vec<IdAnprSoggetto>> = vec![Vec::new(); 20_000];
        for s in 0..50_000u32 {
            let k = s.wrapping_mul(40_503) % 20_000;
            let i = a.cerca_nucleo(&id_comunale(k)).unwrap().unwrap();
            assert_eq!(i, k);
            let soggetto = IdAnprSoggetto::new(u64::from(s) + 1).unwrap();
            a.membro(i, soggetto).unwrap();
            membri[k as usize].push(soggetto);
            let n = a.nucleo_mut(i).unwrap();
            n.membri_file += 1;
            n.nel_file = k % 3 != 0;
            attesi[k as usize].membri_file += 1;
            attesi[k as usize].nel_file = k % 3 != 0;
        }
        assert_eq!(a.cerca_nucleo("F-none").unwrap(), None);
        for k in (0..20_000).rev().step_by(17) {
            assert_eq!(a.nucleo(k).unwrap(), attesi[k as usize], "{k}");
        }
        // Missing: those marked not in the file, by id in byte order.
        let mut attesi_mancanti: Vec<(Box<str>, IndiceNucleo)> = (0..20_000)
            .filter(|k| !attesi[*k as usize].nel_file)
            .map(|k| (id_comunale(k).into(), k))
            .collect();
        attesi_mancanti.sort();
        let mut mancanti = Vec::new();
        let mut dopo: Option<Box<str>> = None;
        loop {
            let pagina = a.mancanti(dopo.as_deref(), 500).unwrap();
            let Some((ultimo, _)) = pagina.last() else {
                break;
            };
            dopo = Some(ultimo.clone());
            for (id, i) in pagina {
                assert_eq!(a.membri_di(i).unwrap(), membri[i as usize], "{id}");
                mancanti.push((id, i));
            }
        }
        assert_eq!(mancanti, attesi_mancanti);
        // A member added after the index was built is found too, last.
        let altro = IdAnprSoggetto::new(999_999).unwrap();
        a.membro(3, altro).unwrap();
        membri[3].push(altro);
        assert_eq!(a.membri_di(3).unwrap(), membri[3]);
    }

    /// Deferred anomalies come back per subject in id order, as the JSON array of the
    /// texts in the order given (the same text as serialising the list), with the date
    /// of the subject's first one.
    #[test]
    fn deferred_anomalies_come_back_grouped_by_subject() {
        let mut a = Appoggio::con_cache(64).unwrap();
        let mut attese: std::collections::BTreeMap<u64, (NaiveDate, Vec<serde_json::Value>)> =
            Default::default();
        for n in 0..30_000u32 {
            let soggetto = u64::from(n.wrapping_mul(2_246_822_519) % 7_001) + 1;
            let testo = serde_json::json!({"codice": format!("E{n}"), "campo": "a,b]"});
            let dal = giorno(n);
            a.differita(
                IdAnprSoggetto::new(soggetto).unwrap(),
                dal,
                &testo.to_string(),
            )
            .unwrap();
            attese
                .entry(soggetto)
                .or_insert_with(|| (dal, Vec::new()))
                .1
                .push(testo);
        }
        let mut uscite = Vec::new();
        a.per_ogni_differita(|id, dal, json| {
            uscite.push((id.get(), dal, json));
            Ok(())
        })
        .unwrap();
        let attese: Vec<(u64, NaiveDate, String)> = attese
            .into_iter()
            .map(|(id, (dal, v))| (id, dal, serde_json::to_string(&v).unwrap()))
            .collect();
        assert_eq!(uscite.len(), 7_001);
        assert_eq!(uscite, attese);
        // An error of the consumer stops the listing and comes back.
        let mut visti = 0;
        let esito = a.per_ogni_differita(|_, _, _| {
            visti += 1;
            Err(ErroreSubentro::Interno("stop".into()))
        });
        assert!(matches!(esito, Err(ErroreSubentro::Interno(m)) if m == "stop"));
        assert_eq!(visti, 1);
    }

    /// Texts come back exactly, whether they were already written to the file or still
    /// queued in memory, in any order; the file holds them and nothing else.
    #[test]
    fn the_deposit_gives_back_what_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut deposito = Deposito::nuovo(dir.path()).unwrap();
        // Over three times the queue: three flushes or more, then a partly filled queue.
        let testi: Vec<String> = (0..30_000)
            .map(|i| {
                format!("{{\"indirizzo\":\"via è{i}\",\"numero\":{}}}", i * 7).repeat(1 + i % 5)
            })
            .collect();
        let posti: Vec<Posto> = testi.iter().map(|t| deposito.metti(t).unwrap()).collect();
        let totale: usize = testi.iter().map(String::len).sum();
        assert!(totale > 3 * CODA_DEPOSITO, "{totale} bytes");
        assert!(deposito.su_file > 0 && !deposito.coda.is_empty());
        assert_eq!(deposito.su_file + deposito.coda.len() as u64, totale as u64);
        assert_eq!(deposito.file.metadata().unwrap().len(), deposito.su_file);
        // Backwards, then every seventh: from the queue and from the file.
        for (t, p) in testi.iter().zip(&posti).rev() {
            assert_eq!(&deposito.leggi(*p).unwrap(), t);
        }
        for (t, p) in testi.iter().zip(&posti).step_by(7) {
            assert_eq!(&deposito.leggi(*p).unwrap(), t);
        }
        // The file is anonymous: nothing appears in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
