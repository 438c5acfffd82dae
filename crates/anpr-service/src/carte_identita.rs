//! Identity cards (SPEC M-4.2; seed 001 §4.2): the paper card issued by the
//! municipality of residence with the holder's data and, where present, two witnesses;
//! the print of the card and of the two copies of the *cartellino* (one for the
//! municipality's archive, one for the police headquarters); annulment for material
//! error; the list of issued cards with the fees. The electronic card (CIE) is recorded
//! here too (no print: the card is produced centrally) and only for a subject whose
//! codice fiscale the tax agency has validated (EN141).
//!
//! A card is an issued document like a certificate: it takes the next number of the
//! municipality's protocol register, stores what it says (so a reprint is identical)
//! and is audited in the same transaction. Data come from the record as it is today;
//! physical traits (height, hair, eyes, marks) are stated by the applicant.

use anpr_certificati::{Blocco, Documento};
use anpr_domain::audit::TipoEvento;
use anpr_domain::caller::{Ambiente, CallerContext};
use anpr_domain::error::{Anomalia, CODICE_CAMPO_OBBLIGATORIO, CODICE_VALORE_NON_VALIDO};
use anpr_domain::ids::{CodiceIstatComune, IdAnprSoggetto};
use anpr_domain::scheda::{PosizioneAnagrafica, SchedaSoggetto, StatoCodiceFiscale};
use anpr_store::{DocumentoEmesso, EntityRef, NuovoDocumento, QueryDocumenti, TipoDocumento};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::authz::Permesso;
use crate::certificati::{data_it, euro, hex_id, luogo, nome_completo};
use crate::{Registry, ServiceError};

/// Our code: the subject is not resident (APR) in the issuing municipality.
pub const CODICE_NON_RESIDENTE: &str = "EV255";
/// Our code: the card to annul is already annulled.
pub const CODICE_CARTA_ANNULLATA: &str = "EV256";

/// Most witnesses on a card.
pub const TESTIMONI_MASSIMI: usize = 2;

/// A witness (*testimone*) identifying a holder who has no other document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Testimone {
    pub cognome: String,
    pub nome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luogo_nascita: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_nascita: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residenza: Option<String>,
    /// The witness's own identity document (kind, number, issuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documento: Option<String>,
}

/// A request to issue an identity card.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichiestaCartaIdentita {
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: String,
    /// `C` paper, `E` electronic (CIE).
    pub cartacea_elettronica: String,
    /// The card's number (`tipoNumeroCartaIdentita`: 1 to 20 letters, digits, spaces).
    pub numero: String,
    /// Expiry; by default the holder's birthday after 3 (under 3), 5 (under 18) or 10
    /// years.
    pub data_scadenza: Option<NaiveDate>,
    /// Valid for travel abroad (default true; false = `interdizioneEspatrio`).
    pub valida_espatrio: Option<bool>,
    /// Height in centimetres.
    pub statura: Option<u16>,
    pub colore_capelli: Option<String>,
    pub colore_occhi: Option<String>,
    pub segni_particolari: Option<String>,
    pub professione: Option<String>,
    #[serde(default)]
    pub testimoni: Vec<Testimone>,
}

/// What an issued card says; stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContenutoCarta {
    pub cartacea_elettronica: String,
    pub numero: String,
    pub data_rilascio: NaiveDate,
    pub data_scadenza: NaiveDate,
    pub valida_espatrio: bool,
    pub comune: CodiceIstatComune,
    pub nome_comune: String,
    /// The holder's data as printed: (label, value) rows.
    pub titolare: Vec<(String, String)>,
    pub testimoni: Vec<Testimone>,
    /// Fee due, in cents (municipality parameters; paper cards only).
    pub diritti: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmatario: Option<String>,
}

/// An issued card as the caller gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CartaEmessa {
    pub id_carta: String,
    pub numero_protocollo: u64,
    pub anno: i32,
    #[serde(rename = "idSchedaSoggettoANPR")]
    pub id_scheda_soggetto_anpr: Option<IdAnprSoggetto>,
    pub cartacea_elettronica: String,
    pub numero: String,
    pub data_rilascio: NaiveDate,
    pub data_scadenza: NaiveDate,
    pub valida_espatrio: bool,
    pub diritti: u32,
    pub annullata_il: Option<DateTime<Utc>>,
    pub motivo_annullamento: Option<String>,
}

/// The municipality's issued cards with the fees due (annulled ones excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElencoCarte {
    pub carte: Vec<CartaEmessa>,
    pub totale_diritti: u64,
}

/// The default expiry (DL 70/2011 art. 10): 3 years under 3, 5 under 18, 10 for
/// adults, on the holder's birthday in that year (28 February for 29 February).
pub fn scadenza_predefinita(nascita: NaiveDate, rilascio: NaiveDate) -> NaiveDate {
    let eta = rilascio.years_since(nascita).unwrap_or(0);
    let anni = match eta {
        0..=2 => 3,
        3..=17 => 5,
        _ => 10,
    };
    let anno = rilascio.year() + anni;
    NaiveDate::from_ymd_opt(anno, nascita.month(), nascita.day())
        .or_else(|| NaiveDate::from_ymd_opt(anno, 2, 28))
        .unwrap_or_else(|| rilascio + Months::new(12 * anni.unsigned_abs()))
}

fn testo_libero(campo: &str, v: &Option<String>, max: usize, e: &mut Vec<Anomalia>) {
    if let Some(t) = v {
        if t.trim().is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Testo non valido")
                    .campo(campo)
                    .valore(t.chars().take(40).collect::<String>())
                    .atteso(format!("da 1 a {max} caratteri stampabili")),
            );
        }
    }
}

/// Checks the request's own fields (not the subject).
fn controlla_richiesta(r: &RichiestaCartaIdentita, oggi: NaiveDate) -> Vec<Anomalia> {
    let mut e = Vec::new();
    if !matches!(r.cartacea_elettronica.as_str(), "C" | "E") {
        e.push(
            Anomalia::errore(
                "EC059",
                format!(
                    "Valore tipo carta di identita' {} non ammesso. Indicare E (elettronica) o C (cartacea)",
                    r.cartacea_elettronica
                ),
            )
            .campo("cartaceaElettronica")
            .valore(&r.cartacea_elettronica)
            .atteso("C o E"),
        );
    }
    let n = r.numero.trim();
    if n.is_empty()
        || n.chars().count() > 20
        || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
    {
        e.push(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Numero della carta non valido")
                .campo("numero")
                .valore(&r.numero)
                .atteso("da 1 a 20 lettere, cifre o spazi"),
        );
    }
    if let Some(s) = r.data_scadenza {
        if s <= oggi || s > oggi + Months::new(12 * 11) {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Data di scadenza non ammessa")
                    .campo("dataScadenza")
                    .valore(s.to_string())
                    .atteso("una data futura entro 11 anni dal rilascio"),
            );
        }
    }
    if let Some(s) = r.statura {
        if !(30..=260).contains(&s) {
            e.push(
                Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Statura non plausibile")
                    .campo("statura")
                    .valore(s.to_string())
                    .atteso("centimetri, da 30 a 260"),
            );
        }
    }
    testo_libero("coloreCapelli", &r.colore_capelli, 30, &mut e);
    testo_libero("coloreOcchi", &r.colore_occhi, 30, &mut e);
    testo_libero("segniParticolari", &r.segni_particolari, 120, &mut e);
    testo_libero("professione", &r.professione, 80, &mut e);
    if r.testimoni.len() > TESTIMONI_MASSIMI {
        e.push(
            Anomalia::errore(CODICE_VALORE_NON_VALIDO, "Troppi testimoni")
                .campo("testimoni")
                .valore(r.testimoni.len().to_string())
                .atteso(format!("al massimo {TESTIMONI_MASSIMI}")),
        );
    }
    for (i, t) in r.testimoni.iter().enumerate() {
        for (campo, v) in [("cognome", &t.cognome), ("nome", &t.nome)] {
            if v.trim().is_empty() {
                e.push(
                    Anomalia::errore(CODICE_CAMPO_OBBLIGATORIO, "Dato del testimone mancante")
                        .campo(format!("testimoni[{i}].{campo}")),
                );
            } else {
                testo_libero(
                    &format!("testimoni[{i}].{campo}"),
                    &Some(v.clone()),
                    80,
                    &mut e,
                );
            }
        }
        testo_libero(
            &format!("testimoni[{i}].luogoNascita"),
            &t.luogo_nascita,
            80,
            &mut e,
        );
        testo_libero(
            &format!("testimoni[{i}].residenza"),
            &t.residenza,
            160,
            &mut e,
        );
        testo_libero(
            &format!("testimoni[{i}].documento"),
            &t.documento,
            120,
            &mut e,
        );
        if t.data_nascita.is_some_and(|d| d > oggi) {
            e.push(
                Anomalia::errore(
                    anpr_domain::error::CODICE_DATA_FUTURA,
                    "Data di nascita futura",
                )
                .campo(format!("testimoni[{i}].dataNascita")),
            );
        }
    }
    e
}

impl Registry {
    /// Issues an identity card; for a paper one, also its print (card and the two
    /// copies of the cartellino).
    pub async fn emetti_carta_identita(
        &self,
        ctx: &CallerContext,
        req: RichiestaCartaIdentita,
    ) -> Result<(CartaEmessa, Option<Vec<u8>>), ServiceError> {
        self.autorizza(ctx, Permesso::CartaIdentita, "emissioneCartaIdentita")
            .await?;
        let Some(comune) = ctx.comune.clone() else {
            return Err(self.rifiuto(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "La carta d'identita' e' rilasciata da un comune",
            )
            .campo("comune")]));
        };
        let oggi = self.clock().today();
        let mut e = Vec::new();
        let id = crate::ricerca::parsed::<IdAnprSoggetto>(
            "idSchedaSoggettoANPR",
            &req.id_scheda_soggetto_anpr,
            &mut e,
        );
        e.extend(controlla_richiesta(&req, oggi));
        let Some(id) = id.filter(|_| e.is_empty()) else {
            return Err(self.rifiuto(e));
        };
        let record = self
            .leggi_record_registrando(ctx, EntityRef::Soggetto(id), None, "cartaIdentita")
            .await?
            .ok_or_else(|| ServiceError::NonTrovato {
                cosa: format!("soggetto {id}"),
                riferimento: self.riferimento(None),
            })?;
        let scheda = SchedaSoggetto::from_sections(record.iter()).map_err(|e| self.interno(e))?;
        self.controlla_titolare(&scheda, &comune, &req)
            .map_err(|a| self.rifiuto(vec![a]))?;
        let par = self.parametri_documenti(ctx.ambiente, &comune).await?;
        let g = scheda
            .generalita
            .as_ref()
            .ok_or_else(|| self.interno(format!("subject {id} without generalities")))?;
        let data_scadenza = req
            .data_scadenza
            .unwrap_or_else(|| scadenza_predefinita(g.data_nascita.data, oggi));
        let (nome_comune, _) = self.nome_comune(&comune, oggi);
        let contenuto = ContenutoCarta {
            cartacea_elettronica: req.cartacea_elettronica.clone(),
            numero: req.numero.trim().to_uppercase(),
            data_rilascio: oggi,
            data_scadenza,
            valida_espatrio: req.valida_espatrio.unwrap_or(true),
            comune: comune.clone(),
            nome_comune,
            titolare: self.righe_titolare(&scheda, &req, oggi),
            testimoni: req.testimoni.clone(),
            diritti: if req.cartacea_elettronica == "C" {
                par.valori.diritti_carta_identita
            } else {
                0
            },
            firmatario: par.valori.ufficiale_anagrafe.clone(),
        };
        let id_doc = anpr_certificati::id_casuale().map_err(|e| self.interno(e))?;
        let id_testo = hex::encode(id_doc);
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Operazione,
            "emissioneCartaIdentita",
            Some(format!("cartaIdentita:{id_testo}")),
            format!("soggetto:{id}"),
        );
        let doc = self
            .store(ctx.ambiente)?
            .emetti_documento(NuovoDocumento {
                id: id_testo,
                tipo: TipoDocumento::CartaIdentita,
                comune,
                anno: oggi.year(),
                soggetto: Some(id),
                emesso_il: self.clock().now(),
                utente: ctx.utente.clone(),
                contenuto: serde_json::to_value(&contenuto).map_err(|e| self.interno(e))?,
                audit: voce,
            })
            .await
            .map_err(|e| self.interno(e))?;
        let pdf = if contenuto.cartacea_elettronica == "C" {
            Some(self.pdf_carta(ctx.ambiente, &doc, &contenuto, par.logo)?)
        } else {
            None
        };
        Ok((carta_emessa(&doc, &contenuto), pdf))
    }

    /// The holder must be a living resident of the issuing municipality; a CIE needs a
    /// codice fiscale validated by the tax agency.
    fn controlla_titolare(
        &self,
        s: &SchedaSoggetto,
        comune: &CodiceIstatComune,
        req: &RichiestaCartaIdentita,
    ) -> Result<(), Anomalia> {
        let competenza = s.competenza.as_ref();
        let posizione = competenza.map(|c| c.posizione);
        if posizione == Some(PosizioneAnagrafica::Cancellato) {
            let morto = s
                .cancellazione
                .as_ref()
                .is_some_and(|c| matches!(c.motivo_cancellazione.as_str(), "1" | "2"));
            return Err(if morto {
                Anomalia::errore("EN228", "Il documento non puo' essere emesso in quanto il soggetto e' deceduto")
            } else {
                Anomalia::errore("EN229", "Il documento non puo' essere emesso in quanto il soggetto e' stato cancellato da ANPR")
            }
            .campo("idSchedaSoggettoANPR")
            .valore(&req.id_scheda_soggetto_anpr));
        }
        if posizione != Some(PosizioneAnagrafica::Residente)
            || competenza.map(|c| &c.comune) != Some(comune)
        {
            return Err(Anomalia::errore(
                CODICE_NON_RESIDENTE,
                "La carta d'identita' e' rilasciata dal comune di residenza: il soggetto non vi risulta residente",
            )
            .campo("idSchedaSoggettoANPR")
            .valore(&req.id_scheda_soggetto_anpr)
            .atteso(format!("un residente (APR) del comune {comune}")));
        }
        if req.cartacea_elettronica == "E" {
            let stato = s.codice_fiscale.as_ref().map(|c| c.stato);
            if stato != Some(StatoCodiceFiscale::Validato) {
                return Err(Anomalia::errore(
                    "EN141",
                    "Soggetto non validato: la carta d'identita' elettronica richiede il codice fiscale validato dall'Agenzia delle Entrate",
                )
                .campo("codiceFiscale.stato")
                .valore(match stato {
                    Some(st) => serde_json::to_value(st)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    None => "assente".into(),
                })
                .atteso("validato"));
            }
        }
        Ok(())
    }

    fn righe_titolare(
        &self,
        s: &SchedaSoggetto,
        req: &RichiestaCartaIdentita,
        oggi: NaiveDate,
    ) -> Vec<(String, String)> {
        let g = s.generalita.as_ref();
        let mut r = vec![("Cognome e nome".to_owned(), nome_completo(g))];
        if let Some(g) = g {
            r.push(("Nato/a a".into(), luogo(&g.luogo_nascita)));
            r.push(("Il".into(), data_it(g.data_nascita.data)));
            r.push(("Sesso".into(), g.sesso.code().into()));
        }
        if let Some(cf) = &s.codice_fiscale {
            r.push(("Codice fiscale".into(), cf.cod_fiscale.as_str().to_owned()));
        }
        let cittadinanza = s
            .cittadinanze
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                if c.codice_stato == "100" {
                    "ITALIANA".to_owned()
                } else {
                    self.tables()
                        .stato_estero_by_istat(&c.codice_stato, None)
                        .map(|s| s.nome.clone())
                        .unwrap_or_else(|| c.codice_stato.clone())
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        if !cittadinanza.is_empty() {
            r.push(("Cittadinanza".into(), cittadinanza));
        }
        if let Some(res) = &s.residenza {
            r.push(("Residenza".into(), self.indirizzo(res, oggi)));
        }
        if let Some(sc) = &s.stato_civile {
            let d = self
                .tables()
                .code("stato_civile", &sc.stato_civile, None)
                .map(|r| r.description.to_uppercase())
                .unwrap_or_else(|| sc.stato_civile.clone());
            r.push(("Stato civile".into(), d));
        }
        let professione = req
            .professione
            .clone()
            .or_else(|| s.altri_dati.as_ref().and_then(|a| a.professione.clone()));
        if let Some(p) = professione {
            r.push(("Professione".into(), p.trim().to_uppercase()));
        }
        if let Some(s) = req.statura {
            r.push(("Statura".into(), format!("{s} cm")));
        }
        for (etichetta, v) in [
            ("Capelli", req.colore_capelli.clone()),
            ("Occhi", req.colore_occhi.clone()),
            ("Segni particolari", req.segni_particolari.clone()),
        ] {
            if let Some(v) = v {
                r.push((etichetta.into(), v.trim().to_uppercase()));
            }
        }
        r
    }

    /// The print: the card, then on a new page the two copies of the cartellino.
    fn pdf_carta(
        &self,
        ambiente: Ambiente,
        doc: &DocumentoEmesso,
        c: &ContenutoCarta,
        logo: Option<std::sync::Arc<anpr_certificati::Immagine>>,
    ) -> Result<Vec<u8>, ServiceError> {
        let mut documento_righe = vec![
            ("Numero".to_owned(), c.numero.clone()),
            ("Rilasciata il".into(), data_it(c.data_rilascio)),
            ("Scadenza".into(), data_it(c.data_scadenza)),
            (
                "Validità per l'espatrio".into(),
                if c.valida_espatrio {
                    "VALIDA PER L'ESPATRIO".into()
                } else {
                    "NON VALIDA PER L'ESPATRIO".into()
                },
            ),
        ];
        let mut corpo = vec![
            Blocco::Titolo("CARTA D'IDENTITÀ".into()),
            Blocco::Sottotitolo("REPUBBLICA ITALIANA".into()),
            Blocco::Riquadro {
                titolo: "TITOLARE".into(),
                righe: c.titolare.clone(),
            },
            Blocco::Riquadro {
                titolo: "DOCUMENTO".into(),
                righe: documento_righe.clone(),
            },
            Blocco::Paragrafo("Firma del titolare ______________________________".into()),
            Blocco::Paragrafo(format!(
                "IL SINDACO / L'UFFICIALE DI ANAGRAFE{}",
                c.firmatario
                    .as_ref()
                    .map(|f| format!(" - {f}"))
                    .unwrap_or_default()
            )),
            Blocco::NuovaPagina,
        ];
        documento_righe.extend(c.titolare.iter().cloned());
        for (i, t) in c.testimoni.iter().enumerate() {
            let mut v = format!("{} {}", t.cognome.trim(), t.nome.trim()).to_uppercase();
            if let (Some(l), Some(d)) = (&t.luogo_nascita, t.data_nascita) {
                v.push_str(&format!(", nato/a a {} il {}", l.trim(), data_it(d)));
            }
            if let Some(r) = &t.residenza {
                v.push_str(&format!(", residente in {}", r.trim()));
            }
            if let Some(d) = &t.documento {
                v.push_str(&format!(", documento {}", d.trim()));
            }
            documento_righe.push((format!("Testimone {}", i + 1), v));
        }
        for copia in ["COPIA PER IL COMUNE", "COPIA PER LA QUESTURA"] {
            corpo.push(Blocco::Riquadro {
                titolo: format!("CARTELLINO - {copia}"),
                righe: documento_righe.clone(),
            });
        }
        corpo.push(Blocco::Paragrafo(
            "Firma del titolare ______________________   Firma dei testimoni ______________________"
                .into(),
        ));
        let mut piede = vec![format!(
            "Diritti {} - Protocollo n. {}/{}",
            euro(u64::from(c.diritti)),
            doc.protocollo,
            doc.anno
        )];
        if doc.annullato_il.is_some() {
            piede.push("CARTA D'IDENTITÀ ANNULLATA".into());
        }
        let documento = Documento {
            titolo_metadati: format!("Carta d'identità n. {}", c.numero),
            logo,
            intestazione: vec![
                format!("COMUNE DI {}", c.nome_comune.to_uppercase()),
                "Ufficio Anagrafe - Servizi Demografici".into(),
            ],
            corpo,
            filigrana: (ambiente != Ambiente::Produzione)
                .then(|| format!("BOZZA / ANTEPRIMA - ambiente di {}", ambiente.as_str())),
            qr: None,
            piede,
            creato: doc.emesso_il,
            id_file: hex_id(&doc.id),
        };
        anpr_certificati::genera_pdf(&documento).map_err(|e| self.interno(e))
    }

    async fn carta_del_comune(
        &self,
        ctx: &CallerContext,
        id: &str,
    ) -> Result<(DocumentoEmesso, ContenutoCarta), ServiceError> {
        let non_trovata = || ServiceError::NonTrovato {
            cosa: "carta d'identita'".into(),
            riferimento: self.riferimento(None),
        };
        let doc = self
            .store(ctx.ambiente)?
            .documento(id)
            .await
            .map_err(|e| self.interno(e))?
            .ok_or_else(non_trovata)?;
        // Another municipality's cards do not exist for the caller.
        if doc.tipo != TipoDocumento::CartaIdentita || ctx.comune.as_ref() != Some(&doc.comune) {
            return Err(non_trovata());
        }
        let c = serde_json::from_value(doc.contenuto.clone()).map_err(|e| self.interno(e))?;
        Ok((doc, c))
    }

    /// The print of a paper card again (identical content); marked if annulled.
    pub async fn stampa_carta_identita(
        &self,
        ctx: &CallerContext,
        id: &str,
    ) -> Result<(CartaEmessa, Vec<u8>), ServiceError> {
        self.autorizza(ctx, Permesso::CartaIdentita, "stampaCartaIdentita")
            .await?;
        let (doc, c) = self.carta_del_comune(ctx, id).await?;
        if c.cartacea_elettronica != "C" {
            return Err(ServiceError::NonTrovato {
                cosa: "stampa (la carta d'identita' elettronica non si stampa)".into(),
                riferimento: self.riferimento(None),
            });
        }
        let logo = self
            .parametri_documenti(ctx.ambiente, &doc.comune)
            .await?
            .logo;
        let pdf = self.pdf_carta(ctx.ambiente, &doc, &c, logo)?;
        Ok((carta_emessa(&doc, &c), pdf))
    }

    /// Annuls a card for material error.
    pub async fn annulla_carta_identita(
        &self,
        ctx: &CallerContext,
        id: &str,
        motivo: &str,
    ) -> Result<CartaEmessa, ServiceError> {
        self.autorizza(ctx, Permesso::CartaIdentita, "annullamentoCartaIdentita")
            .await?;
        let motivo = motivo.trim();
        if motivo.is_empty() || motivo.chars().count() > 256 {
            return Err(self.rifiuto(vec![Anomalia::errore(
                CODICE_CAMPO_OBBLIGATORIO,
                "Indicare il motivo dell'annullamento (errore materiale), al massimo 256 caratteri",
            )
            .campo("motivo")]));
        }
        let (doc, c) = self.carta_del_comune(ctx, id).await?;
        if doc.annullato_il.is_some() {
            return Err(self.rifiuto(vec![Anomalia::errore(
                CODICE_CARTA_ANNULLATA,
                "La carta d'identita' risulta gia' annullata",
            )
            .campo("idCarta")
            .valore(id)]));
        }
        let voce = self.voce_audit(
            ctx,
            TipoEvento::Annullamento,
            "annullamentoCartaIdentita",
            Some(format!("cartaIdentita:{id}")),
            "annullata".into(),
        );
        let doc = self
            .store(ctx.ambiente)?
            .annulla_documento(&doc.id, self.clock().now(), motivo.to_owned(), voce)
            .await
            .map_err(|e| self.interno(e))?
            .ok_or_else(|| self.interno("annulled card vanished"))?;
        Ok(carta_emessa(&doc, &c))
    }

    /// The municipality's cards issued in a period, with the fees due.
    pub async fn elenco_carte_identita(
        &self,
        ctx: &CallerContext,
        dal: Option<DateTime<Utc>>,
        al: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<ElencoCarte, ServiceError> {
        self.autorizza(ctx, Permesso::CartaIdentita, "elencoCarteIdentita")
            .await?;
        let Some(comune) = ctx.comune.clone() else {
            return Err(self
                .nega(ctx, Permesso::CartaIdentita, "elencoCarteIdentita")
                .await);
        };
        let docs = self
            .store(ctx.ambiente)?
            .documenti(&QueryDocumenti {
                comune: Some(comune),
                tipo: Some(TipoDocumento::CartaIdentita),
                soggetto: None,
                dal,
                al,
                limit,
            })
            .await
            .map_err(|e| self.interno(e))?;
        let mut out = ElencoCarte {
            carte: Vec::with_capacity(docs.len()),
            totale_diritti: 0,
        };
        for d in &docs {
            let c: ContenutoCarta =
                serde_json::from_value(d.contenuto.clone()).map_err(|e| self.interno(e))?;
            if d.annullato_il.is_none() {
                out.totale_diritti += u64::from(c.diritti);
            }
            out.carte.push(carta_emessa(d, &c));
        }
        Ok(out)
    }
}

fn carta_emessa(doc: &DocumentoEmesso, c: &ContenutoCarta) -> CartaEmessa {
    CartaEmessa {
        id_carta: doc.id.clone(),
        numero_protocollo: doc.protocollo,
        anno: doc.anno,
        id_scheda_soggetto_anpr: doc.soggetto,
        cartacea_elettronica: c.cartacea_elettronica.clone(),
        numero: c.numero.clone(),
        data_rilascio: c.data_rilascio,
        data_scadenza: c.data_scadenza,
        valida_espatrio: c.valida_espatrio,
        diritti: c.diritti,
        annullata_il: doc.annullato_il,
        motivo_annullamento: doc.motivo_annullamento.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, g: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, g).unwrap()
    }

    #[test]
    fn default_expiry_follows_age_and_birthday() {
        assert_eq!(
            scadenza_predefinita(d(1980, 5, 17), d(2026, 11, 23)),
            d(2036, 5, 17)
        );
        assert_eq!(
            scadenza_predefinita(d(2015, 3, 2), d(2026, 11, 23)),
            d(2031, 3, 2)
        );
        assert_eq!(
            scadenza_predefinita(d(2025, 1, 10), d(2026, 11, 23)),
            d(2029, 1, 10)
        );
        // Born on 29 February: the birthday exists in the leap year 2036, not in 2037.
        assert_eq!(
            scadenza_predefinita(d(1984, 2, 29), d(2026, 11, 23)),
            d(2036, 2, 29)
        );
        assert_eq!(
            scadenza_predefinita(d(1984, 2, 29), d(2027, 1, 5)),
            d(2037, 2, 28)
        );
    }

    #[test]
    fn request_fields_are_checked() {
        let base = RichiestaCartaIdentita {
            id_scheda_soggetto_anpr: "1".into(),
            cartacea_elettronica: "C".into(),
            numero: "AB 123456".into(),
            data_scadenza: None,
            valida_espatrio: None,
            statura: Some(175),
            colore_capelli: None,
            colore_occhi: None,
            segni_particolari: None,
            professione: None,
            testimoni: vec![],
        };
        let oggi = d(2026, 11, 23);
        assert!(controlla_richiesta(&base, oggi).is_empty());
        let t = Testimone {
            cognome: " ".into(),
            nome: "Ada".into(),
            luogo_nascita: None,
            data_nascita: Some(d(2030, 1, 1)),
            residenza: None,
            documento: None,
        };
        let cattiva = RichiestaCartaIdentita {
            cartacea_elettronica: "X".into(),
            numero: "AB-1".into(),
            data_scadenza: Some(oggi),
            statura: Some(400),
            testimoni: vec![t.clone(), t.clone(), t],
            ..base
        };
        let codici: Vec<String> = controlla_richiesta(&cattiva, oggi)
            .into_iter()
            .map(|a| format!("{}:{}", a.codice, a.campo.unwrap_or_default()))
            .collect();
        assert_eq!(
            &codici[..6],
            [
                "EC059:cartaceaElettronica",
                "EV001:numero",
                "EV001:dataScadenza",
                "EV001:statura",
                "EV001:testimoni",
                "EV002:testimoni[0].cognome"
            ]
        );
        assert!(codici.contains(&"EV003:testimoni[2].dataNascita".to_owned()));
    }
}
