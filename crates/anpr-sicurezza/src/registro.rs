//! The workstation register: which certificate is installed where, tamper-evident.
//!
//! Every entry carries the SHA-256 of the previous entry and its own hash over a
//! canonical serialisation, so changing, removing or reordering any entry breaks the
//! chain at that point ([`RegistroPostazioni::verifica`]). Pure data: the caller
//! persists it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errore::ErroreSicurezza;

/// What happened to a workstation certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventoPostazione {
    Emesso,
    Scaricato,
    Installato,
    Bloccato,
    Sbloccato,
    Revocato,
    Rinnovato,
}

/// The data of one register entry (before it is chained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatiVoce {
    pub istante: DateTime<Utc>,
    pub evento: EventoPostazione,
    /// Workstation id (`ISTAT-PC-NNNN` or `ISTAT-SERVER`).
    pub postazione: String,
    pub seriale: u64,
    /// The MAC address of the computer it was installed on (installations).
    pub mac: Option<String>,
    /// The computer name (installations).
    pub nome_computer: Option<String>,
    /// Who did it (CF).
    pub operatore: String,
}

/// A chained register entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoceRegistro {
    pub numero: u64,
    #[serde(flatten)]
    pub dati: DatiVoce,
    pub hash_precedente: String,
    pub hash: String,
}

/// Hash of the chain's start.
pub const HASH_INIZIALE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn calcola_hash(numero: u64, dati: &DatiVoce, precedente: &str) -> String {
    // serde_json writes struct fields in declaration order, so this serialisation is
    // canonical for a given DatiVoce.
    let corpo = serde_json::to_string(dati).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(numero.to_be_bytes());
    h.update(precedente.as_bytes());
    h.update(corpo.as_bytes());
    hex::encode(h.finalize())
}

/// The register: entries in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistroPostazioni {
    pub voci: Vec<VoceRegistro>,
}

impl RegistroPostazioni {
    /// Appends an entry chained to the last one.
    pub fn aggiungi(&mut self, dati: DatiVoce) -> &VoceRegistro {
        let numero = self.voci.len() as u64 + 1;
        let precedente = self
            .voci
            .last()
            .map_or_else(|| HASH_INIZIALE.to_owned(), |v| v.hash.clone());
        let hash = calcola_hash(numero, &dati, &precedente);
        self.voci.push(VoceRegistro {
            numero,
            dati,
            hash_precedente: precedente,
            hash,
        });
        self.voci.last().expect("just pushed")
    }

    /// Checks the whole chain; the first broken entry is named.
    pub fn verifica(&self) -> Result<usize, ErroreSicurezza> {
        let mut precedente = HASH_INIZIALE.to_owned();
        for (i, v) in self.voci.iter().enumerate() {
            let atteso = i as u64 + 1;
            if v.numero != atteso
                || v.hash_precedente != precedente
                || calcola_hash(v.numero, &v.dati, &v.hash_precedente) != v.hash
            {
                return Err(ErroreSicurezza::RegistroAlterato { voce: atteso });
            }
            precedente = v.hash.clone();
        }
        Ok(self.voci.len())
    }

    /// Where a workstation's certificate is installed now (the last installation).
    pub fn installazione(&self, postazione: &str) -> Option<&VoceRegistro> {
        self.voci.iter().rev().find(|v| {
            v.dati.postazione == postazione && v.dati.evento == EventoPostazione::Installato
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dati(p: &str, evento: EventoPostazione) -> DatiVoce {
        DatiVoce {
            istante: "2026-11-23T10:00:00Z".parse().unwrap(),
            evento,
            postazione: p.into(),
            seriale: 7,
            mac: Some("00:11:22:33:44:55".into()),
            nome_computer: Some("ANAGRAFE-1".into()),
            operatore: "RSSMRA80A01H501U".into(),
        }
    }

    #[test]
    fn any_change_breaks_the_chain_where_it_happened() {
        let mut r = RegistroPostazioni::default();
        r.aggiungi(dati("058091-PC-0001", EventoPostazione::Emesso));
        r.aggiungi(dati("058091-PC-0001", EventoPostazione::Installato));
        r.aggiungi(dati("058091-PC-0002", EventoPostazione::Emesso));
        assert_eq!(r.verifica(), Ok(3));
        assert_eq!(
            r.installazione("058091-PC-0001")
                .unwrap()
                .dati
                .nome_computer
                .as_deref(),
            Some("ANAGRAFE-1")
        );

        let mut changed = r.clone();
        changed.voci[1].dati.mac = Some("66:77:88:99:AA:BB".into());
        assert_eq!(
            changed.verifica(),
            Err(ErroreSicurezza::RegistroAlterato { voce: 2 })
        );

        let mut removed = r.clone();
        removed.voci.remove(0);
        assert_eq!(
            removed.verifica(),
            Err(ErroreSicurezza::RegistroAlterato { voce: 1 })
        );

        let mut reordered = r.clone();
        reordered.voci.swap(1, 2);
        assert_eq!(
            reordered.verifica(),
            Err(ErroreSicurezza::RegistroAlterato { voce: 2 })
        );
    }
}
