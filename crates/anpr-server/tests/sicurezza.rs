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
const PASSWORD: &str = "una password lunga";

struct Https {
    base: String,
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    ca_pem: String,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn avvia(backend: common::Backend) -> Option<Https> {
    let (store, keep) = common::store(backend).await?;
    let sic = Sicurezza::apri(store.clone(), chrono::Utc::now())
        .await
        .unwrap();
    let mut stores: BTreeMap<Ambiente, Arc<dyn Store>> = BTreeMap::new();
    stores.insert(Ambiente::Test, store.clone());
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
    let richiesta = format!(
        r#"<ns0:Richiesta1002 xmlns:ns0="http://sogei.it/ANPR/1000iscrizione"><testataRichiesta><idOperazioneComune>4</idOperazioneComune><codMittente>{ROMA}</codMittente><codDestinatario>999999</codDestinatario><operazioneRichiesta>1002</operazioneRichiesta><dataOraRichiesta>2026-11-23T10:00:00</dataOraRichiesta><tipoOperazione>C</tipoOperazione><tipoInvio>TEST</tipoInvio><dataDecorrenza>2026-01-10</dataDecorrenza></testataRichiesta><motivoIscrizione><idMotivoIscrizione>4</idMotivoIscrizione></motivoIscrizione><generalita1002><generalita><cognome>Bianchi</cognome><nome>Dora</nome><sesso>F</sesso><dataNascita>1990-03-04</dataNascita><luogoNascita><comune><nomeComune>ROMA</nomeComune><codiceIstat>{ROMA}</codiceIstat><siglaProvinciaIstat>RM</siglaProvinciaIstat></comune></luogoNascita></generalita></generalita1002><cittadinanza><descrizioneStato>ITALIA</descrizioneStato><codiceStato>100</codiceStato></cittadinanza><residenza><tipoIndirizzo>1</tipoIndirizzo><indirizzo><cap>00184</cap><comune><nomeComune>ROMA</nomeComune><codiceIstat>{ROMA}</codiceIstat><siglaProvinciaIstat>RM</siglaProvinciaIstat></comune><toponimo><specie>VIA</specie><denominazioneToponimo>Nazionale</denominazioneToponimo></toponimo><numeroCivico><numero>10</numero></numeroCivico></indirizzo><dataDecorrenzaResidenza>2026-01-10</dataDecorrenzaResidenza></residenza><famiglia><famiglia><tipoScheda>1</tipoScheda></famiglia><legameSoggetto><dataDecorrenza>2026-01-10</dataDecorrenza><codiceLegame>1</codiceLegame></legameSoggetto></famiglia><datiControllo><attribuzioneFamiglia>1</attribuzioneFamiglia></datiControllo></ns0:Richiesta1002>"#
    );
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

    // 10. Every security event is in the audit log, and the chain holds.
    let voci = s.store.audit_page(0, 10_000).await.unwrap();
    let azioni: BTreeSet<&str> = voci.iter().map(|v| v.voce.azione.as_str()).collect();
    for a in [
        "utenteCensito",
        "cartaConsegnata",
        "cartaRegistrata",
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

su_entrambi!(onboarding, anonymous_tls_and_plain_http_production);
