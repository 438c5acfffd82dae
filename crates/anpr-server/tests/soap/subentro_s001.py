#!/usr/bin/env python3
"""A gestionale sending its subentro files through S001, with a zeep client generated
from the server's own WSDL (`<server>/ws/AnprServiceS001?wsdl`).

Driven by `tests/soap_s001.rs`. Every request and response body is validated against
the published XSD (`crates/anpr-soap/wsdl/S001subentro.xsd`) with xmlschema. Each call
compresses its file (ZIP with the XML inside, gzip, or nothing) and sends it base64 in
`fileXml`.

Usage: subentro_s001.py BASE_URL PLAN_JSON
PLAN_JSON: {"comune": "058091", "tipoInvio": "PRE_SUB", "profili": "OPERATORE_SUBENTRO",
            "chiamate": [{"id": "1", "nomeFile": "APR_058091_001_001.xml.zip",
                          "file": "/path/APR_058091_001_001.xml", "compressione": "zip"}]}
Prints one JSON object: {"validati": N, "risposte": [{"esito", "idOperazioneANPR",
"nomeFile", "descrizione", "errori": [[code, severity, field], ...]}, ...]}.
"""
import datetime
import gzip
import io
import json
import os
import sys
import zipfile

import xmlschema
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin

HERE = os.path.dirname(os.path.abspath(__file__))
XSD = os.path.normpath(os.path.join(HERE, "..", "..", "..", "anpr-soap", "wsdl", "S001subentro.xsd"))
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def comprimi(percorso, modo):
    with open(percorso, "rb") as f:
        dati = f.read()
    if modo == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(os.path.basename(percorso), dati)
        return buf.getvalue()
    if modo == "gzip":
        return gzip.compress(dati)
    return dati


def main():
    base, piano = sys.argv[1], json.loads(sys.argv[2])
    schema = xmlschema.XMLSchema(XSD)
    history = HistoryPlugin()
    client = zeep.Client(f"{base}/ws/AnprServiceS001?wsdl", plugins=[history])
    validati = 0
    risposte = []
    for c in piano["chiamate"]:
        header = etree.Element("{urn:anpr:soap}identitaSviluppo")
        for k, v in (("utente", "BNCLRA70A41H501X"), ("profili", piano["profili"])):
            etree.SubElement(header, k).text = v
        testata = {
            "idOperazioneComune": c["id"],
            "codMittente": piano.get("mittente", piano["comune"]),
            "codDestinatario": "999999",
            "operazioneRichiesta": "S001",
            "dataOraRichiesta": datetime.datetime(2026, 11, 23, 10, 0, 0),
            "tipoOperazione": "C",
            "tipoInvio": piano["tipoInvio"],
            "nomeApplicativo": "gestionale zeep",
        }
        argomenti = {"testataRichiesta": testata, "nomeFile": c["nomeFile"]}
        if c.get("file"):
            argomenti["fileXml"] = comprimi(c["file"], c.get("compressione", "zip"))
        with client.settings(strict=True):
            r = client.service.subentroS001(_soapheaders=[header], **argomenti)
        for env in (history.last_sent["envelope"], history.last_received["envelope"]):
            elemento = env.find(f"{{{SOAP}}}Body")[0]
            try:
                schema.validate(elemento)
            except xmlschema.XMLSchemaValidationError as e:
                xml = etree.tostring(elemento, encoding="unicode")
                sys.exit(f"not valid against S001subentro.xsd: {e.reason} at {e.path}\n{xml}")
            validati += 1
        if r["rispostaOK"] is not None:
            ok = r["rispostaOK"]
            risposte.append({
                "esito": ok["testataRisposta"]["esitoOperazione"],
                "idOperazioneANPR": ok["testataRisposta"]["idOperazioneANPR"],
                "nomeFile": ok["datiDettaglioRisposta"]["nomeFile"],
                "descrizione": ok["datiDettaglioRisposta"]["descrizioneEsito"],
                "errori": [],
            })
        else:
            ko = r["rispostaKO"]
            risposte.append({
                "esito": ko["testataRisposta"]["esitoOperazione"],
                "idOperazioneANPR": ko["testataRisposta"]["idOperazioneANPR"],
                "nomeFile": None,
                "descrizione": None,
                "errori": [
                    [e["codiceErroreAnomalia"], e["tipoErroreAnomalia"], e["campoErroreAnomalia"]]
                    for e in ko["listaErrori"]["errore"]
                ],
            })
    print(json.dumps({"validati": validati, "risposte": risposte}))


if __name__ == "__main__":
    main()
