//! Schema names and migrations.
//!
//! Each environment is its own PostgreSQL schema; every pooled connection has its
//! `search_path` set to it, so the SQL elsewhere never names the schema. Because the name
//! ends up in a connection option and in `CREATE SCHEMA`, it is validated strictly
//! instead of quoted.
//!
//! Migrations are SQL files embedded at compile time and applied in order, each in its
//! own transaction together with its row in `schema_migrations`. Every transaction first
//! takes a transaction-level advisory lock keyed on the schema, so two processes starting
//! at once apply each migration exactly once; the lock is released by commit or rollback,
//! so a crashed migrator cannot leave it held. A schema whose recorded version is newer
//! than the code is refused: old code must not write into a layout it does not know.

use anpr_store::StoreError;
use tokio_postgres::Client;

use crate::error::describe;

/// The embedded migrations: (version, name, SQL). Versions strictly increase from 1.
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "sospese_procedimenti",
        include_str!("../migrations/0002_sospese_procedimenti.sql"),
    ),
    (
        3,
        "subentro",
        include_str!("../migrations/0003_subentro.sql"),
    ),
    (
        4,
        "sicurezza",
        include_str!("../migrations/0004_sicurezza.sql"),
    ),
    (
        5,
        "documenti",
        include_str!("../migrations/0005_documenti.sql"),
    ),
    (
        6,
        "parametri_genitori",
        include_str!("../migrations/0006_parametri_genitori.sql"),
    ),
    (
        7,
        "estrazioni",
        include_str!("../migrations/0007_estrazioni.sql"),
    ),
    (
        8,
        "notifiche",
        include_str!("../migrations/0008_notifiche.sql"),
    ),
];

/// First key of the advisory lock taken by migrations ("ANPR" in ASCII); the second key
/// is the hash of the schema name, so environments migrate independently.
const MIGRATION_LOCK_CLASS: i32 = 0x414E_5052;

/// Checks a schema name: `[a-z_][a-z0-9_]{0,62}`, and not one of PostgreSQL's reserved
/// `pg_` names.
pub fn validate_schema_name(name: &str) -> Result<(), StoreError> {
    let bytes = name.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if !well_formed {
        return Err(StoreError::Invalid(format!(
            "schema name {name:?} must match [a-z_][a-z0-9_]{{0,62}}"
        )));
    }
    if name.starts_with("pg_") {
        return Err(StoreError::Invalid(format!(
            "schema name {name:?} is reserved by PostgreSQL (pg_ prefix)"
        )));
    }
    Ok(())
}

fn backend(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Backend(describe(what, &e))
}

/// Creates the schema if missing and brings it to the latest version. `client` must have
/// `search_path` set to `schema`.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    validate_schema_name(schema)?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);

    let tx = client
        .transaction()
        .await
        .map_err(backend("migrations: begin"))?;
    lock(&tx, schema).await?;
    // The name is validated above; identifiers cannot be bound as parameters.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(backend("migrations: creating the schema"))?;
    let applied = tx
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(backend("migrations: reading schema_migrations"))?;
    for row in &applied {
        let version: i32 = row.get(0);
        let name: String = row.get(1);
        if version > latest {
            return Err(StoreError::Backend(format!(
                "schema {schema} is at version {version}, newer than this build knows ({latest}); refusing to use it"
            )));
        }
        match MIGRATIONS.iter().find(|m| m.0 == version) {
            Some(m) if m.1 == name => {}
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "schema {schema}: recorded migration {version} {name:?} is not the one this build has"
                )))
            }
        }
    }
    tx.commit().await.map_err(backend("migrations: commit"))?;

    for (version, name, sql) in MIGRATIONS {
        let tx = client
            .transaction()
            .await
            .map_err(backend("migrations: begin"))?;
        lock(&tx, schema).await?;
        // Checked again under the lock: another process may have applied it meanwhile.
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await
            .map_err(backend("migrations: reading schema_migrations"))?
            .is_some();
        if done {
            continue;
        }
        tracing::info!(schema, version, name, "applying migration");
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Backend(describe(&format!("migration {version} {name}"), &e))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(backend("migrations: recording the version"))?;
        tx.commit().await.map_err(backend("migrations: commit"))?;
    }
    Ok(())
}

async fn lock(tx: &tokio_postgres::Transaction<'_>, schema: &str) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&MIGRATION_LOCK_CLASS, &schema],
    )
    .await
    .map_err(backend("migrations: taking the advisory lock"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, ok: bool) {
        assert_eq!(validate_schema_name(name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn schema_names() {
        check("anpr_test", true);
        check("_x", true);
        check("a", true);
        check(&"a".repeat(63), true);
        check(&"a".repeat(64), false);
        check("", false);
        check("1abc", false);
        check("Anpr", false);
        check("anpr-test", false);
        check("anpr test", false);
        check("anpr;drop", false);
        check("anpr\"x", false);
        check("pg_catalog", false);
        check("àbc", false);
    }

    #[test]
    fn migrations_strictly_increase() {
        assert_eq!(MIGRATIONS[0].0, 1);
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} then {}", w[0].0, w[1].0);
        }
    }
}
