//! Security over real HTTPS with client certificates, on SQLite and PostgreSQL: the
//! onboarding story of seed 003 (census → cards produced → the prefecture delivers to
//! the mayor → the mayor registers the ALS's card → the ALS the others' → the ALP
//! downloads the workstation certificates → an operator registers a subject over mutual
//! TLS, and a signed SOAP message of the municipality's server is verified and executed),
//! revocation taking effect on the next handshake, and `produzione` refused over plain
//! HTTP.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anpr_domain::caller::{Ambiente, CallerContext, Canale, Profilo};
use anpr_server::ServerConfig;
use anpr_service::clock::SystemClock;
use anpr_service::sicurezza::{AzioneCarta, Sicurezza};
use anpr_service::Registry;
use anpr_sicurezza::ca::{pem_blocco, pem_certificato};
use anpr_sicurezza::direttorio::Utente;
use anpr_sicurezza::wssec::{verifica_messaggio, Politica};
use anpr_store::Store;
use serde_json::{json, Value};

const ROMA: &str = "058091";
const SINDACO: &str = "SNDRMO60A01H501S";
const ALS: &str = "LSRMO70A01H501C0";
const ALP: &str = "LPRMO75A01H501P0";
const OPERATORE: &str = "PRTRMO80A01H501Q";
const PREFETTO: &str = "PRFRMO70A01H501A";
const SUBENTRANTE: &str = "SBNRMO85A01H501K";
const PASSWORD: &str = "una password lunga";

struct Https {
    base: String,
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    ca_pem: String,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn avvia(backend: common::Backend) -> Option<Https> {
    avvia_con(backend, false).await
}

/// A server over mutual TLS on a fresh store; with `produzione`, a second store serves
/// the `produzione` environment and holds the security directory (as in a deployment),
/// and `store` is that one.
async fn avvia_con(backend: common::Backend, produzione: bool) -> Option<Https> {
    let (store, keep) = common::store(backend).await?;
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
    let (store, keep): (Arc<dyn Store>, Box<dyn std::any::Any + Send>) = if produzione {
        let (prod, keep_prod) = common::store(backend).await?;
        stores.insert(Ambiente::Produzione, prod.clone());
        (prod, Box::new((keep, keep_prod)))
    } else {
        (store, keep)
    };
    let sic = Sicurezza::apri(store.clone(), chrono::Utc::now())
        .await
        .unwrap();
    let registry =
        Arc::new(Registry::new(stores, Arc::new(SystemClock)).con_sicurezza(Arc::new(sic)));
    let app = anpr_server::router(
        registry.clone(),
        ServerConfig {
            ambiente_predefinito: Ambiente::Test,
            backend: "test",
            identita_da_header: false,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint =
        anpr_server::tls::certificato_endpoint(&registry, vec!["localhost".into()]).unwrap();
    let ca_pem = registry
        .sicurezza_configurata()
        .unwrap()
        .ca()
        .certificato_pem();
    tokio::spawn(anpr_server::tls::serve_tls(
        listener,
        app,
        registry.clone(),
        endpoint,
        Ambiente::Test,
        std::future::pending(),
    ));
    Some(Https {
        base: format!("https://localhost:{port}"),
        registry,
        store,
        ca_pem,
        _keep: keep,
    })
}

/// Certificate and key PEM out of a PKCS#12 bundle (what a workstation would import).
fn da_pkcs12(p12: &[u8], password: &str) -> String {
    let ks = p12_keystore::KeyStore::from_pkcs12(p12, password).unwrap();
    let (_, catena) = ks.private_key_chain().unwrap();
    format!(
        "{}{}",
        pem_certificato(catena.chain()[0].as_der()),
        pem_blocco("PRIVATE KEY", catena.key())
    )
}

impl Https {
    fn client(&self, identita: Option<&str>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap());
        if let Some(pem) = identita {
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }

    async fn post(&self, c: &reqwest::Client, path: &str, body: &Value) -> (u16, Value) {
        let r = c
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn bytes(&self, c: &reqwest::Client, path: &str, body: &Value) -> Vec<u8> {
        let r = c
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().await.unwrap().to_vec()
    }
}

fn codici(v: &Value) -> Vec<String> {
    v["anomalie"].as_array().map_or_else(Vec::new, |a| {
        a.iter()
            .map(|x| x["codice"].as_str().unwrap_or("").to_owned())
            .collect()
    })
}

fn utente(cf: &str) -> Utente {
    Utente {
        codice_fiscale: cf.into(),
        cognome: "Prova".into(),
        nome: "Utente".into(),
        email: format!("{}@comune.roma.it", cf.to_lowercase()),
        ruoli: Default::default(),
    }
}

fn ctx(comune: Option<&str>, utente: &str, p: Profilo) -> CallerContext {
    CallerContext {
        ambiente: Ambiente::Test,
        comune: comune.map(|c| c.parse().unwrap()),
        utente: utente.into(),
        profili: BTreeSet::from([p]),
        postazione: None,
        canale: Canale::Web,
    }
}

async fn onboarding(s: Https) {
    let r = &s.registry;
    let sistema = ctx(None, "SOGEI", Profilo::GestoreSistema);
    let p = |x: Profilo| BTreeSet::from([x]);
    // 1. Census: users of Rome and of the prefecture, two workstations.
    r.censisci_utente(
        &sistema,
        "058",
        utente(PREFETTO),
        p(Profilo::AmministratorePrefettura),
    )
    .await
    .unwrap();
    for (cf, profilo) in [
        (SINDACO, Profilo::Sindaco),
        (ALS, Profilo::AmministratoreSicurezza),
        (ALP, Profilo::AmministratorePostazioni),
        (OPERATORE, Profilo::OperatoreAnagrafe),
    ] {
        r.censisci_utente(&sistema, ROMA, utente(cf), p(profilo))
            .await
            .unwrap();
    }
    r.dichiara_postazioni(&sistema, ROMA, 2).await.unwrap();
    // 2. Cards requested and produced, at the prefecture.
    let mut carte = BTreeMap::new();
    for cf in [SINDACO, ALS, ALP, OPERATORE] {
        let n = r.richiedi_carta(&sistema, ROMA, cf).await.unwrap();
        r.evento_carta(&sistema, &n, AzioneCarta::AvvioProduzione)
            .await
            .unwrap();
        r.evento_carta(&sistema, &n, AzioneCarta::ArrivoInPrefettura)
            .await
            .unwrap();
        carte.insert(cf, n);
    }
    // 3. The prefecture delivers the batch: only the mayor's card becomes active, and
    //    the mayor is mailed the second halves of PIN and PUK.
    let prefettura = ctx(None, PREFETTO, Profilo::AmministratorePrefettura);
    for cf in [SINDACO, ALS, ALP, OPERATORE] {
        let e = r
            .evento_carta(&prefettura, &carte[cf], AzioneCarta::Consegna)
            .await
            .unwrap();
        assert_eq!(
            e.stato,
            if cf == SINDACO {
                "attiva"
            } else {
                "consegnata"
            },
            "{cf}"
        );
        assert_eq!(e.mail_inviate.len(), usize::from(cf == SINDACO));
        assert_eq!(e.prime_meta.is_some(), cf == SINDACO);
        if let Some(pm) = &e.prime_meta {
            assert_eq!((pm.pin.len(), pm.puk.len()), (4, 5));
        }
    }
    let sindaco = da_pkcs12(
        &r.materiale_carta(&prefettura, &carte[SINDACO], PASSWORD)
            .await
            .unwrap(),
        PASSWORD,
    );
    // The mail is in the store's security outbox, queued with the state change.
    let posta = s.store.sicurezza_posta(None, 10).await.unwrap();
    assert_eq!(posta.len(), 1);
    assert_eq!(
        posta[0].mail.destinatario,
        format!("{}@comune.roma.it", SINDACO.to_lowercase())
    );
    assert!(posta[0].mail.corpo.contains("Seconda metà del PIN: "));
    assert!(posta[0].mail.corpo.contains(&carte[SINDACO]));

    // 4. The mayor, logged in with the card over mutual TLS, registers the ALS's card
    //    (and only that one) and hands it over.
    let c = s.client(Some(&sindaco));
    let (st, b) = s
        .post(
            &c,
            &format!("/api/v1/sicurezza/carte/{}/registrazione", carte[ALS]),
            &json!({}),
        )
        .await;
    assert_eq!((st, b["stato"].as_str()), (200, Some("attiva")), "{b}");
    let (st, b) = s
        .post(
            &c,
            &format!("/api/v1/sicurezza/carte/{}/registrazione", carte[OPERATORE]),
            &json!({}),
        )
        .await;
    assert_eq!((st, codici(&b)), (403, vec!["EA401".to_owned()]));
    let als = da_pkcs12(
        &s.bytes(
            &c,
            &format!("/api/v1/sicurezza/carte/{}/materiale", carte[ALS]),
            &json!({"password": PASSWORD}),
        )
        .await,
        PASSWORD,
    );

    // 5. The ALS registers the others' cards, the ALP's among them.
    let c = s.client(Some(&als));
    let mut materiale = BTreeMap::new();
    for cf in [ALP, OPERATORE] {
        let (st, b) = s
            .post(
                &c,
                &format!("/api/v1/sicurezza/carte/{}/registrazione", carte[cf]),
                &json!({}),
            )
            .await;
        assert_eq!((st, b["stato"].as_str()), (200, Some("attiva")), "{b}");
        let p12 = s
            .bytes(
                &c,
                &format!("/api/v1/sicurezza/carte/{}/materiale", carte[cf]),
                &json!({"password": PASSWORD}),
            )
            .await;
        materiale.insert(cf, da_pkcs12(&p12, PASSWORD));
    }
    // The ALS may not issue workstation certificates.
    let (st, b) = s
        .post(&c, "/api/v1/sicurezza/certificati", &json!({"ente": ROMA}))
        .await;
    assert_eq!((st, codici(&b)), (403, vec!["EA401".to_owned()]));

    // 6. The ALP issues and downloads the workstation certificates and the server's,
    //    and records the installation in the register.
    let c = s.client(Some(&materiale[ALP]));
    let (st, b) = s
        .post(&c, "/api/v1/sicurezza/certificati", &json!({"ente": ROMA}))
        .await;
    assert_eq!(st, 200, "{b}");
    let seriali: Vec<u64> = serde_json::from_value(b["seriali"].clone()).unwrap();
    assert_eq!(seriali.len(), 3, "two workstations and the server");
    let d = r.sicurezza_configurata().unwrap().direttorio();
    let seriale = |cn: &str| d.certificato_attuale(cn).unwrap().emesso.seriale;
    let (pc1, server) = (seriale("058091-PC-0001"), seriale("058091-SERVER"));
    let pc1_pem = da_pkcs12(
        &s.bytes(
            &c,
            &format!("/api/v1/sicurezza/certificati/{pc1}/pkcs12"),
            &json!({"ente": ROMA, "password": PASSWORD}),
        )
        .await,
        PASSWORD,
    );
    let server_p12 = s
        .bytes(
            &c,
            &format!("/api/v1/sicurezza/certificati/{server}/pkcs12"),
            &json!({"ente": ROMA, "password": PASSWORD}),
        )
        .await;
    let (st, _) = s
        .post(
            &c,
            &format!("/api/v1/sicurezza/certificati/{pc1}/pkcs12"),
            &json!({"ente": ROMA, "password": "corta"}),
        )
        .await;
    assert_eq!(st, 422);
    let (st, b) = s
        .post(
            &c,
            &format!("/api/v1/sicurezza/certificati/{pc1}/installazione"),
            &json!({"ente": ROMA, "mac": "00:1A:2B:3C:4D:5E", "nomeComputer": "ANAGRAFE-01"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .post(
            &c,
            "/api/v1/sicurezza/registro-postazioni/verifica",
            &json!({}),
        )
        .await;
    assert_eq!((st, b["voci"].as_u64()), (200, Some(3 + 2 + 1)), "{b}");

    // 7. The operator registers a subject over mutual TLS with their card.
    let c = s.client(Some(&materiale[OPERATORE]));
    let body = json!({
        "idOperazioneComune": "1", "motivoIscrizione": {"idMotivoIscrizione": "4"}, "dataDecorrenza": "2026-01-10",
        "generalita": {"cognome": "Bianchi", "nome": "Anna", "sesso": "F", "dataNascita": "1990-03-04", "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}], "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": ROMA, "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": {"codiceLegame": "1"}
    });
    let (st, b) = s.post(&c, "/api/v1/operazioni/1002", &body).await;
    assert_eq!((st, b["esito"].as_str()), (200, Some("OK")), "{b}");
    let op = s
        .store
        .operation(b["idOperazioneANPR"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.utente, OPERATORE);
    // The ALP cannot register subjects.
    let (st, b) = s
        .post(
            &s.client(Some(&materiale[ALP])),
            "/api/v1/operazioni/1002",
            &body,
        )
        .await;
    assert_eq!((st, codici(&b)), (403, vec!["EA401".to_owned()]));
    // Identity headers are refused on a certificate connection.
    let r2 = c
        .post(format!("{}/api/v1/operazioni/1002", s.base))
        .header("x-anpr-utente", ALS)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 403);

    // 8. A SOAP request of the municipality's software, signed by the server
    //    certificate the ALP downloaded, verified with our CA, CRL and directory.
    let server_cert = {
        let ks = p12_keystore::KeyStore::from_pkcs12(&server_p12, PASSWORD).unwrap();
        let (_, catena) = ks.private_key_chain().unwrap();
        let mut cert = d.certificati[&server].emesso.clone();
        assert_eq!(cert.der, catena.chain()[0].as_der());
        cert.chiave_pkcs8 = catena.key().to_vec();
        cert
    };
    let adesso = chrono::Utc::now();
    let busta =
        anpr_sicurezza::testing::busta(OPERATORE, "<iscrizione xmlns=\"urn:anpr\"/>", adesso);
    let firmato = anpr_sicurezza::testing::firma_xmlsec1(&busta, &server_cert);
    let sic = r.sicurezza_configurata().unwrap();
    let fiducia = sic.fiducia();
    let mittente = verifica_messaggio(
        &firmato,
        &Politica::standard(&fiducia, adesso),
        &*sic.direttorio(),
        &[Profilo::OperatoreAnagrafe],
        None,
    )
    .unwrap();
    let soap = CallerContext {
        ambiente: Ambiente::Test,
        comune: Some(mittente.firma.comune.parse().unwrap()),
        utente: mittente.firma.utente.clone(),
        profili: mittente.profili.clone(),
        postazione: mittente.firma.postazione.clone(),
        canale: Canale::Soap,
    };
    let mut body2 = body.clone();
    body2["idOperazioneComune"] = json!("2");
    body2["generalita"]["nome"] = json!("Bruna");
    let req = serde_json::from_value(body2.clone()).unwrap();
    assert!(
        r.iscrizione_altri_motivi(&soap, &req, &body2)
            .await
            .unwrap()
            .eseguita
    );

    // 8b. The same software over REST: the body signed with `Agid-JWT-Signature`.
    let mut body3 = body.clone();
    body3["idOperazioneComune"] = json!("3");
    body3["generalita"]["nome"] = json!("Carla");
    let corpo = serde_json::to_vec(&body3).unwrap();
    let jws = anpr_sicurezza::testing::firma_jws(
        &server_cert,
        OPERATORE,
        adesso.timestamp(),
        300,
        &corpo,
    );
    let anonimo = s.client(None);
    let invia = |corpo: Vec<u8>| {
        anonimo
            .post(format!("{}/api/v1/operazioni/1002", s.base))
            .header("content-type", "application/json")
            .header("agid-jwt-signature", jws.clone())
            .body(corpo)
            .send()
    };
    let risposta = invia(corpo.clone()).await.unwrap();
    assert_eq!(risposta.status(), 200);
    let b: Value = risposta.json().await.unwrap();
    let op = s
        .store
        .operation(b["idOperazioneANPR"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (op.utente.as_str(), op.canale.as_str()),
        (OPERATORE, "rest")
    );
    let alterato = String::from_utf8(corpo)
        .unwrap()
        .replace("Carla", "Carlo")
        .into_bytes();
    let risposta = invia(alterato).await.unwrap();
    assert_eq!(risposta.status(), 403);
    assert_eq!(
        codici(&risposta.json().await.unwrap()),
        vec!["EV223".to_owned()]
    );

    // 8c. The same software through the SOAP endpoint over mutual TLS from workstation
    //     PC-0001 (its certificate presented at the handshake): a Richiesta1002 signed
    //     with WS-Security by xmlsec1 is verified at the edge and executed as the signed
    //     user at that workstation; the same message with the body altered after
    //     signing is a fault (EV223).
    let richiesta = richiesta_1002("4", "Dora", "TEST");
    let firmata = anpr_sicurezza::testing::firma_xmlsec1(
        &anpr_sicurezza::testing::busta(OPERATORE, &richiesta, adesso),
        &server_cert,
    );
    let postazione = s.client(Some(&pc1_pem));
    let soap = |corpo: Vec<u8>| {
        postazione
            .post(format!("{}/ws/AnprService1000", s.base))
            .header("content-type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .body(corpo)
            .send()
    };
    let risposta = soap(firmata.clone()).await.unwrap();
    let (st, testo) = (risposta.status().as_u16(), risposta.text().await.unwrap());
    assert_eq!(st, 200, "{testo}");
    assert!(
        testo.contains("<esitoOperazione>2</esitoOperazione>"),
        "{testo}"
    );
    let da = testo.find("<idOperazioneANPR>").unwrap() + "<idOperazioneANPR>".len();
    let id_op: u64 = testo[da..da + testo[da..].find('<').unwrap()]
        .parse()
        .unwrap();
    let op = s
        .store
        .operation(anpr_domain::ids::IdOperazioneAnpr::new(id_op).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            op.utente.as_str(),
            op.canale.as_str(),
            op.codice_servizio.as_str(),
            op.postazione.as_deref()
        ),
        (OPERATORE, "soap", "1002", Some("058091-PC-0001")),
        "the workstation verified at the handshake is in the caller context"
    );
    // 8d. A request naming its workstation (issue 7 item 5): the server's signature and
    //     a second one by workstation PC-0002's certificate over the `anpr:Postazione`
    //     element and the server's signature, both made by xmlsec1. Over a connection
    //     with the municipality's server certificate the signed workstation is the
    //     caller's; over PC-0001's connection the two disagree (EA402).
    let pc2_cert = d
        .certificato_attuale("058091-PC-0002")
        .unwrap()
        .emesso
        .clone();
    let con_postazione = anpr_sicurezza::testing::firma_xmlsec1_postazione(
        &anpr_sicurezza::testing::busta_con_postazione(
            OPERATORE,
            &richiesta
                .replace("<idOperazioneComune>4<", "<idOperazioneComune>5<")
                .replace("<nome>Dora</nome>", "<nome>Elsa</nome>"),
            "058091-PC-0002",
            adesso,
        ),
        &server_cert,
        &pc2_cert,
    );
    let server_pem = format!("{}{}", server_cert.pem(), server_cert.chiave_pem());
    let risposta = s
        .client(Some(&server_pem))
        .post(format!("{}/ws/AnprService1000", s.base))
        .header("content-type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(con_postazione.clone())
        .send()
        .await
        .unwrap();
    let (st, testo) = (risposta.status().as_u16(), risposta.text().await.unwrap());
    assert_eq!(st, 200, "{testo}");
    assert_eq!(
        operazione_soap(&s, &testo).await.postazione.as_deref(),
        Some("058091-PC-0002"),
        "the workstation proved by its signature is in the caller context"
    );
    let risposta = soap(con_postazione).await.unwrap();
    let (st, testo) = (risposta.status().as_u16(), risposta.text().await.unwrap());
    assert_eq!(st, 403, "{testo}");
    assert!(testo.contains("EA402"), "{testo}");
    // A signed message over a connection with another person's card is refused.
    let r_carta = s
        .client(Some(&materiale[ALP]))
        .post(format!("{}/ws/AnprService1000", s.base))
        .header("content-type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(firmata.clone())
        .send()
        .await
        .unwrap();
    let (st, testo) = (r_carta.status().as_u16(), r_carta.text().await.unwrap());
    assert_eq!(st, 403, "{testo}");
    assert!(testo.contains("EA402"), "{testo}");
    let alterata = String::from_utf8(firmata.clone())
        .unwrap()
        .replace("<nome>Dora</nome>", "<nome>Dario</nome>")
        .into_bytes();
    let risposta = soap(alterata).await.unwrap();
    let (st, testo) = (risposta.status().as_u16(), risposta.text().await.unwrap());
    assert_eq!(st, 403, "{testo}");
    assert!(testo.contains("EV223"), "{testo}");

    // 9. A workstation connects with its certificate (public permissions only); once
    //    the ALP revokes it, the next handshake is refused and the SOAP check says so.
    let (st, _) = s
        .post(
            &s.client(Some(&pc1_pem)),
            "/api/v1/codice-fiscale/verifica",
            &json!({"codiceFiscale": "RSSMRA80A01H501U"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, b) = s
        .post(
            &s.client(Some(&materiale[ALP])),
            &format!("/api/v1/sicurezza/certificati/{pc1}/revoca"),
            &json!({"ente": ROMA}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let rifiutata = s
        .client(Some(&pc1_pem))
        .get(format!("{}/api/v1/tabelle", s.base))
        .send()
        .await;
    assert!(
        rifiutata.is_err(),
        "revoked certificate accepted: {rifiutata:?}"
    );
    // The connection opened before the revocation is still up: its next signed SOAP
    // request is refused with the precise code, audited.
    let risposta = soap(firmata.clone()).await.unwrap();
    let (st, testo) = (risposta.status().as_u16(), risposta.text().await.unwrap());
    assert_eq!(st, 403, "{testo}");
    assert!(testo.contains("EV209"), "{testo}");
    let (st, b) = s
        .post(
            &s.client(Some(&materiale[ALP])),
            &format!("/api/v1/sicurezza/certificati/{server}/revoca"),
            &json!({"ente": ROMA, "bloccato": true}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let fiducia = sic.fiducia();
    let err = verifica_messaggio(
        &firmato,
        &Politica::standard(&fiducia, adesso),
        &*sic.direttorio(),
        &[Profilo::OperatoreAnagrafe],
        None,
    )
    .unwrap_err();
    assert_eq!(err.codice(), "EV226");

    // 9b. The ALS replaces the operator's card: the old card stops at once — the
    //     operator's connection still open is refused (EV205) and a new handshake with
    //     the old certificate fails (it is on the CRL).
    let (st, b) = s
        .post(
            &s.client(Some(&als)),
            &format!("/api/v1/sicurezza/carte/{}/sostituzione", carte[OPERATORE]),
            &json!({}),
        )
        .await;
    assert_eq!((st, b["stato"].as_str()), (200, Some("sostituita")), "{b}");
    let (st, b) = s
        .post(
            &c,
            "/api/v1/codice-fiscale/verifica",
            &json!({"codiceFiscale": "RSSMRA80A01H501U"}),
        )
        .await;
    assert_eq!((st, codici(&b)), (403, vec!["EV205".to_owned()]), "{b}");
    let nuova_connessione = s
        .client(Some(&materiale[OPERATORE]))
        .get(format!("{}/api/v1/tabelle", s.base))
        .send()
        .await;
    assert!(
        nuova_connessione.is_err(),
        "replaced card accepted: {nuova_connessione:?}"
    );

    // 10. Every security event is in the audit log, and the chain holds.
    let voci = s.store.audit_page(0, 10_000).await.unwrap();
    let azioni: BTreeSet<&str> = voci.iter().map(|v| v.voce.azione.as_str()).collect();
    for a in [
        "utenteCensito",
        "cartaConsegnata",
        "cartaRegistrata",
        "cartaSostituita",
        "certificatiEmessi",
        "certificatoScaricato",
        "certificatoInstallato",
        "certificatoRevocato",
        "certificatoBloccato",
        "accesso",
    ] {
        assert!(azioni.contains(a), "{a} not audited: {azioni:?}");
    }
    assert!(voci
        .iter()
        .any(|v| v.voce.evento == anpr_domain::audit::TipoEvento::AccessoNegato));
    // The CA is the one kept in the store (another process would get the same).
    let salvata = s
        .store
        .sicurezza_ca(anpr_store::sicurezza::CaSicurezza {
            certificato_der: vec![0],
            chiave_pem: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        salvata.certificato_der,
        r.sicurezza_configurata().unwrap().ca().certificato_der()
    );
}

/// A `Richiesta1002` (registration from abroad, Rome) with `idOperazioneComune` `id`,
/// first name `nome`, `tipoInvio` `invio` (TEST or PROD).
fn richiesta_1002(id: &str, nome: &str, invio: &str) -> String {
    format!(
        r#"<ns0:Richiesta1002 xmlns:ns0="http://sogei.it/ANPR/1000iscrizione"><testataRichiesta><idOperazioneComune>{id}</idOperazioneComune><codMittente>{ROMA}</codMittente><codDestinatario>999999</codDestinatario><operazioneRichiesta>1002</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta><tipoOperazione>C</tipoOperazione><tipoInvio>{invio}</tipoInvio><dataDecorrenza>2026-01-10</dataDecorrenza></testataRichiesta><motivoIscrizione><idMotivoIscrizione>4</idMotivoIscrizione></motivoIscrizione><generalita1002><generalita><cognome>Bianchi</cognome><nome>{nome}</nome><sesso>F</sesso><dataNascita>1990-03-04</dataNascita><luogoNascita><comune><nomeComune>ROMA</nomeComune><codiceIstat>{ROMA}</codiceIstat><siglaProvinciaIstat>RM</siglaProvinciaIstat></comune></luogoNascita></generalita></generalita1002><cittadinanza><descrizioneStato>ITALIA</descrizioneStato><codiceStato>100</codiceStato></cittadinanza><residenza><tipoIndirizzo>1</tipoIndirizzo><indirizzo><cap>00184</cap><comune><nomeComune>ROMA</nomeComune><codiceIstat>{ROMA}</codiceIstat><siglaProvinciaIstat>RM</siglaProvinciaIstat></comune><toponimo><specie>VIA</specie><denominazioneToponimo>Nazionale</denominazioneToponimo></toponimo><numeroCivico><numero>10</numero></numeroCivico></indirizzo><dataDecorrenzaResidenza>2026-01-10</dataDecorrenzaResidenza></residenza><famiglia><famiglia><tipoScheda>1</tipoScheda></famiglia><legameSoggetto><dataDecorrenza>2026-01-10</dataDecorrenza><codiceLegame>1</codiceLegame></legameSoggetto></famiglia><datiControllo><attribuzioneFamiglia>1</attribuzioneFamiglia></datiControllo></ns0:Richiesta1002>"#
    )
}

/// The operation a SOAP answer reports (`idOperazioneANPR`).
async fn operazione_soap(s: &Https, testo: &str) -> anpr_store::StoredOperation {
    let da = testo.find("<idOperazioneANPR>").unwrap() + "<idOperazioneANPR>".len();
    let id: u64 = testo[da..da + testo[da..].find('<').unwrap()]
        .parse()
        .unwrap();
    s.store
        .operation(anpr_domain::ids::IdOperazioneAnpr::new(id).unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// The operation a successful REST answer reports (status 200 asserted).
async fn operazione_rest(s: &Https, r: reqwest::Response) -> anpr_store::StoredOperation {
    let st = r.status().as_u16();
    let b: Value = r.json().await.unwrap();
    assert_eq!(st, 200, "{b}");
    s.store
        .operation(b["idOperazioneANPR"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn anonymous_tls_and_plain_http_production(s: Https) {
    // Over TLS without a certificate: public permissions only.
    let c = s.client(None);
    let (st, _) = s
        .post(
            &c,
            "/api/v1/codice-fiscale/verifica",
            &json!({"codiceFiscale": "RSSMRA80A01H501U"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, b) = s
        .post(
            &c,
            "/api/v1/sicurezza/postazioni",
            &json!({"ente": ROMA, "numero": 3}),
        )
        .await;
    assert_eq!((st, codici(&b)), (403, vec!["EA401".to_owned()]));
    // Plain HTTP: produzione is refused.
    let plain = common::start(common::Backend::Sqlite).await.unwrap();
    let r = plain
        .client
        .post(format!("{}/api/v1/codice-fiscale/verifica", plain.base))
        .header("x-anpr-ambiente", "produzione")
        .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(codici(&b), vec!["EV240".to_owned()]);
}

/// Rome's municipality ready for its software: an operator and a security
/// administrator censused, two workstations, the certificates issued (taken with their
/// keys from the directory, as the ALP would download them).
struct Comune {
    server: anpr_sicurezza::ca::CertificatoEmesso,
    pc1: anpr_sicurezza::ca::CertificatoEmesso,
    pc2: anpr_sicurezza::ca::CertificatoEmesso,
}

async fn prepara_comune(s: &Https) -> Comune {
    let r = &s.registry;
    let sistema = ctx(None, "SOGEI", Profilo::GestoreSistema);
    for (cf, p) in [
        (OPERATORE, Profilo::OperatoreAnagrafe),
        (ALS, Profilo::AmministratoreSicurezza),
    ] {
        r.censisci_utente(&sistema, ROMA, utente(cf), BTreeSet::from([p]))
            .await
            .unwrap();
    }
    r.dichiara_postazioni(&sistema, ROMA, 2).await.unwrap();
    r.emetti_certificati_postazione(&alp_roma(), ROMA)
        .await
        .unwrap();
    let d = r.sicurezza_configurata().unwrap().direttorio();
    let c = |cn: &str| d.certificato_attuale(cn).unwrap().emesso.clone();
    Comune {
        server: c("058091-SERVER"),
        pc1: c("058091-PC-0001"),
        pc2: c("058091-PC-0002"),
    }
}

/// Rome's workstation administrator.
fn alp_roma() -> CallerContext {
    CallerContext {
        comune: Some(ROMA.parse().unwrap()),
        ..ctx(None, ALP, Profilo::AmministratorePostazioni)
    }
}

/// Certificate and key as PEM, for a TLS client identity.
fn identita(c: &anpr_sicurezza::ca::CertificatoEmesso) -> String {
    format!("{}{}", c.pem(), c.chiave_pem())
}

/// Posts a SOAP request to `/ws/AnprService1000`; status and text.
async fn invia_soap(s: &Https, c: &reqwest::Client, corpo: Vec<u8>) -> (u16, String) {
    let r = c
        .post(format!("{}/ws/AnprService1000", s.base))
        .header("content-type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(corpo)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A REST registration (1002) of Rome, `idOperazioneComune` `id`.
fn iscrizione_rest(id: &str, nome: &str) -> Value {
    json!({
        "idOperazioneComune": id, "motivoIscrizione": {"idMotivoIscrizione": "4"}, "dataDecorrenza": "2026-01-10",
        "generalita": {"cognome": "Verdi", "nome": nome, "sesso": "F", "dataNascita": "1990-03-04", "luogoNascita": "Z404"},
        "cittadinanza": [{"codiceStato": "100"}], "provenienza": {"codiceStato": "404"},
        "residenza": {"comune": ROMA, "cap": "00184", "toponimo": {"specie": "VIA", "denominazioneToponimo": "Nazionale"}, "numeroCivico": {"numero": "10"}},
        "famiglia": {"codiceLegame": "1"}
    })
}

/// How many `accessoFallito` entries of `store` have `oggetto`.
async fn rifiuti(store: &Arc<dyn Store>, oggetto: &str) -> usize {
    store
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|v| v.voce.azione == "accessoFallito" && v.voce.oggetto.as_deref() == Some(oggetto))
        .count()
}

/// In `produzione` (issue 7 items 1 and 2): a signed SOAP message must prove its
/// workstation — the workstation's own signature, or mutual TLS with the workstation
/// certificate — else EV234; machine-to-machine REST calls identified by a
/// workstation or server certificate must be signed (`Agid-JWT-Signature`), else
/// EV236; a person's session is not concerned. Every refusal is audited.
async fn production_needs_a_proved_workstation_and_signed_rest(s: Https) {
    let m = prepara_comune(&s).await;
    let adesso = chrono::Utc::now();
    let via_server = s.client(Some(&identita(&m.server)));
    let via_pc1 = s.client(Some(&identita(&m.pc1)));

    // SOAP, signed by the server certificate only, over its own TLS connection: no
    // workstation is proved, refused in produzione ...
    let solo_server = anpr_sicurezza::testing::firma_xmlsec1(
        &anpr_sicurezza::testing::busta(OPERATORE, &richiesta_1002("1", "Anna", "PROD"), adesso),
        &m.server,
    );
    let (st, testo) = invia_soap(&s, &via_server, solo_server.clone()).await;
    assert_eq!(st, 403, "{testo}");
    assert!(testo.contains("EV234"), "{testo}");
    assert_eq!(rifiuti(&s.store, "postazione:EV234").await, 1);
    // ... accepted in the test environment (the rule is production's) ...
    let in_test = anpr_sicurezza::testing::firma_xmlsec1(
        &anpr_sicurezza::testing::busta(OPERATORE, &richiesta_1002("2", "Bice", "TEST"), adesso),
        &m.server,
    );
    let (st, testo) = invia_soap(&s, &via_server, in_test).await;
    assert_eq!(st, 200, "{testo}");
    assert!(
        testo.contains("<esitoOperazione>2</esitoOperazione>"),
        "{testo}"
    );
    // ... and in produzione from workstation PC-0001 over mutual TLS.
    let (st, testo) = invia_soap(&s, &via_pc1, solo_server).await;
    assert_eq!(st, 200, "{testo}");
    assert_eq!(
        operazione_soap(&s, &testo).await.postazione.as_deref(),
        Some("058091-PC-0001")
    );
    // With the workstation's signature (PC-0002) the server's connection suffices.
    let due_firme = anpr_sicurezza::testing::firma_xmlsec1_postazione(
        &anpr_sicurezza::testing::busta_con_postazione(
            OPERATORE,
            &richiesta_1002("3", "Carla", "PROD"),
            "058091-PC-0002",
            adesso,
        ),
        &m.server,
        &m.pc2,
    );
    let (st, testo) = invia_soap(&s, &via_server, due_firme).await;
    assert_eq!(st, 200, "{testo}");
    assert_eq!(
        operazione_soap(&s, &testo).await.postazione.as_deref(),
        Some("058091-PC-0002")
    );

    // REST: a workstation or server certificate alone is refused in produzione ...
    let verifica_cf = |c: &reqwest::Client| {
        c.post(format!("{}/api/v1/codice-fiscale/verifica", s.base))
            .header("x-anpr-ambiente", "produzione")
            .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"}))
            .send()
    };
    for c in [&via_pc1, &via_server] {
        let r = verifica_cf(c).await.unwrap();
        assert_eq!(r.status(), 403);
        let b: Value = r.json().await.unwrap();
        assert_eq!(codici(&b), vec!["EV236".to_owned()], "{b}");
    }
    assert_eq!(rifiuti(&s.store, "firmaRest:EV236").await, 2);
    // ... not in the test environment ...
    let r = via_pc1
        .post(format!("{}/api/v1/codice-fiscale/verifica", s.base))
        .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ... and a signed request from the same workstation is the signed user's.
    let corpo = serde_json::to_vec(&iscrizione_rest("4", "Dina")).unwrap();
    let jws =
        anpr_sicurezza::testing::firma_jws(&m.server, OPERATORE, adesso.timestamp(), 300, &corpo);
    let r = via_pc1
        .post(format!("{}/api/v1/operazioni/1002", s.base))
        .header("x-anpr-ambiente", "produzione")
        .header("content-type", "application/json")
        .header("agid-jwt-signature", jws)
        .body(corpo)
        .send()
        .await
        .unwrap();
    let op = operazione_rest(&s, r).await;
    assert_eq!(
        (
            op.utente.as_str(),
            op.canale.as_str(),
            op.postazione.as_deref()
        ),
        (OPERATORE, "rest", Some("058091-PC-0001"))
    );

    // Signed by the server over the server's connection: no workstation proved, EV234
    // (audited) as for SOAP; endorsed by workstation PC-0002's own JWS it is accepted
    // and recorded as PC-0002's; a workstation JWS endorsing another request is not.
    let corpo = serde_json::to_vec(&iscrizione_rest("5", "Elsa")).unwrap();
    let jws =
        anpr_sicurezza::testing::firma_jws(&m.server, OPERATORE, adesso.timestamp(), 300, &corpo);
    let firmata = |postazione: Option<String>| {
        let mut r = via_server
            .post(format!("{}/api/v1/operazioni/1002", s.base))
            .header("x-anpr-ambiente", "produzione")
            .header("content-type", "application/json")
            .header("agid-jwt-signature", &jws)
            .body(corpo.clone());
        if let Some(p) = postazione {
            r = r.header("anpr-postazione-signature", p);
        }
        r.send()
    };
    let r = firmata(None).await.unwrap();
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(codici(&b), vec!["EV234".to_owned()], "{b}");
    assert_eq!(rifiuti(&s.store, "postazione:EV234").await, 2);
    let d_altra = anpr_sicurezza::testing::firma_jws(
        &m.server,
        OPERATORE,
        adesso.timestamp() + 1,
        300,
        &corpo,
    );
    let pc2_altra = anpr_sicurezza::testing::firma_jws_postazione(
        &m.pc2,
        "058091-PC-0002",
        &d_altra,
        adesso.timestamp(),
        300,
    );
    let r = firmata(Some(pc2_altra)).await.unwrap();
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(codici(&b), vec!["EV222".to_owned()], "{b}");
    let pc2 = anpr_sicurezza::testing::firma_jws_postazione(
        &m.pc2,
        "058091-PC-0002",
        &jws,
        adesso.timestamp(),
        300,
    );
    let r = firmata(Some(pc2)).await.unwrap();
    let op = operazione_rest(&s, r).await;
    assert_eq!(op.postazione.as_deref(), Some("058091-PC-0002"));

    // A person's session (daily password) from the workstation: as before.
    let als = CallerContext {
        comune: Some(ROMA.parse().unwrap()),
        ..ctx(None, ALS, Profilo::AmministratoreSicurezza)
    };
    let password = s
        .registry
        .concedi_password_giornaliera(&als, ROMA, OPERATORE)
        .await
        .unwrap();
    let r = via_pc1
        .post(format!(
            "{}/api/v1/sicurezza/accesso/password-giornaliera",
            s.base
        ))
        .header("x-anpr-ambiente", "produzione")
        .json(&json!({"ente": ROMA, "codiceFiscale": OPERATORE, "password": password}))
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    let token = b["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{b}"))
        .to_owned();
    let r = via_pc1
        .post(format!("{}/api/v1/codice-fiscale/verifica", s.base))
        .header("x-anpr-ambiente", "produzione")
        .bearer_auth(&token)
        .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn stato_e_testo(r: reqwest::Response) -> (u16, String) {
    let st = r.status().as_u16();
    (st, r.text().await.unwrap())
}

/// One request through every edge of Rome's callers over mutual TLS: REST identified
/// by the workstation certificate, REST signed by the server certificate
/// (registration `id`), SOAP with both signatures (registration `id + 1`), the
/// daily-password login, the session `token`.
async fn ogni_bordo(
    s: &Https,
    m: &Comune,
    password: &str,
    token: &str,
    id: u32,
) -> Vec<(&'static str, (u16, String))> {
    let adesso = chrono::Utc::now();
    let via_pc1 = s.client(Some(&identita(&m.pc1)));
    let via_server = s.client(Some(&identita(&m.server)));
    let anonimo = s.client(None);
    let verifica_cf = |c: &reqwest::Client| {
        c.post(format!("{}/api/v1/codice-fiscale/verifica", s.base))
            .json(&json!({"codiceFiscale": "RSSMRA80A01H501U"}))
    };
    let mut esiti = Vec::new();
    let r = verifica_cf(&via_pc1).send().await.unwrap();
    esiti.push(("certificato", stato_e_testo(r).await));
    let corpo = serde_json::to_vec(&iscrizione_rest(&id.to_string(), "Ester")).unwrap();
    let jws =
        anpr_sicurezza::testing::firma_jws(&m.server, OPERATORE, adesso.timestamp(), 300, &corpo);
    let r = anonimo
        .post(format!("{}/api/v1/operazioni/1002", s.base))
        .header("content-type", "application/json")
        .header("agid-jwt-signature", jws)
        .body(corpo)
        .send()
        .await
        .unwrap();
    esiti.push(("firmaRest", stato_e_testo(r).await));
    let soap = anpr_sicurezza::testing::firma_xmlsec1_postazione(
        &anpr_sicurezza::testing::busta_con_postazione(
            OPERATORE,
            &richiesta_1002(&(id + 1).to_string(), "Fede", "TEST"),
            "058091-PC-0002",
            adesso,
        ),
        &m.server,
        &m.pc2,
    );
    esiti.push(("soap", invia_soap(s, &via_server, soap).await));
    let r = anonimo
        .post(format!(
            "{}/api/v1/sicurezza/accesso/password-giornaliera",
            s.base
        ))
        .json(&json!({"ente": ROMA, "codiceFiscale": OPERATORE, "password": password}))
        .send()
        .await
        .unwrap();
    esiti.push(("password", stato_e_testo(r).await));
    let r = verifica_cf(&anonimo)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    esiti.push(("sessione", stato_e_testo(r).await));
    esiti
}

/// The municipality's authorised addresses at every edge over mutual TLS (issue 7
/// item 3): certificate-identified REST, signed REST, signed SOAP, the daily-password
/// login and its session. The server listens on 127.0.0.1; Rome authorises 10.9.9.9
/// only (every edge refuses, EV233, audited), then 127.0.0.1 (every edge passes).
async fn authorised_addresses_at_every_tls_edge(s: Https) {
    let m = prepara_comune(&s).await;
    let r = &s.registry;
    let sistema = ctx(None, "SOGEI", Profilo::GestoreSistema);
    let als = CallerContext {
        comune: Some(ROMA.parse().unwrap()),
        ..ctx(None, ALS, Profilo::AmministratoreSicurezza)
    };
    let password = r
        .concedi_password_giornaliera(&als, ROMA, OPERATORE)
        .await
        .unwrap();
    let b: Value = s
        .client(None)
        .post(format!(
            "{}/api/v1/sicurezza/accesso/password-giornaliera",
            s.base
        ))
        .json(&json!({"ente": ROMA, "codiceFiscale": OPERATORE, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = b["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{b}"))
        .to_owned();

    r.imposta_indirizzi_autorizzati(&sistema, ROMA, vec!["10.9.9.9".parse().unwrap()])
        .await
        .unwrap();
    let esiti = ogni_bordo(&s, &m, &password, &token, 10).await;
    assert_eq!(esiti.len(), 5);
    for (via, (st, testo)) in esiti {
        assert_eq!(st, 403, "{via}: {testo}");
        assert!(testo.contains("EV233"), "{via}: {testo}");
    }
    assert_eq!(rifiuti(&s.store, "ip:127.0.0.1:EV233").await, 5);
    r.imposta_indirizzi_autorizzati(&sistema, ROMA, vec!["127.0.0.1".parse().unwrap()])
        .await
        .unwrap();
    for (via, (st, testo)) in ogni_bordo(&s, &m, &password, &token, 20).await {
        assert_eq!(st, 200, "{via}: {testo}");
    }
}

/// The SOAP forgeries of issue 7's "done means", at the edge over mutual TLS: each
/// refused with its precise fault and audited as a failed login (`wssec:<code>`); a
/// user whose profiles do not allow the operation gets the matrix's EA401.
async fn soap_forgeries_are_refused_at_the_edge(s: Https) {
    let m = prepara_comune(&s).await;
    let adesso = chrono::Utc::now();
    let via_server = s.client(Some(&identita(&m.server)));
    let firma = |utente: &str, id: &str, nome: &str, creato: chrono::DateTime<chrono::Utc>| {
        anpr_sicurezza::testing::firma_xmlsec1_postazione(
            &anpr_sicurezza::testing::busta_con_postazione(
                utente,
                &richiesta_1002(id, nome, "TEST"),
                "058091-PC-0002",
                creato,
            ),
            &m.server,
            &m.pc2,
        )
    };
    let buono = String::from_utf8(firma(OPERATORE, "1", "Gina", adesso)).unwrap();

    let corpo = anpr_sicurezza::testing::estrai(&buono, "<soap:Body", "</soap:Body>");
    let falso = corpo.replace("<nome>Gina</nome>", "<nome>Ugo</nome>");
    let casi: Vec<(&str, Vec<u8>)> = vec![
        ("EV223", buono.replace(&corpo, &falso).into_bytes()),
        (
            "EV222",
            buono
                .replace(&corpo, &falso)
                .replace(
                    "<soap:Header>",
                    &format!("<soap:Header><w:Wrapper xmlns:w=\"urn:w\">{corpo}</w:Wrapper>"),
                )
                .into_bytes(),
        ),
        (
            "EV227",
            firma(
                OPERATORE,
                "2",
                "Gina",
                adesso - chrono::Duration::minutes(10),
            ),
        ),
        ("EV228", firma("ZZZZZZ80A01H501Z", "3", "Gina", adesso)),
    ];
    for (codice, messaggio) in casi {
        let (st, testo) = invia_soap(&s, &via_server, messaggio).await;
        assert_eq!(st, 403, "{codice}: {testo}");
        assert!(testo.contains(codice), "{codice}: {testo}");
        assert_eq!(
            rifiuti(&s.store, &format!("wssec:{codice}")).await,
            1,
            "{codice}"
        );
    }
    // A user without a profile allowing registrations: the matrix refuses (EA401).
    let (st, testo) = invia_soap(&s, &via_server, firma(ALS, "4", "Gina", adesso)).await;
    assert!(testo.contains("EA401"), "{st}: {testo}");
    // The genuine message passes; once workstation PC-0002's certificate is revoked,
    // its signature no longer does (EV226).
    let (st, testo) = invia_soap(&s, &via_server, buono.into_bytes()).await;
    assert_eq!(st, 200, "{testo}");
    s.registry
        .revoca_certificato(&alp_roma(), ROMA, m.pc2.seriale, false)
        .await
        .unwrap();
    let (st, testo) = invia_soap(&s, &via_server, firma(OPERATORE, "5", "Ida", adesso)).await;
    assert_eq!(st, 403, "{testo}");
    assert!(testo.contains("EV226"), "{testo}");
    assert_eq!(rifiuti(&s.store, "wssec:EV226").await, 1);
}

macro_rules! su_entrambi {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    super::$scenario(super::avvia(super::common::Backend::Sqlite).await.unwrap()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(s) = super::avvia(super::common::Backend::Postgres).await {
                        super::$scenario(s).await;
                    }
                }
            }
        )+
    };
}

su_entrambi!(
    onboarding,
    anonymous_tls_and_plain_http_production,
    authorised_addresses_at_every_tls_edge,
    soap_forgeries_are_refused_at_the_edge
);

/// A signed subentro upload (issue 7 item 5 for REST): the body, larger than the 1 MiB
/// any other signed request may carry, is stored on disk while its digest is computed,
/// then streamed to the upload handler. A byte changed after signing is refused
/// (EV223, audited) before the handler runs; the intact one is the signed user's.
async fn a_signed_subentro_upload_is_checked_on_disk(s: Https) {
    let m = prepara_comune(&s).await;
    let sistema = ctx(None, "SOGEI", Profilo::GestoreSistema);
    s.registry
        .censisci_utente(
            &sistema,
            ROMA,
            utente(SUBENTRANTE),
            BTreeSet::from([Profilo::OperatoreSubentro]),
        )
        .await
        .unwrap();
    // From workstation PC-0001 (mutual TLS): production needs a proved workstation.
    let via_pc1 = s.client(Some(&identita(&m.pc1)));
    // Two MiB in a file whose name breaks the naming convention (EN001).
    let confine = "confine-firmato";
    let mut corpo = format!(
        "--{confine}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"non_conforme.xml\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    corpo.extend(std::iter::repeat_n(b' ', 2 * 1024 * 1024));
    corpo.extend(format!("\r\n--{confine}--\r\n").bytes());
    let jws = anpr_sicurezza::testing::firma_jws(
        &m.server,
        SUBENTRANTE,
        chrono::Utc::now().timestamp(),
        300,
        &corpo,
    );
    let invia = |corpo: Vec<u8>| {
        via_pc1
            .post(format!("{}/api/v1/subentro", s.base))
            .header("x-anpr-ambiente", "produzione")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={confine}"),
            )
            .header("agid-jwt-signature", jws.clone())
            .body(corpo)
            .send()
    };
    let mut alterato = corpo.clone();
    let k = alterato.len() / 2;
    alterato[k] = b'x';
    let r = invia(alterato).await.unwrap();
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(codici(&b), vec!["EV223".to_owned()], "{b}");
    assert_eq!(rifiuti(&s.store, "jws:EV223").await, 1);

    let r = invia(corpo).await.unwrap();
    let (st, testo) = stato_e_testo(r).await;
    assert_ne!(st, 403, "{testo}");
    assert!(
        testo.contains("EN001"),
        "the handler read the file: {st} {testo}"
    );
    let audit = s.store.audit_page(0, 10_000).await.unwrap();
    assert!(
        audit.iter().any(|v| v.voce.utente == SUBENTRANTE
            && v.voce
                .oggetto
                .as_deref()
                .is_some_and(|o| o.contains("subentro"))),
        "the upload is the signed user's"
    );
}

/// As `su_entrambi!`, on a server that also serves `produzione`.
macro_rules! su_entrambi_con_produzione {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    super::$scenario(super::avvia_con(super::common::Backend::Sqlite, true).await.unwrap()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(s) = super::avvia_con(super::common::Backend::Postgres, true).await {
                        super::$scenario(s).await;
                    }
                }
            }
        )+
    };
}

su_entrambi_con_produzione!(
    production_needs_a_proved_workstation_and_signed_rest,
    a_signed_subentro_upload_is_checked_on_disk
);
