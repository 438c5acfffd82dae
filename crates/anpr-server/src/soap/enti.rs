//! The public bodies' SOAP services (`/ws/AnprServiceE001`, `…E002`): a body under a
//! data-use agreement (profile ENTE_FRUITORE) downloads the decoding tables (E001, as
//! 7001) and consults subjects nationally (E002, the 3002 reads); and the consulates'
//! read-only AIRE queries (`/ws/AnprServiceCONSOLATI`, C001 and C010, profile
//! CONSOLATO), which follow the same pattern.
//!
//! The caller arrives here without a municipality (see `richiesta_con_limite`): a body
//! is not a municipality, and its `codMittente` is its own code. Every call first needs
//! [`Permesso::ServiziEnti`], held by ENTE_FRUITORE only, so a municipal operator (or
//! anyone without the profile) is refused with EA401 even for the public tables: this
//! channel is the bodies'. The reads are then authorised and audited by the use cases
//! as on every channel.

use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use anpr_service::authz::Permesso;
use anpr_service::ricerca::{CriteriRicerca, RichiestaRicercaSoggetti};
use anpr_soap::busta::Busta;
use anpr_soap::catalogo::{Operazione, Servizio};
use anpr_soap::enti;
use anpr_soap::richieste::Testata;
use axum::http::StatusCode;
use axum::response::Response;

use super::{consulta, errore_servizio, id_risposta, rifiuto, tabella_richiesta, xml, Risposta};
use crate::AppState;

/// The channel's permission (`permesso`), checked before anything is read: the refusal
/// (EA401, audited as action `<azione><codice>`) is the answer to send.
async fn canale(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    permesso: Permesso,
    azione: &str,
) -> Result<(), Response> {
    state
        .registry
        .autorizza(ctx, permesso, &format!("{azione}{}", op.codice))
        .await
        .map_err(|e| errore_servizio(servizio, op, t, &e))
}

/// E001 and E002, after the channel's permission.
pub(super) async fn esegui(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    if let Err(r) = canale(
        state,
        servizio,
        op,
        t,
        ctx,
        Permesso::ServiziEnti,
        "serviziEnti",
    )
    .await
    {
        return r;
    }
    if op.codice == "E001" {
        let richiesto = match enti::converti_e001(&b.corpo) {
            Ok(r) => r,
            Err(a) => return rifiuto(state, servizio, op, t, &a),
        };
        return match tabella_richiesta(state, servizio, op, t, ctx, &richiesto).await {
            Ok((numero, file)) => {
                let id = id_risposta(registry);
                xml(
                    StatusCode::OK,
                    enti::risposta_e001(servizio, op, t, numero, &file, &id),
                )
            }
            Err(risposta) => risposta,
        };
    }
    let conv = match enti::converti_e002(&b.corpo) {
        Ok(c) => c,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    consulta(
        state,
        servizio,
        op,
        t,
        ctx,
        &conv.consultazione,
        Risposta::Ente(&conv.avvertimenti),
    )
    .await
}

/// The consulates' AIRE queries: C001 (the records of the AIRE subjects found) and
/// C010 (whether the person is registered in AIRE), after [`Permesso::ServiziConsolati`]
/// (CONSOLATO only: EA401 for anyone else). The search is the consultation's,
/// restricted to AIRE subjects, audited as every read.
pub(super) async fn consolati(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    if let Err(r) = canale(
        state,
        servizio,
        op,
        t,
        ctx,
        Permesso::ServiziConsolati,
        "serviziConsolati",
    )
    .await
    {
        return r;
    }
    let conv = match anpr_soap::consolati::converti(&b.corpo) {
        Ok(c) => c,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    if op.codice == "C001" {
        return consulta(state, servizio, op, t, ctx, &conv, Risposta::Consolato).await;
    }
    let criteri = serde_json::from_value::<RichiestaRicercaSoggetti>(conv.corpo)
        .map_err(|e| {
            vec![
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Richiesta non conforme")
                    .campo("RichiestaC010/generalita")
                    .valore(e.to_string()),
            ]
        })
        .and_then(|r| CriteriRicerca::da_richiesta(&r));
    let criteri = match criteri {
        Ok(c) => c,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    match registry.ricerca_soggetti(ctx, &criteri).await {
        Ok(trovati) => {
            let id = id_risposta(registry);
            xml(
                StatusCode::OK,
                anpr_soap::consolati::risposta_c010(servizio, op, t, !trovati.is_empty(), &id),
            )
        }
        Err(e) => errore_servizio(servizio, op, t, &e),
    }
}
