-- Issued documents (certificates, paper identity cards; SPEC M-4) and the protocol
-- register of each municipality and year.
CREATE TABLE documenti (
    id                  TEXT PRIMARY KEY,
    tipo                TEXT NOT NULL,
    comune              TEXT NOT NULL,
    anno                INTEGER NOT NULL,
    protocollo          INTEGER NOT NULL,
    soggetto            INTEGER,
    emesso_il           TEXT NOT NULL,
    utente              TEXT NOT NULL,
    contenuto           TEXT NOT NULL,
    annullato_il        TEXT,
    motivo_annullamento TEXT,
    UNIQUE (comune, anno, protocollo)
);
CREATE INDEX documenti_comune_emesso ON documenti (comune, emesso_il);
CREATE INDEX documenti_soggetto ON documenti (soggetto) WHERE soggetto IS NOT NULL;

CREATE TABLE protocolli (
    comune TEXT NOT NULL,
    anno   INTEGER NOT NULL,
    ultimo INTEGER NOT NULL,
    PRIMARY KEY (comune, anno)
);
