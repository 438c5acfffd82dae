//! Access at the HTTP edge: the municipalities' authorised IP addresses (REST and SOAP,
//! trusted proxies), daily-password sessions, WebAuthn passkeys; and the delivery of
//! the security mails through an SMTP relay (a real SMTP server on a TCP listener in
//! the test). Real servers on real stores (SQLite and PostgreSQL), real HTTP.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_server::ServerConfig;
use anpr_service::clock::Clock;
use anpr_service::sicurezza::Sicurezza;
use anpr_service::Registry;
use anpr_sicurezza::direttorio::Utente;
use anpr_store::Store;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const ROMA: &str = "058091";
const MILANO: &str = "015146";
const ALS: &str = "LSSRMO80A01H501Z";
const OPERATORE: &str = "PRTRMO80A01H501Q";

/// A clock the test moves.
#[derive(Debug)]
struct Orologio(std::sync::Mutex<DateTime<Utc>>);

impl Orologio {
    fn imposta(&self, t: &str) {
        *self.0.lock().unwrap() = t.parse().unwrap();
    }
}

impl Clock for Orologio {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// One server process: a registry with its own security cache on the shared store,
/// served over plain HTTP with the peer address kept.
struct Processo {
    base: String,
    registry: Arc<Registry>,
}

async fn processo(store: Arc<dyn Store>, orologio: Arc<Orologio>, proxy: Vec<IpAddr>) -> Processo {
    let sic = Sicurezza::apri(store.clone(), orologio.now())
        .await
        .unwrap()
        .con_intervallo_aggiornamento(std::time::Duration::ZERO)
        .con_proxy_fidati(proxy)
        .con_webauthn(anpr_sicurezza::passkey::RelyingParty {
            id: "localhost".into(),
            origini: vec!["https://localhost".into()],
        });
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store);
    let registry = Arc::new(Registry::new(stores, orologio).con_sicurezza(Arc::new(sic)));
    let app = anpr_server::router(
        registry.clone(),
        ServerConfig {
            ambiente_predefinito: Ambiente::Test,
            backend: "test",
            identita_da_header: true,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    Processo {
        base: format!("http://{addr}"),
        registry,
    }
}

fn sistema() -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: None,
        utente: "SOGEI".into(),
        profili: BTreeSet::from([Profilo::GestoreSistema]),
        postazione: None,
        canale: Canale::Cli,
    }
}

fn utente(cf: &str) -> Utente {
    Utente {
        codice_fiscale: cf.into(),
        cognome: "Prova".into(),
        nome: "Utente".into(),
        email: format!("{}@comune.roma.it", cf.to_lowercase()),
        ruoli: BTreeMap::new(),
    }
}

fn codici(v: &Value) -> Vec<String> {
    v["anomalie"].as_array().map_or_else(Vec::new, |a| {
        a.iter()
            .map(|x| x["codice"].as_str().unwrap_or("").to_owned())
            .collect()
    })
}

/// A request with the development identity headers of `comune` and `profilo`.
fn come(
    c: &reqwest::Client,
    metodo: reqwest::Method,
    url: String,
    comune: &str,
    cf: &str,
    profilo: &str,
) -> reqwest::RequestBuilder {
    c.request(metodo, url)
        .header("x-anpr-comune", comune)
        .header("x-anpr-utente", cf)
        .header("x-anpr-profili", profilo)
}

async fn risposta(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn authorised_ip_addresses(backend: common::Backend) {
    let Some((store, _keep)) = common::store(backend).await else {
        return;
    };
    let orologio = Arc::new(Orologio(std::sync::Mutex::new(
        "2026-11-23T10:00:00Z".parse().unwrap(),
    )));
    // Two processes on one store: `diretto` trusts no proxy, `dietro` trusts the
    // loopback address as its reverse proxy.
    let diretto = processo(store.clone(), orologio.clone(), vec![]).await;
    let dietro = processo(
        store.clone(),
        orologio.clone(),
        vec!["127.0.0.1".parse().unwrap()],
    )
    .await;
    let r = &diretto.registry;
    r.censisci_utente(
        &sistema(),
        ROMA,
        utente(ALS),
        BTreeSet::from([Profilo::AmministratoreSicurezza]),
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let ip_url =
        |p: &Processo, ente: &str| format!("{}/api/v1/sicurezza/ip-autorizzati/{ente}", p.base);

    // Only the security administrator sets them, and only for the own municipality.
    let (st, b) = risposta(
        come(
            &c,
            reqwest::Method::PUT,
            ip_url(&diretto, ROMA),
            ROMA,
            OPERATORE,
            "OPERATORE_ANAGRAFE",
        )
        .json(&json!({"indirizzi": ["10.9.9.9"]})),
    )
    .await;
    assert_eq!((st, codici(&b)), (403, vec!["EA401".to_owned()]));
    let (st, b) = risposta(
        come(
            &c,
            reqwest::Method::PUT,
            ip_url(&diretto, MILANO),
            ROMA,
            ALS,
            "AMMINISTRATORE_SICUREZZA",
        )
        .json(&json!({"indirizzi": ["10.9.9.9"]})),
    )
    .await;
    assert_eq!((st, codici(&b)), (403, vec!["EA401".to_owned()]));
    let (st, _) = risposta(
        come(
            &c,
            reqwest::Method::PUT,
            ip_url(&diretto, ROMA),
            ROMA,
            ALS,
            "AMMINISTRATORE_SICUREZZA",
        )
        .json(&json!({"indirizzi": ["non-un-ip"]})),
    )
    .await;
    assert_eq!(st, 400);
    let (st, b) = risposta(
        come(
            &c,
            reqwest::Method::PUT,
            ip_url(&diretto, ROMA),
            ROMA,
            ALS,
            "AMMINISTRATORE_SICUREZZA",
        )
        .json(&json!({"indirizzi": ["10.9.9.9", "2001:db8::1"]})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["indirizzi"], json!(["10.9.9.9", "2001:db8::1"]));
    // The administrator too now connects from an address not authorised.
    let (st, b) = risposta(come(
        &c,
        reqwest::Method::GET,
        ip_url(&diretto, ROMA),
        ROMA,
        ALS,
        "AMMINISTRATORE_SICUREZZA",
    ))
    .await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]));

    // From now on Rome's callers connect from 127.0.0.1, not authorised: refused with
    // EV233 on REST (any endpoint needing the caller) and audited.
    let cf_verifica = || {
        come(
            &c,
            reqwest::Method::POST,
            format!("{}/api/v1/codice-fiscale/verifica", diretto.base),
            ROMA,
            OPERATORE,
            "OPERATORE_ANAGRAFE",
        )
        .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"}))
    };
    let (st, b) = risposta(cf_verifica()).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]), "{b}");
    assert_eq!(b["anomalie"][0]["valore"], "127.0.0.1");
    // A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    let (st, b) = risposta(cf_verifica().header("x-forwarded-for", "10.9.9.9")).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]));
    // Milan's callers are not concerned.
    let (st, _) = risposta(
        come(
            &c,
            reqwest::Method::POST,
            format!("{}/api/v1/codice-fiscale/verifica", diretto.base),
            MILANO,
            OPERATORE,
            "OPERATORE_ANAGRAFE",
        )
        .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"})),
    )
    .await;
    assert_eq!(st, 200);
    // SOAP: the same refusal, as a fault.
    let soap = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <s:Header><a:identitaSviluppo xmlns:a=\"urn:anpr:soap\"><utente>{OPERATORE}</utente>\
         <profili>OPERATORE_ANAGRAFE</profili></a:identitaSviluppo></s:Header><s:Body>\
         <t:Richiesta7003 xmlns:t=\"http://sogei.it/ANPR/7001scaricoTabelle\"><testataRichiesta><idOperazioneComune>1</idOperazioneComune>\
         <codMittente>{ROMA}</codMittente><codDestinatario>999999</codDestinatario>\
         <operazioneRichiesta>7003</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta>\
         <tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio></testataRichiesta><datiRichiesta/></t:Richiesta7003></s:Body></s:Envelope>"
    );
    let r = c
        .post(format!("{}/ws/AnprService7001", diretto.base))
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "")
        .body(soap.clone())
        .send()
        .await
        .unwrap();
    let (st, testo) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(st, 403, "{testo}");
    assert!(testo.contains("EV233"), "{testo}");

    // Behind the trusted proxy: the forwarded client address decides.
    let via = |xff: Option<&str>| {
        let mut b = come(
            &c,
            reqwest::Method::POST,
            format!("{}/api/v1/codice-fiscale/verifica", dietro.base),
            ROMA,
            OPERATORE,
            "OPERATORE_ANAGRAFE",
        )
        .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"}));
        if let Some(x) = xff {
            b = b.header("x-forwarded-for", x);
        }
        b
    };
    assert_eq!(risposta(via(Some("10.9.9.9"))).await.0, 200);
    assert_eq!(risposta(via(Some("6.6.6.6, 10.9.9.9"))).await.0, 200);
    assert_eq!(risposta(via(Some("10.9.9.9, 6.6.6.6"))).await.0, 403);
    assert_eq!(risposta(via(None)).await.0, 403);

    // Every refusal is a failed login in the audit log.
    let voci = store.audit_page(0, 10_000).await.unwrap();
    let rifiuti = voci
        .iter()
        .filter(|v| {
            v.voce.azione == "accessoFallito"
                && v.voce
                    .oggetto
                    .as_deref()
                    .is_some_and(|o| o.ends_with(":EV233"))
        })
        .count();
    assert_eq!(rifiuti, 6);
    assert!(voci
        .iter()
        .any(|v| v.voce.evento == TipoEvento::Amministrazione
            && v.voce.azione == "indirizziAutorizzati"));

    // Registry staff lift the restriction (the administrator was locked out too).
    diretto
        .registry
        .imposta_indirizzi_autorizzati(&sistema(), ROMA, vec![])
        .await
        .unwrap();
    assert_eq!(risposta(cf_verifica()).await.0, 200);
}

fn als_roma() -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: Some(ROMA.parse().unwrap()),
        utente: ALS.into(),
        profili: BTreeSet::from([Profilo::AmministratoreSicurezza]),
        postazione: None,
        canale: Canale::Web,
    }
}

async fn daily_password_sessions(backend: common::Backend) {
    let Some((store, _keep)) = common::store(backend).await else {
        return;
    };
    // 21:00 in Rome (CET).
    let orologio = Arc::new(Orologio(std::sync::Mutex::new(
        "2026-11-23T20:00:00Z".parse().unwrap(),
    )));
    let uno = processo(store.clone(), orologio.clone(), vec![]).await;
    let due = processo(store.clone(), orologio.clone(), vec![]).await;
    let r = &uno.registry;
    for (cf, p) in [
        (ALS, Profilo::AmministratoreSicurezza),
        (OPERATORE, Profilo::OperatoreAnagrafe),
    ] {
        r.censisci_utente(&sistema(), ROMA, utente(cf), BTreeSet::from([p]))
            .await
            .unwrap();
    }
    let password = r
        .concedi_password_giornaliera(&als_roma(), ROMA, OPERATORE)
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let accedi = |p: &Processo, pw: &str| {
        c.post(format!(
            "{}/api/v1/sicurezza/accesso/password-giornaliera",
            p.base
        ))
        .json(&json!({"ente": ROMA, "codiceFiscale": OPERATORE, "password": pw}))
    };
    let cerca = |p: &Processo, token: Option<&str>| {
        let b = c
            .post(format!("{}/api/v1/soggetti/ricerca", p.base))
            .json(&json!({"criteriRicerca": {"cognome": "ROSSI"}}));
        match token {
            Some(t) => b.bearer_auth(t),
            None => b,
        }
    };

    // Wrong passwords are refused and counted; the fifth locks the holder out, even
    // with the right password, for fifteen minutes.
    for _ in 0..5 {
        let (st, b) = risposta(accedi(&uno, "sbagliata")).await;
        assert_eq!((st, codici(&b)), (403, vec!["EV206".to_owned()]));
    }
    let (st, b) = risposta(accedi(&due, &password)).await;
    assert_eq!(
        (st, codici(&b)),
        (403, vec!["EV214".to_owned()]),
        "the lockout is shared"
    );
    orologio.imposta("2026-11-23T20:16:00Z");
    let (st, b) = risposta(accedi(&uno, &password)).await;
    assert_eq!(st, 200, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();
    assert_eq!(b["scade"], "2026-11-23T23:00:00Z", "midnight in Rome");
    assert_eq!(b["profili"], json!(["OPERATORE_ANAGRAFE"]));
    // A login for a body the holder is not censused for.
    let (st, b) = risposta(
        c.post(format!(
            "{}/api/v1/sicurezza/accesso/password-giornaliera",
            uno.base
        ))
        .json(&json!({"ente": MILANO, "codiceFiscale": OPERATORE, "password": password})),
    )
    .await;
    assert_eq!((st, codici(&b)), (403, vec!["EV213".to_owned()]));

    // Anonymous: no permission. With the token, on either process: the operator.
    let (st, b) = risposta(cerca(&uno, None)).await;
    assert_eq!((st, codici(&b)), (403, vec!["EA401".to_owned()]));
    for p in [&uno, &due] {
        let (st, b) = risposta(cerca(p, Some(&token))).await;
        assert_eq!(st, 200, "{b}");
    }
    // A token and declared identity headers never mix.
    let (st, b) = risposta(cerca(&uno, Some(&token)).header("x-anpr-utente", ALS)).await;
    assert_eq!((st, codici(&b)), (403, vec!["EA402".to_owned()]));
    // A malformed Authorization header, an unknown token.
    let (st, _) = risposta(cerca(&uno, None).header("authorization", "Basic eA==")).await;
    assert_eq!(st, 400);
    let (st, b) = risposta(cerca(&uno, Some("0000"))).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV215".to_owned()]));

    // Still valid one second before midnight in Rome; not at midnight.
    orologio.imposta("2026-11-23T22:59:59Z");
    assert_eq!(risposta(cerca(&due, Some(&token))).await.0, 200);
    orologio.imposta("2026-11-23T23:00:00Z");
    let (st, b) = risposta(cerca(&due, Some(&token))).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV215".to_owned()]));
    let (st, b) = risposta(accedi(&uno, &password)).await;
    assert_eq!(
        (st, codici(&b)),
        (403, vec!["EV206".to_owned()]),
        "the password ended too"
    );

    // Logout ends a session at once.
    orologio.imposta("2026-11-24T09:00:00Z");
    let nuova = r
        .concedi_password_giornaliera(&als_roma(), ROMA, OPERATORE)
        .await
        .unwrap();
    let (st, b) = risposta(accedi(&due, &nuova)).await;
    assert_eq!(st, 200, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();
    let (st, b) = risposta(
        c.post(format!("{}/api/v1/sicurezza/accesso/esci", uno.base))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!((st, b["chiusa"].as_bool()), (200, Some(true)));
    assert_eq!(risposta(cerca(&uno, Some(&token))).await.0, 403);

    // Audited: logins, failures with their codes, the logout.
    let voci = store.audit_page(0, 10_000).await.unwrap();
    let conta = |azione: &str, oggetto: Option<&str>| {
        voci.iter()
            .filter(|v| {
                v.voce.azione == azione
                    && oggetto.is_none_or(|o| v.voce.oggetto.as_deref() == Some(o))
            })
            .count()
    };
    assert_eq!(conta("accessoPasswordGiornaliera", None), 2);
    assert_eq!(conta("accessoFallito", Some("password:EV206")), 6);
    assert_eq!(conta("accessoFallito", Some("password:EV214")), 1);
    assert_eq!(conta("accessoFallito", Some("password:EV213")), 1);
    assert_eq!(conta("accessoFallito", Some("sessione:EV215")), 3);
    assert_eq!(conta("uscita", None), 1);

    // Rome's authorised addresses apply to the daily-password login and to the
    // sessions it opened (these requests come from 127.0.0.1): EV233, audited.
    let (st, b) = risposta(accedi(&uno, &nuova)).await;
    assert_eq!(st, 200, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();
    r.imposta_indirizzi_autorizzati(&sistema(), ROMA, vec!["10.9.9.9".parse().unwrap()])
        .await
        .unwrap();
    let (st, b) = risposta(accedi(&due, &nuova)).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]), "{b}");
    let (st, b) = risposta(cerca(&uno, Some(&token))).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]), "{b}");
    let voci = store.audit_page(0, 10_000).await.unwrap();
    assert_eq!(
        voci.iter()
            .filter(|v| v.voce.azione == "accessoFallito"
                && v.voce.oggetto.as_deref() == Some("ip:127.0.0.1:EV233"))
            .count(),
        2
    );
    r.imposta_indirizzi_autorizzati(&sistema(), ROMA, vec![])
        .await
        .unwrap();
    assert_eq!(risposta(cerca(&due, Some(&token))).await.0, 200);
}

/// What the in-test SMTP server received: recipient, message, over TLS.
type Ricevute = Arc<std::sync::Mutex<Vec<(String, String, bool)>>>;

/// How the in-test SMTP server behaves.
#[derive(Debug, Default)]
struct Comportamento {
    /// Connections still to answer 451 (try later) at RCPT.
    temporanei: u32,
    /// Recipients answered 550 (no such user).
    inesistenti: Vec<String>,
    /// Recipients always answered 451.
    sempre_occupati: Vec<String>,
}

/// A small SMTP server speaking STARTTLS (certificate from `ca`) and AUTH PLAIN.
async fn server_smtp(
    ca: &anpr_sicurezza::ca::AutoritaCertificazione,
    comportamento: Arc<std::sync::Mutex<Comportamento>>,
) -> (SocketAddr, Ricevute) {
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
    let cert = ca
        .emetti(
            &anpr_sicurezza::ca::RichiestaCertificato {
                tipo: anpr_sicurezza::ca::TipoCertificato::Endpoint,
                cn: "smtp".into(),
                ou: None,
                nomi: vec!["localhost".into()],
            },
            999_999,
            Utc::now() - chrono::Duration::hours(1),
        )
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(anpr_sicurezza::mtls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert.der.clone())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.chiave_pkcs8.clone().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ricevute: Ricevute = Arc::default();

    enum Fine {
        Chiusa,
        Starttls,
    }
    async fn dialogo<S: AsyncRead + AsyncWrite + Unpin>(
        r: &mut BufReader<S>,
        tls: bool,
        c: &std::sync::Mutex<Comportamento>,
        ricevute: &Ricevute,
        occupato: bool,
    ) -> Fine {
        let mut rcpt = String::new();
        let mut autenticato = false;
        loop {
            let mut riga = String::new();
            if r.read_line(&mut riga).await.unwrap_or(0) == 0 {
                return Fine::Chiusa;
            }
            let riga = riga.trim_end().to_owned();
            let risposta = if riga.starts_with("EHLO") {
                "250-localhost\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n".to_owned()
            } else if riga == "STARTTLS" && !tls {
                r.get_mut().write_all(b"220 pronto\r\n").await.unwrap();
                return Fine::Starttls;
            } else if let Some(b64) = riga.strip_prefix("AUTH PLAIN ") {
                use base64::Engine;
                let atteso =
                    base64::engine::general_purpose::STANDARD.encode(b"\0postino\0segreta");
                autenticato = tls && b64 == atteso;
                if autenticato {
                    "235 ok\r\n"
                } else {
                    "535 credenziali errate\r\n"
                }
                .to_owned()
            } else if riga.starts_with("MAIL FROM:") {
                if autenticato {
                    "250 ok\r\n"
                } else {
                    "530 autenticazione richiesta\r\n"
                }
                .to_owned()
            } else if let Some(a) = riga.strip_prefix("RCPT TO:<") {
                rcpt = a.trim_end_matches('>').to_owned();
                let c = c.lock().unwrap();
                if occupato || c.sempre_occupati.contains(&rcpt) {
                    "451 riprovare più tardi\r\n".to_owned()
                } else if c.inesistenti.contains(&rcpt) {
                    "550 utente inesistente\r\n".to_owned()
                } else {
                    "250 ok\r\n".to_owned()
                }
            } else if riga == "DATA" {
                r.get_mut().write_all(b"354 avanti\r\n").await.unwrap();
                let mut dati = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                        return Fine::Chiusa;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    dati.push_str(&l);
                }
                ricevute.lock().unwrap().push((rcpt.clone(), dati, tls));
                "250 accettato\r\n".to_owned()
            } else if riga == "QUIT" {
                r.get_mut().write_all(b"221 ciao\r\n").await.unwrap();
                return Fine::Chiusa;
            } else {
                "500 comando sconosciuto\r\n".to_owned()
            };
            r.get_mut().write_all(risposta.as_bytes()).await.unwrap();
        }
    }

    let r2 = ricevute.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, c, ricevute) = (acceptor.clone(), comportamento.clone(), r2.clone());
            tokio::spawn(async move {
                let occupato = {
                    let mut c = c.lock().unwrap();
                    let o = c.temporanei > 0;
                    c.temporanei = c.temporanei.saturating_sub(1);
                    o
                };
                let mut r = BufReader::new(tcp);
                r.get_mut()
                    .write_all(b"220 localhost ESMTP prova\r\n")
                    .await
                    .unwrap();
                if let Fine::Starttls = dialogo(&mut r, false, &c, &ricevute, occupato).await {
                    let tls = acceptor.accept(r.into_inner()).await.unwrap();
                    let mut r = BufReader::new(tls);
                    dialogo(&mut r, true, &c, &ricevute, occupato).await;
                }
            });
        }
    });
    (addr, ricevute)
}

fn utente_con_email(cf: &str, email: &str) -> Utente {
    Utente {
        email: email.into(),
        ..utente(cf)
    }
}

async fn security_mails_are_delivered_through_the_relay(backend: common::Backend) {
    use anpr_server::posta::{ConfigurazioneSmtp, Postino, SEGRETO_RIMOSSO, TENTATIVI_MASSIMI};
    use anpr_service::sicurezza::AzioneCarta;
    use anpr_store::sicurezza::StatoMail;
    let Some((store, _keep)) = common::store(backend).await else {
        return;
    };
    let orologio = Arc::new(Orologio(std::sync::Mutex::new(
        "2026-11-23T10:00:00Z".parse().unwrap(),
    )));
    let p = processo(store.clone(), orologio.clone(), vec![]).await;
    let r = &p.registry;
    // Four holders whose card activations queue four mails.
    let titolari = [
        (
            "SNDRMO70A01H501S",
            "sindaco@comune.roma.it",
            Profilo::Sindaco,
        ),
        (ALS, "als@comune.roma.it", Profilo::AmministratoreSicurezza),
        (
            OPERATORE,
            "nessuno@comune.roma.it",
            Profilo::OperatoreAnagrafe,
        ),
        (
            "PSTRMO80A01H501K",
            "occupato@comune.roma.it",
            Profilo::OperatoreConsultazione,
        ),
    ];
    let prefettura = CallerContext {
        comune: Some(ROMA.parse().unwrap()),
        profili: BTreeSet::from([Profilo::AmministratorePrefettura]),
        ..sistema()
    };
    let sindaco = CallerContext {
        comune: Some(ROMA.parse().unwrap()),
        utente: titolari[0].0.into(),
        profili: BTreeSet::from([Profilo::Sindaco]),
        ..sistema()
    };
    for (i, (cf, email, profilo)) in titolari.iter().enumerate() {
        r.censisci_utente(
            &sistema(),
            ROMA,
            utente_con_email(cf, email),
            BTreeSet::from([*profilo]),
        )
        .await
        .unwrap();
        let n = r.richiedi_carta(&sistema(), ROMA, cf).await.unwrap();
        for a in [
            AzioneCarta::AvvioProduzione,
            AzioneCarta::ArrivoInPrefettura,
        ] {
            r.evento_carta(&sistema(), &n, a).await.unwrap();
        }
        r.evento_carta(&prefettura, &n, AzioneCarta::Consegna)
            .await
            .unwrap();
        let chi = match i {
            0 => None,
            1 => Some(&sindaco),
            _ => Some(&als_roma()),
        };
        if let Some(ctx) = chi {
            r.evento_carta(ctx, &n, AzioneCarta::Registrazione)
                .await
                .unwrap();
        }
    }
    // No relay configured yet: the mails wait in the outbox.
    let in_coda = store
        .sicurezza_posta(Some(StatoMail::InCoda), 10)
        .await
        .unwrap();
    assert_eq!(in_coda.len(), 4);
    assert!(in_coda
        .iter()
        .all(|m| m.mail.corpo.contains("Seconda metà del PIN: ")));

    let ca =
        anpr_sicurezza::ca::AutoritaCertificazione::nuova(Utc::now() - chrono::Duration::days(1))
            .unwrap();
    let comportamento = Arc::new(std::sync::Mutex::new(Comportamento {
        temporanei: 1,
        inesistenti: vec!["nessuno@comune.roma.it".into()],
        sempre_occupati: vec!["occupato@comune.roma.it".into()],
    }));
    let (smtp, ricevute) = server_smtp(&ca, comportamento).await;
    let cfg = ConfigurazioneSmtp {
        host: "localhost".into(),
        porta: smtp.port(),
        mittente: "anpr@interno.it".into(),
        nome_helo: "anpr.test".into(),
        starttls: true,
        radici_pem: Some(ca.certificato_pem().into_bytes()),
        credenziali: Some(("postino".into(), "segreta".into())),
    };
    assert!(!format!("{cfg:?}").contains("segreta"));
    let postino = Postino::new(p.registry.clone(), cfg.clone());

    // First round: the relay says "later" to the first connection (the mayor's mail),
    // "no such user" for one, "later" always for another, accepts the ALS's.
    let g = postino.giro().await.unwrap();
    assert_eq!((g.consegnate, g.rinviate, g.fallite), (1, 2, 1), "{g:?}");
    // Nothing is due again before the backoff.
    let g = postino.giro().await.unwrap();
    assert_eq!((g.consegnate, g.rinviate, g.fallite), (0, 0, 0));
    orologio.imposta("2026-11-23T10:02:00Z");
    let g = postino.giro().await.unwrap();
    assert_eq!((g.consegnate, g.rinviate, g.fallite), (1, 1, 0), "{g:?}");
    // The always-busy recipient is given up after the last attempt.
    for _ in 0..TENTATIVI_MASSIMI {
        let ora = orologio.now() + chrono::Duration::hours(7);
        orologio.imposta(&ora.to_rfc3339());
        postino.giro().await.unwrap();
    }
    let tutte = store.sicurezza_posta(None, 10).await.unwrap();
    let stato = |dest: &str| tutte.iter().find(|m| m.mail.destinatario == dest).unwrap();
    assert_eq!(stato("sindaco@comune.roma.it").stato, StatoMail::Consegnata);
    assert_eq!(stato("sindaco@comune.roma.it").tentativi, 2);
    assert_eq!(stato("als@comune.roma.it").stato, StatoMail::Consegnata);
    assert_eq!(stato("nessuno@comune.roma.it").stato, StatoMail::Fallita);
    assert!(stato("nessuno@comune.roma.it")
        .ultimo_errore
        .as_deref()
        .unwrap()
        .contains("550"));
    assert_eq!(stato("occupato@comune.roma.it").stato, StatoMail::Fallita);
    assert_eq!(
        stato("occupato@comune.roma.it").tentativi,
        TENTATIVI_MASSIMI
    );
    // Sent or given up, no mail keeps the PIN/PUK halves in the outbox.
    for m in &tutte {
        assert!(
            !m.mail.corpo.contains("Seconda metà del PIN: "),
            "{}",
            m.mail.corpo
        );
        assert!(m.mail.corpo.contains(SEGRETO_RIMOSSO));
    }
    // What the relay received: two messages, over TLS, with the halves in the body.
    let ricevute = ricevute.lock().unwrap().clone();
    assert_eq!(ricevute.len(), 2);
    for (dest, dati, tls) in &ricevute {
        assert!(tls, "STARTTLS was used");
        assert!(dati.contains(&format!("To: {dest}")));
        assert!(dati.contains("Subject: =?UTF-8?B?"));
        let corpo_b64: String = dati
            .split("\r\n\r\n")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect();
        use base64::Engine;
        let corpo = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(corpo_b64)
                .unwrap(),
        )
        .unwrap();
        assert!(corpo.contains("Seconda metà del PIN: "), "{corpo}");
    }

    // A relay that is down: the attempt is counted and retried later.
    let chiuso = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let porta = chiuso.local_addr().unwrap().port();
    drop(chiuso);
    let giu = Postino::new(p.registry.clone(), ConfigurazioneSmtp { porta, ..cfg });
    let cf = "NUVRMO80A01H501N";
    r.censisci_utente(
        &sistema(),
        ROMA,
        utente_con_email(cf, "nuovo@comune.roma.it"),
        BTreeSet::from([Profilo::OperatoreAnagrafe]),
    )
    .await
    .unwrap();
    let n = r.richiedi_carta(&sistema(), ROMA, cf).await.unwrap();
    for a in [
        AzioneCarta::AvvioProduzione,
        AzioneCarta::ArrivoInPrefettura,
    ] {
        r.evento_carta(&sistema(), &n, a).await.unwrap();
    }
    r.evento_carta(&prefettura, &n, AzioneCarta::Consegna)
        .await
        .unwrap();
    r.evento_carta(&als_roma(), &n, AzioneCarta::Registrazione)
        .await
        .unwrap();
    let g = giu.giro().await.unwrap();
    assert_eq!((g.consegnate, g.rinviate, g.fallite), (0, 1, 0));
    let m = store
        .sicurezza_posta(Some(StatoMail::InCoda), 10)
        .await
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].tentativi, 1);
    assert!(
        m[0].ultimo_errore
            .as_deref()
            .unwrap()
            .contains("connessione"),
        "{:?}",
        m[0].ultimo_errore
    );
    assert!(
        m[0].mail.corpo.contains("Seconda metà del PIN: "),
        "kept until sent"
    );
}

async fn passkeys_bound_to_the_card(backend: common::Backend) {
    use anpr_service::sicurezza::AzioneCarta;
    use anpr_sicurezza::passkey::b64url;
    use anpr_sicurezza::testing::PasskeySoftware;
    let Some((store, _keep)) = common::store(backend).await else {
        return;
    };
    let orologio = Arc::new(Orologio(std::sync::Mutex::new(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    )));
    let uno = processo(store.clone(), orologio.clone(), vec![]).await;
    let due = processo(store.clone(), orologio.clone(), vec![]).await;
    let r = &uno.registry;
    let prefettura = CallerContext {
        comune: Some(ROMA.parse().unwrap()),
        profili: BTreeSet::from([Profilo::AmministratorePrefettura]),
        ..sistema()
    };
    for (cf, p) in [
        (ALS, Profilo::AmministratoreSicurezza),
        (OPERATORE, Profilo::OperatoreAnagrafe),
    ] {
        r.censisci_utente(&sistema(), ROMA, utente(cf), BTreeSet::from([p]))
            .await
            .unwrap();
    }
    let carta = r.richiedi_carta(&sistema(), ROMA, OPERATORE).await.unwrap();
    for a in [
        AzioneCarta::AvvioProduzione,
        AzioneCarta::ArrivoInPrefettura,
    ] {
        r.evento_carta(&sistema(), &carta, a).await.unwrap();
    }
    r.evento_carta(&prefettura, &carta, AzioneCarta::Consegna)
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let post =
        |p: &Processo, path: &str, body: Value| c.post(format!("{}{path}", p.base)).json(&body);
    let operatore = |p: &Processo, path: &str, body: Value| {
        post(p, path, body)
            .header("x-anpr-comune", ROMA)
            .header("x-anpr-utente", OPERATORE)
            .header("x-anpr-profili", "OPERATORE_ANAGRAFE")
    };
    // Before the card is registered to the holder (not active): no passkey.
    let (st, b) = risposta(operatore(
        &uno,
        "/api/v1/sicurezza/passkey/registrazione/opzioni",
        json!({}),
    ))
    .await;
    assert_eq!((st, codici(&b)), (403, vec!["EV205".to_owned()]), "{b}");
    r.evento_carta(&als_roma(), &carta, AzioneCarta::Registrazione)
        .await
        .unwrap();

    // Registration ceremony (packed self-attestation), answered on the other process.
    let mut pk = PasskeySoftware::nuova("localhost");
    let (st, b) = risposta(operatore(
        &uno,
        "/api/v1/sicurezza/passkey/registrazione/opzioni",
        json!({}),
    ))
    .await;
    assert_eq!(st, 200, "{b}");
    let o = &b["publicKey"];
    assert_eq!(o["rp"]["id"], "localhost");
    assert_eq!(o["pubKeyCredParams"][0]["alg"], -7);
    let (cd, att) = pk.registrazione(
        o["challenge"].as_str().unwrap(),
        "https://localhost",
        "packed",
    );
    let registrazione = json!({"id": b64url(&pk.id), "clientDataJSON": b64url(&cd), "attestationObject": b64url(&att)});
    let (st, b) = risposta(operatore(
        &due,
        "/api/v1/sicurezza/passkey/registrazione",
        registrazione.clone(),
    ))
    .await;
    assert_eq!(
        (st, b["id"].as_str()),
        (200, Some(b64url(&pk.id).as_str())),
        "{b}"
    );
    // The same response again: the challenge was used.
    let (st, b) = risposta(operatore(
        &uno,
        "/api/v1/sicurezza/passkey/registrazione",
        registrazione,
    ))
    .await;
    assert_eq!((st, codici(&b)), (403, vec!["EV216".to_owned()]));

    // Login ceremony.
    let accedi = |p: &Processo, pk: &mut PasskeySoftware, sfida: &str, origine: &str| {
        let (cd, ad, sig) = pk.asserzione(sfida, origine);
        post(
            p,
            "/api/v1/sicurezza/passkey/accesso",
            json!({"ente": ROMA, "id": b64url(&pk.id), "clientDataJSON": b64url(&cd),
                   "authenticatorData": b64url(&ad), "signature": b64url(&sig), "userHandle": "eA"}),
        )
    };
    let sfida = |p: &Processo| {
        let req = post(
            p,
            "/api/v1/sicurezza/passkey/accesso/opzioni",
            json!({"ente": ROMA, "codiceFiscale": OPERATORE}),
        );
        async move {
            let (st, b) = risposta(req).await;
            assert_eq!(st, 200, "{b}");
            b["publicKey"]["challenge"].as_str().unwrap().to_owned()
        }
    };
    let s1 = sfida(&uno).await;
    let (st, b) = risposta(accedi(&due, &mut pk, &s1, "https://localhost")).await;
    assert_eq!(st, 200, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();
    assert_eq!(b["profili"], json!(["OPERATORE_ANAGRAFE"]));
    let cerca = |p: &Processo, t: &str| {
        post(
            p,
            "/api/v1/soggetti/ricerca",
            json!({"criteriRicerca": {"cognome": "ROSSI"}}),
        )
        .bearer_auth(t.to_owned())
    };
    assert_eq!(risposta(cerca(&uno, &token)).await.0, 200);
    // The same challenge again, a foreign origin, a cloned authenticator.
    let (st, b) = risposta(accedi(&uno, &mut pk, &s1, "https://localhost")).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV216".to_owned()]));
    let s2 = sfida(&uno).await;
    let (st, b) = risposta(accedi(&uno, &mut pk, &s2, "https://evil.example")).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV216".to_owned()]));
    let s3 = sfida(&uno).await;
    let salvato = pk.contatore;
    pk.contatore = 0;
    let (st, b) = risposta(accedi(&uno, &mut pk, &s3, "https://localhost")).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV219".to_owned()]), "{b}");
    pk.contatore = salvato + 5;

    // The card blocked: the passkey and its open session stop at once; unblocked, both
    // work again (a fresh login); revoked, never again.
    r.evento_carta(&als_roma(), &carta, AzioneCarta::Blocco)
        .await
        .unwrap();
    let (st, b) = risposta(cerca(&due, &token)).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV215".to_owned()]));
    let s4 = sfida(&uno).await;
    let (st, b) = risposta(accedi(&due, &mut pk, &s4, "https://localhost")).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV205".to_owned()]));
    r.evento_carta(&als_roma(), &carta, AzioneCarta::Sblocco)
        .await
        .unwrap();
    let s5 = sfida(&due).await;
    let (st, b) = risposta(accedi(&uno, &mut pk, &s5, "https://localhost")).await;
    assert_eq!(st, 200, "{b}");
    let token5 = b["token"].as_str().unwrap().to_owned();

    // Rome's authorised addresses apply to passkey logins (challenge and login) and
    // to the sessions they opened: from 127.0.0.1, not authorised, EV233; lifted, the
    // session works again.
    let s_ip = sfida(&uno).await;
    r.imposta_indirizzi_autorizzati(&sistema(), ROMA, vec!["10.9.9.9".parse().unwrap()])
        .await
        .unwrap();
    let (st, b) = risposta(post(
        &uno,
        "/api/v1/sicurezza/passkey/accesso/opzioni",
        json!({"ente": ROMA, "codiceFiscale": OPERATORE}),
    ))
    .await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]), "{b}");
    let (st, b) = risposta(accedi(&due, &mut pk, &s_ip, "https://localhost")).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]), "{b}");
    let (st, b) = risposta(cerca(&uno, &token5)).await;
    assert_eq!((st, codici(&b)), (403, vec!["EV233".to_owned()]), "{b}");
    r.imposta_indirizzi_autorizzati(&sistema(), ROMA, vec![])
        .await
        .unwrap();
    assert_eq!(risposta(cerca(&due, &token5)).await.0, 200);
    r.evento_carta(&als_roma(), &carta, AzioneCarta::Sostituzione)
        .await
        .unwrap();
    let s6 = sfida(&uno).await;
    let (st, b) = risposta(accedi(&uno, &mut pk, &s6, "https://localhost")).await;
    assert_eq!(
        (st, codici(&b)),
        (403, vec!["EV205".to_owned()]),
        "bound to the replaced card"
    );

    // Audited.
    let voci = store.audit_page(0, 10_000).await.unwrap();
    let conta = |azione: &str, oggetto: Option<&str>| {
        voci.iter()
            .filter(|v| {
                v.voce.azione == azione
                    && oggetto.is_none_or(|o| v.voce.oggetto.as_deref() == Some(o))
            })
            .count()
    };
    assert_eq!(conta("passkeyRegistrata", None), 1);
    assert_eq!(conta("accessoPasskey", None), 2);
    assert_eq!(conta("accessoFallito", Some("passkey:EV216")), 3);
    assert_eq!(conta("accessoFallito", Some("passkey:EV219")), 1);
    assert_eq!(conta("accessoFallito", Some("passkey:EV205")), 3);
    // The counter seen last is stored (shared by both processes).
    let d = uno.registry.sicurezza_configurata().unwrap().direttorio();
    assert_eq!(
        d.passkey[&b64url(&pk.id)].contatore,
        salvato + 7,
        "the last accepted one"
    );
}

macro_rules! su_entrambi {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(super::common::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(super::common::Backend::Postgres).await;
                }
            }
        )+
    };
}

su_entrambi!(
    authorised_ip_addresses,
    daily_password_sessions,
    security_mails_are_delivered_through_the_relay,
    passkeys_bound_to_the_card
);
