//! Changes of an individual record (SPEC M-2.2): change of any data (service 5008:
//! generalities with the codice fiscale re-derived and linked, citizenship, parents,
//! civil-status events, residence permit, other data, birth deed), revocation of a datum
//! (5013) and rectification of onboarding dates and registration data (5014).
//!
//! Requests are shaped after `Richiesta5008`, `Richiesta5013`, `Richiesta5014`.

use anpr_domain::caller::CallerContext;
use anpr_domain::codice_fiscale::{self as cf, CodiceFiscaleSoggetto, DatiCalcolo};
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::{CodiceIstatComune, Sesso};
use anpr_domain::scheda::{
    AltriDati, Atti, Atto, Cittadinanza, DataAnagrafica, DatiCodiceFiscale, EventoStatoCivile,
    Genitore, Genitori, PermessoSoggiorno, PosizioneAnagrafica, Provenienza, SchedaSoggetto,
    StatoCivile, StatoCodiceFiscale, TipoEventoStatoCivile,
};
use anpr_store::{EntityRef, Store};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::authz::Permesso;
use crate::lavoro::{Modifiche, SoggettoCorrente, SoggettoPerRicerca};
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// New generalities (only the fields given change).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneralitaModifica {
    pub cognome: Option<String>,
    pub nome: Option<String>,
    pub sesso: Option<String>,
    pub data_nascita: Option<String>,
    pub luogo_nascita: Option<String>,
    /// A codice fiscale to set explicitly; otherwise it is derived from the new data.
    pub codice_fiscale: Option<String>,
    /// What to ask the tax agency (`tipoGestioneCF`; default 0, verification).
    #[serde(rename = "gestioneCF")]
    pub gestione_cf: Option<String>,
}

/// A parent or spouse named in a request: by registry identity, or by name only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonaRiferita {
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<String>,
    pub codice_fiscale: Option<String>,
    pub cognome: Option<String>,
    pub nome: Option<String>,
}

/// A civil-status event of the request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventoRichiesto {
    pub data_evento: String,
    pub coniuge: Option<PersonaRiferita>,
    /// Cadastral code of the place of the event.
    pub luogo_evento: Option<String>,
    pub atto: Option<Atto>,
    /// Code of "Tipo cessazione matrimonio" (for divorce / annulment).
    pub tipo_cessazione: Option<String>,
}

/// Request of service 5008.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta5008 {
    pub id_operazione_comune: Option<String>,
    /// The suspended operation this change completes (SPEC M-2.5).
    pub id_operazione_sospesa: Option<String>,
    pub data_decorrenza: String,
    pub soggetto: SoggettoPerRicerca,
    /// Codes of "Tipi mutazione" the request declares (checked against the table).
    #[serde(default)]
    pub tipo_mutazione: Vec<String>,
    pub generalita: Option<GeneralitaModifica>,
    pub cittadinanza: Option<Vec<Cittadinanza>>,
    pub paternita: Option<PersonaRiferita>,
    pub maternita: Option<PersonaRiferita>,
    pub matrimonio: Option<EventoRichiesto>,
    pub vedovanza: Option<EventoRichiesto>,
    /// Divorce or annulment of the marriage.
    pub cessazione_matrimonio: Option<EventoRichiesto>,
    pub unione_civile: Option<EventoRichiesto>,
    pub scioglimento_unione: Option<EventoRichiesto>,
    pub convivenza_di_fatto: Option<EventoRichiesto>,
    pub risoluzione_convivenza: Option<EventoRichiesto>,
    pub permesso_soggiorno: Option<PermessoSoggiorno>,
    pub altri_dati: Option<AltriDati>,
    pub atto_nascita: Option<Atto>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Request of service 5013: revocation of one datum.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta5013 {
    pub id_operazione_comune: Option<String>,
    pub data_decorrenza: String,
    pub soggetto: SoggettoPerRicerca,
    /// Code of "Tipo revoca" (1 paternity, 2 maternity, 3 residence permit, 6 marriage,
    /// 7 civil union, 8 de facto cohabitation), or one of `cartaIdentita`, `attoNascita`,
    /// `codiceFiscale` (an unvalidated tax code) for the other data SPEC M-2.2 lists.
    pub tipo_revoca: String,
    /// Code of "Motivo revoca" (1 material error, 2 revocation, 3 other).
    pub motivo_revoca: String,
    pub note: Option<String>,
}

/// Rectification 102: the registration reason.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rettifica102 {
    pub id_motivo_iscrizione: String,
    pub note: Option<String>,
    pub provenienza: Option<Provenienza>,
}

/// Rectifications 101, 103, 104: onboarding dates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RettificaDate {
    pub data_decorrenza_residenza: Option<String>,
    pub data_prima_iscrizione_comune: Option<String>,
    pub data_ingresso_famiglia: Option<String>,
    pub data_decorrenza_legame: Option<String>,
}

/// Rectification 105: the place of birth.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rettifica105 {
    pub luogo_nascita: String,
}

/// Request of service 5014 (`tipoRettifica`: exactly one of the choices).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta5014 {
    pub id_operazione_comune: Option<String>,
    pub soggetto: SoggettoPerRicerca,
    pub richiesta_rettifica101: Option<RettificaDate>,
    pub richiesta_rettifica102: Option<Rettifica102>,
    pub richiesta_rettifica103: Option<RettificaDate>,
    pub richiesta_rettifica104: Option<RettificaDate>,
    pub richiesta_rettifica105: Option<Rettifica105>,
}

/// Our code for a civil-status event that does not follow from the current status
/// (e.g. widowhood of someone not married).
pub const CODICE_STATO_CIVILE_INCOERENTE: &str = "EV042";
/// Our code for a datum to revoke that the record does not hold.
pub const CODICE_DATO_ASSENTE: &str = "EV043";
/// Our code for a change request that changes nothing.
pub const CODICE_NESSUNA_MODIFICA: &str = "EV044";

impl Registry {
    /// Service 5008: change of the data of an individual record.
    pub async fn mutazione_scheda(
        &self,
        ctx: &CallerContext,
        req: &Richiesta5008,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "5008",
            Permesso::Mutazione,
            req.id_operazione_comune.as_deref(),
            raw,
        )
        .completa(self.id_sospesa(req.id_operazione_sospesa.as_deref())?);
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_5008(&*store, ctx.ambiente, &comune, req).await
        })
        .await
    }

    /// Service 5013: revocation of a datum.
    pub async fn revoca_dato(
        &self,
        ctx: &CallerContext,
        req: &Richiesta5013,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "5013",
            Permesso::Mutazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_5013(&*store, &comune, req).await
        })
        .await
    }

    /// Service 5014: rectification.
    pub async fn rettifica_dati(
        &self,
        ctx: &CallerContext,
        req: &Richiesta5014,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "5014",
            Permesso::Mutazione,
            req.id_operazione_comune.as_deref(),
            raw,
        );
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            self.decidi_5014(&*store, &comune, req).await
        })
        .await
    }

    /// Loads a live subject of `comune` for a change (EN117 other municipality, EN413
    /// cancelled), named by the request field `campo`.
    pub(crate) async fn soggetto_da_modificare(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        campo: &str,
        chi: &SoggettoPerRicerca,
        e: &mut Vec<Anomalia>,
    ) -> Option<SoggettoCorrente> {
        match self.carica_soggetto(store, campo, chi, Some(comune)).await {
            Err(a) => {
                e.push(a);
                None
            }
            Ok(s) if s.posizione() == Some(PosizioneAnagrafica::Cancellato) => {
                e.push(
                    Anomalia::errore("EN413", "Il soggetto risulta cancellato")
                        .campo(campo)
                        .valore(s.id.to_string()),
                );
                None
            }
            Ok(s) => Some(s),
        }
    }

    /// Resolves a parent or spouse: one in the registry (by id or CF) is linked by its
    /// id; one outside is kept by name.
    pub(crate) async fn persona(
        &self,
        store: &dyn Store,
        campo: &str,
        p: &PersonaRiferita,
        codice_assente: &str,
        e: &mut Vec<Anomalia>,
    ) -> Option<(Genitore, Option<SoggettoCorrente>)> {
        if p.id_scheda_soggetto_anpr.is_some() || p.codice_fiscale.is_some() {
            let chi = SoggettoPerRicerca {
                id_scheda_soggetto_anpr: p.id_scheda_soggetto_anpr.clone(),
                codice_fiscale: p.codice_fiscale.clone(),
            };
            return match self.carica_soggetto(store, campo, &chi, None).await {
                Ok(s) => Some((s.come_persona(), Some(s))),
                Err(a) => {
                    e.push(
                        Anomalia::errore(
                            codice_assente,
                            format!("{}: {}", testo_assente(codice_assente), a.testo),
                        )
                        .campo(campo)
                        .valore(a.valore.unwrap_or_default()),
                    );
                    None
                }
            };
        }
        if p.cognome.is_none() && p.nome.is_none() {
            e.push(
                Anomalia::errore("ES044", "Indicare almeno il cognome o il nome del genitore")
                    .campo(campo),
            );
            return None;
        }
        let cognome = p
            .cognome
            .as_deref()
            .and_then(|c| v::nome(&format!("{campo}.cognome"), c, e));
        let nome = p
            .nome
            .as_deref()
            .and_then(|c| v::nome(&format!("{campo}.nome"), c, e));
        Some((
            Genitore {
                id_anpr: None,
                codice_fiscale: None,
                cognome,
                nome,
            },
            None,
        ))
    }

    async fn decidi_5008(
        &self,
        store: &dyn Store,
        ambiente: anpr_domain::caller::Ambiente,
        comune: &CodiceIstatComune,
        req: &Richiesta5008,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let decorrenza = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", decorrenza, oggi, &mut e);
        for (i, c) in req.tipo_mutazione.iter().enumerate() {
            v::codice_tabella(
                t,
                "tipi_mutazione",
                c,
                None,
                "EN371",
                "Tipo mutazione",
                &format!("tipoMutazione[{i}]"),
                &mut e,
            );
        }
        let s = self
            .soggetto_da_modificare(store, comune, "soggetto", &req.soggetto, &mut e)
            .await;
        let (Some(s), Some(decorrenza)) = (s, decorrenza) else {
            return Err(e);
        };
        let mut dopo = s.scheda.clone();
        let mut m = Modifiche::default();
        let mut avvertimenti = Vec::new();
        let nascita = s.scheda.generalita.as_ref().map(|g| g.data_nascita.data);
        if let Some(g) = &req.generalita {
            self.nuove_generalita(&s, g, &mut dopo, &mut e, &mut avvertimenti);
        }
        if let Some(cs) = &req.cittadinanza {
            self.valida_cittadinanze(cs, &mut e);
            for (i, c) in cs.iter().enumerate() {
                if let (Some(d), Some(n)) = (c.data_validita, nascita) {
                    if d < n || d > oggi {
                        e.push(
                            Anomalia::errore("ES009", format!("Data validita' cittadinanza {d} deve essere maggiore uguale della data di nascita {n} e minore uguale della data corrente {oggi}"))
                                .campo(format!("cittadinanza[{i}].dataValidita"))
                                .valore(d.to_string()),
                        );
                    }
                }
            }
            dopo.cittadinanze = (!cs.is_empty()).then(|| cs.clone());
        }
        for (campo, p, codice) in [
            ("paternita", &req.paternita, "EN142"),
            ("maternita", &req.maternita, "EN143"),
        ] {
            if let Some(p) = p {
                if let Some((g, _)) = self.persona(store, campo, p, codice, &mut e).await {
                    let gen = dopo.genitori.get_or_insert_with(Genitori::default);
                    if campo == "paternita" {
                        gen.padre = Some(g);
                    } else {
                        gen.madre = Some(g);
                    }
                }
            }
        }
        // Civil-status events, each coherent with the status before it.
        let eventi = [
            (
                &req.matrimonio,
                TipoEventoStatoCivile::Matrimonio,
                "matrimonio",
            ),
            (
                &req.vedovanza,
                TipoEventoStatoCivile::Vedovanza,
                "vedovanza",
            ),
            (
                &req.cessazione_matrimonio,
                TipoEventoStatoCivile::Divorzio,
                "cessazioneMatrimonio",
            ),
            (
                &req.unione_civile,
                TipoEventoStatoCivile::UnioneCivile,
                "unioneCivile",
            ),
            (
                &req.scioglimento_unione,
                TipoEventoStatoCivile::ScioglimentoUnione,
                "scioglimentoUnione",
            ),
            (
                &req.convivenza_di_fatto,
                TipoEventoStatoCivile::ConvivenzaDiFatto,
                "convivenzaDiFatto",
            ),
            (
                &req.risoluzione_convivenza,
                TipoEventoStatoCivile::RisoluzioneConvivenza,
                "risoluzioneConvivenza",
            ),
        ];
        let presenti = eventi.iter().filter(|(x, ..)| x.is_some()).count();
        if presenti > 1 {
            e.push(
                Anomalia::errore("EN321", "Non e' consentito effettuare contemporaneamente mutazioni che riguardino i dati relativi a matrimonio, convivenza di fatto e unione civile")
                    .campo("matrimonio")
                    .atteso("un solo evento di stato civile per operazione"),
            );
        }
        let mut coniuge_da_aggiornare = None;
        for (ev, tipo, campo) in eventi {
            let Some(ev) = ev else { continue };
            let data = v::data(&format!("{campo}.dataEvento"), &ev.data_evento, &mut e);
            if let (Some(d), Some(n)) = (data, nascita) {
                if d <= n || d > decorrenza {
                    e.push(
                        Anomalia::errore(
                            if tipo == TipoEventoStatoCivile::Vedovanza { "ES011" } else { "ES010" },
                            "La data dell'evento deve essere maggiore della data di nascita e minore o uguale della data di decorrenza dell'operazione",
                        )
                        .campo(format!("{campo}.dataEvento"))
                        .valore(d.to_string())
                        .atteso(format!("una data tra il {n} (escluso) e il {decorrenza}")),
                    );
                }
            }
            let attuale = dopo
                .stato_civile
                .as_ref()
                .map_or("1", |sc| sc.stato_civile.as_str())
                .to_owned();
            let (ammessi, nuovo): (&[&str], Option<&str>) = match tipo {
                TipoEventoStatoCivile::Matrimonio => (&["1", "3", "4", "7", "8", "9"], Some("2")),
                TipoEventoStatoCivile::Vedovanza => (&["2"], Some("3")),
                TipoEventoStatoCivile::Divorzio | TipoEventoStatoCivile::AnnullamentoMatrimonio => {
                    (&["2"], Some("4"))
                }
                TipoEventoStatoCivile::UnioneCivile => (&["1", "3", "4", "7", "8", "9"], Some("6")),
                TipoEventoStatoCivile::ScioglimentoUnione => (&["6"], Some("8")),
                TipoEventoStatoCivile::ConvivenzaDiFatto
                | TipoEventoStatoCivile::RisoluzioneConvivenza => (&[], None),
            };
            if nuovo.is_some() && !ammessi.contains(&attuale.as_str()) {
                e.push(
                    Anomalia::errore(
                        CODICE_STATO_CIVILE_INCOERENTE,
                        format!(
                            "Evento {campo} incompatibile con lo stato civile attuale {attuale}"
                        ),
                    )
                    .campo(campo)
                    .valore(attuale.clone())
                    .atteso(format!("stato civile tra {}", ammessi.join(", "))),
                );
            }
            if let Some(c) = &ev.tipo_cessazione {
                if t.code("tipo_cessazione_matrimonio", c, None).is_none() {
                    avvertimenti.push(
                        Anomalia::avvertimento(
                            "EC165",
                            "Codice tipo fine matrimonio non presente sulla tabella di riferimento",
                        )
                        .campo(format!("{campo}.tipoCessazione"))
                        .valore(c),
                    );
                }
            }
            let luogo = ev
                .luogo_evento
                .as_deref()
                .and_then(|l| self.luogo_evento(&format!("{campo}.luogoEvento"), l, data, &mut e))
                .map(|(_, l)| l);
            let coniuge = match &ev.coniuge {
                Some(p) => {
                    self.persona(store, &format!("{campo}.coniuge"), p, "ES038", &mut e)
                        .await
                }
                None => None,
            };
            let Some(data) = data else { continue };
            let evento = EventoStatoCivile {
                tipo,
                data_evento: data,
                luogo_evento: luogo,
                atto: ev.atto.clone(),
                coniuge: coniuge.as_ref().map(|(g, _)| g.clone()),
                tipo_cessazione: ev.tipo_cessazione.clone(),
            };
            let sc = dopo.stato_civile.get_or_insert_with(|| StatoCivile {
                stato_civile: attuale.clone(),
                eventi: Vec::new(),
            });
            if let Some(n) = nuovo {
                sc.stato_civile = n.to_owned();
            }
            sc.eventi.push(evento.clone());
            // A marriage or civil union with someone in the registry is recorded on
            // both records.
            if let (
                Some((_, Some(c))),
                TipoEventoStatoCivile::Matrimonio | TipoEventoStatoCivile::UnioneCivile,
            ) = (coniuge, tipo)
            {
                if c.id == s.id {
                    e.push(
                        Anomalia::errore(
                            anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                            "Il coniuge non puo' essere il soggetto stesso",
                        )
                        .campo(format!("{campo}.coniuge")),
                    );
                } else {
                    coniuge_da_aggiornare = Some((c, evento, nuovo.unwrap_or("2").to_owned()));
                }
            }
        }
        if let Some(p) = &req.permesso_soggiorno {
            v::codice_tabella(
                t,
                "tipo_soggiorno",
                &p.tipo_soggiorno,
                None,
                "EC063",
                "Campo codice tipo soggiorno",
                "permessoSoggiorno.tipoSoggiorno",
                &mut e,
            );
            if p.data_scadenza.is_some_and(|s| s < p.data_rilascio) {
                e.push(
                    Anomalia::errore(
                        anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                        "Data di scadenza del permesso anteriore alla data di rilascio",
                    )
                    .campo("permessoSoggiorno.dataScadenza")
                    .atteso(format!("una data non anteriore al {}", p.data_rilascio)),
                );
            }
            dopo.permesso_soggiorno = Some(p.clone());
        }
        if let Some(a) = &req.altri_dati {
            for (campo, val, tab, cod, descr) in [
                (
                    "altriDati.titoloStudio",
                    &a.titolo_studio,
                    "titolo_studio",
                    "EC066",
                    "Campo codice titolo di studio",
                ),
                (
                    "altriDati.posizioneProfessionale",
                    &a.posizione_professionale,
                    "posizione_professione",
                    "EC064",
                    "Campo codice posizione nella professione",
                ),
                (
                    "altriDati.condizioneNonProfessionale",
                    &a.condizione_non_professionale,
                    "condizione_non_professionale",
                    "EC065",
                    "Campo codice condizione non professionale",
                ),
            ] {
                if let Some(val) = val {
                    v::codice_tabella(t, tab, val, None, cod, descr, campo, &mut e);
                }
            }
            dopo.altri_dati = Some(a.clone());
        }
        if let Some(a) = &req.atto_nascita {
            if nascita.is_some_and(|n| {
                a.anno < n.year()
                    || a.anno > oggi.year()
                    || a.data_formazione_atto.is_some_and(|d| d < n || d > oggi)
            }) {
                e.push(
                    Anomalia::errore("ES013", "L'anno e la data di formazione del'atto di nascita non possono essere precedenti alla data di nascita ne' successivi alla data corrente")
                        .campo("attoNascita.anno")
                        .valore(a.anno.to_string()),
                );
            }
            dopo.atti.get_or_insert_with(Atti::default).atto_nascita = Some(a.clone());
        }
        let gestione = req.generalita.as_ref().map(|g| {
            crate::ae::gestione(
                "generalita.gestioneCF",
                g.gestione_cf.as_deref(),
                true,
                &mut e,
            )
        });
        if !e.is_empty() {
            return Err(e);
        }
        // Changed generalities are verified with the tax agency (gestioneCF 0 by
        // default): the code's state on the record is the agency's answer.
        if let (Some(gestione), Some(g), Some(cfd)) = (
            gestione,
            dopo.generalita.clone(),
            dopo.codice_fiscale.clone(),
        ) {
            if Some(&g) != s.scheda.generalita.as_ref()
                || dopo.codice_fiscale != s.scheda.codice_fiscale
            {
                if let (Some(c), Some(n), Some(l)) =
                    (&g.cognome, &g.nome, g.luogo_nascita.codice_catastale())
                {
                    let dati = crate::ae::DatiCf {
                        cognome: c.as_str(),
                        nome: n.as_str(),
                        sesso: g.sesso,
                        nascita: g.data_nascita.data,
                        luogo: l,
                    };
                    let vecchio = s
                        .scheda
                        .codice_fiscale
                        .as_ref()
                        .map_or(&cfd.cod_fiscale, |c| &c.cod_fiscale);
                    let mut nuovo = if gestione == anpr_ae::GestioneCf::Verifica
                        && Some(&g) != s.scheda.generalita.as_ref()
                    {
                        self.allinea_ae(
                            ambiente,
                            comune,
                            vecchio,
                            &cfd.cod_fiscale,
                            &dati,
                            &mut avvertimenti,
                        )
                        .await?
                    } else {
                        self.codice_fiscale_ae(
                            ambiente,
                            comune,
                            gestione,
                            &cfd.cod_fiscale,
                            &dati,
                            &mut avvertimenti,
                        )
                        .await?
                    };
                    for x in &cfd.codici_collegati {
                        if *x != nuovo.cod_fiscale && !nuovo.codici_collegati.contains(x) {
                            nuovo.codici_collegati.push(*x);
                        }
                    }
                    dopo.codice_fiscale = Some(nuovo);
                }
            }
        }
        if dopo == s.scheda {
            return Err(vec![Anomalia::errore(
                CODICE_NESSUNA_MODIFICA,
                "La richiesta non modifica alcun dato della scheda",
            )
            .campo("soggetto")
            .atteso("almeno un gruppo di dati diverso da quello in vigore")]);
        }
        m.soggetto(s.id, &s.scheda, &dopo);
        if let Some((c, mut evento, nuovo)) = coniuge_da_aggiornare {
            let mut cd = c.scheda.clone();
            let g = s.scheda.generalita.as_ref();
            evento.coniuge = Some(Genitore {
                id_anpr: Some(s.id),
                codice_fiscale: dopo.codice_fiscale.as_ref().map(|x| x.cod_fiscale),
                cognome: g.and_then(|g| g.cognome.clone()),
                nome: g.and_then(|g| g.nome.clone()),
            });
            let sc = cd.stato_civile.get_or_insert_with(|| StatoCivile {
                stato_civile: "1".into(),
                eventi: Vec::new(),
            });
            sc.stato_civile = nuovo;
            sc.eventi.push(evento);
            m.soggetto(c.id, &c.scheda, &cd);
        }
        Ok(m.piano(decorrenza, avvertimenti))
    }

    /// Applies new generalities to `dopo`; an ordinary codice fiscale is re-derived
    /// from the new data and the old one kept as a linked code.
    fn nuove_generalita(
        &self,
        s: &SoggettoCorrente,
        g: &GeneralitaModifica,
        dopo: &mut SchedaSoggetto,
        e: &mut Vec<Anomalia>,
        avvertimenti: &mut Vec<Anomalia>,
    ) {
        let Some(mut gen) = s.scheda.generalita.clone() else {
            e.push(
                Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Scheda senza generalita'")
                    .campo("generalita"),
            );
            return;
        };
        if let Some(c) = &g.cognome {
            gen.cognome = v::nome("generalita.cognome", c, e);
        }
        if let Some(n) = &g.nome {
            gen.nome = v::nome("generalita.nome", n, e);
        }
        if let Some(x) = &g.sesso {
            if let Ok(x) = x
                .parse::<Sesso>()
                .map_err(|x| e.push(Anomalia::from_invalid("generalita.sesso", &x)))
            {
                gen.sesso = x;
            }
        }
        if let Some(d) = &g.data_nascita {
            if let Some(d) = v::data("generalita.dataNascita", d, e) {
                v::non_futura("generalita.dataNascita", Some(d), self.clock().today(), e);
                gen.data_nascita = DataAnagrafica::completa(d);
            }
        }
        let luogo_raw = g
            .luogo_nascita
            .clone()
            .or_else(|| gen.luogo_nascita.codice_catastale().map(|c| c.to_string()));
        if let Some(l) = luogo_raw.as_deref() {
            if let Some((_, luogo)) =
                self.luogo_evento("generalita.luogoNascita", l, Some(gen.data_nascita.data), e)
            {
                gen.luogo_nascita = luogo;
            }
        }
        let attuale = s.scheda.codice_fiscale.clone();
        let nuovo_cf = match (&g.codice_fiscale, &attuale) {
            (Some(raw), _) => raw
                .trim()
                .to_ascii_uppercase()
                .parse::<CodiceFiscaleSoggetto>()
                .map_err(|x| {
                    e.push(
                        Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                            .campo("generalita.codiceFiscale")
                            .valore(raw),
                    )
                })
                .ok(),
            (
                None,
                Some(DatiCodiceFiscale {
                    cod_fiscale: CodiceFiscaleSoggetto::Ordinario(_),
                    ..
                }),
            ) => {
                match (
                    &gen.cognome,
                    &gen.nome,
                    gen.luogo_nascita.codice_catastale(),
                ) {
                    (Some(c), Some(n), Some(l)) => cf::calcola(&DatiCalcolo {
                        cognome: c.as_str(),
                        nome: n.as_str(),
                        sesso: gen.sesso,
                        data_nascita: gen.data_nascita.data,
                        luogo_nascita: l,
                    })
                    .map(CodiceFiscaleSoggetto::Ordinario)
                    .map_err(|x| {
                        e.push(
                            Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                                .campo("generalita"),
                        )
                    })
                    .ok(),
                    _ => None,
                }
            }
            _ => None,
        };
        if let (Some(nuovo), Some(att)) = (nuovo_cf, &attuale) {
            // The same code in another form (an omocode of it) is not a change.
            let stesso = nuovo.as_str() == att.cod_fiscale.as_str()
                || match (&nuovo, &att.cod_fiscale) {
                    (CodiceFiscaleSoggetto::Ordinario(a), CodiceFiscaleSoggetto::Ordinario(b)) => {
                        cf::forma_base(a) == cf::forma_base(b)
                    }
                    _ => false,
                };
            if !stesso {
                let mut collegati = att.codici_collegati.clone();
                collegati.push(att.cod_fiscale);
                dopo.codice_fiscale = Some(DatiCodiceFiscale {
                    stato: match nuovo {
                        CodiceFiscaleSoggetto::Provvisorio(_) => StatoCodiceFiscale::Provvisorio,
                        CodiceFiscaleSoggetto::Ordinario(_) => StatoCodiceFiscale::NonValidato,
                    },
                    cod_fiscale: nuovo,
                    data_attribuzione_validita: None,
                    codici_collegati: collegati,
                });
                avvertimenti.push(
                    Anomalia::avvertimento("EA044", format!("Codice fiscale variato da {} a {}: da validare presso l'Agenzia delle Entrate", att.cod_fiscale.as_str(), dopo.codice_fiscale.as_ref().map_or("", |c| c.cod_fiscale.as_str())))
                        .campo("generalita.codiceFiscale"),
                );
            }
        }
        dopo.generalita = Some(gen);
    }

    async fn decidi_5013(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta5013,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let mut e = Vec::new();
        let decorrenza = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", decorrenza, self.clock().today(), &mut e);
        v::codice_tabella(
            t,
            "motivo_revoca",
            &req.motivo_revoca,
            None,
            "EN371",
            "Motivo revoca",
            "motivoRevoca",
            &mut e,
        );
        if req.motivo_revoca == "3" && req.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
            e.push(
                Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    "Note obbligatorie per il motivo di revoca Altro",
                )
                .campo("note"),
            );
        }
        let s = self
            .soggetto_da_modificare(store, comune, "soggetto", &req.soggetto, &mut e)
            .await;
        let (Some(s), Some(decorrenza), true) = (s, decorrenza, e.is_empty()) else {
            return Err(e);
        };
        let mut dopo = s.scheda.clone();
        let tipo = req.tipo_revoca.as_str();
        let assente = |cosa: &str| {
            vec![Anomalia::errore(
                CODICE_DATO_ASSENTE,
                format!("Dato da revocare non presente sulla scheda: {cosa}"),
            )
            .campo("tipoRevoca")
            .valore(tipo)]
        };
        match tipo {
            "1" | "2" => {
                let g = dopo.genitori.get_or_insert_with(Genitori::default);
                let slot = if tipo == "1" {
                    &mut g.padre
                } else {
                    &mut g.madre
                };
                if slot.take().is_none() {
                    return Err(assente(if tipo == "1" {
                        "paternita'"
                    } else {
                        "maternita'"
                    }));
                }
                if g.padre.is_none() && g.madre.is_none() {
                    dopo.genitori = None;
                }
            }
            "3" => {
                if dopo.permesso_soggiorno.take().is_none() {
                    return Err(assente("permesso di soggiorno"));
                }
            }
            "6" | "7" | "8" => {
                let tipo_ev = match tipo {
                    "6" => TipoEventoStatoCivile::Matrimonio,
                    "7" => TipoEventoStatoCivile::UnioneCivile,
                    _ => TipoEventoStatoCivile::ConvivenzaDiFatto,
                };
                let Some(sc) = dopo.stato_civile.as_mut() else {
                    return Err(assente("stato civile"));
                };
                let Some(pos) = sc.eventi.iter().rposition(|ev| ev.tipo == tipo_ev) else {
                    return Err(assente("evento di stato civile"));
                };
                sc.eventi.remove(pos);
                if tipo_ev != TipoEventoStatoCivile::ConvivenzaDiFatto {
                    sc.stato_civile = stato_da_eventi(&sc.eventi).to_owned();
                }
            }
            "cartaIdentita" => {
                if dopo.carta_identita.take().is_none() {
                    return Err(assente("carta d'identita'"));
                }
            }
            "attoNascita" => {
                if dopo
                    .atti
                    .as_mut()
                    .and_then(|a| a.atto_nascita.take())
                    .is_none()
                {
                    return Err(assente("atto di nascita"));
                }
                dopo.atti = None;
            }
            "codiceFiscale" => match &dopo.codice_fiscale {
                None => return Err(assente("codice fiscale")),
                Some(c) if c.stato == StatoCodiceFiscale::Validato => {
                    return Err(vec![Anomalia::errore(CODICE_DATO_ASSENTE, "Un codice fiscale validato dall'Agenzia delle Entrate non puo' essere revocato")
                        .campo("tipoRevoca")
                        .valore(tipo)
                        .atteso("un codice fiscale non validato")]);
                }
                Some(_) => dopo.codice_fiscale = None,
            },
            other => {
                v::codice_tabella(
                    t,
                    "tipo_revoca",
                    other,
                    None,
                    "EN371",
                    "Tipo revoca",
                    "tipoRevoca",
                    &mut e,
                );
                if e.is_empty() {
                    e.push(
                        Anomalia::errore("EN371", format!("Tipo revoca {other} non gestito da questo servizio"))
                            .campo("tipoRevoca")
                            .valore(other)
                            .atteso("1, 2, 3, 6, 7, 8, cartaIdentita, attoNascita o codiceFiscale (il tutore si revoca con il servizio 5001)"),
                    );
                }
                return Err(e);
            }
        }
        let mut m = Modifiche::default();
        m.soggetto(s.id, &s.scheda, &dopo);
        Ok(m.piano(decorrenza, Vec::new()))
    }

    async fn decidi_5014(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta5014,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let scelte = [
            req.richiesta_rettifica101.is_some(),
            req.richiesta_rettifica102.is_some(),
            req.richiesta_rettifica103.is_some(),
            req.richiesta_rettifica104.is_some(),
            req.richiesta_rettifica105.is_some(),
        ];
        if scelte.iter().filter(|x| **x).count() != 1 {
            return Err(vec![Anomalia::errore(
                anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                "Indicare esattamente un tipo di rettifica",
            )
            .campo("richiestaRettifica")
            .atteso("uno tra richiestaRettifica101 ... richiestaRettifica105")]);
        }
        let s = match self
            .carica_soggetto(store, "soggetto", &req.soggetto, Some(comune))
            .await
        {
            Ok(s) => s,
            Err(a) if a.codice == crate::lavoro::CODICE_NON_DI_COMPETENZA => {
                return Err(vec![Anomalia::errore(
                    "EN427",
                    "Rettifica non permessa: Comune non competente",
                )
                .campo("soggetto")
                .valore(a.valore.unwrap_or_default())])
            }
            Err(a) => return Err(vec![a]),
        };
        let mut dopo = s.scheda.clone();
        let date = req
            .richiesta_rettifica101
            .as_ref()
            .or(req.richiesta_rettifica103.as_ref())
            .or(req.richiesta_rettifica104.as_ref());
        if let Some(r) = date {
            let res = v::data_opt(
                "dataDecorrenzaResidenza",
                r.data_decorrenza_residenza.as_deref(),
                &mut e,
            );
            let isc = v::data_opt(
                "dataPrimaIscrizioneComune",
                r.data_prima_iscrizione_comune.as_deref(),
                &mut e,
            );
            let fam = v::data_opt(
                "dataIngressoFamiglia",
                r.data_ingresso_famiglia.as_deref(),
                &mut e,
            )
            .or(v::data_opt(
                "dataDecorrenzaLegame",
                r.data_decorrenza_legame.as_deref(),
                &mut e,
            ));
            for (campo, d) in [
                ("dataDecorrenzaResidenza", res),
                ("dataPrimaIscrizioneComune", isc),
                ("dataIngressoFamiglia", fam),
            ] {
                v::non_futura(campo, d, oggi, &mut e);
                if let Some(d) = d {
                    s.non_prima_della_nascita(d, campo, &mut e);
                }
            }
            if let Some(d) = res {
                match dopo.residenza.as_mut() {
                    Some(r) => r.data_decorrenza_residenza = d,
                    None => e.push(
                        Anomalia::errore(CODICE_DATO_ASSENTE, "Scheda senza residenza")
                            .campo("dataDecorrenzaResidenza"),
                    ),
                }
            }
            if let Some(d) = isc {
                match dopo.iscrizione.as_mut() {
                    Some(i) => i.data_iscrizione = d,
                    None => e.push(
                        Anomalia::errore(CODICE_DATO_ASSENTE, "Scheda senza dati di iscrizione")
                            .campo("dataPrimaIscrizioneComune"),
                    ),
                }
            }
            if let Some(d) = fam {
                match dopo.legame.as_mut() {
                    Some(l) => l.data_decorrenza = d,
                    None => e.push(
                        Anomalia::errore(
                            "ES092",
                            "Soggetto senza scheda famiglia/convivenza associata",
                        )
                        .campo("dataIngressoFamiglia"),
                    ),
                }
            }
            // The dates must stay coherent with each other (ES127).
            if let (Some(i), Some(r)) = (&dopo.iscrizione, &dopo.residenza) {
                if i.data_iscrizione > r.data_decorrenza_residenza
                    && dopo
                        .competenza
                        .as_ref()
                        .is_some_and(|c| c.posizione == PosizioneAnagrafica::Residente)
                {
                    e.push(
                        Anomalia::errore("ES127", format!("Data prima iscrizione del soggetto {} deve essere minore o uguale della data decorrenza residenza {}", i.data_iscrizione, r.data_decorrenza_residenza))
                            .campo("dataPrimaIscrizioneComune")
                            .valore(i.data_iscrizione.to_string())
                            .atteso(format!("una data non successiva al {}", r.data_decorrenza_residenza)),
                    );
                }
            }
        }
        if let Some(r) = &req.richiesta_rettifica102 {
            let motivo = &r.id_motivo_iscrizione;
            if v::codice_tabella(
                t,
                "motivi_iscrizione_apr",
                motivo,
                None,
                "EC006",
                "Codice motivo iscrizione ANPR",
                "richiestaRettifica102.idMotivoIscrizione",
                &mut e,
            ) && motivo == "9"
                && r.note.as_deref().is_none_or(|n| n.trim().is_empty())
            {
                e.push(Anomalia::errore("EC014", "Campo Note Motivo Iscrizione obbligatorio se codice Motivo iscrizione = 9 - Altro").campo("richiestaRettifica102.note"));
            }
            match dopo.iscrizione.as_mut() {
                Some(i) => {
                    i.motivo_iscrizione = motivo.clone();
                    i.note = r.note.clone();
                    if r.provenienza.is_some() {
                        i.provenienza = r.provenienza.clone();
                    }
                }
                None => e.push(
                    Anomalia::errore(CODICE_DATO_ASSENTE, "Scheda senza dati di iscrizione")
                        .campo("richiestaRettifica102"),
                ),
            }
        }
        if let Some(r) = &req.richiesta_rettifica105 {
            if let Some(g) = dopo.generalita.as_mut() {
                if let Some((_, l)) = self.luogo_evento(
                    "richiestaRettifica105.luogoNascita",
                    &r.luogo_nascita,
                    Some(g.data_nascita.data),
                    &mut e,
                ) {
                    g.luogo_nascita = l;
                }
            }
        }
        if !e.is_empty() {
            return Err(e);
        }
        if dopo == s.scheda {
            return Err(vec![Anomalia::errore(
                CODICE_NESSUNA_MODIFICA,
                "La rettifica non modifica alcun dato della scheda",
            )
            .campo("richiestaRettifica")]);
        }
        // A rectification corrects the version in force, from its own start: the
        // operation takes effect from the latest start among the sections it corrects.
        let mut decorrenza = NaiveDate::MIN;
        for (k, _) in dopo.sections() {
            if s.scheda.section_json(k) != dopo.section_json(k) {
                let storia = store
                    .history(EntityRef::Soggetto(s.id), k.key())
                    .await
                    .map_err(|x| vec![self.anomalia_interna(x)])?;
                if let Some(ultima) = storia.last() {
                    decorrenza = decorrenza.max(ultima.valido_dal);
                }
            }
        }
        let mut m = Modifiche::default();
        m.soggetto(s.id, &s.scheda, &dopo);
        Ok(m.piano(
            if decorrenza == NaiveDate::MIN {
                oggi
            } else {
                decorrenza
            },
            Vec::new(),
        ))
    }
}

/// The civil status that the remaining events imply (after a revocation).
fn stato_da_eventi(eventi: &[EventoStatoCivile]) -> &'static str {
    match eventi
        .iter()
        .rev()
        .find(|e| {
            e.tipo != TipoEventoStatoCivile::ConvivenzaDiFatto
                && e.tipo != TipoEventoStatoCivile::RisoluzioneConvivenza
        })
        .map(|e| e.tipo)
    {
        Some(TipoEventoStatoCivile::Matrimonio) => "2",
        Some(TipoEventoStatoCivile::Vedovanza) => "3",
        Some(TipoEventoStatoCivile::Divorzio | TipoEventoStatoCivile::AnnullamentoMatrimonio) => {
            "4"
        }
        Some(TipoEventoStatoCivile::UnioneCivile) => "6",
        Some(TipoEventoStatoCivile::ScioglimentoUnione) => "8",
        _ => "1",
    }
}

fn testo_assente(codice: &str) -> &'static str {
    match codice {
        "EN142" => "Soggetto padre non in ANPR",
        "EN143" => "Soggetto madre non in ANPR",
        _ => "Soggetto non presente in ANPR",
    }
}
