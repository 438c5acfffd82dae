-- Subentro (municipality onboarding, SPEC M-6): the files received and their state.
-- A positive load writes its rows in the same transaction as the records (COPY), so a
-- file is ELABORATO exactly when its records are in; refused files (INSERITO KO,
-- SCARTATO) are written with the refused operation. `sha256` recognises the same
-- content sent twice.
CREATE TABLE subentro_file (
    n             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    comune        text        NOT NULL,
    nome_file     text        NOT NULL,
    sha256        text        NOT NULL,
    stato         text        NOT NULL,
    id_operazione bigint      REFERENCES operazioni (id),
    registrato_il timestamptz NOT NULL,
    soggetti      bigint      NOT NULL,
    famiglie      bigint      NOT NULL
);
CREATE INDEX subentro_file_comune ON subentro_file (comune, n);
CREATE INDEX subentro_file_sha256 ON subentro_file (sha256);
