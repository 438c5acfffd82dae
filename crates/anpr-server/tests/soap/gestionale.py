#!/usr/bin/env python3
"""A gestionale built only from the published WSDLs, pointed at our server.

Driven by `tests/soap.rs` (both storage backends). It generates its SOAP clients with
zeep from `<server>/ws/<service>?wsdl` (so it also proves the served WSDLs and schemas
are usable), runs the registry scenario of the issue's "Done means" and validates every
request and every response body against the published XSDs (the copies under
`crates/anpr-soap/wsdl/`, not the served ones) with xmlschema. It prints one JSON
object with what it observed; the Rust test checks it against the registry over REST.

Usage: gestionale.py BASE_URL SCENARIO   (SCENARIO: registry | table)
Needs: pip install zeep xmlschema (installed by scripts/test).
"""
import base64
import datetime
import json
import os
import sys

import xmlschema
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin

HERE = os.path.dirname(os.path.abspath(__file__))
XSD_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "..", "anpr-soap", "wsdl"))
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"

SCHEMAS = {}


def schema(xsd):
    if xsd not in SCHEMAS:
        SCHEMAS[xsd] = xmlschema.XMLSchema(os.path.join(XSD_DIR, xsd))
    return SCHEMAS[xsd]


class Servizio:
    """One endpoint: a zeep client generated from our WSDL, with message history."""

    def __init__(self, base, nome, xsd):
        self.history = HistoryPlugin()
        self.client = zeep.Client(f"{base}/ws/{nome}?wsdl", plugins=[self.history])
        self.xsd = xsd
        self.validated = 0

    def call(self, operation, **kwargs):
        header = etree.Element("{urn:anpr:soap}identitaSviluppo")
        for k, v in (
            ("utente", "BNCLRA70A41H501X"),
            ("postazione", "PDL-01"),
            ("profili", "OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE"),
        ):
            etree.SubElement(header, k).text = v
        with self.client.settings(raw_response=False, strict=True):
            result = getattr(self.client.service, operation)(_soapheaders=[header], **kwargs)
        self.check("request", self.history.last_sent["envelope"])
        self.check("response", self.history.last_received["envelope"])
        return result

    def check(self, what, envelope):
        body = envelope.find(f"{{{SOAP}}}Body")
        element = body[0]
        try:
            schema(self.xsd).validate(element)
        except xmlschema.XMLSchemaValidationError as e:
            xml = etree.tostring(element, encoding="unicode")
            sys.exit(f"{what} not valid against {self.xsd}: {e.reason} at {e.path}\n{xml}")
        self.validated += 1


def testata(codice, id_comune, decorrenza=None):
    t = {
        "idOperazioneComune": str(id_comune),
        "codMittente": "058091",
        "codDestinatario": "999999",
        "operazioneRichiesta": codice,
        "dataOraRichiesta": datetime.datetime(2026, 11, 23, 10, 0, 0),
        "tipoOperazione": "C",
        "tipoInvio": "TEST",
        "nomeApplicativo": "gestionale zeep",
    }
    if decorrenza:
        t["dataDecorrenza"] = datetime.date.fromisoformat(decorrenza)
    return t


ROMA = {"nomeComune": "ROMA", "codiceIstat": "058091", "siglaProvinciaIstat": "RM"}


def generalita(cognome, nome, sesso, nascita, **extra):
    g = {
        "cognome": cognome,
        "nome": nome,
        "sesso": sesso,
        "dataNascita": datetime.date.fromisoformat(nascita),
        "luogoNascita": {"comune": ROMA},
    }
    g.update(extra)
    return g


def per_ricerca(id_anpr, cognome, nome):
    return {"cognome": cognome, "nome": nome, "idSchedaSoggettoANPR": id_anpr}


def residenza(via, numero, decorrenza):
    return {
        "tipoIndirizzo": "1",
        "indirizzo": {
            "cap": "00184",
            "comune": ROMA,
            "toponimo": {"specie": "VIA", "denominazioneToponimo": via},
            "numeroCivico": {"numero": numero},
        },
        "dataDecorrenzaResidenza": datetime.date.fromisoformat(decorrenza),
    }


def esito(r):
    """(outcome, idOperazioneANPR, [idANPR], [(code, severity)]) of an operation."""
    if r["Risposta_Comune"] is not None:
        rc = r["Risposta_Comune"]
        ids = []
        if rc["listaSoggettiVariati"] is not None:
            ids = [d["identificativi"]["idANPR"] for d in rc["listaSoggettiVariati"]["datiSoggetto"]]
        anomalie = []
        if rc["listaAnomalie"] is not None:
            anomalie = [(a["codiceErroreAnomalia"], a["tipoErroreAnomalia"]) for a in rc["listaAnomalie"]["anomalie"]]
        t = rc["testataRisposta"]
        return t["esitoOperazione"], t["idOperazioneANPR"], ids, anomalie
    ko = r["rispostaKO"]
    errori = [(e["codiceErroreAnomalia"], e["tipoErroreAnomalia"]) for e in ko["listaErrori"]["errore"]]
    return ko["testataRisposta"]["esitoOperazione"], ko["testataRisposta"]["idOperazioneANPR"], [], errori


def iscrizione_1002(s1000, id_comune, cognome, nome, sesso, nascita, legame, famiglia=None):
    fam = {"tipoScheda": "1"}
    if famiglia:
        fam["idFamigliaConvivenzaANPR"] = famiglia
    return s1000.call(
        "iscrizione_altriMotivi",
        testataRichiesta=testata("1002", id_comune, "2020-03-01"),
        motivoIscrizione={"idMotivoIscrizione": "4"},
        generalita1002={"generalita": generalita(cognome, nome, sesso, nascita)},
        cittadinanza=[{"descrizioneStato": "ITALIA", "codiceStato": "100"}],
        provenienza={"localita": {"descrizioneStato": "STATI UNITI D'AMERICA", "codiceStato": "404"}},
        residenza=[residenza("Nazionale", "10", "2020-03-01")],
        famiglia={
            "famiglia": fam,
            "legameSoggetto": {"dataDecorrenza": datetime.date(2020, 3, 1), "codiceLegame": legame},
        },
        datiControllo={"attribuzioneFamiglia": "1"},
    )


def registry(base):
    out = {}
    s1000 = Servizio(base, "AnprService1000", "1000iscrizione.xsd")
    s2000 = Servizio(base, "AnprService2000", "2000cancellazione.xsd")
    s3000 = Servizio(base, "AnprService3000", "3000consultazione.xsd")
    s5000 = Servizio(base, "AnprService5000", "5000mutazione.xsd")

    # 1002: mother and father, each heading a family.
    r = iscrizione_1002(s1000, 1, "Rossi", "Anna", "F", "1980-01-01", "1")
    out["1002"] = esito(r)
    anna = out["1002"][2][0]
    r = iscrizione_1002(s1000, 2, "Bianchi", "Marco", "M", "1978-06-15", "1")
    marco = esito(r)[2][0]
    # Replay of idOperazioneComune 1: the original answer, nothing registered twice.
    out["1002_replay"] = esito(iscrizione_1002(s1000, 1, "Rossi", "Anna", "F", "1980-01-01", "1"))

    # 1001: birth with both parents; the child joins the mother's family.
    r = s1000.call(
        "iscrizione_nascita",
        testataRichiesta=testata("1001", 3),
        generalita1001={"generalita": generalita("Bianchi", "Luca", "M", "2021-05-10")},
        attoNascita={
            "comuneRegistrazione": ROMA,
            "anno": "2021",
            "parte": "1",
            "serie": "A",
            "numeroAtto": "123",
        },
        cittadinanza={"descrizioneStato": "ITALIA", "codiceStato": "100"},
        paternita={"generalita": per_ricerca(marco, "Bianchi", "Marco")},
        maternita={"generalita": per_ricerca(anna, "Rossi", "Anna")},
        datiControllo={"attribuzioneFamiglia": "2"},
    )
    out["1001"] = esito(r)
    luca = out["1001"][2][0]

    # 3002: the child's record.
    r = s3000.call(
        "interrogazioneCittadino_famiglia_convivenza",
        testataRichiesta=testata("3002", 4),
        criteriRicerca={"idSchedaSoggettoANPR": luca},
        datiRichiesta={
            "schedaAnagraficaRichiesta": "1",
            "dataRiferimentoRichiesta": datetime.date(2026, 1, 1),
        },
    )
    ok = r["Risposta3002_OK"]
    sogg = ok["listaSoggetti"]["datiSoggetto"][0]
    out["3002"] = {
        "esito": ok["testataRisposta"]["esitoOperazione"],
        "idANPR": sogg["identificativi"]["idANPR"],
        "cognome": sogg["generalita"]["cognome"],
        "nome": sogg["generalita"]["nome"],
        "codFiscale": sogg["generalita"]["codiceFiscale"]["codFiscale"],
        "luogoNascita": sogg["generalita"]["luogoNascita"]["comune"]["codiceIstat"],
        "via": sogg["residenza"][0]["indirizzo"]["toponimo"]["denominazioneToponimo"],
    }

    # 5005: the mother's family (mother and child) moves.
    r = s5000.call(
        "mutazione_residenza",
        testataRichiesta=testata("5005", 5, "2022-01-10"),
        generalitaSchedaFamiglia={"tipoScheda": "1"},
        residenzaFamiglia=[residenza("Po", "3", "2022-01-10")],
        elencoSoggettiFamiglia=[
            {
                "generalita": per_ricerca(anna, "Rossi", "Anna"),
                "legameSoggetto": {"dataDecorrenza": datetime.date(2022, 1, 10), "codiceLegame": "1"},
            },
            {
                "generalita": per_ricerca(luca, "Bianchi", "Luca"),
                "legameSoggetto": {"dataDecorrenza": datetime.date(2022, 1, 10), "codiceLegame": "3"},
            },
        ],
        datiControllo={"tipoMutazione": "02", "tipoScheda": "1"},
    )
    out["5005"] = esito(r)

    # 5008: the father's first name changes (a warning comes with the success).
    r = s5000.call(
        "mutazione_scheda",
        testataRichiesta=testata("5008", 6, "2023-07-01"),
        generalitaPerRicerca=per_ricerca(marco, "Bianchi", "Marco"),
        generalitaDaModificare={"generalita": {"cognome": "Bianchi", "nome": "Marco Aurelio"}},
        datiControllo={"tipoMutazione": ["01"]},
    )
    out["5008"] = esito(r)

    # 5012: annul that change (the newest operation on the father's record).
    r = s5000.call(
        "annullamento_mutazione",
        testataRichiesta=testata("5012", 7),
        datiOperazioneDaAnnullare={
            "operazioneRichiesta": "5008",
            "idOperazioneComune": "6",
            "idOperazioneANPR": out["5008"][1],
            "noteOperazione": "errore materiale",
        },
        datiSchedaSoggettoFamigliaConvivenza={"soggetto": per_ricerca(marco, "Bianchi", "Marco")},
        datiControllo={"tipoScheda": "1", "annullamentoAttribuzioneCF": "N"},
    )
    out["5012"] = esito(r)

    # 2001: the father's death (he heads a family of one).
    r = s2000.call(
        "decesso",
        testataRichiesta=testata("2001", 8, "2024-02-01"),
        motivoCancellazione={"tipoMotivoCancellazione": "1"},
        generalitaPerRicerca=per_ricerca(marco, "Bianchi", "Marco"),
        datiDecesso={"dataEvento": datetime.date(2024, 2, 1), "luogoEvento": {"comune": ROMA}},
        datiControllo={"ruoloSoggetto": "1"},
    )
    out["2001"] = esito(r)

    # 1013: a registration made by mistake, annulled.
    r = iscrizione_1002(s1000, 9, "Verdi", "Carla", "F", "1990-09-09", "1")
    carla = esito(r)
    r = s1000.call(
        "annullamento_iscrizione",
        testataRichiesta=testata("1013", 10),
        datiOperazione={
            "operazioneRichiesta": "1002",
            "idOperazioneComune": "9",
            "idOperazioneANPR": carla[1],
        },
        datiSchedaSoggettoFamigliaConvivenza={"soggetto": per_ricerca(carla[2][0], "Verdi", "Carla")},
        datiControllo={"tiposcheda": "1", "annullamentoAttribuzione": "N"},
    )
    out["1013"] = esito(r)
    out["carla"] = carla[2][0]

    # A refusal: a birth place not in the tables never reaches the registry.
    r = s1000.call(
        "iscrizione_altriMotivi",
        testataRichiesta=testata("1002", 11, "2020-03-01"),
        motivoIscrizione={"idMotivoIscrizione": "4"},
        generalita1002={
            "generalita": {
                "cognome": "Neri",
                "nome": "Ugo",
                "sesso": "M",
                "dataNascita": datetime.date(1970, 1, 1),
                "luogoNascita": {"localita": {"descrizioneStato": "ATLANTIDE", "codiceStato": "999"}},
            }
        },
        cittadinanza=[{"descrizioneStato": "ITALIA", "codiceStato": "100"}],
        residenza=[residenza("Nazionale", "10", "2020-03-01")],
        famiglia={
            "famiglia": {"tipoScheda": "1"},
            "legameSoggetto": {"dataDecorrenza": datetime.date(2020, 3, 1), "codiceLegame": "1"},
        },
        datiControllo={"attribuzioneFamiglia": "1"},
    )
    out["1002_ko"] = esito(r)

    out["ids"] = {"anna": anna, "marco": marco, "luca": luca}
    out["validati"] = s1000.validated + s2000.validated + s3000.validated + s5000.validated
    return out


def table(base):
    s = Servizio(base, "AnprService7001", "7001scaricoTabelle.xsd")
    r = s.call(
        "scarica_tabelle",
        testataRichiesta=testata("7001", 1),
        datiRichiesta={"idTabella": "001"},
    )
    ok = r["RispostaMultipla7001"]
    files = ok["datiDettaglioRisposta"]["xmlFile"]
    data = files[0] if isinstance(files, list) else files
    if isinstance(data, str):
        data = base64.b64decode(data)
    doc = etree.fromstring(data)
    return {
        "esito": ok["testataRisposta"]["esitoOperazione"],
        "idTabella": ok["datiDettaglioRisposta"]["idTabella"],
        "tabella": doc.get("nome"),
        "righe": len(doc.findall("riga")),
        "codici": [r.findtext("codice") for r in doc.findall("riga")],
        "validati": s.validated,
    }


def main():
    base, scenario = sys.argv[1], sys.argv[2]
    result = {"registry": registry, "table": table}[scenario](base)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
