//! Authorisation: the permission matrix, in one place.
//!
//! Every use case declares the [`Permesso`] it needs and calls [`autorizza`] first.
//! Access is denied by default: a profile holds a permission only if the matrix below
//! says so. Public permissions (decoding tables, the tax-code algorithm) need no profile.
//! The matrix is documented in the README and enforced for every channel alike.

use anpr_domain::caller::{CallerContext, Profilo};
use serde::Serialize;

/// What a use case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Permesso {
    /// Read the decoding tables (public data, service 7001).
    ConsultaTabelle,
    /// Compute or check a tax code (public algorithm; no registry data involved).
    CalcoloCodiceFiscale,
    /// Read an individual, family or cohabitation record (national scope).
    ConsultaScheda,
    /// Search records by identifiers, generalities or address (M-5.2); every record
    /// found is read, so the holders are those of [`Permesso::ConsultaScheda`].
    Ricerca,
    /// Registrations (1001, 1002, 1010, A001, A002).
    Iscrizione,
    /// Changes (5001, 5005, 5008, 5013, 5014, A006).
    Mutazione,
    /// Removals (2001, 2003, 2009).
    Cancellazione,
    /// Annulments (1013, 2011, 5012).
    Annullamento,
    /// Certificates.
    Certificazione,
    /// Identity cards.
    CartaIdentita,
    /// Extractions, support lists, bulk lookups and ISTAT statistics (M-5.3, M-5.4).
    Estrazione,
    /// Mass extraction of a municipality's whole registry: the mayor only, only for loss
    /// of the local database or a change of software supplier (seed 000).
    EstrazioneMassiva,
    /// Subentro (onboarding) and its anomalies.
    Subentro,
    /// Operations monitoring (M-5.5): the operations of the caller's municipality, or of
    /// every municipality for national profiles ([`ambito_nazionale`]).
    Monitoraggio,
    /// Verify the audit chain.
    VerificaAudit,
    /// Keep suspended operations (save, list, resume, delete; SPEC M-2.5). Saving also
    /// needs the permission of the suspended service.
    OperazioniSospese,
    /// Open, change, close administrative proceedings (service 1014).
    Procedimento,
    /// Search and read the municipality's administrative proceedings.
    ConsultaProcedimenti,
    /// Verify a certificate's QR code (public: anyone holding a certificate may check
    /// it; the answer carries no personal data).
    VerificaCertificato,
    /// Security console: census users, their profiles and e-mail, the number of
    /// workstations, request and withdraw cards (mayor, first-level administrator,
    /// prefecture administrator for the prefecture's own users).
    CensimentoUtenti,
    /// Card production steps (in production, at the prefecture): the card maker,
    /// i.e. the registry's operations staff.
    ProduzioneCarte,
    /// The prefecture delivers the batch of cards to the mayor or delegate.
    ConsegnaCarte,
    /// Register delivered cards to their holders, block, unblock, revoke, replace them,
    /// grant daily passwords (local security administrator; the mayor for the first).
    GestioneCarte,
    /// Issue, download (PKCS#12), install, renew, block and revoke workstation and
    /// server certificates; read the workstation register (workstation administrator).
    GestionePostazioni,
    /// Municipality parameters: mayor, logo, virtual stamp, fees.
    ParametriComune,
    /// The municipality's authorised IP addresses, enforced at the HTTP edge for its
    /// callers (local security administrator).
    IndirizziAutorizzati,
    /// The public bodies' SOAP channel (E001-E004): a body under a data-use agreement
    /// reads nationally, with no municipality; the reads themselves then need
    /// [`Permesso::ConsultaScheda`]/[`Permesso::Ricerca`] as on every channel.
    ServiziEnti,
    /// The consulates' SOAP channel (CONSOLATI C001, C010): read-only AIRE queries
    /// with national scope and no municipality; the reads then need
    /// [`Permesso::Ricerca`] as on every channel.
    ServiziConsolati,
    /// The municipality's own requests with ANPR's answers and the notifications
    /// addressed to it, read back to align the local database (services 3003, 3005,
    /// 3007; the web application's "Notifiche"); own municipality only.
    Notifiche,
}

impl Permesso {
    pub const ALL: [Permesso; 29] = [
        Permesso::ConsultaTabelle,
        Permesso::CalcoloCodiceFiscale,
        Permesso::ConsultaScheda,
        Permesso::Ricerca,
        Permesso::Iscrizione,
        Permesso::Mutazione,
        Permesso::Cancellazione,
        Permesso::Annullamento,
        Permesso::Certificazione,
        Permesso::CartaIdentita,
        Permesso::Estrazione,
        Permesso::EstrazioneMassiva,
        Permesso::Subentro,
        Permesso::Monitoraggio,
        Permesso::VerificaAudit,
        Permesso::OperazioniSospese,
        Permesso::Procedimento,
        Permesso::ConsultaProcedimenti,
        Permesso::VerificaCertificato,
        Permesso::CensimentoUtenti,
        Permesso::ProduzioneCarte,
        Permesso::ConsegnaCarte,
        Permesso::GestioneCarte,
        Permesso::GestionePostazioni,
        Permesso::ParametriComune,
        Permesso::IndirizziAutorizzati,
        Permesso::ServiziEnti,
        Permesso::ServiziConsolati,
        Permesso::Notifiche,
    ];

    /// True when any caller, even one with no profile, holds it.
    pub fn pubblico(self) -> bool {
        matches!(
            self,
            Permesso::ConsultaTabelle
                | Permesso::CalcoloCodiceFiscale
                | Permesso::VerificaCertificato
        )
    }
}

/// The permission matrix: which profiles hold which permission.
pub fn profili_abilitati(permesso: Permesso) -> &'static [Profilo] {
    use Profilo::*;
    match permesso {
        Permesso::ConsultaTabelle
        | Permesso::CalcoloCodiceFiscale
        | Permesso::VerificaCertificato => &[],
        Permesso::ConsultaScheda | Permesso::Ricerca => &[
            OperatoreAnagrafe,
            OperatoreConsultazione,
            OperatoreCertificazione,
            OperatoreCartaIdentita,
            SuperUtente,
            Sindaco,
            Consolato,
            EnteFruitore,
        ],
        Permesso::Iscrizione
        | Permesso::Mutazione
        | Permesso::Cancellazione
        | Permesso::Annullamento
        | Permesso::OperazioniSospese
        | Permesso::Procedimento => &[OperatoreAnagrafe, SuperUtente],
        Permesso::ConsultaProcedimenti => &[
            OperatoreAnagrafe,
            OperatoreConsultazione,
            SuperUtente,
            Sindaco,
        ],
        Permesso::Certificazione => &[OperatoreCertificazione, OperatoreAnagrafe, SuperUtente],
        Permesso::CartaIdentita => &[OperatoreCartaIdentita, SuperUtente],
        Permesso::Estrazione => &[OperatoreConsultazione, SuperUtente, Sindaco],
        Permesso::EstrazioneMassiva => &[Sindaco],
        Permesso::Subentro => &[OperatoreSubentro, SuperUtente],
        Permesso::Monitoraggio => &[
            OperatoreMonitoraggio,
            SuperUtente,
            AmministratorePrimoLivello,
            GestoreSistema,
        ],
        Permesso::VerificaAudit => &[GestoreSistema, AmministratoreSicurezza],
        Permesso::CensimentoUtenti => &[
            Sindaco,
            AmministratorePrimoLivello,
            AmministratorePrefettura,
            GestoreSistema,
        ],
        Permesso::ProduzioneCarte => &[GestoreSistema],
        Permesso::ConsegnaCarte => &[AmministratorePrefettura],
        Permesso::GestioneCarte => &[AmministratoreSicurezza, Sindaco],
        Permesso::GestionePostazioni => &[AmministratorePostazioni],
        Permesso::ParametriComune => &[Sindaco, AmministratorePrimoLivello],
        Permesso::IndirizziAutorizzati => &[AmministratoreSicurezza, GestoreSistema],
        Permesso::ServiziEnti => &[EnteFruitore],
        Permesso::ServiziConsolati => &[Consolato],
        Permesso::Notifiche => &[
            OperatoreAnagrafe,
            OperatoreConsultazione,
            OperatoreMonitoraggio,
            SuperUtente,
            Sindaco,
        ],
    }
}

/// Profiles whose scope is national rather than one municipality's: registry operations
/// staff. Municipal profiles act only for the municipality of their context.
pub const PROFILI_NAZIONALI: &[Profilo] = &[Profilo::GestoreSistema];

/// True when `ctx` acts with national scope (any municipality), see [`PROFILI_NAZIONALI`].
pub fn ambito_nazionale(ctx: &CallerContext) -> bool {
    PROFILI_NAZIONALI.iter().any(|p| ctx.has(*p))
}

/// Denied: the caller lacks the permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission {permesso:?} denied to {utente}")]
pub struct AccessoNegato {
    pub permesso: Permesso,
    pub utente: String,
}

/// Checks that `ctx` holds `permesso`.
pub fn autorizza(ctx: &CallerContext, permesso: Permesso) -> Result<(), AccessoNegato> {
    if permesso.pubblico() || profili_abilitati(permesso).iter().any(|p| ctx.has(*p)) {
        Ok(())
    } else {
        Err(AccessoNegato {
            permesso,
            utente: ctx.utente.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_domain::caller::{Ambiente, Canale};

    fn ctx(profili: &[Profilo]) -> CallerContext {
        CallerContext {
            ambiente: Ambiente::Test,
            comune: Some("058091".parse().unwrap()),
            utente: "RSSMRA80A01H501U".into(),
            profili: profili.iter().copied().collect(),
            postazione: None,
            canale: Canale::Rest,
        }
    }

    #[test]
    fn denied_by_default() {
        let nobody = ctx(&[]);
        for p in Permesso::ALL {
            assert_eq!(autorizza(&nobody, p).is_ok(), p.pubblico(), "{p:?}");
        }
    }

    #[test]
    fn matrix_grants_exactly_what_it_lists() {
        assert!(autorizza(&ctx(&[Profilo::OperatoreAnagrafe]), Permesso::Iscrizione).is_ok());
        assert!(autorizza(
            &ctx(&[Profilo::OperatoreCertificazione]),
            Permesso::Iscrizione
        )
        .is_err());
        assert!(autorizza(&ctx(&[Profilo::Sindaco]), Permesso::VerificaAudit).is_err());
        assert!(autorizza(&ctx(&[Profilo::GestoreSistema]), Permesso::VerificaAudit).is_ok());
        // A person holding several roles gets the union.
        let both = ctx(&[Profilo::OperatoreCertificazione, Profilo::OperatoreSubentro]);
        assert!(autorizza(&both, Permesso::Subentro).is_ok());
        assert!(autorizza(&both, Permesso::Certificazione).is_ok());
        assert!(autorizza(&both, Permesso::Annullamento).is_err());
    }

    #[test]
    fn search_follows_consultation_and_only_system_staff_is_national() {
        for p in [
            Profilo::OperatoreConsultazione,
            Profilo::EnteFruitore,
            Profilo::OperatoreSubentro,
            Profilo::GestoreSistema,
        ] {
            assert_eq!(
                autorizza(&ctx(&[p]), Permesso::Ricerca).is_ok(),
                autorizza(&ctx(&[p]), Permesso::ConsultaScheda).is_ok(),
                "{p:?}"
            );
        }
        assert!(autorizza(&ctx(&[Profilo::GestoreSistema]), Permesso::Monitoraggio).is_ok());
        assert!(ambito_nazionale(&ctx(&[Profilo::GestoreSistema])));
        assert!(!ambito_nazionale(&ctx(&[
            Profilo::SuperUtente,
            Profilo::OperatoreMonitoraggio
        ])));
    }
}
