-- Asynchronous requests (extractions 4001, bulk lookup 4002, ISTAT statistics 4003,
-- support lists 4004; SPEC M-5.3, M-5.4): a durable queue with leases, and the result
-- of each request (outcome JSON and, for extractions, the file).
CREATE TABLE elaborazioni (
    id                   bigint      PRIMARY KEY,
    servizio             text        NOT NULL,
    comune               text        NOT NULL,
    id_operazione_comune bigint,
    utente               text        NOT NULL,
    postazione           text,
    canale               text        NOT NULL,
    richiesta            jsonb       NOT NULL,
    stato                text        NOT NULL CHECK (stato IN ('inserita', 'inElaborazione', 'completata', 'rifiutata', 'errore')),
    creata_il            timestamptz NOT NULL,
    presa_il             timestamptz,
    scadenza_presa       timestamptz,
    tentativi            integer     NOT NULL DEFAULT 0,
    conclusa_il          timestamptz,
    esito                jsonb,
    file_nome            text,
    file_formato         text,
    file_byte            bigint,
    file_sha256          text,
    file_contenuto       bytea,
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
    ON versioni ((valore ->> 'comune'), valido_dal)
    WHERE sezione = 'competenza';
