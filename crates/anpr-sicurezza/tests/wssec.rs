//! WS-Security verification against an independent XML-DSig implementation: messages
//! signed by `xmlsec1` (OpenSSL) with certificates of our CA must verify with ours, and
//! every kind of forgery must be refused with its code.

mod support;

use std::collections::BTreeSet;

use anpr_domain::caller::Profilo;
use anpr_sicurezza::catena::Fiducia;
use anpr_sicurezza::wssec::{verifica_messaggio, Politica};
use chrono::{DateTime, Duration, Utc};
use support::*;

const ISCRIZIONE: &[Profilo] = &[Profilo::OperatoreAnagrafe, Profilo::SuperUtente];

fn adesso() -> DateTime<Utc> {
    ora_messaggio() + Duration::seconds(20)
}

fn verifica(m: &Mondo, xml: &[u8], quando: DateTime<Utc>) -> Result<(), String> {
    let fiducia = Fiducia::nuova(m.ca.certificato_der().to_vec(), m.crl());
    verifica_messaggio(
        xml,
        &Politica::standard(&fiducia, quando),
        &m.direttorio,
        ISCRIZIONE,
        None,
    )
    .map(|v| {
        assert_eq!(v.firma.comune, ROMA);
        assert_eq!(v.firma.firmatario, format!("{ROMA}-SERVER"));
        assert!(v.profili.contains(&Profilo::OperatoreAnagrafe));
    })
    .map_err(|e| e.codice().to_owned())
}

#[test]
fn a_message_signed_by_xmlsec1_verifies_and_forgeries_are_refused() {
    let mut m = Mondo::nuovo();
    let firmato = m.firma_xmlsec1(&busta(OPERATORE_ROMA, "<op:iscrizione xmlns:op=\"urn:anpr\"><cognome>Rossi &amp; figli</cognome><nome a=\"x\ty\">Mario</nome></op:iscrizione>"), &format!("{ROMA}-SERVER"));
    verifica(&m, &firmato, adesso()).unwrap();

    // Tampered body.
    let alterato = String::from_utf8(firmato.clone())
        .unwrap()
        .replace("Mario", "Maria");
    assert_eq!(
        verifica(&m, alterato.as_bytes(), adesso()),
        Err("EV223".into())
    );

    // Tampered signed info (digest still right, signature no longer).
    let s = String::from_utf8(firmato.clone()).unwrap();
    let firma_alterata = s.replacen(
        "<ds:Reference URI=\"#TS-1\">",
        "<ds:Reference URI=\"#TS-1\" Type=\"x\">",
        1,
    );
    assert_ne!(firma_alterata, s);
    assert_eq!(
        verifica(&m, firma_alterata.as_bytes(), adesso()),
        Err("EV224".into())
    );

    // Signature wrapping 1: the signed Body moved into a header wrapper, a forged Body
    // in its place with the same id.
    let corpo = estrai(&s, "<soap:Body", "</soap:Body>");
    let falso = corpo.replace("Mario", "Eva");
    let wrapped = s.replace(&corpo, &falso).replace(
        "<soap:Header>",
        &format!("<soap:Header><w:Wrapper xmlns:w=\"urn:w\">{corpo}</w:Wrapper>"),
    );
    assert_eq!(
        verifica(&m, wrapped.as_bytes(), adesso()),
        Err("EV222".into())
    );
    // Signature wrapping 2: the forged Body has another id; the reference now points to
    // the copy in the wrapper, which is not THE Body.
    let wrapped2 = s
        .replace(
            &corpo,
            &falso.replace("wsu:Id=\"BODY-1\"", "wsu:Id=\"BODY-2\""),
        )
        .replace(
            "<soap:Header>",
            &format!("<soap:Header><w:Wrapper xmlns:w=\"urn:w\">{corpo}</w:Wrapper>"),
        );
    assert_eq!(
        verifica(&m, wrapped2.as_bytes(), adesso()),
        Err("EV222".into())
    );

    // Expired timestamp (and one from the future).
    assert_eq!(
        verifica(&m, &firmato, ora_messaggio() + Duration::minutes(7)),
        Err("EV227".into())
    );
    assert_eq!(
        verifica(&m, &firmato, ora_messaggio() - Duration::minutes(3)),
        Err("EV227".into())
    );

    // A DTD is refused before anything else.
    let dtd = format!("<!DOCTYPE x [<!ENTITY e \"e\">]>{s}");
    assert_eq!(verifica(&m, dtd.as_bytes(), adesso()), Err("EV220".into()));

    // Unknown user, user of another municipality, user without the profile.
    let ignoto = m.firma_xmlsec1(
        &busta("ZZZZZZ80A01H501Z", "<b/>"),
        &format!("{ROMA}-SERVER"),
    );
    assert_eq!(verifica(&m, &ignoto, adesso()), Err("EV228".into()));
    let milanese = m.firma_xmlsec1(&busta(OPERATORE_MILANO, "<b/>"), &format!("{ROMA}-SERVER"));
    assert_eq!(verifica(&m, &milanese, adesso()), Err("EV229".into()));
    let consultatore =
        m.firma_xmlsec1(&busta(CONSULTATORE_ROMA, "<b/>"), &format!("{ROMA}-SERVER"));
    assert_eq!(verifica(&m, &consultatore, adesso()), Err("EV230".into()));

    // Revoked server certificate: the same good message is refused once the CRL says so.
    let seriale = m
        .direttorio
        .certificato_attuale(&format!("{ROMA}-SERVER"))
        .unwrap()
        .emesso
        .seriale;
    m.direttorio
        .revoca_certificato(seriale, false, "ALS", ora_messaggio())
        .unwrap();
    assert_eq!(verifica(&m, &firmato, adesso()), Err("EV226".into()));
}

#[test]
fn only_the_municipality_s_authorised_addresses_and_algorithms_are_accepted() {
    let mut m = Mondo::nuovo();
    let firmato = m.firma_xmlsec1(&busta(OPERATORE_ROMA, "<b/>"), &format!("{ROMA}-SERVER"));
    m.direttorio.parametri.insert(
        ROMA.into(),
        anpr_sicurezza::direttorio::ParametriComune {
            ip_autorizzati: vec!["10.0.0.7".parse().unwrap()],
            ..Default::default()
        },
    );
    let fiducia = Fiducia::nuova(m.ca.certificato_der().to_vec(), m.crl());
    let politica = Politica::standard(&fiducia, adesso());
    let da = |ip: &str| {
        verifica_messaggio(
            &firmato,
            &politica,
            &m.direttorio,
            ISCRIZIONE,
            Some(ip.parse().unwrap()),
        )
        .map(|_| ())
        .map_err(|e| e.codice())
    };
    assert_eq!(da("10.0.0.7"), Ok(()));
    assert_eq!(da("10.0.0.8"), Err("EV233"));
    // A SHA-1 digest is not accepted, whatever the rest.
    let sha1 =
        String::from_utf8(firmato.clone())
            .unwrap()
            .replacen("xmlenc#sha256", "xmldsig#sha1", 1);
    assert_eq!(verifica(&m, sha1.as_bytes(), adesso()), Err("EV231".into()));
}

#[test]
fn a_certificate_from_another_ca_is_not_trusted() {
    let m = Mondo::nuovo();
    let altro = Mondo::nuovo();
    let firmato = altro.firma_xmlsec1(&busta(OPERATORE_ROMA, "<b/>"), &format!("{ROMA}-SERVER"));
    assert_eq!(verifica(&m, &firmato, adesso()), Err("EV225".into()));
}

#[test]
fn unsigned_or_partially_signed_messages_are_refused() {
    let m = Mondo::nuovo();
    let senza = busta(OPERATORE_ROMA, "<b/>");
    // The unsigned template has empty digests: they cannot match.
    assert_eq!(
        verifica(&m, senza.as_bytes(), adesso()),
        Err("EV223".into())
    );
    let solo_body = m.firma_xmlsec1(
        &busta_con_riferimenti(OPERATORE_ROMA, "<b/>", &["BODY-1", "TS-1"]),
        &format!("{ROMA}-SERVER"),
    );
    assert_eq!(verifica(&m, &solo_body, adesso()), Err("EV222".into()));
    let _: BTreeSet<Profilo> = BTreeSet::new();
}

const PC1: &str = "058091-PC-0001";
const PC2: &str = "058091-PC-0002";

/// Verifies and returns the proved workstation, or the refusal's code and message.
fn verifica_postazione(
    m: &Mondo,
    xml: &[u8],
    quando: DateTime<Utc>,
) -> Result<Option<String>, (String, String)> {
    let fiducia = Fiducia::nuova(m.ca.certificato_der().to_vec(), m.crl());
    verifica_messaggio(
        xml,
        &Politica::standard(&fiducia, quando),
        &m.direttorio,
        ISCRIZIONE,
        None,
    )
    .map(|v| {
        assert_eq!(v.firma.comune, ROMA);
        v.firma.postazione
    })
    .map_err(|e| (e.codice().to_owned(), e.to_string()))
}

fn codice(r: Result<Option<String>, (String, String)>) -> Result<Option<String>, String> {
    r.map_err(|(c, _)| c)
}

/// The `ds:Signature` element whose `Id` is `id`, as text.
fn firma_con_id(s: &str, id: &str) -> String {
    let attributo = s.find(&format!("Id=\"{id}\"")).unwrap();
    let inizio = s[..attributo].rfind("<ds:Signature").unwrap();
    let fine = s[inizio..].find("</ds:Signature>").unwrap() + inizio + "</ds:Signature>".len();
    s[inizio..fine].to_owned()
}

#[test]
fn a_workstation_signature_names_the_workstation_and_its_forgeries_are_refused() {
    let mut m = Mondo::nuovo();
    let server = format!("{ROMA}-SERVER");
    let corpo = "<op:iscrizione xmlns:op=\"urn:anpr\"><nome>Mario</nome></op:iscrizione>";
    let firmato = m.firma_xmlsec1_postazione(
        &busta_con_postazione(OPERATORE_ROMA, corpo, PC1),
        &server,
        PC1,
    );
    // Both signatures by xmlsec1 verify with ours: the workstation is proved.
    assert_eq!(
        codice(verifica_postazione(&m, &firmato, adesso())),
        Ok(Some(PC1.to_owned()))
    );
    // A message with only the server's signature names no workstation.
    let solo_server = m.firma_xmlsec1(&busta(OPERATORE_ROMA, corpo), &server);
    assert_eq!(
        codice(verifica_postazione(&m, &solo_server, adesso())),
        Ok(None)
    );
    // A message signed by a workstation certificate alone names that workstation.
    let da_postazione = m.firma_xmlsec1(&busta(OPERATORE_ROMA, corpo), PC2);
    assert_eq!(
        codice(verifica_postazione(&m, &da_postazione, adesso())),
        Ok(Some(PC2.to_owned()))
    );
    let s = String::from_utf8(firmato.clone()).unwrap();

    // Missing: the workstation named, its signature removed.
    let senza = s.replace(&firma_con_id(&s, "SIG-PC"), "");
    assert_eq!(
        codice(verifica_postazione(&m, senza.as_bytes(), adesso())),
        Err("EV234".into())
    );
    // A second signature without the element it should sign.
    let postazione = estrai(&s, "<anpr:Postazione", "</anpr:Postazione>");
    let senza_elemento = s.replace(&postazione, "");
    assert_eq!(
        codice(verifica_postazione(&m, senza_elemento.as_bytes(), adesso())),
        Err("EV221".into())
    );

    // Tampered: another workstation named after signing.
    let altra = s.replace(&format!(">{PC1}<"), &format!(">{PC2}<"));
    let (c, testo) = verifica_postazione(&m, altra.as_bytes(), adesso()).unwrap_err();
    assert_eq!(c, "EV223");
    assert!(testo.contains("Firma della postazione"), "{testo}");

    // Wrapped: the signed Postazione moved into a header wrapper, a forged one naming
    // another workstation in its place — with another id, or with the same id.
    let falsa = postazione.replace(PC1, PC2);
    for falsa in [falsa.replace("\"PC-1\"", "\"PC-2\""), falsa.clone()] {
        let wrapped = s.replace(&postazione, &falsa).replace(
            "<soap:Header>",
            &format!("<soap:Header><w:Wrapper xmlns:w=\"urn:w\">{postazione}</w:Wrapper>"),
        );
        assert_eq!(
            codice(verifica_postazione(&m, wrapped.as_bytes(), adesso())),
            Err("EV222".into())
        );
    }
    // Both signatures claiming the Body: which is the message's is ambiguous.
    let doppia = m.firma_xmlsec1_postazione(
        &busta_con_postazione_rif(OPERATORE_ROMA, corpo, PC1, &["PC-1", "SIG-1", "BODY-1"]),
        &server,
        PC1,
    );
    assert_eq!(
        codice(verifica_postazione(&m, &doppia, adesso())),
        Err("EV222".into())
    );
    // A workstation signature that does not endorse the message signature.
    let non_avalla = m.firma_xmlsec1_postazione(
        &busta_con_postazione_rif(OPERATORE_ROMA, corpo, PC1, &["PC-1", "TS-1"]),
        &server,
        PC1,
    );
    assert_eq!(
        codice(verifica_postazione(&m, &non_avalla, adesso())),
        Err("EV222".into())
    );
    // Lifted: the workstation's signature of one message pasted into another.
    let altro = m.firma_xmlsec1_postazione(
        &busta_con_postazione(OPERATORE_ROMA, "<b>altro</b>", PC1),
        &server,
        PC1,
    );
    let altro = String::from_utf8(altro).unwrap();
    let trapiantata = altro.replace(&firma_con_id(&altro, "SIG-PC"), &firma_con_id(&s, "SIG-PC"));
    assert_ne!(trapiantata, altro);
    assert_eq!(
        codice(verifica_postazione(&m, trapiantata.as_bytes(), adesso())),
        Err("EV223".into())
    );

    // Named PC-0002, signed by PC-0001's certificate.
    let scambiata = m.firma_xmlsec1_postazione(
        &busta_con_postazione(OPERATORE_ROMA, corpo, PC2),
        &server,
        PC1,
    );
    assert_eq!(
        codice(verifica_postazione(&m, &scambiata, adesso())),
        Err("EV235".into())
    );
    // A workstation of another municipality.
    let milanese = m.firma_xmlsec1_postazione(
        &busta_con_postazione(OPERATORE_ROMA, corpo, "015146-PC-0001"),
        &server,
        "015146-PC-0001",
    );
    assert_eq!(
        codice(verifica_postazione(&m, &milanese, adesso())),
        Err("EV235".into())
    );
    // The server certificate is not a workstation.
    let server_come_postazione = m.firma_xmlsec1_postazione(
        &busta_con_postazione(OPERATORE_ROMA, corpo, &server),
        &server,
        &server,
    );
    assert_eq!(
        codice(verifica_postazione(&m, &server_come_postazione, adesso())),
        Err("EV235".into())
    );
    // A message signed by workstation PC-0002 naming PC-0001 (signed by PC-0001).
    let due_postazioni =
        m.firma_xmlsec1_postazione(&busta_con_postazione(OPERATORE_ROMA, corpo, PC1), PC2, PC1);
    assert_eq!(
        codice(verifica_postazione(&m, &due_postazioni, adesso())),
        Err("EV235".into())
    );
    // The freshness rules still apply to the whole message.
    assert_eq!(
        codice(verifica_postazione(
            &m,
            &firmato,
            ora_messaggio() + Duration::minutes(7)
        )),
        Err("EV227".into())
    );

    // Revoked workstation certificate: the same good message is refused, naming the
    // workstation's signature.
    let seriale = m.certificato(PC1).seriale;
    m.direttorio
        .revoca_certificato(seriale, false, "ALP", ora_messaggio())
        .unwrap();
    let (c, testo) = verifica_postazione(&m, &firmato, adesso()).unwrap_err();
    assert_eq!(c, "EV226");
    assert!(testo.contains("Firma della postazione"), "{testo}");
    // The server's own signature is untouched by it.
    assert_eq!(
        codice(verifica_postazione(&m, &solo_server, adesso())),
        Ok(None)
    );
}

/// The chain check remembers a certificate that passed, but only for the CRL it was
/// checked against and within the certificate's own dates; failures are never
/// remembered.
#[test]
fn a_checked_certificate_is_remembered_only_within_its_dates_and_crl() {
    let mut m = Mondo::nuovo();
    let server = m.certificato(&format!("{ROMA}-SERVER"));
    let fiducia = Fiducia::nuova(m.ca.certificato_der().to_vec(), m.crl());
    let codice = |r: Result<(), anpr_sicurezza::errore::ErroreSicurezza>| r.map_err(|e| e.codice());
    assert_eq!(codice(fiducia.verifica(&server.der, adesso())), Ok(()));
    assert_eq!(fiducia.certificati_ricordati(), 1);
    assert_eq!(codice(fiducia.verifica(&server.der, adesso())), Ok(()));
    assert_eq!(fiducia.certificati_ricordati(), 1);
    // Outside its dates the remembered certificate is refused all the same.
    let dopo = server.valido_al + Duration::seconds(1);
    assert_eq!(codice(fiducia.verifica(&server.der, dopo)), Err("EV225"));
    let prima = server.valido_dal - Duration::seconds(1);
    assert_eq!(codice(fiducia.verifica(&server.der, prima)), Err("EV225"));
    // A forged certificate (signature bytes changed) fails every time and is not kept.
    let mut falso = server.der.clone();
    let n = falso.len();
    falso[n - 3] ^= 0x55;
    for _ in 0..2 {
        assert_eq!(codice(fiducia.verifica(&falso, adesso())), Err("EV225"));
    }
    assert_eq!(fiducia.certificati_ricordati(), 1);
    // Once revoked, the trust built on the new CRL refuses it.
    m.direttorio
        .revoca_certificato(server.seriale, false, "ALS", ora_messaggio())
        .unwrap();
    let nuova = Fiducia::nuova(m.ca.certificato_der().to_vec(), m.crl());
    assert_eq!(codice(nuova.verifica(&server.der, adesso())), Err("EV226"));
    assert_eq!(nuova.certificati_ricordati(), 0);
}
