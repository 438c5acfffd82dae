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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{RichiestaCertificato, TipoCertificato};
    use crate::catena::Fiducia;

    #[test]
    fn a_reloaded_ca_issues_certificates_that_chain_to_the_saved_one() {
        let dir = tempfile::tempdir().unwrap();
        let t: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let a = Archivio::apri(dir.path()).unwrap();
        let prima = a.ca(t).unwrap();
        let mut d = Direttorio::default();
        d.dichiara_postazioni("058091", 1).unwrap();
        a.salva(&d).unwrap();

        let a = Archivio::apri(dir.path()).unwrap();
        let dopo = a.ca(t).unwrap();
        assert_eq!(prima.certificato_der(), dopo.certificato_der());
        assert_eq!(a.direttorio().unwrap(), d);
        let req = RichiestaCertificato {
            tipo: TipoCertificato::Postazione,
            cn: "058091-PC-0001".into(),
            ou: Some("058091".into()),
            nomi: vec![],
        };
        let cert = dopo.emetti(&req, 2, t).unwrap();
        let mut d2 = Direttorio::default();
        let fiducia = Fiducia {
            ca_der: prima.certificato_der().to_vec(),
            crl_der: d2.crl(&dopo, t).unwrap(),
        };
        fiducia
            .verifica(&cert.der, t + chrono::Duration::minutes(1))
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [FILE_CHIAVE_CA, FILE_DIRETTORIO] {
                let m = fs::metadata(a.cartella().join(f)).unwrap();
                assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
            }
        }
        assert!(!format!("{dopo:?}").contains("PRIVATE"));
    }
}
