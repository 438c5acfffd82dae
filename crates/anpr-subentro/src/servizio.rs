//! The service-layer entry point of the subentro, for the edges (REST upload, SOAP
//! S001): authorisation first, then the pipeline in the caller's environment, for the
//! caller's municipality, with that environment's tax agency.
//!
//! One load at a time per municipality and data set: a second load (REST or S001)
//! while one runs is refused with EN037 ("a previous supply is being processed"), so
//! two loads of the same municipality never interleave. The lock lives in this
//! process (one server per data set, as deployed); see docs/SUBENTRO.md.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anpr_domain::caller::{Ambiente, CallerContext};
use anpr_domain::error::{Anomalia, Gravita, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_service::authz::Permesso;
use anpr_service::{Registry, ServiceError};
use anpr_store::Store;

use crate::controlli::anomalia;
use crate::importa::{importa, Avanzamento, EsitoSubentro, FileIngresso, Opzioni};

/// Onboards `files` for the caller's municipality in the caller's environment
/// (presubentro or produzione), writing the outcome files into `cartella_esiti`.
/// Refused with EN037 while another load of the same municipality runs.
pub async fn importa_come(
    registry: &Registry,
    ctx: &CallerContext,
    files: Vec<FileIngresso>,
    cartella_esiti: &Path,
    avanzamento: Avanzamento,
) -> Result<EsitoSubentro, ServiceError> {
    let comune = verifica_chiamante(registry, ctx).await?;
    let store = Arc::clone(registry.store(ctx.ambiente)?);
    let Some(guardia) = serratura(&store, &comune).prova() else {
        return Err(in_elaborazione(registry, &comune));
    };
    guardia.in_carico();
    carica(registry, ctx, comune, files, cartella_esiti, avanzamento).await
}

/// Authorisation (subentro permission), the caller's municipality and an environment
/// where a subentro can happen (EN003 otherwise): the municipality.
pub(crate) async fn verifica_chiamante(
    registry: &Registry,
    ctx: &CallerContext,
) -> Result<CodiceIstatComune, ServiceError> {
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
    Ok(comune)
}

/// The load itself, for a caller already checked and holding the municipality's lock.
pub(crate) async fn carica(
    registry: &Registry,
    ctx: &CallerContext,
    comune: CodiceIstatComune,
    files: Vec<FileIngresso>,
    cartella_esiti: &Path,
    avanzamento: Avanzamento,
) -> Result<EsitoSubentro, ServiceError> {
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

/// EN037: a load of the municipality is running.
pub(crate) fn in_elaborazione(registry: &Registry, comune: &CodiceIstatComune) -> ServiceError {
    ServiceError::Rifiutata {
        anomalie: vec![
            anomalia(registry.tables(), "EN037", Gravita::Errore, "comune")
                .valore(comune.as_str())
                .atteso("la fine dell'elaborazione in corso"),
        ],
        riferimento: registry.riferimento(None),
    }
}

/// Largest file accepted through the edges (EN002): far above a big city's registry
/// (Rome's ~2.8 M subjects take about 3 GiB of XML).
pub const DIMENSIONE_MASSIMA: u64 = 8 << 30;

/// The lock of one municipality in one data set (store).
#[derive(Clone)]
pub(crate) struct Serratura {
    mutex: Arc<tokio::sync::Mutex<()>>,
    in_carico: Arc<AtomicBool>,
}

/// Holding the municipality's lock; dropping it releases it.
pub(crate) struct Guardia {
    _guardia: tokio::sync::OwnedMutexGuard<()>,
    in_carico: Arc<AtomicBool>,
}

impl Guardia {
    /// Marks the hold as a load (long): others are refused rather than made to wait.
    pub(crate) fn in_carico(&self) {
        self.in_carico.store(true, Ordering::SeqCst);
    }
}

impl Drop for Guardia {
    fn drop(&mut self) {
        self.in_carico.store(false, Ordering::SeqCst);
    }
}

impl Serratura {
    /// The lock if free now.
    pub(crate) fn prova(&self) -> Option<Guardia> {
        let g = Arc::clone(&self.mutex).try_lock_owned().ok()?;
        Some(Guardia {
            _guardia: g,
            in_carico: Arc::clone(&self.in_carico),
        })
    }

    /// The lock, waiting while its holder only stages a file (short); `None` while a
    /// load holds it.
    pub(crate) async fn attendi(&self) -> Option<Guardia> {
        if let Some(g) = self.prova() {
            return Some(g);
        }
        if self.in_carico.load(Ordering::SeqCst) {
            return None;
        }
        let g = Arc::clone(&self.mutex).lock_owned().await;
        Some(Guardia {
            _guardia: g,
            in_carico: Arc::clone(&self.in_carico),
        })
    }
}

/// The lock of `comune` in `store`'s data set. Keyed by the store instance, so
/// servers on different data sets in one process (tests) do not block each other.
pub(crate) fn serratura(store: &Arc<dyn Store>, comune: &CodiceIstatComune) -> Serratura {
    static SERRATURE: OnceLock<Mutex<HashMap<(usize, String), Serratura>>> = OnceLock::new();
    let chiave = (
        Arc::as_ptr(store).cast::<()>() as usize,
        comune.as_str().to_owned(),
    );
    let mut mappa = SERRATURE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    mappa
        .entry(chiave)
        .or_insert_with(|| Serratura {
            mutex: Arc::new(tokio::sync::Mutex::new(())),
            in_carico: Arc::new(AtomicBool::new(false)),
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_municipality_and_data_set() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            anpr_store_sqlite::SqliteStore::open_in_dir(dir.path(), Ambiente::Presubentro).unwrap(),
        );
        let altro_dir = tempfile::tempdir().unwrap();
        let altro: Arc<dyn Store> = Arc::new(
            anpr_store_sqlite::SqliteStore::open_in_dir(altro_dir.path(), Ambiente::Presubentro)
                .unwrap(),
        );
        let roma: CodiceIstatComune = "058091".parse().unwrap();
        let milano: CodiceIstatComune = "015146".parse().unwrap();
        let g = serratura(&store, &roma).prova().expect("free");
        assert!(serratura(&store, &roma).prova().is_none());
        // Another municipality, or the same in another data set, is independent.
        assert!(serratura(&store, &milano).prova().is_some());
        assert!(serratura(&altro, &roma).prova().is_some());
        // While a load holds it, others are refused at once instead of waiting.
        g.in_carico();
        assert!(serratura(&store, &roma).attendi().await.is_none());
        drop(g);
        // A short hold (staging) is waited for.
        let g = serratura(&store, &roma).prova().unwrap();
        let attesa = tokio::spawn(async move {
            let s = serratura(&store, &roma);
            s.attendi().await.is_some()
        });
        tokio::task::yield_now().await;
        drop(g);
        assert!(attesa.await.unwrap());
    }
}
