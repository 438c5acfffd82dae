//! Registration for reasons other than birth (service 1002, SPEC M-2.1): immigration from
//! a non-onboarded municipality or from abroad, reappearance, judicially declared
//! existence, homeless person's domicile, other reasons.
//!
//! The request is shaped after `Richiesta1002` (XSD names in camelCase). The subject
//! joins an existing family of the municipality or becomes the head of a new one.

use anpr_domain::caller::CallerContext;
use anpr_domain::codice_fiscale::{self as cf, CodiceFiscaleSoggetto, DatiCalcolo};
use anpr_domain::error::{Anomalia, CODICE_DATA_FUTURA, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{
    CodiceCatastale, CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdComunale, Sesso,
};
use anpr_domain::scheda::{
    Cittadinanza, Competenza, DataAnagrafica, DatiCodiceFiscale, DatiFamiglia, DatiIscrizione,
    Generalita, Indirizzo, Intestatario, Legame, Luogo, Nome, PosizioneAnagrafica, Provenienza,
    Residenza, SchedaFamiglia, SchedaSoggetto, StatoCodiceFiscale, StatoFamiglia, TipoScheda,
    RELAZIONE_INTESTATARIO,
};
use anpr_store::{
    EntityRef, FamilyIndex, IndexWrite, SectionWrite, Sequence, SubjectIndex, SubjectQuery,
};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::authz::Permesso;
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::{Registry, ServiceError};

/// Reason code of a registration (table "Motivi di iscrizione in Anagrafe").
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MotivoIscrizione {
    pub id_motivo_iscrizione: String,
    pub note: Option<String>,
}

/// Generalities as received.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneralitaRichiesta {
    pub cognome: String,
    pub nome: String,
    pub sesso: String,
    pub data_nascita: String,
    /// Cadastral code of the birth municipality (valid at the birth date) or Z code.
    pub luogo_nascita: String,
    pub codice_fiscale: Option<String>,
    pub id_scheda_soggetto_comune: Option<String>,
}

/// Family the subject joins (`idFamigliaConvivenzaANPR`) or a new one (absent id,
/// relationship must be 1, head).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FamigliaRichiesta {
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: Option<String>,
    pub id_famiglia_convivenza_comune: Option<String>,
    /// Code of "Relazione di parentela".
    pub codice_legame: String,
}

/// Request of service 1002.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta1002 {
    pub id_operazione_comune: Option<String>,
    pub motivo_iscrizione: MotivoIscrizione,
    /// Effective date of the registration.
    pub data_decorrenza: String,
    pub generalita: GeneralitaRichiesta,
    #[serde(default)]
    pub cittadinanza: Vec<Cittadinanza>,
    pub provenienza: Option<Provenienza>,
    pub residenza: Indirizzo,
    pub famiglia: FamigliaRichiesta,
    /// The suspended operation this registration completes (ours; SPEC M-2.5).
    pub id_operazione_sospesa: Option<String>,
}

fn date(campo: &str, s: &str, out: &mut Vec<Anomalia>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| {
            out.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Data non valida")
                    .campo(campo)
                    .valore(s)
                    .atteso("una data esistente AAAA-MM-GG"),
            )
        })
        .ok()
}

fn nome(campo: &str, s: &str, out: &mut Vec<Anomalia>) -> Option<Nome> {
    Nome::parse(s)
        .map_err(|e| out.push(Anomalia::from_invalid(campo, &e)))
        .ok()
}

impl Registry {
    /// Service 1002: registration for other reasons.
    pub async fn iscrizione_altri_motivi(
        &self,
        ctx: &CallerContext,
        req: &Richiesta1002,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata {
            codice: "1002",
            permesso: Permesso::Iscrizione,
            id_operazione_comune: req.id_operazione_comune.as_deref(),
            richiesta: raw,
            id_operazione_sospesa: self.id_sospesa(req.id_operazione_sospesa.as_deref())?,
        };
        let store = self.store(ctx.ambiente)?.clone();
        self.esegui_operazione(ctx, testata, |comune, _op| async move {
            self.decidi_1002(&*store, &comune, req).await
        })
        .await
    }

    async fn decidi_1002(
        &self,
        store: &dyn anpr_store::Store,
        comune: &CodiceIstatComune,
        req: &Richiesta1002,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let mut e = Vec::new();
        let today = self.clock().today();
        let motivo = &req.motivo_iscrizione.id_motivo_iscrizione;
        match t.code("motivi_iscrizione_apr", motivo, Some(today)) {
            None => e.push(
                Anomalia::errore("EC006", format!("Codice motivo iscrizione ANPR {motivo} inesistente sulla tabella di riferimento"))
                    .campo("motivoIscrizione.idMotivoIscrizione")
                    .valore(motivo)
                    .atteso("un codice della tabella Motivi di iscrizione in Anagrafe diverso da 1 (nascita: servizio 1001)"),
            ),
            Some(_) if motivo == "1" => e.push(
                Anomalia::errore("EC006", "La nascita si registra con il servizio 1001")
                    .campo("motivoIscrizione.idMotivoIscrizione")
                    .valore(motivo)
                    .atteso("un motivo diverso da 1"),
            ),
            Some(_) if motivo == "9" && req.motivo_iscrizione.note.as_deref().is_none_or(|n| n.trim().is_empty()) => e.push(
                Anomalia::errore("EC014", "Campo Note Motivo Iscrizione obbligatorio se codice Motivo iscrizione = 9 - Altro")
                    .campo("motivoIscrizione.note")
                    .atteso("la descrizione del motivo"),
            ),
            Some(_) => {}
        }
        let g = &req.generalita;
        let cognome = nome("generalita.cognome", &g.cognome, &mut e);
        let nome_ = nome("generalita.nome", &g.nome, &mut e);
        let sesso = g
            .sesso
            .parse::<Sesso>()
            .map_err(|x| e.push(Anomalia::from_invalid("generalita.sesso", &x)))
            .ok();
        let nascita = date("generalita.dataNascita", &g.data_nascita, &mut e);
        let decorrenza = date("dataDecorrenza", &req.data_decorrenza, &mut e);
        if let (Some(n), Some(d)) = (nascita, decorrenza) {
            if d < n {
                e.push(
                    Anomalia::errore(
                        "EHA3",
                        format!(
                            "Data di decorrenza iscrizione {d} minore della data di nascita {n}"
                        ),
                    )
                    .campo("dataDecorrenza")
                    .valore(d.to_string())
                    .atteso(format!("una data non anteriore al {n}")),
                );
            }
        }
        for (campo, d) in [
            ("generalita.dataNascita", nascita),
            ("dataDecorrenza", decorrenza),
        ] {
            if d.is_some_and(|d| d > today) {
                e.push(
                    Anomalia::errore(CODICE_DATA_FUTURA, "Data successiva alla data corrente")
                        .campo(campo)
                        .atteso(format!("una data non successiva al {today}")),
                );
            }
        }
        let luogo_code = g
            .luogo_nascita
            .trim()
            .to_ascii_uppercase()
            .parse::<CodiceCatastale>()
            .map_err(|x| e.push(Anomalia::from_invalid("generalita.luogoNascita", &x)))
            .ok();
        let luogo = match (&luogo_code, nascita) {
            (Some(code), Some(n)) => self
                .luogo_alla_data(code, n, "generalita.luogoNascita")
                .map_err(|a| e.push(a))
                .ok(),
            _ => None,
        };
        for (i, c) in req.cittadinanza.iter().enumerate() {
            if c.codice_stato != "100" && t.stato_estero_by_istat(&c.codice_stato, None).is_none() {
                e.push(
                    Anomalia::errore(
                        "EC036",
                        format!(
                            "Stato estero cittadinanza {} inesistente sulla tabella di riferimento",
                            c.codice_stato
                        ),
                    )
                    .campo(format!("cittadinanza[{i}].codiceStato"))
                    .valore(&c.codice_stato)
                    .atteso("100 (Italia) o il codice ISTAT di uno stato estero"),
                );
            }
        }
        if &req.residenza.comune != comune {
            e.push(
                Anomalia::errore(
                    CODICE_FUORI_COMPETENZA,
                    "Indirizzo di residenza in un comune diverso da quello che esegue l'iscrizione",
                )
                .campo("residenza.comune")
                .valore(req.residenza.comune.as_str())
                .atteso(comune.to_string()),
            );
        }
        let id_comunale = g
            .id_scheda_soggetto_comune
            .as_deref()
            .map(|s| {
                s.parse::<IdComunale>()
                    .map_err(|x| {
                        e.push(Anomalia::from_invalid(
                            "generalita.idSchedaSoggettoComune",
                            &x,
                        ))
                    })
                    .ok()
            })
            .unwrap_or(None);
        let legame = &req.famiglia.codice_legame;
        if t.code("relazione_parentela", legame, None).is_none() {
            e.push(
                Anomalia::errore("EC002", format!("Codice relazione di parentela {legame} inesistente sulla tabella di riferimento"))
                    .campo("famiglia.codiceLegame")
                    .valore(legame),
            );
        }
        let famiglia_esistente = match &req.famiglia.id_famiglia_convivenza_anpr {
            None => {
                if legame != RELAZIONE_INTESTATARIO {
                    e.push(
                        Anomalia::errore("EF021", "Il codice legame deve essere 1 - Intestatario quando viene richiesta la creazione di una nuova famiglia")
                            .campo("famiglia.codiceLegame")
                            .valore(legame)
                            .atteso(RELAZIONE_INTESTATARIO),
                    );
                }
                None
            }
            Some(raw) => {
                match raw.parse::<IdAnprFamiglia>() {
                    Err(x) => {
                        e.push(Anomalia::from_invalid(
                            "famiglia.idFamigliaConvivenzaANPR",
                            &x,
                        ));
                        None
                    }
                    Ok(id) => match store.family_index(id).await {
                        Ok(Some(f)) if &f.comune == comune && f.stato == "A" => {
                            if legame == RELAZIONE_INTESTATARIO {
                                e.push(Anomalia::errore("EF007", "Intestatario della scheda famiglia/convivenza gia' presente").campo("famiglia.codiceLegame").valore(legame));
                            }
                            Some(f)
                        }
                        Ok(_) => {
                            e.push(
                                Anomalia::errore(
                                    CODICE_FAMIGLIA_INESISTENTE,
                                    "Famiglia inesistente, archiviata o di un altro comune",
                                )
                                .campo("famiglia.idFamigliaConvivenzaANPR")
                                .valore(raw)
                                .atteso(format!("una famiglia attiva del comune {comune}")),
                            );
                            None
                        }
                        Err(x) => return Err(vec![self.anomalia_interna(x)]),
                    },
                }
            }
        };
        // The codice fiscale: given (checked, also against the five data) or computed.
        let mut avvertimenti = Vec::new();
        let codice_fiscale = match (
            &g.codice_fiscale,
            &cognome,
            &nome_,
            sesso,
            nascita,
            &luogo_code,
        ) {
            (Some(raw), ..) => {
                let raw = raw.trim().to_ascii_uppercase();
                match raw.parse::<CodiceFiscaleSoggetto>() {
                    Err(x) => {
                        e.push(
                            Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                                .campo("generalita.codiceFiscale")
                                .valore(&raw),
                        );
                        None
                    }
                    Ok(c) => {
                        if let (Some(ord), Some(cg), Some(nm), Some(s), Some(n), Some(l)) =
                            (c.ordinario(), &cognome, &nome_, sesso, nascita, &luogo_code)
                        {
                            let dati = DatiCalcolo {
                                cognome: cg.as_str(),
                                nome: nm.as_str(),
                                sesso: s,
                                data_nascita: n,
                                luogo_nascita: l,
                            };
                            if let Err(diff) = cf::coerente_con_dati(ord, &dati) {
                                for d in diff {
                                    avvertimenti.push(
                                        Anomalia::avvertimento(d.codice_anpr(), d.to_string())
                                            .campo("generalita.codiceFiscale")
                                            .valore(&raw),
                                    );
                                }
                            }
                        }
                        Some(c)
                    }
                }
            }
            (None, Some(cg), Some(nm), Some(s), Some(n), Some(l)) => {
                let dati = DatiCalcolo {
                    cognome: cg.as_str(),
                    nome: nm.as_str(),
                    sesso: s,
                    data_nascita: n,
                    luogo_nascita: l,
                };
                cf::calcola(&dati)
                    .map(CodiceFiscaleSoggetto::Ordinario)
                    .map_err(|x| {
                        e.push(
                            Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                                .campo("generalita"),
                        )
                    })
                    .ok()
            }
            _ => None,
        };
        if let Some(c) = &codice_fiscale {
            let q = SubjectQuery {
                codice_fiscale: Some(c.as_str().to_owned()),
                limit: 10,
                ..Default::default()
            };
            let found = store
                .find_subjects(&q)
                .await
                .map_err(|x| vec![self.anomalia_interna(x)])?;
            if found.iter().any(|s| s.posizione != "C") {
                e.push(
                    Anomalia::errore(
                        "EN248",
                        format!("Soggetto gia' presente su ANPR con CF {}", c.as_str()),
                    )
                    .campo("generalita.codiceFiscale")
                    .valore(c.as_str()),
                );
            }
            let esclusa = self
                .id_sospesa(req.id_operazione_sospesa.as_deref())
                .ok()
                .flatten();
            let conflitto = self
                .sospesa_in_conflitto(store, comune, &[], Some(c.as_str()), esclusa)
                .await;
            e.extend(conflitto.map_err(|x| vec![self.anomalia_interna(x)])?);
        }
        let (
            Some(cognome),
            Some(nome_),
            Some(sesso),
            Some(nascita),
            Some(decorrenza),
            Some(luogo),
            Some(luogo_code),
            Some(codice_fiscale),
            true,
        ) = (
            cognome,
            nome_,
            sesso,
            nascita,
            decorrenza,
            luogo,
            luogo_code,
            codice_fiscale,
            e.is_empty(),
        )
        else {
            return Err(e);
        };

        let new_id = |seq| async move { store.next_id(seq).await };
        let soggetto = IdAnprSoggetto::new(
            new_id(Sequence::Soggetto)
                .await
                .map_err(|x| vec![self.anomalia_interna(x)])?,
        )
        .map_err(|x| vec![self.anomalia_interna(x)])?;
        // Joining a family changes it too (its membership): the family's index row is
        // written again, so the operation is linked to the family and annulments of
        // earlier operations on it must wait for this one (newest first).
        let (famiglia, nuova) = match &famiglia_esistente {
            Some(f) => (f.id, false),
            None => (
                IdAnprFamiglia::new(
                    new_id(Sequence::Famiglia)
                        .await
                        .map_err(|x| vec![self.anomalia_interna(x)])?,
                )
                .map_err(|x| vec![self.anomalia_interna(x)])?,
                true,
            ),
        };
        let luogo_nascita = if luogo.tipo == "comune" {
            Luogo::Comune {
                codice_istat: luogo
                    .codice_istat
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|x| vec![self.anomalia_interna(x)])?,
                codice_catastale: luogo_code,
                nome_comune: luogo.denominazione.clone(),
                sigla_provincia: luogo.sigla_provincia.clone(),
            }
        } else {
            Luogo::Estero {
                codice_stato: luogo.codice_istat.clone().unwrap_or_default(),
                codice_catastale: Some(luogo_code),
                descrizione_stato: luogo.denominazione.clone(),
                localita: None,
            }
        };
        let residenza = Residenza {
            tipo_indirizzo: "1".into(),
            indirizzo: Some(req.residenza.clone()),
            indirizzo_estero: None,
            presso: None,
            note_indirizzo: None,
            data_decorrenza_residenza: decorrenza,
        };
        let scheda = SchedaSoggetto {
            competenza: Some(Competenza {
                comune: comune.clone(),
                posizione: PosizioneAnagrafica::Residente,
                id_scheda_soggetto_comune: id_comunale.clone(),
            }),
            generalita: Some(Generalita {
                cognome: Some(cognome.clone()),
                nome: Some(nome_.clone()),
                sesso,
                data_nascita: DataAnagrafica::completa(nascita),
                luogo_nascita,
                note: None,
            }),
            codice_fiscale: Some(DatiCodiceFiscale {
                stato: match codice_fiscale {
                    CodiceFiscaleSoggetto::Provvisorio(_) => StatoCodiceFiscale::Provvisorio,
                    CodiceFiscaleSoggetto::Ordinario(_) => StatoCodiceFiscale::NonValidato,
                },
                cod_fiscale: codice_fiscale,
                data_attribuzione_validita: None,
                codici_collegati: Vec::new(),
            }),
            cittadinanze: (!req.cittadinanza.is_empty()).then(|| req.cittadinanza.clone()),
            residenza: Some(residenza.clone()),
            legame: Some(Legame {
                id_famiglia_convivenza_anpr: famiglia,
                tipo_legame: TipoScheda::Famiglia,
                codice_legame: legame.clone(),
                data_decorrenza: decorrenza,
            }),
            iscrizione: Some(DatiIscrizione {
                motivo_iscrizione: motivo.clone(),
                data_iscrizione: decorrenza,
                comune: comune.clone(),
                provenienza: req.provenienza.clone(),
                note: req.motivo_iscrizione.note.clone(),
            }),
            ..Default::default()
        };
        let s = EntityRef::Soggetto(soggetto);
        let key = famiglia.to_string();
        let mut writes: Vec<SectionWrite> = scheda
            .sections()
            .into_iter()
            .map(|(k, v)| SectionWrite {
                entity: s,
                section: k.key().to_owned(),
                key: (k == anpr_domain::scheda::SezioneSoggetto::Legame).then(|| key.clone()),
                value: Some(v),
            })
            .collect();
        let chiave_indirizzo = req.residenza.chiave_edificio();
        let mut indexes = vec![IndexWrite::Soggetto(SubjectIndex {
            id: soggetto,
            comune: comune.clone(),
            posizione: PosizioneAnagrafica::Residente.code().into(),
            codice_fiscale: Some(codice_fiscale.as_str().to_owned()),
            cognome_key: Some(cognome.key()),
            nome_key: Some(nome_.key()),
            sesso: Some(sesso.code().into()),
            data_nascita: Some(nascita),
            id_comunale: id_comunale.map(|i| i.to_string()),
            id_famiglia: Some(famiglia),
            chiave_indirizzo: Some(chiave_indirizzo.clone()),
        })];
        if let Some(f) = famiglia_esistente {
            indexes.push(IndexWrite::Famiglia(f));
        }
        if nuova {
            let id_comunale_famiglia = req
                .famiglia
                .id_famiglia_convivenza_comune
                .as_deref()
                .map(|s| {
                    s.parse::<IdComunale>().map_err(|x| {
                        vec![Anomalia::from_invalid(
                            "famiglia.idFamigliaConvivenzaComune",
                            &x,
                        )]
                    })
                })
                .transpose()?;
            let f = SchedaFamiglia {
                dati: Some(DatiFamiglia {
                    tipo_scheda: TipoScheda::Famiglia,
                    comune: comune.clone(),
                    id_famiglia_convivenza_comune: id_comunale_famiglia.clone(),
                    famiglia_aire: false,
                    data_origine_famiglia_convivenza: decorrenza,
                    motivo_costituzione: None,
                    denominazione_convivenza: None,
                    specie_convivenza: None,
                }),
                intestatario: Some(Intestatario {
                    id_anpr: soggetto,
                    data_decorrenza: decorrenza,
                }),
                residenza: Some(residenza),
                stato: Some(StatoFamiglia::Attiva),
            };
            let fe = EntityRef::Famiglia(famiglia);
            writes.extend(f.sections().into_iter().map(|(k, v)| SectionWrite {
                entity: fe,
                section: k.key().to_owned(),
                value: Some(v),
                key: None,
            }));
            indexes.push(IndexWrite::Famiglia(FamilyIndex {
                id: famiglia,
                comune: comune.clone(),
                tipo: "F".into(),
                stato: "A".into(),
                id_comunale: id_comunale_famiglia.map(|i| i.to_string()),
                chiave_indirizzo: Some(chiave_indirizzo),
            }));
        }
        Ok(Piano {
            decorrenza: Some(decorrenza),
            writes,
            indexes,
            outbox: Vec::new(),
            soggetti: vec![soggetto],
            famiglie: vec![famiglia],
            avvertimenti,
            annulla: None,
            procedimenti: Vec::new(),
        })
    }

    /// An internal failure met while deciding: logged, and shown only as a coded
    /// internal error with its reference.
    pub(crate) fn anomalia_interna(&self, cause: impl std::fmt::Display) -> Anomalia {
        let err = self.interno(cause);
        err.anomalie().remove(0)
    }
}

/// Our code for an address outside the municipality's competence.
pub const CODICE_FUORI_COMPETENZA: &str = "EV032";
/// Our code for a family that does not exist, is archived or belongs elsewhere.
pub const CODICE_FAMIGLIA_INESISTENTE: &str = "EV033";
