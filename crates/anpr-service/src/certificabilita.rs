//! Certifiability of a subject (SPEC M-4.1; table 42 "Motivi di non certificabilità"):
//! service 5010 sets it on the record (`certificabilita.soggettoCertificabile`, section
//! `attributiSoggetto`), and certificates are refused by it.
//!
//! | code | meaning | certificates |
//! |---|---|---|
//! | 0 | non certificabile | none (EN047) |
//! | 1 | certificabilità parziale | only residence and family status (EN046) |
//! | 2 | certificabilità completa | all (the rules of each type still apply) |
//! | 3 | soggetto non iscrivibile | none (EN047) |
//! | 4 | interdetto sottoposto a tutela | only residence and family status (EN047) |
//!
//! Service 5010 is published as "change of electoral-list data"; this release takes its
//! certifiability part only: `liste`, `cancellazione` and `tipoRevisione` (the electoral
//! lists, announced as a next step in seed 000) are refused with EV254.
//!
//! A certificate is also refused while the subject is linked to an **open
//! administrative proceeding** of any municipality (EN181): its data may be about to
//! change (e.g. a change of residence being examined).

use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::{CodiceIstatComune, IdAnprSoggetto};
use anpr_domain::scheda::AttributiSoggetto;
use anpr_store::{ProcedimentoQuery, Store};
use serde::Deserialize;

use crate::authz::Permesso;
use crate::certificati::TipoCertificato;
use crate::lavoro::{Modifiche, SoggettoPerRicerca};
use crate::mutazione::CODICE_NESSUNA_MODIFICA;
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// Our code: a part of 5010 this release does not take (electoral lists).
pub const CODICE_LISTE_NON_DISPONIBILI: &str = "EV254";

/// Request of service 5010, certifiability part.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta5010 {
    pub id_operazione_comune: Option<String>,
    /// Effective date; today when absent.
    pub data_decorrenza: Option<String>,
    pub soggetto: SoggettoPerRicerca,
    pub certificabilita: Option<Certificabilita>,
    pub liste: Option<serde_json::Value>,
    pub cancellazione: Option<serde_json::Value>,
    pub tipo_revisione: Option<serde_json::Value>,
}

/// `tipoCertificabilita`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificabilita {
    pub soggetto_certificabile: Option<String>,
}

/// Types a partially certifiable subject (codes 1 and 4) may still have.
fn solo_residenza_famiglia(t: TipoCertificato) -> bool {
    matches!(
        t,
        TipoCertificato::Residenza
            | TipoCertificato::ResidenzaAire
            | TipoCertificato::StatoFamiglia
            | TipoCertificato::StatoFamigliaAire
    )
}

/// The refusal, if any, of certificate type `t` for a subject with certifiability
/// `attributi` (none recorded = fully certifiable).
pub fn controlla_certificabilita(
    attributi: Option<&AttributiSoggetto>,
    t: TipoCertificato,
    descrizione: impl Fn(&str) -> String,
) -> Result<(), Anomalia> {
    let Some(a) = attributi else { return Ok(()) };
    let campo = format!("tipiCertificato[{}]", t.codice());
    let codice = a.soggetto_certificabile.as_str();
    let risulta = || {
        Anomalia::errore(
            "EN047",
            format!("Il soggetto risulta {}", descrizione(codice)),
        )
        .campo(&campo)
        .valore(t.codice().to_string())
    };
    match codice {
        "0" | "3" => Err(risulta()),
        "4" if !solo_residenza_famiglia(t) => Err(risulta()),
        "1" if !solo_residenza_famiglia(t) => Err(Anomalia::errore(
            "EN046",
            "Per il soggetto, puo' essere prodotto esclusivamente un certificato di residenza o di stato di famiglia",
        )
        .campo(&campo)
        .valore(t.codice().to_string())),
        _ => Ok(()),
    }
}

impl Registry {
    /// Service 5010: sets the subject's certifiability.
    pub async fn mutazione_certificabilita(
        &self,
        ctx: &CallerContext,
        req: &Richiesta5010,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "5010",
            Permesso::Mutazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_5010(&*store, &comune, req).await
        })
        .await
    }

    async fn decidi_5010(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta5010,
    ) -> Result<Piano, Vec<Anomalia>> {
        let mut e = Vec::new();
        for (campo, presente) in [
            ("liste", req.liste.is_some()),
            ("cancellazione", req.cancellazione.is_some()),
            ("tipoRevisione", req.tipo_revisione.is_some()),
        ] {
            if presente {
                e.push(
                    Anomalia::errore(
                        CODICE_LISTE_NON_DISPONIBILI,
                        "Dati delle liste elettorali non gestiti in questa versione",
                    )
                    .campo(campo)
                    .atteso("solo certificabilita"),
                );
            }
        }
        let oggi = self.clock().today();
        let decorrenza = match &req.data_decorrenza {
            Some(d) => v::data("dataDecorrenza", d, &mut e),
            None => Some(oggi),
        };
        v::non_futura("dataDecorrenza", decorrenza, oggi, &mut e);
        let codice = req
            .certificabilita
            .as_ref()
            .and_then(|c| c.soggetto_certificabile.as_deref())
            .map(str::trim);
        match codice {
            None => e.push(
                Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    "Indicare la certificabilita' del soggetto",
                )
                .campo("certificabilita.soggettoCertificabile"),
            ),
            Some(c)
                if self
                    .tables()
                    .code("motivi_non_certificabilita", c, Some(oggi))
                    .is_none() =>
            {
                e.push(
                    Anomalia::errore(
                        "EC023",
                        format!("Codice SoggettoCertificabile {c} non valido"),
                    )
                    .campo("certificabilita.soggettoCertificabile")
                    .valore(c)
                    .atteso("un codice della tabella Motivi di non certificabilita' (0-4)"),
                )
            }
            Some(_) => {}
        }
        let s = self
            .soggetto_da_modificare(store, comune, "soggetto", &req.soggetto, &mut e)
            .await;
        let (Some(s), Some(decorrenza), Some(codice), true) = (s, decorrenza, codice, e.is_empty())
        else {
            return Err(e);
        };
        let mut dopo = s.scheda.clone();
        dopo.attributi = Some(AttributiSoggetto {
            soggetto_certificabile: codice.to_owned(),
        });
        if dopo.attributi == s.scheda.attributi {
            return Err(vec![Anomalia::errore(
                CODICE_NESSUNA_MODIFICA,
                "La certificabilita' indicata e' quella gia' registrata",
            )
            .campo("certificabilita.soggettoCertificabile")
            .valore(codice)]);
        }
        let mut m = Modifiche::default();
        m.soggetto(s.id, &s.scheda, &dopo);
        Ok(m.piano(decorrenza, Vec::new()))
    }

    /// EN181: the subject is linked to an open administrative proceeding.
    pub(crate) async fn procedimento_aperto_per(
        &self,
        store: &dyn Store,
        soggetto: IdAnprSoggetto,
    ) -> Result<Option<Anomalia>, ServiceError> {
        let aperti = store
            .find_procedimenti(&ProcedimentoQuery {
                soggetto: Some(soggetto),
                aperto: Some(true),
                limit: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| self.interno(e))?;
        Ok(aperti.first().map(|p| {
            Anomalia::errore(
                "EN181",
                "Il certificato non puo' essere emesso perche' risulta un procedimento aperto per il soggetto intestatario del certificato",
            )
            .campo("idSchedaSoggettoANPR")
            .valore(soggetto.to_string())
            .atteso(format!(
                "nessun procedimento aperto (aperto: n. {} del comune {})",
                p.id, p.comune
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certifiability_codes() {
        let a = |c: &str| AttributiSoggetto {
            soggetto_certificabile: c.into(),
        };
        let esito = |c: Option<&str>, t: TipoCertificato| {
            let attr = c.map(a);
            controlla_certificabilita(attr.as_ref(), t, |c| format!("D{c}"))
                .err()
                .map(|x| format!("{} {}", x.codice, x.testo))
        };
        use TipoCertificato as T;
        assert_eq!(esito(None, T::Nascita), None);
        assert_eq!(esito(Some("2"), T::Nascita), None);
        assert_eq!(
            esito(Some("0"), T::Residenza).as_deref(),
            Some("EN047 Il soggetto risulta D0")
        );
        assert_eq!(esito(Some("3"), T::StatoFamiglia).unwrap()[..5], *"EN047");
        assert_eq!(esito(Some("1"), T::Residenza), None);
        assert_eq!(esito(Some("1"), T::StatoFamigliaAire), None);
        assert_eq!(esito(Some("1"), T::Nascita).unwrap()[..5], *"EN046");
        assert_eq!(esito(Some("4"), T::StatoFamiglia), None);
        assert_eq!(
            esito(Some("4"), T::Cittadinanza).as_deref(),
            Some("EN047 Il soggetto risulta D4")
        );
    }
}
