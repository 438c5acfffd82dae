//! Polygamous marriages (service 5021, `gestione_poligamia`): a subject already married
//! may have further marriages (recognised foreign law); each spouse pair is then managed
//! on its own — insert or modify the marriage, the widowhood or the end of that pair's
//! marriage, or annul the last such operation.
//!
//! The model needs no new shape: a civil-status event already names the other party
//! (`coniuge`), so the open marriages of a subject are the `Matrimonio` events with no
//! later widowhood, divorce or annulment naming the same spouse. The status stays
//! "coniugato" (2) while one marriage is open and becomes widowed (3) or divorced (4)
//! only when the last one ends. Requests are shaped after `Richiesta5021`.

use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::CodiceIstatComune;
use anpr_domain::scheda::{EventoStatoCivile, Genitore, StatoCivile, TipoEventoStatoCivile};
use anpr_store::Store;
use serde::Deserialize;

use crate::annullamento::RichiestaAnnullamento;
use crate::authz::Permesso;
use crate::lavoro::{Modifiche, SoggettoPerRicerca};
use crate::mutazione::{EventoRichiesto, PersonaRiferita};
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// The marriage the request is about (`tipoRicercaMatrimonio`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatrimonioPerRicerca {
    /// The subject of the municipality whose record changes.
    pub coniuge1: SoggettoPerRicerca,
    /// Date of the marriage, to tell two marriages of the same pair apart.
    pub data_matrimonio: Option<String>,
    /// The other spouse: required for every type but 01 (insertion).
    pub coniuge2: Option<PersonaRiferita>,
}

/// The annulment of type 07 (`tipoDatiAnnullamento`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatiAnnullamento5021 {
    #[serde(rename = "idOperazioneANPR")]
    pub id_operazione_anpr: String,
    pub note: Option<String>,
}

/// Request of service 5021.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta5021 {
    pub id_operazione_comune: Option<String>,
    /// Required for types 01–06.
    pub data_decorrenza: Option<String>,
    /// `tipoMutazione` of `datiControllo`: 01 insert marriage, 02 insert widowhood,
    /// 03 insert end of marriage, 04 modify marriage, 05 modify widowhood, 06 modify end
    /// of marriage, 07 annul the last polygamy operation.
    pub tipo_mutazione: String,
    pub matrimonio_per_ricerca: MatrimonioPerRicerca,
    /// The marriage (types 01, 04); for 01 its `coniuge` is the new spouse.
    pub matrimonio: Option<EventoRichiesto>,
    /// The widowhood (types 02, 05): `dataEvento` is the date of the spouse's death.
    pub vedovanza: Option<EventoRichiesto>,
    /// Divorce or annulment of the marriage (types 03, 06), with `tipoCessazione`.
    pub separazione_annullamento_cessazione_matrimonio: Option<EventoRichiesto>,
    /// The operation to annul (type 07).
    pub dati_annullamento: Option<DatiAnnullamento5021>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Our code: a first marriage is registered with 5008, not as a polygamous one.
pub const CODICE_PRIMO_MATRIMONIO: &str = "EV046";
/// Our code: the subject is already married to that spouse.
pub const CODICE_MATRIMONIO_GIA_PRESENTE: &str = "EV047";
/// Our code: the subject has no (open) marriage with the spouse named.
pub const CODICE_MATRIMONIO_NON_TROVATO: &str = "EV048";
/// Our code: the end of a marriage dated before the marriage itself.
pub const CODICE_DATA_PRIMA_DEL_MATRIMONIO: &str = "EV049";

/// Field path of the subject whose record a 5021 changes.
const CAMPO_CONIUGE1: &str = "matrimonioPerRicerca.coniuge1";

/// What a 5021 request does, parsed from `tipoMutazione`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Azione {
    Inserisci(TipoEventoStatoCivile),
    Modifica(TipoEventoStatoCivile),
    Annulla,
}

impl Azione {
    fn da_codice(codice: &str) -> Option<Self> {
        use TipoEventoStatoCivile::{Divorzio, Matrimonio, Vedovanza};
        Some(match codice.trim() {
            "01" | "1" => Azione::Inserisci(Matrimonio),
            "02" | "2" => Azione::Inserisci(Vedovanza),
            "03" | "3" => Azione::Inserisci(Divorzio),
            "04" | "4" => Azione::Modifica(Matrimonio),
            "05" | "5" => Azione::Modifica(Vedovanza),
            "06" | "6" => Azione::Modifica(Divorzio),
            "07" | "7" => Azione::Annulla,
            _ => return None,
        })
    }
}

/// Whether two named parties are the same person: by registry id or CF when both have
/// one, otherwise by surname and name (case-insensitive).
fn stessa_persona(a: &Genitore, b: &Genitore) -> bool {
    if let (Some(x), Some(y)) = (a.id_anpr, b.id_anpr) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (&a.codice_fiscale, &b.codice_fiscale) {
        return x == y;
    }
    let uguale = |x: Option<&str>, y: Option<&str>| match (x, y) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    };
    (a.cognome.is_some() || a.nome.is_some())
        && uguale(
            a.cognome.as_ref().map(|n| n.as_str()),
            b.cognome.as_ref().map(|n| n.as_str()),
        )
        && uguale(
            a.nome.as_ref().map(|n| n.as_str()),
            b.nome.as_ref().map(|n| n.as_str()),
        )
}

fn chiude_matrimonio(t: TipoEventoStatoCivile) -> bool {
    matches!(
        t,
        TipoEventoStatoCivile::Vedovanza
            | TipoEventoStatoCivile::Divorzio
            | TipoEventoStatoCivile::AnnullamentoMatrimonio
    )
}

/// Indexes of the marriage events still open (no later end naming the same spouse; an
/// end naming no spouse closes every marriage before it, as 5008 records them).
pub(crate) fn matrimoni_aperti(eventi: &[EventoStatoCivile]) -> Vec<usize> {
    let mut aperti: Vec<usize> = Vec::new();
    for (i, e) in eventi.iter().enumerate() {
        if e.tipo == TipoEventoStatoCivile::Matrimonio {
            aperti.push(i);
        } else if chiude_matrimonio(e.tipo) {
            match &e.coniuge {
                Some(c) => aperti.retain(|&j| {
                    !eventi[j]
                        .coniuge
                        .as_ref()
                        .is_some_and(|x| stessa_persona(x, c))
                }),
                None => aperti.clear(),
            }
        }
    }
    aperti
}

impl Registry {
    /// Service 5021: management of polygamous marriages.
    pub async fn gestione_poligamia(
        &self,
        ctx: &CallerContext,
        req: &Richiesta5021,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let azione = Azione::da_codice(&req.tipo_mutazione);
        let permesso = if azione == Some(Azione::Annulla) {
            Permesso::Annullamento
        } else {
            Permesso::Mutazione
        };
        let testata = Testata::new("5021", permesso, req.id_operazione_comune.as_deref(), raw);
        self.esegui_operazione(ctx, testata, |store, comune, _| async move {
            let Some(azione) = azione else {
                return Err(vec![Anomalia::errore(
                    CODICE_VALORE_NON_VALIDO,
                    "Tipo mutazione non previsto per la gestione della poligamia",
                )
                .campo("tipoMutazione")
                .valore(req.tipo_mutazione.clone())
                .atteso("uno dei codici 01-07")]);
            };
            match azione {
                Azione::Annulla => self.annulla_poligamia(&*store, &comune, req).await,
                Azione::Inserisci(t) => self.decidi_5021(&*store, &comune, req, false, t).await,
                Azione::Modifica(t) => self.decidi_5021(&*store, &comune, req, true, t).await,
            }
        })
        .await
    }

    async fn annulla_poligamia(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta5021,
    ) -> Result<Piano, Vec<Anomalia>> {
        let Some(d) = &req.dati_annullamento else {
            return Err(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Dati dell'annullamento mancanti",
            )
            .campo("datiAnnullamento")
            .atteso("idOperazioneANPR dell'operazione 5021 da annullare")]);
        };
        let a = RichiestaAnnullamento {
            id_operazione_comune: None,
            id_operazione_anpr: d.id_operazione_anpr.clone(),
            note: d.note.clone(),
            annullamento_attribuzione_cf: false,
        };
        let piano = self.decidi_annullamento(store, comune, "5021", &a).await?;
        // The annulled operation must concern the subject the request names.
        let mut e = Vec::new();
        let Some(s) = self
            .soggetto_da_modificare(
                store,
                comune,
                CAMPO_CONIUGE1,
                &req.matrimonio_per_ricerca.coniuge1,
                &mut e,
            )
            .await
        else {
            return Err(e);
        };
        if !piano.soggetti.contains(&s.id) {
            return Err(vec![Anomalia::errore(
                "EN314",
                "L'operazione da annullare non riguarda il soggetto indicato",
            )
            .campo("datiAnnullamento.idOperazioneANPR")
            .valore(d.id_operazione_anpr.clone())
            .atteso(format!("un'operazione 5021 sul soggetto {}", s.id))]);
        }
        Ok(piano)
    }

    async fn decidi_5021(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        req: &Richiesta5021,
        modifica: bool,
        tipo: TipoEventoStatoCivile,
    ) -> Result<Piano, Vec<Anomalia>> {
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let decorrenza = match &req.data_decorrenza {
            Some(d) => v::data("dataDecorrenza", d, &mut e),
            None => {
                e.push(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Data di decorrenza mancante")
                        .campo("dataDecorrenza"),
                );
                None
            }
        };
        v::non_futura("dataDecorrenza", decorrenza, oggi, &mut e);
        let ricerca = &req.matrimonio_per_ricerca;
        let data_matrimonio = ricerca
            .data_matrimonio
            .as_deref()
            .and_then(|d| v::data("matrimonioPerRicerca.dataMatrimonio", d, &mut e));
        let (campo, sezione) = match tipo {
            TipoEventoStatoCivile::Matrimonio => ("matrimonio", &req.matrimonio),
            TipoEventoStatoCivile::Vedovanza => ("vedovanza", &req.vedovanza),
            _ => (
                "separazioneAnnullamentoCessazioneMatrimonio",
                &req.separazione_annullamento_cessazione_matrimonio,
            ),
        };
        let Some(ev) = sezione else {
            e.push(
                Anomalia::errore(
                    CODICE_CAMPO_OBBLIGATORIO,
                    format!("Dati {campo} mancanti per il tipo mutazione indicato"),
                )
                .campo(campo)
                .valore(req.tipo_mutazione.clone()),
            );
            return Err(e);
        };
        let s = self
            .soggetto_da_modificare(store, comune, CAMPO_CONIUGE1, &ricerca.coniuge1, &mut e)
            .await;
        let data = v::data(&format!("{campo}.dataEvento"), &ev.data_evento, &mut e);
        let (Some(s), Some(decorrenza), Some(data)) = (s, decorrenza, data) else {
            return Err(e);
        };
        s.non_prima_della_nascita(data, &format!("{campo}.dataEvento"), &mut e);
        if data > decorrenza {
            e.push(
                Anomalia::errore(
                    "ES010",
                    "La data dell'evento deve essere minore o uguale della data di decorrenza dell'operazione",
                )
                .campo(format!("{campo}.dataEvento"))
                .valore(data.to_string())
                .atteso(format!("una data non successiva al {decorrenza}")),
            );
        }
        let luogo = ev
            .luogo_evento
            .as_deref()
            .and_then(|l| self.luogo_evento(&format!("{campo}.luogoEvento"), l, Some(data), &mut e))
            .map(|(_, l)| l);
        // An unknown end-of-marriage code is reported, not blocking (EC165 is a W).
        let mut avvertimenti = Vec::new();
        if let Some(c) = &ev.tipo_cessazione {
            if self
                .tables()
                .code("tipo_cessazione_matrimonio", c, None)
                .is_none()
            {
                avvertimenti.push(
                    Anomalia::avvertimento(
                        "EC165",
                        "Codice tipo fine matrimonio non presente sulla tabella di riferimento",
                    )
                    .campo(format!("{campo}.tipoCessazione"))
                    .valore(c.clone()),
                );
            }
        }
        let eventi = s
            .scheda
            .stato_civile
            .as_ref()
            .map(|sc| sc.eventi.clone())
            .unwrap_or_default();
        let aperti = matrimoni_aperti(&eventi);
        let mut dopo = s.scheda.clone();
        let mut m = Modifiche::default();
        match (modifica, tipo) {
            (false, TipoEventoStatoCivile::Matrimonio) => {
                let Some(p) = &ev.coniuge else {
                    e.push(
                        Anomalia::errore(
                            CODICE_CAMPO_OBBLIGATORIO,
                            "Coniuge del matrimonio poligamo mancante",
                        )
                        .campo("matrimonio.coniuge"),
                    );
                    return Err(e);
                };
                let coniuge = self
                    .persona(store, "matrimonio.coniuge", p, "ES038", &mut e)
                    .await;
                let Some((g, registrato)) = coniuge else {
                    return Err(e);
                };
                if aperti.is_empty() {
                    e.push(
                        Anomalia::errore(
                            CODICE_PRIMO_MATRIMONIO,
                            "Il soggetto non risulta coniugato: il primo matrimonio si registra con la mutazione 5008",
                        )
                        .campo(CAMPO_CONIUGE1)
                        .valore(s.id.to_string())
                        .atteso("un soggetto con almeno un matrimonio in essere"),
                    );
                }
                if aperti.iter().any(|&i| {
                    eventi[i]
                        .coniuge
                        .as_ref()
                        .is_some_and(|c| stessa_persona(c, &g))
                }) {
                    e.push(
                        Anomalia::errore(
                            CODICE_MATRIMONIO_GIA_PRESENTE,
                            "Il soggetto risulta gia' coniugato con la persona indicata",
                        )
                        .campo("matrimonio.coniuge"),
                    );
                }
                if registrato.as_ref().is_some_and(|c| c.id == s.id) {
                    e.push(
                        Anomalia::errore(
                            CODICE_VALORE_NON_VALIDO,
                            "Il coniuge non puo' essere il soggetto stesso",
                        )
                        .campo("matrimonio.coniuge"),
                    );
                }
                if !e.is_empty() {
                    return Err(e);
                }
                let evento = EventoStatoCivile {
                    tipo,
                    data_evento: data,
                    luogo_evento: luogo,
                    atto: ev.atto.clone(),
                    coniuge: Some(g),
                    tipo_cessazione: None,
                };
                push_evento(&mut dopo.stato_civile, evento.clone(), "2");
                // A spouse in the registry gets the marriage on their record too.
                if let Some(c) = registrato {
                    let mut cd = c.scheda.clone();
                    let mut rovescio = evento;
                    rovescio.coniuge = Some(s.come_persona());
                    push_evento(&mut cd.stato_civile, rovescio, "2");
                    m.soggetto(c.id, &c.scheda, &cd);
                }
            }
            (false, _) => {
                let coniuge2 = self.coniuge2(store, ricerca, &mut e).await;
                let Some(g) = coniuge2 else { return Err(e) };
                let matrimonio = aperti.iter().rev().copied().find(|&i| {
                    eventi[i]
                        .coniuge
                        .as_ref()
                        .is_some_and(|c| stessa_persona(c, &g))
                        && data_matrimonio.is_none_or(|d| eventi[i].data_evento == d)
                });
                let Some(i) = matrimonio else {
                    e.push(non_trovato(&g, "in essere"));
                    return Err(e);
                };
                if data < eventi[i].data_evento {
                    e.push(
                        Anomalia::errore(
                            CODICE_DATA_PRIMA_DEL_MATRIMONIO,
                            "La data dell'evento precede la data del matrimonio",
                        )
                        .campo(format!("{campo}.dataEvento"))
                        .valore(data.to_string())
                        .atteso(format!(
                            "una data non anteriore al {}",
                            eventi[i].data_evento
                        )),
                    );
                }
                if !e.is_empty() {
                    return Err(e);
                }
                let tipo = if tipo == TipoEventoStatoCivile::Divorzio
                    && matches!(ev.tipo_cessazione.as_deref(), Some("2" | "4"))
                {
                    TipoEventoStatoCivile::AnnullamentoMatrimonio
                } else {
                    tipo
                };
                let altri_aperti = aperti.len() > 1;
                let nuovo = match (altri_aperti, tipo) {
                    (true, _) => "2",
                    (false, TipoEventoStatoCivile::Vedovanza) => "3",
                    (false, _) => "4",
                };
                push_evento(
                    &mut dopo.stato_civile,
                    EventoStatoCivile {
                        tipo,
                        data_evento: data,
                        luogo_evento: luogo,
                        atto: ev.atto.clone(),
                        coniuge: eventi[i].coniuge.clone(),
                        tipo_cessazione: ev.tipo_cessazione.clone(),
                    },
                    nuovo,
                );
            }
            (true, _) => {
                let coniuge2 = self.coniuge2(store, ricerca, &mut e).await;
                let Some(g) = coniuge2 else { return Err(e) };
                let cerca = |t: TipoEventoStatoCivile| {
                    let stesso_tipo = |x: TipoEventoStatoCivile| {
                        x == t
                            || (t == TipoEventoStatoCivile::Divorzio
                                && x == TipoEventoStatoCivile::AnnullamentoMatrimonio)
                    };
                    eventi.iter().rposition(|x| {
                        stesso_tipo(x.tipo)
                            && x.coniuge.as_ref().is_some_and(|c| stessa_persona(c, &g))
                            && (t != TipoEventoStatoCivile::Matrimonio
                                || data_matrimonio.is_none_or(|d| x.data_evento == d))
                    })
                };
                let Some(i) = cerca(tipo) else {
                    e.push(non_trovato(&g, "registrato"));
                    return Err(e);
                };
                if !e.is_empty() {
                    return Err(e);
                }
                if let Some(x) = dopo
                    .stato_civile
                    .as_mut()
                    .and_then(|sc| sc.eventi.get_mut(i))
                {
                    x.data_evento = data;
                    if luogo.is_some() {
                        x.luogo_evento = luogo;
                    }
                    if ev.atto.is_some() {
                        x.atto = ev.atto.clone();
                    }
                    if ev.tipo_cessazione.is_some() {
                        x.tipo_cessazione = ev.tipo_cessazione.clone();
                    }
                }
                if dopo == s.scheda {
                    return Err(vec![Anomalia::errore(
                        crate::mutazione::CODICE_NESSUNA_MODIFICA,
                        "La richiesta non modifica alcun dato della scheda",
                    )
                    .campo(campo)
                    .atteso("dati dell'evento diversi da quelli registrati")]);
                }
            }
        }
        m.soggetto(s.id, &s.scheda, &dopo);
        Ok(m.piano(decorrenza, avvertimenti))
    }

    /// The other spouse of the pair (`coniuge2`), required for types 02–06.
    async fn coniuge2(
        &self,
        store: &dyn Store,
        ricerca: &MatrimonioPerRicerca,
        e: &mut Vec<Anomalia>,
    ) -> Option<Genitore> {
        let Some(p) = &ricerca.coniuge2 else {
            e.push(
                Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Coniuge del matrimonio mancante")
                    .campo("matrimonioPerRicerca.coniuge2")
                    .atteso("il coniuge della coppia a cui si riferisce l'evento"),
            );
            return None;
        };
        self.persona(store, "matrimonioPerRicerca.coniuge2", p, "ES038", e)
            .await
            .map(|(g, _)| g)
    }
}

fn non_trovato(g: &Genitore, stato: &str) -> Anomalia {
    let chi = g
        .id_anpr
        .map(|i| i.to_string())
        .or_else(|| g.codice_fiscale.map(|c| c.to_string()))
        .unwrap_or_else(|| {
            format!(
                "{} {}",
                g.cognome.as_ref().map_or("", |n| n.as_str()),
                g.nome.as_ref().map_or("", |n| n.as_str())
            )
        });
    Anomalia::errore(
        CODICE_MATRIMONIO_NON_TROVATO,
        format!("Nessun matrimonio {stato} con il coniuge indicato"),
    )
    .campo("matrimonioPerRicerca.coniuge2")
    .valore(chi.trim().to_owned())
    .atteso(format!("un coniuge di un matrimonio {stato} del soggetto"))
}

fn push_evento(sc: &mut Option<StatoCivile>, evento: EventoStatoCivile, nuovo: &str) {
    let sc = sc.get_or_insert_with(|| StatoCivile {
        stato_civile: "1".into(),
        eventi: Vec::new(),
    });
    sc.stato_civile = nuovo.into();
    sc.eventi.push(evento);
}

#[cfg(test)]
mod tests {
    use super::*;
    use anpr_domain::scheda::Nome;
    use chrono::NaiveDate;

    fn ev(tipo: TipoEventoStatoCivile, anno: i32, coniuge: Option<&str>) -> EventoStatoCivile {
        EventoStatoCivile {
            tipo,
            data_evento: NaiveDate::from_ymd_opt(anno, 1, 1).unwrap(),
            luogo_evento: None,
            atto: None,
            coniuge: coniuge.map(|n| Genitore {
                id_anpr: None,
                codice_fiscale: None,
                cognome: Some(Nome::parse(n).unwrap()),
                nome: Some(Nome::parse("X").unwrap()),
            }),
            tipo_cessazione: None,
        }
    }

    #[test]
    fn open_marriages_follow_each_pair() {
        use TipoEventoStatoCivile::*;
        let cases: &[(&[EventoStatoCivile], &[usize])] = &[
            (&[ev(Matrimonio, 2000, Some("A"))], &[0]),
            (
                &[
                    ev(Matrimonio, 2000, Some("A")),
                    ev(Matrimonio, 2005, Some("B")),
                ],
                &[0, 1],
            ),
            (
                &[
                    ev(Matrimonio, 2000, Some("A")),
                    ev(Matrimonio, 2005, Some("B")),
                    ev(Vedovanza, 2010, Some("a")),
                ],
                &[1],
            ),
            // An end naming no spouse (a monogamous 5008 record) closes all before it.
            (
                &[
                    ev(Matrimonio, 2000, Some("A")),
                    ev(Divorzio, 2003, None),
                    ev(Matrimonio, 2005, Some("B")),
                ],
                &[2],
            ),
            (
                &[ev(Matrimonio, 2000, None), ev(Vedovanza, 2001, None)],
                &[],
            ),
        ];
        for (eventi, attesi) in cases {
            assert_eq!(matrimoni_aperti(eventi), *attesi, "{eventi:?}");
        }
    }

    #[test]
    fn type_codes_parse_both_padded_and_not() {
        assert_eq!(
            Azione::da_codice("01"),
            Some(Azione::Inserisci(TipoEventoStatoCivile::Matrimonio))
        );
        assert_eq!(
            Azione::da_codice("6"),
            Some(Azione::Modifica(TipoEventoStatoCivile::Divorzio))
        );
        assert_eq!(Azione::da_codice("07"), Some(Azione::Annulla));
        assert_eq!(Azione::da_codice("08"), None);
        assert_eq!(Azione::da_codice(""), None);
    }
}
