//! The mail delivery worker of the security outbox (card activations with the second
//! halves of PIN and PUK, ...), and the small SMTP client it speaks through a
//! configured relay.
//!
//! The worker takes the mails due from the store (`Store::sicurezza_posta_prendi`,
//! leased for [`LEASE`] so that another process's worker does not send them too),
//! hands each to the relay and records the outcome: delivered; refused for good (a 5xx
//! reply) — failed; anything else (4xx, connection, timeout) — retried after an
//! exponential backoff (1, 2, 4, ... minutes, at most [`BACKOFF_MASSIMO`]) until
//! [`TENTATIVI_MASSIMI`] attempts, then failed. Once a mail has left, or has been given
//! up, the secret part of its body (between `INIZIO_SEGRETO` and `FINE_SEGRETO`) is
//! removed from the outbox. Without a configured relay nothing is sent: mails stay
//! queued, visible in the outbox, until a relay is configured.
//!
//! The SMTP client: EHLO, optional STARTTLS (rustls, ring; the relay's certificate is
//! checked against the configured roots), optional AUTH PLAIN (only over TLS), MAIL,
//! RCPT, DATA (UTF-8 body in base64, RFC 2047 subject), QUIT; every step under a
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use anpr_service::sicurezza::{FINE_SEGRETO, INIZIO_SEGRETO};
use anpr_service::Registry;
use anpr_store::sicurezza::{EsitoMail, MailSicurezza};
use base64::Engine;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a taken mail is reserved for the worker that took it.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(5);
/// Attempts before a mail is given up.
pub const TENTATIVI_MASSIMI: u32 = 8;
/// Longest wait between two attempts.
pub const BACKOFF_MASSIMO: chrono::Duration = chrono::Duration::hours(6);
/// Timeout of each SMTP step.
const TIMEOUT: Duration = Duration::from_secs(30);
/// What replaces the secret part of a mail once it has left.
pub const SEGRETO_RIMOSSO: &str = "[codici rimossi dall'archivio dopo l'invio]";

/// The relay and how to talk to it. The password is redacted in `Debug`.
#[derive(Clone)]
pub struct ConfigurazioneSmtp {
    /// Host name (also the TLS server name) and port of the relay.
    pub host: String,
    pub porta: u16,
    /// The sender address (`From`, `MAIL FROM`).
    pub mittente: String,
    /// Name we give in EHLO.
    pub nome_helo: String,
    /// Upgrade with STARTTLS before sending (required for AUTH).
    pub starttls: bool,
    /// Trusted roots for the relay's certificate (PEM); `None`: the system bundle.
    pub radici_pem: Option<Vec<u8>>,
    /// AUTH PLAIN credentials.
    pub credenziali: Option<(String, String)>,
}

impl std::fmt::Debug for ConfigurazioneSmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigurazioneSmtp")
            .field("host", &self.host)
            .field("porta", &self.porta)
            .field("mittente", &self.mittente)
            .field("starttls", &self.starttls)
            .field(
                "utente",
                &self.credenziali.as_ref().map(|(u, _)| u.as_str()),
            )
            .finish_non_exhaustive()
    }
}

/// A failed delivery attempt: `permanente` when the relay refused for good (5xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErroreSmtp {
    pub permanente: bool,
    pub testo: String,
}

fn temporaneo(testo: impl Into<String>) -> ErroreSmtp {
    ErroreSmtp {
        permanente: false,
        testo: testo.into(),
    }
}

/// What one round of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rendiconto {
    pub consegnate: u32,
    pub rinviate: u32,
    pub fallite: u32,
}

/// The body without its secret part.
pub fn senza_segreto(corpo: &str) -> String {
    match (corpo.find(INIZIO_SEGRETO), corpo.find(FINE_SEGRETO)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{SEGRETO_RIMOSSO}{}",
            &corpo[..a],
            &corpo[b + FINE_SEGRETO.len()..]
        ),
        _ => corpo.to_owned(),
    }
}

/// Wait before attempt `tentativi + 1`.
pub fn attesa(tentativi: u32) -> chrono::Duration {
    let minuti = 1i64 << tentativi.min(20);
    chrono::Duration::minutes(minuti).min(BACKOFF_MASSIMO)
}

/// Delivers the security outbox through the relay.
#[derive(Debug, Clone)]
pub struct Postino {
    registry: Arc<Registry>,
    smtp: ConfigurazioneSmtp,
}

impl Postino {
    pub fn new(registry: Arc<Registry>, smtp: ConfigurazioneSmtp) -> Self {
        Self { registry, smtp }
    }

    /// One round: takes the mails due now and tries each once.
    pub async fn giro(&self) -> Result<Rendiconto, String> {
        let sic = self
            .registry
            .sicurezza_configurata()
            .ok_or("componente di sicurezza non configurato")?;
        let store = sic.store().clone();
        let adesso = self.registry.clock().now();
        let posta = store
            .sicurezza_posta_prendi(adesso, LEASE, 50)
            .await
            .map_err(|e| e.to_string())?;
        let mut r = Rendiconto::default();
        for m in posta {
            let esito = invia(&self.smtp, &m, adesso).await;
            let adesso = self.registry.clock().now();
            let registrato = match esito {
                Ok(()) => {
                    r.consegnate += 1;
                    tracing::info!(mail = m.id, "security mail delivered");
                    EsitoMail::Consegnata {
                        istante: adesso,
                        corpo_conservato: senza_segreto(&m.mail.corpo),
                    }
                }
                Err(e) if e.permanente || m.tentativi + 1 >= TENTATIVI_MASSIMI => {
                    r.fallite += 1;
                    tracing::error!(mail = m.id, errore = %e.testo, "security mail given up");
                    EsitoMail::Fallita {
                        errore: e.testo,
                        corpo_conservato: senza_segreto(&m.mail.corpo),
                    }
                }
                Err(e) => {
                    r.rinviate += 1;
                    tracing::warn!(mail = m.id, errore = %e.testo, "security mail delivery failed; will retry");
                    EsitoMail::Riprova {
                        errore: e.testo,
                        riprova_dal: adesso + attesa(m.tentativi),
                    }
                }
            };
            store
                .sicurezza_posta_esito(m.id, registrato)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(r)
    }

    /// Runs rounds every `intervallo` until `fine` completes.
    pub async fn esegui(self, intervallo: Duration, fine: impl std::future::Future<Output = ()>) {
        tokio::pin!(fine);
        loop {
            if let Err(e) = self.giro().await {
                tracing::error!(errore = %e, "mail worker round failed");
            }
            tokio::select! {
                () = &mut fine => return,
                () = tokio::time::sleep(intervallo) => {}
            }
        }
    }
}

/// A line-oriented SMTP conversation over any stream.
struct Dialogo<S> {
    flusso: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Dialogo<S> {
    fn new(s: S) -> Self {
        Self {
            flusso: BufReader::new(s),
        }
    }

    /// Reads one (possibly multi-line) reply: code and text.
    async fn risposta(&mut self) -> Result<(u16, String), ErroreSmtp> {
        let mut testo = String::new();
        loop {
            let mut riga = String::new();
            let n = tokio::time::timeout(TIMEOUT, self.flusso.read_line(&mut riga))
                .await
                .map_err(|_| temporaneo("timeout in attesa del relay"))?
                .map_err(|e| temporaneo(format!("lettura dal relay: {e}")))?;
            if n == 0 {
                return Err(temporaneo("il relay ha chiuso la connessione"));
            }
            if riga.len() > 1000 || testo.len() > 64 * 1024 {
                return Err(temporaneo("risposta del relay troppo lunga"));
            }
            let codice = riga
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| temporaneo(format!("risposta non SMTP: {}", riga.trim_end())))?;
            testo.push_str(riga.get(4..).unwrap_or("").trim_end());
            testo.push('\n');
            if riga.as_bytes().get(3) != Some(&b'-') {
                return Ok((codice, testo));
            }
        }
    }

    async fn scrivi(&mut self, dati: &[u8]) -> Result<(), ErroreSmtp> {
        tokio::time::timeout(TIMEOUT, async {
            self.flusso.get_mut().write_all(dati).await?;
            self.flusso.get_mut().flush().await
        })
        .await
        .map_err(|_| temporaneo("timeout in scrittura verso il relay"))?
        .map_err(|e| temporaneo(format!("scrittura verso il relay: {e}")))
    }

    /// Sends a command and expects a reply with code `atteso` (or in `2xx` when
    /// `atteso` is 250 and the reply is 251).
    async fn comando(&mut self, riga: &str, atteso: u16) -> Result<String, ErroreSmtp> {
        self.scrivi(format!("{riga}\r\n").as_bytes()).await?;
        self.attendi(atteso, riga).await
    }

    async fn attendi(&mut self, atteso: u16, dopo: &str) -> Result<String, ErroreSmtp> {
        let (codice, testo) = self.risposta().await?;
        if codice == atteso || (atteso == 250 && codice == 251) {
            return Ok(testo);
        }
        // Never echo credentials into logs or the outbox.
        let comando = if dopo.starts_with("AUTH") {
            "AUTH"
        } else {
            dopo
        };
        Err(ErroreSmtp {
            permanente: (500..600).contains(&codice),
            testo: format!("{comando}: {codice} {}", testo.trim_end()),
        })
    }
}

/// RFC 2047 encoded-word for a UTF-8 header value.
fn intestazione_utf8(v: &str) -> String {
    if v.is_ascii() && !v.contains(['\r', '\n']) {
        v.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.replace(['\r', '\n'], " "))
        )
    }
}

/// An address fit for `MAIL FROM`/`RCPT TO` and headers: no line breaks, no angle
/// brackets, one `@`.
fn indirizzo(a: &str) -> Result<&str, ErroreSmtp> {
    let ok = a.matches('@').count() == 1
        && !a.contains(['\r', '\n', '<', '>', ' ', ','])
        && a.len() <= 254;
    if ok {
        Ok(a)
    } else {
        Err(ErroreSmtp {
            permanente: true,
            testo: format!("indirizzo non valido: {a:?}"),
        })
    }
}

/// The message: headers and a base64 body (so no line can be a lone dot).
fn messaggio(cfg: &ConfigurazioneSmtp, m: &MailSicurezza, adesso: DateTime<Utc>) -> String {
    let corpo = base64::engine::general_purpose::STANDARD.encode(m.mail.corpo.as_bytes());
    let righe: Vec<&str> = corpo
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <anpr-sicurezza-{}-{}@{}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        cfg.mittente,
        m.mail.destinatario,
        intestazione_utf8(&m.mail.oggetto),
        adesso.to_rfc2822(),
        m.id,
        m.mail.creata_il.timestamp(),
        cfg.nome_helo,
        righe.join("\r\n")
    )
}

fn radici(cfg: &ConfigurazioneSmtp) -> Result<rustls::RootCertStore, ErroreSmtp> {
    let pem = match &cfg.radici_pem {
        Some(p) => p.clone(),
        None => std::fs::read("/etc/ssl/certs/ca-certificates.crt")
            .map_err(|e| temporaneo(format!("certificati radice di sistema: {e}")))?,
    };
    let testo = String::from_utf8_lossy(&pem);
    let mut store = rustls::RootCertStore::empty();
    let mut resto = testo.as_ref();
    while let Some(a) = resto.find("-----BEGIN CERTIFICATE-----") {
        let dopo = &resto[a + "-----BEGIN CERTIFICATE-----".len()..];
        let Some(b) = dopo.find("-----END CERTIFICATE-----") else {
            break;
        };
        let b64: String = dopo[..b].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            // A certificate the store cannot use is skipped, as browsers do.
            let _ = store.add(rustls::pki_types::CertificateDer::from(der));
        }
        resto = &dopo[b..];
    }
    if store.is_empty() {
        return Err(temporaneo(
            "nessun certificato radice utilizzabile per il relay",
        ));
    }
    Ok(store)
}

/// Sends one mail through the relay.
pub async fn invia(
    cfg: &ConfigurazioneSmtp,
    m: &MailSicurezza,
    adesso: DateTime<Utc>,
) -> Result<(), ErroreSmtp> {
    let destinatario = indirizzo(&m.mail.destinatario)?;
    indirizzo(&cfg.mittente)?;
    let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((cfg.host.as_str(), cfg.porta)))
        .await
        .map_err(|_| temporaneo("timeout di connessione al relay"))?
        .map_err(|e| temporaneo(format!("connessione al relay: {e}")))?;
    let mut d = Dialogo::new(tcp);
    d.attendi(220, "connessione").await?;
    d.comando(&format!("EHLO {}", cfg.nome_helo), 250).await?;
    if !cfg.starttls {
        if cfg.credenziali.is_some() {
            return Err(ErroreSmtp {
                permanente: true,
                testo: "credenziali SMTP senza STARTTLS: non inviate in chiaro".into(),
            });
        }
        return sessione(d, cfg, destinatario, m, adesso).await;
    }
    d.comando("STARTTLS", 220).await?;
    let tcp = d.flusso.into_inner();
    let config = rustls::ClientConfig::builder_with_provider(anpr_sicurezza::mtls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| temporaneo(e.to_string()))?
        .with_root_certificates(radici(cfg)?)
        .with_no_client_auth();
    let nome =
        rustls::pki_types::ServerName::try_from(cfg.host.clone()).map_err(|e| ErroreSmtp {
            permanente: true,
            testo: format!("nome del relay {:?}: {e}", cfg.host),
        })?;
    let tls = tokio::time::timeout(
        TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(nome, tcp),
    )
    .await
    .map_err(|_| temporaneo("timeout della negoziazione TLS"))?
    .map_err(|e| temporaneo(format!("TLS con il relay: {e}")))?;
    let mut d = Dialogo::new(tls);
    d.comando(&format!("EHLO {}", cfg.nome_helo), 250).await?;
    if let Some((utente, password)) = &cfg.credenziali {
        let plain = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{utente}\0{password}").as_bytes());
        d.comando(&format!("AUTH PLAIN {plain}"), 235).await?;
    }
    sessione(d, cfg, destinatario, m, adesso).await
}

async fn sessione<S: AsyncRead + AsyncWrite + Unpin>(
    mut d: Dialogo<S>,
    cfg: &ConfigurazioneSmtp,
    destinatario: &str,
    m: &MailSicurezza,
    adesso: DateTime<Utc>,
) -> Result<(), ErroreSmtp> {
    d.comando(&format!("MAIL FROM:<{}>", cfg.mittente), 250)
        .await?;
    d.comando(&format!("RCPT TO:<{destinatario}>"), 250).await?;
    d.comando("DATA", 354).await?;
    d.scrivi(messaggio(cfg, m, adesso).as_bytes()).await?;
    d.scrivi(b".\r\n").await?;
    d.attendi(250, "fine del messaggio").await?;
    // The mail is accepted: a failed QUIT changes nothing.
    let _ = d.comando("QUIT", 221).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_part_is_removed_and_the_backoff_grows_to_a_cap() {
        let corpo = format!("Gentile,\n{INIZIO_SEGRETO}\nPIN: 1234\n{FINE_SEGRETO}\nSaluti");
        let s = senza_segreto(&corpo);
        assert!(!s.contains("1234"));
        assert!(s.contains(SEGRETO_RIMOSSO) && s.starts_with("Gentile,") && s.ends_with("Saluti"));
        assert_eq!(senza_segreto("niente"), "niente");
        assert_eq!(attesa(0), chrono::Duration::minutes(1));
        assert_eq!(attesa(3), chrono::Duration::minutes(8));
        assert_eq!(attesa(30), BACKOFF_MASSIMO);
        assert_eq!(intestazione_utf8("Carta attivata"), "Carta attivata");
        assert!(intestazione_utf8("metà").starts_with("=?UTF-8?B?"));
        assert!(indirizzo("a@b.it").is_ok());
        assert!(
            indirizzo("a@b.it>\r\nRCPT TO:<c@d.it")
                .unwrap_err()
                .permanente
        );
    }
}
