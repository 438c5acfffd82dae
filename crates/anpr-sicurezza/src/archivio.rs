//! How the directory is kept in the `Store` (tables of migration 0004, see
//! `anpr_store::sicurezza`): one row per user, card, certificate (with its revocation),
//! daily password, body (declared workstations, card progressive, parameters) and
//! passkey; the workstation register entry by entry; counters and mails with the change.
//!
//! [`modifica`] turns "the directory before" and "the directory after" a console action
//! into the rows that changed, so a change writes only what it touched and other
//! processes reload only that; [`applica`] brings a directory up to date with the rows
//! another process wrote. No I/O here except [`leggi_file_precedenti`], the import path
//! of the security files earlier versions kept in the data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anpr_store::sicurezza::{
    CaricoSicurezza, ModificaSicurezza, NuovaMailSicurezza, RigaSicurezza, TabellaSicurezza,
    VoceRegistroSicurezza,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ca::Revoca;
use crate::carta::{Carta, PasswordGiornaliera};
use crate::direttorio::{CertificatoRegistrato, Direttorio, ParametriComune, Utente};
use crate::errore::ErroreSicurezza;
use crate::passkey::Passkey;
use crate::registro::{DatiVoce, VoceRegistro};

fn interno(e: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::Interno(e.to_string())
}

/// A certificate row: the certificate and, when revoked or blocked, its CRL entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RigaCertificato {
    certificato: CertificatoRegistrato,
    revoca: Option<Revoca>,
}

/// A body row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RigaEnte {
    postazioni_dichiarate: Option<u32>,
    progressivo_carte: Option<u32>,
    parametri: Option<ParametriComune>,
}

fn json<T: Serialize>(v: &T) -> Result<serde_json::Value, ErroreSicurezza> {
    serde_json::to_value(v).map_err(interno)
}

fn da_json<T: for<'de> Deserialize<'de>>(
    v: serde_json::Value,
    cosa: &str,
) -> Result<T, ErroreSicurezza> {
    serde_json::from_value(v).map_err(|e| interno(format!("{cosa} nel database: {e}")))
}

/// Every row of the directory, keyed by (table, key), with its owner columns.
fn righe(
    d: &Direttorio,
) -> Result<BTreeMap<(TabellaSicurezza, String), RigaSicurezza>, ErroreSicurezza> {
    let mut out = BTreeMap::new();
    let mut metti =
        |tabella, chiave: String, ente: Option<String>, titolare: Option<String>, dati| {
            out.insert(
                (tabella, chiave.clone()),
                RigaSicurezza {
                    tabella,
                    chiave,
                    ente,
                    titolare,
                    dati: Some(dati),
                },
            );
        };
    for u in d.utenti.values() {
        metti(
            TabellaSicurezza::Utenti,
            u.codice_fiscale.clone(),
            None,
            Some(u.codice_fiscale.clone()),
            json(u)?,
        );
    }
    for c in &d.carte {
        metti(
            TabellaSicurezza::Carte,
            c.numero.clone(),
            Some(crate::carta::ente_della_carta(&c.numero).to_owned()),
            Some(c.titolare.clone()),
            json(c)?,
        );
    }
    let revoche: BTreeMap<u64, &Revoca> = d.revoche.iter().map(|r| (r.seriale, r)).collect();
    for (s, c) in &d.certificati {
        metti(
            TabellaSicurezza::Certificati,
            s.to_string(),
            Some(c.ente.clone()),
            None,
            json(&RigaCertificato {
                certificato: c.clone(),
                revoca: revoche.get(s).map(|r| (*r).clone()),
            })?,
        );
    }
    for p in &d.password_giornaliere {
        metti(
            TabellaSicurezza::PasswordGiornaliere,
            p.titolare.clone(),
            None,
            Some(p.titolare.clone()),
            json(p)?,
        );
    }
    let mut enti: BTreeMap<&str, RigaEnte> = BTreeMap::new();
    for (e, n) in &d.postazioni_dichiarate {
        enti.entry(e).or_default().postazioni_dichiarate = Some(*n);
    }
    for (e, n) in &d.progressivi_carte {
        enti.entry(e).or_default().progressivo_carte = Some(*n);
    }
    for (e, p) in &d.parametri {
        enti.entry(e).or_default().parametri = Some(p.clone());
    }
    for (e, r) in enti {
        metti(
            TabellaSicurezza::Enti,
            e.to_owned(),
            Some(e.to_owned()),
            None,
            json(&r)?,
        );
    }
    for p in d.passkey.values() {
        metti(
            TabellaSicurezza::Passkey,
            p.id.clone(),
            None,
            Some(p.titolare.clone()),
            json(p)?,
        );
    }
    Ok(out)
}

/// The change that turns `prima` (the directory at `versione`) into `dopo`: rows that
/// differ, tombstones for rows gone, register entries appended, counters, queued mails.
pub fn modifica(
    prima: &Direttorio,
    dopo: &Direttorio,
    versione: u64,
    adesso: DateTime<Utc>,
) -> Result<ModificaSicurezza, ErroreSicurezza> {
    let vecchie = righe(prima)?;
    let nuove = righe(dopo)?;
    let mut cambiate: Vec<RigaSicurezza> = nuove
        .iter()
        .filter(|(k, r)| vecchie.get(*k) != Some(*r))
        .map(|(_, r)| r.clone())
        .collect();
    for ((tabella, chiave), r) in &vecchie {
        if !nuove.contains_key(&(*tabella, chiave.clone())) {
            cambiate.push(RigaSicurezza {
                dati: None,
                ..r.clone()
            });
        }
    }
    if dopo.registro.voci.len() < prima.registro.voci.len()
        || dopo.registro.voci[..prima.registro.voci.len()] != prima.registro.voci[..]
    {
        return Err(interno(
            "il registro delle postazioni si può solo estendere",
        ));
    }
    let registro = dopo.registro.voci[prima.registro.voci.len()..]
        .iter()
        .map(|v| {
            Ok(VoceRegistroSicurezza {
                numero: v.numero,
                dati: json(&v.dati)?,
                hash_precedente: v.hash_precedente.clone(),
                hash: v.hash.clone(),
            })
        })
        .collect::<Result<Vec<_>, ErroreSicurezza>>()?;
    let posta = dopo
        .posta
        .iter()
        .skip(prima.posta.len())
        .map(|m| NuovaMailSicurezza {
            destinatario: m.destinatario.clone(),
            oggetto: m.oggetto.clone(),
            corpo: m.corpo.clone(),
            creata_il: adesso,
        })
        .collect();
    Ok(ModificaSicurezza {
        versione_attesa: versione,
        righe: cambiate,
        registro,
        ultimo_seriale: dopo.ultimo_seriale,
        numero_crl: dopo.numero_crl,
        posta,
    })
}

/// Brings `d` up to date with what the store holds after `d`'s version (`carico` from
/// `Store::sicurezza_carica`).
pub fn applica(d: &mut Direttorio, carico: CaricoSicurezza) -> Result<(), ErroreSicurezza> {
    d.ultimo_seriale = carico.ultimo_seriale;
    d.numero_crl = carico.numero_crl;
    let mut carte: BTreeMap<String, Carta> =
        d.carte.drain(..).map(|c| (c.numero.clone(), c)).collect();
    let mut password: BTreeMap<String, PasswordGiornaliera> = d
        .password_giornaliere
        .drain(..)
        .map(|p| (p.titolare.clone(), p))
        .collect();
    let mut revoche: BTreeMap<u64, Revoca> = d.revoche.drain(..).map(|r| (r.seriale, r)).collect();
    for r in carico.righe {
        let chiave = r.chiave;
        match (r.tabella, r.dati) {
            (TabellaSicurezza::Utenti, None) => {
                d.utenti.remove(&chiave);
            }
            (TabellaSicurezza::Utenti, Some(v)) => {
                d.utenti.insert(chiave, da_json::<Utente>(v, "utente")?);
            }
            (TabellaSicurezza::Carte, None) => {
                carte.remove(&chiave);
            }
            (TabellaSicurezza::Carte, Some(v)) => {
                carte.insert(chiave, da_json(v, "carta")?);
            }
            (TabellaSicurezza::Certificati, dati) => {
                let seriale: u64 = chiave
                    .parse()
                    .map_err(|_| interno(format!("seriale {chiave:?} nel database")))?;
                revoche.remove(&seriale);
                match dati {
                    None => {
                        d.certificati.remove(&seriale);
                    }
                    Some(v) => {
                        let riga: RigaCertificato = da_json(v, "certificato")?;
                        if let Some(rv) = riga.revoca {
                            revoche.insert(seriale, rv);
                        }
                        d.certificati.insert(seriale, riga.certificato);
                    }
                }
            }
            (TabellaSicurezza::PasswordGiornaliere, None) => {
                password.remove(&chiave);
            }
            (TabellaSicurezza::PasswordGiornaliere, Some(v)) => {
                password.insert(chiave, da_json(v, "password giornaliera")?);
            }
            (TabellaSicurezza::Enti, dati) => {
                let riga: RigaEnte = match dati {
                    Some(v) => da_json(v, "ente")?,
                    None => RigaEnte::default(),
                };
                aggiorna(
                    &mut d.postazioni_dichiarate,
                    &chiave,
                    riga.postazioni_dichiarate,
                );
                aggiorna(&mut d.progressivi_carte, &chiave, riga.progressivo_carte);
                aggiorna(&mut d.parametri, &chiave, riga.parametri);
            }
            (TabellaSicurezza::Passkey, None) => {
                d.passkey.remove(&chiave);
            }
            (TabellaSicurezza::Passkey, Some(v)) => {
                d.passkey.insert(chiave, da_json::<Passkey>(v, "passkey")?);
            }
        }
    }
    d.carte = carte.into_values().collect();
    d.password_giornaliere = password.into_values().collect();
    let mut revoche: Vec<Revoca> = revoche.into_values().collect();
    revoche.sort_by_key(|r| (r.istante, r.seriale));
    d.revoche = revoche;
    for v in carico.registro {
        let atteso = d.registro.voci.len() as u64 + 1;
        if v.numero != atteso {
            return Err(interno(format!(
                "registro delle postazioni: voce {} letta dopo la {}",
                v.numero,
                atteso - 1
            )));
        }
        d.registro.voci.push(VoceRegistro {
            numero: v.numero,
            dati: da_json::<DatiVoce>(v.dati, "voce del registro")?,
            hash_precedente: v.hash_precedente,
            hash: v.hash,
        });
    }
    Ok(())
}

fn aggiorna<T>(m: &mut BTreeMap<String, T>, chiave: &str, v: Option<T>) {
    match v {
        Some(v) => {
            m.insert(chiave.to_owned(), v);
        }
        None => {
            m.remove(chiave);
        }
    }
}

const FILE_CA: &str = "ca.der";
const FILE_CHIAVE_CA: &str = "ca-chiave.pem";
const FILE_DIRETTORIO: &str = "direttorio.json";

/// The security files earlier versions kept in `<data-dir>/sicurezza`, to import once
/// into the store: the CA (certificate DER and key PEM) and the directory.
#[derive(Debug)]
pub struct FilePrecedenti {
    pub ca: Option<(Vec<u8>, String)>,
    pub direttorio: Option<Direttorio>,
    /// The directory file, renamed after a successful import.
    pub file_direttorio: PathBuf,
}

/// Reads the security files of an earlier version from `<data_dir>/sicurezza`, if any.
pub fn leggi_file_precedenti(data_dir: &Path) -> Result<FilePrecedenti, ErroreSicurezza> {
    let cartella = data_dir.join("sicurezza");
    let cert = cartella.join(FILE_CA);
    let chiave = cartella.join(FILE_CHIAVE_CA);
    let ca = if cert.exists() && chiave.exists() {
        Some((
            std::fs::read(&cert).map_err(interno)?,
            std::fs::read_to_string(&chiave).map_err(interno)?,
        ))
    } else {
        None
    };
    let file_direttorio = cartella.join(FILE_DIRETTORIO);
    let direttorio = if file_direttorio.exists() {
        let mut d: Direttorio =
            serde_json::from_slice(&std::fs::read(&file_direttorio).map_err(interno)?)
                .map_err(interno)?;
        // Mails of the file were never delivered by anyone: they are queued at import.
        d.posta.clear();
        Some(d)
    } else {
        None
    };
    Ok(FilePrecedenti {
        ca,
        direttorio,
        file_direttorio,
    })
}

/// Marks the imported directory file as imported (renamed to `direttorio.json.importato`)
/// so that it is never imported twice.
pub fn segna_importato(p: &FilePrecedenti) -> Result<(), ErroreSicurezza> {
    if p.file_direttorio.exists() {
        std::fs::rename(
            &p.file_direttorio,
            p.file_direttorio.with_extension("json.importato"),
        )
        .map_err(interno)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::AutoritaCertificazione;
    use crate::carta::EventoCarta;
    use anpr_domain::caller::Profilo;
    use std::collections::BTreeSet;

    fn t() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    fn carico(m: &ModificaSicurezza, versione: u64) -> CaricoSicurezza {
        CaricoSicurezza {
            versione,
            ultimo_seriale: m.ultimo_seriale,
            numero_crl: m.numero_crl,
            righe: m.righe.clone(),
            registro: m.registro.clone(),
        }
    }

    #[test]
    fn a_change_writes_only_what_it_touched_and_replays_to_the_same_directory() {
        let ca = AutoritaCertificazione::nuova(t()).unwrap();
        let vuoto = Direttorio::default();
        let mut d = vuoto.clone();
        d.censisci(
            "058091",
            Utente {
                codice_fiscale: "RSSMRA80A01H501U".into(),
                cognome: "Rossi".into(),
                nome: "Mario".into(),
                email: "m.rossi@comune.roma.it".into(),
                ruoli: BTreeMap::new(),
            },
            BTreeSet::from([Profilo::AmministratorePostazioni]),
        )
        .unwrap();
        d.dichiara_postazioni("058091", 1).unwrap();
        d.emetti_certificati_postazione(&ca, "058091", "X", t())
            .unwrap();
        let m1 = modifica(&vuoto, &d, 0, t()).unwrap();
        // user, body, two certificates
        assert_eq!(
            m1.righe.len(),
            4,
            "{:?}",
            m1.righe.iter().map(|r| &r.chiave).collect::<Vec<_>>()
        );
        assert_eq!(m1.registro.len(), 2);
        let mut replica = Direttorio::default();
        applica(&mut replica, carico(&m1, 1)).unwrap();
        assert_eq!(replica, d);

        let mut d2 = d.clone();
        let seriale = d2
            .certificato_attuale("058091-PC-0001")
            .unwrap()
            .emesso
            .seriale;
        d2.revoca_certificato(seriale, true, "X", t()).unwrap();
        d2.numero_crl += 1;
        let m2 = modifica(&d, &d2, 1, t()).unwrap();
        assert_eq!(m2.righe.len(), 1, "only the blocked certificate");
        assert_eq!(m2.registro.len(), 1);
        applica(&mut replica, carico(&m2, 2)).unwrap();
        assert_eq!(replica, d2);
        replica.registro.verifica().unwrap();

        // A deleted user becomes a tombstone and disappears from the replica; the card
        // revoked by the deletion follows.
        let mut d3 = d2.clone();
        let n = d3
            .richiedi_carta("058091", "RSSMRA80A01H501U", t())
            .unwrap();
        d3.evento_carta(&n, EventoCarta::AvvioProduzione, t())
            .unwrap();
        let m3 = modifica(&d2, &d3, 2, t()).unwrap();
        applica(&mut replica, carico(&m3, 3)).unwrap();
        let mut d4 = d3.clone();
        d4.cancella_utente("RSSMRA80A01H501U", t()).unwrap();
        let m4 = modifica(&d3, &d4, 3, t()).unwrap();
        assert!(m4
            .righe
            .iter()
            .any(|r| r.tabella == TabellaSicurezza::Utenti && r.dati.is_none()));
        applica(&mut replica, carico(&m4, 4)).unwrap();
        assert_eq!(replica, d4);
        assert!(replica.utenti.is_empty());
    }

    #[test]
    fn the_register_can_only_grow() {
        let mut d = Direttorio::default();
        d.registro.aggiungi(DatiVoce {
            istante: t(),
            evento: crate::registro::EventoPostazione::Emesso,
            postazione: "058091-PC-0001".into(),
            seriale: 2,
            mac: None,
            nome_computer: None,
            operatore: "X".into(),
        });
        let accorciato = Direttorio::default();
        assert_eq!(
            modifica(&d, &accorciato, 1, t()).unwrap_err().codice(),
            "EV249"
        );
    }
}
