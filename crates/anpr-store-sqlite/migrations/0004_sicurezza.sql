-- The security directory (SPEC M-8), shared by every process on this database: users,
-- cards, certificates, daily passwords, per-body data, passkeys (one row per record,
-- the record as JSON, the directory version that last wrote it; a NULL `dati` is a
-- deletion), the hash-chained workstation register, our CA, the security mail outbox,
-- session tokens / WebAuthn challenges and failed-login counters.
CREATE TABLE sicurezza_stato (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    versione       INTEGER NOT NULL,
    ultimo_seriale INTEGER NOT NULL,
    numero_crl     INTEGER NOT NULL
);
INSERT INTO sicurezza_stato (id, versione, ultimo_seriale, numero_crl) VALUES (1, 0, 0, 0);

CREATE TABLE sicurezza_utenti (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     TEXT,
    versione INTEGER NOT NULL
);
CREATE INDEX sicurezza_utenti_versione ON sicurezza_utenti (versione);

CREATE TABLE sicurezza_carte (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     TEXT,
    versione INTEGER NOT NULL
);
CREATE INDEX sicurezza_carte_versione ON sicurezza_carte (versione);
CREATE INDEX sicurezza_carte_titolare ON sicurezza_carte (titolare);

CREATE TABLE sicurezza_certificati (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     TEXT,
    versione INTEGER NOT NULL
);
CREATE INDEX sicurezza_certificati_versione ON sicurezza_certificati (versione);
CREATE INDEX sicurezza_certificati_ente ON sicurezza_certificati (ente);

CREATE TABLE sicurezza_password_giornaliere (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     TEXT,
    versione INTEGER NOT NULL
);
CREATE INDEX sicurezza_password_giornaliere_versione ON sicurezza_password_giornaliere (versione);

CREATE TABLE sicurezza_enti (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     TEXT,
    versione INTEGER NOT NULL
);
CREATE INDEX sicurezza_enti_versione ON sicurezza_enti (versione);

CREATE TABLE sicurezza_passkey (
    chiave   TEXT PRIMARY KEY,
    ente     TEXT,
    titolare TEXT,
    dati     TEXT,
    versione INTEGER NOT NULL
);
CREATE INDEX sicurezza_passkey_versione ON sicurezza_passkey (versione);
CREATE INDEX sicurezza_passkey_titolare ON sicurezza_passkey (titolare);

-- Append-only; each entry carries the previous one's hash.
CREATE TABLE sicurezza_registro (
    numero          INTEGER PRIMARY KEY,
    dati            TEXT    NOT NULL,
    hash_precedente TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    versione        INTEGER NOT NULL
);

CREATE TABLE sicurezza_ca (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    certificato_der BLOB NOT NULL,
    chiave_pem      TEXT NOT NULL
);

CREATE TABLE sicurezza_posta (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    destinatario       TEXT    NOT NULL,
    oggetto            TEXT    NOT NULL,
    corpo              TEXT    NOT NULL,
    creata_il          TEXT    NOT NULL,
    stato              TEXT    NOT NULL,
    tentativi          INTEGER NOT NULL DEFAULT 0,
    prossimo_tentativo TEXT    NOT NULL,
    ultimo_errore      TEXT,
    consegnata_il      TEXT
);
CREATE INDEX sicurezza_posta_in_coda ON sicurezza_posta (prossimo_tentativo) WHERE stato = 'inCoda';

CREATE TABLE sicurezza_gettoni (
    impronta  TEXT PRIMARY KEY,
    tipo      TEXT NOT NULL,
    titolare  TEXT,
    ente      TEXT,
    dati      TEXT NOT NULL,
    creato_il TEXT NOT NULL,
    scade_il  TEXT NOT NULL
);
CREATE INDEX sicurezza_gettoni_scadenza ON sicurezza_gettoni (scade_il);

CREATE TABLE sicurezza_accessi_falliti (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    chiave  TEXT NOT NULL,
    istante TEXT NOT NULL
);
CREATE INDEX sicurezza_accessi_falliti_chiave ON sicurezza_accessi_falliti (chiave, istante);
