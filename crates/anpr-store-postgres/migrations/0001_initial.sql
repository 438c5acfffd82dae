-- Initial schema of one environment's data set. Runs with search_path set to the
-- environment's schema, so every name below lands there.

-- Id sequences (Store::next_id). Gaps are allowed; ids are never reused.
CREATE SEQUENCE seq_operazione;
CREATE SEQUENCE seq_soggetto;
CREATE SEQUENCE seq_famiglia;

-- The append-only operation log. Only stato/annullata_da change after insert (annulment).
CREATE TABLE operazioni (
    id                   bigint      PRIMARY KEY,
    codice_servizio      text        NOT NULL,
    comune               text,
    id_operazione_comune bigint,
    utente               text        NOT NULL,
    postazione           text,
    canale               text        NOT NULL,
    decorrenza           date        NOT NULL,
    registrata_il        timestamptz NOT NULL,
    stato                text        NOT NULL CHECK (stato IN ('eseguita', 'rifiutata', 'annullata')),
    annullata_da         bigint      REFERENCES operazioni (id),
    annulla              bigint      REFERENCES operazioni (id),
    richiesta            text        NOT NULL,
    risposta             text        NOT NULL,
    CONSTRAINT operazioni_id_comune_unico UNIQUE (comune, id_operazione_comune),
    CHECK (id_operazione_comune IS NULL OR comune IS NOT NULL)
);
CREATE INDEX operazioni_per_comune ON operazioni (comune, id);
CREATE INDEX operazioni_per_servizio ON operazioni (codice_servizio, id);
CREATE INDEX operazioni_per_registrazione ON operazioni (registrata_il, id);
-- Annulled and refused operations are the rare, interesting ones for monitoring.
CREATE INDEX operazioni_non_eseguite ON operazioni (stato, id) WHERE stato <> 'eseguita';

-- The records each operation touched, searchable both ways.
CREATE TABLE operazioni_entita (
    op     bigint NOT NULL REFERENCES operazioni (id),
    kind   text   NOT NULL CHECK (kind IN ('S', 'F')),
    entita bigint NOT NULL,
    PRIMARY KEY (op, kind, entita)
);
CREATE INDEX operazioni_entita_per_entita ON operazioni_entita (kind, entita, op);

-- Every version of every section of every record: valid time [valido_dal, valido_al)
-- and record time (creata_da, chiusa_da). A NULL valore records a removed datum.
CREATE TABLE versioni (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text   NOT NULL CHECK (kind IN ('S', 'F')),
    entita     bigint NOT NULL,
    sezione    text   NOT NULL,
    valido_dal date   NOT NULL,
    valido_al  date,
    creata_da  bigint NOT NULL REFERENCES operazioni (id),
    chiusa_da  bigint REFERENCES operazioni (id),
    valore     jsonb,
    chiave     text,
    CHECK (valido_al IS NULL OR valido_al >= valido_dal),
    CHECK ((valido_al IS NULL) = (chiusa_da IS NULL))
);
-- At most one open version per section: the invariant that makes concurrent writers
-- of the same section collide loudly (and retry) instead of forking the timeline.
CREATE UNIQUE INDEX versioni_correnti ON versioni (kind, entita, sezione) WHERE valido_al IS NULL;
-- Timelines and as-at reads of one record.
CREATE INDEX versioni_linea ON versioni (kind, entita, sezione, id);
-- "Members of family F as at D" (by_section_key).
CREATE INDEX versioni_per_chiave ON versioni (sezione, chiave) WHERE chiave IS NOT NULL;
-- Annulment finds what an operation created and closed.
CREATE INDEX versioni_creata_da ON versioni (creata_da);
CREATE INDEX versioni_chiusa_da ON versioni (chiusa_da) WHERE chiusa_da IS NOT NULL;

-- Current search projection of subjects (the open `_indice` versions, denormalised).
-- Name keys use the C collation so that prefix ranges compare code points, matching
-- how the store computes the upper bound of a prefix, and so btree indexes serve them.
CREATE TABLE indice_soggetti (
    id               bigint PRIMARY KEY,
    comune           text   NOT NULL,
    posizione        text   NOT NULL,
    codice_fiscale   text,
    cognome_key      text COLLATE "C",
    nome_key         text COLLATE "C",
    sesso            text,
    data_nascita     date,
    id_comunale      text,
    id_famiglia      bigint,
    chiave_indirizzo text
);
CREATE INDEX indice_soggetti_cf ON indice_soggetti (codice_fiscale);
CREATE INDEX indice_soggetti_comune ON indice_soggetti (comune, id);
CREATE INDEX indice_soggetti_id_comunale ON indice_soggetti (id_comunale, comune);
CREATE INDEX indice_soggetti_cognome ON indice_soggetti (cognome_key, nome_key);
CREATE INDEX indice_soggetti_nome ON indice_soggetti (nome_key);
CREATE INDEX indice_soggetti_nascita ON indice_soggetti (data_nascita, sesso);
CREATE INDEX indice_soggetti_famiglia ON indice_soggetti (id_famiglia);
CREATE INDEX indice_soggetti_indirizzo ON indice_soggetti (chiave_indirizzo);
-- posizione and sesso have two or three values: alone they never pay for an index, so
-- they lead only composite ones (sesso with the birth date above, posizione here).
CREATE INDEX indice_soggetti_posizione ON indice_soggetti (posizione, comune, id);

CREATE TABLE indice_famiglie (
    id               bigint PRIMARY KEY,
    comune           text   NOT NULL,
    tipo             text   NOT NULL,
    stato            text   NOT NULL,
    id_comunale      text,
    chiave_indirizzo text
);
CREATE INDEX indice_famiglie_comune ON indice_famiglie (comune, id_comunale);
CREATE INDEX indice_famiglie_indirizzo ON indice_famiglie (chiave_indirizzo);

-- The last idOperazioneComune accepted per municipality. Its row is the lock that
-- serialises the operations of one municipality; `precedente` lets a single upsert both
-- take the lock and report the previous value. Few rows, each updated by every
-- operation of its municipality: tuned for HOT updates like audit_testa below.
CREATE TABLE ultimo_id_comune (
    comune     text   PRIMARY KEY,
    ultimo     bigint NOT NULL,
    precedente bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0.05,
        autovacuum_vacuum_cost_delay = 0);

-- Outbound messages written with the operation, delivered after commit by a worker.
CREATE TABLE outbox (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id_operazione_anpr bigint      REFERENCES operazioni (id),
    tipo               text        NOT NULL,
    destinatario       text        NOT NULL,
    payload            jsonb       NOT NULL,
    creato_il          timestamptz NOT NULL DEFAULT now(),
    tentativi          integer     NOT NULL DEFAULT 0,
    consegnato_il      timestamptz
);
CREATE INDEX outbox_da_consegnare ON outbox (id) WHERE consegnato_il IS NULL;

-- The hash-chained audit log and its head, kept apart so truncation is detectable.
CREATE TABLE audit (
    seq                bigint      PRIMARY KEY,
    istante            timestamptz NOT NULL,
    evento             text        NOT NULL,
    azione             text        NOT NULL,
    utente             text        NOT NULL,
    comune             text,
    postazione         text,
    canale             text        NOT NULL,
    oggetto            text,
    id_operazione_anpr bigint,
    esito              text        NOT NULL,
    hash_precedente    text        NOT NULL,
    hash               text        NOT NULL,
    -- The operation this entry was chained with, set by the store itself (unlike
    -- id_operazione_anpr, which is part of the entry's content). Its seq is the
    -- operation's place in commit order, which is what "newer" means for annulment
    -- (ids are allocated before applying and need not follow commit order). Kept here,
    -- not on operazioni, so that the serialised end of a write transaction inserts one
    -- row instead of also updating an indexed one. No foreign key, for the same reason:
    -- its check would run inside that serialised section.
    operazione         bigint
);
CREATE UNIQUE INDEX audit_per_operazione ON audit (operazione) WHERE operazione IS NOT NULL;

-- Defence in depth: the chain already makes tampering evident; this makes the
-- ordinary paths (a stray UPDATE or DELETE) fail outright.
CREATE FUNCTION audit_solo_aggiunte() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_solo_aggiunte BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_solo_aggiunte();
CREATE TRIGGER audit_niente_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_solo_aggiunte();

-- Exactly one row: seq 0 means an empty chain. Its row lock serialises chaining.
-- Updated by every write, so it is tuned like a hot counter: a low fillfactor keeps
-- room on its page for HOT updates, and autovacuum visits it constantly, so the dead
-- versions do not pile up into pages that every locking read would have to scan.
CREATE TABLE audit_testa (
    unica boolean PRIMARY KEY DEFAULT true CHECK (unica),
    seq   bigint  NOT NULL,
    hash  text    NOT NULL
) WITH (fillfactor = 10, autovacuum_vacuum_threshold = 100, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_cost_delay = 0);
INSERT INTO audit_testa (seq, hash)
VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Scratch table of the benchmark baseline (Store::baseline_raw_insert).
CREATE TABLE baseline_scratch (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    valore text NOT NULL
);
