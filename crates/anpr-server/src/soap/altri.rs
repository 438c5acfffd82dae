//! SOAP services answered outside the registry pipeline: certificates (6001),
//! asynchronous extractions and ISTAT tables (4001-4005) and the download of their
//! files (7002). Each converts its request with `anpr_soap::servizi`, calls the same
//! use case as the REST edge (`rest_certificati`, `rest_estrazioni`,
//! `rest_statistiche`) and writes the XSD's answer.

use anpr_domain::caller::CallerContext;
use anpr_domain::error::{Anomalia, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::IdAnprSoggetto;
use anpr_service::certificati::{Richiedente, RichiestaCertificato};
use anpr_service::estrazioni::{FiltroRichieste, Richiesta4001, Richiesta4002, Richiesta4004};
use anpr_service::procedimenti::RicercaProcedimenti;
use anpr_service::ricerca::{CriteriRicerca, RichiestaRicercaSoggetti};
use anpr_service::statistiche::Richiesta4003;
use anpr_soap::busta::Busta;
use anpr_soap::catalogo::{Operazione, Servizio};
use anpr_soap::richieste::Testata;
use anpr_soap::servizi::{self, Richiesta4005, VoceRichiesta};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;

use super::{errore_servizio, id_risposta, rifiuto, xml};
use crate::AppState;

fn invalido(campo: &str, valore: &str, atteso: &str) -> Anomalia {
    Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Valore non valido")
        .campo(campo)
        .valore(valore)
        .atteso(atteso)
}

/// 6001 `emissioneCertificato`: one certificate (possibly certifying several types),
/// its PDF in `file/certificatoPdf`.
pub(super) async fn certificato(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    let r = &b.corpo;
    let req = match servizi::converti_6001(r, t) {
        Ok(x) => x,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    let campo_soggetto = "Richiesta6001/soggettoIntestatario/generalita";
    let soggetto = if let Some(id) = &req.id_anpr {
        match id
            .parse::<u64>()
            .ok()
            .and_then(|v| IdAnprSoggetto::new(v).ok())
        {
            Some(s) => s,
            None => {
                let a = invalido(
                    &format!("{campo_soggetto}/idSchedaSoggettoANPR"),
                    id,
                    "un idANPR",
                );
                return rifiuto(state, servizio, op, t, &[a]);
            }
        }
    } else {
        // By tax code: the consultation search (audited as every read).
        let cf = req.codice_fiscale.clone().unwrap_or_default();
        let richiesta = serde_json::from_value::<RichiestaRicercaSoggetti>(
            serde_json::json!({"criteriRicerca": {"codiceFiscale": cf}}),
        );
        let criteri = match richiesta
            .map_err(|e| {
                vec![invalido(
                    campo_soggetto,
                    &e.to_string(),
                    "un codice fiscale",
                )]
            })
            .and_then(|r| CriteriRicerca::da_richiesta(&r))
        {
            Ok(c) => c,
            Err(a) => return rifiuto(state, servizio, op, t, &a),
        };
        match registry.ricerca_soggetti(ctx, &criteri).await {
            Ok(v) if v.len() == 1 => v[0].id_anpr,
            Ok(_) => {
                let a = Anomalia::errore(
                    anpr_service::error::CODICE_NON_TROVATO,
                    "Nessun soggetto con il codice fiscale indicato",
                )
                .campo(format!("{campo_soggetto}/codiceFiscale/codFiscale"))
                .valore(cf);
                return rifiuto(state, servizio, op, t, &[a]);
            }
            Err(e) => return errore_servizio(servizio, op, t, &e),
        }
    };
    let data_riferimento = match req.data_riferimento.as_deref() {
        None => None,
        Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                let a = invalido("testataRichiesta/dataDecorrenza", d, "una data AAAA-MM-GG");
                return rifiuto(state, servizio, op, t, &[a]);
            }
        },
    };
    let richiesta = RichiestaCertificato {
        soggetto,
        tipi: req.tipi.clone(),
        lingua: req.lingua.clone(),
        data_riferimento,
        richiedente: req
            .richiedente
            .clone()
            .map(|(cognome, nome, codice_fiscale)| Richiedente {
                cognome,
                nome,
                codice_fiscale,
            }),
        esenzione_bollo: req.esenzione_bollo.clone(),
        descrizione_esenzione_bollo: req.descrizione_esenzione_bollo.clone(),
        uso: req.uso.clone(),
        forza_certificazione: req.forza_certificazione,
    };
    match registry
        .emetti_certificato(ctx, registry.certificati(), richiesta)
        .await
    {
        Ok((emesso, pdf)) => {
            let id = id_risposta(registry);
            let e = servizi::Emesso {
                numero_protocollo: emesso.numero_protocollo,
                bollo: emesso.importi.bollo,
                diritti: emesso.importi.diritti_segreteria,
                pdf: &pdf,
                avvertimenti: &req.avvertimenti,
            };
            xml(
                StatusCode::OK,
                servizi::risposta_6001(servizio, op, t, r, &e, &id),
            )
        }
        Err(e) => errore_servizio(servizio, op, t, &e),
    }
}

/// 4001-4004: the request is validated and queued by its use case; the answer carries
/// its `idOperazioneANPR` (an `idOperazioneComune` already used returns the first).
pub(super) async fn estrazione(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    let r = &b.corpo;
    let Some(corpo) = servizi::converti_4000(&op.codice, r, t) else {
        return super::non_disponibile(state, servizio, op, t);
    };
    let parte = if matches!(op.codice.as_str(), "4001" | "4002") {
        "criteriRicerca"
    } else {
        "datiRichiesta"
    };
    let corpo_errato = |e: serde_json::Error| {
        rifiuto(
            state,
            servizio,
            op,
            t,
            &[servizi::rifiuto_corpo(r, parte, &e.to_string())],
        )
    };
    let esito = match op.codice.as_str() {
        "4001" => match serde_json::from_value::<Richiesta4001>(corpo) {
            Ok(x) => registry.richiedi_estrazione(ctx, &x).await,
            Err(e) => return corpo_errato(e),
        },
        "4002" => match serde_json::from_value::<Richiesta4002>(corpo) {
            Ok(x) => registry.richiedi_rivestimento(ctx, &x).await,
            Err(e) => return corpo_errato(e),
        },
        "4003" => match serde_json::from_value::<Richiesta4003>(corpo) {
            Ok(x) => registry.richiedi_prospetto(ctx, &x).await,
            Err(e) => return corpo_errato(e),
        },
        _ => match serde_json::from_value::<Richiesta4004>(corpo) {
            Ok(x) => registry.richiedi_elenco(ctx, &x).await,
            Err(e) => return corpo_errato(e),
        },
    };
    match esito {
        Ok(a) => xml(
            StatusCode::OK,
            servizi::accettata_4000(servizio, op, t, r, &a.id_operazione_anpr),
        ),
        Err(e) => errore_servizio(servizio, op, t, &e),
    }
}

fn data_ora(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// 4005: `verificaStato` (one request, with its file once done, or the outcome
/// document of a refused or failed one) or `elaborazione` (the municipality's
/// requests, ids and states).
pub(super) async fn verifica(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    let r = &b.corpo;
    let rid = id_risposta(registry);
    match servizi::converti_4005(r) {
        Err(a) => rifiuto(state, servizio, op, t, &a),
        Ok(Richiesta4005::Stato(id)) => {
            let s = match registry.stato_richiesta(ctx, &id).await {
                Ok(s) => s,
                Err(e) => return errore_servizio(servizio, op, t, &e),
            };
            let contenuto = if s.file.is_some() {
                match registry.scarica_file(ctx, &s.id_operazione_anpr).await {
                    Ok(f) => Some((f.contenuto, f.formato)),
                    Err(e) => return errore_servizio(servizio, op, t, &e),
                }
            } else {
                s.esito
                    .as_ref()
                    .filter(|_| matches!(s.stato_richiesta.as_str(), "3" | "99"))
                    .map(|e| (e.to_string().into_bytes(), "json".to_owned()))
            };
            let disponibile = data_ora(s.data_ora_conclusione.unwrap_or(s.data_ora_richiesta));
            let voce = VoceRichiesta {
                id_operazione_anpr: s.id_operazione_anpr.clone(),
                stato: s.stato_richiesta.clone(),
                servizio: s.servizio.clone(),
                contenuto,
            };
            xml(
                StatusCode::OK,
                servizi::risposta_4005(
                    servizio,
                    op,
                    t,
                    r,
                    (&s.stato_richiesta, &s.id_operazione_anpr, &disponibile),
                    &[voce],
                    &rid,
                ),
            )
        }
        Ok(Richiesta4005::Elenco(filtro)) => {
            let f = match serde_json::from_value::<FiltroRichieste>(filtro) {
                Ok(f) => f,
                Err(e) => {
                    let a = servizi::rifiuto_corpo(r, "elaborazione", &e.to_string());
                    return rifiuto(state, servizio, op, t, &[a]);
                }
            };
            let elenco = match registry.elenco_richieste(ctx, &f).await {
                Ok(v) => v,
                Err(e) => return errore_servizio(servizio, op, t, &e),
            };
            let voci: Vec<VoceRichiesta> = elenco
                .into_iter()
                .map(|s| VoceRichiesta {
                    id_operazione_anpr: s.id_operazione_anpr,
                    stato: s.stato_richiesta,
                    servizio: s.servizio,
                    contenuto: None,
                })
                .collect();
            let adesso = data_ora(registry.clock().now());
            xml(
                StatusCode::OK,
                servizi::risposta_4005(servizio, op, t, r, ("2", &rid, &adesso), &voci, &rid),
            )
        }
    }
}

/// 7002 `download_file`: the file of a concluded request (EN108 queued, EN109
/// running, EV303 no file).
pub(super) async fn scarica(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    let r = &b.corpo;
    let id = r.testo_a("datiRichiesta/idOperazioneANPR").unwrap_or("");
    match registry.scarica_file(ctx, id).await {
        Ok(f) => {
            let rid = id_risposta(registry);
            xml(
                StatusCode::OK,
                servizi::risposta_7002(servizio, op, t, r, &f.contenuto, &f.formato, &rid),
            )
        }
        Err(e) => errore_servizio(servizio, op, t, &e),
    }
}

/// 3004: the municipality's administrative proceedings matching one criterion (none:
/// EV404, the XSD's list needs at least one).
pub(super) async fn procedimenti(
    state: &AppState,
    servizio: &Servizio,
    op: &Operazione,
    t: &Testata,
    ctx: &CallerContext,
    b: &Busta,
) -> Response {
    let registry = &state.registry;
    let r = &b.corpo;
    let corpo = match servizi::converti_3004(r) {
        Ok(v) => v,
        Err(a) => return rifiuto(state, servizio, op, t, &a),
    };
    let req = match serde_json::from_value::<RicercaProcedimenti>(corpo) {
        Ok(x) => x,
        Err(e) => {
            let a = servizi::rifiuto_corpo(r, "parametriRicerca3004", &e.to_string());
            return rifiuto(state, servizio, op, t, &[a]);
        }
    };
    let esito = match registry.ricerca_procedimenti(ctx, &req).await {
        Ok(e) => e,
        Err(e) => return errore_servizio(servizio, op, t, &e),
    };
    if esito.procedimenti.is_empty() {
        let a = Anomalia::errore(
            anpr_service::error::CODICE_NON_TROVATO,
            "Nessun procedimento amministrativo corrisponde ai parametri di ricerca",
        )
        .campo("Richiesta3004/parametriRicerca3004");
        return rifiuto(state, servizio, op, t, &[a]);
    }
    let v = serde_json::to_value(&esito).unwrap_or_default();
    let rid = id_risposta(registry);
    xml(
        StatusCode::OK,
        servizi::risposta_3004(servizio, op, t, r, &v, &rid),
    )
}
