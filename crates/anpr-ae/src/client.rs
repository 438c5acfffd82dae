//! [`ClientHttp`]: the [`AgenziaEntrate`] implementation that calls an agency over HTTP
//! with the protocol of [`crate::protocollo`] (the simulator's [`router`](crate::router)
//! serves it).
//!
//! Every call is bounded: connection time, total time (answer body included) and answer
//! size are configured, and anything else than a well-formed `200` answer is a coded
//! [`ErroreAe`]. Plain `http://` only for now: the mutual-TLS channel to the real agency
//! comes with the security work.

use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::errore::ErroreAe;
use crate::protocollo::{
    ErroreWire, EsitoWire, RichiestaAllineamentoWire, RichiestaCollegamentoWire,
    RichiestaConsultaWire, RichiestaValidaWire, RispostaConsultaWire, PERCORSO_COLLEGA,
    PERCORSO_CONFERMA_AE, PERCORSO_CONFERMA_ANPR, PERCORSO_CONSULTA, PERCORSO_VALIDA,
};
use crate::tipi::{
    EsitoAe, PosizioneAe, RichiestaAe, RichiestaAllineamento, RichiestaCollegamento,
};
use crate::AgenziaEntrate;

/// Settings of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurazioneClientHttp {
    /// Base URL of the agency's service, e.g. `http://127.0.0.1:8091` (paths are appended).
    pub base_url: String,
    /// Longest wait for the connection.
    pub timeout_connessione: Duration,
    /// Longest wait for the complete answer, body included.
    pub timeout_risposta: Duration,
    /// Largest answer body read; a longer one is a protocol error.
    pub max_byte_risposta: usize,
    /// Whether the agency is read-only in this environment (pre-subentro). The agency
    /// enforces it; the flag tells the registry not to ask for writes.
    pub sola_lettura: bool,
}

impl ConfigurazioneClientHttp {
    /// Defaults for `base_url`: 2 s to connect, 10 s for the answer, 64 KiB of answer,
    /// writable.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            timeout_connessione: Duration::from_secs(2),
            timeout_risposta: Duration::from_secs(10),
            max_byte_risposta: 64 * 1024,
            sola_lettura: false,
        }
    }
}

/// Calls an agency over HTTP.
#[derive(Debug, Clone)]
pub struct ClientHttp {
    http: reqwest::Client,
    base: reqwest::Url,
    timeout_risposta: Duration,
    max_byte_risposta: usize,
    sola_lettura: bool,
}

impl ClientHttp {
    /// Checks the configuration (an absolute `http://` URL without query or fragment,
    /// non-zero limits) and builds the client.
    pub fn new(config: ConfigurazioneClientHttp) -> Result<Self, ErroreAe> {
        let configurazione = |dettaglio: String| ErroreAe::Configurazione { dettaglio };
        let base = reqwest::Url::parse(&config.base_url)
            .map_err(|e| configurazione(format!("base URL {:?}: {e}", config.base_url)))?;
        if base.scheme() != "http" {
            return Err(configurazione(format!(
                "base URL {:?}: solo http:// è supportato in questa versione",
                config.base_url
            )));
        }
        if base.query().is_some() || base.fragment().is_some() || base.cannot_be_a_base() {
            return Err(configurazione(format!(
                "base URL {:?}: senza query né frammento",
                config.base_url
            )));
        }
        if config.timeout_connessione.is_zero()
            || config.timeout_risposta.is_zero()
            || config.max_byte_risposta == 0
        {
            return Err(configurazione(
                "tempi e dimensione massima della risposta devono essere positivi".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout_connessione)
            .timeout(config.timeout_risposta)
            // The agency is one fixed service: following redirects could only send the
            // subject's data somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| configurazione(e.to_string()))?;
        Ok(Self {
            http,
            base,
            timeout_risposta: config.timeout_risposta,
            max_byte_risposta: config.max_byte_risposta,
            sola_lettura: config.sola_lettura,
        })
    }

    fn url(&self, percorso: &str) -> Result<reqwest::Url, ErroreAe> {
        // Keeps any path prefix of the base URL (`http://host/agenzia` + `/ae/v1/...`).
        let mut testo = self.base.as_str().trim_end_matches('/').to_owned();
        testo.push_str(percorso);
        reqwest::Url::parse(&testo).map_err(|e| ErroreAe::Configurazione {
            dettaglio: format!("{testo}: {e}"),
        })
    }

    fn classifica(&self, errore: &reqwest::Error) -> ErroreAe {
        let dettaglio = errore.to_string();
        if errore.is_timeout() {
            ErroreAe::Timeout {
                millisecondi: self.timeout_risposta.as_millis(),
                dettaglio,
            }
        } else if errore.is_connect() || errore.is_request() {
            ErroreAe::NonRaggiungibile { dettaglio }
        } else {
            ErroreAe::Protocollo { dettaglio }
        }
    }

    /// POSTs `corpo` to `percorso` and reads a `200` answer of type `R`.
    async fn chiama<C: Serialize + Sync, R: DeserializeOwned>(
        &self,
        percorso: &str,
        corpo: &C,
    ) -> Result<R, ErroreAe> {
        let url = self.url(percorso)?;
        let mut risposta = self
            .http
            .post(url)
            .json(corpo)
            .send()
            .await
            .map_err(|e| self.classifica(&e))?;
        let status = risposta.status();
        if risposta
            .content_length()
            .is_some_and(|n| n > self.max_byte_risposta as u64)
        {
            return Err(ErroreAe::Protocollo {
                dettaglio: format!(
                    "{percorso}: risposta di {} byte, massimo {}",
                    risposta.content_length().unwrap_or_default(),
                    self.max_byte_risposta
                ),
            });
        }
        let mut corpo_risposta = Vec::new();
        while let Some(pezzo) = risposta.chunk().await.map_err(|e| self.classifica(&e))? {
            if corpo_risposta.len() + pezzo.len() > self.max_byte_risposta {
                return Err(ErroreAe::Protocollo {
                    dettaglio: format!(
                        "{percorso}: risposta oltre {} byte",
                        self.max_byte_risposta
                    ),
                });
            }
            corpo_risposta.extend_from_slice(&pezzo);
        }
        if status != reqwest::StatusCode::OK {
            // The agency's coded refusal says what it did not accept; keep it for the log.
            let motivo = serde_json::from_slice::<ErroreWire>(&corpo_risposta)
                .map(|e| {
                    e.anomalie
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_else(|_| "corpo non conforme".to_owned());
            return Err(ErroreAe::Protocollo {
                dettaglio: format!("{percorso}: HTTP {status}: {motivo}"),
            });
        }
        serde_json::from_slice(&corpo_risposta).map_err(|e| ErroreAe::Protocollo {
            dettaglio: format!("{percorso}: risposta non conforme: {e}"),
        })
    }

    async fn esito<C: Serialize + Sync>(
        &self,
        percorso: &str,
        corpo: &C,
    ) -> Result<EsitoAe, ErroreAe> {
        let wire: EsitoWire = self.chiama(percorso, corpo).await?;
        wire.in_dominio().map_err(|a| ErroreAe::Protocollo {
            dettaglio: format!("{percorso}: {a}"),
        })
    }
}

#[async_trait]
impl AgenziaEntrate for ClientHttp {
    async fn valida(&self, req: &RichiestaAe) -> Result<EsitoAe, ErroreAe> {
        if !req.gestione.chiama_ae() {
            return Ok(EsitoAe::senza_chiamata(req));
        }
        self.esito(PERCORSO_VALIDA, &RichiestaValidaWire::from(req))
            .await
    }

    async fn consulta(&self, codice_fiscale: &str) -> Result<Option<PosizioneAe>, ErroreAe> {
        let wire: RispostaConsultaWire = self
            .chiama(
                PERCORSO_CONSULTA,
                &RichiestaConsultaWire {
                    codice_fiscale: codice_fiscale.to_owned(),
                },
            )
            .await?;
        wire.posizione
            .map(|p| p.in_dominio())
            .transpose()
            .map_err(|a| ErroreAe::Protocollo {
                dettaglio: format!("{PERCORSO_CONSULTA}: {a}"),
            })
    }

    async fn conferma_dati_ae(&self, req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe> {
        self.esito(PERCORSO_CONFERMA_AE, &RichiestaAllineamentoWire::from(req))
            .await
    }

    async fn conferma_dati_anpr(&self, req: &RichiestaAllineamento) -> Result<EsitoAe, ErroreAe> {
        self.esito(
            PERCORSO_CONFERMA_ANPR,
            &RichiestaAllineamentoWire::from(req),
        )
        .await
    }

    async fn collega(&self, req: &RichiestaCollegamento) -> Result<EsitoAe, ErroreAe> {
        self.esito(PERCORSO_COLLEGA, &RichiestaCollegamentoWire::from(req))
            .await
    }

    fn sola_lettura(&self) -> bool {
        self.sola_lettura
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_configurazione(base: &str, ok: bool) {
        let risultato = ClientHttp::new(ConfigurazioneClientHttp::new(base));
        assert_eq!(risultato.is_ok(), ok, "{base}: {risultato:?}");
        if let Err(e) = risultato {
            assert_eq!(e.codice(), "EV062");
            assert!(matches!(e, ErroreAe::Configurazione { .. }));
        }
    }

    #[test]
    fn only_plain_http_base_urls() {
        check_configurazione("http://127.0.0.1:8091", true);
        check_configurazione("http://ae.example.invalid/agenzia/", true);
        check_configurazione("https://ae.example.invalid", false);
        check_configurazione("ae.example.invalid", false);
        check_configurazione("http://ae.example.invalid/?x=1", false);
        check_configurazione("", false);
        let mut config = ConfigurazioneClientHttp::new("http://127.0.0.1:1");
        config.max_byte_risposta = 0;
        assert!(ClientHttp::new(config).is_err());
    }

    #[test]
    fn paths_keep_the_base_prefix() {
        let client = ClientHttp::new(ConfigurazioneClientHttp::new("http://h:1/agenzia/")).unwrap();
        assert_eq!(
            client.url(PERCORSO_VALIDA).unwrap().as_str(),
            "http://h:1/agenzia/ae/v1/valida"
        );
        let client = ClientHttp::new(ConfigurazioneClientHttp::new("http://h:1")).unwrap();
        assert_eq!(
            client.url(PERCORSO_CONSULTA).unwrap().as_str(),
            "http://h:1/ae/v1/consulta"
        );
    }
}
