-- Suspended operations (SPEC M-2.5) and administrative proceedings (service 1014,
-- SPEC M-2.6).
--
-- Proceedings are a third kind of record (`P`), versioned in `versioni` like subjects
-- and families. SQLite cannot alter a CHECK constraint, so the two tables that check
-- the kind are rebuilt (the documented "create, copy, drop, rename" procedure); their
-- rows, ids and indexes are carried over unchanged. Nothing references them, so the
-- foreign keys of other tables are unaffected.

CREATE TABLE operazioni_entita_nuova (
    kind   TEXT    NOT NULL CHECK (kind IN ('S', 'F', 'P')),
    entity INTEGER NOT NULL,
    ordine INTEGER NOT NULL,
    op     INTEGER NOT NULL REFERENCES operazioni (id),
    PRIMARY KEY (kind, entity, ordine)
) WITHOUT ROWID;
INSERT INTO operazioni_entita_nuova (kind, entity, ordine, op)
    SELECT kind, entity, ordine, op FROM operazioni_entita;
DROP TABLE operazioni_entita;
ALTER TABLE operazioni_entita_nuova RENAME TO operazioni_entita;
CREATE INDEX operazioni_entita_op ON operazioni_entita (op);

CREATE TABLE versioni_nuova (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('S', 'F', 'P')),
    entity     INTEGER NOT NULL,
    section    TEXT    NOT NULL,
    valido_dal TEXT    NOT NULL,
    valido_al  TEXT,
    creata_da  INTEGER NOT NULL REFERENCES operazioni (id),
    chiusa_da  INTEGER REFERENCES operazioni (id),
    value      TEXT,
    chiave     TEXT
);
INSERT INTO versioni_nuova (id, kind, entity, section, valido_dal, valido_al, creata_da, chiusa_da, value, chiave)
    SELECT id, kind, entity, section, valido_dal, valido_al, creata_da, chiusa_da, value, chiave FROM versioni;
DROP TABLE versioni;
ALTER TABLE versioni_nuova RENAME TO versioni;
CREATE INDEX versioni_timeline ON versioni (kind, entity, section, valido_al);
CREATE INDEX versioni_chiave ON versioni (section, chiave) WHERE chiave IS NOT NULL;

-- Current search projection of proceedings (a copy of the current `_indice` version).
-- Links to subjects and operations are keyed sections (`soggetto.<id>`,
-- `evento.<id>`), found through `versioni_chiave`.
CREATE TABLE indice_procedimenti (
    id                    INTEGER PRIMARY KEY,
    comune                TEXT    NOT NULL,
    numero_pratica_comune TEXT,
    stato                 TEXT    NOT NULL,
    aperto                INTEGER NOT NULL CHECK (aperto IN (0, 1)),
    motivo_avvio          TEXT,
    data_avvio            TEXT    NOT NULL,
    data_stato            TEXT    NOT NULL,
    data_chiusura         TEXT
);
CREATE INDEX indice_procedimenti_comune ON indice_procedimenti (comune, data_avvio);
CREATE INDEX indice_procedimenti_numero ON indice_procedimenti (comune, numero_pratica_comune)
    WHERE numero_pratica_comune IS NOT NULL;
CREATE INDEX indice_procedimenti_stato ON indice_procedimenti (comune, stato);

-- Suspended operations: a working area, not registry data. Rows are replaced while the
-- operator works and deleted when the operation is completed (in the operation's own
-- transaction) or abandoned; every change is audited.
CREATE TABLE operazioni_sospese (
    id              INTEGER PRIMARY KEY,
    comune          TEXT    NOT NULL,
    codice_servizio TEXT    NOT NULL,
    utente          TEXT    NOT NULL,
    creata_il       TEXT    NOT NULL,
    aggiornata_il   TEXT    NOT NULL,
    soggetto        INTEGER,
    codice_fiscale  TEXT,
    richiesta       TEXT    NOT NULL,
    note            TEXT
);
CREATE INDEX operazioni_sospese_comune ON operazioni_sospese (comune, utente);
CREATE INDEX operazioni_sospese_soggetto ON operazioni_sospese (soggetto) WHERE soggetto IS NOT NULL;
CREATE INDEX operazioni_sospese_cf ON operazioni_sospese (codice_fiscale) WHERE codice_fiscale IS NOT NULL;
