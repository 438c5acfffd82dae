//! The security directory: censused users and their roles per body (municipality or
//! prefecture), smart cards, daily passwords, workstation counts, the certificates we
//! issued and the workstation register (SPEC M-8.1–M-8.4).
//!
//! All rules live here, as pure functions over the directory value; the service layer
//! authorises the caller, calls one of these, persists the new value and audits.
//! A body is a municipality (6-digit ISTAT code) or a prefecture (3-digit province code).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anpr_domain::caller::Profilo;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ca::{
    AutoritaCertificazione, CertificatoEmesso, Revoca, RichiestaCertificato, TipoCertificato,
};
use crate::carta::{numero_carta, Carta, Effetto, EventoCarta, PasswordGiornaliera, StatoCarta};
use crate::errore::*;
use crate::registro::{DatiVoce, EventoPostazione, RegistroPostazioni};
use crate::wssec::RubricaUtenti;

/// Most users a prefecture may census.
pub const MASSIMO_UTENTI_PREFETTURA: usize = 5;

/// A censused user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Utente {
    pub codice_fiscale: String,
    pub cognome: String,
    pub nome: String,
    /// Institutional personal e-mail (not a PEC): PIN halves are mailed here.
    pub email: String,
    /// Profiles per body.
    pub ruoli: BTreeMap<String, BTreeSet<Profilo>>,
}

/// State of a certificate we issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatoCertificato {
    Valido,
    Bloccato,
    Revocato,
}

/// A certificate we issued, with its key until the ALP downloads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificatoRegistrato {
    pub ente: String,
    pub stato: StatoCertificato,
    pub emesso: CertificatoEmesso,
}

/// Municipality parameters (M-8.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParametriComune {
    pub sindaco: Option<String>,
    pub logo_png_base64: Option<String>,
    pub autorizzazione_bollo_virtuale: Option<String>,
    /// Secretarial fees in euro cents; `None` with `esenzione_diritti` for exemption.
    pub diritti_segreteria_centesimi: Option<u32>,
    pub esenzione_diritti: bool,
    pub ip_autorizzati: Vec<IpAddr>,
}

/// A mail waiting for delivery (PIN/PUK second halves), kept with the directory so that
/// it is written in the same atomic save as the state change that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailInUscita {
    pub destinatario: String,
    pub oggetto: String,
    pub corpo: String,
    pub carta: String,
}

/// The whole directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Direttorio {
    pub utenti: BTreeMap<String, Utente>,
    pub carte: Vec<Carta>,
    pub password_giornaliere: Vec<PasswordGiornaliera>,
    pub postazioni_dichiarate: BTreeMap<String, u32>,
    pub certificati: BTreeMap<u64, CertificatoRegistrato>,
    pub revoche: Vec<Revoca>,
    pub registro: RegistroPostazioni,
    pub parametri: BTreeMap<String, ParametriComune>,
    /// WebAuthn passkeys by credential id (base64url).
    #[serde(default)]
    pub passkey: BTreeMap<String, crate::passkey::Passkey>,
    /// Mails queued by the change being computed; the store's security outbox takes
    /// them in the same transaction as the change (they are not kept here after that).
    #[serde(default)]
    pub posta: Vec<MailInUscita>,
    /// Last card progressive per body.
    pub progressivi_carte: BTreeMap<String, u32>,
    /// Last certificate serial handed out (1 is the CA's own).
    pub ultimo_seriale: u64,
    /// Number of the current CRL: it grows by one with every change of the revocations.
    pub numero_crl: u64,
}

/// True for a prefecture code (3 digits), false for a municipality (6 digits).
pub fn e_prefettura(ente: &str) -> bool {
    ente.len() == 3
}

fn valida_ente(ente: &str) -> Result<(), ErroreSicurezza> {
    if (ente.len() == 3 || ente.len() == 6) && ente.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ErroreSicurezza::censimento(
            CODICE_NON_TROVATO,
            format!(
                "Ente {ente:?} non valido: atteso codice ISTAT (6 cifre) o di provincia (3 cifre)"
            ),
        ))
    }
}

/// A personal mailbox, not a PEC: certified mail does not accept ordinary messages, so
/// the PIN halves would be lost (seed 003).
fn valida_email(email: &str) -> Result<(), ErroreSicurezza> {
    let (locale, dominio) = email.split_once('@').unwrap_or(("", ""));
    let pec = dominio
        .split('.')
        .any(|p| p.eq_ignore_ascii_case("pec") || p.eq_ignore_ascii_case("legalmail"))
        || dominio.to_ascii_lowercase().starts_with("pec");
    if locale.is_empty() || !dominio.contains('.') || email.contains(char::is_whitespace) {
        Err(ErroreSicurezza::censimento(
            CODICE_EMAIL,
            format!("Indirizzo e-mail {email:?} non valido"),
        ))
    } else if pec {
        Err(ErroreSicurezza::censimento(
            CODICE_EMAIL,
            format!("{email} è una PEC: serve la casella di posta personale istituzionale"),
        ))
    } else {
        Ok(())
    }
}

fn non_trovato(cosa: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::NonTrovato {
        codice: CODICE_NON_TROVATO,
        cosa: cosa.to_string(),
    }
}

impl Direttorio {
    /// Census (or update) a user of `ente` with `profili` there. A prefecture has at
    /// most five users.
    pub fn censisci(
        &mut self,
        ente: &str,
        utente: Utente,
        profili: BTreeSet<Profilo>,
    ) -> Result<(), ErroreSicurezza> {
        let mut nuovo = self.clone();
        nuovo.censisci_senza_verifica(ente, utente, profili)?;
        nuovo.verifica_censimento_chiuso(ente)?;
        *self = nuovo;
        Ok(())
    }

    /// Whether the census of a prefecture is closed: once its cards have been
    /// requested, it must keep a security and a workstation administrator.
    fn censimento_chiuso(&self, ente: &str) -> bool {
        e_prefettura(ente)
            && self
                .carte
                .iter()
                .any(|c| crate::carta::ente_della_carta(&c.numero) == ente)
    }

    /// EV201 when a closed prefecture census lost its last security or workstation
    /// administrator.
    fn verifica_censimento_chiuso(&self, ente: &str) -> Result<(), ErroreSicurezza> {
        if self.censimento_chiuso(ente) {
            self.verifica_censimento_prefettura(ente)
        } else {
            Ok(())
        }
    }

    fn censisci_senza_verifica(
        &mut self,
        ente: &str,
        utente: Utente,
        profili: BTreeSet<Profilo>,
    ) -> Result<(), ErroreSicurezza> {
        valida_ente(ente)?;
        valida_email(&utente.email)?;
        if e_prefettura(ente) {
            let gia = self
                .utenti_di(ente)
                .iter()
                .filter(|u| u.codice_fiscale != utente.codice_fiscale)
                .count();
            if gia >= MASSIMO_UTENTI_PREFETTURA {
                return Err(ErroreSicurezza::censimento(
                    CODICE_TROPPI_UTENTI_PREFETTURA,
                    format!(
                        "La prefettura {ente} ha già {MASSIMO_UTENTI_PREFETTURA} utenti censiti"
                    ),
                ));
            }
        }
        let voce = self
            .utenti
            .entry(utente.codice_fiscale.clone())
            .or_insert_with(|| Utente {
                ruoli: BTreeMap::new(),
                ..utente.clone()
            });
        voce.email = utente.email;
        voce.cognome = utente.cognome;
        voce.nome = utente.nome;
        voce.ruoli.insert(ente.to_owned(), profili);
        Ok(())
    }

    /// The users of a body.
    pub fn utenti_di(&self, ente: &str) -> Vec<&Utente> {
        self.utenti
            .values()
            .filter(|u| u.ruoli.contains_key(ente))
            .collect()
    }

    /// A prefecture's census is complete only with a security and a workstation
    /// administrator.
    pub fn verifica_censimento_prefettura(&self, ente: &str) -> Result<(), ErroreSicurezza> {
        let ha = |p: Profilo| {
            self.utenti_di(ente)
                .iter()
                .any(|u| u.ruoli[ente].contains(&p))
        };
        if ha(Profilo::AmministratoreSicurezza) && ha(Profilo::AmministratorePostazioni) {
            Ok(())
        } else {
            Err(ErroreSicurezza::censimento(
                CODICE_RUOLI_PREFETTURA,
                format!("La prefettura {ente} deve censire almeno un amministratore della sicurezza e uno delle postazioni"),
            ))
        }
    }

    /// Deletes a user: their card and their user certificate are revoked at once.
    pub fn cancella_utente(
        &mut self,
        cf: &str,
        adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        let mut nuovo = self.clone();
        let enti: Vec<String> = self
            .utenti
            .get(cf)
            .map(|u| u.ruoli.keys().cloned().collect())
            .unwrap_or_default();
        nuovo.cancella_senza_verifica(cf, adesso)?;
        for ente in enti {
            nuovo.verifica_censimento_chiuso(&ente)?;
        }
        *self = nuovo;
        Ok(())
    }

    fn cancella_senza_verifica(
        &mut self,
        cf: &str,
        adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        self.utenti
            .remove(cf)
            .ok_or_else(|| non_trovato(format!("utente {cf}")))?;
        let carte: Vec<String> = self
            .carte
            .iter()
            .filter(|c| c.titolare == cf && !c.stato.finale())
            .map(|c| c.numero.clone())
            .collect();
        for n in carte {
            self.evento_carta(&n, EventoCarta::Revoca, adesso)?;
        }
        Ok(())
    }

    /// Requests a card for a censused user of `ente`; a person has at most one card
    /// that is not revoked or replaced.
    pub fn richiedi_carta(
        &mut self,
        ente: &str,
        cf: &str,
        adesso: DateTime<Utc>,
    ) -> Result<String, ErroreSicurezza> {
        let utente = self
            .utenti
            .get(cf)
            .ok_or_else(|| non_trovato(format!("utente {cf}")))?;
        if !utente.ruoli.contains_key(ente) {
            return Err(ErroreSicurezza::censimento(
                CODICE_RUOLO_MANCANTE,
                format!("Utente {cf} non censito per l'ente {ente}"),
            ));
        }
        // A prefecture's cards are requested once its census is complete.
        if e_prefettura(ente) {
            self.verifica_censimento_prefettura(ente)?;
        }
        if let Some(c) = self
            .carte
            .iter()
            .find(|c| c.titolare == cf && !c.stato.finale())
        {
            return Err(ErroreSicurezza::censimento(
                CODICE_CARTA_GIA_PRESENTE,
                format!(
                    "L'utente {cf} ha già la carta {} ({})",
                    c.numero,
                    c.stato.nome()
                ),
            ));
        }
        let p = self.progressivi_carte.entry(ente.to_owned()).or_insert(0);
        *p += 1;
        let numero = numero_carta(ente, *p);
        // Kept in number order, the order the store reads them back in.
        let i = self.carte.partition_point(|c| c.numero < numero);
        self.carte
            .insert(i, Carta::richiedi(numero.clone(), cf.to_owned(), adesso));
        Ok(numero)
    }

    /// The card with that number.
    pub fn carta(&self, numero: &str) -> Result<&Carta, ErroreSicurezza> {
        self.carte
            .iter()
            .find(|c| c.numero == numero)
            .ok_or_else(|| non_trovato(format!("carta {numero}")))
    }

    /// The holder's current card (not revoked or replaced).
    pub fn carta_di(&self, cf: &str) -> Option<&Carta> {
        self.carte
            .iter()
            .find(|c| c.titolare == cf && !c.stato.finale())
    }

    /// Applies a lifecycle event to a card. Revocation and replacement revoke the card's
    /// certificate at once (it goes on the next CRL); replacement also requests the new
    /// card, whose number is returned with the effects.
    pub fn evento_carta(
        &mut self,
        numero: &str,
        evento: EventoCarta,
        adesso: DateTime<Utc>,
    ) -> Result<(Vec<Effetto>, Option<String>), ErroreSicurezza> {
        let i = self
            .carte
            .iter()
            .position(|c| c.numero == numero)
            .ok_or_else(|| non_trovato(format!("carta {numero}")))?;
        let mut carta = self.carte[i].clone();
        let effetti = carta.applica(evento, adesso)?;
        let seriale = carta.seriale_certificato;
        let titolare = carta.titolare.clone();
        let stato = carta.stato;
        self.carte[i] = carta;
        if let Some(s) = seriale {
            match stato {
                StatoCarta::Revocata | StatoCarta::Sostituita => {
                    self.revoca_certificato(s, false, "sistema", adesso)?
                }
                StatoCarta::Bloccata => self.revoca_certificato(s, true, "sistema", adesso)?,
                StatoCarta::Attiva if evento == EventoCarta::Sblocco => {
                    self.sblocca_certificato(s, adesso)?
                }
                _ => {}
            }
        }
        let nuova = if evento == EventoCarta::Sostituzione {
            let ente = crate::carta::ente_della_carta(numero).to_owned();
            Some(self.richiedi_carta(&ente, &titolare, adesso)?)
        } else {
            None
        };
        Ok((effetti, nuova))
    }

    /// Declares how many workstations a body certifies (census).
    pub fn dichiara_postazioni(&mut self, ente: &str, numero: u32) -> Result<(), ErroreSicurezza> {
        valida_ente(ente)?;
        self.postazioni_dichiarate.insert(ente.to_owned(), numero);
        Ok(())
    }

    fn prossimo_seriale(&mut self) -> u64 {
        // Serial 1 is the CA's own certificate.
        self.ultimo_seriale = self.ultimo_seriale.max(1) + 1;
        self.ultimo_seriale
    }

    fn emetti(
        &mut self,
        ca: &AutoritaCertificazione,
        ente: &str,
        richiesta: RichiestaCertificato,
        adesso: DateTime<Utc>,
    ) -> Result<u64, ErroreSicurezza> {
        let seriale = self.prossimo_seriale();
        let emesso = ca.emetti(&richiesta, seriale, adesso)?;
        self.certificati.insert(
            seriale,
            CertificatoRegistrato {
                ente: ente.to_owned(),
                stato: StatoCertificato::Valido,
                emesso,
            },
        );
        Ok(seriale)
    }

    /// Issues the certificates of `ente` still missing: one per declared workstation
    /// (`ISTAT-PC-NNNN`) and the server certificate (`ISTAT-SERVER`). Returns the new
    /// serials.
    pub fn emetti_certificati_postazione(
        &mut self,
        ca: &AutoritaCertificazione,
        ente: &str,
        operatore: &str,
        adesso: DateTime<Utc>,
    ) -> Result<Vec<u64>, ErroreSicurezza> {
        let n = *self.postazioni_dichiarate.get(ente).ok_or_else(|| {
            ErroreSicurezza::censimento(
                CODICE_POSTAZIONI_ESAURITE,
                format!("Nessuna postazione dichiarata per {ente}"),
            )
        })?;
        let mut nomi: Vec<(String, TipoCertificato)> = (1..=n)
            .map(|i| (format!("{ente}-PC-{i:04}"), TipoCertificato::Postazione))
            .collect();
        nomi.push((format!("{ente}-SERVER"), TipoCertificato::Server));
        let mut nuovi = Vec::new();
        for (cn, tipo) in nomi {
            if self.certificato_attuale(&cn).is_some() {
                continue;
            }
            let s = self.emetti(
                ca,
                ente,
                RichiestaCertificato {
                    tipo,
                    cn: cn.clone(),
                    ou: Some(ente.to_owned()),
                    nomi: vec![],
                },
                adesso,
            )?;
            self.registro.aggiungi(DatiVoce {
                istante: adesso,
                evento: EventoPostazione::Emesso,
                postazione: cn,
                seriale: s,
                mac: None,
                nome_computer: None,
                operatore: operatore.to_owned(),
            });
            nuovi.push(s);
        }
        Ok(nuovi)
    }

    /// Renews a workstation or server certificate before it expires: a new certificate
    /// with a new key replaces it and the old one is revoked.
    pub fn rinnova_certificato(
        &mut self,
        ca: &AutoritaCertificazione,
        seriale: u64,
        operatore: &str,
        adesso: DateTime<Utc>,
    ) -> Result<u64, ErroreSicurezza> {
        let vecchio = self
            .certificati
            .get(&seriale)
            .cloned()
            .ok_or_else(|| non_trovato(format!("certificato {seriale}")))?;
        let nuovo = self.emetti(
            ca,
            &vecchio.ente,
            RichiestaCertificato {
                tipo: vecchio.emesso.tipo,
                cn: vecchio.emesso.cn.clone(),
                ou: Some(vecchio.ente.clone()),
                nomi: vec![],
            },
            adesso,
        )?;
        self.revoca_certificato(seriale, false, operatore, adesso)?;
        self.registro.aggiungi(DatiVoce {
            istante: adesso,
            evento: EventoPostazione::Rinnovato,
            postazione: vecchio.emesso.cn,
            seriale: nuovo,
            mac: None,
            nome_computer: None,
            operatore: operatore.to_owned(),
        });
        Ok(nuovo)
    }

    /// Issues the X.509 certificate of a card (CN and serialNumber = the holder's CF).
    pub fn emetti_certificato_carta(
        &mut self,
        ca: &AutoritaCertificazione,
        numero: &str,
        adesso: DateTime<Utc>,
    ) -> Result<u64, ErroreSicurezza> {
        let carta = self.carta(numero)?.clone();
        let ente = crate::carta::ente_della_carta(numero).to_owned();
        let s = self.emetti(
            ca,
            &ente,
            RichiestaCertificato {
                tipo: TipoCertificato::Utente,
                cn: carta.titolare.clone(),
                ou: Some(numero.to_owned()),
                nomi: vec![],
            },
            adesso,
        )?;
        if let Some(c) = self.carte.iter_mut().find(|c| c.numero == numero) {
            c.seriale_certificato = Some(s);
        }
        Ok(s)
    }

    /// The valid or blocked certificate with that CN.
    pub fn certificato_attuale(&self, cn: &str) -> Option<&CertificatoRegistrato> {
        self.certificati
            .values()
            .rev()
            .find(|c| c.emesso.cn == cn && c.stato != StatoCertificato::Revocato)
    }

    /// Revokes (or blocks, `bloccato`) a certificate: it goes on the next CRL.
    pub fn revoca_certificato(
        &mut self,
        seriale: u64,
        bloccato: bool,
        operatore: &str,
        adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        let c = self
            .certificati
            .get_mut(&seriale)
            .ok_or_else(|| non_trovato(format!("certificato {seriale}")))?;
        if c.stato == StatoCertificato::Revocato {
            return Err(ErroreSicurezza::certificato(
                CODICE_CERTIFICATO_REVOCATO,
                format!("Certificato {seriale} già revocato"),
            ));
        }
        c.stato = if bloccato {
            StatoCertificato::Bloccato
        } else {
            StatoCertificato::Revocato
        };
        let cn = c.emesso.cn.clone();
        let tipo = c.emesso.tipo;
        self.revoche.retain(|r| r.seriale != seriale);
        self.revoche.push(Revoca {
            seriale,
            istante: adesso,
            bloccato,
        });
        self.revoche.sort_by_key(|r| (r.istante, r.seriale));
        if tipo != TipoCertificato::Utente {
            self.registro.aggiungi(DatiVoce {
                istante: adesso,
                evento: if bloccato {
                    EventoPostazione::Bloccato
                } else {
                    EventoPostazione::Revocato
                },
                postazione: cn,
                seriale,
                mac: None,
                nome_computer: None,
                operatore: operatore.to_owned(),
            });
        }
        Ok(())
    }

    fn sblocca_certificato(
        &mut self,
        seriale: u64,
        _adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        let c = self
            .certificati
            .get_mut(&seriale)
            .ok_or_else(|| non_trovato(format!("certificato {seriale}")))?;
        if c.stato == StatoCertificato::Bloccato {
            c.stato = StatoCertificato::Valido;
            self.revoche.retain(|r| r.seriale != seriale);
        }
        Ok(())
    }

    /// Records where a workstation certificate was installed.
    pub fn registra_installazione(
        &mut self,
        seriale: u64,
        mac: &str,
        nome_computer: &str,
        operatore: &str,
        adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        let c = self
            .certificati
            .get(&seriale)
            .ok_or_else(|| non_trovato(format!("certificato {seriale}")))?;
        self.registro.aggiungi(DatiVoce {
            istante: adesso,
            evento: EventoPostazione::Installato,
            postazione: c.emesso.cn.clone(),
            seriale,
            mac: Some(mac.to_owned()),
            nome_computer: Some(nome_computer.to_owned()),
            operatore: operatore.to_owned(),
        });
        Ok(())
    }

    /// The CRL of everything revoked or blocked, numbered [`Direttorio::numero_crl`]
    /// (the caller raises the number when the revocations change): every process
    /// issues the same list under the same number.
    pub fn crl(
        &self,
        ca: &AutoritaCertificazione,
        adesso: DateTime<Utc>,
    ) -> Result<Vec<u8>, ErroreSicurezza> {
        ca.crl(&self.revoche, self.numero_crl.max(1), adesso)
    }

    /// Grants `cf` a daily password (ALS), replacing any previous one.
    pub fn concedi_password_giornaliera(
        &mut self,
        cf: &str,
        fine_giornata: DateTime<Utc>,
    ) -> Result<String, ErroreSicurezza> {
        if !self.utenti.contains_key(cf) {
            return Err(non_trovato(format!("utente {cf}")));
        }
        let (pw, rec) = PasswordGiornaliera::concedi(cf, fine_giornata);
        self.password_giornaliere.retain(|p| p.titolare != cf);
        let i = self
            .password_giornaliere
            .partition_point(|p| p.titolare.as_str() < cf);
        self.password_giornaliere.insert(i, rec);
        Ok(pw)
    }

    /// Checks a daily password.
    pub fn verifica_password_giornaliera(
        &self,
        cf: &str,
        password: &str,
        adesso: DateTime<Utc>,
    ) -> Result<(), ErroreSicurezza> {
        self.password_giornaliere
            .iter()
            .find(|p| p.titolare == cf)
            .ok_or_else(|| {
                ErroreSicurezza::censimento(
                    CODICE_PASSWORD_GIORNALIERA,
                    "Nessuna password giornaliera concessa",
                )
            })?
            .verifica(password, adesso)
    }
}

impl RubricaUtenti for Direttorio {
    fn profili(&self, cf: &str) -> Option<BTreeMap<String, BTreeSet<Profilo>>> {
        self.utenti.get(cf).map(|u| u.ruoli.clone())
    }

    fn ip_autorizzati(&self, comune: &str) -> Option<Vec<IpAddr>> {
        self.parametri
            .get(comune)
            .filter(|p| !p.ip_autorizzati.is_empty())
            .map(|p| p.ip_autorizzati.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    fn utente(cf: &str, email: &str) -> Utente {
        Utente {
            codice_fiscale: cf.into(),
            cognome: "C".into(),
            nome: "N".into(),
            email: email.into(),
            ruoli: BTreeMap::new(),
        }
    }

    fn p(x: Profilo) -> BTreeSet<Profilo> {
        BTreeSet::from([x])
    }

    #[test]
    fn census_rules() {
        let mut d = Direttorio::default();
        let pec = d.censisci(
            "058091",
            utente("A", "a@pec.comune.roma.it"),
            p(Profilo::Sindaco),
        );
        assert_eq!(pec.unwrap_err().codice(), CODICE_EMAIL);
        let bad = d.censisci("058091", utente("A", "nobody"), p(Profilo::Sindaco));
        assert_eq!(bad.unwrap_err().codice(), CODICE_EMAIL);
        assert_eq!(
            d.censisci("58091", utente("A", "a@x.it"), p(Profilo::Sindaco))
                .unwrap_err()
                .codice(),
            CODICE_NON_TROVATO
        );
        for (i, profilo) in [
            Profilo::AmministratorePrefettura,
            Profilo::AmministratoreSicurezza,
            Profilo::AmministratorePrefettura,
            Profilo::AmministratorePrefettura,
            Profilo::AmministratorePrefettura,
        ]
        .into_iter()
        .enumerate()
        {
            d.censisci(
                "058",
                utente(&format!("P{i}"), "p@prefettura.interno.it"),
                p(profilo),
            )
            .unwrap();
        }
        assert_eq!(
            d.verifica_censimento_prefettura("058")
                .unwrap_err()
                .codice(),
            CODICE_RUOLI_PREFETTURA
        );
        let sesto = d.censisci(
            "058",
            utente("P5", "p@prefettura.interno.it"),
            p(Profilo::AmministratorePostazioni),
        );
        assert_eq!(sesto.unwrap_err().codice(), CODICE_TROPPI_UTENTI_PREFETTURA);
        // Updating one of the five is not a sixth user.
        d.censisci(
            "058",
            utente("P0", "p@prefettura.interno.it"),
            p(Profilo::AmministratorePostazioni),
        )
        .unwrap();
        d.verifica_censimento_prefettura("058").unwrap();
        // One person, several bodies.
        d.censisci(
            "058091",
            utente("P0", "p@prefettura.interno.it"),
            p(Profilo::OperatoreConsultazione),
        )
        .unwrap();
        assert_eq!(d.profili("P0").unwrap().len(), 2);
    }

    #[test]
    fn a_prefecture_gets_cards_only_with_its_administrators_and_keeps_them() {
        let mut d = Direttorio::default();
        d.censisci(
            "058",
            utente("A", "a@prefettura.it"),
            p(Profilo::AmministratoreSicurezza),
        )
        .unwrap();
        // Incomplete census: no card yet (EV201), nothing changed.
        let prima = d.clone();
        assert_eq!(
            d.richiedi_carta("058", "A", t()).unwrap_err().codice(),
            CODICE_RUOLI_PREFETTURA
        );
        assert_eq!(d, prima);
        d.censisci(
            "058",
            utente("B", "b@prefettura.it"),
            p(Profilo::AmministratorePostazioni),
        )
        .unwrap();
        let n = d.richiedi_carta("058", "A", t()).unwrap();
        assert_eq!(n, "0580000001");
        // Closed census: the last workstation administrator can neither lose the
        // profile nor be deleted.
        let prima = d.clone();
        let e = d.censisci(
            "058",
            utente("B", "b@prefettura.it"),
            p(Profilo::AmministratorePrefettura),
        );
        assert_eq!(e.unwrap_err().codice(), CODICE_RUOLI_PREFETTURA);
        assert_eq!(
            d.cancella_utente("B", t()).unwrap_err().codice(),
            CODICE_RUOLI_PREFETTURA
        );
        assert_eq!(d, prima, "nothing half-done");
        // With a second one, the first may go.
        d.censisci(
            "058",
            utente("C", "c@prefettura.it"),
            p(Profilo::AmministratorePostazioni),
        )
        .unwrap();
        d.cancella_utente("B", t()).unwrap();
        // Municipalities are not concerned.
        d.censisci("058091", utente("S", "s@comune.it"), p(Profilo::Sindaco))
            .unwrap();
        d.richiedi_carta("058091", "S", t()).unwrap();
    }

    #[test]
    fn certificates_renewal_deletion_and_register() {
        let ca = AutoritaCertificazione::nuova(t()).unwrap();
        let mut d = Direttorio::default();
        let err = d
            .emetti_certificati_postazione(&ca, "058091", "ALP", t())
            .unwrap_err();
        assert_eq!(err.codice(), CODICE_POSTAZIONI_ESAURITE);
        d.dichiara_postazioni("058091", 1).unwrap();
        let s = d
            .emetti_certificati_postazione(&ca, "058091", "ALP", t())
            .unwrap();
        assert_eq!(s.len(), 2);
        // Issuing again issues nothing: the declared ones exist.
        assert!(d
            .emetti_certificati_postazione(&ca, "058091", "ALP", t())
            .unwrap()
            .is_empty());
        let pc = d
            .certificato_attuale("058091-PC-0001")
            .unwrap()
            .emesso
            .clone();
        assert_eq!(
            pc.valido_al,
            "2032-11-23T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let nuovo = d.rinnova_certificato(&ca, pc.seriale, "ALP", t()).unwrap();
        assert_eq!(
            d.certificato_attuale("058091-PC-0001")
                .unwrap()
                .emesso
                .seriale,
            nuovo
        );
        assert_eq!(d.certificati[&pc.seriale].stato, StatoCertificato::Revocato);
        assert!(d.revoche.iter().any(|r| r.seriale == pc.seriale));
        assert_eq!(
            d.registro.voci.last().unwrap().dati.evento,
            EventoPostazione::Rinnovato
        );
        d.registro.verifica().unwrap();

        d.censisci(
            "058091",
            utente("U", "u@comune.roma.it"),
            p(Profilo::OperatoreAnagrafe),
        )
        .unwrap();
        let n = d.richiedi_carta("058091", "U", t()).unwrap();
        d.evento_carta(&n, EventoCarta::AvvioProduzione, t())
            .unwrap();
        let sc = d.emetti_certificato_carta(&ca, &n, t()).unwrap();
        d.cancella_utente("U", t()).unwrap();
        assert_eq!(d.carta(&n).unwrap().stato, StatoCarta::Revocata);
        assert_eq!(d.certificati[&sc].stato, StatoCertificato::Revocato);
        assert!(d.profili("U").is_none());
    }
}
