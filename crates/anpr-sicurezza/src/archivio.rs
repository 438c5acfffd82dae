//! The security files of the data directory: the CA (certificate and key) and the
//! directory, written atomically with owner-only permissions (0600) because they hold
//! private keys.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::ca::AutoritaCertificazione;
use crate::direttorio::Direttorio;
use crate::errore::ErroreSicurezza;

const FILE_CA: &str = "ca.der";
const FILE_CHIAVE_CA: &str = "ca-chiave.pem";
const FILE_DIRETTORIO: &str = "direttorio.json";

fn interno(e: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::Interno(e.to_string())
}

/// The `sicurezza/` folder of a data directory.
#[derive(Debug, Clone)]
pub struct Archivio {
    cartella: PathBuf,
}

/// Writes `bytes` to `path` through a temporary file and a rename, readable only by the
/// owner, so that a crash never leaves half a key or half a directory.
fn scrivi_privato(path: &Path, bytes: &[u8]) -> Result<(), ErroreSicurezza> {
    let tmp = path.with_extension("tmp");
    let mut opzioni = fs::OpenOptions::new();
    opzioni.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opzioni.mode(0o600);
    }
    let mut f = opzioni.open(&tmp).map_err(interno)?;
    f.write_all(bytes).map_err(interno)?;
    f.sync_all().map_err(interno)?;
    fs::rename(&tmp, path).map_err(interno)
}

impl Archivio {
    /// Opens (creating) `<data_dir>/sicurezza`.
    pub fn apri(data_dir: &Path) -> Result<Self, ErroreSicurezza> {
        let cartella = data_dir.join("sicurezza");
        fs::create_dir_all(&cartella).map_err(interno)?;
        Ok(Self { cartella })
    }

    pub fn cartella(&self) -> &Path {
        &self.cartella
    }

    /// The CA, created on first use.
    pub fn ca(&self, adesso: DateTime<Utc>) -> Result<AutoritaCertificazione, ErroreSicurezza> {
        let cert = self.cartella.join(FILE_CA);
        let chiave = self.cartella.join(FILE_CHIAVE_CA);
        if cert.exists() && chiave.exists() {
            let der = fs::read(&cert).map_err(interno)?;
            let pem = fs::read_to_string(&chiave).map_err(interno)?;
            return AutoritaCertificazione::carica(der, &pem);
        }
        let ca = AutoritaCertificazione::nuova(adesso)?;
        scrivi_privato(&chiave, ca.chiave_pem().as_bytes())?;
        scrivi_privato(&cert, ca.certificato_der())?;
        Ok(ca)
    }

    /// The saved directory (empty the first time).
    pub fn direttorio(&self) -> Result<Direttorio, ErroreSicurezza> {
        let p = self.cartella.join(FILE_DIRETTORIO);
        if !p.exists() {
            return Ok(Direttorio::default());
        }
        serde_json::from_slice(&fs::read(&p).map_err(interno)?).map_err(interno)
    }

    /// Saves the directory.
    pub fn salva(&self, d: &Direttorio) -> Result<(), ErroreSicurezza> {
        let json = serde_json::to_vec(d).map_err(interno)?;
        scrivi_privato(&self.cartella.join(FILE_DIRETTORIO), &json)
    }
}
