-- Issued documents (certificates, paper identity cards; SPEC M-4) and the protocol
-- register of each municipality and year.
CREATE TABLE documenti (
    id                  TEXT PRIMARY KEY,
    tipo                TEXT NOT NULL,
    comune              TEXT NOT NULL,
    anno                INTEGER NOT NULL,
    protocollo          BIGINT NOT NULL,
    soggetto            BIGINT,
    emesso_il           TIMESTAMPTZ NOT NULL,
    utente              TEXT NOT NULL,
    contenuto           JSONB NOT NULL,
    annullato_il        TIMESTAMPTZ,
    motivo_annullamento TEXT,
    UNIQUE (comune, anno, protocollo)
);
CREATE INDEX documenti_comune_emesso ON documenti (comune, emesso_il);
CREATE INDEX documenti_soggetto ON documenti (soggetto) WHERE soggetto IS NOT NULL;

CREATE TABLE protocolli (
    comune TEXT NOT NULL,
    anno   INTEGER NOT NULL,
    ultimo BIGINT NOT NULL,
    PRIMARY KEY (comune, anno)
);
