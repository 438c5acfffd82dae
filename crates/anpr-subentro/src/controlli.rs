//! Per-record checks of a subject read from the file, and its conversion to the
//! registry's record ([`SchedaSoggetto`]).
//!
//! Every check pushes a coded [`Anomalia`] (ANPR code from `errors.csv`, the severity
//! the subentro applies, field path, found and expected values). Severity `E` blocks
//! the record (it is not loaded), `W` keeps it and the anomaly stays attached to it
//! (section `anomalieSubentro`). Checks that need the outside world (tax agency,
//! other municipalities) are done by the pipeline, in batches.

use anpr_domain::codice_fiscale::{
    coerente_con_dati, verifica, CodiceFiscaleSoggetto, DatiCalcolo,
};
use anpr_domain::error::{Anomalia, Gravita};
use anpr_domain::ids::{CodiceIstatComune, IdComunale, Sesso};
use anpr_domain::scheda::{
    Cittadinanza, Competenza, DataAnagrafica, DatiAire, DatiIscrizione, Generalita, Indirizzo,
    IndirizzoEstero, Luogo, Nome, NumeroCivico, PosizioneAnagrafica, Precisione, Residenza,
    StatoCivile, TipoScheda, Toponimo,
};
use anpr_tables::Tables;
use chrono::NaiveDate;

use crate::parser::{data, SoggettoLetto};

/// Our code: the place of birth cannot be decoded with the tables.
pub const CODICE_LUOGO_NON_DECODIFICABILE: &str = "EV153";
/// Our code: the same tax code twice in the same registry of one supply.
pub const CODICE_CF_DUPLICATO_FORNITURA: &str = "EV150";

/// Builds an anomaly with the text and the subentro severity of the ANPR table (or
/// `gravita` for codes the table does not grade). The subentro column comes first:
/// e.g. EC032/EC053 are `E` at subentro (the seed: they discard the record at load)
/// although the anomaly list grades them `W` for later operations.
pub fn anomalia(tabelle: &Tables, codice: &str, gravita: Gravita, campo: &str) -> Anomalia {
    let (testo, g) = match tabelle.errore(codice) {
        Some(e) => {
            let g = e
                .severity_subentro
                .or(e.anomalie_severity)
                .map(|s| {
                    if s.code() == "E" {
                        Gravita::Errore
                    } else {
                        Gravita::Avvertimento
                    }
                })
                .unwrap_or(gravita);
            (e.text.clone(), g)
        }
        None => (testo_nostro(codice).to_owned(), gravita),
    };
    let a = match g {
        Gravita::Errore => Anomalia::errore(codice, testo),
        _ => Anomalia::avvertimento(codice, testo),
    };
    a.campo(campo)
}

/// Texts of our own codes (README, table of our codes).
pub fn testo_nostro(codice: &str) -> &'static str {
    match codice {
        CODICE_CF_DUPLICATO_FORNITURA => {
            "Codice fiscale presente piu' volte nella stessa fornitura"
        }
        "EV152" => {
            "Identificativi riservati per la fornitura esauriti: totali dichiarati incongruenti"
        }
        CODICE_LUOGO_NON_DECODIFICABILE => {
            "Luogo di nascita non decodificabile con le tabelle di riferimento"
        }
        _ => "Anomalia",
    }
}

/// A subject checked and converted: its record (without ids and family link) and the
/// anomalies found so far.
#[derive(Debug)]
pub struct SoggettoControllato {
    pub competenza: Competenza,
    pub generalita: Option<Generalita>,
    pub codice_fiscale: Option<CodiceFiscaleSoggetto>,
    /// The code is formally valid and coherent with the data: worth asking the agency.
    pub cf_da_validare: bool,
    pub cittadinanze: Vec<Cittadinanza>,
    pub stato_civile: Option<StatoCivile>,
    pub residenza: Option<Residenza>,
    pub iscrizione: Option<DatiIscrizione>,
    pub aire: Option<DatiAire>,
    /// `(family id in the file, cohabitation?, relationship code, since)`.
    pub legame: Option<(String, TipoScheda, String, NaiveDate)>,
    /// First day the record is valid (all its sections start there).
    pub valido_dal: NaiveDate,
    pub anomalie: Vec<Anomalia>,
}

impl SoggettoControllato {
    pub fn bloccato(&self) -> bool {
        self.anomalie.iter().any(Anomalia::is_blocking)
    }
}

/// Runs the checks that need only the record and the tables.
pub fn controlla(
    tabelle: &Tables,
    comune: &CodiceIstatComune,
    oggi: NaiveDate,
    s: &SoggettoLetto,
) -> SoggettoControllato {
    let mut anomalie = Vec::new();
    let g = "generalitaSubIscr";
    let nascita = data(&s.data_nascita).unwrap_or(oggi);
    let nome = |v: &Option<String>, campo: &str, anomalie: &mut Vec<Anomalia>| {
        v.as_deref().and_then(|x| match Nome::parse(x) {
            Ok(n) => Some(n),
            Err(e) => {
                anomalie.push(Anomalia::from_invalid(format!("{g}/{campo}"), &e));
                None
            }
        })
    };
    let cognome = nome(&s.cognome, "cognome", &mut anomalie);
    let nome_p = nome(&s.nome, "nome", &mut anomalie);
    let sesso: Option<Sesso> = match s.sesso.parse() {
        Ok(x) => Some(x),
        Err(e) => {
            anomalie.push(Anomalia::from_invalid(format!("{g}/sesso"), &e));
            None
        }
    };
    let luogo = luogo(tabelle, s, nascita);
    if luogo.is_none() {
        let mut a = anomalia(
            tabelle,
            CODICE_LUOGO_NON_DECODIFICABILE,
            Gravita::Errore,
            &format!("{g}/luogoNascita"),
        );
        if let Some(v) = s
            .luogo
            .comune_istat
            .as_ref()
            .or(s.luogo.stato_codice.as_ref())
        {
            a = a.valore(v.as_str());
        }
        anomalie.push(a.atteso("codice ISTAT di un comune o di uno stato estero delle tabelle"));
    }
    let generalita = match (sesso, luogo) {
        (Some(sesso), Some(luogo_nascita)) => Some(Generalita {
            cognome,
            nome: nome_p,
            sesso,
            data_nascita: DataAnagrafica {
                data: nascita,
                precisione: if s.senza_giorno_mese {
                    Precisione::SenzaGiornoMese
                } else if s.senza_giorno {
                    Precisione::SenzaGiorno
                } else {
                    Precisione::Completa
                },
            },
            luogo_nascita,
            note: None,
        }),
        _ => None,
    };

    // The tax code: form, then coherence with the five data.
    let mut cf_da_validare = false;
    let codice_fiscale = s.codice_fiscale.as_deref().and_then(|cf| {
        let campo = format!("{g}/codiceFiscale/codFiscale");
        match cf.parse::<CodiceFiscaleSoggetto>() {
            Ok(c) => {
                if let (Some(ordinario), Some(gen)) = (c.ordinario(), generalita.as_ref()) {
                    if let Some(catastale) = gen.luogo_nascita.codice_catastale() {
                        let dati = DatiCalcolo {
                            cognome: gen.cognome.as_ref().map_or("", |n| n.as_str()),
                            nome: gen.nome.as_ref().map_or("", |n| n.as_str()),
                            sesso: gen.sesso,
                            data_nascita: nascita,
                            luogo_nascita: catastale,
                        };
                        match coerente_con_dati(ordinario, &dati) {
                            Ok(()) => cf_da_validare = true,
                            Err(discrepanze) => {
                                for d in discrepanze {
                                    anomalie.push(
                                        anomalia(
                                            tabelle,
                                            d.codice_anpr(),
                                            Gravita::Avvertimento,
                                            &campo,
                                        )
                                        .valore(d.dai_dati.clone())
                                        .atteso(d.nel_codice.clone()),
                                    );
                                }
                            }
                        }
                    }
                }
                Some(c)
            }
            Err(_) => {
                let codice = if verifica(cf).is_err() && cf.len() != 16 && cf.len() != 11 {
                    "EA001"
                } else {
                    "ENT02"
                };
                anomalie.push(
                    anomalia(tabelle, codice, Gravita::Avvertimento, &campo)
                        .valore(cf)
                        .atteso("codice fiscale formalmente valido"),
                );
                None
            }
        }
    });

    // Dates that cannot be in the future (EN481): one anomaly per record.
    let futura = [
        (
            "dataUltimoAggiornamento",
            s.data_ultimo_aggiornamento.as_deref(),
        ),
        (
            "residenza/dataDecorrenzaResidenza",
            s.residenza
                .as_ref()
                .and_then(|r| r.data_decorrenza.as_deref()),
        ),
        (
            "generalitaSubIscr/dataPrimaIscrizioneComune",
            s.data_prima_iscrizione.as_deref(),
        ),
        (
            if s.legame.as_ref().is_some_and(|l| l.convivenza) {
                "convivenza/legameSoggetto/dataDecorrenza"
            } else {
                "famiglia/legameSoggetto/dataDecorrenza"
            },
            s.legame.as_ref().and_then(|l| l.decorrenza.as_deref()),
        ),
    ]
    .into_iter()
    .find(|(_, v)| v.and_then(data).is_some_and(|d| d > oggi));
    if let Some((campo, Some(v))) = futura {
        anomalie.push(
            anomalia(tabelle, "EN481", Gravita::Errore, campo)
                .valore(v)
                .atteso(format!("una data non successiva al {oggi}")),
        );
    }

    // Family or cohabitation link (ES092 without; EC002/EC003 unknown bond).
    let legame = match &s.legame {
        None => {
            anomalie.push(
                anomalia(tabelle, "ES092", Gravita::Errore, "famiglia")
                    .atteso("famiglia/idFamConvComune o convivenza/idFamConvComune"),
            );
            None
        }
        Some(l) => {
            let (tabella, codice, tipo, campo) = if l.convivenza {
                (
                    "legame_convivenza",
                    "EC003",
                    TipoScheda::Convivenza,
                    "convivenza/legameSoggetto/codiceLegame",
                )
            } else {
                (
                    "relazione_parentela",
                    "EC002",
                    TipoScheda::Famiglia,
                    "famiglia/legameSoggetto/codiceLegame",
                )
            };
            if tabelle.code(tabella, &l.codice, None).is_none() {
                anomalie.push(
                    anomalia(tabelle, codice, Gravita::Avvertimento, campo)
                        .valore(l.codice.as_str())
                        .atteso(format!("un codice della tabella {tabella}")),
                );
            }
            let dal = l.decorrenza.as_deref().and_then(data).unwrap_or(nascita);
            Some((l.id.clone(), tipo, l.codice.clone(), dal))
        }
    };

    // Residence: Italian address, or (AIRE) foreign locality and consulate.
    let mut aire = None;
    let decorrenza_res = s
        .residenza
        .as_ref()
        .and_then(|r| r.data_decorrenza.as_deref())
        .and_then(data);
    let residenza = s.residenza.as_ref().map(|r| {
        let tipo = r.tipo_indirizzo.clone().unwrap_or_else(|| "1".into());
        let indirizzo = r
            .comune_istat
            .as_deref()
            .and_then(|c| c.parse::<CodiceIstatComune>().ok())
            .map(|comune_res| Indirizzo {
                cap: r.cap.clone(),
                comune: comune_res,
                frazione: r.frazione.clone(),
                toponimo: Toponimo {
                    cod_specie: None,
                    specie: r.specie.clone().unwrap_or_default(),
                    denominazione_toponimo: r.toponimo.clone().unwrap_or_default(),
                    cod_toponimo: None,
                },
                numero_civico: NumeroCivico {
                    numero: r.numero.clone(),
                    ..NumeroCivico::default()
                },
            });
        let indirizzo_estero = r.estero_codice_stato.as_ref().map(|stato| {
            let noto = tabelle
                .stato_estero_by_istat(stato, None)
                .is_some_and(|s| s.residenza);
            if !noto {
                anomalie.push(
                    anomalia(
                        tabelle,
                        "EC053",
                        Gravita::Errore,
                        "residenza/localitaEstera/indirizzoEstero/localita/codiceStato",
                    )
                    .valore(stato.as_str())
                    .atteso("un codice della tabella Stati esteri valido per la residenza"),
                );
            }
            IndirizzoEstero {
                codice_stato: stato.clone(),
                localita: r.estero_localita.clone().unwrap_or_default(),
                provincia_contea: r.estero_provincia.clone(),
                cap: r.estero_cap.clone(),
                indirizzo: r.estero_indirizzo.clone().unwrap_or_default(),
            }
        });
        if let Some(consolato) = &r.consolato {
            if tabelle.consolato(consolato).is_none() {
                anomalie.push(
                    anomalia(
                        tabelle,
                        "EC032",
                        Gravita::Errore,
                        "residenza/localitaEstera/consolato/codiceConsolato",
                    )
                    .valore(consolato.as_str())
                    .atteso("un codice della tabella Elenco Consolati"),
                );
            }
            aire = Some(DatiAire {
                consolato: consolato.clone(),
                iniziativa_iscrizione: None,
                individuazione_comune_iscrizione: None,
                anno_espatrio: None,
                data_arrivo_consolato: None,
            });
        }
        Residenza {
            tipo_indirizzo: tipo,
            indirizzo,
            indirizzo_estero,
            presso: r.presso.clone(),
            note_indirizzo: None,
            data_decorrenza_residenza: decorrenza_res.unwrap_or(nascita),
        }
    });

    let prima = s.data_prima_iscrizione.as_deref().and_then(data);
    let valido_dal = prima
        .or(decorrenza_res)
        .unwrap_or(nascita)
        .min(oggi)
        .max(nascita.min(oggi));
    let posizione = if s.aire || aire.is_some() {
        PosizioneAnagrafica::Aire
    } else {
        PosizioneAnagrafica::Residente
    };
    let competenza = Competenza {
        comune: comune.clone(),
        posizione,
        id_scheda_soggetto_comune: s
            .id_comunale
            .as_deref()
            .and_then(|i| i.parse::<IdComunale>().ok()),
    };
    let iscrizione = Some(DatiIscrizione {
        motivo_iscrizione: match posizione {
            PosizioneAnagrafica::Aire => "C01".into(),
            _ => s.motivo_iscrizione.clone().unwrap_or_else(|| "4".into()),
        },
        data_iscrizione: valido_dal,
        comune: comune.clone(),
        provenienza: None,
        note: Some("subentro".into()),
    });
    SoggettoControllato {
        competenza,
        generalita,
        codice_fiscale,
        cf_da_validare,
        cittadinanze: s
            .cittadinanza
            .iter()
            .map(|c| Cittadinanza {
                codice_stato: c.clone(),
                data_validita: None,
            })
            .collect(),
        stato_civile: s.stato_civile.as_ref().map(|c| StatoCivile {
            stato_civile: c.clone(),
            eventi: Vec::new(),
        }),
        residenza,
        iscrizione,
        aire,
        legame,
        valido_dal,
        anomalie,
    }
}

/// Decodes the place of birth at the birth date (a municipality may have ceased since,
/// or be recorded with a later validity: any period of its history gives the codes).
fn luogo(tabelle: &Tables, s: &SoggettoLetto, nascita: NaiveDate) -> Option<Luogo> {
    if let Some(istat) = &s.luogo.comune_istat {
        let code: CodiceIstatComune = istat.parse().ok()?;
        let c = tabelle
            .comune_by_istat(&code, nascita)
            .or_else(|| tabelle.comune_history_by_istat(&code).into_iter().next())?;
        return Some(Luogo::Comune {
            codice_istat: c.istat.clone(),
            codice_catastale: c.catastale.clone()?,
            nome_comune: c.nome.clone(),
            sigla_provincia: Some(c.sigla_provincia.clone()),
        });
    }
    if let Some(stato) = &s.luogo.stato_codice {
        let st = tabelle
            .stato_estero_by_istat(stato, Some(nascita))
            .or_else(|| tabelle.stato_estero_by_istat(stato, None))?;
        return Some(Luogo::Estero {
            codice_stato: st.istat.clone(),
            codice_catastale: st.catastale.clone(),
            descrizione_stato: st.nome.clone(),
            localita: s.luogo.localita.clone(),
        });
    }
    s.luogo
        .eccezionale
        .clone()
        .map(|descrizione| Luogo::Eccezionale { descrizione })
}
