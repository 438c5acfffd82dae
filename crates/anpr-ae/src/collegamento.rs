//! The rules for linking two codes of the same person (M-3.3, seed 000 "Collegamento tra
//! codici fiscali").
//!
//! A link is allowed when:
//! 1. the registry's code is a numeric provisional one and the agency's is alphanumeric
//!    (EV066 otherwise);
//! 2. the registry's code is validated and marked in the registry (EV068) and the
//!    alphanumeric code is not already held by a registry record (EV069): the link is
//!    always towards the registry, never towards a code it already has. The registry checks
//!    these with [`controlla_lato_anpr`], since only it knows its records;
//! 3. at the agency, both codes exist (EAV91), neither is being processed (EAM15) or
//!    already linked (EV066), the alphanumeric one is not marked (EV067), and the two
//!    positions differ in at most three of the five data and do not live in two different
//!    municipalities (EAM93: the remedy is writing to the agency). The agency checks these
//!    in [`AgenziaEntrate::collega`](crate::AgenziaEntrate::collega).

use anpr_domain::codice_fiscale::{CodiceFiscale, CodiceFiscaleProvvisorio, CodiceFiscaleSoggetto};
use anpr_domain::error::Anomalia;
use anpr_domain::scheda::StatoCodiceFiscale;

use crate::codici::{
    CODICE_COLLEGAMENTO_ANPR_NON_VALIDATO, CODICE_COLLEGAMENTO_FORMA,
    CODICE_COLLEGAMENTO_GIA_IN_ANPR,
};
use crate::simulatore::anomalia_cf;
use crate::tipi::RichiestaCollegamento;

/// What the registry knows about the two codes of a link request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatoAnprCollegamento {
    /// The state of the registry record's code (`codice_anpr`): it must be
    /// [`StatoCodiceFiscale::Validato`] (validated and marked).
    pub stato_codice_anpr: StatoCodiceFiscale,
    /// Whether some registry record already holds `codice_ae`.
    pub codice_ae_in_anpr: bool,
}

/// Reads the two codes of a link and checks their forms: numeric provisional on the
/// registry's side, alphanumeric on the agency's.
pub fn forme_collegamento(
    req: &RichiestaCollegamento,
) -> Result<(CodiceFiscaleProvvisorio, CodiceFiscale), Anomalia> {
    let leggi = |campo: &str, testo: &str| {
        testo
            .trim()
            .parse::<CodiceFiscaleSoggetto>()
            .map_err(|e| anomalia_cf(campo, testo, &e))
    };
    let numerico = match leggi("codiceAnpr", &req.codice_anpr)? {
        CodiceFiscaleSoggetto::Provvisorio(p) => p,
        CodiceFiscaleSoggetto::Ordinario(c) => {
            return Err(Anomalia::errore(
                CODICE_COLLEGAMENTO_FORMA,
                "Collegamento consentito solo dal codice fiscale numerico provvisorio presente \
                 in ANPR",
            )
            .campo("codiceAnpr")
            .valore(c.as_str())
            .atteso("un codice fiscale numerico provvisorio di 11 cifre"));
        }
    };
    let alfanumerico = match leggi("codiceAe", &req.codice_ae)? {
        CodiceFiscaleSoggetto::Ordinario(c) => c,
        CodiceFiscaleSoggetto::Provvisorio(p) => {
            return Err(Anomalia::errore(
                CODICE_COLLEGAMENTO_FORMA,
                "Collegamento consentito solo verso il codice fiscale alfanumerico definitivo",
            )
            .campo("codiceAe")
            .valore(p.as_str())
            .atteso("un codice fiscale alfanumerico di 16 caratteri"));
        }
    };
    Ok((numerico, alfanumerico))
}

/// The registry-side rules of a link: forms, the registry's code validated and marked,
/// the agency's code not already in the registry. All failures are returned.
pub fn controlla_lato_anpr(
    req: &RichiestaCollegamento,
    lato: &LatoAnprCollegamento,
) -> Result<(), Vec<Anomalia>> {
    let mut anomalie = Vec::new();
    if let Err(a) = forme_collegamento(req) {
        anomalie.push(a);
    }
    if lato.stato_codice_anpr != StatoCodiceFiscale::Validato {
        anomalie.push(
            Anomalia::errore(
                CODICE_COLLEGAMENTO_ANPR_NON_VALIDATO,
                "Il codice fiscale presente in ANPR deve essere validato e marcato per il \
                 collegamento",
            )
            .campo("codiceAnpr")
            .valore(req.codice_anpr.as_str())
            .atteso("un codice fiscale numerico validato e marcato"),
        );
    }
    if lato.codice_ae_in_anpr {
        anomalie.push(
            Anomalia::errore(
                CODICE_COLLEGAMENTO_GIA_IN_ANPR,
                "Il codice fiscale alfanumerico è già presente in ANPR: collegamento non \
                 consentito",
            )
            .campo("codiceAe")
            .valore(req.codice_ae.as_str())
            .atteso(format!(
                "un codice non presente in ANPR; altrimenti scrivere a {} e, avuto l'esito, \
                 allineare ANPR con l'assistenza",
                crate::codici::CASELLA_ARCHIVIO_ANAGRAFICO
            )),
        );
    }
    if anomalie.is_empty() {
        Ok(())
    } else {
        Err(anomalie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn richiesta(anpr: &str, ae: &str) -> RichiestaCollegamento {
        RichiestaCollegamento {
            codice_anpr: anpr.to_owned(),
            codice_ae: ae.to_owned(),
            comune: "058091".parse().unwrap(),
        }
    }

    fn check(req: &RichiestaCollegamento, lato: LatoAnprCollegamento, attesi: &[(&str, &str)]) {
        let ottenuti: Vec<(String, String)> = match controlla_lato_anpr(req, &lato) {
            Ok(()) => Vec::new(),
            Err(anomalie) => anomalie
                .into_iter()
                .map(|a| (a.codice, a.campo.unwrap_or_default()))
                .collect(),
        };
        let attesi: Vec<(String, String)> = attesi
            .iter()
            .map(|(c, f)| ((*c).to_owned(), (*f).to_owned()))
            .collect();
        assert_eq!(ottenuti, attesi, "{req:?} {lato:?}");
    }

    #[test]
    fn registry_side_rules() {
        let buono = LatoAnprCollegamento {
            stato_codice_anpr: StatoCodiceFiscale::Validato,
            codice_ae_in_anpr: false,
        };
        let req = richiesta("01234567897", "RSSMRA80A01H501U");
        check(&req, buono, &[]);
        check(
            &req,
            LatoAnprCollegamento {
                stato_codice_anpr: StatoCodiceFiscale::NonValidato,
                ..buono
            },
            &[("EV068", "codiceAnpr")],
        );
        check(
            &req,
            LatoAnprCollegamento {
                codice_ae_in_anpr: true,
                ..buono
            },
            &[("EV069", "codiceAe")],
        );
        check(
            &richiesta("RSSMRA80A01H501U", "RSSMRA80A01H501U"),
            buono,
            &[("EV066", "codiceAnpr")],
        );
        check(
            &richiesta("01234567897", "01234567897"),
            buono,
            &[("EV066", "codiceAe")],
        );
        check(
            &richiesta("01234567890", "RSSMRA80A01H501U"),
            LatoAnprCollegamento {
                stato_codice_anpr: StatoCodiceFiscale::Provvisorio,
                codice_ae_in_anpr: true,
            },
            &[
                ("EA048", "codiceAnpr"),
                ("EV068", "codiceAnpr"),
                ("EV069", "codiceAe"),
            ],
        );
    }
}
