-- Municipality document parameters (SPEC M-4.1, M-8.6): one row per municipality,
-- the values as JSON (the service owns their shape) and the logo as uploaded.
CREATE TABLE parametri_comune (
    comune        TEXT PRIMARY KEY,
    valori        TEXT NOT NULL,
    logo          BLOB,
    aggiornato_il TEXT NOT NULL,
    utente        TEXT NOT NULL,
    versione      INTEGER NOT NULL
);

-- Children of a parent (advanced search, SPEC M-5.2): the current `genitori` versions
-- by the father's and the mother's national id. Partial (only that section) and on
-- the expressions the search uses verbatim, so no write path changes.
CREATE INDEX versioni_padre ON versioni (json_extract(value, '$.padre.idAnpr'))
    WHERE section = 'genitori' AND valido_al IS NULL;
CREATE INDEX versioni_madre ON versioni (json_extract(value, '$.madre.idAnpr'))
    WHERE section = 'genitori' AND valido_al IS NULL;
