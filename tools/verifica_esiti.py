"""Checks one subentro run's outcome against the generator's expected anomalies.

Usage: tools/verifica_esiti.py ESITI_DIR ANOMALIE_ATTESE_CSV ae|noae

Every loaded record has an idANPR (and ids are unique per kind), the summary
(riepilogo.csv) equals anomalie-attese.csv code by code (EA029, the tax agency's, only
when the run was given the agency register: `ae`), and no anomaly file holds the same
row twice. Python standard library only; used for the 1M runs of BENCHMARKS.md."""
import csv, sys, glob, os
esiti, attese_csv, con_ae = sys.argv[1], sys.argv[2], sys.argv[3] == "ae"
righe = list(csv.DictReader(open(os.path.join(esiti, "esiti.csv"))))
caricati = [r for r in righe if r["esito"] == "CARICATO"]
assert all(r["id_anpr"] for r in caricati), "a loaded record without idANPR"
ids = [(r["tipo_scheda"], r["id_anpr"]) for r in caricati]
assert len(ids) == len(set(ids)), "duplicate idANPR"
riepilogo = {}
for r in csv.DictReader(open(os.path.join(esiti, "riepilogo.csv"))):
    riepilogo[r["codice"]] = riepilogo.get(r["codice"], 0) + int(r["conteggio"])
attese = {r["codice"]: int(r["conteggio"]) for r in csv.DictReader(open(attese_csv))}
if not con_ae:
    attese.pop("EA029", None)
assert riepilogo == attese, (riepilogo, attese)
for f in glob.glob(os.path.join(esiti, "anomalie_*.csv")):
    rr = open(f).read().splitlines()[1:]
    assert len(rr) == len(set(rr)), f"duplicate rows in {f}"
print(f"ok: {len(righe)} records, {len(caricati)} loaded with idANPR, "
      f"{sum(riepilogo.values())} anomalies = expected, per code")
