-- The security directory (SPEC M-8), shared by every process on this database: users,
-- cards, certificates, daily passwords, per-body data, passkeys (one row per record,
-- the record as JSON, the directory version that last wrote it; a NULL `dati` is a
-- deletion), the hash-chained workstation register, our CA, the security mail outbox,
-- session tokens / WebAuthn challenges and failed-login counters.
CREATE TABLE sicurezza_stato (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    versione       BIGINT NOT NULL,
    ultimo_seriale BIGINT NOT NULL,
    numero_crl     BIGINT NOT NULL
);
INSERT INTO sicurezza_stato (id, versione, ultimo_seriale, numero_crl) VALUES (1, 0, 0, 0);

CREATE TABLE sicurezza_utenti (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     JSONB,
    versione BIGINT NOT NULL
);
CREATE INDEX sicurezza_utenti_versione ON sicurezza_utenti (versione);

CREATE TABLE sicurezza_carte (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     JSONB,
    versione BIGINT NOT NULL
);
CREATE INDEX sicurezza_carte_versione ON sicurezza_carte (versione);
CREATE INDEX sicurezza_carte_titolare ON sicurezza_carte (titolare);

CREATE TABLE sicurezza_certificati (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     JSONB,
    versione BIGINT NOT NULL
);
CREATE INDEX sicurezza_certificati_versione ON sicurezza_certificati (versione);
CREATE INDEX sicurezza_certificati_ente ON sicurezza_certificati (ente);

CREATE TABLE sicurezza_password_giornaliere (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     JSONB,
    versione BIGINT NOT NULL
);
CREATE INDEX sicurezza_password_giornaliere_versione ON sicurezza_password_giornaliere (versione);

CREATE TABLE sicurezza_enti (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     JSONB,
    versione BIGINT NOT NULL
);
CREATE INDEX sicurezza_enti_versione ON sicurezza_enti (versione);

CREATE TABLE sicurezza_passkey (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     JSONB,
    versione BIGINT NOT NULL
);
CREATE INDEX sicurezza_passkey_versione ON sicurezza_passkey (versione);
CREATE INDEX sicurezza_passkey_titolare ON sicurezza_passkey (titolare);

-- Append-only; each entry carries the previous one's hash.
CREATE TABLE sicurezza_registro (
    numero          BIGINT PRIMARY KEY,
    dati            JSONB   NOT NULL,
    hash_precedente TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    versione        BIGINT  NOT NULL
);

CREATE TABLE sicurezza_ca (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    certificato_der BYTEA NOT NULL,
    chiave_pem      TEXT NOT NULL
);

CREATE TABLE sicurezza_posta (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destinatario       TEXT    NOT NULL,
    oggetto            TEXT    NOT NULL,
    corpo              TEXT    NOT NULL,
    creata_il          TIMESTAMPTZ NOT NULL,
    stato              TEXT    NOT NULL,
    tentativi          INTEGER NOT NULL DEFAULT 0,
    prossimo_tentativo TIMESTAMPTZ NOT NULL,
    ultimo_errore      TEXT,
    consegnata_il      TIMESTAMPTZ
);
CREATE INDEX sicurezza_posta_in_coda ON sicurezza_posta (prossimo_tentativo) WHERE stato = 'inCoda';

CREATE TABLE sicurezza_gettoni (
    impronta  TEXT PRIMARY KEY,
    tipo      TEXT NOT NULL,
    titolare  TEXT,
    ente      TEXT,
    dati      JSONB NOT NULL,
    creato_il TIMESTAMPTZ NOT NULL,
    scade_il  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sicurezza_gettoni_scadenza ON sicurezza_gettoni (scade_il);

CREATE TABLE sicurezza_accessi_falliti (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chiave  TEXT NOT NULL,
    istante TIMESTAMPTZ NOT NULL
);
CREATE INDEX sicurezza_accessi_falliti_chiave ON sicurezza_accessi_falliti (chiave, istante);
