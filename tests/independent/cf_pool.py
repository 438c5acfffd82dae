#!/usr/bin/env python3
"""Prints the birth-place pool embedded in crates/anpr-domain/tests/cf_crosscheck.rs.

The pool is taken from the ANPR decoding tables (shared/reference/anpr/tables): active
municipalities, ceased municipalities and foreign states, each with the period in which its
cadastral code was valid, clipped to 1900-01-01..2025-12-31. A code enters the pool only
if the independent library (python-codicefiscale) knows it for the *whole* period, so the
cross-check compares algorithms, not two municipality archives. The selection is
deterministic (a fixed stride over sorted rows) so that re-running this script gives the
same pool; it is kept in the repository only to show how the pool was chosen.

Usage: python3 tests/independent/cf_pool.py [path/to/shared/reference/anpr/tables]
"""

import collections
import csv
import datetime
import os
import sys

FIRST = "1900-01-01"
LAST = "2025-12-31"

# Large cities are always in the pool: they are where most people are born.
CITTA = ["H501", "F205", "F839", "L219", "G273", "D612", "A944", "L736", "C351", "A662"]


def library_ranges():
    try:
        from codicefiscale import data as library_data
    except ImportError:
        sys.exit("python-codicefiscale missing: pip install -r tests/independent/requirements.txt")
    ranges = collections.defaultdict(list)
    places = library_data.get_municipalities_data() + library_data.get_countries_data()
    for place in places:
        created = place["date_created"][:10] or "0001-01-01"
        deleted = place["date_deleted"][:10] or "9999-12-31"
        ranges[place["code"]].append((created, deleted))
    return ranges


def merge(intervals):
    """Unites ISO date intervals that overlap or touch (end + 1 day = next start)."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= next_day(merged[-1][1]):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def next_day(iso_date):
    if iso_date >= "9999-12-31":
        return iso_date
    return (datetime.date.fromisoformat(iso_date) + datetime.timedelta(days=1)).isoformat()


def covered(ranges, code, start, end):
    return any(s <= start and end <= e for s, e in merge(ranges.get(code, [])))


def iso(ddmmyyyy):
    day, month, year = ddmmyyyy.split("/")
    return f"{year}-{month}-{day}"


def main():
    tables = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "shared", "reference", "anpr", "tables"
    )
    ranges = library_ranges()
    with open(os.path.join(tables, "ANPR_archivio_comuni.csv"), encoding="utf-8-sig") as f:
        comuni = list(csv.DictReader(f))
    with open(os.path.join(tables, "tab_Stati_Esteri.csv"), encoding="utf-8-sig") as f:
        stati = list(csv.DictReader(f))

    active_codes = {row["CODCATASTALE"] for row in comuni if row["STATO"] == "A"}
    # A code may span several rows (a renamed municipality keeps its code): unite them, so
    # that a birth date anywhere in the code's life can be drawn.
    periods = collections.defaultdict(list)
    names = {}
    for row in comuni:
        code = row["CODCATASTALE"]
        if len(code) != 4:
            continue
        periods[code].append((row["DATAISTITUZIONE"], row["DATACESSAZIONE"]))
        if row["STATO"] == "A" or code not in names:
            names[code] = row["DENOMINAZIONE_IT"]
    attivi, cessati, esteri = [], [], []
    for code in sorted(periods):
        for start, end in merge(periods[code]):
            start, end = max(start, FIRST), min(end, LAST)
            if start > end or not covered(ranges, code, start, end):
                continue
            if code in active_codes and end == LAST:
                attivi.append((code, start, end, names[code]))
            elif code not in active_codes:
                # Only codes that no longer identify any municipality: "born in a place
                # that no longer exists" is the case this category is here to exercise.
                cessati.append((code, start, end, names[code]))
    for row in sorted(stati, key=lambda r: r["CODAT"]):
        code = row["CODAT"]
        if not code.startswith("Z") or row["NASCITA"] != "S":
            continue
        start = max(iso(row["DATAINIZIOVALIDITA"]), FIRST)
        end = min(iso(row["DATAFINEVALIDITA"]), LAST)
        if covered(ranges, code, start, end):
            esteri.append((code, start, end, row["DENOMINAZIONE"]))

    chosen = [r for r in attivi if r[0] in CITTA]
    chosen += attivi[:: max(1, len(attivi) // 40)]
    chosen += cessati[:: max(1, len(cessati) // 40)]
    chosen += esteri[:: max(1, len(esteri) // 30)]
    seen = set()
    for code, start, end, name in chosen:
        kind = "Estero" if code.startswith("Z") else ("Cessato" if end < LAST else "Attivo")
        if (code, start) in seen:
            continue
        seen.add((code, start))
        print(f'    ("{code}", "{start}", "{end}", Luogo::{kind}), // {name}')


if __name__ == "__main__":
    main()
