-- Subentro (municipality onboarding, SPEC M-6): the files received and their state.
-- A positive load writes its rows in the same transaction as the records, so a file is
-- ELABORATO exactly when its records are in; refused files (INSERITO KO, SCARTATO) are
-- written with the refused operation. `sha256` recognises the same content sent twice.
CREATE TABLE subentro_file (
    comune        TEXT    NOT NULL,
    nome_file     TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    stato         TEXT    NOT NULL,
    id_operazione INTEGER REFERENCES operazioni (id),
    registrato_il TEXT    NOT NULL,
    soggetti      INTEGER NOT NULL,
    famiglie      INTEGER NOT NULL
);

CREATE INDEX subentro_file_comune ON subentro_file (comune);
CREATE INDEX subentro_file_sha256 ON subentro_file (sha256);
