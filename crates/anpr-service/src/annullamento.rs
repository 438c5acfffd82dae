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
}

/// The family of services each annulment service may annul.
fn famiglia_annullabile(codice: &str) -> Option<char> {
    match codice {
        "1013" => Some('1'),
        "5012" => Some('5'),
        "2011" => Some('2'),
        _ => None,
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
        let testata = Testata {
            codice,
            permesso: Permesso::Annullamento,
            id_operazione_comune: req.id_operazione_comune.as_deref(),
            richiesta: raw,
            id_operazione_sospesa: None,
        };
        let store = self.store(ctx.ambiente)?.clone();
        self.esegui_operazione(ctx, testata, |comune, _op| async move {
            let target: IdOperazioneAnpr = req.id_operazione_anpr.parse().map_err(|e| vec![Anomalia::from_invalid("idOperazioneANPR", &e)])?;
            let stored = store.operation(target).await.map_err(|e| vec![self.anomalia_interna(e)])?;
            let Some(stored) = stored.filter(|o| o.comune.as_ref() == Some(&comune)) else {
                return Err(vec![Anomalia::errore(crate::error::CODICE_NON_TROVATO, format!("Operazione {target} inesistente per il comune {comune}"))
                    .campo("idOperazioneANPR")
                    .valore(target.to_string())]);
            };
            let family = famiglia_annullabile(codice);
            if stored.annulla.is_some() || family.is_none_or(|f| !stored.codice_servizio.as_str().starts_with(f)) {
                return Err(vec![Anomalia::errore(
                    "EN314",
                    "Il servizio di annullamento richiamato non e' congruente con l'operazione richiesta o l'id operazione ANPR",
                )
                .campo("idOperazioneANPR")
                .valore(format!("{target} ({})", stored.codice_servizio))
                .atteso(format!("un'operazione dei servizi {}xxx", family.unwrap_or('?')))]);
            }
            Ok(Piano {
                soggetti: stored.entities.iter().filter_map(|e| match e { anpr_store::EntityRef::Soggetto(s) => Some(*s), _ => None }).collect(),
                famiglie: stored.entities.iter().filter_map(|e| match e { anpr_store::EntityRef::Famiglia(f) => Some(*f), _ => None }).collect(),
                annulla: Some(target),
                ..Piano::default()
            })
        })
        .await
    }
}
