//! Security console use cases (SPEC M-8): census, smart cards, workstation
//! certificates, the workstation register, municipality parameters, and the caller
//! identity proved by a client certificate or a daily password.
//!
//! The rules are in `anpr-sicurezza`; here every use case is authorised with the one
//! permission matrix ([`crate::authz`]), scoped to the caller's own body (a municipality
//! acts on its own users, cards and workstations; a prefecture on the cards of its
//! province; registry staff everywhere), applied to a copy of the directory, persisted,
//! swapped in, and audited. Every security event — card state change, certificate issue
//! and revocation, login, failed login, permission denied — is an audit entry of the
//! caller's environment.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, RwLock};

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_domain::error::Anomalia;
use anpr_sicurezza::archivio::Archivio;
use anpr_sicurezza::ca::AutoritaCertificazione;
use anpr_sicurezza::carta::{Effetto, EventoCarta};
use anpr_sicurezza::catena::Fiducia;
use anpr_sicurezza::direttorio::{Direttorio, MailInUscita, ParametriComune, Utente};
use anpr_sicurezza::mtls::VerificatoreClienti;
use anpr_sicurezza::ErroreSicurezza;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::authz::{self, Permesso};
use crate::clock::{inizio_giorno_italiano, italian_date};
use crate::{Registry, ServiceError};

/// The security state of the process: CA, directory, current CRL.
pub struct Sicurezza {
    archivio: Option<Archivio>,
    ca: AutoritaCertificazione,
    direttorio: tokio::sync::Mutex<Direttorio>,
    /// The directory as last committed, for lock-free reads on every request.
    istantanea: RwLock<Arc<Direttorio>>,
    crl: RwLock<Vec<u8>>,
    verificatore: RwLock<Option<Arc<VerificatoreClienti>>>,
}

impl fmt::Debug for Sicurezza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sicurezza")
            .field("archivio", &self.archivio)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

fn leggi<T: Clone>(l: &RwLock<T>) -> T {
    l.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn scrivi<T>(l: &RwLock<T>, v: T) {
    *l.write().unwrap_or_else(std::sync::PoisonError::into_inner) = v;
}

impl Sicurezza {
    /// Opens the security files of `archivio` (CA and directory), or keeps everything in
    /// memory when `None`.
    pub fn apri(
        archivio: Option<Archivio>,
        adesso: DateTime<Utc>,
    ) -> Result<Self, ErroreSicurezza> {
        let (ca, mut direttorio) = match &archivio {
            Some(a) => (a.ca(adesso)?, a.direttorio()?),
            None => (
                AutoritaCertificazione::nuova(adesso)?,
                Direttorio::default(),
            ),
        };
        let crl = direttorio.crl(&ca, adesso)?;
        Ok(Self {
            archivio,
            ca,
            istantanea: RwLock::new(Arc::new(direttorio.clone())),
            direttorio: tokio::sync::Mutex::new(direttorio),
            crl: RwLock::new(crl),
            verificatore: RwLock::new(None),
        })
    }

    pub fn ca(&self) -> &AutoritaCertificazione {
        &self.ca
    }

    /// The current CRL (DER).
    pub fn crl(&self) -> Vec<u8> {
        leggi(&self.crl)
    }

    /// Our CA and current CRL, for message-signature checks.
    pub fn fiducia(&self) -> Fiducia {
        Fiducia {
            ca_der: self.ca.certificato_der().to_vec(),
            crl_der: self.crl(),
        }
    }

    /// The directory as last committed.
    pub fn direttorio(&self) -> Arc<Direttorio> {
        leggi(&self.istantanea)
    }

    /// The mutual-TLS verifier, created on first call; later revocations update it.
    pub fn verificatore_tls(&self) -> Result<Arc<VerificatoreClienti>, ErroreSicurezza> {
        if let Some(v) = leggi(&self.verificatore) {
            return Ok(v);
        }
        let v = VerificatoreClienti::nuovo(self.ca.certificato_der(), &self.crl())?;
        scrivi(&self.verificatore, Some(v.clone()));
        Ok(v)
    }
}

/// What a console use case did, for the audit entry.
struct Esito<T> {
    valore: T,
    oggetto: String,
}

fn rifiuto(registry: &Registry, e: ErroreSicurezza) -> ServiceError {
    match e {
        ErroreSicurezza::Interno(causa) => registry.interno(causa),
        e => ServiceError::Rifiutata {
            anomalie: vec![Anomalia::errore(e.codice(), e.to_string())],
            riferimento: registry.riferimento(None),
        },
    }
}

/// Our code for a security console used without the security component configured.
pub const CODICE_SICUREZZA_NON_CONFIGURATA: &str = "EV248";

/// A card event as the console names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzioneCarta {
    AvvioProduzione,
    ArrivoInPrefettura,
    Consegna,
    Registrazione,
    Blocco,
    Sblocco,
    Revoca,
    Sostituzione,
}

impl AzioneCarta {
    /// The permission each action needs.
    pub fn permesso(self) -> Permesso {
        match self {
            AzioneCarta::AvvioProduzione | AzioneCarta::ArrivoInPrefettura => {
                Permesso::ProduzioneCarte
            }
            AzioneCarta::Consegna => Permesso::ConsegnaCarte,
            _ => Permesso::GestioneCarte,
        }
    }

    pub fn nome(self) -> &'static str {
        match self {
            AzioneCarta::AvvioProduzione => "cartaInProduzione",
            AzioneCarta::ArrivoInPrefettura => "cartaInPrefettura",
            AzioneCarta::Consegna => "cartaConsegnata",
            AzioneCarta::Registrazione => "cartaRegistrata",
            AzioneCarta::Blocco => "cartaBloccata",
            AzioneCarta::Sblocco => "cartaSbloccata",
            AzioneCarta::Revoca => "cartaRevocata",
            AzioneCarta::Sostituzione => "cartaSostituita",
        }
    }
}

/// The answer to a card event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsitoCarta {
    pub numero: String,
    pub stato: String,
    /// The replacement card, when the event was a replacement.
    pub nuova_carta: Option<String>,
    pub mail_inviate: Vec<String>,
}

/// The municipality (6 digits) a card number belongs to, or the province (3 digits).
fn ente_carta(numero: &str) -> &str {
    if numero.get(3..6) == Some("000") && numero.len() == 10 {
        &numero[..3]
    } else {
        numero.get(..6).unwrap_or(numero)
    }
}

/// EV208 unless certificate `seriale` was issued to `ente`.
fn certificato_dell_ente(d: &Direttorio, seriale: u64, ente: &str) -> Result<(), ErroreSicurezza> {
    match d.certificati.get(&seriale) {
        Some(c) if c.ente == ente => Ok(()),
        _ => Err(ErroreSicurezza::NonTrovato {
            codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
            cosa: format!("certificato {seriale} dell'ente {ente}"),
        }),
    }
}

/// EV208 unless `cf` is censused for `ente`.
fn utente_dell_ente(d: &Direttorio, cf: &str, ente: &str) -> Result<(), ErroreSicurezza> {
    if d.utenti.get(cf).is_some_and(|u| u.ruoli.contains_key(ente)) {
        Ok(())
    } else {
        Err(ErroreSicurezza::NonTrovato {
            codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
            cosa: format!("utente {cf} dell'ente {ente}"),
        })
    }
}

impl Registry {
    fn sicurezza(&self) -> Result<&Arc<Sicurezza>, ServiceError> {
        self.sicurezza
            .as_ref()
            .ok_or_else(|| ServiceError::Rifiutata {
                anomalie: vec![Anomalia::errore(
                    CODICE_SICUREZZA_NON_CONFIGURATA,
                    "Componente di sicurezza non configurato su questo server",
                )],
                riferimento: self.riferimento(None),
            })
    }

    /// Whether `ctx` may act on body `ente` with `permesso`: its own municipality; for a
    /// prefecture administrator, the prefecture it is censused for and the
    /// municipalities of its province; everything for national profiles.
    fn nel_proprio_ambito(
        &self,
        ctx: &CallerContext,
        ente: &str,
        permesso: Permesso,
        d: &Direttorio,
    ) -> bool {
        if authz::ambito_nazionale(ctx) {
            return true;
        }
        if ctx.comune.as_ref().is_some_and(|c| c.to_string() == ente) {
            return true;
        }
        // A prefecture acts for its province only through the prefecture profile.
        ctx.has(Profilo::AmministratorePrefettura)
            && matches!(
                permesso,
                Permesso::ConsegnaCarte | Permesso::CensimentoUtenti
            )
            && d.utenti.get(&ctx.utente).is_some_and(|u| {
                u.ruoli.iter().any(|(pref, profili)| {
                    pref.len() == 3
                        && profili.contains(&Profilo::AmministratorePrefettura)
                        && ente.starts_with(pref.as_str())
                })
            })
    }

    /// Runs one console change: authorise, scope, apply to a copy, persist, commit,
    /// refresh the CRL when revocations changed, audit.
    async fn modifica_sicurezza<T>(
        &self,
        ctx: &CallerContext,
        permesso: Permesso,
        azione: &str,
        ente: &str,
        f: impl FnOnce(
            &mut Direttorio,
            &AutoritaCertificazione,
            DateTime<Utc>,
        ) -> Result<Esito<T>, ErroreSicurezza>,
    ) -> Result<T, ServiceError> {
        self.autorizza(ctx, permesso, azione).await?;
        let sic = self.sicurezza()?.clone();
        let mut guard = sic.direttorio.lock().await;
        if !self.nel_proprio_ambito(ctx, ente, permesso, &guard) {
            drop(guard);
            return Err(self.nega(ctx, permesso, azione).await);
        }
        let adesso = self.clock().now();
        let mut nuovo = guard.clone();
        let esito = f(&mut nuovo, &sic.ca, adesso).map_err(|e| rifiuto(self, e))?;
        let crl_cambiata = nuovo.revoche != guard.revoche;
        if let Some(a) = &sic.archivio {
            a.salva(&nuovo).map_err(|e| rifiuto(self, e))?;
        }
        if crl_cambiata {
            let crl = nuovo.crl(&sic.ca, adesso).map_err(|e| rifiuto(self, e))?;
            if let Some(v) = leggi(&sic.verificatore) {
                v.aggiorna_crl(&crl).map_err(|e| rifiuto(self, e))?;
            }
            scrivi(&sic.crl, crl);
        }
        scrivi(&sic.istantanea, Arc::new(nuovo.clone()));
        *guard = nuovo;
        drop(guard);
        self.audit_sicurezza(ctx, azione, Some(esito.oggetto), "ok")
            .await?;
        Ok(esito.valore)
    }

    async fn audit_sicurezza(
        &self,
        ctx: &CallerContext,
        azione: &str,
        oggetto: Option<String>,
        esito: &str,
    ) -> Result<(), ServiceError> {
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Amministrazione,
            azione,
            oggetto,
            esito.into(),
        );
        self.store(ctx.ambiente)?
            .append_audit(voce)
            .await
            .map(|_| ())
            .map_err(|e| self.interno(e))
    }

    /// Census (or update) a user of `ente` with `profili` there.
    pub async fn censisci_utente(
        &self,
        ctx: &CallerContext,
        ente: &str,
        utente: Utente,
        profili: BTreeSet<Profilo>,
    ) -> Result<(), ServiceError> {
        let cf = utente.codice_fiscale.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "utenteCensito",
            ente,
            |d, _, _| {
                d.censisci(ente, utente, profili)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("utente:{cf}@{ente}"),
                })
            },
        )
        .await
    }

    /// Deletes a user: their card and its certificate are revoked at once.
    pub async fn cancella_utente(
        &self,
        ctx: &CallerContext,
        ente: &str,
        cf: &str,
    ) -> Result<(), ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "utenteCancellato",
            ente,
            |d, _, adesso| {
                utente_dell_ente(d, cf, ente)?;
                d.cancella_utente(cf, adesso)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("utente:{cf}@{ente}"),
                })
            },
        )
        .await
    }

    /// Declares the number of workstations of `ente` (census).
    pub async fn dichiara_postazioni(
        &self,
        ctx: &CallerContext,
        ente: &str,
        numero: u32,
    ) -> Result<(), ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "postazioniDichiarate",
            ente,
            |d, _, _| {
                d.dichiara_postazioni(ente, numero)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("postazioni:{ente}={numero}"),
                })
            },
        )
        .await
    }

    /// Requests the card of a censused user of `ente`; returns its number.
    pub async fn richiedi_carta(
        &self,
        ctx: &CallerContext,
        ente: &str,
        cf: &str,
    ) -> Result<String, ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::CensimentoUtenti,
            "cartaRichiesta",
            ente,
            |d, _, adesso| {
                let n = d.richiedi_carta(ente, cf, adesso)?;
                Ok(Esito {
                    oggetto: format!("carta:{n}"),
                    valore: n,
                })
            },
        )
        .await
    }

    /// Applies a lifecycle event to a card. Production also issues the card's
    /// certificate; activation mails the holder the PIN/PUK halves.
    pub async fn evento_carta(
        &self,
        ctx: &CallerContext,
        numero: &str,
        azione: AzioneCarta,
    ) -> Result<EsitoCarta, ServiceError> {
        let ente = ente_carta(numero).to_owned();
        let sindaco_ctx = ctx.has(Profilo::Sindaco);
        let d = self.sicurezza()?.direttorio();
        // The mayor's own card is the one that becomes active at delivery; which card
        // that is comes from the directory (the holder censused as ASC).
        let del_sindaco = d
            .carta(numero)
            .ok()
            .and_then(|c| d.utenti.get(&c.titolare))
            .is_some_and(|u| {
                u.ruoli
                    .get(&ente)
                    .is_some_and(|p| p.contains(&Profilo::Sindaco))
            });
        // The mayor may register only the ALS's card; the ALS registers the others.
        if azione == AzioneCarta::Registrazione
            && sindaco_ctx
            && !ctx.has(Profilo::AmministratoreSicurezza)
        {
            let e_als = d
                .carta(numero)
                .ok()
                .and_then(|c| d.utenti.get(&c.titolare))
                .is_some_and(|u| {
                    u.ruoli
                        .get(&ente)
                        .is_some_and(|p| p.contains(&Profilo::AmministratoreSicurezza))
                });
            if !e_als {
                return Err(self.nega(ctx, Permesso::GestioneCarte, azione.nome()).await);
            }
        }
        let evento = match azione {
            AzioneCarta::AvvioProduzione => EventoCarta::AvvioProduzione,
            AzioneCarta::ArrivoInPrefettura => EventoCarta::ArrivoInPrefettura,
            AzioneCarta::Consegna => EventoCarta::Consegna { del_sindaco },
            AzioneCarta::Registrazione => EventoCarta::Registrazione,
            AzioneCarta::Blocco => EventoCarta::Blocco,
            AzioneCarta::Sblocco => EventoCarta::Sblocco,
            AzioneCarta::Revoca => EventoCarta::Revoca,
            AzioneCarta::Sostituzione => EventoCarta::Sostituzione,
        };
        self.modifica_sicurezza(
            ctx,
            azione.permesso(),
            azione.nome(),
            &ente,
            |d, ca, adesso| {
                let (effetti, nuova) = d.evento_carta(numero, evento, adesso)?;
                if evento == EventoCarta::AvvioProduzione {
                    d.emetti_certificato_carta(ca, numero, adesso)?;
                }
                if let Some(n) = &nuova {
                    // The replacement is produced at once: same holder, new key.
                    d.evento_carta(n, EventoCarta::AvvioProduzione, adesso)?;
                    d.emetti_certificato_carta(ca, n, adesso)?;
                }
                let mut mail = Vec::new();
                for e in effetti {
                    let Effetto::MailSecondaMetaPin { numero, titolare } = e;
                    let email = d
                        .utenti
                        .get(&titolare)
                        .map(|u| u.email.clone())
                        .unwrap_or_default();
                    d.posta.push(MailInUscita {
                        destinatario: email.clone(),
                        oggetto: "Seconda metà di PIN e PUK della carta".into(),
                        carta: numero,
                    });
                    mail.push(email);
                }
                let carta = d.carta(numero)?;
                Ok(Esito {
                    oggetto: format!("carta:{numero}:{}", carta.stato.nome()),
                    valore: EsitoCarta {
                        numero: numero.to_owned(),
                        stato: carta.stato.nome().to_owned(),
                        nuova_carta: nuova,
                        mail_inviate: mail,
                    },
                })
            },
        )
        .await
    }

    /// The content of a card's chip, as a PKCS#12 bundle (its certificate and key)
    /// protected by `password`: we have no physical cards, so whoever hands cards over
    /// (the prefecture to the mayor, the mayor or ALS to the holders) hands this over.
    pub async fn materiale_carta(
        &self,
        ctx: &CallerContext,
        numero: &str,
        password: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        let ente = ente_carta(numero).to_owned();
        let permesso = if authz::autorizza(ctx, Permesso::GestioneCarte).is_ok() {
            Permesso::GestioneCarte
        } else {
            Permesso::ConsegnaCarte
        };
        self.modifica_sicurezza(
            ctx,
            permesso,
            "cartaConsegnataAlTitolare",
            &ente,
            |d, ca, _| {
                let carta = d.carta(numero)?;
                let seriale =
                    carta
                        .seriale_certificato
                        .ok_or_else(|| ErroreSicurezza::Certificato {
                            codice: anpr_sicurezza::errore::CODICE_CERTIFICATO_NON_VALIDO,
                            messaggio: format!("La carta {numero} non è ancora stata prodotta"),
                        })?;
                let cert = &d
                    .certificati
                    .get(&seriale)
                    .ok_or_else(|| ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: format!("certificato {seriale}"),
                    })?
                    .emesso;
                Ok(Esito {
                    valore: ca.pkcs12(cert, password)?,
                    oggetto: format!("carta:{numero}"),
                })
            },
        )
        .await
    }

    /// Grants a daily password to a holder of `ente` (ALS); returns it (shown once).
    pub async fn concedi_password_giornaliera(
        &self,
        ctx: &CallerContext,
        ente: &str,
        cf: &str,
    ) -> Result<String, ServiceError> {
        let fine = inizio_giorno_italiano(italian_date(self.clock().now()) + chrono::Days::new(1));
        self.modifica_sicurezza(
            ctx,
            Permesso::GestioneCarte,
            "passwordGiornalieraConcessa",
            ente,
            |d, _, _| {
                utente_dell_ente(d, cf, ente)?;
                let pw = d.concedi_password_giornaliera(cf, fine)?;
                Ok(Esito {
                    valore: pw,
                    oggetto: format!("utente:{cf}"),
                })
            },
        )
        .await
    }

    /// Issues the missing workstation certificates and the server certificate of
    /// `ente`; returns their serials.
    pub async fn emetti_certificati_postazione(
        &self,
        ctx: &CallerContext,
        ente: &str,
    ) -> Result<Vec<u64>, ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatiEmessi",
            ente,
            |d, ca, adesso| {
                let v = d.emetti_certificati_postazione(ca, ente, &operatore, adesso)?;
                Ok(Esito {
                    oggetto: format!("certificati:{ente}:{v:?}"),
                    valore: v,
                })
            },
        )
        .await
    }

    /// A PKCS#12 bundle of a certificate of `ente`, protected by `password`; the
    /// download is recorded in the workstation register.
    pub async fn scarica_certificato(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
        password: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatoScaricato",
            ente,
            |d, ca, adesso| {
                let c = d
                    .certificati
                    .get(&seriale)
                    .filter(|c| {
                        c.ente == ente
                            && c.emesso.tipo != anpr_sicurezza::ca::TipoCertificato::Utente
                    })
                    .ok_or_else(|| ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: format!("certificato {seriale} dell'ente {ente}"),
                    })?;
                if c.stato != anpr_sicurezza::direttorio::StatoCertificato::Valido {
                    return Err(ErroreSicurezza::Certificato {
                        codice: anpr_sicurezza::errore::CODICE_CERTIFICATO_REVOCATO,
                        messaggio: format!("Certificato {seriale} revocato o bloccato"),
                    });
                }
                let p12 = ca.pkcs12(&c.emesso, password)?;
                let cn = c.emesso.cn.clone();
                d.registro.aggiungi(anpr_sicurezza::registro::DatiVoce {
                    istante: adesso,
                    evento: anpr_sicurezza::registro::EventoPostazione::Scaricato,
                    postazione: cn.clone(),
                    seriale,
                    mac: None,
                    nome_computer: None,
                    operatore,
                });
                Ok(Esito {
                    valore: p12,
                    oggetto: format!("certificato:{seriale}:{cn}"),
                })
            },
        )
        .await
    }

    /// Records where a certificate of `ente` was installed.
    pub async fn registra_installazione(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
        mac: &str,
        nome_computer: &str,
    ) -> Result<(), ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatoInstallato",
            ente,
            |d, _, adesso| {
                certificato_dell_ente(d, seriale, ente)?;
                d.registra_installazione(seriale, mac, nome_computer, &operatore, adesso)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("certificato:{seriale}:{nome_computer}"),
                })
            },
        )
        .await
    }

    /// Revokes (or blocks) a workstation or server certificate of `ente`.
    pub async fn revoca_certificato(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
        bloccato: bool,
    ) -> Result<(), ServiceError> {
        let operatore = ctx.utente.clone();
        let azione = if bloccato {
            "certificatoBloccato"
        } else {
            "certificatoRevocato"
        };
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            azione,
            ente,
            |d, _, adesso| {
                certificato_dell_ente(d, seriale, ente)?;
                d.revoca_certificato(seriale, bloccato, &operatore, adesso)?;
                Ok(Esito {
                    valore: (),
                    oggetto: format!("certificato:{seriale}"),
                })
            },
        )
        .await
    }

    /// Renews a certificate of `ente`: a new one replaces it, the old one is revoked.
    pub async fn rinnova_certificato(
        &self,
        ctx: &CallerContext,
        ente: &str,
        seriale: u64,
    ) -> Result<u64, ServiceError> {
        let operatore = ctx.utente.clone();
        self.modifica_sicurezza(
            ctx,
            Permesso::GestionePostazioni,
            "certificatoRinnovato",
            ente,
            |d, ca, adesso| {
                certificato_dell_ente(d, seriale, ente)?;
                let nuovo = d.rinnova_certificato(ca, seriale, &operatore, adesso)?;
                Ok(Esito {
                    valore: nuovo,
                    oggetto: format!("certificato:{seriale}->{nuovo}"),
                })
            },
        )
        .await
    }

    /// Sets the municipality parameters.
    pub async fn imposta_parametri(
        &self,
        ctx: &CallerContext,
        ente: &str,
        parametri: ParametriComune,
    ) -> Result<(), ServiceError> {
        self.modifica_sicurezza(
            ctx,
            Permesso::ParametriComune,
            "parametriComune",
            ente,
            |d, _, _| {
                d.parametri.insert(ente.to_owned(), parametri);
                Ok(Esito {
                    valore: (),
                    oggetto: format!("parametri:{ente}"),
                })
            },
        )
        .await
    }

    /// Verifies the workstation register's chain (the workstation administrator of any
    /// municipality, or audit staff); returns the number of entries.
    pub async fn verifica_registro_postazioni(
        &self,
        ctx: &CallerContext,
    ) -> Result<usize, ServiceError> {
        if authz::autorizza(ctx, Permesso::GestionePostazioni).is_err() {
            self.autorizza(ctx, Permesso::VerificaAudit, "verificaRegistroPostazioni")
                .await?;
        }
        self.sicurezza()?
            .direttorio()
            .registro
            .verifica()
            .map_err(|e| rifiuto(self, e))
    }

    /// The caller proved by a verified TLS client certificate: a smart-card certificate
    /// gives the holder with their profiles for the card's body (if the card is active
    /// and the certificate is the card's current one); a workstation or server
    /// certificate gives the municipality and workstation, with no profile (the user
    /// comes from the signed message). Failed card logins are audited.
    pub async fn chiamante_da_certificato(
        &self,
        ambiente: Ambiente,
        der: &[u8],
        canale: Canale,
    ) -> Result<CallerContext, ServiceError> {
        let sic = self.sicurezza()?.clone();
        let id = anpr_sicurezza::ca::identita(der).map_err(|e| rifiuto(self, e))?;
        let anonimo = |utente: String| CallerContext {
            ambiente,
            comune: None,
            utente,
            profili: BTreeSet::new(),
            postazione: None,
            canale,
        };
        let d = sic.direttorio();
        let Some(numero) = id.ou.clone().filter(|ou| ou.len() == 10) else {
            // Workstation or server certificate.
            let mut ctx = anonimo(id.cn.clone());
            ctx.comune = id.ou.as_deref().and_then(|c| c.parse().ok());
            ctx.postazione = Some(id.cn);
            return Ok(ctx);
        };
        let esito = d
            .carta(&numero)
            .and_then(|c| {
                if c.seriale_certificato != Some(id.seriale) || c.titolare != id.cn {
                    return Err(ErroreSicurezza::Certificato {
                        codice: anpr_sicurezza::errore::CODICE_CERTIFICATO_REVOCATO,
                        messaggio: "Certificato non più associato alla carta".into(),
                    });
                }
                c.consente_accesso(self.clock().now())
            })
            .and_then(|_| {
                d.utenti
                    .get(&id.cn)
                    .ok_or_else(|| ErroreSicurezza::NonTrovato {
                        codice: anpr_sicurezza::errore::CODICE_NON_TROVATO,
                        cosa: format!("utente {}", id.cn),
                    })
            });
        let ente = ente_carta(&numero).to_owned();
        match esito {
            Ok(u) => {
                let mut ctx = anonimo(id.cn.clone());
                ctx.profili = u.ruoli.get(&ente).cloned().unwrap_or_default();
                ctx.comune = ente.parse().ok();
                Ok(ctx)
            }
            Err(e) => {
                let ctx = anonimo(id.cn.clone());
                self.audit_sicurezza(
                    &ctx,
                    "accessoFallito",
                    Some(format!("carta:{numero}:{}", e.codice())),
                    "negato",
                )
                .await?;
                Err(rifiuto(self, e))
            }
        }
    }

    /// Records a failed login of an unidentified sender (a refused signed request).
    pub async fn registra_accesso_fallito(
        &self,
        ambiente: Ambiente,
        motivo: &str,
    ) -> Result<(), ServiceError> {
        let ctx = CallerContext {
            ambiente,
            comune: None,
            utente: "anonimo".into(),
            profili: BTreeSet::new(),
            postazione: None,
            canale: Canale::Rest,
        };
        self.audit_sicurezza(&ctx, "accessoFallito", Some(motivo.to_owned()), "negato")
            .await
    }

    /// Records a login (a new TLS connection with a card, a daily password use).
    pub async fn registra_accesso(&self, ctx: &CallerContext) -> Result<(), ServiceError> {
        self.audit_sicurezza(ctx, "accesso", None, "ok").await
    }

    /// Login with a daily password: the holder's identity for `ente`, or EV206 (audited
    /// as a failed login) when wrong or past midnight.
    pub async fn accedi_con_password(
        &self,
        ambiente: Ambiente,
        ente: &str,
        cf: &str,
        password: &str,
        canale: Canale,
    ) -> Result<CallerContext, ServiceError> {
        let d = self.sicurezza()?.direttorio();
        let mut ctx = CallerContext {
            ambiente,
            comune: None,
            utente: cf.to_owned(),
            profili: BTreeSet::new(),
            postazione: None,
            canale,
        };
        match d.verifica_password_giornaliera(cf, password, self.clock().now()) {
            Ok(()) => {
                ctx.profili = d
                    .utenti
                    .get(cf)
                    .and_then(|u| u.ruoli.get(ente).cloned())
                    .unwrap_or_default();
                ctx.comune = ente.parse().ok();
                self.audit_sicurezza(&ctx, "accessoPasswordGiornaliera", None, "ok")
                    .await?;
                Ok(ctx)
            }
            Err(e) => {
                self.audit_sicurezza(
                    &ctx,
                    "accessoFallito",
                    Some(format!("password:{}", e.codice())),
                    "negato",
                )
                .await?;
                Err(rifiuto(self, e))
            }
        }
    }
}
