//! PostgreSQL backend of the registry's [`Store`]: the production-scale one.
//!
//! One [`PostgresStore`] is one environment's data set, kept in its own schema
//! (`anpr_test`, `anpr_presubentro`, `anpr_produzione`); every pooled connection has its
//! `search_path` pinned to that schema, so environments sharing a database cannot see
//! each other's rows. The layout is in `migrations/`, applied on connect (module `schema`).
//!
//! Writes ([`Store::apply`], [`Store::annul`]) are one READ COMMITTED transaction each
//! (module `write`); what must hold under concurrency is enforced by locks taken in a fixed
//! order (municipality counter, records, version rows, audit head) and by a unique index
//! allowing one open version per section. Losing a race shows up as a deadlock or as a
//! collision on that index, and the whole transaction is simply run again. The audit
//! head makes every write pass through one short serialised section at its end; to keep
//! disk flushes out of it, the commit is asynchronous and the caller is answered after a
//! separate synchronous flush (see `write::confirm_durable`). Reads are single statements
//! (module `read`).
#![forbid(unsafe_code)]

#[cfg(feature = "testing")]
pub mod testing;

mod elaborazioni;
mod error;
mod read;
mod schema;
mod sicurezza;
mod subentro;
mod write;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anpr_domain::audit::{NuovaVoceAudit, TestaCatena, VoceAudit};
use anpr_domain::caller::Ambiente;
use anpr_domain::ids::{CodiceIstatComune, IdAnprFamiglia, IdOperazioneAnpr, IdOperazioneComune};
use anpr_store::{
    Backend, EntityRef, FamilyIndex, NewOperation, NuovaSospesa, OperationQuery, OperazioneSospesa,
    OutboxMessage, ProcedimentoIndex, ProcedimentoQuery, QueryNotifiche, QuerySospese,
    RecordSections, Sequence, Store, StoreError, StoredOperation, StoredVersion, SubjectIndex,
    SubjectQuery,
};
use async_trait::async_trait;
use chrono::NaiveDate;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use schema::validate_schema_name;

use error::Failure;

/// Connections kept by default: enough to overlap network round trips of concurrent
/// requests without crowding the server's `max_connections` (several processes and
/// environments share it).
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a request waits for a free connection before failing, rather than hanging.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Connection settings beyond the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Maximum number of pooled connections.
    pub max_size: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_POOL_SIZE,
        }
    }
}

/// The PostgreSQL store of one environment.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    schema: String,
}

impl fmt::Debug for PostgresStore {
    // The URL (which may carry a password) is deliberately not kept, so not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("pool_size", &status.size)
            .field("pool_max_size", &status.max_size)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to `url` and uses schema `schema`, creating and migrating it as needed.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, schema, &PoolSettings::default()).await
    }

    /// Connects to the data set of an environment: schema `anpr_<ambiente>`.
    pub async fn connect_env(url: &str, ambiente: Ambiente) -> Result<Self, StoreError> {
        Self::connect(url, &schema_for(ambiente)).await
    }

    /// Like [`PostgresStore::connect`], with explicit pool settings.
    pub async fn connect_with(
        url: &str,
        schema: &str,
        settings: &PoolSettings,
    ) -> Result<Self, StoreError> {
        validate_schema_name(schema)?;
        if settings.max_size == 0 {
            return Err(StoreError::Invalid(
                "the connection pool needs at least one connection".into(),
            ));
        }
        // The driver's parse error can echo the URL, password included: keep it out.
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|_| StoreError::Invalid("the PostgreSQL URL cannot be parsed".into()))?;
        let options = match config.get_options() {
            Some(existing) if !existing.trim().is_empty() => {
                format!("{existing} -c search_path={schema}")
            }
            _ => format!("-c search_path={schema}"),
        };
        config.options(options);
        if config.get_application_name().is_none() {
            config.application_name("anpr");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| StoreError::Backend(format!("building the connection pool: {e}")))?;
        let store = Self {
            pool,
            schema: schema.to_owned(),
        };
        {
            let mut client = store
                .pool
                .get()
                .await
                .map_err(|e| Failure::from(e).into_store_error())?;
            schema::migrate(&mut client, schema).await?;
        }
        Ok(store)
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The newest schema version this build knows.
    pub fn schema_version() -> i32 {
        schema::MIGRATIONS.last().map_or(0, |m| m.0)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, Failure> {
        Ok(self.pool.get().await?)
    }
}

/// The schema of an environment's data set.
pub fn schema_for(ambiente: Ambiente) -> String {
    format!("anpr_{}", ambiente.as_str())
}

fn sequence_sql(sequence: Sequence) -> &'static str {
    match sequence {
        Sequence::Operazione => "SELECT nextval('seq_operazione')",
        Sequence::Soggetto => "SELECT nextval('seq_soggetto')",
        Sequence::Famiglia => "SELECT nextval('seq_famiglia')",
        Sequence::Procedimento => "SELECT nextval('seq_procedimento')",
        Sequence::Sospesa => "SELECT nextval('seq_sospesa')",
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn sicurezza_ca(
        &self,
        proposta: anpr_store::sicurezza::CaSicurezza,
    ) -> Result<anpr_store::sicurezza::CaSicurezza, StoreError> {
        sicurezza::ca(self, proposta).await
    }

    async fn sicurezza_versione(&self) -> Result<u64, StoreError> {
        sicurezza::versione(self).await
    }

    async fn sicurezza_carica(
        &self,
        dopo: u64,
    ) -> Result<anpr_store::sicurezza::CaricoSicurezza, StoreError> {
        sicurezza::carica(self, dopo).await
    }

    async fn sicurezza_salva(
        &self,
        modifica: anpr_store::sicurezza::ModificaSicurezza,
    ) -> Result<u64, StoreError> {
        sicurezza::salva(self, modifica).await
    }

    async fn sicurezza_posta_prendi(
        &self,
        adesso: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<anpr_store::sicurezza::MailSicurezza>, StoreError> {
        sicurezza::posta_prendi(self, adesso, adesso + lease, limit).await
    }

    async fn sicurezza_posta_esito(
        &self,
        id: u64,
        esito: anpr_store::sicurezza::EsitoMail,
    ) -> Result<(), StoreError> {
        sicurezza::posta_esito(self, id, esito).await
    }

    async fn sicurezza_posta(
        &self,
        stato: Option<anpr_store::sicurezza::StatoMail>,
        limit: u32,
    ) -> Result<Vec<anpr_store::sicurezza::MailSicurezza>, StoreError> {
        sicurezza::posta(self, stato, limit).await
    }

    async fn sicurezza_gettone_crea(
        &self,
        gettone: anpr_store::sicurezza::GettoneSicurezza,
    ) -> Result<(), StoreError> {
        sicurezza::gettone_crea(self, gettone).await
    }

    async fn sicurezza_gettone(
        &self,
        impronta: &str,
        tipo: &str,
        adesso: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<anpr_store::sicurezza::GettoneSicurezza>, StoreError> {
        sicurezza::gettone(self, impronta, tipo, adesso).await
    }

    async fn sicurezza_gettone_consuma(
        &self,
        impronta: &str,
        tipo: &str,
        adesso: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<anpr_store::sicurezza::GettoneSicurezza>, StoreError> {
        sicurezza::gettone_consuma(self, impronta, tipo, adesso).await
    }

    async fn sicurezza_accesso_fallito(
        &self,
        chiave: &str,
        istante: chrono::DateTime<chrono::Utc>,
        dal: chrono::DateTime<chrono::Utc>,
    ) -> Result<u32, StoreError> {
        sicurezza::accesso_fallito(self, chiave, istante, dal).await
    }

    async fn sicurezza_accessi_falliti(
        &self,
        chiave: &str,
        dal: chrono::DateTime<chrono::Utc>,
    ) -> Result<u32, StoreError> {
        sicurezza::accessi_falliti(self, chiave, dal).await
    }

    async fn sicurezza_azzera_accessi_falliti(&self, chiave: &str) -> Result<(), StoreError> {
        sicurezza::azzera_accessi(self, chiave).await
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn next_id(&self, sequence: Sequence) -> Result<u64, StoreError> {
        let run = async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(sequence_sql(sequence))
                .await
                .map_err(|e| db("next_id", e))?;
            let row = client
                .query_one(&stmt, &[])
                .await
                .map_err(|e| db("next_id", e))?;
            Ok::<_, Failure>(error::to_u64(row.get::<_, i64>(0), "sequence value")?)
        };
        run.await.map_err(Failure::into_store_error)
    }

    async fn apply(&self, op: NewOperation) -> Result<VoceAudit, StoreError> {
        write::apply(self, op).await
    }

    async fn annul(
        &self,
        target: IdOperazioneAnpr,
        annulment: NewOperation,
    ) -> Result<VoceAudit, StoreError> {
        write::annul(self, target, annulment).await
    }

    async fn operation(&self, id: IdOperazioneAnpr) -> Result<Option<StoredOperation>, StoreError> {
        read::operation(self, id)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn conferma_durevole(&self) -> Result<(), StoreError> {
        let run = async {
            let client = self.client().await?;
            write::confirm_durable(&client, "confirming durability").await
        };
        run.await.map_err(Failure::into_store_error)
    }

    async fn operation_by_comune_id(
        &self,
        comune: &CodiceIstatComune,
        id: IdOperazioneComune,
    ) -> Result<Option<StoredOperation>, StoreError> {
        read::operation_by_comune_id(self, comune, id)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn operations(&self, query: &OperationQuery) -> Result<Vec<StoredOperation>, StoreError> {
        read::operations(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn record(
        &self,
        entity: EntityRef,
        at: Option<NaiveDate>,
    ) -> Result<Option<RecordSections>, StoreError> {
        read::record(self, entity, at)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn history(
        &self,
        entity: EntityRef,
        section: &str,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        read::history(self, entity, section)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn by_section_key(
        &self,
        section: &str,
        key: &str,
        at: Option<NaiveDate>,
    ) -> Result<Vec<(EntityRef, serde_json::Value)>, StoreError> {
        read::by_section_key(self, section, key, at)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn find_subjects(&self, query: &SubjectQuery) -> Result<Vec<SubjectIndex>, StoreError> {
        read::find_subjects(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn family_index(&self, id: IdAnprFamiglia) -> Result<Option<FamilyIndex>, StoreError> {
        read::family_index(self, id)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn find_procedimenti(
        &self,
        query: &ProcedimentoQuery,
    ) -> Result<Vec<ProcedimentoIndex>, StoreError> {
        read::find_procedimenti(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn salva_sospesa(&self, sospesa: NuovaSospesa) -> Result<OperazioneSospesa, StoreError> {
        let id = match sospesa.id {
            Some(id) => id,
            None => self.next_id(Sequence::Sospesa).await?,
        };
        write::salva_sospesa(self, sospesa, id).await
    }

    async fn sospesa(&self, id: u64) -> Result<Option<OperazioneSospesa>, StoreError> {
        read::sospesa(self, id)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn sospese(&self, query: &QuerySospese) -> Result<Vec<OperazioneSospesa>, StoreError> {
        read::sospese(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn elimina_sospesa(&self, id: u64, audit: NuovaVoceAudit) -> Result<bool, StoreError> {
        write::elimina_sospesa(self, id, audit).await
    }

    async fn emetti_documento(
        &self,
        doc: anpr_store::NuovoDocumento,
    ) -> Result<anpr_store::DocumentoEmesso, StoreError> {
        write::emetti_documento(self, doc).await
    }

    async fn documento(&self, id: &str) -> Result<Option<anpr_store::DocumentoEmesso>, StoreError> {
        read::documento(self, id)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn documenti(
        &self,
        query: &anpr_store::QueryDocumenti,
    ) -> Result<Vec<anpr_store::DocumentoEmesso>, StoreError> {
        read::documenti(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn annulla_documento(
        &self,
        id: &str,
        istante: chrono::DateTime<chrono::Utc>,
        motivo: String,
        audit: NuovaVoceAudit,
    ) -> Result<Option<anpr_store::DocumentoEmesso>, StoreError> {
        write::annulla_documento(self, id, istante, motivo, audit).await
    }

    async fn parametri_comune(
        &self,
        comune: &anpr_domain::ids::CodiceIstatComune,
    ) -> Result<Option<anpr_store::ParametriComune>, StoreError> {
        read::parametri_comune(self, comune)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn salva_parametri_comune(
        &self,
        parametri: anpr_store::NuoviParametriComune,
    ) -> Result<anpr_store::ParametriComune, StoreError> {
        write::salva_parametri_comune(self, parametri).await
    }

    async fn append_audit(&self, entry: NuovaVoceAudit) -> Result<VoceAudit, StoreError> {
        write::append_audit(self, entry).await
    }

    async fn append_audit_batch(
        &self,
        entries: Vec<NuovaVoceAudit>,
    ) -> Result<Vec<VoceAudit>, StoreError> {
        write::append_audit_batch(self, entries).await
    }

    async fn audit_page(&self, after: u64, limit: u32) -> Result<Vec<VoceAudit>, StoreError> {
        read::audit_page(self, after, limit)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn audit_head(&self) -> Result<Option<TestaCatena>, StoreError> {
        read::audit_head(self)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        read::outbox_pending(self, limit)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn notifiche(&self, query: &QueryNotifiche) -> Result<Vec<OutboxMessage>, StoreError> {
        read::notifiche(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn outbox_mark(&self, id: u64, delivered: bool) -> Result<(), StoreError> {
        write::outbox_mark(self, id, delivered)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let run = async {
            let client = self.client().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| db("ping", e))?;
            Ok::<_, Failure>(())
        };
        run.await.map_err(Failure::into_store_error)
    }

    async fn next_ids(&self, sequence: Sequence, count: u64) -> Result<Vec<u64>, StoreError> {
        let nome = match sequence {
            Sequence::Operazione => "seq_operazione",
            Sequence::Soggetto => "seq_soggetto",
            Sequence::Famiglia => "seq_famiglia",
            Sequence::Procedimento => "seq_procedimento",
            Sequence::Sospesa => "seq_sospesa",
        };
        subentro::next_ids(self, nome, count).await
    }

    async fn file_subentro(
        &self,
        comune: &CodiceIstatComune,
    ) -> Result<Vec<anpr_store::FileSubentro>, StoreError> {
        subentro::file_subentro(self, comune).await
    }

    async fn codici_fiscali_presenti(
        &self,
        codici: &[String],
    ) -> Result<Vec<anpr_store::CodiceFiscalePresente>, StoreError> {
        subentro::codici_fiscali_presenti(self, codici).await
    }

    async fn carica_subentro(
        &self,
        inizio: anpr_store::InizioSubentro,
        records: tokio::sync::mpsc::Receiver<anpr_store::MessaggioSubentro>,
    ) -> Result<VoceAudit, StoreError> {
        subentro::carica(self, inizio, records).await
    }

    async fn inserisci_elaborazione(
        &self,
        nuova: anpr_store::NuovaElaborazione,
    ) -> Result<(anpr_store::Elaborazione, bool), StoreError> {
        elaborazioni::inserisci(self, nuova).await
    }

    async fn prendi_elaborazione(
        &self,
        istante: chrono::DateTime<chrono::Utc>,
        scadenza: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<anpr_store::Elaborazione>, StoreError> {
        elaborazioni::prendi(self, istante, scadenza).await
    }

    async fn concludi_elaborazione(
        &self,
        c: anpr_store::ConclusioneElaborazione,
    ) -> Result<bool, StoreError> {
        elaborazioni::concludi(self, c).await
    }

    async fn elaborazione(&self, id: u64) -> Result<Option<anpr_store::Elaborazione>, StoreError> {
        elaborazioni::leggi(self, id)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn file_elaborazione(
        &self,
        id: u64,
    ) -> Result<Option<anpr_store::FileElaborazione>, StoreError> {
        elaborazioni::file(self, id)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn elaborazioni(
        &self,
        query: &anpr_store::QueryElaborazioni,
    ) -> Result<Vec<anpr_store::Elaborazione>, StoreError> {
        elaborazioni::cerca(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn soggetti_per_estrazione(
        &self,
        query: &anpr_store::QueryEstrazione,
    ) -> Result<Vec<SubjectIndex>, StoreError> {
        elaborazioni::soggetti(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn sezioni_di(
        &self,
        entita: &[EntityRef],
        sezioni: &[String],
        at: Option<NaiveDate>,
    ) -> Result<Vec<(EntityRef, RecordSections)>, StoreError> {
        elaborazioni::sezioni_di(self, entita, sezioni, at)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn versioni_per_campo(
        &self,
        query: &anpr_store::QueryVersioniCampo,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        elaborazioni::versioni_per_campo(self, query)
            .await
            .map_err(Failure::into_store_error)
    }

    async fn baseline_raw_insert(&self, rows: u32) -> Result<(), StoreError> {
        write::baseline_raw_insert(self, rows)
            .await
            .map_err(Failure::into_store_error)
    }
}

pub(crate) fn db(what: &'static str, error: tokio_postgres::Error) -> Failure {
    Failure::Db { what, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_schemas() {
        assert_eq!(schema_for(Ambiente::Test), "anpr_test");
        assert_eq!(schema_for(Ambiente::Presubentro), "anpr_presubentro");
        assert_eq!(schema_for(Ambiente::Produzione), "anpr_produzione");
        for a in Ambiente::ALL {
            validate_schema_name(&schema_for(a)).unwrap();
        }
    }
}
