//! Reading records (SPEC M-5.1): national scope, as at a date, audited.
//!
//! Every read of personal data appends an audit entry naming the record (by its
//! national id, never by personal data) before the data are returned: a read whose audit
//! entry cannot be written is not served.

use anpr_domain::audit::{NuovaVoceAudit, TipoEvento};
use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{IdAnprFamiglia, IdAnprSoggetto};
use anpr_domain::scheda::{SchedaFamiglia, SchedaSoggetto, SectionError, SezioneSoggetto};
use anpr_store::{EntityRef, RecordSections, RecordTesto};
use chrono::NaiveDate;
use serde::Serialize;

use crate::authz::Permesso;
use crate::{Registry, ServiceError};

/// An individual record as read, with the date it was read at.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedaLetta {
    pub id_anpr: IdAnprSoggetto,
    /// `None` = current state.
    pub data_riferimento: Option<NaiveDate>,
    pub scheda: SchedaSoggetto,
}

/// A family or cohabitation record with its members at the date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamigliaLetta {
    pub id_anpr: IdAnprFamiglia,
    pub data_riferimento: Option<NaiveDate>,
    pub scheda: SchedaFamiglia,
    /// Members and their relationship code, ordered by subject id.
    pub componenti: Vec<ComponenteLetto>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponenteLetto {
    pub id_anpr: IdAnprSoggetto,
    pub codice_legame: String,
}

impl Registry {
    /// Reads an individual record, whole or restricted to `sezioni` (data minimisation),
    /// at `data` (valid time) or now.
    pub async fn leggi_scheda(
        &self,
        ctx: &CallerContext,
        id: IdAnprSoggetto,
        data: Option<NaiveDate>,
        sezioni: Option<&[SezioneSoggetto]>,
    ) -> Result<SchedaLetta, ServiceError> {
        self.autorizza(ctx, Permesso::ConsultaScheda, "consultaScheda")
            .await?;
        let record = self
            .read_audited(ctx, EntityRef::Soggetto(id), data, "consultaScheda")
            .await?;
        self.scheda_letta(id, data, &record, sezioni)
    }

    /// Reads a family or cohabitation record with its members, at `data` or now.
    pub async fn leggi_famiglia(
        &self,
        ctx: &CallerContext,
        id: IdAnprFamiglia,
        data: Option<NaiveDate>,
    ) -> Result<FamigliaLetta, ServiceError> {
        self.autorizza(ctx, Permesso::ConsultaScheda, "consultaFamiglia")
            .await?;
        let record = self
            .read_audited(ctx, EntityRef::Famiglia(id), data, "consultaFamiglia")
            .await?;
        self.famiglia_letta(ctx, id, data, &record).await
    }

    /// Builds the answer for an individual record already read, keeping only the
    /// sections asked for (all when `sezioni` is `None`).
    pub(crate) fn scheda_letta(
        &self,
        id: IdAnprSoggetto,
        data: Option<NaiveDate>,
        record: &RecordSections,
        sezioni: Option<&[SezioneSoggetto]>,
    ) -> Result<SchedaLetta, ServiceError> {
        self.scheda_con(id, data, sezioni, |voluta| {
            SchedaSoggetto::from_sections(record.iter().filter(|(k, _)| voluta(k)))
        })
    }

    /// As [`Self::scheda_letta`], from the record's stored text.
    pub(crate) fn scheda_letta_testo(
        &self,
        id: IdAnprSoggetto,
        data: Option<NaiveDate>,
        record: &RecordTesto,
        sezioni: Option<&[SezioneSoggetto]>,
    ) -> Result<SchedaLetta, ServiceError> {
        self.scheda_con(id, data, sezioni, |voluta| {
            SchedaSoggetto::from_sections_testo(record.iter().filter(|(k, _)| voluta(k)))
        })
    }

    /// The answer built by `costruisci` from the sections it is told are wanted.
    fn scheda_con(
        &self,
        id: IdAnprSoggetto,
        data: Option<NaiveDate>,
        sezioni: Option<&[SezioneSoggetto]>,
        costruisci: impl FnOnce(&dyn Fn(&str) -> bool) -> Result<SchedaSoggetto, SectionError>,
    ) -> Result<SchedaLetta, ServiceError> {
        let voluta = |key: &str| sezioni.is_none_or(|s| s.iter().any(|k| k.key() == key));
        let scheda = costruisci(&voluta).map_err(|e| self.interno(e))?;
        Ok(SchedaLetta {
            id_anpr: id,
            data_riferimento: data,
            scheda,
        })
    }

    /// Builds the answer for a family record already read: its sections and its
    /// members at `data` (each subject's `legame` in force then names the family).
    pub(crate) async fn famiglia_letta(
        &self,
        ctx: &CallerContext,
        id: IdAnprFamiglia,
        data: Option<NaiveDate>,
        record: &RecordSections,
    ) -> Result<FamigliaLetta, ServiceError> {
        let scheda = SchedaFamiglia::from_sections(record.iter()).map_err(|e| self.interno(e))?;
        let store = self.store(ctx.ambiente)?;
        let members = store
            .by_section_key(SezioneSoggetto::Legame.key(), &id.to_string(), data)
            .await
            .map_err(|e| self.interno(e))?;
        let mut componenti = Vec::with_capacity(members.len());
        for (entity, value) in members {
            let EntityRef::Soggetto(sid) = entity else {
                continue;
            };
            let legame: anpr_domain::scheda::Legame =
                serde_json::from_value(value).map_err(|e| self.interno(e))?;
            componenti.push(ComponenteLetto {
                id_anpr: sid,
                codice_legame: legame.codice_legame,
            });
        }
        componenti.sort_by_key(|c| c.id_anpr);
        Ok(FamigliaLetta {
            id_anpr: id,
            data_riferimento: data,
            scheda,
            componenti,
        })
    }

    /// Audits the read, then reads. A record not found is audited as such too: probing
    /// for ids is itself worth a trace.
    async fn read_audited(
        &self,
        ctx: &CallerContext,
        entity: EntityRef,
        data: Option<NaiveDate>,
        azione: &str,
    ) -> Result<RecordSections, ServiceError> {
        self.leggi_record_registrando(ctx, entity, data, azione)
            .await?
            .ok_or_else(|| ServiceError::NonTrovato {
                cosa: entity.to_string(),
                riferimento: self.riferimento(None),
            })
    }

    /// Reads a record at `data` (or now) and appends the audit entry naming it by its
    /// national id, with outcome `ok` or `non trovato`, before anything is returned:
    /// when the entry cannot be written the read fails. Every use case that returns
    /// record data reads through here (consultation, searches).
    pub(crate) async fn leggi_record_registrando(
        &self,
        ctx: &CallerContext,
        entity: EntityRef,
        data: Option<NaiveDate>,
        azione: &str,
    ) -> Result<Option<RecordSections>, ServiceError> {
        let (record, voce) = self
            .leggi_record_da_registrare(ctx, entity, data, azione)
            .await?;
        self.store(ctx.ambiente)?
            .append_audit(voce)
            .await
            .map_err(|e| self.interno(e))?;
        Ok(record)
    }

    /// Reads a record at `data` (or now) and returns it with the audit entry that must
    /// be appended before anything of it is returned to the caller. For use cases that
    /// read several records (searches): they append all their entries with one
    /// [`anpr_store::Store::append_audit_batch`] and answer only when it succeeded.
    pub(crate) async fn leggi_record_da_registrare(
        &self,
        ctx: &CallerContext,
        entity: EntityRef,
        data: Option<NaiveDate>,
        azione: &str,
    ) -> Result<(Option<RecordSections>, NuovaVoceAudit), ServiceError> {
        let store = self.store(ctx.ambiente)?;
        let record = store
            .record(entity, data)
            .await
            .map_err(|e| self.interno(e))?;
        let voce = self.voce_lettura(ctx, entity, record.is_some(), azione);
        Ok((record, voce))
    }

    /// The audit entry of reading `entity`'s record (found or not) for `azione`.
    pub(crate) fn voce_lettura(
        &self,
        ctx: &CallerContext,
        entity: EntityRef,
        trovato: bool,
        azione: &str,
    ) -> NuovaVoceAudit {
        let oggetto = match entity {
            EntityRef::Soggetto(id) => format!("soggetto:{id}"),
            EntityRef::Famiglia(id) => format!("famiglia:{id}"),
            EntityRef::Procedimento(id) => format!("procedimento:{id}"),
        };
        let esito = if trovato { "ok" } else { "non trovato" };
        self.voce_audit(
            ctx,
            TipoEvento::Lettura,
            azione,
            Some(oggetto),
            esito.into(),
        )
    }
}

/// Parses the section keys a caller asks for (`sezioni`, data minimisation); an unknown
/// key is EV001 naming the field and listing the known keys.
pub fn sezioni_soggetto(campo: &str, chiavi: &[String]) -> Result<Vec<SezioneSoggetto>, Anomalia> {
    chiavi
        .iter()
        .map(|s| {
            SezioneSoggetto::from_key(s).ok_or_else(|| {
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Sezione della scheda inesistente")
                    .campo(campo)
                    .valore(s)
                    .atteso(
                        SezioneSoggetto::ALL
                            .iter()
                            .map(|k| k.key())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
            })
        })
        .collect()
}
