//! Security errors: one enum, each variant with a stable code of our range EV200–EV249.
//!
//! The edges map these to their protocol (an HTTP status with an `Anomalia`, a SOAP
//! fault). Codes never change meaning once published; the README lists them.

use std::fmt;

/// What went wrong, with the data an operator needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErroreSicurezza {
    /// A census rule was broken (prefecture users, roles, workstation count, e-mail).
    #[error("{codice}: {messaggio}")]
    Censimento {
        codice: &'static str,
        messaggio: String,
    },
    /// A smart-card transition not allowed from the card's state.
    #[error("EV204: transizione della carta {numero} da {da} a {verso} non ammessa")]
    TransizioneCarta {
        numero: String,
        da: &'static str,
        verso: &'static str,
    },
    /// Something named does not exist.
    #[error("{codice}: {cosa} non trovato")]
    NonTrovato { codice: &'static str, cosa: String },
    /// A certificate operation failed or a certificate is not acceptable.
    #[error("{codice}: {messaggio}")]
    Certificato {
        codice: &'static str,
        messaggio: String,
    },
    /// A signed message was refused.
    #[error("{codice}: {messaggio}")]
    Messaggio {
        codice: &'static str,
        messaggio: String,
    },
    /// The workstation register's hash chain is broken at `voce`.
    #[error("EV212: registro delle postazioni alterato alla voce {voce}")]
    RegistroAlterato { voce: u64 },
    /// Our failure (key generation, encoding); never the caller's fault.
    #[error("EV249: errore interno di sicurezza: {0}")]
    Interno(String),
}

impl ErroreSicurezza {
    /// The stable code.
    pub fn codice(&self) -> &'static str {
        match self {
            ErroreSicurezza::Censimento { codice, .. }
            | ErroreSicurezza::NonTrovato { codice, .. }
            | ErroreSicurezza::Certificato { codice, .. }
            | ErroreSicurezza::Messaggio { codice, .. } => codice,
            ErroreSicurezza::TransizioneCarta { .. } => CODICE_TRANSIZIONE_CARTA,
            ErroreSicurezza::RegistroAlterato { .. } => CODICE_REGISTRO_ALTERATO,
            ErroreSicurezza::Interno(_) => CODICE_INTERNO,
        }
    }

    pub(crate) fn messaggio(codice: &'static str, m: impl fmt::Display) -> Self {
        ErroreSicurezza::Messaggio {
            codice,
            messaggio: m.to_string(),
        }
    }

    pub(crate) fn censimento(codice: &'static str, m: impl fmt::Display) -> Self {
        ErroreSicurezza::Censimento {
            codice,
            messaggio: m.to_string(),
        }
    }

    pub(crate) fn certificato(codice: &'static str, m: impl fmt::Display) -> Self {
        ErroreSicurezza::Certificato {
            codice,
            messaggio: m.to_string(),
        }
    }
}

/// A prefecture may census at most five users.
pub const CODICE_TROPPI_UTENTI_PREFETTURA: &str = "EV200";
/// A prefecture needs at least one security and one workstation administrator.
pub const CODICE_RUOLI_PREFETTURA: &str = "EV201";
/// The personal e-mail is missing, malformed or a PEC (certified mail cannot receive the
/// PIN halves).
pub const CODICE_EMAIL: &str = "EV202";
/// A person already holds a card that is not revoked.
pub const CODICE_CARTA_GIA_PRESENTE: &str = "EV203";
/// A card transition not allowed from its state.
pub const CODICE_TRANSIZIONE_CARTA: &str = "EV204";
/// The card is not active (or expired): no access with it.
pub const CODICE_CARTA_NON_ATTIVA: &str = "EV205";
/// The daily password is wrong or expired (it ends at midnight, Italian civil time).
pub const CODICE_PASSWORD_GIORNALIERA: &str = "EV206";
/// More workstation certificates than declared at census.
pub const CODICE_POSTAZIONI_ESAURITE: &str = "EV207";
/// Unknown user, card, certificate or workstation.
pub const CODICE_NON_TROVATO: &str = "EV208";
/// The certificate is revoked or blocked.
pub const CODICE_CERTIFICATO_REVOCATO: &str = "EV209";
/// The certificate is not one of ours / the chain does not verify / expired.
pub const CODICE_CERTIFICATO_NON_VALIDO: &str = "EV210";
/// The PKCS#12 password is too short.
pub const CODICE_PASSWORD_PKCS12: &str = "EV211";
/// The workstation register's hash chain is broken.
pub const CODICE_REGISTRO_ALTERATO: &str = "EV212";
/// The user is not censused for that municipality, or lacks the role for the action.
pub const CODICE_RUOLO_MANCANTE: &str = "EV213";
/// Too many failed logins for that user: locked out for a while.
pub const CODICE_TROPPI_TENTATIVI: &str = "EV214";
/// The session token is unknown, expired (sessions end at midnight, Italian civil
/// time) or no longer valid for its user.
pub const CODICE_SESSIONE_NON_VALIDA: &str = "EV215";
/// Malformed XML, a DTD, an entity, or a message over the size limit.
pub const CODICE_XML_NON_AMMESSO: &str = "EV220";
/// No (single) WS-Security header, Timestamp, Signature or token where required.
pub const CODICE_SICUREZZA_MANCANTE: &str = "EV221";
/// A signed reference does not designate THE Body / Timestamp of the envelope
/// (signature wrapping), or Body/Timestamp is not signed.
pub const CODICE_RIFERIMENTO_NON_AMMESSO: &str = "EV222";
/// A digest does not match: the signed content was changed.
pub const CODICE_DIGEST_ERRATO: &str = "EV223";
/// The signature value does not verify with the certificate's key.
pub const CODICE_FIRMA_ERRATA: &str = "EV224";
/// The signing certificate does not chain to our CA (or expired, wrong usage).
pub const CODICE_CATENA_NON_VALIDA: &str = "EV225";
/// The signing certificate is revoked.
pub const CODICE_CERTIFICATO_FIRMA_REVOCATO: &str = "EV226";
/// The timestamp is missing, expired, from the future or too long-lived.
pub const CODICE_TIMESTAMP: &str = "EV227";
/// The user named in the message is unknown.
pub const CODICE_UTENTE_SCONOSCIUTO: &str = "EV228";
/// The user does not belong to the municipality whose certificate signed.
pub const CODICE_UTENTE_ALTRO_COMUNE: &str = "EV229";
/// The user holds no profile allowing the operation.
pub const CODICE_PROFILO_MANCANTE: &str = "EV230";
/// An algorithm we do not accept (c14n, digest, signature, transform).
pub const CODICE_ALGORITMO: &str = "EV231";
/// The sender's IP address is not among the municipality's authorised ones.
pub const CODICE_IP_NON_AUTORIZZATO: &str = "EV233";
/// The workstation is not proved: the message names a workstation without its
/// certificate's signature, or (in `produzione`) carries neither a workstation
/// signature nor comes over mutual TLS from a workstation certificate.
pub const CODICE_FIRMA_POSTAZIONE_MANCANTE: &str = "EV234";
/// The workstation signature's certificate is not a workstation certificate, is of
/// another municipality than the message signature's, or is not the named workstation.
pub const CODICE_CERTIFICATO_POSTAZIONE: &str = "EV235";
/// A machine-to-machine REST call (identified by a workstation or server certificate)
/// without `Agid-JWT-Signature` in `produzione`.
pub const CODICE_FIRMA_REST_OBBLIGATORIA: &str = "EV236";
/// Our internal failure.
pub const CODICE_INTERNO: &str = "EV249";
