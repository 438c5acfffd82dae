//! Registrations (SPEC M-2.1): by birth (service 1001), for other reasons (1002:
//! immigration from a non-onboarded municipality or from abroad, reappearance, judicially
//! declared existence, homeless person's domicile, ...), and in AIRE by birth (A001) or
//! for other reasons (A002).
//!
//! Requests are shaped after `Richiesta1001`, `Richiesta1002`, `RichiestaA001`,
//! `RichiestaA002` (XSD names in camelCase). The subject joins an existing family of the
//! municipality or heads a new one. A subject previously cancelled is registered again
//! under the same `idANPR` when the request names it (EN190 otherwise).

use anpr_domain::caller::CallerContext;
use anpr_domain::codice_fiscale::{self as cf, CodiceFiscaleSoggetto, DatiCalcolo};
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO};
use anpr_domain::ids::{
    CodiceCatastale, CodiceIstatComune, IdAnprFamiglia, IdAnprSoggetto, IdComunale, Sesso,
};
use anpr_domain::scheda::{
    Atti, Atto, Cittadinanza, Competenza, DataAnagrafica, DatiAire, DatiCodiceFiscale,
    DatiIscrizione, Generalita, Genitori, Indirizzo, IndirizzoEstero, Luogo, Nome,
    PosizioneAnagrafica, Provenienza, Residenza, SchedaFamiglia, SchedaSoggetto, TipoScheda,
    RELAZIONE_INTESTATARIO,
};
use anpr_store::{Sequence, Store, SubjectQuery};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::authz::Permesso;
use crate::famiglia::residenza_italiana;
use crate::lavoro::{legame, FamigliaCorrente, Modifiche, SoggettoCorrente, SoggettoPerRicerca};
use crate::mutazione::PersonaRiferita;
use crate::operazioni::{Piano, RispostaOperazione, Testata};
use crate::residenza::nuova_famiglia;
use crate::validazione as v;
use crate::{Registry, ServiceError};

/// Reason code of a registration (table "Motivi di iscrizione in Anagrafe", or the AIRE
/// one).
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
    /// A previously cancelled subject registered again keeps its national id.
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<String>,
    /// What to ask the tax agency (`tipoGestioneCF`): 0 verify, 1 attribute, 2 omocode,
    /// 3 no call. Absent: 0 when a code is given, 1 otherwise.
    #[serde(rename = "gestioneCF")]
    pub gestione_cf: Option<String>,
}

/// Family the subject joins (`idFamigliaConvivenzaANPR`) or a new one (absent id,
/// relationship must be 1, head).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FamigliaRichiesta {
    #[serde(rename = "idFamigliaConvivenzaANPR")]
    pub id_famiglia_convivenza_anpr: Option<String>,
    pub id_famiglia_convivenza_comune: Option<String>,
    /// Code of "Relazione di parentela" (or "Legame convivenza" in a cohabitation).
    pub codice_legame: String,
}

/// Request of service 1002.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta1002 {
    pub id_operazione_comune: Option<String>,
    /// The suspended operation this registration completes (SPEC M-2.5).
    pub id_operazione_sospesa: Option<String>,
    pub motivo_iscrizione: MotivoIscrizione,
    /// Effective date of the registration.
    pub data_decorrenza: String,
    pub generalita: GeneralitaRichiesta,
    #[serde(default)]
    pub cittadinanza: Vec<Cittadinanza>,
    pub provenienza: Option<Provenienza>,
    pub residenza: Indirizzo,
    pub famiglia: FamigliaRichiesta,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Request of service 1001.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Richiesta1001 {
    pub id_operazione_comune: Option<String>,
    /// The suspended operation this registration completes (SPEC M-2.5).
    pub id_operazione_sospesa: Option<String>,
    pub generalita: GeneralitaRichiesta,
    pub atto_nascita: Option<Atto>,
    #[serde(default)]
    pub cittadinanza: Vec<Cittadinanza>,
    pub paternita: Option<PersonaRiferita>,
    pub maternita: Option<PersonaRiferita>,
    /// Absent: the child joins the family of a parent registered in the municipality.
    pub famiglia: Option<FamigliaRichiesta>,
    /// Required when the child heads a new family.
    pub residenza: Option<Indirizzo>,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Request of services A001 (birth, reason C02) and A002 (other reasons).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaAire {
    pub id_operazione_comune: Option<String>,
    /// The suspended operation this registration completes (SPEC M-2.5).
    pub id_operazione_sospesa: Option<String>,
    pub motivo_iscrizione: MotivoIscrizione,
    /// Effective date (A001: defaults to the birth date).
    pub data_decorrenza: Option<String>,
    pub generalita: GeneralitaRichiesta,
    #[serde(default)]
    pub cittadinanza: Vec<Cittadinanza>,
    pub paternita: Option<PersonaRiferita>,
    pub maternita: Option<PersonaRiferita>,
    pub atto_nascita: Option<Atto>,
    pub residenza_estera: IndirizzoEstero,
    pub consolato: String,
    /// Code of "Iniziativa iscrizione AIRE".
    pub iniziativa_iscrizione: Option<String>,
    /// Code of "Criterio individuazione comune iscrizione AIRE".
    pub individuazione_comune_iscrizione: Option<String>,
    pub anno_espatrio: Option<i32>,
    pub famiglia: FamigliaRichiesta,
    /// The administrative proceeding the operation belongs to (`datiDelProcedimento`):
    /// the pipeline reads it from the request document and links the operation to it.
    pub dati_del_procedimento: Option<crate::procedimenti::DatiDelProcedimento>,
}

/// Generalities that passed their checks.
#[derive(Debug, Clone)]
pub(crate) struct GeneralitaValide {
    pub cognome: Nome,
    pub nome: Nome,
    pub sesso: Sesso,
    pub nascita: NaiveDate,
    pub luogo: Luogo,
    pub luogo_code: CodiceCatastale,
    pub id_comunale: Option<IdComunale>,
}

impl GeneralitaValide {
    /// A registration cannot take effect before the birth (EHA3).
    fn iscrizione_non_prima_della_nascita(&self, d: NaiveDate, e: &mut Vec<Anomalia>) {
        if d < self.nascita {
            e.push(
                Anomalia::errore(
                    "EHA3",
                    format!(
                        "Data di decorrenza iscrizione {d} minore della data di nascita {}",
                        self.nascita
                    ),
                )
                .campo("dataDecorrenza")
                .valore(d.to_string())
                .atteso(format!("una data non anteriore al {}", self.nascita)),
            );
        }
    }
}

/// Everything a registration writes, once validated.
#[derive(Debug)]
pub(crate) struct NuovaIscrizione {
    pub decorrenza: NaiveDate,
    pub posizione: PosizioneAnagrafica,
    pub generalita: GeneralitaValide,
    pub codice_fiscale: DatiCodiceFiscale,
    /// A cancelled subject registered again (its record is the starting point).
    pub riuso: Option<SoggettoCorrente>,
    pub cittadinanze: Vec<Cittadinanza>,
    pub residenza: Residenza,
    /// An existing family to join, or `None` for a new one.
    pub famiglia: Option<FamigliaCorrente>,
    pub codice_legame: String,
    pub id_famiglia_comune: Option<IdComunale>,
    pub iscrizione: DatiIscrizione,
    pub genitori: Option<Genitori>,
    pub atto_nascita: Option<Atto>,
    pub aire: Option<DatiAire>,
    pub avvertimenti: Vec<Anomalia>,
}

impl Registry {
    /// Service 1002: registration for other reasons.
    pub async fn iscrizione_altri_motivi(
        &self,
        ctx: &CallerContext,
        req: &Richiesta1002,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "1002",
            Permesso::Iscrizione,
            req.id_operazione_comune.as_deref(),
            raw,
        )
        .completa(self.id_sospesa(req.id_operazione_sospesa.as_deref())?);
        self.esegui_operazione(ctx, testata, |store, comune, _op| async move {
            self.decidi_1002(&*store, ctx.ambiente, &comune, req).await
        })
        .await
    }

    /// Service 1001: registration by birth.
    pub async fn iscrizione_nascita(
        &self,
        ctx: &CallerContext,
        req: &Richiesta1001,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            "1001",
            Permesso::Iscrizione,
            req.id_operazione_comune.as_deref(),
            raw,
        )
        .completa(self.id_sospesa(req.id_operazione_sospesa.as_deref())?);
        self.esegui_operazione(ctx, testata, |store, comune, _op| async move {
            self.decidi_1001(&*store, ctx.ambiente, &comune, req).await
        })
        .await
    }

    /// Services A001 and A002: registration in AIRE.
    pub async fn iscrizione_aire(
        &self,
        ctx: &CallerContext,
        codice: &'static str,
        req: &RichiestaAire,
        raw: &serde_json::Value,
    ) -> Result<RispostaOperazione, ServiceError> {
        let testata = Testata::new(
            codice,
            Permesso::Iscrizione,
            req.id_operazione_comune.as_deref(),
            raw,
        )
        .completa(self.id_sospesa(req.id_operazione_sospesa.as_deref())?);
        self.esegui_operazione(ctx, testata, |store, comune, _op| async move {
            self.decidi_aire(&*store, ctx.ambiente, &comune, codice, req)
                .await
        })
        .await
    }

    async fn decidi_1002(
        &self,
        store: &dyn Store,
        ambiente: anpr_domain::caller::Ambiente,
        comune: &CodiceIstatComune,
        req: &Richiesta1002,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let mut e = Vec::new();
        let motivo = &req.motivo_iscrizione.id_motivo_iscrizione;
        if v::codice_tabella(
            t,
            "motivi_iscrizione_apr",
            motivo,
            None,
            "EC006",
            "Codice motivo iscrizione ANPR",
            "motivoIscrizione.idMotivoIscrizione",
            &mut e,
        ) {
            if motivo == "1" {
                e.push(
                    Anomalia::errore("EC006", "La nascita si registra con il servizio 1001")
                        .campo("motivoIscrizione.idMotivoIscrizione")
                        .valore(motivo)
                        .atteso("un motivo diverso da 1"),
                );
            } else if motivo == "9"
                && req
                    .motivo_iscrizione
                    .note
                    .as_deref()
                    .is_none_or(|n| n.trim().is_empty())
            {
                e.push(
                    Anomalia::errore("EC014", "Campo Note Motivo Iscrizione obbligatorio se codice Motivo iscrizione = 9 - Altro")
                        .campo("motivoIscrizione.note")
                        .atteso("la descrizione del motivo"),
                );
            }
        }
        let gv = self.valida_generalita(&req.generalita, &mut e);
        let decorrenza = v::data("dataDecorrenza", &req.data_decorrenza, &mut e);
        v::non_futura("dataDecorrenza", decorrenza, self.clock().today(), &mut e);
        if let (Some(g), Some(d)) = (&gv, decorrenza) {
            g.iscrizione_non_prima_della_nascita(d, &mut e);
        }
        self.valida_cittadinanze(&req.cittadinanza, &mut e);
        v::indirizzo_nel_comune(t, "residenza", &req.residenza, comune, decorrenza, &mut e);
        let mut avvertimenti = Vec::new();
        let (cf, riuso, gestione) = self
            .codice_fiscale_iscrizione(
                store,
                &req.generalita,
                gv.as_ref(),
                &mut e,
                &mut avvertimenti,
            )
            .await?;
        let famiglia = self
            .famiglia_iscrizione(store, comune, &req.famiglia, false, &mut e)
            .await?;
        let idf = id_comunale_famiglia(&req.famiglia, &mut e);
        let (Some(gv), Some(decorrenza), Some(cf), true) = (gv, decorrenza, cf, e.is_empty())
        else {
            return Err(e);
        };
        let cf = self
            .cf_registrazione(
                store,
                ambiente,
                comune,
                gestione,
                &cf,
                &gv,
                riuso.as_ref(),
                req.id_operazione_sospesa.as_deref(),
                &mut avvertimenti,
            )
            .await?;
        let n = NuovaIscrizione {
            decorrenza,
            posizione: PosizioneAnagrafica::Residente,
            generalita: gv,
            codice_fiscale: cf,
            riuso,
            cittadinanze: req.cittadinanza.clone(),
            residenza: residenza_italiana(&req.residenza, decorrenza),
            famiglia,
            codice_legame: req.famiglia.codice_legame.clone(),
            id_famiglia_comune: idf,
            iscrizione: DatiIscrizione {
                motivo_iscrizione: motivo.clone(),
                data_iscrizione: decorrenza,
                comune: comune.clone(),
                provenienza: req.provenienza.clone(),
                note: req.motivo_iscrizione.note.clone(),
            },
            genitori: None,
            atto_nascita: None,
            aire: None,
            avvertimenti,
        };
        self.piano_iscrizione(store, comune, n).await
    }

    async fn decidi_1001(
        &self,
        store: &dyn Store,
        ambiente: anpr_domain::caller::Ambiente,
        comune: &CodiceIstatComune,
        req: &Richiesta1001,
    ) -> Result<Piano, Vec<Anomalia>> {
        let mut e = Vec::new();
        let gv = self.valida_generalita(&req.generalita, &mut e);
        self.valida_cittadinanze(&req.cittadinanza, &mut e);
        match (&req.atto_nascita, &gv) {
            (None, _) => e.push(
                Anomalia::errore(
                    "ES080",
                    "Il gruppo atto nascita e' obbligatorio nel caso di iscrizione per nascita",
                )
                .campo("attoNascita"),
            ),
            (Some(a), Some(g)) => atto_coerente(a, g.nascita, self.clock().today(), &mut e),
            _ => {}
        }
        let (genitori, padre, madre) = self
            .genitori_nascita(
                store,
                req.paternita.as_ref(),
                req.maternita.as_ref(),
                &mut e,
            )
            .await;
        let mut avvertimenti = Vec::new();
        let (cf, riuso, gestione) = self
            .codice_fiscale_iscrizione(
                store,
                &req.generalita,
                gv.as_ref(),
                &mut e,
                &mut avvertimenti,
            )
            .await?;
        // The family: as requested, or the family of a parent resident in the
        // municipality (mother first), with the relationship to its head derived.
        let (famiglia, codice_legame, idf) = match &req.famiglia {
            Some(f) => (
                self.famiglia_iscrizione(store, comune, f, false, &mut e)
                    .await?,
                f.codice_legame.clone(),
                id_comunale_famiglia(f, &mut e),
            ),
            None => {
                let genitore = [madre, padre]
                    .into_iter()
                    .flatten()
                    .filter(|p| {
                        p.comune() == Some(comune)
                            && p.posizione() == Some(PosizioneAnagrafica::Residente)
                    })
                    .find_map(|p| p.famiglia().map(|f| (p, f)));
                match genitore {
                    Some((p, fid)) => {
                        let f = self
                            .carica_famiglia_id(store, "famiglia", fid, Some(comune))
                            .await
                            .map_err(|a| vec![a])?;
                        let codice =
                            match p.scheda.legame.as_ref().map(|l| l.codice_legame.as_str()) {
                                Some("1" | "2") => "3",
                                Some("3") => "4",
                                _ => "13",
                            };
                        (Some(f), codice.to_owned(), None)
                    }
                    None => {
                        e.push(
                            Anomalia::errore("EF006", "Nessun genitore residente nel comune: indicare la famiglia di appartenenza o una nuova famiglia")
                                .campo("famiglia")
                                .atteso("famiglia.idFamigliaConvivenzaANPR, o famiglia con codiceLegame 1 e residenza"),
                        );
                        (None, String::new(), None)
                    }
                }
            }
        };
        let residenza = match (&famiglia, &req.residenza, &gv) {
            (Some(f), None, Some(g)) => f.scheda.residenza.clone().map(|mut r| {
                r.data_decorrenza_residenza = g.nascita;
                r
            }),
            (_, Some(r), Some(g)) => {
                v::indirizzo_nel_comune(
                    self.tables(),
                    "residenza",
                    r,
                    comune,
                    Some(g.nascita),
                    &mut e,
                );
                Some(residenza_italiana(r, g.nascita))
            }
            (None, None, _) => {
                e.push(Anomalia::errore("EF023", "La residenza del soggetto deve essere impostata se si attribuisce il soggetto ad una nuova famiglia").campo("residenza"));
                None
            }
            _ => None,
        };
        let (Some(gv), Some(cf), Some(residenza), true) = (gv, cf, residenza, e.is_empty()) else {
            return Err(e);
        };
        let cf = self
            .cf_registrazione(
                store,
                ambiente,
                comune,
                gestione,
                &cf,
                &gv,
                riuso.as_ref(),
                req.id_operazione_sospesa.as_deref(),
                &mut avvertimenti,
            )
            .await?;
        let n = NuovaIscrizione {
            decorrenza: gv.nascita,
            posizione: PosizioneAnagrafica::Residente,
            iscrizione: DatiIscrizione {
                motivo_iscrizione: "1".into(),
                data_iscrizione: gv.nascita,
                comune: comune.clone(),
                provenienza: None,
                note: None,
            },
            generalita: gv,
            codice_fiscale: cf,
            riuso,
            cittadinanze: req.cittadinanza.clone(),
            residenza,
            famiglia,
            codice_legame,
            id_famiglia_comune: idf,
            genitori,
            atto_nascita: req.atto_nascita.clone(),
            aire: None,
            avvertimenti,
        };
        self.piano_iscrizione(store, comune, n).await
    }

    async fn decidi_aire(
        &self,
        store: &dyn Store,
        ambiente: anpr_domain::caller::Ambiente,
        comune: &CodiceIstatComune,
        codice: &str,
        req: &RichiestaAire,
    ) -> Result<Piano, Vec<Anomalia>> {
        let t = self.tables();
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let motivo = &req.motivo_iscrizione.id_motivo_iscrizione;
        if v::codice_tabella(
            t,
            "motivi_iscrizione_aire",
            motivo,
            None,
            "EC060",
            "Campo codice motivo iscrizione AIRE",
            "motivoIscrizione.idMotivoIscrizione",
            &mut e,
        ) {
            if codice == "A001" && motivo != "C02" {
                e.push(Anomalia::errore("ES071", format!("Nel caso di Iscrizione AIRE per nascita il MotivoIscrizione deve essere C02 invece di {motivo}")).campo("motivoIscrizione.idMotivoIscrizione").valore(motivo).atteso("C02"));
            }
            if codice == "A002" && motivo == "C02" {
                e.push(Anomalia::errore("ES072", "Nel caso di Iscrizione AIRE per altri motivi il MotivoIscrizione non deve essere C02").campo("motivoIscrizione.idMotivoIscrizione").valore(motivo));
            }
            if motivo == "C09"
                && req
                    .motivo_iscrizione
                    .note
                    .as_deref()
                    .is_none_or(|n| n.trim().is_empty())
            {
                e.push(Anomalia::errore("EC013", "Campo Note Motivo Iscrizione AIRE obbligatorio se codice Motivo iscrizione = C09 - Altro").campo("motivoIscrizione.note"));
            }
        }
        let gv = self.valida_generalita(&req.generalita, &mut e);
        let decorrenza = match (&req.data_decorrenza, &gv) {
            (Some(d), _) => v::data("dataDecorrenza", d, &mut e),
            (None, Some(g)) if codice == "A001" => Some(g.nascita),
            (None, _) => {
                e.push(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Data di decorrenza obbligatoria")
                        .campo("dataDecorrenza"),
                );
                None
            }
        };
        let minima = NaiveDate::from_ymd_opt(1990, 7, 1).unwrap_or(NaiveDate::MIN);
        if let Some(d) = decorrenza.filter(|d| *d < minima || *d > oggi) {
            e.push(
                Anomalia::errore("ES078", format!("La data di decorrenza iscrizione AIRE {d} deve essere maggiore uguale 01/07/1990 e minore uguale della data corrente"))
                    .campo("dataDecorrenza")
                    .valore(d.to_string()),
            );
        }
        if let (Some(g), Some(d)) = (&gv, decorrenza) {
            g.iscrizione_non_prima_della_nascita(d, &mut e);
        }
        if let (Some(a), Some(g)) = (req.anno_espatrio, &gv) {
            if a < g.nascita.year() || a > oggi.year() {
                e.push(Anomalia::errore("ES079", format!("Anno espatrio {a} deve essere maggiore uguale anno nascita {} e minore uguale anno corrente", g.nascita.year())).campo("annoEspatrio").valore(a.to_string()));
            }
        }
        self.valida_cittadinanze(&req.cittadinanza, &mut e);
        if !req.cittadinanza.iter().any(|c| c.codice_stato == "100") {
            e.push(Anomalia::errore("EN421", "Nel caso di soggetto AIRE e' obbligatorio indicare anche la cittadinanza italiana").campo("cittadinanza").atteso("una cittadinanza con codiceStato 100"));
        }
        if t.consolato(&req.consolato).is_none() {
            e.push(
                Anomalia::errore(
                    "EC032",
                    format!(
                        "Codice consolato di residenza {} inesistente sulla tabella di riferimento",
                        req.consolato
                    ),
                )
                .campo("consolato")
                .valore(&req.consolato),
            );
        }
        if t.stato_estero_by_istat(&req.residenza_estera.codice_stato, None)
            .is_none()
        {
            e.push(
                Anomalia::errore(
                    "EC053",
                    format!(
                        "Stato estero di residenza {} inesistente sulla tabella di riferimento",
                        req.residenza_estera.codice_stato
                    ),
                )
                .campo("residenzaEstera.codiceStato")
                .valore(&req.residenza_estera.codice_stato),
            );
        }
        if let Some(c) = &req.iniziativa_iscrizione {
            v::codice_tabella(
                t,
                "iniziativa_iscrizione_aire",
                c,
                None,
                "EC061",
                "Campo codice Iniziativa movimenti anagrafici AIRE",
                "iniziativaIscrizione",
                &mut e,
            );
        }
        if let Some(c) = &req.individuazione_comune_iscrizione {
            v::codice_tabella(
                t,
                "criterio_comune_iscrizione_aire",
                c,
                None,
                "EC062",
                "Campo codice Individuazione Comune Iscrizione AIRE",
                "individuazioneComuneIscrizione",
                &mut e,
            );
        }
        if codice == "A001" {
            match (&req.atto_nascita, &gv) {
                (None, _) => e.push(
                    Anomalia::errore(
                        "ES080",
                        "Il gruppo atto nascita e' obbligatorio nel caso di iscrizione per nascita",
                    )
                    .campo("attoNascita"),
                ),
                (Some(a), Some(g)) => atto_coerente(a, g.nascita, oggi, &mut e),
                _ => {}
            }
        }
        let (genitori, _, _) = self
            .genitori_nascita(
                store,
                req.paternita.as_ref(),
                req.maternita.as_ref(),
                &mut e,
            )
            .await;
        let mut avvertimenti = Vec::new();
        let (cf, riuso, gestione) = self
            .codice_fiscale_iscrizione(
                store,
                &req.generalita,
                gv.as_ref(),
                &mut e,
                &mut avvertimenti,
            )
            .await?;
        let famiglia = self
            .famiglia_iscrizione(store, comune, &req.famiglia, true, &mut e)
            .await?;
        let idf = id_comunale_famiglia(&req.famiglia, &mut e);
        let (Some(gv), Some(decorrenza), Some(cf), true) = (gv, decorrenza, cf, e.is_empty())
        else {
            return Err(e);
        };
        let cf = self
            .cf_registrazione(
                store,
                ambiente,
                comune,
                gestione,
                &cf,
                &gv,
                riuso.as_ref(),
                req.id_operazione_sospesa.as_deref(),
                &mut avvertimenti,
            )
            .await?;
        let n = NuovaIscrizione {
            decorrenza,
            posizione: PosizioneAnagrafica::Aire,
            generalita: gv,
            codice_fiscale: cf,
            riuso,
            cittadinanze: req.cittadinanza.clone(),
            residenza: Residenza {
                tipo_indirizzo: "4".into(),
                indirizzo: None,
                indirizzo_estero: Some(req.residenza_estera.clone()),
                presso: None,
                note_indirizzo: None,
                data_decorrenza_residenza: decorrenza,
            },
            famiglia,
            codice_legame: req.famiglia.codice_legame.clone(),
            id_famiglia_comune: idf,
            iscrizione: DatiIscrizione {
                motivo_iscrizione: motivo.clone(),
                data_iscrizione: decorrenza,
                comune: comune.clone(),
                provenienza: None,
                note: req.motivo_iscrizione.note.clone(),
            },
            genitori,
            atto_nascita: req.atto_nascita.clone(),
            aire: Some(DatiAire {
                consolato: req.consolato.clone(),
                iniziativa_iscrizione: req.iniziativa_iscrizione.clone(),
                individuazione_comune_iscrizione: req.individuazione_comune_iscrizione.clone(),
                anno_espatrio: req.anno_espatrio,
                data_arrivo_consolato: None,
            }),
            avvertimenti,
        };
        self.piano_iscrizione(store, comune, n).await
    }

    /// Checks the generalities of a new subject.
    pub(crate) fn valida_generalita(
        &self,
        g: &GeneralitaRichiesta,
        e: &mut Vec<Anomalia>,
    ) -> Option<GeneralitaValide> {
        let cognome = v::nome("generalita.cognome", &g.cognome, e);
        let nome = v::nome("generalita.nome", &g.nome, e);
        let sesso = g
            .sesso
            .parse::<Sesso>()
            .map_err(|x| e.push(Anomalia::from_invalid("generalita.sesso", &x)))
            .ok();
        let nascita = v::data("generalita.dataNascita", &g.data_nascita, e);
        v::non_futura("generalita.dataNascita", nascita, self.clock().today(), e);
        let luogo = self.luogo_evento("generalita.luogoNascita", &g.luogo_nascita, nascita, e);
        let id_comunale = g.id_scheda_soggetto_comune.as_deref().and_then(|s| {
            s.parse::<IdComunale>()
                .map_err(|x| {
                    e.push(Anomalia::from_invalid(
                        "generalita.idSchedaSoggettoComune",
                        &x,
                    ))
                })
                .ok()
        });
        let (Some(cognome), Some(nome), Some(sesso), Some(nascita), Some((luogo_code, luogo))) =
            (cognome, nome, sesso, nascita, luogo)
        else {
            return None;
        };
        Some(GeneralitaValide {
            cognome,
            nome,
            sesso,
            nascita,
            luogo,
            luogo_code,
            id_comunale,
        })
    }

    pub(crate) fn valida_cittadinanze(&self, cs: &[Cittadinanza], e: &mut Vec<Anomalia>) {
        for (i, c) in cs.iter().enumerate() {
            if c.codice_stato != "100"
                && self
                    .tables()
                    .stato_estero_by_istat(&c.codice_stato, None)
                    .is_none()
            {
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
    }

    /// The parents of a newborn: those named by id or CF must be in the registry
    /// (EN142 father, EN143 mother, EN144 both).
    async fn genitori_nascita(
        &self,
        store: &dyn Store,
        paternita: Option<&PersonaRiferita>,
        maternita: Option<&PersonaRiferita>,
        e: &mut Vec<Anomalia>,
    ) -> (
        Option<Genitori>,
        Option<SoggettoCorrente>,
        Option<SoggettoCorrente>,
    ) {
        let mut errori = Vec::new();
        let padre = match paternita {
            Some(p) => {
                self.persona(store, "paternita", p, "EN142", &mut errori)
                    .await
            }
            None => None,
        };
        let madre = match maternita {
            Some(p) => {
                self.persona(store, "maternita", p, "EN143", &mut errori)
                    .await
            }
            None => None,
        };
        let assenti = |c: &str| errori.iter().any(|a| a.codice == c);
        if assenti("EN142") && assenti("EN143") {
            e.push(
                Anomalia::errore("EN144", "Soggetti padre/madre non in ANPR")
                    .campo("paternita, maternita")
                    .atteso("genitori presenti in ANPR o indicati solo per generalita'"),
            );
            errori.retain(|a| a.codice != "EN142" && a.codice != "EN143");
        }
        e.extend(errori);
        let genitori = (padre.is_some() || madre.is_some()).then(|| Genitori {
            padre: padre.as_ref().map(|(g, _)| g.clone()),
            madre: madre.as_ref().map(|(g, _)| g.clone()),
        });
        (
            genitori,
            padre.and_then(|(_, s)| s),
            madre.and_then(|(_, s)| s),
        )
    }

    /// The codice fiscale of a new subject and what to ask the tax agency about it
    /// (`gestioneCF`): given (checked, also against the five data)
    /// or computed; a live subject with the same code refuses the registration (EN248);
    /// a cancelled one is registered again only when the request names it (EN190).
    async fn codice_fiscale_iscrizione(
        &self,
        store: &dyn Store,
        g: &GeneralitaRichiesta,
        gv: Option<&GeneralitaValide>,
        e: &mut Vec<Anomalia>,
        avvertimenti: &mut Vec<Anomalia>,
    ) -> Result<
        (
            Option<CodiceFiscaleSoggetto>,
            Option<SoggettoCorrente>,
            anpr_ae::GestioneCf,
        ),
        Vec<Anomalia>,
    > {
        let gestione = crate::ae::gestione(
            "generalita.gestioneCF",
            g.gestione_cf.as_deref(),
            g.codice_fiscale.is_some(),
            e,
        );
        let dati = gv.map(|g| DatiCalcolo {
            cognome: g.cognome.as_str(),
            nome: g.nome.as_str(),
            sesso: g.sesso,
            data_nascita: g.nascita,
            luogo_nascita: &g.luogo_code,
        });
        let codice = match (&g.codice_fiscale, &dati) {
            (Some(raw), _) => {
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
                        if let (Some(ord), Some(d)) = (c.ordinario(), &dati) {
                            if let Err(diff) = cf::coerente_con_dati(ord, d) {
                                avvertimenti.extend(diff.into_iter().map(|d| {
                                    Anomalia::avvertimento(d.codice_anpr(), d.to_string())
                                        .campo("generalita.codiceFiscale")
                                        .valore(&raw)
                                }));
                            }
                        }
                        Some(c)
                    }
                }
            }
            (None, Some(d)) => cf::calcola(d)
                .map(CodiceFiscaleSoggetto::Ordinario)
                .map_err(|x| {
                    e.push(
                        Anomalia::errore(x.codice_anpr().unwrap_or(x.code()), x.to_string())
                            .campo("generalita"),
                    )
                })
                .ok(),
            _ => None,
        };
        let riuso = match &g.id_scheda_soggetto_anpr {
            None => None,
            Some(raw) => {
                let chi = SoggettoPerRicerca {
                    id_scheda_soggetto_anpr: Some(raw.clone()),
                    codice_fiscale: None,
                };
                match self.carica_soggetto(store, "generalita", &chi, None).await {
                    Err(a) => {
                        e.push(a);
                        None
                    }
                    Ok(s) => {
                        let morto =
                            s.scheda.cancellazione.as_ref().is_some_and(|c| {
                                matches!(c.motivo_cancellazione.as_str(), "1" | "2")
                            });
                        if s.posizione() != Some(PosizioneAnagrafica::Cancellato) || morto {
                            e.push(
                                Anomalia::errore(
                                    "EN187",
                                    format!("Il soggetto {} e' gia' iscritto o deceduto", s.id),
                                )
                                .campo("generalita.idSchedaSoggettoANPR")
                                .valore(s.id.to_string())
                                .atteso("un soggetto cancellato per motivi diversi dal decesso"),
                            );
                            None
                        } else {
                            Some(s)
                        }
                    }
                }
            }
        };
        Ok((codice, riuso, gestione))
    }

    /// The codice fiscale a registration writes: the tax agency's answer to
    /// `gestione`, then the duplicate checks on the resulting code: a live subject with
    /// it refuses the registration (EN248); a cancelled one must be named to be
    /// registered again (EN190).
    #[allow(clippy::too_many_arguments)]
    async fn cf_registrazione(
        &self,
        store: &dyn Store,
        ambiente: anpr_domain::caller::Ambiente,
        comune: &CodiceIstatComune,
        gestione: anpr_ae::GestioneCf,
        locale: &CodiceFiscaleSoggetto,
        gv: &GeneralitaValide,
        riuso: Option<&SoggettoCorrente>,
        sospesa: Option<&str>,
        avvertimenti: &mut Vec<Anomalia>,
    ) -> Result<DatiCodiceFiscale, Vec<Anomalia>> {
        // A suspended registration of the same codice fiscale blocks this one (unless
        // this one completes it).
        let esclusa = self.id_sospesa(sospesa).ok().flatten();
        if let Some(a) = self
            .sospesa_in_conflitto(store, comune, &[], Some(locale.as_str()), esclusa)
            .await
            .map_err(|x| vec![self.anomalia_interna(x)])?
        {
            return Err(vec![a]);
        }
        let dati = crate::ae::DatiCf {
            cognome: gv.cognome.as_str(),
            nome: gv.nome.as_str(),
            sesso: gv.sesso,
            nascita: gv.nascita,
            luogo: &gv.luogo_code,
        };
        let d = self
            .codice_fiscale_ae(ambiente, comune, gestione, locale, &dati, avvertimenti)
            .await?;
        let mut e = Vec::new();
        let codice = Some(d.cod_fiscale);
        if let Some(c) = &codice {
            let q = SubjectQuery {
                codice_fiscale: Some(c.as_str().to_owned()),
                limit: 10,
                ..Default::default()
            };
            let found = store
                .find_subjects(&q)
                .await
                .map_err(|x| vec![self.anomalia_interna(x)])?;
            if found
                .iter()
                .any(|s| s.posizione != PosizioneAnagrafica::Cancellato.code())
            {
                e.push(
                    Anomalia::errore(
                        "EN248",
                        format!("Soggetto gia' presente su ANPR con CF {}", c.as_str()),
                    )
                    .campo("generalita.codiceFiscale")
                    .valore(c.as_str()),
                );
            } else if let Some(cancellato) =
                found.iter().find(|s| riuso.is_none_or(|r| r.id != s.id))
            {
                e.push(
                    Anomalia::errore("EN190", format!("Soggetto con CF {} cancellato in ANPR, per riscriverlo indicare idSchedaSoggettoANPR {} nella richiesta", c.as_str(), cancellato.id))
                        .campo("generalita.idSchedaSoggettoANPR")
                        .valore(c.as_str())
                        .atteso(cancellato.id.to_string()),
                );
            }
        }
        if e.is_empty() {
            Ok(d)
        } else {
            Err(e)
        }
    }

    /// The existing family a new subject joins (`None`: a new one), with the checks of
    /// its relationship code.
    async fn famiglia_iscrizione(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        f: &FamigliaRichiesta,
        aire: bool,
        e: &mut Vec<Anomalia>,
    ) -> Result<Option<FamigliaCorrente>, Vec<Anomalia>> {
        let t = self.tables();
        let legame = &f.codice_legame;
        let Some(raw) = &f.id_famiglia_convivenza_anpr else {
            if legame != RELAZIONE_INTESTATARIO {
                e.push(
                    Anomalia::errore("EF021", "Il codice legame deve essere 1 - Intestatario quando viene richiesta la creazione di una nuova famiglia")
                        .campo("famiglia.codiceLegame")
                        .valore(legame)
                        .atteso(RELAZIONE_INTESTATARIO),
                );
            }
            return Ok(None);
        };
        let fam = match self
            .carica_famiglia(
                store,
                "famiglia.idFamigliaConvivenzaANPR",
                raw,
                Some(comune),
            )
            .await
        {
            Ok(fam) if fam.attiva() => fam,
            Ok(fam) => {
                e.push(
                    Anomalia::errore("EF002", "Identificativo scheda famiglia/convivenza attribuito da ANPR non trovato o scheda famiglia archiviata")
                        .campo("famiglia.idFamigliaConvivenzaANPR")
                        .valore(fam.id.to_string()),
                );
                return Ok(None);
            }
            Err(a) => {
                e.push(a);
                return Ok(None);
            }
        };
        let (tab, cod, descr) = match fam.tipo() {
            TipoScheda::Convivenza => (
                "legame_convivenza",
                "EC003",
                "Codice legame scheda convivenza",
            ),
            TipoScheda::Famiglia => (
                "relazione_parentela",
                "EC002",
                "Codice relazione di parentela",
            ),
        };
        v::codice_tabella(t, tab, legame, None, cod, descr, "famiglia.codiceLegame", e);
        if legame == RELAZIONE_INTESTATARIO
            && fam.componenti.values().any(|c| c == RELAZIONE_INTESTATARIO)
        {
            e.push(
                Anomalia::errore(
                    "EF007",
                    "Intestatario della scheda famiglia/convivenza gia' presente",
                )
                .campo("famiglia.codiceLegame")
                .valore(legame),
            );
        }
        let famiglia_aire = fam.scheda.dati.as_ref().is_some_and(|d| d.famiglia_aire);
        if aire != famiglia_aire {
            e.push(
                Anomalia::errore(
                    if aire { "EF018" } else { "EF019" },
                    if aire { "La famiglia indicata non e' una famiglia AIRE" } else { "La famiglia indicata e' una famiglia AIRE: non puo' accogliere un residente in Italia" },
                )
                .campo("famiglia.idFamigliaConvivenzaANPR")
                .valore(fam.id.to_string()),
            );
        }
        Ok(Some(fam))
    }

    /// Builds the writes of a registration: the record (from scratch, or over the
    /// cancelled record of a subject registered again), and the family joined or created.
    pub(crate) async fn piano_iscrizione(
        &self,
        store: &dyn Store,
        comune: &CodiceIstatComune,
        n: NuovaIscrizione,
    ) -> Result<Piano, Vec<Anomalia>> {
        let interno = |x: String| vec![self.anomalia_interna(x)];
        let (soggetto, prima) = match &n.riuso {
            Some(s) => (s.id, s.scheda.clone()),
            None => (
                IdAnprSoggetto::new(
                    store
                        .next_id(Sequence::Soggetto)
                        .await
                        .map_err(|x| interno(x.to_string()))?,
                )
                .map_err(|x| interno(x.to_string()))?,
                SchedaSoggetto::default(),
            ),
        };
        let id_famiglia = match &n.famiglia {
            Some(f) => f.id,
            None => IdAnprFamiglia::new(
                store
                    .next_id(Sequence::Famiglia)
                    .await
                    .map_err(|x| interno(x.to_string()))?,
            )
            .map_err(|x| interno(x.to_string()))?,
        };
        let g = &n.generalita;
        let tipo = n
            .famiglia
            .as_ref()
            .map_or(TipoScheda::Famiglia, |f| f.tipo());
        let mut scheda = prima.clone();
        scheda.competenza = Some(Competenza {
            comune: comune.clone(),
            posizione: n.posizione,
            id_scheda_soggetto_comune: g.id_comunale.clone(),
        });
        scheda.generalita = Some(Generalita {
            cognome: Some(g.cognome.clone()),
            nome: Some(g.nome.clone()),
            sesso: g.sesso,
            data_nascita: DataAnagrafica::completa(g.nascita),
            luogo_nascita: g.luogo.clone(),
            note: None,
        });
        // A subject registered again keeps its earlier codes as linked ones.
        let mut cfd = n.codice_fiscale.clone();
        if let Some(c) = &prima.codice_fiscale {
            for x in c
                .codici_collegati
                .iter()
                .chain(std::iter::once(&c.cod_fiscale))
            {
                if *x != cfd.cod_fiscale && !cfd.codici_collegati.contains(x) {
                    cfd.codici_collegati.push(*x);
                }
            }
        }
        scheda.codice_fiscale = Some(cfd);
        if !n.cittadinanze.is_empty() {
            scheda.cittadinanze = Some(n.cittadinanze.clone());
        }
        if n.genitori.is_some() {
            scheda.genitori = n.genitori.clone();
        }
        if let Some(a) = &n.atto_nascita {
            scheda.atti = Some(Atti {
                atto_nascita: Some(a.clone()),
            });
        }
        scheda.residenza = Some(n.residenza.clone());
        scheda.legame = Some(legame(id_famiglia, tipo, &n.codice_legame, n.decorrenza));
        scheda.iscrizione = Some(n.iscrizione.clone());
        scheda.cancellazione = None;
        scheda.aire = n.aire.clone();
        let mut m = Modifiche::default();
        m.soggetto(soggetto, &prima, &scheda);
        match &n.famiglia {
            Some(f) => m.famiglia(f.id, &f.scheda, &f.scheda),
            None => {
                let nf = nuova_famiglia(
                    comune,
                    n.id_famiglia_comune.clone(),
                    soggetto,
                    n.decorrenza,
                    &n.residenza,
                );
                m.famiglia(id_famiglia, &SchedaFamiglia::default(), &nf);
            }
        }
        Ok(m.piano(n.decorrenza, n.avvertimenti))
    }

    /// An internal failure met while deciding: logged, and shown only as a coded
    /// internal error with its reference.
    pub(crate) fn anomalia_interna(&self, cause: impl std::fmt::Display) -> Anomalia {
        let err = self.interno(cause);
        err.anomalie().remove(0)
    }
}

fn id_comunale_famiglia(f: &FamigliaRichiesta, e: &mut Vec<Anomalia>) -> Option<IdComunale> {
    f.id_famiglia_convivenza_comune.as_deref().and_then(|s| {
        s.parse::<IdComunale>()
            .map_err(|x| {
                e.push(Anomalia::from_invalid(
                    "famiglia.idFamigliaConvivenzaComune",
                    &x,
                ))
            })
            .ok()
    })
}

/// A birth deed cannot predate the birth nor follow today (ES013).
fn atto_coerente(a: &Atto, nascita: NaiveDate, oggi: NaiveDate, e: &mut Vec<Anomalia>) {
    if a.anno < nascita.year()
        || a.anno > oggi.year()
        || a.data_formazione_atto
            .is_some_and(|d| d < nascita || d > oggi)
    {
        e.push(
            Anomalia::errore("ES013", "L'anno e la data di formazione del'atto di nascita non possono essere precedenti alla data di nascita ne' successivi alla data corrente")
                .campo("attoNascita.anno")
                .valore(a.anno.to_string())
                .atteso(format!("un anno tra {} e {}", nascita.year(), oggi.year())),
        );
    }
}
