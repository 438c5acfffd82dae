#!/usr/bin/env python3
"""A gestionale built only from the published WSDLs, pointed at our server.

Driven by `tests/soap.rs` (both storage backends). It generates its SOAP clients with
zeep from `<server>/ws/<service>?wsdl` (so it also proves the served WSDLs and schemas
are usable), runs the registry scenario of the issue's "Done means" and validates every
request and every response body against the published XSDs (the copies under
`crates/anpr-soap/wsdl/`, not the served ones) with xmlschema. It prints one JSON
object with what it observed; the Rust test checks it against the registry over REST.

Usage: gestionale.py BASE_URL SCENARIO   (SCENARIO: registry | table | all | unavailable |
civil_status | groups | record | services | bodies | consulates | requests)
Needs: pip install zeep xmlschema (installed by scripts/test).
"""
import base64
import datetime
import json
import os
import sys

import xmlschema
import zeep
import zeep.helpers
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

    def __init__(self, base, nome, xsd, profili="OPERATORE_ANAGRAFE,OPERATORE_CONSULTAZIONE", utente="BNCLRA70A41H501X"):
        self.profili = profili
        self.utente = utente
        self.history = HistoryPlugin()
        self.client = zeep.Client(f"{base}/ws/{nome}?wsdl", plugins=[self.history])
        self.xsd = xsd
        self.validated = 0
        self.calls = 0

    def call(self, operation, **kwargs):
        # profili None: a message without any identity (anonymous).
        headers = []
        if self.profili is not None:
            header = etree.Element("{urn:anpr:soap}identitaSviluppo")
            for k, v in (
                ("utente", self.utente),
                ("postazione", "PDL-01"),
                ("profili", self.profili),
            ):
                etree.SubElement(header, k).text = v
            headers.append(header)
        with self.client.settings(raw_response=False, strict=True):
            result = getattr(self.client.service, operation)(_soapheaders=headers, **kwargs)
        self.calls += 1
        self.check("request", self.history.last_sent["envelope"])
        self.check("response", self.history.last_received["envelope"])
        dump = os.environ.get("ANPR_SOAP_DUMP")
        if dump:
            # For documentation: the exact messages of each call, indented.
            with open(dump, "a", encoding="utf-8") as f:
                for k in ("last_sent", "last_received"):
                    env = getattr(self.history, k)["envelope"]
                    f.write(etree.tostring(env, pretty_print=True, encoding="unicode") + "\n")
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

ESTERO_NY = {
    "tipoIndirizzo": "1",
    "localitaEstera": {
        "indirizzoEstero": {
            "cap": "10065",
            "localita": {"descrizioneLocalita": "NEW YORK", "descrizioneStato": "STATI UNITI", "codiceStato": "404"},
            "toponimo": {"denominazione": "Park Avenue", "numeroCivico": "690"},
        },
        "consolato": {"codiceConsolato": "2810703", "descrizioneConsolato": "NEW YORK"},
    },
}


def tutte(base):
    """One call of every other operation of the WSDLs the release wires (and of those
    it does not): each answer XSD-valid, its outcome and codes reported."""
    s = {
        n: Servizio(base, f"AnprService{n}", x)
        for n, x in (
            ("1000", "1000iscrizione.xsd"),
            ("2000", "2000cancellazione.xsd"),
            ("3000", "3000consultazione.xsd"),
            ("5000", "5000mutazione.xsd"),
            ("7001", "7001scaricoTabelle.xsd"),
            ("A000", "A000aire.xsd"),
        )
    }
    out = {}
    d = datetime.date.fromisoformat

    def esito_generico(r):
        for k, v in zeep.helpers.serialize_object(r).items():
            if v is None:
                continue
            if k == "rispostaKO":
                return [v["testataRisposta"]["esitoOperazione"], [e["codiceErroreAnomalia"] for e in v["listaErrori"]["errore"]]]
            if k == "Risposta_Comune":
                e = esito(r)
                return [e[0], [a[0] for a in e[3]]]
            return [v["testataRisposta"]["esitoOperazione"], []]
        return ["?", []]

    # Two residents: Giulia heads a family, Pietro heads another.
    giulia = esito(iscrizione_1002(s["1000"], 100, "Galli", "Giulia", "F", "1985-02-02", "1"))[2][0]
    pietro = esito(iscrizione_1002(s["1000"], 101, "Conti", "Pietro", "M", "1984-04-04", "1"))[2][0]

    # 3001: Giulia's family is found through the mother lookup.
    r = s["3000"].call(
        "richiesta_paternita_maternita",
        testataRichiesta=testata("3001", 102),
        maternita={"generalita": per_ricerca(giulia, "Galli", "Giulia")},
        datiControlli={"pPadre": "0", "pCodiceFiscalePadre": "0", "pMadre": "1", "pCognomeMadre": "1", "pCodiceFiscaleMadre": "0"},
    )
    madri = r["Risposta3001_OK"]["elencoSoggettiMadre"]
    out["3001"] = [r["Risposta3001_OK"]["testataRisposta"]["esitoOperazione"], [len(madri)]]
    fam_giulia = madri[0]["famiglia"]["idFamigliaConvivenzaANPR"]

    # 5001: Pietro joins Giulia's family as her partner (merge).
    r = s["5000"].call(
        "mutazione_famiglia_convivenza",
        testataRichiesta=testata("5001", 103, "2021-01-01"),
        famigliaConvivenza={"idFamigliaConvivenzaANPR": fam_giulia, "tipoScheda": "1"},
        elencoSoggettiFamiglia=[{
            "generalita": per_ricerca(pietro, "Conti", "Pietro"),
            "legameSoggetto": {"dataDecorrenza": d("2021-01-01"), "codiceLegame": "2"},
        }],
        datiControllo={"tipoMutazione": "2", "tipoScheda": "1"},
    )
    out["5001"] = esito_generico(r)

    # 5014: rectification of Giulia's residence date.
    r = s["5000"].call(
        "rettifica_dati",
        testataRichiesta=testata("5014", 104),
        generalitaPerRicerca=per_ricerca(giulia, "Galli", "Giulia"),
        tipoRettifica={"richiestaRettifica101": {"dataDecorrenzaResidenza": d("2020-04-01")}},
    )
    out["5014"] = esito_generico(r)

    # 5013: revocation of a residence permit she never had: refused, coded.
    r = s["5000"].call(
        "revoca_dato",
        testataRichiesta=testata("5013", 105, "2021-06-01"),
        schedaSoggetto={"generalitaPerRicerca": per_ricerca(giulia, "Galli", "Giulia")},
        motivoAnnullamento={"motivoRevoca": "1"},
        datiControllo={"tipoRevoca": "03"},
    )
    out["5013"] = esito_generico(r)

    # 1014: a proceeding opened.
    r = s["1000"].call(
        "procedimento_amministrativo",
        testataRichiesta=testata("1014", 106),
        procedimentoIstruttoria={
            "numeroPraticaComune": "PR 1",
            "tipoOperazione": "I",
            "motivoAvvio": "5",
            "dataStato": d("2022-03-01"),
            "statoProcedimento": "1",
        },
    )
    out["1014"] = esito_generico(r)

    # 1010: a cohabitation record (the head is not recorded with it: warning).
    r = s["1000"].call(
        "iscrizione_schedaConvivenza",
        testataRichiesta=testata("1010", 107, "2022-04-01"),
        generalitaSchedaConvivenza={"denominazioneConvivenza": "Convento San Marco", "specieConvivenza": "1", "tipoScheda": "2"},
        tutoreIntestatario={"generalita": {"cognome": "Rossi", "nome": "Padre"}, "dataIntestarioConvivenza": d("2022-04-01")},
        residenzaConvivneza=residenza("Aurelia", "5", "2022-04-01"),
        datiControllo={},
    )
    out["1010"] = esito_generico(r)

    # 2009: archiving a cohabitation that does not exist: refused, coded.
    r = s["2000"].call(
        "cancellazione_Archiviazione_Scheda_Convivenza",
        testataRichiesta=testata("2009", 108),
        estremiSchedaConvivenza={"idFamigliaConvivenzaANPR": "999999", "tipoScheda": "2"},
        datiArchiviazione={"dataDecorrenzaArchiviazione": d("2022-05-01")},
        datiControllo={},
    )
    out["2009"] = esito_generico(r)

    # A002: registration in AIRE of an Italian living in New York.
    r = s["A000"].call(
        "AIRE_iscrizione_altriMotivi",
        testataRichiesta=testata("A002", 109, "2022-06-01"),
        generalitaA002={"generalita": generalita("Marino", "Elena", "F", "1970-07-07", annoEspatrio="1999")},
        famiglia={
            "famiglia": {"tipoScheda": "1"},
            "legameSoggetto": {"dataDecorrenza": d("2022-06-01"), "codiceLegame": "1"},
        },
        iscrizioneAire={"motivoIscrizione": "C01", "iniziativaIscrizione": "1", "individuazioneComuneIscrizione": "1"},
        residenzaEstera=ESTERO_NY,
        datiControllo={"attribuzioneFamigliaAIRE": "1"},
    )
    out["A002"] = esito_generico(r)
    elena = esito(r)[2][0] if r["Risposta_Comune"] is not None else None

    # A006: her AIRE data change (initiative).
    r = s["A000"].call(
        "AIRE_mutazione",
        testataRichiesta=testata("A006", 110, "2023-01-01"),
        generalita=per_ricerca(elena or "1", "Marino", "Elena"),
        famiglia={"tipoScheda": "1"},
        iscrizioneAire={"motivoIscrizione": "C01", "iniziativaIscrizione": "2", "individuazioneComuneIscrizione": "1"},
        residenzaEstera=ESTERO_NY,
        datiControllo={"tipoMutazione": "1", "attribuzioneFamigliaAIRE": "1"},
    )
    out["A006"] = esito_generico(r)

    # A001: AIRE birth of her son in New York, in her AIRE family (found with 3001).
    r = s["3000"].call(
        "richiesta_paternita_maternita",
        testataRichiesta=testata("3001", 118),
        maternita={"generalita": per_ricerca(elena or "1", "Marino", "Elena")},
        datiControlli={"pPadre": "0", "pCodiceFiscalePadre": "0", "pMadre": "1", "pCognomeMadre": "1", "pCodiceFiscaleMadre": "0"},
    )
    madri = r["Risposta3001_OK"]["elencoSoggettiMadre"]
    fam_elena = madri[0]["famiglia"]["idFamigliaConvivenzaANPR"] if madri else "1"
    r = s["A000"].call(
        "AIRE_iscrizione_nascita",
        testataRichiesta=testata("A001", 111, "2023-02-02"),
        generalitaA001={"generalita": {
            "cognome": "Marino", "nome": "Tommaso", "sesso": "M", "dataNascita": d("2023-02-02"),
            "luogoNascita": {"localita": {"descrizioneStato": "STATI UNITI", "codiceStato": "404"}},
        }},
        attoNascita={"comuneRegistrazione": ROMA, "anno": "2023", "parte": "2", "numeroAtto": "77"},
        maternita={"generalita": per_ricerca(elena or "1", "Marino", "Elena")},
        famiglia={"idFamigliaConvivenzaANPR": fam_elena, "tipoScheda": "1"},
        legameSoggetto={"dataDecorrenza": d("2023-02-02"), "codiceLegame": "3"},
        iscrizioneAire={"motivoIscrizione": "C02", "iniziativaIscrizione": "3", "individuazioneComuneIscrizione": "1"},
        residenzaEstera=ESTERO_NY,
        datiControllo={"attribuzioneFamigliaAIRE": "1"},
    )
    out["A001"] = esito_generico(r)

    # 2003: Pietro emigrates abroad (removal, reason 5? see table): coded outcome.
    r = s["2000"].call(
        "cancellazione_AltriMotivi",
        testataRichiesta=testata("2003", 112),
        datiCancellazione={"motivoCancellazione": "4", "dataDecorrenzaCancellazione": d("2024-01-01")},
        generalitaPerRicerca=per_ricerca(pietro, "Conti", "Pietro"),
        destinazione={"localita": {"descrizioneStato": "FRANCIA", "codiceStato": "215"}},
        datiControllo={"ruoloSoggetto": "1"},
    )
    out["2003"] = esito_generico(r)

    # 2011: annul that removal.
    if r["Risposta_Comune"] is not None:
        r = s["2000"].call(
            "annullamento_Cancellazione",
            testataRichiesta=testata("2011", 113),
            datiOperazioneDaAnnullare={
                "operazioneRichiesta": "2003",
                "idOperazioneComune": "112",
                "idOperazioneANPR": r["Risposta_Comune"]["testataRisposta"]["idOperazioneANPR"],
            },
            datiSchedaSoggettoFamigliaConvivenza={"soggetto": per_ricerca(pietro, "Conti", "Pietro")},
            datiControllo={"tipoScheda": "1"},
        )
        out["2011"] = esito_generico(r)

    # 3006: the same consultation for public bodies.
    r = s["3000"].call(
        "interrogazioneCittadino_enti",
        testataRichiesta=testata("3006", 114),
        criteriRicerca={"idSchedaSoggettoANPR": giulia},
        datiRichiesta={
            "schedaAnagraficaRichiesta": "1",
            "dataRiferimentoRichiesta": d("2026-01-01"),
            "motivoRichiesta": "verifica residenza",
        },
    )
    out["3006"] = esito_generico(r)

    # 7003; 7002 of a request that does not exist (EV404); 2012 without a use case in
    # this release (EV100); all XSD-valid.
    r = s["7001"].call("elenco_versioni", testataRichiesta=testata("7003", 115), datiRichiesta={})
    out["7003"] = esito_generico(r)
    r = s["7001"].call("download_file", testataRichiesta=testata("7002", 116), datiRichiesta={"idOperazioneANPR": "1"})
    out["7002"] = esito_generico(r)
    r = s["2000"].call("cancellazione_sezione", testataRichiesta=testata("2012", 117), datiSezione={"comune": ROMA, "sezioneelettoralenum": "1"})
    out["2012"] = esito_generico(r)

    out["ids"] = {"giulia": giulia, "pietro": pietro, "elena": elena, "famiglia_giulia": fam_giulia}
    out["validati"] = sum(x.validated for x in s.values())
    return out


def esito_di(r):
    """[outcome, [codes]] of any answer (Risposta_Comune, rispostaKO, NNNN_OK)."""
    for k, v in zeep.helpers.serialize_object(r).items():
        if v is None or k == "tipoMutazione":
            continue
        if k in ("rispostaKO", "Risposta6001KO"):
            errori = v["listaErrori"]["errore"] if "errore" in v["listaErrori"] else v["listaErrori"]
            return [v["testataRisposta"]["esitoOperazione"], [e["codiceErroreAnomalia"] for e in errori]]
        if k == "Risposta_Comune":
            anomalie = v["listaAnomalie"]["anomalie"] if v["listaAnomalie"] is not None else []
            return [v["testataRisposta"]["esitoOperazione"], [a["codiceErroreAnomalia"] for a in anomalie]]
        return [v["testataRisposta"]["esitoOperazione"], []]
    return ["?", []]


def campi(r):
    """The (code, field) pairs of an answer's anomalies or errors."""
    out = []
    for k, v in zeep.helpers.serialize_object(r).items():
        if v is None:
            continue
        if k == "rispostaKO":
            out += [(e["codiceErroreAnomalia"], e["campoErroreAnomalia"]) for e in v["listaErrori"]["errore"]]
        if k == "Risposta_Comune" and v["listaAnomalie"] is not None:
            out += [(a["codiceErroreAnomalia"], a["campoErroreAnomalia"]) for a in v["listaAnomalie"]["anomalie"]]
    return out


ATTO = {"comuneRegistrazione": ROMA, "anno": "2000", "parte": "2", "serie": "A", "numeroAtto": "45"}


def stato_civile(base):
    """Civil-status events over SOAP: 5008 marriage, civil union and its dissolution,
    de facto cohabitation and its end, widowhood, residence permit and other data,
    datiDelProcedimento; 5021 polygamy (second marriage, divorce, annulment, refusal)."""
    s1000 = Servizio(base, "AnprService1000", "1000iscrizione.xsd")
    s5000 = Servizio(base, "AnprService5000", "5000mutazione.xsd")
    d = datetime.date.fromisoformat
    out = {}
    ids = {}
    for i, (chi, cognome, nome, sesso) in enumerate(
        [("karim", "Haddad", "Karim", "M"), ("leila", "Saleh", "Leila", "F"), ("omar", "Nasser", "Omar", "M"), ("sara", "Costa", "Sara", "F")]
    ):
        ids[chi] = esito(iscrizione_1002(s1000, 200 + i, cognome, nome, sesso, "1970-01-01", "1"))[2][0]

    def p(chi, cognome, nome):
        return per_ricerca(ids[chi], cognome, nome)

    def mutazione(id_comune, decorrenza, tipi, **kw):
        return s5000.call(
            "mutazione_scheda",
            testataRichiesta=testata("5008", id_comune, decorrenza),
            datiControllo={"tipoMutazione": tipi},
            **kw,
        )

    # 5008 marriage of two registered people: recorded on both records. (Every change
    # is dated after the registrations' 2020-03-01: a section's history only grows.)
    r = mutazione(
        210, "2020-04-01", ["12"],
        generalitaPerRicerca=p("karim", "Haddad", "Karim"),
        matrimonio={
            "coniuge": p("leila", "Saleh", "Leila"),
            "datiMatrimonio": {"dataEvento": d("2000-05-01"), "luogoEvento": {"comune": ROMA}, "attoEvento": ATTO},
        },
    )
    out["5008_matrimonio"] = esito_di(r)

    # 5021 type 01: Karim's second marriage, with a spouse outside the registry whose
    # birth data and the marriage order are not kept (EV105 warnings, outcome 6).
    nadia = {"cognome": "Amrani", "nome": "Nadia", "sesso": "F", "dataNascita": d("1980-02-02")}
    r = s5000.call(
        "gestione_poligamia",
        testataRichiesta=testata("5021", 211, "2021-01-01"),
        matrimonioPerRicerca={"coniuge1": p("karim", "Haddad", "Karim")},
        matrimonio={"coniuge": nadia, "datiMatrimonio": {"dataEvento": d("2005-06-01"), "luogoEvento": {"localita": {"descrizioneStato": "MAROCCO", "codiceStato": "436"}}}, "ordineMatrimonio": "2"},
        datiControllo={"tipoMutazione": ["01"]},
    )
    out["5021_01"] = esito_di(r) + [r["tipoMutazione"], sorted(str(c) for _, c in campi(r))]

    # 5021 type 03: divorce from Nadia, dated by the ruling's effective date.
    r = s5000.call(
        "gestione_poligamia",
        testataRichiesta=testata("5021", 212, "2021-06-01"),
        matrimonioPerRicerca={"coniuge1": p("karim", "Haddad", "Karim"), "coniuge2": {"cognome": "Amrani", "nome": "Nadia"}},
        separazioneAnnullamentoCessazioneMatrimonio={
            "tipoCessazione": "3",
            "sentenza": {"data": d("2021-05-01"), "tipoTribunale": "1", "autorita": "Tribunale di Roma", "dataValidita": d("2021-05-15")},
        },
        datiControllo={"tipoMutazione": ["03"]},
    )
    out["5021_03"] = esito_di(r) + [r["tipoMutazione"]]
    divorzio = r["Risposta_Comune"]["testataRisposta"]["idOperazioneANPR"] if r["Risposta_Comune"] is not None else "0"

    # 5021 type 07: annul that divorce.
    r = s5000.call(
        "gestione_poligamia",
        testataRichiesta=testata("5021", 213),
        matrimonioPerRicerca={"coniuge1": p("karim", "Haddad", "Karim")},
        datiControllo={"tipoMutazione": ["07"]},
        datiAnnullamento={"idOperazioneANPR": divorzio},
    )
    out["5021_07"] = esito_di(r) + [r["tipoMutazione"]]

    # 5021 refused: Omar has no first marriage (EV046), the type is echoed.
    r = s5000.call(
        "gestione_poligamia",
        testataRichiesta=testata("5021", 214, "2021-01-01"),
        matrimonioPerRicerca={"coniuge1": p("omar", "Nasser", "Omar")},
        matrimonio={"coniuge": {"cognome": "Farah", "nome": "Mina"}, "datiMatrimonio": {"dataEvento": d("2020-06-01")}},
        datiControllo={"tipoMutazione": ["01"]},
    )
    out["5021_ko"] = esito_di(r) + [r["tipoMutazione"], campi(r)[0]]

    # 5008 residence permit and other data of Omar.
    r = mutazione(
        215, "2021-02-01", ["04", "07"],
        generalitaPerRicerca=p("omar", "Nasser", "Omar"),
        permessoSoggiorno={"numeroSoggiorno": "RM1234567", "tipoSoggiorno": "2", "dataRilascio": d("2020-01-10"), "dataScadenza": d("2030-01-10"), "questuraRilascioSoggiorno": "ROMA"},
        altriDati={"posizioneProfessionale": "2", "titoloStudio": "3"},
    )
    out["5008_permesso"] = esito_di(r)

    # 5008 civil union of Omar, then its dissolution.
    luca = {"cognome": "Neri", "nome": "Luca"}
    r = mutazione(
        216, "2021-03-01", ["18"],
        generalitaPerRicerca=p("omar", "Nasser", "Omar"),
        unioneCivile={"unitoCivilmente": luca, "attoUnione": {"dataEvento": d("2021-02-20"), "luogoEvento": {"comune": ROMA}}},
    )
    out["5008_unione"] = esito_di(r)
    r = mutazione(
        217, "2022-03-01", ["19"],
        generalitaPerRicerca=p("omar", "Nasser", "Omar"),
        unioneCivile={"unitoCivilmente": luca, "scioglimentoUnione": {"motivoScioglimento": "1", "datiEvento": {"dataEvento": d("2022-02-01")}}},
    )
    out["5008_scioglimento"] = esito_di(r)

    # 5008 Sara: marriage with someone outside the registry, widowhood, then a
    # registered de facto cohabitation contract and its end.
    r = mutazione(
        218, "2020-04-01", ["12"],
        generalitaPerRicerca=p("sara", "Costa", "Sara"),
        matrimonio={"coniuge": {"cognome": "Gialli", "nome": "Paolo"}, "datiMatrimonio": {"dataEvento": d("2009-09-09")}},
    )
    out["5008_matrimonio_esterno"] = esito_di(r)
    r = mutazione(
        219, "2020-05-01", ["13"],
        generalitaPerRicerca=p("sara", "Costa", "Sara"),
        vedovanza={"datiMorteconiuge": {"dataEvento": d("2014-12-01"), "luogoEvento": {"comune": ROMA}}},
    )
    out["5008_vedovanza"] = esito_di(r)
    r = mutazione(
        220, "2020-06-01", ["16"],
        generalitaPerRicerca=p("sara", "Costa", "Sara"),
        convivenzaDiFatto={"convivente": p("omar", "Nasser", "Omar"), "contrattoStipula": {"data": d("2015-12-01"), "protocollo": "P-1"}},
    )
    out["5008_convivenza"] = esito_di(r)
    r = mutazione(
        221, "2020-07-01", ["17"],
        generalitaPerRicerca=p("sara", "Costa", "Sara"),
        convivenzaDiFatto={"convivente": p("omar", "Nasser", "Omar"), "contrattoRisoluzione": {"motivoRisoluzione": 31, "contratto": {"data": d("2016-11-30")}}},
    )
    out["5008_risoluzione"] = esito_di(r)

    # Proceedings: datiDelProcedimento reaches the use case (an unknown number is refused).
    r = mutazione(
        222, "2020-08-01", ["07"],
        generalitaPerRicerca=p("sara", "Costa", "Sara"),
        altriDati={"titoloStudio": "4"},
        datiDelProcedimento={"numeroPraticaComune": "NON-ESISTE"},
    )
    out["5008_procedimento"] = esito_di(r)

    # A date without day would be stored as complete: refused, the element named.
    r = mutazione(
        223, "2022-04-01", ["12"],
        generalitaPerRicerca=p("omar", "Nasser", "Omar"),
        matrimonio={"coniuge": {"cognome": "Farah", "nome": "Mina"}, "datiMatrimonio": {"dataEvento": d("2016-06-01"), "senzaGiorno": "1"}},
    )
    out["5008_senza_giorno"] = esito_di(r) + [campi(r)[0]]

    out["ids"] = ids
    out["validati"] = s1000.validated + s5000.validated
    return out


def madre_famiglia(s3000, id_comune, id_anpr, cognome, nome):
    """The family of a woman, found with the 3001 mother lookup."""
    r = s3000.call(
        "richiesta_paternita_maternita",
        testataRichiesta=testata("3001", id_comune),
        maternita={"generalita": per_ricerca(id_anpr, cognome, nome)},
        datiControlli={"pPadre": "0", "pCodiceFiscalePadre": "0", "pMadre": "1", "pCognomeMadre": "1", "pCodiceFiscaleMadre": "0"},
    )
    return r["Risposta3001_OK"]["elencoSoggettiMadre"][0]["famiglia"]["idFamigliaConvivenzaANPR"]


def gruppi(base):
    """Data groups beyond the registry scenario: 5001 family split, A006 for the whole
    AIRE family, 2003 reasons the XSD cannot carry, elements still refused (EV105)."""
    s1000 = Servizio(base, "AnprService1000", "1000iscrizione.xsd")
    s2000 = Servizio(base, "AnprService2000", "2000cancellazione.xsd")
    s3000 = Servizio(base, "AnprService3000", "3000consultazione.xsd")
    s5000 = Servizio(base, "AnprService5000", "5000mutazione.xsd")
    sA000 = Servizio(base, "AnprServiceA000", "A000aire.xsd")
    d = datetime.date.fromisoformat
    out = {}
    # Marta heads a family; Giorgio (partner) and Piero (son) join it.
    marta = esito(iscrizione_1002(s1000, 300, "Rinaldi", "Marta", "F", "1975-03-03", "1"))[2][0]
    fam = madre_famiglia(s3000, 301, marta, "Rinaldi", "Marta")
    giorgio = esito(iscrizione_1002(s1000, 302, "Fabbri", "Giorgio", "M", "1973-01-01", "2", fam))[2][0]
    piero = esito(iscrizione_1002(s1000, 303, "Fabbri", "Piero", "M", "2001-01-01", "3", fam))[2][0]

    # 5001 split (tipoMovimentazione 5): Giorgio and Piero leave, Giorgio heads the new family.
    r = s5000.call(
        "mutazione_famiglia_convivenza",
        testataRichiesta=testata("5001", 304, "2021-05-01"),
        famigliaConvivenza={"idFamigliaConvivenzaANPR": fam, "tipoMovimentazione": "5", "tipoScheda": "1"},
        elencoSoggettiFamiglia=[
            {"generalita": per_ricerca(giorgio, "Fabbri", "Giorgio"), "legameSoggetto": {"dataDecorrenza": d("2021-05-01"), "codiceLegame": "1"}},
            {"generalita": per_ricerca(piero, "Fabbri", "Piero"), "legameSoggetto": {"dataDecorrenza": d("2021-05-01"), "codiceLegame": "3"}},
        ],
        datiControllo={"tipoMutazione": "2", "tipoScheda": "1"},
    )
    out["5001_scissione"] = esito_di(r)

    # AIRE: Elena (A002) heads an AIRE family, her son Tommaso (A001) joins it.
    r = sA000.call(
        "AIRE_iscrizione_altriMotivi",
        testataRichiesta=testata("A002", 305, "2022-06-01"),
        generalitaA002={"generalita": generalita("Marino", "Elena", "F", "1970-07-07", annoEspatrio="1999")},
        famiglia={"famiglia": {"tipoScheda": "1"}, "legameSoggetto": {"dataDecorrenza": d("2022-06-01"), "codiceLegame": "1"}},
        iscrizioneAire={"motivoIscrizione": "C01", "iniziativaIscrizione": "1", "individuazioneComuneIscrizione": "1"},
        residenzaEstera=ESTERO_NY,
        datiControllo={"attribuzioneFamigliaAIRE": "1"},
    )
    elena = esito(r)[2][0]
    fam_elena = madre_famiglia(s3000, 306, elena, "Marino", "Elena")
    r = sA000.call(
        "AIRE_iscrizione_nascita",
        testataRichiesta=testata("A001", 307, "2023-02-02"),
        generalitaA001={"generalita": {
            "cognome": "Marino", "nome": "Tommaso", "sesso": "M", "dataNascita": d("2023-02-02"),
            "luogoNascita": {"localita": {"descrizioneStato": "STATI UNITI", "codiceStato": "404"}},
        }},
        attoNascita={"comuneRegistrazione": ROMA, "anno": "2023", "parte": "2", "numeroAtto": "77"},
        maternita={"generalita": per_ricerca(elena, "Marino", "Elena")},
        famiglia={"idFamigliaConvivenzaANPR": fam_elena, "tipoScheda": "1"},
        legameSoggetto={"dataDecorrenza": d("2023-02-02"), "codiceLegame": "3"},
        iscrizioneAire={"motivoIscrizione": "C02", "iniziativaIscrizione": "3", "individuazioneComuneIscrizione": "1"},
        residenzaEstera=ESTERO_NY,
        datiControllo={"attribuzioneFamigliaAIRE": "1"},
    )
    tommaso = esito(r)[2][0]
    boston = {
        "tipoIndirizzo": "1",
        "localitaEstera": {
            "indirizzoEstero": {
                "cap": "02108",
                "localita": {"descrizioneLocalita": "BOSTON", "descrizioneStato": "STATI UNITI", "codiceStato": "404"},
                "toponimo": {"denominazione": "Beacon Street", "numeroCivico": "1"},
            },
            "consolato": {"codiceConsolato": "2810203", "descrizioneConsolato": "BOSTON"},
        },
    }

    def a006(id_comune, famiglia):
        return sA000.call(
            "AIRE_mutazione",
            testataRichiesta=testata("A006", id_comune, "2024-01-01"),
            generalita=per_ricerca(elena, "Marino", "Elena"),
            famiglia=famiglia,
            residenzaEstera=boston,
            datiControllo={"tipoMutazione": "1", "attribuzioneFamigliaAIRE": "1"},
        )

    # Naming another family: refused (EF002); naming hers: the whole family moves.
    out["A006_altra_famiglia"] = esito_di(a006(308, {"idFamigliaConvivenzaANPR": fam, "tipoScheda": "1"}))
    out["A006_famiglia"] = esito_di(a006(309, {"idFamigliaConvivenzaANPR": fam_elena, "tipoScheda": "1"}))

    # 2003 reasons whose data Richiesta2003 has no element for: EV117.
    for motivo in ("8", "10"):
        r = s2000.call(
            "cancellazione_AltriMotivi",
            testataRichiesta=testata("2003", 310 + int(motivo)),
            datiCancellazione={"motivoCancellazione": motivo, "dataDecorrenzaCancellazione": d("2024-01-01")},
            generalitaPerRicerca=per_ricerca(marta, "Rinaldi", "Marta"),
            datiControllo={"ruoloSoggetto": "1"},
        )
        out["2003_" + motivo] = esito_di(r) + [campi(r)[0]]

    # Elements the service layer cannot record yet: EV105 naming the element.
    r = s5000.call(
        "mutazione_scheda",
        testataRichiesta=testata("5008", 330, "2024-01-01"),
        generalitaPerRicerca=per_ricerca(marta, "Rinaldi", "Marta"),
        cartaIdentita={"numero": "CA12345AB", "dataRilascio": d("2022-01-01"), "interdizioneEspatrio": "N", "comuneRilascio": ROMA},
        datiControllo={"tipoMutazione": ["03"]},
    )
    out["5008_carta"] = esito_di(r) + [campi(r)[0]]

    out["ids"] = {"marta": marta, "giorgio": giorgio, "piero": piero, "famiglia": fam, "elena": elena, "tommaso": tommaso, "famiglia_elena": fam_elena}
    out["validati"] = sum(x.validated for x in (s1000, s2000, s3000, s5000, sA000))
    return out


def scheda(base):
    """3002/3006 answers with the whole record: every data group the registry holds,
    as at dataRiferimentoRichiesta, restricted to datiAnagraficiRichiesti; the whole
    family with schedaAnagraficaRichiesta 2; polygamous marriages; AIRE residence."""
    s1000 = Servizio(base, "AnprService1000", "1000iscrizione.xsd")
    s3000 = Servizio(base, "AnprService3000", "3000consultazione.xsd")
    s5000 = Servizio(base, "AnprService5000", "5000mutazione.xsd")
    sA000 = Servizio(base, "AnprServiceA000", "A000aire.xsd")
    d = datetime.date.fromisoformat
    anna = esito(iscrizione_1002(s1000, 400, "Rossi", "Anna", "F", "1980-01-01", "1"))[2][0]
    fam = madre_famiglia(s3000, 401, anna, "Rossi", "Anna")
    marco = esito(iscrizione_1002(s1000, 402, "Bianchi", "Marco", "M", "1978-06-15", "2", fam))[2][0]
    r = s1000.call(
        "iscrizione_nascita",
        testataRichiesta=testata("1001", 403),
        generalita1001={"generalita": generalita("Bianchi", "Luca", "M", "2021-05-10")},
        attoNascita={"comuneRegistrazione": ROMA, "anno": "2021", "parte": "1", "serie": "A", "numeroAtto": "123"},
        cittadinanza={"descrizioneStato": "ITALIA", "codiceStato": "100"},
        paternita={"generalita": per_ricerca(marco, "Bianchi", "Marco")},
        maternita={"generalita": per_ricerca(anna, "Rossi", "Anna")},
        datiControllo={"attribuzioneFamiglia": "2"},
    )
    luca = esito(r)[2][0]
    s5000.call(
        "mutazione_scheda",
        testataRichiesta=testata("5008", 404, "2020-04-01"),
        generalitaPerRicerca=per_ricerca(marco, "Bianchi", "Marco"),
        matrimonio={"coniuge": per_ricerca(anna, "Rossi", "Anna"), "datiMatrimonio": {"dataEvento": d("2015-06-06"), "luogoEvento": {"comune": ROMA}, "attoEvento": ATTO}},
        datiControllo={"tipoMutazione": ["12"]},
    )
    s5000.call(
        "mutazione_scheda",
        testataRichiesta=testata("5008", 405, "2020-05-01"),
        generalitaPerRicerca=per_ricerca(marco, "Bianchi", "Marco"),
        permessoSoggiorno={"numeroSoggiorno": "RM7654321", "tipoSoggiorno": "1", "dataRilascio": d("2019-01-10")},
        altriDati={"titoloStudio": "3", "posizioneProfessionale": "2"},
        datiControllo={"tipoMutazione": ["04", "07"]},
    )
    s5000.call(
        "gestione_poligamia",
        testataRichiesta=testata("5021", 406, "2021-01-01"),
        matrimonioPerRicerca={"coniuge1": per_ricerca(marco, "Bianchi", "Marco")},
        matrimonio={"coniuge": {"cognome": "Amrani", "nome": "Nadia"}, "datiMatrimonio": {"dataEvento": d("2016-06-01")}},
        datiControllo={"tipoMutazione": ["01"]},
    )
    r = sA000.call(
        "AIRE_iscrizione_altriMotivi",
        testataRichiesta=testata("A002", 407, "2022-06-01"),
        generalitaA002={"generalita": generalita("Marino", "Elena", "F", "1970-07-07", annoEspatrio="1999")},
        famiglia={"famiglia": {"tipoScheda": "1"}, "legameSoggetto": {"dataDecorrenza": d("2022-06-01"), "codiceLegame": "1"}},
        iscrizioneAire={"motivoIscrizione": "C01", "iniziativaIscrizione": "1", "individuazioneComuneIscrizione": "1"},
        residenzaEstera=ESTERO_NY,
        datiControllo={"attribuzioneFamigliaAIRE": "1"},
    )
    elena = esito(r)[2][0]

    def interroga(id_comune, chi, servizio="3002", scheda_richiesta="1", dati=None, data="2026-01-01"):
        dr = {"schedaAnagraficaRichiesta": scheda_richiesta, "dataRiferimentoRichiesta": d(data)}
        if dati:
            dr["datiAnagraficiRichiesti"] = dati
        if servizio == "3006":
            dr["motivoRichiesta"] = "verifica"
            r = s3000.call("interrogazioneCittadino_enti", testataRichiesta=testata("3006", id_comune), criteriRicerca={"idSchedaSoggettoANPR": chi}, datiRichiesta=dr)
            return zeep.helpers.serialize_object(r["Risposta3006_OK"]["listaSoggetti"]["datiSoggetto"])
        r = s3000.call("interrogazioneCittadino_famiglia_convivenza", testataRichiesta=testata("3002", id_comune), criteriRicerca={"idSchedaSoggettoANPR": chi}, datiRichiesta=dr)
        return zeep.helpers.serialize_object(r["Risposta3002_OK"]["listaSoggetti"]["datiSoggetto"])

    def presenti(x):
        return sorted(k for k, v in x.items() if v not in (None, []))

    out = {}
    x = interroga(410, luca)[0]
    out["luca"] = {
        "elementi": presenti(x),
        "padre": x["paternita"]["generalita"]["idSchedaSoggettoANPR"],
        "madre": x["maternita"]["generalita"]["idSchedaSoggettoANPR"],
        "atto": x["attoNascita"]["numeroAtto"],
        "legame": x["legameSoggetto"]["codiceLegame"],
        "famiglia": x["famigliaConvivenza"]["idFamigliaConvivenzaANPR"],
        "tutore": x["tutoreIntestatario"]["generalita"]["idSchedaSoggettoANPR"],
        "motivoIscrizione": x["datiIscrizione"]["iscrizioneResidente"]["motivoIscrizione"],
        "validitaCF": x["generalita"]["codiceFiscale"]["validitaCF"],
    }
    x = interroga(411, marco)[0]
    out["marco"] = {
        "elementi": presenti(x),
        "statoCivile": x["statoCivile"]["statoCivile"],
        "coniuge": x["matrimonio"]["coniuge"]["cognome"],
        "ordine": x["matrimonio"]["ordineMatrimonio"],
        "poligamia": [p["matrimonio"]["coniuge"]["cognome"] for p in x["listaDatiPoligamia"]["poligamia"]],
        "luogoPrimo": x["listaDatiPoligamia"]["poligamia"][0]["matrimonio"]["datiMatrimonio"]["luogoEvento"]["comune"]["codiceIstat"],
        "permesso": x["permessoSoggiorno"]["numeroSoggiorno"],
        "titoloStudio": x["altriDati"]["titoloStudio"],
    }
    x = interroga(412, anna, dati=["2", "10"])[0]
    out["anna_2_10"] = presenti(x)
    out["anna_prima"] = presenti(interroga(413, anna, data="2020-03-15")[0])
    out["anna_dopo"] = interroga(414, anna)[0]["statoCivile"]["statoCivile"]
    out["famiglia"] = [
        (y["identificativi"]["idANPR"], y["legameSoggetto"]["codiceLegame"])
        for y in interroga(415, luca, scheda_richiesta="2", dati=["2", "21"])
    ]
    x = interroga(416, elena)[0]
    out["elena"] = {
        "elementi": presenti(x),
        "consolato": x["residenza"][0]["localitaEstera"]["consolato"]["codiceConsolato"],
        "localita": x["residenza"][0]["localitaEstera"]["indirizzoEstero"]["localita"]["descrizioneLocalita"],
        "aire": x["generalita"]["soggettoAIRE"],
        "motivo": x["datiIscrizione"]["tipoIscrizioneAIRE"]["motivoIscrizione"],
    }
    out["censimento"] = [(a["codiceErroreAnomalia"], a["tipoErroreAnomalia"]) for a in interroga(417, anna, dati=["20"])[0]["erroriAnomalie"]]
    x = interroga(418, marco, servizio="3006")[0]
    out["marco_3006"] = presenti(x)
    out["ids"] = {"anna": anna, "marco": marco, "luca": luca, "elena": elena, "famiglia": fam}
    out["validati"] = sum(v.validated for v in (s1000, s3000, s5000, sA000))
    return out



def servizi(base):
    """Certificates (6001), extractions and ISTAT tables (4001-4005, 7002),
    administrative proceedings (3004) and certifiability (5010): each request and
    answer XSD-valid, outcomes and codes reported."""
    import time

    s = {
        n: Servizio(base, f"AnprService{n}", x)
        for n, x in (
            ("1000", "1000iscrizione.xsd"),
            ("3000", "3000consultazione.xsd"),
            ("4000", "4000estrazione.xsd"),
            ("5000", "5000mutazione.xsd"),
            ("6001", "6001certificazione.xsd"),
            ("7001", "7001scaricoTabelle.xsd"),
        )
    }
    out = {}
    d = datetime.date.fromisoformat

    def ko(v):
        return [v["testataRisposta"]["esitoOperazione"], [e["codiceErroreAnomalia"] for e in v["listaErrori"]["errore"]]]

    def percorsi(v):
        """The element paths the refusal names (the support entry names none)."""
        return [e["campoErroreAnomalia"] for e in v["listaErrori"]["errore"] if e["campoErroreAnomalia"]]

    sara = esito(iscrizione_1002(s["1000"], 200, "Neri", "Sara", "F", "1982-03-03", "1"))[2][0]
    out["sara"] = sara

    # 6001: a residence certificate (and the citizenship one in the same document).
    dati_controllo = {
        "cognomeUffAnagrafe": "Rossi",
        "nomeUffAnagrafe": "Mario",
        "tipoRichiedente": "2",
        "tipoRichiesta": "1",
        "paEstera": "0",
        "emissione": "1",
        "bollo": "1600",
        "diritti": "52",
    }
    r = s["6001"].call(
        "emissioneCertificato",
        testataRichiesta=testata("6001", 201),
        linguaCertificato={"tipoLinguaCertificato": ["IT"]},
        listaTipiCertificati={"tipoCertificato": ["8", "5"]},
        soggettoIntestatario={"generalita": {"cognome": "Neri", "nome": "Sara", "idSchedaSoggettoANPR": sara}},
        datiControllo=dati_controllo,
    )
    ok = r["Risposta6001OK"]
    pdf = ok["file"]["certificatoPdf"]
    out["6001"] = {
        "esito": ok["testataRisposta"]["esitoOperazione"],
        "protocollo": ok["protocolloANPR"]["numeroProtocolloANPR"],
        "bollo": ok["parametriRichiesta"]["bollo"],
        "diritti": ok["parametriRichiesta"]["diritti"],
        "pdf": pdf[:5].decode("latin-1"),
        "tipi": ok["listaTipiCertificato"]["tipoCertificato"],
    }
    # Exempt from stamp duty (code 1 of table 39): no stamp, reduced fee.
    r = s["6001"].call(
        "emissioneCertificato",
        testataRichiesta=testata("6001", 202),
        listaTipiCertificati={"tipoCertificato": ["8"]},
        soggettoIntestatario={"generalita": {"cognome": "Neri", "nome": "Sara", "idSchedaSoggettoANPR": sara}},
        datiControllo=dict(dati_controllo, esenzioneBollo="1", modalita="1"),
    )
    ok = r["Risposta6001OK"]
    out["6001_esente"] = [
        ok["testataRisposta"]["esitoOperazione"],
        ok["parametriRichiesta"]["bollo"],
        ok["parametriRichiesta"]["diritti"],
        [a["codiceErroreAnomalia"] for a in ok["listaAnomalie"]["anomalie"]],
    ]
    # Refusals: data only (tipoRichiesta 2); a death certificate of a living person.
    r = s["6001"].call(
        "emissioneCertificato",
        testataRichiesta=testata("6001", 203),
        listaTipiCertificati={"tipoCertificato": ["8"]},
        soggettoIntestatario={"generalita": {"cognome": "Neri", "nome": "Sara", "idSchedaSoggettoANPR": sara}},
        datiControllo=dict(dati_controllo, tipoRichiesta="2"),
    )
    out["6001_dati"] = ko(r["Risposta6001KO"])
    out["6001_dati_percorsi"] = percorsi(r["Risposta6001KO"])
    r = s["6001"].call(
        "emissioneCertificato",
        testataRichiesta=testata("6001", 204),
        listaTipiCertificati={"tipoCertificato": ["2"]},
        soggettoIntestatario={"generalita": {"cognome": "Neri", "nome": "Sara", "idSchedaSoggettoANPR": sara}},
        datiControllo=dati_controllo,
    )
    out["6001_morte"] = ko(r["Risposta6001KO"])

    # 4001: an extraction by ANPR id range, then 4005 until done, then 7002.
    r = s["4000"].call(
        "estrazione_dati_cittadini",
        testataRichiesta=testata("4001", 205),
        criteriRicerca={
            "datiAnagraficiRichiesti": ["2", "10"],
            "identificativiANPR": {"idSchedaSoggettoANPRDa": sara, "idSchedaSoggettoANPRA": sara},
        },
    )
    m = r["RispostaMultipla4001"]
    id4001 = m["idOperazioneANPR"]
    out["4001"] = [m["testataRisposta"]["esitoOperazione"], m["criteriRicerca"]["datiAnagraficiRichiesti"]]

    def verifica(id_anpr, id_comune):
        for _ in range(100):
            r = s["4000"].call(
                "richieste_asincrone",
                testataRichiesta=testata("4005", id_comune),
                verificaStato={"idOperazioneANPR": id_anpr, "progressivo": "1"},
            )
            m = r["RispostaMultipla4005"]
            if m["statoRichiesta"] in ("2", "3", "99"):
                return m
            time.sleep(0.1)
        sys.exit(f"request {id_anpr} never concluded")

    m = verifica(id4001, 206)
    voce = m["elencoRisposte"][0]
    righe = voce["contenutoRisposta"].decode("utf-8").splitlines()
    out["4005"] = [m["statoRichiesta"], voce["formatoRisposta"], righe[0].split(",")[:3], len(righe)]

    r = s["7001"].call("download_file", testataRichiesta=testata("7002", 207), datiRichiesta={"idOperazioneANPR": id4001})
    m = r["RispostaMultipla7002"]
    out["7002"] = [m["testataRisposta"]["esitoOperazione"], m["formato"], m["file"]["contenutoFile"] == voce["contenutoRisposta"]]
    r = s["7001"].call("download_file", testataRichiesta=testata("7002", 208), datiRichiesta={"idOperazioneANPR": "999999"})
    out["7002_ko"] = ko(r["rispostaKO"])
    # 3005 gives the same file (visualizzazione elaborati).
    r = s["3000"].call("visualizzazione_eleaborati", testataRichiesta=testata("3005", 209), datiRichiesta={"idOperazioneANPR": id4001})
    m = r["Risposta3005_OK"]
    out["3005"] = [m["testataRisposta"]["esitoOperazione"], m["file"]["xmlFile"] == voce["contenutoRisposta"]]

    # 4002: a file of codici fiscali (Sara's, read with 3002).
    r = s["3000"].call(
        "interrogazioneCittadino_famiglia_convivenza",
        testataRichiesta=testata("3002", 209),
        criteriRicerca={"idSchedaSoggettoANPR": sara},
        datiRichiesta={"schedaAnagraficaRichiesta": "1", "dataRiferimentoRichiesta": d("2026-01-01"), "datiAnagraficiRichiesti": ["2"]},
    )
    cf = r["Risposta3002_OK"]["listaSoggetti"]["datiSoggetto"][0]["generalita"]["codiceFiscale"]["codFiscale"]
    r = s["4000"].call(
        "rivestimento_cf",
        testataRichiesta=testata("4002", 210),
        criteriRicerca={"dataRiferimento": d("2026-01-01"), "datiRichiesti": ["2"], "xmlFileCodiciFiscali": (cf + "\n").encode()},
    )
    m = r["RispostaMultipla4002"]
    m5 = verifica(m["idOperazioneANPR"], 211)
    righe = m5["elencoRisposte"][0]["contenutoRisposta"].decode("utf-8").splitlines()
    out["4002"] = [m["testataRisposta"]["esitoOperazione"], m5["statoRichiesta"], len(righe)]

    # 4003 and 4004: queued, concluded.
    r = s["4000"].call(
        "supporto_rilevazioni_statistiche",
        testataRichiesta=testata("4003", 212),
        datiRichiesta={"comune": ROMA, "tipologiaProspetto": "1", "mese": "3", "anno": "2024"},
    )
    m = r["RispostaMultipla4003"]
    out["4003"] = [m["testataRisposta"]["esitoOperazione"], verifica(m["idOperazioneANPR"], 213)["statoRichiesta"]]
    r = s["4000"].call(
        "elenchi_supporto",
        testataRichiesta=testata("4004", 214),
        datiRichiesta={"comune": ROMA, "tipoElenco": "1"},
    )
    m = r["RispostaMultipla4004"]
    out["4004"] = [m["testataRisposta"]["esitoOperazione"], verifica(m["idOperazioneANPR"], 215)["statoRichiesta"]]
    # A refusal of the use case: another municipality's data (EN167).
    r = s["4000"].call(
        "elenchi_supporto",
        testataRichiesta=testata("4004", 216),
        datiRichiesta={"comune": {"nomeComune": "MILANO", "codiceIstat": "015146", "siglaProvinciaIstat": "MI"}, "tipoElenco": "1"},
    )
    out["4004_ko"] = ko(r["rispostaKO"])
    # 4005 list: the municipality's concluded 4001 requests.
    r = s["4000"].call(
        "richieste_asincrone",
        testataRichiesta=testata("4005", 217),
        elaborazione={"dettaglioDati": "ID", "ricercaElenchiRichieste": {"statoLavorazione": "2", "operazioneRichiesta": "4001"}},
    )
    m = r["RispostaMultipla4005"]
    out["4005_elenco"] = [e["idOperazioneANPR"] for e in m["elencoRisposte"]]
    out["4001_id"] = id4001
    r = s["4000"].call(
        "richieste_asincrone",
        testataRichiesta=testata("4005", 218),
        elaborazione={"dettaglioDati": "TUTTO"},
    )
    out["4005_ko"] = ko(r["rispostaKO"])
    out["4005_ko_percorsi"] = percorsi(r["rispostaKO"])

    # 3004: a proceeding opened with 1014, Sara linked, found by its number and by her.
    r = s["1000"].call(
        "procedimento_amministrativo",
        testataRichiesta=testata("1014", 219),
        procedimentoIstruttoria={
            "numeroPraticaComune": "PR 3004",
            "tipoOperazione": "I",
            "motivoAvvio": "5",
            "dataStato": d("2022-03-01"),
            "statoProcedimento": "1",
        },
        generalitaPerRicerca=[{"cognome": "Neri", "nome": "Sara", "idSchedaSoggettoANPR": sara}],
    )
    out["1014"] = esito(r)[0]
    for chiave, parametri in (
        ("3004_numero", {"numeroPraticaComune": "PR 3004"}),
        ("3004_soggetto", {"generalitaSoggettoCollegato": {"cognome": "Neri", "nome": "Sara", "idSchedaSoggettoANPR": sara}}),
    ):
        r = s["3000"].call("consultazione_procedimento_amministrativo", testataRichiesta=testata("3004", 220), parametriRicerca3004=parametri)
        ok = r["Risposta3004_OK"]
        el = ok["listaProcAmm"]["elemProcAmm"]
        out[chiave] = [
            ok["testataRisposta"]["esitoOperazione"],
            [p["procedimentoIstruttoria"][0]["numeroPraticaComune"] for p in el],
            [g["idSchedaSoggettoANPR"] for p in el for g in p["generalitaSoggettoCollegato"]],
        ]
    r = s["3000"].call("consultazione_procedimento_amministrativo", testataRichiesta=testata("3004", 221), parametriRicerca3004={"numeroPraticaComune": "NESSUNA"})
    out["3004_ko"] = ko(r["rispostaKO"])
    r = s["3000"].call("consultazione_procedimento_amministrativo", testataRichiesta=testata("3004", 224), parametriRicerca3004={"idOpComunaleCollegata": "77"})
    out["3004_non_gestito"] = ko(r["rispostaKO"]) + [percorsi(r["rispostaKO"])]

    # 5010: Sara becomes partially certifiable; a full certificate is then refused.
    r = s["5000"].call(
        "mutazione_liste_elettorali",
        testataRichiesta=testata("5010", 222, "2026-01-01"),
        idSoggetto=sara,
        certificabilita={"soggettoCertificabile": "1"},
        datiControllo={"tipoMutazione": "01"},
    )
    out["5010"] = esito(r)
    r = s["6001"].call(
        "emissioneCertificato",
        testataRichiesta=testata("6001", 223),
        listaTipiCertificati={"tipoCertificato": ["5"]},
        soggettoIntestatario={"generalita": {"cognome": "Neri", "nome": "Sara", "idSchedaSoggettoANPR": sara}},
        datiControllo=dati_controllo,
    )
    out["6001_dopo_5010"] = ko(r["Risposta6001KO"])
    # The electoral lists of 5010 are not handled: refused, naming the element.
    r = s["5000"].call(
        "mutazione_liste_elettorali",
        testataRichiesta=testata("5010", 225, "2026-01-01"),
        idSoggetto=sara,
        tipoRevisione="SEMESTRALE",
        datiControllo={"tipoMutazione": "01"},
    )
    e = esito(r)
    out["5010_liste"] = [e[0], [a[0] for a in e[3]]]
    out["5010_liste_percorsi"] = percorsi(r["rispostaKO"])
    # A residence certificate by tax code (found with the consultation search).
    r = s["6001"].call(
        "emissioneCertificato",
        testataRichiesta=testata("6001", 226),
        listaTipiCertificati={"tipoCertificato": ["8"]},
        soggettoIntestatario={"generalita": {"codiceFiscale": {"codFiscale": cf}, "cognome": "Neri", "nome": "Sara"}},
        datiControllo=dati_controllo,
    )
    out["6001_cf"] = (
        r["Risposta6001OK"]["testataRisposta"]["esitoOperazione"]
        if r["Risposta6001OK"] is not None
        else ko(r["Risposta6001KO"]) + [[(e["testoErroreAnomalia"], e["campoErroreAnomalia"]) for e in r["Risposta6001KO"]["listaErrori"]["errore"]]]
    )

    out["validati"] = sum(x.validated for x in s.values())
    out["chiamate"] = sum(x.calls for x in s.values())
    return out


SUPPORTATI = {
    "C001", "C010", "E001", "E002", "1001", "1002", "1010", "1013", "1014", "2001", "2003", "2009", "2011", "3001", "3002",
    "3003", "3004", "3005", "3006", "3007", "4001", "4002", "4003", "4004", "4005", "5001", "5005", "5008", "5010", "5012",
    "5013", "5014", "5021", "6001", "7001", "7002", "7003", "A001", "A002", "A006", "S001",
}

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


def non_disponibili(base):
    """Every operation of every published WSDL this release does not implement, sent
    as a minimal message: each must answer the coded refusal EV100, XSD-valid."""
    import requests

    out = {}
    for file in sorted(os.listdir(XSD_DIR)):
        if not file.endswith(".wsdl"):
            continue
        wsdl = etree.parse(os.path.join(XSD_DIR, file)).getroot()
        service = wsdl.find(f"{{{WSDL_NS}}}service").get("name")
        imp = wsdl.find(f"{{{WSDL_NS}}}types")[0][0]
        ns, xsd = imp.get("namespace"), imp.get("schemaLocation")
        messages = {
            m.get("name"): m.find(f"{{{WSDL_NS}}}part").get("element").split(":")[-1]
            for m in wsdl.findall(f"{{{WSDL_NS}}}message")
        }
        for op in wsdl.find(f"{{{WSDL_NS}}}portType").findall(f"{{{WSDL_NS}}}operation"):
            richiesta = messages[op.find(f"{{{WSDL_NS}}}input").get("message").split(":")[-1]]
            codice = richiesta[len("Richiesta"):] if richiesta.startswith("Richiesta") else richiesta
            if codice in SUPPORTATI:
                continue
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body>'
                f'<r:{richiesta} xmlns:r="{ns}"><testataRichiesta><idOperazioneComune>1</idOperazioneComune>'
                f"<codMittente>058091</codMittente><codDestinatario>999999</codDestinatario>"
                f"<operazioneRichiesta>{codice[:4]}</operazioneRichiesta>"
                f"<dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta></testataRichiesta>"
                f"</r:{richiesta}></s:Body></s:Envelope>"
            )
            r = requests.post(f"{base}/ws/{service}", data=body.encode(), headers={"Content-Type": "text/xml; charset=utf-8"})
            envelope = etree.fromstring(r.content)
            element = envelope.find(f"{{{SOAP}}}Body")[0]
            try:
                schema(xsd).validate(element)
            except xmlschema.XMLSchemaValidationError as e:
                sys.exit(f"{service} {richiesta}: answer not valid against {xsd}: {e.reason} at {e.path}\n{r.text}")
            codes = [c.text for c in element.iter("codiceErroreAnomalia")]
            out[f"{service}/{richiesta}"] = [r.status_code, codes]
    return out


def testata_ente(codice, id_client, mittente="ENTE01"):
    """tipoTestataRichiestaE000: the body's header (idOperazioneClient, its own code)."""
    return {
        "idOperazioneClient": str(id_client),
        "codMittente": mittente,
        "codDestinatario": "999999",
        "operazioneRichiesta": codice,
        "dataOraRichiesta": datetime.datetime(2026, 11, 23, 10, 0, 0),
        "tipoOperazione": "C",
        "tipoInvio": "TEST",
        "nomeApplicativo": "ente zeep",
    }


def esito_ente(r):
    """[outcome, [codes]] of a bodies' answer (E000: listaErrori/listaAnomalie repeated)."""
    for k, v in zeep.helpers.serialize_object(r).items():
        if v is None:
            continue
        if k == "rispostaKO":
            return [v["testataRisposta"]["esitoOperazione"], [e["codiceErroreAnomalia"] for e in v["listaErrori"]]]
        anomalie = v.get("listaAnomalie") or []
        return [v["testataRisposta"]["esitoOperazione"], [a["codiceErroreAnomalia"] for a in anomalie]]
    return ["?", []]


def enti(base):
    """The public bodies' services E001 and E002 with a caller holding ENTE_FRUITORE
    (no municipality: codMittente is the body's code), and the refusals of callers
    without the profile; every request and answer validated against E000Vocabolario.xsd."""
    s1000 = Servizio(base, "AnprService1000", "1000iscrizione.xsd")
    s3000 = Servizio(base, "AnprService3000", "3000consultazione.xsd")
    ENTE = ("ENTE_FRUITORE", "VRDGPP70A01H501U")
    e1 = Servizio(base, "AnprServiceE001", "E000Vocabolario.xsd", *ENTE)
    e2 = Servizio(base, "AnprServiceE002", "E000Vocabolario.xsd", *ENTE)
    out = {}
    # The municipality registers Carla and her son Dario (family of two).
    carla = esito(iscrizione_1002(s1000, 400, "Ferri", "Carla", "F", "1982-04-04", "1"))[2][0]
    fam = madre_famiglia(s3000, 401, carla, "Ferri", "Carla")
    dario = esito(iscrizione_1002(s1000, 402, "Ferri", "Dario", "M", "2010-10-10", "3", fam))[2][0]
    out["ids"] = {"carla": carla, "dario": dario, "famiglia": fam}

    # E001: table 1 as an XML file (tipoFileMeta).
    r = e1.call("scarica_tabelle", testataRichiesta=testata_ente("E001", 1), datiRichiesta={"idTabella": "001"})
    ok = r["RispostaMultiplaE001"]
    f = ok["datiDettaglioRisposta"]["file"]
    data = f["contenuto"]
    if isinstance(data, str):
        data = base64.b64decode(data)
    doc = etree.fromstring(data)
    out["E001"] = [ok["testataRisposta"]["esitoOperazione"], ok["datiDettaglioRisposta"]["idTabella"], f["formato"], doc.get("numero"), len(doc.findall("riga")) > 0]
    out["E001_compressione"] = esito_ente(e1.call("scarica_tabelle", testataRichiesta=testata_ente("E001", 2), datiRichiesta={"idTabella": "001", "compressione": "1"}))
    out["E001_inesistente"] = esito_ente(e1.call("scarica_tabelle", testataRichiesta=testata_ente("E001", 3), datiRichiesta={"idTabella": "999"}))

    def e002(id_client, criteri, **dati):
        d = {"schedaAnagraficaRichiesta": "1", "dataRiferimentoRichiesta": datetime.date(2026, 11, 23), "casoUso": "CU01"}
        d.update(dati)
        return e2.call("consultazione_soggetti", testataRichiesta=testata_ente("E002", id_client), criteriRicerca=criteri, datiRichiesta=d)

    def soggetti(r):
        ok = r["RispostaE002_OK"]
        if ok is None or ok["listaSoggetti"] is None:
            return []
        return [[s["tipoIdentificativi"]["idANPR"], s["generalita"]["cognome"], s["generalita"]["nome"]] for s in ok["listaSoggetti"]["datiSoggetto"]]

    # E002 by national id: Carla's record, her id last (tipoIdentificativi).
    r = e002(10, {"idANPR": carla})
    out["E002_id"] = [esito_ente(r), soggetti(r)]
    ok = r["RispostaE002_OK"]["listaSoggetti"]["datiSoggetto"][0]
    out["E002_residenza"] = ok["residenza"][0]["indirizzo"]["comune"]["codiceIstat"] if ok["residenza"] else None
    # By generalities with the reason: outcome 6, the reason not recorded (W EV105).
    r = e002(11, {"cognome": "Ferri", "nome": "Dario", "datiNascita": {"dataEvento": datetime.date(2010, 10, 10)}}, motivoRichiesta="Verifica requisiti")
    out["E002_generalita"] = [esito_ente(r), soggetti(r)]
    # The whole family (schedaAnagraficaRichiesta 2), only generalities (group 2).
    r = e002(12, {"idANPR": dario}, schedaAnagraficaRichiesta="2", datiAnagraficiRichiesti=["2"])
    out["E002_famiglia"] = [esito_ente(r), sorted(x[0] for x in soggetti(r))]
    # Nobody: an empty answer, outcome 2.
    out["E002_nessuno"] = esito_ente(e002(13, {"cognome": "Inesistente", "nome": "Nessuno"}))
    # verifica has no use case: EV105 naming it.
    out["E002_verifica"] = esito_ente(e2.call(
        "consultazione_soggetti", testataRichiesta=testata_ente("E002", 14), criteriRicerca={"idANPR": carla},
        verifica={"generalita": {"cognome": "Ferri", "nome": "Carla"}},
        datiRichiesta={"schedaAnagraficaRichiesta": "1", "dataRiferimentoRichiesta": datetime.date(2026, 11, 23), "casoUso": "CU01"},
    ))

    # Refused with EA401: a municipal operator (codMittente its ISTAT code), a
    # consulate, a caller with no identity (even for the public tables).
    operatore = Servizio(base, "AnprServiceE002", "E000Vocabolario.xsd", "OPERATORE_CONSULTAZIONE,SUPER_UTENTE")
    r = operatore.call("consultazione_soggetti", testataRichiesta=testata_ente("E002", 20, "058091"), criteriRicerca={"idANPR": carla},
                       datiRichiesta={"schedaAnagraficaRichiesta": "1", "dataRiferimentoRichiesta": datetime.date(2026, 11, 23), "casoUso": "CU01"})
    out["E002_operatore"] = esito_ente(r)
    consolato = Servizio(base, "AnprServiceE001", "E000Vocabolario.xsd", "CONSOLATO")
    out["E001_consolato"] = esito_ente(consolato.call("scarica_tabelle", testataRichiesta=testata_ente("E001", 21), datiRichiesta={"idTabella": "001"}))
    anonimo = Servizio(base, "AnprServiceE001", "E000Vocabolario.xsd", None)
    out["E001_anonimo"] = esito_ente(anonimo.call("scarica_tabelle", testataRichiesta=testata_ente("E001", 22), datiRichiesta={"idTabella": "001"}))

    tutti = [s1000, s3000, e1, e2, operatore, consolato, anonimo]
    out["chiamate"] = sum(x.calls for x in tutti)
    out["validati"] = sum(x.validated for x in tutti)
    return out


def consolati(base):
    """The consulates' AIRE queries C001 and C010 with a caller holding CONSOLATO (no
    municipality), and the refusals of callers without the profile; every request and
    answer validated against CONSOLATIServizi.xsd."""
    s3000 = Servizio(base, "AnprService3000", "3000consultazione.xsd")
    sA000 = Servizio(base, "AnprServiceA000", "A000aire.xsd")
    c = Servizio(base, "AnprServiceCONSOLATI", "CONSOLATIServizi.xsd", "CONSOLATO", "NRIGNN70A01H501U")
    d = datetime.date.fromisoformat
    out = {}
    # Roma registers Irene in AIRE (A002); Sofia is resident (1002), not in AIRE.
    r = sA000.call(
        "AIRE_iscrizione_altriMotivi",
        testataRichiesta=testata("A002", 500, "2022-06-01"),
        generalitaA002={"generalita": generalita("Neri", "Irene", "F", "1971-08-08", annoEspatrio="2000")},
        famiglia={"famiglia": {"tipoScheda": "1"}, "legameSoggetto": {"dataDecorrenza": d("2022-06-01"), "codiceLegame": "1"}},
        iscrizioneAire={"motivoIscrizione": "C01", "iniziativaIscrizione": "1", "individuazioneComuneIscrizione": "1"},
        residenzaEstera=ESTERO_NY,
        datiControllo={"attribuzioneFamigliaAIRE": "1"},
    )
    irene = esito(r)[2][0]
    s1000 = Servizio(base, "AnprService1000", "1000iscrizione.xsd")
    sofia = esito(iscrizione_1002(s1000, 501, "Neri", "Sofia", "F", "1990-09-09", "1"))[2][0]
    out["ids"] = {"irene": irene, "sofia": sofia}
    richiedente = {"codMittente": "058091", "idPostazione": "CONS-NY-1", "idUtente": "NRIGNN70A01H501U"}

    def testata_c(codice, n):
        t = testata(codice, n)
        t["codMittente"] = "CONSNY"
        return t

    def c001(n, gen, **extra):
        return c.call("interrogazioneDatiAnagrafici", testataRichiesta=testata_c("C001", n), datiRichiedente=richiedente,
                      generalita=gen, comuneIscrizioneAIRE=ROMA, **extra)

    def soggetti(r):
        ok = r["RispostaC001"]
        if ok is None or ok["listaSoggetti"] is None:
            return []
        return [[x["identificativi"]["idANPR"], x["generalita"]["cognome"]] for x in ok["listaSoggetti"]["datiSoggetto"]]

    r = c001(1, {"cognome": "Neri", "nome": "Irene", "idSchedaSoggettoANPR": irene})
    out["C001_id"] = [esito_di(r), soggetti(r)]
    ok = r["RispostaC001"]["listaSoggetti"]["datiSoggetto"][0]
    out["C001_consolato"] = ok["residenza"][0]["localitaEstera"]["consolato"]["codiceConsolato"]
    r = c001(2, {"cognome": "Neri", "nome": "Irene", "dataNascita": d("1971-08-08")})
    out["C001_generalita"] = [esito_di(r), soggetti(r)]
    # Sofia is not in AIRE: nobody found.
    r = c001(3, {"cognome": "Neri", "nome": "Sofia", "idSchedaSoggettoANPR": sofia})
    out["C001_residente"] = [esito_di(r), soggetti(r)]
    r = c001(4, {"cognome": "Neri", "nome": "Irene"}, consolato={"codiceConsolato": "2810703", "descrizioneConsolato": "NEW YORK"})
    out["C001_per_consolato"] = esito_di(r)
    for k, gen in (("C010_aire", {"cognome": "Neri", "nome": "Irene", "idSchedaSoggettoANPR": irene}),
                   ("C010_residente", {"cognome": "Neri", "nome": "Sofia", "idSchedaSoggettoANPR": sofia})):
        r = c.call("consultazioneAire", testataRichiesta=testata_c("C010", 5), generalita=gen)
        out[k] = [esito_di(r), r["RispostaC010"]["isAire"]]
    # Refused with EA401: a municipal operator and a public body.
    for k, profili in (("C001_operatore", "OPERATORE_CONSULTAZIONE,SUPER_UTENTE"), ("C010_ente", "ENTE_FRUITORE")):
        altro = Servizio(base, "AnprServiceCONSOLATI", "CONSOLATIServizi.xsd", profili)
        if k == "C001_operatore":
            t = testata("C001", 6)
            r = altro.call("interrogazioneDatiAnagrafici", testataRichiesta=t, datiRichiedente=richiedente,
                           generalita={"cognome": "Neri", "nome": "Irene", "idSchedaSoggettoANPR": irene}, comuneIscrizioneAIRE=ROMA)
        else:
            r = altro.call("consultazioneAire", testataRichiesta=testata_c("C010", 7), generalita={"cognome": "Neri", "nome": "Irene", "idSchedaSoggettoANPR": irene})
        out[k] = esito_di(r)
        out.setdefault("_altri", []).append(altro)
    tutti = [s3000, sA000, s1000, c] + out.pop("_altri")
    out["chiamate"] = sum(x.calls for x in tutti)
    out["validati"] = sum(x.validated for x in tutti)
    return out


MILANO = {"nomeComune": "MILANO", "codiceIstat": "015146", "siglaProvinciaIstat": "MI"}


def richieste(base):
    """3007, 3003 and 3005: Roma reads back its requests with ANPR's answers and the
    notification N010 prepared for it when Milano registers the transfer of one of its
    residents; every request and answer validated against 3000consultazione.xsd, and
    every document carried base64 (xmlRisposta, xmlFile) against its own XSD."""
    s1000 = Servizio(base, "AnprService1000", "1000iscrizione.xsd")
    s3000 = Servizio(base, "AnprService3000", "3000consultazione.xsd", "OPERATORE_ANAGRAFE")
    s5000 = Servizio(base, "AnprService5000", "5000mutazione.xsd")
    out = {}
    d = datetime.date.fromisoformat
    # Roma: two registrations, a change (answered with a warning), a refusal.
    anna = esito(iscrizione_1002(s1000, 1, "Rossi", "Anna", "F", "1980-01-01", "1"))
    marco = esito(iscrizione_1002(s1000, 2, "Bianchi", "Marco", "M", "1978-06-15", "1"))

    def nome_nuovo(n, decorrenza, id_anpr, cognome, nome, nuovo):
        return esito(s5000.call(
            "mutazione_scheda",
            testataRichiesta=testata("5008", n, decorrenza),
            generalitaPerRicerca=per_ricerca(id_anpr, cognome, nome),
            generalitaDaModificare={"generalita": {"cognome": cognome, "nome": nuovo}},
            datiControllo={"tipoMutazione": ["01"]},
        ))

    cambio = nome_nuovo(3, "2023-07-01", marco[2][0], "Bianchi", "Marco", "Marco Aurelio")
    rifiuto = nome_nuovo(4, "2023-07-01", "999999999", "Nessuno", "Nessuno", "Altro")
    # A second change, annulled (5012): the change is then "annullata" (4).
    annullato = nome_nuovo(5, "2023-08-01", marco[2][0], "Bianchi", "Marco Aurelio", "Marco Tullio")
    r = s5000.call(
        "annullamento_mutazione",
        testataRichiesta=testata("5012", 6),
        datiOperazioneDaAnnullare={
            "operazioneRichiesta": "5008",
            "idOperazioneComune": "5",
            "idOperazioneANPR": annullato[1],
            "noteOperazione": "errore materiale",
        },
        datiSchedaSoggettoFamigliaConvivenza={"soggetto": per_ricerca(marco[2][0], "Bianchi", "Marco")},
        datiControllo={"tipoScheda": "1", "annullamentoAttribuzioneCF": "N"},
    )
    annullamento = esito(r)
    out["operazioni"] = {"anna": anna, "marco": marco, "cambio": cambio, "rifiuto": rifiuto,
                         "annullato": annullato, "annullamento": annullamento}
    # Milano registers Anna's transfer: N010 for Roma.
    t = testata("5005", 1, "2024-02-01")
    t["codMittente"] = "015146"
    indirizzo = residenza("Manzoni", "3", "2024-02-01")
    indirizzo["indirizzo"]["comune"] = MILANO
    indirizzo["indirizzo"]["cap"] = "20121"
    r = s5000.call(
        "mutazione_residenza",
        testataRichiesta=t,
        generalitaSchedaFamiglia={"tipoScheda": "1"},
        residenzaFamiglia=[indirizzo],
        elencoSoggettiFamiglia=[{
            "generalita": per_ricerca(anna[2][0], "Rossi", "Anna"),
            "legameSoggetto": {"dataDecorrenza": d("2024-02-01"), "codiceLegame": "1"},
        }],
        datiControllo={"tipoMutazione": "02", "tipoScheda": "1"},
    )
    out["trasferimento"] = esito(r)

    n = [100]

    def chiama(codice, **kw):
        n[0] += 1
        op = {"3003": "gestione_richieste", "3007": "ricerca_identificativi_anpr"}[codice]
        return s3000.call(op, testataRichiesta=testata(codice, n[0]), **kw)

    def ids(r):
        ok = r["Risposta3007_OK"]
        if ok is None:
            return esito_di(r)
        lista = ok["listaOperazioniAnpr"]
        voci = [] if lista is None else lista["operazioneANPR"]
        return [[v["statoLavorazione"], v["tipoOperazione"], v["idOperazioneANPR"]] for v in voci]

    def documenti(r):
        ok = r["Risposta3003_OK"]
        if ok is None:
            return esito_di(r)
        res = []
        for v in ok["elencoRisposte"]:
            doc = v["xmlRisposta"]
            res.append([v["statoLavorazione"], v["tipoOperazione"], valida_documento(v["tipoOperazione"], doc)])
        return res

    for stato in ("2", "3", "4", "5", "6", "7", "9"):
        out[f"3007_{stato}"] = ids(chiama("3007", ricercaElenchiRichieste={"statoLavorazione": stato}))
    out["3007_1002"] = ids(chiama("3007", ricercaElenchiRichieste={"statoLavorazione": "2", "operazioneRichiesta": "1002"}))
    primo = int(anna[1])
    out["3007_intervallo"] = ids(chiama("3007", ricercaElenchiRichieste={
        "statoLavorazione": "2", "identificativiANPR": {"protocolloANPRDa": str(primo + 1), "protocolloANPRA": str(primo + 1000)}}))
    out["3007_id_comune"] = ids(chiama("3007", ricercaElenchiRichieste={
        "statoLavorazione": "2", "identificativiComune": {"idOperazioneComuneDa": "1", "idOperazioneComuneA": "1"}}))
    out["3007_periodo_vuoto"] = ids(chiama("3007", ricercaElenchiRichieste={
        "statoLavorazione": "2", "periodoRiferimentoRichieste": {
            "dataOraIniziale": datetime.datetime(2001, 1, 1, 0, 0), "dataOraFinale": datetime.datetime(2001, 12, 31, 23, 59)}}))
    out["3007_soggetto"] = ids(chiama("3007", ricercaElenchiRichieste={"statoLavorazione": "6"},
                                      parametriRicercaSoggetto={"datiSoggetto": {"idSchedaSoggettoANPR": marco[2][0]}}))
    out["3007_altro_soggetto"] = ids(chiama("3007", ricercaElenchiRichieste={"statoLavorazione": "6"},
                                            parametriRicercaSoggetto={"datiSoggetto": {"idSchedaSoggettoANPR": anna[2][0]}}))
    # 3003: the answers; the notification is taken (7 -> 8).
    out["3003_2"] = documenti(chiama("3003", ricercaElenchiRichieste={"statoLavorazione": "2"}))
    out["3003_7"] = documenti(chiama("3003", ricercaElenchiRichieste={"statoLavorazione": "7"}))
    out["3007_7_dopo"] = ids(chiama("3007", ricercaElenchiRichieste={"statoLavorazione": "7"}))
    out["3007_8_dopo"] = ids(chiama("3007", ricercaElenchiRichieste={"statoLavorazione": "8"}))
    out["3003_singola"] = documenti(chiama("3003", ricercaSingolaRichiesta={"idOperazioneANPR": marco[1], "tipoOperazione": "1"}))
    out["3003_singola_comune"] = documenti(chiama("3003", ricercaSingolaRichiesta={"idOperazioneComune": "3", "tipoOperazione": "1"}))
    out["3003_singola_notifica"] = documenti(chiama("3003", ricercaSingolaRichiesta={"idOperazioneANPR": out["trasferimento"][1], "tipoOperazione": "2"}))
    # Refusals: another municipality, bad state, both search modes, unsupported criteria.
    out["3007_altro_comune"] = ids(chiama("3007", comuneRichiesta=MILANO, ricercaElenchiRichieste={"statoLavorazione": "2"}))
    out["3007_stato_errato"] = ids(chiama("3007", ricercaElenchiRichieste={"statoLavorazione": "12"}))
    out["3007_due_modi"] = ids(chiama("3007", ricercaSingolaRichiesta={"idOperazioneANPR": "1", "tipoOperazione": "1"},
                                      ricercaElenchiRichieste={"statoLavorazione": "2"}))
    # An id beyond the registry's range (the XSD admits 30 digits): refused, not dropped.
    out["3007_id_fuori"] = ids(chiama("3007", ricercaElenchiRichieste={
        "statoLavorazione": "2", "identificativiANPR": {"protocolloANPRDa": "1", "protocolloANPRA": "9" * 19}}))
    out["3007_protocollo"] = ids(chiama("3007", ricercaSingolaRichiesta={"protocolloComune": "12345678901234567890", "tipoOperazione": "1"}))
    out["3007_periodo_rovesciato"] = ids(chiama("3007", ricercaElenchiRichieste={
        "statoLavorazione": "2", "periodoRiferimentoRichieste": {
            "dataOraIniziale": datetime.datetime(2026, 1, 2, 0, 0), "dataOraFinale": datetime.datetime(2026, 1, 1, 0, 0)}}))
    # Milano cannot read Roma's requests: its own 3007 lists only its transfer.
    tm = testata("3007", 200)
    tm["codMittente"] = "015146"
    out["3007_milano"] = ids(s3000.call("ricerca_identificativi_anpr", testataRichiesta=tm, ricercaElenchiRichieste={"statoLavorazione": "2"}))
    # 3005: one document by id; an unknown id and another municipality's are EV404.
    s3005 = {}
    for k, ident in (("marco", marco[1]), ("notifica", out["trasferimento"][1]), ("ignoto", "987654321"),
                     ("milano", out["trasferimento"][1]), ("milano_di_roma", marco[1])):
        t = testata("3005", 300 + len(s3005))
        if k.startswith("milano"):
            # Milano's own 5005: its answer; Roma's registration: not Milano's.
            t["codMittente"] = "015146"
        r = s3000.call("visualizzazione_eleaborati", testataRichiesta=t, datiRichiesta={"idOperazioneANPR": ident})
        ok = r["Risposta3005_OK"]
        if ok is None:
            s3005[k] = esito_di(r)
        else:
            tipo = "N010" if k == "notifica" else ("5005" if k == "milano" else "1002")
            s3005[k] = valida_documento(tipo, ok["file"]["xmlFile"])
    out["3005"] = s3005
    # A profile without the permission: EA401.
    altro = Servizio(base, "AnprService3000", "3000consultazione.xsd", "OPERATORE_CERTIFICAZIONE")
    out["3007_certificazione"] = ids(altro.call("ricerca_identificativi_anpr", testataRichiesta=testata("3007", 400),
                                                ricercaElenchiRichieste={"statoLavorazione": "2"}))
    tutti = [s1000, s3000, s5000, altro]
    out["chiamate"] = sum(x.calls for x in tutti)
    out["validati"] = sum(x.validated for x in tutti)
    return out


XSD_SERVIZIO = {"1": "1000iscrizione.xsd", "2": "2000cancellazione.xsd", "3": "3000consultazione.xsd", "5": "5000mutazione.xsd", "A": "A000aire.xsd"}


def valida_documento(tipo, contenuto):
    """A document carried base64: an answer validated against its service's XSD (its
    root and outcome returned), or a notification (its kind, operation and subjects)."""
    doc = etree.fromstring(contenuto)
    if tipo.startswith("N"):
        ns = "{urn:anpr:notifiche}"
        assert doc.tag == ns + "notifica", doc.tag
        return [etree.QName(doc).localname, doc.findtext("tipoNotifica"), doc.findtext("idOperazioneANPR"),
                [s.text for s in doc.find("contenuto").findall("soggetti")]]
    try:
        schema(XSD_SERVIZIO[tipo[0]]).validate(doc)
    except xmlschema.XMLSchemaValidationError as e:
        sys.exit(f"document of {tipo} not valid: {e.reason} at {e.path}\n{contenuto!r}")
    esiti = [e.text for e in doc.iter("esitoOperazione")]
    return [etree.QName(doc).localname, esiti[0] if esiti else None, doc.findtext(".//idOperazioneANPR")]


def main():
    base, scenario = sys.argv[1], sys.argv[2]
    result = {"registry": registry, "table": table, "all": tutte, "unavailable": non_disponibili, "civil_status": stato_civile, "groups": gruppi, "record": scheda, "services": servizi, "bodies": enti, "consulates": consolati, "requests": richieste}[scenario](base)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
