-- Fewer B-trees written by each registration. With one writer and small commits, every
-- B-tree an operation touches costs at least one 4 KiB page in the WAL per commit (and
-- again when checkpointed), so an index no query needs, or a row that only repeats what
-- another table already holds, is paid for by every operation (BENCHMARKS.md, session
-- 12: the pages of a paced registration, by B-tree).

-- The municipality's subjects: `indice_soggetti_estrazione` (comune, posizione, id)
-- starts with the same column.
DROP INDEX indice_soggetti_comune;
-- A municipal id is looked up only together with its municipality, through
-- `indice_soggetti_id_comunale_ordine` (comune, length(id_comunale), id_comunale).
DROP INDEX indice_soggetti_id_comunale;
-- No query looks families up by municipal id alone.
DROP INDEX indice_famiglie_id_comunale;
-- One index serves both the municipality's families and the municipal id ranges of
-- the extractions (by type), instead of two.
DROP INDEX indice_famiglie_comune;
DROP INDEX indice_famiglie_id_comunale_ordine;
CREATE INDEX indice_famiglie_comune
    ON indice_famiglie (comune, tipo, length(id_comunale), id_comunale);

-- The last `idOperazioneComune` of a municipality is the last entry of the operations'
-- UNIQUE (comune, id_operazione_comune) index: a store with one writer needs no row of
-- its own for it (PostgreSQL keeps it as the row its concurrent writers lock). The
-- audit chain's head (`audit_testa`) stays, although it too costs a page per commit:
-- kept apart from the entries, it is what reveals entries removed from the chain's end.
DROP TABLE ultimo_id_comune;
