//! The simulator's behaviour, each scenario run twice: in process and through the HTTP
//! client against the router over real HTTP (so every case is also a protocol round trip).

mod common;

use anpr_ae::{GestioneCf, PosizioneSeme, StatoSeme};
use anpr_domain::codice_fiscale::{calcola, omocodice, omocodici, DatiCalcolo};
use anpr_domain::scheda::StatoCodiceFiscale;
use common::*;

const ROSSI: &str = "RSSMRA80A01H501U";

/// The code the agency's algorithm gives `d`, checked against the domain's computation.
fn codice_di(d: &anpr_ae::DatiAnagraficiAe) -> String {
    calcola(&DatiCalcolo {
        cognome: &d.cognome,
        nome: &d.nome,
        sesso: d.sesso,
        data_nascita: d.data_nascita,
        luogo_nascita: &d.luogo_nascita,
    })
    .unwrap()
    .to_string()
}

#[tokio::test]
async fn first_attribution_computes_the_code_and_registers_it_marked() {
    assert_eq!(codice_di(&dati("Rossi", "Mario")), ROSSI);
    for b in banchi(|_| {}).await {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::PrimaAttribuzione,
                None,
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.codice_fiscale.as_deref(), Some(ROSSI), "{}", b.nome);
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        assert!(esito.anomalie.is_empty() && esito.codici_collegati.is_empty());
        assert_eq!(esito.dati_ae, Some(dati("Rossi", "Mario")));
        let posizione = b.ae.consulta(ROSSI).await.unwrap().expect("registered");
        assert!(posizione.marcato, "{}", b.nome);
        assert_eq!(
            posizione.comune_residenza.map(|c| c.to_string()).as_deref(),
            Some(ROMA)
        );
        // Consultation is by code: lower case reads the same position.
        assert!(b
            .ae
            .consulta(&ROSSI.to_lowercase())
            .await
            .unwrap()
            .is_some());
        assert_eq!(b.sim.len(), 1);
    }
}

#[tokio::test]
async fn omocodes_are_issued_in_the_agency_order() {
    // Russo, Rossa and Rossi share the surname letters RSS: different people, same code.
    let varianti: Vec<String> = omocodici(&ROSSI.parse().unwrap())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(varianti[0], "RSSMRA80A01H50MM");
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Russo", "Mario")))
            .unwrap()
    })
    .await
    {
        for (rango, cognome) in ["Rossi", "Rossa", "Rossu"].into_iter().enumerate() {
            let esito =
                b.ae.valida(&richiesta(
                    GestioneCf::PrimaAttribuzione,
                    None,
                    dati(cognome, "Mario"),
                ))
                .await
                .unwrap();
            assert_eq!(
                esito.codice_fiscale.as_deref(),
                Some(varianti[rango].as_str()),
                "{}: {cognome}",
                b.nome
            );
            assert_eq!(esito.stato, StatoCodiceFiscale::Omocodice, "{}", b.nome);
            assert!(esito.anomalie.is_empty());
        }
    }
}

#[tokio::test]
async fn when_every_variant_is_taken_the_refusal_is_coded() {
    let base = ROSSI.parse().unwrap();
    for b in banchi(|s| {
        for livello in 0..=7u8 {
            let c = omocodice(&base, livello).unwrap().to_string();
            s.inserisci(posizione(&c, dati(&format!("Russo{livello}"), "Mario")))
                .unwrap();
        }
    })
    .await
    {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::PrimaAttribuzione,
                None,
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![e("EV065")], "{}", b.nome);
        assert_eq!(esito.codice_fiscale, None);
        assert_eq!(esito.stato, StatoCodiceFiscale::NonValidato);
    }
}

#[tokio::test]
async fn first_attribution_of_a_known_person_returns_their_code() {
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("ROSSI", "MARIO")))
            .unwrap()
    })
    .await
    {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::PrimaAttribuzione,
                None,
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.codice_fiscale.as_deref(), Some(ROSSI), "{}", b.nome);
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato);
        assert_eq!(codici(&esito), vec![w("EA002")]);
        assert!(b.ae.consulta(ROSSI).await.unwrap().unwrap().marcato);
        assert_eq!(b.sim.len(), 1, "no new position");
    }
}

#[tokio::test]
async fn first_attribution_refuses_a_code_and_uncodable_names() {
    for b in banchi(|_| {}).await {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::PrimaAttribuzione,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![e("EV064")], "{}", b.nome);
        assert_eq!(esito.anomalie[0].campo.as_deref(), Some("codiceFiscale"));

        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::RichiestaOmocodice,
                None,
                dati("Rossi", "Иван"),
            ))
            .await
            .unwrap();
        assert_eq!(
            codici(&esito),
            vec![e("CF-NON-TRASLITTERABILE")],
            "{}",
            b.nome
        );
        assert_eq!(esito.anomalie[0].campo.as_deref(), Some("dati.nome"));
        assert!(b.sim.is_empty());
    }
}

#[tokio::test]
async fn omocode_request_issues_the_next_variant_never_the_base() {
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Rossi", "Mario")))
            .unwrap()
    })
    .await
    {
        // A second Mario Rossi born the same day in Rome: a different person.
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::RichiestaOmocodice,
                None,
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(
            esito.codice_fiscale.as_deref(),
            Some("RSSMRA80A01H50MM"),
            "{}",
            b.nome
        );
        assert_eq!(esito.stato, StatoCodiceFiscale::Omocodice);
        // Both people verify cleanly: variants of one base are different people, not twins.
        for c in [ROSSI, "RSSMRA80A01H50MM"] {
            let esito =
                b.ae.valida(&richiesta(
                    GestioneCf::Verifica,
                    Some(c),
                    dati("Rossi", "Mario"),
                ))
                .await
                .unwrap();
            assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}: {c}", b.nome);
        }
    }
    // With the base free, an omocode request still answers an omocode.
    for b in banchi(|_| {}).await {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::RichiestaOmocodice,
                None,
                dati("Bianchi", "Luca"),
            ))
            .await
            .unwrap();
        let base = codice_di(&dati("Bianchi", "Luca"));
        let primo = omocodice(&base.parse().unwrap(), 1).unwrap().to_string();
        assert_eq!(esito.codice_fiscale, Some(primo), "{}", b.nome);
        assert_eq!(esito.stato, StatoCodiceFiscale::Omocodice);
    }
}

#[tokio::test]
async fn verification_same_data_validates_and_marks() {
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("ROSSI", "MARIO")))
            .unwrap()
    })
    .await
    {
        assert!(!b.ae.consulta(ROSSI).await.unwrap().unwrap().marcato);
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(" rssmra80a01h501u "),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        assert_eq!(esito.codice_fiscale.as_deref(), Some(ROSSI));
        assert!(esito.anomalie.is_empty());
        assert!(b.ae.consulta(ROSSI).await.unwrap().unwrap().marcato);
    }
}

#[tokio::test]
async fn verification_different_data_is_eav31_with_the_fields() {
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Rossi", "Maria")))
            .unwrap()
    })
    .await
    {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::DatiDifformi, "{}", b.nome);
        assert_eq!(codici(&esito), vec![w("EAV31")]);
        let a = &esito.anomalie[0];
        assert_eq!(a.campo.as_deref(), Some("dati.nome"));
        assert_eq!(a.valore.as_deref(), Some("nome=Maria"));
        assert!(a
            .atteso
            .as_deref()
            .is_some_and(|r| r.contains("Conferma AE") && r.contains("Conferma ANPR")));
        assert_eq!(esito.dati_ae, Some(dati("Rossi", "Maria")));
        assert!(!b.ae.consulta(ROSSI).await.unwrap().unwrap().marcato);
    }
}

#[tokio::test]
async fn verification_of_an_unknown_code_is_eav91() {
    for b in banchi(|_| {}).await {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::AssenteInAe, "{}", b.nome);
        assert_eq!(codici(&esito), vec![w("EAV91")]);
        assert!(esito.anomalie[0]
            .atteso
            .as_deref()
            .is_some_and(|r| r.contains("richiedere l'attribuzione")));
        assert!(!esito.bloccante());
    }
}

#[tokio::test]
async fn verification_refuses_missing_and_malformed_codes() {
    for b in banchi(|_| {}).await {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                None,
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![e("EV002")], "{}", b.nome);
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some("RSSMRA80A01H501X"),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![e("EA048")], "{}", b.nome);
        assert!(esito.anomalie[0].testo.contains("carattere di controllo"));
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some("RSSMRA"),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![e("EA001")], "{}", b.nome);
        assert_eq!(esito.stato, StatoCodiceFiscale::NonValidato);
    }
}

#[tokio::test]
async fn verification_of_a_linked_code_gives_the_current_one() {
    let nuovo = "BNCMRA80A01H501A";
    assert_eq!(codice_di(&dati("Bianchi", "Mario")), nuovo);
    for b in banchi(|s| {
        s.inserisci(posizione(nuovo, dati("Bianchi", "Mario")))
            .unwrap();
        s.inserisci(posizione_con(
            ROSSI,
            dati("Rossi", "Mario"),
            StatoSeme::NonMarcato,
            Some(nuovo),
            false,
        ))
        .unwrap();
    })
    .await
    {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Collegato, "{}", b.nome);
        assert_eq!(esito.codice_fiscale.as_deref(), Some(nuovo));
        assert_eq!(esito.codici_collegati, vec![ROSSI.to_owned()]);
        assert_eq!(codici(&esito), vec![w("EAA40")]);
        let vecchia = b.ae.consulta(ROSSI).await.unwrap().unwrap();
        assert_eq!(vecchia.codice_attuale.as_deref(), Some(nuovo));
        assert_eq!(vecchia.codici_collegati, vec![nuovo.to_owned()]);
    }
}

#[tokio::test]
async fn no_call_leaves_the_code_not_validated() {
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Rossi", "Mario")))
            .unwrap()
    })
    .await
    {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::NessunaChiamata,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::NonValidato, "{}", b.nome);
        assert_eq!(esito.codice_fiscale.as_deref(), Some(ROSSI));
        assert!(esito.anomalie.is_empty());
        assert!(!b.ae.consulta(ROSSI).await.unwrap().unwrap().marcato);
    }
}

#[tokio::test]
async fn a_position_in_processing_is_eam15_until_it_ends() {
    for b in banchi(|s| {
        s.inserisci(posizione_con(
            ROSSI,
            dati("Rossi", "Mario"),
            StatoSeme::NonMarcato,
            None,
            true,
        ))
        .unwrap()
    })
    .await
    {
        let verifica = richiesta(GestioneCf::Verifica, Some(ROSSI), dati("Rossi", "Mario"));
        let esito = b.ae.valida(&verifica).await.unwrap();
        assert_eq!(codici(&esito), vec![e("EAM15")], "{}", b.nome);
        assert_eq!(
            esito.anomalie[0].atteso.as_deref(),
            Some("Ripetere l'operazione il giorno seguente")
        );
        let attribuzione = richiesta(GestioneCf::PrimaAttribuzione, None, dati("Rossi", "Mario"));
        assert_eq!(
            codici(&b.ae.valida(&attribuzione).await.unwrap()),
            vec![e("EAM15")]
        );
        let conferma =
            b.ae.conferma_dati_ae(&allineamento(ROSSI, dati("Rossi", "Mario")))
                .await
                .unwrap();
        assert_eq!(codici(&conferma), vec![e("EAM15")]);
        // Consultation still works.
        assert!(b.ae.consulta(ROSSI).await.unwrap().unwrap().in_trattamento);
        // "The next day": processing over, the same call succeeds.
        assert!(b.sim.imposta_in_trattamento(ROSSI, false));
        let esito = b.ae.valida(&verifica).await.unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
    }
}

#[tokio::test]
async fn two_positions_of_one_person_are_eam9c_until_linked() {
    for b in banchi(|s| {
        s.inserisci(posizione_con(
            NUMERICO,
            dati("Rossi", "Mario"),
            StatoSeme::Marcato,
            None,
            false,
        ))
        .unwrap();
        s.inserisci(posizione(ROSSI, dati("Rossi", "Mario")))
            .unwrap();
    })
    .await
    {
        let verifica = richiesta(GestioneCf::Verifica, Some(ROSSI), dati("Rossi", "Mario"));
        let esito = b.ae.valida(&verifica).await.unwrap();
        assert_eq!(codici(&esito), vec![e("EAM9C")], "{}", b.nome);
        assert_eq!(esito.anomalie[0].valore.as_deref(), Some(NUMERICO));
        assert!(esito.anomalie[0]
            .atteso
            .as_deref()
            .is_some_and(|r| r.contains("Risoluzione Disallineamenti")));
        let attribuzione = richiesta(GestioneCf::PrimaAttribuzione, None, dati("Rossi", "Mario"));
        assert_eq!(
            codici(&b.ae.valida(&attribuzione).await.unwrap()),
            vec![e("EAM9C")]
        );

        // The remedy: link the numeric code to the alphanumeric one.
        let esito =
            b.ae.collega(&collegamento(NUMERICO, ROSSI, ROMA))
                .await
                .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        assert_eq!(esito.codice_fiscale.as_deref(), Some(ROSSI));
        assert_eq!(esito.codici_collegati, vec![NUMERICO.to_owned()]);
        assert!(esito.anomalie.is_empty());

        let esito = b.ae.valida(&verifica).await.unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        assert_eq!(esito.codici_collegati, vec![NUMERICO.to_owned()]);
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(NUMERICO),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Collegato, "{}", b.nome);
        assert_eq!(esito.codice_fiscale.as_deref(), Some(ROSSI));
        let alfa = b.ae.consulta(ROSSI).await.unwrap().unwrap();
        assert!(alfa.marcato);
        let numerico = b.ae.consulta(NUMERICO).await.unwrap().unwrap();
        assert!(!numerico.marcato);
        assert_eq!(numerico.codice_attuale.as_deref(), Some(ROSSI));
    }
}

#[tokio::test]
async fn a_seeded_non_unifiable_position_is_eam9c() {
    for b in banchi(|s| {
        s.inserisci(posizione_con(
            ROSSI,
            dati("Rossi", "Mario"),
            StatoSeme::NonUnificabile,
            None,
            false,
        ))
        .unwrap()
    })
    .await
    {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![e("EAM9C")], "{}", b.nome);
    }
}

#[tokio::test]
async fn conferma_ae_marks_and_returns_the_agency_data() {
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Rossi", "Maria")))
            .unwrap()
    })
    .await
    {
        let esito =
            b.ae.conferma_dati_ae(&allineamento(ROSSI, dati("Rossi", "Mario")))
                .await
                .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        assert_eq!(esito.dati_ae, Some(dati("Rossi", "Maria")));
        let p = b.ae.consulta(ROSSI).await.unwrap().unwrap();
        assert!(p.marcato);
        assert_eq!(p.dati, dati("Rossi", "Maria"), "the agency keeps its data");
        // Unknown code: nothing to confirm.
        let esito =
            b.ae.conferma_dati_ae(&allineamento("BNCMRA80A01H501A", dati("Bianchi", "Mario")))
                .await
                .unwrap();
        assert_eq!(codici(&esito), vec![e("EAV91")], "{}", b.nome);
    }
}

#[tokio::test]
async fn conferma_anpr_rectifies_the_agency_data() {
    // "Rossis" and "Rossi" give the same code: the agency's data change, the code stays.
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Rossis", "Mario")))
            .unwrap()
    })
    .await
    {
        let esito =
            b.ae.conferma_dati_anpr(&allineamento(ROSSI, dati("Rossi", "Mario")))
                .await
                .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        assert_eq!(esito.codice_fiscale.as_deref(), Some(ROSSI));
        let p = b.ae.consulta(ROSSI).await.unwrap().unwrap();
        assert_eq!(p.dati, dati("Rossi", "Mario"));
        assert!(p.marcato);
        // The identical-data index follows the change: a first attribution finds him.
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::PrimaAttribuzione,
                None,
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![w("EA002")], "{}", b.nome);
    }
}

#[tokio::test]
async fn conferma_anpr_with_a_new_code_issues_and_links_it() {
    // A change of surname (5008): the agency issues the new code and links the old one.
    let nuovo = "BNCMRA80A01H501A";
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Rossi", "Mario")))
            .unwrap()
    })
    .await
    {
        let esito =
            b.ae.conferma_dati_anpr(&allineamento(ROSSI, dati("Bianchi", "Mario")))
                .await
                .unwrap();
        assert_eq!(esito.codice_fiscale.as_deref(), Some(nuovo), "{}", b.nome);
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato);
        assert_eq!(esito.codici_collegati, vec![ROSSI.to_owned()]);
        let vecchia = b.ae.consulta(ROSSI).await.unwrap().unwrap();
        assert_eq!(vecchia.codice_attuale.as_deref(), Some(nuovo));
        assert!(!vecchia.marcato);
        assert!(b.ae.consulta(nuovo).await.unwrap().unwrap().marcato);
    }
}

#[tokio::test]
async fn variations_beyond_three_data_or_blocked_are_eam93() {
    let mut altro = dati("Bianchi", "Luca");
    altro.sesso = anpr_domain::ids::Sesso::Femmina;
    altro.data_nascita = data("1981-02-03");
    for b in banchi(|s| {
        s.inserisci(posizione(ROSSI, dati("Rossi", "Mario")))
            .unwrap();
        s.inserisci(posizione_con(
            "BNCMRA80A01H501A",
            dati("Bianchi", "Mario"),
            StatoSeme::VariazioneBloccata,
            None,
            false,
        ))
        .unwrap();
    })
    .await
    {
        let esito =
            b.ae.conferma_dati_anpr(&allineamento(ROSSI, altro.clone()))
                .await
                .unwrap();
        assert_eq!(codici(&esito), vec![e("EAM93")], "{}", b.nome);
        assert_eq!(
            esito.anomalie[0].campo.as_deref(),
            Some("dati.cognome,dati.nome,dati.sesso,dati.dataNascita")
        );
        assert!(esito.anomalie[0]
            .atteso
            .as_deref()
            .is_some_and(|r| r.contains("DCE")));
        // Nothing changed at the agency.
        assert_eq!(
            b.ae.consulta(ROSSI).await.unwrap().unwrap().dati,
            dati("Rossi", "Mario")
        );
        // A seeded block refuses even a one-datum variation.
        let esito =
            b.ae.conferma_dati_anpr(&allineamento("BNCMRA80A01H501A", dati("Bianchis", "Mario")))
                .await
                .unwrap();
        assert_eq!(codici(&esito), vec![e("EAM93")], "{}", b.nome);
    }
}

#[tokio::test]
async fn link_rules_at_the_agency() {
    let mut lontano = dati("Bianchi", "Luca");
    lontano.sesso = anpr_domain::ids::Sesso::Femmina;
    lontano.data_nascita = data("1981-02-03");
    let numerico_2 = "00000000018";
    let numerico_3 = "00000000026";
    let numerico_4 = "00000000034";
    assert_eq!(codice_di(&dati("Verdi", "Mario")), "VRDMRA80A01H501Q");
    for b in banchi(|s| {
        s.inserisci(posizione_con(
            NUMERICO,
            dati("Rossi", "Mario"),
            StatoSeme::Marcato,
            None,
            false,
        ))
        .unwrap();
        s.inserisci(posizione(numerico_2, lontano.clone())).unwrap();
        s.inserisci(posizione_con(
            numerico_3,
            dati("Verdi", "Mario"),
            StatoSeme::Marcato,
            None,
            false,
        ))
        .unwrap();
        s.inserisci(posizione_con(
            numerico_4,
            dati("Neri", "Mario"),
            StatoSeme::NonMarcato,
            None,
            true,
        ))
        .unwrap();
        s.inserisci(PosizioneSeme {
            comune_residenza: Some(MILANO.parse().unwrap()),
            ..posizione(ROSSI, dati("Rossi", "Mario"))
        })
        .unwrap();
        s.inserisci(posizione_con(
            "VRDMRA80A01H501Q",
            dati("Verdi", "Mario"),
            StatoSeme::Marcato,
            None,
            false,
        ))
        .unwrap();
    })
    .await
    {
        let check = |esito: anpr_ae::EsitoAe, atteso: &str, campo: &str| {
            assert_eq!(codici(&esito), vec![e(atteso)], "{}: {atteso}", b.nome);
            assert_eq!(esito.anomalie[0].campo.as_deref(), Some(campo), "{atteso}");
        };
        let ae = &b.ae;
        check(
            ae.collega(&collegamento(ROSSI, ROSSI, MILANO))
                .await
                .unwrap(),
            "EV066",
            "codiceAnpr",
        );
        check(
            ae.collega(&collegamento(NUMERICO, "00000000042", MILANO))
                .await
                .unwrap(),
            "EV066",
            "codiceAe",
        );
        check(
            ae.collega(&collegamento("00000000059", ROSSI, MILANO))
                .await
                .unwrap(),
            "EAV91",
            "codiceAnpr",
        );
        check(
            ae.collega(&collegamento(NUMERICO, "BNCMRA80A01H501A", MILANO))
                .await
                .unwrap(),
            "EAV91",
            "codiceAe",
        );
        check(
            ae.collega(&collegamento(numerico_4, ROSSI, MILANO))
                .await
                .unwrap(),
            "EAM15",
            "codiceFiscale",
        );
        check(
            ae.collega(&collegamento(numerico_3, "VRDMRA80A01H501Q", ROMA))
                .await
                .unwrap(),
            "EV067",
            "codiceAe",
        );
        // Four data differ between the two positions.
        check(
            ae.collega(&collegamento(numerico_2, ROSSI, MILANO))
                .await
                .unwrap(),
            "EAM93",
            "dati.cognome,dati.nome,dati.sesso,dati.dataNascita",
        );
        // The agency has the person resident in Milan, the registry in Rome.
        check(
            ae.collega(&collegamento(NUMERICO, ROSSI, ROMA))
                .await
                .unwrap(),
            "EAM93",
            "comune",
        );
        // Same municipality: linked. A second link of the same code is refused.
        let esito = ae
            .collega(&collegamento(NUMERICO, ROSSI, MILANO))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        check(
            ae.collega(&collegamento(NUMERICO, ROSSI, MILANO))
                .await
                .unwrap(),
            "EV066",
            "codiceAnpr",
        );
    }
}

#[tokio::test]
async fn read_only_mode_refuses_writes_and_verifies_without_marking() {
    for b in banchi(|s| {
        s.imposta_sola_lettura(true);
        s.inserisci(posizione(ROSSI, dati("Rossi", "Mario")))
            .unwrap();
        s.inserisci(posizione(NUMERICO, dati("Rossi", "Mario")))
            .unwrap();
    })
    .await
    {
        assert!(b.ae.sola_lettura(), "{}", b.nome);
        for gestione in [
            GestioneCf::PrimaAttribuzione,
            GestioneCf::RichiestaOmocodice,
        ] {
            let esito =
                b.ae.valida(&richiesta(gestione, None, dati("Bianchi", "Luca")))
                    .await
                    .unwrap();
            assert_eq!(codici(&esito), vec![e("EV063")], "{}: {gestione}", b.nome);
            assert_eq!(esito.stato, StatoCodiceFiscale::NonValidato);
        }
        let riallinea = allineamento(ROSSI, dati("Rossi", "Mario"));
        assert_eq!(
            codici(&b.ae.conferma_dati_ae(&riallinea).await.unwrap()),
            vec![e("EV063")]
        );
        assert_eq!(
            codici(&b.ae.conferma_dati_anpr(&riallinea).await.unwrap()),
            vec![e("EV063")]
        );
        assert_eq!(
            codici(
                &b.ae
                    .collega(&collegamento(NUMERICO, ROSSI, ROMA))
                    .await
                    .unwrap()
            ),
            vec![e("EV063")]
        );
        assert_eq!(b.sim.len(), 2, "nothing issued");

        // Verification still answers (EAM9C here: the two positions are one person).
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(codici(&esito), vec![e("EAM9C")], "{}", b.nome);
    }
    for b in banchi(|s| {
        s.imposta_sola_lettura(true);
        s.inserisci(posizione(ROSSI, dati("Rossi", "Mario")))
            .unwrap();
    })
    .await
    {
        let esito =
            b.ae.valida(&richiesta(
                GestioneCf::Verifica,
                Some(ROSSI),
                dati("Rossi", "Mario"),
            ))
            .await
            .unwrap();
        assert_eq!(esito.stato, StatoCodiceFiscale::Validato, "{}", b.nome);
        let p = b.ae.consulta(ROSSI).await.unwrap().unwrap();
        assert!(!p.marcato, "{}: read-only marks nothing", b.nome);
        assert_eq!(p.comune_residenza, None);
    }
}
