//! Signed REST requests (`Agid-JWT-Signature`): a request signed with the municipality's
//! server key verifies; a changed body, a wrong Digest header, an expired token, another
//! CA, a revoked certificate and a user without the profile are refused with their codes;
//! the workstation's own JWS (`Anpr-Postazione-Signature`) proves its workstation for that
//! request only.

mod support;

use anpr_domain::caller::Profilo;
use anpr_sicurezza::catena::Fiducia;
use anpr_sicurezza::jws::{
    digest_corpo, impronta_richiesta, verifica_postazione, verifica_richiesta,
};
use anpr_sicurezza::testing::firma_jws_postazione;
use anpr_sicurezza::wssec::Politica;
use base64::Engine;
use chrono::Duration;
use serde_json::json;
use support::*;

const CORPO: &[u8] = br#"{"idOperazioneComune":"7","generalita":{"cognome":"Rossi"}}"#;

fn b64u(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A JWS by `cn`'s key for user `sub`, valid from `iat` for `durata` seconds.
fn firma(m: &Mondo, cn: &str, sub: &str, iat: i64, durata: i64, corpo: &[u8]) -> String {
    let cert = &m.direttorio.certificato_attuale(cn).unwrap().emesso;
    anpr_sicurezza::testing::firma_jws(cert, sub, iat, durata, corpo)
}

fn verifica(m: &Mondo, jws: &str, digest: Option<&str>, corpo: &[u8]) -> Result<(), String> {
    let fiducia = Fiducia::nuova(m.ca.certificato_der().to_vec(), m.crl());
    let adesso = ora_messaggio() + Duration::seconds(10);
    verifica_richiesta(
        jws,
        digest,
        corpo,
        &Politica::standard(&fiducia, adesso),
        &m.direttorio,
        &[Profilo::OperatoreAnagrafe],
        None,
    )
    .map(|v| {
        assert_eq!(
            (v.firma.comune.as_str(), v.firma.utente.as_str()),
            (ROMA, OPERATORE_ROMA)
        );
    })
    .map_err(|e| e.codice().to_owned())
}

#[test]
fn signed_rest_requests_verify_and_forgeries_are_refused() {
    let mut m = Mondo::nuovo();
    let server = format!("{ROMA}-SERVER");
    let t = ora_messaggio().timestamp();
    let jws = firma(&m, &server, OPERATORE_ROMA, t, 300, CORPO);
    let digest = digest_corpo(CORPO);
    verifica(&m, &jws, Some(&digest), CORPO).unwrap();
    verifica(&m, &jws, None, CORPO).unwrap();

    let altro = br#"{"idOperazioneComune":"7","generalita":{"cognome":"Verdi"}}"#;
    assert_eq!(verifica(&m, &jws, None, altro), Err("EV223".into()));
    assert_eq!(
        verifica(&m, &jws, Some(&digest_corpo(altro)), CORPO),
        Err("EV223".into())
    );
    // A changed claim breaks the signature.
    let parti: Vec<&str> = jws.split('.').collect();
    let claims = json!({"iat": t, "exp": t + 300, "sub": CONSULTATORE_ROMA, "signed_headers": [{"digest": digest}]});
    let falso = format!(
        "{}.{}.{}",
        parti[0],
        b64u(claims.to_string().as_bytes()),
        parti[2]
    );
    assert_eq!(verifica(&m, &falso, None, CORPO), Err("EV224".into()));
    // Expired, too long-lived, malformed, unsupported algorithm.
    assert_eq!(
        verifica(
            &m,
            &firma(&m, &server, OPERATORE_ROMA, t - 600, 300, CORPO),
            None,
            CORPO
        ),
        Err("EV227".into())
    );
    assert_eq!(
        verifica(
            &m,
            &firma(&m, &server, OPERATORE_ROMA, t, 3600, CORPO),
            None,
            CORPO
        ),
        Err("EV227".into())
    );
    assert_eq!(verifica(&m, "abc", None, CORPO), Err("EV221".into()));
    let none = format!("{}.{}.", b64u(br#"{"alg":"none"}"#), parti[1]);
    assert_eq!(verifica(&m, &none, None, CORPO), Err("EV231".into()));
    // Users: without the profile, unknown.
    assert_eq!(
        verifica(
            &m,
            &firma(&m, &server, CONSULTATORE_ROMA, t, 300, CORPO),
            None,
            CORPO
        ),
        Err("EV230".into())
    );
    assert_eq!(
        verifica(
            &m,
            &firma(&m, &server, "ZZZZZZ80A01H501Z", t, 300, CORPO),
            None,
            CORPO
        ),
        Err("EV228".into())
    );
    // Another CA, then our certificate revoked.
    let estraneo = Mondo::nuovo();
    assert_eq!(
        verifica(
            &m,
            &firma(&estraneo, &server, OPERATORE_ROMA, t, 300, CORPO),
            None,
            CORPO
        ),
        Err("EV225".into())
    );
    let s = m
        .direttorio
        .certificato_attuale(&server)
        .unwrap()
        .emesso
        .seriale;
    m.direttorio
        .revoca_certificato(s, false, "ALP", ora_messaggio())
        .unwrap();
    assert_eq!(verifica(&m, &jws, None, CORPO), Err("EV226".into()));
}

/// The request `jws` of the server, endorsed by `postazione` (JWS of `pc`'s
/// certificate): the proved workstation, or the refusal's code.
fn verifica_con_postazione(m: &Mondo, jws: &str, postazione: &str) -> Result<String, String> {
    let fiducia = Fiducia::nuova(m.ca.certificato_der().to_vec(), m.crl());
    let politica = Politica::standard(&fiducia, ora_messaggio() + Duration::seconds(10));
    let mut mittente = verifica_richiesta(
        jws,
        None,
        CORPO,
        &politica,
        &m.direttorio,
        &[Profilo::OperatoreAnagrafe],
        None,
    )
    .map_err(|e| e.codice().to_owned())?;
    verifica_postazione(postazione, jws, &mut mittente, &politica)
        .map_err(|e| e.codice().to_owned())?;
    Ok(mittente.firma.postazione.unwrap_or_default())
}

#[test]
fn a_workstation_jws_proves_its_workstation_for_that_request_only() {
    const PC1: &str = "058091-PC-0001";
    const PC2: &str = "058091-PC-0002";
    let mut m = Mondo::nuovo();
    let server = format!("{ROMA}-SERVER");
    let t = ora_messaggio().timestamp();
    let jws = firma(&m, &server, OPERATORE_ROMA, t, 300, CORPO);
    let pc = |cn: &str, nominata: &str, richiesta: &str, iat: i64| {
        firma_jws_postazione(&m.certificato(cn), nominata, richiesta, iat, 300)
    };
    assert_eq!(
        verifica_con_postazione(&m, &jws, &pc(PC2, PC2, &jws, t)),
        Ok(PC2.to_owned())
    );
    // Bound to its request: the same workstation JWS on another request is refused.
    let altra = firma(&m, &server, OPERATORE_ROMA, t + 1, 300, CORPO);
    assert_eq!(
        verifica_con_postazione(&m, &altra, &pc(PC2, PC2, &jws, t)),
        Err("EV222".into())
    );
    // Not a workstation certificate; another workstation named; another municipality.
    assert_eq!(
        verifica_con_postazione(&m, &jws, &pc(&server, &server, &jws, t)),
        Err("EV235".into())
    );
    assert_eq!(
        verifica_con_postazione(&m, &jws, &pc(PC1, PC2, &jws, t)),
        Err("EV235".into())
    );
    assert_eq!(
        verifica_con_postazione(&m, &jws, &pc("015146-PC-0001", "015146-PC-0001", &jws, t)),
        Err("EV235".into())
    );
    // A request signed by workstation PC-0001 cannot be endorsed as PC-0002.
    let da_pc1 = firma(&m, PC1, OPERATORE_ROMA, t, 300, CORPO);
    assert_eq!(
        verifica_con_postazione(&m, &da_pc1, &pc(PC2, PC2, &da_pc1, t)),
        Err("EV235".into())
    );
    // Expired; a tampered claim; malformed.
    assert_eq!(
        verifica_con_postazione(&m, &jws, &pc(PC2, PC2, &jws, t - 600)),
        Err("EV227".into())
    );
    let buona = pc(PC2, PC2, &jws, t);
    let parti: Vec<&str> = buona.split('.').collect();
    let claims = json!({"iat": t, "exp": t + 300, "postazione": PC1, "jws_sha256": impronta_richiesta(&jws)});
    let falsa = format!(
        "{}.{}.{}",
        parti[0],
        b64u(claims.to_string().as_bytes()),
        parti[2]
    );
    assert_eq!(
        verifica_con_postazione(&m, &jws, &falsa),
        Err("EV224".into())
    );
    assert_eq!(
        verifica_con_postazione(&m, &jws, "x.y"),
        Err("EV221".into())
    );
    // A revoked workstation certificate.
    let s = m.certificato(PC2).seriale;
    m.direttorio
        .revoca_certificato(s, false, "ALP", ora_messaggio())
        .unwrap();
    assert_eq!(
        verifica_con_postazione(&m, &jws, &buona),
        Err("EV226".into())
    );
}
