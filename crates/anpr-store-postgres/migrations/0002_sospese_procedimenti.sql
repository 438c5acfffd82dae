-- Suspended operations (SPEC M-2.5) and administrative proceedings (service 1014,
-- SPEC M-2.6). Runs with search_path set to the environment's schema.

-- Proceedings are a third kind of record (`P`), versioned like subjects and families.
-- The checks are replaced in place; re-adding one scans the table once.
ALTER TABLE operazioni_entita DROP CONSTRAINT operazioni_entita_kind_check;
ALTER TABLE operazioni_entita ADD CONSTRAINT operazioni_entita_kind_check CHECK (kind IN ('S', 'F', 'P'));
ALTER TABLE versioni DROP CONSTRAINT versioni_kind_check;
ALTER TABLE versioni ADD CONSTRAINT versioni_kind_check CHECK (kind IN ('S', 'F', 'P'));

CREATE SEQUENCE seq_procedimento;
CREATE SEQUENCE seq_sospesa;

-- Current search projection of proceedings (the open `_indice` versions). Links to
-- subjects and operations are keyed sections (`soggetto.<id>`, `evento.<id>`), found
-- through `versioni_per_chiave`.
CREATE TABLE indice_procedimenti (
    id                    bigint  PRIMARY KEY,
    comune                text    NOT NULL,
    numero_pratica_comune text,
    stato                 text    NOT NULL,
    aperto                boolean NOT NULL,
    motivo_avvio          text,
    data_avvio            date    NOT NULL,
    data_stato            date    NOT NULL,
    data_chiusura         date
);
CREATE INDEX indice_procedimenti_comune ON indice_procedimenti (comune, data_avvio);
CREATE INDEX indice_procedimenti_numero ON indice_procedimenti (comune, numero_pratica_comune)
    WHERE numero_pratica_comune IS NOT NULL;
CREATE INDEX indice_procedimenti_stato ON indice_procedimenti (comune, stato);

-- Suspended operations: a working area, not registry data. Rows are replaced while the
-- operator works and deleted when the operation is completed (in the operation's own
-- transaction) or abandoned; every change is audited.
CREATE TABLE operazioni_sospese (
    id              bigint      PRIMARY KEY,
    comune          text        NOT NULL,
    codice_servizio text        NOT NULL,
    utente          text        NOT NULL,
    creata_il       timestamptz NOT NULL,
    aggiornata_il   timestamptz NOT NULL,
    soggetto        bigint,
    codice_fiscale  text,
    richiesta       jsonb       NOT NULL,
    note            text
);
CREATE INDEX operazioni_sospese_comune ON operazioni_sospese (comune, utente);
CREATE INDEX operazioni_sospese_soggetto ON operazioni_sospese (soggetto) WHERE soggetto IS NOT NULL;
CREATE INDEX operazioni_sospese_cf ON operazioni_sospese (codice_fiscale) WHERE codice_fiscale IS NOT NULL;
