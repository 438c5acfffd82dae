//! The service-layer entry point of the subentro, for the edges (REST upload, SOAP
//! S001): authorisation first, then the pipeline in the caller's environment, for the
//! caller's municipality, with that environment's tax agency.

use std::path::Path;
use std::sync::Arc;

use anpr_domain::caller::{Ambiente, CallerContext};
use anpr_domain::error::{Anomalia, Gravita, CODICE_CAMPO_OBBLIGATORIO};
use anpr_service::authz::Permesso;
use anpr_service::{Registry, ServiceError};

use crate::controlli::anomalia;
use crate::importa::{importa, Avanzamento, EsitoSubentro, FileIngresso, Opzioni};

/// Onboards `files` for the caller's municipality in the caller's environment
/// (presubentro or produzione), writing the outcome files into `cartella_esiti`.
pub async fn importa_come(
    registry: &Registry,
    ctx: &CallerContext,
    files: Vec<FileIngresso>,
    cartella_esiti: &Path,
    avanzamento: Avanzamento,
) -> Result<EsitoSubentro, ServiceError> {
    registry
        .autorizza(ctx, Permesso::Subentro, "subentro")
        .await?;
    let rifiuta = |a: Anomalia| ServiceError::Rifiutata {
        anomalie: vec![a],
        riferimento: registry.riferimento(None),
    };
    let Some(comune) = ctx.comune.clone() else {
        return Err(rifiuta(
            Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Comune del chiamante mancante")
                .campo("comune")
                .atteso("il comune che subentra"),
        ));
    };
    if !matches!(ctx.ambiente, Ambiente::Presubentro | Ambiente::Produzione) {
        return Err(rifiuta(
            anomalia(registry.tables(), "EN003", Gravita::Errore, "ambiente")
                .valore(ctx.ambiente.as_str())
                .atteso("presubentro o produzione"),
        ));
    }
    let store = Arc::clone(registry.store(ctx.ambiente)?);
    let ae = registry.agenzia_entrate(ctx.ambiente).cloned();
    let opzioni = Opzioni {
        comune,
        ambiente: ctx.ambiente,
        oggi: anpr_service::clock::italian_date(registry.clock().now()),
        utente: ctx.utente.clone(),
        canale: ctx.canale.as_str().to_owned(),
        dimensione_massima: DIMENSIONE_MASSIMA,
        cartella_esiti: cartella_esiti.to_owned(),
    };
    importa(store, ae, opzioni, files, avanzamento)
        .await
        .map_err(|e| registry.interno(e))
}

/// Largest file accepted through the edges (EN002): far above a big city's registry
/// (Rome's ~2.8 M subjects take about 3 GiB of XML).
pub const DIMENSIONE_MASSIMA: u64 = 8 << 30;
