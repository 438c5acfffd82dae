//! WebAuthn passkeys bound to a smart-card record: the modern alternative to the card
//! for an operator's login (SPEC M-8.3).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A registered passkey (public key credential, ES256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Passkey {
    /// Credential id, base64url without padding.
    pub id: String,
    /// The holder's CF.
    pub titolare: String,
    /// The card record it is bound to: the passkey works only while that card does.
    pub carta: String,
    /// The P-256 public key as an uncompressed SEC1 point (65 bytes).
    pub chiave_pubblica: Vec<u8>,
    /// The authenticator's signature counter last seen.
    pub contatore: u32,
    pub registrata: DateTime<Utc>,
    pub ultimo_uso: Option<DateTime<Utc>>,
}
