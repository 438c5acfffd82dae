//! The outcome codes the tax agency answers with, and our own codes for what the agency's
//! vocabulary does not cover.
//!
//! The five `EAM*`/`EAV*` codes are the agency's own messages as ANPR relays them; they
//! are not in the published error list (`errors.csv`), so text and remedy come from the
//! operators' manual (seed 000, "Errori legati ai codici fiscali emessi da AE"). `EA002`
//! and `EAA40` are in the published list (sheet `tab_errori_agenzia_entrate`). Every
//! anomaly carries the remedy in `atteso`, so the operator reads what to do next.
//!
//! Severity is ours to choose where the sources give none, and follows what the remedy
//! implies: a message whose remedy is "repeat tomorrow" or "write to the agency" stops
//! the operation (`E`); a message whose remedy is a later alignment of an already
//! registered record ("Risoluzione disallineamenti", "elimina il CF e richiedi
//! l'attribuzione") lets it proceed with the code not validated (`W`).
//!
//! | code | severity | when |
//! |---|---|---|
//! | EAM9C | E | two current positions at the agency for the same five data |
//! | EAM15 | E | the position is being processed at the agency |
//! | EAM93 | E | a variation or link that changes more than three data, crosses municipalities, or that the agency blocks |
//! | EAV31 | W | the code exists at the agency with different personal data |
//! | EAV91 | W (E where the code is the operation's object) | the code does not exist at the agency |
//! | EA002 | W | first attribution for a subject the agency already has: its code is returned |
//! | EAA40 | W | the code was linked to a more recent one |
//! | EV060 | E | the agency cannot be reached |
//! | EV061 | E | the agency did not answer in time |
//! | EV062 | E | the agency's answer (or the client's configuration) is not valid |
//! | EV063 | E | the agency is read-only in this environment (pre-subentro) |
//! | EV064 | E | a codice fiscale was sent with `gestioneCF` 1 or 2 |
//! | EV065 | E | every omocodic variant of the code is taken |
//! | EV066 | E | a link between codes of the wrong form, or already linked |
//! | EV067 | E | a link towards a code the agency has already marked |
//! | EV068 | E | a link from a code not validated and marked in the registry (registry-side rule) |
//! | EV069 | E | a link towards a code already held in the registry (registry-side rule) |

use anpr_domain::error::Anomalia;

/// Two positions at the agency that cannot be unified (two codes of one person).
pub const EAM9C: &str = "EAM9C";
/// The subject is being processed at the agency.
pub const EAM15: &str = "EAM15";
/// Variation refused: too many data changed.
pub const EAM93: &str = "EAM93";
/// The code exists at the agency with different personal data.
pub const EAV31: &str = "EAV31";
/// The subject is not at the agency.
pub const EAV91: &str = "EAV91";
/// Subject at the agency with the same data, while the municipality sent no code.
pub const EA002: &str = "EA002";
/// Subject at the agency with more recent codes.
pub const EAA40: &str = "EAA40";

/// Our code: the agency cannot be reached (connection refused, name not resolved, ...).
pub const CODICE_AE_NON_RAGGIUNGIBILE: &str = "EV060";
/// Our code: the agency did not answer within the configured time.
pub const CODICE_AE_TIMEOUT: &str = "EV061";
/// Our code: the agency's answer is not the documented protocol, is too large, or the
/// client is misconfigured.
pub const CODICE_AE_PROTOCOLLO: &str = "EV062";
/// Our code: the agency is read-only in this environment.
pub const CODICE_AE_SOLA_LETTURA: &str = "EV063";
/// Our code: `gestioneCF` 1 or 2 asks the agency for a code, so none may be sent.
pub const CODICE_CF_NON_AMMESSO: &str = "EV064";
/// Our code: all seven omocodic variants of the code are already issued.
pub const CODICE_OMOCODICI_ESAURITI: &str = "EV065";
/// Our code: a link between codes of the wrong form, or a code already linked.
pub const CODICE_COLLEGAMENTO_FORMA: &str = "EV066";
/// Our code: the agency's code is already marked (aligned with a registry record).
pub const CODICE_COLLEGAMENTO_AE_MARCATO: &str = "EV067";
/// Our code: the registry's numeric code is not validated and marked.
pub const CODICE_COLLEGAMENTO_ANPR_NON_VALIDATO: &str = "EV068";
/// Our code: the agency's alphanumeric code is already held by a registry record.
pub const CODICE_COLLEGAMENTO_GIA_IN_ANPR: &str = "EV069";

/// The agency's mailbox for cases the registry cannot resolve (seed 000).
pub const CASELLA_ARCHIVIO_ANAGRAFICO: &str = "entrate.archivioanagrafico@agenziaentrate.it";

/// EAM9C: two positions of one person; the remedy is linking the codes.
pub fn eam9c() -> Anomalia {
    Anomalia::errore(EAM9C, "Individuate due posizioni in AT non unificabili")
        .atteso("Collegamento dei CF tramite la funzione «Risoluzione Disallineamenti con AE»")
}

/// EAM15: the position is being processed; the remedy is repeating tomorrow.
pub fn eam15() -> Anomalia {
    Anomalia::errore(
        EAM15,
        "Soggetto in trattamento, operazione non effettuabile in data odierna",
    )
    .atteso("Ripetere l'operazione il giorno seguente")
}

/// EAM93: the variation changes too much; the remedy is writing to the agency.
pub fn eam93() -> Anomalia {
    Anomalia::errore(
        EAM93,
        "Variazione non consentita per superamento campi variati",
    )
    .atteso(format!(
        "Scrivere alla DCE ({CASELLA_ARCHIVIO_ANAGRAFICO}); occorre rivolgersi alla DCE anche \
         per collegare due CF con residenze in due Comuni diversi"
    ))
}

/// EAV31: same code, different data; the remedy is the misalignment resolution.
pub fn eav31() -> Anomalia {
    Anomalia::avvertimento(EAV31, "CF presente in AE ma dati anagrafici non congruenti").atteso(
        "Utilizzare «Risoluzione Disallineamenti con AE» - selezionare «Conferma AE» o \
         «Conferma ANPR»",
    )
}

/// EAV91: the code is unknown to the agency; likely computed by the municipality's
/// software. Severity is set by the caller (see the module table).
pub fn eav91() -> Anomalia {
    Anomalia::avvertimento(EAV91, "Soggetto non presente in AE").atteso(
        "Possibile CF calcolato da gestionale: eliminare il CF dalla sezione «Generalità» e \
         richiedere l'attribuzione del CF",
    )
}

/// EA002: the subject already has a code at the agency, which is returned.
pub fn ea002() -> Anomalia {
    Anomalia::avvertimento(
        EA002,
        "Soggetto presente in AT con dati anagrafici uguali a quelli del comune ma CF del comune assente",
    )
    .atteso("il codice fiscale restituito dall'Agenzia delle Entrate")
}

/// EAA40: the code was replaced by a more recent one.
pub fn eaa40() -> Anomalia {
    Anomalia::avvertimento(
        EAA40,
        "Soggetto  presente in AT con altri codici fiscali piu' recenti",
    )
    .atteso("il codice fiscale più recente restituito dall'Agenzia delle Entrate")
}

/// EV063: a write refused because the agency is read-only here.
pub fn sola_lettura() -> Anomalia {
    Anomalia::errore(
        CODICE_AE_SOLA_LETTURA,
        "Agenzia delle Entrate in sola lettura in questo ambiente: operazione non consentita",
    )
    .atteso("gestioneCF 0 (verifica) o 3 (nessuna chiamata) in pre-subentro")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_domain::error::Gravita;

    #[test]
    fn every_agency_message_carries_its_remedy() {
        for (anomalia, codice, gravita) in [
            (eam9c(), EAM9C, Gravita::Errore),
            (eam15(), EAM15, Gravita::Errore),
            (eam93(), EAM93, Gravita::Errore),
            (eav31(), EAV31, Gravita::Avvertimento),
            (eav91(), EAV91, Gravita::Avvertimento),
            (ea002(), EA002, Gravita::Avvertimento),
            (eaa40(), EAA40, Gravita::Avvertimento),
            (sola_lettura(), CODICE_AE_SOLA_LETTURA, Gravita::Errore),
        ] {
            assert_eq!(anomalia.codice, codice);
            assert_eq!(anomalia.gravita, gravita, "{codice}");
            assert!(
                anomalia.atteso.as_deref().is_some_and(|a| a.len() > 10),
                "{codice} without a remedy"
            );
        }
        assert!(eam93()
            .atteso
            .is_some_and(|a| a.contains(CASELLA_ARCHIVIO_ANAGRAFICO)));
    }

    #[test]
    fn published_codes_quote_the_published_text() {
        let tabelle = anpr_tables::tables();
        for anomalia in [ea002(), eaa40()] {
            let pubblicato = tabelle
                .errore(&anomalia.codice)
                .unwrap_or_else(|| panic!("{} not in the error list", anomalia.codice));
            assert_eq!(anomalia.testo, pubblicato.text, "{}", anomalia.codice);
        }
        // The agency's own messages are not in the published list: the seed is their source.
        for codice in [EAM9C, EAM15, EAM93, EAV31, EAV91] {
            assert!(
                tabelle.errore(codice).is_none(),
                "{codice} is now published"
            );
        }
    }
}
