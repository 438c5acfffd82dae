-- Migration 8 is done in code (`schema::riscrivi_controlli_in`): the CHECK constraints
-- `x IN ('a', 'b', 'c')` of `operazioni`, `operazioni_entita` and `versioni` become
-- `(x = 'a' OR x = 'b' OR x = 'c')`, the same rule. SQLite evaluates an IN list of more
-- than two constants by building an ephemeral table at every execution of every INSERT
-- (and of every UPDATE touching the column): about a fifth of the writer thread's
-- instructions per registration. The table definitions are edited in place with the
-- procedure SQLite documents for changes that leave the stored content valid
-- (https://www.sqlite.org/lang_altertable.html#otheralter), so no table is rebuilt.
SELECT 1;
