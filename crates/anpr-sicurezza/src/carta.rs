//! The smart-card lifecycle (SPEC M-8.3) as a state machine, and the daily password.
//!
//! ```text
//! Richiesta → InProduzione → InPrefettura → Consegnata ──(ALS registers it to the holder)──→ Attiva
//!                                                └──(the mayor's card, at delivery)────────→ Attiva
//! Attiva ⇄ Bloccata;  Attiva | Bloccata → Sostituita (the new card takes over at once);
//! any state but Revocata/Sostituita → Revocata
//! ```
//! Activation sends the holder the second halves of PIN and PUK by mail: the transition
//! returns that effect, the caller writes it to the outbox in the same transaction.
//! A card lasts six years from production; an expired card gives no access whatever its
//! state says.

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errore::{ErroreSicurezza, CODICE_CARTA_NON_ATTIVA, CODICE_PASSWORD_GIORNALIERA};

/// Validity of a card.
pub const VALIDITA_CARTA_MESI: u32 = 72;

/// Where a card is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatoCarta {
    Richiesta,
    InProduzione,
    InPrefettura,
    /// Delivered by the prefecture to the mayor or delegate; not yet registered to the
    /// holder.
    Consegnata,
    Attiva,
    Bloccata,
    Revocata,
    Sostituita,
}

impl StatoCarta {
    pub fn nome(self) -> &'static str {
        match self {
            StatoCarta::Richiesta => "richiesta",
            StatoCarta::InProduzione => "inProduzione",
            StatoCarta::InPrefettura => "inPrefettura",
            StatoCarta::Consegnata => "consegnata",
            StatoCarta::Attiva => "attiva",
            StatoCarta::Bloccata => "bloccata",
            StatoCarta::Revocata => "revocata",
            StatoCarta::Sostituita => "sostituita",
        }
    }

    /// States after which a card never works again.
    pub fn finale(self) -> bool {
        matches!(self, StatoCarta::Revocata | StatoCarta::Sostituita)
    }
}

/// What can happen to a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventoCarta {
    AvvioProduzione,
    ArrivoInPrefettura,
    /// The prefecture delivers the batch; `del_sindaco` when this is the mayor's (or
    /// delegate's) own card, which becomes active at once.
    Consegna {
        del_sindaco: bool,
    },
    /// The ALS registers the card to its holder.
    Registrazione,
    Blocco,
    Sblocco,
    Revoca,
    Sostituzione,
}

/// A side effect the caller must carry out (in the same transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Effetto {
    /// Mail the holder the second halves of PIN and PUK.
    MailSecondaMetaPin { numero: String, titolare: String },
}

/// One smart card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Carta {
    pub numero: String,
    /// The holder's CF.
    pub titolare: String,
    pub stato: StatoCarta,
    pub richiesta: DateTime<Utc>,
    pub scadenza: Option<DateTime<Utc>>,
    /// Serial of the card's X.509 user certificate, once produced.
    pub seriale_certificato: Option<u64>,
    pub storia: Vec<(DateTime<Utc>, StatoCarta)>,
}

/// Card number: the ISTAT code of the municipality (or the province code followed by
/// `000` for a prefecture) and a four-digit progressive.
pub fn numero_carta(ente: &str, progressivo: u32) -> String {
    if ente.len() == 3 {
        format!("{ente}000{progressivo:04}")
    } else {
        format!("{ente}{progressivo:04}")
    }
}

/// The body a card number belongs to: the municipality (first 6 digits), or the
/// province for a prefecture's card (3 digits followed by `000`).
pub fn ente_della_carta(numero: &str) -> &str {
    if numero.len() == 10 && numero.get(3..6) == Some("000") {
        &numero[..3]
    } else {
        numero.get(..6).unwrap_or(numero)
    }
}

impl Carta {
    /// A new card request.
    pub fn richiedi(numero: String, titolare: String, adesso: DateTime<Utc>) -> Self {
        Self {
            numero,
            titolare,
            stato: StatoCarta::Richiesta,
            richiesta: adesso,
            scadenza: None,
            seriale_certificato: None,
            storia: vec![(adesso, StatoCarta::Richiesta)],
        }
    }

    /// Applies `evento`, or refuses it with EV204 leaving the card unchanged.
    pub fn applica(
        &mut self,
        evento: EventoCarta,
        adesso: DateTime<Utc>,
    ) -> Result<Vec<Effetto>, ErroreSicurezza> {
        use StatoCarta::*;
        let mail = || Effetto::MailSecondaMetaPin {
            numero: self.numero.clone(),
            titolare: self.titolare.clone(),
        };
        let (verso, effetti) = match (self.stato, evento) {
            (Richiesta, EventoCarta::AvvioProduzione) => (InProduzione, vec![]),
            (InProduzione, EventoCarta::ArrivoInPrefettura) => (InPrefettura, vec![]),
            (InPrefettura, EventoCarta::Consegna { del_sindaco: true }) => (Attiva, vec![mail()]),
            (InPrefettura, EventoCarta::Consegna { del_sindaco: false }) => (Consegnata, vec![]),
            (Consegnata, EventoCarta::Registrazione) => (Attiva, vec![mail()]),
            (Attiva, EventoCarta::Blocco) => (Bloccata, vec![]),
            (Bloccata, EventoCarta::Sblocco) => (Attiva, vec![]),
            (Attiva | Bloccata, EventoCarta::Sostituzione) => (Sostituita, vec![]),
            (s, EventoCarta::Revoca) if !s.finale() => (Revocata, vec![]),
            (da, e) => {
                return Err(ErroreSicurezza::TransizioneCarta {
                    numero: self.numero.clone(),
                    da: da.nome(),
                    verso: nome_evento(e),
                })
            }
        };
        if evento == EventoCarta::AvvioProduzione {
            self.scadenza = adesso.checked_add_months(Months::new(VALIDITA_CARTA_MESI));
        }
        self.stato = verso;
        self.storia.push((adesso, verso));
        Ok(effetti)
    }

    /// Access with this card at `adesso`: active and not expired, else EV205.
    pub fn consente_accesso(&self, adesso: DateTime<Utc>) -> Result<(), ErroreSicurezza> {
        let scaduta = self.scadenza.is_none_or(|s| adesso >= s);
        if self.stato == StatoCarta::Attiva && !scaduta {
            Ok(())
        } else {
            Err(ErroreSicurezza::censimento(
                CODICE_CARTA_NON_ATTIVA,
                format!(
                    "Carta {} non utilizzabile: {}",
                    self.numero,
                    if scaduta && self.stato == StatoCarta::Attiva {
                        "scaduta"
                    } else {
                        self.stato.nome()
                    }
                ),
            ))
        }
    }
}

fn nome_evento(e: EventoCarta) -> &'static str {
    match e {
        EventoCarta::AvvioProduzione => "inProduzione",
        EventoCarta::ArrivoInPrefettura => "inPrefettura",
        EventoCarta::Consegna { .. } => "consegnata",
        EventoCarta::Registrazione => "attiva",
        EventoCarta::Blocco => "bloccata",
        EventoCarta::Sblocco => "sbloccata",
        EventoCarta::Revoca => "revocata",
        EventoCarta::Sostituzione => "sostituita",
    }
}

/// A temporary password for one day, granted by the ALS to a holder whose card is not
/// at hand. Only its salted hash is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordGiornaliera {
    pub titolare: String,
    sale: String,
    hash: String,
    /// The end of the Italian civil day it was granted on (midnight in Rome, in UTC).
    pub scade: DateTime<Utc>,
}

impl std::fmt::Debug for PasswordGiornaliera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordGiornaliera")
            .field("titolare", &self.titolare)
            .field("scade", &self.scade)
            .field("hash", &"<redatto>")
            .finish()
    }
}

fn digest(sale: &str, password: &str) -> String {
    hex::encode(Sha256::digest(format!("{sale}:{password}").as_bytes()))
}

impl PasswordGiornaliera {
    /// Grants a fresh random password to `titolare`, valid until `fine_giornata`;
    /// returns it (shown once) and the record to keep.
    pub fn concedi(titolare: &str, fine_giornata: DateTime<Utc>) -> (String, Self) {
        use rand::Rng;
        const ALFABETO: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
        let mut rng = rand::rng();
        let mut genera = |n: usize| -> String {
            (0..n)
                .map(|_| ALFABETO[rng.random_range(0..ALFABETO.len())] as char)
                .collect()
        };
        let password = genera(16);
        let sale = genera(16);
        let record = Self {
            titolare: titolare.to_owned(),
            hash: digest(&sale, &password),
            sale,
            scade: fine_giornata,
        };
        (password, record)
    }

    /// Checks `password` at `adesso`: EV206 when wrong or past midnight.
    pub fn verifica(&self, password: &str, adesso: DateTime<Utc>) -> Result<(), ErroreSicurezza> {
        let giusta = digest(&self.sale, password) == self.hash;
        if giusta && adesso < self.scade {
            Ok(())
        } else {
            Err(ErroreSicurezza::censimento(
                CODICE_PASSWORD_GIORNALIERA,
                if giusta {
                    "Password giornaliera scaduta (vale fino alla mezzanotte del giorno di rilascio)"
                } else {
                    "Password giornaliera errata"
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_mayors_card_is_active_at_delivery_and_others_after_registration() {
        let now = t("2026-11-23T09:00:00Z");
        let mut sindaco = Carta::richiedi(numero_carta("058091", 1), "S".into(), now);
        let mut altro = Carta::richiedi(numero_carta("058091", 2), "A".into(), now);
        for c in [&mut sindaco, &mut altro] {
            c.applica(EventoCarta::AvvioProduzione, now).unwrap();
            c.applica(EventoCarta::ArrivoInPrefettura, now).unwrap();
        }
        let e = sindaco
            .applica(EventoCarta::Consegna { del_sindaco: true }, now)
            .unwrap();
        assert_eq!(e.len(), 1);
        assert!(altro
            .applica(EventoCarta::Consegna { del_sindaco: false }, now)
            .unwrap()
            .is_empty());
        assert!(sindaco.consente_accesso(now).is_ok());
        assert_eq!(altro.consente_accesso(now).unwrap_err().codice(), "EV205");
        assert_eq!(
            altro
                .applica(EventoCarta::Registrazione, now)
                .unwrap()
                .len(),
            1
        );
        assert!(altro.consente_accesso(now).is_ok());
        assert_eq!(sindaco.numero, "0580910001");
        assert_eq!(numero_carta("058", 3), "0580000003");
        // Six years later the card no longer works, whatever its state.
        assert_eq!(
            altro
                .consente_accesso(t("2032-11-23T09:00:00Z"))
                .unwrap_err()
                .codice(),
            "EV205"
        );
    }

    #[test]
    fn forbidden_transitions_leave_the_card_unchanged() {
        let now = t("2026-11-23T09:00:00Z");
        let mut c = Carta::richiedi("0580910001".into(), "S".into(), now);
        let err = c.applica(EventoCarta::Registrazione, now).unwrap_err();
        assert_eq!(err.codice(), "EV204");
        assert_eq!(c.stato, StatoCarta::Richiesta);
        c.applica(EventoCarta::Revoca, now).unwrap();
        assert_eq!(
            c.applica(EventoCarta::Revoca, now).unwrap_err().codice(),
            "EV204"
        );
        assert_eq!(
            c.applica(EventoCarta::Sblocco, now).unwrap_err().codice(),
            "EV204"
        );
    }

    #[test]
    fn daily_password_stops_at_midnight() {
        let fine = t("2026-11-23T23:00:00Z"); // midnight in Rome (CET)
        let (pw, rec) = PasswordGiornaliera::concedi("RSSMRA80A01H501U", fine);
        assert!(rec.verifica(&pw, t("2026-11-23T22:59:59Z")).is_ok());
        assert_eq!(
            rec.verifica(&pw, t("2026-11-23T23:00:00Z"))
                .unwrap_err()
                .codice(),
            "EV206"
        );
        assert_eq!(
            rec.verifica("sbagliata", t("2026-11-23T10:00:00Z"))
                .unwrap_err()
                .codice(),
            "EV206"
        );
        assert!(!format!("{rec:?}").contains(&rec.hash));
    }
}
