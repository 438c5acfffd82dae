//! Annulment of an operation (services 1013 registrations, 5012 changes, 2011 removals;
//! SPEC M-2.4): strictly newest first on every record it touched, restoring the exact
//! previous versions; an annulled registration makes the subject disappear.

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::IdOperazioneAnpr;
use serde::Deserialize;

use crate::authz::Permesso;
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::{Registry, ServiceError};

/// Request of 1013 / 5012 / 2011.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaAnnullamento {
    pub id_operazione_comune: Option<String>,
    /// The operation to annul.
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: String,
    pub note: Option<String>,
    /// Also annul the attribution of the codice fiscale made by the annulled
    /// registration (only within 24 hours of it): the tax agency is told through the
    /// outbox.
    #[serde(default, rename = "annullamentoAttribuzioneCF")]
    pub annullamento_attribuzione_cf: bool,
}

/// ANPR code: the operation to annul does not exist.
pub const CODICE_OPERAZIONE_INESISTENTE: &str = "EN078";
/// ANPR code: the operation to annul belongs to another municipality.
pub const CODICE_OPERAZIONE_ALTRO_COMUNE: &str = "EN145";
/// Our code: a CF attribution can be annulled only within 24 hours.
pub const CODICE_ATTRIBUZIONE_SCADUTA: &str = "EV045";

/// The family of services each annulment service may annul.
/// Registrations (1xxx, A001, A002) with 1013, changes (5xxx, A006) with 5012, removals
/// (2xxx) with 2011.
fn annullabili(codice: &str) -> &'static [&'static str] {
    match codice {
        "1013" => &["1001", "1002", "1010", "1014", "A001", "A002"],
        "5012" => &[
            "5001", "5005", "5008", "5010", "5013", "5014", "5021", "A006",
        ],
        // 5021 with `tipoMutazione` 07 annuls a polygamy operation only.
        "5021" => &["5021"],
        "2011" => &["2001", "2003", "2009"],
        _ => &[],
    }
}

impl Registry {
    /// Annuls an operation of the caller's municipality.
    pub async fn annulla_operazione(
        &self,
        ctx: &CallerContext,
        codice: &'static str,
        req: &RichiestaAnnullamento,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            codice,
            Permesso::Annullamento,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _op| async move {
            self.decidi_annullamento(&*store, &comune, codice, req)
                .await
        })
        .await
    }

    /// Decides an annulment by service `codice` of the caller's municipality `comune`:
    /// the target must exist, be of `comune` and of a service `codice` may annul.
    pub(crate) async fn decidi_annullamento(
        &self,
        store: &dyn anpr_store::Store,
        comune: &anpr_domain::ids::CodiceIstatComune,
        codice: &str,
        req: &RichiestaAnnullamento,
    ) -> Result<Piano, Vec<Anomalia>> {
        let target: IdOperazioneAnpr = req
            .id_operazione_anpr
            .parse()
            .map_err(|e| vec![Anomalia::from_invalid("idOperazioneANPR", &e)])?;
        let stored = store
            .operation(target)
            .await
            .map_err(|e| vec![self.anomalia_interna(e)])?;
        let stored = match stored {
                None => {
                    return Err(vec![Anomalia::errore(CODICE_OPERAZIONE_INESISTENTE, "L'operazione da annullare non e' presente nell'archivio delle registrazioni anagrafiche")
                        .campo("idOperazioneANPR")
                        .valore(target.to_string())])
                }
                Some(o) if o.comune.as_ref() != Some(comune) => {
                    return Err(vec![Anomalia::errore(CODICE_OPERAZIONE_ALTRO_COMUNE, "Operazione impossibile: l'evento anagrafico di cui si chiede l'annullamento e' di competenza di un altro comune")
                        .campo("idOperazioneANPR")
                        .valore(target.to_string())])
                }
                Some(o) => o,
            };
        let ammessi = annullabili(codice);
        if stored.annulla.is_some() || !ammessi.contains(&stored.codice_servizio.as_str()) {
            return Err(vec![Anomalia::errore(
                    "EN314",
                    "Il servizio di annullamento richiamato non e' congruente con l'operazione richiesta o l'id operazione ANPR",
                )
                .campo("idOperazioneANPR")
                .valore(format!("{target} ({})", stored.codice_servizio))
                .atteso(format!("un'operazione dei servizi {}", ammessi.join(", ")))]);
        }
        let mut outbox = Vec::new();
        if req.annullamento_attribuzione_cf {
            let registrazione = matches!(
                stored.codice_servizio.as_str(),
                "1001" | "1002" | "A001" | "A002"
            );
            let eta = self.clock().now() - stored.registrata_il;
            if !registrazione || eta > chrono::Duration::hours(24) {
                return Err(vec![Anomalia::errore(CODICE_ATTRIBUZIONE_SCADUTA, "L'attribuzione del codice fiscale si annulla solo con l'iscrizione che l'ha effettuata, entro 24 ore")
                        .campo("annullamentoAttribuzioneCF")
                        .valore(format!("operazione {} del {}", stored.codice_servizio, stored.registrata_il.to_rfc3339()))
                        .atteso("un'iscrizione registrata da non piu' di 24 ore")]);
            }
            for e in &stored.entities {
                if let anpr_store::EntityRef::Soggetto(_) = e {
                    let rec = store
                        .record(*e, None)
                        .await
                        .map_err(|x| vec![self.anomalia_interna(x)])?;
                    if let Some(cf) = rec
                        .as_ref()
                        .and_then(|r| r.get("codiceFiscale"))
                        .and_then(|c| c.get("codFiscale"))
                    {
                        outbox.push(anpr_store::NewOutboxMessage {
                                tipo: "AE-ANNULLA-CF".into(),
                                destinatario: "AE".into(),
                                payload: serde_json::json!({"codiceFiscale": cf, "idOperazioneANPR": target.to_string()}),
                            });
                    }
                }
            }
        }
        Ok(Piano {
            soggetti: stored
                .entities
                .iter()
                .filter_map(|e| match e {
                    anpr_store::EntityRef::Soggetto(s) => Some(*s),
                    _ => None,
                })
                .collect(),
            famiglie: stored
                .entities
                .iter()
                .filter_map(|e| match e {
                    anpr_store::EntityRef::Famiglia(f) => Some(*f),
                    _ => None,
                })
                .collect(),
            annulla: Some(target),
            outbox,
            ..Piano::default()
        })
    }
}
