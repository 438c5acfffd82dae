#!/usr/bin/env python3
"""Cross-checks our codice fiscale against an independent implementation.

The independent implementation is python-codicefiscale (module `codicefiscale`, by Fabio
Caccamo), pinned in requirements.txt next to this file. Its name transliteration
(python-slugify + text-unidecode), check-character tables, omocodia and birthplace archive
are its own, so agreement is evidence; nothing here is shared with the Rust code.

Input: JSON lines on stdin, one person each, as written by
crates/anpr-domain/tests/cf_crosscheck.rs:

    {"cognome": ..., "nome": ..., "sesso": "M"|"F", "data_nascita": "YYYY-MM-DD",
     "luogo_nascita": "H501", "cf": <our code>, "omocodici": [<our 7 variants, in order>],
     "scelto": <one of our variants>, "decodifica_scelto": {"sesso", "giorno", "mese",
     "yy", "luogo", "livello"}}

For each person it checks that:
  1. encode() of the same data gives our code;
  2. our base code and 7 variants are exactly the library's omocodes whose substituted
     positions are the k rightmost numeric ones (k = 0..7), in that order. The library
     lists all 128 combinations of the 7 positions; the tax agency issues only the
     progressive right-to-left ones, which is what we list, so the comparison is on that
     subset, and every code of ours must also be in the library's full list;
  3. the library says that the chosen variant is an omocode (is_omocode); it already
     decoded the base code without error in step 2;
  4. decode() of the chosen variant gives the person's sex, day, month, two-digit year and
     place, and the same values our decodifica gave.

Prints one line per disagreement, then `cf_crosscheck: N passed, M failed`. Exits 0 when
nothing disagrees, 1 on any disagreement, 2 when the library is missing, 3 on bad input.
"""

import datetime
import json
import sys

PINNED = "0.12.1"
# Zero-based numeric positions in the tax agency's substitution order (rightmost first).
POSITIONS = [14, 13, 12, 10, 9, 7, 6]


def main():
    try:
        import codicefiscale
        from codicefiscale import codicefiscale as cf_lib
    except ImportError as error:
        print(
            f"cf_crosscheck: python-codicefiscale is not installed ({error}); "
            "run: pip install -r tests/independent/requirements.txt",
            file=sys.stderr,
        )
        return 2
    version = getattr(codicefiscale, "__version__", "?")
    if version != PINNED:
        print(
            f"cf_crosscheck: warning: python-codicefiscale {version}, pinned {PINNED}",
            file=sys.stderr,
        )

    passed = failed = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            person = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"cf_crosscheck: line {number}: bad JSON: {error}", file=sys.stderr)
            return 3
        problems = check(cf_lib, person)
        if problems:
            failed += 1
            label = " ".join(
                str(person.get(key))
                for key in ("cognome", "nome", "sesso", "data_nascita", "luogo_nascita")
            )
            for problem in problems:
                print(f"MISMATCH line {number} [{label}]: {problem}")
        else:
            passed += 1
    print(f"cf_crosscheck: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


def substituted(code):
    return frozenset(i for i in POSITIONS if code[i].isalpha())


def check(cf_lib, person):
    problems = []
    try:
        birthdate = datetime.datetime.strptime(person["data_nascita"], "%Y-%m-%d")
        ours = person["cf"]
        our_variants = person["omocodici"]
        chosen = person["scelto"]
        our_decoded = person["decodifica_scelto"]
    except (KeyError, ValueError) as error:
        return [f"malformed input: {error!r}"]

    # 1. The code itself.
    try:
        theirs = cf_lib.encode(
            lastname=person["cognome"],
            firstname=person["nome"],
            gender=person["sesso"],
            birthdate=birthdate,
            birthplace=person["luogo_nascita"],
        )
    except ValueError as error:
        return [f"library cannot encode: {error}"]
    if theirs != ours:
        problems.append(f"code: ours={ours} theirs={theirs}")
        return problems

    # 2. The omocodes.
    try:
        their_all = cf_lib.decode(ours)["omocodes"]
    except ValueError as error:
        return [f"library cannot decode {ours}: {error}"]
    if len(our_variants) != 7:
        problems.append(f"expected 7 variants, got {len(our_variants)}")
    our_list = [ours] + list(our_variants)
    missing = [code for code in our_list if code not in their_all]
    if missing:
        problems.append(f"codes of ours not among the library's omocodes: {missing}")
    progressive = {}
    for code in their_all:
        subs = substituted(code)
        for k in range(len(POSITIONS) + 1):
            if subs == frozenset(POSITIONS[:k]):
                progressive[k] = code
    expected = [progressive.get(k) for k in range(len(POSITIONS) + 1)]
    if expected != our_list:
        problems.append(f"progressive omocodes: ours={our_list} theirs={expected}")

    # 3. Validity as the library sees it. Membership in its omocode list (above) already
    # shows that it computes the same check character for every variant; decoding each
    # variant again would only repeat its birthplace lookup, which is the slow part, so
    # the variant-side checks run on the chosen one.
    if not cf_lib.is_omocode(chosen):
        problems.append(f"library says {chosen} is not an omocode")

    # 4. Decoding a variant.
    try:
        decoded = cf_lib.decode(chosen)
    except ValueError as error:
        return problems + [f"library cannot decode {chosen}: {error}"]
    day, month = decoded["birthdate"].day, decoded["birthdate"].month
    yy = decoded["birthdate"].year % 100
    place = (decoded["birthplace"] or {}).get("code")
    theirs_decoded = (decoded["gender"], day, month, yy, place)
    from_person = (
        person["sesso"],
        birthdate.day,
        birthdate.month,
        birthdate.year % 100,
        person["luogo_nascita"],
    )
    from_ours = tuple(our_decoded[key] for key in ("sesso", "giorno", "mese", "yy", "luogo"))
    if theirs_decoded != from_person:
        problems.append(f"decode({chosen}): theirs={theirs_decoded} person={from_person}")
    if theirs_decoded != from_ours:
        problems.append(f"decode({chosen}): theirs={theirs_decoded} ours={from_ours}")
    if len(substituted(chosen)) != our_decoded["livello"]:
        problems.append(f"omocodia level of {chosen}: ours={our_decoded['livello']}")
    if decoded["omocodes"][0] != ours:
        problems.append(f"base of {chosen}: ours={ours} theirs={decoded['omocodes'][0]}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
