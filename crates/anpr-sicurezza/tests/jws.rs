//! Signed REST requests (`Agid-JWT-Signature`): a request signed with the municipality's
//! server key verifies; a changed body, a wrong Digest header, an expired token, another
//! CA, a revoked certificate and a user without the profile are refused with their codes.

mod support;

use anpr_domain::caller::Profilo;
use anpr_sicurezza::catena::Fiducia;
use anpr_sicurezza::jws::{digest_corpo, verifica_richiesta};
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
