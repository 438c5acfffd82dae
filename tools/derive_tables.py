#!/usr/bin/env python3
"""Derive the data files of the `anpr-tables` crate from the ANPR reference tables.

The product ships its own copy of the ANPR decoding tables (tabelle di decodifica) so that
it works without the reference folder. This script reads the CSV conversions kept under
`<source>/tables/` (plus `<source>/errors.csv`) and writes normalised UTF-8 CSV files into
`crates/anpr-tables/data/`, together with a manifest (one row per table: name, aliases,
description, row count, SHA-256 of the file, footnotes) and a VERSION file naming the
source snapshot.

Normalisation, for every table:
  * UTF-8 without BOM, comma separated, `\\n` line ends, minimal quoting;
  * dates as ISO `YYYY-MM-DD`; the "open end" sentinels `9999-12-31` / `31/12/9999` become
    an empty field (the Rust side reads empty as "still valid");
  * leading/trailing blanks trimmed and runs of blanks collapsed in descriptive text
    (the error texts of `errori.csv` are kept verbatim apart from trimming);
  * the spreadsheet row-counter column is dropped; footnote rows are moved out of the
    data into the manifest's `notes` column;
  * generic code tables share one layout: `code,description,order,valid_from,valid_to`
    followed by table-specific attribute columns.

The output is deterministic: running the script twice gives byte-identical files, and
`--check` exits non-zero when the committed files differ from what the script would write.

Python 3 standard library only.
"""

import argparse
import csv
import hashlib
import io
import os
import re
import sys

SOURCE_REPOSITORY = "https://github.com/italia/anpr"
SOURCE_COMMIT = "f513577e240644a0c01c7e47304faa56331bc2dc"
SOURCE_DATE = "2026-01-19"
LICENCE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"
ATTRIBUTION = "Ministero dell'Interno / ANPR (Anagrafe Nazionale della Popolazione Residente)"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = "/work/shared/reference/anpr"
DEFAULT_OUT = os.path.join(REPO_ROOT, "crates", "anpr-tables", "data")

EXPECTED_COMUNI_ROWS = 19352
EXPECTED_COMUNI_ACTIVE = 7901

CODE_COLUMNS = ["code", "description", "order", "valid_from", "valid_to"]


class DerivationError(Exception):
    """The source does not look like the snapshot this script was written for."""


# --------------------------------------------------------------------------- helpers


def read_rows(path, encoding="utf-8"):
    """Returns the rows of a CSV file as lists of strings (header included)."""
    with open(path, encoding=encoding, newline="") as handle:
        return list(csv.reader(handle))


def text(value):
    """Trims and collapses runs of white space, the only change made to free text."""
    return re.sub(r"\s+", " ", value).strip()


def iso_date(value, where):
    """Converts `dd/mm/yyyy` or `yyyy-mm-dd` to ISO; the open-end sentinel becomes ''."""
    value = value.strip()
    if value == "":
        return ""
    match = re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", value)
    if match:
        value = f"{match.group(3)}-{match.group(2)}-{match.group(1)}"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise DerivationError(f"{where}: not a date: {value!r}")
    if value == "9999-12-31":
        return ""
    return value


def yes_no(value, where):
    """Normalises the S/N (and SI/empty) flags of the sheets to S or N."""
    value = value.strip().upper()
    if value in ("S", "SI"):
        return "S"
    if value in ("N", "NO", ""):
        return "N"
    raise DerivationError(f"{where}: not a S/N flag: {value!r}")


def order_value(value, where):
    value = value.strip()
    if value and not value.isdigit():
        raise DerivationError(f"{where}: ORDINAMENTO is not a number: {value!r}")
    return value


def csv_bytes(header, rows):
    """Serialises rows the same way on every platform, so hashes are stable."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        if len(row) != len(header):
            raise DerivationError(f"row has {len(row)} fields, header {len(header)}: {row}")
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8")


class Output:
    """Collects the files to write and the manifest rows that describe them."""

    def __init__(self):
        self.files = {}
        self.manifest = []

    def add(self, *, name, file, kind, description, source, header, rows, number="", aliases=(), notes=()):
        data = csv_bytes(header, rows)
        self.files[file] = data
        self.manifest.append(
            {
                "name": name,
                "file": file,
                "kind": kind,
                "anpr_number": str(number),
                "aliases": " ".join(aliases),
                "description": description,
                "source": source,
                "rows": str(len(rows)),
                "sha256": hashlib.sha256(data).hexdigest(),
                "notes": "\n".join(notes),
            }
        )


# --------------------------------------------------------------------------- comuni


def derive_comuni(source, out):
    path = os.path.join(source, "tables", "ANPR_archivio_comuni.csv")
    rows = read_rows(path, encoding="utf-8-sig")
    header, data = rows[0], rows[1:]
    expected = [
        "ID", "DATAISTITUZIONE", "DATACESSAZIONE", "CODISTAT", "CODCATASTALE", "DENOMINAZIONE_IT",
        "DENOMTRASLITTERATA", "ALTRADENOMINAZIONE", "ALTRADENOMTRASLITTERATA", "ID_PROVINCIA",
        "IDPROVINCIAISTAT", "IDREGIONE", "IDPREFETTURA", "STATO", "SIGLAPROVINCIA", "FONTE",
        "DATAULTIMOAGG", "COD_DENOM",
    ]
    if header != expected:
        raise DerivationError(f"{path}: unexpected header {header}")
    col = {name: i for i, name in enumerate(header)}
    result = []
    for number, row in enumerate(data, start=2):
        where = f"{path}:{number}"
        get = lambda name: row[col[name]].strip()  # noqa: E731 - a local accessor reads best here
        if not re.fullmatch(r"\d{6}", get("CODISTAT")):
            raise DerivationError(f"{where}: bad CODISTAT {get('CODISTAT')!r}")
        catastale = get("CODCATASTALE")
        # 28 historical rows carry "ND" (not determined): no cadastral code existed.
        if catastale == "ND":
            catastale = ""
        elif not re.fullmatch(r"[A-Z]\d{3}", catastale):
            raise DerivationError(f"{where}: bad CODCATASTALE {catastale!r}")
        stato = get("STATO")
        if stato not in ("A", "C", "D"):
            raise DerivationError(f"{where}: bad STATO {stato!r}")
        valid_from = iso_date(get("DATAISTITUZIONE"), where)
        valid_to = iso_date(get("DATACESSAZIONE"), where)
        if valid_from == "" or (valid_to and valid_to < valid_from):
            raise DerivationError(f"{where}: bad validity {valid_from!r}..{valid_to!r}")
        result.append(
            [
                get("ID"),
                get("CODISTAT"),
                catastale,
                text(get("DENOMINAZIONE_IT")),
                text(get("DENOMTRASLITTERATA")),
                text(get("ALTRADENOMINAZIONE")),
                text(get("ALTRADENOMTRASLITTERATA")),
                get("ID_PROVINCIA"),
                get("IDPROVINCIAISTAT"),
                get("IDREGIONE"),
                get("IDPREFETTURA"),
                stato,
                get("SIGLAPROVINCIA"),
                get("FONTE"),
                valid_from,
                valid_to,
                iso_date(get("DATAULTIMOAGG"), where),
                get("COD_DENOM"),
            ]
        )
    if len(result) != EXPECTED_COMUNI_ROWS:
        raise DerivationError(f"{path}: {len(result)} rows, expected {EXPECTED_COMUNI_ROWS}")
    active = sum(1 for r in result if r[11] == "A")
    if active != EXPECTED_COMUNI_ACTIVE:
        raise DerivationError(f"{path}: {active} active rows, expected {EXPECTED_COMUNI_ACTIVE}")
    if len({r[0] for r in result}) != len(result):
        raise DerivationError(f"{path}: duplicate ID")
    # History of one ISTAT code reads top to bottom.
    result.sort(key=lambda r: (r[1], r[14], int(r[0])))
    check_no_overlap(result, key=1, start=14, end=15, what="CODISTAT")
    out.add(
        name="comuni",
        file="comuni.csv",
        kind="comuni",
        number=3,
        aliases=["tabella_3", "archivio_comuni", "anpr_archivio_comuni"],
        description="Municipalities with their history: every validity period of every "
        "ISTAT code (A active, C ceased, D to be established)",
        source="src/archivi/ANPR_archivio_comuni.csv",
        header=[
            "id", "codice_istat", "codice_catastale", "denominazione", "denominazione_traslitterata",
            "denominazione_altra_lingua", "denominazione_altra_lingua_traslitterata", "id_provincia",
            "codice_provincia_istat", "codice_regione", "id_prefettura", "stato", "sigla_provincia",
            "fonte", "valid_from", "valid_to", "data_ultimo_aggiornamento", "codice_denominazione",
        ],
        rows=result,
        notes=[
            "valid_from = DATAISTITUZIONE, valid_to = DATACESSAZIONE: both inclusive (the "
            "cessation date is the last day of validity; the next period of the same ISTAT "
            "code starts the day after). Empty valid_to = still valid (source 9999-12-31).",
            "codice_catastale is empty where the source has ND (28 ceased rows before 1975).",
            "Periods of one codice_istat never overlap. Periods of one codice_catastale overlap "
            "once: D588 is given to both MARNE (016098) and FILAGO (016828) from 1861-03-17 "
            "to 1928-01-25.",
            "codice_regione: EX = region no longer existing, 00 = region not available.",
            "Rows sorted by codice_istat, valid_from, id.",
        ],
    )


def check_no_overlap(rows, key, start, end, what):
    """Refuses data where two periods of the same code overlap, which lookups assume."""
    last = {}
    for row in rows:
        code = row[key]
        if code in last:
            previous_end = last[code]
            if previous_end == "" or row[start] <= previous_end:
                raise DerivationError(f"overlapping periods for {what} {code}")
        last[code] = row[end]


# --------------------------------------------------------------------------- foreign states


def derive_stati_esteri(source, out):
    path = os.path.join(source, "tables", "tab_Stati_Esteri.csv")
    rows = read_rows(path)
    header, data = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    result = []
    for number, row in enumerate(data, start=2):
        where = f"{path}:{number}"
        get = lambda name: row[col[name]].strip()  # noqa: E731
        istat = get("CODISTAT")
        if not re.fullmatch(r"\d{3}", istat):
            raise DerivationError(f"{where}: bad CODISTAT {istat!r}")
        catastale = get("CODAT")
        if catastale and not re.fullmatch(r"Z\d{3}", catastale):
            raise DerivationError(f"{where}: bad CODAT {catastale!r}")
        # One row (888, ISTAT's "recognised non-citizens") has only the ISTAT name.
        name = text(get("DENOMINAZIONE")) or text(get("DENOMINAZIONEISTAT"))
        result.append(
            [
                get("ID"),
                istat,
                catastale,
                name,
                text(get("DENOMINAZIONEISTAT")),
                text(get("DENOMINAZIONEISTAT_EN")),
                get("CODISO3166_1_ALPHA3"),
                get("CODMAE"),
                get("CODMIN"),
                iso_date(get("DATAINIZIOVALIDITA"), where),
                iso_date(get("DATAFINEVALIDITA"), where),
                yes_no(get("CITTADINANZA"), where),
                yes_no(get("NASCITA"), where),
                yes_no(get("RESIDENZA"), where),
                get("FONTE"),
                get("TIPO"),
                get("CODISOSOVRANO"),
                iso_date(get("DATAULTIMOAGG"), where),
            ]
        )
    result.sort(key=lambda r: (r[1], r[9], int(r[0])))
    check_no_overlap(result, key=1, start=9, end=10, what="CODISTAT")
    out.add(
        name="stati_esteri",
        file="stati_esteri.csv",
        kind="stati_esteri",
        number=2,
        aliases=["tabella_2", "stati", "tab_stati_esteri"],
        description="Foreign states and territories: ISTAT code, cadastral Z code, ISO 3166 "
        "alpha-3, MAE and Ministry codes, validity, usability for citizenship/birth/residence",
        source="src/_static/xlsx/tab_Stati_Esteri.xlsx (sheet 'tabella 2')",
        header=[
            "id", "codice_istat", "codice_catastale", "denominazione", "denominazione_istat",
            "denominazione_istat_en", "codice_iso3", "codice_mae", "codice_min", "valid_from",
            "valid_to", "cittadinanza", "nascita", "residenza", "fonte", "tipo", "codice_iso_sovrano",
            "data_ultimo_aggiornamento",
        ],
        rows=result,
        notes=[
            "Special ISTAT codes: 997 = in corso di definizione (citizenship being defined), "
            "998 = non attribuibile (not attributable; errors EC011 and ES099), "
            "999 = apolide (stateless), 888 = ISTAT 'riconosciuti non cittadini' (Latvian "
            "non-citizens), 100 = Italia.",
            "This table version has no ceased states: every row is valid from 1900-01-01 "
            "with an open end.",
            "cittadinanza/nascita/residenza = S when the code may be used for citizenship, "
            "place of birth, foreign residence.",
            "Rows sorted by codice_istat, valid_from, id.",
        ],
    )


# --------------------------------------------------------------------------- consulates


def derive_consolati(source, out):
    path = os.path.join(source, "tables", "tab_tabella_40___elenco_dei_consolati.csv")
    rows = read_rows(path)
    data = rows[1:]
    result = []
    for number, row in enumerate(data, start=2):
        where = f"{path}:{number}"
        # The sheet doubles apostrophes (D''ITALIA), an artefact of an SQL export.
        fields = [text(value).replace("''", "'") for value in row]
        if len(fields) != 6 or not re.fullmatch(r"\d{7}", fields[0]):
            raise DerivationError(f"{where}: unexpected row {row}")
        result.append(fields)
    result.sort(key=lambda r: r[0])
    if len({r[0] for r in result}) != len(result):
        raise DerivationError(f"{path}: duplicate consulate code")
    out.add(
        name="consolati",
        file="consolati.csv",
        kind="consolati",
        number=40,
        aliases=["tabella_40", "tabella_24", "elenco_consolati"],
        description="Italian consulates and embassies with consular duties (MAE code, state, "
        "seat, rank, address), as of 31 May 2016",
        source="src/_static/xlsx/tab_tabella_40___elenco_dei_consolati.xlsx (sheet 'ElencoConsolati')",
        header=["codice", "codice_stato_mae", "denominazione_stato", "sede", "rango", "indirizzo"],
        rows=result,
        notes=["Doubled apostrophes of the source (D''ITALIA) are written as single ones.",
               "The error list calls this table 'Tabella 24 Elenco Consolati'."],
    )
    return {r[0] for r in result}


def derive_stati_consolati(source, out, consolati):
    path = os.path.join(source, "tables", "tab_tabella_41___stati_territori_consolati.csv")
    rows = read_rows(path)
    data = rows[1:]
    result = []
    for number, row in enumerate(data, start=2):
        where = f"{path}:{number}"
        fields = [text(value).replace("''", "'") for value in row]
        if len(fields) != 7 or not re.fullmatch(r"\d{3}", fields[0]) or fields[2] not in consolati:
            raise DerivationError(f"{where}: unexpected row {row}")
        result.append(fields)
    result.sort(key=lambda r: (r[0], r[2]))
    out.add(
        name="stati_consolati",
        file="stati_consolati.csv",
        kind="stati_consolati",
        number=41,
        aliases=["tabella_41", "stati_territori_consolati"],
        description="State or territory of residence (ISTAT code) to the competent consulates, "
        "as of 24 March 2015",
        source="src/_static/xlsx/tab_tabella_41___stati_territori_consolati.xlsx "
        "(sheet 'StatoTerritorioConsolato')",
        header=[
            "codice_istat_stato", "denominazione_stato", "codice_consolato", "rango", "sede",
            "codice_stato_mae", "denominazione_stato_mae",
        ],
        rows=result,
        notes=["The workbook's second sheet 'Foglio1' (a slightly different, older list with "
               "technical column names) is not shipped."],
    )


# --------------------------------------------------------------------------- code tables

# Each entry: output name, ANPR table number (or ''), source file, description, aliases,
# and how to read the sheet. `attributes` maps source column -> output attribute column.
CODE_TABLES = [
    ("stato_civile", 1, "tab_Stato_civile.csv", "Civil status", []),
    ("specie_toponimo", 4, "tab_tabella_04___specie_toponimo.csv",
     "Street-name kinds (specie del toponimo: VIA, PIAZZA, ...)", []),
    ("relazione_parentela", 5, "tab_Relazione_di_parentela___Famiglia.csv",
     "Relationship to the head of the family (intestatario)", []),
    ("legame_convivenza", 6, "tab_Legame____Convivenza.csv",
     "Bond of a person with a cohabitation (convivenza)", []),
    ("motivi_iscrizione_apr", 7, "tab_Motivi_di_iscrizione_in_Anagrafe.csv",
     "Reasons for registration in the resident registry (APR)", ["motivi_iscrizione"]),
    ("tipo_soggiorno", 8, "tab_Tipo_Soggiorno.csv", "Residence-permit types", []),
    ("posizione_professione", 9, "tab_Posizione_nella_Professione.csv",
     "Position in the profession", ["professione"]),
    ("condizione_non_professionale", 10, "tab_Condizione_non_professionale.csv",
     "Non-professional condition", []),
    ("titolo_studio", 11, "tab_Titolo_di_studio.csv", "Education level", []),
    ("tipo_certificato", 13, "tab_Tipo_di_certificato.csv", "Certificate types (service 6001)", []),
    ("lingue", 14, "tab_Lingue.csv", "Certificate languages", []),
    ("motivi_cancellazione_apr", 15, "tab_Motivi_di_cancellazione_dall_Anagrafe.csv",
     "Reasons for removal from the resident registry (APR)", ["motivi_cancellazione"]),
    ("dati_richiesti", 16, "tab_Dati_richiesti.csv",
     "Data groups that can be requested in extractions", []),
    ("prospetti_statistici", 17, "tab_Prospetti_statistici.csv",
     "Statistical reports (ISTAT surveys) produced by service 4003", []),
    ("righe_prospetti_statistici", "", "tab_Righe_dettaglio_Prospetti_Statistici.csv",
     "Detail rows of each statistical report; code = <report>.<row>", []),
    ("motivi_iscrizione_aire", 19, "tab_Motivi_iscrizione_AIRE.csv", "Reasons for AIRE registration", []),
    ("iniziativa_iscrizione_aire", 20, "tab_Iniziativa_iscrizione_AIRE.csv",
     "Who initiated an AIRE registration", []),
    ("criterio_comune_iscrizione_aire", 21, "tab_Individuazione_del_comune_di_iscrizione_AIRE.csv",
     "Criterion used to choose the municipality of AIRE registration", ["individuazione_comune_aire"]),
    ("tipo_movimentazione", 23, "tab_Tipo_movimentazione.csv", "Kinds of family movement", []),
    ("tipo_indirizzo", 25, "tab_Tipo_indirizzo.csv", "Address types", []),
    ("motivo_costituzione_famiglia", 26, "tab_Motivo_costituzione_della_famiglia.csv",
     "Reason a family was formed", []),
    ("specie_convivenza", 27, "tab_Specie_della_convivenza.csv", "Kinds of cohabitation (convivenza)", []),
    ("motivi_cancellazione_aire", 28, "tab_Motivi_di_cancellazione_AIRE.csv",
     "Reasons for removal from AIRE", []),
    ("innesco_procedimento", 29, "tab_Innesco_procedimento_amministraivo.csv",
     "What triggered an administrative proceeding", []),
    ("stato_procedimento", 30, "tab_Stato_Procedimento_amministrativo.csv",
     "States of an administrative proceeding", []),
    ("tipo_cessazione_matrimonio", 31, "tab_Tipo_cessazione_matrimonio.csv",
     "How a marriage ended", []),
    ("tipo_tribunale", 32, "tab_Tipo_tribunale.csv", "Kinds of court or authority", []),
    ("tipi_cittadinanza", 38, "tab_Tipi_cittadinanza.csv", "Citizenship-type filters", []),
    ("esenzione_bollo", 39, "tab_Esenzione_bollo.csv",
     "Stamp-duty exemptions for certificates, with secretarial-fee exemption flag", []),
    ("motivi_non_certificabilita", 42, "tab_Motivi_di_non_certificabilit_.csv",
     "Reasons a person is not (fully) certifiable", []),
    ("cessazione_unione_civile", 43, "tab_Cessazione_unione_civile___convivenze.csv",
     "How a civil union or de-facto cohabitation ended", ["cessazione_convivenza"]),
    ("tipo_revoca", 48, "tab_tipo_revoca_.csv", "Revocable data types (service 5013)", []),
    ("motivo_revoca", 49, "tab_tipo_motivo_revoca_.csv", "Reasons for a revocation (service 5013)", []),
    ("stati_lavorazione", "", "tab_stati_di_lavorazione.csv",
     "Processing states of a request or notification", []),
    ("stato_validazione_cf", "", "tab_Stato_validazione_del_codice_fiscale.csv",
     "Validation state of the codice fiscale against the Agenzia delle Entrate", []),
    ("tipi_mutazione", "", "tab_Tipi_di_mutazione.csv", "Kinds of change of an individual record", []),
    ("tipo_mutazione_famiglia_convivenza", "", "tab_tipo_mutazione_famiglia_convivenza.csv",
     "Kinds of change of a family or cohabitation", []),
    ("tipo_mutazione_residenza", "", "tab_tipo_mutazione_residenza.csv", "Kinds of change of residence", []),
]

# Source columns that become named attributes, per table.
ATTRIBUTE_COLUMNS = {
    "DESCRIZIONETRASLITTERATA": "descrizione_traslitterata",
    "ESENZIONE DIRITTO DI SEGRETERIA": "esenzione_diritti_segreteria",
    "Note": "note",
    "": "note",
    "IDPROSPETTO": "id_prospetto",
}
FLAG_ATTRIBUTES = {"esenzione_diritti_segreteria"}


def derive_code_table(source, out, name, number, file, description, aliases):
    path = os.path.join(source, "tables", file)
    rows = read_rows(path)
    header = rows[0]
    # A leading empty header is the spreadsheet's row counter: it carries no meaning.
    skip_counter = header[0] == "" and len(header) > 1 and header[1] == "ID"
    if skip_counter:
        header = header[1:]
        rows = [rows[0][1:]] + [row[1:] for row in rows[1:]]
    code_col = header.index("ID") if "ID" in header else header.index("Codice")
    desc_col = header.index("DESCRIZIONE") if "DESCRIZIONE" in header else header.index("Descrizione")
    optional = {n: (header.index(n) if n in header else None)
                for n in ("ORDINAMENTO", "DATAINIZIOVALIDITA", "DATAFINEVALIDITA")}
    attribute_cols = []
    for index, column in enumerate(header):
        if index in (code_col, desc_col) or index in optional.values():
            continue
        if column not in ATTRIBUTE_COLUMNS:
            raise DerivationError(f"{path}: unmapped column {column!r}")
        attribute_cols.append((index, ATTRIBUTE_COLUMNS[column]))
    result, notes = [], []
    for number_in_file, row in enumerate(rows[1:], start=2):
        where = f"{path}:{number_in_file}"
        code = row[code_col].strip()
        if code == "":
            # Footnotes sit at the bottom of some sheets with an empty code column.
            notes.append(" ".join(text(v) for v in row if v.strip()))
            continue
        pick = lambda key: row[optional[key]] if optional[key] is not None else ""  # noqa: E731
        values = [
            code,
            text(row[desc_col]),
            order_value(pick("ORDINAMENTO"), where),
            iso_date(pick("DATAINIZIOVALIDITA"), where),
            iso_date(pick("DATAFINEVALIDITA"), where),
        ]
        for index, attribute in attribute_cols:
            value = text(row[index])
            if attribute in FLAG_ATTRIBUTES:
                value = yes_no(value, where)
            values.append(value)
        result.append(values)
    if name == "righe_prospetti_statistici":
        # Row numbers restart for every report: the report id makes the code unique.
        for values in result:
            values[0] = f"{values[-1]}.{values[0]}"
    attribute_names = [attribute for _, attribute in attribute_cols]
    write_code_table(out, name, number, file, description, aliases, attribute_names, result, notes, "codici")


def write_code_table(out, name, number, file, description, aliases, attribute_names, rows, notes, kind):
    seen = set()
    for values in rows:
        key = (values[0], values[3], values[4])
        if key in seen:
            raise DerivationError(f"{name}: code {values[0]} repeated for the same validity")
        seen.add(key)
    base = os.path.splitext(file)[0].lower()
    all_aliases = ([f"tabella_{number}"] if number != "" else []) + list(aliases) + [base]
    out.add(
        name=name,
        file=f"{name}.csv",
        kind=kind,
        number=number,
        aliases=all_aliases,
        description=description,
        source=f"src/_static/xlsx/{os.path.splitext(file)[0]}.xlsx",
        header=CODE_COLUMNS + attribute_names,
        rows=rows,
        notes=notes,
    )


def derive_conversione_aire(source, out):
    """Old AIRE codes -> ANPR codes used at subentro; keyed by `<table>/<old code>`."""
    file = "tab_Conversione_codici_AIRE_al_subentro.csv"
    path = os.path.join(source, "tables", file)
    rows = read_rows(path)
    keys = {
        "Titolo di studio": "titolo_studio",
        "Condizione non professionale": "condizione_non_professionale",
        "Posizione nella professione": "posizione_professione",
    }
    result, notes = [], []
    for number, row in enumerate(rows[1:], start=2):
        where = f"{path}:{number}"
        if row[0].startswith("("):
            notes.append(" ".join(text(v) for v in row if v.strip()))
            continue
        if row[0] not in keys:
            raise DerivationError(f"{where}: unknown table {row[0]!r}")
        anpr_code = text(row[3])
        only_subentro = "N"
        if anpr_code.endswith("(*)"):
            anpr_code = anpr_code[: -len("(*)")].strip()
            only_subentro = "S"
        result.append([f"{keys[row[0]]}/{text(row[1])}", text(row[2]), "", "", "",
                       keys[row[0]], anpr_code, text(row[4]), only_subentro])
    write_code_table(out, "conversione_codici_aire", "", file,
                     "Old AIRE codes converted to ANPR codes at subentro; code = <ANPR table>/<AIRE code>",
                     ["conversione_aire"],
                     ["tabella_anpr", "codice_anpr", "descrizione_anpr", "solo_subentro"],
                     result, notes, "codici")


# --------------------------------------------------------------------------- lists without codes


def derive_list(source, out, *, name, file, description, columns, description_column,
                fill_down=(), strip_asterisk=(), legend=lambda row: False):
    """Sheets that list services or functions have no key: code = row ordinal (1, 2, ...)."""
    path = os.path.join(source, "tables", file)
    rows = read_rows(path)
    header = rows[0]
    index = {column: header.index(column) for column in list(columns) + [description_column]}
    result, notes = [], []
    previous = {}
    for number, row in enumerate(rows[1:], start=2):
        where = f"{path}:{number}"
        first = row[0].strip()
        if first.startswith("(*)") or legend(row):
            notes.append(" ".join(text(v) for v in row if v.strip()))
            continue
        values = [str(len(result) + 1), text(row[index[description_column]]), "", "", ""]
        for column, attribute in columns.items():
            value = text(row[index[column]])
            if column in fill_down:
                # Merged cells in the sheet: an empty cell repeats the one above.
                value = value or previous.get(column, "")
                previous[column] = value
            if column in strip_asterisk and value.endswith("(*)"):
                value = value[: -len("(*)")].strip()
                attribute_note = "S"
            else:
                attribute_note = None
            if attribute.startswith("data_"):
                value = iso_date(value, where)
            values.append(value)
            if column in strip_asterisk:
                values.append(attribute_note or "N")
        result.append(values)
    attribute_names = []
    for column, attribute in columns.items():
        attribute_names.append(attribute)
        if column in strip_asterisk:
            attribute_names.append("vedi_nota")
    write_code_table(out, name, "", file, description, [], attribute_names, result, notes, "elenco")


def derive_lists(source, out):
    derive_list(
        source, out,
        name="servizi_web",
        file="tab_elenco_dei_web_services_disponibili.csv",
        description="Web services available and the registry operations they cover",
        description_column="Descrizione",
        columns={
            "Servizio": "servizio",
            "Operazione richiesta": "operazione",
            "Registrazione anagrafica": "registrazione_anagrafica",
            "Tipo di operazione": "tipo_operazione",
            "Ambito": "ambito",
            "Note": "note",
        },
        strip_asterisk=("Operazione richiesta",),
    )
    derive_list(
        source, out,
        name="utilizzo_servizi_web",
        file="tab_utilizzo_del_webservice.csv",
        description="Which web service to use per access mode (WS / web app); O mandatory, F optional",
        description_column="Descrizione",
        columns={
            "Servizio": "servizio",
            "Operazione anagrafica": "operazione",
            "WS da utilizzare / Modalità WS": "modalita_ws",
            "WS da utilizzare / Modalità WA": "modalita_wa",
            "Servizio esposto dal comune per l'acquisizione delle notifiche di ANPR (*) / Modalità WS":
                "notifiche_modalita_ws",
            "Servizio esposto dal comune per l'acquisizione delle notifiche di ANPR (*) / Modalità WA integrata":
                "notifiche_modalita_wa",
            "Note": "note",
            "Data consegna richieste": "data_consegna_richieste",
            "Data consegna risposte": "data_consegna_risposte",
        },
        legend=lambda row: row[0].strip() in ("F", "O") and not any(v.strip() for v in row[2:]),
    )
    derive_list(
        source, out,
        name="servizi_web_allineamento",
        file="tab_elenco_dei_web_services_da_utilizzare_per_aggiornamento_delle_basi_dati_locali.csv",
        description="Web services for keeping local databases aligned with ANPR",
        description_column="Descrizione",
        columns={
            "Servizio": "servizio",
            "Operazione anagrafica": "operazione",
            "Servizio esposto dal comune per l'acquisizione delle notifiche di ANPR (*) / Modalità WA integrata":
                "notifiche_modalita_wa",
            "Note": "note",
            "Data consegna richieste": "data_consegna_richieste",
            "Data consegna risposte": "data_consegna_risposte",
        },
    )
    derive_list(
        source, out,
        name="funzionalita_web_app",
        file="tab_elenco_funzionalita_disponibili.csv",
        description="Functions of the ANPR web application (menu, function, description)",
        description_column="Funzione",
        columns={
            "Voce di menu": "voce_menu",
            "Descrizione": "descrizione_estesa",
            "Note (*)": "note",
        },
        fill_down=("Voce di menu",),
        legend=lambda row: row[0].strip() == "" and row[1].startswith("In rosso"),
    )


# --------------------------------------------------------------------------- errors


def derive_errori(source, out):
    path = os.path.join(source, "errors.csv")
    rows = read_rows(path)
    header, data = rows[0], rows[1:]
    expected = [
        "code", "severity", "text", "severity_services", "note_services", "severity_subentro",
        "note_subentro", "reference_table", "last_change", "anomalie_severity", "anomalie_hint",
        "anomalie_procedure", "anomalie_section", "text_variant", "source",
    ]
    if header != expected:
        raise DerivationError(f"{path}: unexpected header {header}")
    result = []
    for number, row in enumerate(data, start=2):
        where = f"{path}:{number}"
        values = [value.strip() for value in row]
        # Mostly two letters and three digits (EN001), but EHR01, EHA3, ENT01 exist too.
        if not re.fullmatch(r"[A-Z][A-Z0-9]{3,4}", values[0]):
            raise DerivationError(f"{where}: bad code {values[0]!r}")
        for severity_col in (1, 3, 5, 9):
            if values[severity_col] not in ("", "E", "W"):
                raise DerivationError(f"{where}: bad severity {values[severity_col]!r}")
        values[8] = iso_date(values[8], where)
        result.append(values)
    result.sort(key=lambda r: r[0])
    if len({r[0] for r in result}) != len(result):
        raise DerivationError(f"{path}: duplicate code")
    out.add(
        name="errori",
        file="errori.csv",
        kind="errori",
        aliases=["errors", "codici_errore"],
        description="ANPR outcome codes: code, severity (E blocking error, W warning), message "
        "text ('@' = placeholder) and where they apply",
        source="errors.csv of the reference (merged from tab_elenco_errori_anpr.xlsx, "
        "tab_errori_agenzia_entrate.xlsx and subentro/tabella_anomalie.rst)",
        header=expected,
        rows=result,
        notes=["last_change converted to ISO dates; texts otherwise verbatim."],
    )


# --------------------------------------------------------------------------- main


def derive(source):
    out = Output()
    derive_comuni(source, out)
    derive_stati_esteri(source, out)
    consolati = derive_consolati(source, out)
    derive_stati_consolati(source, out, consolati)
    for name, number, file, description, aliases in CODE_TABLES:
        derive_code_table(source, out, name, number, file, description, aliases)
    derive_conversione_aire(source, out)
    derive_lists(source, out)
    derive_errori(source, out)

    names = [entry["name"] for entry in out.manifest]
    if len(set(names)) != len(names):
        raise DerivationError("duplicate table name")
    out.manifest.sort(key=lambda entry: entry["name"])
    manifest_header = ["name", "file", "kind", "anpr_number", "aliases", "description", "source",
                       "rows", "sha256", "notes"]
    out.files["manifest.csv"] = csv_bytes(
        manifest_header, [[entry[column] for column in manifest_header] for entry in out.manifest])

    # The content hash is the SHA-256 of a `sha256sum`-style listing of every data file, so
    # it changes whenever any table changes and can be recomputed with standard tools.
    listing = "".join(f"{hashlib.sha256(out.files[f]).hexdigest()}  {f}\n" for f in sorted(out.files))
    content_hash = hashlib.sha256(listing.encode("utf-8")).hexdigest()
    out.files["SHA256SUMS"] = listing.encode("utf-8")
    out.files["VERSION"] = (
        f"source_repository={SOURCE_REPOSITORY}\n"
        f"source_commit={SOURCE_COMMIT}\n"
        f"source_date={SOURCE_DATE}\n"
        f"content_sha256={content_hash}\n"
        f"licence={LICENCE}\n"
        f"attribution={ATTRIBUTION}\n"
        f"generator=tools/derive_tables.py\n"
    ).encode("utf-8")
    out.files["ATTRIBUTION.md"] = attribution_text().encode("utf-8")
    return out


def attribution_text():
    return f"""# ANPR decoding tables — attribution

The files in this directory are derived from the public documentation repository of ANPR
(Anagrafe Nazionale della Popolazione Residente), {SOURCE_REPOSITORY}, commit
`{SOURCE_COMMIT}` ({SOURCE_DATE}).

* Licence: {LICENCE}
* Attribution: {ATTRIBUTION}
* Changes: converted from the published spreadsheets / CSV to normalised UTF-8 CSV
  (ISO dates, open-ended validity written as an empty field, row counters and footnotes
  removed from the rows, doubled apostrophes fixed, column names renamed). The original
  values are otherwise unchanged.

Do not edit these files by hand: regenerate them with `python3 tools/derive_tables.py`
(`--check` verifies that they are up to date). `manifest.csv` lists every table with its
row count, SHA-256 and the footnotes of the source sheet; `VERSION` names the source
snapshot and a content hash over `SHA256SUMS`.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="the ANPR reference folder")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the crate's data folder")
    parser.add_argument("--check", action="store_true", help="only verify the files are up to date")
    args = parser.parse_args()
    try:
        out = derive(args.source)
    except (DerivationError, OSError, ValueError) as error:
        print(f"derive_tables: {error}", file=sys.stderr)
        return 2

    stale = []
    for file, data in sorted(out.files.items()):
        target = os.path.join(args.out, file)
        try:
            with open(target, "rb") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        if current != data:
            stale.append(file)
    expected = set(out.files)
    extra = sorted(f for f in (os.listdir(args.out) if os.path.isdir(args.out) else []) if f not in expected)
    if args.check:
        for file in stale:
            print(f"derive_tables: {file} is out of date", file=sys.stderr)
        for file in extra:
            print(f"derive_tables: {file} is not produced by this script", file=sys.stderr)
        return 1 if stale or extra else 0

    os.makedirs(args.out, exist_ok=True)
    for file in stale:
        with open(os.path.join(args.out, file), "wb") as handle:
            handle.write(out.files[file])
    for file in extra:
        print(f"derive_tables: warning: {file} is not produced by this script", file=sys.stderr)
    total = sum(len(data) for data in out.files.values())
    print(f"derive_tables: {len(out.files)} files, {total} bytes, {len(stale)} written to {args.out}")
    for entry in out.manifest:
        print(f"  {entry['name']:36} {entry['rows']:>6} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
