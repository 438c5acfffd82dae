//! 3003, 3005 and 3007: the municipality's requests and the notifications addressed
//! to it, read back (the selection and answers are `anpr_soap::gestione`'s, the reads
//! `anpr_service::notifiche`'s, which documents states, availability, taking and
//! audit).

use anpr_domain::caller::CallerContext;
use anpr_domain::error::Anomalia;
use anpr_domain::ids::IdOperazioneAnpr;
use anpr_service::clock::istante_italiano;
use anpr_service::notifiche::{
    Chiave, Contenuto, Genere, Lettura, Selezione, StatoLavorazione, Voce,
};
use anpr_soap::busta::Busta;
use anpr_soap::catalogo::{Operazione, Servizio};
use anpr_soap::gestione::{self, ChiaveSingola, ComuneRichiesta, DataOra, Ricerca, VoceRisposta};
use anpr_soap::richieste::Testata;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{errore_servizio, id_risposta, non_competente, rifiuto, xml};
use crate::AppState;

/// Most items one 3007 answer lists (ids only).
pub const MAX_IDENTIFICATIVI: u32 = 1000;
/// Most items one 3003 answer carries (each with its whole document): ANPR's "il
/// numero di risposte fornite e' limitato". A client pages on with
/// `identificativiANPR/protocolloANPRDa` = the last id + 1.
pub const MAX_RISPOSTE: u32 = 100;

fn istante(d: DataOra) -> DateTime<Utc> {
    match d {
        DataOra::Assoluta(t) => t,
        DataOra::Locale(n) => istante_italiano(n),
    }
}

/// The XML document of an item (3003's `xmlRisposta`, 3005's `xmlFile`): a request's
/// answer, or the notification; `None` for asynchronous requests.
fn documento(v: &Voce) -> Option<String> {
    match &v.contenuto {
        Contenuto::Operazione(op) => gestione::risposta_operazione(
            op.codice_servizio.as_str(),
            op.comune.as_ref().map_or("", |c| c.as_str()),
            op.id_operazione_comune.map(|i| i.to_string()).as_deref(),
            op.registrata_il,
            &op.risposta,
        ),
        Contenuto::Notifica(m) => Some(gestione::notifica_xml(
            &v.tipo,
            &v.id_operazione_anpr.to_string(),
            m.creato_il,
            &m.message.payload,
        )),
        Contenuto::Elaborazione(_) => None,
    }
}

/// `comuneRichiesta` of the answer: the caller's municipality, as the decoding tables
/// name it today.
fn comune_richiesta(state: &AppState, ctx: &CallerContext) -> ComuneRichiesta {
    let registry = &state.registry;
    let codice = ctx
        .comune
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let oggi = registry.clock().today();
    let trovato = ctx
        .comune
        .as_ref()
        .and_then(|c| registry.tables().comune_by_istat(c, oggi));
    ComuneRichiesta {
        nome: trovato.map_or_else(|| codice.clone(), |c| c.nome.clone()),
        codice_istat: codice,
        sigla_provincia: trovato.map_or_else(|| "EE".into(), |c| c.sigla_provincia.clone()),
    }
}

/// 3003 and 3007.
pub(super) async fn richieste(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    let r = &b.corpo;
    let conv = match gestione::converti_3003(r) {
        Ok(c) => c,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    if let (Some(chiesto), Some(proprio)) = (&conv.comune, &ctx.comune) {
        if chiesto.trim() != proprio.as_str() {
            let campo = format!("{}/comuneRichiesta/codiceIstat", r.nome);
            let a = non_competente(campo, chiesto, proprio);
            return rifiuto(state, servizio, op, t, &[a]);
        }
    }
    let contenuti = op.codice == "3003";
    let lettura = if contenuti {
        Lettura::CONSEGNA
    } else {
        Lettura::IDENTIFICATIVI
    };
    let limite = if contenuti {
        MAX_RISPOSTE
    } else {
        MAX_IDENTIFICATIVI
    };
    let esito = match conv.ricerca {
        Ricerca::Singola { chiave, genere } => {
            let chiave = match chiave {
                ChiaveSingola::Anpr(id) => Chiave::Anpr(id),
                ChiaveSingola::Comune(id) => Chiave::Comune(id),
            };
            registry
                .richiesta_notifica(ctx, chiave, Genere::da_codice(genere), lettura)
                .await
                .map(|v| v.into_iter().collect::<Vec<_>>())
        }
        Ricerca::Elenco {
            stato,
            tipo,
            dal,
            al,
            id_da,
            id_a,
            id_comune_da,
            id_comune_a,
        } => {
            let Some(stato) = StatoLavorazione::da_codice(&stato) else {
                // The conversion accepts only the table's codes.
                let a = Anomalia::errore(
                    anpr_domain::error::CODICE_VALORE_NON_VALIDO,
                    "Stato di lavorazione non valido",
                )
                .campo(format!(
                    "{}/ricercaElenchiRichieste/statoLavorazione",
                    r.nome
                ))
                .valore(stato);
                return rifiuto(state, servizio, op, t, &[a]);
            };
            let sel = Selezione {
                tipo,
                dal: dal.map(istante),
                al: al.map(istante),
                id_da,
                id_a,
                id_comune_da,
                id_comune_a,
                soggetto: conv.id_soggetto,
                codice_fiscale: conv.codice_fiscale.clone(),
                ..Selezione::di_stato(stato, limite)
            };
            registry.richieste_notifiche(ctx, &sel, lettura).await
        }
    };
    let voci = match esito {
        Ok(v) => v,
        Err(e) => return errore_servizio(servizio, op, t, &e),
    };
    let voci: Vec<VoceRisposta> = voci
        .iter()
        .map(|v| VoceRisposta {
            stato: v.stato.codice().to_owned(),
            tipo: v.tipo.clone(),
            id_operazione_anpr: v.id_operazione_anpr.to_string(),
            xml: if contenuti { documento(v) } else { None },
        })
        .collect();
    let comune = comune_richiesta(state, ctx);
    let rid = id_risposta(registry);
    xml(
        StatusCode::OK,
        gestione::risposta_3003(servizio, op, t, r, &comune, &voci, &rid),
    )
}

/// 3005: the document of one id — the municipality's request's answer or a
/// notification addressed to it (taken) — or, for a concluded asynchronous request,
/// its result file (as 7002).
pub(super) async fn elaborato(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    let r = &b.corpo;
    let ricevuto = r
        .testo_a("datiRichiesta/idOperazioneANPR")
        .unwrap_or("")
        .trim();
    let Some(id) = ricevuto
        .parse::<u64>()
        .ok()
        .and_then(|i| IdOperazioneAnpr::new(i).ok())
    else {
        let a = Anomalia::errore(
            anpr_domain::error::CODICE_VALORE_NON_VALIDO,
            "Identificativo non valido",
        )
        .campo("Richiesta3005/datiRichiesta/idOperazioneANPR")
        .valore(ricevuto)
        .atteso("l'idOperazioneANPR numerico di una richiesta o notifica del comune");
        return rifiuto(state, servizio, op, t, &[a]);
    };
    let voce = match registry
        .richiesta_notifica(ctx, Chiave::Anpr(id), None, Lettura::CONSEGNA)
        .await
    {
        Ok(v) => v,
        Err(e) => return errore_servizio(servizio, op, t, &e),
    };
    let contenuto = match &voce {
        Some(
            v @ Voce {
                contenuto: Contenuto::Operazione(_) | Contenuto::Notifica(_),
                ..
            },
        ) => documento(v).map(String::into_bytes),
        Some(Voce {
            contenuto: Contenuto::Elaborazione(_),
            ..
        }) => match registry.scarica_file(ctx, ricevuto).await {
            Ok(f) => Some(f.contenuto),
            Err(e) => return errore_servizio(servizio, op, t, &e),
        },
        None => None,
    };
    let Some(contenuto) = contenuto else {
        let a = Anomalia::errore(
            anpr_service::error::CODICE_NON_TROVATO,
            "Nessuna richiesta o notifica del comune con questo identificativo",
        )
        .campo("Richiesta3005/datiRichiesta/idOperazioneANPR")
        .valore(ricevuto)
        .atteso("l'idOperazioneANPR di una richiesta del comune o di una notifica a esso indirizzata, ancora disponibile");
        return rifiuto(state, servizio, op, t, &[a]);
    };
    let rid = id_risposta(registry);
    xml(
        StatusCode::OK,
        gestione::risposta_3005(servizio, op, t, r, &contenuto, &rid),
    )
}
