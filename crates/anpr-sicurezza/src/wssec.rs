//! WS-Security verification of SOAP requests (SPEC M-8.5), for the SOAP edge to call.
//!
//! A request is accepted only if, in this order:
//! 1. it is a well-formed SOAP envelope within the size limits, without DTD
//!    ([`crate::xml`]), with exactly one `wsse:Security` header holding exactly one
//!    `wsu:Timestamp`, one `wsse:UsernameToken` (the user's CF), the message's
//!    `ds:Signature` and, when the message names its workstation (`anpr:Postazione`),
//!    a second `ds:Signature` by that workstation's certificate;
//! 2. each signature uses exclusive c14n, SHA-256 and ECDSA-P256 or RSA with SHA-256,
//!    and its references are `#id` pointers, each resolving to exactly one element of
//!    the document that is one of the elements that signature may cover — for the
//!    message signature **the** Body of the envelope, **the** Timestamp, **the**
//!    UsernameToken (all three covered) and **the** Postazione; for the workstation's
//!    **the** Postazione and **the** message signature (both covered) and the
//!    Timestamp. An id repeated anywhere in the document, or a reference to anything
//!    else, is refused (signature wrapping);
//! 3. every digest matches (else the content was tampered with);
//! 4. each signing certificate (a `BinarySecurityToken` or `ds:X509Certificate`) chains
//!    to our CA, is valid now and not on the CRL, and the signature value verifies;
//! 5. the timestamp is fresh: created not in the future (beyond a small clock skew),
//!    not expired, and not living longer than the policy allows;
//! 6. the workstation certificate is a workstation certificate of the message
//!    signer's municipality, named as the `anpr:Postazione` says;
//! 7. the sender's IP is one the municipality authorised (when the policy knows them);
//!    the user exists, belongs to the municipality of the certificate and holds one of
//!    the profiles allowing the operation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anpr_domain::caller::Profilo;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::catena::Fiducia;
use crate::errore::*;
use crate::xml::{analizza, c14n_esclusiva, Elemento};

pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Namespace of our header elements (`anpr:Postazione` inside `wsse:Security`).
pub const NS_ANPR: &str = "urn:anpr:soap";
/// The element of the Security header naming the workstation, signed by its
/// certificate.
pub const ELEMENTO_POSTAZIONE: &str = "Postazione";
pub const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ALG_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// Most signed references accepted in one signature.
pub const MASSIMO_RIFERIMENTI: usize = 8;

/// What the verifier checks against.
#[derive(Debug, Clone)]
pub struct Politica<'a> {
    pub fiducia: &'a Fiducia,
    pub adesso: DateTime<Utc>,
    /// Longest accepted `Expires - Created`.
    pub durata_massima: Duration,
    /// Accepted clock difference with the sender.
    pub tolleranza: Duration,
}

impl<'a> Politica<'a> {
    /// Five-minute messages, one minute of clock skew.
    pub fn standard(fiducia: &'a Fiducia, adesso: DateTime<Utc>) -> Self {
        Self {
            fiducia,
            adesso,
            durata_massima: Duration::minutes(5),
            tolleranza: Duration::minutes(1),
        }
    }
}

/// The sender as proved by the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmaVerificata {
    /// The municipality (ISTAT code) of the signing certificate.
    pub comune: String,
    /// The signing certificate's CN (`ISTAT-SERVER` or a workstation id).
    pub firmatario: String,
    /// The workstation, when a workstation certificate signed.
    pub postazione: Option<String>,
    /// The user's CF from the signed `UsernameToken`.
    pub utente: String,
}

/// Who the users are: what the SOAP edge looks up in the security directory.
pub trait RubricaUtenti {
    /// The user's profiles per municipality; `None` when the user is unknown (or
    /// deleted).
    fn profili(&self, cf: &str) -> Option<BTreeMap<String, BTreeSet<Profilo>>>;
    /// The municipality's authorised IP addresses; `None` when it has not declared any
    /// (no restriction).
    fn ip_autorizzati(&self, comune: &str) -> Option<Vec<IpAddr>>;
}

/// The sender of an accepted message, ready to become the caller context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MittenteVerificato {
    pub firma: FirmaVerificata,
    pub profili: BTreeSet<Profilo>,
}

fn manca(m: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::messaggio(CODICE_SICUREZZA_MANCANTE, m)
}

fn unico<'a>(
    el: &'a Elemento,
    ns: &'a str,
    locale: &'a str,
) -> Result<&'a Elemento, ErroreSicurezza> {
    let mut it = el.figli_nominati(ns, locale);
    match (it.next(), it.next()) {
        (Some(e), None) => Ok(e),
        (None, _) => Err(manca(format!("{locale} mancante in {}", el.locale))),
        (Some(_), Some(_)) => Err(manca(format!("{locale} ripetuto in {}", el.locale))),
    }
}

fn algoritmo(el: &Elemento, atteso: &[&str]) -> Result<(), ErroreSicurezza> {
    let alg = el.attributo("", "Algorithm").unwrap_or("");
    if atteso.contains(&alg) {
        Ok(())
    } else {
        Err(ErroreSicurezza::messaggio(
            CODICE_ALGORITMO,
            format!(
                "Algoritmo {alg:?} non ammesso in {}; attesi: {}",
                el.locale,
                atteso.join(", ")
            ),
        ))
    }
}

/// The `PrefixList` of an `ec:InclusiveNamespaces` child of a c14n method or transform.
fn prefissi_inclusivi(metodo: &Elemento) -> Vec<String> {
    metodo
        .elementi()
        .find(|e| e.ns == ALG_EXC_C14N && e.locale == "InclusiveNamespaces")
        .and_then(|e| e.attributo("", "PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The value of an `Id`-like attribute (`wsu:Id`, `Id`, `ID`, `xml:id`).
fn id_di(e: &Elemento) -> Vec<&str> {
    e.attributi
        .iter()
        .filter(|a| {
            (a.ns == NS_WSU && a.locale == "Id")
                || (a.ns.is_empty() && (a.locale == "Id" || a.locale == "ID"))
                || (a.prefisso == "xml" && a.locale == "id")
        })
        .map(|a| a.valore.as_str())
        .collect()
}

pub(crate) fn b64(s: &str) -> Result<Vec<u8>, ErroreSicurezza> {
    let pulito: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(pulito)
        .map_err(|_| manca("valore base64 non valido"))
}

/// What a signature may cover: the element, its name in messages, whether it must be
/// covered.
type Bersaglio<'a> = (&'a Elemento, &'static str, bool);

/// The element `{ns}locale` of `el`, when present once; EV221 when repeated.
fn al_piu_uno<'a>(
    el: &'a Elemento,
    ns: &'a str,
    locale: &'a str,
) -> Result<Option<&'a Elemento>, ErroreSicurezza> {
    let mut it = el.figli_nominati(ns, locale);
    match (it.next(), it.next()) {
        (e, None) => Ok(e),
        (_, Some(_)) => Err(manca(format!("{locale} ripetuto in {}", el.locale))),
    }
}

/// The `#id` pointers of a signature's references.
fn riferimenti(firma: &Elemento) -> Vec<&str> {
    firma
        .figli_nominati(NS_DS, "SignedInfo")
        .flat_map(|si| si.figli_nominati(NS_DS, "Reference"))
        .filter_map(|r| r.attributo("", "URI"))
        .filter_map(|u| u.strip_prefix('#'))
        .collect()
}

/// Verifies one `ds:Signature`: algorithms, references (each an `#id` resolving to
/// exactly one element of the document, that element one of `bersagli`, every
/// mandatory target covered), digests, the certificate against our CA and CRL, and the
/// signature value. Returns the signing certificate (DER).
fn verifica_una_firma(
    security: &Elemento,
    firma: &Elemento,
    ids: &BTreeMap<&str, usize>,
    bersagli: &[Bersaglio<'_>],
    politica: &Politica<'_>,
) -> Result<Vec<u8>, ErroreSicurezza> {
    let signed_info = unico(firma, NS_DS, "SignedInfo")?;
    let c14n = unico(signed_info, NS_DS, "CanonicalizationMethod")?;
    algoritmo(c14n, &[ALG_EXC_C14N])?;
    let metodo_firma = unico(signed_info, NS_DS, "SignatureMethod")?;
    algoritmo(metodo_firma, &[ALG_ECDSA_SHA256, ALG_RSA_SHA256])?;

    let mut coperti = BTreeSet::new();
    // A handful of references is all a request needs; a long list only multiplies the
    // digest work an unauthenticated sender can make us do.
    if signed_info.figli_nominati(NS_DS, "Reference").count() > MASSIMO_RIFERIMENTI {
        return Err(ErroreSicurezza::messaggio(
            CODICE_RIFERIMENTO_NON_AMMESSO,
            format!("Più di {MASSIMO_RIFERIMENTI} riferimenti firmati"),
        ));
    }
    let nomi = || {
        bersagli
            .iter()
            .map(|(_, n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for riferimento in signed_info.figli_nominati(NS_DS, "Reference") {
        let uri = riferimento.attributo("", "URI").unwrap_or("");
        let id = uri.strip_prefix('#').ok_or_else(|| {
            ErroreSicurezza::messaggio(
                CODICE_RIFERIMENTO_NON_AMMESSO,
                format!("Riferimento {uri:?} non ammesso: atteso un puntatore #id"),
            )
        })?;
        if ids.get(id).copied() != Some(1) {
            return Err(ErroreSicurezza::messaggio(
                CODICE_RIFERIMENTO_NON_AMMESSO,
                format!("L'identificativo {id:?} non designa un solo elemento del messaggio"),
            ));
        }
        let (bersaglio, nome, _) = bersagli
            .iter()
            .find(|(e, _, _)| id_di(e).contains(&id))
            .ok_or_else(|| {
                ErroreSicurezza::messaggio(
                    CODICE_RIFERIMENTO_NON_AMMESSO,
                    format!(
                        "Il riferimento #{id} non designa uno degli elementi ammessi ({})",
                        nomi()
                    ),
                )
            })?;
        let mut inclusivi = Vec::new();
        if let Some(trasformazioni) = riferimento.figli_nominati(NS_DS, "Transforms").next() {
            for t in trasformazioni.figli_nominati(NS_DS, "Transform") {
                algoritmo(t, &[ALG_EXC_C14N])?;
                inclusivi = prefissi_inclusivi(t);
            }
        }
        algoritmo(unico(riferimento, NS_DS, "DigestMethod")?, &[ALG_SHA256])?;
        let atteso = b64(&unico(riferimento, NS_DS, "DigestValue")?.testo())?;
        let calcolato = Sha256::digest(c14n_esclusiva(bersaglio, &inclusivi).as_bytes());
        if calcolato.as_slice() != atteso.as_slice() {
            return Err(ErroreSicurezza::messaggio(
                CODICE_DIGEST_ERRATO,
                format!("Il contenuto firmato di {nome} è stato alterato (digest diverso)"),
            ));
        }
        coperti.insert(*nome);
    }
    for (_, nome, obbligatorio) in bersagli {
        if *obbligatorio && !coperti.contains(nome) {
            return Err(ErroreSicurezza::messaggio(
                CODICE_RIFERIMENTO_NON_AMMESSO,
                format!("{nome} non è coperto dalla firma"),
            ));
        }
    }

    let certificato = certificato_firma(security, firma)?;
    politica.fiducia.verifica(&certificato, politica.adesso)?;
    let valore = b64(&unico(firma, NS_DS, "SignatureValue")?.testo())?;
    let firmato = c14n_esclusiva(signed_info, &prefissi_inclusivi(c14n));
    verifica_valore(
        metodo_firma.attributo("", "Algorithm").unwrap_or(""),
        &certificato,
        firmato.as_bytes(),
        &valore,
    )?;
    Ok(certificato)
}

/// A failure of the workstation's signature says so (same code).
pub(crate) fn della_postazione(e: ErroreSicurezza) -> ErroreSicurezza {
    match e {
        ErroreSicurezza::Messaggio { codice, messaggio } => ErroreSicurezza::Messaggio {
            codice,
            messaggio: format!("Firma della postazione: {messaggio}"),
        },
        altro => altro,
    }
}

fn postazione_non_ammessa(m: impl std::fmt::Display) -> ErroreSicurezza {
    ErroreSicurezza::messaggio(CODICE_CERTIFICATO_POSTAZIONE, m)
}

/// Verifies envelope, signatures, certificates and timestamp; returns who signed.
///
/// The message signature (by the municipality's server certificate, or by a
/// workstation certificate) covers Body, Timestamp and UsernameToken. A message may
/// also name its workstation: an `anpr:Postazione` element (namespace [`NS_ANPR`],
/// with a `wsu:Id`) in the Security header, whose text is the workstation id, and a
/// second `ds:Signature` by that workstation's certificate covering that element and
/// the message signature (an *endorsing* signature, as WS-SecurityPolicy's endorsing
/// supporting tokens: it cannot be lifted into another message). Both signatures obey
/// the same anti-wrapping rules, chain to our CA and are not revoked; the workstation
/// certificate must be a workstation certificate (`ISTAT-PC-NNNN`) of the same
/// municipality as the message signature's and its CN must be the named workstation
/// (EV235). A named workstation without its signature is EV234.
pub fn verifica_firma(
    documento: &[u8],
    politica: &Politica<'_>,
) -> Result<FirmaVerificata, ErroreSicurezza> {
    let busta = analizza(documento)?;
    let ns_soap = if busta.e(NS_SOAP11, "Envelope") {
        NS_SOAP11
    } else if busta.e(NS_SOAP12, "Envelope") {
        NS_SOAP12
    } else {
        return Err(ErroreSicurezza::messaggio(
            CODICE_XML_NON_AMMESSO,
            "L'elemento radice non è una busta SOAP",
        ));
    };
    let header = unico(&busta, ns_soap, "Header")?;
    let body = unico(&busta, ns_soap, "Body")?;
    let security = unico(header, NS_WSSE, "Security")?;
    let timestamp = unico(security, NS_WSU, "Timestamp")?;
    let token_utente = unico(security, NS_WSSE, "UsernameToken")?;
    let postazione = al_piu_uno(security, NS_ANPR, ELEMENTO_POSTAZIONE)?;
    let firme: Vec<&Elemento> = security.figli_nominati(NS_DS, "Signature").collect();

    // Every id in the document, to refuse ambiguity: a wrapped copy of the Body that
    // carries the same id as the real one must not be the one that is checked.
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let tutti = busta.discendenti();
    for e in &tutti {
        for id in id_di(e) {
            *ids.entry(id).or_default() += 1;
        }
    }

    // Which signature is the message's and which the workstation's: the message
    // signature is the one pointing at THE Body.
    let (firma, firma_postazione) = match (firme.as_slice(), postazione) {
        ([], _) => return Err(manca("Signature mancante in Security")),
        ([f], None) => (*f, None),
        ([_], Some(p)) => {
            return Err(ErroreSicurezza::messaggio(
                CODICE_FIRMA_POSTAZIONE_MANCANTE,
                format!(
                    "La postazione {} è dichiarata ma manca la firma del suo certificato",
                    p.testo().trim()
                ),
            ))
        }
        ([_, _], None) => {
            return Err(manca(
                "Seconda Signature senza l'elemento Postazione che dovrebbe firmare",
            ))
        }
        ([a, b], Some(p)) => {
            let id_body = id_di(body);
            let al_body = |f: &Elemento| riferimenti(f).iter().any(|r| id_body.contains(r));
            match (al_body(a), al_body(b)) {
                (true, false) => (*a, Some((*b, p))),
                (false, true) => (*b, Some((*a, p))),
                _ => {
                    return Err(ErroreSicurezza::messaggio(
                        CODICE_RIFERIMENTO_NON_AMMESSO,
                        "Deve essere una sola delle due firme a coprire il Body",
                    ))
                }
            }
        }
        _ => return Err(manca("Più di due Signature in Security")),
    };

    let mut bersagli: Vec<Bersaglio<'_>> = vec![
        (body, "Body", true),
        (timestamp, "Timestamp", true),
        (token_utente, "UsernameToken", true),
    ];
    if let Some(p) = postazione {
        bersagli.push((p, "Postazione", false));
    }
    let certificato = verifica_una_firma(security, firma, &ids, &bersagli, politica)?;
    let certificato_postazione = match firma_postazione {
        None => None,
        Some((fp, p)) => {
            let bersagli = [
                (p, "Postazione", true),
                (firma, "Signature del messaggio", true),
                (timestamp, "Timestamp", false),
            ];
            let c = verifica_una_firma(security, fp, &ids, &bersagli, politica)
                .map_err(della_postazione)?;
            Some((c, p.testo().trim().to_owned()))
        }
    };

    verifica_timestamp(timestamp, politica)?;

    let utente = unico(token_utente, NS_WSSE, "Username")?
        .testo()
        .trim()
        .to_owned();
    let mut verificata = firmatario(&certificato, utente)?;
    if let Some((der, nominata)) = certificato_postazione {
        nomina_postazione(&mut verificata, &der, nominata)?;
    }
    Ok(verificata)
}

/// The workstation `nominata` proved by its own signature with certificate `der`
/// (already verified against the CA and the CRL), shared by SOAP's `anpr:Postazione`
/// and REST's workstation JWS: `der` must be a workstation certificate
/// (`ISTAT-PC-NNNN`) of the municipality that signed the message, its CN the named
/// workstation, and not contradict a workstation certificate that signed the message
/// itself (EV235).
pub(crate) fn nomina_postazione(
    verificata: &mut FirmaVerificata,
    der: &[u8],
    nominata: String,
) -> Result<(), ErroreSicurezza> {
    let id = crate::ca::identita(der)?;
    if !id.cn.contains("-PC-") {
        return Err(postazione_non_ammessa(format!(
            "La firma della postazione è del certificato {}, che non è un certificato di postazione",
            id.cn
        )));
    }
    if id.ou.as_deref() != Some(verificata.comune.as_str()) {
        return Err(postazione_non_ammessa(format!(
            "La postazione {} non è del comune {} che firma il messaggio",
            id.cn, verificata.comune
        )));
    }
    if id.cn != nominata {
        return Err(postazione_non_ammessa(format!(
            "Postazione dichiarata {nominata:?}, firmata dal certificato di {}",
            id.cn
        )));
    }
    if verificata
        .postazione
        .as_ref()
        .is_some_and(|p| *p != nominata)
    {
        return Err(postazione_non_ammessa(format!(
            "Messaggio firmato dalla postazione {}, ma dichiara la postazione {nominata}",
            verificata.postazione.as_deref().unwrap_or("")
        )));
    }
    verificata.postazione = Some(nominata);
    Ok(())
}

/// Who signed with `certificato` (already verified) on behalf of `utente`.
pub(crate) fn firmatario(
    certificato: &[u8],
    utente: String,
) -> Result<FirmaVerificata, ErroreSicurezza> {
    let identita = crate::ca::identita(certificato)?;
    let comune = identita.ou.clone().ok_or_else(|| {
        ErroreSicurezza::messaggio(CODICE_CATENA_NON_VALIDA, "Certificato senza comune (OU)")
    })?;
    let postazione = identita.cn.contains("-PC-").then(|| identita.cn.clone());
    Ok(FirmaVerificata {
        comune,
        firmatario: identita.cn,
        postazione,
        utente,
    })
}

/// Verifies the message and the sender's right to perform an operation that any of
/// `profili_ammessi` allows.
pub fn verifica_messaggio(
    documento: &[u8],
    politica: &Politica<'_>,
    rubrica: &dyn RubricaUtenti,
    profili_ammessi: &[Profilo],
    ip: Option<IpAddr>,
) -> Result<MittenteVerificato, ErroreSicurezza> {
    let firma = verifica_firma(documento, politica)?;
    autorizza_mittente(firma, rubrica, profili_ammessi, ip)
}

/// The checks after the signature, shared by SOAP and signed REST requests: authorised
/// IP, user known, of the signing municipality, with a profile for the operation.
pub(crate) fn autorizza_mittente(
    firma: FirmaVerificata,
    rubrica: &dyn RubricaUtenti,
    profili_ammessi: &[Profilo],
    ip: Option<IpAddr>,
) -> Result<MittenteVerificato, ErroreSicurezza> {
    if let (Some(ip), Some(autorizzati)) = (ip, rubrica.ip_autorizzati(&firma.comune)) {
        if !autorizzati.contains(&ip) {
            return Err(ErroreSicurezza::messaggio(
                CODICE_IP_NON_AUTORIZZATO,
                format!(
                    "Indirizzo IP {ip} non autorizzato per il comune {}",
                    firma.comune
                ),
            ));
        }
    }
    let per_comune = rubrica.profili(&firma.utente).ok_or_else(|| {
        ErroreSicurezza::messaggio(
            CODICE_UTENTE_SCONOSCIUTO,
            format!("Utente {} non censito", firma.utente),
        )
    })?;
    let profili = per_comune.get(&firma.comune).cloned().ok_or_else(|| {
        ErroreSicurezza::messaggio(
            CODICE_UTENTE_ALTRO_COMUNE,
            format!(
                "Utente {} non abilitato per il comune {}",
                firma.utente, firma.comune
            ),
        )
    })?;
    if !profili_ammessi.iter().any(|p| profili.contains(p)) {
        return Err(ErroreSicurezza::messaggio(
            CODICE_PROFILO_MANCANTE,
            format!(
                "Utente {} privo di un profilo che consenta l'operazione",
                firma.utente
            ),
        ));
    }
    Ok(MittenteVerificato { firma, profili })
}

fn certificato_firma(security: &Elemento, firma: &Elemento) -> Result<Vec<u8>, ErroreSicurezza> {
    let key_info = unico(firma, NS_DS, "KeyInfo")?;
    if let Some(x509) = key_info.figli_nominati(NS_DS, "X509Data").next() {
        return b64(&unico(x509, NS_DS, "X509Certificate")?.testo());
    }
    let str_ref = unico(key_info, NS_WSSE, "SecurityTokenReference")?;
    let uri = unico(str_ref, NS_WSSE, "Reference")?
        .attributo("", "URI")
        .unwrap_or("");
    let id = uri
        .strip_prefix('#')
        .ok_or_else(|| manca("SecurityTokenReference senza #id"))?;
    let mut token = security
        .figli_nominati(NS_WSSE, "BinarySecurityToken")
        .filter(|t| id_di(t).contains(&id));
    match (token.next(), token.next()) {
        (Some(t), None) => b64(&t.testo()),
        _ => Err(manca(format!(
            "BinarySecurityToken #{id} assente o ripetuto"
        ))),
    }
}

/// ECDSA signatures in XML-DSig are `r || s`; webpki wants the DER `SEQUENCE`.
fn ecdsa_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    let intero = |b: &[u8]| {
        let b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        let mut v = vec![0x02];
        if b.first().is_none_or(|x| x & 0x80 != 0) {
            v.push(b.len() as u8 + 1);
            v.push(0);
        } else {
            v.push(b.len() as u8);
        }
        v.extend(b);
        v
    };
    let (r, s) = (intero(&raw[..32]), intero(&raw[32..]));
    let mut out = vec![0x30, (r.len() + s.len()) as u8];
    out.extend(r);
    out.extend(s);
    Some(out)
}

pub(crate) fn verifica_valore(
    alg: &str,
    cert: &[u8],
    messaggio: &[u8],
    valore: &[u8],
) -> Result<(), ErroreSicurezza> {
    let errata =
        || ErroreSicurezza::messaggio(CODICE_FIRMA_ERRATA, "Valore della firma non valido");
    let der = rustls::pki_types::CertificateDer::from(cert);
    let ee = webpki::EndEntityCert::try_from(&der).map_err(|_| errata())?;
    let esito = match alg {
        ALG_ECDSA_SHA256 => {
            let sig = ecdsa_der(valore).ok_or_else(errata)?;
            ee.verify_signature(webpki::ring::ECDSA_P256_SHA256, messaggio, &sig)
        }
        _ => ee.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, messaggio, valore),
    };
    esito.map_err(|_| errata())
}

fn verifica_timestamp(ts: &Elemento, p: &Politica<'_>) -> Result<(), ErroreSicurezza> {
    let campo = |nome: &str| -> Result<DateTime<Utc>, ErroreSicurezza> {
        let e = unico(ts, NS_WSU, nome)?;
        e.testo().trim().parse::<DateTime<Utc>>().map_err(|_| {
            ErroreSicurezza::messaggio(CODICE_TIMESTAMP, format!("{nome} non è un istante valido"))
        })
    };
    let creato = campo("Created")?;
    let scade = campo("Expires")?;
    let rifiuta = |m: String| Err(ErroreSicurezza::messaggio(CODICE_TIMESTAMP, m));
    if creato > p.adesso + p.tolleranza {
        return rifiuta(format!("Timestamp creato nel futuro ({creato})"));
    }
    if scade <= p.adesso - p.tolleranza {
        return rifiuta(format!("Messaggio scaduto alle {scade}"));
    }
    if scade - creato > p.durata_massima || scade <= creato {
        return rifiuta(format!(
            "Validità del messaggio da {creato} a {scade} oltre i {} secondi ammessi",
            p.durata_massima.num_seconds()
        ));
    }
    Ok(())
}
