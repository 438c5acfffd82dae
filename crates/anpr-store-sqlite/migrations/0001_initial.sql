-- Initial schema of the SQLite backend.
--
-- Conventions: dates are ISO text (YYYY-MM-DD) and timestamps RFC 3339 text in UTC with
-- microseconds and a `Z` suffix, both fixed-width so that text comparison is
-- chronological. Ids are INTEGER (every registry id fits in a signed 64-bit integer).
-- Entity kinds are `S` (subject) and `F` (family/cohabitation).

-- The append-only operation log. `ordine` is the order in which operations were
-- applied: ids are allocated before `apply`, so two concurrent operations can commit in
-- the opposite order of their ids, and "newest first" annulment must follow the order
-- of application, not the ids.
CREATE TABLE operazioni (
    id                   INTEGER PRIMARY KEY,
    ordine               INTEGER NOT NULL UNIQUE,
    codice_servizio      TEXT    NOT NULL,
    comune               TEXT,
    id_operazione_comune INTEGER,
    utente               TEXT    NOT NULL,
    postazione           TEXT,
    canale               TEXT    NOT NULL,
    decorrenza           TEXT    NOT NULL,
    registrata_il        TEXT    NOT NULL,
    stato                TEXT    NOT NULL CHECK (stato IN ('eseguita', 'rifiutata', 'annullata')),
    annullata_da         INTEGER REFERENCES operazioni (id),
    annulla              INTEGER REFERENCES operazioni (id),
    richiesta            TEXT    NOT NULL,
    risposta             TEXT    NOT NULL,
    UNIQUE (comune, id_operazione_comune)
);

-- Monitoring queries filter by registration time.
CREATE INDEX operazioni_registrata_il ON operazioni (registrata_il);

-- Which records each operation touched, keyed for "operations on this record, in order
-- of application" (annulment checks) and for "records of this operation".
CREATE TABLE operazioni_entita (
    kind   TEXT    NOT NULL CHECK (kind IN ('S', 'F')),
    entity INTEGER NOT NULL,
    ordine INTEGER NOT NULL,
    op     INTEGER NOT NULL REFERENCES operazioni (id),
    PRIMARY KEY (kind, entity, ordine)
) WITHOUT ROWID;

CREATE INDEX operazioni_entita_op ON operazioni_entita (op);

-- Every version of every section of every record. The rowid is the record order: rows
-- are only ever deleted by annulment, which removes the newest versions of a timeline,
-- so a plain rowid (max + 1) keeps insertion order without AUTOINCREMENT's extra write.
-- A NULL `value` records that the datum was removed from `valido_dal` on.
CREATE TABLE versioni (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('S', 'F')),
    entity     INTEGER NOT NULL,
    section    TEXT    NOT NULL,
    valido_dal TEXT    NOT NULL,
    valido_al  TEXT,
    creata_da  INTEGER NOT NULL REFERENCES operazioni (id),
    chiusa_da  INTEGER REFERENCES operazioni (id),
    value      TEXT,
    chiave     TEXT
);

-- The current version of a section is `valido_al IS NULL`: one index lookup.
CREATE INDEX versioni_timeline ON versioni (kind, entity, section, valido_al);
-- "Members of family F as at D": versions by search key. Partial, since most versions
-- carry no key.
CREATE INDEX versioni_chiave ON versioni (section, chiave) WHERE chiave IS NOT NULL;

-- Current search projection of subjects (a copy of the current `_indice` version).
CREATE TABLE indice_soggetti (
    id               INTEGER PRIMARY KEY,
    comune           TEXT NOT NULL,
    posizione        TEXT NOT NULL,
    codice_fiscale   TEXT,
    cognome_key      TEXT,
    nome_key         TEXT,
    sesso            TEXT,
    data_nascita     TEXT,
    id_comunale      TEXT,
    id_famiglia      INTEGER,
    chiave_indirizzo TEXT
);

CREATE INDEX indice_soggetti_cf ON indice_soggetti (codice_fiscale);
CREATE INDEX indice_soggetti_nome ON indice_soggetti (cognome_key, nome_key);
CREATE INDEX indice_soggetti_comune ON indice_soggetti (comune);
CREATE INDEX indice_soggetti_id_comunale ON indice_soggetti (id_comunale);
CREATE INDEX indice_soggetti_famiglia ON indice_soggetti (id_famiglia);
CREATE INDEX indice_soggetti_indirizzo ON indice_soggetti (chiave_indirizzo);
CREATE INDEX indice_soggetti_nascita ON indice_soggetti (data_nascita);

-- Current search projection of families and cohabitations.
CREATE TABLE indice_famiglie (
    id               INTEGER PRIMARY KEY,
    comune           TEXT NOT NULL,
    tipo             TEXT NOT NULL,
    stato            TEXT NOT NULL,
    id_comunale      TEXT,
    chiave_indirizzo TEXT
);

CREATE INDEX indice_famiglie_comune ON indice_famiglie (comune);
CREATE INDEX indice_famiglie_id_comunale ON indice_famiglie (id_comunale);
CREATE INDEX indice_famiglie_indirizzo ON indice_famiglie (chiave_indirizzo);

-- The last idOperazioneComune seen per municipality (they must increase).
CREATE TABLE ultimo_id_comune (
    comune TEXT    PRIMARY KEY,
    ultimo INTEGER NOT NULL
) WITHOUT ROWID;

-- Id sequences: `prossimo` is the first id not yet handed out to any process. Ids are
-- reserved in blocks, so a restart skips the rest of a block but never reuses an id.
CREATE TABLE sequenze (
    nome     TEXT    PRIMARY KEY,
    prossimo INTEGER NOT NULL
) WITHOUT ROWID;

-- Outbound messages, written with the operation and delivered by a worker.
-- AUTOINCREMENT: message ids are handed to the worker and must never be reused, even
-- if delivered messages are purged one day.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id_operazione_anpr INTEGER REFERENCES operazioni (id),
    tipo               TEXT    NOT NULL,
    destinatario       TEXT    NOT NULL,
    payload            TEXT    NOT NULL,
    creato_il          TEXT    NOT NULL,
    tentativi          INTEGER NOT NULL DEFAULT 0,
    consegnato_il      TEXT
);

CREATE INDEX outbox_da_consegnare ON outbox (id) WHERE consegnato_il IS NULL;

-- The hash-chained audit log. No foreign key on `id_operazione_anpr`: an entry may
-- name an operation that was never stored (e.g. a request refused before it became one).
CREATE TABLE audit (
    seq                INTEGER PRIMARY KEY,
    istante            TEXT    NOT NULL,
    evento             TEXT    NOT NULL,
    azione             TEXT    NOT NULL,
    utente             TEXT    NOT NULL,
    comune             TEXT,
    postazione         TEXT,
    canale             TEXT    NOT NULL,
    oggetto            TEXT,
    id_operazione_anpr INTEGER,
    esito              TEXT    NOT NULL,
    hash_precedente    TEXT    NOT NULL,
    hash               TEXT    NOT NULL
);

-- The chain head, kept apart from the entries so that truncation is detectable.
-- At most one row; no row means an empty log.
CREATE TABLE audit_testa (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);

-- Scratch table for the benchmark baseline (`baseline_raw_insert`).
CREATE TABLE baseline_raw (
    id        INTEGER PRIMARY KEY,
    creato_il TEXT NOT NULL,
    payload   TEXT NOT NULL
);
