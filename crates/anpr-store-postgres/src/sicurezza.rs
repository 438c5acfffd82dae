//! The security directory (see `anpr_store::sicurezza`). A change locks the one state
//! row (`FOR UPDATE`), checks the version and writes everything in one transaction, so
//! processes sharing the database serialise their directory changes there; a reload is
//! one REPEATABLE READ transaction, so the rows and the version it returns match.

use anpr_store::sicurezza::{
    CaSicurezza, CaricoSicurezza, EsitoMail, GettoneSicurezza, MailSicurezza, ModificaSicurezza,
    NuovaMailSicurezza, RigaSicurezza, StatoMail, TabellaSicurezza, VoceRegistroSicurezza,
};
use anpr_store::StoreError;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::error::{to_i64, to_u64, Context, Failure};
use crate::read::col;
use crate::PostgresStore;

fn fine<T>(r: Result<T, Failure>) -> Result<T, StoreError> {
    r.map_err(Failure::into_store_error)
}

pub(crate) async fn ca(store: &PostgresStore, p: CaSicurezza) -> Result<CaSicurezza, StoreError> {
    fine(
        async {
            let client = store.client().await?;
            client
                .execute(
                    "INSERT INTO sicurezza_ca (id, certificato_der, chiave_pem) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO NOTHING",
                    &[&p.certificato_der, &p.chiave_pem],
                )
                .await
                .ctx("storing the CA")?;
            let r = client
                .query_one(
                    "SELECT certificato_der, chiave_pem FROM sicurezza_ca WHERE id = 1",
                    &[],
                )
                .await
                .ctx("reading the CA")?;
            Ok(CaSicurezza {
                certificato_der: col(&r, 0)?,
                chiave_pem: col(&r, 1)?,
            })
        }
        .await,
    )
}

pub(crate) async fn versione(store: &PostgresStore) -> Result<u64, StoreError> {
    fine(
        async {
            let client = store.client().await?;
            let stmt = client
                .prepare_cached("SELECT versione FROM sicurezza_stato WHERE id = 1")
                .await
                .ctx("reading the directory version")?;
            let r = client
                .query_one(&stmt, &[])
                .await
                .ctx("reading the directory version")?;
            Ok(to_u64(col(&r, 0)?, "directory version")?)
        }
        .await,
    )
}

pub(crate) async fn salva(store: &PostgresStore, m: ModificaSicurezza) -> Result<u64, StoreError> {
    fine(async {
        let mut client = store.client().await?;
        let tx = client.transaction().await.ctx("directory change: begin")?;
        let r = tx
            .query_one(
                "SELECT versione FROM sicurezza_stato WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .ctx("locking the directory")?;
        let attuale = to_u64(col(&r, 0)?, "directory version")?;
        if attuale != m.versione_attesa {
            return Err(StoreError::ConflittoSicurezza {
                attesa: m.versione_attesa,
                trovata: attuale,
            }
            .into());
        }
        let nuova = attuale + 1;
        let v = to_i64(nuova, "directory version")?;
        for r in &m.righe {
            let sql = format!(
                "INSERT INTO {} (chiave, ente, titolare, dati, versione) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (chiave) DO UPDATE SET ente = excluded.ente, titolare = excluded.titolare,
                     dati = excluded.dati, versione = excluded.versione",
                r.tabella.tabella_sql()
            );
            let stmt = tx.prepare_cached(&sql).await.ctx("writing a directory row")?;
            tx.execute(&stmt, &[&r.chiave, &r.ente, &r.titolare, &r.dati, &v])
                .await
                .ctx("writing a directory row")?;
        }
        if let Some(prima) = m.registro.first() {
            let ultima = tx
                .query_opt(
                    "SELECT numero, hash FROM sicurezza_registro ORDER BY numero DESC LIMIT 1",
                    &[],
                )
                .await
                .ctx("reading the register's last entry")?;
            let (numero, hash): (u64, Option<String>) = match ultima {
                Some(r) => (to_u64(col(&r, 0)?, "register entry")?, Some(col(&r, 1)?)),
                None => (0, None),
            };
            if prima.numero != numero + 1 || hash.is_some_and(|h| h != prima.hash_precedente) {
                return Err(StoreError::Invalid(format!(
                    "register entry {} does not continue the chain (last entry {numero})",
                    prima.numero
                ))
                .into());
            }
            for w in m.registro.windows(2) {
                if w[1].numero != w[0].numero + 1 || w[1].hash_precedente != w[0].hash {
                    return Err(StoreError::Invalid(format!(
                        "register entry {} does not continue entry {}",
                        w[1].numero, w[0].numero
                    ))
                    .into());
                }
            }
            for e in &m.registro {
                tx.execute(
                    "INSERT INTO sicurezza_registro (numero, dati, hash_precedente, hash, versione)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &to_i64(e.numero, "register entry")?,
                        &e.dati,
                        &e.hash_precedente,
                        &e.hash,
                        &v,
                    ],
                )
                .await
                .ctx("appending to the register")?;
            }
        }
        for p in &m.posta {
            tx.execute(
                "INSERT INTO sicurezza_posta (destinatario, oggetto, corpo, creata_il, stato, prossimo_tentativo)
                 VALUES ($1, $2, $3, $4, 'inCoda', $4)",
                &[&p.destinatario, &p.oggetto, &p.corpo, &p.creata_il],
            )
            .await
            .ctx("queueing a mail")?;
        }
        tx.execute(
            "UPDATE sicurezza_stato SET versione = $1, ultimo_seriale = $2, numero_crl = $3 WHERE id = 1",
            &[
                &v,
                &to_i64(m.ultimo_seriale, "last serial")?,
                &to_i64(m.numero_crl, "CRL number")?,
            ],
        )
        .await
        .ctx("updating the directory version")?;
        tx.commit().await.ctx("directory change: commit")?;
        Ok(nuova)
    }
    .await)
}

pub(crate) async fn carica(
    store: &PostgresStore,
    dopo: u64,
) -> Result<CaricoSicurezza, StoreError> {
    fine(async {
        let mut client = store.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .ctx("directory read: begin")?;
        let dopo = i64::try_from(dopo).unwrap_or(i64::MAX);
        let r = tx
            .query_one(
                "SELECT versione, ultimo_seriale, numero_crl FROM sicurezza_stato WHERE id = 1",
                &[],
            )
            .await
            .ctx("reading the directory version")?;
        let mut carico = CaricoSicurezza {
            versione: to_u64(col(&r, 0)?, "directory version")?,
            ultimo_seriale: to_u64(col(&r, 1)?, "last serial")?,
            numero_crl: to_u64(col(&r, 2)?, "CRL number")?,
            ..CaricoSicurezza::default()
        };
        for tabella in TabellaSicurezza::ALL {
            let sql = format!(
                "SELECT chiave, ente, titolare, dati FROM {} WHERE versione > $1 ORDER BY versione, chiave",
                tabella.tabella_sql()
            );
            let stmt = tx.prepare_cached(&sql).await.ctx("reading directory rows")?;
            for r in tx.query(&stmt, &[&dopo]).await.ctx("reading directory rows")? {
                carico.righe.push(RigaSicurezza {
                    tabella,
                    chiave: col(&r, 0)?,
                    ente: col(&r, 1)?,
                    titolare: col(&r, 2)?,
                    dati: col(&r, 3)?,
                });
            }
        }
        for r in tx
            .query(
                "SELECT numero, dati, hash_precedente, hash FROM sicurezza_registro
                 WHERE versione > $1 ORDER BY numero",
                &[&dopo],
            )
            .await
            .ctx("reading the register")?
        {
            carico.registro.push(VoceRegistroSicurezza {
                numero: to_u64(col(&r, 0)?, "register entry")?,
                dati: col(&r, 1)?,
                hash_precedente: col(&r, 2)?,
                hash: col(&r, 3)?,
            });
        }
        tx.commit().await.ctx("directory read: end")?;
        Ok(carico)
    }
    .await)
}

const COLONNE_POSTA: &str = "id, destinatario, oggetto, corpo, creata_il, stato, tentativi, \
                             prossimo_tentativo, ultimo_errore, consegnata_il";

fn mail(r: &Row) -> Result<MailSicurezza, StoreError> {
    let stato: String = col(r, 5)?;
    let tentativi: i32 = col(r, 6)?;
    Ok(MailSicurezza {
        id: to_u64(col(r, 0)?, "mail id")?,
        mail: NuovaMailSicurezza {
            destinatario: col(r, 1)?,
            oggetto: col(r, 2)?,
            corpo: col(r, 3)?,
            creata_il: col(r, 4)?,
        },
        stato: StatoMail::parse(&stato)
            .ok_or_else(|| StoreError::Corrupt(format!("mail state {stato:?}")))?,
        tentativi: u32::try_from(tentativi)
            .map_err(|_| StoreError::Corrupt(format!("mail attempts {tentativi}")))?,
        prossimo_tentativo: col(r, 7)?,
        ultimo_errore: col(r, 8)?,
        consegnata_il: col(r, 9)?,
    })
}

pub(crate) async fn posta_prendi(
    store: &PostgresStore,
    adesso: DateTime<Utc>,
    fino: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<MailSicurezza>, StoreError> {
    fine(
        async {
            let client = store.client().await?;
            // SKIP LOCKED: two workers taking at once get different mails.
            let rows = client
                .query(
                    &format!(
                        "UPDATE sicurezza_posta SET prossimo_tentativo = $2
                     WHERE id IN (SELECT id FROM sicurezza_posta
                                  WHERE stato = 'inCoda' AND prossimo_tentativo <= $1
                                  ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING {COLONNE_POSTA}"
                    ),
                    &[&adesso, &fino, &i64::from(limit.min(1000))],
                )
                .await
                .ctx("taking queued mails")?;
            let mut v = rows.iter().map(mail).collect::<Result<Vec<_>, _>>()?;
            v.sort_by_key(|m| m.id);
            Ok(v)
        }
        .await,
    )
}

pub(crate) async fn posta_esito(
    store: &PostgresStore,
    id: u64,
    esito: EsitoMail,
) -> Result<(), StoreError> {
    fine(
        async {
            let client = store.client().await?;
            let id = to_i64(id, "mail id")?;
            let n = match &esito {
            EsitoMail::Consegnata {
                istante,
                corpo_conservato,
            } => client
                .execute(
                    "UPDATE sicurezza_posta SET stato = 'consegnata', tentativi = tentativi + 1,
                         consegnata_il = $2, corpo = $3, ultimo_errore = NULL WHERE id = $1",
                    &[&id, istante, corpo_conservato],
                )
                .await,
            EsitoMail::Riprova {
                errore,
                riprova_dal,
            } => client
                .execute(
                    "UPDATE sicurezza_posta SET tentativi = tentativi + 1,
                         prossimo_tentativo = $2, ultimo_errore = $3
                     WHERE id = $1 AND stato = 'inCoda'",
                    &[&id, riprova_dal, errore],
                )
                .await,
            EsitoMail::Fallita {
                errore,
                corpo_conservato,
            } => client
                .execute(
                    "UPDATE sicurezza_posta SET stato = 'fallita', tentativi = tentativi + 1,
                         ultimo_errore = $2, corpo = $3 WHERE id = $1",
                    &[&id, errore, corpo_conservato],
                )
                .await,
        }
        .ctx("recording a mail delivery")?;
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "mail {id} does not exist or is no longer queued"
                ))
                .into());
            }
            Ok(())
        }
        .await,
    )
}

pub(crate) async fn posta(
    store: &PostgresStore,
    stato: Option<StatoMail>,
    limit: u32,
) -> Result<Vec<MailSicurezza>, StoreError> {
    fine(
        async {
            let client = store.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLONNE_POSTA} FROM sicurezza_posta
                     WHERE ($1::text IS NULL OR stato = $1) ORDER BY id LIMIT $2"
                    ),
                    &[&stato.map(StatoMail::as_str), &i64::from(limit.min(1000))],
                )
                .await
                .ctx("reading queued mails")?;
            Ok(rows.iter().map(mail).collect::<Result<Vec<_>, _>>()?)
        }
        .await,
    )
}

const COLONNE_GETTONE: &str = "impronta, tipo, titolare, ente, dati, creato_il, scade_il";

fn gettone_da_riga(r: &Row) -> Result<GettoneSicurezza, StoreError> {
    Ok(GettoneSicurezza {
        impronta: col(r, 0)?,
        tipo: col(r, 1)?,
        titolare: col(r, 2)?,
        ente: col(r, 3)?,
        dati: col(r, 4)?,
        creato_il: col(r, 5)?,
        scade_il: col(r, 6)?,
    })
}

pub(crate) async fn gettone_crea(
    store: &PostgresStore,
    g: GettoneSicurezza,
) -> Result<(), StoreError> {
    fine(async {
        let client = store.client().await?;
        client
            .execute(
                "DELETE FROM sicurezza_gettoni WHERE scade_il < $1",
                &[&g.creato_il],
            )
            .await
            .ctx("removing expired tokens")?;
        client
            .execute(
                "INSERT INTO sicurezza_gettoni (impronta, tipo, titolare, ente, dati, creato_il, scade_il)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (impronta) DO UPDATE SET tipo = excluded.tipo, titolare = excluded.titolare,
                     ente = excluded.ente, dati = excluded.dati, creato_il = excluded.creato_il,
                     scade_il = excluded.scade_il",
                &[
                    &g.impronta,
                    &g.tipo,
                    &g.titolare,
                    &g.ente,
                    &g.dati,
                    &g.creato_il,
                    &g.scade_il,
                ],
            )
            .await
            .ctx("storing a token")?;
        Ok(())
    }
    .await)
}

pub(crate) async fn gettone(
    store: &PostgresStore,
    impronta: &str,
    tipo: &str,
    adesso: DateTime<Utc>,
) -> Result<Option<GettoneSicurezza>, StoreError> {
    fine(
        async {
            let client = store.client().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {COLONNE_GETTONE} FROM sicurezza_gettoni
                 WHERE impronta = $1 AND tipo = $2 AND scade_il > $3"
                ))
                .await
                .ctx("reading a token")?;
            let r = client
                .query_opt(&stmt, &[&impronta, &tipo, &adesso])
                .await
                .ctx("reading a token")?;
            Ok(r.as_ref().map(gettone_da_riga).transpose()?)
        }
        .await,
    )
}

pub(crate) async fn gettone_consuma(
    store: &PostgresStore,
    impronta: &str,
    tipo: &str,
    adesso: DateTime<Utc>,
) -> Result<Option<GettoneSicurezza>, StoreError> {
    fine(
        async {
            let client = store.client().await?;
            let r = client
                .query_opt(
                    &format!(
                        "DELETE FROM sicurezza_gettoni WHERE impronta = $1 AND tipo = $2
                     RETURNING {COLONNE_GETTONE}"
                    ),
                    &[&impronta, &tipo],
                )
                .await
                .ctx("consuming a token")?;
            let g = r.as_ref().map(gettone_da_riga).transpose()?;
            Ok(g.filter(|g| g.scade_il > adesso))
        }
        .await,
    )
}

pub(crate) async fn accesso_fallito(
    store: &PostgresStore,
    chiave: &str,
    istante: DateTime<Utc>,
    dal: DateTime<Utc>,
) -> Result<u32, StoreError> {
    fine(async {
        let mut client = store.client().await?;
        let tx = client.transaction().await.ctx("failed login: begin")?;
        tx.execute(
            "DELETE FROM sicurezza_accessi_falliti WHERE chiave = $1 AND istante < $2",
            &[&chiave, &dal],
        )
        .await
        .ctx("pruning failed logins")?;
        tx.execute(
            "INSERT INTO sicurezza_accessi_falliti (chiave, istante) VALUES ($1, $2)",
            &[&chiave, &istante],
        )
        .await
        .ctx("recording a failed login")?;
        let r = tx
            .query_one(
                "SELECT count(*) FROM sicurezza_accessi_falliti WHERE chiave = $1 AND istante >= $2",
                &[&chiave, &dal],
            )
            .await
            .ctx("counting failed logins")?;
        tx.commit().await.ctx("failed login: commit")?;
        let n: i64 = col(&r, 0)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
    .await)
}

pub(crate) async fn accessi_falliti(
    store: &PostgresStore,
    chiave: &str,
    dal: DateTime<Utc>,
) -> Result<u32, StoreError> {
    fine(async {
        let client = store.client().await?;
        let r = client
            .query_one(
                "SELECT count(*) FROM sicurezza_accessi_falliti WHERE chiave = $1 AND istante >= $2",
                &[&chiave, &dal],
            )
            .await
            .ctx("counting failed logins")?;
        let n: i64 = col(&r, 0)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
    .await)
}

pub(crate) async fn azzera_accessi(store: &PostgresStore, chiave: &str) -> Result<(), StoreError> {
    fine(
        async {
            let client = store.client().await?;
            client
                .execute(
                    "DELETE FROM sicurezza_accessi_falliti WHERE chiave = $1",
                    &[&chiave],
                )
                .await
                .ctx("clearing failed logins")?;
            Ok(())
        }
        .await,
    )
}
