//! Who is calling: environment, municipality, user, profiles, workstation and channel.
//!
//! Every use case receives a [`CallerContext`]. The edges build it from what they have
//! verified (a SOAP header, a TLS client certificate, a session); the service layer
//! authorises against it and writes it into the audit log.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{CodiceIstatComune, InvalidValue};

/// The isolated data sets the registry keeps (SPEC M-6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ambiente {
    /// Free experimentation for software houses and training.
    Test,
    /// Rehearsal of onboarding: every production check, tax agency read-only.
    Presubentro,
    /// The real registry.
    Produzione,
}

impl Ambiente {
    pub const ALL: [Ambiente; 3] = [Ambiente::Test, Ambiente::Presubentro, Ambiente::Produzione];

    pub fn as_str(self) -> &'static str {
        match self {
            Ambiente::Test => "test",
            Ambiente::Presubentro => "presubentro",
            Ambiente::Produzione => "produzione",
        }
    }
}

impl fmt::Display for Ambiente {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Ambiente {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s.to_ascii_lowercase().as_str() {
            "test" => Ok(Ambiente::Test),
            "presubentro" | "pre-subentro" => Ok(Ambiente::Presubentro),
            "produzione" => Ok(Ambiente::Produzione),
            _ => Err(InvalidValue::new(
                "ambiente",
                s,
                "test, presubentro or produzione",
            )),
        }
    }
}

/// How the call reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Canale {
    Rest,
    Soap,
    Web,
    Cli,
    /// Internal work (workers, migrations): never from outside.
    Sistema,
}

impl Canale {
    pub fn as_str(self) -> &'static str {
        match self {
            Canale::Rest => "rest",
            Canale::Soap => "soap",
            Canale::Web => "web",
            Canale::Cli => "cli",
            Canale::Sistema => "sistema",
        }
    }
}

/// Profiles and roles a user can hold (SPEC M-8.2). One person can hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Profilo {
    /// Mayor or commissioner (ASC).
    Sindaco,
    /// First-level administrator (APL).
    AmministratorePrimoLivello,
    /// Local security administrator (ALS).
    AmministratoreSicurezza,
    /// Local workstation administrator (ALP).
    AmministratorePostazioni,
    /// Prefecture administrator.
    AmministratorePrefettura,
    /// Operator: registrations, changes, removals (anagrafe).
    OperatoreAnagrafe,
    /// Operator: identity cards.
    OperatoreCartaIdentita,
    /// Operator: certificates.
    OperatoreCertificazione,
    /// Operator: consultation and extraction.
    OperatoreConsultazione,
    /// Operator: subentro and anomalies.
    OperatoreSubentro,
    /// Operator: utilities and notifications.
    OperatoreUtilita,
    /// Operator: monitoring.
    OperatoreMonitoraggio,
    /// Web access.
    AccessoWeb,
    /// Super-user: sees every suspended operation of the municipality.
    SuperUtente,
    /// A consulate (AIRE side).
    Consolato,
    /// A public body under a data-use agreement.
    EnteFruitore,
    /// A citizen looking at their own record.
    Cittadino,
    /// Registry operations staff (audit verification, maintenance).
    GestoreSistema,
}

impl Profilo {
    /// Every profile, in declaration order (the permission matrix is printed in it).
    pub const ALL: [Profilo; 18] = [
        Profilo::Sindaco,
        Profilo::AmministratorePrimoLivello,
        Profilo::AmministratoreSicurezza,
        Profilo::AmministratorePostazioni,
        Profilo::AmministratorePrefettura,
        Profilo::OperatoreAnagrafe,
        Profilo::OperatoreCartaIdentita,
        Profilo::OperatoreCertificazione,
        Profilo::OperatoreConsultazione,
        Profilo::OperatoreSubentro,
        Profilo::OperatoreUtilita,
        Profilo::OperatoreMonitoraggio,
        Profilo::AccessoWeb,
        Profilo::SuperUtente,
        Profilo::Consolato,
        Profilo::EnteFruitore,
        Profilo::Cittadino,
        Profilo::GestoreSistema,
    ];

    /// The wire name (`OPERATORE_ANAGRAFE`).
    pub fn nome(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl FromStr for Profilo {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).map_err(|_| {
            InvalidValue::new("profilo", s, "a profile name such as OPERATORE_ANAGRAFE")
        })
    }
}

/// The verified identity and scope of a caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerContext {
    pub ambiente: Ambiente,
    /// The municipality the caller acts for; `None` for national bodies.
    pub comune: Option<CodiceIstatComune>,
    /// The user's codice fiscale (16 characters), or a system principal name.
    pub utente: String,
    pub profili: BTreeSet<Profilo>,
    /// Workstation id (e.g. `058091-PC-0001`) when the call comes from one.
    pub postazione: Option<String>,
    pub canale: Canale,
}

impl CallerContext {
    pub fn has(&self, profilo: Profilo) -> bool {
        self.profili.contains(&profilo)
    }
}
