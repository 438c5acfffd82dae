-- Asynchronous requests (extractions 4001, bulk lookup 4002, ISTAT statistics 4003,
-- support lists 4004; SPEC M-5.3, M-5.4): a durable queue with leases, and the result
-- of each request (outcome JSON and, for extractions, the file).
CREATE TABLE elaborazioni (
    id                   INTEGER PRIMARY KEY,
    servizio             TEXT    NOT NULL,
    comune               TEXT    NOT NULL,
    id_operazione_comune INTEGER,
    utente               TEXT    NOT NULL,
    postazione           TEXT,
    canale               TEXT    NOT NULL,
    richiesta            TEXT    NOT NULL,
    stato                TEXT    NOT NULL CHECK (stato IN ('inserita', 'inElaborazione', 'completata', 'rifiutata', 'errore')),
    creata_il            TEXT    NOT NULL,
    presa_il             TEXT,
    scadenza_presa       TEXT,
    tentativi            INTEGER NOT NULL DEFAULT 0,
    conclusa_il          TEXT,
    esito                TEXT,
    file_nome            TEXT,
    file_formato         TEXT,
    file_byte            INTEGER,
    file_sha256          TEXT,
    file_contenuto       BLOB,
    UNIQUE (comune, id_operazione_comune)
);

-- The worker's queue: requests not concluded, oldest first.
CREATE INDEX elaborazioni_da_fare ON elaborazioni (stato, id)
    WHERE stato IN ('inserita', 'inElaborazione');
-- A municipality's requests by submission time (4005 lists).
CREATE INDEX elaborazioni_comune ON elaborazioni (comune, creata_il);

-- Extraction stage one: the subjects of a municipality in a position, by id (keyset).
CREATE INDEX indice_soggetti_estrazione ON indice_soggetti (comune, posizione, id);
-- Municipal id ranges compare by length, then text (numeric ids as numbers).
CREATE INDEX indice_soggetti_id_comunale_ordine
    ON indice_soggetti (comune, length(id_comunale), id_comunale)
    WHERE id_comunale IS NOT NULL;
CREATE INDEX indice_famiglie_id_comunale_ordine
    ON indice_famiglie (comune, tipo, length(id_comunale), id_comunale)
    WHERE id_comunale IS NOT NULL;

-- ISTAT tables: the `competenza` versions of a municipality around a period.
CREATE INDEX versioni_competenza_comune
    ON versioni (json_extract(value, '$.comune'), valido_dal)
    WHERE section = 'competenza';
