//! The security directory (see `anpr_store::sicurezza`): writes run on the writer thread
//! like every other write, so the version check and the change are one savepoint;
//! reloads read in one read transaction, so the rows and the version match.

use anpr_store::sicurezza::{
    CaSicurezza, CaricoSicurezza, EsitoMail, GettoneSicurezza, MailSicurezza, ModificaSicurezza,
    NuovaMailSicurezza, RigaSicurezza, StatoMail, TabellaSicurezza, VoceRegistroSicurezza,
};
use anpr_store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::codec::{
    json_from_sql, json_to_sql, timestamp_bound, timestamp_from_sql, timestamp_to_sql, u64_bound,
    u64_from_sql, u64_to_sql, Context,
};

/// A security write, run by the writer thread.
#[derive(Debug)]
pub(crate) enum Scrittura {
    Ca(CaSicurezza),
    Salva(ModificaSicurezza),
    PostaPrendi {
        adesso: String,
        fino: String,
        limit: u32,
    },
    PostaEsito {
        id: u64,
        esito: EsitoMail,
    },
    GettoneCrea(GettoneSicurezza),
    GettoneConsuma {
        impronta: String,
        tipo: String,
        adesso: String,
    },
    AccessoFallito {
        chiave: String,
        istante: String,
        dal: String,
    },
    AzzeraAccessi(String),
}

/// What a security write returns.
#[derive(Debug)]
pub(crate) enum Risposta {
    Ca(CaSicurezza),
    Versione(u64),
    Posta(Vec<MailSicurezza>),
    Gettone(Option<GettoneSicurezza>),
    Conteggio(u32),
    Nulla,
}

pub(crate) fn scrivi(conn: &Connection, s: &Scrittura) -> Result<Risposta, StoreError> {
    match s {
        Scrittura::Ca(ca) => {
            conn.prepare_cached(
                "INSERT INTO sicurezza_ca (id, certificato_der, chiave_pem) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![ca.certificato_der, ca.chiave_pem]))
            .ctx("storing the CA")?;
            let (der, pem) = conn
                .prepare_cached("SELECT certificato_der, chiave_pem FROM sicurezza_ca WHERE id = 1")
                .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
                .ctx("reading the CA")?;
            Ok(Risposta::Ca(CaSicurezza {
                certificato_der: der,
                chiave_pem: pem,
            }))
        }
        Scrittura::Salva(m) => salva(conn, m).map(Risposta::Versione),
        Scrittura::PostaPrendi {
            adesso,
            fino,
            limit,
        } => {
            let mut st = conn
                .prepare_cached(&format!(
                    "UPDATE sicurezza_posta SET prossimo_tentativo = ?2
                     WHERE id IN (SELECT id FROM sicurezza_posta
                                  WHERE stato = 'inCoda' AND prossimo_tentativo <= ?1
                                  ORDER BY id LIMIT ?3)
                     RETURNING {COLONNE_POSTA}"
                ))
                .ctx("taking queued mails")?;
            let righe = st
                .query_map(params![adesso, fino, limit], GrezzaMail::da_riga)
                .ctx("taking queued mails")?
                .collect::<Result<Vec<_>, _>>()
                .ctx("taking queued mails")?;
            let mut posta = righe
                .into_iter()
                .map(GrezzaMail::decodifica)
                .collect::<Result<Vec<_>, _>>()?;
            posta.sort_by_key(|m| m.id);
            Ok(Risposta::Posta(posta))
        }
        Scrittura::PostaEsito { id, esito } => {
            let id = u64_to_sql(*id, "mail id")?;
            let n = match esito {
                EsitoMail::Consegnata {
                    istante,
                    corpo_conservato,
                } => {
                    let istante = timestamp_to_sql(*istante)?;
                    conn
                    .prepare_cached(
                        "UPDATE sicurezza_posta SET stato = 'consegnata', tentativi = tentativi + 1,
                             consegnata_il = ?2, corpo = ?3, ultimo_errore = NULL WHERE id = ?1",
                    )
                    .and_then(|mut st| {
                        st.execute(params![id, istante, corpo_conservato])
                    })
                }
                EsitoMail::Riprova {
                    errore,
                    riprova_dal,
                } => {
                    let riprova = timestamp_to_sql(*riprova_dal)?;
                    conn.prepare_cached(
                        "UPDATE sicurezza_posta SET tentativi = tentativi + 1,
                             prossimo_tentativo = ?2, ultimo_errore = ?3
                         WHERE id = ?1 AND stato = 'inCoda'",
                    )
                    .and_then(|mut st| st.execute(params![id, riprova, errore]))
                }
                EsitoMail::Fallita {
                    errore,
                    corpo_conservato,
                } => conn
                    .prepare_cached(
                        "UPDATE sicurezza_posta SET stato = 'fallita', tentativi = tentativi + 1,
                             ultimo_errore = ?2, corpo = ?3 WHERE id = ?1",
                    )
                    .and_then(|mut st| st.execute(params![id, errore, corpo_conservato])),
            }
            .ctx("recording a mail delivery")?;
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "mail {id} does not exist or is no longer queued"
                )));
            }
            Ok(Risposta::Nulla)
        }
        Scrittura::GettoneCrea(g) => {
            let creato = timestamp_to_sql(g.creato_il)?;
            let dati = json_to_sql(&g.dati, "token data")?;
            let scade = timestamp_to_sql(g.scade_il)?;
            conn.prepare_cached("DELETE FROM sicurezza_gettoni WHERE scade_il < ?1")
                .and_then(|mut st| st.execute([&creato]))
                .ctx("removing expired tokens")?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO sicurezza_gettoni
                     (impronta, tipo, titolare, ente, dati, creato_il, scade_il)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    g.impronta, g.tipo, g.titolare, g.ente, dati, creato, scade
                ])
            })
            .ctx("storing a token")?;
            Ok(Risposta::Nulla)
        }
        Scrittura::GettoneConsuma {
            impronta,
            tipo,
            adesso,
        } => {
            let g = conn
                .prepare_cached(&format!(
                    "DELETE FROM sicurezza_gettoni WHERE impronta = ?1 AND tipo = ?2
                     RETURNING {COLONNE_GETTONE}"
                ))
                .and_then(|mut st| {
                    st.query_row([impronta, tipo], GrezzoGettone::da_riga)
                        .optional()
                })
                .ctx("consuming a token")?;
            Ok(Risposta::Gettone(
                g.filter(|g| g.scade_il.as_str() > adesso.as_str())
                    .map(GrezzoGettone::decodifica)
                    .transpose()?,
            ))
        }
        Scrittura::AccessoFallito {
            chiave,
            istante,
            dal,
        } => {
            conn.prepare_cached(
                "DELETE FROM sicurezza_accessi_falliti WHERE chiave = ?1 AND istante < ?2",
            )
            .and_then(|mut st| st.execute([chiave, dal]))
            .ctx("pruning failed logins")?;
            conn.prepare_cached(
                "INSERT INTO sicurezza_accessi_falliti (chiave, istante) VALUES (?1, ?2)",
            )
            .and_then(|mut st| st.execute([chiave, istante]))
            .ctx("recording a failed login")?;
            conta_accessi(conn, chiave, dal).map(Risposta::Conteggio)
        }
        Scrittura::AzzeraAccessi(chiave) => {
            conn.prepare_cached("DELETE FROM sicurezza_accessi_falliti WHERE chiave = ?1")
                .and_then(|mut st| st.execute([chiave]))
                .ctx("clearing failed logins")?;
            Ok(Risposta::Nulla)
        }
    }
}

pub(crate) fn conta_accessi(conn: &Connection, chiave: &str, dal: &str) -> Result<u32, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM sicurezza_accessi_falliti WHERE chiave = ?1 AND istante >= ?2",
        )
        .and_then(|mut st| st.query_row([chiave, dal], |r| r.get(0)))
        .ctx("counting failed logins")?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn versione_corrente(conn: &Connection) -> Result<(u64, u64, u64), StoreError> {
    let (v, s, c): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT versione, ultimo_seriale, numero_crl FROM sicurezza_stato WHERE id = 1",
        )
        .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .ctx("reading the security directory version")?;
    Ok((
        u64_from_sql(v, "directory version")?,
        u64_from_sql(s, "last serial")?,
        u64_from_sql(c, "CRL number")?,
    ))
}

fn salva(conn: &Connection, m: &ModificaSicurezza) -> Result<u64, StoreError> {
    let (attuale, _, _) = versione_corrente(conn)?;
    if attuale != m.versione_attesa {
        return Err(StoreError::ConflittoSicurezza {
            attesa: m.versione_attesa,
            trovata: attuale,
        });
    }
    let nuova = attuale + 1;
    let v = u64_to_sql(nuova, "directory version")?;
    for r in &m.righe {
        let dati = r
            .dati
            .as_ref()
            .map(|d| json_to_sql(d, "directory row"))
            .transpose()?;
        conn.prepare_cached(&format!(
            "INSERT INTO {} (chiave, ente, titolare, dati, versione) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (chiave) DO UPDATE SET ente = excluded.ente, titolare = excluded.titolare,
                 dati = excluded.dati, versione = excluded.versione",
            r.tabella.tabella_sql()
        ))
        .and_then(|mut st| st.execute(params![r.chiave, r.ente, r.titolare, dati, v]))
        .ctx("writing a directory row")?;
    }
    if let Some(prima) = m.registro.first() {
        let ultima: Option<(i64, String)> = conn
            .prepare_cached(
                "SELECT numero, hash FROM sicurezza_registro ORDER BY numero DESC LIMIT 1",
            )
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .ctx("reading the register's last entry")?;
        let (numero, hash) = match ultima {
            Some((n, h)) => (u64_from_sql(n, "register entry")?, Some(h)),
            None => (0, None),
        };
        if prima.numero != numero + 1 || hash.is_some_and(|h| h != prima.hash_precedente) {
            return Err(StoreError::Invalid(format!(
                "register entry {} does not continue the chain (last entry {numero})",
                prima.numero
            )));
        }
        for w in m.registro.windows(2) {
            if w[1].numero != w[0].numero + 1 || w[1].hash_precedente != w[0].hash {
                return Err(StoreError::Invalid(format!(
                    "register entry {} does not continue entry {}",
                    w[1].numero, w[0].numero
                )));
            }
        }
        for e in &m.registro {
            let numero = u64_to_sql(e.numero, "register entry")?;
            let dati = json_to_sql(&e.dati, "register entry")?;
            conn.prepare_cached(
                "INSERT INTO sicurezza_registro (numero, dati, hash_precedente, hash, versione)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![numero, dati, e.hash_precedente, e.hash, v]))
            .ctx("appending to the register")?;
        }
    }
    for p in &m.posta {
        let creata = timestamp_to_sql(p.creata_il)?;
        conn.prepare_cached(
            "INSERT INTO sicurezza_posta (destinatario, oggetto, corpo, creata_il, stato, prossimo_tentativo)
             VALUES (?1, ?2, ?3, ?4, 'inCoda', ?4)",
        )
        .and_then(|mut st| st.execute(params![p.destinatario, p.oggetto, p.corpo, creata]))
        .ctx("queueing a mail")?;
    }
    let seriale = u64_to_sql(m.ultimo_seriale, "last serial")?;
    let crl = u64_to_sql(m.numero_crl, "CRL number")?;
    conn.prepare_cached(
        "UPDATE sicurezza_stato SET versione = ?1, ultimo_seriale = ?2, numero_crl = ?3 WHERE id = 1",
    )
    .and_then(|mut st| {
        st.execute(params![
            v,
            seriale,
            crl
        ])
    })
    .ctx("updating the directory version")?;
    Ok(nuova)
}

pub(crate) fn versione(conn: &Connection) -> Result<u64, StoreError> {
    versione_corrente(conn).map(|v| v.0)
}

/// Everything written after `dopo`, read in one transaction (a consistent snapshot).
pub(crate) fn carica(conn: &Connection, dopo: u64) -> Result<CaricoSicurezza, StoreError> {
    conn.execute_batch("BEGIN")
        .ctx("starting a directory read")?;
    let esito = carica_in_transazione(conn, dopo);
    // A read-only transaction: ending it cannot lose anything.
    let _ = conn.execute_batch("COMMIT");
    esito
}

fn carica_in_transazione(conn: &Connection, dopo: u64) -> Result<CaricoSicurezza, StoreError> {
    let (versione, ultimo_seriale, numero_crl) = versione_corrente(conn)?;
    let dopo = u64_bound(dopo);
    let mut righe = Vec::new();
    for tabella in TabellaSicurezza::ALL {
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT chiave, ente, titolare, dati FROM {} WHERE versione > ?1 ORDER BY versione, chiave",
                tabella.tabella_sql()
            ))
            .ctx("reading directory rows")?;
        let grezze = st
            .query_map([dopo], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .ctx("reading directory rows")?
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading directory rows")?;
        for (chiave, ente, titolare, dati) in grezze {
            righe.push(RigaSicurezza {
                tabella,
                chiave,
                ente,
                titolare,
                dati: dati
                    .map(|d| json_from_sql(&d, "directory row"))
                    .transpose()?,
            });
        }
    }
    let mut st = conn
        .prepare_cached(
            "SELECT numero, dati, hash_precedente, hash FROM sicurezza_registro
             WHERE versione > ?1 ORDER BY numero",
        )
        .ctx("reading the register")?;
    let grezze = st
        .query_map([dopo], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .ctx("reading the register")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading the register")?;
    let registro = grezze
        .into_iter()
        .map(|(n, d, hp, h)| {
            Ok(VoceRegistroSicurezza {
                numero: u64_from_sql(n, "register entry")?,
                dati: json_from_sql(&d, "register entry")?,
                hash_precedente: hp,
                hash: h,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(CaricoSicurezza {
        versione,
        ultimo_seriale,
        numero_crl,
        righe,
        registro,
    })
}

const COLONNE_POSTA: &str = "id, destinatario, oggetto, corpo, creata_il, stato, tentativi, \
                             prossimo_tentativo, ultimo_errore, consegnata_il";

struct GrezzaMail {
    id: i64,
    destinatario: String,
    oggetto: String,
    corpo: String,
    creata_il: String,
    stato: String,
    tentativi: i64,
    prossimo: String,
    errore: Option<String>,
    consegnata: Option<String>,
}

impl GrezzaMail {
    fn da_riga(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            destinatario: r.get(1)?,
            oggetto: r.get(2)?,
            corpo: r.get(3)?,
            creata_il: r.get(4)?,
            stato: r.get(5)?,
            tentativi: r.get(6)?,
            prossimo: r.get(7)?,
            errore: r.get(8)?,
            consegnata: r.get(9)?,
        })
    }

    fn decodifica(self) -> Result<MailSicurezza, StoreError> {
        Ok(MailSicurezza {
            id: u64_from_sql(self.id, "mail id")?,
            mail: NuovaMailSicurezza {
                destinatario: self.destinatario,
                oggetto: self.oggetto,
                corpo: self.corpo,
                creata_il: timestamp_from_sql(&self.creata_il, "mail creation")?,
            },
            stato: StatoMail::parse(&self.stato)
                .ok_or_else(|| StoreError::Corrupt(format!("mail state {:?}", self.stato)))?,
            tentativi: u32::try_from(self.tentativi)
                .map_err(|_| StoreError::Corrupt(format!("mail attempts {}", self.tentativi)))?,
            prossimo_tentativo: timestamp_from_sql(&self.prossimo, "mail next attempt")?,
            ultimo_errore: self.errore,
            consegnata_il: self
                .consegnata
                .map(|c| timestamp_from_sql(&c, "mail delivery"))
                .transpose()?,
        })
    }
}

pub(crate) fn posta(
    conn: &Connection,
    stato: Option<StatoMail>,
    limit: u32,
) -> Result<Vec<MailSicurezza>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {COLONNE_POSTA} FROM sicurezza_posta WHERE (?1 IS NULL OR stato = ?1)
             ORDER BY id LIMIT ?2"
        ))
        .ctx("reading queued mails")?;
    let righe = st
        .query_map(
            params![stato.map(StatoMail::as_str), limit.min(1000)],
            GrezzaMail::da_riga,
        )
        .ctx("reading queued mails")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading queued mails")?;
    righe.into_iter().map(GrezzaMail::decodifica).collect()
}

const COLONNE_GETTONE: &str = "impronta, tipo, titolare, ente, dati, creato_il, scade_il";

struct GrezzoGettone {
    impronta: String,
    tipo: String,
    titolare: Option<String>,
    ente: Option<String>,
    dati: String,
    creato_il: String,
    scade_il: String,
}

impl GrezzoGettone {
    fn da_riga(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            impronta: r.get(0)?,
            tipo: r.get(1)?,
            titolare: r.get(2)?,
            ente: r.get(3)?,
            dati: r.get(4)?,
            creato_il: r.get(5)?,
            scade_il: r.get(6)?,
        })
    }

    fn decodifica(self) -> Result<GettoneSicurezza, StoreError> {
        Ok(GettoneSicurezza {
            impronta: self.impronta,
            tipo: self.tipo,
            titolare: self.titolare,
            ente: self.ente,
            dati: json_from_sql(&self.dati, "token data")?,
            creato_il: timestamp_from_sql(&self.creato_il, "token creation")?,
            scade_il: timestamp_from_sql(&self.scade_il, "token expiry")?,
        })
    }
}

pub(crate) fn gettone(
    conn: &Connection,
    impronta: &str,
    tipo: &str,
    adesso: &str,
) -> Result<Option<GettoneSicurezza>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLONNE_GETTONE} FROM sicurezza_gettoni
         WHERE impronta = ?1 AND tipo = ?2 AND scade_il > ?3"
    ))
    .and_then(|mut st| {
        st.query_row([impronta, tipo, adesso], GrezzoGettone::da_riga)
            .optional()
    })
    .ctx("reading a token")?
    .map(GrezzoGettone::decodifica)
    .transpose()
}

/// A bound for comparisons with stored timestamps.
pub(crate) fn istante(t: DateTime<Utc>) -> String {
    timestamp_bound(t)
}
