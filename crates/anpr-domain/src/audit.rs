//! The tamper-evident audit log: entries and their hash chain.
//!
//! Every operation and every read of personal data appends an entry. Each entry's hash
//! covers its own fields and the previous entry's hash, so altering, removing or
//! reordering any entry breaks the chain from that point; [`verifica_catena`] names the
//! first entry where it breaks. Removing entries from the end is detected against the
//! chain head the store keeps separately ([`TestaCatena`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Hash of the (absent) entry before the first one.
pub const HASH_INIZIALE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TipoEvento {
    /// A registry operation was applied (or refused and stored).
    Operazione,
    /// An operation was annulled.
    Annullamento,
    /// Personal data were read.
    Lettura,
    /// Access was denied.
    AccessoNegato,
    /// Anything else worth a trace (administration).
    Amministrazione,
}

impl TipoEvento {
    pub fn as_str(self) -> &'static str {
        match self {
            TipoEvento::Operazione => "operazione",
            TipoEvento::Annullamento => "annullamento",
            TipoEvento::Lettura => "lettura",
            TipoEvento::AccessoNegato => "accessoNegato",
            TipoEvento::Amministrazione => "amministrazione",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            TipoEvento::Operazione,
            TipoEvento::Annullamento,
            TipoEvento::Lettura,
            TipoEvento::AccessoNegato,
            TipoEvento::Amministrazione,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// The content of an audit entry, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NuovaVoceAudit {
    pub istante: DateTime<Utc>,
    pub evento: TipoEvento,
    /// Use case or service code, e.g. `1001` or `consultaScheda`.
    pub azione: String,
    pub utente: String,
    pub comune: Option<String>,
    pub postazione: Option<String>,
    pub canale: String,
    /// What was touched: subject/family ids, never personal data themselves.
    pub oggetto: Option<String>,
    pub id_operazione_anpr: Option<u64>,
    /// Short outcome, e.g. `ok`, `rifiutata: EN122`.
    pub esito: String,
}

/// A stored, chained audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoceAudit {
    pub seq: u64,
    pub voce: NuovaVoceAudit,
    pub hash_precedente: String,
    pub hash: String,
}

/// The last entry's sequence number and hash, kept apart from the entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestaCatena {
    pub seq: u64,
    pub hash: String,
}

/// Computes the hash of entry `seq` chained after `hash_precedente`.
///
/// The encoding is length-prefixed so that no two different entries can produce the
/// same byte string (no ambiguity between, say, `utente="a|b"` and two fields).
pub fn calcola_hash(seq: u64, hash_precedente: &str, voce: &NuovaVoceAudit) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(&seq.to_be_bytes());
    field(hash_precedente.as_bytes());
    field(
        voce.istante
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .as_bytes(),
    );
    field(voce.evento.as_str().as_bytes());
    field(voce.azione.as_bytes());
    field(voce.utente.as_bytes());
    field(voce.comune.as_deref().unwrap_or("\u{0}").as_bytes());
    field(voce.postazione.as_deref().unwrap_or("\u{0}").as_bytes());
    field(voce.canale.as_bytes());
    field(voce.oggetto.as_deref().unwrap_or("\u{0}").as_bytes());
    field(&voce.id_operazione_anpr.map_or([0xff; 8], u64::to_be_bytes));
    field(voce.esito.as_bytes());
    hex::encode(h.finalize())
}

/// Chains a new entry after `testa` (or as the first entry).
pub fn concatena(testa: Option<&TestaCatena>, voce: NuovaVoceAudit) -> VoceAudit {
    let (seq, prev) = match testa {
        Some(t) => (t.seq + 1, t.hash.clone()),
        None => (1, HASH_INIZIALE.to_owned()),
    };
    let hash = calcola_hash(seq, &prev, &voce);
    VoceAudit {
        seq,
        voce,
        hash_precedente: prev,
        hash,
    }
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViolazioneAudit {
    #[error("entry {seq}: content altered (stored hash does not match its content)")]
    Alterata { seq: u64 },
    #[error("entry {seq}: chain broken (expected sequence {expected_seq}); entries removed or reordered before it")]
    SequenzaInterrotta { seq: u64, expected_seq: u64 },
    #[error(
        "entry {seq}: previous hash does not match entry {prev_seq}; entries removed or reordered"
    )]
    CollegamentoInterrotto { seq: u64, prev_seq: u64 },
    #[error("chain head says entry {head_seq} is the last, but the log ends at {last_seq}: entries removed from the end or added outside the registry")]
    TestaNonCorrispondente { head_seq: u64, last_seq: u64 },
}

/// Verifies entries given in stored order (ascending `seq`) against each other and
/// against the chain head. Returns the number of entries verified.
pub fn verifica_catena<'a>(
    voci: impl IntoIterator<Item = &'a VoceAudit>,
    testa: Option<&TestaCatena>,
) -> Result<u64, ViolazioneAudit> {
    let mut verifier = VerificaCatena::default();
    for v in voci {
        verifier.push(v)?;
    }
    verifier.finish(testa)
}

/// Incremental form of [`verifica_catena`], for streaming a long log in pages.
#[derive(Debug, Default)]
pub struct VerificaCatena {
    last: Option<(u64, String)>,
    count: u64,
}

impl VerificaCatena {
    pub fn push(&mut self, v: &VoceAudit) -> Result<(), ViolazioneAudit> {
        let (expected_seq, expected_prev) = match &self.last {
            Some((seq, hash)) => (seq + 1, hash.as_str()),
            None => (1, HASH_INIZIALE),
        };
        if calcola_hash(v.seq, &v.hash_precedente, &v.voce) != v.hash {
            return Err(ViolazioneAudit::Alterata { seq: v.seq });
        }
        if v.seq != expected_seq {
            return Err(ViolazioneAudit::SequenzaInterrotta {
                seq: v.seq,
                expected_seq,
            });
        }
        if v.hash_precedente != expected_prev {
            return Err(ViolazioneAudit::CollegamentoInterrotto {
                seq: v.seq,
                prev_seq: expected_seq - 1,
            });
        }
        self.last = Some((v.seq, v.hash.clone()));
        self.count += 1;
        Ok(())
    }

    pub fn finish(self, testa: Option<&TestaCatena>) -> Result<u64, ViolazioneAudit> {
        let last_seq = self.last.as_ref().map_or(0, |(s, _)| *s);
        let head_seq = testa.map_or(0, |t| t.seq);
        let head_matches = match (testa, &self.last) {
            (None, None) => true,
            (Some(t), Some((seq, hash))) => t.seq == *seq && &t.hash == hash,
            _ => false,
        };
        if head_matches {
            Ok(self.count)
        } else {
            Err(ViolazioneAudit::TestaNonCorrispondente { head_seq, last_seq })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voce(i: u64) -> NuovaVoceAudit {
        NuovaVoceAudit {
            istante: DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
            evento: TipoEvento::Lettura,
            azione: "consultaScheda".into(),
            utente: "RSSMRA80A01H501U".into(),
            comune: Some("058091".into()),
            postazione: None,
            canale: "rest".into(),
            oggetto: Some(format!("soggetto:{i}")),
            id_operazione_anpr: None,
            esito: "ok".into(),
        }
    }

    fn chain(n: u64) -> (Vec<VoceAudit>, TestaCatena) {
        let mut out: Vec<VoceAudit> = Vec::new();
        for i in 0..n {
            let testa = out.last().map(|v| TestaCatena {
                seq: v.seq,
                hash: v.hash.clone(),
            });
            out.push(concatena(testa.as_ref(), voce(i)));
        }
        let last = out.last().unwrap();
        let testa = TestaCatena {
            seq: last.seq,
            hash: last.hash.clone(),
        };
        (out, testa)
    }

    #[test]
    fn intact_chain_verifies() {
        let (v, t) = chain(5);
        assert_eq!(verifica_catena(&v, Some(&t)), Ok(5));
        assert_eq!(verifica_catena(&[], None), Ok(0));
    }

    #[test]
    fn detects_alteration_removal_reordering_and_truncation() {
        let (v, t) = chain(5);

        let mut altered = v.clone();
        altered[2].voce.utente = "XXXXXX00X00X000X".into();
        assert_eq!(
            verifica_catena(&altered, Some(&t)),
            Err(ViolazioneAudit::Alterata { seq: 3 })
        );

        let mut removed = v.clone();
        removed.remove(1);
        assert_eq!(
            verifica_catena(&removed, Some(&t)),
            Err(ViolazioneAudit::SequenzaInterrotta {
                seq: 3,
                expected_seq: 2
            })
        );

        let mut reordered = v.clone();
        reordered.swap(1, 3);
        assert_eq!(
            verifica_catena(&reordered, Some(&t)),
            Err(ViolazioneAudit::SequenzaInterrotta {
                seq: 4,
                expected_seq: 2
            })
        );

        // Removing and renumbering (recomputing own hash) still breaks the link.
        let mut forged = v.clone();
        forged.remove(1);
        forged[1].seq = 2;
        forged[1].hash = calcola_hash(2, &forged[1].hash_precedente, &forged[1].voce);
        assert_eq!(
            verifica_catena(&forged, Some(&t)),
            Err(ViolazioneAudit::CollegamentoInterrotto {
                seq: 2,
                prev_seq: 1
            })
        );

        let truncated = &v[..4];
        assert_eq!(
            verifica_catena(truncated, Some(&t)),
            Err(ViolazioneAudit::TestaNonCorrispondente {
                head_seq: 5,
                last_seq: 4
            })
        );
    }
}
