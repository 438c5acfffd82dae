//! Shared set-up: a seeded simulator reached in process and over real HTTP.

#![allow(dead_code)]

use std::sync::Arc;

use anpr_ae::{
    AgenziaEntrate, ClientHttp, ConfigurazioneClientHttp, DatiAnagraficiAe, EsitoAe, GestioneCf,
    PosizioneSeme, RichiestaAe, RichiestaAllineamento, RichiestaCollegamento, Simulatore,
    StatoSeme,
};
use anpr_domain::codice_fiscale::CodiceFiscaleSoggetto;
use anpr_domain::error::Gravita;
use anpr_domain::ids::Sesso;
use chrono::NaiveDate;

/// Roma.
pub const ROMA: &str = "058091";
/// Milano.
pub const MILANO: &str = "015146";
/// A formally valid numeric provisional code.
pub const NUMERICO: &str = "01234567897";

/// One way of reaching a simulator.
pub struct Banco {
    pub nome: &'static str,
    pub ae: Arc<dyn AgenziaEntrate>,
    pub sim: Arc<Simulatore>,
}

/// Serves `sim` on 127.0.0.1:0 and returns the base URL.
pub async fn servi(sim: Arc<Simulatore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let indirizzo = listener.local_addr().unwrap();
    let app = anpr_ae::router(sim);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{indirizzo}")
}

/// Two fresh simulators seeded by `semina`: one called in process, one through
/// `ClientHttp` and the router over real HTTP.
pub async fn banchi(semina: impl Fn(&Simulatore)) -> Vec<Banco> {
    let diretto = Arc::new(Simulatore::new());
    semina(&diretto);
    let remoto = Arc::new(Simulatore::new());
    semina(&remoto);
    let mut config = ConfigurazioneClientHttp::new(servi(remoto.clone()).await);
    config.sola_lettura = remoto.in_sola_lettura();
    let client = ClientHttp::new(config).unwrap();
    vec![
        Banco {
            nome: "diretto",
            ae: diretto.clone(),
            sim: diretto,
        },
        Banco {
            nome: "http",
            ae: Arc::new(client),
            sim: remoto,
        },
    ]
}

pub fn data(testo: &str) -> NaiveDate {
    NaiveDate::parse_from_str(testo, "%Y-%m-%d").unwrap()
}

/// A man born in Rome on 1 January 1980.
pub fn dati(cognome: &str, nome: &str) -> DatiAnagraficiAe {
    DatiAnagraficiAe {
        cognome: cognome.to_owned(),
        nome: nome.to_owned(),
        sesso: Sesso::Maschio,
        data_nascita: data("1980-01-01"),
        luogo_nascita: "H501".parse().unwrap(),
    }
}

pub fn codice(testo: &str) -> CodiceFiscaleSoggetto {
    testo.parse().unwrap()
}

pub fn posizione(testo: &str, dati: DatiAnagraficiAe) -> PosizioneSeme {
    PosizioneSeme::new(codice(testo), dati)
}

pub fn posizione_con(
    testo: &str,
    dati: DatiAnagraficiAe,
    stato: StatoSeme,
    collegato_a: Option<&str>,
    in_trattamento: bool,
) -> PosizioneSeme {
    PosizioneSeme {
        stato,
        collegato_a: collegato_a.map(codice),
        in_trattamento,
        ..posizione(testo, dati)
    }
}

pub fn richiesta(gestione: GestioneCf, cf: Option<&str>, dati: DatiAnagraficiAe) -> RichiestaAe {
    RichiestaAe {
        gestione,
        codice_fiscale: cf.map(str::to_owned),
        dati,
        comune: ROMA.parse().unwrap(),
    }
}

pub fn allineamento(cf: &str, dati: DatiAnagraficiAe) -> RichiestaAllineamento {
    RichiestaAllineamento {
        codice_fiscale: cf.to_owned(),
        dati,
        comune: ROMA.parse().unwrap(),
    }
}

pub fn collegamento(anpr: &str, ae: &str, comune: &str) -> RichiestaCollegamento {
    RichiestaCollegamento {
        codice_anpr: anpr.to_owned(),
        codice_ae: ae.to_owned(),
        comune: comune.parse().unwrap(),
    }
}

/// `(code, severity)` of each anomaly.
pub fn codici(esito: &EsitoAe) -> Vec<(String, Gravita)> {
    esito
        .anomalie
        .iter()
        .map(|a| (a.codice.clone(), a.gravita))
        .collect()
}

pub fn e(codice: &str) -> (String, Gravita) {
    (codice.to_owned(), Gravita::Errore)
}

pub fn w(codice: &str) -> (String, Gravita) {
    (codice.to_owned(), Gravita::Avvertimento)
}
