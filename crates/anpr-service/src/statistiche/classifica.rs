//! How a change of a subject's competence counts in a municipality's ISTAT tables
//! (pure rules, no I/O).
//!
//! Every registration, transfer, emigration or death changes the subject's
//! `competenza` section (municipality and position) from its effective date. Seen from
//! municipality X, a change that makes the subject a resident of X is an **arrival**
//! and one that ends their residence in X a **departure**; a transfer from Y to X is a
//! departure for Y and an arrival for X, so it counts once in each.

use serde::{Deserialize, Serialize};

/// A subject's competence as one `competenza` version says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stato {
    pub comune: String,
    /// `residente`, `aire` or `cancellato`.
    pub posizione: String,
}

impl Stato {
    pub fn da_json(v: &serde_json::Value) -> Option<Self> {
        Some(Stato {
            comune: v.get("comune")?.as_str()?.to_owned(),
            posizione: v.get("posizione")?.as_str()?.to_owned(),
        })
    }

    fn residente_in(&self, comune: &str) -> bool {
        self.comune == comune && self.posizione == "residente"
    }
}

/// The kinds of movement of the monthly table (prospetto 1) and of the annual one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Movimento {
    NatoStessoComune,
    NatoAltroComune,
    NatoEstero,
    DecedutoStessoComune,
    DecedutoAltroComune,
    DecedutoEstero,
    IscrittoAltroComune,
    IscrittoEstero,
    /// Registered for another reason; the registration reason code says which.
    IscrittoAltriMotivi,
    CancellatoAltroComune,
    CancellatoEstero,
    /// Removed for another reason; the removal reason code says which.
    CancellatoAltriMotivi,
    /// Loaded by the municipality's onboarding (subentro): not a movement.
    Subentro,
}

impl Movimento {
    pub fn migratorio(self) -> bool {
        matches!(
            self,
            Movimento::IscrittoAltroComune
                | Movimento::IscrittoEstero
                | Movimento::CancellatoAltroComune
                | Movimento::CancellatoEstero
        )
    }
}

/// What else is needed to classify an arrival or a departure.
#[derive(Debug, Clone, Default)]
pub struct Contesto<'a> {
    /// Service code of the operation that made the change.
    pub servizio: &'a str,
    /// Registration reason (`iscrizione.motivoIscrizione`) in force after an arrival.
    pub motivo_iscrizione: Option<&'a str>,
    /// Removal reason (`cancellazione.motivoCancellazione`) after a departure.
    pub motivo_cancellazione: Option<&'a str>,
    /// Birth place: `Some(istat)` for an Italian municipality, `None` abroad.
    pub luogo_nascita: Option<Option<&'a str>>,
    /// Death deed: municipality of registration, and whether transcribed from abroad.
    pub atto_morte: Option<(&'a str, bool)>,
}

/// The movement a change from `prima` to `dopo` is for `comune`, if any.
pub fn classifica(
    comune: &str,
    prima: Option<&Stato>,
    dopo: Option<&Stato>,
    c: &Contesto<'_>,
) -> Option<Movimento> {
    let era = prima.is_some_and(|p| p.residente_in(comune));
    let e = dopo.is_some_and(|d| d.residente_in(comune));
    match (era, e) {
        (false, true) => Some(arrivo(comune, prima, c)),
        (true, false) => Some(partenza(comune, dopo, c)),
        _ => None,
    }
}

fn arrivo(comune: &str, prima: Option<&Stato>, c: &Contesto<'_>) -> Movimento {
    if c.servizio == "S001" {
        return Movimento::Subentro;
    }
    if c.servizio == "1001" || (prima.is_none() && c.motivo_iscrizione == Some("1")) {
        return match c.luogo_nascita {
            Some(Some(l)) if l == comune => Movimento::NatoStessoComune,
            Some(Some(_)) => Movimento::NatoAltroComune,
            Some(None) => Movimento::NatoEstero,
            None => Movimento::NatoStessoComune,
        };
    }
    match prima {
        Some(p) if p.posizione == "residente" => Movimento::IscrittoAltroComune,
        Some(p) if p.posizione == "aire" => Movimento::IscrittoEstero,
        _ => match c.motivo_iscrizione {
            // Immigration from a municipality not onboarded; a homeless person's domicile.
            Some("3" | "8") => Movimento::IscrittoAltroComune,
            // From abroad; repatriation from AIRE.
            Some("4" | "6") => Movimento::IscrittoEstero,
            _ => Movimento::IscrittoAltriMotivi,
        },
    }
}

fn partenza(comune: &str, dopo: Option<&Stato>, c: &Contesto<'_>) -> Movimento {
    match dopo {
        Some(d) if d.posizione == "residente" => Movimento::CancellatoAltroComune,
        Some(d) if d.posizione == "aire" => Movimento::CancellatoEstero,
        _ => match c.motivo_cancellazione {
            Some("1" | "2") => match c.atto_morte {
                Some((_, true)) => Movimento::DecedutoEstero,
                Some((reg, false)) if reg != comune => Movimento::DecedutoAltroComune,
                _ => Movimento::DecedutoStessoComune,
            },
            Some("3") => Movimento::CancellatoAltroComune,
            Some("5" | "8") => Movimento::CancellatoEstero,
            _ => Movimento::CancellatoAltriMotivi,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(comune: &str, posizione: &str) -> Stato {
        Stato {
            comune: comune.into(),
            posizione: posizione.into(),
        }
    }

    fn check(
        prima: Option<Stato>,
        dopo: Option<Stato>,
        c: Contesto<'_>,
        per_x: Option<Movimento>,
        per_y: Option<Movimento>,
    ) {
        assert_eq!(
            classifica("X", prima.as_ref(), dopo.as_ref(), &c),
            per_x,
            "X"
        );
        assert_eq!(
            classifica("Y", prima.as_ref(), dopo.as_ref(), &c),
            per_y,
            "Y"
        );
    }

    #[test]
    fn each_change_counts_for_the_municipalities_it_concerns() {
        use Movimento::*;
        let nasce = |l| Contesto {
            servizio: "1001",
            luogo_nascita: Some(l),
            ..Default::default()
        };
        check(
            None,
            Some(s("X", "residente")),
            nasce(Some("X")),
            Some(NatoStessoComune),
            None,
        );
        check(
            None,
            Some(s("X", "residente")),
            nasce(Some("Y")),
            Some(NatoAltroComune),
            None,
        );
        check(
            None,
            Some(s("X", "residente")),
            nasce(None),
            Some(NatoEstero),
            None,
        );
        // A transfer Y -> X: once in each.
        let t = Contesto {
            servizio: "5005",
            ..Default::default()
        };
        check(
            Some(s("Y", "residente")),
            Some(s("X", "residente")),
            t.clone(),
            Some(IscrittoAltroComune),
            Some(CancellatoAltroComune),
        );
        // Immigration from abroad (1002 reason 4), from a non-onboarded municipality (3), reappearance (5).
        for (m, atteso) in [
            ("4", IscrittoEstero),
            ("3", IscrittoAltroComune),
            ("5", IscrittoAltriMotivi),
        ] {
            let c = Contesto {
                servizio: "1002",
                motivo_iscrizione: Some(m),
                ..Default::default()
            };
            check(None, Some(s("X", "residente")), c, Some(atteso), None);
        }
        // Emigration abroad keeping AIRE (2003 reason 8), and back (repatriation).
        check(
            Some(s("X", "residente")),
            Some(s("X", "aire")),
            t.clone(),
            Some(CancellatoEstero),
            None,
        );
        check(
            Some(s("X", "aire")),
            Some(s("X", "residente")),
            t.clone(),
            Some(IscrittoEstero),
            None,
        );
        // Deaths by the deed's place.
        let morte = |reg, tr| Contesto {
            servizio: "2001",
            motivo_cancellazione: Some("1"),
            atto_morte: Some((reg, tr)),
            ..Default::default()
        };
        check(
            Some(s("X", "residente")),
            Some(s("X", "cancellato")),
            morte("X", false),
            Some(DecedutoStessoComune),
            None,
        );
        check(
            Some(s("X", "residente")),
            Some(s("X", "cancellato")),
            morte("Y", false),
            Some(DecedutoAltroComune),
            None,
        );
        check(
            Some(s("X", "residente")),
            Some(s("X", "cancellato")),
            morte("X", true),
            Some(DecedutoEstero),
            None,
        );
        // Untraceable: another reason.
        let irr = Contesto {
            servizio: "2003",
            motivo_cancellazione: Some("6"),
            ..Default::default()
        };
        check(
            Some(s("X", "residente")),
            Some(s("X", "cancellato")),
            irr,
            Some(CancellatoAltriMotivi),
            None,
        );
        // Changes that keep the residence are not movements; onboarding is not either.
        check(
            Some(s("X", "residente")),
            Some(s("X", "residente")),
            t.clone(),
            None,
            None,
        );
        let sub = Contesto {
            servizio: "S001",
            ..Default::default()
        };
        check(None, Some(s("X", "residente")), sub, Some(Subentro), None);
        // AIRE movements are not resident-population movements.
        check(Some(s("Y", "aire")), Some(s("X", "aire")), t, None, None);
    }
}
